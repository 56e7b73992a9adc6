#!/usr/bin/env python3
"""test_sdk.py: the official OpenAI SDK (Node, pinned in sdk/package.json)
talks to shoald unchanged, over loopback TCP with the bearer token as its
API key: model list, whole and streamed answers from a local model and from
remote ones (the mock), logprobs, tool calls, and typed errors as the SDK's
own exception classes. What the SDK parsed is compared with the raw HTTP
answers for the same requests and with what the mock was scripted to say.

Needs node and npm (the SDK is installed into the build tree from the npm
registry on first use); without them the test is skipped (exit 77)."""

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from shoaltest import Daemon  # noqa: E402

MOCK = os.path.join(HERE, "..", "remote", "mock_llm.py")
SDK_SRC = os.path.join(HERE, "sdk")
SDK_DIR = os.environ.get("SHOAL_SDK_DIR") or os.path.join(
    os.path.dirname(os.environ.get("SHOALD", "")) or ".", "..", "sdk-check")
REF = os.environ.get("SHOAL_REF_DIR") or os.path.join(HERE, "..", "..", "..", "shared", "ref")
STORIES = os.path.join(REF, "models", "stories260K.gguf")
TOKEN = "tok-sdk-0123456789"
KEY = "sk-test-sdk-0123456789abcdef"
SKIP = 77


def install_sdk():
    """The SDK under SDK_DIR/node_modules, installed once; None when it
    cannot be (no node/npm, no registry)."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node and npm are not installed"
    os.makedirs(SDK_DIR, exist_ok=True)
    for name in ("package.json", "check.mjs"):
        shutil.copyfile(os.path.join(SDK_SRC, name), os.path.join(SDK_DIR, name))
    pkg = os.path.join(SDK_DIR, "node_modules", "openai", "package.json")
    want = json.load(open(os.path.join(SDK_SRC, "package.json")))["dependencies"]["openai"]
    if os.path.exists(pkg) and json.load(open(pkg)).get("version") == want:
        return None
    p = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=SDK_DIR, capture_output=True, text=True, timeout=300)
    if p.returncode != 0 or not os.path.exists(pkg):
        return "npm install of openai@%s failed: %s" % (want, p.stderr[-500:])
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SdkCompat(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = subprocess.Popen([sys.executable, MOCK, "--key", KEY], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True)
        cls.mock_port = int(cls.mock.stdout.readline())
        cls.port = free_port()
        cls.local = os.path.isfile(STORIES)
        base = "http://127.0.0.1:%d/v1" % cls.mock_port
        cls.d = Daemon("", start=False, env={"SHOAL_TOKEN": TOKEN, "SHOAL_TEST_KEY": KEY})
        # The whole file: listen needs tcp next to the socket.
        with open(cls.d.config_path, "w") as f:
            f.write("""listen:
  socket: %s
  tcp: 127.0.0.1:%d
log:
  level: debug
auth:
  token: { env: SHOAL_TOKEN }
traces:
  enabled: false
models:
%s  oa:
    provider: openai
    base_url: %s
    model: gpt-mock
    api_key: { env: SHOAL_TEST_KEY }
    retry: { attempts: 1 }
  an:
    provider: anthropic
    base_url: %s
    model: claude-mock
    api_key: { env: SHOAL_TEST_KEY }
