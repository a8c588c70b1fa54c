//! Differential tests: forkless against a real redis-server 7, over raw RESP2
//! and RESP3, reply by reply.
//!
//! - `corpus_matches_redis_server` runs every `tests/corpus/*.redis` script
//!   (syntax in `differential/script.rs`) in both protocols, checks that every
//!   command in forkless's table has corpus lines, and that every documented
//!   difference (`@differs TAG`) still shows and is listed in README.md's
//!   Compatibility section.
//! - `random_sequences_match_redis_server` generates command sequences over
//!   all types and a few colliding keys with proptest (seed printed; set
//!   `FORKLESS_DIFF_SEED` to replay, `FORKLESS_DIFF_CASES` for more cases).
//!
//! Both skip (with a note) when redis-server is not installed.
//! `FORKLESS_CORPUS=<name>` runs only the corpus files whose path contains it.

mod common;
#[path = "differential/mod.rs"]
mod harness;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Server;
use harness::real::RealRedis;
use harness::script::{self, Mode, Step};
use harness::Pair;

/// Commands in forkless's table that the corpus does not exercise, and why;
/// each is covered by its own whole-binary tests instead.
const NOT_IN_CORPUS: &[(&str, &str)] = &[
    ("shutdown", "stops the server"),
    (
        "save",
        "persistence: writes files, covered by its own tests",
    ),
    (
        "bgsave",
        "persistence: writes files, covered by its own tests",
    ),
    ("lastsave", "persistence: a timestamp"),
    ("debug", "not a user command"),
    ("monitor", "streams other clients' commands"),
    ("sync", "replication"),
    ("psync", "replication"),
];

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn load_corpus() -> Vec<script::Script> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "redis"))
        // FORKLESS_CORPUS=name runs only the files whose name contains it.
        .filter(|p| match std::env::var("FORKLESS_CORPUS") {
            Ok(only) => p.to_string_lossy().contains(&only),
            Err(_) => true,
        })
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(p).expect("corpus file");
            script::parse(&name, &text).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect()
}

/// The tags named in README.md's `## Compatibility` section as `` `tag` ``.
fn readme_tags() -> BTreeSet<String> {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let section = readme
        .split("\n## Compatibility")
        .nth(1)
        .expect("README.md has a ## Compatibility section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| t.starts_with("diff:"))
        .map(|t| t.trim_start_matches("diff:").to_string())
        .collect()
}

#[test]
fn corpus_parses_and_covers_the_command_table() {
    let corpus = load_corpus();
    let mut covered = BTreeSet::new();
    for s in &corpus {
        for line in &s.lines {
            if let Step::Command { args, .. } | Step::Other { args, .. } | Step::Send(args) =
                &line.step
            {
                covered.insert(String::from_utf8_lossy(&args[0]).to_lowercase());
            }
        }
    }
    let allowed: BTreeSet<&str> = NOT_IN_CORPUS.iter().map(|(c, _)| *c).collect();
    let missing: Vec<&str> = forkless::commands::all_commands()
        .map(|c| c.name)
        .filter(|c| !covered.contains(*c) && !allowed.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "commands with no corpus line: {missing:?}"
    );
    let tags: BTreeSet<String> = corpus
        .iter()
        .flat_map(|s| &s.lines)
        .filter_map(|l| match &l.step {
            Step::Command {
                mode: Mode::Differs(t),
                ..
            } => Some(t.clone()),
            _ => None,
        })
        .collect();
    let documented = readme_tags();
    let undocumented: Vec<_> = tags.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "@differs tags missing from README.md's Compatibility section: {undocumented:?}"
    );
    assert!(corpus.iter().map(|s| s.lines.len()).sum::<usize>() > 500);
}

