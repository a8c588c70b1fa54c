//! Lists, forkless against a real `redis-server` in one run: throughput and
//! server CPU per request of the list commands with `redis-benchmark`, and
//! the memory of one large list and of many small ones.
//!
//! ```sh
//! cargo build --release --bin forkless --example list_vs_redis
//! target/release/examples/list_vs_redis            # defaults below
//! target/release/examples/list_vs_redis --rounds 1 --elements 100000 --small 10000
//! ```
//!
//! # Phases
//!
//! 1. **Throughput**, both servers started fresh and side by side, one test
//!    at a time, run forkless, redis, forkless, redis... `--rounds` times
//!    (default 3): `redis-benchmark -c 50 -r 100000 -n 200000 -P <p>` for
//!    `p` in 1 and 16 and the tests lpush, rpush, lpop, rpop, lrange_100 and
//!    lrange_600 (all on redis-benchmark's one key `mylist` of 3-byte
//!    elements, which the pushes leave millions long), then `LINDEX mylist
//!    50000` and `LSET mylist 50000 yyy` (redis-benchmark's random integers
//!    are zero-padded, which Redis refuses as an index). Reported:
//!    the median req/s and the median CPU time (user + system,
//!    `/proc/PID/stat`) the server spent per request, which other load on
//!    the machine disturbs much less than req/s.
//! 2. **One large list**: fresh servers, `--elements` (default 1,000,000)
//!    elements `element:%09d` (17 bytes) appended by RPUSHes of 1,000; RSS
//!    (`VmRSS`) and INFO `used_memory` before and after, bytes per element.
//! 3. **Many small lists**: fresh servers, `--small` (default 100,000) keys
//!    `l:%09d` of 5 elements `e1`..`e5` (one RPUSH each, pipelined); RSS
//!    and `used_memory` growth, bytes per key.
//!
//! Servers listen on 127.0.0.1, ports `--port` (default 18700) and the next
//! one; every benchmark run is bounded by redis-benchmark's request count and
//! killed after 120 s, and both servers are stopped at the end.

#[path = "support/mod.rs"]
mod support;
use support::{both_rows, interleaved, row, Result, Server};

struct Opts {
    port: u16,
    rounds: usize,
    elements: usize,
    small: usize,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        port: 18700,
        rounds: 3,
        elements: 1_000_000,
        small: 100_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).ok_or("option without a value")?;
        match args[i].as_str() {
            "--port" => o.port = v.parse()?,
            "--rounds" => o.rounds = v.parse()?,
            "--elements" => o.elements = v.parse()?,
            "--small" => o.small = v.parse()?,
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

fn throughput(opts: &Opts) -> Result<()> {
    println!(
        "\n## Throughput (median of {} interleaved runs, -c 50 -r 100000 -n 200000)\n",
        opts.rounds
    );
    println!("| test | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    for p in ["1", "16"] {
        for t in ["lpush", "rpush", "lpop", "rpop", "lrange_100", "lrange_600"] {
            // lrange_* first pushes its data on a row of its own: count both.
            let requests = if t.starts_with("lrange") {
                400_000.0
            } else {
                200_000.0
            };
            let args = ["-t", t, "-n", "200000", "-r", "100000", "-P", p];
            let res = interleaved(&servers, opts.rounds, requests, &args)?;
            both_rows(&format!("{} -P {p}", t.to_uppercase()), res);
        }
        for (label, cmd) in [
            ("LINDEX 50000", vec!["LINDEX", "mylist", "50000"]),
            ("LSET 50000", vec!["LSET", "mylist", "50000", "yyy"]),
        ] {
            let mut args = vec!["-n", "200000", "-r", "100000", "-P", p];
            args.extend(cmd);
            let res = interleaved(&servers, opts.rounds, 200_000.0, &args)?;
            both_rows(&format!("{label} -P {p}"), res);
        }
    }
    for s in &servers {
        let len: i64 = redis::cmd("LLEN").arg("mylist").query(&mut s.client()?)?;
        println!("{}: LLEN mylist = {len}", s.name);
    }
    Ok(())
}

fn memory_row(
    servers: &[Server; 2],
    before: &[(u64, u64); 2],
    per: usize,
    what: &str,
) -> Result<()> {
    let mut rss = [0f64; 2];
    let mut used = [0f64; 2];
    for (i, s) in servers.iter().enumerate() {
        rss[i] = (s.rss().saturating_sub(before[i].0)) as f64 / per as f64;
        used[i] = (s.used_memory()?.saturating_sub(before[i].1)) as f64 / per as f64;
        println!("{}: RSS {:.1} MB", s.name, s.rss() as f64 / 1e6);
    }
    row(&format!("{what}: RSS growth per item"), rss[0], rss[1], "B");
    row(
        &format!("{what}: used_memory growth per item"),
        used[0],
        used[1],
        "B",
    );
    Ok(())
}

fn baseline(servers: &[Server; 2]) -> Result<[(u64, u64); 2]> {
    Ok([
        (servers[0].rss(), servers[0].used_memory()?),
        (servers[1].rss(), servers[1].used_memory()?),
    ])
}

fn encoding(c: &mut redis::Connection, key: &str) -> Result<String> {
    Ok(redis::cmd("OBJECT").arg("ENCODING").arg(key).query(c)?)
}

fn one_large(opts: &Opts) -> Result<()> {
    println!("\n## One list of {} elements\n", opts.elements);
    println!("| figure | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    let before = baseline(&servers)?;
    for s in &servers {
        let mut c = s.client()?;
        for chunk in (0..opts.elements).collect::<Vec<usize>>().chunks(1000) {
            let mut cmd = redis::cmd("RPUSH");
            cmd.arg("big");
            for i in chunk {
                cmd.arg(format!("element:{i:09}"));
            }
            let _: i64 = cmd.query(&mut c)?;
        }
        println!(
            "{}: OBJECT ENCODING big = {}",
            s.name,
            encoding(&mut c, "big")?
        );
    }
    memory_row(&servers, &before, opts.elements, "element")
}

fn many_small(opts: &Opts) -> Result<()> {
    println!("\n## {} lists of 5 elements\n", opts.small);
    println!("| figure | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    let before = baseline(&servers)?;
    for s in &servers {
        let mut c = s.client()?;
        for chunk in (0..opts.small).collect::<Vec<usize>>().chunks(1000) {
            let mut pipe = redis::pipe();
            for i in chunk {
                pipe.cmd("RPUSH").arg(format!("l:{i:09}"));
                for e in 1..=5 {
                    pipe.arg(format!("e{e}"));
                }
                pipe.ignore();
            }
            let _: () = pipe.query(&mut c)?;
        }
        println!(
            "{}: OBJECT ENCODING l:000000000 = {}",
            s.name,
            encoding(&mut c, "l:000000000")?
        );
    }
    memory_row(&servers, &before, opts.small, "key")
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    if opts.rounds > 0 {
        throughput(&opts)?;
    }
    if opts.elements > 0 {
        one_large(&opts)?;
    }
    if opts.small > 0 {
        many_small(&opts)?;
    }
    Ok(())
}
