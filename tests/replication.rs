//! Replication between real forkless processes on loopback: full sync from
//! the O(1) snapshot with writes before, during and after it, restarts and
//! partial resyncs, READONLY, WAIT, and a replica joining under write load.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{capture, error, info_field, q, wait_until, Server};

fn replica_of(primary: &Server) -> Server {
    Server::start_with(&[
        "--save",
        "",
        "--replicaof",
        &format!("127.0.0.1 {}", primary.port),
    ])
}

/// A replica of `primary` that loads a full sync with `repl-diskless-load mode`.
fn diskless_replica_of(primary: &Server, mode: &str) -> Server {
    Server::start_with(&[
        "--save",
        "",
        "--config",
        &format!("repl-diskless-load {mode}"),
        "--replicaof",
        &format!("127.0.0.1 {}", primary.port),
    ])
}

/// Waits until every replica is linked and has applied all the primary wrote.
fn converge(primary: &Server, replicas: &[&Server]) {
    let mut p = primary.client();
    let ok = wait_until(Duration::from_secs(30), || {
        let offset = info_field(&mut p, "replication", "master_repl_offset");
        replicas.iter().all(|r| {
            let mut c = r.client();
            info_field(&mut c, "replication", "master_link_status") == "up"
                && info_field(&mut c, "replication", "slave_repl_offset") == offset
        })
    });
    assert!(ok, "replicas did not catch up:\n{}", replicas[0].log());
}

/// Writes of every type, the ones Redis rewrites for replicas among them.
fn write_every_type(c: &mut redis::Connection, tag: &str) {
    let k = |name: &str| format!("{name}:{tag}");
    let script: &[&[&str]] = &[
        &["SET", &k("s"), "v"],
        &["SET", &k("ex"), "v", "EX", "1000"],
        &["SET", &k("px"), "v", "PX", "900000", "GET"],
        &["SETEX", &k("setex"), "500", "v"],
        &["PSETEX", &k("psetex"), "500000", "v"],
        &["SET", &k("exp"), "v"],
        &["EXPIRE", &k("exp"), "700"],
        &["SET", &k("pexp"), "v"],
        &["PEXPIRE", &k("pexp"), "800000"],
        &["SET", &k("gone"), "v"],
        &["EXPIRE", &k("gone"), "-1"],
        &["INCR", &k("n")],
        &["INCRBY", &k("n"), "41"],
        &["INCRBYFLOAT", &k("f"), "1.25"],
        &["INCRBYFLOAT", &k("f"), "0.1"],
        &["APPEND", &k("s"), "tail"],
        &["SETRANGE", &k("s"), "1", "XY"],
        &["SETBIT", &k("bits"), "77", "1"],
        &["PFADD", &k("hll"), "a", "b", "c"],
        &["RPUSH", &k("l"), "a", "b", "c", "d"],
        &["LPUSH", &k("l"), "z"],
        &["LPOP", &k("l")],
        &["LMOVE", &k("l"), &k("l2"), "LEFT", "RIGHT"],
        &["HSET", &k("h"), "f1", "1", "f2", "2", "f3", "x"],
        &["HINCRBYFLOAT", &k("h"), "f1", "2.5"],
        &["HINCRBY", &k("h"), "f2", "3"],
        &["HDEL", &k("h"), "f3"],
        &["SADD", &k("set"), "a", "b", "c", "d", "e", "f"],
        &["SPOP", &k("set")],
        &["SPOP", &k("set"), "2"],
        &["SREM", &k("set"), "zz"],
        &["ZADD", &k("z"), "1", "a", "2", "b", "3", "c"],
        &["ZINCRBY", &k("z"), "1.5", "a"],
        &["ZPOPMIN", &k("z")],
        &["XADD", &k("x"), "*", "f", "v"],
        &["XADD", &k("x"), "*", "g", "w"],
        &["GETEX", &k("s"), "EX", "600"],
        &["SET", &k("gd"), "v"],
        &["GETDEL", &k("gd")],
        &["COPY", &k("s"), &k("copy")],
        &["RENAME", &k("copy"), &k("renamed")],
        &["SET", &k("del"), "v"],
        &["DEL", &k("del")],
        &["SET", &k("moved"), "v"],
        &["MOVE", &k("moved"), "5"],
        &["SET", &k("short"), "v", "PX", "30"],
    ];
    for line in script {
        let _: redis::Value = q(c, line);
    }
    let _: redis::Value = q(
        c,
        &[
            "EVAL",
            "redis.call('set', KEYS[1], 'x'); redis.call('rpush', KEYS[2], 'a', 'b'); return 1",
            "2",
            &k("lua1"),
            &k("lua2"),
        ],
    );
    let _: redis::Value = redis::pipe()
        .cmd("MULTI")
        .cmd("SET")
        .arg(k("tx"))
        .arg("1")
        .cmd("INCR")
        .arg(k("tx"))
        .cmd("EXEC")
        .query(c)
        .unwrap();
    let _: () = q(c, &["SELECT", "3"]);
    let _: () = q(c, &["SET", &k("db3"), "three"]);
    let _: i64 = q(c, &["HSET", &k("db3h"), "a", "1"]);
    let _: () = q(c, &["SELECT", "0"]);
}

