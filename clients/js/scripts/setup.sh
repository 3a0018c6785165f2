#!/usr/bin/env bash
# Prepares clients/js for its tests: installs the npm dev dependencies with `npm ci` (the exact
# versions of package-lock.json) when node_modules does not match the lockfile, then builds the
# package (dist/) and the tests (.test-build/) when their sources changed; quick when nothing
# did. Safe to run from several processes at once (flock on clients/js/.setup.lock), and while
# tests run (they hold clients/js/.build.lock shared; a rebuild waits for them).
#
#   clients/js/scripts/setup.sh [--no-build]
#
# Exit status: 0 ok; 1 a step failed; 2 usage.
set -euo pipefail
readonly PROG=clients/js/scripts/setup.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly HERE

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }

BUILD=1
for arg in "$@"; do
    case $arg in
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) printf '%s: error: unknown argument: %s\n' "$PROG" "$arg" >&2; exit 2 ;;
    esac
done

command -v node >/dev/null || die "node is needed (Node.js 18 or newer; the project's machines have Node.js 20)"
command -v npm >/dev/null || die "npm is needed (it comes with Node.js)"
major=$(node -p 'process.versions.node.split(".")[0]')
((major >= 18)) || die "Node.js 18 or newer is needed, found $(node --version)"
command -v flock >/dev/null || die "flock (util-linux) is needed"

cd "$HERE"
exec 9>"$HERE/.setup.lock"
flock -w 900 9 || die "timed out waiting for another setup (lock $HERE/.setup.lock)"

# What the build is made of; the build is redone only when it changed.
sources_hash() {
    find src test examples scripts package.json package-lock.json tsconfig.json tsconfig.test.json -type f -print0 |
        sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1
}
want_modules=$(sha256sum package-lock.json | cut -d' ' -f1)
modules_stamp=node_modules/.gatehouse-lock.sha256
need_ci=0
[[ -f $modules_stamp && $(<"$modules_stamp") == "$want_modules" ]] || need_ci=1
want_build=$(sources_hash)
build_stamp=.test-build/.sources.sha256
need_build=0
((BUILD)) && { [[ -f $build_stamp && -f dist/index.js && $(<"$build_stamp") == "$want_build" ]] || need_build=1; }
((need_ci || need_build)) || exit 0

# Tests that run hold .build.lock shared (scripts/test.sh, scripts/test-browser.sh): node_modules
# and the build are replaced only when none is running.
exec 8>"$HERE/.build.lock"
flock -x -w 900 8 || die "timed out waiting for running tests to finish (lock $HERE/.build.lock)"
if ((need_ci)); then
    log "npm ci (exact versions from package-lock.json)"
    npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
    printf '%s' "$want_modules" >"$modules_stamp"
fi
if ((need_build)); then
    log "building dist/ (tsc) and the tests"
    rm -rf dist .test-build
    node_modules/.bin/tsc -p tsconfig.json || die "tsc failed for the package"
    node_modules/.bin/tsc -p tsconfig.test.json || die "tsc failed for the tests"
    printf '%s' "$want_build" >"$build_stamp"
fi
