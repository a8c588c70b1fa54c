//! Whole-binary tests of pub/sub: subscribed mode in RESP2 (allowed commands,
//! PING), push messages in RESP3, patterns, PUBSUB introspection, delivery to
//! idle subscribers, keyspace notifications (including expiry), and the
//! output-buffer limit that disconnects a subscriber that never reads.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
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

/// A raw RESP connection, to check replies byte for byte.
struct Raw {
    sock: TcpStream,
}

impl Raw {
    fn connect(port: u16) -> Raw {
        let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        Raw { sock }
    }

    fn send(&mut self, data: &str) {
        self.sock.write_all(data.as_bytes()).unwrap();
    }

    /// Reads until exactly `want` arrived (or 5 s passed) and compares.
    fn expect(&mut self, want: &str) {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 8192];
        while got.len() < want.len() && Instant::now() < deadline {
            if let Ok(n) = self.sock.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
}

#[test]
fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    let s = Server::start();
    let mut c = Raw::connect(s.port);
    c.send("SUBSCRIBE c d\r\n");
    c.expect(
        "*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nd\r\n:2\r\n",
    );
    c.send("GET x\r\n");
    c.expect("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    c.send("PUBSUB NUMPAT\r\n");
    c.expect("-ERR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    c.send("PING\r\nPING hi\r\n");
    c.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");
    c.send("PSUBSCRIBE n*\r\n");
    c.expect("*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:3\r\n");
    c.send("UNSUBSCRIBE\r\n");
    c.expect("*3\r\n$11\r\nunsubscribe\r\n$1\r\nc\r\n:2\r\n*3\r\n$11\r\nunsubscribe\r\n$1\r\nd\r\n:1\r\n");
    c.send("PUNSUBSCRIBE\r\n");
    c.expect("*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:0\r\n");
    // Out of subscribed mode, everything works again.
    c.send("UNSUBSCRIBE\r\nPING\r\n");
    c.expect("*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n+PONG\r\n");
    // RESET leaves subscribed mode (and a transaction) at once.
    c.send("SUBSCRIBE c\r\nRESET\r\nGET x\r\nMULTI\r\nSET x 1\r\nRESET\r\nEXEC\r\n");
    c.expect("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n+RESET\r\n$-1\r\n+OK\r\n+QUEUED\r\n+RESET\r\n-ERR EXEC without MULTI\r\n");
    let mut other = s.client();
    let n: i64 = q(&mut other, &["PUBLISH", "c", "x"]);
    assert_eq!(n, 0);
}

/// A RESP3 client blocked in BLPOP still receives the messages of its channels.
#[test]
fn resp3_subscriber_blocked_in_blpop_gets_messages() {
    let s = Server::start();
    let mut c = Raw::connect(s.port);
    c.send("HELLO 3\r\n");
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut hello = Vec::new();
    while !String::from_utf8_lossy(&hello).ends_with("*0\r\n") && Instant::now() < deadline {
        if let Ok(n) = c.sock.read(&mut buf) {
            hello.extend_from_slice(&buf[..n]);
        }
    }
    c.send("SUBSCRIBE c\r\nBLPOP q 5\r\n");
    c.expect(">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let mut other = s.client();
    let n: i64 = q(&mut other, &["PUBLISH", "c", "hi"]);
    assert_eq!(n, 1);
    c.expect(">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n");
    let _: i64 = q(&mut other, &["RPUSH", "q", "v"]);
    c.expect("*2\r\n$1\r\nq\r\n$1\r\nv\r\n");
}

#[test]
fn resp3_gets_push_frames_and_may_run_any_command() {
    let s = Server::start();
    let mut c = Raw::connect(s.port);
    c.send("HELLO 3\r\n");
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut hello = Vec::new();
    while !String::from_utf8_lossy(&hello).ends_with("*0\r\n") && Instant::now() < deadline {
        if let Ok(n) = c.sock.read(&mut buf) {
            hello.extend_from_slice(&buf[..n]);
        }
    }
    // A message this client publishes to itself comes before PUBLISH's reply.
    c.send("SUBSCRIBE c\r\nPUBLISH c hi\r\nGET x\r\nPING\r\n");
    c.expect(">3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n:1\r\n_\r\n+PONG\r\n");
    c.send("PSUBSCRIBE a*\r\n");
    c.expect(">3\r\n$10\r\npsubscribe\r\n$2\r\na*\r\n:2\r\n");
    let mut other = s.client();
    let n: i64 = q(&mut other, &["PUBLISH", "ab", "x"]);
    assert_eq!(n, 1);
    c.expect(">4\r\n$8\r\npmessage\r\n$2\r\na*\r\n$2\r\nab\r\n$1\r\nx\r\n");
}

#[test]
fn idle_subscribers_receive_channel_and_pattern_messages() {
    let s = Server::start();
    let mut sub_con = s.client();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.subscribe("news").unwrap();
    pubsub.psubscribe("n*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let port = s.port;
    let publisher = std::thread::spawn(move || {
        // The subscriber is idle in a read when these arrive.
        std::thread::sleep(Duration::from_millis(200));
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let mut c = client.get_connection().unwrap();
        let a: i64 = redis::cmd("PUBLISH")
            .arg("news")
            .arg("one")
            .query(&mut c)
            .unwrap();
        let b: i64 = redis::cmd("PUBLISH")
            .arg("nope")
            .arg("two")
            .query(&mut c)
            .unwrap();
        let z: i64 = redis::cmd("PUBLISH")
            .arg("zzz")
            .arg("three")
            .query(&mut c)
            .unwrap();
        (a, b, z)
    });
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = pubsub.get_message().unwrap();
        let pattern: Option<String> = m.get_pattern().ok();
        got.push((
            m.get_channel_name().to_string(),
            m.get_payload::<String>().unwrap(),
            pattern,
        ));
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            ("news".into(), "one".into(), None),
            ("news".into(), "one".into(), Some("n*".into())),
            ("nope".into(), "two".into(), Some("n*".into())),
        ]
    );
    assert_eq!(publisher.join().unwrap(), (2, 1, 0));
}

#[test]
fn pubsub_introspection() {
    let s = Server::start();
    let mut a = s.client();
    let mut pa = a.as_pubsub();
    pa.subscribe(&["ch1", "ch2"]).unwrap();
    pa.psubscribe(&["p*", "q*"]).unwrap();
    let mut b = s.client();
    let mut pb = b.as_pubsub();
    pb.subscribe("ch1").unwrap();
    pb.psubscribe("p*").unwrap();
    let mut c = s.client();
    let mut chans: Vec<String> = q(&mut c, &["PUBSUB", "CHANNELS"]);
    chans.sort();
    assert_eq!(chans, vec!["ch1", "ch2"]);
    let chans: Vec<String> = q(&mut c, &["PUBSUB", "CHANNELS", "*2"]);
    assert_eq!(chans, vec!["ch2"]);
    let numsub: Vec<Value> = q(&mut c, &["PUBSUB", "NUMSUB", "ch1", "ch2", "none"]);
    assert_eq!(
        numsub,
        vec![
            Value::BulkString(b"ch1".to_vec()),
            Value::Int(2),
            Value::BulkString(b"ch2".to_vec()),
            Value::Int(1),
            Value::BulkString(b"none".to_vec()),
            Value::Int(0),
        ]
    );
    let numpat: i64 = q(&mut c, &["PUBSUB", "NUMPAT"]);
    assert_eq!(numpat, 2);
    let list: String = q(&mut c, &["CLIENT", "LIST"]);
    assert!(
        list.contains("flags=P db=0 sub=2 psub=2 ssub=0 multi=-1"),
        "{list}"
    );
    let info: String = q(&mut c, &["INFO", "stats"]);
    assert!(
        info.contains("pubsub_channels:2\r\npubsub_patterns:2"),
        "{info}"
    );
    let out = s.cli(&["PUBLISH", "ch1", "x"]);
    assert_eq!(out.trim(), "2", "PUBLISH ch1 via redis-cli: {out:?}");
    let out = s.cli(&["PUBLISH", "pq", "x"]);
    assert_eq!(out.trim(), "2", "PUBLISH pq via redis-cli: {out:?}");
    let e = redis::cmd("PUBSUB")
        .arg("NOPE")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("unknown subcommand 'NOPE'"), "{e}");
    // A client that disconnects leaves the registry.
    drop(pb);
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let numsub: Vec<Value> = q(&mut c, &["PUBSUB", "NUMSUB", "ch1"]);
        if numsub[1] == Value::Int(1) {
            break;
        }
        assert!(Instant::now() < deadline, "{numsub:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Collects `n` (channel, payload) pairs from a pattern subscription.
fn collect(pubsub: &mut redis::PubSub<'_>, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let m = pubsub.get_message().expect("notification");
            (
                m.get_channel_name().to_string(),
                m.get_payload::<String>().unwrap(),
            )
        })
        .collect()
}

#[test]
fn keyspace_notifications() {
    let s = Server::start();
    let mut c = s.client();
    let off: Vec<String> = q(&mut c, &["CONFIG", "GET", "notify-keyspace-events"]);
    assert_eq!(off, vec!["notify-keyspace-events", ""]);
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("Q")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string().contains("Invalid event class character"),
        "{e}"
    );
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "notify-keyspace-events", "nmEKA"],
    );
    let on: Vec<String> = q(&mut c, &["CONFIG", "GET", "notify-keyspace-events"]);
    assert_eq!(on, vec!["notify-keyspace-events", "AKEm"]);

    let mut sub_con = s.client();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    let _: () = q(&mut c, &["SET", "s", "1", "EX", "100"]);
    let _: i64 = q(&mut c, &["INCRBY", "s", "2"]);
    let _: i64 = q(&mut c, &["APPEND", "s", "x"]);
    let _: i64 = q(&mut c, &["PERSIST", "s"]);
    let _: i64 = q(&mut c, &["RPUSH", "l", "a", "b"]);
    let _: Value = q(&mut c, &["LPOP", "l", "2"]);
    let _: i64 = q(&mut c, &["HSET", "h", "f", "v"]);
    let _: i64 = q(&mut c, &["SADD", "st", "m"]);
    let _: i64 = q(&mut c, &["SREM", "st", "m"]);
    let _: () = q(&mut c, &["RENAME", "s", "s2"]);
    let _: i64 = q(&mut c, &["DEL", "s2", "h"]);
    let got = collect(&mut pubsub, 15);
    let events: Vec<&str> = got
        .iter()
        .map(|(ch, _)| ch.trim_start_matches("__keyevent@0__:"))
        .collect();
    assert_eq!(
        events,
        vec![
            "set",
            "expire",
            "incrby",
            "append",
            "persist",
            "rpush",
            "lpop",
            "del",
            "hset",
            "sadd",
            "srem",
            "del",
            "rename_from",
            "rename_to",
            "del",
        ]
    );
    assert_eq!(got[0].1, "s");
    assert_eq!(got[7].1, "l");

    // Keyspace channel form, and `expired` from lazy and from active expiry.
    let mut ks_con = s.client();
    let mut ks = ks_con.as_pubsub();
    ks.subscribe(&["__keyspace@0__:lazy", "__keyspace@0__:active"])
        .unwrap();
    ks.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _: () = q(&mut c, &["SET", "lazy", "v", "PX", "30"]);
    let _: () = q(&mut c, &["SET", "active", "v", "PX", "30"]);
    std::thread::sleep(Duration::from_millis(60));
    let v: Option<String> = q(&mut c, &["GET", "lazy"]);
    assert_eq!(v, None);
    let mut got = collect(&mut ks, 6);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("__keyspace@0__:active".into(), "expire".into()),
            ("__keyspace@0__:active".into(), "expired".into()),
            ("__keyspace@0__:active".into(), "set".into()),
            ("__keyspace@0__:lazy".into(), "expire".into()),
            ("__keyspace@0__:lazy".into(), "expired".into()),
            ("__keyspace@0__:lazy".into(), "set".into()),
        ]
    );

    // A write over a key whose time ran out: `expired` comes before `set`.
    let _: () = q(&mut c, &["SET", "lazy", "v", "PX", "30"]);
    assert_eq!(collect(&mut ks, 2).len(), 2);
    std::thread::sleep(Duration::from_millis(60));
    // (Active expiry may win the race; then the order holds trivially.)
    let _: () = q(&mut c, &["SET", "lazy", "w"]);
    let got = collect(&mut ks, 2);
    assert_eq!(
        got,
        vec![
            ("__keyspace@0__:lazy".into(), "expired".into()),
            ("__keyspace@0__:lazy".into(), "set".into()),
        ]
    );

    // Off again: nothing more is published.
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", ""]);
    let _: () = q(&mut c, &["SET", "lazy", "x"]);
    ks.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(ks.get_message().is_err());
}