/// A client blocked in BLPOP is served by a later push: the pop reaches
/// replicas as LPOP.
fn blocked_pop(primary: &Server, tag: &str) {
    let key = format!("q:{tag}");
    let mut waiter = primary.client();
    let k2 = key.clone();
    let t = std::thread::spawn(move || {
        let v: redis::Value = q(&mut waiter, &["BLPOP", &k2, "5"]);
        v
    });
    let mut c = primary.client();
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut c, "clients", "blocked_clients") == "1"
    }));
    let _: i64 = q(&mut c, &["RPUSH", &key, "a", "b"]);
    let popped = t.join().unwrap();
    assert!(format!("{popped:?}").contains('a'), "{popped:?}");
}

#[test]
fn replicas_equal_the_primary_after_writes_before_during_and_after_the_sync() {
    let primary = Server::start();
    let mut p = primary.client();
    // Enough keys that the snapshot stream takes a while.
    let mut pipe = redis::pipe();
    for i in 0..20_000 {
        pipe.cmd("SET").arg(format!("bulk:{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut p).unwrap();
    write_every_type(&mut p, "before");
    blocked_pop(&primary, "before");

    let stop = Arc::new(AtomicBool::new(false));
    let during = {
        let stop = stop.clone();
        let mut c = primary.client();
        std::thread::spawn(move || {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) && round < 2000 {
                write_every_type(&mut c, &format!("during{round}"));
                round += 1;
            }
            round
        })
    };
    let r1 = replica_of(&primary);
    let r2 = Server::start();
    let _: () = q(
        &mut r2.client(),
        &["REPLICAOF", "127.0.0.1", &primary.port.to_string()],
    );
    assert!(wait_until(Duration::from_secs(30), || {
        info_field(&mut p, "replication", "connected_slaves") == "2"
    }));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    assert!(during.join().unwrap() > 0);

    write_every_type(&mut p, "after");
    blocked_pop(&primary, "after");
    // The 30 ms keys are gone on the primary (active expiry) and, by its
    // DELs, on the replicas.
    assert!(wait_until(Duration::from_secs(5), || {
        let n: i64 = q(&mut p, &["EXISTS", "short:after"]);
        n == 0
    }));
    let _: () = q(&mut p, &["SET", "marker", "end"]);
    converge(&primary, &[&r1, &r2]);

    let want = capture(&mut p);
    assert!(want.len() > 20_000);
    for r in [&r1, &r2] {
        let got = capture(&mut r.client());
        let diff: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(*k) != Some(*v))
            .take(5)
            .collect();
        assert!(diff.is_empty(), "replica differs on {diff:?}");
        assert_eq!(got.len(), want.len());
    }
    let mut c1 = r1.client();
    assert_eq!(info_field(&mut c1, "replication", "role"), "slave");
    assert_eq!(info_field(&mut p, "stats", "sync_full"), "2");
    let role: redis::Value = q(&mut p, &["ROLE"]);
    assert!(format!("{role:?}").contains("master"), "{role:?}");
}

#[test]
fn a_killed_replica_resyncs_and_a_short_disconnect_continues_partially() {
    let primary = Server::start();
    let mut p = primary.client();
    write_every_type(&mut p, "one");
    let mut replica = replica_of(&primary);
    converge(&primary, &[&replica]);

    replica.kill9();
    write_every_type(&mut p, "two");
    replica.restart();
    // The 30 ms key expires on the primary first, so both captures agree.
    assert!(wait_until(Duration::from_secs(5), || {
        let n: i64 = q(&mut p, &["EXISTS", "short:two"]);
        n == 0
    }));
    converge(&primary, &[&replica]);
    assert_eq!(capture(&mut replica.client()), capture(&mut p));
    assert_eq!(info_field(&mut p, "stats", "sync_full"), "2");

    // The link drops; the replica comes back within the backlog.
    let killed: i64 = q(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
    assert_eq!(killed, 1);
    write_every_type(&mut p, "three");
    converge(&primary, &[&replica]);
    assert_eq!(info_field(&mut p, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut p, "stats", "sync_full"), "2");
    assert_eq!(capture(&mut replica.client()), capture(&mut p));

    // Promoted, the replica keeps the history as replid2; the old primary
    // follows it with a partial resync.
    let old_id = info_field(&mut p, "replication", "master_replid");
    let mut r = replica.client();
    let _: () = q(&mut r, &["REPLICAOF", "NO", "ONE"]);
    assert_eq!(info_field(&mut r, "replication", "master_replid2"), old_id);
    let _: () = q(
        &mut p,
        &["REPLICAOF", "127.0.0.1", &replica.port.to_string()],
    );
    let _: () = q(&mut r, &["SET", "after-promotion", "1"]);
    converge(&replica, &[&primary]);
    assert_eq!(info_field(&mut r, "stats", "sync_partial_ok"), "1");
    assert_eq!(info_field(&mut r, "stats", "sync_full"), "0");
    let v: String = q(&mut p, &["GET", "after-promotion"]);
    assert_eq!(v, "1");
}

#[test]
fn writes_on_a_replica_get_readonly_and_wait_counts_acknowledging_replicas() {
    let primary = Server::start();
    let r1 = replica_of(&primary);
    let r2 = replica_of(&primary);
    converge(&primary, &[&r1, &r2]);
    let mut c = r1.client();
    assert_eq!(
        error(&mut c, &["SET", "k", "v"]),
        "READONLY You can't write against a read only replica."
    );
    assert_eq!(
        error(&mut c, &["WAIT", "1", "0"])
            .split(' ')
            .next()
            .unwrap(),
        "ERR"
    );
    let v: Option<String> = q(&mut c, &["GET", "k"]);
    assert_eq!(v, None);

    let mut p = primary.client();
    let _: () = q(&mut p, &["SET", "k", "v"]);
    let acked: i64 = q(&mut p, &["WAIT", "2", "5000"]);
    assert_eq!(acked, 2);
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "v");
    let started = std::time::Instant::now();
    let acked: i64 = q(&mut p, &["WAIT", "3", "300"]);
    assert_eq!(acked, 2);
    assert!(started.elapsed() >= Duration::from_millis(250));

    // min-replicas-to-write counts the replicas that acknowledged lately.
    let _: () = q(&mut p, &["CONFIG", "SET", "min-replicas-to-write", "3"]);
    assert_eq!(
        error(&mut p, &["SET", "k", "w"]),
        "NOREPLICAS Not enough good replicas to write."
    );
    let _: () = q(&mut p, &["CONFIG", "SET", "min-replicas-to-write", "2"]);
    let _: () = q(&mut p, &["SET", "k", "w"]);

    // With replica-read-only off, a replica takes local writes.
    let _: () = q(&mut c, &["CONFIG", "SET", "replica-read-only", "no"]);
    let _: () = q(&mut c, &["SET", "local", "1"]);
}

#[test]
fn a_replica_joining_under_a_50_client_write_load_gives_no_write_errors() {
    let primary = Server::start();
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let writes = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..50)
        .map(|w| {
            let (stop, errors, writes) = (stop.clone(), errors.clone(), writes.clone());
            let mut c = primary.client();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < 200_000 {
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(format!("w{w}:{}", i % 500))
                        .arg(i)
                        .query(&mut c);
                    if r.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let replica = replica_of(&primary);
    let mut p = primary.client();
    assert!(wait_until(Duration::from_secs(30), || {
        info_field(&mut replica.client(), "replication", "master_link_status") == "up"
    }));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(errors.load(Ordering::Relaxed), 0);
    assert!(writes.load(Ordering::Relaxed) > 1000);
    converge(&primary, &[&replica]);
    assert_eq!(capture(&mut replica.client()), capture(&mut p));
}

#[test]
fn a_replica_without_its_primary_serves_stale_data_or_masterdown() {
    let gone = common::free_port();
    let replica = Server::start();
    let mut c = replica.client();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: () = q(&mut c, &["REPLICAOF", "127.0.0.1", &gone.to_string()]);
    assert_eq!(
        info_field(&mut c, "replication", "master_link_status"),
        "down"
    );
    // replica-serve-stale-data yes (the default): the old data set is served.
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "v");
    let _: () = q(&mut c, &["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    assert_eq!(
        error(&mut c, &["GET", "k"]),
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."
    );
    // Commands Redis flags `stale` still run.
    let role: Vec<redis::Value> = q(&mut c, &["ROLE"]);
    assert_eq!(role.len(), 5);
    let same: String = q(&mut c, &["REPLICAOF", "127.0.0.1", &gone.to_string()]);
    assert_eq!(same, "OK Already connected to specified master");
    let _: () = q(&mut c, &["REPLICAOF", "NO", "ONE"]);
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "v");
}

#[test]
fn a_redis_rdb_from_a_redis_primary_is_refused_with_a_clear_log_line() {
    let port = common::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut redis = common::redis_server_command(port, dir.path())
        .args(["--repl-diskless-sync-delay", "0"])
        .spawn()
        .expect("redis-server");
    let replica = Server::start();
    let mut c = replica.client();
    let ok = wait_until(Duration::from_secs(10), || {
        q::<String>(&mut c, &["REPLICAOF", "127.0.0.1", &port.to_string()]) == "OK"
    });
    let refused = replica.log_eventually_contains(
        "a forkless replica loads only forkless snapshots",
        Duration::from_secs(20),
    );
    let _ = redis.kill();
    let _ = redis.wait();
    assert!(ok && refused, "{}", replica.log());
    assert_eq!(
        info_field(&mut c, "replication", "master_link_status"),
        "down"
    );
}

#[test]
fn a_replica_hides_expired_keys_and_deletes_them_when_its_primary_says() {
    let primary = Server::start_with(&["--save", "", "--config", "enable-debug-command yes"]);
    let replica = replica_of(&primary);
    let mut p = primary.client();
    let _: () = q(&mut p, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    let _: () = q(&mut p, &["SET", "t", "v", "PX", "150"]);
    let _: () = q(&mut p, &["SET", "keep", "v"]);
    converge(&primary, &[&replica]);
    std::thread::sleep(Duration::from_millis(300));
    let mut r = replica.client();
    // Logically expired: not served, but still held (no DEL came yet).
    let v: Option<String> = q(&mut r, &["GET", "t"]);
    assert_eq!(v, None);
    let n: i64 = q(&mut r, &["EXISTS", "t"]);
    assert_eq!(n, 0);
    assert_eq!(
        info_field(&mut r, "keyspace", "db0").split(',').next(),
        Some("keys=2")
    );
    // The primary's lazy expiry sends the DEL.
    let v: Option<String> = q(&mut p, &["GET", "t"]);
    assert_eq!(v, None);
    converge(&primary, &[&replica]);
    assert_eq!(
        info_field(&mut r, "keyspace", "db0").split(',').next(),
        Some("keys=1")
    );
}

#[test]
fn publish_reaches_a_replica_s_subscribers() {
    let primary = Server::start();
    let replica = replica_of(&primary);
    converge(&primary, &[&replica]);
    let mut sub = replica.client();
    let mut pubsub = sub.as_pubsub();
    pubsub.subscribe("news").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _: i64 = q(&mut primary.client(), &["PUBLISH", "news", "hello"]);
    let msg = pubsub.get_message().unwrap();
    let payload: String = msg.get_payload().unwrap();
    assert_eq!(payload, "hello");
}

#[test]
fn a_replica_past_its_output_buffer_limit_is_dropped_and_syncs_again() {
    let primary = Server::start();
    let mut p = primary.client();
    let mut pipe = redis::pipe();
    for i in 0..50_000 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
    }
    let _: () = pipe.query(&mut p).unwrap();
    let _: () = q(
        &mut p,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 65536 0 0",
        ],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut c = primary.client();
        std::thread::spawn(move || {
            let value = vec![b'x'; 4096];
            for round in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut pipe = redis::pipe();
                for i in 0..20 {
                    pipe.cmd("SET").arg(format!("w{i}")).arg(&value).ignore();
                }
                let _: () = pipe.query(&mut c).unwrap();
                if round % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let replica = replica_of(&primary);
    let dropped = primary.log_eventually_contains(
        "overcoming of output buffer limits (replica",
        Duration::from_secs(30),
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(dropped, "{}", primary.log());
    // With room again, the replica's next attempt completes.
    let _: () = q(
        &mut p,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 268435456 67108864 60",
        ],
    );
    converge(&primary, &[&replica]);
    let mut r = replica.client();
    let size: i64 = q(&mut p, &["DBSIZE"]);
    assert_eq!(q::<i64>(&mut r, &["DBSIZE"]), size);
    let keys: Vec<String> = (0..20).map(|i| format!("w{i}")).collect();
    let mget = |c: &mut redis::Connection| -> Vec<Option<Vec<u8>>> {
        redis::cmd("MGET").arg(&keys).query(c).unwrap()
    };
    assert_eq!(mget(&mut r), mget(&mut p));
}

#[test]
fn a_replica_of_a_replica_starts_in_the_database_the_stream_selected() {
    let primary = Server::start();
    let middle = replica_of(&primary);
    let mut p = primary.client();
    converge(&primary, &[&middle]);
    // One connection: the primary's stream selects db 3 once, before the
    // second replica exists, and never again.
    let _: () = q(&mut p, &["SELECT", "3"]);
    let _: () = q(&mut p, &["SET", "x", "1"]);
    converge(&primary, &[&middle]);
    let last = replica_of(&middle);
    converge(&middle, &[&last]);
    let _: () = q(&mut p, &["SET", "y", "2"]);
    let _: i64 = q(&mut p, &["RPUSH", "l", "a"]);
    converge(&primary, &[&middle]);
    converge(&middle, &[&last]);
    let mut c = last.client();
    let _: () = q(&mut c, &["SELECT", "3"]);
    assert_eq!(
        q::<Option<String>>(&mut c, &["GET", "y"]).as_deref(),
        Some("2")
    );
    let _: () = q(&mut c, &["SELECT", "0"]);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
    assert_eq!(capture(&mut c), capture(&mut p));
}

#[test]
fn a_primary_that_becomes_a_replica_unblocks_its_blocked_clients() {
    let other = Server::start();
    let server = Server::start();
    let mut blpop = server.client();
    let mut wait = server.client();
    let waiter = std::thread::spawn(move || {
        let _: () = q(&mut wait, &["SET", "a", "1"]);
        let e = error(&mut wait, &["WAIT", "1", "0"]);
        let closed = redis::cmd("PING").query::<String>(&mut wait).is_err();
        (e, closed)
    });
    // WAIT counts in blocked_clients, as BLPOP does (Redis's BLOCKED_WAIT).
    let mut c = server.client();
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut c, "clients", "blocked_clients") == "1"
    }));
    let popper = std::thread::spawn(move || {
        let e = error(&mut blpop, &["BLPOP", "nokey", "0"]);
        let closed = redis::cmd("PING").query::<String>(&mut blpop).is_err();
        (e, closed)
    });
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut c, "clients", "blocked_clients") == "2"
    }));
    let _: () = q(&mut c, &["REPLICAOF", "127.0.0.1", &other.port.to_string()]);
    let expected = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
    for t in [popper, waiter] {
        let (e, closed) = t.join().unwrap();
        assert_eq!(e, expected);
        assert!(closed, "the connection closes after the error, as in Redis");
    }
    assert_eq!(info_field(&mut c, "clients", "blocked_clients"), "0");
}

