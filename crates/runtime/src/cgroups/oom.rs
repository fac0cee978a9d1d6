//! OOM notification for a container's cgroup, as a descriptor to poll(2):
//! - v1: an eventfd registered through `cgroup.event_control` on `memory.oom_control`; it
//!   counts the times the cgroup hit its limit with the OOM killer (or paused tasks);
//! - v2: inotify on `memory.events`; an OOM kill is the `oom_kill` count rising.
//!
//! No threads: the caller polls [`OomWatcher::fd`] and calls [`OomWatcher::check`] when it is
//! readable (or at any time; `check` never blocks). The raw syscalls (eventfd, inotify) live
//! here because nix is not built with its `event`/`inotify` features.

use super::stats::parse_flat_keyed;
use super::{read_file, write_file, Cgroup, CgroupError};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

/// What [`OomWatcher::check`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OomCheck {
    /// Nothing new.
    Quiet,
    /// The cgroup had an OOM (v1: a notification; v2: `oom_kill` rose) since the last check.
    Oom,
    /// The cgroup is gone: there will be no more notifications.
    Gone,
}

enum Kind {
    V1 {
        efd: OwnedFd,
        /// Kept open: the registration lives as long as this descriptor.
        _oom_control: std::fs::File,
        oom_control: PathBuf,
    },
    V2 {
        inotify: OwnedFd,
        events: PathBuf,
        last_oom_kill: u64,
    },
}

/// An open OOM notification on one cgroup.
pub struct OomWatcher {
    kind: Kind,
}

fn fs_err(op: &'static str, path: &std::path::Path, source: io::Error) -> CgroupError {
    CgroupError::Fs {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn oom_kill_count(path: &std::path::Path) -> Result<u64, CgroupError> {
    Ok(parse_flat_keyed(&read_file(path)?)
        .get("oom_kill")
        .copied()
        .unwrap_or(0))
}

/// Reads and discards whatever is pending on a non-blocking descriptor; `Ok(n)` bytes read.
fn drain(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    loop {
        // SAFETY: buf is valid for buf.len() bytes and outlives the call.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            total += n as usize;
            continue;
        }
        if n == 0 {
            return Ok(total);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) => return Ok(total),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}

impl OomWatcher {
    /// The descriptor that becomes readable when there may be news.
    pub fn fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            Kind::V1 { efd, .. } => efd.as_fd(),
            Kind::V2 { inotify, .. } => inotify.as_fd(),
        }
    }

    /// Whether an OOM happened since the last check. Never blocks.
    pub fn check(&mut self) -> Result<OomCheck, CgroupError> {
        match &mut self.kind {
            Kind::V1 {
                efd, oom_control, ..
            } => {
                let n =
                    drain(efd.as_fd()).map_err(|e| fs_err("reading eventfd of", oom_control, e))?;
                // The kernel also signals the eventfd when the cgroup is removed.
                if !oom_control.exists() {
                    return Ok(OomCheck::Gone);
                }
                Ok(if n > 0 {
                    OomCheck::Oom
                } else {
                    OomCheck::Quiet
                })
            }
            Kind::V2 {
                inotify,
                events,
                last_oom_kill,
            } => {
                drain(inotify.as_fd()).map_err(|e| fs_err("reading inotify of", events, e))?;
                let count = match oom_kill_count(events) {
                    Ok(c) => c,
                    Err(CgroupError::Read { source, .. })
                        if source.kind() == io::ErrorKind::NotFound =>
                    {
                        return Ok(OomCheck::Gone)
                    }
                    Err(e) => return Err(e),
                };
                let rose = count > *last_oom_kill;
                *last_oom_kill = count;
                Ok(if rose { OomCheck::Oom } else { OomCheck::Quiet })
            }
        }
    }
}

impl Cgroup {
    /// Starts watching the memory controller's hierarchy for OOM events.
    pub fn oom_watcher(&self) -> Result<OomWatcher, CgroupError> {
        let h = self
            .v1("memory")
            .or_else(|| self.unified())
            .ok_or_else(|| CgroupError::NoController {
                controller: "memory".into(),
                field: "OOM notification".into(),
            })?;
        if h.unified {
            let events = h.dir.join("memory.events");
            // SAFETY: no pointers; the result is a new descriptor we take ownership of.
            let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if fd < 0 {
                return Err(fs_err(
                    "inotify_init1 for",
                    &events,
                    io::Error::last_os_error(),
                ));
            }
            // SAFETY: the kernel just returned this descriptor and nothing else owns it.
            let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
            let cpath = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())
                .map_err(|e| fs_err("watching", &events, io::Error::other(e)))?;
            // SAFETY: cpath is a valid NUL-terminated string for the duration of the call.
            let wd = unsafe {
                libc::inotify_add_watch(inotify.as_raw_fd(), cpath.as_ptr(), libc::IN_MODIFY)
            };
            if wd < 0 {
                return Err(fs_err("watching", &events, io::Error::last_os_error()));
            }
            let last_oom_kill = oom_kill_count(&events)?;
            return Ok(OomWatcher {
                kind: Kind::V2 {
                    inotify,
                    events,
                    last_oom_kill,
                },
            });
        }
        let oom_control = h.dir.join("memory.oom_control");
        let control =
            std::fs::File::open(&oom_control).map_err(|e| fs_err("opening", &oom_control, e))?;
        // SAFETY: no pointers; the result is a new descriptor we take ownership of.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(fs_err(
                "eventfd for",
                &oom_control,
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: the kernel just returned this descriptor and nothing else owns it.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        write_file(
            "memory",
            &h.dir.join("cgroup.event_control"),
            &format!("{} {}", efd.as_raw_fd(), control.as_raw_fd()),
        )?;
        Ok(OomWatcher {
            kind: Kind::V1 {
                efd,
                _oom_control: control,
                oom_control,
            },
        })
    }
}
