#!/usr/bin/env bash
# The standard set of measurements (bench/README.md), each as the median of RUNS runs on
# freshly started nodes. Results: one JSON line per run in OUT (default bench-results.jsonl);
# medians printed per scenario.
#
#   cargo build --release -p node -p gatehouse-bench && bench/suite.sh
set -euo pipefail
case ${1:-} in
    -h | --help) sed -n '2,6s/^# \{0,1\}//p' "$0"; exit 0 ;;
    "") ;;
    *) echo "suite.sh: takes no arguments (see --help)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
export RUNS=${RUNS:-3}
export OUT=${OUT:-bench-results.jsonl}

"$here/run.sh" idle --connections 10000 --rooms 100
"$here/run.sh" idle --connections 10000 --rooms 100 --concurrency 100
"$here/run.sh" fanout --subscribers 1000 --rate 100 --seconds 10
"$here/run.sh" fanout --subscribers 1000 --rate 1000 --seconds 10
"$here/run.sh" fanout --subscribers 5000 --rate 10 --seconds 10
"$here/run.sh" fanout --subscribers 10000 --saturate --rate 5 --warmup 1 --seconds 3
"$here/run.sh" rooms --rooms 100 --subscribers 50 --publishers 10 --rate 1000 --seconds 10
