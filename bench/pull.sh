#!/usr/bin/env bash
# Side-by-side pull benchmark: gorae (pull + unpack) vs `skopeo copy docker://… oci:`
# (download only) vs `podman pull` (download + unpack), all from one local registry.
# Run as root:
#
#     sudo bench/pull.sh
#
# What it does (see BENCHMARKS.md, "Pull"):
#   1. builds the test image once, cached in $BENCH_DIR/image: an OCI layout of six gzip
#      layers (GNU tar, zlib level 6) of real host trees (compilers, headers, python,
#      locales, docs, git), about 200 MB compressed;
#   2. starts docker-registry (CNCF distribution 2.8) on 127.0.0.1 with its storage in
#      $BENCH_DIR/registry and pushes the image there with skopeo;
#   3. a paired, alternating loop: each round runs every tool once into a new, empty
#      destination, the order rotated every round, and records wall time. Destinations
#      are on a new loop-mounted ext4 made for the run, and deleted only at the end: on
#      this machine's own disk (ext4 without a journal), creating inodes within minutes
#      of deleting thousands is several times slower (ext4's recently_deleted() scan was
#      >50% of a pull's time when each run wiped the last one), which would measure the
#      benchmark's own cleanup rather than the tools; prints the medians and the median per-round ratios, and writes
#      them to bench/results/pull-DATE.md (raw times beside it, as JSON);
#   4. stops the registry and removes the destinations, also on failure or Ctrl-C.
#
# Knobs (environment): ROUNDS (7), WARMUP (1), BENCH_DIR (/var/tmp/gorae-bench-pull),
# IMAGE_KIND (files: real host trees, the default; binaries: big Go binaries, see below),
# BENCH_FS (loop: a fresh ext4 image for the destinations; anything else: /var/tmp),
# ONLY (a subset of the tools, e.g. "gorae skopeo", for quick looks; ratios need all three),
# GORAE_PULL (the command the destination root and the reference are appended to; default:
# `target/.../release/gorae --root` if it has `pull`, else the library's `examples/pull
# --root`), RESULTS_DIR (bench/results), PORT (free port).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-7}
WARMUP=${WARMUP:-1}
BENCH_DIR=${BENCH_DIR:-/var/tmp/gorae-bench-pull}
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
PORT=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}
IMAGE=127.0.0.1:$PORT/bench/pull:latest
# The test image (bench/oci_image.py): IMAGE_KIND=files, six layers of real host trees (the
# default), or binaries, six layers of big static Go binaries (few files, less compressible:
# closer to images whose pull cost is mostly the download, like the one PEERS.md measured).
IMAGE_KIND=${IMAGE_KIND:-files}
case $IMAGE_KIND in
files) ;;
binaries) BENCH_DIR=${BENCH_DIR%/}-bin ;;  # short: podman refuses a runroot over 50 characters
*) echo "IMAGE_KIND must be files or binaries" >&2; exit 1 ;;
esac

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || die "run as root (podman and gorae write owners and devices)"
for tool in docker-registry skopeo podman python3 tar; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install docker-registry skopeo podman)"
done

find_gorae() {
    if [[ -n ${GORAE_PULL:-} ]]; then
        echo "$GORAE_PULL"
        return
    fi
    local target=$REPO/target/x86_64-unknown-linux-gnu/release
    (cd "$REPO" && cargo build --release -q -p gorae -p gorae-image --example pull >&2) || true
    if [[ -x $target/gorae ]] && "$target/gorae" pull --help >/dev/null 2>&1; then
        echo "$target/gorae --root"  # `gorae --root DIR pull REF`
    else
        echo "$target/examples/pull --root"
    fi
}

build_image() {
    python3 "$HERE/oci_image.py" "$IMAGE_KIND" "$BENCH_DIR/image"
}

REGISTRY_PID=
WORK=
MOUNTED=
cleanup() {
    # No errexit here: a failing step (wait returns the registry's signal status) must not
    # skip the unmount, or the deleted image keeps its disk space.
    set +e
    if [[ -n $REGISTRY_PID ]]; then
        kill "$REGISTRY_PID" 2>/dev/null
        wait "$REGISTRY_PID" 2>/dev/null
    fi
    if [[ -n $MOUNTED ]]; then
        umount "$MOUNTED" || umount -l "$MOUNTED"
        rm -f "$BENCH_DIR/fs.img"
        rmdir "$MOUNTED"
    elif [[ -n $WORK ]]; then
        log "removing $WORK"
        rm -rf "$WORK"
    fi
    return 0
}

