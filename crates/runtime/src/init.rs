//! The container's init: the process that gorae-runc clones, which sets up its own namespaces,
//! filesystem and credentials, waits to be started, and finally execs the container's program.
//! It is a fork of the runtime (no re-exec), so it runs with the config already parsed.
//!
//! It reports every failure over the setup channel and exits; it never returns to the caller.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::{open, OFlag};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use crate::config::Bundle;
use crate::error::{Error, Result, SysContext};
use crate::namespaces::{self, NamespacePlan};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::{Channel, Msg};
use crate::{cgroups::Cgroup, hooks, seccomp::SeccompProgram, state, sys};

/// How the init learns it may exec the program.
#[derive(Clone)]
pub enum StartSignal {
    /// `create`: block opening this FIFO until `start` opens it.
    ExecFifo(PathBuf),
    /// `run`: wait for `Msg::Start` on the setup channel.
    Channel,
}

/// Everything the init needs, borrowed from the runtime it was forked from.
#[derive(Clone)]
pub struct InitContext<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub cgroup: Option<&'a Cgroup>,
    /// Bind mount sources opened by the runtime (see `rootfs::open_bind_sources`).
    pub bind_sources: &'a [Option<OwnedFd>],
    pub namespaces: &'a NamespacePlan,
    pub seccomp: Option<&'a SeccompProgram>,
    pub channel: &'a Channel,
    pub start: StartSignal,
    /// The caller's `--console-socket`, connected.
    pub console_socket: Option<&'a OwnedFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// Whether the namespaces were already joined/unshared by an intermediate process.
    pub namespaces_done: bool,
}

/// The init's entry point, in the cloned child. Never returns.
pub fn main(ctx: &InitContext<'_>) -> ! {
    match setup_and_exec(ctx) {
        Ok(never) => match never {},
        Err(e) => {
            let _ = ctx.channel.send(&Msg::Error(e.to_string()));
            sys::exit_now(1)
        }
    }
}

enum Never {}

fn spec_process(spec: &Spec) -> Result<&Process> {
    spec.process()
        .as_ref()
        .ok_or_else(|| Error::Init("config has no process".into()))
}

fn setup_and_exec(ctx: &InitContext<'_>) -> Result<Never> {
    let spec = &ctx.bundle.spec;
    let process = spec_process(spec)?;
    crate::process::guard_runtime_child()?;
    ctx.channel.expect(&Msg::Go, "the runtime")?;
    if !ctx.namespaces_done {
        for (typ, path) in &ctx.namespaces.join {
            if *typ != LinuxNamespaceType::Pid {
                namespaces::join(*typ, path)?;
            }
        }
    }
    if ctx.namespaces.creates(LinuxNamespaceType::Cgroup) {
        unshare(CloneFlags::CLONE_NEWCGROUP).ctx(|| "unshare(CLONE_NEWCGROUP)".into())?;
    }
    let in_user_ns = ctx.namespaces.creates(LinuxNamespaceType::User)
        || ctx.namespaces.joins(LinuxNamespaceType::User);
    if in_user_ns {
        crate::process::become_user_ns_root()?;
    }
    nix::unistd::setsid().ctx(|| "setsid".into())?;
    if let Some(adj) = process.oom_score_adj() {
        let me = std::fs::read_link("/proc/self").map_err(|e| Error::io("/proc/self", e))?;
        crate::procfs::ProcFs::open(std::path::Path::new("/proc"))?.write(
            &format!("{}/oom_score_adj", me.display()),
            adj.to_string().as_bytes(),
        )?;
    }
    set_names(spec)?;
    let host_pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|p| p.to_str()?.parse::<i32>().ok())
        .unwrap_or(0);
    let plan = RootfsPlan {
        spec,
        rootfs: &ctx.bundle.rootfs,
        bundle: &ctx.bundle.dir,
        in_user_ns,
        cgroup: ctx.cgroup,
        bind_sources: ctx.bind_sources,
    };
    rootfs::prepare(&plan)?;
    run_create_hooks(ctx, host_pid)?;
    let fifo = match &ctx.start {
        StartSignal::ExecFifo(path) => Some(
            open(
                path.as_path(),
                OFlag::O_PATH | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| format!("opening {}", path.display()))?,
        ),
        StartSignal::Channel => None,
    };
    rootfs::switch_root(&ctx.bundle.rootfs, ctx.no_pivot)?;
    if process.terminal().unwrap_or(false) {
        crate::console::setup(process, ctx.console_socket, ctx.channel, true)?;
    }
    apply_sysctls(spec)?;
    rootfs::finish(spec)?;
    if !ctx.no_new_keyring {
        sys::join_new_session_keyring().ctx(|| "creating a session keyring".into())?;
    }
    crate::process::apply_rlimits(process)?;
    let program = crate::process::find_program(process)?;
    let no_new_privs = process.no_new_privileges().unwrap_or(false);
    if let (Some(filter), false) = (ctx.seccomp, no_new_privs) {
        // Without no_new_privs the filter needs CAP_SYS_ADMIN: install it while we have it.
        let listener = filter.install()?;
        send_seccomp_listener(ctx, listener, host_pid)?;
    }
    crate::process::set_credentials(process)?;
    crate::process::enter_cwd(process)?;
    nix::sys::prctl::set_dumpable(false).ctx(|| "prctl(PR_SET_DUMPABLE)".into())?;
    nix::sys::prctl::set_pdeathsig(None).ctx(|| "prctl(PDEATHSIG)".into())?;
    sys::cloexec_from(3 + ctx.preserve_fds).ctx(|| "close_range".into())?;
    ctx.channel
        .send(&Msg::Ready)
        .ctx(|| "reporting ready".into())?;
    let started = wait_for_start(ctx, fifo)?;
    let result = start_program(ctx, process, &program, no_new_privs, host_pid);
    // Still here: exec or a startContainer hook failed. Tell whoever started us.
    let err = result
        .err()
        .unwrap_or_else(|| Error::Init("exec returned".into()));
    report_start_failure(&started, &err);
    sys::exit_now(127)
}

