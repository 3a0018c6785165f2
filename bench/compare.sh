#!/usr/bin/env bash
# Side-by-side comparison of Gatehouse and its peers (issue #6): every target through the same
# scenarios, one after the other, each run on a freshly started server pinned to core SERVER_CPU
# (0) with the load generator pinned to GEN_CPU (1), RUNS (3) runs each, medians.
#
#   bench/compare.sh [--runs N] [--targets "gatehouse naive uws ws socketio"] [--json FILE]
#                    [--scenarios "sat fixed idle hot presence storm"] [--quick] [--help]
#   bench/compare.sh --table FILE.json      print the table of an earlier run
#
# Scenarios (100-byte payloads, one room unless said):
#   sat    fanout --saturate, 10 000 subscribers: rate ×1.4 per 4-s step (1 s warmup + 3 s
#          measured) from 5 msg/s, then 3 bisection steps; best step with 95–110 % delivered,
#          no loss, no subscriber closed, p99 ≤ 1 s → deliveries/s, its p99, generator CPU
#   fixed  fanout, 5 000 subscribers × 10 msg/s (50 000 deliveries/s), 2 s warmup + 10 s
#          → p50 / p99 publish→receive
#   idle   10 000 connections joined to 100 rooms, 100 connects in flight → server RSS per
#          joined connection, connects/s with the generator's CPU while connecting (runs over
#          85 % of its core are counted: there the rate is a lower bound), connections held
#   hot    10 000 connections into ONE room, 256 in flight, each ready once its join (peers:
#          subscribe) is answered → joined connections/s, connect→joined p50 / p99
#   presence  the same with `presence_batch: true` (Gatehouse only: the peers have no
#          presence) → joined/s, and the presence frames and events every member receives
#   storm  the reconnect storm (Gatehouse only: no peer keeps a room's messages across the loss
#          of a node), bench/reconnect-storm.sh both: 10 000 clients in one room on a 3-node
#          local cluster, the owner drained, then killed with -9 → per moved client the time
#          from its reconnect to its `recovered:true` join (p99, max), clients over 1 s,
#          refused, messages lost or duplicated
# --quick: 1 run, 2 000 / 1 000 / 2 000 / 2 000 / 1 000 / 2 000 connections (a check of the
# script, not a result).
#
# Needs: cargo build --release -p node -p gatehouse-bench; bench/peers/setup.sh; jq; taskset.
# Writes bench/results/<date>-compare.{jsonl,json,md} (raw runs, medians, table) unless --json
# names the JSON file (the others go beside it). Loopback only; every process it starts is
# stopped by PID (SIGTERM, then SIGKILL after 10 s). Environment: NODE_BIN, BENCH_BIN,
# NAIVE_BIN, NODE_CONFIG (default bench/bench.toml), SERVER_CPU, GEN_CPU, PORT_BASE (39300).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
NODE_BIN=${NODE_BIN:-$root/target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-$root/target/release/gatehouse-bench}
export NAIVE_BIN=${NAIVE_BIN:-$root/target/release/naive-server}
NODE_CONFIG=${NODE_CONFIG:-$here/bench.toml}
SERVER_CPU=${SERVER_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
PORT_BASE=${PORT_BASE:-39300}
runs=3
targets="gatehouse naive uws ws socketio"
json=
quick=0
scenarios="sat fixed idle hot presence storm"
table_only=

die() { echo "compare.sh: error: $*" >&2; exit 1; }
while (($#)); do
    case $1 in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --targets) targets=${2:?--targets needs a list}; shift 2 ;;
        --json) json=${2:?--json needs a file}; shift 2 ;;
        --quick) quick=1; shift ;;
        --scenarios) scenarios=${2:?--scenarios needs a list}; shift 2 ;;
        --table) table_only=${2:?--table needs a JSON file}; shift 2 ;;
        -h | --help) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
if [[ -n $table_only ]]; then
    sed -n '/^render_table() {/,/^}/p' "$0" >"${TMPDIR:-/tmp}/render.$$"
    # shellcheck disable=SC1090
    . "${TMPDIR:-/tmp}/render.$$" && rm -f "${TMPDIR:-/tmp}/render.$$"
    render_table "$table_only"
    exit 0
fi
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs must be a positive number"
for t in $targets; do
    case $t in gatehouse | naive | uws | ws | socketio) ;; *) die "unknown target $t" ;; esac
done
for b in "$NODE_BIN" "$BENCH_BIN" "$NAIVE_BIN"; do
    [[ -x $b ]] || die "missing $b: cargo build --release -p node -p gatehouse-bench"
