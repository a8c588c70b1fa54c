//! Whole-binary tests of the string commands: GET/SET and every SET option,
//! SETNX/SETEX/PSETEX, GETSET/GETDEL/GETEX, MGET/MSET/MSETNX, APPEND, STRLEN,
//! GETRANGE/SUBSTR, SETRANGE and the counters, over RESP2, RESP3 and redis-cli.
//! (Reply-by-reply comparison with redis-server lives in `differential.rs`.)

mod common;

use common::Server;
use redis::{Connection, Value};

fn q<T: redis::FromRedisValue>(c: &mut Connection, args: &[&[u8]]) -> T {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

/// Runs a command of plain-text words.
fn run<T: redis::FromRedisValue>(c: &mut Connection, line: &str) -> T {
    let words: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
    q(c, &words)
}

/// The full error line a command answers with (code and detail).
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

const SYNTAX: &str = "ERR syntax error";
const NOT_INT: &str = "ERR value is not an integer or out of range";

#[test]
fn set_options_and_their_errors() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(run::<String>(&mut c, "SET k v"), "OK");
    assert_eq!(run::<String>(&mut c, "GET k"), "v");
    assert_eq!(run::<Option<String>>(&mut c, "GET nokey"), None);

    // NX / XX.
    assert_eq!(run::<Option<String>>(&mut c, "SET k w NX"), None);
    assert_eq!(run::<Option<String>>(&mut c, "SET k2 w XX"), None);
    assert_eq!(run::<i64>(&mut c, "EXISTS k2"), 0);
    assert_eq!(run::<String>(&mut c, "SET k w XX"), "OK");
    assert_eq!(run::<String>(&mut c, "set k3 w nx"), "OK");
    // GET alone and with NX / XX.
    assert_eq!(
        run::<Option<String>>(&mut c, "SET k x GET"),
        Some("w".into())
    );
    assert_eq!(
        run::<Option<String>>(&mut c, "SET k y NX GET"),
        Some("x".into())
    );
    assert_eq!(run::<String>(&mut c, "GET k"), "x");
    assert_eq!(run::<Option<String>>(&mut c, "SET new v GET"), None);
    assert_eq!(run::<Option<String>>(&mut c, "SET none v XX GET"), None);
    assert_eq!(run::<i64>(&mut c, "EXISTS none"), 0);

    // Expiry options.
    run::<()>(&mut c, "SET t v EX 100");
    assert_eq!(run::<i64>(&mut c, "TTL t"), 100);
    run::<()>(&mut c, "SET t v PX 100000");
    assert!((99_000..=100_000).contains(&run::<i64>(&mut c, "PTTL t")));
    run::<()>(&mut c, "SET t v EX 10 EX 20");
    assert_eq!(
        run::<i64>(&mut c, "TTL t"),
        20,
        "a repeated option: last wins"
    );
    run::<()>(&mut c, "SET t v EXAT 99999999999");
    assert_eq!(run::<i64>(&mut c, "EXPIRETIME t"), 99_999_999_999);
    run::<()>(&mut c, "SET t v PXAT 99999999999123");
    assert_eq!(run::<i64>(&mut c, "PEXPIRETIME t"), 99_999_999_999_123);
    run::<()>(&mut c, "SET t w KEEPTTL");
    assert_eq!(run::<i64>(&mut c, "PEXPIRETIME t"), 99_999_999_999_123);
    run::<()>(&mut c, "SET t w");
    assert_eq!(run::<i64>(&mut c, "TTL t"), -1, "SET clears the TTL");
    run::<()>(&mut c, "SET t v EXAT 1");
    assert_eq!(run::<i64>(&mut c, "EXISTS t"), 0, "a time in the past");

    for bad in [
        "SET k v NX XX",
        "SET k v XX NX",
        "SET k v EX 10 PX 100",
        "SET k v PXAT 10 EXAT 100",
        "SET k v KEEPTTL EX 10",
        "SET k v EX 10 KEEPTTL",
        "SET k v EX",
        "SET k v PERSIST",
        "SET k v foo",
        "SET k v NX NX XX",
    ] {
        assert_eq!(err(&mut c, bad), SYNTAX, "{bad}");
    }
    for bad in [
        "SET k v EX 0",
        "SET k v EX -1",
        "SET k v PX 0",
        "SET k v EXAT 0",
        "SET k v EX 9223372036854775",
        "SET k v PX 9223372036854775807",
    ] {
        assert_eq!(
            err(&mut c, bad),
            "ERR invalid expire time in 'set' command",
            "{bad}"
        );
    }
    assert_eq!(err(&mut c, "SET k v EX abc"), NOT_INT);
    assert_eq!(err(&mut c, "SET k v EX 1.5"), NOT_INT);
    assert_eq!(
        err(&mut c, "SET k"),
        "ERR wrong number of arguments for 'set' command"
    );
    assert_eq!(
        run::<String>(&mut c, "GET k"),
        "x",
        "failed SETs change nothing"
    );
}

