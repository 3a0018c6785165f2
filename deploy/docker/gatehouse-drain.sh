#!/bin/sh
# gatehouse-drain: drains the local Gatehouse node and waits until it reports `drained`.
# Installed in the image as /usr/local/bin/gatehouse-drain; the Kubernetes preStop hook and
# anyone stopping a node by hand run it. POSIX sh + curl, so it runs in the slim image.
#
#   gatehouse-drain [-h|--help]
#
# Environment (the container's own, so a preStop hook needs no arguments):
#   GATEHOUSE_NAME               this node's name (required)
#   GATEHOUSE_ADMIN_TOKEN_FILE   admin token file (or GATEHOUSE_ADMIN_TOKEN); none: no header
#   GATEHOUSE_DRAIN_ADMIN_URL    admin API base (default http://127.0.0.1:9100)
#   GATEHOUSE_DRAIN_PUBLIC_URL   public listener base, for /readyz (default http://127.0.0.1:8080)
#   GATEHOUSE_DRAIN_TIMEOUT_S    give up after this many seconds (default 100)
#
# Exit status: 0 drained; 1 the drain request failed or timed out; 2 usage.
set -eu

PROG=gatehouse-drain
case "${1:-}" in
    -h | --help) sed -n '2,14s/^# \{0,1\}//p' "$0"; exit 0 ;;
    "") ;;
    *) echo "$PROG: error: unknown argument: $1" >&2; exit 2 ;;
esac
NAME=${GATEHOUSE_NAME:-}
[ -n "$NAME" ] || { echo "$PROG: error: GATEHOUSE_NAME is not set (the node to drain)" >&2; exit 2; }
ADMIN=${GATEHOUSE_DRAIN_ADMIN_URL:-http://127.0.0.1:9100}
PUBLIC=${GATEHOUSE_DRAIN_PUBLIC_URL:-http://127.0.0.1:8080}
TIMEOUT=${GATEHOUSE_DRAIN_TIMEOUT_S:-100}
case $TIMEOUT in '' | *[!0-9]*) echo "$PROG: error: GATEHOUSE_DRAIN_TIMEOUT_S must be whole seconds, got '$TIMEOUT'" >&2; exit 2 ;; esac

TOKEN=
if [ -n "${GATEHOUSE_ADMIN_TOKEN_FILE:-}" ]; then
    TOKEN=$(cat "$GATEHOUSE_ADMIN_TOKEN_FILE") || { echo "$PROG: error: cannot read GATEHOUSE_ADMIN_TOKEN_FILE=$GATEHOUSE_ADMIN_TOKEN_FILE" >&2; exit 1; }
elif [ -n "${GATEHOUSE_ADMIN_TOKEN:-}" ]; then
    TOKEN=$GATEHOUSE_ADMIN_TOKEN
fi

# The token goes to curl on stdin (-K -), never on the command line.
if [ -n "$TOKEN" ]; then
    printf 'header = "Authorization: Bearer %s"\n' "$TOKEN" |
        curl -fsS --max-time 5 -K - -X POST -o /dev/null "$ADMIN/admin/v1/nodes/$NAME/drain" ||
        { echo "$PROG: error: POST $ADMIN/admin/v1/nodes/$NAME/drain failed" >&2; exit 1; }
else
    curl -fsS --max-time 5 -X POST -o /dev/null "$ADMIN/admin/v1/nodes/$NAME/drain" ||
        { echo "$PROG: error: POST $ADMIN/admin/v1/nodes/$NAME/drain failed" >&2; exit 1; }
fi
echo "$PROG: draining $NAME (up to $TIMEOUT s)"

# /readyz answers {"ready":false,"state":"drained",...} with 503 once nothing is left.
start=$(date +%s)
while :; do
    body=$(curl -sS --max-time 2 "$PUBLIC/readyz" 2>/dev/null || true)
    case $body in
        *'"state":"drained"'*)
            echo "$PROG: $NAME drained in $(($(date +%s) - start)) s"
            exit 0
            ;;
    esac
    if [ $(($(date +%s) - start)) -ge "$TIMEOUT" ]; then
        echo "$PROG: error: $NAME not drained after $TIMEOUT s (last /readyz: ${body:-no answer})" >&2
        exit 1
    fi
    sleep 0.5
done
