#!/bin/sh
# Builds shoal and runs the whole test suite (unit, integration, fuzz-corpus
# replay, lint). This is the README's test command and what CI runs.
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset default >/dev/null
cmake --build --preset default -j"$jobs"
ctest --preset default -j"$jobs" "$@"
