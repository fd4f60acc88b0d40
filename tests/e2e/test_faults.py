"""Faults the real engine cannot be made to show, played by stand-in upstreams:
a missing dockerd, truncated and malformed replies, slow replies, clients
that vanish, header/idle timeouts and the connection limit."""

import os
import select
import socket
import time

import pytest

from helpers import build_request, http_request, wait_until
from standin import Standin


def parse_chunked(raw: bytes):
    """Decode as much of a chunked body as possible: (data, saw_terminator)."""
    data = b""
    i = 0
    while True:
        j = raw.find(b"\r\n", i)
        if j < 0:
            return data, False
        size = int(raw[i:j].split(b";")[0], 16)
        if size == 0:
            return data, True
        start = j + 2
        if len(raw) < start + size:
            return data + raw[start:], False
        data += raw[start:start + size]
        if raw[start + size:start + size + 2] != b"\r\n":
            return data, False
        i = start + size + 2


def _readable(sock, timeout: float) -> bool:
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def test_no_dockerd_gives_502_and_keeps_serving(gateway_factory, tmp_short):
    path = os.path.join(tmp_short, "absent.sock")
    g = gateway_factory(upstream="unix://" + path)
    for target in ("/_ping", "/version", "/containers/json"):
        r = http_request(g.addr, "GET", target, timeout=10)
        assert r.status == 502, r
        assert r.json()["message"]
    st = g.status()
    assert path in st["upstream"]
    assert g.alive()
    # once dockerd (here: a stand-in) appears, requests go through again
    with Standin(path) as s:
        r = http_request(g.addr, "GET", "/_ping", timeout=10)
        assert (r.status, r.body) == (200, b"OK")
        assert len(s.requests()) == 1


def test_upstream_dies_mid_body_with_content_length(gw_standin):
    with gw_standin.connect(timeout=10) as c:
        c.send(build_request("GET", "/containers/standin-truncate-cl/json"))
        head = c.read_head()
        assert head.status == 200
        assert head.header("Content-Length") == "100000"
        try:
            rest = c.read_until_eof(timeout=10)
        except TimeoutError:
            pytest.fail("client left hanging after the upstream died mid-body")
    assert rest == b"a" * 1000


def test_upstream_dies_mid_chunked_stream(gw_standin):
    with gw_standin.connect(timeout=10) as c:
        c.send(build_request("GET", "/containers/standin-truncate-chunked/logs?stdout=1"))
        head = c.read_head()
        assert head.status == 200
        assert (head.header("Transfer-Encoding") or "").lower() == "chunked"
        try:
            raw = c.read_until_eof(timeout=10)
        except TimeoutError:
            pytest.fail("client left hanging after the upstream died mid-stream")
    data, complete = parse_chunked(raw)
    assert data == b"helloworld"
    assert not complete, "the gateway invented a terminating chunk for a truncated stream: %r" % raw


def test_slow_reply_does_not_block_other_clients(gw_standin, standin):
    gate = standin.gate("slow")
    with gw_standin.connect(timeout=15) as slow:
        slow.send(build_request("GET", "/containers/standin-gate-slow/json"))
        standin.wait_for(lambda: any(q.behaviour == "gate-slow" for q in standin.requests()), 5,
                         "slow request at the stand-in")
        t0 = time.monotonic()
        r = http_request(gw_standin.addr, "GET", "/_ping", timeout=5)
        assert (r.status, r.body) == (200, b"OK")
        st = gw_standin.status()
        assert st["connections"]["active"] >= 2
        assert time.monotonic() - t0 < 5
        assert not _readable(slow.sock, 0), "slow request answered before the upstream replied"
        gate.set()
        r = slow.read_response(timeout=10)
        assert r.status == 200 and b"gate-slow" in r.body


@pytest.mark.parametrize("kind", ["garbage", "status", "content-length", "header-space"])
def test_malformed_upstream_head_is_502(gw_standin, kind):
    with gw_standin.connect(timeout=10) as c:
        r = c.request("GET", "/containers/standin-malformed-%s/json" % kind)
        assert r.status == 502, r
        assert r.json()["message"]
    r = http_request(gw_standin.addr, "GET", "/_ping")
    assert (r.status, r.body) == (200, b"OK")


def test_upstream_closes_without_reply_is_502(gw_standin):
    r = http_request(gw_standin.addr, "GET", "/containers/standin-close/json", timeout=10)
    assert r.status == 502, r
    assert r.json()["message"]


