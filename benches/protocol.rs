//! RESP parse throughput: a pipeline of SET commands parsed from one buffer.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use forkless::protocol::{RequestParser, DEFAULT_MAX_BULK};

fn pipelined_sets(c: &mut Criterion) {
    const COMMANDS: usize = 1_000;
    let mut input = Vec::new();
    for i in 0..COMMANDS {
        let key = format!("key:{i:08}");
        let value = "v".repeat(100);
        input.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n{value}\r\n",
                key.len(),
                value.len()
            )
            .as_bytes(),
        );
    }
    let mut group = c.benchmark_group("resp_parse");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.bench_function("pipelined_set_1000", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&input[..]);
            let mut n = 0;
            let mut parser = RequestParser::default();
            while let Ok(Some(cmd)) = parser.next(&mut buf, DEFAULT_MAX_BULK) {
                n += cmd.len();
            }
            black_box(n)
        })
    });
    group.finish();
}

criterion_group!(benches, pipelined_sets);
criterion_main!(benches);
