//! The monitor's poll loop: container output to the log and the attach clients, attach input
//! to the container's stdin, control requests, and the children's exits (signalfd). When the
//! init has exited it drains the output (for a bounded time), then [`Monitor::finish`]es.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use gorae_runtime::cgroups::{OomCheck, OomWatcher};
use gorae_runtime::Runtime;
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use serde_json::json;

use super::attach::{AttachServer, Input};
use super::control::{self, ControlServer, Request};
use super::exit::{self, ExitInfo};
use super::logfile::{LogFile, Stream};
use super::stdio::{Io, Sink};

/// How long output may keep coming after the init's exit (from processes it left behind)
/// before the container is deleted regardless.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Quiet time after which the monitor gives back the memory its last work touched.
const IDLE_SHED: Duration = Duration::from_secs(1);
/// A monitor that never goes quiet (a chatty container) still sheds before it blocks, at most
/// this often. The kernel maps a touched page of the executable with up to 15 neighbours
/// (fault-around), so one pass of the log path brings ~1.7 MB of code back into the RSS;
/// shedding before each wait keeps a container that logs a line every 0.1 s at the quiet
/// monitor's ~0.66 MB instead of ~2.4 MB. The bound caps the cost (20 sheds a second) for a
/// container that floods its output: measured, a flooding container's monitor moved as many
/// bytes per CPU second as with a 10 s bound.
const BUSY_SHED: Duration = Duration::from_millis(50);
/// How long the exiting monitor waits for the request of a client that had connected.
const LATE_REQUESTS: Duration = Duration::from_millis(200);

/// The init has exited: its status, and until when output is still taken.
pub struct Exited {
    code: i32,
    finished_at: String,
    deadline: Instant,
}

/// Everything the loop serves.
pub struct Monitor {
    pub id: String,
    pub dir: PathBuf,
    pub stdin_once: bool,
    pub started: bool,
    pub runtime: Runtime,
    pub init: i32,
    pub io: Io,
    pub log: Option<LogFile>,
    pub attach: AttachServer,
    pub control: ControlServer,
    pub signals: SignalFd,
    pub oom: Option<OomWatcher>,
    pub oom_seen: bool,
    pub exit: Option<Exited>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Signals,
    Oom,
    Stdout,
    Stderr,
    Console,
    StdinSink,
    AttachListener,
    Attach(usize),
    ControlListener,
    Control(usize),
    /// A `wait` client: never sends more, so any event is its hangup.
    Waiter(usize),
}

impl Monitor {
    /// Serves until the container is gone, then exits the process.
    pub fn run(mut self) -> ! {
        let mut buf = vec![0u8; 32 * 1024];
        let shedder = super::sys::Shedder::new();
        // Not busy at first: setup's pages go before the first wait.
        let mut busy = false;
        let mut last_shed = Instant::now();
        while !self.done() {
            let shed = !busy || last_shed.elapsed() >= BUSY_SHED;
            if shed {
                last_shed = Instant::now();
            }
            let ready = self.wait(busy, shed.then_some(&shedder));
            busy = !ready.is_empty();
            let mut control_ready = Vec::new();
            let mut waiters_gone = Vec::new();
            for (slot, revents) in ready {
                match slot {
                    Slot::Control(i) => control_ready.push(i),
                    Slot::Waiter(i) => waiters_gone.push(i),
                    _ => self.handle(slot, revents, &mut buf),
                }
            }
            self.attach.reap();
            for i in waiters_gone.into_iter().rev() {
                self.control.waiters.swap_remove(i);
            }
            for (stream, request) in self.control.read_ready(&control_ready) {
                self.request(stream, request);
            }
        }
        self.finish(&mut buf)
    }

    fn done(&self) -> bool {
        let Some(exit) = &self.exit else { return false };
        let drained = !self.io.outputs_open() && !self.attach.backlog();
        drained || Instant::now() >= exit.deadline
    }

