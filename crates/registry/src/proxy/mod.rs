//! The pull-through cache: repositories mirrored from one or more upstream registries on
//! demand, and served from the cache when the upstream is down.
//!
//! Routing: an upstream with `prefix = "p"` serves the local names `p/...` (asked for
//! upstream without the `p/`); the longest matching prefix wins. Every other name goes to the
//! upstreams without a prefix, tried in order: the first that has the content wins. A name no
//! upstream serves is not mirrored (pushes to mirrored names are refused by the API).
//!
//! Manifests by digest: a cache hit is final (the digest pins the content). By tag: the
//! cached one is served without asking while it is younger than the upstream's `tag_ttl`;
//! after that the upstream is asked with a HEAD first, and the manifest is only downloaded
//! (and stored) when its digest is not cached yet, which spares rate-limited upstreams like
//! Docker Hub. When every upstream that could have it fails (down, timed out, 5xx, refused
//! credentials, sent an invalid manifest), the cached manifest is served however old. When
//! they all answer 404, the tag was removed upstream: the cached tag is removed too and the
//! client gets a 404, so the mirror never resurrects a deleted tag later, when the upstream
//! happens to be down. Concurrent refreshes of one tag may both ask the upstream: manifests
//! are small, and the storage makes the second write of the same tag harmless.
//!
//! The upstream is always asked for every manifest kind (see `upstream_accept`), so the cache
//! holds the same form of a tag whichever client asked first.
//!
//! Blobs: see `blob`.

mod blob;
#[cfg(test)]
mod tests;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use gorae_image::{media, Digest};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

use crate::config::UpstreamConfig;
use crate::error::{ApiError, Error, ErrorCode, Result};
use crate::http::Response;
use crate::names::{self, Reference};
use crate::storage::{Storage, StoredManifest};
use upstream::Upstream;

const DIGEST_HEADER: &str = "docker-content-digest";

pub struct Proxy {
    upstreams: Vec<Upstream>,
    storage: Arc<Storage>,
    /// When each cached (repository, tag) stops being fresh.
    fresh_until: Mutex<HashMap<(String, String), Instant>>,
    inflight: blob::InFlight,
}

/// What one upstream said about a manifest or blob.
enum Answer<T> {
    Found(T),
    NotFound,
}

impl Proxy {
    pub fn new(upstreams: &[UpstreamConfig], storage: Arc<Storage>) -> Result<Proxy> {
        Ok(Proxy {
            upstreams: connect(upstreams)?,
            storage,
            fresh_until: Mutex::new(HashMap::new()),
            inflight: blob::InFlight::default(),
        })
    }

    /// Whether names like `repo` are mirrored (pushes to them are refused).
    pub fn mirrors(&self, repo: &str) -> bool {
        !self.routes(repo).is_empty()
    }

