"""shoaltest: helpers for integration tests that start a real shoald on a
temporary Unix socket and talk raw HTTP/1.1 to it, byte by byte when needed.
Standard library only, so the tests run wherever python3 does."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SHOALD = os.environ.get("SHOALD", "shoald")
SHOAL = os.environ.get("SHOAL", "shoal")


class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case name -> value (last wins)
        self.body = body

    def json(self):
        import json
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.headers} {self.body[:200]!r}>"


class Conn:
    """A client socket plus the bytes read past the last response, so
    pipelined responses that arrive in one read are not lost."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def __getattr__(self, name):
        return getattr(self.sock, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def recv(self, n):
        if self.buf:
            data, self.buf = self.buf[:n], self.buf[n:]
            return data
        return self.sock.recv(n)


def read_response(conn, head_only=False):
    """Read one response from conn; None if the peer closed first."""
    buf = conn.buf
    conn.buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.sock.recv(65536)
        if not chunk:
            if not buf:
                return None
            raise ConnectionError(f"connection closed inside a response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    assert version == "HTTP/1.1", lines[0]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    n = 0 if head_only or int(status) in (100, 204, 304) else int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = conn.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside a response body")
        rest += chunk
    conn.buf = rest[n:]
    return Response(int(status), reason, headers, rest[:n])


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return Conn(s)


def request(path, raw, timeout=5.0):
    """Send raw bytes on a new connection, return the first response."""
    with connect(path, timeout) as s:
        s.sendall(raw)
        return read_response(s)


def get(path, target, extra=b""):
    return request(path, b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")


def is_closed(sock, timeout=3.0):
    """True when the peer closes (EOF or reset) within timeout."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Daemon:
    """A shoald process on a private socket, with its own config and log."""

    def __init__(self, config="", name="shoal.sock", env=None, start=True, args=()):
        self.dir = tempfile.mkdtemp(prefix="shoal-it-")
        self.sock = os.path.join(self.dir, "run", name)
        self.config_path = os.path.join(self.dir, "shoal.yaml")
        self.log_path = os.path.join(self.dir, "shoald.log")
        self.write_config(config)
        self.env = dict(os.environ)
        self.env.pop("SHOAL_LOG", None)
        # The default trace database lives under XDG_STATE_HOME: keep it in
        # the test's directory, never the user's.
        self.env["XDG_STATE_HOME"] = os.path.join(self.dir, "state")
        self.env.update(env or {})
        self.args = list(args)
        self.proc = None
        if start:
            self.start()

    def write_config(self, body):
        text = "listen:\n  socket: %s\nlog:\n  level: debug\n" % self.sock
        with open(self.config_path, "w") as f:
            f.write(text + body)

    def start(self, expect_ready=True):
        if getattr(self, "log", None):
            self.log.close()
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([SHOALD, "--config", self.config_path] + self.args,
                                     stdout=self.log, stderr=self.log, env=self.env)
        if expect_ready:
            self.wait_ready()
        return self.proc

    def wait_ready(self, timeout=10.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shoald exited with {self.proc.returncode}:\n{self.logtext()}")
            try:
                with connect(self.sock, 1.0):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"shoald did not start:\n{self.logtext()}")

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, needle, timeout=5.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if needle in self.logtext():
                return True
            time.sleep(0.02)
        return False

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode if self.proc else None

    def close(self):
        try:
            if self.proc and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        finally:
            if getattr(self, "log", None):
                self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def run_cli(args, env=None, timeout=20):
    e = dict(os.environ)
    for k in ("SHOAL_SOCKET", "SHOAL_URL", "SHOAL_TOKEN", "SHOAL_CONFIG"):
        e.pop(k, None)
    e.update(env or {})
    return subprocess.run([SHOAL] + list(args), capture_output=True, text=True, env=e,
                          timeout=timeout)


# ---- JSON requests and chunked / server-sent-event responses ----

def post_raw(target, data, content_type=b"application/json"):
    """The bytes of one POST request with data as its body."""
    return (b"POST " + target.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: " + content_type
            + b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


def post_json(path, target, body, timeout=30.0):
    """POST body (an object, or bytes as they are) on a new connection."""
    data = body if isinstance(body, bytes) else __import__("json").dumps(body).encode()
    return request(path, post_raw(target, data), timeout)


class ChunkedBody:
    """Reads a chunked response body piece by piece after read_response(conn,
    head_only=True), so a test can look at a stream while it is running."""

    def __init__(self, conn):
        self.conn = conn
        self.buf = conn.buf
        conn.buf = b""
        self.ended = False

    def _fill(self):
        data = self.conn.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed inside a chunked body")
        self.buf += data

    def chunk(self):
        """The next chunk's data; None after the last (zero-size) chunk."""
        if self.ended:
            return None
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            # No trailers are expected: the body ends with an empty line.
            while b"\r\n" not in self.buf:
                self._fill()
            trailer, self.buf = self.buf.split(b"\r\n", 1)
            if trailer:
                raise ValueError("unexpected chunked trailer %r" % trailer)
            self.ended = True
            self.conn.buf = self.buf
            return None
        while len(self.buf) < size + 2:
            self._fill()
        data, tail, self.buf = self.buf[:size], self.buf[size:size + 2], self.buf[size + 2:]
        if tail != b"\r\n":
            raise ValueError("chunk of %d bytes not followed by CRLF: %r" % (size, tail))
        return data


class SseReader:
    """Server-sent events from a chunked body: event() gives the next event's
    data (its data: lines joined by newlines), None at the end of the body."""

    def __init__(self, body):
        self.body = body
        self.pending = b""

    def event(self):
        while True:
            self.pending = self.pending.replace(b"\r\n", b"\n")
            if b"\n\n" in self.pending:
                raw, self.pending = self.pending.split(b"\n\n", 1)
                lines = [l for l in raw.decode("utf-8").split("\n") if not l.startswith(":")]
                data = [l[5:].lstrip(" ") if l.startswith("data:") else None for l in lines]
                if any(d is None for d in data):
                    raise ValueError("event with a line that is not data: %r" % raw)
                if data:
                    return "\n".join(data)
                continue
            piece = self.body.chunk()
            if piece is None:
                if self.pending.strip():
                    raise ValueError("stream ended inside an event: %r" % self.pending)
                return None
            self.pending += piece


def open_stream(path, raw, timeout=30.0):
    """Send raw on a new connection; (conn, response head, SseReader or None
    when the answer is not chunked). The caller closes conn."""
    conn = connect(path, timeout)
    try:
        conn.sendall(raw)
        head = read_response(conn, head_only=True)
        if head is None:
            raise ConnectionError("connection closed before a response")
        if head.headers.get("transfer-encoding", "").lower() != "chunked":
            # A whole answer (an error before the stream began): read its body.
            n = int(head.headers.get("content-length", "0"))
            rest = conn.buf
            while len(rest) < n:
                data = conn.sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed inside a response body")
                rest += data
            head.body, conn.buf = rest[:n], rest[n:]
            return conn, head, None
        return conn, head, SseReader(ChunkedBody(conn))
    except BaseException:
        conn.close()
        raise
