#!/usr/bin/env bash
# Runs the real mapping files (tests/fixtures/mappings, or FIXTURES=DIR) by groups, one
# group per file, cold and warm, on local registries standing in for the ones they name;
# prints per group and in total the destination tags, wall time and requests per tag.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/install-deps.sh
cargo run --release -q -p mirror-bench --bin bench_fixtures
