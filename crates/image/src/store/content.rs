//! Blobs addressed by digest. A blob is written to ingest/, verified against its digest and
//! size, fsynced, and only then renamed into blobs/: a crash or a full disk never leaves a
//! blob in blobs/ that claims to be what it is not. Partial ingests survive a crash so a pull
//! can resume them.
//!
//! Two kinds of ingest live in ingest/:
//! - `<alg>-<hex>`: a blob whose digest is known in advance (a pull). It is flock'd by its
//!   writer, so two processes never append to it at once, and it is kept when the writer is
//!   dropped uncommitted so a later pull resumes it.
//! - `tmp-<pid>-<n>`: content whose digest is only known at the end (import, load, small
//!   documents). Nothing can resume it; it is removed when its writer is dropped, and garbage
//!   collection removes what a crash left.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::layout::DataRoot;
use crate::manifest::MAX_DOCUMENT_SIZE;
use crate::store::lock::try_lock_exclusive;

pub struct ContentStore {
    root: DataRoot,
}

/// A blob that does not match its name, found by `ContentStore::verify_all`.
#[derive(Debug)]
pub struct CorruptBlob {
    pub path: PathBuf,
    pub problem: Error,
}

impl ContentStore {
    pub fn open(root: &DataRoot) -> Result<ContentStore> {
        for dir in [root.blobs_dir().join("sha256"), root.ingest_dir()] {
            std::fs::create_dir_all(&dir).at(&dir)?;
        }
        Ok(ContentStore { root: root.clone() })
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.root.blob(digest).is_file()
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.blob(digest)
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let path = self.path(digest);
        File::open(&path).at(&path)
    }

    /// The size of a stored blob.
    pub fn size(&self, digest: &Digest) -> Result<u64> {
        let path = self.path(digest);
        Ok(std::fs::metadata(&path).at(&path)?.len())
    }

    /// Reads a small blob (manifest, index, config: at most MAX_DOCUMENT_SIZE), verifying
    /// it against its digest.
    pub fn read_document(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path(digest);
        let mut data = Vec::new();
        self.open_blob(digest)?
            .take(MAX_DOCUMENT_SIZE as u64 + 1)
            .read_to_end(&mut data)
            .at(&path)?;
        if data.len() > MAX_DOCUMENT_SIZE {
            return Err(Error::Store {
                path,
                reason: format!("document larger than {MAX_DOCUMENT_SIZE} bytes"),
            });
        }
        digest.verify(&path.display().to_string(), &data)?;
        Ok(data)
    }

    /// Stores `data`, returning its sha256 digest. A no-op if it is already there.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let digest = Digest::sha256_of(data);
        self.put_verified(&digest, data)?;
        Ok(digest)
    }

    /// Stores `data` that must have `expected` digest.
    pub fn put_verified(&self, expected: &Digest, data: &[u8]) -> Result<()> {
        expected.verify(&format!("document {expected}"), data)?;
        if self.has(expected) {
            return Ok(());
        }
        let mut writer = self.ingest_unknown_with(expected.algorithm())?;
        writer.write_all(data).at(self.root.ingest_dir())?;
        writer.commit()?;
        Ok(())
    }

    /// Starts (or resumes) writing the blob `expected`. `BlobWriter::offset` says how many
    /// bytes of an earlier interrupted ingest are already there (and already hashed); the
    /// caller continues from there. Errors if another live process holds that ingest.
    pub fn writer(&self, expected: &Digest, expected_size: Option<u64>) -> Result<BlobWriter> {
        let path = self.root.ingest(expected);
        let file = open_rw(&path, false)?;
        if !lock_with_grace(&file, &path)? {
            return Err(Error::Store {
                path,
                reason: format!("blob {expected} is being written by another process"),
            });
        }
        let mut ingest = Ingest::new(file, path, expected.algorithm());
        ingest.rehash_existing(expected_size)?;
        Ok(BlobWriter {
            ingest,
            target: self.path(expected),
            expected: expected.clone(),
            expected_size,
        })
    }

    /// Starts writing sha256 content whose digest is not known yet (import, load).
    pub fn ingest_unknown(&self) -> Result<UnknownBlobWriter> {
        self.ingest_unknown_with(Algorithm::Sha256)
    }

    /// Like `ingest_unknown`, hashing with `algorithm`.
    pub fn ingest_unknown_with(&self, algorithm: Algorithm) -> Result<UnknownBlobWriter> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = self
            .root
            .ingest_dir()
            .join(format!("tmp-{}-{n}", std::process::id()));
        let file = open_rw(&path, true)?;
        Ok(UnknownBlobWriter {
            ingest: Ingest::new(file, path, algorithm),
            blobs: self.root.clone(),
            published: false,
        })
    }

    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
            _ => Ok(()),
        }
    }

    /// Every blob present. Files whose names are not digests are skipped.
    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut digests = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.blobs_dir().join(algorithm.name());
            for name in dir_names(&dir)? {
                if let Ok(d) = format!("{}:{name}", algorithm.name()).parse() {
                    digests.push(d);
                }
            }
        }
        digests.sort();
        Ok(digests)
    }

    /// Re-hashes every blob (`gorae image verify`): returns those whose content does not
    /// match their name, and stray files in blobs/ that are not named by a digest.
    pub fn verify_all(&self) -> Result<Vec<CorruptBlob>> {
        let mut corrupt = Vec::new();
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.blobs_dir().join(algorithm.name());
            for name in dir_names(&dir)? {
                let path = dir.join(&name);
                let problem = match format!("{}:{name}", algorithm.name()).parse::<Digest>() {
                    Ok(digest) => verify_file(&path, &digest).err(),
                    Err(_) => Some(Error::Store {
                        path: path.clone(),
                        reason: "not named by a digest".into(),
                    }),
                };
                if let Some(problem) = problem {
                    corrupt.push(CorruptBlob { path, problem });
                }
            }
        }
        Ok(corrupt)
    }
}

