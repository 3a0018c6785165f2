#!/usr/bin/env bash
# `npm test`: the package's unit tests (Node's test runner, fake timers, a scripted transport)
# and its integration tests (real gatehouse nodes on free loopback ports, `ws` as the
# WebSocket). Installs and builds first (scripts/setup.sh); the node binary is $GATEHOUSE_BIN or
# the release build, built when missing (scripts/node-binary.sh).
#
#   clients/js/scripts/test.sh [--unit | --integration]
#
# Environment: GATEHOUSE_BIN (the node), GATEHOUSE_TEST_PATIENCE (stretches deadlines),
# GATEHOUSE_TEST_KEEP=1 (keep the nodes' temporary directories).
set -euo pipefail
readonly PROG=clients/js/scripts/test.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UNIT=1
INTEGRATION=1
case ${1:-} in
    "") ;;
    --unit) INTEGRATION=0 ;;
    --integration) UNIT=0 ;;
    -h | --help) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "$PROG: error: unknown argument: $1" >&2; exit 2 ;;
esac

# shellcheck source=watchdog.sh
. "$HERE/scripts/watchdog.sh"
bash "$HERE/scripts/setup.sh"
cd "$HERE"
# The build stays as it is while the tests run (setup.sh rebuilds under the exclusive lock).
# Each node may hold many sockets; the project's limit per process is 20 000.
ulimit -n 20000 2>/dev/null || true
status=0
if ((UNIT)); then
    echo "$PROG: unit tests" >&2
    flock -s -o .build.lock node --test --test-reporter=spec --test-timeout=60000 .test-build/unit/ || status=1
fi
if ((INTEGRATION)); then
    GATEHOUSE_BIN=$(bash "$HERE/scripts/node-binary.sh")
    export GATEHOUSE_BIN
    echo "$PROG: integration tests against $GATEHOUSE_BIN" >&2
    flock -s -o .build.lock node --test --test-reporter=spec --test-concurrency=2 --test-timeout=120000 .test-build/integration/ || status=1
fi
exit "$status"
