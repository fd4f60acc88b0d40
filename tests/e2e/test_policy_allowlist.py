"""The allow-list body policy (issue 10) end to end, against the real dockerd.

One gateway for the module, with tokens for ``operator``, ``admin`` and a
custom ``sysop`` role (every class, ``system`` included, bodies checked) and
one fresh bind directory, sits in front of the private dockerd.  Every attack
family of the issue is sent through it and must

* be refused with the expected status, a Docker-style ``{"message": ...}``
  (``denied by rule RULE: ...`` for every policy refusal) and one audit line naming
  the rule and the field (``deny ... rule=RULE field=FIELD``),
* leave dockerd untouched, which the tests check on dockerd's own socket:
  no container, volume or image appeared, nothing started, nothing changed.

Where it matters the tests also show, directly against dockerd, that the
door the gateway closes is real (an empty ``MaskedPaths``, the deprecated
top-level host config, the symlink race on a bind path) and clean up after.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile

import pytest

import authlib
import helpers
from authlib import bearer, message
from helpers import Gateway, HttpConn, tar_bytes, wait_until

OP = authlib.new_token("op")
ADMIN = authlib.new_token("admin")
SYSOP = authlib.new_token("sysop")
ALL_CLASSES = ["read", "logs", "files", "exec", "write", "build", "system"]
IMAGE = "dmtest/busybox:latest"
PREFIXES = ["", "/v1.41", "/v1.24"]


class Env:
    def __init__(self, gw: Gateway, tmp: str, bind: str, dockerd):
        self.gw = gw
        self.tmp = tmp
        self.bind = bind
        self.sock = dockerd.sock

    # -- through the gateway --------------------------------------------------------
    def req(self, method, target, body=None, token=OP, headers=(), ctype="application/json",
            timeout=60.0) -> helpers.HttpResponse:
        hs = bearer(token) if token else []
        if body is None:
            data = b""
        else:
            data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str)
                                                         else json.dumps(body).encode())
            if ctype:
                hs.append(("Content-Type", ctype))
        return authlib.request(self.gw, method, target, hs + list(headers), data, timeout=timeout)

    # -- on dockerd's own socket --------------------------------------------------------
    def direct(self, method, target, body=None, timeout=60.0) -> helpers.HttpResponse:
        hs, data = [], b""
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hs.append(("Content-Type", "application/json"))
        with HttpConn(self.sock, timeout) as c:
            return c.request(method, target, hs, data, timeout=timeout)

    def inspect(self, ident) -> dict:
        r = self.direct("GET", "/containers/%s/json" % ident)
        assert r.status == 200, r
        return r.json()

    def names(self) -> set:
        r = self.direct("GET", "/containers/json?all=1")
        assert r.status == 200, r
        return {n.lstrip("/") for c in r.json() for n in (c.get("Names") or [])}

    def volumes(self) -> set:
        r = self.direct("GET", "/volumes")
        assert r.status == 200, r
        return {v["Name"] for v in (r.json().get("Volumes") or [])}

    def create_direct(self, name, cmd=("sleep", "100000"), **host_config) -> str:
        body = {"Image": IMAGE, "Cmd": list(cmd), "HostConfig": host_config}
        r = self.direct("POST", "/containers/create?name=" + name, body)
        assert r.status == 201, r
        return r.json()["Id"]

    def start_direct(self, ident):
        r = self.direct("POST", "/containers/%s/start" % ident)
        assert r.status == 204, r

    def exec_direct(self, ident, *cmd) -> int:
        r = self.direct("POST", "/containers/%s/exec" % ident, {"Cmd": list(cmd)})
        assert r.status == 201, r
        eid = r.json()["Id"]
        r = self.direct("POST", "/exec/%s/start" % eid, {"Detach": True})
        assert r.status == 200, r

        def finished():
            j = self.direct("GET", "/exec/%s/json" % eid).json()
            return None if j["Running"] or j["ExitCode"] is None else j

        return wait_until(finished, 30, "exec %r to finish" % (cmd,))["ExitCode"]

    def wait_exit(self, ident) -> int:
        r = self.direct("POST", "/containers/%s/wait" % ident)
        assert r.status == 200, r
        return r.json()["StatusCode"]

    def logs(self, ident) -> bytes:
        r = self.direct("GET", "/containers/%s/logs?stdout=1&stderr=1" % ident)
        assert r.status == 200, r
        return helpers.demux_frames(r.body)[1]

    # -- checks ------------------------------------------------------------------------------
    def refused(self, r, mark, status, rule, field, text=None, principal="token:operator",
                body_rule=True) -> str:
        """The refusal's status and message, and its audit line with rule and field."""
        assert r.status == status, "expected %d (%s %s), got %r" % (status, rule, field, r)
        assert r.header("Server") == "dockermand", r
        m = message(r)
        if body_rule:
            assert m.startswith("denied by rule %s: " % rule), m
        if text:
            assert text in m, (text, m)
        d = authlib.wait_deny(self.gw, mark, rule=rule, field=field, status=status)
        assert (d["kind"], d["principal"]) == ("deny", principal), d
        return m

    def mark(self) -> int:
        return authlib.log_mark(self.gw)


