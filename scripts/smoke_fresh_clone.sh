#!/usr/bin/env bash
# Smoke test of README.rst's two commands in a fresh clone with a fresh virtual environment:
#   scripts/smoke_fresh_clone.sh [REPO]   (REPO defaults to this checkout)
# Not part of CI (it downloads every dependency); prints each command's last lines and timing.
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
cd "$work/clone"
for target in demo test; do
    echo "== make $target"
    start=$(date +%s)
    make "$target" > "$work/$target.log" 2>&1 || { tail -30 "$work/$target.log"; exit 1; }
    tail -3 "$work/$target.log"
    echo "== make $target: ok in $(( $(date +%s) - start )) s"
done
ls demo-out/summary.png
