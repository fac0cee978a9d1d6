//! [`Engine`]: the one object the API server talks to. Each method is one Docker API
//! operation; it names what it takes and returns in Docker's JSON model ([`crate::types`]).
//!
//! Streams (logs, stats, events, pull progress) come back as channels the API drains into a
//! chunked body. Hijacked operations (attach, exec start) are two-phase: `*_prepare` checks
//! everything that can fail with a status code, then the API answers 101 and hands the
//! upgraded connection to `run`.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::types::*;

/// A connection the API has upgraded (hijacked): raw bytes both ways.
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}
pub type DuplexStream = Box<dyn Duplex>;

/// Docker's `filters` query parameter, decoded: key -> values. Both of Docker's encodings
/// (`{"k":["v"]}` and the older `{"k":{"v":true}}`) decode to this.
pub type Filters = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub all: bool,
    /// Only the newest N (-1 or None: all).
    pub limit: Option<i64>,
    pub size: bool,
    pub filters: Filters,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub follow: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Unix time (fractional seconds allowed), 0 = from the start.
    pub since: f64,
    /// Unix time, 0 = no limit.
    pub until: f64,
    pub timestamps: bool,
    /// "all" or a number of lines from the end.
    pub tail: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stream: bool,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Replay the log first (the CLI never asks for it).
    pub logs: bool,
    pub detach_keys: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until the container is not running (returns at once if it is not).
    #[default]
    NotRunning,
    /// Until the next exit, even if not running now.
    NextExit,
    /// Until it is removed.
    Removed,
}

/// Whether a hijacked stream carries docker's 8-byte multiplexing headers (non-tty) or raw
/// bytes (tty); the API puts it in Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Raw,
    Multiplexed,
}

/// An attach or exec start that passed its checks: the API answers 101 with `kind`'s
/// content type, then calls `run` with the upgraded connection.
pub struct Hijack {
    pub kind: StreamKind,
    pub run: Box<dyn FnOnce(DuplexStream) -> futures_boxed::BoxFuture + Send>,
}

/// A pinned, boxed future, without pulling in the futures crate for one type.
pub mod futures_boxed {
    pub type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

/// The engine of one data root.
pub struct Engine {
    config: EngineConfig,
    images: crate::images::ImageService,
    /// Exec instances by id (owned by `crate::exec`).
    pub(crate) execs: crate::exec::Execs,
}

/// A copy of what the I/O operations (logs, exec, stats, top, archive) need to know about a
/// container, taken under the engine's lock and then used without it.
#[derive(Debug, Clone)]
pub struct ContainerView {
    pub id: String,
    /// Without the leading "/".
    pub name: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub running: bool,
    pub paused: bool,
    /// The container's init on the host, while running.
    pub pid: Option<i32>,
    /// The json-file log (may not exist yet; rotated files are `<log_path>.1`, ...).
    pub log_path: std::path::PathBuf,
    /// The bundle directory (config.json) and the root filesystem's mount point in it.
    pub bundle: std::path::PathBuf,
    pub rootfs: std::path::PathBuf,
    /// `linux.cgroupsPath` of the container's spec.
    pub cgroups_path: String,
    /// The monitor's directory (attach.sock, control.sock, exit.json).
    pub monitor_dir: std::path::PathBuf,
}

impl Engine {
    /// Opens the data root, takes the engine lock (one daemon per root), and restores the
    /// containers it finds: those whose monitors are alive are running, the exits that
    /// happened meanwhile are recorded, restart policies are applied.
    pub async fn open(config: EngineConfig) -> Result<Arc<Engine>> {
        let store = Arc::new(gorae_image::Store::open(&config.root)?);
        Ok(Arc::new(Engine {
            config,
            images: crate::images::ImageService::new(store),
            execs: crate::exec::Execs::default(),
        }))
    }

    pub fn images(&self) -> &crate::images::ImageService {
        &self.images
    }

