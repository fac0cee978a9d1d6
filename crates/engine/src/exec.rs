//! Exec instances: `docker exec` — a process started in a running container through
//! `gorae-runc exec --process <file>`, run as the daemon's child (exec ends with the daemon, as
//! docker's do), its stdio pumped to the hijacked API connection.
//!
//! Without a tty the child's stdin/stdout/stderr are pipes; stdout and stderr go out in
//! docker's multiplexed framing. With a tty, gorae-runc sends the pty master over a console
//! socket (SCM_RIGHTS) and the bytes go both ways raw; resize is TIOCSWINSZ on that master.
//!
//! A process that cannot start (no such program) must look like docker: the runtime's error on
//! the stream's stderr and exit code 127 (126 for anything else that kept it from starting).
//! gorae-runc's stderr is the process's too, so the runtime's own failure is told apart by its
//! `--log` file, which only the runtime writes.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oci_spec::runtime::{Capability, LinuxCapabilities, Process, Spec};

use crate::error::{Error, IoContext, Result};
use crate::types::{ExecConfig, ExecInspect, ExecProcessConfig};

mod fdpass;
mod pump;
pub mod user;

/// Exec instances by id.
#[derive(Default)]
pub struct Execs {
    all: Mutex<HashMap<String, Arc<ExecInstance>>>,
}

/// One `docker exec`: created, then started once.
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
}

#[derive(Default)]
struct ExecState {
    started: bool,
    running: bool,
    exit_code: Option<i64>,
    pid: i64,
    /// The pty master while a tty exec runs (for resize).
    console: Option<Arc<OwnedFd>>,
}

impl Execs {
    /// Registers a new instance and returns it.
    pub fn insert(&self, container_id: &str, config: ExecConfig) -> Result<Arc<ExecInstance>> {
        let id = hex::encode(random_bytes(32)?);
        let inst = Arc::new(ExecInstance {
            id: id.clone(),
            container_id: container_id.to_string(),
            config,
            state: Mutex::default(),
        });
        lock(&self.all).insert(id, inst.clone());
        Ok(inst)
    }

    /// The instance with this id (full id or unique prefix, as docker takes).
    pub fn get(&self, id: &str) -> Result<Arc<ExecInstance>> {
        let all = lock(&self.all);
        if let Some(inst) = all.get(id) {
            return Ok(inst.clone());
        }
        let mut found = all
            .values()
            .filter(|e| !id.is_empty() && e.id.starts_with(id));
        match (found.next(), found.next()) {
            (Some(inst), None) => Ok(inst.clone()),
            _ => Err(Error::NotFound(format!("No such exec instance: {id}"))),
        }
    }

