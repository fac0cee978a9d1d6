//! Request bodies: Content-Length and chunked, read on demand, with `Expect: 100-continue`.
//!
//! The framing state lives in the connection ([`BodyReader`]), not in the [`Body`] the handler
//! holds: after the handler returns (and drops its `Body`), the connection still has to know
//! how much of the body is left so it can drain it or close.
//!
//! Pieces are cut out of the connection's read buffer with `split_to().freeze()`: the bytes
//! that arrived are handed out without a copy, and once the handler drops a piece the buffer
//! reclaims its memory for the next read.

use std::io;

use bytes::{Buf, Bytes, BytesMut};

use super::connection::Wire;
use super::{Body, BodyError};

/// Largest single read from the socket for body data.
pub(super) const MAX_BODY_READ: usize = 256 * 1024;
/// Longest chunk-size line (size plus extensions). Real clients send a few bytes.
const MAX_CHUNK_LINE: usize = 4096;

/// The connection's read side and framing state, lent to the handler for one request.
pub(crate) struct BodyState<'c> {
    pub(super) wire: &'c mut Wire,
    pub(super) reader: &'c mut BodyReader,
}

/// How a request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Content-Length (0 when the request has neither Content-Length nor chunked).
    Length {
        declared: u64,
        remaining: u64,
    },
    Chunked(ChunkState),
}

impl Framing {
    pub(super) fn length(len: u64) -> Framing {
        Framing::Length {
            declared: len,
            remaining: len,
        }
    }
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk; this many data bytes are left.
    Data(u64),
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd,
    /// After the last chunk: skipping trailer lines, this many bytes of them so far.
    Trailers(usize),
    Done,
}

/// One request's body as the connection tracks it.
#[derive(Debug)]
pub(super) struct BodyReader {
    framing: Framing,
    /// Data bytes consumed, by the handler and by draining.
    read: u64,
    /// The client sent `Expect: 100-continue` and has not been told to go on yet.
    continue_pending: bool,
    /// A read failed (timeout, malformed chunk, client gone): the connection cannot be reused.
    failed: bool,
    /// Cap on trailer bytes (the head limit).
    max_trailers: usize,
}

impl BodyReader {
    pub(super) fn new(framing: Framing, expect_continue: bool, max_trailers: usize) -> Self {
        let mut reader = BodyReader {
            framing,
            read: 0,
            continue_pending: false,
            failed: false,
            max_trailers,
        };
        reader.continue_pending = expect_continue && !reader.is_done();
        reader
    }

    pub(super) fn bytes_read(&self) -> u64 {
        self.read
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(
            self.framing,
            Framing::Length { remaining: 0, .. } | Framing::Chunked(ChunkState::Done)
        )
    }

