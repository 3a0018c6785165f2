#!/usr/bin/env bash
# Installs the peer servers gatehouse-bench is compared with, from public packages only:
# `npm ci` into bench/peers/node_modules (exact versions in package.json / package-lock.json:
# socket.io, ws, uWebSockets.js via @trufflesuite/uws-js-unofficial, @socket.io/redis-adapter,
# ioredis). With --redis, also installs the Debian package redis-server when it is missing
# (needed only for the Socket.IO cluster scenario).
#
#   bench/peers/setup.sh [--redis]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
redis=0
for a in "$@"; do
    case $a in
        --redis) redis=1 ;;
        -h | --help) sed -n '2,8s/^# \{0,1\}//p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown argument $a (see --help)" >&2; exit 2 ;;
    esac
done
command -v npm >/dev/null || { echo "setup.sh: npm is needed (Node.js 20)" >&2; exit 1; }
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
node -e 'require("uWebSockets.js"); require("socket.io"); require("ws")' ||
    { echo "setup.sh: the installed peers do not load" >&2; exit 1; }
if ((redis)) && ! command -v redis-server >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get install -y --no-install-recommends redis-server >/dev/null
    else
        sudo apt-get install -y --no-install-recommends redis-server >/dev/null
    fi
fi
echo "peers installed in $here/node_modules"
