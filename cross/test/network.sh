# shellcheck shell=dash
# Test stand-in for OpenWrt's /lib/functions/network.sh. The IPv4 addresses
# of network NAME come from $TEST_NETWORK_<NAME> (space separated).

# network_get_ipaddrs VAR NETWORK
network_get_ipaddrs() {
	local _na
	eval "_na=\${TEST_NETWORK_$2:-}"
	eval "$1=\"\$_na\""
	[ -n "$_na" ]
}
