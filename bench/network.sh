#!/usr/bin/env bash
# Issue 6's two network figures, gorae vs docker (Debian dockerd 20.10 + containerd) vs podman
# 4.3, side by side in ONE run, on the same image.  Run as root from the repository:
#
#     sudo bench/network.sh
#
# What it does:
#   1. uses the release binaries in target/x86_64-unknown-linux-gnu/release (or GORAE_BIN_DIR),
#      building them with `cargo build --release -p gorae -p gorae-runc` only when missing;
#   2. makes ONE image tarball: a busybox rootfs (Debian busybox-static) plus the host's iperf3
#      and the shared libraries ldd names, imported by `gorae import` in a scratch root and
#      written by `gorae save`; the same tarball is loaded into all three engines;
#   3. starts its own engines on their own sockets and dirs under one temp dir, this time WITH
#      their default networks: `gorae daemon --root G -H unix://...` (its bridge and nft table
#      are named from G's hash); dockerd with docker0 and --iptables=true (userland proxy on:
#      docker's default); podman with its own --root/--runroot, `--runtime runc`, the ulimit
#      flags PEERS.md requires, and whatever default network backend podman picks (the report
#      says which: netavark when installed and the store is new, else CNI);
#   4. paired, rotated rounds (bench/paired.py) of `run --rm IMG /bin/true` on the default
#      network in each engine, and the same with `--network none` (so the cost of the network
#      setup is the difference); medians and the median of per-round ratios against docker;
#   5. TCP throughput host → container through a published port: `iperf3 -s` in a container of
#      each engine (-p 15201:5201 gorae, 15202 docker, 15203 podman: all up at once so the runs
#      interleave), `iperf3 -c ADDR -p PORT -t 5` from the host to 127.0.0.1 and to the host's
#      own non-loopback address, RUNS (3) each, engines alternated; medians in Gbit/s;
#   6. writes a Markdown table to bench/results/network-DATE.md (raw JSON, a few KB, in
#      bench/results/network-DATE/);
#   7. cleans up everything it started, also on failure or Ctrl-C: containers, daemons,
#      docker-proxy, bridges (docker0, podman0/cni-podman0 if it made them, gorae's), the
#      iptables rules and chains docker/podman added, the FORWARD policy, the bridge-netfilter
#      sysctls and ip_forward as they were, mounts, cgroups, the temp dir; warns about leftovers.
# Only addresses of this machine are ever contacted.
#
# Knobs (environment): GORAE_BIN_DIR, ROUNDS (30), WARMUP (3), RUNS (3), SECONDS_PER_RUN (5),
# RESULTS_DIR (bench/results).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
DOCKER_CLI=/usr/local/bin/docker
IMG=bench/netbox:latest
PORT_G=15201 PORT_D=15202 PORT_P=15203

