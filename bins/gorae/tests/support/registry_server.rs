//! `gorae registry serve` as a child process for tests: started on a free port with its own
//! storage root, killable with SIGKILL and restartable on the same root; plus a raw HTTP/1.1
//! client, so tests can send exactly the bytes they mean (bad ones included).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct GoraeRegistry {
    pub root: tempfile::TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    pub addr: String,
    log: PathBuf,
}

impl GoraeRegistry {
    /// A registry with `config` (TOML, may be empty) on a free port.
    pub fn start(config: &str) -> GoraeRegistry {
        let root = tempfile::Builder::new()
            .prefix("gorae-test-registry-")
            .tempdir_in("/var/tmp")
            .expect("registry root");
        let config_path = root.path().join("config.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log = root.path().join("registry.log");
        let mut registry = GoraeRegistry {
            config: config_path,
            root,
            child: None,
            addr: String::new(),
            log,
        };
        registry.spawn("127.0.0.1:0");
        registry
    }

    /// The storage directory (inside the temp root, beside the config and log).
    pub fn storage(&self) -> PathBuf {
        self.root.path().join("storage")
    }

    fn spawn(&mut self, addr: &str) {
        let log = std::fs::File::create(&self.log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_gorae"))
            .args(["registry", "serve", "--addr", addr, "--config"])
            .arg(&self.config)
            .arg("--root")
            .arg(self.storage())
            .env_remove("GORAE_ROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn gorae registry serve");
        self.child = Some(child);
        self.addr = self.wait_for_address();
    }

    /// Reads the bound address from the "serving http(s)://ADDR" log line.
    fn wait_for_address(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = self.log();
            if let Some(rest) = log.split("serving ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or("");
                let addr = url.split("://").nth(1).unwrap_or("").to_string();
                if !addr.is_empty() {
                    return addr;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("gorae registry exited with {status}: {log}");
            }
            assert!(Instant::now() < deadline, "registry did not start: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> &str {
        &self.addr
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(|c| c.id())
            .expect("registry running")
    }

    /// SIGKILL, no goodbyes.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait: a graceful stop.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("registry running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("wait registry")
    }

    /// Starts again on the same root and the same port.
    pub fn restart(&mut self) {
        self.kill9();
        let addr = self.addr.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.spawn(&addr);
            if self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_none()
            {
                return;
            }
            assert!(Instant::now() < deadline, "restart failed: {}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One raw request with `Connection: close`.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        http_request(&self.addr, method, path, headers, body)
    }
}

impl Drop for GoraeRegistry {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", self.text()))
    }

    /// The first error code of a spec error body.
    pub fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends one request (with Content-Length when `body` is not empty, or when the method
/// usually has a body) and reads the whole response.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let has_length = headers.iter().any(|(k, _)| {
        k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
    });
    if !has_length && (!body.is_empty() || matches!(method, "PUT" | "POST" | "PATCH")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    send_raw(addr, &raw, method == "HEAD")
}

/// Writes `raw` bytes and parses the response (Content-Length, chunked, or until close).
pub fn send_raw(addr: &str, raw: &[u8], head_request: bool) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to registry");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw).expect("send request");
    let mut data = Vec::new();
    let _ = stream.read_to_end(&mut data);
    parse_response(&data, head_request)
}

fn parse_response(data: &[u8], head_request: bool) -> HttpResponse {
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(data)));
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &data[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if head_request {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}

/// sha256:<hex> of `data`.
pub fn digest_of(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Pushes `data` as a blob of `repo` with one monolithic POST; returns its digest.
pub fn push_blob(addr: &str, repo: &str, data: &[u8]) -> String {
    let digest = digest_of(data);
    let r = http_request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(r.status, 201, "push blob: {}", r.text());
    digest
}

/// Pushes a small OCI image (config + one layer of `layer`) as `repo:tag`; returns the
/// manifest's digest and bytes.
pub fn push_image(addr: &str, repo: &str, tag: &str, layer: &[u8]) -> (String, Vec<u8>) {
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = push_blob(addr, repo, config);
    let layer_digest = push_blob(addr, repo, layer);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("manifest json");
    let r = http_request(
        addr,
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(r.status, 201, "push manifest: {}", r.text());
    (digest_of(&manifest), manifest)
}

/// Files of a directory tree, for comparing storage roots.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&d) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}
