#!/usr/bin/env bash
# Packs the binaries of cross/build.sh into installable OpenWrt packages
# without the SDK:
#
#   cross/ipk.sh [TARGET...]     (default: all five targets)
#
# writes cross/out/dockermand_<version>_<openwrt-arch>.ipk. The package is
# an ar archive of debian-binary, control.tar.gz and data.tar.gz, in that
# order (opkg reads this format as well as the gzipped-tar one that the
# OpenWrt SDK writes). It installs /usr/bin/dockermand,
# /etc/init.d/dockermand and /etc/config/dockermand (a conffile). Files are
# owned by root and stamped with the last commit's time, so the same inputs
# give the same package bytes.
set -euo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

select_targets "$@"

need_cmd ar binutils
need_cmd gzip gzip

PKG=dockermand
FILES_DIR=$CROSS_DIR/openwrt/files
version=$(cargo_version)
[ -n "$version" ] || die "no version in Cargo.toml"
license=$(sed -n '/^\[package\]/,/^\[/s/^license *= *"\([^"]*\)".*/\1/p' "$REPO_DIR/Cargo.toml" | head -n1)
summary=$(sed -n '/^\[package\]/,/^\[/s/^description *= *"\([^"]*\)".*/\1/p' "$REPO_DIR/Cargo.toml" | head -n1)
mtime=${SOURCE_DATE_EPOCH:-$(git -C "$REPO_DIR" log -1 --format=%ct 2>/dev/null || echo 0)}

umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Reproducible gzipped tar of directory $1's contents into file $2.
pack_dir() {
	tar -C "$1" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="@$mtime" --format=gnu -cf - . | gzip -9n >"$2"
}

for target in "${targets[@]}"; do
	bin=$(built_binary "$target")
	[ -f "$bin" ] || die "$bin missing: run cross/build.sh $target first"
	arch=$(openwrt_arch "$target")
	dir=$work/$target
	data=$dir/data
	control=$dir/control

	install -d -m 0755 "$data/usr/bin" "$data/etc/init.d" "$data/etc/config" "$control"
	install -m 0755 "$bin" "$data/usr/bin/dockermand"
	install -m 0755 "$FILES_DIR/dockermand.init" "$data/etc/init.d/dockermand"
	# The config may hold password hashes: root only, like the SDK's INSTALL_CONF.
	install -m 0600 "$FILES_DIR/dockermand.config" "$data/etc/config/dockermand"

	installed_size=$(find "$data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
	cat >"$control/control" <<EOF
Package: $PKG
Version: $version
Depends: libc, dockerd
Source: cross/openwrt
SourceName: $PKG
License: $license
Section: utils
SourceDateEpoch: $mtime
Maintainer: dockermand maintainers
Architecture: $arch
Installed-Size: $installed_size
Description: $summary
 dockermand sits between Docker clients and dockerd's unix socket: it
 checks who is calling, applies a policy and relays the API.
EOF
	echo /etc/config/dockermand >"$control/conffiles"
	cat >"$control/postinst" <<'EOF'
#!/bin/sh
# Enable and start the service, except when building a firmware image.
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/dockermand enable
/etc/init.d/dockermand start
exit 0
EOF
	cat >"$control/prerm" <<'EOF'
#!/bin/sh
# Stop and disable the service before its files go.
[ -n "$IPKG_INSTROOT" ] && exit 0
/etc/init.d/dockermand stop
/etc/init.d/dockermand disable
exit 0
EOF
	chmod 0644 "$control/control" "$control/conffiles"
	chmod 0755 "$control/postinst" "$control/prerm"

	printf '2.0\n' >"$dir/debian-binary"
	pack_dir "$control" "$dir/control.tar.gz"
	pack_dir "$data" "$dir/data.tar.gz"
	touch -d "@$mtime" "$dir/debian-binary" "$dir/control.tar.gz" "$dir/data.tar.gz"

	ipk=$OUT_DIR/${PKG}_${version}_${arch}.ipk
	rm -f "$ipk"
	# D: deterministic (zero timestamps and owners) ar headers.
	(cd "$dir" && ar rcD "$ipk" debian-binary control.tar.gz data.tar.gz)
	printf '%-48s %8d bytes  (%s)\n' "${ipk#"$CROSS_DIR"/}" "$(stat -c %s "$ipk")" "$target"
done
