#!/usr/bin/env bash
# Installs and starts what the tests and the benchmarks need on a Debian machine that may
# have nothing but Rust: docker-registry (CNCF distribution) for real registries, skopeo
# (the peer we measure against), RabbitMQ (with its management API, which `status` reads
# for in-flight counts) and Redis on loopback, and podman, runc and mmdebstrap to build and
# run the container image (tests/tests/container_image.rs; deploy/image/ says how). `--demo`: only what the embedded demo uses
# (docker-registry, and skopeo to seed its images); no RabbitMQ, no Redis. Idempotent;
# needs root (or sudo) only when something is missing or stopped.
set -euo pipefail

demo_only=false
[ "${1:-}" = "--demo" ] && demo_only=true

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
[ -x /usr/bin/time ] || need+=(time)
[ -e /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if ! $demo_only; then
  command -v rabbitmq-server >/dev/null 2>&1 || need+=(rabbitmq-server)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v podman >/dev/null 2>&1 || need+=(podman)
  command -v runc >/dev/null 2>&1 || need+=(runc)
  command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q >/dev/null
  $SUDO apt-get install -y -q "${need[@]}" >/dev/null
fi

$demo_only && exit 0

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 what=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 0.5
  done
  echo "$what did not come up on 127.0.0.1:$port" >&2
  return 1
}

if ! port_open 5672; then
  echo "starting RabbitMQ" >&2
  $SUDO rabbitmq-server -detached
  wait_port 5672 RabbitMQ
  $SUDO rabbitmqctl await_startup >/dev/null 2>&1 || true
fi
if ! port_open 15672; then
  echo "enabling the RabbitMQ management API" >&2
  $SUDO rabbitmq-plugins enable rabbitmq_management >/dev/null
  wait_port 15672 "RabbitMQ management"
fi
if ! port_open 6379; then
  echo "starting Redis" >&2
  $SUDO redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_port 6379 Redis
fi
