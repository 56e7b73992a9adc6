#!/bin/sh
# The README's first command: install dependencies, build, start shoald on a
# private socket with a synthetic model configured, talk to it with the CLI
# and with curl, call a tool, ask the model through the daemon, then stop it.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake --preset default >/dev/null
cmake --build --preset default -j"$jobs" >/dev/null
echo "quickstart: built build/daemon/shoald and build/daemon/shoal"

dir=$(mktemp -d /tmp/shoal-quickstart.XXXXXX)
sock="$dir/shoal.sock"
trap 'rm -rf "$dir"' EXIT INT TERM
echo "\$ shoal model synth --shape tiny --type q4_k_m -o $dir/tiny.gguf"
build/daemon/shoal model synth --shape tiny --type q4_k_m -o "$dir/tiny.gguf"
printf 'listen:\n  socket: %s\nmodels:\n  tiny:\n    provider: local\n    path: %s\n' \
    "$sock" "$dir/tiny.gguf" >"$dir/shoal.yaml"
XDG_STATE_HOME="$dir" XDG_DATA_HOME="$dir" build/daemon/shoald --config "$dir/shoal.yaml" \
    2>"$dir/shoald.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
i=0
until build/daemon/shoal --socket "$sock" health >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $pid 2>/dev/null; then
        echo "quickstart: shoald did not start; its log:" >&2
        cat "$dir/shoald.log" >&2
        exit 1
    fi
    sleep 0.05
done

echo
echo "\$ shoal --socket $sock status"
build/daemon/shoal --socket "$sock" status
echo
echo "\$ curl --unix-socket $sock http://localhost/v1/version"
curl -sS --unix-socket "$sock" http://localhost/v1/version
echo
echo
echo "\$ shoal --socket $sock tool call calculator '{\"expression\": \"6 * 7\"}'"
build/daemon/shoal --socket "$sock" tool call calculator '{"expression": "6 * 7"}'
echo
echo "\$ shoal --socket $sock chat tiny \"hello\" -n 16 --temp 0   (random weights: noise)"
build/daemon/shoal --socket "$sock" chat tiny "hello" -n 16 --temp 0
echo
echo "\$ curl --unix-socket $sock http://localhost/v1/chat/completions -d '{\"model\":\"tiny\",...}'"
curl -sS --unix-socket "$sock" http://localhost/v1/chat/completions \
    -d '{"model":"tiny","messages":[{"role":"user","content":"hello"}],"max_tokens":8,"temperature":0}'
echo
kill -TERM $pid
wait $pid
trap - EXIT INT TERM
echo
echo "quickstart: shoald stopped cleanly; its log:"
cat "$dir/shoald.log"
rm -rf "$dir"
echo
echo "Run it for real:  build/daemon/shoald   (then: build/daemon/shoal status)"
