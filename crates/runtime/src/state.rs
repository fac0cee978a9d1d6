//! Container state on disk: one directory per container under the runtime root, holding
//! `state.json` (what later commands need to find the container again) and, while the container
//! is created but not started, the `exec.fifo` its init waits on.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};

use crate::cgroups::Cgroup;
use crate::error::{Error, IoContext, Result};

/// The default state root, as `runc` uses /run/runc.
pub const DEFAULT_ROOT: &str = "/run/gorae-runc";
/// The OCI runtime-spec version this runtime implements and reports.
pub const OCI_VERSION: &str = "1.2.0";
const STATE_FILE: &str = "state.json";
const EXEC_FIFO: &str = "exec.fifo";

/// The lifecycle states of the OCI runtime spec, plus `paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Checks a container id the way runc does: letters, digits, `_ + - .`, not `.` or `..`,
/// so that an id is always one safe path component.
pub fn validate_id(id: &str) -> Result<()> {
    let bad = |reason| {
        Err(Error::InvalidId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return bad("it is empty");
    }
    if id.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        return bad("it is a relative path component");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        return bad("only letters, digits and _ + - . are allowed");
    }
    Ok(())
}

/// What gorae-runc remembers about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// Host pid of the container's init process.
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot, to tell it from a reused pid.
    pub pid_start_time: u64,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    #[serde(default)]
    pub cgroup: Option<Cgroup>,
}

impl ContainerState {
    /// The OCI state document given to hooks (runtime-spec runtime.md#state).
    pub fn oci_json(&self, status: Status) -> Vec<u8> {
        let doc = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "status": status.as_str(),
            "pid": self.pid,
            "bundle": self.bundle,
            "annotations": self.annotations,
        });
        doc.to_string().into_bytes()
    }

    /// runc's `state` output: the OCI state plus rootfs, created and owner.
    pub fn runc_json(&self, status: Status) -> serde_json::Value {
        let pid = if status == Status::Stopped {
            0
        } else {
            self.pid
        };
        let mut doc = serde_json::json!({
            "ociVersion": OCI_VERSION,
            "id": self.id,
            "pid": pid,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            doc["annotations"] = serde_json::json!(self.annotations);
        }
        doc
    }
}

/// The runtime root: where every container's state directory lives.
#[derive(Debug, Clone)]
pub struct StateRoot {
    root: PathBuf,
}

impl StateRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateRoot { root: root.into() }
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn exec_fifo(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(EXEC_FIFO)
    }

    /// Claims the id: creates its directory, failing if another container has it.
    pub fn claim(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let mut builder = fs::DirBuilder::new();
        builder.mode(0o711).recursive(true);
        builder.create(&self.root).at(&self.root)?;
        let dir = self.container_dir(id);
        match fs::DirBuilder::new().mode(0o711).create(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(Error::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(Error::io(dir, e)),
        }
    }

    /// Writes state.json atomically (temporary file, then rename).
    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let dir = self.container_dir(&state.id);
        let tmp = dir.join(".state.json.tmp");
        let body = serde_json::to_vec(state).map_err(|e| Error::Config {
            path: tmp.clone(),
            reason: e.to_string(),
        })?;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .at(&tmp)?;
        file.write_all(&body).at(&tmp)?;
        fs::rename(&tmp, dir.join(STATE_FILE)).at(&dir)
    }

    /// Reads a container's state; `NotFound` when there is no such container.
    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let path = self.container_dir(id).join(STATE_FILE);
        let body = match fs::read(&path) {
            Ok(body) => body,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(Error::io(path, e)),
        };
        serde_json::from_slice(&body).map_err(|e| Error::Config {
            path,
            reason: format!("corrupt state: {e}"),
        })
    }

    /// Removes a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.container_dir(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
            _ => Ok(()),
        }
    }

    /// Ids of every container with a state directory, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.root, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().join(STATE_FILE).exists())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Start time (field 22 of /proc/PID/stat) of a live, non-zombie process; `None` when the
/// process is gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // after_comm starts at field 3 (state); field 22 is 19 further on.
    fields.nth(18)?.parse().ok()
}

/// Formats a wall-clock time as RFC 3339 in UTC with nanoseconds, as runc prints `created`.
pub fn rfc3339(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_are_not_one_safe_path_component_are_refused() {
        for id in ["", ".", "..", "a/b", "../x", "a b", "x\0y", "é"] {
            assert!(validate_id(id).is_err(), "{id:?} should be refused");
        }
        for id in ["abc", "a.b-c_d+e", "0123", "..a"] {
            assert!(validate_id(id).is_ok(), "{id:?} should be accepted");
        }
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(951_782_400, 5);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(std::time::UNIX_EPOCH),
            "1970-01-01T00:00:00.000000000Z"
        );
    }

    #[test]
    fn claim_refuses_a_second_container_with_the_same_id() {
        let dir = tempfile::tempdir().unwrap();
        let root = StateRoot::new(dir.path().join("root"));
        root.claim("c1").unwrap();
        assert!(matches!(root.claim("c1"), Err(Error::AlreadyExists(_))));
        assert!(matches!(root.load("c1"), Err(Error::NotFound(_))));
        root.remove("c1").unwrap();
        assert!(root.ids().unwrap().is_empty());
    }

    #[test]
    fn own_process_has_a_start_time() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}
