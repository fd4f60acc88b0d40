"""Browser consoles end to end: ``GET /_dockermand/containers/{id}/console``
upgraded to a WebSocket and bridged to a ``docker exec`` on a private dockerd,
and dockerd's own ``attach/ws`` through the gateway.

What is checked, against the console contract:

* output: raw bytes with a TTY; without one, every binary frame starts with
  its stream (1 stdout, 2 stderr); the end is a text frame
  ``{"type":"exit","exit_code":N}`` and a Close 1000 ``exit N``, after all
  output;
* input: binary frames are stdin, ``{"type":"stdin"}`` text frames too,
  ``{"type":"resize"}`` reaches the TTY before any later stdin; other text
  closes with 1002 (a control message over 4 KiB with 1009), an unmasked
  frame too, and the gateway carries on;
* resources: 20 consoles at once, ``max_consoles`` (503 beyond it), a client
  that vanishes leaves no exec waiting on stdin and no descriptor behind
  (with a TTY the gateway hangs up the terminal: dockerd alone would keep it), a
  client that stops reading keeps the gateway small (backpressure) and loses
  nothing;
* access: 401 without credentials, 403 for a foreign Origin or a read role,
  a token in ``Sec-WebSocket-Protocol`` (echoed), one-time tickets, a login
  cookie, dockerd's 404 for a missing container.

The WebSocket client is consolelib's own (raw sockets), so refusals are seen
as HTTP replies and a test can stop reading or drop TCP at will; one test
also drives a console with the ``websocket-client`` library.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import time

import pytest

import authlib
import consolelib as cl
from consolelib import must_open, open_console, open_ws
import helpers
from helpers import HttpConn, RssSampler, wait_until

OP = "op-" + secrets.token_urlsafe(24)
READ = "rd-" + secrets.token_urlsafe(24)
ALLOWED_ORIGIN = "http://allowed.example"
EVIL_ORIGIN = "http://evil.example"


# ---------------------------------------------------------------------------
# gateways


def _sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _start(gateway_factory, dockerd, tmp_path, cfg: dict, name="console.json"):
    path = tmp_path / name
    path.write_text(json.dumps(cfg))
    return gateway_factory(upstream=dockerd.url, args=["--config", str(path)])


@pytest.fixture
def console_gw(gateway_factory, dockerd, tmp_path):
    """No authentication (the default), room for 20 consoles."""
    return _start(gateway_factory, dockerd, tmp_path, {"max_consoles": 20})


def _auth_cfg(**extra):
    cfg = {"auth": {"tokens": [{"name": "op", "sha256": _sha256(OP), "role": "operator"},
                               {"name": "rd", "sha256": _sha256(READ), "role": "read"}]},
           "cors_origins": [ALLOWED_ORIGIN]}
    cfg.update(extra)
    return cfg


@pytest.fixture
def auth_gw(gateway_factory, dockerd, tmp_path):
    """Tokens: OP (operator) and READ (read); one allowed foreign origin."""
    return _start(gateway_factory, dockerd, tmp_path, _auth_cfg())


def bearer(token):
    return [("Authorization", "Bearer " + token)]


def status(gw, headers=()) -> dict:
    with HttpConn(gw.addr) as c:
        r = c.request("GET", "/_dockermand/status", list(headers))
    assert r.status == 200, r
    return r.json()


def consoles_open(gw, headers=()) -> int:
    return status(gw, headers)["connections"]["consoles"]


def json_message(resp) -> str:
    assert "application/json" in (resp.header("Content-Type") or ""), resp
    msg = resp.json().get("message")
    assert isinstance(msg, str) and msg, resp
    return msg


def same_origin(gw) -> str:
    return "http://%s:%d" % gw.addr


# ---------------------------------------------------------------------------
# running commands


def test_exit_code_and_stdout_without_tty(console_gw, running_container):
    c = must_open(console_gw.addr, running_container, ["sh", "-c", "echo hello; exit 3"], tty=False)
    out = c.run_to_end()
    assert out.stdout == b"hello\n"
    assert out.stderr == b""
    assert out.exit == {"type": "exit", "exit_code": 3}
    assert c.ws.close_code == 1000 and c.ws.close_reason == "exit 3"
    # all output, then the exit message, then the close frame
    assert out.events == ["data", "exit", "close"], out.events
    wait_until(lambda: consoles_open(console_gw) == 0, 10, "console count back to 0")


def test_container_name_default_shell_and_user(console_gw, docker_direct, busybox_image, uniq):
    name = uniq("named")
    docker_direct.run("run", "-d", "--name", name, busybox_image, "sleep", "100000")
    # default command /bin/sh with a TTY: it reads our commands from the terminal
    c = must_open(console_gw.addr, name)
    c.stdin(b"echo A=$((6*7))=; exit 5\n")
    out = c.run_to_end()
    assert b"A=42=" in out.stdout, out.stdout
    assert out.exit == {"type": "exit", "exit_code": 5}
    assert c.ws.close_reason == "exit 5"
    # user= reaches the exec
    c = must_open(console_gw.addr, name, ["id", "-u"], tty=False, user="1234")
    out = c.run_to_end()
    assert out.stdout == b"1234\n" and out.exit["exit_code"] == 0


def test_tty_size_and_resize(console_gw, running_container):
    c = must_open(console_gw.addr, running_container, ["sh"], tty=True, cols=120, rows=30)
    c.stdin(b"echo SZ=$(stty size)=\n")
    c.wait_stdout(b"SZ=30 120=")
    # the resize and the command go out back to back: the command must see
    # the new size
    c.ws.conn.send(cl.encode_frame(cl.TEXT, json.dumps({"type": "resize", "cols": 100, "rows": 40}).encode())
                   + cl.encode_frame(cl.BINARY, b"echo SZ=$(stty size)=\n"))
    c.wait_stdout(b"SZ=40 100=")
    c.stdin(b"exit 0\n")
    out = c.run_to_end()
    assert out.exit == {"type": "exit", "exit_code": 0}


def test_without_tty_stderr_is_separate(console_gw, running_container):
    c = must_open(console_gw.addr, running_container, ["sh", "-c", "echo out; echo err >&2"], tty=False)
    out = c.run_to_end()
    assert out.stdout == b"out\n"
    assert out.stderr == b"err\n"
    assert out.exit == {"type": "exit", "exit_code": 0} and c.ws.close_reason == "exit 0"


def test_stdin_binary_and_control_frames(console_gw, running_container):
    c = must_open(console_gw.addr, running_container,
                  ["sh", "-c", 'read a; read b; echo "$a+$b"; exit 7'], tty=False)
    c.stdin(b"one\n")
    c.ws.send_json({"type": "stdin", "data": "two\n"})
    out = c.run_to_end()
    assert out.stdout == b"one+two\n"
    assert out.exit == {"type": "exit", "exit_code": 7}


def test_fragmented_and_large_stdin(console_gw, running_container):
    c = must_open(console_gw.addr, running_container, ["cat"], tty=False)
    # one message in three frames, with a ping in the middle
    c.ws.send_frame(cl.BINARY, b"frag", fin=False)
    c.ws.send_frame(cl.PING, b"are you there")
    c.ws.send_frame(cl.CONT, b"men", fin=False)
    c.ws.send_frame(cl.CONT, b"ted\n")
    seen_pong = False
    got = b""
    deadline = time.monotonic() + 20
    while b"fragmented\n" not in got or not seen_pong:
        fin, op, payload = c.ws.recv_frame(max(0.01, deadline - time.monotonic()))
        if op == cl.PONG:
            assert payload == b"are you there"
            seen_pong = True
        else:
            assert op == cl.BINARY and payload[:1] == b"\x01", (op, payload)
            got += payload[1:]
    assert got == b"fragmented\n"
    c.close()

    # 4 MiB of stdin in 1 MiB messages, more than any buffer on the way
    size = 4 << 20
    data = os.urandom(size)
    c = must_open(console_gw.addr, running_container, ["sh", "-c", "head -c %d | md5sum" % size], tty=False)
    for i in range(0, size, 1 << 20):
        c.stdin(data[i:i + (1 << 20)])
    out = c.run_to_end(60)
    assert out.stdout.split()[0].decode() == hashlib.md5(data).hexdigest()
    assert out.exit["exit_code"] == 0


@pytest.mark.parametrize("text,code", [('{"type":"bogus"}', 1002),
                                       ('{"type":"stdin","data":"%s"}' % ("x" * 5000), 1009)],
                         ids=["unknown-type", "oversized"])
def test_bad_control_message_closes(console_gw, running_container, api_direct, text, code):
    """Unknown control text closes with 1002 (protocol error), a control
    message over 4 KiB with 1009 (too big); either way the exec ends and the
    gateway goes on serving."""
    c = must_open(console_gw.addr, running_container, ["cat"], tty=False)
    c.stdin(b"ping\n")
    c.wait_stdout(b"ping\n")
    c.ws.send_text(text)
    got, _ = c.ws.wait_server_close()
    assert got == code
    # the gateway is single-threaded: it must still serve others
    try:
        with HttpConn(console_gw.addr, timeout=5) as conn:
            r = conn.request("GET", "/_dockermand/status")
    except (TimeoutError, OSError) as e:
        raise AssertionError("gateway stopped answering after closing a console with %d: %r" % (code, e))
    assert r.status == 200, r
    assert c.ws.finish_close(5), "server kept TCP open after closing with %d" % code
    # the exec's stdin was closed with the socket: cat is gone
    wait_until(lambda: not cl.running_execs(api_direct, running_container), 20, "cat to end")
    wait_until(lambda: consoles_open(console_gw) == 0, 10, "console count back to 0")


def test_unmasked_frame_closes_1002_and_ends_the_exec(console_gw, running_container, api_direct):
    c = must_open(console_gw.addr, running_container, ["cat"], tty=False)
    c.stdin(b"ping\n")
    c.wait_stdout(b"ping\n")
    c.ws.conn.send(bytes([0x82, 4]) + b"data")  # a client frame must be masked
    got, _ = c.ws.wait_server_close()
    assert got == 1002
    assert c.ws.finish_close(5), "server kept TCP open after closing with 1002"
    wait_until(lambda: not cl.running_execs(api_direct, running_container), 20, "cat to end")
    wait_until(lambda: consoles_open(console_gw) == 0, 10, "console count back to 0")


# ---------------------------------------------------------------------------
# many consoles, limits


def test_twenty_consoles_at_once(console_gw, running_container):
    consoles = [must_open(console_gw.addr, running_container, ["sh"], tty=False) for _ in range(20)]
    try:
        assert consoles_open(console_gw) == 20
        for i, c in enumerate(consoles):
            c.stdin(b"echo ok-%d; exit %d\n" % (i, i + 10))
        for i, c in enumerate(consoles):
            out = c.run_to_end()
            assert out.stdout == b"ok-%d\n" % i, (i, out.stdout)
            assert out.exit == {"type": "exit", "exit_code": i + 10}
            assert c.ws.close_reason == "exit %d" % (i + 10)
    finally:
        for c in consoles:
            c.close()
    wait_until(lambda: consoles_open(console_gw) == 0, 10, "console count back to 0")


def test_max_consoles(gateway_factory, dockerd, tmp_path, running_container, api_direct):
    gw = _start(gateway_factory, dockerd, tmp_path, {"max_consoles": 2})
    a = must_open(gw.addr, running_container, ["cat"], tty=False)
    b = must_open(gw.addr, running_container, ["cat"], tty=False)
    assert consoles_open(gw) == 2
    r, c = open_console(gw.addr, running_container, ["cat"], tty=False)
    assert r.status == 503 and c is None, r
    assert "too many consoles" in json_message(r)
    # the refused one created no exec
    assert len(api_direct.inspect_container(running_container)["ExecIDs"]) == 2
    # a browser closing properly frees its slot
    a.ws.send_close(1000)
    code, _ = a.ws.wait_server_close()
    assert code == 1000
    assert a.ws.conn.wait_closed(10)
    wait_until(lambda: consoles_open(gw) == 1, 10, "console count 1")
    c = must_open(gw.addr, running_container, ["sh", "-c", "echo again"], tty=False)
    out = c.run_to_end()
    assert out.stdout == b"again\n" and out.exit["exit_code"] == 0
    # b still works
    b.stdin(b"still here\n")
    b.wait_stdout(b"still here\n")
    b.close()
    wait_until(lambda: consoles_open(gw) == 0, 10, "console count 0")


@pytest.mark.parametrize("how,tty", [("fin", False), ("rst", False), ("fin", True)],
                         ids=["tcp-close", "tcp-reset", "tcp-close-tty"])
def test_vanished_client_leaves_nothing_behind(console_gw, running_container, api_direct, how, tty):
    # (before any request of ours: a closed connection's fd can take a moment)
    baseline = console_gw.fd_count()
    c = must_open(console_gw.addr, running_container, ["cat"], tty=tty)
    c.stdin(b"ping\n")
    c.wait_stdout(b"ping")
    # (a TTY echoes before cat runs: wait for the process itself)
    wait_until(lambda: "cat" in cl.process_commands(api_direct, running_container), 20, "cat running")
    execs = cl.running_execs(api_direct, running_container)
    assert len(execs) == 1 and execs[0]["ProcessConfig"]["entrypoint"] == "cat", execs
    assert console_gw.fd_count() > baseline
    c.ws.vanish(reset=(how == "rst"))
    wait_until(lambda: console_gw.fd_count() == baseline, 20,
               "gateway fd count back to %d" % baseline)
    assert consoles_open(console_gw) == 0
    if tty:
        # dockerd does not end a TTY exec when its attach connection closes
        # (see test_vanished_tty_client_ends_the_exec)
        return
    wait_until(lambda: not cl.running_execs(api_direct, running_container), 20,
               "no exec of the container running")
    wait_until(lambda: "cat" not in cl.process_commands(api_direct, running_container), 20,
               "cat gone from docker top")


def test_vanished_tty_client_ends_the_exec(console_gw, running_container, api_direct):
    c = must_open(console_gw.addr, running_container, ["cat"], tty=True)
    c.stdin(b"ping\n")
    c.wait_stdout(b"ping")
    wait_until(lambda: "cat" in cl.process_commands(api_direct, running_container), 20, "cat running")
    c.ws.vanish()
    wait_until(lambda: consoles_open(console_gw) == 0, 10, "console count back to 0")
    wait_until(lambda: not cl.running_execs(api_direct, running_container), 10,
               "no exec of the container running")


def test_backpressure_keeps_the_gateway_small(console_gw, running_container, api_direct):
    total = 50_000_000
    c = must_open(console_gw.addr, running_container, ["sh", "-c", "yes | head -c %d" % total], tty=False)
    ws = c.ws
    with RssSampler(console_gw) as rss:
        # do not read: wait until everything between the writer and us is full
        assert cl.wait_for_stalled_output(ws) < total
        # the writer is held back, not buffered: it is still running
        # (busybox runs yes and head as forks of sh, so top shows sh's argv)
        assert "sh -c yes | head -c %d" % total in cl.process_commands(api_direct, running_container)
        assert len(cl.running_execs(api_direct, running_container)) == 1
        # the single-threaded gateway still answers others meanwhile
        assert consoles_open(console_gw) == 1
        stalled_rss = rss.max_kib

        # now read everything and check every byte
        got = 0
        pattern = b"y\n" * 5000
        exit_msg = None
        deadline = time.monotonic() + 60
        while True:
            fin, op, payload = ws.recv_frame(max(0.1, deadline - time.monotonic()))
            assert fin, "console output frames are not fragmented"
            if op == cl.BINARY:
                assert exit_msg is None, "output after the exit message"
                assert payload[:1] == b"\x01", "stream %r" % payload[:1]
                data = payload[1:]
                off = got % 2
                assert len(data) <= len(pattern) - 2
                assert data == pattern[off:off + len(data)], "corrupt output at byte %d" % got
                got += len(data)
            elif op == cl.TEXT:
                exit_msg = json.loads(payload)
            elif op == cl.CLOSE:
                ws._got_close(payload)
                break
            else:
                raise AssertionError("unexpected opcode %#x" % op)
        assert ws.finish_close()
    assert got == total
    assert exit_msg == {"type": "exit", "exit_code": 0}
    assert ws.close_code == 1000 and ws.close_reason == "exit 0"
    assert len(rss.samples) > 10
    assert stalled_rss < 16 * 1024, "gateway RSS %d KiB while the client was not reading" % stalled_rss
    assert rss.max_kib < 16 * 1024, "gateway RSS %d KiB" % rss.max_kib


# ---------------------------------------------------------------------------
# access


def test_console_needs_credentials(auth_gw, running_container):
    r, c = open_console(auth_gw.addr, running_container, ["true"])
    assert r.status == 401 and c is None, r
    json_message(r)
    r, c = open_console(auth_gw.addr, running_container, ["true"], headers=bearer("wrong-token"))
    assert r.status == 401 and c is None, r
    r, c = open_console(auth_gw.addr, running_container, ["true"], protocol="dockermand.token.wrong")
    assert r.status == 401 and c is None, r


def test_console_origin_check(auth_gw, running_container, api_direct):
    r, c = open_console(auth_gw.addr, running_container, ["sh", "-c", "echo no"], tty=False,
                        headers=bearer(OP), origin=EVIL_ORIGIN)
    assert r.status == 403 and c is None, r
    json_message(r)
    assert not api_direct.inspect_container(running_container).get("ExecIDs")
    # a listed origin and the gateway's own origin are fine
    for origin in (ALLOWED_ORIGIN, same_origin(auth_gw)):
        c = must_open(auth_gw.addr, running_container, ["sh", "-c", "echo yes"], tty=False,
                      headers=bearer(OP), origin=origin)
        out = c.run_to_end()
        assert out.stdout == b"yes\n", origin


def test_read_role_cannot_open_a_console(auth_gw, running_container, api_direct):
    r, c = open_console(auth_gw.addr, running_container, ["sh", "-c", "echo no"], headers=bearer(READ))
    assert r.status == 403 and c is None, r
    assert "read" in json_message(r)
    r, c = open_console(auth_gw.addr, running_container, ["sh", "-c", "echo no"],
                        protocol="dockermand.token." + READ)
    assert r.status == 403 and c is None, r
    assert not api_direct.inspect_container(running_container).get("ExecIDs")


def test_token_in_subprotocol(auth_gw, running_container):
    proto = "dockermand.token." + OP
    r, c = open_console(auth_gw.addr, running_container, ["sh", "-c", "echo via-subprotocol"], tty=False,
                        protocol=proto, origin=ALLOWED_ORIGIN)
    assert r.status == 101, r
    assert r.header("Sec-WebSocket-Protocol") == proto
    out = c.run_to_end()
    assert out.stdout == b"via-subprotocol\n" and out.exit["exit_code"] == 0
    # offered among others, the token protocol is the one chosen
    r, c = open_console(auth_gw.addr, running_container, ["true"], tty=False, protocol="chat, " + proto)
    assert r.status == 101, r
    assert r.header("Sec-WebSocket-Protocol") == proto
    assert c.run_to_end().exit["exit_code"] == 0


def test_ticket_is_one_time(auth_gw, running_container):
    with HttpConn(auth_gw.addr) as conn:
        r = conn.request("POST", "/_dockermand/ticket", bearer(OP))
    assert r.status == 200, r
    ticket = r.json()["ticket"]
    assert r.json()["expires_in"] == 30
    r, c = open_console(auth_gw.addr, running_container, ["sh", "-c", "echo ticketed"], tty=False,
                        ticket=ticket, origin=same_origin(auth_gw))
    assert r.status == 101, r
    out = c.run_to_end()
    assert out.stdout == b"ticketed\n" and out.exit["exit_code"] == 0
    r, c = open_console(auth_gw.addr, running_container, ["true"], tty=False, ticket=ticket)
    assert r.status == 401 and c is None, r
    json_message(r)


def test_login_cookie_console(gateway_factory, dockerd, tmp_path, running_container):
    pw = secrets.token_urlsafe(12)
    p = subprocess.run([helpers.gateway_binary(), "--hash-password"], input=(pw + "\n").encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p
    cfg = _auth_cfg()
    cfg["auth"]["users"] = [{"name": "alice", "password": p.stdout.decode().strip(), "role": "operator"}]
    gw = _start(gateway_factory, dockerd, tmp_path, cfg)
    with HttpConn(gw.addr) as conn:
        r = conn.request("POST", "/_dockermand/login", [("Content-Type", "application/json")],
                         json.dumps({"username": "alice", "password": pw}).encode())
    assert r.status == 200, r
    session = authlib.session_headers(r)
    c = must_open(gw.addr, running_container, ["sh", "-c", "echo cookie"], tty=False,
                  headers=session, origin=same_origin(gw))
    assert c.run_to_end().stdout == b"cookie\n"
    r, c = open_console(gw.addr, running_container, ["true"], headers=session, origin=EVIL_ORIGIN)
    assert r.status == 403 and c is None, r
    # a browser's WebSocket carries the cookie alone, which is no session:
    # the UI asks for a ticket with both halves instead
    r, c = open_console(gw.addr, running_container, ["true"], headers=session[:1], origin=same_origin(gw))
    assert r.status == 401 and c is None, r


def test_missing_container_is_404(auth_gw, api_direct):
    r, c = open_console(auth_gw.addr, "dmtest-no-such-container", ["true"], headers=bearer(OP))
    assert r.status == 404 and c is None, r
    msg = json_message(r)
    assert "dmtest-no-such-container" in msg and "no such container" in msg.lower(), msg


def test_stopped_container_is_409(console_gw, docker_direct, busybox_image, uniq):
    cid = docker_direct.out("create", "--name", uniq("stopped"), busybox_image, "sleep", "1000")
    r, c = open_console(console_gw.addr, cid, ["true"])
    assert r.status == 409 and c is None, r
    assert "not running" in json_message(r)


def test_bad_console_requests(console_gw, running_container):
    r, c = open_console(console_gw.addr, running_container, ["true"], cols="wide", rows=10)
    assert r.status == 400 and c is None, r
    json_message(r)
    # not an upgrade
    with HttpConn(console_gw.addr) as conn:
        r = conn.request("GET", cl.console_target(running_container, ["true"]),
                         host="%s:%d" % console_gw.addr)
    assert r.status == 400, r
    json_message(r)


def test_websocket_client_library(auth_gw, running_container):
    """Interop with a common client library (the one many tools use)."""
    import websocket  # websocket-client

    url = "ws://%s:%d%s" % (auth_gw.addr + (cl.console_target(running_container, ["sh"], tty=True,
                                                                cols=80, rows=24),))
    ws = websocket.create_connection(url, timeout=20, subprotocols=["dockermand.token." + OP],
                                     origin=same_origin(auth_gw))
    try:
        # (the library lower-cases the protocol it reports)
        assert ws.getsubprotocol().lower() == ("dockermand.token." + OP).lower()
        out, exit_msg, close = cl.resize_then_exit_4(ws)
        assert close == (1000, b"exit 4")
        assert b"R=33 91=" in out, out
        assert exit_msg == {"type": "exit", "exit_code": 4}
    finally:
        ws.close()


# ---------------------------------------------------------------------------
# dockerd's attach/ws through the gateway


@pytest.fixture
def stdin_container(docker_direct, busybox_image, uniq):
    cid = docker_direct.out("run", "-d", "-i", "--name", uniq("cat"), busybox_image, "cat")
    yield cid
    docker_direct.run("rm", "-f", cid, check=False)


def _attach_ws(gw, cid, **kw):
    return open_ws(gw.addr, "/containers/%s/attach/ws?stream=1&stdin=1&stdout=1" % cid, **kw)


def _echo_through(ws, text: bytes, timeout=20.0):
    """Sends text on the attach socket and reads until it comes back."""
    ws.send_frame(cl.TEXT, text)
    got = b""
    deadline = time.monotonic() + timeout
    while text not in got:
        op, payload = ws.recv_message(max(0.01, deadline - time.monotonic()))
        assert op in (cl.TEXT, cl.BINARY), (op, payload, got)
        got += payload
    return got


def test_attach_ws_through_the_gateway(auth_gw, stdin_container):
    r, ws = _attach_ws(auth_gw, stdin_container, headers=bearer(OP), origin=ALLOWED_ORIGIN)
    assert r.status == 101, r
    try:
        _echo_through(ws, b"hello attach\n")
        _echo_through(ws, b"second line\n")
    finally:
        ws.close()
    # a browser fails the socket unless the offered protocol comes back
    r, ws = _attach_ws(auth_gw, stdin_container, protocol="dockermand.token." + OP)
    assert r.status == 101, r
    assert r.header("Sec-WebSocket-Protocol") == "dockermand.token." + OP, r
    try:
        _echo_through(ws, b"token in subprotocol\n")
    finally:
        ws.close()


def test_attach_ws_access(auth_gw, stdin_container):
    r, ws = _attach_ws(auth_gw, stdin_container)
    assert r.status == 401 and ws is None, r
    r, ws = _attach_ws(auth_gw, stdin_container, headers=bearer(READ))
    assert r.status == 403 and ws is None, r
    r, ws = _attach_ws(auth_gw, stdin_container, headers=bearer(OP), origin=EVIL_ORIGIN)
    if ws is not None:
        ws.close()
    assert r.status == 403, "cross-origin attach/ws with a bearer token was let through: %r" % r
    r, ws = _attach_ws(auth_gw, stdin_container, protocol="dockermand.token." + OP, origin=EVIL_ORIGIN)
    if ws is not None:
        ws.close()
    assert r.status == 403, "cross-origin attach/ws with a subprotocol token was let through: %r" % r


def test_attach_ws_cross_origin_without_auth(console_gw, stdin_container):
    """With no auth configured, the Origin check is all that stops any web
    page from typing into a container."""
    r, ws = _attach_ws(console_gw, stdin_container, origin=same_origin(console_gw))
    assert r.status == 101, r
    try:
        _echo_through(ws, b"same origin\n")
    finally:
        ws.close()
    r, ws = _attach_ws(console_gw, stdin_container, origin=EVIL_ORIGIN)
    if ws is not None:
        ws.close()
    assert r.status == 403, "cross-origin attach/ws was let through: %r" % r
    r, c = open_console(console_gw.addr, stdin_container, ["true"], origin=EVIL_ORIGIN)
    assert r.status == 403 and c is None, r
