"""docker-py (the Python SDK) through the gateway over TCP."""

import io
import os
import socket
import time

import docker
import pytest

from helpers import demux_frames, sha256, tar_bytes

pytestmark = pytest.mark.usefixtures("busybox_image")


@pytest.fixture
def client(gw):
    c = docker.DockerClient(base_url=gw.docker_host, timeout=120)
    yield c
    c.close()


@pytest.fixture
def sleeper(client, busybox_image, uniq):
    ctr = client.containers.run(busybox_image, ["sleep", "100000"], detach=True, name=uniq("py"))
    yield ctr
    ctr.remove(force=True)


def test_ping_and_version(client, direct):
    assert client.ping() is True
    v = client.version()
    assert v["Version"] == direct.version()["Version"]
    assert v["ApiVersion"] == direct.version()["ApiVersion"]


def test_run_not_detached(client, busybox_image):
    out = client.containers.run(busybox_image, ["sh", "-c", "echo one; echo two"], remove=True)
    assert out == b"one\ntwo\n"


def test_run_detached_and_wait(client, busybox_image, uniq):
    ctr = client.containers.run(busybox_image, ["sh", "-c", "echo done; exit 4"], detach=True,
                                name=uniq("det"))
    try:
        res = ctr.wait(timeout=60)
        assert res["StatusCode"] == 4
        assert ctr.logs() == b"done\n"
    finally:
        ctr.remove(force=True)


def test_logs_stream_follow(client, busybox_image, uniq):
    ctr = client.containers.run(busybox_image, ["sh", "-c",
                                                "for i in 1 2 3; do echo line$i; sleep 1; done; sleep 1000"],
                                detach=True, name=uniq("logs"))
    try:
        stream = ctr.logs(stream=True, follow=True)
        got = b""
        deadline = time.monotonic() + 30
        for piece in stream:
            got += piece
            if got.count(b"\n") >= 3 or time.monotonic() > deadline:
                break
        assert got == b"line1\nline2\nline3\n"
        ctr.reload()
        assert ctr.status == "running"
        stream.close()
    finally:
        ctr.remove(force=True)


# docker-py reads a hijacked exec stream from the raw socket and so loses any
# output that arrives in the same read as the 101 response head (a client-side
# race that exists against dockerd too).  The commands below therefore pause
# briefly before writing, so that the head is consumed first; the pause is part
# of the workload, not a synchronisation of the test.
PAUSE = "sleep 0.3; "


def test_exec_run_plain_and_demux(sleeper):
    res = sleeper.exec_run(["sh", "-c", PAUSE + "echo out; echo err >&2; exit 5"])
    assert res.exit_code == 5
    assert b"out\n" in res.output and b"err\n" in res.output
    res = sleeper.exec_run(["sh", "-c", PAUSE + "echo out; echo err >&2"], demux=True)
    assert res.output == (b"out\n", b"err\n")


def test_exec_run_stream(sleeper):
    res = sleeper.exec_run(["sh", "-c", PAUSE + "for i in 1 2 3; do echo s$i; done"], stream=True)
    assert b"".join(res.output) == b"s1\ns2\ns3\n"


def test_exec_run_socket_stdin_half_close(sleeper):
    res = sleeper.exec_run(["cat"], stdin=True, socket=True)
    sock = res.output._sock if hasattr(res.output, "_sock") else res.output
    sock.settimeout(30)
    payload = b"through the hijacked socket\n" * 100
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    sock.close()
    assert demux_frames(data)[1] == payload


def test_put_and_get_archive(sleeper):
    blob = os.urandom(2 * 1024 * 1024 + 17)
    assert sleeper.put_archive("/tmp", tar_bytes({"blob.bin": blob}))
    res = sleeper.exec_run(["sh", "-c", PAUSE + "sha256sum /tmp/blob.bin"])
    assert res.output.split()[0].decode() == sha256(blob)
    bits, stat = sleeper.get_archive("/tmp/blob.bin")
    assert stat["name"] == "blob.bin" and stat["size"] == len(blob)
    import tarfile
    tf = tarfile.open(fileobj=io.BytesIO(b"".join(bits)))
    assert tf.extractfile("blob.bin").read() == blob


def test_export_matches_direct(client, direct, busybox_image, uniq):
    ctr = client.containers.create(busybox_image, ["true"], name=uniq("exp"))
    try:
        via = b"".join(ctr.export())
        d = b"".join(direct.containers.get(ctr.id).export())
        assert len(via) > 1024 * 1024
        assert sha256(via) == sha256(d)
    finally:
        ctr.remove(force=True)


def test_image_save_and_load(client, direct, busybox_image, uniq):
    tag = uniq("pysave") + ":v1"
    direct.images.get(busybox_image).tag(tag)
    via = b"".join(client.api.get_image(tag))
    d = b"".join(direct.api.get_image(tag))
    assert sha256(via) == sha256(d)
    direct.images.remove(tag)
    loaded = client.images.load(via)
    assert any(tag in img.tags for img in loaded)
    direct.images.get(tag)


def test_import_image(client, direct, rootfs_tar, uniq):
    repo = uniq("pyimp")
    with open(rootfs_tar, "rb") as f:
        data = f.read()
    client.api.import_image_from_data(data, repository=repo, tag="t1")
    assert direct.containers.run(repo + ":t1", ["/bin/busybox", "echo", "ok"], remove=True) == b"ok\n"


def test_build_legacy_from_path(client, direct, busybox_image, uniq, tmp_path):
    tag = uniq("pybuild") + ":latest"
    (tmp_path / "f.txt").write_text("file from context\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM %s\nRUN echo x > /x\nCOPY f.txt /f.txt\n" % busybox_image)
    image, logs = client.images.build(path=str(tmp_path), tag=tag, rm=True)
    assert any("Successfully built" in l.get("stream", "") for l in logs)
    assert direct.containers.run(tag, ["cat", "/x", "/f.txt"], remove=True) == b"x\nfile from context\n"


def test_build_legacy_from_fileobj(client, direct, busybox_image, uniq):
    tag = uniq("pybuildf") + ":latest"
    df = io.BytesIO(("FROM %s\nRUN echo fileobj > /y\n" % busybox_image).encode())
    image, logs = client.images.build(fileobj=df, tag=tag, rm=True)
    assert direct.containers.run(tag, ["cat", "/y"], remove=True) == b"fileobj\n"


def test_events_with_until(client, busybox_image, uniq):
    since = int(time.time()) - 1
    ctr = client.containers.create(busybox_image, ["true"], name=uniq("pyev"))
    until = int(time.time()) + 2
    try:
        events = list(client.events(since=since, until=until, decode=True,
                                    filters={"container": ctr.id}))
        assert any(e.get("Action") == "create" and e.get("id") == ctr.id for e in events), events
    finally:
        ctr.remove(force=True)


def test_stats_no_stream(sleeper):
    st = sleeper.stats(stream=False)
    assert st["id"] == sleeper.id
    assert "memory_stats" in st and "cpu_stats" in st


def test_remove(client, direct, busybox_image, uniq):
    ctr = client.containers.run(busybox_image, ["sleep", "100000"], detach=True, name=uniq("pyrm"))
    ctr.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        direct.containers.get(ctr.id)
