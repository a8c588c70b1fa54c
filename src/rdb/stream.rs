//! Streams in Redis's RDB encoding, both ways: RDB types 15 (Redis 5 and
//! 6), 19 (7.0: first id, greatest deleted id, entries added, each group's
//! read counter) and 21 (7.2 and Valkey 8: each consumer's active time as
//! well) are read; type 19 is written, as redis-server 7.0 writes it.
//!
//! A stream is its nodes, then its metadata, then its consumer groups:
//!
//! ```text
//! [node count] ([master id: 16-byte string, big-endian ms, seq] [listpack string])*
//! [length] [last id ms] [last id seq]
//! 19, 21:  [first id ms] [first id seq] [max deleted ms] [max deleted seq] [entries added]
//! [group count] per group:
//!   [name] [last id ms] [last id seq]   19, 21: [entries read, -1 as 2^64-1]
//!   [PEL size] ([id: 16 raw bytes, big-endian] [delivery time: 8 bytes LE] [delivery count])*
//!   [consumer count] per consumer:
//!     [name] [seen time: 8 bytes LE]   21: [active time: 8 bytes LE]
//!     [PEL size] ([id: 16 raw bytes])*
//! ```
//!
//! (bracketed numbers are RDB lengths). Each node's listpack opens with a
//! master entry — live count, deleted count, the master field names, a 0 —
//! and holds its entries as flags (1 deleted, 2 same fields as the master),
//! the id's ms and seq differences from the master id, then the values
//! (same fields) or a field count and the pairs, then the entry's element
//! count. A node maps one to one onto a forkless [`Block`], whose layout
//! follows Redis's node, so the node boundaries and deleted entries survive
//! a load and an export.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use bytes::Bytes;
use imbl::OrdSet;

use super::kind;
use super::lzf::Compressor;
use super::packed::{BlobError, ListpackIter, ListpackWriter, LpItem};
use super::reader::{Input, RdbError};
use super::writer::{write_len, write_string};
use crate::keyspace::stream::{
    Block, Consumer, Group, Nack, Stream, StreamId, INVALID_ENTRIES_READ,
};

const DELETED: i64 = 1;
const SAME_FIELDS: i64 = 2;

fn node_err(what: impl Into<String>) -> BlobError {
    BlobError {
        kind: "stream node",
        what: what.into(),
    }
}

/// One element of a node: bytes of the listpack itself, or an integer's
/// text in the node's arena (start, end).
#[derive(Debug, Clone, Copy)]
enum Part<'a> {
    Blob(&'a [u8]),
    Arena(usize, usize),
}

fn part<'a>(item: LpItem<'a>, arena: &mut Vec<u8>) -> Part<'a> {
    match item {
        LpItem::Str(s) => Part::Blob(s),
        LpItem::Int(v) => {
            let start = arena.len();
            let _ = write!(arena, "{v}");
            Part::Arena(start, arena.len())
        }
    }
}

fn resolve<'a>(p: Part<'a>, arena: &'a [u8]) -> &'a [u8] {
    match p {
        Part::Blob(s) => s,
        Part::Arena(a, b) => &arena[a..b],
    }
}

/// Where one entry's elements are in the node's parts.
struct EntryAt {
    id: StreamId,
    deleted: bool,
    same: bool,
    /// Index of its first field (or, with the master's fields, value).
    first: usize,
    fields: usize,
}

/// A count read from a node, bounded by the node's size (each counted
/// element takes at least a byte), so it never sizes an allocation alone.
fn node_count(it: &mut ListpackIter<'_>, what: &str, blob_len: usize) -> Result<usize, BlobError> {
    let n = it.expect_int(what)?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= blob_len)
        .ok_or_else(|| node_err(format!("{what} {n} is out of range")))
}