log() { printf '[net-bench] %s\n' "$*" >&2; }
die() { printf '[net-bench] error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------------------ setup --

install_deps() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v podman >/dev/null || missing+=(podman)
    command -v runc >/dev/null || missing+=(runc)
    command -v iperf3 >/dev/null || missing+=(iperf3)
    command -v jq >/dev/null || missing+=(jq)
    command -v nft >/dev/null || missing+=(nftables)
    command -v iptables >/dev/null || missing+=(iptables)
    [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
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

find_gorae() {
    BIN=${GORAE_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO/target}/x86_64-unknown-linux-gnu/release}
    if [[ ! -x $BIN/gorae || ! -x $BIN/gorae-runc ]]; then
        [[ -z ${GORAE_BIN_DIR:-} ]] || die "no gorae and gorae-runc in $GORAE_BIN_DIR"
        log "cargo build --release -p gorae -p gorae-runc in $REPO (several minutes)"
        (cd "$REPO" && cargo build --release -p gorae -p gorae-runc)
    fi
    BIN=$(readlink -f "$BIN")
    [[ -x $BIN/gorae && -x $BIN/gorae-runc ]] || die "no gorae and gorae-runc in $BIN"
    BUILD_DESC="binaries from $BIN, built $(date -u -r "$BIN/gorae" '+%Y-%m-%d %H:%M UTC')"
    [[ $BIN == */debug ]] && BUILD_DESC+=" (**a debug build**: not the figures to judge by)"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        BUILD_DESC+="; tree at $(git -C "$REPO" rev-parse --short HEAD)"
    fi
}

# busybox + iperf3 with the libraries it links (and the loader), at their host paths.
make_image() {
    local r=$WORK/rootfs lib applet
    mkdir -p "$r/bin" "$r/usr/bin" "$r/etc" "$r/proc" "$r/sys" "$r/dev" "$r/tmp"
    chmod 1777 "$r/tmp"
    cp /bin/busybox "$r/bin/"
    for applet in $(/bin/busybox --list); do
        [[ $applet == busybox ]] || ln -s busybox "$r/bin/$applet"
    done
    cp "$(command -v iperf3)" "$r/usr/bin/iperf3"
    for lib in $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
        mkdir -p "$r$(dirname "$lib")"
        cp -L "$lib" "$r$lib"
    done
    echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
    echo 'root:x:0:' >"$r/etc/group"
    tar -C "$r" -cf "$WORK/rootfs.tar" .
    "$BIN/gorae" --root "$WORK/scratch" import -c 'CMD ["sh"]' "$WORK/rootfs.tar" "$IMG" >/dev/null
    "$BIN/gorae" --root "$WORK/scratch" save -o "$WORK/image.tar" "$IMG"
    rm -rf "$WORK/scratch" "$r" "$WORK/rootfs.tar"
    log "image tarball: $(du -h "$WORK/image.tar" | cut -f1) ($IMG: busybox + iperf3)"
}

# The host's own non-loopback IPv4 address (not one of a container bridge).
host_address() {
    ip -4 -o addr show scope global |
        awk '$2 !~ /^(docker|gorae|gr-|podman|cni-|veth|vg)/ { sub(/\/.*/, "", $4); print $4; exit }'
}

# ------------------------------------------------------- host state saved --

# Everything the peers may change on the host, saved before any of them starts.
save_host_state() {
    local t
    for t in filter nat; do
        iptables -t "$t" -S >"$WORK/state/ip4-$t.before"
        ip6tables -t "$t" -S >"$WORK/state/ip6-$t.before" 2>/dev/null || true
    done
    nft list tables >"$WORK/state/nft-tables.before"
    ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort >"$WORK/state/links.before"
    sysctl -n net.ipv4.ip_forward >"$WORK/state/ip_forward"
    : >"$WORK/state/bridge-nf"
    for t in /proc/sys/net/bridge/bridge-nf-call-*; do
        [[ -f $t ]] && echo "$t $(cat "$t")" >>"$WORK/state/bridge-nf"
    done
    HOST_STATE_SAVED=1
}

# Removes the rules and chains added since save_host_state that belong to docker or podman
# (by name: rules of others that appeared meanwhile are left alone), puts the built-in chains'
# policies back, then says whether anything still differs.
restore_iptables() { # $1: iptables | ip6tables
    local ipt=$1 fam t line chain
    local nfam=ip
    fam=ip4
    [[ $ipt == ip6tables ]] && fam=ip6 nfam=ip6
    local ours='DOCKER|docker0|NETAVARK|CNI-|cni-podman0|podman0|10\.88\.'
    for t in filter nat; do
        local before=$WORK/state/$fam-$t.before
        [[ -f $before ]] || continue
        local now
        now=$($ipt -t "$t" -S 2>/dev/null) || continue
        # Added rules, last first.
        while IFS= read -r line; do
            [[ -n $line ]] || continue
            eval "$ipt -t $t ${line/#-A /-D }" 2>/dev/null ||
                log "WARNING: could not delete ($ipt -t $t): $line"
        done < <(grep '^-A ' <<<"$now" | grep -E -- "$ours" | grep -vxF -f "$before" | tac || true)
        # Added chains: flush, then delete.
        for chain in $(grep '^-N ' <<<"$now" | grep -vxF -f "$before" | awk '{ print $2 }' |
            grep -E -- "$ours" || true); do
            $ipt -t "$t" -F "$chain" 2>/dev/null
        done
        for chain in $(grep '^-N ' <<<"$now" | grep -vxF -f "$before" | awk '{ print $2 }' |
            grep -E -- "$ours" || true); do
            $ipt -t "$t" -X "$chain" 2>/dev/null || log "WARNING: could not delete chain $chain ($ipt -t $t)"
        done
        # Setting a policy creates the table (iptables-nft): only where it was there before.
        if grep -qx "table $nfam $t" "$WORK/state/nft-tables.before"; then
            while IFS= read -r line; do
                eval "$ipt -t $t $line"
            done < <(grep '^-P ' "$before")
        elif nft list table "$nfam" "$t" >/dev/null 2>&1; then
            if nft list table "$nfam" "$t" | grep -vqE '^\s*(table|chain|type|}|$)'; then
                log "WARNING: table $nfam $t appeared during the run and holds rules: left alone"
            else
                nft delete table "$nfam" "$t"
            fi
            continue
        fi
        if ! diff -q "$before" <($ipt -t "$t" -S) >/dev/null; then
            log "WARNING: $ipt -t $t differs from before the run:"
            diff "$before" <($ipt -t "$t" -S) | sed 's/^/    /' >&2
        fi
    done
}

restore_host_state() {
    [[ -n ${HOST_STATE_SAVED:-} ]] || return 0
    restore_iptables iptables
    restore_iptables ip6tables
    local n
    for n in docker0 podman0 cni-podman0; do
        if ip link show "$n" >/dev/null 2>&1 && ! grep -qxF "$n" "$WORK/state/links.before"; then
            ip link del "$n" 2>/dev/null || log "WARNING: could not delete $n"
        fi
    done
    # Interfaces that appeared during the run: gorae's (named from its root's hash), veths.
    local now_links
    now_links=$(ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort)
    local new
    new=$(comm -13 "$WORK/state/links.before" <(echo "$now_links") | tr '\n' ' ')
    [[ -z ${new// /} ]] || log "NOTE: interfaces that appeared during the run (other helpers' or leaks): $new"
    ip link show "gr0-$GHASH" >/dev/null 2>&1 && log "WARNING: gorae's bridge gr0-$GHASH is left: deleting it" &&
        ip link del "gr0-$GHASH"
    local tbl=gorae-$GHASH
    if nft list tables | grep -qx "table ip $tbl"; then
        log "WARNING: gorae left its nft table $tbl: deleting it"
        nft delete table ip "$tbl"
    fi
    sysctl -qw net.ipv4.ip_forward="$(cat "$WORK/state/ip_forward")"
    local f v
    while read -r f v; do
        [[ -f $f ]] && echo "$v" >"$f"
    done <"$WORK/state/bridge-nf"
    diff -q "$WORK/state/nft-tables.before" <(nft list tables) >/dev/null ||
        log "NOTE: nft tables now: $(nft list tables | tr '\n' ' ') (before: $(tr '\n' ' ' <"$WORK/state/nft-tables.before"))"
}

# ---------------------------------------------------------------- engines --

GSOCK= DKSOCK=
start_gorae() {
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

# docker's defaults for networking: docker0, iptables, userland proxy; own dirs and socket.
start_dockerd() {
    local d=$WORK/dk
    mkdir -p "$d"
    DKSOCK=$d/docker.sock
    echo "{\"deprecated-key-path\": \"$d/key.json\"}" >"$d/daemon.json"
    setsid /usr/sbin/dockerd --config-file="$d/daemon.json" --data-root="$d/data" \
        --exec-root="$d/exec" --pidfile="$d/dockerd.pid" --host="unix://$DKSOCK" \
        --cgroup-parent="/$DK_CG" --iptables=true >"$WORK/dockerd.log" 2>&1 &
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
DK_CLI() { echo "$DOCKER_CLI --config $WORK/cli -H unix://$DKSOCK"; }
DG_CLI() { echo "$DOCKER_CLI --config $WORK/cli -H unix://$GSOCK"; }
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

run_prefix() { # engine → argv of `run` up to the image (the default network)
    case $1 in
        gorae) echo "$(G_CLI) run" ;;
        docker) echo "$(DK_CLI) run" ;;
        podman) echo "$(PM_CLI) run $PM_RUN_FLAGS --cgroup-parent /$PM_CG" ;;
    esac
}
true_cmd() { # engine, network (default|none)
    local net=""
    [[ $2 == none ]] && net="--network none "
    echo "$(run_prefix "$1") --rm $net$IMG /bin/true"
}

rm_all() {
    case $1 in
        gorae) gr ps -aq | xargs -r -n 50 "$BIN/gorae" -H "unix://$GSOCK" rm -f >/dev/null ;;
        docker) dk ps -aq | xargs -r -n 50 "$DOCKER_CLI" --config "$WORK/cli" -H "unix://$DKSOCK" rm -f >/dev/null ;;
        podman) pm rm -fa -t 0 >/dev/null ;;
    esac
}