    /// Polls everything there is to serve; returns what is ready (nothing if it was `busy`
    /// and then quiet for [`IDLE_SHED`]). Given a `shedder`, it sheds memory right before it
    /// blocks, so that nothing but the poll call itself touches pages after.
    fn wait(&self, busy: bool, shedder: Option<&super::sys::Shedder>) -> Vec<(Slot, PollFlags)> {
        let mut slots = Vec::new();
        let mut fds = Vec::new();
        let mut add = |slot, fd, flags| {
            slots.push(slot);
            fds.push(PollFd::new(fd, flags));
        };
        let input = PollFlags::POLLIN;
        add(Slot::Signals, self.signals.as_fd(), input);
        if let Some(oom) = &self.oom {
            add(Slot::Oom, oom.fd(), input);
        }
        for (slot, fd) in [
            (Slot::Stdout, self.io.stdout.as_ref()),
            (Slot::Stderr, self.io.stderr.as_ref()),
        ] {
            if let Some(fd) = fd {
                add(slot, fd.as_fd(), input);
            }
        }
        if let (Some(master), true) = (&self.io.console, self.io.console_reading) {
            add(Slot::Console, master.as_fd(), input);
        }
        if let (Some(fd), false) = (self.io.sink_fd(), self.io.stdin_buf.is_empty()) {
            add(Slot::StdinSink, fd, PollFlags::POLLOUT);
        }
        add(Slot::AttachListener, self.attach.listener_fd(), input);
        let room = self.io.stdin_has_room();
        for (i, client) in self.attach.clients.iter().enumerate() {
            let mut flags = PollFlags::empty();
            if client.wants_read(room) {
                flags |= input;
            }
            if client.has_backlog() {
                flags |= PollFlags::POLLOUT;
            }
            add(Slot::Attach(i), client.fd(), flags);
        }
        add(Slot::ControlListener, self.control.listener_fd(), input);
        for (i, fd) in self.control.pending_fds().enumerate() {
            add(Slot::Control(i), fd, input);
        }
        for (i, waiter) in self.control.waiters.iter().enumerate() {
            add(Slot::Waiter(i), waiter.as_fd(), input);
        }
        let timeout = match &self.exit {
            None if busy => PollTimeout::try_from(IDLE_SHED).unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
            Some(e) => {
                let left = e.deadline.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left + Duration::from_millis(1)).unwrap_or(PollTimeout::MAX)
            }
        };
        if let Some(shedder) = shedder {
            shedder.shed();
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(_) => return Vec::new(),
        }
        slots
            .into_iter()
            .zip(
                fds.iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .filter(|(_, r)| !r.is_empty())
            .collect()
    }

    fn handle(&mut self, slot: Slot, revents: PollFlags, buf: &mut [u8]) {
        match slot {
            Slot::Signals => self.signals(),
            Slot::Oom => self.check_oom(),
            Slot::Stdout | Slot::Stderr | Slot::Console => {
                self.read_output(slot, buf);
            }
            Slot::StdinSink => self.io.flush_stdin(),
            Slot::AttachListener => self.attach.accept_all(),
            Slot::Attach(i) => self.attach_client(i, revents, buf),
            Slot::ControlListener => self.control.accept_all(),
            Slot::Control(_) | Slot::Waiter(_) => {}
        }
    }

