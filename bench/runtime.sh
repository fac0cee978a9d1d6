#!/usr/bin/env bash
# Side-by-side benchmark of gorae-runc vs crun and runc.  Run as root:
#
#     sudo bench/runtime.sh
#
# What it does (see BENCHMARKS.md for the why):
#   1. builds gorae-runc (cargo build --release), unless GORAE_RUNC=/path/to/bin;
#   2. makes ONE bundle (static busybox rootfs, config.json from `gorae-runc spec`
#      with terminal=false, args=["/bin/true"], the default namespaces pid,
#      network, ipc, uts, mount, cgroup) used by all three runtimes;
#   3. runs everything inside `unshare -m --propagation private` with
#      /sys/fs/cgroup/unified unmounted in that private view (crun refuses the
#      hybrid v1+v2 layout), all three runtimes in that same view, each with its
#      own --root state dir;
#   4. hyperfine (-N, one invocation, six benchmarks): `run` of /bin/true and
#      create+start+delete (bench/cycle.sh);
#   5. a paired, alternating loop (bench/paired.py) over the same two commands:
#      median of per-round gorae/crun and gorae/runc ratios;
#   6. peak RSS (GNU time %M) of `run` of /bin/true;
#   7. prints a Markdown table, writes it to bench/results/runtime-DATE.md (raw
#      JSON beside it, in bench/results/runtime-DATE/);
#   8. cleans up containers, state dirs, cgroups, mounts and temp dirs, also on
#      failure or Ctrl-C.
#
# Knobs (environment): GORAE_RUNC (skip the build), WARMUP (10), RUNS (100),
# ROUNDS (200, paired loop), PAIRED_WARMUP (10), RSS_RUNS (30),
# RESULTS_DIR (bench/results), SECCOMP (1: keep the seccomp profile `gorae-runc spec`
# writes, Docker's default; 0: drop it, as the config of the first measurements had none).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
RUNTIMES=(gorae crun runc)

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- host side --

