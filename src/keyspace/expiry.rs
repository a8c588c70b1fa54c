//! The active expiry cycle: reclaims keys whose time ran out even if nobody reads them.
//!
//! Lazy expiry (in [`super::Db::get`]) handles keys that are touched; this cycle
//! handles the rest. Each database keeps an ordered `(deadline, key)` index, so the
//! cycle deletes exactly the due keys, earliest first, with no sampling. Work is cut
//! into slices of at most [`KEYS_PER_SLICE`] deletions so the state lock is never
//! held long, and a cycle stops at its time budget (as Redis's 25% CPU rule).

use std::time::Instant;

use super::Keyspace;

/// Deletions between two checks of the clock / releases of the lock.
pub const KEYS_PER_SLICE: usize = 200;

/// Result of one slice of the cycle.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SliceOutcome {
    pub removed: usize,
    /// More keys are due; the caller should run another slice if its budget allows.
    pub more: bool,
}

/// Deletes up to [`KEYS_PER_SLICE`] due keys, spread over the databases.
pub fn expire_slice(ks: &mut Keyspace, now_ms: i64) -> SliceOutcome {
    let mut out = SliceOutcome::default();
    for i in 0..ks.db_count() {
        let budget = KEYS_PER_SLICE - out.removed;
        if budget == 0 {
            out.more = true;
            break;
        }
        let (removed, more) = ks.db_mut(i).expire_due(now_ms, budget);
        out.removed += removed;
        out.more |= more;
    }
    out
}

/// Runs slices until nothing is due or `deadline` passes; for callers that hold
/// the keyspace exclusively (tests, loading).
pub fn expire_until(ks: &mut Keyspace, now_ms: i64, deadline: Instant) -> usize {
    let mut total = 0;
    loop {
        let out = expire_slice(ks, now_ms);
        total += out.removed;
        if !out.more || Instant::now() >= deadline {
            return total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;
    use bytes::Bytes;
    use std::time::Duration;

    #[test]
    fn reclaims_due_keys_in_every_db() {
        let mut ks = Keyspace::new(4);
        for db in 0..4 {
            for i in 0..500 {
                let t = if i % 2 == 0 { Some(10) } else { Some(1_000) };
                ks.db_mut(db)
                    .insert(Bytes::from(format!("k{i}")), Value::Str(Bytes::new()), t);
            }
        }
        let first = expire_slice(&mut ks, 100);
        assert_eq!(first.removed, KEYS_PER_SLICE);
        assert!(first.more);
        let rest = expire_until(&mut ks, 100, Instant::now() + Duration::from_secs(5));
        assert_eq!(first.removed + rest, 4 * 250);
        assert_eq!(ks.key_count(), 4 * 250);
        assert_eq!(ks.expired_count(), 1000);
    }
}
