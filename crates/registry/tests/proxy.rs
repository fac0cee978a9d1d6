//! The pull-through cache against real upstreams: CNCF registries (Debian's docker-registry)
//! holding images built with umoci and pushed with skopeo. Checks bytes and digests of what
//! the cache serves, that it keeps serving once the upstream is gone, that tags follow the
//! upstream, routing by prefix, corrupt upstreams, and shared downloads.
//!
//! Needs root (umoci keeps file owners) and docker-registry, umoci, skopeo, htpasswd and
//! openssl on PATH.

#[path = "../../image/tests/support/registry.rs"]
mod support;

use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gorae_image::{Digest, ImageManifest};
use gorae_registry::config::UpstreamConfig;
use gorae_registry::http::{Response, ResponseBody};
use gorae_registry::proxy::Proxy;
use gorae_registry::storage::StorageOptions;
use gorae_registry::{ApiError, ErrorCode, Storage};
use http::StatusCode;
use support::{run, OciLayout, TestRegistry};

/// A cache with its own storage in a temp dir.
struct Cache {
    _dir: tempfile::TempDir,
    storage: Arc<Storage>,
    proxy: Proxy,
}

impl Cache {
    fn new(upstreams: &[UpstreamConfig]) -> Cache {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), StorageOptions::default()).unwrap();
        let proxy = Proxy::new(upstreams, storage.clone()).unwrap();
        Cache {
            _dir: dir,
            storage,
            proxy,
        }
    }

    async fn manifest_digest(&self, repo: &str, reference: &str) -> Option<Digest> {
        let manifest = self.proxy.manifest(repo, reference, None).await.unwrap();
        manifest.map(|m| m.digest)
    }

    async fn get(&self, repo: &str, digest: &Digest) -> Response {
        let response = self.proxy.blob(repo, digest, false).await.unwrap();
        response.expect("the blob is found")
    }
}

fn upstream(registry: &TestRegistry, prefix: Option<&str>, tag_ttl: Duration) -> UpstreamConfig {
    UpstreamConfig {
        url: format!("http://{}", registry.host()),
        prefix: prefix.map(str::to_string),
        username: None,
        password: None,
        tag_ttl,
    }
}

/// Bytes no compressor shrinks, so layers are as big as asked.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Adds an image `tag` of one layer holding `size` bytes of noise made from `seed`.
fn add_image(layout: &OciLayout, tag: &str, size: usize, seed: u64) {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("noise"), noise(size, seed)).unwrap();
    layout.new_image(tag, "amd64");
    layout.insert(tag, src.path(), "/data");
}

fn push(layout: &OciLayout, tag: &str, registry: &TestRegistry, repo_and_tag: &str) {
    layout.push(tag, registry, repo_and_tag);
}

fn digest_of(layout: &OciLayout, tag: &str) -> Digest {
    layout.descriptor(tag)["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// The config and layer digests of the layout's image `tag`.
fn blobs_of(layout: &OciLayout, tag: &str) -> Vec<Digest> {
    let bytes = layout.blob(&digest_of(layout, tag).to_string());
    let manifest: ImageManifest = serde_json::from_slice(&bytes).unwrap();
    std::iter::once(manifest.config.digest)
        .chain(manifest.layers.into_iter().map(|l| l.digest))
        .collect()
}

/// A response's body; Err if a stream ended with an error piece.
async fn body(response: Response) -> Result<Vec<u8>, String> {
    match response.body {
        ResponseBody::Empty => Ok(Vec::new()),
        ResponseBody::Bytes(bytes) => Ok(bytes.to_vec()),
        ResponseBody::File { file, offset, len } => {
            let mut buf = vec![0; len as usize];
            file.read_exact_at(&mut buf, offset).unwrap();
            Ok(buf)
        }
        ResponseBody::Stream { len, mut pieces } => {
            let mut out = Vec::new();
            while let Some(piece) = pieces.recv().await {
                out.extend_from_slice(&piece.map_err(|e| e.to_string())?);
            }
            if let Some(len) = len {
                assert_eq!(out.len() as u64, len, "Content-Length and body agree");
            }
            Ok(out)
        }
    }
}

fn is_file(response: &Response) -> bool {
    matches!(response.body, ResponseBody::File { .. })
}

fn header<'r>(response: &'r Response, name: &str) -> &'r str {
    response.headers[name].to_str().unwrap()
}

