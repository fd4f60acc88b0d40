"""The docker CLI (v28) through the gateway, compared with the CLI talking to
dockerd's socket directly where the output is deterministic."""

import json
import os
import time

import pytest

from helpers import LineReader, http_request, sha256, sha256_file

pytestmark = pytest.mark.usefixtures("busybox_image")


def test_version(docker_gw, docker_direct):
    via = json.loads(docker_gw.out("version", "--format", "{{json .}}"))
    direct = json.loads(docker_direct.out("version", "--format", "{{json .}}"))
    assert via["Server"]["Version"] == direct["Server"]["Version"]
    assert via["Server"]["ApiVersion"] == direct["Server"]["ApiVersion"]
    assert via["Client"]["ApiVersion"] == direct["Client"]["ApiVersion"]


def test_ps_lists_running_container(docker_gw, running_container, docker_direct):
    name = docker_direct.out("inspect", "--format", "{{.Name}}", running_container).lstrip("/")
    out = docker_gw.out("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}")
    assert "%s %s" % (running_container, name) in out.splitlines()


def test_run_rm_echo(docker_gw, busybox_image, uniq, docker_direct):
    name = uniq("echo")
    p = docker_gw.run("run", "--rm", "--name", name, busybox_image, "echo", "hi", timeout=60)
    assert p.stdout == b"hi\n"
    # --rm removed it
    assert docker_direct.out("ps", "-a", "-q", "--filter", "name=" + name) == ""


def test_run_interactive_stdin_half_close(docker_gw, busybox_image):
    p = docker_gw.run("run", "-i", "--rm", busybox_image, "cat", input=b"hi\n", timeout=60)
    assert p.stdout == b"hi\n"


def test_run_interactive_large_stdin(docker_gw, busybox_image):
    data = os.urandom(3 * 1024 * 1024)
    p = docker_gw.run("run", "-i", "--rm", busybox_image, "sha256sum", input=data, timeout=90)
    assert p.stdout.decode().split()[0] == sha256(data)


def test_run_exit_code_propagates(docker_gw, busybox_image):
    p = docker_gw.run("run", "--rm", busybox_image, "sh", "-c", "echo out; echo err >&2; exit 7",
                      check=False, timeout=60)
    assert p.returncode == 7
    assert p.stdout == b"out\n"
    assert p.stderr.endswith(b"err\n")


def test_logs_follow_streams_while_running(docker_gw, docker_direct, busybox_image, uniq):
    cid = docker_gw.out("run", "-d", "--name", uniq("logs"), busybox_image, "sh", "-c",
                        "for i in 1 2 3; do echo line$i; sleep 1; done; sleep 1000")
    proc = docker_gw.popen("logs", "-f", cid)
    try:
        lines = LineReader(proc.stdout)
        lines.wait_for(r"^line1$", 20)
        # the stream is live: the container is still running and the CLI has not exited
        assert proc.poll() is None
        assert docker_direct.out("inspect", "--format", "{{.State.Running}}", cid) == "true"
        lines.wait_for(r"^line3$", 20)
        assert lines.lines[:3] == ["line1", "line2", "line3"]
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
    docker_gw.run("rm", "-f", cid)


def test_exec(docker_gw, running_container):
    assert docker_gw.run("exec", running_container, "echo", "hello").stdout == b"hello\n"
    p = docker_gw.run("exec", "-i", running_container, "cat", input=b"from stdin\n")
    assert p.stdout == b"from stdin\n"
    p = docker_gw.run("exec", running_container, "sh", "-c", "exit 3", check=False)
    assert p.returncode == 3


def test_cp_round_trip(docker_gw, running_container, tmp_path):
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(5 * 1024 * 1024 + 123))
    want = sha256_file(src)
    docker_gw.run("cp", str(src), "%s:/tmp/blob.bin" % running_container)
    inside = docker_gw.out("exec", running_container, "sha256sum", "/tmp/blob.bin").split()[0]
    assert inside == want
    out = tmp_path / "back"
    out.mkdir()
    docker_gw.run("cp", "%s:/tmp/blob.bin" % running_container, str(out))
    assert sha256_file(out / "blob.bin") == want


