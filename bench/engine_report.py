#!/usr/bin/env python3
"""Turns the raw results of bench/engine.sh into its Markdown tables.

usage: engine_report.py RAW_DIR
RAW_DIR holds paired-run.json (bench/paired.py: gorae, docker-on-gorae, docker, podman),
idle.json ({"gorae","dockerd","containerd"}: VmRSS KB), per-container.json (quiet|chatty: engine:
[{rss, anon, pss} KB of each supervisor process]) and many.json (engine: {n, parallel, seconds, running, rss_kb,
mem_available_drop_kb}).
"""
import json
import os
import statistics
import sys


def load(raw, name):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def quart(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def ratio(t, a, b):
    r = [x / y for x, y in zip(t[a], t[b])]
    lo, mid, hi = quart(r)
    return f"**{mid:.2f}** ({lo:.2f}–{hi:.2f})"


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


def table(hdr, rows):
    out = ["| " + " | ".join(hdr) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def startup(p):
    t = p["times_ns"]
    med = {k: statistics.median(v) / 1e6 for k, v in t.items()}
    rows = [[f"`run --rm --network none IMG /bin/true` — median of {p['rounds']} paired rounds"]
            + [f"{med[k]:.1f} ms" for k in ("gorae", "docker-on-gorae", "docker", "podman")]
            + [ratio(t, "gorae", "docker"), ratio(t, "docker-on-gorae", "docker"),
               ratio(t, "gorae", "podman")]]
    hdr = ["What", "gorae CLI → gorae", "docker CLI → gorae", "docker CLI → dockerd",
           "podman", "gorae/docker", "docker CLI on gorae/docker", "gorae/podman"]
    return table(hdr, rows) + (
        "\n\nRatios: the **median of per-round ratios** (interquartile range in parentheses); "
        "each round runs the four commands once, the order rotated by one every round. "
        "Below 1.00: gorae is faster.")


def memory(idle, per):
    rows = []
    if idle:
        dk = idle["dockerd"] + idle["containerd"]
        rows.append(["idle daemon RSS", mib(idle["gorae"]),
                     f"{mib(dk)} (dockerd {mib(idle['dockerd'])} + containerd "
                     f"{mib(idle['containerd'])})", "no daemon",
                     f"{idle['gorae'] / dk:.3f}" if dk else "–"])
    for variant, what in (("quiet", "`sleep`"), ("chatty", "a line every 0.1 s")):
        v = (per or {}).get(variant)
        if not v:
            continue
        n = len(v.get("gorae", []))
        names = {"gorae": "monitor", "docker": "containerd-shim-runc-v2", "podman": "conmon"}
        for key, label in (("rss", "RSS"), ("anon", "anonymous RSS"), ("pss", "PSS")):
            med = {e: statistics.median([x[key] for x in v[e]]) if v.get(e) else 0
                   for e in names}
            rows.append([f"per running container ({what}): {label} of its supervisor, "
                         f"median of {n}"]
                        + [f"{med[e]:.0f} KB ({names[e]})" for e in names]
                        + [f"{med['gorae'] / med['docker']:.3f}" if med["docker"] else "–"])
    hdr = ["What", "gorae", "docker", "podman", "gorae/docker"]
    return table(hdr, rows)


def many(m):
    rows = []
    engines = [e for e in ("gorae", "docker", "podman") if e in m]
    first = m[engines[0]]
    what = f"{first['n']} × `run -d --network none IMG sleep`, {first['parallel']} at a time"
    rows.append([what + ": wall time"] + [f"{m[e]['seconds']:.1f} s" for e in engines])
    rows.append(["containers running afterwards"] + [str(m[e]["running"]) for e in engines])
    rows.append(["RSS of all the engine's processes (daemons + supervisors)"]
                + [mib(m[e]["rss_kb"]) for e in engines])
    rows.append(["drop of MemAvailable (kernel memory, page cache, everything)"]
                + [mib(m[e]["mem_available_drop_kb"]) for e in engines])
    hdr = ["What"] + engines
    if "gorae" in m and "docker" in m:
        hdr.append("gorae/docker")
        g, d = m["gorae"], m["docker"]
        for r, key in zip(rows, ("seconds", None, "rss_kb", "mem_available_drop_kb")):
            r.append(f"{g[key] / d[key]:.2f}" if key and d[key] else "–")
    return table(hdr, rows)


def main() -> int:
    raw = sys.argv[1]
    parts = []
    p = load(raw, "paired-run.json")
    if p:
        parts.append(startup(p))
    idle, per = load(raw, "idle.json"), load(raw, "per-container.json")
    if idle or per:
        parts.append(memory(idle, per))
    m = load(raw, "many.json")
    if m:
        parts.append(many(m))
    print("\n\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
