"""Authentication and roles end to end, with the private dockerd, the docker
CLI (a token per role through ``--config DIR`` / ``HttpHeaders``), docker-py,
our login sessions, the router's rpcd (a stand-in ``ubus``), dry-run mode,
the per-rule counters and one-time WebSocket tickets.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time

import pytest

import authlib
import helpers
from authlib import bearer, message
from helpers import HttpConn, build_request, websocket_accept

READ = authlib.new_token("read")
OP = authlib.new_token("op")
ADMIN = authlib.new_token("admin")
TOKENS = {"read": READ, "operator": OP, "admin": ADMIN}
USER, PASSWORD = "alice", "s3cret-passw0rd"


@pytest.fixture(scope="module")
def password_hash():
    return authlib.hash_password(PASSWORD)


@pytest.fixture(scope="module")
def cfg_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("authcfg")


@pytest.fixture(scope="module")
def auth_config_path(cfg_dir, password_hash):
    cfg = authlib.auth_config(tokens=TOKENS,
                              users=[{"name": USER, "password": password_hash, "role": "operator"}])
    return authlib.write_config(cfg_dir, cfg, "tokens.json")


@pytest.fixture
def gwa(gateway_factory, dockerd, auth_config_path):
    """A gateway with tokens for the three built-in roles and one user, in
    front of the private dockerd."""
    return authlib.start_gateway(gateway_factory, auth_config_path, dockerd.url)


@pytest.fixture
def clis(gwa, docker_exe, tmp_path):
    return {role: authlib.TokenCLI(docker_exe, gwa.docker_host, tok, tmp_path / ("cli-" + role))
            for role, tok in list(TOKENS.items()) + [("none", None)]}


def _exists(api, name) -> bool:
    return any(("/" + name) in (c.get("Names") or []) for c in api.containers(all=True))


# ---------------------------------------------------------------------------
# tokens and the docker CLI


def test_hash_token_prints_the_sha256():
    tok = authlib.new_token("x")
    out = subprocess.run([helpers.gateway_binary(), "--hash-token", tok], capture_output=True, timeout=10)
    assert out.returncode == 0, out
    assert out.stdout.decode().strip() == authlib.sha256_hex(tok)


def test_whoami_names_the_token_and_role(gwa):
    for role, tok in TOKENS.items():
        r = authlib.whoami(gwa, bearer(tok))
        assert r.status == 200, r
        assert r.json() == {"name": "token:" + role, "role": role}
    r = authlib.whoami(gwa, [])
    assert r.status == 401, r
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer")


def test_cli_without_token_is_refused(gwa, clis):
    mark = authlib.log_mark(gwa)
    err = clis["none"].fails("ps")
    assert "authentication required" in err, err
    authlib.wait_deny(gwa, mark, rule="auth", status=401, principal="-")


def test_read_token_can_list_and_inspect_only(gwa, clis, busybox_image, running_container, api_direct):
    cli = clis["read"]
    ps = cli.out("ps", "--no-trunc", "--format", "{{.ID}}")
    assert running_container in ps.split(), ps
    assert cli.out("inspect", "--format", "{{.State.Running}}", running_container) == "true"
    assert cli.out("images", "-q", busybox_image)
    cli.run("logs", running_container)  # logs class is granted too

    for args, route in [
        (("cp", running_container + ":/bin/busybox", "-"), "/containers/{name*}/archive"),
        (("export", running_container), "/containers/{name*}/export"),
        (("exec", running_container, "true"), "/containers/{name*}/exec"),
        (("run", "--rm", busybox_image, "true"), "/containers/create"),
        (("stop", "-t", "0", running_container), "/containers/{name*}/stop"),
    ]:
        mark = authlib.log_mark(gwa)
        err = cli.fails(*args)
        d = authlib.wait_deny(gwa, mark, rule="role", route=route)
        assert d["principal"] == "token:read" and d["status"] == 403, d
        if args[0] != "cp":  # cp starts with HEAD, whose reply has no message to show
            assert "role read may not use" in err, (args, err)
    assert api_direct.inspect_container(running_container)["State"]["Running"] is True


def test_operator_can_run_but_not_escape(gwa, clis, busybox_image, api_direct, uniq):
    cli = clis["operator"]
    before = authlib.denied_counts(gwa, OP)
    assert cli.out("run", "--rm", busybox_image, "echo", "op-ok") == "op-ok"

    cases = [
        (["--privileged"], "privileged", "HostConfig.Privileged is not allowed"),
        (["-v", "/:/host"], "host_path", 'host path "/" is not an entry directly inside an allowed bind directory'),
        (["--cap-add", "SYS_ADMIN"], "cap_add", "SYS_ADMIN is not allowed"),
        (["--pid", "host"], "host_namespace", 'HostConfig.PidMode "host" is not allowed'),
        (["--privileged"], "privileged", "HostConfig.Privileged"),
    ]
    for flags, rule, text in cases:
        name = uniq("esc")
        mark = authlib.log_mark(gwa)
        err = cli.fails("run", "--rm", "--name", name, *flags, busybox_image, "true")
        assert "denied by rule %s: " % rule in err and text in err, (flags, err)
        d = authlib.wait_deny(gwa, mark, rule=rule)
        assert (d["principal"], d["route"], d["status"]) == ("token:operator", "/containers/create", 403), d
        assert not _exists(api_direct, name), "a refused container exists: %s" % name

    after = authlib.denied_counts(gwa, OP)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    assert {k: v for k, v in delta.items() if v} == {"privileged": 2, "host_path": 1, "cap_add": 1,
                                                     "host_namespace": 1}, delta


def test_operator_exec_and_cp(gwa, clis, running_container, tmp_path):
    cli = clis["operator"]
    assert cli.out("exec", running_container, "echo", "in-exec") == "in-exec"
    src = tmp_path / "f.txt"
    src.write_bytes(b"copied through the gateway\n")
    cli.run("cp", str(src), running_container + ":/tmp/f.txt")
    assert cli.out("exec", running_container, "cat", "/tmp/f.txt") == "copied through the gateway"
    mark = authlib.log_mark(gwa)
    err = cli.fails("exec", "--privileged", running_container, "true")
    assert "denied by rule privileged: Privileged is not allowed" in err, err
    authlib.wait_deny(gwa, mark, rule="privileged", field="Privileged", principal="token:operator")


def test_admin_is_not_checked(gwa, clis, busybox_image, api_direct, uniq):
    cli = clis["admin"]
    # `docker run --privileged` cannot start inside this sandbox (runc cannot
    # apply the capabilities), so create is what proves the policy let it by.
    name = uniq("adm")
    cid = cli.out("create", "--privileged", "-v", "/:/host:ro", "--name", name, busybox_image, "true")
    try:
        hc = api_direct.inspect_container(cid)["HostConfig"]
        assert hc["Privileged"] is True
        assert "/:/host:ro" in (hc.get("Binds") or []), hc.get("Binds")
    finally:
        cli.run("rm", "-f", cid)
    assert not _exists(api_direct, name)


def test_dockerpy_with_bearer_headers(gwa, busybox_image, uniq, api_direct):
    import docker

    def client(tok):
        c = docker.DockerClient(base_url=gwa.docker_host, version="1.41", timeout=120)
        c.api.headers["Authorization"] = "Bearer " + tok
        return c

    read, op = client(READ), client(OP)
    try:
        assert read.ping() is True
        assert isinstance(read.containers.list(all=True), list)
        with pytest.raises(docker.errors.APIError) as ei:
            read.containers.create(busybox_image, "true", name=uniq("pyr"))
        assert ei.value.status_code == 403 and "role read may not use" in str(ei.value.explanation)

        assert op.containers.run(busybox_image, ["echo", "py-ok"], remove=True) == b"py-ok\n"
        name = uniq("pyp")
        with pytest.raises(docker.errors.APIError) as ei:
            op.containers.create(busybox_image, "true", name=name, privileged=True)
        assert ei.value.status_code == 403
        assert "denied by rule privileged" in str(ei.value.explanation), ei.value.explanation
        assert not _exists(api_direct, name)

        anon = docker.DockerClient(base_url=gwa.docker_host, version="1.41", timeout=30)
        try:
            with pytest.raises(docker.errors.APIError) as ei:
                anon.containers.list()
            assert ei.value.status_code == 401
        finally:
            anon.close()
    finally:
        read.close()
        op.close()


# ---------------------------------------------------------------------------
# login sessions


def _host(gw):
    return "127.0.0.1:%d" % gw.port


def _req(gw, method, target, headers=(), body=b""):
    return authlib.request(gw, method, target, list(headers), body, host=_host(gw))


def _login(gw, password, headers=()):
    body = json.dumps({"username": USER, "password": password}).encode()
    return _req(gw, "POST", "/_dockermand/login", [("Content-Type", "application/json")] + list(headers), body)


def test_login_failures_are_rate_limited(gwa):
    for i in range(5):
        r = _login(gwa, "wrong-%d" % i)
        assert r.status == 401, (i, r)
        assert "wrong user name or password" in message(r)
        assert not r.header_all("Set-Cookie"), r
    # the window is closed now, even for the right password
    mark = authlib.log_mark(gwa)
    r = _login(gwa, PASSWORD)
    assert r.status == 429, r
    assert not r.header_all("Set-Cookie"), r
    authlib.wait_deny(gwa, mark, rule="login_rate", status=429)
    assert _login(gwa, "wrong-again").status == 429
    # tokens are not affected by the login limit
    assert authlib.whoami(gwa, bearer(OP)).status == 200


def test_login_cookie_session(gwa, running_container, api_direct):
    gw = gwa
    r = _login(gw, "nope")
    assert r.status == 401
    r = _req(gw, "POST", "/_dockermand/login", [("Content-Type", "application/json")],
             json.dumps({"username": "mallory", "password": PASSWORD}).encode())
    assert r.status == 401, r

    r = _login(gw, PASSWORD)
    assert r.status == 200, r
    reply = r.json()
    assert {k: reply[k] for k in ("name", "role")} == {"name": "user:" + USER, "role": "operator"}, reply
    set_cookie = r.header("Set-Cookie") or ""
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in set_cookie, set_cookie
    cookie = authlib.session_headers(r)
    # Browsers send a cookie to every port of its host: the cookie alone,
    # or with another session's binding, is no session.
    assert _req(gw, "GET", "/_dockermand/whoami", cookie[:1]).status == 401
    other = authlib.session_headers(_login(gw, PASSWORD))
    assert _req(gw, "GET", "/_dockermand/whoami", [cookie[0], other[1]]).status == 401
    assert _req(gw, "GET", "/_dockermand/whoami", [other[0], cookie[1]]).status == 401

    r = _req(gw, "GET", "/_dockermand/whoami", cookie)
    assert (r.status, r.json()) == (200, {"name": "user:" + USER, "role": "operator"}), r
    r = _req(gw, "GET", "/containers/json", cookie)
    assert r.status == 200 and running_container in [c["Id"] for c in r.json()], r

    # state-changing with the cookie: the browser's Origin decides
    mark = authlib.log_mark(gw)
    r = _req(gw, "POST", "/containers/%s/pause" % running_container, cookie)
    assert r.status == 403 and "cross-site" in message(r), r
    authlib.wait_deny(gw, mark, rule="csrf", principal="user:" + USER)
    r = _req(gw, "POST", "/containers/%s/pause" % running_container,
             cookie + [("Origin", "http://evil.example")])
    assert r.status == 403, r
    assert api_direct.inspect_container(running_container)["State"]["Paused"] is False

    same_origin = [("Origin", "http://" + _host(gw))]
    r = _req(gw, "POST", "/containers/%s/pause" % running_container, cookie + same_origin)
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Origin") == "http://" + _host(gw)
    assert api_direct.inspect_container(running_container)["State"]["Paused"] is True
    r = _req(gw, "POST", "/containers/%s/unpause" % running_container, cookie + same_origin)
    assert r.status == 204, r

    # logout needs the Origin too, then the cookie is dead
    assert _req(gw, "POST", "/_dockermand/logout", cookie).status == 403
    assert _req(gw, "GET", "/_dockermand/whoami", cookie).status == 200
    r = _req(gw, "POST", "/_dockermand/logout", cookie + same_origin)
    assert r.status == 200, r
    assert "Max-Age=0" in (r.header("Set-Cookie") or ""), r
    r = _req(gw, "GET", "/_dockermand/whoami", cookie)
    assert r.status == 401, r
    assert _req(gw, "GET", "/containers/json", cookie).status == 401


def test_login_is_not_a_docker_route_and_needs_json(gwa):
    r = _req(gwa, "POST", "/_dockermand/login", [("Content-Type", "application/x-www-form-urlencoded")],
             ("username=%s&password=%s" % (USER, PASSWORD)).encode())
    assert r.status == 401, r
    r = _req(gwa, "GET", "/_dockermand/login")
    assert r.status == 200 and json.loads(r.body) == {"methods": ["password", "token"]}, r


def test_login_session_expires(gateway_factory, standin, tmp_path, password_hash):
    cfg = {"auth": {"users": [{"name": USER, "password": password_hash, "role": "read"}],
                    "session_ttl_secs": 2}}
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg, "ttl.json"), standin.url)
    r = _login(gw, PASSWORD)
    assert r.status == 200, r
    assert "Max-Age=2" in (r.header("Set-Cookie") or ""), r
    cookie = authlib.session_headers(r)
    assert _req(gw, "GET", "/_dockermand/whoami", cookie).status == 200
    helpers.wait_until(lambda: _req(gw, "GET", "/_dockermand/whoami", cookie).status == 401, 10,
                       "the session to expire")
    assert _req(gw, "GET", "/containers/json", cookie).status == 401
    assert standin.connection_count() == 0


# ---------------------------------------------------------------------------
# rpcd sessions (stand-in ubus)


@pytest.fixture
def ubus(tmp_path):
    return authlib.Ubus(tmp_path / "ubus")


def _rpcd_gateway(gateway_factory, upstream, ubus, tmp_path, acl_object=None, tokens=None):
    rpcd = {"enabled": True, "ubus": ubus.exe}
    if acl_object:
        rpcd["acl_object"] = acl_object
    cfg = authlib.auth_config(tokens=tokens, rpcd=rpcd)
    path = authlib.write_config(tmp_path, cfg, "rpcd.json")
    return authlib.start_gateway(gateway_factory, path, upstream, env=ubus.env)


def test_rpcd_write_session_is_operator_and_cached(gateway_factory, dockerd, docker_exe, busybox_image, ubus,
                                                   tmp_path):
    gw = _rpcd_gateway(gateway_factory, dockerd.url, ubus, tmp_path)
    sid = ubus.add(read=True, write=True)
    r = authlib.whoami(gw, bearer(sid))
    assert r.status == 200, r
    assert r.json() == {"name": "rpcd:" + sid[:8], "role": "operator"}
    calls = ubus.calls(sid)
    assert [(c["scope"], c["object"], c["function"]) for c in calls] == [
        ("access-group", "luci-app-dockerman", "write")], calls
    assert calls[0]["argv"][:3] == ["call", "session", "access"]

    cli = authlib.TokenCLI(docker_exe, gw.docker_host, sid, tmp_path / "cli-rpcd-w")
    assert cli.out("run", "--rm", busybox_image, "echo", "rpcd-ok") == "rpcd-ok"
    err = cli.fails("run", "--rm", "--privileged", busybox_image, "true")
    assert "denied by rule privileged" in err, err
    # every request above came within the 30 s cache: ubus was asked once
    assert len(ubus.calls(sid)) == 1, ubus.calls(sid)


def test_rpcd_read_session_is_read(gateway_factory, dockerd, docker_exe, busybox_image, ubus, tmp_path,
                                   running_container):
    gw = _rpcd_gateway(gateway_factory, dockerd.url, ubus, tmp_path)
    sid = ubus.add(read=True, write=False)
    r = authlib.whoami(gw, bearer(sid))
    assert r.status == 200 and r.json()["role"] == "read", r
    assert [c["function"] for c in ubus.calls(sid)] == ["write", "read"]
    cli = authlib.TokenCLI(docker_exe, gw.docker_host, sid, tmp_path / "cli-rpcd-r")
    assert running_container in cli.out("ps", "-q", "--no-trunc").split()
    err = cli.fails("run", "--rm", busybox_image, "true")
    assert "role read may not use" in err, err
    assert len(ubus.calls(sid)) == 2, ubus.calls(sid)
    assert _try_wait(lambda: not _children(gw.pid), 5), "ubus children left: %r" % _children(gw.pid)


def test_rpcd_unknown_or_powerless_sessions_are_refused(gateway_factory, standin, ubus, tmp_path):
    gw = _rpcd_gateway(gateway_factory, standin.url, ubus, tmp_path)
    unknown = authlib.new_rpcd_session()
    r = authlib.request(gw, "GET", "/containers/json", bearer(unknown))
    assert r.status == 401, r
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer")
    calls = ubus.calls(unknown)
    assert [(c["function"], c["exit"]) for c in calls] == [("write", 4), ("read", 4)], calls

    powerless = ubus.add(read=False, write=False)
    assert authlib.request(gw, "GET", "/containers/json", bearer(powerless)).status == 401
    assert [c["function"] for c in ubus.calls(powerless)] == ["write", "read"]

    # a grant for another ACL object does not count
    other = ubus.add(read=True, write=True, object="luci-app-other")
    assert authlib.request(gw, "GET", "/containers/json", bearer(other)).status == 401

    # not 32 hex digits: not an rpcd session, ubus is not even asked
    n = len(ubus.calls())
    for bogus in ["g" * 32, "a" * 31, "a" * 33, "../../etc/passwd"]:
        assert authlib.request(gw, "GET", "/containers/json", bearer(bogus)).status == 401
    assert len(ubus.calls()) == n
    assert standin.connection_count() == 0


def test_rpcd_acl_object_and_configured_token_precedence(gateway_factory, standin, ubus, tmp_path):
    hex_token = authlib.new_rpcd_session()  # a configured token that looks like an rpcd id
    gw = _rpcd_gateway(gateway_factory, standin.url, ubus, tmp_path, acl_object="luci-app-custom",
                       tokens={"admin": hex_token})
    r = authlib.whoami(gw, bearer(hex_token))
    assert r.json() == {"name": "token:admin", "role": "admin"}, r
    assert ubus.calls() == []
    sid = ubus.add(read=True, write=True, object="luci-app-custom")
    r = authlib.whoami(gw, bearer(sid))
    assert r.status == 200 and r.json()["role"] == "operator", r
    assert [c["object"] for c in ubus.calls(sid)] == ["luci-app-custom"]


def test_rpcd_check_does_not_block_other_clients(gateway_factory, standin, ubus, tmp_path):
    """ubus runs as a child watched by the event loop: while one check hangs,
    other clients are served, and the waiting request completes afterwards."""
    gw = _rpcd_gateway(gateway_factory, standin.url, ubus, tmp_path, tokens={"read": READ})
    sid = ubus.add(read=True, write=True, hang=True)
    with HttpConn(gw.addr, 30) as slow:
        slow.send(build_request("GET", "/_dockermand/whoami", bearer(sid)))
        helpers.wait_until(lambda: os.path.exists(ubus.release_path + ".waiting"), 10, "ubus to be asked")
        t0 = time.monotonic()
        for _ in range(3):
            r = authlib.whoami(gw, bearer(READ))
            assert r.status == 200 and r.json()["role"] == "read", r
        assert time.monotonic() - t0 < 5, "other clients waited for ubus"
        assert _pending(slow) is None, "answered before ubus did"
        ubus.release()
        r = slow.read_response(timeout=15)
    assert r.status == 200 and r.json() == {"name": "rpcd:" + sid[:8], "role": "operator"}, r
    assert [c["function"] for c in ubus.calls(sid)] == ["write"]


def _pending(conn):
    """What the peer already sent (b'' for a close), or None if nothing yet."""
    conn.sock.setblocking(False)
    try:
        return conn.sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return None
    finally:
        conn.sock.settimeout(conn.timeout)


def _processes_running(exe: str) -> list:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a == exe.encode() for a in argv):
            found.append(int(pid))
    return found


def _children(pid: int) -> list:
    """(pid, state) of the processes whose parent is ``pid``, zombies included."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % p) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(p), fields[0]))
    return out


