#!/usr/bin/env bash
# Every check gorae has: formatting, clippy, and the whole test suite — unit tests and the
# integration tests that run real containers (those need root; without root they report that
# they were skipped). Afterwards, checks that the tests left no cgroup, mount or container
# process behind.
set -euo pipefail
cd "$(dirname "$0")"
if [[ $(id -u) == 0 ]]; then
    scripts/install-deps.sh
fi
cargo fmt --all -- --check
cargo clippy --all-targets --profile ci -- -D warnings
cargo test --profile ci --workspace

left_cgroups=$(find /sys/fs/cgroup -maxdepth 5 -type d -name 'gorae-*' 2>/dev/null || true)
left_mounts=$(grep -c 'gorae-test' /proc/self/mountinfo || true)
left_procs=$(pgrep -fc 'gorae-test-' || true)
# The engine's interfaces: bridges gorae0 / gr0-<hash> / gr-<net id>, veths vg<hex>; its
# nftables tables gorae / gorae-<hash>.
left_links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 |
    grep -E '^(gorae0|gr0?-[0-9a-f]+|vg[0-9a-f]+)$' | tr '\n' ' ' || true)
left_tables=$(nft list tables 2>/dev/null | awk '$3 ~ /^gorae/ {print $3}' | tr '\n' ' ' || true)
if [[ -n $left_cgroups || $left_mounts != 0 || $left_procs != 0 || -n $left_links || -n $left_tables ]]; then
    echo "tests left things behind:" >&2
    echo "cgroups: ${left_cgroups:-none}; mounts: $left_mounts; processes: $left_procs" >&2
    echo "links: ${left_links:-none}; nft tables: ${left_tables:-none}" >&2
    exit 1
fi
echo "no cgroups, mounts, container processes, interfaces or nft tables left behind"
