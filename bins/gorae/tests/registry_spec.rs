//! The OCI distribution spec 1.1 walked with raw HTTP against `gorae registry serve`: pull,
//! push (monolithic, single POST, chunked, streamed, mounts), discovery, referrers, content
//! management, manifest media types, and bad input. Status codes, headers and bodies are
//! checked as the spec words them; every error body must be the spec's
//! `{"errors":[{"code","message",...}]}`, and after every bad request the registry must still
//! answer `/v2/`. Needs no root and no external tool: only the gorae binary.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};
use support::registry_server::{
    digest_of, files_under, push_blob, push_image, send_raw, GoraeRegistry, HttpResponse,
};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const SBOM: &str = "application/vnd.example.sbom.v1+json";
const SIGNATURE: &str = "application/vnd.example.signature.v1";

// ---- helpers -------------------------------------------------------------------------------

/// Checks a response is the spec's error: `status`, a JSON body `{"errors":[...]}` whose
/// entries all have a string `code` and `message`, the first one being `code`.
#[track_caller]
fn assert_spec_error(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{:?}: {}", r.headers, r.text());
    let content_type = r.header("Content-Type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "error Content-Type {content_type:?}: {}",
        r.text()
    );
    let body = r.json();
    let errors = body["errors"].as_array().expect("an errors array");
    assert!(!errors.is_empty(), "{}", r.text());
    for e in errors {
        assert!(e["code"].is_string(), "{}", r.text());
        assert!(e["message"].is_string(), "{}", r.text());
    }
    assert_eq!(errors[0]["code"], code, "{}", r.text());
}

/// The registry still answers the base endpoint (after something bad was thrown at it).
#[track_caller]
fn assert_serving(reg: &GoraeRegistry) {
    let r = reg.request("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 200, "registry stopped serving: {}", reg.log());
    assert_eq!(r.json(), json!({}));
}

/// A response Location as a path (the spec allows absolute URLs too).
fn location_path(r: &HttpResponse) -> String {
    let location = r.header("Location").expect("a Location header");
    match location.split_once("://") {
        Some((_, rest)) => rest[rest.find('/').unwrap_or(rest.len())..].to_string(),
        None => location.to_string(),
    }
}

/// `location` with `digest=` appended to its query.
fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// POST /v2/<repo>/blobs/uploads/: checks the 202 and returns the upload location.
#[track_caller]
fn start_upload(reg: &GoraeRegistry, repo: &str) -> String {
    let r = reg.request(
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[("Content-Length", "0")],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let location = location_path(&r);
    assert!(
        location.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
        "{location}"
    );
    let id = location.rsplit('/').next().unwrap_or_default();
    let id = id.split('?').next().unwrap_or_default();
    assert_eq!(r.header("Docker-Upload-UUID"), Some(id));
    assert_eq!(r.header("Range"), Some("0-0"));
    assert_eq!(r.header("Content-Length"), Some("0"));
    location
}

/// Checks a 201 for a blob: Location to it, its digest, no body.
#[track_caller]
fn assert_blob_created(r: &HttpResponse, repo: &str, digest: &str) {
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(location_path(r), format!("/v2/{repo}/blobs/{digest}"));
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest));
    assert_eq!(r.header("Content-Length"), Some("0"));
}

/// GET of a blob: 200 and exactly `data`.
#[track_caller]
fn assert_blob_is(reg: &GoraeRegistry, repo: &str, digest: &str, data: &[u8]) {
    let r = reg.request("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, data);
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest));
}

/// The blob is not visible in `repo`, and no file under the storage root is named after it.
#[track_caller]
fn assert_blob_absent(reg: &GoraeRegistry, repo: &str, digest: &str) {
    let r = reg.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 404, "{digest} is visible");
    let r = reg.request("GET", &format!("/v2/{repo}/blobs/{digest}"), &[], b"");
    assert_spec_error(&r, 404, "BLOB_UNKNOWN");
    let hex = digest.trim_start_matches("sha256:");
    let stored: Vec<_> = files_under(&reg.storage())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(hex))
        .collect();
    assert!(stored.is_empty(), "files of {digest} left: {stored:?}");
}

/// PUT of a manifest: returns the response.
fn put_manifest(
    reg: &GoraeRegistry,
    repo: &str,
    reference: &str,
    media_type: &str,
    body: &[u8],
) -> HttpResponse {
    reg.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[("Content-Type", media_type)],
        body,
    )
}

/// PUT of a manifest that must succeed: checks the 201's headers, returns its digest.
#[track_caller]
fn push_manifest(
    reg: &GoraeRegistry,
    repo: &str,
    reference: &str,
    media_type: &str,
    manifest: &Value,
) -> (String, Vec<u8>) {
    let bytes = serde_json::to_vec(manifest).expect("manifest JSON");
    let digest = digest_of(&bytes);
    let r = put_manifest(reg, repo, reference, media_type, &bytes);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));
    assert_eq!(location_path(&r), format!("/v2/{repo}/manifests/{digest}"));
    (digest, bytes)
}

fn descriptor(media_type: &str, data: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": digest_of(data), "size": data.len()})
}

/// An OCI image manifest of blobs already pushed.
fn oci_manifest(config: &[u8], layers: &[&[u8]]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
    })
}

/// One connection, `raw` written, the write side shut (the client is done sending), the
/// whole response read. For bodies that end early and chunked bodies.
fn send_and_close(addr: &str, raw: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect to registry");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(raw).expect("send request");
    let _ = stream.shutdown(Shutdown::Write);
    let mut data = Vec::new();
    let _ = stream.read_to_end(&mut data);
    data
}

