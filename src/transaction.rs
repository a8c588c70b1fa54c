//! A client's MULTI/EXEC state: whether a transaction is open, its queue, and
//! the keys it watches.

use bytes::Bytes;

use crate::keyspace::{Key, Record};

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
    pub watched: Vec<Watched>,
}

#[derive(Debug)]
pub struct Watched {
    pub db: usize,
    pub key: Key,
    pub seen: Option<Record>,
}

impl TxState {
    pub fn reset(&mut self) {
        self.active = false;
        self.failed = false;
        self.queue.clear();
        self.watched.clear();
    }
}
