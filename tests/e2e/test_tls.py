"""TLS listeners end to end (issue 15): ``tls://`` listeners in front of the
private dockerd, with certificates that ``openssl`` makes for the session (a
test CA, server certificates for ``localhost`` and ``127.0.0.1``, client
certificates, one from another CA and one that expired).

What is checked:

* the docker CLI (v28) with ``DOCKER_TLS_VERIFY=1`` and ``DOCKER_CERT_PATH``:
  ``version``, ``run -i`` with half-close, ``logs -f``, ``cp`` both ways
  byte-exact, ``exec`` with and without ``-i``, ``save`` and ``load``;
* refusals: no client certificate, one from another CA, an expired one (each
  a TLS alert, before any HTTP), and a valid one no entry maps (401 JSON);
* identity: ``auth.certs`` by ``cn`` and by ``san``, ``cert_default_role``,
  a request's own credential winning over its certificate, and the principal
  ``cert:<name>`` in the audit lines;
* plain HTTP sent to the TLS port is closed at once and nothing else suffers;
* docker-py with ``tls=TLSConfig(...)``;
* ``tls.client_auth = optional``: a token without a certificate;
* SIGHUP reloads the certificate and the client CA: streams and keep-alive
  connections opened before carry on, new handshakes get the new ones, a
  broken key is refused and the running certificate kept;
* ``--check-config`` agrees with the daemon about TLS configs;
* handshake limits: silent or half-hello clients cannot lock out a real one,
  and the gateway closes them at the handshake timeout;
* hijacked attach, consoles over ``wss://`` (our raw client and
  websocket-client), dockerd's ``attach/ws``, and a TLS client that stops
  reading a console's output keeps the gateway small;
* Chromium over https (Debian's ``chromium`` driven by Playwright): the
  server certificate trusted by a launch flag, the login page's own form, same-
  origin ``fetch`` with the cookie and with a token, and a console over
  ``wss://``.

Nothing sleeps to synchronise: every wait polls with a deadline or reads a
socket with a timeout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path

import pytest

import authlib
import consolelib as cl
import helpers
from helpers import DockerCLI, HttpConn, LineReader, build_request, sha256, sha256_file, wait_until

pytestmark = pytest.mark.usefixtures("busybox_image")

ADMIN = authlib.new_token("admin")
OP = authlib.new_token("op")
READ = authlib.new_token("rd")

CA_CN = "dockermand test CA"
OTHER_CA_CN = "dockermand other CA"
SERVER1_CN = "dockermand-test-1"
SERVER2_CN = "dockermand-test-2"
CI_SAN = "ci.example.net"

# laptop by its subject CN, ci by its DNS name (its CN is mapped to nothing)
CERT_MAP = [{"cn": "laptop", "role": "operator"}, {"san": CI_SAN, "role": "read"}]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = helpers.REPO / "target" / "e2e-artifacts"


# ---------------------------------------------------------------------------
# certificates, made by openssl for the session


OPENSSL_CNF = """\
[ca]
default_ca = ca_default

[ca_default]
dir = .
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no

[policy_any]
commonName = supplied

[req]
distinguished_name = req_dn

[req_dn]

[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_san_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = DNS:%s
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
""" % CI_SAN


def openssl(*args, cwd) -> bytes:
    p = subprocess.run(["openssl"] + [str(a) for a in args], cwd=str(cwd), capture_output=True, timeout=120)
    assert p.returncode == 0, "openssl %s failed: %s" % (" ".join(map(str, args)), p.stderr.decode())
    return p.stdout


class Cert:
    """A certificate and its key (PEM files)."""

    def __init__(self, cert: Path, key: Path, cn: str):
        self.cert = str(cert)
        self.key = str(key)
        self.cn = cn

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(Path(self.cert).read_text())

    def spki_sha256_b64(self) -> str:
        """Base64 of the SHA-256 of the certificate's SubjectPublicKeyInfo:
        what Chromium's ``--ignore-certificate-errors-spki-list`` takes."""
        pem = openssl("x509", "-in", self.cert, "-noout", "-pubkey", cwd=Path(self.cert).parent).decode()
        body = "".join(l for l in pem.splitlines() if l and not l.startswith("-----"))
        return base64.b64encode(hashlib.sha256(base64.b64decode(body)).digest()).decode()


class CA:
    """A certificate authority run with ``openssl ca`` in its own directory."""

    def __init__(self, directory: Path, cn: str):
        self.dir = directory
        (directory / "issued").mkdir(parents=True)
        (directory / "openssl.cnf").write_text(OPENSSL_CNF)
        (directory / "index.txt").write_text("")
        (directory / "serial").write_text("1000\n")
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ca-key.pem",
                cwd=directory)
        openssl("req", "-config", "openssl.cnf", "-x509", "-new", "-key", "ca-key.pem", "-subj", "/CN=" + cn,
                "-days", "3650", "-extensions", "v3_ca", "-out", "ca.pem", cwd=directory)
        self.pem = str(directory / "ca.pem")

    def issue(self, name: str, cn: str, extensions: str, key_kind: str = "ec-pkcs8",
              dates: tuple[str, str] | None = None) -> Cert:
        d = self.dir
        key = name + "-key.pem"
        if key_kind == "ec-pkcs8":
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key, cwd=d)
        elif key_kind == "ec-sec1":
            openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key, cwd=d)
        elif key_kind == "rsa-pkcs1":
            openssl("genrsa", "-traditional", "-out", key, "2048", cwd=d)
        else:
            raise ValueError(key_kind)
        openssl("req", "-config", "openssl.cnf", "-new", "-key", key, "-subj", "/CN=" + cn, "-out", name + ".csr",
                cwd=d)
        validity = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "30"]
        openssl("ca", "-config", "openssl.cnf", "-batch", "-notext", "-cert", "ca.pem", "-keyfile", "ca-key.pem",
                "-in", name + ".csr", "-out", name + ".pem", "-extensions", extensions, *validity, cwd=d)
        return Cert(d / (name + ".pem"), d / key, cn)


