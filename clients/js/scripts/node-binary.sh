#!/usr/bin/env bash
# Prints the path of the gatehouse node binary the tests run: $GATEHOUSE_BIN when set (the Rust
# suite passes the binary cargo built next to its tests), else the release build at
# <repo>/target/release/gatehouse, which is built (cargo build --release -p node --bin gatehouse)
# when it is missing.
set -euo pipefail
readonly PROG=clients/js/scripts/node-binary.sh
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
if [[ -n ${GATEHOUSE_BIN:-} ]]; then
    [[ -f $GATEHOUSE_BIN && -x $GATEHOUSE_BIN ]] || { echo "$PROG: error: GATEHOUSE_BIN=$GATEHOUSE_BIN is not an executable file" >&2; exit 1; }
    case $GATEHOUSE_BIN in
        /*) printf '%s\n' "$GATEHOUSE_BIN" ;;
        *) printf '%s\n' "$PWD/$GATEHOUSE_BIN" ;;
    esac
    exit 0
fi
target=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $target == /* ]] || target=$ROOT/$target
BIN=$target/release/gatehouse
if [[ ! -x $BIN ]]; then
    command -v cargo >/dev/null || { echo "$PROG: error: $BIN is missing and cargo is not installed (or set GATEHOUSE_BIN)" >&2; exit 1; }
    echo "$PROG: building the release node: cargo build --release -p node --bin gatehouse" >&2
    (cd "$ROOT" && cargo build --release -p node --bin gatehouse >&2) || { echo "$PROG: error: cargo build failed" >&2; exit 1; }
    [[ -x $BIN ]] || { echo "$PROG: error: built, but $BIN is missing" >&2; exit 1; }
fi
printf '%s\n' "$BIN"
