//! Pull: resolve the manifest (through an index to the wanted platform), store the verified
//! documents, then fetch every layer at once, each unpacked while it downloads.
//!
//! Per layer, the HTTP body is pumped through a bounded channel to a blocking thread that
//! tees it into the content store's ingest file (which hashes it) while the layer store
//! unpacks it (which hashes the uncompressed tar). Neither digest is trusted until checked:
//! the unpacked tree is renamed into place only if its diff ID matches the config, and the
//! blob only if its digest matches the manifest. An interrupted download keeps its partial
//! ingest; the next pull asks for the rest with a Range request and replays the stored
//! prefix into the unpacker first.

use std::io::{self, Read, Write};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};
use tokio::sync::mpsc;

use super::auth::{self, Credentials};
use super::client::{read_limited, Registry};
use super::progress::{BlobProgress, Progress};
use super::PullOptions;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layer::LayerStore;
use crate::layout::DataRoot;
use crate::manifest::{Descriptor, ImageConfig, ImageManifest, Manifest, MAX_DOCUMENT_SIZE};
use crate::media::Compression;
use crate::reference::Reference;
use crate::store::{now_rfc3339, BlobWriter, ImageRecord, Store};

/// Layers downloaded at once. Each one is a connection plus a thread inflating and writing;
/// past the number of layers a typical image has, more only adds contention.
const LAYER_CONCURRENCY: usize = 8;
/// Chunks buffered between a download and its unpacker (hyper's chunks are up to ~16-64
/// KiB): enough to ride out a slow fsync or a burst of small files without stalling the
/// socket, small enough to bound memory per layer.
const CHANNEL_DEPTH: usize = 64;

/// A repository on a registry, with the auth scope its requests need.
pub(crate) struct Repository<'a> {
    pub registry: &'a Registry,
    pub name: &'a str,
    pub scopes: Vec<String>,
}

/// A manifest or index as fetched, with its verified digest.
pub(crate) struct Document {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    pub digest: Digest,
}

impl Repository<'_> {
    fn what(&self, thing: &str) -> String {
        format!("{}/{}: {thing}", self.registry.name, self.name)
    }

    /// GETs a manifest by tag or digest. The bytes must hash to `expected` (a digest
    /// reference) and to the Docker-Content-Digest the registry sends.
    pub async fn manifest(&self, reference: &str, expected: Option<&Digest>) -> Result<Document> {
        let what = self.what(&format!("manifest {reference}"));
        let url = self
            .registry
            .url(&format!("/v2/{}/manifests/{reference}", self.name));
        let response = self
            .registry
            .send(&self.scopes, &what, |http| {
                http.get(&url).header(ACCEPT, crate::media::MANIFEST_ACCEPT)
            })
            .await?;
        if response.status() != StatusCode::OK {
            return Err(self.registry.status_error(&what, response).await);
        }
        let header_digest = match response.headers().get("docker-content-digest") {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<Digest>().ok())
                    .ok_or_else(|| {
                        self.registry
                            .error(format!("{what}: bad Docker-Content-Digest"))
                    })?,
            ),
            None => None,
        };
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let bytes = read_limited(response, MAX_DOCUMENT_SIZE + 1)
            .await
            .map_err(|e| self.registry.http_error(&what, e))?;
        if bytes.len() > MAX_DOCUMENT_SIZE {
            return Err(self
                .registry
                .error(format!("{what}: larger than {MAX_DOCUMENT_SIZE} bytes")));
        }
        let digest = verify_document(&what, &bytes, expected, header_digest.as_ref())?;
        Ok(Document {
            bytes,
            content_type,
            digest,
        })
    }

    /// GETs a small blob (a config) and checks it against its descriptor.
    pub async fn document_blob(&self, descriptor: &Descriptor) -> Result<Vec<u8>> {
        let what = self.what(&format!("blob {}", descriptor.digest));
        if descriptor.size > MAX_DOCUMENT_SIZE as u64 {
            return Err(self
                .registry
                .error(format!("{what}: larger than {MAX_DOCUMENT_SIZE} bytes")));
        }
        let url = self.blob_url(&descriptor.digest);
        let response = self
            .registry
            .request(Method::GET, &url, &self.scopes, &what)
            .await?;
        if response.status() != StatusCode::OK {
            return Err(self.registry.status_error(&what, response).await);
        }
        let bytes = read_limited(response, MAX_DOCUMENT_SIZE + 1)
            .await
            .map_err(|e| self.registry.http_error(&what, e))?;
        check_size(&what, descriptor.size, bytes.len() as u64)?;
        descriptor.digest.verify(&what, &bytes)?;
        Ok(bytes)
    }

    pub fn blob_url(&self, digest: &Digest) -> String {
        self.registry
            .url(&format!("/v2/{}/blobs/{digest}", self.name))
    }
}

