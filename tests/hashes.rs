//! Whole-binary tests of the hash commands against the real binary, in RESP2
//! and RESP3 and through redis-cli. Expected replies were read from
//! redis-server 7.0.15.

mod common;

use std::collections::{HashMap, HashSet};

use common::{error, q, Server};
use redis::{FromRedisValue, Value};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn set_get_and_delete_fields() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2"]), 2);
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "10", "c", "3"]), 1);
    assert_eq!(q::<String>(&mut c, &["HMSET", "h", "d", "4"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "a", "x"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "e", "5"]), 1);
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "a"]), "10");
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "zz"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "nokey", "a"]), None);
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "h", "a", "zz", "b"]),
        vec![Some("10".into()), None, Some("2".into())]
    );
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "nokey", "a", "b"]),
        vec![None, None]
    );
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HLEN", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "a"]), 2);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "e"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "zz"]), 0);
    let keys: HashSet<String> = q(&mut c, &["HKEYS", "h"]);
    assert_eq!(keys, ["a", "b", "c", "d", "e"].map(String::from).into());
    let mut vals: Vec<String> = q(&mut c, &["HVALS", "h"]);
    vals.sort();
    assert_eq!(vals, ["10", "2", "3", "4", "5"]);
    let all: HashMap<String, String> = q(&mut c, &["HGETALL", "h"]);
    assert_eq!(all.len(), 5);
    assert_eq!(all["d"], "4");
    assert!(q::<Vec<String>>(&mut c, &["HGETALL", "nokey"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["HKEYS", "nokey"]).is_empty());

    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "a", "zz", "b"]), 2);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "nokey", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "c", "d", "e"]), 3);
    // The emptied hash is gone: the key takes another type now.
    assert_eq!(q::<i64>(&mut c, &["SADD", "h", "m"]), 1);
}

#[test]
fn wrong_type_and_arity() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "set", "m"]);
    for args in [
        &["HSET", "set", "a", "1"][..],
        &["HMSET", "set", "a", "1"],
        &["HSETNX", "set", "a", "1"],
        &["HGET", "set", "a"],
        &["HMGET", "set", "a"],
        &["HGETALL", "set"],
        &["HKEYS", "set"],
        &["HVALS", "set"],
        &["HDEL", "set", "a"],
        &["HEXISTS", "set", "a"],
        &["HLEN", "set"],
        &["HSTRLEN", "set", "a"],
        &["HINCRBY", "set", "a", "1"],
        &["HINCRBYFLOAT", "set", "a", "1"],
        &["HSCAN", "set", "0"],
        &["HRANDFIELD", "set"],
        &["HRANDFIELD", "set", "2"],
    ] {
        assert_eq!(error(&mut c, args), WRONGTYPE, "{args:?}");
    }
    for (args, name) in [
        (&["HSET", "h", "a"][..], "hset"),
        (&["HSET", "h", "a", "1", "b"], "hset"),
        (&["HMSET", "h", "a"], "hmset"),
        (&["HMSET", "h", "a", "1", "b"], "hmset"),
        (&["HGET", "h"], "hget"),
        (&["HSETNX", "h", "a"], "hsetnx"),
        (&["HDEL", "h"], "hdel"),
        (&["HLEN"], "hlen"),
        (&["HRANDFIELD"], "hrandfield"),
        (&["HSCAN", "h"], "hscan"),
        (&["HINCRBY", "h", "a"], "hincrby"),
    ] {
        assert_eq!(
            error(&mut c, args),
            format!("ERR wrong number of arguments for '{name}' command")
        );
    }
    // Nothing was created by the failed commands.
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 0);
}

