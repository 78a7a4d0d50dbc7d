#!/usr/bin/env bash
# Mirrors a 100-tag corpus (10 repositories, shared base layers, every fifth tag a
# 4-platform index) with `mirror-scheduler run --local` and with `skopeo sync --all` in the
# same run, cold then warm, with LATENCY_MS (default 20) of latency each way on both
# registries, and prints wall times, peak RSS, destination requests and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_corpus
