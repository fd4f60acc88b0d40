#!/usr/bin/env bash
# Tests the router packaging:
#   - each .ipk of cross/ipk.sh: archive layout, control fields, file owners
#     and modes, and that the binary's ELF header matches the architecture;
#   - the OpenWrt package Makefile against Cargo.toml;
#   - the init script's UCI-to-JSON translation and its procd calls, run by
#     busybox sh with the stand-ins of cross/test/ for OpenWrt's libraries,
#     on the UCI files of cross/test/fixtures/ and on the shipped config;
#   - shellcheck on the init script and every cross/ script.
#
#   cross/test-packaging.sh
#
# Needs cross/build.sh and cross/ipk.sh to have run. Prints PASS/FAIL per
# check and "N passed, N failed"; exits non-zero if any check failed.
set -uo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

need_cmd ar binutils
need_cmd busybox busybox
need_cmd shellcheck shellcheck
need_cmd python3 python3

TEST_DIR=$CROSS_DIR/test
FIXTURES=$TEST_DIR/fixtures
INIT=$CROSS_DIR/openwrt/files/dockermand.init
UCI_DEFAULT=$CROSS_DIR/openwrt/files/dockermand.config
MAKEFILE=$CROSS_DIR/openwrt/Makefile
VERSION=$(cargo_version)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

passed=0
failed=0