#[test]
fn integer_and_float_increments() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "-10"]), -5);
    q::<i64>(
        &mut c,
        &[
            "HSET",
            "h",
            "s",
            "abc",
            "sp",
            " 1",
            "big",
            "9223372036854775807",
        ],
    );
    let not_int = "ERR value is not an integer or out of range";
    assert_eq!(error(&mut c, &["HINCRBY", "h", "n", "x"]), not_int);
    assert_eq!(error(&mut c, &["HINCRBY", "h", "n", "1.5"]), not_int);
    assert_eq!(
        error(&mut c, &["HINCRBY", "h", "s", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        error(&mut c, &["HINCRBY", "h", "sp", "1"]),
        "ERR hash value is not an integer"
    );
    assert_eq!(
        error(&mut c, &["HINCRBY", "h", "big", "1"]),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        q::<i64>(&mut c, &["HINCRBY", "h", "neg", "-9223372036854775808"]),
        i64::MIN
    );
    assert_eq!(
        error(&mut c, &["HINCRBY", "h", "neg", "-1"]),
        "ERR increment or decrement would overflow"
    );

    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "10.5"]),
        "10.5"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "0.1"]),
        "10.6"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "e", "5.0e3"]),
        "5000"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "t", "1.23e-10"]),
        "0.000000000123"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "n", "0.25"]),
        "-4.75"
    );
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "n"]), "-4.75");
    assert_eq!(
        error(&mut c, &["HINCRBYFLOAT", "h", "f", "x"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        error(&mut c, &["HINCRBYFLOAT", "h", "f", "nan"]),
        "ERR value is not a valid float"
    );
    assert_eq!(
        error(&mut c, &["HINCRBYFLOAT", "h", "f", "inf"]),
        "ERR value is NaN or Infinity"
    );
    assert_eq!(
        error(&mut c, &["HINCRBYFLOAT", "h", "s", "1"]),
        "ERR hash value is not a float"
    );
    // Long double, as Redis: past f64's range is fine, past long double's is not.
    q::<i64>(&mut c, &["HSET", "h", "huge", "1.7e308"]);
    let sum: String = q(&mut c, &["HINCRBYFLOAT", "h", "huge", "1.7e308"]);
    assert!(sum.starts_with("34") && sum.len() == 309, "{sum}");
    q::<i64>(&mut c, &["HSET", "h", "huge", "1e4932"]);
    assert_eq!(
        error(&mut c, &["HINCRBYFLOAT", "h", "huge", "1e4932"]),
        "ERR increment would produce NaN or Infinity"
    );
    // RESP3 still gets a bulk string, as Redis 7.0 sends.
    let mut c3 = s.client_resp3();
    let v: Value = q(&mut c3, &["HINCRBYFLOAT", "h", "f", "1"]);
    assert_eq!(v, Value::BulkString(b"11.6".to_vec()));
}

#[test]
fn binary_and_empty_fields() {
    let s = Server::start();
    let mut c = s.client();
    let field = &b"f\0\r\n\xff"[..];
    let value = &b"v\0\xfe\r\n"[..];
    let n: i64 = redis::cmd("HSET")
        .arg("h")
        .arg(field)
        .arg(value)
        .arg("")
        .arg("")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let got: Vec<u8> = redis::cmd("HGET")
        .arg("h")
        .arg(field)
        .query(&mut c)
        .unwrap();
    assert_eq!(got, value);
    assert_eq!(q::<String>(&mut c, &["HGET", "h", ""]), "");
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", ""]), 0);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", ""]), 1);
    let all: HashMap<Vec<u8>, Vec<u8>> = q(&mut c, &["HGETALL", "h"]);
    assert_eq!(all[field], value);
    assert_eq!(all[&b""[..]], b"");
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", ""]), 1);
    let n: i64 = redis::cmd("HDEL")
        .arg("h")
        .arg(field)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 0);
}

#[test]
fn resp3_shapes() {
    let s = Server::start();
    let mut c = s.client_resp3();
    q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2"]);
    match q::<Value>(&mut c, &["HGETALL", "h"]) {
        Value::Map(pairs) => assert_eq!(pairs.len(), 2),
        other => panic!("HGETALL should be a map in RESP3: {other:?}"),
    }
    assert_eq!(
        q::<Value>(&mut c, &["HGETALL", "nokey"]),
        Value::Map(vec![])
    );
    assert_eq!(q::<Value>(&mut c, &["HRANDFIELD", "nokey"]), Value::Nil);
    // Redis 7.0 answers RESP3 WITHVALUES with [field, value] pairs.
    let Value::Array(pairs) = q::<Value>(&mut c, &["HRANDFIELD", "h", "-5", "WITHVALUES"]) else {
        panic!("array expected")
    };
    assert_eq!(pairs.len(), 5);
    for p in pairs {
        let Value::Array(fv) = p else {
            panic!("pair expected: {p:?}")
        };
        let f = String::from_redis_value(fv[0].clone()).unwrap();
        let v = String::from_redis_value(fv[1].clone()).unwrap();
        assert!((f == "a" && v == "1") || (f == "b" && v == "2"), "{f} {v}");
    }
    // RESP2 gets them flat.
    let mut c2 = s.client();
    let flat: Vec<String> = q(&mut c2, &["HRANDFIELD", "h", "2", "WITHVALUES"]);
    assert_eq!(flat.len(), 4);
}

