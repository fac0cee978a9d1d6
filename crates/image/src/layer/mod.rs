//! Unpacked layers: each layer's tar is unpacked once into layers/sha256/<diff id>/ and shared
//! by every image that has it. Extraction never writes outside the layer directory, whatever
//! the tarball says; OCI whiteouts become overlay whiteouts.

pub mod snapshot;

use std::io::Read;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::DataRoot;
use crate::media::Compression;

pub struct LayerStore {
    root: DataRoot,
}

/// What unpacking a layer found.
#[derive(Debug, Clone)]
pub struct UnpackedLayer {
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// Bytes of the uncompressed tar.
    pub tar_size: u64,
}

impl LayerStore {
    pub fn open(root: &DataRoot) -> Result<LayerStore> {
        let _ = root;
        todo!("layer helper")
    }

    pub fn has(&self, diff_id: &Digest) -> bool {
        self.dir(diff_id).is_dir()
    }

    /// The unpacked tree of a layer: what overlayfs gets as a lowerdir.
    pub fn dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.layer(diff_id)
    }

    /// Unpacks a layer blob read from `blob` (compressed as `compression`) into a fresh
    /// directory under layers/tmp/, hashing the uncompressed stream. If `expected` is given
    /// and the diff ID differs, nothing is kept and a DigestMismatch is returned. On success
    /// the directory is renamed to layers/sha256/<diff id>/ (if another process got there
    /// first, ours is removed: both are the same content). `label` names the layer in errors
    /// (its blob digest, say).
    pub fn unpack(
        &self,
        blob: &mut dyn Read,
        compression: Compression,
        expected: Option<&Digest>,
        label: &str,
    ) -> Result<UnpackedLayer> {
        let _ = (blob, compression, expected, label);
        todo!("layer helper")
    }

    pub fn remove(&self, diff_id: &Digest) -> Result<()> {
        let _ = diff_id;
        todo!("layer helper")
    }

    /// Every layer present.
    pub fn list(&self) -> Result<Vec<Digest>> {
        todo!("layer helper")
    }
}
