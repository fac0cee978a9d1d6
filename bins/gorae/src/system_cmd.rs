//! `info`, `version` and `system df|info|events|prune`: the daemon's view of itself, printed
//! as docker prints it.

use anyhow::Result;
use clap::{Args, Subcommand};
use gorae_api::client::{Client, API_VERSION};
use serde_json::Value;

use crate::cli::Global;
use crate::container_cmd::template::{tabwrite, Template};
use crate::container_cmd::{self, block_on, bytes_size, human_size, with_code};

#[derive(Subcommand)]
pub enum Command {
    /// Display system-wide information.
    Info(FormatArgs),
    /// Show the gorae version information.
    Version(FormatArgs),
    /// Manage gorae.
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand)]
pub enum SystemCommand {
    /// Show gorae disk usage.
    Df(FormatArgs),
    /// Display system-wide information.
    Info(FormatArgs),
}

#[derive(Args)]
pub struct FormatArgs {
    /// Format the output using the given Go template, or 'json'.
    #[arg(short, long)]
    pub format: Option<String>,
}

pub fn dispatch(g: &Global, command: Command) -> Result<()> {
    let client = container_cmd::client(g)?;
    match command {
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => block_on(info(client, a)),
        Command::Version(a) => block_on(version(client, a)),
        Command::System(SystemCommand::Df(a)) => block_on(df(client, a)),
    }
}

fn render(format: &str, value: &Value) -> Result<String> {
    if format == "json" {
        return Ok(serde_json::to_string(value)?);
    }
    Template::parse(&format.replace("\\t", "\t"))?.render(value)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

async fn info(client: Client, args: FormatArgs) -> Result<()> {
    let info: Value = client
        .get_json("/info")
        .await
        .map_err(|e| with_code(1, e))?;
    if let Some(f) = &args.format {
        println!("{}", render(f, &info)?);
        return Ok(());
    }
    println!(
        "Client:\n Version:    {}\n Context:    default\n Debug Mode: false\n",
        env!("CARGO_PKG_VERSION")
    );
    print!("{}", server_info(&info));
    for w in info["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or_default());
    }
    Ok(())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// The "Server:" part of `info`, in docker's order and words.
pub fn server_info(info: &Value) -> String {
    let mut out = String::from("Server:\n");
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(" Containers: {}", n(info, "Containers")));
    for (label, key) in [
        ("Running", "ContainersRunning"),
        ("Paused", "ContainersPaused"),
        ("Stopped", "ContainersStopped"),
    ] {
        line(format!("  {label}: {}", n(info, key)));
    }
    line(format!(" Images: {}", n(info, "Images")));
    line(format!(" Server Version: {}", s(info, "ServerVersion")));
    line(format!(" Storage Driver: {}", s(info, "Driver")));
    for pair in info["DriverStatus"].as_array().into_iter().flatten() {
        line(format!("  {}: {}", s_at(pair, 0), s_at(pair, 1)));
    }
    line(format!(" Logging Driver: {}", s(info, "LoggingDriver")));
    line(format!(" Cgroup Driver: {}", s(info, "CgroupDriver")));
    line(format!(" Cgroup Version: {}", s(info, "CgroupVersion")));
    line(" Plugins:".into());
    for kind in ["Volume", "Network", "Log"] {
        line(format!(
            "  {kind}: {}",
            strings(&info["Plugins"][kind]).join(" ")
        ));
    }
    let swarm = info["Swarm"]["LocalNodeState"]
        .as_str()
        .unwrap_or("inactive");
    line(format!(" Swarm: {swarm}"));
    let mut runtimes: Vec<&String> = info["Runtimes"]
        .as_object()
        .map_or(Vec::new(), |m| m.keys().collect());
    runtimes.sort();
    let runtimes: Vec<&str> = runtimes.into_iter().map(String::as_str).collect();
    line(format!(" Runtimes: {}", runtimes.join(" ")));
    line(format!(" Default Runtime: {}", s(info, "DefaultRuntime")));
    line(format!(" Init Binary: {}", s(info, "InitBinary")));
    for (label, key) in [
        ("containerd", "ContainerdCommit"),
        ("runc", "RuncCommit"),
        ("init", "InitCommit"),
    ] {
        line(format!(" {label} version: {}", s(&info[key], "ID")));
    }
    host_info(info, &mut out);
    out
}

/// The second half of the "Server:" part: security, the host, registries.
fn host_info(info: &Value, out: &mut String) {
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let security = strings(&info["SecurityOptions"]);
    if !security.is_empty() {
        line(" Security Options:".into());
        for option in security {
            for (i, field) in option.split(',').enumerate() {
                let (k, v) = field.split_once('=').unwrap_or(("name", field));
                if i == 0 && k == "name" {
                    line(format!("  {v}"));
                } else {
                    line(format!("   {}: {v}", super_title(k)));
                }
            }
        }
    }
    for (label, key) in [
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
    ] {
        line(format!(" {label}: {}", s(info, key)));
    }
    line(format!(" CPUs: {}", n(info, "NCPU")));
    line(format!(
        " Total Memory: {}",
        bytes_size(n(info, "MemTotal") as f64)
    ));
    line(format!(" Name: {}", s(info, "Name")));
    line(format!(" ID: {}", s(info, "ID")));
    line(format!(" Docker Root Dir: {}", s(info, "DockerRootDir")));
    line(format!(
        " Debug Mode: {}",
        info["Debug"].as_bool().unwrap_or(false)
    ));
    for (label, key) in [
        ("HTTP Proxy", "HttpProxy"),
        ("HTTPS Proxy", "HttpsProxy"),
        ("No Proxy", "NoProxy"),
    ] {
        if !s(info, key).is_empty() {
            line(format!(" {label}: {}", s(info, key)));
        }
    }
    let labels = strings(&info["Labels"]);
    if !labels.is_empty() {
        line(" Labels:".into());
        labels.iter().for_each(|l| line(format!("  {l}")));
    }
    line(format!(
        " Experimental: {}",
        info["ExperimentalBuild"].as_bool().unwrap_or(false)
    ));
    registries(&info["RegistryConfig"], &mut line);
    let live = info["LiveRestoreEnabled"].as_bool().unwrap_or(false);
    line(format!(" Live Restore Enabled: {live}"));
    line(String::new());
}

/// Insecure registries and mirrors, as `info` lists them.
fn registries(registry: &Value, line: &mut impl FnMut(String)) {
    let mut insecure: Vec<String> = registry["IndexConfigs"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .filter(|c| c["Secure"].as_bool() == Some(false) && c["Official"].as_bool() != Some(true))
        .map(|c| s(c, "Name").to_string())
        .collect();
    insecure.extend(strings(&registry["InsecureRegistryCIDRs"]));
    if !insecure.is_empty() {
        line(" Insecure Registries:".into());
        insecure.iter().for_each(|r| line(format!("  {r}")));
    }
    let mirrors = strings(&registry["Mirrors"]);
    if !mirrors.is_empty() {
        line(" Registry Mirrors:".into());
        mirrors.iter().for_each(|m| line(format!("  {m}")));
    }
}

fn s_at(v: &Value, i: usize) -> &str {
    v.get(i).and_then(Value::as_str).unwrap_or("")
}

/// `profile` → `Profile`, as docker titles security option keys.
fn super_title(key: &str) -> String {
    let mut chars = key.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn version(client: Client, args: FormatArgs) -> Result<()> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let client_part = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": arch,
    });
    let server = client.get_json::<Value>("/version").await;
    if let Some(f) = &args.format {
        let both = serde_json::json!({
            "Client": client_part,
            "Server": server.as_ref().ok(),
        });
        println!("{}", render(f, &both)?);
        return server.map(|_| ()).map_err(|e| with_code(1, e));
    }
    println!(
        "Client:\n Version:           {}\n API version:       {API_VERSION}\n OS/Arch:           linux/{arch}\n Context:           default",
        env!("CARGO_PKG_VERSION")
    );
    let server = server.map_err(|e| {
        println!();
        with_code(1, e)
    })?;
    print!("\n{}", server_version(&server));
    Ok(())
}

