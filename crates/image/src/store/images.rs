//! Image records: which names point at which manifests. images.json maps a fully qualified
//! reference (`localhost:5000/busybox:latest`, or `name@sha256:...` for digest pulls) to a
//! record; the image ID is the config digest, as in Docker. Updates are read-modify-write
//! under images.lock and replace the file atomically (temp file, fsync, rename).
//!
//! **Images without a name** (Docker's dangling `<none>:<none>`): an `import` or `load`
//! without a name, or an image whose last tag moved to another image, is kept under its ID:
//! the key and `name` are both `sha256:<hex>` (no reference can be spelled like that, so the
//! two never collide). A dangling record exists only while no named record has its ID:
//! tagging the image removes it, and `image prune` removes the rest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layout::DataRoot;
use crate::manifest::Descriptor;
use crate::reference::Reference;
use crate::store::content::publish;
use crate::store::lock::StoreLock;
use crate::store::now_rfc3339;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The fully qualified reference this record is stored under (the ID if dangling).
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

impl ImageRecord {
    /// A record for `manifest` (with config `id`) under `reference`, or dangling if `None`.
    pub fn new(
        reference: Option<&Reference>,
        manifest: Descriptor,
        index: Option<Descriptor>,
        id: Digest,
    ) -> ImageRecord {
        let name = match reference {
            Some(r) => r.clone().with_default_tag().to_string(),
            None => id.to_string(),
        };
        ImageRecord {
            name,
            manifest,
            index,
            id,
            created: now_rfc3339(),
        }
    }

    /// Whether the image has no name (`<none>:<none>`).
    pub fn is_dangling(&self) -> bool {
        self.name == self.id.to_string()
    }

    /// The reference the record is stored under; `None` if dangling.
    pub fn reference(&self) -> Option<Reference> {
        if self.is_dangling() {
            return None;
        }
        self.name.parse().ok()
    }

    fn into_dangling(mut self) -> ImageRecord {
        self.name = self.id.to_string();
        self
    }
}

type Records = BTreeMap<String, ImageRecord>;

/// What a name or ID given by the user designates.
enum Found {
    /// Records matched by reference (their keys).
    Names(Vec<String>),
    /// An image matched by full ID or ID prefix.
    Id(Digest),
}

pub struct ImageStore {
    root: DataRoot,
}

