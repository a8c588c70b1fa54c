//! Whole-binary tests of the non-blocking list commands, in RESP2 and RESP3 and
//! through redis-cli. Replies and error texts are those of Redis 7.0.

mod common;

use common::{q, Server};
use redis::{Connection, Value};

fn err(c: &mut Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<Value>(c) {
        Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("?")),
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
    }
}

fn range(c: &mut Connection, key: &str) -> Vec<String> {
    q(c, &["LRANGE", key, "0", "-1"])
}

#[test]
fn push_pop_len_and_empty_lists_vanish() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "l", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["RPUSHX", "l", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "l", "d", "e"]), 5);
    assert_eq!(q::<i64>(&mut c, &["LPUSHX", "l", "x", "y"]), 7);
    assert_eq!(q::<i64>(&mut c, &["RPUSHX", "l", "z"]), 8);
    assert_eq!(range(&mut c, "l"), ["y", "x", "c", "b", "a", "d", "e", "z"]);
    assert_eq!(
        q::<Option<String>>(&mut c, &["LPOP", "l"]).as_deref(),
        Some("y")
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["RPOP", "l"]).as_deref(),
        Some("z")
    );
    assert_eq!(q::<Vec<String>>(&mut c, &["LPOP", "l", "2"]), ["x", "c"]);
    // RPOP with a count answers in pop order.
    assert_eq!(q::<Vec<String>>(&mut c, &["RPOP", "l", "2"]), ["e", "d"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LPOP", "l", "0"]),
        Vec::<String>::new()
    );
    assert_eq!(q::<Vec<String>>(&mut c, &["RPOP", "l", "100"]), ["a", "b"]);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 0);
    assert_eq!(q::<Value>(&mut c, &["LPOP", "l"]), Value::Nil);
    // A missing key with a count is a null array in RESP2 (nil for the client).
    assert_eq!(q::<Value>(&mut c, &["LPOP", "l", "2"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["LPOP", "l", "0"]), Value::Nil);
    assert_eq!(s.cli(&["LLEN", "l"]).trim(), "0");
}

#[test]
fn pop_count_errors_and_arity() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "a"]);
    for bad in ["-1", "abc", "1.5"] {
        assert_eq!(
            err(&mut c, &["LPOP", "l", bad]),
            "ERR value is out of range, must be positive",
            "{bad}"
        );
    }
    assert!(err(&mut c, &["RPOP", "l", "1", "2"])
        .contains("wrong number of arguments for 'rpop' command"));
    assert!(err(&mut c, &["LPUSH", "l"]).contains("wrong number of arguments for 'lpush' command"));
    assert!(err(&mut c, &["LLEN"]).contains("wrong number of arguments for 'llen' command"));
    assert!(err(&mut c, &["LRANGE", "l", "0"]).contains("'lrange'"));
    assert!(err(&mut c, &["LSET", "l", "0"]).contains("'lset'"));
    assert!(err(&mut c, &["LINSERT", "l", "before", "a"]).contains("'linsert'"));
    assert!(err(&mut c, &["LMOVE", "a", "b", "left"]).contains("'lmove'"));
    assert!(err(&mut c, &["RPOPLPUSH", "a"]).contains("'rpoplpush'"));
    assert!(err(&mut c, &["LMPOP", "1", "l"]).contains("'lmpop'"));
    assert!(err(&mut c, &["LPOS", "l"]).contains("'lpos'"));
}

