#!/usr/bin/env bash
# 100 000 rooms on a local 3-node cluster (issue #15): what rooms cost on each node, how long it
# takes to create them all, and how fast the admin API pages through them.
#
#   bench/rooms-100k.sh [OUT.jsonl]
#
# Starts 3 release nodes on loopback (public 8881–8883, admin 9881–9883, cluster 7881–7883) with
# the shipped defaults except `rooms.max_rooms = 50000` (100 000 rooms over 3 nodes is more than
# the default 10 000 per node) and a room creation rate that does not pace the generator. Then
# one `gatehouse-bench idle` per node opens CONNS/3 connections there, each joining
# ROOMS_PER_CONN rooms (connection i joins rooms i·K … i·K+K−1 of that generator's share), so
# CONNS × ROOMS_PER_CONN joins create about that many rooms, each with one member; rooms are
# owned by the rendezvous winner, so most are owned by another node than their member's.
# Prints, per node: RSS before and after, rooms owned, room memory; the joins' time and rate;
# and the latency of 30 `GET /admin/v1/rooms?limit=50` pages on node-a (median, p99, max).
# Everything it starts it ends, by PID. Loopback only.
#
# Environment: NODE_BIN (target/release/gatehouse), BENCH_BIN (target/release/gatehouse-bench),
# CONNS (1000), ROOMS_PER_CONN (100), HOLD_S (180: how long the generators hold their
# connections once joined; the measurements happen inside it). Needs curl and bc.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_BIN=${NODE_BIN:-target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-target/release/gatehouse-bench}
CONNS=${CONNS:-1000}
ROOMS_PER_CONN=${ROOMS_PER_CONN:-100}
HOLD_S=${HOLD_S:-180}
OUT=${1:-}
for bin in "$NODE_BIN" "$BENCH_BIN"; do
  [[ -x $bin ]] || { echo "rooms-100k: $bin not built (cargo build --release -p node -p gatehouse-bench)" >&2; exit 2; }
done

run=$(mktemp -d)
pids=()
gens=()
cleanup() {
  for pid in "${gens[@]}" "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${gens[@]}" "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$run"
}
trap cleanup EXIT

names=(a b c)
seeds='"127.0.0.1:7881","127.0.0.1:7882","127.0.0.1:7883"'
cookie=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
for i in 1 2 3; do
  cat >"$run/node-$i.toml" <<EOF
[node]
name = "node-${names[i-1]}"
listen = "127.0.0.1:$((8880 + i))"
admin_listen = "127.0.0.1:$((9880 + i))"
cluster_listen = "127.0.0.1:$((7880 + i))"
seeds = [$seeds]
[limits]
room_creates_per_sec = 100000
room_creates_burst = 100000
[rooms]
max_rooms = 50000
[log]
format = "json"
EOF
  GATEHOUSE_COOKIE=$cookie "$NODE_BIN" --config "$run/node-$i.toml" >"$run/node-$i.log" 2>&1 &
  pids+=($!)
done

# Ready: every node answers /readyz (it is active once it has joined the cluster).
deadline=$((SECONDS + 60))
for i in 1 2 3; do
  until curl -fs --max-time 1 -o /dev/null "http://127.0.0.1:$((8880 + i))/readyz"; do
    ((SECONDS < deadline)) || { echo "rooms-100k: node $i not ready" >&2; tail -20 "$run/node-$i.log" >&2; exit 1; }
    sleep 0.2
  done
done

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
metric() { curl -s --max-time 2 "http://127.0.0.1:$((8880 + $1))/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
declare -A before
for i in 1 2 3; do before[$i]=$(rss "${pids[i-1]}"); done

per_gen=$((CONNS / 3))
rooms_per_gen=$((per_gen * ROOMS_PER_CONN))
t0=$(date +%s.%N)
for i in 1 2 3; do
  "$BENCH_BIN" --json idle --url "ws://127.0.0.1:$((8880 + i))/ws" --pid "${pids[i-1]}" \
    --connections "$per_gen" --rooms "$rooms_per_gen" --rooms-per-connection "$ROOMS_PER_CONN" \
    --concurrency 50 --settle-max 20 --hold "$HOLD_S" >"$run/gen-$i.json" 2>"$run/gen-$i.err" &
  gens+=($!)
done

# All joined: the generators report once joined and settled; poll the nodes' room counts.
want=$((per_gen * 3 * ROOMS_PER_CONN))
deadline=$((SECONDS + 600))
while :; do
  joins=0
  for i in 1 2 3; do
    v=$(metric "$i" gatehouse_joins_total); joins=$((joins + ${v%.*}))
  done
  ((joins >= want)) && break
  ((SECONDS < deadline)) || { echo "rooms-100k: only $joins of $want joins after 600 s" >&2; break; }
  sleep 1
done
t1=$(date +%s.%N)
create_s=$(echo "$t1 - $t0" | bc)

# The nodes' figures once every join is answered, then the page latency while every connection
# is still held.
total_rooms=0
line="{\"bench\":\"rooms-100k\",\"connections\":$((per_gen * 3)),\"rooms_per_connection\":$ROOMS_PER_CONN,\"joins\":$joins,\"create_s\":$create_s,\"nodes\":["
for i in 1 2 3; do
  after=$(rss "${pids[i-1]}")
  owned=$(metric "$i" gatehouse_rooms_active); owned=${owned%.*}
  mem=$(metric "$i" gatehouse_room_memory_bytes); mem=${mem%.*}
  total_rooms=$((total_rooms + owned))
  echo "node-${names[i-1]}: RSS ${before[$i]} -> $after KiB (+$(((after - before[$i]) / 1024)) MiB), rooms owned $owned, room memory $mem B"
  ((i > 1)) && line+=","
  line+="{\"node\":\"node-${names[i-1]}\",\"rss_before_kib\":${before[$i]},\"rss_after_kib\":$after,\"rooms_owned\":$owned,\"room_memory_bytes\":$mem}"
done
# Page latency while every connection is held.
lat=()
for _ in $(seq 1 30); do
  t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 30 "http://127.0.0.1:9881/admin/v1/rooms?limit=50" || true)
  [[ ${t%% *} == 200 ]] || { echo "rooms-100k: GET /admin/v1/rooms answered '${t:-nothing}'" >&2; }
  lat+=("${t##* }")
done
read -r p50 p99 pmax < <(printf '%s\n' "${lat[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.5+0.5)], a[int(NR*0.99+0.5)], a[NR]}')

line+="],\"rooms_total\":$total_rooms,\"admin_rooms_page_ms\":{\"p50\":$(echo "$p50*1000" | bc),\"p99\":$(echo "$p99*1000" | bc),\"max\":$(echo "$pmax*1000" | bc)},\"unix_time\":$(date +%s)}"
echo "$joins joins created $total_rooms rooms in ${create_s} s; admin /rooms page: p50 $p50 s, p99 $p99 s, max $pmax s"
[[ -n $OUT ]] && echo "$line" >>"$OUT"
for i in 1 2 3; do [[ -s $run/gen-$i.json ]] || cat "$run/gen-$i.err" >&2; done
exit 0
