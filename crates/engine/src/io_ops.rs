//! The engine's I/O operations — logs, exec, stats, top, archive — as methods of [`Engine`].
//! Each takes a [`ContainerView`] of the container and works from it without the engine's
//! lock; the work itself is in the module of the same name.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use nix::fcntl::OFlag;
use tokio::sync::mpsc;

use crate::engine::{ContainerView, Engine, Hijack, LogsOptions, StreamKind};
use crate::error::{Error, Result};
use crate::types::{ExecConfig, ExecInspect, ExecStartConfig};

impl Engine {
    /// Framed chunks: multiplexed (8-byte header per chunk) unless the container has a tty.
    pub async fn logs(
        &self,
        id: &str,
        opts: LogsOptions,
    ) -> Result<(StreamKind, mpsc::Receiver<Bytes>)> {
        let view = self.view(id).await?;
        if !opts.stdout && !opts.stderr {
            return Err(Error::InvalidParameter(
                "Bad parameters: you must choose at least one stream".into(),
            ));
        }
        if view.host_config.log_config.kind == "none" {
            return Err(Error::NotImplemented(
                "configured logging driver does not support reading".into(),
            ));
        }
        let raw = view.config.tty;
        let read = crate::logs::ReadOptions {
            stdout: opts.stdout,
            stderr: opts.stderr,
            since_nanos: crate::logs::seconds_to_nanos(opts.since),
            until_nanos: crate::logs::seconds_to_nanos(opts.until),
            timestamps: opts.timestamps,
            tail: opts.tail,
            follow: opts.follow,
            raw,
            poll_interval: Duration::from_millis(100),
        };
        let monitor_dir = view.monitor_dir.clone();
        let running = view.running;
        let alive = Box::new(move || running && crate::logs::monitor_alive(&monitor_dir));
        Ok((
            stream_kind(raw),
            crate::logs::spawn_reader(view.log_path, read, alive),
        ))
    }

    /// `{"Titles": [...], "Processes": [[...]]}`.
    pub async fn top(&self, id: &str, ps_args: Option<String>) -> Result<serde_json::Value> {
        let view = self.view(id).await?;
        if !view.running {
            return Err(not_running(&view));
        }
        let cgroup = crate::stats::cgroup(&view.cgroups_path, &view.id)
            .ok_or_else(|| Error::Internal(format!("container {}: no cgroup", view.id)))?;
        let pids = cgroup.pids().map_err(gorae_runtime::Error::from)?;
        let args = ps_args.filter(|a| !a.trim().is_empty());
        crate::top::top(&pids, args.as_deref().unwrap_or("-ef")).await
    }

