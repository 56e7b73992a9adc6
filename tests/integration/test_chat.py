#!/usr/bin/env python3
"""Integration tests of shoald's OpenAI-compatible routes, POST
/v1/chat/completions and GET /v1/models, end to end over the Unix socket.
Local GGUF models (from the reference data, $SHOAL_REF_DIR) are checked
against independent paths: `shoal generate` run in its own process,
`shoal template render` + `shoal tokenize` for prompt sizes and the reused
prefix, `shoal generate --logprobs` for log-probabilities. Remote models go
to tests/remote/mock_llm.py (real OpenAI and Anthropic wire formats), whose
scripted usage gives the expected tokens and cost. Every call must leave a
run in the trace store; the API key may appear only in the upstream auth
header. Without the reference data the local part is skipped.
Run: SHOALD=build/daemon/shoald SHOAL=build/daemon/shoal \
     SHOAL_REF_DIR=../shared/ref python3 test_chat.py"""

import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from shoaltest import Daemon, get, open_stream, post_json, post_raw, run_cli  # noqa: E402

MOCK = os.path.join(HERE, "..", "remote", "mock_llm.py")
REF = os.environ.get("SHOAL_REF_DIR") or os.path.join(HERE, "..", "..", "..", "shared", "ref")
STORIES = os.path.join(REF, "models", "stories260K.gguf")
RANDOM = os.path.join(REF, "models", "llama-2-tiny-random.gguf")
HAVE_REF = os.path.isfile(STORIES) and os.path.isfile(RANDOM)
NO_REF = "reference models not found under %s (set SHOAL_REF_DIR): local chat tests skipped" % REF
KEY = "sk-test-chat-0123456789abcdef"
CHAT = "/v1/chat/completions"

SYSTEM = ("You are a storyteller for small children. Once upon a time there was a little girl "
          "named Lily. She lived in a small house with her mom, her dad and a big brown dog "
          "called Max. Every day Lily and Max played in the park near the river, and every "
          "night her mom told her a story about the stars.")
