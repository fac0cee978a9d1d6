//! `exec`: a new process in a running container — its namespaces (entered through the init's
//! /proc/PID/ns files), its cgroup, its seccomp profile, with the credentials, capabilities and
//! rlimits of the process given (by default the container's own).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::cgroups::Cgroup;
use crate::config::read_spec;
use crate::container::{wrong_state, Runtime};
use crate::error::{Error, Result, SysContext};
use crate::namespaces::clone_flag;
use crate::seccomp::SeccompProgram;
use crate::state::Status;
use crate::sync::{Channel, Msg};
use crate::{process, seccomp, sys};

/// What `exec` runs and how.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub id: String,
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub preserve_fds: u32,
}

/// The namespace files of a running init, opened before anything forks.
struct Namespaces {
    /// Entered by the new process itself, user namespace first.
    own: Vec<(LinuxNamespaceType, OwnedFd)>,
    /// pid and time apply to children: the runtime enters them around the clone.
    for_children: Vec<(LinuxNamespaceType, OwnedFd, OwnedFd)>,
    cgroup: Option<OwnedFd>,
}

fn ns_file(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn open_ns(pid: i32, typ: LinuxNamespaceType) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/{}", ns_file(typ));
    open(
        path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ctx(|| format!("opening {path}"))
}

impl Namespaces {
    fn of(init: i32, spec: &Spec) -> Result<Namespaces> {
        let mut ns = Namespaces {
            own: Vec::new(),
            for_children: Vec::new(),
            cgroup: None,
        };
        let mut types: Vec<LinuxNamespaceType> = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .map(|list| list.iter().map(|n| n.typ()).collect())
            .unwrap_or_default();
        types.sort_by_key(|t| *t != LinuxNamespaceType::User);
        for typ in types {
            let fd = open_ns(init, typ)?;
            match typ {
                LinuxNamespaceType::Pid | LinuxNamespaceType::Time => {
                    let own = open_ns(std::process::id() as i32, typ)?;
                    ns.for_children.push((typ, fd, own));
                }
                LinuxNamespaceType::Cgroup => ns.cgroup = Some(fd),
                _ => ns.own.push((typ, fd)),
            }
        }
        Ok(ns)
    }
}

impl Runtime {
    /// The container's own process, the base `exec` starts from when not given a whole one.
    pub fn container_process(&self, id: &str) -> Result<Process> {
        let (state, _) = self.state(id)?;
        let spec = read_spec(&state.bundle.join("config.json"))?;
        spec.process()
            .clone()
            .ok_or_else(|| Error::Init(format!("container {id} has no process in its config")))
    }

    /// Runs a process in a running container. Without `detach`, waits for it and returns its
    /// exit code (128+N when killed by signal N).
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32> {
        let (state, status) = self.state(&opts.id)?;
        if status != Status::Running {
            return Err(wrong_state(
                &opts.id,
                status,
                "exec needs a running container",
            ));
        }
        if opts.process.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(Error::Init("exec: the process has no args".into()));
        }
        let spec = read_spec(&state.bundle.join("config.json"))?;
        let seccomp = spec
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().as_ref())
            .map(seccomp::compile)
            .transpose()?;
        let terminal = opts.process.terminal().unwrap_or(false);
        let console_socket = match (&opts.console_socket, terminal) {
            (Some(path), true) => Some(OwnedFd::from(
                UnixStream::connect(path).map_err(|e| Error::io(path, e))?,
            )),
            (None, true) if opts.detach => {
                return Err(Error::Init("exec -t -d needs --console-socket".into()))
            }
            (Some(_), false) => {
                return Err(Error::Init(
                    "--console-socket given without a terminal (-t)".into(),
                ))
            }
            _ => None,
        };
        let namespaces = Namespaces::of(state.pid, &spec)?;
        let signals = if opts.detach {
            None
        } else {
            Some(crate::foreground::block_signals()?)
        };
        let (ours, theirs) = Channel::pair().ctx(|| "socketpair".into())?;
        let child = ExecChild {
            process: &opts.process,
            namespaces: &namespaces,
            seccomp: seccomp.as_ref(),
            channel: &theirs,
            console_socket: console_socket.as_ref(),
            preserve_fds: opts.preserve_fds,
        };
        let pid = clone_into(&child)?;
        drop(theirs);
        drop(console_socket);
        let console = match join_and_start(pid, state.cgroup.as_ref(), &ours) {
            Ok(console) => console,
            Err(e) => {
                sys::kill_and_reap(pid);
                return Err(e);
            }
        };
        if let Some(path) = &opts.pid_file {
            crate::container::write_pid_file(path, pid)?;
        }
        match signals {
            None => Ok(0),
            Some(signals) => crate::foreground::wait(Pid::from_raw(pid), signals, console),
        }
    }
}

