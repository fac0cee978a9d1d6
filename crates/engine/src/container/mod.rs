//! Container records: what the engine knows about each container (`containers/<id>/
//! container.json`, rewritten atomically on every change), the in-memory registry with
//! Docker's lookup rules (full id, name, unique id prefix), and the per-container
//! synchronisation: an operation lock (start/stop/remove/... one at a time) and a watch
//! channel that wait, stop and remove use to learn that an exit was recorded.
//!
//! The `impl Engine` blocks of the container operations live in the submodules.

pub mod attach;
pub mod create;
pub mod lifecycle;
pub mod list;
pub mod merge;
pub mod names;
pub mod ops;
pub mod restore;
pub mod system;
pub mod time;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::types::{ContainerConfig, HostConfig};

pub const RECORD_FILE: &str = "container.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a monitor (and so the container's init) is there: running or paused.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }
}

/// The state part of the record; times are Unix nanoseconds, 0 = never.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i64,
    pub started_ns: i64,
    pub finished_ns: i64,
    pub oom_killed: bool,
    pub error: String,
    pub restart_count: i64,
    /// Stopped or killed by a user: `unless-stopped` does not restart it.
    pub manually_stopped: bool,
    pub has_been_started: bool,
}

/// `containers/<id>/container.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Without the leading "/".
    pub name: String,
    pub created_ns: i64,
    /// The image ID (`sha256:...`); `config.image` keeps the name the user gave.
    pub image_id: String,
    /// The image's diff IDs, base first (the snapshot's layers).
    #[serde(default)]
    pub layers: Vec<String>,
    /// The process: `path` and `args` as inspect shows them.
    pub path: String,
    pub args: Vec<String>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub state: State,
    /// The volumes it mounts (crate::volumes), chosen at create.
    #[serde(default)]
    pub volumes: Vec<crate::volumes::VolumeMount>,
}

impl Record {
    /// Replaces the file atomically (a daemon killed at any point leaves the old record or
    /// the new one). The write is also made durable, against a host crash, unless the
    /// container is AutoRemove (see [`Record::durable`]).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".container.json.tmp");
        crate::state_file::replace_json(&dir.join(RECORD_FILE), &tmp, self, self.durable())
    }

    /// Whether the record must survive a host crash. An AutoRemove container's does not: a
    /// host crash ends the container, and an ended AutoRemove container is removed (restore
    /// does that for one recorded running; the remains of one whose record was lost are
    /// cleared as those of a create cut short). Not syncing it keeps `run --rm` from waiting
    /// for the disk several times per container, and its short-lived files from ever
    /// reaching the disk.
    pub fn durable(&self) -> bool {
        !self.host_config.auto_remove
    }

    pub fn load(dir: &Path) -> Result<Record> {
        let path = dir.join(RECORD_FILE);
        let data = std::fs::read(&path).at(&path)?;
        serde_json::from_slice(&data)
            .map_err(|e| Error::Internal(format!("{}: cannot parse: {e}", path.display())))
    }
}

/// What waiters watch: changes when an exit has been recorded (and cleaned up after) or the
/// container is removed.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub running: bool,
    /// Exits recorded since the engine opened.
    pub exits: u64,
    pub exit_code: i64,
    pub removed: bool,
}

/// An attach that arrived before the container's monitor existed: start hands it the
/// monitor directory and waits for the attach to say it is connected.
pub type PendingAttach = tokio::sync::oneshot::Sender<(PathBuf, tokio::sync::oneshot::Sender<()>)>;

/// One container in memory.
pub struct Container {
    pub id: String,
    pub dir: PathBuf,
    /// Held by every operation that changes the container's lifecycle.
    pub op: Arc<tokio::sync::Mutex<()>>,
    record: Mutex<Record>,
    pub progress: tokio::sync::watch::Sender<Progress>,
    pub pending_attaches: Mutex<Vec<PendingAttach>>,
    pub restart: Mutex<crate::restart::RestartState>,
    /// `State.Health` while health checks run (in memory, as they restart with the run).
    pub health: Mutex<Option<crate::types::Health>>,
}

impl Container {
    pub fn new(record: Record, dir: PathBuf) -> Arc<Container> {
        let progress = Progress {
            running: record.state.status.is_live(),
            exit_code: record.state.exit_code,
            ..Progress::default()
        };
        Arc::new(Container {
            id: record.id.clone(),
            dir,
            op: Arc::default(),
            record: Mutex::new(record),
            progress: tokio::sync::watch::Sender::new(progress),
            pending_attaches: Mutex::new(Vec::new()),
            restart: Mutex::new(Default::default()),
            health: Mutex::new(None),
        })
    }

    /// A copy of the record.
    pub fn record(&self) -> Record {
        self.lock().clone()
    }

    pub fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic while holding it leaves a record that is still valid data.
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the record and persists it; the change stays in memory even if the write
    /// fails (the error is returned).
    pub fn update<T>(&self, change: impl FnOnce(&mut Record) -> T) -> Result<T> {
        let mut rec = self.lock();
        let out = change(&mut rec);
        rec.save(&self.dir)?;
        Ok(out)
    }

    /// Changes the record in memory only: the next [`Container::update`] persists it.
    pub fn modify<T>(&self, change: impl FnOnce(&mut Record) -> T) -> T {
        change(&mut self.lock())
    }

