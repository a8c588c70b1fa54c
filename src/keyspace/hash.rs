//! A hash value in Redis 7.0's two encodings: a listpack of field, value pairs
//! in insertion order while the hash is small, a [`Champ`] of pairs once it
//! outgrew the limits in [`Encodings`].
//!
//! # Conversion (as Redis's `t_hash.c`)
//!
//! - Before a pair is stored in a listpack, a field or value longer than
//!   `hash-max-listpack-value` converts the hash (Redis's `hashTypeSet`, and
//!   `hashTypeTryConversion`, which checks all of HSET's arguments first: as a
//!   command's inserts cannot fail halfway, checking each pair as it comes ends
//!   in the same state).
//! - After a pair is stored, more than `hash-max-listpack-entries` fields
//!   convert it; the check runs on updates too, so a hash left above a limit
//!   lowered by CONFIG SET converts at its next write.
//! - A table never converts back, whatever is deleted: OBJECT ENCODING, HSCAN
//!   and HGETALL's order depend on the history, as in Redis. Only a reload,
//!   which rebuilds every hash from its pairs, makes a shrunk table a listpack.
//!
//! The listpack sits behind an `Arc`, so cloning a hash is O(1) in either form
//! and a write copies a listpack a snapshot still shares, once.

use std::sync::Arc;

use bytes::Bytes;
use triomphe::ThinArc;

use super::champ::{self, Champ};
use super::encodings::Encodings;
use super::listpack::Listpack;

/// Redis refuses to grow a listpack past 1 GB (`lpSafeToAdd`) and converts
/// instead; only reachable with a raised `hash-max-listpack-value`.
const LISTPACK_SAFETY_BYTES: usize = 1 << 30;

/// A hash's fields and values (see the module docs).
#[derive(Clone)]
pub struct Hash(Repr);

#[derive(Clone)]
enum Repr {
    /// Alternating field, value elements in insertion order; fields unique.
    Packed(Arc<Listpack>),
    Table(Champ<Pair>),
}

/// A table's field and value in one allocation behind a thin pointer: the
/// header holds the field's length, the bytes are the field then the value.
/// A trie slot holds 8 bytes of pointer where two `Bytes` took 64 (a node
/// of 32 slots fits 0.5 KB instead of 2 KB), and a new field costs one
/// allocation where it cost two. Cloning (a path copy) counts a reference.
#[derive(Clone)]
struct Pair(ThinArc<u32, u8>);

/// Pairs up to this size are assembled on the stack, then copied once.
const PAIR_ON_STACK: usize = 128;

impl Pair {
    fn new(field: &[u8], value: &[u8]) -> Pair {
        let field_len = u32::try_from(field.len()).expect("a field under 4 GB");
        let total = field.len() + value.len();
        let mut stack = [0u8; PAIR_ON_STACK];
        let mut heap = Vec::new();
        let buf: &mut [u8] = if total <= PAIR_ON_STACK {
            &mut stack[..total]
        } else {
            heap.resize(total, 0);
            &mut heap
        };
        buf[..field.len()].copy_from_slice(field);
        buf[field.len()..].copy_from_slice(value);
        Pair(ThinArc::from_header_and_slice(field_len, buf))
    }

    #[inline]
    fn field_len(&self) -> usize {
        self.0.header.header as usize
    }

    #[inline]
    fn field(&self) -> &[u8] {
        &self.0.slice[..self.field_len()]
    }

    #[inline]
    fn value(&self) -> &[u8] {
        &self.0.slice[self.field_len()..]
    }

    fn as_slices(&self) -> (&[u8], &[u8]) {
        self.0.slice.split_at(self.field_len())
    }

    fn to_bytes(&self) -> (Bytes, Bytes) {
        copy_pair(self.as_slices())
    }
}

impl champ::MapItem for Pair {
    #[inline]
    fn key(&self) -> &[u8] {
        self.field()
    }

    /// The pair's block: its header and (mostly) its field.
    #[inline]
    fn prefetch(&self) {
        champ::prefetch_addr(self.0.ptr() as *const u8);
    }
}

