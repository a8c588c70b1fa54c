//! Random picks from a set through the keyspace: SPOP then SADD of a new
//! member (so the size stays put), SRANDMEMBER, and SRANDMEMBER with a count
//! of 10, on sets of 10k, 100k and 1M members. A pick reaches the i-th member
//! of the trie in O(depth), so the cost per pick does not grow with the set
//! the way a walk would (before, each pick walked the set: O(n)); what growth
//! remains is cache misses, the same as for a lookup of a random member
//! (`sismember_baseline`).

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use forkless::commands::sample::distinct_indices;
use forkless::keyspace::encodings::Encodings;
use forkless::keyspace::set::Set;
use forkless::keyspace::{Db, Value};
use forkless::rng::Rng;

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const KEY: &[u8] = b"s";

/// A database holding one set of `n` members under [`KEY`].
fn db_with_set(n: usize) -> Db {
    let enc = Encodings::default();
    let mut set = Set::new();
    for i in 0..n {
        set.insert(format!("member:{i}").as_bytes(), &enc);
    }
    let mut db = Db::default();
    db.insert(Bytes::from_static(KEY), Value::Set(set), None);
    db
}

/// What SPOP + SADD do to the set: a uniform pick by index, its removal, and
/// a fresh member added; then the end-of-command settle.
fn spop_sadd(c: &mut Criterion) {
    let mut group = c.benchmark_group("spop_then_sadd");
    let enc = Encodings::default();
    for n in SIZES {
        let mut db = db_with_set(n);
        let mut rng = Rng::with_seed(1);
        let mut fresh = n;
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let set = db.get_mut(KEY, 0).unwrap().value.as_set_mut().unwrap();
                let popped = set.nth(rng.below(set.len())).unwrap().to_bytes();
                set.remove(&popped);
                fresh += 1;
                set.insert(format!("member:{fresh}").as_bytes(), &enc);
                db.settle();
                black_box(popped)
            })
        });
    }
    group.finish();
}

/// SRANDMEMBER: a uniform pick by index, read-only.
fn srandmember(c: &mut Criterion) {
    let mut group = c.benchmark_group("srandmember");
    for n in SIZES {
        let mut db = db_with_set(n);
        let mut rng = Rng::with_seed(2);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let set = db.get(KEY, 0).unwrap().value.as_set().unwrap();
                black_box(set.nth(rng.below(set.len())).unwrap().to_bytes())
            })
        });
    }
    group.finish();
}

/// SRANDMEMBER key 10: ten distinct uniform picks (Redis's "few of many" case).
fn srandmember_10(c: &mut Criterion) {
    let mut group = c.benchmark_group("srandmember_count_10");
    for n in SIZES {
        let mut db = db_with_set(n);
        let mut rng = Rng::with_seed(3);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let set = db.get(KEY, 0).unwrap().value.as_set().unwrap();
                let picks: Vec<Bytes> = distinct_indices(set.len(), 10, &mut rng)
                    .into_iter()
                    .map(|i| set.nth(i).unwrap().to_bytes())
                    .collect();
                black_box(picks)
            })
        });
    }
    group.finish();
}

/// SISMEMBER of a random member: the same trie descent by hash, for scale.
fn sismember_baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("sismember_baseline");
    for n in SIZES {
        let mut db = db_with_set(n);
        let mut rng = Rng::with_seed(4);
        group.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                let member = format!("member:{}", rng.below(n));
                let set = db.get(KEY, 0).unwrap().value.as_set().unwrap();
                black_box(set.contains(member.as_bytes()))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(30);
    targets = spop_sadd, srandmember, srandmember_10, sismember_baseline
}
criterion_main!(benches);