    /// The ids of a container's exec instances (inspect's `ExecIDs`).
    pub fn ids_of(&self, container_id: &str) -> Vec<String> {
        let mut ids: Vec<String> = lock(&self.all)
            .values()
            .filter(|e| e.container_id == container_id)
            .map(|e| e.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Forgets a container's instances (when it stops or is removed, as docker does).
    pub fn remove_container(&self, container_id: &str) {
        lock(&self.all).retain(|_, e| e.container_id != container_id || e.is_running());
    }
}

impl ExecInstance {
    pub fn is_running(&self) -> bool {
        lock(&self.state).running
    }

    /// Marks the instance started; `Conflict` when it was already.
    pub fn claim_start(&self) -> Result<()> {
        let mut state = lock(&self.state);
        if state.running {
            return Err(Error::Conflict(format!(
                "Error: Exec command {} is already running",
                self.id
            )));
        }
        if state.started {
            return Err(Error::Conflict(format!(
                "Error: Exec command {} has already run",
                self.id
            )));
        }
        state.started = true;
        state.running = true;
        Ok(())
    }

    pub(crate) fn set_pid(&self, pid: i64) {
        lock(&self.state).pid = pid;
    }

    pub(crate) fn set_console(&self, console: Option<Arc<OwnedFd>>) {
        lock(&self.state).console = console;
    }

    pub(crate) fn finish(&self, exit_code: i64) {
        let mut state = lock(&self.state);
        state.running = false;
        state.exit_code = Some(exit_code);
        state.console = None;
        state.pid = 0;
    }

    /// TIOCSWINSZ on the pty master of a running tty exec.
    pub fn resize(&self, height: u16, width: u16) -> Result<()> {
        let console = lock(&self.state).console.clone();
        let Some(console) = console else {
            if !self.config.tty {
                return Err(Error::Conflict(format!(
                    "exec {} has no tty to resize",
                    self.id
                )));
            }
            return Err(Error::Conflict(format!("Exec {} is not running", self.id)));
        };
        gorae_runtime::sys::set_window_size(console.as_fd(), height, width)
            .map_err(|e| Error::Internal(format!("resizing the tty of exec {}: {e}", self.id)))
    }

    pub fn inspect(&self) -> ExecInspect {
        let state = lock(&self.state);
        let cmd = self.config.cmd.clone().unwrap_or_default();
        ExecInspect {
            id: self.id.clone(),
            running: state.running,
            exit_code: state.exit_code,
            process_config: ExecProcessConfig {
                tty: self.config.tty,
                entrypoint: cmd.first().cloned().unwrap_or_default(),
                arguments: cmd.iter().skip(1).cloned().collect(),
                privileged: self.config.privileged,
                user: self.config.user.clone(),
            },
            open_stdin: self.config.attach_stdin,
            open_stderr: self.config.attach_stderr,
            open_stdout: self.config.attach_stdout,
            container_id: self.container_id.clone(),
            pid: state.pid,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `n` bytes from the kernel's random source.
pub fn random_bytes(n: usize) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .at("/dev/urandom")?;
    Ok(buf)
}

/// What a start needs to know about the container, taken from its view.
pub struct Target {
    pub container_id: String,
    /// The bundle's config.json (the container's own process is the base).
    pub bundle: PathBuf,
    /// Where the container's root is seen from the host (/proc/<pid>/root).
    pub root: PathBuf,
}

/// The OCI process of an exec: the container's process with the exec's command, env, cwd,
/// user, terminal and (privileged) capabilities.
pub fn build_process(
    target: &Target,
    config: &ExecConfig,
    console: Option<(u32, u32)>,
) -> Result<Process> {
    let config_json = target.bundle.join("config.json");
    let spec = Spec::load(&config_json)
        .map_err(|e| Error::Internal(format!("{}: {e}", config_json.display())))?;
    let mut process = spec.process().clone().unwrap_or_default();
    let cmd = config.cmd.clone().unwrap_or_default();
    process.set_args(Some(cmd));
    process.set_env(Some(merge_env(
        process.env().as_deref().unwrap_or_default(),
        config.env.as_deref().unwrap_or_default(),
    )));
    if !config.working_dir.is_empty() {
        process.set_cwd(PathBuf::from(&config.working_dir));
    }
    if !config.user.is_empty() {
        let resolved = user::resolve(&target.root, &config.user)?;
        let mut u = process.user().clone();
        u.set_uid(resolved.uid);
        u.set_gid(resolved.gid);
        u.set_additional_gids(Some(resolved.additional_gids));
        u.set_umask(None);
        process.set_user(u);
    }
    process.set_terminal(Some(config.tty));
    process.set_console_size(console.and_then(|(h, w)| {
        oci_spec::runtime::BoxBuilder::default()
            .height(u64::from(h))
            .width(u64::from(w))
            .build()
            .ok()
    }));
    if config.privileged {
        process.set_capabilities(Some(all_capabilities()));
    }
    Ok(process)
}

/// The container's env with the exec's entries replacing those of the same name.
pub fn merge_env(base: &[String], extra: &[String]) -> Vec<String> {
    let name = |e: &str| e.split_once('=').map_or(e, |(n, _)| n).to_string();
    let mut out: Vec<String> = base.to_vec();
    for entry in extra {
        let n = name(entry);
        out.retain(|e| name(e) != n);
        out.push(entry.clone());
    }
    out
}

/// Every capability the daemon holds (as the engine gives a privileged container): asking
/// for one the kernel or the daemon lacks would make capset fail.
fn all_capabilities() -> LinuxCapabilities {
    let held = crate::spec::held_capabilities().unwrap_or(u64::MAX);
    let all: std::collections::HashSet<Capability> = gorae_runtime::capabilities::ALL
        .iter()
        .copied()
        .filter(|c| held & (1u64 << gorae_runtime::capabilities::number(*c)) != 0)
        .collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(all.clone()));
    caps.set_effective(Some(all.clone()));
    caps.set_permitted(Some(all.clone()));
    caps.set_inheritable(Some(all));
    caps.set_ambient(None);
    caps
}

/// How a started exec reaches the runtime.
pub struct Launch {
    pub runtime: PathBuf,
    pub runtime_root: PathBuf,
    /// Where the process file, pid file, runtime log and console socket go (removed after).
    pub work_dir: PathBuf,
}

impl Launch {
    fn file(&self, name: &str) -> PathBuf {
        self.work_dir.join(name)
    }
}

/// Writes the process file and everything the start needs; nothing runs yet.
pub fn prepare(launch: &Launch, process: &Process) -> Result<()> {
    std::fs::create_dir_all(&launch.work_dir).at(&launch.work_dir)?;
    let path = launch.file("process.json");
    let body = serde_json::to_vec(process)
        .map_err(|e| Error::Internal(format!("encoding {}: {e}", path.display())))?;
    std::fs::write(&path, body).at(&path)
}

/// The exit code docker gives an exec whose process never started, from the runtime's error.
pub fn start_failure_code(error: &str) -> i64 {
    let e = error.to_ascii_lowercase();
    if e.contains("not found") || e.contains("no such file") {
        127
    } else {
        126
    }
}

/// The runtime's error, when its `--log` (json lines) holds one.
fn runtime_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v.get("level")? == "error").then(|| v.get("msg")?.as_str().map(str::to_string))?
    })
}

