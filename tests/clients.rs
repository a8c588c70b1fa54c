//! Real clients against the real binary: `redis-cli` (single commands,
//! `--pipe` mass insertion, `--scan`, `--bigkeys`, compared with a real
//! redis-server where the output is deterministic), redis-py from PyPI in a
//! virtualenv under `target/` (RESP2 and RESP3), and the `redis` crate's
//! async pipelines on a multiplexed connection.

mod common;
#[path = "differential/mod.rs"]
mod harness;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Server;
use harness::real::RealRedis;

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli is installed");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// Commands whose redis-cli output must be the same from both servers.
const CLI_SCRIPT: &[&[&str]] = &[
    &["SET", "k", "hello world"],
    &["GET", "k"],
    &["--no-raw", "GET", "k"],
    // (argv cannot carry NUL; the corpus covers it over RESP)
    &["SET", "bin", "a\u{1}b\r\nc\u{7f}"],
    &["--no-raw", "GET", "bin"],
    &["GET", "nokey"],
    &["--no-raw", "GET", "nokey"],
    &["INCR", "k"],
    &["--no-raw", "INCR", "k"],
    &["RPUSH", "l", "a", "b", "c"],
    &["LRANGE", "l", "0", "-1"],
    &["--no-raw", "LRANGE", "l", "0", "-1"],
    &["--no-raw", "LRANGE", "nokey", "0", "-1"],
    &["HSET", "h", "f", "v"],
    &["-3", "--no-raw", "HGETALL", "h"],
    &["-3", "HGETALL", "h"],
    &["--no-raw", "HGETALL", "h"],
    &["-3", "--no-raw", "GET", "nokey"],
    &["-3", "--no-raw", "HINCRBYFLOAT", "h", "n", "1.5"],
    &["-3", "--no-raw", "SMISMEMBER", "nokey", "a"],
    &["--no-raw", "EXPIRE", "k", "100"],
    &["--no-raw", "TYPE", "l"],
    &["--no-raw", "PING"],
    &["-n", "3", "--no-raw", "SET", "x", "db3"],
    &["-n", "3", "GET", "x"],
    &["-n", "99", "GET", "x"],
    &["--no-raw", "NOSUCH", "x"],
    &["--no-raw", "GET"],
    &["--no-raw", "BLPOP", "nokey", "0.01"],
    &["-3", "--no-raw", "BLPOP", "nokey", "0.01"],
    &["DEL", "k", "bin", "l", "h"],
];

#[test]
fn redis_cli_output_matches_redis_server() {
    let s = Server::start();
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; comparison skipped");
        assert_eq!(s.cli(&["PING"]).trim(), "PONG");
        return;
    };
    for args in CLI_SCRIPT {
        let theirs = cli(real.port, args);
        let ours = cli(s.port, args);
        assert_eq!(ours, theirs, "redis-cli {args:?}");
    }
    assert_eq!(s.cli(&["--no-raw", "GET", "x"]).trim(), "(nil)");
}

/// 100k SET commands in RESP, as `redis-cli --pipe` documents.
fn mass_insert_input(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 48);
    for i in 0..n {
        let key = format!("key:{i}");
        let val = format!("val:{i}");
        write!(
            out,
            "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{val}\r\n",
            key.len(),
            val.len()
        )
        .unwrap();
    }
    out
}

