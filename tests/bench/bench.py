#!/usr/bin/env python3
"""Benchmarks dockermand side by side with direct access, socat, nginx and
HAProxy, and prints one table: a row per figure, a column per system.

Run it through tests/bench/run.sh, which installs the peers and builds the
tools. See tests/bench/README.md for what every figure means and how it is
measured.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BUILD = ROOT / "target" / "bench" / "build" / "release"
STANDIN = BUILD / "standin"
LOAD = BUILD / "benchload"
RELAY = BUILD / "splicerelay"
# DMBENCH_DOCKERMAND benchmarks another build (to compare two versions).
DOCKERMAND = Path(os.environ.get("DMBENCH_DOCKERMAND") or ROOT / "target" / "release" / "dockermand")
CONF = HERE / "conf"
# The static musl x86_64 build (cross/build.sh), measured for idle RSS only.
MUSL_TARGET = "x86_64-unknown-linux-musl"
MUSL_ARCH = "x86_64"
MUSL = Path(os.environ.get("DMBENCH_DOCKERMAND_MUSL") or ROOT / "cross" / "out" / MUSL_TARGET / "dockermand")
# The TLS rows run dockermand built with `--features tls` (run.sh copies it here).
DOCKERMAND_TLS = Path(os.environ.get("DMBENCH_DOCKERMAND_TLS") or ROOT / "target" / "bench" / "dockermand-tls")

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
CLK_TCK = os.sysconf("SC_CLK_TCK")

FOLLOW = "/containers/bench/logs?follow=1&stdout=1"
ALL_SYSTEMS = ["direct", "dockermand", "dockermand-copy", "dockermand-policy", "splicerelay",
               "socat", "nginx", "haproxy"]
BASE = "dockermand"
# The peers the "better of nginx and HAProxy" goals compare with.
PEERS = ("nginx", "haproxy")
# The systems of the TLS rows: each terminates TLS itself.
TLS_SYSTEMS = ("dockermand", "nginx", "haproxy")
# What every TLS connection must negotiate (the load tool offers nothing else).
TLS_SUITE = "TLS13_AES_128_GCM_SHA256/X25519"
# dockermand-policy's Bearer token, made up per run.
TOKEN = "dmbench-" + secrets.token_hex(16)
# The UI rows: ui.py drives Debian's chromium with Playwright, in the Python
# that has it (run.sh: the venv tests/run.sh makes).
UI_PY = HERE / "ui.py"
UI_PYTHON = os.environ.get("DMBENCH_UI_PYTHON") or sys.executable
UI_PAGE = "/_dockermand/ui/"
UI_USER = "bench"
UI_CONTAINERS = 30
# The CPU slow-down asked of chromium (the goal is for 4×).
UI_THROTTLE = float(os.environ.get("DMBENCH_UI_THROTTLE") or 4)
# RSS may grow by a few pages (allocator bookkeeping, a page touched for the
# first time) but not with the number of requests.
UI_RSS_GROWTH_GOAL = 64
UI_WARMUP_REQUESTS = 2000


def cpu_env(name, default):
    v = os.environ.get(name)
    if v is not None:
        return v or None
    return default


NCPU = os.cpu_count() or 1
# The proxy gets a core of its own; the load tool and the upstream share the
# other one. Override with DMBENCH_CPU_PROXY / _LOAD / _UPSTREAM (empty: no pin).
CPU_PROXY = cpu_env("DMBENCH_CPU_PROXY", "1" if NCPU >= 2 else None)
CPU_LOAD = cpu_env("DMBENCH_CPU_LOAD", "0" if NCPU >= 2 else None)
CPU_UPSTREAM = cpu_env("DMBENCH_CPU_UPSTREAM", "0" if NCPU >= 2 else None)
# The browser of the UI rows (several processes: browser, renderer, network)
# is not pinned unless asked: a browser has a machine's cores to itself.
CPU_BROWSER = cpu_env("DMBENCH_CPU_BROWSER", None)


class BenchError(Exception):
    pass


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def affinity(cpu):
    if cpu is None:
        return None
    cpus = {int(c) for c in str(cpu).split(",")}

    def pre():
        os.sched_setaffinity(0, cpus)

    return pre


# ------------------------------------------------------------------ processes

PROCS = []


class Proc:
    """A process we started, in its own session so its children (nginx
    workers, socat's forks) can be ended with it by process group id."""

    def __init__(self, name, argv, cpu, logdir, env=None, stdout=None):
        self.name = name
        self.log_path = Path(logdir) / f"{name}.log"
        self.logf = open(self.log_path, "ab")
        self.p = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=stdout if stdout is not None else self.logf,
            stderr=self.logf,
            start_new_session=True,
            preexec_fn=affinity(cpu),
            env=env,
        )
        self.pid = self.p.pid
        PROCS.append(self)

    def alive(self):
        return self.p.poll() is None

    def log_tail(self, n=15):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def stop(self, grace=10.0):
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (socat forks, nginx workers).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()
        if self in PROCS:
            PROCS.remove(self)


def stop_all():
    for p in list(reversed(PROCS)):
        p.stop(grace=5)


# ------------------------------------------------------------ /proc accounting


def _children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def proc_tree(root):
    kids = _children_map()
    out = [root]
    i = 0
    while i < len(out):
        out.extend(kids.get(out[i], []))
        i += 1
    return out


def tree_cpu(root):
    """CPU seconds (user+sys) of a process tree: each live process's tasks
    (schedstat, ns precision), plus what its reaped children used
    (cutime+cstime), so socat's finished forks are counted too."""
    total = 0.0
    for pid in proc_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
        ticks = (utime + stime) / CLK_TCK
        precise = 0.0
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    precise += int(f.read().split()[0]) / 1e9
        except OSError:
            precise = 0.0
        total += max(ticks, precise) + (cutime + cstime) / CLK_TCK
    return total


def tree_mem(root):
    """(sum of VmRSS, sum of Pss) in KiB over a process tree."""
    rss = pss = 0
    for pid in proc_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
        except OSError:
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


# ------------------------------------------------------------------ systems


def render(template_name, **values):
    """Fills the {{NAME}} placeholders of a template under conf/."""
    text = (CONF / template_name).read_text()
    # Comment lines may mention the placeholder syntax itself.
    text = "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")) + "\n"

    def sub(m):
        if m.group(1) not in values:
            raise BenchError(f"{template_name}: no value for {m.group(0)}")
        return str(values[m.group(1)])

    return re.sub(r"\{\{([A-Z_]+)\}\}", sub, text)


def arg_lines(text):
    return [l.strip() for l in text.splitlines() if l.strip() and not l.strip().startswith("#")]


def http_ping(port, headers=(), timeout=0.5, tls=None):
    extra = "".join(f"{h}\r\n" for h in headers)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        s = raw
        if tls:
            import ssl

            ctx = ssl.create_default_context(cafile=str(tls.ca))
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        s.sendall(f"GET /_ping HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")


class System:
    def __init__(self, name, upstream_sock, rundir, binary=None, tls=None, config=None):
        self.name = name
        self.upstream_sock = upstream_sock
        self.rundir = Path(rundir)
        self.proc = None
        self.port = None
        # dockermand's executable (another build, e.g. the static musl one).
        self.binary = binary
        # TlsFiles: the system terminates TLS with them (dockermand, nginx, haproxy).
        self.tls = tls
        # dockermand: a --config file whose token is TOKEN (the UI rows).
        self.config = config

    @property
    def headers(self):
        """Header lines every request to this system carries."""
        if self.name == "dockermand-policy" or self.config:
            return [f"Authorization: Bearer {TOKEN}"]
        return []

    def load_args(self):
        """benchload's --target, --header and --tls arguments for this system."""
        out = ["--target", self.target]
        for h in self.headers:
            out += ["--header", h]
        if self.tls:
            out += ["--tls", self.tls.ca]
        return out

    def check_tls(self, res):
        """A TLS system's result must show the pinned protocol, suite and group."""
        if self.tls and res.get("tls") != TLS_SUITE:
            raise BenchError(f"negotiated {res.get('tls')!r}, not {TLS_SUITE}")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def target(self):
        if self.name == "direct":
            return f"unix:{self.upstream_sock}"
        return f"tcp:127.0.0.1:{self.port}"

    def start(self):
        if self.name == "direct":
            return
        self.port = free_port()
        subs = dict(PORT=self.port, UPSTREAM_SOCK=self.upstream_sock, RUN=self.rundir)
        tag = f"{self.name}{'-tls' if self.tls else ''}-{self.port}"
        if self.tls and self.name not in TLS_SYSTEMS:
            raise BenchError(f"{self.name} has no TLS configuration")
        if self.name.startswith("dockermand"):
            extra = ""
            if self.tls:
                extra = render("dockermand-tls.args.in", CERT=self.tls.cert, KEY=self.tls.key)
            elif self.config:
                extra = f"--config\n{self.config}"
            elif self.name == "dockermand-copy":
                extra = "--no-splice"
            elif self.name == "dockermand-policy":
                conf = self.rundir / f"{tag}.json"
                conf.write_text(render("dockermand-policy.json.in", TOKEN_HASH=token_sha256()))
                extra = f"--config\n{conf}"
            binary = self.binary or (DOCKERMAND_TLS if self.tls else DOCKERMAND)
            argv = [binary] + arg_lines(render("dockermand.args.in", EXTRA=extra,
                                               SCHEME="tls://" if self.tls else "", **subs))
        elif self.name == "splicerelay":
            argv = [RELAY] + arg_lines(render("splicerelay.args.in", **subs))
        elif self.name == "socat":
            argv = ["socat"] + arg_lines(render("socat.args.in", **subs))
        elif self.name == "nginx":
            user = _username()
            conf = self.rundir / f"{tag}.conf"
            tls = render("nginx-tls.conf.in", CERT=self.tls.cert, KEY=self.tls.key) if self.tls else ""
            conf.write_text(render("nginx.conf.in", USER=user, SSL=" ssl" if self.tls else "",
                                   TLS=tls, **subs))
            argv = ["nginx", "-p", f"{self.rundir}/", "-e", self.rundir / f"{tag}-error.log", "-c", conf]
        elif self.name == "haproxy":
            conf = self.rundir / f"{tag}.cfg"
            tls = ""
            if self.tls:
                tls = " " + " ".join(arg_lines(render("haproxy-tls.in", CERT_AND_KEY=self.tls.cert_and_key)))
            conf.write_text(render("haproxy.cfg.in", TLS=tls, **subs))
            argv = ["haproxy", "-db", "-f", conf]
        else:
            raise BenchError(f"unknown system {self.name}")
        self.proc = Proc(tag, argv, CPU_PROXY, self.rundir)
        deadline = time.time() + 15
        while True:
            if not self.proc.alive():
                raise BenchError(f"{self.name} exited at start:\n{self.proc.log_tail()}")
            try:
                if http_ping(self.port, self.headers, tls=self.tls):
                    break
            except OSError:  # ssl.SSLError is one
                pass
            if time.time() > deadline:
                raise BenchError(f"{self.name} did not answer GET /_ping:\n{self.proc.log_tail()}")
            time.sleep(0.05)

    def check_alive(self):
        if self.proc and not self.proc.alive():
            raise BenchError(f"{self.name} died:\n{self.proc.log_tail()}")

    def quiesce(self, timeout=10.0):
        """Waits until per-connection children (socat's forks) are gone, so
        their CPU time has been reaped into the parent's."""
        if self.name != "socat" or not self.proc:
            return
        deadline = time.time() + timeout
        while len(proc_tree(self.pid)) > 1 and time.time() < deadline:
            time.sleep(0.02)

    def cpu(self):
        return tree_cpu(self.pid) if self.proc else None

    def pin(self, cpu):
        """Moves every thread of the running process tree onto `cpu`; forks
        made later (socat's) inherit it."""
        if not self.proc or cpu is None:
            return
        cpus = {int(c) for c in str(cpu).split(",")}
        for pid in proc_tree(self.pid):
            try:
                for tid in os.listdir(f"/proc/{pid}/task"):
                    os.sched_setaffinity(int(tid), cpus)
            except OSError:
                pass

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


