//! Image records: which names point at which manifests. images.json maps a fully qualified
//! reference (`localhost:5000/busybox:latest`, or `name@sha256:...` for digest pulls) to a
//! record; the image ID is the config digest, as in Docker. Updates are read-modify-write
//! under images.lock and replace the file atomically.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::DataRoot;
use crate::manifest::Descriptor;
use crate::reference::Reference;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The fully qualified reference this record is stored under.
    pub name: String,
    /// The platform-specific image manifest.
    pub manifest: Descriptor,
    /// The index or manifest list the manifest was chosen from, if any (its digest is what
    /// a registry knows the tag by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<Descriptor>,
    /// The config digest: the image ID.
    pub id: Digest,
    /// When the record was written (RFC 3339).
    pub created: String,
}

pub struct ImageStore {
    root: DataRoot,
}

impl ImageStore {
    pub fn open(root: &DataRoot) -> Result<ImageStore> {
        let _ = root;
        todo!("store helper")
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        todo!("store helper")
    }

    /// Finds an image by reference (`busybox`, `busybox:1`, `localhost:5000/x@sha256:..`),
    /// by full ID or by an unambiguous ID prefix of at least 4 hex digits.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord> {
        let _ = name_or_id;
        todo!("store helper")
    }

    /// Adds or replaces the record for `record.name`.
    pub fn put(&self, record: ImageRecord) -> Result<()> {
        let _ = record;
        todo!("store helper")
    }

    /// Points `target` at the same image as `source` (`gorae tag`).
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let _ = (source, target);
        todo!("store helper")
    }

    /// Removes the record(s) `name_or_id` names; returns what was removed.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<ImageRecord>> {
        let _ = (name_or_id, force);
        todo!("store helper")
    }
}
