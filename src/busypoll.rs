//! Busy polling: while requests arrive close together, the event loop polls
//! its sockets instead of going to sleep between them.
//!
//! A server thread asleep in `epoll_wait` has to be woken by the next
//! request, and the client pays for that wake-up inside its `send`: on
//! loopback the receiving side's TCP work runs in the sender's context, and
//! waking a thread whose CPU has gone idle costs an inter-processor
//! interrupt, which in a virtual machine is an exit to the hypervisor. With
//! one request per round trip (`redis-benchmark -P 1`) the client is the
//! side that runs out of CPU first, so what its sends cost decides the rate.
//!
//! One task per server ([`run`]) keeps the worker thread polling: every
//! batch of commands records when it ran ([`note_batch`]); while the last
//! batch is less than `busy-poll-us` old the task yields, and tokio's worker
//! then polls the reactor without blocking before it runs the task again.
//! After a whole window without a batch the task parks. It is woken again
//! only when two batches arrive less than a window apart, so isolated
//! requests never start it and an idle server sleeps as before (INFO stats
//! `busy_poll_periods` counts the wake-ups). The price is
//! CPU: under a steady load denser than the window, the worker spends its
//! idle time polling. `busy-poll-us 0` turns it off.
//!
//! The flags are relaxed atomics: with several `io-threads` a wake-up can be
//! missed when a batch and the task's parking cross, which costs one polling
//! period until the next pair of close batches, never a reply.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use tokio::sync::Notify;

/// The server's poller.
static POLLER: Poller = Poller::new();

/// When batches ran and whether the polling task is waiting for one.
struct Poller {
    /// The window in nanoseconds (`busy-poll-us`); 0 = off.
    window_ns: AtomicU64,
    /// When the last batch ran, in nanoseconds since [`epoch`].
    last_batch_ns: AtomicU64,
    /// Whether the polling task is parked, waiting for `wake`.
    parked: AtomicBool,
    wake: Notify,
    /// Times the task started polling after it had parked.
    periods: AtomicU64,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos()).unwrap_or(u64::MAX)
}

impl Poller {
    const fn new() -> Poller {
        Poller {
            window_ns: AtomicU64::new(0),
            last_batch_ns: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            wake: Notify::const_new(),
            periods: AtomicU64::new(0),
        }
    }

    fn set_window_us(&self, us: u64) {
        self.window_ns
            .store(us.saturating_mul(1000), Ordering::Relaxed);
    }

    #[inline]
    fn note_batch(&self, now: Instant) {
        let now = nanos(now);
        let previous = self.last_batch_ns.swap(now, Ordering::Relaxed);
        if self.parked.load(Ordering::Relaxed)
            && now.saturating_sub(previous) < self.window_ns.load(Ordering::Relaxed)
            && self.parked.swap(false, Ordering::Relaxed)
        {
            self.wake.notify_one();
        }
    }

    /// Whether the last batch ran less than a window before `now`.
    fn busy(&self, now: Instant) -> bool {
        let window = self.window_ns.load(Ordering::Relaxed);
        window > 0 && nanos(now).saturating_sub(self.last_batch_ns.load(Ordering::Relaxed)) < window
    }

    async fn run(&self) {
        loop {
            if self.busy(Instant::now()) {
                // Let any other thread that is ready on this CPU run first
                // (a client sharing the core, a save), then poll the reactor.
                std::thread::yield_now();
                tokio::task::yield_now().await;
                continue;
            }
            self.parked.store(true, Ordering::Relaxed);
            // A batch that ran between the check and the store saw the task
            // running and did not wake it: look again before waiting. A wake
            // that comes before the wait below leaves a permit, so none is lost.
            if self.busy(Instant::now()) {
                self.parked.store(false, Ordering::Relaxed);
                continue;
            }
            self.wake.notified().await;
            self.periods.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sets the window (`busy-poll-us`, at start-up and on CONFIG SET).
pub fn set_window_us(us: u64) {
    POLLER.set_window_us(us);
}

/// Records a batch of commands run at `now`; wakes the polling task when
/// this batch followed the previous one within the window.
#[inline]
pub fn note_batch(now: Instant) {
    POLLER.note_batch(now);
}

/// How many polling periods have begun since start-up (INFO stats
/// `busy_poll_periods`).
pub fn periods() -> u64 {
    POLLER.periods.load(Ordering::Relaxed)
}

/// The polling task: runs for the life of the server.
pub async fn run() {
    POLLER.run().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_a_batch_within_the_window_wakes_the_parked_task() {
        let p = Poller::new();
        p.set_window_us(1_000);
        let start = Instant::now();
        p.note_batch(start);
        assert!(p.busy(start + Duration::from_micros(500)));
        assert!(!p.busy(start + Duration::from_micros(1_500)));

        p.parked.store(true, Ordering::Relaxed);
        p.note_batch(start + Duration::from_millis(10));
        assert!(
            p.parked.load(Ordering::Relaxed),
            "a lone batch leaves it parked"
        );
        p.note_batch(start + Duration::from_millis(10) + Duration::from_micros(200));
        assert!(
            !p.parked.load(Ordering::Relaxed),
            "a close second one wakes it"
        );
        // The wake-up is kept until the task waits for it.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), p.wake.notified())
                .await
                .expect("a stored wake-up")
        });

        p.set_window_us(0);
        assert!(
            !p.busy(start + Duration::from_millis(10)),
            "a zero window is off"
        );
    }
}