""" % (cls.d.sock, cls.port,
                 ("  st:\n    provider: local\n    path: %s\n" % STORIES) if cls.local else "",
                 base, base))
        cls.d.start()
        env = dict(os.environ, SHOAL_BASE="http://127.0.0.1:%d/v1" % cls.port,
                   SHOAL_TOKEN=TOKEN, MOCK="http://127.0.0.1:%d" % cls.mock_port,
                   LOCAL="1" if cls.local else "0")
        p = subprocess.run(["node", "check.mjs"], cwd=SDK_DIR, env=env, capture_output=True,
                           text=True, timeout=120)
        cls.node_err = p.stderr
        cls.out = json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() else None

    @classmethod
    def tearDownClass(cls):
        try:
            rc = cls.d.stop()
            cls.d.close()
        finally:
            cls.mock.stdin.close()
            cls.mock.wait(timeout=10)
        assert rc == 0, rc

    def setUp(self):
        self.assertIsNotNone(self.out, "check.mjs failed:\n" + self.node_err[-3000:])

    def raw(self, body):
        """The same request as raw HTTP over TCP with the token."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("POST", "/v1/chat/completions", json.dumps(body),
                  {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"})
        r = c.getresponse()
        doc = json.loads(r.read())
        c.close()
        return r.status, doc

    def test_models(self):
        got = {m["id"]: m["provider"] for m in self.out["models"]}
        want = {"oa": "openai", "an": "anthropic"}
        if self.local:
            want["st"] = "local"
        self.assertEqual(got, want)

    def test_local_whole_and_stream(self):
        if not self.local:
            self.skipTest("no reference models")
        w = self.out["local_whole"]
        status, raw = self.raw({"model": "st", "messages": [{"role": "user",
                                "content": "Once upon a time"}], "max_tokens": 24,
                                "temperature": 0})
        self.assertEqual(status, 200)
        self.assertEqual(w["object"], "chat.completion")
        self.assertEqual(w["text"], raw["choices"][0]["message"]["content"])
        self.assertEqual(w["finish"], raw["choices"][0]["finish_reason"])
        for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
            self.assertEqual(w["usage"][k], raw["usage"][k], k)
        s = self.out["local_stream"]
        self.assertEqual(s["text"], w["text"])
        self.assertEqual(s["finish"], w["finish"])
        self.assertEqual(s["usage"]["completion_tokens"], w["usage"]["completion_tokens"])
        self.assertGreater(s["chunks"], 3)

    def test_local_logprobs(self):
        if not self.local:
            self.skipTest("no reference models")
        lps = self.out["local_logprobs"]
        self.assertEqual(len(lps), 4)
        for t in lps:
            self.assertLessEqual(t["logprob"], 0)
            self.assertEqual(len(t["top"]), 3)
            self.assertEqual(t["top"], sorted(t["top"], reverse=True))
            self.assertAlmostEqual(t["logprob"], t["top"][0], places=4)  # greedy

    def test_remote(self):
        # The mock's default answer, and its default usage, in both APIs.
        self.assertEqual(self.out["remote_whole"]["text"], "Hello from mock.")
        self.assertEqual(self.out["remote_whole"]["finish"], "stop")
        self.assertEqual(self.out["remote_stream"]["text"], "Hello from mock.")
        self.assertEqual(self.out["remote_stream"]["finish"], "stop")
        self.assertIsNotNone(self.out["remote_stream"]["usage"])

    def test_tool_call(self):
        t = self.out["tool_call"]
        self.assertEqual(t["finish"], "tool_calls")
        self.assertEqual(t["calls"], [{"id": "call_9", "type": "function",
                                       "name": "get_weather", "args": {"city": "Paris"}}])

    def test_errors_are_the_sdks_classes(self):
        nf = self.out["not_found"]
        self.assertTrue(nf["thrown"])
        self.assertEqual((nf["cls"], nf["status"], nf["type"]),
                         ("NotFoundError", 404, "model_not_found"))
        ov = self.out["overflow"]
        self.assertEqual((ov["cls"], ov["status"], ov["code"]),
                         ("BadRequestError", 400, "context_length_exceeded"))
        bt = self.out["bad_token"]
        self.assertEqual((bt["cls"], bt["status"]), ("AuthenticationError", 401))


if __name__ == "__main__":
    why = install_sdk()
    if why:
        print("test_sdk: skipped: %s" % why, file=sys.stderr)
        sys.exit(SKIP)
    unittest.main(verbosity=2)
