#!/usr/bin/env bash
# What one room costs on each node of a 4-node cluster, by the node's role for that room (issue
# #15): its owner, its backup (the node that keeps its replica), the node that holds its members,
# and a node that is none of these ("uninvolved": it should hold nothing for the room; before
# cluster protocol 2 it held a proxy and a process-group entry).
#
#   bench/room-cost.sh [run] [OUT.jsonl]   one run (configured by the environment below)
#   bench/room-cost.sh suite [OUT.jsonl]   RUNS runs of each standard configuration, then the fit
#   bench/room-cost.sh fit FILE.jsonl…     least-squares fit of the per-role cost over the runs
#
# A run starts 4 release nodes with deploy/local-cluster.sh (the shipped example configs; ports
# shifted by BASE_PORT_OFFSET, checked free first), waits for their RSS to be stable (the idle
# baseline), opens ROOMS/ROOMS_PER_CONN connections on node MEMBERS_ON and joins each to
# ROOMS_PER_CONN rooms of its own: ROOMS rooms with exactly one member each, every member on one
# node. ROOMS_PER_CONN stays at most 20, the default room-creation burst of one connection
# (`limits.room_creates_burst`), so no join is rate limited and no connection is closed for it.
# The rooms are named by PLACEMENT:
#   natural      gatehouse-bench idle --rooms-per-connection (names idle-<tag>-<i>): owners and
#                backups spread over the 4 nodes by rendezvous hashing;
#   OWNER:BACKUP a small Node.js client (inline below; Node ≥ 20, built-in WebSocket) joins rooms
#                whose names it picked so that every room's rendezvous owner is OWNER and its
#                backup (the owner's successor) is BACKUP, e.g. node-b:node-c with members on
#                node-a leaves node-d uninvolved for every room. One node owns every room, so keep
#                ROOMS under the shipped `rooms.max_rooms` (10 000 per node).
# "Before" is each node's RSS once the connections are open and none has joined (so node-a's
# connection cost is not counted as room cost); then it waits until every join is answered and
# the nodes' live rooms add up to ROOMS, until every node's RSS is stable ("after"), and 10 s more
# ("after_10s", the figure fitted). Then it pages through GET /admin/v1/rooms to count, per node,
# the rooms it owns, backs up, holds members of, and has nothing to do with (polling until every
# room has a backup), and reads the RSS once more (the listing's own cost). It prints a table,
# appends one JSON line to OUT, and ends everything it started (the generator by PID, the
# cluster with `deploy/local-cluster.sh stop`).
#
# `fit` fits each node's RSS growth Δ (after_10s − before) by least squares over every node of
# every run in the files (each equation's residual printed), with a, b, … in KiB per room:
#   A  Δ = own·a + backup·b + member·c + uninvolved·d
#   B  Δ = own·a + (not owner)·p + backup·b' + member·c'
#   C  Δ = own·a + (not owner)·p + backup·b' + (member, not owner)·c'
# (p: what every node but the owner pays; b', c': what a backup and a member node pay on top). A
# counts a node's roles as if they added up; they did not while every non-owner held a proxy per
# room (node-a held the members of rooms it owned or backed up: one proxy, not two); C fits both
# before and after. It also prints the fit of
# each replicate (run k of every configuration) with their medians, the direct figure of every
# node that had a single role for all rooms, and the idle baseline. Needs python3.
#
# One run takes about 1–2 minutes; `suite` (4 configurations × 2) about 15.
#
# Environment: NODE_BIN (target/release/gatehouse), BENCH_BIN (target/release/gatehouse-bench),
# ROOMS (20000), ROOMS_PER_CONN (20), PLACEMENT (natural), MEMBERS_ON (node-a),
# BASE_PORT_OFFSET (900: public 8981–8984, admin 10001–10004, cluster 8001–8004), SETTLE_MAX_S
# (60); for `suite`: RUNS (2) and SUITE, configurations PLACEMENT/ROOMS/MEMBERS_ON separated by
# spaces (default "natural/20000/node-a node-b:node-c/9600/node-a node-a:node-b/9600/node-a
# natural/10000/node-c").
# Needs curl, jq, ss, node (placed runs) and python3 (fit). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

