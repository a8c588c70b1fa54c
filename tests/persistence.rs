//! Whole-binary persistence tests: the real `forkless` process, the `redis`
//! crate and `redis-cli`; SAVE/BGSAVE/SIGTERM/save points round trips, crash
//! safety, point-in-time consistency, failing disks, corrupt dumps and
//! `forkless check-dump`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{info_persistence, q, wait_bgsave, Server, BIN};

const FIXTURE_V1: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dump-v1.rdb");
const FIXTURE_V2: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dump-v2.rdb");

/// Keys seeded by [`seed`]: (db, key) -> (type, TTL wanted).
const DBS: [u32; 3] = [0, 1, 7];

/// Writes every type, with and without TTLs, binary keys, in several databases.
fn seed(con: &mut redis::Connection) {
    for db in DBS {
        let _: () = q(con, &["SELECT", &db.to_string()]);
        let p = format!("d{db}:");
        let _: () = q(con, &["SET", &format!("{p}str"), &format!("value-{db}")]);
        let _: () = q(con, &["SET", &format!("{p}str-ttl"), "short-lived"]);
        let _: i64 = q(con, &["EXPIRE", &format!("{p}str-ttl"), "1000"]);
        let _: i64 = q(con, &["RPUSH", &format!("{p}list"), "a", "b", "c", "a"]);
        let _: i64 = q(con, &["LPUSH", &format!("{p}list-ttl"), "x", "y"]);
        let _: i64 = q(con, &["PEXPIRE", &format!("{p}list-ttl"), "500000"]);
        let _: i64 = q(con, &["HSET", &format!("{p}hash"), "f1", "v1", "f2", "v2"]);
        let _: i64 = q(con, &["HSET", &format!("{p}hash-ttl"), "f", "v"]);
        let _: i64 = q(con, &["EXPIRE", &format!("{p}hash-ttl"), "2000"]);
        let _: i64 = q(con, &["SADD", &format!("{p}set"), "m1", "m2", "m3"]);
        let _: i64 = q(con, &["SADD", &format!("{p}set-ttl"), "only"]);
        let _: i64 = q(con, &["EXPIRE", &format!("{p}set-ttl"), "3000"]);
        let _: () = redis::cmd("SET")
            .arg([p.as_bytes(), b"bin\x00\xff"].concat())
            .arg(&[0u8, 1, 2, 255][..])
            .query(con)
            .unwrap();
    }
    let _: () = q(con, &["SELECT", "0"]);
}

/// Everything [`seed`] wrote, read back: value text and TTL in ms (-1 = none).
fn capture(con: &mut redis::Connection) -> BTreeMap<String, (String, i64)> {
    let mut out = BTreeMap::new();
    for db in DBS {
        let _: () = q(con, &["SELECT", &db.to_string()]);
        let p = format!("d{db}:");
        let mut put = |k: String, v: String, con: &mut redis::Connection| {
            let ttl: i64 = q(con, &["PTTL", &k]);
            out.insert(format!("{db}/{k}"), (v, ttl));
        };
        for k in ["str", "str-ttl"] {
            let k = format!("{p}{k}");
            let v: Option<String> = q(con, &["GET", &k]);
            put(k, format!("{v:?}"), con);
        }
        for k in ["list", "list-ttl"] {
            let k = format!("{p}{k}");
            let v: Vec<String> = q(con, &["LRANGE", &k, "0", "-1"]);
            put(k, format!("{v:?}"), con);
        }
        for k in ["hash", "hash-ttl"] {
            let k = format!("{p}{k}");
            let v: BTreeMap<String, String> = q(con, &["HGETALL", &k]);
            put(k, format!("{v:?}"), con);
        }
        for k in ["set", "set-ttl"] {
            let k = format!("{p}{k}");
            let mut v: Vec<String> = q(con, &["SMEMBERS", &k]);
            v.sort();
            put(k, format!("{v:?}"), con);
        }
        let v: Vec<u8> = redis::cmd("GET")
            .arg([p.as_bytes(), b"bin\x00\xff"].concat())
            .query(con)
            .unwrap();
        put(format!("{p}bin"), format!("{v:?}"), con);
        let size: i64 = q(con, &["DBSIZE"]);
        out.insert(format!("{db}/dbsize"), (size.to_string(), -1));
    }
    let _: () = q(con, &["SELECT", "0"]);
    out
}