def _try_wait(predicate, timeout):
    try:
        helpers.wait_until(predicate, timeout)
        return True
    except AssertionError:
        return False


def test_rpcd_timeout_is_answered_and_ubus_is_ended(gateway_factory, standin, ubus, tmp_path):
    """A stuck rpcd: after the header timeout the client gets a clear error
    (not a silently dropped connection), and the ubus child is killed and
    reaped (no process or zombie left behind)."""
    rpcd = {"enabled": True, "ubus": ubus.exe}
    path = authlib.write_config(tmp_path, authlib.auth_config(rpcd=rpcd), "hang.json")
    gw = authlib.start_gateway(gateway_factory, path, standin.url, args=["--header-timeout", "1"], env=ubus.env)
    sid = ubus.add(read=True, write=True, hang=True)
    with HttpConn(gw.addr, 15) as c:
        c.send(build_request("GET", "/containers/json", bearer(sid)))
        helpers.wait_until(lambda: os.path.exists(ubus.release_path + ".waiting"), 10, "ubus to be asked")
        assert _processes_running(ubus.exe), "the stand-in ubus is not running"
        try:
            r = c.read_response(timeout=10)
        except helpers.ConnectionClosed:
            r = None
    killed = _try_wait(lambda: not _processes_running(ubus.exe), 5)
    ubus.release()  # a child the gateway left running ends now anyway
    reaped = _try_wait(lambda: not _children(gw.pid), 5)
    leftover = _children(gw.pid)
    assert standin.connection_count() == 0
    assert r is not None, "connection closed without a reply while rpcd was stuck"
    assert r.status in (503, 504), r
    assert killed, "the stuck ubus was still running 5 s after the request gave up"
    assert reaped, "children of the gateway left behind: %r" % leftover


