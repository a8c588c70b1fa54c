//! `redis-benchmark` runs its standard tests against the real binary to the end
//! with no error replies. (Throughput figures live in benches/README.md, not here.)

mod common;

use std::process::Command;

use common::Server;

const TESTS: &str = "set,get,incr,lpush,rpush,lpop,sadd,hset,lrange_100";

fn run_benchmark(port: u16, pipeline: &str) -> String {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "-t",
            TESTS,
        ])
        .args(["-n", "100000", "-c", "50", "-P", pipeline])
        .output()
        .expect("redis-benchmark is installed (redis-tools)");
    assert!(out.status.success(), "redis-benchmark failed: {:?}", out);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    text.replace('\r', "\n")
}

#[test]
fn standard_tests_run_without_errors() {
    let s = Server::start();
    for pipeline in ["1", "16"] {
        let report = run_benchmark(s.port, pipeline);
        assert!(
            !report.contains("ERR") && !report.contains("Error"),
            "errors in:\n{report}"
        );
        for name in [
            "SET",
            "GET",
            "INCR",
            "LPUSH",
            "RPUSH",
            "LPOP",
            "SADD",
            "HSET",
            "LRANGE_100",
        ] {
            let line = report
                .lines()
                .find(|l| {
                    // LRANGE_100 prints "LRANGE_100 (first 100 elements): ..."; the
                    // "LPUSH (needed to benchmark LRANGE)" line is not LPUSH's own.
                    let own = l.starts_with(&format!("{name}: "))
                        || (name == "LRANGE_100" && l.starts_with("LRANGE_100 ("));
                    own && l.contains("requests per second")
                })
                .unwrap_or_else(|| {
                    panic!("no result line for {name} (-P {pipeline}) in:\n{report}")
                });
            let rps: f64 = line
                .split_once(": ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("unparsable line {line:?}"));
            assert!(rps > 0.0, "{line}");
        }
    }
    // The commands really ran: the benchmark's keys exist with the right types.
    let mut c = s.client();
    let counter: i64 = redis::cmd("GET")
        .arg("counter:__rand_int__")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        counter, 200_000,
        "two INCR runs (-P 1 and -P 16) of 100000 requests"
    );
    let t: String = redis::cmd("TYPE").arg("mylist").query(&mut c).unwrap();
    assert_eq!(t, "list");
    let t: String = redis::cmd("TYPE").arg("myhash").query(&mut c).unwrap();
    assert_eq!(t, "hash");
}
