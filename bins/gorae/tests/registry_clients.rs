//! Real clients against `gorae registry serve` (one registry per test, from
//! support/registry_server.rs): skopeo copying in and out (an image, a multi-arch index, with
//! Basic auth, an access file's anonymous pull, Bearer tokens, over TLS), podman, gorae's own
//! push/pull/login, the docker CLI through a dockerd the test starts, the counters at /metrics,
//! and the pull-through cache in front of a second registry.
//!
//! Needs root, skopeo, umoci, podman, dockerd (Debian docker.io, with its managed containerd),
//! a docker CLI (/usr/local/bin/docker, else the one in PATH), htpasswd (apache2-utils) and
//! openssl. Every client gets private state (an auth file of its own, podman's --root and
//! --runroot, dockerd's --data-root and --exec-root), and whatever a test starts is stopped in
//! Drop. Every command is bounded by a timeout, so a hung client fails the test instead of CI.

#[path = "../../../crates/image/tests/support/registry.rs"]
mod registry;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use registry::OciLayout;
use serde_json::Value;
use support::registry_server::{digest_of, GoraeRegistry, HttpResponse};
use support::Gorae;

const LIMIT: Duration = Duration::from_secs(180);
const USER: &str = "alice";
const PASSWORD: &str = "s3cret";
/// `Basic base64("alice:s3cret")`
const ALICE: &str = "Basic YWxpY2U6czNjcmV0";
const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";

// ---- running tools ----

/// Runs `cmd` to its end with stdin from /dev/null; kills it (and fails) after LIMIT.
fn run_for(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match finished.recv_timeout(LIMIT) {
        Ok(output) => output.unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
        Err(_) => {
            signal("KILL", &pid.to_string());
            panic!("{cmd:?} did not finish within {LIMIT:?}");
        }
    }
}

/// Stdout of `cmd`, which must succeed.
fn succeeds(cmd: &mut Command) -> String {
    let out = run_for(cmd);
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of `cmd`, which must fail.
fn fails(cmd: &mut Command) -> String {
    let out = run_for(cmd);
    assert!(
        !out.status.success(),
        "{cmd:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `kill -SIG target` (a pid, or `-PGID` for a process group).
fn signal(sig: &str, target: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), "--", target])
        .stderr(Stdio::null())
        .status();
}

/// skopeo with no credentials but those given on its command line.
fn skopeo(args: &[&str]) -> Command {
    let mut c = Command::new("skopeo");
    c.args(args);
    c.env("REGISTRY_AUTH_FILE", "/nonexistent/gorae-test-auth.json");
    c
}

/// `skopeo copy --preserve-digests [flags] FROM TO`: a copy that must not rewrite anything.
fn copy(flags: &[&str], from: &str, to: &str) -> Command {
    let mut args = vec!["copy", "--quiet", "--preserve-digests"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[from, to]);
    skopeo(&args)
}

fn oci_ref(layout: &OciLayout, tag: &str) -> String {
    format!("oci:{}:{tag}", layout.path().display())
}

// ---- images and what the registry holds ----

/// An OCI layout (umoci) with `tag` for `architecture`: one layer of registry::sample_tree
/// (~5 MB of text, well under 1 MB compressed).
fn layout_with(layout: &OciLayout, tag: &str, architecture: &str) {
    let tree = tempfile::tempdir().expect("tree dir");
    registry::sample_tree(tree.path(), tag);
    layout.new_image(tag, architecture);
    layout.insert(tag, tree.path(), "/");
}

fn sample_layout() -> OciLayout {
    let layout = OciLayout::new();
    layout_with(&layout, "v1", "amd64");
    layout
}

/// The digest of the manifest (or index) `tag` in `layout`.
fn manifest_digest(layout: &OciLayout, tag: &str) -> String {
    let descriptor = layout.descriptor(tag);
    descriptor["digest"].as_str().expect("digest").to_string()
}

/// The digests of everything a manifest or index `digest` in `layout` references, itself
/// first, recursively.
fn closure(layout: &OciLayout, digest: &str) -> Vec<String> {
    let doc: Value = serde_json::from_slice(&layout.blob(digest)).expect("manifest JSON");
    let mut out = vec![digest.to_string()];
    if let Some(members) = doc["manifests"].as_array() {
        for m in members {
            out.extend(closure(
                layout,
                m["digest"].as_str().expect("member digest"),
            ));
        }
    } else {
        out.push(doc["config"]["digest"].as_str().expect("config").into());
        for layer in doc["layers"].as_array().expect("layers") {
            out.push(layer["digest"].as_str().expect("layer digest").into());
        }
    }
    out
}

/// `layout`'s `tag` was copied out to `copied`'s `tag` unchanged: same manifest digest, every
/// referenced blob byte for byte.
fn assert_same_image(layout: &OciLayout, copied: &OciLayout, tag: &str) {
    let digest = manifest_digest(layout, tag);
    assert_eq!(copied.descriptor(tag)["digest"], digest.as_str());
    for d in closure(layout, &digest) {
        assert!(
            layout.blob(&d) == copied.blob(&d),
            "{d} differs after the copy"
        );
    }
}

