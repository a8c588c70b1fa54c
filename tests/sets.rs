//! Whole-binary tests of the set commands against the real binary, in RESP2
//! and RESP3 and through redis-cli. Expected replies were read from
//! redis-server 7.0.15.

mod common;

use std::collections::HashSet;

use common::{error, q, Server};
use redis::{Connection, Value};

fn set_of(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn members(c: &mut Connection, key: &str) -> HashSet<String> {
    q(c, &["SMEMBERS", key])
}

/// Adds `n` members `prefix0..` to `key`.
fn fill(c: &mut Connection, key: &str, prefix: &str, n: usize) -> HashSet<String> {
    let all: HashSet<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    let mut sadd = redis::cmd("SADD");
    sadd.arg(key);
    for m in &all {
        sadd.arg(m);
    }
    assert_eq!(sadd.query::<usize>(c).unwrap(), n);
    all
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn add_remove_and_query_members() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a", "b", "c", "a"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a", "d"]), 1);
    assert_eq!(members(&mut c, "s"), set_of(&["a", "b", "c", "d"]));
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 4);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "nokey", "a"]), 0);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["SMISMEMBER", "s", "b", "zz", "d"]),
        [1, 0, 1]
    );
    assert_eq!(q::<Vec<i64>>(&mut c, &["SMISMEMBER", "nokey", "a"]), [0]);
    assert!(members(&mut c, "nokey").is_empty());
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "a", "zz"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SREM", "nokey", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "b", "c", "d"]), 3);
    // The emptied set is gone: the key takes another type now.
    assert_eq!(q::<i64>(&mut c, &["HSET", "s", "f", "v"]), 1);
}

#[test]
fn small_integer_sets_come_sorted() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "ints", "5", "3", "-1", "10", "100"]);
    // Redis 7.0 keeps such a set as a sorted intset.
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SMEMBERS", "ints"]),
        ["-1", "3", "5", "10", "100"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SRANDMEMBER", "ints", "10"]),
        ["-1", "3", "5", "10", "100"]
    );
    q::<i64>(&mut c, &["SADD", "ints2", "9", "3", "7"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SPOP", "ints2", "10"]),
        ["3", "7", "9"]
    );
    let (cursor, items): (String, Vec<String>) =
        q(&mut c, &["SSCAN", "ints", "0", "COUNT", "1", "MATCH", "1*"]);
    assert_eq!(cursor, "0");
    assert_eq!(items, ["10", "100"]);
}

#[test]
fn wrong_type_and_arity() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["HSET", "h", "f", "v"]);
    q::<i64>(&mut c, &["SADD", "s", "a"]);
    for args in [
        &["SADD", "h", "a"][..],
        &["SREM", "h", "a"],
        &["SMEMBERS", "h"],
        &["SISMEMBER", "h", "a"],
        &["SMISMEMBER", "h", "a"],
        &["SCARD", "h"],
        &["SPOP", "h"],
        &["SPOP", "h", "1"],
        &["SRANDMEMBER", "h"],
        &["SRANDMEMBER", "h", "1"],
        &["SSCAN", "h", "0"],
        &["SMOVE", "h", "s", "a"],
        &["SMOVE", "s", "h", "a"],
        // Redis 7.0 looks every key up first: a missing key before a key of
        // the wrong type does not hide the error.
        &["SINTER", "nokey", "h"],
        &["SINTER", "h", "nokey"],
        &["SINTER", "s", "nokey", "h"],
        &["SUNION", "nokey", "h"],
        &["SDIFF", "nokey", "h"],
        &["SDIFF", "s", "h"],
        &["SINTERSTORE", "d", "nokey", "h"],
        &["SUNIONSTORE", "d", "h"],
        &["SDIFFSTORE", "d", "nokey", "h"],
        &["SINTERCARD", "2", "nokey", "h"],
    ] {
        assert_eq!(error(&mut c, args), WRONGTYPE, "{args:?}");
    }
    // A missing source answers 0 before the destination's type is looked at.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "nokey", "h", "a"]), 0);
    for (args, name) in [
        (&["SADD", "s"][..], "sadd"),
        (&["SREM", "s"], "srem"),
        (&["SMEMBERS"], "smembers"),
        (&["SISMEMBER", "s"], "sismember"),
        (&["SMOVE", "s", "t"], "smove"),
        (&["SINTER"], "sinter"),
        (&["SINTERSTORE", "d"], "sinterstore"),
        (&["SINTERCARD", "1"], "sintercard"),
        (&["SSCAN", "s"], "sscan"),
        (&["SPOP"], "spop"),
    ] {
        assert_eq!(
            error(&mut c, args),
            format!("ERR wrong number of arguments for '{name}' command")
        );
    }
    assert_eq!(error(&mut c, &["SPOP", "s", "1", "2"]), "ERR syntax error");
    assert_eq!(
        error(&mut c, &["SRANDMEMBER", "s", "1", "2"]),
        "ERR syntax error"
    );
}

