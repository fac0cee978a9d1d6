//! `docker cp`: stat, read (tar) and write (untar) paths inside a container's root.
//!
//! The root is `/proc/<pid>/root` of a running container, or its rootfs mount point when it
//! is stopped. Every path the client names is resolved with openat2(RESOLVE_IN_ROOT): `..`
//! and symlinks (absolute ones too) stay inside the container's root, as they would for a
//! process in it. Below that, the tree is walked and written through descriptors with
//! single-component `*at()` calls that never follow a symlink, so nothing the container (or
//! a tarball) puts there can send the daemon to the host's files.
//!
//! Tar input is untrusted: an entry whose path climbs out of the extraction directory is
//! refused, a bad header ends the extraction with an error, nothing panics.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{FileStat, SFlag};
use serde::Serialize;

mod tar_in;
mod tar_out;

pub use tar_in::extract;
pub use tar_out::write_tar;

/// Opens `path` (absolute or relative, inside the container) below `root` as the container
/// would see it. `flags` may hold O_NOFOLLOW to open a final symlink itself (with O_PATH).
pub fn open_in_root(root: &Path, path: &str, flags: OFlag) -> std::io::Result<OwnedFd> {
    let root_fd = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    open_under(&root_fd, path, flags)
}

/// [`open_in_root`] from an open root directory.
pub fn open_under(root: &impl AsFd, path: &str, flags: OFlag) -> std::io::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    Ok(openat2(root.as_fd(), rel, how)?)
}

/// The procfs name of an open descriptor, to reopen or list what it points at without
/// resolving any path again.
pub(crate) fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// What `path` names for cp: the object itself (a final symlink not followed) and the name
/// docker gives it in the tar and the stat. A path ending in `/.` or `/` names the directory
/// it leads to, followed.
pub struct Target {
    pub fd: OwnedFd,
    pub stat: FileStat,
    pub name: String,
    /// The container path as given, cleaned (for linkTarget).
    pub clean: String,
}

pub fn open_target(root: &impl AsFd, path: &str) -> std::io::Result<Target> {
    let follow = path.ends_with("/.") || path.ends_with('/') || path == ".";
    let clean = clean_path(path);
    let flags = if follow {
        OFlag::O_PATH
    } else {
        OFlag::O_PATH | OFlag::O_NOFOLLOW
    };
    let fd = open_under(root, &clean, flags)?;
    let stat = nix::sys::stat::fstat(&fd)?;
    let name = if path.ends_with("/.") || clean == "/" {
        ".".to_string()
    } else {
        clean.rsplit('/').next().unwrap_or(".").to_string()
    };
    Ok(Target {
        fd,
        stat,
        name,
        clean,
    })
}

/// `path` made absolute and lexically clean (`.`, `..` and repeated `/` removed; `..` at the
/// top stays at the top, as in the container).
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The `X-Docker-Container-Path-Stat` JSON (docker's `container.PathStat`).
#[derive(Debug, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode` bits.
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

pub fn path_stat(target: &Target) -> PathStat {
    let st = &target.stat;
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        nix::fcntl::readlinkat(&target.fd, "")
            .ok()
            .map(|t| link_target(&target.clean, &t.to_string_lossy()))
            .unwrap_or_default()
    } else {
        String::new()
    };
    let nanos = i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec);
    PathStat {
        name: target.name.clone(),
        size: st.st_size,
        mode: go_file_mode(st.st_mode),
        mtime: crate::logs::format_timestamp(nanos),
        link_target,
    }
}

/// A symlink's target as a container path: absolute as is, relative from the link's dir.
fn link_target(link: &str, target: &str) -> String {
    if target.starts_with('/') {
        return clean_path(target);
    }
    let dir = link.rsplit_once('/').map_or("", |(d, _)| d);
    clean_path(&format!("{dir}/{target}"))
}

/// st_mode as Go's `os.FileMode`: permission bits plus Go's type and special bits.
pub fn go_file_mode(mode: u32) -> u32 {
    const DIR: u32 = 1 << 31;
    const SYMLINK: u32 = 1 << 27;
    const DEVICE: u32 = 1 << 26;
    const NAMED_PIPE: u32 = 1 << 25;
    const SOCKET: u32 = 1 << 24;
    const SETUID: u32 = 1 << 23;
    const SETGID: u32 = 1 << 22;
    const CHAR_DEVICE: u32 = 1 << 21;
    const STICKY: u32 = 1 << 20;
    let mut out = mode & 0o777;
    out |= match mode & libc::S_IFMT {
        libc::S_IFDIR => DIR,
        libc::S_IFLNK => SYMLINK,
        libc::S_IFBLK => DEVICE,
        libc::S_IFCHR => DEVICE | CHAR_DEVICE,
        libc::S_IFIFO => NAMED_PIPE,
        libc::S_IFSOCK => SOCKET,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, SETUID),
        (libc::S_ISGID, SETGID),
        (libc::S_ISVTX, STICKY),
    ] {
        if mode & bit != 0 {
            out |= go;
        }
    }
    out
}

/// Standard base64 with padding (the header's encoding).
pub fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The kind of a stat's file.
pub(crate) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}

/// A single path component, or `None` for one that is not a plain name.
pub(crate) fn plain_name(name: &OsStr) -> Option<&OsStr> {
    let bytes = name.as_bytes();
    let ok = !bytes.is_empty() && bytes != b"." && bytes != b".." && !bytes.contains(&b'/');
    ok.then_some(name)
}

/// The normal components of an archive entry's path, relative to the extraction directory;
/// `None` when a `..` would climb above it.
pub fn entry_components(path: &Path) -> Option<Vec<std::ffi::OsString>> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::ParentDir => {
                out.pop()?;
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn file_modes_use_go_bits() {
        assert_eq!(go_file_mode(libc::S_IFDIR | 0o755), (1 << 31) | 0o755);
        assert_eq!(go_file_mode(libc::S_IFREG | 0o644), 0o644);
        assert_eq!(go_file_mode(libc::S_IFLNK | 0o777), (1 << 27) | 0o777);
        assert_eq!(
            go_file_mode(libc::S_IFREG | libc::S_ISUID | 0o755),
            (1 << 23) | 0o755
        );
    }

    #[test]
    fn paths_clean_and_entries_cannot_climb() {
        assert_eq!(clean_path("a/../../b/./c//"), "/b/c");
        assert_eq!(clean_path("/"), "/");
        assert_eq!(link_target("/bin/sh", "busybox"), "/bin/busybox");
        assert_eq!(link_target("/x", "/etc/../y"), "/y");
        assert!(entry_components(Path::new("../x")).is_none());
        assert!(entry_components(Path::new("a/../../x")).is_none());
        assert_eq!(
            entry_components(Path::new("/a/./b/../c")).unwrap(),
            ["a", "c"]
        );
    }
}
