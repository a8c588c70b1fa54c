//! "BGSAVE latency under write load", in process: writer threads apply SETs to a
//! keyspace of 1M keys behind one lock (as the server does) and record each
//! operation's latency, first with no save running, then while snapshots are
//! cloned under the lock and streamed to disk on another thread, back to back.
//! Prints p50/p99/p99.9/max for both phases and the clone and save times.
//!
//! `cargo bench --bench bgsave_latency` (set `BGSAVE_BENCH_KEYS` for another size).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use forkless::keyspace::{unix_ms, Keyspace, Value};
use forkless::persistence::writer::{save_to, Progress};
use hdrhistogram::Histogram;

const WRITERS: usize = 2;
const PHASE: Duration = Duration::from_secs(5);

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i:012}"))
}

struct Phase {
    hist: Histogram<u64>,
    ops: u64,
}

fn run_writers(
    ks: &Arc<Mutex<Keyspace>>,
    keys: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Phase>> {
    (0..WRITERS)
        .map(|t| {
            let (ks, stop) = (ks.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut hist =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
                let value = Value::Str(Bytes::from(vec![b'w'; 100]));
                let mut i = t * 7919;
                let mut ops = 0;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 104_729) % keys;
                    let k = key(i);
                    let start = Instant::now();
                    ks.lock()
                        .expect("lock")
                        .db_mut(0)
                        .insert(k, value.clone(), None);
                    let _ = hist.record(start.elapsed().as_nanos().max(1) as u64);
                    ops += 1;
                }
                Phase { hist, ops }
            })
        })
        .collect()
}

fn join(handles: Vec<std::thread::JoinHandle<Phase>>) -> Phase {
    let mut all = Phase {
        hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        ops: 0,
    };
    for h in handles {
        let p = h.join().expect("writer");
        all.hist.add(&p.hist).expect("merge");
        all.ops += p.ops;
    }
    all
}

fn report(name: &str, p: &Phase, secs: f64) {
    let us = |v: u64| v as f64 / 1000.0;
    println!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} |",
        p.ops as f64 / secs,
        us(p.hist.value_at_quantile(0.5)),
        us(p.hist.value_at_quantile(0.99)),
        us(p.hist.value_at_quantile(0.999)),
        us(p.hist.max()),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let keys: usize = std::env::var("BGSAVE_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("dump.rdb");
    let mut ks = Keyspace::new(16);
    for i in 0..keys {
        ks.db_mut(0)
            .insert(key(i), Value::Str(Bytes::from(vec![b'v'; 100])), None);
    }
    let ks = Arc::new(Mutex::new(ks));

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writers = run_writers(&ks, keys, &stop);
    std::thread::sleep(PHASE);
    stop.store(true, Ordering::Relaxed);
    let idle = join(writers);
    let idle_secs = started.elapsed().as_secs_f64();

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let writers = run_writers(&ks, keys, &stop);
    let mut clones = Vec::new();
    let mut saves = Vec::new();
    while started.elapsed() < PHASE {
        let t = Instant::now();
        let snapshot = ks.lock().expect("lock").clone();
        clones.push(t.elapsed());
        let t = Instant::now();
        save_to(&snapshot, &path, unix_ms(), &Progress::default()).expect("save");
        drop(snapshot);
        saves.push(t.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let busy = join(writers);
    let busy_secs = started.elapsed().as_secs_f64();

    println!(
        "\n{keys} keys of 100 bytes, {WRITERS} writer threads, {} s per phase\n",
        PHASE.as_secs()
    );
    println!("| phase | SET/s | p50 (µs) | p99 (µs) | p99.9 (µs) | max (µs) |");
    println!("|---|---:|---:|---:|---:|---:|");
    report("no save", &idle, idle_secs);
    report("during snapshots", &busy, busy_secs);
    let max_clone = clones.iter().max().copied().unwrap_or_default();
    let mean_save =
        saves.iter().map(Duration::as_secs_f64).sum::<f64>() / saves.len().max(1) as f64;
    println!(
        "\n{} snapshots: clone max {:.1} µs, save mean {:.2} s",
        saves.len(),
        max_clone.as_secs_f64() * 1e6,
        mean_save
    );
}
