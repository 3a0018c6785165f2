#!/usr/bin/env bash
# Reconnect storm on a local 3-node cluster (issue #19): N clients joined to a few rooms, then one
# node drained (scenario `drain`) or the node that owns the rooms killed with kill -9 (scenario
# `kill`); every moved client is timed until it is back with `recovered:true` (bench/README.md).
#
#   bench/reconnect-storm.sh [drain|kill|both] [OUT_PREFIX]
#
# Each run starts 3 release nodes with deploy/local-cluster.sh (the shipped example configs:
# drain_rate 500/s, drain_jitter_ms 5000, drain_delay_ms 2000; anonymous clients) on loopback
# ports it checks free first (BASE_PORT_OFFSET, then +20 … up to 10 tries). CLIENTS anonymous
# clients, split over GENS `gatehouse-bench members` processes (each under 15 000 descriptors of
# its 20 000), connect: client i of a process to node i mod 3, joined to ROOM (ROOMS = 1) or to
# ROOM-0 … ROOM-<ROOMS-1>. Each client checks every room message (epoch, seq: gaps, duplicates)
# and, when its connection ends (a drain's 1012, or lost without a close frame after kill -9),
# reconnects like a well-behaved client to another node's URL with ?session= and joins with
# `since` its position, timed from its first new TCP connect and from the close to the join
# reply. A backend publisher posts PUB_RATE messages/s (round robin over the rooms) through a
# node that is not acted on, from before the storm until after it. Then:
#   drain  POST /admin/v1/nodes/{node}/drain of the owner of ROOM(-0) (DRAIN=other: a node that
#          owns none of the rooms, when there is one);
#   kill   kill -9 of the owner of ROOM(-0), once every room has a backup (its replica).
# The run waits (≤ STORM_TIMEOUT_S) until every client of that node has moved and none is
# reconnecting, then stops the publisher and waits (≤ TAIL_TIMEOUT_S) until every client has the
# last acknowledged publish of its room; then it stops the generators (SIGTERM: each writes one
# JSON line per client) and merges their per-client figures: moved clients, time to the join
# reply p50/p99/max (from the new connect; from the close), recovered true/false, clients
# refused (a refused attempt or join, a non-recovered join, or not back), messages lost (gaps,
# and acknowledged publishes a client never got) and duplicated; plus each node's RSS, CPU and
# connections, its drain log lines (rooms moved, clients gone) and new WARN/ERROR lines.
#
# Prints one line per run and a table (medians over RUNS when RUNS > 1). With OUT_PREFIX (default
# bench/results/<UTC date-time>-reconnect-storm) appends every run's JSON line to OUT_PREFIX.jsonl
# and the table to OUT_PREFIX.md; OUT_PREFIX=- writes nothing. Everything it starts it stops by
# PID (generators, publisher), the nodes with `deploy/local-cluster.sh stop`. Loopback only.
#
# Environment: NODE_BIN (target/release/gatehouse), BENCH_BIN (target/release/gatehouse-bench),
# CLIENTS (10000), ROOMS (1), ROOM (storm), GENS (2 from 2 000 clients on, CLIENTS/15000 rounded
# up above 30 000; else 1), PUB_RATE (5),
# RUNS (1), DRAIN (owner), TARGET_MS (1000), BASE_PORT_OFFSET (1500), CONNECT_TIMEOUT_S (300),
# STORM_TIMEOUT_S (120), TAIL_TIMEOUT_S (30), KEEP_RUN (0: a run's directory, with the node
# logs and the per-client files, is removed after a run that passed; kept after a failure).
# Needs curl, jq and ss. Exit status: 0 every run passed (every moved client back, nothing lost
# or duplicated), 1 otherwise, 2 usage.
set -euo pipefail
cd "$(dirname "$0")/.."

SCENARIO=${1:-both}
case $SCENARIO in
  drain | kill) SCENARIOS=("$SCENARIO") ;;
  both) SCENARIOS=(drain kill) ;;
  -h | --help) sed -n '2,44s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "reconnect-storm: scenario must be drain, kill or both (got $SCENARIO)" >&2; exit 2 ;;
