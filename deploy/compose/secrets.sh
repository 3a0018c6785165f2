#!/usr/bin/env bash
# Creates the Compose secrets once: secrets/cookie (cluster cookie) and secrets/admin_token,
# 32 random bytes each as hex. Existing files are kept (pass --force to replace them).
# The directory is 0700, so only you can reach the files on the host; the files themselves are
# 0644 because Compose bind-mounts them unchanged and the node runs as uid 10001 inside.
#
#   deploy/compose/secrets.sh [--force] [-h|--help]
set -euo pipefail

readonly PROG=deploy/compose/secrets.sh
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/secrets
FORCE=0
for arg in "$@"; do
    case $arg in
        -h | --help) sed -n '2,7s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        --force) FORCE=1 ;;
        *) printf '%s: error: unknown argument: %s\n' "$PROG" "$arg" >&2; exit 2 ;;
    esac
done
umask 077
mkdir -p "$DIR"
chmod 700 "$DIR"
for name in cookie admin_token; do
    f=$DIR/$name
    if [[ -s $f && $FORCE == 0 ]]; then
        echo "kept    $f"
        continue
    fi
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$f.tmp"
    [[ $(wc -c <"$f.tmp") -eq 64 ]] || { printf '%s: error: could not generate %s\n' "$PROG" "$f" >&2; exit 1; }
    chmod 644 "$f.tmp"
    mv "$f.tmp" "$f"
    echo "created $f"
done