# The destinations live on a new ext4 (loop-mounted, default options, with a journal) made
# for this run, so every tool starts from the same empty filesystem whatever state the
# host's disk is in.
make_work_dir() {
    if [[ ${BENCH_FS:-loop} != loop ]]; then
        WORK=$(mktemp -d /var/tmp/gorae-bench-pull-run.XXXXXX)
        return
    fi
    local size=$(( (ROUNDS + WARMUP) * 2 + 4 ))
    local avail
    avail=$(df -BG --output=avail "$BENCH_DIR" | tail -1 | tr -dc 0-9)
    (( avail > size + 5 )) || die "need about ${size} GB free in $BENCH_DIR, have ${avail} GB"
    # A run killed hard may have left its filesystem mounted: unmount it, or deleting the
    # image would not free its space.
    while mountpoint -q "$BENCH_DIR/mnt"; do umount "$BENCH_DIR/mnt" || die "cannot unmount $BENCH_DIR/mnt"; done
    rm -f "$BENCH_DIR/fs.img"
    truncate -s "${size}G" "$BENCH_DIR/fs.img"
    mkfs.ext4 -q -F "$BENCH_DIR/fs.img"
    mkdir -p "$BENCH_DIR/mnt"
    mount -o loop "$BENCH_DIR/fs.img" "$BENCH_DIR/mnt"
    MOUNTED=$BENCH_DIR/mnt
    WORK=$MOUNTED
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_registry() {
    mkdir -p "$BENCH_DIR/registry/storage"
    # The configuration bench/registry.sh measures the CNCF registry with (errors-only log).
    "$HERE/registry/cncf.sh" "127.0.0.1:$PORT" "$BENCH_DIR/registry/storage" "$BENCH_DIR/registry" \
        >"$BENCH_DIR/registry/log" 2>&1 &
    REGISTRY_PID=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null && return
        sleep 0.1
    done
    die "registry did not start: $(cat "$BENCH_DIR/registry/log")"
}

mkdir -p "$BENCH_DIR" "$RESULTS_DIR"
GORAE_PULL=$(find_gorae)
build_image
start_registry
skopeo copy --quiet --dest-tls-verify=false "oci:$BENCH_DIR/image/oci:latest" "docker://$IMAGE"
SIZE=$(skopeo inspect --raw --tls-verify=false "docker://$IMAGE" |
    python3 -c 'import json,sys; m=json.load(sys.stdin); print(len(m["layers"]), sum(l["size"] for l in m["layers"]))')
log "image: $IMAGE, ${SIZE% *} layers, $(( ${SIZE#* } / 1000000 )) MB compressed"

make_work_dir
STAMP=$(date -u +%Y-%m-%d-%H%M%S)
OUT=$RESULTS_DIR/pull-$STAMP
mkdir -p "$OUT"
# name|command; DEST in the command is replaced by a fresh directory for each run.
TOOLS=(
    "gorae|$GORAE_PULL DEST $IMAGE"
    "skopeo|skopeo copy --quiet --src-tls-verify=false docker://$IMAGE oci:DEST:latest"
    "podman|podman --root DEST/root --runroot DEST/run --storage-driver overlay pull --quiet --tls-verify=false $IMAGE"
)
# `gorae --root DIR pull REF` when the CLI is used: put the subcommand after the root.
if [[ $GORAE_PULL == *"/gorae --root" ]]; then
    TOOLS[0]="gorae|$GORAE_PULL DEST pull --quiet $IMAGE"
fi
if [[ -n ${ONLY:-} ]]; then
    kept=()
    for t in "${TOOLS[@]}"; do [[ " $ONLY " == *" ${t%%|*} "* ]] && kept+=("$t"); done
    TOOLS=("${kept[@]}")
fi
need=$(( (ROUNDS + WARMUP) * 2 ))
avail=$(df -BG --output=avail "$WORK" | tail -1 | tr -dc 0-9)
(( avail > need )) || die "need about ${need} GB free in $WORK, have ${avail} GB"

python3 - "$ROUNDS" "$WARMUP" "$OUT/times.json" "$WORK" "${TOOLS[@]}" >"$OUT.md.tmp" <<'EOF'
import json, os, statistics, subprocess, sys, time
rounds, warmup, out, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
tools = [t.split("|", 1) for t in sys.argv[5:]]
times = {name: [] for name, _ in tools}
for i in range(warmup + rounds):
    for k in range(len(tools)):
        name, cmd = tools[(i + k) % len(tools)]
        dest = os.path.join(work, f"{name}-{i}")
        # Everything written so far goes to disk first, untimed, so no run pays for
        # another's writeback.
        subprocess.run(["sync"])
        t0 = time.perf_counter()
        r = subprocess.run(cmd.replace("DEST", dest).split(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        if r.returncode != 0:
            sys.exit(f"{name}: {cmd}: exit {r.returncode}: {r.stderr.decode()[-2000:]}")
        if i >= warmup:
            times[name].append(t1 - t0)
    print(f"round {i + 1}/{warmup + rounds}: " + ", ".join(
        f"{n} {times[n][-1]:.2f}s" for n in times if times[n] and i >= warmup), file=sys.stderr)
json.dump(times, open(out, "w"), indent=1)
med = {n: statistics.median(v) for n, v in times.items()}
def ratio(a, b):
    if a not in times or b not in times:
        return float("nan")
    return statistics.median(x / y for x, y in zip(times[a], times[b]))
print("| tool | what it does | median | min | max |")
print("|---|---|---|---|---|")
what = {"gorae": "download + verify + unpack (usable image)",
        "skopeo": "download + verify only (OCI layout)",
        "podman": "download + verify + unpack (usable image)"}
for n, v in times.items():
    print(f"| {n} | {what[n]} | {med[n]:.2f} s | {min(v):.2f} s | {max(v):.2f} s |")
print()
print(f"Median of per-round ratios ({rounds} rounds): "
      f"gorae/skopeo **{ratio('gorae', 'skopeo'):.2f}**, gorae/podman **{ratio('gorae', 'podman'):.2f}** "
      f"(targets: ≤ 1.00 and < 0.40).")
EOF
{
    echo "Pull of $IMAGE (${SIZE% *} gzip layers, $(( ${SIZE#* } / 1000000 )) MB compressed), $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$REPO" rev-parse --short HEAD), $(nproc) cores"
    echo
    cat "$OUT.md.tmp"
} >"$OUT.md"
rm -f "$OUT.md.tmp"
cat "$OUT.md"
log "written to $OUT.md"
