//! The list value against the representation it replaced (`imbl::Vector` of
//! `Bytes`, one allocation per element), on lists of 10k and 1M 3-byte
//! elements (redis-benchmark's `xxx`): a push and a pop at each end (the pair
//! keeps the length steady), LINDEX at a random index, the first 100 elements
//! as LRANGE_100 builds its reply (in wire form for chunks, a handle clone
//! each for the vector as before), and a push right after a clone (the first
//! write after a snapshot copies what it touches).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use forkless::keyspace::list::{Fill, List};
use forkless::reply::BulkRun;
use forkless::rng::Rng;
use imbl::Vector;

const SIZES: [usize; 2] = [10_000, 1_000_000];
const ELEM: &[u8] = b"xxx";

fn list(n: usize) -> List {
    List::from_elems((0..n).map(|_| ELEM), Fill::DEFAULT)
}

fn vector(n: usize) -> Vector<Bytes> {
    (0..n).map(|_| Bytes::copy_from_slice(ELEM)).collect()
}

fn push_pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("lpush_rpop");
    for n in SIZES {
        let mut l = list(n);
        g.bench_function(BenchmarkId::new("chunks", n), |b| {
            b.iter(|| {
                l.push_front(black_box(ELEM), Fill::DEFAULT);
                black_box(l.pop_back())
            })
        });
        let mut v = vector(n);
        g.bench_function(BenchmarkId::new("imbl_vector", n), |b| {
            b.iter(|| {
                v.push_front(Bytes::copy_from_slice(black_box(ELEM)));
                black_box(v.pop_back())
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("rpush_lpop");
    for n in SIZES {
        let mut l = list(n);
        g.bench_function(BenchmarkId::new("chunks", n), |b| {
            b.iter(|| {
                l.push_back(black_box(ELEM), Fill::DEFAULT);
                black_box(l.pop_front())
            })
        });
        let mut v = vector(n);
        g.bench_function(BenchmarkId::new("imbl_vector", n), |b| {
            b.iter(|| {
                v.push_back(Bytes::copy_from_slice(black_box(ELEM)));
                black_box(v.pop_front())
            })
        });
    }
    g.finish();
}

fn index(c: &mut Criterion) {
    let mut g = c.benchmark_group("lindex_random");
    for n in SIZES {
        let l = list(n);
        let v = vector(n);
        let mut rng = Rng::with_seed(5);
        let at: Vec<usize> = (0..4096).map(|_| rng.below(n)).collect();
        let mut i = 0;
        g.bench_function(BenchmarkId::new("chunks", n), |b| {
            b.iter(|| {
                i = (i + 1) % at.len();
                black_box(l.get(at[i]).map(Bytes::copy_from_slice))
            })
        });
        g.bench_function(BenchmarkId::new("imbl_vector", n), |b| {
            b.iter(|| {
                i = (i + 1) % at.len();
                black_box(v.get(at[i]).cloned())
            })
        });
    }
    g.finish();
}

fn range(c: &mut Criterion) {
    let mut g = c.benchmark_group("lrange_0_99");
    for n in SIZES {
        let l = list(n);
        let v = vector(n);
        g.bench_function(BenchmarkId::new("chunks", n), |b| {
            b.iter(|| {
                // As LRANGE replies: straight into wire form.
                let mut run = BulkRun::with_capacity(100, 800);
                l.range(0, 100).for_each(|e| run.push(e));
                black_box(run)
            })
        });
        g.bench_function(BenchmarkId::new("imbl_vector", n), |b| {
            b.iter(|| {
                let out: Vec<Bytes> = v.focus().narrow(0..100).into_iter().cloned().collect();
                black_box(out)
            })
        });
    }
    g.finish();
}

fn write_after_clone(c: &mut Criterion) {
    let mut g = c.benchmark_group("push_after_clone");
    for n in SIZES {
        let mut l = list(n);
        g.bench_function(BenchmarkId::new("chunks", n), |b| {
            b.iter(|| {
                let snapshot = l.clone();
                l.push_back(ELEM, Fill::DEFAULT);
                black_box(l.pop_back());
                black_box(snapshot)
            })
        });
        let mut v = vector(n);
        g.bench_function(BenchmarkId::new("imbl_vector", n), |b| {
            b.iter(|| {
                let snapshot = v.clone();
                v.push_back(Bytes::copy_from_slice(ELEM));
                black_box(v.pop_back());
                black_box(snapshot)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, push_pop, index, range, write_after_clone);
criterion_main!(benches);
