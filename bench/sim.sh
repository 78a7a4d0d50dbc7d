#!/usr/bin/env bash
# The fleet (scheduler + WORKERS workers, 2 by default) at SCALES of the real system ("1 10"
# by default; SCALES=100 by hand) against the registry simulator (registry-sim, LATENCY_MS
# 20 each way), with the real RabbitMQ and Redis: cold, warm and a steady hour (a third of
# the tag cache due, 1 % of the sources changed). SCALE_OUT=1 adds the steady hour with 1
# and with 4 workers. Prints time, RSS, requests per destination tag, broker messages,
# Redis calls and memory, the history stream's growth, a table and JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
# registry-sim is a binary of the same package: built here, since cargo run builds only
# the one it runs.
cargo build --release -q -p mirror-bench --bins
cargo run --release -q -p mirror-bench --bin bench_sim
