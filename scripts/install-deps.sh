#!/bin/sh
# Installs the Debian/Ubuntu packages shoal needs to build, test and benchmark.
# Idempotent: checks each package with dpkg first and stays quiet when all
# are present. Needs root or sudo only when something is missing.
set -eu

PKGS="build-essential cmake pkg-config git curl ca-certificates
libcurl4-openssl-dev libsqlite3-dev libcjson-dev libyaml-dev liblua5.4-dev
libevent-dev libpcre2-dev
clang libclang-rt-14-dev python3"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-deps: apt-get not found; install these packages by hand:$missing" >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install-deps: missing packages:$missing" >&2
    echo "install-deps: not root and sudo is not installed; run as root:" >&2
    echo "  apt-get install -y$missing" >&2
    exit 1
fi

echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "install-deps: done"
