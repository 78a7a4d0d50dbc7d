#!/usr/bin/env bash
# Push-triggered mirroring (run --listen-events) in the distributed mode: a docker-registry
# source whose real notifications go to the scheduler's listener, 2 workers on RabbitMQ and
# Redis, 20 ms each way (LATENCY_MS) between the mirror and both registries. A burst of 500
# new tags over 60 s (TAGS, BURST_SECS): push-to-mirrored p50/p90/p99/max and the tags
# missed; the listener idle for 30 s (IDLE_SECS): the registry requests it costs; the burst
# again with the listener SIGKILLed at 30 s (KILL_AT_SECS) and restarted 5 s later, then
# that process's first scheduled run: tags there before and after it, and its repaired
# count. Prints figures and a JSON line per phase. SHOW_LOG=1 prints the schedulers' logs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo build --release -q -p mirror-bench --bins -p mirror-scheduler -p mirror-worker
cargo run --release -q -p mirror-bench --bin bench_events
