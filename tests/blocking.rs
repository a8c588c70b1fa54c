//! Whole-binary tests of the blocking list commands: serving from other
//! connections, arrival order, timeouts, BLMOVE chains, disconnects while
//! blocked, pipelines behind a blocked command, and databases.
//!
//! A short sleep after issuing a blocking command lets the server register the
//! waiter before the next step; no test asserts on how fast anything is.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::Server;
use redis::{Connection, FromRedisValue, Value};

/// Long enough for the server to register a waiter on a busy machine.
const SETTLE: Duration = Duration::from_millis(300);

fn cmd(args: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd
}

fn q<T: FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
    cmd(args)
        .query(c)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// Runs a (blocking) command on a new connection in a thread.
fn spawn<T: FromRedisValue + Send + 'static>(s: &Server, args: &[&str]) -> JoinHandle<T> {
    let mut c = s.client();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let h = thread::spawn(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        q::<T>(&mut c, &args)
    });
    thread::sleep(SETTLE);
    h
}

fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend(format!("${}\r\n{a}\r\n", a.len()).bytes());
    }
    out
}

/// Reads until exactly `want` bytes arrived (bounded by a deadline).
fn read_exact_reply(stream: &mut TcpStream, want: &[u8]) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want.len() && Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => continue,
        }
    }
    got
}

#[test]
fn blpop_is_served_by_a_push_from_another_connection() {
    let s = Server::start();
    let waiter = spawn::<(String, String)>(&s, &["BLPOP", "k", "0"]);
    let mut c = s.client();
    // The push replies with the length before the waiter takes its element.
    assert_eq!(q::<i64>(&mut c, &["LPUSH", "k", "v"]), 1);
    assert_eq!(waiter.join().unwrap(), ("k".to_string(), "v".to_string()));
    assert_eq!(q::<i64>(&mut c, &["LLEN", "k"]), 0);

    let waiter = spawn::<(String, String)>(&s, &["BRPOP", "k", "0"]);
    assert_eq!(q::<i64>(&mut c, &["RPUSH", "k", "a", "b"]), 2);
    assert_eq!(waiter.join().unwrap(), ("k".to_string(), "b".to_string()));
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "k", "0", "-1"]), ["a"]);
}

#[test]
fn waiters_are_served_in_arrival_order() {
    let s = Server::start();
    let first = spawn::<(String, String)>(&s, &["BLPOP", "k", "0"]);
    let second = spawn::<(String, String)>(&s, &["BLPOP", "other", "k", "0"]);
    let third = spawn::<(String, String)>(&s, &["BLPOP", "k", "0"]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "k", "x", "y"]);
    assert_eq!(first.join().unwrap().1, "x");
    assert_eq!(second.join().unwrap(), ("k".to_string(), "y".to_string()));
    assert!(!third.is_finished());
    q::<i64>(&mut c, &["RPUSH", "k", "z"]);
    assert_eq!(third.join().unwrap().1, "z");
    assert_eq!(q::<i64>(&mut c, &["LLEN", "k"]), 0);
}

