//! The server over a real unix socket, spoken to in raw HTTP/1.1: Docker's 404s and 400s,
//! bad bodies, filters and numbers, the headers on every answer, hijacking — and the server
//! still answering `/_ping` after each bad request. Needs no containers; the engine runs on
//! a temporary root.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use gorae_api::{Host, Server, ServerConfig};
use gorae_engine::{Engine, EngineConfig};

struct TestServer {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("run/api.sock");
        let root = dir.path().join("root");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sock2 = sock.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let engine = Engine::open(EngineConfig::for_root(&root)).await.unwrap();
                let config = ServerConfig {
                    hosts: vec![Host::Unix(sock2)],
                    ..Default::default()
                };
                let server = Server::bind(&config, engine).await.unwrap();
                ready_tx.send(()).unwrap();
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .unwrap();
            });
            rt.shutdown_timeout(Duration::from_secs(1));
        });
        ready_rx.recv().unwrap();
        TestServer {
            _dir: dir,
            sock,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn connect(&self) -> UnixStream {
        let s = UnixStream::connect(&self.sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    }

    /// One request on its own connection (`Connection: close`), the whole answer back.
    fn raw(&self, request: &[u8]) -> Reply {
        let mut s = self.connect();
        // The server may answer (and close) before reading a large body: a failed write
        // still leaves its answer to read.
        let _ = s.write_all(request);
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        Reply::parse(&out)
    }

    fn request(&self, method: &str, path: &str, headers: &str, body: &[u8]) -> Reply {
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n{headers}\
             Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body);
        self.raw(&req)
    }

    fn get(&self, path: &str) -> Reply {
        self.request("GET", path, "", b"")
    }

    fn post_json(&self, path: &str, body: &[u8]) -> Reply {
        self.request("POST", path, "Content-Type: application/json\r\n", body)
    }

    fn assert_alive(&self) {
        let r = self.get("/_ping");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"OK"[..]));
    }
}

impl TestServer {
    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let end = find(raw, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(raw)));
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn message(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&self.body)));
        v["message"].as_str().unwrap().to_string()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap(), 16).unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
    out
}

#[test]
fn ping_and_docker_headers() {
    let server = TestServer::start();
    let r = server.get("/_ping");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"OK");
    assert_eq!(r.header("api-version"), Some("1.51"));
    assert_eq!(r.header("ostype"), Some("linux"));
    assert_eq!(r.header("docker-experimental"), Some("false"));
    assert!(r.header("server").unwrap().starts_with("gorae/"));
    let r = server.request("HEAD", "/v1.50/_ping", "", b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("api-version"), Some("1.51"));
    assert!(r.body.is_empty());
    // Errors carry the headers too.
    let r = server.get("/nope");
    assert_eq!(r.header("api-version"), Some("1.51"));
}

#[test]
fn unknown_routes_are_docker_404s() {
    let server = TestServer::start();
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("GET", "/v1.50/nope"),
        ("PUT", "/containers/json"),
        ("GET", "/containers/x/start"),
        ("DELETE", "/images/"),
        ("POST", "/_ping"),
    ] {
        let r = server.request(method, path, "", b"");
        assert_eq!(r.status, 404, "{method} {path}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.message(), "page not found", "{method} {path}");
        server.assert_alive();
    }
}

#[test]
fn api_versions_outside_the_range_are_400() {
    let server = TestServer::start();
    let r = server.get("/v1.52/version");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.message(),
        "client version 1.52 is too new. Maximum supported API version is 1.51"
    );
    let r = server.get("/v1.12/version");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("is too old"), "{}", r.message());
    assert_eq!(server.get("/v1.51/version").status, 200);
    server.assert_alive();
}

