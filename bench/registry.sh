#!/usr/bin/env bash
# Side-by-side registry benchmark: `gorae registry serve` vs the CNCF registry (Debian
# docker-registry, distribution 2.8), both started fresh by this script, in one run, on the
# same files with the same clients:
#
#     bench/registry.sh                      # ROUNDS=5, about 10 minutes
#     ROUNDS=1 ONLY=manifest bench/registry.sh   # a quick look
#
# What it measures (issue 7, "Benchmark"):
#   - push of the ~200 MB six-layer image (bench/oci_image.py, cached in $BENCH_DIR/image)
#     with `skopeo copy oci:… docker://…`, one copy, then CONCURRENCY copies at once to as
#     many new repositories (a new name every time, so nothing is skipped);
#   - pull of it with `skopeo copy docker://… dir:…`, one copy, then CONCURRENCY at once,
#     into $PULL_DIR (tmpfs by default), deleted after each measurement;
#   - manifest HEAD and GET by tag at 64 connections, the image's config blob (~1 KB) at 64
#     connections (GETs with wrk -t2 and bench/registry/wrk.lua), a random 40 MiB blob at 8
#     connections (requests/s and MB/s); HEAD and the large blob with bench/registry/
#     httpload.rs, built here with rustc (wrk 4.1 hangs on HEAD responses, and its 8 KiB
#     reads cap a large blob's rate below what a registry can send);
#   - idle RSS after start and peak RSS (VmHWM) over the whole run; and from /proc, the CPU
#     time each registry spent on each measurement.
# ROUNDS paired rounds: per metric both registries run back to back, the first alternating
# every round. Prints the medians and the median per-round ratios gorae ÷ CNCF, writes them
# to bench/results/registry-DATE.md, every raw number beside it in registry-DATE.json.
# Storage roots are separate dirs in $BENCH_DIR/run (same filesystem), removed at the end;
# registry logs stay in $BENCH_DIR/logs. Root is not needed.
#
# Knobs (environment): ROUNDS (5), ONLY (sections: push pull manifest blob; default all),
# DURATION (seconds per wrk/httpload run, 5), CONCURRENCY (32), BENCH_DIR
# (/var/tmp/gorae-bench-registry), PULL_DIR (/dev/shm), RESULTS_DIR (bench/results),
# SETTLE (seconds between start and the idle RSS reading, 2), GORAE_REGISTRY_CMD (the
# command that serves gorae's side, a template with {addr} {root} {dir}: {dir} is a scratch
# dir holding gorae.toml; default: `target/…/release/gorae registry serve --addr {addr}
# --root {root} --config {dir}/gorae.toml`, built first). With
# GORAE_REGISTRY_CMD='bench/registry/cncf.sh {addr} {root} {dir}' both sides are the CNCF
# registry: an A/A run, which shows the harness's own noise (every ratio should be near 1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROUNDS=${ROUNDS:-5}
ONLY=${ONLY:-push pull manifest blob}
DURATION=${DURATION:-5}
CONCURRENCY=${CONCURRENCY:-32}
BENCH_DIR=${BENCH_DIR:-/var/tmp/gorae-bench-registry}
PULL_DIR=${PULL_DIR:-/dev/shm}
RESULTS_DIR=${RESULTS_DIR:-$REPO/bench/results}
SETTLE=${SETTLE:-2}
CNCF_CMD="$HERE/registry/cncf.sh {addr} {root} {dir}"
GORAE_BIN=$REPO/target/x86_64-unknown-linux-gnu/release/gorae

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

for tool in docker-registry skopeo wrk rustc python3 tar curl sync; do
    command -v "$tool" >/dev/null ||
        die "$tool not found (apt-get install docker-registry skopeo wrk python3 curl; rustc from rustup)"
done
for s in $ONLY; do
    [[ $s == @(push|pull|manifest|blob) ]] || die "ONLY: unknown section $s (push pull manifest blob)"
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ && $CONCURRENCY =~ ^[1-9][0-9]*$ && $DURATION =~ ^[1-9][0-9]*$ ]] ||
    die "ROUNDS, CONCURRENCY and DURATION must be positive integers"

