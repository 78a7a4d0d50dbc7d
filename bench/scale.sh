#!/usr/bin/env bash
# The hourly run at the real system's scale: ~7,700 destination tags from 147 generated
# mapping files, cold, warm and warm --verify, embedded and with 2 workers (RabbitMQ +
# Redis), 20 ms each way (LATENCY_MS). SCALE=0.1 for a tenth of the set. Prints time,
# requests per destination tag at each registry and by kind, peak RSS, and the registries'
# own time for the warm run's HEADs (the floor). MODES=scale-out: one worker vs two.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_scale