NODE_BIN=${NODE_BIN:-target/release/gatehouse}
BENCH_BIN=${BENCH_BIN:-target/release/gatehouse-bench}
ROOMS=${ROOMS:-20000}
ROOMS_PER_CONN=${ROOMS_PER_CONN:-20}
PLACEMENT=${PLACEMENT:-natural}
MEMBERS_ON=${MEMBERS_ON:-node-a}
OFFSET=${BASE_PORT_OFFSET:-900}
SETTLE_MAX_S=${SETTLE_MAX_S:-60}
NAMES=(node-a node-b node-c node-d)

die() { echo "room-cost: $*" >&2; exit 1; }

# --- fit ----------------------------------------------------------------------------------------

fit() {
  (($# > 0)) || die "fit: name the JSONL files"
  command -v python3 >/dev/null || die "fit needs python3"
  python3 - "$@" <<'PY'
import json, sys, statistics

runs = []
for path in sys.argv[1:]:
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                if r.get("bench") == "room-cost" and r.get("ok", True):
                    runs.append(r)
if not runs:
    sys.exit("fit: no room-cost runs")

def solve(rows, ys):
    """Least squares by the normal equations (4 unknowns), Gauss-Jordan with pivoting."""
    k = len(rows[0])
    a = [[sum(r[i] * r[j] for r in rows) for j in range(k)] + [sum(r[i] * y for r, y in zip(rows, ys))] for i in range(k)]
    for c in range(k):
        p = max(range(c, k), key=lambda i: abs(a[i][c]))
        if abs(a[p][c]) < 1e-9:
            return None
        a[c], a[p] = a[p], a[c]
        for i in range(k):
            if i != c:
                f = a[i][c] / a[c][c]
                a[i] = [x - f * y for x, y in zip(a[i], a[c])]
    return [a[i][k] / a[i][i] for i in range(k)]

def equations(rs):
    eq = []
    for r in rs:
        for n in r["nodes"]:
            eq.append((r, n))
    return eq

def model_a(n, rooms):
    return [n["owned"], n["backed"], n["member"], n["uninvolved"]]

def model_b(n, rooms):
    return [n["owned"], rooms - n["owned"], n["backed"], n["member"]]

def model_c(n, rooms):
    return [n["owned"], rooms - n["owned"], n["backed"], n["member"] - n["owned_with_members"]]

def fit_of(rs, model):
    eq = equations(rs)
    rows = [model(n, r["rooms"]) for r, n in eq]
    ys = [n["delta_kib"] for r, n in eq]
    x = solve(rows, ys)
    if x is None:
        return None, []
    res = [(r, n, y - sum(c * v for c, v in zip(x, row))) for (r, n), row, y in zip(eq, rows, ys)]
    return x, res

def config(r):
    return f'{r["placement"]} members@{r["members_on"]} rooms={r["rooms"]}'

configs = sorted({config(r) for r in runs})
print(f"{len(runs)} runs, {len(configs)} configurations, {4 * len(runs)} equations\n")
print("Per node and run (Δ = RSS 10 s after settling − RSS with connections open, no room):")
print(f'{"configuration":44} {"run":>3} {"node":7} {"own":>6} {"backup":>6} {"member":>6} {"uninv":>6} {"Δ MiB":>8} {"KiB/room":>8}')
seen = {}
for r in runs:
    c = config(r)
    seen[c] = seen.get(c, 0) + 1
    r["_rep"] = seen[c]
    for n in r["nodes"]:
        print(f'{c:44} {r["_rep"]:>3} {n["node"]:7} {n["owned"]:>6} {n["backed"]:>6} {n["member"]:>6} {n["uninvolved"]:>6} '
              f'{n["delta_kib"] / 1024:>8.1f} {n["delta_kib"] / r["rooms"]:>8.2f}')
print()

for name, model, labels in (
    ("A: Δ = own·a + backup·b + member·c + uninvolved·d", model_a, ["a own", "b backup", "c member", "d uninvolved"]),
    ("B: Δ = own·a + (not owner)·p + backup·b' + member·c'", model_b, ["a own", "p not owner", "b' backup extra", "c' member extra"]),
    ("C: Δ = own·a + (not owner)·p + backup·b' + (member, not owner)·c'", model_c, ["a own", "p not owner", "b' backup extra", "c' member extra"]),
):
    x, res = fit_of(runs, model)
    print(f"Model {name}")
    if x is None:
        print("  singular: the runs do not separate the roles\n")
        continue
    print("  pooled (every equation): " + ", ".join(f"{l} = {v:.2f}" for l, v in zip(labels, x)) + "  KiB per room")
    if model is not model_a:
        print(f"  as model A: b = p + b' = {x[1] + x[2]:.2f}, c = p + c' = {x[1] + x[3]:.2f}, d = p = {x[1]:.2f}")
    rms = (sum(e * e for _, _, e in res) / len(res)) ** 0.5
    print(f"  residuals (MiB): rms {rms / 1024:.1f}")
    for r, n, e in res:
        print(f'    {config(r):44} run {r["_rep"]} {n["node"]}: Δ {n["delta_kib"] / 1024:8.1f}  residual {e / 1024:+7.1f}  ({100 * e / max(abs(n["delta_kib"]), 1):+.1f} %)')
    reps = sorted({r["_rep"] for r in runs})
    per = []
    for k in reps:
        sub = [r for r in runs if r["_rep"] == k]
        xk, _ = fit_of(sub, model)
        if xk is not None:
            per.append(xk)
            print(f"  replicate {k} ({len(sub)} runs): " + ", ".join(f"{l} = {v:.2f}" for l, v in zip(labels, xk)))
    if len(per) > 1:
        med = [statistics.median(v[i] for v in per) for i in range(4)]
        print("  median of replicates: " + ", ".join(f"{l} = {v:.2f}" for l, v in zip(labels, med)))
    print()

# Direct figures from runs where a node has one role only.
print("Single-role nodes (Δ / rooms, KiB per room; median over runs):")
single = {}
for r in runs:
    for n in r["nodes"]:
        roles = tuple(k for k in ("owned", "backed", "member") if n[k] > 0)
        if n["uninvolved"] == r["rooms"]:
            roles = ("uninvolved",)
        elif not (n["owned"] in (0, r["rooms"]) and n["backed"] in (0, r["rooms"]) and n["member"] in (0, r["rooms"])):
            continue
        single.setdefault("+".join(roles), []).append(n["delta_kib"] / r["rooms"])
for k, v in sorted(single.items()):
    print(f"  {k:24} {statistics.median(v):7.2f}   (runs: {', '.join(f'{x:.2f}' for x in v)})")
idle = [n["rss_idle_kib"] for r in runs for n in r["nodes"]]
print(f"\nIdle baseline (RSS of a node in the 4-node cluster, no connection, no room): median {statistics.median(idle) / 1024:.1f} MiB "
      f"(min {min(idle) / 1024:.1f}, max {max(idle) / 1024:.1f})")
PY
}

# --- run ----------------------------------------------------------------------------------------

run_one() {
  local out=${1:-}
  for bin in "$NODE_BIN" "$BENCH_BIN"; do
    [[ -x $bin ]] || die "$bin not built (cargo build --release -p node -p gatehouse-bench)"
  done
  for t in curl jq ss; do command -v $t >/dev/null || die "needs $t"; done
  [[ $NODE_BIN == /* ]] || NODE_BIN=$ROOT/$NODE_BIN
  [[ $BENCH_BIN == /* ]] || BENCH_BIN=$ROOT/$BENCH_BIN
  ((ROOMS_PER_CONN >= 1 && ROOMS_PER_CONN <= 20)) || die "ROOMS_PER_CONN must be 1–20 (the room-creation burst)"
  ((ROOMS % ROOMS_PER_CONN == 0)) || die "ROOMS must be a multiple of ROOMS_PER_CONN"
  local conns=$((ROOMS / ROOMS_PER_CONN))
  local mi=-1 i
  for i in 0 1 2 3; do [[ ${NAMES[i]} == "$MEMBERS_ON" ]] && mi=$i; done
  ((mi >= 0)) || die "MEMBERS_ON must be one of ${NAMES[*]}"
  local owner_want="" backup_want=""
  if [[ $PLACEMENT != natural ]]; then
    owner_want=${PLACEMENT%%:*}
    backup_want=${PLACEMENT#*:}
    [[ " ${NAMES[*]} " == *" $owner_want "* && " ${NAMES[*]} " == *" $backup_want "* && $owner_want != "$backup_want" ]] ||
      die "PLACEMENT must be natural or OWNER:BACKUP of two different nodes among ${NAMES[*]}"
    command -v node >/dev/null || die "a placed run needs node (Node.js ≥ 20)"
  fi

  local pub=() adm=()
  for i in 1 2 3 4; do
    pub+=($((8080 + OFFSET + i)))
    adm+=($((9100 + OFFSET + i)))
    local p
    for p in $((8080 + OFFSET + i)) $((9100 + OFFSET + i)) $((7100 + OFFSET + i)); do
      if ss -Htln "sport = :$p" | grep -q .; then die "port $p is in use (set BASE_PORT_OFFSET)"; fi
    done
  done

  run=$(mktemp -d "${TMPDIR:-/tmp}/room-cost.XXXXXX")
  gen=""
  cleanup() {
    local rc=$?
    if [[ -n $gen ]] && kill -0 "$gen" 2>/dev/null; then kill "$gen" 2>/dev/null || true; wait "$gen" 2>/dev/null || true; fi
    if [[ -f $run/node-a.pid ]]; then
      STOP_TIMEOUT_S=20 "$ROOT/deploy/local-cluster.sh" stop "$run" >"$run/stop.out" 2>&1 || cat "$run/stop.out" >&2
    fi
    if ((rc == 0)); then rm -rf "$run"; else echo "room-cost: run dir kept: $run" >&2; fi
    exit "$rc"
  }
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  echo "room-cost: starting 4 nodes (offset $OFFSET) in $run" >&2
  RUN_DIR=$run GATEHOUSE_BIN=$NODE_BIN BASE_PORT_OFFSET=$OFFSET READY_TIMEOUT_S=90 \
    "$ROOT/deploy/local-cluster.sh" 4 --detach >"$run/cluster.out" 2>&1 || { cat "$run/cluster.out" >&2; die "the cluster did not start"; }
  local pids=()
  for i in 0 1 2 3; do pids+=("$(<"$run/${NAMES[i]}.pid")"); done

  rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
  metric() { curl -s --max-time 5 "http://127.0.0.1:${pub[$1]}/metrics" | awk -v m="$2" '$1 == m {printf "%d\n", $2}'; }
  # Waits until the RSS of every node has been stable for 5 samples 0.5 s apart (within
  # max(64 KiB, 0.2 %), as gatehouse-bench idle does) or SETTLE_MAX_S; sets STABLE (values) and
  # STABLE_OK (1 if stable).
  settle() {
    local -a win=("" "" "" "") v
    local t0=$SECONDS j k ok
    while :; do
      ok=1
      for j in 0 1 2 3; do
        v[j]=$(rss "${pids[j]}")
        win[j]="${win[j]} ${v[j]}"
        # keep the last 5
        read -ra arr <<<"${win[j]}"
        ((${#arr[@]} > 5)) && arr=("${arr[@]: -5}")
        win[j]="${arr[*]}"
        if ((${#arr[@]} < 5)); then ok=0; continue; fi
        local lo=${arr[0]} hi=${arr[0]} tol
        for k in "${arr[@]}"; do ((k < lo)) && lo=$k; ((k > hi)) && hi=$k; done
        tol=$((v[j] / 500)); ((tol < 64)) && tol=64
        ((hi - lo <= tol)) || ok=0
      done
      if ((ok)) || ((SECONDS - t0 >= SETTLE_MAX_S)); then
        STABLE=("${v[@]}"); STABLE_OK=$ok; SETTLE_S=$((SECONDS - t0)); return
      fi
      sleep 0.5
    done
  }

  settle
  local idle=("${STABLE[@]}")
  echo "room-cost: idle RSS (KiB) ${idle[*]} (stable: $STABLE_OK)" >&2

  # The generator.
  local url="ws://127.0.0.1:${pub[mi]}/ws" tag
  tag="rc$$-$(date +%s)"
  if [[ $PLACEMENT == natural ]]; then
    "$BENCH_BIN" --json idle --url "$url" --connections "$conns" --rooms "$ROOMS" \
      --rooms-per-connection "$ROOMS_PER_CONN" --concurrency 50 --settle-max 10 --hold 100000 \
      --pid "${pids[mi]}" >"$run/gen.out" 2>"$run/gen.err" &
    gen=$!
  else
    write_client "$run/client.mjs"
    local flag=""
    node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null || flag=--experimental-websocket
    node $flag "$run/client.mjs" "$url" "$conns" "$ROOMS_PER_CONN" "$tag" "$owner_want" "$backup_want" "${NAMES[*]}" \
      "${pids[mi]}" >"$run/gen.out" 2>"$run/gen.err" &
    gen=$!
  fi

  # "Before": every connection open, no join yet. The generator waits for the member node's RSS
  # to be stable before its first join; sample until the first join is counted and keep the
  # last sample taken while none was.
  local deadline=$((SECONDS + 180)) c jn before=() b
  while :; do
    kill -0 "$gen" 2>/dev/null || { cat "$run/gen.err" >&2; die "the generator exited early"; }
    c=$(metric "$mi" gatehouse_connections_active); c=${c:-0}
    ((c >= conns)) && break
    ((SECONDS < deadline)) || die "only $c of $conns connections after 180 s"
    sleep 0.2
  done
  while :; do
    b=()
    for i in 0 1 2 3; do b+=("$(rss "${pids[i]}")"); done
    jn=$(metric "$mi" gatehouse_joins_total); jn=${jn:-0}
    ((jn > 0)) && break
    before=("${b[@]}")
    ((SECONDS < deadline)) || die "no join after 180 s"
    sleep 0.2
  done
  ((${#before[@]} == 4)) || die "the joins started before a 'before' sample was taken"
  echo "room-cost: $conns connections open on $MEMBERS_ON; before (KiB) ${before[*]}" >&2

  # Every join answered and every room live on its owner.
  local t0=$SECONDS owned_sum
  deadline=$((SECONDS + 600))
  while :; do
    jn=$(metric "$mi" gatehouse_joins_total); jn=${jn:-0}
    owned_sum=0
    for i in 0 1 2 3; do c=$(metric "$i" gatehouse_rooms_active); owned_sum=$((owned_sum + ${c:-0})); done
    ((jn >= ROOMS && owned_sum >= ROOMS)) && break
    kill -0 "$gen" 2>/dev/null || { cat "$run/gen.err" >&2; die "the generator exited during the joins ($jn joins)"; }
    ((SECONDS < deadline)) || die "only $jn joins, $owned_sum rooms after 600 s"
    sleep 1
  done
  local join_s=$((SECONDS - t0))
  echo "room-cost: $jn joins answered, $owned_sum rooms live after $join_s s" >&2

  settle
  local after=("${STABLE[@]}") after_ok=$STABLE_OK after_settle_s=$SETTLE_S
  # 10 s more: the allocator may still give memory back (or not).
  local t10=$((SECONDS + 10)) lo=() hi=() v
  for i in 0 1 2 3; do lo[i]=${after[i]}; hi[i]=${after[i]}; done
  while ((SECONDS < t10)); do
    sleep 0.5
    for i in 0 1 2 3; do
      v=$(rss "${pids[i]}"); ((v < lo[i])) && lo[i]=$v; ((v > hi[i])) && hi[i]=$v
    done
  done
  local after10=()
  for i in 0 1 2 3; do after10+=("$(rss "${pids[i]}")"); done
  echo "room-cost: after (KiB) ${after[*]} (stable: $after_ok, ${after_settle_s} s); 10 s later ${after10[*]}" >&2

  # Who does what, from the admin API (node-d answers; every page lists every room once).
  local admin_url="http://127.0.0.1:${adm[3]}/admin/v1/rooms" missing=1 listings=0 list_s
  t0=$SECONDS
  deadline=$((SECONDS + 180))
  while :; do
    listings=$((listings + 1))
    : >"$run/rooms.tsv"
    local cursor="" body page_url partial=false
    while :; do
      page_url="$admin_url?limit=1000"
      [[ -n $cursor ]] && page_url+="&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')"
      body=$(curl -fsS --max-time 120 "$page_url") || die "GET $page_url failed"
      [[ $(jq -r '.partial' <<<"$body") == true ]] && partial=true
      jq -r '.rooms[] | [.name, .owner, (.backup // "-"), (.nodes | join(","))] | @tsv' <<<"$body" >>"$run/rooms.tsv"
      cursor=$(jq -r '.next_cursor // empty' <<<"$body")
      [[ -n $cursor ]] || break
    done
    missing=$(awk -F'\t' '$3 == "-"' "$run/rooms.tsv" | wc -l)
    local listed
    listed=$(wc -l <"$run/rooms.tsv")
    if ((listed == ROOMS && missing == 0)) && [[ $partial == false ]]; then break; fi
    echo "room-cost: listing $listings: $listed rooms, $missing without a backup, partial=$partial; again" >&2
    ((SECONDS < deadline)) || die "rooms still without a backup after 180 s"
    sleep 1
  done
  list_s=$((SECONDS - t0))
  settle
  local after_list=("${STABLE[@]}")

  # Still every connection open?
  c=$(metric "$mi" gatehouse_connections_active); c=${c:-0}
  local ok=true
  ((c == conns)) || { ok=false; echo "room-cost: WARNING: $c of $conns connections open at the end" >&2; }

  local counts
  counts=$(awk -F'\t' -v names="${NAMES[*]}" '
    BEGIN { n = split(names, nm, " ") }
    { for (i = 1; i <= n; i++) {
        o = ($2 == nm[i]); b = ($3 == nm[i]); m = ("," $4 ",") ~ ("," nm[i] ",")
        own[i] += o; bk[i] += b; mem[i] += m; un[i] += !(o || b || m)
        if (o && m) om[i]++; if (b && m) bm[i]++
      } }
    END { for (i = 1; i <= n; i++) printf "%d %d %d %d %d %d\n", own[i], bk[i], mem[i], un[i], om[i], bm[i] }' "$run/rooms.tsv")
  local -a own=() bk=() mem=() un=() om=() bm=()
  while read -r a1 a2 a3 a4 a5 a6; do own+=("$a1"); bk+=("$a2"); mem+=("$a3"); un+=("$a4"); om+=("$a5"); bm+=("$a6"); done <<<"$counts"
  if [[ $PLACEMENT != natural ]]; then
    local oi bi
    for i in 0 1 2 3; do [[ ${NAMES[i]} == "$owner_want" ]] && oi=$i; [[ ${NAMES[i]} == "$backup_want" ]] && bi=$i; done
    ((own[oi] == ROOMS && bk[bi] == ROOMS)) || { ok=false; echo "room-cost: WARNING: placement not as picked: $owner_want owns ${own[oi]}, $backup_want backs up ${bk[bi]} of $ROOMS" >&2; }
  fi

  printf '\n%s rooms, placement %s, members on %s (%s connections × %s rooms); joins %s s, listing %s s (%s pass)\n' \
    "$ROOMS" "$PLACEMENT" "$MEMBERS_ON" "$conns" "$ROOMS_PER_CONN" "$join_s" "$list_s" "$listings"
  printf '%-7s %6s %6s %6s %6s %9s %9s %9s %9s %9s %9s %9s\n' node own backup member uninv 'idle MiB' 'bef MiB' 'aft MiB' '+10s MiB' 'list MiB' 'Δ MiB' 'KiB/room'
  local line nodes_json="" d
  for i in 0 1 2 3; do
    d=$((after10[i] - before[i]))
    printf '%-7s %6d %6d %6d %6d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f %9.2f\n' "${NAMES[i]}" "${own[i]}" "${bk[i]}" "${mem[i]}" "${un[i]}" \
      "$(bc -l <<<"${idle[i]}/1024")" "$(bc -l <<<"${before[i]}/1024")" "$(bc -l <<<"${after[i]}/1024")" \
      "$(bc -l <<<"${after10[i]}/1024")" "$(bc -l <<<"${after_list[i]}/1024")" "$(bc -l <<<"$d/1024")" "$(bc -l <<<"$d/$ROOMS")"
    ((i > 0)) && nodes_json+=","
    nodes_json+="{\"node\":\"${NAMES[i]}\",\"owned\":${own[i]},\"backed\":${bk[i]},\"member\":${mem[i]},\"uninvolved\":${un[i]},\"owned_with_members\":${om[i]},\"backed_with_members\":${bm[i]},\"rss_idle_kib\":${idle[i]},\"rss_before_kib\":${before[i]},\"rss_after_kib\":${after[i]},\"rss_after_10s_kib\":${after10[i]},\"rss_10s_min_kib\":${lo[i]},\"rss_10s_max_kib\":${hi[i]},\"rss_after_listing_kib\":${after_list[i]},\"delta_kib\":$d}"
  done
  local gen_json="null"
  line="{\"bench\":\"room-cost\",\"ok\":$ok,\"placement\":\"$PLACEMENT\",\"members_on\":\"$MEMBERS_ON\",\"rooms\":$ROOMS,\"rooms_per_connection\":$ROOMS_PER_CONN,\"connections\":$conns,\"join_s\":$join_s,\"after_stable\":$([[ $after_ok == 1 ]] && echo true || echo false),\"after_settle_s\":$after_settle_s,\"listing_s\":$list_s,\"listings\":$listings,\"loadavg\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"nodes\":[$nodes_json],\"unix_time\":$(date +%s)}"
  [[ -n $out ]] && echo "$line" >>"$out"
  echo "$line"
}

# The placed runs' client: picks room names by rendezvous placement (the hash of
# node/src/directory.rs), opens the connections, waits for the member node's RSS to be stable,
# joins each connection to its rooms (at most 50 joins in flight), then holds until SIGTERM.
write_client() {
  cat >"$1" <<'JS'
import { readFileSync } from "node:fs";
const [url, nConnsS, perS, tag, ownerWant, backupWant, namesS, pidS] = process.argv.slice(2);
const nConns = +nConnsS, per = +perS, nodes = namesS.split(" "), pid = +pidS;
const M = (1n << 64n) - 1n;
const enc = new TextEncoder();
function fnv(h, bytes) { for (const b of bytes) { h ^= BigInt(b); h = (h * 0x100000001b3n) & M; } return h; }
function mix(h) { h ^= h >> 33n; h = (h * 0xff51afd7ed558ccdn) & M; h ^= h >> 33n; return h; }
const nodeBytes = nodes.map((n) => enc.encode(n));
// directory::owner: highest hash wins, ties to the smaller name.
function winner(prefix, among) {
  let best = -1, bh = -1n;
  for (const i of among) {
    const h = mix(fnv(prefix, nodeBytes[i]));
    if (h > bh || (h === bh && nodes[i] < nodes[best])) { bh = h; best = i; }
  }
  return best;
}
const oi = nodes.indexOf(ownerWant), bi = nodes.indexOf(backupWant);
const all = nodes.map((_, i) => i), others = all.filter((i) => i !== oi);
const rooms = [];
for (let k = 0; rooms.length < nConns * per; k++) {
  const name = `rc-${tag}-${k}`;
  const prefix = fnv(fnv(0xcbf29ce484222325n, enc.encode(name)), [0xff]);
  if (winner(prefix, all) === oi && winner(prefix, others) === bi) rooms.push(name);
}
console.error(`client: ${rooms.length} room names picked (owner ${ownerWant}, backup ${backupWant})`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const rss = () => +/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1];
class Conn {
  constructor(ws) { this.ws = ws; this.waiters = new Map(); this.closed = null;
    ws.onmessage = (ev) => { const f = JSON.parse(ev.data); if (f.op === "reply" && this.waiters.has(f.id)) { this.waiters.get(f.id)(f); this.waiters.delete(f.id); } };
  }
  request(obj) { return new Promise((res) => { this.waiters.set(obj.id, res); this.ws.send(JSON.stringify(obj)); }); }
}
function open() {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url);
    const t = setTimeout(() => rej(new Error("no welcome in 20 s")), 20000);
    ws.onmessage = (ev) => { clearTimeout(t); const c = new Conn(ws); res(c); };
    ws.onerror = (e) => { clearTimeout(t); rej(new Error("connect failed")); };
  });
}
async function pool(n, limit, f) {
  let next = 0; const out = new Array(n);
  await Promise.all(Array.from({ length: Math.min(limit, n) }, async () => { while (next < n) { const i = next++; out[i] = await f(i); } }));
  return out;
}
const conns = await pool(nConns, 32, () => open());
let closed = 0;
for (const c of conns) c.ws.onclose = (ev) => { closed++; console.error(`client: a connection closed (${ev.code})`); };
console.error(`client: ${conns.length} connected`);
// As gatehouse-bench idle: the member node's RSS stable (5 samples 0.5 s apart) before joining.
{ const w = []; const t0 = Date.now();
  for (;;) { w.push(rss()); if (w.length > 5) w.shift();
    if (w.length === 5 && Math.max(...w) - Math.min(...w) <= Math.max(64, w[4] / 500)) break;
    if (Date.now() - t0 > 10000) break; await sleep(500); } }
let ok = 0, failed = 0, id = 0; const t0 = Date.now();
await pool(rooms.length, 50, async (j) => {
  const c = conns[Math.floor(j / per)];
  const r = await c.request({ id: ++id, op: "join", room: rooms[j] });
  if (r.ok) ok++; else { failed++; if (failed <= 5) console.error(`client: join ${rooms[j]} refused: ${JSON.stringify(r.error)}`); }
});
console.error(`client: ${ok} joined, ${failed} refused in ${(Date.now() - t0) / 1000} s`);
console.log(JSON.stringify({ client: "room-cost", connections: conns.length, joined: ok, join_failed: failed, join_s: (Date.now() - t0) / 1000 }));
process.on("SIGTERM", () => { for (const c of conns) c.ws.close(); process.exit(0); });
setInterval(() => {}, 1 << 30);
JS
}

# --- suite --------------------------------------------------------------------------------------

suite() {
  local out=${1:-bench/results/$(date -u +%F)-room-cost.jsonl} k cfg p r
  local runs=${RUNS:-2}
  local configs=${SUITE:-"natural/20000/node-a node-b:node-c/9600/node-a node-a:node-b/9600/node-a natural/10000/node-c"}
  local m
  for ((k = 1; k <= runs; k++)); do
    for cfg in $configs; do
      IFS=/ read -r p r m <<<"$cfg"
      echo "=== room-cost: run $k of $runs: placement $p, $r rooms, members on $m" >&2
      PLACEMENT=$p ROOMS=$r MEMBERS_ON=$m "$0" run "$out" || echo "room-cost: run failed ($cfg)" >&2
    done
  done
  fit "$out"
}

case ${1:-} in
  fit) shift; fit "$@" ;;
  suite) shift; suite "$@" ;;
  run) shift; run_one "$@" ;;
  *) run_one "$@" ;;
esac
