#!/usr/bin/env bash
# Builds size-optimised static dockermand binaries for the routers.
#
#   cross/build.sh [TARGET...]     (default: all five targets)
#
# Installs what it needs when missing (a venv with ziglang and cargo-zigbuild
# from PyPI, the rust-src component), builds each target twice with the
# settings in cross/config.toml, plain (the default features: the web UI)
# and with `--features tls`, and mipsel once more without the UI
# (`--no-default-features`), drops what the kernel does not load (sstrip.py: section
# headers, MIPS .pdr) into cross/out/<target>/dockermand and
# cross/out/<target>/dockermand-tls, prints a size table of both and writes
# it to cross/out/sizes.txt. Fails if a mipsel binary (with or without the
# UI) is over its
# budget in cross/budget.env, or if the TLS build of a MIPS target is over
# its budget and yet would go in the main dockermand package (see
# tls_split in common.sh: over the budget, TLS goes in dockermand-tls).
#
# Environment: JOBS (cargo -j, default 2), NICE (niceness, default 10).
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

usage() {
	echo "usage: $0 [TARGET...]"
	echo "targets: ${ALL_TARGETS[*]}"
}

targets=()
for arg in "$@"; do
	case $arg in
	-h | --help)
		usage
		exit 0
		;;
	*)
		is_known_target "$arg" || {
			usage >&2
			die "unknown target $arg"
		}
		targets+=("$arg")
		;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")

JOBS=${JOBS:-2}
NICE=${NICE:-10}

# --- prerequisites ----------------------------------------------------------

ensure_rust() {
	if ! command -v cargo >/dev/null || ! command -v rustc >/dev/null; then
		die "cargo and rustc are needed (install Rust with rustup)"
	fi
	local sysroot
	sysroot=$(cd "$REPO_DIR" && rustc --print sysroot)
	if [ ! -f "$sysroot/lib/rustlib/src/rust/library/std/Cargo.toml" ]; then
		command -v rustup >/dev/null || die "rust-src is missing and rustup is not there to add it"
		log "rustup component add rust-src"
		(cd "$REPO_DIR" && rustup component add rust-src) >&2
	fi
}

ensure_venv() {
	local stamp=$VENV_DIR/.requirements
	if [ -x "$VENV_DIR/bin/python3" ] && cmp -s "$CROSS_DIR/requirements.txt" "$stamp"; then
		return 0
	fi
	if ! command -v python3 >/dev/null; then
		apt_install python3 python3-venv
	fi
	if [ ! -x "$VENV_DIR/bin/python3" ]; then
		log "creating $VENV_DIR"
		if ! python3 -m venv "$VENV_DIR" >&2; then
			rm -rf "$VENV_DIR"
			apt_install python3-venv
			python3 -m venv "$VENV_DIR" >&2
		fi
	fi
	log "installing ziglang and cargo-zigbuild into the venv"
	"$VENV_DIR/bin/python3" -m pip install -q --disable-pip-version-check \
		-r "$CROSS_DIR/requirements.txt" >&2
	cp "$CROSS_DIR/requirements.txt" "$stamp"
}

ensure_rust
ensure_venv
need_cmd readelf binutils

# cargo-zigbuild finds zig through `python3 -m ziglang`: the venv's python.
export PATH="$VENV_DIR/bin:$PATH"
# build-std and -Z flags on a stable toolchain.
export RUSTC_BOOTSTRAP=1
# Keep zig's cache (a few hundred MB) beside the target dir, out of git.
export ZIG_GLOBAL_CACHE_DIR=$CACHE_DIR/zig
export ZIG_LOCAL_CACHE_DIR=$CROSS_DIR/.cache/zig
# Rustflags from the environment would replace cross/config.toml's.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS
for t in "${ALL_TARGETS[@]}"; do
	t=${t^^}
	unset "CARGO_TARGET_${t//-/_}_RUSTFLAGS"
done

# --- build ------------------------------------------------------------------

