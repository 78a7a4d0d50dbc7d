#!/usr/bin/env bash
# The distributed mode end to end on this machine: RabbitMQ and Redis (installed and started
# when missing, by install-deps.sh), two local registries, demo images, two
# `mirror-worker run` processes and a `mirror-scheduler run --wait`; then
# `mirror-scheduler status`, and everything it started is stopped again (the workers get
# SIGTERM and must exit 0). Queue and Redis key prefixes are unique to the invocation, so
# repeated or concurrent runs never see each other's jobs; they are deleted at the end.
#
#   STACK_PROFILE=debug|release  binaries of target/<profile> (default release; built first)
#   STACK_BIN_DIR=DIR            take prebuilt binaries from DIR instead (nothing is built)
#   STACK_ID=NAME                the prefix of queues, Redis keys and the scratch directory
#   STACK_PIDFILE=FILE           append "<name> <pid>" of every process started
#   AMQP_URL, REDIS_URL          default to the local RabbitMQ (guest) and Redis
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# Stop at the end only what this script started (not a broker that was already up).
started_rabbit=0 started_redis=0
port_open 5672 || started_rabbit=1
port_open 6379 || started_redis=1
bash deploy/local/install-deps.sh

profile=${STACK_PROFILE:-release}
if [ -n "${STACK_BIN_DIR:-}" ]; then
  bin=$STACK_BIN_DIR
else
  case "$profile" in
    release) echo "building (release)..." >&2; cargo build --release -q -p mirror-scheduler -p mirror-worker ;;
    debug) echo "building (debug)..." >&2; cargo build -q -p mirror-scheduler -p mirror-worker ;;
    *) echo "STACK_PROFILE must be debug or release, not $profile" >&2; exit 2 ;;
  esac
  bin="$root/target/$profile"
fi
for b in mirror-scheduler mirror-worker; do
  [ -x "$bin/$b" ] || { echo "$bin/$b is missing" >&2; exit 2; }
done

id=${STACK_ID:-stack-$(date +%s)-$$}
WORKDIR=$(mktemp -d -t "$id.XXXXXX")
export WORKDIR
# shellcheck source=lib.sh
. deploy/local/lib.sh
pidfile=${STACK_PIDFILE:-$WORKDIR/pids}

export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export QUEUE_PREFIX=$id REDIS_PREFIX=$id
# Short retry delays: a demo run should not sit out the production 10s,60s,300s.
broker=(--queue-prefix "$id" --redis-prefix "$id" --retry-delays 1s,2s)

workers=()
cleanup() {
  local rc=$? pid wrc
  trap - EXIT INT TERM
  for pid in "${workers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${workers[@]}"; do
    wrc=0
    wait "$pid" || wrc=$?
    if [ "$wrc" -ne 0 ]; then
      echo "worker $pid exited $wrc after SIGTERM (expected 0); its log:" >&2
      cat "$WORKDIR/worker-$pid.log" >&2 || true
      [ "$rc" -ne 0 ] || rc=1
    fi
  done
  stop_registries
  # The invocation's queues, exchange and Redis keys.
  delete_broker_prefix "$id" || true
  if command -v redis-cli >/dev/null 2>&1; then
    redis-cli -u "$REDIS_URL" --scan --pattern "$id:*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1 || true
  fi
  [ "$started_rabbit" -eq 0 ] || rabbitmqctl stop >/dev/null 2>&1 || true
  [ "$started_redis" -eq 0 ] || redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$WORKDIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

src_port=$(free_port 5200)
start_registry source "$src_port"
echo "registry $(cat "$WORKDIR/source/pid")" >>"$pidfile"
dst_port=$(free_port $((src_port + 1)))
start_registry destination "$dst_port"
echo "registry $(cat "$WORKDIR/destination/pid")" >>"$pidfile"
src="127.0.0.1:$src_port"
dst="127.0.0.1:$dst_port"
export INSECURE_REGISTRIES="$src,$dst"
echo "stack $id: source registry $src, destination registry $dst" >&2

echo "seeding demo images into $src..." >&2
seed_image "$src" demo/hello 1.0 "hello 1.0" "shared base layer"
seed_image "$src" demo/hello 1.1 "hello 1.1" "shared base layer"
seed_image "$src" demo/world 2.0 "world 2.0" "shared base layer"
cat >"$WORKDIR/mapping_demo" <<MAP
$src/demo/hello $dst/mirror/hello
$src/demo/world:2.0 $dst/mirror/world:2.0 $dst/mirror/world:latest
MAP

for n in 1 2; do
  "$bin/mirror-worker" run --concurrency 2 --grace 10s "${broker[@]}" \
    >"$WORKDIR/worker-$n.out" 2>"$WORKDIR/worker-$n.log" &
  pid=$!
  workers+=("$pid")
  ln -s "worker-$n.log" "$WORKDIR/worker-$pid.log"
  echo "worker $pid" >>"$pidfile"
done
echo "workers: ${workers[*]}" >&2

echo "--- mirror-scheduler run --wait" >&2
"$bin/mirror-scheduler" run --dir "$WORKDIR" --prefix mapping_ --wait "${broker[@]}"
echo "--- mirror-scheduler status" >&2
"$bin/mirror-scheduler" status "${broker[@]}"
echo "--- stack done" >&2
