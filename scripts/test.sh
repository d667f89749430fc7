#!/bin/sh
# Build and run every test twice: a normal build and an ASan+UBSan build;
# then check that clang builds it warning-free too.
# Tests start their own servers on free loopback ports.
set -u
cd "$(dirname "$0")/.."
fail=0
run() { # builddir, meson setup args...
  dir=$1; shift
  if [ -d "$dir" ]; then meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
  else meson setup "$dir" "$@" >/dev/null || return 1; fi
  ninja -C "$dir" || return 1
  meson test -C "$dir" --print-errorlogs --num-processes 2 || return 1
}
run build || fail=1
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  run build-asan -Db_sanitize=address,undefined -Db_lundef=false || fail=1
# The build must also be warning-free with clang (-Werror): compile only.
if command -v clang >/dev/null 2>&1; then
  if [ -d build-clang ]; then meson setup --reconfigure build-clang >/dev/null || fail=1
  else CC=clang meson setup build-clang >/dev/null || fail=1; fi
  ninja -C build-clang >/dev/null || { echo "clang build failed"; fail=1; }
fi
# Fuzz every harness for a few seconds (clang with libFuzzer, e.g. Debian's
# libclang-rt-14-dev): a finding fails the run. scripts/fuzz.sh runs long.
if command -v clang >/dev/null 2>&1 && printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){(void)d;(void)n;return 0;}\n' |
   clang -x c -fsanitize=fuzzer,address,undefined -o /tmp/llmc-fuzz-probe.$$ - >/dev/null 2>&1; then
  rm -f /tmp/llmc-fuzz-probe.$$
  sh scripts/fuzz.sh -t "${LLMC_FUZZ_SECONDS:-6}" || fail=1
else
  echo "fuzzing skipped: clang with libFuzzer not found (scripts/install-deps.sh --test)"
fi
# One summary line over both builds.
python3 - <<'PY' 2>/dev/null || true
import json
p = f = s = 0
for d in ("build", "build-asan"):
    try:
        for line in open(d + "/meson-logs/testlog.json"):
            r = json.loads(line)
            res = r.get("result")
            if res == "OK": p += 1
            elif res == "SKIP": s += 1
            else: f += 1
    except OSError:
        pass
print(f"{p} passed, {f} failed" + (f", {s} skipped" if s else ""))
PY
exit $fail