def token_sha256():
    """The hash dockermand stores for TOKEN, as dockermand computes it."""
    r = subprocess.run([str(DOCKERMAND), "--hash-token", TOKEN], capture_output=True, text=True)
    digest = r.stdout.strip()
    if r.returncode != 0 or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise BenchError(f"dockermand --hash-token: {r.stdout.strip()} {r.stderr.strip()}")
    return digest


def _username():
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


# ------------------------------------------------------------------ load tool


def benchload(*args, timeout=900):
    cmd = [str(LOAD)] + [str(a) for a in args]
    try:
        r = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=affinity(CPU_LOAD),
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out: {' '.join(cmd)}")
    if r.returncode != 0:
        raise BenchError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise BenchError(f"{' '.join(cmd)}: no result: {r.stdout[-300:]} {r.stderr[-300:]}")
    return json.loads(lines[-1])


class Holder:
    """benchload hold: keeps N connections open until released."""

    def __init__(self, system, path, conns, stream):
        args = [LOAD, "hold", *system.load_args(), "--path", path, "--conns", conns]
        target = system.target
        if stream:
            args.append("--stream")
        self.p = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=affinity(CPU_LOAD),
        )
        line = self.p.stdout.readline().strip()
        if not line.startswith("ready"):
            self.p.kill()
            err = self.p.stderr.read()
            raise BenchError(f"hold {conns} x {path} on {target}: {line} {err.strip()[-300:]}")

    def release(self):
        try:
            out, err = self.p.communicate(input="x\n", timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise BenchError("hold did not finish")
        m = re.search(r"done lost=(\d+)", out)
        if self.p.returncode != 0 or not m:
            raise BenchError(f"hold failed: {out.strip()} {err.strip()[-300:]}")
        return int(m.group(1))


# ------------------------------------------------------------------ figures


class Figure:
    def __init__(self, fid, label, unit, better, note="", kind="num"):
        self.id = fid
        self.label = label
        self.unit = unit
        self.better = better  # "higher" | "lower" | None
        self.note = note
        self.kind = kind
        self.values = {}  # system -> [samples]

    def add(self, system, value):
        if value is not None:
            self.values.setdefault(system, []).append(value)

    def stats(self, system):
        v = self.values.get(system)
        if not v:
            return None
        return {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}

    def ratio(self, system):
        a, b = self.stats(system), self.stats(BASE)
        if not a or not b or b["median"] == 0:
            return None
        return a["median"] / b["median"]


FIGS = {}
ORDER = []


def fig(fid, *args, **kw):
    if fid not in FIGS:
        FIGS[fid] = Figure(fid, *args, **kw)
        ORDER.append(fid)
    return FIGS[fid]


ERRORS = []


NOTES = []


def note(msg):
    """Something skipped or worth knowing, that is no failure."""
    log("note: " + msg)
    NOTES.append(msg)


def record_error(what, e):
    msg = f"{what}: {e}"
    log("ERROR " + msg)
    ERRORS.append(msg)


# ------------------------------------------------------------------ phases


def rotate(items, k):
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def phase_rate(systems, cfg, path, conns, close, tag, label, runs, one_core=False):
    """Closed-loop small requests. With one_core the proxy is moved onto the
    load tool's CPU for the duration, so no request crosses CPUs."""
    where = ", one core" if one_core else ""
    dur, warm = cfg.duration, cfg.warmup
    mode = "no keep-alive" if close else "keep-alive"
    base = f"{label} c={conns} {mode}{where}"
    f_rps = fig(f"{tag}_rps", f"{base}: req/s", "req/s", "higher")
    f_p50 = fig(f"{tag}_p50", f"{base}: p50", "µs", "lower")
    f_p99 = fig(f"{tag}_p99", f"{base}: p99", "µs", "lower")
    f_cpu = fig(f"{tag}_cpu", f"{base}: proxy CPU/req", "µs", "lower",
                note="CPU of the proxy's process tree over the whole run / requests completed")
    for r in range(runs):
        for s in rotate(systems, r):
            try:
                if one_core:
                    s.pin(CPU_LOAD)
                s.quiesce()
                c0 = s.cpu()
                args = ["rate", *s.load_args(), "--path", path, "--conns", conns,
                        "--duration", dur, "--warmup", warm]
                if close:
                    args.append("--close")
                res = benchload(*args)
                s.quiesce()
                c1 = s.cpu()
                s.check_alive()
                s.check_tls(res)
                if res["requests"] == 0:
                    raise BenchError(f"no request completed ({res.get('last_error')})")
                if res["errors"] > max(0, res["requests"] // 1000):
                    raise BenchError(
                        f"{res['errors']} errors in {res['requests']} requests: {res['last_error']}")
                f_rps.add(s.name, res["rps"])
                f_p50.add(s.name, res["p50_us"])
                f_p99.add(s.name, res["p99_us"])
                if c0 is not None:
                    f_cpu.add(s.name, (c1 - c0) / max(1, res["total_requests"]) * 1e6)
            except BenchError as e:
                record_error(f"{s.name} {tag} run {r + 1}", e)
            finally:
                if one_core:
                    s.pin(CPU_PROXY)


def phase_wrk(systems, cfg, conns, runs):
    f = fig(f"wrk_c{conns}_rps", f"wrk /_ping c={conns} keep-alive: req/s", "req/s", "higher",
            note="wrk -t1 (cross-check of the load tool; TCP only, so no direct)")
    f50 = fig(f"wrk_c{conns}_p50", f"wrk /_ping c={conns} keep-alive: p50", "µs", "lower")
    for r in range(runs):
        for s in rotate([s for s in systems if s.name != "direct" and
                         (cfg.wrk_systems is None or s.name in cfg.wrk_systems)], r):
            cmd = ["wrk", "-t1", f"-c{conns}", f"-d{cfg.wrk_secs}s", "--latency"]
            for h in s.headers:
                cmd += ["-H", h]
            cmd.append(f"http://127.0.0.1:{s.port}/_ping")
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                                     preexec_fn=affinity(CPU_LOAD))
                out = res.stdout
                m = re.search(r"Requests/sec:\s+([\d.]+)", out)
                if res.returncode != 0 or not m:
                    raise BenchError(f"wrk failed: {out[-300:]} {res.stderr[-300:]}")
                if re.search(r"Non-2xx or 3xx responses", out):
                    raise BenchError(f"wrk saw errors: {out[-400:]}")
                se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
                if se and sum(int(x) for x in se.groups()) > 0:
                    raise BenchError(f"wrk socket errors: {se.group(0)}")
                f.add(s.name, float(m.group(1)))
                lm = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
                if lm:
                    scale = {"us": 1, "ms": 1e3, "s": 1e6}[lm.group(2)]
                    f50.add(s.name, float(lm.group(1)) * scale)
                s.check_alive()
            except (BenchError, subprocess.TimeoutExpired) as e:
                record_error(f"{s.name} wrk c={conns} run {r + 1}", e)


def phase_transfer(systems, cfg, runs, n=None, prefix="", only=None):
    """Downloads and uploads through each system. `prefix` starts the rows'
    ids and labels (the TLS rows); `only` picks some of the kinds."""
    n = n or cfg.transfer_bytes
    size = human_bytes(n)
    kinds = [
        ("dl", f"download {size} (Content-Length)",
         ["get", "--path", f"/containers/bench/archive?path=/big&bytes={n}", "--expect", n]),
        ("dlc", f"download {size} (chunked)",
         ["get", "--path", f"/containers/bench/export?bytes={n}", "--expect", n]),
        ("ul", f"upload {size} (Content-Length)", ["post", "--path", "/images/load?quiet=1", "--bytes", n]),
        ("ulc", f"upload {size} (chunked)", ["post", "--path", "/images/load?quiet=1", "--bytes", n, "--chunked"]),
    ]
    for kid, label, args in kinds:
        if only is not None and kid not in only:
            continue
        kid, label = f"{prefix.lower()}{'_' if prefix else ''}{kid}", f"{prefix}{' ' if prefix else ''}{label}"
        f_tp = fig(f"{kid}_mibs", f"{label}", "MiB/s", "higher")
        f_cpu = fig(f"{kid}_cpu", f"{label}: proxy CPU", "s/GiB", "lower")
        for r in range(runs):
            for s in rotate(systems, r):
                try:
                    s.quiesce()
                    c0 = s.cpu()
                    res = benchload(args[0], *s.load_args(), *args[1:])
                    s.quiesce()
                    c1 = s.cpu()
                    s.check_alive()
                    s.check_tls(res)
                    if res["bytes"] != n:
                        raise BenchError(f"moved {res['bytes']} bytes, expected {n}")
                    if args[0] == "post":
                        reply = json.loads(res["reply"])
                        if reply.get("bytes") != n:
                            raise BenchError(f"upstream counted {reply.get('bytes')} bytes, expected {n}")
                    f_tp.add(s.name, res["mib_s"])
                    if c0 is not None:
                        f_cpu.add(s.name, (c1 - c0) / (n / GiB))
                except (BenchError, ValueError) as e:
                    record_error(f"{s.name} {kid} run {r + 1}", e)


def sample_mem(pid, n):
    out = []
    for i in range(n):
        if i:
            time.sleep(0.1)
        out.append(tree_mem(pid))
    return out


def strace_calls(path):
    """(total calls, {syscall: calls}) from a `strace -c` summary."""
    calls = {}
    total = None
    for line in Path(path).read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0].replace(".", "").isdigit():
            name = parts[-1]
            try:
                n = int(parts[3])
            except ValueError:
                continue
            if name == "total":
                total = n
            else:
                calls[name] = n
    if total is None:
        raise BenchError(f"no strace summary in {path}")
    return total, calls


