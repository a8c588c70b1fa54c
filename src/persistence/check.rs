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
            print_per_db(&loaded.per_db);
            ExitCode::SUCCESS
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
