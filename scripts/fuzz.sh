#!/bin/sh
# Build the libFuzzer harnesses (tests/fuzz, clang + ASan + UBSan) and run
# them, one after another.
#
#   sh scripts/fuzz.sh [-t SECONDS] [-n RUNS] [HARNESS...]
#
#   -t SECONDS  run each harness for this long (default 600 without -n)
#   -n RUNS     run each harness for this many executions (with -t: until
#               the first of the two)
#   HARNESS     names (fastkey canon url envelope sse responses responses_conv
#               provider messages client proxy semantic); default: all of them
#
# Inputs found are kept in build-fuzz/fuzz-corpus/<harness> (seeded from
# tests/fuzz/corpus and tests/fuzz/regress); a crash or mismatch is saved
# in build-fuzz/fuzz-artifacts/<harness>/ and fails the run (exit 1).
# FUZZ_NICE (default 10) is the nice level of the fuzzers, FUZZ_MAX_LEN
# (default 4096) the largest input libFuzzer makes, FUZZ_TIMEOUT (default
# 30) the seconds one input may take before it counts as a hang (wall
# time: raise it for a run you mean to pause with SIGSTOP), FUZZ_RSS_MB
# (default 2048, libFuzzer's) the resident memory that counts as out of
# memory (the client harness under ASan grows about 280 MB a million
# executions: raise it for runs of millions). How to
# reproduce, minimise and keep a finding: docs/testing.md.
set -u
cd "$(dirname "$0")/.."
secs=""
runs=""
while [ $# -gt 0 ]; do
  case "$1" in
    -t) secs=$2; shift 2 ;;
    -n) runs=$2; shift 2 ;;
    -h|--help) sed -n "2,23p" "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done
B=build-fuzz
if [ -d "$B" ]; then meson setup --reconfigure "$B" >/dev/null || exit 1
else CC=clang meson setup "$B" -Dfuzz=enabled -Db_lundef=false -Dtests=disabled >/dev/null || exit 1
fi
harnesses=${*:-fastkey canon url envelope sse responses responses_conv provider messages client proxy semantic}
targets=""
for h in $harnesses; do targets="$targets tests/fuzz/fuzz-$h"; done
ninja -C "$B" $targets >/dev/null || { ninja -C "$B" $targets; exit 1; }
# UBSan findings are fatal (-fno-sanitize-recover); LeakSanitizer is off:
# the client and proxy keep per-thread state that a fuzz run never frees.
# libFuzzer's -detect_leaks=0 too: without it libFuzzer runs every input
# whose mallocs and frees do not balance a second time to look for a
# leak it then cannot report, which was half the client harness's time.
# -reload=0: one process per corpus, so there is nothing new to reread
# (the periodic reread was 7% of a long client run).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
fail=0
for h in $harnesses; do
  exe=$B/tests/fuzz/fuzz-$h
  [ -x "$exe" ] || { echo "fuzz.sh: $exe was not built" >&2; fail=1; continue; }
  case $h in fastkey|canon|client) dict=json ;; *) dict=$h ;; esac
  # semantic's inputs are binary records and vectors: no dictionary.
  dictopt=""
  [ -f "tests/fuzz/dict/$dict.dict" ] && dictopt="-dict=tests/fuzz/dict/$dict.dict"
  work=$B/fuzz-corpus/$h
  art=$B/fuzz-artifacts/$h
  mkdir -p "$work" "$art"
  rm -f "$art"/*
  # The proxy's libmicrohttpd logs every malformed request, the url
  # harness's cluster handles warn of every unreachable host: keep the
  # target's stderr out of the log (libFuzzer's and the sanitizers'
  # reports still come through; replay a finding to see its message).
  quiet=""
  case $h in proxy|url) quiet="-close_fd_mask=2" ;; esac
  seeds="tests/fuzz/corpus/$h"
  [ -d "tests/fuzz/regress/$h" ] && seeds="$seeds tests/fuzz/regress/$h"
  limit=""
  [ -n "$runs" ] && limit="-runs=$runs"
  [ -n "$secs" ] && limit="$limit -max_total_time=$secs"
  [ -z "$limit" ] && limit="-max_total_time=600"
  log=$B/fuzz-$h.log
  nice -n "${FUZZ_NICE:-10}" "$exe" $limit -print_final_stats=1 -detect_leaks=0 -reload=0 -max_len="${FUZZ_MAX_LEN:-4096}" -timeout="${FUZZ_TIMEOUT:-30}" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    $dictopt -artifact_prefix="$art/" $quiet "$work" $seeds >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [ $rc -eq 0 ]; then
    echo "fuzz $h: ok, ${execs:-?} execs, ${rate:-?} exec/s"
  else
    fail=1
    echo "fuzz $h: FINDING (exit $rc), ${execs:-?} execs; log $log; input(s):"
    ls "$art"/* 2>/dev/null | sed 's/^/  /'
    grep -E "fuzz finding|ERROR: |runtime error|SUMMARY" "$log" | head -5 | sed 's/^/  /'
  fi
done
exit $fail
