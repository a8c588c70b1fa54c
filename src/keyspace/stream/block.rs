//! A block of consecutive stream entries in one flat buffer: the counterpart
//! of a Redis stream node's listpack.
//!
//! Layout (varints are unsigned LEB128, see [`crate::keyspace::listpack`]):
//!
//! ```text
//! [master field count] ([field len] [field bytes])*      the master fields
//! entry*:
//!   [flags] [ms - first.ms] [seq - first.seq, or seq if ms differs]
//!   SAME flag:  ([value len] [value bytes])  per master field
//!   otherwise:  [pair count] ([field len] [field] [value len] [value])*
//! ```
//!
//! The master fields are the first entry's; later entries with the very same
//! field names store only their values, so a 2-field entry costs its values'
//! bytes and about 6 more. A deleted entry keeps its bytes and gets the
//! DELETED flag (as Redis marks it), so deletion never moves bytes; the block
//! is dropped when its last live entry goes.

use super::id::StreamId;
use crate::keyspace::listpack::{read_varint, write_varint};

const DELETED: u8 = 1;
const SAME: u8 = 2;

/// One entry's fields and values, borrowed from its block.
pub type Fields<'a> = Vec<(&'a [u8], &'a [u8])>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The first entry's id (the block's key in the stream's map).
    first: StreamId,
    /// The last entry appended, deleted or not.
    last: StreamId,
    /// Entries not deleted.
    live: u32,
    /// Entries appended, deleted ones included (what the node size limit counts).
    total: u32,
    /// Where the entries start, after the master fields.
    entries_at: u32,
    /// The bytes of Redis's listpack for this node, but for the header, the
    /// end marker and the live and deleted counts (see [`Block::redis_bytes`]).
    lp_rest: u32,
    buf: Vec<u8>,
}

/// Where one entry sits in its block.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub id: StreamId,
    /// Offset of the flags byte.
    at: usize,
    /// Offset of the field data.
    data: usize,
    flags: u8,
}

impl Slot {
    pub fn is_deleted(&self) -> bool {
        self.flags & DELETED != 0
    }
}

fn read(buf: &[u8], at: &mut usize) -> usize {
    let (v, n) = read_varint(&buf[*at..]).expect("a block holds the varints it wrote");
    *at += n;
    v
}

fn read_bytes<'a>(buf: &'a [u8], at: &mut usize) -> &'a [u8] {
    let len = read(buf, at);
    let b = &buf[*at..*at + len];
    *at += len;
    b
}

/// Bytes an integer takes in a listpack, back length included (Redis's
/// `lpEncodeGetType` sizes; the back length of entries this small is 1).
fn lp_int_len(v: i64) -> usize {
    1 + match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8_388_608..=8_388_607 => 4,
        -2_147_483_648..=2_147_483_647 => 5,
        _ => 9,
    }
}

/// Bytes a string takes in a listpack: as an integer if it is a canonical
/// one, else its header, its bytes and its back length.
fn lp_str_len(s: &[u8]) -> usize {
    if let Some(v) = crate::numbers::parse_i64_strict(s) {
        return lp_int_len(v);
    }
    let entry = s.len()
        + match s.len() {
            0..=63 => 1,
            64..=4095 => 2,
            _ => 5,
        };
    let back = match entry {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2_097_150 => 3,
        2_097_151..=268_435_454 => 4,
        _ => 5,
    };
    entry + back
}

fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_varint(b.len(), out);
    out.extend_from_slice(b);
}

impl Block {
    /// A block whose first entry is `id` with `fields`; its names become the
    /// master fields.
    pub fn new(id: StreamId, fields: &[(&[u8], &[u8])]) -> Block {
        let mut buf = Vec::with_capacity(64);
        write_varint(fields.len(), &mut buf);
        for (f, _) in fields {
            put_bytes(f, &mut buf);
        }
        let entries_at = buf.len() as u32;
        let lp_rest = lp_int_len(fields.len() as i64)
            + fields.iter().map(|(f, _)| lp_str_len(f)).sum::<usize>()
            + lp_int_len(0);
        let mut block = Block {
            first: id,
            last: id,
            live: 0,
            total: 0,
            entries_at,
            lp_rest: lp_rest as u32,
            buf,
        };
        block.push(id, fields);
        block
    }

    pub fn first(&self) -> StreamId {
        self.first
    }