#[test]
fn redis_cli_pipe_scan_and_bigkeys() {
    let s = Server::start();
    const N: usize = 100_000;
    let mut child = Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "--pipe", "--pipe-timeout", "60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli is installed");
    let input = mass_insert_input(N);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("errors: 0, replies: 100000"), "{text}");

    // The data arrived whole.
    let mut c = s.client();
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap(), N);
    let keys: Vec<String> = (0..N).map(|i| format!("key:{i}")).collect();
    for chunk in keys.chunks(10_000) {
        let vals: Vec<String> = redis::cmd("MGET").arg(chunk).query(&mut c).unwrap();
        for (k, v) in chunk.iter().zip(&vals) {
            assert_eq!(&v[4..], &k[4..], "{k}");
        }
    }

    // --scan --pattern visits every match once.
    let scanned = s.cli(&["--scan", "--pattern", "key:1*"]);
    let mut found: Vec<&str> = scanned.lines().collect();
    found.sort_unstable();
    let before = found.len();
    found.dedup();
    assert_eq!(before, found.len(), "duplicates in --scan");
    let expected = keys.iter().filter(|k| k.starts_with("key:1")).count();
    assert_eq!(found.len(), expected);
    assert_eq!(expected, 11_111);

    // --bigkeys finds the biggest key of each type.
    redis::cmd("RPUSH")
        .arg("biglist")
        .arg(&["a"; 50])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("RPUSH")
        .arg("smalllist")
        .arg("a")
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SADD")
        .arg("bigset")
        .arg(&["1", "2", "3"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("HSET")
        .arg("bighash")
        .arg(&["f", "v", "g", "w"])
        .query::<()>(&mut c)
        .unwrap();
    redis::cmd("SET")
        .arg("bigstring")
        .arg("x".repeat(1000))
        .query::<()>(&mut c)
        .unwrap();
    let report = s.cli(&["--bigkeys"]);
    for line in [
        "Biggest string found '\"bigstring\"' has 1000 bytes",
        "Biggest   list found '\"biglist\"' has 50 items",
        "Biggest    set found '\"bigset\"' has 3 members",
        "Biggest   hash found '\"bighash\"' has 2 fields",
        "100001 strings with",
        "2 lists with 51 items",
    ] {
        assert!(report.contains(line), "--bigkeys lacks {line:?}:\n{report}");
    }
    assert!(report.contains("Sampled 100005 keys"), "{report}");
}

#[test]
fn redis_cli_bigkeys_matches_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; comparison skipped");
        return;
    };
    let s = Server::start();
    for port in [real.port, s.port] {
        cli(port, &["RPUSH", "l", "a", "b", "c"]);
        cli(port, &["RPUSH", "l2", "a"]);
        cli(port, &["SADD", "s", "x", "y"]);
        cli(port, &["HSET", "h", "f", "v"]);
        cli(port, &["SET", "str", "hello"]);
        cli(port, &["SET", "str2", "hi"]);
    }
    // The summary (everything after the sampling log, whose order is the
    // servers' own) must be the same.
    let summary = |port: u16| -> Vec<String> {
        let report = cli(port, &["--bigkeys"]);
        let tail = report
            .split("-------- summary -------")
            .nth(1)
            .unwrap_or_else(|| panic!("no summary in:\n{report}"))
            .to_string();
        tail.lines().map(str::to_string).collect()
    };
    assert_eq!(summary(s.port), summary(real.port));
}

#[test]
fn redis_py_strings_lists_hashes_sets_expiry_resp3() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let s = Server::start();
    common::run_python_check(
        &python,
        "redis_py_check.py",
        s.port,
        "redis-py OK",
        Duration::from_secs(60),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_crate_async_pipelines_on_a_multiplexed_connection() {
    let s = Server::start();
    let con = s.async_client().await;
    // Eight tasks share one multiplexed connection, each with non-atomic
    // pipelines over every type; replies must come back to the right task in
    // order.
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut con = con.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..20 {
                let k = format!("t{t}");
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                pipe.cmd("SET").arg(format!("{k}:s")).arg(round)
                    .cmd("INCR").arg(format!("{k}:n"))
                    .cmd("RPUSH").arg(format!("{k}:l")).arg(round)
                    .cmd("HSET").arg(format!("{k}:h")).arg(round).arg(t)
                    .cmd("SADD").arg(format!("{k}:set")).arg(round % 5)
                    .cmd("GET").arg(format!("{k}:s"))
                    .cmd("LLEN").arg(format!("{k}:l"))
                    .cmd("HLEN").arg(format!("{k}:h"))
                    .cmd("SCARD").arg(format!("{k}:set"))
                    .cmd("INCRBY").arg(format!("{k}:s")).arg("x");
                let replies: Vec<redis::Value> = pipe.query_async(&mut con).await.unwrap();
                assert_eq!(replies.len(), 10);
                let int = |v: &redis::Value| redis::from_redis_value::<i64>(v.clone()).unwrap();
                assert_eq!(int(&replies[1]), round + 1);
                assert_eq!(int(&replies[2]), round + 1);
                assert_eq!(int(&replies[5]), round);
                assert_eq!(int(&replies[6]), round + 1);
                assert_eq!(int(&replies[7]), round + 1);
                assert_eq!(int(&replies[8]), (round + 1).min(5));
                assert!(
                    matches!(&replies[9], redis::Value::ServerError(e) if e.details() == Some("value is not an integer or out of range")),
                    "{:?}",
                    replies[9]
                );
            }
            t
        }));
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }
    assert_eq!(done, (0..8).collect::<Vec<_>>());
    let mut con = con;
    let n: i64 = redis::cmd("DBSIZE").query_async(&mut con).await.unwrap();
    assert_eq!(n, 8 * 5);
}
