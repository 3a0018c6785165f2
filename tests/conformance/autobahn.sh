#!/usr/bin/env bash
# Autobahn|Testsuite conformance run against the node's WebSocket stack.
#
# Starts one `gatehouse` node with `node.conformance_echo = true` on free loopback ports, runs
# the Autobahn fuzzingclient cases (kosoku, a native runner of the Autobahn case files) against
# `ws://127.0.0.1:<port>/conformance/echo`, writes the reports to reports/autobahn/ and fails
# when any case did not pass. Cases 12.* and 13.* (permessage-deflate) are excluded: the node
# does not negotiate compression.
#
# Environment:
#   GATEHOUSE_BIN        node binary (default: target/debug/gatehouse, built if missing)
#   KOSOKU_PARALLELISM   cases run at once (default 2)
#   AUTOBAHN_TIMEOUT_S   upper bound for the whole kosoku run (default 1800)
#   AUTOBAHN_STRICT_CLOSE=1  also fail cases whose behaviorClose is not OK/INFORMATIONAL
#                        (e.g. WRONG CODE); by default those are only listed as warnings.
#                        The suite's test (tests/src/cases/conformance.rs) sets it to 1 unless
#                        the environment says otherwise.
#
# Passed = behavior OK, NON-STRICT or INFORMATIONAL; anything else (FAILED, WRONG CODE, UNCLEAN,
# UNIMPLEMENTED, ERROR) counts as failed. Exit 0 only when nothing failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KOSOKU_VERSION=0.1.0
VENV="$ROOT/.tools/kosoku"
REPORTS="$ROOT/reports/autobahn"
PARALLELISM="${KOSOKU_PARALLELISM:-2}"
RUN_TIMEOUT="${AUTOBAHN_TIMEOUT_S:-1800}"
GATEHOUSE_BIN="${GATEHOUSE_BIN:-$ROOT/target/debug/gatehouse}"

log() { echo "autobahn: $*" >&2; }

# --- kosoku, in its own venv (reused when it already has the pinned version) ----------------
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kosoku') != '$KOSOKU_VERSION')" 2>/dev/null; then
    log "installing kosoku==$KOSOKU_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "kosoku==$KOSOKU_VERSION"
fi
KOSOKU="$VENV/bin/kosoku"

# --- the node binary --------------------------------------------------------------------------
if [ ! -x "$GATEHOUSE_BIN" ]; then
    if [ "$GATEHOUSE_BIN" != "$ROOT/target/debug/gatehouse" ]; then
        log "GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable"
        exit 2
    fi
    log "building the node (cargo build -p node --bin gatehouse)"
    (cd "$ROOT" && cargo build -p node --bin gatehouse)
fi

