//! A replica attaching to a busy primary, forkless beside redis-server in one
//! run: the primary holds `--keys` strings and takes a 50-client SET load
//! while a fresh replica of the same kind attaches (REPLICAOF) and syncs.
//!
//! ```sh
//! cargo build --release --bin forkless --example replication_vs_redis
//! target/release/examples/replication_vs_redis --keys 1000000
//! ```
//!
//! For each kind in turn (never both at once, so they do not share the
//! cores): start a primary and an idle replica in fresh directories, load
//! `--keys` strings `key:%012d` of 100 bytes with pipelining, start
//! `--clients` unpipelined connections sending SET on random loaded keys,
//! wait `--warmup` seconds, then send REPLICAOF to the replica. Redis's
//! primary syncs diskless with no delay (`repl-diskless-sync yes`,
//! `repl-diskless-sync-delay 0`), as forkless always does; both replicas load
//! from a temporary file (Redis's default `repl-diskless-load disabled`), or
//! as `--diskless-load` says (`on-empty-db`: straight from the socket).
//!
//! Reported, for the sync window (from REPLICAOF until the replica's
//! `master_link_status:up` and its offset reaching the primary's offset at
//! that moment): the writers' p99, p99.9 and max latency (client side,
//! hdrhistogram) and throughput; the primary's extra memory (its RSS peak
//! during the window minus its RSS before, plus for Redis the fork child's
//! copy-on-write, `rdb_last_cow_size`, which the parent's RSS does not
//! show); and the time until the replica is in sync. Then the ratios
//! forkless/Redis. The writers' p99 and throughput in the warm-up's last
//! second show what the sync costs them. `--forkless-only` skips Redis. Every loop is bounded in time; servers die with the run.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argh::FromArgs;
use hdrhistogram::Histogram;
use support::{forkless_binary, Result, Server};

#[derive(FromArgs)]
/// A replica attaching under write load: forkless vs redis-server.
struct Opts {
    /// keys loaded into the primary (default 1000000)
    #[argh(option, default = "1_000_000")]
    keys: usize,
    /// writer connections (default 50)
    #[argh(option, default = "50")]
    clients: usize,
    /// seconds of load before REPLICAOF (default 3)
    #[argh(option, default = "3")]
    warmup: u64,
    /// first port; four are used (default 18550)
    #[argh(option, default = "18550")]
    port: u16,
    /// run forkless only (quicker when trying a change; no ratios)
    #[argh(switch)]
    forkless_only: bool,
    /// the replicas' repl-diskless-load (default disabled: through a file)
    #[argh(option, default = "String::from(\"disabled\")")]
    diskless_load: String,
}

struct Outcome {
    /// The same writers in the warm-up's last second, before REPLICAOF.
    before_p99_ms: f64,
    before_ops_per_sec: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    ops_per_sec: f64,
    extra_mb: f64,
    sync_s: f64,
    errors: u64,
}

fn start(forkless: bool, port: u16, diskless_load: &str) -> Result<Server> {
    let dir = tempfile::tempdir()?;
    let mut cmd = if forkless {
        let mut c = Command::new(forkless_binary()?);
        c.args(["--config", &format!("repl-diskless-load {diskless_load}")]);
        c
    } else {
        let mut c = Command::new("redis-server");
        c.args([
            "--bind",
            "127.0.0.1",
            "--appendonly",
            "no",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
            "--repl-diskless-load",
            diskless_load,
        ]);
        c
    };
    cmd.args(["--port", &port.to_string(), "--save", "", "--dir"])
        .arg(dir.path());
    let server = Server::start(if forkless { "forkless" } else { "redis" }, cmd, port)?;
    // The directory lives as long as the process needs it.
    std::mem::forget(dir);
    Ok(server)
}

fn info(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let text: String = redis::cmd("INFO").arg(section).query(c).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| *k == field)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

fn load(port: u16, keys: usize) -> Result<()> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut c = client.get_connection()?;
    let value = vec![b'v'; 100];
    for start in (0..keys).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(keys) {
            pipe.cmd("SET")
                .arg(format!("key:{i:012}"))
                .arg(&value)
                .ignore();
        }
        let _: () = pipe.query(&mut c)?;
    }
    Ok(())
}

