#!/usr/bin/env bash
# Admin API page latency with many connected clients: what the console (gatehouse-tui) pays for
# one page of its Clients and Rooms views.
#
#   bench/admin-latency.sh CONNECTIONS [NODES]
#
# Starts NODES release nodes on loopback (default: enough for ≤ 12 500 connections each, at
# least 3, at most 9; the fd limit is 20 000 per process) as one cluster, opens CONNECTIONS idle
# WebSocket connections with `gatehouse-bench idle` (one generator process per node, more if one
# would hold over 12 500, so the clients are spread evenly over the nodes, and over source
# addresses 127.0.0.2…), joined to
# CONNECTIONS/100 rooms, waits until the attached node (node-0) counts them all, then times
# SAMPLES sequential GETs of each admin page below with curl against node-0 and prints the median,
# p99 and max. Everything it starts it ends by PID (generators, then nodes: SIGTERM, then SIGKILL
# after 15 s). Loopback only; every wait has a deadline.
#
# Environment: NODE_BIN (target/release/gatehouse), BENCH_BIN (target/release/gatehouse-bench),
# SAMPLES (100), PER_GEN (12500), ROOMS (CONNECTIONS/100), BASE_PORT (21000: public BASE+i,
# admin BASE+100+i, cluster BASE+200+i), CONNECT_TIMEOUT_S (300), OUT (append the summary
# there too). Needs curl and jq.
set -euo pipefail

conns=${1:?usage: bench/admin-latency.sh CONNECTIONS [NODES]}
root=$(cd "$(dirname "$0")/.." && pwd)
NODE_BIN=${NODE_BIN:-$root/target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-$root/target/release/gatehouse-bench}
SAMPLES=${SAMPLES:-100}
PER_GEN=${PER_GEN:-12500}
ROOMS=${ROOMS:-$(( conns / 100 > 0 ? conns / 100 : 1 ))}
BASE_PORT=${BASE_PORT:-21000}
CONNECT_TIMEOUT_S=${CONNECT_TIMEOUT_S:-300}
OUT=${OUT:-}

gens=$(( (conns + PER_GEN - 1) / PER_GEN ))
nodes=${2:-$(( gens < 3 ? 3 : gens ))}
(( nodes <= 9 )) || { echo "at most 9 nodes (asked for $nodes)" >&2; exit 2; }
# At least one generator per node, so that every node holds its share of the clients.
gens=$(( gens < nodes ? nodes : gens ))
for b in "$NODE_BIN" "$BENCH_BIN"; do
    [[ -x $b ]] || { echo "missing $b: cargo build --release -p node -p gatehouse-bench" >&2; exit 1; }
done
for t in curl jq; do command -v $t >/dev/null || { echo "$t is needed" >&2; exit 1; }; done

