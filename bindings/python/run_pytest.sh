#!/bin/sh
# Run the Python module's pytest suite: run_pytest.sh PYTHON TESTDIR
# B_SANITIZE CC. PYTHONPATH (the build-tree module) and the fake provider
# launcher come from the meson test's environment.
#
# In a sanitizer build the module is instrumented but the interpreter is
# not, so the runtimes must be loaded first: LD_PRELOAD them. The
# interpreter keeps memory alive at exit on purpose (interned objects,
# caches), so LeakSanitizer would only report Python's own allocations;
# leak checking of the module is the suite's job (test_leaks.py, 10,000
# calls under tracemalloc and the process's RSS), ASan still catches
# every out-of-bounds access and use after free in the module and library.
set -eu
py=$1 tests=$2 sanitize=$3 cc=$4
case "$sanitize" in
*address*|*undefined*)
  pre=""
  for lib in libasan.so libubsan.so; do
    case "$lib:$sanitize" in
    libasan.so:*address*|libubsan.so:*undefined*)
      path=$("$cc" -print-file-name="$lib")
      [ -f "$path" ] || { echo "run_pytest.sh: $lib not found by $cc" >&2; exit 1; }
      pre="$pre${pre:+ }$path" ;;
    esac
  done
  export LD_PRELOAD="$pre"
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
  export LLMC_TEST_SANITIZED=1
  ;;
esac
# -p no:cacheprovider: never write .pytest_cache into the source tree.
exec "$py" -B -m pytest -p no:cacheprovider -q -ra "$tests"
