//! Online garbage collection: mark every blob the repositories' manifests reference, sweep
//! the rest unless they were used lately, while pushes and pulls go on.
//!
//! Why nothing a push needs is lost:
//! - From the moment a collection starts, every use of a blob (lookup, mount, upload,
//!   reference by a manifest push) is written to a journal, and a journaled blob is kept.
//! - A manifest push checks its references and writes its links holding `gc_gate` shared,
//!   then journals them. The collection takes the gate exclusive once, after marking: every
//!   push that checked before that moment has finished and is in the journal or was seen
//!   by the mark, and every push after it touches its blobs before checking them.
//! - Each blob is removed under the same lock that journals uses, after a last look at the
//!   journal; so a use either comes first and keeps it, or comes after and finds it gone
//!   (and the push is refused instead of storing a manifest with a hole).
//!
//! The grace period covers what the journal cannot: blobs uploaded before the collection
//! started for a manifest not pushed yet.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::time::{SystemTime, UNIX_EPOCH};

use gorae_image::Digest;

use super::inner::{list_links, lock};
use super::{blobs, manifests, Inner};
use crate::error::{IoContext, Result};

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
    let _one_at_a_time = lock(&inner.gc_running);
    let cutoff = SystemTime::now()
        .checked_sub(inner.options.gc_grace)
        .unwrap_or(UNIX_EPOCH);
    lock(&inner.uses).journal = Some(HashSet::new());
    let result = mark_and_sweep(inner, cutoff);
    let mut uses = lock(&inner.uses);
    uses.journal = None;
    // Older uses cannot keep anything in a later collection (its cutoff is later).
    uses.recent.retain(|_, used| *used >= cutoff);
    result
}

fn mark_and_sweep(inner: &Inner, cutoff: SystemTime) -> Result<GcReport> {
    let mut marked = mark(inner)?;
    let mut unmarked = Vec::new();
    let mut report = GcReport::default();
    blobs::for_each_stored(inner, |digest, _| {
        if marked.contains(&digest) {
            report.blobs_marked += 1;
        } else {
            unmarked.push(digest);
        }
    })?;
    {
        let _gate = inner.gc_gate.write().unwrap_or_else(|e| e.into_inner());
        if let Some(journal) = &lock(&inner.uses).journal {
            marked.extend(journal.iter().cloned());
        }
    }
    let mut swept = HashSet::new();
    for digest in unmarked {
        if marked.contains(&digest) {
            report.blobs_marked += 1;
            continue;
        }
        match remove_if_unused(inner, &digest, cutoff)? {
            Some(size) => {
                report.blobs_removed += 1;
                report.bytes_removed += size;
                swept.insert(digest);
            }
            None => report.blobs_kept_recent += 1,
        }
    }
    if !swept.is_empty() {
        remove_links(inner, &swept)?;
    }
    Ok(report)
}

/// Every digest a manifest revision of any repository references, and the manifests.
fn mark(inner: &Inner) -> Result<HashSet<Digest>> {
    let mut marked = HashSet::new();
    for repo in manifests::repositories(inner)? {
        for digest in list_links(&inner.revisions_dir(&repo))? {
            let refs = manifests::stored_references(inner, &repo, &digest);
            marked.extend(refs.all().cloned());
            marked.insert(digest);
        }
    }
    Ok(marked)
}

/// Removes blob `digest` unless it was used since `cutoff`; its size if it was removed.
fn remove_if_unused(inner: &Inner, digest: &Digest, cutoff: SystemTime) -> Result<Option<u64>> {
    let path = inner.blob_path(digest);
    let uses = lock(&inner.uses);
    if uses.in_use(digest, cutoff) {
        return Ok(None);
    }
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(&path),
    };
    if meta.modified().at(&path)? >= cutoff {
        return Ok(None);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(&path),
    }
    drop(uses);
    inner.count_blob_removed(meta.len());
    Ok(Some(meta.len()))
}

