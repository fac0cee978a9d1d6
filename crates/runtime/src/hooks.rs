//! OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"): runs a hook program with the
//! container state on its stdin, its own environment and an optional timeout.
//!
//! What it is: [`run_hook`] starts `hook.path` with `argv = hook.args` (argv\[0\] included; just
//! `[path]` when absent) and `envp = hook.env` (nothing inherited), writes the state JSON to its
//! stdin and closes it, collects the first KiB of stdout and stderr for error messages, and
//! waits for it with `pidfd_open(2)` + `poll(2)` against the deadline; a hook that outlives its
//! `timeout` is killed with `SIGKILL` and reaped. [`run_hooks`] and [`run_phase_hooks`] run a
//! list in order and stop at the first failure.
//!
//! What it owns: the hook process (always reaped before returning, also on error) and the
//! three pipes to it. It briefly blocks `SIGPIPE` in the calling thread while writing the state,
//! so a hook that does not read its stdin cannot kill the runtime.
//!
//! What it must not do: start threads (it also runs in a freshly forked single-threaded child),
//! busy-wait, inherit the runtime's environment into a hook, or print anything.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use oci_spec::runtime::{Hook, Hooks};

/// How much of a hook's stdout and stderr is kept for error messages.
const OUTPUT_LIMIT: usize = 1024;

/// The hook lists of a container's lifecycle, named as in `config.json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookPhase {
    /// `hooks.prestart` (deprecated by the spec, still run by runc).
    Prestart,
    /// `hooks.createRuntime`.
    CreateRuntime,
    /// `hooks.createContainer`.
    CreateContainer,
    /// `hooks.startContainer`.
    StartContainer,
    /// `hooks.poststart`.
    Poststart,
    /// `hooks.poststop`.
    Poststop,
}

impl HookPhase {
    /// The `config.json` key of this phase, e.g. `createRuntime`.
    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::Prestart => "prestart",
            HookPhase::CreateRuntime => "createRuntime",
            HookPhase::CreateContainer => "createContainer",
            HookPhase::StartContainer => "startContainer",
            HookPhase::Poststart => "poststart",
            HookPhase::Poststop => "poststop",
        }
    }

    /// The hooks of this phase in `hooks` (empty when the list is absent).
    #[allow(deprecated)] // `prestart` is deprecated in the spec but still part of it.
    pub fn hooks(self, hooks: &Hooks) -> &[Hook] {
        let list = match self {
            HookPhase::Prestart => hooks.prestart(),
            HookPhase::CreateRuntime => hooks.create_runtime(),
            HookPhase::CreateContainer => hooks.create_container(),
            HookPhase::StartContainer => hooks.start_container(),
            HookPhase::Poststart => hooks.poststart(),
            HookPhase::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or_default()
    }
}

impl std::fmt::Display for HookPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a hook failed. `hook` is the hook's path followed, when known, by its phase and index in
/// the list, e.g. `/usr/bin/x (createRuntime #2)` (the index counts from 0, as in runc).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    /// `timeout` is zero or negative; the spec requires a positive number of seconds.
    #[error("hook {hook}: invalid timeout {timeout}: must be greater than zero seconds")]
    InvalidTimeout {
        /// The hook at fault.
        hook: String,
        /// The configured value.
        timeout: i64,
    },
    /// `path` is not absolute.
    #[error("hook {hook}: path must be absolute")]
    RelativePath {
        /// The hook at fault.
        hook: String,
    },
    /// An `env` entry is not of the form `NAME=value`.
    #[error("hook {hook}: invalid env entry {entry:?}: expected NAME=value")]
    InvalidEnv {
        /// The hook at fault.
        hook: String,
        /// The entry.
        entry: String,
    },
    /// The hook could not be started (missing, not executable, bad interpreter …).
    #[error("hook {hook}: cannot execute: {}", describe_io(.source))]
    Spawn {
        /// The hook at fault.
        hook: String,
        /// The error from `execve` or `fork`.
        source: std::io::Error,
    },
    /// The hook exited with a non-zero status.
    #[error("hook {hook}: exit status {code}{}", describe_output(.stdout, .stderr))]
    ExitStatus {
        /// The hook at fault.
        hook: String,
        /// Its exit status.
        code: i32,
        /// The first KiB of its stdout.
        stdout: String,
        /// The first KiB of its stderr.
        stderr: String,
    },
    /// The hook was killed by a signal it did not get from us.
    #[error("hook {hook}: killed by signal {signal}{}", describe_output(.stdout, .stderr))]
    Signaled {
        /// The hook at fault.
        hook: String,
        /// The signal name, e.g. `SIGSEGV`.
        signal: String,
        /// The first KiB of its stdout.
        stdout: String,
        /// The first KiB of its stderr.
        stderr: String,
    },
    /// The hook ran past its `timeout` and was killed with `SIGKILL`.
    #[error("hook {hook}: timed out after {seconds}s")]
    TimedOut {
        /// The hook at fault.
        hook: String,
        /// The configured timeout.
        seconds: i64,
    },
    /// A system call needed to run or wait for the hook failed.
    #[error("hook {hook}: {operation}: {source}")]
    Io {
        /// The hook at fault.
        hook: String,
        /// What was being done, e.g. `pidfd_open`.
        operation: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

/// Renders an I/O error as the bare `strerror` text ("No such file or directory").
fn describe_io(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => Errno::from_raw(code).desc().to_string(),
        None => e.to_string(),
    }
}