/// The status code of a raw response (0 if the connection closed without one).
fn status_of(raw_response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(raw_response);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Bytes an upload session holds, from its status GET (`Range: 0-<last byte>`).
#[track_caller]
fn upload_offset(reg: &GoraeRegistry, location: &str) -> usize {
    let r = reg.request("GET", location, &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let range = r.header("Range").expect("a Range header");
    let end: usize = range
        .strip_prefix("0-")
        .and_then(|end| end.parse().ok())
        .unwrap_or_else(|| panic!("Range {range:?}"));
    // An empty session says "0-0" too, as distribution does (an empty range has no
    // inclusive form): the callers here never hold exactly one byte.
    if end == 0 {
        0
    } else {
        end + 1
    }
}

/// `data` as a chunked body in pieces of `piece` bytes.
fn chunked(data: &[u8], piece: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

// ---- pull ----------------------------------------------------------------------------------

#[test]
fn manifests_pull_by_tag_and_digest_with_get_and_head() {
    let reg = GoraeRegistry::start("");
    let (digest, manifest) = push_image(reg.host(), "pull/app", "v1", b"layer one");
    for reference in ["v1", digest.as_str()] {
        let path = format!("/v2/pull/app/manifests/{reference}");
        let accept = [("Accept", OCI_MANIFEST)];
        let r = reg.request("GET", &path, &accept, b"");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, manifest, "GET {reference} is byte-identical");
        assert_eq!(r.header("Content-Type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));
        let length = manifest.len().to_string();
        assert_eq!(r.header("Content-Length"), Some(length.as_str()));

        let r = reg.request("HEAD", &path, &accept, b"");
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(r.header("Content-Length"), Some(length.as_str()));
        assert_eq!(r.header("Content-Type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));
    }
    let missing = digest_of(b"no such manifest");
    for path in [
        "/v2/pull/app/manifests/v2".to_string(),
        format!("/v2/pull/app/manifests/{missing}"),
        "/v2/pull/nothing/manifests/v1".to_string(),
    ] {
        let r = reg.request("GET", &path, &[], b"");
        assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");
        let r = reg.request("HEAD", &path, &[], b"");
        assert_eq!(r.status, 404, "HEAD {path}");
    }
}

#[test]
fn blobs_pull_with_get_head_and_ranges() {
    let reg = GoraeRegistry::start("");
    let data = pattern(100, 7);
    let digest = push_blob(reg.host(), "pull/blobs", &data);
    let path = format!("/v2/pull/blobs/blobs/{digest}");
    let r = reg.request("GET", &path, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("Content-Length"), Some("100"));
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));
    assert_eq!(r.header("Content-Type"), Some("application/octet-stream"));

    let r = reg.request("HEAD", &path, &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Length"), Some("100"));
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));

    for (range, start, end) in [
        ("bytes=10-19", 10, 19),
        ("bytes=90-", 90, 99),
        ("bytes=-5", 95, 99),
        ("bytes=0-0", 0, 0),
        ("bytes=50-1000", 50, 99),
    ] {
        let r = reg.request("GET", &path, &[("Range", range)], b"");
        assert_eq!(r.status, 206, "{range}: {}", r.text());
        let content_range = format!("bytes {start}-{end}/100");
        assert_eq!(r.header("Content-Range"), Some(content_range.as_str()));
        let length = (end - start + 1).to_string();
        assert_eq!(r.header("Content-Length"), Some(length.as_str()));
        assert_eq!(r.body, &data[start..=end], "{range}");
    }
    for range in ["bytes=100-", "bytes=200-300", "bytes=20-10", "bytes=-0"] {
        let r = reg.request("GET", &path, &[("Range", range)], b"");
        assert_spec_error(&r, 416, "BLOB_UPLOAD_INVALID");
    }

    let missing = digest_of(b"missing");
    let r = reg.request("GET", &format!("/v2/pull/blobs/blobs/{missing}"), &[], b"");
    assert_spec_error(&r, 404, "BLOB_UNKNOWN");
    assert_eq!(r.json()["errors"][0]["detail"]["digest"], missing.as_str());
    // Stored, but not in this repository: repositories only see what was pushed to them.
    let r = reg.request("GET", &format!("/v2/pull/other/blobs/{digest}"), &[], b"");
    assert_spec_error(&r, 404, "BLOB_UNKNOWN");
    let r = reg.request("HEAD", &format!("/v2/pull/other/blobs/{digest}"), &[], b"");
    assert_eq!(r.status, 404);
    assert_serving(&reg);
}

// ---- push ----------------------------------------------------------------------------------

#[test]
fn push_with_post_then_put() {
    let reg = GoraeRegistry::start("");
    let data = pattern(5000, 1);
    let digest = digest_of(&data);
    let location = start_upload(&reg, "push/mono");
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest),
        &[("Content-Type", "application/octet-stream")],
        &data,
    );
    assert_blob_created(&r, "push/mono", &digest);
    assert_blob_is(&reg, "push/mono", &digest, &data);
    // The session is over.
    let r = reg.request("GET", &location, &[], b"");
    assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");
}

#[test]
fn push_with_a_single_post() {
    let reg = GoraeRegistry::start("");
    let data = pattern(3000, 2);
    let digest = digest_of(&data);
    let r = reg.request(
        "POST",
        &format!("/v2/push/single/blobs/uploads/?digest={digest}"),
        &[("Content-Type", "application/octet-stream")],
        &data,
    );
    assert_blob_created(&r, "push/single", &digest);
    assert_blob_is(&reg, "push/single", &digest, &data);
    // A blob of zero bytes is a blob too.
    let empty = digest_of(b"");
    let r = reg.request(
        "POST",
        &format!("/v2/push/single/blobs/uploads/?digest={empty}"),
        &[],
        b"",
    );
    assert_blob_created(&r, "push/single", &empty);
    assert_blob_is(&reg, "push/single", &empty, b"");
}

#[test]
fn push_in_chunks_with_content_range_and_out_of_order_416() {
    let reg = GoraeRegistry::start("");
    let data = pattern(30, 3);
    let digest = digest_of(&data);
    let location = start_upload(&reg, "push/chunks");
    let patch = |location: &str, range: &str, body: &[u8]| {
        reg.request(
            "PATCH",
            location,
            &[
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", range),
            ],
            body,
        )
    };
    let r = patch(&location, "0-9", &data[..10]);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("Range"), Some("0-9"));
    assert_eq!(r.header("Content-Length"), Some("0"));
    let location = location_path(&r);

    // Out of order: a gap, and a chunk sent again.
    for (range, body) in [("20-29", &data[20..]), ("0-9", &data[..10])] {
        let r = patch(&location, range, body);
        assert_spec_error(&r, 416, "BLOB_UPLOAD_INVALID");
    }
    // A Content-Range that does not match the body is refused the same way.
    let r = patch(&location, "10-14", &data[10..20]);
    assert_spec_error(&r, 416, "BLOB_UPLOAD_INVALID");

    // The session survived all that: GET says where it stands.
    let r = reg.request("GET", &location, &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(r.header("Range"), Some("0-9"));
    assert_eq!(location_path(&r), location);

    let r = patch(&location, "10-19", &data[10..20]);
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("Range"), Some("0-19"));
    let location = location_path(&r);

    // The last chunk comes with the closing PUT.
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest),
        &[
            ("Content-Type", "application/octet-stream"),
            ("Content-Range", "20-29"),
        ],
        &data[20..],
    );
    assert_blob_created(&r, "push/chunks", &digest);
    assert_blob_is(&reg, "push/chunks", &digest, &data);
}

