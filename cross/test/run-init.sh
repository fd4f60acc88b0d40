#!/bin/sh
# Runs one function of the dockermand init script outside OpenWrt, the way
# /etc/rc.common would, with the stand-ins of this directory in place of
# OpenWrt's shell libraries. Meant for busybox sh (OpenWrt's shell).
#
#   run-init.sh INIT_SCRIPT ROOT FUNCTION
#
# ROOT is a scratch directory used as the router's file system: the stand-in
# jshn.sh and network.sh are installed under it and the init script's
# /usr/share/libubox/, /lib/functions/ and /var/etc/ paths are pointed into
# it. The caller sets UCI_CONFIG_DIR, PROCD_LOG, TEST_NETWORK_<net> and
# TEST_PROCD_RUNNING.

STANDIN_DIR=$(cd "$(dirname "$0")" && pwd)
init=$1
root=$2
fn=$3

mkdir -p "$root/usr/share/libubox" "$root/lib/functions" "$root/etc/init.d" || exit 1
cp "$STANDIN_DIR/jshn.sh" "$root/usr/share/libubox/jshn.sh" || exit 1
cp "$STANDIN_DIR/network.sh" "$root/lib/functions/network.sh" || exit 1
sed -e "s#/usr/share/libubox/#$root/usr/share/libubox/#g" \
	-e "s#/lib/functions/#$root/lib/functions/#g" \
	-e "s#/var/etc/#$root/var/etc/#g" \
	"$init" >"$root/etc/init.d/dockermand" || exit 1

# shellcheck source=uci.sh
. "$STANDIN_DIR/uci.sh"
# shellcheck source=procd.sh
. "$STANDIN_DIR/procd.sh"
# shellcheck source=/dev/null
. "$root/etc/init.d/dockermand"

"$fn"
