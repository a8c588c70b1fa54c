//! Snapshot persistence: the state of saves (shared with INFO persistence),
//! start-up loading and the shutdown save.
//!
//! [`format`] defines the file layout, [`writer`] streams a keyspace clone to
//! disk, [`loader`] reads a file back into a fresh keyspace, [`scheduler`] owns
//! background saves and save points, [`check`] is `forkless check-dump`,
//! [`redis_rdb`] imports and exports Redis RDB files, [`loading`] tracks the
//! start-up load that runs while the port is open.

pub mod chain;
pub mod check;
pub mod format;
pub mod loader;
pub mod loading;
pub mod redis_rdb;
pub mod scheduler;
pub mod writer;

#[cfg(test)]
mod tests;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

pub use check::check_dump_main;
use scheduler::BgJob;

use crate::keyspace::unix_ms;
use crate::state::{Shared, State};

/// What INFO persistence and the save scheduler track.
#[derive(Debug)]
pub struct PersistState {
    /// Unix seconds of the last successful save (or start-up).
    pub last_save_unix: i64,
    /// Whether the last background save succeeded (`rdb_last_bgsave_status`).
    pub last_bgsave_ok: bool,
    /// The last background save was stopped by BGSAVE CANCEL: INFO's
    /// `rdb_last_bgsave_status` says `cancelled` (writes are not refused).
    pub last_bgsave_cancelled: bool,
    /// Microseconds the last snapshot's keyspace clone took (INFO stats
    /// `latest_fork_usec`, the analogue of Redis's fork time).
    pub latest_clone_usec: u64,
    /// Unix seconds of the last BGSAVE attempt (for the retry delay).
    pub last_bgsave_try_unix: i64,
    /// Duration of the last background save, -1 before the first.
    pub last_bgsave_time_sec: i64,
    /// Successful saves since start-up.
    pub saves: u64,
    /// Size of the last snapshot written.
    pub last_save_bytes: u64,
    pub last_load_keys_loaded: u64,
    pub last_load_keys_expired: u64,
    /// BGSAVE SCHEDULE arrived while a save was running.
    pub bgsave_scheduled: bool,
    /// The background save slot, shared with the save thread.
    pub job: Arc<BgJob>,
    /// The version the last save wrote and its chain on disk, kept for the
    /// next incremental save (see [`chain`]).
    pub saved: Option<chain::Saved>,
    /// Counts what the kept version pins, from the moment it was kept.
    pub saved_pins: Option<crate::keyspace::pinned::SnapshotGuard>,
    /// Whether the last save wrote a delta (`rdb_last_save_incremental`).
    pub last_save_incremental: bool,
    /// BGSAVE FULL: the next save rewrites the whole base.
    pub force_full: bool,
}

impl Default for PersistState {
    fn default() -> Self {
        PersistState {
            last_save_unix: unix_ms() / 1000,
            last_bgsave_ok: true,
            last_bgsave_cancelled: false,
            latest_clone_usec: 0,
            last_bgsave_try_unix: 0,
            last_bgsave_time_sec: -1,
            saves: 0,
            last_save_bytes: 0,
            last_load_keys_loaded: 0,
            last_load_keys_expired: 0,
            bgsave_scheduled: false,
            job: Arc::new(BgJob::default()),
            saved: None,
            saved_pins: None,
            last_save_incremental: false,
            force_full: false,
        }
    }
}

/// Takes its bytes off the pinned figure when dropped: sent to the lazy-free
/// thread after the version it stands for.
struct ForgetWhenFreed(u64);

impl Drop for ForgetWhenFreed {
    fn drop(&mut self) {
        crate::keyspace::pinned::forget(self.0);
    }
}

impl PersistState {
    /// `pinned_at_clone`: the pinned figure when the saved clone was taken.
    /// `pins`: the save's own guard, if it handed it back.
    fn record_success(
        &mut self,
        done: chain::SaveDone,
        pinned_at_clone: u64,
        pins: Option<crate::keyspace::pinned::SnapshotGuard>,
    ) {
        self.last_save_unix = unix_ms() / 1000;
        self.last_bgsave_ok = true;
        self.last_bgsave_cancelled = false;
        self.saves += 1;
        self.last_save_bytes = done.stats.bytes;
        self.last_save_incremental = done.delta;
        self.keep_saved(done.saved, pinned_at_clone, pins);
    }