fn check_size(what: &str, expected: u64, actual: u64) -> Result<()> {
    if expected != actual {
        return Err(Error::SizeMismatch {
            what: what.to_string(),
            expected,
            actual,
        });
    }
    Ok(())
}

/// The digest of a fetched document, checked against what was asked for and what the
/// registry claims.
fn verify_document(
    what: &str,
    bytes: &[u8],
    expected: Option<&Digest>,
    header: Option<&Digest>,
) -> Result<Digest> {
    if let Some(expected) = expected {
        expected.verify(what, bytes)?;
    }
    if let Some(header) = header {
        header.verify(what, bytes)?;
    }
    Ok(match (expected, header) {
        (Some(d), _) | (None, Some(d)) if d.algorithm() == crate::digest::Algorithm::Sha256 => {
            d.clone()
        }
        _ => Digest::sha256_of(bytes),
    })
}

pub(crate) async fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    credentials: Option<&Credentials>,
) -> Result<ImageRecord> {
    let _lock = store.lock_shared()?;
    let reference = reference.clone().with_default_tag();
    let registry = Registry::connect(
        &store.root,
        &reference.registry,
        &options.registry,
        credentials,
    )?;
    let repo = Repository {
        registry: &registry,
        name: &reference.repository,
        scopes: vec![auth::repository_scope(&reference.repository, false)],
    };
    let (index, manifest_doc, manifest) = resolve(store, &repo, &reference, options).await?;
    let (manifest_media_type, image) = manifest;
    store
        .content
        .put_verified(&manifest_doc.digest, &manifest_doc.bytes)?;
    let config = config(store, &repo, &image).await?;
    let what = format!("{reference}: image config {}", image.config.digest);
    if config.rootfs.diff_ids.len() != image.layers.len() {
        return Err(Error::InvalidDocument {
            what,
            reason: format!(
                "{} layers in the manifest but {} diff_ids in the config",
                image.layers.len(),
                config.rootfs.diff_ids.len()
            ),
        });
    }
    let progress = Progress::new(&options.registry.progress);
    pull_layers(store, &repo, &image, &config.rootfs.diff_ids, &progress).await?;

    let mut manifest_descriptor = Descriptor::new(
        &manifest_media_type,
        manifest_doc.digest.clone(),
        manifest_doc.bytes.len() as u64,
    );
    manifest_descriptor.platform = index.as_ref().and_then(|(_, p)| p.clone());
    let record = ImageRecord {
        name: reference.to_string(),
        manifest: manifest_descriptor,
        index: index.map(|(d, _)| d),
        id: image.config.digest.clone(),
        created: now_rfc3339(),
    };
    if reference.tag.is_some() && reference.digest.is_some() {
        // `name:tag@digest` is known by both names, as docker does.
        let mut by_tag = reference.clone();
        by_tag.digest = None;
        store.images.put(ImageRecord {
            name: by_tag.to_string(),
            ..record.clone()
        })?;
    }
    store.images.put(record.clone())?;
    Ok(record)
}

type Resolved = (
    Option<(Descriptor, Option<crate::platform::Platform>)>,
    Document,
    (String, ImageManifest),
);

/// Fetches the manifest the reference names; through an index, the one for the platform.
async fn resolve(
    store: &Store,
    repo: &Repository<'_>,
    reference: &Reference,
    options: &PullOptions,
) -> Result<Resolved> {
    let top = repo
        .manifest(&reference.manifest_ref(), reference.digest.as_ref())
        .await?;
    let (parsed, top_media_type) = Manifest::parse(&top.bytes, top.content_type.as_deref())?;
    let index = match parsed {
        Manifest::Image(image) => return Ok((None, top, (top_media_type, image))),
        Manifest::Index(index) => index,
    };
    store.content.put_verified(&top.digest, &top.bytes)?;
    let chosen =
        options
            .platform
            .select(&index.manifests)
            .ok_or_else(|| Error::NoMatchingPlatform {
                reference: reference.to_string(),
                platform: options.platform.to_string(),
            })?;
    let doc = repo
        .manifest(&chosen.digest.to_string(), Some(&chosen.digest))
        .await?;
    check_size(
        &repo.what(&format!("manifest {}", chosen.digest)),
        chosen.size,
        doc.bytes.len() as u64,
    )?;
    let (parsed, media_type) = Manifest::parse(&doc.bytes, Some(&chosen.media_type))?;
    let Manifest::Image(image) = parsed else {
        return Err(Error::InvalidDocument {
            what: repo.what(&format!("manifest {}", chosen.digest)),
            reason: "an index entry for a platform is itself an index".into(),
        });
    };
    let index_descriptor =
        Descriptor::new(&top_media_type, top.digest.clone(), top.bytes.len() as u64);
    Ok((
        Some((index_descriptor, chosen.platform.clone())),
        doc,
        (media_type, image),
    ))
}

