//! The registry's storage: content-addressed blobs shared by all repositories, and per
//! repository the links, manifests, tags and referrers that say what each one holds.
//!
//! On-disk layout under the root (every file appears by atomic rename after fsync):
//!
//! ```text
//! lock                                   flock'd by the one registry process using the root
//! blobs/sha256/<hh>/<hex>                blob content (layers, configs and manifests alike)
//! uploads/<uuid>/data                    an upload session's bytes so far
//! uploads/<uuid>/info                    {"repo": .., "started": ..} (the session's owner)
//! tmp/                                   files being written, before their rename (emptied at open)
//! repositories/<name>/_layers/<alg>/<hex>             the repo may serve this blob
//! repositories/<name>/_manifests/revisions/<alg>/<hex> a manifest; contents: its media type
//! repositories/<name>/_manifests/tags/<tag>          contents: the manifest digest
//! repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>   a manifest whose subject
//!                                                    is <subject>; contents: its descriptor
//! ```
//!
//! Ordering makes crashes harmless: a blob is in `blobs/` before any link to it, a manifest's
//! blob before its revision link, its revision before its tag. A crash leaves at most an
//! unreferenced blob (garbage collection takes it) or a stale upload (expiry takes it), never
//! a reference to something missing.
//!
//! Storage is synchronous (plain file system calls); the API layer calls the heavy parts
//! (fsync, hashing a whole upload, GC) on blocking threads.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gorae_image::{Descriptor, Digest};

use crate::error::Result;

mod blobs;
mod gc;
mod manifests;
#[cfg(test)]
mod test_support;
mod uploads;

pub use gc::GcReport;

#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Upload sessions untouched for this long are removed by `expire_uploads`.
    pub upload_expiry: Duration,
    /// GC keeps blobs written, mounted or looked up more recently than this (an in-flight
    /// push may be about to reference them).
    pub gc_grace: Duration,
    /// Manifests larger than this are refused (413 + MANIFEST_INVALID? see put_manifest).
    pub max_manifest_size: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            upload_expiry: Duration::from_secs(24 * 3600),
            gc_grace: Duration::from_secs(3600),
            max_manifest_size: gorae_image::manifest::MAX_DOCUMENT_SIZE,
        }
    }
}

/// The state of an upload session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub id: String,
    /// Bytes received so far (the next chunk must start here).
    pub offset: u64,
}

/// A manifest as stored.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// What a manifest PUT did.
#[derive(Debug, Clone)]
pub struct PutManifest {
    pub digest: Digest,
    /// The manifest's `subject`, for the `OCI-Subject` response header.
    pub subject: Option<Digest>,
}

/// Storage use, for /metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub blobs: u64,
    pub bytes: u64,
}

/// An upload session being appended to. Dropping it without `close` leaves the session at
/// the offset of the last successful write (the data is already in the file).
pub struct UploadWriter {
    pub(crate) inner: uploads::WriterState,
}

impl UploadWriter {
    /// Appends `data` (hashing it as it goes).
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.inner.write(data)
    }

    /// The offset after the bytes written so far.
    pub fn offset(&self) -> u64 {
        self.inner.offset()
    }

    /// Ends this chunk: the session remembers its hash state for the next one.
    pub fn close(self) -> Result<UploadInfo> {
        self.inner.close()
    }
}

/// The storage of one registry. One process uses a root at a time (a lock file says so).
pub struct Storage {
    pub(crate) inner: Inner,
}

pub(crate) use inner::Inner;
mod inner;

impl Storage {
    /// Opens (creating if needed) the storage at `root`; fails if another process has it.
    pub fn open(root: &Path, options: StorageOptions) -> Result<Arc<Storage>> {
        Ok(Arc::new(Storage {
            inner: Inner::open(root, options)?,
        }))
    }

    pub fn root(&self) -> &Path {
        self.inner.root()
    }

    // ---- blobs (blobs.rs)

    /// The size of blob `digest` if repository `repo` holds it. Counts as a use for GC.
    pub fn stat_blob(&self, repo: &str, digest: &Digest) -> Result<Option<u64>> {
        blobs::stat(&self.inner, repo, digest)
    }

    /// The blob's file and size if repository `repo` holds it.
    pub fn open_blob(&self, repo: &str, digest: &Digest) -> Result<Option<(File, u64)>> {
        blobs::open(&self.inner, repo, digest)
    }

