//! The server over real TCP on 127.0.0.1: a raw client for protocol details, curl for what
//! real clients do (100-continue, chunked uploads, TLS). The curl and openssl tests need those
//! CLIs installed (they are in CI); none needs root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::rustls::ServerConfig;

use super::*;

/// Long enough never to fire on a healthy run; keeps a broken test from hanging forever.
const PATIENCE: Duration = Duration::from_secs(20);

struct TestHandler {
    /// The file `/file` serves.
    file: Mutex<Option<PathBuf>>,
    exchanges: Mutex<Vec<Exchange>>,
    /// Told when `/sleep` has its request.
    sleeping: tokio::sync::Notify,
}

impl Handler for TestHandler {
    fn handle<'a>(&'a self, mut request: Request<'a>) -> BoxFuture<'a, Response> {
        Box::pin(async move { self.route(&mut request).await.route("test") })
    }

    fn completed(&self, exchange: &Exchange) {
        self.exchanges.lock().unwrap().push(exchange.clone());
    }
}

impl TestHandler {
    async fn route(&self, request: &mut Request<'_>) -> Response {
        let ok = Response::new(StatusCode::OK);
        match request.path.as_str() {
            "/echo" => match request.body.to_bytes(64 << 20).await {
                Ok(body) => ok.bytes("application/octet-stream", body),
                Err(e) => body_error(e),
            },
            "/limited" => match request.body.to_bytes(10).await {
                Ok(body) => ok.bytes("application/octet-stream", body),
                Err(e) => body_error(e),
            },
            "/digest" => {
                let declared = format!("{:?}", request.body.content_length());
                let mut hasher = Sha256::new();
                loop {
                    match request.body.chunk().await {
                        Ok(Some(piece)) => hasher.update(&piece),
                        Ok(None) => break,
                        Err(e) => return body_error(BodyError::Io(e)),
                    }
                }
                let text = format!(
                    "{} {}",
                    request.body.bytes_read(),
                    hex::encode(hasher.finalize())
                );
                ok.header(
                    http::header::HeaderName::from_static("x-declared"),
                    declared,
                )
                .bytes("text/plain", text)
            }
            "/ignore" => ok.bytes("text/plain", "ignored"),
            "/head" if request.method == Method::HEAD => ok.content_length(1234),
            "/head" => ok.bytes("text/plain", vec![b'h'; 1234]),
            "/file" => self.file_response(request),
            "/stream" => stream_response(request.query_param("len").is_some(), false),
            "/stream-fail" => stream_response(false, true),
            "/sleep" => {
                self.sleeping.notify_one();
                tokio::time::sleep(Duration::from_millis(300)).await;
                ok.bytes("text/plain", "slept")
            }
            "/no-content" => Response::new(StatusCode::NO_CONTENT).bytes("text/plain", "nope"),
            _ => Response::new(StatusCode::NOT_FOUND),
        }
    }

    fn file_response(&self, request: &Request<'_>) -> Response {
        let path = self.file.lock().unwrap().clone().unwrap();
        let file = std::fs::File::open(path).unwrap();
        let size = file.metadata().unwrap().len();
        let number = |key| request.query_param(key).and_then(|v| v.parse::<u64>().ok());
        let offset = number("offset").unwrap_or(0);
        let len = number("len").unwrap_or(size - offset);
        let mut response = Response::new(StatusCode::OK);
        response.body = ResponseBody::File { file, offset, len };
        response
    }
}

fn body_error(e: BodyError) -> Response {
    let status = match e {
        BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Io(_) => StatusCode::BAD_REQUEST,
    };
    Response::new(status).bytes("text/plain", e.to_string())
}

const STREAM_PIECES: [&str; 4] = ["hello ", "", "streamed ", "world"];

fn stream_response(with_len: bool, fail: bool) -> Response {
    let (sender, pieces) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        for piece in STREAM_PIECES {
            if sender.send(Ok(Bytes::from(piece))).await.is_err() {
                return;
            }
            if fail {
                let broken = std::io::Error::other("upstream went away");
                let _ = sender.send(Err(broken)).await;
                return;
            }
        }
    });
    let len = with_len.then(|| STREAM_PIECES.concat().len() as u64);
    let mut response = Response::new(StatusCode::OK);
    response.body = ResponseBody::Stream { len, pieces };
    response
}

