//! maxmemory and eviction with the real binary and real clients: every
//! policy keeps `used_memory` within the budget while far more is written,
//! `noeviction` refuses writes but serves reads and DEL, `volatile-*` policies
//! evict only keys with a TTL, an LRU hot set survives as well as on
//! redis-server, and back-to-back BGSAVEs under the write load stay within
//! the budget (what the snapshot pins aside) and produce loadable dumps.

mod common;
#[path = "differential/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{q, Server};
use harness::real::RealRedis;

const MB: u64 = 1024 * 1024;
/// How far over the budget a reading may be: one command's own allocation
/// plus the other threads' not yet counted balances.
const SLACK: u64 = 2 * MB;

fn info(c: &mut redis::Connection, section: &str) -> BTreeMap<String, String> {
    let text: String = q(c, &["INFO", section]);
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn field(c: &mut redis::Connection, section: &str, name: &str) -> u64 {
    info(c, section)[name].parse().expect("a number")
}

/// Counted against maxmemory: used_memory less what a snapshot pins.
fn counted(c: &mut redis::Connection) -> u64 {
    let m = info(c, "memory");
    let used: u64 = m["used_memory"].parse().unwrap();
    let pinned: u64 = m["mem_snapshot_pinned"].parse().unwrap();
    used.saturating_sub(pinned)
}

fn start(maxmemory: &str, policy: &str) -> Server {
    Server::start_with(&[
        "--save",
        "",
        "--config",
        &format!("maxmemory {maxmemory}"),
        "--config",
        &format!("maxmemory-policy {policy}"),
    ])
}

/// SETs `count` keys `prefix{i}` of `size` bytes in pipelines of 100, with
/// an optional TTL; returns the error replies.
fn write_keys(
    c: &mut redis::Connection,
    prefix: &str,
    count: usize,
    size: usize,
    ttl: Option<u64>,
) -> Vec<String> {
    let value = vec![b'x'; size];
    let mut errors = Vec::new();
    for start in (0..count).step_by(100) {
        let mut pipe = redis::pipe();
        for i in start..(start + 100).min(count) {
            let cmd = pipe.cmd("SET").arg(format!("{prefix}{i}")).arg(&value[..]);
            if let Some(t) = ttl {
                cmd.arg("EX").arg(t);
            }
        }
        let replies: Vec<redis::RedisResult<()>> = pipe.ignore_errors().query(c).expect("pipeline");
        errors.extend(
            replies
                .into_iter()
                .filter_map(|r| r.err())
                .map(|e| e.to_string()),
        );
    }
    errors
}

#[test]
fn every_policy_stays_within_the_budget_while_ten_times_more_is_written() {
    for policy in [
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] {
        let s = start("50mb", policy);
        let mut c = s.client();
        let volatile = policy.starts_with("volatile");
        // Under volatile-* 10 MB of keys without a TTL must all survive.
        if volatile {
            let errors = write_keys(&mut c, "keep:", 1000, 10_000, None);
            assert!(errors.is_empty(), "{policy}: {errors:?}");
        }
        let mut peak = 0;
        for round in 0..10 {
            let errors = write_keys(
                &mut c,
                &format!("bulk{round}:"),
                5000,
                10_000,
                Some(3600 + round as u64),
            );
            assert!(errors.is_empty(), "{policy}: {errors:?}");
            peak = peak.max(counted(&mut c));
        }
        assert!(
            peak <= 50 * MB + SLACK,
            "{policy}: used_memory reached {peak} over a 50 MB budget"
        );
        let evicted = field(&mut c, "stats", "evicted_keys");
        assert!(evicted > 40_000, "{policy}: only {evicted} keys evicted");
        let rss = field(&mut c, "memory", "used_memory_rss");
        assert!(rss < 200 * MB, "{policy}: RSS {rss} for a 50 MB budget");
        if volatile {
            let mut pipe = redis::pipe();
            for i in 0..1000 {
                pipe.cmd("EXISTS").arg(format!("keep:{i}"));
            }
            let found: Vec<i64> = pipe.query(&mut c).unwrap();
            assert_eq!(
                found.iter().sum::<i64>(),
                1000,
                "{policy} evicted a key without a TTL"
            );
        }
    }
}

#[test]
fn noeviction_refuses_writes_but_serves_reads_and_del() {
    let s = start("20mb", "noeviction");
    let mut c = s.client();
    let errors = write_keys(&mut c, "k", 4000, 10_000, None);
    assert!(
        !errors.is_empty(),
        "40 MB written into a 20 MB noeviction server"
    );
    assert!(
        errors[0].contains("command not allowed when used memory > 'maxmemory'"),
        "{errors:?}"
    );
    assert!(counted(&mut c) <= 20 * MB + SLACK);
    assert_eq!(field(&mut c, "stats", "evicted_keys"), 0);
    let v: Vec<u8> = q(&mut c, &["GET", "k0"]);
    assert_eq!(v.len(), 10_000);
    let refused = write_keys(&mut c, "more", 100, 10_000, None);
    assert!(
        refused.len() >= 90,
        "{} of 100 writes refused",
        refused.len()
    );
    // Deleting makes room again.
    let keys: Vec<String> = (0..1000).map(|i| format!("k{i}")).collect();
    let mut del = redis::cmd("DEL");
    del.arg(&keys);
    let deleted: i64 = del.query(&mut c).unwrap();
    assert_eq!(deleted, 1000);
    let _: () = q(&mut c, &["SET", "another", "v"]);
}

/// Writes cold keys at a steady pace while reading a hot set; returns the
/// fraction of hot reads that hit. Redis's LRU clock ticks in seconds, so
/// the pace keeps cold keys alive for seconds: long enough for idle times
/// to tell hot from cold on either server.
fn hot_set_hit_rate(c: &mut redis::Connection) -> f64 {
    let value = vec![b'v'; 1000];
    let hot: Vec<String> = (0..2000).map(|i| format!("hot:{i}")).collect();
    for chunk in hot.chunks(200) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("SET").arg(k).arg(&value[..]).ignore();
        }
        let _: () = pipe.query(c).unwrap();
    }
    let (mut hits, mut reads) = (0u64, 0u64);
    let started = Instant::now();
    let mut cold = 0u64;
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(8) {
        let mut pipe = redis::pipe();
        for _ in 0..250 {
            pipe.cmd("SET")
                .arg(format!("cold:{cold}"))
                .arg(&value[..])
                .ignore();
            cold += 1;
        }
        let _: () = pipe.query(c).unwrap();
        if tick.is_multiple_of(4) {
            for chunk in hot.chunks(500) {
                let mut mget = redis::cmd("MGET");
                mget.arg(chunk);
                let got: Vec<Option<Vec<u8>>> = mget.query(c).unwrap();
                reads += got.len() as u64;
                hits += got.iter().filter(|v| v.is_some()).count() as u64;
            }
        }
        tick += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cold * 1000 > 30 * MB, "only {cold} cold keys written");
    hits as f64 / reads as f64
}

