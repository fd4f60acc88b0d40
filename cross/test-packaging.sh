#!/usr/bin/env bash
# Tests the router packaging:
#   - each .ipk of cross/ipk.sh, read as opkg reads it (test/ipk.py): a
#     gzip'd tar packed as ipkg-build packs, control fields (the
#     Conflicts/Provides of dockermand and dockermand-tls), files, owners
#     and modes, which build the binary is and its ELF header, the standard
#     maintainer scripts;
#   - the SDK Makefiles against Cargo.toml and the feed's conventions, and
#     evaluated by make with stand-ins for the SDK's includes (test/sdk/):
#     each variant's fields, cargo features, install directory and files;
#   - the package on a stand-in router (test/: rc.common, functions.sh,
#     procd.sh, validate_data, ubus, logger, and opkg in ipk.py, with
#     OpenWrt's names and semantics): install, the service procd is given,
#     reload, upgrade, removal, malformed UCI values, TLS listeners and
#     certificates (uhttpd's DER ones too), switching between dockermand
#     and dockermand-tls; busybox sh runs the scripts and the real x86_64
#     daemon checks and runs the generated JSON, and serves TLS to a client;
#   - the LuCI views' JavaScript, under node with stand-ins for LuCI;
#   - shellcheck on the init script and every cross/ script.
#
#   cross/test-packaging.sh [PATTERN]     (only the checks whose name has PATTERN)
#
# Needs cross/build.sh and cross/ipk.sh to have run. Prints PASS/FAIL per
# check and "N passed, N failed"; exits non-zero if any check failed.
set -uo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

need_cmd ar binutils
need_cmd node nodejs
need_cmd busybox busybox
need_cmd shellcheck shellcheck
need_cmd python3 python3
need_cmd openssl openssl

TEST_DIR=$CROSS_DIR/test
FIXTURES=$TEST_DIR/fixtures
INIT=$CROSS_DIR/openwrt/files/dockermand.init
UCI_DEFAULT=$CROSS_DIR/openwrt/files/dockermand.config
MAKEFILE=$CROSS_DIR/openwrt/Makefile
LUCI_DIR=$CROSS_DIR/openwrt/luci-app-dockermand
VERSION=$(cargo_version)
PKG_VERSION=$(package_version)
X86_64=x86_64-unknown-linux-musl

scratch=$(mktemp -d)
DAEMON_PID=
cleanup() {
	[ -z "$DAEMON_PID" ] || kill "$DAEMON_PID" 2>/dev/null
	rm -rf "$scratch"
}
trap cleanup EXIT

passed=0
failed=0

# check NAME FUNCTION [ARGS...]: runs the function; it fails by returning
# non-zero, after printing why.
ONLY=${1:-}
check() {
	local name=$1 out rc
	shift
	case "$name" in
	*"$ONLY"*) ;;
	*) return 0 ;;
	esac
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" = 0 ]; then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name"
		[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] && return 0
	printf '%s:\n  got:  %s\n  want: %s\n' "$1" "$2" "$3"
	return 1
}

# --- ipk --------------------------------------------------------------------

# ipk_path TARGET [PACKAGE]: the package (default dockermand) for TARGET.
ipk_path() { echo "$OUT_DIR/${2:-dockermand}_${PKG_VERSION}_$(openwrt_arch "$1").ipk"; }
LUCI_IPK=$OUT_DIR/luci-app-dockermand_${PKG_VERSION}_all.ipk
# An x86_64 pair packed as the MIPS ones are (dockermand plain,
# dockermand-tls), to run on the stand-in router.
SPLIT_DIR=$scratch/split
split_ipk() { echo "$SPLIT_DIR/${1}_${PKG_VERSION}_$(openwrt_arch "$X86_64").ipk"; }

# Unpacks IPK as opkg does into $scratch/ipk/NAME/{root,info}; prints the
# package name.
unpack_ipk() {
	local ipk=$1 dir=$scratch/ipk/$2
	[ -f "$ipk" ] || {
		echo "$ipk missing (run cross/ipk.sh)"
		return 1
	}
	rm -rf "$dir"
	mkdir -p "$dir/root"
	python3 "$TEST_DIR/ipk.py" install "$ipk" "$dir/root" >/dev/null
}

test_ipk_format() {
	python3 "$TEST_DIR/ipk.py" check "$1" && unpack_ipk "$1" "$2"
}

# opkg gives up on the ar layout this project used to write.
test_ar_refused() {
	local dir=$scratch/ar out
	mkdir -p "$dir"
	(cd "$dir" && tar -xzf "$(ipk_path "$X86_64")" && ar rcD "$dir/old.ipk" debian-binary control.tar.gz data.tar.gz) || return 1
	if out=$(python3 "$TEST_DIR/ipk.py" install "$dir/old.ipk" "$dir/root" 2>&1); then
		echo "an ar package was installed"
		return 1
	fi
	case "$out" in
	*"Malformed package file"*) ;;
	*)
		echo "unexpected refusal: $out"
		return 1
		;;
	esac
}

# listing DIR: "mode owner path" of every file and directory below DIR as
# the package's data tar holds them.
listing() {
	python3 - "$1" <<'PY'
import gzip, io, sys, tarfile
for m in sorted(tarfile.open(fileobj=io.BytesIO(gzip.decompress(open(sys.argv[1], "rb").read()))), key=lambda m: m.name):
    print(oct(m.mode)[2:], f"{m.uid}/{m.gid}", m.name)
PY
}

# data_tar IPK: the data.tar.gz inside IPK, into $scratch/data.tar.gz.
data_tar() {
	tar -xzOf "$1" ./data.tar.gz >"$scratch/data.tar.gz"
	echo "$scratch/data.tar.gz"
}

test_ipk_layout() {
	local t=$1 p=$2 dir=$scratch/ipk/$1-$2 got want
	got=$(listing "$(data_tar "$(ipk_path "$t" "$p")")")
	want=$(
		cat <<'LIST'
755 0/0 .
755 0/0 ./etc
755 0/0 ./etc/config
600 0/0 ./etc/config/dockermand
755 0/0 ./etc/init.d
755 0/0 ./etc/init.d/dockermand
755 0/0 ./usr
755 0/0 ./usr/bin
755 0/0 ./usr/bin/dockermand
755 0/0 ./usr/share
755 0/0 ./usr/share/acl.d
644 0/0 ./usr/share/acl.d/dockermand.json
LIST
	)
	expect_eq "data.tar.gz (mode owner path)" "$got" "$want" || return 1
	cmp "$dir/root/etc/init.d/dockermand" "$INIT" || return 1
	cmp "$dir/root/etc/config/dockermand" "$UCI_DEFAULT" || return 1
	expect_eq conffiles "$(cat "$dir/root/usr/lib/opkg/info/$p.conffiles")" /etc/config/dockermand
}

# dockermand-tls exists for the targets that split TLS off, only.
test_tls_packages() {
	local t bad=0
	for t in "${ALL_TARGETS[@]}"; do
		if tls_split "$t" && [ ! -f "$(ipk_path "$t" dockermand-tls)" ]; then
			echo "no dockermand-tls for $t"
			bad=1
		elif ! tls_split "$t" && [ -e "$(ipk_path "$t" dockermand-tls)" ]; then
			echo "a dockermand-tls for $t, whose dockermand has TLS"
			bad=1
		fi
	done
	[ "$bad" = 0 ]
}

# control_fields IPK DIR NAME ARCH DEPENDS SECTION SOURCENAME [FIELD=VALUE...]:
# the control file (of the package unpacked in $scratch/ipk/DIR) has the
# fields the SDK writes, Installed-Size the size of the unpacked data tar,
# and the FIELDs given (an empty VALUE: the field must be absent).
control_fields() {
	local ipk=$1 dir=$2 size
	shift 2
	size=$(tar -xzOf "$ipk" ./data.tar.gz | gzip -dc | wc -c)
	python3 - "$scratch/ipk/$dir/root/usr/lib/opkg/info/$1.control" "$1" "$PKG_VERSION" "$2" "$size" "$3" "$4" "${@:5}" <<'PY'
import sys

path, name, version, arch, size, depends, section, source_name = sys.argv[1:9]
extra = dict(a.split("=", 1) for a in sys.argv[9:])
fields, last = {}, None
for line in open(path, encoding="utf-8").read().splitlines():
    if line.startswith(" ") and last:
        fields[last] += "\n" + line
    elif ": " in line:
        last, value = line.split(": ", 1)
        fields[last] = value
    else:
        sys.exit(f"bad control line {line!r}")
want = {"Package": name, "Version": version, "Architecture": arch, "Installed-Size": size,
        "License": "Apache-2.0", "SourceName": source_name, "Section": section, "Depends": depends}
want.update({k: v or None for k, v in extra.items()})
errors = [f"{k}: got {fields.get(k)!r}, want {v!r}" for k, v in want.items() if fields.get(k) != v]
errors += [f"{k} missing" for k in ("Source", "Maintainer", "Description") if not fields.get(k)]
sys.exit("\n".join(errors) or None)
PY
}