/// Decodes one node's listpack, whose master id is `master`, into a block;
/// every id must come after `after`. Returns the block (which may hold only
/// deleted entries) and the greatest id in it.
pub fn block_from_node(
    master: StreamId,
    blob: &[u8],
    after: Option<StreamId>,
) -> Result<(Block, StreamId), BlobError> {
    // First pass: check the node's structure and gather its elements, the
    // integers' text in one arena; the second builds the entries without
    // an allocation per element.
    let mut it = ListpackIter::new(blob)?;
    let live_count = node_count(&mut it, "the live entry count", blob.len())?;
    let deleted_count = node_count(&mut it, "the deleted entry count", blob.len())?;
    let master_n = node_count(&mut it, "the master field count", blob.len())?;
    let mut arena = Vec::new();
    let mut parts = Vec::with_capacity(it.declared().min(blob.len()));
    for _ in 0..master_n {
        parts.push(part(it.expect("a master field")?, &mut arena));
    }
    if it.expect_int("the master entry's terminator")? != 0 {
        return Err(node_err("the master entry's terminator is not 0"));
    }
    let mut entries: Vec<EntryAt> = Vec::new();
    let mut prev = after;
    let mut widest = master_n;
    while let Some(flags) = it.next_item()? {
        let flags = flags
            .as_int()
            .filter(|f| (0..=DELETED | SAME_FIELDS).contains(f))
            .ok_or_else(|| node_err(format!("entry {} has unknown flags", entries.len())))?;
        let ms_diff = it.expect_int("an entry's ms difference")?;
        let seq_diff = it.expect_int("an entry's seq difference")?;
        // Redis subtracts and adds the differences in 64-bit wrapping arithmetic.
        let id = StreamId::new(
            master.ms.wrapping_add(ms_diff as u64),
            master.seq.wrapping_add(seq_diff as u64),
        );
        if prev.is_some_and(|p| id <= p) || id.is_zero() {
            return Err(node_err(format!("entry {id} is not after the one before")));
        }
        prev = Some(id);
        let same = flags & SAME_FIELDS != 0;
        let n = if same {
            master_n
        } else {
            node_count(&mut it, "an entry's field count", blob.len())?
        };
        if n == 0 {
            return Err(node_err(format!("entry {id} has no fields")));
        }
        widest = widest.max(n);
        let first = parts.len();
        for _ in 0..if same { n } else { 2 * n } {
            parts.push(part(it.expect("a field or value")?, &mut arena));
        }
        let elements = if same { n + 3 } else { 2 * n + 4 };
        if it.expect_int("an entry's element count")? != elements as i64 {
            return Err(node_err(format!("entry {id} has a wrong element count")));
        }
        entries.push(EntryAt {
            id,
            deleted: flags & DELETED != 0,
            same,
            first,
            fields: n,
        });
    }
    let deleted: Vec<StreamId> = entries.iter().filter(|e| e.deleted).map(|e| e.id).collect();
    let live_seen = entries.len() - deleted.len();
    if live_seen != live_count || deleted.len() != deleted_count {
        return Err(node_err(format!(
            "the master entry counts {live_count} live and {deleted_count} deleted entries, the node holds {live_seen} and {}",
            deleted.len()
        )));
    }
    let bytes = |p| resolve(p, &arena);
    let mut block: Option<Block> = None;
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::with_capacity(widest);
    for e in &entries {
        pairs.clear();
        for i in 0..e.fields {
            pairs.push(if e.same {
                (bytes(parts[i]), bytes(parts[e.first + i]))
            } else {
                (
                    bytes(parts[e.first + 2 * i]),
                    bytes(parts[e.first + 2 * i + 1]),
                )
            });
        }
        match block.as_mut() {
            None => block = Some(Block::new(e.id, &pairs)),
            Some(b) => b.push(e.id, &pairs),
        }
    }
    let Some(mut block) = block else {
        return Err(node_err("no entries"));
    };
    block.delete_ascending(&deleted);
    Ok((block, prev.unwrap_or(master)))
}

/// The listpack of the Redis node `block` stands for, as Redis's
/// `streamAppendItem` builds it entry by entry (and XDEL and XTRIM mark it).
pub fn node_of_block(block: &Block) -> Vec<u8> {
    let master = block.first();
    let mut slots = block.slots();
    let first = slots.next().expect("a block holds at least one entry");
    let master_fields: Vec<&[u8]> = block.fields(&first).iter().map(|(f, _)| *f).collect();
    let mut lp = ListpackWriter::new();
    lp.push_int(block.live() as i64);
    lp.push_int((block.total() - block.live()) as i64);
    lp.push_int(master_fields.len() as i64);
    for f in &master_fields {
        lp.push(f);
    }
    lp.push_int(0);
    for slot in block.slots() {
        let fields = block.fields(&slot);
        let same = fields.len() == master_fields.len()
            && fields.iter().zip(&master_fields).all(|((f, _), m)| f == m);
        let mut flags = 0;
        if slot.is_deleted() {
            flags |= DELETED;
        }
        if same {
            flags |= SAME_FIELDS;
        }
        lp.push_int(flags);
        lp.push_int(slot.id.ms.wrapping_sub(master.ms) as i64);
        lp.push_int(slot.id.seq.wrapping_sub(master.seq) as i64);
        if !same {
            lp.push_int(fields.len() as i64);
        }
        for (f, v) in &fields {
            if !same {
                lp.push(f);
            }
            lp.push(v);
        }
        let elements = if same {
            fields.len() + 3
        } else {
            2 * fields.len() + 4
        };
        lp.push_int(elements as i64);
    }
    lp.finish()
}