/// The image config, from the store if an earlier pull got it, else from the registry.
async fn config(
    store: &Store,
    repo: &Repository<'_>,
    image: &ImageManifest,
) -> Result<ImageConfig> {
    let digest = &image.config.digest;
    let bytes = if store.content.has(digest) {
        store.content.read_document(digest)?
    } else {
        let bytes = repo.document_blob(&image.config).await?;
        store.content.put_verified(digest, &bytes)?;
        bytes
    };
    ImageConfig::parse(&bytes)
}

async fn pull_layers(
    store: &Store,
    repo: &Repository<'_>,
    image: &ImageManifest,
    diff_ids: &[Digest],
    progress: &Progress,
) -> Result<()> {
    let jobs = image.layers.iter().zip(diff_ids).map(|(layer, diff_id)| {
        let bar = progress.blob(&layer.digest);
        async move {
            let compression =
                Compression::of_layer_media_type(&layer.media_type).ok_or_else(|| {
                    Error::UnsupportedMediaType {
                        what: format!("layer {}", layer.digest),
                        media_type: layer.media_type.clone(),
                    }
                })?;
            pull_layer(store, repo, layer, diff_id, compression, &bar).await
        }
    });
    // Every layer runs to its end even when one fails: no unpacking thread outlives the
    // pull (and its lock), and what the others downloaded is kept for the next pull.
    let results: Vec<Result<()>> = futures_util::stream::iter(jobs)
        .buffer_unordered(LAYER_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// What a blocking layer job needs, owned so it can move to its thread.
struct LayerJob {
    root: DataRoot,
    digest: Digest,
    diff_id: Digest,
    compression: Compression,
    /// The layer is already unpacked: only the blob is wanted.
    blob_only: bool,
}

impl LayerJob {
    fn label(&self) -> String {
        self.digest.to_string()
    }

    /// Unpacks `input` (or just reads it through, for `blob_only`) to its end.
    fn consume(&self, input: &mut dyn Read) -> Result<()> {
        if !self.blob_only {
            let layers = LayerStore::open(&self.root)?;
            layers.unpack(input, self.compression, Some(&self.diff_id), &self.label())?;
        }
        // unpack reads to EOF, but a tar may carry padding past its end marker; the blob
        // digest covers every byte, so whatever is left must still be read.
        io::copy(input, &mut io::sink()).map_err(|e| self.error(e))?;
        Ok(())
    }

    fn error(&self, e: io::Error) -> Error {
        Error::Layer {
            layer: self.label(),
            reason: e.to_string(),
        }
    }
}

async fn pull_layer(
    store: &Store,
    repo: &Repository<'_>,
    layer: &Descriptor,
    diff_id: &Digest,
    compression: Compression,
    bar: &BlobProgress,
) -> Result<()> {
    let have_blob = store.content.has(&layer.digest);
    let have_layer = store.layers.has(diff_id);
    if have_blob && have_layer {
        bar.finish("Already exists");
        return Ok(());
    }
    let job = LayerJob {
        root: store.root.clone(),
        digest: layer.digest.clone(),
        diff_id: diff_id.clone(),
        compression,
        blob_only: have_layer,
    };
    if have_blob {
        bar.step("Extracting");
        let mut blob = store.content.open_blob(&layer.digest)?;
        run_blocking(&job.label(), move || job.consume(&mut blob)).await?;
        bar.finish("Pull complete");
        return Ok(());
    }
    download(store, repo, layer, job, bar).await?;
    bar.finish("Pull complete");
    Ok(())
}

async fn run_blocking<T: Send + 'static>(
    label: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Layer {
            layer: label.to_string(),
            reason: format!("unpacking thread failed: {e}"),
        })?
}

/// Opens the ingest and asks for what it lacks. A registry that ignores the Range (200) or
/// refuses it (416) gets a fresh download from byte 0.
async fn open_download(
    store: &Store,
    repo: &Repository<'_>,
    layer: &Descriptor,
    what: &str,
) -> Result<(BlobWriter, reqwest::Response)> {
    let url = repo.blob_url(&layer.digest);
    let mut writer = store.content.writer(&layer.digest, Some(layer.size))?;
    loop {
        let offset = writer.offset();
        let response = repo
            .registry
            .send(&repo.scopes, what, |http| {
                let request = http.get(&url);
                if offset > 0 {
                    request.header(RANGE, format!("bytes={offset}-"))
                } else {
                    request
                }
            })
            .await?;
        let status = response.status();
        let resumed =
            status == StatusCode::PARTIAL_CONTENT && range_start(&response) == Some(offset);
        if offset == 0 && status == StatusCode::OK || offset > 0 && resumed {
            return Ok((writer, response));
        }
        let restart = offset > 0
            && matches!(
                status,
                StatusCode::OK | StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE
            );
        if !restart {
            return Err(repo.registry.status_error(what, response).await);
        }
        drop(response);
        writer.discard()?;
        writer = store.content.writer(&layer.digest, Some(layer.size))?;
    }
}