class Pki:
    def __init__(self, root: Path):
        self.root = root
        self.ca = CA(root / "ca", CA_CN)
        self.other_ca = CA(root / "other-ca", OTHER_CA_CN)
        # the server: RSA with a PKCS#1 key; the one a reload brings: ECDSA, SEC1 key
        self.server1 = self.ca.issue("server1", SERVER1_CN, "server_ext", "rsa-pkcs1")
        self.server2 = self.ca.issue("server2", SERVER2_CN, "server_ext", "ec-sec1")
        self.clients = {
            "laptop": self.ca.issue("laptop", "laptop", "client_ext"),
            "ci": self.ca.issue("ci", "ci-cn-not-mapped", "client_san_ext"),
            "stranger": self.ca.issue("stranger", "stranger", "client_ext"),
            # the same name as laptop: only the CA (or the dates) tell them apart
            "other-ca": self.other_ca.issue("laptop", "laptop", "client_ext"),
            "expired": self.ca.issue("expired", "laptop", "client_ext",
                                     dates=("20200101000000Z", "20200201000000Z")),
        }

    def client(self, name: str) -> Cert | None:
        return None if name == "none" else self.clients[name]

    def cli_dir(self, name: str) -> str:
        """A DOCKER_CERT_PATH: ca.pem, and cert.pem and key.pem unless
        ``name`` is ``none``."""
        d = self.root / "cli" / name
        if not d.exists():
            d.mkdir(parents=True)
            shutil.copyfile(self.ca.pem, d / "ca.pem")
            c = self.client(name)
            if c is not None:
                shutil.copyfile(c.cert, d / "cert.pem")
                shutil.copyfile(c.key, d / "key.pem")
        return str(d)

    def context(self, client: str = "none", version=None, alpn=("http/1.1",)) -> ssl.SSLContext:
        """A client context that trusts the test CA (and checks the name
        ``localhost``) and shows the named client certificate."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.ca.pem)
        c = self.client(client)
        if c is not None:
            ctx.load_cert_chain(c.cert, c.key)
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx


@pytest.fixture(scope="session")
def pki():
    root = Path(tempfile.mkdtemp(prefix="dmtls", dir="/tmp"))
    try:
        yield Pki(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------
# gateways


_hashes: dict = {}


def hash_token(token: str) -> str:
    """What the daemon's own ``--hash-token`` prints for ``token``."""
    if token not in _hashes:
        p = subprocess.run([helpers.gateway_binary(), "--hash-token", token], capture_output=True, timeout=10)
        assert p.returncode == 0, p
        _hashes[token] = p.stdout.decode().strip()
    return _hashes[token]


def tls_config(pki: Pki, *, client_ca=True, certs=CERT_MAP, tls=None, auth=None, server: Cert | None = None,
               **extra) -> dict:
    server = server or pki.server1
    t = {"cert": server.cert, "key": server.key}
    if client_ca:
        t["client_ca"] = pki.ca.pem
    t.update(tls or {})
    a = {"tokens": [{"name": role, "sha256": hash_token(tok), "role": role}
                    for role, tok in (("admin", ADMIN), ("operator", OP), ("read", READ))]}
    if certs:
        a["certs"] = certs
    a.update(auth or {})
    cfg = {"auth": a, "tls": t}
    cfg.update(extra)
    return cfg


def start_tls_gateway(gateway_factory, dockerd, tmp_path, cfg: dict, plain=True, args=(),
                      name="tls.json") -> helpers.Gateway:
    """A gateway with a ``tls://`` listener (and a plain one unless
    ``plain`` is false) on ports the kernel picks."""
    path = authlib.write_config(tmp_path, cfg, name)
    listen = ("tls://127.0.0.1:0",) + (("127.0.0.1:0",) if plain else ())
    return gateway_factory(upstream=dockerd.url, listen=listen, args=["--config", path] + list(args))


@pytest.fixture
def gw_tls(gateway_factory, dockerd, tmp_path, pki):
    """Client certificates required (the test CA), CERT_MAP, no default role;
    tokens for the plain listener."""
    return start_tls_gateway(gateway_factory, dockerd, tmp_path, tls_config(pki))


class TlsCLI(DockerCLI):
    """The docker CLI with ``DOCKER_TLS_VERIFY=1`` and a ``DOCKER_CERT_PATH``."""

    def __init__(self, exe: str, port: int, cert_dir: str, host: str = "localhost"):
        super().__init__(exe, "tcp://%s:%d" % (host, port))
        self.cert_dir = cert_dir

    def env(self, **extra) -> dict:
        return helpers.docker_env(self.docker_host, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=self.cert_dir,
                                  **extra)

    def fails(self, *args, timeout: float = 60, **kw) -> str:
        p = self.run(*args, check=False, timeout=timeout, **kw)
        assert p.returncode != 0, "docker %s succeeded but must fail: %r" % (" ".join(args), p.stdout[-500:])
        return p.stderr.decode(errors="replace")


class TlsTokenCLI(authlib.TokenCLI):
    """The same, with a bearer token in its config (``HttpHeaders``)."""

    def __init__(self, exe: str, port: int, cert_dir: str, token: str, directory):
        super().__init__(exe, "tcp://localhost:%d" % port, token, directory)
        self.cert_dir = cert_dir

    env = TlsCLI.env


@pytest.fixture
def laptop_cli(gw_tls, pki, docker_exe) -> TlsCLI:
    return TlsCLI(docker_exe, gw_tls.tls_addr[1], pki.cli_dir("laptop"))


# ---------------------------------------------------------------------------
# raw TLS clients


def tls_conn(gw, ctx, timeout: float = 20.0) -> HttpConn:
    return HttpConn(gw.tls_addr, timeout, ssl_context=ctx)


def treq(gw, ctx, method, target, headers=None, body=b"", timeout: float = 30.0) -> helpers.HttpResponse:
    """One request on a fresh TLS connection."""
    with tls_conn(gw, ctx, timeout) as c:
        c.send(build_request(method, target, headers, body))
        return c.read_response(method, timeout)


def whoami(gw, ctx, headers=()) -> tuple:
    r = treq(gw, ctx, "GET", "/_dockermand/whoami", list(headers))
    return r.status, (r.json() if r.status == 200 else authlib.message(r))


def tls_refusal(gw, ctx, timeout: float = 10.0) -> ssl.SSLError:
    """Connects, sends a request and returns the TLS error that ends it; fails
    if an HTTP reply (or nothing, within the timeout) comes back instead.
    With TLS 1.3 the client's side of the handshake is over before the server
    has judged its certificate, so the refusal may arrive as an alert on the
    first read."""
    try:
        with tls_conn(gw, ctx, timeout) as c:
            c.send(build_request("GET", "/_dockermand/whoami"))
            r = c.read_response("GET", timeout)
    except ssl.SSLError as e:
        return e
    except helpers.ConnectionClosed as e:
        raise AssertionError("connection closed without a TLS alert (got %r)" % e.partial)
    raise AssertionError("the handshake was accepted: %r" % r)


def create_body(image: str, **extra) -> bytes:
    return json.dumps(dict({"Image": image, "Cmd": ["true"]}, **extra)).encode()


JSON = [("Content-Type", "application/json")]


def bearer(token: str) -> list:
    return [("Authorization", "Bearer " + token)]


def no_container_named(api_direct, name: str) -> bool:
    return not api_direct.containers(all=True, filters={"name": name})


# ---------------------------------------------------------------------------
# 1. the docker CLI with DOCKER_TLS_VERIFY


def test_cli_version(laptop_cli, docker_direct):
    via = json.loads(laptop_cli.out("version", "--format", "{{json .}}"))
    direct = json.loads(docker_direct.out("version", "--format", "{{json .}}"))
    assert via["Server"]["Version"] == direct["Server"]["Version"]
    assert via["Server"]["ApiVersion"] == direct["Server"]["ApiVersion"]


def test_cli_run_interactive_half_close(laptop_cli, busybox_image):
    # the CLI ends stdin with TLS close_notify; cat sees EOF, and everything
    # it echoed comes back before the command exits
    data = os.urandom(2 * 1024 * 1024 + 17)
    p = laptop_cli.run("run", "-i", "--rm", busybox_image, "cat", input=data, timeout=90)
    assert len(p.stdout) == len(data)
    assert p.stdout == data


