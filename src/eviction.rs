//! maxmemory and eviction, as Redis's `evict.c` does them.
//!
//! Before every command that may grow memory, [`perform`] compares the bytes
//! the program holds ([`crate::alloc::used_memory`]) less what a running
//! snapshot pins ([`crate::keyspace::pinned`]) with `maxmemory`, and evicts
//! keys by the configured policy until it is back under, within a time slice
//! set by `maxmemory-eviction-tenacity`. What a slice leaves over is evicted
//! by the next command or by the server's cron.
//!
//! Candidates come from sampling: `maxmemory-samples` random keys of each
//! database (for `volatile-*`, keys with a TTL) feed a pool of the 16 best
//! candidates kept across calls, the key idle longest (LRU) or used least
//! (LFU, [`crate::keyspace::access`]) goes first. `volatile-ttl` takes the
//! key with the nearest deadline straight from the expiry index, which the
//! sampling only approximates in Redis.
//!
//! What makes this cheap: a candidate is kept by its path in the map
//! ([`crate::keyspace::champ::Path`]), scored from the access word the map's
//! slot holds, so sampling reads no record and copies no key; the record is
//! read once, when it is freed. The sampling descents run a level per call,
//! each prefetching what the next call reads, so their cache misses overlap
//! with the commands in between (`benches/README.md`, "Eviction").

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::Config;
use crate::keyspace::access::Tracking;
use crate::keyspace::champ::{Descent, Path};
use crate::keyspace::record::View;
use crate::keyspace::{lazyfree, pinned, Db, Value};
use crate::state::State;

/// Candidates kept between calls (Redis's `EVPOOL_SIZE`).
const POOL_SIZE: usize = 16;

/// Sampling descents each database keeps going between calls.
const DESCENTS: usize = 3;

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllKeysRandom | Policy::VolatileRandom)
    }
}

/// The maxmemory parameters, copied from the config (CONFIG SET updates them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settings {
    /// 0: no limit.
    pub maxmemory: u64,
    pub policy: Policy,
    pub samples: usize,
    pub tenacity: u32,
}

impl Settings {
    pub fn of(config: &Config) -> Settings {
        let policy = Policy::parse(
            config
                .extra
                .get("maxmemory-policy")
                .map_or("noeviction", String::as_str),
        );
        Settings {
            maxmemory: config.extra_i64("maxmemory", 0).max(0) as u64,
            policy,
            samples: config.extra_i64("maxmemory-samples", 5).clamp(1, 64) as usize,
            tenacity: config
                .extra_i64("maxmemory-eviction-tenacity", 10)
                .clamp(0, 100) as u32,
        }
    }

    /// The key-access tracking this policy needs (LFU counters or LRU times).
    pub fn tracking(config: &Config) -> Tracking {
        Tracking {
            lfu: Settings::of(config).policy.is_lfu(),
            log_factor: config
                .extra_i64("lfu-log-factor", 10)
                .clamp(0, i32::MAX as i64) as u32,
            decay_minutes: config
                .extra_i64("lfu-decay-time", 1)
                .clamp(0, i32::MAX as i64) as u32,
        }
    }

    /// How long one call may evict (Redis's `evictionTimeLimitUs`): 50 µs
    /// per tenacity step up to 10, then 15% more per step, unbounded at 100.
    fn time_limit(&self) -> Option<Duration> {
        match self.tenacity {
            t if t <= 10 => Some(Duration::from_micros(50 * t.max(1) as u64)),
            t if t < 100 => Some(Duration::from_micros(
                (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
            )),
            _ => None,
        }
    }
}

/// `maxmemory-clients` in bytes: a percentage is of `maxmemory` (so 0
/// without one); 0 means no limit.
pub fn client_limit(config: &Config) -> u64 {
    let maxmemory = config.extra_i64("maxmemory", 0).max(0) as u64;
    config
        .extra
        .get("maxmemory-clients")
        .and_then(|v| crate::params::mem_or_percent(v).ok())
        .map_or(0, |v| v.bytes_of(maxmemory))
}

/// One key the pool may evict; the higher the score, the sooner. It is
/// kept by where it sits in its database's map: following the path again
/// reads no key and hashes nothing.
#[derive(Debug, Clone, Copy, Default)]
struct Candidate {
    score: u64,
    db: usize,
    path: Path,
}

/// The best candidates seen, sorted by score (best last), as Redis's
/// `EVPOOL`: a fixed array of plain values, so that taking one in moves a
/// few words and allocates nothing. As in Redis, a key sampled twice may
/// sit in it twice; the second is found gone (or used) and skipped.
#[derive(Debug, Default)]
struct Pool {
    len: usize,
    slots: [Candidate; POOL_SIZE],
}

impl Pool {
    /// Takes `candidate` in if it is better than the worst kept, or there
    /// is room; returns whether it did.
    fn offer(&mut self, candidate: Candidate) -> bool {
        if self.len == POOL_SIZE && self.slots[0].score >= candidate.score {
            return false;
        }
        let at = self.slots[..self.len].partition_point(|c| c.score <= candidate.score);
        if self.len == POOL_SIZE {
            // The worst goes.
            self.slots.copy_within(1..at, 0);
            self.slots[at - 1] = candidate;
        } else {
            self.slots.copy_within(at..self.len, at + 1);
            self.slots[at] = candidate;
            self.len += 1;
        }
        true
    }

