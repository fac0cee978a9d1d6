//! Images as tarballs: `docker save` format and OCI layout/archive (save and load), and a
//! rootfs tarball imported as a one-layer image.

use std::io::{Read, Write};

use crate::error::Result;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveFormat {
    /// What `docker save` writes (manifest.json, repositories, and OCI index.json too).
    Docker,
    /// An OCI image layout as a tar (oci-layout, index.json, blobs/).
    Oci,
}

/// Writes the images named by `names` to `out` as one tarball.
pub fn save(
    store: &Store,
    names: &[String],
    format: SaveFormat,
    out: &mut dyn Write,
) -> Result<()> {
    let _ = (store, names, format, out);
    todo!("store helper")
}

/// Reads a tarball in either format (detected) into the store; returns the loaded images.
pub fn load(store: &Store, input: &mut dyn Read) -> Result<Vec<ImageRecord>> {
    let _ = (store, input);
    todo!("store helper")
}

/// What `gorae import` may set on the new image.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    pub reference: Option<Reference>,
    /// Dockerfile-like changes: `CMD ["sh"]`, `ENV A=1`, `ENTRYPOINT`, `WORKDIR`, `USER`,
    /// `EXPOSE`, `LABEL`, `STOPSIGNAL`, `VOLUME`, as `docker import --change` takes.
    pub changes: Vec<String>,
    pub message: Option<String>,
}

/// Imports a rootfs tarball (plain, gzip or zstd) as a one-layer image.
pub fn import(store: &Store, input: &mut dyn Read, options: &ImportOptions) -> Result<ImageRecord> {
    let _ = (store, input, options);
    todo!("store helper")
}
