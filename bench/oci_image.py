#!/usr/bin/env python3
"""Builds the benchmarks' test image (bench/pull.sh, bench/registry.sh) once.

usage: oci_image.py KIND DIR
  KIND  files     six layers of real host trees (compilers, headers, python, locales,
                  docs, git), about 200 MB compressed, like a distro image's package layers;
        binaries  six layers of the big static Go binaries the benchmarks' own Debian
                  packages install: few files, less compressible (closer to images whose
                  pull cost is mostly the download).
Writes the OCI layout to DIR/oci (tag "latest") and then DIR/done; does nothing when
DIR/done exists, so the image is built once per DIR.

Layers are GNU tar streams compressed with zlib level 6, and the layout is written by hand:
umoci 0.4.7's larger layers end right after the last entry's data, without padding or
end-of-archive blocks; Go and gorae read them, GNU tar does not, and a benchmark image
should be unremarkable.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib

# One layer per entry; a comma joins several paths into one layer.
LAYER_TREES = {
    "files": ["/usr/lib/gcc", "/usr/include", "/usr/lib/python3.11", "/usr/share/locale",
              "/usr/share/doc", "/usr/lib/git-core"],
    "binaries": ["/usr/sbin/dockerd", "/usr/bin/containerd,/usr/bin/containerd-shim-runc-v2",
                 "/usr/bin/docker", "/usr/bin/podman,/usr/bin/umoci",
                 "/usr/bin/ctr,/usr/bin/skopeo", "/usr/bin/docker-registry"],
}


def put(blobs, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def gzip_layer(blobs, tree):
    """Tars and compresses one layer into blobs/; returns its descriptor and diff ID."""
    paths = [p.lstrip("/") for p in tree.split(",")]
    tar = subprocess.Popen(["tar", "--numeric-owner", "-C", "/", "-cf", "-", *paths],
                           stdout=subprocess.PIPE)
    diff, blob = hashlib.sha256(), hashlib.sha256()
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)
    tmp = os.path.join(blobs, "tmp")
    size = 0
    with open(tmp, "wb") as f:
        while chunk := tar.stdout.read(1 << 20):
            diff.update(chunk)
            data = gz.compress(chunk)
            blob.update(data)
            f.write(data)
            size += len(data)
        data = gz.flush()
        blob.update(data)
        f.write(data)
        size += len(data)
    if tar.wait() != 0:
        sys.exit(f"oci_image.py: tar of {tree} failed")
    os.rename(tmp, os.path.join(blobs, blob.hexdigest()))
    return ({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
             "digest": "sha256:" + blob.hexdigest(), "size": size},
            "sha256:" + diff.hexdigest())


def write_layout(out, trees):
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    layers, diff_ids = zip(*(gzip_layer(blobs, tree) for tree in trees))
    config = {"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sh"]},
              "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
              "history": [{"created_by": f"COPY {t} {t}"} for t in trees]}
    cdigest, csize = put(blobs, json.dumps(config).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": cdigest, "size": csize}, "layers": list(layers)}
    mdigest, msize = put(blobs, json.dumps(manifest).encode())
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
            "size": msize, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)


def main() -> int:
    if len(sys.argv) != 3 or sys.argv[1] not in LAYER_TREES:
        sys.exit(f"usage: oci_image.py {{{'|'.join(LAYER_TREES)}}} DIR")
    kind, out = sys.argv[1], sys.argv[2]
    if os.path.exists(os.path.join(out, "done")):
        return 0
    trees = LAYER_TREES[kind]
    print(f"[bench] building the image from {' '.join(trees)} (once)", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    write_layout(os.path.join(out, "oci"), trees)
    open(os.path.join(out, "done"), "w").close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