#[test]
fn bad_json_bodies_are_400_naming_the_problem() {
    let server = TestServer::start();
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "invalid JSON: got EOF while reading request body"),
        (
            br#"{"Image":"busybox","Cmd":["sh""#,
            "invalid JSON: EOF while parsing",
        ),
        (b"Image=busybox", "invalid JSON: expected value"),
        (
            br#"{"Image":"busybox","Tty":"yes"}"#,
            "invalid JSON: field Tty: invalid type",
        ),
        (
            br#"{"Image":"busybox","HostConfig":{"Memory":"1g"}}"#,
            "invalid JSON: field HostConfig.Memory: invalid type",
        ),
        (b"[1,2]", "invalid JSON: expected an object, got an array"),
    ];
    for (body, expected) in cases {
        let r = server.post_json("/containers/create?name=x", body);
        assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert!(
            r.message().starts_with(expected),
            "{} / {expected}",
            r.message()
        );
        server.assert_alive();
    }
    // Exec create refuses an empty body too; update and exec create name fields.
    let r = server.post_json("/containers/abc/exec", br#"{"Cmd":"sh"}"#);
    assert_eq!(r.status, 400);
    assert!(
        r.message().starts_with("invalid JSON: field Cmd: "),
        "{}",
        r.message()
    );
    let r = server.post_json("/containers/abc/update", br#"{"Memory":true}"#);
    assert!(
        r.message().starts_with("invalid JSON: field Memory: "),
        "{}",
        r.message()
    );
    server.assert_alive();
}

#[test]
fn bodies_over_one_mib_are_refused() {
    let server = TestServer::start();
    let mut body = br#"{"Image":"busybox","Labels":{"a":""#.to_vec();
    body.resize(2 << 20, b'x');
    body.extend_from_slice(br#""}}"#);
    let r = server.post_json("/containers/create", &body);
    assert_eq!(r.status, 400);
    assert!(r.message().contains("too large"), "{}", r.message());
    server.assert_alive();
}

#[test]
fn truncated_bodies_do_not_hurt_the_server() {
    let server = TestServer::start();
    // Content-Length promises more than arrives before the client stops writing.
    let r = server.raw(
        b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"Image\":",
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("request body"), "{}", r.message());
    // Garbage instead of HTTP: hyper answers 400 itself or closes; either way, still up.
    let mut s = server.connect();
    let _ = s.write_all(b"\x00\x01\x02 not http\r\n\r\n");
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.read_to_end(&mut Vec::new());
    server.assert_alive();
}

#[test]
fn bad_query_values_are_400_naming_the_parameter() {
    let server = TestServer::start();
    for (method, path, name) in [
        ("GET", "/containers/json?limit=ten", "limit"),
        ("POST", "/containers/abc/stop?t=soon", "t"),
        ("POST", "/containers/abc/resize?h=24&w=wide", "w"),
        ("POST", "/containers/abc/resize?h=70000&w=80", "h"),
        ("POST", "/containers/abc/resize", "h"),
        ("GET", "/containers/abc/logs?stdout=1&tail=many", "tail"),
        ("GET", "/events?since=yesterday", "since"),
        ("POST", "/exec/e/resize?h=1", "w"),
    ] {
        let r = server.request(method, path, "", b"");
        assert_eq!(r.status, 400, "{path}");
        assert!(r.message().contains(name), "{path}: {}", r.message());
        server.assert_alive();
    }
    let r = server.get("/containers/abc/logs");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("at least one stream"));
    let r = server.request("POST", "/containers/abc/wait?condition=whenever", "", b"");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("whenever"));
}

#[test]
fn bad_filters_are_400() {
    let server = TestServer::start();
    for filters in ["%7B", "%5B%5D", "%7B%22a%22%3A1%7D", "nope"] {
        for path in ["/containers/json", "/images/json", "/events"] {
            let r = server.get(&format!("{path}?filters={filters}"));
            assert_eq!(r.status, 400, "{path} {filters}");
            assert!(r.message().starts_with("invalid filter"), "{}", r.message());
        }
        let r = server.request(
            "POST",
            &format!("/containers/prune?filters={filters}"),
            "",
            b"",
        );
        assert_eq!(r.status, 400);
    }
    server.assert_alive();
}

#[test]
fn images_requests_are_decoded() {
    let server = TestServer::start();
    let r = server.request("POST", "/images/create?fromSrc=-", "", b"");
    assert_eq!(r.status, 501);
    assert!(r.message().contains("fromSrc"));
    let r = server.request("POST", "/images/create", "", b"");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("fromImage"));
    let r = server.request(
        "POST",
        "/images/create?fromImage=busybox",
        "X-Registry-Auth: !!!\r\n",
        b"",
    );
    assert_eq!(r.status, 400);
    assert!(r.message().contains("X-Registry-Auth"));
    let r = server.request("POST", "/images/localhost:5000/a/b:1/tag", "", b"");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("repo"));
    let r = server.request("POST", "/images/load", "", b"");
    assert_eq!(r.status, 400);
    assert!(r.message().contains("empty"));
    let r = server.get("/images/get");
    assert_eq!(r.status, 400);
    server.assert_alive();
}

