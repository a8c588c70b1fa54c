//! Whole-binary tests of MULTI/EXEC/DISCARD/WATCH/UNWATCH: queueing, queue-time
//! and run-time errors, WATCH aborts (writes, expiry, flushes, SWAPDB, reload),
//! blocking commands inside EXEC, the `redis` crate's transaction API, and that
//! a snapshot never captures half a transaction.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use redis::Value;

fn q<T: redis::FromRedisValue>(con: &mut redis::Connection, args: &[&str]) -> T {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query(con)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

fn q_err(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .expect_err("expected an error")
        .to_string()
}

/// Sends raw RESP and returns what the server answered within a short wait.
fn raw(port: u16, input: &[u8], expect_len: usize) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(input).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 4096];
    while out.len() < expect_len && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn queued_replies_and_runtime_errors_on_the_wire() {
    let s = Server::start();
    let want = "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nv\r\n";
    let got = raw(
        s.port,
        b"MULTI\r\nSET k v\r\nINCR k\r\nGET k\r\nEXEC\r\n",
        want.len(),
    );
    assert_eq!(got, want);
}

#[test]
fn execabort_on_the_wire() {
    let s = Server::start();
    let want = "+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'get' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n";
    let got = raw(s.port, b"MULTI\r\nSET k v\r\nGET\r\nEXEC\r\n", want.len());
    assert_eq!(got, want);
    // EXEC refused before it runs discards the transaction, as in Redis.
    let want = "+OK\r\n+QUEUED\r\n-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n-ERR EXEC without MULTI\r\n";
    let got = raw(
        s.port,
        b"MULTI\r\nSET k v\r\nEXEC x\r\nEXEC\r\n",
        want.len(),
    );
    assert_eq!(got, want);
}

#[test]
fn queue_time_errors_abort_exec() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["SET", "a", "1"]);
    let e = q_err(&mut c, &["SET", "a"]);
    assert!(
        e.contains("wrong number of arguments for 'set' command"),
        "{e}"
    );
    let e = q_err(&mut c, &["NOSUCHCMD", "x"]);
    assert!(e.contains("unknown command"), "{e}");
    let e = q_err(&mut c, &["EXEC"]);
    assert!(
        e.contains("Transaction discarded because of previous errors."),
        "{e}"
    );
    // Nothing ran, and the connection left the transaction.
    let v: Option<String> = q(&mut c, &["GET", "a"]);
    assert_eq!(v, None);
    let e = q_err(&mut c, &["EXEC"]);
    assert!(e.contains("EXEC without MULTI"), "{e}");
}

#[test]
fn control_command_errors_match_redis() {
    let s = Server::start();
    let mut c = s.client();
    assert!(q_err(&mut c, &["EXEC"]).contains("EXEC without MULTI"));
    assert!(q_err(&mut c, &["DISCARD"]).contains("DISCARD without MULTI"));
    let _: () = q(&mut c, &["MULTI"]);
    assert!(q_err(&mut c, &["MULTI"]).contains("MULTI calls can not be nested"));
    assert!(q_err(&mut c, &["WATCH", "x"]).contains("WATCH inside MULTI is not allowed"));
    let _: String = q(&mut c, &["SET", "a", "1"]);
    // Neither error above flags the transaction, as in Redis.
    let r: Vec<String> = q(&mut c, &["EXEC"]);
    assert_eq!(r, vec!["OK"]);
    // DISCARD drops the queue.
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["SET", "a", "2"]);
    let list: String = q(&mut s.client(), &["CLIENT", "LIST"]);
    assert!(
        list.contains("flags=x db=0 sub=0 psub=0 ssub=0 multi=1"),
        "{list}"
    );
    let _: () = q(&mut c, &["DISCARD"]);
    let v: String = q(&mut c, &["GET", "a"]);
    assert_eq!(v, "1");
    // redis-cli sees the same texts.
    assert_eq!(s.cli(&["EXEC"]).trim(), "ERR EXEC without MULTI");
}

