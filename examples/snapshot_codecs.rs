//! Measures the choices behind snapshot format v2 on this machine, in one
//! process, without a server: the block codec (LZ4 from `lz4_flex` against
//! Snappy from `snap`, both pure Rust, on the very blocks the writer makes)
//! and loading on one thread against two.
//!
//! ```sh
//! cargo run --release --example snapshot_codecs -- --keys 1000000
//! ```
//!
//! Two datasets of `--keys` strings `key:%012d` plus 3,000 collections (1,000
//! lists of 100 elements, 1,000 hashes of 50 fields, 1,000 sorted sets of 200
//! members, as `benches/rdb_vs_redis.sh` loads): values of 100 random
//! printable bytes, and compressible values (a few words from a small
//! vocabulary, as logs, JSON or settings hold). For each: the snapshot's size,
//! the time to write it (to a file, durably, as SAVE does), each codec's ratio
//! and MB/s over the decoded blocks, and the load time on one thread and on
//! two (the best of `--runs`).

use std::time::{Duration, Instant};

mod support;

use argh::FromArgs;
use bytes::Bytes;
use forkless::keyspace::encodings::Encodings;
use forkless::keyspace::zset::ZSet;
use forkless::keyspace::{Keyspace, Value};
use forkless::persistence::format::{BlockHeader, Codec, BLOCK_HEADER_LEN, HEADER_LEN};
use forkless::persistence::loader::{load_from, load_from_with};
use forkless::persistence::writer::{save_to, write_body, Progress};
use support::Rng;

/// Measure snapshot format v2's codec and loader choices.
#[derive(FromArgs)]
struct Opts {
    /// string keys per dataset (default 1000000)
    #[argh(option, default = "1_000_000")]
    keys: usize,
    /// runs of each timing, the best is kept (default 3)
    #[argh(option, default = "3")]
    runs: usize,
}

const WORDS: [&str; 16] = [
    "user",
    "session",
    "active",
    "true",
    "false",
    "id",
    "name",
    "email",
    "theme",
    "dark",
    "light",
    "en",
    "updated",
    "created",
    "2026-01-01",
    "null",
];

fn dataset(keys: usize, compressible: bool) -> Keyspace {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut ks = Keyspace::new(16);
    let limits = Encodings::default();
    let db = ks.db_mut(0);
    for i in 0..keys {
        let value: Vec<u8> = if compressible {
            let mut v = Vec::with_capacity(110);
            while v.len() < 100 {
                v.extend_from_slice(WORDS[(rng.next() % 16) as usize].as_bytes());
                v.push(b' ');
            }
            v.truncate(100);
            v
        } else {
            (0..100).map(|_| 33 + (rng.next() % 94) as u8).collect()
        };
        db.insert(
            Bytes::from(format!("key:{i:012}")),
            Value::Str(Bytes::from(value)),
            None,
        );
    }
    for i in 0..1000 {
        let list = (0..100)
            .map(|j| Bytes::from(format!("element-{j}")))
            .collect();
        db.insert(Bytes::from(format!("list:{i}")), Value::List(list), None);
        let hash = (0..50)
            .map(|j| {
                (
                    Bytes::from(format!("field{j}")),
                    Bytes::from(format!("value{j}")),
                )
            })
            .collect();
        db.insert(Bytes::from(format!("hash:{i}")), Value::Hash(hash), None);
        let mut z = ZSet::new();
        for j in 0..200 {
            z.insert(format!("member:{j}").as_bytes(), f64::from(j), &limits);
        }
        db.insert(Bytes::from(format!("zset:{i}")), Value::ZSet(z), None);
    }
    ks
}

/// The decoded data of every block of a version 2 file.
fn blocks(file: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut off = HEADER_LEN;
    while off + 4 < file.len() {
        let raw: [u8; BLOCK_HEADER_LEN] = file[off..off + BLOCK_HEADER_LEN].try_into().unwrap();
        let (codec, _, _, stored_len) = BlockHeader::decode(&raw);
        let start = off + BLOCK_HEADER_LEN;
        let stored = &file[start..start + stored_len as usize];
        out.push(match Codec::from_byte(codec) {
            Some(Codec::Snappy) => snap::raw::Decoder::new().decompress_vec(stored).unwrap(),
            _ => stored.to_vec(),
        });
        off = start + stored_len as usize;
    }
    out
}

