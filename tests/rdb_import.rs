//! Redis RDB files and DUMP payloads cross between forkless and a real
//! redis-server: data of every encoding written into redis-server and SAVEd
//! loads into forkless unchanged (type, value, expiry time); forkless's
//! export loads into redis-server unchanged; damaged RDB files are refused
//! with the file, offset and reason and left as they were; DUMP on either
//! server RESTOREs on the other.
//!
//! Skipped (with a note) when redis-server is not installed.

mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;
use redis::Value as V;

/// A redis-server in a directory of the test's choosing, killed on drop.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(dir: &Path, dbfilename: &str) -> Option<Redis> {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .ok()?
                .local_addr()
                .ok()?
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--dbfilename", dbfilename])
                .arg("--dir")
                .arg(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .ok()?;
            let mut r = Redis { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(mut c) = r.try_client() {
                    // Answers -LOADING until the file is in.
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        return Some(r);
                    }
                }
                if let Ok(Some(_)) = r.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        None
    }

    fn try_client(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?.get_connection()
    }

    fn client(&self) -> redis::Connection {
        self.try_client().expect("connect to redis-server")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have_redis() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(c: &mut redis::Connection, args: &[&[u8]]) -> V {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(args[0])))
}

/// Copies `key` of database `db` with DUMP on `from` and RESTORE (its
/// absolute expiry kept, REPLACE if asked) on `to`; returns the payload.
fn copy_by_dump(
    from: &mut redis::Connection,
    to: &mut redis::Connection,
    db: u8,
    key: &[u8],
    replace: bool,
) -> Vec<u8> {
    let dbs = db.to_string();
    w(from, &["SELECT", &dbs]);
    w(to, &["SELECT", &dbs]);
    let V::BulkString(payload) = run(from, &[b"DUMP", key]) else {
        panic!("DUMP")
    };
    let at: i64 = redis::cmd("PEXPIRETIME").arg(key).query(from).unwrap();
    let ttl = if at > 0 { at.to_string() } else { "0".into() };
    let mut args: Vec<&[u8]> = vec![b"RESTORE", key, ttl.as_bytes(), &payload, b"ABSTTL"];
    if replace {
        args.push(b"REPLACE");
    }
    run(to, &args);
    payload
}

fn w(c: &mut redis::Connection, words: &[&str]) -> V {
    let args: Vec<&[u8]> = words.iter().map(|s| s.as_bytes()).collect();
    run(c, &args)
}

