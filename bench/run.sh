#!/usr/bin/env bash
# Runs one gatehouse-bench scenario RUNS times, each against a freshly started release node,
# with the node pinned to NODE_CPU and the generator to GEN_CPU (taskset, when available).
# Appends each run's JSON line to OUT and prints the medians of the main figures.
#
#   bench/run.sh idle   --connections 10000 --rooms 100
#   bench/run.sh fanout --subscribers 1000 --rate 100 --seconds 10
#   bench/run.sh fanout --subscribers 10000 --saturate --rate 5 --warmup 1 --seconds 3
#   bench/run.sh rooms  --rooms 100 --subscribers 50 --publishers 10 --rate 1000
#
# Environment: NODE_BIN (default target/release/gatehouse), BENCH_BIN (default
# target/release/gatehouse-bench), RUNS (3), NODE_CPU (0), GEN_CPU (1), OUT (bench-results.jsonl),
# NODE_CONFIG (a TOML file; default bench/bench.toml, limits lifted for benchmarking).
# Gatehouse only; bench/compare.sh runs the peers too.
set -euo pipefail

case ${1:-} in -h | --help | "") sed -n '2,12s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
mode=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
NODE_BIN=${NODE_BIN:-$root/target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-$root/target/release/gatehouse-bench}
RUNS=${RUNS:-3}
NODE_CPU=${NODE_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
OUT=${OUT:-bench-results.jsonl}

for b in "$NODE_BIN" "$BENCH_BIN"; do
    [[ -x $b ]] || { echo "missing $b: cargo build --release -p node -p gatehouse-bench" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "jq is needed for the medians" >&2; exit 1; }

work=$(mktemp -d)
node_pid=
cleanup() {
    if [[ -n $node_pid ]] && kill -0 "$node_pid" 2>/dev/null; then
        kill -TERM "$node_pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    node_pid=
}
trap 'cleanup; rm -rf "$work"' EXIT

config=${NODE_CONFIG:-$here/bench.toml}
[[ -f $config ]] || { echo "missing node config $config" >&2; exit 1; }

pin() { # pin CPU cmd…
    local cpu=$1
    shift
    if command -v taskset >/dev/null; then taskset -c "$cpu" "$@"; else "$@"; fi
}

results=()
for run in $(seq 1 "$RUNS"); do
    log=$work/node-$run.log
    # Started directly (not through a function or subshell) so that $! is the node itself
    # (taskset execs it): the generator reads that pid's RSS and CPU.
    if command -v taskset >/dev/null; then
        taskset -c "$NODE_CPU" "$NODE_BIN" --config "$config" >/dev/null 2>"$log" &
    else
        "$NODE_BIN" --config "$config" >/dev/null 2>"$log" &
    fi
    node_pid=$!
    addr=
    for _ in $(seq 1 100); do
        addr=$(grep -m1 '"message":"listening"' "$log" 2>/dev/null | jq -r .public 2>/dev/null || true)
        [[ -n $addr ]] && break
        kill -0 "$node_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.1
    done
    [[ -n $addr ]] || { echo "node did not report listening" >&2; cat "$log" >&2; exit 1; }
    sleep 1 # let the fresh node settle before its RSS is read
    [[ $(readlink "/proc/$node_pid/exe") == "$(readlink -f "$NODE_BIN")" ]] ||
        { echo "pid $node_pid is not the node" >&2; exit 1; }
    echo "== run $run/$RUNS: node pid $node_pid at $addr" >&2
    line=$(pin "$GEN_CPU" "$BENCH_BIN" --json "$mode" --url "ws://$addr/ws" --pid "$node_pid" "$@" |
        tee /dev/stderr | grep '^{' | tail -n1)
    warnings=$(jq -c 'select(.level=="WARN" or .level=="ERROR") | .message' "$log" 2>/dev/null |
        grep -v -e 'admin token' -e 'API key' -e 'auth.required' | sort | uniq -c || true)
    [[ -n $warnings ]] && echo "node warnings/errors in run $run:" >&2 && echo "$warnings" >&2
    cleanup
    # How often the node logged each message (e.g. "room created" once per room expected).
    counts=$(jq -s -c 'map(.message) | group_by(.) | map({key: .[0], value: length}) | from_entries' "$log" 2>/dev/null || echo '{}')
    line=$(jq -c --arg node_warnings "$warnings" --argjson counts "$counts" \
        '. + {node_warnings: $node_warnings, node_log_messages: $counts}' <<<"$line")
    echo "$line" >>"$OUT"
    results+=("$line")
done

median() { # field path (jq), over the runs
    printf '%s\n' "${results[@]}" | jq -s "[.[] | $1 // empty] | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end"
}

echo "== medians of $RUNS runs: $mode $*"
if [[ $mode == idle ]]; then
    for f in .connects_per_s .connect_latency.p99_ms .joins_per_s .node_rss_per_conn_kib \
        .closed_by_server .connect_failed .generator_cpu_per_core_pct; do
        echo "  ${f#.}: $(median "$f")"
    done
else
    for f in .offered_msgs_per_s .expected_deliveries_per_s .delivered_per_s .latency.p50_ms \
        .latency.p99_ms .latency.max_ms .lost_deliveries .loss_pct .subscribers_closed \
        .generator_cpu_per_core_pct .node_cpu_pct; do
        echo "  ${f#.}: $(median "$f")"
    done
fi
