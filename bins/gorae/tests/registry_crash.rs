//! `gorae registry serve` when things go wrong or run long: `kill -9` in the middle of 50
//! concurrent pushes and a restart on the same root; garbage collection every second while
//! pushes and pulls go on; abandoned upload sessions expiring; SIGTERM during an upload.
//!
//! Checked through the HTTP API and by reading the storage directory. Speaks raw HTTP to
//! the registry process: needs no root, and no tool but kill(1). Sizes, upload styles and the
//! moment of the kill are random; the seed is printed and `GORAE_TEST_SEED=<n>` replays it.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::registry_server::{digest_of, files_under, http_request, GoraeRegistry, HttpResponse};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCTETS: (&str, &str) = ("Content-Type", "application/octet-stream");
/// Bodies at least this large never go up in one monolithic POST, and may be held.
const LARGE: usize = 256 * 1024;

// ---- randomness

/// xorshift64*: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("GORAE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: GORAE_TEST_SEED={seed}");
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    fn fork(&mut self) -> Rng {
        Rng(self.next() | 1)
    }
}

// ---- images

#[derive(Clone)]
struct Blob {
    data: Arc<Vec<u8>>,
    digest: String,
}

impl Blob {
    /// `len` bytes (at least the label's) that no other label gives.
    fn new(label: &str, len: usize) -> Blob {
        let seed = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut rng = Rng(seed | 1);
        let mut data = label.as_bytes().to_vec();
        while data.len() < len {
            data.extend_from_slice(&rng.next().to_le_bytes());
        }
        data.truncate(len.max(label.len()));
        Blob::of(data)
    }

    fn of(data: Vec<u8>) -> Blob {
        Blob {
            digest: digest_of(&data),
            data: Arc::new(data),
        }
    }
}

/// How a client sends a blob (every way the spec allows, as real clients do).
#[derive(Clone, Copy, Debug)]
enum Style {
    /// POST ?digest= with the whole blob.
    Monolithic,
    /// POST (a mount attempt), PUT ?digest= with the whole blob.
    PostPut,
    /// POST (a mount attempt), PATCHes of this many bytes with Content-Range, empty PUT.
    Chunked(usize),
    /// POST (a mount attempt), one PATCH with the whole blob, empty PUT.
    Streamed,
}

impl Style {
    fn random(rng: &mut Rng, len: usize) -> Style {
        match rng.range(0, 3) {
            0 if len < LARGE => Style::Monolithic,
            0 | 1 => Style::PostPut,
            2 => Style::Chunked(rng.range(64 << 10, 1 << 20)),
            _ => Style::Streamed,
        }
    }
}

struct TestImage {
    repo: String,
    tag: String,
    /// The config first, then the layers.
    blobs: Vec<(Blob, Style)>,
    manifest: Vec<u8>,
    digest: String,
}

impl TestImage {
    fn new(repo: &str, tag: &str, layers: Vec<(Blob, Style)>) -> TestImage {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"image": format!("{repo}:{tag}")}},
        });
        let config = Blob::of(serde_json::to_vec(&config).expect("config json"));
        let descriptor = |media_type: &str, blob: &Blob| serde_json::json!({"mediaType": media_type, "digest": blob.digest, "size": blob.data.len()});
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
            "layers": layers.iter()
                .map(|(b, _)| descriptor("application/vnd.oci.image.layer.v1.tar+gzip", b))
                .collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec(&manifest).expect("manifest json");
        let mut blobs = vec![(config, Style::Monolithic)];
        blobs.extend(layers);
        TestImage {
            repo: repo.to_string(),
            tag: tag.to_string(),
            blobs,
            digest: digest_of(&manifest),
            manifest,
        }
    }

    fn name(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }
}

// ---- a client that survives the registry dying under it

/// Held requests stop after the first piece of their body until the test opens the gate.
#[derive(Default)]
struct Gate {
    waiting: AtomicUsize,
    open: AtomicBool,
}

impl Gate {
    fn hold(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while !self.open.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// How request bodies go out: in pieces with a pause after each, so a kill or a signal
/// can land in the middle of one.
#[derive(Clone, Copy)]
struct Pace {
    piece: usize,
    pause: Duration,
}

const AT_ONCE: Pace = Pace {
    piece: usize::MAX,
    pause: Duration::ZERO,
};

fn connect(addr: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    stream.set_write_timeout(Some(Duration::from_secs(120)))?;
    Ok(stream)
}

/// Sends the request line and headers, with Content-Length `len`.
fn write_head(
    stream: &mut TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    len: usize,
) -> io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if len > 0 || matches!(method, "PUT" | "POST" | "PATCH") {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())
}

/// Reads the whole response (the connection closes after it); a cut one is an error.
fn read_response(stream: &mut TcpStream, head_request: bool) -> io::Result<HttpResponse> {
    let mut data = Vec::new();
    stream.read_to_end(&mut data)?;
    let cut = |what: &str| io::Error::new(ErrorKind::UnexpectedEof, format!("response {what}"));
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| cut("without a head"))?;
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| cut("without a status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let response = HttpResponse {
        status,
        headers,
        body: data[end + 4..].to_vec(),
    };
    let length = response
        .header("Content-Length")
        .and_then(|v| v.parse().ok());
    if !head_request && length.is_some_and(|len: usize| len != response.body.len()) {
        return Err(cut("with a truncated body"));
    }
    Ok(response)
}