/// EXEC after a watched key changed: `*-1` in RESP2, `_` in RESP3.
#[test]
fn watch_abort_is_a_null_array_in_both_protocols() {
    let s = Server::start();
    let mut other = s.client();
    let _: () = q(&mut other, &["SET", "w", "1"]);
    for (hello, null) in [("", "*-1\r\n"), ("HELLO 3\r\n", "_\r\n")] {
        let mut sock = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        sock.write_all(format!("{hello}WATCH w\r\n").as_bytes())
            .unwrap();
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).ends_with("+OK\r\n") {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        let _: () = q(&mut other, &["SET", "w", "2"]);
        sock.write_all(b"MULTI\r\nSET w 3\r\nEXEC\r\n").unwrap();
        let want = format!("+OK\r\n+QUEUED\r\n{null}");
        let mut got = Vec::new();
        while got.len() < want.len() {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
    let v: String = q(&mut other, &["GET", "w"]);
    assert_eq!(v, "2");
}

/// Runs WATCH k, then `meddle` on another connection, then MULTI/SET/EXEC;
/// returns whether EXEC ran.
fn exec_ran_after(s: &Server, setup: &[&[&str]], meddle: &[&[&str]]) -> bool {
    let mut c = s.client();
    let mut other = s.client();
    let _: () = q(&mut other, &["FLUSHALL"]);
    for cmd in setup {
        let _: Value = q(&mut other, cmd);
    }
    let _: () = q(&mut c, &["WATCH", "k"]);
    for cmd in meddle {
        if cmd[0] == "SLEEP" {
            std::thread::sleep(Duration::from_millis(cmd[1].parse().unwrap()));
            continue;
        }
        let _: Value = q(&mut other, cmd);
    }
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["SET", "other", "x"]);
    let r: Value = q(&mut c, &["EXEC"]);
    match r {
        Value::Nil => false,
        Value::Array(v) if v.len() == 1 => true,
        other => panic!("unexpected EXEC reply {other:?}"),
    }
}

#[test]
fn watch_sees_writes_expiry_flushes_and_swaps() {
    let s = Server::start();
    let k_str: &[&str] = &["SET", "k", "v"];
    let k_set: &[&str] = &["SADD", "k", "a", "b"];
    let k_list: &[&str] = &["RPUSH", "k", "a", "b"];
    let k_hash: &[&str] = &["HSET", "k", "f", "v"];
    // Untouched: runs.
    assert!(exec_ran_after(&s, &[k_str], &[]));
    assert!(exec_ran_after(&s, &[k_str], &[&["GET", "k"]]));
    // Writes of every type abort, including rewriting the same string.
    assert!(!exec_ran_after(&s, &[k_str], &[&["SET", "k", "v"]]));
    assert!(!exec_ran_after(&s, &[k_str], &[&["APPEND", "k", "x"]]));
    assert!(!exec_ran_after(&s, &[k_set], &[&["SADD", "k", "c"]]));
    assert!(!exec_ran_after(&s, &[k_set], &[&["SREM", "k", "a"]]));
    assert!(!exec_ran_after(&s, &[k_list], &[&["LSET", "k", "0", "z"]]));
    assert!(!exec_ran_after(&s, &[k_list], &[&["RPUSH", "k", "c"]]));
    assert!(!exec_ran_after(&s, &[k_hash], &[&["HSET", "k", "f", "v"]]));
    assert!(!exec_ran_after(&s, &[k_hash], &[&["HDEL", "k", "f"]]));
    assert!(!exec_ran_after(&s, &[k_str], &[&["DEL", "k"]]));
    assert!(!exec_ran_after(&s, &[k_str], &[&["EXPIRE", "k", "100"]]));
    assert!(!exec_ran_after(&s, &[k_str], &[&["RENAME", "k", "k2"]]));
    assert!(!exec_ran_after(&s, &[], &[&["SET", "k", "new"]]));
    // No-op writes leave the value as it was and do not abort (as in Redis).
    assert!(exec_ran_after(&s, &[k_set], &[&["SADD", "k", "a"]]));
    assert!(exec_ran_after(&s, &[k_set], &[&["SREM", "k", "zz"]]));
    assert!(exec_ran_after(&s, &[k_hash], &[&["HDEL", "k", "nope"]]));
    assert!(exec_ran_after(&s, &[k_str], &[&["PERSIST", "k"]]));
    assert!(exec_ran_after(&s, &[k_list], &[&["LREM", "k", "0", "zz"]]));
    assert!(exec_ran_after(
        &s,
        &[k_list],
        &[&["LINSERT", "k", "BEFORE", "zz", "x"]]
    ));
    // Small (inline) lists too.
    let k_one: &[&str] = &["RPUSH", "k", "a"];
    assert!(exec_ran_after(&s, &[k_one], &[&["LPUSHX", "k2", "a"]]));
    assert!(exec_ran_after(&s, &[k_one], &[&["LRANGE", "k", "0", "-1"]]));
    assert!(!exec_ran_after(&s, &[k_one], &[&["LSET", "k", "0", "a"]]));
    assert!(!exec_ran_after(&s, &[k_one], &[&["RPUSH", "k", "b"]]));
    // Expiry of a watched key aborts (Redis 7).
    assert!(!exec_ran_after(
        &s,
        &[&["SET", "k", "v", "PX", "50"]],
        &[&["SLEEP", "150"]]
    ));
    // Flushes and swaps abort when the key existed, as in Redis.
    assert!(!exec_ran_after(&s, &[k_str], &[&["FLUSHDB"]]));
    assert!(!exec_ran_after(&s, &[k_str], &[&["FLUSHALL"]]));
    assert!(!exec_ran_after(&s, &[k_str], &[&["SWAPDB", "0", "1"]]));
    assert!(exec_ran_after(&s, &[], &[&["FLUSHDB"]]));
    // UNWATCH forgets.
    let mut c = s.client();
    let _: () = q(&mut c, &["WATCH", "k"]);
    let _: () = q(&mut s.client(), &["SET", "k", "changed"]);
    let _: () = q(&mut c, &["UNWATCH"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["GET", "k"]);
    let r: Vec<String> = q(&mut c, &["EXEC"]);
    assert_eq!(r, vec!["changed"]);
}

/// A watched key is dirty after any write that touches it, even one that
/// leaves the very same value object in place; a command that does not change
/// it leaves it clean (Redis's `touchWatchedKey`).
#[test]
fn watch_is_a_modification_signal() {
    let s = Server::start();
    let big: Vec<String> = (0..300).map(|i| i.to_string()).collect();
    let mut rpush_big: Vec<&str> = vec!["RPUSH", "k"];
    rpush_big.extend(big.iter().map(String::as_str));
    let k_str: &[&str] = &["SET", "k", "v"];
    // Moved away and back: the same value object, still a change.
    for setup in [&rpush_big[..], k_str] {
        assert!(!exec_ran_after(
            &s,
            &[setup],
            &[&["RENAME", "k", "k2"], &["RENAME", "k2", "k"]]
        ));
        assert!(!exec_ran_after(
            &s,
            &[setup],
            &[&["SWAPDB", "0", "1"], &["SWAPDB", "0", "1"]]
        ));
        assert!(!exec_ran_after(
            &s,
            &[setup],
            &[
                &["MOVE", "k", "1"],
                &["SELECT", "1"],
                &["MOVE", "k", "0"],
                &["SELECT", "0"]
            ]
        ));
    }
    // A key that never existed, created and deleted again.
    assert!(!exec_ran_after(
        &s,
        &[],
        &[&["SET", "k", "x"], &["DEL", "k"]]
    ));
    // SWAPDB with a database that does not hold the key, and a flush of
    // another database, leave it alone.
    assert!(exec_ran_after(&s, &[], &[&["SWAPDB", "0", "1"]]));
    assert!(exec_ran_after(
        &s,
        &[k_str],
        &[&["SELECT", "1"], &["FLUSHDB"], &["SELECT", "0"]]
    ));
    // SMOVE into a set that already holds the member changes only the source.
    let sets: &[&[&str]] = &[&["SADD", "k", "m"], &["SADD", "src", "m", "x"]];
    assert!(exec_ran_after(&s, sets, &[&["SMOVE", "src", "k", "m"]]));
    assert!(!exec_ran_after(
        &s,
        &[&["SADD", "k", "y"], &["SADD", "src", "m"]],
        &[&["SMOVE", "src", "k", "m"]]
    ));
    // A write to the same name in another database is another key.
    assert!(exec_ran_after(
        &s,
        &[k_str],
        &[&["SELECT", "1"], &["SET", "k", "x"], &["SELECT", "0"]]
    ));
}

/// A blocked BLMOVE/BRPOPLPUSH into the watched key has changed nothing until
/// it is served; once served, it has.
#[test]
fn watch_ignores_a_blocked_move_until_it_is_served() {
    let s = Server::start();
    for blocking in [
        &["BLMOVE", "src", "k", "LEFT", "LEFT", "0"][..],
        &["BRPOPLPUSH", "src", "k", "0"],
    ] {
        let mut c = s.client();
        let _: () = q(&mut c, &["DEL", "k", "src"]);
        let _: () = q(&mut c, &["WATCH", "k", "src"]);
        let mut blocked = s.client();
        let blocked_cmd = common::cmd(blocking);
        let waiter = std::thread::spawn(move || {
            let v: Option<String> = blocked_cmd.query(&mut blocked).unwrap();
            v
        });
        let mut probe = s.client();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let info: String = q(&mut probe, &["INFO", "clients"]);
            if info.contains("blocked_clients:1") {
                break;
            }
            assert!(Instant::now() < deadline, "client never blocked");
            std::thread::sleep(Duration::from_millis(5));
        }
        let _: () = q(&mut c, &["MULTI"]);
        let _: String = q(&mut c, &["SET", "other", "x"]);
        let r: Value = q(&mut c, &["EXEC"]);
        assert!(matches!(r, Value::Array(ref v) if v.len() == 1), "{r:?}");
        // Served: both keys changed.
        let _: () = q(&mut c, &["WATCH", "k"]);
        let _: i64 = q(&mut probe, &["RPUSH", "src", "e"]);
        assert_eq!(waiter.join().unwrap().as_deref(), Some("e"));
        let _: () = q(&mut c, &["MULTI"]);
        let _: String = q(&mut c, &["SET", "other", "x"]);
        let r: Value = q(&mut c, &["EXEC"]);
        assert_eq!(r, Value::Nil);
    }
}

#[test]
fn watch_sees_a_snapshot_reload() {
    let s = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut c = s.client();
    let info: Value = q(&mut c, &["COMMAND", "INFO", "debug"]);
    if matches!(&info, Value::Array(v) if v.first() == Some(&Value::Nil)) {
        eprintln!("skipped: DEBUG is not available in this build");
        return;
    }
    assert!(!exec_ran_after(
        &s,
        &[&["SET", "k", "v"]],
        &[&["DEBUG", "RELOAD"]]
    ));
}

#[test]
fn blocking_commands_inside_exec_time_out_at_once() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["BLPOP", "nolist", "0"]);
    let _: String = q(&mut c, &["BRPOPLPUSH", "nolist", "dst", "0"]);
    let _: String = q(&mut c, &["RPUSH", "l", "a"]);
    let _: String = q(&mut c, &["BLPOP", "l", "0"]);
    let started = Instant::now();
    let r: Value = q(&mut c, &["EXEC"]);
    assert!(started.elapsed() < Duration::from_secs(2));
    let Value::Array(items) = r else {
        panic!("{r:?}")
    };
    assert_eq!(items[0], Value::Nil);
    assert_eq!(items[1], Value::Nil);
    assert_eq!(items[2], Value::Int(1));
    assert_eq!(
        items[3],
        Value::Array(vec![
            Value::BulkString(b"l".to_vec()),
            Value::BulkString(b"a".to_vec())
        ])
    );
}