# check NAME FUNCTION [ARGS...]: runs the function; it fails by returning
# non-zero, after printing why.
check() {
	local name=$1 out rc
	shift
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

ipk_path() { echo "$OUT_DIR/dockermand_${VERSION}_$(openwrt_arch "$1").ipk"; }

# Unpacks the ipk of target $1 into $scratch/ipk/<target>/{control,data}.
unpack_ipk() {
	local t=$1 ipk dir
	ipk=$(ipk_path "$t")
	dir=$scratch/ipk/$t
	[ -f "$ipk" ] || {
		echo "$ipk missing (run cross/ipk.sh)"
		return 1
	}
	rm -rf "$dir"
	mkdir -p "$dir/control" "$dir/data"
	(cd "$dir" && ar x "$ipk") || return 1
	tar -C "$dir/control" -xzf "$dir/control.tar.gz" || return 1
	tar -C "$dir/data" -xzf "$dir/data.tar.gz" || return 1
}

test_ipk_archive() {
	local t=$1 ipk dir members
	ipk=$(ipk_path "$t")
	dir=$scratch/ipk/$t
	unpack_ipk "$t" || return 1
	[ "$(head -c 8 "$ipk")" = '!<arch>' ] || {
		echo "not an ar archive"
		return 1
	}
	members=$(ar t "$ipk" | tr '\n' ' ')
	expect_eq "ar members, in order" "$members" "debian-binary control.tar.gz data.tar.gz " || return 1
	printf '2.0\n' | cmp - "$dir/debian-binary" || return 1
}

# listing TARBALL: "mode owner path" per entry, sorted.
listing() {
	tar --numeric-owner -tvzf "$1" | awk '{ print $1, $2, $6 }' | sort -k3
}

test_ipk_layout() {
	local t=$1 dir got want
	dir=$scratch/ipk/$t
	[ -d "$dir/data" ] || unpack_ipk "$t" || return 1
	got=$(listing "$dir/data.tar.gz")
	want=$(
		sort -k3 <<'EOF'
drwxr-xr-x 0/0 ./
drwxr-xr-x 0/0 ./etc/
drwxr-xr-x 0/0 ./etc/config/
-rw------- 0/0 ./etc/config/dockermand
drwxr-xr-x 0/0 ./etc/init.d/
-rwxr-xr-x 0/0 ./etc/init.d/dockermand
drwxr-xr-x 0/0 ./usr/
drwxr-xr-x 0/0 ./usr/bin/
-rwxr-xr-x 0/0 ./usr/bin/dockermand
EOF
	)
	expect_eq "data.tar.gz (mode owner path)" "$got" "$want" || return 1
	got=$(listing "$dir/control.tar.gz")
	want=$(
		sort -k3 <<'EOF'
drwxr-xr-x 0/0 ./
-rw-r--r-- 0/0 ./conffiles
-rw-r--r-- 0/0 ./control
-rwxr-xr-x 0/0 ./postinst
-rwxr-xr-x 0/0 ./prerm
EOF
	)
	expect_eq "control.tar.gz (mode owner path)" "$got" "$want" || return 1
	cmp "$dir/data/etc/init.d/dockermand" "$INIT" || return 1
	cmp "$dir/data/etc/config/dockermand" "$UCI_DEFAULT" || return 1
	expect_eq conffiles "$(cat "$dir/control/conffiles")" /etc/config/dockermand || return 1
}

test_ipk_control() {
	local t=$1 dir size
	dir=$scratch/ipk/$t
	[ -d "$dir/control" ] || unpack_ipk "$t" || return 1
	size=$(find "$dir/data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	python3 - "$dir/control/control" "$VERSION" "$(openwrt_arch "$t")" "$size" <<'EOF'
import sys

path, version, arch, size = sys.argv[1:]
fields, last = {}, None
for line in open(path, encoding="utf-8").read().splitlines():
    if line.startswith(" ") and last:
        fields[last] += "\n" + line
    elif ":" in line:
        last, value = line.split(":", 1)
        fields[last] = value.strip()
    else:
        sys.exit(f"bad control line {line!r}")
want = {"Package": "dockermand", "Version": version, "Architecture": arch,
        "Installed-Size": size, "License": "MIT"}
errors = [f"{k}: got {fields.get(k)!r}, want {v!r}" for k, v in want.items() if fields.get(k) != v]
deps = [d.strip() for d in fields.get("Depends", "").split(",")]
if deps != ["libc", "dockerd"]:
    errors.append(f"Depends: got {deps}, want libc, dockerd")
for k in ("Maintainer", "Description"):
    if not fields.get(k):
        errors.append(f"{k} missing")
if errors:
    sys.exit("\n".join(errors))
EOF
}

test_ipk_binary() {
	local t=$1 dir bin want got
	dir=$scratch/ipk/$t
	[ -d "$dir/data" ] || unpack_ipk "$t" || return 1
	bin=$dir/data/usr/bin/dockermand
	cmp "$bin" "$(built_binary "$t")" || return 1
	want=$(elf_expect "$t")
	got=$(elf_ident "$bin") || {
		echo "not an ELF file"
		return 1
	}
	expect_eq "ELF class, data (endianness), machine" "$got" "$want"
}

test_ipk_scripts() {
	local t=$1 dir s
	dir=$scratch/ipk/$t
	[ -d "$dir/control" ] || unpack_ipk "$t" || return 1
	if ! grep -qx '/etc/init.d/dockermand enable' "$dir/control/postinst" ||
		! grep -qx '/etc/init.d/dockermand start' "$dir/control/postinst"; then
		echo "postinst does not enable and start the service"
		return 1
	fi
	if ! grep -qx '/etc/init.d/dockermand stop' "$dir/control/prerm" ||
		! grep -qx '/etc/init.d/dockermand disable' "$dir/control/prerm"; then
		echo "prerm does not stop and disable the service"
		return 1
	fi
	# While a firmware image is built (IPKG_INSTROOT set) they do nothing.
	for s in postinst prerm; do
		IPKG_INSTROOT=$scratch/instroot busybox sh "$dir/control/$s" || {
			echo "$s failed with IPKG_INSTROOT set"
			return 1
		}
		shellcheck -s sh "$dir/control/$s" || return 1
	done
}

# --- OpenWrt package Makefile -----------------------------------------------

test_makefile() {
	local line bad=0
	expect_eq "PKG_VERSION (Cargo.toml's version)" \
		"$(sed -n 's/^PKG_VERSION:=//p' "$MAKEFILE")" "$VERSION" || bad=1
	# Literal Makefile text, $(...) included.
	# shellcheck disable=SC2016
	for line in 'include $(TOPDIR)/rules.mk' 'PKG_NAME:=dockermand' 'PKG_RELEASE:=' \
		'PKG_BUILD_DEPENDS:=rust/host' 'include ../../lang/rust/rust-package.mk' \
		'DEPENDS:=$$(RUST_ARCH_DEPENDS) +dockerd' 'define Package/dockermand/conffiles' \
		'$(eval $(call RustBinPackage,dockermand))' '$(eval $(call BuildPackage,dockermand))' \
		'./files/dockermand.init $(1)/etc/init.d/dockermand' \
		'./files/dockermand.config $(1)/etc/config/dockermand'; do
		grep -qF -- "$line" "$MAKEFILE" || {
			echo "Makefile lacks: $line"
			bad=1
		}
	done
	[ "$bad" = 0 ]
}

# --- init script ------------------------------------------------------------

# run_init NAME UCI_FILE FUNCTION [VAR=VALUE...]: runs FUNCTION of the init
# script with UCI_FILE as /etc/config/dockermand, in $scratch/init/NAME
# (root/, procd.log, stderr).
run_init() {
	local name=$1 uci=$2 fn=$3 dir
	shift 3
	dir=$scratch/init/$name
	rm -rf "$dir"
	mkdir -p "$dir/uci"
	cp "$uci" "$dir/uci/dockermand"
	: >"$dir/procd.log"
	env UCI_CONFIG_DIR="$dir/uci" PROCD_LOG="$dir/procd.log" \
		TEST_NETWORK_lan=192.168.1.1 TEST_NETWORK_guest="10.0.0.1 10.0.1.1" \
		"$@" busybox sh "$TEST_DIR/run-init.sh" "$INIT" "$dir/root" "$fn" 2>"$dir/stderr"
}

init_dir() { echo "$scratch/init/$1"; }
conf_of() { echo "$(init_dir "$1")/root/var/etc/dockermand.json"; }

# json_equal GOT_FILE WANT_FILE
json_equal() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
got, want = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:])
if got != want:
    print("generated JSON differs from " + sys.argv[2])
    print("got:  " + json.dumps(got, sort_keys=True))
    print("want: " + json.dumps(want, sort_keys=True))
    sys.exit(1)