esac
NODE_BIN=${NODE_BIN:-target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-target/release/gatehouse-bench}
CLIENTS=${CLIENTS:-10000}
ROOMS=${ROOMS:-1}
ROOM=${ROOM:-storm}
# Two generator processes from 2 000 clients on (two threads get a fairer share of the 2 cores
# against the nodes' threads), more above 30 000.
if ((CLIENTS >= 2000)); then GENS_DEFAULT=$(((CLIENTS + 14999) / 15000)); ((GENS_DEFAULT >= 2)) || GENS_DEFAULT=2; else GENS_DEFAULT=1; fi
GENS=${GENS:-$GENS_DEFAULT}
PUB_RATE=${PUB_RATE:-5}
RUNS=${RUNS:-1}
DRAIN=${DRAIN:-owner}
TARGET_MS=${TARGET_MS:-1000}
OFFSET0=${BASE_PORT_OFFSET:-1500}
CONNECT_TIMEOUT_S=${CONNECT_TIMEOUT_S:-300}
STORM_TIMEOUT_S=${STORM_TIMEOUT_S:-120}
TAIL_TIMEOUT_S=${TAIL_TIMEOUT_S:-30}
KEEP_RUN=${KEEP_RUN:-0}
OUT_PREFIX=${2:-bench/results/$(date -u +%Y-%m-%d-%H%M)-reconnect-storm}
[[ $OUT_PREFIX == - || $OUT_PREFIX == /* ]] || OUT_PREFIX=$PWD/$OUT_PREFIX
for v in CLIENTS ROOMS GENS PUB_RATE RUNS TARGET_MS OFFSET0 CONNECT_TIMEOUT_S STORM_TIMEOUT_S TAIL_TIMEOUT_S; do
  [[ ${!v} =~ ^[0-9]+$ ]] && ((${!v} > 0)) || { echo "reconnect-storm: $v must be a positive integer" >&2; exit 2; }
done
[[ $DRAIN == owner || $DRAIN == other ]] || { echo "reconnect-storm: DRAIN must be owner or other" >&2; exit 2; }
((CLIENTS / GENS <= 15000)) || { echo "reconnect-storm: more than 15 000 clients per generator; raise GENS" >&2; exit 2; }
for bin in "$NODE_BIN" "$BENCH_BIN"; do
  [[ -x $bin ]] || { echo "reconnect-storm: $bin not built (cargo build --release -p node -p gatehouse-bench)" >&2; exit 2; }
done
for tool in curl jq ss; do
  command -v "$tool" >/dev/null || { echo "reconnect-storm: $tool is needed" >&2; exit 2; }
done

names=(a b c)
head_rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
run=
gens=()
pub_pid=
run_ok=1
all_ok=0
LINES=()

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
pub_url() { echo "http://127.0.0.1:$((8080 + OFFSET + $1))"; }
admin_url() { echo "http://127.0.0.1:$((9100 + OFFSET + $1))"; }
ws_url() { echo "ws://127.0.0.1:$((8080 + OFFSET + $1))/ws"; }
node_pid() { cat "$run/lc/node-${names[$1 - 1]}.pid"; }
idx_of() { case ${1#node-} in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; *) echo 0 ;; esac; }
alive() { kill -0 "$(node_pid "$1")" 2>/dev/null; }
fail() { echo "reconnect-storm: $*" >&2; run_ok=0; }
room_name() { if ((ROOMS == 1)); then echo "$ROOM"; else echo "$ROOM-$1"; fi; }

# Stops what this run started: the publisher and the generators by PID, the nodes by their pid
# files (deploy/local-cluster.sh stop), and removes the run directory unless it is to be kept.
stop_run() {
  local pid
  [[ -n $pub_pid ]] && kill "$pub_pid" 2>/dev/null || true
  for pid in "${gens[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${gens[@]}" $pub_pid; do wait "$pid" 2>/dev/null || true; done
  gens=()
  pub_pid=
  [[ -n $run && -f $run/lc/node-a.pid ]] && deploy/local-cluster.sh stop "$run/lc" >"$run/stop.out" 2>&1 || true
  if [[ -n $run ]]; then
    if ((run_ok)) && [[ $KEEP_RUN == 0 ]]; then rm -rf "$run"; else echo "reconnect-storm: run directory kept: $run" >&2; fi
  fi
  run=
}
trap stop_run EXIT
trap 'run_ok=0; exit 1' INT TERM

# --- Per-node figures -----------------------------------------------------------------------

# {"node-a": {"rss_kib", "cpu_ticks", "connections", "rejected_upgrades", "client_errors"}, …}
snapshot() {
  local i body pid
  for i in 1 2 3; do
    if alive "$i" && body=$(curl -s --max-time 5 "$(pub_url "$i")/metrics"); then
      pid=$(node_pid "$i")
      awk -v n="node-${names[i - 1]}" -v rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")" \
        -v cpu="$(awk '{print $14 + $15}' "/proc/$pid/stat")" '
        /^gatehouse_connections_active / { c = $2 }
        /^gatehouse_rejected_upgrades_total/ { rej += $2 }
        /^gatehouse_client_errors_total/ { err += $2 }
        /^gatehouse_pending_sockets_dropped_total/ { drop += $2 }
        /^gatehouse_room_migrations_total/ { mig += $2 }
        END { printf "{\"node\":\"%s\",\"rss_kib\":%d,\"cpu_ticks\":%d,\"connections\":%d,\"rejected_upgrades\":%d,\"client_errors\":%d,\"pending_sockets_dropped\":%d,\"room_migrations\":%d}\n", n, rss, cpu, c, rej, err, drop, mig }
      ' <<<"$body"
    else
      printf '{"node":"node-%s","down":true}\n' "${names[i - 1]}"
    fi
  done | jq -sc 'map({key: .node, value: del(.node)}) | from_entries'
}

# Every room of this run as node $1's admin API lists it: {name: {owner, backup, epoch, seq,
# members}}.
rooms_info() {
  curl -s --max-time 5 "$(admin_url "$1")/admin/v1/rooms?q=$ROOM&limit=1000" |
    jq -c '[.rooms[] | {key: .name, value: {owner, backup, epoch, seq, members}}] | from_entries' 2>/dev/null || echo '{}'
}

# The generators' status files summed (the fields the loops below wait on).
gen_agg() {
  local files=() g
  for ((g = 0; g < GENS; g++)); do [[ -s $run/gen-$g.status ]] && files+=("$run/gen-$g.status"); done
  ((${#files[@]})) || { echo '{}'; return; }
  jq -sc '{joined: (map(.joined_now) | add), connecting: (map(.connecting) | add),
    reconnecting: (map(.reconnecting) | add), lost: (map(.lost) | add), failed: (map(.failed) | add),
    initial_done: (map(.initial_done) | add), moved_clients: (map(.moved_clients) | add),
    assigned_per_url: ([.[].assigned_per_url] | transpose | map(add)),
    rooms: (reduce (.[].rooms | to_entries[]) as $e ({};
      .[$e.key] |= {joined: ((.joined // 0) + $e.value.joined),
        min_seq: ([.min_seq, $e.value.min_seq] | map(select(. != null)) | min),
        epochs: (reduce ($e.value.epochs | to_entries[]) as $x ((.epochs // {}); .[$x.key] += $x.value))}))}' "${files[@]}"
}

# Publisher: PUB_RATE backend publishes per second, round robin over the rooms, through the node
# named in $run/pub-node; one line per publish in $run/pub.log: unix ms, HTTP status, room, body.
publisher() {
  local n=0 i room body code next now wait_ms every=$((1000000 / PUB_RATE)) end_ms
  trap 'exit 0' TERM
  next=${EPOCHREALTIME/./}
  end_ms=$(($(now_ms) + 1000 * (CONNECT_TIMEOUT_S + STORM_TIMEOUT_S + TAIL_TIMEOUT_S + 300)))
  while (($(now_ms) < end_ms)); do
    i=$(<"$run/pub-node")
    room=$(room_name $((n % ROOMS)))
    body=$(curl -s --max-time 2 -w ' %{http_code}' -X POST "$(pub_url "$i")/api/v1/rooms/$room/publish" \
      -d "{\"data\":{\"n\":$n}}" 2>/dev/null || true)
    code=${body##* }
    body=${body% *}
    [[ $code =~ ^[0-9]{3}$ ]] || code=000
    printf '%s %s %s %s\n' "$(now_ms)" "$code" "$room" "${body//[$'\n\r']/ }" >>"$run/pub.log"
    n=$((n + 1))
    next=$((next + every))
    now=${EPOCHREALTIME/./}
    if ((next > now)); then
      wait_ms=$(((next - now) / 1000))
      sleep "$((wait_ms / 1000)).$(printf '%03d' $((wait_ms % 1000)))"
    else
      next=$now
    fi
  done
}

# The last acknowledged publish of each room: {room: {epoch, seq, unix_ms}}; with $1 only those
# acknowledged at or before unix ms $1.
last_acked() {
  awk -v t="${1:-99999999999999}" '$2 == 200 && $1 <= t { last[$3] = $0 } END { for (r in last) print last[r] }' "$run/pub.log" 2>/dev/null |
    while read -r ms _ room body; do
      jq -c --arg r "$room" --argjson ms "$ms" '{($r): {epoch, seq, unix_ms: $ms}}' <<<"$body" 2>/dev/null || true
    done | jq -sc 'add // {}'
}

# Whether every joined client of every room holds the last acknowledged publish $1 (JSON from
# last_acked), in its epoch.
caught_up() {
  jq -en --argjson want "$1" --argjson agg "$(gen_agg)" --argjson clients "$CLIENTS" '
    ($agg.joined == $clients) and
    ([$want | to_entries[] | . as $w | ($agg.rooms[$w.key] // {}) as $r |
      (($r.min_seq // -1) >= $w.value.seq) and ((($r.epochs // {}) | keys) == [$w.value.epoch])] | all)' >/dev/null
}

# New lines of each node's log since the line counts in file $1.
log_mark() { local i; for i in 1 2 3; do wc -l <"$run/lc/node-${names[i - 1]}.log"; done >"$1"; }
log_new() {
  local i from
  for i in 1 2 3; do
    from=$(sed -n "${i}p" "$1")
    tail -n +"$((from + 1))" "$run/lc/node-${names[i - 1]}.log" | sed "s/^/node-${names[i - 1]}: /" || true
  done
}

# Picks a base port offset whose 9 ports are free (bounded tries).
pick_offset() {
  local off=$OFFSET0 try p busy listening
  listening=$(ss -Htln 2>/dev/null | awk '{print $4}' | sed 's/.*://' | sort -u)
  for ((try = 0; try < 10; try++)); do
    busy=0
    for p in $((8081 + off)) $((8082 + off)) $((8083 + off)) $((9101 + off)) $((9102 + off)) $((9103 + off)) \
      $((7101 + off)) $((7102 + off)) $((7103 + off)); do
      grep -qx "$p" <<<"$listening" && busy=1
    done
    ((busy == 0)) && { echo "$off"; return 0; }
    off=$((off + 20))
  done
  return 1
}

# --- One run ------------------------------------------------------------------------------------

one_run() {
  local scenario=$1 runno=$2 g i per off t_connect rooms0 owner O V P agg want n_moved
  local t_action t_back_ms storm_s tail_ok before after action_http drain_log merged line
  run_ok=1
  run=$(mktemp -d "${TMPDIR:-/tmp}/reconnect-storm.XXXXXX")
  mkdir -p "$run/lc"
  local started=0 tries
  for ((tries = 0; tries < 3 && started == 0; tries++)); do
    OFFSET=$(pick_offset) || { fail "no free ports near BASE_PORT_OFFSET=$OFFSET0"; return 1; }
    if GATEHOUSE_BIN=$NODE_BIN RUN_DIR=$run/lc BASE_PORT_OFFSET=$OFFSET READY_TIMEOUT_S=60 \
      deploy/local-cluster.sh 3 --detach >"$run/cluster.out" 2>&1; then
      started=1
    elif (($? != 3)); then
      cat "$run/cluster.out" >&2
      fail "the cluster did not start"
      return 1
    fi
  done
  ((started)) || { fail "no free ports (3 tries)"; return 1; }

  # Connect: GENS generators, each client i to node i mod 3.
  local t0
  t0=$(now_ms)
  for ((g = 0; g < GENS; g++)); do
    per=$((CLIENTS / GENS + (g < CLIENTS % GENS ? 1 : 0)))
    "$BENCH_BIN" --json members --url "$(ws_url 1)" --url "$(ws_url 2)" --url "$(ws_url 3)" \
      --room "$ROOM" --rooms "$ROOMS" --connections "$per" --concurrency 64 \
      --source-ips 64 --source-offset $((g * 64)) --status "$run/gen-$g.status" --status-ms 250 \
      --reconnect --target-ms "$TARGET_MS" --clients "$run/gen-$g.clients" \
      >"$run/gen-$g.out" 2>"$run/gen-$g.err" &
    gens+=($!)
  done
  local deadline=$((SECONDS + CONNECT_TIMEOUT_S))
  while :; do
    agg=$(gen_agg)
    (($(jq -r '.initial_done // 0' <<<"$agg") >= CLIENTS)) && break
    ((SECONDS < deadline)) || { fail "connect: not every client had an outcome after ${CONNECT_TIMEOUT_S}s: $agg"; return 1; }
    for g in "${gens[@]}"; do kill -0 "$g" 2>/dev/null || { fail "a generator exited"; cat "$run"/gen-*.err >&2; return 1; }; done
    sleep 0.25
  done
  t_connect=$(( $(now_ms) - t0 ))
  (($(jq -r '.joined' <<<"$agg") == CLIENTS)) || { fail "connect: only $(jq -r .joined <<<"$agg") of $CLIENTS joined"; return 1; }

  # Who owns the rooms; the node acted on (V) and the one the publisher goes through (P).
  deadline=$((SECONDS + 30))
  until rooms0=$(rooms_info 1); (($(jq 'length' <<<"$rooms0") >= ROOMS)); do
    ((SECONDS < deadline)) || { fail "the admin API does not list the $ROOMS room(s): $rooms0"; return 1; }
    sleep 0.2
  done
  owner=$(jq -r --arg r "$(room_name 0)" '.[$r].owner' <<<"$rooms0")
  O=$(idx_of "$owner")
  V=$O
  if [[ $scenario == drain && $DRAIN == other ]]; then
    for i in 1 2 3; do
      jq -e --arg n "node-${names[i - 1]}" '[.[] | .owner] | index($n) | not' <<<"$rooms0" >/dev/null && { V=$i; break; }
    done
    ((V != O)) || echo "reconnect-storm: every node owns one of the rooms: draining the owner of $(room_name 0)" >&2
  fi
  P=$((V % 3 + 1))
  echo "$P" >"$run/pub-node"
  : >"$run/pub.log"
  publisher &
  pub_pid=$!

  # Steady state before the storm: acknowledged publishes reach every client, and (kill) every
  # room has a backup holding its replica, or the room would come back with a new epoch.
  deadline=$((SECONDS + 60))
  while :; do
    want=$(last_acked)
    if (($(jq 'length' <<<"$want") >= ROOMS)) && caught_up "$want"; then
      [[ $scenario == drain ]] && break
      (($(rooms_info "$P" | jq '[.[] | select(.backup != null and .backup != "")] | length') >= ROOMS)) && break
    fi
    ((SECONDS < deadline)) || { fail "no steady state before the storm (publishes: $(wc -l <"$run/pub.log"), want $want, $(gen_agg))"; return 1; }
    sleep 0.25
  done
  rooms0=$(rooms_info "$P")
  n_moved=$(jq -r --argjson v "$V" '.assigned_per_url[$v - 1]' <<<"$(gen_agg)")
  before=$(snapshot)
  log_mark "$run/mark"
  local vname="node-${names[V - 1]}"
  echo "reconnect-storm: run $runno $scenario: $CLIENTS clients joined in $((t_connect / 1000)).$(printf '%03d' $((t_connect % 1000))) s; rooms $(jq -c 'map_values({owner, backup})' <<<"$rooms0"); ${scenario}ing $vname ($n_moved clients), publishing through node-${names[P - 1]}"

  # The storm.
  t_action=$(now_ms)
  if [[ $scenario == drain ]]; then
    action_http=$(curl -s --max-time 30 -o "$run/drain.json" -w '%{http_code}' -X POST "$(admin_url "$P")/admin/v1/nodes/$vname/drain" || echo 000)
    [[ $action_http == 20[02] ]] || fail "drain answered $action_http: $(cat "$run/drain.json" 2>/dev/null)"
  else
    kill -9 "$(node_pid "$V")"
    action_http=-
  fi
  deadline=$((SECONDS + STORM_TIMEOUT_S))
  while :; do
    agg=$(gen_agg)
    jq -e --argjson n "$n_moved" '.moved_clients >= $n and .reconnecting == 0 and .connecting == 0' <<<"$agg" >/dev/null && break
    ((SECONDS < deadline)) || { fail "storm: not every client back after ${STORM_TIMEOUT_S}s: $(jq -c '{moved_clients, reconnecting, joined, lost}' <<<"$agg") of $n_moved to move"; break; }
    # Polled slowly: the times come from the generators' own clocks, and every poll costs CPU
    # the nodes and the generators share.
    sleep 0.5
  done
  t_back_ms=$(now_ms)
  storm_s=$(jq -n --argjson a "$t_action" --argjson b "$t_back_ms" '($b - $a) / 1000')
  # A little more publishing after the last client is back, then the tail: every client must
  # have the last acknowledged publish of its room.
  sleep 1
  kill "$pub_pid" 2>/dev/null || true
  wait "$pub_pid" 2>/dev/null || true
  pub_pid=
  want=$(last_acked)
  tail_ok=false
  deadline=$((SECONDS + TAIL_TIMEOUT_S))
  while :; do
    caught_up "$want" && { tail_ok=true; break; }
    ((SECONDS < deadline)) || { fail "tail: not every client has the last acknowledged publish $want after ${TAIL_TIMEOUT_S}s: $(gen_agg)"; break; }
    sleep 0.2
  done
  after=$(snapshot)
  local rooms1
  rooms1=$(rooms_info "$P")
  log_new "$run/mark" >"$run/storm.log"
  # When the nodes logged the steps of the drain or the failover, in s after the action.
  local times
  times=$({ grep -E 'drain: rooms moved|drain: clients gone|cluster peer down|room restored from its replica|room re-created after its owner' "$run/storm.log" || true; } |
    while read -r node ts _ rest; do
      printf '%s\t%s\t%s\n' "${node%:}" "$(date -u -d "$ts" +%s%3N 2>/dev/null || echo 0)" \
        "$(grep -oE 'drain: rooms moved|drain: clients gone|cluster peer down|room restored from its replica|room re-created after its owner' <<<"$rest" | head -1)"
    done | jq -Rsc --argjson t "$t_action" '[split("\n")[] | select(length > 0) | split("\t") | {node: .[0], what: .[2], s: (((.[1] | tonumber) - $t) / 1000)}]
      | group_by(.what) | map({key: .[0].what, value: (sort_by(.s) | .[0] | {first_node: .node, s})}) | from_entries')
  [[ -n $times ]] || times='{}'
  drain_log=$({ grep "^$vname: " "$run/storm.log" | grep -E 'drain: (rooms moved|clients gone)|drained' || true; } | cut -c1-300 | jq -R . | jq -sc .)

  # Stop the generators: each writes its final JSON line and one line per client.
  for g in "${gens[@]}"; do kill "$g" 2>/dev/null || true; done
  for g in "${gens[@]}"; do wait "$g" 2>/dev/null || true; done
  gens=()
  local gen_lines=()
  for ((g = 0; g < GENS; g++)); do
    gen_lines+=("$(tail -1 "$run/gen-$g.out" | grep '^{' || echo null)")
    [[ -s $run/gen-$g.clients ]] || fail "generator $g wrote no per-client file: $(tail -3 "$run/gen-$g.err")"
  done

  # Merge the per-client figures of every generator.
  merged=$(cat "$run"/gen-*.clients 2>/dev/null | jq -sc --argjson want "$want" --argjson v "$((V - 1))" '
    def q($p): sort | if length == 0 then null else .[((length * $p) | ceil | if . < 1 then 1 else . end) - 1] end;
    def lat: {n: length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: max, mean: (if length == 0 then null else (add / length * 100 | round / 100) end)};
    . as $all
    | [$all[] | select(.home == $v)] as $home
    | [$all[] | .moves[]] as $moves
    | [$all[] | select((.moves | length) > 0)] as $moved
    | {clients: ($all | length),
       on_acted_node: ($home | length),
       moved_clients: ($moved | length),
       moves: ($moves | length),
       from_connect_ms: ([$moves[].from_connect_ms] | lat),
       from_close_ms: ([$moves[].from_close_ms] | lat),
       from_connect_ms_no_refusal: ([$moves[] | select((.refusals | length) == 0) | .from_connect_ms] | lat),
       from_connect_ms_refused: ([$moves[] | select((.refusals | length) > 0) | .from_connect_ms] | lat),
       last_attempt_ms: ([$moves[].last_attempt_ms] | lat),
       welcome_ms: ([$moves[].welcome_ms] | lat),
       join_ms: ([$moves[].join_ms] | lat),
       generator_lag_max_ms: ([$moves[].generator_lag_max_ms] | lat),
       recovered_true: ([$moves[] | select(.recovered == true)] | length),
       recovered_false: ([$moves[] | select(.recovered == false)] | length),
       recovered_absent: ([$moves[] | select(.recovered == null)] | length),
       epoch_changed: ([$moves[] | select(.epoch_changed)] | length),
       moves_with_refusals: ([$moves[] | select((.refusals | length) > 0)] | length),
       refusals: ([$moves[].refusals[]] | group_by(.) | map({key: .[0], value: length}) | from_entries),
       attempts_max: ([$moves[].attempts] | max),
       not_back: ([$home[] | select((.moves | length) == 0 or .state != "joined")] | length),
       clients_refused: ([$all[] | select(
           ((.home == $v) and ((.moves | length) == 0 or .state != "joined"))
           or any(.moves[]; (.refusals | length) > 0 or .recovered != true))] | length),
       over_target_from_connect: ([$moves[] | select(.from_connect_ms > '"$TARGET_MS"')] | length),
       gaps: ([$all[].gaps] | add),
       clients_with_gaps: ([$all[] | select(.gaps > 0)] | length),
       gaps_by_home_node: ([$all[] | select(.gaps > 0)] | group_by(.home) | map({key: ("node-" + (["a","b","c"][.[0].home])), value: (map(.gaps) | add)}) | from_entries),
       gaps_moved_clients: ([$all[] | select(.gaps > 0 and (.moves | length) > 0)] | length),
       first_gap_seqs: ([$all[] | select(.first_gap_seq != null) | .first_gap_seq] | group_by(.) | map({key: (.[0] | tostring), value: length}) | from_entries),
       first_gap_after_action_ms: ([$all[] | select(.first_gap_unix_ms != null) | .first_gap_unix_ms] | if length == 0 then null else {min: (min - '"$t_action"'), max: (max - '"$t_action"')} end),
       dups: ([$all[].dups] | add),
       missing_at_end: ([$all[] | select(.state == "joined") | . as $c | ($want[$c.room] // null) as $w
           | select($w != null and $c.epoch == $w.epoch and $c.seq < $w.seq) | $w.seq - $c.seq] | add // 0),
       other_epoch_at_end: ([$all[] | select(.state == "joined") | . as $c | ($want[$c.room] // null) as $w
           | select($w != null and $c.epoch != $w.epoch)] | length),
       closes: ([$moves[].why] | group_by(.) | map({key: .[0], value: length}) | from_entries),
       moved_to: ([$moves[].to] | group_by(.) | map({key: ("node-" + (["a","b","c"][.[0]])), value: length}) | from_entries),
       first_close_unix_ms: ([$moves[].close_unix_ms] | min),
       last_back_unix_ms: ([$moves[].back_unix_ms] | max)}')
  local pubs acked refused_pubs
  pubs=$(wc -l <"$run/pub.log")
  acked=$(awk '$2 == 200' "$run/pub.log" | wc -l)
  refused_pubs=$(awk -v t="$t_action" '$1 >= t && $2 != 200' "$run/pub.log" | jq -R . | jq -sc '{count: length, first: .[:20]}')
  local warn
  warn=$({ grep -E ' (WARN|ERROR) ' "$run/storm.log" || true; } | cut -c1-400 | jq -R . | jq -sc '.[:30]')
  line=$(jq -cn --arg scenario "$scenario" --argjson run "$runno" --argjson clients "$CLIENTS" \
    --argjson rooms "$ROOMS" --argjson gens "$GENS" --argjson pub_rate "$PUB_RATE" --arg acted "$vname" \
    --arg pubnode "node-${names[P - 1]}" --argjson connect_ms "$t_connect" --arg action_http "$action_http" \
    --argjson storm_s "$storm_s" --argjson t_action "$t_action" --argjson tail_ok "$tail_ok" \
    --argjson rooms0 "$rooms0" --argjson rooms1 "$rooms1" --argjson m "$merged" --argjson want "$want" \
    --argjson before "$before" --argjson after "$after" --argjson drain_log "$drain_log" \
    --argjson warn "$warn" --argjson times "$times" --argjson pubs "$pubs" --argjson acked "$acked" --argjson refused_pubs "$refused_pubs" \
    --argjson gens_out "$(printf '%s\n' "${gen_lines[@]}" | jq -sc 'map(select(. != null) | {assigned, connected, connect_failed, joined_now, reconnecting, lost, moves, moves_recovered, moves_not_recovered, moves_refused, refused, moves_over_target, move_from_connect, move_from_close, move_welcome, move_join, generator_lag, gaps, dups, generator_cpu_s, generator_rss_kib, first_error})')" \
    --argjson target "$TARGET_MS" --arg head "$head_rev" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --argjson ok "$run_ok" '
    {bench: "reconnect-storm", scenario: $scenario, run: $run, clients: $clients, rooms: $rooms,
     generators: $gens, pub_rate: $pub_rate, acted_on: $acted, publisher_via: $pubnode,
     connect_s: ($connect_ms / 1000), action_http: $action_http, action_unix_ms: $t_action,
     all_back_s: $storm_s,
     last_back_after_action_s: (if $m.last_back_unix_ms then (($m.last_back_unix_ms - $t_action) / 1000) else null end),
     first_close_after_action_s: (if $m.first_close_unix_ms then (($m.first_close_unix_ms - $t_action) / 1000) else null end),
     target_ms: $target, merged: $m, tail_caught_up: $tail_ok, last_acked: $want,
     publishes: $pubs, publishes_acked: $acked, publishes_not_acked_after_action: $refused_pubs,
     rooms_before: $rooms0, rooms_after: $rooms1,
     same_epoch: ([$rooms0 | to_entries[] | .value.epoch == ($rooms1[.key].epoch // null)] | all),
     nodes_before: $before, nodes_after: $after,
     node_cpu_s_during: ($before | with_entries(.value = (if ($after[.key].cpu_ticks // null) == null then null else ((($after[.key].cpu_ticks - .value.cpu_ticks) / 100 * 100 | round) / 100) end))),
     node_log_after_action_s: $times, drain_log: $drain_log, warn_error_log_lines: $warn, generators_final: $gens_out,
     passed: ($ok == 1 and $m.not_back == 0 and $m.gaps == 0 and $m.dups == 0 and $m.missing_at_end == 0),
     target_met: ($ok == 1 and $m.not_back == 0 and $m.clients_refused == 0 and $m.over_target_from_connect == 0
       and $m.gaps == 0 and $m.dups == 0 and $m.missing_at_end == 0),
     head: $head, loadavg: $load, unix_time: (now | floor)}')
  ((run_ok)) || line=$(jq -c '.passed = false' <<<"$line")
  jq -e '.passed' <<<"$line" >/dev/null || run_ok=0
  LINES+=("$line")
  [[ $OUT_PREFIX == - ]] || echo "$line" >>"$OUT_PREFIX.jsonl"
  jq -r '"reconnect-storm: run \(.run) \(.scenario) of \(.acted_on): \(.merged.moved_clients)/\(.merged.on_acted_node) moved, last back \(.last_back_after_action_s) s after the action; from connect p50/p99/max \(.merged.from_connect_ms.p50)/\(.merged.from_connect_ms.p99)/\(.merged.from_connect_ms.max) ms, from close \(.merged.from_close_ms.p50)/\(.merged.from_close_ms.p99)/\(.merged.from_close_ms.max) ms; recovered \(.merged.recovered_true) true, \(.merged.recovered_false) false; clients refused \(.merged.clients_refused) \(.merged.refusals); lost \(.merged.gaps + .merged.missing_at_end), duplicated \(.merged.dups); same epoch \(.same_epoch); passed \(.passed), target met \(.target_met)"' <<<"$line"
  return 0
}

# --- Runs and the table ---------------------------------------------------------------------------

for scenario in "${SCENARIOS[@]}"; do
  for ((r = 1; r <= RUNS; r++)); do
    one_run "$scenario" "$r" || true
    ((run_ok)) || all_ok=1
    stop_run
  done
done

table=$(printf '%s\n' "${LINES[@]}" | jq -rs --argjson target "$TARGET_MS" '
  def med: map(select(. != null)) | sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
  def f: if . == null then "–" elif type == "number" then (. * 10 | round / 10 | tostring) else tostring end;
  def row: "| \(.scenario) | \(.run) | \(.clients) | \(.merged.moved_clients) of \(.merged.on_acted_node) | \(.merged.from_connect_ms.p50 | f) / \(.merged.from_connect_ms.p99 | f) / \(.merged.from_connect_ms.max | f) | \(.merged.from_close_ms.p50 | f) / \(.merged.from_close_ms.p99 | f) / \(.merged.from_close_ms.max | f) | \(.merged.over_target_from_connect) | \(.merged.recovered_true) / \(.merged.recovered_false) | \(.merged.clients_refused) | \(.merged.gaps + .merged.missing_at_end) | \(.merged.dups) | \(.last_back_after_action_s | f) | \(.merged.generator_lag_max_ms.p99 | f) |";
  "| scenario | run | clients | moved | from connect p50 / p99 / max, ms | from close p50 / p99 / max, ms | over \($target) ms from connect | recovered true / false | clients refused | lost | duplicated | last back after the action, s | generator lag p99, ms |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  (.[] | row),
  (group_by(.scenario)[] | select(length > 1) |
    "| **\(.[0].scenario)**, median of \(length) | | \(.[0].clients) | \(map(.merged.moved_clients) | med) | \(map(.merged.from_connect_ms.p50) | med | f) / \(map(.merged.from_connect_ms.p99) | med | f) / \(map(.merged.from_connect_ms.max) | med | f) | \(map(.merged.from_close_ms.p50) | med | f) / \(map(.merged.from_close_ms.p99) | med | f) / \(map(.merged.from_close_ms.max) | med | f) | \(map(.merged.over_target_from_connect) | med) | \(map(.merged.recovered_true) | med) / \(map(.merged.recovered_false) | med) | \(map(.merged.clients_refused) | med) | \(map(.merged.gaps + .merged.missing_at_end) | med) | \(map(.merged.dups) | med) | \(map(.last_back_after_action_s) | med | f) | \(map(.merged.generator_lag_max_ms.p99) | med | f) |")')
echo
echo "$table"
if [[ $OUT_PREFIX != - ]]; then
  {
    echo
    echo "## $(date -u '+%Y-%m-%d %H:%M UTC'): reconnect storm, ${SCENARIOS[*]}, $CLIENTS clients, $ROOMS room(s), $RUNS run(s) each ($head_rev, load average $(cut -d' ' -f1-3 /proc/loadavg))"
    echo
    echo "\`CLIENTS=$CLIENTS ROOMS=$ROOMS GENS=$GENS PUB_RATE=$PUB_RATE RUNS=$RUNS DRAIN=$DRAIN bench/reconnect-storm.sh $SCENARIO\`"
    echo
    echo "$table"
  } >>"$OUT_PREFIX.md"
  echo
  echo "reconnect-storm: results appended to $OUT_PREFIX.jsonl and $OUT_PREFIX.md"
fi
exit $all_ok