def phase_syscalls(systems, cfg, rundir, prefix=""):
    """Syscalls the proxy makes per request and per MiB, counted with
    `strace -c -f` attached to its process tree (timings under strace are
    meaningless, the counts are not). `prefix` starts the rows' ids and
    labels (the TLS rows)."""
    n = cfg.strace_bytes
    items = [
        ("sys_req", "syscalls/request, /_ping c=16 keep-alive", "calls",
         ["rate", "--path", "/_ping", "--conns", 16, "--duration", cfg.strace_secs, "--warmup", 0],
         lambda res: res["total_requests"]),
        ("sys_dl", f"syscalls/MiB, download {human_bytes(n)} CL", "calls",
         ["get", "--path", f"/containers/bench/archive?path=/big&bytes={n}", "--expect", n],
         lambda res: res["bytes"] / MiB),
        ("sys_ul", f"syscalls/MiB, upload {human_bytes(n)} CL", "calls",
         ["post", "--path", "/images/load?quiet=1", "--bytes", n],
         lambda res: res["bytes"] / MiB),
    ]
    for fid, label, unit, args, per in items:
        if prefix:
            fid, label = f"{prefix.lower()}_{fid}", f"{prefix} {label}"
        f = fig(fid, label, unit, "lower", note="counted with strace -c -f on the proxy's process tree")
        for s in systems:
            if s.proc is None or (cfg.strace_systems and s.name not in cfg.strace_systems):
                continue
            out = rundir / f"strace-{fid}-{s.name}.txt"
            try:
                s.quiesce()
                pids = proc_tree(s.pid)
                cmd = ["strace", "-c", "-f", "-o", out]
                for p in pids:
                    cmd += ["-p", p]
                st = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True)
                # strace prints one "attached" line per task once it is in.
                attached = 0
                deadline = time.time() + 5
                while attached < len(pids) and time.time() < deadline:
                    line = st.stderr.readline()
                    if not line:
                        break
                    if "attached" in line:
                        attached += 1
                res = benchload(args[0], *s.load_args(), *args[1:])
                s.quiesce()
                st.send_signal(signal.SIGINT)
                st.communicate(timeout=10)
                s.check_tls(res)
                total, calls = strace_calls(out)
                f.add(s.name, total / max(1e-9, per(res)))
                f.details = getattr(f, "details", {})
                f.details[s.name] = dict(sorted(calls.items(), key=lambda kv: -kv[1])[:8])
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                record_error(f"{s.name} strace {fid}", e)


def phase_rss(systems, cfg, runs):
    idle_n, streams_n = cfg.idle_clients, cfg.streams
    f_idle = fig("rss_idle", "RSS idle", "KiB", "lower", kind="kib")
    f_pidle = fig("pss_idle", "PSS idle", "KiB", "lower", kind="kib",
                  note="proportional set size: shared pages split among the processes sharing them")
    f_held = fig("rss_idle_clients", f"RSS, {idle_n} idle keep-alive clients", "KiB", "lower", kind="kib")
    f_pss = fig("pss_idle_clients", f"PSS, {idle_n} idle keep-alive clients", "KiB", "lower", kind="kib",
                note="proportional set size: shared pages split among the processes sharing them")
    f_str = fig("rss_streams", f"RSS, {streams_n} log-follow streams", "KiB", "lower", kind="kib")
    f_per = fig("rss_per_stream", "RSS per active stream", "KiB", "lower", kind="kib")
    for r in range(runs):
        for s in rotate([s for s in systems if s.name != "direct"], r):
            t0 = time.time()
            try:
                s.start()
                time.sleep(cfg.settle)
                idle, pidle = tree_mem(s.pid)
                h = Holder(s, "/_ping", idle_n, stream=False)
                time.sleep(cfg.settle)
                samples = sample_mem(s.pid, cfg.mem_samples)
                lost = h.release()
                if lost:
                    raise BenchError(f"{lost} idle clients were disconnected")
                s.stop()
                s.start()
                time.sleep(cfg.settle)
                idle2, _ = tree_mem(s.pid)
                h = Holder(s, FOLLOW, streams_n, stream=True)
                time.sleep(cfg.stream_wait)  # full mode: at least one more chunk on every stream
                ssamples = [x[0] for x in sample_mem(s.pid, cfg.mem_samples)]
                lost = h.release()
                if lost:
                    raise BenchError(f"{lost} streams were cut")
                s.stop()
                f_idle.add(s.name, min(idle, idle2))
                f_pidle.add(s.name, pidle)
                f_held.add(s.name, max(x[0] for x in samples))
                f_pss.add(s.name, max(x[1] for x in samples))
                f_str.add(s.name, max(ssamples))
                f_per.add(s.name, (max(ssamples) - idle2) / streams_n)
                log(f"memory: {s.name} run {r + 1} took {time.time() - t0:.1f} s")
            except BenchError as e:
                record_error(f"{s.name} rss run {r + 1}", e)
                s.stop()


def prepare_musl(cfg, rundir):
    """The static musl binary to measure, or None (with a note saying why).
    A full run builds it with cross/build.sh (incremental, so it also brings
    a present one up to date); the quick run only uses one that is there."""
    override = bool(os.environ.get("DMBENCH_DOCKERMAND_MUSL"))
    how = f"cross/build.sh {MUSL_TARGET}"
    if not cfg.quick and not override:
        log(f"building the static musl binary ({how})")
        build_log = Path(rundir) / "cross-build.log"
        with open(build_log, "wb") as out:
            try:
                r = subprocess.run([str(ROOT / "cross" / "build.sh"), MUSL_TARGET], stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=3600)
                ok = r.returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        if not ok:
            tail = "\n".join(build_log.read_text(errors="replace").splitlines()[-10:])
            if not MUSL.exists():
                raise BenchError(f"{how} failed:\n{tail}")
            note(f"RSS idle, static musl: {how} failed; measured the binary already there ({MUSL})")
    if not MUSL.exists():
        note(f"RSS idle, static musl {MUSL_ARCH}: skipped, {MUSL} is absent (build it with {how})")
        return None
    if cfg.quick and not override:
        newest = max((p.stat().st_mtime for p in (ROOT / "src").rglob("*.rs")), default=0)
        if MUSL.stat().st_mtime < newest:
            note(f"RSS idle, static musl: {MUSL} is older than src/ (rebuild it with {how})")
    copy = Path(rundir) / "dockermand-musl"
    shutil.copy2(MUSL, copy)
    return copy


def phase_rss_musl(binary, sock, cfg, runs, rundir):
    """Idle RSS of the static musl build (what a router runs), on a fresh
    process each run. Shown in the dockermand column."""
    fid = "rss_idle_musl"
    f = fig(fid, f"RSS idle, static musl {MUSL_ARCH}", "KiB", "lower", kind="kib",
            note=f"the static {MUSL_TARGET} build (cross/build.sh), same flags; dockermand column")
    # Beside the other idle rows.
    if "pss_idle" in ORDER:
        ORDER.remove(fid)
        ORDER.insert(ORDER.index("pss_idle") + 1, fid)
    for r in range(runs):
        s = System(BASE, sock, rundir, binary=binary)
        try:
            s.start()
            time.sleep(cfg.settle)
            rss, _ = tree_mem(s.pid)
            f.add(BASE, rss)
        except BenchError as e:
            record_error(f"dockermand-musl rss run {r + 1}", e)
        finally:
            s.stop()


def phase_sizes(names):
    f_bin = fig("size_exe", "executable size", "KiB", "lower", kind="kib",
                note="the file that runs (dockermand: release binary)")
    f_pkg = fig("size_installed", "installed size", "KiB", "lower", kind="kib",
                note="dpkg Installed-Size of the package(s); dockermand: the binary")
    exes = {"socat": "socat", "nginx": "nginx", "haproxy": "haproxy"}
    pkgs = {"socat": ["socat"], "nginx": ["nginx", "nginx-common"], "haproxy": ["haproxy"]}
    for name in names:
        if name.startswith("dockermand"):
            size = DOCKERMAND.stat().st_size / KiB
            f_bin.add(name, size)
            f_pkg.add(name, size)
        elif name in exes:
            path = shutil.which(exes[name]) or shutil.which(exes[name], path="/usr/sbin:/usr/bin")
            if path:
                f_bin.add(name, os.path.getsize(os.path.realpath(path)) / KiB)
            total = 0
            for p in pkgs[name]:
                r = subprocess.run(["dpkg-query", "-Wf", "${Installed-Size}", p],
                                   capture_output=True, text=True)
                if r.returncode == 0 and r.stdout.strip().isdigit():
                    total += int(r.stdout.strip())
            if total:
                f_pkg.add(name, total)