#[test]
fn algebra_and_store() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "x", "a", "b", "c"]);
    q::<i64>(&mut c, &["SADD", "y", "c", "d", "b"]);
    q::<i64>(&mut c, &["SADD", "z", "c", "e"]);
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SINTER", "x", "y"]),
        set_of(&["b", "c"])
    );
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SINTER", "x", "y", "z"]),
        set_of(&["c"])
    );
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SUNION", "x", "y", "z"]),
        set_of(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SDIFF", "x", "y"]),
        set_of(&["a"])
    );
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SDIFF", "y", "x", "z"]),
        set_of(&["d"])
    );
    assert!(q::<HashSet<String>>(&mut c, &["SINTER", "x", "nokey"]).is_empty());
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SUNION", "x", "nokey"]).len(),
        3
    );
    assert_eq!(
        q::<HashSet<String>>(&mut c, &["SDIFF", "x", "nokey"]).len(),
        3
    );
    assert!(q::<HashSet<String>>(&mut c, &["SDIFF", "nokey", "x"]).is_empty());
    assert_eq!(q::<HashSet<String>>(&mut c, &["SINTER", "x"]).len(), 3);

    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "dst", "x", "y"]), 2);
    assert_eq!(members(&mut c, "dst"), set_of(&["b", "c"]));
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "dst", "x", "y"]), 4);
    assert_eq!(members(&mut c, "dst"), set_of(&["a", "b", "c", "d"]));
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "dst", "x", "y"]), 1);
    assert_eq!(members(&mut c, "dst"), set_of(&["a"]));
    // The destination may be one of the sources.
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "x", "x", "z"]), 4);
    assert_eq!(members(&mut c, "x"), set_of(&["a", "b", "c", "e"]));
    // An empty result deletes the destination.
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "dst", "x", "nokey"]), 0);
    assert_eq!(
        q::<i64>(&mut c, &["HSET", "dst", "f", "v"]),
        1,
        "dst was deleted"
    );
    // A destination of another type is replaced.
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "dst", "z"]), 2);
    assert_eq!(members(&mut c, "dst"), set_of(&["c", "e"]));
    q::<i64>(&mut c, &["HSET", "h2", "f", "v"]);
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "h2", "z", "z"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SADD", "h2", "m"]), 1, "h2 was deleted");
}

#[test]
fn sintercard_limits_and_errors() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "x", "1", "2", "3", "4"]);
    q::<i64>(&mut c, &["SADD", "y", "2", "3", "4", "5"]);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "x", "y"]), 3);
    assert_eq!(
        q::<i64>(&mut c, &["SINTERCARD", "2", "x", "y", "LIMIT", "2"]),
        2
    );
    assert_eq!(
        q::<i64>(&mut c, &["SINTERCARD", "2", "x", "y", "LIMIT", "0"]),
        3
    );
    assert_eq!(
        q::<i64>(
            &mut c,
            &["SINTERCARD", "2", "x", "y", "LIMIT", "1", "LIMIT", "5"]
        ),
        3
    );
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "1", "x"]), 4);
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "x", "nokey"]), 0);
    for n in ["0", "-1", "x"] {
        assert_eq!(
            error(&mut c, &["SINTERCARD", n, "x"]),
            "ERR numkeys should be greater than 0"
        );
    }
    assert_eq!(
        error(&mut c, &["SINTERCARD", "3", "x", "y"]),
        "ERR Number of keys can't be greater than number of args"
    );
    for bad in ["-1", "x"] {
        assert_eq!(
            error(&mut c, &["SINTERCARD", "2", "x", "y", "LIMIT", bad]),
            "ERR LIMIT can't be negative"
        );
    }
    assert_eq!(
        error(&mut c, &["SINTERCARD", "2", "x", "y", "LIMIT"]),
        "ERR syntax error"
    );
    assert_eq!(
        error(&mut c, &["SINTERCARD", "2", "x", "y", "FOO", "1"]),
        "ERR syntax error"
    );
}

#[test]
fn smove_cases() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "src", "a", "b"]);
    q::<i64>(&mut c, &["SADD", "dst", "b"]);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "dst", "a"]), 1);
    assert_eq!(members(&mut c, "dst"), set_of(&["a", "b"]));
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "dst", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "src", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "src", "zz"]), 0);
    // Moving a member the destination already has still removes it from the source.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "dst", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "src"]), 0);
    assert_eq!(
        q::<i64>(&mut c, &["HSET", "src", "f", "v"]),
        1,
        "src was deleted"
    );
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "dst", "fresh", "a"]), 1);
    assert_eq!(members(&mut c, "fresh"), set_of(&["a"]));
}

