//! Blobs through the cache.
//!
//! A cached blob is served from its file (sendfile). On a miss the upstreams are asked in
//! order; the first 200 wins. If the blob is already stored for another repository, it is
//! linked into this one (the upstream's 200 shows the content is public there, so the link
//! leaks nothing) and the download is dropped. Otherwise the upstream's bytes stream to the
//! client while a blocking thread writes the same bytes into a storage upload session.
//!
//! Nothing unverified is ever complete: the digest is computed as bytes pass, and the last
//! piece goes to the client only once it matches, so a corrupt upstream gives the client a
//! truncated body, never a wrong one; `finish_upload` verifies again before the blob becomes
//! visible in the cache.
//!
//! A client that goes away does not stop the download: it completes the cache, which that
//! client's retry (and any other client following the download) wants next.
//!
//! Concurrent GETs of one blob in one repository share one download: the later ones follow
//! the first by reading the upload session's data file (`uploads/<id>/data`, see the storage
//! layout) as it grows, holding back the last byte until the digest is known to match. One
//! that arrives after the file was renamed into place waits for the cache and serves it.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gorae_image::Digest;
use http::header::{CONTENT_TYPE, ETAG};
use http::HeaderName;
use reqwest::{Method, StatusCode};
use tokio::sync::{mpsc, watch};

use super::{Answer, Proxy, DIGEST_HEADER};
use crate::error::{ApiError, ErrorCode, Result};
use crate::http::{Response, ResponseBody};
use crate::storage::{Storage, UploadWriter};

/// Pieces in flight per channel (to the client, to the disk writer).
const CHANNEL_DEPTH: usize = 16;
/// What a follower reads from the data file at once.
const FOLLOW_READ: u64 = 256 * 1024;

type Key = (String, Digest);

/// The downloads under way, by (repository, digest).
#[derive(Default, Clone)]
pub(super) struct InFlight(Arc<Mutex<HashMap<Key, Arc<Download>>>>);

impl InFlight {
    fn get(&self, key: &Key) -> Option<Arc<Download>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn remove(&self, key: &Key) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// One blob being downloaded into an upload session.
struct Download {
    /// The session's data file, for followers.
    data: PathBuf,
    /// The upstream's Content-Length.
    len: Option<u64>,
    progress: watch::Sender<Progress>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Progress {
    /// Bytes in the data file so far.
    written: u64,
    state: State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Writing,
    /// Every byte is in the data file and the digest matched.
    Verified,
    /// The blob is in the cache.
    Stored,
    Failed(String),
}

enum Start {
    /// This request downloads, into this upload session.
    New(Arc<Download>, String, Box<UploadWriter>),
    /// Another request is downloading the blob already.
    Follow(Arc<Download>),
}

impl Proxy {
    pub(super) async fn blob_head(&self, repo: &str, digest: &Digest) -> Result<Option<Response>> {
        let routes = self.routes(repo);
        if let Some(size) = self.storage.stat_blob(repo, digest)? {
            return Ok(Some(blob_response(digest).content_length(size)));
        }
        let tail = &format!("blobs/{digest}");
        self.ask_upstreams(&routes, |upstream, name| async move {
            let what = format!("HEAD {name}@{digest}");
            let Some(response) = upstream.head(name, tail, None, &what).await? else {
                return Ok(Answer::NotFound);
            };
            // reqwest reports no length for a HEAD's (empty) body: read the header itself.
            let size = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| {
                    upstream.error(&format!("HEAD {name}@{digest}"), "no Content-Length")
                })?;
            Ok(Answer::Found(blob_response(digest).content_length(size)))
        })
        .await
    }

    pub(super) async fn blob_get(&self, repo: &str, digest: &Digest) -> Result<Option<Response>> {
        if let Some(response) = self.cached_blob(repo, digest)? {
            return Ok(Some(response));
        }
        let key = (repo.to_string(), digest.clone());
        if let Some(download) = self.inflight.get(&key) {
            return self.follow(repo, digest, download).await.map(Some);
        }
        let routes = self.routes(repo);
        let tail = &format!("blobs/{digest}");
        let found = self
            .ask_upstreams(&routes, |upstream, name| async move {
                let response = upstream
                    .request(Method::GET, name, tail, None, false)
                    .await?;
                match response.status() {
                    StatusCode::OK => Ok(Answer::Found((upstream, name, response))),
                    StatusCode::NOT_FOUND => Ok(Answer::NotFound),
                    _ => Err(upstream
                        .status_error(&format!("GET {name}@{digest}"), response)
                        .await),
                }
            })
            .await?;
        let Some((upstream, name, response)) = found else {
            return Ok(None);
        };
        if self.storage.mount_blob(repo, None, digest)?.is_some() {
            if let Some(response) = self.cached_blob(repo, digest)? {
                return Ok(Some(response));
            }
        }
        let what = format!("upstream {}: GET {name}@{digest}", upstream.url);
        self.download(key, what, response).await.map(Some)
    }