fn run(forkless: bool, opts: &Opts) -> Result<Outcome> {
    let base = opts.port + if forkless { 0 } else { 2 };
    let primary = start(forkless, base, &opts.diskless_load)?;
    let replica = start(forkless, base + 1, &opts.diskless_load)?;
    let loaded = Instant::now();
    load(primary.port, opts.keys)?;
    eprintln!(
        "[{}] {} keys loaded in {:.1} s",
        primary.name,
        opts.keys,
        loaded.elapsed().as_secs_f64()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let window_ops = Arc::new(AtomicU64::new(0));
    // Samples of the warm-up's last second: the writers' baseline.
    let baseline = Arc::new(AtomicBool::new(false));
    let base_hist = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(
        1, 60_000_000, 3,
    )?));
    let base_ops = Arc::new(AtomicU64::new(0));
    let keys = opts.keys.max(1);
    let writers: Vec<_> = (0..opts.clients)
        .map(|t| {
            let (stop, window, errors, hist, window_ops) = (
                stop.clone(),
                window.clone(),
                errors.clone(),
                hist.clone(),
                window_ops.clone(),
            );
            let (baseline, base_hist, base_ops) =
                (baseline.clone(), base_hist.clone(), base_ops.clone());
            let port = primary.port;
            std::thread::spawn(move || -> Result<()> {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
                let mut c = client.get_connection()?;
                let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let mut local_base = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
                let value = vec![b'w'; 100];
                let mut i = (t * 7919) % keys;
                let deadline = Instant::now() + Duration::from_secs(600);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    i = (i + 104_729) % keys;
                    let in_window = window.load(Ordering::Relaxed);
                    let in_base = baseline.load(Ordering::Relaxed);
                    let started = Instant::now();
                    let r: redis::RedisResult<()> = redis::cmd("SET")
                        .arg(format!("key:{i:012}"))
                        .arg(&value)
                        .query(&mut c);
                    if r.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    if in_window {
                        local.record(started.elapsed().as_micros().max(1) as u64)?;
                        window_ops.fetch_add(1, Ordering::Relaxed);
                    } else if in_base {
                        local_base.record(started.elapsed().as_micros().max(1) as u64)?;
                        base_ops.fetch_add(1, Ordering::Relaxed);
                    }
                }
                hist.lock().map_err(|_| "poisoned")?.add(&local)?;
                base_hist.lock().map_err(|_| "poisoned")?.add(&local_base)?;
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(opts.warmup.saturating_sub(1)));
    baseline.store(true, Ordering::Relaxed);
    let base_started = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    baseline.store(false, Ordering::Relaxed);
    let base_secs = base_started.elapsed().as_secs_f64();
    let mut p = primary.client()?;
    let mut r = replica.client()?;
    let rss_before = primary.rss();
    let mut rss_peak = rss_before;
    let cow_before: u64 = info(&mut p, "persistence", "rdb_last_cow_size")
        .parse()
        .unwrap_or(0);
    window.store(true, Ordering::Relaxed);
    let started = Instant::now();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(primary.port)
        .query(&mut r)?;
    let limit = Duration::from_secs(300);
    let mut target: Option<u64> = None;
    let synced = loop {
        rss_peak = rss_peak.max(primary.rss());
        if started.elapsed() > limit {
            break None;
        }
        let up = info(&mut r, "replication", "master_link_status") == "up";
        if up {
            let offset: u64 = info(&mut r, "replication", "slave_repl_offset")
                .parse()
                .unwrap_or(0);
            let goal = *target.get_or_insert_with(|| {
                info(&mut p, "replication", "master_repl_offset")
                    .parse()
                    .unwrap_or(u64::MAX)
            });
            if offset >= goal {
                break Some(started.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    window.store(false, Ordering::Relaxed);
    let window_secs = started.elapsed().as_secs_f64();
    // Redis reports the fork child's copy-on-write once the child is gone.
    std::thread::sleep(Duration::from_millis(300));
    let cow_after: u64 = info(&mut p, "persistence", "rdb_last_cow_size")
        .parse()
        .unwrap_or(0);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().map_err(|_| "writer panicked")??;
    }
    let synced = synced.ok_or("the replica did not get in sync within 300 s")?;
    let hist = hist.lock().map_err(|_| "poisoned")?;
    let base_hist = base_hist.lock().map_err(|_| "poisoned")?;
    let ms = |us: u64| us as f64 / 1000.0;
    let cow = if cow_after != cow_before {
        cow_after
    } else {
        0
    };
    Ok(Outcome {
        before_p99_ms: ms(base_hist.value_at_quantile(0.99)),
        before_ops_per_sec: base_ops.load(Ordering::Relaxed) as f64 / base_secs,
        p99_ms: ms(hist.value_at_quantile(0.99)),
        p999_ms: ms(hist.value_at_quantile(0.999)),
        max_ms: ms(hist.max()),
        ops_per_sec: window_ops.load(Ordering::Relaxed) as f64 / window_secs,
        extra_mb: (rss_peak.saturating_sub(rss_before) + cow) as f64 / 1e6,
        sync_s: synced.as_secs_f64(),
        errors: errors.load(Ordering::Relaxed),
    })
}

fn main() -> Result<()> {
    let opts: Opts = argh::from_env();
    let f = run(true, &opts)?;
    let r = if opts.forkless_only {
        Outcome {
            before_p99_ms: 0.0,
            before_ops_per_sec: 0.0,
            p99_ms: 0.0,
            p999_ms: 0.0,
            max_ms: 0.0,
            ops_per_sec: 0.0,
            extra_mb: 0.0,
            sync_s: 0.0,
            errors: 0,
        }
    } else {
        run(false, &opts)?
    };
    println!(
        "replica attaching to a primary with {} keys under {} SET writers",
        opts.keys, opts.clients
    );
    println!(
        "{:<34} {:>12} {:>12} {:>10}",
        "", "forkless", "redis", "ratio"
    );
    let rows: [(&str, f64, f64); 9] = [
        (
            "write p99 before sync (ms)",
            f.before_p99_ms,
            r.before_p99_ms,
        ),
        (
            "SET/s before sync",
            f.before_ops_per_sec,
            r.before_ops_per_sec,
        ),
        ("write p99 during sync (ms)", f.p99_ms, r.p99_ms),
        ("write p99.9 during sync (ms)", f.p999_ms, r.p999_ms),
        ("write max during sync (ms)", f.max_ms, r.max_ms),
        ("SET/s during sync", f.ops_per_sec, r.ops_per_sec),
        ("primary extra memory (MB)", f.extra_mb, r.extra_mb),
        ("time until in sync (s)", f.sync_s, r.sync_s),
        ("write errors", f.errors as f64, r.errors as f64),
    ];
    for (name, a, b) in rows {
        let ratio = if b > 0.0 {
            format!("{:.2}x", a / b)
        } else {
            "-".into()
        };
        println!("{name:<34} {a:>12.2} {b:>12.2} {ratio:>10}");
    }
    if f.errors + r.errors > 0 {
        return Err("writes failed during the sync".into());
    }
    Ok(())
}
