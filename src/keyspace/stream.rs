//! The stream type: entries ordered by id, packed in blocks, and the
//! consumer groups reading them.
//!
//! Entries live in [`block::Block`]s of up to `stream-node-max-entries`
//! entries / `stream-node-max-bytes` bytes each (Redis's node limits, so
//! `~` trimming removes the same whole nodes Redis would). The last block,
//! the one XADD appends to, is held on its own (`tail`); the ones before it
//! sit in a persistent B-tree (`imbl::OrdMap`) keyed by each block's first
//! id, so an append reaches its block without a descent and touches the tree
//! only when a block fills. The blocks are `Arc`s: a write changes a block
//! in place while only the live keyspace holds it, and copies it (with the
//! tree path to it) when a snapshot still shares it. The whole stream sits
//! behind one more `Arc`, so cloning a stream value is one reference count.
//!
//! Metadata follows Redis 7.0: length, last id, first id, the greatest
//! deleted id and the count of entries ever added (for the groups' lag).

pub mod block;
pub mod group;
pub mod id;

use std::sync::Arc;

use bytes::Bytes;
use imbl::OrdMap;

pub use block::{Block, Fields};
pub use group::{Consumer, Group, Nack, INVALID_ENTRIES_READ};
pub use id::StreamId;

/// Node size limits (`stream-node-max-entries`, `stream-node-max-bytes`; 0 = no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

/// Redis's cap on a node's listpack, whatever `stream-node-max-bytes` says.
const NODE_BYTES_CAP: usize = 1 << 30;

/// What XTRIM and XADD's trimming keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrimTo {
    /// At most this many entries.
    MaxLen(u64),
    /// No entry below this id.
    MinId(StreamId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trim {
    pub to: TrimTo,
    /// `~`: only whole blocks go.
    pub approx: bool,
    /// Most entries to remove (0 = no limit); only with `approx`.
    pub limit: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Inner {
    /// Every block but the last, by first id.
    blocks: OrdMap<StreamId, Arc<Block>>,
    /// The last block: `None` only when `blocks` is empty too; after
    /// every id in `blocks`.
    tail: Option<Arc<Block>>,
    len: u64,
    last_id: StreamId,
    first_id: StreamId,
    max_deleted: StreamId,
    entries_added: u64,
    groups: OrdMap<Bytes, Group>,
}

/// A stream value. Cloning is O(1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream(Arc<Inner>);

/// An entry read out of a stream.
pub type OwnedEntry = (StreamId, Vec<(Bytes, Bytes)>);

fn owned(id: StreamId, fields: Fields<'_>) -> OwnedEntry {
    (
        id,
        fields
            .into_iter()
            .map(|(f, v)| (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v)))
            .collect(),
    )
}

/// Hands out a block's fields as slices of one copy of its buffer: one
/// allocation per block read instead of two per field.
struct BlockCopy<'b> {
    block: &'b Block,
    copy: Option<Bytes>,
}

impl<'b> BlockCopy<'b> {
    fn new(block: &'b Block) -> Self {
        BlockCopy { block, copy: None }
    }

    fn entry(&mut self, slot: &block::Slot) -> OwnedEntry {
        let buf = self.block.as_bytes();
        let copy = self.copy.get_or_insert_with(|| Bytes::copy_from_slice(buf));
        let base = buf.as_ptr() as usize;
        let cut = |part: &[u8]| {
            let at = part.as_ptr() as usize - base;
            copy.slice(at..at + part.len())
        };
        let fields = self.block.fields(slot);
        (
            slot.id,
            fields.into_iter().map(|(f, v)| (cut(f), cut(v))).collect(),
        )
    }
}

/// Where a block sits: the tail, or the tree under its first id.
#[derive(Clone, Copy)]
enum At {
    Tail,
    Tree(StreamId),
}

impl Inner {
    /// Puts `block` last, the previous tail joining the tree.
    fn push_tail(&mut self, block: Arc<Block>) {
        if let Some(mut old) = self.tail.replace(block) {
            // A full block takes no more entries: give back its slack,
            // unless a snapshot shares it (copying it to shrink would cost
            // more than the slack).
            if let Some(b) = Arc::get_mut(&mut old) {
                b.seal();
            }
            self.blocks.insert(old.first(), old);
        }
    }

