#!/usr/bin/env bash
# Installs and starts what the tests, the demo and the benchmarks need on a Debian machine
# that may have nothing but Rust: docker-registry (CNCF distribution) for real registries,
# skopeo (the peer we measure against), openssl. Idempotent; needs root (or sudo) only
# when something is missing.
set -euo pipefail

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/time ] || need+=(time)
[ -e /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q "${need[@]}" >/dev/null
fi
