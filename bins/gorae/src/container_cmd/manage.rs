//! The commands that act on containers by name and print little: stop, restart, kill, rm,
//! pause, unpause, wait, rename, update, top, port, inspect, container prune. Like docker's,
//! the multi-container ones go on after a failure, print each error, and exit 1.

use std::io::{BufRead, Write};

use anyhow::Result;
use clap::Args;
use gorae_api::client::{query, Client, ClientError, Method, RequestBody};
use gorae_engine::types::{UpdateRequest, UpdateResponse, WaitResponse};
use serde_json::Value;

use super::template::{indent_json, tabwrite_min, Template};
use super::{exit, human_size, message, parse, seg, with_code};

#[derive(Args)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct StopArgs {
    /// Signal to send to the container.
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container.
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_hyphen_values = true
    )]
    pub time: Option<i64>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    pub volumes: bool,
    /// Remove the specified link.
    #[arg(short, long)]
    pub link: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Only this kind of object (container, image or volume).
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
    /// `gorae inspect` (any object) rather than `gorae container inspect`.
    #[arg(skip)]
    pub any_object: bool,
}

#[derive(Args)]
pub struct TopArgs {
    pub container: String,
    /// ps options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

#[derive(Args)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (until=<timestamp>, label=<key>=<value>).
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// Memory limit.
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit.
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Limit CPU CFS quota.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU CFS period.
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable.
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// Runs `op` for each name, printing the name on success and the error otherwise; exit 1
/// if any failed, 125 at once if the daemon is unreachable.
async fn each<F, Fut>(names: &[String], print_name: bool, mut op: F) -> Result<()>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut failed = false;
    for name in names {
        match op(name.clone()).await {
            Ok(()) if print_name => println!("{name}"),
            Ok(()) => {}
            Err(e) => {
                if e.downcast_ref::<ClientError>()
                    .is_some_and(ClientError::is_connect)
                {
                    return Err(with_code(125, e));
                }
                eprintln!("{}", message(&e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(exit(1));
    }
    Ok(())
}

pub async fn stop(client: Client, args: StopArgs, op: &str) -> Result<()> {
    let mut params = Vec::new();
    if let Some(s) = &args.signal {
        params.push(("signal", s.clone()));
    }
    if let Some(t) = args.time {
        params.push(("t", t.to_string()));
    }
    let q = query(&params);
    each(&args.containers, true, |name| {
        let client = client.clone();
        let path = format!("/containers/{}/{op}{q}", seg(&name));
        async move {
            client.call(Method::POST, &path, RequestBody::Empty).await?;
            Ok(())
        }
    })
    .await
}

pub async fn kill(client: Client, args: KillArgs) -> Result<()> {
    let q = query(&[("signal", args.signal.clone())]);
    each(&args.containers, true, |name| {
        let client = client.clone();
        let path = format!("/containers/{}/kill{q}", seg(&name));
        async move {
            client.call(Method::POST, &path, RequestBody::Empty).await?;
            Ok(())
        }
    })
    .await
}

pub async fn rm(client: Client, args: RmArgs) -> Result<()> {
    let mut params = Vec::new();
    if args.force {
        params.push(("force", "1".to_string()));
    }
    if args.volumes {
        params.push(("v", "1".into()));
    }
    if args.link {
        params.push(("link", "1".into()));
    }
    let q = query(&params);
    each(&args.containers, true, |name| {
        let client = client.clone();
        let path = format!("/containers/{}{q}", seg(&name));
        async move {
            client
                .call(Method::DELETE, &path, RequestBody::Empty)
                .await?;
            Ok(())
        }
    })
    .await
}

/// pause, unpause.
pub async fn simple(client: Client, args: NamesArgs, op: &str) -> Result<()> {
    each(&args.containers, true, |name| {
        let client = client.clone();
        let path = format!("/containers/{}/{op}", seg(&name));
        async move {
            client.call(Method::POST, &path, RequestBody::Empty).await?;
            Ok(())
        }
    })
    .await
}

pub async fn wait(client: Client, args: NamesArgs) -> Result<()> {
    each(&args.containers, false, |name| {
        let client = client.clone();
        async move {
            let status: WaitResponse = client
                .post_json(
                    &format!("/containers/{}/wait", seg(&name)),
                    RequestBody::Empty,
                )
                .await?;
            println!("{}", status.status_code);
            Ok(())
        }
    })
    .await
}

pub async fn rename(client: Client, args: RenameArgs) -> Result<()> {
    let name = args.new_name.trim();
    if name.is_empty() || name == "/" {
        return Err(with_code(
            1,
            anyhow::anyhow!("Error: new name cannot be blank"),
        ));
    }
    let path = format!(
        "/containers/{}/rename{}",
        seg(&args.container),
        query(&[("name", name.to_string())])
    );
    client.call(Method::POST, &path, RequestBody::Empty).await?;
    Ok(())
}

impl UpdateArgs {
    fn to_request(&self) -> Result<UpdateRequest> {
        let mut req = UpdateRequest::default();
        let r = &mut req.resources;
        if let Some(m) = &self.memory {
            r.memory = parse::ram_in_bytes(m)?;
        }
        if let Some(m) = &self.memory_reservation {
            r.memory_reservation = parse::ram_in_bytes(m)?;
        }
        if let Some(s) = &self.memory_swap {
            r.memory_swap = if s == "-1" {
                -1
            } else {
                parse::ram_in_bytes(s)?
            };
        }
        if let Some(cpus) = self.cpus {
            r.nano_cpus = (cpus * 1e9).round() as i64;
        }
        r.cpu_shares = self.cpu_shares.unwrap_or(0);
        r.cpu_quota = self.cpu_quota.unwrap_or(0);
        r.cpu_period = self.cpu_period.unwrap_or(0);
        r.cpuset_cpus = self.cpuset_cpus.clone().unwrap_or_default();
        r.blkio_weight = self.blkio_weight.unwrap_or(0);
        r.pids_limit = self.pids_limit;
        if let Some(p) = &self.restart {
            req.restart_policy = Some(parse::restart_policy(p)?);
        }
        Ok(req)
    }
}

pub async fn update(client: Client, args: UpdateArgs) -> Result<()> {
    let req = args.to_request().map_err(|e| with_code(1, e))?;
    each(&args.containers, true, |name| {
        let client = client.clone();
        let body = RequestBody::json(&req);
        async move {
            let answer: UpdateResponse = client
                .post_json(&format!("/containers/{}/update", seg(&name)), body)
                .await?;
            for w in answer.warnings {
                eprintln!("WARNING: {w}");
            }
            Ok(())
        }
    })
    .await
}

pub async fn top(client: Client, args: TopArgs) -> Result<()> {
    let mut params = Vec::new();
    if !args.ps_args.is_empty() {
        params.push(("ps_args", args.ps_args.join(" ")));
    }
    let path = format!("/containers/{}/top{}", seg(&args.container), query(&params));
    let top: Value = client.get_json(&path).await?;
    let mut text = String::new();
    let cells = |row: &Value| -> String {
        row.as_array()
            .map(|r| {
                r.iter()
                    .map(|c| c.as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .unwrap_or_default()
    };
    text.push_str(&cells(&top["Titles"]));
    text.push('\n');
    for row in top["Processes"].as_array().into_iter().flatten() {
        text.push_str(&cells(row));
        text.push('\n');
    }
    print!("{}", tabwrite_min(&text, 20));
    Ok(())
}

pub async fn port(client: Client, args: PortArgs) -> Result<()> {
    let info: Value = client
        .get_json(&format!("/containers/{}/json", seg(&args.container)))
        .await?;
    let wanted = args.port.as_deref().map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut found = false;
    for (port, bindings) in &ports {
        if wanted.as_ref().is_some_and(|w| w != port) {
            continue;
        }
        for b in bindings.as_array().into_iter().flatten() {
            found = true;
            let ip = b["HostIp"].as_str().unwrap_or("0.0.0.0");
            let host_port = b["HostPort"].as_str().unwrap_or("");
            match &wanted {
                Some(_) => println!("{ip}:{host_port}"),
                None => println!("{port} -> {ip}:{host_port}"),
            }
        }
    }
    if let (Some(w), false) = (&wanted, found) {
        return Err(with_code(
            1,
            anyhow::anyhow!(
                "Error: No public port '{w}' published for {}",
                args.container
            ),
        ));
    }
    Ok(())
}

pub async fn prune(client: Client, args: PruneArgs) -> Result<()> {
    if !args.force && !confirm("WARNING! This will remove all stopped containers.")? {
        return Ok(());
    }
    let mut params = Vec::new();
    if !args.filter.is_empty() {
        params.push(("filters", super::ps::filters_json(&args.filter)?));
    }
    let report: Value = client
        .post_json(
            &format!("/containers/prune{}", query(&params)),
            RequestBody::Empty,
        )
        .await?;
    let deleted = report["ContainersDeleted"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &deleted {
            println!("{}", id.as_str().unwrap_or_default());
        }
        println!();
    }
    let space = report["SpaceReclaimed"].as_f64().unwrap_or(0.0);
    println!("Total reclaimed space: {}", human_size(space));
    Ok(())
}

/// docker's prompt: anything but y/Y (and a closed stdin) is no.
pub fn confirm(warning: &str) -> Result<bool> {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    // A closed or unreadable stdin answers no.
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(matches!(line.trim(), "y" | "Y"))
}

/// Docker's inspect: the JSON array of the objects found (in the daemon's own field order,
/// laid out as Go's MarshalIndent), or `-f` applied to each; "Error: No such object: x"
/// for each name not found.
pub async fn inspect(client: Client, args: InspectArgs) -> Result<()> {
    let template = match &args.format {
        Some(f) => Some(Template::parse(&f.replace("\\t", "\t")).map_err(|e| with_code(1, e))?),
        None => None,
    };
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for name in &args.names {
        match inspect_one(&client, &args, name).await {
            Ok(Some(raw)) => found.push(raw),
            Ok(None) => errors.push(if args.any_object {
                format!("Error: No such object: {name}")
            } else {
                format!("Error response from daemon: No such container: {name}")
            }),
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
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        return Err(exit(1));
    }
    Ok(())
}

async fn inspect_one(client: &Client, args: &InspectArgs, name: &str) -> Result<Option<Vec<u8>>> {
    let kind = args.kind.as_deref();
    if kind.is_none() || kind == Some("container") {
        let size = if args.size { "?size=1" } else { "" };
        match client
            .get_bytes(&format!("/containers/{}/json{size}", seg(name)))
            .await
        {
            Ok(raw) => return Ok(Some(raw.to_vec())),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if args.any_object && (kind.is_none() || kind == Some("image")) {
        match client
            .get_bytes(&format!("/images/{}/json", seg(name)))
            .await
        {
            Ok(raw) => return Ok(Some(raw.to_vec())),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if args.any_object && (kind.is_none() || kind == Some("volume")) {
        match client.get_bytes(&format!("/volumes/{}", seg(name))).await {
            Ok(raw) => return Ok(Some(raw.to_vec())),
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        u: UpdateArgs,
    }

    #[test]
    fn update_flags() {
        let t = T::try_parse_from([
            "update",
            "-m",
            "64m",
            "--cpus",
            "1.5",
            "--pids-limit",
            "-1",
            "--restart",
            "on-failure:2",
            "c1",
        ])
        .unwrap();
        let req = t.u.to_request().unwrap();
        assert_eq!(req.resources.memory, 64 << 20);
        assert_eq!(req.resources.nano_cpus, 1_500_000_000);
        assert_eq!(req.resources.pids_limit, Some(-1));
        assert_eq!(req.restart_policy.unwrap().maximum_retry_count, 2);
        let wire = serde_json::to_value(t.u.to_request().unwrap()).unwrap();
        assert_eq!(wire["Memory"], 67108864);
    }
}
