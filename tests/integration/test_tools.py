#!/usr/bin/env python3
"""Integration tests of tools inside a real shoald: GET /v1/tools in the
OpenAI function format, POST /v1/tools/{name}/call with the right status per
error type, hostile tools stopped while the daemon keeps answering, ctx.http
through the loop against a loopback server (granted, denied, disallowed
redirect), 100 slow http tools in flight while a fast call returns at once,
SIGHUP reload keeping a broken tool's previous version, and a trace per call.
Run: SHOALD=build/daemon/shoald SHOAL=build/daemon/shoal python3 test_tools.py"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from shoaltest import Daemon, get, request  # noqa: E402

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http_peer.py")

TOOLS = {
    "loop.lua": """return { name = "loop", description = "spins", parameters = {type = "object"},
  timeout_ms = 300, run = function(args, ctx) while true do end end }""",
    "pcall_loop.lua": """return { name = "pcall_loop", description = "spins in pcall",
  parameters = {type = "object"}, timeout_ms = 300,
  run = function() while true do pcall(function() while true do end end) end end }""",
    "bomb.lua": """return { name = "bomb", description = "eats memory", parameters = {type = "object"},
  run = function() local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1e6) .. i end end }""",
    "escape.lua": """return { name = "escape", description = "tries io", parameters = {type = "object"},
  run = function() return io.open("/etc/passwd"):read("a") end }""",
    "slow.lua": """return { name = "slow", description = "slow http", parameters = {type = "object",
  properties = {url = {type = "string"}}, required = {"url"}}, capabilities = {"http"},
  timeout_ms = 20000, run = function(args, ctx) local r, e = ctx.http.get(args.url)
  if not r then error(e) end return {status = r.status, body = r.body} end }""",
    "echo.lua": """return { name = "echo", description = "echoes", parameters = {type = "object",
  properties = {v = {}}}, run = function(args) return {v = args.v, n = 1, f = 1.5} end }""",
}


def post(sock, target, body, timeout=30.0):
    data = json.dumps(body).encode()
    raw = (b"POST " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: "
           + str(len(data)).encode() + b"\r\n\r\n" + data)
    return request(sock, raw, timeout)


class Tools(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peer = subprocess.Popen([sys.executable, PEER], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
        cls.port = int(cls.peer.stdout.readline())
        cls.d = Daemon("", start=False)
        cls.tooldir = os.path.join(cls.d.dir, "tools")
        os.makedirs(cls.tooldir)
        for name, src in TOOLS.items():
            with open(os.path.join(cls.tooldir, name), "w") as f:
                f.write(src)
        cls.config = """tools:
  dirs: [%s]
  workspace: %s/ws
  kv: %s/kv.db
  grants:
    slow: { http: { allow_hosts: ["127.0.0.1:%d"], allow_http: true } }
    http_get: { http: { allow_hosts: ["127.0.0.1:%d"], allow_http: true } }
    read_file: { fs: true }
    write_file: { fs: true }
    list_dir: { fs: true }
    kv_get: { kv: true }
    kv_set: { kv: true }
traces:
  path: %s/traces.db
