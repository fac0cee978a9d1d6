//! Blobs and the per-repository links to them.
//!
//! A blob's content lives once, in `blobs/<alg>/<hh>/<hex>`, whatever the number of
//! repositories that hold it; a repository holds it while its `_layers` link exists *and*
//! the content does (GC may take content whose links it has not yet removed).

use std::fs::File;
use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

use gorae_image::Digest;
use rustix::fs::{RenameFlags, CWD};

use super::inner::{digest_from_parts, list_dir, sync_parent};
use super::Inner;
use crate::error::{IoContext, Result};

pub(crate) fn stat(inner: &Inner, repo: &str, digest: &Digest) -> Result<Option<u64>> {
    if !linked(inner, repo, digest)? {
        return Ok(None);
    }
    inner.touch([digest]);
    stored_size(inner, digest)
}

pub(crate) fn open(inner: &Inner, repo: &str, digest: &Digest) -> Result<Option<(File, u64)>> {
    if !linked(inner, repo, digest)? {
        return Ok(None);
    }
    inner.touch([digest]);
    let path = inner.blob_path(digest);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(&path),
    };
    let size = file.metadata().at(&path)?.len();
    Ok(Some((file, size)))
}

pub(crate) fn mount(
    inner: &Inner,
    repo: &str,
    from: Option<&str>,
    digest: &Digest,
) -> Result<Option<u64>> {
    // Touched before the content is looked at: a GC sweeping now either sees the use and
    // keeps the blob, or has already removed it and the lookup below fails.
    inner.touch([digest]);
    let Some(size) = stored_size(inner, digest)? else {
        return Ok(None);
    };
    let source_holds = match from {
        Some(from) => linked(inner, from, digest)?,
        None => linked(inner, repo, digest)? || any_repo_links(inner, digest)?,
    };
    if !source_holds {
        return Ok(None);
    }
    inner.create_link(&inner.layer_link(repo, digest))?;
    // The in-memory use is lost on restart; the mtime is what a GC after one sees.
    refresh_mtime(&inner.blob_path(digest));
    Ok(Some(size))
}

pub(crate) fn unlink(inner: &Inner, repo: &str, digest: &Digest) -> Result<bool> {
    inner.remove_file(&inner.layer_link(repo, digest))
}

/// Links a stored blob into `repo` (after an upload or for a manifest push).
pub(crate) fn link(inner: &Inner, repo: &str, digest: &Digest) -> Result<()> {
    inner
        .create_link(&inner.layer_link(repo, digest))
        .map(|_| ())
}

/// Whether `repo` holds blob `digest`: linked and stored.
pub(crate) fn holds(inner: &Inner, repo: &str, digest: &Digest) -> Result<bool> {
    Ok(linked(inner, repo, digest)? && stored_size(inner, digest)?.is_some())
}

fn linked(inner: &Inner, repo: &str, digest: &Digest) -> Result<bool> {
    let path = inner.layer_link(repo, digest);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at(&path),
    }
}

