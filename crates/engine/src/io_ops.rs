//! The engine's I/O operations — logs, exec, stats, top, archive — as methods of [`Engine`].
//! Each takes a [`crate::engine::ContainerView`] of the container and works from it without
//! the engine's lock; the work itself is in the module of the same name.

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::engine::{Engine, Hijack, LogsOptions, StreamKind};
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
            poll_interval: std::time::Duration::from_millis(100),
        };
        let monitor_dir = view.monitor_dir.clone();
        let running = view.running;
        let alive = Box::new(move || running && crate::logs::monitor_alive(&monitor_dir));
        let kind = if raw {
            StreamKind::Raw
        } else {
            StreamKind::Multiplexed
        };
        Ok((kind, crate::logs::spawn_reader(view.log_path, read, alive)))
    }

    /// `{"Titles": [...], "Processes": [[...]]}`.
    pub async fn top(&self, _id: &str, _ps_args: Option<String>) -> Result<serde_json::Value> {
        Err(not_yet("top"))
    }

    /// Docker's stats JSON, once (`stream` false) or every second.
    pub async fn stats(
        &self,
        _id: &str,
        _stream: bool,
        _one_shot: bool,
    ) -> Result<mpsc::Receiver<serde_json::Value>> {
        Err(not_yet("stats"))
    }

    /// `HEAD /containers/{id}/archive`: the `X-Docker-Container-Path-Stat` value (base64 JSON).
    pub async fn archive_stat(&self, _id: &str, _path: &str) -> Result<String> {
        Err(not_yet("archive"))
    }

    /// `GET /containers/{id}/archive`: the stat header and a tar stream of the path.
    pub async fn archive_get(
        &self,
        _id: &str,
        _path: &str,
    ) -> Result<(String, mpsc::Receiver<Bytes>)> {
        Err(not_yet("archive"))
    }

    /// `PUT /containers/{id}/archive`: extracts a tar stream under `path`.
    pub async fn archive_put(
        &self,
        _id: &str,
        _path: &str,
        _no_overwrite_dir_non_dir: bool,
        _body: mpsc::Receiver<Bytes>,
    ) -> Result<()> {
        Err(not_yet("archive"))
    }

    /// Returns the exec instance's id.
    pub async fn exec_create(&self, _id: &str, _config: ExecConfig) -> Result<String> {
        Err(not_yet("exec"))
    }

    /// Detached starts run in the background and return `None`; attached ones return the
    /// hijack to run.
    pub async fn exec_start(
        &self,
        _exec_id: &str,
        _config: ExecStartConfig,
    ) -> Result<Option<Hijack>> {
        Err(not_yet("exec"))
    }

    pub async fn exec_resize(&self, _exec_id: &str, _height: u16, _width: u16) -> Result<()> {
        Err(not_yet("exec"))
    }

    pub async fn exec_inspect(&self, _exec_id: &str) -> Result<ExecInspect> {
        Err(not_yet("exec"))
    }
}

fn not_yet(what: &str) -> Error {
    Error::NotImplemented(format!("{what} is not implemented yet"))
}
