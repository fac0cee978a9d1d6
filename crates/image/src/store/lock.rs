//! flock-based locks on files of the data root: held while the value lives.

use std::fs::File;
use std::path::Path;

use crate::error::Result;

pub struct StoreLock {
    _file: File,
}

impl StoreLock {
    pub fn shared(path: &Path) -> Result<StoreLock> {
        let _ = path;
        todo!("store helper")
    }

    pub fn exclusive(path: &Path) -> Result<StoreLock> {
        let _ = path;
        todo!("store helper")
    }
}
