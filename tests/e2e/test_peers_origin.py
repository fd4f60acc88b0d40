"""Who may change state, and who a local client is.

* Origin: a request that changes state (any method but GET and HEAD, any
  upgrade) with a foreign ``Origin`` is refused (403, rule ``origin``) for
  every principal: the anonymous admin of a gateway without credentials,
  tokens, cookies. Without an ``Origin`` (the docker CLI) only cookies are
  refused.
* Token subprotocols: ``dockermand.token.*`` in ``Sec-WebSocket-Protocol``
  never reaches dockerd; the gateway selects it in the 101 itself.
* ``SO_PEERCRED``: unix-socket clients are ``uid:N`` in logs and audit
  lines, ``auth.unix_peers`` maps uids to roles, and the login rate limit
  counts per uid.

Nothing here sleeps to synchronise: every wait polls with a deadline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import authlib
import consolelib as cl
from authlib import bearer, message
from consolelib import open_ws
from helpers import HttpConn, build_request

OP = authlib.new_token("op")
EVIL = "http://evil.example"
NOBODY = 65534


def _same_origin(gw) -> str:
    return "http://%s:%d" % gw.addr


def _post(gw, target: str, headers=()):
    """A POST with ``Host`` set to the address connected to, so that the
    gateway's own origin is ``_same_origin(gw)``."""
    return authlib.request(gw, "POST", target, list(headers), host="%s:%d" % gw.addr)


# ---------------------------------------------------------------------------
# Origin on every principal


def test_open_gateway_refuses_a_foreign_origin(gateway_factory, standin):
    """No credentials configured: every request is the anonymous admin, and a
    web page on any site could stop containers through a loopback gateway
    were it not for the Origin its browser sends."""
    gw = gateway_factory(upstream=standin.url)
    mark = authlib.log_mark(gw)
    r = _post(gw, "/containers/standin-sink/kill", [("Origin", EVIL)])
    assert r.status == 403, r
    assert "Origin" in message(r), r
    d = authlib.wait_deny(gw, mark, rule="origin", route="-")
    assert d["principal"] == "anonymous" and d["field"] == "Origin", d
    # our own endpoints too (a ticket would open a console)
    r = _post(gw, "/_dockermand/ticket", [("Origin", EVIL)])
    assert r.status == 403, r
    authlib.wait_deny(gw, mark, rule="origin", path="/_dockermand/ticket")
    assert standin.connection_count() == 0, [q.raw_head for q in standin.requests()]

    # the docker CLI sends no Origin; a page of the gateway's own sends its own
    r = _post(gw, "/containers/standin-sink/kill")
    assert r.status == 200, r
    r = _post(gw, "/containers/standin-sink/kill", [("Origin", _same_origin(gw))])
    assert r.status == 200, r
    # reading is not changing: CORS decides whether the page may read it
    r = authlib.request(gw, "GET", "/containers/standin-sink/json", [("Origin", EVIL)])
    assert r.status == 200 and r.header("Access-Control-Allow-Origin") is None, r
    assert [(q.method, q.path) for q in standin.requests()] == [
        ("POST", "/containers/standin-sink/kill"),
        ("POST", "/containers/standin-sink/kill"),
        ("GET", "/containers/standin-sink/json"),
    ]


def test_token_with_a_foreign_origin_is_refused(gateway_factory, standin, tmp_path):
    cfg = authlib.auth_config(tokens={"operator": OP})
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), standin.url)
    mark = authlib.log_mark(gw)
    for method in ("POST", "DELETE"):
        target = "/containers/standin-sink" + ("/kill" if method == "POST" else "")
        r = authlib.request(gw, method, target, bearer(OP) + [("Origin", EVIL)])
        assert r.status == 403, r
        authlib.wait_deny(gw, mark, rule="origin", principal="token:operator", method=method)
    assert standin.connection_count() == 0, [q.raw_head for q in standin.requests()]
    r = _post(gw, "/containers/standin-sink/kill", bearer(OP))
    assert r.status == 200, r
    r = _post(gw, "/containers/standin-sink/kill", bearer(OP) + [("Origin", _same_origin(gw))])
    assert r.status == 200, r
    assert len(standin.requests()) == 2


