#!/usr/bin/env bash
# Side-by-side benchmark of the gorae engine vs docker (Debian dockerd 20.10 + containerd)
# vs podman 4.3, in ONE run, on the same image.  Run as root from anywhere:
#
#     sudo bench/engine.sh
#
# What it does (BENCHMARKS.md has the why):
#   1. builds gorae and gorae-runc (cargo build --release), unless GORAE_BIN_DIR=/dir holds
#      both binaries already (then nothing is built);
#   2. makes ONE image tarball: a busybox rootfs (Debian busybox-static, every applet) turned
#      into an image by `gorae import` in a scratch root and written out by `gorae save`
#      (docker's archive format); the same tarball is loaded into all three engines;
#   3. starts its own engines, each on its own socket and dirs under one temp dir:
#      `gorae daemon --root G -H unix://G/run/d.sock`; dockerd with its own data root, exec
#      root, pidfile, socket, cgroup parent, no bridge and no iptables (PEERS.md), which
#      starts its own containerd; podman with its own --root/--runroot/--tmpdir,
#      `--runtime runc` (crun refuses this hybrid cgroup host) and the ulimit flags
#      PEERS.md requires, cgroupfs, a cgroup parent of its own;
#   4. paired, rotated rounds (bench/paired.py) of `run --rm --network none IMG /bin/true`:
#      gorae's CLI on gorae, the docker CLI on gorae, the docker CLI on dockerd, podman;
#      medians and the median of per-round ratios against docker and podman;
#   5. idle daemon RSS (after the rounds, a few seconds idle): gorae daemon vs dockerd +
#      containerd (podman has no daemon);
#   6. per running container: memory (RSS, anonymous RSS, PSS) of gorae's monitor vs
#      containerd-shim-runc-v2 vs conmon, with PER_CTR (10) containers in each, once quiet
#      (`sleep`) and once chatty (a line every 0.1 s, so the log path runs);
#   7. N (default 200; the issue's figure is 1000: N=1000) × `run -d IMG sleep`, PARALLEL
#      (8) at a time with xargs -P, in each engine: wall time, then the RSS of every process
#      of that engine (daemons + monitors/shims/conmons) and the drop in MemAvailable;
#   8. writes a Markdown table to bench/results/engine-DATE.md (raw JSON, a few KB, in
#      bench/results/engine-DATE/);
#   9. cleans up everything it started, also on failure or Ctrl-C: containers, daemons,
#      leftover monitors/shims, mounts, cgroups, the temp dir; warns about anything left.
#
# Knobs (environment): GORAE_BIN_DIR (skip the build), ROUNDS (30), WARMUP (3), PER_CTR (10),
# N (200), PARALLEL (8), ENGINES ("gorae docker podman": the N step only for these),
# RESULTS_DIR (bench/results).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCKER_CLI=/usr/local/bin/docker
IMG=bench/busybox:latest

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ setup --

