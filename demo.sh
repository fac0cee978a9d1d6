#!/usr/bin/env bash
# Sets gorae up on a fresh Debian 12 machine and runs its main job. Needs root.
#  1. builds gorae and gorae-runc;
#  2. makes a busybox image from Debian's busybox-static with `gorae import`;
#  3. starts gorae's own registry (`gorae registry serve`), pushes the image to it, removes
#     it locally and pulls it back;
#  4. mounts the pulled image read-only and runs a container on it with gorae-runc.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo build --release
bin=$PWD/target/x86_64-unknown-linux-gnu/release

work=$(mktemp -d /tmp/gorae-demo.XXXXXX)
registry_pid=
cleanup() {
    mountpoint -q "$work/bundle/rootfs" && "$bin/gorae" --root "$work/root" image unmount "$work/bundle/rootfs"
    [[ -n $registry_pid ]] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null
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
