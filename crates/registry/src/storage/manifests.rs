//! Manifests, tags, the catalog and referrers.
//!
//! A manifest is stored as a blob (its exact bytes), plus a revision link in the repository
//! whose contents are its media type, plus a tag file holding its digest when pushed by tag.
//! A small in-memory cache (tag → digest, digest → bytes) answers repeated HEADs and GETs
//! without touching the disk; every write to a repository drops that repository's entries.

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use gorae_image::reference::{valid_component, valid_tag};
use gorae_image::{Descriptor, Digest, Manifest};
use http::StatusCode;

use super::inner::{digest_from_parts, list_dir, list_links, lock, read_small};
use super::{blobs, Inner, PutManifest, StoredManifest};
use crate::error::{ApiError, Error, ErrorCode, Result};
use crate::names::{parse_reference, Reference};

/// Manifests larger than this are served from disk every time.
const CACHE_MAX_ENTRY: usize = 256 * 1024;
/// Total manifest bytes the cache may hold before it starts over.
const CACHE_BUDGET: usize = 64 * 1024 * 1024;
/// A revision link holds a media type; a tag file a digest. Anything longer is not ours.
const MEDIA_TYPE_CAP: usize = 1024;
const TAG_FILE_CAP: usize = 256;

#[derive(Default)]
pub(crate) struct Cache {
    /// Bumped by every write, so a read that raced with one does not cache what it saw.
    generation: u64,
    bytes: usize,
    repos: HashMap<String, RepoCache>,
}

#[derive(Default)]
struct RepoCache {
    tags: HashMap<String, Digest>,
    manifests: HashMap<Digest, StoredManifest>,
}

impl Cache {
    fn lookup(&self, repo: &str, reference: &Reference) -> Option<StoredManifest> {
        let repo = self.repos.get(repo)?;
        let digest = match reference {
            Reference::Tag(tag) => repo.tags.get(tag)?,
            Reference::Digest(digest) => digest,
        };
        repo.manifests.get(digest).cloned()
    }

    fn insert(
        &mut self,
        generation: u64,
        repo: &str,
        reference: &Reference,
        manifest: &StoredManifest,
    ) {
        let size = manifest.bytes.len();
        if generation != self.generation || size > CACHE_MAX_ENTRY {
            return;
        }
        if self.bytes + size > CACHE_BUDGET {
            self.repos.clear();
            self.bytes = 0;
        }
        let entry = self.repos.entry(repo.to_string()).or_default();
        if let Reference::Tag(tag) = reference {
            entry.tags.insert(tag.clone(), manifest.digest.clone());
        }
        if entry
            .manifests
            .insert(manifest.digest.clone(), manifest.clone())
            .is_none()
        {
            self.bytes += size;
        }
    }

    fn invalidate(&mut self, repo: &str) {
        self.generation += 1;
        if let Some(dropped) = self.repos.remove(repo) {
            let size: usize = dropped.manifests.values().map(|m| m.bytes.len()).sum();
            self.bytes = self.bytes.saturating_sub(size);
        }
    }
}

/// What a manifest points at.
#[derive(Default)]
pub(crate) struct References {
    /// Config and layers: blobs the repository must hold.
    pub(crate) blobs: Vec<Digest>,
    /// Layers with `urls` (non-distributable): fetched from elsewhere, never required.
    pub(crate) foreign: Vec<Digest>,
    /// An index's children: manifests the repository must hold.
    pub(crate) manifests: Vec<Digest>,
}

impl References {
    pub(crate) fn of(manifest: &Manifest) -> References {
        let mut refs = References::default();
        match manifest {
            Manifest::Image(image) => {
                refs.blobs.push(image.config.digest.clone());
                for layer in &image.layers {
                    if layer.urls.as_ref().is_some_and(|u| !u.is_empty()) {
                        refs.foreign.push(layer.digest.clone());
                    } else {
                        refs.blobs.push(layer.digest.clone());
                    }
                }
            }
            Manifest::Index(index) => {
                refs.manifests = index.manifests.iter().map(|m| m.digest.clone()).collect();
            }
        }
        refs
    }

    pub(crate) fn all(&self) -> impl Iterator<Item = &Digest> {
        self.blobs
            .iter()
            .chain(&self.foreign)
            .chain(&self.manifests)
    }
}

