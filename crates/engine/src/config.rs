//! Where one engine keeps everything, all derived from its data root, so that several daemons
//! run side by side (tests and benchmarks do): state, the run dir, the runtime's state root,
//! the cgroup parent.
//!
//! ```text
//! <root>/                       the image store's layout (gorae-image's layout.rs), plus:
//! <root>/engine.lock            flock: one daemon per data root
//! <root>/containers/<id>/       container.json (the record), bundle/ (config.json, rootfs/),
//!                               <id>-json.log*, hostname, hosts, resolv.conf
//! <root>/volumes/<name>/        _data (the content), meta.json (crate::volumes)
//! <run>/                        /run/gorae for the default root, <root>/run otherwise
//! <run>/gorae.sock              the API socket (unless -H says otherwise)
//! <run>/runc/                   gorae-runc's state root for this engine's containers
//! <run>/m/<id12>/               a monitor's files: monitor.pid, exit.json, attach.sock,
//!                               control.sock (short: unix socket paths are ≤ 107 bytes)
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The daemon's settings: from the command line and the TOML config file (`-c`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The data root (default /var/lib/gorae).
    pub root: PathBuf,
    /// Runtime files: sockets, the runtime's state, monitors (default: /run/gorae for the
    /// default root, <root>/run otherwise).
    pub run_dir: PathBuf,
    /// The gorae-runc binary that creates, monitors and execs into containers.
    pub runtime: PathBuf,
    /// The cgroup every container's cgroup sits under ("gorae", or "gorae-<hash of root>").
    pub cgroup_parent: String,
    /// Log level: error, warn, info, debug.
    pub log_level: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::for_root(Path::new(gorae_image::DataRoot::DEFAULT))
    }
}

impl EngineConfig {
    /// Everything derived from `root`. The default root gets the short, well-known names.
    pub fn for_root(root: &Path) -> EngineConfig {
        let is_default = root == Path::new(gorae_image::DataRoot::DEFAULT);
        let (run_dir, cgroup_parent) = if is_default {
            (PathBuf::from("/run/gorae"), "gorae".to_string())
        } else {
            (root.join("run"), format!("gorae-{}", root_hash(root)))
        };
        EngineConfig {
            root: root.to_path_buf(),
            run_dir,
            runtime: default_runtime(),
            cgroup_parent,
            log_level: "info".into(),
        }
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("engine.lock")
    }

    pub fn default_socket(&self) -> PathBuf {
        self.run_dir.join("gorae.sock")
    }

    pub fn runtime_root(&self) -> PathBuf {
        self.run_dir.join("runc")
    }

    /// A container's monitor directory, named by the short id.
    pub fn monitor_dir(&self, id: &str) -> PathBuf {
        self.run_dir.join("m").join(&id[..id.len().min(12)])
    }
}

/// 8 hex digits of the SHA-256 of the root's path: short enough for cgroup and interface
/// names, distinct enough for the few daemons one machine runs.
pub fn root_hash(root: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(root.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..4])
}

/// gorae-runc beside the running executable, else on PATH.
fn default_runtime() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("gorae-runc")))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("gorae-runc"))
}