EOF
}

# expect_procd NAME LINE...: each LINE is in the run's procd.log.
expect_procd() {
	local log line bad=0
	log=$(init_dir "$1")/procd.log
	shift
	for line in "$@"; do
		grep -qxF -- "$line" "$log" || {
			echo "procd call missing: $line"
			bad=1
		}
	done
	[ "$bad" = 0 ] || sed 's/^/  procd.log: /' "$log"
	[ "$bad" = 0 ]
}

# expect_no_procd NAME PATTERN: no procd.log line starts with PATTERN.
expect_no_procd() {
	if grep -q "^$2" "$(init_dir "$1")/procd.log"; then
		echo "unexpected procd call: $(grep "^$2" "$(init_dir "$1")/procd.log")"
		return 1
	fi
}

test_init_paths() {
	local line bad=0
	expect_eq "first line" "$(head -n1 "$INIT")" '#!/bin/sh /etc/rc.common' || bad=1
	for line in USE_PROCD=1 START=99 PROG=/usr/bin/dockermand CONF_FILE=/var/etc/dockermand.json \
		'. /usr/share/libubox/jshn.sh' '. /lib/functions/network.sh'; do
		grep -qxF -- "$line" <(sed 's/^[[:space:]]*//' "$INIT") || {
			echo "init script lacks the line: $line"
			bad=1
		}
	done
	[ "$bad" = 0 ]
}

# start_fixture NAME UCI WANT_JSON [RESPAWN]: start_service writes WANT_JSON
# (root only) and opens one procd instance running the daemon on it.
test_start() {
	local name=$1 uci=$2 want=$3 respawn=${4:-3600 5 5} conf mode
	run_init "$name" "$uci" start_service || {
		cat "$(init_dir "$name")/stderr"
		return 1
	}
	conf=$(conf_of "$name")
	[ -f "$conf" ] || {
		echo "no $conf written"
		cat "$(init_dir "$name")/stderr"
		return 1
	}
	json_equal "$conf" "$want" || return 1
	mode=$(stat -c %a "$conf")
	expect_eq "mode of the JSON file" "$mode" 600 || return 1
	expect_procd "$name" procd_open_instance \
		"procd_set_param command /usr/bin/dockermand --config $conf" \
		"procd_set_param respawn $respawn" \
		"procd_set_param stderr 1" \
		procd_close_instance
}

test_default_is_safe() {
	test_start default "$UCI_DEFAULT" "$FIXTURES/default.json" || return 1
	python3 - "$(conf_of default)" <<'EOF'
import ipaddress, json, sys
c = json.load(open(sys.argv[1]))
errors = []
if c.get("insecure", False) is not False:
    errors.append("insecure is on")
auth = c.get("auth", {})
if auth.get("tokens"):
    errors.append("ships API tokens")
if auth.get("users"):
    errors.append("ships users")
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
EOF
}

test_disabled() {
	run_init disabled "$FIXTURES/disabled.uci" start_service || return 1
	expect_no_procd disabled procd_open_instance || return 1
	[ ! -e "$(conf_of disabled)" ] || {
		echo "wrote a config while disabled"
		return 1
	}
	run_init disabled "$FIXTURES/disabled.uci" reload_service TEST_PROCD_RUNNING=1 || return 1
	expect_procd disabled stop || return 1
	expect_no_procd disabled procd_send_signal
}

test_reload_running() {
	run_init reload "$FIXTURES/full.uci" reload_service TEST_PROCD_RUNNING=1 || {
		cat "$(init_dir reload)/stderr"
		return 1
	}
	json_equal "$(conf_of reload)" "$FIXTURES/full.json" || return 1
	expect_procd reload "procd_send_signal dockermand * HUP" || return 1
	expect_no_procd reload start || return 1
	expect_no_procd reload procd_open_instance
}

test_reload_stopped() {
	run_init reload-stopped "$FIXTURES/minimal.uci" reload_service TEST_PROCD_RUNNING=0 || return 1
	expect_procd reload-stopped start procd_open_instance || return 1
	expect_no_procd reload-stopped procd_send_signal
}

