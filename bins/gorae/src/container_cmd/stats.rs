//! `stats`: docker's columns (CONTAINER ID, NAME, CPU %, MEM USAGE / LIMIT, MEM %, NET I/O,
//! BLOCK I/O, PIDS), computed from the daemon's stats JSON the way the docker CLI computes
//! them; `--no-stream` prints once, otherwise the table is redrawn as samples arrive.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use gorae_api::client::{Client, Method, RequestBody};
use serde_json::Value;

use super::template::Format;
use super::{bytes_size, human_size3, seg};

#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a Go
    /// template.
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

fn header_of(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "Container" => "CONTAINER",
        "Name" => "NAME",
        "CPUPerc" => "CPU %",
        "MemUsage" => "MEM USAGE / LIMIT",
        "MemPerc" => "MEM %",
        "NetIO" => "NET I/O",
        "BlockIO" => "BLOCK I/O",
        "PIDs" => "PIDS",
        other => return other.to_uppercase(),
    }
    .to_string()
}

fn num(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer).and_then(Value::as_f64).unwrap_or(0.0)
}

/// docker's calculateCPUPercentUnix.
pub fn cpu_percent(s: &Value) -> f64 {
    let cpu_delta =
        num(s, "/cpu_stats/cpu_usage/total_usage") - num(s, "/precpu_stats/cpu_usage/total_usage");
    let system_delta =
        num(s, "/cpu_stats/system_cpu_usage") - num(s, "/precpu_stats/system_cpu_usage");
    let mut online = num(s, "/cpu_stats/online_cpus");
    if online == 0.0 {
        online = s
            .pointer("/cpu_stats/cpu_usage/percpu_usage")
            .and_then(Value::as_array)
            .map_or(0, Vec::len) as f64;
    }
    if system_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / system_delta * online * 100.0
    } else {
        0.0
    }
}

/// docker's calculateMemUsageUnixNoCache: usage less the inactive file cache.
pub fn memory_usage(s: &Value) -> f64 {
    let usage = num(s, "/memory_stats/usage");
    let stats = &s["memory_stats"]["stats"];
    for key in ["total_inactive_file", "inactive_file"] {
        if let Some(cache) = stats.get(key).and_then(Value::as_f64) {
            if cache < usage {
                return usage - cache;
            }
        }
    }
    usage
}

fn network_io(s: &Value) -> (f64, f64) {
    let mut rx = 0.0;
    let mut tx = 0.0;
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += n["rx_bytes"].as_f64().unwrap_or(0.0);
        tx += n["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    (rx, tx)
}

fn block_io(s: &Value) -> (f64, f64) {
    let mut read = 0.0;
    let mut write = 0.0;
    let entries = s["blkio_stats"]["io_service_bytes_recursive"].as_array();
    for e in entries.into_iter().flatten() {
        let value = e["value"].as_f64().unwrap_or(0.0);
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += value,
            Some("write") => write += value,
            _ => {}
        }
    }
    (read, write)
}

/// The fields of one container's row.
pub fn row(id: &str, s: &Value, trunc: bool) -> Value {
    let usage = memory_usage(s);
    let limit = num(s, "/memory_stats/limit");
    let mem_percent = if limit != 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let (rx, tx) = network_io(s);
    let (read, write) = block_io(s);
    let name = s["name"].as_str().unwrap_or("").trim_start_matches('/');
    let id = if trunc {
        super::ps::short(id)
    } else {
        id.to_string()
    };
    serde_json::json!({
        "ID": id,
        "Container": id,
        "Name": if name.is_empty() { "--" } else { name },
        "CPUPerc": format!("{:.2}%", cpu_percent(s)),
        "MemUsage": format!("{} / {}", bytes_size(usage), bytes_size(limit)),
        "MemPerc": format!("{mem_percent:.2}%"),
        "NetIO": format!("{} / {}", human_size3(rx), human_size3(tx)),
        "BlockIO": format!("{} / {}", human_size3(read), human_size3(write)),
        "PIDs": format!("{}", num(s, "/pids_stats/current") as u64),
    })
}

async fn targets(client: &Client, args: &StatsArgs) -> Result<Vec<String>> {
    if !args.containers.is_empty() {
        return Ok(args.containers.clone());
    }
    let path = if args.all {
        "/containers/json?all=1"
    } else {
        "/containers/json"
    };
    let list: Vec<super::ps::Summary> = client.get_json(path).await?;
    Ok(list.into_iter().map(|c| c.id).collect())
}

