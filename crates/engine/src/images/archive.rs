//! `POST /images/load`, `GET /images/get` and `POST /images/create?fromSrc=` (import):
//! gorae-image's archive code (docker-save and OCI archives, rootfs tarballs) behind
//! Docker's messages, with `save` streamed to the API in chunks from a blocking thread.

use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use gorae_image::archive::{self, ImportOptions, SaveFormat};
use gorae_image::{Reference, Store};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::events::Events;
use crate::error::{Error, IoContext, Result};

/// The size of the pieces a save is sent in.
const CHUNK: usize = 256 * 1024;
/// Pieces buffered towards a slow client.
const DEPTH: usize = 8;

/// Loads the spooled tarball; one `{"stream": "Loaded image: ...\n"}` per image name, or
/// `"Loaded image ID: sha256:...\n"` for an image without one.
pub fn load(store: &Store, tarball: &PathBuf, events: &Events) -> Result<Vec<Value>> {
    let file = std::fs::File::open(tarball).at(tarball)?;
    let records = archive::load(store, &mut BufReader::with_capacity(1 << 20, file))?;
    let mut lines: Vec<String> = Vec::new();
    for record in records {
        let id = record.id.to_string();
        let (line, name) = match record.reference() {
            Some(r) => (format!("Loaded image: {}\n", r.familiar()), r.familiar()),
            None => (format!("Loaded image ID: {id}\n"), id.clone()),
        };
        events.emit("load", &id, &name);
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    Ok(lines.into_iter().map(|l| json!({"stream": l})).collect())
}

/// Imports a rootfs tarball (plain, gzip or zstd) as a one-layer image named `reference`
/// (none: dangling) with Dockerfile-style `changes`; `{"status": "sha256:..."}` as docker
/// answers `docker import`.
pub fn import(
    store: &Store,
    tarball: &PathBuf,
    reference: Option<Reference>,
    changes: Vec<String>,
    message: Option<String>,
    events: &Events,
) -> Result<Vec<Value>> {
    let file = std::fs::File::open(tarball).at(tarball)?;
    let options = ImportOptions {
        reference,
        changes,
        message,
    };
    let mut input = BufReader::with_capacity(1 << 20, file);
    let record = archive::import(store, &mut input, &options).map_err(|e| match e {
        gorae_image::Error::InvalidDocument { .. } => Error::InvalidParameter(e.to_string()),
        e => Error::Image(e),
    })?;
    let id = record.id.to_string();
    let name = record
        .reference()
        .map_or_else(|| id.clone(), |r| r.familiar());
    events.emit("import", &id, &name);
    Ok(vec![json!({"status": id})])
}

/// Starts writing the docker-save tarball of `names` (checked to exist by the caller).
/// A failure half way ends the stream early: the client sees a truncated tar.
pub fn save(store: Arc<Store>, names: Vec<String>) -> mpsc::Receiver<Bytes> {
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        // Nobody is left to tell of a failure but the truncated stream itself.
        let _ = archive::save(&store, &names, SaveFormat::Docker, &mut out)
            .map_err(Error::from)
            .and_then(|()| out.flush().at("<image save stream>"));
    });
    rx
}

/// A blocking `Write` into a channel of chunks; fails once the receiver is gone (the
/// client went away), which stops the save.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}