/// The "Server:" part of `version`: the engine, then any other components.
pub fn server_version(v: &Value) -> String {
    let platform = v["Platform"]["Name"].as_str().unwrap_or("");
    let mut out = format!("Server: {platform}").trim_end().to_string();
    out.push_str("\n Engine:\n");
    let field = |label: &str, value: &str| format!("  {:<18}{value}\n", format!("{label}:"));
    out.push_str(&field("Version", s(v, "Version")));
    let api = format!(
        "{} (minimum version {})",
        s(v, "ApiVersion"),
        s(v, "MinAPIVersion")
    );
    out.push_str(&field("API version", &api));
    out.push_str(&field("Go version", s(v, "GoVersion")));
    out.push_str(&field("Git commit", s(v, "GitCommit")));
    out.push_str(&field("Built", s(v, "BuildTime")));
    out.push_str(&field(
        "OS/Arch",
        &format!("{}/{}", s(v, "Os"), s(v, "Arch")),
    ));
    let experimental = v["Experimental"].as_bool().unwrap_or(false).to_string();
    out.push_str(&field("Experimental", &experimental));
    for c in v["Components"].as_array().into_iter().flatten() {
        if s(c, "Name") == "Engine" {
            continue;
        }
        out.push_str(&format!(" {}:\n", s(c, "Name")));
        out.push_str(&field("Version", s(c, "Version")));
        if let Some(commit) = c["Details"]["GitCommit"].as_str() {
            out.push_str(&field("GitCommit", commit));
        }
    }
    out
}

/// docker's "reclaimable" cell: the size, and its share of the total when there is one.
fn reclaimable(reclaimable: f64, total: f64) -> String {
    if total > 0.0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable),
            (reclaimable * 100.0 / total) as i64
        )
    } else {
        human_size(reclaimable)
    }
}

