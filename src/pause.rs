//! CLIENT PAUSE's state, shared by all connections: the deadline and whether
//! it covers every command or only writes. Connections consult it before they
//! take the state lock.

use std::sync::atomic::Ordering;
use std::time::Instant;

/// A CLIENT PAUSE in effect.
#[derive(Debug, Clone, Copy)]
pub struct Pause {
    pub until: Instant,
    /// ALL pauses every command; WRITE only those that change data.
    pub all: bool,
}

/// The server's pause, shared by all connections.
#[derive(Debug, Default)]
pub struct PauseState {
    current: std::sync::Mutex<Option<Pause>>,
    /// Set while a pause may be in effect: the per-batch check is one atomic
    /// load when no pause was ever set.
    maybe: std::sync::atomic::AtomicBool,
    /// Wakes paused connections on CLIENT UNPAUSE.
    pub ended: tokio::sync::Notify,
}

impl PauseState {
    pub fn current(&self) -> Option<Pause> {
        if !self.maybe.load(Ordering::Relaxed) {
            return None;
        }
        let mut p = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_some_and(|p| p.until <= Instant::now()) {
            *p = None;
            self.maybe.store(false, Ordering::Relaxed);
        }
        *p
    }

    /// Pauses until `until`; a pause already in effect is only ever extended
    /// or made stricter, as in Redis.
    pub fn pause(&self, until: Instant, all: bool) {
        let mut p = self.current.lock().unwrap_or_else(|e| e.into_inner());
        self.maybe.store(true, Ordering::Relaxed);
        *p = Some(match *p {
            Some(old) if old.until > Instant::now() => Pause {
                until: old.until.max(until),
                all: old.all || all,
            },
            _ => Pause { until, all },
        });
    }

    pub fn unpause(&self) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.maybe.store(false, Ordering::Relaxed);
        self.ended.notify_waiters();
    }
}