#[test]
fn hrandfield_properties() {
    let s = Server::start();
    let mut c = s.client();
    let fields: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let mut hset = redis::cmd("HSET");
    hset.arg("h");
    for f in &fields {
        hset.arg(f).arg(format!("v{}", &f[1..]));
    }
    hset.query::<i64>(&mut c).unwrap();
    let universe: HashSet<String> = fields.iter().cloned().collect();

    let one: String = q(&mut c, &["HRANDFIELD", "h"]);
    assert!(universe.contains(&one));
    for count in [1, 7, 25, 49, 50, 51, 1000] {
        let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", &count.to_string()]);
        assert_eq!(got.len(), count.min(50), "count {count}");
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(
            distinct.len(),
            got.len(),
            "positive count gives distinct fields"
        );
        assert!(got.iter().all(|f| universe.contains(f)));
    }
    let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "-200"]);
    assert_eq!(got.len(), 200, "negative count gives exactly |count|");
    assert!(got.iter().all(|f| universe.contains(f)));
    let distinct: HashSet<&String> = got.iter().collect();
    assert!(distinct.len() < 200, "200 picks of 50 must repeat");
    let pairs: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "10", "WITHVALUES"]);
    assert_eq!(pairs.len(), 20);
    for fv in pairs.chunks(2) {
        assert_eq!(fv[1], format!("v{}", &fv[0][1..]), "value belongs to field");
    }
    assert!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "h", "0"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "nokey", "3"]).is_empty());
    assert_eq!(
        error(&mut c, &["HRANDFIELD", "h", "1", "2"]),
        "ERR syntax error"
    );
    assert_eq!(
        error(&mut c, &["HRANDFIELD", "h", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        error(&mut c, &["HRANDFIELD", "h", "-9223372036854775808"]),
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        error(
            &mut c,
            &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"]
        ),
        "ERR value is out of range"
    );
    // Every field turns up eventually: the picks are not stuck on a few
    // (about 225 draws are expected; missing one in 1000 has odds ~1e-7).
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        seen.insert(q::<String>(&mut c, &["HRANDFIELD", "h"]));
        if seen.len() == 50 {
            break;
        }
    }
    assert_eq!(seen.len(), 50);
}

#[test]
fn hscan_small_hash_comes_whole() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(
        &mut c,
        &["HSET", "h", "a", "1", "b", "2", "c", "3", "ab", "4"],
    );
    let (cursor, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "h", "0", "COUNT", "1"]);
    assert_eq!(cursor, "0", "a listpack-sized hash is returned in one call");
    assert_eq!(items.len(), 8);
    let (cursor, mut items): (String, Vec<String>) = q(&mut c, &["HSCAN", "h", "0", "MATCH", "a*"]);
    assert_eq!(cursor, "0");
    items.sort();
    assert_eq!(items, ["1", "4", "a", "ab"]);
    let (cursor, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "nokey", "0"]);
    assert_eq!((cursor.as_str(), items.len()), ("0", 0));
    assert_eq!(error(&mut c, &["HSCAN", "h", "x"]), "ERR invalid cursor");
    assert_eq!(
        error(&mut c, &["HSCAN", "h", "18446744073709551616"]),
        "ERR invalid cursor"
    );
    assert_eq!(
        error(&mut c, &["HSCAN", "h", "0", "COUNT", "0"]),
        "ERR syntax error"
    );
    assert_eq!(
        error(&mut c, &["HSCAN", "h", "0", "NOVALUES"]),
        "ERR syntax error"
    );
    assert_eq!(
        error(&mut c, &["HSCAN", "h", "0", "COUNT", "x"]),
        "ERR value is not an integer or out of range"
    );
}