    /// Keeps `saved` for the next incremental save, in place of the old one.
    ///
    /// What the pinned figure held when `saved` was cloned (`pinned_at_clone`)
    /// was pinned by the old version alone (the clone shares every live node
    /// of its moment) and goes with it; what was counted since is what the
    /// new version holds apart from the live keyspace, and stays. With no
    /// version kept, the guard goes and the figure drops to zero once no
    /// other snapshot runs.
    pub fn keep_saved(
        &mut self,
        saved: Option<chain::Saved>,
        pinned_at_clone: u64,
        guard: Option<crate::keyspace::pinned::SnapshotGuard>,
    ) {
        use crate::keyspace::lazyfree;
        // What only the old version holds is freed off the lock, as a big
        // value is: that can be most of a data set the writes replaced. Its
        // bytes leave the pinned figure only once they are free (the tuple
        // drops in order): until then they still count against nothing, and
        // eviction must not take them for live data and empty the keyspace.
        let old = self.saved.take();
        match saved {
            Some(saved) => {
                // The new guard before the old one goes, so the count never
                // passes through zero (which would reset the figure).
                self.saved_pins = Some(guard.unwrap_or_default());
                lazyfree::drop_later((old, ForgetWhenFreed(pinned_at_clone)));
                self.saved = Some(saved);
            }
            None => lazyfree::drop_later((old, self.saved_pins.take())),
        }
    }

    /// What the next save is to write: a delta against the kept version
    /// when incremental snapshots are on and nothing asks for a full one.
    fn save_plan(&mut self, config: &crate::config::Config) -> chain::SavePlan {
        let full = std::mem::take(&mut self.force_full);
        chain::SavePlan {
            saved: self.saved.clone().filter(|_| !full),
            incremental: config.incremental_snapshots,
            max_delta_ratio: config.incremental_max_delta_ratio,
        }
    }

    /// Keeps a keyspace just loaded from `chain` as the saved version (when
    /// incremental snapshots are on): it is what the files hold, so the next
    /// save can be a delta.
    pub fn keep_loaded(
        &mut self,
        config: &crate::config::Config,
        keyspace: &crate::keyspace::Keyspace,
        chain: chain::Manifest,
        dump: &std::path::Path,
    ) {
        if !config.incremental_snapshots {
            return;
        }
        let saved = chain::Saved {
            keyspace: keyspace.clone(),
            chain,
            dump: dump.to_path_buf(),
        };
        self.keep_saved(Some(saved), crate::keyspace::pinned::bytes(), None);
    }

    /// Drops the kept version when what it pins has grown past its worth:
    /// more than the delta ratio of the live data, or past `maxmemory`. The
    /// next save then writes a full base.
    pub fn release_costly_saved(&mut self, config: &crate::config::Config) {
        if self.saved.is_none() || self.job.in_progress() {
            return;
        }
        let pinned = crate::keyspace::pinned::bytes();
        let used = crate::alloc::used_memory();
        let live = used.saturating_sub(pinned);
        let maxmemory = config.extra_i64("maxmemory", 0).max(0) as u64;
        let over_limit = maxmemory > 0 && used > maxmemory;
        if over_limit || pinned as f64 > config.incremental_max_delta_ratio * live as f64 {
            tracing::info!(
                "Releasing the last saved version, which pins {pinned} bytes; the next save writes a full snapshot"
            );
            self.keep_saved(None, 0, None);
        }
    }

    /// Files and bytes of the chain on disk (`rdb_chain_length`, `rdb_chain_bytes`).
    fn chain_figures(&self) -> (usize, u64) {
        match &self.saved {
            Some(s) => (s.chain.deltas.len() + 1, s.chain.total_bytes()),
            None => (usize::from(self.saves > 0), self.last_save_bytes),
        }
    }
}

/// Whether writes must get `-MISCONF`: the last background save failed, save
/// points are configured and `stop-writes-on-bgsave-error` is on (as in Redis).
pub fn writes_refused(shared: &Shared, state: &State) -> bool {
    if state.persistence.last_bgsave_ok {
        return false;
    }
    let config = shared.config();
    config.stop_writes_on_bgsave_error && !config.save.is_empty()
}