pub(crate) fn put(
    inner: &Inner,
    repo: &str,
    reference: &str,
    content_type: Option<&str>,
    bytes: &[u8],
    require_references: bool,
) -> Result<PutManifest> {
    let max = inner.options.max_manifest_size;
    if bytes.len() > max {
        return Err(ApiError::new(
            ErrorCode::ManifestInvalid,
            format!(
                "manifest {repo}:{reference} is {} bytes, more than the {max} accepted",
                bytes.len()
            ),
        )
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .into());
    }
    let reference = parse_reference(reference)?;
    let (manifest, media_type) = Manifest::parse(bytes, content_type).map_err(|e| {
        ApiError::new(
            ErrorCode::ManifestInvalid,
            format!("manifest {repo}:{reference}: {e}"),
        )
    })?;
    let digest = digest_of(repo, &reference, bytes)?;
    let refs = References::of(&manifest);
    let referrer = referrer_descriptor(&manifest, &media_type, &digest, bytes.len());
    {
        let _gate = inner.gc_gate.read().unwrap_or_else(|e| e.into_inner());
        // Touched before they are checked: a GC sweeping now either sees the use or has
        // already removed the blob, and then the check refuses the manifest.
        inner.touch(refs.all().chain([&digest]));
        if require_references {
            check_references(inner, repo, &refs)?;
        }
        write_manifest(inner, repo, &digest, &media_type, bytes)?;
        if let Some((subject, descriptor)) = &referrer {
            write_referrer(inner, repo, subject, descriptor)?;
        }
        if let Reference::Tag(tag) = &reference {
            let tag_path = inner.tags_dir(repo).join(tag);
            inner.write_atomic(&tag_path, digest.to_string().as_bytes())?;
        }
        // Again, now that the manifest is visible: a GC that started marking after the
        // first touch may have walked past this repository already; its journal has them.
        inner.touch(refs.all().chain([&digest]));
    }
    lock(&inner.manifest_cache).invalidate(repo);
    Ok(PutManifest {
        digest,
        subject: referrer.map(|(subject, _)| subject),
    })
}

/// The manifest's digest: sha256 of the bytes, or the digest it was pushed by, which the
/// bytes must then hash to.
fn digest_of(repo: &str, reference: &Reference, bytes: &[u8]) -> Result<Digest> {
    let Reference::Digest(expected) = reference else {
        return Ok(Digest::sha256_of(bytes));
    };
    let mut hasher = expected.algorithm().hasher();
    hasher.update(bytes);
    let actual = hasher.finish();
    if &actual != expected {
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            format!("manifest {repo}@{expected}: its content's digest is {actual}"),
        )
        .into());
    }
    Ok(actual)
}

fn check_references(inner: &Inner, repo: &str, refs: &References) -> Result<()> {
    for digest in &refs.blobs {
        if !blobs::holds(inner, repo, digest)? {
            return Err(missing(repo, digest, "blob"));
        }
    }
    for digest in &refs.manifests {
        let held = inner.revision_link(repo, digest).exists()
            && blobs::stored_size(inner, digest)?.is_some();
        if !held {
            return Err(missing(repo, digest, "manifest"));
        }
    }
    Ok(())
}

fn missing(repo: &str, digest: &Digest, what: &str) -> Error {
    ApiError::new(
        ErrorCode::ManifestBlobUnknown,
        format!("the manifest references {what} {digest}, which {repo} does not hold"),
    )
    .with_detail(serde_json::json!({ "digest": digest.to_string() }))
    .into()
}

/// Blob, then revision link: a crash between them leaves only an unreferenced blob.
fn write_manifest(
    inner: &Inner,
    repo: &str,
    digest: &Digest,
    media_type: &str,
    bytes: &[u8],
) -> Result<()> {
    blobs::store_bytes(inner, digest, bytes)?;
    let revision = inner.revision_link(repo, digest);
    if read_small(&revision, MEDIA_TYPE_CAP)
        .ok()
        .flatten()
        .as_deref()
        != Some(media_type.as_bytes())
    {
        inner.write_atomic(&revision, media_type.as_bytes())?;
    }
    Ok(())
}

/// The subject and the descriptor the referrers API lists for this manifest, if it has a
/// subject.
fn referrer_descriptor(
    manifest: &Manifest,
    media_type: &str,
    digest: &Digest,
    size: usize,
) -> Option<(Digest, Descriptor)> {
    let (subject, artifact_type, annotations) = match manifest {
        Manifest::Image(m) => (
            m.subject.as_ref()?,
            m.artifact_type
                .clone()
                .or_else(|| Some(m.config.media_type.clone())),
            m.annotations.clone(),
        ),
        Manifest::Index(m) => (
            m.subject.as_ref()?,
            m.artifact_type.clone(),
            m.annotations.clone(),
        ),
    };
    let mut descriptor = Descriptor::new(media_type, digest.clone(), size as u64);
    descriptor.artifact_type = artifact_type;
    descriptor.annotations = annotations;
    Some((subject.digest.clone(), descriptor))
}

