#!/usr/bin/env bash
# Sets gorae up on a fresh Debian 12 machine and runs its main job: builds gorae-runc, makes
# an OCI bundle from the static busybox, and runs a container with it. Needs root.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install-deps.sh
cargo build --release
runc_bin=$PWD/target/x86_64-unknown-linux-gnu/release/gorae-runc

bundle=$(mktemp -d /tmp/gorae-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/"
for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
mkdir -p "$bundle/rootfs/"{proc,sys,dev,etc,tmp}
cd "$bundle"
"$runc_bin" spec
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "echo \"hello from $(hostname): pid $$ in its own namespace\"; id; ls /"]' \
    config.json > config.tmp && mv config.tmp config.json
"$runc_bin" run "demo-$$"
