"""Helpers shared by the end-to-end tests: the gateway process wrapper, a raw
HTTP/1.1 client that never hides protocol details, the docker CLI runner and
small polling utilities (every wait has a deadline; nothing sleeps to
synchronise)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

LISTEN_RE = re.compile(
    r"listening on (?:(?P<scheme>http|tls)://(?P<host>\[[0-9a-fA-F:.]+\]|[0-9A-Za-z.\-]+):(?P<port>\d+)"
    r"|unix:(?P<path>\S+))"
)


# ---------------------------------------------------------------------------
# polling


def wait_until(predicate, timeout: float, what: str = "condition", interval: float = 0.02):
    """Poll ``predicate`` until it returns a truthy value or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# gateway process


def gateway_binary() -> str:
    path = os.environ.get("DOCKERMAND_BIN") or str(REPO / "target" / "release" / "dockermand")
    return path


class Gateway:
    """A running dockermand process."""

    def __init__(self, args, expect_listeners: int = 1, env=None, wait: bool = True,
                 start_timeout: float = 15.0):
        self.args = [gateway_binary()] + [str(a) for a in args]
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._cond = threading.Condition()
        self._readers_done = 0
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.pid = self.proc.pid
        for stream, sink in ((self.proc.stderr, self.stderr_lines), (self.proc.stdout, self.stdout_lines)):
            threading.Thread(target=self._drain, args=(stream, sink), daemon=True).start()
        self.listeners: list[dict] = []
        if wait:
            self.wait_listeners(expect_listeners, start_timeout)

    def _drain(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        with self._cond:
            self._readers_done += 1
            self._cond.notify_all()

    # -- log lines -----------------------------------------------------------
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.stderr_lines + self.stdout_lines)

    def wait_for_line(self, pattern, timeout: float = 10.0, start: int = 0):
        """Wait for a stderr line (index >= start) matching ``pattern``; returns the match."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        end = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.stderr_lines):
                    m = rx.search(self.stderr_lines[i])
                    if m:
                        return m
                    i += 1
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("no stderr line matching %r within %.1fs; output:\n%s"
                                         % (rx.pattern, timeout, "\n".join(self.stderr_lines[-50:])))
                if self._readers_done == 2 and self.proc.poll() is not None:
                    raise AssertionError("dockermand exited (%s) before logging %r; output:\n%s"
                                         % (self.proc.returncode, rx.pattern, "\n".join(self.stderr_lines[-50:])))
                self._cond.wait(min(left, 0.1))

    def wait_listeners(self, n: int, timeout: float = 15.0):
        end = time.monotonic() + timeout
        idx = 0
        while len(self.listeners) < n:
            m = self.wait_for_line(LISTEN_RE, max(0.0, end - time.monotonic()), start=idx)
            with self._cond:
                # find the index of the matched line to continue after it
                for j in range(idx, len(self.stderr_lines)):
                    if LISTEN_RE.search(self.stderr_lines[j]):
                        idx = j + 1
                        break
            if m.group("path"):
                self.listeners.append({"kind": "unix", "path": m.group("path")})
            else:
                host = m.group("host").strip("[]")
                kind = "tls" if m.group("scheme") == "tls" else "tcp"
                self.listeners.append({"kind": kind, "host": host, "port": int(m.group("port"))})
        return self.listeners

    # -- addresses -------------------------------------------------------------
    def tcp_listener(self):
        for l in self.listeners:
            if l["kind"] == "tcp":
                return l
        raise AssertionError("gateway has no TCP listener: %r" % self.listeners)

    def tls_listener(self):
        for l in self.listeners:
            if l["kind"] == "tls":
                return l
        raise AssertionError("gateway has no TLS listener: %r" % self.listeners)

    @property
    def tls_addr(self):
        """(host, port) of the first ``tls://`` listener."""
        l = self.tls_listener()
        return (l["host"], l["port"])

    @property
    def host(self) -> str:
        return self.tcp_listener()["host"]

    @property
    def port(self) -> int:
        return self.tcp_listener()["port"]

    @property
    def addr(self):
        return (self.host, self.port)

    @property
    def url(self) -> str:
        h = self.host
        if ":" in h:
            h = "[%s]" % h
        return "http://%s:%d" % (h, self.port)

    @property
    def docker_host(self) -> str:
        return "tcp://%s" % self.url[len("http://"):]

    @property
    def env(self) -> dict:
        return docker_env(self.docker_host)

    # -- introspection -----------------------------------------------------------
    def connect(self, timeout: float = 10.0) -> "HttpConn":
        return HttpConn(self.addr, timeout=timeout)

    def status(self) -> dict:
        c = self.connect()
        try:
            r = c.request("GET", "/_dockermand/status")
        finally:
            c.close()
        assert r.status == 200, "status endpoint answered %d: %r" % (r.status, r.body[:200])
        return json.loads(r.body)

    def fd_count(self) -> int:
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kib(self) -> int:
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- lifecycle -----------------------------------------------------------------
    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("dockermand (pid %d) did not exit within %.1fs" % (self.pid, timeout))

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; kills (and fails) if it does not exit."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("dockermand (pid %d) ignored SIGTERM for %.1fs" % (self.pid, timeout))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


