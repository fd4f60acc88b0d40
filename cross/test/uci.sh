# shellcheck shell=dash
# Test stand-ins for the UCI helpers of OpenWrt's /lib/functions.sh, with the
# same calling conventions: config_load, config_get, config_get_bool,
# config_foreach, config_list_foreach. config_load reads
# $UCI_CONFIG_DIR/<package> (as `uci -c` would) through uci2sh.py.

CONFIG_SECTIONS=""
_UCI_VARS=""

config_load() {
	local file="${UCI_CONFIG_DIR:?UCI_CONFIG_DIR not set}/$1" vars
	[ -f "$file" ] || {
		echo "uci stand-in: no file $file" >&2
		return 1
	}
	vars=$(python3 "${STANDIN_DIR:?}/uci2sh.py" "$file") || return 1
	# Forget the previously loaded package, as config_load does.
	# shellcheck disable=SC2086
	[ -z "$_UCI_VARS" ] || unset $_UCI_VARS
	eval "$vars"
}

# config_get VAR SECTION OPTION [DEFAULT], or config_get SECTION OPTION (prints)
config_get() {
	if [ $# -le 2 ]; then
		eval "printf '%s\n' \"\${CONFIG_${1}_${2}:-}\""
		return 0
	fi
	case "$2$3" in
	*[!A-Za-z0-9_]*)
		eval "$1=\"\${4:-}\""
		return 0
		;;
	esac
	eval "$1=\"\${CONFIG_${2}_${3}:-\${4:-}}\""
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

# config_list_foreach SECTION OPTION FUNCTION [ARGS...]
config_list_foreach() {
	local _lf_s="$1" _lf_o="$2" _lf_fn="$3" _lf_len _lf_i=1 _lf_v
	shift 3
	eval "_lf_len=\${CONFIG_${_lf_s}_${_lf_o}_LENGTH:-0}"
	while [ "$_lf_i" -le "$_lf_len" ]; do
		eval "_lf_v=\${CONFIG_${_lf_s}_${_lf_o}_ITEM${_lf_i}}"
		"$_lf_fn" "$_lf_v" "$@"
		_lf_i=$((_lf_i + 1))
	done
}
