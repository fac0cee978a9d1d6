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

pub use content::{BlobWriter, ContentStore, CorruptBlob, UnknownBlobWriter};
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

/// The current time as RFC 3339 in UTC (`2026-11-21T22:26:18Z`), as image records and
/// configs store it.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let rem = unix_secs % 86_400;
    // Howard Hinnant's days-to-civil: proleptic Gregorian calendar from day 0 = 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_213_578), "2026-11-20T22:26:18Z");
    }
}
