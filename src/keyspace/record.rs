//! One key as a database map stores it: a [`Record`].
//!
//! Most keys are small: a short key, a short string or a small flat collection.
//! Those are *packed*: header, key bytes and value bytes in a single allocation
//! that the map slot points to, as Redis's embstr keeps its object header and
//! string together. Packed today: strings up to [`PACKED_STR_MAX`] bytes,
//! listpack hashes whose key and listpack fit [`PACKED_HASH_MAX`] bytes and
//! intset sets whose key and intset fit [`PACKED_SET_MAX`] bytes, flat
//! sorted sets whose key and buffer fit [`PACKED_ZSET_MAX`] bytes, and lists
//! of one chunk whose key and chunk fit [`PACKED_LIST_MAX`] bytes. A
//! packed record is immutable; a write builds a new one. Large
//! values (long strings, lists, collections in their tree form) are *boxed*:
//! the key and an [`Entry`] behind an `Arc`, changed in place while only the live
//! keyspace holds it.
//!
//! A record never borrows from a network buffer: packing copies the bytes.

use std::sync::Arc;

use bytes::Bytes;
use triomphe::ThinArc;

use super::access::Access;
use super::champ::MapItem;
use super::listpack::Listpack;
use super::set::Set;
use super::zset::flat::Flat;
use super::zset::ZSet;
use super::{Entry, Hash, List, Value};
use crate::errors::CommandError;

/// Longest string value kept in a packed record; longer ones are boxed so that
/// reads share their bytes instead of copying them.
pub const PACKED_STR_MAX: usize = 256;

/// Most bytes of key plus listpack a packed hash record holds. Every read of a
/// packed hash decodes (copies) its listpack, so only small ones are packed
/// (about twenty short pairs); larger listpacks stay boxed and reads share them.
pub const PACKED_HASH_MAX: usize = 512;

/// Most bytes of key plus intset a packed set record holds (an intset of up
/// to ~250 small members), for the same reason; a larger intset stays boxed,
/// where a write changes it in place.
pub const PACKED_SET_MAX: usize = 512;

/// Most bytes of key plus flat buffer a packed sorted set record holds
/// (about twenty short members), for the same reason as hashes.
pub const PACKED_ZSET_MAX: usize = 512;

/// Most bytes of key plus chunk a packed list record holds (about a hundred
/// short elements), for the same reason as hashes: Redis keeps such a list
/// in one listpack, which is what makes many small lists cheap.
pub const PACKED_LIST_MAX: usize = 512;

/// What a packed record's value bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum PackedKind {
    Str = 0,
    /// A hash's listpack bytes ([`Listpack::as_bytes`]).
    HashListpack = 1,
    /// A non-empty set's intset bytes ([`Set::intset_bytes`]).
    SetIntset = 2,
    /// A sorted set's flat buffer ([`Flat::as_bytes`]).
    ZSetFlat = 3,
    /// A non-empty list's single chunk ([`List::packed_bytes`]).
    ListChunk = 4,
}

impl PackedKind {
    fn from_byte(b: u8) -> PackedKind {
        match b & !HAS_EXPIRY {
            0 => PackedKind::Str,
            1 => PackedKind::HashListpack,
            2 => PackedKind::SetIntset,
            3 => PackedKind::ZSetFlat,
            4 => PackedKind::ListChunk,
            other => unreachable!("packed kind {other} is never written"),
        }
    }
}

/// Set in the kind byte when an expiry follows the key length.
const HAS_EXPIRY: u8 = 0x80;

/// A packed record: one allocation of a reference count, a length, and
/// `[kind | HAS_EXPIRY?] [key length, LEB128] [expire_at, 8 bytes LE, if flagged]
/// [key] [value]`. Every field lives in the bytes (no fixed header), so a
/// 16-byte key with a 100-byte value takes 134 bytes: a 144-byte heap chunk.
#[derive(Clone)]
struct Packed(ThinArc<(), u8>);

