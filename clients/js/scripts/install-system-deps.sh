#!/usr/bin/env bash
# Installs what the browser test needs from Debian's packages, when it is missing (quick when
# everything is there): Chromium (/usr/bin/chromium, package chromium) and HAProxy (haproxy).
# Needs root (or sudo without a password) to install. playwright-core drives Debian's Chromium;
# it never downloads a browser of its own.
#
#   clients/js/scripts/install-system-deps.sh [--check]    --check: only say what is missing
#
# Exit status: 0 everything is there; 1 something is missing and could not be installed; 2 usage.
set -euo pipefail
readonly PROG=clients/js/scripts/install-system-deps.sh
CHECK=0
for arg in "$@"; do
    case $arg in
        --check) CHECK=1 ;;
        -h | --help) sed -n '2,9s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "$PROG: error: unknown argument: $arg" >&2; exit 2 ;;
    esac
done

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v haproxy >/dev/null || missing+=(haproxy)
((${#missing[@]} == 0)) && exit 0
if ((CHECK)); then
    echo "$PROG: missing: ${missing[*]} (install with: apt-get install -y ${missing[*]})" >&2
    exit 1
fi
command -v apt-get >/dev/null || { echo "$PROG: error: ${missing[*]} missing and there is no apt-get: install Chromium and HAProxy by hand (CHROMIUM=/path/to/chromium for the test)" >&2; exit 1; }
SUDO=
if ((EUID != 0)); then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        SUDO=sudo
    else
        echo "$PROG: error: ${missing[*]} missing: run 'apt-get install -y ${missing[*]}' as root (or this script as root)" >&2
        exit 1
    fi
fi
echo "$PROG: installing ${missing[*]} (apt-get)" >&2
# Waits for another apt/dpkg run (another test's install) instead of failing on its lock.
apt_install() {
    $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2
}
if ! apt_install; then
    $SUDO apt-get -o DPkg::Lock::Timeout=600 update >&2 || { echo "$PROG: error: apt-get update failed" >&2; exit 1; }
    apt_install || { echo "$PROG: error: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
[[ -x /usr/bin/chromium ]] || { echo "$PROG: error: installed, but /usr/bin/chromium is missing" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "$PROG: error: installed, but haproxy is not on PATH" >&2; exit 1; }
