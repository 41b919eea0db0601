#!/usr/bin/env bash
# Guest instructions per iteration on aarch64, counted under qemu-user: with -singlestep
# every translation block is one instruction, and -d exec,nochain logs every block run.
# The count for 2N iterations minus the count for N, over N, leaves only the loop.
# Needs: rustup target aarch64-unknown-linux-gnu, gcc-aarch64-linux-gnu, qemu-user.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
cargo build -q --release --target aarch64-unknown-linux-gnu
bin=target/aarch64-unknown-linux-gnu/release/aarch64-probe
log=$(mktemp)
trap 'rm -f "$log"' EXIT
count() {
    qemu-aarch64 -L /usr/aarch64-linux-gnu -singlestep -d exec,nochain -D "$log" "$bin" "$1" "$2" >/dev/null
    grep -c '^Trace' "$log"
}
n=2000
for w in switch-bobbin switch-corosensei gen-bobbin gen-corosensei; do
    a=$(count "$w" "$n")
    b=$(count "$w" $((2 * n)))
    echo "$w: $(((b - a) / n)) instructions per iteration"
done