fn assert_blob_headers(response: &Response, digest: &Digest) {
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(header(response, "content-type"), "application/octet-stream");
    assert_eq!(
        header(response, "docker-content-digest"),
        digest.to_string()
    );
}

/// Waits (up to a minute: never a timing assertion) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many requests the upstream logged whose line starts with `prefix`.
fn requests(registry: &TestRegistry, prefix: &str) -> usize {
    let requests = registry.requests();
    requests.iter().filter(|r| r.starts_with(prefix)).count()
}

fn assert_bad_gateway(e: gorae_registry::Error, needle: &str) {
    let api = ApiError::from(e);
    assert_eq!(api.status(), StatusCode::BAD_GATEWAY, "{}", api.message);
    assert_eq!(api.code, ErrorCode::Unknown);
    assert!(api.message.contains(needle), "{}", api.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pulls_through_then_serves_the_cache_when_the_upstream_is_gone() {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    add_image(&layout, "v1", 3 << 20, 1);
    push(&layout, "v1", &registry, "library/app:v1");
    let cache = Cache::new(&[upstream(&registry, None, Duration::ZERO)]);
    let repo = "library/app";
    assert!(cache.proxy.mirrors(repo));

    let manifest = digest_of(&layout, "v1");
    let got = cache
        .proxy
        .manifest(repo, "v1", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, manifest);
    assert_eq!(got.bytes.to_vec(), layout.blob(&manifest.to_string()));
    assert_eq!(got.media_type, gorae_image::media::OCI_MANIFEST);
    let by_digest = cache.manifest_digest(repo, &manifest.to_string()).await;
    assert_eq!(by_digest, Some(manifest.clone()));

    for digest in blobs_of(&layout, "v1") {
        let expected = layout.blob(&digest.to_string());
        let head = cache
            .proxy
            .blob(repo, &digest, true)
            .await
            .unwrap()
            .unwrap();
        assert_blob_headers(&head, &digest);
        assert_eq!(header(&head, "content-length"), expected.len().to_string());
        assert!(matches!(head.body, ResponseBody::Empty));

        let streamed = cache.get(repo, &digest).await;
        assert_blob_headers(&streamed, &digest);
        assert!(
            !is_file(&streamed),
            "the first GET streams from the upstream"
        );
        assert_eq!(body(streamed).await.unwrap(), expected);
        let storage = cache.storage.clone();
        let stored = || storage.stat_blob(repo, &digest).unwrap().is_some();
        eventually("the blob reaching the cache", stored).await;
        let cached = cache.get(repo, &digest).await;
        assert!(is_file(&cached), "the second GET is served from the cache");
        assert_eq!(body(cached).await.unwrap(), expected);
    }

    drop(registry);
    // Past its ttl (0) the tag is served from the cache, however old, as is everything else.
    assert_eq!(
        cache.manifest_digest(repo, "v1").await,
        Some(manifest.clone())
    );
    let by_digest = cache.manifest_digest(repo, &manifest.to_string()).await;
    assert_eq!(by_digest, Some(manifest.clone()));
    for digest in blobs_of(&layout, "v1") {
        let head = cache
            .proxy
            .blob(repo, &digest, true)
            .await
            .unwrap()
            .unwrap();
        assert_blob_headers(&head, &digest);
        let cached = cache.get(repo, &digest).await;
        assert!(is_file(&cached));
        assert_eq!(
            body(cached).await.unwrap(),
            layout.blob(&digest.to_string())
        );
    }
    // What was never cached is a 502 naming the upstream.
    let missing = Digest::sha256_of(b"never pushed");
    let url = "http://127.0.0.1:";
    assert_bad_gateway(
        cache.proxy.blob(repo, &missing, false).await.unwrap_err(),
        url,
    );
    assert_bad_gateway(
        cache.proxy.blob(repo, &missing, true).await.unwrap_err(),
        url,
    );
    let e = cache.proxy.manifest(repo, "v2", None).await.unwrap_err();
    assert_bad_gateway(e, "library/app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_tags_are_fresh_for_their_ttl_then_follow_the_upstream() {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    add_image(&layout, "one", 1000, 2);
    add_image(&layout, "two", 1000, 3);
    push(&layout, "one", &registry, "app:latest");
    let (one, two) = (digest_of(&layout, "one"), digest_of(&layout, "two"));
    let cache = Cache::new(&[upstream(&registry, None, Duration::from_secs(3600))]);
    assert_eq!(
        cache.manifest_digest("app", "latest").await,
        Some(one.clone())
    );

    push(&layout, "two", &registry, "app:latest");
    let asked = requests(&registry, "HEAD /v2/app/manifests/latest");
    assert_eq!(
        cache.manifest_digest("app", "latest").await,
        Some(one.clone())
    );
    assert_eq!(
        requests(&registry, "HEAD /v2/app/manifests/latest"),
        asked,
        "a fresh tag is not asked for upstream"
    );

    // Another proxy on the same storage, with no ttl: it asks, and sees the new manifest.
    let eager = Proxy::new(
        &[upstream(&registry, None, Duration::ZERO)],
        cache.storage.clone(),
    )
    .unwrap();
    let got = eager
        .manifest("app", "latest", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, two);
    let gets = requests(&registry, "GET /v2/app/manifests/latest");
    // A client that accepts only Docker manifests does not make the OCI one look deleted.
    let docker_only = Some(gorae_image::media::DOCKER_MANIFEST);
    let got = eager
        .manifest("app", "latest", docker_only)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, two);
    assert_eq!(
        requests(&registry, "GET /v2/app/manifests/latest"),
        gets,
        "an unchanged tag is checked with a HEAD, not downloaded again"
    );

    // Moved back to a manifest the cache holds: re-tagged without a download.
    push(&layout, "one", &registry, "app:latest");
    let got = eager
        .manifest("app", "latest", None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.digest, one);
    assert_eq!(requests(&registry, "GET /v2/app/manifests/latest"), gets);
    let stored = cache
        .storage
        .get_manifest("app", "latest")
        .unwrap()
        .unwrap();
    assert_eq!(stored.digest, one);

    // Deleted upstream: gone from the cache too (by tag), still there by digest.
    run(Command::new("skopeo").args([
        "delete",
        "--tls-verify=false",
        &format!("docker://{}/app:latest", registry.host()),
    ]));
    assert!(eager
        .manifest("app", "latest", None)
        .await
        .unwrap()
        .is_none());
    assert!(cache
        .storage
        .get_manifest("app", "latest")
        .unwrap()
        .is_none());
    drop(registry);
    assert!(eager.manifest("app", "latest", None).await.is_err());
    let by_digest = eager.manifest("app", &one.to_string(), None).await.unwrap();
    assert_eq!(by_digest.unwrap().digest, one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_routes_by_prefix_and_tries_unprefixed_upstreams_in_order() {
    let (prefixed, first, second) = (
        TestRegistry::start(),
        TestRegistry::start(),
        TestRegistry::start(),
    );
    let layout = OciLayout::new();
    for (tag, seed) in [("p", 10), ("f", 11), ("s", 12)] {
        add_image(&layout, tag, 1000, seed);
    }
    push(&layout, "p", &prefixed, "tools/x:v1");
    push(&layout, "f", &first, "both:v1");
    push(&layout, "s", &second, "both:v1");
    push(&layout, "s", &second, "only-second:v1");
    let ttl = Duration::from_secs(60);
    let cache = Cache::new(&[
        upstream(&first, None, ttl),
        upstream(&prefixed, Some("mirror"), ttl),
        upstream(&second, None, ttl),
    ]);
    let (p, f, s) = (
        digest_of(&layout, "p"),
        digest_of(&layout, "f"),
        digest_of(&layout, "s"),
    );
    assert_eq!(cache.manifest_digest("mirror/tools/x", "v1").await, Some(p));
    assert_eq!(cache.manifest_digest("both", "v1").await, Some(f));
    assert_eq!(
        cache.manifest_digest("only-second", "v1").await,
        Some(s.clone())
    );
    assert_eq!(cache.manifest_digest("tools/x", "v1").await, None);
    assert_eq!(cache.manifest_digest("mirror/both", "v1").await, None);
    assert!(cache.proxy.mirrors("anything/else"));

    let layer = blobs_of(&layout, "s").pop().unwrap();
    let got = body(cache.get("only-second", &layer).await).await.unwrap();
    assert_eq!(got, layout.blob(&layer.to_string()));
    let found = cache.proxy.blob("mirror/tools/x", &layer, false).await;
    assert!(
        found.unwrap().is_none(),
        "the prefixed upstream does not have it"
    );
    assert_eq!(requests(&prefixed, "GET /v2/mirror"), 0);
    assert!(requests(&prefixed, "GET /v2/tools/x/manifests/v1") > 0);

    let only_prefixed = Cache::new(&[upstream(&prefixed, Some("mirror"), ttl)]);
    assert!(!only_prefixed.proxy.mirrors("both"));
    assert!(only_prefixed.proxy.mirrors("mirror/a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_a_corrupt_upstream_blob_never_reaches_the_client_whole_nor_the_cache() {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    add_image(&layout, "v1", 1 << 20, 4);
    push(&layout, "v1", &registry, "app:v1");
    let layer = blobs_of(&layout, "v1").pop().unwrap();
    let data = registry.blob_data(&layer.to_string());
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&data, &bytes).unwrap();

    let cache = Cache::new(&[upstream(&registry, None, Duration::ZERO)]);
    for _ in 0..2 {
        let e = body(cache.get("app", &layer).await).await.unwrap_err();
        assert!(e.contains(&layer.to_string()), "{e}");
        assert!(e.contains(&registry.host()), "{e}");
        assert!(cache.storage.stat_blob("app", &layer).unwrap().is_none());
    }
    assert_eq!(
        requests(&registry, &format!("GET /v2/app/blobs/{layer}")),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_concurrent_gets_share_one_download_and_a_leaving_client_still_fills_the_cache() {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    // Bigger than the pieces queued towards a client that does not read yet, so the first
    // download is still under way when the second request comes.
    add_image(&layout, "v1", 8 << 20, 5);
    push(&layout, "v1", &registry, "app:v1");
    push(&layout, "v1", &registry, "other:v1");
    let layer = blobs_of(&layout, "v1").pop().unwrap();
    let expected = layout.blob(&layer.to_string());
    let cache = Cache::new(&[upstream(&registry, None, Duration::ZERO)]);

    let first = cache.get("app", &layer).await;
    let second = cache.get("app", &layer).await;
    assert!(!is_file(&first) && !is_file(&second));
    assert_blob_headers(&second, &layer);
    let (a, b) = tokio::join!(body(first), body(second));
    assert_eq!(a.unwrap(), expected);
    assert_eq!(b.unwrap(), expected);
    let gets = |repo: &str| requests(&registry, &format!("GET /v2/{repo}/blobs/{layer}"));
    assert_eq!(gets("app"), 1, "one download for both clients");

    // Another repository holding the same blob upstream: linked, not downloaded again.
    let storage = cache.storage.clone();
    eventually("the blob reaching the cache", || {
        storage.stat_blob("app", &layer).unwrap().is_some()
    })
    .await;
    let linked = cache.get("other", &layer).await;
    assert!(is_file(&linked));
    assert_eq!(body(linked).await.unwrap(), expected);

    // A client that goes away at once: the download completes the cache anyway.
    let fresh = Cache::new(&[upstream(&registry, None, Duration::ZERO)]);
    drop(fresh.get("app", &layer).await);
    let storage = fresh.storage.clone();
    eventually("the abandoned download reaching the cache", || {
        storage.stat_blob("app", &layer).unwrap().is_some()
    })
    .await;
    assert_eq!(
        body(fresh.get("app", &layer).await).await.unwrap(),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_pulls_through_an_upstream_that_wants_tokens() {
    let registry = TestRegistry::with_token_auth("alice", "s3cret");
    let layout = OciLayout::new();
    add_image(&layout, "v1", 1000, 6);
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &format!("oci:{}:v1", layout.path().display()),
        &format!("docker://{}/private:v1", registry.host()),
    ]));
    let mut config = upstream(&registry, Some("corp"), Duration::ZERO);
    config.username = Some("alice".into());
    config.password = Some("s3cret".into());
    let cache = Cache::new(&[config]);
    let manifest = digest_of(&layout, "v1");
    assert_eq!(
        cache.manifest_digest("corp/private", "v1").await,
        Some(manifest)
    );
    for digest in blobs_of(&layout, "v1") {
        let got = body(cache.get("corp/private", &digest).await)
            .await
            .unwrap();
        assert_eq!(got, layout.blob(&digest.to_string()));
    }
}

/// skopeo copies `name` (a tag) from the gorae registry at `addr` into a fresh OCI layout,
/// verifying every digest; returns the manifest digest it wrote.
fn skopeo_pull(addr: std::net::SocketAddr, name: &str) -> Digest {
    let dest = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{addr}/{name}"),
        &format!("oci:{}:pulled", dest.path().display()),
    ]));
    let index = std::fs::read(dest.path().join("index.json")).unwrap();
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_serves_skopeo_through_the_server_then_from_the_cache_once_the_upstream_is_gone() {
    use gorae_registry::config::{Config, LogLevel, ProxyConfig};
    use gorae_registry::server::Server;

    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    add_image(&layout, "v1", 2 << 20, 7);
    push(&layout, "v1", &registry, "library/app:v1");
    let root = tempfile::tempdir().unwrap();
    let config = Config {
        addr: "127.0.0.1:0".parse().unwrap(),
        root: root.path().to_path_buf(),
        log: LogLevel::Error,
        proxy: ProxyConfig {
            upstream: vec![upstream(&registry, None, Duration::ZERO)],
        },
        ..Config::default()
    };
    let server = Server::bind(config).await.unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let expected = digest_of(&layout, "v1");
    let pull = move || skopeo_pull(addr, "library/app:v1");
    let streamed = tokio::task::spawn_blocking(pull).await.unwrap();
    assert_eq!(streamed, expected);
    let layer = blobs_of(&layout, "v1").pop().unwrap();
    assert_eq!(
        requests(&registry, &format!("GET /v2/library/app/blobs/{layer}")),
        1
    );

    drop(registry);
    let cached = tokio::task::spawn_blocking(pull).await.unwrap();
    assert_eq!(cached, expected);

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_refuses_a_manifest_that_does_not_match_its_digest() {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    add_image(&layout, "v1", 1000, 8);
    push(&layout, "v1", &registry, "app:v1");
    let digest = digest_of(&layout, "v1");
    let data = registry.blob_data(&digest.to_string());
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.push(b'\n');
    std::fs::write(&data, bytes).unwrap();

    let cache = Cache::new(&[upstream(&registry, None, Duration::ZERO)]);
    for reference in ["v1".to_string(), digest.to_string()] {
        let e = cache.proxy.manifest("app", &reference, None).await;
        assert_bad_gateway(e.unwrap_err(), &digest.to_string());
        let stored = cache.storage.get_manifest("app", &reference).unwrap();
        assert!(stored.is_none(), "nothing is cached for {reference}");
    }
}