# build TARGET VARIANT OUT: one cargo build (VARIANT plain, tls or noui), checked
# and sstripped into OUT. The two variants share the target dir: cargo keeps
# each feature set's artifacts apart and puts the one just asked for at
# release/dockermand.
build() {
	local target=$1 variant=$2 out=$3 src features=()
	case $variant in
	tls) features=(--features tls) ;;
	noui) features=(--no-default-features) ;;
	esac
	log "building $target ($variant)"
	(cd "$REPO_DIR" && nice -n "$NICE" cargo zigbuild \
		--config "$CROSS_DIR/config.toml" \
		--release --bin dockermand --target "$target" -j "$JOBS" "${features[@]}")
	src=$CARGO_TARGET_DIR/$target/release/dockermand
	[ -f "$src" ] || die "$target: cargo finished but $src is missing"
	if readelf -S "$src" | grep -q '\.symtab'; then
		die "$target: the binary still has a symbol table (is strip = true in the release profile?)"
	fi
	read -r -a want <<<"$(elf_expect "$target")"
	read -r -a got <<<"$(elf_ident "$src")"
	[ "${got[*]}" = "${want[*]}" ] ||
		die "$target: ELF header says class/data/machine ${got[*]}, expected ${want[*]}"
	mkdir -p "$(dirname "$out")"
	"$VENV_DIR/bin/python3" "$CROSS_DIR/sstrip.py" "$src" "$out.tmp"
	chmod 0755 "$out.tmp"
	mv "$out.tmp" "$out"
}

mkdir -p "$OUT_DIR"
built=()
for target in "${targets[@]}"; do
	start=$SECONDS
	build "$target" plain "$(built_binary "$target")"
	build "$target" tls "$(built_tls_binary "$target")"
	[ "$target" != mipsel-unknown-linux-musl ] || build "$target" noui "$(built_noui_binary "$target")"
	# Nothing but the feature differs: the same bytes would mean the
	# feature did not reach the build.
	! cmp -s "$(built_binary "$target")" "$(built_tls_binary "$target")" ||
		die "$target: the plain and TLS builds are the same file"
	log "$target built in $((SECONDS - start)) s"
	built+=("$target")
done

# --- size table -------------------------------------------------------------

# kib BYTES: BYTES in KiB, one decimal.
kib() { awk -v s="$1" 'BEGIN { printf "%.1f", s / 1024 }'; }

over=()
{
	printf '%-32s %10s %8s %10s %8s\n' target plain KiB tls KiB
	for target in "${built[@]}"; do
		plain=$(stat -c %s "$(built_binary "$target")")
		tls=$(stat -c %s "$(built_tls_binary "$target")")
		notes=()
		if [ "$target" = mipsel-unknown-linux-musl ]; then
			noui=$(stat -c %s "$(built_noui_binary "$target")")
			if [ "$plain" -gt "$MIPSEL_BUDGET_BYTES" ]; then
				notes+=("plain OVER BUDGET ($MIPSEL_BUDGET_BYTES)")
				over+=("plain $target")
			else
				notes+=("plain budget $MIPSEL_BUDGET_BYTES")
			fi
			if [ "$noui" -gt "$MIPSEL_NO_UI_BUDGET_BYTES" ]; then
				notes+=("without the UI $noui, OVER BUDGET ($MIPSEL_NO_UI_BUDGET_BYTES)")
				over+=("noui $target")
			else
				notes+=("without the UI $noui, budget $MIPSEL_NO_UI_BUDGET_BYTES")
			fi
		fi
		if has_tls_budget "$target"; then
			if [ "$tls" -le "$MIPS_TLS_BUDGET_BYTES" ]; then
				notes+=("tls budget $MIPS_TLS_BUDGET_BYTES")
			elif tls_split "$target"; then
				notes+=("tls over its budget $MIPS_TLS_BUDGET_BYTES: in dockermand-tls")
			else
				notes+=("tls OVER BUDGET ($MIPS_TLS_BUDGET_BYTES) for the main package")
				over+=("tls $target")
			fi
		fi
		note=
		for n in "${notes[@]}"; do
			note="${note:+$note; }$n"
		done
		[ -z "$note" ] || note=" ($note)"
		printf '%-32s %10d %8s %10d %8s%s\n' "$target" "$plain" "$(kib "$plain")" \
			"$tls" "$(kib "$tls")" "$note"
	done
} >"$OUT_DIR/sizes.txt"
echo "Binary sizes in bytes, stripped and sstripped, plain (with the web UI) and --features tls (cross/out/sizes.txt):"
cat "$OUT_DIR/sizes.txt"

if [ ${#over[@]} -gt 0 ]; then
	die "over the size budget of cross/budget.env: ${over[*]}"
fi
