//! Whole-binary tests of the sorted set commands against the real binary:
//! blocking pops served from other connections (order and timeouts),
//! SAVE and restart round trips in both encodings, encoding conversion and
//! DEBUG RELOAD, keyspace notifications, and a large set checked against a
//! model. Expected replies were read from redis-server 7.0.15.

mod common;

use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use common::{q, Server};
use redis::{Connection, FromRedisValue, Value};

/// Long enough for the server to register a waiter on a busy machine.
const SETTLE: Duration = Duration::from_millis(300);

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

fn range(c: &mut Connection, key: &str) -> Vec<(String, String)> {
    let flat: Vec<String> = q(c, &["ZRANGE", key, "0", "-1", "WITHSCORES"]);
    flat.chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect()
}

fn encoding(c: &mut Connection, key: &str) -> String {
    q(c, &["OBJECT", "ENCODING", key])
}

#[test]
fn bzpopmin_is_served_by_a_later_zadd_in_arrival_order() {
    let s = Server::start();
    let mut c = s.client();
    let first = spawn::<Vec<String>>(&s, &["BZPOPMIN", "q1", "q2", "5"]);
    let second = spawn::<Vec<String>>(&s, &["BZPOPMIN", "q2", "5"]);
    let _: i64 = q(&mut c, &["ZADD", "q2", "2", "b", "1", "a"]);
    // The first waiter takes the lowest member, the second the next one.
    assert_eq!(first.join().unwrap(), ["q2", "a", "1"]);
    assert_eq!(second.join().unwrap(), ["q2", "b", "2"]);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "q2"]), 0);

    let max = spawn::<Vec<String>>(&s, &["BZPOPMAX", "m", "5"]);
    let _: i64 = q(&mut c, &["ZADD", "m", "1", "x", "3", "y", "2", "z"]);
    assert_eq!(max.join().unwrap(), ["m", "y", "3"]);
    assert_eq!(
        range(&mut c, "m"),
        [("x".into(), "1".into()), ("z".into(), "2".into())]
    );
}

#[test]
fn bzmpop_takes_up_to_count_and_store_commands_wake_waiters() {
    let s = Server::start();
    let mut c = s.client();
    let waiter = spawn::<Value>(&s, &["BZMPOP", "5", "2", "a", "b", "MAX", "COUNT", "2"]);
    let _: i64 = q(&mut c, &["ZADD", "b", "1", "x", "2", "y", "3", "z"]);
    let got = waiter.join().unwrap();
    let (key, pairs): (String, Vec<(String, f64)>) = FromRedisValue::from_redis_value(got).unwrap();
    assert_eq!(key, "b");
    assert_eq!(pairs, [("z".to_string(), 3.0), ("y".to_string(), 2.0)]);

    // A key created by ZUNIONSTORE serves a waiter too.
    let waiter = spawn::<Vec<String>>(&s, &["BZPOPMIN", "made", "5"]);
    let _: i64 = q(&mut c, &["ZUNIONSTORE", "made", "1", "b"]);
    assert_eq!(waiter.join().unwrap(), ["made", "x", "1"]);
}

#[test]
fn blocking_pops_time_out_and_never_block_in_multi() {
    let s = Server::start();
    let mut c = s.client();
    let started = Instant::now();
    let v: Value = q(&mut c, &["BZPOPMIN", "none", "0.2"]);
    assert_eq!(v, Value::Nil);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let v: Value = q(&mut c, &["BZMPOP", "0.1", "1", "none", "MIN"]);
    assert_eq!(v, Value::Nil);
    let _: () = q(&mut c, &["MULTI"]);
    let _: () = q(&mut c, &["BZPOPMIN", "none", "0"]);
    let _: () = q(&mut c, &["BZMPOP", "0", "1", "none", "MAX"]);
    let replies: Vec<Value> = q(&mut c, &["EXEC"]);
    assert_eq!(replies, [Value::Nil, Value::Nil]);
    // A waiter of another type's key stays blocked until it times out.
    let waiter = spawn::<Value>(&s, &["BZPOPMIN", "strkey", "0.5"]);
    let _: () = q(&mut c, &["SET", "strkey", "x"]);
    assert_eq!(waiter.join().unwrap(), Value::Nil);
}

/// Members whose scores need every digit, the infinities, and zero.
fn tricky_scores(c: &mut Connection, key: &str) {
    let _: i64 = q(
        c,
        &[
            "ZADD", key, "1.1", "frac", "1e200", "huge", "-inf", "low", "+inf", "high", "0",
            "zero", "0.1", "tenth",
        ],
    );
}

