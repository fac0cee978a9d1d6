//! The registry client against a real registry (Debian's docker-registry, CNCF distribution
//! 2.8) with images made by umoci and skopeo, and checked by them.
//!
//! Needs root (layers keep their owners; the merged view is an overlay mount) and
//! docker-registry, umoci, skopeo, htpasswd and openssl on PATH.

#[path = "support/registry.rs"]
mod support;

use std::path::PathBuf;
use std::process::Command;

use gorae_image::registry::{self, Credentials, ProgressMode, PullOptions, RegistryOptions};
use gorae_image::{Digest, Error, ImageConfig, Reference, Store};
use support::{describe_tree, run, sample_tree, OciLayout, TestRegistry};

fn options() -> RegistryOptions {
    RegistryOptions {
        insecure: vec![],
        progress: ProgressMode::Quiet,
        chunk_size: None,
    }
}

fn pull_options(platform: &str) -> PullOptions {
    PullOptions {
        registry: options(),
        platform: platform.parse().unwrap(),
    }
}

fn reference(s: &str) -> Reference {
    s.parse().unwrap()
}

/// An amd64 image `tag` of two layers: a sample tree under /base and another under /srv.
fn two_layer_image(layout: &OciLayout, tag: &str, seed: &str) {
    let src = tempfile::tempdir().unwrap();
    sample_tree(&src.path().join("base"), seed);
    sample_tree(&src.path().join("app"), &format!("{seed}-app"));
    layout.new_image(tag, "amd64");
    layout.insert(tag, &src.path().join("base"), "/base");
    layout.insert(tag, &src.path().join("app"), "/srv");
}

/// A registry holding `two_layer_image` as `repo:v1`.
fn registry_with_image(repo: &str) -> (TestRegistry, OciLayout) {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    two_layer_image(&layout, "v1", "one");
    layout.push("v1", &registry, &format!("{repo}:v1"));
    (registry, layout)
}

async fn pull(store: &Store, name: &str) -> gorae_image::Result<gorae_image::ImageRecord> {
    registry::pull(store, &reference(name), &pull_options("linux/amd64")).await
}

fn config_of(store: &Store, record: &gorae_image::ImageRecord) -> ImageConfig {
    ImageConfig::parse(&store.content.read_document(&record.id).unwrap()).unwrap()
}

/// The image's layers merged by a read-only overlay mount, unmounted on drop.
struct Merged {
    dir: tempfile::TempDir,
}

impl Merged {
    fn new(store: &Store, record: &gorae_image::ImageRecord) -> Merged {
        let dir = tempfile::tempdir().unwrap();
        let lower: Vec<String> = config_of(store, record)
            .rootfs
            .diff_ids
            .iter()
            .rev()
            .map(|d| store.layers.dir(d).display().to_string())
            .collect();
        let lower = if lower.len() == 1 {
            // overlayfs wants two lowerdirs when there is no upper; an empty one is neutral.
            vec![
                lower[0].clone(),
                dir.path().join("empty").display().to_string(),
            ]
        } else {
            lower
        };
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::create_dir(dir.path().join("mnt")).unwrap();
        run(Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!("ro,lowerdir={}", lower.join(":")))
            .arg(dir.path().join("mnt")));
        Merged { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for Merged {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.path()).status();
    }
}

fn assert_same_rootfs(
    store: &Store,
    record: &gorae_image::ImageRecord,
    layout: &OciLayout,
    tag: &str,
) {
    let bundle = tempfile::tempdir().unwrap();
    let expected = describe_tree(&layout.unpack(tag, &bundle.path().join("b")));
    let merged = Merged::new(store, record);
    let actual = describe_tree(&merged.path());
    assert!(expected.len() >= 8, "{expected:?}");
    assert_eq!(actual, expected);
}

fn skopeo_digest(registry: &TestRegistry, name: &str) -> String {
    run(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--format",
        "{{.Digest}}",
        &format!("docker://{}/{name}", registry.host()),
    ]))
    .trim()
    .to_string()
}

