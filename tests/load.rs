//! Whole-binary load test: 1,000 concurrent connections run a mixed workload
//! over strings, lists, hashes and sets, with blocking pops between pairs of
//! connections and a BGSAVE every two seconds, for a bounded time. Each
//! connection owns its keys and checks every reply against its own model, so
//! the final keyspace is known exactly; after SAVE, kill -9 and restart the
//! loaded keyspace must equal it.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use common::Server;
use redis::AsyncCommands;

const CONNECTIONS: usize = 1000;
const RUN_FOR: Duration = Duration::from_secs(8);
const BGSAVE_EVERY: Duration = Duration::from_secs(2);

/// What one connection believes its keys hold.
#[derive(Default, Debug)]
struct Model {
    counter: i64,
    list: VecDeque<String>,
    hash: BTreeMap<String, String>,
    set: BTreeSet<String>,
    /// Pushed to (even connections) or popped from (odd ones) the pair's queue.
    queue_ops: u64,
}

/// Makes sure this process (and the server it spawns) may open enough files.
fn raise_fd_limit() {
    let want = (CONNECTIONS * 2 + 256) as u64;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3)?.parse::<u64>().ok())
        .unwrap_or(0);
    if soft < want {
        let ok = std::process::Command::new("prlimit")
            .arg("--pid")
            .arg(std::process::id().to_string())
            .arg(format!("--nofile={want}:{want}"))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "cannot raise the open-files limit to {want}");
    }
}

async fn worker(
    i: usize,
    mut con: redis::aio::MultiplexedConnection,
    deadline: Instant,
) -> Result<(Model, redis::aio::MultiplexedConnection), String> {
    let mut m = Model::default();
    let (s, l, h, st) = (
        format!("s:{i}"),
        format!("l:{i}"),
        format!("h:{i}"),
        format!("set:{i}"),
    );
    let queue = format!("q:{}", i / 2);
    let ctx = |op: &str, e: redis::RedisError| format!("conn {i} {op}: {e}");
    let mut step: u64 = 0;
    while Instant::now() < deadline {
        step += 1;
        match step % 8 {
            0 => {
                let n: i64 = con.incr(&s, 1).await.map_err(|e| ctx("INCR", e))?;
                m.counter += 1;
                check(i, "INCR", n, m.counter)?;
            }
            1 => {
                let v = format!("v{step}");
                let n: usize = con.rpush(&l, &v).await.map_err(|e| ctx("RPUSH", e))?;
                m.list.push_back(v);
                check(i, "RPUSH", n, m.list.len())?;
            }
            2 => {
                let f = format!("f{}", step % 16);
                let added: i64 = con.hset(&h, &f, step).await.map_err(|e| ctx("HSET", e))?;
                let new = m.hash.insert(f, step.to_string()).is_none();
                check(i, "HSET", added, new as i64)?;
            }
            3 => {
                let member = format!("m{}", step % 32);
                let added: i64 = con.sadd(&st, &member).await.map_err(|e| ctx("SADD", e))?;
                let new = m.set.insert(member);
                check(i, "SADD", added, new as i64)?;
            }
            4 => {
                let v: Option<i64> = con.get(&s).await.map_err(|e| ctx("GET", e))?;
                check(i, "GET", v.unwrap_or(0), m.counter)?;
                let tail: Vec<String> =
                    con.lrange(&l, -3, -1).await.map_err(|e| ctx("LRANGE", e))?;
                let want: Vec<String> = m.list.iter().rev().take(3).rev().cloned().collect();
                check(i, "LRANGE", tail, want)?;
            }
            5 if m.list.len() > 4 => {
                let v: Option<String> = con.lpop(&l, None).await.map_err(|e| ctx("LPOP", e))?;
                check(i, "LPOP", v, m.list.pop_front())?;
            }
            6 => {
                let all: BTreeMap<String, String> =
                    con.hgetall(&h).await.map_err(|e| ctx("HGETALL", e))?;
                check(i, "HGETALL", all, m.hash.clone())?;
                let card: usize = con.scard(&st).await.map_err(|e| ctx("SCARD", e))?;
                check(i, "SCARD", card, m.set.len())?;
            }
            7 if i.is_multiple_of(2) => {
                // The pusher: sequence numbers, in order.
                let _: i64 = con
                    .rpush(&queue, m.queue_ops)
                    .await
                    .map_err(|e| ctx("RPUSH queue", e))?;
                m.queue_ops += 1;
            }
            7 => {
                // The popper blocks until its pair pushes (or 50 ms pass).
                let got: Option<(String, u64)> =
                    con.blpop(&queue, 0.05).await.map_err(|e| ctx("BLPOP", e))?;
                if let Some((_, seq)) = got {
                    check(i, "BLPOP", seq, m.queue_ops)?;
                    m.queue_ops += 1;
                }
            }
            _ => {}
        }
    }
    // The connection is handed back so the caller can check it is still open.
    Ok((m, con))
}

