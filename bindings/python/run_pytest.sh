#!/bin/sh
# Run the Python module's pytest suite: run_pytest.sh PYTHON TESTDIR
# B_SANITIZE CC. PYTHONPATH (the build-tree module) and the fake provider
# launcher come from the meson test's environment.
#
# In a sanitizer build the module is instrumented but the interpreter is
# not, so the runtimes must be loaded first: LD_PRELOAD them.
# PYTHONMALLOC=malloc sends Python's objects through ASan's allocator too.
# LeakSanitizer stays on: the interpreter's own few blocks left at exit
# are suppressed by lsan.supp, which with malloc_context_size=2 matches
# only allocations made directly by the interpreter, so anything the
# module, libllmcache or json-c leaks is still reported. (Objects leaked
# by a missing Py_DECREF are allocated by the interpreter: catching those
# is test_leaks.py's job.)
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
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}malloc_context_size=2"
  export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$tests/../lsan.supp"
  export PYTHONMALLOC=malloc
  export LLMC_TEST_SANITIZED=1
  ;;
esac
"$py" -c 'import pytest' 2>/dev/null || {
  echo "run_pytest.sh: pytest is not installed for $py (Debian: python3-pytest," \
       "scripts/install-deps.sh --test)" >&2
  exit 1
}
# -p no:cacheprovider: never write .pytest_cache into the source tree.
exec "$py" -B -m pytest -p no:cacheprovider -q -ra "$tests"
