//! Push: every blob the registry lacks (config and layers, concurrently), by cross-repository
//! mount when another repository of the same registry has it, else uploaded monolithically
//! or in chunks; then the manifest, byte for byte as stored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode, Url};
use tokio::io::AsyncReadExt;

use super::auth::{self, Credentials};
use super::client::Registry;
use super::progress::{BlobProgress, Progress};
use super::pull::Repository;
use super::RegistryOptions;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::manifest::{Descriptor, ImageManifest, Manifest};
use crate::reference::Reference;
use crate::store::Store;

/// Blobs uploaded at once.
const PUSH_CONCURRENCY: usize = 4;
/// Blobs up to this size go in one PUT (one round trip fewer). Larger ones go in PATCH
/// chunks of this size: proxies in front of registries commonly cap a request body at
/// ~100 MB (Cloudflare's default), and a chunk is what a failure costs to resend.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 * 1024 * 1024;
/// Read size when streaming a blob file into a request body.
const READ_SIZE: usize = 256 * 1024;

pub(crate) async fn push(
    store: &Store,
    source: &str,
    destination: &Reference,
    options: &RegistryOptions,
    credentials: Option<&Credentials>,
) -> Result<Digest> {
    let _lock = store.lock_shared()?;
    let record = store.images.resolve(source)?;
    let bytes = store.content.read_document(&record.manifest.digest)?;
    let (parsed, media_type) = Manifest::parse(&bytes, Some(&record.manifest.media_type))?;
    let Manifest::Image(image) = parsed else {
        return Err(Error::InvalidDocument {
            what: format!("{source}: manifest {}", record.manifest.digest),
            reason: "expected an image manifest, found an index".into(),
        });
    };
    let mounts = mount_sources(store, destination, &image);
    let mut scopes = vec![auth::repository_scope(&destination.repository, true)];
    for repo in mounts.values().flatten() {
        let scope = auth::repository_scope(repo, false);
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    let registry = Registry::connect(&store.root, &destination.registry, options, credentials)?;
    let repo = Repository {
        registry: &registry,
        name: &destination.repository,
        scopes,
    };
    let chunk_size = options.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE).max(1);
    let progress = Progress::new(&options.progress);
    let mut blobs: Vec<&Descriptor> = image.layers.iter().collect();
    blobs.push(&image.config);
    let mut seen = std::collections::BTreeSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    let jobs = blobs.into_iter().map(|blob| {
        let bar = progress.blob(&blob.digest);
        let from = mounts.get(&blob.digest).map(Vec::as_slice).unwrap_or(&[]);
        let path = store.content.path(&blob.digest);
        let repo = &repo;
        async move { push_blob(repo, blob, path, from, chunk_size, &bar).await }
    });
    futures_util::stream::iter(jobs)
        .buffer_unordered(PUSH_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    put_manifest(
        &repo,
        destination,
        &bytes,
        &media_type,
        &record.manifest.digest,
    )
    .await?;
    Ok(record.manifest.digest)
}

/// For each blob of `image`, the other repositories of the destination registry that have
/// it, as far as this store knows: those its images were pulled from or tagged for.
fn mount_sources(
    store: &Store,
    destination: &Reference,
    image: &ImageManifest,
) -> BTreeMap<Digest, Vec<String>> {
    let mut sources: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    let wanted: Vec<&Digest> = image
        .layers
        .iter()
        .chain([&image.config])
        .map(|d| &d.digest)
        .collect();
    // Best effort: a record that cannot be read only costs a mount.
    for record in store.images.list().unwrap_or_default() {
        let Ok(name) = record.name.parse::<Reference>() else {
            continue;
        };
        if name.registry != destination.registry || name.repository == destination.repository {
            continue;
        }
        let Ok(bytes) = store.content.read_document(&record.manifest.digest) else {
            continue;
        };
        let Ok((Manifest::Image(other), _)) = Manifest::parse(&bytes, None) else {
            continue;
        };
        for d in other.layers.iter().chain([&other.config]) {
            if wanted.contains(&&d.digest) {
                let repos = sources.entry(d.digest.clone()).or_default();
                if !repos.contains(&name.repository) {
                    repos.push(name.repository.clone());
                }
            }
        }
    }
    sources
}

async fn push_blob(
    repo: &Repository<'_>,
    blob: &Descriptor,
    path: PathBuf,
    mount_from: &[String],
    chunk_size: u64,
    bar: &BlobProgress,
) -> Result<()> {
    let what = format!("{}/{}: blob {}", repo.registry.name, repo.name, blob.digest);
    bar.step("Preparing");
    let url = repo.blob_url(&blob.digest);
    let head = repo
        .registry
        .request(Method::HEAD, &url, &repo.scopes, &what)
        .await?;
    match head.status() {
        StatusCode::OK => {
            bar.finish("Layer already exists");
            return Ok(());
        }
        StatusCode::NOT_FOUND => {}
        _ => return Err(repo.registry.status_error(&what, head).await),
    }
    // One mount attempt: a registry that cannot mount answers by starting an upload,
    // which is then used rather than abandoned for another source.
    let location = match mount_from.first() {
        Some(from) => match mount(repo, blob, from, &what).await? {
            Mounted::Done => {
                bar.finish(&format!("Mounted from {from}"));
                return Ok(());
            }
            Mounted::Upload(started) => started,
        },
        None => start_upload(repo, &what).await?,
    };
    let size = std::fs::metadata(&path).at(&path)?.len();
    if size != blob.size {
        return Err(Error::SizeMismatch {
            what: format!("blob {} ({})", blob.digest, path.display()),
            expected: blob.size,
            actual: size,
        });
    }
    bar.start("Pushing", 0, size);
    let upload = Upload {
        repo,
        what: &what,
        path: &path,
        bar,
    };
    if size <= chunk_size {
        upload.monolithic(location, &blob.digest, size).await?;
    } else {
        upload
            .chunked(location, &blob.digest, size, chunk_size)
            .await?;
    }
    bar.finish("Pushed");
    Ok(())
}

enum Mounted {
    Done,
    /// The registry could not mount and started an upload session instead.
    Upload(Url),
}

async fn mount(
    repo: &Repository<'_>,
    blob: &Descriptor,
    from: &str,
    what: &str,
) -> Result<Mounted> {
    let mut url = Url::parse(
        &repo
            .registry
            .url(&format!("/v2/{}/blobs/uploads/", repo.name)),
    )
    .map_err(|e| repo.registry.error(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("mount", &blob.digest.to_string())
        .append_pair("from", from);
    let response = repo
        .registry
        .send(&repo.scopes, what, |http| {
            http.post(url.clone()).header(CONTENT_LENGTH, 0)
        })
        .await?;
    match response.status() {
        StatusCode::CREATED => Ok(Mounted::Done),
        StatusCode::ACCEPTED => Ok(Mounted::Upload(upload_location(repo, what, &response)?)),
        _ => Err(repo.registry.status_error(what, response).await),
    }
}

async fn start_upload(repo: &Repository<'_>, what: &str) -> Result<Url> {
    let url = repo
        .registry
        .url(&format!("/v2/{}/blobs/uploads/", repo.name));
    let response = repo
        .registry
        .send(&repo.scopes, what, |http| {
            http.post(&url).header(CONTENT_LENGTH, 0)
        })
        .await?;
    if response.status() != StatusCode::ACCEPTED {
        return Err(repo.registry.status_error(what, response).await);
    }
    upload_location(repo, what, &response)
}

fn upload_location(repo: &Repository<'_>, what: &str, response: &reqwest::Response) -> Result<Url> {
    let value = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            repo.registry
                .error(format!("{what}: upload reply without a Location"))
        })?;
    repo.registry.resolve_location(value)
}

struct Upload<'a> {
    repo: &'a Repository<'a>,
    what: &'a str,
    path: &'a PathBuf,
    bar: &'a BlobProgress,
}

