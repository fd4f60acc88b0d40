"""A stand-in Docker registry for the pull tests: just enough of the
Registry HTTP API v2 for dockerd to pull one image over plain HTTP (dockerd
treats a registry on 127.0.0.0/8 as insecure by default, so it needs no
--insecure-registry flag).

* ``GET /v2/``: 200 with ``Docker-Distribution-API-Version: registry/2.0``.
* ``GET|HEAD /v2/<name>/manifests/<tag or digest>``: a schema 2 manifest
  (``application/vnd.docker.distribution.manifest.v2+json``) with a config
  blob and the layer blobs, with ``Docker-Content-Digest``.
* ``GET|HEAD /v2/<name>/blobs/<digest>``: the blob, with its digest and
  ``Content-Length``; ``Range: bytes=N-`` gets a 206.

Anything else is a 404 in the registry's error format. Each layer is a
gzip'd tar; a ``Layer`` may be sent in paced chunks (``chunk``, ``pace``)
and may stop after ``stall_at`` bytes until the test sets ``release``. It
notes whether the client hung up before the whole blob was sent
(``aborted``), so a test can tell that dockerd gave up a cancelled pull.
(dockerd 20.10 only closes a cancelled blob download once more data comes:
its reader sits in a read of the body, so a test releases the stall first.)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import re
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers import tar_bytes

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layer:
    """One layer blob: ``tar`` gzip'd. ``short`` is the ID dockerd shows in
    its pull progress (the first 12 hex digits of the blob's digest)."""

    def __init__(self, tar: bytes, stall_at: int | None = None, chunk: int = 64 << 10, pace: float = 0.0):
        self.tar = tar
        self.blob = gzip.compress(tar, compresslevel=1, mtime=0)
        self.digest = digest_of(self.blob)
        self.diff_id = digest_of(tar)
        self.short = self.digest.split(":", 1)[1][:12]
        self.size = len(self.blob)
        self.chunk = chunk
        self.pace = pace
        self.stall_at = stall_at
        self.stalled = threading.Event()   # set when the first stall_at bytes are sent
        self.release = threading.Event()   # the test sets it to send the rest
        self.aborted = threading.Event()   # the client hung up before the end of the blob
        self.completed = threading.Event()  # the whole blob was sent
        self.requests = 0


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


class Registry:
    """``Registry({"test/layers:v1": [Layer, ...]})`` serves each image on
    127.0.0.1 at a port of its own; ``host`` is ``127.0.0.1:PORT``."""

    def __init__(self, images: dict[str, list[Layer]]):
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.blobs: dict[str, bytes | Layer] = {}
        self.log: list[tuple[str, str]] = []
        for ref, layers in images.items():
            name, tag = ref.rsplit(":", 1)
            config = json.dumps({
                "architecture": _arch(), "os": "linux",
                "created": "2024-01-01T00:00:00Z",
                "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
                "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "layer %d" % i}
                            for i in range(len(layers))],
            }, sort_keys=True).encode()
            self.blobs[digest_of(config)] = config
            for l in layers:
                self.blobs[l.digest] = l
            manifest = json.dumps({
                "schemaVersion": 2, "mediaType": MANIFEST_V2,
                "config": {"mediaType": CONFIG_V1, "size": len(config), "digest": digest_of(config)},
                "layers": [{"mediaType": LAYER_GZIP, "size": l.size, "digest": l.digest} for l in layers],
            }, indent=3).encode()
            self.manifests[(name, tag)] = manifest
            self.manifests[(name, digest_of(manifest))] = manifest
        self._closing = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self):
        self._closing.set()
        for b in self.blobs.values():
            if isinstance(b, Layer):
                b.release.set()
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _reply(self, status, body=b"", headers=()):
                self.send_response(status)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _not_found(self, code):
                body = json.dumps({"errors": [{"code": code, "message": code.lower(), "detail": self.path}]})
                self._reply(404, body.encode(), [("Content-Type", "application/json")])

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                reg.log.append((self.command, self.path))
                path = self.path.split("?", 1)[0]
                if path in ("/v2", "/v2/"):
                    return self._reply(200, b"{}", [("Content-Type", "application/json")])
                m = re.fullmatch(r"/v2/(.+)/manifests/([^/]+)", path)
                if m:
                    manifest = reg.manifests.get((m[1], m[2]))
                    if manifest is None:
                        return self._not_found("MANIFEST_UNKNOWN")
                    return self._reply(200, manifest, [("Content-Type", MANIFEST_V2),
                                                       ("Docker-Content-Digest", digest_of(manifest))])
                m = re.fullmatch(r"/v2/(.+)/blobs/(sha256:[0-9a-f]{64})", path)
                if m and m[2] in reg.blobs:
                    blob = reg.blobs[m[2]]
                    if isinstance(blob, Layer):
                        return self._layer(blob)
                    return self._reply(200, blob, [("Content-Type", "application/octet-stream"),
                                                   ("Docker-Content-Digest", m[2])])
                return self._not_found("BLOB_UNKNOWN" if "/blobs/" in path else "NAME_UNKNOWN")

            def _layer(self, layer: Layer):
                layer.requests += 1
                start = 0
                rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
                if rng and int(rng[1]) < layer.size:
                    start = int(rng[1])
                self.send_response(206 if start else 200)
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Docker-Content-Digest", layer.digest)
                self.send_header("Content-Length", str(layer.size - start))
                if start:
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, layer.size - 1, layer.size))
                self.end_headers()
                if self.command == "HEAD":
                    return
                pos = start
                try:
                    while pos < layer.size:
                        if layer.stall_at is not None and pos >= layer.stall_at and not layer.release.is_set():
                            self.wfile.flush()
                            layer.stalled.set()
                            if not self._wait_release(layer):
                                layer.aborted.set()
                                self.close_connection = True
                                return
                        end = min(layer.size, pos + layer.chunk)
                        if layer.stall_at is not None and pos < layer.stall_at:
                            end = min(end, layer.stall_at)
                        self.wfile.write(layer.blob[pos:end])
                        self.wfile.flush()
                        pos = end
                        if layer.pace and pos < layer.size:
                            time.sleep(layer.pace)  # pacing our own sending, not synchronisation
                    layer.completed.set()
                except (BrokenPipeError, ConnectionResetError):
                    layer.aborted.set()
                    self.close_connection = True

            def _wait_release(self, layer: Layer) -> bool:
                """Waits for the test's release; False if the client closed
                the connection first (or the registry is closing)."""
                sock: socket.socket = self.connection
                while not layer.release.is_set():
                    if reg._closing.is_set():
                        return False
                    readable, _, _ = select.select([sock], [], [], 0.05)
                    if readable:
                        try:
                            if sock.recv(1, socket.MSG_PEEK) == b"":
                                return False
                        except OSError:
                            return False
                return True

        return Handler


def random_layer(name: str, size: int, **kw) -> Layer:
    """A layer holding one file of ``size`` random bytes (gzip cannot shrink
    it, so the blob is about as big)."""
    return Layer(tar_bytes({name: os.urandom(size)}), **kw)
