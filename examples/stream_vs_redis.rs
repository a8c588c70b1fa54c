//! Streams, forkless against a real `redis-server` in one run: XADD
//! throughput, the memory of a large stream, and XRANGE near the tail of
//! streams of growing length.
//!
//! ```sh
//! cargo build --release --bin forkless --example stream_vs_redis
//! target/release/examples/stream_vs_redis                 # defaults below
//! target/release/examples/stream_vs_redis --rounds 1 --entries 100000 --sizes 10000,100000
//! ```
//!
//! # Phases
//!
//! 1. **XADD throughput**, both servers started fresh and side by side:
//!    `redis-benchmark -c 50 -n 200000 -P <p> XADD mystream * f1 v1 f2 v2`
//!    for `p` in 1 and 16, run forkless, redis, forkless, redis...
//!    `--rounds` times (default 3): median req/s and the median server CPU
//!    time (user + system, `/proc/PID/stat`) per request.
//! 2. **Memory of one stream**: fresh servers, `--entries` (default
//!    1,000,000) entries `XADD big * f1 v1 f2 v2`, pipelined 1,000 at a
//!    time; RSS (`VmRSS`) and INFO `used_memory` growth, bytes per entry.
//! 3. **XRANGE near the tail**: for each size in `--sizes` (default
//!    10000,1000000), a fresh stream `t<size>` with ids `1-0..<size>-0` and
//!    2 small fields, then `redis-benchmark -n 50000 XRANGE t<size>
//!    <size-150>-0 + COUNT 100` (-P 1), median req/s on each server: flat
//!    means the cost does not grow with the stream.
//!
//! Servers listen on 127.0.0.1, ports `--port` (default 18320) and the next
//! one; every run is bounded in requests and time; both servers are stopped
//! at the end.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use support::{interleaved, Result, Server};

struct Opts {
    port: u16,
    rounds: usize,
    entries: usize,
    sizes: Vec<usize>,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        port: 18320,
        rounds: 3,
        entries: 1_000_000,
        sizes: vec![10_000, 1_000_000],
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).ok_or("option without a value")?;
        match args[i].as_str() {
            "--port" => o.port = v.parse()?,
            "--rounds" => o.rounds = v.parse()?,
            "--entries" => o.entries = v.parse()?,
            "--sizes" => {
                o.sizes = v
                    .split(',')
                    .map(str::parse)
                    .collect::<std::result::Result<_, _>>()?
            }
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    Ok(o)
}

fn start_both(opts: &Opts) -> Result<[Server; 2]> {
    Ok([
        Server::start_fresh(true, opts.port)?,
        Server::start_fresh(false, opts.port + 1)?,
    ])
}

fn row(name: &str, f: f64, r: f64, unit: &str) {
    println!(
        "| {name} | {f:.1} {unit} | {r:.1} {unit} | {:.3} |",
        if r > 0.0 { f / r } else { 0.0 }
    );
}

fn throughput(opts: &Opts) -> Result<()> {
    println!(
        "\n## XADD throughput (median of {} interleaved runs, -c 50)\n",
        opts.rounds
    );
    println!("| test | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    for p in ["1", "16"] {
        let args = [
            "-n", "200000", "-P", p, "XADD", "mystream", "*", "f1", "v1", "f2", "v2",
        ];
        let [(f, fc), (r, rc)] = interleaved(&servers, opts.rounds, 200_000.0, &args)?;
        row(&format!("XADD -P {p}: req/s"), f, r, "");
        row(
            &format!("XADD -P {p}: server CPU per request"),
            fc,
            rc,
            "µs",
        );
    }
    Ok(())
}

fn fill(s: &Server, key: &str, n: usize, explicit: bool) -> Result<()> {
    let mut c = s.client()?;
    let mut done = 0;
    while done < n {
        let mut pipe = redis::pipe();
        for i in done..(done + 1000).min(n) {
            let id = if explicit {
                format!("{}-0", i + 1)
            } else {
                "*".to_string()
            };
            pipe.cmd("XADD")
                .arg(key)
                .arg(id)
                .arg("f1")
                .arg("v1")
                .arg("f2")
                .arg("v2")
                .ignore();
        }
        let _: () = pipe.query(&mut c)?;
        done = (done + 1000).min(n);
    }
    Ok(())
}

fn memory(opts: &Opts) -> Result<()> {
    println!(
        "\n## One stream of {} entries of 2 small fields\n",
        opts.entries
    );
    println!("| measure | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    let mut rows = [[0f64; 2]; 2];
    for (i, s) in servers.iter().enumerate() {
        let (rss0, used0) = (s.rss(), s.used_memory()?);
        fill(s, "big", opts.entries, false)?;
        std::thread::sleep(Duration::from_millis(500));
        rows[0][i] = s.rss().saturating_sub(rss0) as f64 / opts.entries as f64;
        rows[1][i] = s.used_memory()?.saturating_sub(used0) as f64 / opts.entries as f64;
        let mut c = s.client()?;
        let len: u64 = redis::cmd("XLEN").arg("big").query(&mut c)?;
        assert_eq!(len as usize, opts.entries);
    }
    row("RSS growth per entry", rows[0][0], rows[0][1], "B");
    row("used_memory growth per entry", rows[1][0], rows[1][1], "B");
    Ok(())
}

fn tail_ranges(opts: &Opts) -> Result<()> {
    println!(
        "\n## XRANGE of 100 entries near the tail (-P 1, -n 50000, median of {})\n",
        opts.rounds
    );
    println!(
        "| stream length | forkless req/s | redis req/s | forkless/redis |\n|---|---:|---:|---:|"
    );
    let servers = start_both(opts)?;
    for &n in &opts.sizes {
        let key = format!("t{n}");
        for s in &servers {
            fill(s, &key, n, true)?;
        }
        let from = format!("{}-0", n.saturating_sub(150).max(1));
        let args = ["-n", "50000", "XRANGE", &key, &from, "+", "COUNT", "100"];
        let [(f, _), (r, _)] = interleaved(&servers, opts.rounds, 50_000.0, &args)?;
        row(&n.to_string(), f, r, "");
        for s in &servers {
            let _: i64 = redis::cmd("DEL").arg(&key).query(&mut s.client()?)?;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    throughput(&opts)?;
    memory(&opts)?;
    tail_ranges(&opts)?;
    Ok(())
}