done
[[ -d $here/peers/node_modules ]] || die "peers not installed: bench/peers/setup.sh"
command -v jq >/dev/null || die "jq is needed"
command -v taskset >/dev/null || die "taskset is needed"
[[ -f $NODE_CONFIG ]] || die "missing node config $NODE_CONFIG"

if ((quick)); then
    runs=1
    sat_subs=2000 fixed_subs=1000 idle_conns=2000 hot_conns=2000 presence_conns=1000 storm_clients=2000
else
    sat_subs=10000 fixed_subs=5000 idle_conns=10000 hot_conns=10000 presence_conns=10000 storm_clients=10000
fi
stamp=$(date -u +%Y-%m-%d-%H%M)
json=${json:-$here/results/$stamp-compare.json}
mkdir -p "$(dirname "$json")"
base=${json%.json}
raw=$base.jsonl
table=$base.md
: >"$raw"

work=$(mktemp -d)
server_pid=
stop_server() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
    fi
    [[ -n $server_pid ]] && wait "$server_pid" 2>/dev/null || true
    server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

port_seq=0
# start_server TARGET: starts a fresh server pinned to SERVER_CPU; sets server_pid, server_url.
start_server() {
    local t=$1 log=$work/server.log addr= port
    port_seq=$((port_seq + 1))
    port=$((PORT_BASE + port_seq % 500))
    : >"$log"
    case $t in
        gatehouse)
            taskset -c "$SERVER_CPU" "$NODE_BIN" --config "$NODE_CONFIG" >/dev/null 2>"$log" &
            ;;
        *)
            taskset -c "$SERVER_CPU" "$here/peers/start.sh" "$t" "$port" >"$log" 2>&1 &
            ;;
    esac
    server_pid=$!
    for _ in $(seq 1 150); do
        if [[ $t == gatehouse ]]; then
            addr=$(grep -m1 '"message":"listening"' "$log" 2>/dev/null | jq -r .public 2>/dev/null || true)
        elif grep -q '^listening' "$log"; then
            addr=127.0.0.1:$port
        fi
        [[ -n $addr ]] && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; die "$t did not start"; }
        sleep 0.1
    done
    [[ -n $addr ]] || { cat "$log" >&2; die "$t did not report listening within 15 s"; }
    server_url=ws://$addr
    sleep 1 # let it settle before its RSS is read
}

# scenario NAME ARGS…: RUNS runs of one generator scenario against each target (only the
# targets in $only_targets when that is set).
scenario() {
    local name=$1 t run line
    shift
    [[ " $scenarios " == *" $name "* ]] || return 0
    for t in $targets; do
        [[ -z ${only_targets:-} || " $only_targets " == *" $t "* ]] || continue
        for run in $(seq 1 "$runs"); do
            start_server "$t"
            echo "== $name / $t run $run/$runs: pid $server_pid at $server_url ($(uptime | sed 's/.*load/load/'))" >&2
            line=$(taskset -c "$GEN_CPU" timeout 600 "$BENCH_BIN" --json "$@" --target "$t" \
                --url "$server_url" --pid "$server_pid" 2>"$work/gen.err" | grep '^{' | tail -n1 || true)
            tail -n 3 "$work/gen.err" >&2
            stop_server
            if [[ -z $line ]]; then
                echo "compare.sh: $name / $t run $run produced no result" >&2
                cat "$work/gen.err" >&2
                continue
            fi
            jq -c --arg s "$name" --arg t "$t" --argjson r "$run" \
                --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
                '{scenario: $s, target_name: $t, run: $r, loadavg: $load} + .' <<<"$line" >>"$raw"
        done
    done
}

