//! `gorae network create|ls|inspect|rm|connect|disconnect|prune`: the daemon's networks,
//! with docker's flags, columns (NETWORK ID, NAME, DRIVER, SCOPE), messages and exit codes.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use gorae_api::client::{query, Client, Method, RequestBody};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::container_cmd::template::{indent_json, Format, Template};
use crate::container_cmd::{self, block_on, exit, seg, with_code};

#[derive(Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Connect a container to a network.
    Connect(ConnectArgs),
    /// Disconnect a container from a network.
    Disconnect(DisconnectArgs),
    /// Remove all unused networks.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Driver to manage the Network.
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Restrict external access to the network.
    #[arg(long)]
    pub internal: bool,
    /// Enable manual container attachment.
    #[arg(long)]
    pub attachable: bool,
    /// Set metadata on a network.
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options.
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// Subnet in CIDR format that represents a network segment.
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet.
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range.
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// IP Address Management Driver.
    #[arg(long = "ipam-driver", default_value = "default")]
    pub ipam_driver: String,
    /// Enable or disable IPv6 networking.
    #[arg(long)]
    pub ipv6: bool,
    pub name: String,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display network IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. 'driver=bridge').
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template.
    #[arg(long)]
    pub format: Option<String>,
    /// Do not truncate the output.
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Verbose output for diagnostics (ignored).
    #[arg(short, long)]
    pub verbose: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Do not error if the network does not exist.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container.
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104").
    #[arg(long)]
    pub ip: Option<String>,
    pub network: String,
    pub container: String,
}

#[derive(Args)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network.
    #[arg(short, long)]
    pub force: bool,
    pub network: String,
    pub container: String,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Provide filter values (e.g. 'until=<timestamp>').
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn dispatch(g: &Global, command: NetworkCommand) -> Result<()> {
    let client = container_cmd::client(g)?;
    block_on(async move {
        match command {
            NetworkCommand::Create(a) => create(client, a).await,
            NetworkCommand::Ls(a) => ls(client, a).await,
            NetworkCommand::Inspect(a) => inspect(client, a).await,
            NetworkCommand::Rm(a) => rm(client, a).await,
            NetworkCommand::Connect(a) => connect(client, a).await,
            NetworkCommand::Disconnect(a) => disconnect(client, a).await,
            NetworkCommand::Prune(a) => prune(client, a).await,
        }
    })
}

fn pairs(list: &[String], what: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) => Ok((k.to_string(), v.to_string())),
            None if what == "label" => Ok((item.clone(), String::new())),
            None => Err(anyhow!("invalid {what} '{item}': expected key=value")),
        })
        .collect()
}

/// `--subnet`, `--gateway`, `--ip-range` paired in order, as docker's CLI does.
fn ipam_config(args: &CreateArgs) -> Result<Vec<Value>> {
    if args.gateway.len() > args.subnet.len() || args.ip_range.len() > args.subnet.len() {
        return Err(anyhow!(
            "every ip-range or gateway must have a corresponding subnet"
        ));
    }
    Ok(args
        .subnet
        .iter()
        .enumerate()
        .map(|(i, subnet)| {
            let mut c = json!({"Subnet": subnet});
            if let Some(g) = args.gateway.get(i) {
                c["Gateway"] = json!(g);
            }
            if let Some(r) = args.ip_range.get(i) {
                c["IPRange"] = json!(r);
            }
            c
        })
        .collect())
}

async fn create(client: Client, args: CreateArgs) -> Result<()> {
    let body = json!({
        "Name": args.name,
        "CheckDuplicate": true,
        "Driver": args.driver,
        "Internal": args.internal,
        "Attachable": args.attachable,
        "EnableIPv6": args.ipv6,
        "IPAM": {"Driver": args.ipam_driver, "Config": ipam_config(&args).map_err(|e| with_code(1, e))?,
                 "Options": {}},
        "Options": pairs(&args.opt, "option").map_err(|e| with_code(1, e))?,
        "Labels": pairs(&args.label, "label").map_err(|e| with_code(1, e))?,
    });
    let created: Value = client
        .post_json("/networks/create", RequestBody::json(&body))
        .await?;
    println!("{}", created["Id"].as_str().unwrap_or_default());
    Ok(())
}

fn filters_json(filters: &[String]) -> Result<String> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow!("bad format of filter (expected name=value)"))?;
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(serde_json::to_string(&map)?)
}

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";

