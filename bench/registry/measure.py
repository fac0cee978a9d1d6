#!/usr/bin/env python3
"""The measuring half of bench/registry.sh: two running registries, one paired run.

usage: measure.py SPEC.json OUT.json

SPEC.json (written by registry.sh) names the registries (name, address, PID; the first is
the one under test, the second the baseline), the sections to run, the rounds, the wrk
duration, the concurrency, the image layout, the large blob's file, the scratch dir for pull
destinations and client caches, and the tools (wrk and its script, httpload).

1. idle RSS of each registry (VmRSS after a settle), before it has seen a request;
2. setup: the image is pushed to REPO:latest (timed: the one push into an empty registry,
   where every blob is new; the rounds' pushes upload blobs the registry already has in
   another repository) and the large blob to REPO on each, and every URL the rounds will
   hammer is checked to answer 200 with the right bytes;
3. ROUNDS paired rounds: for each metric the registries run back to back, the first one
   alternating every round, so slow drifts of a shared machine hit both alike;
4. peak RSS (VmHWM) of each registry over the whole run.
Writes every raw number to OUT.json (bench/registry/summary.py makes the table).

skopeo runs with a blob info cache of its own per process (XDG_DATA_HOME, and
_CONTAINERS_ROOTLESS_UID when root, since root's cache is always /var/lib/containers/cache):
with the shared cache, a push to a new repository mounts every layer from the repository
pushed before it (a 0.1 s push), and pushes must measure uploads.
"""
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = "bench/base"
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
])
# metric -> section (ONLY picks sections)
METRICS = {
    "push_1": "push", "push_n": "push",
    "pull_1": "pull", "pull_n": "pull",
    "manifest_head": "manifest", "manifest_get": "manifest",
    "small_blob": "blob", "large_blob": "blob",
}

CHILDREN = []  # live client processes, killed if we are


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    raise SystemExit(f"[bench] error: {msg}")