# render_table JSON: the markdown table with ratios Gatehouse / peer.
render_table() {
    jq -r '
  def n(x): if x == null then "–" else (x | tostring) end;
  def k(x): if x == null then "–" else ((x | floor) | tostring | [scan("\\d{1,3}(?=(?:\\d{3})*$)")] | join(",")) end;
  def r(a; b): if a == null or b == null or b == 0 then "–" else ((a / b * 100 | round) / 100 | tostring) + "×" end;
  .medians as $m | ($m.gatehouse // null) as $g
  | "| target | saturation deliveries/s (gen CPU) | p99 there | fixed 5k×10/s p50 / p99 | RSS (heap) per idle joined conn | connects/s (gen CPU) | connections held |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ($m | to_entries[] | .key as $t | .value |
      "| \($t) | \(k(.sat_delivered_per_s)) (\(n(.sat_generator_cpu_pct)) %\(if (.sat_generator_saturated_runs // 0) > 0 then ", LOWER BOUND" else "" end)) | \(n(.sat_p99_ms)) ms | \(n(.fixed_p50_ms)) / \(n(.fixed_p99_ms)) ms | \(n(.idle_rss_per_conn_kib)) KiB\(if .idle_heap_per_conn_kib == null then "" else " (\(n(.idle_heap_per_conn_kib)))" end) | \(k(.idle_connects_per_s))\(if .idle_generator_cpu_pct == null then "" else " (\(n(.idle_generator_cpu_pct)) %\(if (.idle_generator_saturated_runs // 0) > 0 then ", over 85 % in \(.idle_generator_saturated_runs) run(s)" else "" end))" end) | \(n(.idle_held)) of \(n(.idle_requested)) |"),
    (if $g == null then empty else
      "", "Ratios Gatehouse / peer (deliveries, connects, held: higher is better; p99, RSS: lower is better):", "",
      "| peer | deliveries/s | fixed p99 | RSS/conn | connects/s | held |", "|---|---:|---:|---:|---:|---:|",
      ($m | to_entries[] | select(.key != "gatehouse") | .key as $t | .value |
        "| \($t) | \(r($g.sat_delivered_per_s; .sat_delivered_per_s)) | \(r($g.fixed_p99_ms; .fixed_p99_ms)) | \(r($g.idle_rss_per_conn_kib; .idle_rss_per_conn_kib)) | \(r($g.idle_connects_per_s; .idle_connects_per_s)) | \(r($g.idle_held; .idle_held)) |")
    end),
    "", "Joins into one room (`hot`: 256 in flight; `presence`: the same with presence events, Gatehouse only):", "",
    "| target | hot joined/s (gen CPU) | connect→joined p50 / p99 | failed | hot ratio Gatehouse / target | presence joined/s | presence frames per member | presence settled after |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ($m | to_entries[] | .key as $t | .value |
      "| \($t) | \(k(.hot_joined_per_s)) (\(n(.hot_generator_cpu_pct)) %) | \(n(.hot_p50_ms)) / \(n(.hot_p99_ms)) ms | \(n(.hot_failed)) | \(if $g == null then "–" else r($g.hot_joined_per_s; .hot_joined_per_s) end) | \(k(.presence_joined_per_s)) | \(n(.presence_frames_per_member)) | \(n(.presence_settle_secs)) s |"),
    (if ($g.storm_runs // 0) == 0 then empty else
      "", "Reconnect storm (Gatehouse only; per moved client, from its reconnect to its `recovered:true` join; the target is 1 s):", "",
      "| drain p99 / max | kill -9 p99 / max | clients over 1 s | refused | lost / duplicated | runs within target |",
      "|---:|---:|---:|---:|---:|---:|",
      "| \(n($g.storm_drain_p99_ms)) / \(n($g.storm_drain_max_ms)) ms | \(n($g.storm_kill_p99_ms)) / \(n($g.storm_kill_max_ms)) ms | \(n($g.storm_over_1s)) | \(n($g.storm_refused)) | \(n($g.storm_lost)) / \(n($g.storm_duplicated)) | \($g.storm_runs_met) of \($g.storm_runs) |"
    end)
    ' "$1"
}

echo "compare.sh: targets: $targets; $runs run(s) each; results in $base.*" >&2
started=$(date -u +%FT%TZ)
scenario sat fanout --subscribers "$sat_subs" --saturate --rate 5 --warmup 1 --seconds 3 \
    --bisect 3 --drain 8
scenario fixed fanout --subscribers "$fixed_subs" --rate 10 --warmup 2 --seconds 10
scenario idle idle --connections "$idle_conns" --rooms 100 --concurrency 100
scenario hot hotroom --connections "$hot_conns" --concurrency 256
only_targets=gatehouse scenario presence hotroom --connections "$presence_conns" --concurrency 256 \
    --presence --presence-batch --settle-max 120

# The reconnect storm: its own 3-node cluster (bench/reconnect-storm.sh starts and stops it);
# each of its runs goes into the raw file as scenario storm_drain / storm_kill.
if [[ " $scenarios " == *" storm "* && " $targets " == *" gatehouse "* ]]; then
    echo "== storm / gatehouse: $runs run(s) each of drain and kill -9 ($(uptime | sed 's/.*load/load/'))" >&2
    RUNS=$runs CLIENTS=$storm_clients NODE_BIN=$NODE_BIN BENCH_BIN=$BENCH_BIN \
        "$here/reconnect-storm.sh" both "$work/storm" >&2 ||
        echo "compare.sh: the reconnect storm did not pass every run (see its table)" >&2
    if [[ -s $work/storm.jsonl ]]; then
        jq -c --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
            '{scenario: ("storm_" + .scenario), target_name: "gatehouse", run, loadavg: $load,
              passed, target_met, moved: .merged.moved_clients,
              from_connect_ms: .merged.from_connect_ms, over_1s: .merged.over_target_from_connect,
              refused: .merged.clients_refused, lost: (.merged.gaps + .merged.missing_at_end),
              duplicated: .merged.dups}' "$work/storm.jsonl" >>"$raw"
    fi
fi

# Medians per target and figure.
jq -s --arg order "$targets" --arg started "$started" --arg host "$(uname -srm)" --arg cpus "$(nproc)" \
    --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" '
  def med: map(select(. != null)) | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def fig(s; f): [.[] | select(.scenario == s) | f] | med;
  def storm: [.[] | select(.scenario | startswith("storm_"))];
  . as $all | ($order | split(" ") | map(select(length > 0))) as $ts
  | {started: $started, host: $host, cpu: $cpu, cpus: ($cpus | tonumber),
     medians: ($ts | map(. as $t | {key: $t, value: ([$all[] | select(.target_name == $t)] |
       {sat_delivered_per_s: fig("sat"; .delivered_per_s),
        sat_p99_ms: fig("sat"; .latency.p99_ms),
        sat_passed_runs: ([.[] | select(.scenario == "sat" and .passed)] | length),
        sat_generator_cpu_pct: fig("sat"; .generator_cpu_per_core_pct),
        sat_generator_saturated_runs: ([.[] | select(.scenario == "sat" and .generator_saturated)] | length),
        sat_server_cpu_pct: fig("sat"; .node_cpu_pct),
        fixed_delivered_ratio: fig("fixed"; .delivered_ratio),
        fixed_p50_ms: fig("fixed"; .latency.p50_ms),
        fixed_p99_ms: fig("fixed"; .latency.p99_ms),
        fixed_generator_cpu_pct: fig("fixed"; .generator_cpu_per_core_pct),
        idle_rss_per_conn_kib: fig("idle"; .node_rss_per_conn_kib),
        idle_heap_per_conn_kib: fig("idle"; .node_heap_per_conn_kib),
        idle_connects_per_s: fig("idle"; .connects_per_s),
        idle_generator_cpu_pct: fig("idle"; .generator_cpu_connect_pct),
        idle_generator_saturated_runs: ([.[] | select(.scenario == "idle" and .generator_saturated)] | length),
        idle_held: fig("idle"; (.joined - .closed_by_server)),
        idle_requested: fig("idle"; .connections_requested),
        hot_joined_per_s: fig("hot"; .joined_per_s),
        hot_p50_ms: fig("hot"; .connect_to_joined.p50_ms),
        hot_p99_ms: fig("hot"; .connect_to_joined.p99_ms),
        hot_failed: fig("hot"; .failed),
        hot_generator_cpu_pct: fig("hot"; .generator_cpu_per_core_pct),
        presence_joined_per_s: fig("presence"; .joined_per_s),
        presence_p99_ms: fig("presence"; .connect_to_joined.p99_ms),
        presence_frames_per_member: fig("presence"; if .joined > 0 then (.presence_frames / .joined * 10 | round) / 10 else null end),
        presence_events: fig("presence"; .presence_events),
        presence_settle_secs: fig("presence"; .presence_settle_secs),
        presence_closed: fig("presence"; .closed_by_server),
        storm_drain_p99_ms: fig("storm_drain"; .from_connect_ms.p99),
        storm_drain_max_ms: ([.[] | select(.scenario == "storm_drain") | .from_connect_ms.max] | max),
        storm_kill_p99_ms: fig("storm_kill"; .from_connect_ms.p99),
        storm_kill_max_ms: ([.[] | select(.scenario == "storm_kill") | .from_connect_ms.max] | max),
        storm_over_1s: (storm | map(.over_1s) | add),
        storm_refused: (storm | map(.refused) | add),
        storm_lost: (storm | map(.lost) | add),
        storm_duplicated: (storm | map(.duplicated) | add),
        storm_runs_met: (storm | map(select(.target_met)) | length),
        storm_runs: (storm | length),
        runs: ([.[] | .run] | max)})}) | from_entries),
     runs: $all}' "$raw" >"$json"

render_table "$json" | tee "$table"
echo >&2
echo "compare.sh: raw runs $raw, medians $json, table $table" >&2
