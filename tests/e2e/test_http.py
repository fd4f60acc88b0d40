"""Raw-socket HTTP/1.1 behaviour of the gateway in front of the real dockerd:
keep-alive, pipelining, HEAD, chunked and 100-continue uploads, hijacked
exec streams (upgrade and legacy) and the websocket attach endpoint."""

import base64
import io
import json
import os
import struct
import tarfile

import pytest

from helpers import (build_request, demux_frames, http_request, json_body, sha256,
                     tar_bytes, websocket_accept)

pytestmark = pytest.mark.usefixtures("busybox_image")


def _extract_one(tar_data: bytes, name: str) -> bytes:
    tf = tarfile.open(fileobj=io.BytesIO(tar_data))
    return tf.extractfile(name).read()


def _archive_get(dockerd, cid, path) -> bytes:
    r = http_request(dockerd.sock, "GET", "/containers/%s/archive?path=%s" % (cid, path), timeout=60)
    assert r.status == 200, r
    return r.body


def test_keep_alive_several_requests_one_connection(gw):
    before = gw.status()["connections"]["total"]
    with gw.connect() as c:
        for target in ["/_ping", "/version", "/containers/json?all=1", "/_dockermand/status", "/info", "/_ping"]:
            r = c.request("GET", target)
            assert r.status == 200, (target, r)
            assert (r.header("Connection") or "").lower() != "close"
        assert c.request("GET", "/_ping").body == b"OK"
    after = gw.status()["connections"]["total"]
    # one connection for the six requests plus the connection of this status call
    assert after == before + 2


def test_keep_alive_after_error_response(gw):
    with gw.connect() as c:
        r = c.request("GET", "/containers/dmtest-no-such-container/json")
        assert r.status == 404
        assert "message" in r.json()
        r = c.request("GET", "/_dockermand/no-such-endpoint")
        assert r.status == 404
        assert r.json()["message"]
        assert c.request("GET", "/_ping").body == b"OK"


def test_pipelined_requests_answered_in_order(gw):
    with gw.connect() as c:
        c.send(build_request("GET", "/_ping") + build_request("GET", "/version")
               + build_request("GET", "/containers/dmtest-no-such-container/json"))
        r1 = c.read_response()
        r2 = c.read_response()
        r3 = c.read_response()
        assert (r1.status, r1.body) == (200, b"OK")
        assert r2.status == 200 and "ApiVersion" in r2.json()
        assert r3.status == 404 and "No such container" in r3.json()["message"]
        assert c.request("GET", "/_ping").body == b"OK"


def test_pipelined_mix_of_local_and_upstream(gw):
    with gw.connect() as c:
        c.send(build_request("GET", "/_ping") + build_request("GET", "/_dockermand/status")
               + build_request("GET", "/version") + build_request("GET", "/_dockermand/nope")
               + build_request("GET", "/_ping"))
        rs = [c.read_response() for _ in range(5)]
        assert (rs[0].status, rs[0].body) == (200, b"OK")
        assert rs[1].status == 200 and "connections" in rs[1].json()
        assert rs[2].status == 200 and "ApiVersion" in rs[2].json()
        assert rs[3].status == 404 and rs[3].json()["message"]
        assert (rs[4].status, rs[4].body) == (200, b"OK")


def test_pipelined_post_with_body_then_get(gw, busybox_image, uniq, api_direct):
    name = uniq("pipe")
    body = json.dumps({"Image": busybox_image, "Cmd": ["true"]}).encode()
    with gw.connect() as c:
        c.send(build_request("POST", "/containers/create?name=" + name,
                             [("Content-Type", "application/json")], body)
               + build_request("GET", "/containers/%s/json" % name))
        r1 = c.read_response()
        r2 = c.read_response()
    assert r1.status == 201, r1
    assert r2.status == 200 and r2.json()["Id"] == r1.json()["Id"]


def test_head_on_archive_keeps_path_stat_header(gw, dockerd, running_container):
    target = "/containers/%s/archive?path=/bin/busybox" % running_container
    direct = http_request(dockerd.sock, "HEAD", target)
    with gw.connect() as c:
        r = c.request("HEAD", target)
        assert r.status == 200
        stat_hdr = r.header("X-Docker-Container-Path-Stat")
        assert stat_hdr == direct.header("X-Docker-Container-Path-Stat")
        stat = json.loads(base64.b64decode(stat_hdr))
        assert stat["name"] == "busybox" and stat["size"] > 100000
        # no body follows a HEAD answer: the next request on the connection works
        assert c.request("GET", "/_ping", timeout=10).body == b"OK"