impl ImageStore {
    pub fn open(root: &DataRoot) -> Result<ImageStore> {
        std::fs::create_dir_all(root.path()).at(root.path())?;
        Ok(ImageStore { root: root.clone() })
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.read()?.into_values().collect())
    }

    /// Finds an image by reference (`busybox`, `busybox:1`, `localhost:5000/x@sha256:..`),
    /// by full ID or by an unambiguous ID prefix of at least 4 hex digits.
    pub fn resolve(&self, name_or_id: &str) -> Result<ImageRecord> {
        let records = self.read()?;
        resolve_in(&records, name_or_id).cloned()
    }

    /// Adds or replaces the record for `record.name`. The image a re-pointed name leaves
    /// behind stays as a dangling record if nothing else names it.
    pub fn put(&self, record: ImageRecord) -> Result<()> {
        self.put_all(vec![record])
    }

    /// Several records in one update: all of them or none are written. Holds the store's
    /// shared lock, so garbage collection never runs between reading the records and
    /// writing these (callers must not hold the exclusive one).
    pub fn put_all(&self, records: Vec<ImageRecord>) -> Result<()> {
        let _store = StoreLock::shared(&self.root.lock_file())?;
        self.update(|all| {
            for record in records {
                put_in(all, record);
            }
            Ok(())
        })
    }

    /// Points `target` at the same image as `source` (`gorae tag`). Holds the store's
    /// shared lock like `put_all`.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest.is_some() {
            return Err(Error::InvalidReference {
                value: target.to_string(),
                reason: "a tag cannot include a digest",
            });
        }
        let _store = StoreLock::shared(&self.root.lock_file())?;
        self.update(|all| {
            let source = resolve_in(all, source)?;
            let record = ImageRecord::new(
                Some(target),
                source.manifest.clone(),
                source.index.clone(),
                source.id.clone(),
            );
            put_in(all, record);
            Ok(())
        })
    }

    /// Removes the record(s) `name_or_id` names; returns what was removed. As `docker rmi`:
    /// a name removes that name only; an ID removes the image with all its names, which
    /// needs `force` if it has more than one.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<Vec<ImageRecord>> {
        self.update(|all| {
            let keys = match find(all, name_or_id)? {
                Found::Names(keys) => keys,
                Found::Id(id) => keys_for_removal(all, &id, name_or_id, force)?,
            };
            Ok(keys.iter().filter_map(|k| all.remove(k)).collect())
        })
    }

    /// Removes every dangling record (`image prune`); returns them.
    pub fn remove_dangling(&self) -> Result<Vec<ImageRecord>> {
        self.update(|all| {
            let keys: Vec<String> = all
                .values()
                .filter(|r| r.is_dangling())
                .map(|r| r.name.clone())
                .collect();
            Ok(keys.iter().filter_map(|k| all.remove(k)).collect())
        })
    }

    fn read(&self) -> Result<Records> {
        let path = self.root.images_file();
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Records::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Store {
            path,
            reason: format!("cannot parse image records: {e}"),
        })
    }

    /// Read-modify-write under images.lock; the file is only replaced if `change` succeeds.
    fn update<T>(&self, change: impl FnOnce(&mut Records) -> Result<T>) -> Result<T> {
        let _lock = StoreLock::exclusive(&self.root.images_lock())?;
        let mut records = self.read()?;
        let result = change(&mut records)?;
        let path = self.root.images_file();
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(&records).map_err(|e| Error::Store {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp).at(&tmp)?;
        file.write_all(&json).at(&tmp)?;
        publish(&file, &tmp, &path)?;
        Ok(result)
    }
}

fn resolve_in<'a>(records: &'a Records, name_or_id: &str) -> Result<&'a ImageRecord> {
    let found = match find(records, name_or_id)? {
        Found::Names(keys) => keys.first().and_then(|k| records.get(k)),
        Found::Id(id) => {
            let mut with_id = records.values().filter(|r| r.id == id);
            let first = with_id.clone().next();
            with_id.find(|r| !r.is_dangling()).or(first)
        }
    };
    found.ok_or_else(|| Error::ImageNotFound(name_or_id.to_string()))
}

/// Looks a user's name or ID up: full ID, then reference, then ID prefix (as Docker does:
/// `abcd` may be a repository as well as a prefix, and the name wins).
fn find(records: &Records, name_or_id: &str) -> Result<Found> {
    let not_found = || Error::ImageNotFound(name_or_id.to_string());
    if let Ok(id) = name_or_id.parse::<Digest>() {
        if records.values().any(|r| r.id == id) {
            return Ok(Found::Id(id));
        }
        return Err(not_found());
    }
    if let Ok(reference) = name_or_id.parse::<Reference>() {
        let keys = keys_for_reference(records, &reference.with_default_tag());
        if !keys.is_empty() {
            return Ok(Found::Names(keys));
        }
    }
    let is_hex = name_or_id
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if is_hex && (4..=64).contains(&name_or_id.len()) {
        return find_by_prefix(records, name_or_id).ok_or_else(not_found)?;
    }
    Err(not_found())
}

fn keys_for_reference(records: &Records, reference: &Reference) -> Vec<String> {
    let key = reference.to_string();
    let Some(digest) = &reference.digest else {
        return records.get(&key).map(|_| key).into_iter().collect();
    };
    // A record pulled by this digest is the one meant; else any name of that repository
    // whose manifest or index has the digest.
    if records.contains_key(&key) {
        return vec![key];
    }
    let name = reference.name();
    records
        .values()
        .filter(|r| r.reference().is_some_and(|rr| rr.name() == name))
        .filter(|r| {
            &r.manifest.digest == digest || r.index.as_ref().is_some_and(|i| &i.digest == digest)
        })
        .map(|r| r.name.clone())
        .collect()
}

