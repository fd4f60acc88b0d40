# shellcheck shell=dash
# Test stand-in for OpenWrt's /lib/functions.sh: the UCI helpers
# (config_load, config_get, config_get_bool, config_foreach,
# config_list_foreach) with the same variables and calling conventions, and
# default_postinst/default_prerm with the same decisions: create the
# Require-User accounts, source postinst-pkg, enable each init script on a
# first install only (PKG_UPGRADE), start it; stop it and, unless
# upgrading, disable it. Unlike the real file, every absolute path lies
# under $STANDIN_ROOT, and init scripts run through $STANDIN_ROOT/etc/rc.common
# (their `#!/bin/sh /etc/rc.common` line would name the host's).

STANDIN_DIR=${STANDIN_DIR:?STANDIN_DIR not set}
STANDIN_ROOT=${STANDIN_ROOT:?STANDIN_ROOT not set}
CONFIG_SECTIONS=""
_UCI_VARS=""

# config_load PACKAGE: reads $UCI_CONFIG_DIR/PACKAGE, as `uci -c` would.
config_load() {
	local file="${UCI_CONFIG_DIR:?UCI_CONFIG_DIR not set}/$1" vars
	[ -f "$file" ] || return 1
	vars=$(python3 "$STANDIN_DIR/standin.py" export "$file") || return 1
	# Forget the previously loaded package, as config_load does.
	# shellcheck disable=SC2086
	[ -z "$_UCI_VARS" ] || unset $_UCI_VARS
	eval "$vars"
}

# config_get VAR SECTION OPTION [DEFAULT], or config_get SECTION OPTION (prints)
config_get() {
	case "$2${3:-$1}" in
	*[!A-Za-z0-9_]*) return 0 ;;
	esac
	if [ -z "$3" ]; then
		eval "printf '%s\n' \"\${CONFIG_${1}_${2}:-}\""
	else
		eval "$1=\"\${CONFIG_${2}_${3}:-\${4:-}}\""
	fi
}

# config_get_bool VAR SECTION OPTION [DEFAULT]
config_get_bool() {
	local _b=""
	config_get _b "$2" "$3" "${4:-}"
	case "$_b" in
	1 | on | true | yes | enabled) _b=1 ;;
	0 | off | false | no | disabled) _b=0 ;;
	*) _b="${4:-}" ;;
	esac
	eval "$1=\"\$_b\""
}

# config_foreach FUNCTION [TYPE] [ARGS...]
config_foreach() {
	local _fe_fn="$1" _fe_type="${2:-}" _fe_s _fe_t
	shift
	[ $# -eq 0 ] || shift
	for _fe_s in $CONFIG_SECTIONS; do
		eval "_fe_t=\${CONFIG_${_fe_s}_TYPE:-}"
		[ -z "$_fe_type" ] || [ "$_fe_t" = "$_fe_type" ] || continue
		"$_fe_fn" "$_fe_s" "$@"
	done
}

# config_list_foreach SECTION OPTION FUNCTION [ARGS...]: list entries only;
# an `option` has no _LENGTH, and is skipped, as in OpenWrt.
config_list_foreach() {
	local _lf_s="$1" _lf_o="$2" _lf_fn="$3" _lf_len _lf_i=1 _lf_v
	shift 3
	eval "_lf_len=\${CONFIG_${_lf_s}_${_lf_o}_LENGTH:-}"
	[ -n "$_lf_len" ] || return 0
	while [ "$_lf_i" -le "$_lf_len" ]; do
		eval "_lf_v=\${CONFIG_${_lf_s}_${_lf_o}_ITEM${_lf_i}}"
		"$_lf_fn" "$_lf_v" "$@"
		_lf_i=$((_lf_i + 1))
	done
}

# busybox sh runs its own applets before anything on PATH, so the commands
# whose effects the tests observe are stood in for by functions:
# logger records (test/logger); chown and chgrp record instead of changing
# owners that exist only in the stand-in root's etc/passwd and etc/group;
# stat -c %G names groups from that etc/group.
logger() {
	"$STANDIN_DIR/logger" "$@"
}
chown() {
	printf 'chown %s\n' "$*" >>"${OWNER_LOG:?}"
}
chgrp() {
	printf 'chgrp %s\n' "$*" >>"${OWNER_LOG:?}"
}
stat() {
	local gid
	if [ "$1" = -c ] && [ "$2" = %G ]; then
		gid=$(command stat -c %g "$3") || return 1
		awk -F: -v gid="$gid" '$3 == gid { print $1; found = 1 } END { if (!found) print gid }' \
			"$STANDIN_ROOT/etc/group"
		return 0
	fi
	command stat "$@"
}

_run_init() {
	sh "$STANDIN_ROOT/etc/rc.common" "$STANDIN_ROOT$1" "$2"
}

# _add_users INFO: the Require-User accounts, "user:group:extra,groups"
# (the form this package uses): the groups are made, the user is made with
# the first as its group and is added as a member of all of them.
_add_users() {
	local tuple user groups g gid
	tuple=$(sed -n 's/^Require-User: *//p' "$1.control")
	[ -n "$tuple" ] || return 0
	user=${tuple%%:*}
	groups=$(echo "${tuple#*:}" | tr ':,' '  ')
	for g in $groups; do
		grep -q "^$g:" "$STANDIN_ROOT/etc/group" ||
			echo "$g:x:$((32768 + $(wc -l <"$STANDIN_ROOT/etc/group"))):" >>"$STANDIN_ROOT/etc/group"
	done
	gid=$(awk -F: -v g="${groups%% *}" '$1 == g { print $3 }' "$STANDIN_ROOT/etc/group")
	grep -q "^$user:" "$STANDIN_ROOT/etc/passwd" ||
		echo "$user:x:$((32768 + $(wc -l <"$STANDIN_ROOT/etc/passwd"))):$gid:$user:/var/run/$user:/bin/false" >>"$STANDIN_ROOT/etc/passwd"
	for g in $groups; do
		grep -q "^$g:.*[:,]$user\(,\|$\)" "$STANDIN_ROOT/etc/group" ||
			sed -i "/^$g:/{s/:$/:$user/;t;s/$/,$user/}" "$STANDIN_ROOT/etc/group"
	done
}

default_postinst() {
	local pkgname info i
	pkgname=$(basename "${1%.*}")
	info="$STANDIN_ROOT/usr/lib/opkg/info/$pkgname"
	_add_users "$info"
	# shellcheck source=/dev/null
	[ ! -f "$info.postinst-pkg" ] || (. "$info.postinst-pkg")
	grep -s "^/etc/init.d/" "$info.list" | while read -r i; do
		[ "$PKG_UPGRADE" = 1 ] || _run_init "$i" enable
		_run_init "$i" start
	done
	return 0
}

default_prerm() {
	local pkgname info i
	pkgname=$(basename "${1%.*}")
	info="$STANDIN_ROOT/usr/lib/opkg/info/$pkgname"
	grep -s "^/etc/init.d/" "$info.list" | while read -r i; do
		[ "$PKG_UPGRADE" = 1 ] || _run_init "$i" disable
		_run_init "$i" stop
	done
	return 0
}