def test_rpcd_without_ubus_is_unavailable(gateway_factory, standin, tmp_path):
    rpcd = {"enabled": True, "ubus": str(tmp_path / "no-such-ubus")}
    path = authlib.write_config(tmp_path, authlib.auth_config(rpcd=rpcd), "noubus.json")
    gw = authlib.start_gateway(gateway_factory, path, standin.url)
    r = authlib.request(gw, "GET", "/containers/json", bearer(authlib.new_rpcd_session()))
    assert r.status == 503, r
    assert "session service" in message(r)
    assert standin.connection_count() == 0


# ---------------------------------------------------------------------------
# dry-run


def test_dry_run_forwards_and_logs_would_deny(gateway_factory, standin, tmp_path):
    cfg = authlib.auth_config(tokens=TOKENS)
    path = authlib.write_config(tmp_path, cfg, "dry.json")
    gw = authlib.start_gateway(gateway_factory, path, standin.url, args=["--dry-run"])
    body = b'{"Image":"busybox","HostConfig":{"Privileged":true,"Binds":["/:/host"]}}'
    mark = authlib.log_mark(gw)
    r = authlib.request(gw, "POST", "/containers/create", bearer(OP) + [("Content-Type", "application/json")],
                        body)
    assert r.status == 200, r  # the stand-in's answer
    (up,) = standin.wait_for(lambda: standin.requests() or None, 5, "the forwarded create")
    assert bytes(up.body) == body
    # the first rule the body breaks is the one logged: Binds comes before Privileged
    d = authlib.wait_deny(gw, mark, rule="host_path", field="HostConfig.Binds")
    assert (d["kind"], d["principal"], d["status"]) == ("would deny", "token:operator", 403), d

    # role denials are policy too; authentication failures never pass
    mark = authlib.log_mark(gw)
    r = authlib.request(gw, "POST", "/containers/abc/start", bearer(READ))
    assert r.status == 200, r
    d = authlib.wait_deny(gw, mark, rule="role")
    assert d["kind"] == "would deny", d
    r = authlib.request(gw, "POST", "/containers/abc/start", bearer("wrong"))
    assert r.status == 401, r
    d = authlib.wait_deny(gw, mark, rule="auth")
    assert d["kind"] == "deny", d
    assert [q.target for q in standin.requests()] == ["/containers/create", "/containers/abc/start"]

    pol = authlib.status(gw, OP)["policy"]
    assert pol["dry_run"] is True
    assert pol["denied"].get("host_path") == 1 and pol["denied"].get("role") == 1, pol