impl Upload<'_> {
    async fn monolithic(&self, location: Url, digest: &Digest, size: u64) -> Result<()> {
        let url = with_digest(location, digest);
        let response = self
            .repo
            .registry
            .send(&self.repo.scopes, self.what, |http| {
                self.bar.reset();
                http.put(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, size)
                    .body(self.body(0, size))
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.repo.registry.status_error(self.what, response).await);
        }
        Ok(())
    }

    async fn chunked(
        &self,
        mut location: Url,
        digest: &Digest,
        size: u64,
        chunk: u64,
    ) -> Result<()> {
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let range = format!("{}-{}", offset, offset + len - 1);
            let url = location.clone();
            let response = self
                .repo
                .registry
                .send(&self.repo.scopes, self.what, |http| {
                    http.patch(url.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, range.as_str())
                        .header(CONTENT_LENGTH, len)
                        .body(self.body(offset, len))
                })
                .await?;
            if response.status() != StatusCode::ACCEPTED {
                return Err(self.repo.registry.status_error(self.what, response).await);
            }
            location = upload_location(self.repo, self.what, &response)?;
            offset += len;
        }
        let url = with_digest(location, digest);
        let response = self
            .repo
            .registry
            .send(&self.repo.scopes, self.what, |http| {
                http.put(url.clone()).header(CONTENT_LENGTH, 0)
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(self.repo.registry.status_error(self.what, response).await);
        }
        Ok(())
    }

    /// `len` bytes of the blob file from `offset`, read as the request is sent.
    fn body(&self, offset: u64, len: u64) -> reqwest::Body {
        let path = self.path.clone();
        let bar = self.bar.clone();
        let state = (None::<tokio::fs::File>, path, len);
        let stream = futures_util::stream::try_unfold(state, move |(file, path, left)| {
            let bar = bar.clone();
            async move {
                if left == 0 {
                    return Ok(None);
                }
                let mut file = match file {
                    Some(f) => f,
                    None => open_at(&path, offset).await?,
                };
                let mut buf = vec![0; READ_SIZE.min(left as usize)];
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("{}: shorter than expected", path.display()),
                    ));
                }
                buf.truncate(n);
                bar.advance(n as u64);
                Ok::<_, std::io::Error>(Some((
                    bytes::Bytes::from(buf),
                    (Some(file), path, left - n as u64),
                )))
            }
        });
        reqwest::Body::wrap_stream(stream)
    }
}

