//! The image service: Docker's image endpoints over gorae-image's store (list, inspect,
//! history, tag, remove, pull and push with Docker's progress JSON, load, save, prune), and
//! what the rest of the engine asks of images (`resolve` for create, `disk_usage` for
//! `/system/df`).
//!
//! It owns no files of its own; the store does. It must not know about containers beyond
//! the "in use" list it is given ([`ImageUser`]). Store work is blocking file I/O and runs
//! in `spawn_blocking`; registry transfers run as tasks that stream their progress.

mod archive;
mod details;
mod events;
mod list;
mod progress;
mod remove;
mod time;
mod transfer;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use gorae_image::registry::Credentials;
use gorae_image::{Digest, ImageConfig, ImageRecord, Platform, Reference, Store};
use serde_json::Value;
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

impl RegistryAuth {
    /// The username and password, if the client sent any. (An identity token is an
    /// OAuth refresh token for Docker Hub's flow, which the registry client does not speak.)
    fn credentials(&self) -> Option<Credentials> {
        (!self.username.is_empty()).then(|| Credentials {
            username: self.username.clone(),
            password: self.password.clone(),
        })
    }
}

/// A container's use of an image, for the removal and prune rules and for df's counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageUse {
    /// The image ID, `sha256:<hex>` or bare hex.
    pub image_id: String,
    pub container_id: String,
    pub running: bool,
}

/// What the service needs to know of a container using an image. A bare `String` is an
/// image ID whose container is not named and counts as stopped; prefer [`ImageUse`], which
/// lets the messages name the container and running containers block removal.
pub trait ImageUser: Sync {
    fn image_id(&self) -> &str;
    fn container_id(&self) -> &str {
        ""
    }
    fn running(&self) -> bool {
        false
    }
}

impl ImageUser for ImageUse {
    fn image_id(&self) -> &str {
        &self.image_id
    }
    fn container_id(&self) -> &str {
        &self.container_id
    }
    fn running(&self) -> bool {
        self.running
    }
}

impl ImageUser for String {
    fn image_id(&self) -> &str {
        self
    }
}

/// An owned, normalised copy of an [`ImageUser`] for the blocking tasks.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    image_hex: String,
    container_id: String,
    running: bool,
}

fn uses(in_use: &[impl ImageUser]) -> Vec<Use> {
    in_use
        .iter()
        .map(|u| Use {
            image_hex: u.image_id().trim_start_matches("sha256:").to_string(),
            container_id: u.container_id().to_string(),
            running: u.running(),
        })
        .collect()
}

/// `GET /system/df`'s image part.
#[derive(Debug, Clone, Default)]
pub struct DiskUsage {
    /// Bytes of every blob in the content store (layers, configs, manifests).
    pub layers_size: u64,
    /// ImageSummary objects with `SharedSize` and `Containers` filled in.
    pub images: Vec<Value>,
}

pub struct ImageService {
    store: Arc<Store>,
    /// One pull at a time per repository: two pulls writing the same layer would collide
    /// on its ingest (the store refuses a second writer); the second one waits and then
    /// finds the layers there.
    pulling: std::sync::Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: events::Events,
    /// Registries (`host[:port]`) spoken to over plain http besides localhost/127.0.0.0/8.
    insecure: std::sync::RwLock<Vec<String>>,
}

impl ImageService {
    pub fn new(store: Arc<Store>) -> ImageService {
        ImageService {
            store,
            pulling: Default::default(),
            events: Default::default(),
            insecure: Default::default(),
        }
    }

    /// The daemon's `--insecure-registry` hosts (`host[:port]`): pulls and pushes reach them
    /// over plain http. localhost and 127.0.0.0/8 always are.
    pub fn set_insecure_registries(&self, hosts: Vec<String>) {
        *self.insecure.write().unwrap_or_else(|e| e.into_inner()) = hosts;
    }

    /// What a pull or push needs besides its image.
    fn transfer(&self, auth: Option<RegistryAuth>) -> transfer::Transfer {
        let insecure = self.insecure.read().unwrap_or_else(|e| e.into_inner());
        transfer::Transfer {
            store: self.store.clone(),
            options: gorae_image::registry::RegistryOptions {
                insecure: insecure.clone(),
                ..Default::default()
            },
            credentials: auth.as_ref().and_then(RegistryAuth::credentials),
            events: self.events.clone(),
        }
    }

