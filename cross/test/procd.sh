# shellcheck shell=dash
# Test stand-ins for the procd helpers (/lib/functions/procd.sh) and the
# rc.common start/stop an init script may call. Every call is appended, one
# line with its arguments, to $PROCD_LOG. procd_running answers from
# $TEST_PROCD_RUNNING (1: the instance runs).

_procd_log() {
	printf '%s\n' "$*" >>"${PROCD_LOG:?PROCD_LOG not set}"
}

procd_open_instance() { _procd_log procd_open_instance "$@"; }
procd_close_instance() { _procd_log procd_close_instance "$@"; }
procd_set_param() { _procd_log procd_set_param "$@"; }
procd_append_param() { _procd_log procd_append_param "$@"; }
procd_add_reload_trigger() { _procd_log procd_add_reload_trigger "$@"; }
procd_add_interface_trigger() { _procd_log procd_add_interface_trigger "$@"; }
procd_send_signal() { _procd_log procd_send_signal "$@"; }
procd_running() {
	_procd_log procd_running "$@"
	[ "${TEST_PROCD_RUNNING:-0}" = 1 ]
}

# rc.common with USE_PROCD: start runs start_service, stop kills the instances.
start() {
	_procd_log start "$@"
	start_service "$@"
}
stop() { _procd_log stop "$@"; }