/// `": <stderr>"` (or `": stdout: <stdout>"` when stderr is empty), or nothing.
fn describe_output(stdout: &str, stderr: &str) -> String {
    match (stdout.is_empty(), stderr.is_empty()) {
        (_, false) => format!(": {stderr}"),
        (false, true) => format!(": stdout: {stdout}"),
        (true, true) => String::new(),
    }
}

/// Runs `hooks` in order, each with `state_json` on stdin; stops at the first failure. Errors
/// name the hook by path and index (`/usr/bin/x (#2)`); use [`run_phase_hooks`] to get the
/// phase in the message too.
pub fn run_hooks(hooks: &[Hook], state_json: &[u8]) -> Result<(), HookError> {
    for (i, hook) in hooks.iter().enumerate() {
        let label = format!("{} (#{i})", hook.path().display());
        execute(hook, state_json, label)?;
    }
    Ok(())
}

/// Runs the `phase` hooks `hooks` in order like [`run_hooks`]; errors read
/// `hook /usr/bin/x (createRuntime #2): …`.
pub fn run_phase_hooks(
    phase: HookPhase,
    hooks: &[Hook],
    state_json: &[u8],
) -> Result<(), HookError> {
    for (i, hook) in hooks.iter().enumerate() {
        let label = format!("{} ({phase} #{i})", hook.path().display());
        execute(hook, state_json, label)?;
    }
    Ok(())
}

/// Runs one hook with `state_json` on its stdin and waits for it (at most `hook.timeout`
/// seconds). Succeeds only if it exits with status 0.
pub fn run_hook(hook: &Hook, state_json: &[u8]) -> Result<(), HookError> {
    execute(hook, state_json, hook.path().display().to_string())
}

fn execute(hook: &Hook, state_json: &[u8], label: String) -> Result<(), HookError> {
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => {
            return Err(HookError::InvalidTimeout {
                hook: label,
                timeout: t,
            })
        }
        other => other,
    };
    if !hook.path().is_absolute() {
        return Err(HookError::RelativePath { hook: label });
    }
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        match entry.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                cmd.env(name, value);
            }
            _ => {
                return Err(HookError::InvalidEnv {
                    hook: label,
                    entry: entry.clone(),
                })
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let deadline = timeout.map(|t| Instant::now() + Duration::from_secs(t.unsigned_abs()));
    let child = cmd.spawn().map_err(|source| HookError::Spawn {
        hook: label.clone(),
        source,
    })?;
    let mut running = Running::new(child);
    let outcome = running.supervise(state_json, deadline);
    // Whatever happened, the hook is gone and reaped before we return.
    let status = running.finish(!matches!(outcome, Ok(Ended::Exited)));
    let io_err = |operation, source| HookError::Io {
        hook: label.clone(),
        operation,
        source,
    };
    let status = status.map_err(|e| io_err("wait", e))?;
    match outcome {
        Err((operation, source)) => Err(io_err(operation, source)),
        Ok(Ended::DeadlinePassed) => Err(HookError::TimedOut {
            hook: label,
            seconds: timeout.unwrap_or_default(),
        }),
        Ok(Ended::Exited) => check_status(label, status, &running.stdout, &running.stderr),
    }
}