/// GET of a manifest with an optional Authorization header; must be 200.
fn served_manifest(reg: &GoraeRegistry, repo: &str, reference: &str, auth: &str) -> HttpResponse {
    let mut headers = vec![("Accept", MANIFEST_TYPES)];
    if !auth.is_empty() {
        headers.push(("Authorization", auth));
    }
    let r = reg.request(
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &headers,
        b"",
    );
    assert_eq!(r.status, 200, "GET {repo}:{reference}: {}", r.text());
    assert_eq!(
        r.header("Docker-Content-Digest"),
        Some(digest_of(&r.body).as_str())
    );
    r
}

fn tags(reg: &GoraeRegistry, repo: &str, auth: &str) -> Vec<String> {
    let r = reg.request(
        "GET",
        &format!("/v2/{repo}/tags/list"),
        &[("Authorization", auth)],
        b"",
    );
    assert_eq!(r.status, 200, "tags of {repo}: {}", r.text());
    let mut tags: Vec<String> = r.json()["tags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags
}

// ---- auth and TLS files ----

/// A temp dir holding `htpasswd` (alice's bcrypt entry) and, when given, `access.toml`, and
/// the `[auth]` config section naming them.
fn auth_files(access: Option<&str>, token: bool) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("auth dir");
    let line = succeeds(Command::new("htpasswd").args(["-Bbn", USER, PASSWORD]));
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, line.trim()).expect("write htpasswd");
    let mut section = format!("[auth]\nhtpasswd = {:?}\ntoken = {token}\n", htpasswd);
    if let Some(rules) = access {
        let file = dir.path().join("access.toml");
        std::fs::write(&file, rules).expect("write access file");
        section.push_str(&format!("access = {file:?}\n"));
    }
    (dir, section)
}

/// Whether a client's error says it was not let in (rather than something else failing).
fn is_auth_error(stderr: &str) -> bool {
    let s = stderr.to_lowercase();
    ["unauthorized", "authentication", "401", "denied"]
        .iter()
        .any(|w| s.contains(w))
}

#[test]
fn skopeo_copy_in_and_out_keeps_every_blob_and_the_manifest_digest() {
    let reg = GoraeRegistry::start("");
    let layout = sample_layout();
    let remote = format!("docker://{}/clients/app:v1", reg.host());
    succeeds(&mut copy(
        &["--dest-tls-verify=false"],
        &oci_ref(&layout, "v1"),
        &remote,
    ));

    let digest = manifest_digest(&layout, "v1");
    let served = served_manifest(&reg, "clients/app", "v1", "");
    assert_eq!(
        served.body,
        layout.blob(&digest),
        "the manifest is stored as pushed"
    );
    assert_eq!(
        served.header("Content-Type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );

    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false"],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    assert_same_image(&layout, &out, "v1");

    let dir = tempfile::tempdir().unwrap();
    let by_digest = format!("docker://{}/clients/app@{digest}", reg.host());
    let dir_ref = format!("dir:{}", dir.path().display());
    succeeds(&mut copy(&["--src-tls-verify=false"], &by_digest, &dir_ref));
    assert!(std::fs::read(dir.path().join("manifest.json")).unwrap() == layout.blob(&digest));
    for d in closure(&layout, &digest).iter().skip(1) {
        let hex = d.strip_prefix("sha256:").unwrap();
        assert!(
            std::fs::read(dir.path().join(hex)).unwrap() == layout.blob(d),
            "{d}"
        );
    }
}

#[test]
fn skopeo_copy_all_keeps_a_multi_arch_index() {
    let reg = GoraeRegistry::start("");
    let layout = OciLayout::new();
    layout_with(&layout, "amd", "amd64");
    layout_with(&layout, "arm", "arm64");
    layout.add_index("multi", &[("amd", "amd64"), ("arm", "arm64")]);
    let remote = format!("docker://{}/clients/multi:1", reg.host());
    succeeds(&mut copy(
        &["--all", "--dest-tls-verify=false"],
        &oci_ref(&layout, "multi"),
        &remote,
    ));

    let index = manifest_digest(&layout, "multi");
    let served = served_manifest(&reg, "clients/multi", "1", "");
    assert_eq!(served.body, layout.blob(&index));
    assert_eq!(
        served.header("Content-Type"),
        Some("application/vnd.oci.image.index.v1+json")
    );
    for member in ["amd", "arm"] {
        let d = manifest_digest(&layout, member);
        assert_eq!(
            served_manifest(&reg, "clients/multi", &d, "").body,
            layout.blob(&d)
        );
    }

    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--all", "--src-tls-verify=false"],
        &remote,
        &oci_ref(&out, "multi"),
    ));
    assert_same_image(&layout, &out, "multi");
}

