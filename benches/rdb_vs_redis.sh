#!/bin/sh
# Redis RDB import/export against redis-server, same file, same machine:
#   benches/rdb_vs_redis.sh [KEYS] [BASE_PORT] [VALUES]
# Loads KEYS (default 1000000) strings of 100 random printable bytes (VALUES
# `printable`, the default; `compressible`: 100 bytes of words drawn from a
# vocabulary of 16, as settings, logs or JSON hold) plus
# 3,000 collections (1,000 lists of 100 elements, 1,000 listpack hashes of 50
# fields, 1,000 skiplist sorted sets of 200 members) into a redis-server,
# SAVEs, then times from process start until DBSIZE answers the full count:
# redis-server on its own RDB, forkless importing the same RDB, and
# redis-server on forkless's export (DEBUG EXPORT-RDB); also the offline
# import-rdb / export-rdb commands and the file sizes. Then forkless's own
# snapshot of the same data: SAVE time and size, and forkless restarted on
# it (port open, DBSIZE = N), beside redis-server's SAVE and restart. Uses
# ports BASE_PORT to BASE_PORT+2 (default 18410) on 127.0.0.1 and a temp
# directory; stops every server it started. Needs a release build: cargo
# build --release.
set -eu
keys=${1:-1000000}
base=${2:-18410}
values=${3:-printable}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FORKLESS_BIN:-${CARGO_TARGET_DIR:-$here/target}/release/forkless}
dir=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
# CPU seconds (user + system, all threads) process $1 has used so far: a
# figure the other load on a shared machine does not inflate.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
total=$((keys + 3000))

# Waits (at most 60 s) until the server on port $1 answers at all (a reply
# or -LOADING).
wait_port() {
    i=0
    while [ $i -lt 6000 ]; do
        redis-cli -p "$1" PING 2>/dev/null | grep -qE 'PONG|LOADING' && return 0
        sleep 0.005
        i=$((i + 1))
    done
    return 1
}

# Waits (at most 600 s) until the server on port $1 answers DBSIZE = $total.
wait_loaded() {
    i=0
    while [ $i -lt 60000 ]; do
        n=$(redis-cli -p "$1" DBSIZE 2>/dev/null || true)
        [ "$n" = "$total" ] && return 0
        sleep 0.01
        i=$((i + 1))
    done
    echo "port $1 never reached $total keys" >&2
    return 1
}

redis-server --port "$base" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --dbfilename redis.rdb --daemonize no >"$dir/redis1.log" 2>&1 &
rp0=$!
pids="$pids $rp0"
sleep 0.5
python3 - "$keys" "$values" >"$dir/load.resp" <<'PY'
import random, sys
n = int(sys.argv[1])
compressible = sys.argv[2] == "compressible"
rnd = random.Random(7)
alphabet = bytes(range(33, 127))
words = [b"user", b"session", b"active", b"true", b"false", b"id", b"name",
         b"email", b"theme", b"dark", b"light", b"en", b"updated", b"created",
         b"2026-01-01", b"null"]
def value():
    if compressible:
        return b" ".join(rnd.choices(words, k=24))[:100]
    return bytes(rnd.choices(alphabet, k=100))
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
for i in range(n):
    cmd(b"SET", b"key:%012d" % i, value())
for i in range(1000):
    cmd(b"RPUSH", b"list:%d" % i, *[b"element-%d" % j for j in range(100)])
    fields = []
    for j in range(50):
        fields += [b"field%d" % j, b"value%d" % j]
    cmd(b"HSET", b"hash:%d" % i, *fields)
    pairs = []
    for j in range(200):
        pairs += [b"%d" % j, b"member:%d" % j]
    cmd(b"ZADD", b"zset:%d" % i, *pairs)
PY
redis-cli -p "$base" --pipe <"$dir/load.resp" >/dev/null
rm -f "$dir/load.resp"
t0=$(now)
c0=$(cpu "$rp0")
redis-cli -p "$base" SAVE >/dev/null
t_redis_save=$(echo "$(now) - $t0" | bc)
c_redis_save=$(echo "$(cpu "$rp0") - $c0" | bc)
redis-cli -p "$base" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
sleep 0.5
rdb_size=$(stat -c %s "$dir/redis.rdb")

# redis-server loading its own RDB.
t0=$(now)
redis-server --port "$base" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --dbfilename redis.rdb >"$dir/redis2.log" 2>&1 &
rp=$!
pids="$pids $rp"
wait_port "$base"
t_redis_port=$(echo "$(now) - $t0" | bc)
wait_loaded "$base"
t_redis=$(echo "$(now) - $t0" | bc)
c_redis=$(cpu "$rp")
redis-cli -p "$base" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$rp" 2>/dev/null || true

# forkless importing the same RDB at start-up.
mkdir "$dir/fk"
cp "$dir/redis.rdb" "$dir/fk/dump.rdb"
t0=$(now)
"$bin" --port $((base + 1)) --save '' --dir "$dir/fk" \
    --config "enable-debug-command local" >"$dir/fk.log" 2>&1 &