    fn cached_blob(&self, repo: &str, digest: &Digest) -> Result<Option<Response>> {
        Ok(self.storage.open_blob(repo, digest)?.map(|(file, len)| {
            let mut response = blob_response(digest);
            response.body = ResponseBody::File {
                file,
                offset: 0,
                len,
            };
            response
        }))
    }

    /// Starts streaming `response` to the client and into the cache (or follows a download
    /// of the same blob that started while this one asked the upstream).
    async fn download(
        &self,
        key: Key,
        what: String,
        response: reqwest::Response,
    ) -> Result<Response> {
        let (repo, digest) = (key.0.clone(), key.1.clone());
        let len = response.content_length();
        let (download, session, writer) = match self.start_session(&key, len)? {
            Start::New(download, session, writer) => (download, session, *writer),
            Start::Follow(other) => return self.follow(&repo, &digest, other).await,
        };
        let (client, pieces) = mpsc::channel(CHANNEL_DEPTH);
        let pump = Pump {
            storage: self.storage.clone(),
            inflight: self.inflight.clone(),
            key,
            session,
            what,
            download,
        };
        tokio::spawn(pump.run(response, writer, client));
        Ok(stream_response(&digest, len, pieces))
    }

    /// Registers a download of `key` with a new upload session to write it into, or returns
    /// the download another request registered first. The sessions are made under the lock
    /// (quick file creations), so two requests never both download.
    fn start_session(&self, key: &Key, len: Option<u64>) -> Result<Start> {
        let mut inflight = self.inflight.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = inflight.get(key) {
            return Ok(Start::Follow(other.clone()));
        }
        let repo = &key.0;
        let session = self.storage.start_upload(repo)?.id;
        let writer = match self.storage.upload_writer(repo, &session, None) {
            Ok(writer) => writer,
            Err(e) => {
                let _ = self.storage.cancel_upload(repo, &session);
                return Err(e);
            }
        };
        let data = self.storage.inner.uploads_dir().join(&session).join("data");
        let (progress, _) = watch::channel(Progress {
            written: 0,
            state: State::Writing,
        });
        let download = Arc::new(Download {
            data,
            len,
            progress,
        });
        inflight.insert(key.clone(), download.clone());
        Ok(Start::New(download, session, Box::new(writer)))
    }

    /// Streams a download another request started, from its data file.
    async fn follow(
        &self,
        repo: &str,
        digest: &Digest,
        download: Arc<Download>,
    ) -> Result<Response> {
        let progress = download.progress.subscribe();
        match std::fs::File::open(&download.data) {
            Ok(file) => {
                let (client, pieces) = mpsc::channel(CHANNEL_DEPTH);
                tokio::spawn(follow_file(file, progress, client));
                Ok(stream_response(digest, download.len, pieces))
            }
            // Renamed into the cache already (or the session was given up on).
            Err(_) => {
                let state = wait_until_done(progress).await;
                if let Some(response) = self.cached_blob(repo, digest)? {
                    return Ok(response);
                }
                let reason = match state {
                    State::Failed(reason) => reason,
                    _ => "the download finished but the cache does not have it".into(),
                };
                let message = format!("blob {repo}@{digest}: {reason}");
                let error = ApiError::new(ErrorCode::Unknown, message);
                Err(error.with_status(http::StatusCode::BAD_GATEWAY).into())
            }
        }
    }
}

/// The headers of every blob response, as the API's own. No Accept-Ranges: the cache
/// answers a Range request with the whole blob.
fn blob_response(digest: &Digest) -> Response {
    Response::new(http::StatusCode::OK)
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(HeaderName::from_static(DIGEST_HEADER), digest.to_string())
        .header(ETAG, format!("\"{digest}\""))
        .route("blob")
}

fn stream_response(
    digest: &Digest,
    len: Option<u64>,
    pieces: mpsc::Receiver<io::Result<Bytes>>,
) -> Response {
    let mut response = blob_response(digest);
    response.body = ResponseBody::Stream { len, pieces };
    response
}

/// The task that moves one upstream body to the client and the disk writer.
struct Pump {
    storage: Arc<Storage>,
    inflight: InFlight,
    key: Key,
    session: String,
    /// Names the upstream and blob in errors.
    what: String,
    download: Arc<Download>,
}

impl Pump {
    async fn run(
        self,
        mut response: reqwest::Response,
        writer: UploadWriter,
        client: mpsc::Sender<io::Result<Bytes>>,
    ) {
        let (disk, disk_rx) = mpsc::channel(CHANNEL_DEPTH);
        let progress = self.download.clone();
        let writer = tokio::task::spawn_blocking(move || write_all(writer, disk_rx, &progress));
        let mut disk = Some(disk);
        let mut client = Some(client);
        let mut hasher = self.key.1.algorithm().hasher();
        // Held back until the digest is known to match.
        let mut last: Option<Bytes> = None;
        let received = loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    hasher.update(&chunk);
                    if let Some(tx) = &disk {
                        if tx.send(chunk.clone()).await.is_err() {
                            // The writer failed: the client still gets the blob, uncached.
                            disk = None;
                        }
                    }
                    if let Some(previous) = last.replace(chunk) {
                        forward(&mut client, Ok(previous)).await;
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(format!("{}: {e}", self.what)),
            }
        };
        let verified = received.and_then(|()| {
            let actual = hasher.finish();
            if actual == self.key.1 {
                Ok(())
            } else {
                Err(format!(
                    "{}: the upstream sent content with digest {actual}",
                    self.what
                ))
            }
        });
        match verified {
            Ok(()) => {
                if let Some(last) = last {
                    forward(&mut client, Ok(last)).await;
                }
                drop((client, disk));
                let written = match writer.await {
                    Ok(result) => result.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match written {
                    Ok(()) => self.store().await,
                    Err(reason) => self.abandon(reason).await,
                }
            }
            Err(reason) => {
                // Gone from the in-flight map before the client hears of the failure, so its
                // retry downloads afresh instead of following this download.
                self.fail(reason.clone());
                forward(&mut client, Err(io::Error::other(reason.clone()))).await;
                drop((client, disk));
                let _ = writer.await;
                self.abandon(reason).await;
            }
        }
    }

