//! Per-key access bookkeeping for eviction, as Redis keeps it in each object's
//! 24 `lru` bits: under an LRU (or random, or TTL) policy the last access
//! time in seconds; under an LFU policy a logarithmic access counter (8 bits)
//! beside the minute it last decayed (16 bits), `(minutes << 8) | counter`.
//!
//! The word lives in the map slot of each key ([`super::Record`]), in what
//! would otherwise be padding, and is an atomic: a read updates it through a
//! shared reference, even in a map node a snapshot shares. A snapshot never
//! reads it, so the update is invisible to the saved data.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The counter a new key starts with under LFU (Redis's `LFU_INIT_VAL`), so a
/// key just written is not the first to go.
pub const LFU_INIT: u32 = 5;

/// One key's access word.
#[derive(Debug, Default)]
pub struct Access(AtomicU32);

impl Clone for Access {
    fn clone(&self) -> Access {
        Access(AtomicU32::new(self.get()))
    }
}

impl Access {
    pub fn new(word: u32) -> Access {
        Access(AtomicU32::new(word))
    }

    #[inline]
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn set(&self, word: u32) {
        self.0.store(word, Ordering::Relaxed)
    }
}

/// How accesses are recorded: the maxmemory policy's family and the LFU
/// parameters (`lfu-log-factor`, `lfu-decay-time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracking {
    pub lfu: bool,
    pub log_factor: u32,
    pub decay_minutes: u32,
}

impl Default for Tracking {
    fn default() -> Tracking {
        Tracking {
            lfu: false,
            log_factor: 10,
            decay_minutes: 1,
        }
    }
}

/// The process's tracking, as the maxmemory policy and the LFU parameters set
/// it: `lfu << 63 | log_factor << 32 | decay_minutes`. One server per process,
/// like Redis's `server.maxmemory_policy`.
static CURRENT: AtomicU64 = AtomicU64::new(10 << 32 | 1);

impl Tracking {
    /// The tracking every key access follows now.
    #[inline]
    pub fn current() -> Tracking {
        let w = CURRENT.load(Ordering::Relaxed);
        Tracking {
            lfu: w >> 63 != 0,
            log_factor: (w >> 32) as u32 & 0x7fff_ffff,
            decay_minutes: w as u32,
        }
    }

    /// Installs `self` as [`Tracking::current`] (on a change of
    /// `maxmemory-policy`, `lfu-log-factor` or `lfu-decay-time`).
    pub fn install(self) {
        let w = (self.lfu as u64) << 63
            | ((self.log_factor & 0x7fff_ffff) as u64) << 32
            | self.decay_minutes as u64;
        CURRENT.store(w, Ordering::Relaxed);
    }
}

/// Redis's 24-bit LRU clock: seconds, wrapping every 194 days.
const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

fn seconds(now_ms: i64) -> u32 {
    ((now_ms.max(0) / 1000) as u32) & LRU_CLOCK_MAX
}

fn minutes(now_ms: i64) -> u32 {
    ((now_ms.max(0) / 60_000) & 0xffff) as u32
}

impl Tracking {
    /// The word a key created now starts with.
    #[inline]
    pub fn initial(&self, now_ms: i64) -> u32 {
        if self.lfu {
            (minutes(now_ms) << 8) | LFU_INIT
        } else {
            seconds(now_ms)
        }
    }

    /// Records an access now. `random` is a uniform draw in [0, 1), for the
    /// counter's probabilistic increment.
    #[inline]
    pub fn touch(&self, access: &Access, now_ms: i64, random: impl FnOnce() -> f64) {
        if self.lfu {
            let counter = self.log_incr(self.decayed(access.get(), now_ms), random);
            access.set((minutes(now_ms) << 8) | counter);
        } else {
            access.set(seconds(now_ms));
        }
    }

    /// The LFU counter with its decay applied (`OBJECT FREQ`, Redis's
    /// `LFUDecrAndReturn`).
    pub fn decayed(&self, word: u32, now_ms: i64) -> u32 {
        let last = word >> 8;
        let counter = word & 0xff;
        if self.decay_minutes == 0 {
            return counter;
        }
        let now = minutes(now_ms);
        let elapsed = if now >= last {
            now - last
        } else {
            65535 - last + now
        };
        counter.saturating_sub(elapsed / self.decay_minutes)
    }

