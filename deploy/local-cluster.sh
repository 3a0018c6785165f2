#!/usr/bin/env bash
# Starts a local Gatehouse cluster of N nodes (1-9, default 3) on loopback and waits until every
# node sees all N as active; then stays in the foreground until Ctrl-C/SIGTERM and stops the
# nodes, or with --detach leaves them running.
#
#   deploy/local-cluster.sh [N] [--detach]   start N nodes
#   deploy/local-cluster.sh stop RUN_DIR     stop a detached cluster (SIGTERM, report exit status)
#
# Nodes are node-a, node-b, ...; node-x (the i-th) listens on 127.0.0.1 at 8080+i (public:
# WebSocket /ws, health, metrics), 9100+i (admin API) and 7100+i (cluster), each shifted by
# BASE_PORT_OFFSET. Nodes a-c run the three-node example configs
# (cluster-config/examples/three-node/); later nodes run node-a's with their own name and ports.
# Flags always set name, ports, advertise host and the seed list (all N cluster addresses).
#
# Environment:
#   GATEHOUSE_BIN      use this binary, skip the build
#   PROFILE            release (default) or debug: which cargo build to run and use
#   RUN_DIR            where the cookie (0600), logs (node-x.log), pid files (node-x.pid) and exit
#                      statuses (node-x.exit) go; default: a fresh mktemp -d
#   BASE_PORT_OFFSET   added to the base ports 8080/9100/7100 (default 0)
#   READY_TIMEOUT_S    how long to wait for the cluster to form (default 60)
#   STOP_TIMEOUT_S     how long to wait for each node to exit after SIGTERM (default 40)
#   GATEHOUSE_ADMIN_TOKEN[_FILE]  passed to the nodes as usual, and used for the admin calls
# Other GATEHOUSE_* variables reach the nodes unchanged (e.g. GATEHOUSE_LOG=debug).
#
# Exit status: 0 ok; 1 failure; 2 usage; 3 a port was already in use (nothing left running).
set -euo pipefail

readonly PROG=deploy/local-cluster.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly NAMES=(a b c d e f g h i)
READY_TIMEOUT_S=${READY_TIMEOUT_S:-60}
STOP_TIMEOUT_S=${STOP_TIMEOUT_S:-40}

die() {
    local code=$1
    shift
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit "$code"
}

