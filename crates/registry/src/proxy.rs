//! The pull-through cache: repositories mirrored from one or more upstream registries on
//! demand, and served from the cache when the upstream is down. (proxy helper)

use std::sync::Arc;

use gorae_image::Digest;

use crate::config::UpstreamConfig;
use crate::error::Result;
use crate::http::Response;
use crate::storage::{Storage, StoredManifest};

pub struct Proxy {}

impl Proxy {
    pub fn new(upstreams: &[UpstreamConfig], storage: Arc<Storage>) -> Result<Proxy> {
        let _ = (upstreams, storage);
        todo!("proxy helper")
    }

    /// Whether names like `repo` are mirrored (pushes to them are refused).
    pub fn mirrors(&self, repo: &str) -> bool {
        let _ = repo;
        todo!("proxy helper")
    }

    /// The manifest `reference` (tag or digest) of `repo`: from the cache when it is fresh
    /// (digests always are; tags for the upstream's tag_ttl), else from the upstream (and
    /// cached), else, when the upstream fails, from the cache however old. `accept` is the
    /// client's Accept header, passed on.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: Option<&str>,
    ) -> Result<Option<StoredManifest>> {
        let _ = (repo, reference, accept);
        todo!("proxy helper")
    }

    /// A blob GET (or HEAD when `head`): served from the cache, else streamed from the
    /// upstream to the client while it is stored (and verified) in the cache. None if neither
    /// has it.
    pub async fn blob(&self, repo: &str, digest: &Digest, head: bool) -> Result<Option<Response>> {
        let _ = (repo, digest, head);
        todo!("proxy helper")
    }
}
