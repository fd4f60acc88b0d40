"""Fixtures for the dockermand end-to-end suite.

* ``dockerd``: a private dockerd (vfs storage, no networking setup) in a short
  temporary directory, started once per session.
* ``busybox_image``: ``dmtest/busybox:latest`` imported from the host's static
  busybox (nothing is ever pulled).
* ``gateway_factory`` / ``gw``: dockermand processes; every one is stopped
  with SIGTERM at the end of the test and must exit 0.
* ``standin`` / ``gw_standin``: a recording stand-in upstream and a gateway in
  front of it.
* ``docker_direct`` / ``docker_gw``: the docker CLI against dockerd's socket
  and through the gateway.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import uuid
from pathlib import Path

import docker
import pytest

pytest_plugins = ["uilib"]

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # for the ``standin`` package

import helpers  # noqa: E402
from helpers import DockerCLI, Gateway, HttpConn, wait_until  # noqa: E402
from standin import Standin  # noqa: E402

IMAGE = "dmtest/busybox:latest"


# ---------------------------------------------------------------------------
# reporting


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and rep.failed


# ---------------------------------------------------------------------------
# private dockerd


class Dockerd:
    def __init__(self, root: str):
        self.root = root
        self.sock = os.path.join(root, "docker.sock")
        self.url = "unix://" + self.sock
        self.log = os.path.join(root, "dockerd.log")
        self.proc: subprocess.Popen | None = None

    def ping(self) -> bool:
        try:
            with HttpConn(self.sock, timeout=2) as c:
                r = c.request("GET", "/_ping")
                return r.status == 200 and r.body == b"OK"
        except (OSError, TimeoutError, AssertionError, helpers.ConnectionClosed):
            return False

    def log_tail(self, n=80) -> str:
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no dockerd log)"


@pytest.fixture(scope="session")
def dockerd():
    if os.geteuid() != 0:
        pytest.fail("the end-to-end suite runs a private dockerd and must run as root")
    exe = shutil.which("dockerd")
    if not exe:
        pytest.fail("dockerd not found on PATH (apt-get install docker.io)")
    root = tempfile.mkdtemp(prefix="dm", dir="/tmp")
    d = Dockerd(root)
    cmd = [exe, "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
           "--data-root", os.path.join(root, "data"), "--exec-root", os.path.join(root, "exec"),
           "--pidfile", os.path.join(root, "docker.pid"), "-H", d.url,
           # separate namespaces in case dockerd attaches to a system containerd
           "--containerd-namespace", "dmtest", "--containerd-plugins-namespace", "dmtest-plugins"]
    logf = open(d.log, "wb")
    d.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                              start_new_session=True)
    logf.close()
    try:
        wait_until(lambda: d.proc.poll() is not None or d.ping(), 90, "dockerd /_ping")
        if d.proc.poll() is not None:
            raise AssertionError("dockerd exited with %s" % d.proc.returncode)
    except AssertionError as e:
        print("dockerd failed to start: %s\n--- dockerd.log ---\n%s" % (e, d.log_tail(200)))
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail("private dockerd did not start: %s" % e)
    yield d
    # remove whatever is left, then stop the engine
    try:
        import docker
        c = docker.APIClient(base_url=d.url, timeout=60)
        for ctr in c.containers(all=True, quiet=True):
            try:
                c.remove_container(ctr["Id"], force=True, v=True)
            except Exception:
                pass
        c.close()
    except Exception:
        pass
    d.proc.send_signal(signal.SIGTERM)
    try:
        d.proc.wait(60)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait(10)
    subprocess.run(["umount", "-R", "-l", os.path.join(root, "exec")], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_exe():
    return helpers.find_docker_cli()


@pytest.fixture(scope="session")
def docker_direct(dockerd, docker_exe) -> DockerCLI:
    return DockerCLI(docker_exe, dockerd.url)


@pytest.fixture(scope="session")
def api_direct(dockerd):
    """docker-py low-level client on dockerd's own socket (for setup/cleanup/comparison)."""
    import docker
    c = docker.APIClient(base_url=dockerd.url, timeout=120)
    yield c
    c.close()


@pytest.fixture
def direct(dockerd):
    """A docker-py client on dockerd's own socket."""
    c = docker.DockerClient(base_url=dockerd.url, timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="session")
def rootfs_tar(dockerd) -> str:
    """A tar of /bin/busybox plus one symlink per applet."""
    bb = shutil.which("busybox")
    if not bb:
        pytest.fail("busybox not found (apt-get install busybox-static)")
    bb = os.path.realpath(bb)
    applets = subprocess.run([bb, "--list"], capture_output=True, check=True).stdout.decode().split()
    path = os.path.join(dockerd.root, "rootfs.tar")
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tf:
        for dname in ("bin", "tmp", "etc", "root"):
            ti = tarfile.TarInfo(dname)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o1777 if dname == "tmp" else 0o755
            ti.mtime = 1700000000
            tf.addfile(ti)
        ti = tf.gettarinfo(bb, arcname="bin/busybox")
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        ti.mtime = 1700000000
        with open(bb, "rb") as f:
            tf.addfile(ti, f)
        for a in sorted(set(applets)):
            if a == "busybox" or "/" in a:
                continue
            ti = tarfile.TarInfo("bin/" + a)
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            ti.mode = 0o777
            ti.mtime = 1700000000
            tf.addfile(ti)
    return path