    /// Docker's stats JSON, once (`stream` false) or every second.
    pub async fn stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<mpsc::Receiver<serde_json::Value>> {
        use crate::stats::{sample, to_json};
        let view = self.view(id).await?;
        let (tx, rx) = mpsc::channel(4);
        let cgroup = crate::stats::cgroup(&view.cgroups_path, &view.id);
        let Some(cgroup) = cgroup.filter(|_| view.running) else {
            let _ = tx.try_send(to_json(&view.name, &view.id, None, None, false));
            return Ok(rx);
        };
        let v2 = crate::stats::is_v2(&cgroup);
        tokio::spawn(async move {
            let (name, id) = (view.name, view.id);
            let mut prev = None;
            if !stream && !one_shot {
                // The client computes CPU% from precpu: give it a short, real interval.
                prev = sample(&cgroup);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            loop {
                let Some(now) = sample(&cgroup) else {
                    if prev.is_none() {
                        let _ = tx.send(to_json(&name, &id, None, None, v2)).await;
                    }
                    return;
                };
                if tx
                    .send(to_json(&name, &id, Some(&now), prev.as_ref(), v2))
                    .await
                    .is_err()
                    || !stream
                {
                    return;
                }
                prev = Some(now);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Ok(rx)
    }

    /// `HEAD /containers/{id}/archive`: the `X-Docker-Container-Path-Stat` value (base64 JSON).
    pub async fn archive_stat(&self, id: &str, path: &str) -> Result<String> {
        let view = self.view(id).await?;
        let root = self.container_root(&view).await?;
        let target = open_target(&root, &view, path)?;
        Ok(stat_header(&target))
    }

    /// `GET /containers/{id}/archive`: the stat header and a tar stream of the path.
    pub async fn archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(String, mpsc::Receiver<Bytes>)> {
        let view = self.view(id).await?;
        let root = self.container_root(&view).await?;
        let target = open_target(&root, &view, path)?;
        let header = stat_header(&target);
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let _root = root;
            let mut sink = ChannelWriter {
                tx,
                buf: Vec::new(),
            };
            // A failure mid-stream can only cut the tar short: the status is already sent.
            let _ = crate::archive::write_tar(target, &mut sink);
        });
        Ok((header, rx))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar stream under `path`.
    pub async fn archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        body: mpsc::Receiver<Bytes>,
    ) -> Result<()> {
        let view = self.view(id).await?;
        if view.host_config.readonly_rootfs {
            return Err(Error::InvalidParameter(
                "container rootfs is marked read-only".into(),
            ));
        }
        let root = self.container_root(&view).await?;
        // The extraction point is followed if it is a symlink, inside the container's root.
        let dest_fd = crate::archive::open_under(&root.fd, path, OFlag::O_PATH)
            .map_err(|e| not_found_or(e, &view, path))?;
        let st =
            nix::sys::stat::fstat(&dest_fd).map_err(|e| not_found_or(e.into(), &view, path))?;
        if crate::archive::kind(&st) != nix::sys::stat::SFlag::S_IFDIR {
            return Err(Error::InvalidParameter(
                "extraction point is not a directory".into(),
            ));
        }
        let dest = path.to_string();
        let done = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx: body,
                cur: Bytes::new(),
            };
            crate::archive::extract(&root.fd, &dest, no_overwrite_dir_non_dir, reader)
        });
        done.await
            .map_err(|e| Error::Internal(format!("extracting the archive: {e}")))?
    }

    /// Returns the exec instance's id.
    pub async fn exec_create(&self, id: &str, config: ExecConfig) -> Result<String> {
        let view = self.view(id).await?;
        check_exec_target(&view)?;
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(Error::InvalidParameter("No exec command specified".into()));
        }
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        let inst = self.execs.insert(&view.id, config)?;
        let attrs = [("execID", inst.id.clone())];
        self.emit(
            "container",
            &format!("exec_create: {cmd}"),
            &view.id,
            &attrs,
        );
        Ok(inst.id.clone())
    }

    /// Detached starts run in the background and return `None`; attached ones return the
    /// hijack to run.
    pub async fn exec_start(
        &self,
        exec_id: &str,
        start: ExecStartConfig,
    ) -> Result<Option<Hijack>> {
        let inst = self.execs.get(exec_id)?;
        let view = self.view(&inst.container_id).await?;
        check_exec_target(&view)?;
        inst.claim_start()?;
        let launch = crate::exec::Launch {
            runtime: self.config().runtime.clone(),
            runtime_root: self.config().runtime_root(),
            work_dir: self.config().run_dir.join("exec").join(&inst.id[..12]),
        };
        if let Err(e) = prepare_exec(&inst, &view, &start, &launch) {
            inst.finish(126);
            if start.detach {
                return Err(e);
            }
            // As docker: the stream opens, says why, and the exec's exit code is 126.
            let tty = inst.config.tty;
            return Ok(Some(Hijack {
                kind: stream_kind(tty),
                run: Box::new(move |conn| Box::pin(crate::exec::report_failure(conn, tty, e))),
            }));
        }
        let cmd = inst.config.cmd.clone().unwrap_or_default().join(" ");
        let attrs = [("execID", inst.id.clone())];
        self.emit("container", &format!("exec_start: {cmd}"), &view.id, &attrs);
        let me = self.me.clone();
        if start.detach {
            tokio::spawn(run_exec(me, inst, launch, None));
            return Ok(None);
        }
        let kind = stream_kind(inst.config.tty);
        Ok(Some(Hijack {
            kind,
            run: Box::new(move |conn| Box::pin(run_exec(me, inst, launch, Some(conn)))),
        }))
    }

    pub async fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        self.execs.get(exec_id)?.resize(height, width)
    }

    pub async fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect> {
        Ok(self.execs.get(exec_id)?.inspect())
    }

    /// The container's root as the I/O operations see it: `/proc/<pid>/root` while it runs,
    /// else its rootfs, mounted for the while if it is not.
    async fn container_root(&self, view: &ContainerView) -> Result<ContainerRoot> {
        if let (true, Some(pid)) = (view.running, view.pid) {
            let path = PathBuf::from(format!("/proc/{pid}/root"));
            return ContainerRoot::open(path, None, None);
        }
        // The container's own operation lock: a start must not mount its root over ours (or
        // find ours and have it unmounted under it) while the copy runs.
        let container = self.containers.get(&view.id)?;
        let lock = container.op.clone().lock_owned().await;
        let view = self.view(&view.id).await?;
        if let (true, Some(pid)) = (view.running, view.pid) {
            drop(lock);
            let path = PathBuf::from(format!("/proc/{pid}/root"));
            return ContainerRoot::open(path, None, None);
        }
        if is_mount_point(&view.rootfs) {
            return ContainerRoot::open(view.rootfs.clone(), None, Some(lock));
        }
        // The snapshot is the container's id (engine-core mounts it so at start).
        let store = self.images().store().clone();
        store.snapshots.mount(&view.id, &view.rootfs)?;
        ContainerRoot::open(view.rootfs.clone(), Some(store), Some(lock))
    }
}