fn header_of(field: &str) -> String {
    match field {
        "ID" => "NETWORK ID".into(),
        "IPv6" => "IPV6".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

/// The fields docker's network formatter offers for one network.
fn row(n: &Value, no_trunc: bool) -> Value {
    let mut labels: Vec<String> = n["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let s = |key: &str| n[key].as_str().unwrap_or_default().to_string();
    let id = s("Id");
    let id = if no_trunc {
        id
    } else {
        id.chars().take(12).collect()
    };
    json!({
        "ID": id, "Name": s("Name"), "Driver": s("Driver"), "Scope": s("Scope"),
        "IPv6": n["EnableIPv6"].as_bool().unwrap_or(false).to_string(),
        "Internal": n["Internal"].as_bool().unwrap_or(false).to_string(),
        "Labels": labels.join(","), "CreatedAt": s("Created"),
    })
}

async fn ls(client: Client, args: LsArgs) -> Result<()> {
    let mut params = Vec::new();
    if !args.filter.is_empty() {
        let filters = filters_json(&args.filter).map_err(|e| with_code(1, e))?;
        params.push(("filters", filters));
    }
    let list: Value = client
        .get_json(&format!("/networks{}", query(&params)))
        .await?;
    let format = match (&args.quiet, &args.format) {
        (true, _) => "{{.ID}}".to_string(),
        (false, Some(f)) if f == "table" => DEFAULT_FORMAT.to_string(),
        (false, Some(f)) => f.clone(),
        (false, None) => DEFAULT_FORMAT.to_string(),
    };
    let format = Format::parse(&format, &header_of).map_err(|e| with_code(1, e))?;
    let mut nets: Vec<Value> = list.as_array().cloned().unwrap_or_default();
    nets.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let rows: Vec<Value> = nets.iter().map(|n| row(n, args.no_trunc)).collect();
    print!("{}", format.render(&rows).map_err(|e| with_code(1, e))?);
    Ok(())
}

async fn inspect(client: Client, args: InspectArgs) -> Result<()> {
    let template = match args.format.as_deref() {
        None | Some("json") => None,
        Some(f) => Some(Template::parse(&f.replace("\\t", "\t")).map_err(|e| with_code(1, e))?),
    };
    let mut found = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match client.get_bytes(&format!("/networks/{}", seg(name))).await {
            Ok(raw) => found.push(raw),
            Err(e) if e.status().is_some() => {
                eprintln!("{e}");
                failed = true;
            }
            Err(e) => return Err(with_code(1, e)),
        }
    }
    match &template {
        Some(t) => {
            for raw in &found {
                let value: Value = serde_json::from_slice(raw)?;
                println!("{}", t.render(&value).map_err(|e| with_code(1, e))?);
            }
        }
        None => {
            let parts: Vec<String> = found
                .iter()
                .map(|raw| String::from_utf8_lossy(raw).trim().to_string())
                .collect();
            println!("{}", indent_json(&format!("[{}]", parts.join(","))));
        }
    }
    if failed {
        return Err(exit(1));
    }
    Ok(())
}

async fn rm(client: Client, args: RmArgs) -> Result<()> {
    let mut failed = false;
    for name in &args.names {
        let path = format!("/networks/{}", seg(name));
        match client.call(Method::DELETE, &path, RequestBody::Empty).await {
            Ok(_) => println!("{name}"),
            Err(e) if args.force && e.status() == Some(404) => {}
            Err(e) if e.status().is_some() => {
                eprintln!("{e}");
                failed = true;
            }
            Err(e) => return Err(with_code(1, e)),
        }
    }
    if failed {
        return Err(exit(1));
    }
    Ok(())
}

async fn connect(client: Client, args: ConnectArgs) -> Result<()> {
    let mut endpoint = json!({});
    if !args.alias.is_empty() {
        endpoint["Aliases"] = json!(args.alias);
    }
    if let Some(ip) = &args.ip {
        endpoint["IPAMConfig"] = json!({"IPv4Address": ip});
    }
    let body = json!({"Container": args.container, "EndpointConfig": endpoint});
    let path = format!("/networks/{}/connect", seg(&args.network));
    client
        .call(Method::POST, &path, RequestBody::json(&body))
        .await?;
    Ok(())
}

async fn disconnect(client: Client, args: DisconnectArgs) -> Result<()> {
    let body = json!({"Container": args.container, "Force": args.force});
    let path = format!("/networks/{}/disconnect", seg(&args.network));
    client
        .call(Method::POST, &path, RequestBody::json(&body))
        .await?;
    Ok(())
}

async fn prune(client: Client, args: PruneArgs) -> Result<()> {
    if !args.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )?
    {
        return Ok(());
    }
    let mut params = Vec::new();
    if !args.filter.is_empty() {
        let filters = filters_json(&args.filter).map_err(|e| with_code(1, e))?;
        params.push(("filters", filters));
    }
    let report: Value = client
        .post_json(
            &format!("/networks/prune{}", query(&params)),
            RequestBody::Empty,
        )
        .await?;
    let deleted = report["NetworksDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for name in &deleted {
            println!("{}", name.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// docker's prompt: anything but y/Y (and a closed stdin) is no.
fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(matches!(line.trim(), "y" | "Y"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_has_dockers_columns() {
        let f = Format::parse(DEFAULT_FORMAT, &header_of).unwrap();
        let n = json!({"Name": "appnet", "Id": "0123456789abcdef0123", "Driver": "bridge",
                       "Scope": "local"});
        let out = f.render(&[row(&n, false)]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["0123456789ab", "appnet", "bridge", "local"]
        );
    }

    #[test]
    fn ipam_flags_pair_in_order() {
        let args = CreateArgs {
            driver: "bridge".into(),
            internal: false,
            attachable: false,
            label: Vec::new(),
            opt: Vec::new(),
            subnet: vec!["10.1.0.0/16".into()],
            gateway: vec!["10.1.0.254".into()],
            ip_range: Vec::new(),
            ipam_driver: "default".into(),
            ipv6: false,
            name: "n".into(),
        };
        let c = ipam_config(&args).unwrap();
        assert_eq!(
            c,
            [json!({"Subnet": "10.1.0.0/16", "Gateway": "10.1.0.254"})]
        );
        let bad = CreateArgs {
            subnet: Vec::new(),
            ..args
        };
        assert!(ipam_config(&bad).is_err());
    }
}
