//! The running script, as seen from outside the state lock.
//!
//! A script holds the state lock for as long as it runs. Past
//! `busy-reply-threshold` other connections must still answer (`-BUSY`, SCRIPT
//! KILL, FUNCTION KILL, SHUTDOWN NOSAVE), so they read this cell of atomics
//! instead of locking. The Lua hook reads the kill flag every few thousand
//! instructions and stops the script.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

/// No kill requested.
const KILL_NONE: u8 = 0;
/// SCRIPT KILL or FUNCTION KILL: honoured only while the script has not written.
pub const KILL_SCRIPT: u8 = 1;
/// SHUTDOWN NOSAVE: stops any script, written or not.
pub const KILL_SHUTDOWN: u8 = 2;

/// A script running this long gives its runtime worker away.
pub const HAND_OFF_AFTER_MS: u64 = 10;
/// Then it offers the worker again this often.
pub const HAND_OFF_RETRY_MS: u64 = 100;

/// The state of the script that holds the lock, if any.
#[derive(Debug)]
pub struct ScriptWatch {
    epoch: Instant,
    /// Microseconds since `epoch` when the running script began, plus one;
    /// 0 when none runs.
    started: AtomicU64,
    is_function: AtomicBool,
    /// The script ran a write command: SCRIPT KILL can no longer stop it.
    wrote: AtomicBool,
    kill: AtomicU8,
    /// `busy-reply-threshold` in milliseconds (0 = never busy).
    threshold_ms: AtomicU64,
    /// When the running script next offers its runtime worker away
    /// (microseconds as `started`; see [`ScriptWatch::tick`]).
    next_hand_off: AtomicU64,
}

impl Default for ScriptWatch {
    fn default() -> Self {
        ScriptWatch {
            epoch: Instant::now(),
            started: AtomicU64::new(0),
            is_function: AtomicBool::new(false),
            wrote: AtomicBool::new(false),
            kill: AtomicU8::new(KILL_NONE),
            threshold_ms: AtomicU64::new(5000),
            next_hand_off: AtomicU64::new(0),
        }
    }
}

/// What a connection sees of a running script before it locks the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Running {
    pub is_function: bool,
    /// Past the busy threshold: other clients get `-BUSY`.
    pub busy: bool,
    pub wrote: bool,
}

/// Marks the script as ended when dropped (also on a panic).
pub struct RunGuard<'a>(&'a ScriptWatch);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.started.store(0, Ordering::Release);
        self.0.kill.store(KILL_NONE, Ordering::Release);
        self.0.wrote.store(false, Ordering::Release);
    }
}

impl ScriptWatch {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64 + 1
    }

    /// Called by the runner with the lock held, as the script starts.
    pub fn begin(&self, is_function: bool) -> RunGuard<'_> {
        self.kill.store(KILL_NONE, Ordering::Release);
        self.wrote.store(false, Ordering::Release);
        self.is_function.store(is_function, Ordering::Release);
        self.next_hand_off.store(0, Ordering::Relaxed);
        self.started.store(self.now_us(), Ordering::Release);
        RunGuard(self)
    }

    /// Called by the Lua hook every few thousand instructions. A script that
    /// has run for [`HAND_OFF_AFTER_MS`] hands its tokio worker (and the other
    /// tasks queued on it) to a fresh thread with `block_in_place`, then goes
    /// on running here: other connections keep being served (BUSY, SCRIPT
    /// KILL) even with one worker thread, while short scripts pay nothing.
    /// The pause inside gives the fresh thread time to take the worker (tokio
    /// takes it back if it is still there when the closure returns), and the
    /// attempt repeats every [`HAND_OFF_RETRY_MS`] in case it was too short.
    pub fn tick(&self) {
        let started = self.started.load(Ordering::Acquire);
        let now = self.now_us();
        let next = self.next_hand_off.load(Ordering::Relaxed);
        if started == 0 || now < started + HAND_OFF_AFTER_MS * 1000 || now < next {
            return;
        }
        self.next_hand_off
            .store(now + HAND_OFF_RETRY_MS * 1000, Ordering::Relaxed);
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| std::thread::sleep(std::time::Duration::from_millis(2)));
        }
    }

    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    pub fn mark_write(&self) {
        self.wrote.store(true, Ordering::Release);
    }

    /// The running script, if any.
    pub fn running(&self) -> Option<Running> {
        let started = self.started.load(Ordering::Acquire);
        if started == 0 {
            return None;
        }
        let threshold = self.threshold_ms.load(Ordering::Relaxed);
        let elapsed_ms = self.now_us().saturating_sub(started) / 1000;
        Some(Running {
            is_function: self.is_function.load(Ordering::Acquire),
            busy: threshold > 0 && elapsed_ms >= threshold,
            wrote: self.wrote.load(Ordering::Acquire),
        })
    }

    /// Asks the running script to stop (`how` is [`KILL_SCRIPT`] or [`KILL_SHUTDOWN`]).
    pub fn request_kill(&self, how: u8) {
        self.kill.fetch_max(how, Ordering::AcqRel);
    }

    /// The kill the hook must honour now, if any.
    pub fn kill_requested(&self) -> Option<u8> {
        match self.kill.load(Ordering::Acquire) {
            KILL_NONE => None,
            KILL_SCRIPT if self.wrote.load(Ordering::Acquire) => None,
            how => Some(how),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_that_wrote_ignores_script_kill_but_not_shutdown() {
        let w = ScriptWatch::default();
        assert!(w.running().is_none());
        let guard = w.begin(false);
        assert!(w.running().is_some());
        w.request_kill(KILL_SCRIPT);
        assert_eq!(w.kill_requested(), Some(KILL_SCRIPT));
        w.mark_write();
        assert_eq!(w.kill_requested(), None);
        w.request_kill(KILL_SHUTDOWN);
        assert_eq!(w.kill_requested(), Some(KILL_SHUTDOWN));
        drop(guard);
        assert!(w.running().is_none());
        assert_eq!(w.kill_requested(), None);
    }

    #[test]
    fn busy_after_the_threshold() {
        let w = ScriptWatch::default();
        w.set_threshold_ms(1);
        let _g = w.begin(true);
        std::thread::sleep(std::time::Duration::from_millis(5));
        let r = w.running().unwrap();
        assert!(r.busy && r.is_function && !r.wrote);
    }
}
