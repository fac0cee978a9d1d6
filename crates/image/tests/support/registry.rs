//! Test harness: a real CNCF registry (Debian's `docker-registry`, distribution 2.8) on a
//! free 127.0.0.1 port with its own storage, optionally behind htpasswd basic auth or a
//! Bearer token server; and test images made without gorae (umoci builds an OCI layout,
//! skopeo pushes it), so pull tests do not depend on gorae's own push.
//!
//! Needs: docker-registry, umoci, skopeo, htpasswd (apache2-utils), openssl. Included by
//! the image crate's tests and the CLI's via `#[path]`, so it uses only std, tempfile and serde_json.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs a command, panicking with its stderr if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

pub enum Auth {
    None,
    Basic { user: String, password: String },
    Token(TokenServer),
}

pub struct TestRegistry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Kept alive as long as the registry trusts it.
    pub token_server: Option<TokenServer>,
}

impl TestRegistry {
    pub fn start() -> TestRegistry {
        TestRegistry::start_with(Auth::None)
    }

    pub fn with_basic_auth(user: &str, password: &str) -> TestRegistry {
        TestRegistry::start_with(Auth::Basic {
            user: user.into(),
            password: password.into(),
        })
    }

    /// A registry that wants Bearer tokens from a token server run by the test, which
    /// grants any scope to `user`:`password` (and refuses everyone else).
    pub fn with_token_auth(user: &str, password: &str) -> TestRegistry {
        TestRegistry::start_with(Auth::Token(TokenServer::start(user, password)))
    }

    pub fn start_with(auth: Auth) -> TestRegistry {
        let dir = tempfile::tempdir().expect("registry temp dir");
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).expect("storage dir");
        let auth_section = match &auth {
            Auth::None => String::new(),
            Auth::Basic { user, password } => {
                let line = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, line.trim()).expect("write htpasswd");
                format!(
                    "auth:\n  htpasswd:\n    realm: gorae-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token(server) => format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                server.realm(),
                TokenServer::SERVICE,
                TokenServer::ISSUER,
                server.cert.display()
            ),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth_section}",
                storage.display()
            ),
        )
        .expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let token_server = match auth {
            Auth::Token(server) => Some(server),
            _ => None,
        };
        let registry = TestRegistry {
            child,
            port,
            dir,
            token_server,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).is_ok() && line.starts_with("HTTP/") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not start:\n{}", self.log());
    }

    /// `127.0.0.1:PORT`, the registry part of references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn storage(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps a blob's bytes (to corrupt them, say).
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Everything the registry logged so far (one access-log line per request).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The access-log request lines (`"METHOD URI HTTP/1.1" STATUS`) logged so far.
    pub fn requests(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| !l.starts_with("time="))
            .filter_map(|l| {
                let start = l.find('"')?;
                let rest = &l[start + 1..];
                let end = rest.find('"')?;
                let status = rest[end + 1..].split_whitespace().next().unwrap_or("");
                Some(format!("{} {status}", &rest[..end]))
            })
            .collect()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An OCI image layout built with umoci, one layer per `insert`.
pub struct OciLayout {
    pub dir: tempfile::TempDir,
}

impl OciLayout {
    pub fn new() -> OciLayout {
        let dir = tempfile::tempdir().expect("layout temp dir");
        run(Command::new("umoci")
            .args(["init", "--layout"])
            .arg(dir.path().join("oci")));
        OciLayout { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("oci")
    }

    fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.path().display())
    }

    /// Starts an empty image `tag` for `architecture` (amd64, arm64...).
    pub fn new_image(&self, tag: &str, architecture: &str) {
        run(Command::new("umoci").args(["new", "--image", &self.image(tag)]));
        run(Command::new("umoci").args([
            "config",
            "--image",
            &self.image(tag),
            "--os",
            "linux",
            "--architecture",
            architecture,
            "--config.cmd",
            "/bin/sh",
        ]));
    }

    /// Adds a layer holding the tree `source` at `target` in the image.
    pub fn insert(&self, tag: &str, source: &Path, target: &str) {
        run(Command::new("umoci")
            .args(["insert", "--image", &self.image(tag)])
            .arg(source)
            .arg(target));
    }

    /// Unpacks the image with umoci: the reference rootfs gorae's must equal.
    pub fn unpack(&self, tag: &str, bundle: &Path) -> PathBuf {
        run(Command::new("umoci")
            .args(["unpack", "--image", &self.image(tag)])
            .arg(bundle));
        bundle.join("rootfs")
    }

    /// Pushes `tag` to `registry` as `repo:remote_tag` with skopeo (`--all` for indexes).
    pub fn push(&self, tag: &str, registry: &TestRegistry, repo_and_tag: &str) {
        run(Command::new("skopeo").args([
            "copy",
            "--all",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("oci:{}", self.image(tag)),
            &format!("docker://{}/{repo_and_tag}", registry.host()),
        ]));
    }

    /// The layout's index.json.
    pub fn index(&self) -> serde_json::Value {
        let bytes = std::fs::read(self.path().join("index.json")).expect("read index.json");
        serde_json::from_slice(&bytes).expect("parse index.json")
    }

    /// The descriptor `tag` points at.
    pub fn descriptor(&self, tag: &str) -> serde_json::Value {
        self.index()["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag}"))
            .clone()
    }

    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        std::fs::read(self.path().join("blobs/sha256").join(hex)).expect("read blob")
    }

    /// Writes an image index over `tags` (with their platforms) and tags it `tag`.
    pub fn add_index(&self, tag: &str, members: &[(&str, &str)]) {
        let manifests: Vec<serde_json::Value> = members
            .iter()
            .map(|(member, arch)| {
                let mut d = self.descriptor(member);
                d.as_object_mut().expect("object").remove("annotations");
                d["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
                d
            })
            .collect();
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        });
        let bytes = serde_json::to_vec(&index).expect("serialise index");
        let hex = sha256_hex(&bytes);
        std::fs::write(self.path().join("blobs/sha256").join(&hex), &bytes).expect("write index");
        let mut top = self.index();
        top["manifests"]
            .as_array_mut()
            .expect("manifests")
            .push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": format!("sha256:{hex}"),
                "size": bytes.len(),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }));
        std::fs::write(
            self.path().join("index.json"),
            serde_json::to_vec(&top).expect("serialise"),
        )
        .expect("write index.json");
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(bytes)
        .expect("feed sha256sum");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("hash")
        .to_string()
}

