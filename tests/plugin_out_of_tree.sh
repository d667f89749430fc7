#!/bin/sh
# Out-of-tree plugin check (docs/plugins.md):
#   1. stage an install of this build (meson install --destdir),
#   2. build plugins and a program with only the staged headers, library
#      and `pkg-config llmcache`: the file backend example plugin, and the
#      reverse.c / demo.c code blocks extracted from docs/plugins.md,
#   3. run the program with LLMCACHE_PLUGIN_PATH and the staged library:
#      a miss, then a hit, through both plugins,
#   4. load the staged install's own plugin directory and check errors for
#      a broken plugin name the file.
# Usage: plugin_out_of_tree.sh SOURCE_ROOT BUILD_ROOT CC [SANITIZE]
set -eu

src=$1
build=$2
cc=$3
san=${4:-none}

work=$(mktemp -d /tmp/llmc-oot-XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM

fail() {
    echo "plugin_out_of_tree: FAIL: $*" >&2
    exit 1
}

extra=
if [ "$san" != none ] && [ -n "$san" ]; then
    extra="-fsanitize=$san"
fi

# 1. Stage the install.
meson install -C "$build" --destdir "$work/stage" --no-rebuild >"$work/install.log" 2>&1 ||
    { cat "$work/install.log" >&2; fail "meson install --destdir failed"; }
pc=$(find "$work/stage" -name llmcache.pc | head -n 1)
[ -n "$pc" ] || fail "llmcache.pc was not installed"
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$work/stage
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
libdir=$(dirname "$(dirname "$pc")")
[ -f "$libdir/libllmcache.so" ] || fail "no libllmcache.so in $libdir"
flags=$(pkg-config --cflags --libs llmcache) || fail "pkg-config llmcache failed"
case "$flags" in
*"$work/stage"*) ;;
*) fail "pkg-config flags do not point into the staged install: $flags" ;;
esac
plugindir=$work/stage$(PKG_CONFIG_SYSROOT_DIR= pkg-config --variable=plugindir llmcache)
[ -f "$plugindir/llmc-file.so" ] || fail "example plugins not installed in $plugindir"

# 2. Build against the staged install only (no include path into the
# source or build tree).
extract() {
    awk -v f="$1" '
        /^```c$/ { inblk = 1; buf = ""; keep = 0; next }
        /^```$/ { if (inblk && keep) { printf "%s", buf; exit } inblk = 0; next }
        inblk { if (buf == "" && index($0, "/* file: " f) == 1) keep = 1; buf = buf $0 "\n" }
    ' "$src/docs/plugins.md" >"$work/$1"
    [ -s "$work/$1" ] || fail "no code block for $1 in docs/plugins.md"
}
extract reverse.c
extract demo.c
mkdir -p "$work/plugins"
# shellcheck disable=SC2086
"$cc" $extra -Wall -Wextra -Werror -shared -fPIC -o "$work/plugins/llmc-file.so" \
    "$src/examples/plugins/file_backend.c" $flags || fail "building the file plugin"
# shellcheck disable=SC2086
"$cc" $extra -Wall -Wextra -Werror -shared -fPIC -o "$work/llmc-cohere.so" \
    "$src/examples/plugins/cohere_provider.c" $flags || fail "building the cohere plugin"
# shellcheck disable=SC2086
"$cc" $extra -Wall -Wextra -Werror -shared -fPIC -o "$work/plugins/llmc-reverse.so" \
    "$work/reverse.c" $flags || fail "building reverse.c from docs/plugins.md"
# shellcheck disable=SC2086
"$cc" $extra -Wall -Wextra -Werror -o "$work/demo" "$work/demo.c" $flags ||
    fail "building demo.c from docs/plugins.md"

# 3. Run with the staged library.
LD_LIBRARY_PATH=$libdir
export LD_LIBRARY_PATH
LLMCACHE_PLUGIN_PATH=$work/plugins "$work/demo" "file://$work/store" >"$work/out" 2>&1 ||
    { cat "$work/out" >&2; fail "demo failed"; }
