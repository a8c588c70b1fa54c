//! Consumer groups: each group's last delivered id, its read counter, its
//! pending entries list (PEL) and its consumers. Persistent maps throughout,
//! so a snapshot's clone of a stream shares the groups until one changes.

use bytes::Bytes;
use imbl::{OrdMap, OrdSet};

use super::id::StreamId;

/// Redis's `SCG_INVALID_ENTRIES_READ`: the group's read counter is unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A delivered, not yet acknowledged entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Bytes,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Consumer {
    /// Unix ms of the consumer's last read or claim attempt.
    pub seen_time: i64,
    /// Its ids in the group's PEL.
    pub pending: OrdSet<StreamId>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group read, or [`INVALID_ENTRIES_READ`].
    pub entries_read: i64,
    pub pel: OrdMap<StreamId, Nack>,
    pub consumers: OrdMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: OrdMap::new(),
            consumers: OrdMap::new(),
        }
    }

    /// The consumer `name`, created with `seen_time = now` if absent; the
    /// bool tells whether it was created.
    pub fn consumer_mut(&mut self, name: &[u8], now_ms: i64) -> (&mut Consumer, bool) {
        let key = Bytes::copy_from_slice(name);
        let created = !self.consumers.contains_key(&key);
        let c = self.consumers.entry(key).or_insert_with(|| Consumer {
            seen_time: now_ms,
            pending: OrdSet::new(),
        });
        (c, created)
    }

    /// Removes a consumer and its pending entries; returns how many it had,
    /// or `None` if there was no such consumer.
    pub fn delete_consumer(&mut self, name: &[u8]) -> Option<usize> {
        let c = self.consumers.remove(name)?;
        for id in c.pending.iter() {
            self.pel.remove(id);
        }
        Some(c.pending.len())
    }

    /// Records the delivery of `id` to `consumer` at `now_ms`, moving it from
    /// its previous owner if it was pending elsewhere.
    pub fn deliver(&mut self, id: StreamId, consumer: &[u8], now_ms: i64, count: u64) {
        let owner = Bytes::copy_from_slice(consumer);
        if let Some(old) = self.pel.get(&id) {
            if old.consumer != owner {
                let prev = old.consumer.clone();
                if let Some(c) = self.consumers.get_mut(&prev) {
                    c.pending.remove(&id);
                }
            }
        }
        self.pel.insert(
            id,
            Nack {
                consumer: owner.clone(),
                delivery_time: now_ms,
                delivery_count: count,
            },
        );
        self.consumer_mut(&owner, now_ms).0.pending.insert(id);
    }

    /// Acknowledges `id`; returns whether it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        let Some(nack) = self.pel.remove(&id) else {
            return false;
        };
        if let Some(c) = self.consumers.get_mut(&nack.consumer) {
            c.pending.remove(&id);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_moves_ownership_and_ack_clears_both_lists() {
        let mut g = Group::new(StreamId::MIN, 0);
        let id = StreamId::new(1, 0);
        g.deliver(id, b"a", 10, 1);
        g.deliver(id, b"b", 20, 2);
        assert!(g.consumers[&Bytes::from("a")].pending.is_empty());
        assert!(g.consumers[&Bytes::from("b")].pending.contains(&id));
        assert_eq!(g.pel[&id].delivery_count, 2);
        let snapshot = g.clone();
        assert!(g.ack(id));
        assert!(!g.ack(id));
        assert!(g.consumers[&Bytes::from("b")].pending.is_empty());
        assert!(snapshot.pel.contains_key(&id));
        g.deliver(StreamId::new(2, 0), b"b", 30, 1);
        assert_eq!(g.delete_consumer(b"b"), Some(1));
        assert!(g.pel.is_empty());
        assert_eq!(g.delete_consumer(b"b"), None);
    }
}
