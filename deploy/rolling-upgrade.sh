#!/usr/bin/env bash
# Replaces every node of a local cluster (started by deploy/local-cluster.sh) with a new binary,
# one node at a time, without losing a message:
#   drain (POST /admin/v1/nodes/NODE/drain) -> wait for `drained` -> SIGTERM, wait for exit 0
#   -> start NEW_BINARY with the same arguments, working directory and log -> wait until every
#   node sees all nodes `active` -> next node.
# Clients of the drained node get `reconnect` + 1012 and resume elsewhere with `since`; a load
# balancer that health-checks /readyz stops routing to a node when its drain starts.
#
#   deploy/rolling-upgrade.sh RUN_DIR NEW_BINARY [--nodes node-a,node-b,...]
#
# RUN_DIR is the run directory local-cluster.sh printed (node-x.pid, node-x.log, cookie). The
# new node keeps the old one's command line (read from /proc/PID/cmdline) except the binary,
# and gets the cluster cookie from RUN_DIR/cookie; `local-cluster.sh stop RUN_DIR` still stops
# the upgraded cluster. Each step's duration and the clients and rooms moved are printed, and
# appended as one line per node to RUN_DIR/rolling-upgrade.tsv (times in ms; drain_start and
# exited are Unix epoch ms).
#
# Environment:
#   DRAIN_TIMEOUT_S    how long a node may take to drain (default 120)
#   STOP_TIMEOUT_S     how long a drained node may take to exit after SIGTERM (default 30)
#   READY_TIMEOUT_S    how long a new node may take until every node sees all active (default 60)
#   PAUSE_S            wait this long between two nodes (default 0). Behind a load balancer use
#                      at least the clients' reconnect window (node.drain_jitter_ms, 5 s) plus
#                      its rise time (HAProxy here: 2 s), so the moved clients have settled and
#                      the new node takes clients before the next drain starts
#   GATEHOUSE_ADMIN_TOKEN[_FILE]  the admin token, when the nodes have one
#
# Exit status: 0 every node replaced; 1 a step failed (the script stops there; the node being
# replaced is left as it was at that step, see its log); 2 usage.
set -euo pipefail

readonly PROG=deploy/rolling-upgrade.sh
readonly NAMES=(a b c d e f g h i)
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-120}
STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-30}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-60}
PAUSE_S=${PAUSE_S:-0}

