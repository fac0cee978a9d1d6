//! Blobs and the per-repository links to them. (storage helper)

use std::fs::File;

use gorae_image::Digest;

use super::Inner;
use crate::error::Result;

pub(crate) fn stat(inner: &Inner, repo: &str, digest: &Digest) -> Result<Option<u64>> {
    let _ = (inner, repo, digest);
    todo!("storage helper")
}

pub(crate) fn open(inner: &Inner, repo: &str, digest: &Digest) -> Result<Option<(File, u64)>> {
    let _ = (inner, repo, digest);
    todo!("storage helper")
}

pub(crate) fn mount(
    inner: &Inner,
    repo: &str,
    from: Option<&str>,
    digest: &Digest,
) -> Result<Option<u64>> {
    let _ = (inner, repo, from, digest);
    todo!("storage helper")
}

pub(crate) fn unlink(inner: &Inner, repo: &str, digest: &Digest) -> Result<bool> {
    let _ = (inner, repo, digest);
    todo!("storage helper")
}