/// Keyspace events of a transaction's commands come out as the commands run.
#[test]
fn notifications_from_inside_exec() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "E$"]);
    let mut sub_con = s.client();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.subscribe("__keyevent@0__:set").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _: () = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("a")
        .arg(1)
        .ignore()
        .cmd("SET")
        .arg("b")
        .arg(2)
        .ignore()
        .query(&mut c)
        .unwrap();
    let got = collect(&mut pubsub, 2);
    assert_eq!(
        got,
        vec![
            ("__keyevent@0__:set".into(), "a".into()),
            ("__keyevent@0__:set".into(), "b".into())
        ]
    );
}

/// A subscriber that never reads is disconnected once its queue passes the
/// 32 MB hard limit, and the server's memory stays bounded meanwhile.
#[test]
fn slow_subscriber_hits_the_output_buffer_limit() {
    let s = Server::start();
    let mut lazy = Raw::connect(s.port);
    lazy.send("SUBSCRIBE firehose\r\n");
    lazy.expect("*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n");
    // The subscriber stops reading; the publisher sends 96 MB in 1 KB messages.
    let mut c = s.client();
    let payload = "x".repeat(1024);
    let mut delivered = 0i64;
    let mut sent = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sent < 96 * 1024 && Instant::now() < deadline {
        let mut p = redis::pipe();
        for _ in 0..512 {
            p.cmd("PUBLISH").arg("firehose").arg(&payload);
        }
        let counts: Vec<i64> = p.query(&mut c).unwrap();
        delivered += counts.iter().sum::<i64>();
        sent += 512;
        if counts.last() == Some(&0) {
            break;
        }
    }
    // It was cut off well before everything was delivered...
    assert!(delivered < 64 * 1024, "delivered {delivered} messages");
    assert!(delivered > 1024, "delivered only {delivered} messages");
    // ...its subscription is gone...
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let numsub: Vec<Value> = q(&mut c, &["PUBSUB", "NUMSUB", "firehose"]);
        if numsub[1] == Value::Int(0) {
            break;
        }
        assert!(Instant::now() < deadline, "{numsub:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let n: i64 = q(&mut c, &["PUBLISH", "firehose", "after"]);
    assert_eq!(n, 0);
    // ...and its socket is closed once what was in flight is drained.
    lazy.sock
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0usize;
    loop {
        match lazy.sock.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n,
            Err(e) => panic!("subscriber socket not closed after {total} bytes: {e}"),
        }
    }
    assert!(
        total < 48 * 1024 * 1024,
        "{total} bytes reached the subscriber"
    );
    assert!(
        s.log_eventually_contains("output buffer limits", std::time::Duration::from_secs(5)),
        "{}",
        s.log()
    );
}