fn find_by_prefix(records: &Records, prefix: &str) -> Option<Result<Found>> {
    let mut ids: Vec<&Digest> = records
        .values()
        .map(|r| &r.id)
        .filter(|id| id.hex().starts_with(prefix))
        .collect();
    ids.sort();
    ids.dedup();
    match ids.as_slice() {
        [] => None,
        [id] => Some(Ok(Found::Id((*id).clone()))),
        _ => Some(Err(Error::ImageConflict {
            reference: prefix.to_string(),
            reason: format!("ambiguous ID prefix: it matches {} images", ids.len()),
        })),
    }
}

fn keys_for_removal(all: &Records, id: &Digest, given: &str, force: bool) -> Result<Vec<String>> {
    let keys: Vec<String> = all
        .values()
        .filter(|r| &r.id == id)
        .map(|r| r.name.clone())
        .collect();
    let named: Vec<&str> = keys
        .iter()
        .map(String::as_str)
        .filter(|k| *k != id.to_string())
        .collect();
    if named.len() > 1 && !force {
        return Err(Error::ImageConflict {
            reference: given.to_string(),
            reason: format!(
                "image {id} is referenced by several names ({}): remove them by name or use force",
                named.join(", ")
            ),
        });
    }
    Ok(keys)
}

fn put_in(all: &mut Records, record: ImageRecord) {
    if record.is_dangling() {
        if !all.values().any(|r| r.id == record.id) {
            all.insert(record.name.clone(), record);
        }
        return;
    }
    all.remove(&record.id.to_string());
    let new_id = record.id.clone();
    let Some(old) = all.insert(record.name.clone(), record) else {
        return;
    };
    if old.id != new_id && !all.values().any(|r| r.id == old.id) {
        let dangling = old.into_dangling();
        all.insert(dangling.name.clone(), dangling);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media;

    fn record(name: Option<&str>, seed: &str) -> ImageRecord {
        let manifest = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::sha256_of(format!("m{seed}").as_bytes()),
            1,
        );
        let reference: Option<Reference> = name.map(|n| n.parse().unwrap());
        let id = Digest::sha256_of(format!("c{seed}").as_bytes());
        ImageRecord::new(reference.as_ref(), manifest, None, id)
    }

    #[test]
    fn dangling_records_yield_to_names() {
        let mut all = Records::new();
        put_in(&mut all, record(None, "1"));
        assert_eq!(all.len(), 1);
        put_in(&mut all, record(Some("busybox"), "1"));
        assert_eq!(all.len(), 1);
        assert!(all.contains_key("docker.io/library/busybox:latest"));
        put_in(&mut all, record(None, "1"));
        assert_eq!(all.len(), 1);
    }

    #[test]
    fn retag_leaves_the_old_image_dangling_once() {
        let mut all = Records::new();
        put_in(&mut all, record(Some("a"), "1"));
        put_in(&mut all, record(Some("b"), "1"));
        put_in(&mut all, record(Some("a"), "2"));
        assert_eq!(all.len(), 2, "b still names image 1");
        put_in(&mut all, record(Some("b"), "2"));
        let dangling: Vec<_> = all.values().filter(|r| r.is_dangling()).collect();
        assert_eq!(dangling.len(), 1);
        assert_eq!(dangling[0].id, record(None, "1").id);
    }

    #[test]
    fn finds_by_name_id_prefix_and_digest() {
        let mut all = Records::new();
        let r = record(Some("localhost:5000/x:1"), "1");
        put_in(&mut all, r.clone());
        for q in [
            "localhost:5000/x:1".to_string(),
            r.id.to_string(),
            r.id.hex()[..4].to_string(),
            format!("localhost:5000/x@{}", r.manifest.digest),
        ] {
            assert_eq!(resolve_in(&all, &q).unwrap().name, r.name, "{q}");
        }
        assert!(resolve_in(&all, "localhost:5000/x").is_err());
        assert!(resolve_in(&all, &r.id.hex()[..3]).is_err());
        assert!(resolve_in(
            &all,
            "other@sha256:0000000000000000000000000000000000000000000000000000000000000000"
        )
        .is_err());
    }
}
