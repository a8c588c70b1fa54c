//! Whole-binary tests of the key-space commands: DEL/UNLINK, EXISTS, TYPE, TOUCH,
//! KEYS, SCAN (completeness under concurrent writes, MATCH/TYPE filters),
//! RANDOMKEY, RENAME/RENAMENX, COPY, MOVE (database isolation), the EXPIRE and
//! TTL families, PERSIST, and active expiry of keys nobody reads.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::Server;
use redis::{Connection, Value};

fn run<T: redis::FromRedisValue>(c: &mut Connection, line: &str) -> T {
    let mut words = line.split(' ');
    let mut cmd = redis::cmd(words.next().unwrap());
    for w in words {
        cmd.arg(w);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(c: &mut Connection, line: &str) -> String {
    let mut words = line.split(' ');
    let mut cmd = redis::cmd(words.next().unwrap());
    for w in words {
        cmd.arg(w);
    }
    let e = cmd
        .query::<Value>(c)
        .expect_err(&format!("{line} should fail"));
    format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or(""))
}

/// One SCAN call: the next cursor and the keys.
fn scan_once(c: &mut Connection, cursor: &str, extra: &[&str]) -> (String, Vec<Vec<u8>>) {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor);
    for e in extra {
        cmd.arg(*e);
    }
    cmd.query(c).expect("scan")
}

/// A whole scan: every key returned, with repeats (bounded in calls).
fn scan_all(c: &mut Connection, extra: &[&str]) -> Vec<Vec<u8>> {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let (next, keys) = scan_once(c, &cursor, extra);
        out.extend(keys);
        if next == "0" {
            return out;
        }
        cursor = next;
    }
    panic!("scan did not finish");
}

fn fill(c: &mut Connection, prefix: &str, n: usize) {
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("SET").arg(format!("{prefix}{i}")).arg(i).ignore();
    }
    pipe.query::<()>(c).expect("fill");
}

const NOT_INT: &str = "ERR value is not an integer or out of range";

#[test]
fn del_exists_type_touch() {
    let s = Server::start();
    let mut c = s.client();
    run::<()>(&mut c, "MSET a 1 b 2 c 3");
    assert_eq!(
        run::<i64>(&mut c, "EXISTS a a b nokey"),
        3,
        "duplicates count"
    );
    assert_eq!(run::<i64>(&mut c, "TOUCH a b nokey"), 2);
    assert_eq!(run::<String>(&mut c, "TYPE a"), "string");
    assert_eq!(run::<String>(&mut c, "TYPE nokey"), "none");
    assert_eq!(run::<i64>(&mut c, "DEL a a nokey"), 1);
    assert_eq!(run::<i64>(&mut c, "UNLINK b c"), 2);
    assert_eq!(run::<i64>(&mut c, "EXISTS a b c"), 0);
    let key: &[u8] = b"\0bin\r\n\xff";
    redis::cmd("SET")
        .arg(key)
        .arg("v")
        .query::<()>(&mut c)
        .unwrap();
    let n: i64 = redis::cmd("EXISTS").arg(key).query(&mut c).unwrap();
    assert_eq!(n, 1);
    let all: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(all, [key.to_vec()]);
    assert_eq!(scan_all(&mut c, &["MATCH", "\0bin*"]), [key.to_vec()]);
    assert_eq!(run::<Vec<u8>>(&mut c, "RANDOMKEY"), key.to_vec());
    let n: i64 = redis::cmd("DEL").arg(key).query(&mut c).unwrap();
    assert_eq!(n, 1);
    // A key whose time ran out is not counted by DEL.
    run::<()>(&mut c, "SET gone v PX 1");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(run::<i64>(&mut c, "DEL gone"), 0);
}

