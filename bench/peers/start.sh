#!/usr/bin/env bash
# Starts one peer server in the foreground (exec: the PID you started is the server's), bound to
# 127.0.0.1:PORT. Prints "listening PORT" once ready. Kinds:
#   socketio  Socket.IO 4.8 (websocket transport, rooms); with REDIS_URL set, the Redis adapter
#   ws        Node `ws` 8.23 room server (tiny JSON protocol, see server.js)
#   uws       uWebSockets.js 20.30 topic server (same protocol)
#   naive     the naive Rust server (target/release/naive-server; NAIVE_BIN overrides)
#   redis     redis-server on 127.0.0.1:PORT, no persistence (for socketio with REDIS_URL)
#
#   bench/peers/start.sh KIND PORT
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
case ${1:-} in -h | --help | "") sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;; esac
kind=$1
port=${2:?start.sh: PORT is required (see --help)}
[[ $port =~ ^[0-9]+$ ]] || { echo "start.sh: PORT must be a number" >&2; exit 2; }
case $kind in
    socketio | ws | uws)
        [[ -d $here/node_modules ]] || { echo "start.sh: run bench/peers/setup.sh first" >&2; exit 1; }
        if [[ $kind == socketio && -n ${REDIS_URL:-} ]]; then
            exec node "$here/server.js" "$kind" "$port" --redis "$REDIS_URL"
        fi
        exec node "$here/server.js" "$kind" "$port"
        ;;
    naive)
        bin=${NAIVE_BIN:-$here/../../target/release/naive-server}
        [[ -x $bin ]] || { echo "start.sh: missing $bin: cargo build --release -p gatehouse-bench" >&2; exit 1; }
        exec "$bin" "127.0.0.1:$port"
        ;;
    redis)
        command -v redis-server >/dev/null || { echo "start.sh: redis-server missing: bench/peers/setup.sh --redis" >&2; exit 1; }
        exec redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --protected-mode yes
        ;;
    *) echo "start.sh: unknown kind $kind (see --help)" >&2; exit 2 ;;
esac