/// A deterministic byte stream that LZF cannot compress.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Writes data of every type and encoding into databases 0, 3 and 15.
fn populate(c: &mut redis::Connection) {
    let far = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3_600_000)
        .to_string();
    w(c, &["SELECT", "0"]);
    for (k, v) in [
        ("s:int8", "-7"),
        ("s:int16", "12345"),
        ("s:int32", "-2147483648"),
        ("s:int64", "9223372036854775807"),
        ("s:lead0", "007"),
        ("s:empty", ""),
        ("s:short", "hello"),
    ] {
        w(c, &["SET", k, v]);
    }
    w(c, &["SET", "s:lzf", &"abcdefgh".repeat(500)]);
    run(c, &[b"SET", b"s:noise", &noise(3000, 1)]);
    run(c, &[b"SET", b"s:bin\x00key", b"\x00\xff\r\n"]);
    w(c, &["SET", "s:ttl", "v", "PX", "3600000"]);
    w(c, &["SET", "s:ttlat", "v"]);
    w(c, &["PEXPIREAT", "s:ttlat", &far]);
    // Lists: one listpack node, several 8 KiB nodes, huge elements, integers.
    w(
        c,
        &[
            "RPUSH",
            "l:small",
            "a",
            "1",
            "-300",
            "70000",
            "5000000000",
            "x",
        ],
    );
    let many: Vec<String> = (0..3000).map(|i| format!("element-{i}")).collect();
    let mut cmd = vec!["RPUSH", "l:many"];
    cmd.extend(many.iter().map(String::as_str));
    w(c, &cmd);
    let big = "B".repeat(20_000);
    w(c, &["RPUSH", "l:big", &big, "small", &big]);
    w(c, &["LPUSH", "l:lpush", "1", "2", "3", &"z".repeat(100)]);
    // Hashes: listpack, hashtable by count, hashtable by value length.
    w(c, &["HSET", "h:small", "f1", "v1", "n", "42", "neg", "-1"]);
    let mut cmd = vec!["HSET".to_string(), "h:many".to_string()];
    for i in 0..1000 {
        cmd.push(format!("field{i}"));
        cmd.push(format!("value{i}"));
    }
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    w(c, &refs);
    w(c, &["HSET", "h:long", "f", &"L".repeat(100)]);
    w(c, &["PEXPIRE", "h:small", "7200000"]);
    // Sets: intsets of each width, a big intset (hashtable), strings.
    w(c, &["SADD", "set:i16", "1", "2", "3", "-5"]);
    w(c, &["SADD", "set:i32", "1", "100000", "-100000"]);
    w(c, &["SADD", "set:i64", "1", "9223372036854775807"]);
    let ints: Vec<String> = (0..600).map(|i| (i * 7).to_string()).collect();
    let mut cmd = vec!["SADD", "set:bigint"];
    cmd.extend(ints.iter().map(String::as_str));
    w(c, &cmd);
    w(c, &["SADD", "set:str", "apple", "pear", "fig"]);
    let strs: Vec<String> = (0..700).map(|i| format!("member:{i}")).collect();
    let mut cmd = vec!["SADD", "set:many"];
    cmd.extend(strs.iter().map(String::as_str));
    w(c, &cmd);
    // Sorted sets: listpack, skiplist by count and by member length, odd scores.
    w(
        c,
        &[
            "ZADD", "z:small", "1.5", "a", "2", "b", "-inf", "c", "inf", "d", "0.1", "e",
        ],
    );
    let mut cmd = vec!["ZADD".to_string(), "z:many".to_string()];
    for i in 0..500 {
        cmd.push(format!("{}", f64::from(i) / 7.0));
        cmd.push(format!("m{i}"));
    }
    let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
    w(c, &refs);
    w(c, &["ZADD", "z:long", "1", &"M".repeat(80), "2", "x"]);
    // Other databases, with TTLs.
    w(c, &["SELECT", "3"]);
    w(c, &["SET", "db3:s", "three", "EX", "5000"]);
    w(c, &["RPUSH", "db3:l", "x", "y"]);
    w(c, &["SELECT", "15"]);
    w(c, &["HSET", "db15:h", "a", "b"]);
    w(c, &["PEXPIREAT", "db15:h", &far]);
    w(c, &["SELECT", "0"]);
    populate_streams(c);
    w(
        c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=rdblib\nredis.register_function('rdbfn', function(keys, args) return 'from-rdb' end)",
        ],
    );
}