/// Stops or resumes a process (SIGSTOP / SIGCONT).
fn signal(server: &Server, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(server.pid().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    if sig == "STOP" {
        // `kill` returns before every thread has stopped: a replica thread
        // still running could acknowledge what the primary sends next.
        assert!(
            wait_until(Duration::from_secs(10), || all_threads_stopped(
                server.pid()
            )),
            "the replica's threads did not stop"
        );
    }
}

/// Every thread of `pid` is in the stopped state (`T` in its `stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

#[test]
fn shutdown_waits_for_a_lagging_replica_and_now_or_abort_skip_the_wait() {
    // A replica that keeps up: SHUTDOWN returns once it has everything.
    let mut primary = Server::start();
    let replica = replica_of(&primary);
    converge(&primary, &[&replica]);
    let mut p = primary.client();
    let _: () = q(&mut p, &["SET", "last", "1"]);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut p);
    assert!(primary.wait_exit(Duration::from_secs(10)).is_some());
    let mut r = replica.client();
    assert_eq!(
        q::<Option<String>>(&mut r, &["GET", "last"]).as_deref(),
        Some("1")
    );

    // A stopped replica never acknowledges: the wait lasts shutdown-timeout,
    // FORCE or not (FORCE only overrides a failed save, as in Redis 7.0).
    let mut primary = Server::start_with(&["--save", "", "--config", "shutdown-timeout 2"]);
    let stopped = replica_of(&primary);
    converge(&primary, &[&stopped]);
    signal(&stopped, "STOP");
    let mut p = primary.client();
    let _: () = q(&mut p, &["SET", "k", "v"]);
    let started = std::time::Instant::now();
    let _ = redis::cmd("SHUTDOWN").arg("FORCE").query::<()>(&mut p);
    assert!(primary.wait_exit(Duration::from_secs(10)).is_some());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1900),
        "exited after {waited:?}"
    );
    assert!(primary
        .log()
        .contains("Waiting for replicas before shutting down"));
    assert!(
        primary.log().contains("Lagging replica"),
        "{}",
        primary.log()
    );

    // ABORT ends the wait: the SHUTDOWN client gets an error and writes
    // (paused meanwhile) go on.
    signal(&stopped, "CONT");
    let mut primary = Server::start_with(&["--save", "", "--config", "shutdown-timeout 30"]);
    let replica = replica_of(&primary);
    converge(&primary, &[&replica]);
    signal(&replica, "STOP");
    let mut p = primary.client();
    let _: () = q(&mut p, &["SET", "k", "v"]);
    let shutting = std::thread::spawn(move || error(&mut p, &["SHUTDOWN"]));
    let mut c = primary.client();
    assert!(wait_until(Duration::from_secs(5), || {
        primary
            .log()
            .contains("Waiting for replicas before shutting down")
    }));
    assert_eq!(q::<String>(&mut c, &["SHUTDOWN", "ABORT"]), "OK");
    assert_eq!(
        shutting.join().unwrap(),
        "ERR Errors trying to SHUTDOWN. Check logs."
    );
    let _: () = q(&mut c, &["SET", "after", "1"]);
    assert_eq!(
        error(&mut c, &["SHUTDOWN", "ABORT"]),
        "ERR No shutdown in progress."
    );

    // SIGTERM waits as SHUTDOWN does.
    let _: () = q(&mut c, &["CONFIG", "SET", "shutdown-timeout", "1"]);
    let started = std::time::Instant::now();
    assert!(primary.signal_and_wait("TERM").is_some());
    assert!(started.elapsed() >= Duration::from_millis(900));
    signal(&replica, "CONT");

    // NOW skips the wait.
    let mut primary = Server::start_with(&["--save", "", "--config", "shutdown-timeout 30"]);
    let replica = replica_of(&primary);
    converge(&primary, &[&replica]);
    signal(&replica, "STOP");
    let mut c = primary.client();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let started = std::time::Instant::now();
    let _ = redis::cmd("SHUTDOWN").arg("NOW").query::<()>(&mut c);
    assert!(primary.wait_exit(Duration::from_secs(10)).is_some());
    assert!(started.elapsed() < Duration::from_secs(5));
    signal(&replica, "CONT");
}