/// createRuntime/prestart run by the runtime (in its namespaces), createContainer by us.
fn run_create_hooks(ctx: &InitContext<'_>, host_pid: i32) -> Result<()> {
    let Some(hooks) = ctx.bundle.spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)]
    let runtime_side = hooks.prestart().as_ref().is_some_and(|h| !h.is_empty())
        || hooks
            .create_runtime()
            .as_ref()
            .is_some_and(|h| !h.is_empty());
    if runtime_side {
        ctx.channel
            .send(&Msg::RunCreateRuntimeHooks)
            .ctx(|| "asking for createRuntime hooks".into())?;
        ctx.channel.expect(&Msg::HooksDone, "createRuntime hooks")?;
    }
    if let Some(list) = hooks.create_container() {
        hooks::run_hooks(list, &hook_state(ctx, host_pid, state::Status::Creating))?;
    }
    Ok(())
}

fn hook_state(ctx: &InitContext<'_>, pid: i32, status: state::Status) -> Vec<u8> {
    serde_json::json!({
        "ociVersion": state::OCI_VERSION,
        "id": ctx.id,
        "status": status.as_str(),
        "pid": pid,
        "bundle": ctx.bundle.dir,
        "annotations": ctx.bundle.spec.annotations().clone().unwrap_or_default(),
    })
    .to_string()
    .into_bytes()
}

/// Hands the seccomp user-notification fd to the agent at `linux.seccomp.listenerPath`, with
/// the container process state (runtime-spec config-linux.md#seccomp), as runc does.
fn send_seccomp_listener(
    ctx: &InitContext<'_>,
    listener: Option<OwnedFd>,
    host_pid: i32,
) -> Result<()> {
    let Some(fd) = listener else { return Ok(()) };
    let seccomp = ctx
        .bundle
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let Some(path) = seccomp.and_then(|s| s.listener_path().as_ref()) else {
        return Err(Error::Init(
            "linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath".into(),
        ));
    };
    let state: serde_json::Value =
        serde_json::from_slice(&hook_state(ctx, host_pid, state::Status::Creating))
            .map_err(|e| Error::Init(format!("seccomp listener state: {e}")))?;
    let doc = serde_json::json!({
        "ociVersion": state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": host_pid,
        "metadata": seccomp.and_then(|s| s.listener_metadata().clone()).unwrap_or_default(),
        "state": state,
    });
    let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| Error::io(path, e))?;
    crate::sync::send_with_fd(stream.as_fd(), doc.to_string().as_bytes(), Some(fd.as_fd()))
        .ctx(|| format!("sending the seccomp listener to {}", path.display()))
}

fn set_names(spec: &Spec) -> Result<()> {
    if let Some(name) = spec.hostname().as_deref().filter(|n| !n.is_empty()) {
        nix::unistd::sethostname(name).ctx(|| format!("sethostname {name:?}"))?;
    }
    if let Some(name) = spec.domainname().as_deref().filter(|n| !n.is_empty()) {
        sys::set_domainname(name).ctx(|| format!("setdomainname {name:?}"))?;
    }
    Ok(())
}

fn apply_sysctls(spec: &Spec) -> Result<()> {
    let sysctls = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref());
    let Some(sysctls) = sysctls.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let proc = crate::procfs::ProcFs::open(std::path::Path::new("/proc"))?;
    for (key, value) in sysctls {
        let rel = format!("sys/{}", key.replace('.', "/"));
        proc.write(&rel, value.as_bytes())
            .map_err(|e| Error::Init(format!("sysctl {key}={value}: {e}")))?;
    }
    Ok(())
}

/// How `start` reached us, kept to report a failure after it.
enum Started {
    Fifo(OwnedFd),
    Channel,
}

fn wait_for_start(ctx: &InitContext<'_>, fifo: Option<OwnedFd>) -> Result<Started> {
    match fifo {
        Some(path_fd) => {
            let path = crate::rootfs::secure::fd_path(path_fd.as_fd());
            let fd = open(
                path.as_path(),
                OFlag::O_WRONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .ctx(|| "waiting on exec.fifo".into())?;
            nix::unistd::write(&fd, b"0").ctx(|| "writing exec.fifo".into())?;
            Ok(Started::Fifo(fd))
        }
        None => {
            ctx.channel.expect(&Msg::Start, "start")?;
            Ok(Started::Channel)
        }
    }
}

fn report_start_failure(started: &Started, err: &Error) {
    let text = err.to_string();
    match started {
        Started::Fifo(fd) => {
            let _ = nix::unistd::write(fd, text.as_bytes());
        }
        Started::Channel => {}
    }
}

fn start_program(
    ctx: &InitContext<'_>,
    process: &Process,
    program: &CString,
    no_new_privs: bool,
    host_pid: i32,
) -> Result<Never> {
    if let Some(list) = ctx
        .bundle
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
    {
        hooks::run_hooks(list, &hook_state(ctx, host_pid, state::Status::Created))?;
    }
    if no_new_privs {
        nix::sys::prctl::set_no_new_privs().ctx(|| "prctl(NO_NEW_PRIVS)".into())?;
        if let Some(filter) = ctx.seccomp {
            let listener = filter.install()?;
            send_seccomp_listener(ctx, listener, host_pid)?;
        }
    }
    let err = crate::process::exec(process, program);
    let _ = ctx.channel.send(&Msg::Error(err.to_string()));
    Err(err)
}