    pub fn last(&self) -> StreamId {
        self.last
    }

    pub fn live(&self) -> usize {
        self.live as usize
    }

    /// Entries appended, deleted ones included.
    pub fn total(&self) -> usize {
        self.total as usize
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// The buffer; readers copy it once and slice fields out of the copy.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Heap bytes held (for MEMORY USAGE).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Gives back the slack of a block that will take no more entries.
    pub fn seal(&mut self) {
        self.buf.shrink_to_fit();
    }

    fn same_as_master(&self, fields: &[(&[u8], &[u8])]) -> bool {
        let mut at = 0;
        if read(&self.buf, &mut at) != fields.len() {
            return false;
        }
        fields
            .iter()
            .all(|(f, _)| read_bytes(&self.buf, &mut at) == *f)
    }

    /// The size of the listpack Redis would hold for this node (its
    /// `lpBytes`), which Redis's `stream-node-max-bytes` limit is checked
    /// against: so nodes split where Redis splits them, and an RDB export
    /// has Redis's nodes.
    pub fn redis_bytes(&self) -> usize {
        let deleted = self.total - self.live;
        7 + lp_int_len(i64::from(self.live))
            + lp_int_len(i64::from(deleted))
            + self.lp_rest as usize
    }

    /// What Redis weighs an entry by against the byte limit: its fields'
    /// and values' lengths.
    pub fn raw_len(fields: &[(&[u8], &[u8])]) -> usize {
        fields.iter().map(|(f, v)| f.len() + v.len()).sum()
    }

    /// Appends an entry; `id` must be greater than every id in the block.
    pub fn push(&mut self, id: StreamId, fields: &[(&[u8], &[u8])]) {
        debug_assert!(self.total == 0 || id > self.last);
        let same = self.same_as_master(fields);
        // Redis's entry: flags, the id's differences from the master id (the
        // seq one even when the ms differ), the field count and names unless
        // they are the master's, the values, the element count.
        let mut lp = lp_int_len(if same { 2 } else { 0 })
            + lp_int_len(id.ms.wrapping_sub(self.first.ms) as i64)
            + lp_int_len(id.seq.wrapping_sub(self.first.seq) as i64)
            + fields.iter().map(|(_, v)| lp_str_len(v)).sum::<usize>();
        let elements = if same {
            fields.len() + 3
        } else {
            lp += lp_int_len(fields.len() as i64)
                + fields.iter().map(|(f, _)| lp_str_len(f)).sum::<usize>();
            2 * fields.len() + 4
        };
        lp += lp_int_len(elements as i64);
        self.lp_rest = self.lp_rest.saturating_add(lp as u32);
        let buf = &mut self.buf;
        buf.push(if same { SAME } else { 0 });
        let dms = id.ms - self.first.ms;
        write_varint(dms as usize, buf);
        let seq = if dms == 0 {
            id.seq - self.first.seq
        } else {
            id.seq
        };
        write_varint(seq as usize, buf);
        if same {
            for (_, v) in fields {
                put_bytes(v, buf);
            }
        } else {
            write_varint(fields.len(), buf);
            for (f, v) in fields {
                put_bytes(f, buf);
                put_bytes(v, buf);
            }
        }
        self.last = id;
        self.live += 1;
        self.total += 1;
    }

    /// Every entry's slot, deleted ones included, in id order.
    pub fn slots(&self) -> Slots<'_> {
        Slots {
            block: self,
            at: self.entries_at as usize,
        }
    }

