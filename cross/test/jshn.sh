# shellcheck shell=dash
# Test stand-in for OpenWrt's /usr/share/libubox/jshn.sh: the same json_*
# calls, building the JSON text in shell variables. Stricter than the real
# one: a non-numeric int, a boolean other than 0/1, an empty key in an
# object or an unbalanced close makes json_dump fail.

json_init() {
	_J_OUT="{"
	_J_STACK="o"
	_J_FIRST="1"
	_J_ERR=""
}

_json_str() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g')"
}

# Separator and, inside an object, the key.
_json_key() {
	case "$_J_FIRST" in
	1*) ;;
	*) _J_OUT="$_J_OUT," ;;
	esac
	_J_FIRST="0${_J_FIRST#?}"
	case "$_J_STACK" in
	o*)
		[ -n "$1" ] || _J_ERR="${_J_ERR}empty key in an object; "
		_J_OUT="$_J_OUT$(_json_str "$1"):"
		;;
	esac
}

json_add_string() {
	_json_key "$1"
	_J_OUT="$_J_OUT$(_json_str "$2")"
}

json_add_int() {
	case "$2" in
	'' | *[!0-9]*) _J_ERR="${_J_ERR}json_add_int $1 '$2' is not a number; " ;;
	esac
	_json_key "$1"
	_J_OUT="$_J_OUT$2"
}

json_add_boolean() {
	local v
	case "$2" in
	0) v=false ;;
	1) v=true ;;
	*)
		_J_ERR="${_J_ERR}json_add_boolean $1 '$2' is not 0 or 1; "
		v=null
		;;
	esac
	_json_key "$1"
	_J_OUT="$_J_OUT$v"
}

json_add_object() {
	_json_key "$1"
	_J_OUT="$_J_OUT{"
	_J_STACK="o$_J_STACK"
	_J_FIRST="1$_J_FIRST"
}

json_add_array() {
	_json_key "$1"
	_J_OUT="${_J_OUT}["
	_J_STACK="a$_J_STACK"
	_J_FIRST="1$_J_FIRST"
}

json_close_object() {
	case "$_J_STACK" in
	o?*) ;;
	*) _J_ERR="${_J_ERR}json_close_object without an open object; " ;;
	esac
	_J_OUT="$_J_OUT}"
	_J_STACK="${_J_STACK#?}"
	_J_FIRST="${_J_FIRST#?}"
}

json_close_array() {
	case "$_J_STACK" in
	a?*) ;;
	*) _J_ERR="${_J_ERR}json_close_array without an open array; " ;;
	esac
	_J_OUT="$_J_OUT]"
	_J_STACK="${_J_STACK#?}"
	_J_FIRST="${_J_FIRST#?}"
}

json_dump() {
	[ "$_J_STACK" = o ] || _J_ERR="${_J_ERR}unclosed object or array at json_dump; "
	if [ -n "$_J_ERR" ]; then
		echo "jshn stand-in: $_J_ERR" >&2
		return 1
	fi
	printf '%s}\n' "$_J_OUT"
}
