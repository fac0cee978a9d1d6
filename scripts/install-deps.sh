#!/usr/bin/env bash
# Installs the Debian packages gorae's build, demo, tests and benchmarks use, if missing.
# Idempotent; needs root. The Rust toolchain (cargo) is expected to be on the machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in busybox-static runc crun hyperfine jq time iproute2 procps; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
