//! Upload sessions: `uploads/<id>/data` holds the bytes so far, `uploads/<id>/info` says
//! which repository the session belongs to.
//!
//! The running sha256 of a session and its offset stay in memory between chunks, so
//! finishing a streamed upload does not read it back. They are only a shortcut: whenever
//! they are missing (a restart) or disagree with the file (a failed write), or the digest
//! is not sha256, finish hashes the file itself.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use gorae_image::digest::Hasher;
use gorae_image::{Algorithm, Digest};
use serde::{Deserialize, Serialize};

use super::inner::{lock, read_small};
use super::{blobs, Inner, UploadInfo, UploadWriter};
use crate::error::{ApiError, Error, ErrorCode, IoContext, Result};

/// The sessions this process has seen, by id.
pub(crate) type Sessions = Arc<Mutex<HashMap<String, Session>>>;

pub(crate) struct Session {
    repo: String,
    /// The sha256 of the first `.1` bytes of the data.
    hash: Option<(Hasher, u64)>,
    /// A request is writing or finishing it.
    busy: bool,
}

#[derive(Serialize, Deserialize)]
struct SessionInfo {
    repo: String,
    /// Seconds since the epoch.
    started: u64,
}

/// A session marked busy; dropping it releases the session (with `hash` as its new state).
struct Claim {
    sessions: Sessions,
    id: String,
    hash: Option<(Hasher, u64)>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(session) = lock(&self.sessions).get_mut(&self.id) {
            session.busy = false;
            session.hash = self.hash.take();
        }
    }
}

pub(crate) struct WriterState {
    claim: Claim,
    file: File,
    path: PathBuf,
    offset: u64,
    /// None when the state before this chunk is unknown (finish re-hashes the file).
    hasher: Option<Hasher>,
}

impl WriterState {
    pub(crate) fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Err(e) = self.file.write_all(data) {
            // Back to the last good offset, so the session stays consistent; if even that
            // fails the hash state is dropped and the length tells the truth.
            if self.file.set_len(self.offset).is_err()
                || self.file.seek(SeekFrom::Start(self.offset)).is_err()
            {
                self.hasher = None;
            }
            return Err(e).at(&self.path);
        }
        if let Some(h) = &mut self.hasher {
            h.update(data);
        }
        self.offset += data.len() as u64;
        Ok(())
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn close(self) -> Result<UploadInfo> {
        Ok(UploadInfo {
            id: self.claim.id.clone(),
            offset: self.offset,
        })
    }
}

impl Drop for WriterState {
    fn drop(&mut self) {
        let offset = self.offset;
        self.claim.hash = self.hasher.take().map(|h| (h, offset));
    }
}

pub(crate) fn start(inner: &Inner, repo: &str) -> Result<UploadInfo> {
    let id = uuid::Uuid::new_v4().to_string();
    let dir = session_dir(inner, &id);
    std::fs::create_dir(&dir).at(&dir)?;
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let info = serde_json::to_vec(&SessionInfo {
        repo: repo.to_string(),
        started,
    })
    .unwrap_or_default();
    let created = (|| {
        File::create(dir.join("data")).at(dir.join("data"))?;
        // Not fsynced: a session lost in a crash is only an upload the client restarts,
        // and the data is fsynced before it becomes a blob.
        let info_path = dir.join("info");
        std::fs::write(&info_path, info).at(&info_path)
    })();
    if let Err(e) = created {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(e);
    }
    lock(&inner.sessions).insert(
        id.clone(),
        Session {
            repo: repo.to_string(),
            hash: Some((Algorithm::Sha256.hasher(), 0)),
            busy: false,
        },
    );
    Ok(UploadInfo { id, offset: 0 })
}