    fn routes<'a>(&'a self, repo: &'a str) -> Vec<(&'a Upstream, &'a str)> {
        routes(&self.upstreams, repo)
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
        let routes = self.routes(repo);
        if routes.is_empty() {
            return self.storage.get_manifest(repo, reference);
        }
        let accept = &upstream_accept(accept);
        match names::parse_reference(reference)? {
            Reference::Digest(_) => {
                if let Some(cached) = self.storage.get_manifest(repo, reference)? {
                    return Ok(Some(cached));
                }
                self.ask_upstreams(&routes, |up, name| {
                    self.download_manifest(up, name, repo, reference, accept)
                })
                .await
            }
            Reference::Tag(tag) => self.manifest_by_tag(&routes, repo, &tag, accept).await,
        }
    }

    async fn manifest_by_tag(
        &self,
        routes: &[(&Upstream, &str)],
        repo: &str,
        tag: &str,
        accept: &str,
    ) -> Result<Option<StoredManifest>> {
        let key = (repo.to_string(), tag.to_string());
        let cached = self.storage.get_manifest(repo, tag)?;
        if cached.is_some() && self.is_fresh(&key) {
            return Ok(cached);
        }
        let (cached_ref, key_ref) = (cached.as_ref(), &key);
        let answer = self
            .ask_upstreams(routes, |up, name| async move {
                let found = self
                    .refresh_tag(up, name, repo, tag, cached_ref, accept)
                    .await?;
                if let Answer::Found(_) = found {
                    self.mark_fresh(key_ref.clone(), up);
                }
                Ok(found)
            })
            .await;
        match (answer, cached) {
            (Ok(Some(manifest)), _) => Ok(Some(manifest)),
            (Ok(None), cached) => {
                self.forget(&key);
                if cached.is_some() {
                    self.drop_cached_tag(repo, tag)?;
                }
                Ok(None)
            }
            (Err(_), Some(stale)) => Ok(Some(stale)),
            (Err(e), None) => Err(e),
        }
    }

    /// Asks each route in turn until one has it. `Ok(None)` only when every one answered
    /// 404; otherwise the first failure.
    async fn ask_upstreams<'a, T, F, Fut>(
        &'a self,
        routes: &[(&'a Upstream, &'a str)],
        ask: F,
    ) -> Result<Option<T>>
    where
        F: Fn(&'a Upstream, &'a str) -> Fut,
        Fut: std::future::Future<Output = Result<Answer<T>>>,
    {
        let mut failure = None;
        for &(upstream, name) in routes {
            match ask(upstream, name).await {
                Ok(Answer::Found(found)) => return Ok(Some(found)),
                Ok(Answer::NotFound) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(None), Err)
    }

    /// Checks a tag upstream with a HEAD when something is cached: the manifest is only
    /// downloaded when the upstream's digest for the tag is not in the cache already.
    async fn refresh_tag(
        &self,
        upstream: &Upstream,
        name: &str,
        repo: &str,
        tag: &str,
        cached: Option<&StoredManifest>,
        accept: &str,
    ) -> Result<Answer<StoredManifest>> {
        if let Some(cached) = cached {
            let tail = format!("manifests/{tag}");
            let what = format!("HEAD {name}:{tag}");
            let Some(response) = upstream.head(name, &tail, Some(accept), &what).await? else {
                return Ok(Answer::NotFound);
            };
            if let Some(digest) = header_digest(&response) {
                if cached.digest == digest {
                    return Ok(Answer::Found(cached.clone()));
                }
                if let Some(known) = self.storage.get_manifest(repo, &digest.to_string())? {
                    self.store_manifest(
                        repo,
                        tag,
                        Some(known.media_type.clone()),
                        known.bytes.to_vec(),
                    )
                    .await?;
                    return Ok(Answer::Found(known));
                }
            }
        }
        self.download_manifest(upstream, name, repo, tag, accept)
            .await
    }

    /// GETs a manifest from the upstream and stores it in the cache under `reference`.
    async fn download_manifest(
        &self,
        upstream: &Upstream,
        name: &str,
        repo: &str,
        reference: &str,
        accept: &str,
    ) -> Result<Answer<StoredManifest>> {
        let separator = if reference.contains(':') { '@' } else { ':' };
        let what = format!("manifest {name}{separator}{reference}");
        let tail = format!("manifests/{reference}");
        let response = upstream
            .request(Method::GET, name, &tail, Some(accept), true)
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Answer::NotFound),
            _ => return Err(upstream.status_error(&what, response).await),
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let announced = header_digest(&response);
        let limit = gorae_image::manifest::MAX_DOCUMENT_SIZE;
        let bytes = upstream::read_limited(response, limit)
            .await
            .map_err(|e| upstream.http_error(&what, &e))?;
        if bytes.len() > limit {
            return Err(upstream.error(&what, &format!("larger than {limit} bytes")));
        }
        if let Some(announced) = announced {
            announced
                .verify(&what, &bytes)
                .map_err(|e| upstream.error(&what, &e.to_string()))?;
        }
        let digest =
            self.store_manifest(repo, reference, content_type, bytes)
                .await
                .map_err(|e| match ApiError::from(e) {
                    // The upstream sent something the registry refuses to store.
                    e @ ApiError {
                        code:
                            ErrorCode::ManifestInvalid
                            | ErrorCode::DigestInvalid
                            | ErrorCode::SizeInvalid,
                        ..
                    } => upstream.error(&what, &e.message),
                    local => Error::Api(local),
                })?;
        match self.storage.get_manifest(repo, &digest.to_string())? {
            Some(stored) => Ok(Answer::Found(stored)),
            None => Err(upstream.error(&what, "the cache lost it right after storing it")),
        }
    }

    /// `cache_manifest` on a blocking thread: it fsyncs.
    async fn store_manifest(
        &self,
        repo: &str,
        reference: &str,
        content_type: Option<String>,
        bytes: Vec<u8>,
    ) -> Result<Digest> {
        let storage = self.storage.clone();
        let (repo, reference) = (repo.to_string(), reference.to_string());
        let put = tokio::task::spawn_blocking(move || {
            storage.cache_manifest(&repo, &reference, content_type.as_deref(), &bytes)
        })
        .await
        .map_err(|e| Error::Other {
            what: "caching a manifest".into(),
            reason: e.to_string(),
        })??;
        Ok(put.digest)
    }

    fn drop_cached_tag(&self, repo: &str, tag: &str) -> Result<()> {
        match self.storage.delete_manifest(repo, tag) {
            Err(Error::Api(e)) if e.code == ErrorCode::ManifestUnknown => Ok(()),
            other => other,
        }
    }

    fn is_fresh(&self, key: &(String, String)) -> bool {
        let fresh = self.fresh_until.lock().unwrap_or_else(|e| e.into_inner());
        fresh.get(key).is_some_and(|until| Instant::now() < *until)
    }

    fn mark_fresh(&self, key: (String, String), upstream: &Upstream) {
        let until = Instant::now() + upstream.tag_ttl;
        let mut fresh = self.fresh_until.lock().unwrap_or_else(|e| e.into_inner());
        fresh.insert(key, until);
    }

    fn forget(&self, key: &(String, String)) {
        let mut fresh = self.fresh_until.lock().unwrap_or_else(|e| e.into_inner());
        fresh.remove(key);
    }

    /// A blob GET (or HEAD when `head`): served from the cache, else streamed from the
    /// upstream to the client while it is stored (and verified) in the cache. None if neither
    /// has it.
    pub async fn blob(&self, repo: &str, digest: &Digest, head: bool) -> Result<Option<Response>> {
        if head {
            self.blob_head(repo, digest).await
        } else {
            self.blob_get(repo, digest).await
        }
    }
}