#[test]
fn a_closing_put_out_of_order_is_416() {
    let reg = GoraeRegistry::start("");
    let data = pattern(20, 4);
    let location = start_upload(&reg, "push/close");
    let r = reg.request("PATCH", &location, &[("Content-Range", "0-9")], &data[..10]);
    assert_eq!(r.status, 202);
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest_of(&data)),
        &[("Content-Range", "15-19")],
        &data[15..],
    );
    assert_spec_error(&r, 416, "BLOB_UPLOAD_INVALID");
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest_of(&data)),
        &[("Content-Range", "10-19")],
        &data[10..],
    );
    assert_blob_created(&r, "push/close", &digest_of(&data));
}

#[test]
fn a_streamed_patch_without_content_length() {
    let reg = GoraeRegistry::start("");
    let data = pattern(200_000, 5);
    let digest = digest_of(&data);
    let location = start_upload(&reg, "push/stream");
    let mut raw = format!(
        "PATCH {location} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
         Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        reg.host()
    )
    .into_bytes();
    raw.extend_from_slice(&chunked(&data, 7_001));
    let r = send_raw(reg.host(), &raw, false);
    assert_eq!(r.status, 202, "{}", r.text());
    let range = format!("0-{}", data.len() - 1);
    assert_eq!(r.header("Range"), Some(range.as_str()));
    let location = location_path(&r);

    let r = reg.request("GET", &location, &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Range"), Some(range.as_str()));

    // Finish with an empty PUT.
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest),
        &[("Content-Length", "0")],
        b"",
    );
    assert_blob_created(&r, "push/stream", &digest);
    assert_blob_is(&reg, "push/stream", &digest, &data);
}

#[test]
fn a_streamed_single_post() {
    let reg = GoraeRegistry::start("");
    let data = pattern(70_000, 6);
    let digest = digest_of(&data);
    let mut raw = format!(
        "POST /v2/push/stream1/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {}\r\n\
         Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
        reg.host()
    )
    .into_bytes();
    raw.extend_from_slice(&chunked(&data, 4096));
    let r = send_raw(reg.host(), &raw, false);
    assert_blob_created(&r, "push/stream1", &digest);
    assert_blob_is(&reg, "push/stream1", &digest, &data);
}

#[test]
fn upload_status_then_cancel() {
    let reg = GoraeRegistry::start("");
    let location = start_upload(&reg, "push/cancel");
    let r = reg.request("PATCH", &location, &[], b"12345");
    assert_eq!(r.status, 202, "{}", r.text());
    let r = reg.request("GET", &location, &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("Range"), Some("0-4"));
    assert_eq!(location_path(&r), location);
    let id = location.rsplit('/').next().unwrap_or_default();
    assert_eq!(r.header("Docker-Upload-UUID"), Some(id));

    let r = reg.request("DELETE", &location, &[("Content-Length", "0")], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    let r = reg.request("GET", &location, &[], b"");
    assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");
    let r = reg.request("PATCH", &location, &[], b"678");
    assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest_of(b"12345")),
        &[],
        b"",
    );
    assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");
    let r = reg.request("DELETE", &location, &[], b"");
    assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");
    assert_blob_absent(&reg, "push/cancel", &digest_of(b"12345"));
}

#[test]
fn cross_repository_mounts() {
    let reg = GoraeRegistry::start("");
    let data = pattern(1000, 8);
    let digest = push_blob(reg.host(), "mount/source", &data);
    let post = |repo: &str, query: &str| {
        reg.request(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?{query}"),
            &[("Content-Length", "0")],
            b"",
        )
    };

    let r = post("mount/target", &format!("mount={digest}&from=mount/source"));
    assert_blob_created(&r, "mount/target", &digest);
    assert_blob_is(&reg, "mount/target", &digest, &data);

    // A source that lacks the blob: an upload session instead, usable as any other.
    let r = post("mount/other", &format!("mount={digest}&from=mount/empty"));
    assert_eq!(r.status, 202, "{}", r.text());
    let location = location_path(&r);
    assert!(location.starts_with("/v2/mount/other/blobs/uploads/"));
    assert!(r.header("Docker-Upload-UUID").is_some());
    let r = reg.request("PUT", &with_digest(&location, &digest), &[], &data);
    assert_blob_created(&r, "mount/other", &digest);

    // A malformed source name is no error either: a session.
    let r = post("mount/third", &format!("mount={digest}&from=..%2Fsource"));
    assert_eq!(r.status, 202, "{}", r.text());

    // Automatic mount: no `from`, the registry finds the blob itself.
    let r = post("mount/auto", &format!("mount={digest}"));
    assert_blob_created(&r, "mount/auto", &digest);
    assert_blob_is(&reg, "mount/auto", &digest, &data);

    // Nobody has it: a session.
    let unknown = digest_of(b"nobody has this");
    let r = post("mount/auto", &format!("mount={unknown}"));
    assert_eq!(r.status, 202, "{}", r.text());
    let r = post("mount/auto", &format!("mount={unknown}&from=mount/source"));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_serving(&reg);
}

// ---- discovery -----------------------------------------------------------------------------

/// Follows `Link: <...>; rel="next"` from `first`, returning every page's `field` entries
/// and the number of pages.
fn walk_pages(reg: &GoraeRegistry, first: &str, field: &str) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut next = Some(first.to_string());
    let mut pages = 0;
    while let Some(path) = next.take() {
        let r = reg.request("GET", &path, &[], b"");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert!(r
            .header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/json"));
        let body = r.json();
        let page = body[field].as_array().cloned().unwrap_or_default();
        all.extend(
            page.iter()
                .map(|t| t.as_str().unwrap_or_default().to_string()),
        );
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        if let Some(link) = r.header("Link") {
            assert!(link.ends_with("rel=\"next\""), "{link}");
            let url = &link[link.find('<').expect("<") + 1..link.find('>').expect(">")];
            next = Some(url.to_string());
        }
    }
    (all, pages)
}

