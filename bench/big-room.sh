#!/usr/bin/env bash
# One room whose member list is larger than ractor_cluster's 16 MiB frame limit, listed, moved,
# drained and failed over on a local 3-node cluster (issue #16; bench/README.md).
#
#   bench/big-room.sh [OUT.jsonl]
#
# Starts 3 release nodes with deploy/local-cluster.sh (the shipped example configs, JWT auth
# required: GATEHOUSE_AUTH_REQUIRED=true and a fresh HS256 secret in a 0600 file; ports
# 9381–9383 / 10401–10403 / 8401–8403, BASE_PORT_OFFSET 1300). MEMBERS connections (one JWT
# each, minted here with python3, `sub` = a distinct USER_BYTES-byte user id) join ONE room,
# spread evenly over the 3 nodes by GENS_PER_NODE `gatehouse-bench members` processes per node
# (so no process, and no node, passes ~18 700 descriptors of its 20 000). The generators check
# every room message each member receives (order, gaps, duplicates, epoch) and write their
# figures to status files, which this script polls. A backend publisher posts one message every
# PUB_EVERY_S seconds to the room, through a node that is not the one being acted on, for the
# whole run. Then, each step timed, with every node's VmRSS before and after, its cluster-link
# metrics (gatehouse_cluster_peer_fenced_total, …_reconnects_total, …_peer_up) and its new
# WARN/ERROR log lines:
#   connect   every member connected and joined;
#   presence  GET /api/v1/rooms/{room}/presence on a node that does not own the room (×3), and
#             once on the owner, following `next` page by page: time, pages, bytes, members;
#   migrate   POST /admin/v1/rooms/{room}/migrate to that node: time until the owner changes,
#             then until every member has the last acknowledged publish;
#   drain     POST /admin/v1/nodes/{owner}/drain: time until the room is on another node, until
#             the node is drained (its members got 1012); then undrain it and time until its
#             members are back (they resume with ?session= and rejoin with since);
#   failover  kill -9 of the room's owner (after its backup is in place): time until a survivor
#             owns the room, until its member count is the survivors' members, and until every
#             surviving member has the first publish acknowledged after the kill.
# At the end every live member must have the last acknowledged publish, with no gap and no
# duplicate. Prints a table; with OUT appends one JSON line per step, each generator's final
# figures and a summary line. Everything it starts it ends, by PID (generators and publisher),
# the nodes with `deploy/local-cluster.sh stop`. Loopback only.
#
# Environment: NODE_BIN (target/release/gatehouse), BENCH_BIN (target/release/gatehouse-bench),
# MEMBERS (55000), USER_BYTES (256), GENS_PER_NODE (2), ROOM (big-room), PUB_EVERY_S (0.5),
# BASE_PORT_OFFSET (1300), CONNECT_TIMEOUT_S (1800), STEP_TIMEOUT_S (120), KEEP_RUN (0: the run
# directory with the node logs is removed after a run that passed; always kept after a
# failure). Needs curl, jq, bc and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_BIN=${NODE_BIN:-target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-target/release/gatehouse-bench}
MEMBERS=${MEMBERS:-55000}
USER_BYTES=${USER_BYTES:-256}
GENS_PER_NODE=${GENS_PER_NODE:-2}
ROOM=${ROOM:-big-room}
PUB_EVERY_S=${PUB_EVERY_S:-0.5}
OFFSET=${BASE_PORT_OFFSET:-1300}
CONNECT_TIMEOUT_S=${CONNECT_TIMEOUT_S:-1800}
STEP_TIMEOUT_S=${STEP_TIMEOUT_S:-120}
KEEP_RUN=${KEEP_RUN:-0}
OUT=${1:-}
[[ -n $OUT && $OUT != /* ]] && OUT=$PWD/$OUT
for bin in "$NODE_BIN" "$BENCH_BIN"; do
  [[ -x $bin ]] || { echo "big-room: $bin not built (cargo build --release -p node -p gatehouse-bench)" >&2; exit 2; }
done
for tool in curl jq bc python3; do
  command -v "$tool" >/dev/null || { echo "big-room: $tool is needed" >&2; exit 2; }
done

names=(a b c)
GENS=$((3 * GENS_PER_NODE))
run=$(mktemp -d "${TMPDIR:-/tmp}/big-room.XXXXXX")
gens=()
pub_pid=
status=0
cleanup() {
  local pid
  [[ -n $pub_pid ]] && kill "$pub_pid" 2>/dev/null || true
  for pid in "${gens[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${gens[@]}" $pub_pid; do wait "$pid" 2>/dev/null || true; done
  [[ -f $run/lc/node-a.pid ]] && deploy/local-cluster.sh stop "$run/lc" >"$run/stop.out" 2>&1 || true
  rm -f "$run"/tokens-*.txt "$run/jwt-secret"
  if ((status == 0)) && [[ $KEEP_RUN == 0 ]]; then rm -rf "$run"; else echo "big-room: logs kept in $run" >&2; fi
}
trap cleanup EXIT
trap 'status=1; exit 1' INT TERM

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc | awk '{printf "%.3f", $1}'; }
pub_url() { echo "http://127.0.0.1:$((8080 + OFFSET + $1))"; }
admin_url() { echo "http://127.0.0.1:$((9100 + OFFSET + $1))"; }
node_pid() { cat "$run/lc/node-${names[$1 - 1]}.pid"; }
idx_of() { local n=${1#node-}; case $n in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; esac; }
alive() { kill -0 "$(node_pid "$1")" 2>/dev/null; }
rss() { if alive "$1"; then awk '/^VmRSS:/ {print $2}' "/proc/$(node_pid "$1")/status"; else echo null; fi; }
fail() { echo "big-room: $*" >&2; status=1; }

# The JWT secret and one token per member, one file per generator (member m → generator m mod G).
mkdir -p "$run/lc"
(umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$run/jwt-secret")
python3 - "$run/jwt-secret" "$MEMBERS" "$GENS" "$USER_BYTES" "$run" <<'EOF'
import base64, hashlib, hmac, json, sys, time
secret = open(sys.argv[1], "rb").read().strip()
members, gens, user_bytes, run = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(b'{"alg":"HS256","typ":"JWT"}')
exp = int(time.time()) + 86400
files = [open(f"{run}/tokens-{g}.txt", "w") for g in range(gens)]
for m in range(members):
    user = f"member-{m:08d}-"
    user += "u" * (user_bytes - len(user))
    body = head + "." + b64(json.dumps({"sub": user, "exp": exp}, separators=(",", ":")).encode())
    sig = b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    files[m % gens].write(body + "." + sig + "\n")
for f in files:
    f.close()
EOF

export GATEHOUSE_AUTH_REQUIRED=true GATEHOUSE_JWT_SECRET_FILE=$run/jwt-secret
GATEHOUSE_BIN=$NODE_BIN RUN_DIR=$run/lc BASE_PORT_OFFSET=$OFFSET deploy/local-cluster.sh 3 --detach \
  >"$run/cluster.out" 2>&1 || { cat "$run/cluster.out" >&2; status=1; exit 1; }
unset GATEHOUSE_AUTH_REQUIRED GATEHOUSE_JWT_SECRET_FILE

# --- What is measured around every step ------------------------------------------------------

# {"node-a": {"rss_kib", "connections", "fenced": {peer: n}, "reconnects": {…}, "up": {…}}, …}
snapshot() {
  local i body
  {
    for i in 1 2 3; do
      if alive "$i" && body=$(curl -s --max-time 5 "$(pub_url "$i")/metrics"); then
        awk -v n="node-${names[i - 1]}" -v rss="$(rss "$i")" '
          function peer(s) { sub(/.*peer="/, "", s); sub(/".*/, "", s); return s }
          /^gatehouse_connections_active / { c = $2 }
          /^gatehouse_cluster_peer_fenced_total\{/ { f = f sep1 "\"" peer($1) "\":" $2; sep1 = "," }
          /^gatehouse_cluster_peer_reconnects_total\{/ { r = r sep2 "\"" peer($1) "\":" $2; sep2 = "," }
          /^gatehouse_cluster_peer_up\{/ { u = u sep3 "\"" peer($1) "\":" $2; sep3 = "," }
          END { printf "{\"node\":\"%s\",\"rss_kib\":%s,\"connections\":%d,\"fenced\":{%s},\"reconnects\":{%s},\"up\":{%s}}\n", n, rss, c, f, r, u }
        ' <<<"$body"
      else
        printf '{"node":"node-%s","rss_kib":null,"down":true}\n' "${names[i - 1]}"
      fi
    done
  } | jq -s 'map({key: .node, value: del(.node)}) | from_entries'
}

# The generators' figures summed; arguments: node indexes (default all).
gen_files() {
  local i g nodes=("$@")
  ((${#nodes[@]})) || nodes=(1 2 3)
  for i in "${nodes[@]}"; do
    for ((g = i - 1; g < GENS; g += 3)); do [[ -s $run/gen-$g.status ]] && echo "$run/gen-$g.status"; done
  done
  return 0
}
gen_agg() {
  local files
  mapfile -t files < <(gen_files "$@")
  ((${#files[@]})) || { echo '{}'; return; }
  jq -s '{joined: (map(.joined_now) | add), connecting: (map(.connecting) | add),
    reconnecting: (map(.reconnecting) | add), lost: (map(.lost) | add), failed: (map(.failed) | add),
    initial_done: (map(.initial_done) | add), messages: (map(.messages) | add),
    gaps: (map(.gaps) | add), dups: (map(.dups) | add), epoch_changes: (map(.epoch_changes) | add),
    min_seq: (map(.min_seq | select(. != null)) | min), max_seq: (map(.max_seq | select(. != null)) | max),
    epochs: (map(.epochs | keys[]) | unique),
    closes: (reduce (.[].closes | to_entries[]) as $e ({}; .[$e.key] += $e.value)),
    reconnects_ok: (map(.reconnects_ok) | add), recovered_false: (map(.recovered_false) | add),
    replayed: (map(.replayed) | add)}' "${files[@]}"
}

# The room as node $1's admin API sees it: owner, members_total, epoch, backup (or {} if none).
# From the rooms list (`?q=`: one Info call to the room, tens of ms), not from
# /admin/v1/rooms/{room}?limit=1, which reads the whole member list to cut one page (seconds at
# this size; measured once in the presence step).
room_info() {
  curl -s --max-time 5 "$(admin_url "$1")/admin/v1/rooms?q=$ROOM&limit=10" |
    jq -c --arg r "$ROOM" '(.rooms[] | select(.name == $r) | {owner, members_total: .members, epoch, backup, seq}) // {}' 2>/dev/null || echo '{}'
}

# New WARN/ERROR lines of each node's log since offsets file $1 (written by log_mark).
log_mark() { local i; for i in 1 2 3; do wc -l <"$run/lc/node-${names[i - 1]}.log"; done >"$1"; }
log_count() {
  local i from
  for i in 1 2 3; do
    from=$(sed -n "${i}p" "$1")
    printf '{"node":"node-%s","new_lines":%d,"room_rehomed_lines":%d}\n' "${names[i - 1]}" \
      "$(($(wc -l <"$run/lc/node-${names[i - 1]}.log") - from))" \
      "$(tail -n +"$((from + 1))" "$run/lc/node-${names[i - 1]}.log" | grep -c 'room re-homed' || true)"
  done | jq -sc 'map({key: .node, value: del(.node)}) | from_entries'
}
log_new() {
  local i from
  for i in 1 2 3; do
    from=$(sed -n "${i}p" "$1")
    tail -n +"$((from + 1))" "$run/lc/node-${names[i - 1]}.log" | grep -E ' (WARN|ERROR) ' |
      sed "s/^/node-${names[i - 1]}: /" || true
  done
}

# Link cuts between two snapshots among the nodes listed (indexes): Δ fenced and Δ reconnects
# on each pair, and peers seen down at the end.
link_cuts() {
  local before=$1 after=$2; shift 2
  local keep i
  keep=$(for i in "$@"; do printf '"node-%s"\n' "${names[i - 1]}"; done | jq -sc .)
  jq -n --argjson b "$before" --argjson a "$after" --argjson keep "$keep" '
    [ $keep[] as $n | $keep[] as $p | select($n != $p) |
      { node: $n, peer: $p,
        fenced: (($a[$n].fenced[$p] // 0) - ($b[$n].fenced[$p] // 0)),
        reconnects: (($a[$n].reconnects[$p] // 0) - ($b[$n].reconnects[$p] // 0)),
        up: ($a[$n].up[$p] // null) } ]
    | {fenced: (map(.fenced) | add), reconnects: (map(.reconnects) | add),
       down: [ .[] | select(.up != 1) | "\(.node)->\(.peer)" ], pairs: .}'
}

# Publisher: one backend publish every PUB_EVERY_S through the node named in $run/pub-node.
echo 1 >"$run/pub-node"
publisher() {
  local n=0 i body
  trap 'exit 0' TERM
  while :; do
    i=$(<"$run/pub-node")
    body=$(curl -s --max-time 5 -w ' %{http_code}' -X POST "$(pub_url "$i")/api/v1/rooms/$ROOM/publish" \
      -d "{\"data\":{\"n\":$n}}" 2>/dev/null || echo ' 000')
    printf '%s %s %s\n' "$(date +%s%3N)" "${body##* }" "${body% *}" >>"$run/pub.log"
    n=$((n + 1))
    sleep "$PUB_EVERY_S"
  done
}
last_acked() { awk '$2 == 200 {l = $3} END {print l}' "$run/pub.log" 2>/dev/null | jq -r '.seq // empty' 2>/dev/null || true; }
first_acked_after() {
  awk -v t="$1" '$2 == 200 && $1 >= t {print $3; exit}' "$run/pub.log" 2>/dev/null | jq -r '.seq // empty' 2>/dev/null || true
}

# Waits (≤ STEP_TIMEOUT_S) until every joined member of the nodes listed has seq ≥ $1; prints
# the seconds it took from $2.
wait_seq() {
  local want=$1 t0=$2 m; shift 2
  local deadline=$((SECONDS + STEP_TIMEOUT_S))
  while :; do
    m=$(gen_agg "$@" | jq -r '.min_seq // 0')
    ((m >= want)) && { since "$t0"; return 0; }
    ((SECONDS < deadline)) || { echo null; return 1; }
    sleep 0.1
  done
}

# Before a step: every node's figures, the generators' and the logs' positions.
begin() {
  before=$(snapshot)
  gen_before=$(gen_agg)
  log_mark "$run/mark"
}

# record NAME WALL_S DETAIL_JSON LIVE_NODES…: appends the step's JSON line and prints it.
record() {
  local name=$1 wall=$2 detail=$3; shift 3
  local after cuts logs line gen
  after=$(snapshot)
  gen=$(gen_agg)
  cuts=$(link_cuts "$before" "$after" "$@")
  logs=$(log_new "$run/mark" | jq -R . | jq -s '.[:50]')
  line=$(jq -cn --arg step "$name" --argjson wall "$wall" --argjson d "$detail" --argjson b "$before" \
    --argjson a "$after" --argjson cuts "$cuts" --argjson logs "$logs" --argjson gen "$gen" \
    --argjson g0 "$gen_before" --argjson lc "$(log_count "$run/mark")" --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
    --argjson per_node "$(for i in 1 2 3; do gen_agg "$i" | jq -c --arg n "node-${names[i - 1]}" '{key: $n, value: {joined, reconnecting, lost, min_seq, max_seq, gaps, dups}}'; done | jq -sc from_entries)" \
    --argjson members "$MEMBERS" --arg room "$ROOM" '
    {bench: "big-room", step: $step, room: $room, members: $members, wall_s: $wall, detail: $d,
     rss_kib: ($b | with_entries({key, value: {before: .value.rss_kib, after: ($a[.key].rss_kib)}})),
     connections: ($b | with_entries({key, value: {before: .value.connections, after: ($a[.key].connections)}})),
     link_cuts: $cuts,
     members_during_step: {closes: (($gen.closes // {}) | with_entries(.value -= (($g0.closes // {})[.key] // 0)) | with_entries(select(.value != 0))),
       reconnects_ok: (($gen.reconnects_ok // 0) - ($g0.reconnects_ok // 0)),
       gaps: (($gen.gaps // 0) - ($g0.gaps // 0)), dups: (($gen.dups // 0) - ($g0.dups // 0)),
       epoch_changes: (($gen.epoch_changes // 0) - ($g0.epoch_changes // 0)),
       messages: (($gen.messages // 0) - ($g0.messages // 0))},
     log_lines: $lc, warn_error_log_lines: $logs, generators: $gen, members_per_node: $per_node,
     loadavg: $load, unix_time: (now | floor)}')
  echo "$line" >>"$run/steps.jsonl"
  STEPS_TABLE+=("$line")
  jq -r '"== \(.step): \(.wall_s) s; RSS MiB " + ([.rss_kib | to_entries[] | "\(.key) \((.value.before // 0) / 1024 | floor)→\(if .value.after == null then "dead" else ((.value.after / 1024) | floor | tostring) end)"] | join(", ")) + "; link cuts: fenced \(.link_cuts.fenced), reconnects \(.link_cuts.reconnects), down \(.link_cuts.down)"' <<<"$line"
  jq -c '.detail' <<<"$line"
  jq -c '{members_during_step, members_per_node, loadavg}' <<<"$line"
  if [[ $logs != '[]' ]]; then
    echo "   new WARN/ERROR log lines (first 10):"
    jq -r '.[:10][] | "   " + .[:300]' <<<"$logs"
  fi
  return 0
}

# --- connect ---------------------------------------------------------------------------------

begin
t0=$(now)
for ((g = 0; g < GENS; g++)); do
  i=$((g % 3 + 1))
  "$BENCH_BIN" --json members --url "ws://127.0.0.1:$((8080 + OFFSET + i))/ws" --room "$ROOM" \
    --tokens "$run/tokens-$g.txt" --concurrency 64 --source-ips 64 --source-offset $((g * 64)) \
    --status "$run/gen-$g.status" --status-ms 200 --reconnect \
    >"$run/gen-$g.out" 2>"$run/gen-$g.err" &
  gens+=($!)
done
deadline=$((SECONDS + CONNECT_TIMEOUT_S))
last_print=0
while :; do
  agg=$(gen_agg)
  done_n=$(jq -r '.initial_done // 0' <<<"$agg")
  ((done_n >= MEMBERS)) && break
  if ((SECONDS - last_print >= 15)); then
    echo "big-room: $(since "$t0") s: $(jq -r '"\(.joined // 0) joined, \(.failed // 0) failed"' <<<"$agg") of $MEMBERS"
    last_print=$SECONDS
  fi
  if ((SECONDS >= deadline)); then fail "only $done_n of $MEMBERS connects finished after ${CONNECT_TIMEOUT_S}s"; break; fi
  for pid in "${gens[@]}"; do kill -0 "$pid" 2>/dev/null || { fail "a generator exited"; cat "$run"/gen-*.err >&2; exit 1; }; done
  sleep 0.5
done
connect_s=$(since "$t0")
joined=$(gen_agg | jq -r '.joined // 0')
owner=$(room_info 1 | jq -r '.owner // empty')
info=$(room_info 1)
record connect "$connect_s" "$(jq -cn --argjson j "$joined" --argjson info "$info" \
  --argjson per "$(for g in $(seq 0 $((GENS - 1))); do jq -c '{url, assigned, initial_secs, connect_failed, first_error}' "$run/gen-$g.status"; done | jq -s .)" \
  '{joined: $j, room: $info, generators: $per}')" 1 2 3
((joined == MEMBERS)) || fail "$joined of $MEMBERS members joined"
[[ -n $owner ]] || { fail "no owner for $ROOM"; exit 1; }
O=$(idx_of "$owner")
N=$((O % 3 + 1))     # a node that does not own the room
X=$((N % 3 + 1))     # the third
echo "big-room: room $ROOM owned by $owner; $joined members"

echo "$X" >"$run/pub-node"
publisher &
pub_pid=$!

# --- a. presence from a node that does not own the room --------------------------------------

begin
t0=$(now)
pres=()
# Lists the whole room through node $1's backend API, page by page (`?limit=10000&after=next`,
# as docs/protocol.md describes; a node without pages answers everything in one page with no
# `next`). Prints {pages, time_s (sum of the requests), first_page_s, bytes, http, listed,
# distinct_clients, distinct_users}.
list_presence() {
  local i=$1 after= p=0 code t bytes total=0 first= sum_bytes=0 last_code=200
  rm -f "$run"/presence-*.json
  while :; do
    p=$((p + 1))
    read -r code t bytes < <(curl -s --max-time 120 -o "$run/presence-$p.json" \
      -w '%{http_code} %{time_total} %{size_download}\n' \
      "$(pub_url "$i")/api/v1/rooms/$ROOM/presence?limit=10000${after:+&after=$after}" || echo "000 0 0")
    total=$(echo "$total + $t" | bc)
    [[ -n $first ]] || first=$t
    sum_bytes=$((sum_bytes + bytes))
    last_code=$code
    [[ $code == 200 ]] || break
    after=$(jq -r '.next // empty' "$run/presence-$p.json" 2>/dev/null || true)
    [[ -n $after ]] || break
    ((p < 1000)) || break
  done
  jq -s --argjson pages "$p" --argjson t "$total" --argjson first "$first" --argjson bytes "$sum_bytes" \
    --argjson code "$last_code" '[.[].members // [] | .[]] |
    {pages: $pages, time_s: $t, first_page_s: $first, bytes: $bytes, http: $code, listed: length,
     distinct_clients: (map(.client) | unique | length), distinct_users: (map(.user) | unique | length)}' \
    "$run"/presence-*.json
  rm -f "$run"/presence-*.json
}
for k in 1 2 3 owner; do
  i=$N; [[ $k == owner ]] && i=$O
  r=$(list_presence "$i")
  pres+=("$(jq -c --arg from "node-${names[i - 1]}" --argjson owner "$([[ $k == owner ]] && echo true || echo false)" \
    '{from: $from, asked_owner: $owner} + .' <<<"$r")")
  listed=$(jq -r '.distinct_users' <<<"$r")
  [[ $(jq -r .http <<<"$r") == 200 && $listed == "$joined" ]] || fail "presence from node-${names[i - 1]}: $r (want $joined members)"
done
# The admin API's page of the room's members (limit=1) on the same node, for comparison.
r=$(curl -s --max-time 120 -o /dev/null -w '%{http_code} %{time_total} %{size_download}' \
  "$(admin_url "$N")/admin/v1/rooms/$ROOM?limit=1" || echo "000 0 0")
read -r code t bytes <<<"$r"
admin_page=$(jq -cn --argjson code "$code" --argjson t "$t" --argjson bytes "$bytes" '{http: $code, time_s: $t, bytes: $bytes}')
# The step's wall time is the first listing from the node that does not own the room (the sum of
# its page requests; the others are in the detail); the checks of the answers with jq are not
# counted.
record presence "$(jq -r '.time_s' <<<"${pres[0]}")" "$(printf '%s\n' "${pres[@]}" |
  jq -s --argjson ap "$admin_page" '{requests: ., admin_room_page_limit_1: $ap}')" 1 2 3

# --- b. admin migrate to a node that does not own it ------------------------------------------

begin
seq0=$(last_acked)
t0=$(now)
r=$(curl -s --max-time 120 -o "$run/migrate.json" -w '%{http_code} %{time_total}' -X POST \
  "$(admin_url "$X")/admin/v1/rooms/$ROOM/migrate" -d "{\"to\":\"node-${names[N - 1]}\"}" || echo "000 0")
read -r code t_http <<<"$r"
deadline=$((SECONDS + STEP_TIMEOUT_S))
until [[ $(room_info "$X" | jq -r '.owner // empty') == "node-${names[N - 1]}" ]]; do
  ((SECONDS < deadline)) || { fail "migrate: owner never became node-${names[N - 1]}"; break; }
  sleep 0.05
done
t_owner=$(since "$t0")
want=$(last_acked)
t_caught=$(wait_seq "${want:-0}" "$t0") || fail "migrate: members did not reach seq $want"
record migrate "$(since "$t0")" "$(jq -cn --argjson code "$code" --argjson t "$t_http" --argjson to "\"node-${names[N - 1]}\"" \
  --argjson from "\"$owner\"" --argjson owner_s "$t_owner" --argjson caught "$t_caught" --argjson seq0 "${seq0:-null}" \
  --argjson want "${want:-null}" --argjson answer "$(cat "$run/migrate.json" 2>/dev/null || echo null)" \
  '{from: $from, to: $to, http: $code, answer_s: $t, answer: $answer, owner_changed_s: $owner_s,
    acked_seq_before: $seq0, acked_seq_after: $want, all_members_have_it_s: $caught}')" 1 2 3
[[ $code == 200 ]] || fail "migrate answered $code: $(cat "$run/migrate.json" 2>/dev/null)"
T=$N   # the owner now

# --- c. drain the owner; then undrain it and let its members come back ------------------------

echo "$X" >"$run/pub-node"
begin
tn="node-${names[T - 1]}"
t0=$(now)
code=$(curl -s --max-time 30 -o "$run/drain.json" -w '%{http_code}' -X POST "$(admin_url "$X")/admin/v1/nodes/$tn/drain" || echo 000)
deadline=$((SECONDS + STEP_TIMEOUT_S))
while :; do
  o=$(room_info "$X" | jq -r '.owner // empty')
  [[ -n $o && $o != "$tn" ]] && break
  ((SECONDS < deadline)) || { fail "drain: the room never left $tn"; break; }
  sleep 0.05
done
t_moved=$(since "$t0")
D=$(idx_of "$o")
deadline=$((SECONDS + STEP_TIMEOUT_S))
until [[ $(curl -s --max-time 5 "$(admin_url "$X")/admin/v1/cluster" | jq -r --arg n "$tn" '.nodes[] | select(.name == $n) | .state') == drained ]]; do
  ((SECONDS < deadline)) || { fail "drain: $tn never drained"; break; }
  sleep 0.2
done
t_drained=$(since "$t0")
gen_drained=$(gen_agg "$T")
t1=$(now)
ucode=$(curl -s --max-time 30 -o /dev/null -w '%{http_code}' -X POST "$(admin_url "$X")/admin/v1/nodes/$tn/undrain" || echo 000)
deadline=$((SECONDS + STEP_TIMEOUT_S))
until (($(gen_agg | jq -r '.joined // 0') >= joined)); do
  ((SECONDS < deadline)) || { fail "undrain: members of $tn did not all come back"; break; }
  sleep 0.2
done
t_back=$(since "$t1")
deadline=$((SECONDS + STEP_TIMEOUT_S))
until [[ $(room_info "$X" | jq -r '.members_total // 0') -ge $joined ]]; do
  ((SECONDS < deadline)) || { fail "undrain: the room does not count $joined members"; break; }
  sleep 0.2
done
t_counted=$(since "$t1")
want=$(last_acked)
t_caught=$(wait_seq "${want:-0}" "$t0") || fail "drain: members did not reach seq $want"
# The contract: every client of a draining node gets `reconnect`, `disconnect` and close 1012.
no_1012=$(jq '[.closes | to_entries[] | select(.key != "1012") | .value] | add // 0' <<<"$gen_drained")
((no_1012 == 0)) || fail "drain: $no_1012 members of $tn were closed without a close frame 1012: $(jq -c .closes <<<"$gen_drained")"
record drain "$(since "$t0")" "$(jq -cn --arg node "$tn" --argjson code "$code" --argjson ucode "$ucode" \
  --arg to "$o" --argjson moved "$t_moved" --argjson drained "$t_drained" --argjson back "$t_back" \
  --argjson counted "$t_counted" --argjson caught "$t_caught" --argjson g "$gen_drained" \
  '{drained: $node, http: $code, room_moved_to: $to, room_moved_s: $moved, node_drained_s: $drained,
    members_of_drained_node_when_drained: $g, undrain_http: $ucode, members_back_after_undrain_s: $back,
    room_counts_all_after_undrain_s: $counted, all_members_have_last_acked_s: $caught}')" 1 2 3

# --- d. kill -9 of the owner ------------------------------------------------------------------

S=()
for i in 1 2 3; do ((i != D)) && S+=("$i"); done
echo "${S[0]}" >"$run/pub-node"
dn="node-${names[D - 1]}"
# The owner keeps a replica on a backup node about a second after the room arrived: wait for it,
# or the room would come back with a new epoch.
deadline=$((SECONDS + 60))
until [[ $(room_info "${S[0]}" | jq -r '.backup // empty') != "" ]]; do
  ((SECONDS < deadline)) || { fail "failover: the room has no backup after 60 s"; break; }
  sleep 0.1
done
info0=$(room_info "${S[0]}")
surv_before=$(gen_agg "${S[@]}")
surv=$(jq -r '.joined' <<<"$surv_before")
begin
kill_ms=$(date +%s%3N)
t0=$(now)
kill -9 "$(node_pid "$D")"
deadline=$((SECONDS + STEP_TIMEOUT_S))
t_owner=null; t_count=null
while :; do
  info=$(room_info "${S[0]}")
  o=$(jq -r '.owner // empty' <<<"$info")
  if [[ $t_owner == null && -n $o && $o != "$dn" ]]; then t_owner=$(since "$t0"); fi
  if [[ $t_owner != null && $(jq -r '.members_total // 0' <<<"$info") -ge $surv ]]; then t_count=$(since "$t0"); break; fi
  ((SECONDS < deadline)) || { fail "failover: room not back with $surv members ($info)"; break; }
  sleep 0.05
done
deadline=$((SECONDS + STEP_TIMEOUT_S))
until s1=$(first_acked_after "$kill_ms"); [[ -n $s1 ]]; do
  ((SECONDS < deadline)) || { fail "failover: no publish acknowledged after the kill"; break; }
  sleep 0.1
done
t_delivered=$(wait_seq "${s1:-0}" "$t0" "${S[@]}") || fail "failover: survivors did not reach seq $s1"
t_unavailable=$(awk -v t="$kill_ms" '$1 >= t && $2 != 200 {n++} END {print n + 0}' "$run/pub.log")
info1=$(room_info "${S[0]}")
record failover "$(since "$t0")" "$(jq -cn --arg killed "$dn" --argjson info0 "$info0" --argjson info1 "$info1" \
  --argjson surv "$surv" --argjson owner_s "$t_owner" --argjson count_s "$t_count" \
  --argjson s1 "${s1:-null}" --argjson deliv "$t_delivered" --argjson unav "$t_unavailable" \
  --argjson gs "$(gen_agg "${S[@]}")" --argjson gd "$(gen_agg "$D")" \
  '{killed: $killed, room_before: $info0, room_after: $info1, same_epoch: ($info0.epoch == $info1.epoch),
    surviving_members: $surv, owner_back_s: $owner_s, members_counted_s: $count_s,
    first_acked_seq_after_kill: $s1, survivors_have_it_s: $deliv, publishes_refused_meanwhile: $unav,
    survivors: $gs, killed_node_members: $gd}')" "${S[@]}"

# --- the end: every live member has the last acknowledged publish, in order -------------------

kill "$pub_pid" 2>/dev/null || true
wait "$pub_pid" 2>/dev/null || true
pub_pid=
want=$(last_acked)
t0=$(now)
wait_seq "${want:-0}" "$t0" "${S[@]}" >/dev/null || fail "end: survivors did not reach seq $want"
final=$(gen_agg "${S[@]}")
for pid in "${gens[@]}"; do kill "$pid" 2>/dev/null || true; done
for pid in "${gens[@]}"; do wait "$pid" 2>/dev/null || true; done
gens=()
published=$(wc -l <"$run/pub.log")
acked=$(awk '$2 == 200' "$run/pub.log" | wc -l)
jq -e '.gaps == 0 and .dups == 0' <<<"$final" >/dev/null || fail "members saw gaps or duplicates: $final"
summary=$(jq -cn --argjson m "$MEMBERS" --argjson ub "$USER_BYTES" --argjson g "$GENS" --argjson final "$final" \
  --argjson pub "$published" --argjson acked "$acked" --argjson last "${want:-null}" --argjson st "$status" \
  --arg node "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  '{bench: "big-room", summary: true, members: $m, user_bytes: $ub, generators: $g, publishes: $pub,
    publishes_acked: $acked, last_acked_seq: $last, survivors_at_end: $final, passed: ($st == 0),
    head: $node, unix_time: (now | floor)}')
echo "$summary" | jq -c .
if [[ -n $OUT ]]; then
  cat "$run/steps.jsonl" >>"$OUT"
  for ((g = 0; g < GENS; g++)); do tail -1 "$run/gen-$g.out" | grep '^{' >>"$OUT" || true; done
  echo "$summary" >>"$OUT"
fi
exit $status
