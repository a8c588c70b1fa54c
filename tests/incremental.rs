//! Incremental snapshots through the real binary: deltas written and loaded
//! back, the INFO fields, check-dump of a chain, a corrupt delta refused at
//! start-up, and kill -9 at random moments of delta saves and compactions.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{q, wait_bgsave, Server};

fn bgsave(con: &mut redis::Connection, args: &[&str]) -> BTreeMap<String, String> {
    let mut all = vec!["BGSAVE"];
    all.extend_from_slice(args);
    let _: String = q(con, &all);
    let info = wait_bgsave(con);
    assert_eq!(info["rdb_last_bgsave_status"], "ok", "{info:?}");
    info
}

/// Writes `model` entries `from..to` (values carry `round`, so rounds differ).
fn write_range(
    con: &mut redis::Connection,
    model: &mut BTreeMap<String, String>,
    keys: impl Iterator<Item = u64>,
    round: u64,
) {
    let mut pipe = redis::pipe();
    for i in keys {
        let (k, v) = (
            format!("key:{i:06}"),
            format!("value-{i}-round-{round}-{}", "x".repeat(40)),
        );
        pipe.cmd("SET").arg(&k).arg(&v).ignore();
        model.insert(k, v);
    }
    let _: () = pipe.query(con).unwrap();
}

/// Every string key and its value the server holds in db 0.
fn contents(con: &mut redis::Connection) -> BTreeMap<String, String> {
    let keys: Vec<String> = q(con, &["KEYS", "*"]);
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(5_000) {
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query(con).unwrap();
        for (k, v) in chunk.iter().zip(values) {
            if let Some(v) = v {
                out.insert(k.clone(), v);
            }
        }
    }
    out
}

fn deltas_in(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".delta"))
        .count()
}

#[test]
fn deltas_are_written_reported_and_loaded() {
    let mut server = Server::start();
    let mut con = server.client();
    let mut model = BTreeMap::new();
    write_range(&mut con, &mut model, 0..10_000, 0);
    let full = bgsave(&mut con, &[]);
    assert_eq!(full["rdb_last_save_incremental"], "0");
    assert_eq!(full["rdb_chain_length"], "1");
    let base_bytes: u64 = full["rdb_last_save_bytes"].parse().unwrap();

    // 1 % of the keys change, one goes, and a hash and a TTL come in.
    write_range(&mut con, &mut model, (0..10_000).step_by(100), 1);
    let _: i64 = q(&mut con, &["DEL", "key:000001"]);
    model.remove("key:000001");
    let _: i64 = q(&mut con, &["HSET", "h", "f", "v"]);
    let _: bool = q(&mut con, &["EXPIRE", "key:000002", "1000"]);
    let delta = bgsave(&mut con, &[]);
    assert_eq!(delta["rdb_last_save_incremental"], "1", "{delta:?}");
    assert_eq!(delta["rdb_chain_length"], "2");
    let delta_bytes: u64 = delta["rdb_last_save_bytes"].parse().unwrap();
    assert!(
        delta_bytes * 20 < base_bytes,
        "delta {delta_bytes} of base {base_bytes}"
    );
    let chain_bytes: u64 = delta["rdb_chain_bytes"].parse().unwrap();
    assert_eq!(chain_bytes, base_bytes + delta_bytes);
    assert_eq!(deltas_in(&server.dir), 1);
    assert!(
        server.log().contains("Incremental save: delta 1 of"),
        "{}",
        server.log()
    );

    // check-dump follows the chain.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_forkless"))
        .arg("check-dump")
        .arg(server.dir.join("dump.rdb"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("chain: OK, 1 deltas"), "{text}");
    assert!(text.contains("with them applied: 10000 keys"), "{text}");

    // A restart loads base + delta; the next save is a delta again.
    server.restart();
    let mut con = server.client();
    assert_eq!(contents(&mut con), model);
    let ttl: i64 = q(&mut con, &["TTL", "key:000002"]);
    assert!((990..=1000).contains(&ttl), "{ttl}");
    let hv: String = q(&mut con, &["HGET", "h", "f"]);
    assert_eq!(hv, "v");
    assert!(
        server.log().contains("Applied 1 incremental deltas"),
        "{}",
        server.log()
    );
    write_range(&mut con, &mut model, 0..10, 2);
    let after_restart = bgsave(&mut con, &[]);
    assert_eq!(after_restart["rdb_last_save_incremental"], "1");
    assert_eq!(after_restart["rdb_chain_length"], "3");

    // BGSAVE FULL folds the chain back into one base and removes the deltas.
    let folded = bgsave(&mut con, &["FULL"]);
    assert_eq!(folded["rdb_last_save_incremental"], "0");
    assert_eq!(folded["rdb_chain_length"], "1");
    assert_eq!(deltas_in(&server.dir), 0);

    // Switched off, saves are full and no chain is kept.
    let _: () = q(&mut con, &["CONFIG", "SET", "incremental-snapshots", "no"]);
    write_range(&mut con, &mut model, 0..10, 3);
    let off = bgsave(&mut con, &[]);
    assert_eq!(off["rdb_last_save_incremental"], "0");
    assert!(!server.dir.join("dump.rdb.chain").exists());
    server.restart();
    let mut con = server.client();
    assert_eq!(contents(&mut con), model);
}

#[test]
fn a_corrupt_delta_stops_the_start_and_names_the_file() {
    let mut server = Server::start();
    let mut con = server.client();
    let mut model = BTreeMap::new();
    write_range(&mut con, &mut model, 0..2_000, 0);
    bgsave(&mut con, &[]);
    write_range(&mut con, &mut model, 0..20, 1);
    let info = bgsave(&mut con, &[]);
    assert_eq!(info["rdb_last_save_incremental"], "1");
    server.kill9();
    let delta = std::fs::read_dir(&server.dir)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".delta"))
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&delta).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&delta, &bytes).unwrap();
    let base = std::fs::read(server.dir.join("dump.rdb")).unwrap();
    let err = Server::spawn_in(&server.dir, &["--save", ""])
        .err()
        .expect("a corrupt delta must stop the start");
    let name = delta.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        err.contains(&name) && err.contains("checksum mismatch"),
        "{err}"
    );
    assert!(err.contains("offset"), "{err}");
    assert_eq!(std::fs::read(server.dir.join("dump.rdb")).unwrap(), base);
    assert_eq!(std::fs::read(&delta).unwrap(), bytes);
}

