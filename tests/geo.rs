//! Whole-binary tests of the geo commands: random searches, distances,
//! positions and hashes compared reply by reply with a real redis-server
//! in both protocols; a geo index (a plain sorted set) kept through SAVE
//! and restart, DEBUG RELOAD and DUMP/RESTORE, and carried to redis-server
//! by DUMP payloads and an RDB export; keyspace events as Redis emits them.

mod common;
#[path = "differential/mod.rs"]
mod harness;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{q, Server};
use harness::real::RealRedis;
use harness::resp::{Conn, V};
use harness::script::Mode;
use harness::Pair;

/// A small deterministic generator (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + self.unit() * (hi - lo)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn seed() -> u64 {
    match std::env::var("FORKLESS_GEO_SEED") {
        Ok(s) => s.parse().expect("FORKLESS_GEO_SEED is a number"),
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        }
    }
}

fn words(s: &str) -> Vec<Vec<u8>> {
    s.split_whitespace()
        .map(|w| w.as_bytes().to_vec())
        .collect()
}

/// Cluster centres: a city, near the antimeridian, near the Mercator
/// limit in both hemispheres, the origin.
const CENTRES: &[(f64, f64)] = &[
    (12.4964, 41.9028),
    (179.8, -16.5),
    (-179.9, 65.0),
    (20.0, 84.9),
    (-60.0, -84.5),
    (0.0, 0.0),
];

/// `count` points: most in clusters of several sizes around [`CENTRES`],
/// some anywhere, a few sharing a position (equal distances).
fn points(rng: &mut Rng, count: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let p = match rng.below(10) {
            0 => (rng.range(-180.0, 180.0), rng.range(-85.05, 85.05)),
            1 if !out.is_empty() => out[rng.below(out.len() as u64) as usize],
            _ => {
                let (lon, lat) = CENTRES[rng.below(CENTRES.len() as u64) as usize];
                let spread = [0.01, 0.3, 3.0][rng.below(3) as usize];
                (
                    (lon + rng.range(-spread, spread)).clamp(-180.0, 180.0),
                    (lat + rng.range(-spread, spread)).clamp(-85.05, 85.05),
                )
            }
        };
        out.push(p);
    }
    out
}

/// One random geo command on key `k` with `n` members `m0..`.
fn random_command(rng: &mut Rng, n: usize) -> String {
    let member = |rng: &mut Rng| {
        if rng.below(20) == 0 {
            "nosuch".to_string()
        } else {
            format!("m{}", rng.below(n as u64))
        }
    };
    let unit = |rng: &mut Rng| rng.pick(&["m", "km", "mi", "ft", "KM"]).to_string();
    let size = |rng: &mut Rng| {
        let meters = 10f64.powf(rng.range(0.0, 7.3));
        format!("{:.3}", meters / 1000.0)
    };
    let centre = |rng: &mut Rng| {
        let (lon, lat) = CENTRES[rng.below(CENTRES.len() as u64) as usize];
        let spread = [0.0, 0.2, 5.0][rng.below(3) as usize];
        (
            (lon + rng.range(-spread, spread)).clamp(-180.0, 180.0),
            (lat + rng.range(-spread, spread)).clamp(-85.05, 85.05),
        )
    };
    let options = |rng: &mut Rng, store: bool| {
        let mut o = Vec::new();
        if !store {
            for w in ["WITHDIST", "WITHCOORD", "WITHHASH"] {
                if rng.below(2) == 0 {
                    o.push(w.to_string());
                }
            }
        }
        match rng.below(3) {
            0 => o.push("ASC".into()),
            1 => o.push("DESC".into()),
            _ => {}
        }
        if rng.below(2) == 0 {
            o.push(format!("COUNT {}", 1 + rng.below(30)));
            if rng.below(3) == 0 {
                o.push("ANY".into());
            }
        }
        o.join(" ")
    };
    match rng.below(10) {
        0..=3 => {
            let from = if rng.below(3) == 0 {
                format!("FROMMEMBER {}", member(rng))
            } else {
                let (lon, lat) = centre(rng);
                format!("FROMLONLAT {lon:.6} {lat:.6}")
            };
            let by = if rng.below(2) == 0 {
                format!("BYRADIUS {} km", size(rng))
            } else {
                format!("BYBOX {} {} {}", size(rng), size(rng), unit(rng))
            };
            format!("GEOSEARCH k {from} {by} {}", options(rng, false))
        }
        4 => {
            let (lon, lat) = centre(rng);
            format!(
                "GEORADIUS_RO k {lon:.6} {lat:.6} {} km {}",
                size(rng),
                options(rng, false)
            )
        }
        5 => format!(
            "GEORADIUSBYMEMBER_RO k {} {} km {}",
            member(rng),
            size(rng),
            options(rng, false)
        ),
        6 => {
            let (lon, lat) = centre(rng);
            format!(
                "GEOSEARCHSTORE dst k FROMLONLAT {lon:.6} {lat:.6} BYRADIUS {} km {} {}",
                size(rng),
                options(rng, true),
                if rng.below(2) == 0 { "STOREDIST" } else { "" }
            )
        }
        7 => format!("GEODIST k {} {} {}", member(rng), member(rng), unit(rng)),
        8 => format!("GEOPOS k {} {} {}", member(rng), member(rng), member(rng)),
        _ => format!("GEOHASH k {} {}", member(rng), member(rng)),
    }
}

