//! The Docker Engine API client the `gorae` CLI uses: HTTP/1.1 over a unix socket or tcp,
//! one fresh connection per request (the CLI makes few, and a hijacked or streaming
//! connection is never reused anyway).
//!
//! Errors print as the docker CLI prints them: a daemon's `{"message": ...}` becomes
//! "Error response from daemon: ...", an absent daemon "Cannot connect to the gorae daemon at
//! unix:///... Is the daemon running?". Streaming responses (logs, events, stats, pull
//! progress) are read chunk by chunk or JSON value by JSON value; attach and exec start are
//! hijacked (101 Switching Protocols) and handed back as a raw duplex stream, with
//! [`Demuxer`] splitting docker's multiplexed framing into stdout and stderr.

use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, HeaderValue};
pub use hyper::{Method, StatusCode};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_rustls::rustls::{crypto::ring, ClientConfig, RootCertStore};

/// The API version the client asks for in every path (docker 28's).
pub const API_VERSION: &str = "1.50";

/// Content type of a hijacked or logs stream with docker's 8-byte frame headers.
pub const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";

/// Where the daemon listens: `unix:///path` or `tcp://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Unix(PathBuf),
    Tcp(String),
}

impl Host {
    /// Accepts docker's `-H` spellings: `unix:///p`, `tcp://h:p`, a bare absolute path.
    pub fn parse(text: &str) -> Result<Host, ClientError> {
        if let Some(path) = text.strip_prefix("unix://") {
            if path.starts_with('/') {
                return Ok(Host::Unix(PathBuf::from(path)));
            }
        } else if let Some(addr) = text.strip_prefix("tcp://") {
            let addr = addr.trim_end_matches('/');
            if !addr.is_empty() {
                let with_port = if addr.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']')) {
                    addr.to_string()
                } else {
                    format!("{addr}:2375")
                };
                return Ok(Host::Tcp(with_port));
            }
        } else if text.starts_with('/') {
            return Ok(Host::Unix(PathBuf::from(text)));
        }
        Err(ClientError::BadHost(text.to_string()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Unix(path) => write!(f, "unix://{}", path.display()),
            Host::Tcp(addr) => write!(f, "tcp://{addr}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Cannot connect to the gorae daemon at {host}. Is the daemon running?")]
    Connect {
        host: String,
        #[source]
        source: std::io::Error,
    },
    /// A 4xx/5xx answer; `message` is the daemon's `{"message"}` (or its body as text).
    #[error("Error response from daemon: {message}")]
    Daemon { status: u16, message: String },
    #[error("invalid daemon host {0:?}: use unix:///path or tcp://host:port")]
    BadHost(String),
    #[error("talking to the daemon at {host}: {source}")]
    Http {
        host: String,
        #[source]
        source: hyper::Error,
    },
    #[error("the daemon's answer to {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the daemon's answer to {what}: {detail}")]
    Protocol { what: String, detail: String },
    #[error("{}: {reason}", path.display())]
    Tls { path: PathBuf, reason: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// The HTTP status of a daemon error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Daemon { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The daemon's own message, without "Error response from daemon: ".
    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            ClientError::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }

    pub fn is_connect(&self) -> bool {
        matches!(self, ClientError::Connect { .. })
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A request body: nothing, bytes, or a stream of chunks (tar uploads). A producer that
/// fails sends an `Err`, which aborts the request instead of sending a truncated body.
pub enum RequestBody {
    Empty,
    Full(Bytes),
    Channel(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl RequestBody {
    pub fn json(value: &impl Serialize) -> RequestBody {
        // Serializing the crate's own model types to a Vec cannot fail.
        RequestBody::Full(Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::io::Result<Frame<Bytes>>>> {
        match self.get_mut() {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Full(bytes) if bytes.is_empty() => Poll::Ready(None),
            RequestBody::Full(bytes) => Poll::Ready(Some(Ok(Frame::data(std::mem::take(bytes))))),
            RequestBody::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Full(bytes) => bytes.is_empty(),
            RequestBody::Channel(_) => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Empty => SizeHint::with_exact(0),
            RequestBody::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            RequestBody::Channel(_) => SizeHint::default(),
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    host: Host,
    /// For tcp hosts: TLS with this config (the daemon's CA, our client certificate).
    tls: Option<Arc<ClientConfig>>,
}

/// A TLS client config that trusts `ca` for the daemon and presents `cert`/`key`, as
/// docker's `--tlsverify --tlscacert --tlscert --tlskey` do.
pub fn tls_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let tls_error = |path: &Path, reason: String| ClientError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let certs = |path: &Path| -> Result<Vec<CertificateDer<'static>>> {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|c| c.collect::<Result<Vec<_>, _>>())
            .map_err(|e| tls_error(path, format!("reading certificates: {e}")))?;
        if certs.is_empty() {
            return Err(tls_error(path, "no CERTIFICATE block in the file".into()));
        }
        Ok(certs)
    };
    let mut roots = RootCertStore::empty();
    for c in certs(ca)? {
        roots
            .add(c)
            .map_err(|e| tls_error(ca, format!("not a usable CA certificate: {e}")))?;
    }
    let chain = certs(cert)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| tls_error(key, format!("reading the private key: {e}")))?;
    // A named provider: the process default depends on other crates' rustls features.
    let mut config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(cert, format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| tls_error(key, format!("unusable with {}: {e}", cert.display())))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A response whose body is read as it arrives.
pub struct ResponseStream {
    headers: HeaderMap,
    body: Incoming,
    buf: BytesMut,
    what: String,
    host: String,
}

/// A hijacked connection: raw bytes both ways. Shut its write half down to tell the daemon
/// stdin has ended.
pub struct Hijacked {
    pub stream: TokioIo<hyper::upgrade::Upgraded>,
    /// Whether the output carries docker's 8-byte frame headers (no tty).
    pub multiplexed: bool,
}

impl Client {
    pub fn new(host: Host) -> Client {
        Client { host, tls: None }
    }

    /// Speak TLS to tcp hosts.
    pub fn with_tls(mut self, config: Arc<ClientConfig>) -> Client {
        self.tls = Some(config);
        self
    }

    pub fn host(&self) -> &Host {
        &self.host
    }

    async fn connect(&self) -> Result<Box<dyn Io>> {
        let connect_error = |source| ClientError::Connect {
            host: self.host.to_string(),
            source,
        };
        Ok(match &self.host {
            Host::Unix(path) => Box::new(
                tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(connect_error)?,
            ),
            Host::Tcp(addr) => {
                let tcp = tokio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(connect_error)?;
                match &self.tls {
                    None => Box::new(tcp),
                    Some(config) => Box::new(self.handshake(addr, tcp, config.clone()).await?),
                }
            }
        })
    }

    async fn handshake(
        &self,
        addr: &str,
        tcp: tokio::net::TcpStream,
        config: Arc<ClientConfig>,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let host = match addr.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => addr,
        };
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| ClientError::BadHost(format!("{addr}: not a TLS server name: {e}")))?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|source| ClientError::Io {
                what: format!("TLS handshake with {}", self.host),
                source,
            })
    }

    fn http_error(&self, source: hyper::Error) -> ClientError {
        ClientError::Http {
            host: self.host.to_string(),
            source,
        }
    }

    /// Sends one request on a new connection and returns the response head; 4xx and 5xx
    /// answers become [`ClientError::Daemon`]. `path` includes the query, without the
    /// version prefix.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: RequestBody,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>> {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.http_error(e))?;
        tokio::spawn(async move {
            // Its error, if any, surfaces in the request or the body read.
            let _ = conn.with_upgrades().await;
        });
        let content_type = match body {
            RequestBody::Full(_) => "application/json",
            _ => "application/x-tar",
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/v{API_VERSION}{path}"))
            .header("Host", "gorae")
            .header("User-Agent", concat!("gorae/", env!("CARGO_PKG_VERSION")));
        if !matches!(body, RequestBody::Empty) {
            request = request.header("Content-Type", content_type);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).map_err(|e| ClientError::Protocol {
            what: path.to_string(),
            detail: e.to_string(),
        })?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.http_error(e))?;
        if response.status().as_u16() >= 400 {
            return Err(self.daemon_error(response).await);
        }
        Ok(response)
    }

    async fn daemon_error(&self, response: Response<Incoming>) -> ClientError {
        let status = response.status();
        let body = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return self.http_error(e),
        };
        ClientError::Daemon {
            status: status.as_u16(),
            message: error_message(status, &body),
        }
    }

    /// GET a JSON document.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self
            .send(Method::GET, path, RequestBody::Empty, &[])
            .await?;
        self.read_json(path, response).await
    }

    /// POST a body (a JSON one: [`RequestBody::json`]) and decode the JSON answer.
    pub async fn post_json<T: DeserializeOwned>(&self, path: &str, body: RequestBody) -> Result<T> {
        let response = self.send(Method::POST, path, body, &[]).await?;
        self.read_json(path, response).await
    }

    /// A request whose answer carries no document the caller needs; returns the status
    /// (304 Not Modified comes back as a success, as the docker CLI treats it).
    pub async fn call(&self, method: Method, path: &str, body: RequestBody) -> Result<StatusCode> {
        let response = self.send(method, path, body, &[]).await?;
        let status = response.status();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_error(e))?;
        Ok(status)
    }

    async fn read_json<T: DeserializeOwned>(
        &self,
        what: &str,
        response: Response<Incoming>,
    ) -> Result<T> {
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_error(e))?
            .to_bytes();
        serde_json::from_slice(&body).map_err(|source| ClientError::Json {
            what: what.to_string(),
            source,
        })
    }

    /// The raw body of a GET, whole (inspect output keeps the daemon's field order).
    pub async fn get_bytes(&self, path: &str) -> Result<Bytes> {
        let response = self
            .send(Method::GET, path, RequestBody::Empty, &[])
            .await?;
        Ok(response
            .into_body()
            .collect()
            .await
            .map_err(|e| self.http_error(e))?
            .to_bytes())
    }

    /// A request whose body is read as it arrives.
    pub async fn stream(
        &self,
        method: Method,
        path: &str,
        body: RequestBody,
        headers: &[(&str, &str)],
    ) -> Result<ResponseStream> {
        let response = self.send(method, path, body, headers).await?;
        let (parts, body) = response.into_parts();
        Ok(ResponseStream {
            headers: parts.headers,
            body,
            buf: BytesMut::new(),
            what: path.to_string(),
            host: self.host.to_string(),
        })
    }

    /// Attach or exec start: asks for an upgrade and returns the raw connection once the
    /// daemon answers 101.
    pub async fn hijack(&self, path: &str, body: RequestBody) -> Result<Hijacked> {
        let headers = [("Connection", "Upgrade"), ("Upgrade", "tcp")];
        let response = self.send(Method::POST, path, body, &headers).await?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(ClientError::Protocol {
                what: path.to_string(),
                detail: format!(
                    "expected 101 Switching Protocols, got {}",
                    response.status()
                ),
            });
        }
        let multiplexed = content_type(response.headers()) == Some(MULTIPLEXED);
        let upgraded = hyper::upgrade::on(response)
            .await
            .map_err(|e| self.http_error(e))?;
        Ok(Hijacked {
            stream: TokioIo::new(upgraded),
            multiplexed,
        })
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("content-type")
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// The daemon's `{"message"}`, else its body as text, else the status's reason.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    if let Ok(m) = serde_json::from_slice::<Message>(body) {
        return m.message;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unknown error")
            .to_string()
    } else {
        text
    }
}

