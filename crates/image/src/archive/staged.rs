//! An image tarball read in one pass into the content store's ingest area.
//!
//! Every regular file is hashed while it is copied to a temporary ingest file; nothing is
//! published into blobs/ until the caller has checked the whole archive, so a refused archive
//! leaves nothing behind (the temporary files go when `Staged` is dropped). Small metadata
//! files (manifest.json, index.json, repositories, oci-layout) are kept in memory instead.
//!
//! The archive is untrusted: `..` and absolute paths, devices and fifos are refused; a file
//! under blobs/<alg>/ must hash to its name. Symlinks and hardlinks are never created on
//! disk; one that names an earlier regular file of the archive (old `docker save` links
//! duplicate layer.tar files that way) becomes an alias for that file's content, any other
//! is refused.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path};

use crate::digest::{Algorithm, Digest};
use crate::error::{Error, IoContext, Result};
use crate::manifest::MAX_DOCUMENT_SIZE;
use crate::store::{ContentStore, UnknownBlobWriter};

/// Top-level files read into memory rather than ingested.
const METADATA_FILES: [&str; 4] = ["manifest.json", "index.json", "repositories", "oci-layout"];

pub(super) struct Staged<'s> {
    content: &'s ContentStore,
    blobs: HashMap<Digest, UnknownBlobWriter>,
    paths: HashMap<String, Digest>,
    metadata: HashMap<String, Vec<u8>>,
}

fn bad_entry(path: &str, reason: impl Into<String>) -> Error {
    Error::InvalidDocument {
        what: format!("archive entry {path:?}"),
        reason: reason.into(),
    }
}

impl<'s> Staged<'s> {
    pub(super) fn read(content: &'s ContentStore, input: &mut dyn Read) -> Result<Staged<'s>> {
        let mut staged = Staged {
            content,
            blobs: HashMap::new(),
            paths: HashMap::new(),
            metadata: HashMap::new(),
        };
        let mut archive = tar::Archive::new(input);
        let entries = archive.entries().at("<archive>")?;
        for entry in entries {
            let mut entry = entry.at("<archive>")?;
            staged.add_entry(&mut entry)?;
        }
        Ok(staged)
    }

    fn add_entry(&mut self, entry: &mut tar::Entry<'_, &mut dyn Read>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = normalise(Path::new(&shown), &shown)?;
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::Regular | T::Continuous if METADATA_FILES.contains(&path.as_str()) => {
                let data = read_capped(entry, &path)?;
                self.metadata.insert(path, data);
            }
            T::Regular | T::Continuous => self.stage_file(entry, path)?,
            T::Directory | T::XGlobalHeader => {}
            T::Symlink | T::Link => self.add_alias(entry, &path)?,
            other => {
                return Err(bad_entry(
                    &path,
                    format!("{other:?} entries are not allowed"),
                ))
            }
        }
        Ok(())
    }

    fn stage_file(&mut self, entry: &mut dyn Read, path: String) -> Result<()> {
        let named = named_blob(&path)?;
        let algorithm = named.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
        let mut writer = self.content.ingest_unknown_with(algorithm)?;
        std::io::copy(entry, &mut writer).map_err(|e| bad_entry(&path, e.to_string()))?;
        let digest = writer.digest();
        if let Some(named) = named.filter(|n| *n != digest) {
            return Err(Error::DigestMismatch {
                what: format!("archive entry {path:?}"),
                expected: named,
                actual: digest,
            });
        }
        self.blobs.entry(digest.clone()).or_insert(writer);
        self.paths.insert(path, digest);
        Ok(())
    }

    fn add_alias(&mut self, entry: &tar::Entry<'_, &mut dyn Read>, path: &str) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| bad_entry(path, "link without a target"))?;
        let target = String::from_utf8_lossy(&target).into_owned();
        let resolved = if entry.header().entry_type() == tar::EntryType::Symlink {
            let parent = Path::new(path).parent().unwrap_or(Path::new(""));
            parent.join(&target)
        } else {
            Path::new(&target).to_path_buf()
        };
        let refuse = || {
            bad_entry(
                path,
                format!("links to {target:?}, which is not an earlier file of the archive"),
            )
        };
        let resolved = resolve_lexically(&resolved).ok_or_else(refuse)?;
        let digest = self.paths.get(&resolved).cloned().ok_or_else(refuse)?;
        self.paths.insert(path.to_string(), digest);
        Ok(())
    }