impl Packed {
    fn new(kind: PackedKind, key: &[u8], payload: &[u8], expire_at: Option<i64>) -> Packed {
        let mut head = [0u8; 1 + 10 + 8];
        head[0] = kind as u8 | if expire_at.is_some() { HAS_EXPIRY } else { 0 };
        let mut n = 1;
        let mut len = key.len() as u64;
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            head[n] = byte | if len != 0 { 0x80 } else { 0 };
            n += 1;
            if len == 0 {
                break;
            }
        }
        if let Some(t) = expire_at {
            head[n..n + 8].copy_from_slice(&t.to_le_bytes());
            n += 8;
        }
        // Everything side by side, so the record is made with one copy.
        let total = n + key.len() + payload.len();
        let mut stack = [0u8; 512];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if total <= stack.len() {
            &mut stack[..total]
        } else {
            heap.resize(total, 0);
            &mut heap
        };
        buf[..n].copy_from_slice(&head[..n]);
        buf[n..n + key.len()].copy_from_slice(key);
        buf[n + key.len()..].copy_from_slice(payload);
        Packed(ThinArc::from_header_and_slice((), buf))
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        &self.0.slice
    }

    fn kind(&self) -> PackedKind {
        PackedKind::from_byte(self.bytes()[0])
    }

    /// Where the key starts and where it ends.
    #[inline]
    fn key_span(&self) -> (usize, usize) {
        let b = self.bytes();
        let (mut len, mut shift, mut at) = (0usize, 0, 1);
        loop {
            let byte = b[at];
            at += 1;
            len |= ((byte & 0x7f) as usize) << shift;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        if b[0] & HAS_EXPIRY != 0 {
            at += 8;
        }
        (at, at + len)
    }

    #[inline]
    fn key(&self) -> &[u8] {
        let (start, end) = self.key_span();
        &self.bytes()[start..end]
    }

    fn payload(&self) -> &[u8] {
        &self.bytes()[self.key_span().1..]
    }

    fn expire_at(&self) -> Option<i64> {
        let b = self.bytes();
        if b[0] & HAS_EXPIRY == 0 {
            return None;
        }
        let start = self.key_span().0 - 8;
        let mut t = [0u8; 8];
        t.copy_from_slice(&b[start..start + 8]);
        Some(i64::from_le_bytes(t))
    }

    fn with_expire(&self, expire_at: Option<i64>) -> Packed {
        Packed::new(self.kind(), self.key(), self.payload(), expire_at)
    }

    /// Overwrites the value bytes with `payload` of the same length, if no
    /// one else holds this record (a snapshot's copy must not change).
    fn overwrite_payload(&mut self, payload: &[u8]) -> bool {
        let start = self.key_span().1;
        if self.bytes().len() - start != payload.len() {
            return false;
        }
        self.0
            .with_arc_mut(|arc| match triomphe::Arc::get_mut(arc) {
                Some(block) => {
                    block.slice_mut()[start..].copy_from_slice(payload);
                    true
                }
                None => false,
            })
    }

    fn ptr_eq(&self, other: &Packed) -> bool {
        self.0.ptr() == other.0.ptr()
    }
}

/// A large value with its key.
#[derive(Debug, Clone)]
struct BoxedRecord {
    key: Box<[u8]>,
    entry: Entry,
}

