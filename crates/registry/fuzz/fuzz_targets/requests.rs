//! Arbitrary bytes as one client connection to the real HTTP server and the real registry
//! handler, over an in-memory pipe (`http::serve_stream`), on a fresh storage root per input.
//!
//! The root holds, before each input, repository `fuzz/app` with a layer blob, a config blob
//! and a manifest tagged `latest`, and one open upload session. The input's `{upload}`,
//! `{blob}` and `{manifest}` are replaced with that session's id and those digests, so inputs
//! can drive a whole push or pull (the fuzzer cannot guess a random session id). An input
//! starting with `~` talks to a registry with token auth (anonymous pull of `fuzz/**` only).
//!
//! Invariants: no panic; the server answers or closes within a deadline; whatever it sends
//! starts as an HTTP/1.1 response; the handler never answers 5xx; nothing is left in the
//! storage's tmp/; every blob stored matches the digest it is stored under; every tag leads
//! to a manifest that reads back.
//!
//! `GORAE_FUZZ_SHOW=1` prints what the server answered (to see what a seed does).
#![no_main]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use gorae_image::Digest;
use gorae_registry::api::Registry;
use gorae_registry::config::LogLevel;
use gorae_registry::http::{
    serve_stream, BoxFuture, Exchange, Handler, Request, Response, ServerOptions,
};
use gorae_registry::{Config, Storage};

const BASE: &str = "/dev/shm/gorae-fuzz-requests";
const REPO: &str = "fuzz/app";
/// Far longer than anything a connection whose client has finished sending should take.
const DEADLINE: Duration = Duration::from_secs(20);

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// The access file of the token registry, written once.
fn access_file() -> &'static PathBuf {
    static ACCESS: OnceLock<PathBuf> = OnceLock::new();
    ACCESS.get_or_init(|| {
        let _ = fs::remove_dir_all(BASE);
        fs::create_dir_all(BASE).expect("fuzz base dir");
        let path = Path::new(BASE).join("access.toml");
        let rules =
            "[[rule]]\nrepositories = [\"fuzz/**\"]\nanonymous = true\nactions = [\"pull\"]\n";
        fs::write(&path, rules).expect("access file");
        path
    })
}

/// What the placeholders in an input stand for.
struct Fixture {
    upload: String,
    blob: Digest,
    manifest: Digest,
}

/// A fresh registry on an empty root, seeded.
fn fresh_registry(token_auth: bool) -> (Arc<Registry>, Fixture) {
    let access = access_file();
    let root = Path::new(BASE).join("root");
    let _ = fs::remove_dir_all(&root);
    let mut config = if token_auth {
        let text = format!(
            "[auth]\ntoken = true\naccess = {:?}\n",
            access.display().to_string()
        );
        Config::parse(&text).expect("token config")
    } else {
        Config::default()
    };
    config.root = root;
    config.log = LogLevel::Error;
    let registry = Registry::open(&config).expect("open the registry");
    let fixture = seed(&registry);
    (Arc::new(registry), fixture)
}

fn seed(registry: &Registry) -> Fixture {
    let storage = registry.storage();
    let push = |data: &[u8]| {
        let digest = Digest::sha256_of(data);
        let session = storage.start_upload(REPO).expect("start upload");
        let mut writer = storage
            .upload_writer(REPO, &session.id, None)
            .expect("writer");
        writer.write(data).expect("write");
        writer.close().expect("close");
        storage
            .finish_upload(REPO, &session.id, &digest)
            .expect("finish");
        digest
    };
    let blob = push(b"fuzz layer");
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = push(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{blob}","size":10}}]}}"#,
        config.len()
    );
    let put = storage
        .put_manifest(REPO, "latest", None, manifest.as_bytes())
        .expect("seed manifest");
    let upload = storage.start_upload(REPO).expect("open session").id;
    Fixture {
        upload,
        blob,
        manifest: put.digest,
    }
}