fn blob_gets(registry: &TestRegistry) -> usize {
    registry
        .requests()
        .iter()
        .filter(|r| r.starts_with("GET ") && r.contains("/blobs/"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_a_skopeo_pushed_image_identical_to_umoci_unpack() {
    let (registry, layout) = registry_with_image("test/app");
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let name = format!("{}/test/app:v1", registry.host());
    let record = pull(&store, &name).await.unwrap();
    assert_eq!(record.name, name);
    assert!(record.index.is_none());
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.blob(layout.descriptor("v1")["digest"].as_str().unwrap()))
            .unwrap();
    assert_eq!(
        record.id.to_string(),
        manifest["config"]["digest"].as_str().unwrap()
    );
    assert_eq!(store.images.resolve(&name).unwrap().id, record.id);
    for layer in manifest["layers"].as_array().unwrap() {
        let digest: Digest = layer["digest"].as_str().unwrap().parse().unwrap();
        assert!(store.content.has(&digest), "{digest}");
    }
    assert_same_rootfs(&store, &record, &layout, "v1");

    // A second pull finds everything stored and downloads no blob.
    let gets = blob_gets(&registry);
    let again = pull(&store, &name).await.unwrap();
    assert_eq!(again.manifest.digest, record.manifest.digest);
    assert_eq!(blob_gets(&registry), gets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_by_digest() {
    let (registry, layout) = registry_with_image("bydigest");
    let digest = skopeo_digest(&registry, "bydigest:v1");
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let name = format!("{}/bydigest@{digest}", registry.host());
    let record = pull(&store, &name).await.unwrap();
    assert_eq!(record.name, name);
    assert_eq!(record.manifest.digest.to_string(), digest);
    assert_same_rootfs(&store, &record, &layout, "v1");

    // A digest the registry does not have is a clear error naming it.
    let missing = format!(
        "{}/bydigest@{}",
        registry.host(),
        Digest::sha256_of(b"nope")
    );
    let err = pull(&store, &missing).await.unwrap_err().to_string();
    assert!(
        err.contains("bydigest") && err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selects_the_platform_from_an_index() {
    let registry = TestRegistry::start();
    let layout = OciLayout::new();
    let src = tempfile::tempdir().unwrap();
    for arch in ["amd64", "arm64"] {
        sample_tree(&src.path().join(arch), arch);
        layout.new_image(arch, arch);
        layout.insert(arch, &src.path().join(arch), "/rootfs");
    }
    layout.add_index("multi", &[("amd64", "amd64"), ("arm64", "arm64")]);
    layout.push("multi", &registry, "multi:latest");
    let name = format!("{}/multi", registry.host());

    for arch in ["amd64", "arm64"] {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let options = pull_options(&format!("linux/{arch}"));
        let record = registry::pull(&store, &reference(&name), &options)
            .await
            .unwrap();
        assert_eq!(record.name, format!("{name}:latest"));
        let wanted = layout.descriptor(arch)["digest"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(record.manifest.digest.to_string(), wanted, "{arch}");
        let index = record.index.as_ref().expect("index recorded");
        assert!(store.content.has(&index.digest));
        assert_eq!(config_of(&store, &record).architecture, arch);
        assert_same_rootfs(&store, &record, &layout, arch);
    }

    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let err = registry::pull(&store, &reference(&name), &pull_options("linux/s390x"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
    assert!(store.images.list().unwrap().is_empty());
}

/// Pulls `name` into a new store, pushes it to `destination` with `options`.
async fn pull_then_push(
    store: &Store,
    source: &str,
    destination: &str,
    options: &RegistryOptions,
) -> Digest {
    pull(store, source).await.unwrap();
    registry::push(store, source, &reference(destination), options)
        .await
        .unwrap()
}

/// skopeo copies `name` out (verifying every digest) and the copy unpacks like `layout:tag`.
fn skopeo_verifies(registry: &TestRegistry, name: &str, layout: &OciLayout, tag: &str) {
    let out = tempfile::tempdir().unwrap();
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{}/{name}", registry.host()),
        &format!("oci:{}:x", out.path().join("oci").display()),
    ]));
    let bundle = tempfile::tempdir().unwrap();
    let copied = OciLayout { dir: out };
    let expected = describe_tree(&layout.unpack(tag, &bundle.path().join("a")));
    assert_eq!(
        describe_tree(&copied.unpack("x", &bundle.path().join("b"))),
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_monolithic_then_mounts_across_repositories() {
    let (source, layout) = registry_with_image("src");
    let target = TestRegistry::start();
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let from = format!("{}/src:v1", source.host());

    let first = format!("{}/first:v1", target.host());
    let digest = pull_then_push(&store, &from, &first, &options()).await;
    assert_eq!(skopeo_digest(&target, "first:v1"), digest.to_string());
    skopeo_verifies(&target, "first:v1", &layout, "v1");
    let puts = |r: &TestRegistry| {
        r.requests()
            .iter()
            .filter(|l| l.starts_with("PUT ") && l.contains("/blobs/uploads/"))
            .count()
    };
    assert_eq!(puts(&target), 3, "{:#?}", target.requests());

    // Pushing again uploads nothing: HEAD finds every blob.
    registry::push(&store, &from, &reference(&first), &options())
        .await
        .unwrap();
    assert_eq!(puts(&target), 3);

    // The store knows `first` on that registry (a tag of the image), so a push to another
    // repository there mounts the blobs instead of uploading them.
    let tagged = reference(&first);
    store.images.tag(&from, &tagged).unwrap();
    let second = format!("{}/second:v1", target.host());
    registry::push(&store, &from, &reference(&second), &options())
        .await
        .unwrap();
    let log = target.requests();
    let mounts = log
        .iter()
        .filter(|l| {
            l.starts_with("POST /v2/second/blobs/uploads/?")
                && l.contains("mount=")
                && l.ends_with(" 201")
        })
        .count();
    assert_eq!(mounts, 3, "{log:#?}");
    assert_eq!(puts(&target), 3, "{log:#?}");
    skopeo_verifies(&target, "second:v1", &layout, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_large_blobs_in_chunks() {
    let (source, layout) = registry_with_image("src");
    let target = TestRegistry::start();
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let chunked = RegistryOptions {
        chunk_size: Some(100 * 1024),
        ..options()
    };
    let from = format!("{}/src:v1", source.host());
    let to = format!("{}/chunked:v1", target.host());
    pull_then_push(&store, &from, &to, &chunked).await;
    let patches = target
        .requests()
        .iter()
        .filter(|l| l.starts_with("PATCH /v2/chunked/blobs/uploads/") && l.ends_with(" 202"))
        .count();
    // Each layer's big.txt compresses to more than one 100 KiB chunk.
    assert!(patches >= 4, "{:#?}", target.requests());
    skopeo_verifies(&target, "chunked:v1", &layout, "v1");
}

fn push_with_skopeo_creds(registry: &TestRegistry, layout: &OciLayout, repo: &str) {
    run(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "alice:s3cret",
        &format!("oci:{}:v1", layout.path().display()),
        &format!("docker://{}/{repo}:v1", registry.host()),
    ]));
}

/// Pull without credentials fails clearly, login with bad ones is refused and saves
/// nothing, login with good ones makes pull and push work, logout forgets them.
async fn check_login_flow(registry: &TestRegistry, layout: &OciLayout) {
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let name = format!("{}/private:v1", registry.host());
    let err = pull(&store, &name).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains(&registry.host()), "{err}");

    let bad = Credentials {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let err = registry::login(&store.root, &registry.host(), &bad, &options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err}");
    assert!(!store.root.auth_file().exists());

    let good = Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    registry::login(&store.root, &registry.host(), &good, &options())
        .await
        .unwrap();
    let record = pull(&store, &name).await.unwrap();
    assert_same_rootfs(&store, &record, layout, "v1");
    let copy = format!("{}/private-copy:v1", registry.host());
    registry::push(&store, &name, &reference(&copy), &options())
        .await
        .unwrap();

    assert!(registry::logout(&store.root, &registry.host()).unwrap());
    let fresh = tempfile::tempdir().unwrap();
    let other = Store::open(fresh.path()).unwrap();
    std::fs::copy(store.root.auth_file(), other.root.auth_file()).unwrap();
    assert!(pull(&other, &copy).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_needs_login() {
    let registry = TestRegistry::with_basic_auth("alice", "s3cret");
    let layout = OciLayout::new();
    two_layer_image(&layout, "v1", "basic");
    push_with_skopeo_creds(&registry, &layout, "private");
    check_login_flow(&registry, &layout).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_auth_needs_login() {
    let registry = TestRegistry::with_token_auth("alice", "s3cret");
    let layout = OciLayout::new();
    two_layer_image(&layout, "v1", "bearer");
    push_with_skopeo_creds(&registry, &layout, "private");
    let before = registry
        .token_server
        .as_ref()
        .unwrap()
        .issued
        .load(std::sync::atomic::Ordering::Relaxed);
    check_login_flow(&registry, &layout).await;
    let after = registry
        .token_server
        .as_ref()
        .unwrap()
        .issued
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(after > before);
}

fn nothing_visible(store: &Store) {
    assert!(store.images.list().unwrap().is_empty());
    assert!(store.layers.list().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_corrupted_layer() {
    let (registry, layout) = registry_with_image("corrupt");
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.blob(layout.descriptor("v1")["digest"].as_str().unwrap()))
            .unwrap();
    let layer = manifest["layers"][1]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = registry.blob_data(&layer);
    let mut bytes = std::fs::read(&data).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&data, bytes).unwrap();

    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let err = pull(&store, &format!("{}/corrupt:v1", registry.host()))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&layer), "{err}");
    assert!(!store.content.has(&layer.parse().unwrap()));
    assert!(store.images.list().unwrap().is_empty());
    let diff_ids = {
        let config = manifest["config"]["digest"].as_str().unwrap();
        ImageConfig::parse(&layout.blob(config))
            .unwrap()
            .rootfs
            .diff_ids
    };
    assert!(!store.layers.has(&diff_ids[1]));
    // The bad download is thrown away (the good layer's may stay for a resume).
    let ingest = store.root.ingest(&layer.parse().unwrap());
    assert!(!ingest.exists(), "{}", ingest.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_a_manifest_that_does_not_match_its_digest() {
    let (registry, layout) = registry_with_image("badmanifest");
    let digest = layout.descriptor("v1")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let data = registry.blob_data(&digest);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes.push(b'\n');
    std::fs::write(&data, bytes).unwrap();

    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let err = pull(&store, &format!("{}/badmanifest:v1", registry.host()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains("badmanifest"), "{err}");
    nothing_visible(&store);
    let by_digest = format!("{}/badmanifest@{digest}", registry.host());
    assert!(pull(&store, &by_digest).await.is_err());
    nothing_visible(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_a_partial_download() {
    use std::io::Write;
    let (registry, layout) = registry_with_image("resume");
    let manifest: serde_json::Value =
        serde_json::from_slice(&layout.blob(layout.descriptor("v1")["digest"].as_str().unwrap()))
            .unwrap();
    let layer = &manifest["layers"][0];
    let digest: Digest = layer["digest"].as_str().unwrap().parse().unwrap();
    let bytes = std::fs::read(registry.blob_data(&digest.to_string())).unwrap();
    let half = bytes.len() / 2;

    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    {
        let mut writer = store
            .content
            .writer(&digest, Some(bytes.len() as u64))
            .unwrap();
        writer.write_all(&bytes[..half]).unwrap();
        // Dropped without commit: an interrupted download.
    }
    let record = pull(&store, &format!("{}/resume:v1", registry.host()))
        .await
        .unwrap();
    assert!(store.content.has(&digest));
    assert_same_rootfs(&store, &record, &layout, "v1");
    let ranged = registry
        .requests()
        .iter()
        .filter(|l| l.contains(&format!("/blobs/{digest}")) && l.ends_with(" 206"))
        .count();
    assert_eq!(ranged, 1, "{:#?}", registry.requests());
    let written = format!("http.response.written={}", bytes.len() - half);
    assert!(registry.log().contains(&written), "{}", registry.log());
}