    /// The next piece of body data, or None at the end.
    pub(super) async fn next(&mut self, wire: &mut Wire) -> io::Result<Option<Bytes>> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier read of this request body failed",
            ));
        }
        match self.next_piece(wire).await {
            Ok(piece) => {
                if let Some(p) = &piece {
                    self.read += p.len() as u64;
                }
                Ok(piece)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    async fn next_piece(&mut self, wire: &mut Wire) -> io::Result<Option<Bytes>> {
        if self.is_done() {
            return Ok(None);
        }
        self.send_continue(wire).await?;
        loop {
            let state = match &mut self.framing {
                Framing::Length { remaining, .. } => return take_data(wire, remaining).await,
                Framing::Chunked(state) => state,
            };
            match state {
                ChunkState::Size => *state = read_chunk_size(wire).await?,
                ChunkState::Data(remaining) => {
                    let piece = take_data(wire, remaining).await?;
                    if *remaining == 0 {
                        *state = ChunkState::DataEnd;
                    }
                    return Ok(piece);
                }
                ChunkState::DataEnd => {
                    wire.fill_to(2).await?;
                    if &wire.rbuf[..2] != b"\r\n" {
                        return Err(bad_chunk("chunk data not followed by CRLF"));
                    }
                    wire.rbuf.advance(2);
                    *state = ChunkState::Size;
                }
                ChunkState::Trailers(seen) => {
                    let room = self.max_trailers.saturating_sub(*seen).max(2);
                    let line = wire.line(room).await?;
                    wire.rbuf.advance(line);
                    *state = match line {
                        2 => ChunkState::Done,
                        _ => ChunkState::Trailers(*seen + line),
                    };
                }
                ChunkState::Done => return Ok(None),
            }
        }
    }

    /// Tells a client waiting on `Expect: 100-continue` to send its body.
    async fn send_continue(&mut self, wire: &mut Wire) -> io::Result<()> {
        if self.continue_pending {
            self.continue_pending = false;
            wire.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            wire.flush().await?;
        }
        Ok(())
    }

    /// Reads what the handler left unread, up to `cap` bytes, so the connection can be
    /// reused. False when it cannot be: the body was broken, too long to drain, or the client
    /// still waits for a `100 Continue` it will not get (it may never send the body).
    pub(super) async fn drain(&mut self, wire: &mut Wire, cap: u64) -> bool {
        if self.is_done() {
            return !self.failed;
        }
        if self.failed || self.continue_pending {
            return false;
        }
        if let Framing::Length { remaining, .. } = self.framing {
            if remaining > cap {
                return false;
            }
        }
        let mut drained = 0u64;
        loop {
            match self.next(wire).await {
                Ok(Some(piece)) => {
                    drained += piece.len() as u64;
                    if drained > cap {
                        return false;
                    }
                }
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    /// A Content-Length body of at most `limit` bytes, read whole into one buffer.
    async fn read_whole(&mut self, wire: &mut Wire, limit: usize) -> Option<io::Result<Bytes>> {
        let Framing::Length { remaining, .. } = self.framing else {
            return None;
        };
        let want = usize::try_from(remaining).ok().filter(|&n| n <= limit)?;
        if self.failed {
            return None;
        }
        let result = async {
            self.send_continue(wire).await?;
            wire.rbuf.reserve(want.saturating_sub(wire.rbuf.len()));
            wire.fill_to(want).await?;
            Ok(wire.rbuf.split_to(want).freeze())
        }
        .await;
        match &result {
            Ok(whole) => {
                self.framing = Framing::length(0);
                self.read += whole.len() as u64;
            }
            Err(_) => self.failed = true,
        }
        Some(result)
    }
}

/// Up to `*remaining` bytes of data that are buffered, reading first if none are.
async fn take_data(wire: &mut Wire, remaining: &mut u64) -> io::Result<Option<Bytes>> {
    if *remaining == 0 {
        return Ok(None);
    }
    if wire.rbuf.is_empty() {
        let want = usize::try_from(*remaining).unwrap_or(usize::MAX);
        wire.fill_body(want.min(MAX_BODY_READ)).await?;
    }
    let n = usize::try_from(*remaining)
        .unwrap_or(usize::MAX)
        .min(wire.rbuf.len());
    *remaining -= n as u64;
    Ok(Some(wire.rbuf.split_to(n).freeze()))
}

/// Reads a `size[;ext...]CRLF` line; the state that follows it.
async fn read_chunk_size(wire: &mut Wire) -> io::Result<ChunkState> {
    let line = wire.line(MAX_CHUNK_LINE).await?;
    let size = parse_chunk_size(&wire.rbuf[..line - 2])?;
    wire.rbuf.advance(line);
    Ok(match size {
        0 => ChunkState::Trailers(0),
        n => ChunkState::Data(n),
    })
}

/// The hex size of a chunk-size line (without its CRLF); extensions are ignored.
pub(super) fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return Err(bad_chunk("chunk size is not 1 to 16 hex digits"));
    }
    let mut size = 0u64;
    for &b in &line[..digits] {
        // Each digit is a hex digit (checked above), so to_digit cannot fail.
        let d = (b as char).to_digit(16).unwrap_or(0);
        size = size << 4 | u64::from(d);
    }
    let rest = &line[digits..];
    let after_ws = rest.iter().position(|&b| b != b' ' && b != b'\t');
    match after_ws.map(|i| rest[i]) {
        None | Some(b';') => {}
        Some(_) => return Err(bad_chunk("junk after the chunk size")),
    }
    if rest.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(bad_chunk("control character in a chunk extension"));
    }
    Ok(size)
}

pub(super) fn bad_chunk(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed chunked body: {what}"),
    )
}

impl Body<'_> {
    /// The body's length when it is known up front: the Content-Length, or 0 for a request
    /// with neither Content-Length nor chunked encoding. None for chunked bodies.
    pub fn content_length(&self) -> Option<u64> {
        match self.inner.reader.framing {
            Framing::Length { declared, .. } => Some(declared),
            Framing::Chunked(_) => None,
        }
    }

    /// The next piece of the body, or None at its end. Sends `100 Continue` first if the
    /// client asked for it.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        let BodyState { wire, reader } = &mut self.inner;
        reader.next(wire).await
    }

    /// The whole body, refused (without reading the rest) past `limit` bytes.
    pub async fn to_bytes(&mut self, limit: usize) -> Result<Bytes, BodyError> {
        if self.content_length().is_some_and(|n| n > limit as u64) {
            return Err(BodyError::TooLarge { limit });
        }
        let BodyState { wire, reader } = &mut self.inner;
        if let Some(whole) = reader.read_whole(wire, limit).await {
            return whole.map_err(BodyError::Io);
        }
        let mut first: Option<Bytes> = None;
        let mut joined = BytesMut::new();
        let mut total = 0usize;
        while let Some(piece) = reader.next(wire).await.map_err(BodyError::Io)? {
            total = total.saturating_add(piece.len());
            if total > limit {
                return Err(BodyError::TooLarge { limit });
            }
            match first.take() {
                None if joined.is_empty() => first = Some(piece),
                earlier => {
                    if let Some(earlier) = earlier {
                        joined.extend_from_slice(&earlier);
                    }
                    joined.extend_from_slice(&piece);
                }
            }
        }
        Ok(first.unwrap_or_else(|| joined.freeze()))
    }

    /// Body bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.inner.reader.bytes_read()
    }
}
