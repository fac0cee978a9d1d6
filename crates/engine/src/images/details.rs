//! What the image endpoints need to know about one image, read from the store: all the
//! records (names) that point at its ID, its manifest and config, its size and creation
//! time, and Docker's views of them (RepoTags, RepoDigests, ImageSummary, ImageInspect).

use std::collections::BTreeMap;

use gorae_image::{Digest, ImageConfig, ImageManifest, ImageRecord, Manifest, Reference, Store};
use serde_json::{json, Value};

use super::time::parse_rfc3339;
use crate::error::{Error, Result};
use crate::types::{ContainerConfig, HealthConfig};

/// One image (one config digest) with every name it has.
pub struct Image {
    pub id: Digest,
    /// The records with this ID: the dangling one, or the named ones.
    pub records: Vec<ImageRecord>,
    pub manifest: ImageManifest,
    pub config: ImageConfig,
    /// Compressed layers plus the config, as stored (what a pull transfers).
    pub size: u64,
    /// Unix seconds of the config's `created`, 0 if it has none.
    pub created: i64,
}

impl Image {
    /// The named records (tags and digest references), without the dangling one.
    pub fn named(&self) -> impl Iterator<Item = (&ImageRecord, Reference)> {
        self.records
            .iter()
            .filter_map(|r| r.reference().map(|reference| (r, reference)))
    }

    /// `busybox:latest`, `127.0.0.1:5000/x:1`: the tag references, as docker prints them.
    pub fn repo_tags(&self) -> Vec<String> {
        self.named()
            .filter(|(_, r)| r.digest.is_none())
            .map(|(_, r)| r.familiar())
            .collect()
    }

    /// `repo@sha256:...` per repository: the digest a registry knows the image by (the
    /// index's if it came through one).
    pub fn repo_digests(&self) -> Vec<String> {
        let mut digests = Vec::new();
        for (record, reference) in self.named() {
            let digest = &record.index.as_ref().unwrap_or(&record.manifest).digest;
            let entry = format!("{}@{digest}", reference.familiar_name());
            if !digests.contains(&entry) {
                digests.push(entry);
            }
        }
        digests
    }

    /// Whether the image has no name at all (Docker's `<none>:<none>`).
    pub fn is_dangling(&self) -> bool {
        self.named().next().is_none()
    }

    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.config.config.as_ref().and_then(|c| c.labels.as_ref())
    }

    /// When a name was last given to it (the newest record).
    pub fn last_tag_time(&self) -> &str {
        self.records
            .iter()
            .map(|r| r.created.as_str())
            .max()
            .unwrap_or_default()
    }

    /// `GET /images/json`'s ImageSummary. `tags`/`digests` are the names to show (the
    /// reference filter narrows them).
    pub fn summary(&self, tags: Vec<String>, digests: Vec<String>, containers: i64) -> Value {
        json!({
            "Id": self.id.to_string(),
            "ParentId": "",
            "RepoTags": tags,
            "RepoDigests": digests,
            "Created": self.created,
            "Size": self.size,
            "SharedSize": -1,
            "Labels": self.labels(),
            "Containers": containers,
        })
    }

    /// `GET /images/{name}/json`'s ImageInspect.
    pub fn inspect(&self) -> Value {
        let c = &self.config;
        let comment = c.history.first().and_then(|h| h.comment.clone());
        let mut value = json!({
            "Id": self.id.to_string(),
            "RepoTags": self.repo_tags(),
            "RepoDigests": self.repo_digests(),
            "Parent": "",
            "Comment": comment.unwrap_or_default(),
            "Created": c.created.clone().unwrap_or_else(|| "1970-01-01T00:00:00Z".into()),
            "DockerVersion": "",
            "Author": c.author.clone().unwrap_or_default(),
            "Config": image_run_config(c),
            "Architecture": c.architecture,
            "Os": c.os,
            "Size": self.size,
            "GraphDriver": {"Name": "overlay2", "Data": {}},
            "RootFS": {
                "Type": "layers",
                "Layers": c.rootfs.diff_ids.iter().map(Digest::to_string).collect::<Vec<_>>(),
            },
            "Metadata": {"LastTagTime": self.last_tag_time()},
        });
        if let Some(variant) = &c.variant {
            value["Variant"] = json!(variant);
        }
        value
    }

    /// `GET /images/{name}/history`: newest first; only the top entry has the image's ID
    /// and tags, the others are `<missing>` (their images were never stored), as docker
    /// shows pulled images.
    pub fn history(&self) -> Value {
        let mut layers = self.manifest.layers.iter().map(|l| l.size);
        let mut entries: Vec<Value> = Vec::new();
        for h in &self.config.history {
            let size = if h.empty_layer {
                0
            } else {
                layers.next().unwrap_or(0)
            };
            let created = h.created.as_deref().and_then(parse_rfc3339).unwrap_or(0);
            entries.push(history_entry(
                created,
                h.created_by.as_deref().unwrap_or_default(),
                size,
                h.comment.as_deref().unwrap_or_default(),
            ));
        }
        if self.config.history.is_empty() {
            for size in layers {
                entries.push(history_entry(self.created, "", size, ""));
            }
        }
        entries.reverse();
        if let Some(top) = entries.first_mut() {
            top["Id"] = json!(self.id.to_string());
            top["Tags"] = json!(self.repo_tags());
        }
        Value::Array(entries)
    }
}

