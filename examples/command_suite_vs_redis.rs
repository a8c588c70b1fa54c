//! The command path side by side with redis-server: the redis-benchmark tests
//! applications lean on, at -P 1 and -P 16, alternating the two servers per
//! test so both see the same machine noise.
//!
//! ```sh
//! cargo build --release --bin forkless --example command_suite_vs_redis
//! target/release/examples/command_suite_vs_redis --rounds 3
//! ```
//!
//! For each pipeline depth and each test, the harness runs `redis-benchmark
//! -c <clients> -r <keyspace> -P <p> -n <n> -t <test> --csv` against forkless,
//! then Redis, `--rounds` times, and reports the median req/s of each and the
//! ratio forkless/Redis. `n` is `--requests` × min(p, 8), so the depths run for
//! similar times. Both servers start empty with saving off; tests that need
//! data (lpop, spop, lrange) find what the tests before them wrote, in the same
//! order on both. Every run is killed after 120 s; the servers stop at the end.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use argh::FromArgs;

#[path = "support/mod.rs"]
mod support;
use support::{benchmark_row, forkless_binary, run_bounded, Result, Server};

/// redis-benchmark's tests, forkless against redis-server.
#[derive(FromArgs)]
struct Opts {
    /// first port: forkless listens on it, redis-server on the next (17400)
    #[argh(option, default = "17400")]
    port: u16,
    /// runs per server, test and depth; the median counts (3)
    #[argh(option, default = "3")]
    rounds: usize,
    /// requests per run at -P 1 (200000)
    #[argh(option, default = "200000")]
    requests: u64,
    /// concurrent clients (50)
    #[argh(option, default = "50")]
    clients: usize,
    /// keyspace of `-r` (100000)
    #[argh(option, default = "100000")]
    keyspace: u64,
    /// comma-separated tests
    #[argh(
        option,
        default = "String::from(\"set,get,incr,lpush,rpush,lpop,sadd,hset,spop,lrange_100,mset\")"
    )]
    tests: String,
    /// comma-separated pipeline depths (1,16)
    #[argh(option, default = "String::from(\"1,16\")")]
    pipelines: String,
}

fn start_servers(opts: &Opts, dir: &Path) -> Result<[Server; 2]> {
    let mut forkless = Command::new(forkless_binary()?);
    forkless
        .args(["--port", &opts.port.to_string(), "--save", "", "--dir"])
        .arg(dir);
    let redis_port = opts.port + 1;
    let mut redis = Command::new("redis-server");
    redis
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir);
    Ok([
        Server::start("forkless", forkless, opts.port)?,
        Server::start("redis", redis, redis_port)?,
    ])
}

/// One run of one test; the req/s of its last CSV row (lrange_100 first runs
/// the LPUSH it needs, on its own row).
fn run(server: &Server, opts: &Opts, test: &str, pipeline: u64) -> Result<f64> {
    let requests = opts.requests * pipeline.min(8);
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-c", &opts.clients.to_string()])
        .args(["-r", &opts.keyspace.to_string()])
        .args(["-P", &pipeline.to_string()])
        .args(["-n", &requests.to_string()])
        .args(["-t", test, "--csv"]);
    let text = run_bounded(&mut cmd, Duration::from_secs(120))?;
    Ok(benchmark_row(&text, server.name)?.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::process::ExitCode {
    let opts: Opts = argh::from_env();
    match suite(&opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn suite(opts: &Opts) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let servers = start_servers(opts, dir.path())?;
    let pipelines: Vec<u64> = opts
        .pipelines
        .split(',')
        .map(|p| p.trim().parse())
        .collect::<std::result::Result<_, _>>()?;
    println!(
        "| test | -P | forkless req/s | redis req/s | forkless/redis |\n|---|---|---|---|---|"
    );
    for &p in &pipelines {
        for test in opts.tests.split(',').map(str::trim) {
            let mut rps: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for _ in 0..opts.rounds.max(1) {
                for (i, server) in servers.iter().enumerate() {
                    rps[i].push(run(server, opts, test, p)?);
                }
            }
            let [f, r] = rps.map(median);
            println!("| {test} | {p} | {f:.0} | {r:.0} | {:.2} |", f / r);
        }
    }
    Ok(())
}