/// Streams of every shape in database 0 (and one in 3): several nodes,
/// deleted and trimmed entries, entries of other fields than their node's
/// first, values big enough to split nodes by bytes, consumer groups with
/// pending entries and consumers, an empty stream with a group.
fn populate_streams(c: &mut redis::Connection) {
    for i in 1..=250 {
        let id = format!("{i}-1");
        if i % 7 == 0 {
            w(
                c,
                &[
                    "XADD",
                    "x:plain",
                    &id,
                    "other",
                    "field",
                    "n",
                    &i.to_string(),
                ],
            );
        } else {
            w(
                c,
                &[
                    "XADD",
                    "x:plain",
                    &id,
                    "f",
                    &format!("v{i}"),
                    "n",
                    &i.to_string(),
                ],
            );
        }
    }
    for i in 1..=40 {
        w(c, &["XADD", "x:deleted", &format!("100-{i}"), "k", "v"]);
    }
    for id in ["100-1", "100-2", "100-17", "100-40"] {
        w(c, &["XDEL", "x:deleted", id]);
    }
    for i in 1..=300 {
        w(
            c,
            &["XADD", "x:trimmed", &format!("{i}-0"), "a", &i.to_string()],
        );
    }
    w(c, &["XTRIM", "x:trimmed", "MAXLEN", "150"]);
    for i in 1..=300 {
        w(c, &["XADD", "x:approx", &format!("{i}-0"), "a", "b"]);
    }
    w(c, &["XTRIM", "x:approx", "MAXLEN", "~", "150"]);
    for i in 1..=6 {
        let big = format!("{i}").repeat(1500);
        w(c, &["XADD", "x:big", &format!("{i}-0"), "payload", &big]);
    }
    for i in 1..=30 {
        w(
            c,
            &["XADD", "x:groups", &format!("{i}-0"), "job", &i.to_string()],
        );
    }
    w(c, &["XGROUP", "CREATE", "x:groups", "workers", "0"]);
    w(c, &["XGROUP", "CREATE", "x:groups", "late", "$"]);
    w(
        c,
        &[
            "XGROUP",
            "CREATE",
            "x:groups",
            "mid",
            "10-0",
            "ENTRIESREAD",
            "10",
        ],
    );
    w(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            "x:groups",
            ">",
        ],
    );
    w(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            "x:groups",
            ">",
        ],
    );
    w(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "mid",
            "carol",
            "COUNT",
            "2",
            "STREAMS",
            "x:groups",
            ">",
        ],
    );
    w(c, &["XACK", "x:groups", "workers", "2-0", "7-0"]);
    w(c, &["XCLAIM", "x:groups", "workers", "bob", "0", "3-0"]);
    w(
        c,
        &["XGROUP", "CREATECONSUMER", "x:groups", "workers", "idle"],
    );
    w(c, &["XDEL", "x:groups", "4-0"]);
    w(c, &["XADD", "x:empty", "5-5", "f", "v"]);
    w(c, &["XDEL", "x:empty", "5-5"]);
    w(c, &["XGROUP", "CREATE", "x:empty", "g", "$"]);
    w(c, &["XGROUP", "CREATE", "x:nothing", "g", "$", "MKSTREAM"]);
    w(
        c,
        &[
            "XSETID",
            "x:nothing",
            "77-7",
            "ENTRIESADDED",
            "9",
            "MAXDELETEDID",
            "70-0",
        ],
    );
    w(c, &["SELECT", "3"]);
    w(c, &["XADD", "db3:x", "1-1", "a", "1"]);
    w(c, &["PEXPIRE", "db3:x", "7200000"]);
    w(c, &["SELECT", "0"]);
}

/// (database, key) → (type, value in a canonical form, PEXPIRETIME).
type Capture = BTreeMap<(u8, Vec<u8>), (String, V, i64)>;

/// Every key of every database: type, value in a canonical form, and
/// absolute expiry time (PEXPIRETIME, exact).
fn capture(c: &mut redis::Connection) -> Capture {
    let mut out = BTreeMap::new();
    for db in 0..16u8 {
        w(c, &["SELECT", &db.to_string()]);
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(c).unwrap();
        for key in keys {
            let t: String = redis::cmd("TYPE").arg(&key).query(c).unwrap();
            let value = match t.as_str() {
                "string" => run(c, &[b"GET", &key]),
                "list" => run(c, &[b"LRANGE", &key, b"0", b"-1"]),
                "hash" => sorted(run(c, &[b"HGETALL", &key]), 2),
                "set" => sorted(run(c, &[b"SMEMBERS", &key]), 1),
                "zset" => run(c, &[b"ZRANGE", &key, b"0", b"-1", b"WITHSCORES"]),
                "stream" => stream_picture(run(
                    c,
                    &[b"XINFO", b"STREAM", &key, b"FULL", b"COUNT", b"0"],
                )),
                other => panic!("unexpected type {other}"),
            };
            let at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query(c).unwrap();
            out.insert((db, key), (t, value, at));
        }
    }
    w(c, &["SELECT", "0"]);
    out
}

/// XINFO STREAM FULL without `radix-tree-nodes`, which counts the inner
/// nodes of Redis's radix tree (forkless has none; `radix-tree-keys`, the
/// stream's nodes, stays).
fn stream_picture(v: V) -> V {
    let items = match v {
        V::Array(items) => items,
        V::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => return other,
    };
    let mut out = Vec::new();
    for pair in items.chunks(2) {
        if !matches!(&pair[0], V::BulkString(k) if k == b"radix-tree-nodes") {
            out.extend_from_slice(pair);
        }
    }
    V::Array(out)
}

/// An array reply's items in groups of `n`, sorted (hash and set order differ).
fn sorted(v: V, n: usize) -> V {
    let V::Array(items) = v else { return v };
    let mut groups: Vec<Vec<V>> = items.chunks(n).map(<[V]>::to_vec).collect();
    groups.sort_by_key(|g| format!("{g:?}"));
    V::Array(groups.into_iter().flatten().collect())
}