    fn signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap(),
                Ok(sig @ (Signal::SIGTERM | Signal::SIGINT)) if self.exit.is_none() => {
                    let _ = nix::sys::signal::kill(Pid::from_raw(self.init), sig);
                }
                _ => {}
            }
        }
    }

    /// Reaps every child that has ended (the monitor is the subreaper of the container's
    /// orphans too); the init's end is the container's exit.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(status) => {
                    let is_init = status.pid() == Some(Pid::from_raw(self.init));
                    if let (true, Some(code), None) = (is_init, exit::exit_code(status), &self.exit)
                    {
                        self.exit = Some(Exited {
                            code,
                            finished_at: gorae_runtime::state::rfc3339(std::time::SystemTime::now()),
                            deadline: Instant::now() + DRAIN_LIMIT,
                        });
                        self.io.stdin_buf.clear();
                        self.io.sink = Sink::Closed;
                    }
                }
            }
        }
    }

    fn check_oom(&mut self) {
        match self.oom.as_mut().map(OomWatcher::check) {
            Some(Ok(OomCheck::Oom)) => self.oom_seen = true,
            Some(Ok(OomCheck::Quiet)) | None => {}
            Some(Ok(OomCheck::Gone)) | Some(Err(_)) => self.oom = None,
        }
    }

    /// One read from an output; end of file (EIO for a pty whose slave is gone) closes it.
    /// True if it got data.
    fn read_output(&mut self, slot: Slot, buf: &mut [u8]) -> bool {
        let (stream, fd) = match slot {
            Slot::Stdout => (Stream::Stdout, self.io.stdout.as_ref()),
            Slot::Stderr => (Stream::Stderr, self.io.stderr.as_ref()),
            _ => (Stream::Stdout, self.io.console.as_ref()),
        };
        if slot == Slot::Console && !self.io.console_reading {
            return false;
        }
        let Some(fd) = fd else { return false };
        match nix::unistd::read(fd, buf) {
            Ok(n) if n > 0 => {
                self.deliver(stream, &buf[..n]);
                return true;
            }
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            _ => match slot {
                Slot::Stdout => self.io.stdout = None,
                Slot::Stderr => self.io.stderr = None,
                _ => self.io.console_reading = false,
            },
        }
        false
    }

    fn deliver(&mut self, stream: Stream, data: &[u8]) {
        if let Some(log) = &mut self.log {
            let time = gorae_runtime::state::rfc3339(std::time::SystemTime::now());
            log.write(stream, data, &time);
        }
        self.attach.broadcast(stream, data);
    }

    fn attach_client(&mut self, i: usize, revents: PollFlags, buf: &mut [u8]) {
        let Some(client) = self.attach.clients.get_mut(i) else {
            return;
        };
        let mut inputs = Vec::new();
        if revents.contains(PollFlags::POLLIN) {
            inputs.push(client.read(buf));
        }
        if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            inputs.push(client.hangup());
        }
        if revents.contains(PollFlags::POLLOUT) {
            client.flush();
        }
        for input in inputs {
            match input {
                Input::Stdin(data) if self.exit.is_none() => self.io.push_stdin(&data),
                Input::StdinEof if self.stdin_once => self.io.close_stdin(),
                _ => {}
            }
        }
    }

    fn request(&mut self, stream: UnixStream, request: Request) {
        let reply = match request {
            Request::Wait => return self.control.waiters.push(stream),
            Request::Start => self.start(),
            Request::State => json!({"ok": true, "pid": self.init, "started": self.started}),
            Request::CloseStdin => {
                self.io.close_stdin();
                json!({"ok": true})
            }
            Request::Resize { height, width } => match &self.io.console {
                Some(master) => {
                    match gorae_runtime::sys::set_window_size(master.as_fd(), height, width) {
                        Ok(()) => json!({"ok": true}),
                        Err(e) => control::error_reply(&format!("resizing the terminal: {e}")),
                    }
                }
                None => control::error_reply("the container has no terminal to resize"),
            },
        };
        control::reply(stream, &reply);
    }

    fn start(&mut self) -> serde_json::Value {
        if self.exit.is_some() {
            return control::error_reply(&format!("container {} has exited", self.id));
        }
        if self.started {
            return control::error_reply(&format!("container {} is already started", self.id));
        }
        // Clients that connected before asking for the start see the first output.
        self.attach.accept_all();
        match self.runtime.start(&self.id) {
            Ok(()) => {
                self.started = true;
                json!({"ok": true, "pid": self.init})
            }
            Err(e) => control::error_reply(&e.to_string()),
        }
    }

    /// Reads whatever output is still buffered, without waiting.
    fn drain_outputs(&mut self, buf: &mut [u8]) {
        for slot in [Slot::Stdout, Slot::Stderr, Slot::Console] {
            // Bounded: a process left behind may write forever.
            for _ in 0..256 {
                if !self.read_output(slot, buf) {
                    break;
                }
            }
        }
    }

    /// The init has exited and its output is drained: record the exit, delete the container,
    /// answer the waiters, remove the sockets and go.
    fn finish(mut self, buf: &mut [u8]) -> ! {
        self.check_oom();
        let oom_killed = self.oom_seen;
        let _ = self.runtime.delete(&self.id, true);
        self.reap();
        self.drain_outputs(buf);
        for client in &mut self.attach.clients {
            client.flush();
        }
        let info = match &self.exit {
            Some(e) => ExitInfo {
                exit_code: e.code,
                finished_at: e.finished_at.clone(),
                oom_killed,
            },
            None => ExitInfo {
                exit_code: 255,
                finished_at: gorae_runtime::state::rfc3339(std::time::SystemTime::now()),
                oom_killed,
            },
        };
        let _ = exit::write_exit_file(&self.dir, &info);
        let reply = info.reply();
        for waiter in std::mem::take(&mut self.control.waiters) {
            control::reply(waiter, &reply);
        }
        // No new connections from here on; those already queued get their answer.
        exit::remove_runtime_files(&self.dir);
        for (stream, request) in self.control.late_requests(LATE_REQUESTS) {
            let answer = match request {
                Request::Wait => reply.clone(),
                Request::State => json!({"ok": true, "pid": self.init, "started": self.started}),
                _ => control::error_reply(&format!("container {} has exited", self.id)),
            };
            control::reply(stream, &answer);
        }
        std::process::exit(0)
    }
}