# dockermand and dockermand-tls install the same files: each conflicts with
# the other, and dockermand-tls provides dockermand for luci-app-dockermand.
test_ipk_control() {
	local relations=(Conflicts=dockermand-tls Provides=)
	[ "$2" = dockermand ] || relations=(Conflicts=dockermand Provides=dockermand)
	control_fields "$(ipk_path "$1" "$2")" "$1-$2" "$2" "$(openwrt_arch "$1")" libc utils dockermand \
		"${relations[@]}" || return 1
	grep -qx 'Require-User: dockermand:dockermand:docker' \
		"$scratch/ipk/$1-$2/root/usr/lib/opkg/info/$2.control" || {
		echo "no Require-User for the dockermand user in the docker group"
		return 1
	}
}

# ipk_build TARGET PACKAGE: which build the package ships, tls or plain.
ipk_build() {
	if [ "$2" = dockermand-tls ] || ! tls_split "$1"; then
		echo tls
	else
		echo plain
	fi
}

test_ipk_binary() {
	local t=$1 bin want got built
	bin=$scratch/ipk/$t-$2/root/usr/bin/dockermand
	built=$(built_binary "$t")
	[ "$(ipk_build "$t" "$2")" = plain ] || built=$(built_tls_binary "$t")
	cmp "$bin" "$built" || return 1
	want=$(elf_expect "$t")
	got=$(elf_ident "$bin") || {
		echo "not an ELF file"
		return 1
	}
	expect_eq "ELF class, data (endianness), machine" "$got" "$want"
}

# The SDK's standard postinst and prerm: hand over to default_postinst and
# default_prerm, nothing without /lib/functions.sh (image builds).
test_ipk_scripts() {
	local info=$scratch/ipk/$1/root/usr/lib/opkg/info s
	# Literal script text.
	# shellcheck disable=SC2016
	grep -qx 'default_postinst "$0" "$@"' "$info/$2.postinst" || {
		echo "postinst does not call default_postinst"
		return 1
	}
	# shellcheck disable=SC2016
	grep -qx 'default_prerm "$0" "$@"' "$info/$2.prerm" || {
		echo "prerm does not call default_prerm"
		return 1
	}
	# They source /lib/functions.sh, which exists on the router only.
	for s in postinst prerm postinst-pkg; do
		shellcheck -s sh -e SC1091 "$info/$2.$s" || return 1
	done
	for s in postinst prerm; do
		IPKG_INSTROOT=$scratch/empty-image busybox sh "$info/$2.$s" || {
			echo "$s failed in an image build without /lib/functions.sh"
			return 1
		}
	done
}

test_luci_ipk() {
	local got want
	got=$(listing "$(data_tar "$LUCI_IPK")" | grep -v '^755 ')
	want=$(
		cat <<'LIST'
644 0/0 ./usr/share/luci/menu.d/luci-app-dockermand.json
644 0/0 ./usr/share/rpcd/acl.d/luci-app-dockermand.json
644 0/0 ./www/luci-static/resources/view/dockermand/docker.js
644 0/0 ./www/luci-static/resources/view/dockermand/settings.js
LIST
	)
	expect_eq "luci data.tar.gz files" "$got" "$want" || return 1
	control_fields "$LUCI_IPK" luci luci-app-dockermand all "libc, luci-base, dockermand" luci luci-app-dockermand
}

# LuCI's conventions: the menu's views exist and the ACL it depends on is
# defined with read and write on the dockermand UCI config.
test_luci_json() {
	python3 - "$LUCI_DIR" <<'PY'
import json, os, sys
d = sys.argv[1]
menu = json.load(open(f"{d}/root/usr/share/luci/menu.d/luci-app-dockermand.json"))
acl = json.load(open(f"{d}/root/usr/share/rpcd/acl.d/luci-app-dockermand.json"))
errors = []
for path, node in menu.items():
    if not path.startswith("admin/services/dockermand"):
        errors.append(f"{path} is not under Services")
    action = node.get("action", {})
    if action.get("type") == "view":
        js = f"{d}/htdocs/luci-static/resources/view/{action['path']}.js"
        if not os.path.isfile(js):
            errors.append(f"{path}: no view {js}")
for group in menu["admin/services/dockermand"]["depends"]["acl"]:
    if group not in acl:
        errors.append(f"menu depends on ACL {group}, not defined")
for right in ("read", "write"):
    if acl["luci-app-dockermand"].get(right, {}).get("uci") != ["dockermand"]:
        errors.append(f"ACL {right} is not uci dockermand")
sys.exit("\n".join(errors) or None)
PY
}

test_luci_views() {
	node "$TEST_DIR/luci-views.js" "$LUCI_DIR/htdocs/luci-static/resources/view/dockermand"
}

# --- SDK Makefiles -------------------------------------------------------------

test_makefile() {
	local line bad=0
	expect_eq "PKG_VERSION (Cargo.toml's version)" \
		"$(sed -n 's/^PKG_VERSION:=//p' "$MAKEFILE")" "$VERSION" || bad=1
	# Literal Makefile text, $(...) included.
	# shellcheck disable=SC2016
	for line in 'include $(TOPDIR)/rules.mk' 'PKG_NAME:=dockermand' 'PKG_RELEASE:=' \
		'PKG_SOURCE_PROTO:=git' 'PKG_SOURCE_URL:=' 'PKG_SOURCE_VERSION:=' 'PKG_MIRROR_HASH:=' \
		'PKG_LICENSE:=Apache-2.0' 'PKG_LICENSE_FILES:=LICENSE' \
		'PKG_BUILD_DEPENDS:=rust/host' 'include ../../lang/rust/rust-package.mk' \
		'_PANIC=abort' '_OPT_LEVEL=z' '_LTO=true' '_OVERFLOW_CHECKS=false' \
		'USERID:=dockermand:dockermand:docker' \
		'define Package/dockermand/conffiles' \
		'$(eval $(call RustBinPackage,dockermand))' '$(eval $(call BuildPackage,dockermand))' \
		'$(eval $(call BuildPackage,dockermand-tls))' \
		'./files/dockermand.init $(1)/etc/init.d/dockermand' \
		'./files/dockermand.config $(1)/etc/config/dockermand' \
		'./files/dockermand.acl.json $(1)/usr/share/acl.d/dockermand.json'; do
		grep -qF -- "$line" "$MAKEFILE" || {
			echo "Makefile lacks: $line"
			bad=1
		}
	done
	# dockerd is built for no MIPS target: it cannot be a hard dependency.
	# shellcheck disable=SC2016
	grep -qx '  DEPENDS:=$$(RUST_ARCH_DEPENDS)' "$MAKEFILE" || {
		echo "DEPENDS is not just \$\$(RUST_ARCH_DEPENDS)"
		bad=1
	}
	[ -f "$REPO_DIR/LICENSE" ] || {
		echo "no LICENSE file"
		bad=1
	}
	grep -qx 'include ../../luci.mk' "$LUCI_DIR/Makefile" || {
		echo "luci-app-dockermand/Makefile does not include luci.mk"
		bad=1
	}
	[ "$bad" = 0 ]
}

# sdk_make ARCH VARIANT [TARGET DEST]: the SDK Makefile evaluated by make for
# ARCH and BUILD_VARIANT VARIANT, with stand-ins for the SDK's rules.mk and
# package.mk and the feed's rust-package.mk (test/sdk/), laid out as in the
# SDK (feeds/packages/utils/dockermand).
sdk_make() {
	local top=$scratch/sdk
	if [ ! -d "$top" ]; then
		mkdir -p "$top/include" "$top/feeds/packages/utils" "$top/feeds/packages/lang/rust" || return 1
		cp "$TEST_DIR/sdk/rules.mk" "$top/" &&
			cp "$TEST_DIR/sdk/package.mk" "$top/include/" &&
			cp "$TEST_DIR/sdk/rust-package.mk" "$top/feeds/packages/lang/rust/" &&
			cp -r "$CROSS_DIR/openwrt" "$top/feeds/packages/utils/dockermand" || return 1
	fi
	make -s -C "$top/feeds/packages/utils/dockermand" TOPDIR="$top" INCLUDE_DIR="$top/include" \
		BUILD_DIR="$top/build" ARCH="$1" BUILD_VARIANT="$2" ${4:+DEST="$4"} "${3:-all}"
}

