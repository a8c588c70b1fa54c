//! Whole-binary tests of Lua scripting with real clients: the `redis` crate's
//! `Script` (EVALSHA with its EVAL fallback), a busy script answered `-BUSY`
//! and stopped by SCRIPT KILL, a script that wrote stopped only by SHUTDOWN
//! NOSAVE, snapshots that never catch half a script, and redis-py's `Lock` and
//! `register_script` (in a venv the test makes itself).

mod common;

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
    let e = c.query::<Value>(con).expect_err("expected an error");
    // The crate splits the code from the message; put them back together.
    match e.code() {
        Some(code) => format!("{code} {}", e.detail().unwrap_or_default()),
        None => e.to_string(),
    }
}

#[test]
fn redis_crate_script_falls_back_to_eval() {
    let s = Server::start();
    let mut c = s.client();
    let script = redis::Script::new(
        "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], ARGV[2])",
    );
    // The cache is empty: EVALSHA answers NOSCRIPT and the crate sends EVAL.
    let n: i64 = script
        .key("name")
        .key("counter")
        .arg("forkless")
        .arg(5)
        .invoke(&mut c)
        .unwrap();
    assert_eq!(n, 5);
    let exists: Vec<i64> = q(&mut c, &["SCRIPT", "EXISTS", script.get_hash()]);
    assert_eq!(exists, vec![1]);
    // Now EVALSHA hits the cache.
    let n: i64 = script
        .key("name")
        .key("counter")
        .arg("again")
        .arg(2)
        .invoke(&mut c)
        .unwrap();
    assert_eq!(n, 7);
    let name: String = q(&mut c, &["GET", "name"]);
    assert_eq!(name, "again");
    let _: String = q(&mut c, &["SCRIPT", "FLUSH"]);
    let n: i64 = script
        .key("name")
        .key("counter")
        .arg("x")
        .arg(1)
        .invoke(&mut c)
        .unwrap();
    assert_eq!(n, 8);
    let info: String = q(&mut c, &["INFO", "memory"]);
    assert!(info.contains("number_of_cached_scripts:1"), "{info}");
}

/// Starts `script` on its own connection; returns the thread's reply text.
fn run_in_background(port: u16, script: &'static str) -> std::thread::JoinHandle<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut con = client.get_connection().unwrap();
    std::thread::spawn(move || {
        match redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .query::<Value>(&mut con)
        {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!(
                "{} {}",
                e.code().unwrap_or("?"),
                e.detail().unwrap_or_default()
            ),
        }
    })
}

/// Waits until a plain command is answered BUSY (the script is past the threshold).
fn wait_busy(c: &mut redis::Connection) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match redis::cmd("PING").query::<String>(c) {
            Ok(_) => {}
            Err(e) if e.code() == Some("BUSY") => {
                return format!("BUSY {}", e.detail().unwrap_or_default());
            }
            Err(e) => panic!("PING: {e}"),
        }
        assert!(Instant::now() < deadline, "the script never became busy");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn busy_script_is_answered_busy_and_killed_by_script_kill() {
    let s = Server::start();
    let mut c = s.client();
    let _: String = q(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "100"]);
    let runner = run_in_background(s.port, "local i = 0 while true do i = i + 1 end");
    let busy = wait_busy(&mut c);
    assert_eq!(
        busy,
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
    );
    // FUNCTION KILL does not stop an EVAL script.
    assert_eq!(q_err(&mut c, &["FUNCTION", "KILL"]), busy);
    let ok: String = q(&mut c, &["SCRIPT", "KILL"]);
    assert_eq!(ok, "OK");
    let reply = runner.join().unwrap();
    assert!(
        reply.starts_with("ERR Script killed by user with SCRIPT KILL... script: "),
        "{reply}"
    );
    let pong: String = q(&mut c, &["PING"]);
    assert_eq!(pong, "PONG");
    assert_eq!(
        q_err(&mut c, &["SCRIPT", "KILL"]),
        "NOTBUSY No scripts in execution right now."
    );
}

#[test]
fn a_script_that_wrote_stops_only_with_shutdown_nosave() {
    let mut s = Server::start();
    let mut c = s.client();
    let _: String = q(&mut c, &["CONFIG", "SET", "lua-time-limit", "100"]);
    let _runner = run_in_background(
        s.port,
        "redis.call('SET', 'written', '1') while true do end",
    );
    wait_busy(&mut c);
    assert!(q_err(&mut c, &["SCRIPT", "KILL"])
        .starts_with("UNKILLABLE Sorry the script already executed write commands"));
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<Value>(&mut c);
    assert!(
        s.wait_exit(Duration::from_secs(20)).is_some(),
        "SHUTDOWN NOSAVE did not stop the server"
    );
}