/// One request on its own connection; any failure to talk is an error, never a panic.
fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    pace: Pace,
    mut hold: Option<&Gate>,
) -> io::Result<HttpResponse> {
    let mut stream = connect(addr)?;
    write_head(&mut stream, method, path, headers, body.len())?;
    let mut pieces = body.chunks(pace.piece).peekable();
    while let Some(piece) = pieces.next() {
        stream.write_all(piece)?;
        if let Some(gate) = hold.take() {
            gate.hold();
        }
        if pieces.peek().is_some() && !pace.pause.is_zero() {
            std::thread::sleep(pace.pause);
        }
    }
    read_response(&mut stream, method == "HEAD")
}

#[derive(Debug)]
enum PushError {
    /// The registry went away, or never answered.
    Io(String),
    /// It answered, but not as a push goes.
    Refused {
        what: String,
        code: String,
        response: String,
    },
}

impl PushError {
    fn code(&self) -> &str {
        match self {
            PushError::Refused { code, .. } => code,
            PushError::Io(_) => "",
        }
    }
}

impl std::fmt::Display for PushError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PushError::Io(e) => write!(f, "{e}"),
            PushError::Refused { what, response, .. } => write!(f, "{what}: {response}"),
        }
    }
}

/// Pushes images as a registry client does: HEAD each blob, try a mount, upload what is
/// missing, then PUT the manifest. Remembers unfinished upload sessions so a retry resumes
/// them from the offset the registry reports.
struct Pusher {
    addr: String,
    pace: Pace,
    /// Upload locations by blob digest, from the POST until the blob is complete.
    sessions: HashMap<String, String>,
    /// While uploading this blob, hold at the gate after the first piece.
    hold: Option<(String, Arc<Gate>)>,
    resumed: usize,
}

impl Pusher {
    fn new(addr: &str, pace: Pace) -> Pusher {
        Pusher {
            addr: addr.to_string(),
            pace,
            sessions: HashMap::new(),
            hold: None,
            resumed: 0,
        }
    }

    fn push(&mut self, image: &TestImage) -> Result<(), PushError> {
        for (blob, style) in &image.blobs {
            self.ensure_blob(&image.repo, blob, *style)?;
        }
        let path = format!("/v2/{}/manifests/{}", image.repo, image.tag);
        let headers = [("Content-Type", OCI_MANIFEST)];
        let r = self.request("PUT", &path, &headers, &image.manifest, None)?;
        let r = expect(r, 201, &format!("manifest {}", image.name()))?;
        assert_eq!(
            r.header("Docker-Content-Digest"),
            Some(image.digest.as_str())
        );
        Ok(())
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        holding: Option<&Blob>,
    ) -> Result<HttpResponse, PushError> {
        let hold = match (&self.hold, holding) {
            (Some((digest, gate)), Some(blob)) if *digest == blob.digest => Some(&**gate),
            _ => None,
        };
        send(&self.addr, method, path, headers, body, self.pace, hold)
            .map_err(|e| PushError::Io(format!("{method} {path}: {e}")))
    }

    fn ensure_blob(&mut self, repo: &str, blob: &Blob, style: Style) -> Result<(), PushError> {
        let path = format!("/v2/{repo}/blobs/{}", blob.digest);
        let head = self.request("HEAD", &path, &[], b"", None)?;
        if head.status == 200 {
            return Ok(());
        }
        if let Some(location) = self.sessions.get(&blob.digest).cloned() {
            if self.resume(&location, blob)? {
                self.resumed += 1;
                return Ok(());
            }
        }
        if let Style::Monolithic = style {
            let path = format!("/v2/{repo}/blobs/uploads/?digest={}", blob.digest);
            let r = self.request("POST", &path, &[OCTETS], &blob.data, Some(blob))?;
            return expect(r, 201, &format!("monolithic upload of {}", blob.digest)).map(drop);
        }
        let path = format!("/v2/{repo}/blobs/uploads/?mount={}", blob.digest);
        let r = self.request("POST", &path, &[], b"", None)?;
        if r.status == 201 {
            return Ok(());
        }
        let r = expect(r, 202, &format!("upload session for {}", blob.digest))?;
        let location = location_of(&r)?;
        self.sessions.insert(blob.digest.clone(), location.clone());
        self.upload(location, blob, style, 0)
    }

