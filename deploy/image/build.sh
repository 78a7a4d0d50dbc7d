#!/usr/bin/env bash
# Builds the image of both binaries with podman from deploy/Containerfile, no registry
# needed: the base comes from deploy/image/base.sh, the binaries from
# `cargo build --release --locked` (or BIN_DIR, a directory that holds mirror-scheduler
# and mirror-worker already, as the image test passes its debug build).
#
#   bash deploy/image/build.sh [IMAGE]        # default localhost/image-mirror:dev
#   podman push localhost/image-mirror:dev registry.example.com/image-mirror:v1
#
# Where a registry with a Rust image is reachable, deploy/Dockerfile builds the same image
# in one multi-stage `docker build` instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/image/containers.conf}"
image=${1:-localhost/image-mirror:dev}
base=${BASE_IMAGE:-localhost/image-mirror-base:bookworm}

BASE_IMAGE=$base bash deploy/image/base.sh
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --locked -p mirror-scheduler -p mirror-worker
  BIN_DIR=target/release
fi
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp "$BIN_DIR/mirror-scheduler" "$BIN_DIR/mirror-worker" "$context/"
podman build --quiet --pull=never --build-arg "BASE=$base" \
  --label org.opencontainers.image.title=image-mirror \
  -f deploy/Containerfile -t "$image" "$context" >/dev/null
# The image this tag named before is of no use now.
podman image prune --force --filter label=org.opencontainers.image.title=image-mirror >/dev/null
echo "$image"
