#!/usr/bin/env bash
# Makes the image's base without any container registry: a minimal Debian bookworm made by
# mmdebstrap (with ca-certificates, what the binaries need to verify TLS), imported into
# podman as BASE_IMAGE (default localhost/image-mirror-base:bookworm). Does nothing when
# that image exists already. Needs root (mmdebstrap's root mode) and Debian's package
# mirror; about 40 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/deploy/image/containers.conf}"
base=${BASE_IMAGE:-localhost/image-mirror-base:bookworm}

podman image exists "$base" && exit 0
tar=$(mktemp --suffix=.tar)
trap 'rm -f "$tar"' EXIT
echo "making $base with mmdebstrap" >&2
mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
  bookworm "$tar"
podman import --quiet "$tar" "$base" >/dev/null