fn check<T: PartialEq + std::fmt::Debug>(
    i: usize,
    op: &str,
    got: T,
    want: T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("conn {i} {op}: got {got:?}, expected {want:?}"))
    }
}

/// Reads the keys of connection `i` (and its queue if `i` is even).
fn read_back(
    con: &mut redis::Connection,
    i: usize,
) -> (i64, Vec<String>, BTreeMap<String, String>, BTreeSet<String>) {
    let (counter, list, hash, set): (
        Option<i64>,
        Vec<String>,
        BTreeMap<String, String>,
        BTreeSet<String>,
    ) = redis::pipe()
        .get(format!("s:{i}"))
        .lrange(format!("l:{i}"), 0, -1)
        .hgetall(format!("h:{i}"))
        .smembers(format!("set:{i}"))
        .query(con)
        .unwrap();
    (counter.unwrap_or(0), list, hash, set)
}

#[test]
fn thousand_clients_mixed_workload_with_bgsave_then_restart() {
    raise_fd_limit();
    let mut server = Server::start_with(&["--save", "", "--maxclients", "5000"]);
    let port = server.port;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let models: Vec<Model> = rt.block_on(async move {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        // The client's default 500 ms response timeout is too short for a
        // loaded two-core machine; a slow reply is not an error here.
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(30)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        let mut cons = Vec::with_capacity(CONNECTIONS);
        for _ in 0..CONNECTIONS {
            let mut con = client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .expect("connect");
            // Served, not just queued in the listen backlog.
            let _: String = redis::cmd("PING")
                .query_async(&mut con)
                .await
                .expect("PING");
            cons.push(con);
        }
        let mut admin = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .unwrap();
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(
            info.contains(&format!("connected_clients:{}", CONNECTIONS + 1)),
            "{info}"
        );
        let deadline = Instant::now() + RUN_FOR;
        let tasks: Vec<_> = cons
            .into_iter()
            .enumerate()
            .map(|(i, con)| tokio::spawn(worker(i, con, deadline)))
            .collect();
        let mut bgsaves = 0;
        while Instant::now() + BGSAVE_EVERY < deadline {
            tokio::time::sleep(BGSAVE_EVERY).await;
            // "already in progress" is fine: the point is saving under load.
            if redis::cmd("BGSAVE")
                .query_async::<String>(&mut admin)
                .await
                .is_ok()
            {
                bgsaves += 1;
            }
        }
        let mut models = Vec::new();
        let mut open = Vec::new();
        for t in tasks {
            let (m, con) = t.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
            models.push(m);
            open.push(con);
        }
        assert!(bgsaves >= 2, "only {bgsaves} BGSAVEs started");
        // No connection was dropped along the way.
        let info: String = redis::cmd("INFO")
            .arg("clients")
            .query_async(&mut admin)
            .await
            .unwrap();
        assert!(
            info.contains(&format!("connected_clients:{}", CONNECTIONS + 1)),
            "{info}"
        );
        drop(open);
        models
    });
    drop(rt);
    let ops: u64 = models.iter().map(|m| m.counter as u64).sum();
    eprintln!(
        "{} INCRs (about 1/8 of all operations) over {CONNECTIONS} connections",
        ops
    );
    assert!(ops >= CONNECTIONS as u64, "too little load: {ops} INCRs");
    let popped: u64 = models.iter().skip(1).step_by(2).map(|m| m.queue_ops).sum();
    eprintln!("{popped} elements taken by BLPOP");
    assert!(popped > 0, "no blocking pop was ever served");

    let mut con = server.client();
    let _: () = redis::cmd("SAVE").query(&mut con).unwrap();
    server.restart(); // kill -9 after the SAVE, then load it
    let mut con = server.client();
    let mut expected_keys = 0;
    for (i, m) in models.iter().enumerate() {
        let (counter, list, hash, set) = read_back(&mut con, i);
        assert_eq!(counter, m.counter, "s:{i}");
        assert_eq!(list, m.list.iter().cloned().collect::<Vec<_>>(), "l:{i}");
        assert_eq!(hash, m.hash, "h:{i}");
        assert_eq!(set, m.set, "set:{i}");
        expected_keys += (m.counter > 0) as usize
            + !m.list.is_empty() as usize
            + !m.hash.is_empty() as usize
            + !m.set.is_empty() as usize;
    }
    for pair in 0..CONNECTIONS / 2 {
        let pushed = models[pair * 2].queue_ops;
        let popped = models[pair * 2 + 1].queue_ops;
        let queue: Vec<u64> = redis::cmd("LRANGE")
            .arg(format!("q:{pair}"))
            .arg(0)
            .arg(-1)
            .query(&mut con)
            .unwrap();
        assert_eq!(queue, (popped..pushed).collect::<Vec<_>>(), "q:{pair}");
        expected_keys += (pushed > popped) as usize;
    }
    let size: usize = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, expected_keys);
}