# ------------------------------------------------------------------ TLS


def openssl(*args):
    r = subprocess.run(["openssl", *[str(a) for a in args]], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise BenchError(f"openssl {' '.join(str(a) for a in args[:2])}: {r.stderr.strip()[-300:]}")


class TlsFiles:
    """The run's certificates, made by openssl: a CA, and a server
    certificate it signs for 127.0.0.1 and localhost, both ECDSA P-256
    (cheap handshakes, the same for every system). The servers send the
    server certificate alone; the load tool trusts the CA."""

    def __init__(self, rundir):
        d = Path(rundir) / "tls"
        d.mkdir(exist_ok=True)
        self.ca, self.cert, self.key = d / "ca.pem", d / "server.pem", d / "server.key"
        # HAProxy's crt: the certificate and its key in one file.
        self.cert_and_key = d / "server-and-key.pem"
        ca_key, csr, ext = d / "ca.key", d / "server.csr", d / "server.ext"
        ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                       "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", self.ca, "-days", 2,
                "-subj", "/CN=dmbench CA")
        openssl("req", *ec, "-keyout", self.key, "-out", csr, "-subj", "/CN=localhost")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", ca_key, "-days", 2,
                "-set_serial", f"0x{secrets.token_hex(8)}", "-extfile", ext, "-out", self.cert)
        self.cert_and_key.write_bytes(self.cert.read_bytes() + self.key.read_bytes())


def phase_tls(cfg, names, sock, rundir, runs, use_strace):
    """dockermand (built with TLS), nginx and HAProxy each terminating TLS
    with the same certificate and negotiating the same suite, in front of
    the same upstream: memory per idle TLS connection, small requests, and
    1 GiB each way."""
    tls_names = [n for n in TLS_SYSTEMS if n in names]
    tls = TlsFiles(rundir)
    log(f"TLS: {', '.join(tls_names)}; ECDSA P-256 certificate, {TLS_SUITE}")

    n = cfg.tls_clients
    f_idle = fig("tls_rss_idle", "TLS: RSS idle", "KiB", "lower", kind="kib",
                 note="a fresh process with a TLS listener; dockermand: the build with --features tls")
    f_held = fig("tls_rss_clients", f"TLS: RSS, {n} idle TLS keep-alive clients", "KiB", "lower", kind="kib")
    f_per = fig("tls_rss_per_conn", "TLS: RSS per idle TLS connection", "KiB", "lower", kind="kib",
                note=f"(RSS with {n} idle TLS clients − RSS idle) / {n}; each client did one "
                     "full handshake and one GET /_ping")
    for r in range(runs):
        for name in rotate(tls_names, r):
            s = System(name, sock, rundir, tls=tls)
            try:
                s.start()
                time.sleep(cfg.settle)
                idle, _ = tree_mem(s.pid)
                h = Holder(s, "/_ping", n, stream=False)
                time.sleep(cfg.settle)
                held = max(x[0] for x in sample_mem(s.pid, cfg.mem_samples))
                lost = h.release()
                if lost:
                    raise BenchError(f"{lost} idle TLS clients were disconnected")
                f_idle.add(name, idle)
                f_held.add(name, held)
                f_per.add(name, (held - idle) / n)
            except BenchError as e:
                record_error(f"{name} TLS rss run {r + 1}", e)
            finally:
                s.stop()

    systems = []
    try:
        for name in tls_names:
            s = System(name, sock, rundir, tls=tls)
            try:
                s.start()
                systems.append(s)
            except BenchError as e:
                record_error(f"start {name} with TLS", e)
                s.stop()
        phase_rate(systems, cfg, "/_ping", 16, False, "tls_ping_c16_ka", "TLS /_ping", runs)
        # Connection: close over TLS: a full handshake per request.
        phase_rate(systems, cfg, "/_ping", 16, True, "tls_ping_c16_close", "TLS /_ping", runs)
        phase_transfer(systems, cfg, runs, n=cfg.tls_bytes, prefix="TLS", only=("dl", "ul"))
        if use_strace:
            phase_syscalls(systems, cfg, rundir, prefix="TLS")
    finally:
        for s in systems:
            s.stop()


# ------------------------------------------------------------------ dockerd


class Dockerd:
    def __init__(self, logdir):
        self.dir = Path(tempfile.mkdtemp(prefix="dmb.", dir="/tmp"))
        self.sock = self.dir / "docker.sock"
        if len(str(self.sock)) >= 100:
            raise BenchError(f"socket path too long: {self.sock}")
        argv = [
            "dockerd", "--storage-driver=vfs", "--iptables=false", "--ip6tables=false",
            "--bridge=none", "--data-root", self.dir / "data", "--exec-root", self.dir / "exec",
            "--pidfile", self.dir / "d.pid", "-H", f"unix://{self.sock}",
        ]
        self.proc = Proc("dockerd", argv, CPU_UPSTREAM, logdir)
        deadline = time.time() + 60
        while True:
            if not self.proc.alive():
                raise BenchError(f"dockerd exited:\n{self.proc.log_tail()}")
            if self.sock.exists():
                try:
                    res = benchload("get", "--target", f"unix:{self.sock}", "--path", "/_ping", timeout=10)
                    if res["status"] == 200:
                        break
                except BenchError:
                    pass
            if time.time() > deadline:
                raise BenchError(f"dockerd did not come up:\n{self.proc.log_tail()}")
            time.sleep(0.2)
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}")

    def docker(self, *args, timeout=600):
        cmd = ["docker"] + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise BenchError(f"{' '.join(cmd)}: {r.stderr.strip()[-500:]}")
        return r.stdout.strip()

    def stop(self):
        self.proc.stop(grace=30)
        shutil.rmtree(self.dir, ignore_errors=True)


def busybox_rootfs(path, extra=None):
    """A rootfs tar: /bin/busybox, its applet links, and optionally one big
    file of `extra` bytes at /big."""
    bb = shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(path, "w") as t:
        for d in ["bin", "tmp", "etc"]:
            ti = tarfile.TarInfo(d)
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755 if d != "tmp" else 0o1777
            t.addfile(ti)
        t.add(bb, arcname="bin/busybox")
        for a in applets:
            if a == "busybox":
                continue
            ti = tarfile.TarInfo(f"bin/{a}")
            ti.type = tarfile.SYMTYPE
            ti.linkname = "busybox"
            t.addfile(ti)
        if extra:
            ti = tarfile.TarInfo("big")
            ti.size = extra
            ti.mode = 0o644
            t.addfile(ti, _Pattern(extra))


class _Pattern:
    """A file-like object of n pattern bytes (not all zeros, nothing random)."""

    def __init__(self, n):
        self.left = n
        self.block = bytes(range(256)) * 4096

    def read(self, size=-1):
        if size < 0 or size > self.left:
            size = self.left
        size = min(size, len(self.block))
        self.left -= size
        return self.block[:size]


def start_dockerd(rundir):
    """A private daemon with the test image dmbench/busybox imported."""
    log("dockerd: starting a private daemon")
    d = Dockerd(rundir)
    try:
        busybox_rootfs(d.dir / "rootfs.tar")
        d.docker("import", "-c", "ENV PATH=/bin", d.dir / "rootfs.tar", "dmbench/busybox")
    except BaseException:
        d.stop()
        raise
    return d


def phase_dockerd(cfg, names, runs, rundir, d):
    systems = []
    try:
        work = d.dir
        # A container that holds a big file, for docker export.
        big = work / "big"
        with open(big, "wb") as f:
            src = _Pattern(cfg.export_bytes)
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                f.write(b)
        cid = d.docker("create", "--name", "dmbench-export", "--network", "none",
                       "dmbench/busybox", "true")
        d.docker("cp", big, "dmbench-export:/big")
        big.unlink()
        # An image tar for docker load.
        busybox_rootfs(work / "load-rootfs.tar", extra=cfg.load_bytes)
        d.docker("import", "-c", "ENV PATH=/bin", work / "load-rootfs.tar", "dmbench/load")
        (work / "load-rootfs.tar").unlink()
        d.docker("save", "-o", work / "load.tar", "dmbench/load")
        load_tar = work / "load.tar"
        tar_size = load_tar.stat().st_size
        log(f"dockerd: export container {cid[:12]}, image tar {human_bytes(tar_size)}")

        for name in names:
            s = System(name, d.sock, rundir)
            try:
                s.start()
                systems.append(s)
            except BenchError as e:
                record_error(f"start {name} in front of dockerd", e)
                s.stop()

        direct = f"unix:{d.sock}"
        # The export's exact size, learnt once directly; every system must match it.
        first = benchload("get", "--target", direct, "--path", f"/containers/{cid}/export")
        export_size = first["bytes"]
        # One untimed load so every timed one finds the layer already there.
        benchload("post", "--target", direct, "--path", "/images/load?quiet=1",
                  "--file", load_tar, "--content-type", "application/x-tar")

        f_rps = fig("d_ps_rps", "dockerd /containers/json c=1 keep-alive: req/s", "req/s", "higher")
        f_p50 = fig("d_ps_p50", "dockerd /containers/json c=1 keep-alive: p50", "µs", "lower")
        f_exp = fig("d_export", f"dockerd export {human_bytes(export_size)}", "MiB/s", "higher")
        f_expc = fig("d_export_cpu", "dockerd export: proxy CPU", "s/GiB", "lower")
        f_load = fig("d_load", f"dockerd load {human_bytes(tar_size)}", "MiB/s", "higher")
        f_loadc = fig("d_load_cpu", "dockerd load: proxy CPU", "s/GiB", "lower")
        for r in range(runs):
            for s in rotate(systems, r):
                try:
                    res = benchload("rate", *s.load_args(), "--path", "/containers/json",
                                    "--conns", 1, "--duration", cfg.duration, "--warmup", cfg.warmup)
                    if res["requests"] == 0 or res["errors"]:
                        raise BenchError(f"containers/json: {res}")
                    f_rps.add(s.name, res["rps"])
                    f_p50.add(s.name, res["p50_us"])

                    s.quiesce()
                    c0 = s.cpu()
                    res = benchload("get", *s.load_args(), "--path", f"/containers/{cid}/export",
                                    "--expect", export_size)
                    s.quiesce()
                    c1 = s.cpu()
                    f_exp.add(s.name, res["mib_s"])
                    if c0 is not None:
                        f_expc.add(s.name, (c1 - c0) / (export_size / GiB))

                    c0 = s.cpu()
                    res = benchload("post", *s.load_args(), "--path", "/images/load?quiet=1",
                                    "--file", load_tar, "--content-type", "application/x-tar")
                    s.quiesce()
                    c1 = s.cpu()
                    if res["bytes"] != tar_size or "Loaded image" not in res["reply"]:
                        raise BenchError(f"docker load: sent {res['bytes']} of {tar_size}: {res['reply'][-300:]}")
                    f_load.add(s.name, res["mib_s"])
                    if c0 is not None:
                        f_loadc.add(s.name, (c1 - c0) / (tar_size / GiB))
                    s.check_alive()
                except BenchError as e:
                    record_error(f"{s.name} dockerd run {r + 1}", e)
    finally:
        for s in systems:
            s.stop()