struct TestServer {
    addr: SocketAddr,
    handler: Arc<TestHandler>,
    stop: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(options: ServerOptions, tls: Option<Arc<ServerConfig>>) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(TestHandler {
        file: Mutex::new(None),
        exchanges: Mutex::new(Vec::new()),
        sleeping: tokio::sync::Notify::new(),
    });
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(serve(listener, tls, handler.clone(), options, shutdown));
    TestServer {
        addr,
        handler,
        stop,
        task,
    }
}

impl TestServer {
    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    /// The exchanges reported so far, once there are `n` (completed runs after the response
    /// is written, so the client may be ahead of it).
    async fn exchanges(&self, n: usize) -> Vec<Exchange> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let seen = self.handler.exchanges.lock().unwrap().clone();
            if seen.len() >= n || tokio::time::Instant::now() > deadline {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A response as the raw client read it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name));
        found.map(|(_, v)| v.as_str())
    }
}

/// A byte-level HTTP/1.1 client.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more into the buffer; false at end of stream.
    async fn read_more(&mut self) -> bool {
        let mut piece = vec![0u8; 256 * 1024];
        let read = tokio::time::timeout(PATIENCE, self.stream.read(&mut piece)).await;
        match read.expect("the server neither answered nor closed") {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&piece[..n]);
                true
            }
        }
    }

    async fn fill(&mut self, n: usize) {
        while self.buf.len() < n {
            assert!(self.read_more().await, "connection closed mid-response");
        }
    }

    async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8(self.buf[..i].to_vec()).unwrap();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(self.read_more().await, "connection closed mid-line");
        }
    }

    async fn head(&mut self) -> Reply {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            if let httparse::Status::Complete(len) = parsed.parse(&self.buf).unwrap() {
                let reply = Reply {
                    status: parsed.code.unwrap(),
                    headers: (parsed.headers.iter())
                        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into()))
                        .collect(),
                    body: Vec::new(),
                };
                self.buf.drain(..len);
                return reply;
            }
            assert!(self.read_more().await, "connection closed mid-head");
        }
    }

    /// Reads one response; `head_request` says there is no body to read.
    async fn response(&mut self, head_request: bool) -> Reply {
        let mut reply = self.head().await;
        if head_request || reply.status == 204 {
            return reply;
        }
        if let Some(len) = reply.header("content-length") {
            let len: usize = len.parse().unwrap();
            self.fill(len).await;
            reply.body = self.buf.drain(..len).collect();
        } else if reply.header("transfer-encoding") == Some("chunked") {
            reply.body = self.chunked_body().await;
        } else {
            while self.read_more().await {}
            reply.body = std::mem::take(&mut self.buf);
        }
        reply
    }

    async fn chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.line().await;
            let size = line.split(';').next().unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap();
            if size == 0 {
                while !self.line().await.is_empty() {}
                return body;
            }
            self.fill(size + 2).await;
            body.extend(self.buf.drain(..size));
            assert_eq!(self.buf.drain(..2).collect::<Vec<_>>(), b"\r\n");
        }
    }

    /// True when the server closed the connection (after whatever it still sent).
    async fn closed(&mut self) -> bool {
        self.buf.clear();
        !self.read_more().await
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n")
}

fn post(path: &str, body: &str) -> String {
    let len = body.len();
    format!("POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n{body}")
}

/// Deterministic bytes that do not compress or repeat in step with any buffer size.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

async fn curl(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || run(Command::new("curl").args(["-sS"]).args(args)))
        .await
        .unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    for body in ["one", "", "three!"] {
        client.send(post("/echo", body).as_bytes()).await;
        let reply = client.response(false).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, body.as_bytes());
        assert!(reply.header("date").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(reply.header("connection"), None);
    }
    client.send(get("/missing").as_bytes()).await;
    assert_eq!(client.response(false).await.status, 404);
    let exchanges = server.exchanges(4).await;
    assert_eq!(exchanges.len(), 4);
    assert_eq!(exchanges[2].bytes_in, 6);
    assert_eq!(exchanges[2].bytes_out, 6);
    assert_eq!(exchanges[2].route, "test");
    assert_eq!(exchanges[3].status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn pipelined_requests_in_one_write_are_answered_in_order() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    let batch = [post("/echo", "first"), get("/head"), post("/echo", "third")].concat();
    client.send(batch.as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"first");
    assert_eq!(client.response(false).await.body.len(), 1234);
    assert_eq!(client.response(false).await.body, b"third");
    server.stop().await;
}