impl ResponseStream {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Whether the daemon said the body is multiplexed (logs of a container without tty).
    pub fn content_type(&self) -> Option<&str> {
        content_type(&self.headers)
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        if !self.buf.is_empty() {
            return Ok(Some(self.buf.split().freeze()));
        }
        self.next_data().await
    }

    async fn next_data(&mut self) -> Result<Option<Bytes>> {
        loop {
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => {
                    return Err(ClientError::Http {
                        host: self.host.clone(),
                        source,
                    })
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// The next JSON value of a stream of them (newline-separated or not), `None` at the end.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            let mut values = serde_json::Deserializer::from_slice(&self.buf).into_iter::<T>();
            match values.next() {
                Some(Ok(value)) => {
                    let used = values.byte_offset();
                    let _ = self.buf.split_to(used);
                    return Ok(Some(value));
                }
                Some(Err(e)) if !e.is_eof() => {
                    return Err(ClientError::Json {
                        what: self.what.clone(),
                        source: e,
                    })
                }
                _ => {}
            }
            match self.next_data().await? {
                Some(data) => self.buf.extend_from_slice(&data),
                None if self.buf.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                None => {
                    return Err(ClientError::Protocol {
                        what: self.what.clone(),
                        detail: "the stream ended inside a JSON value".into(),
                    })
                }
            }
        }
    }

    /// The rest of the body, whole.
    pub async fn into_bytes(mut self) -> Result<Bytes> {
        let mut all = std::mem::take(&mut self.buf);
        while let Some(data) = self.next_data().await? {
            all.extend_from_slice(&data);
        }
        Ok(all.freeze())
    }
}

/// Which stream a multiplexed frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin,
    Stdout,
    Stderr,
    /// Docker's stream 3: an error the daemon reports in band.
    SystemErr,
}