""" % (cls.tooldir, cls.d.dir, cls.d.dir, cls.port, cls.port, cls.d.dir)
        cls.d.write_config(cls.config)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        rc = cls.d.stop()
        cls.d.close()
        cls.peer.stdin.close()
        cls.peer.wait()
        assert rc == 0, rc

    def call(self, name, args, timeout=30.0):
        return post(self.d.sock, "/v1/tools/%s/call" % name, {"arguments": args}, timeout)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def test_list(self):
        r = get(self.d.sock, "/v1/tools")
        self.assertEqual(r.status, 200)
        tools = {t["function"]["name"]: t for t in r.json()["tools"]}
        for name in ("calculator", "current_time", "http_get", "json_query", "text_stats",
                     "loop", "slow", "echo"):
            self.assertIn(name, tools)
        calc = tools["calculator"]
        self.assertEqual(calc["type"], "function")
        self.assertEqual(calc["function"]["parameters"]["type"], "object")
        self.assertTrue(calc["function"]["description"])

    def test_results_and_statuses(self):
        r = self.call("calculator", {"expression": "(3 + 4) * 2 / 7"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"]["result"], 2)
        r = self.call("echo", {"v": [1, {"a": None}, "é"]})
        self.assertEqual(r.json()["result"], {"v": [1, {"a": None}, "é"], "n": 1, "f": 1.5})
        cases = [("nosuch", {}, 404, "not_found"),
                 ("calculator", {"expression": 5}, 422, "invalid_arguments"),
                 ("calculator", {"expression": "1/0"}, 500, "tool_error"),
                 ("loop", {}, 504, "timeout"),
                 ("pcall_loop", {}, 504, "timeout"),
                 ("bomb", {}, 500, "memory"),
                 ("escape", {}, 500, "tool_error")]
        for name, args, status, kind in cases:
            r = self.call(name, args)
            self.assertEqual(r.status, status, (name, r))
            self.assertEqual(r.json()["error"]["type"], kind, (name, r))
            self.assertEqual(r.json()["error"]["tool"], name)
        # Still serving, and fast.
        self.assertEqual(get(self.d.sock, "/healthz").status, 200)
        r = request(self.d.sock, b"GET /v1/tools/calculator/call HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(r.status, 405)
        r = request(self.d.sock, b"POST /v1/tools/calculator/call HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 5\r\n\r\n{bad}")
        self.assertEqual(r.status, 400)

    def test_http_capability(self):
        r = self.call("http_get", {"url": self.url("/ok")})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["result"]["body"], "hello")
        self.assertEqual(r.json()["result"]["status"], 200)
        # A host outside the grant, and a redirect leaving it.
        r = self.call("http_get", {"url": "http://127.0.0.2:%d/ok" % self.port})
        self.assertIn(r.status, (403, 500), r)
        self.assertIn("not allowed", r.json()["error"]["message"])
        r = self.call("http_get", {"url": self.url("/redirect?to=http://10.0.0.1/x")})
        self.assertNotEqual(r.status, 200, r)
        self.assertIn("not allowed", r.json()["error"]["message"])
        # A tool without a grant for http is denied by name.
        with open(os.path.join(self.tooldir, "nogrant.lua"), "w") as f:
            f.write(TOOLS["slow.lua"].replace('name = "slow"', 'name = "nogrant"'))
        self.d.signal(signal.SIGHUP)
        self.assertTrue(self.d.wait_log("tools_reloaded"))
        r = self.call("nogrant", {"url": self.url("/ok")})
        self.assertIn(r.status, (403, 500), r)
        self.assertIn("capability not granted: http", r.json()["error"]["message"])

    def test_files_and_kv_builtins(self):
        r = self.call("write_file", {"path": "notes/a.txt", "content": "héllo"})
        self.assertEqual(r.status, 200, r)
        r = self.call("write_file", {"path": "notes/a.txt", "content": "!", "append": True})
        self.assertEqual(r.status, 200, r)
        r = self.call("read_file", {"path": "notes/a.txt"})
        self.assertEqual(r.json()["result"]["content"], "héllo!")
        r = self.call("list_dir", {"path": "notes"})
        self.assertEqual([e["name"] for e in r.json()["result"]["entries"]], ["a.txt"])
        # Shared with each other, confined to the workspace.
        self.assertTrue(os.path.isfile(os.path.join(self.d.dir, "ws", "files", "notes", "a.txt")))
        for bad in ("../escape.txt", "/etc/passwd"):
            r = self.call("read_file", {"path": bad})
            self.assertNotEqual(r.status, 200, r)
        r = self.call("kv_set", {"key": "k1", "value": {"n": [1, 2]}})
        self.assertEqual(r.status, 200, r)
        r = self.call("kv_get", {"key": "k1"})
        self.assertEqual(r.json()["result"], {"key": "k1", "found": True, "value": {"n": [1, 2]}})
        self.assertEqual(self.call("kv_get", {"prefix": "k"}).json()["result"]["keys"], ["k1"])
        self.call("kv_set", {"key": "k1", "value": None})
        self.assertFalse(self.call("kv_get", {"key": "k1"}).json()["result"]["found"])

    def test_slow_calls_do_not_block_fast_ones(self):
        results = []

        def slow():
            results.append(self.call("slow", {"url": self.url("/slow?ms=1500")}, timeout=60))

        threads = [threading.Thread(target=slow) for _ in range(100)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        t0 = time.time()
        r = self.call("calculator", {"expression": "1+1"})
        fast = time.time() - t0
        self.assertEqual(r.status, 200)
        self.assertLess(fast, 1.0, "a fast call waited behind slow ones")
        for t in threads:
            t.join()
        self.assertEqual(len(results), 100)
        self.assertTrue(all(x.status == 200 and x.json()["result"]["body"] == "slow"
                            for x in results), [x for x in results if x.status != 200][:2])

    def test_reload_keeps_previous_version(self):
        path = os.path.join(self.tooldir, "echo.lua")
        with open(path, "w") as f:
            f.write("return { name = 'echo', this is not lua")
        self.d.signal(signal.SIGHUP)
        self.assertTrue(self.d.wait_log("previous version"))
        r = self.call("echo", {"v": 1})
        self.assertEqual(r.status, 200, r)
        with open(path, "w") as f:
            f.write(TOOLS["echo.lua"])

    def test_calls_are_traced(self):
        self.call("text_stats", {"text": "one two"})
        deadline = time.time() + 5
        while time.time() < deadline:
            r = get(self.d.sock, "/v1/runs?agent=tools&limit=1000")
            names = []
            for run in r.json()["runs"]:
                t = get(self.d.sock, "/v1/runs/%d" % run["id"]).json()
                names += [s["name"] for s in t["spans"]]
            if "text_stats" in names:
                break
            time.sleep(0.1)
        self.assertIn("text_stats", names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