#[test]
fn random_searches_match_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; differential test skipped");
        return;
    };
    let ours = Server::start();
    let mut pair = Pair::new(real.port, ours.port);
    let seed = seed();
    eprintln!("FORKLESS_GEO_SEED={seed}");
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    // A listpack-sized index, then a large skiplist one.
    for (round, count) in [(0, 100), (1, 3000)] {
        pair.reset();
        let pts = points(&mut rng, count);
        for (chunk_at, chunk) in pts.chunks(500).enumerate() {
            let mut add = "GEOADD k".to_string();
            for (i, (lon, lat)) in chunk.iter().enumerate() {
                add.push_str(&format!(" {lon:.7} {lat:.7} m{}", chunk_at * 500 + i));
            }
            pair.exec(&Mode::Exact, &words(&add)).expect("GEOADD");
        }
        pair.exec(&Mode::Exact, &words("OBJECT ENCODING k"))
            .expect("same encoding");
        for i in 0..600 {
            let proto = if i % 2 == 0 { 2 } else { 3 };
            if pair.proto != proto {
                pair.set_protocol(proto).expect("HELLO");
            }
            let line = random_command(&mut rng, count);
            if let Err(e) = pair.exec(&Mode::Exact, &words(&line)) {
                failures.push(format!("round {round} [RESP{proto}] {line}: {e}"));
            }
            if line.starts_with("GEOSEARCHSTORE") {
                // The stored scores too: distances from a centre on a member's
                // meridian (longitude 180 included) take Redis's shortcut.
                let check = "ZRANGE dst 0 -1 WITHSCORES";
                if let Err(e) = pair.exec(&Mode::Exact, &words(check)) {
                    failures.push(format!("after {line}: {check}: {e}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "seed {seed}: {} differences:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
}

/// What a geo index answers, to compare before and after a round trip.
fn picture(c: &mut redis::Connection, key: &str) -> Vec<redis::Value> {
    let reads: [&[&str]; 5] = [
        &["ZRANGE", key, "0", "-1", "WITHSCORES"],
        &["GEOPOS", key, "m0", "m1", "m7", "nosuch"],
        &["GEOHASH", key, "m0", "m1", "m7"],
        &[
            "GEOSEARCH",
            key,
            "FROMMEMBER",
            "m0",
            "BYRADIUS",
            "300",
            "km",
            "ASC",
            "WITHDIST",
        ],
        &["OBJECT", "ENCODING", key],
    ];
    reads.iter().map(|r| q(c, r)).collect()
}

fn add_points(c: &mut redis::Connection, key: &str, count: usize, seed: u64) {
    let mut rng = Rng(seed);
    let mut add = redis::cmd("GEOADD");
    add.arg(key);
    for (i, (lon, lat)) in points(&mut rng, count).into_iter().enumerate() {
        add.arg(format!("{lon:.6}"))
            .arg(format!("{lat:.6}"))
            .arg(format!("m{i}"));
    }
    let _: i64 = add.query(c).unwrap();
}

#[test]
fn a_geo_index_survives_save_restart_reload_and_dump_restore() {
    let mut s = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut c = s.client();
    add_points(&mut c, "small", 50, 7);
    add_points(&mut c, "large", 2000, 8);
    let small = picture(&mut c, "small");
    let large = picture(&mut c, "large");
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "small"]),
        "listpack"
    );
    assert_eq!(
        q::<String>(&mut c, &["OBJECT", "ENCODING", "large"]),
        "skiplist"
    );
    assert_eq!(q::<String>(&mut c, &["TYPE", "large"]), "zset");

    let _: () = q(&mut c, &["SAVE"]);
    s.restart();
    let mut c = s.client();
    assert_eq!(picture(&mut c, "small"), small);
    assert_eq!(picture(&mut c, "large"), large);

    let _: String = q(&mut c, &["DEBUG", "RELOAD"]);
    assert_eq!(picture(&mut c, "large"), large);

    for key in ["small", "large"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut c).unwrap();
        let copy = format!("{key}-copy");
        let _: () = redis::cmd("RESTORE")
            .arg(&copy)
            .arg(0)
            .arg(payload)
            .query(&mut c)
            .unwrap();
        let want = if key == "small" { &small } else { &large };
        assert_eq!(&picture(&mut c, &copy), want);
    }
}

/// A redis-server on `dir`/`file`, loading it if it exists.
fn redis_server_on(dir: &std::path::Path, file: &str) -> Option<(Child, u16)> {
    let port = common::free_port();
    let mut child = common::redis_server_command(port, dir)
        .args(["--dbfilename", file])
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut c) = Conn::connect(port) {
            if matches!(c.call(&words("PING")), Ok(V::Simple(ref pong)) if pong == b"PONG") {
                return Some((child, port));
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn connect(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

#[test]
fn dump_payloads_and_rdb_exports_carry_geo_indexes_to_redis_server() {
    let tmp = tempfile::tempdir().unwrap();
    let Some((mut redis_child, redis_port)) = redis_server_on(tmp.path(), "none.rdb") else {
        eprintln!("redis-server not available; test skipped");
        return;
    };
    let s = Server::start_with(&["--save", "", "--config", "enable-debug-command local"]);
    let mut ours = s.client();
    let mut theirs = connect(redis_port);
    add_points(&mut ours, "small", 50, 11);
    add_points(&mut ours, "large", 1500, 12);
    add_points(&mut theirs, "from-redis", 1500, 13);
    for key in ["small", "large"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut ours).unwrap();
        let _: () = redis::cmd("RESTORE")
            .arg(key)
            .arg(0)
            .arg(payload)
            .query(&mut theirs)
            .unwrap();
        assert_eq!(picture(&mut theirs, key), picture(&mut ours, key));
    }
    let payload: Vec<u8> = redis::cmd("DUMP")
        .arg("from-redis")
        .query(&mut theirs)
        .unwrap();
    let _: () = redis::cmd("RESTORE")
        .arg("from-redis")
        .arg(0)
        .arg(payload)
        .query(&mut ours)
        .unwrap();
    assert_eq!(
        picture(&mut ours, "from-redis"),
        picture(&mut theirs, "from-redis")
    );
    let _ = redis_child.kill();
    let _ = redis_child.wait();

    // An RDB export of the whole data set loads into redis-server.
    let started: String = q(&mut ours, &["DEBUG", "EXPORT-RDB", "geo.rdb"]);
    assert_eq!(started, "Background RDB export started");
    let export = s.dir.join("geo.rdb");
    assert!(common::wait_until(Duration::from_secs(30), || export.exists()));
    let (mut back, port) = redis_server_on(&s.dir, "geo.rdb").expect("redis-server loads it");
    let mut loaded = connect(port);
    for key in ["small", "large", "from-redis"] {
        assert_eq!(picture(&mut loaded, key), picture(&mut ours, key), "{key}");
    }
    let _ = back.kill();
    let _ = back.wait();
}

#[test]
fn keyspace_events_match_redis() {
    let s = Server::start();
    let script: &[&[&str]] = &[
        &["GEOADD", "g", "1", "1", "a", "2", "2", "b"],
        &["GEOADD", "g", "1", "1", "a"],
        &["GEOADD", "g", "CH", "1", "1.5", "a"],
        &["GEORADIUS", "g", "1", "1", "500", "km", "STORE", "d"],
        &["GEORADIUSBYMEMBER", "g", "a", "500", "km", "STOREDIST", "d"],
        &[
            "GEOSEARCHSTORE",
            "e",
            "g",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "500",
            "km",
        ],
        &[
            "GEOSEARCHSTORE",
            "e",
            "g",
            "FROMLONLAT",
            "50",
            "50",
            "BYRADIUS",
            "1",
            "km",
        ],
        &["GEORADIUS", "nokey", "1", "1", "1", "km", "STORE", "d"],
        &[
            "GEOSEARCHSTORE",
            "e",
            "nokey",
            "FROMLONLAT",
            "1",
            "1",
            "BYRADIUS",
            "1",
            "km",
        ],
        &["SET", "end", "x"],
    ];
    // As redis-server 7.0.15 publishes them.
    let want = [
        ("zadd", "g"),
        ("zadd", "g"),
        ("georadiusstore", "d"),
        ("georadiusstore", "d"),
        ("geosearchstore", "e"),
        ("del", "e"),
        ("del", "d"),
        ("set", "end"),
    ];
    let got = common::key_events_of(&s, script, want.len());
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(e, k)| (e.to_string(), k.to_string()))
        .collect();
    assert_eq!(got, want);
}