fn check_status(
    hook: String,
    status: ExitStatus,
    stdout: &Capture,
    stderr: &Capture,
) -> Result<(), HookError> {
    if status.success() {
        return Ok(());
    }
    let (stdout, stderr) = (stdout.text(), stderr.text());
    if let Some(code) = status.code() {
        return Err(HookError::ExitStatus {
            hook,
            code,
            stdout,
            stderr,
        });
    }
    let signal = status.signal().map_or_else(
        || "unknown".to_string(),
        |s| Signal::try_from(s).map_or_else(|_| format!("{s}"), |s| s.as_str().to_string()),
    );
    Err(HookError::Signaled {
        hook,
        signal,
        stdout,
        stderr,
    })
}

/// The first [`OUTPUT_LIMIT`] bytes of a stream; the rest is read and dropped so the hook never
/// blocks on a full pipe.
#[derive(Default)]
struct Capture {
    bytes: Vec<u8>,
}

impl Capture {
    fn push(&mut self, data: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.bytes.len());
        self.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).trim().to_string()
    }
}

type IoFailure = (&'static str, std::io::Error);

/// How [`Running::supervise`] ended.
enum Ended {
    /// The hook exited (not reaped yet).
    Exited,
    /// The deadline passed while the hook was still running.
    DeadlinePassed,
}

/// A started hook and the parent's ends of its pipes.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Option<ChildStdout>,
    err: Option<ChildStderr>,
    stdout: Capture,
    stderr: Capture,
}

impl Running {
    fn new(mut child: Child) -> Self {
        let stdin = child.stdin.take();
        let out = child.stdout.take();
        let err = child.stderr.take();
        Running {
            child,
            stdin,
            out,
            err,
            stdout: Capture::default(),
            stderr: Capture::default(),
        }
    }

    /// Feeds stdin, drains stdout/stderr and waits for the hook to exit or the deadline.
    fn supervise(
        &mut self,
        state_json: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Ended, IoFailure> {
        let pidfd = pidfd_open(self.child.id()).map_err(|e| ("pidfd_open", e))?;
        for fd in [
            self.stdin.as_ref().map(|f| f.as_fd()),
            self.out.as_ref().map(|f| f.as_fd()),
            self.err.as_ref().map(|f| f.as_fd()),
        ]
        .into_iter()
        .flatten()
        {
            set_nonblocking(fd).map_err(|e| ("set O_NONBLOCK on a hook pipe", e))?;
        }
        let _sigpipe = SigpipeBlock::new().map_err(|e| ("block SIGPIPE", e))?;
        let mut pending = state_json;
        if pending.is_empty() {
            self.stdin = None;
        }
        loop {
            let wait = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Ended::DeadlinePassed);
                    }
                    // Round up so we never wake just before the deadline and spin.
                    let ms = left.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128);
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let (r_in, r_out, r_err, r_pid) = {
                let mut fds = Vec::with_capacity(4);
                let stdin = self.stdin.as_ref().map(|f| f.as_fd());
                let i_in = add_poll_fd(&mut fds, stdin, PollFlags::POLLOUT);
                let out = self.out.as_ref().map(|f| f.as_fd());
                let i_out = add_poll_fd(&mut fds, out, PollFlags::POLLIN);
                let err = self.err.as_ref().map(|f| f.as_fd());
                let i_err = add_poll_fd(&mut fds, err, PollFlags::POLLIN);
                let i_pid = add_poll_fd(&mut fds, Some(pidfd.as_fd()), PollFlags::POLLIN);
                match poll(&mut fds, wait) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(("poll", e.into())),
                }
                let ready = |i: Option<usize>| {
                    i.and_then(|i| fds.get(i))
                        .and_then(|f| f.revents())
                        .is_some_and(|r| !r.is_empty())
                };
                (ready(i_in), ready(i_out), ready(i_err), ready(i_pid))
            };
            if r_in {
                self.feed(&mut pending)
                    .map_err(|e| ("write state to stdin", e))?;
            }
            if r_out {
                drain(&mut self.out, &mut self.stdout).map_err(|e| ("read stdout", e))?;
            }
            if r_err {
                drain(&mut self.err, &mut self.stderr).map_err(|e| ("read stderr", e))?;
            }
            if r_pid {
                // Exited: take what is already in the pipes, but do not wait for EOF (a
                // background grandchild may hold them open).
                drain(&mut self.out, &mut self.stdout).map_err(|e| ("read stdout", e))?;
                drain(&mut self.err, &mut self.stderr).map_err(|e| ("read stderr", e))?;
                return Ok(Ended::Exited);
            }
        }
    }

    /// Writes as much of `pending` as the pipe takes; closes stdin when done or when the hook
    /// closed its end (EPIPE).
    fn feed(&mut self, pending: &mut &[u8]) -> std::io::Result<()> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Ok(());
        };
        while !pending.is_empty() {
            match stdin.write(pending) {
                Ok(n) => *pending = &pending[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::BrokenPipe => break,
                Err(e) => return Err(e),
            }
        }
        self.stdin = None;
        Ok(())
    }

    /// Kills the hook if `kill` (timeout or error) and reaps it.
    fn finish(&mut self, kill: bool) -> std::io::Result<ExitStatus> {
        self.stdin = None;
        if kill {
            // Not reaped yet, so the pid still names our child. ESRCH cannot happen before
            // the wait; any other failure shows up in the wait below.
            let _ = self.child.kill();
        }
        self.child.wait()
    }
}

