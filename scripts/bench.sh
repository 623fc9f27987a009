#!/usr/bin/env bash
# Side-by-side benchmark of Satchel against the reference, in one run, with
# the shared harness (wrk, alternating rounds, ratios). Extra arguments go to
# the harness (e.g. --quick). Figures are ratios Satchel/reference.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
ref=$(scripts/reference-binary.sh)
exec ../shared/bench/run target/release/satchel "$ref" "$@"