test_triggers() {
	run_init triggers "$FIXTURES/full.uci" service_triggers || return 1
	expect_procd triggers "procd_add_reload_trigger dockermand" \
		"procd_add_interface_trigger interface.* lan /etc/init.d/dockermand reload" \
		"procd_add_interface_trigger interface.* guest /etc/init.d/dockermand reload" \
		"procd_add_interface_trigger interface.* wan /etc/init.d/dockermand reload"
}

test_invalid_warns() {
	local err word bad=0
	test_start invalid "$FIXTURES/invalid.uci" "$FIXTURES/invalid.json" || return 1
	err=$(cat "$(init_dir invalid)/stderr")
	for word in "option port 'http' is not a number" "option max_connections 'lots'" \
		"option idle_timeout '-5'" "option dry_run is not a boolean" \
		"token 'short' needs a sha256" "token 'nothex' needs a sha256" \
		"token section 'cfg000004' needs a name" "token 'norole' needs a role" \
		"token 'badrole': unknown role 'root'" "user 'nopass' needs a password hash" \
		"user 'plain' needs a password hash" "role section 'cfg00000a' needs a name" \
		"role 'admin' is built in" "role 'typo': unknown class 'reed'" \
		"role 'viewer' is defined twice"; do
		case "$err" in
		*"$word"*) ;;
		*)
			echo "no warning about: $word"
			bad=1
			;;
		esac
	done
	[ "$bad" = 0 ] || printf 'stderr was:\n%s\n' "$err"
	[ "$bad" = 0 ]
}

test_wan_warning() {
	grep -q "network wan has no IPv4 address" "$(init_dir full)/stderr" || {
		echo "no warning about the address-less wan interface"
		return 1
	}
}

# daemon_accepts NAME: the x86_64 build of the daemon starts with the JSON
# the init script wrote for run NAME (its listeners replaced, by flag, with
# a free loopback port), i.e. its parser and checks accept the file.
daemon_accepts() {
	local conf bin log pid i runner=()
	conf=$(conf_of "$1")
	bin=$(built_binary x86_64-unknown-linux-musl)
	log=$(init_dir "$1")/daemon.log
	[ -f "$conf" ] || {
		echo "no $conf"
		return 1
	}
	[ -x "$bin" ] || {
		echo "$bin missing (run cross/build.sh)"
		return 1
	}
	[ "$(uname -m)" = x86_64 ] || runner=(qemu-x86_64-static)
	"${runner[@]}" "$bin" --config "$conf" --listen 127.0.0.1:0 </dev/null >"$log" 2>&1 &
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

for t in "${ALL_TARGETS[@]}"; do
	a=$(openwrt_arch "$t")
	check "ipk $a: ar archive of debian-binary, control.tar.gz, data.tar.gz" test_ipk_archive "$t"
	check "ipk $a: files, modes and root ownership" test_ipk_layout "$t"
	check "ipk $a: control fields" test_ipk_control "$t"
	check "ipk $a: binary is the $t build (ELF $(elf_expect "$t"))" test_ipk_binary "$t"
	check "ipk $a: postinst/prerm" test_ipk_scripts "$t"
done
check "openwrt Makefile: version and rust-package layout" test_makefile
check "mipsel binary within the ${MIPSEL_BUDGET_BYTES}-byte budget" test_budget

check "init: rc.common/procd header and OpenWrt paths" test_init_paths
check "init: shipped config gives the expected, safe JSON" test_default_is_safe
check "init: full fixture (every option)" test_start full "$FIXTURES/full.uci" "$FIXTURES/full.json" "600 10 3"
check "init: warns about a network without address" test_wan_warning
check "init: minimal fixture gives {}" test_start minimal "$FIXTURES/minimal.uci" "$FIXTURES/minimal.json"
check "init: unix-only fixture" test_start unix-only "$FIXTURES/unix-only.uci" "$FIXTURES/unix-only.json"
check "init: invalid values are skipped with warnings" test_invalid_warns
for name in default full minimal unix-only invalid; do
	check "init: the daemon accepts the JSON of the $name run" daemon_accepts "$name"
done
check "init: disabled service starts nothing, reload stops it" test_disabled
check "init: reload rewrites the JSON and sends SIGHUP" test_reload_running
check "init: reload starts a stopped service" test_reload_stopped
check "init: reload triggers (config, interfaces)" test_triggers

# Run from the script's directory, where its `# shellcheck source=` paths are.
lint() {
	(cd "$(dirname "$1")" && shellcheck -x "$(basename "$1")")
}
check "shellcheck openwrt/files/dockermand.init" lint "$INIT"
for f in "$CROSS_DIR"/*.sh "$TEST_DIR"/*.sh; do
	check "shellcheck ${f#"$CROSS_DIR"/}" lint "$f"
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