pub(crate) fn status(inner: &Inner, repo: &str, id: &str) -> Result<UploadInfo> {
    check_id(id)?;
    let known = lock(&inner.sessions).get(id).map(|s| s.repo == repo);
    let ours = match known {
        Some(ours) => ours,
        None => read_owner(inner, id)?.as_deref() == Some(repo),
    };
    if !ours {
        return Err(unknown(id));
    }
    let data = data_path(inner, id);
    match std::fs::metadata(&data) {
        Ok(m) => Ok(UploadInfo {
            id: id.to_string(),
            offset: m.len(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(unknown(id)),
        Err(e) => Err(e).at(&data),
    }
}

pub(crate) fn writer(
    inner: &Inner,
    repo: &str,
    id: &str,
    start: Option<u64>,
) -> Result<UploadWriter> {
    let mut claim = claim(inner, repo, id)?;
    let path = data_path(inner, id);
    let mut file = match OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(vanished(inner, claim)),
        Err(e) => return Err(e).at(&path),
    };
    let len = file.metadata().at(&path)?.len();
    if let Some(start) = start {
        if start != len {
            return Err(ApiError::new(
                ErrorCode::RangeInvalid,
                format!("upload {id}: the chunk starts at {start}, but {len} bytes were received"),
            )
            .into());
        }
    }
    let hasher = match claim.hash.take() {
        Some((h, offset)) if offset == len => Some(h),
        _ if len == 0 => Some(Algorithm::Sha256.hasher()),
        _ => None,
    };
    file.seek(SeekFrom::Start(len)).at(&path)?;
    Ok(UploadWriter {
        inner: WriterState {
            claim,
            file,
            path,
            offset: len,
            hasher,
        },
    })
}

pub(crate) fn finish(inner: &Inner, repo: &str, id: &str, digest: &Digest) -> Result<u64> {
    let mut claim = claim(inner, repo, id)?;
    let path = data_path(inner, id);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(vanished(inner, claim)),
        Err(e) => return Err(e).at(&path),
    };
    let size = file.metadata().at(&path)?.len();
    let actual = match claim.hash.take() {
        Some((h, offset)) if offset == size && digest.algorithm() == Algorithm::Sha256 => {
            h.finish()
        }
        _ => hash_file(&file, digest.algorithm()).at(&path)?,
    };
    if &actual != digest {
        remove_session(inner, &claim.id)?;
        return Err(ApiError::new(
            ErrorCode::DigestInvalid,
            format!("upload {id}: the content's digest is {actual}, not {digest}"),
        )
        .into());
    }
    file.sync_all().at(&path)?;
    inner.touch([digest]);
    blobs::commit(inner, &path, digest, size)?;
    blobs::link(inner, repo, digest)?;
    remove_session(inner, &claim.id)?;
    Ok(size)
}

pub(crate) fn cancel(inner: &Inner, repo: &str, id: &str) -> Result<()> {
    let claim = claim(inner, repo, id)?;
    remove_session(inner, &claim.id)
}

pub(crate) fn expire(inner: &Inner) -> Result<usize> {
    let cutoff = SystemTime::now()
        .checked_sub(inner.options.upload_expiry)
        .unwrap_or(UNIX_EPOCH);
    let mut expired = 0;
    for id in super::inner::list_dir(&inner.uploads_dir())? {
        if check_id(&id).is_err() {
            continue;
        }
        let dir = session_dir(inner, &id);
        let doomed = inner.tmp_path();
        {
            // Under the sessions lock: a writer cannot claim it between the check and the
            // move (and a busy one is never taken).
            let mut sessions = lock(&inner.sessions);
            if sessions.get(&id).is_some_and(|s| s.busy) {
                continue;
            }
            if last_write(&dir).is_none_or(|t| t >= cutoff) {
                continue;
            }
            match std::fs::rename(&dir, &doomed) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at(&dir),
            }
            sessions.remove(&id);
        }
        std::fs::remove_dir_all(&doomed).at(&doomed)?;
        expired += 1;
    }
    Ok(expired)
}

/// When the session last received data (its data file's mtime, or the directory's if the
/// data file is missing). None if the session is gone.
fn last_write(dir: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(dir.join("data"))
        .or_else(|_| std::fs::metadata(dir))
        .and_then(|m| m.modified())
        .ok()
}

/// Marks session `id` of `repo` busy, loading it from disk if this process has not seen it.
fn claim(inner: &Inner, repo: &str, id: &str) -> Result<Claim> {
    check_id(id)?;
    let known = lock(&inner.sessions).contains_key(id);
    let owner = if known { None } else { read_owner(inner, id)? };
    let mut sessions = lock(&inner.sessions);
    let session = match (sessions.get_mut(id), owner) {
        (Some(s), _) => s,
        (None, Some(owner)) => sessions.entry(id.to_string()).or_insert(Session {
            repo: owner,
            hash: None,
            busy: false,
        }),
        (None, None) => return Err(unknown(id)),
    };
    if session.repo != repo {
        return Err(unknown(id));
    }
    if session.busy {
        return Err(ApiError::new(
            ErrorCode::BlobUploadInvalid,
            format!("upload {id} is being written by another request"),
        )
        .into());
    }
    session.busy = true;
    Ok(Claim {
        sessions: inner.sessions.clone(),
        id: id.to_string(),
        hash: session.hash.take(),
    })
}

/// The repository a session on disk belongs to; None if there is no such session or its
/// info file is unreadable (a crash while it was created).
fn read_owner(inner: &Inner, id: &str) -> Result<Option<String>> {
    let Some(bytes) = read_small(&session_dir(inner, id).join("info"), 4096)? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice::<SessionInfo>(&bytes)
        .ok()
        .map(|info| info.repo))
}

/// The session's files disappeared under a claim (expired or cancelled meanwhile).
fn vanished(inner: &Inner, claim: Claim) -> Error {
    let id = claim.id.clone();
    drop(claim);
    lock(&inner.sessions).remove(&id);
    unknown(&id)
}

fn remove_session(inner: &Inner, id: &str) -> Result<()> {
    lock(&inner.sessions).remove(id);
    inner.remove_tree(&session_dir(inner, id))
}

fn hash_file(file: &File, algorithm: Algorithm) -> std::io::Result<Digest> {
    let mut hasher = algorithm.hasher();
    let mut reader = file;
    reader.seek(SeekFrom::Start(0))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.finish()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Ids are ours (UUIDs): anything else names no session and must not reach a path.
fn check_id(id: &str) -> Result<()> {
    let ok =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(unknown(id))
    }
}

fn unknown(id: &str) -> Error {
    let shown: String = id.chars().take(64).collect();
    ApiError::new(
        ErrorCode::BlobUploadUnknown,
        format!("upload {shown:?} does not exist in this repository"),
    )
    .into()
}

fn session_dir(inner: &Inner, id: &str) -> PathBuf {
    inner.uploads_dir().join(id)
}

fn data_path(inner: &Inner, id: &str) -> PathBuf {
    session_dir(inner, id).join("data")
}
