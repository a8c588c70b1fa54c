//! `forkless check-dump FILE`: verifies a snapshot's header, every record and
//! its checksum without starting a server, and prints what it holds.

use std::path::Path;
use std::process::ExitCode;

use super::loader::{self, LoadError};

/// Exit codes: 0 sound, 1 corrupt, 2 unreadable.
pub fn check_dump_main(file: &Path) -> ExitCode {
    if super::redis_rdb::is_redis_rdb(file) {
        return super::redis_rdb::check_main(file);
    }
    // Expired keys are still counted as sound content: check at the epoch.
    match loader::load_file(file, None, i64::MIN) {
        Ok(loaded) => {
            println!(
                "{}: OK, format version {}, {} keys, created at {} (Unix ms)",
                file.display(),
                loaded.header.version,
                loaded.keys_loaded,
                loaded.header.created_unix_ms
            );
            let dbs = loaded.header.db_count as usize;
            let limits = crate::keyspace::encodings::Encodings::default();
            match super::chain::apply_chain(file, loaded, dbs, limits, i64::MIN) {
                Ok(chained) if chained.deltas > 0 => {
                    println!(
                        "chain: OK, {} deltas, {} bytes in all; with them applied: {} keys",
                        chained.deltas,
                        chained.chain.total_bytes(),
                        chained.loaded.keyspace.key_count()
                    );
                    print_per_db(&per_db_of(&chained.loaded.keyspace));
                    ExitCode::SUCCESS
                }
                Ok(chained) => {
                    print_per_db(&chained.loaded.per_db);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("{e}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e @ LoadError::Io(_)) => {
            println!("{}: unreadable: {e}", file.display());
            ExitCode::from(2)
        }
        Err(e) => {
            println!("{}: CORRUPT: {e}", file.display());
            ExitCode::from(1)
        }
    }
}

/// Keys per (database, type) of a keyspace.
fn per_db_of(
    keyspace: &crate::keyspace::Keyspace,
) -> std::collections::BTreeMap<(usize, &'static str), u64> {
    let mut out = std::collections::BTreeMap::new();
    for (i, db) in keyspace.dbs().iter().enumerate() {
        for record in db.records() {
            *out.entry((i, record.type_name())).or_insert(0) += 1;
        }
    }
    out
}

/// Prints each database's key count, then its keys by type (check-dump's
/// report, for forkless dumps and Redis RDB files alike).
pub fn print_per_db(per_db: &std::collections::BTreeMap<(usize, &'static str), u64>) {
    let mut last_db = None;
    for ((db, kind), n) in per_db {
        if last_db != Some(*db) {
            let total: u64 = per_db
                .iter()
                .filter(|((d, _), _)| d == db)
                .map(|(_, n)| n)
                .sum();
            println!("db{db}: {total} keys");
            last_db = Some(*db);
        }
        println!("  {kind}: {n}");
    }
}
