#!/bin/bash
# User-space instructions per request of the sorted set benchmarks
# (benches/README.md, "Sorted sets"), forkless or redis-server, under
# callgrind: the one measure on a shared machine that other load does not
# move. The server starts fresh under valgrind, the test's data is loaded,
# the counters are zeroed, redis-benchmark runs, the counters are dumped;
# the dump's total over the request count is the figure.
#
# Usage: benches/zset_instructions.sh forkless|redis <test> <pipeline> <port> [forkless binary]
#   test: zadd      redis-benchmark -t zadd on an empty server
#         zpopmin   -t zpopmin after -t zadd -n 300000 -P 16 (a set of ~95,000)
#         zpopmin0  -t zpopmin on an empty server (the missing-key path)
#         zrank     ZRANK bz m:__rand_int__, bz holding m:%012d with score i, i < 100,000
#         zrange    ZRANGE bz 0 9 over the same set
# Every run is -c 50 -r 100000 and N requests (env N, default 100000).
# Needs valgrind (callgrind_control, callgrind_annotate), redis-benchmark,
# redis-cli and python3. Prints one line: the total and the per-request figure.
# forkless runs with busy polling off: the polling turns between requests
# would count as instructions of the requests.
set -euo pipefail
WHO=$1; TEST=$2; P=$3; PORT=$4
BIN=${5:-target/release/forkless}
N=${N:-100000}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
if [ "$WHO" = redis ]; then
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" \
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no >"$OUT/log" 2>&1 &
else
  valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" \
    "$BIN" --port "$PORT" --save '' --busy-poll-us 0 >"$OUT/log" 2>&1 &
fi
VG=$!
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.3; done
bench() { timeout 600 redis-benchmark -p "$PORT" -c 50 -r 100000 -q "$@" >/dev/null 2>&1; }
case $TEST in
  zpopmin) bench -P 16 -n 300000 -t zadd ;;
  zrank|zrange)
    python3 -c "
import sys
for c in range(100):
    args = ['ZADD', 'bz']
    for i in range(c * 1000, (c + 1) * 1000):
        args += [str(i), 'm:%012d' % i]
    sys.stdout.write('*%d\r\n' % len(args) + ''.join('\$%d\r\n%s\r\n' % (len(a), a) for a in args))
" | redis-cli -p "$PORT" --pipe >/dev/null ;;
esac
callgrind_control -z "$VG" >/dev/null 2>&1
case $TEST in
  zadd) bench -P "$P" -n "$N" -t zadd ;;
  zpopmin|zpopmin0) bench -P "$P" -n "$N" -t zpopmin ;;
  zrank) bench -P "$P" -n "$N" ZRANK bz m:__rand_int__ ;;
  zrange) bench -P "$P" -n "$N" ZRANGE bz 0 9 ;;
  *) echo "unknown test $TEST" >&2; exit 1 ;;
esac
callgrind_control -d "$VG" >/dev/null 2>&1
sleep 1
redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
wait "$VG" || true
TOTAL=$(callgrind_annotate "$OUT/cg.1" 2>/dev/null | grep -m1 'PROGRAM TOTALS' | awk '{gsub(",", "", $1); print $1}')
echo "$WHO $TEST -P $P: $TOTAL instructions, $((TOTAL / N)) per request"