    /// Redis's `LFULogIncr`: the higher the counter, the less likely an
    /// access raises it.
    fn log_incr(&self, counter: u32, random: impl FnOnce() -> f64) -> u32 {
        if counter >= 255 {
            return 255;
        }
        let base = counter.saturating_sub(LFU_INIT) as f64;
        let p = 1.0 / (base * self.log_factor as f64 + 1.0);
        if random() < p {
            counter + 1
        } else {
            counter
        }
    }

    /// The word for a key restored with RESTORE's IDLETIME (seconds) or
    /// FREQ, as Redis's `objectSetLRUOrLFU`: FREQ counts under LFU,
    /// IDLETIME otherwise; `None` keeps the new key's word.
    pub fn restored(&self, now_ms: i64, idle_s: Option<i64>, freq: Option<i64>) -> Option<u32> {
        if self.lfu {
            let f = freq?.clamp(0, 255) as u32;
            return Some((minutes(now_ms) << 8) | f);
        }
        let idle = idle_s?.max(0);
        let clock = seconds(now_ms) as i64;
        let mut at = clock - idle;
        if at < 0 {
            at = at.rem_euclid(LRU_CLOCK_MAX as i64);
        }
        Some(at as u32)
    }

    /// Milliseconds since the last access under LRU tracking (OBJECT
    /// IDLETIME reports it in seconds).
    /// The word is read as Redis reads its 24 bits (`estimateObjectIdleTime`),
    /// wrap included, so a word written under LFU reads as Redis's does.
    pub fn idle_ms(word: u32, now_ms: i64) -> u64 {
        let now = seconds(now_ms) as u64;
        let then = (word & LRU_CLOCK_MAX) as u64;
        let idle = if now >= then {
            now - then
        } else {
            now + (LRU_CLOCK_MAX as u64 - then)
        };
        idle * 1000
    }

    /// How eligible a key is for eviction: the higher, the sooner it goes
    /// (idle time under LRU, 255 minus the decayed counter under LFU).
    pub fn eviction_score(&self, word: u32, now_ms: i64) -> u64 {
        if self.lfu {
            255 - self.decayed(word, now_ms) as u64
        } else {
            Tracking::idle_ms(word, now_ms)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LFU: Tracking = Tracking {
        lfu: true,
        log_factor: 10,
        decay_minutes: 1,
    };

    #[test]
    fn lfu_starts_at_five_and_the_first_access_always_counts() {
        let now = 1_700_000_000_000;
        let a = Access::new(LFU.initial(now));
        assert_eq!(LFU.decayed(a.get(), now), 5);
        LFU.touch(&a, now, || 0.99);
        assert_eq!(LFU.decayed(a.get(), now), 6);
        // Past the initial value an access counts with p = 1/(1*10+1).
        LFU.touch(&a, now, || 0.5);
        assert_eq!(LFU.decayed(a.get(), now), 6);
        LFU.touch(&a, now, || 0.01);
        assert_eq!(LFU.decayed(a.get(), now), 7);
    }

    #[test]
    fn lfu_counter_decays_one_per_period() {
        let now = 1_700_000_000_000;
        let a = Access::new((minutes(now) << 8) | 20);
        assert_eq!(LFU.decayed(a.get(), now + 3 * 60_000), 17);
        assert_eq!(LFU.decayed(a.get(), now + 300 * 60_000), 0);
        let slow = Tracking {
            decay_minutes: 0,
            ..LFU
        };
        assert_eq!(slow.decayed(a.get(), now + 300 * 60_000), 20);
    }

    #[test]
    fn lru_tracks_seconds_since_the_last_access() {
        let lru = Tracking::default();
        let a = Access::new(lru.initial(10_000));
        assert_eq!(Tracking::idle_ms(a.get(), 15_500), 5000);
        lru.touch(&a, 15_500, || 0.0);
        assert_eq!(Tracking::idle_ms(a.get(), 15_500), 0);
        assert!(lru.eviction_score(lru.initial(0), 9_000) > lru.eviction_score(a.get(), 16_000));
    }
}