/// Reads one RESP command (an array of bulk strings) from a replica.
fn read_command(r: &mut impl std::io::BufRead) -> Vec<String> {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let n: usize = line.trim_end()[1..].parse().unwrap();
    (0..n)
        .map(|_| {
            line.clear();
            r.read_line(&mut line).unwrap();
            let len: usize = line.trim_end()[1..].parse().unwrap();
            let mut buf = vec![0u8; len + 2];
            r.read_exact(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..len]).into_owned()
        })
        .collect()
}

/// Plays a primary's side of the handshake up to `+FULLRESYNC`.
fn accept_until_fullresync(listener: &std::net::TcpListener) -> std::net::TcpStream {
    use std::io::Write;
    let (mut sock, _) = listener.accept().unwrap();
    let mut reader = std::io::BufReader::new(sock.try_clone().unwrap());
    loop {
        let cmd = read_command(&mut reader);
        let reply = match cmd[0].to_ascii_uppercase().as_str() {
            "PING" => "+PONG\r\n".to_string(),
            "PSYNC" => format!("+FULLRESYNC {} 100\r\n", "a".repeat(40)),
            _ => "+OK\r\n".to_string(),
        };
        sock.write_all(reply.as_bytes()).unwrap();
        if cmd[0].eq_ignore_ascii_case("psync") {
            return sock;
        }
    }
}

