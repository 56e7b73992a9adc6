#!/bin/sh
# run.sh: shoald's HTTP benchmark. Builds Release, starts shoald and the
# reference server (libevent's evhttp, bench/http/evhttp_ref.c) on temporary
# sockets pinned to CPU 0, drives each in turn with shoal-loadgen pinned to
# CPU 1 at 1, 16 and 64 connections, and prints a markdown table of the
# medians of REPS runs and the ratio shoald / evhttp.
# Invariant: the daemon it started is always stopped (SIGTERM) on the way out.
#
# Knobs (environment): CONNS="1 16 64" DURATION=5 WARMUP=1 REPS=3 PATH_=/healthz
# BUILD_DIR=build-release SKIP_BUILD=1 (reuse the build) SHOALD=path (another daemon)
# PIN=split (daemon CPU 0, loadgen CPU 1; default) | same (both on CPU 0) | none.
# On small VMs a cross-CPU wake-up can cost tens of microseconds, which then
# dominates the 1-connection row; PIN=same shows the other side of that.
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

CONNS=${CONNS:-"1 16 64"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
REPS=${REPS:-3}
PATH_=${PATH_:-/healthz}
BUILD_DIR=${BUILD_DIR:-build-release}
SHOALD=${SHOALD:-$BUILD_DIR/daemon/shoald}
LOADGEN=$BUILD_DIR/bench/http/shoal-loadgen
REF=$BUILD_DIR/bench/http/evhttp_ref

if [ -z "${SKIP_BUILD:-}" ]; then
    cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" --target shoald shoal-loadgen evhttp_ref -j "$(nproc)" >/dev/null
fi
[ -x "$SHOALD" ] || { echo "run.sh: no daemon at $SHOALD" >&2; exit 1; }
[ -x "$LOADGEN" ] || { echo "run.sh: no load generator at $LOADGEN" >&2; exit 1; }
[ -x "$REF" ] || { echo "run.sh: no reference server at $REF" >&2; exit 1; }

# Separate CPUs keep the generator from stealing the daemon's cycles; with a
# single CPU they share it and the table says so.
ncpu=$(nproc)
PIN=${PIN:-split}
pin_daemon=""
pin_loadgen=""
pinning="not pinned ($ncpu CPUs)"
if command -v taskset >/dev/null 2>&1; then
    case $PIN in
    split)
        if [ "$ncpu" -ge 2 ]; then
            pin_daemon="taskset -c 0"
            pin_loadgen="taskset -c 1"
            pinning="shoald on CPU 0, loadgen on CPU 1"
        fi
        ;;
    same)
        pin_daemon="taskset -c 0"
        pin_loadgen="taskset -c 0"
        pinning="shoald and loadgen both on CPU 0"
        ;;
    none) ;;
    *)
        echo "run.sh: PIN must be split, same or none" >&2
        exit 2
        ;;
    esac
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shoal-bench.XXXXXX")
sock=$tmp/shoal.sock
refsock=$tmp/ref.sock
pid=""
refpid=""
cleanup() {
    for p in $pid $refpid; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
            wait "$p" 2>/dev/null || true
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$tmp/shoal.yaml" <<EOF
listen:
  socket: $sock
log:
  level: warn
EOF

# shellcheck disable=SC2086 # pin_daemon is a command prefix or nothing
$pin_daemon "$SHOALD" --config "$tmp/shoal.yaml" 2>"$tmp/shoald.log" &
pid=$!
# shellcheck disable=SC2086
$pin_daemon "$REF" "$refsock" 2>"$tmp/ref.log" &
refpid=$!

i=0
while [ ! -S "$sock" ] || [ ! -S "$refsock" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: shoald exited before listening; its log:" >&2
        cat "$tmp/shoald.log" >&2
        pid=""
        exit 1
    fi
    i=$((i + 1))
    if [ "$i" -gt 100 ]; then
        echo "run.sh: no socket at $sock after 10 s" >&2
        exit 1
    fi
    sleep 0.1
done

field() { # field NAME JSON: a number from loadgen's one-line JSON
    printf '%s\n' "$2" | sed -n "s/.*\"$1\":\\([0-9.]*\\).*/\\1/p"
}
median() { # median of the space-separated numbers in $1
    printf '%s\n' "$1" | tr ' ' '\n' | sed '/^$/d' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

# measure SOCKET C: append rps, p50, p99 and errors of one run to m_*
measure() {
    # shellcheck disable=SC2086
    out=$($pin_loadgen "$LOADGEN" --socket "$1" --path "$PATH_" --connections "$2" \
        --duration "$DURATION" --warmup "$WARMUP" --json) || {
        echo "run.sh: shoal-loadgen failed on $1 at $2 connections; logs:" >&2
        cat "$tmp/shoald.log" "$tmp/ref.log" >&2
        exit 1
    }
    m_rps="$m_rps $(field rps "$out")"
    m_p50="$m_p50 $(field p50 "$out")"
    m_p99="$m_p99 $(field p99 "$out")"
    m_err=$((m_err + $(field errors "$out")))
}

rows=""
for c in $CONNS; do
    s_rps="" s_p50="" s_p99="" s_err=0 r_rps="" r_p50="" r_p99="" r_err=0
    r=1
    # Alternate the two servers run by run so drift in the machine's load
    # hits both alike.
    while [ "$r" -le "$REPS" ]; do
        m_rps="" m_p50="" m_p99="" m_err=0
        measure "$sock" "$c"
        s_rps="$s_rps$m_rps" s_p50="$s_p50$m_p50" s_p99="$s_p99$m_p99" s_err=$((s_err + m_err))
        m_rps="" m_p50="" m_p99="" m_err=0
        measure "$refsock" "$c"
        r_rps="$r_rps$m_rps" r_p50="$r_p50$m_p50" r_p99="$r_p99$m_p99" r_err=$((r_err + m_err))
        r=$((r + 1))
    done
    srps=$(median "$s_rps")
    rrps=$(median "$r_rps")
    ratio=$(awk -v a="$srps" -v b="$rrps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    runs=$(printf '%s\n' "$s_rps" | awk '{ for (i = 1; i <= NF; i++) printf "%s%.0f", (i > 1 ? " / " : ""), $i }')
    rows="$rows| $c | $(printf '%.0f' "$srps") | $(median "$s_p50") | $(median "$s_p99") | $s_err | $(printf '%.0f' "$rrps") | $(median "$r_p50") | $(median "$r_p99") | $r_err | $ratio | $runs |
"
done

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
kill -TERM "$refpid" 2>/dev/null || true
wait "$refpid" 2>/dev/null || true
refpid=""

rev=$(git rev-parse --short HEAD 2>/dev/null || echo "uncommitted")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "### GET $PATH_ over a Unix socket: shoald vs libevent evhttp"
echo
echo "$(date -u +%Y-%m-%d), rev $rev, ${cpu:-unknown CPU}, $pinning;" \
    "${DURATION}s per run after ${WARMUP}s warm-up, median of $REPS runs."
echo
echo "| connections | shoald req/s | p50 µs | p99 µs | errors | evhttp req/s | p50 µs | p99 µs | errors | shoald / evhttp | shoald req/s of each run |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
printf '%s' "$rows"
if [ "$status" -ne 0 ]; then
    echo "run.sh: shoald exited with status $status after SIGTERM" >&2
    exit 1
fi