pub async fn stats(client: Client, args: StatsArgs) -> Result<()> {
    let format = match args.format.as_deref() {
        None | Some("table") => DEFAULT_FORMAT.to_string(),
        Some(f) => f.to_string(),
    };
    let format = Format::parse(&format, &header_of)?;
    let names = targets(&client, &args).await?;
    let trunc = !args.no_trunc;
    if args.no_stream {
        let mut rows = Vec::new();
        for name in &names {
            let path = format!("/containers/{}/stats?stream=0", seg(name));
            let s: Value = client.get_json(&path).await?;
            let id = s["id"].as_str().unwrap_or(name).to_string();
            rows.push(row(&id, &s, trunc));
        }
        print!("{}", format.render(&rows)?);
        return Ok(());
    }
    stream_stats(&client, &names, &format, trunc).await
}

/// Live stats: one stream per container, the table redrawn every second until all end.
async fn stream_stats(
    client: &Client,
    names: &[String],
    format: &Format,
    trunc: bool,
) -> Result<()> {
    let latest: Arc<Mutex<BTreeMap<usize, Value>>> = Arc::default();
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (client, latest, name) = (client.clone(), latest.clone(), name.clone());
        tasks.push(tokio::spawn(async move {
            let path = format!("/containers/{}/stats?stream=1", seg(&name));
            let Ok(mut stream) = client
                .stream(Method::GET, &path, RequestBody::Empty, &[])
                .await
            else {
                return;
            };
            while let Ok(Some(s)) = stream.json::<Value>().await {
                let id = s["id"].as_str().unwrap_or(&name).to_string();
                if let Ok(mut map) = latest.lock() {
                    map.insert(i, row(&id, &s, trunc));
                }
            }
            if let Ok(mut map) = latest.lock() {
                map.remove(&i);
            }
        }));
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let rows: Vec<Value> = match latest.lock() {
            Ok(map) => map.values().cloned().collect(),
            Err(_) => break,
        };
        use std::io::{IsTerminal, Write};
        let mut out = std::io::stdout();
        if out.is_terminal() {
            // Clear the screen and redraw, as docker does on a terminal.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{}", format.render(&rows)?)?;
        out.flush()?;
        if tasks.iter().all(|t| t.is_finished()) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "name": "/web", "id": "0123456789abcdef0123",
            "cpu_stats": {"cpu_usage": {"total_usage": 400_000_000u64}, "system_cpu_usage": 10_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 200_000_000u64}, "system_cpu_usage": 8_000_000_000u64},
            "memory_stats": {"usage": 10_485_760u64, "limit": 104_857_600u64, "stats": {"inactive_file": 2_097_152u64}},
            "networks": {"eth0": {"rx_bytes": 1500, "tx_bytes": 500}, "eth1": {"rx_bytes": 500, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192}]},
            "pids_stats": {"current": 3}
        })
    }

    #[test]
    fn computes_like_docker() {
        let s = sample();
        // 0.2e9 / 2e9 * 2 CPUs * 100.
        assert!((cpu_percent(&s) - 20.0).abs() < 1e-9);
        assert_eq!(memory_usage(&s), 8_388_608.0);
        let r = row("0123456789abcdef0123", &s, true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Name"], "web");
        assert_eq!(r["CPUPerc"], "20.00%");
        assert_eq!(r["MemUsage"], "8MiB / 100MiB");
        assert_eq!(r["MemPerc"], "8.00%");
        assert_eq!(r["NetIO"], "2kB / 500B");
        assert_eq!(r["BlockIO"], "4.1kB / 8.19kB");
        assert_eq!(r["PIDs"], "3");
    }

    #[test]
    fn no_previous_sample_is_zero_cpu() {
        let mut s = sample();
        s["precpu_stats"] = json!({});
        s["cpu_stats"]["system_cpu_usage"] = json!(0);
        assert_eq!(cpu_percent(&s), 0.0);
        let f = Format::parse(DEFAULT_FORMAT, &header_of).unwrap();
        let out = f.render(&[row("x", &s, true)]).unwrap();
        assert!(out.starts_with("CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O      BLOCK I/O        PIDS\n"), "{out}");
    }
}
