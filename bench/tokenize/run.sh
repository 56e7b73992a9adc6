#!/bin/sh
# run.sh: the tokenizer benchmark. Builds Release, makes the corpus from
# fixed inputs (English: the reference data's READMEs; code: the engine's C
# sources; multilingual: llama.cpp's tokenizer test strings plus built-in
# sentences in ten scripts), and encodes it with one vocabulary per
# tokenizer kind, printing a markdown table of medians.
# Knobs (environment): SIZE=4194304 REPS=5 BUILD_DIR=build-release
# SKIP_BUILD=1 REF=../shared/ref PIN="taskset -c 0" (empty: not pinned).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
SIZE=${SIZE:-4194304}
REPS=${REPS:-5}
BUILD_DIR=${BUILD_DIR:-build-release}
REF=${REF:-$top/../shared/ref}
BIN=$BUILD_DIR/bench/tokenize/shoal-bench-tokenize
if [ -z "${PIN+x}" ]; then
    PIN=""
    command -v taskset >/dev/null 2>&1 && PIN="taskset -c 0"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" --target shoal-bench-tokenize -j "$(nproc)" >/dev/null 2>&1 ||
        { echo "run.sh: build failed" >&2; exit 1; }
fi
[ -x "$BIN" ] || { echo "run.sh: no benchmark at $BIN" >&2; exit 1; }
[ -d "$REF/vocab" ] || { echo "run.sh: no reference data at $REF" >&2; exit 1; }

set -- --size "$SIZE" --reps "$REPS" --english "$REF/README.md" \
    --english "$REF/templates/README.md" --english "$REF/BASELINE.md"
for f in engine/*.c; do
    case $f in engine/unicode_data.c) continue ;; esac # tables, not code people write
    set -- "$@" --code "$f"
done
for f in "$REF"/vocab/*.inp; do set -- "$@" --multi "$f"; done
V=$REF/vocab
set -- "$@" "$V/ggml-vocab-llama-spm.gguf" "$V/ggml-vocab-gpt-2.gguf" \
    "$V/ggml-vocab-tiny-bpe.gguf" "$V/ggml-vocab-deepseek-llm.gguf" \
    "$V/ggml-vocab-deepseek-coder.gguf" "$V/ggml-vocab-falcon.gguf" "$V/ggml-vocab-bert-bge.gguf"

rev=$(git rev-parse --short HEAD 2>/dev/null || echo "uncommitted")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "### Tokenizer throughput"
echo
echo "$(date -u +%Y-%m-%d), rev $rev, ${cpu:-unknown CPU}, one thread${PIN:+ ($PIN)};" \
    "median of $REPS runs after one warm-up; documents of ~16 KiB, add_special on."
echo
# shellcheck disable=SC2086 # PIN is a command prefix or nothing
$PIN "$BIN" "$@"
