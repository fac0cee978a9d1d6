//! The registry client: the distribution API (Docker Registry HTTP API v2 / OCI
//! distribution) for pull and push, with anonymous, basic and Bearer-token auth.

pub mod auth;
mod client;
pub mod progress;
mod pull;
mod push;

use crate::digest::Digest;
use crate::error::Result;
use crate::layout::DataRoot;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

pub use auth::{CredentialStore, Credentials};
pub use progress::{ProgressEvent, ProgressMode, ProgressSink};
pub use push::DEFAULT_CHUNK_SIZE;

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) spoken to over plain http. localhost and 127.0.0.0/8 always
    /// are allowed http.
    pub insecure: Vec<String>,
    pub progress: ProgressMode,
    /// Push: blobs larger than this go up in PATCH chunks of this size; smaller ones in one
    /// PUT. None means DEFAULT_CHUNK_SIZE.
    pub chunk_size: Option<u64>,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure: Vec::new(),
            progress: ProgressMode::Auto,
            chunk_size: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    pub registry: RegistryOptions,
    pub platform: Platform,
}

/// Pulls `reference` into the store: manifests, config and layers, each layer unpacked while
/// it downloads. Resumes from whatever an interrupted pull left. Records and returns the
/// image.
pub async fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
) -> Result<ImageRecord> {
    pull::pull(store, reference, options, None).await
}

/// `pull` with `credentials` for the registry instead of the ones `gorae login` saved.
pub async fn pull_as(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    credentials: Option<&Credentials>,
) -> Result<ImageRecord> {
    pull::pull(store, reference, options, credentials).await
}

/// Pushes the local image `source` to `destination` and returns the manifest digest.
pub async fn push(
    store: &Store,
    source: &str,
    destination: &Reference,
    options: &RegistryOptions,
) -> Result<Digest> {
    push::push(store, source, destination, options, None).await
}

/// `push` with `credentials` for the registry instead of the ones `gorae login` saved.
pub async fn push_as(
    store: &Store,
    source: &str,
    destination: &Reference,
    options: &RegistryOptions,
    credentials: Option<&Credentials>,
) -> Result<Digest> {
    push::push(store, source, destination, options, credentials).await
}

/// Checks `credentials` against `registry` (`GET /v2/`, answering its challenge) and, if
/// they work, saves them in the data root's auth.json.
pub async fn login(
    root: &DataRoot,
    registry: &str,
    credentials: &Credentials,
    options: &RegistryOptions,
) -> Result<()> {
    let client = client::Registry::with_credentials(registry, options, Some(credentials.clone()))?;
    let what = "login";
    let url = client.url("/v2/");
    let response = client
        .request(reqwest::Method::GET, &url, &[], what)
        .await?;
    if !response.status().is_success() {
        return Err(client.status_error(what, response).await);
    }
    CredentialStore::new(root).save(registry, credentials)
}

/// Forgets the saved credentials for `registry`; false if there were none.
pub fn logout(root: &DataRoot, registry: &str) -> Result<bool> {
    CredentialStore::new(root).remove(registry)
}
