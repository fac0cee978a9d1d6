//! Online garbage collection. (storage helper)

use super::Inner;
use crate::error::Result;

/// What one collection did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_marked: usize,
    pub blobs_removed: usize,
    pub bytes_removed: u64,
    /// Unreferenced blobs kept because they were used within the grace period.
    pub blobs_kept_recent: usize,
}

pub(crate) fn collect(inner: &Inner) -> Result<GcReport> {
    let _ = inner;
    todo!("storage helper")
}