/// The soft limit (CONFIG SET client-output-buffer-limit) disconnects a
/// subscriber that stays over it for its grace period, and not before.
#[test]
fn soft_output_limit_after_its_grace_period() {
    let s = Server::start();
    let mut c = s.client();
    let default: Vec<String> = q(&mut c, &["CONFIG", "GET", "client-output-buffer-limit"]);
    assert_eq!(
        default[1],
        // Normal clients are bounded by default in forkless (Redis: 0 0 0).
        "normal 1073741824 268435456 60 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    let _: () = q(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 256kb 1",
        ],
    );
    let e = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("pubsub 1mb")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Wrong number of arguments in buffer limit configuration"),
        "{e}"
    );
    let mut lazy = Raw::connect(s.port);
    lazy.send("SUBSCRIBE slow\r\n");
    lazy.expect("*3\r\n$9\r\nsubscribe\r\n$4\r\nslow\r\n:1\r\n");
    let payload = "y".repeat(4096);
    let publish_batch = |c: &mut redis::Connection, n: usize| -> i64 {
        let mut p = redis::pipe();
        for _ in 0..n {
            p.cmd("PUBLISH").arg("slow").arg(&payload);
        }
        let counts: Vec<i64> = p.query(c).unwrap();
        counts.iter().sum()
    };
    // Fill the socket buffers and go over the soft limit (no hard limit).
    let started = Instant::now();
    let first = publish_batch(&mut c, 4096);
    assert_eq!(
        first, 4096,
        "nobody is disconnected before the grace period"
    );
    // Keep trickling for well over a second: the subscriber goes.
    let mut gone_after = None;
    while started.elapsed() < Duration::from_secs(10) {
        if publish_batch(&mut c, 4) < 4 {
            gone_after = Some(started.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let gone_after = gone_after.expect("the slow subscriber was never disconnected");
    // Not before one second over the soft limit (which began after `started`).
    assert!(gone_after >= Duration::from_secs(1), "{gone_after:?}");
}

#[test]
fn shard_channels_deliver_apart_from_channels_and_patterns() {
    let s = Server::start();
    let mut a = Raw::connect(s.port);
    let mut b = Raw::connect(s.port);
    // Several shard channels in one command: a frame each, counted apart
    // from the channel subscription that follows.
    a.send("SSUBSCRIBE s1 s2\r\n");
    a.expect(
        "*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n*3\r\n$10\r\nssubscribe\r\n$2\r\ns2\r\n:2\r\n",
    );
    b.send("SSUBSCRIBE s2\r\n");
    b.expect("*3\r\n$10\r\nssubscribe\r\n$2\r\ns2\r\n:1\r\n");
    a.send("SUBSCRIBE s2\r\n");
    a.expect("*3\r\n$9\r\nsubscribe\r\n$2\r\ns2\r\n:1\r\n");
    let mut c = s.client();
    assert!(q::<String>(&mut c, &["INFO", "stats"]).contains("pubsubshard_channels:2\r\n"));
    let list: String = q(&mut c, &["CLIENT", "LIST"]);
    assert!(list.contains("sub=1 psub=0 ssub=2"), "{list}");
    // SPUBLISH reaches shard subscribers only, PUBLISH channel subscribers only.
    assert_eq!(q::<i64>(&mut c, &["SPUBLISH", "s2", "hi"]), 2);
    a.expect("*3\r\n$8\r\nsmessage\r\n$2\r\ns2\r\n$2\r\nhi\r\n");
    b.expect("*3\r\n$8\r\nsmessage\r\n$2\r\ns2\r\n$2\r\nhi\r\n");
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "s2", "plain"]), 1);
    a.expect("*3\r\n$7\r\nmessage\r\n$2\r\ns2\r\n$5\r\nplain\r\n");
    // SUNSUBSCRIBE with no names leaves every shard channel, not the channel.
    a.send("SUNSUBSCRIBE\r\n");
    a.expect(
        "*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:1\r\n*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns2\r\n:0\r\n",
    );
    assert_eq!(q::<i64>(&mut c, &["SPUBLISH", "s1", "x"]), 0);
    assert_eq!(q::<i64>(&mut c, &["PUBLISH", "s2", "still"]), 1);
    a.expect("*3\r\n$7\r\nmessage\r\n$2\r\ns2\r\n$5\r\nstill\r\n");
    // A subscriber that goes away leaves no shard channel behind.
    drop(b);
    let gone = common::wait_until(Duration::from_secs(5), || {
        q::<Vec<String>>(&mut c, &["PUBSUB", "SHARDCHANNELS"]).is_empty()
    });
    assert!(gone, "the closed client's shard channel stayed");
}
