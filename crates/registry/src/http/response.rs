//! Writing responses: the head, the framing headers the server owns, and each kind of body.
//!
//! The server, not the handler, decides how a body is delimited (Content-Length from the
//! body, chunked for a stream of unknown length), so a handler cannot desynchronise a
//! kept-alive connection. The one exception is HEAD, where the handler's Content-Length (the
//! GET's length) goes out as set.

use std::io::Write as _;

use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode};
use tokio::time::timeout;

use super::connection::{Transport, Wire};
use super::{date, sendfile, Response, ResponseBody};

/// Bodies up to this size are copied behind the head and sent in one write.
const COALESCE: usize = 16 * 1024;

/// What the response is for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reply {
    pub(super) is_head: bool,
    pub(super) http10: bool,
    /// The connection closes after this response: say so.
    pub(super) close: bool,
}

/// How the head delimits the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimit {
    Length(u64),
    Chunked,
    /// The handler's own Content-Length (HEAD with an Empty body), or none at all (1xx, 204, 304, and a stream
    /// of unknown length to an HTTP/1.0 client, which ends when the connection closes).
    AsIs,
}

/// Writes `response`, counting body bytes into `sent`.
pub(super) async fn write(
    wire: &mut Wire,
    head: &mut Vec<u8>,
    mut response: Response,
    reply: Reply,
    sent: &mut u64,
) -> std::io::Result<()> {
    let body = std::mem::replace(&mut response.body, ResponseBody::Empty);
    let status = response.status;
    let bodiless_status = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let delimit = match &body {
        _ if bodiless_status => Delimit::AsIs,
        ResponseBody::Empty if reply.is_head && response.headers.contains_key(CONTENT_LENGTH) => {
            Delimit::AsIs
        }
        ResponseBody::Empty => Delimit::Length(0),
        ResponseBody::Bytes(b) => Delimit::Length(b.len() as u64),
        ResponseBody::File { len, .. } => Delimit::Length(*len),
        ResponseBody::Stream { len: Some(n), .. } => Delimit::Length(*n),
        ResponseBody::Stream { len: None, .. } if reply.is_head || reply.http10 => Delimit::AsIs,
        ResponseBody::Stream { len: None, .. } => Delimit::Chunked,
    };
    let headers = &mut response.headers;
    headers.remove(TRANSFER_ENCODING);
    headers.remove(CONNECTION);
    if delimit != Delimit::AsIs || bodiless_status {
        headers.remove(CONTENT_LENGTH);
    }
    encode_head(head, status, headers, delimit, reply.close);
    if reply.is_head || bodiless_status {
        return write_head_only(wire, head).await;
    }
    match body {
        ResponseBody::Empty => write_head_only(wire, head).await,
        ResponseBody::Bytes(b) if b.len() <= COALESCE => {
            head.extend_from_slice(&b);
            write_head_only(wire, head).await?;
            *sent = b.len() as u64;
            Ok(())
        }
        ResponseBody::Bytes(b) => {
            wire.write_parts(&[head, &b]).await?;
            wire.flush().await?;
            *sent = b.len() as u64;
            Ok(())
        }
        ResponseBody::File { file, offset, len } => {
            let limit = wire.options.write_timeout;
            if let Transport::Plain(tcp) = &wire.io {
                return sendfile::send(tcp, head, &file, offset, len, limit, sent).await;
            }
            wire.write_all(head).await?;
            sendfile::copy(wire, &file, offset, len, sent).await?;
            wire.flush().await
        }
        ResponseBody::Stream { len, pieces } => {
            wire.write_all(head).await?;
            write_stream(wire, len, delimit == Delimit::Chunked, pieces, sent).await?;
            wire.flush().await
        }
    }
}

async fn write_head_only(wire: &mut Wire, head: &[u8]) -> std::io::Result<()> {
    wire.write_all(head).await?;
    wire.flush().await
}

/// The status line and headers, with the framing header, Date and `Connection: close`.
fn encode_head(
    buf: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    delimit: Delimit,
    close: bool,
) {
    buf.clear();
    buf.extend_from_slice(b"HTTP/1.1 ");
    buf.extend_from_slice(status.as_str().as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    buf.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    match delimit {
        // Writing into a Vec cannot fail.
        Delimit::Length(n) => {
            let _ = write!(buf, "content-length: {n}\r\n");
        }
        Delimit::Chunked => buf.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        Delimit::AsIs => {}
    }
    if !headers.contains_key(DATE) {
        buf.extend_from_slice(b"date: ");
        date::append_now(buf);
        buf.extend_from_slice(b"\r\n");
    }
    if close {
        buf.extend_from_slice(b"connection: close\r\n");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Relays a stream's pieces. A failed piece, a stream that ends short of its length or runs
/// past it, or a producer silent for the body timeout is an error: the connection is then
/// dropped mid-body, so the client sees a truncated response, never a wrong one.
async fn write_stream(
    wire: &mut Wire,
    len: Option<u64>,
    chunked: bool,
    mut pieces: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    sent: &mut u64,
) -> std::io::Result<()> {
    let stall = wire.options.body_timeout;
    loop {
        let piece = match timeout(stall, pieces.recv()).await {
            Err(_) => return Err(stream_error("the producer stalled")),
            Ok(None) => break,
            Ok(Some(piece)) => piece?,
        };
        if piece.is_empty() {
            continue;
        }
        if len.is_some_and(|n| *sent + piece.len() as u64 > n) {
            return Err(stream_error("more bytes than its declared length"));
        }
        if chunked {
            let mut size = [0u8; 20];
            let mut cursor = &mut size[..];
            let _ = write!(cursor, "{:x}\r\n", piece.len());
            let size_len = 20 - cursor.len();
            wire.write_parts(&[&size[..size_len], &piece, b"\r\n"])
                .await?;
        } else {
            wire.write_all(&piece).await?;
        }
        *sent += piece.len() as u64;
    }
    if len.is_some_and(|n| *sent != n) {
        return Err(stream_error("ended before its declared length"));
    }
    if chunked {
        wire.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

fn stream_error(what: &str) -> std::io::Error {
    std::io::Error::other(format!("streamed response body: {what}"))
}
