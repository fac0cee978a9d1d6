#!/usr/bin/env python3
"""Writes the seed corpora: real request paths and config text for `routes`, real client
conversations for `requests` (with the target's {upload}, {blob} and {manifest}
placeholders), and real manifests for `manifests` (a selector byte first, see the target).
Run from crates/registry/fuzz; `cargo fuzz cmin` keeps what adds coverage."""
import hashlib, json, os

D0 = "sha256:" + "0" * 64
EMPTY = "sha256:" + hashlib.sha256(b"{}").hexdigest()
LAYER = "sha256:" + hashlib.sha256(b"fuzz layer").hexdigest()
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write(target, name, data):
    os.makedirs(f"corpus/{target}", exist_ok=True)
    with open(f"corpus/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def routes():
    seeds = {
        "base": "/v2/",
        "catalog": "/v2/_catalog?n=10&last=a%2Fb",
        "tags": "/v2/library/ubuntu/tags/list?n=2&last=v1",
        "manifest-tag": "/v2/a/b/c/manifests/v1.0-rc_2",
        "manifest-digest": f"/v2/x/manifests/{D0.replace(':', '%3A')}",
        "blob": f"/v2/x/blobs/{D0}",
        "upload-start": f"/v2/x/blobs/uploads/?digest={D0}&mount={D0}&from=y",
        "upload": "/v2/x/blobs/uploads/0b9e2f4c-1d5a-4c3e-9f7a-2b8d6e4a1c3f",
        "referrers": f"/v2/x/referrers/{D0}?artifactType=application%2Fvnd.x%2Bjson",
        "token": "/token?service=gorae&scope=repository:a/b:pull,push&scope=registry:catalog:*",
        "traversal": "/v2/a/../b/manifests/latest",
        "escapes": "/v2/a%2Fb/tags/list?x=%zz&y=%4&z=+%2B",
        "config": (
            'addr = "127.0.0.1:5000"\nroot = "/srv"\nlog = "debug"\n'
            '[storage]\nupload_expiry = "24h"\ngc_interval = "0s"\nmax_manifest_size = 4096\n'
            '[auth]\nhtpasswd = "h"\ntoken = true\ntoken_expiry = "5m"\n'
            '[[proxy.upstream]]\nurl = "https://r.example"\nprefix = "ex"\ntag_ttl = "10s"\n'
        ),
    }
    for name, text in seeds.items():
        write("routes", name, text)


def req(method, path, headers=(), body=b"", length=True):
    head = f"{method} {path} HTTP/1.1\r\nHost: r\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    if length and (body or method in ("PUT", "POST", "PATCH")):
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def chunked(data, piece):
    out = b""
    for i in range(0, len(data), piece):
        part = data[i : i + piece]
        out += b"%x;ext=1\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\nTrailer: x\r\n\r\n"


def requests():
    up = "/v2/fuzz/app/blobs/uploads/{upload}"
    blob = b"hello, registry"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    # Placeholders would change a body's length after its Content-Length was counted: bodies
    # name the requests target's seeded content by digest instead (kept in step with `seed`).
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    seeded = (
        '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        '"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},'
        '"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":10}]}'
        % (sha(config), len(config), LAYER)
    ).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": LAYER, "size": 10},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": sha(seeded), "size": len(seeded)},
        "annotations": {"a": "b"},
    }).encode()
    seeds = {
        "get-base": req("GET", "/v2/"),
        "head-manifest": req("HEAD", "/v2/fuzz/app/manifests/latest", [("Accept", OCI_MANIFEST)]),
        "get-manifest-digest": req("GET", "/v2/fuzz/app/manifests/{manifest}"),
        "get-blob-range": req("GET", "/v2/fuzz/app/blobs/{blob}", [("Range", "bytes=2-5")]),
        "head-blob": req("HEAD", "/v2/fuzz/app/blobs/{blob}"),
        "post-monolithic": req("POST", f"/v2/fuzz/app/blobs/uploads/?digest={digest}", [("Content-Type", "application/octet-stream")], blob),
        "patch-then-put": req("PATCH", up, [("Content-Range", "0-14")], blob)
        + req("GET", up) + req("PUT", up + f"?digest={digest}"),
        "patch-chunked": req("PATCH", up, [("Transfer-Encoding", "chunked")], chunked(blob, 4), length=False)
        + req("PUT", up + f"?digest={digest}", [("Content-Length", "0")], length=False),
        "patch-out-of-order": req("PATCH", up, [("Content-Range", "5-9")], b"12345") + req("DELETE", up),
        "expect-continue": req("PUT", up + f"?digest={digest}", [("Expect", "100-continue")], blob),
        "put-manifest": req("PUT", "/v2/fuzz/app/manifests/sig", [("Content-Type", OCI_MANIFEST)], manifest)
        + req("GET", "/v2/fuzz/app/referrers/{manifest}?artifactType=application%2Fvnd.oci.image.config.v1%2Bjson"),
        "mount": req("POST", "/v2/fuzz/other/blobs/uploads/?mount={blob}&from=fuzz/app")
        + req("POST", "/v2/fuzz/third/blobs/uploads/?mount={blob}"),
        "discovery": req("GET", "/v2/fuzz/app/tags/list?n=1&last=a") + req("GET", "/v2/_catalog?n=1"),
        "delete": req("DELETE", "/v2/fuzz/app/manifests/latest")
        + req("DELETE", "/v2/fuzz/app/manifests/{manifest}") + req("DELETE", "/v2/fuzz/app/blobs/{blob}"),
        "metrics": req("GET", "/metrics", [("Connection", "close")]),
        "http10": b"GET /v2/ HTTP/1.0\r\n\r\n",
        "absolute-form": b"GET http://r:5000/v2/fuzz/app/tags/list HTTP/1.1\r\nHost: r\r\n\r\n",
        "bad-name": req("GET", "/v2/a/../b/manifests/latest"),
        "truncated": b"PUT " + up.encode() + b"?digest=" + digest.encode() + b" HTTP/1.1\r\nContent-Length: 100\r\n\r\nshort",
        "token-bogus": b"~" + req("GET", "/v2/fuzz/app/manifests/latest", [("Authorization", "Bearer a.b.c")]),
        "token-endpoint": b"~" + req("GET", "/token?service=gorae-registry&scope=repository:fuzz/app:pull"),
        "token-post": b"~" + req("POST", "/token", [("Content-Type", "application/x-www-form-urlencoded")],
                                  b"grant_type=password&username=a&password=b&scope=repository%3Afuzz%2Fapp%3Apull"),
        "basic-on-token": b"~" + req("GET", "/v2/", [("Authorization", "Basic YTpi")]),
    }
    for name, data in seeds.items():
        write("requests", name, data)


