//! Save bookkeeping: the one background save that may run at a time, foreground
//! saves, and the save-point job that starts BGSAVE as Redis's `serverCron` does.
//!
//! A background save is an O(1) keyspace clone taken under the state lock and
//! streamed to disk by a std thread that never takes the state lock: it reports
//! into the [`BgJob`] slot, and the outcome is applied to the state ("reaped")
//! by the save-point job or by whoever waits for it (SHUTDOWN). So waiting for a
//! save while holding the state lock cannot deadlock.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::chain::{self, SaveDone};
use super::writer::{Progress, SaveError, SaveStats};
use crate::errors::CommandError;
use crate::keyspace::unix_ms;
use crate::state::{Shared, State};

/// Redis's CONFIG_BGSAVE_RETRY_DELAY: a failed background save is retried by the
/// save points only after this many seconds.
pub const BGSAVE_RETRY_DELAY_SECS: i64 = 5;
/// How often the save-point job runs (Redis's serverCron at hz 10).
pub const TICK: Duration = Duration::from_millis(100);

/// The running background save, if any, shared with its thread.
#[derive(Debug, Default)]
pub struct BgJob {
    slot: Mutex<Slot>,
    done: Condvar,
    pub progress: Progress,
}

#[derive(Debug, Default)]
struct Slot {
    running: Option<Running>,
    outcome: Option<Result<SaveDone, String>>,
    /// The save's pin guard, handed back with a version to keep, so the
    /// pins counted during the save stay counted for the kept version.
    pins: Option<crate::keyspace::pinned::SnapshotGuard>,
}

#[derive(Debug, Clone, Copy)]
struct Running {
    started: Instant,
    dirty_at_clone: u64,
    /// The snapshot-pinned figure when the clone was taken.
    pinned_at_clone: u64,
}

impl BgJob {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a background save is running or its outcome is not yet applied.
    pub fn in_progress(&self) -> bool {
        self.slot().running.is_some()
    }

    /// Seconds the running save has taken so far.
    pub fn current_secs(&self) -> Option<u64> {
        self.slot().running.map(|r| r.started.elapsed().as_secs())
    }

    fn finish(
        &self,
        outcome: Result<SaveDone, String>,
        pins: Option<crate::keyspace::pinned::SnapshotGuard>,
    ) {
        let mut slot = self.slot();
        slot.outcome = Some(outcome);
        slot.pins = pins;
        drop(slot);
        self.done.notify_all();
    }

    /// Blocks until the running save (if any) has finished writing.
    pub fn wait(&self) {
        let mut slot = self.slot();
        while slot.running.is_some() && slot.outcome.is_none() {
            slot = self.done.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// What BGSAVE CANCEL stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// The running save (and a scheduled one with it).
    Running,
    /// Only a save BGSAVE SCHEDULE had queued.
    Scheduled,
}

/// BGSAVE CANCEL (Valkey 8.1): stops the running background save, whose
/// thread sees the flag between two keys (or blocks) and removes its temp
/// file, and drops a scheduled one. Waits for the thread, so the previous
/// dump is untouched and INFO tells the outcome when this returns (the thread
/// never takes the state lock the caller holds). None: nothing to cancel.
pub fn cancel_bgsave(state: &mut State) -> Option<Cancelled> {
    reap(state);
    let job = state.persistence.job.clone();
    if job.in_progress() {
        tracing::info!("Background saving will be aborted due to user request");
        state.persistence.bgsave_scheduled = false;
        job.progress.cancel.store(true, Ordering::Relaxed);
        job.wait();
        reap(state);
        return Some(Cancelled::Running);
    }
    if state.persistence.bgsave_scheduled {
        tracing::info!("Scheduled background saving will be cancelled due to user request");
        state.persistence.bgsave_scheduled = false;
        return Some(Cancelled::Scheduled);
    }
    None
}

/// Starts a background save of the current keyspace. The caller holds the lock.
pub fn start_bgsave(shared: &Shared, state: &mut State) -> Result<(), CommandError> {
    let job = state.persistence.job.clone();
    let mut slot = job.slot();
    if slot.running.is_some() {
        return Err(CommandError::BgsaveInProgress);
    }
    let clone_started = Instant::now();
    let snapshot = state.keyspace.clone();
    let pins = crate::keyspace::pinned::SnapshotGuard::new();
    let pinned_at_clone = crate::keyspace::pinned::bytes();
    let clone_usec = clone_started.elapsed().as_micros() as u64;
    let threshold = shared.config().latency_monitor_threshold;
    state
        .latency
        .record_snapshot("snapshot-clone", clone_usec, threshold);
    let now_ms = unix_ms();
    let p = &mut state.persistence;
    p.latest_clone_usec = clone_usec;
    p.last_bgsave_try_unix = now_ms / 1000;
    slot.running = Some(Running {
        started: Instant::now(),
        dirty_at_clone: state.dirty,
        pinned_at_clone,
    });
    slot.outcome = None;
    job.progress.cancel.store(false, Ordering::Relaxed);
    job.progress.keys_done.store(0, Ordering::Relaxed);
    job.progress
        .keys_total
        .store(snapshot.key_count() as u64, Ordering::Relaxed);
    drop(slot);
    let (path, plan) = {
        let config = shared.config();
        (config.dump_path(), state.persistence.save_plan(&config))
    };
    tracing::info!("Background saving started");
    let thread_job = job.clone();
    let spawned = std::thread::Builder::new()
        .name("bgsave".into())
        .spawn(move || {
            // A panic must still end the job, or SHUTDOWN would wait for it forever.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                chain::save(&snapshot, &path, now_ms, &thread_job.progress, plan)
            }));
            drop(snapshot);
            let result = match result {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err("the save thread panicked".into()),
            };
            // A version to keep keeps the guard: what the save pinned stays
            // counted until the reap takes it over.
            let keeps = matches!(&result, Ok(done) if done.saved.is_some());
            thread_job.finish(result, keeps.then_some(pins));
        });
    if let Err(e) = spawned {
        job.finish(Err(format!("cannot start the save thread: {e}")), None);
    }
    Ok(())
}