# ------------------------------------------------------------------ UI


def ui_config(rundir):
    """dockermand's config for the UI rows: one user (admin, the password
    made up per run) for the browser, and TOKEN (admin) for the harness's
    own requests (readiness, status). Returns (config path, user, password
    file)."""
    password = secrets.token_hex(16)
    r = subprocess.run([str(DOCKERMAND), "--hash-password"], input=password + "\n",
                       capture_output=True, text=True)
    hashed = r.stdout.strip()
    if r.returncode != 0 or not hashed:
        raise BenchError(f"dockermand --hash-password: {r.stderr.strip()}")
    conf = Path(rundir) / "ui.json"
    conf.write_text(json.dumps({"auth": {
        "users": [{"name": UI_USER, "password": hashed, "role": "admin"}],
        "tokens": [{"name": "bench", "sha256": token_sha256(), "role": "admin"}],
    }}, indent=1) + "\n")
    pw_file = Path(rundir) / "ui-password"
    pw_file.write_text(password + "\n")
    os.chmod(pw_file, 0o600)
    return conf, UI_USER, pw_file


def http_get(system, path, headers=()):
    """One GET on a fresh connection: (status, {header: value}, body)."""
    extra = "".join(f"{h}\r\n" for h in list(system.headers) + list(headers))
    with socket.create_connection(("127.0.0.1", system.port), timeout=10) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n".encode())
        data = b""
        while chunk := c.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), hdrs, body


def ui_assets(system):
    """The UI's files: the page and the hashed script and stylesheet it names."""
    status, _, page = http_get(system, UI_PAGE)
    if status != 200:
        raise BenchError(f"GET {UI_PAGE}: {status} (was dockermand built without the ui feature?)")
    names = re.findall(rb'(?:src|href)="(app\.[0-9a-f]+\.(?:js|css))"', page)
    if len(names) != 2:
        raise BenchError(f"GET {UI_PAGE}: expected app.HASH.js and app.HASH.css, found {names}")
    return [UI_PAGE] + [UI_PAGE + n.decode() for n in names]


def asset_load(system, assets, requests, conns):
    """`requests` GETs of the UI's files, gzip'd and not, over `conns`
    keep-alive connections in all: one benchload per (file, encoding), run
    side by side, each stopping after its share. Every reply must be a
    200 with the right length (benchload checks it)."""
    kinds = [(a, enc) for a in assets for enc in ("gzip", "identity")]
    procs = []
    for i, (path, enc) in enumerate(kinds):
        n = requests // len(kinds) + (1 if i < requests % len(kinds) else 0)
        c = max(1, conns // len(kinds) + (1 if i < conns % len(kinds) else 0))
        args = [LOAD, "rate", "--target", system.target, "--path", path, "--conns", c,
                "--requests", n, "--duration", 120, "--warmup", 0]
        if enc == "gzip":
            args += ["--header", "Accept-Encoding: gzip"]
        procs.append((path, enc, n, subprocess.Popen(
            [str(x) for x in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=affinity(CPU_LOAD))))
    done = 0
    for path, enc, n, p in procs:
        out, err = p.communicate(timeout=180)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if p.returncode != 0 or not lines:
            raise BenchError(f"benchload {path} ({enc}): exit {p.returncode}: {err.strip()[-300:]}")
        res = json.loads(lines[-1])
        if res["total_requests"] != n or res["errors"]:
            raise BenchError(f"{path} ({enc}): {res['total_requests']} of {n} requests, "
                             f"{res['errors']} errors ({res['last_error']})")
        done += res["total_requests"]
    system.check_alive()
    return done


def phase_ui_memory(cfg, sock, rundir, conf, runs):
    """dockermand's RSS before and after the UI's files are fetched many
    times (gzip'd and inflated), on a fresh process each run; then its
    status: no buffer may stay in use once the clients are gone."""
    n = cfg.ui_requests
    f_grow = fig("ui_rss_growth", f"UI: RSS growth after {n} asset requests", "KiB", "lower", kind="kib",
                 note=f"VmRSS after − before {n} GETs of the page, script and stylesheet, gzip'd "
                      f"and not, {cfg.ui_conns} keep-alive connections; before = after a warm-up "
                      f"of {UI_WARMUP_REQUESTS} such requests on a fresh process")
    f_after = fig("ui_rss_after", f"UI: RSS after {n} asset requests", "KiB", "lower", kind="kib")
    f_bufs = fig("ui_buffers_idle", "UI: buffers in use after, idle", "buffers", "lower",
                 note="/_dockermand/status buffers_in_use once every client has gone")
    f_loop = fig("ui_loop_longest", "UI: longest loop iteration serving assets", "µs", "lower",
                 note="/_dockermand/status loop.longest_iteration_us of that process (start included)")
    for r in range(runs):
        s = System(BASE, sock, rundir, config=conf)
        try:
            s.start()
            assets = ui_assets(s)
            # Warm-up, the same load: the pool of 32 KiB buffers grows to
            # what this concurrency needs (the pool is the fixed memory; a
            # measured load that reaches a higher peak still adds a buffer,
            # which a shorter warm-up often leaves to happen later).
            asset_load(s, assets, UI_WARMUP_REQUESTS, cfg.ui_conns)
            time.sleep(cfg.settle)
            before, _ = tree_mem(s.pid)
            asset_load(s, assets, n, cfg.ui_conns)
            time.sleep(cfg.settle)
            after = max(x[0] for x in sample_mem(s.pid, cfg.mem_samples))
            # The load tool's connections are closed; wait until the gateway has seen it.
            deadline = time.time() + 5
            while True:
                status, _, body = http_get(s, "/_dockermand/status")
                if status != 200:
                    raise BenchError(f"/_dockermand/status: {status} {body[:200]!r}")
                st = json.loads(body)
                if st["buffers_in_use"] == 0 or time.time() > deadline:
                    break
                time.sleep(0.1)
            f_grow.add(BASE, after - before)
            f_after.add(BASE, after)
            f_bufs.add(BASE, st["buffers_in_use"])
            f_loop.add(BASE, st["loop"]["longest_iteration_us"])
            log(f"UI memory run {r + 1}: RSS {before} → {after} KiB, buffers in use "
                f"{st['buffers_in_use']}, longest loop iteration {st['loop']['longest_iteration_us']} µs")
        except (BenchError, OSError, ValueError, KeyError) as e:
            record_error(f"UI memory run {r + 1}", e)
        finally:
            s.stop()


def ui_containers(d, n):
    """n containers (created, not started) for the list, named dmbench-ui-NN."""
    from concurrent.futures import ThreadPoolExecutor

    names = [f"dmbench-ui-{i:02d}" for i in range(1, n + 1)]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda name: d.docker("create", "--name", name, "--network", "none",
                                            "--label", "dmbench=ui", "dmbench/busybox", "sleep", "3600"),
                      names))
    return names


