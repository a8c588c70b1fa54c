//! Clients blocked in BLPOP, BRPOP, BLMOVE, BLMPOP and friends.
//!
//! A blocking command that finds nothing registers a [`Waiter`] under every key it
//! waits on and its connection awaits a oneshot channel. A command that pushes to a
//! key calls [`Blocking::signal`]; after that command (still under the state lock)
//! [`serve_ready`] hands the new elements to the waiters of each ready key in
//! arrival order, by running the waiter's command again, non-blocking, on its
//! behalf. Serving happens between whole commands, so a snapshot never sees a pop
//! without its reply or half of a BLMOVE.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::keyspace::Key;
use crate::reply::Reply;
use crate::state::State;

/// Runs a blocked command for a waiter once `ready_key` may have data.
/// Returns `None` when there is still nothing for it (it stays blocked).
pub type ServeFn = fn(
    state: &mut State,
    db: usize,
    args: &[Bytes],
    ready_key: &[u8],
    now_ms: i64,
) -> Option<Reply>;

pub struct Waiter {
    pub client_id: u64,
    pub db: usize,
    pub keys: Vec<Key>,
    pub args: Vec<Bytes>,
    pub serve: ServeFn,
    tx: oneshot::Sender<Reply>,
}

/// The registry of waiters, by id and by `(db, key)`.
#[derive(Default)]
pub struct Blocking {
    next_id: u64,
    waiters: HashMap<u64, Waiter>,
    by_key: HashMap<(usize, Key), VecDeque<u64>>,
    ready: VecDeque<(usize, Key)>,
    /// Waiters (blocked stream reads) that want a try whenever their key
    /// changes, deleted included, and whose "not yet" does not stop the
    /// waiters behind them from being tried.
    try_all: std::collections::HashSet<u64>,
}

impl Blocking {
    /// Registers a waiter; the reply arrives on the returned receiver.
    pub fn register(
        &mut self,
        client_id: u64,
        db: usize,
        keys: Vec<Key>,
        args: Vec<Bytes>,
        serve: ServeFn,
    ) -> (u64, oneshot::Receiver<Reply>) {
        self.next_id += 1;
        let id = self.next_id;
        let (tx, rx) = oneshot::channel();
        for key in &keys {
            let queue = self.by_key.entry((db, key.clone())).or_default();
            if !queue.contains(&id) {
                queue.push_back(id);
            }
        }
        self.waiters.insert(
            id,
            Waiter {
                client_id,
                db,
                keys,
                args,
                serve,
                tx,
            },
        );
        (id, rx)
    }

    /// Removes a waiter (timeout, disconnect). Harmless if it was already served.
    pub fn cancel(&mut self, id: u64) {
        self.take(id);
    }

    /// Marks waiter `id` as a blocked stream read (see `try_all`).
    pub fn set_try_all(&mut self, id: u64) {
        self.try_all.insert(id);
    }

    /// Whether some waiter wants to hear of every change to its keys.
    #[inline]
    pub fn wants_changes(&self) -> bool {
        !self.try_all.is_empty()
    }

    /// Removes a waiter from every queue and returns it.
    fn take(&mut self, id: u64) -> Option<Waiter> {
        self.try_all.remove(&id);
        let w = self.waiters.remove(&id)?;
        for key in &w.keys {
            let slot = (w.db, key.clone());
            if let Some(queue) = self.by_key.get_mut(&slot) {
                queue.retain(|x| *x != id);
                if queue.is_empty() {
                    self.by_key.remove(&slot);
                }
            }
        }
        Some(w)
    }

    /// Cancels every waiter of a client.
    pub fn cancel_client(&mut self, client_id: u64) {
        let ids: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.client_id == client_id)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.cancel(id);
        }
    }

    /// Notes that `key` in `db` got elements; cheap when nobody waits on it.
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.by_key.is_empty() {
            return;
        }
        let slot = (db, Bytes::copy_from_slice(key));
        if self.by_key.contains_key(&slot) && !self.ready.contains(&slot) {
            self.ready.push_back(slot);
        }
    }

    /// Signals every waited-on key of `db`, after the database changed wholesale
    /// (SWAPDB, a snapshot load).
    pub fn signal_db(&mut self, db: usize) {
        let slots: Vec<(usize, Key)> = self
            .by_key
            .keys()
            .filter(|(d, _)| *d == db)
            .cloned()
            .collect();
        for slot in slots {
            if !self.ready.contains(&slot) {
                self.ready.push_back(slot);
            }
        }
    }

    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Number of blocked clients (`blocked_clients` in INFO).
    pub fn blocked_clients(&self) -> usize {
        self.waiters.len()
    }

    /// Number of keys with waiters (`total_blocking_keys` in INFO).
    pub fn blocking_keys(&self) -> usize {
        self.by_key.len()
    }

    fn waiter_at(&self, slot: &(usize, Key), index: usize) -> Option<u64> {
        self.by_key.get(slot).and_then(|q| q.get(index).copied())
    }
}

