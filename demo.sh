#!/usr/bin/env bash
# Sets gorae up on a fresh Debian 12 machine and runs its main job. Needs root.
#  1. builds gorae and gorae-runc;
#  2. makes a busybox image from Debian's busybox-static with `gorae import`;
#  3. starts gorae's own registry (`gorae registry serve`), pushes the image to it, removes
#     it locally and pulls it back;
#  4. mounts the pulled image read-only and runs a container on it with gorae-runc;
#  5. starts `gorae daemon` on the demo's data root and runs containers through it: run --rm,
#     run -d, ps, logs, exec, stop, rm — and `docker ps` against it when the docker CLI is there.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo build --release
bin=$PWD/target/x86_64-unknown-linux-gnu/release

work=$(mktemp -d /tmp/gorae-demo.XXXXXX)
registry_pid=
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]]; then
        "$bin/gorae" --root "$work/root" rm -f demo-web >/dev/null 2>&1 || true
        kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
        # The engine's cgroup parent for this data root, empty once its containers are gone.
        find /sys/fs/cgroup -maxdepth 3 -type d -name "gorae-$cgroup_hash" -exec rmdir {} + 2>/dev/null || true
    fi
    if mountpoint -q "$work/bundle/rootfs"; then
        "$bin/gorae" --root "$work/root" image unmount "$work/bundle/rootfs"
    fi
    if [[ -n $registry_pid ]]; then
        kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
gorae() { "$bin/gorae" --root "$work/root" "$@"; }

# A busybox rootfs tarball.
mkdir -p "$work/rootfs/bin" "$work/rootfs/"{proc,sys,dev,etc,tmp}
cp /bin/busybox "$work/rootfs/bin/"
for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$work/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -czf "$work/busybox.tar.gz" .

# gorae's registry on a free port, with its storage in the work dir.
"$bin/gorae" registry serve --addr 127.0.0.1:0 --root "$work/registry" 2>"$work/registry.log" &
registry_pid=$!
port=
for _ in $(seq 100); do
    port=$(sed -n 's|.*serving http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/registry.log")
    [[ -n $port ]] && break
    sleep 0.05
done
[[ -n $port ]] || { cat "$work/registry.log" >&2; exit 1; }

image=127.0.0.1:$port/demo/busybox:latest
echo "== gorae import / push / rmi / pull ($image)"
gorae import -c 'CMD ["sh"]' "$work/busybox.tar.gz" "$image"
gorae push "$image"
gorae rmi "$image"
gorae pull "$image"
gorae images
curl -s "http://127.0.0.1:$port/v2/_catalog"; echo

echo "== a container on the pulled image, run by gorae-runc"
mkdir -p "$work/bundle/rootfs"
gorae image mount "$image" "$work/bundle/rootfs"
cd "$work/bundle"
"$bin/gorae-runc" spec
jq '.process.terminal = false | .root.readonly = true
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname): pid $$, image rootfs:\"; ls /"]' \
    config.json >config.tmp && mv config.tmp config.json
"$bin/gorae-runc" run "demo-$$"
cd - >/dev/null
"$bin/gorae" --root "$work/root" image unmount "$work/bundle/rootfs"

echo "== gorae daemon, and containers through its Docker Engine API"
cgroup_hash=$(printf '%s' "$work/root" | sha256sum | cut -c1-8)
sock=$work/root/run/gorae.sock
"$bin/gorae" daemon --root "$work/root" 2>"$work/daemon.log" &
daemon_pid=$!
for _ in $(seq 200); do
    grep -q 'API listening' "$work/daemon.log" && break
    sleep 0.05
done
grep 'API listening' "$work/daemon.log" || { cat "$work/daemon.log" >&2; exit 1; }
gorae run --rm --network none "$image" sh -c 'echo "hello from a container run by gorae daemon: $(hostname)"'
gorae run -d --name demo-web --network none --memory 64m "$image" \
    sh -c 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done'
sleep 1
gorae ps
gorae logs --tail 3 demo-web
gorae exec demo-web sh -c 'echo "exec in $(hostname): $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max) bytes of memory"'
if command -v docker >/dev/null; then
    echo "== the docker CLI against gorae daemon"
    DOCKER_HOST=unix://$sock docker ps
fi
gorae stop -t 1 demo-web
gorae rm demo-web
gorae ps -a
