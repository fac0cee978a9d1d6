//! The container lifecycle as runc's commands expose it: create, start, run, state, kill,
//! delete, pause, resume, ps, list. Each call loads what it needs from the state root, so
//! any process can drive a container another one created.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources, Spec};

use crate::cgroups::Cgroup;
use crate::config::Bundle;
use crate::error::{Error, Result, SysContext};
use crate::init::{InitContext, StartSignal};
use crate::namespaces::NamespacePlan;
use crate::state::{self, ContainerState, StateRoot, Status};
use crate::sync::{Channel, Msg};
use crate::{hooks, seccomp, spawn, sys};

/// What `create` and `run` take besides the container id.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

/// Receives warnings the OCI spec says to log and go on from (failed poststart/poststop hooks).
pub type WarnFn = fn(&str);

/// The runtime over one state root.
pub struct Runtime {
    root: StateRoot,
    warn: WarnFn,
}

/// A container whose init is set up and waiting to be started.
pub(crate) struct Launched {
    pub state: ContainerState,
    pub channel: Channel,
    pub console: Option<OwnedFd>,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>, warn: WarnFn) -> Self {
        Runtime {
            root: StateRoot::new(root),
            warn,
        }
    }

    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    /// `create`: sets the container up and leaves its init waiting on the exec FIFO.
    pub fn create(&self, opts: &CreateOptions) -> Result<()> {
        self.launch(opts, true).map(drop)
    }

    /// `run`: create and start; without `detach`, wait for the program and return its exit
    /// code (128+N when killed by signal N), then delete the container.
    pub fn run(&self, opts: &CreateOptions, detach: bool) -> Result<i32> {
        let signals = if detach {
            None
        } else {
            Some(crate::foreground::block_signals()?)
        };
        let launched = self.launch(opts, false)?;
        let state = launched.state.clone();
        if let Err(e) = start_over_channel(&launched.channel) {
            let _ = self.destroy(&state);
            return Err(e);
        }
        self.run_poststart(&state);
        let Some(signals) = signals else { return Ok(0) };
        let code = crate::foreground::wait(Pid::from_raw(state.pid), signals, launched.console);
        self.destroy(&state)?;
        code
    }

    pub(crate) fn launch(&self, opts: &CreateOptions, use_fifo: bool) -> Result<Launched> {
        let bundle = Bundle::load(&opts.bundle)?;
        let spec = &bundle.spec;
        let linux = spec
            .linux()
            .as_ref()
            .ok_or_else(|| Error::Init("config has no linux section".into()))?;
        let seccomp = linux.seccomp().as_ref().map(seccomp::compile).transpose()?;
        let namespaces = NamespacePlan::from_spec(spec);
        let console_socket = connect_console(spec, opts, use_fifo)?;
        let bind_sources = crate::rootfs::open_bind_sources(
            spec,
            &bundle.dir,
            // open_tree needs CAP_SYS_ADMIN: rootless callers bind by path.
            namespaces.creates(oci_spec::runtime::LinuxNamespaceType::User)
                && nix::unistd::geteuid().is_root(),
        )?;
        self.root.claim(&opts.id)?;
        let mut guard = Cleanup {
            root: &self.root,
            id: &opts.id,
            cgroup: None,
            pid: None,
        };
        let cgroup = self.make_cgroup(spec, &opts.id, &mut guard)?;
        let fifo = self.root.exec_fifo(&opts.id);
        if use_fifo {
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o622))
                .ctx(|| format!("mkfifo {}", fifo.display()))?;
            // mkfifo's mode is cut by the umask (0622 & !022 = 0600), and the init opens the
            // FIFO for writing after it has become process.user: a non-root user without
            // CAP_DAC_OVERRIDE (docker run -u 1000) must still be let in, as runc does.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&fifo, std::fs::Permissions::from_mode(0o622))
                .map_err(|e| Error::io(&fifo, e))?;
        }
        let (ours, theirs) = Channel::pair().ctx(|| "socketpair".into())?;
        let ctx = InitContext {
            id: &opts.id,
            bundle: &bundle,
            cgroup: cgroup.as_ref(),
            bind_sources: &bind_sources,
            namespaces: &namespaces,
            seccomp: seccomp.as_ref(),
            channel: &theirs,
            start: if use_fifo {
                StartSignal::ExecFifo(fifo)
            } else {
                StartSignal::Channel
            },
            console_socket: console_socket.as_ref(),
            no_pivot: opts.no_pivot,
            no_new_keyring: opts.no_new_keyring,
            preserve_fds: opts.preserve_fds,
            namespaces_done: false,
        };
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let pid = spawn::spawn_init(&ctx, &ours, linux, cgroup.as_ref())?;
        drop(theirs);
        drop(console_socket);
        guard.pid = Some(pid);
        let mut state = ContainerState {
            id: opts.id.clone(),
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            pid,
            pid_start_time: state::process_start_time(pid).unwrap_or(0),
            created: state::rfc3339(std::time::SystemTime::now()),
            owner: String::new(),
            annotations: spec
                .annotations()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            hooks: spec.hooks().clone(),
            cgroup,
        };
        let console = self.serve_setup(&ours, &mut state)?;
        self.root.save(&state)?;
        if let Some(path) = &opts.pid_file {
            write_pid_file(path, pid)?;
        }
        guard.disarm();
        Ok(Launched {
            state,
            channel: ours,
            console,
        })
    }

    /// The container's cgroup, created and limited. An unprivileged user (rootless) whose
    /// cgroups are not delegated runs without one, as runc does, unless the config asks for
    /// limits, which then fail clearly.
    fn make_cgroup(
        &self,
        spec: &Spec,
        id: &str,
        guard: &mut Cleanup<'_>,
    ) -> Result<Option<Cgroup>> {
        let linux = spec.linux().as_ref();
        let cgroup = Cgroup::resolve(linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
        guard.cgroup = Some(cgroup.clone());
        let made = cgroup
            .create()
            .and_then(|()| cgroup.apply(&resources_with_allowed_devices(spec)));
        match made {
            Ok(()) => Ok(Some(cgroup)),
            Err(e) if !nix::unistd::geteuid().is_root() && !asks_for_limits(spec) => {
                (self.warn)(&format!(
                    "running without a cgroup (rootless, not delegated): {e}"
                ));
                let _ = cgroup.destroy();
                guard.cgroup = None;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Answers the init until it is ready; returns the console master when it sends one.
    fn serve_setup(
        &self,
        channel: &Channel,
        state: &mut ContainerState,
    ) -> Result<Option<OwnedFd>> {
        let mut console = None;
        loop {
            match channel.recv() {
                Ok((Msg::RunCreateRuntimeHooks, _)) => {
                    let result = self.create_runtime_hooks(state);
                    let reply = match &result {
                        Ok(()) => Msg::HooksDone,
                        Err(e) => Msg::Error(e.to_string()),
                    };
                    channel.send(&reply).ctx(|| "answering the init".into())?;
                    result?;
                }
                Ok((Msg::Console, fd)) => console = fd,
                Ok((Msg::Ready, _)) => return Ok(console),
                Ok((Msg::Error(e), _)) => return Err(Error::Init(e)),
                Ok((other, _)) => {
                    return Err(Error::Init(format!(
                        "unexpected message {other:?} from the init"
                    )))
                }
                Err(nix::errno::Errno::EPIPE) => {
                    return Err(Error::Init(
                        "the container's init exited during setup".into(),
                    ))
                }
                Err(e) => return Err(Error::sys("reading from the init", e)),
            }
        }
    }

    fn create_runtime_hooks(&self, state: &ContainerState) -> Result<()> {
        let Some(h) = &state.hooks else { return Ok(()) };
        let doc = state.oci_json(Status::Creating);
        #[allow(deprecated)]
        for list in [h.prestart(), h.create_runtime()].into_iter().flatten() {
            hooks::run_hooks(list, &doc)?;
        }
        Ok(())
    }

    fn run_poststart(&self, state: &ContainerState) {
        let Some(list) = state.hooks.as_ref().and_then(|h| h.poststart().clone()) else {
            return;
        };
        if let Err(e) = hooks::run_hooks(&list, &state.oci_json(Status::Running)) {
            (self.warn)(&format!("poststart hook failed: {e}"));
        }
    }

    /// `start`: releases a created container's init to exec the program.
    pub fn start(&self, id: &str) -> Result<()> {
        let state = self.root.load(id)?;
        let status = self.status(&state);
        if status != Status::Created {
            return Err(wrong_state(
                id,
                status,
                "only a created container can be started",
            ));
        }
        let fifo = self.root.exec_fifo(id);
        let result = crate::foreground::release_exec_fifo(&fifo, state.pid);
        let _ = std::fs::remove_file(&fifo);
        if let Err(e) = result {
            let _ = self.destroy(&state);
            return Err(e);
        }
        self.run_poststart(&state);
        Ok(())
    }

    /// The container's state and its status now.
    pub fn state(&self, id: &str) -> Result<(ContainerState, Status)> {
        let state = self.root.load(id)?;
        let status = self.status(&state);
        Ok((state, status))
    }

    /// Every container under the root, with its status.
    pub fn list(&self) -> Result<Vec<(ContainerState, Status)>> {
        let mut out = Vec::new();
        for id in self.root.ids()? {
            match self.state(&id) {
                Ok(entry) => out.push(entry),
                Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub fn status(&self, state: &ContainerState) -> Status {
        match state::process_start_time(state.pid) {
            Some(t) if t == state.pid_start_time => {}
            _ => return Status::Stopped,
        }
        if self.root.exec_fifo(&state.id).exists() {
            return Status::Created;
        }
        match state.cgroup.as_ref().map(Cgroup::is_frozen) {
            Some(Ok(true)) => Status::Paused,
            _ => Status::Running,
        }
    }

    /// `kill`: a signal to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let (state, status) = self.state(id)?;
        if status == Status::Stopped {
            return Err(wrong_state(id, status, "container not running"));
        }
        if all {
            self.signal_all(&state, signal)
        } else {
            kill(Pid::from_raw(state.pid), signal).ctx(|| format!("kill {} {signal}", state.pid))
        }
    }

    fn signal_all(&self, state: &ContainerState, signal: Signal) -> Result<()> {
        let Some(cgroup) = &state.cgroup else {
            return kill(Pid::from_raw(state.pid), signal).ctx(|| format!("kill {}", state.pid));
        };
        for pid in cgroup.pids()? {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(Error::sys(format!("kill {pid} {signal}"), e)),
            }
        }
        if signal == Signal::SIGKILL && cgroup.is_frozen().unwrap_or(false) {
            cgroup.thaw()?;
        }
        Ok(())
    }

    /// `delete`: removes a stopped (or created) container; `force` kills a running one first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let state = match self.root.load(id) {
            Err(Error::NotFound(_)) if force => return self.root.remove(id),
            other => other?,
        };
        let status = self.status(&state);
        match status {
            Status::Stopped | Status::Created => {}
            Status::Running | Status::Paused | Status::Creating if force => {}
            _ => {
                return Err(wrong_state(
                    id,
                    status,
                    "cannot delete a container that is not stopped (use --force)",
                ))
            }
        }
        self.destroy(&state)
    }

    /// Kills what is left, removes the cgroup and the state, then runs poststop hooks.
    fn destroy(&self, state: &ContainerState) -> Result<()> {
        if self.status(state) != Status::Stopped {
            let _ = self.signal_all(state, Signal::SIGKILL);
            wait_for_exit(state.pid, Duration::from_secs(10))?;
        }
        if let Some(cgroup) = &state.cgroup {
            let leftovers = cgroup.pids().unwrap_or_default();
            for pid in leftovers {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = cgroup.thaw();
            cgroup.destroy()?;
        }
        self.root.remove(&state.id)?;
        if let Some(list) = state.hooks.as_ref().and_then(|h| h.poststop().clone()) {
            if let Err(e) = hooks::run_hooks(&list, &state.oci_json(Status::Stopped)) {
                (self.warn)(&format!("poststop hook failed: {e}"));
            }
        }
        Ok(())
    }

    /// `pause`: freezes every process of a running container.
    pub fn pause(&self, id: &str) -> Result<()> {
        let (state, status) = self.state(id)?;
        if status != Status::Running {
            return Err(wrong_state(
                id,
                status,
                "only a running container can be paused",
            ));
        }
        Ok(cgroup_of(&state)?.freeze()?)
    }

    /// `resume`: thaws a paused container.
    pub fn resume(&self, id: &str) -> Result<()> {
        let (state, status) = self.state(id)?;
        if status != Status::Paused {
            return Err(wrong_state(
                id,
                status,
                "only a paused container can be resumed",
            ));
        }
        Ok(cgroup_of(&state)?.thaw()?)
    }

    /// `ps`: host pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (state, _) = self.state(id)?;
        Ok(cgroup_of(&state)?.pids()?)
    }
}

fn cgroup_of(state: &ContainerState) -> Result<&Cgroup> {
    state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Init(format!("container {} has no cgroup", state.id)))
}

pub(crate) fn wrong_state(id: &str, status: Status, action: &'static str) -> Error {
    Error::WrongState {
        id: id.to_string(),
        status: status.as_str(),
        action,
    }
}

/// Tells the init to exec; succeeds when its end of the channel closes on exec.
fn start_over_channel(channel: &Channel) -> Result<()> {
    channel
        .send(&Msg::Start)
        .ctx(|| "starting the container".into())?;
    match channel.recv() {
        Err(nix::errno::Errno::EPIPE) => Ok(()),
        Ok((Msg::Error(e), _)) => Err(Error::Init(e)),
        Ok((other, _)) => Err(Error::Init(format!(
            "unexpected message {other:?} at start"
        ))),
        Err(e) => Err(Error::sys("waiting for the container to start", e)),
    }
}

/// Whether the config sets any resource limit (device rules aside).
fn asks_for_limits(spec: &Spec) -> bool {
    let Some(resources) = spec.linux().as_ref().and_then(|l| l.resources().clone()) else {
        return false;
    };
    let mut limits = resources;
    limits.set_devices(None);
    limits != LinuxResources::default()
}

/// The config's device rules followed by the devices every container may use (runc's
/// allowed list) and the config's own devices.
fn resources_with_allowed_devices(spec: &Spec) -> LinuxResources {
    let linux = spec.linux().as_ref();
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    let mut rules = resources.devices().clone().unwrap_or_default();
    let rule = |typ: &str,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str|
     -> Option<LinuxDeviceCgroup> {
        serde_json::from_value(serde_json::json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": access})).ok()
    };
    let defaults = [
        ("c", None, None, "m"),
        ("b", None, None, "m"),
        ("c", Some(1), Some(3), "rwm"),
        ("c", Some(1), Some(8), "rwm"),
        ("c", Some(1), Some(7), "rwm"),
        ("c", Some(5), Some(0), "rwm"),
        ("c", Some(1), Some(5), "rwm"),
        ("c", Some(1), Some(9), "rwm"),
        ("c", Some(5), Some(1), "rwm"),
        ("c", Some(136), None, "rwm"),
        ("c", Some(5), Some(2), "rwm"),
        ("c", Some(10), Some(200), "rwm"),
    ];
    rules.extend(
        defaults
            .iter()
            .filter_map(|(t, ma, mi, a)| rule(t, *ma, *mi, a)),
    );
    for dev in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
    {
        let typ = if dev.typ() == oci_spec::runtime::LinuxDeviceType::B {
            "b"
        } else {
            "c"
        };
        rules.extend(rule(typ, Some(dev.major()), Some(dev.minor()), "rwm"));
    }
    resources.set_devices(Some(rules));
    resources
}

fn connect_console(spec: &Spec, opts: &CreateOptions, detached: bool) -> Result<Option<OwnedFd>> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    match (&opts.console_socket, terminal) {
        (Some(path), true) => {
            let stream = UnixStream::connect(path).map_err(|e| Error::io(path, e))?;
            Ok(Some(OwnedFd::from(stream)))
        }
        (Some(path), false) => Err(Error::Config {
            path: path.clone(),
            reason: "--console-socket given but process.terminal is false".into(),
        }),
        (None, true) if detached => Err(Error::Config {
            path: opts.bundle.join("config.json"),
            reason: "process.terminal is true: a detached container needs --console-socket".into(),
        }),
        (None, _) => Ok(None),
    }
}

/// Writes the pid file atomically, as runc does (temporary file, then rename).
pub(crate) fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string()).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Waits until `pid` has exited (a pidfd works for processes that are not our children).
fn wait_for_exit(pid: i32, limit: Duration) -> Result<()> {
    let fd = match sys::pidfd_open(pid) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ESRCH) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("pidfd_open {pid}"), e)),
    };
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLIN,
    )];
    let timeout = nix::poll::PollTimeout::try_from(limit).unwrap_or(nix::poll::PollTimeout::MAX);
    match nix::poll::poll(&mut fds, timeout).ctx(|| format!("waiting for {pid} to exit"))? {
        0 => Err(Error::Init(format!(
            "process {pid} did not exit within {limit:?} of SIGKILL"
        ))),
        _ => Ok(()),
    }
}

/// Undoes a half-made container: kills its init, removes its cgroup and state directory.
struct Cleanup<'a> {
    root: &'a StateRoot,
    id: &'a str,
    cgroup: Option<Cgroup>,
    pid: Option<i32>,
}

impl Cleanup<'_> {
    fn disarm(mut self) {
        self.cgroup = None;
        self.pid = None;
        self.id = "";
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        if let Some(pid) = self.pid {
            sys::kill_and_reap(pid);
        }
        if let Some(cgroup) = &self.cgroup {
            for pid in cgroup.pids().unwrap_or_default() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = cgroup.destroy();
        }
        let _ = self.root.remove(self.id);
    }
}
