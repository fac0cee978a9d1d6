//! A bundle's `config.json`: read defensively and checked for what this runtime cannot honour,
//! so that a bad config fails before anything is created on the host.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, Result};

/// The largest config.json accepted; real ones are a few KiB.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// A loaded, validated bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    pub spec: Spec,
}

impl Bundle {
    /// Reads and validates `<dir>/config.json`.
    pub fn load(dir: &Path) -> Result<Bundle> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("config.json");
        let spec = read_spec(&path)?;
        let root = spec
            .root()
            .as_ref()
            .ok_or_else(|| invalid(&path, "root is missing"))?;
        let rootfs = dir.join(root.path());
        let meta = std::fs::metadata(&rootfs).map_err(|e| Error::Config {
            path: path.clone(),
            reason: format!("root.path {}: {e}", rootfs.display()),
        })?;
        if !meta.is_dir() {
            return Err(invalid(
                &path,
                format!("root.path {} is not a directory", rootfs.display()),
            ));
        }
        let rootfs = std::fs::canonicalize(&rootfs).map_err(|e| Error::io(&rootfs, e))?;
        validate(&spec).map_err(|reason| Error::Config {
            path: path.clone(),
            reason,
        })?;
        Ok(Bundle { dir, rootfs, spec })
    }
}

fn invalid(path: &Path, reason: impl Into<String>) -> Error {
    Error::Config {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Parses config.json; the message names the line and column of what was wrong.
pub fn read_spec(path: &Path) -> Result<Spec> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut body = Vec::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::io(path, e))?;
    if body.len() as u64 > MAX_CONFIG_BYTES {
        return Err(invalid(path, "larger than 16 MiB"));
    }
    serde_json::from_slice(&body).map_err(|e| invalid(path, e.to_string()))
}

/// The namespace types a spec asks to create (no path) and to join (with a path).
pub fn namespace_plan(
    spec: &Spec,
) -> (Vec<LinuxNamespaceType>, Vec<(LinuxNamespaceType, PathBuf)>) {
    let mut new = Vec::new();
    let mut join = Vec::new();
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().clone());
    for ns in namespaces.unwrap_or_default() {
        match ns.path() {
            Some(path) => join.push((ns.typ(), path.clone())),
            None => new.push(ns.typ()),
        }
    }
    (new, join)
}

/// Checks everything that can be checked without touching the host.
pub fn validate(spec: &Spec) -> std::result::Result<(), String> {
    let process = spec.process().as_ref().ok_or("process is missing")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args must name the program to run".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    let linux = spec.linux().as_ref().ok_or("linux is missing")?;
    let mut seen = HashSet::new();
    for ns in linux.namespaces().as_deref().unwrap_or_default() {
        if !seen.insert(ns.typ()) {
            return Err(format!("linux.namespaces: {} is listed twice", ns.typ()));
        }
        if let Some(path) = ns.path() {
            if !path.is_absolute() {
                return Err(format!(
                    "linux.namespaces: {} path {path:?} must be absolute",
                    ns.typ()
                ));
            }
        }
    }
    let has = |t| seen.contains(&t);
    let (new, _) = namespace_plan(spec);
    if !has(LinuxNamespaceType::Mount) {
        return Err("linux.namespaces must include a mount namespace".into());
    }
    if (spec.hostname().as_ref().is_some_and(|h| !h.is_empty())
        || spec.domainname().as_ref().is_some_and(|d| !d.is_empty()))
        && !new.contains(&LinuxNamespaceType::Uts)
    {
        return Err("hostname or domainname needs a new uts namespace".into());
    }
    let mappings = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    let new_user = new.contains(&LinuxNamespaceType::User);
    if new_user && !mappings {
        return Err("a new user namespace needs linux.uidMappings and linux.gidMappings".into());
    }
    if mappings && !new_user {
        return Err("linux.uidMappings/gidMappings need a new user namespace".into());
    }
    if let Some(path) = linux.cgroups_path() {
        if path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(format!("linux.cgroupsPath {path:?} must not contain .."));
        }
    }
    for (key, _) in linux.sysctl().as_ref().into_iter().flatten() {
        validate_sysctl(key, &has)?;
    }
    validate_hooks(spec)?;
    for rlimit in process.rlimits().as_deref().unwrap_or_default() {
        if rlimit.soft() > rlimit.hard() {
            return Err(format!(
                "process.rlimits: {} soft limit is above its hard limit",
                rlimit.typ()
            ));
        }
    }
    Ok(())
}