/// Applies a finished background save's outcome to the state (Redis's
/// `backgroundSaveDoneHandler`). Returns whether one was applied.
pub fn reap(state: &mut State) -> bool {
    let job = state.persistence.job.clone();
    let mut slot = job.slot();
    let (Some(running), Some(outcome)) = (slot.running, slot.outcome.take()) else {
        return false;
    };
    slot.running = None;
    let pins = slot.pins.take();
    drop(slot);
    let save_usec = running.started.elapsed().as_micros() as u64;
    state.latency.record_background_save(save_usec);
    let p = &mut state.persistence;
    p.last_bgsave_time_sec = running.started.elapsed().as_secs() as i64;
    p.last_bgsave_cancelled = false;
    match outcome {
        // Cancelled by request: not a failure (writes are not refused), but
        // INFO says so until the next save ends.
        Err(_) if job.progress.cancel.load(Ordering::Relaxed) => {
            p.last_bgsave_cancelled = true;
            tracing::info!("Background saving cancelled; the previous dump is unchanged");
        }
        Ok(done) => {
            state.dirty = state.dirty.saturating_sub(running.dirty_at_clone);
            tracing::info!(
                "Background saving terminated with success ({} keys, {} bytes{})",
                done.stats.keys,
                done.stats.bytes,
                if done.delta { ", incremental" } else { "" }
            );
            p.record_success(done, running.pinned_at_clone, pins);
        }
        Err(e) => {
            p.last_bgsave_ok = false;
            tracing::warn!("Background saving error: {e}");
        }
    }
    true
}

/// SAVE: writes the keyspace while the caller holds the lock, as Redis blocks.
pub fn save_foreground(shared: &Shared, state: &mut State) -> Result<SaveStats, SaveError> {
    let started = Instant::now();
    let snapshot = state.keyspace.clone();
    let pinned_at_clone = crate::keyspace::pinned::bytes();
    state.persistence.latest_clone_usec = started.elapsed().as_micros() as u64;
    let (path, threshold, plan) = {
        let c = shared.config();
        let plan = state.persistence.save_plan(&c);
        (c.dump_path(), c.latency_monitor_threshold, plan)
    };
    let clone_usec = state.persistence.latest_clone_usec;
    state
        .latency
        .record_snapshot("snapshot-clone", clone_usec, threshold);
    let job = state.persistence.job.clone();
    job.progress.cancel.store(false, Ordering::Relaxed);
    let outcome = chain::save(&snapshot, &path, unix_ms(), &job.progress, plan);
    let save_usec = started.elapsed().as_micros() as u64;
    state
        .latency
        .record_snapshot("snapshot-save", save_usec, threshold);
    match outcome {
        Ok(done) => {
            state.dirty = 0;
            let stats = done.stats;
            tracing::info!(
                "DB saved on disk ({} keys, {} bytes{})",
                stats.keys,
                stats.bytes,
                if done.delta { ", incremental" } else { "" }
            );
            state
                .persistence
                .record_success(done, pinned_at_clone, None);
            Ok(stats)
        }
        Err(e) => {
            tracing::warn!("Failed saving the DB: {e}");
            Err(e)
        }
    }
}

