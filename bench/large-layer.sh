#!/usr/bin/env bash
# Copies one image with a 512 MiB layer (LAYER_MIB=N to change) between two local
# registries with `mirror-worker copy` and `skopeo copy` in the same run, and prints wall
# time, peak RSS (/usr/bin/time -v) and the ratio. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_large_layer
