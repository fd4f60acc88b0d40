"""Resource bounds: no descriptor leaks over 2000 requests, bounded memory
while moving 256 MiB each way, and the zero-copy (splice) accounting."""

import pytest

from helpers import (RssSampler, build_request, drain_body, tar_single_file_stream, wait_until)

pytestmark = pytest.mark.usefixtures("busybox_image")

MIB = 1024 * 1024
BIG = 256 * MIB
RSS_LIMIT_KIB = 16 * 1024


def _one(gw, target, method="GET"):
    with gw.connect(timeout=20) as c:
        return c.request(method, target)


def _workload_round(gw, keepalive_conns, i):
    """A handful of requests of every kind; returns how many were sent."""
    sent = 0
    c = keepalive_conns[i % len(keepalive_conns)]
    for target, status in (("/_ping", 200), ("/version", 200), ("/_dockermand/status", 200),
                           ("/containers/dmtest-nope/json", 404)):
        r = c.request("GET", target)
        assert r.status == status, (target, r)
        sent += 1
    # fresh connections
    assert _one(gw, "/_ping").status == 200
    assert _one(gw, "/containers/json").status == 200
    assert _one(gw, "/_dockermand/nope").status == 404
    sent += 3
    # a malformed request (400, connection closed by the gateway)
    with gw.connect(timeout=20) as bad:
        bad.send(b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert bad.read_response().status == 400
        assert bad.wait_closed(5)
    sent += 1
    # a client that leaves after sending half a head
    with gw.connect(timeout=20) as half:
        half.send(b"GET /_ping HTTP/1.1\r\nHo")
    sent += 1
    # a client that leaves without reading its answer
    with gw.connect(timeout=20) as rude:
        rude.send(build_request("GET", "/version"))
    sent += 1
    return sent


def test_fd_count_stable_over_2000_requests(gw):
    # warm up every code path once with everything closed afterwards
    warm = [gw.connect(timeout=20)]
    _workload_round(gw, warm, 0)
    warm[0].close()
    baseline = _quiet_fd_count(gw)
    conns = [gw.connect(timeout=20) for _ in range(10)]
    sent, i = 0, 1
    try:
        while sent < 2000:
            sent += _workload_round(gw, conns, i)
            i += 1
        assert gw.alive()
    finally:
        for c in conns:
            c.close()
    try:
        wait_until(lambda: _quiet_fd_count(gw) == baseline, 15, "fd count back at the baseline")
    except AssertionError:
        pytest.fail("fd count %d after %d requests, baseline %d: %s"
                    % (gw.fd_count(), sent, baseline, _fd_summary(gw)))


def _quiet_fd_count(gw):
    """The fd count once only the status request's own connection is active
    and that one has been closed again (stable over two samples 0.2s apart),
    without the upstream connections kept idle for the next client (each
    one descriptor, at most 16, counted by the status endpoint)."""
    wait_until(lambda: gw.status()["connections"]["active"] == 1, 15, "client connections to close")
    last = [None]

    def stable():
        idle = gw.status()["connections"]["upstream_idle"]
        assert idle <= 16, idle
        n = gw.fd_count() - idle
        ok = n == last[0]
        last[0] = n
        return ok

    wait_until(stable, 10, "a stable fd count", interval=0.2)
    return last[0]


def _fd_summary(gw):
    import os
    kinds = {}
    for fd in os.listdir("/proc/%d/fd" % gw.pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (gw.pid, fd)).split(":")[0]
        except OSError:
            continue
        kinds[t] = kinds.get(t, 0) + 1
    return kinds


def _make_big_file(docker_direct, cid):
    docker_direct.run("exec", cid, "sh", "-c", "head -c %d /dev/zero > /big.bin" % BIG, timeout=120)
    size = int(docker_direct.out("exec", cid, "stat", "-c", "%s", "/big.bin"))
    assert size == BIG


def _download(gw, cid):
    with RssSampler(gw) as rss:
        with gw.connect(timeout=120) as c:
            c.send(build_request("GET", "/containers/%s/archive?path=/big.bin" % cid))
            head = c.read_head(timeout=60)
            assert head.status == 200, head
            n = drain_body(c, head, timeout=240)
    return n, rss


def test_upload_256mib_bounded_rss(gw, running_container, docker_direct):
    total, gen = tar_single_file_stream("up.bin", BIG)
    before = gw.status()["bytes"]
    with RssSampler(gw) as rss:
        with gw.connect(timeout=120) as c:
            c.send(build_request("PUT", "/containers/%s/archive?path=/tmp" % running_container,
                                 [("Content-Type", "application/x-tar"), ("Content-Length", str(total))]))
            for block in gen():
                c.send(block)
            r = c.read_response(timeout=120)
    assert r.status == 200, r
    assert int(docker_direct.out("exec", running_container, "stat", "-c", "%s", "/tmp/up.bin")) == BIG
    assert rss.samples, "no RSS samples"
    print("upload: peak RSS %d KiB over %d samples" % (rss.max_kib, len(rss.samples)))
    assert rss.max_kib < RSS_LIMIT_KIB, "RSS peaked at %d KiB during a 256 MiB upload" % rss.max_kib
    after = gw.status()["bytes"]
    moved = (after["spliced"] - before["spliced"]) + (after["copied"] - before["copied"])
    assert moved >= BIG, (before, after)


def test_download_256mib_is_spliced_with_bounded_rss(gw, running_container, docker_direct):
    _make_big_file(docker_direct, running_container)
    before = gw.status()["bytes"]
    n, rss = _download(gw, running_container)
    after = gw.status()["bytes"]
    assert n >= BIG
    assert rss.max_kib < RSS_LIMIT_KIB, "RSS peaked at %d KiB during a 256 MiB download" % rss.max_kib
    spliced = after["spliced"] - before["spliced"]
    copied = after["copied"] - before["copied"]
    print("download: %d bytes, peak RSS %d KiB, spliced +%d, copied +%d" % (n, rss.max_kib, spliced, copied))
    assert spliced >= BIG, "spliced grew by %d bytes only (copied %d)" % (spliced, copied)
    assert copied < MIB, "copied grew by %d bytes on the splice path" % copied


def test_download_256mib_no_splice_copies(gateway_factory, dockerd, running_container, docker_direct):
    g = gateway_factory(upstream=dockerd.url, args=["--no-splice"])
    _make_big_file(docker_direct, running_container)
    before = g.status()["bytes"]
    n, rss = _download(g, running_container)
    after = g.status()["bytes"]
    assert n >= BIG
    assert rss.max_kib < RSS_LIMIT_KIB, "RSS peaked at %d KiB with --no-splice" % rss.max_kib
    spliced = after["spliced"] - before["spliced"]
    copied = after["copied"] - before["copied"]
    print("no-splice download: %d bytes, peak RSS %d KiB, spliced +%d, copied +%d"
          % (n, rss.max_kib, spliced, copied))
    assert copied >= BIG, "copied grew by %d bytes only with --no-splice" % copied
    assert spliced == 0, "spliced grew by %d bytes with --no-splice" % spliced