fn history_entry(created: i64, created_by: &str, size: u64, comment: &str) -> Value {
    json!({
        "Id": "<missing>",
        "Created": created,
        "CreatedBy": created_by,
        "Tags": null,
        "Size": size,
        "Comment": comment,
    })
}

/// Inspect's `Config` as API 1.50 gives it: the image config's `config` as the image
/// has it (only the fields it sets; the container-only fields older APIs added are gone).
fn image_run_config(config: &ImageConfig) -> Value {
    config
        .config
        .as_ref()
        .and_then(|c| serde_json::to_value(c).ok())
        .unwrap_or_else(|| json!({}))
}

/// The image config's run defaults in Docker's ContainerConfig shape.
pub fn container_config(config: &ImageConfig) -> ContainerConfig {
    let Some(c) = config.config.clone() else {
        return ContainerConfig::default();
    };
    ContainerConfig {
        user: c.user.unwrap_or_default(),
        exposed_ports: c.exposed_ports,
        env: c.env,
        cmd: c.cmd,
        healthcheck: c.healthcheck.map(|h| HealthConfig {
            test: h.test,
            interval: h.interval.unwrap_or(0),
            timeout: h.timeout.unwrap_or(0),
            retries: h.retries.unwrap_or(0),
            start_period: h.start_period.unwrap_or(0),
            start_interval: h.start_interval.unwrap_or(0),
        }),
        args_escaped: c.args_escaped,
        volumes: c.volumes,
        working_dir: c.working_dir.unwrap_or_default(),
        entrypoint: c.entrypoint,
        on_build: c.on_build,
        labels: c.labels,
        stop_signal: c.stop_signal,
        shell: c.shell,
        ..ContainerConfig::default()
    }
}

/// Every image in the store, one entry per ID.
pub fn load_all(store: &Store) -> Result<Vec<Image>> {
    let mut by_id: BTreeMap<Digest, Vec<ImageRecord>> = BTreeMap::new();
    for record in store.images.list()? {
        by_id.entry(record.id.clone()).or_default().push(record);
    }
    by_id
        .into_values()
        .map(|records| load(store, records))
        .collect()
}

/// The image `name` designates (reference, ID or ID prefix), with all its names.
pub fn load_one(store: &Store, name: &str) -> Result<Image> {
    let found = store
        .images
        .resolve(name)
        .map_err(|e| super::image_error(name, e))?;
    let records = store
        .images
        .list()?
        .into_iter()
        .filter(|r| r.id == found.id)
        .collect();
    load(store, records)
}

fn load(store: &Store, records: Vec<ImageRecord>) -> Result<Image> {
    let Some(first) = records
        .iter()
        .find(|r| !r.is_dangling())
        .or(records.first())
    else {
        return Err(Error::Internal("an image without records".into()));
    };
    let id = first.id.clone();
    let bytes = store.content.read_document(&first.manifest.digest)?;
    let Manifest::Image(manifest) = Manifest::parse(&bytes, Some(&first.manifest.media_type))?.0
    else {
        return Err(Error::Internal(format!(
            "image {id}: manifest {} is an index, not an image manifest",
            first.manifest.digest
        )));
    };
    let raw = store.content.read_document(&id)?;
    let config = ImageConfig::parse(&raw)?;
    let size = manifest.layers.iter().map(|l| l.size).sum::<u64>() + manifest.config.size;
    let created = config
        .created
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(0);
    Ok(Image {
        id,
        records,
        manifest,
        config,
        size,
        created,
    })
}
