//! `ps`: the container list, with docker's columns, truncation, filters and `--format`.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;
use gorae_api::client::{query, Client};
use gorae_engine::types::MountPoint;
use serde::Deserialize;
use serde_json::{json, Value};

use super::template::Format;
use super::{go_time, human_size3, with_code};

#[derive(Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long = "last", allow_hyphen_values = true)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    pub latest: bool,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    pub size: bool,
    /// Filter output based on conditions provided (key=value).
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', or a
    /// Go template.
    #[arg(long)]
    pub format: Option<String>,
}

/// The list entry as the CLI reads it: like the engine's `ContainerSummary`, but every
/// field optional, so that any Docker-API daemon's answer reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Summary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<Value>,
    pub size_rw: Option<i64>,
    pub size_root_fs: Option<i64>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub network_settings: Value,
    pub mounts: Vec<MountPoint>,
}

const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// Docker's `filters` query value from `-f key=value` flags.
pub fn filters_json(filters: &[String]) -> Result<String> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        map.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(serde_json::to_string(&map)?)
}

pub fn header_of(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "LocalVolumes" => "LOCAL VOLUMES",
        other => return other.to_uppercase(),
    }
    .to_string()
}

pub async fn ps(client: Client, args: PsArgs) -> Result<()> {
    let mut params = Vec::new();
    if args.all {
        params.push(("all", "1".to_string()));
    }
    let limit = if args.latest { Some(1) } else { args.last };
    if let Some(n) = limit.filter(|n| *n > 0) {
        params.push(("limit", n.to_string()));
    }
    if args.size {
        params.push(("size", "1".into()));
    }
    if !args.filter.is_empty() {
        params.push((
            "filters",
            filters_json(&args.filter).map_err(|e| with_code(1, e))?,
        ));
    }
    let list: Vec<Summary> = client
        .get_json(&format!("/containers/json{}", query(&params)))
        .await?;
    let format = match (&args.quiet, &args.format) {
        (true, _) => "{{.ID}}".to_string(),
        (false, Some(f)) if f == "table" => DEFAULT_FORMAT.to_string(),
        (false, Some(f)) => f.clone(),
        (false, None) if args.size => format!("{DEFAULT_FORMAT}\t{{{{.Size}}}}"),
        (false, None) => DEFAULT_FORMAT.to_string(),
    };
    let format = Format::parse(&format, &header_of).map_err(|e| with_code(1, e))?;
    let rows: Vec<Value> = list.iter().map(|c| row(c, !args.no_trunc)).collect();
    print!("{}", format.render(&rows).map_err(|e| with_code(1, e))?);
    Ok(())
}

/// The fields docker's ps formatter offers for one container.
pub fn row(c: &Summary, trunc: bool) -> Value {
    let id = if trunc { short(&c.id) } else { c.id.clone() };
    let image = match c.image.strip_prefix("sha256:") {
        Some(hex) if trunc => short(hex),
        _ => c.image.clone(),
    };
    let command = if trunc {
        ellipsis(&c.command, 20)
    } else {
        c.command.clone()
    };
    let names: Vec<&str> = c
        .names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .filter(|n| !trunc || !n.contains('/'))
        .collect();
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .map(|m| {
            let name = m.name.clone().unwrap_or_default();
            if trunc {
                ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect();
    let networks: Vec<String> = c
        .network_settings
        .get("Networks")
        .and_then(Value::as_object)
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    // docker's: three digits, the virtual size only when known.
    let rw = human_size3(c.size_rw.unwrap_or(0) as f64);
    let size = match c.size_root_fs {
        Some(root) if root > 0 => format!("{rw} (virtual {})", human_size3(root as f64)),
        _ => rw,
    };
    json!({
        "ID": id,
        "Image": image,
        "Command": go_quote(&command),
        "CreatedAt": go_time(c.created),
        "RunningFor": crate::format::ago(Some(c.created)),
        "Platform": Value::Null,
        "Ports": ports(&c.ports),
        "State": c.state,
        "Status": c.status,
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "Networks": networks.join(","),
        "LocalVolumes": c.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
    })
}

/// `0.0.0.0:8080->80/tcp, 443/tcp` from the list's Ports entries.
fn ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|p| {
            let private = p["PrivatePort"].as_i64().unwrap_or(0);
            let kind = p["Type"].as_str().unwrap_or("tcp");
            match p["PublicPort"].as_i64() {
                Some(public) if public > 0 => {
                    let ip = p["IP"].as_str().unwrap_or("");
                    format!("{ip}:{public}->{private}/{kind}")
                }
                _ => format!("{private}/{kind}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// docker's Ellipsis: at most `max` characters, the last one "…" when cut.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Go's strconv.Quote.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            id: "0123456789abcdef".repeat(4),
            names: vec!["/web".into()],
            image: "busybox".into(),
            command: "sh -c 'while true; do sleep 1; done'".into(),
            created: 0,
            state: "running".into(),
            status: "Up 5 seconds".into(),
            labels: [("a".to_string(), "1".to_string())].into(),
            ..Summary::default()
        }
    }

    #[test]
    fn rows_truncate_like_docker() {
        let r = row(&summary(), true);
        assert_eq!(r["ID"], "0123456789ab");
        assert_eq!(r["Command"], "\"sh -c 'while true; …\"");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Labels"], "a=1");
        assert_eq!(r["CreatedAt"], "1970-01-01 00:00:00 +0000 UTC");
        let r = row(&summary(), false);
        assert_eq!(r["ID"].as_str().unwrap().len(), 64);
        assert_eq!(r["Command"], "\"sh -c 'while true; do sleep 1; done'\"");
    }

    #[test]
    fn default_table() {
        let f = Format::parse(DEFAULT_FORMAT, &header_of).unwrap();
        let out = f.render(&[row(&summary(), true)]).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next().unwrap(),
            "CONTAINER ID   IMAGE     COMMAND                  CREATED        STATUS         PORTS     NAMES"
        );
        let line = lines.next().unwrap();
        assert!(
            line.starts_with("0123456789ab   busybox   \"sh -c 'while true; …\"   "),
            "{line}"
        );
        assert!(line.ends_with("Up 5 seconds             web"), "{line}");
    }

    #[test]
    fn custom_formats() {
        let f = Format::parse("{{.ID}} {{.Names}} {{.Status}}", &header_of).unwrap();
        assert_eq!(
            f.render(&[row(&summary(), true)]).unwrap(),
            "0123456789ab web Up 5 seconds\n"
        );
        let f = Format::parse(r#"{{.Label "a"}}"#, &header_of).unwrap();
        assert_eq!(f.render(&[row(&summary(), true)]).unwrap(), "1\n");
        let f = Format::parse("json", &header_of).unwrap();
        let line = f.render(&[row(&summary(), true)]).unwrap();
        let v: Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["Names"], "web");
        assert_eq!(
            filters_json(&["status=exited".into(), "label=a=1".into()]).unwrap(),
            r#"{"label":["a=1"],"status":["exited"]}"#
        );
    }
}
