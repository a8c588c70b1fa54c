//! The replication cron: WAIT deadlines, pings to replicas, settings
//! refresh, backlog resizing and its time to live.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{propagate, random_id, Settings};

/// The replication cron (Redis's `replicationCron`, plus WAIT deadlines):
/// every 100 ms ends WAITs whose time is up; every second refreshes the
/// settings, pings the replicas every `repl-ping-replica-period`, and frees
/// the backlog of a primary left without replicas for `repl-backlog-ttl`.
pub async fn cron(shared: Arc<crate::state::Shared>) {
    let mut ticks = 0u64;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ticks += 1;
        // A running script holds the lock: skip the tick rather than park
        // this worker in the lock (it would starve SCRIPT KILL).
        if shared.scripts.running().is_some() {
            continue;
        }
        let settings = ticks
            .is_multiple_of(10)
            .then(|| Settings::of(&shared.config()));
        let mut state = shared.lock();
        let repl = &mut state.repl;
        repl.expire_waits(Instant::now());
        let Some(settings) = settings else {
            continue;
        };
        repl.settings = settings;
        let seconds = ticks / 10;
        if repl.propagating()
            && !repl.replicas.is_empty()
            && seconds.is_multiple_of(repl.settings.ping_period)
        {
            let mut out = Vec::new();
            propagate::encode(&[Bytes::from_static(b"PING")], &mut out);
            repl.feed(&out);
        }
        if let Some(b) = &repl.backlog {
            if b.capacity() != repl.settings.backlog_size {
                repl.backlog = Some(b.resized(repl.settings.backlog_size));
            }
        }
        let ttl = repl.settings.backlog_ttl;
        let idle = repl
            .no_replicas_since
            .is_some_and(|t| t.elapsed().as_secs() >= ttl);
        if ttl > 0 && idle && repl.master.is_none() && repl.backlog.is_some() {
            // As Redis: a new history starts, since nobody can continue this one.
            repl.backlog = None;
            repl.replid = random_id();
            repl.replid2 = "0".repeat(40);
            repl.second_offset = -1;
            tracing::info!(
                "Replication backlog freed after {ttl} seconds without connected replicas."
            );
        }
    }
}
