//! Memory that only a snapshot holds: what a save pins.
//!
//! While a background save streams its clone, a write to a node the clone
//! shares copies the node, and a key deleted or overwritten stays alive in
//! the clone. Redis's fork pays the same in copy-on-write pages, which its
//! `used_memory` never counts; so forkless reports these bytes apart (INFO
//! `mem_snapshot_pinned`) and leaves them out of the maxmemory budget.
//! Otherwise eviction would empty the cache chasing memory that deleting
//! keys cannot free until the save ends.
//!
//! The figure is kept while a [`SnapshotGuard`] is alive: map-node copies are
//! counted exactly, released records by their footprint
//! ([`super::Record::footprint`]); copies inside values (list chunks, value
//! tries) are not counted, so they count against the budget. When the last
//! snapshot ends, everything it pinned is freed and the figure drops to 0.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static PINNED: AtomicU64 = AtomicU64::new(0);
static SNAPSHOTS: AtomicUsize = AtomicUsize::new(0);

/// Counts `bytes` the live keyspace just let go of (or copied) while a
/// snapshot keeps the original.
#[inline]
pub fn add(bytes: usize) {
    if SNAPSHOTS.load(Ordering::Relaxed) > 0 {
        PINNED.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Takes `bytes` off the figure: when a kept snapshot gives way to a newer
/// one, what the count held when the newer one was cloned was pinned by the
/// older one alone, and is freed with it.
pub fn forget(bytes: u64) {
    let _ = PINNED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
        Some(p.saturating_sub(bytes))
    });
}

/// Bytes pinned by the running snapshots.
pub fn bytes() -> u64 {
    PINNED.load(Ordering::Relaxed)
}

/// Whether a snapshot is being streamed.
pub fn snapshot_running() -> bool {
    SNAPSHOTS.load(Ordering::Relaxed) > 0
}

/// Held beside a snapshot clone for as long as the clone lives; drop it after
/// the clone.
#[derive(Debug)]
pub struct SnapshotGuard(());

impl SnapshotGuard {
    pub fn new() -> SnapshotGuard {
        SNAPSHOTS.fetch_add(1, Ordering::Relaxed);
        SnapshotGuard(())
    }
}

impl Default for SnapshotGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SnapshotGuard {
    fn drop(&mut self) {
        if SNAPSHOTS.fetch_sub(1, Ordering::Relaxed) == 1 {
            PINNED.store(0, Ordering::Relaxed);
        }
    }
}
