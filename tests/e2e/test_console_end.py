"""Consoles always end: whenever and however the browser goes away, the exec
process it started ends, and a browser that stops answering (or stops doing
anything) loses its console and its slot.

* 100 TTY consoles are abandoned at moments picked by a seeded RNG (right
  after the 101, after the first output, in the middle of a command, after a
  resize) in one of three ways (close frame, TCP close, TCP reset), in
  concurrent batches; ``docker top`` on dockerd's own socket must come back to
  the container's own process;
* a shell that ignores SIGHUP is killed after the grace period, and the
  pending cleanup shows in ``/_dockermand/status``;
* 16 clients that complete the handshake and then never answer a ping are
  closed with a close frame after two ping intervals, which frees their slots
  for a new console; a client that answers pings keeps its console;
* a console with neither input nor output is closed after the idle time.

Every wait is bounded (helpers.wait_until or a read deadline), nothing
sleeps to synchronise.
"""

from __future__ import annotations

import concurrent.futures
import json
import random
import time

import consolelib as cl
from consolelib import must_open, open_console
from helpers import http_request, wait_until

MOMENTS = ("after-101", "first-output", "mid-command", "after-resize")
WAYS = ("close-frame", "fin", "rst")


def _start(gateway_factory, dockerd, tmp_path, **cfg):
    path = tmp_path / "console-end.json"
    path.write_text(json.dumps(cfg))
    return gateway_factory(upstream=dockerd.url, args=["--config", str(path)])


def _consoles(gw) -> dict:
    return gw.status()["connections"]


def _processes(api, container: str) -> list[str]:
    return cl.process_commands(api, container)


def _wait_processes(api, container: str, baseline: list[str], timeout: float):
    """Waits until ``docker top`` shows only the baseline; fails with the
    leftover processes."""
    end = time.monotonic() + timeout
    while True:
        now = _processes(api, container)
        if sorted(now) == sorted(baseline):
            return
        if time.monotonic() >= end:
            leftover = list(now)
            for p in baseline:
                if p in leftover:
                    leftover.remove(p)
            raise AssertionError("%d process(es) left after %.0fs: %r" % (len(leftover), timeout, leftover))
        time.sleep(0.05)


def _abandon(addr, container: str, moment: str, way: str, n: int):
    c = must_open(addr, container, None, tty=True, cols=80, rows=24)
    try:
        if moment == "first-output":
            c.read_until(lambda o: len(o.stdout) > 0, 20, "first output")
        elif moment == "mid-command":
            # Keys typed before the shell has set up its terminal may be
            # lost: wait for its prompt, as a user would.
            c.wait_stdout(b"# ")
            # the shell prints 6*7+n, which the typed line does not contain
            c.stdin(b"echo in-$((6*7+%d)); sleep 1000\n" % n)
            c.wait_stdout(b"in-%d" % (42 + n))
        elif moment == "after-resize":
            c.wait_stdout(b"# ")
            c.ws.send_json({"type": "resize", "cols": 100 + n % 50, "rows": 30})
            c.stdin(b"stty size\n")
            c.wait_stdout(b"30 %d" % (100 + n % 50))
        if way == "close-frame":
            c.ws.send_close(1000)
            c.ws.close()
        else:
            c.ws.vanish(reset=(way == "rst"))
    except BaseException:
        c.close()
        raise


def test_abandoned_consoles_leave_no_process(gateway_factory, dockerd, tmp_path, running_container,
                                             api_direct):
    gw = _start(gateway_factory, dockerd, tmp_path, max_consoles=32)
    baseline = _processes(api_direct, running_container)
    rng = random.Random(20240612)
    plan = [(rng.choice(MOMENTS), rng.choice(WAYS)) for _ in range(100)]
    assert {m for m, _ in plan} == set(MOMENTS) and {w for _, w in plan} == set(WAYS)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
        for batch in range(0, len(plan), 25):
            jobs = [pool.submit(_abandon, gw.addr, running_container, m, w, i)
                    for i, (m, w) in enumerate(plan[batch:batch + 25], start=batch)]
            for j in jobs:
                j.result()
            # a slot is free as soon as its browser is gone
            wait_until(lambda: _consoles(gw)["consoles"] == 0, 10, "console slots free")
    _wait_processes(api_direct, running_container, baseline, 60)
    wait_until(lambda: _consoles(gw)["consoles_ending"] == 0, 30, "no console cleanup pending")
    assert not cl.running_execs(api_direct, running_container)
    print("100 abandoned consoles ended in %.1fs" % (time.monotonic() - started))


