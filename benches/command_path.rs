//! The per-command overhead of the command path: parse a request, dispatch
//! it (lookup, arity, stats, slow log) and encode its reply, for GET and SET on
//! a small keyspace. The keyspace work is a few dozen nanoseconds here, so the
//! figures are what the path itself costs per command.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use forkless::clients::ClientState;
use forkless::commands::{execute, Ctx};
use forkless::config::Config;
use forkless::keyspace::Value;
use forkless::protocol::{RequestParser, DEFAULT_MAX_BULK};
use forkless::state::Shared;

const KEYS: usize = 1_000;
const BATCH: usize = 16;

fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

fn batch_of(make: impl FnMut(usize) -> Vec<u8>) -> Vec<u8> {
    (0..BATCH).flat_map(make).collect()
}

/// A server state holding `keys` strings `key:%012d` of `value_len` bytes,
/// and a client to run commands as.
fn server_with(keys: usize, value_len: usize) -> (Shared, ClientState) {
    let shared = Shared::new(Config::default());
    let info = shared.clients.register("bench".into(), "bench".into());
    let client = ClientState::new(info.id, "bench".into(), "bench".into(), info);
    {
        let mut state = shared.lock();
        let db = state.keyspace.db_mut(0);
        for i in 0..keys {
            let key = Bytes::from(format!("key:{i:012}"));
            db.insert(key, Value::Str(Bytes::from(vec![b'v'; value_len])), None);
        }
    }
    (shared, client)
}

