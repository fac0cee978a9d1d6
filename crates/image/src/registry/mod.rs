//! The registry client: the distribution API (Docker Registry HTTP API v2 / OCI
//! distribution) for pull and push, with anonymous, basic and Bearer-token auth.

pub mod auth;
pub mod progress;

use crate::digest::Digest;
use crate::error::Result;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

pub use progress::ProgressMode;

#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) spoken to over plain http. localhost and 127.0.0.0/8 always
    /// are allowed http.
    pub insecure: Vec<String>,
    pub progress: ProgressMode,
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
    let _ = (store, reference, options);
    todo!("registry helper")
}

/// Pushes the local image `source` to `destination` and returns the manifest digest.
pub async fn push(
    store: &Store,
    source: &str,
    destination: &Reference,
    options: &RegistryOptions,
) -> Result<Digest> {
    let _ = (store, source, destination, options);
    todo!("registry helper")
}
