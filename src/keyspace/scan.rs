//! Resumable cursors for walks that cannot resume from a number. (SCAN and
//! HSCAN need none: their cursor is a position in a trie's hash order.)
//!
//! A persistent hash trie cannot resume a walk from a number, so a cursor is an
//! owned iterator over an O(1) clone of the map taken when the scan began. That
//! gives Redis's guarantee (every element present for the whole scan is returned)
//! and more: each element is returned at most once per scan. The table is bounded;
//! a cursor it no longer knows (evicted, or never issued) starts a fresh walk, which
//! may repeat elements but still returns every one present throughout, as Redis
//! allows.

use std::collections::{HashMap as StdHashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Entry, Key};

/// Most cursors kept at once; the least recently used goes first.
const MAX_CURSORS: usize = 1024;
/// A cursor unused this long is dropped (it pins an old version of the data).
const CURSOR_IDLE_LIMIT: Duration = Duration::from_secs(300);

/// What a cursor walks, so a cursor issued by one command is not resumed by another.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ScanTarget {
    Keys { db: usize },
    Set { db: usize, key: Key },
}

/// The remaining elements of a walk.
pub enum ScanIter {
    Keys(Box<dyn Iterator<Item = (Key, Entry)> + Send>),
    Set(Box<dyn Iterator<Item = Bytes> + Send>),
}

struct Cursor {
    target: ScanTarget,
    iter: ScanIter,
    last_used: Instant,
}

/// The table of open cursors, shared by every connection (clients may resume a
/// scan on another connection of their pool).
#[derive(Default)]
pub struct ScanCursors {
    next_id: u64,
    open: StdHashMap<u64, Cursor>,
    lru: VecDeque<u64>,
}

impl ScanCursors {
    /// Takes the walk for `id` if it is open and walks `target`.
    pub fn take(&mut self, id: u64, target: &ScanTarget) -> Option<ScanIter> {
        if id == 0 {
            return None;
        }
        match self.open.remove(&id) {
            Some(c) if &c.target == target => {
                self.lru.retain(|x| *x != id);
                Some(c.iter)
            }
            Some(c) => {
                self.open.insert(id, c);
                None
            }
            None => None,
        }
    }

    /// Parks an unfinished walk and returns the cursor number to hand the client.
    pub fn park(&mut self, target: ScanTarget, iter: ScanIter) -> u64 {
        let now = Instant::now();
        while let Some(&oldest) = self.lru.front() {
            let stale = self
                .open
                .get(&oldest)
                .is_none_or(|c| now.duration_since(c.last_used) > CURSOR_IDLE_LIMIT);
            if stale || self.open.len() >= MAX_CURSORS {
                self.lru.pop_front();
                self.open.remove(&oldest);
            } else {
                break;
            }
        }
        self.next_id = self.next_id.wrapping_add(1).max(1);
        let id = self.next_id;
        self.open.insert(
            id,
            Cursor {
                target,
                iter,
                last_used: now,
            },
        );
        self.lru.push_back(id);
        id
    }

    /// Drops every cursor (FLUSHALL, a snapshot load): their data is gone.
    pub fn clear(&mut self) {
        self.open.clear();
        self.lru.clear();
    }

    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// Parses a client's cursor argument (Redis: an unsigned 64-bit decimal).
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

// Server family: FLUSHDB and SWAPDB drop the cursors of the databases they replace.
impl ScanTarget {
    fn db(&self) -> usize {
        match self {
            ScanTarget::Keys { db } | ScanTarget::Set { db, .. } => *db,
        }
    }
}

impl ScanCursors {
    /// Drops every cursor walking database `db`: its contents were replaced.
    pub fn clear_db(&mut self, db: usize) {
        self.open.retain(|_, c| c.target.db() != db);
        let open = &self.open;
        self.lru.retain(|id| open.contains_key(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_iter(items: &[&str]) -> ScanIter {
        let v: Vec<Bytes> = items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        ScanIter::Set(Box::new(v.into_iter()))
    }

    #[test]
    fn park_and_resume() {
        let mut t = ScanCursors::default();
        let target = ScanTarget::Set {
            db: 0,
            key: Bytes::from("s"),
        };
        let id = t.park(target.clone(), set_iter(&["a", "b"]));
        assert!(id != 0);
        let other = ScanTarget::Set {
            db: 1,
            key: Bytes::from("s"),
        };
        assert!(
            t.take(id, &other).is_none(),
            "cursor of another target must not resume"
        );
        let Some(ScanIter::Set(mut it)) = t.take(id, &target) else {
            panic!("lost cursor")
        };
        assert_eq!(it.next().unwrap(), Bytes::from("a"));
        assert!(t.take(id, &target).is_none(), "a taken cursor is gone");
    }

    #[test]
    fn table_is_bounded() {
        let mut t = ScanCursors::default();
        for _ in 0..(MAX_CURSORS + 10) {
            t.park(ScanTarget::Keys { db: 0 }, set_iter(&[]));
        }
        assert_eq!(t.len(), MAX_CURSORS);
    }

    #[test]
    fn clear_db_keeps_other_databases() {
        let mut t = ScanCursors::default();
        let keep = t.park(ScanTarget::Keys { db: 1 }, set_iter(&["a"]));
        let drop = t.park(ScanTarget::Keys { db: 0 }, set_iter(&["b"]));
        t.clear_db(0);
        assert_eq!(t.len(), 1);
        assert!(t.take(drop, &ScanTarget::Keys { db: 0 }).is_none());
        assert!(t.take(keep, &ScanTarget::Keys { db: 1 }).is_some());
    }
}