fn raw_id(id: StreamId) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&id.ms.to_be_bytes());
    out[8..].copy_from_slice(&id.seq.to_be_bytes());
    out
}

fn id_of_raw(raw: &[u8]) -> StreamId {
    let mut ms = [0u8; 8];
    let mut seq = [0u8; 8];
    ms.copy_from_slice(&raw[..8]);
    seq.copy_from_slice(&raw[8..16]);
    StreamId::new(u64::from_be_bytes(ms), u64::from_be_bytes(seq))
}

/// Appends the body of a type-19 stream value (what follows the type byte
/// and the key); `flush` is offered `out` after each node, to write it out
/// if it has grown.
pub fn write_stream(
    out: &mut Vec<u8>,
    lzf: &mut Compressor,
    s: &Stream,
    flush: &mut dyn FnMut(&mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    write_len(out, s.block_count() as u64);
    for block in s.blocks() {
        write_string(out, lzf, &raw_id(block.first()));
        write_string(out, lzf, &node_of_block(block));
        flush(out)?;
    }
    let id = |out: &mut Vec<u8>, id: StreamId| {
        write_len(out, id.ms);
        write_len(out, id.seq);
    };
    write_len(out, s.len());
    id(out, s.last_id());
    id(out, s.first_id());
    id(out, s.max_deleted());
    write_len(out, s.entries_added());
    write_len(out, s.groups().len() as u64);
    for (name, g) in s.groups() {
        write_string(out, lzf, name);
        id(out, g.last_id);
        // -1 ("unknown") goes out as 2^64 - 1, as Redis casts it.
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (pid, nack) in g.pel.iter() {
            out.extend_from_slice(&raw_id(*pid));
            out.extend_from_slice(&nack.delivery_time.to_le_bytes());
            write_len(out, nack.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in g.consumers.iter() {
            write_string(out, lzf, cname);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pending.len() as u64);
            for pid in c.pending.iter() {
                out.extend_from_slice(&raw_id(*pid));
            }
        }
        flush(out)?;
    }
    Ok(())
}

/// A Unix time in ms. Redis only ever writes clock readings; a negative one
/// is refused, so idle times (now minus it) cannot overflow.
fn ms_time<R: Read>(input: &mut Input<R>, what: &str) -> Result<i64, RdbError> {
    let at = input.offset;
    let b = input.take(8, what)?;
    let t = i64::from_le_bytes(b.try_into().expect("8 bytes"));
    if t < 0 {
        return Err(input.corrupt_at(at, format!("{what} {t} is before 1970")));
    }
    Ok(t)
}

fn read_id<R: Read>(input: &mut Input<R>, what: &str) -> Result<StreamId, RdbError> {
    let ms = input.len_plain(what)?;
    let seq = input.len_plain(what)?;
    Ok(StreamId::new(ms, seq))
}

fn shown(name: &[u8]) -> String {
    String::from_utf8_lossy(&name[..name.len().min(64)]).into_owned()
}

/// Reads a stream value of RDB type `t` (15, 19 or 21).
pub(super) fn read_stream<R: Read>(input: &mut Input<R>, t: u8) -> Result<Stream, RdbError> {
    let mut s = Stream::new();
    // A node takes at least its key (17 bytes) and a listpack (8).
    let nodes = input.count("stream node count", 25)?;
    let mut last_seen: Option<StreamId> = None;
    for _ in 0..nodes {
        let key_at = input.offset;
        let key = input.string("a stream node's master id")?;
        if key.len() != 16 {
            return Err(input.corrupt_at(
                key_at,
                format!("a stream node key has {} bytes, not 16", key.len()),
            ));
        }
        let master = id_of_raw(&key);
        let blob_at = input.offset;
        let blob = input.string("a stream node")?;
        let (block, last) = block_from_node(master, &blob, last_seen)
            .map_err(|e| input.corrupt_at(blob_at, e.to_string()))?;
        last_seen = Some(last);
        s.push_block(block);
    }
    let meta_at = input.offset;
    let length = input.len_plain("the stream length")?;
    if length != s.len() {
        return Err(input.corrupt_at(
            meta_at,
            format!(
                "the stream length is {length}, its nodes hold {} entries",
                s.len()
            ),
        ));
    }
    let last_id = read_id(input, "the last id")?;
    if last_seen.is_some_and(|l| l > last_id) {
        return Err(input.corrupt_at(
            meta_at,
            format!("the last id {last_id} is below an entry's"),
        ));
    }
    let (first_id, max_deleted, entries_added) = if t == kind::STREAM_LISTPACKS {
        // Redis 7 fills in what Redis 5 and 6 did not keep the same way:
        // the first live entry's id, or the greatest id when there is none.
        let first = s.entries().next().map_or(StreamId::MAX, |(id, _)| id);
        (first, StreamId::MIN, length)
    } else {
        let first = read_id(input, "the first id")?;
        let max_deleted = read_id(input, "the greatest deleted id")?;
        let added = input.len_plain("the count of entries added")?;
        if added < length || added > i64::MAX as u64 {
            return Err(input.corrupt_at(
                meta_at,
                format!("{added} entries added cannot leave {length}"),
            ));
        }
        (first, max_deleted, added)
    };
    s.set_meta(last_id, max_deleted, entries_added);
    s.set_first_id(first_id);

    let groups = input.count("consumer group count", 4)?;
    for _ in 0..groups {
        let group_at = input.offset;
        let name = Bytes::from(input.string("a consumer group name")?);
        if s.groups().contains_key(&name) {
            return Err(
                input.corrupt_at(group_at, format!("consumer group {:?} twice", shown(&name)))
            );
        }
        let last = read_id(input, "a group's last id")?;
        let entries_read = if t == kind::STREAM_LISTPACKS {
            s.estimate_entries_read(last)
        } else {
            let read_at = input.offset;
            match input.len_plain("a group's read counter")? {
                u64::MAX => INVALID_ENTRIES_READ,
                n if n <= i64::MAX as u64 => n as i64,
                n => {
                    return Err(input.corrupt_at(
                        read_at,
                        format!("a group's read counter {n} is out of range"),
                    ))
                }
            }
        };
        let mut group = Group::new(last, entries_read);
        // The PEL first, its owners named by the consumers after it.
        let pel_n = input.count("pending entry count", 25)?;
        let mut pel: BTreeMap<StreamId, (i64, u64, Option<Bytes>)> = BTreeMap::new();
        for _ in 0..pel_n {
            let nack_at = input.offset;
            let id = id_of_raw(&input.take(16, "a pending entry's id")?);
            let time = ms_time(input, "a delivery time")?;
            let count = input.len_plain("a delivery count")?;
            if count > i64::MAX as u64 {
                // Redis replies with it as a signed number; nothing real gets there.
                return Err(
                    input.corrupt_at(nack_at, format!("delivery count {count} is out of range"))
                );
            }
            if pel.insert(id, (time, count, None)).is_some() {
                return Err(input.corrupt_at(nack_at, format!("pending entry {id} twice")));
            }
        }
        let consumers = input.count("consumer count", 10)?;
        for _ in 0..consumers {
            let consumer_at = input.offset;
            let cname = Bytes::from(input.string("a consumer name")?);
            if group.consumers.contains_key(&cname) {
                return Err(
                    input.corrupt_at(consumer_at, format!("consumer {:?} twice", shown(&cname)))
                );
            }
            let seen_time = ms_time(input, "a consumer's seen time")?;
            if t == kind::STREAM_LISTPACKS_3 {
                // The active time of Redis 7.2; forkless keeps Redis 7.0's seen time only.
                ms_time(input, "a consumer's active time")?;
            }
            let n = input.count("consumer pending entry count", 16)?;
            let mut pending = OrdSet::new();
            for _ in 0..n {
                let ref_at = input.offset;
                let id = id_of_raw(&input.take(16, "a consumer's pending entry")?);
                match pel.get_mut(&id) {
                    Some((_, _, owner @ None)) => *owner = Some(cname.clone()),
                    Some(_) => {
                        return Err(
                            input.corrupt_at(ref_at, format!("pending entry {id} has two owners"))
                        )
                    }
                    None => {
                        return Err(input.corrupt_at(
                            ref_at,
                            format!("consumer entry {id} is not in the group's PEL"),
                        ))
                    }
                }
                pending.insert(id);
            }
            group
                .consumers
                .insert(cname, Consumer { seen_time, pending });
        }
        for (id, (delivery_time, delivery_count, owner)) in pel {
            let Some(consumer) = owner else {
                return Err(input.corrupt_at(
                    group_at,
                    format!(
                        "pending entry {id} of group {:?} has no consumer",
                        shown(&name)
                    ),
                ));
            };
            group.pel.insert(
                id,
                Nack {
                    consumer,
                    delivery_time,
                    delivery_count,
                },
            );
        }
        s.groups_mut().insert(name, group);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pairs<'a>(items: &'a [(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        items
            .iter()
            .map(|(f, v)| (f.as_bytes(), v.as_bytes()))
            .collect()
    }

    /// The node redis-server 7.0.15 writes for `XADD s 1-1 f v`, `1-2 f w`,
    /// `5-0 g 1`, then `XDEL s 1-1`.
    const REDIS_NODE: &[u8] = b"8\x00\x00\x00\x16\x00\x02\x01\x01\x01\x01\x01\x81f\x02\x00\x01\x03\x01\x00\x01\x00\x01\x81v\x02\x04\x01\x02\x01\x00\x01\x01\x01\x81w\x02\x04\x01\x00\x01\x04\x01\xdf\xff\x02\x01\x01\x81g\x02\x01\x01\x06\x01\xff";

    #[test]
    fn a_redis_node_decodes_and_encodes_back_to_the_same_bytes() {
        let (block, last) = block_from_node(StreamId::new(1, 1), REDIS_NODE, None).unwrap();
        assert_eq!(last, StreamId::new(5, 0));
        assert_eq!((block.live(), block.total()), (2, 3));
        let live: Vec<_> = block.live_ids().collect();
        assert_eq!(live, vec![StreamId::new(1, 2), StreamId::new(5, 0)]);
        assert_eq!(node_of_block(&block), REDIS_NODE);

        let mut b = Block::new(StreamId::new(1, 1), &pairs(&[("f", "v")]));
        b.push(StreamId::new(1, 2), &pairs(&[("f", "w")]));
        b.push(StreamId::new(5, 0), &pairs(&[("g", "1")]));
        b.delete(StreamId::new(1, 1));
        assert_eq!(node_of_block(&b), REDIS_NODE);
    }

    #[test]
    fn damaged_nodes_are_refused() {
        let master = StreamId::new(1, 1);
        // Ids must rise across nodes.
        assert!(block_from_node(master, REDIS_NODE, Some(StreamId::new(1, 5))).is_err());
        // A wrong live count in the master entry.
        let mut bad = REDIS_NODE.to_vec();
        bad[6] = 0x03;
        assert!(block_from_node(master, &bad, None).is_err());
        for n in 0..REDIS_NODE.len() {
            let _ = block_from_node(master, &REDIS_NODE[..n], None);
        }
    }

    #[test]
    fn large_and_integer_values_round_trip() {
        let big = "x".repeat(5000);
        let mut b = Block::new(StreamId::new(10, 0), &pairs(&[("a", "1"), ("b", &big)]));
        b.push(StreamId::new(10, 7), &pairs(&[("a", "-70000"), ("b", "")]));
        b.push(StreamId::new(u64::MAX, 0), &pairs(&[("12", "x")]));
        let node = node_of_block(&b);
        let (back, last) = block_from_node(StreamId::new(10, 0), &node, None).unwrap();
        assert_eq!(back, b);
        assert_eq!(last, StreamId::new(u64::MAX, 0));
    }

    fn field() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            any::<i64>().prop_map(|v| v.to_string().into_bytes()),
            (0usize..3).prop_map(|n| format!("f{n}").into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..5000),
        ]
    }

    proptest! {
        /// The block's account of Redis's listpack size (what the node byte
        /// limit is checked against) is the size of the node written out.
        #[test]
        fn redis_bytes_is_the_written_node_size(
            entries in proptest::collection::vec(
                (0u64..3, 0u64..300, proptest::collection::vec((field(), field()), 1..4), any::<bool>()),
                1..40,
            ),
        ) {
            let mut id = StreamId::new(1000, 5);
            let mut block: Option<Block> = None;
            let mut to_delete = Vec::new();
            for (dms, dseq, fields, delete) in entries {
                id = if dms == 0 {
                    StreamId::new(id.ms, id.seq + 1 + dseq)
                } else {
                    StreamId::new(id.ms + dms, dseq)
                };
                let pairs: Vec<(&[u8], &[u8])> =
                    fields.iter().map(|(f, v)| (&f[..], &v[..])).collect();
                match block.as_mut() {
                    None => block = Some(Block::new(id, &pairs)),
                    Some(b) => b.push(id, &pairs),
                }
                if delete {
                    to_delete.push(id);
                }
                let b = block.as_ref().unwrap();
                prop_assert_eq!(b.redis_bytes(), node_of_block(b).len());
            }
            let mut b = block.unwrap();
            for id in to_delete {
                b.delete(id);
                if b.live() > 0 {
                    prop_assert_eq!(b.redis_bytes(), node_of_block(&b).len());
                }
            }
        }
    }
}
