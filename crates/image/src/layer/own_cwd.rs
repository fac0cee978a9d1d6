//! Runs a closure on a short-lived thread with a working directory of its own, so that
//! relative paths (overlay's lowerdir list, say) can be resolved from any directory without
//! changing the process's cwd under its other threads.

use std::io;
use std::path::Path;

use rustix::thread::UnshareFlags;

/// Calls `f` on a new thread whose cwd is `dir`; the caller's cwd is untouched.
pub(crate) fn run_in<T: Send>(
    dir: &Path,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: CLONE_FS gives this thread its own root, cwd and umask and nothing
                // else. It leaves the fd table shared (no CLONE_FILES), so every fd stays
                // valid on every thread, which is what unshare_unsafe asks callers to ensure.
                unsafe { rustix::thread::unshare_unsafe(UnshareFlags::FS) }?;
                rustix::process::chdir(dir)?;
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("thread panicked")))
    })
}