#[test]
fn setnx_setex_getset_getdel_getex() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(run::<i64>(&mut c, "SETNX a 1"), 1);
    assert_eq!(run::<i64>(&mut c, "SETNX a 2"), 0);
    assert_eq!(run::<String>(&mut c, "GET a"), "1");

    assert_eq!(run::<String>(&mut c, "SETEX e 100 v"), "OK");
    assert_eq!(run::<i64>(&mut c, "TTL e"), 100);
    assert_eq!(run::<String>(&mut c, "PSETEX e 100000 v"), "OK");
    assert_eq!(run::<i64>(&mut c, "TTL e"), 100);
    for (cmd, name) in [("SETEX e 0 v", "setex"), ("PSETEX e -1 v", "psetex")] {
        assert_eq!(
            err(&mut c, cmd),
            format!("ERR invalid expire time in '{name}' command")
        );
    }
    assert_eq!(err(&mut c, "SETEX e x v"), NOT_INT);

    assert_eq!(run::<Option<String>>(&mut c, "GETSET g 1"), None);
    run::<()>(&mut c, "EXPIRE g 100");
    assert_eq!(
        run::<Option<String>>(&mut c, "GETSET g 2"),
        Some("1".into())
    );
    assert_eq!(run::<i64>(&mut c, "TTL g"), -1, "GETSET clears the TTL");

    assert_eq!(run::<Option<String>>(&mut c, "GETDEL g"), Some("2".into()));
    assert_eq!(run::<Option<String>>(&mut c, "GETDEL g"), None);
    assert_eq!(run::<i64>(&mut c, "EXISTS g"), 0);

    run::<()>(&mut c, "SET x v");
    assert_eq!(run::<String>(&mut c, "GETEX x"), "v");
    assert_eq!(run::<i64>(&mut c, "TTL x"), -1);
    assert_eq!(run::<String>(&mut c, "GETEX x EX 100"), "v");
    assert_eq!(run::<i64>(&mut c, "TTL x"), 100);
    assert_eq!(run::<String>(&mut c, "GETEX x PX 50000"), "v");
    assert_eq!(run::<i64>(&mut c, "TTL x"), 50);
    assert_eq!(run::<String>(&mut c, "GETEX x EXAT 99999999999"), "v");
    assert_eq!(run::<i64>(&mut c, "EXPIRETIME x"), 99_999_999_999);
    assert_eq!(run::<String>(&mut c, "GETEX x PERSIST"), "v");
    assert_eq!(run::<i64>(&mut c, "TTL x"), -1);
    assert_eq!(run::<String>(&mut c, "GETEX x PXAT 1"), "v");
    assert_eq!(run::<i64>(&mut c, "EXISTS x"), 0, "a past time deletes");
    assert_eq!(run::<Option<String>>(&mut c, "GETEX nokey EX 0"), None);
    run::<()>(&mut c, "SET x v");
    for bad in [
        "GETEX x PERSIST EX 10",
        "GETEX x EX 10 PERSIST",
        "GETEX x KEEPTTL",
        "GETEX x NX",
        "GETEX x EX",
        "GETEX x foo",
    ] {
        assert_eq!(err(&mut c, bad), SYNTAX, "{bad}");
    }
    assert_eq!(
        err(&mut c, "GETEX x EX 0"),
        "ERR invalid expire time in 'getex' command"
    );
}