#[test]
fn corpus_matches_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; differential test skipped");
        return;
    };
    let ours = Server::start();
    let mut pair = Pair::new(real.port, ours.port);
    let mut failures = Vec::new();
    let started = Instant::now();
    for s in load_corpus() {
        let absent: Vec<&String> = s
            .requires
            .iter()
            .filter(|c| forkless::commands::lookup(c.as_bytes()).is_none())
            .collect();
        if !absent.is_empty() {
            eprintln!("{}: skipped, forkless lacks {absent:?}", s.name);
            continue;
        }
        for proto in [2, 3] {
            pair.reconnect().expect("reconnect");
            pair.reset();
            if let Err(e) = pair.set_protocol(proto) {
                failures.push(format!("{}: {e}", s.name));
                continue;
            }
            for line in &s.lines {
                if let Err(e) = pair.run(line) {
                    failures.push(e);
                }
            }
        }
    }
    eprintln!(
        "corpus: {} commands compared in {:?}; expected differences seen: {:?}",
        pair.compared,
        started.elapsed(),
        pair.differs_seen
    );
    assert!(
        failures.is_empty(),
        "{} differences from redis-server:\n{}",
        failures.len(),
        failures
            .iter()
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(pair.compared > 1000, "{}", pair.compared);
}

// ---------------------------------------------------------------------------
// Model-based random sequences.

mod gen {
    use super::script::Mode;

    /// A tiny deterministic generator; proptest supplies its seed per command.
    pub struct Lcg(pub u64);

    impl Lcg {
        pub fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }

        pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    const KEYS: &[&str] = &["a", "b", "c"];
    const MEMBERS: &[&str] = &["x", "y", "z", "1", "2", "-3", "", "\0\r\n\u{e9}"];
    // Values beyond 2^53 are left out of float arithmetic: INCRBYFLOAT on them
    // shows Redis's 80-bit long double, a documented difference.
    const VALUES: &[&str] = &[
        "", "0", "1", "-7", "12", "x", "hello", "3.5", "007", " 1", "1e3", "-0.25", "0x10",
        "\0\r\n",
    ];
    const INTS: &[&str] = &["0", "1", "-1", "2", "-2", "3", "5", "-100", "100", "x"];
    const EXACT_FLOATS: &[&str] = &["0.5", "-2", "1.25", "x", "3"];

    /// Number of command templates.
    pub const TEMPLATES: u16 = 100;

    /// Data words kept exactly (empty ones too), then option words split on spaces.
    fn c(data: &[&str], opts: &str) -> Vec<Vec<u8>> {
        data.iter()
            .map(|w| w.as_bytes().to_vec())
            .chain(
                opts.split(' ')
                    .filter(|w| !w.is_empty())
                    .map(|w| w.as_bytes().to_vec()),
            )
            .collect()
    }

    const SCORES: &[&str] = &[
        "1", "-1", "2.5", "0", "-0", "inf", "-inf", "1e200", "x", "(1",
    ];