fn wait_for_file(path: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A redis-server SAVE of `populate`'s data, with its capture.
fn redis_dump(dir: &Path) -> Option<(PathBuf, Capture)> {
    let redis = Redis::start(dir, "redis.rdb")?;
    let mut c = redis.client();
    populate(&mut c);
    let want = capture(&mut c);
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    Some((dir.join("redis.rdb"), want))
}

#[test]
fn redis_rdb_loads_into_forkless_and_exports_back() {
    if !have_redis() {
        eprintln!("redis-server not available; RDB test skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (rdb, want) = redis_dump(tmp.path()).expect("redis-server starts");
    assert!(want.len() > 20, "{}", want.len());
    let streams = want.values().filter(|(t, _, _)| t == "stream").count();
    assert_eq!(streams, 9);

    // Start-up import.
    let fk_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&rdb, fk_dir.path().join("dump.rdb")).unwrap();
    let server = Server::spawn_in(
        fk_dir.path(),
        &["--save", "", "--config", "enable-debug-command local"],
    )
    .expect("forkless starts");
    assert!(server.log_eventually_contains("Loaded Redis RDB version 10", Duration::from_secs(5)));
    let mut c = server.client();
    let got = capture(&mut c);
    assert_eq!(got, want);
    let reply: String = redis::cmd("FCALL")
        .arg("rdbfn")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(reply, "from-rdb");

    // DEBUG EXPORT-RDB from the running server, then redis-server loads it.
    let export = fk_dir.path().join("export.rdb");
    let started: String = redis::cmd("DEBUG")
        .arg("EXPORT-RDB")
        .arg("export.rdb")
        .query(&mut c)
        .unwrap();
    assert_eq!(started, "Background RDB export started");
    assert!(wait_for_file(&export, Duration::from_secs(30)));
    let back = Redis::start(fk_dir.path(), "export.rdb").expect("redis-server loads the export");
    let mut rc = back.client();
    assert_eq!(capture(&mut rc), want);
    let reply: String = redis::cmd("FCALL")
        .arg("rdbfn")
        .arg(0)
        .query(&mut rc)
        .unwrap();
    assert_eq!(reply, "from-rdb");
    drop(back);

    // The next save writes forkless's own format over the Redis dump.
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    let head = std::fs::read(fk_dir.path().join("dump.rdb")).unwrap();
    assert_ne!(&head[..5], b"REDIS");
    drop(c);
    drop(server);

    // Offline: import-rdb, then export-rdb of its output, loads into redis-server.
    let out = Command::new(common::BIN)
        .arg("import-rdb")
        .arg(&rdb)
        .arg(fk_dir.path().join("imported.dump"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(common::BIN)
        .args(["export-rdb", "--dump"])
        .arg(fk_dir.path().join("imported.dump"))
        .arg(fk_dir.path().join("offline.rdb"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let check = Command::new("redis-check-rdb")
        .arg(fk_dir.path().join("offline.rdb"))
        .output();
    if let Ok(check) = check {
        let text = String::from_utf8_lossy(&check.stdout);
        assert!(text.contains("RDB looks OK"), "{text}");
    }
    let back = Redis::start(fk_dir.path(), "offline.rdb").expect("redis-server loads it");
    assert_eq!(capture(&mut back.client()), want);
    // check-dump reads Redis RDB files too.
    let out = Command::new(common::BIN)
        .arg("check-dump")
        .arg(&rdb)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("OK, Redis RDB version 10"),
        "{text}"
    );
}

/// Starts forkless on `bytes` as its dump and returns the start-up error.
fn refused(bytes: &[u8], args: &[&str]) -> (String, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.rdb");
    std::fs::write(&path, bytes).unwrap();
    let err = match Server::spawn_in(dir.path(), args) {
        Ok(_) => panic!("a damaged RDB was accepted"),
        Err(e) => e,
    };
    (err, std::fs::read(&path).unwrap())
}

#[test]
fn damaged_or_unsupported_rdb_is_refused_and_kept() {
    if !have_redis() {
        eprintln!("redis-server not available; RDB test skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (rdb, _) = redis_dump(tmp.path()).expect("redis-server starts");
    let good = std::fs::read(&rdb).unwrap();
    let n = good.len();

    let mut bad_crc = good.clone();
    bad_crc[n - 1] ^= 0x55;
    let mut flipped = good.clone();
    flipped[n / 2] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..n / 2].to_vec(), "offset"),
        ("truncated-at-eof", good[..n - 3].to_vec(), "the checksum"),
        ("wrong checksum", bad_crc, "checksum mismatch"),
        ("flipped byte", flipped, "offset"),
        (
            "newer version",
            [b"REDIS0099".as_slice(), &good[9..]].concat(),
            "version 99",
        ),
    ];
    for (what, bytes, reason) in cases {
        // Save points are configured: the file must still not be overwritten.
        let (err, after) = refused(&bytes, &["--save", "1 1"]);
        assert!(
            err.contains("dump.rdb") && err.contains(reason),
            "{what}: {err}"
        );
        assert_eq!(after, bytes, "{what}: the file changed");
    }

    // A module value stops the load, naming the key and its type: a
    // listpack hash whose type byte is made a module's.
    let redis = Redis::start(tmp.path(), "module.rdb").unwrap();
    let mut c = redis.client();
    w(&mut c, &["SET", "plain", "x"]);
    w(&mut c, &["HSET", "modval", "f", "v"]);
    let _: String = redis::cmd("SAVE").query(&mut c).unwrap();
    let mut bytes = std::fs::read(tmp.path().join("module.rdb")).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"\x10\x06modval")
        .expect("the hash record");
    bytes[at] = 7;
    let (err, after) = refused(&bytes, &["--save", "1 1"]);
    assert!(
        err.contains("\"modval\"") && err.contains("module"),
        "{err}"
    );
    assert_eq!(after, bytes);
}

#[test]
fn dump_restore_both_ways_for_every_encoding() {
    if !have_redis() {
        eprintln!("redis-server not available; DUMP/RESTORE test skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "unused.rdb").unwrap();
    let mut rc = redis.client();
    populate(&mut rc);
    let want = capture(&mut rc);
    let server = Server::start();
    let mut fc = server.client();
    // Redis → forkless.
    for (db, key) in want.keys() {
        copy_by_dump(&mut rc, &mut fc, *db, key, false);
    }
    assert_eq!(capture(&mut fc), want);
    // forkless → Redis, REPLACE over what is there.
    w(&mut rc, &["FLUSHALL"]);
    for (db, key) in want.keys() {
        let payload = copy_by_dump(&mut fc, &mut rc, *db, key, true);
        // Where both pick the same encoding, the payloads are the same
        // bytes. Not for hashtables (hash order), nor for lists and streams of several
        // nodes: Redis's LZF table keeps slots from earlier commands'
        // compressions, which can find extra matches in later nodes.
        let V::BulkString(theirs) = run(&mut rc, &[b"DUMP", key]) else {
            panic!("DUMP")
        };
        let enc = run(&mut rc, &[b"OBJECT", b"ENCODING", key]);
        let hashed = matches!(&enc, V::BulkString(e) if e == b"hashtable");
        let several_nodes = matches!(payload[0], 18 | 19) && payload[1] > 1;
        if !hashed && !several_nodes && theirs != payload {
            let at = theirs.iter().zip(&payload).position(|(a, b)| a != b);
            panic!(
                "{:?}: DUMP differs from redis-server's ({} vs {} bytes, first at {at:?})",
                String::from_utf8_lossy(key),
                payload.len(),
                theirs.len()
            );
        }
    }
    assert_eq!(capture(&mut rc), want);
}

/// MIGRATE source → target of every key of database 0, checked against a
/// capture of the source.
fn migrate_all(
    from: &mut redis::Connection,
    to_port: u16,
    to: &mut redis::Connection,
    extra: &[&str],
) {
    let before = capture(from);
    let keys: Vec<String> = before
        .keys()
        .filter(|(db, _)| *db == 0)
        .map(|(_, k)| String::from_utf8(k.clone()).unwrap())
        .filter(|k| !k.contains('\0'))
        .collect();
    let port = to_port.to_string();
    let mut cmd = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000"];
    cmd.extend_from_slice(extra);
    cmd.push("KEYS");
    cmd.extend(keys.iter().map(String::as_str));
    assert_eq!(w(from, &cmd), V::Okay);
    let moved: Capture = before
        .into_iter()
        .filter(|((db, k), _)| *db == 0 && !k.contains(&0))
        .collect();
    let arrived: Capture = capture(to)
        .into_iter()
        .filter(|((db, k), _)| *db == 0 && moved.contains_key(&(*db, k.clone())))
        .collect();
    assert_eq!(arrived.len(), moved.len());
    for (k, (t, v, at)) in &moved {
        let (t2, v2, at2) = &arrived[k];
        assert_eq!((t, v), (t2, v2), "{k:?}");
        // The TTL travels as time left: allow the transfer's milliseconds.
        assert!(
            (at - at2).abs() < 2000 || (*at < 0 && at == at2),
            "{k:?}: {at} vs {at2}"
        );
    }
}

#[test]
fn migrate_between_forkless_and_redis_server() {
    if !have_redis() {
        eprintln!("redis-server not available; MIGRATE test skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "unused.rdb").unwrap();
    let mut rc = redis.client();
    populate(&mut rc);
    let a = Server::start();
    let b = Server::start_with(&["--save", "", "--requirepass", "secret"]);
    let mut ac = a.client();
    // redis-server → forkless A.
    migrate_all(&mut rc, a.port, &mut ac, &[]);
    let left: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(left, 1, "only the key with a NUL byte stays");
    // forkless A → forkless B (AUTH), keeping A's keys (COPY).
    let mut bc = redis::Client::open(format!("redis://:secret@127.0.0.1:{}/", b.port))
        .unwrap()
        .get_connection()
        .unwrap();
    migrate_all(&mut ac, b.port, &mut bc, &["COPY", "AUTH", "secret"]);
    let kept: i64 = redis::cmd("DBSIZE").query(&mut ac).unwrap();
    assert!(kept > 20);
    // Again without REPLACE: the target refuses, nothing is deleted here.
    let e = common::error(
        &mut ac,
        &[
            "MIGRATE",
            "127.0.0.1",
            &b.port.to_string(),
            "s:short",
            "0",
            "5000",
            "AUTH2",
            "default",
            "secret",
        ],
    );
    assert_eq!(
        e,
        "ERR Target instance replied with error: BUSYKEY Target key name already exists."
    );
    let e = common::error(
        &mut ac,
        &[
            "MIGRATE",
            "127.0.0.1",
            &b.port.to_string(),
            "s:short",
            "0",
            "5000",
            "AUTH",
            "wrong",
        ],
    );
    assert!(
        e.starts_with("ERR Target instance replied with error: WRONGPASS"),
        "{e}"
    );
    let still: i64 = redis::cmd("EXISTS").arg("s:short").query(&mut ac).unwrap();
    assert_eq!(still, 1);
    // forkless A → redis-server, REPLACE, moving the keys out of A.
    migrate_all(&mut ac, redis.port, &mut rc, &["REPLACE"]);
    let left: i64 = redis::cmd("DBSIZE").query(&mut ac).unwrap();
    assert_eq!(left, 0);
    // A key that is gone: NOKEY.
    let reply = w(
        &mut ac,
        &[
            "MIGRATE",
            "127.0.0.1",
            &redis.port.to_string(),
            "gone",
            "0",
            "100",
        ],
    );
    assert_eq!(reply, V::SimpleString("NOKEY".into()));
}

/// A forkless process on a port chosen here (its "ready" line comes only
/// after the load, so the common helper cannot be used), killed on drop.
struct Raw(Child);

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn clients_get_loading_until_the_data_set_is_in() {
    if !have_redis() {
        eprintln!("redis-server not available; loading test skipped");
        return;
    }
    // Enough that the load outlasts a few round trips in a release build.
    const KEYS: i64 = 400_000;
    let tmp = tempfile::tempdir().unwrap();
    let dump = {
        let port = common::free_port();
        let child = common::redis_server_command(port, tmp.path())
            .args(["--enable-debug-command", "yes", "--dbfilename", "big.rdb"])
            .spawn()
            .unwrap();
        let r = Redis { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut c = loop {
            if let Ok(c) = r.try_client() {
                break c;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        w(
            &mut c,
            &["DEBUG", "POPULATE", &KEYS.to_string(), "key", "100"],
        );
        w(&mut c, &["SAVE"]);
        tmp.path().join("big.rdb")
    };
    let size = std::fs::metadata(&dump).unwrap().len();
    let fk = tempfile::tempdir().unwrap();
    std::fs::copy(&dump, fk.path().join("dump.rdb")).unwrap();
    let port = common::free_port();
    let started = Instant::now();
    let _server = Raw(Command::new(common::BIN)
        .args(["--port", &port.to_string(), "--save", ""])
        .arg("--dir")
        .arg(fk.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let url = format!("redis://127.0.0.1:{port}/");
    let mut c = loop {
        if let Ok(c) = redis::Client::open(url.as_str()).unwrap().get_connection() {
            break c;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the port never opened"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let accepted_after = started.elapsed();
    // Redis answers these with -LOADING too (PING is not flagged `loading`).
    for cmd in [
        &["PING"][..],
        &["GET", "key:1"],
        &["SET", "a", "b"],
        &["DBSIZE"],
    ] {
        let e = common::error(&mut c, cmd);
        assert_eq!(
            e, "LOADING Redis is loading the dataset in memory",
            "{cmd:?}"
        );
    }
    let info = common::info_persistence(&mut c);
    assert_eq!(info["loading"], "1");
    assert_eq!(info["loading_total_bytes"], size.to_string());
    assert!(info.contains_key("loading_loaded_perc") && info.contains_key("loading_eta_seconds"));
    let loaded_after = loop {
        match redis::cmd("DBSIZE").query::<i64>(&mut c) {
            Ok(n) => {
                assert_eq!(n, KEYS);
                break started.elapsed();
            }
            Err(e) => assert_eq!(e.code(), Some("LOADING"), "{e}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the load never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        accepted_after < loaded_after,
        "{accepted_after:?} {loaded_after:?}"
    );
    assert_eq!(common::info_persistence(&mut c)["loading"], "0");
    let v: String = redis::cmd("GET").arg("key:1").query(&mut c).unwrap();
    assert!(v.starts_with("value:1"), "{v}");
    eprintln!("port open after {accepted_after:?}, data set served after {loaded_after:?}");
}

/// The keyspace events of a RESTORE/MIGRATE sequence on a server at `port`.
fn restore_events(port: u16, target_port: u16) -> Vec<(String, String)> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    w(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub_con = client.get_connection().unwrap();
    let mut pubsub = sub_con.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let payload = b"\x00\x05hello\n\x00cr\xdfve4 \n";
    let t = target_port.to_string();
    run(&mut c, &[b"RESTORE", b"k", b"0", payload]);
    run(&mut c, &[b"RESTORE", b"k", b"0", payload, b"REPLACE"]);
    run(
        &mut c,
        &[b"RESTORE", b"k", b"1", payload, b"REPLACE", b"ABSTTL"],
    );
    run(&mut c, &[b"RESTORE", b"k", b"1", payload, b"ABSTTL"]);
    run(&mut c, &[b"RESTORE", b"m", b"0", payload]);
    run(
        &mut c,
        &[
            b"MIGRATE",
            b"127.0.0.1",
            t.as_bytes(),
            b"m",
            b"0",
            b"5000",
            b"REPLACE",
        ],
    );
    run(&mut c, &[b"SET", b"end", b"1"]);
    let mut events = Vec::new();
    loop {
        let msg = pubsub.get_message().unwrap();
        let event = msg
            .get_channel_name()
            .rsplit(':')
            .next()
            .unwrap()
            .to_string();
        let key: String = msg.get_payload().unwrap();
        if key == "end" {
            return events;
        }
        events.push((event, key));
    }
}

#[test]
fn restore_and_migrate_publish_redis_events() {
    if !have_redis() {
        eprintln!("redis-server not available; events test skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let redis = Redis::start(tmp.path(), "unused.rdb").unwrap();
    let target = Redis::start(tmp.path(), "unused2.rdb").unwrap();
    let server = Server::start();
    let theirs = restore_events(redis.port, target.port);
    let ours = restore_events(server.port, target.port);
    assert_eq!(ours, theirs);
    assert!(theirs.contains(&("restore".into(), "k".into())));
}
