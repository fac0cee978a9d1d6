//! The container's stdio as the monitor holds it: the read ends of its stdout and stderr
//! pipes or its pty master, and where its stdin goes, with a bounded buffer for a container
//! that does not read.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

/// Stdin bytes buffered for a container that does not read them; attach clients wait.
const STDIN_BUFFER: usize = 64 * 1024;

/// Where the container's stdin goes.
pub(super) enum Sink {
    Closed,
    Pipe(OwnedFd),
    /// The pty master (held in [`Io::console`]).
    Console,
}

/// The container's side of its stdio.
pub struct Io {
    pub(super) stdout: Option<OwnedFd>,
    pub(super) stderr: Option<OwnedFd>,
    pub(super) console: Option<OwnedFd>,
    pub(super) console_reading: bool,
    pub(super) sink: Sink,
    pub(super) stdin_buf: Vec<u8>,
    pub(super) stdin_closing: bool,
}

fn set_nonblocking(fd: &OwnedFd) {
    if let Ok(bits) = fcntl(fd, FcntlArg::F_GETFL) {
        let flags = OFlag::from_bits_truncate(bits) | OFlag::O_NONBLOCK;
        let _ = fcntl(fd, FcntlArg::F_SETFL(flags));
    }
}

impl Io {
    pub fn pipes(stdout: OwnedFd, stderr: OwnedFd, stdin: Option<OwnedFd>) -> Io {
        for fd in [Some(&stdout), Some(&stderr), stdin.as_ref()]
            .into_iter()
            .flatten()
        {
            set_nonblocking(fd);
        }
        Io {
            stdout: Some(stdout),
            stderr: Some(stderr),
            console: None,
            console_reading: false,
            sink: stdin.map_or(Sink::Closed, Sink::Pipe),
            stdin_buf: Vec::new(),
            stdin_closing: false,
        }
    }

    pub fn tty(master: OwnedFd, stdin: bool) -> Io {
        set_nonblocking(&master);
        Io {
            stdout: None,
            stderr: None,
            console: Some(master),
            console_reading: true,
            sink: if stdin { Sink::Console } else { Sink::Closed },
            stdin_buf: Vec::new(),
            stdin_closing: false,
        }
    }

    pub(super) fn outputs_open(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some() || self.console_reading
    }

    pub(super) fn sink_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.sink {
            Sink::Closed => None,
            Sink::Pipe(fd) => Some(fd.as_fd()),
            Sink::Console => self.console.as_ref().map(|c| c.as_fd()),
        }
    }

    pub(super) fn stdin_has_room(&self) -> bool {
        self.stdin_buf.len() < STDIN_BUFFER
    }

    pub(super) fn push_stdin(&mut self, data: &[u8]) {
        if self.stdin_closing || matches!(self.sink, Sink::Closed) {
            return;
        }
        self.stdin_buf.extend_from_slice(data);
        self.flush_stdin();
    }

    pub(super) fn flush_stdin(&mut self) {
        while !self.stdin_buf.is_empty() {
            let Some(fd) = self.sink_fd() else {
                self.stdin_buf.clear();
                break;
            };
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => {}
                // The container closed its stdin (EPIPE) or the pty is gone.
                Err(_) => {
                    self.stdin_buf.clear();
                    self.sink = Sink::Closed;
                }
            }
        }
        if self.stdin_buf.capacity() > STDIN_BUFFER * 2 {
            self.stdin_buf.shrink_to(STDIN_BUFFER);
        }
        if self.stdin_closing {
            // A pty has no end of input of its own: the program keeps its terminal, the
            // monitor just stops writing to it.
            self.sink = Sink::Closed;
        }
    }

    /// Closes the container's stdin once what is buffered has been written.
    pub(super) fn close_stdin(&mut self) {
        self.stdin_closing = true;
        self.flush_stdin();
    }
}