    /// The sorted set templates (94 to 99).
    #[allow(clippy::too_many_arguments)]
    fn zset_command(
        template: u16,
        r: &mut Lcg,
        k: &str,
        k2: &str,
        m: &str,
        m2: &str,
        i: &str,
        j: &str,
    ) -> Vec<Vec<u8>> {
        let s1 = r.pick(SCORES);
        let s2 = r.pick(SCORES);
        match template {
            94 => {
                let opts = r.pick(&[
                    "", "NX", "XX", "GT", "LT", "CH", "INCR", "XX CH", "GT CH", "NX INCR",
                ]);
                let mut args = c(&["ZADD", k], opts);
                args.extend(c(&[s1, m], ""));
                if r.below(2) == 0 {
                    args.extend(c(&[s2, m2], ""));
                }
                args
            }
            95 => match r.below(4) {
                0 => c(&["ZREM", k, m, m2], ""),
                1 => c(&["ZINCRBY", k, s1, m], ""),
                2 => c(&["ZSCORE", k, m], ""),
                _ => c(&[r.pick(&["ZRANK", "ZREVRANK"]), k, m], ""),
            },
            96 => match r.below(3) {
                0 => c(
                    &["ZRANGE", k, i, j],
                    r.pick(&["", "WITHSCORES", "REV", "REV WITHSCORES"]),
                ),
                1 => c(
                    &[r.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]), k, s1, s2],
                    r.pick(&["", "WITHSCORES", "LIMIT 1 2"]),
                ),
                _ => c(
                    &[r.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]), k],
                    r.pick(&["- +", "+ -", "[x +", "- (z", "(1 [y", "x y"]),
                ),
            },
            97 => match r.below(3) {
                0 => c(
                    &[r.pick(&["ZPOPMIN", "ZPOPMAX"]), k],
                    r.pick(&["", "1", "2", "0", "-1"]),
                ),
                1 => c(&["ZREMRANGEBYRANK", k, i, j], ""),
                _ => c(&["ZREMRANGEBYSCORE", k, s1, s2], ""),
            },
            98 => match r.below(3) {
                0 => c(
                    &[
                        r.pick(&["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]),
                        k,
                        "2",
                        k2,
                        "nokey",
                    ],
                    "",
                ),
                1 => c(
                    &[r.pick(&["ZUNION", "ZINTER", "ZDIFF"]), "2", k, k2],
                    r.pick(&["", "WITHSCORES"]),
                ),
                _ => c(&["ZRANGESTORE", k2, k, i, j], ""),
            },
            _ => match r.below(4) {
                0 => c(&["ZCARD", k], ""),
                1 => c(&["ZCOUNT", k, s1, s2], ""),
                2 => c(&["ZMSCORE", k, m, m2], ""),
                _ => c(&["ZMPOP", "2", k, k2], r.pick(&["MIN", "MAX COUNT 2"])),
            },
        }
    }

    /// Builds command `template` with choices drawn from `seed`.
    pub fn command(template: u16, seed: u64) -> (Mode, Vec<Vec<u8>>) {
        let r = &mut Lcg(seed);
        let k = r.pick(KEYS);
        let k2 = r.pick(KEYS);
        let m = r.pick(MEMBERS);
        let m2 = r.pick(MEMBERS);
        let v = r.pick(VALUES);
        let i = r.pick(INTS);
        let j = r.pick(INTS);
        let side = r.pick(&["LEFT", "RIGHT"]);
        let side2 = r.pick(&["LEFT", "RIGHT"]);
        let set_opts = [
            "",
            "NX",
            "XX",
            "GET",
            "NX GET",
            "XX GET",
            "KEEPTTL",
            "EX 1000",
            "PX 0",
            "NX XX",
            "PXAT 1",
            "EX 100 KEEPTTL",
        ];
        let expire_opts = ["", "NX", "XX", "GT", "LT", "XX GT", "NX LT"];
        let mut mode = Mode::Exact;
        let args = match template {
            0 => c(&["SET", k, v], r.pick(&set_opts)),
            1 => c(&["GET", k], ""),
            2 => c(&["APPEND", k, v], ""),
            3 => c(&["SETRANGE", k, &r.below(6).to_string(), v], ""),
            4 => c(&["GETRANGE", k, i, j], ""),
            5 => c(&["INCR", k], ""),
            6 => c(&["INCRBY", k, i], ""),
            7 => c(&["DECRBY", k, i], ""),
            8 => c(&["STRLEN", k], ""),
            9 => c(&["MSET", k, v, k2, i], ""),
            10 => c(&["MGET", k, k2, "nokey"], ""),
            11 => c(&["MSETNX", k, v, k2, i], ""),
            12 => c(&["GETSET", k, v], ""),
            13 => c(&["GETDEL", k], ""),
            14 => c(&["GETEX", k], r.pick(&["", "PERSIST", "EX 500", "PXAT 1"])),
            15 => c(&["SETNX", k, v], ""),
            16 => c(&["SETEX", k, &format!("{i}00"), v], ""),
            // Exact binary increments on a key of their own, and the error
            // paths on the shared keys (which may hold integers past 2^53).
            17 => match r.below(2) {
                0 => c(&["INCRBYFLOAT", "f", r.pick(EXACT_FLOATS)], ""),
                _ => c(&["INCRBYFLOAT", k, "x"], ""),
            },
            18 => c(&["DECR", k], ""),
            19 => c(&["EXISTS", k, k2, k], ""),
            20 => c(&["DEL", k, k2], ""),
            21 => c(&["RENAME", k, k2], ""),
            22 => c(&["RENAMENX", k, k2], ""),
            23 => c(
                &["COPY", k, k2],
                r.pick(&["", "REPLACE", "DB 1", "DB 1 REPLACE"]),
            ),
            24 => c(&["MOVE", k, r.pick(&["0", "1"])], ""),
            25 => c(&["TYPE", k], ""),
            // Relative times race with the clock, so GT/LT only meet absolute ones.
            26 => c(
                &["EXPIRE", k, r.pick(&["0", "1001", "2002", "-1"])],
                r.pick(&["", "NX", "XX"]),
            ),
            27 => {
                mode = Mode::Approx(1);
                c(&[r.pick(&["TTL", "EXPIRETIME"]), k], "")
            }
            28 => {
                mode = Mode::Approx(1000);
                c(&[r.pick(&["PTTL", "PEXPIRETIME"]), k], "")
            }
            29 => c(&["PERSIST", k], ""),
            30 => c(&[r.pick(&["TOUCH", "UNLINK"]), k, k2], ""),
            31 => {
                mode = Mode::Unordered;
                c(&["KEYS", r.pick(&["*", "a*", "[ab]", "?"])], "")
            }
            32 => {
                mode = Mode::Scan;
                let opts = format!(
                    "COUNT {} {}",
                    r.pick(&["1", "2", "100"]),
                    r.pick(&["", "TYPE set", "TYPE string", "MATCH [ac]"])
                );
                c(&["SCAN", "0"], &opts)
            }
            33 => {
                mode = Mode::Random;
                c(&["RANDOMKEY"], "")
            }
            34 => c(&[r.pick(&["EXPIREAT", "PEXPIREAT"]), k, i], ""),
            35 => c(
                &["PEXPIRE", k, &format!("{i}000000")],
                r.pick(&["", "NX", "XX"]),
            ),
            36 => c(&["SELECT", r.pick(&["0", "1"])], ""),
            37 => c(&[r.pick(&["LPUSH", "RPUSH"]), k, m, m2], ""),
            38 => c(&[r.pick(&["LPUSHX", "RPUSHX"]), k, m], ""),
            39 => c(&[r.pick(&["LPOP", "RPOP"]), k], ""),
            40 => c(&[r.pick(&["LPOP", "RPOP"]), k, i], ""),
            41 => c(&["LLEN", k], ""),
            42 => c(&["LRANGE", k, i, j], ""),
            43 => c(&["LINDEX", k, i], ""),
            44 => c(&["LSET", k, i, m], ""),
            45 => c(
                &["LINSERT", k, r.pick(&["BEFORE", "AFTER", "MIDDLE"]), m, m2],
                "",
            ),
            46 => c(&["LREM", k, i, m], ""),
            47 => c(&["LTRIM", k, i, j], ""),
            48 => {
                let opts = format!(
                    "{} {}",
                    r.pick(&[
                        "",
                        "RANK 1",
                        "COUNT 0",
                        "MAXLEN 1",
                        "RANK 0",
                        "RANK -1 COUNT 2"
                    ]),
                    r.pick(&["", "COUNT 0", "RANK -1", "MAXLEN 2", "COUNT -1"])
                );
                c(&["LPOS", k, m], &opts)
            }
            49 => c(&["LMOVE", k, k2, side, side2], ""),
            50 => c(&["RPOPLPUSH", k, k2], ""),
            51 => c(
                &["LMPOP", "2", k, k2, side],
                r.pick(&["", "COUNT 2", "COUNT 0"]),
            ),
            52 => c(&["HSET", k, m, v, m2, i], ""),
            53 => c(&["HSETNX", k, m, v], ""),
            54 => c(&["HGET", k, m], ""),
            55 => c(&["HMGET", k, m, m2], ""),
            56 => {
                mode = Mode::Pairs;
                c(&["HGETALL", k], "")
            }
            57 => {
                mode = Mode::Unordered;
                c(&[r.pick(&["HKEYS", "HVALS"]), k], "")
            }
            58 => c(&["HDEL", k, m, m2], ""),
            59 => c(&["HEXISTS", k, m], ""),
            60 => c(&["HLEN", k], ""),
            61 => c(&["HSTRLEN", k, m], ""),
            62 => c(&["HINCRBY", k, m, i], ""),
            63 => c(&["HINCRBYFLOAT", k, m, r.pick(EXACT_FLOATS)], ""),
            64 => {
                mode = Mode::Scan;
                let opts = format!("COUNT {}", r.pick(&["1", "3"]));
                c(&[r.pick(&["HSCAN", "SSCAN"]), k, "0"], &opts)
            }
            65 => {
                mode = Mode::Random;
                c(&["HRANDFIELD", k], "")
            }
            66 => {
                mode = Mode::Random;
                c(&["HRANDFIELD", k, i], r.pick(&["", "WITHVALUES"]))
            }
            67 => c(&["HMSET", k, m, v], ""),
            68 => c(&["SADD", k, m, m2], ""),
            69 => c(&["SREM", k, m, m2], ""),
            70 => {
                mode = Mode::Unordered;
                c(&["SMEMBERS", k], "")
            }
            71 => c(&["SISMEMBER", k, m], ""),
            72 => c(&["SMISMEMBER", k, m, m2], ""),
            73 => c(&["SCARD", k], ""),
            74 => {
                mode = Mode::Random;
                c(&["SPOP", k], r.pick(&["", "", "0", "1", "2", "5", "-1"]))
            }
            75 => {
                mode = Mode::Random;
                c(
                    &["SRANDMEMBER", k],
                    r.pick(&["", "0", "1", "2", "5", "-1", "-5"]),
                )
            }
            76 => c(&["SMOVE", k, k2, m], ""),
            77 => {
                mode = Mode::Unordered;
                c(&[r.pick(&["SINTER", "SUNION", "SDIFF"]), k, k2], "")
            }
            78 => c(
                &["SINTERCARD", "2", k, k2],
                r.pick(&["", "LIMIT 1", "LIMIT 0"]),
            ),
            79 => c(
                &[
                    r.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
                    k,
                    k2,
                    r.pick(KEYS),
                ],
                "",
            ),
            80 => c(&["PING"], r.pick(&["", "hi"])),
            81 => c(&["ECHO", v], ""),
            82 => c(&["SUBSTR", k, i, j], ""),
            83 => c(
                &[
                    "INCRBY",
                    k,
                    r.pick(&["9223372036854775807", "-9223372036854775808"]),
                ],
                "",
            ),
            84 => c(
                &[
                    "SET",
                    k,
                    r.pick(&["9223372036854775806", "-9223372036854775807", "10"]),
                ],
                "",
            ),
            85 => c(&["LPUSH", k, i], ""),
            86 => c(&["SADD", k, i, j, "1000"], ""),
            87 => c(&["HSET", k, m, i], ""),
            88 => c(&["SET", k, m], ""),
            89 => c(&[r.pick(&["LPUSH", "RPUSH"]), k, v], ""),
            90 => c(&["SMOVE", k, k2, i], ""),
            91 => c(&["SINTERCARD", "3", k, k2, "nokey"], ""),
            // Sorted sets, once forkless has them (scores add exactly).
            94..=99 if forkless::commands::lookup(b"zadd").is_some() => {
                zset_command(template, r, k, k2, m, m2, i, j)
            }
            // Server commands, once forkless has them.
            93 if forkless::commands::lookup(b"swapdb").is_some() => {
                c(&[], r.pick(&["DBSIZE", "SWAPDB 0 1", "DBSIZE", "FLUSHDB"]))
            }
            93 => c(&["PING"], ""),
            _ => {
                let when = r.pick(&["99999999999", "2000000000", "99999999998", "1"]);
                match r.below(2) {
                    0 => c(&["EXPIREAT", k, when], r.pick(&expire_opts)),
                    _ => c(
                        &["PEXPIREAT", k, &format!("{when}000")],
                        r.pick(&expire_opts),
                    ),
                }
            }
        };
        (mode, args)
    }
}