# --- config on free loopback ports ------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-autobahn.XXXXXX")"
NODE_PID=""
KOSOKU_PID=""
cleanup() {
    if [ -n "$KOSOKU_PID" ] && kill -0 "$KOSOKU_PID" 2>/dev/null; then
        kill "$KOSOKU_PID" 2>/dev/null || true   # `timeout` passes the signal on to kosoku
        wait "$KOSOKU_PID" 2>/dev/null || true
    fi
    if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
        kill "$NODE_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

read -r PORT ADMIN_PORT CLUSTER_PORT < <("$VENV/bin/python" - <<'PY'
import socket
socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
PY
)

CONFIG="$WORK/gatehouse.toml"
cat > "$CONFIG" <<TOML
[node]
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
cluster_listen = "127.0.0.1:$CLUSTER_PORT"
conformance_echo = true
[limits]
max_message_bytes = 16777216
outbound_queue_bytes = 33554432
msgs_per_sec = 1000000
burst = 1000000
bytes_per_sec = 1000000000
[log]
level = "warn"
TOML

# --- start the node and wait for /healthz -------------------------------------------------------
# Listener/auth settings from the environment would override the file: drop them for the node.
env -u GATEHOUSE_LISTEN -u GATEHOUSE_ADMIN_LISTEN -u GATEHOUSE_CLUSTER_LISTEN -u GATEHOUSE_SEEDS \
    -u GATEHOUSE_AUTH_REQUIRED -u GATEHOUSE_ALLOWED_ORIGINS -u GATEHOUSE_LOG \
    "$GATEHOUSE_BIN" --config "$CONFIG" >"$WORK/node.log" 2>&1 &
NODE_PID=$!

DEADLINE=$(( $(date +%s) + 30 ))
until curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null; do
    if ! kill -0 "$NODE_PID" 2>/dev/null; then
        log "the node exited before it was healthy; its log:"
        cat "$WORK/node.log" >&2
        NODE_PID=""
        exit 1
    fi
    if [ "$(date +%s)" -ge "$DEADLINE" ]; then
        log "the node was not healthy within 30 s; its log:"
        cat "$WORK/node.log" >&2
        exit 1
    fi
    sleep 0.1
done
URL="ws://127.0.0.1:$PORT/conformance/echo"
log "node pid $NODE_PID healthy; running kosoku against $URL (parallelism $PARALLELISM)"

# --- run the suite ------------------------------------------------------------------------------
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
START=$(date +%s)
# In the background + `wait`, so a signal to this script is handled at once (cleanup trap).
timeout "$RUN_TIMEOUT" "$KOSOKU" -x '12.*' -x '13.*' -p "$PARALLELISM" -o "$REPORTS" "$URL" \
    >"$WORK/kosoku.log" 2>&1 &
KOSOKU_PID=$!
set +e
wait "$KOSOKU_PID"
KOSOKU_STATUS=$?
set -e
KOSOKU_PID=""
ELAPSED=$(( $(date +%s) - START ))
# kosoku's own verdict also counts behaviorClose (so it may exit 1 with every `behavior`
# passing); this script judges index.json itself, below.
sed 's/^/kosoku: /' "$WORK/kosoku.log" | tail -n 40 >&2
if [ "$KOSOKU_STATUS" -eq 124 ]; then
    log "kosoku did not finish within ${RUN_TIMEOUT}s"
    exit 1
fi
if [ ! -s "$REPORTS/index.json" ]; then
    log "kosoku wrote no $REPORTS/index.json (exit $KOSOKU_STATUS)"
    cat "$WORK/kosoku.log" >&2
    exit 1
fi
if ! kill -0 "$NODE_PID" 2>/dev/null; then
    log "the node died during the run; its log:"
    tail -n 50 "$WORK/node.log" >&2
    NODE_PID=""
    exit 1
fi

# --- judge index.json ---------------------------------------------------------------------------
"$VENV/bin/python" - "$REPORTS" "$ELAPSED" "${AUTOBAHN_STRICT_CLOSE:-0}" <<'PY'
import json, os, sys
from collections import Counter

reports, elapsed, strict_close = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
with open(os.path.join(reports, "index.json")) as f:
    index = json.load(f)
PASSED = {"OK", "NON-STRICT", "INFORMATIONAL"}
CLOSE_PASSED = {"OK", "INFORMATIONAL"}

def case_key(case_id):
    return tuple(int(p) if p.isdigit() else p for p in case_id.split("."))

def details(entry):
    report = entry.get("reportfile")
    if report:
        try:
            with open(os.path.join(reports, report)) as f:
                return json.load(f)
        except (OSError, ValueError):
            pass
    return {}

def line(tag, case_id, entry, detail):
    expected = (detail.get("expectedClose") or {}).get("closeCode")
    return (
        f"{tag} {case_id}: behavior={entry.get('behavior')} "
        f"behaviorClose={entry.get('behaviorClose')} remoteCloseCode={entry.get('remoteCloseCode')}"
        f" expectedCloseCode={expected} | {detail.get('description', '')}"
        f" | result: {detail.get('result', '')} | close: {detail.get('resultClose', '')}"
    )

behaviors = Counter()
passed = 0
failed = []
for agent, cases in index.items():
    for case_id in sorted(cases, key=case_key):
        entry = cases[case_id]
        behaviors[entry.get("behavior")] += 1
        ok = entry.get("behavior") in PASSED
        close_ok = entry.get("behaviorClose") in CLOSE_PASSED
        if ok and (close_ok or not strict_close):
            passed += 1
            if not close_ok:
                print(line("WARN", case_id, entry, details(entry)), file=sys.stderr)
        else:
            failed.append(case_id)
            print(line("FAILED", case_id, entry, details(entry)), file=sys.stderr)

breakdown = ", ".join(f"{b}={n}" for b, n in sorted(behaviors.items(), key=lambda kv: str(kv[0])))
print(f"autobahn: behaviors {breakdown}; {elapsed}s; reports in {reports}/index.html", file=sys.stderr)
print(f"autobahn: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
