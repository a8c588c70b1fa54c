#!/bin/sh
# Runs one fuzz target for a bounded time: fuzz/run.sh <target> <seconds>
# Targets: resp_parser, snapshot_loader, rdb_reader. Needs cargo-fuzz (cargo install cargo-fuzz).
# The stable toolchain is used with RUSTC_BOOTSTRAP=1 so cargo-fuzz's nightly-only
# sanitizer flags are accepted. New corpus entries go to fuzz/corpus/<target>/ (only
# the committed seed-* files are tracked); crashes land in fuzz/artifacts/<target>/.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 <resp_parser|snapshot_loader|rdb_reader> <seconds>" >&2
    exit 2
fi
target=$1
seconds=$2
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
exec nice -n 19 cargo fuzz run "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=2048 -print_final_stats=1
