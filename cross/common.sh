# shellcheck shell=bash
# Shared by the cross/ scripts: paths, the target list and per-target facts.
# Source it; it only defines variables and functions.

CROSS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$CROSS_DIR/.." && pwd)
OUT_DIR=$CROSS_DIR/out
# The toolchain venv, zig cache and target dir (about 2 GB) live outside the
# checkout, so a fresh clone on the same machine (CI) reuses them.
CACHE_DIR=${DOCKERMAND_CROSS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dockermand-cross}
# shellcheck disable=SC2034  # used by the scripts that source this file
VENV_DIR=$CACHE_DIR/venv
export CARGO_TARGET_DIR=$CACHE_DIR/target

# shellcheck source=budget.env
. "$CROSS_DIR/budget.env"

ALL_TARGETS=(
	mips-unknown-linux-musl
	mipsel-unknown-linux-musl
	armv7-unknown-linux-musleabihf
	aarch64-unknown-linux-musl
	x86_64-unknown-linux-musl
)

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Sets `targets` to the arguments, checked, or to all targets when none.
select_targets() {
	targets=("$@")
	local t
	for t in "${targets[@]}"; do
		is_known_target "$t" || die "unknown target $t (known: ${ALL_TARGETS[*]})"
	done
	[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
}

is_known_target() {
	local t
	for t in "${ALL_TARGETS[@]}"; do
		[ "$t" = "$1" ] && return 0
	done
	return 1
}

# OpenWrt package architecture of the most common device family per target.
openwrt_arch() {
	case $1 in
	mips-unknown-linux-musl) echo mips_24kc ;;
	mipsel-unknown-linux-musl) echo mipsel_24kc ;;
	armv7-unknown-linux-musleabihf) echo arm_cortex-a7_neon-vfpv4 ;;
	aarch64-unknown-linux-musl) echo aarch64_cortex-a53 ;;
	x86_64-unknown-linux-musl) echo x86_64 ;;
	*) return 1 ;;
	esac
}

# qemu-user binary name suffix and a CPU like the routers'.
qemu_arch() {
	case $1 in
	mips-*) echo mips ;;
	mipsel-*) echo mipsel ;;
	armv7-*) echo arm ;;
	aarch64-*) echo aarch64 ;;
	x86_64-*) echo x86_64 ;;
	*) return 1 ;;
	esac
}

qemu_cpu() {
	case $1 in
	mips-* | mipsel-*) echo 24Kc ;;
	armv7-*) echo cortex-a7 ;;
	aarch64-*) echo cortex-a53 ;;
	x86_64-*) echo max ;;
	*) return 1 ;;
	esac
}

# What the ELF header of the target's binary must say: EI_CLASS EI_DATA e_machine
# (class 1=32-bit 2=64-bit; data 1=little 2=big endian; machine MIPS=8 ARM=40
# AArch64=183 x86-64=62).
elf_expect() {
	case $1 in
	mips-*) echo "1 2 8" ;;
	mipsel-*) echo "1 1 8" ;;
	armv7-*) echo "1 1 40" ;;
	aarch64-*) echo "2 1 183" ;;
	x86_64-*) echo "2 1 62" ;;
	*) return 1 ;;
	esac
}

# Prints "CLASS DATA MACHINE" read from an ELF header. e_machine is the
# 16-bit field at offset 18, in the file's own byte order.
elf_ident() {
	local f=$1 class data lo hi
	[ "$(od -An -tx1 -N4 "$f" | tr -d ' \n')" = 7f454c46 ] || return 1
	class=$(od -An -tu1 -j4 -N1 "$f" | tr -d ' \n')
	data=$(od -An -tu1 -j5 -N1 "$f" | tr -d ' \n')
	read -r lo hi < <(od -An -tu1 -j18 -N2 "$f")
	if [ "$data" = 2 ]; then
		echo "$class $data $((lo * 256 + hi))"
	else
		echo "$class $data $((hi * 256 + lo))"
	fi
}

# cargo_field NAME: a string field of Cargo.toml's [package] table.
cargo_field() {
	sed -n "/^\[package\]/,/^\[/s/^$1 *= *\"\([^\"]*\)\".*/\1/p" "$REPO_DIR/Cargo.toml" | head -n1
}

cargo_version() { cargo_field version; }

# The packages' version as OpenWrt writes it: VERSION-rRELEASE, the release
# from the SDK Makefile's PKG_RELEASE.
package_version() {
	local version release
	version=$(cargo_version)
	release=$(sed -n 's/^PKG_RELEASE:=//p' "$CROSS_DIR/openwrt/Makefile")
	[ -n "$version" ] && [ -n "$release" ] && echo "$version-r$release"
}

# The two builds of each target: plain (no cargo features) and TLS
# (--features tls).
built_binary() { echo "$OUT_DIR/$1/dockermand"; }
built_tls_binary() { echo "$OUT_DIR/$1/dockermand-tls"; }
# Without the web UI (--no-default-features), built for mipsel only: its
# budget is the size of everything but the UI.
built_noui_binary() { echo "$OUT_DIR/$1/dockermand-noui"; }

# tls_split TARGET: true when the target's dockermand package carries the
# plain binary and a separate dockermand-tls package the TLS one: the MIPS
# targets, whose routers have the least flash (cross/README.md, Packages).
# TLS_SPLIT_TARGETS, a space-separated list, replaces that choice (the
# packaging test packs x86_64 that way, to run the pair on its machine).
tls_split() {
	case " ${TLS_SPLIT_TARGETS-mips-unknown-linux-musl mipsel-unknown-linux-musl} " in
	*" $1 "*) return 0 ;;
	*) return 1 ;;
	esac
}

# The binary the target's dockermand package ships.
main_package_binary() {
	if tls_split "$1"; then
		built_binary "$1"
	else
		built_tls_binary "$1"
	fi
}

# has_tls_budget TARGET: the TLS build of TARGET may go in its main
# package only within MIPS_TLS_BUDGET_BYTES.
has_tls_budget() {
	case $1 in
	mips-* | mipsel-*) return 0 ;;
	*) return 1 ;;
	esac
}

# apt-get install, running `apt-get update` once per script run.
APT_UPDATED=
apt_install() {
	command -v apt-get >/dev/null || die "apt-get not found: install $* by hand"
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	if [ -z "$APT_UPDATED" ]; then
		log "apt-get update"
		$sudo apt-get update -qq >&2 || die "apt-get update failed"
		APT_UPDATED=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >&2 ||
		die "apt-get install $* failed"
}

# need_cmd COMMAND DEBIAN-PACKAGE: installs the package if COMMAND is missing.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 || apt_install "$2"
	command -v "$1" >/dev/null 2>&1 || die "$1 still missing after installing $2"
}
