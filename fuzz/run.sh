#!/usr/bin/env bash
# Fuzzes a decoder with cargo-fuzz / libFuzzer: the client frame decoder
# (`protocol::client::decode`, target `decode`, the default), the cluster handshake gate
# (`node/src/cluster/gate.rs`, target `cluster_handshake`) or the cluster link's control-frame
# classifier (`node/src/cluster/frames.rs`, target `cluster_frames`).
#
# Usage: fuzz/run.sh [SECONDS] [TARGET]   (default 60 seconds of fuzzing, not counting the build;
#                                          TARGET `decode`, `cluster_handshake` or
#                                          `cluster_frames`)
#        FUZZ_FEATURES=strict-json fuzz/run.sh [SECONDS]   (stricter JSON checks, see decode.rs)
#
# - installs cargo-fuzz (`cargo install cargo-fuzz --locked`) only when `cargo fuzz` is missing;
# - uses `cargo +nightly fuzz` when a nightly toolchain is installed, otherwise the default
#   (stable) toolchain with RUSTC_BOOTSTRAP=1 so the sanitizer `-Z` flags are accepted;
# - fuzzes a throw-away copy of fuzz/corpus/TARGET so the checked-in seed corpus stays small;
# - exits non-zero when libFuzzer finds a crash (the reproducer lands in fuzz/artifacts/TARGET/).
# Builds go to fuzz/target (gitignored), never the main workspace's target dir.
set -euo pipefail

SECONDS_TO_RUN="${1:-60}"
TARGET="${2:-decode}"
if ! [[ "$SECONDS_TO_RUN" =~ ^[0-9]+$ ]] || [ "$SECONDS_TO_RUN" -lt 1 ]; then
    echo "usage: $0 [SECONDS] [TARGET]   (SECONDS a positive integer, default 60)" >&2
    exit 2
fi
case "$TARGET" in
    decode | cluster_handshake | cluster_frames) ;;
    *)
        echo "usage: $0 [SECONDS] [TARGET]   (TARGET decode, cluster_handshake or cluster_frames, not '$TARGET')" >&2
        exit 2
        ;;
esac

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SEEDS="$FUZZ_DIR/corpus/$TARGET"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz not found, installing it (cargo install cargo-fuzz --locked)" >&2
    cargo install cargo-fuzz --locked
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    CARGO=(cargo +nightly)
    TOOLCHAIN=nightly
else
    export RUSTC_BOOTSTRAP=1
    CARGO=(cargo)
    TOOLCHAIN="stable (RUSTC_BOOTSTRAP=1)"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-fuzz.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/corpus"
cp "$SEEDS"/* "$WORK/corpus/"
SEED_COUNT="$(find "$WORK/corpus" -type f | wc -l)"
LOG="$WORK/fuzz.log"

echo "fuzz: target=$TARGET toolchain=$TOOLCHAIN seconds=$SECONDS_TO_RUN seeds=$SEED_COUNT features=${FUZZ_FEATURES:-none}" >&2
cd "$FUZZ_DIR"
START="$(date +%s)"
set +e
FEATURES=()
if [ -n "${FUZZ_FEATURES:-}" ]; then
    FEATURES=(--features "$FUZZ_FEATURES")
fi
"${CARGO[@]}" fuzz run "${FEATURES[@]}" "$TARGET" "$WORK/corpus" -- \
    -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tee "$LOG"
STATUS="${PIPESTATUS[0]}"
set -e
WALL=$(( $(date +%s) - START ))

EXECS="$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOG" | tail -n 1)"
if [ -z "$EXECS" ]; then
    EXECS="$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$LOG" | tail -n 1)"
fi
RATE="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOG" | tail -n 1)"
CORPUS_AFTER="$(find "$WORK/corpus" -type f | wc -l)"

if [ "$STATUS" -ne 0 ]; then
    ARTIFACT="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$LOG" | tail -n 1)"
    echo "fuzz $TARGET: FAILED (exit $STATUS) after ${EXECS:-?} execs, ${WALL}s wall${ARTIFACT:+; reproducer: $ARTIFACT}"
    exit 1
fi
echo "fuzz $TARGET: ok, ${EXECS:-?} execs in ${SECONDS_TO_RUN}s of fuzzing (${RATE:-?} exec/s), corpus $SEED_COUNT -> $CORPUS_AFTER inputs, ${WALL}s wall incl. build, 0 crashes"