/// Requests on one kept-alive connection: a bad one does not end it.
#[test]
fn keep_alive_survives_bad_requests() {
    let server = TestServer::start();
    let mut s = server.connect();
    let bad = b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\n\r\n{{{";
    let ping = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n";
    s.write_all(bad).unwrap();
    s.write_all(ping).unwrap();
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 400").count(), 1, "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
}

/// `docker cp` to a path that does not exist: the engine answers before it reads the upload.
/// The server must read the rest of it, so the client's writes all succeed (no EPIPE), the
/// error reaches it, and the connection stays usable.
#[test]
fn an_upload_refused_early_is_read_to_its_end_and_answered() {
    let server = TestServer::start();
    let mut s = server.connect();
    let body = vec![0u8; 4 << 20];
    let head = format!(
        "PUT /containers/nosuch/archive?path=/nodir HTTP/1.1\r\nHost: d\r\n\
         Content-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body).expect("the whole upload is read");
    s.write_all(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    assert!(text.contains("No such container: nosuch"), "{text}");
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
    server.assert_alive();
}

/// The server side of a hijack before the engine can attach: the check fails with the
/// engine's status, and the connection stays usable HTTP.
#[test]
fn hijack_requests_get_the_engines_answer() {
    let server = TestServer::start();
    let r = server.request(
        "POST",
        "/containers/nosuch/attach?stream=1&stdout=1",
        "Connection: Upgrade\r\nUpgrade: tcp\r\n",
        b"",
    );
    assert!(r.status == 404 || r.status == 501, "{r:?}");
    let r = server.request(
        "POST",
        "/exec/nosuch/start",
        "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\n",
        b"",
    );
    assert!(r.status == 404 || r.status == 501, "{r:?}");
    server.assert_alive();
}

#[test]
fn socket_is_0660_and_removed_on_shutdown() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut server = TestServer::start();
    let mode = std::fs::metadata(&server.sock)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
    server.shutdown();
    assert!(server.sock.parent().unwrap().exists());
    assert!(!server.sock.exists());
}

/// The real docker CLI against the server: the version negotiation through `/_ping`'s
/// headers, then the JSON it decodes.
fn docker(server: &TestServer, args: &[&str]) -> Option<(String, String)> {
    // Docker 28's CLI where it is installed, else Debian's docker.io (20.10, API 1.41).
    let Some(cli) = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .iter()
        .map(std::path::Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("no docker CLI: skipped");
        return None;
    };
    let config = server._dir.path().join("docker-config");
    let out = std::process::Command::new(cli)
        .env("DOCKER_HOST", format!("unix://{}", server.sock.display()))
        .env("DOCKER_CONFIG", &config)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "docker {args:?}: {stdout}{stderr}");
    Some((stdout, stderr))
}

#[test]
fn docker_version_negotiates_through_ping() {
    let server = TestServer::start();
    let Some((out, _)) = docker(&server, &["version", "--format", "{{.Client.APIVersion}}"]) else {
        return;
    };
    // The CLI speaks 1.50, the server 1.51: the CLI keeps its own.
    assert_eq!(out.trim(), "1.50");
    server.assert_alive();
}

#[test]
fn docker_info_and_ps_on_an_empty_engine() {
    let server = TestServer::start();
    let Some((out, _)) = docker(
        &server,
        &["info", "--format", "{{.Containers}} {{.OSType}}"],
    ) else {
        return;
    };
    assert_eq!(out.trim(), "0 linux");
    let (out, _) = docker(&server, &["ps", "-a", "--format", "{{.ID}}"]).unwrap();
    assert_eq!(out.trim(), "");
    // The CLI sends filters in the map encoding.
    let (out, _) = docker(&server, &["ps", "--filter", "status=exited", "-q"]).unwrap();
    assert_eq!(out.trim(), "");
    server.assert_alive();
}
