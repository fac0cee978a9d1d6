//! `gorae save`: images as one tarball, streamed blob by blob.
//!
//! Both formats are an OCI image layout (oci-layout, index.json, blobs/<alg>/<hex>) holding
//! the blobs exactly as stored, so every digest stays valid. The Docker format adds what
//! `docker save` (25 and later) adds for older loaders: manifest.json and repositories.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use serde::Serialize;

use crate::archive::{blob_path, SaveFormat, ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
use crate::digest::{Digest, HashingReader};
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Descriptor, ImageIndex, ImageManifest, Manifest};
use crate::media;
use crate::reference::Reference;
use crate::store::{ImageRecord, Store};

/// One image to save and the names it is saved under.
struct Saved {
    record: ImageRecord,
    manifest: ImageManifest,
    tags: Vec<Reference>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

pub(super) fn save(
    store: &Store,
    names: &[String],
    format: SaveFormat,
    out: &mut dyn Write,
) -> Result<()> {
    let _lock = store.lock_shared()?;
    let images = collect_images(store, names)?;
    let mut tar = tar::Builder::new(out);
    let mut written = BTreeSet::new();
    for image in &images {
        let blobs = std::iter::once(&image.record.manifest.digest)
            .chain(std::iter::once(&image.manifest.config.digest))
            .chain(image.manifest.layers.iter().map(|l| &l.digest));
        for digest in blobs {
            if written.insert(digest.clone()) {
                append_blob(&mut tar, store, digest)?;
            }
        }
    }
    append_json(
        &mut tar,
        "oci-layout",
        &serde_json::json!({"imageLayoutVersion": "1.0.0"}),
    )?;
    append_json(&mut tar, "index.json", &index_json(&images))?;
    if format == SaveFormat::Docker {
        append_json(&mut tar, "manifest.json", &docker_manifest_json(&images))?;
        append_json(&mut tar, "repositories", &repositories_json(&images))?;
    }
    tar.into_inner()
        .and_then(|out| out.flush())
        .map_err(|e| Error::io("<archive output>", e))
}

/// Resolves every name; names of one image are grouped into one entry, as docker does.
fn collect_images(store: &Store, names: &[String]) -> Result<Vec<Saved>> {
    let mut images: Vec<Saved> = Vec::new();
    for name in names {
        let record = store.images.resolve(name)?;
        let tag = requested_tag(name, &record);
        if let Some(saved) = images
            .iter_mut()
            .find(|s| s.record.manifest.digest == record.manifest.digest)
        {
            saved.tags.extend(tag.filter(|t| !saved.tags.contains(t)));
            continue;
        }
        let bytes = store.content.read_document(&record.manifest.digest)?;
        let Manifest::Image(manifest) =
            Manifest::parse(&bytes, Some(&record.manifest.media_type))?.0
        else {
            return Err(Error::InvalidDocument {
                what: format!("manifest {} of {name}", record.manifest.digest),
                reason: "is an index, not an image manifest".into(),
            });
        };
        images.push(Saved {
            record,
            manifest,
            tags: tag.into_iter().collect(),
        });
    }
    Ok(images)
}

/// The name an image is saved under: the tag the user named it by; none if it was named
/// by ID or digest (docker saves those untagged too).
fn requested_tag(name: &str, record: &ImageRecord) -> Option<Reference> {
    let reference = name.parse::<Reference>().ok()?.with_default_tag();
    (reference.digest.is_none() && reference.to_string() == record.name).then_some(reference)
}

fn append_blob<W: Write>(tar: &mut tar::Builder<W>, store: &Store, digest: &Digest) -> Result<()> {
    let path = store.content.path(digest);
    let file = store.content.open_blob(digest)?;
    let size = file.metadata().at(&path)?.len();
    let mut header = file_header(size);
    // Verify while streaming: a blob corrupted on disk must not leave in an archive.
    let mut reader = HashingReader::new(file.take(size), digest.algorithm());
    tar.append_data(&mut header, blob_path(digest), &mut reader)
        .at(&path)?;
    let (actual, count) = reader.finish();
    if count != size {
        return Err(Error::SizeMismatch {
            what: path.display().to_string(),
            expected: size,
            actual: count,
        });
    }
    digest.check(&path.display().to_string(), actual)
}

fn append_json<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    value: &impl Serialize,
) -> Result<()> {
    let data = serde_json::to_vec(value).map_err(|e| Error::InvalidDocument {
        what: name.to_string(),
        reason: e.to_string(),
    })?;
    let mut header = file_header(data.len() as u64);
    tar.append_data(&mut header, name, &data[..]).at(name)
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header
}

fn index_json(images: &[Saved]) -> ImageIndex {
    let mut manifests = Vec::new();
    for image in images {
        let plain = Descriptor::new(
            &image.record.manifest.media_type,
            image.record.manifest.digest.clone(),
            image.record.manifest.size,
        );
        if image.tags.is_empty() {
            manifests.push(plain.clone());
        }
        for tag in &image.tags {
            let mut annotations = BTreeMap::new();
            annotations.insert(ANNOTATION_IMAGE_NAME.to_string(), tag.to_string());
            annotations.insert(
                ANNOTATION_REF_NAME.to_string(),
                tag.tag_or_latest().unwrap_or_default().to_string(),
            );
            manifests.push(Descriptor {
                annotations: Some(annotations),
                ..plain.clone()
            });
        }
    }
    ImageIndex {
        schema_version: 2,
        media_type: Some(media::OCI_INDEX.to_string()),
        artifact_type: None,
        manifests,
        subject: None,
        annotations: None,
    }
}

fn docker_manifest_json(images: &[Saved]) -> Vec<DockerManifestEntry> {
    images
        .iter()
        .map(|image| DockerManifestEntry {
            config: blob_path(&image.manifest.config.digest),
            repo_tags: image.tags.iter().map(Reference::familiar).collect(),
            layers: image
                .manifest
                .layers
                .iter()
                .map(|l| blob_path(&l.digest))
                .collect(),
        })
        .collect()
}

/// `{"repo": {"tag": "<top layer>"}}`: what loaders older than manifest.json read.
fn repositories_json(images: &[Saved]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let Some(top) = image.manifest.layers.last() else {
            continue;
        };
        for tag in &image.tags {
            let mut repo = tag.clone();
            repo.tag = None;
            repositories.entry(repo.familiar()).or_default().insert(
                tag.tag_or_latest().unwrap_or_default().to_string(),
                top.digest.hex().to_string(),
            );
        }
    }
    repositories
}
