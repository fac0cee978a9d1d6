//! The crate's one error type. Every variant names the object it is about (a file, a digest,
//! a reference, a layer entry, a registry) so a one-line message tells the user what was wrong.

use std::path::PathBuf;

use crate::digest::Digest;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- files and the data root
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Store { path: PathBuf, reason: String },

    // ---- digests, references and formats
    #[error("invalid digest {value:?}: {reason}")]
    InvalidDigest { value: String, reason: &'static str },
    #[error("invalid reference {value:?}: {reason}")]
    InvalidReference { value: String, reason: &'static str },
    #[error("invalid platform {value:?}: {reason}")]
    InvalidPlatform { value: String, reason: &'static str },
    #[error("{what}: content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("invalid {what}: {reason}")]
    InvalidDocument { what: String, reason: String },
    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },
    #[error("{reference}: no manifest for platform {platform}")]
    NoMatchingPlatform { reference: String, platform: String },

    // ---- images
    #[error("{0}: no such image")]
    ImageNotFound(String),
    #[error("{reference}: {reason}")]
    ImageConflict { reference: String, reason: String },

    // ---- layers
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    UnsafeLayerEntry {
        layer: String,
        entry: String,
        reason: String,
    },
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    #[error("layer {layer}: entry {entry:?}: {source}")]
    LayerEntryIo {
        layer: String,
        entry: String,
        #[source]
        source: std::io::Error,
    },

    // ---- registries
    #[error("{registry}: {message}")]
    Registry { registry: String, message: String },
    #[error("{registry}: authentication required: {message}")]
    Unauthorized { registry: String, message: String },
}

impl Error {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// Adds the path to an `io::Result`, so callers write `.at(&path)?`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::io(path, source))
    }
}

impl<T> IoContext<T> for rustix::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|errno| Error::io(path, errno.into()))
    }
}
