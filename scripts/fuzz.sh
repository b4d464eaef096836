#!/usr/bin/env bash
# Fuzzes every parser that takes untrusted input, SECONDS each (default 15), with cargo fuzz on
# the stable toolchain (no sanitizer: the targets are safe Rust, so a crash is a panic or a
# failed assertion). Saved crashes are replayed first as regression cases; a new crash is left
# in fuzz/artifacts/<target>/ and the script fails, printing how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-15}"
command -v cargo-fuzz >/dev/null || cargo install -q cargo-fuzz --locked
targets=$(cargo fuzz list)
cargo fuzz build -s none
for t in $targets; do
    if [ -d "regressions/$t" ]; then
        cargo fuzz run -s none "$t" "regressions/$t" -- -runs=0
    fi
    mkdir -p "corpus/$t"
    log=$(mktemp)
    if ! cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$seconds" -timeout=10 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $t crashed; reproduce with: (cd fuzz && cargo fuzz run -s none $t <artifact>)" >&2
        exit 1
    fi
    runs=$(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
    echo "fuzz: $t: ${runs:-no summary}"
    rm -f "$log"
done