def test_chunked_upload_odd_sizes(gw, dockerd, running_container):
    payload = os.urandom(300_001)
    archive = tar_bytes({"chunked.bin": payload})
    sizes = [1, 7, 511, 4093, 3, 65537, 2, 8191]
    encoded = bytearray()
    i = k = 0
    while i < len(archive):
        n = sizes[k % len(sizes)]
        piece = archive[i:i + n]
        encoded += b"%x\r\n" % len(piece) + piece + b"\r\n"
        i += n
        k += 1
    encoded += b"0\r\n\r\n"
    with gw.connect(timeout=30) as c:
        c.send(build_request("PUT", "/containers/%s/archive?path=/tmp" % running_container,
                             [("Content-Type", "application/x-tar"), ("Transfer-Encoding", "chunked")]))
        # write the encoded body in slices that cut through size lines and data alike
        writes = [1, 2, 3, 5, 997, 13, 4096, 65536]
        j = w = 0
        while j < len(encoded):
            n = writes[w % len(writes)]
            c.send(bytes(encoded[j:j + n]))
            j += n
            w += 1
        r = c.read_response(timeout=30)
        assert r.status == 200, r
        assert c.request("GET", "/_ping").body == b"OK"
    assert sha256(_extract_one(_archive_get(dockerd, running_container, "/tmp/chunked.bin"),
                               "chunked.bin")) == sha256(payload)


def test_expect_100_continue_upload(gw, dockerd, running_container):
    payload = os.urandom(200_000)
    archive = tar_bytes({"expect.bin": payload})
    with gw.connect(timeout=30) as c:
        c.send(build_request("PUT", "/containers/%s/archive?path=/tmp" % running_container,
                             [("Content-Type", "application/x-tar"), ("Content-Length", str(len(archive))),
                              ("Expect", "100-continue")]))
        interim = c.read_response(interim=True, timeout=10)
        assert interim.status == 100, interim
        c.send(archive)
        final = c.read_response(timeout=30)
        assert final.status == 200, final
    assert sha256(_extract_one(_archive_get(dockerd, running_container, "/tmp/expect.bin"),
                               "expect.bin")) == sha256(payload)


def _create_exec(gw, cid, cmd):
    res = json_body("POST", "/containers/%s/exec" % cid, gw.addr,
                    {"AttachStdin": True, "AttachStdout": True, "AttachStderr": True, "Tty": False,
                     "Cmd": cmd})
    return res["Id"]


def _exec_exit_code(gw, eid):
    return http_request(gw.addr, "GET", "/exec/%s/json" % eid).json()["ExitCode"]


@pytest.mark.parametrize("mode", ["upgrade", "legacy"])
def test_exec_hijack_with_half_close(gw, running_container, mode):
    eid = _create_exec(gw, running_container, ["sh", "-c", "cat; echo done >&2"])
    headers = [("Content-Type", "application/json")]
    if mode == "upgrade":
        headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
    body = json.dumps({"Detach": False, "Tty": False}).encode()
    payload = b"stdin through the gateway\n" * 2000
    with gw.connect(timeout=30) as c:
        c.send(build_request("POST", "/exec/%s/start" % eid, headers, body))
        head = c.read_head(timeout=15)
        if mode == "upgrade":
            assert head.status == 101, head
            assert (head.header("Upgrade") or "").lower() == "tcp"
        else:
            assert head.status == 200, head
            assert head.header("Content-Type") == "application/vnd.docker.raw-stream"
        c.send(payload)
        c.shutdown_write()
        data = c.read_until_eof(timeout=30)
    streams = demux_frames(data)
    assert streams[1] == payload
    assert streams[2] == b"done\n"
    assert _exec_exit_code(gw, eid) == 0


def _ws_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_read_frame(c, timeout):
    b0, b1 = c.read_exact(2, timeout)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.read_exact(2, timeout))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.read_exact(8, timeout))[0]
    mask = c.read_exact(4, timeout) if b1 & 0x80 else None
    data = c.read_exact(n, timeout)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return b0 & 0x0F, data


def test_attach_websocket_upgrade(gw, docker_direct, busybox_image, uniq):
    cid = docker_direct.out("run", "-d", "-i", "--name", uniq("ws"), busybox_image, "cat")
    key = base64.b64encode(os.urandom(16)).decode()
    with gw.connect(timeout=30) as c:
        c.send(build_request("GET", "/containers/%s/attach/ws?stream=1&stdin=1&stdout=1&stderr=1" % cid,
                             [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                              ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
                              ("Origin", "http://localhost")]))
        head = c.read_head(timeout=15)
        assert head.status == 101, head
        assert (head.header("Upgrade") or "").lower() == "websocket"
        assert head.header("Sec-WebSocket-Accept") == websocket_accept(key)
        c.send(_ws_frame(0x1, b"ws-hello\n"))
        got = b""
        while b"ws-hello\n" not in got:
            opcode, data = _ws_read_frame(c, 15)
            assert opcode in (0x0, 0x1, 0x2), opcode
            got += data
        assert got == b"ws-hello\n"
        c.send(_ws_frame(0x8, struct.pack("!H", 1000)))
    docker_direct.run("rm", "-f", cid)
