//! `docker run --init`: the engine bind-mounts this binary at /sbin/docker-init and runs
//! `/sbin/docker-init -- <command>` as the container's pid 1. Invoked under that name,
//! gorae-runc is a minimal init (what tini is for docker): it runs the command as its one
//! child in its own process group, forwards the signals a user or `docker stop` sends to the
//! child, reaps every process orphaned onto it, and exits with the child's status.
//!
//! Signals are blocked and taken with sigwait(2), so nothing runs in a handler. A pid 1 does
//! not get signals it has no handler for, except while they are blocked: blocking them is
//! what lets SIGTERM from `docker stop` reach us at all. No threads; the only allocations
//! are the command's C strings, made before the fork.

use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::signal::{kill, sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{execvp, ForkResult, Pid};

/// The name docker gives its init inside the container.
pub const NAME: &str = "docker-init";

/// What a user or the engine sends to the container's pid 1 that is meant for the program.
const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// True when this process was started as docker-init (argv[0]'s last component).
pub fn invoked_as_init(argv0: Option<&OsString>) -> bool {
    argv0
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .is_some_and(|name| name == NAME)
}

/// Runs docker-init with its arguments (argv[0] excluded); returns its exit code.
pub fn run(args: &[OsString]) -> u8 {
    let args = match args.first() {
        Some(first) if first == "--" => &args[1..],
        _ => args,
    };
    let argv: Option<Vec<CString>> = args
        .iter()
        .map(|a| CString::new(a.as_bytes()).ok())
        .collect();
    let argv = match argv {
        Some(argv) if !argv.is_empty() => argv,
        Some(_) => return fail("usage: docker-init [--] COMMAND [ARG...]", 1),
        None => return fail("an argument holds a NUL byte", 1),
    };
    match supervise(&argv) {
        Ok(code) => code,
        Err(e) => fail(&format!("{e}"), 1),
    }
}

fn fail(message: &str, code: u8) -> u8 {
    eprintln!("{NAME}: {message}");
    code
}

/// Forks the command and waits on signals until it has exited.
fn supervise(argv: &[CString]) -> Result<u8, Errno> {
    sys::default_sigchld()?;
    if nix::unistd::getpid().as_raw() != 1 {
        // Not a pid namespace's init: orphans would go elsewhere unless we ask for them.
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let mut waited = SigSet::empty();
    for sig in FORWARDED {
        waited.add(sig);
    }
    waited.add(Signal::SIGCHLD);
    let mut blocked = waited;
    // Once the child owns the terminal, a background pid 1 writing to it must not stop.
    blocked.add(Signal::SIGTTOU);
    blocked.add(Signal::SIGTTIN);
    let mut original = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut original))?;
    let child = match sys::fork()? {
        ForkResult::Child => exec_child(argv, &original),
        ForkResult::Parent { child } => child,
    };
    // Also here, not only in the child: whichever runs first, the group exists before a
    // signal is forwarded. EACCES once the child has exec'd is fine: it did it itself.
    let _ = nix::unistd::setpgid(child, child);
    loop {
        match waited.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(code) = reap(child) {
                    return Ok(code);
                }
            }
            // The child may already be a zombie that the next SIGCHLD reaps.
            Ok(sig) => drop(kill(child, sig)),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reaps every exited process; the command's exit code once it is among them.
fn reap(child: Pid) -> Option<u8> {
    let mut code = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, status)) if pid == child => {
                code = Some(u8::try_from(status).unwrap_or(255));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                code = Some(128u8.saturating_add(sig as u8));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return code,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return code,
        }
    }
}

/// In the child: own process group (and the terminal, if stdin is one), the signal state a
/// program expects, then exec; 127 if the command is not found, 126 if it cannot run.
fn exec_child(argv: &[CString], original: &SigSet) -> ! {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let stdin = std::io::stdin();
    if nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
        // SIGTTOU is still blocked here, so a background group may take the terminal.
        let _ = nix::unistd::tcsetpgrp(stdin.as_fd(), nix::unistd::getpgrp());
    }
    let _ = sys::default_sigpipe();
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(original), None);
    let err = match execvp(&argv[0], argv) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = match err {
        Errno::ENOENT | Errno::ENOTDIR => 127,
        _ => 126,
    };
    eprintln!("{NAME}: exec {}: {}", argv[0].to_string_lossy(), err.desc());
    sys::exit_now(code)
}

/// The calls nix marks unsafe.
mod sys {
    use nix::errno::Errno;
    use nix::sys::signal::{signal, SigHandler, Signal};
    use nix::unistd::ForkResult;

    pub fn fork() -> Result<ForkResult, Errno> {
        // SAFETY: gorae-runc is single-threaded (no thread has been started when docker-init
        // runs), so the child may do anything the parent could, allocation included.
        unsafe { nix::unistd::fork() }
    }

    /// An inherited SIG_IGN for SIGCHLD would make the kernel reap the command for us and
    /// its exit code would be lost.
    pub fn default_sigchld() -> Result<(), Errno> {
        // SAFETY: installs no handler function, only the default action.
        unsafe { signal(Signal::SIGCHLD, SigHandler::SigDfl) }.map(drop)
    }

    /// Rust's runtime ignores SIGPIPE; an ignored signal stays ignored across exec, and the
    /// command (`yes | head`) expects the default.
    pub fn default_sigpipe() -> Result<(), Errno> {
        // SAFETY: installs no handler function, only the default action.
        unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.map(drop)
    }

    /// Leaves a forked child without running the parent's exit-time code twice.
    pub fn exit_now(code: i32) -> ! {
        // SAFETY: _exit ends the process at once; nothing is left to observe its state.
        unsafe { libc::_exit(code) }
    }
}
