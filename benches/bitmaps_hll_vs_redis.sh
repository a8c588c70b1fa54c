#!/bin/bash
# Bitmap and HyperLogLog throughput, forkless against redis-server, as in the
# section "Bitmaps and HyperLogLog against redis-server" of benches/README.md.
#
# Usage: benches/bitmaps_hll_vs_redis.sh <forkless port> <redis port>
# Both servers must be running (fresh, `--save ''`) on 127.0.0.1. Prints one
# line per figure and round (label, forkless req/s, redis req/s), then the
# medians and their ratio.
set -euo pipefail
F=$1; R=$2
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
python3 - "$TMP" <<'PY'
import random, sys
random.seed(7)
def resp(*a):
    out = b"*%d\r\n" % len(a)
    for x in a:
        x = str(x).encode()
        out += b"$%d\r\n%s\r\n" % (len(x), x)
    return out
d = sys.argv[1]
files = {
    "setbit": lambda: resp("SETBIT", "bm", random.randrange(800000), random.randint(0, 1)),
    "getbit": lambda: resp("GETBIT", "bm", random.randrange(800000)),
    "pfadd": lambda: resp("PFADD", "hll", random.randrange(10**9)),
}
for name, make in files.items():
    with open(f"{d}/{name}.resp", "wb") as f:
        f.write(b"".join(make() for _ in range(500000)))
PY
rps() { tr '\r' '\n' | grep "requests per second" | tail -1 | awk -F': ' '{print $2}' | awk '{print $1}'; }
rb() { redis-benchmark -p "$1" -c 50 -n "$2" -r 100000 -P "$3" -q "${@:4}" 2>/dev/null | rps; }
pipe() {
  local s e; s=$(date +%s.%N); redis-cli -p "$1" --pipe < "$2" > /dev/null; e=$(date +%s.%N)
  echo "500000 / ($e - $s)" | bc
}
for p in $F $R; do
  redis-cli -p "$p" flushall > /dev/null
  redis-cli -p "$p" --pipe < "$TMP/setbit.resp" > /dev/null
  redis-cli -p "$p" setbit zeros 799999 1 > /dev/null
  redis-benchmark -p "$p" -c 50 -n 200000 -r 100000 -P 16 -q pfadd hll __rand_int__ > /dev/null 2>&1
  redis-benchmark -p "$p" -c 50 -n 20000 -r 1000000 -P 16 -q pfadd hll2 __rand_int__ > /dev/null 2>&1
done
OUT=$TMP/out
for round in 1 2 3; do
  for name in setbit getbit pfadd; do
    echo "pipe-$name $(pipe "$F" "$TMP/$name.resp") $(pipe "$R" "$TMP/$name.resp")"
  done
  for P in 1 16; do
    echo "P$P-pfadd $(rb "$F" 200000 $P pfadd hll __rand_int__) $(rb "$R" 200000 $P pfadd hll __rand_int__)"
    echo "P$P-pfcount-cached $(rb "$F" 200000 $P pfcount hll) $(rb "$R" 200000 $P pfcount hll)"
    echo "P$P-bitcount-100KB $(rb "$F" 200000 $P bitcount bm) $(rb "$R" 200000 $P bitcount bm)"
    echo "P$P-bitpos-100KB-scan $(rb "$F" 200000 $P bitpos zeros 1) $(rb "$R" 200000 $P bitpos zeros 1)"
  done
  echo "P16-pfcount-2keys $(rb "$F" 20000 16 pfcount hll hll2) $(rb "$R" 20000 16 pfcount hll hll2)"
done | tee "$OUT"
for p in $F $R; do
  echo "# port $p: bitcount bm $(redis-cli -p "$p" bitcount bm), pfcount hll $(redis-cli -p "$p" pfcount hll)"
done
python3 - "$OUT" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    label, f, r = line.split()
    runs[label].append((float(f), float(r)))
for label, v in runs.items():
    f = statistics.median(x for x, _ in v)
    r = statistics.median(y for _, y in v)
    each = ", ".join(f"{x / y:.2f}" for x, y in v)
    print(f"| {label} | {f:,.0f} | {r:,.0f} | {f / r:.2f} | rounds: {each}")
PY
