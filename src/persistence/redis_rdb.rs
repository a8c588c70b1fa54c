//! Redis RDB files at the edges of forkless's persistence: a Redis dump found
//! at start-up is imported (the next save writes forkless's own format over
//! it), `forkless import-rdb` and `export-rdb` convert offline, `DEBUG
//! EXPORT-RDB` writes one from a snapshot clone on a background thread, and
//! `check-dump` checks one. The codec itself is [`crate::rdb`].

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use super::writer;
use crate::config::Config;
use crate::keyspace::{unix_ms, Keyspace};
use crate::rdb::{self, reader::Imported};
use crate::state::{encodings_of, Shared};

/// Whether the file at `path` starts with Redis's RDB magic.
pub fn is_redis_rdb(path: &Path) -> bool {
    let mut head = [0u8; 9];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| rdb::is_rdb(&head))
}

/// Reads a Redis RDB file with the configured databases and encodings;
/// `progress` hears of the bytes read now and then.
pub fn import(
    path: &Path,
    config: &Config,
    now_ms: i64,
    progress: impl FnMut(u64),
) -> Result<Imported, String> {
    let started = Instant::now();
    let read = |progress| -> Result<Imported, rdb::reader::RdbError> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let reader = std::io::BufReader::with_capacity(256 * 1024, file);
        rdb::reader::load(
            reader,
            len,
            config.databases,
            now_ms,
            encodings_of(config),
            progress,
        )
    };
    let imported =
        read(progress).map_err(|e| format!("cannot load Redis RDB {}: {e}", path.display()))?;
    let redis_ver = imported
        .aux
        .iter()
        .find(|(k, _)| k == "redis-ver")
        .map_or("unknown", |(_, v)| v.as_str());
    tracing::info!(
        "Loaded Redis RDB version {} (written by redis-ver {redis_ver}) from {}: {} keys, {} expired keys dropped, {} empty keys skipped, {} function libraries, in {:.3} s",
        imported.version,
        path.display(),
        imported.keys_loaded,
        imported.keys_expired,
        imported.empty_skipped,
        imported.keyspace.functions().len(),
        started.elapsed().as_secs_f64()
    );
    Ok(imported)
}

/// Start-up load of a Redis RDB dump: installs it whole or not at all.
pub fn load_at_startup(shared: &Shared, path: &Path) -> Result<(), String> {
    let config = shared.config().clone();
    let mut last_log = Instant::now();
    let imported = import(path, &config, unix_ms(), |bytes| {
        shared.loading.set_loaded(bytes);
        if last_log.elapsed() >= super::writer::PROGRESS_LOG_EVERY {
            tracing::info!("loading Redis RDB: {bytes} bytes read");
            last_log = Instant::now();
        }
    })?;
    super::install_loaded(
        &mut shared.lock(),
        imported.keyspace,
        imported.keys_loaded,
        imported.keys_expired,
    )
    .map_err(|e| format!("cannot load the RDB's functions: {e}"))?;
    tracing::info!(
        "The next save writes forkless's own snapshot format to {}",
        path.display()
    );
    Ok(())
}

/// `forkless import-rdb IN OUT`: a Redis RDB to a forkless snapshot.
pub fn import_main(config: &Config, input: &Path, output: &Path) -> ExitCode {
    let now = unix_ms();
    let imported = match import(input, config, now, |_| {}) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("forkless: {e}");
            return ExitCode::from(1);
        }
    };
    match writer::save_to(&imported.keyspace, output, now, &Default::default()) {
        Ok(stats) => {
            println!(
                "{}: Redis RDB version {}, {} keys -> {}: {} keys, {} bytes",
                input.display(),
                imported.version,
                imported.keys_loaded,
                output.display(),
                stats.keys,
                stats.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("forkless: {e}");
            ExitCode::from(1)
        }
    }
}

/// `forkless export-rdb [--dump FILE] OUT`: a forkless snapshot (or a Redis
/// RDB) to an RDB version 10 file.
pub fn export_main(config: &Config, dump: &Path, output: &Path) -> ExitCode {
    let now = unix_ms();
    let keyspace = if is_redis_rdb(dump) {
        match import(dump, config, now, |_| {}) {
            Ok(i) => i.keyspace,
            Err(e) => {
                eprintln!("forkless: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        match super::chain::load_file(dump, config.databases, encodings_of(config), now) {
            Ok(l) => l.loaded.keyspace,
            Err(e) => {
                eprintln!("forkless: {e}");
                return ExitCode::from(1);
            }
        }
    };
    match rdb::writer::export_to(&keyspace, output, now) {
        Ok(stats) => {
            println!(
                "{} -> {}: RDB version {}, {} keys, {} bytes",
                dump.display(),
                output.display(),
                rdb::WRITE_VERSION,
                stats.keys,
                stats.bytes
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("forkless: cannot write {}: {e}", output.display());
            ExitCode::from(1)
        }
    }
}

/// `DEBUG EXPORT-RDB OUT`: writes `snapshot` (a clone taken under the lock)
/// on a thread of its own, so writers go on meanwhile. The file appears
/// (renamed into place) only once it is complete.
pub fn export_in_background(snapshot: Keyspace, path: std::path::PathBuf) -> Result<(), String> {
    std::thread::Builder::new()
        .name("rdb-export".into())
        .spawn(move || {
            let started = Instant::now();
            match rdb::writer::export_to(&snapshot, &path, unix_ms()) {
                Ok(stats) => tracing::info!(
                    "Redis RDB export to {} done: {} keys, {} bytes in {:.3} s",
                    path.display(),
                    stats.keys,
                    stats.bytes,
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => tracing::warn!("Redis RDB export to {} failed: {e}", path.display()),
            }
        })
        .map(drop)
        .map_err(|e| format!("cannot start the export thread: {e}"))
}

/// Databases `check-dump` accepts in a Redis RDB (no server configuration
/// bounds them there).
const CHECK_DATABASES: usize = 1024;

/// `check-dump` on a Redis RDB: exit 0 sound, 1 corrupt, 2 unreadable.
pub fn check_main(file: &Path) -> ExitCode {
    // Expired keys are still sound content: check at the epoch.
    let result = rdb::reader::load_file(file, CHECK_DATABASES, i64::MIN, Default::default());
    match result {
        Ok(i) => {
            println!(
                "{}: OK, Redis RDB version {}, {} keys, {} function libraries",
                file.display(),
                i.version,
                i.keys_loaded,
                i.keyspace.functions().len()
            );
            for (k, v) in &i.aux {
                println!("  aux {k}: {v}");
            }
            super::check::print_per_db(&i.per_db);
            ExitCode::SUCCESS
        }
        Err(e) if e.is_unreadable() => {
            println!("{}: unreadable: {e}", file.display());
            ExitCode::from(2)
        }
        Err(e) => {
            println!("{}: CORRUPT: {e}", file.display());
            ExitCode::from(1)
        }
    }
}