impl PartialEq for Pair {
    fn eq(&self, other: &Pair) -> bool {
        self.field_len() == other.field_len() && self.0.slice == other.0.slice
    }
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    /// An empty hash, a listpack (as Redis creates every hash).
    pub fn new() -> Hash {
        Hash(Repr::Packed(Arc::new(Listpack::new())))
    }

    /// A listpack hash over `lp`, which must hold field, value pairs with
    /// unique fields (one this type encoded, as a packed record keeps it).
    pub fn from_listpack(lp: Listpack) -> Hash {
        Hash(Repr::Packed(Arc::new(lp)))
    }

    /// The listpack, while the hash is one.
    pub fn listpack(&self) -> Option<&Listpack> {
        match &self.0 {
            Repr::Packed(lp) => Some(lp),
            Repr::Table(_) => None,
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed(_))
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding_name(&self) -> &'static str {
        match self.0 {
            Repr::Packed(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Packed(lp) => lp.pair_count(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.0 {
            Repr::Packed(lp) => lp.find_field(field),
            Repr::Table(t) => t.get(field).map(Pair::value),
        }
    }

    /// The value of `field` as `Bytes` (copied).
    pub fn get_bytes(&self, field: &[u8]) -> Option<Bytes> {
        match &self.0 {
            Repr::Packed(lp) => lp.find_field(field).map(Bytes::copy_from_slice),
            Repr::Table(t) => t.get(field).map(|p| Bytes::copy_from_slice(p.value())),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    /// Sets `field` to `value` (both copied), converting to a table as the
    /// module docs say. Returns whether the field is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8], limits: &Encodings) -> bool {
        if let Repr::Packed(lp) = &self.0 {
            let longest = field.len().max(value.len());
            let grown = lp.byte_len() + field.len() + value.len();
            if longest > limits.hash_max_listpack_value || grown > LISTPACK_SAFETY_BYTES {
                self.convert();
            }
        }
        match &mut self.0 {
            Repr::Packed(lp) => {
                let new = Arc::make_mut(lp).set_pair(field, value);
                if lp.pair_count() > limits.hash_max_listpack_entries {
                    self.convert();
                }
                new
            }
            // One hash of the field and one walk, new field or not.
            Repr::Table(t) => t.upsert(
                field,
                || Pair::new(field, value),
                |pair| *pair = Pair::new(field, value),
            ),
        }
    }

    /// Warms the cache for lookups of `fields` about to run (a pipelined
    /// batch on this hash), as [`super::Set::prefetch`].
    pub fn prefetch<'f>(&self, fields: impl Iterator<Item = &'f [u8]>) {
        if let Repr::Table(t) = &self.0 {
            super::set::prefetch_in(t, fields);
        }
    }

    /// Removes `field`; false if it was absent (then nothing is copied, even
    /// from a snapshot's shared listpack).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Packed(lp) => {
                lp.find_field(field).is_some() && Arc::make_mut(lp).remove_field(field)
            }
            Repr::Table(t) => t.remove(field).is_some(),
        }
    }