# The two variants as the SDK builds them: on MIPS dockermand plain and
# dockermand-tls (MIPS only) with cargo's tls feature, elsewhere dockermand
# with it; each in its own build directory, with its own install directory
# and build stamp (USE_SOURCE_DIR links both build directories to one
# checkout); the same files, conffiles and postinst.
test_makefile_variants() {
	local got want arch variant pkg dir bad=0
	for arch in mipsel mips aarch64 arm x86_64; do
		for variant in default tls; do
			got=$(sdk_make "$arch" "$variant" 2>&1) || {
				printf '%s\n' "$got"
				return 1
			}
			printf '%s\n' "$got" >"$scratch/sdk/$arch-$variant.out"
			pkg=dockermand
			[ "$variant" = default ] || pkg=dockermand-tls
			dir=$scratch/sdk/build/dockermand-$variant/dockermand-$VERSION
			want="Package: $pkg"
			case "$arch:$variant" in
			mips*:default) want="$want|Conflicts: dockermand-tls|Provides: |Default-Variant: 1|Cargo: cargo install -v --profile release  --root $dir/ipkg-install-default --path \"$dir\"" ;;
			*:default) want="$want|Conflicts: dockermand-tls|Provides: |Default-Variant: 1|Cargo: cargo install -v --profile release --features \"tls\" --root $dir/ipkg-install-default --path \"$dir\"" ;;
			*:tls) want="$want|Conflicts: dockermand|Provides: dockermand|Default-Variant: |Cargo: cargo install -v --profile release --features \"tls\" --root $dir/ipkg-install-tls --path \"$dir\"" ;;
			esac
			want="$want|Install-Dir: $dir/ipkg-install-$variant|Stamp-Built: $dir/.built_$variant|Conffiles: /etc/config/dockermand"
			got=$(grep -E '^(Package|Conflicts|Provides|Default-Variant|Cargo|Install-Dir|Stamp-Built|Conffiles):' \
				"$scratch/sdk/$arch-$variant.out" | paste -sd '|')
			expect_eq "$arch $variant" "$got" "$want" || bad=1
			# Rust's architectures, and for dockermand-tls MIPS only.
			got=$(grep '^Depends:' "$scratch/sdk/$arch-$variant.out")
			case "$variant:$got" in
			default:"Depends: @("*"x86_64)" | tls:"Depends: @("*"x86_64) @(mips||mipsel||mips64||mips64el)") ;;
			*)
				echo "$arch $variant: $got"
				bad=1
				;;
			esac
		done
		expect_eq "$arch: the postinst of both" "$(sed -n '/^Postinst:/,$p' "$scratch/sdk/$arch-tls.out")" \
			"$(sed -n '/^Postinst:/,$p' "$scratch/sdk/$arch-default.out")" || bad=1
	done
	# Each variant installs its own build's binary and the same files.
	for variant in default tls; do
		pkg=dockermand
		[ "$variant" = default ] || pkg=dockermand-tls
		dir=$scratch/sdk/build/dockermand-$variant/dockermand-$VERSION/ipkg-install-$variant/bin
		mkdir -p "$dir" && echo "$variant build" >"$dir/dockermand" || return 1
		sdk_make mipsel "$variant" "install-$pkg" "$scratch/sdk/dest" >/dev/null || return 1
	done
	expect_eq "dockermand-tls's binary" "$(cat "$scratch/sdk/dest/dockermand-tls/usr/bin/dockermand")" "tls build" || bad=1
	expect_eq "dockermand's binary" "$(cat "$scratch/sdk/dest/dockermand/usr/bin/dockermand")" "default build" || bad=1
	expect_eq "files of dockermand-tls" "$(cd "$scratch/sdk/dest/dockermand-tls" && find . | sort)" \
		"$(cd "$scratch/sdk/dest/dockermand" && find . | sort)" || bad=1
	[ "$bad" = 0 ]
}

# --- a stand-in router ------------------------------------------------------------

# new_router NAME: an empty router file system at $scratch/router/NAME with
# the stand-ins installed where OpenWrt keeps the real ones.
router_dir() { echo "$scratch/router/$1"; }
new_router() {
	local root
	root=$(router_dir "$1")
	rm -rf "$root"
	mkdir -p "$root/etc/config" "$root/lib/functions" "$root/usr/share/libubox" \
		"$root/sbin" "$root/bin" "$root/var/run" "$root/state"
	printf 'root:x:0:0:root:/root:/bin/ash\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	# opkg's status: what the firmware image brings that the packages need.
	mkdir -p "$root/usr/lib/opkg/info"
	printf 'Package: %s\nVersion: 1\nStatus: install user installed\nArchitecture: all\n\n' \
		libc luci-base >"$root/usr/lib/opkg/status"
	cp "$TEST_DIR/functions.sh" "$root/lib/functions.sh"
	cp "$TEST_DIR/procd.sh" "$root/lib/functions/procd.sh"
	cp "$TEST_DIR/network.sh" "$root/lib/functions/network.sh"
	cp "$TEST_DIR/jshn.sh" "$root/usr/share/libubox/jshn.sh"
	cp "$TEST_DIR/rc.common" "$root/etc/rc.common"
	cp "$TEST_DIR/validate_data" "$root/sbin/validate_data"
	cp "$TEST_DIR/ubus" "$root/bin/ubus"
	# procd's jail launcher: its presence makes the init script use the jail.
	printf '#!/bin/sh\nexit 0\n' >"$root/sbin/ujail"
	chmod +x "$root/sbin/ujail"
}

# on_router NAME COMMAND...: COMMAND with the router's environment.
on_router() {
	local root
	root=$(router_dir "$1")
	shift
	env STANDIN_DIR="$TEST_DIR" STANDIN_ROOT="$root" UCI_CONFIG_DIR="$root/etc/config" \
		UBUS_STATE="$root/state" UBUS_LOG="$root/ubus.log" LOGGER_LOG="$root/logger.log" \
		OWNER_LOG="$root/owner.log" PATH="$root/bin:$PATH" \
		TEST_NETWORK_lan=192.168.1.1 TEST_NETWORK_guest="10.0.0.1 10.0.1.1" "$@"
}

# opkg NAME ARGS...: opkg (test/ipk.py's stand-in) on router NAME, as
# `opkg install IPK` or `opkg remove PACKAGE`, with --force-depends; a
# package's scripts are pointed into the router once its files are in place.
opkg() {
	local root
	root=$(router_dir "$1")
	shift
	on_router "$(basename "$root")" \
		STANDIN_AFTER_UNPACK="$(declare -f point_into_router); point_into_router '$root' \"\$STANDIN_PACKAGE\"" \
		python3 "$TEST_DIR/ipk.py" opkg "$root" "$@"
}

# opkg_install NAME IPK: opkg install on router NAME.
opkg_install() { opkg "$1" install "$2"; }

# The scripts package PACKAGE installed name OpenWrt's absolute paths;
# point them into the router's directory ROOT (the only change made to
# what a package installed).
point_into_router() {
	local root=$1 info=$1/usr/lib/opkg/info/$2 f
	if grep -qx /etc/init.d/dockermand "$info.list"; then
		sed -i -e "s#\([\"' =(]\)/\(usr\|var\|etc\|lib\|sbin\|bin\|tmp\)/#\1$root/\2/#g" \
			-e "s#unix:///var/#unix://$root/var/#g" "$root/etc/init.d/dockermand"
	fi
	for f in "$info.postinst" "$info.prerm"; do
		[ ! -f "$f" ] || sed -i -e "s#\"\${IPKG_INSTROOT}/#\"$root\${IPKG_INSTROOT}/#g" "$f"
	done
}

# rerelease IPK OUT RELEASE: IPK as release RELEASE of its version (an
# upgrade for opkg), into OUT.
rerelease() {
	python3 - "$@" <<'PY'
import gzip, io, re, sys, tarfile
src, out, release = sys.argv[1:]

def members(data):
    tar = tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)))
    return [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]

