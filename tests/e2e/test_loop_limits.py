"""Limits that hold under attack: slowloris at the default settings, the
per-address cap and eviction of connections still sending their first head,
a header timeout that is a total, descriptor exhaustion, and the memory
budget of checked bodies. Loop stalls are read from the gateway's own
``loop.longest_iteration_us``; nothing sleeps to synchronise."""

import json
import resource
import select
import socket
import statistics
import time

import authlib
from helpers import HttpConn, build_request, wait_until

MIB = 1024 * 1024
# A generous bound for the longest loop iteration on this machine.
LOOP_STALL_LIMIT_US = 100_000
SLOW_HEAD = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"s" * 4000


def _connect_from(gw, source: str, timeout: float = 10.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(gw.addr)
    return s


def _readable(sock, timeout: float) -> bool:
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def _read_reply(sock, timeout: float = 5.0) -> bytes:
    """Everything the gateway sends until it closes."""
    sock.settimeout(timeout)
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


class SlowClients:
    """Clients that trickle a request head one byte at a time, each from its
    own source address in ``sources``, and reconnect when the gateway closes
    them (as an attacker would)."""

    def __init__(self, gw, sources):
        self.gw = gw
        self.sources = list(sources)
        self.socks = {}
        self.closed_by_gateway = 0
        for i in range(len(self.sources)):
            self._open(i)

    def _open(self, i):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((self.sources[i], 0))
        s.setblocking(False)
        s.connect_ex(self.gw.addr)
        self.socks[i] = [s, 0]

    def trickle(self):
        """One byte more on every connection; reopens those the gateway
        answered (a 503 when evicted, a 408 at the header timeout)."""
        for i, entry in list(self.socks.items()):
            s, sent = entry
            try:
                if _readable(s, 0):
                    raise ConnectionResetError
                s.send(SLOW_HEAD[sent:sent + 1])
                entry[1] = (sent + 1) % len(SLOW_HEAD)
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                self.closed_by_gateway += 1
                self._open(i)

    def close(self):
        for s, _ in self.socks.values():
            s.close()


def _request_from(gw, source: str, target: str) -> bytes:
    """One request with ``Connection: close`` from ``source``; the whole reply."""
    s = _connect_from(gw, source)
    try:
        s.sendall(build_request("GET", target, [("Connection", "close")]))
        return _read_reply(s, 10)
    finally:
        s.close()


def _ping_latencies(gw, source: str, slow: SlowClients, rounds: int):
    """Times ``rounds`` fresh /_ping requests from ``source`` while ``slow``
    keeps trickling between them."""
    took = []
    for _ in range(rounds):
        slow.trickle()
        t0 = time.monotonic()
        reply = _request_from(gw, source, "/_ping")
        took.append(time.monotonic() - t0)
        assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"\r\n\r\nOK"), reply
    return took


def _slowloris(gw, attackers, legit_source):
    slow = SlowClients(gw, attackers)
    try:
        for _ in range(5):  # every attacker has sent a few bytes
            slow.trickle()
        took = _ping_latencies(gw, legit_source, slow, 40)
        st = gw.status()
    finally:
        slow.close()
    p50, worst = statistics.median(took), max(took)
    print("slowloris with %d attackers: /_ping p50 %.1f ms, max %.1f ms; loop longest %d us; connections %s; work %s"
          % (len(attackers), p50 * 1000, worst * 1000, st["loop"]["longest_iteration_us"], st["connections"],
             st["loop"]["work"]))
    header_timeout = 10  # the default
    assert worst < header_timeout / 5, "a /_ping took %.2fs during slowloris" % worst
    assert st["loop"]["longest_iteration_us"] < LOOP_STALL_LIMIT_US, st["loop"]
    assert st["connections"]["active"] <= st["connections"]["max"]
    assert st["connections"]["per_address_max"] <= st["connections"]["per_address_limit"]
    return st


def test_slowloris_from_one_address_at_defaults(gw_standin):
    st = _slowloris(gw_standin, ["127.0.0.1"] * 300, "127.0.0.2")
    assert st["connections"]["per_address_limit"] == 64
    assert st["connections"]["evicted"] >= 300 - 64


