#!/bin/bash
# EVALSHA of the 3-command script of benches/README.md ("Scripting"),
# forkless against redis-server, side by side: rounds alternate the servers,
# and each run records the server's CPU time (user and system, from
# /proc/PID/stat) as well as redis-benchmark's req/s. INCR runs in the same
# rounds as a yardstick for the per-request path without a script.
#
# Usage: benches/evalsha_vs_redis.sh <forkless port> <redis port> [rounds] [-P]
# Both servers must be running (fresh, `--save ''`) on 127.0.0.1, started by
# the caller. Prints one line per run, then the medians and their ratios.
set -euo pipefail
F=$1; R=$2; ROUNDS=${3:-5}; P=${4:-1}
N=100000
BODY="local v = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':last', v) return redis.call('GET', KEYS[1])"
SHA=9450b14fc70b0a22fc1ba51ac8656f81b939d8b9
pid_of() { ss -Hltnp "sport = :$1" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
for p in $F $R; do
  [ "$(redis-cli -p "$p" script load "$BODY")" = $SHA ] || { echo "script load failed on $p" >&2; exit 1; }
done
FP=$(pid_of "$F"); RP=$(pid_of "$R")
OUT=$(mktemp); trap 'rm -f "$OUT"' EXIT
run() { # label port pid args...
  local a b rps
  a=$(ticks "$3")
  rps=$(timeout 120 redis-benchmark -p "$2" -c 50 -n $N -P "$P" -q "${@:4}" 2>/dev/null \
    | tr '\r' '\n' | grep "requests per second" | tail -1 | awk -F': ' '{print $2}' | awk '{print $1}')
  b=$(ticks "$3")
  # µs of server CPU per request.
  echo "$1 $rps $(echo "($b - $a) * 1000000 / $HZ / $N" | bc -l)"
}
for round in $(seq "$ROUNDS"); do
  for what in evalsha incr; do
    if [ $what = evalsha ]; then args=(evalsha $SHA 1 key); else args=(incr key); fi
    if [ $((round % 2)) = 1 ]; then order="F R"; else order="R F"; fi
    for s in $order; do
      if [ $s = F ]; then run "forkless-$what" "$F" "$FP" "${args[@]}"; else run "redis-$what" "$R" "$RP" "${args[@]}"; fi
    done
  done
done | tee "$OUT"
python3 - "$OUT" "$P" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, rps, cpu = line.split()
    rows.setdefault(label, []).append((float(rps), float(cpu)))
print(f"\n| -P {sys.argv[2]} | forkless req/s | redis req/s | forkless/redis | forkless CPU/req | redis CPU/req |")
print("|---|---:|---:|---:|---:|---:|")
for what in ("evalsha", "incr"):
    f, r = rows[f"forkless-{what}"], rows[f"redis-{what}"]
    fr = statistics.median(x for x, _ in f); rr = statistics.median(x for x, _ in r)
    fc = statistics.median(c for _, c in f); rc = statistics.median(c for _, c in r)
    print(f"| {what.upper()} (median of {len(f)}) | {fr:,.0f} | {rr:,.0f} | {fr / rr:.3f} | {fc:.2f} µs | {rc:.2f} µs |")
PY