def pack(items):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for m, data in items:
            if data is not None:
                m.size = len(data)
            tar.addfile(m, io.BytesIO(data) if data is not None else None)
    return gzip.compress(buf.getvalue(), mtime=0)

outer = []
for m, data in members(open(src, "rb").read()):
    if m.name == "./control.tar.gz":
        inner = [(c, re.sub(rb"(?m)^(Version: .*-r)\d+$", b"\\g<1>" + release.encode(), d) if c.name == "./control" else d)
                 for c, d in members(data)]
        data = pack(inner)
    outer.append((m, data))
open(out, "wb").write(pack(outer))
PY
}

# router_with NAME UCI [IPK]: a router with the x86_64 package (or IPK)
# installed (its scripts run), then UCI as /etc/config/dockermand (its
# default upstream socket path and files in /etc/dockermand pointed into
# the router); the logs start empty.
router_with() {
	local root
	root=$(router_dir "$1")
	new_router "$1"
	opkg_install "$1" "${3:-$(ipk_path "$X86_64")}" >"$root/install.out" 2>&1 || {
		cat "$root/install.out"
		return 1
	}
	sed -e "s#unix:///var/#unix://$root/var/#" -e "s#unix:/var/run/dockermand/#unix:$root/var/run/dockermand/#" \
		-e "s#'/etc/dockermand/#'$root/etc/dockermand/#" "$2" >"$root/etc/config/dockermand"
	: >"$root/ubus.log"
	: >"$root/logger.log"
	: >"$root/owner.log"
}

# init NAME ACTION: /etc/init.d/dockermand ACTION on the router.
init() {
	local root
	root=$(router_dir "$1")
	on_router "$1" busybox sh "$root/etc/rc.common" "$root/etc/init.d/dockermand" "$2" 2>>"$root/stderr"
}

conf_of() { echo "$(router_dir "$1")/var/etc/dockermand/dockermand.json"; }

# service NAME: the last service definition sent to procd, paths inside
# the router shown as on the router.
service() {
	local root
	root=$(router_dir "$1")
	grep '^call service set ' "$root/ubus.log" | tail -n1 | sed -e 's/^call service set //' -e "s#$root##g"
}

# json_equal GOT_FILE WANT_FILE ROOT: the JSON equals the fixture, the
# content hashes in the names of TLS files' copies written as *.
json_equal() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, re, sys
text = open(sys.argv[1], encoding="utf-8").read().replace(sys.argv[3], "")
got = json.loads(re.sub(r"(tls-[a-z-]+-)[0-9a-f]{16}(\.pem)", r"\1*\2", text))
want = json.load(open(sys.argv[2], encoding="utf-8"))
if got != want:
    print("generated JSON differs from " + sys.argv[2])
    print("got:  " + json.dumps(got, sort_keys=True))
    print("want: " + json.dumps(want, sort_keys=True))
    sys.exit(1)
PY
}

# expect_service NAME PYTHON: PYTHON, given the last service definition as
# `svc` and its one instance as `inst`, sets `errors`.
expect_service() {
	local name=$1
	service "$name" >"$(router_dir "$name")/service.json"
	python3 - "$(router_dir "$name")/service.json" "$2" <<'PY' || {
import json, sys
text = open(sys.argv[1]).read()
if not text.strip():
    sys.exit("no `ubus call service set` was made")
svc = json.loads(text)
instances = list(svc["instances"].values())
inst = instances[0] if len(instances) == 1 else None
errors = []
exec(sys.argv[2])
if errors:
    print(json.dumps(svc, indent=1, sort_keys=True))
    sys.exit("\n".join(errors))
PY
		sed 's/^/  log: /' "$(router_dir "$name")/logger.log"
		return 1
	}
}

# expect_log NAME PATTERN...: each grep pattern matches a logger line.
expect_log() {
	local log bad=0
	log=$(router_dir "$1")/logger.log
	shift
	for p in "$@"; do
		grep -q -- "$p" "$log" || {
			echo "nothing logged matching: $p"
			bad=1
		}
	done
	[ "$bad" = 0 ] || sed 's/^/  log: /' "$log"
	[ "$bad" = 0 ]
}

expect_ubus() {
	grep -qxF -- "$2" "$(router_dir "$1")/ubus.log" || {
		echo "procd did not: $2"
		sed 's/^/  ubus: /' "$(router_dir "$1")/ubus.log"
		return 1
	}
}

test_install() {
	local root
	root=$(router_dir install)
	new_router install
	opkg_install install "$(ipk_path "$X86_64")" >"$root/out" 2>&1 || {
		cat "$root/out"
		return 1
	}
	grep -q '^dockermand:' "$root/etc/passwd" || {
		echo "no user dockermand was created"
		return 1
	}
	grep -q '^docker:.*dockermand' "$root/etc/group" || {
		echo "dockermand is not in the docker group"
		return 1
	}
	[ -L "$root/etc/rc.d/S99dockermand" ] || {
		echo "not enabled"
		return 1
	}
	expect_ubus install "procd: start instance1"
}

# The service the shipped config gives: the whole procd definition.
test_default_service() {
	router_with default "$UCI_DEFAULT" && init default start || return 1
	json_equal "$(conf_of default)" "$FIXTURES/default.json" "$(router_dir default)" || return 1
	expect_service default '
conf = "/var/etc/dockermand/dockermand.json"
want = {
    "command": ["/usr/bin/dockermand", "--config", conf], "file": [conf],
    "reload_signal": 1, "term_timeout": 12, "respawn": ["3600", "5", "5"],
    "limits": {"nofile": "576 576"}, "stdout": True, "stderr": True, "no_new_privs": True,
    "user": "dockermand", "group": "docker",
    "jail": {"name": "dockermand", "log": True, "ubus": True, "ronly": True,
             "mount": {"/usr/bin/dockermand": "0", "/var/etc/dockermand": "0", "/bin/ubus": "0", "/var/run": "0"}},
}
for k, v in want.items():
    if inst.get(k) != v:
        errors.append(f"{k}: got {inst.get(k)!r}, want {v!r}")
extra = set(inst) - set(want)
if extra:
    errors.append(f"unexpected parameters {sorted(extra)}")
triggers = [[t[0], t[1][1][2], t[1][2]] for t in svc["triggers"]]
if triggers != [["config.change", "dockermand", ["run_script", "/etc/init.d/dockermand", "reload"]],
                ["interface.*", "lan", ["run_script", "/etc/init.d/dockermand", "reload"]]]:
    errors.append(f"triggers {triggers}")
'
}

test_default_is_safe() {
	python3 - "$(conf_of default)" <<'PY'
import ipaddress, json, sys
c = json.load(open(sys.argv[1]))
errors = []
if c.get("insecure", False) is not False:
    errors.append("insecure is on")
auth = c.get("auth", {})
if auth.get("tokens") or auth.get("users"):
    errors.append("ships credentials")
if auth.get("rpcd", {}).get("enabled") is not True:
    errors.append("rpcd login is not enabled")
for l in c.get("listen", []):
    host = l.rsplit(":", 1)[0].strip("[]")
    if l.startswith("unix:") or ipaddress.ip_address(host).is_loopback or host == "192.168.1.1":
        continue
    errors.append(f"listens on {l}, neither loopback nor the LAN")
if c.get("policy", {}).get("allow_host_network"):
    errors.append("allows host networking")
sys.exit("\n".join(errors) or None)
PY
}

# Every option; a unix listener outside /var/run/dockermand needs root.
test_full() {
	router_with full "$FIXTURES/full.uci" && init full start || return 1
	json_equal "$(conf_of full)" "$FIXTURES/full.json" "$(router_dir full)" || return 1
	expect_service full '
want = {"respawn": ["600", "10", "3"], "term_timeout": 5, "limits": {"nofile": "352 352"}}
for k, v in want.items():
    if inst.get(k) != v:
        errors.append(f"{k}: got {inst.get(k)!r}, want {v!r}")
if "user" in inst:
    errors.append("runs as a user though a unix listener lies outside /var/run/dockermand")
if [t[1][1][2] for t in svc["triggers"]][1:] != ["lan", "guest", "wan"]:
    errors.append(f"interface triggers {svc}")
' || return 1
	expect_log full "daemon.notice dockermand: running as root: the unix listener unix:/var/run/dockermand.sock" \
		"network wan has no IPv4 address"
}

