//! What gorae-runc does while a container runs in the foreground (`run` without `--detach`):
//! forward signals to the container, copy between its pty and the caller's terminal, and wait
//! for its exit status. Also the `start` side of the exec FIFO.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Error, Result, SysContext};

const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCHLD,
];

/// Blocks the signals `wait` will forward, before the init is cloned (it unblocks them for
/// itself), and returns a signalfd that receives them.
pub fn block_signals() -> Result<SignalFd> {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(s);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
        .ctx(|| "sigprocmask".into())?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).ctx(|| "signalfd".into())
}

/// Waits for `init` to exit, forwarding signals and copying console I/O; returns runc's exit
/// code: the program's status, or 128 + the signal that killed it.
pub fn wait(init: Pid, signals: SignalFd, console: Option<OwnedFd>) -> Result<i32> {
    let raw_terminal = console.as_ref().and_then(|_| RawTerminal::enter());
    if let Some(master) = &console {
        resize_from_stdin(master.as_fd());
    }
    let mut stdin_open = console.is_some();
    let mut buf = [0u8; 8192];
    let stdin = std::io::stdin();
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(master) = &console {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
            if stdin_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            other => other.ctx(|| "poll".into())?,
        };
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        if ready.get(1) == Some(&true) {
            if let Some(master) = &console {
                copy_once(master.as_fd(), &mut std::io::stdout(), &mut buf);
            }
        }
        if ready.get(2) == Some(&true) {
            if let Some(master) = &console {
                stdin_open = copy_stdin_to(master.as_fd(), &mut buf);
            }
        }
        if ready[0] {
            if let Some(code) = handle_signal(init, &signals, console.as_ref())? {
                if let Some(master) = &console {
                    drain(master.as_fd(), &mut buf);
                }
                drop(raw_terminal);
                return Ok(code);
            }
        }
    }
}

fn handle_signal(init: Pid, signals: &SignalFd, console: Option<&OwnedFd>) -> Result<Option<i32>> {
    let Some(info) = signals.read_signal().ctx(|| "reading signalfd".into())? else {
        return Ok(None);
    };
    let signal = Signal::try_from(info.ssi_signo as i32).ok();
    match signal {
        Some(Signal::SIGCHLD) => loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == init => return Ok(Some(code)),
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == init => {
                    return Ok(Some(128 + sig as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return Ok(None),
                Ok(_) => continue,
                Err(e) => return Err(Error::sys("waitpid", e)),
            }
        },
        Some(Signal::SIGWINCH) => {
            if let Some(master) = console {
                resize_from_stdin(master.as_fd());
            }
            Ok(None)
        }
        Some(sig) => {
            let _ = kill(init, sig);
            Ok(None)
        }
        None => Ok(None),
    }
}

fn copy_once(from: BorrowedFd<'_>, to: &mut impl Write, buf: &mut [u8]) -> bool {
    match nix::unistd::read(from, buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            let _ = to.write_all(&buf[..n]);
            let _ = to.flush();
            true
        }
    }
}

fn copy_stdin_to(master: BorrowedFd<'_>, buf: &mut [u8]) -> bool {
    match std::io::stdin().read(buf) {
        Ok(0) | Err(_) => false,
        Ok(n) => nix::unistd::write(master, &buf[..n]).is_ok(),
    }
}

/// Copies what the program wrote before it exited.
fn drain(master: BorrowedFd<'_>, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(master, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n)
                if n > 0
                    && fds[0]
                        .revents()
                        .is_some_and(|r| r.contains(PollFlags::POLLIN)) =>
            {
                if !copy_once(master, &mut std::io::stdout(), buf) {
                    return;
                }
            }
            _ => return,
        }
    }
}

fn resize_from_stdin(master: BorrowedFd<'_>) {
    if let Some((rows, cols)) = crate::sys::window_size(std::io::stdin().as_fd()) {
        let _ = crate::sys::set_window_size(master, rows, cols);
    }
}

/// The caller's terminal in raw mode for the life of the value.
struct RawTerminal(nix::sys::termios::Termios);

impl RawTerminal {
    fn enter() -> Option<Self> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

/// `start`'s half of the exec FIFO: opening it releases the init; it writes "0", and its end
/// closes when exec succeeds. Anything else it writes is the reason it failed.
pub fn release_exec_fifo(fifo: &Path, init: i32) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    let fd = open(
        fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("opening {}", fifo.display()))?;
    let pidfd = crate::sys::pidfd_open(init).ctx(|| format!("pidfd_open {init}"))?;
    let mut got = Vec::new();
    let mut writer_seen = false;
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) if writer_seen => break,
            Ok(0) => {}
            Ok(n) => {
                writer_seen = true;
                got.extend_from_slice(&buf[..n]);
                continue;
            }
            Err(Errno::EAGAIN) => writer_seen = true,
            Err(e) => return Err(Error::sys("reading exec.fifo", e)),
        }
        let mut fds = [
            PollFd::new(fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        poll(&mut fds, PollTimeout::NONE).ctx(|| "poll exec.fifo".into())?;
        let fifo_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let init_gone = fds[1].revents().is_some_and(|r| !r.is_empty());
        if init_gone && !fifo_ready {
            break;
        }
    }
    match got.split_first() {
        Some((b'0', [])) => Ok(()),
        Some((b'0', reason)) => Err(Error::Init(String::from_utf8_lossy(reason).into_owned())),
        _ => Err(Error::Init(
            "the container's init exited before it was started".into(),
        )),
    }
}
