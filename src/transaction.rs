//! Transactions below the command layer: a client's MULTI state ([`TxState`])
//! and the server's watched keys ([`Watches`]).
//!
//! # WATCH by modification signal
//!
//! As Redis's `touchWatchedKey`: the registry maps each watched key to its
//! watchers, and every write that changes a key touches it (the command
//! context touches the key of every keyspace event it reports, since Redis
//! pairs `signalModifiedKey` with `notifyKeyspaceEvent`; FLUSHDB, FLUSHALL,
//! SWAPDB and a load touch whole databases). A touched watcher is dirty and its
//! EXEC fails. A write that leaves a key alone (SADD of a present member,
//! SMOVE to a set that holds the member, a blocked BLMOVE not yet served)
//! reports no event and touches nothing. Moving a value away and back (RENAME
//! a b, RENAME b a) touches it twice, so the transaction fails, as in Redis.
//!
//! A key already expired when WATCH ran is flagged: its later deletion is no
//! logical change, as in Redis 7.0. EXEC also fails when a key that was live
//! at WATCH time has expired since, even if nothing deleted it yet.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::keyspace::{Db, Key};

/// One client's transaction state.
#[derive(Debug, Default)]
pub struct TxState {
    /// Between MULTI and EXEC/DISCARD.
    pub active: bool,
    /// A command was refused while queueing: EXEC will abort.
    pub failed: bool,
    /// EXEC is running the queue (no queueing, no subscribed-mode check).
    pub executing: bool,
    pub queue: Vec<Vec<Bytes>>,
    /// The keys this client watches, as (db, key): what [`Watches::unwatch`]
    /// needs to find its entries.
    pub watched: Vec<(usize, Key)>,
}

impl TxState {
    /// Leaves MULTI. The caller unwatches through [`Watches::unwatch`].
    pub fn reset(&mut self) {
        self.active = false;
        self.failed = false;
        self.queue.clear();
    }
}

#[derive(Debug, Clone, Copy)]
struct Watcher {
    db: usize,
    client: u64,
    /// The key was already expired (but not yet deleted) at WATCH time.
    expired: bool,
}

/// The server's watched keys and the clients whose watch a write touched.
#[derive(Debug, Default)]
pub struct Watches {
    keys: HashMap<Key, Vec<Watcher>>,
    dirty: HashSet<u64>,
}

impl Watches {
    /// True when no client watches anything: the writers' fast path.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Starts watching `key` in `db` for `client` (which recorded it in its
    /// [`TxState::watched`]). `expired`: the key is there but its time ran out.
    pub fn watch(&mut self, client: u64, db: usize, key: Key, expired: bool) {
        self.keys.entry(key).or_default().push(Watcher {
            db,
            client,
            expired,
        });
    }

    /// Drops every watch of `client` and its dirty mark.
    pub fn unwatch(&mut self, client: u64, watched: &mut Vec<(usize, Key)>) {
        for (db, key) in watched.drain(..) {
            if let Some(list) = self.keys.get_mut(&key) {
                list.retain(|w| !(w.client == client && w.db == db));
                if list.is_empty() {
                    self.keys.remove(&key);
                }
            }
        }
        self.dirty.remove(&client);
    }

    /// Whether a write touched one of `client`'s keys since it watched them.
    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    /// A write changed `key` in `db` (`db_now` is that database after it).
    pub fn touch(&mut self, db: usize, key: &[u8], db_now: &Db) {
        let Some(list) = self.keys.get_mut(key) else {
            return;
        };
        for w in list.iter_mut().filter(|w| w.db == db) {
            if w.expired && db_now.stored(key).is_none() {
                // The expired key was deleted: no logical change.
                w.expired = false;
                continue;
            }
            self.dirty.insert(w.client);
        }
    }

    /// FLUSHDB, FLUSHALL or a load emptied `db` (`before` is its content
    /// before): watchers of keys it held are dirty.
    pub fn touch_emptied(&mut self, db: usize, before: &Db, now_ms: i64) {
        self.touch_replaced(db, before, None, now_ms);
    }

    /// SWAPDB (or a load) replaced database `db`'s content `before` with
    /// `after`: watchers of keys present in either are dirty, except where
    /// the key was and stays logically expired (Redis's
    /// `touchAllWatchedKeysInDb`).
    pub fn touch_replaced(&mut self, db: usize, before: &Db, after: Option<&Db>, now_ms: i64) {
        for (key, list) in self.keys.iter_mut() {
            let in_before = before.stored(key).is_some();
            let in_after = after.and_then(|a| a.stored(key));
            if !in_before && in_after.is_none() {
                continue;
            }
            for w in list.iter_mut().filter(|w| w.db == db) {
                let after_expired = in_after.is_some_and(|r| r.is_expired(now_ms));
                if w.expired {
                    match in_after {
                        None => {
                            w.expired = false;
                            continue;
                        }
                        Some(_) if after_expired => continue,
                        Some(_) => {}
                    }
                } else if !in_before && after_expired {
                    w.expired = true;
                    continue;
                }
                self.dirty.insert(w.client);
            }
        }
    }

    /// Whether a key `client` watched while it was live has logically
    /// expired since (EXEC then fails, as in Redis 7.0).
    pub fn expired_since(
        &self,
        client: u64,
        watched: &[(usize, Key)],
        dbs: &[Db],
        now_ms: i64,
    ) -> bool {
        watched.iter().any(|(db, key)| {
            let was_expired = self.keys.get(key).is_some_and(|list| {
                list.iter()
                    .any(|w| w.client == client && w.db == *db && w.expired)
            });
            !was_expired
                && dbs
                    .get(*db)
                    .and_then(|d| d.stored(key))
                    .is_some_and(|r| r.is_expired(now_ms))
        })
    }
}