fn seed() -> u64 {
    std::env::var("FORKLESS_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn reset_generated(pair: &mut Pair) {
    for c in [&mut pair.real, &mut pair.ours] {
        for db in ["1", "0"] {
            c.cmd(&["SELECT", db]);
            c.cmd(&["DEL", "a", "b", "c", "f", "nokey"]);
        }
    }
}

#[test]
fn random_sequences_match_redis_server() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; differential test skipped");
        return;
    };
    let ours = Server::start();
    let seed = seed();
    let cases: u32 = std::env::var("FORKLESS_DIFF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let budget = Duration::from_secs(
        std::env::var("FORKLESS_DIFF_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(50),
    );
    eprintln!(
        "random differential: seed {seed} (FORKLESS_DIFF_SEED={seed} replays), {cases} cases"
    );
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let pair = RefCell::new(Pair::new(real.port, ours.port));
    let run = std::cell::Cell::new(0u32);
    let commands = std::cell::Cell::new(0usize);
    let started = Instant::now();
    let strategy = (
        any::<bool>(),
        prop::collection::vec((0..gen::TEMPLATES, any::<u64>()), 1..60),
    );
    let result = runner.run(&strategy, |(resp3, steps)| {
        if started.elapsed() > budget {
            return Ok(()); // out of time: the remaining cases pass untested
        }
        run.set(run.get() + 1);
        let mut pair = pair.borrow_mut();
        pair.reconnect().map_err(TestCaseError::fail)?;
        reset_generated(&mut pair);
        pair.set_protocol(if resp3 { 3 } else { 2 })
            .map_err(TestCaseError::fail)?;
        let mut history = vec![format!("HELLO {}", if resp3 { 3 } else { 2 })];
        for (t, s) in steps {
            let (mode, args) = gen::command(t, s);
            history.push(script::render(&mode, &args));
            commands.set(commands.get() + 1);
            if let Err(e) = pair.exec(&mode, &args) {
                return Err(TestCaseError::fail(format!(
                    "{e}\nsequence (corpus form):\n{}",
                    history.join("\n")
                )));
            }
        }
        Ok(())
    });
    eprintln!(
        "random differential: {} sequences, {} commands in {:?}",
        run.get(),
        commands.get(),
        started.elapsed()
    );
    if let Err(e) = result {
        panic!("seed {seed}: {e}");
    }
    assert!(
        run.get() >= cases.min(200),
        "only {} sequences ran",
        run.get()
    );
}

