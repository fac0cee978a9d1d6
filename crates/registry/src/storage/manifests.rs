//! Manifests, tags, catalog and referrers. (storage helper)

use gorae_image::{Descriptor, Digest};

use super::{Inner, PutManifest, StoredManifest};
use crate::error::Result;

pub(crate) fn put(
    inner: &Inner,
    repo: &str,
    reference: &str,
    content_type: Option<&str>,
    bytes: &[u8],
    require_references: bool,
) -> Result<PutManifest> {
    let _ = (
        inner,
        repo,
        reference,
        content_type,
        bytes,
        require_references,
    );
    todo!("storage helper")
}

pub(crate) fn get(inner: &Inner, repo: &str, reference: &str) -> Result<Option<StoredManifest>> {
    let _ = (inner, repo, reference);
    todo!("storage helper")
}

pub(crate) fn delete(inner: &Inner, repo: &str, reference: &str) -> Result<()> {
    let _ = (inner, repo, reference);
    todo!("storage helper")
}

pub(crate) fn tags(inner: &Inner, repo: &str) -> Result<Option<Vec<String>>> {
    let _ = (inner, repo);
    todo!("storage helper")
}

pub(crate) fn repositories(inner: &Inner) -> Result<Vec<String>> {
    let _ = inner;
    todo!("storage helper")
}

pub(crate) fn referrers(
    inner: &Inner,
    repo: &str,
    subject: &Digest,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    let _ = (inner, repo, subject, artifact_type);
    todo!("storage helper")
}