/// Splits docker's multiplexed framing (`[stream, 0, 0, 0, len u32 BE]` then `len` bytes)
/// into payload slices, whatever the chunk boundaries.
#[derive(Debug, Default)]
pub struct Demuxer {
    header: [u8; 8],
    have: usize,
    remaining: usize,
    stream: Option<StdStream>,
}

impl Demuxer {
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// The payload pieces in `data`, in order. A frame split across chunks comes out in
    /// pieces; an unknown stream byte is an error (the stream is not multiplexed).
    pub fn feed<'a>(&mut self, mut data: &'a [u8]) -> Result<Vec<(StdStream, &'a [u8])>> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if let (Some(stream), true) = (self.stream, self.remaining > 0) {
                let n = self.remaining.min(data.len());
                out.push((stream, &data[..n]));
                self.remaining -= n;
                data = &data[n..];
                continue;
            }
            let n = (8 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 8 {
                self.have = 0;
                self.stream = Some(match self.header[0] {
                    0 => StdStream::Stdin,
                    1 => StdStream::Stdout,
                    2 => StdStream::Stderr,
                    3 => StdStream::SystemErr,
                    other => {
                        return Err(ClientError::Protocol {
                            what: "a multiplexed stream".into(),
                            detail: format!("unknown stream {other} in a frame header"),
                        })
                    }
                });
                let len = [
                    self.header[4],
                    self.header[5],
                    self.header[6],
                    self.header[7],
                ];
                self.remaining = u32::from_be_bytes(len) as usize;
            }
        }
        Ok(out)
    }

    /// Whether the input so far ended on a frame boundary.
    pub fn at_boundary(&self) -> bool {
        self.have == 0 && self.remaining == 0
    }
}

