//! Sorted sets, forkless against a real `redis-server` in one run: throughput
//! of ZADD, ZPOPMIN, ZRANK and ZRANGE with `redis-benchmark`, and the memory
//! of one large sorted set and of many small ones.
//!
//! ```sh
//! cargo build --release --bin forkless --example zset_vs_redis
//! target/release/examples/zset_vs_redis            # defaults below
//! target/release/examples/zset_vs_redis --rounds 1 --members 100000 --small 10000
//! ```
//!
//! # Phases
//!
//! 1. **Throughput**, both servers started fresh and side by side:
//!    `redis-benchmark -t zadd,zpopmin -c 50 -n <n> -r 100000 -P <p>` for
//!    `p` in 1 and 16 (`n` 200,000 and 1,000,000), one test at a time, run
//!    forkless, redis, forkless, redis... `--rounds` times (default 3):
//!    median req/s, and the median CPU time (user + system,
//!    `/proc/PID/stat`) the server spent per request, which other load on
//!    the machine disturbs much less. Then a sorted set `bz` of 100,000
//!    members `m:%d` is loaded and `redis-benchmark -r 100000 ZRANK bz
//!    m:__rand_int__` and `ZRANGE bz 0 9` run the same way. The ZPOPMIN
//!    test above pops an empty key once the ZADDs' members are gone, so
//!    `ZPOPMIN pq` runs last, on a queue loaded before every run with a
//!    member for each of its pops and 1M more (scores 0, 1, 2 ..., as a
//!    queue's timestamps).
//! 2. **One large sorted set**: fresh servers, `--members` (default
//!    1,000,000) members `member:%09d` with random integer scores below
//!    10^9 added in ZADDs of 1,000 pairs; RSS (`VmRSS`) and INFO
//!    `used_memory` before and after, bytes per member.
//! 3. **Many small sorted sets**: fresh servers, `--small` (default
//!    100,000) keys `z:%09d` of 5 members `m1`..`m5` with small scores
//!    (listpack in both); RSS and `used_memory`, bytes per key.
//!
//! Servers listen on 127.0.0.1, ports `--port` (default 18110) and the next
//! one; every benchmark run is bounded by redis-benchmark's request count, and
//! both servers are stopped at the end.

#[path = "support/mod.rs"]
mod support;
use support::{both_rows, interleaved, interleaved_with, row, Result, Server};

struct Opts {
    port: u16,
    rounds: usize,
    members: usize,
    small: usize,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        port: 18110,
        rounds: 3,
        members: 1_000_000,
        small: 100_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).ok_or("option without a value")?;
        match args[i].as_str() {
            "--port" => o.port = v.parse()?,
            "--rounds" => o.rounds = v.parse()?,
            "--members" => o.members = v.parse()?,
            "--small" => o.small = v.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    Ok(o)
}

/// The pipeline depths and the requests of a run at each: a pipelined run
/// gets more, so it lasts a second or two, not a fraction.
const RUNS: [(&str, &str); 2] = [("1", "200000"), ("16", "1000000")];

fn start_both(opts: &Opts) -> Result<[Server; 2]> {
    Ok([
        Server::start_fresh(true, opts.port)?,
        Server::start_fresh(false, opts.port + 1)?,
    ])
}