/// Removes the `_layers` links to swept blobs, except where the blob came back (uploaded
/// again while the collection ran).
fn remove_links(inner: &Inner, swept: &HashSet<Digest>) -> Result<()> {
    for repo in manifests::repositories(inner)? {
        let layers = inner.repo_dir(&repo).join("_layers");
        for digest in list_links(&layers)? {
            if !swept.contains(&digest) {
                continue;
            }
            let uses = lock(&inner.uses);
            if uses.journal.as_ref().is_some_and(|j| j.contains(&digest))
                || inner.blob_path(&digest).exists()
            {
                continue;
            }
            let link = inner.layer_link(&repo, &digest);
            match std::fs::remove_file(&link) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(&link),
            }
            drop(uses);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use gorae_image::{media, Digest};

    use super::super::test_support::{
        code, image_manifest, open, push_blob, push_image, set_age, try_push_blob,
    };
    use super::super::{Storage, StorageOptions};
    use super::GcReport;
    use crate::error::ErrorCode;

    const HOUR: Duration = Duration::from_secs(3600);

    fn with_grace(gc_grace: Duration) -> StorageOptions {
        StorageOptions {
            gc_grace,
            ..StorageOptions::default()
        }
    }

    /// Ages every stored blob by two hours and forgets the in-memory uses (a restart).
    fn age_all_and_reopen(dir: &std::path::Path, s: Arc<Storage>) -> Arc<Storage> {
        super::blobs::for_each_stored(&s.inner, |digest, _| {
            set_age(&s.inner.blob_path(&digest), 2 * HOUR)
        })
        .unwrap();
        drop(s);
        Storage::open(dir, with_grace(HOUR)).unwrap()
    }

    #[test]
    fn gc_takes_old_unreferenced_blobs_and_keeps_referenced_and_recent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), with_grace(HOUR)).unwrap();
        let image = push_image(&s, "r", "t", &[b"referenced layer"]);
        let garbage = push_blob(&s, "r", b"garbage");
        let looked_up = push_blob(&s, "r", b"looked up after the restart");
        let s = age_all_and_reopen(dir.path(), s);
        let fresh = push_blob(&s, "r", b"fresh");
        assert!(s.stat_blob("r", &looked_up).unwrap().is_some());
        let before = s.usage();

        let report = s.collect_garbage().unwrap();
        assert_eq!(
            report,
            GcReport {
                blobs_marked: 3, // manifest, config, layer
                blobs_removed: 1,
                bytes_removed: 7,
                blobs_kept_recent: 2,
            }
        );
        assert!(!s.inner.blob_path(&garbage).exists());
        assert!(!s.inner.layer_link("r", &garbage).exists());
        assert_eq!(s.stat_blob("r", &garbage).unwrap(), None);
        for kept in [&looked_up, &fresh, &Digest::sha256_of(b"referenced layer")] {
            assert!(s.stat_blob("r", kept).unwrap().is_some());
        }
        assert_eq!(s.usage().blobs, before.blobs - 1);
        assert_eq!(s.usage().bytes, before.bytes - 7);

        // Once the manifest is gone, what it referenced goes too.
        s.delete_manifest("r", &image.to_string()).unwrap();
        let s = age_all_and_reopen(dir.path(), s);
        let report = s.collect_garbage().unwrap();
        assert_eq!((report.blobs_marked, report.blobs_removed), (0, 5));
        assert_eq!(s.usage(), Default::default());
        assert!(list_files(&s.inner.blobs_dir()).is_empty());
    }

    #[test]
    fn gc_keeps_index_children_but_not_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), with_grace(HOUR)).unwrap();
        let child = push_image(&s, "r", "child", &[b"child layer"]);
        let child_bytes = s.get_manifest("r", "child").unwrap().unwrap().bytes;
        s.delete_manifest("r", "child").unwrap(); // the tag only
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": [super::super::test_support::descriptor(media::OCI_MANIFEST, &child_bytes)],
        });
        s.put_manifest("r", "multi", None, &serde_json::to_vec(&index).unwrap())
            .unwrap();
        let subject = push_image(&s, "r", "subject", &[b"subject layer"]);
        push_blob(&s, "r", b"{}");
        let mut referrer: serde_json::Value =
            serde_json::from_slice(&image_manifest(b"{}", &[])).unwrap();
        referrer["subject"] = serde_json::json!({
            "mediaType": media::OCI_MANIFEST, "digest": subject.to_string(), "size": 1,
        });
        let referrer = serde_json::to_vec(&referrer).unwrap();
        let referrer_digest = Digest::sha256_of(&referrer);
        s.put_manifest("r", &referrer_digest.to_string(), None, &referrer)
            .unwrap();
        s.delete_manifest("r", &subject.to_string()).unwrap();
        let s = age_all_and_reopen(dir.path(), s);
        s.collect_garbage().unwrap();
        assert!(s.get_manifest("r", &child.to_string()).unwrap().is_some());
        assert!(s
            .inner
            .blob_path(&Digest::sha256_of(b"child layer"))
            .exists());
        assert!(s
            .get_manifest("r", &referrer_digest.to_string())
            .unwrap()
            .is_some());
        assert!(!s.inner.blob_path(&subject).exists());
        assert!(!s
            .inner
            .blob_path(&Digest::sha256_of(b"subject layer"))
            .exists());
    }

    fn list_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(list_files(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    /// Config and layers, then the manifest; Err(()) when GC took a blob before the
    /// manifest arrived (the client then pushes again).
    fn try_push(s: &Storage, repo: &str, tag: &str, layers: &[&[u8]]) -> Result<Digest, ()> {
        let config = format!("{{\"repo\":\"{repo}\",\"tag\":\"{tag}\"}}").into_bytes();
        try_push_blob(s, repo, &config).unwrap();
        for layer in layers {
            let digest = Digest::sha256_of(layer);
            // Shared layers come by mount when another repository has them.
            if s.mount_blob(repo, None, &digest).unwrap().is_none() {
                try_push_blob(s, repo, layer).unwrap();
            }
        }
        let manifest = image_manifest(&config, layers);
        match s.put_manifest(repo, tag, None, &manifest) {
            Ok(put) => Ok(put.digest),
            Err(e) if code(&e) == Some(ErrorCode::ManifestBlobUnknown) => Err(()),
            Err(e) => panic!("push {repo}:{tag}: {e}"),
        }
    }

    fn read_all(s: &Storage, repo: &str, digest: &Digest) -> Vec<u8> {
        let (mut file, _) = s
            .open_blob(repo, digest)
            .unwrap()
            .unwrap_or_else(|| panic!("{repo} lost {digest}"));
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        data
    }

    /// Every tagged manifest is complete and every stored blob matches its digest.
    fn check_consistent(s: &Storage) {
        for repo in s.repositories().unwrap() {
            for tag in s.tags(&repo).unwrap().unwrap() {
                let m = s.get_manifest(&repo, &tag).unwrap().unwrap();
                let (gorae_image::Manifest::Image(image), _) =
                    gorae_image::Manifest::parse(&m.bytes, None).unwrap()
                else {
                    panic!("not an image");
                };
                for d in std::iter::once(&image.config).chain(&image.layers) {
                    let data = read_all(s, &repo, &d.digest);
                    assert_eq!(Digest::sha256_of(&data), d.digest);
                }
            }
        }
        super::blobs::for_each_stored(&s.inner, |digest, _| {
            let data = std::fs::read(s.inner.blob_path(&digest)).unwrap();
            assert_eq!(Digest::sha256_of(&data), digest);
        })
        .unwrap();
    }

    #[test]
    fn gc_under_concurrent_pushes_loses_nothing_a_manifest_references() {
        let (_dir, s) = open(with_grace(Duration::ZERO));
        let stop = Arc::new(AtomicBool::new(false));
        let gc = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut removed = 0;
                while !stop.load(Ordering::Relaxed) {
                    removed += s.collect_garbage().unwrap().blobs_removed;
                    std::thread::sleep(Duration::from_millis(1));
                }
                removed
            })
        };
        let pushers: Vec<_> = (0..3)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let repo = format!("team/app{t}");
                    let mut previous: Option<Digest> = None;
                    for i in 0..20 {
                        let own = format!("layer {t} {i}").into_bytes();
                        let shared = format!("shared layer {}", i % 4).into_bytes();
                        let tag = format!("v{i}");
                        let layers: [&[u8]; 2] = [&own, &shared];
                        let pushed = (0..1000)
                            .find_map(|_| try_push(&s, &repo, &tag, &layers).ok())
                            .expect("a push kept failing");
                        // Pull it back at once: a stored manifest's blobs must be there.
                        for layer in layers {
                            assert_eq!(read_all(&s, &repo, &Digest::sha256_of(layer)), layer);
                        }
                        // Every other image is deleted again: garbage for the collector.
                        if let Some(old) = previous.take() {
                            s.delete_manifest(&repo, &old.to_string()).unwrap();
                        } else {
                            previous = Some(pushed);
                        }
                    }
                })
            })
            .collect();
        for pusher in pushers {
            pusher.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        let mut removed = gc.join().unwrap();
        check_consistent(&s);
        removed += s.collect_garbage().unwrap().blobs_removed;
        check_consistent(&s);
        assert!(removed > 0, "the deleted images were never collected");
        assert_eq!(s.tags("team/app0").unwrap().unwrap().len(), 10);
    }
}