usage() {
    sed -n '2,26s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

# --- Shared by start and stop -----------------------------------------------------------------

# Prints the last lines of a node's log, indented.
log_tail() {
    local log=$1 lines=${2:-20}
    if [[ -s $log ]]; then
        printf '    --- last %s lines of %s ---\n' "$lines" "$log" >&2
        tail -n "$lines" "$log" | sed 's/^/    /' >&2
    else
        printf '    (%s is empty or missing)\n' "$log" >&2
    fi
}

# Whether pid is alive and is the gatehouse process started for node `name` (guards against a
# reused pid).
is_our_node() {
    local pid=$1 name=$2 args
    kill -0 "$pid" 2>/dev/null || return 1
    args=$(ps -ww -p "$pid" -o args= 2>/dev/null) || return 1
    [[ $args == *"--name $name "* ]]
}

# Describes an exit status written by the node's wrapper.
describe_status() {
    local rc=$1
    if ((rc > 128)); then
        printf 'killed by SIG%s (status %s)' "$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))" "$rc"
    else
        printf 'exited with status %s' "$rc"
    fi
}

# Names of the nodes with a pid file in a run dir, in order.
nodes_in() {
    local dir=$1 n
    for n in "${NAMES[@]}"; do
        [[ -f $dir/node-$n.pid ]] && printf 'node-%s\n' "$n"
    done
    return 0
}

# Sends SIGTERM to every node of a run dir by pid, waits up to STOP_TIMEOUT_S for each to exit
# (SIGKILL after that) and reports each exit status. Returns 0 iff every node exited with 0.
stop_cluster() {
    local dir=$1 name pid rc all_ok=0 deadline
    local -a names=() pids=()
    while IFS= read -r name; do
        names+=("$name")
    done < <(nodes_in "$dir")
    if ((${#names[@]} == 0)); then
        echo "$PROG: no nodes in $dir" >&2
        return 1
    fi
    local -a signalled=()
    echo "Stopping ${#names[@]} node(s) with SIGTERM (up to ${STOP_TIMEOUT_S} s each) ..."
    for name in "${names[@]}"; do
        pid=$(<"$dir/$name.pid")
        pids+=("$pid")
        if is_our_node "$pid" "$name"; then
            kill -TERM "$pid" 2>/dev/null || true
            signalled+=(1)
        else
            signalled+=(0)
        fi
    done
    local i
    for i in "${!names[@]}"; do
        name=${names[$i]}
        pid=${pids[$i]}
        deadline=$((SECONDS + STOP_TIMEOUT_S))
        while is_our_node "$pid" "$name" && ((SECONDS < deadline)); do
            sleep 0.1
        done
        if is_our_node "$pid" "$name"; then
            printf '  %-7s pid %-7s still running after %s s: sending SIGKILL\n' "$name" "$pid" "$STOP_TIMEOUT_S"
            kill -KILL "$pid" 2>/dev/null || true
            all_ok=1
        fi
        # The wrapper writes the status right after the node exits.
        deadline=$((SECONDS + 3))
        while [[ ! -s $dir/$name.exit ]] && ((SECONDS < deadline)); do
            sleep 0.05
        done
        if [[ -s $dir/$name.exit ]]; then
            rc=$(<"$dir/$name.exit")
            if ((${signalled[$i]})); then
                printf '  %-7s pid %-7s %s\n' "$name" "$pid" "$(describe_status "$rc")"
                [[ $rc == 0 ]] || log_tail "$dir/$name.log" 10
            else
                printf '  %-7s pid %-7s had already %s\n' "$name" "$pid" "$(describe_status "$rc")"
            fi
            [[ $rc == 0 ]] || all_ok=1
        elif kill -0 "$pid" 2>/dev/null && is_our_node "$pid" "$name"; then
            printf '  %-7s pid %-7s did not exit\n' "$name" "$pid"
            all_ok=1
        else
            printf '  %-7s pid %-7s gone, exit status unknown (its wrapper did not record one)\n' "$name" "$pid"
            all_ok=1
        fi
    done
    if ((all_ok == 0)); then
        echo "All nodes stopped cleanly. Logs are in $dir."
    else
        echo "Not every node exited with status 0; logs are in $dir." >&2
    fi
    return "$all_ok"
}

# --- stop RUN_DIR -----------------------------------------------------------------------------

if [[ ${1:-} == stop ]]; then
    (($# == 2)) || { usage >&2; die 2 "usage: $PROG stop RUN_DIR"; }
    [[ -d $2 ]] || die 2 "no such run directory: $2"
    is_uint "$STOP_TIMEOUT_S" || die 2 "STOP_TIMEOUT_S must be a whole number of seconds, got '$STOP_TIMEOUT_S'"
    [[ -n $(nodes_in "$2") ]] || die 1 "$2 holds no node pid files (node-x.pid): not a run directory of $PROG"
    if stop_cluster "$2"; then exit 0; else exit 1; fi
fi

# --- start ------------------------------------------------------------------------------------

N=3
DETACH=0
n_seen=0
for arg in "$@"; do
    case $arg in
        -h | --help) usage; exit 0 ;;
        --detach) DETACH=1 ;;
        -*) usage >&2; die 2 "unknown option: $arg" ;;
        *)
            ((n_seen == 0)) || die 2 "more than one node count given"
            n_seen=1
            N=$arg
            ;;
    esac
done
if ! is_uint "$N" || ((10#$N < 1 || 10#$N > 9)); then
    die 2 "N must be a number from 1 to 9, got '$N'"
fi
N=$((10#$N))
OFFSET=${BASE_PORT_OFFSET:-0}
is_uint "$OFFSET" || die 2 "BASE_PORT_OFFSET must be a non-negative integer, got '$OFFSET'"
OFFSET=$((10#$OFFSET))
((9100 + OFFSET + N <= 65535)) || die 2 "BASE_PORT_OFFSET=$OFFSET puts the admin ports above 65535"
is_uint "$READY_TIMEOUT_S" || die 2 "READY_TIMEOUT_S must be a whole number of seconds, got '$READY_TIMEOUT_S'"
is_uint "$STOP_TIMEOUT_S" || die 2 "STOP_TIMEOUT_S must be a whole number of seconds, got '$STOP_TIMEOUT_S'"
command -v curl >/dev/null || die 1 "curl is needed to watch the cluster form"

# The binary.
if [[ -n ${GATEHOUSE_BIN:-} ]]; then
    BIN=$GATEHOUSE_BIN
    [[ -f $BIN && -x $BIN ]] || die 1 "GATEHOUSE_BIN=$BIN is not an executable file"
else
    PROFILE=${PROFILE:-release}
    case $PROFILE in
        release) release_flag=--release ;;
        debug) release_flag= ;;
        *) die 2 "PROFILE must be release or debug, got '$PROFILE'" ;;
    esac
    command -v cargo >/dev/null || die 1 "cargo not found (or set GATEHOUSE_BIN to a built gatehouse)"
    echo "Building gatehouse ($PROFILE): cargo build ${release_flag:+$release_flag }-p node --bin gatehouse" >&2
    (cd "$ROOT" && cargo build ${release_flag:+"$release_flag"} -p node --bin gatehouse) ||
        die 1 "cargo build failed"
    target=${CARGO_TARGET_DIR:-target}
    [[ $target == /* ]] || target=$ROOT/$target
    BIN=$target/$PROFILE/gatehouse
    [[ -x $BIN ]] || die 1 "built, but $BIN is missing"
fi
[[ $BIN == /* ]] || BIN=$PWD/$BIN

# The run directory and the cookie.
RUN_DIR=${RUN_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-cluster.XXXXXX")}
mkdir -p "$RUN_DIR"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
for n in "${NAMES[@]}"; do
    if [[ -f $RUN_DIR/node-$n.pid ]] && is_our_node "$(<"$RUN_DIR/node-$n.pid")" "node-$n"; then
        die 1 "$RUN_DIR already holds a running cluster (node-$n, pid $(<"$RUN_DIR/node-$n.pid")); stop it first: $PROG stop $RUN_DIR"
    fi
done
rm -f "$RUN_DIR"/node-?.pid "$RUN_DIR"/node-?.exit "$RUN_DIR"/node-?.log
COOKIE_FILE=$RUN_DIR/cookie
(
    umask 077
    rm -f "$COOKIE_FILE"
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$COOKIE_FILE"
)
chmod 600 "$COOKIE_FILE"
[[ $(wc -c <"$COOKIE_FILE") -ge 64 ]] || die 1 "could not generate a cookie into $COOKIE_FILE"

# Admin calls: with an admin token configured, the nodes require it (without one they answer
# loopback callers only).
# shellcheck source=lib/admin-token.sh
. "$ROOT/deploy/lib/admin-token.sh"
admin_get() {
    if [[ -n $ADMIN_TOKEN ]]; then
        # The token goes through stdin, not the command line.
        printf 'header = "Authorization: Bearer %s"\n' "$ADMIN_TOKEN" |
            curl -fsS --max-time 2 -K - "$1" 2>/dev/null
    else
        curl -fsS --max-time 2 "$1" 2>/dev/null
    fi
}

# The plan.
declare -a NODE PUBLIC ADMIN CLUSTER CONFIG PID
for ((i = 1; i <= N; i++)); do
    letter=${NAMES[$((i - 1))]}
    NODE[i]=node-$letter
    PUBLIC[i]=127.0.0.1:$((8080 + OFFSET + i))
    ADMIN[i]=127.0.0.1:$((9100 + OFFSET + i))
    CLUSTER[i]=127.0.0.1:$((7100 + OFFSET + i))
    if ((i <= 3)); then
        CONFIG[i]=$ROOT/cluster-config/examples/three-node/node-$letter.toml
    else
        CONFIG[i]=$ROOT/cluster-config/examples/three-node/node-a.toml
    fi
    [[ -f ${CONFIG[i]} ]] || die 1 "missing config ${CONFIG[i]}"
done
SEEDS=$(IFS=,; echo "${CLUSTER[*]}")

# Until the cluster is handed over (detached) or stopped, any exit stops what was started.
LAUNCHED=0
HANDED_OFF=0
STOPPING=0
cleanup_on_exit() {
    local rc=$?
    if ((LAUNCHED > 0 && HANDED_OFF == 0 && STOPPING == 0)); then
        STOPPING=1
        echo "$PROG: stopping the nodes started so far" >&2
        stop_cluster "$RUN_DIR" >&2 || true
    fi
    exit "$rc"
}
on_signal() {
    local sig=$1
    if ((STOPPING)); then
        echo "$PROG: $sig: already stopping, waiting for the nodes to exit" >&2
        return
    fi
    STOPPING=1
    echo
    echo "$PROG: $sig received"
    if ((LAUNCHED > 0)) && stop_cluster "$RUN_DIR"; then exit 0; fi
    exit 1
}
trap cleanup_on_exit EXIT
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP

# Launch. Each node runs under a small wrapper subshell that waits for it and records its exit
# status in node-x.exit, so `stop` can report it even for a detached cluster. The node's own pid
# goes to node-x.pid; signals go to that pid only.
export GATEHOUSE_COOKIE_FILE=$COOKIE_FILE
unset GATEHOUSE_COOKIE
echo "Starting $N node(s) in $RUN_DIR ..."
for ((i = 1; i <= N; i++)); do
    name=${NODE[i]}
    log=$RUN_DIR/$name.log
    pidfile=$RUN_DIR/$name.pid
    args=(--config "${CONFIG[i]}" --name "$name" --listen "${PUBLIC[i]}"
        --admin-listen "${ADMIN[i]}" --cluster-listen "${CLUSTER[i]}"
        --advertise 127.0.0.1 --seeds "$SEEDS")
    printf '# %s\n' "$BIN ${args[*]}" >"$log"
    # Job control on for the launch only: the wrapper and its node get their own process
    # group, so Ctrl-C on the terminal reaches this script alone and the stop below is the one
    # that signals the nodes.
    set -m
    (
        # Survive Ctrl-C and stray signals to record the status; a trapped (not ignored)
        # signal is reset to its default in the node, so the node still gets SIGTERM/SIGINT.
        trap - EXIT
        trap ':' INT TERM
        if ((DETACH)); then trap '' HUP; else trap ':' HUP; fi
        # Logs go to files: no colour codes in them (unless the caller set NO_COLOR itself).
        NO_COLOR=${NO_COLOR:-1} "$BIN" "${args[@]}" >>"$log" 2>&1 </dev/null &
        node_pid=$!
        echo "$node_pid" >"$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"
        # A signal to the wrapper interrupts `wait`; wait again until the node is gone, then
        # read the status bash kept for it.
        while kill -0 "$node_pid" 2>/dev/null; do wait "$node_pid" || true; done
        rc=0
        wait "$node_pid" || rc=$?
        echo "$rc" >"$RUN_DIR/$name.exit"
    ) </dev/null >/dev/null 2>&1 &
    set +m
    LAUNCHED=$i
    deadline=$((SECONDS + 5))
    while [[ ! -s $pidfile ]] && ((SECONDS < deadline)); do
        sleep 0.02
    done
    [[ -s $pidfile ]] || die 1 "$name did not start (no pid file after 5 s)"
    PID[i]=$(<"$pidfile")
done

# Explains why node i is not running and exits (3 if it lost a port race, else 1).
node_died() {
    local i=$1 name=${NODE[$1]} log=$RUN_DIR/${NODE[$1]}.log rc=unknown line
    [[ -s $RUN_DIR/$name.exit ]] && rc=$(<"$RUN_DIR/$name.exit")
    line=$(grep -m1 'cannot listen on' "$log" 2>/dev/null || true)
    if [[ -n $line && $line == *[Ii]n\ use* ]]; then
        local addr=${line#*cannot listen on \`}
        addr=${addr%%\`*}
        local what=port
        case $line in
            *node.listen*) what="public port" ;;
            *node.admin_listen*) what="admin port" ;;
            *node.cluster_listen*) what="cluster port" ;;
        esac
        printf '%s: error: %s could not start: %s %s is already in use (another cluster or process; try BASE_PORT_OFFSET=...)\n' \
            "$PROG" "$name" "$what" "$addr" >&2
        log_tail "$log"
        exit 3
    fi
    printf '%s: error: %s (pid %s) exited during startup (status %s)\n' "$PROG" "$name" "${PID[i]}" "$rc" >&2
    log_tail "$log"
    exit 1
}

# Wait until every node lists all N nodes as active.
active_count() {
    # Counts the "state":"active" entries of /admin/v1/cluster, and checks every name is listed.
    local body=$1 j
    for ((j = 1; j <= N; j++)); do
        [[ $body == *"\"${NODE[j]}\""* ]] || { echo 0; return; }
    done
    grep -o '"state"[[:space:]]*:[[:space:]]*"active"' <<<"$body" | wc -l | tr -d ' '
}
echo "Waiting up to ${READY_TIMEOUT_S} s for every node to see $N active node(s) ..."
deadline=$((SECONDS + READY_TIMEOUT_S))
declare -a SEEN
while :; do
    ready=0
    for ((i = 1; i <= N; i++)); do
        kill -0 "${PID[i]}" 2>/dev/null || node_died "$i"
        body=$(admin_get "http://${ADMIN[i]}/admin/v1/cluster") || body=
        SEEN[i]=$body
        if [[ -n $body && $(active_count "$body") == "$N" ]]; then
            ready=$((ready + 1))
        fi
    done
    ((ready == N)) && break
    if ((SECONDS >= deadline)); then
        printf '%s: error: the cluster did not form within %s s (%s of %s nodes see all %s active)\n' \
            "$PROG" "$READY_TIMEOUT_S" "$ready" "$N" "$N" >&2
        for ((i = 1; i <= N; i++)); do
            printf '  %s /admin/v1/cluster: %s\n' "${NODE[i]}" "${SEEN[i]:-(no answer)}" >&2
            log_tail "$RUN_DIR/${NODE[i]}.log" 10
        done
        exit 1
    fi
    sleep 0.2
done

# The table.
{
    printf 'name\tws_url\tadmin_url\tcluster\tpid\n'
    for ((i = 1; i <= N; i++)); do
        printf '%s\tws://%s/ws\thttp://%s\t%s\t%s\n' "${NODE[i]}" "${PUBLIC[i]}" "${ADMIN[i]}" "${CLUSTER[i]}" "${PID[i]}"
    done
} >"$RUN_DIR/nodes.tsv"
# The hint names the variable or file, never the token itself.
auth_hint=
if [[ -n ${GATEHOUSE_ADMIN_TOKEN_FILE:-} ]]; then
    auth_hint=" -H \"Authorization: Bearer \$(cat $GATEHOUSE_ADMIN_TOKEN_FILE)\""
elif [[ -n $ADMIN_TOKEN ]]; then
    # shellcheck disable=SC2016 # the variable is for the reader's shell to expand
    auth_hint=' -H "Authorization: Bearer $GATEHOUSE_ADMIN_TOKEN"'
fi
echo
echo "Gatehouse local cluster: $N node(s) active (run dir $RUN_DIR)"
echo
printf '  %-7s %-26s %-23s %-16s %s\n' NAME 'WEBSOCKET' 'ADMIN' 'CLUSTER' PID
for ((i = 1; i <= N; i++)); do
    printf '  %-7s %-26s %-23s %-16s %s\n' "${NODE[i]}" "ws://${PUBLIC[i]}/ws" "http://${ADMIN[i]}" "${CLUSTER[i]}" "${PID[i]}"
done
echo
echo "Attach:"
printf '  %-52s # %s\n' \
    "curl -s${auth_hint} http://${ADMIN[1]}/admin/v1/cluster" "membership (any node's admin URL)" \
    "curl -s http://${PUBLIC[1]}/readyz" "200 while the node is active" \
    "ws://${PUBLIC[1]}/ws" "any WebSocket client, any node's ws URL"
echo "Logs:    tail -f $RUN_DIR/node-*.log"
echo "Cookie:  $COOKIE_FILE (GATEHOUSE_COOKIE_FILE for extra nodes)"

if ((DETACH)); then
    HANDED_OFF=1
    echo
    echo "Detached; the nodes keep running. Stop them with:"
    echo "  $PROG stop $RUN_DIR"
    exit 0
fi

echo
echo "Running in the foreground: Ctrl-C (or SIGTERM to pid $$) stops the cluster."
# Wait for a signal; report nodes that exit on their own meanwhile.
declare -a GONE
while :; do
    alive=0
    for ((i = 1; i <= N; i++)); do
        if kill -0 "${PID[i]}" 2>/dev/null; then
            alive=$((alive + 1))
        elif [[ -z ${GONE[i]:-} ]]; then
            GONE[i]=1
            rc=unknown
            [[ -s $RUN_DIR/${NODE[i]}.exit ]] && rc=$(<"$RUN_DIR/${NODE[i]}.exit")
            printf '%s: warning: %s (pid %s) exited on its own (status %s)\n' "$PROG" "${NODE[i]}" "${PID[i]}" "$rc" >&2
            log_tail "$RUN_DIR/${NODE[i]}.log" 10
        fi
    done
    if ((alive == 0)); then
        HANDED_OFF=1
        die 1 "every node has exited"
    fi
    sleep 1 &
    wait $! || true
done
