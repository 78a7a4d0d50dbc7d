#!/usr/bin/env bash
# The quick start: mirrors a small mapping file end to end in the embedded mode (no
# RabbitMQ, no Redis: it installs and starts neither). Installs missing Debian packages
# (docker-registry, skopeo), builds the binaries, starts two local registries (a "CI"
# source and a "public" destination), seeds demo images, runs `mirror-scheduler run
# --local` twice (the second run finds everything up to date in its state file, without
# asking the destination), shows `status` of the two runs, stops everything it started,
# and prints what to try next. The demo keeps its state file in its own work directory
# (its registries are new each time); a real embedded run keeps it under
# ~/.local/state/image-mirror/ unless --state says otherwise.
#
# It builds the same (debug) binaries as the test suite, with the same command, so running
# the tests afterwards (or before) compiles nothing twice.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

bash deploy/local/install-deps.sh --demo
if [ ! -x "$root/target/debug/mirror-scheduler" ]; then
  echo "building mirror-scheduler and mirror-worker: the first build takes 2 to 3 minutes on 2 cores, later ones seconds" >&2
fi
cargo build --bins -p mirror-worker -p mirror-scheduler
export PATH="$root/target/debug:$PATH"

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

state="$WORKDIR/state.db"
echo "--- first run: copies everything" >&2
mirror-scheduler run --local --state "$state" -f "$WORKDIR/mapping_demo" --insecure-registry "$src" --insecure-registry "$dst"
echo "--- second run: nothing changed, nothing written (the state file knows every tag)" >&2
mirror-scheduler run --local --state "$state" -f "$WORKDIR/mapping_demo" --insecure-registry "$src" --insecure-registry "$dst" --report "$WORKDIR/report.json"
echo "--- status of the two runs:" >&2
mirror-scheduler status --state "$state" >&2
echo "--- demo done (the report of the second run had $(grep -c '"status":"up_to_date"' "$WORKDIR/report.json") tags up to date)" >&2
cat >&2 <<NEXT

Next, with your own images (README "Install" puts the binaries on your PATH for good):
  export PATH="$root/target/debug:\$PATH"
  mirror-worker copy SOURCE_IMAGE DESTINATION_IMAGE     # one image; -a config.json for credentials
  mirror-scheduler validate -f YOUR_MAPPING_FILE        # check a mapping file, offline
  mirror-scheduler run --local -f YOUR_MAPPING_FILE --dry-run   # what a run would copy
  mirror-scheduler run --local -f YOUR_MAPPING_FILE     # mirror; remembers in ~/.local/state/image-mirror/
  mirror-scheduler status                               # the last embedded runs, their failures
NEXT