/// A sample tree with what a rootfs has: nested dirs, modes, owners, a symlink, a hardlink,
/// an empty file and a bigger one.
pub fn sample_tree(dir: &Path, seed: &str) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
    std::fs::create_dir_all(dir.join("etc/conf.d")).expect("mkdir");
    std::fs::write(dir.join("bin/tool"), format!("#!/bin/sh\necho {seed}\n")).expect("write");
    std::fs::set_permissions(dir.join("bin/tool"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    std::fs::write(dir.join("etc/conf.d/app.conf"), format!("name={seed}\n")).expect("write");
    std::fs::set_permissions(
        dir.join("etc/conf.d"),
        std::fs::Permissions::from_mode(0o750),
    )
    .expect("chmod");
    std::fs::write(dir.join("etc/empty"), b"").expect("write");
    let big: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("{seed} line {i}\n").into_bytes())
        .collect();
    std::fs::write(dir.join("etc/big.txt"), big).expect("write");
    symlink("../etc/conf.d/app.conf", dir.join("bin/link")).expect("symlink");
    std::fs::hard_link(dir.join("bin/tool"), dir.join("bin/tool-hard")).expect("hardlink");
    std::os::unix::fs::chown(dir.join("etc/conf.d/app.conf"), Some(1000), Some(100))
        .expect("chown");
    std::fs::set_permissions(
        dir.join("etc/conf.d/app.conf"),
        std::fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
}

/// A description of every entry under `root` (type, mode, owner, content or target), keyed
/// by relative path, for comparing trees byte for byte.
pub fn describe_tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let kind = if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_string()
            } else if meta.file_type().is_symlink() {
                format!(
                    "link->{}",
                    std::fs::read_link(&path).expect("readlink").display()
                )
            } else if meta.is_file() {
                let content = sha256_hex(&std::fs::read(&path).expect("read"));
                format!("file:{content} links={}", meta.nlink())
            } else {
                format!("special:{}", meta.rdev())
            };
            let rel = path
                .strip_prefix(root)
                .expect("prefix")
                .display()
                .to_string();
            out.insert(
                rel,
                format!(
                    "{kind} mode={:o} uid={} gid={}",
                    meta.mode(),
                    meta.uid(),
                    meta.gid()
                ),
            );
        }
    }
    out
}

/// A Bearer token server for the registry's `auth: token:` mode: it checks Basic
/// credentials and signs an RS256 JWT (with the openssl CLI) granting the scopes asked for.
pub struct TokenServer {
    port: u16,
    dir: tempfile::TempDir,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// How many tokens were handed out.
    pub issued: Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenServer {
    pub const SERVICE: &'static str = "gorae-test-registry";
    pub const ISSUER: &'static str = "gorae-test-issuer";

    pub fn start(user: &str, password: &str) -> TokenServer {
        let dir = tempfile::tempdir().expect("token temp dir");
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=gorae-test-token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        let der = run(Command::new("sh").arg("-c").arg(format!(
            "openssl x509 -in {} -outform DER | base64 -w0",
            cert.display()
        )));
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind token server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let expected = format!(
            "Basic {}",
            base64_encode(format!("{user}:{password}").as_bytes())
        );
        let (stop2, issued2, key2) = (stop.clone(), issued.clone(), key.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        serve_token(stream, &expected, &key2, der.trim(), &issued2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        TokenServer {
            port,
            dir,
            cert,
            stop,
            thread: Some(thread),
            issued,
        }
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_token(
    mut stream: TcpStream,
    expected_auth: &str,
    key: &Path,
    cert_der_b64: &str,
    issued: &std::sync::atomic::AtomicUsize,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = value.trim().to_string();
            }
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    if authorization != expected_auth {
        let _ = stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let token = sign_token(key, cert_der_b64, &scopes);
    issued.fetch_add(1, Ordering::Relaxed);
    let body = format!("{{\"token\":\"{token}\",\"expires_in\":300}}");
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An RS256 JWT granting every action asked for in `scopes` (`repository:NAME:ACTIONS`).
fn sign_token(key: &Path, cert_der_b64: &str, scopes: &[String]) -> String {
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5c": [cert_der_b64]});
    let claims = serde_json::json!({
        "iss": TokenServer::ISSUER, "sub": "test", "aud": TokenServer::SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now - 10, "jti": format!("{now}-{}", scopes.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        base64url(header.to_string().as_bytes()),
        base64url(claims.to_string().as_bytes())
    );
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(signing_input.as_bytes())
        .expect("feed openssl");
    let mut signature = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut signature)
        .expect("read signature");
    assert!(
        child.wait().expect("openssl").success(),
        "openssl dgst failed"
    );
    format!("{signing_input}.{}", base64url(&signature))
}

fn base64_encode(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64url(data: &[u8]) -> String {
    base64_encode(data)
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_")
}