# uci set writes options; each list option takes both forms.
test_list_forms() {
	router_with lists "$FIXTURES/option-lists.uci" && init lists start || return 1
	json_equal "$(conf_of lists)" "$FIXTURES/option-lists.json" "$(router_dir lists)" || return 1
	expect_service lists '
if [t[1][1][2] for t in svc["triggers"]][1:] != ["lan", "guest"]:
    errors.append(f"interface triggers {svc}")
if inst["jail"]["mount"].get("/var/run/dockermand") != "1":
    errors.append("the unix listener directory is not mounted writable")
if inst.get("user") != "dockermand":
    errors.append("not unprivileged")
'
}

test_minimal() {
	router_with minimal "$FIXTURES/minimal.uci" && init minimal start || return 1
	json_equal "$(conf_of minimal)" "$FIXTURES/minimal.json" "$(router_dir minimal)" || return 1
	# Nothing configured: procd.sh fills in the system defaults.
	expect_service minimal '
if inst.get("respawn") != ["3600", "5", "5"]:
    errors.append(f"respawn {inst}")
if inst.get("term_timeout") != 12 or inst.get("limits") != {"nofile": "1920 1920"}:
    errors.append("term_timeout or fd limit do not fit the daemon defaults")
'
}

# Values the issue found reaching the JSON: none is applied, each is logged
# as an error, and after a reboot (an empty /var, procd without the
# service) nothing starts.
test_malformed_first_start() {
	local root
	root=$(router_dir malformed)
	router_with malformed "$FIXTURES/malformed.uci" || return 1
	rm -rf "$root/var/etc" "$root/state"/*
	init malformed start
	[ ! -e "$(conf_of malformed)" ] || {
		echo "a config was written"
		return 1
	}
	expect_ubus malformed "procd: nothing" || return 1
	expect_log malformed \
		"daemon.err dockermand: option main.respawn_threshold 'abc' is not a valid uinteger" \
		"daemon.err dockermand: option main.max_connections '0' is not a valid range(1,65536)" \
		"daemon.err dockermand: option main.session_ttl 'soon' is not a valid range" \
		"daemon.err dockermand: unknown log level \"loud\"" \
		"daemon.err dockermand: listen \"lan:2375\"" \
		"daemon.err dockermand: unix mode \"999\"" \
		"daemon.err dockermand: bind_dirs: \"opt/docker\"" \
		"daemon.err dockermand: user \"deploy\": password hash" \
		"daemon.err dockermand: token 'ci' needs an option role" \
		"daemon.err dockermand: configuration not applied .*not starting"
}

# A mistake after a good start: the running daemon keeps the last good file.
test_malformed_keeps_last_good() {
	local root before
	root=$(router_dir keep)
	router_with keep "$FIXTURES/minimal.uci" && init keep start || return 1
	before=$(cat "$(conf_of keep)")
	cp "$FIXTURES/malformed.uci" "$root/etc/config/dockermand"
	: >"$root/ubus.log"
	init keep reload
	expect_eq "config after a bad reload" "$(cat "$(conf_of keep)")" "$before" || return 1
	expect_ubus keep "procd: nothing" || return 1
	expect_log keep "configuration not applied .*keeps the last good one"
}

# reload is start again: procd signals HUP when the file changed, and the
# triggers follow the interface list.
test_reload() {
	local root
	root=$(router_dir reload)
	router_with reload "$UCI_DEFAULT" && init reload start || return 1
	sed -i "s/option max_consoles '8'/option max_consoles '3'/; s/list interface 'lan'/list interface 'lan'\n\tlist interface 'guest'/" \
		"$root/etc/config/dockermand"
	: >"$root/ubus.log"
	init reload reload || return 1
	expect_ubus reload "procd: signal 1 instance1" || return 1
	grep -q '"max_consoles":3' "$(conf_of reload)" || {
		echo "the new value is not in the JSON"
		return 1
	}
	expect_service reload '
if [t[1][1][2] for t in svc["triggers"]][1:] != ["lan", "guest"]:
    errors.append("the added interface got no trigger")
' || return 1
	: >"$root/ubus.log"
	init reload reload || return 1
	expect_ubus reload "procd: nothing"
}

# option ui '0' turns the web UI off: the daemon is given "ui": false.
test_ui_off() {
	local root
	root=$(router_dir uioff)
	router_with uioff "$UCI_DEFAULT" || return 1
	sed -i "s/#option ui '1'/option ui '0'/" "$root/etc/config/dockermand"
	init uioff start || return 1
	grep -q '"ui":false' "$(conf_of uioff)" || {
		echo "ui 0 is not in the JSON"
		return 1
	}
}

test_disabled() {
	local root
	root=$(router_dir disabled)
	router_with disabled "$UCI_DEFAULT" && init disabled start || return 1
	cp "$FIXTURES/disabled.uci" "$root/etc/config/dockermand"
	init disabled reload || return 1
	expect_ubus disabled "procd: stop instance1"
}

# An upgrade (the package as release 2) keeps a service the user disabled
# disabled, and restarts it; a changed config stays, the new default
# beside it.
test_upgrade_disabled() {
	local root
	root=$(router_dir upgrade)
	router_with upgrade "$UCI_DEFAULT" && init upgrade disable || return 1
	rerelease "$(ipk_path "$X86_64")" "$scratch/upgrade.ipk" 2 || return 1
	echo "# changed" >>"$root/etc/config/dockermand"
	: >"$root/ubus.log"
	opkg_install upgrade "$scratch/upgrade.ipk" >"$root/upgrade.out" 2>&1 || {
		cat "$root/upgrade.out"
		return 1
	}
	grep -q "^Upgrading dockermand on root from ${PKG_VERSION} to ${VERSION}-r2" "$root/upgrade.out" || {
		echo "not upgraded:"
		cat "$root/upgrade.out"
		return 1
	}
	if ! grep -qx '# changed' "$root/etc/config/dockermand" ||
		! cmp -s "$root/etc/config/dockermand-opkg" "$UCI_DEFAULT"; then
		echo "the changed config was not kept, with the new one as dockermand-opkg"
		return 1
	fi
	if [ -e "$root/etc/rc.d/S99dockermand" ]; then
		echo "the upgrade enabled the disabled service"
		return 1
	fi
	expect_ubus upgrade "call service delete {\"name\":\"dockermand\"}" || return 1
	grep -q '^call service set ' "$root/ubus.log" || {
		echo "not started again after the upgrade"
		return 1
	}
}

test_remove() {
	local root
	root=$(router_dir remove)
	router_with remove "$UCI_DEFAULT" || return 1
	opkg remove remove dockermand >"$root/remove.out" 2>&1 || {
		cat "$root/remove.out"
		return 1
	}
	[ ! -e "$root/etc/rc.d/S99dockermand" ] || {
		echo "still enabled after removal"
		return 1
	}
	if [ -e "$root/usr/bin/dockermand" ] || [ -e "$root/etc/init.d/dockermand" ]; then
		echo "files left after removal"
		return 1
	fi
	expect_ubus remove "call service delete {\"name\":\"dockermand\"}"
}

# make_socket PATH GID MODE
make_socket() {
	python3 - "$@" <<'PY'
import os, socket, sys
path, gid, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3], 8)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chown(path, 0, gid)
os.chmod(path, mode)
PY
}

# dockerd's socket decides: root:docker 0660 lets the user in, anything
# else needs root, and the log says why.
test_user_choice() {
	local root gid
	[ "$(id -u)" = 0 ] || {
		echo "needs root to give the socket a group"
		return 1
	}
	root=$(router_dir socket)
	router_with socket "$UCI_DEFAULT" || return 1
	gid=$(awk -F: '$1 == "docker" { print $3 }' "$root/etc/group")
	make_socket "$root/var/run/docker.sock" "$gid" 660 && init socket start || return 1
	expect_service socket '
if inst.get("user") != "dockermand" or inst.get("group") != "docker":
    errors.append("not run as dockermand:docker")
' || return 1
	grep -qx "chgrp docker $root/var/etc/dockermand $root/var/etc/dockermand/dockermand.json" "$root/owner.log" || {
		echo "the config is not made readable to the docker group"
		cat "$root/owner.log"
		return 1
	}
	rm "$root/var/run/docker.sock"
	make_socket "$root/var/run/docker.sock" 0 600 && init socket start || return 1
	expect_service socket '
if "user" in inst:
    errors.append("runs as a user that cannot reach the socket")
' || return 1
	expect_log socket "running as root: .*/var/run/docker.sock is group root, mode srw-------"
}

