//! Inspect and list: the record in Docker's shapes (`GET /containers/{id}/json`,
//! `GET /containers/json` with all/limit/size and its filters), and the sizes of a
//! container's writable layer and root.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::container::{time, Container, Record, Status};
use crate::engine::{Engine, Filters, ListOptions};
use crate::error::{Error, Result};
use crate::spec;
use crate::types::{ContainerInspect, ContainerState, ContainerSummary, MountPoint};

impl Engine {
    pub(crate) async fn inspect_container(&self, id: &str, size: bool) -> Result<ContainerInspect> {
        let c = self.containers.get(id)?;
        let rec = c.record();
        let (size_rw, size_root_fs) = if size {
            let (rw, root) = self.sizes(&rec.id);
            (Some(rw), Some(root))
        } else {
            (None, None)
        };
        let dir = &c.dir;
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let exec_ids = self.execs.ids_of(&rec.id);
        let health = crate::health::shown(&c, rec.state.status);
        Ok(ContainerInspect {
            id: rec.id.clone(),
            created: time::format_ns(rec.created_ns),
            path: rec.path.clone(),
            args: rec.args.clone(),
            state: ContainerState {
                health,
                ..state_json(&rec)
            },
            image: rec.image_id.clone(),
            resolv_conf_path: file("resolv.conf"),
            hostname_path: file("hostname"),
            hosts_path: file("hosts"),
            log_path: if rec.host_config.log_config.kind == "none" {
                String::new()
            } else {
                self.log_path(&rec.id).to_string_lossy().into_owned()
            },
            name: format!("/{}", rec.name),
            restart_count: rec.state.restart_count,
            driver: "overlay2".into(),
            platform: "linux".into(),
            mount_label: String::new(),
            process_label: String::new(),
            app_armor_profile: String::new(),
            exec_ids: (!exec_ids.is_empty()).then_some(exec_ids),
            graph_driver: self.graph_driver(&c),
            mounts: mount_points(&rec),
            network_settings: self.network_settings_json(&rec),
            host_config: rec.host_config,
            config: rec.config,
            size_rw,
            size_root_fs,
        })
    }

    fn graph_driver(&self, c: &Container) -> Value {
        let Ok(snap) = self.images().store().snapshots.get(&c.id) else {
            return json!({"Name": "overlay2", "Data": null});
        };
        let lowers: Vec<String> = snap
            .lowers
            .iter()
            .map(|l| l.to_string_lossy().into_owned())
            .collect();
        json!({"Name": "overlay2", "Data": {
            "LowerDir": lowers.join(":"),
            "MergedDir": c.dir.join("bundle").join("rootfs"),
            "UpperDir": snap.upper,
            "WorkDir": snap.work,
        }})
    }

    pub(crate) async fn list_containers(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        let filter = ListFilter::new(&opts.filters, self)?;
        let all = opts.all
            || opts.limit.is_some_and(|l| l > 0)
            || opts.filters.contains_key("status")
            || opts.filters.contains_key("exited");
        let mut records: Vec<(Record, Option<String>)> = self
            .containers
            .all()
            .iter()
            .map(|c| {
                let rec = c.record();
                let health = crate::health::shown(c, rec.state.status).map(|h| h.status);
                (rec, health)
            })
            .collect();
        records.sort_by(|(a, _), (b, _)| b.created_ns.cmp(&a.created_ns).then(b.id.cmp(&a.id)));
        let mut out = Vec::new();
        let now = time::now_ns();
        for (rec, health) in records {
            if !all && !rec.state.status.is_live() && rec.state.status != Status::Restarting {
                continue;
            }
            if !filter.matches(&rec, health.as_deref()) {
                continue;
            }
            if opts.limit.is_some_and(|l| l > 0 && out.len() as i64 >= l) {
                break;
            }
            let mut summary = summary(&rec, health.as_deref(), now);
            summary.ports = self.summary_ports(&rec);
            summary.network_settings = json!({"Networks": self.summary_networks(&rec)});
            if opts.size {
                let (rw, root) = self.sizes(&rec.id);
                summary.size_rw = Some(rw);
                summary.size_root_fs = Some(root);
            }
            out.push(summary);
        }
        Ok(out)
    }

    /// (writable layer, writable layer + image layers), in bytes.
    pub(crate) fn sizes(&self, id: &str) -> (i64, i64) {
        let Ok(snap) = self.images().store().snapshots.get(id) else {
            return (0, 0);
        };
        let rw = dir_size(&snap.upper);
        let lower: i64 = snap.lowers.iter().map(|l| dir_size(l)).sum();
        (rw, rw + lower)
    }
}