#[test]
fn spop_and_srandmember_properties() {
    let s = Server::start();
    let mut c = s.client();
    let universe = fill(&mut c, "s", "m", 100);

    let one: String = q(&mut c, &["SRANDMEMBER", "s"]);
    assert!(universe.contains(&one));
    for count in [1, 10, 50, 99, 100, 101, 5000] {
        let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", &count.to_string()]);
        assert_eq!(got.len(), count.min(100));
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "positive count gives distinct members"
        );
        assert!(got.iter().all(|m| universe.contains(m)));
    }
    let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", "-500"]);
    assert_eq!(got.len(), 500, "negative count gives exactly |count|");
    assert!(got.iter().all(|m| universe.contains(m)));
    assert!(got.iter().collect::<HashSet<_>>().len() < 500);
    assert!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "s", "0"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "nokey", "-3"]).is_empty());
    assert_eq!(q::<Option<String>>(&mut c, &["SRANDMEMBER", "nokey"]), None);
    assert_eq!(
        error(&mut c, &["SRANDMEMBER", "s", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    // Known difference: Redis would build a reply of any size; forkless
    // refuses a repeat count above 2^24 instead of exhausting memory.
    assert_eq!(
        error(&mut c, &["SRANDMEMBER", "s", "-20000000"]),
        "ERR value is out of range"
    );
    assert_eq!(
        q::<i64>(&mut c, &["SCARD", "s"]),
        100,
        "SRANDMEMBER removes nothing"
    );

    // SPOP: popped members leave the set, and popped + kept = the original.
    let mut left = universe.clone();
    let popped: String = q(&mut c, &["SPOP", "s"]);
    assert!(left.remove(&popped));
    for count in [5, 60] {
        let popped: Vec<String> = q(&mut c, &["SPOP", "s", &count.to_string()]);
        assert_eq!(popped.len(), count);
        for m in &popped {
            assert!(left.remove(m), "{m} popped twice or unknown");
        }
        assert_eq!(members(&mut c, "s"), left);
    }
    assert!(q::<Vec<String>>(&mut c, &["SPOP", "s", "0"]).is_empty());
    let rest: HashSet<String> = q(&mut c, &["SPOP", "s", "1000"]);
    assert_eq!(rest, left);
    assert_eq!(q::<Option<String>>(&mut c, &["SPOP", "s"]), None);
    assert_eq!(
        q::<i64>(&mut c, &["HSET", "s", "f", "v"]),
        1,
        "emptied set was deleted"
    );
    for bad in ["-1", "x"] {
        assert_eq!(
            error(&mut c, &["SPOP", "nokey", bad]),
            "ERR value is out of range, must be positive"
        );
    }
    fill(&mut c, "t", "m", 1);
    assert_eq!(q::<String>(&mut c, &["SPOP", "t"]), "m0");
    assert_eq!(
        q::<i64>(&mut c, &["HSET", "t", "f", "v"]),
        1,
        "t was deleted"
    );
}

#[test]
fn resp3_shapes() {
    let s = Server::start();
    let mut c = s.client_resp3();
    q::<i64>(&mut c, &["SADD", "s", "a", "b", "c"]);
    for args in [
        &["SMEMBERS", "s"][..],
        &["SMEMBERS", "nokey"],
        &["SINTER", "s", "s"],
        &["SUNION", "s"],
        &["SDIFF", "s"],
        &["SPOP", "nokey", "2"],
    ] {
        assert!(
            matches!(q::<Value>(&mut c, args), Value::Set(_)),
            "{args:?} answers a RESP3 set"
        );
    }
    // SRANDMEMBER answers an array (its picks may repeat); SPOP with a count a set.
    assert!(matches!(
        q::<Value>(&mut c, &["SRANDMEMBER", "s", "-4"]),
        Value::Array(v) if v.len() == 4
    ));
    assert!(matches!(
        q::<Value>(&mut c, &["SPOP", "s", "2"]),
        Value::Set(v) if v.len() == 2
    ));
    assert_eq!(q::<Value>(&mut c, &["SPOP", "nokey"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["SISMEMBER", "s", "zz"]), Value::Int(0));
}

#[test]
fn binary_and_empty_members() {
    let s = Server::start();
    let mut c = s.client();
    let m = &b"\0\r\n\xff"[..];
    let n: i64 = redis::cmd("SADD")
        .arg("s")
        .arg(m)
        .arg("")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let all: HashSet<Vec<u8>> = q(&mut c, &["SMEMBERS", "s"]);
    assert_eq!(all, [m.to_vec(), Vec::new()].into());
    let is: i64 = redis::cmd("SISMEMBER")
        .arg("s")
        .arg(m)
        .query(&mut c)
        .unwrap();
    assert_eq!(is, 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", ""]), 1);
    let moved: i64 = redis::cmd("SMOVE")
        .arg("s")
        .arg("t")
        .arg(m)
        .query(&mut c)
        .unwrap();
    assert_eq!(moved, 1);
    let got: Vec<u8> = q(&mut c, &["SPOP", "t"]);
    assert_eq!(got, m);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", ""]), 1);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 0);
}

#[test]
fn sscan_walks_a_large_set_completely() {
    let s = Server::start();
    let mut c = s.client();
    let universe = fill(&mut c, "s", "member:", 2000);
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["SSCAN", "s", &cursor, "COUNT", "10"]);
        assert!(items.len() <= 10);
        for m in items {
            assert!(seen.insert(m.clone()), "{m} returned twice");
        }
        calls += 1;
        assert!(calls <= 1000, "scan does not end");
        // Writes during the scan do not disturb it.
        if calls == 20 {
            q::<i64>(&mut c, &["SREM", "s", "late"]);
            q::<i64>(&mut c, &["SADD", "s", "late"]);
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    // Full pages of 10, and the cursor is 0 on the last one; "late", added
    // during the walk, makes a 201st page if it lies ahead of the cursor.
    let late = seen.contains("late") as usize;
    assert_eq!(calls, 200 + late);
    assert!(universe.is_subset(&seen), "every member is returned");

    let (_, items): (String, Vec<String>) = q(
        &mut c,
        &["SSCAN", "s", "0", "COUNT", "100", "MATCH", "member:1*"],
    );
    assert!(items.len() <= 100);
    assert!(items.iter().all(|m| m.starts_with("member:1")));
    let (cursor, items): (String, Vec<String>) = q(&mut c, &["SSCAN", "nokey", "0"]);
    assert_eq!((cursor.as_str(), items.len()), ("0", 0));
    assert_eq!(error(&mut c, &["SSCAN", "s", "x"]), "ERR invalid cursor");
    assert_eq!(
        error(&mut c, &["SSCAN", "s", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    // A small set of strings is a hashtable in Redis 7.0: COUNT is honoured.
    fill(&mut c, "small", "m", 5);
    let (cursor, items): (String, Vec<String>) = q(&mut c, &["SSCAN", "small", "0", "COUNT", "2"]);
    assert_ne!(cursor, "0");
    assert_eq!(items.len(), 2);
}

#[test]
fn redis_cli_sees_sets() {
    let s = Server::start();
    assert_eq!(s.cli(&["SADD", "s", "3", "1", "2"]).trim(), "3");
    assert_eq!(s.cli(&["SMEMBERS", "s"]), "1\n2\n3\n");
    assert_eq!(s.cli(&["-3", "SMEMBERS", "s"]), "1\n2\n3\n");
    assert_eq!(s.cli(&["SINTERCARD", "1", "s", "LIMIT", "2"]).trim(), "2");
    assert_eq!(
        s.cli(&["SPOP", "s", "-1"]).trim(),
        "ERR value is out of range, must be positive"
    );
}

/// A reload rebuilds each set under the current limit, as Redis's does (read
/// from redis-server 7.0.15): a hashtable that shrank to a few integers comes
/// back an intset, a small intset past a lowered limit a hashtable, and a
/// large set of integers under a raised one an intset.
#[test]
fn debug_reload_rederives_set_encodings() {
    let s = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "shrunk", "3", "1", "2", "a"]);
    q::<i64>(&mut c, &["SREM", "shrunk", "a"]);
    q::<i64>(&mut c, &["SADD", "small", "1", "2", "3"]);
    let mut big = vec!["SADD".to_string(), "big".to_string()];
    big.extend((1..=600).map(|i| i.to_string()));
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    q::<i64>(&mut c, &big);
    let enc =
        |c: &mut redis::Connection, key: &str| -> String { q(c, &["OBJECT", "ENCODING", key]) };
    assert_eq!(enc(&mut c, "shrunk"), "hashtable");
    q::<String>(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(enc(&mut c, "shrunk"), "intset");
    assert_eq!(enc(&mut c, "small"), "intset");
    assert_eq!(enc(&mut c, "big"), "hashtable");
    let members: Vec<String> = q(&mut c, &["SMEMBERS", "shrunk"]);
    assert_eq!(members, ["1", "2", "3"], "an intset lists in numeric order");
    q::<String>(&mut c, &["CONFIG", "SET", "set-max-intset-entries", "2"]);
    q::<String>(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(enc(&mut c, "shrunk"), "hashtable");
    assert_eq!(enc(&mut c, "small"), "hashtable");
    q::<String>(&mut c, &["CONFIG", "SET", "set-max-intset-entries", "1000"]);
    q::<String>(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(enc(&mut c, "big"), "intset");
    assert_eq!(q::<i64>(&mut c, &["SCARD", "big"]), 600);
}
