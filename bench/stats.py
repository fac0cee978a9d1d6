#!/usr/bin/env python3
"""Turns the raw results of bench/runtime.sh into its Markdown table.

usage: stats.py HYPERFINE.json PAIRED_RUN.json PAIRED_CYCLE.json RSS.json [PAIRED_EXEC.json]
Names in the inputs are gorae, crun, runc (hyperfine: "run gorae", "cycle crun"...).
"""
import json
import statistics
import sys

RT = ["gorae", "crun", "runc"]


def quart(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def ms(ns):
    return ns / 1e6


def main() -> int:
    hf, prun, pcyc, rss = (json.load(open(p)) for p in sys.argv[1:5])
    hres = {r["command"]: r for r in hf["results"]}
    rows = []

    def hrow(what, key):
        med = {rt: hres[f"{key} {rt}"]["median"] * 1e3 for rt in RT}
        cells = [f"{med[rt]:.2f} ms" for rt in RT]
        rat = [f"{med['gorae'] / med[o]:.2f}" for o in ("crun", "runc")]
        rows.append([what] + cells + rat)

    def prow(what, p):
        t = p["times_ns"]
        med = {rt: statistics.median(t[rt]) for rt in RT}
        cells = [f"{ms(med[rt]):.2f} ms" for rt in RT]
        rat = []
        for o in ("crun", "runc"):
            r = [g / x for g, x in zip(t["gorae"], t[o])]
            lo, mid, hi = quart(r)
            rat.append(f"**{mid:.2f}** ({lo:.2f}–{hi:.2f})")
        rows.append([what] + cells + rat)

    hrow(f"`run` /bin/true — hyperfine median ({hres['run gorae']['times'].__len__()} runs)", "run")
    hrow("create+start+delete — hyperfine median", "cycle")
    for what, key in (("`run` /bin/true — hyperfine min", "run"),
                      ("create+start+delete — hyperfine min", "cycle")):
        mn = {rt: hres[f"{key} {rt}"]["min"] * 1e3 for rt in RT}
        rows.append([what] + [f"{mn[rt]:.2f} ms" for rt in RT]
                    + [f"{mn['gorae'] / mn[o]:.2f}" for o in ("crun", "runc")])
    prow(f"`run` /bin/true — paired loop median ({len(prun['times_ns']['gorae'])} rounds)", prun)
    prow("create+start+delete — paired loop median", pcyc)
    if len(sys.argv) > 5:
        prow("`exec` /bin/true into a running container — paired loop median",
             json.load(open(sys.argv[5])))
    med = {rt: statistics.median(rss[rt]) for rt in RT}
    rows.append([f"peak RSS of `run` /bin/true — median of {len(rss['gorae'])} (KB)"]
                + [f"{med[rt]:.0f} KB" for rt in RT]
                + [f"{med['gorae'] / med[o]:.2f}" for o in ("crun", "runc")])

    hdr = ["What", "gorae-runc", "crun", "runc", "gorae/crun", "gorae/runc"]
    print("| " + " | ".join(hdr) + " |")
    print("|" + "|".join(["---"] + ["---:"] * 5) + "|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print("Ratios: hyperfine rows and the RSS row are ratios of medians (of minimums in the min rows); paired rows are "
          "the **median of per-round ratios** (interquartile range of those ratios in "
          "parentheses). Below 1.00 means gorae-runc is faster / smaller.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
