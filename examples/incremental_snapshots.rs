//! What a save costs when a fraction of the keys changed since the last one:
//! bytes written and BGSAVE time of an incremental (delta) save against a
//! full save of the same state, on one forkless server, and redis-server's
//! BGSAVE of the same data for scale.
//!
//! `cargo build --release --bin forkless --example incremental_snapshots`
//! `./target/release/examples/incremental_snapshots --keys 1000000 [--port 17360] [--no-redis]`
//!
//! Keys are `key:%012d` with 100 random printable bytes each. For each
//! fraction (1 %, 10 %) the harness rewrites that many distinct random keys,
//! runs BGSAVE (a delta), then BGSAVE FULL (the whole base) of the same
//! state, and prints bytes and times of both.

mod support;

use std::time::{Duration, Instant};

use support::{Result, Rng, Server};

struct Args {
    keys: u64,
    port: u16,
    redis: bool,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        keys: 1_000_000,
        port: 17360,
        redis: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--keys" => args.keys = it.next().ok_or("--keys N")?.parse()?,
            "--port" => args.port = it.next().ok_or("--port P")?.parse()?,
            "--no-redis" => args.redis = false,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(args)
}

/// Sets the keys with the given indices to fresh random values, pipelined.
fn write_keys(con: &mut redis::Connection, rng: &mut Rng, keys: &[u64]) -> Result<()> {
    for chunk in keys.chunks(10_000) {
        let mut mset = redis::cmd("MSET");
        for i in chunk {
            mset.arg(format!("key:{i:012}")).arg(rng.printable(100));
        }
        let _: () = mset.query(con)?;
    }
    Ok(())
}

fn info_field(con: &mut redis::Connection, field: &str) -> Result<String> {
    let info: String = redis::cmd("INFO").arg("persistence").query(con)?;
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_string))
        .ok_or_else(|| format!("INFO has no {field}").into())
}

/// Runs BGSAVE with `args`, waits for it, returns (seconds, bytes written).
fn timed_bgsave(con: &mut redis::Connection, args: &[&str], forkless: bool) -> Result<(f64, u64)> {
    let before: i64 = redis::cmd("LASTSAVE").query(con)?;
    // Redis's LASTSAVE moves in whole seconds: wait for a new one.
    if !forkless {
        std::thread::sleep(Duration::from_millis(1100));
    }
    let started = Instant::now();
    let _: String = redis::cmd("BGSAVE").arg(args).query(con)?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if info_field(con, "rdb_bgsave_in_progress")? == "0" {
            let after: i64 = redis::cmd("LASTSAVE").query(con)?;
            if forkless || after != before {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("BGSAVE did not finish in 600 s".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = started.elapsed().as_secs_f64();
    if info_field(con, "rdb_last_bgsave_status")? != "ok" {
        return Err("BGSAVE failed".into());
    }
    let bytes = if forkless {
        info_field(con, "rdb_last_save_bytes")?.parse()?
    } else {
        0
    };
    Ok((secs, bytes))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("incremental_snapshots: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

fn run() -> Result<()> {
    let args = parse_args()?;
    let server = Server::start_fresh(true, args.port)?;
    let mut con = server.client()?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let all: Vec<u64> = (0..args.keys).collect();
    let started = Instant::now();
    write_keys(&mut con, &mut rng, &all)?;
    println!(
        "loaded {} keys in {:.1} s, RSS {:.1} MB",
        args.keys,
        started.elapsed().as_secs_f64(),
        server.rss() as f64 / 1e6
    );
    let (first_secs, first_bytes) = timed_bgsave(&mut con, &["FULL"], true)?;
    println!("first full save: {first_bytes} bytes in {first_secs:.3} s");
    println!();
    println!("| keys changed | delta bytes | full bytes | delta/full bytes | delta BGSAVE (s) | full BGSAVE (s) | delta/full time |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for percent in [1u64, 10] {
        // Distinct random keys: a random start and a stride coprime with N.
        let count = args.keys * percent / 100;
        let start = rng.next() % args.keys;
        let stride = 7_919 % args.keys.max(2);
        let picks: Vec<u64> = (0..count)
            .map(|j| (start + j * stride) % args.keys)
            .collect();
        write_keys(&mut con, &mut rng, &picks)?;
        let (delta_secs, delta_bytes) = timed_bgsave(&mut con, &[], true)?;
        if info_field(&mut con, "rdb_last_save_incremental")? != "1" {
            return Err(format!("the save after {percent} % changes was not incremental").into());
        }
        let (full_secs, full_bytes) = timed_bgsave(&mut con, &["FULL"], true)?;
        println!(
            "| {percent} % ({count}) | {delta_bytes} | {full_bytes} | {:.2} % | {delta_secs:.3} | {full_secs:.3} | {:.3} |",
            100.0 * delta_bytes as f64 / full_bytes as f64,
            delta_secs / full_secs
        );
    }
    println!(
        "\nforkless RSS at the end: {:.1} MB",
        server.rss() as f64 / 1e6
    );
    drop(con);
    drop(server);
    if args.redis {
        let redis = Server::start_fresh(false, args.port + 1)?;
        let mut con = redis.client()?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        write_keys(&mut con, &mut rng, &all)?;
        let (secs, _) = timed_bgsave(&mut con, &[], false)?;
        let dir: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("dir").query(&mut con)?;
        let bytes = std::fs::metadata(std::path::Path::new(&dir[1]).join("dump.rdb"))?.len();
        println!(
            "redis-server BGSAVE of the same {} keys (always the whole data set): {bytes} bytes in {secs:.3} s",
            args.keys
        );
    }
    Ok(())
}
