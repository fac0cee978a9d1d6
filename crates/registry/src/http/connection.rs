//! One client connection: read a head, call the handler, write the response, repeat.
//!
//! The connection owns one read buffer for its whole life. Heads are parsed in place with
//! `httparse`; whatever follows a head (body bytes, the next pipelined request) stays in the
//! buffer for the body reader and the next round. Requests the handler never sees (a head
//! that is malformed, too large or too slow) get a fixed error response, the connection is
//! closed, and `Handler::completed` is not called: there is no exchange to report.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, timeout_at, Instant};
use tokio_rustls::server::TlsStream;

use super::body::{BodyReader, BodyState, ChunkState, Framing};
use super::response::{self, Reply};
use super::{Body, Exchange, Handler, Request, ServerOptions};

/// The read buffer's starting size, and how much it grows by while reading a head.
const INITIAL_BUF: usize = 8 * 1024;
/// A buffer that grew past this for a body is replaced by a small one between requests, so
/// an idle connection holds little memory.
const KEEP_BUF: usize = 64 * 1024;
/// Most header lines in one request; more is answered with 431.
const MAX_HEADERS: usize = 100;
/// How long a closing connection keeps reading what the client still sends, so that the
/// kernel does not reset the connection and destroy the response before the client read it.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// The socket, plain or TLS, or any other byte stream (`serve_stream`: tests and fuzzing).
pub(super) enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    Stream(Box<dyn ByteStream>),
}

/// What `Transport::Stream` holds.
pub(super) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + Sync> ByteStream for S {}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Stream(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Stream(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Transport::Stream(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Plain(s) => s.is_write_vectored(),
            Transport::Tls(s) => s.is_write_vectored(),
            Transport::Stream(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s).poll_flush(cx),
            Transport::Stream(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Stream(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// The socket with its read buffer and timeouts: what bodies and responses read and write.
pub(super) struct Wire {
    pub(super) io: Transport,
    pub(super) rbuf: BytesMut,
    pub(super) options: Arc<ServerOptions>,
}

impl Wire {
    /// One read of up to about `want` bytes into the buffer; Ok(0) at end of stream.
    async fn read_some(&mut self, want: usize) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < want {
            self.rbuf.reserve(want);
        }
        self.io.read_buf(&mut self.rbuf).await
    }

    /// Reads body bytes; the end of the stream or a stall longer than the body timeout is an
    /// error (the body was cut short).
    pub(super) async fn fill_body(&mut self, want: usize) -> io::Result<()> {
        let limit = self.options.body_timeout;
        match timeout(limit, self.read_some(want.max(INITIAL_BUF))).await {
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no request body data for {}s", limit.as_secs_f32()),
            )),
            Ok(Ok(0)) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the client closed the connection before the request body ended",
            )),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e),
        }
    }

    /// Reads until at least `n` bytes are buffered.
    pub(super) async fn fill_to(&mut self, n: usize) -> io::Result<()> {
        while self.rbuf.len() < n {
            let missing = n - self.rbuf.len();
            self.fill_body(missing.min(super::body::MAX_BODY_READ))
                .await?;
        }
        Ok(())
    }

    /// The length (CRLF included) of the CRLF-terminated line at the buffer's start, reading
    /// as needed; lines longer than `max` are refused.
    pub(super) async fn line(&mut self, max: usize) -> io::Result<usize> {
        loop {
            let window = &self.rbuf[..self.rbuf.len().min(max)];
            if let Some(lf) = window.iter().position(|&b| b == b'\n') {
                if lf == 0 || window[lf - 1] != b'\r' {
                    return Err(super::body::bad_chunk("line not ended by CRLF"));
                }
                return Ok(lf + 1);
            }
            if self.rbuf.len() >= max {
                return Err(super::body::bad_chunk("line too long"));
            }
            self.fill_body(INITIAL_BUF).await?;
        }
    }

    /// Writes all of `buf`, failing if the client stops reading for the write timeout.
    pub(super) async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let limit = self.options.write_timeout;
        timeout(limit, self.io.write_all(buf))
            .await
            .map_err(|_| write_timed_out(limit))?
    }

    /// Writes all of `parts` in order with vectored writes (a head and a body in one call).
    pub(super) async fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let limit = self.options.write_timeout;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let mut done = 0;
        while done < total {
            let mut slices = [io::IoSlice::new(&[]); 4];
            let mut used = 0;
            let mut skip = done;
            for part in parts {
                if skip >= part.len() {
                    skip -= part.len();
                    continue;
                }
                if used == slices.len() {
                    break;
                }
                slices[used] = io::IoSlice::new(&part[skip..]);
                skip = 0;
                used += 1;
            }
            let n = timeout(limit, self.io.write_vectored(&slices[..used]))
                .await
                .map_err(|_| write_timed_out(limit))??;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            done += n;
        }
        Ok(())
    }

    pub(super) async fn flush(&mut self) -> io::Result<()> {
        let limit = self.options.write_timeout;
        timeout(limit, self.io.flush())
            .await
            .map_err(|_| write_timed_out(limit))?
    }
}