@pytest.fixture(scope="module")
def al(dockerd, busybox_image):
    tmp = tempfile.mkdtemp(prefix="dmal", dir="/tmp")
    bind = os.path.join(tmp, "binds")
    os.makedirs(bind)
    cfg = authlib.auth_config(
        tokens={"operator": OP, "admin": ADMIN, "sysop": SYSOP},
        policy={"bind_dirs": [bind]},
        roles={"sysop": {"classes": ALL_CLASSES}},
    )
    path = authlib.write_config(tmp, cfg)
    gw = Gateway(["--listen", "127.0.0.1:0", "--upstream", dockerd.url, "--shutdown-grace", "2",
                  "--config", path])
    try:
        yield Env(gw, tmp, bind, dockerd)
    finally:
        try:
            rc = gw.stop(15)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    assert rc == 0, "dockermand exited %s on SIGTERM\n%s" % (rc, gw.output()[-3000:])


@pytest.fixture
def name(uniq):
    return lambda: uniq("al")


def hc(**host_config) -> dict:
    return {"Image": IMAGE, "Cmd": ["true"], "HostConfig": host_config}


# ---------------------------------------------------------------------------
# 1. API version prefixes


def test_old_api_version_start_with_host_config_is_refused_for_every_role(al, name):
    """Before API 1.24 dockerd took a whole host config from start's body."""
    x = name()
    cid = al.create_direct(x)
    before = al.inspect(cid)["HostConfig"]
    body = {"Binds": ["/:/host"], "PidMode": "host", "Privileged": True}
    for token, principal in ((OP, "token:operator"), (ADMIN, "token:admin")):
        mark = al.mark()
        r = al.req("POST", "/v1.23/containers/%s/start" % x, body, token=token)
        al.refused(r, mark, 400, "path", "path", "API versions below 1.24 are not supported",
                   principal=principal, body_rule=False)
        after = al.inspect(cid)
        assert after["State"]["Running"] is False, after["State"]
        assert after["HostConfig"] == before
    for bad in ("/v./info", "/v1..24/info", "/v1.24./info"):
        mark = al.mark()
        r = al.req("GET", bad, token=ADMIN)
        al.refused(r, mark, 400, "path", "path", "invalid API version", principal="token:admin",
                   body_rule=False)
    # the oldest version let through starts it, without a body
    r = al.req("POST", "/v1.24/containers/%s/start" % x)
    assert r.status == 204, r
    assert al.inspect(cid)["State"]["Running"] is True
    assert al.inspect(cid)["HostConfig"] == before


# ---------------------------------------------------------------------------
# 2. start bodies


def test_start_with_any_body_is_refused(al, name):
    """Any body on start (JSON, chunked, even an empty chunked one) is refused
    for checked roles; an empty Content-Length is no body."""
    x = name()
    cid = al.create_direct(x)
    sends = [
        ("json", dict(body="{}")),
        ("chunked", dict(body=b"2\r\n{}\r\n0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")])),
        ("chunked-empty", dict(body=b"0\r\n\r\n", headers=[("Transfer-Encoding", "chunked")])),
        ("host-config", dict(body={"Privileged": True, "Binds": ["/:/host"]})),
    ]
    for what, kw in sends:
        mark = al.mark()
        r = al.req("POST", "/containers/%s/start" % x, **kw)
        al.refused(r, mark, 403, "start_body", "body", "must not carry a body")
        assert al.inspect(cid)["State"]["Running"] is False, what
    r = al.req("POST", "/containers/%s/start" % x, headers=[("Content-Length", "0")])
    assert r.status == 204, r
    assert al.inspect(cid)["State"]["Running"] is True


