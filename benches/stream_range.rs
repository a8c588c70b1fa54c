//! The stream representation alone: XRANGE-like reads of 100 entries near
//! the tail, and XADD-like appends, on streams of 10k, 1M and 10M entries of
//! 2 small fields. A range read descends the B-tree of blocks (n/100 of
//! them) and decodes about two blocks, so it should cost the same at every
//! length; an append changes the last block in place.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use forkless::keyspace::stream::{NodeLimits, Stream, StreamId};

const SIZES: [u64; 3] = [10_000, 1_000_000, 10_000_000];

fn stream(n: u64) -> Stream {
    let mut s = Stream::new();
    for i in 1..=n {
        s.append(
            StreamId::new(i, 0),
            &[(b"f1", b"v1"), (b"f2", b"v2")],
            NodeLimits::default(),
        );
    }
    s
}

fn tail_ranges(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_range_100_near_tail");
    g.measurement_time(Duration::from_secs(3));
    for n in SIZES {
        let s = stream(n);
        let mut k = 0u64;
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                // Start points move over the last 1,000 entries.
                k = (k + 37) % 1000;
                let from = StreamId::new(n - 1100 + k, 0);
                black_box(s.range(from, StreamId::MAX, 100))
            })
        });
        let mut next = n + 1;
        let mut s = s;
        g.bench_function(BenchmarkId::new("append", n), |b| {
            b.iter(|| {
                s.append(
                    StreamId::new(next, 0),
                    &[(b"f1", b"v1"), (b"f2", b"v2")],
                    NodeLimits::default(),
                );
                next += 1;
            })
        });
    }
    g.finish();
}

criterion_group!(benches, tail_ranges);
criterion_main!(benches);