# daemon_accepts NAME: the daemon installed on router NAME (the x86_64
# build) starts with the JSON the init script wrote for it (its listeners
# replaced, by flag, with a free loopback port).
daemon_accepts() {
	local conf bin log pid i
	conf=$(conf_of "$1")
	bin=$(router_dir "$1")/usr/bin/dockermand
	log=$(router_dir "$1")/daemon.log
	[ -f "$conf" ] || {
		echo "no $conf"
		return 1
	}
	"$bin" --config "$conf" --listen 127.0.0.1:0 </dev/null >"$log" 2>&1 &
	pid=$!
	for i in $(seq 100); do
		if grep -q "listening on" "$log"; then
			kill "$pid"
			wait "$pid" 2>/dev/null
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		wait "$pid" 2>/dev/null
		echo "the daemon did not report listening within $((i / 10)) s:"
	else
		wait "$pid"
		echo "the daemon refused the config (exit status $?):"
	fi
	sed 's/^/  /' "$log"
	return 1
}

# --- TLS ----------------------------------------------------------------------------

# make_certs DIR: a CA (ca.crt), a server certificate for 127.0.0.1 and
# router.lan (server.crt), and client certificates laptop (CN laptop), ci
# (CN ci, subjectAltName DNS:ci.example.net) and stranger, all signed by
# the CA, each with its key (NAME.key, PEM PKCS#8).
make_certs() {
	local d=$1 name ext
	mkdir -p "$d" || return 1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-subj /CN=dockermand-test-ca -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null || return 1
	for name in server laptop ci stranger; do
		case $name in
		server) ext="subjectAltName=IP:127.0.0.1,DNS:router.lan\nextendedKeyUsage=serverAuth" ;;
		ci) ext="subjectAltName=DNS:ci.example.net\nextendedKeyUsage=clientAuth" ;;
		*) ext="extendedKeyUsage=clientAuth" ;;
		esac
		printf '%b\n' "$ext" >"$d/$name.ext"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
			-keyout "$d/$name.key" -out "$d/$name.csr" 2>/dev/null &&
			openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
				-days 2 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null || return 1
	done
}

# start_daemon NAME LISTEN: the daemon installed on router NAME with the JSON
# its init script wrote, listening on LISTEN (port 0) instead; sets
# DAEMON_PID and DAEMON_PORT, the port it reports listening on.
start_daemon() {
	local root log i
	root=$(router_dir "$1")
	log=$root/daemon.log
	# Gone first: the background daemon truncates it only once it runs, and
	# the last daemon's port must not be read meanwhile.
	rm -f "$log"
	"$root/usr/bin/dockermand" --config "$(conf_of "$1")" --listen "$2" </dev/null >"$log" 2>&1 &
	DAEMON_PID=$!
	for i in $(seq 100); do
		DAEMON_PORT=$(sed -n 's#.*listening on [a-z]*://127\.0\.0\.1:\([0-9]*\).*#\1#p' "$log" 2>/dev/null)
		[ -z "$DAEMON_PORT" ] || return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "the daemon did not start listening:"
	sed 's/^/  /' "$log"
	stop_daemon
	return 1
}

stop_daemon() {
	[ -z "$DAEMON_PID" ] || kill "$DAEMON_PID" 2>/dev/null
	[ -z "$DAEMON_PID" ] || wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}

# tls_get PORT PATH VERIFY [CERT KEY]: GET PATH over TLS, with the client
# certificate CERT if given; VERIFY is the CA file to verify the server
# with, or a certificate file the server's must be (DER or PEM). Prints
# the status code and the body.
tls_get() {
	python3 - "$@" <<'PY'
import socket, ssl, sys
port, path, verify = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cert = sys.argv[4:6]
raw = open(verify, "rb").read()
pinned = None
if b"-----BEGIN" in raw and b"PRIVATE" not in raw and raw.count(b"-----BEGIN") == 1 and "ca" not in verify.rsplit("/", 1)[-1]:
    pinned = ssl.PEM_cert_to_DER_cert(raw.decode())
elif b"-----BEGIN" not in raw:
    pinned = raw
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.set_alpn_protocols(["http/1.1"])
if pinned is None:
    ctx.load_verify_locations(verify)
else:
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
if cert:
    ctx.load_cert_chain(*cert)
with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
        if pinned is not None and t.getpeercert(binary_form=True) != pinned:
            sys.exit("the server showed another certificate")
        if t.selected_alpn_protocol() != "http/1.1":
            sys.exit(f"ALPN {t.selected_alpn_protocol()!r}")
        t.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := t.recv(65536):
            data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b" ")[1].decode(), body.decode())
PY
}

# tls_router NAME: a router with the x86_64 package, the test certificates
# in /etc/dockermand (the server's key as PKCS#8 DER, its certificate with
# the CA's after it) and fixtures/tls.uci, started.
tls_router() {
	local root d
	root=$(router_dir "$1")
	router_with "$1" "$FIXTURES/tls.uci" || return 1
	d=$scratch/certs
	[ -f "$d/ca.crt" ] || make_certs "$d" || return 1
	mkdir -p "$root/etc/dockermand"
	cat "$d/server.crt" "$d/ca.crt" >"$root/etc/dockermand/server.crt"
	openssl pkcs8 -topk8 -nocrypt -in "$d/server.key" -outform der -out "$root/etc/dockermand/server.key" &&
		cp "$d/ca.crt" "$root/etc/dockermand/ca.crt" && init "$1" start
}

# TLS settings reach the JSON: tls:// listeners (listed, and on the
# networks' addresses on tls_port, none without TLS there with port 0),
# the files as PEM copies the unprivileged daemon may read, client auth,
# handshake limits, certificate roles; procd runs it as before.
test_tls() {
	local root d copy
	root=$(router_dir tls)
	tls_router tls || return 1
	json_equal "$(conf_of tls)" "$FIXTURES/tls.json" "$root" || return 1
	d=$scratch/certs
	copy=$(ls "$root"/var/etc/dockermand/tls-cert-*.pem) || return 1
	cmp "$copy" "$root/etc/dockermand/server.crt" || {
		echo "the certificate's copy is not the PEM file"
		return 1
	}
	copy=$(ls "$root"/var/etc/dockermand/tls-key-*.pem) || return 1
	if ! head -n1 "$copy" | grep -qx -- '-----BEGIN PRIVATE KEY-----' ||
		! cmp <(openssl pkey -in "$copy" -outform der) <(openssl pkey -in "$d/server.key" -outform der); then
		echo "the key's copy is not the DER key as PEM PKCS#8"
		return 1
	fi
	# Unprivileged: the daemon's group reads it.
	[ "$(stat -c %a "$copy")" = 640 ] || {
		echo "the key's copy has mode $(stat -c %a "$copy")"
		return 1
	}
	grep -q "^chgrp docker $copy$" "$root/owner.log" || {
		echo "the key's copy is not given to the daemon's group"
		cat "$root/owner.log"
		return 1
	}
	expect_service tls '
if inst.get("user") != "dockermand" or inst["jail"]["mount"].get("/var/etc/dockermand") != "0":
    errors.append("not unprivileged, or the copies are not in the jail")
if inst["file"] != ["/var/etc/dockermand/dockermand.json"]:
    errors.append("file " + repr(inst["file"]))
'
}

# The daemon serves TLS with that JSON: certificates get their roles (CN,
# subjectAltName, the default role), and with client auth optional a
# client without one gets 401.
test_tls_serves() {
	local d=$scratch/certs got bad=0 who
	[ -f "$(conf_of tls)" ] || tls_router tls || return 1
	start_daemon tls tls://127.0.0.1:0 || return 1
	for who in 'laptop:200 {"name":"cert:laptop","role":"operator"}' \
		'ci:200 {"name":"cert:ci.example.net","role":"deployer"}' \
		'stranger:200 {"name":"cert:stranger","role":"read"}'; do
		got=$(tls_get "$DAEMON_PORT" /_dockermand/whoami "$d/ca.crt" "$d/${who%%:*}.crt" "$d/${who%%:*}.key" 2>&1)
		expect_eq "whoami with ${who%%:*}'s certificate" "$got" "${who#*:}" || bad=1
	done
	got=$(tls_get "$DAEMON_PORT" /_dockermand/whoami "$d/ca.crt" 2>&1)
	expect_eq "whoami without a certificate" "${got%% *}" 401 || bad=1
	stop_daemon
	[ "$bad" = 0 ]
}