def test_dry_run_does_not_wave_through_cross_site_requests(gateway_factory, standin, tmp_path, password_hash):
    """Dry-run relaxes the body policy and roles, not who is asking: a forged
    cross-site request rides on the victim's cookie, so it is an
    authentication failure like a missing token, and a foreign Host is DNS
    rebinding.  Neither may reach dockerd."""
    cfg = {"auth": {"users": [{"name": USER, "password": password_hash, "role": "operator"}]}, "dry_run": True}
    gw = authlib.start_gateway(gateway_factory, authlib.write_config(tmp_path, cfg, "drycsrf.json"), standin.url)
    r = _login(gw, PASSWORD)
    assert r.status == 200, r
    cookie = authlib.session_headers(r)
    r = authlib.request(gw, "GET", "/containers/json", cookie, host="evil.example")
    assert r.status == 403, r
    for origin in ([], [("Origin", "https://evil.example")]):
        r = _req(gw, "POST", "/containers/abc/stop", cookie + origin)
        assert r.status == 403 and "cross-site" in message(r), r
    assert standin.connection_count() == 0, [q.raw_head for q in standin.requests()]


def test_dry_run_with_dockerd(gateway_factory, dockerd, docker_exe, busybox_image, api_direct, auth_config_path,
                              tmp_path, uniq):
    gw = authlib.start_gateway(gateway_factory, auth_config_path, dockerd.url, args=["--dry-run"])
    cli = authlib.TokenCLI(docker_exe, gw.docker_host, OP, tmp_path / "cli-dry")
    name = uniq("dry")
    mark = authlib.log_mark(gw)
    cid = cli.out("create", "--privileged", "--name", name, busybox_image, "true")
    assert api_direct.inspect_container(cid)["HostConfig"]["Privileged"] is True
    d = authlib.wait_deny(gw, mark, rule="privileged", route="/containers/create")
    assert d["kind"] == "would deny"
    cli.run("rm", cid)


