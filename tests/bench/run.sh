#!/usr/bin/env bash
# Benchmarks dockermand side by side with direct access, socat, nginx and
# HAProxy, in plain HTTP and over TLS. Installs the peers from Debian, builds
# dockermand (plain, and with --features tls) and the tools, runs bench.py.
#
#   tests/bench/run.sh            full run (5 repetitions, 1 GiB transfers, 15-20 min)
#   tests/bench/run.sh --quick    smoke run for CI (tiny sizes, one repetition)
#   tests/bench/run.sh --tls-only the TLS rows alone (full: a few minutes)
#   tests/bench/run.sh --ui-only  the web UI rows alone (Debian's chromium)
#
# Further options are passed to bench.py (--runs N, --systems a,b,
# --no-dockerd, --no-wrk, --no-tls, --no-ui, --out-dir DIR). Results: target/bench/results.{txt,json}.
# Exit status: 0 when everything ran (goals not met included), non-zero when
# something broke (a system did not start, a transfer moved the wrong bytes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

tls=1 plain=1 ui=1
for arg in "$@"; do
    case "$arg" in
    --no-tls) tls= ;;
    --tls-only) plain= ui= ;;
    --ui-only) tls= ;;
    --no-ui) ui= ;;
    esac
done

# Peers and tools from Debian, installed once.
need=()
command -v socat >/dev/null || need+=(socat)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v taskset >/dev/null || need+=(util-linux)
command -v strace >/dev/null || need+=(strace)
command -v openssl >/dev/null || need+=(openssl)
[ -x /bin/busybox ] && /bin/busybox --list >/dev/null 2>&1 || need+=(busybox-static)
# The UI rows: Debian's chromium, driven by Playwright from a venv.
if [ -n "$ui" ]; then
    [ -x /usr/bin/chromium ] || need+=(chromium)
    python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
        exit 1
    fi
    echo "bench: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    # Keep the packages' own services from starting (there may be no init).
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
    [ -n "$made_policy" ] && rm -f "$policy"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# dockermand's release builds, and the bench tools (own Cargo projects, not
# part of the dockermand crate) into target/bench/build.
# DMBENCH_DOCKERMAND=path/to/binary benchmarks that build instead, and
# DMBENCH_DOCKERMAND_TLS=path/to/binary that TLS build for the TLS rows.
target="${CARGO_TARGET_DIR:-$root/target}"
built_tls=
if [ -n "$tls" ] && [ -z "${DMBENCH_DOCKERMAND_TLS:-}" ]; then
    cargo build --release --quiet --features tls
    mkdir -p "$root/target/bench"
    cp "$target/release/dockermand" "$root/target/bench/dockermand-tls"
    built_tls=1
fi
# After a TLS build this only puts the plain binary back in place: Cargo
# keeps both feature sets' artifacts.
if [ -n "$built_tls" ] || { [ -n "$plain" ] && [ -z "${DMBENCH_DOCKERMAND:-}" ]; }; then
    cargo build --release --quiet
fi
if [ -n "$plain" ] && [ -z "${DMBENCH_DOCKERMAND:-}" ] && [ "$target" != "$root/target" ]; then
    export DMBENCH_DOCKERMAND="$target/release/dockermand"
fi
for tool in standin load relay; do
    cargo build --release --quiet \
        --manifest-path "$here/$tool/Cargo.toml" \
        --target-dir "$root/target/bench/build"
done

# Playwright for Python in the venv tests/run.sh makes (the same one, so
# the browser tests and the bench share it); it drives /usr/bin/chromium
# and never downloads a browser.
if [ -n "$ui" ]; then
    venv="$root/target/e2e-venv"
    if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        echo "bench: creating $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv"
    fi
    if ! "$venv/bin/python" -c 'import playwright' 2>/dev/null; then
        echo "bench: installing playwright into $venv" >&2
        "$venv/bin/python" -m pip install --quiet "playwright==1.65.2"
    fi
    export DMBENCH_UI_PYTHON="$venv/bin/python"
fi

# 1000 idle clients need descriptors on both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec python3 "$here/bench.py" "$@"
