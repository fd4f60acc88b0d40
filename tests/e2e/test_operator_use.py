"""Ordinary use keeps working through an ``operator`` token (issue 10 item 7).

One gateway per test, with an operator token and a body policy whose
``bind_dirs`` is a fresh temporary directory (holding the entry ``app``) and
whose ``cap_add_allow`` is ``["NET_ADMIN"]``, in front of the private dockerd.
Through it the docker CLI (v28, API 1.41) and docker-py do what people do
every day -- ``run -d`` with ports, env, labels, volumes, a bind, restart
policy, limits, a health check, a user network, ``exec``, ``logs``, ``cp``,
the classic ``build``, ``commit``, volumes, networks, ``update``, ``rename``
and the lifecycle verbs -- and every result is checked on dockerd's own
socket. No request of these may be refused by the gateway: a refusal fails
the test with the rule and field from the gateway's deny line.

The negative controls at the end show the same tests can fail: escapes are
refused with a message naming the rule, and nothing is created in dockerd.
"""

from __future__ import annotations

import io
import json
import os
import pty
import select
import shutil
import tarfile
import tempfile
import time

import docker
import pytest

import authlib
import helpers
from helpers import sha256, sha256_file, tar_bytes, wait_until

pytestmark = pytest.mark.usefixtures("busybox_image")

