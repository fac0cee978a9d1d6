//! `events`: a container's resource usage now ([`Runtime::stats`]) or as a stream
//! ([`Runtime::events`]): stats every interval and an OOM event as soon as the kernel reports
//! one, until the container stops. One thread: poll(2) on the OOM notification descriptor and
//! a pidfd of the container's init, with the time to the next stats as timeout.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::cgroups::{OomCheck, Stats};
use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::state::{ContainerState, Status};
use crate::sys;

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Resource usage at one tick.
    Stats(Box<Stats>),
    /// The container's cgroup hit its memory limit and the OOM killer ran.
    Oom,
}

impl Event {
    /// runc's JSON for the event: `{"type":"stats","id":ID,"data":{...}}` or
    /// `{"type":"oom","id":ID}`.
    pub fn to_json(&self, id: &str) -> serde_json::Value {
        match self {
            Event::Stats(s) => serde_json::json!({"type": "stats", "id": id, "data": s}),
            Event::Oom => serde_json::json!({"type": "oom", "id": id}),
        }
    }
}

impl Runtime {
    /// The container's resource usage now; the container must not be stopped.
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let state = self.live_state(id)?;
        Ok(cgroup(&state)?.stats()?)
    }

    /// Calls `on_event` with a stats event every `interval` (the first after one interval, as
    /// runc) and with an OOM event as soon as the kernel reports one; returns `Ok` when the
    /// container stops, or when `on_event` returns `false`.
    pub fn events(
        &self,
        id: &str,
        interval: Duration,
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<()> {
        if interval.is_zero() {
            return Err(Error::Init("events: the interval must be positive".into()));
        }
        let state = self.live_state(id)?;
        let cg = cgroup(&state)?;
        let pidfd = match sys::pidfd_open(state.pid) {
            Ok(fd) => fd,
            Err(nix::errno::Errno::ESRCH) => return Ok(()),
            Err(e) => return Err(Error::sys(format!("pidfd_open {}", state.pid), e)),
        };
        // The pid may have been reused between loading the state and opening the pidfd.
        if self.status(&state) == Status::Stopped {
            return Ok(());
        }
        let mut oom = cg.oom_watcher()?;
        let mut next = Instant::now() + interval;
        loop {
            let wait = next.saturating_duration_since(Instant::now());
            let (oom_ready, exited) = {
                let mut fds = [
                    PollFd::new(oom.fd(), PollFlags::POLLIN),
                    PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                ];
                let timeout = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(e) => return Err(Error::sys("poll", e)),
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]))
            };
            // OOM before exit: a container whose init was OOM-killed reports both at once.
            if oom_ready || exited {
                match oom.check()? {
                    OomCheck::Oom => {
                        if !on_event(&Event::Oom) {
                            return Ok(());
                        }
                    }
                    OomCheck::Gone => return Ok(()),
                    OomCheck::Quiet => {}
                }
            }
            if exited {
                return Ok(());
            }
            if Instant::now() >= next {
                next += interval;
                // The cgroup may be removed between the tick and the read: that is the end.
                let stats = match cg.stats() {
                    Ok(s) => s,
                    Err(_) if self.status(&state) == Status::Stopped => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                if !on_event(&Event::Stats(Box::new(stats))) {
                    return Ok(());
                }
            }
        }
    }

    /// The state of a container that exists and has not stopped.
    fn live_state(&self, id: &str) -> Result<ContainerState> {
        let (state, status) = self.state(id)?;
        if status == Status::Stopped {
            return Err(Error::WrongState {
                id: id.to_string(),
                status: status.as_str(),
                action: "container not running",
            });
        }
        Ok(state)
    }
}

fn cgroup(state: &ContainerState) -> Result<&crate::cgroups::Cgroup> {
    state
        .cgroup
        .as_ref()
        .ok_or_else(|| Error::Init(format!("container {} has no cgroup", state.id)))
}