def test_export_matches_direct(docker_gw, docker_direct, busybox_image, uniq):
    cid = docker_direct.out("create", "--name", uniq("exp"), busybox_image, "true")
    via = docker_gw.run("export", cid).stdout
    direct = docker_direct.run("export", cid).stdout
    assert len(via) > 1024 * 1024
    assert sha256(via) == sha256(direct)


def test_save_and_load(docker_gw, docker_direct, busybox_image, uniq, tmp_path):
    tag = uniq("save") + ":v1"
    docker_direct.run("tag", busybox_image, tag)
    via = docker_gw.run("save", tag).stdout
    direct = docker_direct.run("save", tag).stdout
    assert len(via) > 1024 * 1024
    assert sha256(via) == sha256(direct)
    docker_direct.run("rmi", tag)
    assert docker_direct.run("image", "inspect", tag, check=False).returncode != 0
    tarpath = tmp_path / "img.tar"
    tarpath.write_bytes(via)
    with open(tarpath, "rb") as f:
        p = docker_gw.run("load", stdin=f, timeout=120)
    assert tag.encode() in p.stdout
    docker_direct.run("image", "inspect", tag)
    assert docker_direct.out("run", "--rm", tag, "echo", "loaded") == "loaded"


def test_import_from_stdin(docker_gw, docker_direct, rootfs_tar, uniq):
    tag = uniq("imp") + ":latest"
    with open(rootfs_tar, "rb") as f:
        p = docker_gw.run("import", "-", tag, stdin=f, timeout=120)
    assert p.stdout.decode().strip().startswith("sha256:")
    assert docker_direct.out("run", "--rm", tag, "/bin/busybox", "echo", "imported") == "imported"


def test_build_legacy_builder(docker_gw, docker_direct, busybox_image, uniq, tmp_path):
    tag = uniq("build") + ":latest"
    (tmp_path / "payload.txt").write_text("payload via gateway\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM %s\nRUN echo x > /x\nCOPY payload.txt /payload.txt\n" % busybox_image)
    p = docker_gw.run("build", "-t", tag, ".", cwd=str(tmp_path), env_extra={"DOCKER_BUILDKIT": "0"},
                      timeout=180)
    assert b"Successfully tagged" in p.stdout or b"Successfully built" in p.stdout, p.stdout
    out = docker_direct.out("run", "--rm", tag, "cat", "/x", "/payload.txt")
    assert out == "x\npayload via gateway"


def test_events_since_until(docker_gw, busybox_image, uniq):
    since = int(time.time()) - 1
    cid = docker_gw.out("create", "--name", uniq("ev"), busybox_image, "true")
    until = int(time.time()) + 2
    p = docker_gw.run("events", "--since", str(since), "--until", str(until),
                      "--filter", "container=" + cid, "--format", "{{json .}}", timeout=60)
    events = [json.loads(l) for l in p.stdout.decode().splitlines() if l.strip()]
    assert any(e.get("Action") == "create" and e.get("id", e.get("Actor", {}).get("ID")) == cid
               for e in events), events
    docker_gw.run("rm", cid)


def test_stats_no_stream(docker_gw, running_container):
    out = docker_gw.out("stats", "--no-stream", "--no-trunc", "--format", "{{.ID}} {{.PIDs}}",
                        running_container, timeout=60)
    ident, pids = out.split()
    assert ident == running_container
    assert int(pids) >= 1


def test_rm_force_running(docker_gw, docker_direct, busybox_image, uniq):
    cid = docker_direct.out("run", "-d", "--name", uniq("rm"), busybox_image, "sleep", "100000")
    docker_gw.run("rm", "-f", cid)
    assert docker_direct.run("inspect", cid, check=False).returncode != 0


def test_version_prefixed_plain_http(gw, dockerd):
    direct = http_request(dockerd.sock, "GET", "/version")
    api = direct.json()["ApiVersion"]
    r = http_request(gw.addr, "GET", "/v%s/version" % api)
    assert r.status == 200
    assert r.json()["Version"] == direct.json()["Version"]
    # a prefix the engine may not support: the gateway must relay the engine's answer unchanged
    d44 = http_request(dockerd.sock, "GET", "/v1.44/version")
    g44 = http_request(gw.addr, "GET", "/v1.44/version")
    assert g44.status == d44.status
    assert g44.json().keys() == d44.json().keys()