/// The fields of INFO persistence, in Redis's order and with Redis's names,
/// followed by forkless's own.
pub fn info_fields(shared: &Shared, state: &State) -> Vec<(String, String)> {
    let p = &state.persistence;
    let current = p.job.current_secs();
    let in_progress = current.is_some();
    let (done, total) = if in_progress {
        (
            p.job.progress.keys_done.load(Ordering::Relaxed),
            p.job.progress.keys_total.load(Ordering::Relaxed),
        )
    } else {
        (0, 0)
    };
    let loading = shared.loading.info_fields();
    let mut fields: Vec<(&str, String)> = vec![
        ("loading", u8::from(!loading.is_empty()).to_string()),
        (
            "async_loading",
            u8::from(shared.loading.async_loading.load(Ordering::Relaxed)).to_string(),
        ),
        ("current_cow_peak", "0".into()),
        ("current_cow_size", "0".into()),
        ("current_cow_size_age", "0".into()),
        ("current_fork_perc", "0.00".into()),
        ("current_save_keys_processed", done.to_string()),
        ("current_save_keys_total", total.to_string()),
        ("rdb_changes_since_last_save", state.dirty.to_string()),
        ("rdb_bgsave_in_progress", u8::from(in_progress).to_string()),
        ("rdb_last_save_time", p.last_save_unix.to_string()),
        (
            "rdb_last_bgsave_status",
            if p.last_bgsave_cancelled {
                "cancelled"
            } else if p.last_bgsave_ok {
                "ok"
            } else {
                "err"
            }
            .into(),
        ),
        (
            "rdb_last_bgsave_time_sec",
            p.last_bgsave_time_sec.to_string(),
        ),
        (
            "rdb_current_bgsave_time_sec",
            current.map_or("-1".into(), |s| s.to_string()),
        ),
        ("rdb_saves", p.saves.to_string()),
        ("rdb_last_cow_size", "0".into()),
        (
            "rdb_last_load_keys_expired",
            p.last_load_keys_expired.to_string(),
        ),
        (
            "rdb_last_load_keys_loaded",
            p.last_load_keys_loaded.to_string(),
        ),
        ("aof_enabled", "0".into()),
        ("aof_rewrite_in_progress", "0".into()),
        ("aof_rewrite_scheduled", "0".into()),
        ("aof_last_rewrite_time_sec", "-1".into()),
        ("aof_current_rewrite_time_sec", "-1".into()),
        ("aof_last_bgrewrite_status", "ok".into()),
        ("aof_rewrites", "0".into()),
        ("aof_rewrites_consecutive_failures", "0".into()),
        ("aof_last_write_status", "ok".into()),
        ("aof_last_cow_size", "0".into()),
        ("module_fork_in_progress", "0".into()),
        ("module_fork_last_cow_size", "0".into()),
    ];
    // Redis adds these after the fields above while a load runs.
    fields.extend(loading);
    fields.extend([
        ("rdb_last_clone_usec", p.latest_clone_usec.to_string()),
        ("rdb_last_save_bytes", p.last_save_bytes.to_string()),
        (
            "rdb_last_save_incremental",
            u8::from(p.last_save_incremental).to_string(),
        ),
        ("rdb_chain_length", p.chain_figures().0.to_string()),
        ("rdb_chain_bytes", p.chain_figures().1.to_string()),
    ]);
    fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Whether there is a dump to load at start-up.
pub fn dump_exists(shared: &Shared) -> bool {
    let path = shared.config().dump_path();
    path.exists() || std::fs::symlink_metadata(&path).is_ok()
}

/// Loads the dump at start-up, if there is one. A missing file means an empty
/// server; any other problem is fatal (the file is never ignored or overwritten).
pub fn load_at_startup(shared: &Shared) -> Result<(), String> {
    let (path, databases, limits) = {
        let c = shared.config();
        (c.dump_path(), c.databases, crate::state::encodings_of(&c))
    };
    if !path.exists() && std::fs::symlink_metadata(&path).is_err() {
        tracing::info!("No snapshot at {}; starting empty", path.display());
        return Ok(());
    }
    let total = std::fs::metadata(&path).map_or(0, |m| m.len());
    shared.loading.begin(total);
    let result = load_file_at_startup(shared, &path, databases, limits);
    shared.loading.end();
    result
}

fn load_file_at_startup(
    shared: &Shared,
    path: &std::path::Path,
    databases: usize,
    limits: crate::keyspace::encodings::Encodings,
) -> Result<(), String> {
    if redis_rdb::is_redis_rdb(path) {
        tracing::info!("Loading Redis RDB {}...", path.display());
        return redis_rdb::load_at_startup(shared, path);
    }
    tracing::info!("Loading snapshot {}...", path.display());
    let started = Instant::now();
    let read = |path: &std::path::Path| -> Result<loader::Loaded, loader::LoadError> {
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        let reader = shared
            .loading
            .counting(std::io::BufReader::with_capacity(256 * 1024, file));
        loader::load_from_with(reader, len, Some(databases), unix_ms(), limits)
    };
    let loaded = read(path).map_err(|e| format!("cannot load snapshot {}: {e}", path.display()))?;
    let chained = chain::apply_chain(path, loaded, databases, limits, unix_ms())?;
    let loaded = chained.loaded;
    let chain_bytes = chained.chain.total_bytes();
    let mut state = shared.lock();
    let state = &mut *state;
    state
        .persistence
        .keep_loaded(&shared.config(), &loaded.keyspace, chained.chain, path);
    install_loaded(
        state,
        loaded.keyspace,
        loaded.keys_loaded,
        loaded.keys_expired,
    )
    .map_err(|e| format!("cannot load the snapshot's functions: {e}"))?;
    if chained.deltas > 0 {
        tracing::info!(
            "Applied {} incremental deltas ({} bytes of chain in all)",
            chained.deltas,
            chain_bytes
        );
    }
    tracing::info!(
        "Loaded {} keys ({} expired keys dropped) in {:.3} s",
        loaded.keys_loaded,
        loaded.keys_expired,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Installs a data set loaded at start-up (a forkless snapshot or a Redis
/// RDB): the keyspace, its function libraries and the load's counts for
/// INFO. Err is the libraries' error.
pub fn install_loaded(
    state: &mut State,
    keyspace: crate::keyspace::Keyspace,
    keys_loaded: u64,
    keys_expired: u64,
) -> Result<(), String> {
    state.keyspace = keyspace;
    let codes = state.keyspace.functions().to_vec();
    state.scripting.install_libraries(&codes)?;
    state.persistence.last_load_keys_loaded = keys_loaded;
    state.persistence.last_load_keys_expired = keys_expired;
    Ok(())
}

/// How a shutdown treats the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownOptions {
    /// NOSAVE: never save.
    pub nosave: bool,
    /// SAVE: save even without save points.
    pub save: bool,
    /// FORCE: exit even if the save fails.
    pub force: bool,
}

/// The shutdown save, run with the state lock held so no write can land after
/// it: waits for a background save in flight, then saves when save points are
/// configured (or SAVE was given). Err means the server must stay up.
pub fn shutdown_save(
    shared: &Shared,
    state: &mut State,
    opts: ShutdownOptions,
) -> Result<(), String> {
    let job = state.persistence.job.clone();
    if job.in_progress() {
        tracing::info!("Waiting for the background save to finish before shutting down...");
        job.wait();
        scheduler::reap(state);
    }
    let configured = !shared.config().save.is_empty();
    // As Redis: a shutdown during the start-up load never saves (the data
    // set is not in yet; a save would replace the dump with less).
    if opts.nosave || !(opts.save || configured) || shared.loading.is_active() {
        return Ok(());
    }
    tracing::info!("Saving the final snapshot before exiting.");
    match scheduler::save_foreground(shared, state) {
        Ok(_) => Ok(()),
        Err(e) if opts.force => {
            tracing::warn!("Error trying to save the DB ({e}); exiting anyway (FORCE).");
            Ok(())
        }
        Err(e) => {
            tracing::warn!("Error trying to save the DB, can't exit: {e}");
            Err(e.to_string())
        }
    }
}

/// Saves (if configured) and ends the process with status 0. On a failed save,
/// logs and returns so the server stays up.
pub fn shutdown_and_exit(shared: &Shared, state: &mut State, opts: ShutdownOptions) -> String {
    match shutdown_save(shared, state, opts) {
        Ok(()) => {
            tracing::info!("forkless is now ready to exit, bye bye...");
            std::process::exit(0)
        }
        Err(e) => e,
    }
}