#[tokio::test]
async fn chunked_upload_with_extensions_and_trailers_is_read_exactly() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    let request = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5;name=value\r\nhello\r\n1 ; x\r\n \r\nA\r\n0123456789\r\n\
                   0;last\r\nX-Trailer: 1\r\nX-Other: 2\r\n\r\n";
    client.send(request.as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"hello 0123456789");
    // The trailers were consumed: the connection is still in step.
    client.send(post("/echo", "next").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"next");
    let chunked_digest =
        "POST /digest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    client.send(chunked_digest.as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.header("x-declared"), Some("None"));
    assert_eq!(reply.body, format!("3 {}", sha256_hex(b"abc")).as_bytes());
    server.stop().await;
}

#[tokio::test]
async fn big_chunked_body_across_many_reads_is_read_exactly() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    let data = noise(3 << 20);
    let mut request = b"POST /digest HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut rest = &data[..];
    let mut size = 1;
    while !rest.is_empty() {
        let (piece, after) = rest.split_at(size.min(rest.len()));
        request.extend(format!("{:X};n={size}\r\n", piece.len()).as_bytes());
        request.extend(piece);
        request.extend(b"\r\n");
        rest = after;
        size = size * 7 % 300_007 + 1;
    }
    request.extend(b"0\r\n\r\n");
    request.extend(post("/echo", "after").as_bytes());
    client.send(&request).await;
    let expected = format!("{} {}", data.len(), sha256_hex(&data));
    assert_eq!(client.response(false).await.body, expected.as_bytes());
    assert_eq!(client.response(false).await.body, b"after");
    server.stop().await;
}

#[tokio::test]
async fn malformed_chunks_fail_the_body_and_close() {
    let bad_bodies = [
        "5\r\nhelloXX0\r\n\r\n",
        "zz\r\nhello\r\n0\r\n\r\n",
        "5 junk\r\nhello\r\n0\r\n\r\n",
        "11111111111111111\r\n",
        "5\nhello\r\n0\r\n\r\n",
    ];
    let server = start(ServerOptions::default(), None).await;
    for body in bad_bodies {
        let mut client = Client::connect(server.addr).await;
        let head = "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        client.send(format!("{head}{body}").as_bytes()).await;
        let reply = client.response(false).await;
        assert_eq!(reply.status, 400, "{body:?}");
        assert_eq!(reply.header("connection"), Some("close"), "{body:?}");
        assert!(client.closed().await);
    }
    let mut client = Client::connect(server.addr).await;
    let long_line = format!(
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;{}\r\n",
        "x".repeat(5000)
    );
    client.send(long_line.as_bytes()).await;
    assert_eq!(client.response(false).await.status, 400);
    server.stop().await;
}