/// Puts the new process in the container's cgroup, lets it go, and waits for its exec.
fn join_and_start(pid: i32, cgroup: Option<&Cgroup>, channel: &Channel) -> Result<Option<OwnedFd>> {
    if let Some(cgroup) = cgroup {
        cgroup.add_process(pid)?;
    }
    channel
        .send(&Msg::Go)
        .ctx(|| "starting the exec process".into())?;
    let mut console = None;
    loop {
        match channel.recv() {
            Err(nix::errno::Errno::EPIPE) => return Ok(console),
            Ok((Msg::Console, fd)) => console = fd,
            Ok((Msg::Error(e), _)) => return Err(Error::Init(e)),
            Ok((other, _)) => {
                return Err(Error::Init(format!(
                    "unexpected message {other:?} from the exec process"
                )))
            }
            Err(e) => return Err(Error::sys("waiting for the exec process", e)),
        }
    }
}

struct ExecChild<'a> {
    process: &'a Process,
    namespaces: &'a Namespaces,
    seccomp: Option<&'a SeccompProgram>,
    channel: &'a Channel,
    console_socket: Option<&'a OwnedFd>,
    preserve_fds: u32,
}

/// Clones the process inside the container's pid (and time) namespace: the runtime enters
/// those for its children, clones, and goes back.
fn clone_into(child: &ExecChild<'_>) -> Result<i32> {
    for (typ, fd, _) in &child.namespaces.for_children {
        setns(fd.as_fd(), clone_flag(*typ))
            .ctx(|| format!("entering the container's {typ} namespace"))?;
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let cloned = sys::clone_process(0);
    if let Ok(None) = cloned {
        match setup_and_exec(child) {
            Ok(never) => match never {},
            Err(e) => {
                let _ = child.channel.send(&Msg::Error(e.to_string()));
                sys::exit_now(1)
            }
        }
    }
    for (typ, _, own) in &child.namespaces.for_children {
        setns(own.as_fd(), clone_flag(*typ))
            .ctx(|| format!("returning to the runtime's {typ} namespace"))?;
    }
    match cloned {
        Ok(Some(pid)) => Ok(pid.as_raw()),
        Ok(None) => sys::exit_now(1),
        Err(e) => Err(Error::sys("clone", e)),
    }
}

fn setup_and_exec(child: &ExecChild<'_>) -> Result<std::convert::Infallible> {
    process::guard_runtime_child()?;
    for (typ, fd) in &child.namespaces.own {
        setns(fd.as_fd(), clone_flag(*typ))
            .ctx(|| format!("joining the container's {typ} namespace"))?;
    }
    child.channel.expect(&Msg::Go, "the runtime")?;
    if let Some(fd) = &child.namespaces.cgroup {
        setns(fd.as_fd(), CloneFlags::CLONE_NEWCGROUP)
            .ctx(|| "joining the container's cgroup namespace".into())?;
    }
    let process = child.process;
    if process.terminal().unwrap_or(false) {
        nix::unistd::setsid().ctx(|| "setsid".into())?;
        crate::console::setup(process, child.console_socket, child.channel, false)?;
    }
    process::apply_rlimits(process)?;
    let program = process::find_program(process)?;
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    if let (Some(filter), false) = (child.seccomp, no_new_privs) {
        filter.install()?;
    }
    process::set_credentials(process)?;
    process::enter_cwd(process)?;
    nix::sys::prctl::set_dumpable(false).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
    // A detached process outlives the runtime.
    nix::sys::prctl::set_pdeathsig(None).ctx(|| "prctl(PDEATHSIG)".into())?;
    sys::cloexec_from(3 + child.preserve_fds).ctx(|| "close_range".into())?;
    if no_new_privs {
        nix::sys::prctl::set_no_new_privs().ctx(|| "prctl(NO_NEW_PRIVS)".into())?;
        if let Some(filter) = child.seccomp {
            filter.install()?;
        }
    }
    Err(process::exec(process, &program))
}
