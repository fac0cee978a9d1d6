//! `version`, `info`, `system df` and `container prune`, in Docker's shapes.

use serde_json::{json, Value};

use crate::container::list::dir_size;
use crate::container::{time, Status};
use crate::engine::{Engine, Filters};
use crate::error::{Error, Result};

pub const API_VERSION: &str = "1.51";
pub const MIN_API_VERSION: &str = "1.24";
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `GET /version`.
pub fn version() -> Value {
    let kernel = kernel_version();
    json!({
        "Platform": {"Name": "gorae"},
        "Components": [{
            "Name": "Engine",
            "Version": VERSION,
            "Details": {
                "ApiVersion": API_VERSION, "Arch": "amd64", "BuildTime": "",
                "Experimental": "false", "GitCommit": "", "GoVersion": "",
                "KernelVersion": kernel, "MinAPIVersion": MIN_API_VERSION, "Os": "linux"
            }
        }],
        "Version": VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": "amd64",
        "KernelVersion": kernel,
        "BuildTime": ""
    })
}

fn os_name() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> i64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

impl Engine {
    pub(crate) async fn info_json(&self) -> Result<Value> {
        let statuses: Vec<Status> = self.containers.all().iter().map(|c| c.status()).collect();
        let count = |f: &dyn Fn(Status) -> bool| statuses.iter().filter(|s| f(**s)).count();
        let mut image_ids: Vec<String> = self
            .images()
            .store()
            .images
            .list()?
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        image_ids.sort();
        image_ids.dedup();
        let hostname = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut info = json!({
            "ID": crate::config::root_hash(&self.config().root),
            "Containers": statuses.len(),
            "ContainersRunning": count(&|s| matches!(s, Status::Running | Status::Restarting)),
            "ContainersPaused": count(&|s| s == Status::Paused),
            "ContainersStopped": count(&|s| !matches!(s, Status::Running | Status::Paused | Status::Restarting)),
            "Images": image_ids.len(),
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "overlay"], ["Supports d_type", "true"]],
            "Plugins": {"Volume": ["local"], "Network": ["host", "null"], "Authorization": null,
                        "Log": ["json-file", "none"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "OomKillDisable": cgroup_version() == "1",
            "IPv4Forwarding": false, "BridgeNfIptables": false, "BridgeNfIp6tables": false,
            "Debug": self.config().log_level == "debug",
            "NFd": std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            "NGoroutines": 0,
            "SystemTime": time::format_ns(time::now_ns()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version(),
            "NEventsListener": 0,
        });
        let more = json!({
            "KernelVersion": kernel_version(),
            "OperatingSystem": os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": "x86_64",
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "AllowNondistributableArtifactsCIDRs": null,
                "AllowNondistributableArtifactsHostnames": null,
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {"docker.io": {"Name": "docker.io", "Mirrors": [],
                                               "Secure": true, "Official": true}},
                "Mirrors": []
            },
            "NCPU": ncpu,
            "MemTotal": mem_total(),
            "GenericResources": null,
            "DockerRootDir": self.config().root,
            "HttpProxy": "", "HttpsProxy": "", "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": VERSION,
            "Runtimes": {"runc": {"path": self.config().runtime}},
            "DefaultRuntime": "runc",
            "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                      "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "CDISpecDirs": [],
            "Warnings": []
        });
        if let (Some(info), Value::Object(more)) = (info.as_object_mut(), more) {
            info.extend(more);
        }
        Ok(info)
    }

    pub(crate) async fn df_json(&self) -> Result<Value> {
        let containers = self
            .list_containers(crate::engine::ListOptions {
                all: true,
                size: true,
                ..Default::default()
            })
            .await?;
        let mut images = self
            .images()
            .list(false, false, Filters::new())
            .await
            .unwrap_or_default();
        for image in &mut images {
            let id = image["Id"].as_str().unwrap_or_default().to_string();
            let n = containers.iter().filter(|c| c.image_id == id).count();
            image["Containers"] = json!(n);
        }
        let layers_dir = self.images().store().root.layers_dir().join("sha256");
        let layers_size: i64 = std::fs::read_dir(&layers_dir)
            .map(|d| d.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0);
        Ok(json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": self.volume_usage(),
            "BuildCache": []
        }))
    }

    pub(crate) async fn prune_containers(&self, filters: Filters) -> Result<Value> {
        if let Some(bad) = filters
            .keys()
            .find(|k| !matches!(k.as_str(), "until" | "label" | "label!"))
        {
            return Err(Error::InvalidParameter(format!("invalid filter '{bad}'")));
        }
        let until = match filters.get("until").and_then(|v| v.first()) {
            Some(v) => Some(parse_until(v)?),
            None => None,
        };
        let mut deleted = Vec::new();
        let mut reclaimed = 0i64;
        for c in self.containers.all() {
            let rec = c.record();
            if rec.state.status.is_live()
                || matches!(rec.state.status, Status::Restarting | Status::Removing)
            {
                continue;
            }
            if until.is_some_and(|u| rec.created_ns >= u) || !labels_match(&filters, &rec) {
                continue;
            }
            let (rw, _) = self.sizes(&rec.id);
            match self.remove_container(&rec.id, false, false).await {
                Ok(()) => {
                    deleted.push(rec.id.clone());
                    reclaimed += rw;
                }
                Err(Error::NotFound(_) | Error::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }
}

fn labels_match(filters: &Filters, rec: &crate::container::Record) -> bool {
    let labels = crate::spec::labels(&rec.config);
    let has = |v: &str| match v.split_once('=') {
        Some((k, val)) => labels.get(k).map(String::as_str) == Some(val),
        None => labels.contains_key(v),
    };
    filters
        .get("label")
        .is_none_or(|vs| vs.iter().all(|v| has(v)))
        && filters
            .get("label!")
            .is_none_or(|vs| vs.iter().all(|v| !has(v)))
}

/// `until`: a Unix timestamp (fractional allowed), an RFC 3339 time, or a Go duration
/// before now (`24h`, `1h30m`, `10m`).
pub fn parse_until(v: &str) -> Result<i64> {
    if let Ok(secs) = v.parse::<f64>() {
        return Ok((secs * 1e9) as i64);
    }
    if let Some(ns) = time::parse(v) {
        return Ok(ns);
    }
    let bad = || Error::InvalidParameter(format!("invalid filter 'until={v}'"));
    let mut total = 0f64;
    let mut rest = v;
    while !rest.is_empty() {
        let n_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let n: f64 = rest[..n_end].parse().map_err(|_| bad())?;
        let unit_end = rest[n_end..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(rest.len(), |i| n_end + i);
        let scale = match &rest[n_end..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Ok(time::now_ns() - total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_forms() {
        assert_eq!(
            parse_until("1700000000").unwrap(),
            1_700_000_000_000_000_000
        );
        assert_eq!(
            parse_until("2026-12-07T12:00:00Z").unwrap(),
            1_796_644_800_000_000_000
        );
        let an_hour_ago = parse_until("1h").unwrap();
        let diff = time::now_ns() - an_hour_ago;
        assert!((3_599_000_000_000..3_601_000_000_000).contains(&diff));
        assert!(parse_until("1h30m").unwrap() < an_hour_ago);
        assert!(parse_until("soon").is_err());
    }

    #[test]
    fn version_has_docker_fields() {
        let v = version();
        assert_eq!(v["ApiVersion"], "1.51");
        assert_eq!(v["MinAPIVersion"], "1.24");
        assert_eq!(
            (v["Os"].as_str(), v["Arch"].as_str()),
            (Some("linux"), Some("amd64"))
        );
    }
}