pub(super) fn write_timed_out(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("the client read nothing for {}s", limit.as_secs_f32()),
    )
}

/// A request head, parsed and checked.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) headers: HeaderMap,
    pub(super) http10: bool,
    pub(super) framing: Framing,
    pub(super) expect_continue: bool,
    /// The client said `Connection: close` (or spoke HTTP/1.0).
    pub(super) close: bool,
}

/// What reading the next head gave.
enum Next {
    Request(Box<Head>),
    /// The client went away or stayed idle: close without a word.
    Close,
    /// Answer with this status and close.
    Reject(StatusCode),
}

/// How a connection goes on after an exchange.
#[derive(Debug, PartialEq, Eq)]
enum After {
    KeepAlive,
    Close,
    /// Close, but read what the client still sends for a moment first.
    Linger,
}

struct Conn {
    wire: Wire,
    body: BodyReader,
    peer: SocketAddr,
    tls: bool,
    /// Reused for every response head.
    head_buf: Vec<u8>,
}

/// Serves one connection until it closes, the client misbehaves, or shutdown is signalled.
pub(super) async fn run(
    io: Transport,
    peer: SocketAddr,
    handler: Arc<dyn Handler>,
    options: Arc<ServerOptions>,
    mut shutdown: watch::Receiver<bool>,
) {
    let tls = matches!(io, Transport::Tls(_));
    let mut conn = Conn {
        wire: Wire {
            io,
            rbuf: BytesMut::with_capacity(INITIAL_BUF),
            options,
        },
        body: BodyReader::new(Framing::length(0), false, 0),
        peer,
        tls,
        head_buf: Vec::with_capacity(512),
    };
    let mut first = true;
    let after = loop {
        let head = match conn.next_head(first, &mut shutdown).await {
            Next::Request(head) => head,
            Next::Close => break After::Close,
            Next::Reject(status) => {
                conn.reject(status).await;
                break After::Linger;
            }
        };
        first = false;
        match conn.exchange(*head, &*handler, &shutdown).await {
            After::KeepAlive if !*shutdown.borrow() => {}
            After::KeepAlive => break After::Close,
            after => break after,
        }
    };
    conn.close(after == After::Linger).await;
}