/// A record's value as stored ([`Record::view`]).
#[derive(Debug, Clone, Copy)]
pub enum View<'a> {
    Str(&'a [u8]),
    HashListpack(&'a [u8]),
    SetIntset(&'a [u8]),
    ZSetFlat(&'a [u8]),
    ListChunk(&'a [u8]),
    Boxed(&'a Value),
}

/// One key, its value and its expiry (see the module docs).
#[derive(Clone)]
pub struct Record(Repr);

/// Each variant carries the key's access word ([`Access`]) in what would
/// otherwise be the padding after the tag.
#[derive(Clone)]
enum Repr {
    Packed(Packed, Access),
    Boxed(Arc<BoxedRecord>, Access),
}

// A map slot holding a record stays two words.
const _: () = assert!(std::mem::size_of::<Record>() == 16);

impl MapItem for Record {
    #[inline]
    fn key(&self) -> &[u8] {
        Record::key(self)
    }

    /// The record's first bytes: its head and (mostly) its key.
    #[inline]
    fn prefetch(&self) {
        let addr = match &self.0 {
            Repr::Packed(p, _) => p.0.ptr() as *const u8,
            Repr::Boxed(b, _) => Arc::as_ptr(b) as *const u8,
        };
        super::champ::prefetch_addr(addr);
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("key", &Bytes::copy_from_slice(self.key()))
            .field("entry", &self.to_entry())
            .finish()
    }
}

impl Record {
    #[inline]
    pub fn key(&self) -> &[u8] {
        match &self.0 {
            Repr::Packed(p, _) => p.key(),
            Repr::Boxed(b, _) => &b.key,
        }
    }

    /// The record for `key` holding `value`, packed when it is small enough.
    pub fn new(key: &[u8], value: Value, expire_at: Option<i64>) -> Record {
        match Record::packed_payload(key, &value) {
            Some((kind, payload)) => Record::packed(key, kind, payload, expire_at),
            None => Record::boxed(key, Entry { value, expire_at }),
        }
    }

    /// What a packed record of `value` under `key` would hold, if it is small enough.
    fn packed_payload<'v>(key: &[u8], value: &'v Value) -> Option<(PackedKind, &'v [u8])> {
        if key.len() > u32::MAX as usize {
            return None;
        }
        match value {
            Value::Str(s) if s.len() <= PACKED_STR_MAX => Some((PackedKind::Str, s)),
            Value::Hash(h) => h
                .listpack()
                .filter(|lp| key.len() + lp.byte_len() <= PACKED_HASH_MAX)
                .map(|lp| (PackedKind::HashListpack, lp.as_bytes())),
            // An empty set is about to be filled or deleted: not worth packing.
            Value::Set(s) if !s.is_empty() => s
                .intset_bytes()
                .filter(|b| key.len() + b.len() <= PACKED_SET_MAX)
                .map(|b| (PackedKind::SetIntset, b)),
            // Empty too, as a hash: a new key is filled by the command that
            // made it, which unpacks it and has it packed again after.
            Value::ZSet(z) => z
                .flat()
                .filter(|f| key.len() + f.byte_len() <= PACKED_ZSET_MAX)
                .map(|f| (PackedKind::ZSetFlat, f.as_bytes())),
            Value::List(l) => l
                .packed_bytes()
                .filter(|b| key.len() + b.len() <= PACKED_LIST_MAX)
                .map(|b| (PackedKind::ListChunk, b)),
            _ => None,
        }
    }

    fn packed(key: &[u8], kind: PackedKind, payload: &[u8], expire_at: Option<i64>) -> Record {
        Record(Repr::Packed(
            Packed::new(kind, key, payload, expire_at),
            Access::default(),
        ))
    }

    fn boxed(key: &[u8], mut entry: Entry) -> Record {
        // A string parsed straight from a request is a slice of the
        // connection's read buffer: stored as it is, its bytes would keep
        // that whole buffer alive. A string the server built is its own.
        if let Value::Str(s) = &entry.value {
            if !s.is_unique() {
                entry.value = Value::Str(Bytes::copy_from_slice(s));
            }
        }
        Record(Repr::Boxed(
            Arc::new(BoxedRecord {
                key: key.into(),
                entry,
            }),
            Access::default(),
        ))
    }

    /// The heap bytes this record holds: exact for a packed record; for a
    /// boxed one its box, key and string bytes, and a flat 32 bytes per
    /// element of a collection (an estimate: eviction and the pinned-memory
    /// figure use it, never the data).
    pub fn footprint(&self) -> usize {
        use crate::alloc_count::usable_size;
        match &self.0 {
            Repr::Packed(p, _) => usable_size(16 + p.bytes().len(), 8),
            Repr::Boxed(b, _) => {
                let value = match &b.entry.value {
                    Value::Str(s) => usable_size(s.len(), 8),
                    Value::List(l) => l.heap_bytes(|n| n),
                    Value::Hash(h) => h.len() * 32,
                    Value::Set(s) => s.len() * 32,
                    Value::ZSet(z) => z.len() * 32,
                    Value::Stream(x) => x.len() as usize * 32,
                };
                usable_size(16 + std::mem::size_of::<BoxedRecord>(), 8)
                    + usable_size(b.key.len(), 8)
                    + value
            }
        }
    }

    /// Whether another holder (a snapshot's map node) shares this record.
    fn is_shared(&self) -> bool {
        match &self.0 {
            Repr::Packed(p, _) => ThinArc::strong_count(&p.0) > 1,
            Repr::Boxed(b, _) => Arc::strong_count(b) > 1,
        }
    }

    /// Called as the live keyspace drops this record: if a snapshot still
    /// holds it, its bytes are pinned ([`super::pinned`]), not freed.
    #[inline]
    pub fn release_shared(&self) {
        if super::pinned::snapshot_running() && self.is_shared() {
            super::pinned::add(self.footprint());
        }
    }

    /// The key's access word, for eviction ([`Access`]).
    #[inline]
    pub fn access(&self) -> &Access {
        match &self.0 {
            Repr::Packed(_, a) | Repr::Boxed(_, a) => a,
        }
    }

    pub fn expire_at(&self) -> Option<i64> {
        match &self.0 {
            Repr::Packed(p, _) => p.expire_at(),
            Repr::Boxed(b, _) => b.entry.expire_at,
        }
    }

    #[inline]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        matches!(self.expire_at(), Some(t) if t <= now_ms)
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed(..))
    }

    /// The name `TYPE` replies with, read without decoding the value.
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            Repr::Packed(p, _) => match p.kind() {
                PackedKind::Str => "string",
                PackedKind::HashListpack => "hash",
                PackedKind::SetIntset => "set",
                PackedKind::ZSetFlat => "zset",
                PackedKind::ListChunk => "list",
            },
            Repr::Boxed(b, _) => b.entry.value.type_name(),
        }
    }

    /// The value and expiry, decoded (a packed string is copied out; a boxed
    /// value is shared, its clone O(1)).
    pub fn to_entry(&self) -> Entry {
        match &self.0 {
            Repr::Packed(p, _) => Entry {
                value: match p.kind() {
                    PackedKind::Str => Value::Str(Bytes::copy_from_slice(p.payload())),
                    PackedKind::HashListpack => Value::Hash(Hash::from_listpack(
                        Listpack::from_bytes(p.payload())
                            .expect("a packed hash holds the listpack bytes it was packed from"),
                    )),
                    PackedKind::SetIntset => Value::Set(
                        Set::from_intset_bytes(p.payload())
                            .expect("a packed set holds the intset bytes it was packed from"),
                    ),
                    PackedKind::ZSetFlat => Value::ZSet(ZSet::from_flat(
                        Flat::from_bytes(p.payload())
                            .expect("a packed zset holds the buffer it was packed from"),
                    )),
                    PackedKind::ListChunk => Value::List(List::from_packed_bytes(p.payload())),
                },
                expire_at: self.expire_at(),
            },
            Repr::Boxed(b, _) => b.entry.clone(),
        }
    }

    /// Like [`Record::to_entry`], moving the value out when nothing else shares it.
    pub fn into_entry(self) -> Entry {
        match self.0 {
            Repr::Boxed(b, _) => match Arc::try_unwrap(b) {
                Ok(b) => b.entry,
                Err(shared) => shared.entry.clone(),
            },
            packed => Record(packed).to_entry(),
        }
    }

    /// The value as it sits in memory, without decoding or copying it: a
    /// packed record's bytes, or the boxed entry (the snapshot writer stores
    /// compact encodings as they are).
    pub fn view(&self) -> View<'_> {
        match &self.0 {
            Repr::Packed(p, _) => {
                let bytes = p.payload();
                match p.kind() {
                    PackedKind::Str => View::Str(bytes),
                    PackedKind::HashListpack => View::HashListpack(bytes),
                    PackedKind::SetIntset => View::SetIntset(bytes),
                    PackedKind::ZSetFlat => View::ZSetFlat(bytes),
                    PackedKind::ListChunk => View::ListChunk(bytes),
                }
            }
            Repr::Boxed(b, _) => View::Boxed(&b.entry.value),
        }
    }

    /// A string record made straight from its bytes: one copy into a packed
    /// record when short, no intermediate `Bytes` (the snapshot loader).
    pub fn new_str(key: &[u8], value: &[u8], expire_at: Option<i64>) -> Record {
        if value.len() <= PACKED_STR_MAX && key.len() <= u32::MAX as usize {
            return Record::packed(key, PackedKind::Str, value, expire_at);
        }
        Record::new(key, Value::Str(Bytes::copy_from_slice(value)), expire_at)
    }

    /// The boxed entry, if this record is boxed.
    pub fn boxed_entry(&self) -> Option<&Entry> {
        match &self.0 {
            Repr::Boxed(b, _) => Some(&b.entry),
            Repr::Packed(..) => None,
        }
    }

    /// The entry for writing: a packed record is unpacked into a boxed one
    /// first, and a boxed one a snapshot still shares is copied. Returns
    /// whether the caller should offer the record to [`Record::repack`]
    /// afterwards: it was unpacked, or it holds a set in intset form, which
    /// may fit a packed record after the write (one created empty, or one
    /// shrinking under the bound).
    pub fn entry_mut(&mut self) -> (&mut Entry, bool) {
        let repack = match &self.0 {
            Repr::Packed(_, access) => {
                let word = access.get();
                let boxed = Record::boxed(self.key(), self.to_entry());
                boxed.access().set(word);
                *self = boxed;
                true
            }
            Repr::Boxed(b, _) => match &b.entry.value {
                Value::Set(s) => s.is_packed(),
                Value::ZSet(z) => z.is_packed(),
                // A list that may fit a packed record after the write (one
                // created empty, or one shrinking under the bound).
                Value::List(l) => {
                    l.chunk_count() == 1
                        && l.packed_bytes().map_or(0, <[u8]>::len) <= PACKED_LIST_MAX
                }
                _ => false,
            },
        };
        let Repr::Boxed(b, _) = &mut self.0 else {
            unreachable!("unpacked above")
        };
        (&mut Arc::make_mut(b).entry, repack)
    }

    /// INCRBY on this record: adds `by` to the integer its string holds and
    /// returns the sum, keeping the key's expiry and access word. A packed
    /// string that only the live keyspace holds is rewritten in place when
    /// the sum has as many characters (most increments); otherwise the
    /// record is replaced by a packed one. Redis's errors, in its order:
    /// WRONGTYPE, not an integer, overflow.
    pub fn add_to_int(&mut self, by: i64) -> Result<i64, CommandError> {
        let current = match &self.0 {
            Repr::Packed(p, _) if p.kind() == PackedKind::Str => p.payload(),
            Repr::Boxed(b, _) => match &b.entry.value {
                Value::Str(s) => &s[..],
                _ => return Err(CommandError::WrongType),
            },
            Repr::Packed(..) => return Err(CommandError::WrongType),
        };
        let sum = crate::numbers::parse_i64_strict(current)
            .ok_or(CommandError::NotInteger)?
            .checked_add(by)
            .ok_or(CommandError::Overflow)?;
        let mut buf = [0u8; 20];
        let digits = format_i64(sum, &mut buf);
        if let Repr::Packed(p, _) = &mut self.0 {
            if p.overwrite_payload(digits) {
                return Ok(sum);
            }
        }
        let replacement = Record::packed(self.key(), PackedKind::Str, digits, self.expire_at());
        replacement.access().set(self.access().get());
        std::mem::replace(self, replacement).release_shared();
        Ok(sum)
    }

    /// A new packed string record of `value` (at most [`PACKED_STR_MAX`]
    /// bytes), without a `Bytes` of its own first.
    pub fn packed_str(key: &[u8], value: &[u8], expire_at: Option<i64>) -> Record {
        debug_assert!(value.len() <= PACKED_STR_MAX);
        Record::packed(key, PackedKind::Str, value, expire_at)
    }

    /// Packs a boxed record again if its value became small enough.
    pub fn repack(&mut self) {
        if let Repr::Boxed(b, access) = &self.0 {
            if Record::packable(&b.key, &b.entry.value) {
                let entry = b.entry.clone();
                let packed = Record::new(&b.key, entry.value, entry.expire_at);
                packed.access().set(access.get());
                *self = packed;
            }
        }
    }

    fn packable(key: &[u8], value: &Value) -> bool {
        Record::packed_payload(key, value).is_some()
    }

    /// Changes the expiry, repacking a packed record (it is immutable).
    pub fn set_expire(&mut self, expire_at: Option<i64>) {
        match &mut self.0 {
            Repr::Packed(p, _) => {
                *p = p.with_expire(expire_at);
            }
            Repr::Boxed(b, _) => Arc::make_mut(b).entry.expire_at = expire_at,
        }
    }

    /// Identity, not equality: whether nothing wrote the key between the two
    /// (a snapshot and the live keyspace sharing a record). Every write replaces a packed record. A write to a boxed one
    /// copies the record while another holder shares it, but a lookup for writing
    /// that then changes nothing copies it too, so boxed records compare their
    /// values' identities (persistent structures: a real change copies the
    /// value's root) and expiry.
    pub fn same(&self, other: &Record) -> bool {
        match (&self.0, &other.0) {
            (Repr::Packed(a, _), Repr::Packed(b, _)) => a.ptr_eq(b),
            (Repr::Boxed(a, _), Repr::Boxed(b, _)) => {
                Arc::ptr_eq(a, b)
                    || (a.entry.expire_at == b.entry.expire_at
                        && a.entry.value.same_identity(&b.entry.value))
            }
            _ => false,
        }
    }
}