OP = authlib.new_token("op")
HELLO = b"hello from the bind dir\n"


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def bind_dir():
    """A fresh bind directory: ``app/`` (with ``hello.txt`` and ``sub/``) is a
    direct entry; ``link`` is a symlink to /etc; ``missing`` does not exist."""
    d = tempfile.mkdtemp(prefix="dmop", dir="/tmp")
    app = os.path.join(d, "app")
    os.makedirs(os.path.join(app, "sub"))
    with open(os.path.join(app, "hello.txt"), "wb") as f:
        f.write(HELLO)
    os.chmod(app, 0o755)
    os.chmod(os.path.join(app, "hello.txt"), 0o644)
    os.symlink("/etc", os.path.join(d, "link"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def op_config(bind_dir, tmp_path_factory):
    cfg = authlib.auth_config(tokens={"operator": OP},
                              policy={"bind_dirs": [bind_dir], "cap_add_allow": ["NET_ADMIN"]})
    return authlib.write_config(tmp_path_factory.mktemp("opcfg"), cfg)


@pytest.fixture
def gwo(gateway_factory, dockerd, op_config):
    return authlib.start_gateway(gateway_factory, op_config, dockerd.url)


@pytest.fixture
def cli(gwo, docker_exe, tmp_path):
    return authlib.TokenCLI(docker_exe, gwo.docker_host, OP, tmp_path / "cli-operator")


@pytest.fixture
def tracked(api_direct):
    """Removes the containers, networks and volumes a test created (new since
    it started), containers first so that networks and volumes are free. The
    conftest's autouse fixture removes images (and containers, again)."""
    before_c = {c["Id"] for c in api_direct.containers(all=True, quiet=True)}
    before_n = {n["Id"] for n in api_direct.networks()}
    before_v = {v["Name"] for v in (api_direct.volumes().get("Volumes") or [])}
    yield
    for c in api_direct.containers(all=True, quiet=True):
        if c["Id"] not in before_c:
            try:
                api_direct.remove_container(c["Id"], force=True, v=True)
            except Exception as e:
                print("cleanup: container %s: %s" % (c["Id"][:12], e))
    for n in api_direct.networks():
        if n["Id"] not in before_n:
            try:
                api_direct.remove_network(n["Id"])
            except Exception as e:
                print("cleanup: network %s: %s" % (n["Name"], e))
    for v in api_direct.volumes().get("Volumes") or []:
        if v["Name"] not in before_v:
            try:
                api_direct.remove_volume(v["Name"], force=True)
            except Exception as e:
                print("cleanup: volume %s: %s" % (v["Name"], e))


@pytest.fixture
def no_refusal(request, gwo, tracked):
    """Fails the test if the gateway refused anything during it (even a
    request the client got over), naming the rule and field of every deny
    line; if the test failed already, prints them instead."""
    mark = authlib.log_mark(gwo)
    yield
    denied = authlib.deny_lines(gwo, mark)
    if not denied:
        return
    msg = "the gateway refused ordinary requests:\n%s" % "\n".join(
        "%(method)s %(path)s rule=%(rule)s field=%(field)s status=%(status)s" % d for d in denied)
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(msg)
    else:
        pytest.fail(msg)


@pytest.fixture
def pyc(gwo, api_direct):
    """docker-py through the gateway with the operator token. Every refused
    request (4xx from the gateway) is recorded with the body the client sent
    and printed at teardown, so a failure shows exactly what was refused."""
    version = api_direct.version()["ApiVersion"]
    c = docker.DockerClient(base_url=gwo.docker_host, version=version, timeout=120)
    c.api.headers["Authorization"] = "Bearer " + OP
    refused = []

    def hook(r, *args, **kwargs):
        if r.status_code == 403:
            body = r.request.body
            if isinstance(body, bytes) and len(body) > 2000:
                body = body[:2000] + b"..."
            refused.append("%s %s -> %s %s\n  request body: %r"
                           % (r.request.method, r.request.url, r.status_code, r.text[:300], body))
        return r

    c.api.hooks["response"].append(hook)
    c.refused = refused
    yield c
    if refused:
        print("--- requests the gateway refused ---\n" + "\n".join(refused))
    c.close()


def inspect(docker_direct, what, kind="container") -> dict:
    return json.loads(docker_direct.out(kind, "inspect", what))[0]


def http_get(port: int, path: str):
    """GET through a published port; None while nothing answers yet."""
    try:
        r = helpers.http_request(("127.0.0.1", port), "GET", path, timeout=5)
    except (OSError, TimeoutError, AssertionError, helpers.ConnectionClosed):
        return None
    return r if r.status == 200 else None


def published_port(info: dict, port="80/tcp") -> int:
    binding = info["NetworkSettings"]["Ports"][port]
    assert binding and binding[0]["HostIp"] == "127.0.0.1", info["NetworkSettings"]["Ports"]
    hp = int(binding[0]["HostPort"])
    assert hp > 0
    return hp


# ---------------------------------------------------------------------------
# docker CLI


def test_cli_run_detached_with_everyday_options(cli, docker_direct, bind_dir, uniq, no_refusal, busybox_image):
    net = uniq("opnet") + "-x"
    cli.run("network", "create", net)
    assert inspect(docker_direct, net, "network")["Driver"] == "bridge"
    vol = uniq("opvol")
    name = uniq("web")
    app = os.path.join(bind_dir, "app")
    cid = cli.out(
        "run", "-d", "--name", name,
        "-p", "127.0.0.1:0:80",
        "-e", "GREETING=hello", "--label", "team=ops",
        "--label", "com.docker.compose.project=opproj", "--label", "com.docker.compose.service=web",
        "--label", "com.docker.compose.container-number=1", "--label", "com.docker.compose.oneoff=False",
        "-v", vol + ":/data", "-v", app + ":/app",
        "--restart", "unless-stopped", "--memory", "64m", "--cpus", "0.5",
        "--health-cmd", "true", "--health-interval", "1s",
        "--network", net, "--cap-add", "NET_ADMIN", "--security-opt", "no-new-privileges",
        "--read-only", "--tmpfs", "/tmp", "--user", "1000",
        busybox_image, "sh", "-c", "echo started; exec httpd -f -p 80 -h /app")
    info = inspect(docker_direct, cid)
    hc, cfg = info["HostConfig"], info["Config"]
    assert info["Name"] == "/" + name
    assert "GREETING=hello" in cfg["Env"]
    assert cfg["Labels"]["team"] == "ops" and cfg["Labels"]["com.docker.compose.project"] == "opproj"
    assert cfg["User"] == "1000"
    assert cfg["Healthcheck"]["Test"] == ["CMD-SHELL", "true"] and cfg["Healthcheck"]["Interval"] == 10 ** 9
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == vol
    assert mounts["/app"]["Type"] == "bind" and mounts["/app"]["Source"] == app
    assert hc["RestartPolicy"]["Name"] == "unless-stopped"
    assert hc["Memory"] == 64 * 1024 * 1024 and hc["NanoCpus"] == 500_000_000
    assert [c.upper().replace("CAP_", "") for c in hc["CapAdd"]] == ["NET_ADMIN"]
    assert hc["SecurityOpt"] == ["no-new-privileges"]
    assert hc["ReadonlyRootfs"] is True and "/tmp" in hc["Tmpfs"]
    assert hc["NetworkMode"] == net and net in info["NetworkSettings"]["Networks"]
    port = published_port(info)

    # it really runs as configured: served through the published port from the bind
    r = wait_until(lambda: http_get(port, "/hello.txt"), 30, "httpd through the published port")
    assert r.body == HELLO
    wait_until(lambda: inspect(docker_direct, cid)["State"]["Health"]["Status"] == "healthy", 30,
               "the health check to pass")
    assert cli.out("logs", cid).splitlines()[0] == "started"
    assert cli.out("exec", cid, "id", "-u") == "1000"
    assert cli.out("exec", cid, "cat", "/app/hello.txt") + "\n" == HELLO.decode()
    p = cli.run("exec", "-i", cid, "sh", "-c", "cat > /tmp/in; cat /tmp/in", input=b"stdin via exec\n")
    assert p.stdout == b"stdin via exec\n"
    assert cli.run("exec", cid, "touch", "/rootfs-is-read-only", check=False).returncode != 0
    assert cli.out("exec", cid, "grep", "-c", "NoNewPrivs:[[:space:]]*1", "/proc/self/status") == "1"
    assert cli.out("ps", "--filter", "label=com.docker.compose.project=opproj", "--format", "{{.ID}}",
                   "--no-trunc") == cid


def test_cli_run_interactive_stdin(cli, busybox_image, no_refusal):
    p = cli.run("run", "-i", "--rm", busybox_image, "sh", "-c", "read x; echo got-$x", input=b"piped\n",
                timeout=60)
    assert p.stdout == b"got-piped\n"


def test_cli_run_tty_in_a_pty(cli, busybox_image, no_refusal):
    """``run -it`` with the CLI on a pseudo-terminal (ConsoleSize, resize, raw stream)."""
    master, slave = pty.openpty()
    proc = cli.popen("run", "-it", "--rm", busybox_image, "sh", "-c", "tty; read x; echo got-$x",
                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    buf = b""
    sent = False
    deadline = time.monotonic() + 60
    try:
        while b"got-typed" not in buf:
            left = deadline - time.monotonic()
            assert left > 0, "no answer through the tty: %r" % buf
            ready, _, _ = select.select([master], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:
                data = b""
            assert data, "the pty closed early: %r" % buf
            buf += data
            if not sent and b"/dev/pts/" in buf and b"\n" in buf:
                os.write(master, b"typed\r")
                sent = True
        assert proc.wait(30) == 0, buf
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)


def test_cli_cp_both_ways_byte_exact(cli, docker_direct, bind_dir, uniq, tmp_path, no_refusal, busybox_image):
    vol = uniq("opcp")
    cid = cli.out("run", "-d", "--name", uniq("cp"), "-v", vol + ":/data",
                  "-v", os.path.join(bind_dir, "app") + ":/app:ro", busybox_image, "sleep", "100000")
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(1024 * 1024 + 77))
    want = sha256_file(src)
    for dest in ("/tmp/blob.bin", "/data/blob.bin"):
        cli.run("cp", str(src), "%s:%s" % (cid, dest))
        assert docker_direct.out("exec", cid, "sha256sum", dest).split()[0] == want
        out = tmp_path / ("back" + dest.replace("/", "-"))
        out.mkdir()
        cli.run("cp", "%s:%s" % (cid, dest), str(out))
        assert sha256_file(out / "blob.bin") == want
    # and out of the bind, and as a tar stream on stdout
    cli.run("cp", "%s:/app/hello.txt" % cid, str(tmp_path))
    assert (tmp_path / "hello.txt").read_bytes() == HELLO
    tar = cli.run("cp", "%s:/app/hello.txt" % cid, "-").stdout
    assert tarfile.open(fileobj=io.BytesIO(tar)).extractfile("hello.txt").read() == HELLO


def test_cli_build_classic_builder(cli, docker_direct, busybox_image, uniq, tmp_path, no_refusal):
    tag = uniq("opbuild") + ":v1"
    (tmp_path / "payload.txt").write_text("payload via operator\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM %s\nRUN echo built > /built\nCOPY payload.txt /payload.txt\nENV MODE=op\n"
        "LABEL com.example.kind=test\nUSER 1000\n" % busybox_image)
    p = cli.run("build", "--rm", "--label", "built-by=operator", "--build-arg", "UNUSED=1", "-t", tag, ".",
                cwd=str(tmp_path), env_extra={"DOCKER_BUILDKIT": "0"}, timeout=120)
    assert b"Successfully tagged " + tag.encode() in p.stdout, p.stdout
    img = inspect(docker_direct, tag, "image")
    assert img["Config"]["User"] == "1000" and "MODE=op" in img["Config"]["Env"]
    assert img["Config"]["Labels"]["built-by"] == "operator"
    assert docker_direct.out("run", "--rm", tag, "cat", "/built", "/payload.txt") == "built\npayload via operator"


def test_cli_lifecycle_update_rename_commit(cli, docker_direct, busybox_image, uniq, no_refusal):
    name = uniq("life")
    # a PID 1 that exits on SIGTERM, so stop and restart are prompt
    cid = cli.out("run", "-d", "--name", name, "--restart", "unless-stopped", "--memory", "64m",
                  busybox_image, "sh", "-c", "trap 'exit 0' TERM; echo up; sleep 100000 & wait")
    wait_until(lambda: "up" in docker_direct.out("logs", cid), 20, "the container to start")

    cli.run("update", "--memory", "96m", "--memory-swap", "192m", "--cpus", "1", "--restart", "no", cid)
    hc = inspect(docker_direct, cid)["HostConfig"]
    assert (hc["Memory"], hc["MemorySwap"], hc["NanoCpus"]) == (96 << 20, 192 << 20, 10 ** 9)
    assert hc["RestartPolicy"]["Name"] == "no"

    cli.run("exec", cid, "sh", "-c", "echo changed > /changed")
    tag = uniq("opcommit") + ":v1"
    cli.run("commit", "-c", "ENV COMMITTED=yes", "-m", "through the gateway", cid, tag)
    img = inspect(docker_direct, tag, "image")
    assert "COMMITTED=yes" in img["Config"]["Env"] and img["Comment"] == "through the gateway"
    assert docker_direct.out("run", "--rm", tag, "cat", "/changed") == "changed"
    tag2 = uniq("opcommit") + ":plain"
    cli.run("commit", cid, tag2)
    docker_direct.run("image", "inspect", tag2)

    new = uniq("renamed")
    cli.run("rename", name, new)
    assert inspect(docker_direct, cid)["Name"] == "/" + new

    cli.run("stop", "-t", "10", new)
    st = inspect(docker_direct, cid)["State"]
    assert (st["Running"], st["ExitCode"]) == (False, 0)
    cli.run("start", new)
    st = inspect(docker_direct, cid)["State"]
    assert st["Running"] is True
    started = st["StartedAt"]
    cli.run("restart", "-t", "10", new)
    st = inspect(docker_direct, cid)["State"]
    assert st["Running"] is True and st["StartedAt"] != started
    cli.run("kill", "-s", "KILL", new)
    wait_until(lambda: inspect(docker_direct, cid)["State"]["Running"] is False, 20, "the kill")
    assert inspect(docker_direct, cid)["State"]["ExitCode"] == 137
    cli.run("rm", new)
    assert docker_direct.run("inspect", cid, check=False).returncode != 0


def test_cli_volumes_and_networks(cli, docker_direct, busybox_image, uniq, no_refusal):
    vol = uniq("opvol")
    assert cli.out("volume", "create", "--driver", "local", "--label", "com.docker.compose.project=opproj",
                   "--label", "com.docker.compose.volume=data", vol) == vol
    assert inspect(docker_direct, vol, "volume")["Labels"]["com.docker.compose.volume"] == "data"
    assert vol in cli.out("volume", "ls", "-q", "--filter", "label=com.docker.compose.project=opproj").split()

    net = uniq("opnet") + "-x"
    other = uniq("opnet") + "-y"
    cli.run("network", "create", "--label", "com.docker.compose.project=opproj",
            "--label", "com.docker.compose.network=default", net)
    cli.run("network", "create", "--driver", "bridge", "--subnet", "10.213.7.0/24", "--gateway", "10.213.7.1",
            "-o", "com.docker.network.driver.mtu=1400", "--attachable", other)
    n = inspect(docker_direct, other, "network")
    assert n["IPAM"]["Config"][0]["Subnet"] == "10.213.7.0/24" and n["Attachable"] is True
    assert net in cli.out("network", "ls", "--format", "{{.Name}}").split()

    # a compose-style service container: labels, alias on the project network, named volume
    cid = cli.out("run", "-d", "--name", uniq("svc"), "--network", net, "--network-alias", "db",
                  "--label", "com.docker.compose.project=opproj", "--label", "com.docker.compose.service=db",
                  "-v", vol + ":/data", busybox_image, "sleep", "100000")
    assert "db" in inspect(docker_direct, cid)["NetworkSettings"]["Networks"][net]["Aliases"]

    cli.run("network", "connect", "--alias", "side", "--ip", "10.213.7.50", other, cid)
    ep = inspect(docker_direct, cid)["NetworkSettings"]["Networks"][other]
    assert ep["IPAddress"] == "10.213.7.50" and "side" in ep["Aliases"]
    assert "10.213.7.50" in cli.out("exec", cid, "ip", "-4", "addr")
    cli.run("network", "disconnect", other, cid)
    assert other not in inspect(docker_direct, cid)["NetworkSettings"]["Networks"]
    cli.run("network", "connect", other, cid)
    cli.run("network", "disconnect", "--force", other, cid)
    assert other not in inspect(docker_direct, cid)["NetworkSettings"]["Networks"]

    cli.run("rm", "-f", cid)
    cli.run("network", "rm", net, other)
    cli.run("volume", "rm", vol)
    assert docker_direct.run("network", "inspect", net, check=False).returncode != 0
    assert docker_direct.run("volume", "inspect", vol, check=False).returncode != 0


# ---------------------------------------------------------------------------
# docker-py


def test_dockerpy_run_with_everyday_options(pyc, direct, bind_dir, busybox_image, uniq, no_refusal):
    net = pyc.networks.create(uniq("pynet") + "-x", driver="bridge", labels={"com.docker.compose.project": "py"})
    vol = pyc.volumes.create(uniq("pyvol"), driver="local", labels={"owner": "op"})
    app = os.path.join(bind_dir, "app")
    ctr = pyc.containers.run(
        busybox_image, ["sh", "-c", "echo started; exec httpd -f -p 80 -h /app"], detach=True, name=uniq("pyweb"),
        ports={"80/tcp": ("127.0.0.1", 0)}, environment={"GREETING": "hello"},
        volumes={vol.name: {"bind": "/data", "mode": "rw"}, app: {"bind": "/app", "mode": "ro"}},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3}, mem_limit="64m", nano_cpus=500_000_000,
        healthcheck={"test": ["CMD", "true"], "interval": 10 ** 9}, network=net.name,
        labels={"com.docker.compose.project": "py", "com.docker.compose.service": "web"},
        cap_add=["NET_ADMIN"], security_opt=["no-new-privileges"], read_only=True, tmpfs={"/tmp": ""},
        user="1000")
    info = direct.api.inspect_container(ctr.id)
    hc = info["HostConfig"]
    assert hc["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert (hc["Memory"], hc["NanoCpus"]) == (64 << 20, 500_000_000)
    assert hc["NetworkMode"] == net.name and "GREETING=hello" in info["Config"]["Env"]
    mounts = {m["Destination"]: m for m in info["Mounts"]}
    assert mounts["/data"]["Name"] == vol.name and mounts["/app"]["Source"] == app and mounts["/app"]["RW"] is False
    port = published_port(info)
    assert wait_until(lambda: http_get(port, "/hello.txt"), 30, "httpd through the published port").body == HELLO
    wait_until(lambda: direct.api.inspect_container(ctr.id)["State"]["Health"]["Status"] == "healthy", 30,
               "the health check to pass")
    assert ctr.logs().splitlines()[0] == b"started"
    ctr.reload()
    assert ctr.status == "running" and ctr.labels["com.docker.compose.service"] == "web"
    ctr.remove(force=True)
    vol.remove()
    net.remove()


def test_dockerpy_exec_run(pyc, busybox_image, uniq, no_refusal):
    ctr = pyc.containers.run(busybox_image, ["sleep", "100000"], detach=True, name=uniq("pyexec"))
    # docker-py sends "Container": <id> in the exec body (dockerd ignores it)
    res = ctr.exec_run(["sh", "-c", "sleep 0.3; echo out; exit 3"], user="", environment={"A": "1"},
                       workdir="/tmp")
    assert res.exit_code == 3 and b"out\n" in res.output, res
    ctr.remove(force=True)


def test_dockerpy_archive_and_logs(pyc, direct, busybox_image, uniq, no_refusal):
    ctr = pyc.containers.run(busybox_image, ["sh", "-c", "echo line1; echo line2; sleep 100000"], detach=True,
                             name=uniq("pyarc"))
    wait_until(lambda: ctr.logs().count(b"\n") >= 2, 20, "the container's output")
    assert ctr.logs() == b"line1\nline2\n"
    blob = os.urandom(512 * 1024 + 9)
    assert ctr.put_archive("/tmp", tar_bytes({"blob.bin": blob}))
    # checked on dockerd's side (not with exec_run, see test_dockerpy_exec_run)
    out = direct.api.exec_start(direct.api.exec_create(ctr.id, ["sha256sum", "/tmp/blob.bin"])["Id"])
    assert out.split()[0].decode() == sha256(blob)
    bits, stat = ctr.get_archive("/tmp/blob.bin")
    assert stat["name"] == "blob.bin" and stat["size"] == len(blob)
    assert tarfile.open(fileobj=io.BytesIO(b"".join(bits))).extractfile("blob.bin").read() == blob
    ctr.remove(force=True)


def test_dockerpy_volumes_and_networks(pyc, direct, busybox_image, uniq, no_refusal):
    vol = pyc.volumes.create(uniq("pyvol"), driver="local", labels={"a": "b"})
    assert direct.volumes.get(vol.name).attrs["Labels"] == {"a": "b"}
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.213.8.0/24")])
    net = pyc.networks.create(uniq("pynet") + "-x", driver="bridge", ipam=ipam, labels={"l": "v"},
                              options={"com.docker.network.bridge.enable_icc": "true"}, attachable=True)
    assert direct.networks.get(net.id).attrs["IPAM"]["Config"][0]["Subnet"] == "10.213.8.0/24"
    ctr = pyc.containers.run(busybox_image, ["sleep", "100000"], detach=True, name=uniq("pynetc"),
                             volumes=[vol.name + ":/data"])
    net.connect(ctr, aliases=["py-alias"], ipv4_address="10.213.8.20")
    ep = direct.api.inspect_container(ctr.id)["NetworkSettings"]["Networks"][net.name]
    assert ep["IPAddress"] == "10.213.8.20" and "py-alias" in ep["Aliases"]
    net.disconnect(ctr)
    assert net.name not in direct.api.inspect_container(ctr.id)["NetworkSettings"]["Networks"]
    net.connect(ctr.id)
    net.disconnect(ctr.id, force=True)
    ctr.remove(force=True)
    net.remove()
    vol.remove()
    with pytest.raises(docker.errors.NotFound):
        direct.networks.get(net.id)
    with pytest.raises(docker.errors.NotFound):
        direct.volumes.get(vol.name)


def test_dockerpy_low_level_create(pyc, direct, bind_dir, busybox_image, uniq, no_refusal):
    api = pyc.api
    net = api.create_network(uniq("pyllnet") + "-x", driver="bridge")["Id"]
    net_name = direct.api.inspect_network(net)["Name"]
    vol = api.create_volume(uniq("pyllvol"))["Name"]
    app = os.path.join(bind_dir, "app")
    hc = api.create_host_config(
        binds={vol: {"bind": "/data", "mode": "rw"}, app: {"bind": "/app", "mode": "ro"}},
        port_bindings={80: ("127.0.0.1", 0)}, restart_policy={"Name": "always"}, mem_limit="32m",
        memswap_limit="64m", cpu_shares=512, pids_limit=100, shm_size="16m", init=True,
        cap_add=["NET_ADMIN"], cap_drop=["MKNOD"], security_opt=["no-new-privileges:true"],
        network_mode=net_name, extra_hosts={"router": "192.0.2.1"}, dns=["192.0.2.53"],
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "1m"}),
        ulimits=[docker.types.Ulimit(name="nofile", soft=1024, hard=2048)],
        sysctls={"net.ipv4.ip_unprivileged_port_start": "0"}, read_only=True, tmpfs={"/run": "size=1m"},
        mounts=[docker.types.Mount("/m", vol), docker.types.Mount("/b", app, type="bind", read_only=True),
                docker.types.Mount("/t", None, type="tmpfs", tmpfs_size=1 << 20)])
    nc = api.create_networking_config({net_name: api.create_endpoint_config(aliases=["ll"])})
    cid = api.create_container(busybox_image, ["sleep", "100000"], name=uniq("pyll"), host_config=hc,
                               networking_config=nc, labels={"com.docker.compose.project": "ll"},
                               environment=["A=1"], ports=[80], working_dir="/tmp", hostname="llhost",
                               user="1000", stop_signal="SIGTERM",
                               healthcheck={"test": ["CMD-SHELL", "true"], "interval": 10 ** 9})["Id"]
    api.start(cid)
    info = direct.api.inspect_container(cid)
    assert info["State"]["Running"] is True
    h = info["HostConfig"]
    assert h["Memory"] == 32 << 20 and h["PidsLimit"] == 100 and h["Init"] is True
    assert h["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
    assert {m["Destination"] for m in info["Mounts"]} >= {"/data", "/app", "/m", "/b", "/t"}
    assert "ll" in info["NetworkSettings"]["Networks"][net_name]["Aliases"]
    published_port(info)
    api.stop(cid, timeout=1)
    api.remove_container(cid, v=True)
    api.remove_network(net)
    api.remove_volume(vol)


# ---------------------------------------------------------------------------
# negative controls: the same paths do fail, with the rule named and nothing created


def _neg_cases():
    B = "{bind}"
    return [
        (["--privileged"], "privileged", "HostConfig.Privileged", "HostConfig.Privileged is not allowed"),
        (["-v", "/:/host"], "host_path", "HostConfig.Binds", 'host path "/" is not an entry directly inside'),
        (["-v", B + "/app/sub:/x"], "host_path", "HostConfig.Binds", "is not an entry directly inside"),
        (["-v", B + ":/x"], "host_path", "HostConfig.Binds", "is not an entry directly inside"),
        (["-v", B + "/link:/x"], "host_path", "HostConfig.Binds", "is a symbolic link"),
        (["-v", B + "/missing:/x"], "host_path", "HostConfig.Binds", "cannot be checked"),
        (["--mount", "type=bind,src=" + B + "/app/sub,dst=/x"], "host_path", "HostConfig.Mounts[0].Source",
         "is not an entry directly inside"),
        (["--pid", "host"], "host_namespace", "HostConfig.PidMode", 'PidMode "host" is not allowed'),
        (["--network", "host"], "host_network", "HostConfig.NetworkMode", "the host network is not allowed"),
        (["--network", "container:dmtest-other"], "namespace_join", "HostConfig.NetworkMode", "joins another"),
        (["--security-opt", "seccomp=unconfined"], "security_opt", "HostConfig.SecurityOpt",
         'security option "seccomp=unconfined" is not allowed'),
        (["--security-opt", "systempaths=unconfined"], "system_paths", "HostConfig.MaskedPaths",
         "must be left unset"),
        (["--device", "/dev/null"], "devices", "HostConfig.Devices", "HostConfig.Devices is not allowed"),
        (["--cap-add", "SYS_ADMIN"], "cap_add", "HostConfig.CapAdd", "SYS_ADMIN is not allowed"),
        (["--volumes-from", "dmtest-other"], "volumes_from", "HostConfig.VolumesFrom", "is not allowed"),
        (["--cgroup-parent", "/"], "not_allowed", "HostConfig.CgroupParent", "is not on the policy's allow-list"),
    ]


@pytest.mark.parametrize("flags,rule,field,text", [
    pytest.param(*c, id=" ".join(c[0]).replace("{bind}", "BIND")) for c in _neg_cases()])
def test_cli_run_escape_is_refused(cli, gwo, api_direct, bind_dir, busybox_image, uniq, tracked,
                                   flags, rule, field, text):
    flags = [f.replace("{bind}", bind_dir) for f in flags]
    name = uniq("neg")
    before = len(api_direct.containers(all=True, quiet=True))
    mark = authlib.log_mark(gwo)
    err = cli.fails("run", "-d", "--name", name, *flags, busybox_image, "true")
    assert "denied by rule %s: " % rule in err and text in err, (flags, err)
    d = authlib.wait_deny(gwo, mark, rule=rule)
    assert (d["principal"], d["route"], d["field"], d["status"]) == (
        "token:operator", "/containers/create", field, 403), d
    assert not any(("/" + name) in (c.get("Names") or []) for c in api_direct.containers(all=True))
    assert len(api_direct.containers(all=True, quiet=True)) == before


def test_negative_controls_beyond_run(cli, gwo, pyc, api_direct, bind_dir, busybox_image, uniq, tracked, tmp_path):
    """Volumes, networks, exec, build and docker-py fail the same way, and
    dockerd is left unchanged."""
    vols = {v["Name"] for v in api_direct.volumes().get("Volumes") or []}
    nets = {n["Name"] for n in api_direct.networks()}
    images = {i["Id"] for i in api_direct.images(all=True)}
    before = len(api_direct.containers(all=True, quiet=True))

    def refused(args, rule, field, route, text, **kw):
        mark = authlib.log_mark(gwo)
        err = cli.fails(*args, **kw)
        assert text in err, (args, err)
        d = authlib.wait_deny(gwo, mark, rule=rule)
        assert (d["field"], d["route"], d["status"]) == (field, route, 403), d
        return err

    err = refused(["volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device=" + bind_dir + "/app",
                   uniq("negvol")], "volume_options", "DriverOpts.device", "/volumes/create", "volume option")
    assert "denied by rule volume_options: " in err
    err = refused(["network", "create", "-o", "com.docker.network.bridge.name=br-lan", uniq("negnet") + "-x"],
                  "network_options", "Options", "/networks/create", '"com.docker.network.bridge.name" is not allowed')
    assert "denied by rule network_options: " in err
    err = refused(["network", "create", "-d", "macvlan", uniq("negnet") + "-x"],
                  "network_driver", "Driver", "/networks/create", '"macvlan" is not allowed')
    assert "denied by rule network_driver: " in err

    cid = api_direct.create_container(busybox_image, ["sleep", "100000"], name=uniq("negexec"))["Id"]
    api_direct.start(cid)
    err = refused(["exec", "--privileged", cid, "true"], "privileged", "Privileged", "/containers/{name*}/exec",
                  "Privileged is not allowed")
    assert "denied by rule privileged: " in err

    (tmp_path / "Dockerfile").write_text("FROM %s\nRUN true\n" % busybox_image)
    # a refused head (build query) names its rule and field like a refused body
    err = refused(["build", "--network", "host", "-t", uniq("negbuild"), "."], "host_network", "query.networkmode",
                  "/build", "the host network is not allowed", cwd=str(tmp_path), env_extra={"DOCKER_BUILDKIT": "0"})
    assert "denied by rule host_network: " in err and "(field query.networkmode)" in err, err

    with pytest.raises(docker.errors.APIError) as ei:
        pyc.containers.run(busybox_image, ["true"], detach=True, name=uniq("negpy"), privileged=True)
    assert ei.value.status_code == 403 and "denied by rule privileged: " in str(ei.value)
    with pytest.raises(docker.errors.APIError) as ei:
        pyc.containers.create(busybox_image, ["true"], name=uniq("negpy"),
                              mounts=[docker.types.Mount("/x", bind_dir + "/app/sub", type="bind")])
    assert ei.value.status_code == 403 and "denied by rule host_path: " in str(ei.value)
    pyc.refused.clear()  # expected refusals, not worth printing

    assert {v["Name"] for v in api_direct.volumes().get("Volumes") or []} == vols
    assert {n["Name"] for n in api_direct.networks()} == nets
    assert {i["Id"] for i in api_direct.images(all=True)} == images
    assert len(api_direct.containers(all=True, quiet=True)) == before + 1  # the exec target only