#[test]
fn keys_glob_patterns() {
    let s = Server::start();
    let mut c = s.client();
    run::<()>(
        &mut c,
        "MSET hello 1 hallo 2 hxllo 3 hllo 4 heeeello 5 user:1:name 6 a*b 7",
    );
    let mut sorted = |pat: &str| {
        let mut v: Vec<String> = redis::cmd("KEYS").arg(pat).query(&mut c).unwrap();
        v.sort();
        v
    };
    assert_eq!(sorted("h?llo"), ["hallo", "hello", "hxllo"]);
    assert_eq!(
        sorted("h*llo"),
        ["hallo", "heeeello", "hello", "hllo", "hxllo"]
    );
    assert_eq!(sorted("h[ae]llo"), ["hallo", "hello"]);
    assert_eq!(sorted("h[^e]llo"), ["hallo", "hxllo"]);
    assert_eq!(sorted("h[a-b]llo"), ["hallo"]);
    assert_eq!(sorted("user:*:name"), ["user:1:name"]);
    assert_eq!(sorted("a\\*b"), ["a*b"]);
    assert_eq!(sorted("*").len(), 7);
    assert!(sorted("nomatch*").is_empty());
    assert_eq!(
        err(&mut c, "KEYS"),
        "ERR wrong number of arguments for 'keys' command"
    );
}

#[test]
fn scan_returns_every_key_exactly_once() {
    let s = Server::start();
    let mut c = s.client();
    fill(&mut c, "key:", 1500);
    let keys = scan_all(&mut c, &["COUNT", "7"]);
    assert_eq!(keys.len(), 1500);
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    for k in keys {
        *seen.entry(k).or_default() += 1;
    }
    assert_eq!(seen.len(), 1500);
    assert!(seen.values().all(|&n| n == 1));
}

#[test]
fn scan_is_complete_while_keys_are_added() {
    let s = Server::start();
    let mut c = s.client();
    let mut writer = s.client();
    fill(&mut c, "old:", 1200);
    let mut cursor = "0".to_string();
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut added = 0;
    for _ in 0..10_000 {
        let (next, keys) = scan_once(&mut c, &cursor, &["COUNT", "7"]);
        for k in keys {
            *seen.entry(k).or_default() += 1;
        }
        // Another client adds and deletes keys between the calls.
        for _ in 0..3 {
            run::<()>(&mut writer, &format!("SET new:{added} v"));
            added += 1;
        }
        run::<()>(&mut writer, &format!("DEL new:{}", added / 2));
        if next == "0" {
            break;
        }
        cursor = next;
    }
    for i in 0..1200 {
        let k = format!("old:{i}").into_bytes();
        assert_eq!(seen.get(&k), Some(&1), "old:{i} must be returned once");
    }
    assert!(seen.values().all(|&n| n == 1), "no key is returned twice");
    assert!(added > 400, "the writer ran during the scan");
}

#[test]
fn scan_filters_and_errors() {
    let s = Server::start();
    let mut c = s.client();
    fill(&mut c, "user:", 100);
    fill(&mut c, "item:", 50);
    let users = scan_all(&mut c, &["MATCH", "user:*", "COUNT", "7"]);
    assert_eq!(users.len(), 100);
    assert!(users.iter().all(|k| k.starts_with(b"user:")));
    assert_eq!(scan_all(&mut c, &["MATCH", "item:1?"]).len(), 10);
    assert_eq!(scan_all(&mut c, &["TYPE", "string"]).len(), 150);
    assert_eq!(
        scan_all(&mut c, &["TYPE", "STRING", "MATCH", "*"]).len(),
        150
    );
    assert!(scan_all(&mut c, &["TYPE", "hash"]).is_empty());
    assert!(scan_all(&mut c, &["TYPE", "nosuchtype"]).is_empty());

    // COUNT bounds the work per call, not the results.
    let (next, keys) = scan_once(&mut c, "0", &["COUNT", "10", "MATCH", "nomatch"]);
    assert!(keys.is_empty());
    assert_ne!(next, "0");
    // A single call with a large COUNT finishes the walk.
    let (next, keys) = scan_once(&mut c, "0", &["COUNT", "1000"]);
    assert_eq!((next.as_str(), keys.len()), ("0", 150));
    // Any number is a cursor (a position in hash order); a small one starts
    // before nearly every key, and a cursor resumes on another connection.
    assert_eq!(scan_all_from(&mut c, "123456789").len(), 150);
    let (mid, first) = scan_once(&mut c, "0", &["COUNT", "20"]);
    let mut other = s.client();
    let rest = scan_all_from(&mut other, &mid);
    assert_eq!(first.len() + rest.len(), 150);

    assert_eq!(err(&mut c, "SCAN abc"), "ERR invalid cursor");
    assert_eq!(err(&mut c, "SCAN 1.5"), "ERR invalid cursor");
    for bad in [
        "SCAN 0 COUNT 0",
        "SCAN 0 COUNT -1",
        "SCAN 0 COUNT",
        "SCAN 0 MATCH",
        "SCAN 0 foo bar",
    ] {
        assert_eq!(err(&mut c, bad), "ERR syntax error", "{bad}");
    }
    assert_eq!(err(&mut c, "SCAN 0 COUNT x"), NOT_INT);
}