# A new certificate in the same file: reload gives the daemon a new copy
# (procd sends SIGHUP for the changed JSON) and drops the old one.
test_tls_reload() {
	local root old new
	root=$(router_dir tls)
	[ -f "$(conf_of tls)" ] || tls_router tls || return 1
	old=$(ls "$root"/var/etc/dockermand/tls-cert-*.pem)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=renewed \
		-keyout "$root/etc/dockermand/server.key" -out "$root/etc/dockermand/server.crt" 2>/dev/null || return 1
	: >"$root/ubus.log"
	init tls reload || return 1
	expect_ubus tls "procd: signal 1 instance1" || return 1
	new=$(ls "$root"/var/etc/dockermand/tls-cert-*.pem)
	if [ "$new" = "$old" ] || ! cmp -s "$new" "$root/etc/dockermand/server.crt" ||
		! grep -qF "${new##*/}" "$(conf_of tls)"; then
		echo "the JSON does not name a copy of the new certificate ($old, now $new)"
		return 1
	fi
}

# uhttpd_files ROOT KIND: /etc/uhttpd.crt and /etc/uhttpd.key as uhttpd's
# px5g writes them (DER), with a KIND key: rsa (PKCS#1), ec (SEC1) or
# pkcs8.
uhttpd_files() {
	local root=$1 tmp=$scratch/uhttpd-$2
	mkdir -p "$tmp" || return 1
	case $2 in
	rsa) openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=OpenWrt -keyout "$tmp/key.pem" -out "$tmp/crt.pem" 2>/dev/null &&
		openssl rsa -in "$tmp/key.pem" -traditional -outform der -out "$root/etc/uhttpd.key" 2>/dev/null ;;
	ec) openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=OpenWrt -keyout "$tmp/key.pem" -out "$tmp/crt.pem" 2>/dev/null &&
		openssl ec -in "$tmp/key.pem" -outform der -out "$root/etc/uhttpd.key" 2>/dev/null ;;
	pkcs8) openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -days 2 -subj /CN=OpenWrt -keyout "$tmp/key.pem" -out "$tmp/crt.pem" 2>/dev/null &&
		openssl pkcs8 -topk8 -nocrypt -in "$tmp/key.pem" -outform der -out "$root/etc/uhttpd.key" ;;
	esac || return 1
	openssl x509 -in "$tmp/crt.pem" -outform der -out "$root/etc/uhttpd.crt"
}

# No certificate configured: uhttpd's DER certificate and key are used, the
# daemon serves that certificate, whatever the key's kind.
test_tls_uhttpd() {
	local root kind got bad=0
	root=$(router_dir uhttpd)
	router_with uhttpd "$FIXTURES/tls-uhttpd.uci" || return 1
	for kind in rsa ec pkcs8; do
		uhttpd_files "$root" "$kind" && init uhttpd start || return 1
		expect_log uhttpd "daemon.notice dockermand: TLS listeners use uhttpd's certificate" || return 1
		grep -q '"tls":{"cert":"[^"]*/tls-cert-[0-9a-f]*\.pem","key":"[^"]*/tls-key-[0-9a-f]*\.pem"}' "$(conf_of uhttpd)" || {
			echo "$kind: no TLS files in $(cat "$(conf_of uhttpd)")"
			return 1
		}
		start_daemon uhttpd tls://127.0.0.1:0 || return 1
		# rpcd logins: no credential, 401, over uhttpd's certificate.
		got=$(tls_get "$DAEMON_PORT" /_dockermand/whoami "$root/etc/uhttpd.crt" 2>&1)
		expect_eq "$kind key: whoami over uhttpd's certificate" "${got%% *}" 401 || {
			printf '%s\n' "$got" | tail -n 3
			sed 's/^/  daemon: /' "$root/daemon.log"
			bad=1
		}
		stop_daemon
	done
	# A key that is not the certificate's: --check-config loads the files,
	# so the daemon keeps the last good ones.
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -outform der \
		-out "$root/etc/uhttpd.key" 2>/dev/null || return 1
	init uhttpd reload
	expect_log uhttpd "daemon.err dockermand: tls certificate .*/etc/uhttpd.crt with key .*/etc/uhttpd.key: keys may not be consistent" \
		"configuration not applied .*keeps the last good one" || bad=1
	[ "$bad" = 0 ]
}

# TLS mistakes are logged, none applied, and after a reboot nothing starts.
test_tls_malformed() {
	local root
	root=$(router_dir tlsbad)
	router_with tlsbad "$FIXTURES/tls-malformed.uci" || return 1
	mkdir -p "$root/etc/dockermand" && printf 'not a certificate' >"$root/etc/dockermand/garbage.pem" || return 1
	rm -rf "$root/var/etc" "$root/state"/*
	init tlsbad start
	if [ -e "$(conf_of tlsbad)" ] || [ -n "$(ls "$root"/var/etc/dockermand/tls-* 2>/dev/null)" ]; then
		echo "a config or a TLS copy was written"
		return 1
	fi
	expect_ubus tlsbad "procd: nothing" || return 1
	expect_log tlsbad \
		"daemon.err dockermand: option main.tls_max_handshakes '0' is not a valid range(1,65536)" \
		"daemon.err dockermand: tls:// listeners need both option tls_cert and option tls_key" \
		"daemon.err dockermand: option tls_key '.*/etc/dockermand/missing.key': no such file, or empty" \
		"daemon.err dockermand: option tls_client_ca '.*/etc/dockermand/garbage.pem': neither PEM nor DER" \
		"daemon.err dockermand: cert section cfg[0-9a-f]* needs an option cn or san" \
		"daemon.err dockermand: cert 'nameless' needs an option role" \
		"daemon.err dockermand: each auth.certs entry needs exactly one of cn and san" \
		"daemon.err dockermand: tls client auth \"sometimes\": expected required or optional" \
		"daemon.err dockermand: configuration not applied .*not starting"
}

# --- dockermand and dockermand-tls ------------------------------------------------

# split_pack: the x86_64 pair packed as for MIPS, for the tests below.
split_pack() {
	[ -f "$(split_ipk dockermand-tls)" ] ||
		TLS_SPLIT_TARGETS=$X86_64 IPK_OUT_DIR=$SPLIT_DIR bash "$CROSS_DIR/ipk.sh" "$X86_64" >/dev/null
}

test_split_pack() {
	split_pack || return 1
	if [ ! -f "$(split_ipk dockermand-tls)" ] || [ ! -f "$(split_ipk dockermand)" ]; then
		echo "no x86_64 dockermand-tls and dockermand pair in $SPLIT_DIR"
		return 1
	fi
	tar -xzOf "$(split_ipk dockermand)" ./data.tar.gz | tar -xzO ./usr/bin/dockermand | cmp - "$(built_binary "$X86_64")" &&
		tar -xzOf "$(split_ipk dockermand-tls)" ./data.tar.gz | tar -xzO ./usr/bin/dockermand | cmp - "$(built_tls_binary "$X86_64")"
}