# ---------------------------------------------------------------------------
# raw HTTP client


class HttpResponse:
    def __init__(self, version, status, reason, headers, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.raw_head = raw_head
        self.body = b""
        self.complete = False

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<HttpResponse %s %s %r body=%r>" % (self.status, self.reason, self.headers, self.body[:200])


class ConnectionClosed(Exception):
    """The peer closed (EOF or reset) before the expected data arrived."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


def build_request(method, target, headers=None, body=b"", host="localhost", version="HTTP/1.1") -> bytes:
    lines = ["%s %s %s" % (method, target, version)]
    names = set()
    for k, v in (headers or []):
        names.add(k.lower())
    if host is not None and "host" not in names:
        lines.append("Host: " + host)
    for k, v in (headers or []):
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class HttpConn:
    """One client connection with a receive buffer, so pipelined responses and
    hijacked streams can be read exactly."""

    def __init__(self, addr, timeout: float = 10.0, source: str | None = None, ssl_context=None,
                 server_hostname: str = "localhost"):
        """``source``: the local address to connect from (any 127.x.y.z on
        loopback), for tests that need many client addresses. ``ssl_context``:
        speak TLS (an ``ssl.SSLContext``; the handshake completes here) and
        verify the server as ``server_hostname``."""
        self.timeout = timeout
        if isinstance(addr, (str, Path)):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(str(addr))
        else:
            host, port = addr
            fam = socket.AF_INET6 if ":" in host else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            if source is not None:
                self.sock.bind((source, 0))
            self.sock.connect((host, port))
        if ssl_context is not None:
            try:
                self.sock = ssl_context.wrap_socket(self.sock, server_hostname=server_hostname)
            except BaseException:
                self.sock.close()
                raise
        self.buf = bytearray()
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_quiet(self, data: bytes) -> bool:
        """Send, tolerating a peer that already closed; returns False if it had."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline: float) -> int:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise TimeoutError("no data within deadline")
        except (ConnectionResetError, ConnectionAbortedError):
            data = b""
        if not data:
            self.eof = True
            return 0
        self.buf += data
        return len(data)

    def read_until(self, marker: bytes, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        start = 0
        while True:
            i = self.buf.find(marker, start)
            if i >= 0:
                out = bytes(self.buf[: i + len(marker)])
                del self.buf[: i + len(marker)]
                return out
            start = max(0, len(self.buf) - len(marker) + 1)
            if self.eof or self._fill(deadline) == 0:
                raise ConnectionClosed("closed before %r" % marker, bytes(self.buf))

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if self.eof or self._fill(deadline) == 0:
                raise ConnectionClosed("closed after %d of %d bytes" % (len(self.buf), n), bytes(self.buf))
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, timeout: float | None = None) -> bytes:
        """Return buffered bytes or wait for at least one more; b'' on EOF."""
        if not self.buf and not self.eof:
            self._fill(time.monotonic() + (timeout or self.timeout))
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def read_until_eof(self, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.eof:
            self._fill(deadline)
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Discard incoming data until EOF/reset; True if that happens in time."""
        try:
            self.read_until_eof(timeout)
            return True
        except TimeoutError:
            return False

    def read_head(self, timeout: float | None = None) -> HttpResponse:
        raw = self.read_until(b"\r\n\r\n", timeout)
        lines = raw[:-4].split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            k, _, v = line.decode("latin-1").partition(":")
            headers.append((k, v.strip()))
        return HttpResponse(parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, raw)

    def read_body(self, resp: HttpResponse, method: str = "GET", timeout: float | None = None) -> bytes:
        timeout = timeout or self.timeout
        deadline = time.monotonic() + timeout
        if method == "HEAD" or resp.status < 200 or resp.status in (204, 304):
            resp.complete = True
            return b""
        te = resp.header("Transfer-Encoding")
        body = bytearray()
        if te is not None and te.lower() == "chunked":
            while True:
                line = self.read_until(b"\r\n", deadline - time.monotonic())
                size = int(line[:-2].split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n", deadline - time.monotonic()) != b"\r\n":
                        pass
                    break
                body += self.read_exact(size, deadline - time.monotonic())
                if self.read_exact(2, deadline - time.monotonic()) != b"\r\n":
                    raise AssertionError("missing CRLF after response chunk")
        elif resp.header("Content-Length") is not None:
            body += self.read_exact(int(resp.header("Content-Length")), timeout)
        else:
            body += self.read_until_eof(timeout)
        resp.body = bytes(body)
        resp.complete = True
        return resp.body

    def read_response(self, method: str = "GET", timeout: float | None = None,
                      interim: bool = False) -> HttpResponse:
        """Read one full response.  1xx interim responses (other than 101) are
        skipped unless ``interim`` is true, in which case they are returned."""
        while True:
            resp = self.read_head(timeout)
            if 100 <= resp.status < 200 and resp.status != 101:
                if interim:
                    return resp
                continue
            break
        if resp.status != 101:
            self.read_body(resp, method, timeout)
        return resp

    def request(self, method, target, headers=None, body=b"", timeout=None, **kw) -> HttpResponse:
        self.send(build_request(method, target, headers, body, **kw))
        return self.read_response(method, timeout)


def http_request(addr, method, target, headers=None, body=b"", timeout=30.0) -> HttpResponse:
    with HttpConn(addr, timeout) as c:
        return c.request(method, target, headers, body, timeout=timeout)


def json_body(method, target, addr, obj, expect=(200, 201, 204)):
    """Send a JSON request on a fresh connection and decode the JSON answer."""
    body = json.dumps(obj).encode()
    r = http_request(addr, method, target, [("Content-Type", "application/json")], body)
    assert r.status in expect, r
    return json.loads(r.body) if r.body else None


# ---------------------------------------------------------------------------
# docker multiplexed stream


def demux_frames(data: bytes):
    """Split docker's stdcopy framing into {1: stdout, 2: stderr} bytes."""
    out = {0: b"", 1: b"", 2: b""}
    i = 0
    while i + 8 <= len(data):
        stream = data[i]
        size = int.from_bytes(data[i + 4:i + 8], "big")
        out[stream] = out.get(stream, b"") + data[i + 8:i + 8 + size]
        i += 8 + size
    assert i == len(data), "trailing partial frame in %r" % data[i:]
    return out


# ---------------------------------------------------------------------------
# docker CLI


def find_docker_cli() -> str:
    """The docker CLI used by the tests: $DOCKERMAND_TEST_DOCKER_CLI, else the
    first one on PATH reporting client version 28, else the first on PATH."""
    env = os.environ.get("DOCKERMAND_TEST_DOCKER_CLI")
    if env:
        return env
    candidates = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "docker")
        if os.path.isfile(p) and os.access(p, os.X_OK) and p not in candidates:
            candidates.append(p)
    for p in candidates:
        try:
            out = subprocess.run([p, "version", "--format", "{{.Client.Version}}"],
                                 env=dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock"),
                                 capture_output=True, timeout=20).stdout.decode().strip()
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.startswith("28."):
            return p
    if candidates:
        return candidates[0]
    found = shutil.which("docker")
    if not found:
        raise RuntimeError("no docker CLI on PATH")
    return found


_DOCKER_CONFIG_DIR = None


def docker_env(docker_host: str, **extra) -> dict:
    global _DOCKER_CONFIG_DIR
    if _DOCKER_CONFIG_DIR is None:
        import atexit
        import tempfile
        _DOCKER_CONFIG_DIR = tempfile.mkdtemp(prefix="dmcfg", dir="/tmp")
        atexit.register(shutil.rmtree, _DOCKER_CONFIG_DIR, True)
    env = dict(os.environ)
    for k in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "DOCKER_API_VERSION"):
        env.pop(k, None)
    env["DOCKER_HOST"] = docker_host
    env["DOCKER_CONFIG"] = _DOCKER_CONFIG_DIR
    env["DOCKER_CLI_HINTS"] = "false"
    env.update({k: str(v) for k, v in extra.items()})
    return env