#[test]
fn tags_list_with_n_last_and_link() {
    let reg = GoraeRegistry::start("");
    let (digest, manifest) = push_image(reg.host(), "disc/app", "latest", b"layer");
    let mut tags = vec!["latest".to_string()];
    for tag in ["v1", "v2", "v3", "A", "b_1", "v1.0-rc"] {
        let r = put_manifest(&reg, "disc/app", tag, OCI_MANIFEST, &manifest);
        assert_eq!(r.status, 201, "{}", r.text());
        tags.push(tag.to_string());
    }
    tags.sort();

    let r = reg.request("GET", "/v2/disc/app/tags/list", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Link"), None);
    assert_eq!(r.json(), json!({"name": "disc/app", "tags": tags}));

    let r = reg.request("GET", "/v2/disc/app/tags/list?n=2", &[], b"");
    assert_eq!(r.json()["tags"], json!(tags[..2]));
    let link = format!(
        "</v2/disc/app/tags/list?n=2&last={}>; rel=\"next\"",
        tags[1]
    );
    assert_eq!(r.header("Link"), Some(link.as_str()));

    let (walked, pages) = walk_pages(&reg, "/v2/disc/app/tags/list?n=3", "tags");
    assert_eq!(walked, tags);
    assert_eq!(pages, 3);

    let r = reg.request(
        "GET",
        &format!("/v2/disc/app/tags/list?last={}", tags[4]),
        &[],
        b"",
    );
    assert_eq!(r.json()["tags"], json!(tags[5..]));
    let r = reg.request("GET", "/v2/disc/app/tags/list?n=2&last=v3", &[], b"");
    assert_eq!(r.json()["tags"], json!([]));
    assert_eq!(r.header("Link"), None);
    // n=0: an empty list and no Link.
    let r = reg.request("GET", "/v2/disc/app/tags/list?n=0", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["tags"], json!([]));
    assert_eq!(r.header("Link"), None);
    // Exactly n left: no next page.
    let r = reg.request("GET", "/v2/disc/app/tags/list?n=7", &[], b"");
    assert_eq!(r.json()["tags"], json!(tags));
    assert_eq!(r.header("Link"), None);

    let r = reg.request("GET", "/v2/disc/app/tags/list?n=many", &[], b"");
    assert_eq!(r.status, 400, "{}", r.text());
    assert_spec_error(&r, 400, "UNSUPPORTED");
    let r = reg.request("GET", "/v2/disc/nothing/tags/list", &[], b"");
    assert_spec_error(&r, 404, "NAME_UNKNOWN");
    let _ = digest;
}

#[test]
fn catalog_with_pagination() {
    let reg = GoraeRegistry::start("");
    let mut repos = vec!["alpha", "beta/one", "beta/two", "gamma", "z"];
    for repo in &repos {
        push_image(reg.host(), repo, "latest", repo.as_bytes());
    }
    repos.sort();
    let r = reg.request("GET", "/v2/_catalog", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"repositories": repos}));

    let r = reg.request("GET", "/v2/_catalog?n=2", &[], b"");
    assert_eq!(r.json()["repositories"], json!(repos[..2]));
    // The last name holds a '/', escaped in the link's query.
    assert_eq!(
        r.header("Link"),
        Some("</v2/_catalog?n=2&last=beta%2Fone>; rel=\"next\"")
    );
    let (walked, pages) = walk_pages(&reg, "/v2/_catalog?n=2", "repositories");
    assert_eq!(walked, repos);
    assert_eq!(pages, 3);
    let r = reg.request("GET", "/v2/_catalog?last=beta%2Ftwo", &[], b"");
    assert_eq!(r.json()["repositories"], json!(["gamma", "z"]));
}

// ---- referrers -----------------------------------------------------------------------------