/// Checks the prefixes (valid names, no two alike) and makes the upstreams' clients.
fn connect(configs: &[UpstreamConfig]) -> Result<Vec<Upstream>> {
    let mut seen_prefixes = Vec::new();
    for config in configs {
        if let Some(prefix) = &config.prefix {
            let invalid = |reason: String| Error::Other {
                what: format!("proxy.upstream {:?} prefix {prefix:?}", config.url),
                reason,
            };
            names::validate_name(prefix).map_err(|e| invalid(e.message))?;
            if seen_prefixes.contains(&prefix) {
                return Err(invalid("another upstream has the same prefix".into()));
            }
            seen_prefixes.push(prefix);
        }
    }
    configs.iter().map(Upstream::new).collect()
}

/// The upstreams to ask for the local name `repo`, in order, each with the name it knows
/// the repository by.
fn routes<'a>(upstreams: &'a [Upstream], repo: &'a str) -> Vec<(&'a Upstream, &'a str)> {
    let prefixed = upstreams
        .iter()
        .filter_map(|u| {
            let rest = repo.strip_prefix(u.prefix.as_deref()?)?.strip_prefix('/')?;
            Some((u, rest))
        })
        .max_by_key(|(u, _)| u.prefix.as_ref().map_or(0, String::len));
    match prefixed {
        Some(route) => vec![route],
        None => upstreams
            .iter()
            .filter(|u| u.prefix.is_none())
            .map(|u| (u, repo))
            .collect(),
    }
}

/// What the upstream is asked for: every manifest kind the registry stores, whatever the
/// client accepts, plus any other types the client names. A client that accepts less must
/// not make the cache store a lesser form of a tag for everyone, nor make the upstream answer
/// 404 for an index it would not accept (which would read as the tag being deleted).
fn upstream_accept(client: Option<&str>) -> String {
    let mut accept = media::MANIFEST_ACCEPT.to_string();
    for item in client.into_iter().flat_map(|c| c.split(',')) {
        let media_type = item.split(';').next().unwrap_or("").trim();
        let known = media::MANIFEST_ACCEPT
            .split(',')
            .any(|m| m.trim() == media_type);
        if !known && media_type.contains('/') && !media_type.contains('*') {
            accept.push_str(", ");
            accept.push_str(media_type);
        }
    }
    accept
}

/// The upstream's Docker-Content-Digest, if it sent a valid one.
fn header_digest(response: &reqwest::Response) -> Option<Digest> {
    response
        .headers()
        .get(DIGEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