/// Runs an exec and publishes its `exec_die`.
async fn run_exec(
    engine: std::sync::Weak<Engine>,
    inst: Arc<crate::exec::ExecInstance>,
    launch: crate::exec::Launch,
    conn: Option<crate::engine::DuplexStream>,
) {
    crate::exec::run(inst.clone(), launch, conn).await;
    if let Some(engine) = engine.upgrade() {
        let code = inst.inspect().exit_code.unwrap_or(126);
        let attrs = [("execID", inst.id.clone()), ("exitCode", code.to_string())];
        engine.emit("container", "exec_die", &inst.container_id, &attrs);
    }
}

/// An open container root; unmounts it on drop when it was mounted for the operation.
struct ContainerRoot {
    fd: OwnedFd,
    path: PathBuf,
    mounted: Option<Arc<gorae_image::Store>>,
    _lock: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl ContainerRoot {
    fn open(
        path: PathBuf,
        mounted: Option<Arc<gorae_image::Store>>,
        lock: Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Result<ContainerRoot> {
        let opened = nix::fcntl::open(
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        );
        match opened {
            Ok(fd) => Ok(ContainerRoot {
                fd,
                path,
                mounted,
                _lock: lock,
            }),
            Err(e) => {
                if let Some(store) = &mounted {
                    let _ = store.snapshots.unmount(&path);
                }
                Err(Error::io(&path, e.into()))
            }
        }
    }
}

impl Drop for ContainerRoot {
    fn drop(&mut self) {
        if let Some(store) = &self.mounted {
            let _ = store.snapshots.unmount(&self.path);
        }
    }
}

fn is_mount_point(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(dir), Some(Ok(parent))) = (
        std::fs::symlink_metadata(path),
        path.parent().map(std::fs::symlink_metadata),
    ) else {
        return false;
    };
    dir.dev() != parent.dev()
}

fn open_target(
    root: &ContainerRoot,
    view: &ContainerView,
    path: &str,
) -> Result<crate::archive::Target> {
    crate::archive::open_target(&root.fd, path).map_err(|e| not_found_or(e, view, path))
}

/// Docker's 404 for a path that is not there, else the error as it is.
fn not_found_or(e: std::io::Error, view: &ContainerView, path: &str) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Error::NotFound(format!(
            "Could not find the file {path} in container {}",
            view.name
        )),
        _ => Error::Internal(format!("container {}: {path}: {e}", view.name)),
    }
}

fn stat_header(target: &crate::archive::Target) -> String {
    let stat = crate::archive::path_stat(target);
    crate::archive::base64(&serde_json::to_vec(&stat).unwrap_or_default())
}

fn stream_kind(tty: bool) -> StreamKind {
    if tty {
        StreamKind::Raw
    } else {
        StreamKind::Multiplexed
    }
}

fn not_running(view: &ContainerView) -> Error {
    Error::Conflict(format!("Container {} is not running", view.id))
}

fn check_exec_target(view: &ContainerView) -> Result<()> {
    if !view.running {
        return Err(not_running(view));
    }
    if view.paused {
        return Err(Error::Conflict(format!(
            "Container {} is paused, unpause the container before exec",
            view.id
        )));
    }
    Ok(())
}

fn prepare_exec(
    inst: &crate::exec::ExecInstance,
    view: &ContainerView,
    start: &ExecStartConfig,
    launch: &crate::exec::Launch,
) -> Result<()> {
    let pid = view.pid.ok_or_else(|| not_running(view))?;
    let target = crate::exec::Target {
        container_id: view.id.clone(),
        bundle: view.bundle.clone(),
        root: PathBuf::from(format!("/proc/{pid}/root")),
    };
    let size = start
        .console_size
        .as_deref()
        .or(inst.config.console_size.as_deref())
        .and_then(|s| match s {
            [h, w] => Some((*h, *w)),
            _ => None,
        });
    let process = crate::exec::build_process(&target, &inst.config, size)?;
    crate::exec::prepare(launch, &process)
}

/// Tar output to the response body in 64 KiB chunks.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

/// The request body as a blocking reader, for the tar extraction thread.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.cur = chunk,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}