#[test]
fn referrers_list_filter_and_oci_subject() {
    let reg = GoraeRegistry::start("");
    let repo = "ref/app";
    let (image, image_bytes) = push_image(reg.host(), repo, "v1", b"image layer");
    let subject = json!({"mediaType": OCI_MANIFEST, "digest": image, "size": image_bytes.len()});
    let empty = push_blob(reg.host(), repo, b"{}");
    assert_eq!(empty, digest_of(b"{}"));
    let sbom_data = br#"{"sbom":true}"#;
    push_blob(reg.host(), repo, sbom_data);
    let sig_config = br#"{"key":"abc"}"#;
    push_blob(reg.host(), repo, sig_config);

    // An artifact with artifactType and the empty config.
    let sbom = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM,
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [descriptor("application/json", sbom_data)],
        "subject": subject,
        "annotations": {"org.example.sbom.format": "json"},
    });
    let sbom_bytes = serde_json::to_vec(&sbom).unwrap();
    let sbom_digest = digest_of(&sbom_bytes);
    let r = put_manifest(&reg, repo, &sbom_digest, OCI_MANIFEST, &sbom_bytes);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("OCI-Subject"), Some(image.as_str()));

    // Its type from the config's media type instead.
    let signature = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(SIGNATURE, sig_config),
        "layers": [],
        "subject": subject,
        "annotations": {"org.example.signature.fingerprint": "abcd"},
    });
    let sig_bytes = serde_json::to_vec(&signature).unwrap();
    let sig_digest = digest_of(&sig_bytes);
    let r = put_manifest(&reg, repo, "sig", OCI_MANIFEST, &sig_bytes);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("OCI-Subject"), Some(image.as_str()));
    // A manifest without a subject gets no OCI-Subject.
    let r = put_manifest(&reg, repo, "v1-again", OCI_MANIFEST, &image_bytes);
    assert_eq!(r.status, 201);
    assert_eq!(r.header("OCI-Subject"), None);

    let r = reg.request("GET", &format!("/v2/{repo}/referrers/{image}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("Content-Type"), Some(OCI_INDEX));
    assert_eq!(r.header("OCI-Filters-Applied"), None);
    let index = r.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let mut listed = index["manifests"].as_array().cloned().unwrap_or_default();
    listed.sort_by_key(|d| d["artifactType"].as_str().unwrap_or_default().to_string());
    let expected = vec![
        json!({"mediaType": OCI_MANIFEST, "digest": sbom_digest, "size": sbom_bytes.len(),
               "artifactType": SBOM,
               "annotations": {"org.example.sbom.format": "json"}}),
        json!({"mediaType": OCI_MANIFEST, "digest": sig_digest, "size": sig_bytes.len(),
               "artifactType": SIGNATURE,
               "annotations": {"org.example.signature.fingerprint": "abcd"}}),
    ];
    assert_eq!(listed, expected);

    let r = reg.request(
        "GET",
        // '+' in a query is a space to form decoding, so clients escape it.
        &format!(
            "/v2/{repo}/referrers/{image}?artifactType={}",
            SBOM.replace('+', "%2B").replace('/', "%2F")
        ),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));
    assert_eq!(r.json()["manifests"], json!([expected[0]]));
    let r = reg.request(
        "GET",
        &format!("/v2/{repo}/referrers/{image}?artifactType=application%2Fvnd.none"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("OCI-Filters-Applied"), Some("artifactType"));
    assert_eq!(r.json()["manifests"], json!([]));

    // A subject nothing refers to (even one that does not exist): an empty index, never 404.
    for nothing in [sbom_digest.clone(), digest_of(b"not a manifest")] {
        let r = reg.request("GET", &format!("/v2/{repo}/referrers/{nothing}"), &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("Content-Type"), Some(OCI_INDEX));
        assert_eq!(
            r.json(),
            json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []})
        );
    }
    // Not even a repository with that name: still 200, as the spec forbids a 404 here.
    let r = reg.request("GET", &format!("/v2/ref/none/referrers/{image}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["manifests"], json!([]));
    let r = reg.request("GET", &format!("/v2/{repo}/referrers/sha256:xyz"), &[], b"");
    assert_spec_error(&r, 400, "DIGEST_INVALID");

    // Deleting a referrer takes it off the list.
    let r = reg.request(
        "DELETE",
        &format!("/v2/{repo}/manifests/{sig_digest}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let r = reg.request("GET", &format!("/v2/{repo}/referrers/{image}"), &[], b"");
    assert_eq!(r.json()["manifests"], json!([expected[0]]));
}

// ---- content management --------------------------------------------------------------------

#[test]
fn delete_manifests_by_digest_and_tag_and_blobs() {
    let reg = GoraeRegistry::start("");
    let repo = "del/app";
    let (first, first_bytes) = push_image(reg.host(), repo, "one", b"first layer");
    let r = put_manifest(&reg, repo, "two", OCI_MANIFEST, &first_bytes);
    assert_eq!(r.status, 201);
    let (second, _) = push_image(reg.host(), repo, "three", b"second layer");

    // By digest: the manifest and every tag pointing at it go.
    let r = reg.request("DELETE", &format!("/v2/{repo}/manifests/{first}"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    for reference in ["one", "two", first.as_str()] {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let r = reg.request("GET", &path, &[], b"");
        assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");
        assert_eq!(reg.request("HEAD", &path, &[], b"").status, 404);
    }
    let r = reg.request("GET", &format!("/v2/{repo}/tags/list"), &[], b"");
    assert_eq!(r.json()["tags"], json!(["three"]));
    let r = reg.request("DELETE", &format!("/v2/{repo}/manifests/{first}"), &[], b"");
    assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");

    // By tag: only the tag goes.
    let r = reg.request("DELETE", &format!("/v2/{repo}/manifests/three"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let r = reg.request("GET", &format!("/v2/{repo}/manifests/three"), &[], b"");
    assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");
    let r = reg.request("GET", &format!("/v2/{repo}/manifests/{second}"), &[], b"");
    assert_eq!(r.status, 200);
    let r = reg.request("DELETE", &format!("/v2/{repo}/manifests/three"), &[], b"");
    assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");

    // Blobs.
    let layer = digest_of(b"second layer");
    let r = reg.request("DELETE", &format!("/v2/{repo}/blobs/{layer}"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let r = reg.request("GET", &format!("/v2/{repo}/blobs/{layer}"), &[], b"");
    assert_spec_error(&r, 404, "BLOB_UNKNOWN");
    assert_eq!(
        reg.request("HEAD", &format!("/v2/{repo}/blobs/{layer}"), &[], b"")
            .status,
        404
    );
    let r = reg.request("DELETE", &format!("/v2/{repo}/blobs/{layer}"), &[], b"");
    assert_spec_error(&r, 404, "BLOB_UNKNOWN");
    assert_serving(&reg);
}

// ---- media types ---------------------------------------------------------------------------

#[test]
fn manifest_media_types_oci_docker_and_artifacts() {
    let reg = GoraeRegistry::start("");
    let repo = "media/app";
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"a layer".as_slice();
    push_blob(reg.host(), repo, config);
    push_blob(reg.host(), repo, layer);
    push_blob(reg.host(), repo, b"{}");

    let oci = oci_manifest(config, &[layer]);
    let (oci_digest, oci_bytes) = push_manifest(&reg, repo, "oci", OCI_MANIFEST, &oci);
    let docker = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER, layer)],
    });
    let (docker_digest, docker_bytes) =
        push_manifest(&reg, repo, "docker", DOCKER_MANIFEST, &docker);
    let platform = json!({"architecture": "amd64", "os": "linux"});
    let child = |media_type: &str, digest: &str, size: usize| json!({"mediaType": media_type, "digest": digest, "size": size, "platform": platform});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [child(OCI_MANIFEST, &oci_digest, oci_bytes.len())],
    });
    push_manifest(&reg, repo, "index", OCI_INDEX, &index);
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [child(DOCKER_MANIFEST, &docker_digest, docker_bytes.len())],
    });
    push_manifest(&reg, repo, "list", DOCKER_LIST, &list);
    let artifact = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing.v1",
        "config": descriptor(OCI_EMPTY, b"{}"),
        "layers": [descriptor("application/octet-stream", layer)],
    });
    push_manifest(&reg, repo, "artifact", OCI_MANIFEST, &artifact);

    for (tag, media_type, manifest) in [
        ("oci", OCI_MANIFEST, &oci),
        ("docker", DOCKER_MANIFEST, &docker),
        ("index", OCI_INDEX, &index),
        ("list", DOCKER_LIST, &list),
        ("artifact", OCI_MANIFEST, &artifact),
    ] {
        let r = reg.request(
            "GET",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Accept", media_type)],
            b"",
        );
        assert_eq!(r.status, 200, "{tag}: {}", r.text());
        assert_eq!(r.header("Content-Type"), Some(media_type), "{tag}");
        assert_eq!(r.body, serde_json::to_vec(manifest).unwrap(), "{tag}");
    }

    // Docker schema 1 is refused, signed or not, by header or by content.
    let schema1 = json!({
        "schemaVersion": 1,
        "name": repo,
        "tag": "old",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": digest_of(layer)}],
        "history": [{"v1Compatibility": "{}"}],
    });
    let schema1 = serde_json::to_vec(&schema1).unwrap();
    for content_type in [
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/json",
    ] {
        let r = put_manifest(&reg, repo, "old", content_type, &schema1);
        assert_spec_error(&r, 400, "MANIFEST_INVALID");
    }
    let r = reg.request("GET", &format!("/v2/{repo}/manifests/old"), &[], b"");
    assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");
}