def test_cli_logs_follow(laptop_cli, docker_direct, busybox_image, uniq):
    # the second line is written only when the test says so: it can only
    # arrive on a stream that is still live
    cid = laptop_cli.out("run", "-d", "--name", uniq("tlslogs"), busybox_image, "sh", "-c",
                         "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second; sleep 100000")
    proc = laptop_cli.popen("logs", "-f", cid)
    try:
        lines = LineReader(proc.stdout)
        lines.wait_for(r"^first$", 30)
        assert proc.poll() is None
        docker_direct.run("exec", cid, "touch", "/tmp/go")
        lines.wait_for(r"^second$", 30)
        assert lines.lines[:2] == ["first", "second"]
        assert proc.poll() is None, "logs -f ended while the container runs"
    finally:
        proc.kill()
        proc.wait(10)


def test_cli_cp_both_ways_byte_exact(laptop_cli, running_container, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(4 * 1024 * 1024 + 321))
    want = sha256_file(src)
    laptop_cli.run("cp", str(src), "%s:/tmp/blob.bin" % running_container)
    inside = laptop_cli.out("exec", running_container, "sha256sum", "/tmp/blob.bin").split()[0]
    assert inside == want
    back = tmp_path / "back"
    back.mkdir()
    laptop_cli.run("cp", "%s:/tmp/blob.bin" % running_container, str(back))
    assert (back / "blob.bin").stat().st_size == src.stat().st_size
    assert sha256_file(back / "blob.bin") == want