#[tokio::test]
async fn body_limits_refuse_without_reading_everything() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    client.send(post("/limited", "0123456789").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"0123456789");
    client
        .send(post("/limited", "0123456789A").as_bytes())
        .await;
    assert_eq!(client.response(false).await.status, 413);
    // The refused body was small enough to drain, so the connection stays usable.
    client.send(post("/echo", "ok").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"ok");
    let chunked = "POST /limited HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                   6\r\n012345\r\n6\r\n6789AB\r\n0\r\n\r\n";
    client.send(chunked.as_bytes()).await;
    assert_eq!(client.response(false).await.status, 413);
    client.send(post("/echo", "still").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"still");
    server.stop().await;
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    let smuggle = "POST /echo HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
                   0\r\n\r\nGET /ignore HTTP/1.1\r\n\r\n";
    client.send(smuggle.as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.closed().await);
    // The handler never saw it.
    assert!(server.handler.exchanges.lock().unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn garbage_heads_get_400() {
    let server = start(ServerOptions::default(), None).await;
    for junk in [
        "\x16\x03\x01\x02\x00\x01\r\n\r\n",
        "GET / HTTP/9.9\r\n\r\n",
        "GET /\0 HTTP/1.1\r\n\r\n",
    ] {
        let mut client = Client::connect(server.addr).await;
        client.send(junk.as_bytes()).await;
        assert_eq!(client.response(false).await.status, 400, "{junk:?}");
        assert!(client.closed().await);
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_head_gets_431() {
    let options = ServerOptions {
        max_head_bytes: 2048,
        ..ServerOptions::default()
    };
    let server = start(options, None).await;
    let mut client = Client::connect(server.addr).await;
    let big = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(4000));
    client.send(big.as_bytes()).await;
    assert_eq!(client.response(false).await.status, 431);
    assert!(client.closed().await);
    // Exactly at the limit's edge it still works.
    let mut client = Client::connect(server.addr).await;
    let fits = format!(
        "GET /ignore HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1900)
    );
    client.send(fits.as_bytes()).await;
    assert_eq!(client.response(false).await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn heads_may_arrive_in_pieces() {
    let options = ServerOptions {
        max_head_bytes: 2048,
        ..ServerOptions::default()
    };
    let server = start(options, None).await;
    let mut client = Client::connect(server.addr).await;
    for piece in [
        "POST /ec",
        "ho HTTP/1.1\r\nContent-Le",
        "ngth: 2\r\n\r",
        "\nok",
    ] {
        client.send(piece.as_bytes()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.response(false).await.body, b"ok");
    // A head that never ends is refused once it outgrows the limit.
    client.send(b"GET / HTTP/1.1\r\n").await;
    for _ in 0..3 {
        client
            .send(format!("X-Pad: {}\r\n", "p".repeat(1000)).as_bytes())
            .await;
    }
    assert_eq!(client.response(false).await.status, 431);
    assert!(client.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn forty_mib_file_is_sent_whole_and_in_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let data = noise(40 << 20);
    std::fs::write(&path, &data).unwrap();
    let server = start(ServerOptions::default(), None).await;
    *server.handler.file.lock().unwrap() = Some(path);
    let mut client = Client::connect(server.addr).await;
    client.send(get("/file").as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.header("content-length"), Some("41943040"));
    assert!(reply.body == data, "the 40 MiB body differs");
    let (offset, len) = (12_345_679usize, 9_999_999usize);
    client
        .send(get(&format!("/file?offset={offset}&len={len}")).as_bytes())
        .await;
    let reply = client.response(false).await;
    assert!(
        reply.body == data[offset..offset + len],
        "the range differs"
    );
    client.send(get("/file?offset=7&len=0").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"");
    let exchanges = server.exchanges(3).await;
    assert_eq!(exchanges[0].bytes_out, 40 << 20);
    assert_eq!(exchanges[1].bytes_out, len as u64);
    server.stop().await;
}

#[tokio::test]
async fn file_shorter_than_promised_aborts_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short");
    std::fs::write(&path, b"only this").unwrap();
    let server = start(ServerOptions::default(), None).await;
    *server.handler.file.lock().unwrap() = Some(path);
    let mut client = Client::connect(server.addr).await;
    client.send(get("/file?len=100").as_bytes()).await;
    let reply = client.head().await;
    assert_eq!(reply.header("content-length"), Some("100"));
    while client.read_more().await {}
    assert_eq!(client.buf, b"only this");
    server.stop().await;
}

#[tokio::test]
async fn stream_bodies_arrive_chunked_or_with_their_length() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    client.send(get("/stream").as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(reply.body, STREAM_PIECES.concat().as_bytes());
    client.send(get("/stream?len=1").as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.header("content-length"), Some("20"));
    assert_eq!(reply.body, STREAM_PIECES.concat().as_bytes());
    // HTTP/1.0 cannot take chunks: the body ends with the connection.
    client.send(b"GET /stream HTTP/1.0\r\n\r\n").await;
    let reply = client.response(false).await;
    assert_eq!(reply.body, STREAM_PIECES.concat().as_bytes());
    assert_eq!(reply.header("connection"), Some("close"));
    server.stop().await;
}

#[tokio::test]
async fn a_failing_stream_truncates_the_response() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    client.send(get("/stream-fail").as_bytes()).await;
    let reply = client.head().await;
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    while client.read_more().await {}
    assert_eq!(client.buf, b"6\r\nhello \r\n", "no terminating chunk");
    server.stop().await;
}

#[tokio::test]
async fn head_gets_headers_but_no_body() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    client.send(b"HEAD /head HTTP/1.1\r\n\r\n").await;
    let reply = client.response(true).await;
    assert_eq!(reply.header("content-length"), Some("1234"));
    // A HEAD whose handler built a full body: its length, not its bytes.
    client.send(b"HEAD /echo HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        client.response(true).await.header("content-length"),
        Some("0")
    );
    client.send(b"HEAD /stream?len=1 HTTP/1.1\r\n\r\n").await;
    assert_eq!(
        client.response(true).await.header("content-length"),
        Some("20")
    );
    client.send(get("/no-content").as_bytes()).await;
    let reply = client.response(true).await;
    assert_eq!((reply.status, reply.header("content-length")), (204, None));
    // Had any body bytes been sent, this would read them as its status line.
    client.send(post("/echo", "after").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"after");
    server.stop().await;
}

#[tokio::test]
async fn ignored_body_is_drained_and_the_connection_goes_on() {
    let options = ServerOptions {
        max_drain_bytes: 300_000,
        ..ServerOptions::default()
    };
    let server = start(options, None).await;
    let mut client = Client::connect(server.addr).await;
    let body = "x".repeat(200_000);
    client.send(post("/ignore", &body).as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"ignored");
    client.send(post("/echo", "next").as_bytes()).await;
    assert_eq!(client.response(false).await.body, b"next");
    let exchanges = server.exchanges(2).await;
    assert_eq!(exchanges[0].bytes_in, 200_000);
    // Too much to drain: answered, then closed.
    let body = "x".repeat(400_000);
    client.send(post("/ignore", &body).as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(reply.body, b"ignored");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(client.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn continue_is_sent_only_when_the_handler_reads() {
    let server = start(ServerOptions::default(), None).await;
    let mut client = Client::connect(server.addr).await;
    let head = "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    client.send(head.as_bytes()).await;
    assert_eq!(client.head().await.status, 100);
    client.send(b"hello").await;
    assert_eq!(client.response(false).await.body, b"hello");
    // A handler that answers without reading: no 100, and the connection closes because
    // the client may or may not send the body now.
    let head = "POST /ignore HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    client.send(head.as_bytes()).await;
    let reply = client.response(false).await;
    assert_eq!(
        (reply.status, reply.header("connection")),
        (200, Some("close"))
    );
    assert!(client.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn curl_uploads_with_expect_continue_and_chunked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upload");
    let data = noise(24 << 20);
    std::fs::write(&path, &data).unwrap();
    let server = start(ServerOptions::default(), None).await;
    let url = format!("http://{}/digest", server.addr);
    let expected = format!("{} {}", data.len(), sha256_hex(&data));
    let upload = format!("@{}", path.display());
    let out = curl(vec![
        "-v".into(),
        "-H".into(),
        "Expect: 100-continue".into(),
        "--data-binary".into(),
        upload.clone(),
        url.clone(),
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP/1.1 100 Continue"));
    let out = curl(vec![
        "-H".into(),
        "Transfer-Encoding: chunked".into(),
        "--data-binary".into(),
        upload,
        url,
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    server.stop().await;
}

#[tokio::test]
async fn slow_head_is_cut_off() {
    let options = ServerOptions {
        head_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    let server = start(options, None).await;
    let mut client = Client::connect(server.addr).await;
    client.send(b"GET / HTTP/1.1\r\nX-Slow: ").await;
    let reply = client.response(false).await;
    assert_eq!(reply.status, 408);
    assert!(client.closed().await);
    // A client that never says anything is closed too.
    let mut silent = Client::connect(server.addr).await;
    assert!(silent.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn stalled_body_fails_the_read() {
    let options = ServerOptions {
        body_timeout: Duration::from_millis(200),
        ..ServerOptions::default()
    };
    let server = start(options, None).await;
    let mut client = Client::connect(server.addr).await;
    client
        .send(b"POST /digest HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        .await;
    assert_eq!(client.response(false).await.status, 400);
    assert!(client.closed().await);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_exchanges_and_closes_idle_connections() {
    let server = start(ServerOptions::default(), None).await;
    let mut idle = Client::connect(server.addr).await;
    idle.send(get("/ignore").as_bytes()).await;
    assert_eq!(idle.response(false).await.status, 200);
    let mut busy = Client::connect(server.addr).await;
    busy.send(get("/sleep").as_bytes()).await;
    server.handler.sleeping.notified().await;
    let addr = server.addr;
    server.stop.send(true).unwrap();
    let reply = busy.response(false).await;
    assert_eq!(reply.body, b"slept");
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(idle.closed().await);
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

/// Writes a self-signed certificate for 127.0.0.1 and keys in three encodings.
fn make_certs(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (cert, key)
}

#[tokio::test]
async fn tls_serves_curl() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = make_certs(dir.path());
    let config = load_tls(&cert, &key).unwrap();
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    let server = start(ServerOptions::default(), Some(config)).await;
    let blob = dir.path().join("blob");
    let data = noise(3 << 20);
    std::fs::write(&blob, &data).unwrap();
    *server.handler.file.lock().unwrap() = Some(blob.clone());
    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let cacert = cert.display().to_string();
    let got = dir.path().join("got");
    curl(vec![
        "--cacert".into(),
        cacert.clone(),
        "-o".into(),
        got.display().to_string(),
        format!("{base}/file?offset=5"),
    ])
    .await;
    assert!(
        std::fs::read(&got).unwrap() == data[5..],
        "TLS file body differs"
    );
    let out = curl(vec![
        "--cacert".into(),
        cacert,
        "-H".into(),
        "Transfer-Encoding: chunked".into(),
        "--data-binary".into(),
        format!("@{}", blob.display()),
        format!("{base}/digest"),
    ])
    .await;
    let expected = format!("{} {}", data.len(), sha256_hex(&data));
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    server.stop().await;
}

#[test]
fn load_tls_takes_every_key_encoding_and_names_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, pkcs8) = make_certs(dir.path());
    load_tls(&cert, &pkcs8).unwrap();
    let sec1 = dir.path().join("sec1.pem");
    let sec1_cert = dir.path().join("sec1-cert.pem");
    run(Command::new("openssl")
        .args([
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
        ])
        .arg(&sec1));
    let rsa = dir.path().join("rsa.pem");
    let rsa_cert = dir.path().join("rsa-cert.pem");
    run(Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&rsa)
        .arg("2048"));
    for (key, cert, marker) in [
        (&sec1, &sec1_cert, "BEGIN EC PRIVATE KEY"),
        (&rsa, &rsa_cert, "BEGIN RSA PRIVATE KEY"),
    ] {
        assert!(std::fs::read_to_string(key).unwrap().contains(marker));
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-key",
            ])
            .arg(key)
            .arg("-out")
            .arg(cert));
        load_tls(cert, key).unwrap();
    }
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not pem at all").unwrap();
    let cases = [
        (&missing, &pkcs8, &missing),
        (&garbage, &pkcs8, &garbage),
        (&cert, &garbage, &garbage),
        (&cert, &missing, &missing),
        (&cert, &rsa, &rsa),
    ];
    for (cert, key, named) in cases {
        match load_tls(cert, key) {
            Err(crate::Error::Config { path, reason }) => {
                assert_eq!(&path, named, "{reason}");
            }
            other => panic!("{cert:?} {key:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn serve_stream_speaks_http_over_an_in_memory_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let data = noise(300_000);
    std::fs::write(&path, &data).unwrap();
    let handler = Arc::new(TestHandler {
        file: Mutex::new(Some(path)),
        exchanges: Mutex::new(Vec::new()),
        sleeping: tokio::sync::Notify::new(),
    });
    let (client, server) = tokio::io::duplex(4096);
    let (mut reader, mut writer) = tokio::io::split(client);
    let peer = SocketAddr::from(([127, 0, 0, 1], 1));
    let serving = tokio::spawn(serve_stream(
        server,
        peer,
        handler.clone(),
        ServerOptions::default(),
    ));
    let batch = [post("/echo", "piped"), get("/file"), get("/missing")].concat();
    let mut answer = Vec::new();
    let (written, read) = tokio::join!(
        async {
            writer.write_all(batch.as_bytes()).await?;
            writer.shutdown().await
        },
        // Reads while the writes go on: the pipe holds only 4 KiB.
        tokio::time::timeout(PATIENCE, reader.read_to_end(&mut answer)),
    );
    written.unwrap();
    read.expect("the server neither answered nor closed")
        .unwrap();
    tokio::time::timeout(PATIENCE, serving)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text:.200}");
    assert!(text.contains("\r\n\r\npiped"));
    assert!(text.contains("content-length: 300000\r\n"));
    assert!(answer.windows(data.len()).any(|w| w == data));
    assert!(text.contains("HTTP/1.1 404 Not Found\r\n"));
    assert_eq!(handler.exchanges.lock().unwrap().len(), 3);
}

#[test]
fn percent_decode_takes_only_two_hex_digits() {
    assert_eq!(percent_decode("a%2Fb%2bc+d"), "a/b+c d");
    // Found by the `routes` fuzz target: "%+A" decoded as a newline.
    assert_eq!(percent_decode("%+A%-1%4"), "% A%-1%4");
    assert_eq!(percent_decode("%zz%"), "%zz%");
}
