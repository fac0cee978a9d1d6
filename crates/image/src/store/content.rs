//! Blobs addressed by digest. A blob is written to ingest/, verified against its digest and
//! size, fsynced, and only then renamed into blobs/: a crash or a full disk never leaves a
//! blob in blobs/ that claims to be what it is not. Partial ingests survive a crash so a pull
//! can resume them.

use std::fs::File;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::DataRoot;

pub struct ContentStore {
    root: DataRoot,
}

impl ContentStore {
    pub fn open(root: &DataRoot) -> Result<ContentStore> {
        let _ = root;
        todo!("store helper")
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.root.blob(digest).is_file()
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.blob(digest)
    }

    /// Opens a stored blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File> {
        let _ = digest;
        todo!("store helper")
    }

    /// Reads a small blob (manifest, index, config: at most MAX_DOCUMENT_SIZE), verifying
    /// it against its digest.
    pub fn read_document(&self, digest: &Digest) -> Result<Vec<u8>> {
        let _ = digest;
        todo!("store helper")
    }

    /// Stores `data`, returning its sha256 digest. A no-op if it is already there.
    pub fn put(&self, data: &[u8]) -> Result<Digest> {
        let _ = data;
        todo!("store helper")
    }

    /// Stores `data` that must have `expected` digest.
    pub fn put_verified(&self, expected: &Digest, data: &[u8]) -> Result<()> {
        let _ = (expected, data);
        todo!("store helper")
    }

    /// Starts (or resumes) writing the blob `expected`. `BlobWriter::offset` says how many
    /// bytes of an earlier interrupted ingest are already there (and already hashed); the
    /// caller continues from there. Errors if another live process holds that ingest.
    pub fn writer(&self, expected: &Digest, expected_size: Option<u64>) -> Result<BlobWriter> {
        let _ = (expected, expected_size);
        todo!("store helper")
    }

    pub fn delete(&self, digest: &Digest) -> Result<()> {
        let _ = digest;
        todo!("store helper")
    }

    pub fn list(&self) -> Result<Vec<Digest>> {
        todo!("store helper")
    }
}

/// An ingest in progress. Implements `Write`; `commit` verifies and publishes it. Dropping
/// it without commit keeps the partial file for a later resume.
pub struct BlobWriter {
    _private: (),
}

impl BlobWriter {
    /// Bytes already written (including those from a resumed ingest).
    pub fn offset(&self) -> u64 {
        todo!("store helper")
    }

    /// Checks digest and size, fsyncs, renames into blobs/.
    pub fn commit(self) -> Result<()> {
        todo!("store helper")
    }

    /// Throws the partial data away (the digest turned out wrong upstream, say).
    pub fn discard(self) -> Result<()> {
        todo!("store helper")
    }
}

impl std::io::Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = buf;
        todo!("store helper")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        todo!("store helper")
    }
}