#[test]
fn range_index_set_with_negative_and_out_of_range_indexes() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "0", "1", "2", "3", "4", "5", "6"]);
    let r = |c: &mut Connection, a: &str, b: &str| q::<Vec<String>>(c, &["LRANGE", "l", a, b]);
    assert_eq!(r(&mut c, "-3", "-1"), ["4", "5", "6"]);
    assert_eq!(r(&mut c, "5", "2"), Vec::<String>::new());
    assert_eq!(r(&mut c, "-100", "100").len(), 7);
    assert_eq!(r(&mut c, "7", "10"), Vec::<String>::new());
    assert_eq!(r(&mut c, "2", "2"), ["2"]);
    assert_eq!(
        r(&mut c, "-9223372036854775808", "9223372036854775807").len(),
        7
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "nokey", "0", "-1"]),
        Vec::<String>::new()
    );
    assert_eq!(
        err(&mut c, &["LRANGE", "l", "1", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["LRANGE", "nokey", "x", "1"]),
        "ERR value is not an integer or out of range"
    );

    assert_eq!(
        q::<Option<String>>(&mut c, &["LINDEX", "l", "-1"]).as_deref(),
        Some("6")
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["LINDEX", "l", "0"]).as_deref(),
        Some("0")
    );
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "7"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "l", "-8"]), None);
    // Redis looks the key up before parsing the index.
    assert_eq!(q::<Option<String>>(&mut c, &["LINDEX", "nokey", "x"]), None);
    assert_eq!(
        err(&mut c, &["LINDEX", "l", "x"]),
        "ERR value is not an integer or out of range"
    );

    assert_eq!(q::<String>(&mut c, &["LSET", "l", "-1", "z"]), "OK");
    assert_eq!(q::<String>(&mut c, &["LSET", "l", "0", "a"]), "OK");
    assert_eq!(
        err(&mut c, &["LSET", "l", "7", "x"]),
        "ERR index out of range"
    );
    assert_eq!(
        err(&mut c, &["LSET", "l", "-8", "x"]),
        "ERR index out of range"
    );
    assert_eq!(err(&mut c, &["LSET", "nokey", "0", "x"]), "ERR no such key");
    assert_eq!(err(&mut c, &["LSET", "nokey", "x", "x"]), "ERR no such key");
    assert_eq!(
        err(&mut c, &["LSET", "l", "x", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(range(&mut c, "l"), ["a", "1", "2", "3", "4", "5", "z"]);
}

#[test]
fn insert_remove_trim() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(
        err(&mut c, &["LINSERT", "l", "middle", "a", "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["LINSERT", "nokey", "middle", "a", "x"]),
        "ERR syntax error"
    );
    assert_eq!(
        q::<i64>(&mut c, &["LINSERT", "nokey", "before", "a", "x"]),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "before", "zz", "x"]), -1);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "BEFORE", "a", "x"]), 4);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "after", "c", "y"]), 5);
    assert_eq!(q::<i64>(&mut c, &["LINSERT", "l", "After", "b", "z"]), 6);
    assert_eq!(range(&mut c, "l"), ["x", "a", "b", "z", "c", "y"]);

    q::<i64>(&mut c, &["RPUSH", "r", "a", "b", "a", "c", "a", "d", "a"]);
    assert_eq!(
        err(&mut c, &["LREM", "nokey", "x", "a"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q::<i64>(&mut c, &["LREM", "nokey", "1", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "2", "a"]), 2);
    assert_eq!(range(&mut c, "r"), ["b", "c", "a", "d", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "-1", "a"]), 1);
    assert_eq!(range(&mut c, "r"), ["b", "c", "a", "d"]);
    q::<i64>(&mut c, &["RPUSH", "r", "a", "a"]);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "0", "a"]), 3);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "0", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "-5", "c"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "5", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LREM", "r", "0", "d"]), 1);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "r"]), 0);

    q::<i64>(&mut c, &["RPUSH", "t", "0", "1", "2", "3", "4", "5", "6"]);
    assert_eq!(
        err(&mut c, &["LTRIM", "nokey", "x", "1"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(q::<String>(&mut c, &["LTRIM", "nokey", "0", "1"]), "OK");
    assert_eq!(q::<String>(&mut c, &["LTRIM", "t", "1", "-2"]), "OK");
    assert_eq!(range(&mut c, "t"), ["1", "2", "3", "4", "5"]);
    assert_eq!(q::<String>(&mut c, &["LTRIM", "t", "-2", "100"]), "OK");
    assert_eq!(range(&mut c, "t"), ["4", "5"]);
    assert_eq!(q::<String>(&mut c, &["LTRIM", "t", "5", "1"]), "OK");
    assert_eq!(q::<i64>(&mut c, &["LLEN", "t"]), 0);
}

#[test]
fn lpos_options_and_errors() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c", "a", "b", "c"]);
    assert_eq!(q::<Option<i64>>(&mut c, &["LPOS", "l", "c"]), Some(2));
    assert_eq!(
        q::<Option<i64>>(&mut c, &["LPOS", "l", "c", "RANK", "2"]),
        Some(5)
    );
    assert_eq!(
        q::<Option<i64>>(&mut c, &["LPOS", "l", "c", "RANK", "3"]),
        None
    );
    assert_eq!(
        q::<Option<i64>>(&mut c, &["LPOS", "l", "a", "RANK", "-1"]),
        Some(3)
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "b", "RANK", "-2", "COUNT", "5"]),
        [1]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "a", "COUNT", "0"]),
        [0, 3]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "a", "COUNT", "0", "RANK", "-1"]),
        [3, 0]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "a", "MAXLEN", "3", "COUNT", "0"]),
        [0]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "x", "COUNT", "0"]),
        Vec::<i64>::new()
    );
    assert_eq!(q::<Option<i64>>(&mut c, &["LPOS", "nokey", "a"]), None);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "nokey", "a", "COUNT", "1"]),
        Vec::<i64>::new()
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "RANK", "0"]),
        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "COUNT", "-1"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "COUNT", "x"]),
        "ERR COUNT can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "MAXLEN", "-1"]),
        "ERR MAXLEN can't be negative"
    );
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "RANK", "x"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(err(&mut c, &["LPOS", "l", "a", "RANK"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["LPOS", "l", "a", "FOO", "1"]),
        "ERR syntax error"
    );
}