# ---------------------------------------------------------------------------
# 3. the allow-list itself


def test_unknown_field_is_refused_unless_at_zero_value(al, name):
    """A field the table does not list passes only at Go's zero value."""
    for value, field in [(1, "HostConfig.FutureField"), ({"x": True}, "HostConfig.FutureField"),
                         ("x", "HostConfig.FutureField")]:
        n = name()
        mark = al.mark()
        r = al.req("POST", "/containers/create?name=" + n, hc(FutureField=value))
        al.refused(r, mark, 403, "not_allowed", field, field + " is not on the policy's allow-list")
        assert n not in al.names()
    mark = al.mark()
    n = name()
    r = al.req("POST", "/containers/create?name=" + n, {"Image": IMAGE, "FutureTopLevel": [1]})
    al.refused(r, mark, 403, "not_allowed", "FutureTopLevel", "FutureTopLevel")
    assert n not in al.names()
    for zero in (0, "", False, None, [], {}, {"a": {"b": 0}}):
        n = name()
        r = al.req("POST", "/containers/create?name=" + n, hc(FutureField=zero))
        assert r.status == 201, (zero, r)
        assert n in al.names()


def test_empty_masked_or_readonly_paths_are_refused(al, name):
    """``[]`` is the API form of ``systempaths=unconfined``: only absent or null."""
    for field in ("MaskedPaths", "ReadonlyPaths"):
        for value in ([], ["/proc/kcore"]):
            n = name()
            mark = al.mark()
            r = al.req("POST", "/containers/create?name=" + n, hc(**{field: value}))
            al.refused(r, mark, 403, "system_paths", "HostConfig." + field, "HostConfig." + field)
            assert n not in al.names()
    n = name()
    r = al.req("POST", "/containers/create?name=" + n, hc(MaskedPaths=None, ReadonlyPaths=None))
    assert r.status == 201, r
    default = al.inspect(n)["HostConfig"]
    assert default["MaskedPaths"] and default["ReadonlyPaths"], default


def test_empty_masked_paths_door_is_real_on_dockerd(al, name):
    """The same body sent to dockerd directly unmasks /proc: an empty list is
    not "unset" to dockerd."""
    n = name()
    cid = al.create_direct(n, ("true",), MaskedPaths=[], ReadonlyPaths=[])
    try:
        hcfg = al.inspect(cid)["HostConfig"]
        assert hcfg["MaskedPaths"] == [] and hcfg["ReadonlyPaths"] == [], hcfg
    finally:
        assert al.direct("DELETE", "/containers/%s?force=1" % cid).status == 204
    assert n not in al.names()


# ---------------------------------------------------------------------------
# 4. volume driver options


VOLUME_OPTS = [
    ("proc", {"type": "proc", "device": "proc"}),
    ("ext4-disk", {"type": "ext4", "device": "../../dev/vda"}),
    ("overlay-etc", {"type": "overlay", "device": "overlay", "o": "lowerdir=/etc,upperdir=/tmp/u,workdir=/tmp/w"}),
    ("sysfs", {"type": "sysfs", "device": "sysfs"}),
    ("bind-root", {"type": "none", "o": "bind", "device": "/"}),
]


def test_volume_options_are_refused(al, name):
    """The local driver's options mount filesystems on the host; with no
    ``volume_types`` configured none is allowed, in volumes/create and in a
    volume mount of containers/create alike.  No volume appears."""
    before = al.volumes()
    created = []
    try:
        for what, opts in VOLUME_OPTS:
            vname = name()
            created.append(vname)
            mark = al.mark()
            r = al.req("POST", "/volumes/create", {"Name": vname, "Driver": "local", "DriverOpts": opts})
            al.refused(r, mark, 403, "volume_options", "DriverOpts.type", 'volume option type="%s"' % opts["type"])

            n = name()
            mount = {"Type": "volume", "Source": vname, "Target": "/x",
                     "VolumeOptions": {"DriverConfig": {"Name": "local", "Options": opts}}}
            mark = al.mark()
            r = al.req("POST", "/containers/create?name=" + n, hc(Mounts=[mount]))
            al.refused(r, mark, 403, "volume_options", "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options.type",
                       'volume option type="%s"' % opts["type"])
            assert n not in al.names(), what
        assert al.volumes() == before
    finally:
        for v in set(created) & al.volumes():
            al.direct("DELETE", "/volumes/" + v)
    # a plain named volume is fine
    vname = name()
    try:
        r = al.req("POST", "/volumes/create", {"Name": vname, "Driver": "local", "DriverOpts": {}})
        assert r.status == 201, r
        assert vname in al.volumes()
    finally:
        al.direct("DELETE", "/volumes/" + vname)


