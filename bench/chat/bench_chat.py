#!/usr/bin/env python3
"""bench_chat.py: what serving a model through shoald costs, and what the
local engine's prompt-prefix reuse saves. Python standard library only; it
drives the release build's shoald and shoal.

1. Proxy overhead: the same OpenAI request sent straight to the loopback mock
   (tests/remote/mock_llm.py, no latency) and through shoald's
   /v1/chat/completions to it, alternating, one at a time. shoald's added
   latency is the difference of the medians (whole answers and streams).
2. Prefix reuse: a local model (a synthetic smollm2-135m, Q8_0, unless
   MODEL=FILE) with a long system prompt. The first call with a new system
   prompt computes all of it (cold); a second call with the same system
   prompt and another question reuses its K/V cache (warm). Time to first
   token of both, median over REPS system prompts.
3. Decode speed: greedy tokens/s of the same model streamed through shoald
   against `shoal generate` in one process, same prompt and token count.

Knobs (environment): REPS=7 N_PROXY=300 SYS_WORDS=400 GEN_TOKENS=128
BUILD_DIR=build-release MODEL=FILE SKIP_BUILD=1.
Prints a markdown section for docs/BENCHMARKS.md."""

import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(TOP, os.environ.get("BUILD_DIR", "build-release"))
SHOALD = os.path.join(BUILD, "daemon", "shoald")
SHOAL = os.path.join(BUILD, "daemon", "shoal")
MOCK = os.path.join(TOP, "tests", "remote", "mock_llm.py")
REPS = int(os.environ.get("REPS", "7"))
N_PROXY = int(os.environ.get("N_PROXY", "300"))
SYS_WORDS = int(os.environ.get("SYS_WORDS", "400"))
GEN_TOKENS = int(os.environ.get("GEN_TOKENS", "128"))


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=300):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def post(conn, path, body):
    """POST body; (status, seconds to the whole answer, seconds to the first
    content delta or None, answer text)."""
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    conn.request("POST", path, data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    if not body.get("stream"):
        doc = r.read()
        t = time.perf_counter() - t0
        text = json.loads(doc)["choices"][0]["message"]["content"] if r.status == 200 else doc
        return r.status, t, None, text
    first = None
    parts = []
    post.usage = None
    while True:
        line = r.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        if line == b"data: [DONE]":
            break
        ev = json.loads(line[6:])
        if ev.get("usage"):
            post.usage = ev["usage"]
        for ch in ev.get("choices", []):
            piece = ch.get("delta", {}).get("content")
            if piece:
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(piece)
    r.read()
    return r.status, time.perf_counter() - t0, first, "".join(parts)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def build():
    if os.environ.get("SKIP_BUILD"):
        return
    subprocess.run(["cmake", "-S", TOP, "-B", BUILD, "-DCMAKE_BUILD_TYPE=Release"], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", BUILD, "--target", "shoald", "shoal", "-j",
                    str(os.cpu_count() or 2)], check=True, stdout=subprocess.DEVNULL)


def system_prompt(salt):
    words = ("the agent reads the tool list and the rules before it answers any question "
             "about files budgets routes and traces").split()
    body = " ".join(words[i % len(words)] for i in range(SYS_WORDS))
    return "Session %s. You are a careful assistant. %s" % (salt, body)


def main():
    build()
    tmp = tempfile.mkdtemp(prefix="shoal-bench-chat.")
    model = os.environ.get("MODEL")
    if not model:
        model = os.path.join(tmp, "smollm2-135m-q8_0.gguf")
        subprocess.run([SHOAL, "model", "synth", "--shape", "smollm2-135m", "--type", "Q8_0",
                        "-o", model], check=True, stdout=subprocess.DEVNULL)
    mock = subprocess.Popen([sys.executable, MOCK], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    port = int(mock.stdout.readline())
    sock = os.path.join(tmp, "shoal.sock")
    cfg = os.path.join(tmp, "shoal.yaml")
    with open(cfg, "w") as f:
        f.write("""listen:
  socket: %s
log:
  level: warn
traces:
  path: %s
models:
  small:
    provider: local
    path: %s
  mock:
    provider: openai
    base_url: http://127.0.0.1:%d/v1
    model: mock-1
""" % (sock, os.path.join(tmp, "traces.db"), model, port))
    log = open(os.path.join(tmp, "shoald.log"), "w")
    daemon = subprocess.Popen([SHOALD, "--config", cfg], stderr=log)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.1)
        rows = run(sock, port, model, tmp)
    finally:
        daemon.terminate()
        daemon.wait(30)
        mock.stdin.close()
        mock.wait(10)
    print(rows)