#[test]
fn mget_mset_msetnx() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(run::<String>(&mut c, "MSET a 1 b 2 c 3"), "OK");
    assert_eq!(
        run::<Vec<Option<String>>>(&mut c, "MGET a nokey c"),
        vec![Some("1".into()), None, Some("3".into())]
    );
    assert_eq!(run::<i64>(&mut c, "MSETNX a 9 d 4"), 0);
    assert_eq!(run::<i64>(&mut c, "EXISTS d"), 0, "MSETNX sets none");
    assert_eq!(run::<i64>(&mut c, "MSETNX d 4 e 5"), 1);
    assert_eq!(run::<String>(&mut c, "GET e"), "5");
    for cmd in ["MSET a", "MSET a 1 b", "MSETNX a 1 b"] {
        let name = cmd.split(' ').next().unwrap().to_lowercase();
        assert_eq!(
            err(&mut c, cmd),
            format!("ERR wrong number of arguments for '{name}' command")
        );
    }
    assert_eq!(
        err(&mut c, "MGET"),
        "ERR wrong number of arguments for 'mget' command"
    );
}

#[test]
fn append_strlen_ranges() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(run::<i64>(&mut c, "APPEND a Hello"), 5);
    assert_eq!(run::<i64>(&mut c, "APPEND a _World"), 11);
    assert_eq!(run::<i64>(&mut c, "STRLEN a"), 11);
    assert_eq!(run::<i64>(&mut c, "STRLEN nokey"), 0);
    assert_eq!(run::<String>(&mut c, "GETRANGE a 0 4"), "Hello");
    assert_eq!(run::<String>(&mut c, "GETRANGE a -5 -1"), "World");
    assert_eq!(run::<String>(&mut c, "GETRANGE a -1 -5"), "");
    assert_eq!(run::<String>(&mut c, "GETRANGE a 5 3"), "");
    assert_eq!(run::<String>(&mut c, "GETRANGE a 0 1000"), "Hello_World");
    assert_eq!(run::<String>(&mut c, "GETRANGE a -1000 1"), "He");
    assert_eq!(run::<String>(&mut c, "GETRANGE nokey 0 -1"), "");
    assert_eq!(run::<String>(&mut c, "SUBSTR a 6 -1"), "World");
    assert_eq!(err(&mut c, "GETRANGE a x 1"), NOT_INT);

    assert_eq!(run::<i64>(&mut c, "SETRANGE a 6 Redis"), 11);
    assert_eq!(run::<String>(&mut c, "GET a"), "Hello_Redis");
    assert_eq!(run::<i64>(&mut c, "SETRANGE pad 3 x"), 4);
    assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", b"pad"]), b"\0\0\0x");
    assert_eq!(
        run::<i64>(&mut c, "SETRANGE a 1 "),
        11,
        "empty value: length"
    );
    let empty: &[u8] = b"";
    assert_eq!(q::<i64>(&mut c, &[b"SETRANGE", b"nokey", b"0", empty]), 0);
    assert_eq!(run::<i64>(&mut c, "EXISTS nokey"), 0);
    assert_eq!(
        q::<i64>(&mut c, &[b"SETRANGE", b"nokey", b"536870912", empty]),
        0
    );
    assert_eq!(err(&mut c, "SETRANGE a -1 x"), "ERR offset is out of range");
    assert_eq!(
        err(&mut c, "SETRANGE a 536870912 x"),
        "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
    );
    assert_eq!(run::<i64>(&mut c, "SETRANGE b 536870911 x"), 536_870_912);
    run::<()>(&mut c, "DEL b");

    // APPEND and SETRANGE keep the TTL.
    run::<()>(&mut c, "EXPIRE a 100");
    run::<()>(&mut c, "APPEND a !");
    run::<()>(&mut c, "SETRANGE a 0 h");
    assert_eq!(run::<i64>(&mut c, "TTL a"), 100);
    assert_eq!(run::<String>(&mut c, "GET a"), "hello_Redis!");
}