fn state_json(rec: &Record) -> ContainerState {
    let s = &rec.state;
    let status = s.status;
    ContainerState {
        status: status.as_str().into(),
        running: matches!(
            status,
            Status::Running | Status::Paused | Status::Restarting
        ),
        paused: status == Status::Paused,
        restarting: status == Status::Restarting,
        oom_killed: s.oom_killed,
        dead: status == Status::Dead,
        pid: if status.is_live() {
            i64::from(s.pid)
        } else {
            0
        },
        exit_code: s.exit_code,
        error: s.error.clone(),
        started_at: time::format_ns(s.started_ns),
        finished_at: time::format_ns(s.finished_ns),
        health: None,
    }
}

fn summary(rec: &Record, health: Option<&str>, now: i64) -> ContainerSummary {
    let mut command = vec![rec.path.clone()];
    command.extend(rec.args.iter().cloned());
    ContainerSummary {
        id: rec.id.clone(),
        names: vec![format!("/{}", rec.name)],
        image: rec.config.image.clone(),
        image_id: rec.image_id.clone(),
        command: command.join(" "),
        created: rec.created_ns / 1_000_000_000,
        ports: Vec::new(),
        size_rw: None,
        size_root_fs: None,
        labels: spec::labels(&rec.config),
        state: rec.state.status.as_str().into(),
        status: status_text(rec, health, now),
        host_config: json!({"NetworkMode": rec.host_config.network_mode}),
        network_settings: json!({"Networks": networks(rec)}),
        mounts: mount_points(rec),
    }
}

/// "Up 5 minutes", "Up 3 seconds (Paused)", "Exited (0) 2 seconds ago", "Created"...
pub fn status_text(rec: &Record, health: Option<&str>, now: i64) -> String {
    let s = &rec.state;
    let ago = |t: i64| time::human_duration(now - t);
    match s.status {
        Status::Running => match health {
            Some("starting") => format!("Up {} (health: starting)", ago(s.started_ns)),
            Some(h) => format!("Up {} ({h})", ago(s.started_ns)),
            None => format!("Up {}", ago(s.started_ns)),
        },
        Status::Paused => format!("Up {} (Paused)", ago(s.started_ns)),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, ago(s.finished_ns)),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
        Status::Created => "Created".into(),
        Status::Exited if s.finished_ns == 0 => "Created".into(),
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, ago(s.finished_ns)),
    }
}

fn networks(rec: &Record) -> Value {
    let mode = match rec.host_config.network_mode.as_str() {
        "" | "default" => "bridge",
        m => m,
    };
    json!({ mode: {
        "IPAMConfig": null, "Links": null, "Aliases": null, "MacAddress": "",
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
        "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DriverOpts": null, "DNSNames": null
    }})
}

fn mount_points(rec: &Record) -> Vec<MountPoint> {
    let mut out = Vec::new();
    for bind in rec.host_config.binds.iter().flatten() {
        if let Some(b) = spec::parse_bind(bind).ok().filter(|b| !b.is_volume()) {
            out.push(MountPoint {
                kind: "bind".into(),
                source: b.source,
                destination: b.destination,
                mode: b.mode,
                rw: !b.read_only,
                propagation: b.propagation,
                ..Default::default()
            });
        }
    }
    for m in rec.host_config.mounts.iter().flatten() {
        if m.kind == "volume" {
            continue;
        }
        let propagation = m
            .bind_options
            .as_ref()
            .and_then(|o| o["Propagation"].as_str())
            .filter(|p| !p.is_empty())
            .unwrap_or(if m.kind == "bind" { "rprivate" } else { "" });
        out.push(MountPoint {
            kind: m.kind.clone(),
            source: m.source.clone(),
            destination: m.target.clone(),
            mode: String::new(),
            rw: !m.read_only,
            propagation: propagation.into(),
            ..Default::default()
        });
    }
    for v in &rec.volumes {
        out.push(MountPoint {
            kind: "volume".into(),
            name: Some(v.name.clone()),
            source: v.source.clone(),
            destination: v.destination.clone(),
            driver: Some("local".into()),
            mode: v.mode.clone(),
            rw: !v.read_only,
            propagation: String::new(),
        });
    }
    out
}

/// Apparent size of a tree, each inode once (hard links), symlinks not followed.
pub fn dir_size(dir: &Path) -> i64 {
    use std::os::unix::fs::MetadataExt as _;
    let mut seen = HashSet::new();
    let mut total = 0i64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if seen.insert((meta.dev(), meta.ino())) {
                total += meta.len() as i64;
            }
        }
    }
    total
}

/// The `filters` of `GET /containers/json`.
struct ListFilter<'a> {
    filters: &'a Filters,
    before_ns: Option<i64>,
    since_ns: Option<i64>,
    ancestors: Vec<String>,
}

