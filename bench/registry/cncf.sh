#!/bin/sh
# Starts the CNCF registry (Debian docker-registry, distribution 2.8) for bench/registry.sh.
# usage: cncf.sh ADDR ROOT DIR
# Writes DIR/config.yml and execs docker-registry, so the harness's PID is the registry's own
# (its RSS is what gets measured). The config is Debian's shipped one (in-memory blob
# descriptor cache, deletes enabled) without auth and health checks, with errors-only
# logging and no access log: the registry under test must not spend its time writing logs.
# Also usable as the gorae side's stand-in: GORAE_REGISTRY_CMD='bench/registry/cncf.sh
# {addr} {root} {dir}' runs CNCF against CNCF (an A/A run: every ratio should be near 1).
set -eu
[ $# -eq 3 ] || { echo "usage: cncf.sh ADDR ROOT DIR" >&2; exit 2; }
cat >"$3/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: $1
YML
exec docker-registry serve "$3/config.yml"