/// `v` in decimal, as Redis prints an integer (into `buf`, which fits
/// `i64::MIN`).
fn format_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut n = v.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_strings_pack_and_decode() {
        let r = Record::new(b"key", Value::Str(Bytes::from("value")), Some(5));
        assert!(r.is_packed());
        assert_eq!(r.key(), b"key");
        assert_eq!(r.expire_at(), Some(5));
        assert_eq!(r.type_name(), "string");
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("value")));
        let big = Record::new(
            b"k",
            Value::Str(Bytes::from(vec![1; PACKED_STR_MAX + 1])),
            None,
        );
        assert!(!big.is_packed());
        assert_eq!(big.expire_at(), None);
    }

    #[test]
    fn small_intsets_pack_and_grow_out_of_it() {
        let e = crate::keyspace::encodings::Encodings::default();
        let small: Set = ["3", "1", "2"].into_iter().collect();
        let r = Record::new(b"s", Value::Set(small.clone()), Some(9));
        assert!(r.is_packed());
        assert_eq!(r.type_name(), "set");
        assert_eq!(r.expire_at(), Some(9));
        assert_eq!(r.to_entry().value, Value::Set(small));
        // Members past the byte bound stay boxed, and pack again once removed.
        let mut r = r;
        let (entry, unpacked) = r.entry_mut();
        assert!(unpacked);
        let Value::Set(set) = &mut entry.value else {
            panic!("a set")
        };
        for i in 0..300 {
            set.insert(i.to_string().as_bytes(), &e);
        }
        assert_eq!(set.encoding_name(), "intset");
        r.repack();
        assert!(!r.is_packed());
        let Value::Set(set) = &mut r.entry_mut().0.value else {
            panic!("a set")
        };
        for i in 10..300 {
            set.remove(i.to_string().as_bytes());
        }
        r.repack();
        assert!(r.is_packed());
        assert_eq!(
            r.to_entry().value,
            Value::Set((0..10).map(|i| i.to_string()).collect())
        );
        // A hashtable set is never packed, nor is an empty one.
        let table: Set = ["a"].into_iter().collect();
        assert!(!Record::new(b"t", Value::Set(table), None).is_packed());
        assert!(!Record::new(b"e", Value::Set(Set::new()), None).is_packed());
    }

    #[test]
    fn writes_unpack_then_repack() {
        let mut r = Record::new(b"k", Value::Str(Bytes::from("a")), None);
        let before = r.clone();
        let (entry, unpacked) = r.entry_mut();
        assert!(unpacked);
        entry.value = Value::Str(Bytes::from("b"));
        r.repack();
        assert!(r.is_packed());
        assert!(!r.same(&before));
        assert_eq!(before.to_entry().value, Value::Str(Bytes::from("a")));
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("b")));
    }

    #[test]
    fn long_keys_and_expiry_survive_packing() {
        let key = vec![b'k'; 300];
        let mut r = Record::new(&key, Value::Str(Bytes::from("v")), Some(-7));
        assert!(r.is_packed());
        assert_eq!(r.key(), &key[..]);
        assert_eq!(r.expire_at(), Some(-7));
        r.set_expire(Some(i64::MAX));
        assert_eq!((r.key(), r.expire_at()), (&key[..], Some(i64::MAX)));
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("v")));
        let empty = Record::new(b"", Value::Str(Bytes::new()), None);
        assert_eq!((empty.key(), empty.expire_at()), (&b""[..], None));
    }

    #[test]
    fn small_listpack_hashes_pack_and_big_ones_box() {
        let small: Hash = [("f", "v"), ("g", "w")].into_iter().collect();
        let r = Record::new(b"h", Value::Hash(small.clone()), Some(7));
        assert!(r.is_packed());
        assert_eq!(r.type_name(), "hash");
        assert_eq!(r.expire_at(), Some(7));
        let Value::Hash(back) = r.to_entry().value else {
            panic!("not a hash")
        };
        assert!(back.is_packed());
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            small.iter().collect::<Vec<_>>()
        );

        let big: Hash = (0..100).map(|i| (format!("field{i}"), "v")).collect();
        assert!(big.is_packed(), "a listpack, but too big to pack");
        assert!(!Record::new(b"h", Value::Hash(big), None).is_packed());
        let limits = crate::keyspace::encodings::Encodings {
            hash_max_listpack_entries: 0,
            ..Default::default()
        };
        let mut table = Hash::new();
        table.insert(b"f", b"v", &limits);
        assert!(!Record::new(b"h", Value::Hash(table), None).is_packed());
    }

    #[test]
    fn hash_writes_unpack_then_repack() {
        let h: Hash = [("f", "v")].into_iter().collect();
        let mut r = Record::new(b"h", Value::Hash(h), None);
        let before = r.clone();
        let (entry, unpacked) = r.entry_mut();
        assert!(unpacked);
        let Value::Hash(h) = &mut entry.value else {
            panic!("not a hash")
        };
        h.insert(b"g", b"w", &Default::default());
        r.repack();
        assert!(r.is_packed());
        assert!(!r.same(&before));
        assert_eq!(before.to_entry().value.as_hash().unwrap().len(), 1);
        assert_eq!(r.to_entry().value.as_hash().unwrap().len(), 2);
    }

    #[test]
    fn add_to_int_rewrites_in_place_only_when_unique() {
        let mut r = Record::new(b"n", Value::Str(Bytes::from("41")), Some(9));
        r.access().set(77);
        assert_eq!(r.add_to_int(1), Ok(42));
        assert!(r.is_packed());
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("42")));
        assert_eq!((r.expire_at(), r.access().get()), (Some(9), 77));
        // A snapshot's copy keeps its value.
        let snapshot = r.clone();
        assert_eq!(r.add_to_int(-50), Ok(-8));
        assert_eq!(snapshot.to_entry().value, Value::Str(Bytes::from("42")));
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("-8")));
        // More digits: a new record, same key, expiry and access word.
        assert_eq!(r.add_to_int(1_000_008), Ok(1_000_000));
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("1000000")));
        assert_eq!(
            (r.key(), r.expire_at(), r.access().get()),
            (&b"n"[..], Some(9), 77)
        );
        assert_eq!(r.add_to_int(i64::MAX), Err(CommandError::Overflow));
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("1000000")));
        let mut min = Record::new(b"m", Value::Str(Bytes::from("-1")), None);
        assert_eq!(min.add_to_int(i64::MIN + 1), Ok(i64::MIN));
        assert_eq!(
            min.to_entry().value,
            Value::Str(Bytes::from(i64::MIN.to_string()))
        );
    }

    #[test]
    fn add_to_int_errors_as_redis() {
        for text in ["", "x", "01", "+1", " 1", "1.5", "99999999999999999999"] {
            let mut r = Record::new(b"s", Value::Str(Bytes::from(text)), None);
            assert_eq!(r.add_to_int(1), Err(CommandError::NotInteger), "{text:?}");
            assert_eq!(r.to_entry().value, Value::Str(Bytes::from(text)));
        }
        let long = Bytes::from(vec![b'1'; PACKED_STR_MAX + 1]);
        let mut boxed = Record::new(b"s", Value::Str(long), None);
        assert_eq!(boxed.add_to_int(1), Err(CommandError::NotInteger));
        let mut unpacked = Record::new(b"s", Value::Str(Bytes::from("5")), Some(3));
        unpacked.entry_mut();
        assert!(!unpacked.is_packed());
        assert_eq!(unpacked.add_to_int(5), Ok(10));
        assert_eq!(unpacked.to_entry().value, Value::Str(Bytes::from("10")));
        assert_eq!(unpacked.expire_at(), Some(3));
        let h: Hash = [("f", "1")].into_iter().collect();
        let mut hash = Record::new(b"h", Value::Hash(h), None);
        assert_eq!(hash.add_to_int(1), Err(CommandError::WrongType));
        let list = Value::List(std::iter::once("1").collect());
        let mut list = Record::new(b"l", list, None);
        assert_eq!(list.add_to_int(1), Err(CommandError::WrongType));
    }

    #[test]
    fn small_lists_pack_and_grow_out_of_it() {
        let small: List = ["a", "bb", "ccc"].into_iter().collect();
        let r = Record::new(b"l", Value::List(small.clone()), Some(4));
        assert!(r.is_packed());
        assert_eq!((r.type_name(), r.expire_at()), ("list", Some(4)));
        assert_eq!(r.to_entry().value, Value::List(small));
        assert!(matches!(r.view(), View::ListChunk(b) if b.len() == 12));
        // Pushed past the bound it stays boxed; popped back under, it packs.
        let mut r = r;
        let (entry, unpacked) = r.entry_mut();
        assert!(unpacked);
        let list = entry.value.as_list_mut().unwrap();
        for i in 0..200 {
            list.push_back(i.to_string().as_bytes(), Default::default());
        }
        r.repack();
        assert!(!r.is_packed());
        let (entry, _) = r.entry_mut();
        let list = entry.value.as_list_mut().unwrap();
        list.truncate(10);
        r.repack();
        assert!(r.is_packed());
        assert_eq!(r.to_entry().value.as_list().unwrap().len(), 10);
        // An empty list is about to be filled or deleted: never packed.
        assert!(!Record::new(b"e", Value::List(List::new()), None).is_packed());
        let long_key = vec![b'k'; PACKED_LIST_MAX];
        let one: List = ["x"].into_iter().collect();
        assert!(!Record::new(&long_key, Value::List(one), None).is_packed());
    }

    #[test]
    fn expiry_changes_keep_the_value() {
        let mut r = Record::new(b"k", Value::Str(Bytes::from("a")), None);
        r.set_expire(Some(10));
        assert_eq!(r.expire_at(), Some(10));
        assert!(r.is_expired(10));
        r.set_expire(None);
        assert!(!r.is_expired(i64::MAX));
        assert_eq!(r.to_entry().value, Value::Str(Bytes::from("a")));
    }
}
