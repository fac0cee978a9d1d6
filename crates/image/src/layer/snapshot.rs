//! Container snapshots: a writable upper dir over an image's layers, mounted with overlayfs.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::DataRoot;

pub struct Snapshots {
    root: DataRoot,
}

/// A prepared snapshot: what the runtime needs to mount a container's root.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub id: String,
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Layer directories, top-most first (overlay's lowerdir order).
    pub lowers: Vec<PathBuf>,
}

impl Snapshots {
    pub fn open(root: &DataRoot) -> Result<Snapshots> {
        let _ = root;
        todo!("layer helper")
    }

    /// Creates snapshot `id` over `layers` (diff IDs, base layer first) and records the
    /// layers it needs so garbage collection keeps them.
    pub fn create(&self, id: &str, layers: &[Digest]) -> Result<Snapshot> {
        let _ = (id, layers);
        todo!("layer helper")
    }

    pub fn get(&self, id: &str) -> Result<Snapshot> {
        let _ = id;
        todo!("layer helper")
    }

    /// Mounts the snapshot's overlay at `target`. Works for any number of layers the
    /// kernel's overlay stack allows, even past the mount-option length limit.
    pub fn mount(&self, id: &str, target: &Path) -> Result<()> {
        let _ = (id, target);
        todo!("layer helper")
    }

    pub fn unmount(&self, target: &Path) -> Result<()> {
        let _ = target;
        todo!("layer helper")
    }

    /// Removes the snapshot (it must not be mounted).
    pub fn remove(&self, id: &str) -> Result<()> {
        let _ = id;
        todo!("layer helper")
    }

    /// Every layer some snapshot needs: garbage collection roots.
    pub fn layers_in_use(&self) -> Result<Vec<Digest>> {
        todo!("layer helper")
    }
}
