"""Hostile requests against an authenticated gateway with a body-aware policy.

One gateway (tokens for the built-in roles read/operator/admin, one login
user, CORS and host allow-lists, a bind directory and a small body limit)
sits in front of a recording stand-in upstream for the whole module.  Every
hostile case is sent raw on its own connection and must

* get the expected status with a Docker-style ``{"message": ...}`` body
  (naming the rule where the policy refused a body),
* be logged on one ``deny ... rule=RULE ... status=STATUS`` line when the
  refusal is a policy or auth decision,
* reach nothing upstream: afterwards a control request is the only new
  request, connection and byte the stand-in saw.

The second half checks that the allowed neighbours of those cases DO reach
the upstream, byte for byte where it matters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile

import pytest

import authlib
from authlib import bearer, message
from helpers import ConnectionClosed, Gateway, HttpConn, build_request
from standin import Standin

OP = authlib.new_token("op")
READ = authlib.new_token("read")
ADMIN = authlib.new_token("admin")
# a custom role with every class, system included, whose bodies are checked
SYSOP = authlib.new_token("sysop")
ALL_CLASSES = ["read", "logs", "files", "exec", "write", "build", "system"]
USER, PASSWORD = "alice", "correct horse battery staple"
CORS = "https://ui.example"
MAX_BODY = 65536


class Env:
    def __init__(self, gw: Gateway, standin: Standin, bind_dir: str, cookie: str, binding: str):
        self.gw = gw
        self.standin = standin
        self.bind = bind_dir
        self.cookie = cookie
        self.binding = binding

    # -- what the upstream saw -------------------------------------------------------
    def snapshot(self):
        with self.standin.cond:
            return len(self.standin.records), self.standin.total_bytes(), len(self.standin.requests())

    def control(self, tag: str):
        """A request that must reach the upstream; returns its record."""
        target = "/_ping?control=%s" % tag
        with HttpConn(self.gw.addr, 10) as c:
            r = c.request("GET", target, bearer(OP), timeout=10)
        assert (r.status, r.body) == (200, b"OK"), r
        self.standin.wait_for(lambda: any(q.target == target for q in self.standin.requests()), 5,
                              "control request %s at the stand-in" % tag)
        return target

    def assert_nothing_forwarded(self, snap, tag):
        n_records, n_bytes, n_requests = snap
        target = self.control(tag)
        with self.standin.cond:
            new_records = self.standin.records[n_records:]
            new_requests = self.standin.requests()[n_requests:]
            total = self.standin.total_bytes()
        assert [q.target for q in new_requests] == [target], \
            "the upstream saw more than the control request: %r" % [q.raw_head for q in new_requests]
        # The control request may come on a new upstream connection or on
        # one an earlier client left idle; either way it is all that came.
        assert len(new_records) <= 1, "%d new upstream connections" % len(new_records)
        ctl = bytes(new_requests[0].raw_head)
        assert ctl.startswith(b"GET " + target.encode() + b" HTTP/1.1\r\n"), ctl[:200]
        assert total - n_bytes == len(ctl), "the upstream got %d bytes besides the control request: %r" % (
            total - n_bytes - len(ctl), self.standin.all_bytes()[-400:])

    def forwarded(self, snap, count=1, timeout=5.0):
        """The requests the upstream got since ``snap`` (waits for ``count``)."""
        n_requests = snap[2]
        self.standin.wait_for(lambda: len(self.standin.requests()) >= n_requests + count, timeout,
                              "%d forwarded request(s)" % count)
        with self.standin.cond:
            return self.standin.requests()[n_requests:]


@pytest.fixture(scope="module")
def env():
    tmp = tempfile.mkdtemp(prefix="dmph", dir="/tmp")
    bind_dir = os.path.join(tmp, "binds")
    os.makedirs(os.path.join(bind_dir, "data"))
    os.symlink("/etc", os.path.join(bind_dir, "escape"))
    os.makedirs(bind_dir + "x")  # a sibling sharing the prefix
    standin = Standin(os.path.join(tmp, "up.sock"))
    cfg = authlib.auth_config(
        tokens={"operator": OP, "read": READ, "admin": ADMIN, "sysop": SYSOP},
        users=[{"name": USER, "password": authlib.hash_password(PASSWORD), "role": "operator"}],
        cors_origins=[CORS],
        allowed_hosts=["router.lan"],
        policy={"bind_dirs": [bind_dir], "cap_add_allow": ["NET_ADMIN"], "max_body_bytes": MAX_BODY},
        roles={"sysop": {"classes": ALL_CLASSES}},
    )
    path = authlib.write_config(tmp, cfg)
    gw = Gateway(["--listen", "127.0.0.1:0", "--upstream", standin.url, "--shutdown-grace", "2",
                  "--config", path])
    try:
        r = authlib.login(gw, USER, PASSWORD)
        assert r.status == 200, r
        e = Env(gw, standin, bind_dir, authlib.session_cookie(r), r.json()["binding"])
        assert standin.connection_count() == 0, "login reached the upstream"
        yield e
    finally:
        try:
            rc = gw.stop(15)
        finally:
            standin.close()
            shutil.rmtree(tmp, ignore_errors=True)
    assert rc == 0, "dockermand exited %s on SIGTERM\n%s" % (rc, gw.output()[-3000:])


# ---------------------------------------------------------------------------
# building raw requests

CRLF = b"\r\n"


def raw(method, target, headers=(), body=b"", token=OP, host="localhost", version="HTTP/1.1") -> bytes:
    hs = list(headers)
    if token is not None:
        hs = bearer(token) + hs
    return build_request(method, target, hs, body, host=host, version=version)


def post_json(target, body, token=OP, headers=()):
    if isinstance(body, str):
        body = body.encode()
    return raw("POST", target, [("Content-Type", "application/json")] + list(headers), body, token=token)


def head_only(lines: bytes, body: bytes = b"", target=b"/containers/create", token=OP) -> bytes:
    """``POST target`` with the given extra header lines (CRLF-terminated)."""
    auth = b"Authorization: Bearer " + token.encode() + CRLF if token else b""
    return b"POST " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + auth + lines + CRLF + body


def chunked(body: bytes, sizes=(7, 5, 100000), ext=b"") -> bytes:
    out = b""
    i = 0
    for n in sizes:
        if i >= len(body):
            break
        piece = body[i:i + n]
        out += b"%x%s\r\n%s\r\n" % (len(piece), ext, piece)
        i += n
    assert i >= len(body)
    return out + b"0\r\n\r\n"


PRIV = '{"Image":"busybox","HostConfig":{"Privileged":true}}'


def hc(inner: str) -> str:
    return '{"Image":"busybox","HostConfig":{%s}}' % inner


# Each case: id -> (builder(env) -> bytes, status, rule or None, message regex or None)
CASES: dict = {}


def case(name, status, rule=None, msg=None):
    def deco(fn):
        assert name not in CASES, name
        CASES[name] = (fn, status, rule, msg)
        return fn
    return deco


def simple(name, status, rule, msg, builder):
    case(name, status, rule, msg)(builder)


# -- request smuggling and framing ambiguity (refused while parsing the head) ------
SMUGGLE_BODY = b"0\r\n\r\nPOST /containers/create HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
for name, lines, body in [
    ("cl-te", b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(SMUGGLE_BODY), SMUGGLE_BODY),
    ("te-cl", b"Transfer-Encoding: chunked\r\nContent-Length: %d\r\n" % len(SMUGGLE_BODY), SMUGGLE_BODY),
    ("cl0-plus-chunked-body", b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
     chunked(PRIV.encode())),
    ("te-chunked-identity", b"Transfer-Encoding: chunked, identity\r\n", chunked(PRIV.encode())),
    ("te-gzip-chunked", b"Transfer-Encoding: gzip, chunked\r\n", chunked(PRIV.encode())),
    ("te-twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked(PRIV.encode())),
    ("te-space-before-colon", b"Transfer-Encoding : chunked\r\n", chunked(PRIV.encode())),
    ("duplicate-cl-same", b"Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"),
    ("duplicate-cl-different", b"Content-Length: 2\r\nContent-Length: %d\r\n" % len(PRIV), PRIV.encode()),
    ("cl-list", b"Content-Length: 2, 2\r\n", b"{}"),
    ("cl-plus-sign", b"Content-Length: +2\r\n", b"{}"),
    ("obs-fold-hides-te", b"X-Pad: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 2\r\n", b"{}"),
    ("obs-fold-tab", b"X-Pad: a\r\n\tb\r\nContent-Length: 2\r\n", b"{}"),
    ("connection-drops-content-length", b"Connection: content-length\r\nContent-Length: 2\r\n", b"{}"),
    ("connection-drops-authorization", b"Connection: authorization\r\nContent-Length: 2\r\n", b"{}"),
]:
    simple("smuggle-" + name, 400, None, None, lambda e, l=lines, b=body: head_only(l, b))

# Trailing OWS is not part of a field value (RFC 9110 5.5), and Go trims it as
# well: "chunked<TAB>" is either refused or read as chunked -- and then the
# privileged body inside must be caught.  Either way nothing reaches dockerd.
simple("smuggle-te-chunked-tab", (400, 403), None, None,
       lambda e: head_only(b"Transfer-Encoding: chunked\t\r\nContent-Type: application/json\r\n",
                           chunked(PRIV.encode())))
simple("smuggle-bare-lf", 400, None, None,
       lambda e: b"POST /containers/create HTTP/1.1\nHost: localhost\nAuthorization: Bearer "
                 + OP.encode() + b"\nContent-Length: 2\n\n{}")
simple("smuggle-http10-chunked", 400, None, None,
       lambda e: head_only(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
simple("absolute-form-target", 400, None, None,
       lambda e: raw("GET", "http://localhost/containers/json"))
simple("bad-chunk-size-in-checked-body", 400, None, None,
       lambda e: head_only(b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n",
                           b"zz\r\n" + PRIV.encode() + b"\r\n0\r\n\r\n"))
simple("chunk-size-overflow", 400, None, None,
       lambda e: head_only(b"Transfer-Encoding: chunked\r\n", b"1" * 40 + b"\r\nx\r\n0\r\n\r\n"))

# -- path tricks --------------------------------------------------------------------
for name, target in [
    ("double-slash", "//containers/json"),
    ("double-slash-inside", "/containers//json"),
    ("trailing-slash", "/containers/json/"),
    ("dot-segment", "/./info"),
    ("dotdot-segment", "/containers/abc/../../info"),
    ("encoded-dotdot", "/containers/%2e%2e/info"),
    ("encoded-dotdot-upper", "/images/%2E%2E/%2E%2E/info"),
    ("encoded-slash-changes-route", "/containers/x%2Fexport"),
    ("encoded-slash-in-version", "/v1.41%2Finfo"),
    ("nul-escape", "/info%00"),
    ("bad-escape", "/info%zz"),
    ("truncated-escape", "/info%2"),
    ("newline-escape", "/containers/abc%0a/json"),
    ("invalid-utf8-escape", "/containers/%ff/json"),
]:
    simple("path-" + name, 400, "path", None, lambda e, t=target: raw("GET", t))

for name, method, target in [
    ("case", "GET", "/Containers/json"),
    ("upper-case", "GET", "/INFO"),
    ("unknown", "GET", "/secrets-of-the-host"),
    ("pprof", "GET", "/debug/pprof/heap"),
    ("method", "PATCH", "/containers/json"),
    ("method-put-create", "PUT", "/containers/create"),
    ("bad-version-prefix", "GET", "/vx/info"),
    ("bare-version", "GET", "/v1.47"),
    ("version-with-letters", "GET", "/v1.41a/info"),
]:
    simple("route-" + name, 403, "no_route", r"no such Docker API route", lambda e, m=method, t=target: raw(m, t))

# -- JSON bodies the policy must see through ----------------------------------------
POLICY = [
    # (name, target, body, rule)
    ("privileged", "/containers/create", PRIV, "privileged"),
    ("privileged-lowercase-keys", "/containers/create", '{"hostconfig":{"privileged":true}}', "privileged"),
    ("privileged-uppercase-keys", "/containers/create", '{"HOSTCONFIG":{"PRIVILEGED":true}}', "privileged"),
    ("privileged-duplicate-key", "/containers/create",
     '{"HostConfig":{"Privileged":true,"Privileged":false}}', "privileged"),
    ("privileged-duplicate-object", "/containers/create",
     '{"HostConfig":{"Privileged":false},"HostConfig":{"Privileged":true}}', "privileged"),
    ("privileged-then-null-object", "/containers/create",
     '{"HostConfig":{"Privileged":true},"HostConfig":null}', "privileged"),
    ("privileged-unicode-escape", "/containers/create", '{"HostConfig":{"\\u0050rivileged":true}}', "privileged"),
    ("hostconfig-unicode-escape", "/containers/create", '{"\\u0048ost\\u0043onfig":{"Privileged":true}}',
     "privileged"),
    ("hostconfig-long-s", "/containers/create", '{"Ho\u017ftConfig":{"Privileged":true}}', "privileged"),
    ("hostconfig-long-s-escaped", "/containers/create", '{"Ho\\u017ftConfig":{"Privileged":true}}', "privileged"),
    ("privileged-string-type", "/containers/create", '{"HostConfig":{"Privileged":"true"}}', "invalid_type"),
    ("privileged-number-type", "/containers/create", '{"HostConfig":{"Privileged":1}}', "invalid_type"),
    ("versioned-route", "/v1.41/containers/create", PRIV, "privileged"),
    ("escaped-route", "/containers/%63reate?name=x", PRIV, "privileged"),
    ("binds-root", "/containers/create", hc('"Binds":["/:/host"]'), "host_path"),
    ("binds-root-rw", "/containers/create", hc('"Binds":["/:/host:rw"]'), "host_path"),
    ("binds-etc-double-slash", "/containers/create", hc('"Binds":["//etc:/x"]'), "host_path"),
    ("binds-dotdot-escape", "/containers/create", hc('"Binds":["{BIND}/data/../../../etc:/x"]'), "host_path"),
    ("binds-prefix-sibling", "/containers/create", hc('"Binds":["{BIND}x:/x"]'), "host_path"),
    ("binds-symlink-escape", "/containers/create", hc('"Binds":["{BIND}/escape:/x"]'), "host_path"),
    ("binds-symlink-escape-below", "/containers/create", hc('"Binds":["{BIND}/escape/ssl/missing:/x"]'),
     "host_path"),
    ("binds-second-entry", "/containers/create", hc('"Binds":["{BIND}/data:/d","/var/run:/r"]'), "host_path"),
    ("binds-string-type", "/containers/create", hc('"Binds":"/:/host"'), "invalid_type"),
    ("mounts-bind", "/containers/create", hc('"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}]'),
     "host_path"),
    # keys in odd case are still read: the lower-case "type" makes it a bind
    ("mounts-bind-odd-case", "/containers/create",
     hc('"Mounts":[{"type":"bind","SOURCE":"/","target":"/x"}]'), "host_path"),
    # dockerd compares the type exactly: an upper-case one is refused outright
    ("mounts-bind-upper-case-type", "/containers/create",
     hc('"Mounts":[{"type":"BIND","source":"/","target":"/x"}]'), "mount_type"),
    ("mounts-volume-bind-options", "/containers/create",
     hc('"Mounts":[{"Type":"volume","Source":"v","Target":"/x","VolumeOptions":{"DriverConfig":'
        '{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]'), "volume_options"),
    ("mounts-npipe", "/containers/create", hc('"Mounts":[{"Type":"npipe","Source":"x","Target":"/x"}]'),
     "mount_type"),
    ("volume-create-bind-device", "/volumes/create",
     '{"Name":"v","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"}}', "volume_options"),
    ("cap-add-sys-admin", "/containers/create", hc('"CapAdd":["SYS_ADMIN"]'), "cap_add"),
    ("cap-add-string-with-prefix", "/containers/create", hc('"CapAdd":"cap_sys_admin"'), "cap_add"),
    ("cap-add-all", "/containers/create", hc('"CapAdd":["NET_ADMIN","ALL"]'), "cap_add"),
    ("devices", "/containers/create",
     hc('"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]'),
     "devices"),
    ("devices-long-s", "/containers/create", hc('"Device\u017f":[{"PathOnHost":"/dev/mem"}]'), "devices"),
    ("device-requests", "/containers/create", hc('"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}]'),
     "devices"),
    ("device-cgroup-rules", "/containers/create", hc('"DeviceCgroupRules":["c *:* rwm"]'), "devices"),
    ("pid-host", "/containers/create", hc('"PidMode":"host"'), "host_namespace"),
    ("ipc-host", "/containers/create", hc('"IpcMode":"host"'), "host_namespace"),
    ("uts-host-padded", "/containers/create", hc('"UTSMode":" HOST "'), "host_namespace"),
    ("userns-host", "/containers/create", hc('"UsernsMode":"host"'), "host_namespace"),
    ("cgroupns-host", "/containers/create", hc('"CgroupnsMode":"host"'), "host_namespace"),
    ("network-host", "/containers/create", hc('"NetworkMode":"host"'), "host_network"),
    ("network-host-kelvin", "/containers/create", hc('"Networ\u212aMode":"host"'), "host_network"),
    ("volumes-from", "/containers/create", hc('"VolumesFrom":["other:rw"]'), "volumes_from"),
    ("seccomp-unconfined", "/containers/create", hc('"SecurityOpt":["seccomp=unconfined"]'), "security_opt"),
    ("seccomp-colon-unconfined", "/containers/create", hc('"SecurityOpt":["seccomp:unconfined"]'), "security_opt"),
    ("apparmor-unconfined", "/containers/create", hc('"SecurityOpt":["apparmor=unconfined"]'), "security_opt"),
    ("label-disable", "/containers/create", hc('"SecurityOpt":["label=disable"]'), "security_opt"),
    ("exec-privileged", "/containers/abc/exec", '{"Cmd":["sh"],"Privileged":true}', "privileged"),
    ("exec-privileged-lowercase", "/v1.41/containers/abc/exec", '{"cmd":["sh"],"privileged":true}',
     "privileged"),
    ("update-devices", "/containers/abc/update", '{"Devices":[{"PathOnHost":"/dev/mem"}]}', "devices"),
    ("not-json", "/containers/create", "Image=busybox&HostConfig.Privileged=true", "invalid_json"),
    ("truncated-json", "/containers/create", '{"HostConfig":{"Privileged":true}', "invalid_json"),
    ("second-json-value", "/containers/create", '{"Image":"busybox"} {"HostConfig":{"Privileged":true}}',
     "invalid_json"),
    ("byte-order-mark", "/containers/create", "\ufeff" + PRIV, "invalid_json"),
    ("deep-nesting", "/containers/create", '{"Labels":' + "[" * 600 + "]" * 600 + "}", "invalid_json"),
]

for name, target, body, rule in POLICY:
    msg = r"^denied by rule %s: " % re.escape(rule)
    simple("policy-" + name, 403, rule, msg,
           lambda e, t=target, b=body: post_json(t, b.replace("{BIND}", e.bind)))

# API version prefixes below 1.24 (whose start took a host config from its
# body) or not made of numbers are refused for every role, before the body.
for name, method, target, token in [
    ("policy-odd-version-route", "POST", "/v./containers/create", OP),
    ("policy-short-version-route", "POST", "/v1/containers/create", OP),
    ("path-version-dot-info", "GET", "/v./info", OP),
    ("path-version-old-info", "GET", "/v1/info", OP),
    ("path-version-old-start-admin", "POST", "/v1.23/containers/abc/start", ADMIN),
]:
    simple(name, 400, "path", r"(invalid API version|API versions below 1\.24)",
           lambda e, m=method, t=target, tok=token: raw(m, t, [("Content-Type", "application/json")],
                                                       PRIV.encode() if m == "POST" else b"", token=tok))

# Swarm services and plugins: operator has no system routes; a checked role
# that has them is refused on what the policy cannot read (a service spec),
# and plugin privileges keep their own check.
SERVICE_BIND_ROOT = ('{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox",'
                     '"Mounts":[{"Type":"bind","Source":"/"}]}}}')
PLUGIN_HOST_NETWORK = '[{"Name":"network","Value":["host"]}]'
simple("policy-service-bind-root", 403, "opaque", r"cannot inspect",
       lambda e: post_json("/services/create", SERVICE_BIND_ROOT, token=SYSOP))
simple("policy-service-bind-root-operator", 403, "role", r"^role operator may not use POST /services/create",
       lambda e: post_json("/services/create", SERVICE_BIND_ROOT))
simple("policy-plugin-host-network", 403, "plugin_privilege", r"^denied by rule plugin_privilege: ",
       lambda e: post_json("/plugins/pull?remote=evil/plugin", PLUGIN_HOST_NETWORK, token=SYSOP))
simple("policy-plugin-host-network-operator", 403, "role", r"^role operator may not use POST /plugins/pull",
       lambda e: post_json("/plugins/pull?remote=evil/plugin", PLUGIN_HOST_NETWORK))

simple("policy-empty-body", 403, "empty_body", r"^denied by rule empty_body: ",
       lambda e: raw("POST", "/containers/create", [("Content-Type", "application/json")]))
simple("policy-content-length-zero", 403, "empty_body", r"^denied by rule empty_body: ",
       lambda e: raw("POST", "/containers/create", [("Content-Length", "0")]))
simple("policy-form-encoded", 403, "form_body", r"form-encoded",
       lambda e: raw("POST", "/containers/create", [("Content-Type", "application/x-www-form-urlencoded")],
                     b"HostConfig=%7B%22Privileged%22%3Atrue%7D"))
simple("policy-text-plain", 403, "content_type", r"^denied by rule content_type: ",
       lambda e: raw("POST", "/containers/create", [("Content-Type", "text/plain")], PRIV.encode()))
simple("policy-chunked-privileged", 403, "privileged", r"^denied by rule privileged: HostConfig\.Privileged",
       lambda e: head_only(b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n",
                           chunked(PRIV.encode(), sizes=(13, 11, 3, 1000))))
simple("policy-chunked-with-extensions", 403, "privileged", r"^denied by rule privileged: ",
       lambda e: head_only(b"Transfer-Encoding: chunked\r\n",
                           chunked(PRIV.encode(), sizes=(20, 1000), ext=b";x=1")))
simple("policy-chunked-one-byte-chunks", 403, "cap_add", r"^denied by rule cap_add: ",
       lambda e: head_only(b"Transfer-Encoding: chunked\r\n",
                           chunked(hc('"CapAdd":["SYS_ADMIN"]').encode(), sizes=(1,) * 200)))
simple("policy-too-large-content-length", 413, "body_size", r"too large",
       lambda e: post_json("/containers/create",
                           '{"Image":"busybox","Labels":{"x":"%s"}}' % ("a" * (MAX_BODY + 10))))
simple("policy-too-large-chunked", 413, "body_size", r"too large",
       lambda e: head_only(b"Transfer-Encoding: chunked\r\n",
                           chunked(('{"Image":"busybox","Labels":{"x":"%s"}}' % ("a" * 2 * MAX_BODY)).encode(),
                                   sizes=(4096,) * 40)))


@case("policy-expect-continue-privileged", 403, "privileged", r"^denied by rule privileged: ")
def _expect_continue(e):
    return post_json("/containers/create", PRIV, headers=[("Expect", "100-continue")])


@case("pipelined-request-after-denial-is-dropped", 403, "privileged", r"^denied by rule privileged: ")
def _pipelined(e):
    return post_json("/containers/create", PRIV) + raw("GET", "/containers/json?pipelined=1")


# -- credentials ------------------------------------------------------------------------
for name, headers in [
    ("none", []),
    ("wrong-token", bearer("op-not-the-token")),
    ("token-prefix", bearer(OP[:-1])),
    ("token-with-suffix", bearer(OP + "x")),
    ("bearer-empty", [("Authorization", "Bearer")]),
    ("bearer-space-inside", [("Authorization", "Bearer " + OP[:6] + " " + OP[6:])]),
    ("bearer-two-tokens", [("Authorization", "Bearer %s %s" % (OP, OP))]),
    ("basic-with-token-password", [("Authorization", authlib.basic("op", OP))]),
    ("basic-with-token-user", [("Authorization", authlib.basic(OP, ""))]),
    ("other-scheme", [("Authorization", "Token " + OP)]),
    ("token-only", [("Authorization", OP)]),
    ("first-of-two-authorizations-wrong", bearer("wrong") + bearer(OP)),
    ("token-as-cookie", [("Cookie", "dockermand_session=" + OP)]),
    ("forged-cookie", [("Cookie", "dockermand_session=" + "ab" * 24)]),
    ("token-as-x-header", [("X-Auth-Token", OP), ("X-Api-Key", OP)]),
    ("subprotocol-without-upgrade", [("Sec-WebSocket-Protocol", "dockermand.token." + OP)]),
]:
    simple("auth-" + name, 401, "auth", None,
           lambda e, h=headers: raw("GET", "/containers/json", h, token=None))

simple("auth-token-in-query", 401, "auth", None,
       lambda e: raw("GET", "/containers/json?token=%s&access_token=%s" % (OP, OP), token=None))
simple("auth-ticket-without-upgrade", 401, "auth", None,
       lambda e: raw("GET", "/containers/abc/attach/ws?ticket=%s" % ("ab" * 24), token=None))
simple("auth-forged-ticket-on-upgrade", 401, "auth", None,
       lambda e: raw("GET", "/containers/abc/attach/ws?ticket=%s&stream=1" % ("ab" * 24),
                     authlib.ws_headers() + [("Origin", "http://localhost")], token=None))
simple("auth-status-needs-credentials", 401, "auth", None,
       lambda e: raw("GET", "/_dockermand/status", token=None))
simple("auth-privileged-create-without-token", 401, "auth", None,
       lambda e: post_json("/containers/create", PRIV, token=None))

# -- roles ---------------------------------------------------------------------------------
for name, method, target in [
    ("start", "POST", "/containers/abc/start"),
    ("delete", "DELETE", "/containers/abc"),
    ("export", "GET", "/containers/abc/export"),
    ("archive-get", "GET", "/containers/abc/archive?path=/etc/shadow"),
    ("images-get", "GET", "/images/get?names=busybox"),
    ("exec-create", "POST", "/containers/abc/exec"),
    ("attach", "POST", "/containers/abc/attach?stream=1"),
    ("swarm", "GET", "/swarm"),
    ("privileged-create", "POST", "/containers/create"),
]:
    body = PRIV.encode() if method == "POST" else b""
    hs = [("Content-Type", "application/json")] if body else []
    simple("role-read-" + name, 403, "role", r"^role read may not use",
           lambda e, m=method, t=target, b=body, h=hs: raw(m, t, h, b, token=READ))

# -- browsers: Host, CORS, CSRF ------------------------------------------------------------
for name, host in [
    ("evil-name", "evil.example"),
    ("evil-name-with-port", "evil.example:2375"),
    ("allowed-name-as-prefix", "router.lan.evil.example"),
    ("localhost-as-prefix", "localhost.evil.example"),
    ("ip-lookalike-name", "127.0.0.1.nip.io"),
]:
    simple("host-" + name, 403, "host", r"Host header not allowed",
           lambda e, h=host: raw("GET", "/containers/json", host=h))

for name, origin in [
    ("unlisted", "https://evil.example"),
    ("listed-as-prefix", CORS + ".evil.example"),
    ("scheme-changed", CORS.replace("https", "http")),
    ("null", "null"),
]:
    simple("preflight-" + name, 403, "cors", r"origin not allowed",
           lambda e, o=origin: raw("OPTIONS", "/containers/create",
                                   [("Origin", o), ("Access-Control-Request-Method", "POST"),
                                    ("Access-Control-Request-Headers", "authorization,content-type")],
                                   token=None))


def cookie(e):
    return [("Cookie", "theme=dark; dockermand_session=" + e.cookie), ("X-Dockermand-Binding", e.binding)]


for name, origin_headers in [
    ("no-origin", []),
    ("evil-origin", [("Origin", "https://evil.example")]),
    ("null-origin", [("Origin", "null")]),
    ("lookalike-origin", [("Origin", "http://localhost.evil.example")]),
    ("referer-is-not-origin", [("Referer", "http://localhost/")]),
]:
    simple("csrf-cookie-post-" + name, 403, "csrf", r"cross-site",
           lambda e, o=origin_headers: raw("POST", "/containers/abc/stop", cookie(e) + o, token=None))

simple("csrf-cookie-delete", 403, "csrf", r"cross-site",
       lambda e: raw("DELETE", "/containers/abc?force=1", cookie(e), token=None))
simple("csrf-cookie-privileged-create", 403, "csrf", r"cross-site",
       lambda e: raw("POST", "/containers/create", cookie(e) + [("Content-Type", "application/json")],
                     PRIV.encode(), token=None))
simple("csrf-cookie-websocket-upgrade", 403, "csrf", r"cross-site",
       lambda e: raw("GET", "/containers/abc/attach/ws?stream=1", cookie(e) + authlib.ws_headers(), token=None))
simple("csrf-cookie-ticket", 403, "csrf", r"cross-site",
       lambda e: raw("POST", "/_dockermand/ticket", cookie(e), token=None))
simple("csrf-cross-site-login", 403, "origin", r"cross-site",
       lambda e: raw("POST", "/_dockermand/login", [("Origin", "https://evil.example"),
                                                   ("Content-Type", "application/json")],
                     json.dumps({"username": USER, "password": PASSWORD}).encode(), token=None))


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_request_is_refused_and_not_forwarded(env, name):
    build, status, rule, msg_re = CASES[name]
    gw = env.gw
    assert gw.alive(), "the gateway died earlier"
    data = build(env)
    mark = authlib.log_mark(gw)
    snap = env.snapshot()
    with gw.connect(timeout=15) as c:
        sent = c.send_quiet(data)
        try:
            # (HEAD replies are read like GET ones here: the framing of
            # refusals to HEAD has its own test below)
            r = c.read_response("GET", timeout=15)
        except ConnectionClosed as ex:
            pytest.fail("closed without a response (sent=%s, got %r)" % (sent, ex.partial[:200]))
        # whatever comes next on this connection must not be a second response
        try:
            c.shutdown_write()
        except OSError:
            pass
        extra = b""
        try:
            extra = c.read_until_eof(5)
        except TimeoutError:
            pytest.fail("connection still open 5s after the refusal and our half-close")
    statuses = status if isinstance(status, tuple) else (status,)
    assert r.status in statuses, "expected %s, got %r" % (statuses, r)
    assert extra == b"", "data after the refusal: %r" % extra[:300]
    m = message(r)
    if msg_re:
        assert re.search(msg_re, m), "message %r does not match %r" % (m, msg_re)
    if rule and msg_re and msg_re.startswith("^denied by rule"):
        assert "denied by rule %s" % rule in m
    if r.status == 403 and name == "smuggle-te-chunked-tab":
        assert m.startswith("denied by rule privileged"), m
    if status == 401:
        assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r
    if rule:
        d = authlib.wait_deny(gw, mark, rule=rule, status=status)
        assert d["kind"] == "deny", d
        # A login has no principal yet: its Origin is refused before anyone is known.
        if rule not in ("auth", "host", "cors", "csrf") and name != "csrf-cross-site-login":
            assert d["principal"] in ("token:operator", "token:read", "token:sysop", "token:admin"), d
    env.assert_nothing_forwarded(snap, name)


def test_refusal_of_head_request_has_no_body(env):
    """A reply to HEAD carries no content (RFC 9110 9.3.2): a refusal that
    sends its JSON anyway desynchronises a keep-alive client, which takes the
    JSON for the start of the next response."""
    snap = env.snapshot()
    with env.gw.connect(timeout=10) as c:
        c.send(raw("HEAD", "/containers/abc/archive?path=/", token=READ) + raw("GET", "/_ping?after-head=1"))
        r = c.read_response("HEAD", timeout=10)
        assert r.status == 403, r
        second = c.read_response("GET", timeout=10)
        assert (second.status, second.body) == (200, b"OK"), second
    (up,) = env.forwarded(snap)
    assert up.target == "/_ping?after-head=1"


def test_case_count():
    """The suite promises at least 40 hostile cases."""
    assert len(CASES) >= 40, len(CASES)


# ---------------------------------------------------------------------------
# the allowed neighbours DO reach the upstream


ALLOWED_BODY = ('{"Image":"busybox","Cmd":["true"],"HostConfig":{"Binds":["{BIND}/data:/data:ro","named:/v"],'
                '"CapAdd":["net_admin"],"NetworkMode":"default","IpcMode":"shareable",'
                '"Mounts":[{"Type":"tmpfs","Target":"/t"}],"Privileged":false}}')


def _one_exchange(env, data: bytes, method="POST"):
    snap = env.snapshot()
    with env.gw.connect(timeout=15) as c:
        c.send(data)
        r = c.read_response(method, timeout=15)
    assert r.status == 200, r
    reqs = env.forwarded(snap)
    assert len(reqs) == 1, [q.raw_head for q in reqs]
    return r, reqs[0]


def test_allowed_create_arrives_unchanged(env):
    body = ALLOWED_BODY.replace("{BIND}", env.bind).encode()
    r, up = _one_exchange(env, post_json("/v1.41/containers/create?name=ok", body))
    assert up.method == "POST" and up.target == "/v1.41/containers/create?name=ok"
    assert bytes(up.body) == body
    assert up.header_all("Content-Length") == [str(len(body))]
    assert up.header("Transfer-Encoding") is None
    assert r.json()["body_len"] == len(body)


def test_allowed_create_sent_chunked_arrives_with_content_length(env):
    body = ALLOWED_BODY.replace("{BIND}", env.bind).encode()
    data = head_only(b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n",
                     chunked(body, sizes=(1, 9, 30, 5000), ext=b";ignored=1"))
    r, up = _one_exchange(env, data)
    assert bytes(up.body) == body
    assert up.header_all("Content-Length") == [str(len(body))]
    assert up.header("Transfer-Encoding") is None, up.raw_head
    assert up.header("Content-Type") == "application/json"


def test_allowed_create_with_expect_continue(env):
    body = b'{"Image":"busybox"}'
    head = raw("POST", "/containers/create", [("Content-Type", "application/json"), ("Expect", "100-continue"),
                                              ("Content-Length", str(len(body)))])
    snap = env.snapshot()
    with env.gw.connect(timeout=15) as c:
        c.send(head)
        interim = c.read_response(timeout=10, interim=True)
        assert interim.status == 100, interim
        c.send(body)
        r = c.read_response(timeout=15)
    assert r.status == 200, r
    (up,) = env.forwarded(snap)
    assert bytes(up.body) == body
    assert up.header("Expect") is None, up.raw_head
    assert up.header("Content-Length") == str(len(body))


def test_admin_token_is_not_checked(env):
    body = hc('"Privileged":true,"Binds":["/:/host"],"CapAdd":["ALL"]').encode()
    r, up = _one_exchange(env, post_json("/containers/create", body, token=ADMIN))
    assert bytes(up.body) == body


@pytest.mark.parametrize("target", [
    "/v1.24/info",  # the oldest API version let through
    "/v1.41.0/info",
    "/v1.41/info",
    "/info",
    "/%69nfo",
    "/containers/%61bc/json?size=1",
    "/images/registry.lan:5000/a%2Fb/json",
    "/containers/json?filters=%7B%22label%22%3A%5B%22a%2F..%2Fb%22%5D%7D",
])
def test_odd_but_valid_targets_reach_upstream_verbatim(env, target):
    r, up = _one_exchange(env, raw("GET", target), method="GET")
    assert up.target == target, "forwarded as %r" % up.target


def test_read_token_may_read(env):
    r, up = _one_exchange(env, raw("GET", "/containers/abc/logs?stdout=1", token=READ), method="GET")
    assert up.target == "/containers/abc/logs?stdout=1"


def test_bearer_scheme_is_case_insensitive(env):
    data = raw("GET", "/version", [("Authorization", "bEaReR   " + OP)], token=None)
    r, up = _one_exchange(env, data, method="GET")
    assert up.target == "/version"


@pytest.mark.parametrize("origin", [CORS, "http://localhost"])
def test_cookie_post_with_allowed_origin_is_forwarded(env, origin):
    data = raw("POST", "/containers/abc/stop?t=1", cookie(env) + [("Origin", origin)], token=None)
    r, up = _one_exchange(env, data)
    assert up.target == "/containers/abc/stop?t=1"
    assert r.header("Access-Control-Allow-Origin") == origin
    assert r.header("Access-Control-Allow-Credentials") == "true"


def test_bearer_request_from_foreign_origin_gets_no_cors_headers(env):
    """Bearer tokens are not ambient, so no CSRF check; but a foreign page must
    not be allowed to read the reply."""
    r, up = _one_exchange(env, raw("GET", "/containers/json", [("Origin", "https://evil.example")]), method="GET")
    assert not any(k.lower().startswith("access-control-") for k, _ in r.headers), r.headers


def test_cookie_get_needs_no_origin(env):
    r, up = _one_exchange(env, raw("GET", "/containers/json", cookie(env), token=None), method="GET")
    assert up.target == "/containers/json"


def test_allowed_host_name_passes(env):
    r, up = _one_exchange(env, raw("GET", "/info", host="Router.LAN:2375"), method="GET")
    assert up.header("Host") == "Router.LAN:2375"


@pytest.mark.parametrize("origin", [CORS, "http://localhost"])
def test_preflight_from_allowed_origin_is_answered_locally(env, origin):
    snap = env.snapshot()
    data = raw("OPTIONS", "/containers/create",
               [("Origin", origin), ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization,content-type")], token=None)
    with env.gw.connect(timeout=10) as c:
        c.send(data)
        r = c.read_response("OPTIONS", timeout=10)
    assert r.status == 204, r
    assert r.header("Access-Control-Allow-Origin") == origin
    assert r.header("Access-Control-Allow-Credentials") == "true"
    methods = r.header("Access-Control-Allow-Methods") or ""
    assert "POST" in methods and "*" not in methods
    allowed = (r.header("Access-Control-Allow-Headers") or "").lower()
    assert "authorization" in allowed and "content-type" in allowed and "*" not in allowed
    assert all("*" not in v for k, v in r.headers if k.lower().startswith("access-control-"))
    env.assert_nothing_forwarded(snap, "preflight-ok-" + origin)


def test_sign_in_page_needs_no_credentials_and_stays_local(env):
    snap = env.snapshot()
    r = authlib.request(env.gw, "GET", "/_dockermand/ui/")
    assert r.status == 200 and b"<html" in r.body, r
    policy = r.header("Content-Security-Policy")
    assert "frame-ancestors " in policy and "unsafe" not in policy, r
    r = authlib.request(env.gw, "GET", "/_dockermand/login")
    assert r.status == 200 and "methods" in json.loads(r.body), r
    env.assert_nothing_forwarded(snap, "sign-in-page")


def test_denials_are_counted_per_rule(env):
    """``/_dockermand/status`` counts each refusal under its rule, and
    allowed requests under ``allowed``."""
    before = authlib.status(env.gw, OP)["policy"]
    sends = [post_json("/containers/create", PRIV), post_json("/containers/create", PRIV),
             post_json("/containers/create", hc('"CapAdd":["SYS_ADMIN"]')),
             raw("GET", "/Containers/json"), raw("GET", "/containers/json", token="nope")]
    for data in sends:
        with env.gw.connect(timeout=10) as c:
            c.send(data)
            assert c.read_response(timeout=10).status in (401, 403)
    _one_exchange(env, raw("GET", "/info"), method="GET")
    after = authlib.status(env.gw, OP)["policy"]
    delta = {k: after["denied"].get(k, 0) - before["denied"].get(k, 0)
             for k in set(after["denied"]) | set(before["denied"])}
    delta = {k: v for k, v in delta.items() if v}
    assert delta == {"privileged": 2, "cap_add": 1, "no_route": 1, "auth": 1}, delta
    # the control /info and the status request itself are allowed requests
    assert after["allowed"] - before["allowed"] >= 1, (before, after)
    assert after["dry_run"] is False
