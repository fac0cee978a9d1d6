//! The shared state behind `Storage`: the root and the lock that makes it ours, where each
//! kind of file lives, the crash-safe ways files appear and disappear, the usage counters,
//! and what garbage collection must know about running pushes (recent uses, the journal of
//! references committed while it marks, and the gate manifest pushes hold).

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use gorae_image::Digest;
use rustix::fs::FlockOperation;

use super::{blobs, manifests, repo_dir, uploads, StorageOptions, Usage};
use crate::error::{Error, IoContext, Result};

pub(crate) struct Inner {
    root: PathBuf,
    pub(crate) options: StorageOptions,
    /// Held (flock'd) for as long as the storage is open.
    _lock: File,
    blob_count: AtomicU64,
    blob_bytes: AtomicU64,
    pub(crate) uses: Mutex<Uses>,
    /// put_manifest holds it shared from checking its references to writing its links; GC
    /// takes it exclusive once, so that every push that checked before that moment has
    /// also recorded its references in the journal by then.
    pub(crate) gc_gate: RwLock<()>,
    /// One collection at a time (the journal is single).
    pub(crate) gc_running: Mutex<()>,
    pub(crate) sessions: uploads::Sessions,
    pub(crate) manifest_cache: Mutex<manifests::Cache>,
}

/// Which blobs were used lately: GC keeps unreferenced blobs used within its grace period,
/// and everything used while it runs.
pub(crate) struct Uses {
    pub(crate) recent: HashMap<Digest, SystemTime>,
    /// `recent` is pruned of uses older than the grace period when it reaches this size
    /// (GC prunes it too, but GC may be off).
    prune_at: usize,
    /// Some while a GC runs: every digest used or referenced since it started.
    pub(crate) journal: Option<HashSet<Digest>>,
}

impl Default for Uses {
    fn default() -> Self {
        Uses {
            recent: HashMap::new(),
            prune_at: MIN_PRUNE_AT,
            journal: None,
        }
    }
}

impl Uses {
    /// Whether GC must keep `digest` whatever its file's mtime says.
    pub(crate) fn in_use(&self, digest: &Digest, cutoff: SystemTime) -> bool {
        self.journal.as_ref().is_some_and(|j| j.contains(digest))
            || self.recent.get(digest).is_some_and(|t| *t >= cutoff)
    }
}

const MIN_PRUNE_AT: usize = 4096;