async fn open_at(path: &std::path::Path, offset: u64) -> std::io::Result<tokio::fs::File> {
    use tokio::io::AsyncSeekExt;
    let mut file = tokio::fs::File::open(path).await?;
    if offset > 0 {
        file.seek(std::io::SeekFrom::Start(offset)).await?;
    }
    Ok(file)
}

/// The upload URL with `digest=` added to whatever state query the registry put there.
fn with_digest(mut location: Url, digest: &Digest) -> Url {
    location
        .query_pairs_mut()
        .append_pair("digest", &digest.to_string());
    location
}

async fn put_manifest(
    repo: &Repository<'_>,
    destination: &Reference,
    bytes: &[u8],
    media_type: &str,
    digest: &Digest,
) -> Result<()> {
    let reference = match (&destination.tag, &destination.digest) {
        (Some(tag), _) => tag.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => crate::reference::DEFAULT_TAG.to_string(),
    };
    if let Some(d) = &destination.digest {
        if d != digest {
            return Err(Error::DigestMismatch {
                what: format!("push destination {destination}"),
                expected: d.clone(),
                actual: digest.clone(),
            });
        }
    }
    let what = format!("{}/{}: manifest {reference}", repo.registry.name, repo.name);
    let url = repo
        .registry
        .url(&format!("/v2/{}/manifests/{reference}", repo.name));
    let body = bytes::Bytes::copy_from_slice(bytes);
    let response = repo
        .registry
        .send(&repo.scopes, &what, |http| {
            http.put(&url)
                .header(CONTENT_TYPE, media_type)
                .body(body.clone())
        })
        .await?;
    if !response.status().is_success() {
        return Err(repo.registry.status_error(&what, response).await);
    }
    let echoed = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    if let Some(echoed) = echoed {
        if echoed.algorithm() == digest.algorithm() && &echoed != digest {
            return Err(repo.registry.error(format!(
                "{what}: registry stored it as {echoed}, expected {digest}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_added_to_the_upload_state() {
        let d = Digest::sha256_of(b"");
        let u = with_digest(
            Url::parse("http://r/v2/a/blobs/uploads/u?_state=x%3D").unwrap(),
            &d,
        );
        assert_eq!(
            u.as_str(),
            format!(
                "http://r/v2/a/blobs/uploads/u?_state=x%3D&digest=sha256%3A{}",
                d.hex()
            )
        );
    }
}