    fn block_mut(&mut self, at: At) -> &mut Arc<Block> {
        match at {
            At::Tail => self.tail.as_mut().expect("a tail block"),
            At::Tree(key) => self.blocks.get_mut(&key).expect("a block at its key"),
        }
    }

    /// Drops the block at `at`; when it was the tail, the tree's last block
    /// takes its place.
    fn remove(&mut self, at: At) {
        match at {
            At::Tree(key) => {
                self.blocks.remove(&key);
            }
            At::Tail => {
                self.tail = self
                    .blocks
                    .get_max()
                    .map(|(k, _)| *k)
                    .and_then(|k| self.blocks.remove(&k));
            }
        }
    }

    /// The first block and where it sits.
    fn front(&self) -> Option<(At, &Arc<Block>)> {
        match self.blocks.get_min() {
            Some((k, b)) => Some((At::Tree(*k), b)),
            None => self.tail.as_ref().map(|b| (At::Tail, b)),
        }
    }
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    fn inner(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.0)
    }

    pub fn ptr_eq(&self, other: &Stream) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub fn len(&self) -> u64 {
        self.0.len
    }

    pub fn is_empty(&self) -> bool {
        self.0.len == 0
    }

    pub fn last_id(&self) -> StreamId {
        self.0.last_id
    }

    pub fn first_id(&self) -> StreamId {
        self.0.first_id
    }

    pub fn max_deleted(&self) -> StreamId {
        self.0.max_deleted
    }

    pub fn entries_added(&self) -> u64 {
        self.0.entries_added
    }

    /// Number of blocks (XINFO's `radix-tree-keys`).
    pub fn block_count(&self) -> usize {
        self.0.blocks.len() + usize::from(self.0.tail.is_some())
    }

    /// Every block, in id order.
    pub fn blocks(&self) -> impl DoubleEndedIterator<Item = &Block> {
        self.0
            .blocks
            .values()
            .chain(self.0.tail.as_ref())
            .map(|b| &**b)
    }

    /// Sets the metadata wholesale (XSETID, snapshot loading).
    pub fn set_meta(&mut self, last_id: StreamId, max_deleted: StreamId, entries_added: u64) {
        let inner = self.inner();
        inner.last_id = last_id;
        inner.max_deleted = max_deleted;
        inner.entries_added = entries_added;
    }

    /// Sets the recorded first id (snapshot loading; Redis keeps it as saved).
    pub fn set_first_id(&mut self, first: StreamId) {
        self.inner().first_id = first;
    }

    /// Appends an entry whose id is greater than [`Stream::last_id`].
    pub fn append(&mut self, id: StreamId, fields: &[(&[u8], &[u8])], limits: NodeLimits) {
        debug_assert!(id > self.0.last_id || self.0.entries_added == 0);
        let inner = self.inner();
        let max_bytes = match limits.max_bytes {
            0 => NODE_BYTES_CAP,
            b => b.min(NODE_BYTES_CAP),
        };
        // The tail, which the live stream usually owns alone: then it
        // changes in place.
        let room = inner.tail.as_ref().is_some_and(|b| {
            b.redis_bytes() + Block::raw_len(fields) < max_bytes
                && (limits.max_entries == 0 || b.total() < limits.max_entries)
        });
        match &mut inner.tail {
            Some(tail) if room => Arc::make_mut(tail).push(id, fields),
            _ => inner.push_tail(Arc::new(Block::new(id, fields))),
        }
        if inner.len == 0 {
            inner.first_id = id;
        }
        inner.len += 1;
        inner.last_id = id;
        inner.entries_added += 1;
    }

    /// Appends `block` whole, after every entry already here (loading a
    /// Redis RDB keeps Redis's nodes as they were, deleted entries and all).
    /// A block without live entries is dropped, as Redis drops such a node.
    /// The caller sets the metadata ([`Stream::set_meta`],
    /// [`Stream::set_first_id`]) once the blocks are in.
    pub fn push_block(&mut self, block: Block) {
        debug_assert!(self
            .0
            .tail
            .as_ref()
            .is_none_or(|b| b.last() < block.first()));
        if block.live() == 0 {
            return;
        }
        let inner = self.inner();
        inner.len += block.live() as u64;
        inner.push_tail(Arc::new(block));
    }

    /// The block holding `id`, if any could.
    fn block_of(&self, id: StreamId) -> Option<(At, &Arc<Block>)> {
        let found = match &self.0.tail {
            Some(t) if t.first() <= id => (At::Tail, t),
            _ => {
                let (k, b) = self.0.blocks.get_prev(&id)?;
                (At::Tree(*k), b)
            }
        };
        (found.1.last() >= id).then_some(found)
    }

    /// The entry `id`, if present.
    pub fn get(&self, id: StreamId) -> Option<OwnedEntry> {
        let (_, b) = self.block_of(id)?;
        let slot = b.slots().find(|s| s.id >= id)?;
        (slot.id == id && !slot.is_deleted()).then(|| owned(id, b.fields(&slot)))
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.block_of(id).is_some_and(|(_, b)| {
            b.slots()
                .find(|s| s.id >= id)
                .is_some_and(|s| s.id == id && !s.is_deleted())
        })
    }

    /// The id of the last live entry (Redis's `streamLastValidID`), 0-0 when empty.
    pub fn last_entry_id(&self) -> StreamId {
        self.blocks()
            .rev()
            .find_map(|b| b.live_ids().last())
            .unwrap_or(StreamId::MIN)
    }

    /// Every live entry, ascending.
    pub fn entries(&self) -> impl Iterator<Item = (StreamId, Fields<'_>)> {
        self.blocks().flat_map(|b| {
            b.slots()
                .filter(|s| !s.is_deleted())
                .map(move |s| (s.id, b.fields(&s)))
        })
    }

    /// Entries with `start <= id <= end`, ascending, at most `count` (0 = all).
    pub fn range(&self, start: StreamId, end: StreamId, count: usize) -> Vec<OwnedEntry> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let from = match self.0.blocks.get_prev(&start) {
            Some((k, _)) => *k,
            None => start,
        };
        let tail = self.0.tail.as_ref().filter(|t| t.first() <= end);
        for b in self.0.blocks.range(from..=end).map(|(_, b)| b).chain(tail) {
            if b.last() < start {
                continue;
            }
            let mut copy = BlockCopy::new(b);
            for slot in b.slots() {
                if slot.id > end {
                    return out;
                }
                if slot.id < start || slot.is_deleted() {
                    continue;
                }
                out.push(copy.entry(&slot));
                if count != 0 && out.len() >= count {
                    return out;
                }
            }
        }
        out
    }

    /// Entries with `start <= id <= end`, descending from `end`, at most
    /// `count` (0 = all).
    pub fn rev_range(&self, start: StreamId, end: StreamId, count: usize) -> Vec<OwnedEntry> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        let tail = self.0.tail.as_ref().filter(|t| t.first() <= end);
        for b in tail
            .into_iter()
            .chain(self.0.blocks.range(..=end).rev().map(|(_, b)| b))
        {
            if b.last() < start {
                break;
            }
            let slots: Vec<_> = b.slots().collect();
            let mut copy = BlockCopy::new(b);
            for slot in slots.iter().rev() {
                if slot.id > end || slot.is_deleted() {
                    continue;
                }
                if slot.id < start {
                    return out;
                }
                out.push(copy.entry(slot));
                if count != 0 && out.len() >= count {
                    return out;
                }
            }
        }
        out
    }

    /// Deletes entry `id`; returns whether it was there. Updates the length,
    /// the greatest deleted id and, if it was the first, the first id.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some(at) = self.block_of(id).map(|(at, _)| at) else {
            return false;
        };
        let inner = self.inner();
        let slot = inner.block_mut(at);
        if !Arc::make_mut(slot).delete(id) {
            return false;
        }
        if slot.live() == 0 {
            inner.remove(at);
        }
        inner.len -= 1;
        if id > inner.max_deleted {
            inner.max_deleted = id;
        }
        if id == inner.first_id {
            self.refresh_first_id();
        }
        true
    }

    /// Sets the first id to the first live entry's (0-0 when empty).
    fn refresh_first_id(&mut self) {
        let first = self
            .blocks()
            .find_map(|b| b.live_ids().next())
            .unwrap_or(StreamId::MIN);
        self.inner().first_id = first;
    }

    /// Trims as Redis's `streamTrim`: whole blocks from the front while they
    /// can go; then, unless `approx`, entries of the next block one by one.
    /// Returns how many entries were removed.
    pub fn trim(&mut self, trim: Trim) -> u64 {
        let mut deleted = 0u64;
        while let Some((at, entries, last)) = self
            .0
            .front()
            .map(|(at, b)| (at, b.live() as u64, b.last()))
        {
            if let TrimTo::MaxLen(max) = trim.to {
                if self.0.len <= max {
                    break;
                }
            }
            if trim.limit != 0 && deleted + entries > trim.limit {
                break;
            }
            let whole = match trim.to {
                TrimTo::MaxLen(max) => self.0.len - entries >= max,
                TrimTo::MinId(min) => last < min,
            };
            let inner = self.inner();
            if whole {
                inner.remove(at);
                inner.len -= entries;
                deleted += entries;
                continue;
            }
            if trim.approx {
                break;
            }
            let mut len = inner.len;
            let block = Arc::make_mut(inner.block_mut(at));
            let ids: Vec<StreamId> = block.live_ids().collect();
            for id in ids {
                let done = match trim.to {
                    TrimTo::MaxLen(max) => len <= max,
                    TrimTo::MinId(min) => id >= min,
                };
                if done {
                    break;
                }
                block.delete(id);
                len -= 1;
                deleted += 1;
            }
            let emptied = block.live() == 0;
            inner.len = len;
            if emptied {
                inner.remove(at);
            }
            break;
        }
        if deleted > 0 {
            self.refresh_first_id();
        }
        deleted
    }

    pub fn groups(&self) -> &OrdMap<Bytes, Group> {
        &self.0.groups
    }

    pub fn groups_mut(&mut self) -> &mut OrdMap<Bytes, Group> {
        &mut self.inner().groups
    }

    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.0.groups.get(name)
    }

    pub fn group_mut(&mut self, name: &[u8]) -> Option<&mut Group> {
        self.inner().groups.get_mut(name)
    }

    /// Redis's `streamEstimateDistanceFromFirstEverEntry`: the read counter
    /// at `id`, or [`INVALID_ENTRIES_READ`] when it cannot be known.
    pub fn estimate_entries_read(&self, id: StreamId) -> i64 {
        let s = &*self.0;
        if s.entries_added == 0 {
            return 0;
        }
        if s.len == 0 && id <= s.last_id {
            return s.entries_added as i64;
        }
        if id == s.last_id {
            return s.entries_added as i64;
        }
        if id > s.last_id {
            return INVALID_ENTRIES_READ;
        }
        if s.max_deleted.is_zero() || s.max_deleted < s.first_id {
            if id < s.first_id {
                return (s.entries_added - s.len) as i64;
            }
            if id == s.first_id {
                return (s.entries_added - s.len + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// Redis's `streamRangeHasTombstones` from `start` to the end.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        let s = &*self.0;
        if s.len == 0 || s.max_deleted.is_zero() || s.first_id > s.max_deleted {
            return false;
        }
        start <= s.max_deleted
    }

    /// A group's lag (XINFO GROUPS), `None` when unknown.
    pub fn lag(&self, group: &Group) -> Option<i64> {
        let added = self.0.entries_added as i64;
        if added == 0 {
            return Some(0);
        }
        if group.entries_read != INVALID_ENTRIES_READ && !self.has_tombstones_from(group.last_id) {
            return Some(added - group.entries_read);
        }
        match self.estimate_entries_read(group.last_id) {
            INVALID_ENTRIES_READ => None,
            read => Some(added - read),
        }
    }

    /// Advances group `name` past `id`, delivered now: its last id and read
    /// counter, as Redis's `streamReplyWithRange` does for each new entry.
    pub fn advance_group(&mut self, name: &[u8], id: StreamId) {
        let tombstones = self.has_tombstones_from(id);
        let estimate = self.estimate_entries_read(id);
        let added = self.0.entries_added;
        let Some(g) = self.group_mut(name) else {
            return;
        };
        if id <= g.last_id {
            return;
        }
        if g.entries_read != INVALID_ENTRIES_READ && !tombstones {
            g.entries_read += 1;
        } else if added != 0 {
            g.entries_read = estimate;
        }
        g.last_id = id;
    }
}

#[cfg(test)]
mod tests;