work=$(mktemp -d)
node_pids=()
gen_pids=()
cleanup() {
    local p
    for p in "${gen_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${gen_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    for p in "${node_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${node_pids[@]}"; do
        for _ in $(seq 1 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

admin="http://127.0.0.1:$(( BASE_PORT + 100 ))"
seeds=$(for i in $(seq 0 $(( nodes - 1 ))); do printf '"127.0.0.1:%d",' $(( BASE_PORT + 200 + i )); done)
cookie=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
for i in $(seq 0 $(( nodes - 1 ))); do
    cat >"$work/node-$i.toml" <<EOF
[node]
name = "node-$i"
listen = "127.0.0.1:$(( BASE_PORT + i ))"
admin_listen = "127.0.0.1:$(( BASE_PORT + 100 + i ))"
cluster_listen = "127.0.0.1:$(( BASE_PORT + 200 + i ))"
seeds = [${seeds%,}]
shutdown_grace_s = 5
[auth]
required = false
max_connections_per_ip = 1000000
max_connections_per_user = 1000000
[log]
format = "json"
level = "warn"
EOF
    GATEHOUSE_COOKIE=$cookie "$NODE_BIN" --config "$work/node-$i.toml" >/dev/null 2>"$work/node-$i.log" &
    node_pids+=($!)
done

# Waits (≤ $2 s) until the jq filter $1 over node-0's /admin/v1/cluster prints "true".
wait_cluster() {
    local filter=$1 deadline=$(( SECONDS + $2 ))
    while (( SECONDS < deadline )); do
        if [[ $(curl -sf --max-time 5 "$admin/admin/v1/cluster" | jq -r "$filter" 2>/dev/null) == true ]]; then
            return 0
        fi
        sleep 0.5
    done
    echo "timed out waiting for: $filter" >&2
    curl -s --max-time 5 "$admin/admin/v1/cluster" | jq -c '[.nodes[] | {name, state, connections}]' >&2 || true
    return 1
}

echo "starting $nodes nodes…" >&2
wait_cluster "[.nodes[] | select(.state == \"active\")] | length == $nodes" 60

echo "opening $conns connections over $ROOMS rooms with $gens generator(s)…" >&2
left=$conns
rooms_left=$ROOMS
for g in $(seq 0 $(( gens - 1 ))); do
    n=$(( left / (gens - g) ))
    r=$(( rooms_left / (gens - g) ))
    left=$(( left - n ))
    rooms_left=$(( rooms_left - r ))
    port=$(( BASE_PORT + g % nodes ))
    "$BENCH_BIN" --json idle --url "ws://127.0.0.1:$port/ws" --connections "$n" --rooms "$(( r > 0 ? r : 1 ))" \
        --concurrency 100 --settle-max 1 --hold 3600 >"$work/gen-$g.json" 2>"$work/gen-$g.log" &
    gen_pids+=($!)
done
t0=$SECONDS
wait_cluster "([.nodes[].connections // 0] | add) >= $conns" "$CONNECT_TIMEOUT_S"
echo "all $conns connected after $(( SECONDS - t0 )) s; waiting for the joins…" >&2
# The joins follow the connects: each generator says "idle: N joined in …" when it is done.
deadline=$(( SECONDS + CONNECT_TIMEOUT_S ))
for g in $(seq 0 $(( gens - 1 ))); do
    until grep -Eq ' joined ([0-9]+ rooms )?in ' "$work/gen-$g.log"; do
        (( SECONDS < deadline )) || { echo "generator $g did not finish joining" >&2; tail -5 "$work/gen-$g.log" >&2; exit 1; }
        kill -0 "${gen_pids[$g]}" 2>/dev/null || { echo "generator $g exited" >&2; tail -5 "$work/gen-$g.log" >&2; exit 1; }
        sleep 0.5
    done
    grep -hE 'connected in| joined ([0-9]+ rooms )?in|WARNING' "$work/gen-$g.log" | sed "s/^/  gen $g: /" >&2
done

cluster=$(curl -sf "$admin/admin/v1/cluster")
held=$(jq '[.nodes[].connections // 0] | add' <<<"$cluster")
rooms=$(curl -sf "$admin/admin/v1/rooms?limit=1" | jq .total)
first=$(curl -sf "$admin/admin/v1/clients?limit=1" | jq -r '.clients[0].id')
needle=${first:2:3}

# Times SAMPLES GETs of $2 (a path); prints one summary line labelled $1.
measure() {
    local label=$1 path=$2 body
    body=$(curl -sf "$admin$path")
    local total partial rows
    total=$(jq .total <<<"$body")
    partial=$(jq .partial <<<"$body")
    rows=$(jq '(.clients // .rooms) | length' <<<"$body")
    for _ in $(seq 1 "$SAMPLES"); do
        curl -sf -o /dev/null -w '%{time_total}\n' "$admin$path"
    done | sort -n | awk -v label="$label" -v path="$path" -v total="$total" -v rows="$rows" -v partial="$partial" '
        { t[NR] = $1 * 1000 }
        END {
            med = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
            p99 = t[int(NR * 0.99 + 0.999)]
            page = (total == "null") ? "" : sprintf("rows %4d of %7d partial=%s", rows, total, partial)
            printf "%-21s %-45s %-34s median %7.1f ms  p99 %7.1f ms  max %7.1f ms  (n=%d)\n",
                label, path, page, med, p99, t[NR], NR
        }'
}

{
    echo "# admin-latency: $held connections on $nodes nodes, $rooms rooms; $SAMPLES sequential GETs each against node-0"
    echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); node $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"
    measure "clients page"        "/admin/v1/clients?limit=100"
    measure "clients console page" "/admin/v1/clients?limit=18&sort=id"
    measure "clients filtered"    "/admin/v1/clients?limit=100&q=$needle"
    measure "clients by msgs_in"  "/admin/v1/clients?limit=100&sort=msgs_in"
    measure "rooms page"          "/admin/v1/rooms?limit=100"
    measure "rooms by members"    "/admin/v1/rooms?limit=100&sort=members"
    measure "cluster"             "/admin/v1/cluster"
} | tee -a "${OUT:-/dev/null}"
