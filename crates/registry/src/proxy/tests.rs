//! The parts of the cache that need no storage: routing, configuration checks, and the
//! upstream client's auth flows against real CNCF registries (docker-registry, skopeo,
//! umoci, htpasswd and openssl on PATH; umoci keeps file owners, so root). The cache itself
//! is tested in tests/proxy.rs.

#[path = "../../../image/tests/support/registry.rs"]
mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use support::{OciLayout, TestRegistry};

use super::upstream::Upstream;
use super::{connect, routes, upstream_accept};
use crate::config::UpstreamConfig;
use crate::error::{ApiError, ErrorCode};

fn upstream(url: &str, prefix: Option<&str>) -> UpstreamConfig {
    UpstreamConfig {
        url: url.into(),
        prefix: prefix.map(str::to_string),
        username: None,
        password: None,
        tag_ttl: Duration::from_secs(60),
    }
}

/// (upstream url, name upstream) for each route of `repo`.
fn route(upstreams: &[Upstream], repo: &str) -> Vec<(String, String)> {
    routes(upstreams, repo)
        .into_iter()
        .map(|(u, name)| (u.url.clone(), name.to_string()))
        .collect()
}

fn pair(url: &str, name: &str) -> (String, String) {
    (url.to_string(), name.to_string())
}

#[test]
fn routes_by_longest_prefix_else_every_unprefixed_upstream_in_order() {
    let upstreams = connect(&[
        upstream("http://hub", Some("hub")),
        upstream("http://first/", None),
        upstream("http://library", Some("hub/library")),
        upstream("http://second", None),
    ])
    .unwrap();
    assert_eq!(
        route(&upstreams, "hub/library/alpine"),
        [pair("http://library", "alpine")]
    );
    assert_eq!(route(&upstreams, "hub/x/y"), [pair("http://hub", "x/y")]);
    for name in ["hubx/y", "hub", "alpine"] {
        assert_eq!(
            route(&upstreams, name),
            [pair("http://first", name), pair("http://second", name)]
        );
    }
    let only_prefixed = connect(&[upstream("http://hub", Some("hub"))]).unwrap();
    assert!(route(&only_prefixed, "alpine").is_empty());
    assert_eq!(route(&only_prefixed, "hub/a"), [pair("http://hub", "a")]);
}

#[test]
fn refuses_bad_prefixes_and_urls() {
    for (configs, needle) in [
        (vec![upstream("http://a", Some("Bad/../x"))], "Bad/../x"),
        (vec![upstream("http://a", Some("x/"))], "\"x/\""),
        (
            vec![
                upstream("http://a", Some("x")),
                upstream("http://b", Some("x")),
            ],
            "same prefix",
        ),
        (vec![upstream("http://", None)], "http://"),
        (vec![upstream("ftp://a", None)], "ftp://a"),
    ] {
        let e = connect(&configs).err().expect("refused").to_string();
        assert!(e.contains(needle), "{e} should mention {needle}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn asks_upstreams_for_every_manifest_kind_and_what_else_the_client_accepts() {
    use gorae_image::media;
    assert_eq!(upstream_accept(None), media::MANIFEST_ACCEPT);
    let narrow = format!("{};q=0.9, */*, application/json", media::DOCKER_MANIFEST);
    assert_eq!(
        upstream_accept(Some(&narrow)),
        format!("{}, application/json", media::MANIFEST_ACCEPT)
    );
    let extra = "application/vnd.example.thing+json";
    let accept = upstream_accept(Some(&format!("{},{extra}", media::OCI_INDEX)));
    assert_eq!(accept, format!("{}, {extra}", media::MANIFEST_ACCEPT));
}

/// A registry holding a one-layer image as `repo:v1`, pushed with `creds` if given.
fn registry_with_image(registry: TestRegistry, repo: &str, creds: Option<&str>) -> TestRegistry {
    let layout = OciLayout::new();
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("file"), b"hello").unwrap();
    layout.new_image("v1", "amd64");
    layout.insert("v1", src.path(), "/data");
    let mut copy = std::process::Command::new("skopeo");
    copy.args(["copy", "--quiet", "--dest-tls-verify=false"]);
    if let Some(creds) = creds {
        copy.args(["--dest-creds", creds]);
    }
    copy.arg(format!("oci:{}:v1", layout.path().display()))
        .arg(format!("docker://{}/{repo}:v1", registry.host()));
    support::run(&mut copy);
    registry
}

fn with_credentials(url: &str, user: &str, password: &str) -> Upstream {
    let mut config = upstream(url, None);
    config.username = Some(user.into());
    config.password = Some(password.into());
    Upstream::new(&config).unwrap()
}

async fn head_manifest(upstream: &Upstream) -> crate::error::Result<StatusCode> {
    let accept = Some(gorae_image::media::MANIFEST_ACCEPT);
    let response = upstream
        .request(Method::HEAD, "private", "manifests/v1", accept, true)
        .await?;
    Ok(response.status())
}

fn assert_upstream_error(e: crate::error::Error, url: &str, needle: &str) {
    let api = ApiError::from(e);
    assert_eq!(api.code, ErrorCode::Unknown);
    assert_eq!(api.status(), StatusCode::BAD_GATEWAY);
    assert!(api.message.contains(url), "{}", api.message);
    assert!(api.message.contains(needle), "{}", api.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_basic_challenges_with_the_configured_credentials() {
    let registry = TestRegistry::with_basic_auth("alice", "s3cret");
    let registry = registry_with_image(registry, "private", Some("alice:s3cret"));
    let url = format!("http://{}", registry.host());
    let good = with_credentials(&url, "alice", "s3cret");
    assert_eq!(head_manifest(&good).await.unwrap(), StatusCode::OK);
    // Again: the Basic header is reused, not learned from a new challenge.
    assert_eq!(head_manifest(&good).await.unwrap(), StatusCode::OK);
    let wrong = with_credentials(&url, "alice", "wrong");
    assert_upstream_error(head_manifest(&wrong).await.unwrap_err(), &url, "refused");
    let anonymous = Upstream::new(&upstream(&url, None)).unwrap();
    let e = head_manifest(&anonymous).await.unwrap_err();
    assert_upstream_error(e, &url, "none are configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_bearer_tokens_and_reuses_them() {
    let registry = TestRegistry::with_token_auth("alice", "s3cret");
    let registry = registry_with_image(registry, "private", Some("alice:s3cret"));
    let issued = || {
        let server = registry.token_server.as_ref().unwrap();
        server.issued.load(std::sync::atomic::Ordering::Relaxed)
    };
    let url = format!("http://{}", registry.host());
    let good = with_credentials(&url, "alice", "s3cret");
    let before = issued();
    assert_eq!(head_manifest(&good).await.unwrap(), StatusCode::OK);
    assert_eq!(head_manifest(&good).await.unwrap(), StatusCode::OK);
    assert_eq!(issued(), before + 1, "the token is cached per repository");
    let wrong = with_credentials(&url, "alice", "wrong");
    assert_upstream_error(head_manifest(&wrong).await.unwrap_err(), &url, "token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_an_error_naming_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let dead = Upstream::new(&upstream(&url, None)).unwrap();
    let e = head_manifest(&dead).await.unwrap_err();
    assert_upstream_error(e, &url, "private/manifests/v1");
}
