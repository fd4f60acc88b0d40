#!/usr/bin/env bash
# The dockermand test command: unit tests, then the end-to-end suite against a
# private dockerd.  Idempotent; meant to run as root on Debian 12.
#
#   tests/run.sh                 everything
#   tests/run.sh -k hostile      extra arguments go to pytest
#   tests/run.sh tests/e2e/test_http.py   only these tests
#
# Environment: DOCKERMAND_BIN overrides the binary under test (default
# target/release/dockermand); DOCKERMAND_SKIP_BUILD=1 skips the cargo steps.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/target/e2e-venv"

log() { printf '==> %s\n' "$*" >&2; }

# --- system packages ------------------------------------------------------------
# openssl makes the TLS tests' certificates; the browser test drives Debian's
# chromium through Playwright, which never downloads a browser of its own here.
APT_PACKAGES=(docker.io containerd runc busybox-static python3-venv openssl chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages ${missing[*]} and not root" >&2
        exit 1
    fi
    log "installing ${missing[*]}"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# --- python venv --------------------------------------------------------------------
PY=python3
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null; then
    PY=/usr/bin/python3
fi
if ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log "creating $VENV"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import pytest, docker, requests, pytest_timeout, websocket, playwright, cryptography' 2>/dev/null; then
    log "installing python test dependencies"
    "$VENV/bin/python" -m pip install --quiet pytest docker requests pytest-timeout websocket-client playwright cryptography
fi

# --- docker CLI: prefer a v28 client -----------------------------------------------------
cli=""
first=""
while IFS= read -r candidate; do
    [ -n "$first" ] || first=$candidate
    v=$(DOCKER_HOST=unix:///nonexistent/docker.sock "$candidate" version --format '{{.Client.Version}}' 2>/dev/null || true)
    if [[ "$v" == 28.* ]]; then
        cli=$candidate
        break
    fi
done < <(type -ap docker | awk '!seen[$0]++')
if [ -z "$cli" ]; then
    cli=$first
    log "warning: no docker CLI v28 on PATH; using ${cli:-none}"
fi
if [ -z "$cli" ]; then
    echo "no docker CLI on PATH" >&2
    exit 1
fi
export DOCKERMAND_TEST_DOCKER_CLI="$cli"
export PATH="$(dirname "$cli"):$PATH"
cli_version=$(DOCKER_HOST=unix:///nonexistent/docker.sock "$cli" version --format '{{.Client.Version}}' 2>/dev/null || true)
log "docker CLI: $cli (${cli_version:-unknown version})"

# --- build and unit tests ------------------------------------------------------------------
# A failed build stops here; failed unit tests still let the end-to-end suite
# run, and the script then exits non-zero.
unit_rc=0
if [ "${DOCKERMAND_SKIP_BUILD:-0}" != 1 ]; then
    # The binary under test has TLS; the plain build must build too.
    log "cargo build --release (plain, then --features tls)"
    cargo build --release
    cargo build --release --features tls
    log "cargo test --release --features tls"
    cargo test --release --features tls || unit_rc=$?
    # Lints are part of the tests: the crate denies an unsafe block
    # without its SAFETY reason, and only clippy reads that rule.
    if ! cargo clippy --version >/dev/null 2>&1; then
        log "rustup component add clippy"
        rustup component add clippy
    fi
    # The build without the web UI (`--no-default-features`) ships too.
    for features in "" "--features tls" "--no-default-features"; do
        log "cargo clippy --release --all-targets $features -- -D warnings"
        cargo clippy --release --all-targets $features -- -D warnings || unit_rc=$?
    done
fi

# --- end-to-end -------------------------------------------------------------------------------
# run the whole suite unless the arguments name test files or directories
has_path=0
for a in "$@"; do
    if [[ "$a" != -* && -e "${a%%::*}" ]]; then
        has_path=1
    fi
done
if [ "$has_path" = 0 ]; then
    set -- tests/e2e "$@"
fi
log "pytest $*"
e2e_rc=0
"$VENV/bin/python" -m pytest -q "$@" || e2e_rc=$?
if [ "$unit_rc" != 0 ]; then
    log "cargo test or clippy failed (exit $unit_rc)"
    exit "$unit_rc"
fi
exit "$e2e_rc"
