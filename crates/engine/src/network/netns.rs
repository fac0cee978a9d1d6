//! Network namespaces kept alive by a bind mount of their nsfs file onto a plain file (what
//! `ip netns add` does), so the engine can wire a container's interfaces before the runtime
//! joins the namespace by path, and several containers can share one.
//!
//! unshare(2) and setns(2) with CLONE_NEWNET change only the calling thread, so every
//! operation runs on a short-lived dedicated thread: the daemon's worker threads never
//! change namespace. A socket keeps the namespace it was created in, so a socket opened by
//! such a thread may then be used from anywhere.
//!
//! The directory holding the files is made a mount of its own with shared propagation, as
//! `ip netns` does for /run/netns: a mount namespace copied from ours later (a container's)
//! then gets our umount too and does not pin a removed namespace.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};

/// Serialises the self-bind of namespace directories within this process.
static DIR_LOCK: Mutex<()> = Mutex::new(());

fn err(op: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Internal(format!("netns {op} {}: {e}", path.display()))
}

/// Makes `dir` (created if missing) a shared mount bound on itself, unless it is already a
/// mount point. Idempotent.
pub fn prepare_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let dir = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let _guard = DIR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if !is_mount_point(&dir)? {
        mount(
            Some(&dir),
            &dir,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err("bind directory", &dir, e))?;
    }
    mount(
        None::<&str>,
        &dir,
        None::<&str>,
        MsFlags::MS_SHARED,
        None::<&str>,
    )
    .map_err(|e| err("make shared", &dir, e))
}

/// Undoes `prepare_dir`'s self-bind (for tests and teardown); the files must be removed
/// first.
pub fn release_dir(dir: &Path) -> Result<()> {
    let dir = match dir.canonicalize() {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let _guard = DIR_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if is_mount_point(&dir)? {
        umount2(&dir, MntFlags::MNT_DETACH).map_err(|e| err("unmount directory", &dir, e))?;
    }
    Ok(())
}

/// Creates a new network namespace and keeps it at `path` (a new file; its directory should
/// have been through `prepare_dir`). On failure nothing is left at `path`.
pub fn create(path: &Path) -> Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let target = path.to_path_buf();
    let result = on_thread(move || {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| err("unshare", &target, e))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| err("bind", &target, e))
    })
    .and_then(|r| r);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Unmounts and deletes the namespace file; an absent file is not an error. The namespace
/// itself goes when its last user (process, socket, mount) does.
pub fn remove(path: &Path) -> Result<()> {
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(err("unmount", path, e)),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Runs `f` on a new thread that has entered the namespace at `path`, and returns its result.
/// Processes spawned by `f` start in that namespace; sockets it opens stay in it.
pub fn run_in<T, F>(path: &Path, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let ns = File::open(path).map_err(|e| Error::io(path, e))?;
    let target = path.to_path_buf();
    on_thread(move || {
        setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| err("enter", &target, e))?;
        drop(ns);
        Ok(f())
    })
    .and_then(|r| r)
}

fn on_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    std::thread::Builder::new()
        .name("gorae-netns".into())
        .spawn(f)
        .map_err(|e| Error::Internal(format!("netns: cannot start a thread: {e}")))?
        .join()
        .map_err(|_| Error::Internal("netns: the namespace thread panicked".into()))
}

/// Whether `path` is a mount point in this process's mount namespace.
pub fn is_mount_point(path: &Path) -> Result<bool> {
    Ok(mount_points()?.iter().any(|m| m == path))
}

fn mount_points() -> Result<Vec<PathBuf>> {
    let info = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(info).map_err(|e| Error::io(info, e))?;
    Ok(text
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect())
}

/// mountinfo writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo_paths() {
        assert_eq!(unescape_mountinfo(r"/run/a\040b"), "/run/a b");
        assert_eq!(unescape_mountinfo(r"/x\134y"), r"/x\y");
        assert_eq!(unescape_mountinfo(r"/plain\"), r"/plain\");
    }
}
