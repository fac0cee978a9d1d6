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