RUN=$BENCH_DIR/run
WORK=
MEASURE_PID=
PIDS=()
# TERM, and KILL if that has not ended it in 5 s (a server draining a connection of a client
# that was killed mid-request must not hang the cleanup).
stop() {
    kill "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do
        [[ $(ps -o stat= -p "$1") == @(|Z*) ]] && break  # gone, or a zombie to reap
        sleep 0.1
    done
    kill -9 "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
cleanup() {
    # No errexit here: one failing step must not skip the rest of the cleanup.
    set +e
    [[ -n $MEASURE_PID ]] && stop "$MEASURE_PID"  # first: it kills its clients
    for pid in "${PIDS[@]}"; do stop "$pid"; done
    [[ -n $WORK ]] && rm -rf "$WORK"
    rm -rf "$RUN"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The gorae side's command template; builds gorae unless another command was given.
gorae_cmd() {
    if [[ -n ${GORAE_REGISTRY_CMD:-} ]]; then
        echo "$GORAE_REGISTRY_CMD"
        return
    fi
    (cd "$REPO" && cargo build --release -q -p gorae >&2) || die "cargo build --release -p gorae failed"
    "$GORAE_BIN" registry serve --help >/dev/null 2>&1 ||
        die "$GORAE_BIN has no 'registry serve' yet (GORAE_REGISTRY_CMD='bench/registry/cncf.sh {addr} {root} {dir}' runs CNCF against itself)"
    echo "$GORAE_BIN registry serve --addr {addr} --root {root} --config {dir}/gorae.toml"
}

free_ports() {
    python3 -c 'import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))'
}

# start NAME TEMPLATE PORT: a fresh root, the command started with the registry's own PID
# (the templates exec), then waits for /v2/ to answer 200. Sets START_PID.
start_registry() {
    local name=$1 template=$2 addr=127.0.0.1:$3
    local dir=$RUN/$name
    mkdir -p "$dir/root" "$BENCH_DIR/logs"
    echo 'log = "error"' >"$dir/gorae.toml"
    local cmd=${template//\{addr\}/$addr}
    cmd=${cmd//\{root\}/$dir/root}
    cmd=${cmd//\{dir\}/$dir}
    local argv
    read -ra argv <<<"$cmd"
    "${argv[@]}" >"$BENCH_DIR/logs/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do
        if ! kill -0 "$pid" 2>/dev/null; then
            local status=0
            wait "$pid" || status=$?
            die "$name ($cmd) exited with status $status: $(tail -3 "$BENCH_DIR/logs/$name.log")"
        fi
        [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/") == 200 ]] && {
            START_PID=$pid
            return
        }
        sleep 0.1
    done
    die "$name ($cmd) did not answer on http://$addr/v2/ in 10 s: $(tail -3 "$BENCH_DIR/logs/$name.log")"
}

# free space: the roots hold CONCURRENCY uploads at once; the pulls CONCURRENCY copies.
check_space() {
    local dir=$1 need_mb=$2 what=$3 avail
    avail=$(df -BM --output=avail "$dir" | tail -1 | tr -dc 0-9)
    (( avail > need_mb )) || die "$what needs about $need_mb MB free in $dir, has $avail MB"
    if [[ $(stat -f -c %T "$dir") == tmpfs ]]; then
        avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
        (( avail > need_mb + 2048 )) ||
            die "$what needs about $need_mb MB of memory in tmpfs $dir, $avail MB available (set PULL_DIR=/var/tmp)"
    fi
}

# The image, the large blob and httpload (each made once per BENCH_DIR); free space.
prepare() {
    python3 "$HERE/oci_image.py" files "$BENCH_DIR/image"
    [[ -f $BENCH_DIR/big.blob ]] || head -c $((40 << 20)) /dev/urandom >"$BENCH_DIR/big.blob"
    [[ $BENCH_DIR/httpload -nt $HERE/registry/httpload.rs ]] ||
        rustc --edition 2021 -O -o "$BENCH_DIR/httpload" "$HERE/registry/httpload.rs" ||
        die "rustc could not build bench/registry/httpload.rs"
    IMAGE_MB=$(( $(du -sm "$BENCH_DIR/image/oci" | cut -f1) + 1 ))
    check_space "$BENCH_DIR" $(( (CONCURRENCY + 4) * IMAGE_MB * 11 / 10 )) "the registries' roots"
    if [[ " $ONLY " == *" pull "* ]]; then
        check_space "$PULL_DIR" $(( (CONCURRENCY + 1) * IMAGE_MB * 11 / 10 )) "pulls at concurrency $CONCURRENCY"
    fi
}

# The run's description for measure.py (and, through the raw JSON, for summary.py).
write_spec() {
    python3 - "$1" <<EOF
import json, sys
json.dump({
    "registries": [
        {"name": "gorae", "addr": "127.0.0.1:$GORAE_PORT", "pid": $GORAE_PID, "cmd": """$GORAE_TEMPLATE"""},
        {"name": "cncf", "addr": "127.0.0.1:$CNCF_PORT", "pid": $CNCF_PID, "cmd": """$CNCF_CMD"""},
    ],
    "sections": "$ONLY".split(), "rounds": $ROUNDS, "duration": $DURATION,
    "concurrency": $CONCURRENCY, "settle": $SETTLE,
    "layout": "$BENCH_DIR/image/oci", "big_blob": "$BENCH_DIR/big.blob", "work": "$WORK",
    "wrk_lua": "$HERE/registry/wrk.lua", "httpload": "$BENCH_DIR/httpload",
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')", "git": "$(git -C "$REPO" rev-parse --short HEAD)",
    "cores": $(nproc), "kernel": "$(uname -r)", "repo": "$REPO",
    "versions": {"docker-registry": "$(docker-registry --version | awk '{print $3}')",
                 "skopeo": "$(skopeo --version | awk '{print $3}')",
                 "wrk": "$(wrk -v 2>&1 | awk 'NR == 1 {print $2}')"},
}, open(sys.argv[1], "w"), indent=1)
EOF
}

# One function, called on the last line: bash has read the whole script before running any
# of it, so editing the file during a run cannot break the run.
main() {
    mkdir -p "$BENCH_DIR" "$RESULTS_DIR"
    GORAE_TEMPLATE=$(gorae_cmd)
    prepare
    WORK=$(mktemp -d "$PULL_DIR/gorae-bench-registry.XXXXXX")

    rm -rf "$RUN"
    read -r GORAE_PORT CNCF_PORT < <(free_ports)
    start_registry gorae "$GORAE_TEMPLATE" "$GORAE_PORT"
    GORAE_PID=$START_PID
    start_registry cncf "$CNCF_CMD" "$CNCF_PORT"
    CNCF_PID=$START_PID
    log "gorae side: $GORAE_TEMPLATE (pid $GORAE_PID, port $GORAE_PORT); cncf: docker-registry (pid $CNCF_PID, port $CNCF_PORT)"

    STAMP=$(date -u +%Y-%m-%d-%H%M%S)
    OUT=$RESULTS_DIR/registry-$STAMP
    write_spec "$RUN/spec.json"
    # In the background and waited for, so Ctrl-C and TERM run the cleanup at once.
    python3 "$HERE/registry/measure.py" "$RUN/spec.json" "$OUT.json" &
    MEASURE_PID=$!
    wait "$MEASURE_PID"
    MEASURE_PID=

    python3 "$HERE/registry/summary.py" "$OUT.json" >"$OUT.md.tmp"
    mv "$OUT.md.tmp" "$OUT.md"
    cat "$OUT.md"
    log "written to $OUT.md (raw numbers: $OUT.json)"
}

main "$@"