fn scan_all_from(c: &mut Connection, start: &str) -> Vec<Vec<u8>> {
    let (mut cursor, mut out) = scan_once(c, start, &[]);
    for _ in 0..10_000 {
        if cursor == "0" {
            return out;
        }
        let (next, keys) = scan_once(c, &cursor, &[]);
        out.extend(keys);
        cursor = next;
    }
    panic!("scan did not finish");
}

/// RANDOMKEY is uniform: 20,000 picks over 20 keys land ~1,000 times on each
/// (a binomial sd of ~31; 800..1,200 is a loose bound that still catches a
/// skew towards part of the hash order).
#[test]
fn randomkey_is_uniform() {
    let s = Server::start();
    let mut c = s.client();
    fill(&mut c, "u", 20);
    let mut hits: HashMap<String, u32> = HashMap::new();
    for _ in 0..20 {
        let mut pipe = redis::pipe();
        for _ in 0..1000 {
            pipe.cmd("RANDOMKEY");
        }
        let picks: Vec<String> = pipe.query(&mut c).unwrap();
        for k in picks {
            *hits.entry(k).or_default() += 1;
        }
    }
    assert_eq!(hits.len(), 20);
    assert!(hits.values().all(|&n| (800..1200).contains(&n)), "{hits:?}");
}

#[test]
fn randomkey_picks_live_keys() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(run::<Option<String>>(&mut c, "RANDOMKEY"), None);
    fill(&mut c, "k", 20);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let k: String = run(&mut c, "RANDOMKEY");
        assert!(k.starts_with('k'));
        seen.insert(k);
    }
    assert!(seen.len() > 10, "picks are spread: {}", seen.len());
    let mut pipe = redis::pipe();
    for i in 0..20 {
        pipe.cmd("PEXPIRE").arg(format!("k{i}")).arg(1).ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    run::<()>(&mut c, "SET live v");
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(run::<String>(&mut c, "RANDOMKEY"), "live");
}

#[test]
fn rename_and_renamenx() {
    let s = Server::start();
    let mut c = s.client();
    run::<()>(&mut c, "SET a 1");
    run::<()>(&mut c, "EXPIRE a 100");
    assert_eq!(run::<String>(&mut c, "RENAME a b"), "OK");
    assert_eq!(run::<i64>(&mut c, "EXISTS a"), 0);
    assert_eq!(run::<String>(&mut c, "GET b"), "1");
    assert_eq!(run::<i64>(&mut c, "TTL b"), 100, "the TTL travels");
    run::<()>(&mut c, "SET c 2");
    assert_eq!(run::<String>(&mut c, "RENAME c b"), "OK");
    assert_eq!(run::<i64>(&mut c, "TTL b"), -1, "the source had no TTL");
    assert_eq!(run::<String>(&mut c, "RENAME b b"), "OK");
    assert_eq!(run::<String>(&mut c, "GET b"), "2");
    assert_eq!(err(&mut c, "RENAME nokey x"), "ERR no such key");
    assert_eq!(err(&mut c, "RENAMENX nokey x"), "ERR no such key");
    run::<()>(&mut c, "SET d 3");
    assert_eq!(run::<i64>(&mut c, "RENAMENX b d"), 0);
    assert_eq!(run::<i64>(&mut c, "RENAMENX b b"), 0);
    assert_eq!(run::<i64>(&mut c, "RENAMENX b e"), 1);
    assert_eq!(run::<String>(&mut c, "GET e"), "2");
}