install_deps() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v conmon >/dev/null || missing+=(conmon)
    command -v jq >/dev/null || missing+=(jq)
    [[ -x /usr/bin/python3 ]] || missing+=(python3)
    if [[ ! -x /bin/busybox ]] || ldd /bin/busybox >/dev/null 2>&1; then
        missing+=(busybox-static)
    fi
    if ((${#missing[@]})); then
        log "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    [[ -x $DOCKER_CLI ]] || die "no docker CLI at $DOCKER_CLI (Docker 28, API 1.50)"
}

build_gorae() {
    if [[ -n ${GORAE_BIN_DIR:-} ]]; then
        BIN=$(readlink -f "$GORAE_BIN_DIR")
        BUILD_DESC="binaries from $BIN"
        # A debug build's figures say little about gorae's speed or memory: say so.
        [[ $BIN == */debug ]] && BUILD_DESC+=" (**a debug build**: not the figures to judge the targets by)"
    else
        log "cargo build --release -p gorae -p gorae-runc in $REPO"
        (cd "$REPO" && cargo build --release -p gorae -p gorae-runc)
        BIN=${CARGO_TARGET_DIR:-$REPO/target}/x86_64-unknown-linux-gnu/release
        BUILD_DESC="cargo build --release"
    fi
    [[ -x $BIN/gorae && -x $BIN/gorae-runc ]] || die "no gorae and gorae-runc in $BIN"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        BUILD_DESC+=" at $(git -C "$REPO" rev-parse --short HEAD)"
        git -C "$REPO" diff --quiet HEAD -- crates bins || BUILD_DESC+=" + uncommitted changes"
    fi
}

make_image() {
    local r=$WORK/rootfs
    mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/"
    local applet
    for applet in $(/bin/busybox --list); do
        [[ $applet == busybox ]] || ln -s busybox "$r/bin/$applet"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    echo 'root:x:0:' >"$r/etc/group"
    tar -C "$r" -cf "$WORK/rootfs.tar" .
    "$BIN/gorae" --root "$WORK/scratch" import -c 'CMD ["sh"]' "$WORK/rootfs.tar" "$IMG" >/dev/null
    "$BIN/gorae" --root "$WORK/scratch" save -o "$WORK/image.tar" "$IMG"
    rm -rf "$WORK/scratch" "$r" "$WORK/rootfs.tar"
    log "image tarball: $(du -h "$WORK/image.tar" | cut -f1) ($IMG)"
}

# ---------------------------------------------------------------- engines --

GSOCK= DKSOCK=
start_gorae() {
    GROOT=$WORK/g
    GSOCK=$GROOT/run/d.sock
    mkdir -p "$GROOT"
    setsid "$BIN/gorae" daemon --root "$GROOT" -H "unix://$GSOCK" >"$WORK/gorae.log" 2>&1 &
    GORAE_PID=$!
    local _
    for _ in $(seq 300); do
        grep -q "API listening on unix://$GSOCK" "$WORK/gorae.log" && return 0
        kill -0 "$GORAE_PID" 2>/dev/null || { cat "$WORK/gorae.log" >&2; die "gorae daemon exited"; }
        sleep 0.1
    done
    cat "$WORK/gorae.log" >&2
    die "gorae daemon did not become ready"
}

start_dockerd() {
    local d=$WORK/dk
    mkdir -p "$d/cli"
    DKSOCK=$d/docker.sock
    echo "{\"deprecated-key-path\": \"$d/key.json\"}" >"$d/daemon.json"
    setsid /usr/sbin/dockerd --config-file="$d/daemon.json" --data-root="$d/data" \
        --exec-root="$d/exec" --pidfile="$d/dockerd.pid" --host="unix://$DKSOCK" \
        --cgroup-parent="/$DK_CG" --bridge=none --iptables=false --ip6tables=false \
        --ip-forward=false --ip-masq=false >"$WORK/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    local _
    for _ in $(seq 600); do
        [[ -S $DKSOCK ]] && dk version >/dev/null 2>&1 && return 0
        kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -20 "$WORK/dockerd.log" >&2; die "dockerd exited"; }
        sleep 0.1
    done
    tail -20 "$WORK/dockerd.log" >&2
    die "dockerd did not become ready"
}

# The clients, as argv strings (paired.py splits them on whitespace, no shell).
G_CLI() { echo "$BIN/gorae -H unix://$GSOCK"; }
DG_CLI() { echo "$DOCKER_CLI --config $WORK/cli -H unix://$GSOCK"; }
DK_CLI() { echo "$DOCKER_CLI --config $WORK/cli -H unix://$DKSOCK"; }
PM_CLI() {
    echo "podman --root $WORK/pm/root --runroot $WORK/pm/run --tmpdir $WORK/pm/tmp" \
        "--runtime runc --cgroup-manager cgroupfs --events-backend none"
}
PM_RUN_FLAGS="--ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
# shellcheck disable=SC2046
gr() { $(G_CLI) "$@"; }
# shellcheck disable=SC2046
dg() { $(DG_CLI) "$@"; }
# shellcheck disable=SC2046
dk() { $(DK_CLI) "$@"; }
# shellcheck disable=SC2046
pm() { $(PM_CLI) "$@"; }

run_cmd() {
    case $1 in
        gorae) echo "$(G_CLI) run --rm --network none $IMG /bin/true" ;;
        docker-on-gorae) echo "$(DG_CLI) run --rm --network none $IMG /bin/true" ;;
        docker) echo "$(DK_CLI) run --rm --network none $IMG /bin/true" ;;
        podman) echo "$(PM_CLI) run --rm --network none $PM_RUN_FLAGS --cgroup-parent /$PM_CG $IMG /bin/true" ;;
    esac
}

