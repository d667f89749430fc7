#!/bin/sh
# The llmcache command's hit path, one process per call, against a raw
# baseline measured in the same run: the sqlite3 command reading the same
# row from the same kind of file (one process per call too, so both pay
# process start-up and opening the database).
#   sh bench/bench_cli.sh [build dir] [calls]
set -eu
B=${1:-build}
N=${2:-200}
L=$B/cli/llmcache
command -v sqlite3 >/dev/null || { echo "bench_cli: needs the sqlite3 command"; exit 1; }
D=$(mktemp -d /tmp/llmc-bench-cli-XXXXXX)
trap 'rm -rf "$D"' EXIT
C="sqlite://$D/cache.db"
ARGS="--cache $C --model gpt-4o-mini --user bench --mock-response answer --text -q"
$L complete $ARGS >/dev/null                     # store the entry
K=$($L key --cache "$C" --model gpt-4o-mini --user bench --mock-response answer)
now() { date +%s%N; }

t0=$(now)
i=0; while [ $i -lt "$N" ]; do $L complete $ARGS >/dev/null; i=$((i + 1)); done
t1=$(now)
Q="SELECT value FROM llmc_entries WHERE key = CAST('$K' AS BLOB)"
[ -n "$(sqlite3 "$D/cache.db" "$Q")" ] || { echo "bench_cli: baseline query found nothing"; exit 1; }
i=0; while [ $i -lt "$N" ]; do sqlite3 "$D/cache.db" "$Q" >/dev/null; i=$((i + 1)); done
t2=$(now)
i=0; while [ $i -lt "$N" ]; do $L cache get "$K" --cache "$C" >/dev/null; i=$((i + 1)); done
t3=$(now)

awk -v n="$N" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" 'BEGIN {
  hit = (b - a) / n / 1e6; raw = (c - b) / n / 1e6; get = (d - c) / n / 1e6;
  printf "calls per case: %d (one process each)\n", n;
  printf "baseline  sqlite3 SELECT       %7.3f ms/call\n", raw;
  printf "llmcache  cache get KEY        %7.3f ms/call  %.2fx baseline\n", get, get / raw;
  printf "llmcache  complete (HIT)       %7.3f ms/call  %.2fx baseline\n", hit, hit / raw;
}'
