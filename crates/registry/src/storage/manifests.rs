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
            // A re-push of the same image (common in CI) leaves the tag alone.
            if read_tag(inner, repo, tag).ok().flatten().as_ref() != Some(&digest) {
                let tag_path = inner.tags_dir(repo).join(tag);
                inner.write_atomic(&tag_path, digest.to_string().as_bytes())?;
            }
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
    if !is_repository(&inner.repo_dir(repo)) {
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

#[cfg(test)]
mod tests {
    use gorae_image::{media, Digest};

    use super::super::test_support::{
        code, descriptor, image_manifest, open, open_default, push_blob, push_image,
    };
    use super::super::{Storage, StorageOptions};
    use crate::error::ErrorCode;

    #[test]
    fn put_then_get_by_tag_and_by_digest() {
        let (_dir, s) = open_default();
        let digest = push_image(&s, "lib/app", "v1", &[b"layer one", b"layer two"]);
        let by_tag = s.get_manifest("lib/app", "v1").unwrap().unwrap();
        assert_eq!(by_tag.digest, digest);
        assert_eq!(by_tag.media_type, media::OCI_MANIFEST);
        assert_eq!(Digest::sha256_of(&by_tag.bytes), digest);
        // Twice: the second answer comes from the cache and must be the same.
        for _ in 0..2 {
            let by_digest = s
                .get_manifest("lib/app", &digest.to_string())
                .unwrap()
                .unwrap();
            assert_eq!(by_digest.bytes, by_tag.bytes);
        }
        assert!(s.get_manifest("lib/app", "v2").unwrap().is_none());
        assert!(s.get_manifest("lib/other", "v1").unwrap().is_none());
        // Re-tagging moves the tag, and the cached answer follows.
        let v2 = push_image(&s, "lib/app", "v1", &[b"layer three"]);
        assert_eq!(s.get_manifest("lib/app", "v1").unwrap().unwrap().digest, v2);
    }

    #[test]
    fn a_push_by_digest_must_hash_to_it() {
        let (_dir, s) = open_default();
        let config = b"{}";
        push_blob(&s, "r", config);
        let manifest = image_manifest(config, &[]);
        let digest = Digest::sha256_of(&manifest);
        let put = s
            .put_manifest("r", &digest.to_string(), None, &manifest)
            .unwrap();
        assert_eq!(put.digest, digest);
        assert!(s.tags("r").unwrap().unwrap().is_empty());
        let wrong = Digest::sha256_of(b"something else");
        let e = s
            .put_manifest("r", &wrong.to_string(), None, &manifest)
            .unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::DigestInvalid));
        assert!(s.get_manifest("r", &wrong.to_string()).unwrap().is_none());
    }

    #[test]
    fn a_manifest_with_a_missing_blob_is_refused() {
        let (_dir, s) = open_default();
        let config = b"{\"config\":{}}";
        push_blob(&s, "r", config);
        // The layer is in another repository: it does not count.
        let layer_digest = push_blob(&s, "elsewhere", b"layer");
        let manifest = image_manifest(config, &[b"layer"]);
        let e = s.put_manifest("r", "latest", None, &manifest).unwrap_err();
        let api = crate::ApiError::from(e);
        assert_eq!(api.code, ErrorCode::ManifestBlobUnknown);
        let detail = serde_json::json!({ "digest": layer_digest.to_string() });
        assert_eq!(api.detail, Some(detail));
        assert!(s.get_manifest("r", "latest").unwrap().is_none());
        // The pull-through cache stores it anyway.
        s.cache_manifest("r", "latest", None, &manifest).unwrap();
        assert!(s.get_manifest("r", "latest").unwrap().is_some());
    }

    #[test]
    fn foreign_layers_need_not_be_stored() {
        let (_dir, s) = open_default();
        push_blob(&s, "r", b"{}");
        let mut foreign = descriptor(media::DOCKER_LAYER_FOREIGN_GZIP, b"windows base");
        foreign["urls"] = serde_json::json!(["https://example.com/base.tar.gz"]);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::DOCKER_MANIFEST,
            "config": descriptor(media::DOCKER_CONFIG, b"{}"),
            "layers": [foreign],
        });
        let bytes = serde_json::to_vec(&manifest).unwrap();
        s.put_manifest("r", "win", Some(media::DOCKER_MANIFEST), &bytes)
            .unwrap();
        let got = s.get_manifest("r", "win").unwrap().unwrap();
        assert_eq!(got.media_type, media::DOCKER_MANIFEST);
    }

    #[test]
    fn a_huge_manifest_is_413() {
        let (_dir, s) = open(StorageOptions {
            max_manifest_size: 1000,
            ..StorageOptions::default()
        });
        let e = s.put_manifest("r", "big", None, &[b' '; 1001]).unwrap_err();
        let api = crate::ApiError::from(e);
        assert_eq!(api.code, ErrorCode::ManifestInvalid);
        assert_eq!(api.status().as_u16(), 413);
    }

    #[test]
    fn malformed_manifests_are_manifest_invalid() {
        let (_dir, s) = open_default();
        let cases: [(&[u8], Option<&str>); 4] = [
            (b"not json", None),
            (b"{\"schemaVersion\":1,\"layers\":[]}", None),
            (
                b"{\"schemaVersion\":2,\"mediaType\":\"text/html\",\"layers\":[]}",
                None,
            ),
            (
                b"{\"schemaVersion\":2,\"layers\":[{\"digest\":\"sha256:zz\"}]}",
                None,
            ),
        ];
        for (bytes, content_type) in cases {
            let e = s.put_manifest("r", "t", content_type, bytes).unwrap_err();
            assert_eq!(code(&e), Some(ErrorCode::ManifestInvalid), "{e}");
        }
        let e = s.put_manifest("r", "bad tag!", None, b"{}").unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::ManifestInvalid), "{e}");
        assert!(s.tags("r").unwrap().is_none());
    }

    fn index(children: &[&[u8]]) -> Vec<u8> {
        let manifests: Vec<_> = children
            .iter()
            .map(|c| descriptor(media::OCI_MANIFEST, c))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_INDEX,
            "manifests": manifests,
        }))
        .unwrap()
    }

    #[test]
    fn an_index_needs_its_children_in_the_repository() {
        let (_dir, s) = open_default();
        push_image(&s, "r", "amd64", &[b"amd64 layer"]);
        let amd64 = s.get_manifest("r", "amd64").unwrap().unwrap().bytes;
        let arm64 = image_manifest(b"{}", &[]);
        let e = s
            .put_manifest("r", "multi", None, &index(&[&amd64, &arm64]))
            .unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::ManifestBlobUnknown));
        // A blob with the child's bytes is not a manifest of the repository.
        push_blob(&s, "r", &arm64);
        let e = s
            .put_manifest("r", "multi", None, &index(&[&amd64, &arm64]))
            .unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::ManifestBlobUnknown));
        push_blob(&s, "r", b"{}");
        s.put_manifest("r", &Digest::sha256_of(&arm64).to_string(), None, &arm64)
            .unwrap();
        let put = s
            .put_manifest("r", "multi", None, &index(&[&amd64, &arm64]))
            .unwrap();
        let got = s.get_manifest("r", "multi").unwrap().unwrap();
        assert_eq!(
            (got.digest, got.media_type.as_str()),
            (put.digest, media::OCI_INDEX)
        );
    }

    fn push_referrer(s: &Storage, subject: &Digest, artifact_type: Option<&str>) -> Digest {
        push_blob(s, "r", b"{}");
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": descriptor("application/vnd.example.sbom.config", b"{}"),
            "layers": [],
            "subject": { "mediaType": media::OCI_MANIFEST, "digest": subject.to_string(), "size": 10 },
            "annotations": { "made.by": artifact_type.unwrap_or("config") },
        });
        if let Some(t) = artifact_type {
            manifest["artifactType"] = serde_json::json!(t);
        }
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = Digest::sha256_of(&bytes);
        let put = s
            .put_manifest("r", &digest.to_string(), None, &bytes)
            .unwrap();
        assert_eq!(put.subject.as_ref(), Some(subject));
        digest
    }

    #[test]
    fn referrers_are_listed_and_filtered_by_artifact_type() {
        let (_dir, s) = open_default();
        // The subject need not exist.
        let subject = Digest::sha256_of(b"not pushed yet");
        let sig = push_referrer(&s, &subject, Some("application/vnd.example.signature"));
        let sbom = push_referrer(&s, &subject, None);
        let all = s.referrers("r", &subject, None).unwrap();
        assert_eq!(all.len(), 2);
        let of = |d: &Digest| all.iter().find(|r| &r.digest == d).unwrap();
        assert_eq!(
            of(&sig).artifact_type.as_deref(),
            Some("application/vnd.example.signature")
        );
        // Without artifactType, an image manifest's config media type stands in.
        assert_eq!(
            of(&sbom).artifact_type.as_deref(),
            Some("application/vnd.example.sbom.config")
        );
        assert_eq!(of(&sbom).media_type, media::OCI_MANIFEST);
        let made_by = of(&sig)
            .annotations
            .as_ref()
            .unwrap()
            .get("made.by")
            .cloned();
        assert_eq!(
            made_by.as_deref(),
            Some("application/vnd.example.signature")
        );
        let signatures = s
            .referrers("r", &subject, Some("application/vnd.example.signature"))
            .unwrap();
        assert_eq!(
            signatures.iter().map(|r| &r.digest).collect::<Vec<_>>(),
            [&sig]
        );
        assert!(s.referrers("r", &subject, Some("x/y")).unwrap().is_empty());
        assert!(s.referrers("other", &subject, None).unwrap().is_empty());
        // Deleting a referrer takes it off the list.
        s.delete_manifest("r", &sig.to_string()).unwrap();
        let left = s.referrers("r", &subject, None).unwrap();
        assert_eq!(left.iter().map(|r| &r.digest).collect::<Vec<_>>(), [&sbom]);
    }

    #[test]
    fn delete_by_digest_takes_its_tags_and_by_tag_only_the_tag() {
        let (_dir, s) = open_default();
        let digest = push_image(&s, "r", "a", &[b"l"]);
        let manifest = s.get_manifest("r", "a").unwrap().unwrap().bytes;
        s.put_manifest("r", "b", None, &manifest).unwrap();
        let other = push_image(&s, "r", "c", &[b"m"]);
        s.delete_manifest("r", "b").unwrap();
        assert!(s.get_manifest("r", "b").unwrap().is_none());
        assert!(s.get_manifest("r", "a").unwrap().is_some());
        s.put_manifest("r", "b", None, &manifest).unwrap();
        s.delete_manifest("r", &digest.to_string()).unwrap();
        assert_eq!(s.tags("r").unwrap().unwrap(), ["c"]);
        assert!(s.get_manifest("r", &digest.to_string()).unwrap().is_none());
        assert!(s.get_manifest("r", "a").unwrap().is_none());
        assert_eq!(s.get_manifest("r", "c").unwrap().unwrap().digest, other);
        let unknown = Some(ErrorCode::ManifestUnknown);
        assert_eq!(code(&s.delete_manifest("r", "a").unwrap_err()), unknown);
        let again = s.delete_manifest("r", &digest.to_string()).unwrap_err();
        assert_eq!(code(&again), unknown);
    }

    #[test]
    fn tags_and_the_catalog_are_sorted() {
        let (_dir, s) = open_default();
        for tag in ["v2", "latest", "V1", "1.0"] {
            push_image(&s, "b/nested/deep", tag, &[b"x"]);
        }
        push_image(&s, "b", "t", &[b"x"]);
        push_image(&s, "a", "t", &[b"x"]);
        push_blob(&s, "c-blobs-only", b"x");
        s.start_upload("d-upload-only").unwrap();
        assert_eq!(
            s.tags("b/nested/deep").unwrap().unwrap(),
            ["1.0", "V1", "latest", "v2"]
        );
        assert_eq!(
            s.tags("c-blobs-only").unwrap().unwrap(),
            Vec::<String>::new()
        );
        // A directory on the way to a repository is not one.
        assert_eq!(s.tags("b/nested").unwrap(), None);
        assert_eq!(s.tags("nope").unwrap(), None);
        assert_eq!(
            s.repositories().unwrap(),
            ["a", "b", "b/nested/deep", "c-blobs-only"]
        );
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let (_dir, s) = open_default();
        let digest = push_image(&s, "r", "t", &[b"x"]);
        std::fs::write(s.inner.tags_dir("r").join("broken"), b"sha256:nope").unwrap();
        assert!(s.get_manifest("r", "broken").is_err());
        std::fs::write(s.inner.tags_dir("r").join("huge"), vec![b'a'; 10_000]).unwrap();
        assert!(s.get_manifest("r", "huge").is_err());
        std::fs::write(s.inner.revision_link("r", &digest), b"").unwrap();
        assert!(s.get_manifest("r", &digest.to_string()).is_err());
        std::fs::write(s.inner.revision_link("r", &digest), media::OCI_MANIFEST).unwrap();
        std::fs::write(s.inner.blob_path(&digest), b"{\"tampered\":1}").unwrap();
        assert!(s.get_manifest("r", &digest.to_string()).is_err());
        // A referrer entry that is not a descriptor is skipped.
        let subject = Digest::sha256_of(b"s");
        let entry = s
            .inner
            .referrers_dir("r", &subject)
            .join(format!("sha256-{}", digest.hex()));
        std::fs::create_dir_all(entry.parent().unwrap()).unwrap();
        std::fs::write(&entry, b"[1,2").unwrap();
        assert!(s.referrers("r", &subject, None).unwrap().is_empty());
        // Deleting still works, and takes the broken entry with it.
        s.delete_manifest("r", &digest.to_string()).unwrap();
        assert!(!entry.exists());
    }
}
