//! Geo commands, forkless against a real `redis-server` in one run:
//! GEOADD and GEOSEARCH throughput with `redis-benchmark`.
//!
//! ```sh
//! cargo build --release --bin forkless --example geo_vs_redis
//! target/release/examples/geo_vs_redis                # defaults below
//! target/release/examples/geo_vs_redis --rounds 5 --points 200000
//! ```
//!
//! # Phases
//!
//! 1. **GEOADD**: `redis-benchmark -n 200000 -r 1000000 -P <p> GEOADD g
//!    __rand_int__e-6 __rand_int__e-6 m:__rand_int__` (each placeholder a
//!    fresh random number below 10^6, so coordinates spread over the 1°
//!    square at 0–1°E, 0–1°N) for `p` in 1 and 16.
//! 2. **GEOSEARCH**: an index `idx` of `--points` (default 100,000) points
//!    spread evenly over the same square (about 8 points per km²) is loaded
//!    into both servers, then `GEOSEARCH idx FROMLONLAT __rand_int__e-6
//!    __rand_int__e-6` with `BYRADIUS 1 km` (about 25 results), `BYRADIUS 5
//!    km COUNT 10 ASC WITHDIST` (the nearest 10 of about 640; 10,000
//!    requests, the others 100,000) and `BYBOX 2 2 km`, at `-P` 1 and 16.
//!
//! Each benchmark runs forkless, redis, forkless, redis... `--rounds` times
//! (default 3); the table gives the median req/s and the median server CPU
//! time per request (user + system from `/proc/PID/stat`, less disturbed by
//! other load on the machine). Servers listen on 127.0.0.1, ports `--port`
//! (default 18610) and the next one, and are stopped at the end.

#[path = "support/mod.rs"]
mod support;
use support::{both_rows, interleaved, Result, Rng, Server};

struct Opts {
    port: u16,
    rounds: usize,
    points: usize,
}

fn parse_opts() -> Result<Opts> {
    let mut o = Opts {
        port: 18610,
        rounds: 3,
        points: 100_000,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).ok_or("option without a value")?;
        match args[i].as_str() {
            "--port" => o.port = v.parse()?,
            "--rounds" => o.rounds = v.parse()?,
            "--points" => o.points = v.parse()?,
            other => return Err(format!("unknown option {other}").into()),
        }
        i += 2;
    }
    Ok(o)
}

/// `count` points evenly spread over 0–1°E, 0–1°N, as GEOADDs of 1,000.
fn load(servers: &[Server; 2], count: usize) -> Result<()> {
    for s in servers {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut c = s.client()?;
        let mut at = 0;
        while at < count {
            let mut cmd = redis::cmd("GEOADD");
            cmd.arg("idx");
            for i in at..(at + 1000).min(count) {
                let lon = (rng.next() % 1_000_000) as f64 / 1e6;
                let lat = (rng.next() % 1_000_000) as f64 / 1e6;
                cmd.arg(lon).arg(lat).arg(format!("p:{i}"));
            }
            let _: i64 = cmd.query(&mut c)?;
            at += 1000;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let opts = parse_opts()?;
    println!(
        "\n## Geo throughput (median of {} interleaved runs, -c 50)\n",
        opts.rounds
    );
    println!("| test | forkless | redis | forkless/redis |\n|---|---:|---:|---:|");
    let servers = [
        Server::start_fresh(true, opts.port)?,
        Server::start_fresh(false, opts.port + 1)?,
    ];
    for p in ["1", "16"] {
        let args = [
            "-n",
            "200000",
            "-r",
            "1000000",
            "-P",
            p,
            "GEOADD",
            "g",
            "__rand_int__e-6",
            "__rand_int__e-6",
            "m:__rand_int__",
        ];
        let res = interleaved(&servers, opts.rounds, 200_000.0, &args)?;
        both_rows(&format!("GEOADD -P {p}"), res);
    }
    load(&servers, opts.points)?;
    // The nearest-10 search reads about 1,600 candidates: fewer requests.
    let searches: [(&str, &[&str], &str); 3] = [
        (
            "GEOSEARCH BYRADIUS 1 km",
            &["BYRADIUS", "1", "km"],
            "100000",
        ),
        (
            "GEOSEARCH BYRADIUS 5 km COUNT 10 ASC WITHDIST",
            &["BYRADIUS", "5", "km", "COUNT", "10", "ASC", "WITHDIST"],
            "10000",
        ),
        (
            "GEOSEARCH BYBOX 2 2 km",
            &["BYBOX", "2", "2", "km"],
            "100000",
        ),
    ];
    for p in ["1", "16"] {
        for (label, shape, requests) in searches {
            let mut args = vec![
                "-n",
                requests,
                "-r",
                "1000000",
                "-P",
                p,
                "GEOSEARCH",
                "idx",
                "FROMLONLAT",
                "__rand_int__e-6",
                "__rand_int__e-6",
            ];
            args.extend_from_slice(shape);
            let res = interleaved(&servers, opts.rounds, requests.parse()?, &args)?;
            both_rows(
                &format!("{label} ({}k points) -P {p}", opts.points / 1000),
                res,
            );
        }
    }
    Ok(())
}