    fn pop(&mut self) -> Option<Candidate> {
        self.len = self.len.checked_sub(1)?;
        Some(self.slots[self.len])
    }
}

/// What [`pick`] chose.
enum Choice {
    /// The pool's best (`*-lru`, `*-lfu`).
    Pooled(Candidate),
    /// A key by name (`*-random`, `volatile-ttl`).
    Key(usize, Bytes),
}

/// Eviction's state and counters.
#[derive(Debug, Default)]
pub struct Eviction {
    pub settings: Settings,
    pool: Pool,
    /// [`DESCENTS`] per database, a level further each call.
    descents: Vec<Descent>,
    /// The key being evicted, kept for its events after its record is
    /// freed (a buffer reused from key to key).
    key: Vec<u8>,
    /// INFO `evicted_keys`.
    pub evicted_keys: u64,
    /// INFO `total_eviction_exceeded_time` (ms over the limit) and whether
    /// the server is over it now.
    pub exceeded_ms: u64,
    exceeded_since: Option<Instant>,
    /// Whether the command now running found memory over the budget with
    /// nothing to evict (Redis's `pre_command_oom_state`): a script's first
    /// write that may grow memory is refused then.
    pub oom_at_command_start: bool,
}

impl Eviction {
    /// INFO `current_eviction_exceeded_time`, in ms.
    pub fn current_exceeded_ms(&self) -> u64 {
        self.exceeded_since
            .map_or(0, |t| t.elapsed().as_millis() as u64)
    }

    /// INFO `total_eviction_exceeded_time`, in ms.
    pub fn total_exceeded_ms(&self) -> u64 {
        self.exceeded_ms + self.current_exceeded_ms()
    }

    fn set_exceeded(&mut self, over: bool) {
        match (over, self.exceeded_since) {
            (true, None) => self.exceeded_since = Some(Instant::now()),
            (false, Some(t)) => {
                self.exceeded_ms += t.elapsed().as_millis() as u64;
                self.exceeded_since = None;
            }
            _ => {}
        }
    }
}

/// What [`perform`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Within the budget (or no budget).
    Ok,
    /// Still over, but the time slice ran out while keys were going: the
    /// command may run, the next call goes on.
    Running,
    /// Over, and nothing (more) can be evicted: commands that grow memory
    /// are refused with OOM.
    Fail,
}

/// The bytes counted against `maxmemory`: all held, less what snapshots pin.
pub fn counted_memory() -> u64 {
    crate::alloc::used_memory().saturating_sub(pinned::bytes())
}

/// Evicts keys until memory is within `maxmemory` or the slice ends
/// (Redis's `performEvictions`).
pub fn perform(state: &mut State, now_ms: i64) -> Outcome {
    let settings = state.eviction.settings;
    if settings.maxmemory == 0 {
        return Outcome::Ok;
    }
    let used = counted_memory();
    if used <= settings.maxmemory {
        state.eviction.set_exceeded(false);
        return Outcome::Ok;
    }
    if settings.policy == Policy::NoEviction {
        return Outcome::Fail;
    }
    state.eviction.set_exceeded(true);
    let to_free = used - settings.maxmemory;
    let mut freed = 0u64;
    let limit = settings.time_limit();
    // Most calls evict one key: the clock is read only when a second goes.
    let mut started = None;
    let mut evicted = 0u64;
    while freed < to_free {
        let Some(choice) = pick(state, now_ms) else {
            return Outcome::Fail;
        };
        let Some(bytes) = evict(state, choice, now_ms) else {
            continue;
        };
        freed += bytes;
        evicted += 1;
        let started = *started.get_or_insert_with(Instant::now);
        // As Redis: check the clock every 16 keys.
        if evicted.is_multiple_of(16) {
            if let Some(limit) = limit {
                if started.elapsed() >= limit {
                    return Outcome::Running;
                }
            }
        }
    }
    if counted_memory() <= settings.maxmemory {
        state.eviction.set_exceeded(false);
    }
    Outcome::Ok
}

