//! A primary's shutdown waits for its replicas, as Redis 7.0's: writes
//! pause, the replicas are asked for their offsets (REPLCONF GETACK), and
//! the shutdown goes on once every replica acknowledged the whole stream or
//! `shutdown-timeout` passed. `SHUTDOWN NOW` skips the wait (FORCE does
//! not: it only overrides a failed save, as in Redis 7.0) and `SHUTDOWN
//! ABORT` ends it, the server staying up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::persistence::ShutdownOptions;
use crate::reply::Reply;
use crate::state::{Shared, State};

/// What the SHUTDOWN client gets when the server stays up.
pub const FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// Whether a shutdown must wait: this is a primary and some replica has not
/// acknowledged the whole stream.
pub fn replicas_lag(state: &State) -> bool {
    let r = &state.repl;
    r.master.is_none() && r.replicas.iter().any(|x| x.ack_offset != r.offset)
}

/// `shutdown-timeout` (0: never wait).
pub fn timeout(shared: &Shared) -> Duration {
    Duration::from_secs(shared.config().extra_i64("shutdown-timeout", 10).max(0) as u64)
}

/// Pauses writes and waits, without holding the state lock, until every
/// replica acknowledged the stream, `timeout` passed or `abort` was set.
/// Returns false only when aborted (writes are unpaused then).
pub fn wait_for_replicas(shared: &Shared, timeout: Duration, abort: &AtomicBool) -> bool {
    let deadline = Instant::now() + timeout;
    {
        let mut state = shared.lock();
        if timeout.is_zero() || !replicas_lag(&state) {
            return true;
        }
        tracing::info!("Waiting for replicas before shutting down.");
        // Past the deadline the process exits or unpauses: the margin only
        // keeps writes paused until then.
        shared
            .clients
            .pause
            .pause(deadline + Duration::from_secs(3600), false);
        state.repl.request_acks();
    }
    loop {
        if abort.load(Ordering::Relaxed) {
            shared.clients.pause.unpause();
            return false;
        }
        {
            let state = shared.lock();
            if !replicas_lag(&state) {
                tracing::info!("All replicas are in sync: shutting down.");
                return true;
            }
            if Instant::now() >= deadline {
                for r in &state.repl.replicas {
                    if r.ack_offset != state.repl.offset {
                        tracing::warn!(
                            "Lagging replica {}:{} reported offset {} behind master, lag={}, state={}.",
                            r.ip,
                            r.port,
                            state.repl.offset.saturating_sub(r.ack_offset),
                            r.last_ack.elapsed().as_secs(),
                            r.state.name()
                        );
                    }
                }
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// SHUTDOWN on a primary whose replicas lag: waits for them on a thread,
/// then saves (as `opts` says) and exits. The receiver answers the SHUTDOWN
/// client only if the server stays up (ABORT, or a failed save).
pub fn begin(
    shared: Arc<Shared>,
    state: &mut State,
    opts: ShutdownOptions,
) -> tokio::sync::oneshot::Receiver<Reply> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let abort = Arc::new(AtomicBool::new(false));
    state.repl.shutdown_abort = Some(abort.clone());
    let timeout = timeout(&shared);
    let spawned = std::thread::Builder::new()
        .name("shutdown-wait".into())
        .spawn(move || {
            if wait_for_replicas(&shared, timeout, &abort) {
                let mut state = shared.lock();
                // Exits the process on success.
                let why = crate::persistence::shutdown_and_exit(&shared, &mut state, opts);
                tracing::warn!("SHUTDOWN failed: {why}");
                state.repl.shutdown_abort = None;
                shared.clients.pause.unpause();
            } else {
                tracing::info!("Shutdown aborted: the server stays up.");
            }
            let _ = tx.send(Reply::Error(FAILED.into()));
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the shutdown thread: {e}");
        state.repl.shutdown_abort = None;
    }
    rx
}

/// SHUTDOWN ABORT: ends a shutdown waiting for replicas. False if none is.
pub fn abort(state: &mut State) -> bool {
    match state.repl.shutdown_abort.take() {
        Some(a) => {
            a.store(true, Ordering::Relaxed);
            true
        }
        None => false,
    }
}
