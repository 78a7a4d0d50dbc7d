#!/usr/bin/env bash
# What carrying referrers (signatures, attestations, SBOMs) costs: the 100-tag corpus with
# a signature on one tag per repository, `run --local` with referrers on and off, cold and
# warm, 20 ms each way (LATENCY_MS to change). Prints wall times and requests per registry.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_referrers
