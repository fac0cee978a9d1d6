//! Images as tarballs: `docker save` format and OCI layout/archive (save and load), and a
//! rootfs tarball imported as a one-layer image.
//!
//! Each operation holds the store's shared lock for its whole run, so garbage collection
//! never removes what it is writing or reading.

mod changes;
mod import;
mod load;
mod save;
mod staged;

use std::io::{Read, Write};

use crate::digest::Digest;
use crate::error::Result;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

pub use changes::apply_changes;

/// The annotation containerd and docker put the full image name in.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation naming a manifest in a layout (a tag, or a full reference).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

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
    save::save(store, names, format, out)
}

/// Reads a tarball in either format (detected) into the store; returns the loaded images.
/// Old `docker save` archives (`<id>/layer.tar`, manifest.json only) load too.
pub fn load(store: &Store, input: &mut dyn Read) -> Result<Vec<ImageRecord>> {
    load::load(store, input)
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
    import::import(store, input, options)
}

/// Where a blob lives in an OCI image layout.
fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
}
