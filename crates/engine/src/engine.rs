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
use crate::error::Result;
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
    pub(crate) containers: crate::container::Containers,
    pub(crate) events: crate::events::EventBus,
    /// Networks, their bridges, firewall table and DNS (crate::network::manager).
    pub(crate) networks: crate::network::manager::Networks,
    /// The local driver's volumes (`<root>/volumes`).
    pub(crate) volumes: crate::volumes::VolumeStore,
    /// This engine, for the tasks it spawns (exit waiters, restarts): they hold it weakly,
    /// so dropping the engine releases the data root even while containers run.
    pub(crate) me: std::sync::Weak<Engine>,
    /// The exclusive flock on `<root>/engine.lock`, held for the engine's life.
    _lock: nix::fcntl::Flock<std::fs::File>,
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
        let lock = crate::container::restore::lock_root(&config)?;
        let store = Arc::new(gorae_image::Store::open(&config.root)?);
        let networks = crate::network::manager::Networks::open(&config)?;
        let volumes = crate::volumes::VolumeStore::new(config.root.join("volumes"));
        let engine = Arc::new_cyclic(|me| Engine {
            config,
            images: crate::images::ImageService::new(store),
            execs: crate::exec::Execs::default(),
            containers: crate::container::Containers::default(),
            events: crate::events::EventBus::default(),
            networks,
            volumes,
            me: me.clone(),
            _lock: lock,
        });
        let weak = Arc::downgrade(&engine);
        engine.images.set_event_sink(move |event| {
            if let Some(engine) = weak.upgrade() {
                engine.events.publish(event);
            }
        });
        engine.restore().await?;
        engine.network_reconcile().await;
        Ok(engine)
    }

    /// Which images the containers use (image remove's and prune's conflict rules).
    pub fn image_uses(&self) -> Vec<crate::images::ImageUse> {
        self.containers
            .all()
            .iter()
            .map(|c| {
                let rec = c.record();
                crate::images::ImageUse {
                    image_id: rec.image_id,
                    container_id: rec.id,
                    running: rec.state.status.is_live(),
                }
            })
            .collect()
    }

    pub fn images(&self) -> &crate::images::ImageService {
        &self.images
    }

    /// The container named by `id_or_name` (full id, unique id prefix, or name with or
    /// without "/"), as the I/O operations need it. `NotFound` with Docker's
    /// "No such container: X".
    pub async fn view(&self, id_or_name: &str) -> Result<ContainerView> {
        let c = self.containers.get(id_or_name)?;
        Ok(self.view_of(&c))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Publishes an event (engine-io's exec_create/exec_start/exec_die, the image service's
    /// pull/tag/delete...). `attributes` are Docker's; for a container event the engine adds
    /// its name, image and labels when `id` names a container.
    pub fn emit(&self, kind: &str, action: &str, id: &str, attributes: &[(&str, String)]) {
        self.emit_event(kind, action, id, attributes);
    }

    // ---- system

    /// `GET /version`.
    pub fn version(&self) -> serde_json::Value {
        crate::container::system::version()
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<serde_json::Value> {
        self.info_json().await
    }

    /// `GET /system/df`.
    pub async fn system_df(&self) -> Result<serde_json::Value> {
        self.df_json().await
    }

    /// `GET /events`: past events in [since, until] and then, without `until`, live ones.
    pub fn events(
        &self,
        since: Option<f64>,
        until: Option<f64>,
        filters: Filters,
    ) -> Result<mpsc::Receiver<Event>> {
        self.events.subscribe(since, until, filters)
    }

    // ---- containers

    pub async fn create(&self, name: Option<String>, req: CreateRequest) -> Result<CreateResponse> {
        self.create_container(name, req).await
    }

    /// `NotModified` if already running.
    pub async fn start(&self, id: &str) -> Result<()> {
        self.start_container(id).await
    }

    /// Signal (the container's StopSignal, else SIGTERM), then after `timeout` seconds
    /// (its StopTimeout, else 10; -1 waits forever) SIGKILL. `NotModified` if not running.
    pub async fn stop(&self, id: &str, signal: Option<String>, timeout: Option<i64>) -> Result<()> {
        self.stop_container(id, signal, timeout).await
    }

    pub async fn restart(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        self.restart_container(id, signal, timeout).await
    }

    /// `Conflict` if not running.
    pub async fn kill(&self, id: &str, signal: Option<String>) -> Result<()> {
        self.kill_container(id, signal).await
    }

    /// Checks the container exists (the API sends 200 and its headers right after) and
    /// returns the future of the wait itself, already registered: an exit that happens
    /// after this returns is seen by it.
    pub async fn wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<futures_boxed_wait::WaitFuture> {
        self.wait_container(id, condition)
    }

    /// `force` kills a running container first; `volumes` removes its anonymous volumes.
    pub async fn remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        self.remove_container(id, force, volumes).await
    }

    pub async fn inspect(&self, id: &str, size: bool) -> Result<ContainerInspect> {
        self.inspect_container(id, size).await
    }

    pub async fn list(&self, opts: ListOptions) -> Result<Vec<ContainerSummary>> {
        self.list_containers(opts).await
    }

    /// Before the container runs, the attach waits for its monitor: start begins the
    /// container only once the attaches waiting for it are connected, so no output is lost.
    pub async fn attach_prepare(&self, id: &str, opts: AttachOptions) -> Result<Hijack> {
        self.attach_container(id, opts).await
    }

    pub async fn resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        self.resize_container(id, height, width).await
    }

    pub async fn pause(&self, id: &str) -> Result<()> {
        self.pause_container(id).await
    }

    pub async fn unpause(&self, id: &str) -> Result<()> {
        self.unpause_container(id).await
    }

    pub async fn rename(&self, id: &str, name: &str) -> Result<()> {
        self.rename_container(id, name).await
    }

    pub async fn update(&self, id: &str, req: UpdateRequest) -> Result<UpdateResponse> {
        self.update_container(id, req).await
    }

    /// `POST /containers/prune`: `{"ContainersDeleted": [...], "SpaceReclaimed": N}`.
    pub async fn prune(&self, filters: Filters) -> Result<serde_json::Value> {
        self.prune_containers(filters).await
    }

    // ---- logs, exec, stats, top, archive: see io_ops.rs.
    // ---- images: see crate::images::ImageService, reached through `images()`.
}

pub mod futures_boxed_wait {
    pub type WaitFuture =
        std::pin::Pin<Box<dyn std::future::Future<Output = crate::types::WaitResponse> + Send>>;
}
