#!/usr/bin/env bash
# The quick start: mirrors a small mapping file end to end in the embedded mode (no
# RabbitMQ, no Redis). Installs missing Debian packages, builds the binaries, starts two
# local registries (a "CI" source and a "public" destination), seeds demo images, runs
# `mirror-scheduler run --local` twice (the second run finds everything up to date), and
# stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

bash deploy/local/install-deps.sh
echo "building (release)..." >&2
cargo build --release -q -p mirror-scheduler -p mirror-worker
export PATH="$root/target/release:$PATH"

WORKDIR=$(mktemp -d)
export WORKDIR
# shellcheck source=lib.sh
. deploy/local/lib.sh
trap 'stop_registries; rm -rf "$WORKDIR"' EXIT

src_port=$(free_port 5100)
start_registry source "$src_port"
dst_port=$(free_port $((src_port + 1)))
start_registry destination "$dst_port"
src="127.0.0.1:$src_port"
dst="127.0.0.1:$dst_port"
echo "source registry $src, destination registry $dst" >&2

echo "seeding demo images into $src..." >&2
seed_image "$src" demo/hello 1.0 "hello 1.0" "shared base layer"
seed_image "$src" demo/hello 1.1 "hello 1.1" "shared base layer"
seed_image "$src" demo/world 2.0 "world 2.0" "shared base layer"

cat >"$WORKDIR/mapping_demo" <<MAP
# every tag of demo/hello, keeping its tag
$src/demo/hello $dst/mirror/hello
# one image to two tags of another repository (its base layer is mounted, not uploaded)
$src/demo/world:2.0 $dst/mirror/world:2.0 $dst/mirror/world:latest
MAP
echo "--- mapping file:" >&2
cat "$WORKDIR/mapping_demo" >&2

echo "--- first run: copies everything" >&2
mirror-scheduler run --local -f "$WORKDIR/mapping_demo" --insecure-registry "$src" --insecure-registry "$dst"
echo "--- second run: nothing changed, nothing written" >&2
mirror-scheduler run --local -f "$WORKDIR/mapping_demo" --insecure-registry "$src" --insecure-registry "$dst" --report "$WORKDIR/report.json"
echo "--- demo done (the report of the second run had $(grep -c '"status": "up_to_date"' "$WORKDIR/report.json") tags up to date)" >&2