fp=$!
pids="$pids $fp"
wait_port $((base + 1))
t_fk_port=$(echo "$(now) - $t0" | bc)
wait_loaded $((base + 1))
t_fk=$(echo "$(now) - $t0" | bc)

# DEBUG EXPORT-RDB from the running server.
t0=$(now)
redis-cli -p $((base + 1)) DEBUG EXPORT-RDB export.rdb >/dev/null
i=0
while [ ! -f "$dir/fk/export.rdb" ] && [ $i -lt 60000 ]; do sleep 0.01; i=$((i + 1)); done
t_export=$(echo "$(now) - $t0" | bc)
export_size=$(stat -c %s "$dir/fk/export.rdb")
# forkless's own snapshot (replacing the imported RDB): SAVE twice, the
# second one timed (the first replaces the Redis file). Incremental
# snapshots are switched off first, so the timed SAVE writes the whole data
# set as redis-server's does (not a delta of nothing).
redis-cli -p $((base + 1)) SAVE >/dev/null
redis-cli -p $((base + 1)) CONFIG SET incremental-snapshots no >/dev/null
t0=$(now)
c0=$(cpu "$fp")
redis-cli -p $((base + 1)) SAVE >/dev/null
t_fk_save=$(echo "$(now) - $t0" | bc)
c_fk_save=$(echo "$(cpu "$fp") - $c0" | bc)
own_size=$(stat -c %s "$dir/fk/dump.rdb")
redis-cli -p $((base + 1)) SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$fp" 2>/dev/null || true

# forkless restarted on its own snapshot.
t0=$(now)
"$bin" --port $((base + 1)) --save '' --dir "$dir/fk" \
    --config "enable-debug-command local" >"$dir/fk2.log" 2>&1 &
fp=$!
pids="$pids $fp"
wait_port $((base + 1))
t_fk_own_port=$(echo "$(now) - $t0" | bc)
wait_loaded $((base + 1))
t_fk_own=$(echo "$(now) - $t0" | bc)
c_fk_own=$(cpu "$fp")
redis-cli -p $((base + 1)) SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$fp" 2>/dev/null || true

# redis-server loading forkless's export.
t0=$(now)
redis-server --port $((base + 2)) --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir/fk" --dbfilename export.rdb >"$dir/redis3.log" 2>&1 &
rp=$!
pids="$pids $rp"
wait_loaded $((base + 2))
t_redis_export=$(echo "$(now) - $t0" | bc)
redis-cli -p $((base + 2)) SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$rp" 2>/dev/null || true

# Offline conversions.
t0=$(now)
"$bin" import-rdb "$dir/redis.rdb" "$dir/imported.dump" >/dev/null 2>&1
t_import=$(echo "$(now) - $t0" | bc)
t0=$(now)
"$bin" export-rdb --dump "$dir/imported.dump" "$dir/offline.rdb" >/dev/null 2>&1
t_offline=$(echo "$(now) - $t0" | bc)

printf '%s\n' "keys: $total ($keys strings of $values values + 3000 collections)"
printf '%s\n' "redis RDB size: $rdb_size bytes"
printf '%s\n' "redis-server SAVE: $t_redis_save s"
printf '%s\n' "start until the port answers, redis-server: $t_redis_port s, forkless: $t_fk_port s"
printf '%s\n' "start until DBSIZE=$total, redis-server on its RDB: $t_redis s"
printf '%s\n' "start until DBSIZE=$total, forkless importing it: $t_fk s"
printf '%s\n' "DEBUG EXPORT-RDB until the file is in place: $t_export s"
printf '%s\n' "export size: $export_size bytes (forkless's own snapshot: $own_size bytes)"
printf '%s\n' "start until DBSIZE=$total, redis-server on the export: $t_redis_export s"
printf '%s\n' "forkless import-rdb (offline): $t_import s"
printf '%s\n' "forkless export-rdb (offline): $t_offline s"
printf '%s\n' "forkless's own snapshot: SAVE $t_fk_save s (redis-server $t_redis_save s), $own_size bytes (redis RDB $rdb_size bytes)"
printf '%s\n' "forkless on its own snapshot: port answers after $t_fk_own_port s (redis-server $t_redis_port s), DBSIZE=$total after $t_fk_own s (redis-server $t_redis s)"
printf 'ratios forkless/redis: size %s, SAVE %s, start until DBSIZE=N %s\n' \
    "$(echo "scale=3; $own_size / $rdb_size" | bc)" \
    "$(echo "scale=3; $t_fk_save / $t_redis_save" | bc)" \
    "$(echo "scale=3; $t_fk_own / $t_redis" | bc)"
printf '%s\n' "CPU seconds: SAVE forkless $c_fk_save, redis-server $c_redis_save; start until DBSIZE=N forkless $c_fk_own, redis-server $c_redis"
grep -h "Loaded .* keys" "$dir/fk2.log" | sed 's/^.*INFO //' || true
grep -h "Loaded Redis RDB" "$dir/fk.log" | sed 's/^.*INFO //' || true