/// Values must match exactly; TTLs within `slack` ms (time passes across restarts).
fn assert_same(before: &BTreeMap<String, (String, i64)>, after: &BTreeMap<String, (String, i64)>) {
    assert_eq!(before.len(), after.len());
    for (k, (v, ttl)) in before {
        let (v2, ttl2) = &after[k];
        assert_eq!(v, v2, "value of {k}");
        if *ttl < 0 {
            assert_eq!(ttl, ttl2, "TTL of {k}");
        } else {
            assert!(
                *ttl2 > 0 && *ttl2 <= *ttl && ttl - ttl2 < 30_000,
                "TTL of {k}: {ttl} then {ttl2}"
            );
        }
    }
    assert!(before.values().any(|(_, t)| *t > 0), "some keys have TTLs");
}

#[test]
fn save_then_kill9_restores_every_key_value_and_ttl() {
    let mut server = Server::start();
    let mut con = server.client();
    seed(&mut con);
    let before = capture(&mut con);
    let _: () = q(&mut con, &["SAVE"]);
    server.restart(); // kill -9 first
    let mut con = server.client();
    assert_same(&before, &capture(&mut con));
    assert!(
        server.log_eventually_contains("Loaded 27 keys", std::time::Duration::from_secs(5)),
        "{}",
        server.log()
    );
    let info = info_persistence(&mut con);
    assert_eq!(info["rdb_last_load_keys_loaded"], "27");
    assert_eq!(info["rdb_last_load_keys_expired"], "0");
}

#[test]
fn bgsave_then_kill9_restores_everything() {
    let mut server = Server::start();
    let mut con = server.client();
    seed(&mut con);
    let before = capture(&mut con);
    let reply: String = q(&mut con, &["BGSAVE"]);
    assert_eq!(reply, "Background saving started");
    let info = wait_bgsave(&mut con);
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    assert_eq!(info["rdb_saves"], "1");
    assert_eq!(info["rdb_changes_since_last_save"], "0");
    assert!(info["rdb_last_save_bytes"].parse::<u64>().unwrap() > 100);
    server.restart();
    let mut con = server.client();
    assert_same(&before, &capture(&mut con));
}

#[test]
fn sigterm_saves_when_save_points_are_configured() {
    let mut server = Server::start_with(&["--save", "3600 1"]);
    let mut con = server.client();
    seed(&mut con);
    let before = capture(&mut con);
    drop(con);
    let status = server.signal_and_wait("TERM").expect("exited");
    assert!(status.success(), "{status}: {}", server.log());
    assert!(server.dir.join("dump.rdb").exists());
    server.restart();
    let mut con = server.client();
    assert_same(&before, &capture(&mut con));
}

#[test]
fn sigterm_without_save_points_does_not_save() {
    let mut server = Server::start();
    let mut con = server.client();
    let _: () = q(&mut con, &["SET", "k", "v"]);
    let status = server.signal_and_wait("INT").expect("exited");
    assert!(status.success());
    assert!(!server.dir.join("dump.rdb").exists());
}

#[test]
fn save_point_triggers_a_background_save() {
    let mut server = Server::start_with(&["--save", "1 3"]);
    let mut con = server.client();
    seed(&mut con);
    let before = capture(&mut con);
    // "1 3": at least 3 changes and more than one second since the last save.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = info_persistence(&mut con);
        if info["rdb_saves"] != "0" && info["rdb_bgsave_in_progress"] == "0" {
            assert_eq!(info["rdb_changes_since_last_save"], "0");
            break;
        }
        assert!(Instant::now() < deadline, "no automatic save: {info:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.log_eventually_contains(
        "changes in 1 seconds. Saving...",
        std::time::Duration::from_secs(5)
    ));
    server.restart();
    let mut con = server.client();
    assert_same(&before, &capture(&mut con));
}

#[test]
fn shutdown_command_saves_and_exits_zero() {
    let mut server = Server::start();
    let mut con = server.client();
    let _: () = q(&mut con, &["SET", "k", "v"]);
    let err = redis::cmd("SHUTDOWN")
        .arg("ABORT")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(err.detail(), Some("No shutdown in progress."));
    let err = redis::cmd("SHUTDOWN")
        .arg("SAVE")
        .arg("NOSAVE")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
    // No save points, but SAVE asks for one; the connection just closes.
    let result = redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut con);
    assert!(result.is_err());
    let status = server.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success());
    server.restart();
    let mut con = server.client();
    let v: String = q(&mut con, &["GET", "k"]);
    assert_eq!(v, "v");
}