    pub(super) fn metadata(&self, name: &str) -> Option<&[u8]> {
        self.metadata.get(name).map(Vec::as_slice)
    }

    /// The content digest of the archive file at `path`.
    pub(super) fn digest_of(&self, path: &str, referrer: &str) -> Result<Digest> {
        let normal = normalise(Path::new(path), path)?;
        self.paths
            .get(&normal)
            .cloned()
            .ok_or_else(|| Error::InvalidDocument {
                what: referrer.to_string(),
                reason: format!("names {path:?}, which is not in the archive"),
            })
    }

    /// Opens a blob from the archive, or from the store if the archive lacks it.
    pub(super) fn open(&self, digest: &Digest) -> Result<File> {
        match self.blobs.get(digest) {
            Some(writer) => File::open(writer.path()).at(writer.path()),
            None if self.content.has(digest) => self.content.open_blob(digest),
            None => Err(Error::InvalidDocument {
                what: "image archive".into(),
                reason: format!("blob {digest} is neither in the archive nor in the store"),
            }),
        }
    }

    pub(super) fn size(&self, digest: &Digest) -> Result<u64> {
        match self.blobs.get(digest) {
            Some(writer) => Ok(writer.written()),
            None => {
                self.open(digest)?;
                self.content.size(digest)
            }
        }
    }

    /// A manifest or config, capped in size (digest checked on ingest or by the store).
    pub(super) fn document(&self, digest: &Digest) -> Result<Vec<u8>> {
        if !self.blobs.contains_key(digest) {
            self.open(digest)?;
            return self.content.read_document(digest);
        }
        read_capped(&mut self.open(digest)?, &digest.to_string())
    }

    /// Moves the staged blob `digest` into blobs/ (a no-op if it came from the store).
    pub(super) fn publish(&mut self, digest: &Digest) -> Result<()> {
        match self.blobs.remove(digest) {
            Some(writer) => writer.commit().map(drop),
            None => Ok(()),
        }
    }
}

/// The archive path as a plain relative path (`./` dropped); `..`, absolute paths and
/// non-UTF-8 names are refused.
fn normalise(path: &Path, shown: &str) -> Result<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(
                part.to_str()
                    .ok_or_else(|| bad_entry(shown, "name is not UTF-8"))?,
            ),
            Component::CurDir => {}
            Component::ParentDir => return Err(bad_entry(shown, "path contains \"..\"")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(bad_entry(shown, "absolute path"))
            }
        }
    }
    if parts.is_empty() {
        return Ok(String::new());
    }
    Ok(parts.join("/"))
}

/// A link target as a path from the archive root, `..` taken lexically (links are never
/// followed on disk); `None` if it leaves the archive.
fn resolve_lexically(path: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// `blobs/<alg>/<hex>` must be named by a valid digest; other paths are not blobs.
fn named_blob(path: &str) -> Result<Option<Digest>> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("blobs"), Some(alg), Some(hex), None) => format!("{alg}:{hex}")
            .parse()
            .map(Some)
            .map_err(|e| bad_entry(path, format!("not a blob name: {e}"))),
        _ => Ok(None),
    }
}

fn read_capped(reader: &mut dyn Read, what: &str) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    reader
        .take(MAX_DOCUMENT_SIZE as u64 + 1)
        .read_to_end(&mut data)
        .map_err(|e| bad_entry(what, e.to_string()))?;
    if data.len() > MAX_DOCUMENT_SIZE {
        return Err(bad_entry(
            what,
            format!("larger than {MAX_DOCUMENT_SIZE} bytes"),
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_or_refused() {
        assert_eq!(normalise(Path::new("./a/b"), "").unwrap(), "a/b");
        assert!(normalise(Path::new("a/../../b"), "").is_err());
        assert!(normalise(Path::new("/etc/passwd"), "").is_err());
        assert!(named_blob("blobs/sha256/zz").is_err());
        assert!(named_blob("abc/layer.tar").unwrap().is_none());
        let link = Path::new("b/../a/layer.tar");
        assert_eq!(resolve_lexically(link).as_deref(), Some("a/layer.tar"));
        assert!(resolve_lexically(Path::new("b/../../etc")).is_none());
    }
}