MSG_A = [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": "Tell me about the dog."}]
MSG_B = [{"role": "system", "content": SYSTEM},
         {"role": "user", "content": "What did Lily find in the garden one sunny morning?"}]
# A conversation stories260K ends by itself (EOS) well before 800 tokens,
# as the CLI confirms in test_greedy_equals_cli.
MSG_EOS = [{"role": "user", "content": "Who is Max?"}]


# ---- helpers ----

def content(doc):
    return doc["choices"][0]["message"]["content"]


def finish(doc):
    return doc["choices"][0]["finish_reason"]


def walk(spans):
    for s in spans:
        yield s
        yield from walk(s.get("children", []))


def run_ids(sock):
    r = get(sock, "/v1/runs?agent=chat&limit=1000")
    assert r.status == 200, r
    return {x["id"] for x in r.json()["runs"]}


def new_runs(sock, before, count=1, timeout=5.0):
    """The details of the count runs not in before, once all have ended
    (the trace store writes behind the answer)."""
    deadline = time.time() + timeout
    while True:
        r = get(sock, "/v1/runs?agent=chat&limit=1000")
        runs = [x for x in r.json()["runs"] if x["id"] not in before]
        ended = [x for x in runs if x["status"] in ("ok", "error", "cancelled")]
        if len(ended) >= count or time.time() > deadline:
            break
        time.sleep(0.05)
    return [get(sock, "/v1/runs/%d" % x["id"]).json() for x in sorted(ended, key=lambda x: x["id"])]


def llm_span(test, detail):
    spans = [s for s in walk(detail["spans"]) if s["kind"] == "llm"]
    test.assertEqual(len(spans), 1, detail)
    return spans[0]


def read_stream(sock, body, timeout=60.0):
    """(response head, [event data strings]) of a streamed call; events is
    None when the answer was a whole (non-chunked) response."""
    conn, head, sse = open_stream(sock, post_raw(CHAT, json.dumps(body).encode()), timeout)
    with conn:
        if sse is None:
            return head, None
        events = []
        while True:
            e = sse.event()
            if e is None:
                return head, events
            events.append(e)


def check_stream(test, head, events, model, include_usage):
    """Check the event sequence of a chat stream; returns (text, finish
    reason, usage or None, error object or None)."""
    test.assertEqual(head.status, 200, head)
    test.assertTrue(head.headers.get("content-type", "").startswith("text/event-stream"), head)
    test.assertIsNotNone(events, "a stream was asked for but the answer is not chunked")
    test.assertGreaterEqual(len(events), 2, events)
    test.assertEqual(events[-1], "[DONE]", events[-3:])
    test.assertEqual(events.count("[DONE]"), 1, events)
    docs = [json.loads(e) for e in events[:-1]]
    error = None
    if "error" in docs[-1]:
        error = docs.pop()["error"]
    ids = set()
    first = docs[0]
    test.assertEqual(first["object"], "chat.completion.chunk", first)
    test.assertEqual(first["choices"][0]["delta"].get("role"), "assistant", first)
    test.assertIn(first["choices"][0]["delta"].get("content"), (None, ""), first)
    text, fin, usage = "", None, None
    for i, d in enumerate(docs):
        test.assertNotIn("error", d, docs)
        test.assertEqual(d["object"], "chat.completion.chunk", d)
        test.assertEqual(d["model"], model, d)
        ids.add(d["id"])
        test.assertIsNone(usage, "a chunk after the usage chunk: %r" % d)
        if d["choices"] == []:
            test.assertTrue(include_usage, "usage chunk without include_usage: %r" % d)
            test.assertIsNotNone(fin, "usage chunk before the finish chunk")
            usage = d["usage"]
            continue
        test.assertIsNone(d.get("usage"), d)
        test.assertEqual(len(d["choices"]), 1, d)
        ch = d["choices"][0]
        test.assertEqual(ch["index"], 0, d)
        test.assertIsNone(fin, "a chunk after the finish chunk: %r" % d)
        if ch.get("finish_reason") is not None:
            fin = ch["finish_reason"]
            test.assertIn(ch["delta"].get("content"), (None, ""), d)
            continue
        if i > 0:
            test.assertNotIn("role", ch["delta"], d)
            test.assertIsInstance(ch["delta"].get("content"), str, d)
        text += ch["delta"].get("content") or ""
    test.assertEqual(len(ids), 1, "chunks of one stream carry different ids: %r" % ids)
    if error is None:
        test.assertIsNotNone(fin, "no chunk with a finish_reason")
        test.assertEqual(usage is not None, include_usage, docs[-2:])
    return text, fin, usage, error


def check_error(test, r, status, etype=None, phrase=None, code=None):
    test.assertEqual(r.status, status, r)
    test.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
    err = r.json()["error"]
    test.assertIsInstance(err.get("type"), str, r)
    test.assertTrue(err.get("message"), r)
    if etype is not None:
        test.assertEqual(err["type"], etype, r)
    if phrase is not None:
        test.assertIn(phrase, err["message"], r)
    if code is not None:
        test.assertEqual(err["code"], code, r)
    return err


# ---- independent paths: the CLI in its own process ----

CLI_CACHE = {}


def cli_generate(msgs, n, *extra):
    """(text, {"prompt", "generated", "stop"}, stderr) of `shoal generate
    --chat` greedy on stories260K, in a process of its own."""
    key = (json.dumps(msgs), n, extra)
    if key in CLI_CACHE:
        return CLI_CACHE[key]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(msgs, f)
    try:
        p = run_cli(["generate", "--model", STORIES, "--chat", f.name, "--temp", "0", "-n", str(n)]
                    + list(extra), timeout=60)
    finally:
        os.unlink(f.name)
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("\n"), p.stdout
    m1 = re.search(r"prompt: (\d+) tokens", p.stderr)
    m2 = re.search(r"generation: (\d+) tokens", p.stderr)
    m3 = re.search(r"stop: (\w+)", p.stderr)
    assert m1 and m2 and m3, p.stderr
    out = (p.stdout[:-1], {"prompt": int(m1.group(1)), "generated": int(m2.group(1)),
                           "stop": m3.group(1)}, p.stderr)
    CLI_CACHE[key] = out
    return out


def cli_tokens(msgs):
    """Token ids of the prompt the model sees for msgs: the chat template
    rendered by `shoal template render`, tokenized by `shoal tokenize`."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(msgs, f)
    try:
        p = run_cli(["template", "render", "--model", STORIES, "--messages", f.name,
                     "--generation-prompt"])
    finally:
        os.unlink(f.name)
    assert p.returncode == 0, p.stderr
    t = subprocess.run([os.environ.get("SHOAL", "shoal"), "tokenize", "--model", STORIES,
                        "--special", "--json", "-"], input=p.stdout, capture_output=True,
                       text=True, timeout=20)
    assert t.returncode == 0, t.stderr
    return [x["id"] for x in json.loads(t.stdout)["tokens"]]


def common_prefix(a, b):
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    return n


# ---- local models ----

@unittest.skipUnless(HAVE_REF, NO_REF)
class LocalChat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon("", start=False)
        cls.d.write_config("""models:
  st:
    provider: local
    path: %s
  st64:
    provider: local
    path: %s
    context: 64
  rnd:
    provider: local
    path: %s
traces:
  path: %s/traces.db
""" % (STORIES, STORIES, RANDOM, cls.d.dir))
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.close()
        assert rc == 0, rc

    def chat(self, body, status=200, timeout=60.0):
        r = post_json(self.d.sock, CHAT, body, timeout)
        self.assertEqual(r.status, status, r)
        return r.json()

    def greedy(self, msgs, n, **extra):
        body = dict({"model": "st", "messages": msgs, "temperature": 0, "max_tokens": n}, **extra)
        return self.chat(body)

    def test_models_list(self):
        r = get(self.d.sock, "/v1/models")
        self.assertEqual(r.status, 200, r)
        doc = r.json()
        self.assertEqual(doc["object"], "list")
        got = {m["id"]: m for m in doc["data"]}
        self.assertEqual(len(got), len(doc["data"]), doc)
        self.assertEqual(set(got), {"st", "st64", "rnd"})
        for m in got.values():
            self.assertEqual(m["object"], "model")
            self.assertEqual(m["provider"], "local")
            self.assertIsInstance(m["owned_by"], str)

    def test_greedy_equals_cli(self):
        for msgs, n, limit_key in ((MSG_A, 40, "max_tokens"),
                                   (MSG_EOS, 800, "max_completion_tokens")):
            want, info, _ = cli_generate(msgs, n)
            before = run_ids(self.d.sock)
            doc = self.chat({"model": "st", "messages": msgs, "temperature": 0, limit_key: n})
            self.assertEqual(doc["object"], "chat.completion")
            self.assertEqual(doc["choices"][0]["message"]["role"], "assistant")
            self.assertEqual(content(doc), want, "n=%d" % n)
            u = doc["usage"]
            self.assertEqual(u["prompt_tokens"], info["prompt"])
            self.assertEqual(u["prompt_tokens"], len(cli_tokens(msgs)))
            self.assertEqual(u["completion_tokens"], info["generated"])
            self.assertLessEqual(u["completion_tokens"], n)
            self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])
            self.assertLess(u["prompt_tokens_details"]["cached_tokens"], u["prompt_tokens"])
            # The CLI says why it stopped: "length" at n tokens, "eos" before.
            self.assertEqual(finish(doc), "length" if info["stop"] == "length" else "stop")
            self.assertEqual(finish(doc) == "length", u["completion_tokens"] == n)
            # The call is a run in the trace store.
            runs = new_runs(self.d.sock, before)
            self.assertEqual(len(runs), 1, runs)
            run = runs[0]["run"]
            self.assertEqual((run["agent"], run["status"]), ("chat", "ok"))
            self.assertEqual(run["input_tokens"], u["prompt_tokens"])
            self.assertEqual(run["output_tokens"], u["completion_tokens"])
            a = llm_span(self, runs[0])["attributes"]
            self.assertEqual(a["gen_ai.usage.input_tokens"], u["prompt_tokens"])
            self.assertEqual(a["gen_ai.usage.output_tokens"], u["completion_tokens"])
            self.assertEqual(a["shoal.route.model"], "st")
            self.assertEqual(a["shoal.route.provider"], "local")
            self.assertEqual(a["shoal.cost.usd"], 0)
        # The EOS case really stopped early, the other at its cap.
        self.assertEqual(cli_generate(MSG_A, 40)[1]["stop"], "length")
        self.assertEqual(cli_generate(MSG_EOS, 800)[1]["stop"], "eos")

    def test_prefix_reuse_keeps_results(self):
        want_a, _, _ = cli_generate(MSG_A, 30)
        want_b, _, _ = cli_generate(MSG_B, 30)
        shared = common_prefix(cli_tokens(MSG_A), cli_tokens(MSG_B))
        self.assertGreater(shared, 50)  # the system prompt is long
        a1 = self.greedy(MSG_A, 30)
        b = self.greedy(MSG_B, 30)
        a2 = self.greedy(MSG_A, 30)
        self.assertEqual(content(a1), want_a)
        self.assertEqual(content(b), want_b)
        self.assertEqual(content(a2), content(a1))
        # B follows A: exactly their common prompt prefix is reused; so for
        # A after B.
        self.assertEqual(b["usage"]["prompt_tokens_details"]["cached_tokens"], shared)
        self.assertEqual(a2["usage"]["prompt_tokens_details"]["cached_tokens"], shared)
        self.assertEqual(a2["usage"]["prompt_tokens"], a1["usage"]["prompt_tokens"])
        self.assertEqual(a2["usage"]["completion_tokens"], a1["usage"]["completion_tokens"])
        # The same request again reuses all its prompt but the last token
        # (which must be run again for the next token's logits) at most.
        a3 = self.greedy(MSG_A, 30)
        self.assertEqual(content(a3), want_a)
        c3 = a3["usage"]["prompt_tokens_details"]["cached_tokens"]
        self.assertGreater(c3, shared)
        self.assertLess(c3, a3["usage"]["prompt_tokens"])

    def test_stream_equals_whole(self):
        whole = self.greedy(MSG_A, 40)
        head, events = read_stream(self.d.sock, {
            "model": "st", "messages": MSG_A, "temperature": 0, "max_tokens": 40,
            "stream": True, "stream_options": {"include_usage": True}})
        self.assertEqual(head.headers.get("transfer-encoding", "").lower(), "chunked", head)
        text, fin, usage, err = check_stream(self, head, events, "st", True)
        self.assertIsNone(err)
        self.assertEqual(text, content(whole))
        self.assertEqual(fin, finish(whole))
        for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
            self.assertEqual(usage[k], whole["usage"][k], k)
        self.assertGreater(len(events), 4, "the text came in one piece")
        # Without include_usage: no usage chunk.
        head, events = read_stream(self.d.sock, {
            "model": "st", "messages": MSG_B, "temperature": 0, "max_tokens": 25, "stream": True})
        text, fin, usage, err = check_stream(self, head, events, "st", False)
        self.assertEqual(text, cli_generate(MSG_B, 25)[0])

    def test_tools_hold_the_stream(self):
        """With tools offered, a local model's text may hold tool-call markup,
        so a stream sends it only once the answer is read: one content delta,
        the same text as the whole answer (stories260K writes no calls)."""
        tools = [{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object"}}}]
        whole = self.greedy(MSG_A, 30, tools=tools)
        self.assertNotIn("tool_calls", whole["choices"][0]["message"])
        self.assertEqual(finish(whole), "length")
        head, events = read_stream(self.d.sock, {
            "model": "st", "messages": MSG_A, "temperature": 0, "max_tokens": 30,
            "stream": True, "tools": tools})
        text, fin, usage, err = check_stream(self, head, events, "st", False)
        self.assertIsNone(err)
        self.assertEqual(text, content(whole))
        self.assertEqual(fin, "length")
        chunks = [json.loads(e) for e in events if e != "[DONE]"]
        deltas = [c for c in chunks if any(
            ch.get("delta", {}).get("content") for ch in c.get("choices", []))]
        self.assertEqual(len(deltas), 1, events)

    def test_logprobs(self):
        k, n = 5, 20
        doc = self.greedy(MSG_A, n, logprobs=True, top_logprobs=k)
        lp = doc["choices"][0]["logprobs"]["content"]
        self.assertEqual(len(lp), doc["usage"]["completion_tokens"])
        self.assertEqual("".join(e["token"] for e in lp), content(doc))
        for e in lp:
            self.assertLessEqual(e["logprob"], 0.0, e)
            top = [t["logprob"] for t in e["top_logprobs"]]
            self.assertEqual(len(top), k, e)
            self.assertEqual(top, sorted(top, reverse=True), e)
            self.assertTrue(all(t <= 0 for t in top), e)
            self.assertLessEqual(sum(math.exp(t) for t in top), 1.0 + 1e-4, e)
            # Greedy: the chosen token is the most likely one.
            self.assertAlmostEqual(e["logprob"], max(top), delta=1e-4)
            self.assertEqual(e["top_logprobs"][0]["token"], e["token"], e)
        # The CLI's own log-probabilities for the same tokens (4 decimals
        # for the chosen token, 3 for the alternatives).
        _, _, err = cli_generate(MSG_A, n, "--logprobs", str(k))
        # A token's piece may be a newline: find the rows by their numbers.
        rows = list(re.finditer(r"(-?\d+\.\d+) \| ((?:\d+:-?\d+\.\d+ ?)+)\n", err))
        self.assertEqual(len(rows), len(lp), err)
        for e, m in zip(lp, rows):
            self.assertAlmostEqual(e["logprob"], float(m.group(1)), delta=1e-3)
            alts = [float(x.split(":")[1]) for x in m.group(2).split()]
            self.assertEqual(len(alts), k)
            for got, want in zip((t["logprob"] for t in e["top_logprobs"]), alts):
                self.assertAlmostEqual(got, want, delta=2e-3)
        # Without logprobs, none.
        self.assertIsNone(self.greedy(MSG_A, 3)["choices"][0].get("logprobs"))

    def test_stop(self):
        text = self.greedy(MSG_A, 40)
        text = content(text)
        k = len(text) // 2
        while text.find(text[k:k + 5]) != k:
            k += 1
        self.assertLess(k + 5, len(text), "no stop string found in %r" % text)
        stop = text[k:k + 5]
        doc = self.greedy(MSG_A, 40, stop=[stop, "\u2603never"])
        self.assertEqual(content(doc), text[:k])
        self.assertEqual(finish(doc), "stop")
        self.assertLess(doc["usage"]["completion_tokens"], 40)
        self.assertEqual(content(doc), cli_generate(MSG_A, 40, "--stop", stop)[0])
        # Streamed, with stop as a single string: none of it leaks out.
        head, events = read_stream(self.d.sock, {
            "model": "st", "messages": MSG_A, "temperature": 0, "max_tokens": 40,
            "stop": stop, "stream": True})
        got, fin, _, err = check_stream(self, head, events, "st", False)
        self.assertIsNone(err)
        self.assertEqual(got, text[:k])
        self.assertEqual(fin, "stop")

    def test_seeded_sampling_repeats(self):
        body = {"model": "st", "messages": MSG_B, "temperature": 0.9, "seed": 7, "max_tokens": 30}
        first = self.chat(body)
        self.greedy(MSG_A, 10)  # something else in between, sharing the cache
        second = self.chat(body)
        self.assertGreater(first["usage"]["completion_tokens"], 0)
        self.assertEqual(content(second), content(first))
        self.assertEqual(second["usage"]["completion_tokens"], first["usage"]["completion_tokens"])
        other = self.chat(dict(body, seed=8))
        self.assertEqual(other["object"], "chat.completion")  # may differ; must work

    def test_errors(self):
        s = self.d.sock
        check_error(self, post_json(s, CHAT, b'{"model": "st", "messages": ['), 400)
        check_error(self, post_json(s, CHAT, b"[1, 2]"), 400)
        check_error(self, post_json(s, CHAT, {"messages": MSG_A}), 400, phrase="model")
        check_error(self, post_json(s, CHAT, {"model": 5, "messages": MSG_A}), 400)
        err = check_error(self, post_json(s, CHAT, {"model": "nope", "messages": MSG_A}), 404,
                          etype="model_not_found")
        for name in ("st", "st64", "rnd"):
            self.assertIn(name, err["message"])
        check_error(self, post_json(s, CHAT, {"model": "st", "messages": [
            {"role": "bogus", "content": "hi"}]}), 400, phrase="$.messages[0].role")
        check_error(self, post_json(s, CHAT, {"model": "st", "messages": [
            {"role": "user", "content": "hi"}, {"role": "user", "content": 7}]}), 400,
            phrase="$.messages[1]")
        check_error(self, post_json(s, CHAT, {"model": "st"}), 400, phrase="messages")
        check_error(self, post_json(s, CHAT, {"model": "st", "messages": MSG_A,
                                              "max_tokens": -1}), 400, phrase="max_tokens")
        # The prompt (MSG_A is over 100 tokens) does not fit a 64-token context.
        self.assertGreater(len(cli_tokens(MSG_A)), 64)
        check_error(self, post_json(s, CHAT, {"model": "st64", "messages": MSG_A}), 400,
                    code="context_length_exceeded")
        # Streamed: the error comes before the stream begins, as a whole answer.
        head, events = read_stream(s, {"model": "st64", "messages": MSG_A, "stream": True})
        self.assertIsNone(events, "a stream began for a prompt that cannot fit")
        check_error(self, head, 400, code="context_length_exceeded")
        # A small prompt fits the small model.
        doc = self.chat({"model": "st64", "messages": [{"role": "user", "content": "Hi"}],
                         "max_tokens": 5, "temperature": 0})
        self.assertLessEqual(doc["usage"]["total_tokens"], 64)
        self.assertEqual(get(s, "/healthz").status, 200)

    def test_response_format_refused(self):
        """A JSON response format cannot be kept by a local model yet: 400
        unsupported, naming the member; "text" is fine."""
        for fmt in ({"type": "json_object"},
                    {"type": "json_schema", "json_schema": {"name": "x", "schema": {
                        "type": "object"}}}):
            r = post_json(self.d.sock, CHAT, {"model": "st", "messages": MSG_A,
                                              "max_tokens": 2, "response_format": fmt})
            self.assertEqual(r.status, 400, r)
            err = r.json()["error"]
            self.assertEqual(err["type"], "unsupported")
            self.assertIn("$.response_format", err["message"])
        doc = self.greedy(MSG_A, 2, response_format={"type": "text"})
        self.assertEqual(doc["usage"]["completion_tokens"], 2)

    def test_error_objects_carry_code(self):
        # OpenAI's error object always has code, null when there is none;
        # SDKs read it (context_length_exceeded above has one).
        s = self.d.sock
        for r in (post_json(s, CHAT, b"{"), post_json(s, CHAT, {"messages": MSG_A}),
                  post_json(s, CHAT, {"model": "nope", "messages": MSG_A}),
                  post_json(s, CHAT, {"model": "st", "messages": [{"role": "bogus"}]})):
            self.assertGreaterEqual(r.status, 400, r)
            self.assertIn("code", r.json()["error"], r)

    def test_cli_chat(self):
        """`shoal chat` streams the same greedy text the API answers, and ends
        with a summary naming the run; mistakes get the documented codes."""
        want = content(self.greedy(MSG_A, 30))
        prompt = MSG_A[-1]["content"]
        system = [m["content"] for m in MSG_A if m["role"] == "system"]
        base = ["--socket", self.d.sock, "chat", "st"]
        extra = ["--system", system[0]] if system else []
        if len(MSG_A) != 1 + len(system):
            self.skipTest("MSG_A is not one system and one user message")
        for mode in ([], ["--no-stream"]):
            p = run_cli(base + [prompt, "-n", "30", "--temp", "0"] + extra + mode, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, want + "\n", mode)
            m = re.search(r"(\d+) prompt tokens \((\d+) reused\), (\d+) generated;.*"
                          r"finish: (\w+); run (\d+)", p.stderr)
            self.assertIsNotNone(m, p.stderr)
            self.assertEqual(int(m.group(3)), 30)
            self.assertEqual(m.group(4), "length")
            r = get(self.d.sock, "/v1/runs/%s" % m.group(5))
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["run"]["agent"], "chat")
        p = run_cli(["--socket", self.d.sock, "chat", "nope", "hi"], timeout=60)
        self.assertEqual(p.returncode, 1)
        self.assertIn("model_not_found", p.stderr)
        p = run_cli(base + ["hi", "--temp", "5"], timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("--temp", p.stderr)

    def test_client_disconnect_mid_stream(self):
        s = self.d.sock
        before = run_ids(s)
        # llama-2-tiny-random never emits EOS: 4000 tokens take seconds.
        conn, head, sse = open_stream(s, post_raw(CHAT, json.dumps({
            "model": "rnd", "messages": [{"role": "user", "content": "Go on forever."}],
            "temperature": 0, "max_tokens": 4000, "stream": True}).encode()), 30)
        with conn:
            self.assertEqual(head.status, 200, head)
            self.assertIsNotNone(sse)
            first = json.loads(sse.event())
            self.assertEqual(first["choices"][0]["delta"].get("role"), "assistant")
            piece = json.loads(sse.event())
            self.assertIn("content", piece["choices"][0]["delta"], piece)
        # The daemon keeps serving, and the engine is free again: the rest
        # of the 4000 tokens is not generated for nobody.
        t0 = time.time()
        doc = self.greedy(MSG_A, 10)
        self.assertLess(time.time() - t0, 3.0, "the engine kept generating for a gone client")
        self.assertEqual(content(doc), cli_generate(MSG_A, 10)[0])
        runs = new_runs(s, before, count=2)
        by_model = {llm_span(self, r)["attributes"]["shoal.route.model"]: r for r in runs}
        self.assertEqual(set(by_model), {"rnd", "st"}, runs)
        self.assertEqual(by_model["rnd"]["run"]["status"], "cancelled", by_model["rnd"])
        self.assertEqual(llm_span(self, by_model["rnd"])["status"], "cancelled")
        self.assertEqual(by_model["st"]["run"]["status"], "ok")

    def test_concurrent_requests(self):
        plan = [MSG_A, MSG_B, MSG_A, MSG_B]
        sequential = [content(self.greedy(m, 30)) for m in plan]
        results = [None] * len(plan)
        barrier = threading.Barrier(len(plan))

        def worker(i):
            barrier.wait()
            try:
                results[i] = post_json(self.d.sock, CHAT, {"model": "st", "messages": plan[i],
                                                           "temperature": 0, "max_tokens": 30},
                                       timeout=60)
            except Exception as e:  # reported below, on the main thread
                results[i] = e

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(plan))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for i, r in enumerate(results):
            self.assertNotIsInstance(r, Exception, r)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(content(r.json()), sequential[i], i)
        self.assertEqual(sequential[0], cli_generate(MSG_A, 30)[0])
        self.assertEqual(sequential[1], cli_generate(MSG_B, 30)[0])


# ---- local model lifecycle: keep_alive and the memory budget ----

@unittest.skipUnless(HAVE_REF, NO_REF)
class LocalLifecycle(unittest.TestCase):
    """Models load on first use, unload after keep_alive unused, and the
    least recently used one makes room when the memory budget is reached.
    /v1/models says what is loaded; answers do not change across a reload."""

    def daemon(self, body):
        d = Daemon("", start=False)
        d.write_config(body + "traces:\n  enabled: false\n")
        d.start()
        self.addCleanup(d.close)
        # A clean exit: 0, which is also what a leak under ASan is not.
        self.addCleanup(lambda: self.assertEqual(d.stop(), 0, d.logtext()[-2000:]))
        return d

    def models(self, d):
        r = get(d.sock, "/v1/models")
        self.assertEqual(r.status, 200, r)
        return {m["id"]: m for m in r.json()["data"]}

    def ask(self, d, model, n=20):
        r = post_json(d.sock, CHAT, {"model": model, "messages": MSG_A, "temperature": 0,
                                      "max_tokens": n}, 60)
        return r

    def test_keep_alive(self):
        d = self.daemon("""models:
  st:
    provider: local
    path: %s
    keep_alive: 2s
  now:
    provider: local
    path: %s
    keep_alive: 0s
""" % (STORIES, RANDOM))
        self.assertFalse(self.models(d)["st"]["loaded"])
        first = self.ask(d, "st")
        self.assertEqual(first.status, 200, first)
        m = self.models(d)["st"]
        self.assertTrue(m["loaded"])
        # The estimate counts at least the weights.
        self.assertGreaterEqual(m["memory_bytes"], os.path.getsize(STORIES))
        t0 = time.monotonic()
        while self.models(d)["st"]["loaded"] and time.monotonic() - t0 < 8:
            time.sleep(0.05)
        waited = time.monotonic() - t0
        self.assertFalse(self.models(d)["st"]["loaded"], "still loaded after 8 s")
        # Not before its 2 s (counted from the end of the call), and soon after.
        self.assertGreater(waited, 1.5)
        self.assertLess(waited, 6.0)
        self.assertIn("event=model_unloaded model=st", d.logtext())
        self.assertIn("why=keep_alive", d.logtext())
        # Reloaded, the same greedy answer.
        again = self.ask(d, "st")
        self.assertEqual(content(again.json()), content(first.json()))
        # keep_alive 0: gone as soon as the call is.
        self.assertEqual(self.ask(d, "now").status, 200)
        self.assertFalse(self.models(d)["now"]["loaded"])

    def test_queue_full(self):
        """engine.queue: 1 lets one call wait behind the running one; a third
        is refused at once with 503 unavailable, and the first two finish."""
        d = self.daemon("""engine:
  queue: 1
models:
  rnd:
    provider: local
    path: %s
""" % RANDOM)
        body = {"model": "rnd", "messages": MSG_A, "temperature": 0, "max_tokens": 1500}
        results = {}

        def call(k):
            results[k] = post_json(d.sock, CHAT, body, 120)

        threads = [threading.Thread(target=call, args=(k,)) for k in range(2)]
        threads[0].start()
        time.sleep(0.3)  # the first is running (random weights never stop early)
        threads[1].start()
        time.sleep(0.3)  # the second waits in the queue
        r = post_json(d.sock, CHAT, body, 60)
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["type"], "unavailable")
        self.assertIn("retry", r.json()["error"]["message"])
        for t in threads:
            t.join(120)
        self.assertEqual([results[k].status for k in range(2)], [200, 200])
        self.assertEqual(content(results[0].json()), content(results[1].json()))

    def test_memory_budget(self):
        cfg = """models:
  st:
    provider: local
    path: %s
  rnd:
    provider: local
    path: %s
""" % (STORIES, RANDOM)
        # Learn what each model is counted for, with no budget.
        d = self.daemon(cfg)
        self.assertEqual(self.ask(d, "st").status, 200)
        self.assertEqual(self.ask(d, "rnd").status, 200)
        ms = self.models(d)
        self.assertTrue(ms["st"]["loaded"] and ms["rnd"]["loaded"], ms)
        st_bytes, rnd_bytes = ms["st"]["memory_bytes"], ms["rnd"]["memory_bytes"]
        want = content(self.ask(d, "st").json())
        d.stop()
        # Room for either, not both: each call unloads the other.
        budget = max(st_bytes, rnd_bytes) + 1
        self.assertLess(budget, st_bytes + rnd_bytes)
        d = self.daemon("engine:\n  memory_budget: %d\n" % budget + cfg)
        self.assertEqual(self.ask(d, "st").status, 200)
        self.assertEqual(self.ask(d, "rnd").status, 200)
        ms = self.models(d)
        self.assertFalse(ms["st"]["loaded"], ms)
        self.assertTrue(ms["rnd"]["loaded"], ms)
        self.assertIn("why=memory_budget", d.logtext())
        self.assertEqual(content(self.ask(d, "st").json()), want)
        ms = self.models(d)
        self.assertTrue(ms["st"]["loaded"] and not ms["rnd"]["loaded"], ms)
        d.stop()
        # A model larger than the whole budget: 503, saying so.
        d = self.daemon("engine:\n  memory_budget: %d\n" % (min(st_bytes, rnd_bytes) - 1) + cfg)
        r = self.ask(d, "st")
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"]["type"], "unavailable")
        self.assertIn("memory_budget", r.json()["error"]["message"])


# ---- remote models, through the mock ----

def key_only_in_auth(test, reqs):
    """The key is sent, and only as the provider's auth header."""
    seen = 0
    for r in reqs:
        test.assertNotIn(KEY, r["body"], r["path"])
        for name, value in r["headers"]:
            if KEY in value:
                ok = (name.lower() == "authorization" and value == "Bearer " + KEY) or \
                     (name.lower() == "x-api-key" and value == KEY)
                test.assertTrue(ok, "key in header %s" % name)
                seen += 1
    test.assertEqual(seen, len(reqs), "a request without the key in its auth header")


class RemoteChat(unittest.TestCase):
    PRICES = {"oa": (0.15, 0.60, 0.075), "an": (3.0, 15.0, 3.0)}
    SEEN = []  # every response body the daemon sent, for the key check

    @classmethod
    def setUpClass(cls):
        cls.mock = subprocess.Popen([sys.executable, MOCK, "--key", KEY], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        cls.port = int(cls.mock.stdout.readline())
        base = "http://127.0.0.1:%d/v1" % cls.port
        cls.d = Daemon("", start=False, env={"SHOAL_TEST_KEY": KEY})
        local = ("  st:\n    provider: local\n    path: %s\n" % STORIES) if HAVE_REF else ""
        cls.d.write_config("""models:
  oa:
    provider: openai
    base_url: %(base)s
    model: gpt-mock
    api_key:
      env: SHOAL_TEST_KEY
    retry:
      attempts: 3
      backoff: 50ms
    price:
      input_per_mtok: 0.15
      output_per_mtok: 0.60
      cached_per_mtok: 0.075
  an:
    provider: anthropic
    base_url: %(base)s
    model: claude-mock
    api_key:
      env: SHOAL_TEST_KEY
    retry:
      attempts: 3
      backoff: 50ms
    price:
      input_per_mtok: 3
      output_per_mtok: 15
  oa1:
    provider: openai
    base_url: %(base)s
    model: gpt-mock
    api_key:
      env: SHOAL_TEST_KEY
    timeouts:
      first_byte: 500ms
      total: 5s
    retry:
      attempts: 1
%(local)straces:
  path: %(dir)s/traces.db
""" % {"base": base, "local": local, "dir": cls.d.dir})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.d.stop()
            cls.d.close()
        finally:
            cls.mock.stdin.close()
            cls.mock.wait(timeout=10)
        assert rc == 0, rc

    def ctl(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def script(self, *steps):
        self.ctl("/_reset", {})
        self.ctl("/_script", list(steps))

    def call(self, body):
        r = post_json(self.d.sock, CHAT, body, 30)
        self.SEEN.append(r.body)
        return r

    def stream(self, body):
        head, events = read_stream(self.d.sock, body, 30)
        self.SEEN.append(head.body)
        self.SEEN.extend(e.encode() for e in events or [])
        return head, events

    def expected_cost(self, name, inp, out, cached):
        pin, pout, pcached = self.PRICES[name]
        return ((inp - cached) * pin + cached * pcached + out * pout) / 1e6

    def test_models_list(self):
        r = get(self.d.sock, "/v1/models")
        self.assertEqual(r.status, 200, r)
        got = {m["id"]: m["provider"] for m in r.json()["data"]}
        want = {"oa": "openai", "an": "anthropic", "oa1": "openai"}
        if HAVE_REF:
            want["st"] = "local"
        self.assertEqual(got, want)
        self.assertEqual(len(r.json()["data"]), len(want))

    def test_text_usage_and_cost(self):
        for name, path, upstream in (("oa", "/v1/chat/completions", "gpt-mock"),
                                     ("an", "/v1/messages", "claude-mock")):
            self.script({"text": "Hello, world!", "request_id": "req_7",
                         "usage": {"input": 1000, "output": 500, "cached": 200}})
            before = run_ids(self.d.sock)
            r = self.call({"model": name, "max_tokens": 50, "temperature": 0.5, "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello."}]})
            self.assertEqual(r.status, 200, r)
            doc = r.json()
            self.assertEqual(doc["object"], "chat.completion")
            self.assertEqual(content(doc), "Hello, world!")
            self.assertEqual(finish(doc), "stop")
            u = doc["usage"]
            self.assertEqual((u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]),
                             (1000, 500, 1500), name)
            self.assertEqual(u["prompt_tokens_details"]["cached_tokens"], 200, name)
            reqs = self.ctl("/_requests")
            self.assertEqual(len(reqs), 1, name)
            self.assertEqual(reqs[0]["path"], path)
            sent = reqs[0]["json"]
            self.assertEqual(sent["model"], upstream)
            self.assertIn("Say hello.", json.dumps(sent["messages"]))
            self.assertIn("Be brief.", json.dumps(sent))
            runs = new_runs(self.d.sock, before)
            self.assertEqual(len(runs), 1, runs)
            self.assertEqual(runs[0]["run"]["status"], "ok")
            a = llm_span(self, runs[0])["attributes"]
            cost = self.expected_cost(name, 1000, 500, 200)
            self.assertAlmostEqual(a["shoal.cost.usd"], cost, delta=1e-12)
            self.assertAlmostEqual(runs[0]["run"]["cost_usd"], cost, delta=1e-12)
            self.assertEqual(a["gen_ai.usage.input_tokens"], 1000)
            self.assertEqual(a["gen_ai.usage.output_tokens"], 500)
            self.assertEqual(a["shoal.route.model"], name)
            self.assertEqual(a["shoal.route.provider"], "openai" if name == "oa" else "anthropic")

    def test_stream(self):
        for name in ("oa", "an"):
            self.script({"chunks": ["Hel", "lo, ", "wor", "ld!"],
                         "usage": {"input": 40, "output": 4, "cached": 8}})
            head, events = self.stream({"model": name, "stream": True, "max_tokens": 20,
                                        "stream_options": {"include_usage": True},
                                        "messages": [{"role": "user", "content": "hi"}]})
            text, fin, usage, err = check_stream(self, head, events, name, True)
            self.assertIsNone(err, name)
            self.assertEqual(text, "Hello, world!", name)
            self.assertEqual(fin, "stop", name)
            self.assertEqual((usage["prompt_tokens"], usage["completion_tokens"],
                              usage["total_tokens"]), (40, 4, 44), name)
            self.assertEqual(usage["prompt_tokens_details"]["cached_tokens"], 8, name)
            reqs = self.ctl("/_requests")
            self.assertEqual(len(reqs), 1, name)

    def test_error_after_stream_began(self):
        self.script({"chunks": ["Hel", "lo, ", "wor", "ld!"], "stream_error": "server"})
        before = run_ids(self.d.sock)
        head, events = self.stream({"model": "oa", "stream": True,
                                    "messages": [{"role": "user", "content": "hi"}]})
        text, fin, usage, err = check_stream(self, head, events, "oa", False)
        self.assertIsNotNone(err, "no error event in %r" % events)
        self.assertTrue(err.get("type") and err.get("message"), err)
        self.assertEqual(text, "Hel")  # what arrived before the error
        self.assertIsNone(fin)
        runs = new_runs(self.d.sock, before)
        self.assertEqual(runs[0]["run"]["status"], "error", runs)

    def test_upstream_auth_failure(self):
        self.script({"error": "auth"})
        check_error(self, self.call({"model": "oa", "messages": [
            {"role": "user", "content": "hi"}]}), 502, etype="auth")
        self.assertEqual(len(self.ctl("/_requests")), 1, "an auth failure was retried")
        # Streamed: nothing began, so the same whole answer.
        self.script({"error": "auth"})
        head, events = self.stream({"model": "an", "stream": True, "messages": [
            {"role": "user", "content": "hi"}]})
        self.assertIsNone(events)
        check_error(self, head, 502, etype="auth")

    def test_rate_limit_retried(self):
        self.script({"error": "rate_limit"}, {"text": "ok after"})
        r = self.call({"model": "oa", "messages": [{"role": "user", "content": "hi"}]})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(content(r.json()), "ok after")
        self.assertEqual(len(self.ctl("/_requests")), 2)
        # With one attempt allowed, the 429 is the answer.
        self.script({"error": "rate_limit"})
        check_error(self, self.call({"model": "oa1", "messages": [
            {"role": "user", "content": "hi"}]}), 429, etype="rate_limited")

    def test_unavailable_and_timeout(self):
        self.script({"error": "overloaded"})
        check_error(self, self.call({"model": "oa1", "messages": [
            {"role": "user", "content": "hi"}]}), 503, etype="unavailable")
        self.script({"latency_ms": 2000, "text": "too late"})
        t0 = time.time()
        check_error(self, self.call({"model": "oa1", "messages": [
            {"role": "user", "content": "hi"}]}), 504, etype="timeout")
        self.assertLess(time.time() - t0, 1.9, "the first-byte timeout (500ms) did not fire")

    def test_context_overflow(self):
        for name in ("oa", "an"):
            self.script({"error": "context_length"})
            check_error(self, self.call({"model": name, "messages": [
                {"role": "user", "content": "hi"}]}), 400, code="context_length_exceeded")
            self.assertEqual(len(self.ctl("/_requests")), 1, "%s: retried" % name)

    def test_zz_key_only_in_upstream_auth(self):
        # Calls of every kind (this test also stands alone).
        self.ctl("/_reset", {})
        msgs = [{"role": "user", "content": "hi"}]
        for name in ("oa", "an"):
            self.assertEqual(self.call({"model": name, "messages": msgs}).status, 200)
            head, events = self.stream({"model": name, "messages": msgs, "stream": True})
            self.assertEqual(head.status, 200)
        self.ctl("/_script", [{"error": "auth"}])
        self.assertEqual(self.call({"model": "oa", "messages": msgs}).status, 502)
        reqs = self.ctl("/_requests")
        self.assertEqual(len(reqs), 5)
        key_only_in_auth(self, reqs)
        for body in self.SEEN:
            self.assertNotIn(KEY.encode(), body)
        self.assertNotIn(KEY, self.d.logtext())
        ids = run_ids(self.d.sock)
        self.assertGreaterEqual(len(ids), 5)
        for i in ids:
            r = get(self.d.sock, "/v1/runs/%d" % i)
            self.assertEqual(r.status, 200, r)
            self.assertNotIn(KEY.encode(), r.body)
        for suffix in ("", "-wal"):
            path = os.path.join(self.d.dir, "traces.db" + suffix)
            if os.path.exists(path):
                with open(path, "rb") as f:
                    self.assertNotIn(KEY.encode(), f.read(), path)


if __name__ == "__main__":
    if not HAVE_REF:
        print(NO_REF, file=sys.stderr)
    unittest.main(verbosity=2)