/// Returns once `shutdown` is true; never if its sender went away without saying so.
pub(super) async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|&stop| stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Conn {
    /// Waits for and parses the next request head.
    async fn next_head(&mut self, first: bool, shutdown: &mut watch::Receiver<bool>) -> Next {
        let options = self.wire.options.clone();
        if self.wire.rbuf.is_empty() {
            // A new connection gets the head timeout to start talking, a kept-alive one the
            // idle timeout; either way shutdown closes it at once.
            let idle = match first {
                true => options.head_timeout.min(options.idle_timeout),
                false => options.idle_timeout,
            };
            tokio::select! {
                read = timeout(idle, self.wire.read_some(INITIAL_BUF)) => match read {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return Next::Close,
                },
                _ = shutdown_signalled(shutdown) => return Next::Close,
            }
        }
        let deadline = Instant::now() + options.head_timeout;
        // Parsing again after every read would let a client that sends its head a byte at a
        // time make us parse a quadratic amount: after the first try, parse only once the
        // blank line that ends a head has arrived.
        let mut scanned = 0usize;
        loop {
            let rescan_from = scanned.saturating_sub(2);
            if scanned == 0 || has_blank_line(&self.wire.rbuf[rescan_from..]) {
                match parse_head(&self.wire.rbuf) {
                    Ok(Some((_, len))) if len > options.max_head_bytes => {
                        return Next::Reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
                    }
                    Ok(Some((head, len))) => {
                        self.wire.rbuf.advance(len);
                        return Next::Request(Box::new(head));
                    }
                    Ok(None) => {}
                    Err(status) => return Next::Reject(status),
                }
            }
            if self.wire.rbuf.len() >= options.max_head_bytes {
                return Next::Reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
            scanned = self.wire.rbuf.len();
            match timeout_at(deadline, self.wire.read_some(INITIAL_BUF)).await {
                Err(_) => return Next::Reject(StatusCode::REQUEST_TIMEOUT),
                Ok(Ok(0)) | Ok(Err(_)) => return Next::Close,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// One request and its response.
    async fn exchange(
        &mut self,
        head: Head,
        handler: &dyn Handler,
        shutdown: &watch::Receiver<bool>,
    ) -> After {
        let started = std::time::Instant::now();
        let max_head = self.wire.options.max_head_bytes;
        self.body = BodyReader::new(head.framing, head.expect_continue, max_head);
        let method = head.method;
        let request = Request {
            method: method.clone(),
            path: head.path,
            query: head.query,
            headers: head.headers,
            peer: self.peer,
            tls: self.tls,
            body: Body {
                inner: BodyState {
                    wire: &mut self.wire,
                    reader: &mut self.body,
                },
            },
        };
        let response = handler.handle(request).await;
        let drain_cap = self.wire.options.max_drain_bytes;
        let drained = self.body.drain(&mut self.wire, drain_cap).await;
        let close = head.close
            || !drained
            || *shutdown.borrow()
            || wants_close(response.headers.get_all(CONNECTION));
        let (status, route) = (response.status, response.route);
        let reply = Reply {
            is_head: method == Method::HEAD,
            http10: head.http10,
            close,
        };
        let mut bytes_out = 0;
        let written = response::write(
            &mut self.wire,
            &mut self.head_buf,
            response,
            reply,
            &mut bytes_out,
        )
        .await;
        handler.completed(&Exchange {
            method,
            route,
            status,
            bytes_in: self.body.bytes_read(),
            bytes_out,
            elapsed: started.elapsed(),
        });
        self.shrink_buffer();
        match (written, drained, close) {
            (Err(_), _, _) => After::Close,
            (Ok(()), false, _) => After::Linger,
            (Ok(()), true, true) => After::Close,
            (Ok(()), true, false) => After::KeepAlive,
        }
    }

    /// Lets go of a read buffer that grew for a body, keeping what it holds.
    fn shrink_buffer(&mut self) {
        let rbuf = &mut self.wire.rbuf;
        if rbuf.capacity() > KEEP_BUF && rbuf.len() <= INITIAL_BUF {
            let mut small = BytesMut::with_capacity(INITIAL_BUF);
            small.extend_from_slice(rbuf);
            *rbuf = small;
        }
    }

    /// Answers a head the handler never saw; the connection closes after it.
    async fn reject(&mut self, status: StatusCode) {
        let reason = status.canonical_reason().unwrap_or("");
        let text = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{reason}\n",
            status.as_str(),
            reason.len() + 1,
        );
        if self.wire.write_all(text.as_bytes()).await.is_ok() {
            let _ = self.wire.flush().await;
        }
    }

    /// Closes the connection; with `linger`, first reads (and drops) what the client is
    /// still sending for a moment, so the response is not lost to a reset.
    async fn close(mut self, linger: bool) {
        let _ = timeout(LINGER, self.wire.io.shutdown()).await;
        if !linger {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            self.wire.rbuf.clear();
            match timeout_at(deadline, self.wire.read_some(INITIAL_BUF)).await {
                Ok(Ok(n)) if n > 0 => discarded += n,
                _ => break,
            }
        }
    }
}

/// Parses a complete head at the start of `buf`: the head and its length, None if more
/// bytes are needed, or the status to refuse it with.
pub(super) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, StatusCode> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        }
        Err(_) => return Err(StatusCode::BAD_REQUEST),
    };
    let bad = StatusCode::BAD_REQUEST;
    let method = parsed.method.unwrap_or_default();
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| bad)?;
    let http10 = parsed.version != Some(1);
    let (path, query) = split_target(parsed.path.unwrap_or_default()).ok_or(bad)?;
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| bad)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| bad)?;
        headers.append(name, value);
    }
    let framing = body_framing(&headers, http10).ok_or(bad)?;
    let expect_continue = !http10
        && headers.get(EXPECT).is_some_and(|v| {
            v.as_bytes()
                .trim_ascii()
                .eq_ignore_ascii_case(b"100-continue")
        });
    let close = http10 || wants_close(headers.get_all(CONNECTION));
    let head = Head {
        method,
        path,
        query,
        headers,
        http10,
        framing,
        expect_continue,
        close,
    };
    Ok(Some((head, len)))
}

