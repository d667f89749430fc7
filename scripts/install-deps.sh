#!/bin/sh
# Install what llmcache needs on Debian 12. With --test, also the servers
# and tools the test suites start (redis-server, memcached, nginx, node,
# pytest; redis-py for the Python benchmark's baseline; chromium for the
# proxy dashboard's browser test; chattr from e2fsprogs makes a read-only
# file when the tests run as root) and libFuzzer for the fuzz harnesses
# (libclang-rt-14-dev: clang-14's -fsanitize=fuzzer runtime).
# Uses sudo when not run as root.
set -eu
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
PKGS="gcc clang meson ninja-build pkg-config libjson-c-dev libssl-dev check \
      libhiredis-dev libmemcached-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev \
      python3-dev"
if [ "${1:-}" = "--test" ]; then
  # chromium: the proxy dashboard's browser test (driven by puppeteer-core
  # from npm, installed by the test into the build dir).
  PKGS="$PKGS redis-server redis-tools memcached libmemcached-tools sqlite3 openssl nginx wrk \
        curl procps python3-pytest python3-redis chromium e2fsprogs libclang-rt-14-dev"
  # Node.js runs the official openai and @anthropic-ai/sdk npm clients in
  # the proxy tests (each test installs its package into the build dir). A
  # machine that already has node and npm (from Debian or elsewhere) keeps
  # them: Debian's npm package conflicts with other node builds.
  command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
  command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
fi
# Skip apt entirely when everything is already there (fast CI re-runs).
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