# ---------------------------------------------------------------------------
# 5. plugins and swarm, 9. checkpoint route confusion


def _system_requests(x):
    tar = tar_bytes({"config.json": b"{}"})
    svc = {"Name": "dmtest-al-svc", "TaskTemplate": {"ContainerSpec": {"Image": IMAGE}}}
    return [
        ("POST", "/plugins/create?name=dmtest-al-plugin", tar, "application/x-tar", "/plugins/create"),
        ("POST", "/plugins/dmtest-al-plugin/set", ["DEBUG=1"], "application/json", "/plugins/{name*}/set"),
        ("POST", "/swarm/join", {"ListenAddr": "0.0.0.0:2377", "RemoteAddrs": ["127.0.0.1:1"],
                                 "JoinToken": "SWMTKN-1-not-a-token"}, "application/json", "/swarm/join"),
        ("POST", "/swarm/init", {"ListenAddr": "0.0.0.0:2377"}, "application/json", "/swarm/init"),
        ("POST", "/services/create", svc, "application/json", "/services/create"),
        ("DELETE", "/containers/%s/checkpoints/cp1" % x, None, None,
         "/containers/{name}/checkpoints/{checkpoint}"),
    ]


def test_system_routes_operator_role_custom_role_opaque(al, name):
    """Operator has no system routes (role); a checked role that has them is
    refused where the policy cannot read the request (opaque).  The
    checkpoint DELETE is the checkpoint route, not DELETE /containers/{name}."""
    x = name()
    cid = al.create_direct(x)
    for method, target, body, ctype, pattern in _system_requests(x):
        mark = al.mark()
        r = al.req(method, target, body, ctype=ctype)
        al.refused(r, mark, 403, "role", "system", "role operator may not use %s %s" % (method, pattern),
                   body_rule=False)
        assert authlib.wait_deny(al.gw, mark, rule="role")["route"] == pattern
        mark = al.mark()
        r = al.req(method, target, body, token=SYSOP, ctype=ctype)
        al.refused(r, mark, 403, "opaque", pattern, "the policy cannot inspect this request",
                   principal="token:sysop")
    # nothing happened on dockerd
    info = al.direct("GET", "/info").json()
    assert info["Swarm"]["LocalNodeState"] == "inactive", info["Swarm"]
    assert al.direct("GET", "/plugins").json() == []
    assert x in al.names() and al.inspect(cid)["State"]["Status"] == "created"
    # the container route next to the checkpoint one is the operator's
    r = al.req("DELETE", "/containers/%s?force=1" % x)
    assert r.status == 204, r
    assert x not in al.names()


def test_admin_reaches_dockerd_on_system_routes(al, name):
    """Admin is not checked: dockerd answers (its own errors, its Server header)."""
    x = name()
    al.create_direct(x)
    r = al.req("POST", "/swarm/join", {"ListenAddr": "0.0.0.0:2377", "RemoteAddrs": ["127.0.0.1:1"],
                                       "JoinToken": "SWMTKN-1-not-a-token"}, token=ADMIN)
    assert r.status >= 400 and (r.header("Server") or "").startswith("Docker/"), r
    assert "denied" not in message(r) and "role" not in message(r), r
    print("dockerd answered swarm/join: %d %s" % (r.status, message(r)))
    r = al.req("POST", "/plugins/dmtest-al-plugin/set", ["DEBUG=1"], token=ADMIN)
    assert r.status == 404 and (r.header("Server") or "").startswith("Docker/"), r
    r = al.req("DELETE", "/containers/%s/checkpoints/cp1" % x, token=ADMIN)
    assert (r.header("Server") or "").startswith("Docker/"), r
    info = al.direct("GET", "/info").json()
    assert info["Swarm"]["LocalNodeState"] == "inactive", info["Swarm"]


# ---------------------------------------------------------------------------
# 6. bind paths and the symlink race