/// Scripts keep `a == b == LLEN l`; every dump taken while they run must
/// show that too, or a snapshot caught half a script.
#[test]
fn snapshots_never_capture_half_a_script() {
    let s = Server::start();
    let mut c = s.client();
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.port;
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut c = client.get_connection().unwrap();
                let script = redis::Script::new(
                    "redis.call('INCR', KEYS[1])
                     for i = 1, 2000 do local x = i * 2 end
                     redis.call('RPUSH', KEYS[3], 'x')
                     return redis.call('INCR', KEYS[2])",
                );
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) && n < 100_000 {
                    let _: i64 = script.key("a").key("b").key("l").invoke(&mut c).unwrap();
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
        assert_eq!(a, b, "dump {i} caught half a script");
        assert_eq!(a.unwrap_or(0), l, "dump {i} caught half a script");
        if i == dumps.len() - 1 {
            assert!(l > 0, "the scripts ran before the last dump");
        }
    }
}

#[test]
fn redis_py_lock_and_register_script() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let s = Server::start();
    common::run_python_check(
        &python,
        "redis_py_scripting.py",
        s.port,
        "redis-py scripting OK",
        Duration::from_secs(120),
    );
}

#[test]
fn function_dump_restore_round_trip_and_fcall() {
    let s = Server::start();
    let mut c = s.client();
    let code = "#!lua name=counters\n\
        redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\n\
        redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";
    let name: String = q(&mut c, &["FUNCTION", "LOAD", code]);
    assert_eq!(name, "counters");
    let n: i64 = q(&mut c, &["FCALL", "bump", "1", "n", "5"]);
    assert_eq!(n, 5);
    let v: String = q(&mut c, &["FCALL_RO", "peek", "1", "n"]);
    assert_eq!(v, "5");
    let dump: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut c).unwrap();
    let _: String = q(&mut c, &["FUNCTION", "FLUSH"]);
    assert!(q_err(&mut c, &["FCALL", "bump", "1", "n", "1"]).contains("Function not found"));
    let ok: String = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let n: i64 = q(&mut c, &["FCALL", "bump", "1", "n", "1"]);
    assert_eq!(n, 6);
    // APPEND (the default) refuses an existing library; REPLACE and FLUSH take it.
    let e = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&dump)
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    for policy in ["REPLACE", "FLUSH"] {
        let ok: String = redis::cmd("FUNCTION")
            .arg("RESTORE")
            .arg(&dump)
            .arg(policy)
            .query(&mut c)
            .unwrap();
        assert_eq!(ok, "OK");
    }
    let mut bad = dump.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let e = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&bad)
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("payload version or checksum are wrong"),
        "{e}"
    );
}

#[test]
fn busy_function_is_killed_by_function_kill() {
    let s = Server::start();
    let mut c = s.client();
    let _: String = q(&mut c, &["CONFIG", "SET", "busy-reply-threshold", "100"]);
    let _: String = q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=spin\nredis.register_function('spin', function() while true do end end)",
        ],
    );
    let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port)).unwrap();
    let mut con = client.get_connection().unwrap();
    let runner = std::thread::spawn(move || {
        match redis::cmd("FCALL")
            .arg("spin")
            .arg(0)
            .query::<Value>(&mut con)
        {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!(
                "{} {}",
                e.code().unwrap_or("?"),
                e.detail().unwrap_or_default()
            ),
        }
    });
    let busy = wait_busy(&mut c);
    assert_eq!(
        busy,
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
    );
    assert_eq!(q_err(&mut c, &["SCRIPT", "KILL"]), busy);
    let ok: String = q(&mut c, &["FUNCTION", "KILL"]);
    assert_eq!(ok, "OK");
    let reply = runner.join().unwrap();
    assert!(
        reply.starts_with("ERR Script killed by user with FUNCTION KILL... script: spin"),
        "{reply}"
    );
}

#[test]
fn functions_are_saved_in_snapshots_and_loaded_back() {
    let mut s = Server::start();
    let mut c = s.client();
    let _: String = q(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=kept\nredis.register_function('hello', function(keys, args) return 'hi ' .. args[1] end)",
        ],
    );
    let _: String = q(&mut c, &["SET", "k", "v"]);
    let _: String = q(&mut c, &["SAVE"]);
    // FLUSHALL leaves functions alone (Redis 7.0); FUNCTION FLUSH removes them.
    let _: String = q(&mut c, &["FLUSHALL"]);
    let r: String = q(&mut c, &["FCALL", "hello", "0", "there"]);
    assert_eq!(r, "hi there");
    s.restart();
    let mut c = s.client();
    let r: String = q(&mut c, &["FCALL", "hello", "0", "again"]);
    assert_eq!(r, "hi again");
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "v");
    let info: String = q(&mut c, &["INFO", "memory"]);
    assert!(info.contains("number_of_functions:1"), "{info}");
    let _: String = q(&mut c, &["FUNCTION", "FLUSH"]);
    let _: String = q(&mut c, &["SAVE"]);
    s.restart();
    let mut c = s.client();
    assert!(q_err(&mut c, &["FCALL", "hello", "0", "x"]).contains("Function not found"));
}
