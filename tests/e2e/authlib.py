"""Helpers for the authentication and policy suites (test_auth.py,
test_policy_hostile.py): config files with tokens, users and rpcd, raw
requests with credentials, the audit log, the stand-in ``ubus`` and docker
CLI configs that carry a bearer token.

Nothing here sleeps to synchronise: every wait polls with a deadline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import helpers
from helpers import Gateway, HttpConn, build_request

HERE = Path(__file__).resolve().parent
UBUS_STANDIN = HERE.parent / "standin" / "ubus"

DENY_RE = re.compile(
    r"(?P<kind>would deny|deny) principal=(?P<principal>\S+) addr=(?P<addr>\S+) method=(?P<method>\S+) "
    r"path=(?P<path>\S*) route=(?P<route>\S+) rule=(?P<rule>\S+) field=(?P<field>\S*) status=(?P<status>\d+)"
)


# ---------------------------------------------------------------------------
# secrets and config


def new_token(prefix: str) -> str:
    """A random bearer token that can never look like an rpcd session id."""
    return "%s-%s" % (prefix, secrets.token_urlsafe(24))


def new_rpcd_session() -> str:
    """An rpcd session id as LuCI makes them: 32 hex digits."""
    return secrets.token_hex(16)


def sha256_hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def hash_password(password: str) -> str:
    """The daemon's own ``--hash-password`` output for ``password``."""
    p = subprocess.run([helpers.gateway_binary(), "--hash-password"], input=(password + "\n").encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p
    out = p.stdout.decode().strip()
    assert out.startswith("pbkdf2-sha256$"), out
    return out


def auth_config(tokens: dict | None = None, users: list | None = None, rpcd: dict | None = None,
                **extra) -> dict:
    """A config dict; ``tokens`` maps role -> token (named after the role)."""
    auth: dict = {}
    if tokens:
        auth["tokens"] = [{"name": role, "sha256": sha256_hex(tok), "role": role}
                          for role, tok in tokens.items()]
    if users:
        auth["users"] = users
    if rpcd:
        auth["rpcd"] = rpcd
    cfg = {"auth": auth}
    cfg.update(extra)
    return cfg


def write_config(directory, cfg: dict, name="dockermand.json") -> str:
    path = os.path.join(str(directory), name)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


def start_gateway(factory, config_path: str, upstream: str, args=(), env=None) -> Gateway:
    """A gateway (through the conftest factory, so it is stopped and checked
    for a clean exit) with ``--config``."""
    return factory(upstream=upstream, args=["--config", config_path] + list(args), env=env)


# ---------------------------------------------------------------------------
# requests


def bearer(token: str) -> list:
    return [("Authorization", "Bearer " + token)]


def request(gw: Gateway, method: str, target: str, headers=None, body: bytes = b"",
            timeout: float = 30.0, host: str | None = "localhost") -> helpers.HttpResponse:
    """One request on a fresh connection."""
    with HttpConn(gw.addr, timeout) as c:
        c.send(build_request(method, target, headers, body, host=host))
        return c.read_response(method, timeout)


def whoami(gw: Gateway, headers) -> helpers.HttpResponse:
    return request(gw, "GET", "/_dockermand/whoami", headers)


def status(gw: Gateway, token: str) -> dict:
    r = request(gw, "GET", "/_dockermand/status", bearer(token))
    assert r.status == 200, r
    return r.json()


def denied_counts(gw: Gateway, token: str) -> dict:
    return dict(status(gw, token)["policy"]["denied"])


def login(gw: Gateway, username: str, password: str, headers=()) -> helpers.HttpResponse:
    body = json.dumps({"username": username, "password": password}).encode()
    return request(gw, "POST", "/_dockermand/login",
                   [("Content-Type", "application/json")] + list(headers), body)


def session_headers(resp: helpers.HttpResponse) -> list:
    """What a client sends to use the session a login reply made: the
    cookie and, since a cookie reaches every port of its host, the page's
    half of the secret (the reply's ``binding``)."""
    return [("Cookie", "dockermand_session=" + session_cookie(resp)),
            ("X-Dockermand-Binding", resp.json()["binding"])]


def session_cookie(resp: helpers.HttpResponse) -> str:
    """The ``dockermand_session`` value of a login reply's Set-Cookie."""
    for v in resp.header_all("Set-Cookie"):
        m = re.match(r"\s*dockermand_session=([^;]*)", v)
        if m:
            return m.group(1)
    raise AssertionError("no dockermand_session cookie in %r" % resp)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def message(resp: helpers.HttpResponse) -> str:
    assert "json" in (resp.header("Content-Type") or ""), resp
    msg = resp.json().get("message")
    assert isinstance(msg, str) and msg, resp
    return msg


def ws_headers(key: str | None = None) -> list:
    key = key or base64.b64encode(os.urandom(16)).decode()
    return [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13")]


# ---------------------------------------------------------------------------
# the audit log


def deny_lines(gw: Gateway, start: int = 0) -> list[dict]:
    """Parsed ``deny``/``would deny`` lines of the gateway's stderr from line
    index ``start`` on."""
    with gw._cond:
        lines = list(gw.stderr_lines[start:])
    out = []
    for line in lines:
        m = DENY_RE.search(line)
        if m:
            d = m.groupdict()
            d["status"] = int(d["status"])
            out.append(d)
    return out


def wait_deny(gw: Gateway, start: int, timeout: float = 5.0, **want) -> dict:
    """Wait for a deny line after ``start`` whose fields equal ``want``."""
    def find():
        for d in deny_lines(gw, start):
            if all(str(d.get(k)) == str(v) for k, v in want.items()):
                return d
        return None
    try:
        return helpers.wait_until(find, timeout, "deny line %r" % want)
    except AssertionError:
        raise AssertionError("no deny line with %r; lines since %d:\n%s"
                             % (want, start, "\n".join(gw.stderr_lines[start:][-30:])))


def log_mark(gw: Gateway) -> int:
    with gw._cond:
        return len(gw.stderr_lines)


# ---------------------------------------------------------------------------
# stand-in ubus


class Ubus:
    """A private copy of tests/standin/ubus with its own session table and
    call log; ``env`` is the environment to start the gateway with."""

    def __init__(self, directory):
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.exe = os.path.join(self.dir, "ubus")
        shutil.copyfile(UBUS_STANDIN, self.exe)
        os.chmod(self.exe, 0o755)
        self.sessions_path = os.path.join(self.dir, "ubus-sessions.json")
        self.log_path = os.path.join(self.dir, "ubus-calls.log")
        self.sessions: dict = {}
        self.save()
        self.release_path = os.path.join(self.dir, "release")
        self.logins_path = os.path.join(self.dir, "ubus-logins.json")
        self.env = dict(os.environ, DM_UBUS_SESSIONS=self.sessions_path, DM_UBUS_LOG=self.log_path,
                        DM_UBUS_RELEASE=self.release_path, DM_UBUS_LOGINS=self.logins_path)

    def release(self):
        """Lets calls for ``hang`` sessions answer."""
        with open(self.release_path, "w"):
            pass

    def save(self):
        tmp = self.sessions_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.sessions, f)
        os.replace(tmp, self.sessions_path)

    def add(self, read: bool, write: bool, **extra) -> str:
        sid = new_rpcd_session()
        self.sessions[sid] = dict(read=read, write=write, **extra)
        self.save()
        return sid

    def add_user(self, name: str, password: str, read: bool, write: bool) -> str:
        """A router user whose login makes a session with these grants."""
        sid = self.add(read, write)
        try:
            with open(self.logins_path) as f:
                users = json.load(f)
        except FileNotFoundError:
            users = {}
        users[name] = {"password": password, "session": sid}
        with open(self.logins_path, "w") as f:
            json.dump(users, f)
        return sid

    def calls(self, session: str | None = None) -> list[dict]:
        try:
            with open(self.log_path) as f:
                entries = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            entries = []
        if session is not None:
            entries = [e for e in entries if e.get("session") == session]
        return entries


# ---------------------------------------------------------------------------
# docker CLI with a token


class TokenCLI(helpers.DockerCLI):
    """The docker CLI through a gateway, with ``--config DIR`` whose
    config.json sends ``Authorization: Bearer TOKEN`` (HttpHeaders)."""

    def __init__(self, exe: str, docker_host: str, token: str | None, directory):
        super().__init__(exe, docker_host)
        self.config_dir = str(directory)
        os.makedirs(self.config_dir, exist_ok=True)
        cfg = {"HttpHeaders": {"Authorization": "Bearer " + token}} if token else {}
        with open(os.path.join(self.config_dir, "config.json"), "w") as f:
            json.dump(cfg, f)

    def run(self, *args, **kw):
        return super().run("--config", self.config_dir, *args, **kw)

    def popen(self, *args, **kw):
        return super().popen("--config", self.config_dir, *args, **kw)

    def fails(self, *args, **kw) -> str:
        """Runs a command that must fail; returns its stderr."""
        p = self.run(*args, check=False, **kw)
        assert p.returncode != 0, "docker %s succeeded but must fail: %r" % (" ".join(args), p.stdout[-500:])
        return p.stderr.decode(errors="replace")