@pytest.fixture(scope="session")
def busybox_image(docker_direct, rootfs_tar) -> str:
    docker_direct.run("import", "-c", "ENV PATH=/bin", rootfs_tar, IMAGE, timeout=120)
    out = docker_direct.out("run", "--rm", IMAGE, "echo", "image-ok")
    assert out == "image-ok", out
    return IMAGE


@pytest.fixture(autouse=True)
def _docker_cleanup(request):
    """Remove every container and image a test created on the private dockerd."""
    if "dockerd" not in request.fixturenames:
        yield
        return
    api = request.getfixturevalue("api_direct")
    before_c = {c["Id"] for c in api.containers(all=True, quiet=True)}
    before_i = {i["Id"] for i in api.images(all=True)}
    yield
    for c in api.containers(all=True, quiet=True):
        if c["Id"] not in before_c:
            try:
                api.remove_container(c["Id"], force=True, v=True)
            except Exception as e:  # pragma: no cover - reported, not fatal
                print("cleanup: cannot remove container %s: %s" % (c["Id"][:12], e))
    for i in api.images(all=True):
        if i["Id"] not in before_i:
            try:
                api.remove_image(i["Id"], force=True, noprune=False)
            except Exception as e:
                print("cleanup: cannot remove image %s: %s" % (i["Id"][:19], e))


# ---------------------------------------------------------------------------
# gateways


DEFAULT_GATEWAY_FLAGS = ["--shutdown-grace", "2"]


class GatewayFactory:
    def __init__(self):
        self.instances: list[tuple[Gateway, bool]] = []

    def __call__(self, upstream: str | None = None, listen=("127.0.0.1:0",), args=(),
                 expect_listeners: int | None = None, wait: bool = True, clean_exit: bool = True,
                 defaults: bool = True, env=None) -> Gateway:
        argv = []
        for l in listen:
            argv += ["--listen", l]
        if upstream is not None:
            argv += ["--upstream", upstream]
        if defaults:
            argv += DEFAULT_GATEWAY_FLAGS
        argv += list(args)
        n = len(listen) if expect_listeners is None else expect_listeners
        g = Gateway(argv, expect_listeners=n, wait=False, env=env)
        self.instances.append((g, clean_exit))
        if wait:
            g.wait_listeners(n)
        return g

    def finish(self, failed: bool):
        problems = []
        for g, clean_exit in self.instances:
            if g.proc.poll() is not None:
                if clean_exit and g.proc.returncode != 0:
                    problems.append("dockermand %s died during the test with exit code %s"
                                    % (g.args[1:], g.proc.returncode))
            else:
                try:
                    rc = g.stop(15)
                    if clean_exit and rc != 0:
                        problems.append("dockermand %s exited %s on SIGTERM (expected 0)" % (g.args[1:], rc))
                except AssertionError as e:
                    problems.append(str(e))
            if failed or problems:
                print("--- dockermand %s output (tail) ---\n%s" % (g.args[1:], "\n".join(g.output().splitlines()[-60:])))
        return problems


@pytest.fixture
def gateway_factory(request):
    f = GatewayFactory()
    yield f
    problems = f.finish(_test_failed(request))
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def gw(gateway_factory, dockerd) -> Gateway:
    """A gateway listening on 127.0.0.1:0 in front of the private dockerd."""
    return gateway_factory(upstream=dockerd.url)


@pytest.fixture
def docker_gw(gw, docker_exe) -> DockerCLI:
    return DockerCLI(docker_exe, gw.docker_host)


@pytest.fixture
def standin():
    s = Standin()
    yield s
    s.close()


@pytest.fixture
def gw_standin(gateway_factory, standin) -> Gateway:
    return gateway_factory(upstream=standin.url)


@pytest.fixture
def tmp_short():
    """A short temporary directory (for unix socket paths)."""
    d = tempfile.mkdtemp(prefix="dmt", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def uniq():
    """Unique names for containers/images created by a test."""
    def make(prefix="c"):
        return "dmtest-%s-%s" % (prefix, uuid.uuid4().hex[:10])
    return make


@pytest.fixture
def running_container(docker_direct, busybox_image, uniq):
    """A long-running container (created directly on dockerd's socket)."""
    name = uniq("run")
    cid = docker_direct.out("run", "-d", "--name", name, busybox_image, "sleep", "100000")
    yield cid
    docker_direct.run("rm", "-f", cid, check=False)