// ---- bad input -----------------------------------------------------------------------------

#[test]
fn a_wrong_digest_on_finish_leaves_nothing() {
    let reg = GoraeRegistry::start("");
    let data = pattern(4000, 9);
    let actual = digest_of(&data);
    let claimed = digest_of(b"something else");

    let location = start_upload(&reg, "bad/digest");
    let r = reg.request("PUT", &with_digest(&location, &claimed), &[], &data);
    assert_spec_error(&r, 400, "DIGEST_INVALID");
    let r = reg.request("GET", &location, &[], b"");
    assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");

    let r = reg.request(
        "POST",
        &format!("/v2/bad/digest/blobs/uploads/?digest={claimed}"),
        &[],
        &data,
    );
    assert_spec_error(&r, 400, "DIGEST_INVALID");
    // A digest that is not one at all.
    let r = reg.request(
        "POST",
        "/v2/bad/digest/blobs/uploads/?digest=sha256:nothex",
        &[],
        &data,
    );
    assert_spec_error(&r, 400, "DIGEST_INVALID");
    let location = start_upload(&reg, "bad/digest");
    let r = reg.request("PUT", &location, &[], &data);
    assert_spec_error(&r, 400, "DIGEST_INVALID");

    for digest in [&actual, &claimed] {
        assert_blob_absent(&reg, "bad/digest", digest);
    }
    assert_serving(&reg);
}

#[test]
fn a_truncated_upload_leaves_nothing_and_the_registry_serves_on() {
    let reg = GoraeRegistry::start("");
    let data = pattern(10_000, 10);
    let digest = digest_of(&data);
    let sent = &data[..3000];

    // Single POST whose body ends early.
    let mut raw = format!(
        "POST /v2/bad/cut/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n\
         Content-Length: {}\r\n\r\n",
        data.len()
    )
    .into_bytes();
    raw.extend_from_slice(sent);
    let answer = send_and_close(reg.host(), &raw);
    let status = status_of(&answer);
    assert!(status == 0 || status == 400, "{status}");
    assert_blob_absent(&reg, "bad/cut", &digest);
    let sessions = files_under(&reg.storage().join("uploads"));
    assert!(sessions.is_empty(), "the cut single POST left {sessions:?}");
    assert_serving(&reg);

    // PATCH and closing PUT on a session, each cut short: each sends the rest of the blob
    // from where the session stands, but stops early.
    let location = start_upload(&reg, "bad/cut");
    for method in ["PATCH", "PUT"] {
        let offset = upload_offset(&reg, &location);
        let target = match method {
            "PUT" => with_digest(&location, &digest),
            _ => location.clone(),
        };
        let mut raw = format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            data.len() - offset
        )
        .into_bytes();
        raw.extend_from_slice(&data[offset..offset + 1000]);
        let status = status_of(&send_and_close(reg.host(), &raw));
        assert!(status == 0 || status == 400, "{method}: {status}");
        assert_blob_absent(&reg, "bad/cut", &digest);
        assert_serving(&reg);
    }
    // A chunked body cut in the middle of a chunk.
    let mut raw = format!(
        "POST /v2/bad/cut/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: x\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        data.len()
    )
    .into_bytes();
    raw.extend_from_slice(sent);
    let status = status_of(&send_and_close(reg.host(), &raw));
    assert!(status == 0 || status == 400, "{status}");
    assert_blob_absent(&reg, "bad/cut", &digest);

    // The session kept what arrived of the cut chunks: it resumes from the offset it reports.
    let offset = upload_offset(&reg, &location);
    assert_eq!(offset, 2000);
    let r = reg.request(
        "PUT",
        &with_digest(&location, &digest),
        &[("Content-Range", &format!("{offset}-{}", data.len() - 1))],
        &data[offset..],
    );
    assert_blob_created(&r, "bad/cut", &digest);
    assert_blob_is(&reg, "bad/cut", &digest, &data);
}