cat "$work/out"
cat >"$work/want" <<WANT
miss: krow snigulp
hit: krow snigulp
plugin file 1.0.0 from $work/plugins/llmc-file.so
plugin reverse 0.1.0 from $work/plugins/llmc-reverse.so
WANT
diff -u "$work/want" "$work/out" || fail "unexpected demo output"
# The program must have used the staged library, not the build tree's.
if command -v ldd >/dev/null 2>&1; then
    ldd "$work/demo" | grep -q "$libdir/libllmcache.so" || fail "demo did not use the staged library"
fi
# Again: the store persists, both answers are hits now.
LLMCACHE_PLUGIN_PATH=$work/plugins "$work/demo" "file://$work/store" >"$work/out2" 2>&1 ||
    fail "second demo run failed"
[ "$(grep -c '^hit: krow snigulp$' "$work/out2")" = 2 ] || fail "second run was not all hits"

# 4. The staged plugin directory works as a plugin path too (the echo
# example plugin is used by name, through autoloading).
LLMCACHE_PLUGIN_PATH=$plugindir:$work/plugins "$work/demo" "file://$work/store2" >"$work/out3" 2>&1 ||
    { cat "$work/out3" >&2; fail "demo with the staged plugin dir failed"; }
grep -q "^plugin file 1.0.0 from $plugindir/llmc-file.so\$" "$work/out3" ||
    { cat "$work/out3" >&2; fail "file plugin was not taken from the staged plugin dir"; }
# A broken conventional file: a warning names it, the program fails
# cleanly (unknown provider) ...
mkdir -p "$work/broken"
echo "not a shared object" >"$work/broken/llmc-reverse.so"
if LLMCACHE_PLUGIN_PATH=$work/broken "$work/demo" "local://" >"$work/out4" 2>&1; then
    fail "demo succeeded without a usable reverse plugin"
fi
grep -q "$work/broken/llmc-reverse.so: not a loadable shared object" "$work/out4" ||
    { cat "$work/out4" >&2; fail "no error naming the broken plugin file"; }
# ... and does not hide a good one later in the path.
LLMCACHE_PLUGIN_PATH=$work/broken:$work/plugins "$work/demo" "file://$work/store4" \
    >"$work/out5" 2>&1 || { cat "$work/out5" >&2; fail "a broken file hid a good plugin"; }
grep -q "^miss: krow snigulp\$" "$work/out5" || fail "unexpected output with a broken file first"
# 5. The installed command lists and checks them (when the CLI is built).
llmcache_bin=$(find "$work/stage" -path '*/bin/llmcache' -type f | head -n 1)
if [ -n "$llmcache_bin" ]; then
    LLMCACHE_PLUGIN_PATH=$work/plugins "$llmcache_bin" plugins >"$work/list" 2>&1 ||
        { cat "$work/list" >&2; fail "llmcache plugins failed"; }
    grep -q "plugin reverse 0.1.0" "$work/list" ||
        { cat "$work/list" >&2; fail "llmcache plugins does not list the reverse plugin"; }
    LLMCACHE_PLUGIN_PATH=$work/plugins "$llmcache_bin" plugins check reverse >"$work/check" 2>&1 ||
        { cat "$work/check" >&2; fail "llmcache plugins check reverse failed"; }
    grep -q "provider reverse" "$work/check" || fail "plugins check does not show the provider"
    if LLMCACHE_PLUGIN_PATH=$work/broken "$llmcache_bin" plugins check reverse >"$work/check2" 2>&1; then
        fail "llmcache plugins check accepted a broken plugin"
    fi
    grep -q "$work/broken/llmc-reverse.so" "$work/check2" ||
        fail "llmcache plugins check does not name the broken file"
    echo "plugin_out_of_tree: installed llmcache command checked"
else
    echo "plugin_out_of_tree: no llmcache command installed (cli not built): skipped its checks"
fi
echo "plugin_out_of_tree: OK"