fn command_path(c: &mut Criterion) {
    let (shared, mut client) = server_with(KEYS, 3);
    let gets = batch_of(|i| request(&["GET", &format!("key:{:012}", i * 61 % KEYS)]));
    let sets = batch_of(|i| request(&["SET", &format!("key:{:012}", i * 61 % KEYS), "xyz"]));
    let mut group = c.benchmark_group("command_path");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (name, input) in [("get_batch_16", &gets), ("set_batch_16", &sets)] {
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(64 * 1024);
            b.iter(|| {
                let mut buf = BytesMut::from(&input[..]);
                out.clear();
                let mut state = shared.lock();
                // As a connection's batch does (one clock read per command).
                state.command_clock = Some(std::time::Instant::now());
                let mut parser = RequestParser::default();
                while let Ok(Some(args)) = parser.next(&mut buf, DEFAULT_MAX_BULK) {
                    let mut ctx = Ctx {
                        shared: &shared,
                        state: &mut state,
                        client: &mut client,
                        now_ms: 0,
                        blocked: None,
                        may_block: true,
                    };
                    let reply = execute(&mut ctx, &args);
                    reply.encode(client.proto, &mut out);
                }
                state.command_clock = None;
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// GET batches of 16 random keys of 1M (far more than the caches hold), run
/// as a connection runs a pipeline, with and without warming the keys' trie
/// paths first (`Db::prefetch`).
fn pipelined_gets_on_a_large_keyspace(c: &mut Criterion) {
    const LARGE: usize = 1_000_000;
    const BATCHES: usize = 4096;
    let (shared, mut client) = server_with(LARGE, 100);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize % LARGE
    };
    let batches: Vec<Vec<Vec<Bytes>>> = (0..BATCHES)
        .map(|_| {
            (0..BATCH)
                .map(|_| {
                    vec![
                        Bytes::from_static(b"GET"),
                        Bytes::from(format!("key:{:012}", next())),
                    ]
                })
                .collect()
        })
        .collect();
    let mut group = c.benchmark_group("command_path_1m_keys");
    group.throughput(Throughput::Elements(BATCH as u64));
    for prefetch in [false, true] {
        let name = if prefetch {
            "get_batch_16_prefetched"
        } else {
            "get_batch_16"
        };
        let mut turn = 0;
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(64 * 1024);
            b.iter(|| {
                turn = (turn + 1) % BATCHES;
                let batch = &batches[turn];
                out.clear();
                let mut state = shared.lock();
                state.command_clock = Some(std::time::Instant::now());
                if prefetch {
                    let keys = batch.iter().map(|args| &args[1][..]);
                    state.keyspace.db(0).prefetch(keys);
                }
                for args in batch {
                    let mut ctx = Ctx {
                        shared: &shared,
                        state: &mut state,
                        client: &mut client,
                        now_ms: 0,
                        blocked: None,
                        may_block: true,
                    };
                    execute(&mut ctx, args).encode(client.proto, &mut out);
                }
                state.command_clock = None;
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// Batches of 16 of redis-benchmark's collection and counter tests, as
/// `redis-benchmark -r 100000` sends them: pushes onto and pops from one
/// large list, SADD and HSET of random members into one set and one hash of
/// 100,000, SPOP from that set, MSET of 10 random keys of 100,000 and INCR of
/// 100,000 counters. Each starts from the state the run
/// before left, as the server does.
fn collection_writes(c: &mut Criterion) {
    const MEMBERS: usize = 100_000;
    let (shared, mut client) = server_with(0, 0);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed as usize % MEMBERS
    };
    let run = |shared: &Shared, client: &mut ClientState, input: &[u8], out: &mut BytesMut| {
        let mut buf = BytesMut::from(input);
        let mut state = shared.lock();
        state.command_clock = Some(std::time::Instant::now());
        let mut parser = RequestParser::default();
        let mut batch = Vec::with_capacity(BATCH);
        while let Ok(Some(args)) = parser.next(&mut buf, DEFAULT_MAX_BULK) {
            batch.push(args);
        }
        // As a connection runs a pipeline: the batch's keys and members
        // are warmed first.
        let db = state.keyspace.db(0);
        db.prefetch(batch.iter().map(|args| &args[1][..]));
        db.prefetch_members(
            batch
                .iter()
                .filter_map(|args| Some((&args[1][..], &args.get(2)?[..]))),
        );
        for args in batch {
            let mut ctx = Ctx {
                shared,
                state: &mut state,
                client: &mut *client,
                now_ms: 0,
                blocked: None,
                may_block: true,
            };
            execute(&mut ctx, &args).encode(client.proto, out);
            state.keyspace.settle();
        }
        state.command_clock = None;
    };
    // The set, the hash and the counters hold their 100,000 members first.
    let mut out = BytesMut::new();
    for i in 0..MEMBERS {
        let member = format!("element:{i:06}");
        let mut fill = request(&["SADD", "myset", &member]);
        fill.extend(request(&["HSET", "myhash", &member, "xxx"]));
        fill.extend(request(&["INCR", &format!("counter:{i:06}")]));
        run(&shared, &mut client, &fill, &mut out);
        out.clear();
    }
    const VARIANTS: usize = 256;
    let tests: Vec<(&str, Vec<Vec<u8>>)> = vec![
        (
            "lpush",
            vec![batch_of(|_| request(&["LPUSH", "mylist", "xxx"]))],
        ),
        (
            "rpush",
            vec![batch_of(|_| request(&["RPUSH", "mylist", "xxx"]))],
        ),
        ("lpop", vec![batch_of(|_| request(&["LPOP", "mylist"]))]),
        (
            "sadd",
            (0..VARIANTS)
                .map(|_| {
                    batch_of(|_| request(&["SADD", "myset", &format!("element:{:06}", next())]))
                })
                .collect(),
        ),
        (
            "hset",
            (0..VARIANTS)
                .map(|_| {
                    batch_of(|_| {
                        request(&["HSET", "myhash", &format!("element:{:06}", next()), "xxx"])
                    })
                })
                .collect(),
        ),
        ("spop", vec![batch_of(|_| request(&["SPOP", "myset"]))]),
        (
            "mset",
            (0..VARIANTS)
                .map(|_| {
                    batch_of(|_| {
                        let keys: Vec<String> =
                            (0..10).map(|_| format!("key:{:012}", next())).collect();
                        let mut args = vec!["MSET"];
                        for key in &keys {
                            args.extend([key.as_str(), "xxx"]);
                        }
                        request(&args)
                    })
                })
                .collect(),
        ),
        (
            "incr",
            (0..VARIANTS)
                .map(|_| batch_of(|_| request(&["INCR", &format!("counter:{:06}", next())])))
                .collect(),
        ),
    ];
    let mut group = c.benchmark_group("command_path_collections");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.sample_size(20);
    group.measurement_time(std::time::Duration::from_secs(3));
    let mut refills = 0u64;
    for (name, inputs) in &tests {
        let mut turn = 0;
        group.bench_function(format!("{name}_batch_16"), |b| {
            let mut out = BytesMut::with_capacity(64 * 1024);
            b.iter_custom(|iters| {
                // Untimed: LPOP finds as many elements as it pops, and the
                // pushes trim the list back, so memory stays bounded.
                if *name == "lpop" {
                    let mut fill = vec!["RPUSH", "mylist"];
                    fill.extend(std::iter::repeat_n("xxx", iters as usize * BATCH));
                    run(&shared, &mut client, &request(&fill), &mut out);
                }
                // SPOP pops from the 100,000 members as many new ones as
                // it is about to pop, so the set keeps its size.
                if *name == "spop" {
                    let fresh: Vec<String> = (0..iters as usize * BATCH)
                        .map(|_| {
                            refills += 1;
                            format!("refill:{refills}")
                        })
                        .collect();
                    let mut fill = vec!["SADD", "myset"];
                    fill.extend(fresh.iter().map(String::as_str));
                    run(&shared, &mut client, &request(&fill), &mut out);
                }
                out.clear();
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    turn = (turn + 1) % inputs.len();
                    out.clear();
                    run(&shared, &mut client, &inputs[turn], &mut out);
                    black_box(out.len());
                }
                let took = start.elapsed();
                run(
                    &shared,
                    &mut client,
                    &request(&["LTRIM", "mylist", "0", "99999"]),
                    &mut out,
                );
                took
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    command_path,
    pipelined_gets_on_a_large_keyspace,
    collection_writes
);
criterion_main!(benches);
