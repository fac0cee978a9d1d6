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
    let mut out = String::from("Server:\n");
    out.push_str(&format!(" Containers: {}\n", n(&info, "Containers")));
    for (label, key) in [
        ("Running", "ContainersRunning"),
        ("Paused", "ContainersPaused"),
        ("Stopped", "ContainersStopped"),
    ] {
        out.push_str(&format!("  {label}: {}\n", n(&info, key)));
    }
    out.push_str(&format!(" Images: {}\n", n(&info, "Images")));
    for (label, key) in [
        ("Server Version", "ServerVersion"),
        ("Storage Driver", "Driver"),
        ("Logging Driver", "LoggingDriver"),
        ("Cgroup Driver", "CgroupDriver"),
        ("Cgroup Version", "CgroupVersion"),
        ("Default Runtime", "DefaultRuntime"),
        ("Kernel Version", "KernelVersion"),
        ("Operating System", "OperatingSystem"),
        ("OSType", "OSType"),
        ("Architecture", "Architecture"),
    ] {
        if !s(&info, key).is_empty() {
            out.push_str(&format!(" {label}: {}\n", s(&info, key)));
        }
    }
    out.push_str(&format!(" CPUs: {}\n", n(&info, "NCPU")));
    out.push_str(&format!(
        " Total Memory: {}\n",
        bytes_size(n(&info, "MemTotal") as f64)
    ));
    for (label, key) in [
        ("Name", "Name"),
        ("ID", "ID"),
        ("Docker Root Dir", "DockerRootDir"),
    ] {
        out.push_str(&format!(" {label}: {}\n", s(&info, key)));
    }
    out.push_str(&format!(
        " Debug Mode: {}\n",
        info["Debug"].as_bool().unwrap_or(false)
    ));
    for w in info["Warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("\n{}", w.as_str().unwrap_or_default()));
    }
    print!("{out}");
    Ok(())
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
        "Client:\n Version:           {}\n API version:       {API_VERSION}\n OS/Arch:           linux/{arch}",
        env!("CARGO_PKG_VERSION")
    );
    let server = server.map_err(|e| {
        println!();
        with_code(1, e)
    })?;
    let os_arch = format!("{}/{}", s(&server, "Os"), s(&server, "Arch"));
    println!("\nServer:\n Engine:");
    println!("  Version:          {}", s(&server, "Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s(&server, "ApiVersion"),
        s(&server, "MinAPIVersion")
    );
    if !s(&server, "GitCommit").is_empty() {
        println!("  Git commit:       {}", s(&server, "GitCommit"));
    }
    if !s(&server, "BuildTime").is_empty() {
        println!("  Built:            {}", s(&server, "BuildTime"));
    }
    println!("  OS/Arch:          {os_arch}");
    println!(
        "  Experimental:     {}",
        server["Experimental"].as_bool().unwrap_or(false)
    );
    Ok(())
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