def _create(al, n, **host_config):
    return al.req("POST", "/containers/create?name=" + n,
                  {"Image": IMAGE, "Cmd": ["sleep", "100000"], "HostConfig": host_config})


def test_binds_must_be_direct_entries_of_a_bind_dir(al, name, docker_exe, tmp_path):
    """Bind sources: existing entries directly inside a bind dir, no symlinks,
    nothing deeper (a container binding a parent could swap a component)."""
    d = os.path.join(al.bind, "d-" + secrets.token_hex(4))
    os.mkdir(d)
    # (a) a direct entry is allowed; A runs with it
    a = name()
    r = _create(al, a, Binds=[d + ":/x"])
    assert r.status == 201, r
    assert al.req("POST", "/containers/%s/start" % a).status == 204
    assert al.inspect(a)["State"]["Running"] is True

    def refused_bind(path, why):
        for how in ("Binds", "Mounts"):
            b = name()
            mark = al.mark()
            if how == "Binds":
                r = _create(al, b, Binds=[path + ":/y"])
                field = "HostConfig.Binds"
            else:
                r = _create(al, b, Mounts=[{"Type": "bind", "Source": path, "Target": "/y"}])
                field = "HostConfig.Mounts[0].Source"
            al.refused(r, mark, 403, "host_path", field, 'host path "%s" %s' % (path, why))
            assert b not in al.names()

    # (b) deeper, even while it is a real directory
    os.mkdir(os.path.join(d, "link"))
    deep = os.path.join(d, "link")
    refused_bind(deep, "is not an entry directly inside an allowed bind directory")
    # the bind dir itself and what is above it
    refused_bind(al.bind, "is not an entry directly inside an allowed bind directory")
    refused_bind(os.path.dirname(al.bind), "is not an entry directly inside an allowed bind directory")
    refused_bind(d + "/../" + os.path.basename(d), "is not a clean absolute path")

    # (c) A turns the deeper path into a symlink to / (exec through the gateway)
    cli = authlib.TokenCLI(docker_exe, al.gw.docker_host, OP, tmp_path / "cli-op")
    cli.run("exec", a, "sh", "-c", "rmdir /x/link && ln -s / /x/link")
    assert os.readlink(deep) == "/"
    refused_bind(deep, "is not an entry directly inside an allowed bind directory")
    top = os.path.join(al.bind, "link-" + secrets.token_hex(4))
    os.symlink("/", top)
    refused_bind(top, "is a symbolic link")

    # (d) what cannot be checked is not allowed
    refused_bind(os.path.join(al.bind, "missing-" + secrets.token_hex(4)), "cannot be checked")
    assert al.inspect(a)["State"]["Running"] is True


def test_symlink_race_is_real_on_dockerd(al, name):
    """Why only direct entries: a container binding D/d swaps D/d/link for a
    symlink after D/d/link was checked (here: created), and the next start
    of a container binding D/d/link mounts the host's root."""
    marker_value = secrets.token_hex(16)
    marker = os.path.join(al.tmp, "marker")
    with open(marker, "w") as f:
        f.write(marker_value)
    d = os.path.join(al.bind, "race-" + secrets.token_hex(4))
    os.makedirs(os.path.join(d, "link"))
    a = al.create_direct(name(), Binds=[d + ":/x"])
    al.start_direct(a)
    b = al.create_direct(name(), ("cat", "/hostroot" + marker), Binds=[d + "/link:/hostroot:ro"])
    assert al.exec_direct(a, "sh", "-c", "rmdir /x/link && ln -s / /x/link") == 0
    assert os.readlink(os.path.join(d, "link")) == "/"
    al.start_direct(b)
    assert al.wait_exit(b) == 0, al.logs(b)
    assert al.logs(b).decode().strip() == marker_value, "B did not see the host's root"
    for c in (a, b):
        assert al.direct("DELETE", "/containers/%s?force=1" % c).status == 204


# ---------------------------------------------------------------------------
# 7. namespace joins and network IDs


def _host_network_id(al) -> str:
    nets = al.direct("GET", "/networks").json()
    (host,) = [n for n in nets if n["Name"] == "host"]
    return host["Id"]