def proc_status(pid, field):
    """A /proc/PID/status field in kB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    fail(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid):
    """User + system CPU time of PID (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_all(argvs, envs, what):
    """Starts every command at once, waits for all; returns the wall time. Any failure aborts."""
    t0 = time.perf_counter()
    procs = []
    for argv, env in zip(argvs, envs):
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        CHILDREN.append(p)
    errors = [p.communicate()[1] for p in procs]
    t1 = time.perf_counter()
    for p, err in zip(procs, errors):
        CHILDREN.remove(p)
    for p, err in zip(procs, errors):
        if p.returncode != 0:
            fail(f"{what}: {' '.join(p.args)}: exit {p.returncode}: "
                 f"{err.decode(errors='replace').strip()[-1500:]}")
    return t1 - t0


class Bench:
    def __init__(self, spec):
        self.spec = spec
        self.regs = spec["registries"]
        self.work = spec["work"]
        self.layout = spec["layout"]
        self.conc = spec["concurrency"]
        self.config_digest = None
        self.config_size = None
        self.big_digest = None

    # ---- clients

    def skopeo_env(self):
        """A fresh, private blob info cache for one skopeo process (see the module doc)."""
        env = dict(os.environ)
        env["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="skopeo-", dir=self.work)
        if os.geteuid() == 0:
            env["_CONTAINERS_ROOTLESS_UID"] = "1"
        return env

    def remove_caches(self, envs):
        for env in envs:
            shutil.rmtree(env["XDG_DATA_HOME"], ignore_errors=True)

    def push(self, reg, repos):
        argvs = [["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                  f"oci:{self.layout}:latest", f"docker://{reg['addr']}/{repo}:latest"]
                 for repo in repos]
        envs = [self.skopeo_env() for _ in repos]
        try:
            seconds = run_all(argvs, envs, f"push to {reg['name']}")
            check_private_cache(envs[0]["XDG_DATA_HOME"])
            return seconds
        finally:
            self.remove_caches(envs)

    def pull(self, reg, count, tag):
        dests = [os.path.join(self.work, f"pull-{reg['name']}-{tag}-{k}") for k in range(count)]
        argvs = [["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                  f"docker://{reg['addr']}/{REPO}:latest", f"dir:{d}"] for d in dests]
        envs = [self.skopeo_env() for _ in dests]
        try:
            return run_all(argvs, envs, f"pull from {reg['name']}")
        finally:
            self.remove_caches(envs)
            for d in dests:
                shutil.rmtree(d, ignore_errors=True)

    def load(self, reg, tool, method, path, conns, accept=None):
        """One wrk or httpload run (see httpload.rs for when which); its JSON summary."""
        url = f"http://{reg['addr']}{path}"
        dur = str(self.spec["duration"])
        if tool == "wrk":
            # A 10 s timeout (wrk's default is 2 s): on a loaded 2-core machine a slow answer
            # is slow, not lost (httpload's read timeout is the same).
            argv = ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{dur}s", "--timeout", "10s",
                    "-s", self.spec["wrk_lua"], url]
            env = dict(os.environ, WRK_METHOD=method, WRK_ACCEPT=accept or "")
        else:
            argv = [self.spec["httpload"], method, url, str(conns), dur]
            argv += [f"Accept: {accept}"] if accept else []
            env = None
        r = subprocess.run(argv, env=env, capture_output=True, text=True)
        last = r.stdout.strip().splitlines()[-1:] if r.returncode == 0 else []
        if not last or not last[0].startswith("{"):
            fail(f"{' '.join(argv)}: exit {r.returncode}: {(r.stderr or r.stdout)[-1500:]}")
        out = json.loads(last[0])
        if out["requests"] == 0 or out["errors"]["status"]:
            fail(f"{method} {url}: {out['requests']} requests, {out['errors']['status']} "
                 f"with an error status: the setup is wrong")
        secs = out["duration_us"] / 1e6
        out["rps"] = out["requests"] / secs
        out["mbps"] = out["bytes"] / secs / 1e6
        return out

    # ---- setup

    def setup(self):
        with open(os.path.join(self.layout, "index.json")) as f:
            mdigest = json.load(f)["manifests"][0]["digest"]
        with open(os.path.join(self.layout, "blobs", "sha256", mdigest[7:]), "rb") as f:
            manifest = json.load(f)
        self.config_digest = manifest["config"]["digest"]
        self.config_size = manifest["config"]["size"]
        big = self.spec["big_blob"]
        with open(big, "rb") as f:
            self.big_digest = "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
        self.big_size = os.path.getsize(big)
        self.cold_push = {}
        for reg in self.regs:
            subprocess.run(["sync"])
            self.cold_push[reg["name"]] = self.push(reg, [REPO])
            push_monolithic(reg["addr"], REPO, big, self.big_digest)
            expect(reg["addr"], "HEAD", f"/v2/{REPO}/manifests/latest", MANIFEST_ACCEPT,
                   digest=mdigest)
            expect(reg["addr"], "GET", f"/v2/{REPO}/manifests/latest", MANIFEST_ACCEPT,
                   digest=mdigest)
            expect(reg["addr"], "GET", f"/v2/{REPO}/blobs/{self.config_digest}",
                   digest=self.config_digest)
            expect(reg["addr"], "GET", f"/v2/{REPO}/blobs/{self.big_digest}",
                   digest=self.big_digest)
        self.image = {"manifest": mdigest, "layers": len(manifest["layers"]),
                      "bytes": sum(l["size"] for l in manifest["layers"]) + self.config_size,
                      "config_bytes": self.config_size, "big_blob_bytes": self.big_size}

    # ---- one measurement

    def measure(self, metric, reg, rnd):
        n = self.conc
        if metric == "push_1":
            return {"seconds": self.push(reg, [f"bench/push-r{rnd}-1"])}
        if metric == "push_n":
            return {"seconds": self.push(reg, [f"bench/push-r{rnd}-n{k}" for k in range(n)])}
        if metric == "pull_1":
            return {"seconds": self.pull(reg, 1, f"r{rnd}")}
        if metric == "pull_n":
            return {"seconds": self.pull(reg, n, f"r{rnd}")}
        manifest = f"/v2/{REPO}/manifests/latest"
        if metric == "manifest_head":
            return self.load(reg, "httpload", "HEAD", manifest, 64, MANIFEST_ACCEPT)
        if metric == "manifest_get":
            return self.load(reg, "wrk", "GET", manifest, 64, MANIFEST_ACCEPT)
        if metric == "small_blob":
            return self.load(reg, "wrk", "GET", f"/v2/{REPO}/blobs/{self.config_digest}", 64)
        if metric == "large_blob":
            return self.load(reg, "httpload", "GET", f"/v2/{REPO}/blobs/{self.big_digest}", 8)
        raise ValueError(metric)

    def run(self):
        time.sleep(self.spec["settle"])
        idle = {r["name"]: proc_status(r["pid"], "VmRSS") for r in self.regs}
        log(f"idle RSS: " + ", ".join(f"{n} {kb / 1024:.1f} MB" for n, kb in idle.items()))
        log("setup: pushing the image and the large blob to each registry")
        self.setup()
        metrics = [m for m, s in METRICS.items() if s in self.spec["sections"]]
        raw = {m: {r["name"]: [] for r in self.regs} for m in metrics}
        orders = []
        for rnd in range(self.spec["rounds"]):
            order = self.regs if rnd % 2 == 0 else self.regs[::-1]
            orders.append([r["name"] for r in order])
            for metric in metrics:
                for reg in order:
                    subprocess.run(["sync"])  # nobody pays for the last one's writeback
                    cpu0 = cpu_seconds(reg["pid"])
                    out = self.measure(metric, reg, rnd)
                    out["registry_cpu_s"] = cpu_seconds(reg["pid"]) - cpu0
                    raw[metric][reg["name"]].append(out)
            log(f"round {rnd + 1}/{self.spec['rounds']}: " + "; ".join(
                f"{m} " + " ".join(f"{n} {short(raw[m][n][-1])}" for n in raw[m])
                for m in metrics))
        rss = {r["name"]: {"idle_kb": idle[r["name"]],
                           "peak_kb": proc_status(r["pid"], "VmHWM"),
                           "end_kb": proc_status(r["pid"], "VmRSS")} for r in self.regs}
        return {"spec": self.spec, "image": self.image, "order": orders,
                "rss": rss, "cold_push_s": self.cold_push, "metrics": raw}


def check_private_cache(xdg_data_home):
    """skopeo wrote its blob info cache where it was told: else it used the shared one, and a
    push may have mounted layers from an earlier push instead of uploading them."""
    cache = os.path.join(xdg_data_home, "containers", "cache")
    names = os.listdir(cache) if os.path.isdir(cache) else []
    if not any(n.startswith("blob-info-cache") for n in names):
        fail(f"skopeo left no blob info cache in {cache}: it ignored XDG_DATA_HOME "
             "(and _CONTAINERS_ROOTLESS_UID), so pushes may mount instead of upload")


def short(out):
    return f"{out['seconds']:.2f}s" if "seconds" in out else f"{out['rps']:.0f}/s"


def request(addr, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection(addr, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def push_monolithic(addr, repo, path, digest):
    """POST an upload session, then PUT the whole blob into it (the spec's monolithic push)."""
    status, headers, _ = request(addr, "POST", f"/v2/{repo}/blobs/uploads/")
    location = {k.lower(): v for k, v in headers.items()}.get("location")
    if status != 202 or not location:
        fail(f"POST /v2/{repo}/blobs/uploads/ on {addr}: {status}, location {location!r}")
    if location.startswith("http"):
        location = "/" + location.split("/", 3)[3]
    sep = "&" if "?" in location else "?"
    with open(path, "rb") as f:
        status, _, body = request(addr, "PUT", f"{location}{sep}digest={digest}",
                                  {"Content-Type": "application/octet-stream",
                                   "Content-Length": str(os.path.getsize(path))}, f)
    if status != 201:
        fail(f"PUT of {path} ({digest}) to {addr}/{repo}: {status} {body[:300]!r}")


def expect(addr, method, path, accept=None, digest=None):
    """The URL answers 200; a GET's body hashes to `digest`, a HEAD names it."""
    status, headers, body = request(addr, method, path, {"Accept": accept} if accept else {})
    if status != 200:
        fail(f"{method} {path} on {addr}: {status} {body[:300]!r}")
    got = ({k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
           if method == "HEAD" else "sha256:" + hashlib.sha256(body).hexdigest())
    if got != digest:
        fail(f"{method} {path} on {addr}: digest {got}, expected {digest}")


def main() -> int:
    spec_path, out_path = sys.argv[1:3]
    with open(spec_path) as f:
        spec = json.load(f)

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        result = Bench(spec).run()
    finally:
        for p in CHILDREN:
            p.kill()
    tmp = out_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.rename(tmp, out_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
