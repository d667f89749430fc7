#!/bin/sh
# `llmcache plugins` against the build tree's example plugins and
# fixtures. Registered by tests/meson.build only when the command is
# built (cli/meson.build defines llmcache_exe).
# Usage: cli_plugins.sh LLMCACHE EXAMPLE_PLUGIN_DIR FIXTURE_DIR
set -eu
llmcache=$1
examples=$2
fixtures=$3
work=$(mktemp -d /tmp/llmc-cli-plugins-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
fail() {
    echo "cli_plugins: FAIL: $*" >&2
    exit 1
}

# list: every file, with components or the reason it cannot load
LLMCACHE_PLUGIN_PATH=$examples:$fixtures "$llmcache" plugins >"$work/list" 2>&1 ||
    { cat "$work/list" >&2; fail "plugins list exited $?"; }
grep -q "^plugin path: $examples:$fixtures:" "$work/list" || fail "no search path line"
grep -q "^$examples/llmc-file.so\$" "$work/list" || fail "llmc-file.so not listed"
grep -q "  backend file (URL schemes: file://)" "$work/list" || fail "file backend not listed"
grep -q "  provider echo" "$work/list" || fail "echo provider not listed"
grep -q "  error (EABI): plugin $fixtures/fixture-bad-abi.so: built for llmcache plugin ABI 2" \
    "$work/list" || fail "bad-ABI fixture not reported"
grep -q "  error (EINVAL): plugin $fixtures/fixture-no-entry.so: not an llmcache plugin" \
    "$work/list" || fail "no-entry fixture not reported"
# --all adds the built-ins with their origin
LLMCACHE_PLUGIN_PATH=$examples "$llmcache" plugins --all >"$work/all" 2>&1 || fail "plugins --all"
grep -q "  backend local (built-in)" "$work/all" || fail "built-in backend missing from --all"
# path
LLMCACHE_PLUGIN_PATH=$examples "$llmcache" plugins path >"$work/path" || fail "plugins path"
[ "$(head -n 1 "$work/path")" = "$examples" ] || fail "plugins path: first line"
# check: by name through the path, by file, and failures
LLMCACHE_PLUGIN_PATH=$examples "$llmcache" plugins check file >"$work/check" 2>&1 ||
    { cat "$work/check" >&2; fail "plugins check file"; }
grep -q "plugin file 1.0.0 (ABI 1.1), loaded" "$work/check" || fail "check file output"
"$llmcache" plugins check "$examples/llmc-echo.so" >"$work/check2" 2>&1 || fail "check by path"
grep -q "provider echo" "$work/check2" || fail "check by path output"
if "$llmcache" plugins check "$fixtures/fixture-bad-abi.so" >"$work/bad" 2>&1; then
    fail "check accepted the bad-ABI fixture"
fi
grep -q "$fixtures/fixture-bad-abi.so: built for llmcache plugin ABI 2" "$work/bad" ||
    fail "check error does not name the file"
if "$llmcache" plugins frobnicate >/dev/null 2>&1; then
    fail "unknown subcommand accepted"
fi
echo "cli_plugins: OK"
