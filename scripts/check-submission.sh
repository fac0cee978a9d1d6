#!/usr/bin/env bash
# Before a stop: how big is what would be submitted since BASE (default: the last commit
# that is not ours to submit, given as $1)? A submission over 512 MiB packed or 256 MiB of
# diffs is refused whole, so anything near that is a mistake (build output, core dumps).
# Also lists the largest blobs added, and fails if any is over 1 MiB.
set -euo pipefail
base=${1:?usage: check-submission.sh BASE-COMMIT}
cd "$(dirname "$0")/.."
bundle=$(mktemp)
trap 'rm -f "$bundle"' EXIT
git bundle create "$bundle" "$base..HEAD" >/dev/null 2>&1
echo "packed: $(du -h "$bundle" | cut -f1)"
echo "diff text: $(git diff "$base" HEAD | wc -c) bytes"
big=$(git rev-list --objects "$base..HEAD" | git cat-file --batch-check='%(objecttype) %(objectsize) %(rest)' |
    awk '$1 == "blob" && $2 > 1048576 {print}')
git rev-list --objects "$base..HEAD" | git cat-file --batch-check='%(objecttype) %(objectsize) %(rest)' |
    awk '$1 == "blob"' | sort -k2 -n -r | head -5
if [[ -n $big ]]; then
    echo "blobs over 1 MiB:" >&2
    echo "$big" >&2
    exit 1
fi