    /// Every pair: insertion order for a listpack, hash order for a table.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        match &self.0 {
            Repr::Packed(lp) => Either::Left(lp.pairs()),
            Repr::Table(t) => Either::Right(t.iter().map(Pair::as_slices)),
        }
    }

    /// Every pair as `Bytes` (copied), in [`Hash::iter`]'s order.
    pub fn iter_bytes(&self) -> impl ExactSizeIterator<Item = (Bytes, Bytes)> + '_ {
        match &self.0 {
            Repr::Packed(lp) => Either::Left(lp.pairs().map(copy_pair)),
            Repr::Table(t) => Either::Right(t.iter().map(Pair::to_bytes)),
        }
    }

    /// The fields as `Bytes`, in [`Hash::iter`]'s order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = Bytes> + '_ {
        match &self.0 {
            Repr::Packed(lp) => Either::Left(lp.pairs().map(|(f, _)| Bytes::copy_from_slice(f))),
            Repr::Table(t) => Either::Right(t.iter().map(|p| Bytes::copy_from_slice(p.field()))),
        }
    }

    /// The values as `Bytes`, in [`Hash::iter`]'s order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = Bytes> + '_ {
        match &self.0 {
            Repr::Packed(lp) => Either::Left(lp.pairs().map(|(_, v)| Bytes::copy_from_slice(v))),
            Repr::Table(t) => Either::Right(t.iter().map(|p| Bytes::copy_from_slice(p.value()))),
        }
    }

    /// The `index`-th pair of [`Hash::iter`]'s order: O(depth) in a table,
    /// a walk of at most a listpack's few hundred pairs otherwise.
    pub fn nth(&self, index: usize) -> Option<(Bytes, Bytes)> {
        match &self.0 {
            Repr::Packed(lp) => lp.nth_pair(index).map(copy_pair),
            Repr::Table(t) => t.nth(index).map(Pair::to_bytes),
        }
    }

    /// HSCAN: a listpack comes whole and the walk is over (cursor 0), as in
    /// Redis, whatever the cursor; a table is walked from `cursor` (a
    /// position in hash order, see [`Champ::scan`]) for about `count` pairs.
    /// Returns the cursor to continue from, 0 when done.
    pub fn scan(&self, cursor: u64, count: usize, mut emit: impl FnMut(Bytes, Bytes)) -> u64 {
        match &self.0 {
            Repr::Packed(lp) => {
                for (f, v) in lp.pairs() {
                    emit(Bytes::copy_from_slice(f), Bytes::copy_from_slice(v));
                }
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |p| {
                let (f, v) = p.to_bytes();
                emit(f, v)
            }),
        }
    }

    /// Checks the representation: unique fields in a listpack, a well-formed
    /// trie; for tests.
    pub fn check(&self) -> Result<(), String> {
        match &self.0 {
            Repr::Packed(lp) => {
                if lp.len() % 2 != 0 {
                    return Err("listpack hash with an unpaired element".into());
                }
                let mut fields: Vec<&[u8]> = lp.pairs().map(|(f, _)| f).collect();
                fields.sort_unstable();
                if fields.windows(2).any(|w| w[0] == w[1]) {
                    return Err("listpack hash with a repeated field".into());
                }
                Ok(())
            }
            Repr::Table(t) => t.check(),
        }
    }

    /// Whether both are the very same hash object (not merely equal): any
    /// real change copies a shared listpack or the trie's root.
    pub fn ptr_eq(&self, other: &Hash) -> bool {
        match (&self.0, &other.0) {
            (Repr::Packed(a), Repr::Packed(b)) => Arc::ptr_eq(a, b),
            (Repr::Table(a), Repr::Table(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    /// Listpack to table, once.
    fn convert(&mut self) {
        if let Repr::Packed(lp) = &self.0 {
            let pairs = lp.pairs().map(|(f, v)| Pair::new(f, v)).collect();
            let table = Champ::build(pairs).unwrap_or_else(|_| {
                unreachable!("a listpack hash holds each field once (see Hash::insert)")
            });
            self.0 = Repr::Table(table);
        }
    }
}

fn copy_pair((f, v): (&[u8], &[u8])) -> (Bytes, Bytes) {
    (Bytes::copy_from_slice(f), Bytes::copy_from_slice(v))
}

impl PartialEq for Hash {
    /// Same pairs, whatever the encodings.
    fn eq(&self, other: &Hash) -> bool {
        match (&self.0, &other.0) {
            (Repr::Table(a), Repr::Table(b)) => a == b,
            _ => self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v)),
        }
    }
}

impl Eq for Hash {}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter_bytes()).finish()
    }
}

impl<F: AsRef<[u8]>, V: AsRef<[u8]>> FromIterator<(F, V)> for Hash {
    /// Under Redis's default limits; later pairs replace earlier ones.
    fn from_iter<I: IntoIterator<Item = (F, V)>>(iter: I) -> Hash {
        let limits = Encodings::default();
        let mut hash = Hash::new();
        for (f, v) in iter {
            hash.insert(f.as_ref(), v.as_ref(), &limits);
        }
        hash
    }
}