# ---------------------------------------------------------------------------
# one-time WebSocket tickets


def _ws_attach(gw, cid, query):
    key = base64.b64encode(os.urandom(16)).decode()
    with HttpConn(gw.addr, 30) as c:
        c.send(build_request("GET", "/containers/%s/attach/ws?%s" % (cid, query),
                             authlib.ws_headers(key) + [("Origin", "http://localhost")]))
        r = c.read_head(timeout=20)
        if r.status != 101:
            c.read_body(r, "GET", 10)
        return r, key


def _ticket(gw, token):
    r = authlib.request(gw, "POST", "/_dockermand/ticket", bearer(token))
    assert r.status == 200, r
    j = r.json()
    assert j["expires_in"] == 30 and len(j["ticket"]) >= 32, j
    return j["ticket"]


def test_ticket_opens_one_websocket(gwa, running_container):
    ticket = _ticket(gwa, OP)
    assert _ticket(gwa, OP) != ticket
    r, key = _ws_attach(gwa, running_container, "ticket=%s&stream=1&stdout=1" % ticket)
    assert r.status == 101, r
    assert r.header("Sec-WebSocket-Accept") == websocket_accept(key)

    mark = authlib.log_mark(gwa)
    r, _ = _ws_attach(gwa, running_container, "ticket=%s&stream=1&stdout=1" % ticket)
    assert r.status == 401, r
    authlib.wait_deny(gwa, mark, rule="auth", status=401)


