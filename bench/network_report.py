#!/usr/bin/env python3
"""Turns the raw results of bench/network.sh into its Markdown tables.

usage: network_report.py RAW_DIR
RAW_DIR holds paired-run.json (bench/paired.py: <engine>-default and <engine>-none for gorae,
docker, podman) and iperf.json ({"seconds", "runs", "host_ip", "ports": {engine: port},
"bps": {engine: {"127.0.0.1": [bits/s...], "host": [bits/s...]}}}).
"""
import json
import os
import statistics
import sys

ENGINES = ("gorae", "docker", "podman")


def load(raw, name):
    path = os.path.join(raw, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def table(hdr, rows):
    out = ["| " + " | ".join(hdr) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(hdr) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def ratio(xs, ys):
    r = [x / y for x, y in zip(xs, ys)]
    q = statistics.quantiles(r, n=4, method="inclusive")
    return f"**{q[1]:.2f}** ({q[0]:.2f}–{q[2]:.2f})"


def startup(p):
    t = p["times_ns"]
    rows = []
    for net, what in (("default", "default network (bridge)"), ("none", "`--network none`")):
        keys = [f"{e}-{net}" for e in ENGINES]
        if not all(k in t for k in keys):
            continue
        med = [statistics.median(t[k]) / 1e6 for k in keys]
        rows.append([f"`run --rm IMG /bin/true`, {what}"]
                    + [f"{m:.1f} ms" for m in med]
                    + [ratio(t[keys[0]], t[keys[1]]), ratio(t[keys[2]], t[keys[1]])])
    # The network's own cost: per round, default minus none, in each engine.
    if all(f"{e}-{n}" in t for e in ENGINES for n in ("default", "none")):
        cost = {e: [a - b for a, b in zip(t[f"{e}-default"], t[f"{e}-none"])] for e in ENGINES}
        med = {e: statistics.median(v) / 1e6 for e, v in cost.items()}
        rows.append(["cost of the default network: median per round of (default − none)"]
                     + [f"{med[e]:+.1f} ms" for e in ENGINES]
                     + [f"{med['gorae'] / med['docker']:.2f}" if med["docker"] > 0 else "–",
                        f"{med['podman'] / med['docker']:.2f}" if med["docker"] > 0 else "–"])
    hdr = ["What", "gorae", "docker", "podman", "gorae/docker", "podman/docker"]
    return table(hdr, rows) + (
        f"\n\nMedians of {p['rounds']} paired rounds (+{p['warmup']} warm-up); each round runs "
        "the six commands once, the order rotated by one every round. Ratios: the **median of "
        "per-round ratios** (interquartile range in parentheses); below 1.00 gorae is faster.")


def gbit(xs):
    return statistics.median(xs) / 1e9 if xs else None


def throughput(ip):
    bps = ip["bps"]
    rows = []
    for addr, what in (("127.0.0.1", "127.0.0.1"), ("host", f"host address {ip['host_ip']}")):
        med = {e: gbit(bps.get(e, {}).get(addr, [])) for e in ENGINES}
        cells = [f"{med[e]:.2f} Gbit/s" if med[e] is not None else "failed" for e in ENGINES]
        rng = []
        for e in ENGINES:
            xs = bps.get(e, {}).get(addr, [])
            rng.append(f"{min(xs) / 1e9:.2f}–{max(xs) / 1e9:.2f}" if xs else "–")
        g, d = med["gorae"], med["docker"]
        rows.append([f"iperf3 host → container via {what}:port"]
                    + [f"{c} ({r})" for c, r in zip(cells, rng)]
                    + [f"**{g / d:.2f}**" if g and d else "–"])
    hdr = ["What", "gorae", "docker", "podman", "gorae/docker"]
    ports = ip["ports"]
    return table(hdr, rows) + (
        f"\n\nTCP, one stream, `iperf3 -c ADDR -p PORT -t {ip['seconds']}` from the host, "
        f"`iperf3 -s` in the container published with `-p PORT:5201` (gorae {ports['gorae']}, "
        f"docker {ports['docker']}, podman {ports['podman']}); median of {ip['runs']} runs "
        "(min–max), the engines' order rotated every run. Above 1.00 gorae is faster.")


def main() -> int:
    raw = sys.argv[1]
    parts = []
    p = load(raw, "paired-run.json")
    if p:
        parts.append("## Container start on the default network\n\n" + startup(p))
    ip = load(raw, "iperf.json")
    if ip:
        parts.append("## Throughput through a published port\n\n" + throughput(ip))
    print("\n\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
