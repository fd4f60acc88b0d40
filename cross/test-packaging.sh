#!/usr/bin/env bash
# Tests the router packaging:
#   - each .ipk of cross/ipk.sh, read as opkg reads it (test/ipk.py): a
#     gzip'd tar packed as ipkg-build packs, control fields, files, owners
#     and modes, the binary's ELF header, the standard maintainer scripts;
#   - the SDK Makefiles against Cargo.toml and the feed's conventions;
#   - the package on a stand-in router (test/: rc.common, functions.sh,
#     procd.sh, validate_data, ubus, logger, with OpenWrt's names and
#     semantics): install, the service procd is given, reload, upgrade,
#     removal, malformed UCI values; busybox sh runs the scripts and the
#     real x86_64 daemon checks and runs the generated JSON;
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
trap 'rm -rf "$scratch"' EXIT

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

ipk_path() { echo "$OUT_DIR/dockermand_${PKG_VERSION}_$(openwrt_arch "$1").ipk"; }
LUCI_IPK=$OUT_DIR/luci-app-dockermand_${PKG_VERSION}_all.ipk

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
	local t=$1 dir=$scratch/ipk/$1 got want
	got=$(listing "$(data_tar "$(ipk_path "$t")")")
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
	expect_eq conffiles "$(cat "$dir/root/usr/lib/opkg/info/dockermand.conffiles")" /etc/config/dockermand
}

# control_fields IPK DIR NAME ARCH DEPENDS SECTION: the control file (of
# the package unpacked in $scratch/ipk/DIR) has the
# fields the SDK writes, Installed-Size the size of the unpacked data tar.
control_fields() {
	local ipk=$1 dir=$2 size
	shift 2
	size=$(tar -xzOf "$ipk" ./data.tar.gz | gzip -dc | wc -c)
	python3 - "$scratch/ipk/$dir/root/usr/lib/opkg/info/$1.control" "$1" "$PKG_VERSION" "$2" "$size" "$3" "$4" <<'PY'
import sys

path, name, version, arch, size, depends, section = sys.argv[1:]
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
        "License": "Apache-2.0", "SourceName": name, "Section": section, "Depends": depends}
errors = [f"{k}: got {fields.get(k)!r}, want {v!r}" for k, v in want.items() if fields.get(k) != v]
errors += [f"{k} missing" for k in ("Source", "Maintainer", "Description") if not fields.get(k)]
sys.exit("\n".join(errors) or None)
PY
}

test_ipk_control() {
	control_fields "$(ipk_path "$1")" "$1" dockermand "$(openwrt_arch "$1")" libc utils || return 1
	grep -qx 'Require-User: dockermand:dockermand:docker' \
		"$scratch/ipk/$1/root/usr/lib/opkg/info/dockermand.control" || {
		echo "no Require-User for the dockermand user in the docker group"
		return 1
	}
}

