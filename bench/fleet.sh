#!/usr/bin/env bash
# Mirrors the 100-tag corpus of corpus.sh (10 repositories, shared base layers, every fifth
# tag a 4-platform index) cold then warm in four ways in the same run: the embedded mode
# (`mirror-scheduler run --local`), one `mirror-worker run` process, and two, behind
# `mirror-scheduler run --wait` on RabbitMQ (and Redis), and `skopeo sync --all`; with
# LATENCY_MS (default 20) of latency each way on both registries. Prints wall times, peak RSS
# of the scheduler (or skopeo) and of each worker, each mode's times against the embedded
# mode's and skopeo's against each mode's, then per cold run the bytes uploaded over the
# corpus's distinct blob bytes, and per warm run the HTTP requests (source + destination)
# per tag.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_fleet