fn verify_file(path: &Path, digest: &Digest) -> Result<()> {
    let mut file = File::open(path).at(path)?;
    let mut hasher = digest.algorithm().hasher();
    hash_into(&mut file, &mut hasher, path)?;
    digest.check(&path.display().to_string(), hasher.finish())
}

/// Feeds everything `reader` has into `hasher`; returns the byte count.
fn hash_into(reader: &mut dyn Read, hasher: &mut Hasher, path: &Path) -> Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf).at(path)?;
        if n == 0 {
            return Ok(total);
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
}

/// Names in `dir` (none if it does not exist).
pub(crate) fn dir_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.at(dir)?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Takes the ingest's lock, retrying for up to ~100 ms: a process that forks (any thread of
/// it, to spawn anything) briefly holds a copy of every descriptor, lock included, until the
/// child execs, so a writer reopening its own ingest can find it "held" for an instant.
fn lock_with_grace(file: &File, path: &Path) -> Result<bool> {
    for _ in 0..10 {
        if try_lock_exclusive(file, path)? {
            return Ok(true);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    try_lock_exclusive(file, path)
}

fn open_rw(path: &Path, create_new: bool) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).mode(0o644);
    if create_new {
        options.create_new(true);
    } else {
        options.create(true).truncate(false);
    }
    options.open(path).at(path)
}

/// Renames `from` over `to` durably: the data is on disk before the name is, and the new name
/// is on disk when this returns.
pub(crate) fn publish(file: &File, from: &Path, to: &Path) -> Result<()> {
    rustix::fs::fdatasync(file).at(from)?;
    let dir = to.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).at(dir)?;
    std::fs::rename(from, to).at(to)?;
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// The file being written and the running hash of everything in it.
struct Ingest {
    file: File,
    path: PathBuf,
    hasher: Hasher,
    written: u64,
    /// Up to where writeback has been started (see `start_writeback`).
    flushing_from: u64,
}

/// How much dirty data an ingest accumulates before writeback of it is started.
const WRITEBACK_STEP: u64 = 8 << 20;

impl Ingest {
    fn new(file: File, path: PathBuf, algorithm: Algorithm) -> Ingest {
        Ingest {
            file,
            path,
            hasher: algorithm.hasher(),
            written: 0,
            flushing_from: 0,
        }
    }

    /// Starts (without waiting) writeback of what was written since the last call, so the
    /// fdatasync in commit finds little left to do: a big layer's commit otherwise waits
    /// 0.1-0.4 s for its whole blob. POSIX_FADV_DONTNEED starts writeback of dirty pages and
    /// drops clean ones, which nothing reads again (the unpacker has the stream).
    fn start_writeback(&mut self) {
        let len = self.written - self.flushing_from;
        if let Some(len) = std::num::NonZeroU64::new(len).filter(|l| l.get() >= WRITEBACK_STEP) {
            let advice = rustix::fs::Advice::DontNeed;
            // Only a hint: a failure costs speed, never data.
            let _ = rustix::fs::fadvise(&self.file, self.flushing_from, Some(len), advice);
            self.flushing_from = self.written;
        }
    }

    /// Hashes what an interrupted writer left, so writing continues where it stopped. More
    /// bytes than the blob can have means the partial is junk: start over.
    fn rehash_existing(&mut self, expected_size: Option<u64>) -> Result<()> {
        let len = self.file.metadata().at(&self.path)?.len();
        if expected_size.is_some_and(|size| len > size) {
            self.file.set_len(0).at(&self.path)?;
            return Ok(());
        }
        self.file.seek(SeekFrom::Start(0)).at(&self.path)?;
        self.written = hash_into(&mut (&self.file).take(len), &mut self.hasher, &self.path)?;
        self.file
            .seek(SeekFrom::Start(self.written))
            .at(&self.path)?;
        self.flushing_from = self.written;
        Ok(())
    }