def phase_ui_browser(cfg, upstream_sock, rundir, conf, user, pw_file, search, where, out_dir):
    """The containers list in Debian's chromium with a 4× slower CPU: ui.py
    does the browsing and prints a JSON line per visit."""
    visits = {"first": "first visit, no cache", "repeat": "repeat visit, cache"}
    throttle = f"{UI_THROTTLE:g}x CPU"
    rows = {}
    for v, what in visits.items():
        rows[v] = {
            "interactive": fig(f"ui_interactive_{v}", f"UI: container list interactive, {throttle}, {what}",
                               "ms", "lower"),
            "rows": fig(f"ui_rows_{v}", f"UI: container list rendered, {throttle}, {what}", "ms", "lower"),
            "fcp": fig(f"ui_fcp_{v}", f"UI: first contentful paint, {throttle}, {what}", "ms", "lower"),
            "bytes": fig(f"ui_bytes_{v}", f"UI: bytes transferred for the UI's files, {what}", "KiB", "lower",
                         kind="kib", note="Navigation and Resource Timing transferSize (headers included) "
                                          "of the page, script and stylesheet"),
            "longtasks": fig(f"ui_longtasks_{v}", f"UI: long tasks until interactive, {throttle}, {what}",
                             "tasks", "lower", note="PerformanceObserver 'longtask' (> 50 ms)"),
        }
    s = System(BASE, upstream_sock, rundir, config=conf)
    try:
        s.start()
        cmd = [UI_PYTHON, UI_PY, "--origin", f"http://127.0.0.1:{s.port}", "--user", user,
               "--password-file", pw_file, "--search", search, "--runs", cfg.runs,
               "--throttle", UI_THROTTLE, "--shots", out_dir]
        try:
            r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                               timeout=120 + 60 * cfg.runs, stdin=subprocess.DEVNULL,
                               preexec_fn=affinity(CPU_BROWSER))
        except subprocess.TimeoutExpired:
            raise BenchError("ui.py timed out")
        for line in r.stderr.splitlines():
            if line.startswith("[ui.py"):
                log(line)
        results = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
        if r.returncode != 0 or len(results) != 2 * cfg.runs:
            raise BenchError(f"ui.py: exit {r.returncode}, {len(results)} visits: {r.stderr.strip()[-800:]}")
        s.check_alive()
        for v in visits:
            rows[v]["interactive"].note = (
                f"navigation start → rows filtered after typing a name in the search field; "
                f"{where}, {results[0]['containers']} containers; performance.now() in the page")
        for m in results:
            f = rows[m["visit"]]
            f["interactive"].add(BASE, m["interactive_ms"])
            f["rows"].add(BASE, m["rows_ms"])
            f["fcp"].add(BASE, m["fcp_ms"])
            f["bytes"].add(BASE, m["transfer_bytes"] / KiB)
            f["longtasks"].add(BASE, m["longtasks"])
            det = f["interactive"].details = getattr(f["interactive"], "details", None) or {}
            det.setdefault(BASE, []).append({k: m[k] for k in (
                "run", "containers", "shown", "throttle", "throttle_seen", "encoded_bytes", "decoded_bytes",
                "longtask_ms", "rows_ms", "files", "api")})
            # The throttle must have been applied: the same script work took longer.
            if UI_THROTTLE >= 2 and m["throttle_seen"] is not None and m["throttle_seen"] < 1.5:
                raise BenchError(f"the CPU throttle did not take: a fixed loop ran ×{m['throttle_seen']:.2f} "
                                 f"as long as unthrottled")
    finally:
        s.stop()


def phase_ui(cfg, standin_sock, rundir, d, out_dir):
    """The UI rows: memory on the stand-in (the files never reach the
    upstream), then the browser against the real dockerd with
    UI_CONTAINERS containers, or, without dockerd, against the stand-in
    (its two containers)."""
    log("phase: UI")
    conf, user, pw_file = ui_config(rundir)
    phase_ui_memory(cfg, standin_sock, rundir, conf, cfg.runs)
    if d is not None:
        ui_containers(d, UI_CONTAINERS)
        where = "real dockerd"
        upstream, search = d.sock, f"dmbench-ui-{UI_CONTAINERS // 2:02d}"
    else:
        where = "stand-in"
        upstream, search = standin_sock, "bench-db"
        note("UI: the browser rows ran against the stand-in (2 containers): no real dockerd")
    phase_ui_browser(cfg, upstream, rundir, conf, user, pw_file, search, where, out_dir)


# ------------------------------------------------------------------ report


def human_bytes(n):
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def fmt(f, v):
    if v is None:
        return "—"
    if f.kind == "kib":
        if v >= 10 * 1024 * 1024:
            return f"{v / 1024 / 1024:.1f}G"
        if v >= 10 * 1024:
            return f"{v / 1024:.1f}M"
        return f"{v:.0f}K" if v >= 100 else f"{v:.1f}K"
    if f.unit == "req/s":
        return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"
    if f.unit == "s/GiB":
        return f"{v:.3f}"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r):
    if r >= 100:
        return f"{r:.0f}"
    if r >= 10:
        return f"{r:.1f}"
    if r >= 0.01:
        return f"{r:.2f}"
    return f"{r:.3f}"


def table(names, runs):
    def row_label(f):
        return f.label if f.kind == "kib" else f"{f.label} ({f.unit})"

    # Only the systems with a value somewhere (--tls-only has three).
    names = [n for n in names if any(FIGS[i].stats(n) for i in ORDER)] or names

    label_w = max(len(row_label(FIGS[i])) for i in ORDER) + 1
    col_w = max(16, max(len(n) for n in names) + 1)
    lines = []
    header = "figure".ljust(label_w) + "".join(n.rjust(col_w) for n in names)
    lines.append(header)
    lines.append("-" * len(header))
    for fid in ORDER:
        f = FIGS[fid]
        if not f.values:
            continue
        l1 = row_label(f).ljust(label_w)
        l2 = "".ljust(label_w)
        for n in names:
            st = f.stats(n)
            if not st:
                l1 += "—".rjust(col_w)
                l2 += "".rjust(col_w)
                continue
            ratio = f.ratio(n)
            rs = f" ×{fmt_ratio(ratio)}" if ratio is not None else ""
            l1 += (fmt(f, st["median"]) + rs).rjust(col_w)
            if len(st["runs"]) > 1:
                l2 += f"{fmt(f, st['min'])}–{fmt(f, st['max'])}".rjust(col_w)
            else:
                l2 += "".rjust(col_w)
        lines.append(l1)
        if l2.strip():
            lines.append(l2)
    return "\n".join(lines)


def med(fid, system):
    f = FIGS.get(fid)
    st = f.stats(system) if f else None
    return st["median"] if st else None


def better_peer(fid):
    """(system, median) of the better of nginx and HAProxy on a figure: the
    lower value when lower is better (CPU), the higher otherwise (req/s)."""
    f = FIGS.get(fid)
    got = [(p, med(fid, p)) for p in PEERS]
    got = [(p, v) for p, v in got if v is not None]
    if not f or not got:
        return None, None
    pick = min if f.better == "lower" else max
    return pick(got, key=lambda pv: pv[1])


def goals(cfg):
    out = []
    # The part of the run a goal belongs to ("plain" or "tls"); goals of a
    # part that did not run are left out.
    part = ["plain"]

    def goal(text, value, op, target, fmt_s="{:.3f}"):
        if value is None:
            out.append({"goal": text, "value": None, "target": f"{op} {target}", "met": None,
                        "part": part[0]})
            return
        met = value >= target if op == ">=" else value <= target
        out.append({"goal": text, "value": value, "target": f"{op} {target}", "met": met,
                    "shown": fmt_s.format(value), "part": part[0]})

    def ratio(a_fid, a_sys, b_fid, b_sys):
        a, b = med(a_fid, a_sys), med(b_fid, b_sys)
        if a is None or not b:
            return None
        return a / b

    def vs_peers(text, fid, op, target):
        """dockermand / the better of nginx and HAProxy on one figure."""
        peer, v = better_peer(fid)
        a = med(fid, BASE)
        value = a / v if a is not None and v else None
        goal(f"{text} (better peer: {peer or '—'})", value, op, target)

    transfers = (("dl", "download CL"), ("dlc", "download chunked"),
                 ("ul", "upload CL"), ("ulc", "upload chunked"))
    dockerd = (("d_export", "docker export"), ("d_load", "docker load"))

    for kid, what in transfers:
        goal(f"throughput dockermand/direct, {what}", ratio(f"{kid}_mibs", BASE, f"{kid}_mibs", "direct"),
             ">=", 0.95)
    for fid, what in dockerd:
        goal(f"throughput dockermand/direct, real dockerd, {what}", ratio(fid, BASE, fid, "direct"),
             ">=", 0.95)
    # The bare splice relay is the ceiling of any userspace relay here.
    for kid, what in transfers:
        goal(f"throughput dockermand/splicerelay, {what}",
             ratio(f"{kid}_mibs", BASE, f"{kid}_mibs", "splicerelay"), ">=", 0.9)
    for fid, what in dockerd:
        goal(f"throughput dockermand/splicerelay, real dockerd, {what}",
             ratio(fid, BASE, fid, "splicerelay"), ">=", 0.9)
    # Splicing must cost less CPU than copying, and well under the peers.
    cpu_figs = [(f"{kid}_cpu", what) for kid, what in transfers] + \
               [(f"{fid}_cpu", f"real dockerd, {what}") for fid, what in dockerd]
    for fid, what in cpu_figs:
        goal(f"CPU per GiB dockermand/dockermand-copy (splice vs copy), {what}",
             ratio(fid, BASE, fid, "dockermand-copy"), "<=", 1.0)
    for fid, what in cpu_figs:
        vs_peers(f"CPU per GiB dockermand/better of nginx and HAProxy, {what}", fid, "<=", 0.8)
    for c in (16, 128):
        vs_peers(f"proxy CPU/req dockermand/better of nginx and HAProxy, c={c} keep-alive",
                 f"ping_c{c}_ka_cpu", "<=", 0.9)
    goal("proxy CPU/req dockermand-policy/dockermand (operator token), c=16 keep-alive",
         ratio("ping_c16_ka_cpu", "dockermand-policy", "ping_c16_ka_cpu", BASE), "<=", 1.1)
    vs_peers("req/s dockermand/better of nginx and HAProxy, c=16 keep-alive", "ping_c16_ka_rps", ">=", 1.1)
    goal("req/s dockermand/nginx, c=16 no keep-alive",
         ratio("ping_c16_close_rps", BASE, "ping_c16_close_rps", "nginx"), ">=", 1.0)
    # Against HAProxy alone where no goal above judges the figure.
    for c in cfg.concurrency:
        for close, mode in ((False, "keep-alive"), (True, "no keep-alive")):
            if c == 16:
                continue
            tag = f"ping_c{c}_{'close' if close else 'ka'}"
            goal(f"req/s dockermand/haproxy, c={c} {mode}", ratio(f"{tag}_rps", BASE, f"{tag}_rps", "haproxy"),
                 ">=", 1.0)
    goal("syscalls per small request (/_ping c=16 keep-alive)", med("sys_req", BASE), "<=", 4.5, "{:.2f}")
    for tag, where in (("ping_c1_ka_1core", "all on one core"),
                       ("ping_c1_ka", "proxy on its own core")):
        a, b = med(f"{tag}_p50", BASE), med(f"{tag}_p50", "direct")
        goal(f"added p50 latency [µs] (dockermand − direct, c=1 keep-alive, {where})",
             None if a is None or b is None else a - b, "<=", 30, "{:.1f}")
    goal("RSS idle [KiB]", med("rss_idle", BASE), "<=", 1024, "{:.0f}")
    goal(f"RSS idle, static musl {MUSL_ARCH} [KiB]", med("rss_idle_musl", BASE), "<=", 1024, "{:.0f}")
    goal("RSS per active stream [KiB]", med("rss_per_stream", BASE), "<=", 70, "{:.1f}")
    goal(f"RSS with {cfg.idle_clients} idle clients [KiB]", med("rss_idle_clients", BASE), "<=",
         8 * 1024, "{:.0f}")
    # TLS: dockermand built with TLS against nginx and HAProxy terminating TLS.
    part[0] = "tls"
    for kid, what in (("tls_dl", "download CL"), ("tls_ul", "upload CL")):
        vs_peers(f"TLS CPU per GiB dockermand/better of nginx and HAProxy, {what}", f"{kid}_cpu", "<=", 1.1)
    vs_peers("TLS req/s dockermand/better of nginx and HAProxy, c=16 keep-alive", "tls_ping_c16_ka_rps",
             ">=", 1.0)
    # The web UI (issue: interactive within 1.5 s at 4x CPU; no per-request heap).
    part[0] = "ui"
    for v, what in (("first", "first visit"), ("repeat", "repeat visit")):
        goal(f"UI: container list interactive, {UI_THROTTLE:g}x CPU, {what} [ms]",
             med(f"ui_interactive_{v}", BASE), "<=", 1500, "{:.0f}")
    goal(f"UI: RSS growth after {cfg.ui_requests} asset requests [KiB]", med("ui_rss_growth", BASE),
         "<=", UI_RSS_GROWTH_GOAL, "{:.0f}")
    goal("UI: buffers in use once idle", med("ui_buffers_idle", BASE), "<=", 0, "{:.0f}")
    return [g for g in out if g["part"] in cfg.parts]


