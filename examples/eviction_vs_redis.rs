//! SET into a full cache side by side with redis-server: both run with the
//! same `maxmemory` and `allkeys-lru`, are first filled past the budget, and
//! then take redis-benchmark's SET on random keys, so every write evicts.
//!
//! ```sh
//! cargo build --release --bin forkless --example eviction_vs_redis
//! target/release/examples/eviction_vs_redis --rounds 3
//! ```
//!
//! For each pipeline depth the harness alternates the two servers `--rounds`
//! times (`redis-benchmark -c 50 -r 10000000 -d <size> -t set --csv`) and
//! reports the median req/s and p99 of each, their ratios, the median CPU
//! time each server process spent per request (user and system, from
//! `/proc`: steadier than req/s on a shared machine), and each server's
//! `used_memory` and `evicted_keys` at the end. Every run is killed after
//! 120 s; the servers stop at the end.

use std::process::Command;
use std::time::Duration;

use argh::FromArgs;

#[path = "support/mod.rs"]
mod support;
use support::{benchmark_row, forkless_binary, run_bounded, Result, Server};

/// SET at a full cache, forkless against redis-server.
#[derive(FromArgs)]
struct Opts {
    /// first port: forkless listens on it, redis-server on the next (17500)
    #[argh(option, default = "17500")]
    port: u16,
    /// runs per server and depth; the median counts (3)
    #[argh(option, default = "3")]
    rounds: usize,
    /// requests per run at -P 1 (200000)
    #[argh(option, default = "200000")]
    requests: u64,
    /// maxmemory of both servers (100mb)
    #[argh(option, default = "String::from(\"100mb\")")]
    maxmemory: String,
    /// value size in bytes (100)
    #[argh(option, default = "100")]
    size: usize,
    /// comma-separated pipeline depths (1,16)
    #[argh(option, default = "String::from(\"1,16\")")]
    pipelines: String,
}

fn start_servers(opts: &Opts, dir: &std::path::Path) -> Result<[Server; 2]> {
    let budget = [
        "--maxmemory",
        opts.maxmemory.as_str(),
        "--maxmemory-policy",
        "allkeys-lru",
    ];
    let mut forkless = Command::new(forkless_binary()?);
    forkless
        .args(["--port", &opts.port.to_string(), "--save", "", "--dir"])
        .arg(dir);
    for pair in budget.chunks(2) {
        forkless
            .arg("--config")
            .arg(format!("{} {}", &pair[0][2..], pair[1]));
    }
    let redis_port = opts.port + 1;
    let mut redis = Command::new("redis-server");
    redis
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(budget)
        .arg("--dir")
        .arg(dir);
    Ok([
        Server::start("forkless", forkless, opts.port)?,
        Server::start("redis", redis, redis_port)?,
    ])
}

fn set_run(server: &Server, opts: &Opts, pipeline: u64, requests: u64) -> Result<(f64, f64)> {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &server.port.to_string()])
        .args(["-c", "50", "-r", "10000000"])
        .args(["-d", &opts.size.to_string()])
        .args(["-P", &pipeline.to_string()])
        .args(["-n", &requests.to_string()])
        .args(["-t", "set", "--csv"]);
    let text = run_bounded(&mut cmd, Duration::from_secs(120))?;
    benchmark_row(&text, server.name)
}

fn info_field(server: &Server, section: &str, name: &str) -> Result<u64> {
    let out = Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "INFO", section])
        .output()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no {name} in INFO {section} of {}", server.name).into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> std::process::ExitCode {
    let opts: Opts = argh::from_env();
    match bench(&opts) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn bench(opts: &Opts) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let servers = start_servers(opts, dir.path())?;
    let maxmemory = info_field(&servers[0], "memory", "maxmemory")?;
    // Fill both past the budget, so that every measured write evicts.
    for s in &servers {
        let fill = 2 * maxmemory / (opts.size as u64 + 60);
        set_run(s, opts, 16, fill)?;
        let evicted = info_field(s, "stats", "evicted_keys")?;
        if evicted == 0 {
            return Err(format!("{} did not evict while filling", s.name).into());
        }
    }
    println!("| -P | forkless req/s | redis req/s | ratio | forkless p99 ms | redis p99 ms | p99 ratio | forkless CPU us/req | redis CPU us/req | CPU ratio |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for p in opts.pipelines.split(',').map(|p| p.trim().parse::<u64>()) {
        let p = p?;
        let requests = opts.requests * p.min(8);
        let mut rps = [Vec::new(), Vec::new()];
        let mut p99 = [Vec::new(), Vec::new()];
        let mut cpu = [Vec::new(), Vec::new()];
        for _ in 0..opts.rounds.max(1) {
            for (i, s) in servers.iter().enumerate() {
                let before = s.cpu_us();
                let (r, l) = set_run(s, opts, p, requests)?;
                cpu[i].push((s.cpu_us() - before) / requests as f64);
                rps[i].push(r);
                p99[i].push(l);
            }
        }
        let [fr, rr] = rps.map(median);
        let [fl, rl] = p99.map(median);
        let [fc, rc] = cpu.map(median);
        println!(
            "| {p} | {fr:.0} | {rr:.0} | {:.2} | {fl:.3} | {rl:.3} | {:.2} | {fc:.2} | {rc:.2} | {:.2} |",
            fr / rr,
            fl / rl,
            fc / rc
        );
    }
    for s in &servers {
        println!(
            "{}: used_memory {} of maxmemory {maxmemory}, evicted_keys {}",
            s.name,
            info_field(s, "memory", "used_memory")?,
            info_field(s, "stats", "evicted_keys")?
        );
    }
    Ok(())
}