def test_shell_ignoring_sighup_is_killed(gateway_factory, dockerd, tmp_path, running_container, api_direct):
    gw = _start(gateway_factory, dockerd, tmp_path)
    baseline = _processes(api_direct, running_container)
    c = must_open(gw.addr, running_container, ["sh", "-c", "trap '' HUP; echo ready; exec cat"], tty=True)
    c.wait_stdout(b"ready")
    wait_until(lambda: "cat" in _processes(api_direct, running_container), 20, "cat running")
    c.ws.vanish()
    # SIGHUP does nothing: the cleanup waits out its grace period, visibly
    wait_until(lambda: _consoles(gw)["consoles_ending"] == 1, 10, "one console cleanup pending")
    assert _consoles(gw)["consoles"] == 0
    assert "cat" in _processes(api_direct, running_container)
    metrics = http_request(gw.addr, "GET", "/_dockermand/metrics").body.decode()
    assert "dockermand_consoles_ending 1\n" in metrics, metrics
    _wait_processes(api_direct, running_container, baseline, 20)
    wait_until(lambda: _consoles(gw)["consoles_ending"] == 0, 10, "cleanup done")


def _frames_until_close(ws, timeout: float) -> list[int]:
    """Opcodes of the frames a silent client received, up to the Close."""
    ops = []
    deadline = time.monotonic() + timeout
    while True:
        _, op, payload = ws.recv_frame(max(0.01, deadline - time.monotonic()))
        ops.append(op)
        if op == cl.CLOSE:
            ws._got_close(payload)
            return ops


def test_silent_clients_lose_their_consoles(gateway_factory, dockerd, tmp_path, running_container,
                                            api_direct):
    ping = 1
    gw = _start(gateway_factory, dockerd, tmp_path, max_consoles=16, console_ping_secs=ping)
    baseline = _processes(api_direct, running_container)
    opened = time.monotonic()
    silent = [must_open(gw.addr, running_container, ["cat"], tty=True) for _ in range(16)]
    try:
        assert _consoles(gw)["consoles"] == 16
        r, c = open_console(gw.addr, running_container, ["cat"], tty=True)
        assert r.status == 503 and c is None, r
        wait_until(lambda: _consoles(gw)["consoles"] == 0, 2 * ping + 8, "silent consoles closed")
        # one ping, no pong: closed at the end of the next interval
        assert time.monotonic() - opened >= 2 * ping - 0.2
        for s in silent:
            ops = _frames_until_close(s.ws, 5)
            assert cl.PING in ops and ops[-1] == cl.CLOSE, ops
            assert s.ws.close_code == 1001 and s.ws.close_reason == "no pong", \
                (s.ws.close_code, s.ws.close_reason)
            assert s.ws.conn.wait_closed(5)
    finally:
        for s in silent:
            s.close()
    fresh = must_open(gw.addr, running_container, ["sh", "-c", "echo fresh"], tty=False)
    out = fresh.run_to_end()
    assert out.stdout == b"fresh\n" and out.exit["exit_code"] == 0
    _wait_processes(api_direct, running_container, baseline, 20)


def _answer_pings_for(c, seconds: float):
    """Reads for ``seconds``, answering pings (how many is returned);
    anything else is an error."""
    end, pings = time.monotonic() + seconds, 0
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return pings
        try:
            _, op, payload = c.ws.recv_frame(left)
        except TimeoutError:
            return pings
        assert op == cl.PING, "unexpected frame %#x %r" % (op, payload)
        c.ws.send_frame(cl.PONG, payload)
        pings += 1


def test_answering_client_keeps_its_console(gateway_factory, dockerd, tmp_path, running_container):
    gw = _start(gateway_factory, dockerd, tmp_path, console_ping_secs=1)
    c = must_open(gw.addr, running_container, ["cat"], tty=False)
    pings = _answer_pings_for(c, 3.5)
    assert pings >= 2
    c.stdin(b"still here\n")
    c.wait_stdout(b"still here\n")
    assert _consoles(gw)["consoles"] == 1
    c.ws.send_close(1000)
    assert c.ws.wait_server_close()[0] == 1000


def test_idle_console_is_closed(gateway_factory, dockerd, tmp_path, running_container, api_direct):
    idle = 2
    gw = _start(gateway_factory, dockerd, tmp_path, console_ping_secs=1, console_idle_secs=idle)
    baseline = _processes(api_direct, running_container)
    c = must_open(gw.addr, running_container, ["cat"], tty=False)
    # input and output now and then keep it open well past the idle time
    for n in range(4):
        c.stdin(b"tick %d\n" % n)
        c.wait_stdout(b"tick %d\n" % n)
        _answer_pings_for(c, idle * 0.6)
    went_idle = time.monotonic() - idle * 0.6
    code, reason = c.ws.wait_server_close(idle + 5)
    assert (code, reason) == (1001, "idle"), (code, reason)
    assert time.monotonic() - went_idle >= idle - 0.2
    assert c.ws.finish_close(5)
    wait_until(lambda: _consoles(gw)["consoles"] == 0, 5, "slot freed")
    _wait_processes(api_direct, running_container, baseline, 20)
