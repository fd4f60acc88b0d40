# shellcheck shell=dash
# Test stand-in for OpenWrt's /lib/functions/procd.sh. The procd_* calls
# are recorded and procd_close_service turns them (standin.py procd) into
# the JSON message procd.sh builds, sent with `ubus call service set`;
# parameter types, respawn defaults, jail flags and mounts and trigger forms
# are procd.sh's. uci_validate_section and uci_load_validate are procd.sh's,
# with validate_data under $STANDIN_ROOT.

# Like procd.sh, which init scripts rely on for jshn.
# shellcheck source=jshn.sh
. "$STANDIN_ROOT/usr/share/libubox/jshn.sh"

_PROCD_OPS=""

_procd_record() {
	printf '%s\037' "$@" >>"$_PROCD_OPS"
	printf '\036' >>"$_PROCD_OPS"
}

procd_open_service() {
	_PROCD_OPS=$(mktemp)
	_procd_record open_service "$@"
}

procd_close_service() {
	local method="${1:-set}" msg
	service_triggers
	msg=$(python3 "$STANDIN_DIR/standin.py" procd "$_PROCD_OPS") || return 1
	rm -f "$_PROCD_OPS"
	ubus call service "$method" "$msg"
}

procd_open_instance() { _procd_record open_instance "$@"; }
procd_close_instance() { _procd_record close_instance; }
procd_set_param() { _procd_record set_param "$@"; }
procd_append_param() { _procd_record append_param "$@"; }
procd_add_jail() { _procd_record add_jail "$@"; }
procd_add_jail_mount() { _procd_record add_jail_mount "$@"; }
procd_add_jail_mount_rw() { _procd_record add_jail_mount_rw "$@"; }

# initscript is set by rc.common.
_procd_script_name() {
	# shellcheck disable=SC2154
	basename "$initscript"
}

procd_add_reload_trigger() {
	local file
	for file in "$@"; do
		_procd_record config_trigger config.change "$file" "/etc/init.d/$(_procd_script_name)" reload
	done
}

procd_add_reload_interface_trigger() {
	_procd_record interface_trigger "interface.*" "$1" "/etc/init.d/$(_procd_script_name)" reload
}

procd_add_interface_trigger() {
	local event="$1" iface="$2"
	shift 2
	_procd_record interface_trigger "$event" "$iface" "$@"
}

procd_kill() {
	ubus call service delete "{\"name\":\"$1\"}"
}

procd_send_signal() {
	ubus call service signal "{\"name\":\"$1\",\"signal\":\"${3:-}\"}"
}

uci_validate_section() {
	local _package="$1" _type="$2" _name="$3" _result _error
	shift 3
	_result=$("$STANDIN_ROOT/sbin/validate_data" "$_package" "$_type" "$_name" "$@" 2>/dev/null)
	_error=$?
	eval "$_result"
	[ "$_error" = 0 ] || "$STANDIN_ROOT/sbin/validate_data" "$_package" "$_type" "$_name" "$@" 1>/dev/null
	return "$_error"
}

uci_load_validate() {
	local _package="$1" _type="$2" _name="$3" _function="$4" _option _result
	shift 4
	for _option in "$@"; do
		eval "local ${_option%%:*}"
	done
	uci_validate_section "$_package" "$_type" "$_name" "$@"
	_result=$?
	[ -n "$_function" ] || return "$_result"
	eval "$_function \"\$_name\" \"\$_result\""
}
