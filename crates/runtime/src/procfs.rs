//! Writes into /proc (sysctls, oom_score_adj) through a handle checked to be a real procfs,
//! never through a path the container could redirect: CVE-2019-16884 and CVE-2025-52881
//! were writes that a mount or symlink over /proc sent elsewhere.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};

use crate::error::{Error, Result};

/// An open procfs mount.
#[derive(Debug)]
pub struct ProcFs {
    root: OwnedFd,
}

fn is_procfs(fd: &OwnedFd) -> bool {
    fstatfs(fd.as_fd()).is_ok_and(|st| st.filesystem_type() == PROC_SUPER_MAGIC)
}

impl ProcFs {
    /// Opens the procfs mounted at `path`, refusing anything else mounted there.
    pub fn open(path: &Path) -> Result<ProcFs> {
        let root = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::sys(format!("opening {}", path.display()), e))?;
        if !is_procfs(&root) {
            return Err(Error::Init(format!(
                "{} is not a procfs mount",
                path.display()
            )));
        }
        Ok(ProcFs { root })
    }

    /// Writes `value` to `rel` (e.g. `sys/net/ipv4/ip_forward`) below the procfs root without
    /// following symlinks or crossing into another mount, and checks that what was opened is
    /// procfs.
    pub fn write(&self, rel: &str, value: &[u8]) -> Result<()> {
        let how = OpenHow::new()
            .flags(OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_XDEV
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        let fd = openat2(self.root.as_fd(), rel, how).map_err(|e| match e {
            Errno::EXDEV => Error::Init(format!(
                "/proc/{rel}: something is mounted over procfs there; refusing to write"
            )),
            e => Error::sys(format!("opening /proc/{rel}"), e),
        })?;
        if !is_procfs(&fd) {
            return Err(Error::Init(format!(
                "/proc/{rel} is not on procfs; refusing to write"
            )));
        }
        nix::unistd::write(&fd, value)
            .map_err(|e| Error::sys(format!("writing /proc/{rel}"), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_procfs_is_accepted() {
        assert!(ProcFs::open(Path::new("/proc")).is_ok());
        let err = ProcFs::open(Path::new("/tmp")).unwrap_err();
        assert!(err.to_string().contains("not a procfs"), "{err}");
    }

    #[test]
    fn writes_do_not_follow_symlinks() {
        let proc = ProcFs::open(Path::new("/proc")).unwrap();
        // /proc/self is a symlink: a write through it must be refused.
        let err = proc.write("self/comm", b"x").unwrap_err();
        assert!(err.to_string().contains("/proc/self/comm"), "{err}");
        let me = std::process::id();
        proc.write(&format!("{me}/comm"), b"procfs-test").unwrap();
    }
}
