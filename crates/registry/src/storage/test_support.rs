//! Shared helpers for the storage tests: a storage in a temporary directory, uploads in one
//! go, and manifests built from the blobs they reference.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gorae_image::{media, Digest};

use super::{Storage, StorageOptions};
use crate::error::{Error, ErrorCode};

pub(crate) fn open(options: StorageOptions) -> (tempfile::TempDir, Arc<Storage>) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), options).unwrap();
    (dir, storage)
}

pub(crate) fn open_default() -> (tempfile::TempDir, Arc<Storage>) {
    open(StorageOptions::default())
}

/// Uploads `data` in one chunk and returns its digest.
pub(crate) fn push_blob(storage: &Storage, repo: &str, data: &[u8]) -> Digest {
    try_push_blob(storage, repo, data).unwrap()
}

pub(crate) fn try_push_blob(storage: &Storage, repo: &str, data: &[u8]) -> crate::Result<Digest> {
    let digest = Digest::sha256_of(data);
    let session = storage.start_upload(repo)?;
    let mut writer = storage.upload_writer(repo, &session.id, Some(0))?;
    writer.write(data)?;
    writer.close()?;
    storage.finish_upload(repo, &session.id, &digest)?;
    Ok(digest)
}

/// An OCI image manifest whose config and layers are these blobs.
pub(crate) fn image_manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| descriptor(media::OCI_LAYER_GZIP, l))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": descriptor(media::OCI_CONFIG, config),
        "layers": layers,
    }))
    .unwrap()
}

pub(crate) fn descriptor(media_type: &str, data: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": Digest::sha256_of(data).to_string(),
        "size": data.len(),
    })
}

/// Uploads the config and layers, then the manifest under `tag`; its digest.
pub(crate) fn push_image(storage: &Storage, repo: &str, tag: &str, layers: &[&[u8]]) -> Digest {
    let config = format!("{{\"config\":{{}},\"tag\":\"{tag}\"}}").into_bytes();
    push_blob(storage, repo, &config);
    for layer in layers {
        push_blob(storage, repo, layer);
    }
    let manifest = image_manifest(&config, layers);
    storage
        .put_manifest(repo, tag, Some(media::OCI_MANIFEST), &manifest)
        .unwrap()
        .digest
}

/// The code of an `Error::Api`, for asserting which one a call returned.
pub(crate) fn code(e: &Error) -> Option<ErrorCode> {
    match e {
        Error::Api(api) => Some(api.code),
        _ => None,
    }
}

pub(crate) fn set_age(path: &Path, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

pub(crate) fn read_blob(storage: &Storage, repo: &str, digest: &Digest) -> Option<Vec<u8>> {
    let (mut file, size) = storage.open_blob(repo, digest).unwrap()?;
    let mut data = Vec::new();
    file.read_to_end(&mut data).unwrap();
    assert_eq!(data.len() as u64, size);
    Some(data)
}