/// The registry, with the invariant that it never answers 5xx to anything a client sends.
struct Checked(Arc<Registry>);

impl Handler for Checked {
    fn handle<'a>(&'a self, request: Request<'a>) -> BoxFuture<'a, Response> {
        Box::pin(async move {
            let what = format!("{} {}?{}", request.method, request.path, request.query);
            let response = self.0.handle(request).await;
            let status = response.status.as_u16();
            assert!(status < 500, "{what} got {status}: {:?}", response.body);
            response
        })
    }

    fn completed(&self, exchange: &Exchange) {
        self.0.completed(exchange);
    }
}

fn substitute(data: &[u8], fixture: &Fixture) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut rest = data;
    let placeholders: [(&[u8], String); 3] = [
        (b"{upload}", fixture.upload.clone()),
        (b"{blob}", fixture.blob.to_string()),
        (b"{manifest}", fixture.manifest.to_string()),
    ];
    'scan: while !rest.is_empty() {
        for (placeholder, value) in &placeholders {
            if rest.starts_with(placeholder) {
                out.extend_from_slice(value.as_bytes());
                rest = &rest[placeholder.len()..];
                continue 'scan;
            }
        }
        out.push(rest[0]);
        rest = &rest[1..];
    }
    out
}

fn options() -> ServerOptions {
    ServerOptions {
        head_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        body_timeout: Duration::from_secs(2),
        write_timeout: Duration::from_secs(2),
        ..ServerOptions::default()
    }
}

/// Sends `input` and reads everything the server says until it closes.
async fn converse(handler: Arc<dyn Handler>, input: Vec<u8>) -> Vec<u8> {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (mut reader, mut writer) = tokio::io::split(client);
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let serving = serve_stream(server, peer, handler, options());
    let sending = async move {
        // The server may close before taking it all: that is its right.
        let _ = writer.write_all(&input).await;
        let _ = writer.shutdown().await;
    };
    let mut answer = Vec::new();
    let receiving = reader.read_to_end(&mut answer);
    let all = async { tokio::join!(serving, sending, receiving) };
    if tokio::time::timeout(DEADLINE, all).await.is_err() {
        panic!("the server neither answered nor closed within {DEADLINE:?}");
    }
    answer
}

/// Nothing half-written, no blob whose content is not its digest, no tag that leads nowhere.
fn check_storage(storage: &Storage) {
    let root = storage.root();
    let tmp = root.join("tmp");
    if let Ok(entries) = fs::read_dir(&tmp) {
        let left: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        assert!(left.is_empty(), "half-written files left: {left:?}");
    }
    let Ok(prefixes) = fs::read_dir(root.join("blobs/sha256")) else {
        return;
    };
    for blob in prefixes
        .flatten()
        .flat_map(|p| fs::read_dir(p.path()).into_iter().flatten())
    {
        let blob = blob.expect("blob entry");
        let name = blob.file_name().to_string_lossy().into_owned();
        let content = fs::read(blob.path()).expect("read blob");
        assert_eq!(Digest::sha256_of(&content).hex(), name, "blob content lies");
    }
    for repo in storage.repositories().expect("list repositories") {
        for tag in storage.tags(&repo).expect("list tags").unwrap_or_default() {
            let manifest = storage.get_manifest(&repo, &tag);
            assert!(
                matches!(manifest, Ok(Some(_))),
                "tag {repo}:{tag} leads nowhere: {manifest:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (token_auth, data) = match data.split_first() {
        Some((b'~', rest)) => (true, rest),
        _ => (false, data),
    };
    let (registry, fixture) = fresh_registry(token_auth);
    let input = substitute(data, &fixture);
    let handler: Arc<dyn Handler> = Arc::new(Checked(registry.clone()));
    let answer = runtime().block_on(converse(handler, input));
    if std::env::var_os("GORAE_FUZZ_SHOW").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&answer));
    }
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "not an HTTP response: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
    check_storage(registry.storage());
});