#[test]
fn timeouts_answer_null_in_both_protocols() {
    let s = Server::start();
    let mut c = s.client();
    let start = Instant::now();
    assert_eq!(q::<Value>(&mut c, &["BLPOP", "k", "0.2"]), Value::Nil);
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(q::<Value>(&mut c, &["BRPOP", "a", "b", "0.05"]), Value::Nil);
    assert_eq!(
        q::<Value>(&mut c, &["BLMOVE", "k", "d", "LEFT", "RIGHT", "0.05"]),
        Value::Nil
    );
    assert_eq!(
        q::<Value>(&mut c, &["BRPOPLPUSH", "k", "d", "0.05"]),
        Value::Nil
    );
    assert_eq!(
        q::<Value>(&mut c, &["BLMPOP", "0.05", "1", "k", "LEFT"]),
        Value::Nil
    );
    // The connection is still usable afterwards.
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");

    let mut c3 = s.client_resp3();
    assert_eq!(q::<Value>(&mut c3, &["BLPOP", "k", "0.05"]), Value::Nil);
    assert_eq!(
        q::<Value>(&mut c3, &["BLMOVE", "k", "d", "LEFT", "LEFT", "0.05"]),
        Value::Nil
    );

    // On the wire: Redis 7.0 times out every blocked list command with a null array.
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(&resp(&["BRPOPLPUSH", "k", "d", "0.05"]))
        .unwrap();
    raw.write_all(&resp(&["BLPOP", "k", "0.05"])).unwrap();
    assert_eq!(
        read_exact_reply(&mut raw, b"*-1\r\n*-1\r\n"),
        b"*-1\r\n*-1\r\n"
    );
    raw.write_all(&resp(&["HELLO", "3"])).unwrap();
    thread::sleep(Duration::from_millis(100));
    let mut sink = [0u8; 4096];
    let _ = raw.read(&mut sink);
    raw.write_all(&resp(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0.05"]))
        .unwrap();
    assert_eq!(read_exact_reply(&mut raw, b"_\r\n"), b"_\r\n");
}

#[test]
fn timeout_argument_errors() {
    let s = Server::start();
    let mut c = s.client();
    for (args, msg) in [
        (&["BLPOP", "k", "-1"][..], "timeout is negative"),
        (
            &["BLPOP", "k", "abc"],
            "timeout is not a float or out of range",
        ),
        (&["BLPOP", "k", "inf"], "timeout is negative"),
        (
            &["BRPOPLPUSH", "a", "b", "x"],
            "timeout is not a float or out of range",
        ),
        (&["BLMOVE", "a", "b", "up", "left", "1"], "syntax error"),
        (
            &["BLMOVE", "a", "b", "left", "left", "-1"],
            "timeout is negative",
        ),
        (
            &["BLMPOP", "x", "1", "l", "left"],
            "timeout is not a float or out of range",
        ),
        (
            &["BLMPOP", "0", "0", "l", "left"],
            "numkeys should be greater than 0",
        ),
        (&["BLMPOP", "-1", "1", "l", "up"], "syntax error"),
        (
            &["BLMPOP", "0", "1", "l", "left", "COUNT", "0"],
            "count should be greater than 0",
        ),
    ] {
        let e = cmd(args).query::<Value>(&mut c).unwrap_err();
        assert_eq!(e.detail(), Some(msg), "{args:?}");
    }
    let e = cmd(&["BLPOP", "k"]).query::<Value>(&mut c).unwrap_err();
    assert!(e.to_string().contains("'blpop'"), "{e}");
}

#[test]
fn timeout_zero_waits_until_served() {
    let s = Server::start();
    let waiter =
        spawn::<(String, Vec<String>)>(&s, &["BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"]);
    thread::sleep(Duration::from_millis(500));
    assert!(
        !waiter.is_finished(),
        "BLMPOP with timeout 0 returned early"
    );
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "b", "1", "2", "3"]);
    let (key, elems) = waiter.join().unwrap();
    assert_eq!(key, "b");
    assert_eq!(elems, ["3", "2"]);
    assert_eq!(q::<Vec<String>>(&mut c, &["LRANGE", "b", "0", "-1"]), ["1"]);
}

#[test]
fn blmove_moves_atomically_and_wakes_a_waiter_on_the_destination() {
    let s = Server::start();
    let mover = spawn::<String>(&s, &["BLMOVE", "src", "dst", "LEFT", "RIGHT", "0"]);
    let popper = spawn::<(String, String)>(&s, &["BLPOP", "dst", "0"]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "src", "x"]);
    assert_eq!(mover.join().unwrap(), "x");
    assert_eq!(popper.join().unwrap(), ("dst".to_string(), "x".to_string()));
    assert_eq!(q::<i64>(&mut c, &["LLEN", "src"]), 0);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "dst"]), 0);

    // BRPOPLPUSH onto its own source rotates.
    let rot = spawn::<String>(&s, &["BRPOPLPUSH", "r", "r", "0"]);
    q::<i64>(&mut c, &["RPUSH", "r", "only"]);
    assert_eq!(rot.join().unwrap(), "only");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "r", "0", "-1"]),
        ["only"]
    );

    // Not blocked when the source has elements.
    q::<i64>(&mut c, &["RPUSH", "s2", "a", "b"]);
    assert_eq!(
        q::<String>(&mut c, &["BLMOVE", "s2", "d2", "RIGHT", "LEFT", "0"]),
        "b"
    );
    assert_eq!(q::<String>(&mut c, &["BRPOPLPUSH", "s2", "d2", "0"]), "a");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "d2", "0", "-1"]),
        ["a", "b"]
    );
}

