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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use gorae_image::{Algorithm, Digest};

    use super::super::test_support::{code, open, open_default, push_blob, read_blob, set_age};
    use super::super::{Storage, StorageOptions};
    use crate::error::ErrorCode;

    fn upload_chunks(storage: &Storage, repo: &str, chunks: &[&[u8]]) -> String {
        let id = storage.start_upload(repo).unwrap().id;
        let mut offset = 0;
        for chunk in chunks {
            let mut w = storage.upload_writer(repo, &id, Some(offset)).unwrap();
            w.write(chunk).unwrap();
            offset += chunk.len() as u64;
            assert_eq!(w.offset(), offset);
            assert_eq!(w.close().unwrap().offset, offset);
            assert_eq!(storage.upload_status(repo, &id).unwrap().offset, offset);
        }
        id
    }

    #[test]
    fn monolithic_upload_becomes_a_linked_blob() {
        let (_dir, s) = open_default();
        let digest = push_blob(&s, "lib/alpine", b"layer bytes");
        assert_eq!(s.stat_blob("lib/alpine", &digest).unwrap(), Some(11));
        assert_eq!(
            read_blob(&s, "lib/alpine", &digest).unwrap(),
            b"layer bytes"
        );
        assert_eq!(s.stat_blob("other", &digest).unwrap(), None);
        assert!(s.inner.blob_path(&digest).is_file());
        // The session is gone, and nothing is left in tmp/.
        assert!(std::fs::read_dir(s.inner.uploads_dir())
            .unwrap()
            .next()
            .is_none());
        assert!(std::fs::read_dir(s.inner.tmp_dir())
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn chunked_upload_with_a_streamed_chunk_without_range() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "r", &[b"abc", b"defg"]);
        let mut w = s.upload_writer("r", &id, None).unwrap();
        w.write(b"hi").unwrap();
        w.write(b"jk").unwrap();
        w.close().unwrap();
        let digest = Digest::sha256_of(b"abcdefghijk");
        assert_eq!(s.finish_upload("r", &id, &digest).unwrap(), 11);
        assert_eq!(read_blob(&s, "r", &digest).unwrap(), b"abcdefghijk");
    }

    #[test]
    fn a_chunk_at_the_wrong_offset_is_416_and_the_session_survives() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "r", &[b"abc"]);
        for start in [0, 2, 4] {
            let Err(e) = s.upload_writer("r", &id, Some(start)) else {
                panic!("chunk at {start} accepted");
            };
            let api = crate::ApiError::from(e);
            assert_eq!(api.code, ErrorCode::RangeInvalid);
            assert_eq!(api.status().as_u16(), 416);
        }
        let mut w = s.upload_writer("r", &id, Some(3)).unwrap();
        w.write(b"d").unwrap();
        drop(w); // without close: the session keeps what was written
        assert_eq!(s.upload_status("r", &id).unwrap().offset, 4);
        s.finish_upload("r", &id, &Digest::sha256_of(b"abcd"))
            .unwrap();
    }

    #[test]
    fn a_digest_mismatch_leaves_nothing_visible() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "r", &[b"real content"]);
        let claimed = Digest::sha256_of(b"other content");
        let e = s.finish_upload("r", &id, &claimed).unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::DigestInvalid));
        assert!(e.to_string().contains(&claimed.to_string()), "{e}");
        assert_eq!(s.stat_blob("r", &claimed).unwrap(), None);
        let actual = Digest::sha256_of(b"real content");
        assert_eq!(s.stat_blob("r", &actual).unwrap(), None);
        assert!(!s.inner.blob_path(&actual).exists());
        let e = s.upload_status("r", &id).unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::BlobUploadUnknown));
        assert_eq!(s.usage().blobs, 0);
    }

    #[test]
    fn a_session_belongs_to_its_repository() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "mine", &[b"x"]);
        let digest = Digest::sha256_of(b"x");
        let unknown = Some(ErrorCode::BlobUploadUnknown);
        assert_eq!(code(&s.upload_status("theirs", &id).unwrap_err()), unknown);
        let e = s.upload_writer("theirs", &id, None).err().unwrap();
        assert_eq!(code(&e), unknown);
        assert_eq!(
            code(&s.finish_upload("theirs", &id, &digest).unwrap_err()),
            unknown
        );
        assert_eq!(code(&s.cancel_upload("theirs", &id).unwrap_err()), unknown);
        for bad in ["../../etc", "", "zz", &"a".repeat(65)] {
            assert_eq!(code(&s.upload_status("mine", bad).unwrap_err()), unknown);
        }
        s.finish_upload("mine", &id, &digest).unwrap();
        assert_eq!(code(&s.upload_status("mine", &id).unwrap_err()), unknown);
    }

    #[test]
    fn a_session_has_one_writer_at_a_time() {
        let (_dir, s) = open_default();
        let id = s.start_upload("r").unwrap().id;
        let mut first = s.upload_writer("r", &id, None).unwrap();
        first.write(b"one").unwrap();
        let invalid = Some(ErrorCode::BlobUploadInvalid);
        assert_eq!(
            code(&s.upload_writer("r", &id, None).err().unwrap()),
            invalid
        );
        let digest = Digest::sha256_of(b"one");
        assert_eq!(
            code(&s.finish_upload("r", &id, &digest).unwrap_err()),
            invalid
        );
        first.close().unwrap();
        s.finish_upload("r", &id, &digest).unwrap();
    }

    #[test]
    fn an_upload_survives_a_restart_and_finishes_without_its_hash_state() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        let id = upload_chunks(&s, "r", &[b"before restart, "]);
        drop(s);
        let s = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        assert_eq!(s.upload_status("r", &id).unwrap().offset, 16);
        let mut w = s.upload_writer("r", &id, Some(16)).unwrap();
        w.write(b"after").unwrap();
        w.close().unwrap();
        let digest = Digest::sha256_of(b"before restart, after");
        assert_eq!(s.finish_upload("r", &id, &digest).unwrap(), 21);
        assert_eq!(
            read_blob(&s, "r", &digest).unwrap(),
            b"before restart, after"
        );
    }

    #[test]
    fn finishing_a_streamed_upload_uses_the_running_hash() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "r", &[b"streamed ", b"data"]);
        // Same length, other bytes: only a re-read of the file would notice.
        std::fs::write(
            s.inner.uploads_dir().join(&id).join("data"),
            b"STREAMED DATA",
        )
        .unwrap();
        let digest = Digest::sha256_of(b"streamed data");
        s.finish_upload("r", &id, &digest).unwrap();
    }

    #[test]
    fn a_sha512_upload_is_hashed_from_the_file() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "r", &[b"five", b"twelve"]);
        let mut h = Algorithm::Sha512.hasher();
        h.update(b"fivetwelve");
        let digest = h.finish();
        assert_eq!(s.finish_upload("r", &id, &digest).unwrap(), 10);
        assert_eq!(read_blob(&s, "r", &digest).unwrap(), b"fivetwelve");
    }

    #[test]
    fn the_same_content_twice_is_stored_once() {
        let (_dir, s) = open_default();
        let a = push_blob(&s, "a", b"shared");
        let b = push_blob(&s, "b", b"shared");
        assert_eq!(a, b);
        assert_eq!(s.usage().blobs, 1);
        assert_eq!(s.stat_blob("a", &a).unwrap(), Some(6));
        assert_eq!(s.stat_blob("b", &a).unwrap(), Some(6));
    }

    #[test]
    fn cancel_removes_the_session() {
        let (_dir, s) = open_default();
        let id = upload_chunks(&s, "r", &[b"x"]);
        s.cancel_upload("r", &id).unwrap();
        let e = s.upload_writer("r", &id, None).err().unwrap();
        assert_eq!(code(&e), Some(ErrorCode::BlobUploadUnknown));
        assert!(!s.inner.uploads_dir().join(&id).exists());
    }

    #[test]
    fn expiry_takes_old_sessions_but_not_fresh_or_busy_ones() {
        let (_dir, s) = open(StorageOptions {
            upload_expiry: Duration::from_secs(3600),
            ..StorageOptions::default()
        });
        let old = upload_chunks(&s, "r", &[b"old"]);
        let fresh = upload_chunks(&s, "r", &[b"fresh"]);
        let busy = upload_chunks(&s, "r", &[b"busy"]);
        let data = |id: &str| s.inner.uploads_dir().join(id).join("data");
        set_age(&data(&old), Duration::from_secs(7200));
        let writer = s.upload_writer("r", &busy, None).unwrap();
        set_age(&data(&busy), Duration::from_secs(7200));
        assert_eq!(s.expire_uploads().unwrap(), 1);
        let e = s.upload_status("r", &old).unwrap_err();
        assert_eq!(code(&e), Some(ErrorCode::BlobUploadUnknown));
        assert!(!s.inner.uploads_dir().join(&old).exists());
        assert_eq!(s.upload_status("r", &fresh).unwrap().offset, 5);
        drop(writer);
        assert_eq!(s.expire_uploads().unwrap(), 1);
        assert_eq!(s.expire_uploads().unwrap(), 0);
        assert!(std::fs::read_dir(s.inner.tmp_dir())
            .unwrap()
            .next()
            .is_none());
    }
}