#[test]
fn shutdown_nosave_skips_the_save() {
    let mut server = Server::start_with(&["--save", "3600 1"]);
    let mut con = server.client();
    let _: () = q(&mut con, &["SET", "k", "v"]);
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut con);
    let status = server.wait_exit(Duration::from_secs(10)).expect("exited");
    assert!(status.success());
    assert!(!server.dir.join("dump.rdb").exists());
}

#[test]
fn lastsave_and_bgsave_schedule() {
    let server = Server::start();
    let mut con = server.client();
    let before: i64 = q(&mut con, &["LASTSAVE"]);
    // Enough data that a background save takes a moment.
    fill(&mut con, 200_000);
    std::thread::sleep(Duration::from_millis(1100));
    let started: String = q(&mut con, &["BGSAVE"]);
    assert_eq!(started, "Background saving started");
    let again = redis::cmd("BGSAVE").query::<String>(&mut con);
    let scheduled = redis::cmd("BGSAVE")
        .arg("SCHEDULE")
        .query::<String>(&mut con);
    match (again, scheduled) {
        (Err(e), Ok(s)) => {
            assert_eq!(e.detail(), Some("Background save already in progress"));
            assert_eq!(s, "Background saving scheduled");
            let err = redis::cmd("SAVE").query::<()>(&mut con).unwrap_err();
            assert_eq!(err.detail(), Some("Background save already in progress"));
            // The scheduled save runs after the first one.
            let deadline = Instant::now() + Duration::from_secs(60);
            while info_persistence(&mut con)["rdb_saves"] != "2" {
                assert!(Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        other => eprintln!("the save finished too fast to overlap: {other:?}"),
    }
    wait_bgsave(&mut con);
    let after: i64 = q(&mut con, &["LASTSAVE"]);
    assert!(after > before, "{before} -> {after}");
    let err = redis::cmd("BGSAVE")
        .arg("x")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
}

/// Writes `n` string keys in pipelined batches.
fn fill(con: &mut redis::Connection, n: usize) {
    for start in (0..n).step_by(10_000) {
        let mut mset = redis::cmd("MSET");
        for i in start..(start + 10_000).min(n) {
            mset.arg(format!("key:{i}"))
                .arg(format!("value-{i}-xxxxxxxxxxxxxxxx"));
        }
        let _: () = mset.query(con).unwrap();
    }
}

#[test]
fn background_save_is_one_point_in_time() {
    let mut server = Server::start();
    let mut con = server.client();
    fill(&mut con, 50_000);
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..2 {
        let mut c = server.client();
        let stop = stop.clone();
        writers.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && n < 1_000_000 {
                n += 1;
                let v = n.to_string();
                let _: () = redis::cmd("MSET")
                    .arg(format!("a{w}"))
                    .arg(&v)
                    .arg(format!("b{w}"))
                    .arg(&v)
                    .query(&mut c)
                    .unwrap();
                let _: i64 = redis::cmd("INCR")
                    .arg(format!("c{w}"))
                    .query(&mut c)
                    .unwrap();
                let _: i64 = redis::cmd("INCR")
                    .arg(format!("d{w}"))
                    .query(&mut c)
                    .unwrap();
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(200));
    let _: String = q(&mut con, &["BGSAVE"]);
    wait_bgsave(&mut con);
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    server.restart();
    let mut con = server.client();
    for w in 0..2 {
        let a: Option<String> = q(&mut con, &["GET", &format!("a{w}")]);
        let b: Option<String> = q(&mut con, &["GET", &format!("b{w}")]);
        assert!(a.is_some(), "writer {w} wrote before the save");
        assert_eq!(a, b, "half an MSET in the dump");
        let c: i64 = q(&mut con, &["GET", &format!("c{w}")]);
        let d: i64 = q(&mut con, &["GET", &format!("d{w}")]);
        // INCR c then INCR d: a cut between them leaves c one ahead at most.
        assert!(c == d || c == d + 1, "c={c} d={d}");
    }
    let size: i64 = q(&mut con, &["DBSIZE"]);
    assert_eq!(size, 50_000 + 8);
}

/// Rounds of kill -9 during SAVE/BGSAVE in each crash test.
const KILL9_ROUNDS: u64 = 50;

/// A small deterministic PRNG (xorshift) so a failing round can be replayed.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn kill9_during_saves_always_leaves_the_old_or_new_dump() {
    let mut server = Server::start();
    let mut con = server.client();
    let old = 20_000i64;
    let new = 30_000i64;
    fill(&mut con, new as usize);
    // How long a save of the new state takes: kills land at random moments
    // within (and a little beyond) it.
    let started = Instant::now();
    let _: () = q(&mut con, &["SAVE"]);
    let save_time = started.elapsed().max(Duration::from_millis(2));
    let _: i64 = redis::cmd("DEL")
        .arg((old..new).map(|i| format!("key:{i}")).collect::<Vec<_>>())
        .query(&mut con)
        .unwrap();
    let _: () = q(&mut con, &["SAVE"]);
    let mut seen = [false, false];
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let test_start = Instant::now();
    let mut rounds = 0;
    for round in 0..KILL9_ROUNDS {
        rounds = round + 1;
        let mut con = server.client();
        let size: i64 = q(&mut con, &["DBSIZE"]);
        // Alternate the state being saved, so old and new differ every round.
        let target = if size == old { new } else { old };
        if target == new {
            fill(&mut con, new as usize);
        } else {
            let _: i64 = redis::cmd("DEL")
                .arg((old..new).map(|i| format!("key:{i}")).collect::<Vec<_>>())
                .query(&mut con)
                .unwrap();
        }
        if round % 2 == 0 {
            let _: String = q(&mut con, &["BGSAVE"]);
        } else {
            let mut c = server.client();
            std::thread::spawn(move || {
                let _ = redis::cmd("SAVE").query::<()>(&mut c);
            });
        }
        let max_us = (save_time.as_micros() as u64 * 6 / 5).max(1);
        std::thread::sleep(Duration::from_micros(next_random(&mut rng) % max_us));
        server.restart(); // kill -9 mid-save, then start again
        let mut con = server.client();
        let loaded: i64 = q(&mut con, &["DBSIZE"]);
        assert!(
            loaded == size || loaded == target,
            "round {round}: {loaded} keys loaded, expected {size} (old) or {target} (new)"
        );
        seen[(loaded == target) as usize] = true;
    }
    eprintln!(
        "{rounds} rounds in {:?}; old dump loaded: {}, new dump loaded: {}; temp files left by kills mid-save: {}",
        test_start.elapsed(),
        seen[0],
        seen[1],
        temp_files(&server.dir)
    );
    assert_eq!(rounds, KILL9_ROUNDS);
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .count()
}

/// Makes the server's file writes fail with EFBIG. Root ignores directory
/// permissions, but not RLIMIT_FSIZE; the server catches SIGXFSZ so the
/// save fails instead of the process dying.
fn limit_file_size(pid: u32, limit: &str) {
    let ok = Command::new("prlimit")
        .arg("--pid")
        .arg(pid.to_string())
        .arg(format!("--fsize={limit}:"))
        .status()
        .expect("prlimit (util-linux) is installed")
        .success();
    assert!(ok, "prlimit failed");
}

#[test]
fn failing_bgsave_reports_err_keeps_the_old_dump_and_refuses_writes() {
    let server = Server::start_with(&["--save", "3600 1"]);
    let mut con = server.client();
    fill(&mut con, 1000);
    let _: () = q(&mut con, &["SAVE"]);
    let dump = server.dir.join("dump.rdb");
    let good = std::fs::read(&dump).unwrap();

    limit_file_size(server.pid(), "100");
    let _: () = q(&mut con, &["SET", "extra", "1"]);
    let started: String = q(&mut con, &["BGSAVE"]);
    assert_eq!(started, "Background saving started");
    let info = wait_bgsave(&mut con);
    assert_eq!(info["rdb_last_bgsave_status"], "err");
    assert_eq!(std::fs::read(&dump).unwrap(), good, "old dump changed");
    let temps: Vec<_> = std::fs::read_dir(&server.dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    let err = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(err.code(), Some("MISCONF"));
    let v: String = q(&mut con, &["GET", "extra"]);
    assert_eq!(v, "1", "reads still work");
    assert!(server
        .log_eventually_contains("Background saving error", std::time::Duration::from_secs(5)));

    limit_file_size(server.pid(), "unlimited");
    let _: String = q(&mut con, &["BGSAVE"]);
    let info = wait_bgsave(&mut con);
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    let _: () = q(&mut con, &["SET", "k", "v"]);
}

fn start_with_dump(bytes: &[u8]) -> (tempfile::TempDir, Result<Server, String>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dump.rdb"), bytes).unwrap();
    let r = Server::spawn_in(
        dir.path(),
        &["--save", "", "--config", "enable-debug-command local"],
    );
    (dir, r)
}

#[test]
fn the_v1_fixture_loads_at_start_up() {
    let (_dir, server) = start_with_dump(&std::fs::read(FIXTURE_V1).unwrap());
    let server = server.expect("fixture loads");
    assert!(
        server
            .log()
            .contains("Loaded 6 keys (1 expired keys dropped) in"),
        "{}",
        server.log()
    );
    let mut con = server.client();
    let v: String = q(&mut con, &["GET", "str"]);
    assert_eq!(v, "hello");
    let l: Vec<String> = q(&mut con, &["LRANGE", "list", "0", "-1"]);
    assert_eq!(l, ["a", "b", "c"]);
    let reloaded: String = q(&mut con, &["DEBUG", "RELOAD"]);
    assert_eq!(reloaded, "OK");
    let mut s: Vec<String> = q(&mut con, &["SMEMBERS", "set"]);
    s.sort();
    assert_eq!(s, ["x", "y", "z"]);
    let err = redis::cmd("DEBUG")
        .arg("foo")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("unknown subcommand or wrong number of arguments for 'foo'. Try DEBUG HELP.")
    );
}

#[test]
fn corrupt_dumps_stop_the_server_with_file_problem_and_offset() {
    let good = std::fs::read(FIXTURE_V1).unwrap();
    let mut flipped = good.clone();
    flipped[60] ^= 0x01;
    let mut bumped = good.clone();
    bumped[8] = 9;
    let truncated = good[..good.len() - 3].to_vec();
    let mut trailing = good.clone();
    trailing.push(b'x');
    for (name, bytes, problem) in [
        ("flipped", flipped, ""),
        ("bumped", bumped, "version 9"),
        ("truncated", truncated, "truncated"),
        ("trailing", trailing, "trailing bytes"),
    ] {
        let started = Instant::now();
        let (dir, result) = start_with_dump(&bytes);
        let log = match result {
            Ok(_) => panic!("{name}: the server started on a bad dump"),
            Err(log) => log,
        };
        assert!(started.elapsed() < Duration::from_secs(20));
        assert!(log.contains("exited with exit status: 1"), "{name}: {log}");
        assert!(log.contains("dump.rdb"), "{name}: {log}");
        assert!(log.contains("offset"), "{name}: {log}");
        assert!(log.contains(problem), "{name}: {log}");
        assert_eq!(
            std::fs::read(dir.path().join("dump.rdb")).unwrap(),
            bytes,
            "{name}: dump touched"
        );
    }
}

fn check_dump(path: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("check-dump")
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn check_dump_reports_sound_corrupt_and_unreadable_files() {
    let (code, out) = check_dump(Path::new(FIXTURE_V1));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK, format version 1"), "{out}");
    assert!(out.contains("db0: 6 keys"), "{out}");
    assert!(out.contains("db3: 1 keys"), "{out}");
    assert!(out.contains("  set: 1"), "{out}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.rdb");
    let mut bytes = std::fs::read(FIXTURE_V1).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out) = check_dump(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CORRUPT: checksum mismatch at offset"),
        "{out}"
    );

    let (code, out) = check_dump(&dir.path().join("missing.rdb"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("unreadable"), "{out}");

    // Format version 2: the same report, and a defect inside a compressed
    // block named by the block's offset.
    let (code, out) = check_dump(Path::new(FIXTURE_V2));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("OK, format version 2"), "{out}");
    assert!(out.contains("db1: 5 keys"), "{out}");
    assert!(out.contains("  zset: 1"), "{out}");
    let mut bytes = std::fs::read(FIXTURE_V2).unwrap();
    bytes[40] ^= 0x20;
    std::fs::write(&bad, &bytes).unwrap();
    let (code, out) = check_dump(&bad);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("CORRUPT: ") && out.contains("offset 32"),
        "{out}"
    );
}

/// Runs with only the list commands: big lists (many chunks) in two databases
/// survive SAVE, BGSAVE, DEBUG RELOAD and kill -9.
#[test]
fn lists_survive_save_bgsave_reload_and_kill9() {
    let mut server = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut con = server.client();
    let items: Vec<String> = (0..5000).map(|i| format!("item-{i}")).collect();
    for db in ["0", "2"] {
        let _: () = q(&mut con, &["SELECT", db]);
        let _: i64 = redis::cmd("RPUSH")
            .arg("big")
            .arg(&items)
            .query(&mut con)
            .unwrap();
        let _: i64 = q(&mut con, &["LPUSH", "small", "x"]);
    }
    let _: () = q(&mut con, &["SAVE"]);
    server.restart();
    let mut con = server.client();
    for db in ["0", "2"] {
        let _: () = q(&mut con, &["SELECT", db]);
        let got: Vec<String> = q(&mut con, &["LRANGE", "big", "0", "-1"]);
        assert_eq!(got, items, "db {db}");
    }
    let _: i64 = q(&mut con, &["RPUSH", "big", "after-save"]);
    let started: String = q(&mut con, &["BGSAVE"]);
    assert_eq!(started, "Background saving started");
    // SAVE is refused while the background save runs; bounded retry.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match redis::cmd("SAVE").query::<()>(&mut con) {
            Ok(()) => break,
            Err(e) => {
                assert_eq!(e.detail(), Some("Background save already in progress"));
                assert!(Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    let ok: String = q(&mut con, &["DEBUG", "RELOAD"]);
    assert_eq!(ok, "OK");
    let len: i64 = q(&mut con, &["LLEN", "big"]);
    assert_eq!(len, 5001);
    server.restart();
    let mut con = server.client();
    let _: () = q(&mut con, &["SELECT", "2"]);
    let last: Vec<String> = q(&mut con, &["LRANGE", "big", "-1", "-1"]);
    assert_eq!(last, ["after-save"]);
    assert!(server.log_eventually_contains(
        "Loaded 4 keys (0 expired keys dropped)",
        std::time::Duration::from_secs(5)
    ));
}

/// kill -9 during SAVE and BGSAVE, repeatedly: the restart always loads a
/// whole dump, old or new (lists only, so it runs with the list commands).
#[test]
fn kill9_mid_save_loads_a_whole_old_or_new_dump_lists() {
    let mut server = Server::start();
    let mut con = server.client();
    let items: Vec<String> = (0..1000).map(|i| format!("element-{i:06}")).collect();
    let mut pipe = redis::pipe();
    for k in 0..300 {
        pipe.cmd("RPUSH").arg(format!("l{k}")).arg(&items).ignore();
    }
    pipe.cmd("RPUSH").arg("marker").arg("0").ignore();
    let _: () = pipe.query(&mut con).unwrap();
    let _: () = q(&mut con, &["SAVE"]);
    let mut last_saved = 0i64;
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for round in 1..=KILL9_ROUNDS as i64 {
        let mut con = server.client();
        // The new state: the marker and one list grow by one element.
        let _: i64 = q(&mut con, &["RPUSH", "marker", &round.to_string()]);
        let _: i64 = q(&mut con, &["RPUSH", "l0", &round.to_string()]);
        if round % 2 == 0 {
            let _: String = q(&mut con, &["BGSAVE"]);
        } else {
            let mut c = server.client();
            std::thread::spawn(move || {
                let _ = redis::cmd("SAVE").query::<()>(&mut c);
            });
        }
        std::thread::sleep(Duration::from_micros(next_random(&mut rng) % 40_000));
        server.restart(); // kill -9, then start again
        let mut con = server.client();
        let marker: Vec<i64> = q(&mut con, &["LRANGE", "marker", "0", "-1"]);
        let top = *marker.last().unwrap();
        assert!(
            top == round || top == last_saved,
            "round {round}: marker {marker:?}"
        );
        let l0: i64 = q(&mut con, &["LLEN", "l0"]);
        assert_eq!(
            l0,
            1000 + marker.len() as i64 - 1,
            "round {round}: torn dump"
        );
        let l299: i64 = q(&mut con, &["LLEN", "l299"]);
        assert_eq!(l299, 1000);
        // The state now holds the loaded dump; rounds continue from it.
        last_saved = top;
    }
    eprintln!(
        "temp files left by kills mid-save: {}",
        temp_files(&server.dir)
    );
}

/// A shutdown whose save fails keeps the server up (SIGTERM and SHUTDOWN),
/// unless FORCE; once the disk works again, SIGTERM saves and exits 0.
#[test]
fn failed_shutdown_save_keeps_the_server_up() {
    let mut server = Server::start_with(&["--save", "3600 1"]);
    let mut con = server.client();
    let _: () = q(&mut con, &["SET", "k", "v1"]);
    limit_file_size(server.pid(), "10");

    let err = redis::cmd("SHUTDOWN").query::<()>(&mut con).unwrap_err();
    assert_eq!(err.detail(), Some("Errors trying to SHUTDOWN. Check logs."));
    assert!(server.dir.join("dump.rdb").metadata().is_err());

    let pid = server.pid().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(
        server.wait_exit(Duration::from_secs(2)).is_none(),
        "exited on a failed save"
    );
    let v: String = q(&mut con, &["GET", "k"]);
    assert_eq!(v, "v1", "still serving");
    assert!(
        server.log_eventually_contains("can't exit", std::time::Duration::from_secs(5)),
        "{}",
        server.log()
    );

    limit_file_size(server.pid(), "unlimited");
    let _: () = q(&mut con, &["SET", "k", "v2"]);
    let status = server.signal_and_wait("TERM").expect("exited");
    assert!(status.success());
    server.restart();
    let v: String = q(&mut server.client(), &["GET", "k"]);
    assert_eq!(v, "v2");

    // FORCE exits even though the save fails; the old dump stays.
    let mut con = server.client();
    let _: () = q(&mut con, &["SET", "k", "v3"]);
    limit_file_size(server.pid(), "10");
    let _ = redis::cmd("SHUTDOWN").arg("FORCE").query::<()>(&mut con);
    let status = server
        .wait_exit(Duration::from_secs(10))
        .expect("FORCE exits");
    assert!(status.success());
    server.restart();
    let v: String = q(&mut server.client(), &["GET", "k"]);
    assert_eq!(v, "v2");
}

/// Hashes and sets bigger than one chunk, and a multi-chunk string, survive
/// BGSAVE and kill -9; DEBUG RELOAD keeps them too.
#[test]
fn big_hashes_sets_and_strings_round_trip() {
    let mut server = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut con = server.client();
    let mut hset = redis::cmd("HSET");
    hset.arg("h");
    let mut sadd = redis::cmd("SADD");
    sadd.arg("s");
    for i in 0..3000 {
        hset.arg(format!("field-{i}")).arg(format!("value-{i}"));
        sadd.arg(format!("member-{i}"));
    }
    let _: i64 = hset.query(&mut con).unwrap();
    let _: i64 = sadd.query(&mut con).unwrap();
    let big = "x".repeat(3 << 20);
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .unwrap();
    let _: String = q(&mut con, &["BGSAVE"]);
    assert_eq!(wait_bgsave(&mut con)["rdb_last_bgsave_status"], "ok");
    server.restart();
    let mut con = server.client();
    let n: i64 = q(&mut con, &["HLEN", "h"]);
    assert_eq!(n, 3000);
    let v: String = q(&mut con, &["HGET", "h", "field-2999"]);
    assert_eq!(v, "value-2999");
    let n: i64 = q(&mut con, &["SCARD", "s"]);
    assert_eq!(n, 3000);
    let yes: i64 = q(&mut con, &["SISMEMBER", "s", "member-1234"]);
    assert_eq!(yes, 1);
    let got: String = q(&mut con, &["GET", "big"]);
    assert!(got == big);
    let ok: String = q(&mut con, &["DEBUG", "RELOAD"]);
    assert_eq!(ok, "OK");
    let n: i64 = q(&mut con, &["DBSIZE"]);
    assert_eq!(n, 3);
    let info = info_persistence(&mut con);
    assert_eq!(info["rdb_last_load_keys_loaded"], "3");
    assert!(info["rdb_last_clone_usec"].parse::<u64>().is_ok());
}

#[test]
fn bgsave_cancel_stops_the_save_and_keeps_the_previous_dump() {
    let server = Server::start();
    let mut con = server.client();
    let err = redis::cmd("BGSAVE")
        .arg("CANCEL")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("Background saving is currently not in progress or scheduled")
    );
    let _: () = q(&mut con, &["SET", "before", "1"]);
    let _: () = q(&mut con, &["SAVE"]);
    let dump = server.dir.join("dump.rdb");
    let old = std::fs::read(&dump).unwrap();
    // Enough data that a background save takes a while; retried a few times
    // in case a save wins the race against its cancel.
    fill(&mut con, 300_000);
    let mut cancelled = false;
    for _ in 0..5 {
        let started: String = q(&mut con, &["BGSAVE"]);
        assert_eq!(started, "Background saving started");
        match redis::cmd("BGSAVE").arg("CANCEL").query::<String>(&mut con) {
            Ok(reply) => {
                assert_eq!(reply, "Background saving cancelled");
                cancelled = true;
                break;
            }
            Err(e) => {
                eprintln!("the save finished before its cancel: {e}");
                let _: () = q(&mut con, &["FLUSHALL"]);
                let _: () = q(&mut con, &["SET", "before", "1"]);
                let _: () = q(&mut con, &["SAVE"]);
                fill(&mut con, 300_000);
            }
        }
    }
    assert!(cancelled, "no save could be cancelled");
    let info = wait_bgsave(&mut con);
    assert_eq!(info["rdb_last_bgsave_status"], "cancelled");
    assert_eq!(std::fs::read(&dump).unwrap(), old, "the old dump changed");
    assert_eq!(temp_files(&server.dir), 0);
    assert!(server.log_eventually_contains(
        "Background saving cancelled; the previous dump is unchanged",
        Duration::from_secs(5)
    ));
    // A cancel is not a failed save: writes go on, and the next save works.
    let _: () = q(&mut con, &["SET", "after", "2"]);
    let started: String = q(&mut con, &["BGSAVE"]);
    assert_eq!(started, "Background saving started");
    let info = wait_bgsave(&mut con);
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    assert_ne!(std::fs::read(&dump).unwrap(), old);
    let err = redis::cmd("BGSAVE")
        .arg("CANCEL")
        .query::<()>(&mut con)
        .unwrap_err();
    assert_eq!(
        err.detail(),
        Some("Background saving is currently not in progress or scheduled")
    );
}

#[test]
fn the_v2_fixture_loads_and_corrupt_v2_dumps_are_refused_untouched() {
    let good = std::fs::read(FIXTURE_V2).unwrap();
    let (_dir, server) = start_with_dump(&good);
    let server = server.expect("fixture loads");
    let mut con = server.client();
    let _: () = q(&mut con, &["SELECT", "1"]);
    let v: String = q(&mut con, &["GET", "int"]);
    assert_eq!(v, "-1234567890123");
    let v: String = q(&mut con, &["GET", "not-int"]);
    assert_eq!(v, "007");
    let enc: String = q(&mut con, &["OBJECT", "ENCODING", "intset"]);
    assert_eq!(enc, "intset");
    let z: Vec<String> = q(&mut con, &["ZRANGE", "zset", "0", "-1", "WITHSCORES"]);
    assert_eq!(z, ["n", "-2", "m", "1.5"]);
    let n: i64 = q(&mut con, &["STRLEN", "long"]);
    assert_eq!(n, 3 << 19);
    drop(server);
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x01;
    let truncated = good[..good.len() - 3].to_vec();
    for (name, bytes, problem) in [
        ("flipped", flipped, ""),
        ("truncated", truncated, "truncated"),
    ] {
        let (dir, result) = start_with_dump(&bytes);
        let log = match result {
            Ok(_) => panic!("{name}: the server started on a bad dump"),
            Err(log) => log,
        };
        assert!(log.contains("exited with exit status: 1"), "{name}: {log}");
        assert!(
            log.contains("dump.rdb") && log.contains("offset"),
            "{name}: {log}"
        );
        assert!(log.contains(problem), "{name}: {log}");
        assert_eq!(
            std::fs::read(dir.path().join("dump.rdb")).unwrap(),
            bytes,
            "{name}: dump touched"
        );
    }
}
