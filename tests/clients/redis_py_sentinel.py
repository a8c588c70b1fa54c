"""redis-py's Sentinel client across a failover of forkless primaries.

Usage: python redis_py_sentinel.py SENTINEL_PORT[,PORT...] MASTER_NAME.
Writes through `Sentinel.master_for`, each write confirmed by WAIT 1, and
prints "READY <host:port>" once 50 writes are acknowledged; the caller then
kills the primary. It keeps writing (retrying while there is no primary)
until 50 more writes are acknowledged by a different primary, checks that
every acknowledged write is on the new primary, and prints
"redis-py sentinel OK ..." (any failure raises: exit status 1).
"""

import sys
import time

import redis
from redis.sentinel import Sentinel

ports = [int(p) for p in sys.argv[1].split(",")]
name = sys.argv[2]
sentinel = Sentinel([("127.0.0.1", p) for p in ports], socket_timeout=0.5)
master = sentinel.master_for(name, socket_timeout=0.5, retry_on_timeout=False)

acked = {}
first = None
after = 0
deadline = time.time() + 60
i = 0
while time.time() < deadline:
    key, value = f"sentinel:{i}", f"v{i}"
    try:
        addr = sentinel.discover_master(name)
        master.set(key, value)
        if master.execute_command("WAIT", 1, 2000) >= 1:
            acked[key] = value
            if first is None:
                first = addr
            elif addr != first:
                after += 1
        i += 1
    except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError,
            redis.sentinel.MasterNotFoundError, redis.ResponseError):
        time.sleep(0.1)
        continue
    if len(acked) == 50 and after == 0:
        print(f"READY {first[0]}:{first[1]}", flush=True)
    if after >= 50:
        break

assert after >= 50, f"only {after} writes acknowledged after the failover"
new = sentinel.discover_master(name)
assert new != first, (new, first)
current = redis.Redis(host=new[0], port=new[1])
lost = [k for k, v in acked.items() if current.get(k) != v.encode()]
assert not lost, f"acknowledged writes lost: {lost[:10]} of {len(lost)}"
print(f"redis-py sentinel OK acked={len(acked)} from {first[1]} to {new[1]}", flush=True)
