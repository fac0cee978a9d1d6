//! Start, stop, kill, restart, wait and remove, and what happens when a container exits:
//! the exit recorded, the root unmounted, the monitor directory removed, `die` emitted,
//! then AutoRemove or the restart policy.
//!
//! Locking: each operation holds the container's `op` lock; the exit path never takes it
//! (stop and remove hold it while they wait for the exit), and announces the exit on the
//! container's watch channel only after its cleanup, so a waiter that sees it can remove.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::container::{time, Container, Status};
use crate::engine::{futures_boxed_wait::WaitFuture, ContainerView, Engine, WaitCondition};
use crate::error::{Error, IoContext, Result};
use crate::events::container_event;
use crate::logging;
use crate::spec::{self, SpecInput};
use crate::supervisor::{self, ExitInfo, MonitorOptions};
use crate::types::{HostConfig, WaitResponse};

/// How long start waits for attaches that arrived before it to connect.
const ATTACH_WAIT: Duration = Duration::from_secs(10);
/// How long a signal refused by the runtime may take to show up as a recorded exit.
const EXIT_GRACE: Duration = Duration::from_secs(10);

impl Engine {
    pub(crate) async fn start_container(&self, id: &str) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        match c.status() {
            Status::Running => return Err(Error::NotModified("container already started".into())),
            Status::Paused => {
                return Err(Error::Conflict(
                    "cannot start a paused container, try unpause instead".into(),
                ))
            }
            Status::Removing | Status::Dead => {
                return Err(Error::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    c.id
                )))
            }
            Status::Created | Status::Exited | Status::Restarting => {}
        }
        {
            let mut r = lock(&c.restart);
            r.generation += 1;
            r.exit_on_next = false;
        }
        // Persisted with the start's outcome, which start_locked always records.
        c.modify(|r| r.state.manually_stopped = false);
        let started = self.start_locked(&c).await;
        if started.is_err() && c.record().host_config.auto_remove {
            // As Docker: `run --rm` waits for the removal, which must come even so.
            if let Err(e) = self.destroy_with(&c, true) {
                logging::warn(&format!("container {}: auto-remove: {e}", c.id));
            }
        }
        started
    }

    /// Mounts, writes the bundle, runs the monitor, records the start. The caller holds `op`.
    pub(crate) async fn start_locked(&self, c: &Arc<Container>) -> Result<()> {
        match self.launch(c).await {
            Ok(pid) => {
                c.update(|r| {
                    let s = &mut r.state;
                    s.status = Status::Running;
                    s.pid = pid;
                    s.started_ns = time::now_ns();
                    s.exit_code = 0;
                    s.oom_killed = false;
                    s.error.clear();
                    s.has_been_started = true;
                })?;
                c.progress.send_modify(|p| p.running = true);
                self.spawn_waiter(c.clone());
                self.emit_container(c, "start", &[]);
                self.start_health(c);
                Ok(())
            }
            Err(e) => {
                self.network_down(c);
                self.unmount_rootfs(c);
                let _ = std::fs::remove_dir_all(self.config().monitor_dir(&c.id));
                let msg = e.to_string();
                let code = start_failure_code(&msg);
                let _ = c.update(|r| {
                    r.state.error = msg.clone();
                    r.state.exit_code = code;
                    if r.state.status == Status::Restarting {
                        r.state.status = Status::Exited;
                    }
                });
                Err(start_error(msg))
            }
        }
    }

    /// Everything up to a running container; its pid.
    async fn launch(&self, c: &Arc<Container>) -> Result<i32> {
        let rec = c.record();
        let bundle = c.dir.join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).at(&rootfs)?;
        if !is_mounted(&rootfs) {
            self.images().store().snapshots.mount(&c.id, &rootfs)?;
        }
        if !rec.config.working_dir.is_empty() {
            spec::ensure_dir_in(&rootfs, &rec.config.working_dir)?;
        }
        // Named and anonymous volumes become binds of their directories.
        let host = crate::volumes::spec_host(&rec.host_config, &self.volume_binds(&rec)?);
        for bind in host.binds.iter().flatten() {
            let bind = spec::parse_bind(bind)?;
            if !Path::new(&bind.source).exists() {
                std::fs::create_dir_all(&bind.source).at(&bind.source)?;
            }
        }
        let spec = spec::build(&SpecInput {
            id: &c.id,
            config: &rec.config,
            host: &host,
            path: &rec.path,
            args: &rec.args,
            rootfs: Some(&rootfs),
            container_dir: &c.dir,
            cgroup_parent: &self.config().cgroup_parent,
            runtime: &self.config().runtime,
        })?;
        let netns = self.network_up(c, &rec).await?;
        let json = gorae_runtime::specgen::to_json(&spec)
            .map(|mut v| {
                if let Some(path) = &netns {
                    spec::set_netns_path(&mut v, path);
                }
                v
            })
            .and_then(|v| serde_json::to_vec_pretty(&v))
            .map_err(|e| Error::Internal(format!("spec of {}: {e}", c.id)))?;
        let config_json = bundle.join("config.json");
        std::fs::write(&config_json, json).at(&config_json)?;
        let hostname = spec::hostname(&rec.config, &rec.host_config, &c.id);
        spec::write_etc_files(&c.dir, &hostname, &rec.host_config)?;
        self.network_etc_files(c, &rec, &hostname)?;
        let dir = self.config().monitor_dir(&c.id);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).at(&dir)?;
        let runtime_root = self.config().runtime_root();
        std::fs::create_dir_all(&runtime_root).at(&runtime_root)?;
        let pending: Vec<_> = std::mem::take(&mut *lock(&c.pending_attaches));
        let (log, log_max_size, log_max_file) = match rec.host_config.log_config.kind.as_str() {
            "none" => (None, None, None),
            _ => {
                let (size, files) = log_options(&rec.host_config)?;
                (Some(self.log_path(&c.id)), size, files)
            }
        };
        let opts = MonitorOptions {
            bundle,
            dir: dir.clone(),
            log,
            log_max_size,
            log_max_file,
            tty: rec.config.tty,
            stdin: rec.config.open_stdin,
            stdin_once: rec.config.stdin_once,
            start: pending.is_empty(),
        };
        supervisor::spawn_monitor(self.config(), &c.id, &opts).await?;
        if opts.start {
            return Ok(supervisor::state(&dir).await.map_or(0, |(pid, _)| pid));
        }
        let mut acks = Vec::new();
        for attach in pending {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if attach.send((dir.clone(), tx)).is_ok() {
                acks.push(rx);
            }
        }
        for ack in acks {
            let _ = tokio::time::timeout(ATTACH_WAIT, ack).await;
        }
        supervisor::start(&dir).await
    }

    pub(crate) fn spawn_waiter(&self, c: Arc<Container>) {
        let weak = self.me.clone();
        let dir = self.config().monitor_dir(&c.id);
        tokio::spawn(async move {
            let info = supervisor::wait(&dir).await;
            if let Some(engine) = weak.upgrade() {
                engine.on_exit(&c, info).await;
            }
        });
    }

    /// Records an exit. Runs in the waiter task, without the `op` lock.
    pub(crate) async fn on_exit(&self, c: &Arc<Container>, info: ExitInfo) {
        self.cleanup_after_exit(c).await;
        let finished = time::parse(&info.finished_at).unwrap_or_else(time::now_ns);
        let saved = c.update(|r| {
            let s = &mut r.state;
            s.status = Status::Exited;
            s.pid = 0;
            s.exit_code = info.exit_code;
            s.finished_ns = finished;
            s.oom_killed = info.oom_killed;
            (r.host_config.clone(), s.clone())
        });
        let (host, state) = match saved {
            Ok(v) => v,
            Err(e) => {
                logging::warn(&format!("container {}: recording its exit: {e}", c.id));
                let r = c.record();
                (r.host_config, r.state)
            }
        };
        self.execs.remove_container(&c.id);
        c.progress.send_modify(|p| {
            p.running = false;
            p.exits += 1;
            p.exit_code = info.exit_code;
        });
        if info.oom_killed {
            self.emit_container(c, "oom", &[]);
        }
        self.emit_container(c, "die", &[("exitCode", info.exit_code.to_string())]);
        self.after_exit(c, &host, &state);
    }

    /// Unmounts the root, removes the monitor dir, and deletes the runtime's container if
    /// the monitor did not (it was killed).
    pub(crate) async fn cleanup_after_exit(&self, c: &Arc<Container>) {
        self.network_down(c);
        self.unmount_rootfs(c);
        let _ = std::fs::remove_dir_all(self.config().monitor_dir(&c.id));
        if self.config().runtime_root().join(&c.id).exists() {
            let args = ["delete".to_string(), "--force".into(), c.id.clone()];
            if let Err(e) = supervisor::runc(self.config(), &args).await {
                logging::warn(&format!("container {}: runtime delete: {e}", c.id));
            }
        }
    }

    /// AutoRemove, or the restart policy.
    pub(crate) fn after_exit(
        &self,
        c: &Arc<Container>,
        host: &HostConfig,
        state: &crate::container::State,
    ) {
        let Some(engine) = self.arc() else { return };
        if host.auto_remove {
            let id = c.id.clone();
            tokio::spawn(async move {
                // Docker's --rm takes the anonymous volumes with the container.
                if let Err(e) = engine.remove_container(&id, true, true).await {
                    if !matches!(e, Error::NotFound(_)) {
                        logging::warn(&format!("container {id}: auto-remove: {e}"));
                    }
                }
            });
            return;
        }
        let ran = Duration::from_nanos((state.finished_ns - state.started_ns).max(0) as u64);
        let (delay, generation) = {
            let mut r = lock(&c.restart);
            let delay = r.decide(
                &host.restart_policy,
                state.exit_code,
                state.manually_stopped,
                state.restart_count,
                ran,
            );
            (delay, r.generation)
        };
        let Some(delay) = delay else { return };
        if let Err(e) = c.update(|r| r.state.status = Status::Restarting) {
            logging::warn(&format!("container {}: {e}", c.id));
        }
        let c = c.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            engine.policy_restart(&c, generation).await;
        });
    }

    async fn policy_restart(&self, c: &Arc<Container>, generation: u64) {
        let _op = c.op.lock().await;
        if lock(&c.restart).generation != generation || c.status() != Status::Restarting {
            return;
        }
        let _ = c.update(|r| r.state.restart_count += 1);
        if let Err(e) = self.start_locked(c).await {
            logging::warn(&format!("container {}: restart: {e}", c.id));
            let _ = c.update(|r| r.state.status = Status::Exited);
        }
    }

    pub(crate) async fn stop_container(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        self.stop_locked(&c, signal, timeout).await
    }

    async fn stop_locked(
        &self,
        c: &Arc<Container>,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let rec = c.record();
        {
            let mut r = lock(&c.restart);
            r.generation += 1;
        }
        match rec.state.status {
            Status::Running | Status::Paused => {}
            Status::Restarting => {
                c.update(|r| {
                    r.state.status = Status::Exited;
                    r.state.manually_stopped = true;
                })?;
                self.emit_container(c, "stop", &[]);
                return Ok(());
            }
            _ => return Err(Error::NotModified("container already stopped".into())),
        }
        let stop_signal = rec.config.stop_signal.as_deref().filter(|s| !s.is_empty());
        let sig = parse_signal(signal.as_deref().or(stop_signal).unwrap_or("SIGTERM"))?;
        let timeout = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        lock(&c.restart).exit_on_next = true;
        c.update(|r| r.state.manually_stopped = true)?;
        let mut rx = c.progress.subscribe();
        if let Err(e) = self
            .signal(c, sig, rec.state.status == Status::Paused)
            .await
        {
            if rx.borrow().running {
                logging::warn(&format!("container {}: stop signal: {e}", c.id));
            }
        }
        let exited = if timeout < 0 {
            rx.wait_for(|p| !p.running).await.is_ok()
        } else {
            let limit = Duration::from_secs(timeout as u64);
            tokio::time::timeout(limit, rx.wait_for(|p| !p.running))
                .await
                .is_ok()
        };
        if !exited {
            self.signal_or_exited(c, libc::SIGKILL, false).await?;
            let _ = rx.wait_for(|p| !p.running).await;
        }
        self.emit_container(c, "stop", &[]);
        Ok(())
    }

    /// Signals the container's init through the runtime (and thaws a paused container so
    /// the signal is handled); emits `kill`.
    async fn signal(&self, c: &Arc<Container>, sig: i32, thaw: bool) -> Result<()> {
        let args = ["kill".to_string(), c.id.clone(), sig.to_string()];
        supervisor::runc(self.config(), &args).await?;
        self.emit_container(c, "kill", &[("signal", sig.to_string())]);
        if thaw {
            supervisor::runc(self.config(), &["resume".to_string(), c.id.clone()]).await?;
            let _ = c.update(|r| {
                if r.state.status == Status::Paused {
                    r.state.status = Status::Running;
                }
            });
            self.emit_container(c, "unpause", &[]);
        }
        Ok(())
    }

    /// Signals the container; if the runtime refuses because the container has just
    /// exited (its exit not recorded yet), waits for that exit instead: Ok(false).
    async fn signal_or_exited(&self, c: &Arc<Container>, sig: i32, thaw: bool) -> Result<bool> {
        let mut rx = c.progress.subscribe();
        let Err(e) = self.signal(c, sig, thaw).await else {
            return Ok(true);
        };
        let exited = tokio::time::timeout(EXIT_GRACE, rx.wait_for(|p| !p.running)).await;
        match exited {
            Ok(_) => Ok(false),
            Err(_) => Err(e),
        }
    }

    /// Without the `op` lock: a kill must get through while a stop waits for its timeout.
    pub(crate) async fn kill_container(&self, id: &str, signal: Option<String>) -> Result<()> {
        let c = self.containers.get(id)?;
        let rec = c.record();
        if !rec.state.status.is_live() {
            return Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        let sig = parse_signal(signal.as_deref().unwrap_or("SIGKILL"))?;
        let stop_signal = rec
            .config
            .stop_signal
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_signal)
            .transpose()?
            .unwrap_or(libc::SIGTERM);
        let final_signal = sig == libc::SIGKILL || sig == stop_signal;
        if final_signal {
            lock(&c.restart).exit_on_next = true;
        }
        c.update(|r| r.state.manually_stopped = true)?;
        let paused = rec.state.status == Status::Paused;
        match self.signal_or_exited(&c, sig, paused && final_signal).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Conflict(format!(
                "Container {} is not running",
                c.id
            ))),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn restart_container(
        &self,
        id: &str,
        signal: Option<String>,
        timeout: Option<i64>,
    ) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        match self.stop_locked(&c, signal, timeout).await {
            Ok(()) | Err(Error::NotModified(_)) => {}
            Err(e) => return Err(e),
        }
        {
            let mut r = lock(&c.restart);
            r.generation += 1;
            r.exit_on_next = false;
        }
        c.update(|r| r.state.manually_stopped = false)?;
        self.start_locked(&c).await?;
        self.emit_container(&c, "restart", &[]);
        Ok(())
    }

    pub(crate) fn wait_container(&self, id: &str, condition: WaitCondition) -> Result<WaitFuture> {
        let c = self.containers.get(id)?;
        let mut rx = c.progress.subscribe();
        let base = rx.borrow_and_update().clone();
        Ok(Box::pin(async move {
            let done = |p: &crate::container::Progress| match condition {
                WaitCondition::NotRunning => !p.running || p.removed,
                WaitCondition::NextExit => p.exits > base.exits || p.removed,
                WaitCondition::Removed => p.removed,
            };
            let code = match rx.wait_for(done).await {
                Ok(p) => Some(p.exit_code),
                Err(_) => None,
            };
            let code = code.unwrap_or_else(|| rx.borrow().exit_code);
            drop(c);
            WaitResponse {
                status_code: code,
                error: None,
            }
        }))
    }

    pub(crate) async fn remove_container(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        let c = self.containers.get(id)?;
        let _op = c.op.lock().await;
        if self.containers.get(&c.id).is_err() {
            return Err(Error::NotFound(format!("No such container: {id}")));
        }
        let rec = c.record();
        match rec.state.status {
            Status::Running | Status::Paused | Status::Restarting if !force => {
                let what = if rec.state.status == Status::Restarting {
                    "restarting"
                } else {
                    "running"
                };
                return Err(Error::Conflict(format!(
                    "cannot remove container \"/{}\": container is {what}: stop the container before removing or force remove",
                    rec.name
                )));
            }
            Status::Running | Status::Paused => {
                {
                    let mut r = lock(&c.restart);
                    r.exit_on_next = true;
                    r.generation += 1;
                }
                let mut rx = c.progress.subscribe();
                let paused = rec.state.status == Status::Paused;
                self.signal_or_exited(&c, libc::SIGKILL, paused).await?;
                let _ = rx.wait_for(|p| !p.running).await;
            }
            Status::Removing => {
                return Err(Error::Conflict(format!(
                    "removal of container {} is already in progress",
                    c.id
                )))
            }
            _ => lock(&c.restart).generation += 1,
        }
        let _ = c.update(|r| r.state.status = Status::Removing);
        self.destroy_with(&c, volumes)
    }

    /// Removes a stopped container's files, snapshot and record.
    pub(crate) fn destroy(&self, c: &Arc<Container>) -> Result<()> {
        self.destroy_with(c, false)
    }

    /// [`Self::destroy`], and with `volumes` its anonymous volumes, before waiters for the
    /// removal hear of it (`run --rm` lists volumes right after).
    pub(crate) fn destroy_with(&self, c: &Arc<Container>, volumes: bool) -> Result<()> {
        let rec = c.record();
        self.unmount_rootfs(c);
        if let Err(e) = self.images().store().snapshots.remove(&c.id) {
            let _ = c.update(|r| {
                r.state.status = Status::Dead;
                r.state.error = e.to_string();
            });
            return Err(Error::Internal(format!(
                "removing the root snapshot of {}: {e}",
                c.id
            )));
        }
        let _ = std::fs::remove_dir_all(self.config().monitor_dir(&c.id));
        std::fs::remove_dir_all(&c.dir).at(&c.dir)?;
        self.containers.remove(&c.id);
        self.execs.remove_container(&c.id);
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        c.progress.send_modify(|p| p.removed = true);
        self.emit_container(c, "destroy", &[]);
        Ok(())
    }

    pub(crate) fn unmount_rootfs(&self, c: &Container) {
        let rootfs = c.dir.join("bundle").join("rootfs");
        for _ in 0..8 {
            if !is_mounted(&rootfs) {
                return;
            }
            if let Err(e) = self.images().store().snapshots.unmount(&rootfs) {
                logging::debug(&format!("unmounting {}: {e}; detaching", rootfs.display()));
                let _ = nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH);
            }
        }
    }

    pub(crate) fn log_path(&self, id: &str) -> PathBuf {
        self.config()
            .container_dir(id)
            .join(format!("{id}-json.log"))
    }

    pub(crate) fn view_of(&self, c: &Container) -> ContainerView {
        let rec = c.record();
        let bundle = c.dir.join("bundle");
        ContainerView {
            id: rec.id.clone(),
            name: rec.name.clone(),
            running: rec.state.status.is_live(),
            paused: rec.state.status == Status::Paused,
            pid: (rec.state.pid > 0 && rec.state.status.is_live()).then_some(rec.state.pid),
            log_path: self.log_path(&rec.id),
            rootfs: bundle.join("rootfs"),
            bundle,
            cgroups_path: spec::cgroups_path(
                &rec.host_config,
                &self.config().cgroup_parent,
                &rec.id,
            ),
            monitor_dir: self.config().monitor_dir(&rec.id),
            config: rec.config,
            host_config: rec.host_config,
        }
    }

    /// Emits a container event with its name, image and labels.
    pub(crate) fn emit_container(&self, c: &Container, action: &str, extra: &[(&str, String)]) {
        let rec = c.lock();
        let event = container_event(
            action,
            &rec.id,
            &rec.name,
            &rec.config.image,
            rec.config.labels.as_ref(),
            extra,
        );
        drop(rec);
        self.events.publish(event);
    }

    pub(crate) fn emit_event(&self, kind: &str, action: &str, id: &str, extra: &[(&str, String)]) {
        if kind == "container" {
            if let Ok(c) = self.containers.get(id) {
                return self.emit_container(&c, action, extra);
            }
        }
        let mut event = container_event(action, id, "", "", None, extra);
        event.kind = kind.to_string();
        event.actor.attributes.remove("image");
        event.actor.attributes.remove("name");
        if kind != "container" {
            event.status = None;
            event.id = None;
            event.from = None;
        }
        self.events.publish(event);
    }
}

pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `max-size` and `max-file` of the json-file log (Docker's units: 10k, 20m, 1g).
pub fn log_options(host: &HostConfig) -> Result<(Option<u64>, Option<u32>)> {
    let opts = host.log_config.config.clone().unwrap_or_default();
    let size =
        match opts.get("max-size").map(String::as_str) {
            None | Some("" | "-1") => None,
            Some(s) => Some(parse_size(s).ok_or_else(|| {
                Error::InvalidParameter(format!("invalid log opt max-size: {s:?}"))
            })?),
        };
    let files = match opts.get("max-file").map(String::as_str) {
        None | Some("") => None,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                return Err(Error::InvalidParameter(format!(
                    "invalid log opt max-file: {s:?}: it must be a number of at least 1"
                )))
            }
        },
    };
    if let Some(bad) = opts.keys().find(|k| {
        !matches!(
            k.as_str(),
            "max-size" | "max-file" | "compress" | "labels" | "env" | "tag" | "mode"
        )
    }) {
        return Err(Error::InvalidParameter(format!(
            "unknown log opt '{bad}' for json-file log driver"
        )));
    }
    Ok((size, files))
}

fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let digits = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let num: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0f64.powi(4),
        _ => return None,
    };
    let bytes = num * mult;
    (bytes >= 1.0).then_some(bytes as u64)
}

