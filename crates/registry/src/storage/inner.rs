//! The shared state behind `Storage`: the root, the lock, and what GC must know about.
//! (storage helper)

use std::path::Path;

use super::{StorageOptions, Usage};
use crate::error::Result;

pub(crate) struct Inner {}

impl Inner {
    pub(crate) fn open(root: &Path, options: StorageOptions) -> Result<Inner> {
        let _ = (root, options);
        todo!("storage helper")
    }

    pub(crate) fn root(&self) -> &Path {
        todo!("storage helper")
    }

    pub(crate) fn usage(&self) -> Usage {
        todo!("storage helper")
    }
}