/// Adds `fd` (if any) to `fds` and returns its index.
fn add_poll_fd<'a>(
    fds: &mut Vec<PollFd<'a>>,
    fd: Option<BorrowedFd<'a>>,
    events: PollFlags,
) -> Option<usize> {
    let fd = fd?;
    fds.push(PollFd::new(fd, events));
    Some(fds.len() - 1)
}

/// Reads everything available from `stream` into `into`; closes it at EOF.
fn drain<R: Read>(stream: &mut Option<R>, into: &mut Capture) -> std::io::Result<()> {
    let Some(r) = stream.as_mut() else {
        return Ok(());
    };
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => {
                *stream = None;
                return Ok(());
            }
            Ok(n) => into.push(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// `pidfd_open(2)`: a file descriptor that becomes readable when process `pid` exits.
fn pidfd_open(pid: u32) -> std::io::Result<OwnedFd> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))?;
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new fd or -1; no memory
    // is shared with the kernel.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(fd).map_err(|_| std::io::Error::from(ErrorKind::InvalidData))?;
    // SAFETY: `fd` was just returned by the kernel, is open and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Blocks `SIGPIPE` in the calling thread for its lifetime; on drop, discards a `SIGPIPE` that
/// our writes raised meanwhile (if it was not blocked before) and restores the old mask.
struct SigpipeBlock {
    old: SigSet,
}

impl SigpipeBlock {
    fn new() -> std::io::Result<Self> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGPIPE);
        let old = set.thread_swap_mask(SigmaskHow::SIG_BLOCK)?;
        Ok(SigpipeBlock { old })
    }
}

impl Drop for SigpipeBlock {
    fn drop(&mut self) {
        if !self.old.contains(Signal::SIGPIPE) {
            let mut set = SigSet::empty();
            set.add(Signal::SIGPIPE);
            let zero = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            let set_ref: &libc::sigset_t = set.as_ref();
            // SAFETY: `set_ref` and `zero` are valid for the call; a null siginfo pointer is
            // allowed. With a zero timeout the call only dequeues a pending SIGPIPE (or fails
            // with EAGAIN when there is none, which is fine).
            let _ = unsafe { libc::sigtimedwait(set_ref, std::ptr::null_mut(), &zero) };
        }
        let _ = self.old.thread_set_mask();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_names_match_config_json_keys() {
        let names: Vec<_> = [
            HookPhase::Prestart,
            HookPhase::CreateRuntime,
            HookPhase::CreateContainer,
            HookPhase::StartContainer,
            HookPhase::Poststart,
            HookPhase::Poststop,
        ]
        .iter()
        .map(|p| p.to_string())
        .collect();
        assert_eq!(
            names,
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ]
        );
    }

    #[test]
    fn capture_keeps_only_the_first_kib() {
        let mut c = Capture::default();
        c.push(&[b'a'; 1000]);
        c.push(&[b'b'; 1000]);
        assert_eq!(c.bytes.len(), OUTPUT_LIMIT);
        assert_eq!(c.bytes[999], b'a');
        assert_eq!(c.bytes[1000], b'b');
    }

    #[test]
    fn output_prefers_stderr() {
        assert_eq!(describe_output("o", "e"), ": e");
        assert_eq!(describe_output("o", ""), ": stdout: o");
        assert_eq!(describe_output("", ""), "");
    }
}