/// Whether `buf` holds an empty line (LF LF or LF CR LF), which ends a head.
fn has_blank_line(buf: &[u8]) -> bool {
    let mut lfs = buf.iter().enumerate().filter(|(_, &b)| b == b'\n');
    let mut previous = None;
    lfs.any(|(i, _)| {
        let blank = previous.is_some_and(|p| i == p + 1 || (i == p + 2 && buf[p + 1] == b'\r'));
        previous = Some(i);
        blank
    })
}

/// Splits a request target into path and query. Accepts origin form (`/v2/?x`), absolute
/// form (`http://host/v2/`, which proxies send) and `*`.
fn split_target(target: &str) -> Option<(String, String)> {
    let origin = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            let rest = target.get(..scheme.len())?;
            rest.eq_ignore_ascii_case(scheme)
                .then(|| &target[scheme.len()..])
        })
        .map(|after_scheme| {
            let start = after_scheme.find(['/', '?']).unwrap_or(after_scheme.len());
            &after_scheme[start..]
        });
    let target = match origin {
        Some(rest) if !rest.starts_with('/') => format!("/{rest}"),
        Some(rest) => rest.to_owned(),
        None if target.starts_with('/') || target == "*" => target.to_owned(),
        None => return None,
    };
    Some(match target.split_once('?') {
        Some((path, query)) => (path.to_owned(), query.to_owned()),
        None => (target, String::new()),
    })
}