    pub fn status(&self) -> Status {
        self.lock().state.status
    }

    pub fn name(&self) -> String {
        self.lock().name.clone()
    }
}

/// Every container of the engine, by id, with the name index.
#[derive(Default)]
pub struct Containers {
    inner: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    by_id: BTreeMap<String, Arc<Container>>,
    /// name (without "/") -> id.
    names: BTreeMap<String, String>,
}

impl Containers {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Docker's lookup: full id, then name, then unique id prefix.
    pub fn get(&self, id_or_name: &str) -> Result<Arc<Container>> {
        let reg = self.lock();
        let not_found = || Error::NotFound(format!("No such container: {id_or_name}"));
        if id_or_name.is_empty() {
            return Err(not_found());
        }
        if let Some(c) = reg.by_id.get(id_or_name) {
            return Ok(c.clone());
        }
        let bare = id_or_name.strip_prefix('/').unwrap_or(id_or_name);
        if let Some(c) = reg.names.get(bare).and_then(|id| reg.by_id.get(id)) {
            return Ok(c.clone());
        }
        let mut matches = reg
            .by_id
            .range(id_or_name.to_string()..)
            .take_while(|(id, _)| id.starts_with(id_or_name));
        match (matches.next(), matches.next()) {
            (Some((_, c)), None) => Ok(c.clone()),
            (Some(_), Some(_)) => Err(Error::InvalidParameter(format!(
                "multiple IDs found with provided prefix: {id_or_name}"
            ))),
            _ => Err(not_found()),
        }
    }

    pub fn all(&self) -> Vec<Arc<Container>> {
        self.lock().by_id.values().cloned().collect()
    }

    /// Reserves `name` for `id`: Docker's 409 if another container has it.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<()> {
        let mut reg = self.lock();
        match reg.names.get(name) {
            Some(owner) if owner != id => Err(name_conflict(name, owner)),
            _ => {
                reg.names.insert(name.to_string(), id.to_string());
                Ok(())
            }
        }
    }

    pub fn release_name(&self, name: &str, id: &str) {
        let mut reg = self.lock();
        if reg.names.get(name).is_some_and(|owner| owner == id) {
            reg.names.remove(name);
        }
    }

    pub fn name_taken(&self, name: &str) -> bool {
        self.lock().names.contains_key(name)
    }

    pub fn insert(&self, container: Arc<Container>) {
        let name = container.name();
        let mut reg = self.lock();
        reg.names.insert(name, container.id.clone());
        reg.by_id.insert(container.id.clone(), container);
    }

    pub fn remove(&self, id: &str) {
        let mut reg = self.lock();
        reg.by_id.remove(id);
        reg.names.retain(|_, owner| owner != id);
    }
}

pub fn name_conflict(name: &str, owner: &str) -> Error {
    Error::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{owner}\". \
         You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// 64 lowercase hex digits from the kernel's random source. Like Docker, an id whose short
/// form is all digits is drawn again (it would read as a number).
pub fn new_id() -> Result<String> {
    loop {
        let bytes = random_bytes(32)?;
        let id = hex::encode(bytes);
        if !id[..12].bytes().all(|b| b.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let path = Path::new("/dev/urandom");
    let mut buf = vec![0u8; n];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut buf))
        .at(path)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, name: &str) -> Record {
        Record {
            id: id.into(),
            name: name.into(),
            created_ns: 1,
            image_id: String::new(),
            layers: Vec::new(),
            path: "sh".into(),
            args: Vec::new(),
            config: ContainerConfig::default(),
            host_config: HostConfig::default(),
            state: State::default(),
            volumes: Vec::new(),
        }
    }

    #[test]
    fn lookup_by_id_name_and_prefix() {
        let all = Containers::default();
        let a = format!("abc1{}", "0".repeat(60));
        let b = format!("abc2{}", "0".repeat(60));
        for (id, name) in [(&a, "web"), (&b, "db")] {
            all.insert(Container::new(
                record(id, name),
                PathBuf::from("/nonexistent"),
            ));
        }
        assert_eq!(all.get(&a).unwrap().id, a);
        assert_eq!(all.get("web").unwrap().id, a);
        assert_eq!(all.get("/db").unwrap().id, b);
        assert_eq!(all.get("abc2").unwrap().id, b);
        assert!(matches!(all.get("abc"), Err(Error::InvalidParameter(_))));
        let err = all.get("nope").err().map(|e| e.to_string()).unwrap();
        assert_eq!(err, "No such container: nope");
        assert!(all.get("").is_err());
        let err = all.reserve_name("web", &b).unwrap_err().to_string();
        assert!(
            err.contains("\"/web\" is already in use by container \"abc1"),
            "{err}"
        );
        all.remove(&a);
        assert!(all.reserve_name("web", &b).is_ok());
    }

    #[test]
    fn record_round_trips_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = record(&"f".repeat(64), "x");
        rec.state.status = Status::Exited;
        rec.save(dir.path()).unwrap();
        let back = Record::load(dir.path()).unwrap();
        assert_eq!(back.state, rec.state);
        assert!(!dir.path().join(".container.json.tmp").exists());
    }

    #[test]
    fn ids_are_64_hex() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 64);
        assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }
}
