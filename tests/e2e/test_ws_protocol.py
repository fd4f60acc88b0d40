"""WebSocket protocol conformance (RFC 6455) against dockermand's echo mode.

The Autobahn fuzzingclient is the usual tool for this, but the PyPI package
``autobahntestsuite`` is Python 2 code (it installs on Python 3 and then fails
on its first import), so this file re-creates its case categories with raw
sockets and the standard library only:

  0  handshake (no extension may be negotiated: we never set RSV bits)
  1  framing: text/binary of every length encoding
  2  ping/pong
  3  reserved bits
  4  reserved opcodes
  5  fragmentation
  6  UTF-8 handling
  7  close handling
  9  large messages
  10 message size limit (16 MiB in echo mode)
  11 strictness beyond Autobahn (masking, minimal lengths)

The daemon runs with ``--ws-echo``: ``GET /_dockermand/echo`` upgrades without
authentication, echoes every complete text/binary message with its opcode,
answers ping with pong and close with close (echoing the status code).

Every case asserts exact behaviour: the echoed payload, or a close frame with
the expected code followed by the server closing TCP. A protocol error is
always followed by our own close reply, as a real client would send.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
from collections import Counter, namedtuple

import pytest

from helpers import Gateway

ECHO_PATH = "/_dockermand/echo"
MAX_MESSAGE = 16 * 1024 * 1024
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

CATEGORIES = {
    "0": "handshake",
    "1": "framing",
    "2": "ping/pong",
    "3": "reserved bits",
    "4": "reserved opcodes",
    "5": "fragmentation",
    "6": "UTF-8 handling",
    "7": "close handling",
    "9": "large messages",
    "10": "size limit",
    "11": "strict framing",
}


# ---------------------------------------------------------------------------
# the echo daemon


@pytest.fixture(scope="module")
def echo_gw():
    g = Gateway(["--listen", "127.0.0.1:0", "--upstream", "unix:///nonexistent",
                 "--shutdown-grace", "2", "--ws-echo"], wait=False)
    try:
        g.wait_listeners(1)
    except AssertionError:
        try:
            g.proc.wait(10)
        except Exception:
            g.proc.kill()
            g.proc.wait(5)
        out = g.output()
        if 'unknown argument "--ws-echo"' in out:
            pytest.skip("this dockermand has no --ws-echo flag yet")
        raise
    yield g
    alive = g.alive()
    rc = g.stop(15)
    if not alive or rc != 0:
        print("--- dockermand output (tail) ---\n" + "\n".join(g.output().splitlines()[-60:]))
    assert alive, "dockermand died during the WebSocket suite (exit %s)" % g.proc.returncode
    assert rc == 0, "dockermand exited %s on SIGTERM" % rc


_outcomes: Counter = Counter()


class _SummaryPlugin:
    """Prints the per-category table in pytest's terminal summary, where
    output is no longer captured."""

    def pytest_runtest_logreport(self, report):
        nodeid = report.nodeid
        if "test_ws_case[" not in nodeid or not nodeid.endswith("]"):
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            cid = nodeid[nodeid.index("test_ws_case[") + len("test_ws_case["):-1]
            _outcomes[(cid.split(".")[0], report.outcome)] += 1

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.write_sep("-", "WebSocket protocol cases per category")
        total = Counter()
        for cat, name in CATEGORIES.items():
            n = sum(1 for cid in CASES if cid.split(".")[0] == cat)
            res = {k[1]: v for k, v in _outcomes.items() if k[0] == cat}
            total.update(res)
            terminalreporter.write_line("  %-3s %-17s %4d cases  %s" % (
                cat, name, n, " ".join("%s=%d" % kv for kv in sorted(res.items()))))
        terminalreporter.write_line("  all %-17s %4d cases  %s" % (
            "", len(CASES), " ".join("%s=%d" % kv for kv in sorted(total.items()))))


@pytest.fixture(scope="module", autouse=True)
def _summary(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("ws-protocol-summary"):
        pm.register(_SummaryPlugin(), "ws-protocol-summary")
    yield


# ---------------------------------------------------------------------------
# a raw client


class Frame(namedtuple("Frame", "fin rsv opcode payload")):
    def __repr__(self):
        # Payloads can be megabytes: never dump them whole into a failure.
        return "Frame(fin=%s, rsv=%d, opcode=%d, payload=%s)" % (self.fin, self.rsv, self.opcode,
                                                                short(self.payload))


def mask_bytes(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    # One big-integer XOR is fast enough for 16 MiB in pure Python.
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, mask: bool = True,
          length: int | None = None, form: str | None = None, key: bytes | None = None) -> bytes:
    """A client frame. ``length`` overrides the announced payload length,
    ``form`` forces the length encoding ("7", "16", "64")."""
    n = len(payload) if length is None else length
    if form is None:
        form = "7" if n < 126 else "16" if n < 65536 else "64"
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if form == "7":
        head = bytes([b0, mbit | n])
    elif form == "16":
        head = bytes([b0, mbit | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = key or os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_frame(code: int | None = None, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(CLOSE, payload)


def fragments(opcode: int, payload: bytes, size: int) -> bytes:
    """``payload`` as one message in frames of ``size`` bytes."""
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)] or [b""]
    out = []
    for i, p in enumerate(pieces):
        out.append(frame(opcode if i == 0 else CONT, p, fin=i == len(pieces) - 1))
    return b"".join(out)


def per_byte_frames(opcode: int, payload: bytes) -> bytes:
    return fragments(opcode, payload, 1)


def short(b: bytes, n: int = 40) -> str:
    return repr(b[:n]) + ("...(%d bytes)" % len(b) if len(b) > n else "")


class Ws:
    def __init__(self, gw, timeout: float = 10.0):
        self.sock = socket.create_connection(gw.addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host = "%s:%d" % gw.addr
        self.buf = bytearray()
        self.eof = False

    # -- handshake ---------------------------------------------------------
    def request(self, headers: list[tuple[str, str]]) -> tuple[int, dict]:
        lines = ["GET %s HTTP/1.1" % ECHO_PATH, "Host: " + self.host]
        lines += ["%s: %s" % h for h in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            assert self._fill(time.monotonic() + 10), "connection closed before a response head"
            assert len(self.buf) < 65536, "response head too long"
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end]).decode("latin-1")
        del self.buf[:end + 4]
        status_line, *fields = head.split("\r\n")
        parts = status_line.split(" ", 2)
        assert parts[0] == "HTTP/1.1", status_line
        hdrs: dict[str, list[str]] = {}
        for f in fields:
            name, _, value = f.partition(":")
            hdrs.setdefault(name.strip().lower(), []).append(value.strip())
        return int(parts[1]), hdrs

    def handshake(self, extra: list[tuple[str, str]] = ()) -> dict:
        key = base64.b64encode(os.urandom(16)).decode()
        status, hdrs = self.request([("Upgrade", "websocket"), ("Connection", "Upgrade"),
                                     ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
                                    + list(extra))
        assert status == 101, "handshake answered %d %r" % (status, hdrs)
        want = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        assert hdrs.get("sec-websocket-accept") == [want], hdrs
        assert [v.lower() for v in hdrs.get("upgrade", [])] == ["websocket"], hdrs
        assert any("upgrade" in t.strip().lower() for v in hdrs.get("connection", []) for t in v.split(",")), hdrs
        assert "sec-websocket-extensions" not in hdrs, "server negotiated an extension: %r" % hdrs
        assert "sec-websocket-protocol" not in hdrs, hdrs
        return hdrs

    # -- bytes ---------------------------------------------------------------
    def send(self, data: bytes, chop: int | None = None):
        if chop is None:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chop):
            self.sock.sendall(data[i:i + chop])

    def send_quiet(self, data: bytes, chop: int | None = None):
        """Send where the server may already have failed the connection."""
        try:
            self.send(data, chop)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _fill(self, deadline: float) -> bool:
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("timed out waiting for the server")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise AssertionError("timed out waiting for the server")
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _need(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            if not self._fill(deadline):
                return False
        return True

    # -- frames --------------------------------------------------------------
    def recv_frame(self, timeout: float = 10.0) -> Frame | None:
        """The next server frame, or None at EOF on a frame boundary."""
        deadline = time.monotonic() + timeout
        if not self._need(2, deadline):
            assert not self.buf, "EOF inside a frame header: %r" % bytes(self.buf)
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "server frame is masked"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            assert self._need(4, deadline), "EOF inside a frame header"
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
            assert n >= 126, "server used a non-minimal length"
        elif n == 127:
            assert self._need(10, deadline), "EOF inside a frame header"
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
            assert 65536 <= n < 1 << 63, "server used a bad 64-bit length %d" % n
        assert self._need(pos + n, deadline), "EOF inside a frame payload"
        payload = bytes(self.buf[pos:pos + n])
        del self.buf[:pos + n]
        f = Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload)
        assert f.rsv == 0, "server set RSV bits: %r" % (f,)
        assert f.opcode in (CONT, TEXT, BINARY, CLOSE, PING, PONG), "server opcode %d" % f.opcode
        if f.opcode >= 8:
            assert f.fin and len(payload) <= 125, "bad control frame from server: %r" % (f,)
        return f

    def recv_message(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """The next data message; any other frame fails the test."""
        deadline = time.monotonic() + timeout
        f = self.recv_frame(timeout)
        assert f is not None, "connection closed instead of a message"
        assert f.opcode in (TEXT, BINARY), "expected a data message, got opcode %d payload %s" % (
            f.opcode, short(f.payload))
        op, parts = f.opcode, [f.payload]
        while not f.fin:
            f = self.recv_frame(max(0.1, deadline - time.monotonic()))
            assert f is not None and f.opcode == CONT, "broken fragmented message from server: %r" % (f,)
            parts.append(f.payload)
        return op, b"".join(parts)

    def expect_message(self, opcode: int, payload: bytes, timeout: float = 10.0):
        op, got = self.recv_message(timeout)
        assert op == opcode, "echo has opcode %d, sent %d" % (op, opcode)
        if got != payload:
            raise AssertionError("echo differs: sent %s, got %s" % (short(payload), short(got)))
        if opcode == TEXT:
            got.decode("utf-8")

    def expect_pong(self, payload: bytes, timeout: float = 10.0):
        f = self.recv_frame(timeout)
        assert f is not None, "connection closed instead of a pong"
        assert f.opcode == PONG, "expected pong %s, got %r" % (short(payload), f)
        assert f.payload == payload, "pong payload %s, ping had %s" % (short(f.payload), short(payload))

    def expect_close(self, code, timeout: float = 10.0, reply: bool = True):
        """A close frame with ``code`` (an int, a tuple of allowed codes, or
        None for an empty payload), then the server closing TCP."""
        f = self.recv_frame(timeout)
        assert f is not None, "connection closed without a close frame (expected %r)" % (code,)
        assert f.opcode == CLOSE, "expected close %r, got opcode %d payload %s" % (
            code, f.opcode, short(f.payload))
        allowed = code if isinstance(code, tuple) else (code,)
        if not f.payload:
            got = None
        else:
            assert len(f.payload) >= 2, "1-byte close payload from server"
            got = struct.unpack("!H", f.payload[:2])[0]
            f.payload[2:].decode("utf-8")
        assert got in allowed, "close code %r (reason %r), expected %r" % (got, f.payload[2:], code)
        if reply:
            self.send_quiet(close_frame(got))
        self.expect_eof(timeout)
        return f.payload[2:]

    def expect_eof(self, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while not self.eof:
            f = self.recv_frame(max(0.1, deadline - time.monotonic()))
            assert f is None, "frame after the closing handshake: %r" % (f,)
        assert not self.buf, "bytes after the closing handshake: %s" % short(bytes(self.buf))

    def clean_close(self, code: int = 1000):
        self.send(close_frame(code, b"bye"))
        self.expect_close(code, reply=False)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# case registry


CASES: dict[str, tuple[str, callable]] = {}


def case(cid: str, desc: str):
    def deco(fn):
        assert cid not in CASES, cid
        CASES[cid] = (desc, fn)
        return fn
    return deco


def add(cid: str, desc: str, fn):
    case(cid, desc)(fn)


def sort_key(cid: str):
    return [int(p) for p in cid.split(".")]


@pytest.fixture
def open_ws(echo_gw):
    opened: list[Ws] = []

    def make(handshake: bool = True) -> Ws:
        ws = Ws(echo_gw)
        opened.append(ws)
        if handshake:
            ws.handshake()
        return ws

    yield make
    for ws in opened:
        ws.close()
    assert echo_gw.alive(), "dockermand died (exit %s)" % echo_gw.proc.returncode


# -- helpers shared by cases ------------------------------------------------


def echo_case(opcode: int, payload: bytes, data: bytes | None = None, chop: int | None = None,
              timeout: float = 10.0):
    """Send ``data`` (default: ``payload`` in one frame), expect the echo,
    then close cleanly."""
    def run(open_ws):
        ws = open_ws()
        ws.send(frame(opcode, payload) if data is None else data, chop)
        ws.expect_message(opcode, payload, timeout)
        ws.clean_close()
    return run


def fail_case(data: bytes, code: int, before=(), chop: int | None = None):
    """Send ``data``; expect the messages in ``before`` echoed (as
    (opcode, payload) or ("pong", payload)), then close ``code`` and EOF."""
    def run(open_ws):
        ws = open_ws()
        ws.send_quiet(data, chop)
        for kind, payload in before:
            if kind == "pong":
                ws.expect_pong(payload)
            else:
                ws.expect_message(kind, payload)
        ws.expect_close(code)
    return run


# -- 0 handshake ------------------------------------------------------------------


@case("0.1", "handshake: 101, accept key, no extension, then a clean close")
def _(open_ws):
    ws = open_ws()
    ws.clean_close()


@case("0.2", "permessage-deflate offered by the client is not negotiated")
def _(open_ws):
    ws = open_ws(handshake=False)
    ws.handshake([("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
    ws.send(frame(TEXT, b"uncompressed"))
    ws.expect_message(TEXT, b"uncompressed")
    ws.clean_close()


@case("0.3", "Sec-WebSocket-Key that is not 16 bytes of base64 -> 400")
def _(open_ws):
    ws = open_ws(handshake=False)
    status, _ = ws.request([("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Key", base64.b64encode(b"x" * 15).decode()),
                            ("Sec-WebSocket-Version", "13")])
    assert status == 400


@case("0.4", "missing Sec-WebSocket-Key -> 400")
def _(open_ws):
    ws = open_ws(handshake=False)
    status, _ = ws.request([("Upgrade", "websocket"), ("Connection", "Upgrade"),
                            ("Sec-WebSocket-Version", "13")])
    assert status == 400


@case("0.5", "Sec-WebSocket-Version 8 -> 426 with Sec-WebSocket-Version: 13")
def _(open_ws):
    ws = open_ws(handshake=False)
    status, hdrs = ws.request([("Upgrade", "websocket"), ("Connection", "Upgrade"),
                               ("Sec-WebSocket-Key", base64.b64encode(os.urandom(16)).decode()),
                               ("Sec-WebSocket-Version", "8")])
    assert status == 426
    assert "13" in [t.strip() for v in hdrs.get("sec-websocket-version", []) for t in v.split(",")], hdrs


# -- 1 framing ---------------------------------------------------------------------

for _i, _n in enumerate([0, 125, 126, 127, 128, 65535, 65536], 1):
    add("1.1.%d" % _i, "text, payload %d" % _n, echo_case(TEXT, b"*" * _n))
    add("1.2.%d" % _i, "binary, payload %d" % _n, echo_case(BINARY, bytes(range(256)) * (_n // 256) + bytes(_n % 256)))
add("1.1.8", "text 65535 sent in 997-byte chops", echo_case(TEXT, b"*" * 65535, chop=997))
add("1.2.8", "binary 65535 sent in 997-byte chops", echo_case(BINARY, b"\xfe" * 65535, chop=997))


@case("1.3.1", "three messages in one write are echoed in order")
def _(open_ws):
    ws = open_ws()
    ws.send(frame(TEXT, b"one") + frame(BINARY, b"\x00two") + frame(TEXT, b""))
    ws.expect_message(TEXT, b"one")
    ws.expect_message(BINARY, b"\x00two")
    ws.expect_message(TEXT, b"")
    ws.clean_close()


# -- 2 ping/pong --------------------------------------------------------------------


def ping_case(payload: bytes, chop: int | None = None):
    def run(open_ws):
        ws = open_ws()
        ws.send(frame(PING, payload), chop)
        ws.expect_pong(payload)
        ws.clean_close()
    return run


add("2.1", "ping without payload", ping_case(b""))
add("2.2", "ping with a small text payload", ping_case(b"Hello, world!"))
add("2.3", "ping with a small binary payload", ping_case(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
add("2.4", "ping with 125 bytes", ping_case(b"\xfe" * 125))
add("2.5", "ping with 126 bytes -> 1002", fail_case(frame(PING, b"\xfe" * 126), 1002))
add("2.6", "ping with 125 bytes in 1-byte chops", ping_case(b"\xfe" * 125, chop=1))


def unsolicited_pong(payload: bytes):
    def run(open_ws):
        ws = open_ws()
        ws.send(frame(PONG, payload) + frame(PING, b"after"))
        # The first frame back must answer the ping: the pong got no reply.
        ws.expect_pong(b"after")
        ws.clean_close()
    return run


add("2.7", "unsolicited pong without payload is ignored", unsolicited_pong(b""))
add("2.8", "unsolicited pong with payload is ignored", unsolicited_pong(b"unsolicited pong payload"))


@case("2.9", "unsolicited pong, then ping: one pong")
def _(open_ws):
    ws = open_ws()
    ws.send(frame(PONG, b"unsolicited") + frame(PING, b"ping payload"))
    ws.expect_pong(b"ping payload")
    ws.send(frame(TEXT, b"sync"))
    ws.expect_message(TEXT, b"sync")
    ws.clean_close()


def many_pings(chop: int | None):
    def run(open_ws):
        ws = open_ws()
        ws.send(b"".join(frame(PING, b"payload-%d" % i) for i in range(10)), chop)
        for i in range(10):
            ws.expect_pong(b"payload-%d" % i)
        ws.clean_close()
    return run


add("2.10", "10 pings in one write -> 10 pongs in order", many_pings(None))
add("2.11", "10 pings in 1-byte chops -> 10 pongs in order", many_pings(1))


# -- 3 reserved bits ------------------------------------------------------------------

add("3.1", "text with RSV=1 -> 1002", fail_case(frame(TEXT, b"Hello", rsv=1), 1002))
_rsv_tail = lambda rsv: frame(TEXT, b"Hello") + frame(TEXT, b"Hello", rsv=rsv) + frame(PING, b"")
add("3.2", "echo, text with RSV=2, ping -> echo then 1002, no pong",
    fail_case(_rsv_tail(2), 1002, before=[(TEXT, b"Hello")]))
add("3.3", "as 3.2, RSV=3, in 1-byte chops",
    fail_case(_rsv_tail(3), 1002, before=[(TEXT, b"Hello")], chop=1))
add("3.4", "as 3.2, RSV=4, in 1-byte chops",
    fail_case(_rsv_tail(4), 1002, before=[(TEXT, b"Hello")], chop=1))
add("3.5", "binary with RSV=5 -> 1002", fail_case(frame(BINARY, b"\x00\xff", rsv=5), 1002))
add("3.6", "ping with RSV=6 -> 1002", fail_case(frame(PING, b"Hello", rsv=6), 1002))
add("3.7", "close with RSV=7 -> 1002", fail_case(frame(CLOSE, struct.pack("!H", 1000), rsv=7), 1002))
add("3.8", "continuation with RSV=1 inside a message -> 1002",
    fail_case(frame(TEXT, b"a", fin=False) + frame(CONT, b"b", rsv=1), 1002))


# -- 4 reserved opcodes ----------------------------------------------------------------

for _i, _op in enumerate(range(3, 8), 1):
    add("4.1.%d" % _i, "reserved data opcode %d -> 1002" % _op, fail_case(frame(_op), 1002))
    add("4.1.%d" % (_i + 5), "echo, opcode %d with payload, ping -> echo then 1002" % _op,
        fail_case(frame(TEXT, b"Hello") + frame(_op, b"reserved") + frame(PING, b""), 1002,
                  before=[(TEXT, b"Hello")]))
for _i, _op in enumerate(range(0xB, 0x10), 1):
    add("4.2.%d" % _i, "reserved control opcode %d -> 1002" % _op, fail_case(frame(_op), 1002))
    add("4.2.%d" % (_i + 5), "echo, opcode %d with payload, ping -> echo then 1002" % _op,
        fail_case(frame(TEXT, b"Hello") + frame(_op, b"reserved") + frame(PING, b""), 1002,
                  before=[(TEXT, b"Hello")]))
add("4.3.1", "reserved opcode inside a fragmented message -> 1002",
    fail_case(frame(TEXT, b"a", fin=False) + frame(5, b"x"), 1002))


# -- 5 fragmentation ---------------------------------------------------------------------

add("5.1", "fragmented ping -> 1002",
    fail_case(frame(PING, b"frag1", fin=False) + frame(CONT, b"frag2"), 1002))
add("5.2", "fragmented pong -> 1002",
    fail_case(frame(PONG, b"frag1", fin=False) + frame(CONT, b"frag2"), 1002))
add("5.2.1", "fragmented close -> 1002",
    fail_case(frame(CLOSE, struct.pack("!H", 1000), fin=False) + frame(CONT, b""), 1002))


def two_frags(opcode: int, mode: str):
    def run(open_ws):
        ws = open_ws()
        a, b = frame(opcode, b"fragment1", fin=False), frame(CONT, b"fragment2")
        if mode == "one":
            ws.send(a + b)
        elif mode == "each":
            ws.send(a)
            ws.send(b)
        else:
            ws.send(a + b, chop=1)
        ws.expect_message(opcode, b"fragment1fragment2")
        ws.clean_close()
    return run


add("5.3", "text in 2 fragments", two_frags(TEXT, "one"))
add("5.4", "text in 2 fragments, one write each", two_frags(TEXT, "each"))
add("5.5", "text in 2 fragments, 1-byte chops", two_frags(TEXT, "chop"))
add("5.3.1", "binary in 2 fragments", two_frags(BINARY, "one"))
add("5.5.1", "binary in 2 fragments, 1-byte chops", two_frags(BINARY, "chop"))


def frags_with_ping(mode: str):
    def run(open_ws):
        ws = open_ws()
        parts = [frame(TEXT, b"fragment1", fin=False), frame(PING, b"ping payload"), frame(CONT, b"fragment2")]
        if mode == "one":
            ws.send(b"".join(parts))
        elif mode == "each":
            for p in parts:
                ws.send(p)
        else:
            ws.send(b"".join(parts), chop=1)
        ws.expect_pong(b"ping payload")
        ws.expect_message(TEXT, b"fragment1fragment2")
        ws.clean_close()
    return run


add("5.6", "2 fragments with a ping between", frags_with_ping("one"))
add("5.7", "2 fragments with a ping between, one write each", frags_with_ping("each"))
add("5.8", "2 fragments with a ping between, 1-byte chops", frags_with_ping("chop"))

_orphan_fin = frame(CONT, b"fragment1") + frame(TEXT, b"Hello")
_orphan_nofin = frame(CONT, b"fragment1", fin=False) + frame(CONT, b"fragment2") + frame(TEXT, b"Hello")
add("5.9", "continuation (FIN) without a message -> 1002", fail_case(_orphan_fin, 1002))
add("5.10", "as 5.9, 1-byte chops", fail_case(_orphan_fin, 1002, chop=1))
add("5.11", "as 5.9, then more data", fail_case(_orphan_fin + frame(TEXT, b"more"), 1002))
add("5.12", "continuation (no FIN) without a message -> 1002", fail_case(_orphan_nofin, 1002))
add("5.13", "as 5.12, 1-byte chops", fail_case(_orphan_nofin, 1002, chop=1))
add("5.14", "as 5.12, then a ping", fail_case(_orphan_nofin + frame(PING, b""), 1002))
add("5.15", "complete message, then a continuation -> echo then 1002",
    fail_case(frame(TEXT, b"fragment1", fin=False) + frame(CONT, b"fragment2")
              + frame(CONT, b"fragment3", fin=False) + frame(CONT, b"fragment4"),
              1002, before=[(TEXT, b"fragment1fragment2")]))
add("5.16", "message starting with a continuation (x2) -> 1002",
    fail_case((frame(CONT, b"fragment1", fin=False) + frame(TEXT, b"fragment2", fin=False)
               + frame(CONT, b"fragment3")) * 2, 1002))
add("5.17", "as 5.16 with FIN continuations -> 1002",
    fail_case((frame(CONT, b"fragment1") + frame(TEXT, b"fragment2", fin=False)
               + frame(CONT, b"fragment3")) * 2, 1002))
add("5.18", "text (no FIN) then a new text -> 1002",
    fail_case(frame(TEXT, b"fragment1", fin=False) + frame(TEXT, b"fragment2"), 1002))
add("5.18.1", "binary (no FIN) then a new text -> 1002",
    fail_case(frame(BINARY, b"fragment1", fin=False) + frame(TEXT, b"fragment2"), 1002))


def five_frags_two_pings(chop: int | None):
    def run(open_ws):
        ws = open_ws()
        parts = [frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2", fin=False),
                 frame(PING, b"pongme 1!"), frame(CONT, b"fragment3", fin=False),
                 frame(CONT, b"fragment4", fin=False), frame(PING, b"pongme 2!"), frame(CONT, b"fragment5")]
        for i, p in enumerate(parts):
            ws.send(p, chop)
            if i == 2:
                ws.expect_pong(b"pongme 1!")
        ws.expect_pong(b"pongme 2!")
        ws.expect_message(TEXT, b"fragment1fragment2fragment3fragment4fragment5")
        ws.clean_close()
    return run


add("5.19", "5 fragments with 2 pings, pong awaited mid-message", five_frags_two_pings(None))
add("5.20", "as 5.19 in 1-byte chops", five_frags_two_pings(1))


@case("5.21", "binary in 100 fragments with unsolicited pongs between")
def _(open_ws):
    ws = open_ws()
    payload = os.urandom(100 * 37)
    out = []
    for i in range(100):
        out.append(frame(BINARY if i == 0 else CONT, payload[i * 37:(i + 1) * 37], fin=i == 99))
        out.append(frame(PONG, b"ignored %d" % i))
    ws.send(b"".join(out))
    ws.expect_message(BINARY, payload)
    ws.clean_close()


@case("5.22", "close in the middle of a fragmented message: no echo, close")
def _(open_ws):
    ws = open_ws()
    ws.send(frame(TEXT, b"half", fin=False) + close_frame(1000))
    ws.expect_close(1000, reply=False)


# -- 6 UTF-8 ---------------------------------------------------------------------------------

KOSME = "κόσμε".encode()
HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode()
INVALID_KOSME = KOSME + b"\xed\xa0\x80" + b"edited"

add("6.1.1", "empty text message", echo_case(TEXT, b""))
add("6.1.2", "text message of 3 empty fragments",
    echo_case(TEXT, b"", frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b"")))
add("6.1.3", "empty, non-empty, empty fragments",
    echo_case(TEXT, b"middle", frame(TEXT, b"", fin=False) + frame(CONT, b"middle", fin=False) + frame(CONT, b"")))
add("6.2.1", "valid UTF-8 in one frame", echo_case(TEXT, HELLO_UTF8))
add("6.2.2", "valid UTF-8, one byte per frame", echo_case(TEXT, HELLO_UTF8, per_byte_frames(TEXT, HELLO_UTF8)))
_four = "\U0001F600\U00010000\U0010FFFF".encode()
add("6.2.3", "4-byte code points, one byte per frame", echo_case(TEXT, _four, per_byte_frames(TEXT, _four)))
add("6.2.4", "valid UTF-8 in 1-byte TCP chops", echo_case(TEXT, HELLO_UTF8, chop=1))
add("6.3.1", "invalid UTF-8 (surrogate) in one frame -> 1007", fail_case(frame(TEXT, INVALID_KOSME), 1007))
add("6.3.2", "invalid UTF-8, one byte per frame -> 1007", fail_case(per_byte_frames(TEXT, INVALID_KOSME), 1007))


def fail_fast(parts: list[bytes], code: int = 1007):
    """Send all but the rest of the message; the close must come without it."""
    def run(open_ws):
        ws = open_ws()
        for p in parts:
            ws.send(p)
        ws.expect_close(code, timeout=5)
    return run


add("6.4.1", "fail fast: invalid 2nd fragment, message not finished",
    fail_fast([frame(TEXT, KOSME, fin=False), frame(CONT, b"\xf4\x90\x80\x80", fin=False)]))
add("6.4.2", "fail fast: code point cut across fragments, impossible continuation",
    fail_fast([frame(TEXT, KOSME + b"\xf4", fin=False), frame(CONT, b"\x90", fin=False)]))
_ff = frame(TEXT, KOSME + b"\xf4\x90\x80\x80" + b"edited")
_ff_hdr = len(_ff) - len(KOSME + b"\xf4\x90\x80\x80" + b"edited")
add("6.4.3", "fail fast: invalid bytes in an unfinished frame",
    fail_fast([_ff[:_ff_hdr + len(KOSME)], _ff[_ff_hdr + len(KOSME):_ff_hdr + len(KOSME) + 4]]))
add("6.4.4", "fail fast: impossible byte after a valid lead in an unfinished frame",
    fail_fast([_ff[:_ff_hdr + len(KOSME) + 1], _ff[_ff_hdr + len(KOSME) + 1:_ff_hdr + len(KOSME) + 2]]))

# Each sample as one frame and as one frame per byte. Validity is checked
# against Python's own strict decoder below, so the table cannot drift.
UTF8_GROUPS = [
    (5, "samples", [KOSME, HELLO_UTF8, "Ünïcödé ✓ 日本語 🎉".encode()], True),
    (7, "first code point of each length", [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"], True),
    (8, "first 5- and 6-byte forms", [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"], False),
    (9, "last code point of each length", [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"], True),
    (10, "beyond U+10FFFF", [b"\xf4\x90\x80\x80", b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"], False),
    (11, "other boundaries", [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf"], True),
    (12, "unexpected continuation bytes", [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"a\x80b",
                                           bytes(range(0x80, 0xc0))], False),
    (13, "lonely start bytes", [b"\xc0 ", b"\xc2 ", b"\xdf ", b"\xe0 ", b"\xef ", b"\xf0 ", b"\xf4 ",
                                b"\xf8 ", b"\xfc "], False),
    (14, "last continuation byte missing", [b"\xc2", b"\xe0\xa0", b"\xf0\x90\x80", b"\xdf", b"\xef\xbf",
                                            b"\xf4\x8f\xbf", b"ok\xe2\x82"], False),
    (15, "concatenated incomplete sequences", [b"\xc2\xe0\xa0\xf0\x90\x80", b"\xdf\xef\xbf\xf4\x8f\xbf"], False),
    (16, "impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff", b"\xc0", b"\xc1", b"\xf5", b"\xf8"], False),
    (17, "overlong '/'", [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
                          b"\xfc\x80\x80\x80\x80\xaf"], False),
    (18, "maximum overlongs", [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf"], False),
    (19, "overlong NUL", [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80"], False),
    (20, "single UTF-16 surrogates", [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
                                      b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"], False),
    (21, "paired UTF-16 surrogates", [b"\xed\xa0\x80\xed\xb0\x80", b"\xed\xaf\xbf\xed\xbf\xbf",
                                      b"\xed\xad\xbf\xed\xbf\xbf"], False),
    (22, "noncharacters are valid", [b"\xef\xbf\xbe", b"\xef\xbf\xbf", b"\xef\xb7\x90", b"\xef\xb7\xaf",
                                     b"\xf0\x9f\xbf\xbe", b"\xf4\x8f\xbf\xbe"], True),
    (23, "specials", [b"\xef\xbf\xb9", b"\xef\xbf\xbc", b"\xef\xbf\xbd", b"\xef\xbf\xbe\xef\xbf\xbd"], True),
]


def _utf8_ok(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def utf8_case(payload: bytes, bytewise: bool):
    data = per_byte_frames(TEXT, payload) if bytewise else frame(TEXT, payload)
    if _utf8_ok(payload):
        return echo_case(TEXT, payload, data)
    return fail_case(data, 1007)


for _g, _name, _samples, _valid in UTF8_GROUPS:
    for _i, _s in enumerate(_samples):
        assert _utf8_ok(_s) == _valid, (_g, _s)
        add("6.%d.%d" % (_g, 2 * _i + 1), "%s %s, one frame" % (_name, _s.hex()), utf8_case(_s, False))
        add("6.%d.%d" % (_g, 2 * _i + 2), "%s %s, per-byte frames" % (_name, _s.hex()), utf8_case(_s, True))

for _n in range(1, len(KOSME) + 1):
    add("6.6.%d" % _n, "first %d bytes of κόσμε" % _n, utf8_case(KOSME[:_n], False))


def split_case(payload: bytes, at: int):
    data = frame(TEXT, payload[:at], fin=False) + frame(CONT, payload[at:])
    if _utf8_ok(payload):
        return echo_case(TEXT, payload, data)
    return fail_case(data, 1007)


for _k, _s in enumerate([HELLO_UTF8, KOSME, "\U0001F600a€".encode(), INVALID_KOSME, b"\xf4\x90\x80\x80"], 1):
    for _at in range(len(_s) + 1):
        add("6.24.%d.%d" % (_k, _at), "%s split into 2 fragments at %d" % (_s.hex(), _at), split_case(_s, _at))


# -- 7 close ---------------------------------------------------------------------------------


@case("7.1.1", "echo, then a clean close")
def _(open_ws):
    ws = open_ws()
    ws.send(frame(TEXT, b"Hello World!"))
    ws.expect_message(TEXT, b"Hello World!")
    ws.clean_close()


@case("7.1.2", "two close frames: one close back, then TCP close")
def _(open_ws):
    ws = open_ws()
    ws.send(close_frame(1000) + close_frame(1000))
    ws.expect_close(1000, reply=False)


@case("7.1.3", "close then ping: no pong")
def _(open_ws):
    ws = open_ws()
    ws.send(close_frame(1000) + frame(PING, b"Hello World!"))
    ws.expect_close(1000, reply=False)


@case("7.1.4", "close then text: no echo")
def _(open_ws):
    ws = open_ws()
    ws.send(close_frame(1000) + frame(TEXT, b"Hello World!"))
    ws.expect_close(1000, reply=False)


@case("7.1.5", "fragment, close, last fragment: no echo")
def _(open_ws):
    ws = open_ws()
    ws.send(frame(TEXT, b"fragment1", fin=False) + close_frame(1000) + frame(CONT, b"fragment2"))
    ws.expect_close(1000, reply=False)


@case("7.1.6", "256 KiB text, close, ping: echo then close, no pong")
def _(open_ws):
    ws = open_ws()
    payload = b"BAsd7&jh23" * 26214 + b"Bl"
    ws.send(frame(TEXT, payload) + close_frame(1000) + frame(PING, b"Hello World!"))
    ws.expect_message(TEXT, payload)
    ws.expect_close(1000, reply=False)


@case("7.1.7", "data after close in a separate write is ignored")
def _(open_ws):
    ws = open_ws()
    ws.send(close_frame(1000))
    ws.send_quiet(frame(TEXT, b"too late") + b"\xff\xff not even a frame")
    ws.expect_close(1000, reply=False)


@case("7.3.1", "close with an empty payload -> empty close or 1000")
def _(open_ws):
    ws = open_ws()
    ws.send(close_frame(None))
    ws.expect_close((None, 1000), reply=False)


add("7.3.2", "close with a 1-byte payload -> 1002", fail_case(frame(CLOSE, b"\x03"), 1002))


def close_echo(code: int, reason: bytes):
    def run(open_ws):
        ws = open_ws()
        ws.send(close_frame(code, reason))
        ws.expect_close(code, reply=False)
    return run


add("7.3.3", "close 1000 without a reason", close_echo(1000, b""))
add("7.3.4", "close 1000 with a reason", close_echo(1000, b"Hello World!"))
add("7.3.5", "close 1000 with a 123-byte reason", close_echo(1000, b"*" * 123))
add("7.3.6", "close with a 124-byte reason (126-byte payload) -> 1002",
    fail_case(frame(CLOSE, struct.pack("!H", 1000) + b"*" * 124), 1002))
add("7.3.7", "close with a UTF-8 reason", close_echo(1000, "κόσμε 🎉".encode()))
add("7.5.1", "close with an invalid UTF-8 reason -> 1007",
    fail_case(close_frame(1000, KOSME + b"\xed\xa0\x80"), 1007))
add("7.5.2", "close with a truncated UTF-8 reason -> 1007", fail_case(close_frame(1000, b"ok\xe2\x82"), 1007))

for _i, _code in enumerate([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                            3000, 3999, 4000, 4999], 1):
    add("7.7.%d" % _i, "valid close code %d is echoed" % _code, close_echo(_code, b"reason"))
for _i, _code in enumerate([0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999], 1):
    add("7.9.%d" % _i, "invalid close code %d -> 1002" % _code, fail_case(close_frame(_code), 1002))
for _i, _code in enumerate([5000, 65535], 1):
    add("7.13.%d" % _i, "invalid close code %d -> 1002" % _code, fail_case(close_frame(_code), 1002))


# -- 9 large messages ---------------------------------------------------------------------------

KIB, MIB = 1024, 1024 * 1024


def big_text(n: int) -> bytes:
    unit = "aé€😀".encode()  # 1+2+3+4 bytes, so fragments split code points
    return (unit * (n // len(unit) + 1))[:n - n % len(unit)] + b"x" * (n % len(unit))


def big_binary(n: int) -> bytes:
    return (os.urandom(4096) * (n // 4096 + 1))[:n]


def big_echo(opcode: int, n: int, frag: int | None = None, chop: int | None = None):
    """Like echo_case, but the payload is only built when the case runs."""
    def run(open_ws):
        payload = (big_text if opcode == TEXT else big_binary)(n)
        data = None if frag is None else fragments(opcode, payload, frag)
        echo_case(opcode, payload, data, chop=chop, timeout=120)(open_ws)
    return run


for _i, _n in enumerate([64 * KIB, 256 * KIB, MIB, 4 * MIB, MAX_MESSAGE], 1):
    add("9.1.%d" % _i, "text message of %d bytes" % _n, big_echo(TEXT, _n))
    add("9.2.%d" % _i, "binary message of %d bytes" % _n, big_echo(BINARY, _n))

for _i, _f in enumerate([64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB], 1):
    add("9.3.%d" % _i, "4 MiB text in %d-byte fragments" % _f, big_echo(TEXT, 4 * MIB, frag=_f))
    add("9.4.%d" % _i, "4 MiB binary in %d-byte fragments" % _f, big_echo(BINARY, 4 * MIB, frag=_f))

for _i, _c in enumerate([64, 128, 256, 512, 1024, 2048, 4096], 1):
    add("9.5.%d" % _i, "1 MiB text frame in %d-byte TCP chops" % _c, big_echo(TEXT, MIB, chop=_c))
    add("9.6.%d" % _i, "1 MiB binary frame in %d-byte TCP chops" % _c, big_echo(BINARY, MIB, chop=_c))


def pipelined(opcode: int, count: int, size: int):
    def run(open_ws):
        ws = open_ws()
        msgs = [(b"%06d" % i + b"." * size)[:size] for i in range(count)]
        ws.send(b"".join(frame(opcode, m) for m in msgs))
        for m in msgs:
            ws.expect_message(opcode, m)
        ws.clean_close()
    return run


def round_trips(opcode: int, count: int, size: int):
    def run(open_ws):
        ws = open_ws()
        for i in range(count):
            m = (b"%06d" % i + b"-" * size)[:size]
            ws.send(frame(opcode, m))
            ws.expect_message(opcode, m)
        ws.clean_close()
    return run


add("9.7.1", "1000 text messages of 0 bytes, pipelined", pipelined(TEXT, 1000, 0))
add("9.7.2", "1000 text messages of 16 bytes, pipelined", pipelined(TEXT, 1000, 16))
add("9.7.3", "1000 text messages of 64 bytes, one round trip each", round_trips(TEXT, 1000, 64))
add("9.8.1", "1000 binary messages of 0 bytes, pipelined", pipelined(BINARY, 1000, 0))
add("9.8.2", "1000 binary messages of 16 bytes, pipelined", pipelined(BINARY, 1000, 16))
add("9.8.3", "1000 binary messages of 64 bytes, one round trip each", round_trips(BINARY, 1000, 64))


@case("9.9.1", "1 MiB binary in 1 KiB fragments with a ping every 64 fragments")
def _(open_ws):
    ws = open_ws()
    payload = big_binary(MIB)
    out = []
    for i in range(1024):
        out.append(frame(BINARY if i == 0 else CONT, payload[i * KIB:(i + 1) * KIB], fin=i == 1023))
        if i % 64 == 32:
            out.append(frame(PING, b"ping %d" % i))
    ws.send(b"".join(out))
    for i in range(1024):
        if i % 64 == 32:
            ws.expect_pong(b"ping %d" % i, timeout=60)
    ws.expect_message(BINARY, payload, timeout=60)
    ws.clean_close()


# -- 10 size limit ---------------------------------------------------------------------------------


def header_only(opcode: int, n: int, fin: bool = True) -> bytes:
    """A masked frame header announcing ``n`` payload bytes, without them."""
    return frame(opcode, b"", fin=fin, length=n, form="7" if n < 126 else "16" if n < 65536 else "64")


add("10.1.1", "binary frame announcing 16 MiB + 1 -> 1009 before any payload",
    fail_fast([header_only(BINARY, MAX_MESSAGE + 1)], 1009))
add("10.1.2", "text frame announcing 16 MiB + 1 -> 1009 before any payload",
    fail_fast([header_only(TEXT, MAX_MESSAGE + 1)], 1009))
add("10.1.3", "frame announcing 2^62 bytes -> 1009", fail_fast([header_only(BINARY, 1 << 62)], 1009))


@case("10.1.4", "16 MiB in two fragments, then a 1-byte continuation -> 1009")
def _(open_ws):
    ws = open_ws()
    half = big_binary(MAX_MESSAGE // 2)
    ws.send(frame(BINARY, half, fin=False) + frame(CONT, half, fin=False) + header_only(CONT, 1))
    ws.expect_close(1009, timeout=60)


@case("10.1.5", "exactly 16 MiB in fragments with a ping inside is echoed")
def _(open_ws):
    ws = open_ws()
    payload = big_text(MAX_MESSAGE)
    q = len(payload) // 4
    ws.send(frame(TEXT, payload[:q], fin=False) + frame(PING, b"*" * 125)
            + frame(CONT, payload[q:3 * q], fin=False) + frame(CONT, payload[3 * q:]))
    ws.expect_pong(b"*" * 125, timeout=60)
    ws.expect_message(TEXT, payload, timeout=120)
    ws.clean_close()


@case("10.1.6", "the limit is per message: two 12 MiB messages are both echoed")
def _(open_ws):
    ws = open_ws()
    payload = big_binary(12 * MIB)
    ws.send(frame(BINARY, payload))
    ws.expect_message(BINARY, payload, timeout=120)
    ws.send(fragments(BINARY, payload, 4 * MIB))
    ws.expect_message(BINARY, payload, timeout=120)
    ws.clean_close()


# -- 11 strict framing (beyond Autobahn) -----------------------------------------------------------

add("11.1", "unmasked text frame -> 1002", fail_case(frame(TEXT, b"Hello", mask=False), 1002))
add("11.2", "unmasked ping -> 1002", fail_case(frame(PING, b"Hello", mask=False), 1002))
add("11.3", "5-byte payload in the 16-bit length form -> 1002",
    fail_case(frame(BINARY, b"Hello", form="16"), 1002))
add("11.4", "200-byte payload in the 64-bit length form -> 1002",
    fail_case(frame(BINARY, b"x" * 200, form="64"), 1002))
add("11.5", "64-bit length with the high bit set -> 1002",
    fail_fast([bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + os.urandom(4)], 1002))
add("11.6", "ping of 5 bytes in the 16-bit length form -> 1002",
    fail_case(frame(PING, b"Hello", form="16"), 1002))


# ---------------------------------------------------------------------------
# the one parametrized test


@pytest.mark.parametrize("cid", sorted(CASES, key=sort_key))
def test_ws_case(cid, open_ws):
    desc, fn = CASES[cid]
    fn(open_ws)
