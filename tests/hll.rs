//! HyperLogLog values cross between forkless and a real redis-server: a value
//! read with GET from one and written with SET into the other counts the same
//! (PFCOUNT), keeps growing the same way (PFADD, promotion to dense) and
//! merges the same (PFMERGE), in both directions, sparse and dense.
//!
//! Skipped (with a note) when redis-server is not installed.

mod common;
#[path = "differential/mod.rs"]
mod harness;

use common::Server;
use harness::real::RealRedis;

fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&[u8]]) -> T {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
        .unwrap_or_else(|e| panic!("{:?} failed: {e}", String::from_utf8_lossy(args[0])))
}

fn get(c: &mut redis::Connection, key: &str) -> Vec<u8> {
    q(c, &[b"GET", key.as_bytes()])
}

fn set(c: &mut redis::Connection, key: &str, value: &[u8]) {
    let _: () = q(c, &[b"SET", key.as_bytes(), value]);
}

fn pfcount(c: &mut redis::Connection, keys: &[&str]) -> i64 {
    let mut args: Vec<&[u8]> = vec![b"PFCOUNT"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    q(c, &args)
}

fn encoding(c: &mut redis::Connection, key: &str) -> String {
    q(c, &[b"PFDEBUG", b"ENCODING", key.as_bytes()])
}

/// Adds `prefix0..prefixN` in batches.
fn pfadd_range(c: &mut redis::Connection, key: &str, prefix: &str, range: std::ops::Range<u32>) {
    let elements: Vec<String> = range.map(|i| format!("{prefix}{i}")).collect();
    for batch in elements.chunks(500) {
        let mut cmd = redis::cmd("PFADD");
        cmd.arg(key);
        for e in batch {
            cmd.arg(e);
        }
        let _: i64 = cmd.query(c).expect("PFADD");
    }
}

struct Both {
    real: redis::Connection,
    ours: redis::Connection,
}

impl Both {
    /// Copies `key` from `from` into `to` with GET/SET.
    fn copy(from: &mut redis::Connection, to: &mut redis::Connection, key: &str) -> Vec<u8> {
        let bytes = get(from, key);
        set(to, key, &bytes);
        bytes
    }

    /// Both servers agree on the key's count, encoding and exact bytes.
    fn assert_same(&mut self, key: &str) {
        assert_eq!(
            pfcount(&mut self.real, &[key]),
            pfcount(&mut self.ours, &[key]),
            "{key}"
        );
        assert_eq!(encoding(&mut self.real, key), encoding(&mut self.ours, key));
        assert_eq!(get(&mut self.real, key), get(&mut self.ours, key), "{key}");
    }
}

#[test]
fn hyperloglogs_cross_between_servers() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; HLL cross-server test skipped");
        return;
    };
    let ours = Server::start();
    let real_client = redis::Client::open(format!("redis://127.0.0.1:{}/", real.port)).unwrap();
    let mut b = Both {
        real: real_client.get_connection().unwrap(),
        ours: ours.client(),
    };

    // Sparse, made by redis-server, used by forkless.
    pfadd_range(&mut b.real, "sparse", "r", 0..300);
    assert_eq!(encoding(&mut b.real, "sparse"), "sparse");
    Both::copy(&mut b.real, &mut b.ours, "sparse");
    b.assert_same("sparse");
    let mut encodings = Vec::new();
    for range in [300..350, 350..400, 400..3000] {
        pfadd_range(&mut b.real, "sparse", "r", range.clone());
        pfadd_range(&mut b.ours, "sparse", "r", range);
        b.assert_same("sparse");
        encodings.push(encoding(&mut b.ours, "sparse"));
    }
    // The sparse limit turned both dense at the same step.
    assert_eq!(encodings.first().map(String::as_str), Some("sparse"));
    assert_eq!(encodings.last().map(String::as_str), Some("dense"));

    // Dense, made by redis-server, used by forkless.
    pfadd_range(&mut b.real, "dense", "d", 0..20_000);
    assert_eq!(encoding(&mut b.real, "dense"), "dense");
    Both::copy(&mut b.real, &mut b.ours, "dense");
    b.assert_same("dense");
    pfadd_range(&mut b.real, "dense", "x", 0..5000);
    pfadd_range(&mut b.ours, "dense", "x", 0..5000);
    b.assert_same("dense");

    // Sparse and dense, made by forkless, used by redis-server.
    pfadd_range(&mut b.ours, "fsparse", "f", 0..200);
    pfadd_range(&mut b.ours, "fdense", "g", 0..50_000);
    for key in ["fsparse", "fdense"] {
        Both::copy(&mut b.ours, &mut b.real, key);
        b.assert_same(key);
        pfadd_range(&mut b.real, key, "more", 0..700);
        pfadd_range(&mut b.ours, key, "more", 0..700);
        b.assert_same(key);
    }
    assert_eq!(encoding(&mut b.real, "fdense"), "dense");
    let n = pfcount(&mut b.ours, &["fdense"]);
    assert!((49_000..52_000).contains(&n), "{n}");

    // Unions and merges over values of both origins, in both servers.
    for c in [&mut b.real, &mut b.ours] {
        let _: () = q(c, &[b"PFMERGE", b"merged", b"sparse", b"dense", b"fsparse"]);
    }
    b.assert_same("merged");
    let keys = ["sparse", "dense", "fsparse", "fdense"];
    assert_eq!(pfcount(&mut b.real, &keys), pfcount(&mut b.ours, &keys));

    // A value redis-server wrote with a stale cached count (after PFADD)
    // is recounted and cached the same way by forkless.
    let _: i64 = q(&mut b.real, &[b"PFADD", b"stale", b"a", b"b"]);
    Both::copy(&mut b.real, &mut b.ours, "stale");
    b.assert_same("stale");
}
