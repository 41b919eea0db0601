#!/usr/bin/env bash
# Runs criterion benchmarks once per code layout and summarises the ratios across layouts.
#
# Usage: bench/layouts.sh BENCH FILTER SEED...
#   e.g. bench/layouts.sh coroutine 'generator_sum|coroutine_switch' 1 2 3 4 5 6 7 8
#
# Where a hot loop lands relative to 64-byte lines moves a loop of a few nanoseconds by
# 10-20%, in either library's favour, and a single build fixes one arbitrary placement.
# For each seed this relinks the bench target with its functions in a shuffled order
# (LLD's --shuffle-sections, the same order for every library in the binary) and runs
# the benchmarks matching FILTER; then it prints, per benchmark, the ratio peer / bobbin
# in every layout with its median, minimum and maximum. Only the final link changes
# between seeds: every library's code is compiled once, identically.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { sed -n '4,5p' "$0"; exit 2; }
bench=$1 filter=$2
shift 2
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-bench}
out=$CARGO_TARGET_DIR/layouts/$bench
mkdir -p "$out"
dirs=()
for seed in "$@"; do
    exe=$(cargo rustc -q --release -p bobbin-bench --bench "$bench" --message-format=json \
            -- -C "link-arg=-Wl,--shuffle-sections=.text*=$seed" |
          python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("executable") and "bench" in m["target"]["kind"]: print(m["executable"])')
    rm -rf "${out:?}/$seed"
    echo "== layout $seed: $exe" >&2
    CRITERION_HOME=$out/$seed "$exe" --bench --noplot "$filter" > "$out/$seed.log" 2>&1
    dirs+=("$out/$seed")
done
python3 bench/report.py --across "${dirs[@]}"
