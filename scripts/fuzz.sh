#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while each, one after the other, and prints what each did.
#
#   scripts/fuzz.sh            # 600 s per target
#   scripts/fuzz.sh 60         # 60 s per target
#   scripts/fuzz.sh 600 lifecycle policy_json   # only these targets
#
# Needs: rustup toolchain nightly, `cargo install cargo-fuzz --locked`. Corpora are kept in
# fuzz/corpus/<target> (seeded from fuzz/seeds/<target> on the first run), crashes in
# fuzz/artifacts/<target>; the exit status is non-zero when any target found a crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# One build for every target (sanitizers, release); FUZZ_SKIP_BUILD=1 reuses the last one.
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
    cargo +nightly fuzz build
fi
bin="target/$(rustc +nightly -vV | sed -n 's/^host: //p')/release"
failed=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ -d "seeds/$t" ] && [ -z "$(ls -A "corpus/$t")" ]; then
        cp "seeds/$t"/* "corpus/$t/"
    fi
    log="artifacts/$t/last-run.log"
    echo "== $t: ${seconds}s"
    set +e
    "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$seconds" \
        -max_len=8192 -print_final_stats=1 >"$log" 2>&1
    status=$?
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(ls "corpus/$t" | wc -l)
    crashes=$(ls "artifacts/$t" | grep -c -E '^(crash|oom|timeout|leak)-' || true)
    echo "figure fuzz_${t}_seconds $seconds"
    echo "figure fuzz_${t}_execs $execs"
    echo "figure fuzz_${t}_corpus $corpus"
    echo "figure fuzz_${t}_crashes $crashes"
    if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        echo "$t: FAILED (exit $status); see $log and artifacts/$t" >&2
        failed=1
    fi
done
exit "$failed"