/// Percent-encodes a query value (everything but RFC 3986's unreserved characters).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `?k=v&...` from pairs (nothing for no pairs), values escaped.
pub fn query(pairs: &[(&str, String)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", query_escape(v)))
        .collect();
    format!("?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn collect(d: &mut Demuxer, chunks: &[&[u8]]) -> Vec<(StdStream, Vec<u8>)> {
        let mut out: Vec<(StdStream, Vec<u8>)> = Vec::new();
        for chunk in chunks {
            for (s, bytes) in d.feed(chunk).unwrap() {
                match out.last_mut() {
                    Some((last, acc)) if *last == s => acc.extend_from_slice(bytes),
                    _ => out.push((s, bytes.to_vec())),
                }
            }
        }
        out
    }

    #[test]
    fn demuxes_whole_frames() {
        let mut data = frame(1, b"out\n");
        data.extend(frame(2, b"err\n"));
        data.extend(frame(1, b""));
        data.extend(frame(1, b"more"));
        let mut d = Demuxer::new();
        let got = collect(&mut d, &[&data]);
        assert_eq!(
            got,
            vec![
                (StdStream::Stdout, b"out\n".to_vec()),
                (StdStream::Stderr, b"err\n".to_vec()),
                (StdStream::Stdout, b"more".to_vec()),
            ]
        );
        assert!(d.at_boundary());
    }

    #[test]
    fn demuxes_across_any_split() {
        let mut data = frame(1, b"hello world");
        data.extend(frame(2, b"oops"));
        for split in 0..data.len() {
            for split2 in split..data.len() {
                let mut d = Demuxer::new();
                let got = collect(
                    &mut d,
                    &[&data[..split], &data[split..split2], &data[split2..]],
                );
                assert_eq!(
                    got,
                    vec![
                        (StdStream::Stdout, b"hello world".to_vec()),
                        (StdStream::Stderr, b"oops".to_vec()),
                    ],
                    "split at {split},{split2}"
                );
            }
        }
    }

    #[test]
    fn demuxer_rejects_raw_bytes() {
        let mut d = Demuxer::new();
        assert!(d.feed(b"hello, this is not framed").is_err());
        let mut d = Demuxer::new();
        let partial = &frame(1, b"abc")[..5];
        d.feed(partial).unwrap();
        assert!(!d.at_boundary());
    }

    #[test]
    fn parses_hosts() {
        assert_eq!(
            Host::parse("unix:///run/gorae/gorae.sock").unwrap(),
            Host::Unix("/run/gorae/gorae.sock".into())
        );
        assert_eq!(
            Host::parse("/tmp/x.sock").unwrap(),
            Host::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            Host::parse("tcp://127.0.0.1:2375").unwrap(),
            Host::Tcp("127.0.0.1:2375".into())
        );
        assert_eq!(
            Host::parse("tcp://localhost").unwrap(),
            Host::Tcp("localhost:2375".into())
        );
        assert!(Host::parse("ssh://x").is_err());
        assert!(Host::parse("unix://relative").is_err());
        assert_eq!(
            Host::Unix("/a/b.sock".into()).to_string(),
            "unix:///a/b.sock"
        );
    }

    #[test]
    fn error_messages_like_docker() {
        let e = ClientError::Daemon {
            status: 404,
            message: error_message(
                StatusCode::NOT_FOUND,
                br#"{"message":"No such container: x"}"#,
            ),
        };
        assert_eq!(
            e.to_string(),
            "Error response from daemon: No such container: x"
        );
        assert_eq!(
            error_message(StatusCode::BAD_GATEWAY, b"upstream gone\n"),
            "upstream gone"
        );
        assert_eq!(
            error_message(StatusCode::INTERNAL_SERVER_ERROR, b""),
            "Internal Server Error"
        );
        let e = ClientError::Connect {
            host: "unix:///run/gorae/gorae.sock".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert_eq!(
            e.to_string(),
            "Cannot connect to the gorae daemon at unix:///run/gorae/gorae.sock. Is the daemon running?"
        );
    }

    /// A one-connection server on a unix socket: reads the request head, answers `response`,
    /// then (for hijacks) hands the stream to `after`.
    async fn serve_once<F, Fut>(
        response: &'static [u8],
        after: F,
    ) -> (tempfile::TempDir, Client, tokio::task::JoinHandle<Vec<u8>>)
    where
        F: FnOnce(tokio::net::UnixStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Vec<u8>> + Send,
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            stream.write_all(response).await.unwrap();
            let mut got = head;
            got.extend(after(stream).await);
            got
        });
        (dir, Client::new(Host::Unix(path)), task)
    }

    #[tokio::test]
    async fn daemon_errors_read_as_docker_prints_them() {
        let (_dir, client, server) = serve_once(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n{\"message\":\"No such container: x\"}",
            |_| async { Vec::new() },
        )
        .await;
        let err = client
            .get_json::<serde_json::Value>("/containers/x/json")
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(404));
        assert_eq!(
            err.to_string(),
            "Error response from daemon: No such container: x"
        );
        let head = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(
            head.starts_with("GET /v1.50/containers/x/json HTTP/1.1\r\n"),
            "{head}"
        );
    }

    #[tokio::test]
    async fn json_streams_across_chunks() {
        let (_dir, client, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n5\r\n\n{\"a\"\r\n4\r\n:2}\n\r\n0\r\n\r\n",
            |_| async { Vec::new() },
        )
        .await;
        let mut stream = client
            .stream(Method::GET, "/events", RequestBody::Empty, &[])
            .await
            .unwrap();
        let first: serde_json::Value = stream.json().await.unwrap().unwrap();
        let second: serde_json::Value = stream.json().await.unwrap().unwrap();
        assert_eq!(
            (first["a"].as_i64(), second["a"].as_i64()),
            (Some(1), Some(2))
        );
        assert!(stream.json::<serde_json::Value>().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn hijack_hands_back_the_raw_stream() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (_dir, client, server) = serve_once(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
            |mut stream| async move {
                stream.write_all(&frame(1, b"out")).await.unwrap();
                stream.write_all(&frame(2, b"err")).await.unwrap();
                let mut input = Vec::new();
                stream.read_to_end(&mut input).await.unwrap();
                input
            },
        )
        .await;
        let hijacked = client
            .hijack("/containers/x/attach?stream=1", RequestBody::Empty)
            .await
            .unwrap();
        assert!(hijacked.multiplexed);
        let mut io = hijacked.stream;
        io.write_all(b"stdin bytes").await.unwrap();
        io.shutdown().await.unwrap();
        let mut output = Vec::new();
        io.read_to_end(&mut output).await.unwrap();
        let mut demuxer = Demuxer::new();
        let pieces = demuxer.feed(&output).unwrap();
        assert_eq!(
            pieces,
            vec![
                (StdStream::Stdout, &b"out"[..]),
                (StdStream::Stderr, &b"err"[..])
            ]
        );
        let got = String::from_utf8(server.await.unwrap()).unwrap();
        assert!(
            got.contains("\r\nupgrade: tcp\r\n") || got.contains("\r\nUpgrade: tcp\r\n"),
            "{got}"
        );
        assert!(got.ends_with("\r\n\r\nstdin bytes"), "{got}");
    }

    #[tokio::test]
    async fn no_daemon_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let client = Client::new(Host::Unix(dir.path().join("none.sock")));
        let err = client
            .get_json::<serde_json::Value>("/version")
            .await
            .unwrap_err();
        assert!(err.is_connect());
        assert!(
            err.to_string()
                .ends_with("none.sock. Is the daemon running?"),
            "{err}"
        );
    }

    #[test]
    fn escapes_queries() {
        assert_eq!(
            query(&[("filters", r#"{"a":["b c"]}"#.into()), ("all", "1".into())]),
            "?filters=%7B%22a%22%3A%5B%22b%20c%22%5D%7D&all=1"
        );
        assert_eq!(query(&[]), "");
    }
}
