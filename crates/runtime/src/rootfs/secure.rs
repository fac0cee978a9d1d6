//! Paths inside a rootfs resolved by the kernel (`openat2` with RESOLVE_IN_ROOT), so that no
//! symlink, `..` or race in an untrusted image can lead a mount or a new file outside it.
//! Everything hands out O_PATH descriptors; mounts then target `/proc/self/fd/N`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// How many symlinks a path may pass through, as the kernel's limit.
const MAX_LINKS: u32 = 40;

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

    /// Creates every missing directory of `path` (mode 0755) and opens the last one. A dangling
    /// symlink on the way is followed the way the kernel would, inside the root: its target is
    /// created (as runc's securejoin does).
    pub fn mkdir_all(&self, path: &Path) -> nix::Result<OwnedFd> {
        self.mkdir_all_within(path, 0)
    }

    fn mkdir_all_within(&self, path: &Path, links: u32) -> nix::Result<OwnedFd> {
        if links > MAX_LINKS {
            return Err(Errno::ELOOP);
        }
        let rel = relative(path);
        let components: Vec<Component<'_>> = rel.components().collect();
        let mut prefix = PathBuf::new();
        let mut dir = nix::unistd::dup(self.fd.as_fd())?;
        for (i, component) in components.iter().enumerate() {
            let next = prefix.join(component);
            dir = match self.resolve(&next) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    let name = component.as_os_str();
                    match nix::sys::stat::mkdirat(
                        dir.as_fd(),
                        name,
                        Mode::from_bits_truncate(0o755),
                    ) {
                        Ok(()) => self.resolve(&next)?,
                        Err(Errno::EEXIST) => {
                            let target = self.dangling_target(&dir, &prefix, name)?;
                            let rest: PathBuf = components[i + 1..].iter().collect();
                            return self.mkdir_all_within(&target.join(rest), links + 1);
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            };
            prefix = next;
        }
        Ok(dir)
    }

    /// Where the dangling symlink `name` in `dir` (at `prefix` in the root) points, as a path
    /// in the root.
    fn dangling_target(
        &self,
        dir: &OwnedFd,
        prefix: &Path,
        name: &std::ffi::OsStr,
    ) -> nix::Result<PathBuf> {
        let target = PathBuf::from(nix::fcntl::readlinkat(dir.as_fd(), name)?);
        Ok(if target.is_absolute() {
            target
        } else {
            prefix.join(target)
        })
    }

    /// Makes sure a file exists at `path` (creating parents and an empty file as needed) and
    /// opens it; an existing directory or device is opened as it is.
    pub fn touch(&self, path: &Path) -> nix::Result<OwnedFd> {
        self.touch_within(path, 0)
    }

    fn touch_within(&self, path: &Path, links: u32) -> nix::Result<OwnedFd> {
        if links > MAX_LINKS {
            return Err(Errno::ELOOP);
        }
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
            Ok(_) => {}
            Err(Errno::EEXIST) => match self.resolve(path) {
                Err(Errno::ENOENT) => {
                    let target = self.dangling_target(&dir, &parent, name.as_os_str())?;
                    return self.touch_within(&target, links + 1);
                }
                other => return other,
            },
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
    fn dangling_symlinks_are_created_inside_the_root() {
        let outside = tempfile::tempdir().unwrap();
        let root_dir = tempfile::tempdir().unwrap();
        let target = outside.path().join("missing");
        symlink(&target, root_dir.path().join("abs")).unwrap();
        symlink("rel/../rel2", root_dir.path().join("relative")).unwrap();
        let file_target = outside.path().join("missing-file");
        symlink(&file_target, root_dir.path().join("file")).unwrap();
        symlink("loop", root_dir.path().join("loop")).unwrap();
        let root = Root::open(root_dir.path()).unwrap();
        root.mkdir_all(Path::new("/abs/sub")).unwrap();
        assert!(root_dir
            .path()
            .join(target.strip_prefix("/").unwrap())
            .join("sub")
            .is_dir());
        assert!(!target.exists());
        root.mkdir_all(Path::new("relative/x")).unwrap();
        assert!(root_dir.path().join("rel2/x").is_dir());
        root.touch(Path::new("file")).unwrap();
        assert!(root_dir
            .path()
            .join(file_target.strip_prefix("/").unwrap())
            .is_file());
        assert!(!file_target.exists());
        assert_eq!(
            root.mkdir_all(Path::new("loop/x")).unwrap_err(),
            Errno::ELOOP
        );
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