def legend():
    return f"""\
direct           the load tool on the upstream's unix socket, no proxy. No value in the
                 wrk rows (wrk has no unix sockets) nor in the CPU, memory, syscall and
                 size rows (there is no proxy process).
dockermand-copy  dockermand --no-splice (copies through user-space buffers).
dockermand-policy dockermand with a config holding one Bearer token of role operator;
                 every request carries it (Authorization: Bearer ...).
splicerelay      a bare TCP→unix splice(2) relay, no HTTP: the ceiling of any userspace
                 relay on this machine (its goals compare transfers only).
layout           proxy pinned to CPU {CPU_PROXY}, load tool to CPU {CPU_LOAD}, upstream to CPU {CPU_UPSTREAM};
                 "one core" rows move the proxy onto CPU {CPU_LOAD} too, so no request crosses CPUs.
req/s, p50, p99  closed loop: each connection sends its next request when the reply is
                 complete. "no keep-alive": Connection: close, a new connection per
                 request, and the latency includes the connect.
proxy CPU        user+sys of the proxy's process tree during the measurement (live tasks'
                 schedstat + reaped children's cutime/cstime: nginx workers, socat forks).
RSS, PSS         summed over the process tree (nginx master+worker, socat and all its
                 forks) while the clients are held.
TLS rows         dockermand built with --features tls (tls:// listener), nginx (listen ssl)
                 and HAProxy (bind ssl crt), each terminating TLS with the run's ECDSA
                 P-256 certificate; every connection negotiates {TLS_SUITE}
                 (checked), a full handshake (no resumption). "no keep-alive": one
                 handshake per request.
UI rows          dockermand column: Debian's chromium (Playwright, CDP CPU throttling) on the
                 containers list, and dockermand's RSS and status around many GETs of the
                 UI's files; see tests/bench/README.md.
ratio            ×N = this system's median / dockermand's median."""


def goals_text(gs):
    lines = ["goals (dockermand; medians):"]
    for g in gs:
        state = {True: "met", False: "NOT met", None: "not measured"}[g["met"]]
        shown = g.get("shown", "—")
        lines.append(f"  [{state:>12}] {g['goal']}: {shown} (goal {g['target']})")
    return "\n".join(lines)


def versions():
    def first_line(cmd):
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None

    return {
        "dockermand": first_line([str(DOCKERMAND), "--version"]),
        "dockermand_tls": first_line([str(DOCKERMAND_TLS), "--version"]),
        "rustls": rustls_version(),
        "openssl": first_line(["openssl", "version"]),
        "socat": first_line(["socat", "-V"]) and next(
            (l for l in subprocess.run(["socat", "-V"], capture_output=True, text=True).stdout.splitlines()
             if "socat version" in l), None),
        "nginx": first_line(["nginx", "-v"]),
        "haproxy": first_line(["haproxy", "-v"]),
        "wrk": first_line(["wrk", "--version"]),
        "dockerd": first_line(["dockerd", "--version"]),
        "chromium": _chromium_version(),
        "playwright": first_line([UI_PYTHON, "-c",
                                  "import importlib.metadata as m; print(m.version('playwright'))"]),
    }


def _chromium_version():
    try:
        r = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=10)
        return next((l.strip() for l in r.stdout.splitlines() if "Chromium" in l), None)
    except (OSError, subprocess.TimeoutExpired):
        return None


def rustls_version():
    """rustls's version in dockermand's Cargo.lock."""
    try:
        m = re.search(r'name = "rustls"\nversion = "([^"]+)"', (ROOT / "Cargo.lock").read_text())
        return m.group(1) if m else None
    except OSError:
        return None


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("+dirty-src" if dirty else "")
    except OSError:
        return None


# ------------------------------------------------------------------ main


def run_plain(cfg, a, names, sock, rundir, use_wrk, dm_status):
    """Every row but the TLS and the real-dockerd ones, on the stand-in."""
    # Memory first, each on a fresh process.
    log("phase: memory")
    phase_rss([System(n, sock, rundir) for n in names], cfg, cfg.runs)
    if a.no_musl:
        note("RSS idle, static musl: skipped (--no-musl)")
    else:
        try:
            musl = prepare_musl(cfg, rundir)
            if musl:
                phase_rss_musl(musl, sock, cfg, cfg.runs, rundir)
        except BenchError as e:
            record_error("static musl build", e)

    systems = []
    for n in names:
        s = System(n, sock, rundir)
        try:
            s.start()
            systems.append(s)
        except BenchError as e:
            record_error(f"start {n}", e)
            s.stop()

    log("phase: small requests")
    for c in cfg.concurrency:
        for close in (False, True):
            tag = f"ping_c{c}_{'close' if close else 'ka'}"
            phase_rate(systems, cfg, "/_ping", c, close, tag, "/_ping", cfg.runs)
    phase_rate(systems, cfg, "/_ping", 1, False, "ping_c1_ka_1core", "/_ping", cfg.runs,
               one_core=True)
    phase_rate(systems, cfg, "/containers/json", 16, False, "json_c16_ka",
               "/containers/json (1 KiB)", cfg.runs)
    if use_wrk:
        log("phase: wrk cross-check")
        for c in cfg.wrk_conns:
            phase_wrk(systems, cfg, c, cfg.runs)

    log("phase: transfers")
    phase_transfer(systems, cfg, cfg.runs)

    if shutil.which("strace") and not a.no_strace:
        log("phase: syscall counts")
        phase_syscalls(systems, cfg, rundir)

    for s in systems:
        if s.name.startswith("dockermand"):
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=2) as c:
                    extra = "".join(f"{h}\r\n" for h in s.headers)
                    c.sendall(f"GET /_dockermand/status HTTP/1.1\r\nHost: localhost\r\n{extra}"
                              "Connection: close\r\n\r\n".encode())
                    data = b""
                    while chunk := c.recv(65536):
                        data += chunk
                dm_status[s.name] = json.loads(data.split(b"\r\n\r\n", 1)[1])
            except (OSError, ValueError) as e:
                record_error(f"{s.name} status", e)
    for s in systems:
        s.stop()

    phase_sizes(names)


class Cfg:
    pass