#[test]
fn save_and_restart_keep_members_scores_encodings_and_ttls() {
    let mut s = Server::start();
    let mut c = s.client();
    tricky_scores(&mut c, "small");
    let _: i64 = q(&mut c, &["EXPIRE", "small", "1000"]);
    // Large enough to be a skiplist and to span several snapshot chunks.
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("big");
    for i in 0..3000 {
        zadd.arg(i * 7 % 1000).arg(format!("m{i}"));
    }
    let _: i64 = zadd.query(&mut c).unwrap();
    tricky_scores(&mut c, "big");
    let small_before = range(&mut c, "small");
    let big_before = range(&mut c, "big");
    assert_eq!(encoding(&mut c, "small"), "listpack");
    assert_eq!(encoding(&mut c, "big"), "skiplist");
    let _: () = q(&mut c, &["SAVE"]);
    s.restart();
    let mut c = s.client();
    assert_eq!(range(&mut c, "small"), small_before);
    assert_eq!(range(&mut c, "big"), big_before);
    assert_eq!(encoding(&mut c, "small"), "listpack");
    assert_eq!(encoding(&mut c, "big"), "skiplist");
    let ttl: i64 = q(&mut c, &["TTL", "small"]);
    assert!((990..=1000).contains(&ttl), "{ttl}");
    assert_eq!(q::<String>(&mut c, &["TYPE", "big"]), "zset");
    assert_eq!(
        q::<Option<i64>>(&mut c, &["ZRANK", "big", "huge"]),
        Some(3004)
    );
    let info: String = q(&mut c, &["INFO", "keyspace"]);
    assert!(info.contains("db0:keys=2,expires=1"), "{info}");
}