class DockerCLI:
    """Runs the docker CLI against one DOCKER_HOST."""

    def __init__(self, exe: str, docker_host: str):
        self.exe = exe
        self.docker_host = docker_host

    def env(self, **extra) -> dict:
        return docker_env(self.docker_host, **extra)

    def run(self, *args, input: bytes | None = None, timeout: float = 120, check: bool = True,
            env_extra: dict | None = None, stdin=None, cwd=None) -> subprocess.CompletedProcess:
        cmd = [self.exe] + [str(a) for a in args]
        kw = {}
        if input is not None:
            kw["input"] = input
        elif stdin is not None:
            kw["stdin"] = stdin
        else:
            kw["stdin"] = subprocess.DEVNULL
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=self.env(**(env_extra or {})),
                               cwd=cwd, **kw)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("docker %s timed out after %ss (DOCKER_HOST=%s); stderr so far: %r"
                                 % (" ".join(cmd[1:]), timeout, self.docker_host, e.stderr))
        if check and p.returncode != 0:
            raise AssertionError("docker %s exited %d (DOCKER_HOST=%s)\nstdout: %r\nstderr: %r"
                                 % (" ".join(cmd[1:]), p.returncode, self.docker_host, p.stdout[-2000:],
                                    p.stderr[-2000:]))
        return p

    def out(self, *args, **kw) -> str:
        return self.run(*args, **kw).stdout.decode().strip()

    def popen(self, *args, env_extra=None, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        return subprocess.Popen([self.exe] + [str(a) for a in args], env=self.env(**(env_extra or {})), **kw)


class LineReader:
    """Collects the lines of a pipe in a thread; wait for one with a deadline."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self.cond = threading.Condition()
        self.closed = False
        threading.Thread(target=self._run, args=(stream,), daemon=True).start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_for(self, pattern, timeout: float) -> str:
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                for l in self.lines:
                    if rx.search(l):
                        return l
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r within %.1fs; got %r" % (pattern, timeout, self.lines))
                if self.closed:
                    raise AssertionError("stream closed without a line matching %r; got %r" % (pattern, self.lines))
                self.cond.wait(min(left, 0.1))


# ---------------------------------------------------------------------------
# tar helpers


def tar_bytes(files: dict, base: str | None = None) -> bytes:
    """A tar archive with the given {name: bytes} regular files, after the
    members of the tar file at ``base`` if given."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        if base:
            with tarfile.open(base) as src:
                for ti in src.getmembers():
                    tf.addfile(ti, src.extractfile(ti) if ti.isfile() else None)
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def tar_single_file_stream(name: str, size: int, block: int = 1 << 20):
    """(length, generator) of a USTAR archive holding one file of ``size`` zero
    bytes, produced without holding it in memory."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o644
    ti.mtime = 1700000000
    header = ti.tobuf(format=tarfile.USTAR_FORMAT)
    pad = (512 - size % 512) % 512
    trailer = b"\0" * (pad + 1024)
    total = len(header) + size + len(trailer)

    def gen():
        yield header
        left = size
        zero = b"\0" * block
        while left > 0:
            n = min(block, left)
            yield zero if n == block else zero[:n]
            left -= n
        yield trailer

    return total, gen


def websocket_accept(key: str) -> str:
    guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    return base64.b64encode(hashlib.sha1((key + guid).encode()).digest()).decode()


# ---------------------------------------------------------------------------
# bulk transfer helpers


def drain_body(conn: HttpConn, resp: HttpResponse, timeout: float = 120.0) -> int:
    """Read and discard a response body (chunked, Content-Length or until EOF)
    without keeping it in memory; returns the number of payload bytes.  Fails
    if the body ends before its framing says it is complete."""
    deadline = time.monotonic() + timeout
    total = 0
    te = (resp.header("Transfer-Encoding") or "").lower()
    if te == "chunked":
        while True:
            line = conn.read_until(b"\r\n", max(0.1, deadline - time.monotonic()))
            size = int(line[:-2].split(b";")[0].strip(), 16)
            if size == 0:
                while conn.read_until(b"\r\n", max(0.1, deadline - time.monotonic())) != b"\r\n":
                    pass
                break
            left = size
            while left:
                if not conn.buf and conn._fill(deadline) == 0:
                    raise ConnectionClosed("body ended inside a chunk")
                take = min(left, len(conn.buf))
                del conn.buf[:take]
                left -= take
                total += take
            if conn.read_exact(2, max(0.1, deadline - time.monotonic())) != b"\r\n":
                raise AssertionError("missing CRLF after chunk")
    elif resp.header("Content-Length") is not None:
        left = int(resp.header("Content-Length"))
        while left:
            if not conn.buf and conn._fill(deadline) == 0:
                raise ConnectionClosed("body ended %d bytes early" % left)
            take = min(left, len(conn.buf))
            del conn.buf[:take]
            left -= take
            total += take
    else:
        while True:
            total += len(conn.buf)
            conn.buf.clear()
            if conn._fill(deadline) == 0:
                break
    resp.complete = True
    return total


class RssSampler:
    """Samples a process's VmRSS in a thread until stopped."""

    def __init__(self, gateway: Gateway, interval: float = 0.01):
        self.gateway = gateway
        self.interval = interval
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.samples.append(self.gateway.rss_kib())
            except (OSError, AssertionError):
                break
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    @property
    def max_kib(self) -> int:
        return max(self.samples) if self.samples else 0