def main():
    global DOCKERMAND, DOCKERMAND_TLS
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one run (CI)")
    ap.add_argument("--runs", type=int, help="repetitions of every measurement (full: 5)")
    ap.add_argument("--systems", help=f"comma-separated subset of {','.join(ALL_SYSTEMS)}")
    ap.add_argument("--no-dockerd", action="store_true", help="skip the real-dockerd figures")
    ap.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    ap.add_argument("--no-strace", action="store_true", help="skip the syscall counts")
    ap.add_argument("--no-musl", action="store_true",
                    help="skip the idle RSS of the static musl build (full runs build it)")
    ap.add_argument("--no-tls", action="store_true", help="skip the TLS rows")
    ap.add_argument("--tls-only", action="store_true",
                    help="only the TLS rows (dockermand, nginx and HAProxy terminating TLS)")
    ap.add_argument("--no-ui", action="store_true", help="skip the web UI rows")
    ap.add_argument("--ui-only", action="store_true",
                    help="only the web UI rows (browser speed, memory serving the UI's files)")
    ap.add_argument("--out-dir", default=str(ROOT / "target" / "bench"))
    a = ap.parse_args()
    if a.tls_only and a.no_tls:
        ap.error("--tls-only and --no-tls exclude each other")
    if a.ui_only and (a.no_ui or a.tls_only):
        ap.error("--ui-only excludes --no-ui and --tls-only")
    if a.ui_only:
        a.no_tls = True

    cfg = Cfg()
    cfg.quick = a.quick
    use_ui = not a.no_ui and not a.tls_only
    cfg.parts = (({"tls"} if a.tls_only else set() if a.ui_only else {"plain"})
                 | (set() if a.no_tls else {"tls"}) | ({"ui"} if use_ui else set()))
    cfg.runs = a.runs or (1 if a.quick else 5)
    cfg.concurrency = [1, 16, 128]
    if a.quick:
        cfg.duration, cfg.warmup = 0.15, 0.05
        cfg.transfer_bytes = 64 * MiB
        cfg.idle_clients, cfg.streams = 1000, 100
        cfg.export_bytes, cfg.load_bytes = 16 * MiB, 16 * MiB
        # wrk only on dockermand, to keep the wrk path from rotting.
        cfg.wrk_secs, cfg.wrk_conns, cfg.wrk_systems = 1, [16], [BASE]
        cfg.settle, cfg.stream_wait, cfg.mem_samples = 0.1, 0.2, 1
        cfg.strace_secs, cfg.strace_bytes, cfg.strace_systems = 0.3, 16 * MiB, [BASE]
        # Every TLS system, but a few seconds in all.
        cfg.tls_bytes, cfg.tls_clients = 16 * MiB, 64
        cfg.ui_requests, cfg.ui_conns = 1000, 16
    else:
        cfg.duration, cfg.warmup = 1.2, 0.2
        cfg.transfer_bytes = 1 * GiB
        cfg.idle_clients, cfg.streams = 1000, 100
        cfg.export_bytes, cfg.load_bytes = 512 * MiB, 256 * MiB
        cfg.wrk_secs, cfg.wrk_conns, cfg.wrk_systems = 1, [16, 128], None
        cfg.settle, cfg.stream_wait, cfg.mem_samples = 0.3, 1.2, 3
        cfg.strace_secs, cfg.strace_bytes, cfg.strace_systems = 1.0, 256 * MiB, None
        cfg.tls_bytes, cfg.tls_clients = 1 * GiB, 1000
        cfg.ui_requests, cfg.ui_conns = 2000, 16
    names = a.systems.split(",") if a.systems else list(ALL_SYSTEMS)
    for n in names:
        if n not in ALL_SYSTEMS:
            ap.error(f"unknown system {n}")
    if BASE not in names:
        ap.error("the dockermand column is needed for the ratios")
    use_tls = not a.no_tls
    tools = [STANDIN, LOAD]
    if not a.tls_only:
        tools += [DOCKERMAND] + ([RELAY] if "splicerelay" in names and not a.ui_only else [])
    if use_ui:
        tools.append(UI_PY)
        if not Path(UI_PYTHON).exists() or subprocess.run(
                [UI_PYTHON, "-c", "import playwright"], capture_output=True).returncode != 0:
            sys.exit(f"bench: {UI_PYTHON} has no playwright; run tests/bench/run.sh (or pass --no-ui)")
        if not os.access("/usr/bin/chromium", os.X_OK):
            sys.exit("bench: /usr/bin/chromium is missing; run tests/bench/run.sh (or pass --no-ui)")
    if use_tls:
        tools.append(DOCKERMAND_TLS)
        if not shutil.which("openssl"):
            sys.exit("bench: openssl is not installed; run tests/bench/run.sh")
    for tool in tools:
        if not tool.exists():
            sys.exit(f"bench: {tool} is missing; run tests/bench/run.sh")
    need = {"socat": "socat", "nginx": "nginx", "haproxy": "haproxy"}
    for n in names:
        if n in need and not shutil.which(need[n]):
            sys.exit(f"bench: {need[n]} is not installed; run tests/bench/run.sh")
    use_wrk = not a.no_wrk and shutil.which("wrk") is not None
    use_dockerd = not a.no_dockerd and not a.tls_only
    # --ui-only: the daemon serves the UI rows alone.
    dockerd_rows = use_dockerd and not a.ui_only
    if use_dockerd and not (shutil.which("dockerd") and shutil.which("docker") and os.geteuid() == 0):
        log("dockerd, docker or root missing: skipping the dockerd figures")
        use_dockerd = False

    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rundir = Path(tempfile.mkdtemp(prefix="dmbench."))
    os.chmod(rundir, 0o755)
    # Run private copies: the shared target dir may be rebuilt meanwhile.
    binary_size = binary_sha = tls_binary_size = tls_binary_sha = None
    if DOCKERMAND.exists():
        binary_size = DOCKERMAND.stat().st_size
        copy = rundir / "dockermand"
        shutil.copy2(DOCKERMAND, copy)
        DOCKERMAND = copy
        binary_sha = hashlib.sha256(copy.read_bytes()).hexdigest()[:16]
    if use_tls:
        tls_binary_size = DOCKERMAND_TLS.stat().st_size
        copy = rundir / "dockermand-tls"
        shutil.copy2(DOCKERMAND_TLS, copy)
        DOCKERMAND_TLS = copy
        tls_binary_sha = hashlib.sha256(copy.read_bytes()).hexdigest()[:16]
    started = time.time()
    load_before = open("/proc/loadavg").read().split()[:3]

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    interrupted = False
    dm_status = {}
    try:
        # The stand-in upstream, on the load tool's core.
        sock = rundir / "standin.sock"
        standin = Proc("standin", [STANDIN, "--socket", sock], CPU_UPSTREAM, rundir,
                       stdout=subprocess.PIPE)
        line = standin.p.stdout.readline().decode().strip()
        if line != "ready":
            raise BenchError(f"standin did not start: {line} {standin.log_tail()}")

        only = ", TLS rows only" if a.tls_only else ", UI rows only" if a.ui_only else ""
        log(f"mode {'quick' if a.quick else 'full'}{only}, "
            f"{cfg.runs} run(s), systems: {', '.join(names)}; "
            f"proxy on CPU {CPU_PROXY}, load tool on CPU {CPU_LOAD}, upstream on CPU {CPU_UPSTREAM}")

        if not a.tls_only and not a.ui_only:
            run_plain(cfg, a, names, sock, rundir, use_wrk, dm_status)

        if use_tls:
            log("phase: TLS")
            try:
                phase_tls(cfg, names, sock, rundir, cfg.runs,
                          shutil.which("strace") and not a.no_strace)
            except BenchError as e:
                record_error("TLS", e)

        d = None
        if use_dockerd:
            try:
                d = start_dockerd(rundir)
            except (BenchError, subprocess.SubprocessError, OSError) as e:
                record_error("dockerd", e)
        try:
            if d and dockerd_rows:
                try:
                    phase_dockerd(cfg, names, cfg.runs, rundir, d)
                except (BenchError, subprocess.SubprocessError, OSError) as e:
                    record_error("dockerd", e)
            # After the dockerd rows: its containers would change /containers/json.
            if use_ui:
                try:
                    phase_ui(cfg, sock, rundir, d, out_dir)
                except (BenchError, subprocess.SubprocessError, OSError) as e:
                    record_error("UI", e)
        finally:
            if d:
                log("dockerd: stopping")
                d.stop()
        standin.stop()
    except KeyboardInterrupt as e:
        record_error("interrupted", e)
        interrupted = True
    except BenchError as e:
        record_error("setup", e)
    except Exception as e:  # a bug in the harness: report it like a failure
        import traceback

        record_error("harness", f"{e!r}\n{traceback.format_exc()}")
    finally:
        stop_all()

    gs = goals(cfg)
    elapsed = time.time() - started
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if a.quick else "full",
        "runs": cfg.runs,
        "elapsed_s": round(elapsed, 1),
        "git": git_rev(),
        "host": {
            "kernel": platform.release(),
            "cpus": NCPU,
            "loadavg_before": load_before,
            "loadavg_after": open("/proc/loadavg").read().split()[:3],
        },
        "pinning": {"proxy": CPU_PROXY, "load": CPU_LOAD, "upstream": CPU_UPSTREAM},
        "sizes": {
            "transfer_bytes": cfg.transfer_bytes,
            "idle_clients": cfg.idle_clients,
            "streams": cfg.streams,
            "export_bytes": cfg.export_bytes if use_dockerd else None,
            "load_bytes": cfg.load_bytes if use_dockerd else None,
            "rate_duration_s": cfg.duration,
            "tls_transfer_bytes": cfg.tls_bytes if use_tls else None,
            "tls_idle_clients": cfg.tls_clients if use_tls else None,
            "tls": TLS_SUITE if use_tls else None,
            "ui_asset_requests": cfg.ui_requests if use_ui else None,
            "ui_asset_conns": cfg.ui_conns if use_ui else None,
            "ui_cpu_throttle": UI_THROTTLE if use_ui else None,
            "ui_containers": UI_CONTAINERS if use_ui and use_dockerd else None,
        },
        "versions": versions(),
        "dockermand_binary": {"size": binary_size, "sha256_16": binary_sha},
        "dockermand_tls_binary": {"size": tls_binary_size, "sha256_16": tls_binary_sha},
    }
    result = {
        "meta": meta,
        "systems": names,
        "baseline": BASE,
        "figures": [
            {
                "id": f.id,
                "label": f.label,
                "unit": f.unit,
                "better": f.better,
                "note": f.note,
                "details": getattr(f, "details", None),
                "values": {
                    n: dict(f.stats(n), ratio_to_dockermand=f.ratio(n))
                    for n in names if f.stats(n)
                },
            }
            for f in (FIGS[i] for i in ORDER)
        ],
        "goals": gs,
        "dockermand_status": dm_status,
        "notes": NOTES,
        "errors": ERRORS,
    }
    text = (
        f"dockermand benchmarks ({meta['mode']}, {cfg.runs} run(s), median ×ratio to dockermand, "
        f"min–max below; {meta['elapsed_s']} s; load average {' '.join(load_before)} before)\n\n"
        + table(names, cfg.runs) + "\n\n" + legend() + "\n\n" + goals_text(gs) + "\n"
    )
    if NOTES:
        text += "\nnotes:\n" + "\n".join("  " + n for n in NOTES) + "\n"
    if ERRORS:
        text += "\nerrors:\n" + "\n".join("  " + e for e in ERRORS) + "\n"
    print(text)
    (out_dir / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "results.txt").write_text(text)
    log(f"wrote {out_dir / 'results.json'} and results.txt")
    shutil.rmtree(rundir, ignore_errors=True)
    if ERRORS or interrupted:
        sys.exit(1)


if __name__ == "__main__":
    main()
