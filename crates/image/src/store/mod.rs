//! The data root opened as one store: content, layers, images and snapshots, and the lock
//! that keeps garbage collection from racing writers.

pub mod content;
pub mod images;
pub mod lock;

use std::path::Path;

use crate::error::Result;
use crate::layer::snapshot::Snapshots;
use crate::layer::LayerStore;
use crate::layout::DataRoot;

pub use content::{BlobWriter, ContentStore};
pub use images::{ImageRecord, ImageStore};
pub use lock::StoreLock;

pub struct Store {
    pub root: DataRoot,
    pub content: ContentStore,
    pub layers: LayerStore,
    pub images: ImageStore,
    pub snapshots: Snapshots,
}

impl Store {
    /// Opens (creating if needed) the data root at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        let root = DataRoot::new(path);
        Ok(Store {
            content: ContentStore::open(&root)?,
            layers: LayerStore::open(&root)?,
            images: ImageStore::open(&root)?,
            snapshots: Snapshots::open(&root)?,
            root,
        })
    }

    /// A shared lock for anything that adds to the store (pull, load, import, tag,
    /// snapshot creation). Held for the whole operation; garbage collection waits for it.
    pub fn lock_shared(&self) -> Result<StoreLock> {
        StoreLock::shared(&self.root.lock_file())
    }

    /// The exclusive lock garbage collection holds while it marks and sweeps.
    pub fn lock_exclusive(&self) -> Result<StoreLock> {
        StoreLock::exclusive(&self.root.lock_file())
    }
}
