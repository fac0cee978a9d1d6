//! The streaming side of unpacking a layer: decompress, hash the uncompressed tar for its
//! diff ID, hand it to the extractor, then read both streams to their ends (the diff ID
//! covers every uncompressed byte, and the caller hashes the compressed blob as it is read).

use std::cell::Cell;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use super::extract::Extractor;
use crate::digest::{Algorithm, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::media::Compression;

/// What the tar parser may read between two entries' data (headers, GNU long names, PAX
/// records, sparse maps): it buffers all of that in memory, so a hostile tar could
/// otherwise make it allocate without bound.
const METADATA_LIMIT: u64 = 4 << 20;
/// Serves the tar parser's 512-byte header reads without a decompressor call each.
const READ_AHEAD: usize = 256 << 10;

/// Counts what the tar parser reads while it looks for the next entry.
#[derive(Default)]
pub(crate) struct MetadataBudget {
    counting: Cell<bool>,
    used: Cell<u64>,
}

impl MetadataBudget {
    pub(crate) fn start(&self) {
        self.used.set(0);
        self.counting.set(true);
    }

    pub(crate) fn stop(&self) {
        self.counting.set(false);
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
    let mut extractor = Extractor::new(dir, label)?;
    let decoder: Box<dyn Read + '_> = match compression {
        Compression::None => Box::new(&mut *blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut *blob)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(&mut *blob)
                .map_err(|e| stream_error("starting zstd", e))?,
        ),
    };
    let hashing = HashingReader::new(decoder, algorithm);
    let budget = Rc::new(MetadataBudget::default());
    let metered = Metered {
        inner: BufReader::with_capacity(READ_AHEAD, hashing),
        budget: Rc::clone(&budget),
    };
    let mut archive = tar::Archive::new(metered);
    extractor.run(&mut archive, &budget)?;

    let mut rest = archive.into_inner().inner;
    io::copy(&mut rest, &mut io::sink())
        .map_err(|e| stream_error("reading past the end of the tar", e))?;
    let (digest, size) = rest.into_inner().finish();
    io::copy(blob, &mut io::sink())
        .map_err(|e| stream_error("reading to the end of the blob", e))?;
    Ok((digest, size))
}