/// The body's framing, or None when the headers are ambiguous or unsupported: both
/// Content-Length and Transfer-Encoding, Content-Lengths that disagree, or a coding other than
/// chunked. Guessing would let a proxy in front of us and this server disagree on where a
/// request ends (request smuggling).
fn body_framing(headers: &HeaderMap, http10: bool) -> Option<Framing> {
    if headers.contains_key(TRANSFER_ENCODING) {
        if http10 || headers.contains_key(CONTENT_LENGTH) {
            return None;
        }
        let mut codings = list_tokens(headers.get_all(TRANSFER_ENCODING));
        return match (codings.next(), codings.next()) {
            (Some(coding), None) if coding.eq_ignore_ascii_case(b"chunked") => {
                Some(Framing::Chunked(ChunkState::Size))
            }
            _ => None,
        };
    }
    let mut length = None;
    for token in list_tokens(headers.get_all(CONTENT_LENGTH)) {
        let n = parse_decimal(token)?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    if headers.contains_key(CONTENT_LENGTH) && length.is_none() {
        return None;
    }
    Some(Framing::length(length.unwrap_or(0)))
}

/// The comma-separated elements of a header that may repeat, trimmed, empty ones skipped.
fn list_tokens<'a>(
    values: http::header::GetAll<'a, HeaderValue>,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    values
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

fn wants_close(values: http::header::GetAll<'_, HeaderValue>) -> bool {
    list_tokens(values).any(|t| t.eq_ignore_ascii_case(b"close"))
}

/// A Content-Length value: digits only, no sign, no overflow.
fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<(Head, usize)>, StatusCode> {
        parse_head(text.as_bytes())
    }

    #[test]
    fn parses_a_head_and_leaves_what_follows() {
        let text = "PUT /v2/a/blobs/uploads/x?digest=sha256%3Aab&n=1 HTTP/1.1\r\n\
                    Host: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcGET";
        let (h, len) = head(text).unwrap().unwrap();
        assert_eq!(&text[len..], "abcGET");
        assert_eq!(h.method, Method::PUT);
        assert_eq!(h.path, "/v2/a/blobs/uploads/x");
        assert_eq!(h.query, "digest=sha256%3Aab&n=1");
        assert_eq!(h.framing, Framing::length(3));
        assert!(h.expect_continue && !h.close && !h.http10);
    }

    #[test]
    fn partial_heads_ask_for_more() {
        assert!(head("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(head("GE").unwrap().is_none());
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let bad = [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET nopath HTTP/1.1\r\n\r\n",
            "G@T / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        ];
        for text in bad {
            assert_eq!(head(text).err(), Some(StatusCode::BAD_REQUEST), "{text:?}");
        }
        let same = "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\n";
        assert_eq!(head(same).unwrap().unwrap().0.framing, Framing::length(3));
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding:  Chunked \r\n\r\n";
        let framing = head(chunked).unwrap().unwrap().0.framing;
        assert_eq!(framing, Framing::Chunked(ChunkState::Size));
    }

    #[test]
    fn connection_close_and_http10_close() {
        let h = head("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n");
        assert!(h.unwrap().unwrap().0.close);
        let h = head("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert!(h.close && h.http10 && !h.expect_continue);
    }

    #[test]
    fn too_many_headers_is_431() {
        let mut text = String::from("GET / HTTP/1.1\r\n");
        for i in 0..=MAX_HEADERS {
            text.push_str(&format!("x-{i}: y\r\n"));
        }
        text.push_str("\r\n");
        assert_eq!(
            head(&text).err(),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }

    #[test]
    fn blank_lines_end_heads() {
        assert!(has_blank_line(b"GET / HTTP/1.1\r\nA: b\r\n\r\n"));
        assert!(has_blank_line(b"\n\n"));
        assert!(has_blank_line(b"x\n\r\n"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nA: b\r\n"));
        assert!(!has_blank_line(b"\n\r\r\n"));
        assert!(!has_blank_line(b""));
    }

    #[test]
    fn request_targets() {
        let t = |s: &str| split_target(s).map(|(p, q)| format!("{p}|{q}"));
        assert_eq!(t("/v2/").as_deref(), Some("/v2/|"));
        assert_eq!(
            t("/v2/_catalog?n=1&last=a").as_deref(),
            Some("/v2/_catalog|n=1&last=a")
        );
        assert_eq!(t("http://reg:5000/v2/x?y").as_deref(), Some("/v2/x|y"));
        assert_eq!(t("HTTPS://reg").as_deref(), Some("/|"));
        assert_eq!(t("http://reg?q").as_deref(), Some("/|q"));
        assert_eq!(t("*").as_deref(), Some("*|"));
        assert_eq!(t("v2/"), None);
    }
}