#[test]
fn info_shows_a_sync_s_progress_with_redis_s_fields() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let replica = Server::start();
    let mut c = replica.client();
    let _: () = q(&mut c, &["REPLICAOF", "127.0.0.1", &port]);
    let fields = |c: &mut redis::Connection| -> Vec<String> {
        [
            "master_sync_in_progress",
            "master_sync_total_bytes",
            "master_sync_read_bytes",
            "master_sync_left_bytes",
            "master_sync_perc",
            "master_sync_last_io_seconds_ago",
            "master_link_down_since_seconds",
        ]
        .iter()
        .map(|f| info_field(c, "replication", f))
        .collect()
    };
    // Before the payload's header: the size is not known (-1), and the link
    // was never up (-1), as a Redis 7.0 replica prints them.
    let mut sock = accept_until_fullresync(&listener);
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut c, "replication", "master_sync_in_progress") == "1"
    }));
    assert_eq!(fields(&mut c), ["1", "-1", "0", "-1", "-0.00", "0", "-1"]);
    // A `$<len>` payload: its size and the share read.
    sock.write_all(b"$1000\r\n").unwrap();
    sock.write_all(&[b'x'; 250]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut c, "replication", "master_sync_read_bytes") == "250"
    }));
    assert_eq!(
        fields(&mut c),
        ["1", "1000", "250", "750", "25.00", "0", "-1"]
    );
    let read: i64 = info_field(&mut c, "replication", "slave_read_repl_offset")
        .parse()
        .unwrap();
    assert!(read >= 0);
    drop(sock);
    // An `$EOF:` payload (what forkless primaries send): size 0, so "left"
    // goes negative, as in Redis.
    let mut sock = accept_until_fullresync(&listener);
    sock.write_all(format!("$EOF:{}\r\n", "m".repeat(40)).as_bytes())
        .unwrap();
    sock.write_all(&[b'x'; 300]).unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        info_field(&mut c, "replication", "master_sync_read_bytes") == "300"
    }));
    assert_eq!(fields(&mut c), ["1", "0", "300", "-300", "0.00", "0", "-1"]);
    drop(sock);
    let _: () = q(&mut c, &["REPLICAOF", "NO", "ONE"]);
}