#[test]
fn malformed_manifests_are_manifest_invalid() {
    let reg = GoraeRegistry::start("");
    let repo = "bad/manifest";
    let config = b"{}";
    push_blob(reg.host(), repo, config);
    let good = oci_manifest(config, &[]);
    let mut mismatched = good.clone();
    mismatched["mediaType"] = json!(DOCKER_MANIFEST);
    let mut no_layers = good.clone();
    no_layers.as_object_mut().unwrap().remove("layers");
    let mut bad_digest = good.clone();
    bad_digest["config"]["digest"] = json!("sha256:1234");
    let mut bad_size = good.clone();
    bad_size["config"]["size"] = json!(-1);
    let mut version3 = good.clone();
    version3["schemaVersion"] = json!(3);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not JSON", b"{not json".to_vec()),
        ("a JSON array", b"[1,2,3]".to_vec()),
        ("a JSON string", b"\"manifest\"".to_vec()),
        ("binary", vec![0xff, 0xfe, 0, 1, 2]),
        ("no schemaVersion", br#"{"layers":[],"config":{}}"#.to_vec()),
        ("schemaVersion 3", serde_json::to_vec(&version3).unwrap()),
        (
            "mediaType mismatch",
            serde_json::to_vec(&mismatched).unwrap(),
        ),
        ("no layers", serde_json::to_vec(&no_layers).unwrap()),
        (
            "bad config digest",
            serde_json::to_vec(&bad_digest).unwrap(),
        ),
        ("negative size", serde_json::to_vec(&bad_size).unwrap()),
        (
            "unknown media type",
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "text/html",
                                       "layers": []}))
            .unwrap(),
        ),
        (
            "index of garbage",
            serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                       "manifests": {"a": 1}}))
            .unwrap(),
        ),
        (
            "deeply nested",
            [b"[".repeat(10_000), b"]".repeat(10_000)].concat(),
        ),
    ];
    for (what, body) in &cases {
        let r = put_manifest(&reg, repo, "latest", OCI_MANIFEST, body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_spec_error(&r, 400, "MANIFEST_INVALID");
    }
    // Pushed by digest, the bytes must hash to it.
    let bytes = serde_json::to_vec(&good).unwrap();
    let wrong = digest_of(b"other");
    let r = put_manifest(&reg, repo, &wrong, OCI_MANIFEST, &bytes);
    assert_spec_error(&r, 400, "DIGEST_INVALID");
    // A bad tag.
    let r = put_manifest(&reg, repo, ".hidden", OCI_MANIFEST, &bytes);
    assert_spec_error(&r, 400, "MANIFEST_INVALID");
    let r = put_manifest(&reg, repo, &"t".repeat(129), OCI_MANIFEST, &bytes);
    assert_spec_error(&r, 400, "MANIFEST_INVALID");

    let r = reg.request("GET", &format!("/v2/{repo}/tags/list"), &[], b"");
    let tags = if r.status == 200 {
        r.json()["tags"].clone()
    } else {
        json!([])
    };
    assert_eq!(tags, json!([]), "nothing was tagged");
    assert_serving(&reg);
}

#[test]
fn a_manifest_referencing_missing_blobs_is_refused() {
    let reg = GoraeRegistry::start("");
    let repo = "bad/refs";
    let config = br#"{"os":"linux"}"#;
    push_blob(reg.host(), repo, config);
    let missing_layer = b"never pushed";
    let manifest = oci_manifest(config, &[missing_layer]);
    let r = put_manifest(
        &reg,
        repo,
        "latest",
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    assert_spec_error(&r, 400, "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(
        r.json()["errors"][0]["detail"]["digest"],
        digest_of(missing_layer)
    );
    // The config missing, and a blob stored only in another repository.
    push_blob(reg.host(), "bad/elsewhere", missing_layer);
    let manifest = oci_manifest(b"no config", &[]);
    let r = put_manifest(
        &reg,
        repo,
        "latest",
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    assert_spec_error(&r, 400, "MANIFEST_BLOB_UNKNOWN");
    let manifest = oci_manifest(config, &[missing_layer]);
    let r = put_manifest(
        &reg,
        repo,
        "latest",
        OCI_MANIFEST,
        &serde_json::to_vec(&manifest).unwrap(),
    );
    assert_spec_error(&r, 400, "MANIFEST_BLOB_UNKNOWN");
    // An index whose child manifest is not there.
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
                       "manifests": [descriptor(OCI_MANIFEST, b"no such manifest")]});
    let r = put_manifest(
        &reg,
        repo,
        "latest",
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    );
    assert_spec_error(&r, 400, "MANIFEST_BLOB_UNKNOWN");
    let r = reg.request("GET", &format!("/v2/{repo}/manifests/latest"), &[], b"");
    assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");
    assert_serving(&reg);
}

#[test]
fn bad_names_are_name_invalid() {
    let reg = GoraeRegistry::start("");
    let long = "a".repeat(256);
    for name in [
        "..",
        "a/../b",
        "../../etc",
        "Upper",
        "app/Case",
        "a%2Fb",
        "a%2F..%2Fb",
        "-lead",
        "a//b",
        "a_",
        long.as_str(),
    ] {
        for (method, path) in [
            ("GET", format!("/v2/{name}/manifests/latest")),
            ("PUT", format!("/v2/{name}/manifests/latest")),
            ("GET", format!("/v2/{name}/tags/list")),
            ("POST", format!("/v2/{name}/blobs/uploads/")),
            ("GET", format!("/v2/{name}/blobs/{}", digest_of(b"x"))),
        ] {
            let r = reg.request(method, &path, &[], b"");
            assert_spec_error(&r, 400, "NAME_INVALID");
        }
    }
    // Nothing was created for any of them.
    let r = reg.request("GET", "/v2/_catalog", &[], b"");
    assert_eq!(r.json()["repositories"], json!([]));
    assert_serving(&reg);
}

#[test]
fn a_huge_manifest_is_413() {
    let reg = GoraeRegistry::start("");
    let padding = "x".repeat(4 * 1024 * 1024 + 10);
    let manifest = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                          "config": descriptor(OCI_CONFIG, b"{}"), "layers": [],
                          "annotations": {"padding": padding}});
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let r = put_manifest(&reg, "bad/huge", "latest", OCI_MANIFEST, &bytes);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_spec_error(&r, 413, "MANIFEST_INVALID");
    assert_serving(&reg);
    // Without a Content-Length the cap holds as well.
    let mut raw = format!(
        "PUT /v2/bad/huge/manifests/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    raw.extend_from_slice(&chunked(&bytes, 64 * 1024));
    let r = send_raw(reg.host(), &raw, false);
    assert_spec_error(&r, 413, "MANIFEST_INVALID");
    let r = reg.request("GET", "/v2/bad/huge/manifests/latest", &[], b"");
    assert_spec_error(&r, 404, "MANIFEST_UNKNOWN");
    assert_serving(&reg);
}

