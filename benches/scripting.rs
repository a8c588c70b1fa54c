//! EVALSHA of the 3-command script of benches/README.md ("Scripting"), in
//! process: the whole command (script lookup, KEYS/ARGV, the three
//! `redis.call`s and their replies, the script's reply), without the socket
//! path. EVAL of the same body and `INCR` alone are the yardsticks: the first
//! adds the sha1 of the body, the second is one command without a script.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use forkless::clients::ClientState;
use forkless::commands::{execute, Ctx};
use forkless::config::Config;
use forkless::state::Shared;

const BODY: &str = "local v = redis.call('INCR', KEYS[1]) redis.call('SET', KEYS[1] .. ':last', v) return redis.call('GET', KEYS[1])";

fn args(items: &[&str]) -> Vec<Bytes> {
    items
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect()
}

fn scripting(c: &mut Criterion) {
    let shared = Shared::new(Config::default());
    let info = shared.clients.register("bench".into(), "bench".into());
    let mut client = ClientState::new(info.id, "bench".into(), "bench".into(), info);
    let mut run = |args: &[Bytes]| {
        let mut state = shared.lock();
        let mut ctx = Ctx {
            shared: &shared,
            state: &mut state,
            client: &mut client,
            now_ms: 0,
            blocked: None,
            may_block: true,
        };
        execute(&mut ctx, args)
    };
    let sha = match run(&args(&["SCRIPT", "LOAD", BODY])) {
        forkless::reply::Reply::Bulk(sha) => String::from_utf8(sha.to_vec()).unwrap(),
        other => panic!("SCRIPT LOAD: {other:?}"),
    };
    let evalsha = args(&["EVALSHA", &sha, "1", "key"]);
    let eval = args(&["EVAL", BODY, "1", "key"]);
    let incr = args(&["INCR", "key"]);
    // The script's reply is the counter: a bulk string, not an error.
    assert!(matches!(run(&evalsha), forkless::reply::Reply::Bulk(_)));
    let mut group = c.benchmark_group("scripting");
    group.bench_function("evalsha_3_commands", |b| {
        b.iter(|| black_box(run(&evalsha)))
    });
    group.bench_function("eval_3_commands", |b| b.iter(|| black_box(run(&eval))));
    group.bench_function("incr", |b| b.iter(|| black_box(run(&incr))));
    group.finish();
}

criterion_group!(benches, scripting);
criterion_main!(benches);
