#!/bin/sh
# A big stream through Redis's RDB format against redis-server, same file,
# same machine:
#   benches/rdb_stream_vs_redis.sh [ENTRIES] [BASE_PORT]
# XADDs ENTRIES (default 1000000) entries of two small fields ("sensor",
# "reading") into one stream of a redis-server, with a consumer group that
# has 1,000 entries pending with two consumers, SAVEs, then times from
# process start until XLEN answers ENTRIES: redis-server on its own RDB,
# forkless importing the same RDB, and redis-server on forkless's export
# (DEBUG EXPORT-RDB); also the export itself, the file sizes and whether
# both servers DUMP the stream to the same bytes. Uses ports BASE_PORT to
# BASE_PORT+1 (default 18720) on 127.0.0.1 and a temp directory; stops every
# server it started. Needs a release build: cargo build --release.
set -eu
entries=${1:-1000000}
base=${2:-18720}
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
# CPU seconds (user + system) a process has used so far.
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

# Waits (at most 600 s) until the server on port $1 answers XLEN = $entries.
wait_loaded() {
    i=0
    while [ $i -lt 60000 ]; do
        n=$(redis-cli -p "$1" XLEN events 2>/dev/null || true)
        [ "$n" = "$entries" ] && return 0
        sleep 0.005
        i=$((i + 1))
    done
    echo "port $1 never reached $entries entries" >&2
    return 1
}

start_redis() { # dbfilename
    redis-server --port "$base" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$dir" --dbfilename "$1" >>"$dir/redis.log" 2>&1 &
    rp=$!
    pids="$pids $rp"
}
stop_redis() {
    redis-cli -p "$base" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    wait "$rp" 2>/dev/null || true
}

start_redis redis.rdb
sleep 0.5
python3 - "$entries" >"$dir/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))
for i in range(1, n + 1):
    cmd(b"XADD", b"events", b"%d-0" % (1700000000000 + i), b"sensor", b"s%d" % (i % 50), b"reading", b"%d" % (i * 7 % 1000))
cmd(b"XGROUP", b"CREATE", b"events", b"workers", b"0")
cmd(b"XREADGROUP", b"GROUP", b"workers", b"alice", b"COUNT", b"600", b"STREAMS", b"events", b">")
cmd(b"XREADGROUP", b"GROUP", b"workers", b"bob", b"COUNT", b"400", b"STREAMS", b"events", b">")
PY
redis-cli -p "$base" --pipe <"$dir/load.resp" >/dev/null
rm -f "$dir/load.resp"
redis-cli -p "$base" SAVE >/dev/null
redis-cli -p "$base" --no-raw DUMP events | md5sum >"$dir/redis.dump.md5"
stop_redis
rdb_size=$(stat -c %s "$dir/redis.rdb")

# redis-server loading its own RDB.
t0=$(now)
start_redis redis.rdb
wait_loaded "$base"
t_redis=$(echo "$(now) - $t0" | bc)
cpu_redis=$(cpu "$rp")
stop_redis

# forkless importing the same RDB at start-up.
mkdir "$dir/fk"
cp "$dir/redis.rdb" "$dir/fk/dump.rdb"
t0=$(now)
"$bin" --port $((base + 1)) --save '' --dir "$dir/fk" \
    --config "enable-debug-command local" >"$dir/fk.log" 2>&1 &
fp=$!
pids="$pids $fp"
wait_loaded $((base + 1))
t_fk=$(echo "$(now) - $t0" | bc)
cpu_fk=$(cpu "$fp")
rss_fk=$(ps -o rss= -p "$fp" | tr -d ' ')
redis-cli -p $((base + 1)) --no-raw DUMP events | md5sum >"$dir/fk.dump.md5"

# DEBUG EXPORT-RDB from the running server.
t0=$(now)
redis-cli -p $((base + 1)) DEBUG EXPORT-RDB "$dir/export.rdb" >/dev/null
i=0
while [ ! -f "$dir/export.rdb" ] && [ $i -lt 60000 ]; do
    sleep 0.005
    i=$((i + 1))
done
t_export=$(echo "$(now) - $t0" | bc)
redis-cli -p $((base + 1)) SHUTDOWN NOSAVE >/dev/null 2>&1 || true
wait "$fp" 2>/dev/null || true
export_size=$(stat -c %s "$dir/export.rdb")

# redis-server loading forkless's export.
t0=$(now)
start_redis export.rdb
wait_loaded "$base"
t_back=$(echo "$(now) - $t0" | bc)
rss_redis=$(ps -o rss= -p "$rp" | tr -d ' ')
stop_redis

same=no
cmp -s "$dir/redis.dump.md5" "$dir/fk.dump.md5" && same=yes
echo "entries: $entries"
echo "redis RDB bytes: $rdb_size, forkless export bytes: $export_size"
echo "redis-server loading its own RDB: $t_redis s ($cpu_redis s CPU)"
echo "forkless importing it: $t_fk s ($cpu_fk s CPU; RSS $rss_fk KiB; redis-server after loading the export: $rss_redis KiB)"
echo "forkless DEBUG EXPORT-RDB until the file is in place: $t_export s"
echo "redis-server loading forkless's export: $t_back s"
echo "DUMP of the stream byte-equal on both servers: $same"
