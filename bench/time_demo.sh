#!/usr/bin/env bash
# Times `make demo` from a fresh clone of this repository, twice (cold, then cached), per-stage times included.
# Usage: bench/time_demo.sh [CLONE_DIR]   - prints a Markdown table row for docs/BENCHMARKS.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -d)/pin2vec}
git clone -q "$repo" "$dir"
cd "$dir"
for attempt in cold cached; do
  start=$(date +%s)
  make demo > "demo-$attempt.log" 2>&1
  total=$(( $(date +%s) - start ))
  pipeline=$(grep -oE "pin2vec run finished in [0-9]+s" "demo-$attempt.log" | grep -oE "[0-9]+s$" | tr -d s)
  hr10=$(grep -E "^  (pin2vec|cooccurrence|blend) +0\." "demo-$attempt.log" | awk '{printf "%s %s; ", $1, $2}')
  recall=$(grep -oE "recall@10 vs exact search [0-9.]+" "demo-$attempt.log" | grep -oE "[0-9.]+$")
  echo "| $attempt | ${total}s | ${pipeline}s | $hr10 | $recall | $(nproc) cores, $(uname -m) |"
  grep -E "done in" "demo-$attempt.log" | sed 's/^/    /'
done