    /// Moves the verified session into the cache and tells followers.
    async fn store(self) {
        self.set(State::Verified);
        let (storage, repo, id, digest) = self.names();
        let stored =
            tokio::task::spawn_blocking(move || storage.finish_upload(&repo, &id, &digest)).await;
        match stored {
            Ok(Ok(_)) => self.set(State::Stored),
            Ok(Err(e)) => self.set(State::Failed(e.to_string())),
            Err(e) => self.set(State::Failed(e.to_string())),
        }
        self.inflight.remove(&self.key);
    }

    /// Drops the session (after `fail`, if that was not called yet).
    async fn abandon(self, reason: String) {
        self.fail(reason);
        let (storage, repo, id, _) = self.names();
        let _ = tokio::task::spawn_blocking(move || storage.cancel_upload(&repo, &id)).await;
    }

    fn fail(&self, reason: String) {
        self.download.progress.send_if_modified(|p| {
            let first = !matches!(p.state, State::Failed(_));
            if first {
                p.state = State::Failed(reason);
            }
            first
        });
        self.inflight.remove(&self.key);
    }

    fn set(&self, state: State) {
        self.download.progress.send_modify(|p| p.state = state);
    }

    fn names(&self) -> (Arc<Storage>, String, String, Digest) {
        let (repo, digest) = self.key.clone();
        (self.storage.clone(), repo, self.session.clone(), digest)
    }
}

/// Sends a piece to the client unless it went away (then the download goes on for the cache).
async fn forward(client: &mut Option<mpsc::Sender<io::Result<Bytes>>>, piece: io::Result<Bytes>) {
    if let Some(tx) = client {
        if tx.send(piece).await.is_err() {
            *client = None;
        }
    }
}

/// The disk side of a download (on a blocking thread): appends every piece to the session.
fn write_all(
    mut writer: UploadWriter,
    mut pieces: mpsc::Receiver<Bytes>,
    download: &Download,
) -> Result<()> {
    while let Some(piece) = pieces.blocking_recv() {
        writer.write(&piece)?;
        let written = writer.offset();
        download.progress.send_modify(|p| p.written = written);
    }
    writer.close()?;
    Ok(())
}

/// A follower: sends the data file's bytes as the download writes them, all but the last one
/// until the download is verified.
async fn follow_file(
    file: std::fs::File,
    mut progress: watch::Receiver<Progress>,
    client: mpsc::Sender<io::Result<Bytes>>,
) {
    let file = Arc::new(file);
    let mut sent = 0u64;
    loop {
        let now = progress.borrow_and_update().clone();
        let sendable = match now.state {
            State::Failed(reason) => {
                let _ = client.send(Err(io::Error::other(reason))).await;
                return;
            }
            State::Writing => now.written.saturating_sub(1),
            State::Verified | State::Stored => now.written,
        };
        while sent < sendable {
            let piece = match read_at(&file, sent, (sendable - sent).min(FOLLOW_READ)).await {
                Ok(piece) => piece,
                Err(e) => {
                    let _ = client.send(Err(e)).await;
                    return;
                }
            };
            sent += piece.len() as u64;
            if client.send(Ok(piece)).await.is_err() {
                return;
            }
        }
        if now.state != State::Writing || progress.changed().await.is_err() {
            return;
        }
    }
}

async fn read_at(file: &Arc<std::fs::File>, offset: u64, len: u64) -> io::Result<Bytes> {
    let file = file.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0; len as usize];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64)? {
                0 => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                n => filled += n,
            }
        }
        Ok(Bytes::from(buf))
    });
    read.await.map_err(io::Error::other)?
}

async fn wait_until_done(mut progress: watch::Receiver<Progress>) -> State {
    match progress
        .wait_for(|p| matches!(p.state, State::Stored | State::Failed(_)))
        .await
    {
        Ok(p) => p.state.clone(),
        Err(_) => State::Failed("the download was abandoned".into()),
    }
}
