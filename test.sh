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
if [[ -n $left_cgroups || $left_mounts != 0 || $left_procs != 0 ]]; then
    echo "tests left things behind:" >&2
    echo "cgroups: ${left_cgroups:-none}; mounts: $left_mounts; processes: $left_procs" >&2
    exit 1
fi
echo "no cgroups, mounts or container processes left behind"