/// runc's rule: a sysctl may be set only when it belongs to a namespace the container has.
fn validate_sysctl(
    key: &str,
    has: &dyn Fn(LinuxNamespaceType) -> bool,
) -> std::result::Result<(), String> {
    let path = key.replace('.', "/");
    if key.is_empty() || path.split('/').any(|c| c.is_empty() || c == "..") {
        return Err(format!("linux.sysctl: invalid key {key:?}"));
    }
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let needs = if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        Some((LinuxNamespaceType::Ipc, "ipc"))
    } else if key.starts_with("net.") {
        Some((LinuxNamespaceType::Network, "network"))
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some((LinuxNamespaceType::Uts, "uts"))
    } else {
        None
    };
    match needs {
        Some((ns, _)) if has(ns) => Ok(()),
        Some((_, name)) => Err(format!("linux.sysctl: {key} needs a {name} namespace")),
        None => Err(format!(
            "linux.sysctl: {key} is not namespaced; setting it would change the host"
        )),
    }
}

fn validate_hooks(spec: &Spec) -> std::result::Result<(), String> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let all = [
        hooks.prestart(),
        hooks.create_runtime(),
        hooks.create_container(),
        hooks.start_container(),
        hooks.poststart(),
        hooks.poststop(),
    ];
    for hook in all.into_iter().flatten().flatten() {
        if !hook.path().is_absolute() {
            return Err(format!("hooks: path {:?} must be absolute", hook.path()));
        }
        if hook.timeout().is_some_and(|t| t <= 0) {
            return Err(format!("hooks: {:?} timeout must be positive", hook.path()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{"ociVersion":"1.2.0","root":{"path":"rootfs"},
        "process":{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}"#;
    const MOUNT_PID: &str = r#"{"namespaces":[{"type":"mount"},{"type":"pid"}]}"#;

    /// BASE with `linux` as the linux section and `extra` top-level fields.
    fn with(linux: &str, extra: &str) -> Spec {
        spec(&format!(r#"{BASE},"linux":{linux}{extra}}}"#))
    }

    #[test]
    fn a_minimal_spec_is_valid() {
        assert_eq!(validate(&with(MOUNT_PID, "")), Ok(()));
    }

    #[test]
    fn hostname_without_uts_is_refused() {
        let err = validate(&with(MOUNT_PID, r#","hostname":"x""#)).unwrap_err();
        assert!(err.contains("uts"), "{err}");
    }

    #[test]
    fn sysctls_are_checked_against_namespaces() {
        let err = validate(&with(
            r#"{"namespaces":[{"type":"mount"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#,
            "",
        ))
        .unwrap_err();
        assert!(err.contains("network namespace"), "{err}");
        let err = validate(&with(
            r#"{"namespaces":[{"type":"mount"},{"type":"network"}],"sysctl":{"vm.swappiness":"1"}}"#,
            "",
        ))
        .unwrap_err();
        assert!(err.contains("not namespaced"), "{err}");
        let err = validate(&with(
            r#"{"namespaces":[{"type":"mount"},{"type":"network"}],"sysctl":{"net/../x":"1"}}"#,
            "",
        ))
        .unwrap_err();
        assert!(err.contains("invalid key"), "{err}");
        let ok = with(
            r#"{"namespaces":[{"type":"mount"},{"type":"network"}],"sysctl":{"net.ipv4.ip_forward":"1"}}"#,
            "",
        );
        assert_eq!(validate(&ok), Ok(()));
    }

    #[test]
    fn duplicate_namespaces_and_missing_mount_ns_are_refused() {
        let dup = r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"mount"},{"type":"mount"}]}}"#;
        assert!(validate(&spec(dup)).unwrap_err().contains("twice"));
        let nomnt = r#"{"root":{"path":"r"},"process":{"args":["x"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"pid"}]}}"#;
        assert!(validate(&spec(nomnt))
            .unwrap_err()
            .contains("mount namespace"));
    }

    #[test]
    fn unknown_namespace_types_fail_to_parse() {
        let bad = r#"{"linux":{"namespaces":[{"type":"bogus"}]}}"#;
        assert!(serde_json::from_str::<Spec>(bad).is_err());
    }

    #[test]
    fn user_namespace_needs_mappings() {
        let err = validate(&with(
            r#"{"namespaces":[{"type":"mount"},{"type":"user"}]}"#,
            "",
        ))
        .unwrap_err();
        assert!(err.contains("uidMappings"), "{err}");
    }
}
