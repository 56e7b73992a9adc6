#!/bin/sh
# run.sh: the trace store benchmark. Builds Release with the bench target,
# then runs it with synchronous=NORMAL and FULL, printing medians.
# Knobs (environment): SPANS=200000 REPS=5 BUILD_DIR=build-release
# SKIP_BUILD=1 TMPDIR=... (the database lives there: use the real disk).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
SPANS=${SPANS:-200000}
REPS=${REPS:-5}
BUILD_DIR=${BUILD_DIR:-build-release}
BIN=$BUILD_DIR/bench/traces/shoal-bench-traces
if [ -z "${SKIP_BUILD:-}" ]; then
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" -j"$(nproc)" --target shoal-bench-traces >/dev/null
fi
for mode in normal full; do
    "$BIN" "$SPANS" "$REPS" "$mode"
done
