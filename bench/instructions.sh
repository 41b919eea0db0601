#!/usr/bin/env bash
# Counts instructions per operation under callgrind, bobbin against corosensei (and
# Boost.Context's fcontext for the symmetric switch), and prints a Markdown table.
#
# Usage: bench/instructions.sh [N]      (N iterations, default 100000)
#
# Each probe runs one library alone (the probes' one-library modes), once with N and once
# with 2N iterations; the difference divided by N is the cost of one iteration with the
# set-up cancelled out. Instruction counts do not depend on the machine's load, unlike
# times; they do depend on the compiler and the code layout only through the instructions
# chosen, not through where they land.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
command -v valgrind >/dev/null || { echo "instructions.sh: valgrind is required" >&2; exit 1; }
cargo build -q --release -p bobbin-bench --example switch_probe --example gen_probe --example ctx_probe
dir=${CARGO_TARGET_DIR:-target}/release/examples

# collected EXAMPLE ARGS...: the instructions callgrind counted for one run.
collected() {
    local exe=$1
    shift
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$dir/$exe" "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

# per_iteration EXAMPLE ARGS_BEFORE_N... -- ARGS_AFTER_N...: instructions per iteration.
per_iteration() {
    local exe=$1 before=() after=() seen=0
    shift
    for a in "$@"; do
        if [ "$a" = "--" ]; then seen=1; elif [ $seen = 0 ]; then before+=("$a"); else after+=("$a"); fi
    done
    local one two
    one=$(collected "$exe" "${before[@]}" "$n" "${after[@]}")
    two=$(collected "$exe" "${before[@]}" "$((2 * n))" "${after[@]}")
    python3 -c "print(f'{($two - $one) / $n:.1f}')"
}

# row OPERATION BOBBIN PEER PROBE: one line of the table (a | in PROBE escaped for Markdown).
row() {
    printf '| %s | %s | %s | `%s` |\n' "$1" "$2" "$3" "${4//|/\\|}"
}

echo "| operation (loop included) | bobbin | peer | probe |"
echo "|---|---:|---|---|"
row "coroutine switch: resume + suspend round trip" \
    "$(per_iteration switch_probe -- bobbin)" \
    "corosensei $(per_iteration switch_probe -- coro)" "switch_probe N bobbin|coro"
row "coroutine create + run + drop" \
    "$(per_iteration switch_probe -- create-bobbin)" \
    "corosensei, stack reused by hand, $(per_iteration switch_probe -- create-coro)" \
    "switch_probe N create-bobbin|create-coro"
row "generator, per item, one generator" \
    "$(per_iteration gen_probe -- bobbin)" \
    "corosensei $(per_iteration gen_probe -- coro)" "gen_probe N bobbin|coro"
row "generator, per item, a generator per 1,000 items" \
    "$(per_iteration gen_probe -- bobbin 1000)" \
    "corosensei, stack reused by hand, $(per_iteration gen_probe -- coro 1000)" \
    "gen_probe N bobbin|coro 1000"
row "\`Context::swap\` round trip" \
    "$(per_iteration ctx_probe -- ctx)" \
    "fcontext $(per_iteration ctx_probe -- fctx)" "ctx_probe N ctx|fctx"