#[test]
fn copy_and_move_across_databases() {
    let s = Server::start();
    let mut c = s.client();
    let mut other = s.client();
    run::<()>(&mut other, "SELECT 5");
    run::<()>(&mut c, "SET src v");
    run::<()>(&mut c, "PEXPIRE src 100000");
    assert_eq!(run::<i64>(&mut c, "COPY src dst"), 1);
    assert_eq!(run::<i64>(&mut c, "COPY src dst"), 0);
    assert_eq!(run::<i64>(&mut c, "COPY src dst REPLACE"), 1);
    assert!(
        run::<i64>(&mut c, "PTTL dst") > 99_000,
        "COPY keeps the TTL"
    );
    assert_eq!(run::<i64>(&mut c, "COPY nokey dst2"), 0);
    assert_eq!(run::<i64>(&mut c, "COPY src src DB 5"), 1);
    assert_eq!(run::<String>(&mut other, "GET src"), "v");
    assert!(run::<i64>(&mut other, "PTTL src") > 99_000);
    // The copy is independent of the original.
    run::<()>(&mut other, "APPEND src 2");
    assert_eq!(run::<String>(&mut c, "GET src"), "v");

    assert_eq!(
        run::<i64>(&mut c, "MOVE src 5"),
        0,
        "the target holds the key"
    );
    assert_eq!(run::<i64>(&mut c, "MOVE dst 5"), 1);
    assert_eq!(run::<i64>(&mut c, "EXISTS dst"), 0);
    assert_eq!(run::<String>(&mut other, "GET dst"), "v");
    assert!(
        run::<i64>(&mut other, "PTTL dst") > 99_000,
        "MOVE keeps the TTL"
    );
    assert_eq!(run::<i64>(&mut c, "MOVE nokey 5"), 0);
    assert_eq!(run::<i64>(&mut c, "DEL src"), 1);
    assert_eq!(run::<String>(&mut other, "GET src"), "v2");

    let same = "ERR source and destination objects are the same";
    assert_eq!(err(&mut c, "COPY a a"), same);
    assert_eq!(err(&mut c, "MOVE a 0"), same);
    assert_eq!(
        err(&mut c, "COPY a b DB 16"),
        "ERR DB index is out of range"
    );
    assert_eq!(err(&mut c, "MOVE a 16"), "ERR DB index is out of range");
    assert_eq!(err(&mut c, "MOVE a -1"), "ERR DB index is out of range");
    assert_eq!(err(&mut c, "MOVE a x"), NOT_INT);
    assert_eq!(err(&mut c, "COPY a b DB x"), NOT_INT);
    assert_eq!(
        err(&mut c, "MOVE a 4294967296"),
        "ERR value is out of range, value must between -2147483648 and 2147483647"
    );
    assert_eq!(err(&mut c, "COPY a b DB"), "ERR syntax error");
    assert_eq!(err(&mut c, "COPY a b foo"), "ERR syntax error");
}