const STATUSES: [&str; 7] = [
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

impl<'a> ListFilter<'a> {
    fn new(filters: &'a Filters, engine: &Engine) -> Result<ListFilter<'a>> {
        const KNOWN: [&str; 14] = [
            "id", "name", "label", "status", "exited", "ancestor", "before", "since", "health",
            "volume", "network", "publish", "expose", "is-task",
        ];
        for (key, values) in filters {
            if !KNOWN.contains(&key.as_str()) {
                return Err(Error::InvalidParameter(format!("invalid filter '{key}'")));
            }
            for v in values {
                let bad = match key.as_str() {
                    "status" => !STATUSES.contains(&v.as_str()),
                    "exited" => v.parse::<i64>().is_err(),
                    "health" => {
                        !matches!(v.as_str(), "starting" | "healthy" | "unhealthy" | "none")
                    }
                    _ => false,
                };
                if bad {
                    return Err(Error::InvalidParameter(format!(
                        "Invalid filter '{key}={v}'"
                    )));
                }
            }
        }
        let created = |key: &str| -> Result<Option<i64>> {
            let Some(v) = filters.get(key).and_then(|v| v.first()) else {
                return Ok(None);
            };
            Ok(Some(engine.containers.get(v)?.record().created_ns))
        };
        let ancestors = filters
            .get("ancestor")
            .into_iter()
            .flatten()
            .flat_map(|a| {
                let mut ids = vec![a.clone()];
                if let Ok((id, _)) = engine.resolve_image(a) {
                    ids.push(id);
                }
                ids
            })
            .collect();
        Ok(ListFilter {
            filters,
            before_ns: created("before")?,
            since_ns: created("since")?,
            ancestors,
        })
    }

    fn matches(&self, rec: &Record, health: Option<&str>) -> bool {
        let any = |key: &str, ok: &dyn Fn(&str) -> bool| {
            self.filters
                .get(key)
                .is_none_or(|vs| vs.is_empty() || vs.iter().any(|v| ok(v)))
        };
        let labels = spec::labels(&rec.config);
        let name = format!("/{}", rec.name);
        any("id", &|v| rec.id.starts_with(v))
            && any("name", &|v| name_matches(&name, v))
            && any("status", &|v| v == rec.state.status.as_str())
            && any("exited", &|v| {
                rec.state.status == Status::Exited
                    && rec.state.finished_ns != 0
                    && v.parse::<i64>().ok() == Some(rec.state.exit_code)
            })
            && self.filters.get("label").is_none_or(|vs| {
                vs.iter().all(|v| match v.split_once('=') {
                    Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
                    None => labels.contains_key(v.as_str()),
                })
            })
            && (self.ancestors.is_empty()
                || self.ancestors.iter().any(|a| {
                    *a == rec.config.image
                        || *a == rec.image_id
                        || (a.len() >= 4
                            && rec
                                .image_id
                                .trim_start_matches("sha256:")
                                .starts_with(a.as_str()))
                }))
            && self.before_ns.is_none_or(|t| rec.created_ns < t)
            && self.since_ns.is_none_or(|t| rec.created_ns > t)
            && any("network", &|v| v == rec.host_config.network_mode)
            && any("volume", &|v| mounts_volume(rec, v))
            && any("health", &|v| v == health.unwrap_or("none"))
    }
}

/// The `volume` filter: a volume's name, or any mount's destination or host source.
fn mounts_volume(rec: &Record, v: &str) -> bool {
    let v = v.trim_end_matches('/');
    mount_points(rec).iter().any(|m| {
        m.name.as_deref() == Some(v)
            || m.destination.trim_end_matches('/') == v
            || m.source.trim_end_matches('/') == v
    })
}

/// Docker matches names with a regular expression; the anchors `^` and `$` are what people
/// use, the rest is a substring match.
fn name_matches(name: &str, pattern: &str) -> bool {
    let bare = name.trim_start_matches('/');
    let (start, p) = match pattern.strip_prefix('^') {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let (end, p) = match p.strip_suffix('$') {
        Some(p) => (true, p),
        None => (false, p),
    };
    let p_bare = p.trim_start_matches('/');
    match (start, end) {
        (true, true) => name == p || bare == p_bare,
        (true, false) => name.starts_with(p) || bare.starts_with(p_bare),
        (false, true) => name.ends_with(p),
        (false, false) => name.contains(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_like_docker_regexps() {
        assert!(name_matches("/web1", "web"));
        assert!(name_matches("/web1", "^web"));
        assert!(name_matches("/web1", "^/web1$"));
        assert!(!name_matches("/web1", "^web$"));
        assert!(name_matches("/web1", "1$"));
        assert!(!name_matches("/web1", "db"));
    }
}