# ----------------------------------------------------------- throughput --

declare -A PORT_OF=([gorae]=$PORT_G [docker]=$PORT_D [podman]=$PORT_P)

start_iperf_server() { # engine
    local argv
    argv="$(run_prefix "$1") -d --name netbench-iperf -p ${PORT_OF[$1]}:5201 $IMG iperf3 -s --forceflush"
    # shellcheck disable=SC2086
    $argv </dev/null >/dev/null
}

# One iperf3 client run: prints bits/s received. Retries while the server comes up.
iperf_once() { # addr port
    local out try
    for try in 1 2 3 4 5 6 7 8 9 10; do
        if out=$(timeout $((SECONDS_PER_RUN + 20)) iperf3 -c "$1" -p "$2" -t "$SECONDS_PER_RUN" -J 2>/dev/null); then
            jq -e '.end.sum_received.bits_per_second' <<<"$out" && return 0
        fi
        sleep 1
    done
    return 1
}

measure_throughput() {
    local out=$RAW/iperf.json e addr i engines=() bps
    for e in gorae docker podman; do
        if start_iperf_server "$e"; then
            engines+=("$e")
        else
            log "WARNING: $e: could not start the iperf3 server container (left out)"
        fi
    done
    declare -A res=()
    for addr in 127.0.0.1 "$HOST_IP"; do
        for ((i = 0; i < RUNS; i++)); do
            # Rotate the engines' order each run, as the paired rounds do.
            local k n=${#engines[@]}
            for ((k = 0; k < n; k++)); do
                e=${engines[$(((i + k) % n))]}
                log "iperf3 → $e via $addr:${PORT_OF[$e]}, run $((i + 1))/$RUNS"
                if bps=$(iperf_once "$addr" "${PORT_OF[$e]}"); then
                    res[$e/$addr]+="${res[$e/$addr]:+,}$bps"
                else
                    log "WARNING: $e: iperf3 to $addr:${PORT_OF[$e]} failed"
                fi
            done
        done
    done
    {
        printf '{"seconds": %d, "runs": %d, "host_ip": "%s", "ports": {"gorae": %d, "docker": %d, "podman": %d}, "bps": {' \
            "$SECONDS_PER_RUN" "$RUNS" "$HOST_IP" "$PORT_G" "$PORT_D" "$PORT_P"
        local first=1
        for e in gorae docker podman; do
            ((first)) || printf ', '
            first=0
            printf '"%s": {"127.0.0.1": [%s], "host": [%s]}' "$e" "${res[$e/127.0.0.1]:-}" "${res[$e/$HOST_IP]:-}"
        done
        printf '}}\n'
    } >"$out"
    for e in "${engines[@]}"; do rm_all "$e"; done
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

pids_of() { # pids whose comm is $2 and whose command line contains $1
    local p
    for p in /proc/[0-9]*; do
        [[ $(cat "$p/comm" 2>/dev/null) == "$2" ]] || continue
        tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "$1" && echo "${p#/proc/}"
    done
    return 0
}
containerd_pid() { pids_of "$WORK/dk/exec/containerd" containerd | head -1; }

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
    local cpid p
    cpid=$(containerd_pid)
    [[ -n $cpid ]] && stop_pid "$cpid"
    # docker-proxy names no path of ours: find it by the ports only this script publishes.
    for p in $(pids_of "-host-port $PORT_D " docker-proxy); do kill -KILL "$p" 2>/dev/null; done
    kill_naming "$WORK"
    if [[ -n ${GROOT:-} ]]; then
        local f
        for f in "$GROOT"/run/m/*/monitor.pid; do
            [[ -f $f ]] && kill -KILL "$(cut -d' ' -f1 "$f")" 2>/dev/null
        done
        remove_cgroup "gorae-$GHASH"
    fi
    remove_cgroup "$DK_CG"
    remove_cgroup "$PM_CG"
    local m
    while IFS= read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done < <(awk -v w="$WORK" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    grep -qF "$WORK" /proc/self/mountinfo && log "WARNING: mounts left under $WORK"
    restore_host_state
    rm -rf "$WORK"
    [[ -e $WORK ]] && log "WARNING: $WORK left behind"
    exit "$rc"
}

root_hash() { printf '%s' "$1" | sha256sum | cut -c1-8; }

machine_notes() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); load average at the start: $LOAD_START"
    echo "- Kernel: $(uname -r); CPU: ${cpu:-unknown}, $(nproc) cores online; memory $(awk '/MemTotal/ { printf "%.0f GiB", $2/1048576 }' /proc/meminfo)"
    echo "- gorae: $BUILD_DESC; default network: bridge $G_BRIDGE_DESC, DNAT in its own nft table, no userland proxy"
    echo "- docker: CLI $($DOCKER_CLI --version | cut -d, -f1 | cut -d' ' -f3), dockerd $(/usr/sbin/dockerd --version | cut -d, -f1 | cut -d' ' -f3), containerd $(containerd --version | cut -d' ' -f3); docker0 $D_BRIDGE_DESC, --iptables=true, **userland proxy on** (docker's default: connections to 127.0.0.1 go through docker-proxy, a userspace copy; to the host's address through iptables DNAT)"
    echo "- podman: $(podman --version | cut -d' ' -f3) with runc $(runc --version | head -1 | cut -d' ' -f3), network backend **$PM_BACKEND** (podman's own choice for a new store)"
    echo "- iperf3 $(iperf3 --version | head -1 | cut -d' ' -f2), client on the host, server in the container; host address $HOST_IP"
}

# ------------------------------------------------------------------- main --

main() {
    [[ $(id -u) == 0 ]] || die "run as root: sudo $0"
    install_deps
    find_gorae
    export ROUNDS=${ROUNDS:-30} WARMUP=${WARMUP:-3}
    RUNS=${RUNS:-3} SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
    LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
    HOST_IP=$(host_address)
    [[ -n $HOST_IP ]] || die "no global IPv4 address on this machine"
    local n
    for n in docker0; do
        ip link show "$n" >/dev/null 2>&1 && die "$n exists already (someone else's dockerd?): not starting another"
    done

    local stamp
    stamp=$(date -u +%Y-%m-%d-%H%M%S)
    RESULTS_DIR=${RESULTS_DIR:-$HERE/results}
    mkdir -p "$RESULTS_DIR"
    local md=$RESULTS_DIR/network-$stamp.md
    RAW=$RESULTS_DIR/network-$stamp
    mkdir -p "$RAW"

    DK_CG=gorae-nbench-dk-$$
    PM_CG=gorae-nbench-pm-$$
    # Short: unix socket paths (the daemon's, the monitors') must fit in 107 bytes.
    WORK=$(mktemp -d /var/tmp/gbn.XXXXXX)
    GROOT=$WORK/g
    GHASH=$(root_hash "$GROOT")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    mkdir -p "$WORK/cli" "$WORK/pm" "$WORK/state"
    save_host_state

    make_image
    log "starting gorae daemon, dockerd (docker0, iptables), loading the image into all three"
    start_gorae
    start_dockerd
    dg load -i "$WORK/image.tar" | grep -q "Loaded image: $IMG" || die "docker load into gorae failed"
    dk load -i "$WORK/image.tar" | grep -q "Loaded image: $IMG" || die "docker load into dockerd failed"
    pm load -i "$WORK/image.tar" >/dev/null || die "podman load failed"
    pm image exists "$IMG" || pm tag "localhost/$IMG" "$IMG" 2>/dev/null || true

    local e net
    for e in gorae docker podman; do
        for net in default none; do
            # shellcheck disable=SC2046
            $(true_cmd "$e" "$net") </dev/null || die "$e: run --rm of /bin/true failed: $(true_cmd "$e" "$net")"
        done
    done
    PM_BACKEND=$(pm info --format '{{.Host.NetworkBackend}}' 2>/dev/null || echo unknown)
    G_BRIDGE_DESC="$(dg network inspect -f '{{(index .IPAM.Config 0).Subnet}}' bridge 2>/dev/null || echo '?')"
    D_BRIDGE_DESC="$(dk network inspect -f '{{(index .IPAM.Config 0).Subnet}}' bridge 2>/dev/null || echo '?')"

    log "paired loop: $ROUNDS rounds (+$WARMUP warm-up) of run --rm IMG /bin/true, default network and none"
    local args=()
    for net in default none; do
        for e in gorae docker podman; do
            args+=("$e-$net=$(true_cmd "$e" "$net")")
        done
    done
    /usr/bin/python3 "$HERE/paired.py" "$ROUNDS" "$WARMUP" "$RAW/paired-run.json" "${args[@]}"

    log "throughput: iperf3 host → container, ${SECONDS_PER_RUN} s × $RUNS runs per engine and address"
    measure_throughput

    local table
    table=$(/usr/bin/python3 "$HERE/network_report.py" "$RAW")
    {
        echo "# gorae networking vs docker vs podman — $stamp"
        echo
        echo "$table"
        echo
        echo "Reproduce (from the repository root): \`sudo ${GORAE_BIN_DIR:+GORAE_BIN_DIR=$GORAE_BIN_DIR }ROUNDS=$ROUNDS WARMUP=$WARMUP RUNS=$RUNS SECONDS_PER_RUN=$SECONDS_PER_RUN bench/network.sh\`"
        echo
        machine_notes
        echo
        echo "Raw data: \`$(basename "$RAW")/\` (paired-run.json, iperf.json)."
    } >"$md"
    echo
    cat "$md"
    echo
    log "written: $md"
}

main "$@"