#[test]
fn expire_family_and_conditions() {
    let s = Server::start();
    let mut c = s.client();
    run::<()>(&mut c, "SET k v");
    assert_eq!(run::<i64>(&mut c, "TTL k"), -1);
    assert_eq!(run::<i64>(&mut c, "PTTL k"), -1);
    assert_eq!(run::<i64>(&mut c, "EXPIRETIME k"), -1);
    assert_eq!(run::<i64>(&mut c, "TTL nokey"), -2);
    assert_eq!(run::<i64>(&mut c, "PTTL nokey"), -2);
    assert_eq!(run::<i64>(&mut c, "PEXPIRETIME nokey"), -2);
    assert_eq!(run::<i64>(&mut c, "EXPIRE nokey 10"), 0);

    // No TTL counts as infinite: GT never applies, LT always does.
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 100 XX"), 0);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 100 GT"), 0);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 100 LT"), 1);
    assert_eq!(run::<i64>(&mut c, "TTL k"), 100);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 200 NX"), 0);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 50 GT"), 0);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 200 gt"), 1);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 300 LT"), 0);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 150 XX LT"), 1);
    assert_eq!(run::<i64>(&mut c, "TTL k"), 150);
    assert_eq!(run::<i64>(&mut c, "PERSIST k"), 1);
    assert_eq!(run::<i64>(&mut c, "PERSIST k"), 0);
    assert_eq!(run::<i64>(&mut c, "PERSIST nokey"), 0);
    assert_eq!(run::<i64>(&mut c, "EXPIRE k 10 NX"), 1);

    assert_eq!(run::<i64>(&mut c, "PEXPIRE k 123456"), 1);
    let pttl: i64 = run(&mut c, "PTTL k");
    assert!((122_000..=123_456).contains(&pttl), "{pttl}");
    assert_eq!(run::<i64>(&mut c, "EXPIREAT k 99999999999"), 1);
    assert_eq!(run::<i64>(&mut c, "EXPIRETIME k"), 99_999_999_999);
    assert_eq!(run::<i64>(&mut c, "PEXPIRETIME k"), 99_999_999_999_000);
    assert_eq!(run::<i64>(&mut c, "PEXPIREAT k 99999999999499"), 1);
    assert_eq!(run::<i64>(&mut c, "EXPIRETIME k"), 99_999_999_999);
    assert_eq!(run::<i64>(&mut c, "PEXPIREAT k 99999999999500"), 1);
    assert_eq!(
        run::<i64>(&mut c, "EXPIRETIME k"),
        100_000_000_000,
        "rounds"
    );

    // A time in the past deletes the key and answers 1.
    for cmd in [
        "EXPIRE k -1",
        "PEXPIRE k 0",
        "EXPIREAT k 1",
        "PEXPIREAT k 1",
    ] {
        run::<()>(&mut c, "SET k v");
        assert_eq!(run::<i64>(&mut c, cmd), 1, "{cmd}");
        assert_eq!(run::<i64>(&mut c, "EXISTS k"), 0, "{cmd}");
    }

    run::<()>(&mut c, "SET k v");
    let nx = "ERR NX and XX, GT or LT options at the same time are not compatible";
    for bad in [
        "EXPIRE k 10 NX XX",
        "EXPIRE k 10 NX GT",
        "PEXPIRE k 10 LT NX",
    ] {
        assert_eq!(err(&mut c, bad), nx, "{bad}");
    }
    assert_eq!(
        err(&mut c, "EXPIRE k 10 GT LT"),
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(err(&mut c, "EXPIRE k 10 FOO"), "ERR Unsupported option FOO");
    for (bad, name) in [
        ("EXPIRE k 9223372036854775807", "expire"),
        ("PEXPIRE k 9223372036854775807", "pexpire"),
        ("EXPIREAT k -9223372036854775808", "expireat"),
        ("EXPIREAT k 9223372036854776", "expireat"),
    ] {
        assert_eq!(
            err(&mut c, bad),
            format!("ERR invalid expire time in '{name}' command"),
            "{bad}"
        );
    }
    assert_eq!(err(&mut c, "EXPIRE k x"), NOT_INT);
    assert_eq!(
        run::<i64>(&mut c, "TTL k"),
        -1,
        "failed EXPIREs change nothing"
    );
}