#[test]
fn replicas_load_from_the_socket_with_repl_diskless_load() {
    let primary = Server::start();
    let mut p = primary.client();
    write_every_type(&mut p, "before");
    let swapdb = diskless_replica_of(&primary, "swapdb");
    let empty = diskless_replica_of(&primary, "on-empty-db");
    write_every_type(&mut p, "after");
    converge(&primary, &[&swapdb, &empty]);
    // The 30 ms key must be gone on the primary before the captures.
    std::thread::sleep(Duration::from_millis(50));
    let _: Option<String> = q(&mut p, &["GET", "short:after"]);
    converge(&primary, &[&swapdb, &empty]);
    let want = capture(&mut p);
    assert_eq!(capture(&mut swapdb.client()), want);
    assert_eq!(capture(&mut empty.client()), want);
    for r in [&swapdb, &empty] {
        assert!(
            r.log().contains("loading the snapshot from the socket"),
            "{}",
            r.log()
        );
    }

    // A full resync from the same history (the replica fell out of the
    // backlog): swapdb keeps serving the old data set while it loads. The
    // writes outgrow the 1 MB backlog by far more than the loopback socket
    // buffers hold, so what the stopped replica can still read is not
    // enough to continue partially.
    signal(&swapdb, "STOP");
    let value = "v".repeat(1024);
    for round in 0..4 {
        let mut pipe = redis::pipe();
        for i in 0..5000 {
            pipe.cmd("SET")
                .arg(format!("big{round}:{i}"))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query(&mut p).unwrap();
    }
    let _: i64 = q(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
    signal(&swapdb, "CONT");
    assert!(
        swapdb.log_eventually_contains(
            "serving the old data set meanwhile",
            Duration::from_secs(20)
        ),
        "{}",
        swapdb.log()
    );
    converge(&primary, &[&swapdb]);
    assert_eq!(capture(&mut swapdb.client()), capture(&mut p));
    let mut r = swapdb.client();
    assert_eq!(info_field(&mut r, "persistence", "async_loading"), "0");
}

/// Writes `fill:{from}`..`fill:{to}` with 100-byte values: MSETs of 1000
/// keys, 20 to a round trip.
fn fill(c: &mut redis::Connection, from: usize, to: usize) {
    let value = "f".repeat(100);
    let mut i = from;
    while i < to {
        let mut pipe = redis::pipe();
        for _ in 0..20 {
            if i >= to {
                break;
            }
            let end = (i + 1000).min(to);
            let mut mset = redis::cmd("MSET");
            for k in i..end {
                mset.arg(format!("fill:{k}")).arg(&value);
            }
            pipe.add_command(mset).ignore();
            i = end;
        }
        let _: () = pipe.query(c).unwrap();
    }
}

#[test]
fn a_swapdb_replica_serves_its_old_data_set_while_it_loads_the_new_one() {
    let primary = Server::start();
    let mut p = primary.client();
    let probes: Vec<String> = (0..10).map(|i| format!("probe:{i}")).collect();
    let set_probes = |c: &mut redis::Connection, value: &str| {
        let mut mset = redis::cmd("MSET");
        for k in &probes {
            mset.arg(k).arg(format!("{value}:{k}"));
        }
        let _: () = mset.query(c).unwrap();
    };
    let want = |value: &str| -> Vec<Option<String>> {
        probes
            .iter()
            .map(|k| Some(format!("{value}:{k}")))
            .collect()
    };
    set_probes(&mut p, "v0");
    let replica = diskless_replica_of(&primary, "swapdb");
    converge(&primary, &[&replica]);
    let mut r = replica.client();
    let mget = |c: &mut redis::Connection| -> Vec<Option<String>> {
        redis::cmd("MGET")
            .arg(&probes)
            .query(c)
            .unwrap_or_else(|e| panic!("a read during the load failed: {e}"))
    };
    assert_eq!(mget(&mut r), want("v0"));

    // Each round forces a full sync of the same history (the stopped
    // replica falls out of the backlog) over a bigger data set, until a
    // read lands while the replica reports the load: the machine decides
    // how long a load takes, the test only how big it is.
    let mut keys = 0;
    let mut reads_during = 0;
    for (round, size) in [300_000usize, 1_200_000, 4_800_000].into_iter().enumerate() {
        let (old, new) = (format!("v{round}"), format!("v{}", round + 1));
        let async_loads = replica
            .log()
            .matches("serving the old data set meanwhile")
            .count();
        signal(&replica, "STOP");
        fill(&mut p, keys, size);
        keys = size;
        set_probes(&mut p, &new);
        let _: i64 = q(&mut p, &["CLIENT", "KILL", "TYPE", "replica"]);
        signal(&replica, "CONT");

        let offset = info_field(&mut p, "replication", "master_repl_offset");
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            // A read counts as during the load when INFO shows the load
            // both before and after it.
            let before = info_field(&mut r, "persistence", "async_loading");
            let got = mget(&mut r);
            let loading = info_field(&mut r, "persistence", "loading");
            let after = info_field(&mut r, "persistence", "async_loading");
            if before == "1" && after == "1" {
                assert_eq!(got, want(&old), "the old data set is served meanwhile");
                assert_eq!(loading, "0", "an async load is not a -LOADING load");
                reads_during += 1;
            }
            let done = after == "0"
                && info_field(&mut r, "replication", "master_link_status") == "up"
                && info_field(&mut r, "replication", "slave_repl_offset") == offset;
            if done {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: the replica did not sync:\n{}",
                replica.log()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let async_loads_now = || {
            replica
                .log()
                .matches("serving the old data set meanwhile")
                .count()
        };
        wait_until(Duration::from_secs(5), || async_loads_now() > async_loads);
        assert_eq!(
            async_loads_now(),
            async_loads + 1,
            "round {round}: one full sync of the same history, loaded async:\n{}",
            replica.log()
        );
        assert_eq!(mget(&mut r), want(&new));
        assert_eq!(q::<i64>(&mut r, &["DBSIZE"]), (size + probes.len()) as i64);
        if reads_during > 0 {
            break;
        }
    }
    assert!(
        reads_during > 0,
        "no read landed during a load of {keys} keys"
    );
}

/// The id of the replica connection `server` serves (CLIENT LIST TYPE
/// replica): a new id means the replica reconnected.
fn replica_client_ids(server: &Server) -> Vec<String> {
    let list: String = q(&mut server.client(), &["CLIENT", "LIST", "TYPE", "replica"]);
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `sync_full`, `sync_partial_ok`, `sync_partial_err` of `server`.
fn sync_counts(server: &Server) -> [i64; 3] {
    let mut c = server.client();
    ["sync_full", "sync_partial_ok", "sync_partial_err"]
        .map(|f| info_field(&mut c, "stats", f).parse().unwrap())
}

/// Waits until the 30 ms key of `write_every_type(tag)` is gone on `server`.
fn short_key_expired(server: &Server, tag: &str) {
    let mut c = server.client();
    assert!(wait_until(Duration::from_secs(5), || {
        q::<i64>(&mut c, &["EXISTS", &format!("short:{tag}")]) == 0
    }));
}

#[test]
fn a_primary_turned_replica_keeps_its_replicas_until_it_loads_a_new_history() {
    let a = Server::start();
    let mut ca = a.client();
    write_every_type(&mut ca, "a");
    let b = replica_of(&a);
    converge(&a, &[&b]);
    let c = Server::start();
    write_every_type(&mut c.client(), "c");
    short_key_expired(&c, "c");
    let ids = replica_client_ids(&a);
    let counts = sync_counts(&a);

    // As Redis 7.0's replicationSetMaster: B stays connected while A has
    // no link to its new primary.
    let dead = common::free_port().to_string();
    let _: () = q(&mut ca, &["REPLICAOF", "127.0.0.1", &dead]);
    assert_eq!(info_field(&mut ca, "replication", "connected_slaves"), "1");
    let attempt = format!("Connecting to MASTER 127.0.0.1:{dead}");
    assert!(wait_until(Duration::from_secs(10), || a
        .log()
        .matches(&attempt)
        .count()
        >= 2));
    assert_eq!(replica_client_ids(&a), ids, "B stayed connected to A");
    assert_eq!(
        info_field(&mut b.client(), "replication", "master_link_status"),
        "up"
    );
    assert_eq!(sync_counts(&a), counts);

    // A full sync from a primary of another history: once A installs it,
    // B must sync anew, fully (A's old id is no history of A's any more).
    let _: () = q(&mut ca, &["REPLICAOF", "127.0.0.1", &c.port.to_string()]);
    converge(&c, &[&a]);
    converge(&a, &[&b]);
    assert_ne!(replica_client_ids(&a), ids);
    let [full, ok, err] = sync_counts(&a);
    assert_eq!([full, ok, err], [counts[0] + 1, counts[1], counts[2] + 1]);
    assert_eq!(capture(&mut b.client()), capture(&mut c.client()));

    // C's stream reaches B through A.
    write_every_type(&mut c.client(), "c2");
    short_key_expired(&c, "c2");
    converge(&c, &[&a]);
    converge(&a, &[&b]);
    assert_eq!(capture(&mut b.client()), capture(&mut c.client()));
}

/// A primary holding every type with two replicas in sync. Its expired
/// key reaches the replicas as a DEL before the test goes on, so a replica
/// promoted later is not behind the primary's history.
fn primary_with_two_replicas(tag: &str) -> (Server, Server, Server) {
    let primary = Server::start();
    write_every_type(&mut primary.client(), tag);
    short_key_expired(&primary, tag);
    let first = replica_of(&primary);
    let second = replica_of(&primary);
    converge(&primary, &[&first, &second]);
    (primary, first, second)
}

#[test]
fn a_primary_turned_replica_of_its_promoted_replica_passes_the_partial_sync_on() {
    let (a, b, c) = primary_with_two_replicas("a");
    let mut ca = a.client();
    let mut cc = c.client();
    let _: () = q(&mut cc, &["REPLICAOF", "NO", "ONE"]);
    write_every_type(&mut cc, "c");
    short_key_expired(&c, "c");
    let counts = sync_counts(&a);

    // A continues from C under C's new id: as Redis, A drops B, which
    // continues from A partially under A's old id (now A's replid2).
    let _: () = q(&mut ca, &["REPLICAOF", "127.0.0.1", &c.port.to_string()]);
    converge(&c, &[&a]);
    converge(&a, &[&b]);
    assert_eq!(sync_counts(&c), [0, 1, 0], "{}\n----\n{}", a.log(), c.log());
    assert_eq!(sync_counts(&a), [counts[0], counts[1] + 1, counts[2]]);
    let mut cb = b.client();
    assert_eq!(
        info_field(&mut cb, "replication", "master_replid"),
        info_field(&mut cc, "replication", "master_replid")
    );
    assert_eq!(capture(&mut cb), capture(&mut cc));

    write_every_type(&mut cc, "c2");
    short_key_expired(&c, "c2");
    converge(&c, &[&a]);
    converge(&a, &[&b]);
    assert_eq!(capture(&mut cb), capture(&mut cc));
}

#[test]
fn a_replica_moved_to_another_replica_of_its_primary_keeps_its_replicas_connected() {
    let (x, a, c) = primary_with_two_replicas("x");
    let mut cx = x.client();
    // The stream selects database 3 last before the move.
    let _: () = q(&mut cx, &["SELECT", "3"]);
    let _: () = q(&mut cx, &["SET", "before-move", "1"]);
    converge(&x, &[&a, &c]);
    let b = replica_of(&a);
    converge(&a, &[&b]);
    let ids = replica_client_ids(&a);
    let counts = sync_counts(&a);

    // C has the same history as A: A continues from it under the same id,
    // and B never notices (Redis keeps it too).
    let _: () = q(
        &mut a.client(),
        &["REPLICAOF", "127.0.0.1", &c.port.to_string()],
    );
    converge(&c, &[&a]);
    assert_eq!(sync_counts(&c), [0, 1, 0], "{}\n----\n{}", a.log(), c.log());
    // What follows has no SELECT: A must go on applying it in database 3.
    let _: () = q(&mut cx, &["SET", "after-move", "1"]);
    let _: () = q(&mut cx, &["SELECT", "0"]);
    write_every_type(&mut cx, "x2");
    short_key_expired(&x, "x2");
    converge(&x, &[&c]);
    converge(&c, &[&a]);
    converge(&a, &[&b]);
    assert_eq!(replica_client_ids(&a), ids, "B stayed connected to A");
    assert_eq!(sync_counts(&a), counts);
    let want = capture(&mut cx);
    assert_eq!(capture(&mut a.client()), want);
    assert_eq!(capture(&mut b.client()), want);

    // Promoted, A has a new id: as Redis, B reconnects to learn it and
    // continues partially.
    let mut ca = a.client();
    let _: () = q(&mut ca, &["REPLICAOF", "NO", "ONE"]);
    let _: () = q(&mut ca, &["SET", "after-promotion", "1"]);
    converge(&a, &[&b]);
    assert_ne!(replica_client_ids(&a), ids);
    assert_eq!(sync_counts(&a), [counts[0], counts[1] + 1, counts[2]]);
    assert_eq!(
        info_field(&mut b.client(), "replication", "master_replid"),
        info_field(&mut ca, "replication", "master_replid")
    );
    assert_eq!(capture(&mut b.client()), capture(&mut ca));
}
