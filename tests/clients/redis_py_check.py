"""redis-py against a running forkless: strings, lists, hashes, sets, expiry,
scan_iter, pipelines, in RESP2 and RESP3 (protocol=3).

Usage: python redis_py_check.py PORT. Prints "redis-py OK <version>" on success;
any failed check raises (exit status 1).
"""

import sys

import redis


def check(r: redis.Redis, proto: int) -> None:
    r.flushdb()
    # Strings.
    assert r.set("s", "hello") is True
    assert r.get("s") == b"hello"
    assert r.get("missing") is None
    assert r.set("s", "x", nx=True) is None
    assert r.set("s", "world", get=True) == b"hello"
    assert r.append("s", "!") == 6
    assert r.getrange("s", 0, 4) == b"world"
    assert r.setrange("s", 0, "W") == 6
    assert r.strlen("s") == 6
    assert r.incr("n") == 1
    assert r.incrby("n", 41) == 42
    assert r.decr("n") == 41
    assert r.incrbyfloat("f", 10.5) == 10.5
    assert r.incrbyfloat("f", "5.0e3") == 5010.5
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "missing") == [b"1", b"2", None]
    assert r.msetnx({"a": "9", "c": "3"}) is False
    assert r.getdel("a") == b"1"
    binary = b"\x00\r\n\xff"
    r.set(binary, binary)
    assert r.get(binary) == binary
    try:
        r.lpush("s", "x")
        raise AssertionError("WRONGTYPE expected")
    except redis.ResponseError as e:
        assert str(e).startswith("WRONGTYPE"), e
    try:
        r.incr("s")
        raise AssertionError("not an integer expected")
    except redis.ResponseError as e:
        assert "not an integer" in str(e), e

    # Lists.
    assert r.rpush("l", "a", "b", "c") == 3
    assert r.lpush("l", "z") == 4
    assert r.lrange("l", 0, -1) == [b"z", b"a", b"b", b"c"]
    assert r.lpop("l") == b"z"
    assert r.rpop("l", 2) == [b"c", b"b"]
    assert r.llen("l") == 1
    r.rpush("l", "x", "a")
    assert r.lpos("l", "a") == 0
    assert r.lpos("l", "a", count=0) == [0, 2]
    assert r.lmove("l", "l2", "LEFT", "RIGHT") == b"a"
    assert r.blpop(["missing", "l2"], timeout=1) in ([b"l2", b"a"], (b"l2", b"a"))
    assert r.blpop(["missing"], timeout=0.05) is None

    # Hashes.
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hget("h", "f1") == b"v1"
    assert r.hgetall("h") == {b"f1": b"v1", b"f2": b"v2"}
    assert sorted(r.hkeys("h")) == [b"f1", b"f2"]
    assert r.hincrby("h", "n", 5) == 5
    assert r.hincrbyfloat("h", "x", 1.5) == 1.5
    assert r.hdel("h", "f1", "nope") == 1
    assert r.hlen("h") == 3
    assert r.hexists("h", "f2") is True
    assert r.hrandfield("h") in (b"f2", b"n", b"x")
    assert len(r.hrandfield("h", -5)) == 5

    # Sets.
    assert r.sadd("st", "a", "b", "c") == 3
    assert r.smembers("st") == {b"a", b"b", b"c"}
    assert r.sismember("st", "a") in (True, 1)
    assert r.smismember("st", ["a", "z"]) in ([True, False], [1, 0])
    r.sadd("st2", "b", "c", "d")
    assert r.sinter("st", "st2") == {b"b", b"c"}
    assert r.sunion("st", "st2") == {b"a", b"b", b"c", b"d"}
    assert r.sdiff("st", "st2") == {b"a"}
    assert r.sintercard(2, ["st", "st2"]) == 2
    popped = r.spop("st")
    assert popped in (b"a", b"b", b"c")
    assert r.scard("st") == 2

    # Expiry.
    assert r.expire("s", 100) is True
    assert 99 <= r.ttl("s") <= 100
    assert r.expire("s", 50, gt=True) is False
    assert r.persist("s") is True
    assert r.ttl("s") == -1
    assert r.pexpire("s", 100000) is True
    assert r.pttl("s") > 99000
    assert r.ttl("missing") == -2
    r.set("gone", "v", px=1)
    import time

    time.sleep(0.02)
    assert r.get("gone") is None

    # Keys, scan_iter, pipelines.
    assert r.type("h") == b"hash"
    assert r.exists("h", "missing") == 1
    for i in range(300):
        r.set(f"scan:{i}", i)
    found = set(r.scan_iter(match="scan:*", count=17))
    assert found == {f"scan:{i}".encode() for i in range(300)}, len(found)
    assert set(r.sscan_iter("st2")) == {b"b", b"c", b"d"}
    assert dict(r.hscan_iter("h")) == r.hgetall("h")
    pipe = r.pipeline(transaction=False)
    for i in range(100):
        pipe.set(f"p:{i}", i)
        pipe.incr("pc")
    replies = pipe.execute()
    assert replies[-1] == 100 and replies[0] is True
    assert r.get("p:99") == b"99"
    assert r.dbsize() > 300
    assert r.rename("p:1", "p:renamed") is True
    assert r.copy("p:2", "p:copy") is True
    assert r.ping() is True
    assert r.echo("hi") == b"hi"


def main() -> None:
    port = int(sys.argv[1])
    for proto in (2, 3):
        r = redis.Redis(host="127.0.0.1", port=port, protocol=proto)
        check(r, proto)
        if proto == 3:
            # RESP3 types come through natively: a map, a set, a double-free bulk.
            assert r.connection_pool.connection_kwargs.get("protocol") == 3
            assert isinstance(r.execute_command("HGETALL", "h"), dict)
        r.close()
    print(f"redis-py OK {redis.__version__}")


if __name__ == "__main__":
    main()