#[test]
fn keys_nobody_reads_expire_actively() {
    let s = Server::start();
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.cmd("SET")
            .arg(format!("short:{i}"))
            .arg("v")
            .arg("PX")
            .arg(50)
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    run::<()>(&mut c, "SET keep v");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let keys: Vec<String> = run(&mut c, "KEYS *");
        // DBSIZE counts keys not yet reclaimed, so once it is available it shows
        // that the server removed them without anyone reading them.
        let dbsize = redis::cmd("DBSIZE").query::<i64>(&mut c).ok();
        if keys == ["keep"] && dbsize.is_none_or(|n| n == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "keys left: {} {dbsize:?}",
            keys.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(run::<String>(&mut c, "GET keep"), "v");
}

#[test]
fn other_types_move_and_wake_waiters() {
    let s = Server::start();
    let mut c = s.client();
    run::<()>(&mut c, "RPUSH src a b");
    run::<()>(&mut c, "SET str v");
    assert_eq!(run::<String>(&mut c, "TYPE src"), "list");
    assert_eq!(scan_all(&mut c, &["TYPE", "list"]), [b"src".to_vec()]);
    assert_eq!(scan_all(&mut c, &["TYPE", "string"]), [b"str".to_vec()]);
    // A renamed, copied or moved list wakes clients blocked on its new name.
    for (setup, cmd, db) in [
        ("RPUSH src a b", "RENAME src dst", 0),
        ("RPUSH src a b", "COPY src dst", 0),
        ("RPUSH src a b", "COPY src dst DB 3", 3),
        ("RPUSH src a b", "MOVE src 3", 3),
    ] {
        run::<()>(&mut c, "DEL src dst");
        let mut waiter = s.client();
        run::<()>(&mut waiter, &format!("SELECT {db}"));
        run::<()>(&mut waiter, "DEL dst src");
        let name = if cmd.starts_with("MOVE") {
            "src"
        } else {
            "dst"
        };
        let handle = std::thread::spawn(move || {
            redis::cmd("BLPOP")
                .arg(name)
                .arg(10)
                .query::<Option<(String, String)>>(&mut waiter)
        });
        std::thread::sleep(Duration::from_millis(200));
        run::<()>(&mut c, setup);
        run::<()>(&mut c, cmd);
        let got = handle.join().unwrap().expect("blpop");
        assert_eq!(got, Some((name.to_string(), "a".to_string())), "{cmd}");
    }
}

#[test]
fn resp3_and_redis_cli() {
    let s = Server::start();
    let mut c = s.client_resp3();
    run::<()>(&mut c, "SET a 1");
    assert_eq!(
        run::<Value>(&mut c, "TYPE a"),
        Value::SimpleString("string".into())
    );
    assert_eq!(
        run::<Value>(&mut c, "RANDOMKEY"),
        Value::BulkString(b"a".to_vec())
    );
    assert_eq!(run::<Value>(&mut c, "TTL a"), Value::Int(-1));
    assert_eq!(
        run::<Value>(&mut c, "SCAN 0"),
        Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![Value::BulkString(b"a".to_vec())])
        ])
    );
    run::<()>(&mut c, "DEL a");
    assert_eq!(run::<Value>(&mut c, "RANDOMKEY"), Value::Nil);

    assert_eq!(s.cli(&["SET", "x", "1"]).trim(), "OK");
    assert_eq!(s.cli(&["EXPIRE", "x", "100"]).trim(), "1");
    assert_eq!(s.cli(&["TTL", "x"]).trim(), "100");
    assert_eq!(s.cli(&["TYPE", "x"]).trim(), "string");
    assert_eq!(s.cli(&["KEYS", "*"]).trim(), "x");
    assert_eq!(s.cli(&["RENAME", "nokey", "y"]).trim(), "ERR no such key");
    assert_eq!(s.cli(&["SCAN", "0"]), "0\nx\n");
}

#[test]
fn arity_errors() {
    let s = Server::start();
    let mut c = s.client();
    for (cmd, name) in [
        ("DEL", "del"),
        ("UNLINK", "unlink"),
        ("EXISTS", "exists"),
        ("TYPE", "type"),
        ("TYPE a b", "type"),
        ("KEYS a b", "keys"),
        ("SCAN", "scan"),
        ("RANDOMKEY a", "randomkey"),
        ("RENAME a", "rename"),
        ("RENAMENX a b c", "renamenx"),
        ("COPY a", "copy"),
        ("MOVE a", "move"),
        ("TOUCH", "touch"),
        ("EXPIRE a", "expire"),
        ("PEXPIRE a", "pexpire"),
        ("EXPIREAT a", "expireat"),
        ("PEXPIREAT a", "pexpireat"),
        ("TTL", "ttl"),
        ("PTTL a b", "pttl"),
        ("EXPIRETIME", "expiretime"),
        ("PEXPIRETIME", "pexpiretime"),
        ("PERSIST", "persist"),
    ] {
        assert_eq!(
            err(&mut c, cmd),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{cmd}"
        );
    }
}
