//! Whole-binary tests of the stream commands with real clients: consumers
//! of one group sharing a stream with nothing lost or repeated, a dead
//! consumer's pending entries claimed by others, SAVE and restart keeping
//! groups, PEL and consumers, blocking reads woken by another client,
//! keyspace notifications and WATCH. Expected replies were read from
//! redis-server 7.0.15.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{error, q, Server};
use redis::Value;

/// Long enough for the server to register a waiter on a busy machine.
const SETTLE: Duration = Duration::from_millis(300);

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

/// The entry ids of an XREAD/XREADGROUP reply (RESP2), stream by stream.
fn read_ids(v: &Value) -> Vec<String> {
    if matches!(v, Value::Nil) {
        return Vec::new();
    }
    items(v)
        .iter()
        .flat_map(|stream| items(&items(stream)[1]).iter())
        .map(|entry| text(&items(entry)[0]))
        .collect()
}

#[test]
fn consumers_of_one_group_share_entries_without_loss_or_repeat() {
    let s = Server::start();
    let mut c = s.client();
    let _: () = q(&mut c, &["XGROUP", "CREATE", "jobs", "g", "$", "MKSTREAM"]);
    const ENTRIES: usize = 2000;
    const CONSUMERS: usize = 4;
    let produced_all = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..CONSUMERS)
        .map(|i| {
            let mut conn = s.client();
            let done = produced_all.clone();
            thread::spawn(move || {
                let name = format!("c{i}");
                let mut got = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut idle_after_done = 0;
                while Instant::now() < deadline && idle_after_done < 2 {
                    let reply: Value = q(
                        &mut conn,
                        &[
                            "XREADGROUP",
                            "GROUP",
                            "g",
                            &name,
                            "COUNT",
                            "7",
                            "BLOCK",
                            "200",
                            "STREAMS",
                            "jobs",
                            ">",
                        ],
                    );
                    let ids = read_ids(&reply);
                    if ids.is_empty() && done.load(Ordering::SeqCst) {
                        idle_after_done += 1;
                    }
                    for id in &ids {
                        let n: i64 = q(&mut conn, &["XACK", "jobs", "g", id]);
                        assert_eq!(n, 1, "{id} acknowledged once");
                    }
                    got.extend(ids);
                }
                got
            })
        })
        .collect();
    let mut produced = BTreeSet::new();
    for chunk in 0..ENTRIES / 100 {
        let mut pipe = redis::pipe();
        for i in 0..100 {
            pipe.cmd("XADD")
                .arg("jobs")
                .arg("*")
                .arg("n")
                .arg(chunk * 100 + i);
        }
        let ids: Vec<String> = pipe.query(&mut c).unwrap();
        produced.extend(ids);
    }
    produced_all.store(true, Ordering::SeqCst);
    let mut seen = Vec::new();
    let mut per_consumer = Vec::new();
    for w in workers {
        let got = w.join().unwrap();
        per_consumer.push(got.len());
        seen.extend(got);
    }
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), ENTRIES, "no entry delivered twice");
    assert_eq!(unique, produced, "every entry delivered");
    assert!(
        per_consumer.iter().filter(|n| **n > 0).count() >= 2,
        "the work was shared: {per_consumer:?}"
    );
    let pending: Value = q(&mut c, &["XPENDING", "jobs", "g"]);
    assert_eq!(items(&pending)[0], Value::Int(0));
    let info: Vec<Value> = q(&mut c, &["XINFO", "GROUPS", "jobs"]);
    let fields = items(&info[0]);
    let lag = fields
        .chunks(2)
        .find(|p| text(&p[0]) == "lag")
        .map(|p| p[1].clone());
    assert_eq!(lag, Some(Value::Int(0)));
}