    /// Decodes the fields of the entry at `slot`.
    pub fn fields(&self, slot: &Slot) -> Fields<'_> {
        let buf = &self.buf[..];
        let mut at = slot.data;
        if slot.flags & SAME != 0 {
            let mut m = 0;
            let n = read(buf, &mut m);
            (0..n)
                .map(|_| (read_bytes(buf, &mut m), read_bytes(buf, &mut at)))
                .collect()
        } else {
            let n = read(buf, &mut at);
            (0..n)
                .map(|_| (read_bytes(buf, &mut at), read_bytes(buf, &mut at)))
                .collect()
        }
    }

    fn skip_fields(&self, flags: u8, at: &mut usize) {
        let buf = &self.buf[..];
        let n = if flags & SAME != 0 {
            read(buf, &mut 0)
        } else {
            read(buf, at) * 2
        };
        for _ in 0..n {
            let len = read(buf, at);
            *at += len;
        }
    }

    /// Marks entry `id` deleted; returns whether it was live here.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if id < self.first || id > self.last {
            return false;
        }
        let Some(slot) = self.slots().find(|s| s.id >= id) else {
            return false;
        };
        if slot.id != id || slot.is_deleted() {
            return false;
        }
        self.buf[slot.at] |= DELETED;
        self.live -= 1;
        true
    }

    /// Marks the entries `ids` (ascending) deleted in one pass over the
    /// block (loading a node with many deleted entries stays linear);
    /// returns how many of them were live here.
    pub fn delete_ascending(&mut self, ids: &[StreamId]) -> usize {
        if ids.is_empty() {
            return 0;
        }
        let mut marks = Vec::new();
        let mut want = ids.iter().copied().peekable();
        for slot in self.slots() {
            while want.next_if(|&id| id < slot.id).is_some() {}
            if want.next_if_eq(&slot.id).is_some() && !slot.is_deleted() {
                marks.push(slot.at);
            }
        }
        for &at in &marks {
            self.buf[at] |= DELETED;
        }
        self.live -= marks.len() as u32;
        marks.len()
    }

    /// The live entries' ids, in order.
    pub fn live_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.slots().filter(|s| !s.is_deleted()).map(|s| s.id)
    }
}

/// Walks a block's entries front to back.
pub struct Slots<'a> {
    block: &'a Block,
    at: usize,
}

impl Iterator for Slots<'_> {
    type Item = Slot;

    fn next(&mut self) -> Option<Slot> {
        let b = self.block;
        if self.at >= b.buf.len() {
            return None;
        }
        let at = self.at;
        let flags = b.buf[at];
        let mut p = at + 1;
        let dms = read(&b.buf, &mut p) as u64;
        let seq = read(&b.buf, &mut p) as u64;
        let id = if dms == 0 {
            StreamId::new(b.first.ms, b.first.seq + seq)
        } else {
            StreamId::new(b.first.ms + dms, seq)
        };
        let data = p;
        b.skip_fields(flags, &mut p);
        self.at = p;
        Some(Slot {
            id,
            at,
            data,
            flags,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_fields_are_shared_and_others_kept_whole() {
        let a: &[(&[u8], &[u8])] = &[(b"f1", b"v1"), (b"f2", b"v2")];
        let mut b = Block::new(StreamId::new(5, 1), a);
        let one = b.byte_len();
        b.push(StreamId::new(5, 2), &[(b"f1", b"x"), (b"f2", b"y")]);
        b.push(StreamId::new(9, 0), &[(b"other", b"z")]);
        assert!(b.byte_len() - one < 20);
        let all: Vec<_> = b.slots().map(|s| (s.id, b.fields(&s))).collect();
        assert_eq!(all[0].0, StreamId::new(5, 1));
        assert_eq!(all[1].1, vec![(&b"f1"[..], &b"x"[..]), (b"f2", b"y")]);
        assert_eq!(
            all[2],
            (StreamId::new(9, 0), vec![(&b"other"[..], &b"z"[..])])
        );
        assert!(b.delete(StreamId::new(5, 2)));
        assert!(!b.delete(StreamId::new(5, 2)));
        assert!(!b.delete(StreamId::new(6, 0)));
        assert_eq!(b.live(), 2);
        assert_eq!(b.total(), 3);
        assert_eq!(
            b.live_ids().collect::<Vec<_>>(),
            vec![StreamId::new(5, 1), StreamId::new(9, 0)]
        );
    }

    #[test]
    fn delete_ascending_marks_in_one_pass() {
        let f: &[(&[u8], &[u8])] = &[(b"f", b"v")];
        let mut b = Block::new(StreamId::new(1, 0), f);
        for ms in 2..=6 {
            b.push(StreamId::new(ms, 0), f);
        }
        assert!(b.delete(StreamId::new(4, 0)));
        let ids = [0, 2, 4, 5, 9].map(|ms| StreamId::new(ms, 0));
        assert_eq!(b.delete_ascending(&ids), 2);
        assert_eq!(b.live(), 3);
        let live: Vec<u64> = b.live_ids().map(|id| id.ms).collect();
        assert_eq!(live, vec![1, 3, 6]);
    }
}