fn referrer_entry_name(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().name(), digest.hex())
}

fn write_referrer(
    inner: &Inner,
    repo: &str,
    subject: &Digest,
    descriptor: &Descriptor,
) -> Result<()> {
    let path = inner
        .referrers_dir(repo, subject)
        .join(referrer_entry_name(&descriptor.digest));
    let json = serde_json::to_vec(descriptor).map_err(|e| Error::Other {
        what: format!("referrer {} of {subject}", descriptor.digest),
        reason: e.to_string(),
    })?;
    inner.write_atomic(&path, &json)
}

pub(crate) fn get(inner: &Inner, repo: &str, reference: &str) -> Result<Option<StoredManifest>> {
    let reference = parse_reference(reference)?;
    let generation = {
        let cache = lock(&inner.manifest_cache);
        if let Some(hit) = cache.lookup(repo, &reference) {
            return Ok(Some(hit));
        }
        cache.generation
    };
    let digest = match &reference {
        Reference::Tag(tag) => match read_tag(inner, repo, tag)? {
            Some(digest) => digest,
            None => return Ok(None),
        },
        Reference::Digest(digest) => digest.clone(),
    };
    let Some(manifest) = load(inner, repo, &digest)? else {
        return Ok(None);
    };
    lock(&inner.manifest_cache).insert(generation, repo, &reference, &manifest);
    Ok(Some(manifest))
}

/// The digest tag `tag` of `repo` points at.
fn read_tag(inner: &Inner, repo: &str, tag: &str) -> Result<Option<Digest>> {
    let Some(bytes) = read_small(&inner.tags_dir(repo).join(tag), TAG_FILE_CAP)? else {
        return Ok(None);
    };
    let digest = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.trim().parse::<Digest>().ok());
    match digest {
        Some(digest) => Ok(Some(digest)),
        None => Err(corrupt(
            format!("tag {repo}:{tag}"),
            "does not hold a digest",
        )),
    }
}

/// A stored manifest by digest, checked against its digest.
fn load(inner: &Inner, repo: &str, digest: &Digest) -> Result<Option<StoredManifest>> {
    let Some(media_type) = read_media_type(inner, repo, digest)? else {
        return Ok(None);
    };
    let Some(bytes) = read_manifest_blob(inner, digest)? else {
        return Ok(None);
    };
    let mut hasher = digest.algorithm().hasher();
    hasher.update(&bytes);
    if &hasher.finish() != digest {
        return Err(corrupt(
            format!("manifest {repo}@{digest}"),
            "the stored content does not match its digest",
        ));
    }
    Ok(Some(StoredManifest {
        digest: digest.clone(),
        media_type,
        bytes: Bytes::from(bytes),
    }))
}

/// The media type a revision link records; None if `repo` has no such revision.
fn read_media_type(inner: &Inner, repo: &str, digest: &Digest) -> Result<Option<String>> {
    let Some(bytes) = read_small(&inner.revision_link(repo, digest), MEDIA_TYPE_CAP)? else {
        return Ok(None);
    };
    let media_type = String::from_utf8(bytes)
        .ok()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty() && !m.contains(['\r', '\n']));
    match media_type {
        Some(media_type) => Ok(Some(media_type)),
        None => Err(corrupt(
            format!("manifest revision {repo}@{digest}"),
            "does not hold a media type",
        )),
    }
}

fn read_manifest_blob(inner: &Inner, digest: &Digest) -> Result<Option<Vec<u8>>> {
    let cap = inner
        .options
        .max_manifest_size
        .max(gorae_image::manifest::MAX_DOCUMENT_SIZE);
    read_small(&inner.blob_path(digest), cap)
}

fn corrupt(what: String, reason: &str) -> Error {
    Error::Other {
        what,
        reason: reason.to_string(),
    }
}

/// What a stored manifest references, for GC; None if it is gone or unreadable.
pub(crate) fn stored_references(inner: &Inner, repo: &str, digest: &Digest) -> References {
    let parsed = (|| {
        let media_type = read_media_type(inner, repo, digest).ok().flatten();
        let bytes = read_manifest_blob(inner, digest).ok().flatten()?;
        Manifest::parse(&bytes, media_type.as_deref())
            .or_else(|_| Manifest::parse(&bytes, None))
            .ok()
    })();
    parsed
        .map(|(manifest, _)| References::of(&manifest))
        .unwrap_or_default()
}