#[test]
fn integer_and_float_counters() {
    let s = Server::start();
    let mut c = s.client();
    assert_eq!(run::<i64>(&mut c, "INCR n"), 1);
    assert_eq!(run::<i64>(&mut c, "INCRBY n 10"), 11);
    assert_eq!(run::<i64>(&mut c, "DECR n"), 10);
    assert_eq!(run::<i64>(&mut c, "DECRBY n 20"), -10);
    assert_eq!(run::<i64>(&mut c, "INCRBY n -5"), -15);
    run::<()>(&mut c, "EXPIRE n 100");
    run::<()>(&mut c, "INCR n");
    assert_eq!(run::<i64>(&mut c, "TTL n"), 100, "counters keep the TTL");

    for v in [
        " 1",
        "1 ",
        "01",
        "+1",
        "-0",
        "1.0",
        "",
        "abc",
        "99999999999999999999",
    ] {
        q::<()>(&mut c, &[b"SET", b"bad", v.as_bytes()]);
        assert_eq!(err(&mut c, "INCR bad"), NOT_INT, "{v:?}");
    }
    run::<()>(&mut c, "SET big 9223372036854775807");
    assert_eq!(
        err(&mut c, "INCR big"),
        "ERR increment or decrement would overflow"
    );
    run::<()>(&mut c, "SET small -9223372036854775808");
    assert_eq!(
        err(&mut c, "DECR small"),
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        err(&mut c, "DECRBY n -9223372036854775808"),
        "ERR decrement would overflow"
    );
    assert_eq!(err(&mut c, "INCRBY n x"), NOT_INT);
    assert_eq!(err(&mut c, "INCRBY n 9223372036854775808"), NOT_INT);

    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT f 10.5"), "10.5");
    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT f 0.1"), "10.6");
    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT f -5"), "5.6");
    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT g 5.0e3"), "5000");
    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT h 1.5e-5"), "0.000015");
    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT n 1"), "-13");
    run::<()>(&mut c, "SET e 1.0");
    assert_eq!(err(&mut c, "INCR e"), NOT_INT);
    assert_eq!(run::<String>(&mut c, "INCRBYFLOAT e 1"), "2");
    assert_eq!(
        err(&mut c, "INCRBYFLOAT e x"),
        "ERR value is not a valid float"
    );
    q::<()>(&mut c, &[b"SET", b"sp", b"1 "]);
    assert_eq!(
        err(&mut c, "INCRBYFLOAT sp 1"),
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(&mut c, "INCRBYFLOAT e inf"),
        "ERR increment would produce NaN or Infinity"
    );
    assert_eq!(run::<String>(&mut c, "GET e"), "2");
}