const KILL9_ROUNDS: u64 = 50;

fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// kill -9 at random moments of delta saves and compactions: every restart
/// loads either the last save known to have finished or the one in flight,
/// key for key and value for value; no chain is ever unloadable.
#[test]
fn kill9_during_delta_saves_and_compactions_loads_the_last_save() {
    // A small ratio compacts every few saves, so kills land in both kinds.
    let mut server = Server::start_with(&[
        "--save",
        "",
        "--config",
        "incremental-snapshot-max-delta-ratio 0.12",
    ]);
    let mut con = server.client();
    let mut model = BTreeMap::new();
    let keys = 20_000u64;
    write_range(&mut con, &mut model, 0..keys, 0);
    let started = Instant::now();
    bgsave(&mut con, &[]);
    let full_time = started.elapsed().max(Duration::from_millis(2));
    let mut acked = model.clone();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let (mut loaded_new, mut loaded_old, mut deltas_seen) = (0, 0, 0);
    for round in 1..=KILL9_ROUNDS {
        // 2-5 % of the keys change; sometimes a few go.
        let first = next_random(&mut rng) % keys;
        let count = keys / 50 + next_random(&mut rng) % (keys / 33);
        write_range(
            &mut con,
            &mut model,
            (first..first + count).map(|i| i % keys),
            round,
        );
        if round % 3 == 0 {
            let k = format!("key:{:06}", next_random(&mut rng) % keys);
            let _: i64 = q(&mut con, &["DEL", &k]);
            model.remove(&k);
        }
        let in_flight = model.clone();
        let _: String = q(&mut con, &["BGSAVE"]);
        let max_us = (full_time.as_micros() as u64 * 3 / 2).max(1);
        std::thread::sleep(Duration::from_micros(next_random(&mut rng) % max_us));
        server.restart();
        con = server.client();
        let back = contents(&mut con);
        if back == in_flight {
            loaded_new += 1;
            acked = in_flight;
        } else {
            assert!(
                back == acked,
                "round {round}: the loaded state is neither the last save nor the one in flight ({} keys loaded)",
                back.len()
            );
            loaded_old += 1;
        }
        model = acked.clone();
        deltas_seen = deltas_seen.max(deltas_in(&server.dir));
        // Every few rounds, a save that surely finishes, so chains grow.
        if round % 4 == 0 {
            bgsave(&mut con, &[]);
            acked = model.clone();
        }
    }
    eprintln!(
        "{KILL9_ROUNDS} rounds: the save in flight loaded {loaded_new} times, the previous one {loaded_old} times; longest chain seen {deltas_seen} deltas"
    );
    assert!(deltas_seen > 0, "no delta was ever on disk");
}