pub(crate) fn delete(inner: &Inner, repo: &str, reference: &str) -> Result<()> {
    let reference = parse_reference(reference)?;
    let removed = match &reference {
        Reference::Tag(tag) => inner.remove_file(&inner.tags_dir(repo).join(tag))?,
        Reference::Digest(digest) => delete_revision(inner, repo, digest)?,
    };
    lock(&inner.manifest_cache).invalidate(repo);
    if !removed {
        return Err(ApiError::new(
            ErrorCode::ManifestUnknown,
            format!("manifest {repo}:{reference} does not exist"),
        )
        .into());
    }
    Ok(())
}

/// Tags first, then referrer entries, then the revision: a crash in between leaves the
/// manifest with fewer names, never a name without a manifest.
fn delete_revision(inner: &Inner, repo: &str, digest: &Digest) -> Result<bool> {
    let revision = inner.revision_link(repo, digest);
    if !revision.exists() {
        return Ok(false);
    }
    let tags_dir = inner.tags_dir(repo);
    for tag in list_dir(&tags_dir)? {
        if valid_tag(&tag) && read_tag(inner, repo, &tag).ok().flatten().as_ref() == Some(digest) {
            inner.remove_file(&tags_dir.join(&tag))?;
        }
    }
    remove_referrer_entries(inner, repo, digest)?;
    inner.remove_file(&revision)
}

fn remove_referrer_entries(inner: &Inner, repo: &str, digest: &Digest) -> Result<()> {
    let name = referrer_entry_name(digest);
    let subject = read_manifest_blob(inner, digest)
        .ok()
        .flatten()
        .and_then(|bytes| Manifest::parse(&bytes, None).ok())
        .and_then(|(manifest, _)| match manifest {
            Manifest::Image(m) => m.subject,
            Manifest::Index(m) => m.subject,
        });
    let subject_dirs = match subject {
        Some(subject) => vec![inner.referrers_dir(repo, &subject.digest)],
        // Unreadable: look under every subject.
        None => {
            let root = inner.repo_dir(repo).join("_referrers");
            list_links(&root)?
                .iter()
                .map(|subject| inner.referrers_dir(repo, subject))
                .collect()
        }
    };
    for dir in subject_dirs {
        if inner.remove_file(&dir.join(&name))? {
            // The last referrer of a subject takes its directory along (fails if not empty).
            let _ = std::fs::remove_dir(&dir);
        }
    }
    Ok(())
}

pub(crate) fn tags(inner: &Inner, repo: &str) -> Result<Option<Vec<String>>> {
    if !inner.repo_dir(repo).is_dir() {
        return Ok(None);
    }
    let mut tags: Vec<String> = list_dir(&inner.tags_dir(repo))?
        .into_iter()
        .filter(|t| valid_tag(t))
        .collect();
    tags.sort();
    Ok(Some(tags))
}

pub(crate) fn repositories(inner: &Inner) -> Result<Vec<String>> {
    let mut repos = Vec::new();
    let mut pending = vec![(inner.repositories_dir(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        // Our own entries start with '_', which no name component can.
        for component in list_dir(&dir)?.into_iter().filter(|c| valid_component(c)) {
            let path = dir.join(&component);
            if !path.is_dir() {
                continue;
            }
            let name = if prefix.is_empty() {
                component
            } else {
                format!("{prefix}/{component}")
            };
            if is_repository(&path) {
                repos.push(name.clone());
            }
            pending.push((path, name));
        }
    }
    repos.sort();
    Ok(repos)
}

fn is_repository(dir: &Path) -> bool {
    dir.join("_manifests").is_dir() || dir.join("_layers").is_dir()
}

pub(crate) fn referrers(
    inner: &Inner,
    repo: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    let dir = inner.referrers_dir(repo, subject);
    let cap = inner
        .options
        .max_manifest_size
        .max(gorae_image::manifest::MAX_DOCUMENT_SIZE);
    let mut found = Vec::new();
    for name in list_dir(&dir)? {
        let Some(digest) = name
            .split_once('-')
            .and_then(|(alg, hex)| digest_from_parts(alg, hex))
        else {
            continue;
        };
        // An entry that does not parse is skipped rather than failing the whole listing.
        let Some(descriptor) = read_small(&dir.join(&name), cap)?
            .and_then(|bytes| serde_json::from_slice::<Descriptor>(&bytes).ok())
            .filter(|d| d.digest == digest)
        else {
            continue;
        };
        if artifact_type.is_none_or(|t| descriptor.artifact_type.as_deref() == Some(t)) {
            found.push(descriptor);
        }
    }
    found.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(found)
}