#[test]
fn basic_auth_lets_skopeo_in_with_credentials_only() {
    let (_files, auth) = auth_files(None, false);
    let reg = GoraeRegistry::start(&auth);
    let layout = sample_layout();
    let source = oci_ref(&layout, "v1");
    let remote = format!("docker://{}/private/app:v1", reg.host());

    let err = fails(&mut copy(&["--dest-tls-verify=false"], &source, &remote));
    assert!(is_auth_error(&err), "{err}");
    let wrong = format!("{USER}:wrong");
    let err = fails(&mut copy(
        &["--dest-tls-verify=false", "--dest-creds", &wrong],
        &source,
        &remote,
    ));
    assert!(is_auth_error(&err), "{err}");
    assert_eq!(
        tags_or_none(&reg, "private/app"),
        None,
        "nothing was pushed"
    );

    let creds = format!("{USER}:{PASSWORD}");
    succeeds(&mut copy(
        &["--dest-tls-verify=false", "--dest-creds", &creds],
        &source,
        &remote,
    ));
    let out = OciLayout::new();
    let err = fails(&mut copy(
        &["--src-tls-verify=false"],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    assert!(is_auth_error(&err), "{err}");
    succeeds(&mut copy(
        &["--src-tls-verify=false", "--src-creds", &creds],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    assert_same_image(&layout, &out, "v1");
}

/// The repository's tags as alice sees them, or None when it does not exist.
fn tags_or_none(reg: &GoraeRegistry, repo: &str) -> Option<Vec<String>> {
    let r = reg.request(
        "GET",
        &format!("/v2/{repo}/tags/list"),
        &[("Authorization", ALICE)],
        b"",
    );
    match r.status {
        404 => None,
        _ => Some(tags(reg, repo, ALICE)),
    }
}

const PUBLIC_APP_RULES: &str = r#"
    [[rule]]
    repositories = ["**"]
    users = ["alice"]
    actions = ["pull", "push", "delete"]

    [[rule]]
    repositories = ["public/app"]
    anonymous = true
    actions = ["pull"]
"#;

/// A registry with PUBLIC_APP_RULES where alice pushed the sample image as public/app:v1 and
/// private/app:v1.
fn public_and_private(layout: &OciLayout) -> (tempfile::TempDir, GoraeRegistry) {
    let (files, auth) = auth_files(Some(PUBLIC_APP_RULES), false);
    let reg = GoraeRegistry::start(&auth);
    let creds = format!("{USER}:{PASSWORD}");
    for repo in ["public/app", "private/app"] {
        let remote = format!("docker://{}/{repo}:v1", reg.host());
        succeeds(&mut copy(
            &["--dest-tls-verify=false", "--dest-creds", &creds],
            &oci_ref(layout, "v1"),
            &remote,
        ));
    }
    (files, reg)
}

#[test]
fn access_file_refuses_anonymous_push_and_pulls_outside_its_public_repository() {
    let layout = sample_layout();
    let (_files, reg) = public_and_private(&layout);
    let out = OciLayout::new();
    let private = format!("docker://{}/private/app:v1", reg.host());
    let err = fails(&mut copy(
        &["--src-tls-verify=false"],
        &private,
        &oci_ref(&out, "p"),
    ));
    assert!(is_auth_error(&err), "{err}");

    let anonymous_push = format!("docker://{}/public/app:v2", reg.host());
    let source = oci_ref(&layout, "v1");
    let err = fails(&mut copy(
        &["--dest-tls-verify=false"],
        &source,
        &anonymous_push,
    ));
    assert!(is_auth_error(&err), "{err}");
    assert_eq!(tags(&reg, "public/app", ALICE), ["v1"]);

    // The same without the empty Basic credentials skopeo sends (see the ignored test below):
    // anonymous may pull public/app, not push to it, and not even pull private/app.
    let post = reg.request("POST", "/v2/public/app/blobs/uploads/", &[], b"");
    assert_eq!(
        (post.status, post.error_code().as_str()),
        (401, "UNAUTHORIZED")
    );
    let get = |repo: &str| {
        let path = format!("/v2/{repo}/manifests/v1");
        reg.request("GET", &path, &[("Accept", MANIFEST_TYPES)], b"")
            .status
    };
    assert_eq!((get("public/app"), get("private/app")), (200, 401));

    // gorae's client sends no Authorization without a login: anonymous pull works there.
    let g = Gorae::new();
    g.ok(&["pull", "-q", &format!("{}/public/app:v1", reg.host())]);
    assert_eq!(
        g.ok(&["images", "-q", "--no-trunc"]).trim(),
        image_id(&layout, "v1")
    );
    let err = g.fails(&["pull", "-q", &format!("{}/private/app:v1", reg.host())]);
    assert!(is_auth_error(&err), "{err}");
}

/// BUG (crates/registry/src/auth/mod.rs, `Credentials::parse`): skopeo and podman (containers/
/// image) answer a Basic challenge without credentials with `Authorization: Basic Og==` (an
/// empty user and password); the registry calls that "invalid username or password" (401)
/// instead of treating it as anonymous, so anonymous pull never works for them.
#[test]
#[ignore = "bug: an empty Basic credential (Og==) is refused instead of being anonymous"]
fn skopeo_pulls_anonymously_where_the_access_file_allows() {
    let layout = sample_layout();
    let (_files, reg) = public_and_private(&layout);
    let out = OciLayout::new();
    let public = format!("docker://{}/public/app:v1", reg.host());
    succeeds(&mut copy(
        &["--src-tls-verify=false"],
        &public,
        &oci_ref(&out, "v1"),
    ));
    assert_same_image(&layout, &out, "v1");
}

// ---- Bearer tokens (and reading /metrics) ----

/// The value of `series` (a name with exactly its labels, as exposed), 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("metric value"))
        .unwrap_or(0.0)
}

fn metrics(reg: &GoraeRegistry) -> String {
    let r = reg.request("GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    r.text()
}

fn token_requests(method: &str) -> String {
    format!("gorae_registry_requests_total{{route=\"token\",method=\"{method}\",code=\"200\"}}")
}

#[test]
fn token_auth_takes_skopeo_and_gorae_through_the_bearer_flow() {
    let (_files, auth) = auth_files(None, true);
    let reg = GoraeRegistry::start(&format!("log = \"debug\"\n{auth}"));
    let challenge = reg.request("GET", "/v2/", &[], b"");
    assert_eq!(challenge.status, 401);
    let www = challenge
        .header("WWW-Authenticate")
        .unwrap_or("")
        .to_string();
    let realm = format!("Bearer realm=\"http://{}/token\"", reg.host());
    assert!(www.starts_with(&realm), "{www}");

    let layout = sample_layout();
    let source = oci_ref(&layout, "v1");
    let remote = format!("docker://{}/tok/app:v1", reg.host());
    let err = fails(&mut copy(&["--dest-tls-verify=false"], &source, &remote));
    assert!(is_auth_error(&err), "{err}");
    let creds = format!("{USER}:{PASSWORD}");
    succeeds(&mut copy(
        &["--dest-tls-verify=false", "--dest-creds", &creds],
        &source,
        &remote,
    ));
    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false", "--src-creds", &creds],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    assert_same_image(&layout, &out, "v1");
    // In token mode the API takes nothing but Bearer tokens: those copies went through /token.
    let tokens_by_skopeo = metric(&metrics(&reg), &token_requests("GET"));
    assert!(
        tokens_by_skopeo >= 2.0,
        "push and pull each fetched a token"
    );
    assert!(reg.log().contains("GET token 200"), "{}", reg.log());

    let image = format!("{}/tok/gorae:1", reg.host());
    let g = Gorae::new();
    let id = g.import_busybox(&image, &[]);
    let err = g.fails(&["push", "-q", &image]);
    assert!(is_auth_error(&err), "{err}");
    assert!(g
        .ok(&["login", "-u", USER, "-p", PASSWORD, reg.host()])
        .contains("Login Succeeded"));
    g.ok(&["push", "-q", &image]);
    g.ok(&["rmi", &image]);
    g.ok(&["pull", "-q", &image]);
    assert_eq!(g.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    let text = metrics(&reg);
    let tokens_in_all =
        metric(&text, &token_requests("GET")) + metric(&text, &token_requests("POST"));
    assert!(tokens_in_all > tokens_by_skopeo, "gorae fetched tokens too");
}

/// A token from GET /token for `scope`, with `authorization` (may be empty).
fn fetch_token(reg: &GoraeRegistry, scope: &str, authorization: &str) -> String {
    let path = format!("/token?service=gorae-registry&scope={scope}");
    let headers: Vec<(&str, &str)> = match authorization {
        "" => vec![],
        a => vec![("Authorization", a)],
    };
    let r = reg.request("GET", &path, &headers, b"");
    assert_eq!(r.status, 200, "token for {scope}: {}", r.text());
    r.json()["token"].as_str().expect("token").to_string()
}

/// The status, challenge error and spec error code of `method path` with `token`.
fn with_token(reg: &GoraeRegistry, method: &str, path: &str, token: &str) -> (u16, String, String) {
    let bearer = format!("Bearer {token}");
    let r = reg.request(
        method,
        path,
        &[("Authorization", &bearer), ("Accept", MANIFEST_TYPES)],
        b"",
    );
    let www = r.header("WWW-Authenticate").unwrap_or("").to_string();
    let code = if r.status == 401 {
        r.error_code()
    } else {
        String::new()
    };
    (r.status, www, code)
}

/// A token-auth registry where alice pushed `tok/app:v1` (an image without layers); the
/// layout it came from.
fn token_registry_with_image() -> (tempfile::TempDir, GoraeRegistry, OciLayout) {
    let (files, auth) = auth_files(None, true);
    let reg = GoraeRegistry::start(&auth);
    let layout = OciLayout::new();
    layout.new_image("v1", "amd64");
    let creds = format!("{USER}:{PASSWORD}");
    succeeds(&mut copy(
        &["--dest-tls-verify=false", "--dest-creds", &creds],
        &oci_ref(&layout, "v1"),
        &format!("docker://{}/tok/app:v1", reg.host()),
    ));
    (files, reg, layout)
}

#[test]
fn bad_bearer_tokens_get_401_and_good_ones_only_their_scope() {
    let (_files, reg, _layout) = token_registry_with_image();
    let bearer_alice = |scope: &str| fetch_token(&reg, scope, ALICE);
    let push = bearer_alice("repository:tok/app:pull,push");
    let (status, ..) = with_token(&reg, "POST", "/v2/tok/app/blobs/uploads/", &push);
    assert_eq!(status, 202);
    let manifest = "/v2/tok/app/manifests/v1";

    let pull = bearer_alice("repository:tok/app:pull");
    assert_eq!(with_token(&reg, "GET", manifest, &pull).0, 200);

    for garbage in ["", "not-a-jwt", "a.b.c", &format!("{pull}x")] {
        let (status, www, code) = with_token(&reg, "GET", manifest, garbage);
        assert_eq!(status, 401, "token {garbage:?}");
        assert_eq!(code, "UNAUTHORIZED", "token {garbage:?}");
        assert!(www.starts_with("Bearer realm="), "{www}");
    }
    // The same claims signed with something else: the signature is the last part.
    let (claims, _) = pull.rsplit_once('.').unwrap();
    let forged = format!("{claims}.{}", "A".repeat(43));
    let (status, www, _) = with_token(&reg, "GET", manifest, &forged);
    assert_eq!(status, 401);
    assert!(www.contains("invalid_token"), "{www}");

    let (status, www, _) = with_token(&reg, "POST", "/v2/tok/app/blobs/uploads/", &pull);
    assert_eq!(status, 401, "a pull token cannot push");
    assert!(
        www.contains("insufficient_scope") && www.contains("tok/app"),
        "{www}"
    );
    let other = bearer_alice("repository:other/app:pull");
    assert_eq!(with_token(&reg, "GET", manifest, &other).0, 401);
    let anonymous = fetch_token(&reg, "repository:tok/app:pull", "");
    assert_eq!(with_token(&reg, "GET", manifest, &anonymous).0, 401);
    let wrong = reg.request(
        "GET",
        "/token?service=gorae-registry&scope=repository:tok/app:pull",
        &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
        b"",
    );
    assert_eq!(wrong.status, 401, "{}", wrong.text());
}

#[test]
fn skopeo_with_a_given_bearer_token_pulls_only_when_the_token_is_genuine() {
    let (_files, reg, layout) = token_registry_with_image();
    let remote = format!("docker://{}/tok/app:v1", reg.host());
    let pull = fetch_token(&reg, "repository:tok/app:pull", ALICE);
    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false", "--src-registry-token", &pull],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    assert_same_image(&layout, &out, "v1");
    let (claims, _) = pull.rsplit_once('.').unwrap();
    let forged = format!("{claims}.{}", "A".repeat(43));
    for bad in [forged.as_str(), "not-a-jwt"] {
        let err = fails(&mut copy(
            &["--src-tls-verify=false", "--src-registry-token", bad],
            &remote,
            &oci_ref(&out, "bad"),
        ));
        assert!(is_auth_error(&err), "{err}");
    }
}

// ---- podman, gorae, docker ----

/// Mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<String> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .map(String::from)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points
}

/// Processes (other than this one) whose command line names `dir`.
fn processes_naming(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().into_owned();
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (pid != me && pid.parse::<u32>().is_ok() && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

/// Kills what still runs from `dir` and lazily unmounts what is mounted under it.
fn sweep(dir: &Path) {
    for pid in processes_naming(dir) {
        signal("KILL", &pid);
    }
    for point in mounts_under(dir) {
        let _ = Command::new("umount").args(["-l", &point]).status();
    }
}

/// podman with all its state in a temp dir: --root, --runroot (short: podman puts sockets
/// there), --tmpdir, vfs storage (no mounts to leave behind), no events, its own auth file.
struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    fn new() -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("gorae-pm-")
            .tempdir_in("/tmp")
            .expect("podman dir");
        std::fs::write(dir.path().join("auth.json"), r#"{"auths":{}}"#).expect("auth.json");
        Podman { dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let d = self.dir.path();
        let mut c = Command::new("podman");
        c.arg("--root").arg(d.join("root"));
        c.arg("--runroot").arg(d.join("run"));
        c.arg("--tmpdir").arg(d.join("tmp"));
        c.args(["--storage-driver", "vfs", "--events-backend", "none"]);
        c.args(["--cgroup-manager", "cgroupfs"]).args(args);
        c.env("REGISTRY_AUTH_FILE", d.join("auth.json"));
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        succeeds(&mut self.cmd(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        sweep(self.dir.path());
    }
}

/// The config digest (the image ID clients show) of `tag` in `layout`.
fn image_id(layout: &OciLayout, tag: &str) -> String {
    let manifest = manifest_digest(layout, tag);
    closure(layout, &manifest)[1].clone()
}

#[test]
fn podman_pulls_what_skopeo_pushed_then_pushes_and_pulls_its_own() {
    let reg = GoraeRegistry::start("");
    let layout = sample_layout();
    let by_skopeo = format!("{}/clients/skopeo:v1", reg.host());
    succeeds(&mut copy(
        &["--dest-tls-verify=false"],
        &oci_ref(&layout, "v1"),
        &format!("docker://{by_skopeo}"),
    ));
    let id = image_id(&layout, "v1");
    let manifest = manifest_digest(&layout, "v1");

    let p = Podman::new();
    let pulled = p.ok(&["pull", "-q", "--tls-verify=false", &by_skopeo]);
    assert_eq!(format!("sha256:{}", pulled.trim()), id);
    let inspect = p.ok(&["image", "inspect", "--format", "{{.Digest}}", &by_skopeo]);
    assert_eq!(inspect.trim(), manifest);

    let by_podman = format!("{}/clients/podman:v2", reg.host());
    p.ok(&["tag", &by_skopeo, &by_podman]);
    p.ok(&["push", "-q", "--tls-verify=false", &by_podman]);
    let served: Value = served_manifest(&reg, "clients/podman", "v2", "").json();
    assert_eq!(served["config"]["digest"], id.as_str());
    for layer in served["layers"].as_array().unwrap() {
        let path = format!(
            "/v2/clients/podman/blobs/{}",
            layer["digest"].as_str().unwrap()
        );
        let blob = reg.request("GET", &path, &[], b"");
        assert_eq!(blob.status, 200);
        assert_eq!(
            Some(digest_of(&blob.body).as_str()),
            layer["digest"].as_str()
        );
    }

    p.ok(&["rmi", "-a"]);
    assert_eq!(p.ok(&["images", "-q"]).trim(), "");
    let pulled = p.ok(&["pull", "-q", "--tls-verify=false", &by_podman]);
    assert_eq!(format!("sha256:{}", pulled.trim()), id);
    p.ok(&["rmi", "-a"]);
    assert_eq!(mounts_under(p.dir.path()), Vec::<String>::new());
}

/// The digest `gorae push -q` printed last.
fn pushed_digest(output: &str) -> String {
    let digest = output.trim().rsplit(' ').next().unwrap_or("").to_string();
    assert!(digest.starts_with("sha256:"), "{output}");
    digest
}

#[test]
fn gorae_push_and_pull_roundtrip_through_the_gorae_registry() {
    let reg = GoraeRegistry::start("");
    let image = format!("{}/clients/busybox:1", reg.host());
    let a = Gorae::new();
    let id = a.import_busybox(&image, &[("etc/motd", b"hello from gorae\n")]);
    let digest = pushed_digest(&a.ok(&["push", "-q", &image]));
    let served = served_manifest(&reg, "clients/busybox", "1", "");
    assert_eq!(
        served.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );

    let b = Gorae::new();
    b.ok(&["pull", "-q", &image]);
    assert_eq!(b.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    assert!(b.ok(&["image", "verify"]).contains("match"));
    let c = Gorae::new();
    let by_digest = format!("{}/clients/busybox@{digest}", reg.host());
    c.ok(&["pull", "-q", &by_digest]);
    assert_eq!(c.ok(&["images", "-q", "--no-trunc"]).trim(), id);

    // What gorae pushed unpacks with other tools to the files it was made of.
    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false"],
        &format!("docker://{image}"),
        &oci_ref(&out, "1"),
    ));
    let bundle = tempfile::tempdir().unwrap();
    let rootfs = out.unpack("1", &bundle.path().join("b"));
    assert_eq!(
        std::fs::read(rootfs.join("etc/motd")).unwrap(),
        b"hello from gorae\n"
    );
    assert!(
        std::fs::read(rootfs.join("bin/busybox")).unwrap()
            == std::fs::read("/bin/busybox").unwrap()
    );
}

#[test]
fn gorae_login_with_basic_auth_then_push_pull_and_logout() {
    let (_files, auth) = auth_files(None, false);
    let reg = GoraeRegistry::start(&auth);
    let image = format!("{}/private/busybox:1", reg.host());
    let g = Gorae::new();
    let id = g.import_busybox(&image, &[]);
    let err = g.fails(&["push", "-q", &image]);
    assert!(is_auth_error(&err), "{err}");
    let err = g.fails(&["login", "-u", USER, "-p", "wrong", reg.host()]);
    assert!(err.contains(reg.host()), "{err}");
    assert!(g
        .ok(&["login", "-u", USER, "-p", PASSWORD, reg.host()])
        .contains("Login Succeeded"));
    let digest = pushed_digest(&g.ok(&["push", "-q", &image]));
    let served = served_manifest(&reg, "private/busybox", "1", ALICE);
    assert_eq!(
        served.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );

    let h = Gorae::new();
    h.fails(&["pull", "-q", &image]);
    h.ok(&["login", "-u", USER, "-p", PASSWORD, reg.host()]);
    h.ok(&["pull", "-q", &image]);
    assert_eq!(h.ok(&["images", "-q", "--no-trunc"]).trim(), id);
    h.ok(&["logout", reg.host()]);
    h.ok(&["rmi", &image]);
    h.fails(&["pull", "-q", &image]);
}

/// A dockerd of the test's own, set up as bins/gorae-runc/tests/dropin_docker.rs does (own
/// socket, data root, exec root, pidfile and config, no bridge, no iptables, vfs storage) but
/// with the containerd dockerd starts itself, and trusting `registry` over plain http.
struct Dockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Dockerd {
    fn start(registry: &str) -> Dockerd {
        use std::os::unix::process::CommandExt;
        let dir = tempfile::Builder::new()
            .prefix("gorae-dk-")
            .tempdir_in("/tmp")
            .expect("dockerd dir");
        let d = dir.path().display().to_string();
        // Its trust key not in /etc/docker/key.json: nothing of the machine's is touched.
        let config = serde_json::json!({ "deprecated-key-path": format!("{d}/key.json") });
        std::fs::write(dir.path().join("daemon.json"), config.to_string()).expect("daemon.json");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log");
        let child = Command::new("/usr/sbin/dockerd")
            .args([
                format!("--config-file={d}/daemon.json"),
                format!("--data-root={d}/data"),
                format!("--exec-root={d}/exec"),
                format!("--pidfile={d}/dockerd.pid"),
                format!("--host=unix://{d}/docker.sock"),
                format!("--insecure-registry={registry}"),
                "--bridge=none".into(),
                "--iptables=false".into(),
                "--ip6tables=false".into(),
                "--ip-forward=false".into(),
                "--ip-masq=false".into(),
                "--storage-driver=vfs".into(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start /usr/sbin/dockerd");
        let mut dockerd = Dockerd {
            dir,
            child: Some(child),
        };
        dockerd.wait_ready();
        dockerd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("dockerd exited with {status}: {}", self.log());
            }
            let socket = self.dir.path().join("docker.sock");
            if socket.exists() && run_for(&mut self.docker(&["version"])).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The Docker 28 CLI (any that speaks API 1.41 would do) on this daemon, with a config
    /// dir of its own (no credential helpers of the machine).
    fn docker(&self, args: &[&str]) -> Command {
        let cli = Path::new("/usr/local/bin/docker");
        let mut c = Command::new(if cli.exists() {
            cli
        } else {
            Path::new("docker")
        });
        c.args(args);
        c.env(
            "DOCKER_HOST",
            format!("unix://{}/docker.sock", self.dir.path().display()),
        );
        c.env("DOCKER_CONFIG", self.dir.path().join("cli"));
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = run_for(&mut self.docker(args));
        assert!(
            out.status.success(),
            "docker {args:?}: {}\n{}\ndockerd log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// SIGTERM (dockerd stops its containerd), SIGKILL to the group after a grace period,
    /// then whatever still names our dir is killed and unmounted.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal("TERM", &child.id().to_string());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        signal("KILL", &format!("-{}", child.id()));
        let _ = child.wait();
        sweep(self.dir.path());
    }

    /// What a stopped daemon left: processes and mounts naming our dir, its socket.
    fn leftovers(&self) -> Vec<String> {
        let mut left = processes_naming(self.dir.path());
        left.extend(mounts_under(self.dir.path()));
        let socket = self.dir.path().join("docker.sock");
        if socket.exists() {
            left.push(socket.display().to_string());
        }
        left
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn docker_cli_pushes_through_dockerd_and_pulls_back_the_same_image_id() {
    let reg = GoraeRegistry::start("");
    let layout = sample_layout();
    let id = image_id(&layout, "v1");
    let scratch = tempfile::tempdir().unwrap();
    let archive = scratch.path().join("app.tar");
    succeeds(&mut skopeo(&[
        "copy",
        "--quiet",
        &oci_ref(&layout, "v1"),
        &format!("docker-archive:{}:clients/docker:v1", archive.display()),
    ]));

    let mut d = Dockerd::start(reg.host());
    let loaded = d.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(
        loaded.contains("Loaded image: clients/docker:v1"),
        "{loaded}"
    );
    let inspect_id = |d: &Dockerd, image: &str| {
        d.ok(&["image", "inspect", "--format", "{{.Id}}", image])
            .trim()
            .to_string()
    };
    assert_eq!(inspect_id(&d, "clients/docker:v1"), id);

    let target = format!("{}/dk/app:v1", reg.host());
    d.ok(&["tag", "clients/docker:v1", &target]);
    let pushed = d.ok(&["push", &target]);
    let digest = pushed
        .split("digest: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest in: {pushed}"))
        .to_string();
    let served = served_manifest(&reg, "dk/app", "v1", "");
    assert_eq!(
        served.header("Docker-Content-Digest"),
        Some(digest.as_str())
    );
    assert_eq!(
        served.header("Content-Type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(served.json()["config"]["digest"], id.as_str());

    d.ok(&["rmi", "clients/docker:v1", &target]);
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");
    let pulled = d.ok(&["pull", &target]);
    assert!(pulled.contains(&digest), "{pulled}");
    assert_eq!(inspect_id(&d, &target), id);
    let repo_digests = d.ok(&["image", "inspect", "--format", "{{.RepoDigests}}", &target]);
    assert!(
        repo_digests.contains(&format!("{}/dk/app@{digest}", reg.host())),
        "{repo_digests}"
    );

    assert!(
        d.dir.path().join("key.json").exists(),
        "its trust key is ours"
    );
    d.stop();
    assert_eq!(
        d.leftovers(),
        Vec::<String>::new(),
        "dockerd left these behind"
    );
}

// ---- TLS and metrics ----

/// A self-signed certificate for IP 127.0.0.1 (openssl CLI) in `dir`: cert.pem, key.pem, and
/// certs/ca.crt for clients' --cert-dir.
fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (cert, key, certs) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("certs"));
    succeeds(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    std::fs::create_dir(&certs).expect("certs dir");
    std::fs::copy(&cert, certs.join("ca.crt")).expect("ca.crt");
    (cert, key, certs)
}

#[test]
fn skopeo_pushes_and_pulls_over_https_trusting_a_cert_dir() {
    let files = tempfile::tempdir().unwrap();
    let (cert, key, certs) = self_signed_cert(files.path());
    let reg = GoraeRegistry::start(&format!("[tls]\ncert = {cert:?}\nkey = {key:?}\n"));
    assert!(reg.log().contains("serving https://"), "{}", reg.log());
    let layout = sample_layout();
    let source = oci_ref(&layout, "v1");
    let remote = format!("docker://{}/secure/app:v1", reg.host());
    let err = fails(&mut copy(&[], &source, &remote));
    assert!(
        err.contains("certificate"),
        "an unknown CA is refused: {err}"
    );

    let cert_dir = certs.to_str().unwrap();
    succeeds(&mut copy(&["--dest-cert-dir", cert_dir], &source, &remote));
    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--src-cert-dir", cert_dir],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    assert_same_image(&layout, &out, "v1");

    let url = format!("https://{}/v2/secure/app/tags/list", reg.host());
    let listed = succeeds(
        Command::new("curl")
            .args(["-sf", "--cacert"])
            .arg(&cert)
            .arg(&url),
    );
    assert_eq!(
        serde_json::from_str::<Value>(&listed).unwrap()["tags"],
        serde_json::json!(["v1"])
    );
}

#[test]
fn metrics_count_requests_by_route_and_code_and_the_bytes_moved() {
    let reg = GoraeRegistry::start("");
    let layout = sample_layout();
    let remote = format!("docker://{}/clients/app:v1", reg.host());
    succeeds(&mut copy(
        &["--dest-tls-verify=false"],
        &oci_ref(&layout, "v1"),
        &remote,
    ));
    let out = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false"],
        &remote,
        &oci_ref(&out, "v1"),
    ));
    let missing = reg.request("GET", "/v2/clients/app/manifests/nope", &[], b"");
    assert_eq!(missing.status, 404);

    let text = metrics(&reg);
    let requests = |route: &str, method: &str, code: u16| {
        metric(
            &text,
            &format!("gorae_registry_requests_total{{route=\"{route}\",method=\"{method}\",code=\"{code}\"}}"),
        )
    };
    assert!(requests("manifest", "PUT", 201) >= 1.0, "{text}");
    assert!(requests("manifest", "GET", 200) >= 1.0, "{text}");
    assert!(requests("manifest", "GET", 404) >= 1.0, "{text}");
    assert!(
        requests("upload", "PUT", 201) >= 2.0,
        "config and layer: {text}"
    );
    assert!(
        requests("blob", "GET", 200) >= 2.0,
        "config and layer: {text}"
    );
    assert!(requests("base", "GET", 200) >= 1.0, "{text}");

    let digest = manifest_digest(&layout, "v1");
    let image_bytes: usize = closure(&layout, &digest)
        .iter()
        .map(|d| layout.blob(d).len())
        .sum();
    let blob_bytes = image_bytes - layout.blob(&digest).len();
    let at_least = |series: &str, bytes: usize| {
        let value = metric(&text, series);
        assert!(
            value >= bytes as f64,
            "{series} = {value} < {bytes}: {text}"
        );
    };
    at_least("gorae_registry_received_bytes_total", image_bytes);
    at_least("gorae_registry_sent_bytes_total", image_bytes);
    at_least("gorae_registry_storage_bytes", blob_bytes);
    at_least("gorae_registry_storage_blobs", 2);
    at_least(
        r#"gorae_registry_request_duration_seconds_count{route="manifest"}"#,
        3,
    );
}

// ---- the pull-through cache ----

/// Polls `done` for up to 30 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pull_through_cache_serves_skopeo_and_gorae_after_the_upstream_is_killed() {
    let mut upstream = GoraeRegistry::start("");
    let layout = sample_layout();
    for tag in ["v1", "v2"] {
        succeeds(&mut copy(
            &["--dest-tls-verify=false"],
            &oci_ref(&layout, "v1"),
            &format!("docker://{}/library/app:{tag}", upstream.host()),
        ));
    }
    // tag_ttl 0: every pull of the tag asks the upstream first, so the second pull is served
    // from the cache only because the upstream is gone.
    let mirror = GoraeRegistry::start(&format!(
        "[[proxy.upstream]]\nurl = \"http://{}\"\ntag_ttl = \"0s\"\n",
        upstream.host()
    ));
    let through = format!("docker://{}/library/app:v1", mirror.host());
    let first = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false"],
        &through,
        &oci_ref(&first, "v1"),
    ));
    assert_same_image(&layout, &first, "v1");
    let digest = manifest_digest(&layout, "v1");
    let blobs = closure(&layout, &digest).len() as f64;
    // The last byte reaches the client before the cached copy is renamed into place (the
    // count includes manifests).
    eventually("the mirror cached the manifest, config and layer", || {
        metric(&metrics(&mirror), "gorae_registry_storage_blobs") >= blobs
    });

    let push = format!("docker://{}/library/mine:v1", mirror.host());
    let err = fails(&mut copy(
        &["--dest-tls-verify=false"],
        &oci_ref(&layout, "v1"),
        &push,
    ));
    assert!(err.contains("mirror"), "a mirror refuses pushes: {err}");

    upstream.kill9();
    let second = OciLayout::new();
    succeeds(&mut copy(
        &["--src-tls-verify=false"],
        &through,
        &oci_ref(&second, "v1"),
    ));
    assert_same_image(&layout, &second, "v1");
    let g = Gorae::new();
    g.ok(&["pull", "-q", &format!("{}/library/app:v1", mirror.host())]);
    assert_eq!(
        g.ok(&["images", "-q", "--no-trunc"]).trim(),
        image_id(&layout, "v1")
    );

    let never_pulled = format!("docker://{}/library/app:v2", mirror.host());
    let err = fails(&mut copy(
        &["--src-tls-verify=false"],
        &never_pulled,
        &oci_ref(&second, "v2"),
    ));
    assert!(
        err.contains("502"),
        "a tag never cached needs the upstream: {err}"
    );
}