/// A signal name (`SIGTERM`, `TERM`, `term`) or number, as a number.
pub fn parse_signal(text: &str) -> Result<i32> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    } else {
        let upper = t.to_ascii_uppercase();
        let name = if upper.starts_with("SIG") {
            upper
        } else {
            format!("SIG{upper}")
        };
        if let Ok(sig) = name.parse::<nix::sys::signal::Signal>() {
            return Ok(sig as i32);
        }
        if let Some(rt) = name
            .strip_prefix("SIGRTMIN+")
            .and_then(|n| n.parse::<i32>().ok())
        {
            let n = libc::SIGRTMIN() + rt;
            if (1..=64).contains(&n) {
                return Ok(n);
            }
        }
    }
    Err(Error::InvalidParameter(format!("Invalid signal: {text}")))
}

/// Docker's exit codes for a process that could not be started: 127 not found, 126 found but
/// not executable (no exec bit, a directory, not a format the kernel runs), else 128.
fn start_failure_code(msg: &str) -> i64 {
    let m = msg.to_ascii_lowercase();
    if m.contains("no such file") || m.contains("not found") {
        127
    } else if ["permission denied", "is a directory", "exec format error"]
        .iter()
        .any(|t| m.contains(t))
    {
        126
    } else {
        128
    }
}

