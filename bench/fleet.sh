#!/usr/bin/env bash
# Mirrors the 100-tag corpus of corpus.sh (10 repositories, shared base layers, every fifth
# tag a 4-platform index) cold then warm in three ways in the same run: the embedded mode
# (`mirror-scheduler run --local`), one `mirror-worker run` process, and two, behind
# `mirror-scheduler run --wait` on RabbitMQ; with LATENCY_MS (default 20) of latency each way
# on both registries. Prints wall times, peak RSS of the scheduler and of each worker, and
# each mode's times against the embedded mode's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-tests --bin bench_fleet