// ---------------------------------------------------------------------------
// The wire protocol itself: inline commands, quoting and malformed frames.

/// Raw request bytes; each is followed by an inline PING so that a connection
/// left open answers +PONG and the read can stop there.
const RAW_REQUESTS: &[&[u8]] = &[
    b"PING\r\n",
    b"ping hello\n",
    b"ECHO \"a b\\x41\\n\"\r\n",
    b"ECHO 'it''s'\r\n",
    b"ECHO 'a\\'b'\r\n",
    b"ECHO \"unbalanced\r\n",
    b"ECHO \"a\"b\r\n",
    b"   \r\n",
    b"\r\n",
    b"SET k v\r\nGET k\r\n",
    b"*1\r\n$4\r\nPING\r\n",
    b"*0\r\n",
    b"*-1\r\n",
    b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$x\r\n",
    b"*x\r\n",
    b"*1048577\r\n",
    b"*1\r\n$536870913\r\n",
    b"*1\r\n+PING\r\n",
    b"*2\r\n$4\r\nECHO\r\n$3\r\nabcd\r\n",
    b"$3\r\nfoo\r\n",
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
];

fn raw_exchange(port: u16, request: &[u8]) -> (Vec<u8>, bool) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut all = request.to_vec();
    all.extend_from_slice(b"PING\r\n");
    let _ = s.write_all(&all);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                if out.ends_with(b"+PONG\r\n") {
                    return (out, false);
                }
            }
            Err(_) => return (out, true),
        }
    }
    (out, false)
}