fn throughput(opts: &Opts) -> Result<()> {
    println!(
        "\n## Throughput (median of {} interleaved runs, -c 50)\n",
        opts.rounds
    );
    println!("| test | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    for (p, n) in RUNS {
        for t in ["zadd", "zpopmin"] {
            let args = ["-t", t, "-n", n, "-r", "100000", "-P", p];
            let res = interleaved(&servers, opts.rounds, n.parse()?, &args)?;
            both_rows(&format!("{} -P {p}", t.to_uppercase()), res);
        }
    }
    for s in &servers {
        load_sequential(s, "bz", 100_000)?;
    }
    for (p, n) in RUNS {
        for (label, cmd) in [
            (
                "ZRANK (100k members)",
                vec!["ZRANK", "bz", "m:__rand_int__"],
            ),
            ("ZRANGE 0 9 (100k members)", vec!["ZRANGE", "bz", "0", "9"]),
        ] {
            let mut args = vec!["-n", n, "-r", "100000", "-P", p];
            args.extend(cmd);
            let res = interleaved(&servers, opts.rounds, n.parse()?, &args)?;
            both_rows(&format!("{label} -P {p}"), res);
        }
    }
    // A queue: before each run, `pq` is loaded with a member for every pop
    // of the run and 1M more, so every run pops from the same sizes.
    for (p, n) in RUNS {
        let args = ["-n", n, "-P", p, "ZPOPMIN", "pq"];
        let members = n.parse::<u32>()? + QUEUE_LEFT;
        let res = interleaved_with(&servers, opts.rounds, n.parse()?, &args, |s| {
            load_sequential(s, "pq", members)
        })?;
        both_rows(&format!("ZPOPMIN (queue of 1M + n members) -P {p}"), res);
    }
    Ok(())
}

/// Members a queue run leaves in `pq`.
const QUEUE_LEFT: u32 = 1_000_000;

/// Replaces `key` by a sorted set of `n` members `m:%012d` with scores
/// 0, 1, 2 ... (a queue's timestamps), in ZADDs of 1,000 pairs.
fn load_sequential(s: &Server, key: &str, n: u32) -> Result<()> {
    let mut c = s.client()?;
    let _: i64 = redis::cmd("DEL").arg(key).query(&mut c)?;
    for start in (0..n).step_by(1000) {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(key);
        for i in start..(start + 1000).min(n) {
            cmd.arg(i).arg(format!("m:{i:012}"));
        }
        let _: i64 = cmd.query(&mut c)?;
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
        let total = s.rss() as f64 / 1e6;
        println!("{}: RSS {total:.1} MB", s.name);
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

fn one_large(opts: &Opts) -> Result<()> {
    println!("\n## One sorted set of {} members\n", opts.members);
    println!("| figure | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    let before = baseline(&servers)?;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut scores = Vec::with_capacity(opts.members);
    for _ in 0..opts.members {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        scores.push(seed % 1_000_000_000);
    }
    for s in &servers {
        let mut c = s.client()?;
        for (n, chunk) in scores.chunks(1000).enumerate() {
            let mut cmd = redis::cmd("ZADD");
            cmd.arg("big");
            for (k, score) in chunk.iter().enumerate() {
                cmd.arg(*score).arg(format!("member:{:09}", n * 1000 + k));
            }
            let _: i64 = cmd.query(&mut c)?;
        }
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("big")
            .query(&mut c)?;
        println!("{}: OBJECT ENCODING big = {enc}", s.name);
    }
    memory_row(&servers, &before, opts.members, "member")
}

fn many_small(opts: &Opts) -> Result<()> {
    println!("\n## {} sorted sets of 5 members\n", opts.small);
    println!("| figure | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = start_both(opts)?;
    let before = baseline(&servers)?;
    for s in &servers {
        let mut c = s.client()?;
        for chunk in (0..opts.small).collect::<Vec<usize>>().chunks(1000) {
            let mut pipe = redis::pipe();
            for i in chunk {
                pipe.cmd("ZADD").arg(format!("z:{i:09}"));
                for m in 1..=5 {
                    pipe.arg((i + m) % 100).arg(format!("m{m}"));
                }
                pipe.ignore();
            }
            let _: () = pipe.query(&mut c)?;
        }
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("z:000000000")
            .query(&mut c)?;
        println!("{}: OBJECT ENCODING z:000000000 = {enc}", s.name);
    }
    memory_row(&servers, &before, opts.small, "key")
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    if opts.rounds > 0 {
        throughput(&opts)?;
    }
    if opts.members > 0 {
        one_large(&opts)?;
    }
    if opts.small > 0 {
        many_small(&opts)?;
    }
    Ok(())
}