#[test]
fn a_huge_request_head_is_431() {
    let reg = GoraeRegistry::start("");
    let big = "v".repeat(70 * 1024);
    let raw = format!("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let r = send_raw(reg.host(), raw.as_bytes(), false);
    assert_eq!(r.status, 431);
    assert_serving(&reg);
    // So is one with too many header lines.
    let mut raw = String::from("GET /v2/ HTTP/1.1\r\nHost: x\r\n");
    for i in 0..500 {
        raw.push_str(&format!("X-H{i}: y\r\n"));
    }
    raw.push_str("\r\n");
    let r = send_raw(reg.host(), raw.as_bytes(), false);
    assert_eq!(r.status, 431);
    // And a long request line.
    let raw = format!("GET /v2/{big}/tags/list HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = send_raw(reg.host(), raw.as_bytes(), false);
    assert_eq!(r.status, 431);
    assert_serving(&reg);
}

#[test]
fn garbage_instead_of_http_is_400() {
    let reg = GoraeRegistry::start("");
    let garbage: [&[u8]; 6] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 this is TLS, not HTTP\r\n\r\n",
        b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
        b"HELLO\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nHost x\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ];
    for raw in garbage {
        let answer = send_and_close(reg.host(), raw);
        assert_eq!(
            status_of(&answer),
            400,
            "{:?} -> {:?}",
            String::from_utf8_lossy(raw),
            String::from_utf8_lossy(&answer)
        );
        assert_serving(&reg);
    }
    // A bad chunk size in a streamed upload.
    let location = start_upload(&reg, "bad/chunks");
    let raw = format!(
        "PATCH {location} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    );
    let status = status_of(&send_and_close(reg.host(), raw.as_bytes()));
    assert!(status == 0 || status == 400, "{status}");
    // A connection that says nothing and goes away.
    drop(TcpStream::connect(reg.host()).expect("connect"));
    assert_serving(&reg);
}

#[test]
fn unknown_upload_ids_are_blob_upload_unknown() {
    let reg = GoraeRegistry::start("");
    let theirs = start_upload(&reg, "uploads/theirs");
    let their_id = theirs.rsplit('/').next().unwrap_or_default().to_string();
    let digest = digest_of(b"x");
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "not-a-session",
        "..",
        "%2e%2e",
        their_id.as_str(),
    ] {
        let path = format!("/v2/uploads/mine/blobs/uploads/{id}");
        for (method, target) in [
            ("GET", path.clone()),
            ("PATCH", path.clone()),
            ("PUT", with_digest(&path, &digest)),
            ("DELETE", path.clone()),
        ] {
            let r = reg.request(method, &target, &[], b"x");
            assert_spec_error(&r, 404, "BLOB_UPLOAD_UNKNOWN");
        }
    }
    // Their session is untouched by all that.
    let r = reg.request("GET", &theirs, &[], b"");
    assert_eq!(r.status, 204);
    assert_serving(&reg);
}

#[test]
fn a_bogus_bearer_token_is_401_with_a_challenge() {
    // Anonymous pull of public/** only: the rest needs a token.
    let access = tempfile::tempdir().expect("temp dir");
    let access_file = access.path().join("access.toml");
    std::fs::write(
        &access_file,
        "[[rule]]\nrepositories = [\"public/**\"]\nanonymous = true\nactions = [\"pull\"]\n",
    )
    .expect("access file");
    let reg = GoraeRegistry::start(&format!(
        "[auth]\ntoken = true\naccess = {:?}\n",
        access_file.display().to_string()
    ));
    let forged = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
                  eyJpc3MiOiJnb3JhZS1yZWdpc3RyeSIsInN1YiI6ImFkbWluIiwiZXhwIjo0MTAyNDQ0ODAwfQ.\
                  c2lnbmF0dXJl";
    for token in ["garbage", "", "a.b.c", forged] {
        for (method, path) in [
            ("GET", "/v2/".to_string()),
            ("GET", "/v2/secure/app/manifests/latest".to_string()),
            ("POST", "/v2/secure/app/blobs/uploads/".to_string()),
        ] {
            let auth = format!("Bearer {token}");
            let r = reg.request(method, &path, &[("Authorization", &auth)], b"");
            assert_spec_error(&r, 401, "UNAUTHORIZED");
            let challenge = r.header("WWW-Authenticate").expect("a challenge");
            assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");
            assert!(challenge.contains("service=\""), "{challenge}");
            assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
            if path != "/v2/" {
                assert!(
                    challenge.contains("scope=\"repository:secure/app:"),
                    "{challenge}"
                );
            }
        }
    }
    let r = reg.request("GET", "/v2/", &[], b"");
    assert_spec_error(&r, 401, "UNAUTHORIZED");
    assert!(r.header("WWW-Authenticate").is_some());
    // Basic credentials on a token registry are no way in either.
    let r = reg.request("GET", "/v2/", &[("Authorization", "Basic YTpi")], b"");
    assert_spec_error(&r, 401, "UNAUTHORIZED");
    let r = reg.request("GET", "/metrics", &[], b"");
    assert!(r.status == 200 || r.status == 401, "{}", r.status);
}

#[test]
fn unsupported_methods_and_unknown_paths() {
    let reg = GoraeRegistry::start("");
    let r = reg.request("POST", "/v2/", &[], b"");
    assert_spec_error(&r, 405, "UNSUPPORTED");
    let r = reg.request("DELETE", "/v2/a/tags/list", &[], b"");
    assert_spec_error(&r, 405, "UNSUPPORTED");
    let r = reg.request("GET", "/v2/a/blobs/uploads/", &[], b"");
    assert_spec_error(&r, 405, "UNSUPPORTED");
    let r = reg.request("GET", "/v3/", &[], b"");
    assert_eq!(r.status, 404);
    assert_serving(&reg);
}

/// The spec says a JSON error's `code` MUST be one of its table, 416s included.
#[test]
fn error_codes_are_all_from_the_spec_table() {
    const LISTED: [&str; 14] = [
        "BLOB_UNKNOWN",
        "BLOB_UPLOAD_INVALID",
        "BLOB_UPLOAD_UNKNOWN",
        "DIGEST_INVALID",
        "MANIFEST_BLOB_UNKNOWN",
        "MANIFEST_INVALID",
        "MANIFEST_UNKNOWN",
        "NAME_INVALID",
        "NAME_UNKNOWN",
        "SIZE_INVALID",
        "UNAUTHORIZED",
        "DENIED",
        "UNSUPPORTED",
        "TOOMANYREQUESTS",
    ];
    let reg = GoraeRegistry::start("");
    let digest = push_blob(reg.host(), "codes/app", b"0123456789");
    let location = start_upload(&reg, "codes/app");
    let responses = [
        reg.request(
            "GET",
            &format!("/v2/codes/app/blobs/{digest}"),
            &[("Range", "bytes=50-60")],
            b"",
        ),
        reg.request("PATCH", &location, &[("Content-Range", "5-9")], b"56789"),
    ];
    for r in responses {
        assert_eq!(r.status, 416);
        if r.header("Content-Type") == Some("application/json") {
            let code = r.error_code();
            assert!(
                LISTED.contains(&code.as_str()),
                "{code} is not in the table"
            );
        }
    }
}
