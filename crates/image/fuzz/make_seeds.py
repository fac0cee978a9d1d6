#!/usr/bin/env python3
"""Writes the seed corpus for the `unpack` target: small layer tars covering every entry type,
whiteouts, PAX xattrs, long names, sparse files, gzip/zstd, and hostile tricks aimed at the
fuzz target's sentinel directory. Run from crates/image/fuzz; `cargo fuzz cmin` keeps what
adds coverage."""
import gzip, io, os, subprocess, tarfile, tempfile

SENTINEL = "/dev/shm/gorae-fuzz-unpack/sentinel"
OUT = "corpus/unpack"


def tar(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1600000000
            data = b""
            if kind == "file":
                data = extra or b""
                info.size = len(data)
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, extra
            elif kind == "hard":
                info.type, info.linkname = tarfile.LNKTYPE, extra
            elif kind == "chr":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                info.type = tarfile.FIFOTYPE
            elif kind == "pax":
                info.size = len(b"x")
                info.pax_headers = extra
                data = b"x"
            t.addfile(info, io.BytesIO(data) if data else None)
    return trim(buf.getvalue())


def trim(tar_bytes):
    """Drops the zero padding past the end-of-archive marker: smaller seeds."""
    body = tar_bytes.rstrip(b"\0")
    body += b"\0" * (-len(body) % 512)
    return body + b"\0" * 1024


def raw_name(tar_bytes, old, new):
    """Renames an entry in place (names tarfile would refuse), fixing the checksum."""
    b = bytearray(tar_bytes)
    i = b.index(old.ljust(100, b"\0")[:100])
    b[i : i + 100] = new.ljust(100, b"\0")[:100]
    b[i + 148 : i + 156] = b"        "
    b[i + 148 : i + 156] = b"%06o\0 " % sum(b[i : i + 512])
    return bytes(b)


seeds = {
    "basic": tar([("./", "dir", None), ("bin", "dir", None), ("bin/busybox", "file", b"#!bb"),
                  ("bin/sh", "sym", "/bin/busybox"), ("bin/ls", "hard", "bin/busybox"),
                  ("dev/null", "chr", None), ("run/fifo", "fifo", None)]),
    "whiteouts": tar([("a/.wh..wh..opq", "file", b""), ("a/b", "file", b"b"), (".wh.gone", "file", b""),
                      (".wh..wh.plnk", "file", b"")]),
    "pax": tar([("caps", "pax", {"SCHILY.xattr.security.capability":
                                 "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12,
                                 "SCHILY.xattr.user.x": "y", "mtime": "1600000000.5"})],
               tarfile.PAX_FORMAT),
    "long": tar([("d/" * 70 + "file", "file", b"long"), ("l", "sym", "t/" * 80)]),
    "replace": tar([("x", "file", b"1"), ("x", "dir", None), ("x/y", "file", b"2"), ("x", "file", b"3")]),
    "escape-symlink": tar([("evil", "sym", SENTINEL), ("evil/pwned", "file", b"pwned")]),
    "escape-symlink-rel": tar([("up", "sym", "../../.."), ("up/sentinel/etc/passwd", "file", b"x")]),
    "escape-hardlink": tar([("h", "hard", SENTINEL + "/etc/passwd"), ("h2", "hard", "../../sentinel/etc/passwd")]),
    "escape-dotdot": raw_name(tar([("aaaa", "file", b"pwned")]), b"aaaa", b"../../sentinel/x"),
    "escape-abs": raw_name(tar([("bbbb", "file", b"pwned")]), b"bbbb", SENTINEL.encode() + b"/y"),
}
with tempfile.TemporaryDirectory() as d:
    with open(os.path.join(d, "sparse"), "wb") as f:
        f.write(b"head")
        f.seek(3 << 20)
        f.write(b"tail")
    seeds["sparse"] = subprocess.run(["tar", "-C", d, "--sparse", "-cf", "-", "sparse"],
                                     check=True, capture_output=True).stdout
    seeds["sparse"] = trim(seeds["sparse"])
seeds["basic.gz"] = gzip.compress(seeds["basic"])
seeds["basic.zst"] = subprocess.run(["zstd", "-q", "-c"], input=seeds["basic"],
                                    check=True, capture_output=True).stdout
os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(len(seeds), "seeds,", sum(map(len, seeds.values())), "bytes")
