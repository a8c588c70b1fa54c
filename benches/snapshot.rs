//! Snapshot throughput: writing a keyspace clone to a file (durably, as SAVE
//! does) and loading it back, in MB/s and keys/s.

use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forkless::keyspace::{unix_ms, Keyspace, Value};
use forkless::persistence::loader::load_file;
use forkless::persistence::writer::{save_to, Progress};

/// `n` string keys of 100 bytes plus `n / 1000` lists, hashes and sets of 10.
fn dataset(n: usize) -> Keyspace {
    let mut ks = Keyspace::new(16);
    let db = ks.db_mut(0);
    for i in 0..n {
        db.insert(
            Bytes::from(format!("key:{i:012}")),
            Value::Str(Bytes::from(vec![b'v'; 100])),
            None,
        );
    }
    for i in 0..n / 1000 {
        let members: Vec<Bytes> = (0..10)
            .map(|j| Bytes::from(format!("member:{j}")))
            .collect();
        db.insert(
            Bytes::from(format!("list:{i}")),
            Value::List(members.iter().cloned().collect()),
            None,
        );
        db.insert(
            Bytes::from(format!("set:{i}")),
            Value::Set(members.iter().cloned().collect()),
            None,
        );
        db.insert(
            Bytes::from(format!("hash:{i}")),
            Value::Hash(
                members
                    .iter()
                    .map(|m| (m.clone(), Bytes::from_static(b"value")))
                    .collect(),
            ),
            None,
        );
    }
    ks
}

fn write_and_load(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    for n in [100_000usize, 1_000_000] {
        let ks = dataset(n);
        let path = dir.path().join(format!("bench-{n}.rdb"));
        let stats = save_to(&ks, &path, unix_ms(), &Progress::default()).expect("save");

        let mut group = c.benchmark_group("snapshot_write");
        group.throughput(Throughput::Bytes(stats.bytes));
        group.bench_with_input(BenchmarkId::new("bytes", n), &ks, |b, ks| {
            b.iter(|| save_to(ks, &path, unix_ms(), &Progress::default()).expect("save"))
        });
        group.throughput(Throughput::Elements(stats.keys));
        group.bench_with_input(BenchmarkId::new("keys", n), &ks, |b, ks| {
            b.iter(|| save_to(ks, &path, unix_ms(), &Progress::default()).expect("save"))
        });
        group.finish();

        let mut group = c.benchmark_group("snapshot_load");
        group.throughput(Throughput::Bytes(stats.bytes));
        group.bench_with_input(BenchmarkId::new("bytes", n), &path, |b, path| {
            b.iter(|| load_file(path, Some(16), unix_ms()).expect("load"))
        });
        group.throughput(Throughput::Elements(stats.keys));
        group.bench_with_input(BenchmarkId::new("keys", n), &path, |b, path| {
            b.iter(|| load_file(path, Some(16), unix_ms()).expect("load"))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(10));
    targets = write_and_load
}
criterion_main!(benches);
