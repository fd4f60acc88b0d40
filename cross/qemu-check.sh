#!/usr/bin/env bash
# Runs every built router binary's self-test under qemu-user with a CPU like
# the routers' (MIPS 24Kc, Cortex-A7, Cortex-A53; x86_64 runs natively):
# both builds of each target, plain and TLS (whose self-test must include a
# TLS check: a loopback handshake with a client certificate), and that each
# build is the one its name says: a tls:// listener is refused by the plain
# build for want of TLS, and not for that reason by the TLS build.
#
#   cross/qemu-check.sh [TARGET...]     (default: all five targets)
#
# Needs the binaries from cross/build.sh. Installs qemu-user-static when it
# is missing. Prints PASS/FAIL per binary, then "N passed, N failed"; exits
# non-zero if any failed. Each run's output is kept in
# cross/out/qemu/<target>[-tls].log.
#
# Environment: QEMU_CHECK_ARGS (arguments given to the binary, default
# --selftest), QEMU_CHECK_TIMEOUT (seconds per run, default 300).
set -uo pipefail

# shellcheck source=common.sh
. "$(dirname "$0")/common.sh"

select_targets "$@"

read -r -a check_args <<<"${QEMU_CHECK_ARGS:---selftest}"
timeout_secs=${QEMU_CHECK_TIMEOUT:-300}

need_cmd timeout coreutils
for t in "${targets[@]}"; do
	arch=$(qemu_arch "$t")
	if [ "$arch" != "$(uname -m)" ]; then
		need_cmd "qemu-$arch-static" qemu-user-static
	fi
done

log_dir=$OUT_DIR/qemu
mkdir -p "$log_dir"
# The builds tell themselves apart on a config with a tls:// listener.
probe=$log_dir/tls-listener.json
printf '{"listen": ["tls://127.0.0.1:0"]}\n' >"$probe"
passed=0
failed=0

# run_check TARGET VARIANT BINARY LOG: the binary's check under qemu.
run_check() {
	local t=$1 variant=$2 bin=$3 log_file=$4 arch cpu runner how start rc took why probe_out
	arch=$(qemu_arch "$t")
	cpu=$(qemu_cpu "$t")
	if [ ! -x "$bin" ]; then
		echo "FAIL $t $variant: $bin not built (run cross/build.sh $t)"
		failed=$((failed + 1))
		return
	fi
	if [ "$arch" = "$(uname -m)" ]; then
		runner=()
		how=native
	else
		runner=("qemu-$arch-static" -cpu "$cpu")
		how="qemu-$arch-static -cpu $cpu"
	fi
	start=$SECONDS
	timeout -k 10 "$timeout_secs" "${runner[@]}" "$bin" "${check_args[@]}" </dev/null >"$log_file" 2>&1
	rc=$?
	took=$((SECONDS - start))
	why=
	if [ "$rc" = 124 ]; then
		why="timed out after ${timeout_secs}s"
	elif [ "$rc" != 0 ]; then
		why="exit status $rc"
	elif [ "$variant" = tls ] && [ "${check_args[*]}" = --selftest ] && ! grep -qiE '^ok +.*tls' "$log_file"; then
		why="the TLS build's self-test has no TLS check"
	else
		probe_out=$(timeout -k 10 "$timeout_secs" "${runner[@]}" "$bin" --check-config "$probe" </dev/null 2>&1)
		printf '%s\n' "--- --check-config with a tls:// listener:" "$probe_out" >>"$log_file"
		case "$variant:$probe_out" in
		plain:*"built without TLS"* | tls:*"needs tls.cert"*) ;;
		plain:*) why="the plain build does not refuse a tls:// listener for want of TLS" ;;
		*) why="the TLS build does not take a tls:// listener" ;;
		esac
	fi
	if [ -z "$why" ]; then
		echo "PASS $t $variant ($how, ${check_args[*]}, ${took}s)"
		passed=$((passed + 1))
	else
		echo "FAIL $t $variant ($how, ${check_args[*]}): $why; last lines of $log_file:"
		tail -n 15 "$log_file" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
}

for t in "${targets[@]}"; do
	run_check "$t" plain "$(built_binary "$t")" "$log_dir/$t.log"
	run_check "$t" tls "$(built_tls_binary "$t")" "$log_dir/$t-tls.log"
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
