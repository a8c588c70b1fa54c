"""redis-py's scripting users against a running forkless: register_script
(EVALSHA with its NOSCRIPT fallback) and Lock (acquire, extend, reacquire,
release, under contention), in RESP2 and RESP3 (protocol=3).

Usage: python redis_py_scripting.py PORT. Prints "redis-py scripting OK
<version>" on success; any failed check raises (exit status 1).
"""

import sys
import threading

import redis
from redis.exceptions import LockError, LockNotOwnedError


def check(port: int, proto: int) -> None:
    r = redis.Redis(port=port, protocol=proto)
    r.flushall()
    r.script_flush()

    incr_by = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert incr_by(keys=["n"], args=[5]) == 5
    r.script_flush()
    # NOSCRIPT: redis-py loads the script again and retries.
    assert incr_by(keys=["n"], args=[2]) == 7
    assert r.script_exists(incr_by.sha) == [True]
    pair = r.register_script("return {KEYS[1], ARGV[1], 3}")
    assert pair(keys=["k"], args=["v"]) == [b"k", b"v", 3]

    # Lock under contention: four threads, each takes the lock 40 times and
    # does a read-modify-write that would lose updates without it.
    errors = []

    def worker() -> None:
        c = redis.Redis(port=port, protocol=proto)
        try:
            for _ in range(40):
                with c.lock("the-lock", timeout=5, blocking_timeout=30):
                    v = int(c.get("guarded") or 0)
                    c.set("guarded", v + 1)
        except Exception as e:  # reported by the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert int(r.get("guarded")) == 160
    assert r.get("the-lock") is None

    lock = r.lock("ext", timeout=1)
    assert lock.acquire(blocking=False)
    assert lock.owned()
    assert lock.extend(2)
    assert 2000 < r.pttl("ext") <= 3000
    assert lock.extend(5, replace_ttl=True)
    assert 4000 < r.pttl("ext") <= 5000
    assert lock.reacquire()
    assert 0 < r.pttl("ext") <= 1000
    other = r.lock("ext", timeout=1)
    assert not other.acquire(blocking=False)
    try:
        other.release()
        raise AssertionError("released a lock it does not hold")
    except LockError:
        pass
    lock.release()
    assert r.get("ext") is None

    stolen = r.lock("owned", timeout=10)
    assert stolen.acquire(blocking=False)
    r.set("owned", "someone-else")
    # extend first: a failed release forgets the token on the client side.
    try:
        stolen.extend(1)
        raise AssertionError("extended a lock someone else owns")
    except LockNotOwnedError:
        pass
    try:
        stolen.release()
        raise AssertionError("released a lock someone else owns")
    except LockNotOwnedError:
        pass
    assert r.get("owned") == b"someone-else"


def main() -> None:
    port = int(sys.argv[1])
    for proto in (2, 3):
        check(port, proto)
    print("redis-py scripting OK", redis.__version__)


if __name__ == "__main__":
    main()
