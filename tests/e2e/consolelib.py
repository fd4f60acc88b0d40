"""A small, strict WebSocket client for the console suite (test_console.py).

It speaks RFC 6455 over a plain socket so a test can do what a library hides:
see the exact handshake reply (status, headers, JSON body of a refusal), stop
reading to build backpressure, or vanish without a close frame. Server frames
are checked as they arrive: never masked, no RSV bits, control frames short
and unfragmented.

Nothing here sleeps to synchronise: every read has a deadline.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import socket
import struct
import termios
import time
import urllib.parse

import helpers
from helpers import HttpConn, build_request, websocket_accept

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def console_target(container: str, cmd=None, tty=None, **params) -> str:
    """``/_dockermand/containers/{id}/console`` with a form-encoded query."""
    q = [("cmd", c) for c in (cmd or [])]
    if tty is not None:
        q.append(("tty", "1" if tty else "0"))
    q += [(k, str(v)) for k, v in params.items()]
    path = "/_dockermand/containers/%s/console" % container
    return path + ("?" + urllib.parse.urlencode(q) if q else "")


class WebSocket:
    """The client end of an upgraded connection (frames are masked)."""

    def __init__(self, conn: HttpConn, response: helpers.HttpResponse):
        self.conn = conn
        self.response = response
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.close_sent = False

    # -- sending -----------------------------------------------------------------
    def send_frame(self, opcode: int, payload: bytes, fin: bool = True):
        self.conn.send(encode_frame(opcode, payload, fin))

    def send_binary(self, data: bytes):
        self.send_frame(BINARY, data)

    def send_text(self, text: str):
        self.send_frame(TEXT, text.encode())

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_close(self, code: int = 1000, reason: str = ""):
        self.close_sent = True
        self.conn.send_quiet(encode_frame(CLOSE, struct.pack("!H", code) + reason.encode()))

    # -- receiving ---------------------------------------------------------------
    def recv_frame(self, timeout: float = 10.0):
        """(fin, opcode, payload) of the next frame from the server."""
        deadline = time.monotonic() + timeout
        head = self.conn.read_exact(2, self._left(deadline))
        b0, b1 = head
        assert b0 & 0x70 == 0, "server frame with RSV bits: %#x" % b0
        assert b1 & 0x80 == 0, "server frame is masked"
        fin, opcode, n = bool(b0 & 0x80), b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.conn.read_exact(2, self._left(deadline)))[0]
            assert n >= 126, "non-minimal 16-bit length %d" % n
        elif n == 127:
            n = struct.unpack("!Q", self.conn.read_exact(8, self._left(deadline)))[0]
            assert n >= 1 << 16, "non-minimal 64-bit length %d" % n
        if opcode >= 0x8:
            assert fin and n <= 125, "bad control frame opcode=%#x fin=%s len=%d" % (opcode, fin, n)
        payload = self.conn.read_exact(n, self._left(deadline)) if n else b""
        return fin, opcode, payload

    @staticmethod
    def _left(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        return left

    def recv_message(self, timeout: float = 10.0):
        """(opcode, payload) of the next whole message or close frame; pings
        are answered on the way."""
        deadline = time.monotonic() + timeout
        opcode, parts = None, []
        while True:
            fin, op, payload = self.recv_frame(self._left(deadline))
            if op == PING:
                self.conn.send_quiet(encode_frame(PONG, payload))
                continue
            if op == PONG:
                continue
            if op == CLOSE:
                self._got_close(payload)
                return CLOSE, payload
            if op == CONT:
                assert opcode is not None, "continuation frame without a message"
            else:
                assert opcode is None, "new data frame (%#x) inside a fragmented message" % op
                assert op in (TEXT, BINARY), "reserved opcode %#x" % op
                opcode = op
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def _got_close(self, payload: bytes):
        if len(payload) >= 2:
            self.close_code = struct.unpack("!H", payload[:2])[0]
            self.close_reason = payload[2:].decode("utf-8")
        else:
            assert not payload, "close payload of one byte"
            self.close_code = 1005
            self.close_reason = ""

    def finish_close(self, timeout: float = 10.0) -> bool:
        """After the server's Close: answer it (as a browser does) and wait for
        the server to close TCP. True if it did in time."""
        if not self.close_sent:
            self.send_close(self.close_code if self.close_code not in (None, 1005) else 1000)
        return self.conn.wait_closed(timeout)

    def wait_server_close(self, timeout: float = 10.0):
        """Discard data messages until the server's Close frame; returns the
        (code, reason)."""
        deadline = time.monotonic() + timeout
        while True:
            op, _ = self.recv_message(self._left(deadline))
            if op == CLOSE:
                return self.close_code, self.close_reason

    # -- socket-level ------------------------------------------------------------
    def unread_bytes(self) -> int:
        """Bytes the kernel holds for us that we have not read (FIONREAD)."""
        buf = fcntl.ioctl(self.conn.sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0] + len(self.conn.buf)

    def vanish(self, reset: bool = False):
        """Close TCP without a close frame (with an RST if ``reset``)."""
        if reset:
            self.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()

    def close(self):
        self.conn.close()


def encode_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    if n:
        m = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big")
    return head + mask + payload


def ws_request_headers(key: str, origin=None, protocol=None, extra=()) -> list:
    h = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
         ("Sec-WebSocket-Version", "13")]
    if origin is not None:
        h.append(("Origin", origin))
    if protocol is not None:
        h.append(("Sec-WebSocket-Protocol", protocol))
    return h + list(extra)


def open_ws(addr, target: str, headers=(), origin=None, protocol=None, timeout: float = 20.0,
            ssl_context=None):
    """Opens a WebSocket; returns (response, WebSocket or None). A refusal's
    body is read into ``response.body``. The Host header is the address
    connected to, so ``http://{host}:{port}`` is the same origin. With
    ``ssl_context`` it is a ``wss://`` socket (see ``HttpConn``)."""
    key = base64.b64encode(os.urandom(16)).decode()
    conn = HttpConn(addr, timeout, ssl_context=ssl_context)
    host = "[%s]:%d" % addr if ":" in addr[0] else "%s:%d" % addr
    try:
        conn.send(build_request("GET", target, ws_request_headers(key, origin, protocol, headers), host=host))
        resp = conn.read_response("GET", timeout)
    except BaseException:
        conn.close()
        raise
    if resp.status != 101:
        conn.close()
        return resp, None
    assert resp.header("Sec-WebSocket-Accept") == websocket_accept(key), resp
    assert (resp.header("Upgrade") or "").lower() == "websocket", resp
    return resp, WebSocket(conn, resp)