#[test]
fn a_dead_consumers_pending_entries_are_claimed() {
    let s = Server::start();
    let mut c = s.client();
    for i in 1..=5 {
        let _: String = q(
            &mut c,
            &["XADD", "s", &format!("{i}-0"), "n", &i.to_string()],
        );
    }
    let _: () = q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    {
        let mut doomed = s.client();
        let reply: Value = q(
            &mut doomed,
            &["XREADGROUP", "GROUP", "g", "doomed", "STREAMS", "s", ">"],
        );
        assert_eq!(read_ids(&reply).len(), 5);
        // The connection closes here without acknowledging anything.
    }
    thread::sleep(Duration::from_millis(50));
    let nothing: Value = q(
        &mut c,
        &["XAUTOCLAIM", "s", "g", "b", "60000", "0", "JUSTID"],
    );
    assert_eq!(items(&items(&nothing)[1]).len(), 0, "not idle long enough");
    let claimed: Value = q(
        &mut c,
        &["XAUTOCLAIM", "s", "g", "b", "20", "0", "COUNT", "3"],
    );
    let parts = items(&claimed);
    assert_eq!(text(&parts[0]), "4-0", "the cursor for the next call");
    let ids: Vec<String> = items(&parts[1])
        .iter()
        .map(|e| text(&items(e)[0]))
        .collect();
    assert_eq!(ids, ["1-0", "2-0", "3-0"]);
    let rest: Vec<String> = q(
        &mut c,
        &["XCLAIM", "s", "g", "c", "20", "4-0", "5-0", "JUSTID"],
    );
    assert_eq!(rest, ["4-0", "5-0"]);
    let summary: Value = q(&mut c, &["XPENDING", "s", "g"]);
    let owners: Vec<(String, String)> = items(&items(&summary)[3])
        .iter()
        .map(|o| (text(&items(o)[0]), text(&items(o)[1])))
        .collect();
    assert_eq!(
        owners,
        [("b".to_string(), "3".to_string()), ("c".into(), "2".into())]
    );
    // XAUTOCLAIM counted a delivery; XCLAIM JUSTID did not.
    let rows: Value = q(&mut c, &["XPENDING", "s", "g", "-", "+", "10"]);
    let counts: Vec<Value> = items(&rows).iter().map(|r| items(r)[3].clone()).collect();
    assert_eq!(
        counts,
        [
            Value::Int(2),
            Value::Int(2),
            Value::Int(2),
            Value::Int(1),
            Value::Int(1)
        ]
    );
    // The dead consumer is still known, with nothing pending.
    let consumers: Vec<Value> = q(&mut c, &["XINFO", "CONSUMERS", "s", "g"]);
    assert_eq!(text(&items(&consumers[2])[1]), "doomed");
    assert_eq!(items(&consumers[2])[3], Value::Int(0));
    let acked: i64 = q(
        &mut c,
        &["XACK", "s", "g", "1-0", "2-0", "3-0", "4-0", "5-0"],
    );
    assert_eq!(acked, 5);
}

