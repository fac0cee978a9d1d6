//! `gorae volume create|ls|inspect|rm|prune`: the daemon's volumes, with docker's flags,
//! columns (DRIVER, VOLUME NAME), messages and exit codes.

use std::collections::BTreeMap;
use std::io::{BufRead as _, Write as _};

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use gorae_api::client::{query, Client, Method, RequestBody};
use serde_json::{json, Value};

use crate::cli::Global;
use crate::container_cmd::template::{indent_json, Format, Template};
use crate::container_cmd::{self, block_on, exit, human_size, seg, with_code};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm(RmArgs),
    /// Remove unused local volumes.
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Specify volume driver name.
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Set metadata for a volume (key=value).
    #[arg(long)]
    pub label: Vec<String>,
    /// Set driver specific options (key=value).
    #[arg(short, long = "opt")]
    pub opt: Vec<String>,
    /// The volume's name (a random one without).
    pub name: Option<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display volume names.
    #[arg(short, long)]
    pub quiet: bool,
    /// Provide filter values (e.g. 'dangling=true').
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a
    /// Go template.
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template: 'json', or a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes.
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones.
    #[arg(short, long)]
    pub all: bool,
    /// Provide filter values (e.g. 'label=<label>').
    #[arg(long = "filter")]
    pub filter: Vec<String>,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

pub fn dispatch(g: &Global, command: VolumeCommand) -> Result<()> {
    let client = container_cmd::client(g)?;
    block_on(async move {
        match command {
            VolumeCommand::Create(a) => create(client, a).await,
            VolumeCommand::Ls(a) => ls(client, a).await,
            VolumeCommand::Inspect(a) => inspect(client, a).await,
            VolumeCommand::Rm(a) => rm(client, a).await,
            VolumeCommand::Prune(a) => prune(client, a).await,
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

async fn create(client: Client, args: CreateArgs) -> Result<()> {
    let body = json!({
        "Name": args.name.unwrap_or_default(),
        "Driver": args.driver,
        "DriverOpts": pairs(&args.opt, "option").map_err(|e| with_code(1, e))?,
        "Labels": pairs(&args.label, "label").map_err(|e| with_code(1, e))?,
    });
    let volume: Value = client
        .post_json("/volumes/create", RequestBody::json(&body))
        .await?;
    println!("{}", volume["Name"].as_str().unwrap_or_default());
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

const DEFAULT_FORMAT: &str = "table {{.Driver}}\t{{.Name}}";

fn header_of(field: &str) -> String {
    match field {
        "Name" => "VOLUME NAME".into(),
        "Mountpoint" => "MOUNTPOINT".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

/// The fields docker's volume formatter offers for one volume.
fn row(v: &Value) -> Value {
    let mut labels: Vec<String> = v["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, val)| format!("{k}={}", val.as_str().unwrap_or_default()))
        .collect();
    labels.sort();
    let s = |key: &str| v[key].as_str().unwrap_or_default().to_string();
    json!({
        "Availability": "N/A", "Driver": s("Driver"), "Group": "N/A",
        "Labels": labels.join(","), "Links": "N/A", "Mountpoint": s("Mountpoint"),
        "Name": s("Name"), "Scope": s("Scope"), "Size": "N/A", "Status": "N/A",
        "CreatedAt": s("CreatedAt"),
    })
}

async fn ls(client: Client, args: LsArgs) -> Result<()> {
    let mut params = Vec::new();
    if !args.filter.is_empty() {
        let filters = filters_json(&args.filter).map_err(|e| with_code(1, e))?;
        params.push(("filters", filters));
    }
    let list: Value = client
        .get_json(&format!("/volumes{}", query(&params)))
        .await?;
    let format = match (&args.quiet, &args.format) {
        (true, _) => "{{.Name}}".to_string(),
        (false, Some(f)) if f == "table" => DEFAULT_FORMAT.to_string(),
        (false, Some(f)) => f.clone(),
        (false, None) => DEFAULT_FORMAT.to_string(),
    };
    let format = Format::parse(&format, &header_of).map_err(|e| with_code(1, e))?;
    let mut volumes: Vec<Value> = list["Volumes"].as_array().cloned().unwrap_or_default();
    volumes.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    let rows: Vec<Value> = volumes.iter().map(row).collect();
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
        match client.get_bytes(&format!("/volumes/{}", seg(name))).await {
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
    let q = if args.force { "?force=1" } else { "" };
    let mut failed = false;
    for name in &args.names {
        let path = format!("/volumes/{}{q}", seg(name));
        match client.call(Method::DELETE, &path, RequestBody::Empty).await {
            Ok(_) => println!("{name}"),
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

async fn prune(client: Client, args: PruneArgs) -> Result<()> {
    let warning = if args.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !args.force && !confirm(warning)? {
        return Ok(());
    }
    let mut filters = args.filter.clone();
    if args.all {
        filters.push("all=true".into());
    }
    let mut params = Vec::new();
    if !filters.is_empty() {
        let filters = filters_json(&filters).map_err(|e| with_code(1, e))?;
        params.push(("filters", filters));
    }
    let report: Value = client
        .post_json(
            &format!("/volumes/prune{}", query(&params)),
            RequestBody::Empty,
        )
        .await?;
    let deleted = report["VolumesDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for name in &deleted {
            println!("{}", name.as_str().unwrap_or_default());
        }
        println!();
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size(space));
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
        let v = json!({"Name": "data", "Driver": "local", "Labels": {"b": "2", "a": "1"}});
        let out = f.render(&[row(&v)]).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["DRIVER", "VOLUME", "NAME"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["local", "data"]
        );
        assert_eq!(row(&v)["Labels"], "a=1,b=2");
    }

    #[test]
    fn options_and_labels() {
        let labels = pairs(&["a=1".into(), "flag".into()], "label").unwrap();
        assert_eq!(labels["flag"], "");
        assert!(pairs(&["nokey".into()], "option").is_err());
        assert_eq!(
            filters_json(&["dangling=true".into()]).unwrap(),
            r#"{"dangling":["true"]}"#
        );
    }
}