#[test]
fn encodings_convert_as_redis_and_reload_rederives_them() {
    let s = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "zset-max-listpack-entries", "4"]);
    let _: i64 = q(
        &mut c,
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
    );
    assert_eq!(encoding(&mut c, "z"), "listpack");
    let _: i64 = q(&mut c, &["ZADD", "z", "5", "e"]);
    assert_eq!(encoding(&mut c, "z"), "skiplist");
    // Removing members never converts back...
    let _: Value = q(&mut c, &["ZPOPMIN", "z", "3"]);
    assert_eq!(encoding(&mut c, "z"), "skiplist");
    // ...but a reload builds the set anew under the limit.
    let _: String = q(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(encoding(&mut c, "z"), "listpack");
    assert_eq!(
        range(&mut c, "z"),
        [("d".into(), "4".into()), ("e".into(), "5".into())]
    );
    let long = "x".repeat(65);
    let _: i64 = q(&mut c, &["ZADD", "z", "6", &long]);
    assert_eq!(encoding(&mut c, "z"), "skiplist");
    let _: () = q(&mut c, &["CONFIG", "SET", "zset-max-ziplist-value", "100"]);
    let _: String = q(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(encoding(&mut c, "z"), "listpack");
    let usage: i64 = q(&mut c, &["MEMORY", "USAGE", "z"]);
    assert!(usage > 65, "{usage}");
}

#[test]
fn keyspace_notifications_match_redis() {
    let s = Server::start();
    let script: &[&[&str]] = &[
        &["ZADD", "z", "1", "a", "2", "b"],
        &["ZADD", "z", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a"],
        &["ZREM", "z", "nope"],
        &["ZREM", "z", "a"],
        &["ZADD", "z", "1", "a", "3", "c"],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["ZREMRANGEBYSCORE", "z", "3", "3"],
        &["ZREMRANGEBYLEX", "z", "-", "+"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z", "5"],
        &["ZADD", "y", "1", "a"],
        &["ZUNIONSTORE", "u", "1", "y"],
        &["ZINTERSTORE", "u", "2", "y", "nokey"],
        &["ZDIFFSTORE", "d", "1", "y"],
        &["ZRANGESTORE", "r", "y", "0", "0"],
        &["ZMPOP", "1", "y", "MIN"],
    ];
    let want = [
        ("zadd", "z"),
        ("zincr", "z"),
        ("zrem", "z"),
        ("zadd", "z"),
        ("zremrangebyrank", "z"),
        ("zremrangebyscore", "z"),
        ("zremrangebylex", "z"),
        ("del", "z"),
        ("zadd", "z"),
        ("zpopmin", "z"),
        ("zpopmax", "z"),
        ("del", "z"),
        ("zadd", "y"),
        ("zunionstore", "u"),
        ("del", "u"),
        ("zdiffstore", "d"),
        ("zrangestore", "r"),
        ("zpopmin", "y"),
        ("del", "y"),
    ];
    let got = common::key_events_of(&s, script, want.len());
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(e, k)| (e.to_string(), k.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_large_set_agrees_with_a_model() {
    let s = Server::start();
    let mut c = s.client();
    // (score, member) pairs in order; scores repeat so members break ties.
    let mut model: Vec<(i64, String)> = (0..5000)
        .map(|i| ((i * 37) % 500, format!("m{i:05}")))
        .collect();
    for chunk in model.chunks(1000) {
        let mut zadd = redis::cmd("ZADD");
        zadd.arg("big");
        for (score, m) in chunk {
            zadd.arg(*score).arg(m);
        }
        let _: i64 = zadd.query(&mut c).unwrap();
    }
    model.sort();
    assert_eq!(q::<usize>(&mut c, &["ZCARD", "big"]), model.len());
    for i in [0usize, 1, 999, 2500, 4999] {
        let (_, m) = &model[i];
        assert_eq!(q::<usize>(&mut c, &["ZRANK", "big", m]), i);
        assert_eq!(
            q::<usize>(&mut c, &["ZREVRANK", "big", m]),
            model.len() - 1 - i
        );
    }
    let got: Vec<String> = q(&mut c, &["ZRANGE", "big", "1000", "1009"]);
    let want: Vec<String> = model[1000..1010].iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(got, want);
    let in_range = model.iter().filter(|(s, _)| (100..200).contains(s)).count();
    assert_eq!(
        q::<usize>(&mut c, &["ZCOUNT", "big", "100", "(200"]),
        in_range
    );
    let removed: usize = q(&mut c, &["ZREMRANGEBYSCORE", "big", "100", "(200"]);
    assert_eq!(removed, in_range);
    model.retain(|(s, _)| !(100..200).contains(s));
    let popped: Vec<String> = q(&mut c, &["ZPOPMAX", "big", "3"]);
    let top: Vec<String> = model
        .iter()
        .rev()
        .take(3)
        .flat_map(|(s, m)| [m.clone(), s.to_string()])
        .collect();
    assert_eq!(popped, top);
}

#[test]
fn commandstats_and_command_info_know_sorted_sets() {
    let s = Server::start();
    let mut c = s.client();
    let _: i64 = q(&mut c, &["ZADD", "z", "1", "a"]);
    let stats: String = q(&mut c, &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_zadd:calls=1"), "{stats}");
    let info: Value = q(&mut c, &["COMMAND", "INFO", "zadd"]);
    let text = format!("{info:?}");
    assert!(text.contains("@sortedset"), "{text}");
    let info: Value = q(&mut c, &["COMMAND", "INFO", "zunionstore"]);
    let text = format!("{info:?}");
    assert!(text.contains("movablekeys"), "{text}");
    let keys: Vec<String> = q(
        &mut c,
        &[
            "COMMAND",
            "GETKEYS",
            "ZUNIONSTORE",
            "d",
            "2",
            "a",
            "b",
            "WEIGHTS",
            "1",
            "2",
        ],
    );
    assert_eq!(keys, ["d", "a", "b"]);
    let keys: Vec<String> = q(
        &mut c,
        &["COMMAND", "GETKEYS", "ZRANGESTORE", "dst", "src", "0", "-1"],
    );
    assert_eq!(keys, ["dst", "src"]);
}

#[test]
fn redis_benchmark_zadd_and_zpopmin_run_without_errors() {
    let s = Server::start();
    for pipeline in ["1", "16"] {
        let out = std::process::Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &s.port.to_string(), "-q"])
            .args([
                "-t",
                "zadd,zpopmin",
                "-n",
                "20000",
                "-c",
                "20",
                "-r",
                "10000",
            ])
            .args(["-P", pipeline])
            .output()
            .expect("redis-benchmark is installed (redis-tools)");
        assert!(out.status.success(), "redis-benchmark failed: {out:?}");
        let report = (String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr))
            .replace('\r', "\n");
        assert!(
            !report.contains("ERR") && !report.contains("Error"),
            "errors in:\n{report}"
        );
        for name in ["ZADD", "ZPOPMIN"] {
            assert!(
                report
                    .lines()
                    .any(|l| l.starts_with(&format!("{name}: "))
                        && l.contains("requests per second")),
                "no result line for {name} (-P {pipeline}) in:\n{report}"
            );
        }
    }
    // The commands really ran: ZADD's key is a sorted set (ZPOPMIN ran after
    // it and may have emptied it, which deletes the key).
    let mut c = s.client();
    let t: String = q(&mut c, &["TYPE", "myzset"]);
    assert!(t == "zset" || t == "none", "{t}");
    let stats: String = q(&mut c, &["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_zadd:calls=40000"), "{stats}");
    assert!(stats.contains("cmdstat_zpopmin:calls=40000"), "{stats}");
}
