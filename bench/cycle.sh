#!/bin/sh
# create + start + delete of one container, as ONE command for hyperfine and
# for bench/paired.py.  Used identically for all three runtimes, so the cost of
# this /bin/sh (dash on Debian: fork+exec of sh, ~1 ms) is the same for each.
# `start` returns once /bin/true was started; `delete --force` then works
# whether or not it has already exited (runc refuses a plain delete of a
# running container).
# usage: cycle.sh RUNTIME STATE_ROOT BUNDLE ID
set -e
"$1" --root "$2" create --bundle "$3" "$4"
"$1" --root "$2" start "$4"
"$1" --root "$2" delete --force "$4"