/// One run of the save-point check; the caller holds the lock.
pub fn tick(shared: &Shared, state: &mut State) {
    reap(state);
    if state.persistence.job.in_progress() {
        return;
    }
    state.persistence.release_costly_saved(&shared.config());
    if state.persistence.bgsave_scheduled {
        state.persistence.bgsave_scheduled = false;
        let _ = start_bgsave(shared, state);
        return;
    }
    let points = shared.config().save.clone();
    let now = unix_ms() / 1000;
    let p = &state.persistence;
    let may_retry = p.last_bgsave_ok || now - p.last_bgsave_try_unix > BGSAVE_RETRY_DELAY_SECS;
    if !may_retry {
        return;
    }
    let due = points
        .iter()
        .find(|sp| state.dirty >= sp.changes && now - p.last_save_unix > sp.seconds as i64);
    if let Some(sp) = due {
        tracing::info!(
            "{} changes in {} seconds. Saving...",
            sp.changes,
            sp.seconds
        );
        let _ = start_bgsave(shared, state);
    }
}

/// The save-point job: runs [`tick`] ten times a second until shutdown.
pub async fn run(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(TICK).await;
        // Not parked in the lock behind a running script: the next tick checks.
        if shared.scripts.running().is_some() {
            continue;
        }
        let mut state = shared.lock();
        tick(&shared, &mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, SavePoint};
    use crate::keyspace::Value;
    use bytes::Bytes;

    fn shared_in(dir: &std::path::Path, save: Vec<SavePoint>) -> Shared {
        Shared::new(Config {
            dir: dir.to_path_buf(),
            save,
            ..Config::default()
        })
    }

    fn put(state: &mut State, key: &str) {
        state.keyspace.db_mut(0).insert(
            Bytes::from(key.to_string()),
            Value::Str(Bytes::new()),
            None,
        );
        state.dirty += 1;
    }

    #[test]
    fn dirty_is_reduced_by_what_the_save_captured() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared_in(dir.path(), vec![]);
        let mut state = shared.lock();
        for i in 0..5 {
            put(&mut state, &format!("k{i}"));
        }
        start_bgsave(&shared, &mut state).unwrap();
        assert!(matches!(
            start_bgsave(&shared, &mut state),
            Err(CommandError::BgsaveInProgress)
        ));
        put(&mut state, "during-1");
        put(&mut state, "during-2");
        state.persistence.job.wait();
        assert!(reap(&mut state));
        assert_eq!(state.dirty, 2);
        assert!(state.persistence.last_bgsave_ok);
        assert_eq!(state.persistence.saves, 1);
        assert!(!state.persistence.job.in_progress());
        let loaded =
            super::super::loader::load_file(&dir.path().join("dump.rdb"), Some(16), 0).unwrap();
        assert_eq!(loaded.keys_loaded, 5);
    }

    #[test]
    fn failed_save_refuses_writes_and_is_retried_after_the_delay() {
        let dir = tempfile::tempdir().unwrap();
        // The dump path is a directory: the rename fails even for root.
        std::fs::create_dir(dir.path().join("dump.rdb")).unwrap();
        std::fs::write(dir.path().join("dump.rdb").join("keep"), b"x").unwrap();
        let points = vec![SavePoint {
            seconds: 1,
            changes: 1,
        }];
        let shared = shared_in(dir.path(), points);
        let mut state = shared.lock();
        put(&mut state, "k");
        state.persistence.last_save_unix -= 10;
        tick(&shared, &mut state);
        assert!(state.persistence.job.in_progress(), "save point fired");
        state.persistence.job.wait();
        tick(&shared, &mut state);
        assert!(!state.persistence.last_bgsave_ok);
        assert!(super::super::writes_refused(&shared, &state));
        assert_eq!(state.dirty, 1);
        // Within the retry delay, the save point does not fire again.
        tick(&shared, &mut state);
        assert!(!state.persistence.job.in_progress());
        state.persistence.last_bgsave_try_unix -= BGSAVE_RETRY_DELAY_SECS + 1;
        tick(&shared, &mut state);
        assert!(state.persistence.job.in_progress(), "retried");
        state.persistence.job.wait();
        reap(&mut state);
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dump.rdb"]);
    }

    #[test]
    fn scheduled_bgsave_runs_after_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared_in(dir.path(), vec![]);
        let mut state = shared.lock();
        put(&mut state, "k");
        start_bgsave(&shared, &mut state).unwrap();
        state.persistence.bgsave_scheduled = true;
        state.persistence.job.wait();
        tick(&shared, &mut state);
        assert!(!state.persistence.bgsave_scheduled);
        assert!(state.persistence.job.in_progress());
        state.persistence.job.wait();
        reap(&mut state);
        assert_eq!(state.persistence.saves, 2);
    }

    #[test]
    fn cancel_stops_a_running_save_and_keeps_the_old_dump() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared_in(dir.path(), vec![]);
        let mut state = shared.lock();
        assert_eq!(cancel_bgsave(&mut state), None);
        put(&mut state, "old");
        save_foreground(&shared, &mut state).unwrap();
        let old = std::fs::read(dir.path().join("dump.rdb")).unwrap();
        // Enough keys that the save is still running when the cancel lands;
        // a save that won the race is a success, and the test says so.
        for i in 0..300_000 {
            put(&mut state, &format!("key:{i}"));
        }
        start_bgsave(&shared, &mut state).unwrap();
        state.persistence.bgsave_scheduled = true;
        match cancel_bgsave(&mut state) {
            Some(Cancelled::Running) if state.persistence.last_bgsave_cancelled => {
                assert_eq!(std::fs::read(dir.path().join("dump.rdb")).unwrap(), old);
                assert!(state.persistence.last_bgsave_ok, "not a failure");
                assert!(!super::super::writes_refused(&shared, &state));
                assert_eq!(state.persistence.saves, 1);
            }
            other => eprintln!("the save finished before the cancel: {other:?}"),
        }
        assert!(!state.persistence.job.in_progress());
        assert!(!state.persistence.bgsave_scheduled);
        let temps: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("temp-"))
            .collect();
        assert!(temps.is_empty(), "temp files left: {temps:?}");
        // The next save is not cancelled by the old request.
        start_bgsave(&shared, &mut state).unwrap();
        state.persistence.job.wait();
        assert!(reap(&mut state));
        assert!(!state.persistence.last_bgsave_cancelled);
        assert!(state.persistence.last_bgsave_ok);
        // The dump and the chain beside it (a delta, incremental snapshots
        // being on) hold every key.
        let loaded =
            super::super::chain::load_file(&dir.path().join("dump.rdb"), 16, Default::default(), 0)
                .unwrap();
        assert_eq!(loaded.loaded.keyspace.key_count(), 300_001);
    }

    #[test]
    fn a_successful_save_clears_the_cancelled_status() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared_in(dir.path(), vec![]);
        let mut state = shared.lock();
        state.persistence.last_bgsave_cancelled = true;
        save_foreground(&shared, &mut state).unwrap();
        assert!(!state.persistence.last_bgsave_cancelled);
        let info = super::super::info_fields(&shared, &state);
        let status = info.iter().find(|(k, _)| k == "rdb_last_bgsave_status");
        assert_eq!(status.map(|(_, v)| v.as_str()), Some("ok"));
    }

    #[test]
    fn cancel_drops_a_scheduled_save() {
        let dir = tempfile::tempdir().unwrap();
        let shared = shared_in(dir.path(), vec![]);
        let mut state = shared.lock();
        state.persistence.bgsave_scheduled = true;
        assert_eq!(cancel_bgsave(&mut state), Some(Cancelled::Scheduled));
        tick(&shared, &mut state);
        assert!(!state.persistence.job.in_progress(), "nothing started");
        assert_eq!(cancel_bgsave(&mut state), None);
    }
}