die() {
    local code=$1
    shift
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit "$code"
}
usage() { sed -n '2,32s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# --- arguments --------------------------------------------------------------------------------
RUN_DIR=
NEW_BIN=
ONLY=
positional=()
while (($#)); do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --nodes)
            (($# >= 2)) || { usage >&2; die 2 "--nodes needs a comma-separated list of node names"; }
            ONLY=$2
            shift 2
            ;;
        --nodes=*) ONLY=${1#--nodes=}; shift ;;
        -*) usage >&2; die 2 "unknown option: $1" ;;
        *) positional+=("$1"); shift ;;
    esac
done
((${#positional[@]} == 2)) || { usage >&2; die 2 "expected RUN_DIR and NEW_BINARY, got ${#positional[@]} argument(s)"; }
RUN_DIR=${positional[0]}
NEW_BIN=${positional[1]}
[[ -d $RUN_DIR ]] || die 2 "RUN_DIR: no such directory: $RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
[[ -f $NEW_BIN && -x $NEW_BIN ]] || die 2 "NEW_BINARY: not an executable file: $NEW_BIN"
[[ $NEW_BIN == /* ]] || NEW_BIN=$PWD/$NEW_BIN
for v in DRAIN_TIMEOUT_S STOP_TIMEOUT_S READY_TIMEOUT_S PAUSE_S; do
    is_uint "${!v}" || die 2 "$v must be a whole number of seconds, got '${!v}'"
done
[[ -f $RUN_DIR/cookie ]] || die 2 "RUN_DIR: $RUN_DIR/cookie is missing: not a run directory of deploy/local-cluster.sh"
command -v curl >/dev/null || die 1 "curl is needed for the admin API calls"
[[ -r /proc/self/cmdline ]] || die 1 "/proc is needed to read the nodes' command lines"
new_version=$("$NEW_BIN" --version 2>/dev/null) || die 2 "NEW_BINARY: '$NEW_BIN --version' failed: is it a gatehouse binary?"

# shellcheck source=lib/admin-token.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib/admin-token.sh"
# curl with the token on stdin (never on the command line); extra arguments follow.
admin_curl() {
    if [[ -n $ADMIN_TOKEN ]]; then
        printf 'header = "Authorization: Bearer %s"\n' "$ADMIN_TOKEN" | curl -fsS --max-time 3 -K - "$@" 2>/dev/null
    else
        curl -fsS --max-time 3 "$@" 2>/dev/null
    fi
}

# --- the cluster ------------------------------------------------------------------------------
is_our_node() {
    local pid=$1 name=$2 args
    kill -0 "$pid" 2>/dev/null || return 1
    args=$(ps -ww -p "$pid" -o args= 2>/dev/null) || return 1
    [[ $args == *"--name $name "* ]]
}
# Value of a flag in a node's argument list: flag_value FLAG ARGS...
flag_value() {
    local flag=$1
    shift
    while (($#)); do
        if [[ $1 == "$flag" && $# -ge 2 ]]; then
            printf '%s' "$2"
            return 0
        fi
        shift
    done
    return 1
}
# A number or string field of a flat JSON object: json_field NAME BODY
json_field() {
    local re="\"$1\"[[:space:]]*:[[:space:]]*(\"([^\"]*)\"|(-?[0-9.]+)|null)"
    if [[ $2 =~ $re ]]; then
        printf '%s' "${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
    fi
}
now_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    printf '%s' "${t:0:${#t}-3}"
}
secs() { printf '%d.%02d' $(($1 / 1000)) $(($1 % 1000 / 10)); }

declare -a NODES=()
for n in "${NAMES[@]}"; do
    [[ -f $RUN_DIR/node-$n.pid ]] && NODES+=("node-$n")
done
((${#NODES[@]} > 0)) || die 2 "RUN_DIR: $RUN_DIR holds no node pid files (node-x.pid)"
declare -A ADMIN_OF PUBLIC_OF
for name in "${NODES[@]}"; do
    pid=$(<"$RUN_DIR/$name.pid")
    is_our_node "$pid" "$name" || die 1 "$name (pid $pid from $RUN_DIR/$name.pid) is not running: start the cluster first"
    mapfile -d '' -t argv <"/proc/$pid/cmdline"
    ADMIN_OF[$name]=$(flag_value --admin-listen "${argv[@]}") || die 1 "$name: no --admin-listen on its command line"
    PUBLIC_OF[$name]=$(flag_value --listen "${argv[@]}") || die 1 "$name: no --listen on its command line"
done
TARGETS=("${NODES[@]}")
if [[ -n $ONLY ]]; then
    IFS=, read -r -a TARGETS <<<"$ONLY"
    for t in "${TARGETS[@]}"; do
        [[ -n ${ADMIN_OF[$t]:-} ]] || die 2 "--nodes: '$t' is not a node of $RUN_DIR (nodes: ${NODES[*]})"
    done
fi

# Whether every running node lists all nodes as active.
all_active() {
    local name body count
    for name in "${NODES[@]}"; do
        body=$(admin_curl "http://${ADMIN_OF[$name]}/admin/v1/cluster") || return 1
        count=$(grep -o '"state"[[:space:]]*:[[:space:]]*"active"' <<<"$body" | wc -l)
        ((count == ${#NODES[@]})) || return 1
    done
}
all_active || die 1 "not every node sees all ${#NODES[@]} nodes active: fix the cluster before upgrading"

TSV=$RUN_DIR/rolling-upgrade.tsv
[[ -s $TSV ]] || printf 'node\told_pid\tnew_pid\tclients\trooms\tdrain_ms\tstop_ms\tstart_ms\ttotal_ms\tdrain_start\texited\n' >"$TSV"

echo "Rolling upgrade of ${#TARGETS[@]} node(s) in $RUN_DIR to $NEW_BIN ($new_version)"
export GATEHOUSE_COOKIE_FILE=$RUN_DIR/cookie
unset GATEHOUSE_COOKIE
total_start=$(now_ms)
step=0
for name in "${TARGETS[@]}"; do
    step=$((step + 1))
    if ((step > 1 && PAUSE_S > 0)); then
        sleep "$PAUSE_S"
    fi
    pidfile=$RUN_DIR/$name.pid
    old_pid=$(<"$pidfile")
    is_our_node "$old_pid" "$name" || die 1 "$name (pid $old_pid) is not running"
    mapfile -d '' -t argv <"/proc/$old_pid/cmdline"
    args=("${argv[@]:1}")
    cwd=$(readlink "/proc/$old_pid/cwd") || cwd=$RUN_DIR
    admin=${ADMIN_OF[$name]}
    public=${PUBLIC_OF[$name]}

    # 1. Drain.
    stats=$(admin_curl "http://$admin/admin/v1/stats") || die 1 "$name: GET http://$admin/admin/v1/stats failed"
    clients=$(json_field connections "$stats")
    rooms=$(json_field rooms_owned "$stats")
    t0=$(now_ms)
    admin_curl -X POST -o /dev/null "http://$admin/admin/v1/nodes/$name/drain" ||
        die 1 "$name: POST http://$admin/admin/v1/nodes/$name/drain failed"
    printf '[%d/%d] %s: draining (%s clients, %s rooms) ...\n' "$step" "${#TARGETS[@]}" "$name" "${clients:-?}" "${rooms:-?}"
    deadline=$((SECONDS + DRAIN_TIMEOUT_S))
    state=
    while :; do
        stats=$(admin_curl "http://$admin/admin/v1/stats") || stats=
        state=$(json_field state "$stats")
        [[ $state == drained ]] && break
        is_our_node "$old_pid" "$name" || die 1 "$name (pid $old_pid) exited while draining; see $RUN_DIR/$name.log"
        if ((SECONDS >= deadline)); then
            die 1 "$name: not drained after $DRAIN_TIMEOUT_S s (state ${state:-unknown}, rooms_left $(json_field rooms_left "$stats"), connections_left $(json_field connections_left "$stats"))"
        fi
        sleep 0.05
    done
    t1=$(now_ms)

    # 2. Stop: a drained node exits at once on SIGTERM.
    rm -f "$RUN_DIR/$name.exit"
    kill -TERM "$old_pid"
    deadline=$((SECONDS + STOP_TIMEOUT_S))
    while is_our_node "$old_pid" "$name"; do
        ((SECONDS < deadline)) || die 1 "$name (pid $old_pid) still running $STOP_TIMEOUT_S s after SIGTERM"
        sleep 0.02
    done
    t2=$(now_ms)
    deadline=$((SECONDS + 3))
    while [[ ! -s $RUN_DIR/$name.exit ]] && ((SECONDS < deadline)); do sleep 0.02; done
    rc=$(cat "$RUN_DIR/$name.exit" 2>/dev/null || echo unknown)
    [[ $rc == 0 ]] || die 1 "$name (pid $old_pid) exited with status $rc; see $RUN_DIR/$name.log"

    # 3. Start the new binary, same arguments, under the same kind of wrapper as
    #    local-cluster.sh (pid file, exit status file, log appended).
    log=$RUN_DIR/$name.log
    rm -f "$pidfile"
    printf '# rolling upgrade: %s %s\n' "$NEW_BIN" "${args[*]}" >>"$log"
    set -m
    (
        trap - EXIT
        trap ':' INT TERM
        trap '' HUP
        cd "$cwd"
        NO_COLOR=${NO_COLOR:-1} "$NEW_BIN" "${args[@]}" >>"$log" 2>&1 </dev/null &
        node_pid=$!
        echo "$node_pid" >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
        while kill -0 "$node_pid" 2>/dev/null; do wait "$node_pid" || true; done
        rc=0
        wait "$node_pid" || rc=$?
        echo "$rc" >"$RUN_DIR/$name.exit"
    ) </dev/null >/dev/null 2>&1 &
    set +m
    deadline=$((SECONDS + 5))
    while [[ ! -s $pidfile ]] && ((SECONDS < deadline)); do sleep 0.02; done
    [[ -s $pidfile ]] || die 1 "$name: the new node did not start (no pid file after 5 s)"
    new_pid=$(<"$pidfile")

    # 4. Wait until every node sees all nodes active (the new one included).
    deadline=$((SECONDS + READY_TIMEOUT_S))
    until all_active; do
        if ! kill -0 "$new_pid" 2>/dev/null; then
            printf '%s: error: %s (new pid %s) exited during startup (status %s); last lines of %s:\n' \
                "$PROG" "$name" "$new_pid" "$(cat "$RUN_DIR/$name.exit" 2>/dev/null || echo unknown)" "$log" >&2
            tail -n 15 "$log" | sed 's/^/    /' >&2
            exit 1
        fi
        ((SECONDS < deadline)) || die 1 "$name (new pid $new_pid): the cluster did not see every node active within $READY_TIMEOUT_S s"
        sleep 0.05
    done
    curl -fsS --max-time 2 -o /dev/null "http://$public/readyz" || die 1 "$name: active in the cluster view but http://$public/readyz is not 200"
    t3=$(now_ms)

    printf '[%d/%d] %s: drained in %s s (%s clients, %s rooms moved), stopped in %s s (exit 0), new pid %s active in %s s; step %s s\n' \
        "$step" "${#TARGETS[@]}" "$name" "$(secs $((t1 - t0)))" "${clients:-?}" "${rooms:-?}" \
        "$(secs $((t2 - t1)))" "$new_pid" "$(secs $((t3 - t2)))" "$(secs $((t3 - t0)))"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$old_pid" "$new_pid" "${clients:-}" "${rooms:-}" \
        $((t1 - t0)) $((t2 - t1)) $((t3 - t2)) $((t3 - t0)) "$t0" "$t2" >>"$TSV"
done
printf 'Upgraded %d node(s) in %s s; every node active. Per-step figures: %s\n' \
    "${#TARGETS[@]}" "$(secs $(($(now_ms) - total_start)))" "$TSV"