/// One of two iterators with the same items (the two encodings' walks).
enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A, B, T> Iterator for Either<A, B>
where
    A: Iterator<Item = T>,
    B: Iterator<Item = T>,
{
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        match self {
            Either::Left(a) => a.next(),
            Either::Right(b) => b.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Either::Left(a) => a.size_hint(),
            Either::Right(b) => b.size_hint(),
        }
    }
}

impl<A, B, T> ExactSizeIterator for Either<A, B>
where
    A: ExactSizeIterator<Item = T>,
    B: ExactSizeIterator<Item = T>,
{
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(entries: usize, value: usize) -> Encodings {
        Encodings {
            hash_max_listpack_entries: entries,
            hash_max_listpack_value: value,
            ..Encodings::default()
        }
    }

    fn pairs(h: &Hash) -> Vec<(Vec<u8>, Vec<u8>)> {
        h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn entries_threshold_converts_after_the_insert() {
        let d = Encodings::default();
        let mut h = Hash::new();
        for i in 0..512 {
            assert!(h.insert(format!("f{i}").as_bytes(), b"v", &d));
        }
        assert_eq!(h.encoding_name(), "listpack");
        // Updates keep a full listpack a listpack.
        assert!(!h.insert(b"f0", b"w", &d));
        assert!(h.is_packed());
        assert!(h.insert(b"f512", b"v", &d));
        assert_eq!(h.encoding_name(), "hashtable");
        assert_eq!(h.len(), 513);
        assert_eq!(h.get(b"f0"), Some(&b"w"[..]));
        h.check().unwrap();
        // Never back, however small it gets.
        for i in 0..513 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        assert!(h.is_empty() && !h.is_packed());
    }

    #[test]
    fn value_threshold_converts_before_the_insert() {
        let d = Encodings::default();
        let mut h = Hash::new();
        h.insert(b"a", &[b'x'; 64], &d);
        h.insert(&[b'f'; 64], b"1", &d);
        assert!(h.is_packed());
        let mut long_value = h.clone();
        long_value.insert(b"b", &[b'x'; 65], &d);
        assert!(!long_value.is_packed());
        let mut long_field = h.clone();
        long_field.insert(&[b'f'; 65], b"", &d);
        assert!(!long_field.is_packed());
        // Even an update of an existing field converts first.
        let mut update = h.clone();
        assert!(!update.insert(b"a", &[b'y'; 65], &d));
        assert_eq!(update.encoding_name(), "hashtable");
        assert_eq!(update.len(), 2);
        assert!(h.is_packed(), "clones are untouched");
    }

    #[test]
    fn lowered_limits_convert_at_the_next_write() {
        let mut h: Hash = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
        let low = limits(2, 64);
        assert!(h.remove(b"c"));
        assert!(h.is_packed(), "removals never convert");
        h.insert(b"c", b"3", &low);
        assert!(!h.is_packed());
        let mut h: Hash = [("a", "1"), ("b", "2"), ("c", "3")].into_iter().collect();
        h.insert(b"a", b"9", &low);
        assert!(!h.is_packed(), "an update over the entry limit converts");
        let mut z = Hash::new();
        z.insert(b"", b"", &limits(1, 0));
        assert!(z.is_packed(), "empty strings fit a zero value limit");
        z.insert(b"a", b"", &limits(1, 0));
        assert!(!z.is_packed());
    }

    #[test]
    fn listpack_keeps_insertion_order_like_redis() {
        let d = Encodings::default();
        let mut h = Hash::new();
        for (f, v) in [("b", "2"), ("d", "4"), ("c", "3"), ("a", "1")] {
            h.insert(f.as_bytes(), v.as_bytes(), &d);
        }
        h.insert(b"a", b"9", &d);
        h.remove(b"d");
        h.insert(b"d", b"5", &d);
        let want: Vec<(Vec<u8>, Vec<u8>)> = [("b", "2"), ("c", "3"), ("a", "9"), ("d", "5")]
            .iter()
            .map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(pairs(&h), want);
        assert_eq!(h.nth(2), Some((Bytes::from("a"), Bytes::from("9"))));
        let mut seen = Vec::new();
        assert_eq!(h.scan(12345, 1, |f, v| seen.push((f, v))), 0);
        assert_eq!(seen.len(), 4, "a listpack scans whole whatever the cursor");
    }

    #[test]
    fn table_scan_and_nth_cover_every_pair() {
        let h: Hash = (0..2000)
            .map(|i| (format!("f{i}"), format!("v{i}")))
            .collect();
        assert!(!h.is_packed());
        let mut cursor = 0;
        let mut seen = std::collections::BTreeMap::new();
        loop {
            cursor = h.scan(cursor, 10, |f, v| {
                assert!(seen.insert(f, v).is_none());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 2000);
        let by_nth: Vec<_> = (0..h.len()).map(|i| h.nth(i).unwrap()).collect();
        let by_iter: Vec<_> = h.iter_bytes().collect();
        assert_eq!(by_nth, by_iter);
        assert_eq!(h.nth(2000), None);
    }

    #[test]
    fn equality_ignores_the_encoding() {
        let small: Hash = [("a", "1")].into_iter().collect();
        let mut table = Hash::new();
        table.insert(b"a", b"1", &limits(0, 64));
        assert!(!table.is_packed());
        assert_eq!(small, table);
        table.insert(b"a", b"2", &limits(0, 64));
        assert_ne!(small, table);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8, Vec<u8>),
        Remove(u8),
        /// Keeps a clone (a snapshot) and checks it later.
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        let value = prop_oneof![
            8 => prop::collection::vec(any::<u8>(), 0..6),
            1 => prop::collection::vec(any::<u8>(), 6..12),
        ];
        prop_oneof![
            6 => (any::<u8>(), value).prop_map(|(f, v)| Op::Insert(f % 40, v)),
            3 => any::<u8>().prop_map(|f| Op::Remove(f % 40)),
            1 => Just(Op::Snapshot),
        ]
    }

    fn field(f: u8) -> Vec<u8> {
        format!("field{f}").into_bytes()
    }

    proptest! {
        #[test]
        fn behaves_like_a_map_with_clones(
            ops in prop::collection::vec(op(), 0..300),
            entries in 0usize..30,
        ) {
            let lim = limits(entries, 8);
            let mut h = Hash::new();
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            let mut snapshots = Vec::new();
            let mut was_table = false;
            for op in ops {
                match op {
                    Op::Insert(f, v) => {
                        let f = field(f);
                        let at = model.iter().position(|(mf, _)| *mf == f);
                        prop_assert_eq!(h.insert(&f, &v, &lim), at.is_none());
                        let long = v.len() > 8 || f.len() > 8;
                        match at {
                            Some(i) => model[i].1 = v,
                            None => model.push((f, v)),
                        }
                        if long || model.len() > entries {
                            prop_assert!(!h.is_packed());
                        }
                    }
                    Op::Remove(f) => {
                        let f = field(f);
                        let at = model.iter().position(|(mf, _)| *mf == f);
                        prop_assert_eq!(h.remove(&f), at.is_some());
                        if let Some(i) = at {
                            model.remove(i);
                        }
                    }
                    Op::Snapshot => snapshots.push((h.clone(), model.clone())),
                }
                if was_table {
                    prop_assert!(!h.is_packed(), "a table never converts back");
                }
                was_table = !h.is_packed();
                h.check().map_err(TestCaseError::fail)?;
                prop_assert_eq!(h.len(), model.len());
                if h.is_packed() {
                    prop_assert_eq!(pairs(&h), model.clone(), "listpack order");
                } else {
                    let mut got = pairs(&h);
                    got.sort();
                    let mut want = model.clone();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
                for (f, v) in &model {
                    prop_assert_eq!(h.get(f), Some(v.as_slice()));
                }
                prop_assert_eq!(h.get(b"absent"), None);
            }
            for (snap, model) in snapshots {
                let mut got = pairs(&snap);
                got.sort();
                let mut want = model;
                want.sort();
                prop_assert_eq!(got, want, "a clone keeps its version");
            }
        }
    }
}
