#!/usr/bin/env bash
# 100 000 connections held by a local cluster of 6 nodes, with a room over all six still
# delivering in order (issue #6; bench/README.md).
#
#   bench/cluster-100k.sh [OUT.jsonl]
#
# Starts 6 release nodes with deploy/local-cluster.sh (the shipped example configs, ports
# 8781–8786 / 9801–9806 / 7801–7806, BASE_PORT_OFFSET 700), opens 16 700 idle connections per
# node with one `gatehouse-bench idle` process each (the fd limit is 20 000 per process, so one
# process cannot hold them all), joined to 100 rooms per node, and holds them HOLD_S seconds.
# Once the six nodes' `gatehouse_connections_active` add up to 100 200 (polled, with a deadline),
# `gatehouse-bench cluster` runs one room of 600 subscribers spread over the six nodes at
# 10 msg/s: delivered, order, latency and inter-node messages per publish. Prints the room's
# figures and each generator's; with OUT, appends every JSON line there. Everything it starts it
# ends: the generators by PID, the cluster with `deploy/local-cluster.sh stop`. Loopback only.
#
# Environment: NODE_BIN (target/release/gatehouse), BENCH_BIN (target/release/gatehouse-bench),
# PER_NODE (16700), HOLD_S (75), READY_TIMEOUT_S (180). Needs curl and jq.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_BIN=${NODE_BIN:-target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-target/release/gatehouse-bench}
PER_NODE=${PER_NODE:-16700}
HOLD_S=${HOLD_S:-75}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-180}
OUT=${1:-}
NODES=6
for bin in "$NODE_BIN" "$BENCH_BIN"; do
  [[ -x $bin ]] || { echo "cluster-100k: $bin not built (cargo build --release -p node -p gatehouse-bench)" >&2; exit 2; }
done

run=$(mktemp -d)
gens=()
cleanup() {
  for pid in "${gens[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${gens[@]}"; do wait "$pid" 2>/dev/null || true; done
  [[ -d $run/lc ]] && deploy/local-cluster.sh stop "$run/lc" >/dev/null 2>&1 || true
}
trap cleanup EXIT

mkdir -p "$run/lc"
GATEHOUSE_BIN=$NODE_BIN RUN_DIR=$run/lc BASE_PORT_OFFSET=700 deploy/local-cluster.sh $NODES --detach \
  >"$run/cluster.out" 2>&1 || { cat "$run/cluster.out" >&2; exit 1; }

names=(a b c d e f)
for i in $(seq 1 $NODES); do
  pid=$(cat "$run/lc/node-${names[i-1]}.pid")
  "$BENCH_BIN" --json idle --url "ws://127.0.0.1:$((8780 + i))/ws" --pid "$pid" \
    --connections "$PER_NODE" --rooms 100 --concurrency 50 --hold "$HOLD_S" \
    >"$run/idle-$i.out" 2>"$run/idle-$i.err" &
  gens+=($!)
done

want=$((PER_NODE * NODES))
deadline=$((SECONDS + READY_TIMEOUT_S))
while :; do
  total=0
  for i in $(seq 1 $NODES); do
    v=$(curl -s --max-time 2 "http://127.0.0.1:$((8780 + i))/metrics" |
      awk '/^gatehouse_connections_active /{print int($2)}')
    total=$((total + ${v:-0}))
  done
  ((total >= want)) && break
  if ((SECONDS >= deadline)); then
    echo "cluster-100k: only $total of $want connections after ${READY_TIMEOUT_S}s" >&2
    exit 1
  fi
  sleep 1
done
echo "cluster-100k: $total connections held across $NODES nodes"

urls=()
for i in $(seq 1 $NODES); do urls+=(--url "ws://127.0.0.1:$((8780 + i))"); done
"$BENCH_BIN" --json cluster "${urls[@]}" --subscribers 600 --rate 10 --warmup 2 --seconds 5 \
  --source-ips 32 >"$run/room.out" 2>"$run/room.err"
grep -v '^{' "$run/room.out"

status=0
for i in $(seq 1 $NODES); do
  wait "${gens[i-1]}" || status=1
  tail -1 "$run/idle-$i.out" | jq -c --arg n "node-${names[i-1]}" \
    '{node: $n, connected, joined, closed_by_server, connect_failed, rss_per_conn_kib: .node_rss_per_conn_kib}'
  tail -1 "$run/idle-$i.out" | jq -e --argjson n "$PER_NODE" \
    '.connected == $n and .joined == $n and .closed_by_server == 0' >/dev/null || status=1
done
gens=()
if [[ -n $OUT ]]; then
  for i in $(seq 1 $NODES); do tail -1 "$run/idle-$i.out" >>"$OUT"; done
  tail -1 "$run/room.out" >>"$OUT"
fi
tail -1 "$run/room.out" | jq -e '.passed and .lost_deliveries == 0 and .out_of_order == 0' >/dev/null || status=1
exit $status