/// A client blocked on a list is served after the whole transaction, so the
/// transaction sees its own push.
#[test]
fn blocked_clients_are_served_after_exec() {
    let s = Server::start();
    let port = s.port;
    let waiter = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut c = client.get_connection().unwrap();
        let r: Vec<String> = redis::cmd("BLPOP").arg("q").arg(10).query(&mut c).unwrap();
        r
    });
    let mut c = s.client();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info: String = q(&mut c, &["INFO", "clients"]);
        if info.contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["RPUSH", "q", "x"]);
    let _: String = q(&mut c, &["LLEN", "q"]);
    let r: Vec<i64> = q(&mut c, &["EXEC"]);
    assert_eq!(r, vec![1, 1]);
    assert_eq!(waiter.join().unwrap(), vec!["q", "x"]);
}

/// The `redis` crate's optimistic-locking helper retries on aborts; concurrent
/// read-modify-write increments lose nothing.
#[test]
fn redis_crate_transaction_api_under_contention() {
    let s = Server::start();
    let port = s.port;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut c = client.get_connection().unwrap();
                for _ in 0..50 {
                    let _: () = redis::transaction(&mut c, &["counter"], |con, pipe| {
                        let v: Option<i64> = redis::cmd("GET").arg("counter").query(con)?;
                        pipe.cmd("SET")
                            .arg("counter")
                            .arg(v.unwrap_or(0) + 1)
                            .ignore()
                            .query(con)
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = s.client();
    let v: i64 = q(&mut c, &["GET", "counter"]);
    assert_eq!(v, 200);
    // pipe().atomic() wraps the pipeline in MULTI/EXEC.
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("x")
        .cmd("INCRBY")
        .arg("x")
        .arg(10)
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b), (1, 11));
    let mut c3 = s.client_resp3();
    let (a,): (i64,) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("x")
        .query(&mut c3)
        .unwrap();
    assert_eq!(a, 12);
}

#[test]
fn redis_cli_runs_a_transaction_from_stdin() {
    let s = Server::start();
    let mut child = std::process::Command::new("redis-cli")
        .args(["-p", &s.port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"MULTI\nINCR n\nINCR n\nEXEC\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text, "OK\nQUEUED\nQUEUED\n1\n2\n");
}

/// Transactions keep `a == b == LLEN l`; every BGSAVE/SAVE dump taken while
/// they run must show that too, or a snapshot caught half an EXEC.
#[test]
fn snapshots_never_capture_half_an_exec() {
    let s = Server::start();
    let mut c = s.client();
    let info: Value = q(&mut c, &["COMMAND", "INFO", "bgsave"]);
    if matches!(&info, Value::Array(v) if v.first() == Some(&Value::Nil)) {
        eprintln!("skipped: SAVE/BGSAVE are not available in this build");
        return;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.port;
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut c = client.get_connection().unwrap();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 200_000 {
                    let _: () = redis::pipe()
                        .atomic()
                        .cmd("INCR")
                        .arg("a")
                        .ignore()
                        .cmd("RPUSH")
                        .arg("l")
                        .arg("x")
                        .ignore()
                        .cmd("INCR")
                        .arg("b")
                        .ignore()
                        .query(&mut c)
                        .unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let dumps = common::dumps_while_writing(&s, &mut c, 6);
    stop.store(true, Ordering::Relaxed);
    let total: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(total > 0);
    for (i, dir) in dumps.iter().enumerate() {
        let loaded = Server::spawn_in(dir.path(), &["--save", ""]).expect("start on a dump");
        let mut c = loaded.client();
        let a: Option<i64> = q(&mut c, &["GET", "a"]);
        let b: Option<i64> = q(&mut c, &["GET", "b"]);
        let l: i64 = q(&mut c, &["LLEN", "l"]);
        assert_eq!(a, b, "dump {i} caught half a transaction");
        assert_eq!(a.unwrap_or(0), l, "dump {i} caught half a transaction");
        if i == dumps.len() - 1 {
            assert!(l > 0, "the writers ran before the last dump");
        }
    }
}
