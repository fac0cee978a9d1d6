//! The command's front process: forks the monitor and waits until it reports ready (one line
//! on a pipe: `ok`, or `error <message>`), so the engine that runs the command knows, from its
//! exit status, that the container is created and the sockets listen.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::Options;

/// Forks the monitor; returns once it is ready, or with its one-line error once it has
/// cleaned up and exited.
pub fn run(options: &Options) -> Result<(), String> {
    gorae_runtime::state::validate_id(&options.args.container_id).map_err(|e| e.to_string())?;
    if options.args.stdin_once && !options.args.stdin {
        return Err("--stdin-once needs --stdin".into());
    }
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    // The monitor must be a fork of this single-threaded process, not a re-exec: the runtime
    // forks the container's init from it in turn.
    match gorae_runtime::sys::clone_process(0) {
        Err(e) => Err(format!("fork of the monitor: {e}")),
        Ok(None) => {
            drop(read_end);
            super::setup::monitor_main(options, write_end)
        }
        Ok(Some(child)) => {
            drop(write_end);
            wait_ready(read_end, child)
        }
    }
}

fn wait_ready(pipe: OwnedFd, child: nix::unistd::Pid) -> Result<(), String> {
    let message = read_report(&pipe, child);
    match message.strip_prefix("ok") {
        Some("") => Ok(()),
        _ => {
            // The monitor exits right after its report: wait, so that when we return nothing
            // of it is left.
            let _ = nix::sys::wait::waitpid(child, None);
            let text = message.strip_prefix("error ").unwrap_or(&message).trim();
            Err(if text.is_empty() {
                "the monitor exited during setup".to_string()
            } else {
                text.to_string()
            })
        }
    }
}

/// The report line. The container's init inherits the pipe until it execs, so the end of the
/// line, not EOF, ends the report; the monitor's exit (seen on a pidfd) ends it too.
fn read_report(pipe: &OwnedFd, child: nix::unistd::Pid) -> String {
    let pidfd = gorae_runtime::sys::pidfd_open(child.as_raw()).ok();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if got.contains(&b'\n') {
            break;
        }
        let mut fds = vec![PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = &pidfd {
            fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let pipe_ready = fds[0].revents().is_some_and(|r| !r.is_empty());
        let child_gone = fds
            .get(1)
            .is_some_and(|f| f.revents().is_some_and(|r| !r.is_empty()));
        drop(fds);
        if pipe_ready {
            match nix::unistd::read(pipe, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break,
            }
        } else if child_gone {
            break;
        }
    }
    let line = got.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}
