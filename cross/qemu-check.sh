#!/usr/bin/env bash
# Runs every built router binary's self-test under qemu-user with a CPU like
# the routers' (MIPS 24Kc, Cortex-A7, Cortex-A53; x86_64 runs natively).
#
#   cross/qemu-check.sh [TARGET...]     (default: all five targets)
#
# Needs the binaries from cross/build.sh. Installs qemu-user-static when it
# is missing. Prints PASS/FAIL per target, then "N passed, N failed"; exits
# non-zero if any target failed. Each run's output is kept in
# cross/out/qemu/<target>.log.
#
# Environment: QEMU_CHECK_ARGS (arguments given to the binary, default
# --selftest), QEMU_CHECK_TIMEOUT (seconds per target, default 300).
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
passed=0
failed=0
for t in "${targets[@]}"; do
	bin=$(built_binary "$t")
	arch=$(qemu_arch "$t")
	cpu=$(qemu_cpu "$t")
	log_file=$log_dir/$t.log
	if [ ! -x "$bin" ]; then
		echo "FAIL $t: $bin not built (run cross/build.sh $t)"
		failed=$((failed + 1))
		continue
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
	if [ "$rc" = 0 ]; then
		echo "PASS $t ($how, ${check_args[*]}, ${took}s)"
		passed=$((passed + 1))
	else
		if [ "$rc" = 124 ]; then
			why="timed out after ${timeout_secs}s"
		else
			why="exit status $rc"
		fi
		echo "FAIL $t ($how, ${check_args[*]}): $why; last lines of $log_file:"
		tail -n 15 "$log_file" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
