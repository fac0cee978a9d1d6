//! Mark-and-sweep garbage collection of blobs and layers.
//!
//! Every writer (pull, load, import, tag, snapshot creation) holds the store's shared lock
//! for its whole operation, and collection holds the exclusive one: while it runs nothing is
//! in flight, so everything in ingest/ and layers/tmp/ is left over from a crash and every
//! blob and layer no image record or snapshot reaches is garbage. One exception: a partial
//! download (`ingest/<alg>-<hex>`) younger than a day is kept, so a prune between an
//! interrupted pull and its retry does not throw away what the retry would resume from.
//!
//! The roots are the image records (manifest, index and the index's present child
//! manifests, config, layer blobs, and the config's diff IDs as unpacked layers) and the
//! layers snapshots use. A record whose manifest or config cannot be read stops collection
//! with an error rather than risk deleting what that image needs.

use std::collections::HashSet;
use std::path::Path;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{ImageConfig, Manifest};
use crate::store::content::dir_names;
use crate::store::{ImageRecord, Store, StoreLock};

#[derive(Debug, Default, Clone)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    /// Partial ingests and half-unpacked layers a crash left behind.
    pub temporaries_removed: usize,
    pub bytes_freed: u64,
}

/// Removes every blob and layer that no image record and no snapshot needs, and stale
/// ingests/temporary dirs no live process holds. Takes the store's exclusive lock.
pub fn collect(store: &Store) -> Result<GcReport> {
    let _lock = store.lock_exclusive()?;
    collect_locked(store)
}

/// `collect`, unless a writer (a pull, a load) holds the store now: then nothing is done
/// and `None` returned, rather than waiting for it (a later collection gets the garbage).
pub fn try_collect(store: &Store) -> Result<Option<GcReport>> {
    let Some(_lock) = StoreLock::try_exclusive(&store.root.lock_file())? else {
        return Ok(None);
    };
    collect_locked(store).map(Some)
}

/// `image prune`: removes the dangling image records, then collects. Returns the removed
/// records and what collection freed.
pub fn prune(store: &Store) -> Result<(Vec<ImageRecord>, GcReport)> {
    let _lock = store.lock_exclusive()?;
    let removed = store.images.remove_dangling()?;
    Ok((removed, collect_locked(store)?))
}

fn collect_locked(store: &Store) -> Result<GcReport> {
    let (blobs, layers) = mark(store)?;
    let mut report = GcReport::default();
    for digest in store.content.list()? {
        if !blobs.contains(&digest) {
            report.bytes_freed += store.content.size(&digest).unwrap_or(0);
            store.content.delete(&digest)?;
            report.blobs_removed += 1;
        }
    }
    for diff_id in store.layers.list()? {
        if !layers.contains(&diff_id) {
            report.bytes_freed += disk_usage(&store.layers.dir(&diff_id));
            store.layers.remove(&diff_id)?;
            report.layers_removed += 1;
        }
    }
    let temporaries = [
        (store.root.ingest_dir(), true),
        (store.root.layers_tmp_dir(), false),
    ];
    for (dir, holds_partials) in temporaries {
        for name in dir_names(&dir)? {
            let path = dir.join(&name);
            if holds_partials && is_recent_partial(&name, &path) {
                continue;
            }
            report.bytes_freed += disk_usage(&path);
            remove_any(&path)?;
            report.temporaries_removed += 1;
        }
    }
    Ok(report)
}

/// How long an interrupted download stays resumable.
const RESUMABLE_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Whether `name` in ingest/ is a partial download (`sha256-<hex>`, not a `tmp-` file of
/// an import or load) modified within RESUMABLE_FOR.
fn is_recent_partial(name: &str, path: &std::path::Path) -> bool {
    let resumable = name
        .split_once('-')
        .is_some_and(|(alg, hex)| format!("{alg}:{hex}").parse::<Digest>().is_ok());
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    resumable && age.is_some_and(|age| age < RESUMABLE_FOR)
}

/// The blobs and layers every image record and snapshot needs.
fn mark(store: &Store) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
    let mut blobs = HashSet::new();
    let mut layers: HashSet<Digest> = store.snapshots.layers_in_use()?.into_iter().collect();
    for record in store.images.list()? {
        if let Some(index) = &record.index {
            blobs.insert(index.digest.clone());
            if store.content.has(&index.digest) {
                let bytes = store.content.read_document(&index.digest)?;
                if let (Manifest::Index(index), _) = Manifest::parse(&bytes, None)? {
                    blobs.extend(index.manifests.into_iter().map(|m| m.digest));
                }
            }
        }
        let unreadable = |e: Error| Error::ImageConflict {
            reference: record.name.clone(),
            reason: format!(
                "cannot tell what this image needs, so nothing was collected \
                 (remove the image if it is broken): {e}"
            ),
        };
        let bytes = store
            .content
            .read_document(&record.manifest.digest)
            .map_err(unreadable)?;
        let Manifest::Image(manifest) = Manifest::parse(&bytes, None).map_err(unreadable)?.0 else {
            return Err(unreadable(Error::InvalidDocument {
                what: format!("manifest {}", record.manifest.digest),
                reason: "is an index, not an image manifest".into(),
            }));
        };
        blobs.insert(record.manifest.digest.clone());
        blobs.insert(manifest.config.digest.clone());
        blobs.extend(manifest.layers.into_iter().map(|l| l.digest));
        let config = store
            .content
            .read_document(&manifest.config.digest)
            .and_then(|b| ImageConfig::parse(&b))
            .map_err(unreadable)?;
        layers.extend(config.rootfs.diff_ids);
    }
    Ok((blobs, layers))
}

/// Bytes of regular files under `path` (best effort: for the report only).
fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| disk_usage(&e.path()))
        .sum::<u64>()
}

fn remove_any(path: &Path) -> Result<()> {
    let is_dir = std::fs::symlink_metadata(path).at(path)?.is_dir();
    if is_dir {
        std::fs::remove_dir_all(path).at(path)
    } else {
        std::fs::remove_file(path).at(path)
    }
}
