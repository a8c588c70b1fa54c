//! Keyspace benchmarks: the O(1) snapshot clone, what a write costs in a
//! keyspace nobody shares versus right after a clone (path copying) against a
//! `std::collections::HashMap` baseline, and a uniform random key (RANDOMKEY)
//! at growing sizes, which must stay flat.

use std::collections::HashMap as StdHashMap;
use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion};
use forkless::keyspace::{Keyspace, Value};

fn key(i: usize) -> Bytes {
    Bytes::from(format!("key:{i:010}"))
}

/// `key(i)` written into `buf`, without an allocation.
fn key_into(buf: &mut [u8; 14], mut i: usize) -> &[u8] {
    buf[..4].copy_from_slice(b"key:");
    for b in buf[4..].iter_mut().rev() {
        *b = b'0' + (i % 10) as u8;
        i /= 10;
    }
    &buf[..]
}

fn filled(n: usize) -> Keyspace {
    let mut ks = Keyspace::new(16);
    let db = ks.db_mut(0);
    for i in 0..n {
        db.insert(key(i), Value::Str(Bytes::from_static(&[b'x'; 100])), None);
    }
    ks
}

fn clone_time(c: &mut Criterion) {
    let mut group = c.benchmark_group("keyspace_clone");
    for n in [10_000, 100_000, 1_000_000] {
        let ks = filled(n);
        group.bench_with_input(BenchmarkId::from_parameter(n), &ks, |b, ks| {
            b.iter(|| black_box(ks.clone()))
        });
    }
    group.finish();
}

fn write_cost(c: &mut Criterion) {
    const N: usize = 100_000;
    const WRITES: usize = 1_000;
    let mut group = c.benchmark_group("set_existing_key_100k");
    group.throughput(criterion::Throughput::Elements(WRITES as u64));
    let value = Value::Str(Bytes::from_static(&[b'y'; 100]));

    // In place: the keyspace is uniquely owned, its nodes are changed directly.
    let mut owned = filled(N);
    let mut i = 0usize;
    group.bench_function("unshared", |b| {
        b.iter(|| {
            for _ in 0..WRITES {
                i = (i + 7919) % N;
                owned.db_mut(0).insert(key(i), value.clone(), None);
            }
        })
    });

    // Right after a snapshot: every first touch of a node copies it.
    let base = filled(N);
    group.bench_function("after_clone", |b| {
        b.iter_batched(
            || {
                let live = base.clone();
                (live, base.clone())
            },
            |(mut live, snapshot)| {
                let mut j = 0usize;
                for _ in 0..WRITES {
                    j = (j + 7919) % N;
                    live.db_mut(0).insert(key(j), value.clone(), None);
                }
                (live, snapshot)
            },
            BatchSize::LargeInput,
        )
    });

    let mut std_map: StdHashMap<Bytes, Bytes> = (0..N)
        .map(|i| (key(i), Bytes::from_static(&[b'x'; 100])))
        .collect();
    let v = Bytes::from_static(&[b'y'; 100]);
    let mut k = 0usize;
    group.bench_function("std_hashmap", |b| {
        b.iter(|| {
            for _ in 0..WRITES {
                k = (k + 7919) % N;
                std_map.insert(key(k), v.clone());
            }
        })
    });
    group.finish();
}

/// A uniform random key (RANDOMKEY's pick) next to a lookup of a random
/// existing key, at three sizes: both descend one node per level, so the pick
/// costs what a lookup costs, and both grow only with cache misses, not with n.
fn random_key(c: &mut Criterion) {
    let mut group = c.benchmark_group("random_key");
    for n in [10_000, 100_000, 1_000_000] {
        let mut ks = filled(n);
        let mut rng = forkless::rng::Rng::with_seed(1);
        group.bench_function(BenchmarkId::new("pick", n), |b| {
            b.iter(|| {
                let db = ks.db(0);
                black_box(db.nth_key(rng.below(db.len())).map(<[u8]>::len))
            })
        });
        let keys: Vec<Bytes> = (0..4096).map(|_| key(rng.below(n))).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("lookup", n), |b| {
            b.iter(|| {
                i = (i + 1) % keys.len();
                black_box(ks.db_mut(0).contains(&keys[i], 0))
            })
        });
        // As a server meets them: keys spread over the whole map (not a few
        // thousand that stay cached) and each lookup waits for the one before
        // (the next key depends on its result), so the CPU cannot overlap
        // their cache misses as it does for the independent lookups above.
        let mut j = 1usize;
        let mut buf = [0u8; 14];
        group.bench_function(BenchmarkId::new("lookup_chained", n), |b| {
            b.iter(|| {
                let found = ks.db_mut(0).contains(key_into(&mut buf, j % n), 0);
                j = j
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1 + usize::from(found));
                black_box(found)
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = clone_time, write_cost, random_key
}
criterion_main!(benches);
