#!/usr/bin/env python3
"""http_peer.py: the loopback HTTP server for tests of outgoing HTTP: the
event loop's client (tests/daemon/test_fetch.c), the tools' ctx.http
(tests/tools/test_caps.c) and tools in a real daemon
(tests/integration/test_tools.py). Prints its port on the first line; exits
when stdin closes. Routes:
  GET  /ok               200 "hello", Content-Type text/plain, X-Test: a and X-Test: b
  GET  /slow?ms=N        waits N ms (default 100), then 200 "slow"
  GET  /big?n=N          200 with N bytes of "x"
  GET  /status/N         status N, body {"error":"status N"}, Retry-After: 2,
                         x-request-id: req-N
  GET  /reset            promises 1000 bytes, sends 10, closes
  GET  /sse?n=N&ms=M     text/event-stream, chunked: N "data: i" events M ms apart
                         (defaults 3 and 10), then "data: [DONE]"
  GET  /redirect?to=URL  302 to URL (relative or absolute; default /ok)
  POST /redirect?to=URL  307 to URL (default /echo)
  GET  /see-other        303 to /echo (POST too)
  GET  /loop             302 to /loop, for ever
  POST /echo             200 with the request body; X-Got-Type: the Content-Type,
                         X-Got-Auth: the Authorization header (both "none" when
                         absent), X-Got-Method: the method
  GET  /echo             the same, for redirected requests
Anything else is 404. Standard library only."""

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def echo(self, body):
        self.reply(200, body, [
            ("X-Got-Type", self.headers.get("Content-Type", "none")),
            ("X-Got-Auth", self.headers.get("Authorization", "none")),
            ("X-Got-Method", self.command),
        ])

    def reset(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def sse(self, n, ms):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(n):
            chunk = b"data: %d\n\n" % i
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
            time.sleep(ms / 1000)
        chunk = b"data: [DONE]\n\n"
        self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))

    def do_GET(self):
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/ok":
            self.reply(200, b"hello", [("Content-Type", "text/plain"),
                                      ("X-Test", "a"), ("X-Test", "b")])
        elif u.path == "/slow":
            time.sleep(int(q.get("ms", "100")) / 1000)
            self.reply(200, b"slow")
        elif u.path == "/big":
            self.reply(200, b"x" * int(q.get("n", "0")))
        elif u.path.startswith("/status/"):
            n = int(u.path.rsplit("/", 1)[1])
            self.reply(n, b'{"error":"status %d"}' % n,
                       [("Retry-After", "2"), ("x-request-id", "req-%d" % n)])
        elif u.path == "/reset":
            self.reset()
        elif u.path == "/sse":
            self.sse(int(q.get("n", "3")), int(q.get("ms", "10")))
        elif u.path == "/redirect":
            self.reply(302, b"", [("Location", q.get("to", "/ok"))])
        elif u.path == "/see-other":
            self.reply(303, b"", [("Location", "/echo")])
        elif u.path == "/loop":
            self.reply(302, b"", [("Location", "/loop")])
        elif u.path == "/echo":
            self.echo(b"")
        else:
            self.reply(404, b"not found")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        u = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        if u.path == "/echo":
            self.echo(body)
        elif u.path == "/see-other":
            self.reply(303, b"", [("Location", "/echo")])
        elif u.path == "/redirect":
            self.reply(307, b"", [("Location", q.get("to", "/echo"))])
        else:
            self.reply(404, b"not found")


class Server(ThreadingHTTPServer):
    request_queue_size = 512  # the default 5 drops SYNs under 200 concurrent clients
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up on purpose (cancel, size caps) are not errors


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    sys.stdout = open(os.devnull, "w")  # nothing else is for the test to read
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sys.stdin.read()


if __name__ == "__main__":
    main()