/// Runs the exec to its end with `conn` as its stdio (`None`: detached), and records the exit.
pub async fn run(
    inst: Arc<ExecInstance>,
    launch: Launch,
    conn: Option<crate::engine::DuplexStream>,
) {
    let (reader, out) = pump::split(conn);
    let code = pump::run(&inst, &launch, reader, out.clone()).await;
    inst.finish(code);
    // Only now may the connection end.
    drop(out);
    let _ = std::fs::remove_dir_all(&launch.work_dir);
}

/// The stream of an exec that could not be prepared: its error, on stderr.
pub async fn report_failure(conn: crate::engine::DuplexStream, tty: bool, error: Error) {
    let (_reader, out) = pump::split(Some(conn));
    if let Some(out) = out {
        let _ = out.send(pump::message(tty, &format!("{error}\r\n"))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_env_replaces_by_name() {
        let base = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        let out = merge_env(&base, &["A=2".into(), "B=3".into()]);
        assert_eq!(out, ["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn start_failures_map_to_docker_codes() {
        assert_eq!(
            start_failure_code("exec: \"nope\": executable file not found in $PATH"),
            127
        );
        assert_eq!(start_failure_code("permission denied"), 126);
    }

    #[test]
    fn unknown_and_ambiguous_ids_are_not_found() {
        let execs = Execs::default();
        let a = execs.insert("c1", ExecConfig::default()).unwrap();
        assert_eq!(a.id.len(), 64);
        assert_eq!(execs.get(&a.id[..12]).unwrap().id, a.id);
        let err = execs.get("zz").err().unwrap();
        assert_eq!(err.to_string(), "No such exec instance: zz");
        assert_eq!(execs.ids_of("c1"), std::slice::from_ref(&a.id));
        a.claim_start().unwrap();
        assert!(a.claim_start().is_err());
    }
}