#[test]
fn wire_protocol_edges_match_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; differential test skipped");
        return;
    };
    let ours = Server::start();
    let mut failures = Vec::new();
    for req in RAW_REQUESTS {
        let theirs = raw_exchange(real.port, req);
        let mine = raw_exchange(ours.port, req);
        if theirs != mine {
            failures.push(format!(
                "{}:\n  redis-server: {} (closed: {})\n  forkless:     {} (closed: {})",
                harness::resp::quote(req),
                harness::resp::quote(&theirs.0),
                theirs.1,
                harness::resp::quote(&mine.0),
                mine.1
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Sends `request` (after `HELLO 3` when `resp3`), has another client run
/// `publish`, and returns every byte the first client got within 300 ms.
fn pushes_exchange(port: u16, resp3: bool, request: &[u8], publish: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let connect = || {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        s
    };
    let read_for = |s: &mut std::net::TcpStream, wait: Duration| {
        let mut out = Vec::new();
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
        out
    };
    let mut s = connect();
    if resp3 {
        s.write_all(b"HELLO 3\r\n").unwrap();
        read_for(&mut s, Duration::from_millis(100));
    }
    s.write_all(request).unwrap();
    let mut out = read_for(&mut s, Duration::from_millis(150));
    if !publish.is_empty() {
        let mut p = connect();
        p.write_all(publish).unwrap();
        read_for(&mut p, Duration::from_millis(50));
    }
    out.extend(read_for(&mut s, Duration::from_millis(150)));
    out
}

/// CLIENT REPLY OFF and SKIP silence replies, not pub/sub pushes: subscribe
/// and unsubscribe confirmations and messages arrive as from redis-server.
#[test]
fn reply_off_keeps_pubsub_pushes_like_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; differential test skipped");
        return;
    };
    let ours = Server::start();
    let publish: &[u8] = b"PUBLISH ch hello\r\n";
    let cases: &[(&[u8], &[u8])] = &[
        (b"CLIENT REPLY OFF\r\nSUBSCRIBE ch\r\n", publish),
        (
            b"CLIENT REPLY OFF\r\nSUBSCRIBE ch other\r\nPSUBSCRIBE c*\r\n",
            publish,
        ),
        (b"CLIENT REPLY SKIP\r\nSUBSCRIBE ch\r\nPING\r\n", publish),
        (
            b"CLIENT REPLY OFF\r\nSUBSCRIBE ch\r\nUNSUBSCRIBE ch\r\nCLIENT REPLY ON\r\n",
            b"",
        ),
        (
            b"CLIENT REPLY OFF\r\nSUBSCRIBE\r\nUNSUBSCRIBE\r\nCLIENT REPLY ON\r\n",
            b"",
        ),
    ];
    let mut failures = Vec::new();
    for resp3 in [false, true] {
        for (request, publish) in cases {
            let theirs = pushes_exchange(real.port, resp3, request, publish);
            let mine = pushes_exchange(ours.port, resp3, request, publish);
            assert!(!theirs.is_empty(), "redis-server sent nothing");
            if theirs != mine {
                failures.push(format!(
                    "{} (RESP{}):\n  redis-server: {}\n  forkless:     {}",
                    harness::resp::quote(request),
                    if resp3 { 3 } else { 2 },
                    harness::resp::quote(&theirs),
                    harness::resp::quote(&mine),
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every command in the table answers a wrong argument count (too few, and
/// one too many for fixed arities) exactly as redis-server does.
#[test]
fn arity_errors_match_redis_server_for_every_command() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; differential test skipped");
        return;
    };
    let ours = Server::start();
    let mut pair = Pair::new(real.port, ours.port);
    let mut failures = Vec::new();
    let mut names: Vec<(&str, i32)> = forkless::commands::all_commands()
        .map(|c| (c.name, c.arity))
        .collect();
    names.sort_unstable();
    let mut checked = 0;
    for (name, arity) in names {
        let mut calls: Vec<Vec<Vec<u8>>> = Vec::new();
        let min = arity.unsigned_abs() as usize;
        if min > 1 {
            // Too few: the name alone, then one argument short (mixed case).
            calls.push(vec![name.as_bytes().to_vec()]);
            let mut short = vec![name.to_ascii_uppercase().into_bytes()];
            short.extend((2..min).map(|_| b"x".to_vec()));
            calls.push(short);
        }
        if arity > 0 {
            let mut long = vec![name.as_bytes().to_vec()];
            long.extend((0..arity).map(|_| b"x".to_vec()));
            calls.push(long);
        }
        for args in calls {
            checked += 1;
            if let Err(e) = pair.exec(&Mode::Exact, &args) {
                failures.push(format!("{}: {e}", script::render(&Mode::Exact, &args)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 100, "{checked}");
}

/// The `field` names of an INFO reply, section by section, in order.
fn info_fields(v: &harness::resp::V) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(v.bytes().unwrap_or_default()).into_owned();
    let text = text.strip_prefix("txt:").unwrap_or(&text).to_string();
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            section = name.to_string();
        } else if let Some((field, _)) = line.split_once(':') {
            out.push((section.clone(), field.to_string()));
        }
    }
    out
}

/// Exporters and dashboards read INFO by field name and CLIENT LIST by field
/// name: every field real Redis prints in the default INFO sections and in
/// CLIENT LIST must be printed by forkless too, in the same section.
#[test]
fn info_and_client_list_fields_match_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("skipped: redis-server is not installed");
        return;
    };
    let ours = Server::start();
    let mut theirs = real.conn();
    let mut mine = harness::resp::Conn::connect(ours.port).expect("connect");
    for conn in [&mut theirs, &mut mine] {
        conn.cmd(&["SET", "k", "v"]);
    }

    let redis_info = info_fields(&theirs.cmd(&["INFO"]));
    let our_info: BTreeSet<(String, String)> =
        info_fields(&mine.cmd(&["INFO"])).into_iter().collect();
    assert!(
        redis_info.len() > 100,
        "too few INFO fields from Redis: {redis_info:?}"
    );
    let missing: Vec<_> = redis_info
        .iter()
        .filter(|f| !our_info.contains(*f))
        .collect();
    assert!(
        missing.is_empty(),
        "INFO fields Redis prints and forkless does not: {missing:?}"
    );

    let field_names = |v: &harness::resp::V| -> Vec<String> {
        let text = String::from_utf8_lossy(v.bytes().unwrap_or_default()).into_owned();
        let line = text.lines().next().unwrap_or_default().to_string();
        line.split(' ')
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    let redis_fields = field_names(&theirs.cmd(&["CLIENT", "LIST"]));
    let our_fields = field_names(&mine.cmd(&["CLIENT", "LIST"]));
    assert!(redis_fields.len() > 20, "{redis_fields:?}");
    // forkless may append fields (Redis 7.2's lib-name/lib-ver); Redis's come first, in order.
    assert_eq!(
        &our_fields[..redis_fields.len().min(our_fields.len())],
        &redis_fields[..],
        "CLIENT LIST fields"
    );
}