    /// The container named by `id_or_name` (full id, unique id prefix, or name with or
    /// without "/"), as the I/O operations need it. `NotFound` with Docker's
    /// "No such container: X".
    pub async fn view(&self, id_or_name: &str) -> Result<ContainerView> {
        Err(Error::NotFound(format!("No such container: {id_or_name}")))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    // ---- system

    /// `GET /version`.
    pub fn version(&self) -> serde_json::Value {
        serde_json::json!({})
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<serde_json::Value> {
        Err(not_yet("info"))
    }

    /// `GET /system/df`.
    pub async fn system_df(&self) -> Result<serde_json::Value> {
        Err(not_yet("system df"))
    }

    /// `GET /events`: past events in [since, until] and then, without `until`, live ones.
    pub fn events(
        &self,
        _since: Option<f64>,
        _until: Option<f64>,
        _filters: Filters,
    ) -> Result<mpsc::Receiver<Event>> {
        Err(not_yet("events"))
    }

    // ---- containers

    pub async fn create(
        &self,
        _name: Option<String>,
        _req: CreateRequest,
    ) -> Result<CreateResponse> {
        Err(not_yet("create"))
    }

    /// `NotModified` if already running.
    pub async fn start(&self, _id: &str) -> Result<()> {
        Err(not_yet("start"))
    }

    /// Signal (the container's StopSignal, else SIGTERM), then after `timeout` seconds
    /// (its StopTimeout, else 10; -1 waits forever) SIGKILL. `NotModified` if not running.
    pub async fn stop(
        &self,
        _id: &str,
        _signal: Option<String>,
        _timeout: Option<i64>,
    ) -> Result<()> {
        Err(not_yet("stop"))
    }

    pub async fn restart(
        &self,
        _id: &str,
        _signal: Option<String>,
        _timeout: Option<i64>,
    ) -> Result<()> {
        Err(not_yet("restart"))
    }

    /// `Conflict` if not running.
    pub async fn kill(&self, _id: &str, _signal: Option<String>) -> Result<()> {
        Err(not_yet("kill"))
    }

    /// Checks the container exists (the API sends 200 and its headers right after) and
    /// returns the future of the wait itself.
    pub async fn wait(
        &self,
        _id: &str,
        _condition: WaitCondition,
    ) -> Result<futures_boxed_wait::WaitFuture> {
        Err(not_yet("wait"))
    }

    /// `force` kills a running container first; `volumes` removes its anonymous volumes.
    pub async fn remove(&self, _id: &str, _force: bool, _volumes: bool) -> Result<()> {
        Err(not_yet("remove"))
    }

    pub async fn inspect(&self, _id: &str, _size: bool) -> Result<ContainerInspect> {
        Err(not_yet("inspect"))
    }

    pub async fn list(&self, _opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        Err(not_yet("list"))
    }

    pub async fn attach_prepare(&self, _id: &str, _opts: AttachOptions) -> Result<Hijack> {
        Err(not_yet("attach"))
    }

    pub async fn resize(&self, _id: &str, _height: u16, _width: u16) -> Result<()> {
        Err(not_yet("resize"))
    }

    pub async fn pause(&self, _id: &str) -> Result<()> {
        Err(not_yet("pause"))
    }

    pub async fn unpause(&self, _id: &str) -> Result<()> {
        Err(not_yet("unpause"))
    }

    pub async fn rename(&self, _id: &str, _name: &str) -> Result<()> {
        Err(not_yet("rename"))
    }

    pub async fn update(&self, _id: &str, _req: UpdateRequest) -> Result<UpdateResponse> {
        Err(not_yet("update"))
    }

    /// `POST /containers/prune`: `{"ContainersDeleted": [...], "SpaceReclaimed": N}`.
    pub async fn prune(&self, _filters: Filters) -> Result<serde_json::Value> {
        Err(not_yet("prune"))
    }

    // ---- exec

    // ---- images: see crate::images::ImageService, reached through `images()`.
}

pub mod futures_boxed_wait {
    pub type WaitFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = crate::types::WaitResponse> + Send>>;
}

fn not_yet(what: &str) -> Error {
    Error::NotImplemented(format!("{what} is not implemented yet"))
}