#[test]
fn a_client_that_disconnects_while_blocked_does_not_swallow_a_push() {
    let s = Server::start();
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    raw.write_all(&resp(&["BLPOP", "k", "0"])).unwrap();
    // A later waiter must get the element instead.
    thread::sleep(SETTLE);
    let live = spawn::<(String, String)>(&s, &["BLPOP", "k", "0"]);
    drop(raw);
    thread::sleep(SETTLE);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "k", "v1"]);
    assert_eq!(live.join().unwrap(), ("k".to_string(), "v1".to_string()));

    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut pipeline = resp(&["BLPOP", "k2", "0"]);
    pipeline.extend(resp(&["RPUSH", "after-disconnect", "x"]));
    raw.write_all(&pipeline).unwrap();
    thread::sleep(SETTLE);
    drop(raw);
    thread::sleep(SETTLE);
    q::<i64>(&mut c, &["RPUSH", "k2", "v2"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "k2", "0", "-1"]),
        ["v2"]
    );
    // The command queued behind the blocked one died with its client.
    assert_eq!(q::<i64>(&mut c, &["LLEN", "after-disconnect"]), 0);
}

#[test]
fn pipelined_commands_run_after_the_blocked_command_is_served() {
    let s = Server::start();
    let mut raw = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let mut pipeline = resp(&["BLPOP", "k", "0"]);
    pipeline.extend(resp(&["RPUSH", "after", "x"]));
    pipeline.extend(resp(&["PING"]));
    raw.write_all(&pipeline).unwrap();
    thread::sleep(SETTLE);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["LLEN", "after"]), 0);
    // Commands sent while blocked wait too.
    raw.write_all(&resp(&["LLEN", "after"])).unwrap();
    thread::sleep(Duration::from_millis(100));
    assert_eq!(q::<i64>(&mut c, &["LLEN", "after"]), 0);
    q::<i64>(&mut c, &["RPUSH", "k", "v"]);
    let want = b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n:1\r\n+PONG\r\n:1\r\n";
    assert_eq!(read_exact_reply(&mut raw, want), want);
    assert_eq!(q::<i64>(&mut c, &["LLEN", "after"]), 1);
}

#[test]
fn several_keys_take_from_the_first_non_empty() {
    let s = Server::start();
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "b", "b1", "b2"]);
    q::<i64>(&mut c, &["RPUSH", "c", "c1"]);
    assert_eq!(
        q::<(String, String)>(&mut c, &["BLPOP", "a", "b", "c", "0"]),
        ("b".to_string(), "b1".to_string())
    );
    assert_eq!(
        q::<(String, String)>(&mut c, &["BRPOP", "a", "c", "b", "0"]),
        ("c".to_string(), "c1".to_string())
    );
    let (key, elems): (String, Vec<String>) = q(
        &mut c,
        &["BLMPOP", "0", "3", "a", "c", "b", "LEFT", "COUNT", "5"],
    );
    assert_eq!((key.as_str(), elems), ("b", vec!["b2".to_string()]));

    // Blocked on several keys, served by whichever gets elements.
    let waiter = spawn::<(String, String)>(&s, &["BLPOP", "a", "b", "c", "0"]);
    q::<i64>(&mut c, &["RPUSH", "c", "late"]);
    assert_eq!(
        waiter.join().unwrap(),
        ("c".to_string(), "late".to_string())
    );
}

#[test]
fn waiters_only_see_pushes_in_their_own_database() {
    let s = Server::start();
    let mut w = s.client();
    assert_eq!(q::<String>(&mut w, &["SELECT", "1"]), "OK");
    let waiter = thread::spawn(move || q::<(String, String)>(&mut w, &["BLPOP", "k", "0"]));
    thread::sleep(SETTLE);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "k", "db0"]);
    thread::sleep(Duration::from_millis(200));
    assert!(!waiter.is_finished());
    assert_eq!(q::<String>(&mut c, &["SELECT", "1"]), "OK");
    q::<i64>(&mut c, &["RPUSH", "k", "db1"]);
    assert_eq!(waiter.join().unwrap(), ("k".to_string(), "db1".to_string()));
    assert_eq!(q::<String>(&mut c, &["SELECT", "0"]), "OK");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "k", "0", "-1"]),
        ["db0"]
    );
}

#[test]
fn redis_cli_blocking_pop() {
    let s = Server::start();
    assert_eq!(s.cli(&["BLPOP", "k", "0.05"]).trim(), "");
    assert_eq!(s.cli(&["RPUSH", "k", "v"]).trim(), "1");
    assert_eq!(s.cli(&["BLPOP", "k", "0"]), "k\nv\n");
}