/// Deletes one key for eviction: the `evicted` event, watchers touched, the
/// counter. Returns the bytes it freed (or, where a snapshot still holds the
/// record, the bytes it would free, which are now pinned); `None` if the key
/// is gone already or, found by its path, was used since it was sampled.
fn evict(state: &mut State, choice: Choice, now_ms: i64) -> Option<u64> {
    let before = crate::alloc::used_memory();
    let pinned_before = pinned::bytes();
    let (db, record) = match choice {
        Choice::Pooled(candidate) => {
            // Whatever sits at the path now goes if it is as good a choice
            // as the sample was: the same key not used since, or one that
            // took its place and is as idle (LRU) or as rarely used (LFU)
            // (and has a TTL, under a volatile policy).
            let tracking = Tracking::current();
            let volatile = state.eviction.settings.policy.volatile_only();
            let db = candidate.db;
            let record = state
                .keyspace
                .db_mut(db)
                .take_sampled(candidate.path, |r| {
                    tracking.eviction_score(r.access().get(), now_ms) >= candidate.score
                        && (!volatile || r.expire_at().is_some())
                })?;
            (db, record)
        }
        Choice::Key(db, key) => (db, state.keyspace.db_mut(db).take(&key)?),
    };
    let mut key = std::mem::take(&mut state.eviction.key);
    key.clear();
    key.extend_from_slice(record.key());
    let lazy = matches!(record.view(), View::Boxed(v) if element_count(v) > lazyfree::THRESHOLD);
    // A record only a snapshot still holds frees nothing now but counts as
    // freed: its bytes moved to the pinned figure.
    let assumed = if lazy || pinned::snapshot_running() {
        record.footprint() as u64
    } else {
        0
    };
    if lazy {
        lazyfree::drop_later(record);
    } else {
        drop(record);
    }
    let measured = before.saturating_sub(crate::alloc::used_memory());
    let newly_pinned = pinned::bytes().saturating_sub(pinned_before);
    state.eviction.evicted_keys += 1;
    crate::replication::propagate::deleted(state, db, &key, false);
    state.key_changed(db, crate::pubsub::notify::EVICTED, "evicted", &key, now_ms);
    state.eviction.key = key;
    Some(measured.max(newly_pinned).max(assumed))
}

fn element_count(value: &Value) -> usize {
    match value {
        Value::Str(_) => 1,
        Value::List(l) => l.len(),
        Value::Hash(h) => h.len(),
        Value::Set(s) => s.len(),
        Value::ZSet(z) => z.len(),
        Value::Stream(x) => x.len() as usize,
    }
}

