#!/usr/bin/env python3
"""Turns bench/registry/measure.py's raw JSON into bench/registry.sh's Markdown tables.

usage: summary.py RAW.json

The first registry in the run is the one under test (gorae), the second the baseline (CNCF).
Each row: the median over the rounds for each, and the median of the per-round ratios
test ÷ baseline with their range; for times and memory lower is better, for rates higher.
"""
import json
import statistics
import sys

# metric -> (label, field, unit, better, target from issue 7 or None)
ROWS = {
    "push_1": ("Push, 1 skopeo copy", "seconds", "s", "lower", None),
    "push_n": ("Push, {n} copies at once (to {n} repos)", "seconds", "s", "lower", None),
    "pull_1": ("Pull, 1 skopeo copy to dir:", "seconds", "s", "lower", None),
    "pull_n": ("Pull, {n} copies at once", "seconds", "s", "lower", None),
    "manifest_head": ("Manifest HEAD by tag, 64 conns", "rps", "req/s", "higher", 2.0),
    "manifest_get": ("Manifest GET by tag, 64 conns", "rps", "req/s", "higher", 2.0),
    "small_blob": ("Small blob GET ({config} B config), 64 conns", "rps", "req/s", "higher", 2.0),
    "large_blob": ("Large blob GET ({big} MiB), 8 conns", "mbps", "MB/s", "higher", 1.2),
}


def fmt(x, unit):
    if unit == "s":
        return f"{x:.2f} s"
    if unit == "MB":
        return f"{x:.1f} MB"
    return f"{x:,.0f} {unit}"


def ratio_cell(ratios, better, target):
    mid = statistics.median(ratios)
    cell = f"**{mid:.2f}**"
    if len(ratios) > 1:
        cell += f" ({min(ratios):.2f}–{max(ratios):.2f})"
    if target is not None:
        met = mid >= target if better == "higher" else mid <= target
        cell += " ✓" if met else " ✗"
    return cell


def target_cell(better, target):
    if target is None:
        return "–"
    return f"≥ {target:.1f}" if better == "higher" else f"≤ {target:.1f}"


def rounds(spec):
    n = spec["rounds"]
    return f"{n} paired round{'s' if n != 1 else ''}"


def cpu_per_unit(out):
    """Registry CPU per unit of work: seconds per push/pull round, µs per request."""
    if "seconds" in out:
        return out["registry_cpu_s"], "s"
    return out["registry_cpu_s"] / out["requests"] * 1e6, "µs/req"


def main() -> int:
    with open(sys.argv[1]) as f:
        raw = json.load(f)
    spec, image = raw["spec"], raw["image"]
    test, base = (r["name"] for r in spec["registries"])
    subst = {"n": spec["concurrency"], "config": image["config_bytes"],
             "big": image["big_blob_bytes"] // (1 << 20)}
    v = spec["versions"]
    test_cmd = spec["registries"][0]["cmd"].replace(spec["repo"] + "/", "")
    print(f"Registry benchmark, {spec['date']}, git {spec['git']}, {spec['cores']} cores, "
          f"kernel {spec['kernel']}: {rounds(spec)}, {spec['duration']} s per "
          f"load run.  ")
    print(f"{test} side: `{test_cmd}`; {base} side: docker-registry {v['docker-registry']} "
          f"(`bench/registry/cncf.sh`).  ")
    print(f"Image: {image['layers']} gzip layers, {image['bytes'] / 1e6:.0f} MB; clients: "
          f"skopeo {v['skopeo']}, wrk {v['wrk']} (-t2: manifest GET, small blob), "
          "bench/registry/httpload.rs (manifest HEAD, large blob).")
    print()
    head = ["What", "better", test, base, f"{test} ÷ {base} (range)", "target"]
    print("| " + " | ".join(head) + " |")
    print("|---|---|---:|---:|---:|---:|")
    cpu_rows, errors = [], []
    for metric, per_reg in raw["metrics"].items():
        label, field, unit, better, target = ROWS[metric]
        label = label.format(**subst)
        a = [o[field] for o in per_reg[test]]
        b = [o[field] for o in per_reg[base]]
        ratios = [x / y for x, y in zip(a, b)]
        print(f"| {label} | {better} | {fmt(statistics.median(a), unit)} | "
              f"{fmt(statistics.median(b), unit)} | {ratio_cell(ratios, better, target)} | "
              f"{target_cell(better, target)} |")
        if metric == "large_blob":
            rps = [statistics.median(o["rps"] for o in per_reg[n]) for n in (test, base)]
            print(f"| … the same in requests | higher | {rps[0]:.1f} req/s | {rps[1]:.1f} req/s "
                  f"| | |")
        ca = [cpu_per_unit(o) for o in per_reg[test]]
        cb = [cpu_per_unit(o) for o in per_reg[base]]
        cpu_rows.append((label, ca[0][1], [x[0] for x in ca], [x[0] for x in cb]))
        for name in (test, base):
            bad = {}
            for o in per_reg[name]:
                for kind, count in o.get("errors", {}).items():
                    if count:
                        bad[kind] = bad.get(kind, 0) + count
            if bad:
                errors.append(f"{label}, {name}: socket errors over all rounds: "
                              + ", ".join(f"{n} {k}" for k, n in bad.items()))
    if "cold_push_s" in raw:
        a, b = raw["cold_push_s"][test], raw["cold_push_s"][base]
        print(f"| First push, into the empty registry (one sample, {test} first) | lower | "
              f"{fmt(a, 's')} | {fmt(b, 's')} | {ratio_cell([a / b], 'lower', None)} | – |")
    for key, label in (("idle_kb", "Idle RSS (after start, before any request)"),
                       ("peak_kb", "Peak RSS over the whole run (VmHWM)")):
        a, b = raw["rss"][test][key] / 1024, raw["rss"][base][key] / 1024
        print(f"| {label} | lower | {fmt(a, 'MB')} | {fmt(b, 'MB')} | "
              f"{ratio_cell([a / b], 'lower', 0.5)} | ≤ 0.5 |")
    print()
    print(f"Registry CPU time per unit of work (user + system, from /proc; less noisy than "
          f"wall time on a shared machine), medians:")
    print()
    print(f"| What | unit | {test} | {base} | {test} ÷ {base} (lower is better) |")
    print("|---|---|---:|---:|---:|")
    for label, unit, a, b in cpu_rows:
        ratios = [x / y for x, y in zip(a, b) if y > 0]
        cell = ratio_cell(ratios, "lower", None) if ratios else "–"
        digits = 2 if unit == "s" else 0
        print(f"| {label} | {unit} | {statistics.median(a):.{digits}f} | "
              f"{statistics.median(b):.{digits}f} | {cell} |")
    print()
    print(f"Ratios are the **median of the per-round ratios** {test} ÷ {base} over "
          f"{rounds(spec)} (the first registry alternating each round), "
          "range in parentheses; ✓/✗ against issue 7's targets. Times and memory: lower is "
          f"better; rates: higher is better. The first-push and memory rows are one sample "
          "each (one start of each registry).")
    for e in errors:
        print(f"\nNote: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
