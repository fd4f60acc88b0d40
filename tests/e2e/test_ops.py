"""Operating the daemon: flags, status endpoint, logging, config file and
SIGHUP reload, SIGTERM shutdown, unix and IPv6 listeners."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest

from helpers import (REPO, ConnectionClosed, DockerCLI, HttpConn, build_request, gateway_binary,
                     http_request, wait_until)


def _cargo_version():
    in_package = False
    for line in (REPO / "Cargo.toml").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            in_package = line == "[package]"
        elif in_package and line.startswith("version"):
            return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError("no package version in Cargo.toml")


def _run(args, timeout=15):
    try:
        return subprocess.run([gateway_binary()] + args, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("dockermand %s still running after %ss" % (" ".join(args), timeout))


def _refused(addr) -> bool:
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
        return False
    except (ConnectionRefusedError, ConnectionResetError):
        # A probe that reaches the backlog just as the listener closes is
        # reset rather than refused: either way it was not served.
        return True
    finally:
        s.close()


def test_help_exits_zero_and_lists_flags():
    p = _run(["--help"])
    assert p.returncode == 0, p
    text = (p.stdout + p.stderr).decode()
    for flag in ("--listen", "--upstream", "--config", "--log-level", "--max-connections", "--max-head-bytes",
                 "--max-headers", "--header-timeout", "--idle-timeout", "--shutdown-grace", "--no-splice",
                 "--insecure", "--version"):
        assert flag in text, flag


def test_version_flag_matches_cargo_and_status(gw):
    p = _run(["--version"])
    assert p.returncode == 0, p
    version = _cargo_version()
    assert version in (p.stdout + p.stderr).decode()
    assert gw.status()["version"] == version


@pytest.mark.parametrize("args", [["--no-such-flag"], ["--listen", "not-an-address"],
                                  ["--max-connections", "many"], ["--upstream", "ftp://x"]])
def test_bad_arguments_exit_non_zero(args):
    p = _run(args)
    assert p.returncode != 0
    assert p.stderr.strip() or p.stdout.strip()


def test_status_document(gw, dockerd):
    st = gw.status()
    assert st["version"] == _cargo_version()
    assert isinstance(st["uptime_seconds"], (int, float)) and st["uptime_seconds"] >= 0
    for k in ("active", "total", "max"):
        assert isinstance(st["connections"][k], int)
    assert st["connections"]["active"] >= 1
    assert dockerd.sock in st["upstream"]
    for k in ("spliced", "copied"):
        assert isinstance(st["bytes"][k], int)
    before = st["requests"]
    for _ in range(3):
        assert http_request(gw.addr, "GET", "/_ping").status == 200
    with gw.connect() as c:
        c.send(b"GET /_ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert c.read_response().status == 400
    after = gw.status()["requests"]
    assert after["total"] >= before["total"] + 3
    assert after["rejected"] == before["rejected"] + 1


def test_each_request_logs_method_path_status(gw):
    marker = uuid.uuid4().hex
    r = http_request(gw.addr, "GET", "/containers/dmtest-%s/json" % marker)
    assert r.status == 404
    gw.wait_for_line(r"(?=.*\bGET\b)(?=.*/containers/dmtest-%s/json)(?=.*\b404\b)" % marker, 10)


def test_non_loopback_requires_insecure(gateway_factory, dockerd):
    for addr in ("0.0.0.0:0", "[::]:0"):
        p = _run(["--listen", addr, "--upstream", dockerd.url])
        assert p.returncode != 0, "listening on %s without --insecure was allowed" % addr
        assert p.stderr.strip(), "no message explaining the refusal"
    g = gateway_factory(upstream=dockerd.url, listen=("0.0.0.0:0",), args=["--insecure"])
    r = http_request(("127.0.0.1", g.port), "GET", "/_ping")
    assert (r.status, r.body) == (200, b"OK")


def test_config_file(gateway_factory, dockerd, tmp_short):
    cfg = os.path.join(tmp_short, "dockermand.json")
    with open(cfg, "w") as f:
        json.dump({"listen": ["127.0.0.1:0"], "upstream": dockerd.url, "log_level": "info",
                   "max_connections": 7, "max_headers": 20}, f)
    g = gateway_factory(listen=(), args=["--config", cfg], expect_listeners=1)
    st = g.status()
    assert st["connections"]["max"] == 7
    assert dockerd.sock in st["upstream"]
    r = http_request(g.addr, "GET", "/_ping", [("X-H%d" % i, "v") for i in range(30)])
    assert r.status == 431


def _unix_ping(path) -> bool:
    try:
        r = http_request(path, "GET", "/_ping", timeout=2)
        return r.status == 200
    except (OSError, TimeoutError, ConnectionClosed):
        return False


def test_sighup_reloads_config_and_keeps_streams(gateway_factory, dockerd, docker_direct, busybox_image,
                                                 uniq, tmp_short):
    sock = os.path.join(tmp_short, "gw.sock")
    cfg = os.path.join(tmp_short, "dockermand.json")

    def write_cfg(level, max_conn):
        tmp = cfg + ".new"
        with open(tmp, "w") as f:
            json.dump({"listen": ["unix:" + sock], "upstream": dockerd.url, "log_level": level,
                       "max_connections": max_conn}, f)
        os.replace(tmp, cfg)

    write_cfg("error", 50)
    g = gateway_factory(listen=(), args=["--config", cfg], expect_listeners=0, wait=False)
    wait_until(lambda: _unix_ping(sock), 15, "the unix listener from the config file")
    quiet = uuid.uuid4().hex
    assert http_request(sock, "GET", "/containers/dmtest-%s/json" % quiet).status == 404

    events = HttpConn(sock, timeout=30)
    try:
        events.send(build_request("GET", "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"))
        head = events.read_head(timeout=15)
        assert head.status == 200

        write_cfg("info", 60)
        g.signal(signal.SIGHUP)

        # the new log level takes effect: request lines appear again
        deadline = time.monotonic() + 15
        while True:
            marker = uuid.uuid4().hex
            assert http_request(sock, "GET", "/containers/dmtest-%s/json" % marker).status == 404
            try:
                g.wait_for_line(re.escape(marker), 0.5)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise AssertionError("log level change not applied 15s after SIGHUP")
        assert quiet not in g.output(), "a request was logged at log_level error"
        assert json.loads(http_request(sock, "GET", "/_dockermand/status").body)["connections"]["max"] == 60
        assert g.alive()

        # the events stream opened before the reload still delivers
        name = uniq("hup")
        cid = docker_direct.out("create", "--name", name, busybox_image, "true")
        seen = b""
        end = time.monotonic() + 15
        while not (cid.encode() in seen and b'"create"' in seen):
            if time.monotonic() > end:
                pytest.fail("no create event on the pre-reload stream; got %r" % seen[-500:])
            piece = events.read_some(timeout=max(0.1, end - time.monotonic()))
            if not piece:
                pytest.fail("events stream closed by the reload; got %r" % seen[-500:])
            seen += piece
    finally:
        events.close()


def test_sigterm_exits_zero_and_closes_port(gateway_factory, dockerd):
    g = gateway_factory(upstream=dockerd.url)
    assert http_request(g.addr, "GET", "/_ping").status == 200
    idle = g.connect()
    assert idle.request("GET", "/_ping").status == 200  # an idle keep-alive connection
    g.signal(signal.SIGTERM)
    assert g.wait_exit(10) == 0
    assert _refused(g.addr), "port still accepting after exit"
    assert idle.wait_closed(2)
    idle.close()


def test_sigterm_finishes_in_flight_request(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--shutdown-grace", "20"], defaults=False)
    gate = standin.gate("term")
    with g.connect(timeout=30) as c:
        c.send(build_request("GET", "/containers/standin-gate-term/json"))
        standin.wait_for(lambda: any(q.behaviour == "gate-term" for q in standin.requests()), 5,
                         "in-flight request at the stand-in")
        g.signal(signal.SIGTERM)
        wait_until(lambda: _refused(g.addr), 5, "the listener to close after SIGTERM")
        assert g.alive(), "exited with a request in flight"
        gate.set()
        r = c.read_response(timeout=10)
        assert r.status == 200 and b"gate-term" in r.body
    assert g.wait_exit(10) == 0


def test_shutdown_grace_bounds_exit(gateway_factory, standin):
    g = gateway_factory(upstream=standin.url, args=["--shutdown-grace", "1"], defaults=False)
    with g.connect(timeout=30) as c:
        c.send(build_request("GET", "/containers/standin-hang/json"))
        standin.wait_for(lambda: any(q.behaviour == "hang" for q in standin.requests()), 5,
                         "hanging request at the stand-in")
        t0 = time.monotonic()
        g.signal(signal.SIGTERM)
        assert g.wait_exit(8) == 0
        elapsed = time.monotonic() - t0
        assert 0.5 <= elapsed < 6, "exited %.2fs after SIGTERM with --shutdown-grace 1" % elapsed
        assert c.wait_closed(3)


def test_unix_listener_with_docker_cli(gateway_factory, dockerd, docker_exe, docker_direct, tmp_short):
    sock = os.path.join(tmp_short, "gw.sock")
    g = gateway_factory(upstream=dockerd.url, listen=("unix:" + sock, "127.0.0.1:0"))
    assert {"kind": "unix", "path": sock} in g.listeners
    cli = DockerCLI(docker_exe, "unix://" + sock)
    assert cli.out("version", "--format", "{{.Server.Version}}") == \
        docker_direct.out("version", "--format", "{{.Server.Version}}")
    assert http_request(g.addr, "GET", "/_ping").body == b"OK"
    assert g.stop() == 0
    assert not os.path.exists(sock) or not _unix_ping(sock)


def _have_ipv6_loopback() -> bool:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _have_ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_listener(gateway_factory, dockerd, docker_exe, docker_direct):
    g = gateway_factory(upstream=dockerd.url, listen=("[::1]:0",))
    assert g.host == "::1"
    r = http_request(("::1", g.port), "GET", "/_ping")
    assert (r.status, r.body) == (200, b"OK")
    cli = DockerCLI(docker_exe, g.docker_host)
    assert cli.out("version", "--format", "{{.Server.Version}}") == \
        docker_direct.out("version", "--format", "{{.Server.Version}}")