/// The API's status for a start that failed: 400 when it is the request's command.
fn start_error(msg: String) -> Error {
    let code = start_failure_code(&msg);
    if code == 127 || code == 126 {
        Error::InvalidParameter(msg)
    } else {
        Error::Internal(msg)
    }
}

/// Whether `path` is a mount point (in this mount namespace).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(abs) = std::path::absolute(path) else {
        return false;
    };
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = abs.to_string_lossy().into_owned();
    table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mount(mp) == want)
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(n) = s
                .get(i + 1..i + 4)
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(n);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+1").unwrap(), libc::SIGRTMIN() + 1);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10k"), Some(10240));
        assert_eq!(parse_size("1m"), Some(1 << 20));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_size("x"), None);
    }

    #[test]
    fn mount_escapes() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
        assert!(is_mounted(Path::new("/proc")));
        assert!(!is_mounted(Path::new("/proc/self")));
    }

    #[test]
    fn failure_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": no such file or directory"),
            127
        );
        assert_eq!(start_failure_code("exec /x: permission denied"), 126);
        assert_eq!(start_failure_code("exec: \"/etc\": is a directory"), 126);
        assert_eq!(start_failure_code("exec: \"/x\": exec format error"), 126);
        assert_eq!(start_failure_code("cgroup: bad"), 128);
    }
}