# The plain build refuses a tls:// listener, and the log says why.
test_plain_refuses_tls() {
	split_pack || return 1
	router_with plain "$FIXTURES/tls-uhttpd.uci" "$(split_ipk dockermand)" || return 1
	rm -rf "$(router_dir plain)/var/etc" "$(router_dir plain)/state"/*
	uhttpd_files "$(router_dir plain)" ec && init plain start
	[ ! -e "$(conf_of plain)" ] || {
		echo "a config was written"
		return 1
	}
	expect_log plain "daemon.err dockermand: cannot listen on tls://127.0.0.1:2376: this dockermand was built without TLS"
}

# From dockermand to dockermand-tls with luci-app-dockermand installed, as
# the README says: opkg refuses to install one over the other and to remove
# dockermand on which the LuCI app depends; removed with --force-depends
# (a changed config stays), dockermand-tls installs, provides dockermand to
# the LuCI app, keeps the changed config (the package's beside it), and is
# enabled and started. Then back again.
test_switch() {
	local root out
	root=$(router_dir switch)
	split_pack || return 1
	router_with switch "$UCI_DEFAULT" "$(split_ipk dockermand)" || return 1
	opkg switch install "$SPLIT_DIR/luci-app-dockermand_${PKG_VERSION}_all.ipk" >"$root/out" 2>&1 || {
		cat "$root/out"
		return 1
	}
	sed -i "s/option max_consoles '8'/option max_consoles '4'/" "$root/etc/config/dockermand"
	if out=$(opkg switch install "$(split_ipk dockermand-tls)" 2>&1) || [ "${out#*conflict with dockermand-tls}" = "$out" ]; then
		echo "dockermand-tls installed over dockermand: $out"
		return 1
	fi
	if out=$(opkg switch remove dockermand 2>&1) || [ "${out#*is depended upon by packages}" = "$out" ]; then
		echo "dockermand removed under luci-app-dockermand: $out"
		return 1
	fi
	: >"$root/ubus.log"
	if ! out=$(opkg switch remove dockermand --force-depends 2>&1) ||
		[ "${out#*Not deleting modified conffile}" = "$out" ]; then
		echo "remove --force-depends: $out"
		return 1
	fi
	expect_ubus switch "call service delete {\"name\":\"dockermand\"}" || return 1
	out=$(opkg switch install "$(split_ipk dockermand-tls)" 2>&1) || {
		echo "install dockermand-tls: $out"
		return 1
	}
	if ! grep -q "option max_consoles '4'" "$root/etc/config/dockermand" ||
		! cmp -s "$root/etc/config/dockermand-opkg" "$UCI_DEFAULT"; then
		echo "the changed config was not kept, with the package's as dockermand-opkg"
		return 1
	fi
	if [ ! -L "$root/etc/rc.d/S99dockermand" ] || ! grep -q '"max_consoles":4' "$(conf_of switch)"; then
		echo "not enabled, or not started with the kept config"
		return 1
	fi
	expect_ubus switch "procd: start instance1" || return 1
	cmp -s "$root/usr/bin/dockermand" "$(built_tls_binary "$X86_64")" || {
		echo "the binary is not the TLS build"
		return 1
	}
	# Provides: dockermand: the LuCI app depends on dockermand-tls now.
	if out=$(opkg switch remove dockermand-tls 2>&1) || [ "${out#*luci-app-dockermand}" = "$out" ]; then
		echo "dockermand-tls removed under luci-app-dockermand: $out"
		return 1
	fi
	if out=$(opkg switch install "$(split_ipk dockermand)" 2>&1) || [ "${out#*conflict with dockermand}" = "$out" ]; then
		echo "dockermand installed over dockermand-tls: $out"
		return 1
	fi
	if ! out=$(opkg switch remove dockermand-tls --force-depends 2>&1) ||
		! out=$(opkg switch install "$(split_ipk dockermand)" 2>&1); then
		echo "back to dockermand: $out"
		return 1
	fi
	cmp -s "$root/usr/bin/dockermand" "$(built_binary "$X86_64")" &&
		grep -q "option max_consoles '4'" "$root/etc/config/dockermand"
}

# --- size budget ------------------------------------------------------------

test_budget() {
	local bin size
	bin=$(built_binary mipsel-unknown-linux-musl)
	[ -f "$bin" ] || {
		echo "$bin missing"
		return 1
	}
	size=$(stat -c %s "$bin")
	[ "$size" -le "$MIPSEL_BUDGET_BYTES" ] || {
		echo "mipsel binary is $size bytes, budget $MIPSEL_BUDGET_BYTES"
		return 1
	}
}

# A MIPS main package carries TLS only within the TLS budget.
test_tls_budget() {
	local t bin size bad=0
	for t in "${ALL_TARGETS[@]}"; do
		if ! has_tls_budget "$t" || tls_split "$t"; then
			continue
		fi
		bin=$(built_tls_binary "$t")
		[ -f "$bin" ] || {
			echo "$bin missing"
			return 1
		}
		size=$(stat -c %s "$bin")
		[ "$size" -le "$MIPS_TLS_BUDGET_BYTES" ] || {
			echo "$t: its dockermand carries a TLS binary of $size bytes, budget $MIPS_TLS_BUDGET_BYTES"
			bad=1
		}
	done
	[ "$bad" = 0 ]
}

# --- run --------------------------------------------------------------------

check "ipk: an ar package is refused, as opkg refuses it" test_ar_refused
for t in "${ALL_TARGETS[@]}"; do
	a=$(openwrt_arch "$t")
	packages=(dockermand)
	! tls_split "$t" || packages+=(dockermand-tls)
	for p in "${packages[@]}"; do
		check "ipk $p $a: gzip'd tar of debian-binary, data.tar.gz, control.tar.gz as ipkg-build packs" \
			test_ipk_format "$(ipk_path "$t" "$p")" "$t-$p"
		check "ipk $p $a: files, modes, root ownership, conffiles" test_ipk_layout "$t" "$p"
		check "ipk $p $a: control fields" test_ipk_control "$t" "$p"
		check "ipk $p $a: binary is the $t $(ipk_build "$t" "$p") build (ELF $(elf_expect "$t"))" \
			test_ipk_binary "$t" "$p"
		check "ipk $p $a: standard postinst/prerm" test_ipk_scripts "$t-$p" "$p"
	done
done
check "ipk: dockermand-tls for ${TLS_SPLIT_TARGETS-the MIPS targets} only" test_tls_packages
check "ipk luci-app-dockermand: gzip'd tar as ipkg-build packs" test_ipk_format "$LUCI_IPK" luci
check "ipk luci-app-dockermand: files and control fields" test_luci_ipk
check "ipk luci-app-dockermand: standard postinst/prerm" test_ipk_scripts luci luci-app-dockermand
check "luci: menu and ACL JSON" test_luci_json
check "luci: views under node with LuCI stand-ins" test_luci_views
check "SDK Makefiles: version, source, licence, profile, rust-package layout" test_makefile
check "SDK Makefile under make: variants, cargo features, install dirs and files per architecture" \
	test_makefile_variants
check "mipsel binary within the ${MIPSEL_BUDGET_BYTES}-byte budget" test_budget
check "MIPS main packages carry TLS only within the ${MIPS_TLS_BUDGET_BYTES}-byte budget" test_tls_budget

check "router: opkg install creates the user, enables and starts" test_install
check "router: procd service of the shipped config" test_default_service
check "router: shipped config gives safe JSON" test_default_is_safe
check "router: every option; root for a unix listener outside its dir" test_full
check "router: list options in list and option form" test_list_forms
check "router: empty main section gives daemon defaults" test_minimal
check "router: malformed values are logged, nothing starts" test_malformed_first_start
check "router: malformed values keep the last good config" test_malformed_keeps_last_good
check "router: reload signals HUP and follows the interfaces" test_reload
check "router: option ui '0' turns the web UI off" test_ui_off
check "router: disabling in UCI stops the service" test_disabled
check "router: upgrade keeps a disabled service disabled" test_upgrade_disabled
check "router: removal stops and disables" test_remove
check "router: user dockermand when the socket's group allows, else root" test_user_choice
for name in default full lists minimal; do
	check "router: the daemon runs with the JSON of $name" daemon_accepts "$name"
done
check "router: TLS listeners, files, client auth and certificate roles reach the JSON" test_tls
check "router: the daemon serves TLS with it: certificates get their roles" test_tls_serves
check "router: a renewed certificate reaches the daemon on reload" test_tls_reload
check "router: uhttpd's DER certificate and key (RSA, EC, PKCS#8) when none is set; a mismatched key is refused" test_tls_uhttpd
check "router: TLS mistakes are logged, nothing starts" test_tls_malformed
check "packing: an x86_64 dockermand and dockermand-tls pair as on MIPS" test_split_pack
check "router: the plain build refuses a tls:// listener" test_plain_refuses_tls
check "router: dockermand to dockermand-tls and back, as opkg allows" test_switch

# Run from the script's directory, where its `# shellcheck source=` paths are.
lint() {
	(cd "$(dirname "$1")" && shellcheck -x "$(basename "$1")")
}
check "shellcheck openwrt/files/dockermand.init" lint "$INIT"
for f in "$CROSS_DIR"/*.sh "$TEST_DIR"/*.sh "$TEST_DIR"/rc.common "$TEST_DIR"/ubus "$TEST_DIR"/logger \
	"$TEST_DIR"/validate_data; do
	check "shellcheck ${f#"$CROSS_DIR"/}" lint "$f"
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
