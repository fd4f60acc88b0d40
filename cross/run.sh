#!/usr/bin/env bash
# The router build pipeline, as CI runs it:
#   1. cross/build.sh          all five targets (fails over the size budget)
#   2. cross/qemu-check.sh     each binary's --selftest under qemu-user
#   3. cross/ipk.sh            one .ipk per architecture, and the LuCI app
#   4. cross/test-packaging.sh the packages on a stand-in router, LuCI, shellcheck
# Installs what it needs on a fresh Debian machine and reuses the caches of
# earlier runs (cross/.venv, cross/.cache, cross/target).
#
# Ends with one "N passed, N failed" line adding up steps 2 and 4 (plus one
# failure for a failed build or packing step); exits non-zero on any failure.
set -uo pipefail

dir=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

passed=0
failed=0

# Adds the counts of the "N passed, N failed" line at the end of log $1.
count() {
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		return
	fi
	read -r p _ f _ <<<"$line"
	passed=$((passed + p))
	failed=$((failed + ${f%,}))
}

finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}

start=$SECONDS
echo "=== build (cross/build.sh)"
if ! bash "$dir/build.sh"; then
	echo "build failed"
	failed=$((failed + 1))
	finish
fi
echo "=== build took $((SECONDS - start)) s"

echo "=== qemu self-tests (cross/qemu-check.sh)"
bash "$dir/qemu-check.sh" | tee "$logs/qemu"
count "$logs/qemu"

echo "=== packages (cross/ipk.sh)"
if ! bash "$dir/ipk.sh"; then
	echo "packing failed"
	failed=$((failed + 1))
	finish
fi

echo "=== packaging tests (cross/test-packaging.sh)"
bash "$dir/test-packaging.sh" | tee "$logs/packaging"
count "$logs/packaging"

echo "=== cross/run.sh took $((SECONDS - start)) s"
finish