/// The next key to evict under the policy, if any key qualifies.
fn pick(state: &mut State, now_ms: i64) -> Option<Choice> {
    let settings = state.eviction.settings;
    let dbs = state.keyspace.db_count();
    let by_key = Choice::Key;
    if settings.policy == Policy::VolatileTtl {
        // The nearest deadline of all databases, exactly.
        return (0..dbs)
            .filter_map(|i| {
                state
                    .keyspace
                    .db(i)
                    .nearest_deadline()
                    .map(|(t, k)| (t, i, k))
            })
            .min_by_key(|(t, _, _)| *t)
            .map(|(_, i, k)| by_key(i, k));
    }
    if settings.policy.random() {
        // Databases in turn from a rotating start, as Redis's `next_db`.
        let start = state.rng.below(dbs);
        for step in 0..dbs {
            let i = (start + step) % dbs;
            let db = state.keyspace.db(i);
            let r = state.rng.next_u64();
            let key = if settings.policy.volatile_only() {
                db.random_volatile_key(r)
            } else {
                random_key(db, r)
            };
            if let Some(key) = key {
                return Some(by_key(i, key));
            }
        }
        return None;
    }
    let tracking = Tracking::current();
    let volatile = settings.policy.volatile_only();
    for i in 0..dbs {
        let db = state.keyspace.db(i);
        if db.is_empty() || (volatile && db.volatile_len() == 0) {
            continue;
        }
        let pool = &mut state.eviction.pool;
        let score = |record: &crate::keyspace::Record| {
            tracking.eviction_score(record.access().get(), now_ms)
        };
        if volatile {
            for _ in 0..settings.samples {
                let r = state.rng.next_u64();
                let Some(key) = db.random_volatile_key(r) else {
                    continue;
                };
                if let (Some(record), Some(path)) = (db.stored(&key), db.path_of(&key)) {
                    let score = score(record);
                    pool.offer(Candidate { score, db: i, path });
                }
            }
        } else {
            // Neighbours in the map, as Redis's `dictGetSomeKeys` takes
            // neighbouring buckets: one descent, not one per sample, and the
            // map's order is unrelated to access order. Scores come from the
            // map's own slots and candidates are kept by path: no sampled
            // record is read. The descents go a level a call, each level's
            // node prefetched for the next: their cache misses overlap with
            // the commands' own work instead of stalling eviction.
            let descents = &mut state.eviction.descents;
            if descents.len() != dbs * DESCENTS {
                descents.clear();
                descents.resize_with(dbs * DESCENTS, || Descent::new(state.rng.next_u64()));
            }
            for descent in &mut descents[i * DESCENTS..(i + 1) * DESCENTS] {
                let ended = db.sample_step(descent, settings.samples, |record, path| {
                    let score = score(record);
                    if pool.offer(Candidate { score, db: i, path }) {
                        // Most of the kept are evicted, a call or more
                        // later: the record they read and free loads now.
                        crate::keyspace::champ::MapItem::prefetch(record);
                    }
                });
                if ended {
                    *descent = Descent::new(state.rng.next_u64());
                }
            }
        }
    }
    if state.eviction.pool.len == 0 && !volatile {
        // No descent ended with a candidate: one in a single go.
        for i in 0..dbs {
            let db = state.keyspace.db(i);
            let pool = &mut state.eviction.pool;
            db.sample(state.rng.next_u64(), settings.samples, |record, path| {
                let score = tracking.eviction_score(record.access().get(), now_ms);
                pool.offer(Candidate { score, db: i, path });
            });
        }
    }
    // The best candidate; a pooled key may be gone, which the caller skips.
    state.eviction.pool.pop().map(Choice::Pooled)
}

fn random_key(db: &Db, r: u64) -> Option<Bytes> {
    if db.is_empty() {
        return None;
    }
    db.nth_key((r % db.len() as u64) as usize)
        .map(Bytes::copy_from_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pool_keeps_the_best_sixteen_in_order() {
        let mut pool = Pool::default();
        for i in 0..40u64 {
            let score = (i * 7) % 40;
            pool.offer(Candidate {
                score,
                db: i as usize,
                ..Default::default()
            });
        }
        assert_eq!(pool.len, POOL_SIZE);
        let scores: Vec<u64> = pool.slots.iter().map(|c| c.score).collect();
        assert_eq!(scores, (24..40).collect::<Vec<_>>());
        // No better than the worst kept: refused.
        pool.offer(Candidate {
            score: 24,
            db: 99,
            ..Default::default()
        });
        assert!(pool.slots.iter().all(|c| c.db != 99));
        let popped: Vec<u64> = std::iter::from_fn(|| pool.pop()).map(|c| c.score).collect();
        assert_eq!(popped, (24..40).rev().collect::<Vec<_>>());
        // Filling again after it emptied.
        pool.offer(Candidate {
            score: 3,
            ..Default::default()
        });
        pool.offer(Candidate {
            score: 1,
            ..Default::default()
        });
        assert_eq!(pool.pop().map(|c| c.score), Some(3));
        assert_eq!(pool.pop().map(|c| c.score), Some(1));
        assert!(pool.pop().is_none());
    }

    #[test]
    fn tenacity_sets_the_slice() {
        let at = |tenacity| {
            Settings {
                tenacity,
                ..Default::default()
            }
            .time_limit()
        };
        assert_eq!(at(10), Some(Duration::from_micros(500)));
        assert_eq!(at(1), Some(Duration::from_micros(50)));
        assert!(at(50).unwrap() > at(20).unwrap());
        assert_eq!(at(100), None);
    }
}