/// Whether some repository links `digest` (automatic mount without `from`).
fn any_repo_links(inner: &Inner, digest: &Digest) -> Result<bool> {
    for repo in super::manifests::repositories(inner)? {
        if linked(inner, &repo, digest)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The size of the stored content, if any.
pub(crate) fn stored_size(inner: &Inner, digest: &Digest) -> Result<Option<u64>> {
    let path = inner.blob_path(digest);
    match std::fs::metadata(&path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).at(&path),
    }
}

/// Moves the fsynced, verified file `src` into place as blob `digest` (of `size` bytes).
/// If the blob is already stored, `src` is dropped instead. The caller has touched
/// `digest`, so a running GC will not take the existing copy.
pub(crate) fn commit(inner: &Inner, src: &Path, digest: &Digest, size: u64) -> Result<()> {
    let dst = inner.blob_path(digest);
    if let Some(parent) = dst.parent() {
        inner.ensure_dir(parent)?;
    }
    match rename_no_replace(src, &dst) {
        Ok(()) => {
            sync_parent(&dst)?;
            inner.count_blob_added(size);
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let _ = std::fs::remove_file(src);
            refresh_mtime(&dst);
            Ok(())
        }
        Err(e) => Err(e).at(&dst),
    }
}

/// Stores `bytes` (already verified to be `digest`) as a blob unless it is there already.
pub(crate) fn store_bytes(inner: &Inner, digest: &Digest, bytes: &[u8]) -> Result<()> {
    if stored_size(inner, digest)?.is_some() {
        refresh_mtime(&inner.blob_path(digest));
        return Ok(());
    }
    let tmp = inner.write_tmp(bytes)?;
    commit(inner, &tmp, digest, bytes.len() as u64).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A rename that fails with AlreadyExists instead of replacing: two uploads of the same
/// content racing must count it once.
fn rename_no_replace(src: &Path, dst: &Path) -> std::io::Result<()> {
    match rustix::fs::renameat_with(CWD, src, CWD, dst, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // File systems without renameat2 flags: a hard link refuses to replace too.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            std::fs::hard_link(src, dst)?;
            std::fs::remove_file(src)
        }
        Err(e) => Err(e.into()),
    }
}

/// Marks a blob as used now on disk. Best effort: a failure only shortens its grace.
fn refresh_mtime(path: &Path) {
    if let Ok(file) = File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Calls `f` with every stored blob's digest and size (stray files are skipped).
pub(crate) fn for_each_stored(inner: &Inner, mut f: impl FnMut(Digest, u64)) -> Result<()> {
    let blobs = inner.blobs_dir();
    for algorithm in list_dir(&blobs)? {
        for prefix in list_dir(&blobs.join(&algorithm))? {
            let dir = blobs.join(&algorithm).join(&prefix);
            for hex in list_dir(&dir)? {
                let Some(digest) = digest_from_parts(&algorithm, &hex) else {
                    continue;
                };
                if !hex.starts_with(&prefix) {
                    continue;
                }
                match std::fs::symlink_metadata(dir.join(&hex)) {
                    Ok(m) if m.is_file() => f(digest, m.len()),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e).at(dir.join(&hex)),
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use gorae_image::Digest;

    use super::super::test_support::{open_default, push_blob, read_blob};

    #[test]
    fn mount_links_a_blob_another_repository_holds() {
        let (_dir, s) = open_default();
        let digest = push_blob(&s, "src", b"mountable");
        assert_eq!(s.mount_blob("dst", Some("src"), &digest).unwrap(), Some(9));
        assert_eq!(read_blob(&s, "dst", &digest).unwrap(), b"mountable");
        // From a repository that does not hold it: nothing.
        assert_eq!(s.mount_blob("dst2", Some("dst3"), &digest).unwrap(), None);
        assert_eq!(s.stat_blob("dst2", &digest).unwrap(), None);
        // Without `from`, any holder will do.
        assert_eq!(s.mount_blob("dst2", None, &digest).unwrap(), Some(9));
        assert_eq!(s.stat_blob("dst2", &digest).unwrap(), Some(9));
        let missing = Digest::sha256_of(b"never uploaded");
        assert_eq!(s.mount_blob("dst", None, &missing).unwrap(), None);
        assert_eq!(s.mount_blob("dst", Some("src"), &missing).unwrap(), None);
        assert_eq!(s.usage().blobs, 1);
    }

    #[test]
    fn delete_unlinks_from_one_repository_only() {
        let (_dir, s) = open_default();
        let digest = push_blob(&s, "a", b"shared");
        push_blob(&s, "b", b"shared");
        assert!(s.delete_blob("a", &digest).unwrap());
        assert!(!s.delete_blob("a", &digest).unwrap());
        assert_eq!(s.stat_blob("a", &digest).unwrap(), None);
        assert!(s.open_blob("a", &digest).unwrap().is_none());
        assert_eq!(s.stat_blob("b", &digest).unwrap(), Some(6));
        // Content without a link, or a link without content, is not held.
        assert_eq!(s.mount_blob("c", Some("a"), &digest).unwrap(), None);
        std::fs::remove_file(s.inner.blob_path(&digest)).unwrap();
        assert_eq!(s.stat_blob("b", &digest).unwrap(), None);
        assert!(s.open_blob("b", &digest).unwrap().is_none());
    }
}
