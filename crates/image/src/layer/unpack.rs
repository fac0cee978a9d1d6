//! The streaming side of unpacking a layer: decompress, hash the uncompressed tar for its
//! diff ID, hand it to the extractor, then read both streams to their ends (the diff ID
//! covers every uncompressed byte, and the caller hashes the compressed blob as it is read).

use std::cell::Cell;
use std::io::{self, Read};
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

use super::extract::Extractor;
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::media::Compression;

/// What the tar parser may read between two entries' data (headers, GNU long names, PAX
/// records, sparse maps): it buffers all of that in memory, so a hostile tar could
/// otherwise make it allocate without bound.
const METADATA_LIMIT: u64 = 4 << 20;
/// The uncompressed stream goes to the extracting thread in chunks of this size.
const CHUNK: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Counts what the tar parser reads while it looks for the next entry.
#[derive(Default)]
pub(crate) struct MetadataBudget {
    counting: Cell<bool>,
    used: Cell<u64>,
    /// Bytes of the tar read so far, and whether the stream has ended: together they tell
    /// a stream that stops right after an entry's data from a truncated entry.
    read: Cell<u64>,
    ended: Cell<bool>,
}

impl MetadataBudget {
    pub(crate) fn start(&self) {
        self.used.set(0);
        self.counting.set(true);
    }

    pub(crate) fn stop(&self) {
        self.counting.set(false);
    }

    /// Whether the stream ended after at least `offset` bytes.
    pub(crate) fn ended_after(&self, offset: u64) -> bool {
        self.ended.get() && self.read.get() >= offset
    }
}

/// The reader the tar parser gets: fails once an entry's metadata exceeds the budget.
struct Metered<R> {
    inner: R,
    budget: Rc<MetadataBudget>,
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let budget = &self.budget;
        budget.read.set(budget.read.get() + n as u64);
        if n == 0 && !buf.is_empty() {
            budget.ended.set(true);
        }
        if budget.counting.get() {
            budget.used.set(budget.used.get() + n as u64);
            if budget.used.get() > METADATA_LIMIT {
                return Err(io::Error::other(format!(
                    "an entry's headers, long names and PAX records exceed {} MiB",
                    METADATA_LIMIT >> 20
                )));
            }
        }
        Ok(n)
    }
}

/// Unpacks the layer in `blob` into the empty directory `dir`; returns the digest (with
/// `algorithm`) and size of the uncompressed tar. `blob` is read to its end.
///
/// Two threads share the work, so a pull keeps both cores busy even with one big layer:
/// this one inflates and hashes (it owns `blob`), a scoped worker parses the tar and writes
/// the files. Chunks go one way and their buffers come back to be reused.
pub(crate) fn unpack_into(
    dir: &Path,
    blob: &mut dyn Read,
    compression: Compression,
    algorithm: Algorithm,
    label: &str,
) -> Result<(Digest, u64)> {
    let stream_error = |what: &str, e: io::Error| Error::Layer {
        layer: label.to_string(),
        reason: format!("{what}: {e}"),
    };
    let extractor = Extractor::new(dir, label)?;
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(&mut *blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut *blob)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(&mut *blob)
                .map_err(|e| stream_error("starting zstd", e))?,
        ),
    };
    let mut hashing = HashingReader::new(decoder, algorithm);
    let (chunks, chunks_rx) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let (spares_tx, spares) = mpsc::channel();
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            let reader = ChunkReader {
                chunks: chunks_rx,
                spares: spares_tx,
                current: Vec::new(),
                pos: 0,
                broken: None,
            };
            let result = extract(extractor, reader);
            failed.store(result.is_err(), Ordering::Relaxed);
            result
        });
        let fed = feed(&mut hashing, &chunks, &spares, &failed);
        drop(chunks);
        let extracted = worker.join().unwrap_or_else(|_| {
            Err(Error::Layer {
                layer: label.to_string(),
                reason: "the extracting thread panicked".to_string(),
            })
        });
        // The extractor's error names the entry it was at: it comes first.
        extracted?;
        fed.map_err(|e| stream_error("reading past the end of the tar", e))
    })?;
    let (digest, size) = hashing.finish();
    io::copy(blob, &mut io::sink())
        .map_err(|e| stream_error("reading to the end of the blob", e))?;
    Ok((digest, size))
}

/// The worker: parses and extracts the tar the chunks make up.
fn extract(mut extractor: Extractor, reader: ChunkReader) -> Result<()> {
    let budget = Rc::new(MetadataBudget::default());
    let metered = Metered {
        inner: reader,
        budget: Rc::clone(&budget),
    };
    extractor.run(&mut tar::Archive::new(metered), &budget)
}

/// Sends the uncompressed stream to the worker in chunks, to its end (hashing all of it)
/// unless the worker failed. After the worker has seen the end-of-archive marker, the
/// rest is only hashed.
fn feed(
    reader: &mut impl Read,
    chunks: &SyncSender<io::Result<Vec<u8>>>,
    spares: &Receiver<Vec<u8>>,
    failed: &AtomicBool,
) -> io::Result<()> {
    let mut worker_listens = true;
    loop {
        let mut chunk = spares.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let n = match fill(reader, &mut chunk) {
            Ok(n) => n,
            Err(e) => {
                // The worker reports it, with the entry it was reading.
                let copy = io::Error::new(e.kind(), e.to_string());
                let _ = chunks.send(Err(copy));
                return Err(e);
            }
        };
        if n == 0 {
            return Ok(());
        }
        chunk.truncate(n);
        if worker_listens && chunks.send(Ok(chunk)).is_err() {
            if failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            worker_listens = false;
        }
    }
}

/// Reads until `buf` is full or the stream ends: decoders return little per call.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The worker's view of the stream: the chunks the feeding thread sends.
struct ChunkReader {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spares: Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    /// The stream's error, once it had one.
    broken: Option<String>,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            let used = std::mem::take(&mut self.current);
            // Reads after the end must keep answering 0, not index past the empty chunk.
            self.pos = 0;
            if used.capacity() > 0 {
                let _ = self.spares.send(used);
            }
            match self.chunks.recv() {
                Ok(Ok(chunk)) => self.current = chunk,
                Ok(Err(e)) => {
                    // Every later read fails the same way: the stream cannot resume.
                    self.broken = Some(e.to_string());
                    return Err(e);
                }
                Err(_) if self.broken.is_some() => {
                    return Err(io::Error::other(self.broken.clone().unwrap_or_default()));
                }
                // The feeding thread is done: the stream ended.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(chunks: Vec<io::Result<Vec<u8>>>) -> ChunkReader {
        let (tx, rx) = mpsc::sync_channel(chunks.len());
        for chunk in chunks {
            tx.send(chunk).unwrap();
        }
        ChunkReader {
            chunks: rx,
            spares: mpsc::channel().0,
            current: Vec::new(),
            pos: 0,
            broken: None,
        }
    }

    /// Found by fuzzing: reading again after the end used a stale position.
    #[test]
    fn reads_after_the_end_stay_at_the_end() {
        let mut r = reader(vec![Ok(b"abc".to_vec()), Ok(b"de".to_vec())]);
        let mut buf = [0u8; 2];
        let mut got = Vec::new();
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"abcde");
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn errors_stick() {
        let mut r = reader(vec![Ok(b"a".to_vec()), Err(io::Error::other("bad gzip"))]);
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 1);
        assert!(r.read(&mut buf).is_err());
        assert!(r
            .read(&mut buf)
            .unwrap_err()
            .to_string()
            .contains("bad gzip"));
    }
}