#[test]
fn hscan_walks_a_large_hash_completely() {
    let s = Server::start();
    let mut c = s.client();
    let mut hset = redis::cmd("HSET");
    hset.arg("h");
    for i in 0..2000 {
        hset.arg(format!("field:{i}")).arg(format!("value:{i}"));
    }
    assert_eq!(hset.query::<i64>(&mut c).unwrap(), 2000);

    let mut seen: HashMap<String, String> = HashMap::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            q(&mut c, &["HSCAN", "h", &cursor, "COUNT", "10"]);
        assert!(items.len() <= 20);
        for fv in items.chunks(2) {
            if fv[0] != "late" {
                assert_eq!(fv[1], fv[0].replace("field", "value"));
            }
            assert!(
                seen.insert(fv[0].clone(), fv[1].clone()).is_none(),
                "{} returned twice",
                fv[0]
            );
        }
        calls += 1;
        assert!(calls <= 1000, "scan does not end");
        // A write during the scan does not disturb it.
        if calls == 50 {
            q::<i64>(&mut c, &["HSET", "h", "late", "x"]);
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    for i in 0..2000 {
        assert!(seen.contains_key(&format!("field:{i}")), "field:{i} missed");
    }
    // The field added midway is returned if its hash lies ahead of the cursor.
    let expected_calls = if seen.contains_key("late") { 201 } else { 200 };
    assert_eq!(calls, expected_calls, "COUNT 10 over 2000 fields");

    // MATCH filters after COUNT elements are taken.
    let (_, items): (String, Vec<String>) = q(
        &mut c,
        &["HSCAN", "h", "0", "COUNT", "100", "MATCH", "field:1*"],
    );
    assert!(items.len() <= 200);
    assert!(items.chunks(2).all(|fv| fv[0].starts_with("field:1")));

    // A long value makes even a small hash a hashtable, which honours COUNT.
    let long = "x".repeat(65);
    q::<i64>(&mut c, &["HSET", "big", "a", &long, "b", "1", "c", "2"]);
    let (cursor, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "big", "0", "COUNT", "1"]);
    assert_ne!(cursor, "0");
    assert_eq!(items.len(), 2);
}

#[test]
fn redis_cli_sees_hashes() {
    let s = Server::start();
    assert_eq!(s.cli(&["HSET", "h", "f", "v", "g", "w"]).trim(), "2");
    assert_eq!(s.cli(&["HGET", "h", "f"]).trim(), "v");
    let out = s.cli(&["-3", "HGETALL", "h"]);
    let lines: HashSet<&str> = out.lines().collect();
    // redis-cli prints a RESP3 map one "field value" pair per line.
    assert_eq!(lines, ["f v", "g w"].into());
    assert_eq!(s.cli(&["HINCRBYFLOAT", "h", "n", "2.5"]).trim(), "2.5");
    assert_eq!(
        s.cli(&["HSET", "h", "x"]).trim(),
        "ERR wrong number of arguments for 'hset' command"
    );
}

/// A reload rebuilds each hash under the current limits, as Redis's does: a
/// hashtable that shrank comes back a listpack (in its saved order), and a
/// small hash past lowered limits comes back a hashtable.
#[test]
fn debug_reload_rederives_hash_encodings() {
    let s = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut c = s.client();
    let long = "x".repeat(65);
    q::<i64>(
        &mut c,
        &["HSET", "shrunk", "a", "1", "long", &long, "b", "2"],
    );
    q::<i64>(&mut c, &["HDEL", "shrunk", "long"]);
    q::<i64>(&mut c, &["HSET", "small", "a", "1", "b", "2", "c", "3"]);
    let enc =
        |c: &mut redis::Connection, key: &str| -> String { q(c, &["OBJECT", "ENCODING", key]) };
    assert_eq!(enc(&mut c, "shrunk"), "hashtable");
    assert_eq!(enc(&mut c, "small"), "listpack");
    q::<String>(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(enc(&mut c, "shrunk"), "listpack");
    assert_eq!(enc(&mut c, "small"), "listpack");
    let all: Vec<String> = q(&mut c, &["HGETALL", "small"]);
    assert_eq!(
        all,
        ["a", "1", "b", "2", "c", "3"],
        "listpack order survives"
    );
    q::<String>(&mut c, &["CONFIG", "SET", "hash-max-listpack-entries", "2"]);
    q::<String>(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(enc(&mut c, "shrunk"), "listpack");
    assert_eq!(enc(&mut c, "small"), "hashtable");
    let mut fields: Vec<String> = q(&mut c, &["HKEYS", "small"]);
    fields.sort();
    assert_eq!(fields, ["a", "b", "c"]);
}