def test_client_disappears_mid_upload(gw_standin, standin):
    c = gw_standin.connect(timeout=10)
    c.send(build_request("PUT", "/containers/standin-sink/archive?path=/tmp",
                         [("Content-Type", "application/x-tar"), ("Content-Length", str(10 * 1024 * 1024))]))
    c.send(b"x" * (1024 * 1024))
    standin.wait_for(lambda: standin.total_bytes() > 512 * 1024, 10, "upload reaching the stand-in")
    c.close()
    standin.wait_for(lambda: standin.records[0].peer_closed.is_set(), 10,
                     "the gateway to close the upstream connection")
    reqs = standin.requests()
    assert len(reqs) == 1 and not reqs[0].body_complete


def test_header_timeout_disconnects_half_head(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--header-timeout", "1"])
    # a complete head in time is served
    assert http_request(g.addr, "GET", "/_ping").status == 200
    with g.connect(timeout=10) as c:
        c.send(b"GET /_ping HTTP/1.1\r\nHost: loc")
        t0 = time.monotonic()
        closed = c.wait_closed(8)
        elapsed = time.monotonic() - t0
    assert closed, "half a head was kept open for 8s with --header-timeout 1"
    assert elapsed >= 0.5, "closed after %.2fs, before the header timeout" % elapsed
    assert len(standin.requests()) == 1  # only the complete request


def test_header_timeout_is_total_not_per_byte(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--header-timeout", "1"])
    head = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 200
    with g.connect(timeout=10) as c:
        t0 = time.monotonic()
        closed_at = None
        for i in range(len(head)):
            if not c.send_quiet(head[i:i + 1]):
                closed_at = time.monotonic()
                break
            # pacing of the slow client; also notices EOF from the gateway
            if _readable(c.sock, 0.2):
                if c.wait_closed(2):
                    closed_at = time.monotonic()
                    break
            if time.monotonic() - t0 > 6:
                break
        assert closed_at is not None, "a client trickling its head was kept for 6s with --header-timeout 1"
        assert closed_at - t0 < 4
    assert standin.total_bytes() == 0


def test_idle_timeout_does_not_cut_streams(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--idle-timeout", "1"])
    expect = b"".join(b"chunk-%d\n" % i for i in range(8))
    with g.connect(timeout=15) as c:
        r = c.request("GET", "/containers/standin-stream/logs?follow=1&stdout=1&count=8&interval=0.5", timeout=15)
        assert r.status == 200 and r.complete
        assert r.body == expect
    # a response that is silent for longer than the idle timeout is not cut either
    with g.connect(timeout=15) as c:
        r = c.request("GET", "/containers/standin-stream/logs?follow=1&stdout=1&count=4&interval=0.1&gap_after=1&gap=2.5", timeout=15)
        assert r.status == 200 and r.complete
        assert r.body == b"".join(b"chunk-%d\n" % i for i in range(4))


def test_idle_keepalive_connection_is_closed(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--idle-timeout", "1"])
    with g.connect(timeout=10) as c:
        assert c.request("GET", "/_ping").status == 200
        t0 = time.monotonic()
        assert c.wait_closed(6), "idle keep-alive connection kept for 6s with --idle-timeout 1"
        assert time.monotonic() - t0 >= 0.5


def test_max_connections(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--max-connections", "2"])
    c1 = g.connect(timeout=10)
    c2 = g.connect(timeout=10)
    c3 = None
    try:
        assert c1.request("GET", "/_ping?c=1").status == 200
        assert c2.request("GET", "/_ping?c=2").status == 200
        c3 = g.connect(timeout=10)  # queued by the kernel, not served
        c3.send(build_request("GET", "/_ping?c=3"))
        assert not _readable(c3.sock, 1.0), "a third connection was answered with --max-connections 2"
        assert "/_ping?c=3" not in [q.target for q in standin.requests()]
        c1.close()
        r = c3.read_response(timeout=10)
        assert (r.status, r.body) == (200, b"OK")
    finally:
        c1.close()
        c2.close()
        if c3:
            c3.close()
    st = wait_until(lambda: (lambda s: s if s["connections"]["active"] == 1 else None)(g.status()), 10,
                    "active connections to drop to the status request itself")
    assert st["connections"]["max"] == 2


def test_tcp_upstream(gateway_factory):
    with Standin(tcp=True) as s:
        g = gateway_factory(upstream=s.url)
        r = http_request(g.addr, "GET", "/containers/standin-tcp/json?x=1")
        assert r.status == 200, r
        assert r.json()["target"] == "/containers/standin-tcp/json?x=1"
        assert s.connection_count() == 1
        assert g.status()["upstream"].endswith("127.0.0.1:%d" % s.port)


def test_tcp_upstream_refused_is_502(gateway_factory):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    g = gateway_factory(upstream="tcp://127.0.0.1:%d" % port)
    r = http_request(g.addr, "GET", "/_ping", timeout=10)
    assert r.status == 502, r
    assert r.json()["message"]
    assert g.alive()