detached_cmd() { # engine → argv of `run -d ... sleep`
    case $1 in
        gorae) echo "$(G_CLI) run -d --network none $IMG sleep 100000" ;;
        docker) echo "$(DK_CLI) run -d --network none $IMG sleep 100000" ;;
        podman) echo "$(PM_CLI) run -d --network none $PM_RUN_FLAGS --cgroup-parent /$PM_CG $IMG sleep 100000" ;;
    esac
}

rm_all() {
    case $1 in
        gorae) gr ps -aq | xargs -r -n 50 "$BIN/gorae" -H "unix://$GSOCK" rm -f >/dev/null ;;
        docker) dk ps -aq | xargs -r -n 50 "$DOCKER_CLI" --config "$WORK/cli" -H "unix://$DKSOCK" rm -f >/dev/null ;;
        podman) pm rm -fa -t 0 >/dev/null ;;
    esac
}

# ----------------------------------------------------------- measurement --

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
sum_rss() { local t=0 p; for p in "$@"; do t=$((t + $(rss_kb "$p"))); done; echo "$t"; }
mem_available_kb() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }

# Pids of processes whose command line contains $1 and whose comm is $2.
pids_of() {
    local p
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == "$2" ]] || continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && echo "${p#/proc/}"
    done
    return 0
}
gorae_monitors() {
    local f
    for f in "$GROOT"/run/m/*/monitor.pid; do
        [[ -f $f ]] && cut -d' ' -f1 "$f"
    done
    return 0
}
containerd_pid() { pids_of "$WORK/dk/exec/containerd" containerd | head -1; }
shims() { pids_of "$WORK/dk/exec/containerd" containerd-shim; pids_of "$WORK/dk/exec/containerd" containerd-shim-runc-v2; }
conmons() { pids_of "$WORK/pm/" conmon; }

engine_pids() { # every process of an engine: daemons and per-container supervisors
    case $1 in
        gorae) echo "$GORAE_PID"; gorae_monitors ;;
        docker) echo "$DOCKERD_PID"; containerd_pid; shims ;;
        podman) conmons ;;
    esac
}
supervisors() {
    case $1 in
        gorae) gorae_monitors ;;
        docker) shims ;;
        podman) conmons ;;
    esac
}

# VmRSS, RssAnon (KB) and Pss (KB, from smaps_rollup) of a process, as a JSON object.
mem_json() {
    local rss anon pss
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
    pss=$(awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null)
    printf '{"rss": %d, "anon": %d, "pss": %d}' "${rss:-0}" "${anon:-0}" "${pss:-0}"
}

# PER_CTR containers per engine, twice: `sleep` (quiet) and a shell printing a line every
# 0.1 s (chatty: the supervisor's log path at work); the memory of each supervisor process.
measure_per_container() {
    local out=$RAW/per-container.json variant e i first_v=1
    echo "{" >"$out"
    for variant in quiet chatty; do
        ((first_v)) || echo "," >>"$out"
        first_v=0
        printf '"%s": {' "$variant" >>"$out"
        local first=1
        for e in gorae docker podman; do
            local argv
            argv=$(detached_cmd "$e")
            [[ $variant == chatty ]] && argv="${argv% sleep 100000} sh -c"
            for ((i = 0; i < PER_CTR; i++)); do
                if [[ $variant == chatty ]]; then
                    # shellcheck disable=SC2086
                    $argv 'while true; do echo tick; sleep 0.1; done' </dev/null >/dev/null ||
                        die "$e: run -d failed"
                else
                    # shellcheck disable=SC2086
                    $argv </dev/null >/dev/null || die "$e: run -d failed"
                fi
            done
            sleep 3
            local pids list="" n p
            pids=$(supervisors "$e")
            n=$(echo "$pids" | grep -c . || true)
            [[ $n == "$PER_CTR" ]] || log "WARNING: $e: $n supervisor processes for $PER_CTR containers"
            for p in $pids; do list+="${list:+,}$(mem_json "$p")"; done
            ((first)) || echo "," >>"$out"
            first=0
            printf '"%s": [%s]' "$e" "$list" >>"$out"
            rm_all "$e"
        done
        echo "}" >>"$out"
    done
    echo "}" >>"$out"
}

measure_many() {
    local e out=$RAW/many.json first=1
    echo "{" >"$out"
    for e in $ENGINES; do
        local before_avail t0 t1 argv
        sleep 2
        before_avail=$(mem_available_kb)
        argv=$(detached_cmd "$e")
        log "$e: $N × run -d sleep, $PARALLEL at a time"
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086
        # xargs gives each command /dev/null as stdin; one command per line of seq.
        seq "$N" | xargs -P "$PARALLEL" -L1 sh -c "$argv >/dev/null" sh ||
            log "WARNING: $e: some of the $N runs failed"
        t1=$(date +%s.%N)
        sleep 3
        local running rss after_avail
        case $e in
            gorae) running=$(gr ps -q | wc -l) ;;
            docker) running=$(dk ps -q | wc -l) ;;
            podman) running=$(pm ps -q | wc -l) ;;
        esac
        # shellcheck disable=SC2046
        rss=$(sum_rss $(engine_pids "$e"))
        after_avail=$(mem_available_kb)
        ((first)) || echo "," >>"$out"
        first=0
        printf '"%s": {"n": %d, "parallel": %d, "seconds": %s, "running": %d, "rss_kb": %d, "mem_available_drop_kb": %d}' \
            "$e" "$N" "$PARALLEL" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')" "$running" "$rss" \
            "$((before_avail - after_avail))" >>"$out"
        log "$e: removing the $N containers"
        rm_all "$e"
    done
    echo "}" >>"$out"
}

# ---------------------------------------------------------------- cleanup --

kill_naming() { # SIGKILL to every process whose command line names $1
    local p
    for p in /proc/[0-9]*; do
        [[ ${p#/proc/} == "$$" ]] && continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && kill -KILL "${p#/proc/}" 2>/dev/null
    done
    return 0
}

remove_cgroup() { # $1: a name at the top of every hierarchy
    local d p
    while IFS= read -r d; do
        [[ -n $d ]] || continue
        find "$d" -name freezer.state -exec sh -c 'echo THAWED >"$1"' _ {} \; 2>/dev/null
        for p in $(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null
        done
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
            [[ -d $d ]] || break
            sleep 0.3
        done
    done < <(find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d -name "$1" 2>/dev/null)
}

stop_pid() { # SIGTERM, 20 s, SIGKILL
    local pid=$1 _
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
}

cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [[ -n ${WORK:-} && -d ${WORK:-/nonexistent} ]] || exit "$rc"
    log "cleaning up"
    [[ -n $GSOCK && -S $GSOCK ]] && rm_all gorae 2>/dev/null
    [[ -n $DKSOCK && -S $DKSOCK ]] && rm_all docker 2>/dev/null
    [[ -d $WORK/pm/root ]] && rm_all podman 2>/dev/null
    [[ -n ${GORAE_PID:-} ]] && stop_pid "$GORAE_PID"
    [[ -n ${DOCKERD_PID:-} ]] && stop_pid "$DOCKERD_PID"
    local cpid
    cpid=$(containerd_pid)
    [[ -n $cpid ]] && stop_pid "$cpid"
    kill_naming "$WORK"
    if [[ -n ${GROOT:-} ]]; then
        local f
        for f in "$GROOT"/run/m/*/monitor.pid; do
            [[ -f $f ]] && kill -KILL "$(cut -d' ' -f1 "$f")" 2>/dev/null
        done
        remove_cgroup "gorae-$(root_hash "$GROOT")"
    fi
    remove_cgroup "$DK_CG"
    remove_cgroup "$PM_CG"
    local m
    while IFS= read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done < <(awk -v w="$WORK" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    grep -qF "$WORK" /proc/self/mountinfo && log "WARNING: mounts left under $WORK"
    rm -rf "$WORK"
    [[ -e $WORK ]] && log "WARNING: $WORK left behind"
    local n
    for n in docker0 cni-podman0 podman0; do
        ip link show "$n" >/dev/null 2>&1 && log "WARNING: a $n interface exists (not created by this script?)"
    done
    exit "$rc"
}

root_hash() { printf '%s' "$1" | sha256sum | cut -c1-8; }

machine_notes() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- Kernel: $(uname -r); CPU: ${cpu:-unknown}, $(nproc) cores online; memory $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"
    echo "- gorae: $BUILD_DESC"
    echo "- docker: CLI $($DOCKER_CLI --version | cut -d, -f1 | cut -d' ' -f3), dockerd $(/usr/sbin/dockerd --version | cut -d, -f1 | cut -d' ' -f3), containerd $(containerd --version | cut -d' ' -f3), storage driver $(dk info --format '{{.Driver}}' 2>/dev/null)"
    echo "- podman: $(podman --version | cut -d' ' -f3) with runc $(runc --version | head -1 | cut -d' ' -f3), conmon $(conmon --version 2>/dev/null | head -1 | cut -d' ' -f3), storage driver $(pm info --format '{{.Store.GraphDriverName}}' 2>/dev/null)"
}

