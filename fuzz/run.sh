#!/usr/bin/env bash
# Runs every fuzz target in turn for SECONDS each (default 15).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Seeds come from fuzz/corpus/<target>/ and tests/regressions/<target>/
# (read only); what the fuzzer finds goes to fuzz/target/corpus-run/<target>/
# and crashes to fuzz/artifacts/<target>/, all outside git. Prints
# executions, exec/s and coverage per target, ends with "N passed, N failed"
# and exits non-zero if any target crashed or failed to run.
#
# Uses nightly with AddressSanitizer when a nightly toolchain is installed,
# otherwise stable without a sanitizer. Runs one target at a time, niced.
set -u
cd "$(dirname "$0")"
secs=${1:-15}
shift $(( $# > 0 ? 1 : 0 ))

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz >&2 || { echo "0 passed, 1 failed"; exit 1; }
fi
export PATH="$HOME/.cargo/bin:$PATH"

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
    sanitizer=address
else
    # cargo-fuzz passes unstable flags; stable accepts them this way.
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
    sanitizer=none
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list)
fi

mkdir -p target
echo "building ${#targets[@]} targets (sanitizer: $sanitizer)"
if ! nice -n 10 "${fuzz[@]}" build -s "$sanitizer" >target/build.log 2>&1; then
    tail -30 target/build.log
    echo "0 passed, ${#targets[@]} failed"
    exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

# Run the binaries just built (cargo fuzz run would rebuild before each).
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=target/$host/release

# Inputs longer than most heads, long enough for the chunked size-line limit.
declare -A max_len=([chunked]=5000 [config_file]=4096 [config_args]=1024 [route]=1024 [auth_header]=1024 [build_query]=1024)

passed=0
failed=0
for t in "${targets[@]}"; do
    run_corpus=target/corpus-run/$t
    mkdir -p "$run_corpus" "corpus/$t" "artifacts/$t"
    seeds=("corpus/$t")
    [ -d "../tests/regressions/$t" ] && seeds+=("../tests/regressions/$t")
    log=target/run-$t.log
    nice -n 10 "$bin_dir/$t" "$run_corpus" "${seeds[@]}" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$secs" -max_len="${max_len[$t]:-8192}" -dict=http.dict \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
    execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$done_line")
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    eps=$(sed -nE 's/.* exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
    if [ "$rc" -eq 0 ] && [ -n "$done_line" ]; then
        passed=$((passed + 1))
        printf '%-14s ok     %10s execs %8s exec/s  cov %5s  ft %6s\n' \
            "$t" "$execs" "$eps" "$cov" "$ft"
    else
        failed=$((failed + 1))
        printf '%-14s FAILED (exit %s), log: fuzz/%s\n' "$t" "$rc" "$log"
        grep -E 'panicked at|property violated|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" |
            head -8 | sed 's/^/    /'
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