    /// Where image events (pull, push, tag, untag, delete, import, load, save, prune) go:
    /// the engine's event bus. Only the first call counts; before it, events are dropped.
    pub fn set_event_sink(&self, sink: impl Fn(crate::types::Event) + Send + Sync + 'static) {
        self.events.install(sink);
    }

    fn pull_lock(&self, reference: &Reference) -> Arc<tokio::sync::Mutex<()>> {
        let mut pulling = self.pulling.lock().unwrap_or_else(|e| e.into_inner());
        // Locks nobody holds or waits for are dropped, so the map stays small.
        pulling.retain(|_, lock| Arc::strong_count(lock) > 1);
        pulling.entry(reference.name()).or_default().clone()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// `GET /images/json`: Docker's ImageSummary objects, newest first. `all` (intermediate
    /// images) and `digests` change nothing: gorae has no intermediate images, and
    /// RepoDigests are always there.
    pub async fn list(
        &self,
        _all: bool,
        _digests: bool,
        filters: Filters,
    ) -> Result<Vec<serde_json::Value>> {
        blocking(&self.store, move |s| {
            list::list(s, &filters, &BTreeMap::new())
        })
        .await
    }

    /// `GET /images/{name}/json`.
    pub async fn inspect(&self, name: &str) -> Result<serde_json::Value> {
        let name = name.to_string();
        blocking(&self.store, move |s| {
            Ok(details::load_one(s, &name)?.inspect())
        })
        .await
    }

    /// `GET /images/{name}/history`.
    pub async fn history(&self, name: &str) -> Result<serde_json::Value> {
        let name = name.to_string();
        blocking(&self.store, move |s| {
            Ok(details::load_one(s, &name)?.history())
        })
        .await
    }

    /// The image `name` designates (a reference, an ID or an unambiguous ID prefix) and its
    /// config: the ID is `record.id`, the layers to stack are `config.rootfs.diff_ids`
    /// (lowest first) and the run defaults are `config.config` (see also
    /// [`ImageService::container_config`] for them in Docker's shape). `NotFound` with
    /// Docker's "No such image: busybox:latest".
    pub async fn resolve(&self, name: &str) -> Result<(ImageRecord, ImageConfig)> {
        let name = name.to_string();
        blocking(&self.store, move |s| {
            let record = s.images.resolve(&name).map_err(|e| image_error(&name, e))?;
            let config = ImageConfig::parse(&s.content.read_document(&record.id)?)?;
            Ok((record, config))
        })
        .await
    }

    /// An image config's run defaults in Docker's ContainerConfig shape (what image
    /// inspect shows as `Config`).
    pub fn container_config(config: &ImageConfig) -> crate::types::ContainerConfig {
        details::container_config(config)
    }

    /// `POST /images/{name}/tag?repo=&tag=` (tag defaults to "latest").
    pub async fn tag(&self, name: &str, repo: &str, tag: Option<&str>) -> Result<()> {
        let target = tag_target(repo, tag)?;
        let name = name.to_string();
        let events = self.events.clone();
        blocking(&self.store, move |s| {
            s.images
                .tag(&name, &target)
                .map_err(|e| image_error(&name, e))?;
            let id = s.images.resolve(&target.to_string())?.id;
            events.emit("tag", &id.to_string(), &target.familiar());
            Ok(())
        })
        .await
    }

    /// `DELETE /images/{name}`: `[{"Untagged": ...}, {"Deleted": ...}]`, with Docker's
    /// conflict rules over the containers in `in_use`. Then the blobs and layers nothing
    /// needs are collected, unless a pull or load is running (the next removal or prune
    /// collects them).
    pub async fn remove(
        &self,
        name: &str,
        force: bool,
        _noprune: bool,
        in_use: &[impl ImageUser],
    ) -> Result<Vec<serde_json::Value>> {
        let name = name.to_string();
        let in_use = uses(in_use);
        let events = self.events.clone();
        blocking(&self.store, move |s| {
            let out = remove::remove(s, &name, force, &in_use, &events)?;
            // The removal stands even if collection fails (an unreadable image elsewhere
            // stops it); the garbage waits for the next prune, which reports the error.
            let _ = gorae_image::gc::try_collect(s);
            Ok(out)
        })
        .await
    }

    /// `POST /images/create?fromImage=&tag=&platform=`: progress messages as Docker sends
    /// them, ending with the Status line or an error message.
    pub async fn pull(
        &self,
        from_image: &str,
        tag: Option<&str>,
        platform: Option<&str>,
        auth: Option<RegistryAuth>,
    ) -> Result<mpsc::Receiver<serde_json::Value>> {
        let reference = pull_reference(from_image, tag)?;
        let platform = match platform.filter(|p| !p.is_empty()) {
            Some(p) => p
                .parse::<Platform>()
                .map_err(|e| Error::InvalidParameter(e.to_string()))?,
            None => Platform::host(),
        };
        let turn = self.pull_lock(&reference).lock_owned().await;
        transfer::pull(self.transfer(auth), reference, platform, turn).await
    }

    /// `POST /images/{name}/push?tag=`: without a tag (in `name` or `tag`), every local tag
    /// of the repository.
    pub async fn push(
        &self,
        name: &str,
        tag: Option<&str>,
        auth: Option<RegistryAuth>,
    ) -> Result<mpsc::Receiver<serde_json::Value>> {
        let mut reference: Reference = name.parse().map_err(|e| image_error(name, e))?;
        if let Some(tag) = tag.filter(|t| !t.is_empty()) {
            reference.tag = Some(checked_tag(tag)?);
        }
        let repository = reference.name();
        let targets = blocking(&self.store, move |s| transfer::push_targets(s, &reference)).await?;
        Ok(transfer::push(self.transfer(auth), repository, targets))
    }

    /// `POST /images/load`: the tarball, spooled to a file by the API first.
    pub async fn load(&self, tarball: PathBuf) -> Result<Vec<serde_json::Value>> {
        let events = self.events.clone();
        blocking(&self.store, move |s| archive::load(s, &tarball, &events)).await
    }

    /// `POST /images/create?fromSrc=-&repo=&tag=&changes=&message=` (`docker import`):
    /// the rootfs tarball, spooled to a file by the API first. `repo` may carry the tag;
    /// without `repo` the image is dangling. `changes` are Dockerfile instructions (CMD,
    /// ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL, VOLUME); a bad one is a
    /// 400 before anything is stored.
    pub async fn import(
        &self,
        tarball: PathBuf,
        repo: Option<&str>,
        tag: Option<&str>,
        changes: Vec<String>,
        message: Option<String>,
    ) -> Result<Vec<serde_json::Value>> {
        let reference = match repo.filter(|r| !r.is_empty()) {
            Some(repo) => Some(tag_target(repo, tag)?),
            None => None,
        };
        let events = self.events.clone();
        blocking(&self.store, move |s| {
            archive::import(s, &tarball, reference, changes, message, &events)
        })
        .await
    }

    /// `GET /images/get?names=` and `GET /images/{name}/get`: a docker-save tar stream.
    /// Unknown names fail before anything is sent.
    pub async fn save(&self, names: Vec<String>) -> Result<mpsc::Receiver<Bytes>> {
        if names.is_empty() {
            return Err(Error::InvalidParameter("no image names given".into()));
        }
        let checked = names.clone();
        let events = self.events.clone();
        blocking(&self.store, move |s| {
            for name in &checked {
                let record = s.images.resolve(name).map_err(|e| image_error(name, e))?;
                events.emit("save", &record.id.to_string(), name);
            }
            Ok(())
        })
        .await?;
        Ok(archive::save(self.store.clone(), names))
    }

    /// `POST /images/prune`: `{"ImagesDeleted": [...], "SpaceReclaimed": N}`.
    pub async fn prune(
        &self,
        filters: Filters,
        in_use: &[impl ImageUser],
    ) -> Result<serde_json::Value> {
        let in_use = uses(in_use);
        let events = self.events.clone();
        blocking(&self.store, move |s| {
            remove::prune(s, &filters, &in_use, &events)
        })
        .await
    }

    /// The images part of `GET /system/df`.
    pub async fn disk_usage(&self, in_use: &[impl ImageUser]) -> Result<DiskUsage> {
        let in_use = uses(in_use);
        blocking(&self.store, move |s| list::disk_usage(s, &in_use)).await
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(|e| Error::Internal(format!("image store task failed: {e}")))?
}

/// The first 12 hex digits, as docker shortens IDs.
pub(crate) fn short(hex: &str) -> &str {
    let hex = hex.trim_start_matches("sha256:");
    &hex[..hex.len().min(12)]
}

/// A store error about `name` in Docker's words and status.
pub(crate) fn image_error(name: &str, e: gorae_image::Error) -> Error {
    match e {
        gorae_image::Error::ImageNotFound(_) => {
            Error::NotFound(format!("No such image: {}", display_name(name)))
        }
        gorae_image::Error::InvalidReference { value, reason } => {
            Error::InvalidParameter(format!("invalid reference format: {reason} ({value:?})"))
        }
        gorae_image::Error::ImageConflict { .. } => Error::Conflict(e.to_string()),
        e => Error::Image(e),
    }
}

/// `busybox` → `busybox:latest`, as docker names what it did not find; IDs as given.
fn display_name(name: &str) -> String {
    if name.parse::<Digest>().is_ok() {
        return name.to_string();
    }
    match name.parse::<Reference>() {
        Ok(r) => r.with_default_tag().familiar(),
        Err(_) => name.to_string(),
    }
}

fn checked_tag(tag: &str) -> Result<String> {
    if !gorae_image::reference::valid_tag(tag) {
        return Err(Error::InvalidParameter(format!(
            "invalid tag format: {tag:?}"
        )));
    }
    Ok(tag.to_string())
}

/// The tag target of `POST /images/{name}/tag`.
fn tag_target(repo: &str, tag: Option<&str>) -> Result<Reference> {
    let mut target: Reference = repo.parse().map_err(|e| image_error(repo, e))?;
    if target.digest.is_some() {
        return Err(Error::InvalidParameter(
            "refusing to create a tag with a digest reference".into(),
        ));
    }
    if let Some(tag) = tag.filter(|t| !t.is_empty()) {
        target.tag = Some(checked_tag(tag)?);
    }
    Ok(target.with_default_tag())
}

/// `fromImage` and `tag` of a pull: the tag may also be a digest.
fn pull_reference(from_image: &str, tag: Option<&str>) -> Result<Reference> {
    let mut reference: Reference = from_image.parse().map_err(|e| image_error(from_image, e))?;
    match tag.filter(|t| !t.is_empty()) {
        Some(t) if t.contains(':') => {
            reference.digest = Some(t.parse().map_err(|e| image_error(t, e))?);
            reference.tag = None;
        }
        Some(t) => reference.tag = Some(checked_tag(t)?),
        None => {}
    }
    Ok(reference.with_default_tag())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_references() {
        let r = pull_reference("busybox", None).unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let r = pull_reference("127.0.0.1:5000/x", Some("1")).unwrap();
        assert_eq!(r.familiar(), "127.0.0.1:5000/x:1");
        let digest = format!("sha256:{}", "a".repeat(64));
        let r = pull_reference("x", Some(&digest)).unwrap();
        assert_eq!(r.digest.unwrap().to_string(), digest);
        assert!(pull_reference("UPPER", None).unwrap_err().status() == 400);
        assert!(pull_reference("x", Some("bad tag")).unwrap_err().status() == 400);
    }

    #[test]
    fn tag_targets() {
        assert_eq!(tag_target("x", None).unwrap().familiar(), "x:latest");
        assert_eq!(tag_target("x", Some("2")).unwrap().familiar(), "x:2");
        let digest = format!("x@sha256:{}", "a".repeat(64));
        assert_eq!(tag_target(&digest, None).unwrap_err().status(), 400);
    }

    #[test]
    fn not_found_names_are_docker_s() {
        let e = image_error("busybox", gorae_image::Error::ImageNotFound("x".into()));
        assert_eq!(e.to_string(), "No such image: busybox:latest");
        assert_eq!(e.status(), 404);
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
    }
}