/// The first byte a 206 reply covers (`Content-Range: bytes START-END/TOTAL`).
fn range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

async fn download(
    store: &Store,
    repo: &Repository<'_>,
    layer: &Descriptor,
    job: LayerJob,
    bar: &BlobProgress,
) -> Result<()> {
    let what = format!("layer {}", layer.digest);
    let (writer, mut response) = open_download(store, repo, layer, &what).await?;
    let offset = writer.offset();
    bar.start("Downloading", offset, layer.size);
    // The stored prefix is replayed into the unpacker, which must see the whole stream.
    let prefix = if offset > 0 {
        let path = store.root.ingest(&layer.digest);
        Some(std::fs::File::open(&path).at(&path)?.take(offset))
    } else {
        None
    };
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let label = job.label();
    let consumer = run_blocking(&label, move || {
        let mut tee = Tee {
            source: ChannelReader::new(rx),
            writer: Some(writer),
        };
        let result = match prefix {
            Some(prefix) => job.consume(&mut prefix.chain(&mut tee)),
            None => job.consume(&mut tee),
        };
        tee.finish(result)
    });
    let mut network_error = None;
    let pump = async {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    bar.advance(chunk.len() as u64);
                    if tx.send(Chunk::Data(chunk)).await.is_err() {
                        break; // the unpacker failed; its error is the one to report
                    }
                }
                Ok(None) => {
                    let _ = tx.send(Chunk::End).await;
                    break;
                }
                Err(e) => {
                    network_error = Some(repo.registry.http_error(&what, e));
                    break;
                }
            }
        }
        drop(tx);
    };
    let ((), result) = futures_util::future::join(pump, consumer).await;
    match (network_error, result) {
        (Some(e), Err(_)) => Err(e),
        (_, result) => result,
    }
}

enum Chunk {
    Data(Bytes),
    /// The body ended cleanly. A channel closed without it is an interrupted download.
    End,
}

/// The receiving end of a download as a blocking `Read`.
struct ChannelReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    ended: bool,
    /// The download broke (as opposed to the data being bad).
    interrupted: bool,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<Chunk>) -> ChannelReader {
        ChannelReader {
            rx,
            current: Bytes::new(),
            ended: false,
            interrupted: false,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(data)) => self.current = data,
                Some(Chunk::End) => self.ended = true,
                None => {
                    self.interrupted = true;
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "download interrupted",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Reads the download and writes every byte read into the ingest.
struct Tee {
    source: ChannelReader,
    writer: Option<BlobWriter>,
}

impl Read for Tee {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read(buf)?;
        if let Some(writer) = &mut self.writer {
            writer.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

impl Tee {
    /// Commits the blob if the layer went well. Otherwise an interrupted download keeps
    /// its partial ingest for a resume, and bad data is thrown away.
    fn finish(mut self, result: Result<()>) -> Result<()> {
        let Some(writer) = self.writer.take() else {
            return result;
        };
        match result {
            Ok(()) => writer.commit(),
            Err(e) if self.source.interrupted => Err(e),
            Err(e) => {
                let _ = writer.discard();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_digests_are_checked() {
        let body = b"{}";
        let good = Digest::sha256_of(body);
        let bad = Digest::sha256_of(b"x");
        assert_eq!(verify_document("m", body, None, None).unwrap(), good);
        assert_eq!(
            verify_document("m", body, Some(&good), Some(&good)).unwrap(),
            good
        );
        assert!(verify_document("m", body, Some(&bad), None).is_err());
        assert!(verify_document("m", body, None, Some(&bad)).is_err());
        assert!(verify_document("m", body, Some(&good), Some(&bad)).is_err());
    }

    #[test]
    fn channel_reader_tells_interruption_from_end() {
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Chunk::Data(Bytes::from_static(b"abc")))
            .unwrap();
        tx.try_send(Chunk::End).unwrap();
        let mut r = ChannelReader::new(rx);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");
        let (tx, rx) = mpsc::channel(4);
        tx.try_send(Chunk::Data(Bytes::from_static(b"ab"))).unwrap();
        drop(tx);
        let mut r = ChannelReader::new(rx);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
        assert!(r.interrupted);
    }
}