#[test]
fn an_lru_hot_set_survives_as_on_redis_server() {
    let Some(real) = RealRedis::start() else {
        eprintln!("redis-server not available; hot-set comparison skipped");
        return;
    };
    let ours = start("20mb", "allkeys-lru");
    let theirs_thread = std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", real.port)).unwrap();
        let mut c = client.get_connection().unwrap();
        let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory", "20mb"]);
        let _: () = q(
            &mut c,
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
        );
        let rate = hot_set_hit_rate(&mut c);
        drop(real);
        rate
    });
    let mut c = ours.client();
    let our_rate = hot_set_hit_rate(&mut c);
    let their_rate = theirs_thread.join().unwrap();
    eprintln!("hot-set hit rate: forkless {our_rate:.4}, redis-server {their_rate:.4}");
    assert!(
        our_rate >= their_rate - 0.02,
        "hot-set hit rate {our_rate:.4} against redis-server's {their_rate:.4}"
    );
    assert!(field(&mut c, "stats", "evicted_keys") > 0);
}

#[test]
fn back_to_back_bgsaves_under_writes_stay_within_the_budget() {
    let s = start("50mb", "allkeys-lru");
    let port = s.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
            let mut c = client.get_connection().unwrap();
            let mut errors = Vec::new();
            let mut round = 0;
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                errors.extend(write_keys(&mut c, &format!("w{round}:"), 500, 10_000, None));
                round += 1;
            }
            errors
        })
    };
    let mut c = s.client();
    let waiting = Instant::now();
    while q::<i64>(&mut c, &["DBSIZE"]) < 1000 {
        assert!(waiting.elapsed() < Duration::from_secs(30), "no writes");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut peak = 0;
    let mut peak_pinned = 0;
    let mut dumps = Vec::new();
    for _ in 0..4 {
        let _: String = q(&mut c, &["BGSAVE"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            peak = peak.max(counted(&mut c));
            peak_pinned = peak_pinned.max(field(&mut c, "memory", "mem_snapshot_pinned"));
            let p = info(&mut c, "persistence");
            if p["rdb_bgsave_in_progress"] == "0" {
                assert_eq!(p["rdb_last_bgsave_status"], "ok");
                break;
            }
            assert!(Instant::now() < deadline, "BGSAVE did not finish");
            std::thread::sleep(Duration::from_millis(5));
        }
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(s.dir.join("dump.rdb"), copy.path().join("dump.rdb")).unwrap();
        dumps.push(copy);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let errors = writer.join().unwrap();
    assert!(errors.is_empty(), "writes failed during saves: {errors:?}");
    eprintln!("during the saves: counted peak {peak}, pinned peak {peak_pinned}");
    assert!(
        peak <= 50 * MB + SLACK,
        "used_memory less pinned reached {peak} over a 50 MB budget"
    );
    for dump in &dumps {
        let loaded = Server::spawn_in(dump.path(), &["--save", ""]).expect("the dump loads");
        let mut lc = loaded.client();
        let keys: i64 = q(&mut lc, &["DBSIZE"]);
        assert!(keys > 0, "an empty dump");
    }
}

/// Sends the start of a `size`-byte SET value without finishing it, so the
/// bytes sit in the server's query buffer; returns the socket.
fn partial_bulk(port: u16, size: usize) -> std::net::TcpStream {
    use std::io::Write;
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(sock, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", size + 10).unwrap();
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        if sock.write_all(&chunk).is_err() {
            break; // closed by the server: evicted
        }
        sent += chunk.len();
    }
    sock
}

/// Whether the server closed `sock` (a read sees EOF or a reset).
fn closed_by_server(sock: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    matches!(sock.read(&mut buf), Ok(0) | Err(_))
}

#[test]
fn maxmemory_clients_evicts_the_largest_client_but_not_no_evict_ones() {
    let s = Server::start_with(&["--save", "", "--config", "maxmemory-clients 4mb"]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "small", "v"]);

    let mut big = partial_bulk(s.port, 8 * 1024 * 1024);
    assert!(
        closed_by_server(&mut big),
        "an 8 MB query buffer survived a 4 MB limit"
    );
    assert!(field(&mut c, "stats", "evicted_clients") >= 1);
    assert!(s.log().contains("Evicting client"), "{}", s.log());
    // The small client goes on.
    let v: String = q(&mut c, &["GET", "small"]);
    assert_eq!(v, "v");

    // A client marked NO-EVICT keeps its buffer; the limit can be lifted.
    let evicted_before = field(&mut c, "stats", "evicted_clients");
    let client = redis::Client::open(s.url()).unwrap();
    let mut exempt = client.get_connection().unwrap();
    let _: () = q(&mut exempt, &["CLIENT", "NO-EVICT", "on"]);
    let list: String = q(&mut exempt, &["CLIENT", "LIST"]);
    assert!(list.lines().any(|l| l.contains("flags=e")), "{list}");
    let _: () = q(&mut exempt, &["CLIENT", "NO-EVICT", "off"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory-clients", "0"]);
    let mut tolerated = partial_bulk(s.port, 8 * 1024 * 1024);
    std::thread::sleep(Duration::from_millis(200));
    let total = field(&mut c, "memory", "mem_clients_normal");
    assert!(
        total > 8 * MB,
        "mem_clients_normal {total} with an 8 MB query buffer"
    );
    assert_eq!(field(&mut c, "stats", "evicted_clients"), evicted_before);
    // Back under a limit as a percentage of maxmemory: evicted again.
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory", "100mb"]);
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory-clients", "5%"]);
    use std::io::Write;
    let _ = tolerated.write_all(&[b'x'; 1024]);
    assert!(closed_by_server(&mut tolerated));
    assert_eq!(
        field(&mut c, "stats", "evicted_clients"),
        evicted_before + 1
    );
}
