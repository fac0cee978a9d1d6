#!/usr/bin/env bash
# Installs the Debian packages gorae's build, demo, tests and benchmarks use, if missing.
# Idempotent; needs root. The Rust toolchain (cargo) is expected to be on the machine.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
# podman (with conmon), docker.io (dockerd, containerd, containerd-shim-runc-v2) and script
# (bsdutils) are for the drop-in tests, which start their own daemons on private sockets.
# docker-registry (CNCF distribution), skopeo, umoci, htpasswd (apache2-utils) and openssl are
# the image tests' real registry, second client, image builder and auth tooling.
# docker-compose is Debian 12's 1.29 (Python, compose v1) for the engine's compose test.
for pkg in busybox-static runc crun hyperfine jq time iproute2 procps nftables \
    podman conmon docker.io containerd bsdutils tar \
    docker-registry skopeo umoci apache2-utils openssl python3 curl docker-compose; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
    apt-get update -qq
    # Don't let the packages start docker/containerd services: the tests start their own.
    policy=/usr/sbin/policy-rc.d
    added_policy=false
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        added_policy=true
    fi
    status=0
    apt-get install -y -qq "${need[@]}" >/dev/null || status=$?
    if $added_policy; then rm -f "$policy"; fi
    ((status == 0)) || exit "$status"
fi
