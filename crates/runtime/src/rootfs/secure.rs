//! Paths inside a rootfs resolved by the kernel (`openat2` with RESOLVE_IN_ROOT), so that no
//! symlink, `..` or race in an untrusted image can lead a mount or a new file outside it.
//! Everything hands out O_PATH descriptors; mounts then target `/proc/self/fd/N`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// A rootfs directory, held open so that every lookup is relative to the same directory.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

/// The path through which a descriptor can be named to mount(2).
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// The path relative to the root: `/a/./b` and `a/b` both become `a/b`. `..` is kept: the
/// kernel clamps it at the root.
fn relative(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| {
            !matches!(
                c,
                Component::RootDir | Component::CurDir | Component::Prefix(_)
            )
        })
        .collect()
}

impl Root {
    pub fn open(path: &Path) -> nix::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Root { fd })
    }

    /// Opens `path` inside the root as O_PATH (following symlinks, but only within the root).
    pub fn resolve(&self, path: &Path) -> nix::Result<OwnedFd> {
        let rel = relative(path);
        if rel.as_os_str().is_empty() {
            return nix::unistd::dup(self.fd.as_fd());
        }
        openat2(self.fd.as_fd(), &rel, how(OFlag::O_PATH))
    }

    /// Like `resolve`, but does not follow a symlink in the last component.
    pub fn resolve_nofollow(&self, path: &Path) -> nix::Result<OwnedFd> {
        let rel = relative(path);
        if rel.as_os_str().is_empty() {
            return nix::unistd::dup(self.fd.as_fd());
        }
        openat2(
            self.fd.as_fd(),
            &rel,
            how(OFlag::O_PATH | OFlag::O_NOFOLLOW),
        )
    }

    /// Creates every missing directory of `path` (mode 0755) and opens the last one.
    pub fn mkdir_all(&self, path: &Path) -> nix::Result<OwnedFd> {
        let rel = relative(path);
        let mut prefix = PathBuf::new();
        let mut dir = nix::unistd::dup(self.fd.as_fd())?;
        for component in rel.components() {
            prefix.push(component);
            dir = match self.resolve(&prefix) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    let name = component.as_os_str();
                    match nix::sys::stat::mkdirat(
                        dir.as_fd(),
                        name,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e),
                    }
                    self.resolve(&prefix)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(dir)
    }

    /// Makes sure a file exists at `path` (creating parents and an empty file as needed) and
    /// opens it; an existing directory or device is opened as it is.
    pub fn touch(&self, path: &Path) -> nix::Result<OwnedFd> {
        match self.resolve(path) {
            Err(Errno::ENOENT) => {}
            other => return other,
        }
        let (parent, name) = split(path)?;
        let dir = self.mkdir_all(&parent)?;
        match nix::fcntl::openat(
            dir.as_fd(),
            name.as_path(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(_) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e),
        }
        self.resolve(path)
    }

    /// The directory that holds `path` (created if needed) and the last component's name.
    pub fn parent_of(&self, path: &Path) -> nix::Result<(OwnedFd, PathBuf)> {
        let (parent, name) = split(path)?;
        Ok((self.mkdir_all(&parent)?, name))
    }
}

fn split(path: &Path) -> nix::Result<(PathBuf, PathBuf)> {
    let rel = relative(path);
    let name = rel.file_name().ok_or(Errno::EINVAL)?;
    if name == ".." {
        return Err(Errno::EINVAL);
    }
    let parent = rel.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok((parent, PathBuf::from(name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn real_path(fd: &OwnedFd) -> PathBuf {
        std::fs::read_link(fd_path(fd.as_fd())).unwrap()
    }

    #[test]
    fn symlinks_pointing_out_stay_inside() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        symlink(outside.path(), root_dir.path().join("escape")).unwrap();
        symlink("../../../../", root_dir.path().join("up")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        let made = root.mkdir_all(Path::new("/escape/sub")).unwrap();
        let made_at = real_path(&made);
        assert!(made_at.starts_with(root_dir.path()), "{made_at:?}");
        assert!(!outside.path().join("sub").exists());
        let up = root.resolve(Path::new("up/../..")).unwrap();
        assert_eq!(real_path(&up), root_dir.path());
    }

    #[test]
    fn touch_creates_parents_and_file() {
        let root_dir = tempfile::tempdir().unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        root.touch(Path::new("/a/b/c")).unwrap();
        assert!(root_dir.path().join("a/b/c").is_file());
        root.touch(Path::new("/a/b/c")).unwrap();
    }

    #[test]
    fn split_refuses_the_root_and_dotdot() {
        assert!(split(Path::new("/")).is_err());
        assert!(split(Path::new("/a/..")).is_err());
        assert_eq!(
            split(Path::new("/a/b")).unwrap(),
            (PathBuf::from("a"), PathBuf::from("b"))
        );
    }
}