# ---------------------------------------------------------------------------
# console sessions


class Output:
    """What a console sent: output per stream (0 for a TTY), the exit message
    and the close frame, in order."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.streams = {0: bytearray(), 1: bytearray(), 2: bytearray()}
        self.events: list[str] = []  # "data", "exit", "close" in arrival order
        self.exit: dict | None = None
        self.texts: list[dict] = []

    @property
    def stdout(self) -> bytes:
        return bytes(self.streams[0 if self.tty else 1])

    @property
    def stderr(self) -> bytes:
        return bytes(self.streams[2])

    def add(self, opcode: int, payload: bytes):
        if opcode == BINARY:
            if self.tty:
                self.streams[0] += payload
            else:
                assert payload, "empty binary frame in non-TTY mode (no stream byte)"
                assert payload[0] in (1, 2), "unknown stream byte %d" % payload[0]
                self.streams[payload[0]] += payload[1:]
            if not self.events or self.events[-1] != "data":
                self.events.append("data")
        elif opcode == TEXT:
            msg = json.loads(payload)
            self.texts.append(msg)
            if msg.get("type") == "exit":
                assert self.exit is None, "two exit messages: %r" % self.texts
                self.exit = msg
                self.events.append("exit")
            else:
                self.events.append("text:%s" % msg.get("type"))
        else:
            raise AssertionError("unexpected opcode %#x" % opcode)


class Console:
    """A console WebSocket and everything it has received so far."""

    def __init__(self, ws: WebSocket, tty: bool):
        self.ws = ws
        self.out = Output(tty)
        self.closed = False

    def pump(self, timeout: float) -> bool:
        """Reads one message; False once the server's Close arrived."""
        if self.closed:
            return False
        op, payload = self.ws.recv_message(timeout)
        if op == CLOSE:
            self.out.events.append("close")
            self.closed = True
            return False
        self.out.add(op, payload)
        return True

    def read_until(self, predicate, timeout: float = 20.0, what: str = "output"):
        """Reads until ``predicate(self.out)`` is true (checked after every
        message)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.out):
            left = deadline - time.monotonic()
            try:
                if left <= 0 or not self.pump(left):
                    raise TimeoutError("closed" if self.closed else "deadline")
            except (TimeoutError, helpers.ConnectionClosed) as e:
                raise AssertionError("waiting for %s: %s; got stdout=%r stderr=%r texts=%r close=%r"
                                     % (what, e, self.out.stdout[-500:], self.out.stderr[-500:],
                                        self.out.texts, (self.ws.close_code, self.ws.close_reason)))

    def wait_stdout(self, needle: bytes, timeout: float = 20.0):
        self.read_until(lambda o: needle in o.stdout, timeout, "%r on stdout" % needle)

    def run_to_end(self, timeout: float = 30.0) -> Output:
        """Reads until the server's Close, answers it and checks that the
        server then closes TCP."""
        deadline = time.monotonic() + timeout
        while self.pump(max(0.01, deadline - time.monotonic())):
            pass
        assert self.ws.finish_close(max(0.5, deadline - time.monotonic())), \
            "server did not close TCP after the close handshake"
        return self.out

    def stdin(self, data: bytes):
        self.ws.send_binary(data)

    def close(self):
        self.ws.close()


def open_console(addr, container: str, cmd=None, tty=True, headers=(), origin=None, protocol=None,
                 timeout: float = 20.0, ssl_context=None, **params):
    """(response, Console or None)."""
    resp, ws = open_ws(addr, console_target(container, cmd, tty, **params), headers, origin, protocol,
                       timeout, ssl_context)
    return resp, (Console(ws, tty) if ws else None)


def must_open(addr, container: str, cmd=None, tty=True, **kw) -> Console:
    resp, c = open_console(addr, container, cmd, tty, **kw)
    assert resp.status == 101 and c is not None, "console refused: %r" % resp
    return c


# ---------------------------------------------------------------------------
# dockerd-side views


def resize_then_exit_4(ws) -> tuple[bytes, dict, tuple[int, bytes]]:
    """Through a websocket-client console: resizes to 91x33, has the shell
    print its size and exit 4, and reads until the close. Returns the
    output, the exit message and the close (code, reason)."""
    import websocket  # websocket-client

    ws.send(json.dumps({"type": "resize", "cols": 91, "rows": 33}))
    ws.send_binary(b"echo R=$(stty size)=; exit 4\n")
    out, exit_msg, close = b"", None, None
    while close is None:
        op, data = ws.recv_data(control_frame=True)
        if op == websocket.ABNF.OPCODE_BINARY:
            out += data
        elif op == websocket.ABNF.OPCODE_TEXT:
            exit_msg = json.loads(data)
        elif op == websocket.ABNF.OPCODE_CLOSE:
            close = (int.from_bytes(data[:2], "big"), data[2:])
    return out, exit_msg, close


def wait_for_stalled_output(ws, timeout: float = 30) -> int:
    """Waits, without reading, until the bytes waiting for us stop growing
    for half a second (everything between the writer and us is full), and
    returns how many there are."""
    seen = {"n": -1, "since": time.monotonic()}

    def stalled():
        n = ws.unread_bytes()
        now = time.monotonic()
        if n != seen["n"]:
            seen["n"], seen["since"] = n, now
            return False
        return n > 0 and now - seen["since"] >= 0.5

    helpers.wait_until(stalled, timeout, "output to stall while the client does not read", interval=0.05)
    return seen["n"]


def running_execs(api, container: str) -> list[dict]:
    """Inspections of the container's execs that dockerd says are running."""
    out = []
    for eid in api.inspect_container(container).get("ExecIDs") or []:
        try:
            e = api.exec_inspect(eid)
        except Exception:  # removed meanwhile
            continue
        if e.get("Running"):
            out.append(e)
    return out


def process_commands(api, container: str) -> list[str]:
    """The CMD column of ``docker top``."""
    top = api.top(container)
    titles = top.get("Titles") or []
    col = titles.index("CMD") if "CMD" in titles else len(titles) - 1
    return [p[col] for p in top.get("Processes") or []]
