//! Where everything lives under the data root (default /var/lib/gorae). ARCHITECTURE.md
//! documents the same layout; keep the two in step.
//!
//! ```text
//! lock                         flock: shared by every writer, exclusive for garbage collection
//! blobs/sha256/<hex>           verified blobs: compressed layers, manifests, indexes, configs
//! ingest/<alg>-<hex>           partial blobs being downloaded (resumable; flock'd by the writer;
//!                              garbage collection keeps them for a day)
//! ingest/tmp-<pid>-<n>         content whose digest is computed as it is written (import, load)
//! layers/sha256/<hex>/         one unpacked layer per diff ID (the tree is an overlay lowerdir)
//! layers/tmp/<pid>-<n>/        layers being unpacked; renamed into place once verified
//! images.json                  reference -> image record, replaced atomically; an unnamed
//!                              (dangling) image is keyed by its ID
//! images.lock                  flock serialising read-modify-write of images.json
//! snapshots/<id>/              a container's writable layer: upper/, work/, layers.json
//! snapshots/.new-*, .rm-*, .mnt-*   temporaries: being created, being removed, deep-mount links
//! auth.json                    credentials saved by `gorae login` (mode 0600)
//! ```

use std::path::{Path, PathBuf};

use crate::digest::Digest;

#[derive(Debug, Clone)]
pub struct DataRoot {
    path: PathBuf,
}

impl DataRoot {
    pub const DEFAULT: &'static str = "/var/lib/gorae";

    pub fn new(path: impl Into<PathBuf>) -> DataRoot {
        DataRoot { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn lock_file(&self) -> PathBuf {
        self.path.join("lock")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.path.join("blobs")
    }

    pub fn blob(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir()
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    pub fn ingest_dir(&self) -> PathBuf {
        self.path.join("ingest")
    }

    pub fn ingest(&self, digest: &Digest) -> PathBuf {
        self.ingest_dir()
            .join(format!("{}-{}", digest.algorithm().name(), digest.hex()))
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.path.join("layers")
    }

    pub fn layer(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir()
            .join(diff_id.algorithm().name())
            .join(diff_id.hex())
    }

    pub fn layers_tmp_dir(&self) -> PathBuf {
        self.layers_dir().join("tmp")
    }

    pub fn images_file(&self) -> PathBuf {
        self.path.join("images.json")
    }

    pub fn images_lock(&self) -> PathBuf {
        self.path.join("images.lock")
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.path.join("snapshots")
    }

    pub fn auth_file(&self) -> PathBuf {
        self.path.join("auth.json")
    }
}
