#!/usr/bin/env bash
# The main job: start rxd on 127.0.0.1, bootstrap a cluster with `rxd init --preseed`, and print
# `rxc cluster list`. The daemon runs in a temporary directory and is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
dir=$(mktemp -d /tmp/rxd-main.XXXXXX)
"$bin/rxd" --dir "$dir" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
"$bin/rxd" --dir "$dir" waitready --timeout 30
"$bin/rxd" --dir "$dir" init --preseed <<'YAML'
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
RXD_DIR="$dir" RXC_CONF="$dir/rxc" "$bin/rxc" cluster list
"$bin/rxd" --dir "$dir" shutdown --timeout 30
