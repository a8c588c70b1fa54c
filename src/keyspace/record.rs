//! One key as a database map stores it: a [`Record`].
//!
//! Most keys are small: a short key, a short string or a small flat collection
//! (today strings and intsets).
//! Those are *packed*: header, key bytes and value bytes in a single allocation
//! that the map slot points to, as Redis's embstr keeps its object header and
//! string together. A packed record is immutable; a write builds a new one. Large
//! values (long strings, lists, collections in their tree form) are *boxed*:
//! the key and an [`Entry`] behind an `Arc`, changed in place while only the live
//! keyspace holds it.
//!
//! A record never borrows from a network buffer: packing copies the bytes.

use std::sync::Arc;

use bytes::Bytes;
use triomphe::ThinArc;

use super::champ::MapItem;
use super::set::Set;
use super::{Entry, Value};

/// Longest string value kept in a packed record; longer ones are boxed so that
/// reads share their bytes instead of copying them.
pub const PACKED_STR_MAX: usize = 256;

/// Most bytes of key plus intset kept in a packed record (an intset of up to
/// ~250 small members). Every write to a packed record copies it whole and
/// every read decodes it, so larger intsets are boxed, where a write changes
/// the intset in place.
pub const PACKED_SET_MAX: usize = 512;

/// `expire_at` of a packed record without a TTL.
const NO_EXPIRY: i64 = i64::MIN;

/// What a packed record's value bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum PackedKind {
    Str,
    /// A non-empty set in its intset encoding: the intset's bytes.
    SetIntset,
}

#[derive(Debug, Clone, Copy)]
struct PackedHead {
    expire_at: i64,
    key_len: u32,
    kind: PackedKind,
}

/// A large value with its key.
#[derive(Debug, Clone)]
struct BoxedRecord {
    key: Box<[u8]>,
    entry: Entry,
}

/// One key, its value and its expiry (see the module docs).
#[derive(Clone)]
pub struct Record(Repr);

#[derive(Clone)]
enum Repr {
    Packed(ThinArc<PackedHead, u8>),
    Boxed(Arc<BoxedRecord>),
}

// A map slot holding a record stays two words.
const _: () = assert!(std::mem::size_of::<Record>() == 16);