install_deps() {
    local missing=()
    command -v runc >/dev/null || missing+=(runc)
    command -v crun >/dev/null || missing+=(crun)
    command -v hyperfine >/dev/null || missing+=(hyperfine)
    command -v jq >/dev/null || missing+=(jq)
    [[ -x /usr/bin/time ]] || missing+=(time)
    [[ -x /usr/bin/python3 ]] || missing+=(python3)
    command -v unshare >/dev/null || missing+=(util-linux)
    # busybox-static installs /bin/busybox; Debian's plain busybox is dynamic.
    if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
        missing+=(busybox-static)
    fi
    if ((${#missing[@]})); then
        log "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    ldd /bin/busybox >/dev/null 2>&1 && die "/bin/busybox is not static"
    return 0
}

build_gorae() {
    if [[ -n ${GORAE_RUNC:-} ]]; then
        [[ -x $GORAE_RUNC ]] || die "GORAE_RUNC=$GORAE_RUNC is not executable"
        GORAE=$(readlink -f "$GORAE_RUNC")
        return
    fi
    log "cargo build --release in $REPO"
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        # Build as the invoking user: root's PATH under sudo usually lacks
        # cargo, and a root-owned target/ would bother the next plain build.
        sudo -u "$SUDO_USER" -H bash -lc "cd '$REPO' && cargo build --release"
    else
        (cd "$REPO" && cargo build --release)
    fi
    GORAE=${CARGO_TARGET_DIR:-$REPO/target}/x86_64-unknown-linux-gnu/release/gorae-runc
    [[ -x $GORAE ]] || die "no $GORAE after the build"
    GORAE=$(readlink -f "$GORAE")
}

make_bundle() {
    local b=$WORK/bundle
    mkdir -p "$b/rootfs/bin"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    local app
    for app in true false sh echo sleep cat ls; do
        ln -s busybox "$b/rootfs/bin/$app"
    done
    (cd "$b" && "$GORAE" spec) || die "$GORAE spec failed"
    # ociVersion: crun 1.8.1 (Debian 12) rejects "1.2.0" ("unknown version
    # specified"); 1.0.2 is what runc 1.1 itself writes, and the fields used
    # here are the same.  cgroupsPath: set explicitly so all three create the
    # same cgroup (each runtime's default placement differs).
    jq --arg cg "/$CG_NAME" --arg seccomp "${SECCOMP:-1}" '
        .ociVersion = "1.0.2"
        | .process.terminal = false
        | .process.args = ["/bin/true"]
        | .linux.cgroupsPath = $cg
        | if $seccomp == "0" then del(.linux.seccomp) else . end' \
        "$b/config.json" >"$b/config.json.new"
    mv "$b/config.json.new" "$b/config.json"
    local ns
    ns=$(jq -c '[.linux.namespaces[].type]' "$b/config.json")
    log "bundle $b, namespaces $ns"
}

bin_of() {
    case $1 in
        gorae) echo "$GORAE" ;;
        crun) command -v crun ;;
        runc) command -v runc ;;
    esac
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ -n ${INNER_PID:-} ]] && kill -0 "$INNER_PID" 2>/dev/null; then
        # The measuring side runs in its own session (setsid): stop all of it
        # (hyperfine, paired.py, runtimes in flight) before cleaning up.
        log "stopping the measurement (process group $INNER_PID)"
        kill -TERM -- "-$INNER_PID" 2>/dev/null
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$INNER_PID" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$INNER_PID" 2>/dev/null
        wait "$INNER_PID" 2>/dev/null
    fi
    [[ -n ${WORK:-} && -d ${WORK:-/nonexistent} ]] || exit "$rc"
    local rt bin
    for rt in "${RUNTIMES[@]}"; do
        bin=$(bin_of "$rt")
        if [[ -n $bin && -d $WORK/state/$rt ]]; then
            "$bin" --root "$WORK/state/$rt" delete --force "$ID_PREFIX-$rt" >/dev/null 2>&1
            "$bin" --root "$WORK/state/$rt" delete --force "$ID_PREFIX-exec-$rt" >/dev/null 2>&1
        fi
    done
    # cgroups: the shared cgroupsPath and anything named after a container id.
    # A runtime killed half-way may have left processes no state dir knows.
    local d p
    while IFS= read -r d; do
        [[ -n $d ]] || continue
        for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null
        done
        for _ in 1 2 3 4 5; do
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
            [[ -d $d ]] || break
            sleep 0.2
        done
    done < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d \
        \( -name "$CG_NAME" -o -name "$ID_PREFIX-*" \) 2>/dev/null | sort -r)
    # mounts under the work dir (there should be none in this namespace)
    local m
    while IFS= read -r m; do
        umount -l "$m" 2>/dev/null
    done < <(awk -v w="$WORK" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    rm -rf "$WORK"
    # report whatever is still there
    local left
    left=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 8 -type d \
        \( -name "$CG_NAME" -o -name "$ID_PREFIX-*" \) 2>/dev/null)
    [[ -z $left ]] || log "WARNING: cgroups left behind: $left"
    grep -qF "$WORK" /proc/self/mountinfo && log "WARNING: mounts left under $WORK"
    [[ -e $WORK ]] && log "WARNING: $WORK left behind"
    exit "$rc"
}

machine_notes() {
    local cg
    if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then
        cg="pure cgroup v2"
    elif mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then
        cg="hybrid (cgroup v1 controllers + cgroup2 at /sys/fs/cgroup/unified); the benchmark unmounts /sys/fs/cgroup/unified in a private mount namespace, so all three runtimes see pure v1"
    else
        cg="pure cgroup v1"
    fi
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Kernel: $(uname -r); CPU: ${cpu:-unknown}, $(nproc) cores online; memory $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"
    echo "- cgroups: $cg"
    echo "- gorae-runc: $GORAE_DESC"
    echo "- seccomp in config.json: $([[ ${SECCOMP:-1} == 0 ]] && echo "none (SECCOMP=0)" || echo "Docker's default profile, as \`gorae-runc spec\` writes it")"
    echo "- crun: $(crun --version | head -1); runc: $(runc --version | head -1); hyperfine: $(hyperfine --version)"
}

