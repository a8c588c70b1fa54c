//! ZRANK, ZSCORE, ZRANGE by index and ZADD of an existing member on sorted sets
//! of 10k, 100k and 1M members (the skiplist form: a member trie beside a
//! counted B+tree). A rank is a map lookup for the score, then one descent of
//! the order tree summing subtree counts, so its cost should grow as log n
//! (plus cache misses, which `zscore_baseline` — the map lookup alone — shows).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use forkless::keyspace::encodings::Encodings;
use forkless::keyspace::zset::ZSet;
use forkless::rng::Rng;

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

fn member(i: usize) -> String {
    format!("member:{i:09}")
}

/// A sorted set of `n` members with pseudo-random scores.
fn zset(n: usize) -> ZSet {
    let enc = Encodings::default();
    let mut rng = Rng::with_seed(7);
    let mut z = ZSet::new();
    for i in 0..n {
        z.insert(member(i).as_bytes(), rng.below(1_000_000_000) as f64, &enc);
    }
    z
}

fn ranks(c: &mut Criterion) {
    let mut rank = c.benchmark_group("zrank");
    let sets: Vec<(usize, ZSet)> = SIZES.iter().map(|&n| (n, zset(n))).collect();
    for (n, z) in &sets {
        let names: Vec<String> = (0..4096).map(|i| member(i * 7919 % n)).collect();
        let mut i = 0;
        rank.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(z.rank(names[i].as_bytes()))
            })
        });
    }
    rank.finish();
    let mut score = c.benchmark_group("zscore_baseline");
    for (n, z) in &sets {
        let names: Vec<String> = (0..4096).map(|i| member(i * 7919 % n)).collect();
        let mut i = 0;
        score.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                i = (i + 1) % names.len();
                black_box(z.score(names[i].as_bytes()))
            })
        });
    }
    score.finish();
    let mut range = c.benchmark_group("zrange_10_at_random_rank");
    for (n, z) in &sets {
        let mut rng = Rng::with_seed(3);
        range.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let start = rng.below(n - 10);
                black_box(z.iter_from(start, false).take(10).count())
            })
        });
    }
    range.finish();
    let mut update = c.benchmark_group("zadd_existing_new_score");
    let enc = Encodings::default();
    for (n, z) in &sets {
        let mut z = z.clone();
        // Unshare the trees first so the loop measures in-place updates.
        z.insert(b"warm", 0.0, &enc);
        let mut rng = Rng::with_seed(5);
        update.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let m = member(rng.below(*n));
                black_box(z.insert(m.as_bytes(), rng.below(1_000_000_000) as f64, &enc))
            })
        });
    }
    update.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = ranks
}
criterion_main!(benches);
