"""A scripted, recording stand-in for dockerd on a unix socket (or TCP).

Every accepted connection is served by its own thread.  All bytes received
are appended to the connection's :class:`ConnRecord`, so a test can prove
exactly what the gateway forwarded (or that it forwarded nothing).

Requests are answered according to their path (an API version prefix such
as ``/v1.41`` is ignored).  Scripted behaviours are chosen through a container
name starting with ``standin-`` in a real Docker API route, so that a gateway
with a route table lets them through: ``/containers/standin-BEHAVIOUR/...``
(for example ``GET /containers/standin-truncate-cl/json`` or
``PUT /containers/standin-sink/archive?path=/tmp``).

``/_ping``
    200, body ``OK``.
``standin-truncate-cl``
    200 with ``Content-Length: 100000`` but only 1000 body bytes, then the
    connection is closed.
``standin-truncate-chunked``
    200 chunked, two chunks, then the connection is closed without the
    terminating zero-size chunk.
``standin-gate-NAME``
    waits until the test opens the gate ``NAME`` (``Standin.gate(NAME).set()``),
    then answers 200 with a JSON body.
``standin-hang``
    never answers; keeps the connection open until the peer closes it or the
    stand-in is shut down.
``standin-close``
    closes the connection without any reply.
``standin-malformed-KIND``
    sends a malformed response head (KIND: garbage, status, content-length,
    both-lengths, header-space) and closes.
``standin-stream`` with query ``count=N&interval=S&gap_after=K&gap=G``
    200 chunked; sends N chunks ``chunk-i\\n`` with S seconds between them and
    an extra pause of G seconds after chunk K, then the terminating chunk.
anything else (including ``standin-sink``)
    200 with a JSON body describing the request as received (method, target,
    headers, body length and sha256).

Request bodies (Content-Length or chunked) are read completely before a
reply is sent.  If the peer closes before the body is complete the request is
recorded with ``body_complete = False``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import threading
import time
import urllib.parse

MAX_HEAD = 1 << 20


class ProtocolError(Exception):
    pass


class PeerClosed(Exception):
    pass


class Request:
    def __init__(self, method, target, version, headers, raw_head):
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers  # list of (name, value) as received
        self.raw_head = raw_head
        self.body = bytearray()
        self.body_complete = False

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def path(self):
        path = urllib.parse.urlsplit(self.target).path
        # strip an API version prefix such as /v1.41
        parts = path.split("/", 2)
        if len(parts) > 2 and parts[1].startswith("v") and parts[1][1:2].isdigit():
            path = "/" + parts[2]
        return path

    @property
    def behaviour(self):
        """``X`` of a ``/containers/standin-X/...`` path, else None."""
        parts = self.path.split("/")
        if len(parts) >= 3 and parts[1] == "containers" and parts[2].startswith("standin-"):
            return parts[2][len("standin-"):]
        return None

    @property
    def query(self):
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query))

    def describe(self):
        return {
            "method": self.method,
            "target": self.target,
            "version": self.version,
            "headers": self.headers,
            "body_len": len(self.body),
            "body_sha256": hashlib.sha256(bytes(self.body)).hexdigest(),
        }


class ConnRecord:
    """Everything one upstream connection received."""

    def __init__(self):
        self.data = bytearray()
        self.requests: list[Request] = []
        self.peer_closed = threading.Event()  # recv() saw EOF or an error
        self.finished = threading.Event()  # the serving thread ended
        self.lock = threading.Lock()

    def bytes(self):
        with self.lock:
            return bytes(self.data)


class _Conn:
    def __init__(self, server: "Standin", sock: socket.socket, record: ConnRecord):
        self.server = server
        self.sock = sock
        self.record = record
        self.buf = bytearray()

    # -- reading ---------------------------------------------------------
    def _recv(self):
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise
        except OSError:
            data = b""
        if not data:
            self.record.peer_closed.set()
            raise PeerClosed()
        with self.record.lock:
            self.record.data += data
        self.buf += data
        with self.server.cond:
            self.server.cond.notify_all()

    def read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = bytes(self.buf[: i + len(marker)])
                del self.buf[: i + len(marker)]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("line too long")
            self._recv()

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._recv()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_request(self) -> Request | None:
        try:
            raw = self.read_until(b"\r\n\r\n", MAX_HEAD)
        except PeerClosed:
            return None
        lines = raw[:-4].split(b"\r\n")
        try:
            method, target, version = lines[0].decode("latin-1").split(" ")
        except ValueError:
            raise ProtocolError("bad request line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError("bad header line %r" % line)
            headers.append((name, value.strip(" \t")))
        req = Request(method, target, version, headers, raw)
        with self.record.lock:
            self.record.requests.append(req)
        try:
            self._read_body(req)
        except PeerClosed:
            return req
        req.body_complete = True
        return req

    def _read_body(self, req: Request):
        te = req.header("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise ProtocolError("unsupported transfer-encoding %r" % te)
            while True:
                line = self.read_until(b"\r\n", 4096)
                size = int(line[:-2].split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers
                    while self.read_until(b"\r\n", 65536) != b"\r\n":
                        pass
                    return
                req.body += self.read_exact(size)
                if self.read_exact(2) != b"\r\n":
                    raise ProtocolError("missing CRLF after chunk")
        cl = req.header("Content-Length")
        if cl is not None:
            n = int(cl)
            while n > 0:
                if not self.buf:
                    self._recv()
                take = min(n, len(self.buf))
                req.body += self.buf[:take]
                del self.buf[:take]
                n -= take

    # -- writing ---------------------------------------------------------
    def send(self, data: bytes):
        self.sock.sendall(data)

    def reply(self, status: int, body: bytes, ctype="application/json", reason="OK", extra=()):
        head = ["HTTP/1.1 %d %s" % (status, reason), "Content-Type: " + ctype,
                "Content-Length: %d" % len(body), "Server: dockermand-standin"]
        head += list(extra)
        self.send(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def _handle(conn: _Conn, req: Request) -> bool:
    """Answer one request.  Returns False when the connection must end."""
    b = req.behaviour
    q = req.query
    if req.path == "/_ping":
        conn.reply(200, b"OK", ctype="text/plain; charset=utf-8")
        return True
    if b == "truncate-cl":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: 100000\r\n\r\n" + b"a" * 1000)
        return False
    if b == "truncate-chunked":
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n")
        return False
    if b is not None and b.startswith("gate-"):
        gate = conn.server.gate(b[len("gate-"):])
        end = time.monotonic() + 120
        while not gate.wait(0.05):
            if conn.server.stopping.is_set() or time.monotonic() > end:
                return False
        conn.reply(200, json.dumps({"gate": b}).encode())
        return True
    if b == "hang":
        conn.sock.settimeout(0.1)
        while not conn.server.stopping.is_set():
            try:
                conn._recv()
            except socket.timeout:
                continue
            except PeerClosed:
                break
        return False
    if b == "close":
        return False
    if b is not None and b.startswith("malformed-"):
        kind = b[len("malformed-"):]
        bad = {
            "garbage": b"THIS IS NOT HTTP\r\n\r\n",
            "status": b"HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nOK",
            "content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\nOK",
            "both-lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n",
            "header-space": b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nOK",
        }[kind]
        conn.send(bad)
        return False
    if b == "stream":
        count = int(q.get("count", "8"))
        interval = float(q.get("interval", "0.5"))
        gap_after = int(q.get("gap_after", "-1"))
        gap = float(q.get("gap", "0"))
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(count):
            piece = b"chunk-%d\n" % i
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            if i == gap_after:
                time.sleep(gap)  # pacing of the scripted stream, not synchronisation
            elif i + 1 < count:
                time.sleep(interval)  # pacing of the scripted stream
        conn.send(b"0\r\n\r\n")
        return True
    conn.reply(200, json.dumps(req.describe()).encode())
    return True


class Standin:
    """A recording stand-in upstream listening on a unix socket."""

    def __init__(self, path: str | None = None, tcp: bool = False):
        """Listen on the unix socket ``path`` (a fresh temporary one by
        default), or on 127.0.0.1 with a kernel-chosen port if ``tcp``."""
        self._tmpdir = None
        if tcp:
            path = None
        elif path is None:
            self._tmpdir = tempfile.mkdtemp(prefix="dmsi", dir="/tmp")
            path = os.path.join(self._tmpdir, "up.sock")
        self.path = path
        self.records: list[ConnRecord] = []
        self.cond = threading.Condition()
        self.stopping = threading.Event()
        self._gates: dict[str, threading.Event] = {}
        self._socks: list[socket.socket] = []
        self.errors: list[str] = []
        if tcp:
            self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lsock.bind(("127.0.0.1", 0))
            self.port = self.lsock.getsockname()[1]
        else:
            self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.lsock.bind(path)
            self.port = None
        self.lsock.listen(128)
        self.lsock.settimeout(0.1)
        self._thread = threading.Thread(target=self._accept_loop, name="standin-accept", daemon=True)
        self._thread.start()

    @property
    def url(self):
        if self.path is None:
            return "tcp://127.0.0.1:%d" % self.port
        return "unix://" + self.path

    def gate(self, name: str) -> threading.Event:
        with self.cond:
            return self._gates.setdefault(name, threading.Event())

    # -- observation -------------------------------------------------------
    def connection_count(self) -> int:
        with self.cond:
            return len(self.records)

    def total_bytes(self) -> int:
        with self.cond:
            return sum(len(r.data) for r in self.records)

    def all_bytes(self) -> bytes:
        with self.cond:
            return b"".join(r.bytes() for r in self.records)

    def requests(self) -> list[Request]:
        with self.cond:
            return [req for r in self.records for req in r.requests]

    def wait_for(self, predicate, timeout: float, what="stand-in condition"):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate()
                if value:
                    return value
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
                self.cond.wait(min(left, 0.05))

    # -- serving -------------------------------------------------------------
    def _accept_loop(self):
        while not self.stopping.is_set():
            try:
                sock, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            sock.settimeout(None)
            record = ConnRecord()
            with self.cond:
                self.records.append(record)
                self._socks.append(sock)
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(sock, record), name="standin-conn",
                             daemon=True).start()

    def _serve(self, sock, record):
        conn = _Conn(self, sock, record)
        try:
            while not self.stopping.is_set():
                req = conn.read_request()
                if req is None or not req.body_complete:
                    break
                if not _handle(conn, req):
                    break
        except (ProtocolError, ValueError) as e:
            self.errors.append(repr(e))
        except (PeerClosed, OSError):
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass
            record.finished.set()
            with self.cond:
                self.cond.notify_all()

    def close(self):
        self.stopping.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        self._thread.join(5)
        with self.cond:
            socks = list(self._socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        if self._tmpdir:
            try:
                os.rmdir(self._tmpdir)
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv=None):
    """Run a stand-in from the command line until SIGINT/SIGTERM and print a
    JSON summary of what it received."""
    import argparse
    import signal

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", help="unix socket path to listen on")
    ap.add_argument("--tcp", action="store_true", help="listen on 127.0.0.1:0 instead")
    args = ap.parse_args(argv)
    if not args.socket and not args.tcp:
        ap.error("give --socket PATH or --tcp")
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    s = Standin(args.socket, tcp=args.tcp)
    print(json.dumps({"listening": s.url}), flush=True)
    done.wait()
    summary = {"connections": s.connection_count(), "bytes": s.total_bytes(),
               "requests": [r.describe() for r in s.requests()], "errors": s.errors}
    s.close()
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