#[test]
fn save_and_restart_keep_entries_groups_pel_and_consumers() {
    let mut s = Server::start();
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 1..=1500 {
        pipe.cmd("XADD")
            .arg("s")
            .arg(format!("{i}-1"))
            .arg("f")
            .arg(i)
            .arg("g")
            .arg("x")
            .ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let _: i64 = q(&mut c, &["XDEL", "s", "10-1", "1500-1"]);
    let _: () = q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let _: () = q(
        &mut c,
        &["XGROUP", "CREATE", "s", "late", "$", "ENTRIESREAD", "7"],
    );
    let _: Value = q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let _: Value = q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let _: i64 = q(&mut c, &["XACK", "s", "g", "2-1"]);
    let _: i64 = q(&mut c, &["XGROUP", "CREATECONSUMER", "s", "g", "idle"]);
    let _: () = q(&mut c, &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"]);
    let _: () = q(
        &mut c,
        &[
            "XSETID",
            "empty",
            "5-5",
            "ENTRIESADDED",
            "9",
            "MAXDELETEDID",
            "5-0",
        ],
    );
    let capture = |c: &mut redis::Connection| -> Vec<Value> {
        let mut out = Vec::new();
        for args in [
            &["XRANGE", "s", "-", "+"][..],
            &["XINFO", "STREAM", "s"],
            &["XINFO", "STREAM", "empty"],
            &["XINFO", "GROUPS", "s"],
            &["XPENDING", "s", "g"],
            &["XRANGE", "empty", "-", "+"],
        ] {
            out.push(q(c, args));
        }
        let rows: Value = q(c, &["XPENDING", "s", "g", "-", "+", "10"]);
        // Idle times change; ids, owners and counts must not.
        for r in items(&rows) {
            let r = items(r);
            out.push(Value::Array(vec![r[0].clone(), r[1].clone(), r[3].clone()]));
        }
        let consumers: Vec<Value> = q(c, &["XINFO", "CONSUMERS", "s", "g"]);
        for cons in consumers {
            let f = items(&cons);
            out.push(Value::Array(vec![f[1].clone(), f[3].clone()]));
        }
        out
    };
    let before = capture(&mut c);
    let _: () = q(&mut c, &["SAVE"]);
    s.restart();
    let mut c = s.client();
    assert_eq!(capture(&mut c), before);
    // Reading goes on where it stopped.
    let next: Value = q(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(read_ids(&next), ["6-1"]);
    let added: String = q(&mut c, &["XADD", "empty", "*", "a", "b"]);
    assert_ne!(added, "5-6", "a new id comes from the clock, after 5-5");
    assert_eq!(
        error(&mut c, &["XADD", "empty", "5-5", "a", "b"]),
        "ERR The ID specified in XADD is equal or smaller than the target stream top item"
    );
}

#[test]
fn blocking_xread_is_served_by_another_clients_xadd() {
    let s = Server::start();
    let mut c = s.client();
    let mut reader = s.client();
    let started = Instant::now();
    let h = thread::spawn(move || {
        let v: Value = q(
            &mut reader,
            &["XREAD", "BLOCK", "10000", "STREAMS", "a", "b", "$", "$"],
        );
        v
    });
    thread::sleep(SETTLE);
    let _: String = q(&mut c, &["XADD", "b", "7-0", "k", "v"]);
    let v = h.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let streams = items(&v);
    assert_eq!(streams.len(), 1);
    assert_eq!(text(&items(&streams[0])[0]), "b");
    assert_eq!(read_ids(&v), ["7-0"]);
    // A timeout answers nil after about its time.
    let t = Instant::now();
    let v: Value = q(&mut c, &["XREAD", "BLOCK", "150", "STREAMS", "b", "$"]);
    assert_eq!(v, Value::Nil);
    assert!(t.elapsed() >= Duration::from_millis(140));
    // Waiters on one stream are served in the order they blocked.
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let mut conn = s.client();
            let h = thread::spawn(move || {
                let v: Value = q(&mut conn, &["XREAD", "BLOCK", "10000", "STREAMS", "b", "$"]);
                (Instant::now(), read_ids(&v))
            });
            thread::sleep(Duration::from_millis(100));
            h
        })
        .collect();
    thread::sleep(SETTLE);
    let _: String = q(&mut c, &["XADD", "b", "8-0", "k", "v"]);
    for w in waiters {
        assert_eq!(w.join().unwrap().1, ["8-0"]);
    }
}

#[test]
fn keyspace_notifications_and_watch() {
    let s = Server::start();
    let mut c = s.client();
    let script: &[&[&str]] = &[
        &["XADD", "ev", "1-0", "a", "1"],
        &["XADD", "ev", "MAXLEN", "1", "2-0", "a", "2"],
        &["XDEL", "ev", "2-0"],
        &["XDEL", "ev", "2-0"],
        &["XADD", "ev", "3-0", "a", "3"],
        &["XTRIM", "ev", "MAXLEN", "0"],
        &["XSETID", "ev", "9-0"],
        &["XGROUP", "CREATE", "ev", "g", "$"],
        &["XGROUP", "CREATECONSUMER", "ev", "g", "c"],
        &["XGROUP", "SETID", "ev", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "newc", "STREAMS", "ev", ">"],
        &["XGROUP", "DELCONSUMER", "ev", "g", "c"],
        &["XGROUP", "DESTROY", "ev", "g"],
        &["DEL", "ev"],
    ];
    let want = [
        "xadd",
        "xadd",
        "xtrim",
        "xdel",
        "xadd",
        "xtrim",
        "xsetid",
        "xgroup-create",
        "xgroup-createconsumer",
        "xgroup-setid",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
        "xgroup-destroy",
        "del",
    ];
    let got = common::key_events_of(&s, script, want.len());
    let want: Vec<(String, String)> = want
        .iter()
        .map(|e| (e.to_string(), "ev".to_string()))
        .collect();
    assert_eq!(got, want);

    // WATCH sees a stream change from another client.
    let mut other = s.client();
    let _: String = q(&mut c, &["XADD", "w", "1-0", "a", "1"]);
    let _: () = q(&mut c, &["WATCH", "w"]);
    let _: String = q(&mut other, &["XADD", "w", "2-0", "a", "2"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: () = q(&mut c, &["XLEN", "w"]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Nil);
    assert_eq!(q::<String>(&mut c, &["TYPE", "w"]), "stream");
    assert_eq!(q::<String>(&mut c, &["OBJECT", "ENCODING", "w"]), "stream");
    let info: String = q(&mut c, &["INFO", "keyspace"]);
    assert!(info.contains("db0:keys=1,"), "{info}");
    let usage: i64 = q(&mut c, &["MEMORY", "USAGE", "w"]);
    assert!(usage > 0);
}
