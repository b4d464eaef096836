#!/usr/bin/env bash
# The main job: form a 3-member cluster on 127.0.0.1-3 with join tokens, and print
# `rxc cluster list` from each member. Every daemon runs in a temporary directory and is
# stopped, by PID, at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${RXD_BIN:-target/release}
base=$(mktemp -d /tmp/rxd-main.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$base"
}
trap cleanup EXIT

for i in 1 2 3; do
    mkdir -p "$base/node$i"
    "$bin/rxd" --dir "$base/node$i" 2>"$base/node$i.log" &
    pids+=($!)
done
for i in 1 2 3; do "$bin/rxd" --dir "$base/node$i" waitready --timeout 30; done

echo "Bootstrapping node1 on 127.0.0.1"
"$bin/rxd" --dir "$base/node1" init --preseed <<'YAML'
config:
  core.https_address: 127.0.0.1:8443
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: local
      type: disk
cluster:
  server_name: node1
  enabled: true
YAML

for i in 2 3; do
    echo "Joining node$i on 127.0.0.$i with a token"
    token=$(RXD_DIR="$base/node1" RXC_CONF="$base/rxc" "$bin/rxc" cluster add "node$i" --quiet)
    "$bin/rxd" --dir "$base/node$i" init --preseed <<YAML
cluster:
  enabled: true
  server_address: 127.0.0.$i:8443
  cluster_token: $token
  member_config:
  - entity: storage-pool
    name: local
    key: source
    value: ""
YAML
done

for i in 1 2 3; do
    echo "rxc cluster list on node$i:"
    RXD_DIR="$base/node$i" RXC_CONF="$base/rxc" "$bin/rxc" cluster list
done
for i in 3 2 1; do "$bin/rxd" --dir "$base/node$i" shutdown --timeout 30; done