def test_slowloris_from_many_addresses_at_defaults(gw_standin):
    attackers = ["127.1.%d.%d" % (i // 200, 1 + i % 200) for i in range(300)]
    st = _slowloris(gw_standin, attackers, "127.0.0.1")
    assert st["connections"]["max"] == 256
    assert st["connections"]["evicted"] >= 300 - 256


def test_only_connections_still_sending_their_first_head_are_evicted(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--max-connections", "3"])
    served = HttpConn(g.addr)
    oldest_head = _connect_from(g, "127.0.0.1")
    newer_head = _connect_from(g, "127.0.0.1")
    try:
        assert served.request("GET", "/_ping").status == 200
        oldest_head.sendall(b"GET /_ping HTTP/1.1\r\nHo")
        newer_head.sendall(b"GET /_ping HTTP/1.1\r\nHo")
        with HttpConn(g.addr) as fourth:  # makes room for itself
            r = fourth.request("GET", "/_ping")
        assert (r.status, r.body) == (200, b"OK")
        reply = _read_reply(oldest_head)
        assert reply.startswith(b"HTTP/1.1 503 "), reply
        assert b'{"message":"too many connections' in reply
        assert not _readable(newer_head, 0.3), "the newer half-head connection was evicted too"
        assert served.request("GET", "/_ping").status == 200, "a served connection was evicted"
        st = g.status()
        assert st["connections"]["evicted"] >= 1
    finally:
        for c in (served, oldest_head, newer_head):
            c.close()


def test_per_address_cap(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--max-connections-per-address", "2"])
    a1, a2 = HttpConn(g.addr), HttpConn(g.addr)
    try:
        assert a1.request("GET", "/_ping").status == 200
        assert a2.request("GET", "/_ping").status == 200
        third = _connect_from(g, "127.0.0.1")
        third.sendall(build_request("GET", "/_ping"))
        reply = _read_reply(third)
        assert reply.startswith(b"HTTP/1.1 503 "), reply
        assert b"too many connections from this address" in reply
        # another address is served, and sees the cap
        reply = _request_from(g, "127.0.0.2", "/_dockermand/status")
        assert reply.startswith(b"HTTP/1.1 200 "), reply
        st = json.loads(reply.split(b"\r\n\r\n", 1)[1])
        assert st["connections"]["refused_per_address"] == 1
        assert st["connections"]["per_address_limit"] == 2
        assert st["connections"]["per_address_max"] == 2
    finally:
        a1.close()
        a2.close()


def _time_to_close(sock, trickle_from: float, header_timeout: float):
    """Sends one head byte every 50 ms from ``trickle_from`` on; returns when
    the gateway closes, with what it sent."""
    reply = b""
    i = 0
    limit = time.monotonic() + 3 * header_timeout
    while time.monotonic() < limit:
        if _readable(sock, 0.05):
            reply = _read_reply(sock)
            return time.monotonic(), reply
        if time.monotonic() >= trickle_from:
            try:
                sock.send(SLOW_HEAD[i:i + 1])
            except OSError:
                return time.monotonic(), reply
            i += 1
    raise AssertionError("a trickled head was kept for %.0fs with --header-timeout %s"
                         % (3 * header_timeout, header_timeout))


def test_header_timeout_is_a_total_from_accept(gateway_factory, standin):
    header_timeout = 2
    g = gateway_factory(upstream=standin.url, args=["--header-timeout", str(header_timeout)])
    s = _connect_from(g, "127.0.0.1")
    accepted = time.monotonic()
    try:
        # The head starts late: before, its first byte restarted the clock.
        closed, reply = _time_to_close(s, accepted + 0.75 * header_timeout, header_timeout)
    finally:
        s.close()
    print("trickled head closed %.2fs after connect (header timeout %ds)" % (closed - accepted, header_timeout))
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert closed - accepted < header_timeout + 0.5


def test_header_timeout_on_keep_alive_counts_from_the_first_byte_at_most(gateway_factory, standin):
    header_timeout = 2
    g = gateway_factory(upstream=standin.url, args=["--header-timeout", str(header_timeout)])
    with HttpConn(g.addr) as c:
        assert c.request("GET", "/_ping").status == 200
        first_byte = time.monotonic() + 0.5
        closed, reply = _time_to_close(c.sock, first_byte, header_timeout)
    assert reply.startswith(b"HTTP/1.1 408 "), reply
    assert closed - first_byte < header_timeout + 0.5


def test_out_of_descriptors_refuses_one_client_and_retries(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url)
    base = g.fd_count()
    limit = base + 6
    soft, hard = resource.prlimit(g.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(g.pid, resource.RLIMIT_NOFILE, (limit, hard))
    held = []
    excess = None
    try:
        for _ in range(20):
            c = HttpConn(g.addr)
            r = c.request("GET", "/_dockermand/whoami")
            if r.status == 503:
                excess = r
                c.close()
                break
            assert r.status == 200, r
            held.append(c)
        assert excess is not None, "never ran out of descriptors with RLIMIT_NOFILE %d" % limit
        assert "out of file descriptors" in excess.json()["message"], excess
        assert excess.header("Content-Type") == "application/json"
        # A client queued while descriptors are out, then some free up: it is
        # served by the retry timer, with no new client arriving.
        queued = HttpConn(g.addr)
        queued.send(build_request("GET", "/_dockermand/whoami"))
        for c in held[:3]:
            c.close()
        r = queued.read_response(timeout=5)
        assert r.status == 200, r
        queued.close()
        st = g.status()
        print("out of descriptors at %d: %s" % (limit, st["connections"]))
        assert st["connections"]["descriptors_exhausted"] >= 1
        assert st["connections"]["refused_no_descriptor"] >= 1
    finally:
        for c in held:
            c.close()
    resource.prlimit(g.pid, resource.RLIMIT_NOFILE, (soft, hard))


def test_checked_bodies_share_a_memory_budget(gateway_factory, standin, tmp_short):
    token = authlib.new_token("op")
    path = authlib.write_config(tmp_short, authlib.auth_config(tokens={"operator": token}))
    g = authlib.start_gateway(gateway_factory, path, standin.url)
    before = authlib.status(g, token)
    budget = before["body_budget"]["limit"]
    assert budget == 4 * MIB and before["body_budget"]["in_use"] == 0
    rss_before = g.rss_kib()
    head = build_request("POST", "/containers/create", [
        ("Authorization", "Bearer " + token), ("Content-Type", "application/json"),
        ("Content-Length", str(MIB))])
    part = b"{" + b" " * (MIB * 3 // 4)
    socks = []
    try:
        for i in range(100):
            # one address each, so the per-address cap stays out of the way
            s = _connect_from(g, "127.2.%d.%d" % (i // 200, 1 + i % 200))
            socks.append(s)
            s.sendall(head)
            try:
                s.sendall(part)
            except OSError:
                pass  # answered 503 and closed already
        st = wait_until(lambda: (lambda s: s if s["body_budget"]["refused"] >= 96 else None)(
            authlib.status(g, token)), 10, "96 bodies refused")
        rss = g.rss_kib()
        answered = [s for s in socks if _readable(s, 0)]
        print("100 unfinished 1 MiB bodies: RSS %d KiB (before %d KiB), budget %s"
              % (rss, rss_before, st["body_budget"]))
        assert st["body_budget"]["in_use"] == budget
        assert st["body_budget"]["refused"] == 96
        assert len(answered) == 96
        reply = _read_reply(answered[0])
        assert reply.startswith(b"HTTP/1.1 503 "), reply[:200]
        assert b'"message":"too many request bodies' in reply
        assert rss - rss_before < budget // 1024 + 1024, "RSS grew %d KiB" % (rss - rss_before)
        assert rss < 16 * 1024
    finally:
        for s in socks:
            s.close()
    wait_until(lambda: authlib.status(g, token)["body_budget"]["in_use"] == 0, 10,
               "the budget to come back when the clients leave")