def test_namespace_joins_are_refused(al, name):
    """``container:X`` may be a container in the host's namespaces (here: one
    started directly with ``PidMode=host``), by ID, short ID or name."""
    h = al.create_direct(name(), PidMode="host")
    al.start_direct(h)
    for field in ("PidMode", "IpcMode", "NetworkMode"):
        for target in (h, h[:12], al.inspect(h)["Name"].lstrip("/")):
            n = name()
            mark = al.mark()
            r = _create(al, n, **{field: "container:" + target})
            al.refused(r, mark, 403, "namespace_join", "HostConfig." + field, "container:" + target)
            assert n not in al.names()
    for field in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"):
        n = name()
        mark = al.mark()
        r = _create(al, n, **{field: "host"})
        al.refused(r, mark, 403, "host_namespace", "HostConfig." + field, "HostConfig.%s \"host\"" % field)
        assert n not in al.names()


def test_host_network_by_id_is_refused(al, name):
    """dockerd finds a network by ID prefix: hex-only names could be the host
    network, in NetworkMode, EndpointsConfig and the build's networkmode."""
    hid = _host_network_id(al)
    for target in (hid, hid[:12], hid[:4], hid.upper()[:8]):
        n = name()
        mark = al.mark()
        r = _create(al, n, NetworkMode=target)
        al.refused(r, mark, 403, "network_id", "HostConfig.NetworkMode", target)
        assert n not in al.names()
        n = name()
        mark = al.mark()
        r = al.req("POST", "/containers/create?name=" + n,
                   {"Image": IMAGE, "NetworkingConfig": {"EndpointsConfig": {target: {}}}})
        al.refused(r, mark, 403, "network_id", "NetworkingConfig.EndpointsConfig." + target, target)
        assert n not in al.names()
    for target, rule in (("host", "host_network"), (hid, "network_id"), (hid[:6], "network_id")):
        mark = al.mark()
        r = al.req("POST", "/build?networkmode=" + target, tar_bytes({"Dockerfile": b"FROM " + IMAGE.encode()}),
                   ctype="application/x-tar")
        al.refused(r, mark, 403, rule, "query.networkmode")
    svc = {"Name": "dmtest-al-svc", "TaskTemplate": {"ContainerSpec": {"Image": IMAGE},
                                                     "Networks": [{"Target": hid}]}}
    mark = al.mark()
    al.refused(al.req("POST", "/services/create", svc), mark, 403, "role", "system", body_rule=False)
    mark = al.mark()
    al.refused(al.req("POST", "/services/create", svc, token=SYSOP), mark, 403, "opaque", "/services/create",
               principal="token:sysop")
    # the usual names are fine
    for net in ("none", "default"):
        n = name()
        assert _create(al, n, NetworkMode=net).status == 201
    # and dockerd does find the host network by an ID prefix
    r = al.direct("GET", "/networks/" + hid[:12])
    assert r.status == 200 and r.json()["Name"] == "host", r


# ---------------------------------------------------------------------------
# 8. security options


@pytest.mark.parametrize("opt", [
    'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}',
    "seccomp=unconfined",
    "label=disable",
    "label=type:spc_t",
    "label:disable",
    "apparmor=unconfined",
    "apparmor:unconfined",
    "systempaths=unconfined",
    "no-new-privileges=maybe",
])
def test_security_options_are_refused(al, name, opt):
    """Only no-new-privileges (and listed AppArmor profiles) pass."""
    n = name()
    mark = al.mark()
    r = _create(al, n, SecurityOpt=["no-new-privileges", opt])
    al.refused(r, mark, 403, "security_opt", "HostConfig.SecurityOpt", "security option %s" % json.dumps(opt))
    assert n not in al.names()


def test_no_new_privileges_passes(al, name):
    """... and dockerd gets and keeps it."""
    for opt in ("no-new-privileges", "no-new-privileges=true", "no-new-privileges:true"):
        n = name()
        r = _create(al, n, SecurityOpt=[opt])
        assert r.status == 201, r
        assert al.inspect(n)["HostConfig"]["SecurityOpt"] == [opt]


# ---------------------------------------------------------------------------
# 10. build query


