//! A small HTTP/1.1 server made for a registry.
//!
//! Why not hyper: a registry's big responses are whole files, and the CNCF registry is already
//! close to what a buffered copy over loopback can do. Serving them with `sendfile(2)` needs the
//! socket between the response head and the next request, which hyper does not give out. The
//! protocol subset a registry needs is small: requests with Content-Length or chunked bodies
//! (Go clients stream PATCH bodies chunked), `Expect: 100-continue`, keep-alive, HEAD.
//! `httparse` parses request heads; everything else is here.
//!
//! What it guarantees: a slow or malicious client cannot hold more than one small buffer
//! (heads are capped, bodies stream), cannot stall a worker (timeouts on heads and body
//! reads), and a body the handler did not read is drained or the connection is closed, so
//! keep-alive never desynchronises.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, Method, StatusCode};

use crate::error::ApiError;

/// One request. The body streams from the connection as the handler reads it.
pub struct Request<'c> {
    pub method: Method,
    /// The path exactly as sent (not percent-decoded), without the query.
    pub path: String,
    /// The raw query string without `?`; empty when there is none.
    pub query: String,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
    /// Whether the connection is TLS (for building absolute URLs).
    pub tls: bool,
    pub body: Body<'c>,
}

impl Request<'_> {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: impl http::header::AsHeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of query parameter `key`, percent-decoded; the first one if repeated.
    pub fn query_param(&self, key: &str) -> Option<String> {
        query_pairs(&self.query)
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// All values of query parameter `key` (the token endpoint's `scope` repeats).
    pub fn query_params(&self, key: &str) -> Vec<String> {
        query_pairs(&self.query)
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect()
    }
}

/// `a=1&b=x%2Fy` as decoded pairs. Malformed escapes are kept literally.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (as a space, as HTML forms and Go's url.Values encode it).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                // Two hex digits exactly: from_str_radix would also take "+A" as a number.
                let digit = |d: u8| char::from(d).to_digit(16);
                match (digit(b[i + 1]), digit(b[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why reading a whole body failed.
#[derive(Debug)]
pub enum BodyError {
    /// The body is longer than the caller's limit (the rest is not read).
    TooLarge { limit: usize },
    /// The client went away, sent a malformed chunk, or was too slow.
    Io(io::Error),
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::TooLarge { limit } => write!(f, "request body larger than {limit} bytes"),
            BodyError::Io(e) => write!(f, "reading the request body: {e}"),
        }
    }
}

/// A request body, read from the connection on demand. Implemented in `body.rs`.
pub struct Body<'c> {
    pub(crate) inner: body::BodyState<'c>,
}

/// A response body.
pub enum ResponseBody {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of `file` from `offset`: sent with sendfile(2) on plain TCP.
    File {
        file: std::fs::File,
        offset: u64,
        len: u64,
    },
    /// Pieces produced by another task (the pull-through cache streams a blob to the client
    /// while storing it). With `len` the response has a Content-Length, else it is chunked.
    /// An `Err` piece aborts the connection: the client sees a truncated body, never a
    /// wrong one.
    Stream {
        len: Option<u64>,
        pieces: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    },
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseBody::Empty => write!(f, "Empty"),
            ResponseBody::Bytes(b) => write!(f, "Bytes({})", b.len()),
            ResponseBody::File { offset, len, .. } => write!(f, "File({offset}+{len})"),
            ResponseBody::Stream { len, .. } => write!(f, "Stream({len:?})"),
        }
    }
}

/// A response. For HEAD, handlers set Content-Length themselves and leave the body Empty: the
/// server then sends their header as is. Otherwise the server sets Content-Length (or chunked
/// encoding) from the body.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ResponseBody,
    /// A short, fixed label of what was served ("blob", "manifest", ...) for /metrics.
    pub route: &'static str,
}

impl Response {
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: HeaderMap::new(),
            body: ResponseBody::Empty,
            route: "",
        }
    }

    /// Adds a header. Values that are not valid header text are dropped (they come from our
    /// own formatting, never from clients unescaped).
    pub fn header(mut self, name: HeaderName, value: impl AsRef<str>) -> Response {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.append(name, v);
        }
        self
    }

    pub fn bytes(mut self, content_type: &str, body: impl Into<Bytes>) -> Response {
        self = self.header(CONTENT_TYPE, content_type);
        self.body = ResponseBody::Bytes(body.into());
        self
    }

    pub fn json(status: StatusCode, value: &serde_json::Value) -> Response {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(status).bytes("application/json", body)
    }

    /// For HEAD: the length the GET would have, with no body.
    pub fn content_length(self, len: u64) -> Response {
        self.header(CONTENT_LENGTH, len.to_string())
    }

    pub fn route(mut self, route: &'static str) -> Response {
        self.route = route;
        self
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        Response::new(e.status()).bytes("application/json", e.body())
    }
}

/// What the server reports after each exchange (for /metrics and the access log).
#[derive(Debug, Clone)]
pub struct Exchange {
    pub method: Method,
    pub route: &'static str,
    pub status: StatusCode,
    /// Request body bytes read.
    pub bytes_in: u64,
    /// Response body bytes written.
    pub bytes_out: u64,
    pub elapsed: Duration,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What serves requests.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, request: Request<'a>) -> BoxFuture<'a, Response>;

    /// Called once per exchange after the response was written (or failed).
    fn completed(&self, _exchange: &Exchange) {}
}

/// Limits and timeouts. The defaults suit a registry on a LAN.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest request head (request line plus headers).
    pub max_head_bytes: usize,
    /// Time allowed for a request head once its first byte arrived.
    pub head_timeout: Duration,
    /// Time a kept-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Time allowed between two reads of a body (a stalled upload).
    pub body_timeout: Duration,
    /// Time allowed for one write to make progress (a client that stopped reading).
    pub write_timeout: Duration,
    /// Unread request body the server will drain to keep a connection alive; past this it
    /// closes the connection instead.
    pub max_drain_bytes: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_head_bytes: 64 * 1024,
            head_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            body_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(60),
            max_drain_bytes: 1024 * 1024,
        }
    }
}

mod body;
mod connection;
mod date;
mod response;
mod sendfile;
mod server;
#[cfg(test)]
mod tests;
mod tls;

pub use server::{serve, serve_stream};
pub use tls::load_tls;