main() {
    [[ $(id -u) == 0 ]] || die "run as root: sudo $0"
    install_deps
    build_gorae

    local stamp
    stamp=$(date -u +%Y-%m-%d-%H%M%S)
    RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
    mkdir -p "$RESULTS_DIR"
    local md=$RESULTS_DIR/runtime-$stamp.md raw=$RESULTS_DIR/runtime-$stamp
    mkdir -p "$raw"

    ID_PREFIX=gbench$$
    CG_NAME=gorae-bench-$$
    WORK=$(mktemp -d /tmp/gorae-bench.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$WORK/state/gorae" "$WORK/state/crun" "$WORK/state/runc"
    make_bundle

    GORAE_DESC="$GORAE"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1 && [[ -z ${GORAE_RUNC:-} ]]; then
        GORAE_DESC="built from $(git -C "$REPO" rev-parse --short HEAD) (last change to Rust code: $(git -C "$REPO" log -1 --format=%h -- crates bins Cargo.toml Cargo.lock))$(git -C "$REPO" diff --quiet HEAD -- crates bins Cargo.toml Cargo.lock || echo ' + uncommitted changes') (cargo build --release)"
    fi

    export GORAE WORK ID_PREFIX RAW="$raw" HERE
    export WARMUP=${WARMUP:-10} RUNS=${RUNS:-100} ROUNDS=${ROUNDS:-200}
    export PAIRED_WARMUP=${PAIRED_WARMUP:-10} RSS_RUNS=${RSS_RUNS:-30}
    export CRUN_BIN RUNC_BIN
    CRUN_BIN=$(command -v crun)
    RUNC_BIN=$(command -v runc)

    log "measuring inside a private mount namespace"
    # setsid: its own process group, so that cleanup can stop all of it; wait
    # in the background so that a signal to this script is acted on at once.
    setsid unshare -m --propagation private -- bash "$HERE/runtime.sh" __inner &
    INNER_PID=$!
    wait "$INNER_PID"
    INNER_PID=

    local table
    table=$(/usr/bin/python3 "$HERE/stats.py" "$raw/hyperfine.json" \
        "$raw/paired-run.json" "$raw/paired-cycle.json" "$raw/rss.json" "$raw/paired-exec.json")
    local repro="sudo bench/runtime.sh"
    [[ -n ${GORAE_RUNC:-} ]] && repro="sudo GORAE_RUNC=$GORAE_RUNC bench/runtime.sh"
    [[ $WARMUP$RUNS$ROUNDS$PAIRED_WARMUP$RSS_RUNS == 101002001030 ]] ||
        repro="sudo WARMUP=$WARMUP RUNS=$RUNS ROUNDS=$ROUNDS PAIRED_WARMUP=$PAIRED_WARMUP RSS_RUNS=$RSS_RUNS ${repro#sudo }"
    {
        echo "# gorae-runc vs crun vs runc — $stamp"
        echo
        echo "$table"
        echo
        echo "Reproduce (from the repository root): \`$repro\`"
        echo
        echo "Settings: hyperfine -N -w $WARMUP -r $RUNS; paired loop $ROUNDS rounds (+$PAIRED_WARMUP warm-up rounds, order rotated each round); RSS: $RSS_RUNS runs each, interleaved, \`/usr/bin/time -f %M\`."
        echo
        machine_notes
        echo
        echo "Raw data: \`$(basename "$raw")/\` (hyperfine.json, paired-run.json, paired-cycle.json, paired-exec.json, rss.json)."
    } >"$md"
    if [[ -n ${SUDO_UID:-} ]]; then
        chown -R "$SUDO_UID:$SUDO_GID" "$md" "$raw" 2>/dev/null || true
    fi
    echo
    cat "$md"
    echo
    log "written: $md"
}

# ------------------------------------------- inside the private mount ns --

inner() {
    # Never touches the host's mounts: this namespace has private propagation.
    # With cgroup2 gone from /sys/fs/cgroup/unified, crun still mkdirs
    # unified/<cgroupsPath> and creates a plain file cgroup.procs in it: on
    # the host's /sys/fs/cgroup tmpfs, hidden under the host's cgroup2 mount,
    # and never removed.  A throwaway tmpfs over it (not cgroup2, so all three
    # still see pure v1) keeps that litter inside this namespace.
    if mountpoint -q /sys/fs/cgroup/unified; then
        umount /sys/fs/cgroup/unified
        mount -t tmpfs -o size=1m,mode=755 gorae-bench-scratch /sys/fs/cgroup/unified
    fi
    local B=$WORK/bundle rt
    declare -A BIN=([gorae]=$GORAE [crun]=$CRUN_BIN [runc]=$RUNC_BIN)
    run_cmd() { echo "${BIN[$1]} --root $WORK/state/$1 run --bundle $B $ID_PREFIX-$1"; }
    cycle_cmd() { echo "$HERE/cycle.sh ${BIN[$1]} $WORK/state/$1 $B $ID_PREFIX-$1"; }

    log "checking that the bundle runs under all three"
    for rt in "${RUNTIMES[@]}"; do
        # shellcheck disable=SC2046
        $(run_cmd "$rt") </dev/null || die "$rt: run failed"
        # shellcheck disable=SC2046
        $(cycle_cmd "$rt") </dev/null || die "$rt: create+start+delete failed"
        # shellcheck disable=SC2046
        [[ $(${BIN[$rt]} --root "$WORK/state/$rt" list -q 2>/dev/null | wc -l) == 0 ]] ||
            die "$rt: container left in its state dir after the check"
    done

    log "hyperfine: -N -w $WARMUP -r $RUNS, 6 benchmarks"
    local args=()
    for rt in "${RUNTIMES[@]}"; do args+=(-n "run $rt" "$(run_cmd "$rt")"); done
    for rt in "${RUNTIMES[@]}"; do args+=(-n "cycle $rt" "$(cycle_cmd "$rt")"); done
    hyperfine -N -w "$WARMUP" -r "$RUNS" --style basic \
        --export-json "$RAW/hyperfine.json" "${args[@]}" >&2

    log "paired loop: $ROUNDS rounds of run"
    /usr/bin/python3 "$HERE/paired.py" "$ROUNDS" "$PAIRED_WARMUP" "$RAW/paired-run.json" \
        "gorae=$(run_cmd gorae)" "crun=$(run_cmd crun)" "runc=$(run_cmd runc)"
    log "paired loop: $ROUNDS rounds of create+start+delete"
    /usr/bin/python3 "$HERE/paired.py" "$ROUNDS" "$PAIRED_WARMUP" "$RAW/paired-cycle.json" \
        "gorae=$(cycle_cmd gorae)" "crun=$(cycle_cmd crun)" "runc=$(cycle_cmd runc)"

    log "exec: one long-running container per runtime, its own cgroup"
    for rt in "${RUNTIMES[@]}"; do
        local b2=$WORK/bundle-exec-$rt
        mkdir -p "$b2"
        jq --arg root "$B/rootfs" --arg cg "/$ID_PREFIX-exec-$rt" \
            '.root.path = $root | .process.args = ["sleep", "100000"] | .linux.cgroupsPath = $cg' \
            "$B/config.json" >"$b2/config.json"
        "${BIN[$rt]}" --root "$WORK/state/$rt" run -d --bundle "$b2" "$ID_PREFIX-exec-$rt" \
            </dev/null >/dev/null 2>&1 || die "$rt: run -d of the exec container failed"
    done
    exec_cmd() { echo "${BIN[$1]} --root $WORK/state/$1 exec $ID_PREFIX-exec-$1 /bin/true"; }
    for rt in "${RUNTIMES[@]}"; do
        # shellcheck disable=SC2046
        $(exec_cmd "$rt") </dev/null || die "$rt: exec failed"
    done
    log "paired loop: $ROUNDS rounds of exec"
    /usr/bin/python3 "$HERE/paired.py" "$ROUNDS" "$PAIRED_WARMUP" "$RAW/paired-exec.json" \
        "gorae=$(exec_cmd gorae)" "crun=$(exec_cmd crun)" "runc=$(exec_cmd runc)"
    for rt in "${RUNTIMES[@]}"; do
        "${BIN[$rt]}" --root "$WORK/state/$rt" delete --force "$ID_PREFIX-exec-$rt" >/dev/null 2>&1 ||
            die "$rt: delete of the exec container failed"
    done

    log "peak RSS: $RSS_RUNS runs each of run, interleaved"
    local i kb
    declare -A RSS=([gorae]="" [crun]="" [runc]="")
    for ((i = 0; i < RSS_RUNS; i++)); do
        for rt in "${RUNTIMES[@]}"; do
            # shellcheck disable=SC2046
            /usr/bin/time -f %M -o "$WORK/rss" $(run_cmd "$rt") </dev/null >/dev/null ||
                die "$rt: run under /usr/bin/time failed"
            kb=$(tail -1 "$WORK/rss")
            RSS[$rt]+="${RSS[$rt]:+,}$kb"
        done
    done
    printf '{"unit":"KB","gorae":[%s],"crun":[%s],"runc":[%s]}\n' \
        "${RSS[gorae]}" "${RSS[crun]}" "${RSS[runc]}" >"$RAW/rss.json"
}

if [[ ${1:-} == __inner ]]; then
    RUNTIMES=(gorae crun runc)
    inner
else
    main "$@"
fi