test_ipk_binary() {
	local t=$1 bin want got
	bin=$scratch/ipk/$t/root/usr/bin/dockermand
	cmp "$bin" "$(built_binary "$t")" || return 1
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
	control_fields "$LUCI_IPK" luci luci-app-dockermand all "libc, luci-base, dockermand" luci
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

# opkg_install NAME IPK [upgrade]: unpacks IPK as opkg does (keeping an
# existing /etc/config/dockermand, a conffile) and runs its scripts: on an
# upgrade, the old package's prerm and the new postinst with PKG_UPGRADE=1.
opkg_install() {
	local root info upgrade=${3:-} keep=""
	root=$(router_dir "$1")
	info=$root/usr/lib/opkg/info
	if [ -n "$upgrade" ]; then
		on_router "$1" PKG_UPGRADE=1 busybox sh "$info/dockermand.prerm" upgrade || return 1
		keep=$(cat "$root/etc/config/dockermand")
	fi
	python3 "$TEST_DIR/ipk.py" install "$2" "$root" >/dev/null || return 1
	[ -z "$keep" ] || printf '%s\n' "$keep" >"$root/etc/config/dockermand"
	point_into_router "$1"
	if [ -n "$upgrade" ]; then
		on_router "$1" PKG_UPGRADE=1 busybox sh "$info/dockermand.postinst" configure
	else
		on_router "$1" busybox sh "$info/dockermand.postinst" configure
	fi
}

# The installed scripts name OpenWrt's absolute paths; point them into the
# router's directory (the only change made to what the package installed).
point_into_router() {
	local root
	root=$(router_dir "$1")
	sed -i -e "s#\([\"' =(]\)/\(usr\|var\|etc\|lib\|sbin\|bin\|tmp\)/#\1$root/\2/#g" \
		-e "s#unix:///var/#unix://$root/var/#g" "$root/etc/init.d/dockermand"
	sed -i -e "s#\"\${IPKG_INSTROOT}/#\"$root\${IPKG_INSTROOT}/#g" \
		"$root/usr/lib/opkg/info/dockermand.postinst" "$root/usr/lib/opkg/info/dockermand.prerm"
}

# router_with NAME UCI: a router with the x86_64 package installed (its
# scripts run), then UCI as /etc/config/dockermand (its default upstream
# socket path pointed into the router); the logs start empty.
router_with() {
	local root
	root=$(router_dir "$1")
	new_router "$1"
	opkg_install "$1" "$(ipk_path "$X86_64")" >"$root/install.out" 2>&1 || {
		cat "$root/install.out"
		return 1
	}
	sed -e "s#unix:///var/#unix://$root/var/#" -e "s#unix:/var/run/dockermand/#unix:$root/var/run/dockermand/#" \
		"$2" >"$root/etc/config/dockermand"
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

# json_equal GOT_FILE WANT_FILE ROOT
json_equal() {
	python3 - "$1" "$2" "$3" <<'PY'
import json, sys
got = json.loads(open(sys.argv[1], encoding="utf-8").read().replace(sys.argv[3], ""))
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

test_disabled() {
	local root
	root=$(router_dir disabled)
	router_with disabled "$UCI_DEFAULT" && init disabled start || return 1
	cp "$FIXTURES/disabled.uci" "$root/etc/config/dockermand"
	init disabled reload || return 1
	expect_ubus disabled "procd: stop instance1"
}

# An upgrade keeps a service the user disabled disabled, and restarts it.
test_upgrade_disabled() {
	local root
	root=$(router_dir upgrade)
	router_with upgrade "$UCI_DEFAULT" && init upgrade disable || return 1
	: >"$root/ubus.log"
	opkg_install upgrade "$(ipk_path "$X86_64")" upgrade >"$root/upgrade.out" 2>&1 || {
		cat "$root/upgrade.out"
		return 1
	}
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
	on_router remove busybox sh "$root/usr/lib/opkg/info/dockermand.prerm" remove || return 1
	[ ! -e "$root/etc/rc.d/S99dockermand" ] || {
		echo "still enabled after removal"
		return 1
	}
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

# daemon_accepts NAME: the x86_64 build of the daemon starts with the JSON
# the init script wrote for router NAME (its listeners replaced, by flag,
# with a free loopback port).
daemon_accepts() {
	local conf bin log pid i
	conf=$(conf_of "$1")
	bin=$(built_binary "$X86_64")
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

# --- run --------------------------------------------------------------------

check "ipk: an ar package is refused, as opkg refuses it" test_ar_refused
for t in "${ALL_TARGETS[@]}"; do
	a=$(openwrt_arch "$t")
	check "ipk $a: gzip'd tar of debian-binary, data.tar.gz, control.tar.gz as ipkg-build packs" \
		test_ipk_format "$(ipk_path "$t")" "$t"
	check "ipk $a: files, modes, root ownership, conffiles" test_ipk_layout "$t"
	check "ipk $a: control fields" test_ipk_control "$t"
	check "ipk $a: binary is the $t build (ELF $(elf_expect "$t"))" test_ipk_binary "$t"
	check "ipk $a: standard postinst/prerm" test_ipk_scripts "$t" dockermand
done
check "ipk luci-app-dockermand: gzip'd tar as ipkg-build packs" test_ipk_format "$LUCI_IPK" luci
check "ipk luci-app-dockermand: files and control fields" test_luci_ipk
check "ipk luci-app-dockermand: standard postinst/prerm" test_ipk_scripts luci luci-app-dockermand
check "luci: menu and ACL JSON" test_luci_json
check "luci: views under node with LuCI stand-ins" test_luci_views
check "SDK Makefiles: version, source, licence, profile, rust-package layout" test_makefile
check "mipsel binary within the ${MIPSEL_BUDGET_BYTES}-byte budget" test_budget

check "router: opkg install creates the user, enables and starts" test_install
check "router: procd service of the shipped config" test_default_service
check "router: shipped config gives safe JSON" test_default_is_safe
check "router: every option; root for a unix listener outside its dir" test_full
check "router: list options in list and option form" test_list_forms
check "router: empty main section gives daemon defaults" test_minimal
check "router: malformed values are logged, nothing starts" test_malformed_first_start
check "router: malformed values keep the last good config" test_malformed_keeps_last_good
check "router: reload signals HUP and follows the interfaces" test_reload
check "router: disabling in UCI stops the service" test_disabled
check "router: upgrade keeps a disabled service disabled" test_upgrade_disabled
check "router: removal stops and disables" test_remove
check "router: user dockermand when the socket's group allows, else root" test_user_choice
for name in default full lists minimal; do
	check "router: the daemon runs with the JSON of $name" daemon_accepts "$name"
done

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
