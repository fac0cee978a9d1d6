//! `gorae import`: a rootfs tarball (plain, gzip or zstd) becomes a one-layer image.
//!
//! One pass over the input: it is decompressed, and the plain tar is both unpacked as the
//! layer and recompressed (gzip, fast level) into the layer blob, so the image can be pushed
//! and saved like a pulled one. The config records the host platform, the changes given
//! (`--change`), and a history entry; the manifest is OCI.

use std::io::{Cursor, Read, Write};

use flate2::write::GzEncoder;

use crate::archive::{apply_changes, ImportOptions};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::manifest::{ContainerConfig, Descriptor, History, ImageConfig, ImageManifest, RootFs};
use crate::media::{self, Compression};
use crate::platform::Platform;
use crate::store::{now_rfc3339, ImageRecord, Store, UnknownBlobWriter};

const INPUT: &str = "<import input>";

pub(super) fn import(
    store: &Store,
    input: &mut dyn Read,
    options: &ImportOptions,
) -> Result<ImageRecord> {
    if let Some(reference) = options.reference.as_ref().filter(|r| r.digest.is_some()) {
        return Err(Error::InvalidReference {
            value: reference.to_string(),
            reason: "an imported image is named by a tag, not a digest",
        });
    }
    let mut container = ContainerConfig::default();
    apply_changes(&mut container, &options.changes)?;
    let _lock = store.lock_shared()?;
    let (layer, diff_id) = store_layer(store, input)?;
    let created = now_rfc3339();
    let host = Platform::host();
    let config = ImageConfig {
        architecture: host.architecture,
        os: host.os,
        variant: host.variant,
        created: Some(created.clone()),
        author: None,
        config: Some(container),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("gorae import".into()),
            comment: Some(
                options
                    .message
                    .clone()
                    .unwrap_or_else(|| "Imported from tarball".into()),
            ),
            ..History::default()
        }],
    };
    let config = put_json(store, &config, "image config")?;
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        artifact_type: None,
        config: Descriptor::new(media::OCI_CONFIG, config.0.clone(), config.1),
        layers: vec![layer],
        subject: None,
        annotations: None,
    };
    let (manifest_digest, manifest_size) = put_json(store, &manifest, "image manifest")?;
    let descriptor = Descriptor::new(media::OCI_MANIFEST, manifest_digest, manifest_size);
    let record = ImageRecord::new(options.reference.as_ref(), descriptor, None, config.0);
    store.images.put(record.clone())?;
    Ok(record)
}

fn put_json(store: &Store, value: &impl serde::Serialize, what: &str) -> Result<(Digest, u64)> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::InvalidDocument {
        what: what.into(),
        reason: e.to_string(),
    })?;
    Ok((store.content.put(&bytes)?, bytes.len() as u64))
}

/// Unpacks the rootfs and stores it gzip'd; returns the layer descriptor and diff ID.
fn store_layer(store: &Store, input: &mut dyn Read) -> Result<(Descriptor, Digest)> {
    let mut head = Vec::with_capacity(4);
    input.take(4).read_to_end(&mut head).at(INPUT)?;
    let raw = Cursor::new(head.clone()).chain(input);
    let plain: Box<dyn Read + '_> = match Compression::sniff(&head) {
        Compression::None => Box::new(raw),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
        Compression::Zstd => Box::new(zstd::Decoder::new(raw).at(INPUT)?),
    };
    let blob = store.content.ingest_unknown()?;
    let mut tee = Tee {
        plain,
        sink: GzEncoder::new(blob, flate2::Compression::fast()),
        hasher: Algorithm::Sha256.hasher(),
        sink_error: None,
    };
    let unpacked = store
        .layers
        .unpack(&mut tee, Compression::None, None, "import");
    tee.check_sink()?;
    let unpacked = unpacked?;
    // Whatever the tar reader left unread (end-of-archive padding) is part of the layer.
    let drained = std::io::copy(&mut tee, &mut std::io::sink());
    tee.check_sink()?;
    drained.at(INPUT)?;
    let diff_id = tee.hasher.finish();
    if diff_id != unpacked.diff_id {
        return Err(Error::Layer {
            layer: "import".into(),
            reason: format!(
                "unpacked {} but the input hashes to {diff_id}",
                unpacked.diff_id
            ),
        });
    }
    let blob = tee.sink.finish().map_err(|e| Error::io(INPUT, e))?;
    let (digest, size) = blob.commit()?;
    Ok((
        Descriptor::new(media::OCI_LAYER_GZIP, digest, size),
        diff_id,
    ))
}

/// Passes the plain tar to the unpacker while hashing it and compressing it into the blob.
struct Tee<'a> {
    plain: Box<dyn Read + 'a>,
    sink: GzEncoder<UnknownBlobWriter>,
    hasher: Hasher,
    sink_error: Option<std::io::Error>,
}

impl Tee<'_> {
    /// The blob write error behind a failed read, with the blob's path.
    fn check_sink(&mut self) -> Result<()> {
        match self.sink_error.take() {
            Some(e) => Err(Error::io(self.sink.get_ref().path(), e)),
            None => Ok(()),
        }
    }
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.plain.read(buf)?;
        self.hasher.update(&buf[..n]);
        if let Err(e) = self.sink.write_all(&buf[..n]) {
            self.sink_error = Some(e);
            return Err(std::io::Error::other("cannot write the layer blob"));
        }
        Ok(n)
    }
}