    /// Continues a session from where the registry says it is; false if it has no such
    /// session any more (or refuses to go on with it), and a fresh upload is needed.
    fn resume(&mut self, location: &str, blob: &Blob) -> Result<bool, PushError> {
        let status = self.request("GET", location, &[], b"", None)?;
        self.sessions.remove(&blob.digest);
        if status.status != 204 {
            return Ok(false);
        }
        // "0-0" is said both for nothing and for one byte received: try nothing.
        let offset = received(&status)?;
        match self.upload(location.to_string(), blob, Style::Chunked(1 << 20), offset) {
            Ok(()) => Ok(true),
            Err(PushError::Refused { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends `blob` from byte `from` on to session `location`, then completes it.
    fn upload(
        &mut self,
        location: String,
        blob: &Blob,
        style: Style,
        from: usize,
    ) -> Result<(), PushError> {
        let (location, last) = match style {
            Style::Monolithic | Style::PostPut => (location, &blob.data[from..]),
            Style::Chunked(n) => (self.patch(location, blob, from, Some(n))?, &[][..]),
            Style::Streamed => (self.patch(location, blob, from, None)?, &[][..]),
        };
        let path = with_digest(&location, &blob.digest);
        let r = self.request("PUT", &path, &[OCTETS], last, Some(blob))?;
        expect(r, 201, &format!("upload of {}", blob.digest))?;
        self.sessions.remove(&blob.digest);
        Ok(())
    }

    /// PATCHes `blob` from byte `from` on: in chunks of `chunk` bytes with Content-Range,
    /// or all in one streamed request. Returns the location for the next request.
    fn patch(
        &mut self,
        mut location: String,
        blob: &Blob,
        from: usize,
        chunk: Option<usize>,
    ) -> Result<String, PushError> {
        let rest = &blob.data[from..];
        let mut start = from;
        for piece in rest.chunks(chunk.unwrap_or(rest.len()).max(1)) {
            let range = format!("{start}-{}", start + piece.len() - 1);
            let mut headers = vec![OCTETS];
            if chunk.is_some() {
                headers.push(("Content-Range", &range));
            }
            let r = self.request("PATCH", &location, &headers, piece, Some(blob))?;
            let what = format!("chunk {range} of {}", blob.digest);
            location = location_of(&expect(r, 202, &what)?)?;
            self.sessions.insert(blob.digest.clone(), location.clone());
            start += piece.len();
        }
        Ok(location)
    }
}

fn expect(r: HttpResponse, status: u16, what: &str) -> Result<HttpResponse, PushError> {
    if r.status == status {
        return Ok(r);
    }
    let code = serde_json::from_slice::<serde_json::Value>(&r.body)
        .ok()
        .and_then(|v| v["errors"][0]["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    Err(PushError::Refused {
        what: what.to_string(),
        code,
        response: format!("{} {}", r.status, r.text()),
    })
}

/// The path of a Location header (the registry may give a whole URL).
fn location_of(r: &HttpResponse) -> Result<String, PushError> {
    let location = r.header("Location").ok_or_else(|| PushError::Refused {
        what: "upload".into(),
        code: String::new(),
        response: format!("{} without a Location", r.status),
    })?;
    Ok(match location.split_once("://") {
        Some((_, rest)) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
        None => location.to_string(),
    })
}

fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// The offset an upload status's `Range: 0-<last>` says the session is at.
fn received(status: &HttpResponse) -> Result<usize, PushError> {
    let last = status
        .header("Range")
        .and_then(|r| r.strip_prefix("0-"))
        .and_then(|n| n.parse::<usize>().ok());
    match last {
        Some(0) => Ok(0),
        Some(n) => Ok(n + 1),
        None => Err(PushError::Refused {
            what: "upload status".into(),
            code: String::new(),
            response: format!("{:?}", status.headers),
        }),
    }
}

// ---- checks

/// Pulls `repo:reference` and every blob it references (HEAD and GET, digest and size), as
/// a client would; panics on anything missing or wrong. Blobs in `verified` (`repo@digest`)
/// are not fetched again. Returns the manifest's digest.
fn pull(addr: &str, repo: &str, reference: &str, verified: &mut HashSet<String>) -> String {
    let path = format!("/v2/{repo}/manifests/{reference}");
    let r = http_request(addr, "GET", &path, &[("Accept", OCI_MANIFEST)], b"");
    assert_eq!(r.status, 200, "GET {path}: {}", r.text());
    let digest = digest_of(&r.body);
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(digest.as_str()),
        "{path}"
    );
    let manifest = r.json();
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    for descriptor in std::iter::once(&manifest["config"]).chain(&layers) {
        let blob = descriptor["digest"].as_str().expect("descriptor digest");
        let size = descriptor["size"].as_u64().expect("descriptor size");
        if !verified.insert(format!("{repo}@{blob}")) {
            continue;
        }
        let path = format!("/v2/{repo}/blobs/{blob}");
        let head = http_request(addr, "HEAD", &path, &[], b"");
        assert_eq!(head.status, 200, "HEAD {path} (of {repo}:{reference})");
        assert_eq!(
            head.header("Content-Length"),
            Some(size.to_string().as_str()),
            "{path}"
        );
        let get = http_request(addr, "GET", &path, &[], b"");
        assert_eq!(
            get.status,
            200,
            "GET {path} (of {repo}:{reference}): {}",
            get.text()
        );
        assert_eq!(get.body.len() as u64, size, "GET {path}");
        assert_eq!(digest_of(&get.body), blob, "GET {path}: wrong content");
    }
    digest
}

/// Follows a paginated list (`n` per page, Link headers) and returns every entry.
fn list_all(reg: &GoraeRegistry, first: &str, field: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(path) = next.take() {
        let r = reg.request("GET", &path, &[], b"");
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        for entry in r.json()[field].as_array().cloned().unwrap_or_default() {
            entries.push(entry.as_str().expect("list entry").to_string());
        }
        next = r
            .header("Link")
            .and_then(|l| Some(l[l.find('<')? + 1..l.find('>')?].to_string()));
    }
    entries
}

/// Everything the registry serves, by `repo:tag` → manifest digest, each manifest pulled
/// completely.
fn check_served(reg: &GoraeRegistry) -> BTreeMap<String, String> {
    let mut served = BTreeMap::new();
    let mut verified = HashSet::new();
    for repo in list_all(reg, "/v2/_catalog?n=3", "repositories") {
        for tag in list_all(reg, &format!("/v2/{repo}/tags/list?n=4"), "tags") {
            let digest = pull(reg.host(), &repo, &tag, &mut verified);
            served.insert(format!("{repo}:{tag}"), digest);
        }
    }
    served
}

/// Every file in the storage (of a registry not running) is whole: blobs hash to their
/// names, revisions hold a media type and their manifest is stored, tags hold the digest
/// of a revision of their repository, `_layers` links are empty, tmp/ is empty.
fn check_storage(root: &Path) {
    let blobs = root.join("blobs");
    let mut stored = HashSet::new();
    for path in files_under(&blobs) {
        let parts: Vec<_> = path.strip_prefix(&blobs).unwrap().iter().collect();
        let [algorithm, prefix, hex] = parts[..] else {
            panic!("stray file {} in blobs/", path.display());
        };
        let (hex, prefix) = (hex.to_string_lossy(), prefix.to_string_lossy());
        let digest = format!("{}:{hex}", algorithm.to_string_lossy());
        assert!(
            hex.starts_with(&*prefix),
            "{} is in the wrong directory",
            path.display()
        );
        let data = std::fs::read(&path).unwrap();
        assert_eq!(
            digest_of(&data),
            digest,
            "{} does not hash to its name",
            path.display()
        );
        stored.insert(digest);
    }
    let tmp = files_under(&root.join("tmp"));
    assert!(tmp.is_empty(), "left in tmp/: {tmp:?}");
    let repositories = root.join("repositories");
    for path in files_under(&repositories) {
        let relative = path
            .strip_prefix(&repositories)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if let Some((_, link)) = relative.split_once("/_layers/") {
            assert!(
                text.is_empty() && link.contains('/'),
                "bad layer link {relative}"
            );
        } else if let Some((_, revision)) = relative.split_once("/_manifests/revisions/") {
            assert!(
                text.starts_with("application/"),
                "bad revision {relative}: {text:?}"
            );
            let digest = revision.replacen('/', ":", 1);
            assert!(
                stored.contains(&digest),
                "revision {relative} of a manifest not stored"
            );
        } else if let Some((repo, _)) = relative.split_once("/_manifests/tags/") {
            let (algorithm, hex) = text.trim().split_once(':').unwrap_or_else(|| {
                panic!("tag {relative} holds {text:?}, not a digest");
            });
            let revision = repositories
                .join(repo)
                .join("_manifests/revisions")
                .join(algorithm);
            assert!(
                revision.join(hex).is_file(),
                "tag {relative} → {text}, not a revision"
            );
        } else {
            panic!("unexpected file {relative} under repositories/");
        }
    }
}

/// Polls `done` until it holds, or panics naming `what` after `limit`.
fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Joins every thread, then passes on the first panic (so no thread is left running
/// against a registry that is being torn down).
fn join_all<T>(threads: Vec<JoinHandle<T>>) -> Vec<T> {
    let results: Vec<_> = threads.into_iter().map(JoinHandle::join).collect();
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .collect()
}

// ---- kill -9 in the middle of 50 pushes

const CRASH_IMAGES: usize = 50;
/// Pushes held in the middle of a large upload when the registry is killed.
const HELD: usize = 8;

/// 50 images in 10 repositories, each with its own config, one or two of 5 shared layers,
/// a big layer of 1–5 MB (second to last) and a small one.
fn crash_images(rng: &mut Rng) -> Vec<TestImage> {
    let shared: Vec<Blob> = (0..5)
        .map(|i| Blob::new(&format!("shared layer {i}"), rng.range(1000, 1 << 20)))
        .collect();
    (0..CRASH_IMAGES)
        .map(|i| {
            let first = rng.range(0, 4);
            let mut layers: Vec<Blob> = (0..rng.range(1, 2))
                .map(|k| shared[(first + k) % shared.len()].clone())
                .collect();
            layers.push(Blob::new(
                &format!("big layer {i}"),
                rng.range(1 << 20, 5 << 20),
            ));
            layers.push(Blob::new(
                &format!("small layer {i}"),
                rng.range(1, 64 << 10),
            ));
            let layers = layers
                .into_iter()
                .map(|blob| {
                    let style = Style::random(rng, blob.data.len());
                    (blob, style)
                })
                .collect();
            TestImage::new(&format!("crash/app{}", i % 10), &format!("v{i}"), layers)
        })
        .collect()
}

fn big_layer(image: &TestImage) -> &Blob {
    &image.blobs[image.blobs.len() - 2].0
}

/// An upload left half done before the kill: after the restart the registry must go on
/// from the offset it reports (hashing what it kept on disk).
struct HalfDone {
    blob: Blob,
    location: String,
}

const HALF_DONE_REPO: &str = "crash/resume";

impl HalfDone {
    fn start(addr: &str) -> HalfDone {
        let blob = Blob::new("half done", 3 << 20);
        let path = format!("/v2/{HALF_DONE_REPO}/blobs/uploads/");
        let r = send(addr, "POST", &path, &[], b"", AT_ONCE, None).unwrap();
        let location = location_of(&expect(r, 202, "session").unwrap()).unwrap();
        let half = blob.data.len() / 2 + 12345;
        let range = format!("0-{}", half - 1);
        let headers = [OCTETS, ("Content-Range", range.as_str())];
        let first = &blob.data[..half];
        let r = send(addr, "PATCH", &location, &headers, first, AT_ONCE, None).unwrap();
        expect(r, 202, "first half").unwrap();
        HalfDone { blob, location }
    }

    fn finish(self, addr: &str) {
        let mut pusher = Pusher::new(addr, AT_ONCE);
        pusher
            .sessions
            .insert(self.blob.digest.clone(), self.location);
        let finished = pusher.ensure_blob(HALF_DONE_REPO, &self.blob, Style::PostPut);
        finished.unwrap_or_else(|e| panic!("finishing the half-done upload: {e}"));
        assert_eq!(
            pusher.resumed, 1,
            "the half-done upload did not survive the kill"
        );
        let path = format!("/v2/{HALF_DONE_REPO}/blobs/{}", self.blob.digest);
        let get = http_request(addr, "GET", &path, &[], b"");
        assert_eq!((get.status, digest_of(&get.body)), (200, self.blob.digest));
    }
}

/// Starts the 50 pushes, staggered over a second and a half, the `held` ones stopping in
/// the middle of their big layer. Each thread returns its pusher and how the push ended.
fn start_crash_pushes(
    addr: &str,
    images: &Arc<Vec<TestImage>>,
    held: &HashSet<usize>,
    gate: &Arc<Gate>,
    finished: &Arc<AtomicUsize>,
    rng: &mut Rng,
) -> Vec<JoinHandle<(Pusher, Result<(), PushError>)>> {
    let slow = Pace {
        piece: 128 << 10,
        pause: Duration::from_millis(1),
    };
    (0..CRASH_IMAGES)
        .map(|i| {
            let mut pusher = Pusher::new(addr, slow);
            if held.contains(&i) {
                pusher.hold = Some((big_layer(&images[i]).digest.clone(), gate.clone()));
            }
            // Held pushes start early, so the kill can come early too.
            let latest = if held.contains(&i) { 300 } else { 1500 };
            let delay = Duration::from_millis(rng.range(0, latest) as u64);
            let (images, finished) = (images.clone(), finished.clone());
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let result = pusher.push(&images[i]);
                if result.is_ok() {
                    finished.fetch_add(1, Ordering::SeqCst);
                }
                (pusher, result)
            })
        })
        .collect()
}

#[test]
fn kill_9_during_50_pushes_loses_nothing_and_retried_pushes_succeed() {
    let mut rng = Rng::from_env("kill_9_during_50_pushes");
    let mut reg = GoraeRegistry::start("");
    let addr = reg.host().to_string();
    let images = Arc::new(crash_images(&mut rng));
    let half_done = HalfDone::start(&addr);
    let mut held = HashSet::new();
    while held.len() < HELD {
        held.insert(rng.range(0, CRASH_IMAGES - 1));
    }
    let (gate, finished) = (Arc::new(Gate::default()), Arc::new(AtomicUsize::new(0)));
    let pushes = start_crash_pushes(&addr, &images, &held, &gate, &finished, &mut rng);

    // Some pushes done, the held ones stopped mid-upload, others anywhere.
    let kill_after = rng.range(5, CRASH_IMAGES - HELD - 10);
    wait_for("pushes before the kill", Duration::from_secs(600), || {
        finished.load(Ordering::SeqCst) >= kill_after && gate.waiting.load(Ordering::SeqCst) == HELD
    });
    std::thread::sleep(Duration::from_millis(rng.range(0, 40) as u64));
    reg.kill9();
    gate.open.store(true, Ordering::SeqCst);
    let mut unfinished = Vec::new();
    let mut acknowledged = Vec::new();
    for (i, (pusher, result)) in join_all(pushes).into_iter().enumerate() {
        match result {
            Ok(()) => acknowledged.push(i),
            Err(PushError::Io(_)) => unfinished.push((i, pusher)),
            Err(e) => panic!("push of {} refused: {e}", images[i].name()),
        }
    }
    eprintln!(
        "killed after {} pushes had finished (waited for {kill_after}); {} unfinished",
        acknowledged.len(),
        unfinished.len()
    );

    reg.restart();
    check_storage(&reg.storage());
    let served = check_served(&reg);
    for &i in &acknowledged {
        let image = &images[i];
        assert_eq!(
            served.get(&image.name()),
            Some(&image.digest),
            "{} lost",
            image.name()
        );
    }
    half_done.finish(&addr);

    let retries: Vec<_> = unfinished
        .into_iter()
        .map(|(i, mut pusher)| {
            let images = images.clone();
            std::thread::spawn(move || {
                pusher.pace = AT_ONCE;
                pusher.hold = None;
                let retried = pusher.push(&images[i]);
                retried.unwrap_or_else(|e| panic!("retry of {}: {e}", images[i].name()));
                pusher.resumed
            })
        })
        .collect();
    let resumed: usize = join_all(retries).into_iter().sum();
    eprintln!("retries resumed {resumed} upload sessions");
    // Every held push had a session with data in it: the registry must have kept it.
    assert!(
        resumed >= HELD,
        "only {resumed} of {HELD} held uploads could be resumed"
    );

    let served = check_served(&reg);
    let expected: BTreeMap<_, _> = images
        .iter()
        .map(|i| (i.name(), i.digest.clone()))
        .collect();
    assert_eq!(served, expected);
    check_storage(&reg.storage());
}

// ---- garbage collection under load

const GC_CONFIG: &str = "[storage]\ngc_interval = \"1s\"\ngc_grace = \"3s\"\n";
const GRACE: Duration = Duration::from_secs(3);
/// How long pushes and pulls run while GC runs every second.
const LOAD: Duration = Duration::from_secs(12);

fn delete_manifest(addr: &str, repo: &str, digest: &str) {
    let path = format!("/v2/{repo}/manifests/{digest}");
    let r = http_request(addr, "DELETE", &path, &[], b"");
    assert_eq!(r.status, 202, "DELETE {path}: {}", r.text());
}

/// Pushes images to gc/garbage and deletes their manifests; returns the digests of every
/// blob they held (their manifests included), which nothing references now.
fn make_garbage(addr: &str) -> Vec<String> {
    let mut garbage = Vec::new();
    for i in 0..4 {
        let layers = (0..2)
            .map(|k| {
                (
                    Blob::new(&format!("garbage {i} {k}"), 64 << 10),
                    Style::PostPut,
                )
            })
            .collect();
        let image = TestImage::new("gc/garbage", &format!("g{i}"), layers);
        Pusher::new(addr, AT_ONCE).push(&image).unwrap();
        delete_manifest(addr, &image.repo, &image.digest);
        garbage.extend(image.blobs.iter().map(|(blob, _)| blob.digest.clone()));
        garbage.push(image.digest);
    }
    garbage
}

fn blob_file(storage: &Path, digest: &str) -> std::path::PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("digest");
    storage
        .join("blobs")
        .join(algorithm)
        .join(&hex[..2])
        .join(hex)
}

fn metric(reg: &GoraeRegistry, name: &str) -> u64 {
    let text = reg.request("GET", "/metrics", &[], b"").text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics: {text}"))
}

/// What the load threads share: images pushed and kept (repo, tag, digest), images pushed
/// and deleted again (repo, digest), and counts.
#[derive(Default)]
struct GcLoad {
    kept: Mutex<Vec<(String, String, String)>>,
    deleted: Mutex<Vec<(String, String)>>,
    stop: AtomicBool,
    pulls: AtomicUsize,
    /// Pushes refused because GC took a blob the push had checked more than the grace
    /// period before its manifest came: legitimate, and retried as clients do.
    retries: AtomicUsize,
}

/// Pushes `image`; retries only what the design allows to fail (see `GcLoad::retries`).
fn push_through_gc(pusher: &mut Pusher, image: &TestImage, load: &GcLoad) {
    for _ in 0..10 {
        let started = Instant::now();
        match pusher.push(image) {
            Ok(()) => return,
            Err(e) if e.code() == "MANIFEST_BLOB_UNKNOWN" && started.elapsed() >= GRACE => {
                load.retries.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => panic!("push of {} ({:?}): {e}", image.name(), started.elapsed()),
        }
    }
    panic!("push of {} kept failing", image.name());
}

/// Pushes image after image to gc/app<t>, each with its own layer and one of the shared
/// ones; deletes every third again (garbage made while GC runs).
fn gc_pusher(addr: String, t: usize, shared: Arc<Vec<Blob>>, load: Arc<GcLoad>, mut rng: Rng) {
    let mut pusher = Pusher::new(&addr, AT_ONCE);
    for i in 0.. {
        if load.stop.load(Ordering::SeqCst) {
            return;
        }
        let own = Blob::new(&format!("gc layer {t} {i}"), rng.range(1, 256 << 10));
        let common = shared[rng.range(0, shared.len() - 1)].clone();
        let layers = [common, own]
            .into_iter()
            .map(|blob| {
                let style = Style::random(&mut rng, blob.data.len());
                (blob, style)
            })
            .collect();
        let image = TestImage::new(&format!("gc/app{t}"), &format!("v{i}"), layers);
        push_through_gc(&mut pusher, &image, &load);
        if i % 3 == 2 {
            delete_manifest(&addr, &image.repo, &image.digest);
            load.deleted
                .lock()
                .unwrap()
                .push((image.repo, image.digest));
        } else {
            let entry = (image.repo, image.tag, image.digest);
            load.kept.lock().unwrap().push(entry);
        }
    }
}

/// Pulls kept images (by tag or digest), completely, until told to stop.
fn gc_puller(addr: String, load: Arc<GcLoad>, mut rng: Rng) {
    while !load.stop.load(Ordering::SeqCst) {
        let pick = {
            let kept = load.kept.lock().unwrap();
            (!kept.is_empty()).then(|| kept[rng.range(0, kept.len() - 1)].clone())
        };
        let Some((repo, tag, digest)) = pick else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let reference = if rng.range(0, 1) == 0 { &tag } else { &digest };
        assert_eq!(pull(&addr, &repo, reference, &mut HashSet::new()), digest);
        load.pulls.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn gc_every_second_during_pushes_and_pulls_loses_nothing() {
    let mut rng = Rng::from_env("gc_during_pushes_and_pulls");
    let mut reg = GoraeRegistry::start(GC_CONFIG);
    let addr = reg.host().to_string();
    let storage = reg.storage();
    let garbage = make_garbage(&addr);
    std::thread::sleep(GRACE + Duration::from_secs(1));

    let shared: Arc<Vec<Blob>> = Arc::new(
        (0..6)
            .map(|i| Blob::new(&format!("gc shared {i}"), rng.range(1000, 512 << 10)))
            .collect(),
    );
    let load = Arc::new(GcLoad::default());
    let mut threads = Vec::new();
    for t in 0..3 {
        let (addr, shared, load, rng) = (addr.clone(), shared.clone(), load.clone(), rng.fork());
        threads.push(std::thread::spawn(move || {
            gc_pusher(addr, t, shared, load, rng)
        }));
    }
    for _ in 0..2 {
        let (addr, load, rng) = (addr.clone(), load.clone(), rng.fork());
        threads.push(std::thread::spawn(move || gc_puller(addr, load, rng)));
    }
    std::thread::sleep(LOAD);
    load.stop.store(true, Ordering::SeqCst);
    join_all(threads);

    wait_for("GC to take the garbage", Duration::from_secs(60), || {
        garbage.iter().all(|d| !blob_file(&storage, d).exists())
    });
    let removed = metric(&reg, "gorae_registry_gc_removed_blobs_total");
    assert!(
        removed >= garbage.len() as u64,
        "/metrics says {removed} blobs removed"
    );
    let kept = std::mem::take(&mut *load.kept.lock().unwrap());
    let deleted = std::mem::take(&mut *load.deleted.lock().unwrap());
    eprintln!(
        "{} images kept, {} deleted, {} pulls, {} GC runs removed {removed} blobs, {} pushes retried",
        kept.len(),
        deleted.len(),
        load.pulls.load(Ordering::SeqCst),
        metric(&reg, "gorae_registry_gc_runs_total"),
        load.retries.load(Ordering::SeqCst),
    );

    let stopped = reg.stop();
    assert!(stopped.success(), "{stopped}: {}", reg.log());
    check_storage(&storage);
    reg.restart();
    let served = check_served(&reg);
    let expected: BTreeMap<_, _> = kept
        .into_iter()
        .map(|(repo, tag, digest)| (format!("{repo}:{tag}"), digest))
        .collect();
    assert_eq!(served, expected);
    for (repo, digest) in deleted {
        let r = reg.request("GET", &format!("/v2/{repo}/manifests/{digest}"), &[], b"");
        assert_eq!(r.status, 404, "deleted {repo}@{digest} is still served");
    }
}

// ---- upload expiry and graceful stop

/// A request whose body goes out in two parts, the test acting in between.
struct OpenRequest(TcpStream);

impl OpenRequest {
    fn start(addr: &str, method: &str, path: &str, len: usize, first: &[u8]) -> OpenRequest {
        let mut stream = connect(addr).expect("connect to registry");
        write_head(&mut stream, method, path, &[OCTETS], len).expect("send head");
        stream.write_all(first).expect("send body");
        OpenRequest(stream)
    }

    fn finish(mut self, rest: &[u8]) -> HttpResponse {
        self.0.write_all(rest).expect("send the rest of the body");
        read_response(&mut self.0, false).expect("response")
    }
}

/// POST: a new upload session's location.
fn start_session(addr: &str, repo: &str) -> String {
    let r = http_request(
        addr,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    location_of(&expect(r, 202, repo).unwrap()).unwrap()
}

fn upload_range(addr: &str, location: &str) -> Option<String> {
    let r = http_request(addr, "GET", location, &[], b"");
    r.header("Range").map(str::to_string)
}

/// PUT ?digest= (no body) completes the session; the blob is then served.
fn complete_upload(addr: &str, repo: &str, location: &str, blob: &Blob) {
    let r = http_request(addr, "PUT", &with_digest(location, &blob.digest), &[], b"");
    assert_eq!(r.status, 201, "completing {location}: {}", r.text());
    let get = http_request(
        addr,
        "GET",
        &format!("/v2/{repo}/blobs/{}", blob.digest),
        &[],
        b"",
    );
    assert_eq!(
        (get.status, digest_of(&get.body)),
        (200, blob.digest.clone())
    );
}

#[test]
fn abandoned_upload_sessions_expire_and_ones_being_written_do_not() {
    let reg = GoraeRegistry::start("[storage]\nupload_expiry = \"2s\"\n");
    let addr = reg.host();
    let blob = Blob::new("expiry", 2000);
    let busy = start_session(addr, "expiry/busy");
    let abandoned = start_session(addr, "expiry/abandoned");
    let headers = [OCTETS, ("Content-Range", "0-999")];
    let r = http_request(addr, "PATCH", &abandoned, &headers, &blob.data[..1000]);
    assert_eq!(r.status, 202, "{}", r.text());
    // Older than the abandoned one, but a request is writing it.
    let writing = OpenRequest::start(addr, "PATCH", &busy, 2000, &blob.data[..1000]);
    wait_for(
        "the first half of the busy upload",
        Duration::from_secs(30),
        || upload_range(addr, &busy).as_deref() == Some("0-999"),
    );

    wait_for(
        "the abandoned session to expire",
        Duration::from_secs(60),
        || http_request(addr, "GET", &abandoned, &[], b"").status == 404,
    );
    let r = http_request(addr, "GET", &abandoned, &[], b"");
    assert_eq!(r.error_code(), "BLOB_UPLOAD_UNKNOWN");
    let id = abandoned.rsplit('/').next().unwrap();
    assert!(!reg.storage().join("uploads").join(id).exists());
    // Counted once the expiry pass that removed it is over.
    wait_for("the expiry to be counted", Duration::from_secs(30), || {
        metric(&reg, "gorae_registry_expired_uploads_total") >= 1
    });

    let r = writing.finish(&blob.data[1000..]);
    assert_eq!(
        (r.status, r.header("Range")),
        (202, Some("0-1999")),
        "{}",
        r.text()
    );
    complete_upload(addr, "expiry/busy", &busy, &blob);
}

#[test]
fn sigterm_lets_the_upload_in_flight_finish_and_releases_the_root() {
    let mut reg = GoraeRegistry::start("");
    let addr = reg.host().to_string();
    let blob = Blob::new("sigterm", 8 << 20);
    let location = start_session(&addr, "stop/app");
    let first = 1 << 20;
    let writing = OpenRequest::start(
        &addr,
        "PATCH",
        &location,
        blob.data.len(),
        &blob.data[..first],
    );
    let range = format!("0-{}", first - 1);
    wait_for("the first MiB", Duration::from_secs(30), || {
        upload_range(&addr, &location) == Some(range.clone())
    });

    let term = std::process::Command::new("kill")
        .args(["-TERM", &reg.pid().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    wait_for(
        "the registry to begin its shutdown",
        Duration::from_secs(30),
        || reg.log().contains("shutting down"),
    );
    wait_for("the listener to close", Duration::from_secs(30), || {
        TcpStream::connect(&addr).is_err()
    });
    let r = writing.finish(&blob.data[first..]);
    let all = format!("0-{}", blob.data.len() - 1);
    assert_eq!(
        (r.status, r.header("Range")),
        (202, Some(all.as_str())),
        "{}",
        r.text()
    );
    let stopped = reg.stop();
    assert!(stopped.success(), "{stopped}: {}", reg.log());

    // The lock is released: a new registry takes the root, and the session is whole.
    reg.restart();
    assert_eq!(upload_range(&addr, &location), Some(all));
    complete_upload(&addr, "stop/app", &location, &blob);
}