def run(sock, port, model, tmp):
    out = []
    rev = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "uncommitted"
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    out.append("### Serving models through shoald (`bench/chat/bench_chat.py`)\n")
    out.append("%s, rev %s, %s, %d CPUs.\n" % (time.strftime("%Y-%m-%d", time.gmtime()), rev,
                                               cpu, os.cpu_count() or 0))

    # 1. Proxy overhead against the mock, alternating direct and through shoald.
    direct = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    via = UnixConnection(sock)
    msgs = [{"role": "user", "content": "Say hello."}]
    out.append("| request | direct p50 ms | direct p99 ms | via shoald p50 ms | via shoald p99 ms "
               "| added p50 µs | added p99 µs |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for stream in (False, True):
        d_t, v_t = [], []
        for i in range(N_PROXY + 20):
            b = {"model": "mock-1", "messages": msgs, "stream": stream}
            s1, t1, _, _ = post(direct, "/v1/chat/completions", b)
            b["model"] = "mock"
            s2, t2, _, _ = post(via, "/v1/chat/completions", b)
            if s1 != 200 or s2 != 200:
                raise SystemExit("proxy request failed: %d %d" % (s1, s2))
            if i >= 20:  # warm-up
                d_t.append(t1)
                v_t.append(t2)
        out.append("| %s | %.3f | %.3f | %.3f | %.3f | %.0f | %.0f |" % (
            "stream" if stream else "whole", pct(d_t, 50) * 1e3, pct(d_t, 99) * 1e3,
            pct(v_t, 50) * 1e3, pct(v_t, 99) * 1e3, (pct(v_t, 50) - pct(d_t, 50)) * 1e6,
            (pct(v_t, 99) - pct(d_t, 99)) * 1e6))
    out.append("")

    # 2. Prefix reuse: cold and warm time to first token.
    cold, warm, cached, prompt_tokens = [], [], [], []
    for rep in range(REPS + 1):
        sysmsg = {"role": "system", "content": system_prompt("%d-%d" % (rep, time.time_ns()))}
        for k, q in enumerate(("What is a route?", "Which tool reads files?")):
            b = {"model": "small", "stream": True, "max_tokens": 1, "temperature": 0,
                 "messages": [sysmsg, {"role": "user", "content": q}],
                 "stream_options": {"include_usage": True}}
            s, t, first, _ = post(via, "/v1/chat/completions", b)
            if s != 200:
                raise SystemExit("local request failed: %d" % s)
            if rep == 0:
                continue  # loads the model
            (cold if k == 0 else warm).append(first if first is not None else t)
        if rep:
            u = usage(via, sysmsg)
            cached.append(u["prompt_tokens_details"]["cached_tokens"])
            prompt_tokens.append(u["prompt_tokens"])
    c50, w50 = statistics.median(cold), statistics.median(warm)
    out.append("Prefix reuse, `%s`, a %d-token prompt (system prompt of %d words, then a "
               "question), first token; median of %d system prompts:\n" % (
                   os.path.basename(model), int(statistics.median(prompt_tokens)), SYS_WORDS,
                   REPS))
    out.append("| call | first token ms | prompt tokens reused |")
    out.append("|---|---:|---:|")
    out.append("| cold (new system prompt) | %.1f | 0 |" % (c50 * 1e3))
    out.append("| warm (same system prompt, new question) | %.1f | %d |" % (
        w50 * 1e3, int(statistics.median(cached))))
    out.append("| cold / warm | %.1f× | |" % (c50 / w50))
    out.append("")

    # 3. Decode speed: shoald (stream) vs the CLI in one process.
    msgs = [{"role": "user", "content": "Tell me a long story about a fish."}]
    mpath = os.path.join(tmp, "msgs.json")
    with open(mpath, "w") as f:
        json.dump(msgs, f)
    d_rate, c_rate = [], []
    for rep in range(REPS):
        b = {"model": "small", "stream": True, "max_tokens": GEN_TOKENS, "temperature": 0,
             "messages": msgs, "stream_options": {"include_usage": True}}
        s, t, first, _ = post(via, "/v1/chat/completions", b)
        # The first content delta came after one token: the rest are decode.
        n = post.usage["completion_tokens"] if post.usage else GEN_TOKENS
        d_rate.append((n - 1) / (t - first))
        p = subprocess.run([SHOAL, "generate", "--model", model, "--chat", mpath, "--temp", "0",
                            "-n", str(GEN_TOKENS)], capture_output=True, text=True, check=True)
        m = re.search(r"generation: (\d+) tokens in ([\d.]+) ms", p.stderr)
        c_rate.append(int(m.group(1)) / (float(m.group(2)) / 1e3))
    dr, cr = statistics.median(d_rate), statistics.median(c_rate)
    out.append("Decode, greedy, %d tokens, median of %d runs (alternating):\n" % (GEN_TOKENS, REPS))
    out.append("| path | tokens/s |")
    out.append("|---|---:|")
    out.append("| `shoal generate` (one process) | %.1f |" % cr)
    out.append("| shoald, streamed over the socket | %.1f |" % dr)
    out.append("| shoald / CLI | %.2f |" % (dr / cr))
    return "\n".join(out)


def usage(conn, sysmsg):
    """The usage of one more warm call (non-stream) with sysmsg."""
    b = {"model": "small", "max_tokens": 1, "temperature": 0,
         "messages": [sysmsg, {"role": "user", "content": "And budgets?"}]}
    data = json.dumps(b).encode()
    conn.request("POST", "/v1/chat/completions", data, {"Content-Type": "application/json"})
    r = conn.getresponse()
    return json.loads(r.read())["usage"]


if __name__ == "__main__":
    main()
