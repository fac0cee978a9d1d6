//! Mark-and-sweep garbage collection of blobs and layers.

use crate::error::Result;
use crate::store::Store;

#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

/// Removes every blob and layer that no image record and no snapshot needs, and stale
/// ingests/temporary dirs no live process holds. Takes the store's exclusive lock.
pub fn collect(store: &Store) -> Result<GcReport> {
    let _ = store;
    todo!("store helper")
}