/// Locks a mutex; a panic elsewhere while it was held leaves data that is still consistent
/// (every critical section here is a few map operations), so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Inner {
    pub(crate) fn open(root: &Path, options: StorageOptions) -> Result<Inner> {
        for dir in ["blobs", "uploads", "repositories", "tmp"] {
            std::fs::create_dir_all(root.join(dir)).at(root.join(dir))?;
        }
        let lock_path = root.join("lock");
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .at(&lock_path)?;
        match rustix::fs::flock(&lock_file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => {
                return Err(Error::Other {
                    what: format!("registry storage {}", root.display()),
                    reason: "is in use by another process (its lock file is held)".into(),
                })
            }
            Err(e) => return Err(std::io::Error::from(e)).at(&lock_path),
        }
        let inner = Inner {
            root: root.to_path_buf(),
            options,
            _lock: lock_file,
            blob_count: AtomicU64::new(0),
            blob_bytes: AtomicU64::new(0),
            uses: Mutex::default(),
            gc_gate: RwLock::new(()),
            gc_running: Mutex::new(()),
            sessions: uploads::Sessions::default(),
            manifest_cache: Mutex::default(),
        };
        // Temporaries of a previous process that died mid-write: nobody else uses them, the
        // lock says so.
        inner.clear_dir(&inner.tmp_dir())?;
        blobs::for_each_stored(&inner, |_, size| inner.count_blob_added(size))?;
        Ok(inner)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn usage(&self) -> Usage {
        Usage {
            blobs: self.blob_count.load(Ordering::Relaxed),
            bytes: self.blob_bytes.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_blob_added(&self, size: u64) {
        self.blob_count.fetch_add(1, Ordering::Relaxed);
        self.blob_bytes.fetch_add(size, Ordering::Relaxed);
    }

    pub(crate) fn count_blob_removed(&self, size: u64) {
        // Saturating: a blob written by hand into the root between open and GC was never
        // counted.
        let _ = self
            .blob_count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        let _ = self
            .blob_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(size))
            });
    }

    // ---- uses, for GC

    /// Records that these blobs are being used (looked up, mounted, written, referenced).
    pub(crate) fn touch<'a>(&self, digests: impl IntoIterator<Item = &'a Digest>) {
        let now = SystemTime::now();
        let mut uses = lock(&self.uses);
        for digest in digests {
            uses.recent.insert(digest.clone(), now);
            if let Some(journal) = &mut uses.journal {
                journal.insert(digest.clone());
            }
        }
        if uses.recent.len() >= uses.prune_at {
            let cutoff = now.checked_sub(self.options.gc_grace).unwrap_or(UNIX_EPOCH);
            uses.recent.retain(|_, used| *used >= cutoff);
            // Doubling keeps the pruning's cost per touch constant.
            uses.prune_at = (2 * uses.recent.len()).max(MIN_PRUNE_AT);
        }
    }

    // ---- where things are

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh name for a temporary file or directory (never visible to readers).
    pub(crate) fn tmp_path(&self) -> PathBuf {
        self.tmp_dir()
            .join(uuid::Uuid::new_v4().simple().to_string())
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.blobs_dir()
            .join(digest.algorithm().name())
            .join(&hex[..2])
            .join(hex)
    }

    pub(crate) fn repositories_dir(&self) -> PathBuf {
        self.root.join("repositories")
    }

    pub(crate) fn repo_dir(&self, repo: &str) -> PathBuf {
        repo_dir(&self.root, repo)
    }

    pub(crate) fn layer_link(&self, repo: &str, digest: &Digest) -> PathBuf {
        digest_path(&self.repo_dir(repo).join("_layers"), digest)
    }

    pub(crate) fn revisions_dir(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join("revisions")
    }

    pub(crate) fn revision_link(&self, repo: &str, digest: &Digest) -> PathBuf {
        digest_path(&self.revisions_dir(repo), digest)
    }

    pub(crate) fn tags_dir(&self, repo: &str) -> PathBuf {
        self.repo_dir(repo).join("_manifests").join("tags")
    }

    pub(crate) fn referrers_dir(&self, repo: &str, subject: &Digest) -> PathBuf {
        digest_path(&self.repo_dir(repo).join("_referrers"), subject)
    }

    pub(crate) fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    // ---- crash-safe file operations

    /// Creates `dir` and any missing parents, fsyncing each parent a new entry appeared in,
    /// so a link made inside it survives a crash.
    pub(crate) fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = dir.parent() {
            self.ensure_dir(parent)?;
        }
        match std::fs::create_dir(dir) {
            Ok(()) => sync_parent(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e).at(dir),
        }
    }

    /// Makes `target` hold exactly `bytes`, atomically: readers see the old file or the
    /// new one, and after a crash it is one of them, complete.
    pub(crate) fn write_atomic(&self, target: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(parent) = target.parent() {
            self.ensure_dir(parent)?;
        }
        let tmp = self.write_tmp(bytes)?;
        std::fs::rename(&tmp, target).at(target).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        sync_parent(target)
    }

    /// Writes `bytes` to a new fsynced temporary file and returns its path.
    pub(crate) fn write_tmp(&self, bytes: &[u8]) -> Result<PathBuf> {
        let tmp = self.tmp_path();
        let written = (|| {
            let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).at(&tmp);
        }
        Ok(tmp)
    }

    /// Creates the empty link file `path` (durably). False if it was already there.
    pub(crate) fn create_link(&self, path: &Path) -> Result<bool> {
        if let Some(parent) = path.parent() {
            self.ensure_dir(parent)?;
        }
        match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(_) => sync_parent(path).map(|()| true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e).at(path),
        }
    }

    /// Removes a file durably. False if it did not exist.
    pub(crate) fn remove_file(&self, path: &Path) -> Result<bool> {
        match std::fs::remove_file(path) {
            Ok(()) => sync_parent(path).map(|()| true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).at(path),
        }
    }

    /// Removes a directory tree by first renaming it into tmp/ (instant, atomic), so nobody
    /// sees it half removed.
    pub(crate) fn remove_tree(&self, dir: &Path) -> Result<()> {
        let doomed = self.tmp_path();
        match std::fs::rename(dir, &doomed) {
            Ok(()) => std::fs::remove_dir_all(&doomed).at(&doomed),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).at(dir),
        }
    }

    fn clear_dir(&self, dir: &Path) -> Result<()> {
        for entry in std::fs::read_dir(dir).at(dir)? {
            let path = entry.at(dir)?.path();
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.at(&path)?;
        }
        Ok(())
    }
}