# ------------------------------------------------------------------- main --

main() {
    [[ $(id -u) == 0 ]] || die "run as root: sudo $0"
    install_deps
    build_gorae
    export ROUNDS=${ROUNDS:-30} WARMUP=${WARMUP:-3} PER_CTR=${PER_CTR:-10}
    export N=${N:-200} PARALLEL=${PARALLEL:-8} ENGINES=${ENGINES:-gorae docker podman}

    local stamp
    stamp=$(date -u +%Y-%m-%d-%H%M%S)
    RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
    mkdir -p "$RESULTS_DIR"
    local md=$RESULTS_DIR/engine-$stamp.md
    RAW=$RESULTS_DIR/engine-$stamp
    mkdir -p "$RAW"

    DK_CG=gorae-bench-dk-$$
    PM_CG=gorae-bench-pm-$$
    # Short: unix socket paths (the daemon's, the monitors') must fit in 107 bytes.
    WORK=$(mktemp -d /var/tmp/gbe.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$WORK/cli" "$WORK/pm"

    make_image
    log "starting gorae daemon, dockerd, and loading the image into all three"
    start_gorae
    start_dockerd
    dg load -i "$WORK/image.tar" | grep -q "Loaded image: $IMG" || die "docker load into gorae failed"
    dk load -i "$WORK/image.tar" | grep -q "Loaded image: $IMG" || die "docker load into dockerd failed"
    pm load -i "$WORK/image.tar" >/dev/null || die "podman load failed"
    pm image exists "$IMG" || pm tag "localhost/$IMG" "$IMG" 2>/dev/null || true

    local e
    for e in gorae docker-on-gorae docker podman; do
        # shellcheck disable=SC2046
        $(run_cmd "$e") </dev/null || die "$e: run --rm of /bin/true failed: $(run_cmd "$e")"
    done

    log "paired loop: $ROUNDS rounds (+$WARMUP warm-up) of run --rm --network none /bin/true"
    /usr/bin/python3 "$HERE/paired.py" "$ROUNDS" "$WARMUP" "$RAW/paired-run.json" \
        "gorae=$(run_cmd gorae)" "docker-on-gorae=$(run_cmd docker-on-gorae)" \
        "docker=$(run_cmd docker)" "podman=$(run_cmd podman)"

    sleep 5
    local cpid
    cpid=$(containerd_pid)
    printf '{"gorae": %d, "dockerd": %d, "containerd": %d}\n' \
        "$(rss_kb "$GORAE_PID")" "$(rss_kb "$DOCKERD_PID")" "$(rss_kb "${cpid:-0}")" >"$RAW/idle.json"

    log "per running container: $PER_CTR × run -d sleep in each"
    measure_per_container
    measure_many

    local table
    table=$(/usr/bin/python3 "$HERE/engine_report.py" "$RAW")
    {
        echo "# gorae engine vs docker vs podman — $stamp"
        echo
        echo "$table"
        echo
        echo "Reproduce (from the repository root): \`sudo ${GORAE_BIN_DIR:+GORAE_BIN_DIR=$GORAE_BIN_DIR }ROUNDS=$ROUNDS WARMUP=$WARMUP PER_CTR=$PER_CTR N=$N PARALLEL=$PARALLEL bench/engine.sh\`"
        echo
        machine_notes
        echo
        echo "Raw data: \`$(basename "$RAW")/\` (paired-run.json, idle.json, per-container.json, many.json)."
    } >"$md"
    echo
    cat "$md"
    echo
    log "written: $md"
}

main "$@"