fn best(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// CPU time the calling thread has used (user + system, from
/// `/proc/thread-self/stat`, in clock ticks of 10 ms): what a load costs the
/// thread that builds, whatever else the machine runs.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at `state`.
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    Duration::from_millis(fields.iter().sum::<u64>() * 10)
}

/// The best wall time and the best calling-thread CPU time of `runs` runs.
fn best_both(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut wall = Duration::MAX;
    let mut cpu = Duration::MAX;
    for _ in 0..runs.max(1) {
        let (t, c) = (Instant::now(), thread_cpu());
        f();
        wall = wall.min(t.elapsed());
        cpu = cpu.min(thread_cpu() - c);
    }
    (wall, cpu)
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn main() {
    let opts: Opts = argh::from_env();
    let dir = tempfile::tempdir().expect("temp dir");
    for compressible in [false, true] {
        let name = if compressible {
            "compressible values"
        } else {
            "random printable values"
        };
        let ks = dataset(opts.keys, compressible);
        let path = dir.path().join("dump.rdb");
        let save = best(opts.runs, || {
            save_to(&ks, &path, 0, &Progress::default()).expect("save");
        });
        let encode = best(opts.runs, || {
            write_body(&ks, &mut std::io::sink(), 0, &Progress::default()).expect("encode");
        });
        let file = std::fs::read(&path).unwrap();
        let data = blocks(&file);
        let raw: usize = data.iter().map(Vec::len).sum();
        println!(
            "## {name}: {} keys, file {} bytes ({} blocks, {} bytes of records), SAVE {:.3} s (encoding alone {:.3} s)",
            ks.key_count(),
            file.len(),
            data.len(),
            raw,
            save.as_secs_f64(),
            encode.as_secs_f64()
        );
        println!("| codec | size / records | compress MB/s | decompress MB/s |");
        println!("|---|---:|---:|---:|");
        let mut packed = Vec::new();
        let lz4_c = best(opts.runs, || {
            packed = data.iter().map(|b| lz4_flex::block::compress(b)).collect();
        });
        let lz4_size: usize = packed.iter().map(Vec::len).sum();
        let lz4_d = best(opts.runs, || {
            for (p, b) in packed.iter().zip(&data) {
                std::hint::black_box(lz4_flex::block::decompress(p, b.len()).unwrap());
            }
        });
        let mut snapped = Vec::new();
        let snap_c = best(opts.runs, || {
            snapped = data
                .iter()
                .map(|b| snap::raw::Encoder::new().compress_vec(b).unwrap())
                .collect();
        });
        let snap_size: usize = snapped.iter().map(Vec::len).sum();
        let snap_d = best(opts.runs, || {
            for p in &snapped {
                std::hint::black_box(snap::raw::Decoder::new().decompress_vec(p).unwrap());
            }
        });
        for (codec, size, c, d) in [
            ("lz4_flex (block)", lz4_size, lz4_c, lz4_d),
            ("snap (raw Snappy)", snap_size, snap_c, snap_d),
        ] {
            println!(
                "| {codec} | {:.3} | {:.0} | {:.0} |",
                size as f64 / raw as f64,
                mb_s(raw, c),
                mb_s(raw, d)
            );
        }
        let databases = Some(16);
        let (one, one_cpu) = best_both(opts.runs, || {
            load_from(&file[..], file.len() as u64, databases, 0).expect("load");
        });
        let (two, two_cpu) = best_both(opts.runs, || {
            load_from_with(
                &file[..],
                file.len() as u64,
                databases,
                0,
                Encodings::default(),
            )
            .expect("load");
        });
        println!(
            "load from memory: one thread {:.3} s, two threads {:.3} s ({:.2}x); \
             building thread's CPU {:.3} s alone, {:.3} s with a reader beside it ({:.0}% of the work moved)\n",
            one.as_secs_f64(),
            two.as_secs_f64(),
            one.as_secs_f64() / two.as_secs_f64(),
            one_cpu.as_secs_f64(),
            two_cpu.as_secs_f64(),
            100.0 * (1.0 - two_cpu.as_secs_f64() / one_cpu.as_secs_f64())
        );
    }
}