#[test]
fn lmove_rpoplpush_and_rotation() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "l", "l", "LEFT", "RIGHT"]),
        "a"
    );
    assert_eq!(range(&mut c, "l"), ["b", "c", "a"]);
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "l", "l"]), "a");
    assert_eq!(range(&mut c, "l"), ["a", "b", "c"]);
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "l", "d", "right", "left"]),
        "c"
    );
    assert_eq!(
        q::<String>(&mut c, &["LMOVE", "l", "d", "left", "right"]),
        "a"
    );
    assert_eq!(range(&mut c, "d"), ["c", "a"]);
    assert_eq!(
        err(&mut c, &["LMOVE", "l", "d", "up", "left"]),
        "ERR syntax error"
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["LMOVE", "nokey", "d", "left", "left"]),
        None
    );
    assert_eq!(
        q::<Option<String>>(&mut c, &["RPOPLPUSH", "nokey", "d"]),
        None
    );
    assert_eq!(q::<String>(&mut c, &["RPOPLPUSH", "l", "d"]), "b");
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 0);
    assert_eq!(range(&mut c, "d"), ["b", "c", "a"]);
}

#[test]
fn lmpop_arguments_and_replies() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "c"]);
    for (args, msg) in [
        (
            &["LMPOP", "0", "l", "left"][..],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["LMPOP", "abc", "l", "left"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["LMPOP", "-1", "l", "left"],
            "ERR numkeys should be greater than 0",
        ),
        (&["LMPOP", "2", "l", "left"], "ERR syntax error"),
        (
            &["LMPOP", "9223372036854775807", "l", "left"],
            "ERR syntax error",
        ),
        (&["LMPOP", "1", "l", "up"], "ERR syntax error"),
        (
            &["LMPOP", "1", "l", "left", "count", "0"],
            "ERR count should be greater than 0",
        ),
        (
            &["LMPOP", "1", "l", "left", "count", "x"],
            "ERR count should be greater than 0",
        ),
        (
            &["LMPOP", "1", "l", "left", "count", "1", "count", "1"],
            "ERR syntax error",
        ),
        (&["LMPOP", "1", "l", "left", "foo"], "ERR syntax error"),
    ] {
        assert_eq!(err(&mut c, args), msg, "{args:?}");
    }
    assert_eq!(
        q::<Value>(&mut c, &["LMPOP", "1", "nokey", "left"]),
        Value::Nil
    );
    let (key, elems): (String, Vec<String>) =
        q(&mut c, &["LMPOP", "2", "nokey", "l", "right", "COUNT", "2"]);
    assert_eq!(
        (key.as_str(), elems),
        ("l", vec!["c".to_string(), "b".to_string()])
    );
    let (key, elems): (String, Vec<String>) =
        q(&mut c, &["LMPOP", "1", "l", "LEFT", "count", "99"]);
    assert_eq!((key.as_str(), elems), ("l", vec!["a".to_string()]));
    assert_eq!(q::<i64>(&mut c, &["LLEN", "l"]), 0);
}

#[test]
fn binary_elements_round_trip() {
    let s = Server::start();
    let mut c = s.client();
    let elem: &[u8] = b"a\r\n\0b\xff";
    let n: i64 = redis::cmd("RPUSH")
        .arg(&b"k\0"[..])
        .arg(elem)
        .arg(&b""[..])
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let all: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&b"k\0"[..])
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert_eq!(all, vec![elem.to_vec(), vec![]]);
    let pos: Option<i64> = redis::cmd("LPOS")
        .arg(&b"k\0"[..])
        .arg(elem)
        .query(&mut c)
        .unwrap();
    assert_eq!(pos, Some(0));
    let removed: i64 = redis::cmd("LREM")
        .arg(&b"k\0"[..])
        .arg(0)
        .arg(&b""[..])
        .query(&mut c)
        .unwrap();
    assert_eq!(removed, 1);
    let popped: Vec<u8> = redis::cmd("RPOP").arg(&b"k\0"[..]).query(&mut c).unwrap();
    assert_eq!(popped, elem);
}

#[test]
fn resp3_nulls_and_arrays() {
    let s = Server::start();
    let mut c = s.client_resp3();
    assert_eq!(q::<Value>(&mut c, &["LPOP", "nokey"]), Value::Nil);
    assert_eq!(q::<Value>(&mut c, &["LPOP", "nokey", "3"]), Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["LMPOP", "1", "nokey", "left"]),
        Value::Nil
    );
    assert_eq!(q::<Value>(&mut c, &["LINDEX", "nokey", "0"]), Value::Nil);
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LPOP", "l", "0"]),
        Vec::<String>::new()
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]),
        ["a", "b"]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["LPOS", "l", "b", "COUNT", "0"]),
        [1]
    );
}

#[test]
fn redis_cli_shows_lists_like_redis() {
    let s = Server::start();
    assert_eq!(s.cli(&["RPUSH", "l", "a", "b", "c"]).trim(), "3");
    assert_eq!(s.cli(&["LRANGE", "l", "0", "-1"]), "a\nb\nc\n");
    assert_eq!(s.cli(&["LPOP", "nokey", "2"]).trim(), "");
    assert_eq!(s.cli(&["LINDEX", "l", "5"]).trim(), "");
    assert_eq!(
        s.cli(&["LSET", "nokey", "0", "x"]).trim(),
        "ERR no such key"
    );
    assert_eq!(
        s.cli(&["LMPOP", "1", "l", "right", "COUNT", "2"]),
        "l\nc\nb\n"
    );
    assert_eq!(s.cli(&["-3", "LPOS", "l", "zz"]).trim(), "");
}