/// The rows of `system df` from the daemon's /system/df document.
pub fn df_rows(df: &Value) -> Vec<[String; 5]> {
    let list = |key: &str| df[key].as_array().cloned().unwrap_or_default();
    let images = list("Images");
    let containers = list("Containers");
    let volumes = list("Volumes");
    let cache = list("BuildCache");
    let active_images = images.iter().filter(|i| n(i, "Containers") > 0).count();
    // docker's: what images in use hold (less what they share) is not reclaimable; an
    // unknown shared size (-1) counts as nothing held.
    let used: f64 = images
        .iter()
        .filter(|i| n(i, "Containers") != 0 && n(i, "Size") != -1 && n(i, "SharedSize") != -1)
        .map(|i| (n(i, "Size") - n(i, "SharedSize")) as f64)
        .sum();
    let layers = df["LayersSize"]
        .as_f64()
        .unwrap_or_else(|| images.iter().map(|i| n(i, "Size").max(0) as f64).sum());
    let unused = (layers - used).max(0.0);
    let is_active = |c: &&Value| matches!(s(c, "State"), "running" | "paused" | "restarting");
    let running = containers.iter().filter(is_active).count();
    let container_size: f64 = containers.iter().map(|c| n(c, "SizeRw") as f64).sum();
    let stopped: f64 = containers
        .iter()
        .filter(|c| !is_active(c))
        .map(|c| n(c, "SizeRw") as f64)
        .sum();
    let volume_size: f64 = volumes
        .iter()
        .map(|v| v["UsageData"]["Size"].as_f64().unwrap_or(0.0).max(0.0))
        .sum();
    let cache_size: f64 = cache.iter().map(|c| n(c, "Size") as f64).sum();
    vec![
        [
            "Images".into(),
            images.len().to_string(),
            active_images.to_string(),
            human_size(layers),
            reclaimable(unused, layers),
        ],
        [
            "Containers".into(),
            containers.len().to_string(),
            running.to_string(),
            human_size(container_size),
            reclaimable(stopped, container_size),
        ],
        [
            "Local Volumes".into(),
            volumes.len().to_string(),
            "0".into(),
            human_size(volume_size),
            reclaimable(volume_size, volume_size),
        ],
        [
            "Build Cache".into(),
            cache.len().to_string(),
            "0".into(),
            human_size(cache_size),
            human_size(cache_size),
        ],
    ]
}

async fn df(client: Client, args: FormatArgs) -> Result<()> {
    let df: Value = client
        .get_json("/system/df")
        .await
        .map_err(|e| with_code(1, e))?;
    if let Some(f) = &args.format {
        for row in df_rows(&df) {
            let v = serde_json::json!({
                "Type": row[0], "TotalCount": row[1], "Active": row[2], "Size": row[3],
                "Reclaimable": row[4],
            });
            println!("{}", render(f, &v)?);
        }
        return Ok(());
    }
    let mut text = String::from("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n");
    for row in df_rows(&df) {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    print!("{}", tabwrite(&text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn version_and_info_like_docker() {
        let v = json!({"Version": "0.1.0", "ApiVersion": "1.51", "MinAPIVersion": "1.24",
            "Os": "linux", "Arch": "amd64", "Platform": {"Name": "gorae"},
            "Components": [{"Name": "Engine", "Version": "0.1.0"}]});
        assert_eq!(
            server_version(&v),
            "Server: gorae\n Engine:\n  Version:          0.1.0\n  API version:      1.51 (minimum version 1.24)\n  Go version:       \n  Git commit:       \n  Built:            \n  OS/Arch:          linux/amd64\n  Experimental:     false\n"
        );
        let info = json!({"Containers": 3, "ContainersRunning": 1, "DriverStatus": [["Backing Filesystem", "overlay"]],
            "SecurityOptions": ["name=seccomp,profile=builtin"], "Runtimes": {"runc": {}, "crun": {}},
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"]}, "MemTotal": 1073741824});
        let text = server_info(&info);
        for expected in [
            " Containers: 3\n  Running: 1\n",
            "  Backing Filesystem: overlay\n",
            " Runtimes: crun runc\n",
            " Security Options:\n  seccomp\n   Profile: builtin\n",
            " Total Memory: 1GiB\n",
            " Insecure Registries:\n  127.0.0.0/8\n Live Restore Enabled: false\n\n",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }

    #[test]
    fn df_like_docker() {
        let df = json!({
            "LayersSize": 4_260_000,
            "Images": [{"Size": 4_260_000, "SharedSize": 0, "Containers": 1},
                {"Size": 10, "SharedSize": -1, "Containers": 1}],
            "Containers": [{"State": "running", "SizeRw": 0}, {"State": "exited", "SizeRw": 12}],
            "Volumes": [], "BuildCache": []
        });
        let mut text = String::from("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n");
        for row in df_rows(&df) {
            text.push_str(&row.join("\t"));
            text.push('\n');
        }
        assert_eq!(
            tabwrite(&text),
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          2         2         4.26MB    0B (0%)\n\
             Containers      2         1         12B       12B (100%)\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
    }
}