def test_cli_exec(laptop_cli, running_container):
    assert laptop_cli.run("exec", running_container, "echo", "hello over tls").stdout == b"hello over tls\n"
    data = os.urandom(3 * 1024 * 1024)
    p = laptop_cli.run("exec", "-i", running_container, "sha256sum", input=data, timeout=90)
    assert p.stdout.decode().split()[0] == sha256(data)
    p = laptop_cli.run("exec", "-i", running_container, "cat", input=b"from stdin\n")
    assert p.stdout == b"from stdin\n"
    p = laptop_cli.run("exec", running_container, "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3


def test_cli_save_and_load(laptop_cli, docker_direct, busybox_image, uniq, tmp_path):
    tag = uniq("tlssave") + ":v1"
    docker_direct.run("tag", busybox_image, tag)
    via = laptop_cli.run("save", tag, timeout=120).stdout
    direct = docker_direct.run("save", tag, timeout=120).stdout
    assert len(via) > 1024 * 1024
    assert sha256(via) == sha256(direct)
    docker_direct.run("rmi", tag)
    assert docker_direct.run("image", "inspect", tag, check=False).returncode != 0
    tarpath = tmp_path / "img.tar"
    tarpath.write_bytes(via)
    with open(tarpath, "rb") as f:
        p = laptop_cli.run("load", stdin=f, timeout=120)
    assert tag.encode() in p.stdout
    assert docker_direct.out("run", "--rm", tag, "echo", "loaded") == "loaded"


# ---------------------------------------------------------------------------
# 2. refusals and identity


REFUSED = {
    # client certificate: (the docker CLI's error, OpenSSL's name for the alert)
    "none": ("tls: certificate required", "CERTIFICATE_REQUIRED"),
    # Go shows a client certificate only if its issuer is among the CAs the
    # server asks for, so the CLI sends none; Python's OpenSSL sends it
    "other-ca": ("tls: certificate required", "UNKNOWN_CA"),
    "expired": ("tls: expired certificate", "CERTIFICATE_EXPIRED"),
}


@pytest.mark.parametrize("client", sorted(REFUSED))
def test_handshake_refused(gw_tls, pki, docker_exe, client):
    cli_error, alert = REFUSED[client]
    mark = authlib.log_mark(gw_tls)
    err = TlsCLI(docker_exe, gw_tls.tls_addr[1], pki.cli_dir(client)).fails("ps", timeout=30)
    assert "remote error: " + cli_error in err, err
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        e = tls_refusal(gw_tls, pki.context(client, version))
        assert alert in (e.reason or str(e)), "%s: %r" % (version, e)
    # refused by TLS, before any request was read: no HTTP-level refusal
    assert authlib.deny_lines(gw_tls, mark) == []
    # and the gateway serves the others as before
    assert whoami(gw_tls, pki.context("laptop")) == (200, {"name": "cert:laptop", "role": "operator"})


def test_unmapped_certificate_gets_401(gw_tls, pki, docker_exe, running_container):
    mark = authlib.log_mark(gw_tls)
    r = treq(gw_tls, pki.context("stranger"), "GET", "/containers/json")
    assert r.status == 401, r
    assert (r.header("WWW-Authenticate") or "").startswith("Bearer"), r
    assert authlib.message(r) == "authentication required"
    authlib.wait_deny(gw_tls, mark, rule="auth", status=401, principal="-", path="/containers/json")
    err = TlsCLI(docker_exe, gw_tls.tls_addr[1], pki.cli_dir("stranger")).fails("ps")
    assert "authentication required" in err, err


def test_certificate_mapped_by_cn(gw_tls, pki, laptop_cli, busybox_image, api_direct, uniq):
    assert whoami(gw_tls, pki.context("laptop")) == (200, {"name": "cert:laptop", "role": "operator"})
    # operator: may create
    name = uniq("cn")
    cid = laptop_cli.out("create", "--name", name, busybox_image, "true")
    assert api_direct.inspect_container(cid)["Name"] == "/" + name
    # and the policy still applies to it, under its certificate's name
    mark = authlib.log_mark(gw_tls)
    r = treq(gw_tls, pki.context("laptop"), "POST", "/containers/create?name=" + uniq("priv"), JSON,
             create_body(busybox_image, HostConfig={"Privileged": True}))
    assert r.status == 403, r
    authlib.wait_deny(gw_tls, mark, principal="cert:laptop", field="HostConfig.Privileged", status=403)


def test_certificate_mapped_by_san(gw_tls, pki, docker_exe, running_container, busybox_image, api_direct, uniq):
    ctx = pki.context("ci")
    assert whoami(gw_tls, ctx) == (200, {"name": "cert:" + CI_SAN, "role": "read"})
    r = treq(gw_tls, ctx, "GET", "/containers/json")
    assert r.status == 200, r
    assert running_container in [c["Id"] for c in r.json()]
    # read: may not create
    name = uniq("san")
    mark = authlib.log_mark(gw_tls)
    r = treq(gw_tls, ctx, "POST", "/containers/create?name=" + name, JSON, create_body(busybox_image))
    assert r.status == 403, r
    authlib.message(r)
    authlib.wait_deny(gw_tls, mark, principal="cert:" + CI_SAN, method="POST", status=403)
    assert no_container_named(api_direct, name)
    # the same through the CLI
    cli = TlsCLI(docker_exe, gw_tls.tls_addr[1], pki.cli_dir("ci"))
    assert running_container in cli.out("ps", "-q", "--no-trunc").split()
    err = cli.fails("create", "--name", name, busybox_image, "true")
    assert "read" in err, err
    assert no_container_named(api_direct, name)


def test_cert_default_role(gateway_factory, dockerd, tmp_path, pki, busybox_image, api_direct, uniq):
    gw = start_tls_gateway(gateway_factory, dockerd, tmp_path,
                           tls_config(pki, auth={"cert_default_role": "read"}))
    ctx = pki.context("stranger")
    assert whoami(gw, ctx) == (200, {"name": "cert:stranger", "role": "read"})
    assert treq(gw, ctx, "GET", "/containers/json").status == 200
    name = uniq("dflt")
    mark = authlib.log_mark(gw)
    r = treq(gw, ctx, "POST", "/containers/create?name=" + name, JSON, create_body(busybox_image))
    assert r.status == 403, r
    authlib.wait_deny(gw, mark, principal="cert:stranger", method="POST", status=403)
    assert no_container_named(api_direct, name)
    # a mapping still wins over the default
    assert whoami(gw, pki.context("laptop")) == (200, {"name": "cert:laptop", "role": "operator"})
    # the default is for verified certificates only
    e = tls_refusal(gw, pki.context("other-ca"))
    assert "UNKNOWN_CA" in (e.reason or str(e)), e


def test_credential_in_the_request_wins_over_the_certificate(gw_tls, pki):
    ctx = pki.context("laptop")
    assert whoami(gw_tls, ctx, bearer(READ)) == (200, {"name": "token:read", "role": "read"})
    status, msg = whoami(gw_tls, ctx, bearer("no-such-token"))
    assert status == 401, msg
    # without a certificate (optional is not set: none is refused) a token is
    # no way in
    e = tls_refusal(gw_tls, pki.context("none"))
    assert "CERTIFICATE_REQUIRED" in (e.reason or str(e)), e


def test_versions_and_alpn(gw_tls, pki):
    for version, name in ((ssl.TLSVersion.TLSv1_3, "TLSv1.3"), (ssl.TLSVersion.TLSv1_2, "TLSv1.2")):
        with tls_conn(gw_tls, pki.context("laptop", version, alpn=("h2", "http/1.1"))) as c:
            assert c.sock.version() == name
            assert c.sock.selected_alpn_protocol() == "http/1.1"
            # keep-alive: two requests on one connection
            for _ in range(2):
                r = c.request("GET", "/_ping", bearer(ADMIN))
                assert (r.status, r.body) == (200, b"OK"), r
    # older versions are refused by the server
    ctx = pki.context("laptop", alpn=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as e:
        tls_conn(gw_tls, ctx).close()
    # an alert from the server (not the client's own refusal to try)
    assert "_ALERT_" in (e.value.reason or ""), e.value


# ---------------------------------------------------------------------------
# 3. plain HTTP on the TLS port


def _read_to_close(sock: socket.socket, timeout: float) -> bytes:
    """Everything the peer sends until it closes; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    out = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("still open after %.1fs (got %r)" % (timeout, out[:100]))
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            raise AssertionError("still open after %.1fs (got %r)" % (timeout, out[:100]))
        except ConnectionResetError:
            return out
        if not data:
            return out
        out += data


def test_plain_http_to_the_tls_port(gw_tls, pki, docker_exe):
    baseline = gw_tls.fd_count()
    for junk in (build_request("GET", "/_ping"),
                 build_request("GET", "/_ping", bearer(ADMIN)) + build_request("GET", "/version"),
                 b"\x00" * 3000,
                 b"\x16\x03\x01\xff\xff" + os.urandom(200)):
        s = socket.create_connection(gw_tls.tls_addr, timeout=5)
        try:
            s.sendall(junk)
            reply = _read_to_close(s, 5)
        finally:
            s.close()
        assert not reply.startswith(b"HTTP/"), reply[:200]
        # at most a TLS alert record
        assert reply == b"" or reply[0] == 0x15, reply[:50]
    # the docker CLI without TLS: an error, not a hang
    p = DockerCLI(docker_exe, "tcp://localhost:%d" % gw_tls.tls_addr[1]).run("ps", check=False, timeout=30)
    assert p.returncode != 0, p
    wait_until(lambda: gw_tls.fd_count() <= baseline, 10, "gateway descriptors back to %d" % baseline)
    # TLS and plain clients are served as before
    assert whoami(gw_tls, pki.context("laptop")) == (200, {"name": "cert:laptop", "role": "operator"})
    r = authlib.request(gw_tls, "GET", "/_ping", bearer(ADMIN))
    assert (r.status, r.body) == (200, b"OK"), r
    assert TlsCLI(docker_exe, gw_tls.tls_addr[1], pki.cli_dir("laptop")).run("ps").returncode == 0


# ---------------------------------------------------------------------------
# 4. docker-py


def test_docker_py_tls(gw_tls, pki, busybox_image, running_container, docker_direct, uniq, monkeypatch):
    import docker
    import docker.errors
    import docker.tls
    import requests

    # requests lets these override the CA a client was given
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    laptop = pki.client("laptop")
    tls = docker.tls.TLSConfig(client_cert=(laptop.cert, laptop.key), ca_cert=pki.ca.pem, verify=True)
    client = docker.DockerClient(base_url="tcp://localhost:%d" % gw_tls.tls_addr[1], tls=tls, timeout=60)
    try:
        assert client.ping() is True
        assert running_container in [c.id for c in client.containers.list()]
        out = client.containers.run(busybox_image, ["sh", "-c", "echo one; echo two"], remove=True)
        assert out == b"one\ntwo\n"
        ctr = client.containers.run(busybox_image, ["sh", "-c",
                                                    "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done;"
                                                    " echo second; sleep 100000"],
                                    detach=True, name=uniq("pylogs"))
        stream = ctr.logs(stream=True, follow=True)
        got = b""
        for piece in stream:
            got += piece
            if got == b"first\n":
                docker_direct.run("exec", ctr.id, "touch", "/tmp/go")
            if got.count(b"\n") >= 2:
                break
        assert got == b"first\nsecond\n"
        stream.close()
        ctr.remove(force=True)
    finally:
        client.close()
    # the same client without its certificate is refused (at the version
    # check a new client makes)
    tls = docker.tls.TLSConfig(ca_cert=pki.ca.pem, verify=True)
    with pytest.raises((docker.errors.DockerException, requests.exceptions.SSLError)) as e:
        docker.DockerClient(base_url="tcp://localhost:%d" % gw_tls.tls_addr[1], tls=tls, timeout=20).ping()
    assert "CERTIFICATE_REQUIRED" in str(e.value), e.value


# ---------------------------------------------------------------------------
# 5. client_auth = optional


def test_optional_client_auth(gateway_factory, dockerd, tmp_path, pki, docker_exe, running_container):
    gw = start_tls_gateway(gateway_factory, dockerd, tmp_path,
                           tls_config(pki, tls={"client_auth": "optional"}), plain=False)
    none = pki.context("none")
    assert whoami(gw, none, bearer(OP)) == (200, {"name": "token:operator", "role": "operator"})
    r = treq(gw, none, "GET", "/containers/json", bearer(OP))
    assert r.status == 200 and running_container in [c["Id"] for c in r.json()], r
    r = treq(gw, none, "GET", "/containers/json")
    assert r.status == 401, r
    assert authlib.message(r) == "authentication required"
    # a certificate shown is still checked, and still a credential
    assert whoami(gw, pki.context("laptop")) == (200, {"name": "cert:laptop", "role": "operator"})
    e = tls_refusal(gw, pki.context("other-ca"))
    assert "UNKNOWN_CA" in (e.reason or str(e)), e
    # the CLI: TLS with only the CA, and a token
    port = gw.tls_addr[1]
    cli = TlsTokenCLI(docker_exe, port, pki.cli_dir("none"), OP, tmp_path / "cli-op")
    assert running_container in cli.out("ps", "-q", "--no-trunc").split()
    err = TlsCLI(docker_exe, port, pki.cli_dir("none")).fails("ps")
    assert "authentication required" in err, err


# ---------------------------------------------------------------------------
# 6. SIGHUP reloads the certificate


def peer_der(gw, ctx) -> bytes:
    with tls_conn(gw, ctx) as c:
        return c.sock.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate(gateway_factory, dockerd, tmp_path, pki, docker_exe, docker_direct,
                                        busybox_image, uniq):
    cert, key = tmp_path / "server.pem", tmp_path / "server-key.pem"
    shutil.copyfile(pki.server1.cert, cert)
    shutil.copyfile(pki.server1.key, key)
    # the files come from flags here (the other tests use the config file)
    cfg = tls_config(pki)
    del cfg["tls"]
    gw = start_tls_gateway(gateway_factory, dockerd, tmp_path, cfg, plain=False,
                           args=["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pki.ca.pem])
    ctx = pki.context("laptop")
    assert peer_der(gw, ctx) == pki.server1.der

    # before the reload: a keep-alive connection and a live log stream
    kept = tls_conn(gw, ctx)
    cli = TlsCLI(docker_exe, gw.tls_addr[1], pki.cli_dir("laptop"))
    cid = docker_direct.out("run", "-d", "--name", uniq("hup"), busybox_image, "sh", "-c",
                            "echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo after; sleep 100000")
    proc = cli.popen("logs", "-f", cid)
    try:
        r = kept.request("GET", "/_dockermand/whoami")
        assert r.status == 200, r
        lines = LineReader(proc.stdout)
        lines.wait_for(r"^before$", 30)

        def replace(src: Path, dst: Path):
            tmp = dst.with_suffix(".new")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)

        replace(Path(pki.server2.cert), cert)
        replace(Path(pki.server2.key), key)
        mark = authlib.log_mark(gw)
        gw.signal(signal.SIGHUP)
        gw.wait_for_line(r"configuration reloaded", 10, start=mark)
        assert not any("TLS certificates" in l for l in gw.stderr_lines[mark:]), gw.stderr_lines[mark:]

        # new handshakes get the new certificate (another serial and name)
        assert peer_der(gw, ctx) == pki.server2.der
        with tls_conn(gw, ctx) as c:
            subject = dict(x[0] for x in c.sock.getpeercert()["subject"])
            assert subject["commonName"] == SERVER2_CN
            r = c.request("GET", "/_dockermand/whoami")
            assert r.status == 200 and r.json()["name"] == "cert:laptop", r
        assert cli.run("ps").returncode == 0

        # what was open before carries on, on its old session
        assert kept.sock.getpeercert(binary_form=True) == pki.server1.der
        r = kept.request("GET", "/_dockermand/whoami")
        assert r.status == 200 and r.json() == {"name": "cert:laptop", "role": "operator"}, r
        docker_direct.run("exec", cid, "touch", "/tmp/go")
        lines.wait_for(r"^after$", 30)
        assert proc.poll() is None, "logs -f ended by the reload"

        # a broken key: the reload keeps the running certificate
        key.write_text("not a key\n")
        mark = authlib.log_mark(gw)
        gw.signal(signal.SIGHUP)
        gw.wait_for_line(r"keeping the running TLS certificates", 10, start=mark)
        gw.wait_for_line(r"configuration reloaded", 10, start=mark)
        assert peer_der(gw, ctx) == pki.server2.der
        assert kept.request("GET", "/_ping").status == 200
    finally:
        kept.close()
        proc.kill()
        proc.wait(10)


def test_sighup_reloads_the_client_ca(gateway_factory, dockerd, tmp_path, pki):
    ca = tmp_path / "client-ca.pem"
    shutil.copyfile(pki.ca.pem, ca)
    gw = start_tls_gateway(gateway_factory, dockerd, tmp_path, tls_config(pki, tls={"client_ca": str(ca)}),
                           plain=False)
    ours, theirs = pki.context("laptop"), pki.context("other-ca")
    assert whoami(gw, ours) == (200, {"name": "cert:laptop", "role": "operator"})
    e = tls_refusal(gw, theirs)
    assert "UNKNOWN_CA" in (e.reason or str(e)), e
    kept = tls_conn(gw, ours)
    try:
        shutil.copyfile(pki.other_ca.pem, ca)
        mark = authlib.log_mark(gw)
        gw.signal(signal.SIGHUP)
        gw.wait_for_line(r"configuration reloaded", 10, start=mark)
        # the other CA's "laptop" is now the one let in
        assert whoami(gw, theirs) == (200, {"name": "cert:laptop", "role": "operator"})
        e = tls_refusal(gw, ours)
        assert "UNKNOWN_CA" in (e.reason or str(e)), e
        # a connection verified before keeps its identity
        r = kept.request("GET", "/_dockermand/whoami")
        assert r.status == 200 and r.json()["name"] == "cert:laptop", r
    finally:
        kept.close()


# ---------------------------------------------------------------------------
# configuration


def check_config(path) -> subprocess.CompletedProcess:
    return subprocess.run([helpers.gateway_binary(), "--check-config", str(path)], capture_output=True, timeout=10)


def test_check_config_agrees_with_the_daemon(gateway_factory, dockerd, tmp_path, pki):
    """``--check-config`` (which the init script runs before it installs a
    config) accepts a TLS config the daemon runs, and refuses what the daemon
    refuses."""
    tls = {"cert": pki.server1.cert, "key": pki.server1.key, "client_ca": pki.ca.pem}
    # the listener comes from the file, with the certificate beside it
    path = authlib.write_config(tmp_path, {"listen": ["tls://127.0.0.1:0"], "tls": tls,
                                           "auth": {"certs": CERT_MAP}}, "listen.json")
    gw = gateway_factory(upstream=dockerd.url, listen=(), expect_listeners=1, args=["--config", path])
    assert whoami(gw, pki.context("laptop")) == (200, {"name": "cert:laptop", "role": "operator"})
    p = check_config(path)
    assert (p.returncode, p.stderr.decode()) == (0, ""), "the daemon runs this config, but: %r" % p
    # reachable from the network: a client CA is authentication enough ...
    path = authlib.write_config(tmp_path, {"listen": ["tls://0.0.0.0:2376"], "tls": tls}, "network.json")
    p = check_config(path)
    assert (p.returncode, p.stderr.decode()) == (0, ""), p
    # ... and without one, with no other credential, it is refused
    del tls["client_ca"]
    path = authlib.write_config(tmp_path, {"listen": ["tls://0.0.0.0:2376"], "tls": tls}, "open.json")
    p = check_config(path)
    assert p.returncode == 1 and "refusing to listen on tls://0.0.0.0:2376" in p.stderr.decode(), p
    g = gateway_factory(upstream=dockerd.url, listen=(), args=["--config", path], wait=False, clean_exit=False)
    assert g.wait_exit(10) != 0
    assert "refusing to listen on tls://0.0.0.0:2376" in g.output(), g.output()


# ---------------------------------------------------------------------------
# 7. handshake limits


def client_hello(ctx: ssl.SSLContext) -> bytes:
    """The bytes of a real ClientHello for ``localhost``."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:20]
    return hello


def _closed_now(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def test_stalled_handshakes_cannot_lock_out_clients(gateway_factory, dockerd, tmp_path, pki):
    cap, timeout = 4, 2
    gw = start_tls_gateway(gateway_factory, dockerd, tmp_path,
                           tls_config(pki, tls={"max_handshakes": cap, "handshake_timeout_secs": timeout}),
                           plain=False)
    baseline = gw.fd_count()
    hello = client_hello(pki.context("laptop"))
    stalled = []  # (socket, connected at)
    try:
        for i in range(3 * cap):
            s = socket.create_connection(gw.tls_addr, timeout=5)
            stalled.append((s, time.monotonic()))
            if i % 2:  # half a ClientHello; the others send nothing
                s.sendall(hello[:len(hello) // 2])
        # a real client, while they hold more handshakes than the cap
        t0 = time.monotonic()
        with tls_conn(gw, pki.context("laptop"), timeout=timeout) as c:
            for _ in range(3):
                # (answered by the gateway itself: no pooled upstream
                # connection to count among its descriptors below)
                r = c.request("GET", "/_dockermand/whoami", bearer(ADMIN))
                assert r.status == 200 and r.json()["name"] == "token:admin", r
        took = time.monotonic() - t0
        open_now = [i for i, (s, _) in enumerate(stalled) if not _closed_now(s)]
        assert took < timeout, "the real client took %.2fs" % took
        # the oldest made room, and only they: the newest `cap` - 1 still
        # wait on their handshakes (the real client took one place), even
        # those whose half ClientHello found the handshake worker full of
        # evicted clients' jobs
        assert open_now == list(range(len(stalled) - cap + 1, len(stalled))), open_now

        # those are closed by the gateway at the handshake timeout, not before
        deadline = stalled[-1][1] + timeout + 5
        waiting = {i: stalled[i] for i in open_now}
        closed_after = {}
        while waiting:
            left = deadline - time.monotonic()
            assert left > 0, "stalled handshakes %s still open %ss after connecting" % (sorted(waiting), timeout + 5)
            readable, _, _ = select.select([s for s, _ in waiting.values()], [], [], left)
            now = time.monotonic()
            for i, (s, t) in list(waiting.items()):
                if s in readable:
                    try:
                        data = s.recv(65536)
                    except ConnectionResetError:
                        data = b""
                    if not data:
                        closed_after[i] = now - t
                        del waiting[i]
        for i, after in closed_after.items():
            assert after >= timeout - 0.05, "stalled client %d closed %.2fs after connecting" % (i, after)
    finally:
        for s, _ in stalled:
            s.close()
    wait_until(lambda: gw.fd_count() <= baseline, 10, "gateway descriptors back to %d" % baseline)
    r = treq(gw, pki.context("laptop"), "GET", "/_ping", bearer(ADMIN))
    assert (r.status, r.body) == (200, b"OK"), r


# ---------------------------------------------------------------------------
# 8. hijacked attach and consoles over TLS


@pytest.fixture
def stdin_container(docker_direct, busybox_image, uniq):
    cid = docker_direct.out("run", "-d", "-i", "--name", uniq("tlscat"), busybox_image, "cat")
    yield cid
    docker_direct.run("rm", "-f", cid, check=False)


def test_attach_hijack_over_tls(gw_tls, pki, stdin_container):
    with tls_conn(gw_tls, pki.context("laptop"), timeout=30) as c:
        c.send(build_request("POST", "/containers/%s/attach?stream=1&stdin=1&stdout=1&stderr=1" % stdin_container,
                             [("Upgrade", "tcp"), ("Connection", "Upgrade")]))
        r = c.read_head()
        assert r.status == 101, r
        # about 600 KB of lines, every byte echoed back by cat
        data = b"".join(b"%06d %s\n" % (i, os.urandom(24).hex().encode()) for i in range(10000))
        c.send(data)
        got = b""
        deadline = time.monotonic() + 30
        while len(got) < len(data):
            head = c.read_exact(8, max(0.1, deadline - time.monotonic()))
            assert head[0] == 1, head
            got += c.read_exact(int.from_bytes(head[4:], "big"), max(0.1, deadline - time.monotonic()))
        assert got == data


def test_console_over_wss(gw_tls, pki, running_container):
    ctx = pki.context("laptop")
    mark = authlib.log_mark(gw_tls)
    c = cl.must_open(gw_tls.tls_addr, running_container, ["sh"], tty=True, ssl_context=ctx)
    c.read_until(lambda o: len(o.stdout) > 0, what="the shell's prompt")
    c.stdin(b"echo TLS=$((6*7))=\n")
    c.wait_stdout(b"TLS=42=")
    c.stdin(b"exit 3\n")
    out = c.run_to_end()
    assert out.exit == {"type": "exit", "exit_code": 3}
    assert (c.ws.close_code, c.ws.close_reason) == (1000, "exit 3")
    gw_tls.wait_for_line(r"console %s .* for cert:laptop$" % running_container, 5, start=mark)
    # without a TTY, stdout and stderr stay apart
    c = cl.must_open(gw_tls.tls_addr, running_container, ["sh", "-c", "echo out; echo err >&2"], tty=False,
                     ssl_context=ctx)
    out = c.run_to_end()
    assert (out.stdout, out.stderr, out.exit["exit_code"]) == (b"out\n", b"err\n", 0)
    # a read certificate may not open one
    r, c = cl.open_console(gw_tls.tls_addr, running_container, ["true"], ssl_context=pki.context("ci"))
    assert r.status == 403 and c is None, r


def test_console_with_websocket_client_over_wss(gw_tls, pki, running_container):
    import websocket  # websocket-client

    laptop = pki.client("laptop")
    url = "wss://localhost:%d%s" % (gw_tls.tls_addr[1],
                                    cl.console_target(running_container, ["sh"], tty=True, cols=80, rows=24))
    ws = websocket.create_connection(url, timeout=20, sslopt={
        "cert_reqs": ssl.CERT_REQUIRED, "ca_certs": pki.ca.pem, "certfile": laptop.cert,
        "keyfile": laptop.key, "check_hostname": True})
    try:
        assert ws.sock.version() in ("TLSv1.2", "TLSv1.3")
        out, exit_msg, close = cl.resize_then_exit_4(ws)
        assert b"R=33 91=" in out, out
        assert exit_msg == {"type": "exit", "exit_code": 4}
        assert close == (1000, b"exit 4")
    finally:
        ws.close()


def test_a_tls_client_that_stops_reading_keeps_the_gateway_small(gw_tls, pki, running_container, api_direct):
    total = 50_000_000
    c = cl.must_open(gw_tls.tls_addr, running_container, ["sh", "-c", "yes | head -c %d" % total], tty=False,
                     ssl_context=pki.context("laptop"))
    ws = c.ws
    with helpers.RssSampler(gw_tls) as rss:
        # do not read: wait until everything between the writer and us is full
        assert cl.wait_for_stalled_output(ws) < total
        # the writer is held back, not buffered
        assert "sh -c yes | head -c %d" % total in cl.process_commands(api_direct, running_container)
        stalled_rss = rss.max_kib
        # now read everything and check every byte
        got, pattern = 0, b"y\n" * 5000
        deadline = time.monotonic() + 90
        while True:
            fin, op, payload = ws.recv_frame(max(0.1, deadline - time.monotonic()))
            if op == cl.BINARY:
                assert payload[:1] == b"\x01"
                data = payload[1:]
                off = got % 2
                assert data == pattern[off:off + len(data)], "corrupt output at byte %d" % got
                got += len(data)
            elif op == cl.CLOSE:
                ws._got_close(payload)
                break
        assert ws.finish_close()
    assert got == total
    assert (ws.close_code, ws.close_reason) == (1000, "exit 0")
    assert stalled_rss < 16 * 1024, "gateway RSS %d KiB while the TLS client was not reading" % stalled_rss
    assert rss.max_kib < 16 * 1024, "gateway RSS %d KiB" % rss.max_kib


def test_attach_ws_over_wss(gw_tls, pki, stdin_container):
    r, ws = cl.open_ws(gw_tls.tls_addr, "/containers/%s/attach/ws?stream=1&stdin=1&stdout=1" % stdin_container,
                       ssl_context=pki.context("laptop"))
    assert r.status == 101, r
    try:
        ws.send_frame(cl.TEXT, b"through wss\n")
        got = b""
        deadline = time.monotonic() + 20
        while b"through wss\n" not in got:
            op, payload = ws.recv_message(max(0.01, deadline - time.monotonic()))
            assert op in (cl.TEXT, cl.BINARY), (op, payload)
            got += payload
    finally:
        ws.close()


# ---------------------------------------------------------------------------
# 9. Chromium over https


BROWSER_USER = "alice"

CONSOLE_JS = """
async ({path, protocols, input}) => new Promise((resolve, reject) => {
  const ws = new WebSocket('wss://' + location.host + path, protocols);
  ws.binaryType = 'arraybuffer';
  let out = '', texts = [], typed = false;
  const timer = setTimeout(() => reject(new Error('console timed out; output: ' + out)), 20000);
  ws.onmessage = e => {
    if (typeof e.data === 'string') { texts.push(JSON.parse(e.data)); return; }
    out += new TextDecoder().decode(e.data);
    // type once the shell has shown its prompt, as a person would
    if (!typed) { typed = true; ws.send(new TextEncoder().encode(input)); }
  };
  ws.onclose = e => {
    clearTimeout(timer);
    resolve({out, texts, code: e.code, reason: e.reason, protocol: ws.protocol, url: ws.url});
  };
})
"""


def _launch(playwright, profile: Path, spki: str | None):
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    if spki:
        args.append("--ignore-certificate-errors-spki-list=" + spki)
    # the persistent context is how Playwright passes a fresh --user-data-dir
    return playwright.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                         args=args, ignore_https_errors=False)


def test_chromium_over_https(gateway_factory, dockerd, tmp_path, pki, running_container, api_direct):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("%s is missing (tests/run.sh installs Debian's chromium)" % CHROMIUM)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    password = authlib.new_token("pw")
    users = [{"name": BROWSER_USER, "password": authlib.hash_password(password), "role": "operator"}]
    # server-only TLS: no client CA
    gw = start_tls_gateway(gateway_factory, dockerd, tmp_path,
                           tls_config(pki, client_ca=False, certs=None, auth={"users": users}), plain=False)
    origin = "https://localhost:%d" % gw.tls_addr[1]
    shot = ARTIFACTS / "test_tls-chromium.png"
    with sync_playwright() as p:
        # without the flag the browser does not trust the test CA: the same
        # navigation fails (so the one below really is checked)
        browser = _launch(p, tmp_path / "profile-untrusted", None)
        try:
            page = browser.new_page()
            with pytest.raises(PlaywrightError) as e:
                page.goto(origin + "/_dockermand/ui/", timeout=20000)
            assert "ERR_CERT_AUTHORITY_INVALID" in str(e.value), e.value
        finally:
            browser.close()

        browser = _launch(p, tmp_path / "profile", pki.server1.spki_sha256_b64())
        page = None
        try:
            page = browser.new_page()
            resp = page.goto(origin + "/_dockermand/ui/#/login", timeout=20000)
            assert resp is not None and resp.status == 200, resp
            assert page.evaluate("location.protocol") == "https:"
            assert page.evaluate("location.origin") == origin
            sec = resp.security_details()
            assert sec["subjectName"] == SERVER1_CN and sec["issuer"] == CA_CN, sec
            assert sec["protocol"] in ("TLS 1.3", "TLS 1.2"), sec

            # the web UI's own sign-in form, served over TLS
            form = page.locator("#login-password")
            form.get_by_label("User").fill(BROWSER_USER)
            form.get_by_label("Password").fill(password)
            form.get_by_role("button", name="Sign in").click()
            page.locator("#role").wait_for(timeout=20000)
            assert page.text_content("#user") == "user:" + BROWSER_USER
            assert page.text_content("#role") == "operator"
            # the session cookie reached over TLS is never sent over plain HTTP
            cookies = page.context.cookies()
            assert [c["secure"] for c in cookies] == [True], cookies

            # same-origin fetch with the session cookie and the page's
            # half of its secret
            bound = {"X-Dockermand-Binding": page.evaluate("localStorage.getItem('dockermand-binding')")}
            who = page.evaluate("""async (headers) => {
                const r = await fetch('/_dockermand/whoami', {headers});
                return {status: r.status, body: await r.json()};
            }""", bound)
            assert who == {"status": 200, "body": {"name": "user:" + BROWSER_USER, "role": "operator"}}, who
            listing = page.evaluate("""async (headers) => {
                const r = await fetch('/containers/json', {headers});
                return {status: r.status, ids: (await r.json()).map(c => c.Id)};
            }""", bound)
            assert listing["status"] == 200 and running_container in listing["ids"], listing
            # a change of state: the browser's Origin is the gateway's own
            post = "async ([path, headers]) => (await fetch(path, {method: 'POST', headers})).status"
            assert page.evaluate(post, ["/containers/%s/pause" % running_container, bound]) == 204
            assert api_direct.inspect_container(running_container)["State"]["Paused"] is True
            assert page.evaluate(post, ["/containers/%s/unpause" % running_container, bound]) == 204
            # a token instead of the cookie
            who = page.evaluate("""async (token) => {
                const r = await fetch('/_dockermand/whoami',
                                      {credentials: 'omit', headers: {Authorization: 'Bearer ' + token}});
                return {status: r.status, body: await r.json()};
            }""", OP)
            assert who == {"status": 200, "body": {"name": "token:operator", "role": "operator"}}, who

            # consoles over wss://, with a ticket the cookie session asked
            # for (a WebSocket cannot carry its binding), and with the token
            # subprotocol
            path = cl.console_target(running_container, ["sh"], tty=True)
            ticket = page.evaluate("""async (headers) => (await (await fetch('/_dockermand/ticket',
                {method: 'POST', headers})).json()).ticket""", bound)
            for path, protocols in ((path + "&ticket=" + ticket, []), (path, ["dockermand.token." + OP])):
                res = page.evaluate(CONSOLE_JS, {"path": path, "protocols": protocols,
                                                 "input": "echo BROWSER=$((6*7))=; exit 3\n"})
                assert res["url"].startswith("wss://localhost:"), res
                assert "BROWSER=42=" in res["out"], res
                assert res["texts"] == [{"type": "exit", "exit_code": 3}], res
                assert (res["code"], res["reason"]) == (1000, "exit 3"), res
                assert res["protocol"] == "".join(protocols), res
        except BaseException:
            if page is not None:
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                try:
                    page.screenshot(path=str(shot))
                    print("screenshot of the failure: %s" % shot)
                except PlaywrightError as e:
                    print("no screenshot: %s" % e)
            raise
        finally:
            browser.close()


# ---------------------------------------------------------------------------
# a slow client after its connection closed, and records without content


class BigReplyUpstream:
    """A unix-socket upstream that answers any request with `size` bytes
    (Content-Length) at once and keeps its connection open."""

    def __init__(self, size: int):
        self.size = size
        self.dir = tempfile.mkdtemp(prefix="dmbig", dir="/tmp")
        self.path = os.path.join(self.dir, "up.sock")
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        head = b""
        while b"\r\n\r\n" not in head:
            d = c.recv(65536)
            if not d:
                return
            head += d
        body = bytes(i * 7 & 0xFF for i in range(self.size))
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                  % self.size + body)
        self.stop.wait(120)
        c.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def test_a_slow_client_gets_the_whole_reply_after_its_connection_closed(gateway_factory, tmp_path, pki):
    """The connection hands a reply's tail to the socket pair and closes (the
    client said ``Connection: close``); the front then has the linger (the
    handshake timeout, 2 s here) to deliver it, however fast the client is
    taking it. A plain client gets every byte the kernel holds after the
    connection closed; a TLS client must get every byte and close_notify."""
    size = 3_000_000
    up = BigReplyUpstream(size)
    try:
        cfg = tls_config(pki, tls={"handshake_timeout_secs": 2})
        path = authlib.write_config(tmp_path, cfg, "tls.json")
        gw = gateway_factory(upstream="unix://" + up.path, listen=("tls://127.0.0.1:0",), args=["--config", path])
        raw = socket.socket()
        raw.settimeout(30)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow link's small window
        raw.connect(gw.tls_addr)
        s = pki.context("laptop").wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        s.sendall(b"GET /version HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        got, error = bytearray(), None
        try:
            while True:
                d = s.recv(16384)
                if not d:
                    break
                got += d
                time.sleep(len(d) / 100_000)  # the client's pace (about 100 KB/s), not synchronisation
        except (ssl.SSLError, OSError) as e:
            error = e
        head, _, body = bytes(got).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert error is None and len(body) == size, \
            "reply cut after %d of %d body bytes: %r" % (len(body), size, error)
        assert body == bytes(i * 7 & 0xFF for i in range(size))
    finally:
        up.close()


# ---------------------------------------------------------------------------
# records that carry no plaintext


def _hkdf_expand_label(secret: bytes, label: bytes, length: int, hashname: str) -> bytes:
    import hmac
    import struct
    full = b"tls13 " + label
    info = struct.pack(">HB", length, len(full)) + full + b"\x00"
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hashname).digest()
        out += t
        i += 1
    return out[:length]


def _tls13_raw_client(addr, ctx: ssl.SSLContext, keylog: str):
    """A TLS 1.3 handshake over a plain socket; returns the socket, the cipher
    suite and the client's first application traffic secret, so the test can
    seal records of its own (the client has sent none yet: sequence 0)."""
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.keylog_filename = keylog
    raw = socket.create_connection(addr, timeout=10)
    inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inb, outb, server_hostname="localhost")
    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            if outb.pending:
                raw.sendall(outb.read())
            d = raw.recv(65536)
            assert d, "closed during the handshake"
            inb.write(d)
    if outb.pending:
        raw.sendall(outb.read())
    secret = None
    with open(keylog) as f:
        for line in f:
            if line.startswith("CLIENT_TRAFFIC_SECRET_0 "):
                secret = bytes.fromhex(line.split()[2])
    assert secret is not None
    return raw, obj.cipher()[0], secret


def _sealer(suite: str, secret: bytes):
    import struct
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
    hashname = "sha384" if suite.endswith("SHA384") else "sha256"
    keylen = 16 if suite == "TLS_AES_128_GCM_SHA256" else 32
    key = _hkdf_expand_label(secret, b"key", keylen, hashname)
    iv = _hkdf_expand_label(secret, b"iv", 12, hashname)
    aead = ChaCha20Poly1305(key) if "CHACHA" in suite else AESGCM(key)
    seq = [0]

    def seal(inner: bytes) -> bytes:
        nonce = bytes(a ^ b for a, b in zip(iv, seq[0].to_bytes(12, "big")))
        seq[0] += 1
        hdr = b"\x17\x03\x03" + struct.pack(">H", len(inner) + 16)
        return hdr + aead.encrypt(nonce, inner, hdr)
    return seal


def test_records_of_padding_are_not_decrypted_without_end(gateway_factory, tmp_path, pki, standin):
    """TLS 1.3 lets a record's plaintext be all padding; rustls allows 32 such
    empty records in a row, then one byte of data resets the count. 33
    records of 16 KiB carry one byte, so the pair's back-pressure (which bounds
    a bulk upload's work per event) never comes into play: the front decrypts
    whatever the socket holds in one event. A client that sends far more
    record bytes than plaintext must be cut (or its work spread over turns)."""
    cfg = tls_config(pki)
    path = authlib.write_config(tmp_path, cfg, "tls.json")
    gw = gateway_factory(upstream=standin.url, listen=("tls://127.0.0.1:0",), args=["--config", path])
    raw, suite, secret = _tls13_raw_client(gw.tls_addr, pki.context("laptop"), str(tmp_path / "keylog"))
    seal = _sealer(suite, secret)
    head = b"GET /_ping HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
    group = 0
    sent = 0
    cut = False
    raw.settimeout(10)
    try:
        while sent < 64 * 1024 * 1024:
            blob = b"".join(seal(b"\x17" + b"\x00" * 16383) for _ in range(32))
            blob += seal((head[group:group + 1] if group < len(head) else b"a") + b"\x17")
            raw.sendall(blob)
            sent += len(blob)
            group += 1
    except OSError:
        cut = True
    assert cut, "the gateway decrypted %d MB of records for %d bytes of plaintext" % (sent // 1_000_000, group)