/// `<dir>/<alg>/<hex>`: how links are named.
fn digest_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(digest.algorithm().name()).join(digest.hex())
}

/// A digest from the two parts of a link's path; None for anything else (a stray file).
pub(crate) fn digest_from_parts(algorithm: &str, hex: &str) -> Option<Digest> {
    format!("{algorithm}:{hex}").parse().ok()
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Reads a small file the registry wrote (a tag, a revision's media type, a session's info),
/// refusing to load more than `cap` bytes of it. None if it does not exist.
pub(crate) fn read_small(path: &Path, cap: usize) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(path),
    };
    let mut bytes = Vec::new();
    file.take(cap as u64 + 1).read_to_end(&mut bytes).at(path)?;
    if bytes.len() > cap {
        // An io error, so that a client is told the file's last components, not its path.
        let reason = format!("larger than {cap} bytes: not a file the registry wrote");
        return Err(std::io::Error::new(ErrorKind::InvalidData, reason)).at(path);
    }
    Ok(Some(bytes))
}

/// The names in a directory that are valid UTF-8; empty if it does not exist.
pub(crate) fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at(dir),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Ok(name) = entry.at(dir)?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The digests of the links under `dir` (`<dir>/<alg>/<hex>`).
pub(crate) fn list_links(dir: &Path) -> Result<Vec<Digest>> {
    let mut digests = Vec::new();
    for algorithm in list_dir(dir)? {
        for hex in list_dir(&dir.join(&algorithm))? {
            digests.extend(digest_from_parts(&algorithm, &hex));
        }
    }
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{push_blob, push_image};
    use super::super::{Storage, StorageOptions, Usage};

    #[test]
    fn storage_and_writers_can_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<Storage>();
        send::<super::super::UploadWriter>();
    }

    #[test]
    fn recent_uses_are_pruned_without_gc() {
        let (_dir, s) = super::super::test_support::open(StorageOptions {
            gc_grace: std::time::Duration::ZERO,
            ..StorageOptions::default()
        });
        let digests: Vec<_> = (0..3 * super::MIN_PRUNE_AT)
            .map(|i| gorae_image::Digest::sha256_of(&i.to_le_bytes()))
            .collect();
        for digest in &digests {
            s.inner.touch([digest]);
        }
        assert!(super::lock(&s.inner.uses).recent.len() < digests.len());
    }

    #[test]
    fn a_root_is_used_by_one_storage_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        let Err(e) = Storage::open(dir.path(), StorageOptions::default()) else {
            panic!("second open succeeded");
        };
        let message = e.to_string();
        assert!(message.contains("in use by another process"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        drop(first);
        Storage::open(dir.path(), StorageOptions::default()).unwrap();
    }

    #[test]
    fn usage_counts_distinct_blobs_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        assert_eq!(s.usage(), Usage::default());
        push_blob(&s, "a", b"12345");
        push_blob(&s, "b", b"12345");
        push_blob(&s, "b", b"123");
        assert_eq!(s.usage(), Usage { blobs: 2, bytes: 8 });
        let manifest = push_image(&s, "b", "t", &[b"123"]);
        let manifest_size = s.get_manifest("b", "t").unwrap().unwrap().bytes.len() as u64;
        let config_size = s
            .stat_blob("b", &config_of(&s, &manifest))
            .unwrap()
            .unwrap();
        let expected = Usage {
            blobs: 4,
            bytes: 8 + config_size + manifest_size,
        };
        assert_eq!(s.usage(), expected);
        drop(s);
        // Leftover temporaries of a dead process are cleared, and not counted.
        std::fs::write(dir.path().join("tmp").join("partial"), b"half").unwrap();
        let s = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        assert_eq!(s.usage(), expected);
        assert!(!dir.path().join("tmp").join("partial").exists());
    }

    fn config_of(s: &Storage, manifest: &gorae_image::Digest) -> gorae_image::Digest {
        let m = s.get_manifest("b", &manifest.to_string()).unwrap().unwrap();
        match gorae_image::Manifest::parse(&m.bytes, None).unwrap().0 {
            gorae_image::Manifest::Image(image) => image.config.digest,
            gorae_image::Manifest::Index(_) => panic!("not an image"),
        }
    }
}
