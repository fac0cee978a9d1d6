//! The image service: Docker's image endpoints over gorae-image's store (list, inspect,
//! history, tag, remove, pull and push with Docker's progress JSON, load, save, prune).
//!
//! It owns no files of its own; the store does. It must not know about containers beyond
//! the "in use" check it is given.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use gorae_image::Store;
use tokio::sync::mpsc;

use crate::engine::Filters;
use crate::error::{Error, Result};

/// Credentials from the `X-Registry-Auth` header (base64url JSON), decoded.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    pub identitytoken: String,
    pub serveraddress: String,
}

pub struct ImageService {
    store: Arc<Store>,
}

impl ImageService {
    pub fn new(store: Arc<Store>) -> ImageService {
        ImageService { store }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// `GET /images/json`: Docker's ImageSummary objects.
    pub async fn list(
        &self,
        _all: bool,
        _digests: bool,
        _filters: Filters,
    ) -> Result<Vec<serde_json::Value>> {
        Err(not_yet("image list"))
    }

    /// `GET /images/{name}/json`.
    pub async fn inspect(&self, _name: &str) -> Result<serde_json::Value> {
        Err(not_yet("image inspect"))
    }

    /// `GET /images/{name}/history`.
    pub async fn history(&self, _name: &str) -> Result<serde_json::Value> {
        Err(not_yet("image history"))
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn tag(&self, _name: &str, _repo: &str, _tag: Option<&str>) -> Result<()> {
        Err(not_yet("image tag"))
    }

    /// `DELETE /images/{name}`: `[{"Untagged": ...}, {"Deleted": ...}]`. `in_use` names the
    /// image IDs containers use (Docker's conflict rules).
    pub async fn remove(
        &self,
        _name: &str,
        _force: bool,
        _noprune: bool,
        _in_use: &[String],
    ) -> Result<Vec<serde_json::Value>> {
        Err(not_yet("image remove"))
    }

    /// `POST /images/create?fromImage=&tag=&platform=`: progress messages as Docker sends them.
    pub async fn pull(
        &self,
        _from_image: &str,
        _tag: Option<&str>,
        _platform: Option<&str>,
        _auth: Option<RegistryAuth>,
    ) -> Result<mpsc::Receiver<serde_json::Value>> {
        Err(not_yet("pull"))
    }

    /// `POST /images/{name}/push?tag=`.
    pub async fn push(
        &self,
        _name: &str,
        _tag: Option<&str>,
        _auth: Option<RegistryAuth>,
    ) -> Result<mpsc::Receiver<serde_json::Value>> {
        Err(not_yet("push"))
    }

    /// `POST /images/load`: the tarball, spooled to a file by the API first.
    pub async fn load(&self, _tarball: PathBuf) -> Result<Vec<serde_json::Value>> {
        Err(not_yet("load"))
    }

    /// `GET /images/get?names=` and `GET /images/{name}/get`: a docker-save tar stream.
    pub async fn save(&self, _names: Vec<String>) -> Result<mpsc::Receiver<Bytes>> {
        Err(not_yet("save"))
    }

    /// `POST /images/prune`: `{"ImagesDeleted": [...], "SpaceReclaimed": N}`.
    pub async fn prune(&self, _filters: Filters, _in_use: &[String]) -> Result<serde_json::Value> {
        Err(not_yet("image prune"))
    }
}

fn not_yet(what: &str) -> Error {
    Error::NotImplemented(format!("{what} is not implemented yet"))
}