    fn append(&mut self, buf: &[u8], limit: Option<u64>) -> std::io::Result<usize> {
        if limit.is_some_and(|limit| self.written + buf.len() as u64 > limit) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("more than the expected {} bytes", limit.unwrap_or(0)),
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn remove(self) -> Result<()> {
        drop(self.file);
        std::fs::remove_file(&self.path).at(&self.path)
    }
}

/// An ingest in progress. Implements `Write`; `commit` verifies and publishes it. Dropping
/// it without commit keeps the partial file for a later resume.
pub struct BlobWriter {
    ingest: Ingest,
    target: PathBuf,
    expected: Digest,
    expected_size: Option<u64>,
}

impl BlobWriter {
    /// Bytes already written (including those from a resumed ingest).
    pub fn offset(&self) -> u64 {
        self.ingest.written
    }

    pub fn digest(&self) -> &Digest {
        &self.expected
    }

    /// Checks digest and size, fsyncs, renames into blobs/. A mismatch removes the partial.
    pub fn commit(self) -> Result<()> {
        let what = format!("blob {}", self.expected);
        if let Some(size) = self.expected_size.filter(|s| *s != self.ingest.written) {
            let actual = self.ingest.written;
            self.ingest.remove()?;
            return Err(Error::SizeMismatch {
                what,
                expected: size,
                actual,
            });
        }
        let actual = self.ingest.hasher.clone().finish();
        if actual != self.expected {
            self.ingest.remove()?;
            return Err(Error::DigestMismatch {
                what,
                expected: self.expected,
                actual,
            });
        }
        if self.target.is_file() {
            return self.ingest.remove();
        }
        publish(&self.ingest.file, &self.ingest.path, &self.target)
    }

    /// Throws the partial data away (the digest turned out wrong upstream, say).
    pub fn discard(self) -> Result<()> {
        self.ingest.remove()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ingest.append(buf, self.expected_size)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Content whose digest is computed while it is written; `commit` stores it under that
/// digest. Dropped without commit, the temporary file is removed.
pub struct UnknownBlobWriter {
    ingest: Ingest,
    blobs: DataRoot,
    published: bool,
}

impl UnknownBlobWriter {
    pub fn written(&self) -> u64 {
        self.ingest.written
    }

    /// The digest of what was written so far.
    pub fn digest(&self) -> Digest {
        self.ingest.hasher.clone().finish()
    }

    /// The temporary file (to read the content back before deciding to commit it).
    pub fn path(&self) -> &Path {
        &self.ingest.path
    }

    /// Publishes the content under its digest; returns the digest and size.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let digest = self.digest();
        let target = self.blobs.blob(&digest);
        if !target.is_file() {
            publish(&self.ingest.file, &self.ingest.path, &target)?;
            self.published = true;
        }
        Ok((digest, self.ingest.written))
    }
}

impl Write for UnknownBlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.ingest.append(buf, None)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for UnknownBlobWriter {
    fn drop(&mut self) {
        if !self.published {
            // Best effort: garbage collection removes what is left if this fails.
            let _ = std::fs::remove_file(&self.ingest.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ContentStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(&DataRoot::new(dir.path())).unwrap();
        (dir, store)
    }

    #[test]
    fn put_and_read_back() {
        let (_dir, store) = store();
        let d = store.put(b"{}").unwrap();
        assert_eq!(store.read_document(&d).unwrap(), b"{}");
        assert_eq!(store.list().unwrap(), vec![d.clone()]);
        assert_eq!(store.put(b"{}").unwrap(), d);
        store.delete(&d).unwrap();
        assert!(!store.has(&d));
    }

    #[test]
    fn put_verified_refuses_a_lie() {
        let (dir, store) = store();
        let d = Digest::sha256_of(b"a");
        assert!(store.put_verified(&d, b"b").is_err());
        assert!(!store.has(&d));
        assert!(dir_names(&dir.path().join("ingest")).unwrap().is_empty());
    }

    #[test]
    fn read_document_detects_corruption() {
        let (_dir, store) = store();
        let d = store.put(b"[1]").unwrap();
        std::fs::write(store.path(&d), b"[2]").unwrap();
        assert!(matches!(
            store.read_document(&d),
            Err(Error::DigestMismatch { .. })
        ));
        assert_eq!(store.verify_all().unwrap().len(), 1);
    }

    #[test]
    fn writing_past_the_expected_size_fails() {
        let (_dir, store) = store();
        let d = Digest::sha256_of(b"abc");
        let mut w = store.writer(&d, Some(3)).unwrap();
        assert!(w.write_all(b"abcd").is_err());
    }

    #[test]
    fn unknown_writer_dropped_leaves_nothing() {
        let (dir, store) = store();
        let mut w = store.ingest_unknown().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(dir_names(&dir.path().join("ingest")).unwrap().is_empty());
        let mut w = store.ingest_unknown().unwrap();
        w.write_all(b"whole").unwrap();
        let (d, size) = w.commit().unwrap();
        assert_eq!((d, size), (Digest::sha256_of(b"whole"), 5));
    }
}