#[test]
fn binary_empty_and_large_values() {
    let s = Server::start();
    let mut c = s.client();
    let key: &[u8] = b"k\0\r\n\xff\xfe";
    let val: &[u8] = b"\0\r\n\xc3\x28 value \r\n";
    assert_eq!(q::<String>(&mut c, &[b"SET", key, val]), "OK");
    assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", key]), val);
    assert_eq!(q::<i64>(&mut c, &[b"STRLEN", key]), val.len() as i64);
    assert_eq!(
        q::<i64>(&mut c, &[b"APPEND", key, b"\0"]),
        val.len() as i64 + 1
    );
    assert_eq!(
        q::<Vec<u8>>(&mut c, &[b"GETRANGE", key, b"0", b"2"]),
        b"\0\r\n"
    );

    let empty: &[u8] = b"";
    assert_eq!(q::<String>(&mut c, &[b"SET", empty, empty]), "OK");
    assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", empty]), b"");
    assert_eq!(q::<i64>(&mut c, &[b"EXISTS", empty]), 1);
    assert_eq!(q::<i64>(&mut c, &[b"STRLEN", empty]), 0);

    let big: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(q::<String>(&mut c, &[b"SET", b"big", &big]), "OK");
    assert_eq!(q::<Vec<u8>>(&mut c, &[b"GET", b"big"]), big);
    assert_eq!(
        q::<i64>(&mut c, &[b"APPEND", b"big", &big]),
        2 * big.len() as i64
    );
    assert_eq!(
        q::<Vec<u8>>(&mut c, &[b"GETRANGE", b"big", b"1048576", b"1048580"]),
        &big[..5]
    );
    let vals: Vec<Option<Vec<u8>>> = q(&mut c, &[b"MGET", key, b"big"]);
    assert_eq!(vals[1].as_ref().map(Vec::len), Some(2 * big.len()));
}

#[test]
fn resp3_replies() {
    let s = Server::start();
    let mut c = s.client_resp3();
    assert_eq!(run::<Value>(&mut c, "GET nokey"), Value::Nil);
    assert_eq!(run::<Value>(&mut c, "SET k v NX"), Value::Okay);
    assert_eq!(run::<Value>(&mut c, "SET k v NX"), Value::Nil);
    assert_eq!(
        run::<Value>(&mut c, "SET k w GET"),
        Value::BulkString(b"v".to_vec())
    );
    assert_eq!(
        run::<Value>(&mut c, "INCRBYFLOAT f 1.5"),
        Value::BulkString(b"1.5".to_vec())
    );
    assert_eq!(run::<Value>(&mut c, "INCR n"), Value::Int(1));
    assert_eq!(
        run::<Value>(&mut c, "MGET k nokey"),
        Value::Array(vec![Value::BulkString(b"w".to_vec()), Value::Nil])
    );
    assert_eq!(err(&mut c, "SET k v NX XX"), SYNTAX);
}

#[test]
fn redis_cli_replies() {
    let s = Server::start();
    assert_eq!(s.cli(&["SET", "a", "hello"]).trim(), "OK");
    assert_eq!(s.cli(&["GET", "a"]).trim(), "hello");
    assert_eq!(s.cli(&["APPEND", "a", " world"]).trim(), "11");
    assert_eq!(s.cli(&["INCRBYFLOAT", "f", "2.5"]).trim(), "2.5");
    assert_eq!(
        s.cli(&["INCR", "a"]).trim(),
        "ERR value is not an integer or out of range"
    );
    // Not on a terminal, redis-cli prints a null as an empty line.
    assert_eq!(s.cli(&["-3", "GET", "nokey"]), "\n");
    assert_eq!(s.cli(&["-3", "SET", "a", "x", "GET"]).trim(), "hello world");
}

#[test]
fn arity_errors() {
    let s = Server::start();
    let mut c = s.client();
    for (cmd, name) in [
        ("GET", "get"),
        ("GET a b", "get"),
        ("SETNX a", "setnx"),
        ("SETEX a 1", "setex"),
        ("PSETEX a 1", "psetex"),
        ("GETSET a", "getset"),
        ("GETDEL", "getdel"),
        ("GETEX", "getex"),
        ("APPEND a", "append"),
        ("STRLEN", "strlen"),
        ("GETRANGE a 1", "getrange"),
        ("SUBSTR a", "substr"),
        ("SETRANGE a 1", "setrange"),
        ("INCR", "incr"),
        ("DECR a b", "decr"),
        ("INCRBY a", "incrby"),
        ("DECRBY a", "decrby"),
        ("INCRBYFLOAT a", "incrbyfloat"),
    ] {
        assert_eq!(
            err(&mut c, cmd),
            format!("ERR wrong number of arguments for '{name}' command"),
            "{cmd}"
        );
    }
}