/// Serves waiters on every key signalled so far, in arrival order.
pub fn serve_ready(state: &mut State, now_ms: i64) {
    while let Some(slot) = state.blocking.ready.pop_front() {
        // Waiters before `skip` stay blocked on this key for now.
        let mut skip = 0;
        while let Some(id) = state.blocking.waiter_at(&slot, skip) {
            let Some(w) = state.blocking.waiters.get(&id) else {
                break;
            };
            if w.tx.is_closed() {
                state.blocking.cancel(id);
                continue;
            }
            let (serve, db, args) = (w.serve, w.db, w.args.clone());
            match serve(state, db, &args, &slot.1, now_ms) {
                Some(reply) => {
                    crate::replication::propagate::served(state, db, &args, &reply);
                    if let Some(waiter) = state.blocking.take(id) {
                        // A send fails only if the client went away meanwhile; the
                        // command already ran, as it would have for a live client.
                        let _ = waiter.tx.send(reply);
                    }
                }
                None if state.blocking.try_all.contains(&id) => skip += 1,
                None => break,
            }
        }
    }
}

// Server family: CLIENT UNBLOCK.
impl Blocking {
    /// Ends the waits of `client_id`. With `reply`, the client gets it (the
    /// UNBLOCKED error); without, its command times out at once. Returns whether
    /// the client was blocked.
    pub fn unblock_client(&mut self, client_id: u64, reply: Option<Reply>) -> bool {
        let ids: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.client_id == client_id)
            .map(|(id, _)| *id)
            .collect();
        for id in &ids {
            if let Some(waiter) = self.take(*id) {
                if let Some(reply) = &reply {
                    // A failed send means the client left; nothing to undo.
                    let _ = waiter.tx.send(reply.clone());
                }
            }
        }
        !ids.is_empty()
    }
}

// Replication: a primary that becomes a replica.
impl Blocking {
    /// Ends every wait with `reply` (REPLICAOF on a primary: the
    /// `-UNBLOCKED ... (master -> replica?)` error). Returns how many.
    pub fn unblock_all(&mut self, reply: &Reply) -> usize {
        let ids: Vec<u64> = self.waiters.keys().copied().collect();
        for id in &ids {
            if let Some(waiter) = self.take(*id) {
                // A failed send means the client left; nothing to undo.
                let _ = waiter.tx.send(reply.clone());
            }
        }
        ids.len()
    }
}

/// Whether a blocked command's reply also ends its connection: the error
/// of a role change, after which Redis 7.0 closes the client.
pub fn closes_connection(reply: &Reply) -> bool {
    matches!(reply, Reply::Error(e) if e == crate::errors::replication::UNBLOCKED_ROLE_CHANGE)
}

#[cfg(test)]
mod unblock_tests {
    use super::*;

    fn never(_: &mut State, _: usize, _: &[Bytes], _: &[u8], _: i64) -> Option<Reply> {
        None
    }

    fn always(_: &mut State, _: usize, _: &[Bytes], _: &[u8], _: i64) -> Option<Reply> {
        Some(Reply::Integer(1))
    }

    #[test]
    fn a_stream_waiter_not_ready_lets_the_next_be_served() {
        let mut state = State::new(1);
        let k = || vec![Bytes::from("k")];
        let (first, mut rx1) = state.blocking.register(1, 0, k(), vec![], never);
        state.blocking.set_try_all(first);
        let (_, mut rx2) = state.blocking.register(2, 0, k(), vec![], always);
        state.blocking.signal(0, b"k");
        serve_ready(&mut state, 0);
        assert!(rx1.try_recv().is_err(), "the first still waits");
        assert_eq!(rx2.try_recv().unwrap(), Reply::Integer(1));
        assert_eq!(state.blocking.blocked_clients(), 1);
        // Without the mark, a waiter that is not ready stops the queue.
        let (_, mut rx3) = state
            .blocking
            .register(3, 0, vec![Bytes::from("j")], vec![], never);
        let (_, mut rx4) = state
            .blocking
            .register(4, 0, vec![Bytes::from("j")], vec![], always);
        state.blocking.signal(0, b"j");
        serve_ready(&mut state, 0);
        assert!(rx3.try_recv().is_err());
        assert!(rx4.try_recv().is_err());
        state.blocking.cancel_client(1);
        assert!(!state.blocking.wants_changes());
    }

    #[test]
    fn unblock_with_error_or_timeout() {
        let mut b = Blocking::default();
        let (_, mut rx) = b.register(7, 0, vec![Bytes::from("k")], vec![], never);
        assert!(!b.unblock_client(8, None));
        assert!(b.unblock_client(7, Some(Reply::Error("UNBLOCKED x".into()))));
        assert_eq!(rx.try_recv().unwrap(), Reply::Error("UNBLOCKED x".into()));
        assert_eq!(b.blocked_clients(), 0);
        assert_eq!(b.blocking_keys(), 0);

        let (_, mut rx) = b.register(7, 0, vec![Bytes::from("k")], vec![], never);
        assert!(b.unblock_client(7, None));
        // The sender is gone: the connection answers with its timeout reply.
        assert!(rx.try_recv().is_err());
        assert!(!b.unblock_client(7, None));
    }

    #[test]
    fn a_role_change_unblocks_every_waiter() {
        let mut b = Blocking::default();
        let (_, mut rx1) = b.register(1, 0, vec![Bytes::from("a")], vec![], never);
        let (_, mut rx2) = b.register(2, 3, vec![Bytes::from("b")], vec![], never);
        let err = Reply::Error(crate::errors::replication::UNBLOCKED_ROLE_CHANGE.into());
        assert_eq!(b.unblock_all(&err), 2);
        let got = rx1.try_recv().unwrap();
        assert!(closes_connection(&got));
        assert_eq!(rx2.try_recv().unwrap(), err);
        assert_eq!(b.blocked_clients(), 0);
        assert_eq!(b.blocking_keys(), 0);
        assert!(!closes_connection(&Reply::Error("UNBLOCKED x".into())));
    }
}
