#!/usr/bin/env bash
# Packs the binaries of cross/build.sh, and the LuCI app, into OpenWrt
# packages without the SDK:
#
#   cross/ipk.sh [TARGET...]     (default: all five targets)
#
# writes cross/out/dockermand_<version>-r<release>_<openwrt-arch>.ipk per
# target and cross/out/luci-app-dockermand_<version>-r<release>_all.ipk.
# dockermand ships the TLS build (cross/out/<target>/dockermand-tls), except
# on MIPS (tls_split in common.sh), where it ships the plain build and
# dockermand-tls_<version>-r<release>_<arch>.ipk the TLS one: the same files
# and scripts, `Provides: dockermand` (which luci-app-dockermand depends on)
# and each package `Conflicts:` with the other, as the SDK Makefile's two
# variants declare them.
#
# The layout is the one the SDK's ipkg-build writes and opkg reads (opkg has
# read nothing else since 2017): a gzip'd tar, GNU format, numeric owner 0,
# names sorted, `gzip -n`, holding ./debian-binary ("2.0"), ./data.tar.gz
# and ./control.tar.gz packed the same way. Installed-Size is the size of the
# unpacked data tar, as ipkg-build computes it. The maintainer scripts are
# the SDK's standard ones: they hand over to default_postinst/default_prerm
# of /lib/functions.sh, which enable a service only on first install
# (PKG_UPGRADE) and do nothing but enable while a firmware image is built
# (IPKG_INSTROOT). Everything is stamped with the last commit's time, so the
# same inputs give the same bytes.
#
# Environment: IPK_OUT_DIR (where the packages go, default cross/out),
# TLS_SPLIT_TARGETS (see tls_split in common.sh).
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

select_targets "$@"

need_cmd gzip gzip

OPENWRT_DIR=$CROSS_DIR/openwrt
FILES_DIR=$OPENWRT_DIR/files
LUCI_DIR=$OPENWRT_DIR/luci-app-dockermand
version=$(package_version)
[ -n "$version" ] || die "no version in Cargo.toml or no PKG_RELEASE in openwrt/Makefile"
license=$(cargo_field license)
summary=$(cargo_field description)
mtime=${SOURCE_DATE_EPOCH:-$(git -C "$REPO_DIR" log -1 --format=%ct 2>/dev/null || echo 0)}

umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# tar_gz DIR OUT [PATH...]: DIR's PATHs (default: all of it) as ipkg-build
# packs them.
tar_gz() {
	local dir=$1 out=$2
	shift 2
	[ $# -gt 0 ] || set -- .
	tar -C "$dir" --format=gnu --numeric-owner --owner=0 --group=0 --sort=name \
		--mtime="@$mtime" -cf - "$@" | gzip -9n >"$out"
}

# write_maintainer_scripts CONTROL_DIR: the SDK's standard postinst and prerm.
write_maintainer_scripts() {
	cat >"$1/postinst" <<'SCRIPT'
#!/bin/sh
# Standard OpenWrt postinst: default_postinst adds the Require-User
# accounts, runs postinst-pkg, and enables (first install only) and starts
# the init scripts; in an image build it only enables them.
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
SCRIPT
	cat >"$1/prerm" <<'SCRIPT'
#!/bin/sh
# Standard OpenWrt prerm: default_prerm stops the init scripts and, unless
# this is an upgrade, disables them.
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
SCRIPT
	chmod 0755 "$1/postinst" "$1/prerm"
}

# pack STAGE: STAGE/data and STAGE/CONTROL (control without Installed-Size)
# into IPK_DIR/<package>_<version>_<arch>.ipk.
pack() {
	local stage=$1 pkg arch size ipk
	pkg=$(sed -n 's/^Package: //p' "$stage/CONTROL/control")
	arch=$(sed -n 's/^Architecture: //p' "$stage/CONTROL/control")
	tar_gz "$stage/data" "$stage/data.tar.gz"
	size=$(gzip -dc "$stage/data.tar.gz" | wc -c)
	sed -i "s/^Architecture: .*/&\nInstalled-Size: $size/" "$stage/CONTROL/control"
	chmod 0644 "$stage/CONTROL/control"
	[ ! -f "$stage/CONTROL/conffiles" ] || chmod 0644 "$stage/CONTROL/conffiles"
	tar_gz "$stage/CONTROL" "$stage/control.tar.gz"
	printf '2.0\n' >"$stage/debian-binary"
	ipk=$IPK_DIR/${pkg}_${version}_${arch}.ipk
	rm -f "$ipk"
	tar_gz "$stage" "$ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
	printf '%-62s %8d bytes\n' "${ipk#"$CROSS_DIR"/}" "$(stat -c %s "$ipk")"
}

IPK_DIR=${IPK_OUT_DIR:-$OUT_DIR}
mkdir -p "$IPK_DIR"
rm -f "$IPK_DIR"/*.ipk

# pack_daemon TARGET PACKAGE BINARY: the gateway's package PACKAGE
# (dockermand or dockermand-tls) for TARGET, shipping BINARY.
pack_daemon() {
	local target=$1 pkg=$2 bin=$3 stage data relations build
	[ -f "$bin" ] || die "$bin missing: run cross/build.sh $target first"
	stage=$work/$target-$pkg
	data=$stage/data
	install -d -m 0755 "$data/usr/bin" "$data/etc/init.d" "$data/etc/config" \
		"$data/usr/share/acl.d" "$stage/CONTROL"
	install -m 0755 "$bin" "$data/usr/bin/dockermand"
	install -m 0755 "$FILES_DIR/dockermand.init" "$data/etc/init.d/dockermand"
	# The config may hold password hashes: root only, like the SDK's INSTALL_CONF.
	install -m 0600 "$FILES_DIR/dockermand.config" "$data/etc/config/dockermand"
	install -m 0644 "$FILES_DIR/dockermand.acl.json" "$data/usr/share/acl.d/dockermand.json"
	# The fields and their order are package-pack.mk's.
	if [ "$pkg" = dockermand-tls ]; then
		relations="Conflicts: dockermand
Provides: dockermand"
		build=" This is dockermand built with TLS listeners (tls://ADDR:PORT,
 client certificates): install it instead of dockermand; it takes the
 same configuration."
	else
		relations="Conflicts: dockermand-tls"
		if [ "$bin" = "$(built_tls_binary "$target")" ]; then
			build=" This build has TLS listeners (tls://ADDR:PORT, client certificates)."
		else
			build=" This build has no TLS listeners; dockermand-tls has them."
		fi
	fi
	cat >"$stage/CONTROL/control" <<CONTROL
Package: $pkg
Version: $version
Depends: libc
$relations
Source: feeds/packages/utils/dockermand
SourceName: dockermand
License: $license
LicenseFiles: LICENSE
Section: utils
Require-User: dockermand:dockermand:docker
SourceDateEpoch: $mtime
Maintainer: dockermand maintainers
Architecture: $(openwrt_arch "$target")
Description: $summary
 dockermand sits between Docker clients and dockerd's API socket: it
 checks who is calling (router logins, API tokens), applies a policy
 and relays the API. dockerd may run on this router (install dockerd)
 or on another host (option upstream 'tcp://HOST:PORT').
$build
CONTROL
	echo /etc/config/dockermand >"$stage/CONTROL/conffiles"
	write_maintainer_scripts "$stage/CONTROL"
	# ubusd reads ACL files when it starts and on SIGHUP.
	cat >"$stage/CONTROL/postinst-pkg" <<'SCRIPT'
[ -n "${IPKG_INSTROOT}" ] || { pid=$(pidof ubusd) && kill -HUP "$pid"; }
exit 0
SCRIPT
	pack "$stage"
}

for target in "${targets[@]}"; do
	pack_daemon "$target" dockermand "$(main_package_binary "$target")"
	if tls_split "$target"; then
		pack_daemon "$target" dockermand-tls "$(built_tls_binary "$target")"
	fi
done

# The LuCI app: architecture independent.
stage=$work/luci
data=$stage/data
install -d -m 0755 "$data/www/luci-static/resources/view/dockermand" \
	"$data/usr/share/luci/menu.d" "$data/usr/share/rpcd/acl.d" "$stage/CONTROL"
install -m 0644 "$LUCI_DIR"/htdocs/luci-static/resources/view/dockermand/*.js \
	"$data/www/luci-static/resources/view/dockermand/"
install -m 0644 "$LUCI_DIR/root/usr/share/luci/menu.d/luci-app-dockermand.json" "$data/usr/share/luci/menu.d/"
install -m 0644 "$LUCI_DIR/root/usr/share/rpcd/acl.d/luci-app-dockermand.json" "$data/usr/share/rpcd/acl.d/"
cat >"$stage/CONTROL/control" <<CONTROL
Package: luci-app-dockermand
Version: $version
Depends: libc, luci-base, dockermand
Source: feeds/luci/applications/luci-app-dockermand
SourceName: luci-app-dockermand
License: $license
Section: luci
SourceDateEpoch: $mtime
Maintainer: dockermand maintainers
Architecture: all
Description: LuCI support for dockermand
 Settings of the dockermand gateway, and a Docker page under Services
 that signs in to dockermand with the LuCI session.
CONTROL
write_maintainer_scripts "$stage/CONTROL"
# New menu entries and ACLs: drop LuCI's caches and let rpcd re-read its ACLs.
cat >"$stage/CONTROL/postinst-pkg" <<'SCRIPT'
[ -n "${IPKG_INSTROOT}" ] || {
	rm -f /tmp/luci-indexcache.*
	rm -rf /tmp/luci-modulecache/
	/etc/init.d/rpcd reload
}
exit 0
SCRIPT
pack "$stage"