# ---------------------------------------------------------------------------
# token subprotocols on attach/ws


@pytest.fixture
def stdin_container(docker_direct, busybox_image, uniq):
    cid = docker_direct.out("run", "-d", "-i", "--name", uniq("cat"), busybox_image, "cat")
    yield cid
    docker_direct.run("rm", "-f", cid, check=False)


def _attach_target(cid: str) -> str:
    return "/containers/%s/attach/ws?stream=1&stdin=1&stdout=1" % cid


def _echo_through(ws, text: bytes, timeout: float = 20.0):
    ws.send_frame(cl.TEXT, text)
    got = b""
    while text not in got:
        op, payload = ws.recv_message(timeout)
        assert op in (cl.TEXT, cl.BINARY), (op, payload, got)
        got += payload


def test_attach_ws_token_subprotocol_with_dockerd(gateway_factory, dockerd, stdin_container, tmp_path):
    cfg = authlib.auth_config(tokens={"operator": OP})
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), dockerd.url)
    protocol = "dockermand.token." + OP
    r, ws = open_ws(gw.addr, _attach_target(stdin_container), protocol=protocol)
    assert r.status == 101, r
    # browsers fail a handshake that selects none of the protocols offered
    assert r.header_all("Sec-WebSocket-Protocol") == [protocol], r
    try:
        _echo_through(ws, b"token in the subprotocol\n")
    finally:
        ws.close()
    # a protocol dockerd selects itself is its answer; ours is not added
    r, ws = open_ws(gw.addr, _attach_target(stdin_container), protocol="binary, " + protocol)
    assert r.status == 101, r
    assert r.header_all("Sec-WebSocket-Protocol") == ["binary"], r
    try:
        _echo_through(ws, b"with another protocol\n")
    finally:
        ws.close()


@pytest.mark.parametrize("configured", [True, False], ids=["tokens", "open"])
def test_token_subprotocol_never_reaches_the_upstream(gateway_factory, standin, tmp_path, configured):
    cfg = authlib.auth_config(tokens={"operator": OP}) if configured else {}
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg), standin.url)
    protocol = "dockermand.token." + OP
    for offered, forwarded in ((protocol, None), ("chat, %s, superchat" % protocol, "chat, superchat")):
        before = len(standin.requests())
        with HttpConn(gw.addr, 20) as c:
            c.send(build_request("GET", _attach_target("standin-sink"),
                                 authlib.ws_headers() + [("Sec-WebSocket-Protocol", offered)]))
            r = c.read_response("GET", 20)
        assert r.status == 200, r  # the stand-in describes the request instead of upgrading
        q = standin.requests()[before]
        assert q.path == "/containers/standin-sink/attach/ws", q.raw_head
        assert q.header_all("Sec-WebSocket-Protocol") == ([forwarded] if forwarded else []), q.raw_head
    assert OP.encode() not in standin.all_bytes()
    assert b"dockermand.token" not in standin.all_bytes()


# ---------------------------------------------------------------------------
# SO_PEERCRED on unix listeners

# Runs as another user: one request on the unix socket, the raw reply on stdout.
_CLIENT = r"""
import socket, sys
path, method, target, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
head = "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n" % (method, target)
if body:
    head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
s.sendall(head.encode() + b"\r\n" + body)
reply = b""
while True:
    got = s.recv(65536)
    if not got:
        break
    reply += got
sys.stdout.buffer.write(reply)
"""


def _as_user(uid: int, sock: str, method: str, target: str, body: bytes = b"") -> tuple[int, dict]:
    """(status, JSON body) of one request made by a process running as ``uid``."""
    p = subprocess.run([os.path.realpath(sys.executable), "-c", _CLIENT, sock, method, target, body.decode()],
                       user=uid, group=uid, extra_groups=[], capture_output=True, timeout=30, cwd="/")
    assert p.returncode == 0, p
    head, _, payload = p.stdout.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(payload)


def _unix(sock: str, method: str, target: str, headers=(), body: bytes = b""):
    with HttpConn(sock, 20) as c:
        c.send(build_request(method, target, list(headers), body))
        return c.read_response(method, 20)


