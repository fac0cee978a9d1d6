//! flock-based locks on files of the data root: held while the value lives.
//!
//! flock locks belong to the open file description, so two `StoreLock`s in one process
//! exclude each other just as two processes do, and the kernel drops a lock when its holder
//! dies (a `kill -9` never leaves the store locked).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rustix::fs::FlockOperation;

use crate::error::{Error, IoContext, Result};

pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    /// Blocks until the shared lock on `path` (created if missing) is ours.
    pub fn shared(path: &Path) -> Result<StoreLock> {
        Self::take(path, FlockOperation::LockShared)
    }

    /// Blocks until the exclusive lock on `path` (created if missing) is ours.
    pub fn exclusive(path: &Path) -> Result<StoreLock> {
        Self::take(path, FlockOperation::LockExclusive)
    }

    /// The exclusive lock on `path` if nobody holds the lock now; `None` otherwise.
    pub fn try_exclusive(path: &Path) -> Result<Option<StoreLock>> {
        let file = open_lock_file(path)?;
        Ok(try_lock_exclusive(&file, path)?.then_some(StoreLock { _file: file }))
    }

    fn take(path: &Path, operation: FlockOperation) -> Result<StoreLock> {
        let file = open_lock_file(path)?;
        rustix::fs::flock(&file, operation).at(path)?;
        Ok(StoreLock { _file: file })
    }
}

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).at(parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .at(path)
}

/// Takes the exclusive lock on an already open file without waiting: `Ok(false)` if some
/// other open file description holds it.
pub(crate) fn try_lock_exclusive(file: &File, path: &Path) -> Result<bool> {
    match rustix::fs::flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(Error::io(path, e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_shared_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/lock");
        let a = StoreLock::shared(&path).unwrap();
        let b = StoreLock::shared(&path).unwrap();
        let probe = File::open(&path).unwrap();
        assert!(!try_lock_exclusive(&probe, &path).unwrap());
        drop((a, b));
        assert!(try_lock_exclusive(&probe, &path).unwrap());
    }
}