def test_build_query_parameters(al, name):
    """The build's query is an allow-list too; a classic build passes."""
    ctx = tar_bytes({"Dockerfile": ("FROM %s\nLABEL dmtest=allowlist\n" % IMAGE).encode()})
    for query, rule, field in [
        ("networkmode=host", "host_network", "query.networkmode"),
        ("version=2", "not_allowed", "query.version"),
        ("cgroupparent=/", "not_allowed", "query.cgroupparent"),
        ("session=abc", "not_allowed", "query.session"),
        ("futureparam=1", "not_allowed", "query.futureparam"),
        ("t=x&networkmode=default&networkmode=host", "host_network", "query.networkmode"),
        ("t=x%zz", "query", "query"),
    ]:
        tag = name()
        mark = al.mark()
        r = al.req("POST", "/build?t=%s&%s" % (tag, query), ctx, ctype="application/x-tar")
        al.refused(r, mark, 403, rule, field)
        assert al.direct("GET", "/images/%s/json" % tag).status == 404
    # Go trims Unicode spaces and folds U+0130 to "i" when it looks for a
    # form, and form values override the query: such types are refused.
    # (The strings are UTF-8 bytes written as latin-1, as the request is sent.)
    form = b"networkmode=host&" * 2000
    for ctype in ["\xc2\xa0application/x-www-form-urlencoded", "appl\xc4\xb0cation/x-www-form-urlencoded"]:
        tag = name()
        mark = al.mark()
        r = al.req("POST", "/build?t=%s&networkmode=none&remote=http://127.0.0.1:1/x" % tag, form, ctype=ctype)
        al.refused(r, mark, 403, "content_type", "Content-Type")
        assert al.direct("GET", "/images/%s/json" % tag).status == 404
    tag = name()
    r = al.req("POST", "/build?t=%s:latest&version=1&rm=1" % tag, ctx, ctype="application/x-tar", timeout=120)
    assert r.status == 200 and b"Successfully built" in r.body, r
    img = al.direct("GET", "/images/%s:latest/json" % tag)
    assert img.status == 200 and img.json()["Config"]["Labels"] == {"dmtest": "allowlist"}, img


# ---------------------------------------------------------------------------
# 11. other spellings of the same doors


SPELLINGS = [
    ("lower-case-key", '{"Image":"%s","HostConfig":{"privileged":true}}' % IMAGE, "privileged",
     "HostConfig.Privileged"),
    ("top-level-embedded", '{"Image":"%s","Privileged":true}' % IMAGE, "privileged", "Privileged"),
    ("top-level-binds", '{"Image":"%s","Binds":["/:/host"]}' % IMAGE, "host_path", "Binds"),
    ("unicode-escape", '{"Image":"%s","HostConfig":{"\\u0050rivileged":true}}' % IMAGE, "privileged",
     "HostConfig.Privileged"),
    ("duplicate-key", '{"Image":"%s","HostConfig":{"Privileged":true,"Privileged":false}}' % IMAGE,
     "privileged", "HostConfig.Privileged"),
    ("duplicate-object", '{"Image":"%s","HostConfig":{"Privileged":false},"HostConfig":{"Privileged":true}}'
     % IMAGE, "privileged", "HostConfig.Privileged"),
    ("cap-add-string", '{"Image":"%s","HostConfig":{"CapAdd":"CAP_SYS_ADMIN"}}' % IMAGE, "cap_add",
     "HostConfig.CapAdd"),
    ("cap-add-lower-case", '{"Image":"%s","HostConfig":{"CapAdd":["cap_sys_admin"]}}' % IMAGE, "cap_add",
     "HostConfig.CapAdd"),
]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("what", [s[0] for s in SPELLINGS])
def test_other_spellings_are_refused(al, name, prefix, what):
    """Case, escapes, duplicates, the deprecated top-level host config and
    string-for-list all decode to the same door in dockerd."""
    (_, body, rule, field), = [s for s in SPELLINGS if s[0] == what]
    n = name()
    mark = al.mark()
    r = al.req("POST", "%s/containers/create?name=%s" % (prefix, n), body)
    al.refused(r, mark, 403, rule, field)
    assert n not in al.names()


def test_top_level_host_config_door_is_real_on_dockerd(al, name):
    """dockerd (API < 1.44) reads host config fields from the top level of
    the create body when there is no HostConfig."""
    n = name()
    r = al.direct("POST", "/v1.41/containers/create?name=" + n, {"Image": IMAGE, "Cmd": ["true"], "Privileged": True})
    assert r.status == 201, r
    try:
        assert al.inspect(n)["HostConfig"]["Privileged"] is True
    finally:
        assert al.direct("DELETE", "/containers/%s?force=1" % n).status == 204

