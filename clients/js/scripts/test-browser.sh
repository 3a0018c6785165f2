#!/usr/bin/env bash
# `npm run test:browser`: the real-browser end-to-end test (test/browser/rolling-upgrade.ts):
# Debian's Chromium, driven by playwright-core, runs the chat demo twice through HAProxy
# (deploy/haproxy/haproxy.cfg) in front of deploy/local-cluster.sh 3 while
# deploy/rolling-upgrade.sh replaces every node. Installs what it needs first: Chromium and
# HAProxy from Debian (scripts/install-system-deps.sh, as root), the npm packages with npm ci
# (scripts/setup.sh). The node binary is $GATEHOUSE_BIN or the release build, built when missing.
#
#   clients/js/scripts/test-browser.sh
#
# Environment: GATEHOUSE_BIN, CHROMIUM (default /usr/bin/chromium), GATEHOUSE_TEST_KEEP=1 (keep
# the work directory), GATEHOUSE_TEST_PATIENCE (stretches deadlines).
set -euo pipefail
readonly PROG=clients/js/scripts/test-browser.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in
    "") ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "$PROG: error: unknown argument: $1" >&2; exit 2 ;;
esac

# shellcheck source=watchdog.sh
. "$HERE/scripts/watchdog.sh"
if [[ -z ${CHROMIUM:-} ]]; then
    bash "$HERE/scripts/install-system-deps.sh" || {
        echo "$PROG: error: the browser test needs Debian's Chromium at /usr/bin/chromium and HAProxy: apt-get install -y chromium haproxy (as root)" >&2
        exit 1
    }
else
    [[ -x $CHROMIUM ]] || { echo "$PROG: error: CHROMIUM=$CHROMIUM is not an executable" >&2; exit 1; }
    command -v haproxy >/dev/null || { echo "$PROG: error: haproxy is needed: apt-get install -y haproxy" >&2; exit 1; }
fi
bash "$HERE/scripts/setup.sh"
GATEHOUSE_BIN=$(bash "$HERE/scripts/node-binary.sh")
export GATEHOUSE_BIN
ulimit -n 20000 2>/dev/null || true
cd "$HERE"
# The build stays as it is while the test runs (setup.sh rebuilds under the exclusive lock).
exec flock -s -o .build.lock node .test-build/browser/rolling-upgrade.js
