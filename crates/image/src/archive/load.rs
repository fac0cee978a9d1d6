//! `gorae load`: an OCI layout tarball, a `docker save` tarball of any age, into the store.
//!
//! The tarball is staged in one pass (see `staged`), then the images it holds are found:
//! from index.json when there is one (OCI archives and docker 25+; manifests and digests kept
//! as they are), else from manifest.json (older docker: uncompressed `<id>/layer.tar` files,
//! for which an OCI manifest is written). Every image's blobs must be present and its layers
//! match the config's diff IDs; layers are unpacked; only then are the blobs published and,
//! last, the image records written. A refused archive leaves no record and no blob (layers
//! it unpacked before the failure are complete and verified; garbage collection takes them).

use std::collections::BTreeMap;
use std::io::Read;

use serde::Deserialize;

use crate::archive::staged::Staged;
use crate::archive::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, ImageConfig, ImageIndex, ImageManifest, Manifest};
use crate::media::{self, Compression};
use crate::platform::Platform;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

/// An image found in the archive, checked and ready to record.
struct Found {
    manifest: Descriptor,
    index: Option<Descriptor>,
    parsed: ImageManifest,
    config: ImageConfig,
    /// Manifest bytes written by us (old docker archives have none).
    generated: Option<Vec<u8>>,
    names: Vec<Reference>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn load(store: &Store, input: &mut dyn Read) -> Result<Vec<ImageRecord>> {
    let _lock = store.lock_shared()?;
    let mut staged = Staged::read(&store.content, input)?;
    let docker_entries = docker_entries(&staged)?;
    let images = if let Some(index) = staged.metadata("index.json") {
        oci_images(&staged, index, &docker_entries)?
    } else if !docker_entries.is_empty() {
        legacy_images(&staged, &docker_entries)?
    } else {
        return Err(Error::InvalidDocument {
            what: "image archive".into(),
            reason: "neither index.json nor manifest.json: not a docker or OCI archive".into(),
        });
    };
    if images.is_empty() {
        return Err(Error::InvalidDocument {
            what: "image archive".into(),
            reason: "it lists no image".into(),
        });
    }
    for image in &images {
        unpack_layers(store, &staged, image)?;
    }
    let mut records = Vec::new();
    for image in images {
        publish(store, &mut staged, &image)?;
        records.extend(records_for(image));
    }
    store.images.put_all(records.clone())?;
    Ok(records)
}

fn docker_entries(staged: &Staged) -> Result<Vec<DockerEntry>> {
    let Some(bytes) = staged.metadata("manifest.json") else {
        return Ok(Vec::new());
    };
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidDocument {
        what: "manifest.json of the archive".into(),
        reason: e.to_string(),
    })
}

fn oci_images(staged: &Staged, index: &[u8], docker: &[DockerEntry]) -> Result<Vec<Found>> {
    let index = parse_index(index, None, "index.json of the archive")?;
    let mut images: Vec<Found> = Vec::new();
    for entry in &index.manifests {
        let names = names_from_annotations(entry)?;
        if let Some(found) = images.iter_mut().find(|f| {
            f.manifest.digest == entry.digest
                || f.index.as_ref().map(|i| &i.digest) == Some(&entry.digest)
        }) {
            add_names(&mut found.names, names);
            continue;
        }
        let (manifest, outer) = choose_manifest(staged, entry)?;
        let mut found = check_image(staged, manifest, outer, None)?;
        add_names(&mut found.names, names);
        images.push(found);
    }
    for entry in docker {
        let config = staged.digest_of(&entry.config, "manifest.json")?;
        if let Some(found) = images.iter_mut().find(|f| f.parsed.config.digest == config) {
            add_names(&mut found.names, parse_tags(entry)?);
        }
    }
    Ok(images)
}

/// The image manifest an index.json entry stands for: itself, or the host platform's
/// manifest if it is an index (then the index is returned too).
fn choose_manifest(
    staged: &Staged,
    entry: &Descriptor,
) -> Result<(Descriptor, Option<Descriptor>)> {
    let plain = |d: &Descriptor| Descriptor::new(&d.media_type, d.digest.clone(), d.size);
    if !media::is_index(&entry.media_type) {
        return Ok((plain(entry), None));
    }
    let bytes = staged.document(&entry.digest)?;
    let child = parse_index(&bytes, Some(&entry.media_type), &entry.digest.to_string())?;
    let host = Platform::host();
    let chosen = host
        .select(&child.manifests)
        .filter(|d| media::is_image_manifest(&d.media_type))
        .ok_or_else(|| Error::NoMatchingPlatform {
            reference: format!("index {} in the archive", entry.digest),
            platform: host.to_string(),
        })?;
    Ok((plain(chosen), Some(plain(entry))))
}