    /// Links blob `digest` into `repo` if it is stored and (with `from`) that repository
    /// holds it, or (without `from`) any repository does. Returns its size, or None when
    /// it cannot be mounted (the client then uploads it).
    pub fn mount_blob(
        &self,
        repo: &str,
        from: Option<&str>,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        blobs::mount(&self.inner, repo, from, digest)
    }

    /// Removes blob `digest` from `repo` (the content goes when GC finds nothing uses it).
    /// False if the repo did not hold it.
    pub fn delete_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        blobs::unlink(&self.inner, repo, digest)
    }

    // ---- uploads (uploads.rs)

    pub fn start_upload(&self, repo: &str) -> Result<UploadInfo> {
        uploads::start(&self.inner, repo)
    }

    /// BLOB_UPLOAD_UNKNOWN if there is no such session for `repo`.
    pub fn upload_status(&self, repo: &str, id: &str) -> Result<UploadInfo> {
        uploads::status(&self.inner, repo, id)
    }

    /// Opens a session to append to. `start` (from Content-Range) must equal the offset, or
    /// the error is ErrorCode::RangeInvalid (status 416). A session being written by another request
    /// is refused (BLOB_UPLOAD_INVALID).
    pub fn upload_writer(&self, repo: &str, id: &str, start: Option<u64>) -> Result<UploadWriter> {
        uploads::writer(&self.inner, repo, id, start)
    }

    /// Completes a session: the content must hash to `digest` (DIGEST_INVALID otherwise; the
    /// session is then removed). The blob becomes visible in `repo` only after it is fsynced
    /// and renamed into place. Returns its size.
    pub fn finish_upload(&self, repo: &str, id: &str, digest: &Digest) -> Result<u64> {
        uploads::finish(&self.inner, repo, id, digest)
    }

    pub fn cancel_upload(&self, repo: &str, id: &str) -> Result<()> {
        uploads::cancel(&self.inner, repo, id)
    }

    /// Removes sessions older than the expiry. Returns how many.
    pub fn expire_uploads(&self) -> Result<usize> {
        uploads::expire(&self.inner)
    }

    // ---- manifests, tags, referrers (manifests.rs)

    /// Stores a manifest under `reference` (a tag, or the digest it must hash to). It must
    /// parse as a manifest or index of a supported media type, and everything it references
    /// (config, layers, child manifests; not the subject) must be in `repo`
    /// (MANIFEST_BLOB_UNKNOWN / MANIFEST_UNKNOWN otherwise).
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<PutManifest> {
        manifests::put(&self.inner, repo, reference, content_type, bytes, true)
    }

    /// As put_manifest, without requiring the referenced blobs: the pull-through cache stores
    /// manifests before their blobs are fetched.
    pub fn cache_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<&str>,
        bytes: &[u8],
    ) -> Result<PutManifest> {
        manifests::put(&self.inner, repo, reference, content_type, bytes, false)
    }

    /// A manifest by tag or digest.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> Result<Option<StoredManifest>> {
        manifests::get(&self.inner, repo, reference)
    }

    /// By digest: removes the manifest and every tag pointing at it. By tag: removes the tag.
    /// MANIFEST_UNKNOWN if there was nothing to remove.
    pub fn delete_manifest(&self, repo: &str, reference: &str) -> Result<()> {
        manifests::delete(&self.inner, repo, reference)
    }

    /// The repository's tags, sorted; None if the repository does not exist.
    pub fn tags(&self, repo: &str) -> Result<Option<Vec<String>>> {
        manifests::tags(&self.inner, repo)
    }

    /// Every repository's name, sorted.
    pub fn repositories(&self) -> Result<Vec<String>> {
        manifests::repositories(&self.inner)
    }

    /// Descriptors of the manifests in `repo` whose subject is `subject`, with their
    /// artifactType and annotations, optionally only those of `artifact_type`.
    pub fn referrers(
        &self,
        repo: &str,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        manifests::referrers(&self.inner, repo, subject, artifact_type)
    }

    // ---- maintenance (gc.rs)

    /// Online garbage collection: safe while pushes and pulls go on.
    pub fn collect_garbage(&self) -> Result<GcReport> {
        gc::collect(&self.inner)
    }

    pub fn usage(&self) -> Usage {
        self.inner.usage()
    }
}

/// A path under the root for a repository name that `names::valid_repository` accepted.
pub(crate) fn repo_dir(root: &Path, repo: &str) -> PathBuf {
    root.join("repositories").join(repo)
}