def desc(media_type, digest, size, **extra):
    return dict({"mediaType": media_type, "digest": digest, "size": size}, **extra)


def manifests():
    image = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
             "config": desc("application/vnd.oci.empty.v1+json", EMPTY, 2),
             "layers": [desc("application/vnd.oci.image.layer.v1.tar", LAYER, 10)]}
    seeded = json.dumps(image, separators=(",", ":")).encode()
    seeded_digest = "sha256:" + hashlib.sha256(seeded).hexdigest()
    artifact = dict(image, artifactType="application/vnd.example+json",
                    subject=desc(OCI_MANIFEST, seeded_digest, len(seeded)),
                    annotations={"org.example": "x"})
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [desc(OCI_MANIFEST, seeded_digest, len(seeded),
                                platform={"architecture": "amd64", "os": "linux"})],
             "subject": desc(OCI_MANIFEST, seeded_digest, len(seeded))}
    docker = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
              "config": desc("application/vnd.docker.container.image.v1+json", EMPTY, 2),
              "layers": [desc("application/vnd.docker.image.rootfs.diff.tar.gzip", LAYER, 10,
                              urls=["https://example.com/l"])]}
    docker_list = {"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": []}
    schema1 = {"schemaVersion": 1, "name": "fuzz/app", "tag": "latest", "fsLayers": []}
    # Selector: content type index in the low 3 bits, 0x08 by digest, 0x10 cache_manifest.
    seeds = {
        "oci-by-tag": (1, image),
        "artifact-by-digest": (1 | 0x08, artifact),
        "index-with-subject": (2, index),
        "docker-foreign-layer": (3, docker),
        "docker-list-cached": (4 | 0x10, docker_list),
        "no-content-type": (0, image),
        "schema1": (6, schema1),
        "charset-param": (7 | 0x08, image),
    }
    for name, (selector, doc) in seeds.items():
        write("manifests", name, bytes([selector]) + json.dumps(doc).encode())


routes()
requests()
manifests()