/// Parses the manifest and config and checks every blob is there with the declared size.
fn check_image(
    staged: &Staged,
    manifest: Descriptor,
    index: Option<Descriptor>,
    generated: Option<Vec<u8>>,
) -> Result<Found> {
    let bytes = match &generated {
        Some(bytes) => bytes.clone(),
        None => staged.document(&manifest.digest)?,
    };
    let Manifest::Image(parsed) = Manifest::parse(&bytes, Some(&manifest.media_type))?.0 else {
        return Err(not_a(&manifest.digest.to_string(), "an image manifest"));
    };
    for blob in std::iter::once(&parsed.config).chain(&parsed.layers) {
        let size = staged.size(&blob.digest)?;
        if size != blob.size {
            return Err(Error::SizeMismatch {
                what: format!("blob {} of manifest {}", blob.digest, manifest.digest),
                expected: blob.size,
                actual: size,
            });
        }
    }
    let config = ImageConfig::parse(&staged.document(&parsed.config.digest)?)?;
    if config.rootfs.diff_ids.len() != parsed.layers.len() {
        return Err(Error::InvalidDocument {
            what: format!("image {} in the archive", parsed.config.digest),
            reason: format!(
                "{} layers but {} diff IDs in its config",
                parsed.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    Ok(Found {
        manifest,
        index,
        parsed,
        config,
        generated,
        names: Vec::new(),
    })
}

/// Images of an archive with manifest.json only: an OCI manifest is made for each.
fn legacy_images(staged: &Staged, entries: &[DockerEntry]) -> Result<Vec<Found>> {
    let mut images = Vec::new();
    for entry in entries {
        let config = staged.digest_of(&entry.config, "manifest.json")?;
        let mut layers = Vec::new();
        for path in &entry.layers {
            let digest = staged.digest_of(path, "manifest.json")?;
            let mut head = [0u8; 4];
            let n = staged.open(&digest)?.read(&mut head).unwrap_or(0);
            let media_type = match Compression::sniff(&head[..n]) {
                Compression::None => media::OCI_LAYER_TAR,
                Compression::Gzip => media::OCI_LAYER_GZIP,
                Compression::Zstd => media::OCI_LAYER_ZSTD,
            };
            layers.push(Descriptor::new(
                media_type,
                digest.clone(),
                staged.size(&digest)?,
            ));
        }
        let manifest = ImageManifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.into()),
            artifact_type: None,
            config: Descriptor::new(media::OCI_CONFIG, config.clone(), staged.size(&config)?),
            layers,
            subject: None,
            annotations: None,
        };
        let bytes = serde_json::to_vec(&manifest).map_err(|e| Error::InvalidDocument {
            what: format!("manifest for {}", entry.config),
            reason: e.to_string(),
        })?;
        let descriptor = Descriptor::new(
            media::OCI_MANIFEST,
            Digest::sha256_of(&bytes),
            bytes.len() as u64,
        );
        let mut found = check_image(staged, descriptor, None, Some(bytes))?;
        found.names = parse_tags(entry)?;
        images.push(found);
    }
    Ok(images)
}

fn unpack_layers(store: &Store, staged: &Staged, image: &Found) -> Result<()> {
    for (layer, diff_id) in image
        .parsed
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
    {
        if store.layers.has(diff_id) {
            continue;
        }
        let compression = Compression::of_layer_media_type(&layer.media_type).ok_or_else(|| {
            Error::UnsupportedMediaType {
                what: format!("layer {}", layer.digest),
                media_type: layer.media_type.clone(),
            }
        })?;
        let mut blob = staged.open(&layer.digest)?;
        store.layers.unpack(
            &mut blob,
            compression,
            Some(diff_id),
            &layer.digest.to_string(),
        )?;
    }
    Ok(())
}

fn publish(store: &Store, staged: &mut Staged, image: &Found) -> Result<()> {
    let blobs = image
        .index
        .iter()
        .map(|i| &i.digest)
        .chain(std::iter::once(&image.parsed.config.digest))
        .chain(image.parsed.layers.iter().map(|l| &l.digest));
    for digest in blobs {
        staged.publish(digest)?;
    }
    match &image.generated {
        Some(bytes) => store.content.put_verified(&image.manifest.digest, bytes),
        None => staged.publish(&image.manifest.digest),
    }
}

fn records_for(image: Found) -> Vec<ImageRecord> {
    let id = image.parsed.config.digest.clone();
    if image.names.is_empty() {
        return vec![ImageRecord::new(None, image.manifest, image.index, id)];
    }
    image
        .names
        .iter()
        .map(|name| {
            ImageRecord::new(
                Some(name),
                image.manifest.clone(),
                image.index.clone(),
                id.clone(),
            )
        })
        .collect()
}

/// Names from an index.json entry: containerd's full name, else an OCI ref.name that is a
/// full reference. A bare ref.name (`latest`) is a tag without a repository: no name.
fn names_from_annotations(entry: &Descriptor) -> Result<Vec<Reference>> {
    let empty = BTreeMap::new();
    let annotations = entry.annotations.as_ref().unwrap_or(&empty);
    if let Some(name) = annotations.get(ANNOTATION_IMAGE_NAME) {
        return Ok(vec![name.parse()?]);
    }
    match annotations.get(ANNOTATION_REF_NAME) {
        Some(name) if name.contains(['/', ':']) => Ok(vec![name.parse()?]),
        _ => Ok(Vec::new()),
    }
}

fn parse_tags(entry: &DockerEntry) -> Result<Vec<Reference>> {
    let tags = entry.repo_tags.iter().flatten();
    tags.map(|t| t.parse::<Reference>().map(Reference::with_default_tag))
        .collect()
}

fn add_names(names: &mut Vec<Reference>, more: Vec<Reference>) {
    for name in more {
        let name = name.with_default_tag();
        if !names.contains(&name) {
            names.push(name);
        }
    }
}

fn parse_index(bytes: &[u8], media_type: Option<&str>, what: &str) -> Result<ImageIndex> {
    match Manifest::parse(bytes, media_type)?.0 {
        Manifest::Index(index) => Ok(index),
        Manifest::Image(_) => Err(not_a(what, "an image index")),
    }
}

fn not_a(what: &str, kind: &str) -> Error {
    Error::InvalidDocument {
        what: what.to_string(),
        reason: format!("is not {kind}"),
    }
}
