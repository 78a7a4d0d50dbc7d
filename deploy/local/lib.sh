# Shared helpers of the local scripts: free ports, docker-registry processes with
# temporary storage, and a tiny OCI image built with coreutils and pushed with skopeo.
# Source it; it expects WORKDIR to be set to a scratch directory.

# A free TCP port on 127.0.0.1 at or above $1.
free_port() {
  local p=$1
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

# start_registry NAME PORT: docker-registry on 127.0.0.1:PORT, storage under WORKDIR.
start_registry() {
  local name=$1 port=$2 dir="$WORKDIR/$1"
  mkdir -p "$dir/storage"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: local-demo-only
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  echo $! >"$dir/pid"
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "registry $name did not start; its log:" >&2
  cat "$dir/registry.log" >&2
  return 1
}

# Stops every registry started under WORKDIR.
stop_registries() {
  local pidfile
  for pidfile in "$WORKDIR"/*/pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    wait "$(cat "$pidfile")" 2>/dev/null || true
  done
}

# seed_image REGISTRY REPO TAG TEXT [BASE_TEXT]: a one- or two-layer linux/amd64 OCI
# image whose files hold TEXT (and BASE_TEXT, a layer shared by images that pass the same).
seed_image() {
  local registry=$1 repo=$2 tag=$3 text=$4 base=${5:-}
  local layout="$WORKDIR/layout-$RANDOM$RANDOM" layers="" diff_ids="" t
  mkdir -p "$layout/blobs/sha256"
  for t in ${base:+"$base"} "$text"; do
    local root="$layout/root"
    rm -rf "$root" && mkdir -p "$root"
    printf '%s\n' "$t" >"$root/$(printf '%s' "$t" | sha256sum | cut -c1-12).txt"
    tar --sort=name --mtime=@0 --owner=0 --group=0 -C "$root" -cf "$layout/layer.tar" .
    diff_ids="$diff_ids${diff_ids:+,}\"sha256:$(sha256sum "$layout/layer.tar" | cut -d' ' -f1)\""
    gzip -n -f "$layout/layer.tar"
    local d s
    d=$(sha256sum "$layout/layer.tar.gz" | cut -d' ' -f1); s=$(stat -c %s "$layout/layer.tar.gz")
    mv "$layout/layer.tar.gz" "$layout/blobs/sha256/$d"
    layers="$layers${layers:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$s}"
  done
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%s]},"config":{}}' "$diff_ids" >"$layout/config.json"
  local cd cs md ms
  cd=$(sha256sum "$layout/config.json" | cut -d' ' -f1); cs=$(stat -c %s "$layout/config.json")
  mv "$layout/config.json" "$layout/blobs/sha256/$cd"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' "$cd" "$cs" "$layers" >"$layout/manifest.json"
  md=$(sha256sum "$layout/manifest.json" | cut -d' ' -f1); ms=$(stat -c %s "$layout/manifest.json")
  mv "$layout/manifest.json" "$layout/blobs/sha256/$md"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s"}}]}' "$md" "$ms" "$tag" >"$layout/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  skopeo copy --quiet --insecure-policy --dest-tls-verify=false "oci:$layout:$tag" "docker://$registry/$repo:$tag"
  rm -rf "$layout"
}

# delete_broker_prefix PREFIX: deletes the queues PREFIX.* and the exchange PREFIX.events
# through the RabbitMQ management API (RABBITMQ_MANAGEMENT_URL, default
# http://127.0.0.1:15672, with guest credentials unless RABBITMQ_USER/RABBITMQ_PASSWORD).
delete_broker_prefix() {
  local prefix=$1 api=${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}
  local auth="${RABBITMQ_USER:-guest}:${RABBITMQ_PASSWORD:-guest}" name
  command -v curl >/dev/null 2>&1 || return 0
  curl -fsS -u "$auth" "$api/api/queues/%2f?columns=name" 2>/dev/null \
    | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | grep -F "$prefix." \
    | while read -r name; do
        [ "${name#"$prefix".}" != "$name" ] || continue
        curl -fsS -u "$auth" -X DELETE "$api/api/queues/%2f/$name" >/dev/null 2>&1 || true
      done
  curl -fsS -u "$auth" -X DELETE "$api/api/exchanges/%2f/$prefix.events" >/dev/null 2>&1 || true
}
