#!/usr/bin/env bash
# Publishes JOBS (default 100000) synthetic copy jobs to RabbitMQ through the scheduler's
# publishing path (AmqpQueue + publish_all, every job confirmed) into a queue prefix of its
# own, deleted at the end, and prints jobs/s, the total time (target: under 10 s for
# 100,000) and the peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_publish