@pytest.fixture
def peer_dir(tmp_short):
    """A socket directory other users may reach (the socket itself gets 0666)."""
    os.chmod(tmp_short, 0o755)
    return tmp_short


def _peer_gateway(gateway_factory, upstream, directory, cfg):
    sock = os.path.join(directory, "gw.sock")
    path = authlib.write_config(directory, cfg)
    gw = gateway_factory(upstream=upstream, listen=("unix:" + sock, "127.0.0.1:0"),
                         args=["--config", path, "--unix-mode", "666"])
    return gw, sock


def test_unix_peer_mapped_to_a_role(gateway_factory, dockerd, busybox_image, peer_dir):
    assert os.geteuid() == 0
    cfg = authlib.auth_config(tokens={"operator": OP})
    cfg["auth"]["unix_peers"] = [{"uid": 0, "role": "read"}]
    gw, sock = _peer_gateway(gateway_factory, dockerd.url, peer_dir, cfg)

    r = _unix(sock, "GET", "/_dockermand/whoami")
    assert r.status == 200 and r.json() == {"name": "uid:0", "role": "read"}, r
    r = _unix(sock, "GET", "/containers/json")
    assert r.status == 200 and isinstance(r.json(), list), r
    gw.wait_for_line(r'^.*uid:0 "GET /containers/json" 200 ')

    mark = authlib.log_mark(gw)
    body = json.dumps({"Image": busybox_image, "Cmd": ["true"]}).encode()
    r = _unix(sock, "POST", "/containers/create", [("Content-Type", "application/json")], body)
    assert r.status == 403 and "role read may not use" in message(r), r
    d = authlib.wait_deny(gw, mark, rule="role", route="/containers/create")
    assert d["principal"] == "uid:0" and d["addr"] == "uid:0", d

    # a credential still wins over the uid
    r = _unix(sock, "GET", "/_dockermand/whoami", bearer(OP))
    assert r.status == 200 and r.json() == {"name": "token:operator", "role": "operator"}, r
    r = _unix(sock, "GET", "/_dockermand/whoami", bearer("not-a-token"))
    assert r.status == 401, r
    # a TCP client is nobody's uid; mapping a uid configures authentication
    r = authlib.request(gw, "GET", "/_dockermand/whoami")
    assert r.status == 401, r

    # any other uid without a credential is unknown
    mark = authlib.log_mark(gw)
    status, reply = _as_user(NOBODY, sock, "GET", "/containers/json")
    assert status == 401 and "authentication required" in reply["message"], reply
    d = authlib.wait_deny(gw, mark, rule="auth", addr="uid:%d" % NOBODY)
    assert d["principal"] == "-" and d["status"] == 401, d


def test_unix_peer_non_root_uid(gateway_factory, standin, peer_dir):
    cfg = {"auth": {"unix_peers": [{"uid": NOBODY, "role": "operator"}]}}
    gw, sock = _peer_gateway(gateway_factory, standin.url, peer_dir, cfg)
    assert _as_user(NOBODY, sock, "GET", "/_dockermand/whoami") == \
        (200, {"name": "uid:%d" % NOBODY, "role": "operator"})
    # root is not mapped here
    r = _unix(sock, "GET", "/_dockermand/whoami")
    assert r.status == 401, r


def test_login_rate_limit_counts_per_uid(gateway_factory, standin, peer_dir):
    """Unix clients used to share one address in the rate limiter, so one
    local user's failed logins locked out every other."""
    cfg = authlib.auth_config(users=[{"name": "alice", "password": authlib.hash_password("right"),
                                      "role": "read"}])
    gw, sock = _peer_gateway(gateway_factory, standin.url, peer_dir, cfg)
    wrong = json.dumps({"username": "alice", "password": "wrong"}).encode()
    statuses = [_unix(sock, "POST", "/_dockermand/login", [("Content-Type", "application/json")], wrong).status
                for _ in range(6)]
    assert statuses == [401] * 5 + [429], statuses
    status, reply = _as_user(NOBODY, sock, "POST", "/_dockermand/login", wrong)
    assert status == 401, reply
    right = json.dumps({"username": "alice", "password": "right"}).encode()
    assert _as_user(NOBODY, sock, "POST", "/_dockermand/login", right)[0] == 200