impl MapItem for Record {
    #[inline]
    fn key(&self) -> &[u8] {
        Record::key(self)
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
            Repr::Packed(p) => &p.slice[..p.header.header.key_len as usize],
            Repr::Boxed(b) => &b.key,
        }
    }

    /// The record for `key` holding `value`, packed when it is small enough.
    pub fn new(key: &[u8], value: Value, expire_at: Option<i64>) -> Record {
        match Record::packable(key, &value) {
            Some((kind, payload)) => Record::packed(key, kind, payload, expire_at),
            None => Record::boxed(key, Entry { value, expire_at }),
        }
    }

    /// How `value` under `key` packs: its kind and payload bytes, or `None`
    /// if it stays boxed.
    fn packable<'v>(key: &[u8], value: &'v Value) -> Option<(PackedKind, &'v [u8])> {
        if key.len() > u32::MAX as usize {
            return None;
        }
        match value {
            Value::Str(s) if s.len() <= PACKED_STR_MAX => Some((PackedKind::Str, s)),
            // An empty set is about to be filled or deleted: not worth packing.
            Value::Set(s) if !s.is_empty() => s
                .intset_bytes()
                .filter(|b| key.len() + b.len() <= PACKED_SET_MAX)
                .map(|b| (PackedKind::SetIntset, b)),
            _ => None,
        }
    }

    fn packed(key: &[u8], kind: PackedKind, payload: &[u8], expire_at: Option<i64>) -> Record {
        let head = PackedHead {
            expire_at: expire_at.unwrap_or(NO_EXPIRY),
            key_len: key.len() as u32,
            kind,
        };
        // Key and value side by side, so the record is made with one copy.
        let total = key.len() + payload.len();
        let mut stack = [0u8; 512];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if total <= stack.len() {
            &mut stack[..total]
        } else {
            heap.resize(total, 0);
            &mut heap
        };
        buf[..key.len()].copy_from_slice(key);
        buf[key.len()..].copy_from_slice(payload);
        Record(Repr::Packed(ThinArc::from_header_and_slice(head, buf)))
    }

    fn boxed(key: &[u8], entry: Entry) -> Record {
        Record(Repr::Boxed(Arc::new(BoxedRecord {
            key: key.into(),
            entry,
        })))
    }

    pub fn expire_at(&self) -> Option<i64> {
        match &self.0 {
            Repr::Packed(p) => match p.header.header.expire_at {
                NO_EXPIRY => None,
                t => Some(t),
            },
            Repr::Boxed(b) => b.entry.expire_at,
        }
    }

    #[inline]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        matches!(self.expire_at(), Some(t) if t <= now_ms)
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed(_))
    }

    /// The name `TYPE` replies with, read without decoding the value.
    pub fn type_name(&self) -> &'static str {
        match &self.0 {
            Repr::Packed(p) => match p.header.header.kind {
                PackedKind::Str => "string",
                PackedKind::SetIntset => "set",
            },
            Repr::Boxed(b) => b.entry.value.type_name(),
        }
    }

    fn payload(p: &ThinArc<PackedHead, u8>) -> &[u8] {
        &p.slice[p.header.header.key_len as usize..]
    }

    /// The value and expiry, decoded (a packed string is copied out; a boxed
    /// value is shared, its clone O(1)).
    pub fn to_entry(&self) -> Entry {
        match &self.0 {
            Repr::Packed(p) => Entry {
                value: match p.header.header.kind {
                    PackedKind::Str => Value::Str(Bytes::copy_from_slice(Record::payload(p))),
                    PackedKind::SetIntset => Value::Set(
                        Set::from_intset_bytes(Record::payload(p))
                            .expect("a packed intset holds the bytes IntSet::as_bytes gave"),
                    ),
                },
                expire_at: self.expire_at(),
            },
            Repr::Boxed(b) => b.entry.clone(),
        }
    }

    /// Like [`Record::to_entry`], moving the value out when nothing else shares it.
    pub fn into_entry(self) -> Entry {
        match self.0 {
            Repr::Boxed(b) => match Arc::try_unwrap(b) {
                Ok(b) => b.entry,
                Err(shared) => shared.entry.clone(),
            },
            packed => Record(packed).to_entry(),
        }
    }

    /// The boxed entry, if this record is boxed.
    pub fn boxed_entry(&self) -> Option<&Entry> {
        match &self.0 {
            Repr::Boxed(b) => Some(&b.entry),
            Repr::Packed(_) => None,
        }
    }

    /// The entry for writing: a packed record is unpacked into a boxed one
    /// first, and a boxed one a snapshot still shares is copied. Returns
    /// whether the caller should offer the record to [`Record::repack`]
    /// afterwards: it was unpacked, or its value has a packed form and may
    /// fit it after the write (a set created empty, or shrinking).
    pub fn entry_mut(&mut self) -> (&mut Entry, bool) {
        let repack = match &self.0 {
            Repr::Packed(_) => {
                let boxed = Record::boxed(self.key(), self.to_entry());
                *self = boxed;
                true
            }
            Repr::Boxed(b) => matches!(&b.entry.value, Value::Set(s) if s.is_packed()),
        };
        let Repr::Boxed(b) = &mut self.0 else {
            unreachable!("unpacked above")
        };
        (&mut Arc::make_mut(b).entry, repack)
    }

    /// Packs a boxed record again if its value became small enough.
    pub fn repack(&mut self) {
        if let Repr::Boxed(b) = &self.0 {
            if let Some((kind, payload)) = Record::packable(&b.key, &b.entry.value) {
                *self = Record::packed(&b.key, kind, payload, b.entry.expire_at);
            }
        }
    }

    /// Changes the expiry, repacking a packed record (it is immutable).
    pub fn set_expire(&mut self, expire_at: Option<i64>) {
        match &mut self.0 {
            Repr::Packed(p) => {
                let head = PackedHead {
                    expire_at: expire_at.unwrap_or(NO_EXPIRY),
                    ..p.header.header
                };
                *self = Record(Repr::Packed(ThinArc::from_header_and_slice(head, &p.slice)));
            }
            Repr::Boxed(b) => Arc::make_mut(b).entry.expire_at = expire_at,
        }
    }

    /// Identity, not equality: whether both are the very same stored record.
    /// Every write replaces a packed record and copies a boxed one that a
    /// holder of the old one (WATCH, a snapshot) still shares, so a record
    /// held since some point is `same` as the live one exactly when nothing
    /// wrote the key since.
    pub fn same(&self, other: &Record) -> bool {
        match (&self.0, &other.0) {
            (Repr::Packed(a), Repr::Packed(b)) => a.ptr() == b.ptr(),
            (Repr::Boxed(a), Repr::Boxed(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
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