def test_websocket_token_subprotocol(gwa, running_container):
    """A browser cannot set Authorization on a WebSocket, so the token may come
    as the subprotocol ``dockermand.token.TOKEN``; a browser fails the
    handshake unless the server selects the protocol it offered."""
    proto = "dockermand.token." + OP
    key = base64.b64encode(os.urandom(16)).decode()
    with HttpConn(gwa.addr, 30) as c:
        c.send(build_request("GET", "/containers/%s/attach/ws?stream=1&stdout=1" % running_container,
                             authlib.ws_headers(key) + [("Origin", "http://localhost"),
                                                        ("Sec-WebSocket-Protocol", proto)]))
        r = c.read_head(timeout=20)
    assert r.status == 101, r
    assert r.header("Sec-WebSocket-Accept") == websocket_accept(key)
    assert r.header("Sec-WebSocket-Protocol") == proto, r


def test_ticket_is_only_for_websockets_and_keeps_the_role(gwa, running_container):
    t = _ticket(gwa, OP)
    # neither a bearer token nor a query credential for plain requests
    assert authlib.request(gwa, "GET", "/containers/json", bearer(t)).status == 401
    assert authlib.request(gwa, "GET", "/containers/json?ticket=" + t).status == 401
    # ... and it was not used up by those
    r, _ = _ws_attach(gwa, running_container, "ticket=%s&stream=1&stdout=1" % t)
    assert r.status == 101, r

    rt = _ticket(gwa, READ)
    r, _ = _ws_attach(gwa, running_container, "ticket=%s&stream=1&stdout=1" % rt)
    assert r.status == 403 and "role read may not use" in message(r), r
    assert authlib.request(gwa, "POST", "/_dockermand/ticket").status == 401
