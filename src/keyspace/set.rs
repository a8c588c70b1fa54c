//! A set value in one of Redis 7.0's two encodings: an *intset* (sorted
//! integers in one flat buffer) while every member is a canonical 64-bit
//! integer and there are at most `set-max-intset-entries` of them, a
//! *hashtable* (a [`Champ`] of members) otherwise.
//!
//! The conversion rules are `t_set.c`'s: adding a member that is not an
//! integer (by `string2ll`: no sign but `-`, no leading zeros, no "-0"), or
//! adding the member that takes the count past the limit, converts an intset to
//! a hashtable once; a hashtable never converts back, however it shrinks.
//! Results that Redis builds afresh (the STORE commands, the set SPOP leaves
//! behind) start as an empty intset and follow the same rules, so their
//! encoding depends only on their members: see [`Set::rebuilt`].
//!
//! Both forms are cheap to clone (the intset sits behind an `Arc`, the table is
//! persistent), are changed in place while nothing else shares them, and give
//! the i-th member in O(1) (intset) or O(depth) (table): random picks need no
//! walk.

use std::ops::Deref;
use std::sync::Arc;

use bytes::Bytes;

use super::champ::{self, Champ};
use super::encodings::Encodings;
use super::intset::{parse_member, IntSet};

/// Redis caps `set-max-intset-entries` here whatever the configuration says
/// (`t_set.c`: "limit to 1G entries due to intset internals").
const INTSET_HARD_LIMIT: usize = 1 << 30;

/// Longest decimal text of an `i64` ("-9223372036854775808").
const INT_TEXT_MAX: usize = 20;

/// A set of byte-string members (see the module docs).
#[derive(Clone)]
pub struct Set(Repr);

#[derive(Clone)]
enum Repr {
    Ints(Arc<IntSet>),
    Table(Champ<Bytes>),
}

/// The most members an intset keeps under `enc`.
fn intset_limit(enc: &Encodings) -> usize {
    enc.set_max_intset_entries.min(INTSET_HARD_LIMIT)
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl Set {
    /// An empty set, an intset as Redis's `createIntsetObject`: adding
    /// members to it gives what `setTypeCreate` + `setTypeAdd` give.
    pub fn new() -> Set {
        Set(Repr::Ints(Arc::new(IntSet::new())))
    }

    /// An intset from its encoded bytes (a packed record's payload); `None`
    /// if they are not a valid intset.
    pub fn from_intset_bytes(bytes: &[u8]) -> Option<Set> {
        IntSet::from_bytes(bytes).map(|s| Set(Repr::Ints(Arc::new(s))))
    }

    /// The intset's encoded bytes, for packing into a record; `None` for a table.
    pub fn intset_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Ints(s) => Some(s.as_bytes()),
            Repr::Table(_) => None,
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Ints(s) => s.len(),
            Repr::Table(t) => t.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the set is in its flat (intset) form.
    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Ints(_))
    }

    /// What `OBJECT ENCODING` reports.
    pub fn encoding_name(&self) -> &'static str {
        match self.0 {
            Repr::Ints(_) => "intset",
            Repr::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.0 {
            Repr::Ints(s) => parse_member(member).is_some_and(|v| s.contains(v)),
            Repr::Table(t) => t.contains_key(member),
        }
    }

    /// Adds `member` (copying its bytes); false if it was already there.
    /// Converts an intset to a table as Redis's `setTypeAdd` does.
    pub fn insert(&mut self, member: &[u8], enc: &Encodings) -> bool {
        match &mut self.0 {
            Repr::Ints(s) => match parse_member(member) {
                Some(v) => {
                    // A member already there must not copy an intset a clone shares.
                    if s.contains(v) {
                        return false;
                    }
                    Arc::make_mut(s).insert(v);
                    if s.len() > intset_limit(enc) {
                        self.convert();
                    }
                    true
                }
                None => {
                    self.convert();
                    self.insert(member, enc)
                }
            },
            // One walk: a present member copies nothing, even from a
            // snapshot's shared nodes.
            Repr::Table(t) => t.insert_absent(member, || Bytes::copy_from_slice(member)),
        }
    }

    /// Warms the cache for lookups of `members` about to run (a pipelined
    /// batch on this set): see [`Champ::prefetch`]. An intset is one flat
    /// buffer, nothing to warm.
    pub fn prefetch<'m>(&self, members: impl Iterator<Item = &'m [u8]>) {
        if let Repr::Table(t) = &self.0 {
            prefetch_in(t, members);
        }
    }

    /// Removes `member`; false if it was not there. Never changes the encoding.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.0 {
            Repr::Ints(s) => match parse_member(member) {
                Some(v) if s.contains(v) => Arc::make_mut(s).remove(v),
                _ => false,
            },
            Repr::Table(t) => t.remove(member).is_some(),
        }
    }

    /// Removes and returns the `index`-th member in [`Set::iter`]'s order
    /// (SPOP's pick): one walk down a table, the stored bytes moved out.
    /// Never changes the encoding.
    pub fn remove_nth(&mut self, index: usize) -> Option<Bytes> {
        match &mut self.0 {
            Repr::Ints(s) => {
                let v = s.get(index)?;
                Arc::make_mut(s).remove(v);
                Some(Member::int(v).to_bytes())
            }
            Repr::Table(t) => t.remove_nth(index),
        }
    }

    /// Every member: an intset in ascending numeric order (as Redis lists
    /// it), a table in hash order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(match &self.0 {
            Repr::Ints(s) => IterRepr::Ints(s, 0..s.len()),
            Repr::Table(t) => IterRepr::Table(t.iter()),
        })
    }

    /// The `index`-th member in [`Set::iter`]'s order: O(1) for an intset,
    /// O(depth) for a table. Uniform random picks are `nth(rng.below(len))`.
    pub fn nth(&self, index: usize) -> Option<Member<'_>> {
        match &self.0 {
            Repr::Ints(s) => s.get(index).map(Member::int),
            Repr::Table(t) => t.nth(index).map(|b| Member(MemberRepr::Stored(b))),
        }
    }

    /// SSCAN: an intset is returned whole with cursor 0 whatever the cursor
    /// (as Redis does for its compact encodings); a table is walked in hash
    /// order from `cursor`, about `count` members per call, with the next
    /// cursor returned (0 when done). A member present throughout a walk is
    /// emitted exactly once.
    pub fn scan(&self, cursor: u64, count: usize, mut emit: impl FnMut(Member<'_>)) -> u64 {
        match &self.0 {
            Repr::Ints(_) => {
                self.iter().for_each(emit);
                0
            }
            Repr::Table(t) => t.scan(cursor, count, |b| emit(Member(MemberRepr::Stored(b)))),
        }
    }

    /// The set Redis would get by adding these members to a fresh intset (how
    /// it builds SUNIONSTORE's, SDIFFSTORE's and SINTERSTORE's results, SPOP's
    /// survivors, and a loaded set): an intset exactly when every member is an
    /// integer and there are at most the limit. Costs O(1) when the encoding
    /// is already that one, else O(len) with len bounded by the limit (or a
    /// conversion to a table, once).
    pub fn rebuilt(mut self, enc: &Encodings) -> Set {
        let limit = intset_limit(enc);
        match &self.0 {
            Repr::Ints(s) if s.len() > limit => self.convert(),
            Repr::Table(t) if t.len() <= limit => {
                let values: Option<Vec<i64>> = t.iter().map(|m| parse_member(m)).collect();
                if let Some(mut values) = values {
                    // Ascending inserts append: O(n log n) for the sort, not
                    // O(n^2) for inserts in hash order (the limit may be large).
                    values.sort_unstable();
                    let mut ints = IntSet::new();
                    values.into_iter().for_each(|v| {
                        ints.insert(v);
                    });
                    self.0 = Repr::Ints(Arc::new(ints));
                }
            }
            _ => {}
        }
        self
    }

    /// Whether both share their storage (then they hold the same members).
    pub fn ptr_eq(&self, other: &Set) -> bool {
        match (&self.0, &other.0) {
            (Repr::Ints(a), Repr::Ints(b)) => Arc::ptr_eq(a, b),
            (Repr::Table(a), Repr::Table(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    /// Checks the table's structure; for tests.
    pub fn check(&self) -> Result<(), String> {
        match &self.0 {
            Repr::Ints(_) => Ok(()),
            Repr::Table(t) => t.check(),
        }
    }

    /// Intset to table, in one build without node copies.
    fn convert(&mut self) {
        if let Repr::Ints(s) = &self.0 {
            let members = s.iter().map(|v| Member::int(v).to_bytes()).collect();
            let table = Champ::build(members)
                .unwrap_or_else(|_| unreachable!("intset members are distinct"));
            self.0 = Repr::Table(table);
        }
    }
}

/// Membership equality, whatever the encodings (a table of a few integers
/// equals the intset of the same integers).
impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.ptr_eq(other) || (self.len() == other.len() && self.iter().all(|m| other.contains(&m)))
    }
}

impl Eq for Set {}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.encoding_name())?;
        f.debug_set()
            .entries(self.iter().map(|m| m.to_bytes()))
            .finish()
    }
}

/// Members added one by one under Redis's default limits (tests, loaders of
/// fixed data).
impl<B: AsRef<[u8]>> FromIterator<B> for Set {
    fn from_iter<I: IntoIterator<Item = B>>(iter: I) -> Set {
        let enc = Encodings::default();
        let mut set = Set::new();
        for m in iter {
            set.insert(m.as_ref(), &enc);
        }
        set
    }
}

/// One member as a walk hands it out: the stored bytes of a table member, or
/// an intset member printed in place (no allocation). Derefs to the bytes.
#[derive(Clone, Copy)]
pub struct Member<'a>(MemberRepr<'a>);

#[derive(Clone, Copy)]
enum MemberRepr<'a> {
    Stored(&'a Bytes),
    Int { text: [u8; INT_TEXT_MAX], len: u8 },
}

impl Member<'_> {
    fn int(v: i64) -> Member<'static> {
        use std::io::Write;
        let mut text = [0u8; INT_TEXT_MAX];
        let mut out = &mut text[..];
        write!(out, "{v}").expect("an i64 prints in 20 bytes");
        let len = (INT_TEXT_MAX - out.len()) as u8;
        Member(MemberRepr::Int { text, len })
    }

    /// The member as an owned byte string (a stored one is shared, not copied).
    pub fn to_bytes(&self) -> Bytes {
        match &self.0 {
            MemberRepr::Stored(b) => (*b).clone(),
            MemberRepr::Int { .. } => Bytes::copy_from_slice(self),
        }
    }
}

impl Deref for Member<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            MemberRepr::Stored(b) => b,
            MemberRepr::Int { text, len } => &text[..usize::from(*len)],
        }
    }
}

impl AsRef<[u8]> for Member<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Member<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_bytes().fmt(f)
    }
}

/// Iterator over a set's members (see [`Set::iter`]).
pub struct Iter<'a>(IterRepr<'a>);

enum IterRepr<'a> {
    Ints(&'a IntSet, std::ops::Range<usize>),
    Table(champ::Iter<'a, Bytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        match &mut self.0 {
            IterRepr::Ints(s, range) => range.next().and_then(|i| s.get(i)).map(Member::int),
            IterRepr::Table(it) => it.next().map(|b| Member(MemberRepr::Stored(b))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Ints(_, range) => range.size_hint(),
            IterRepr::Table(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}

/// Most paths one [`prefetch_in`] loads together.
pub(super) const PREFETCH_GROUP: usize = 32;

/// Warms `map`'s paths to up to [`PREFETCH_GROUP`] `keys` ([`Champ::prefetch`]).
pub(super) fn prefetch_in<'k, T: champ::MapItem>(
    map: &Champ<T>,
    keys: impl Iterator<Item = &'k [u8]>,
) {
    let mut hashes = [0u64; PREFETCH_GROUP];
    let mut n = 0;
    for key in keys.take(hashes.len()) {
        hashes[n] = T::hash_of(key);
        n += 1;
    }
    if n > 1 {
        map.prefetch(&hashes[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn enc(max: usize) -> Encodings {
        Encodings {
            set_max_intset_entries: max,
            ..Encodings::default()
        }
    }

    fn members(set: &Set) -> BTreeSet<Vec<u8>> {
        set.iter().map(|m| m.to_vec()).collect()
    }

    #[test]
    fn integers_stay_an_intset_up_to_the_limit() {
        let e = Encodings::default();
        let mut s = Set::new();
        for i in 0..512 {
            assert!(s.insert(i.to_string().as_bytes(), &e));
        }
        assert!(!s.insert(b"7", &e));
        assert_eq!((s.encoding_name(), s.len()), ("intset", 512));
        assert!(s.insert(b"512", &e));
        assert_eq!((s.encoding_name(), s.len()), ("hashtable", 513));
        // A table never converts back.
        assert!(s.remove(b"512") && s.remove(b"0"));
        assert_eq!(s.encoding_name(), "hashtable");
        s.check().unwrap();
        // ... unless rebuilt, as Redis's STORE commands do.
        let r = s.clone().rebuilt(&e);
        assert_eq!(r.encoding_name(), "intset");
        assert_eq!(r, s);
    }

    #[test]
    fn non_canonical_integers_are_strings() {
        for m in [
            "a",
            "007",
            "-0",
            "+1",
            " 1",
            "1.0",
            "9223372036854775808",
            "",
        ] {
            let mut s = Set::new();
            s.insert(b"1", &Encodings::default());
            assert_eq!(s.encoding_name(), "intset");
            assert!(s.insert(m.as_bytes(), &Encodings::default()));
            assert_eq!(s.encoding_name(), "hashtable", "{m:?}");
            assert!(s.contains(m.as_bytes()) && s.contains(b"1"));
            assert!(!s.contains(b"2"));
        }
        let mut s = Set::new();
        s.insert(b"-9223372036854775808", &Encodings::default());
        s.insert(b"9223372036854775807", &Encodings::default());
        assert_eq!(s.encoding_name(), "intset");
        assert!(!s.contains(b"+9223372036854775807"));
    }

    #[test]
    fn limits_follow_the_configuration() {
        // A limit of 0: the first integer already takes the count past it.
        let mut s = Set::new();
        s.insert(b"1", &enc(0));
        assert_eq!(s.encoding_name(), "hashtable");
        let mut s = Set::new();
        s.insert(b"1", &enc(2));
        s.insert(b"2", &enc(2));
        assert_eq!(s.encoding_name(), "intset");
        // Lowering the limit converts nothing until the next add.
        assert!(!s.insert(b"2", &enc(1)));
        assert_eq!(s.encoding_name(), "intset");
        assert_eq!(s.clone().rebuilt(&enc(1)).encoding_name(), "hashtable");
        s.insert(b"3", &enc(2));
        assert_eq!(s.encoding_name(), "hashtable");
        // The hard cap holds whatever is configured.
        assert_eq!(intset_limit(&enc(usize::MAX)), INTSET_HARD_LIMIT);
    }

    #[test]
    fn rebuilt_needs_only_integers() {
        let e = Encodings::default();
        let s: Set = ["1", "x"].into_iter().collect();
        let mut t = s.clone();
        assert!(t.remove(b"x"));
        assert_eq!(t.encoding_name(), "hashtable");
        assert_eq!(t.rebuilt(&e).encoding_name(), "intset");
        assert_eq!(s.rebuilt(&e).encoding_name(), "hashtable");
    }

    #[test]
    fn intset_members_list_in_numeric_order_and_pack() {
        let s: Set = ["10", "-3", "2", "-9223372036854775808"]
            .into_iter()
            .collect();
        let listed: Vec<Bytes> = s.iter().map(|m| m.to_bytes()).collect();
        assert_eq!(listed, ["-9223372036854775808", "-3", "2", "10"]);
        assert_eq!(s.nth(1).unwrap().to_bytes(), "-3");
        assert!(s.nth(4).is_none());
        let bytes = s.intset_bytes().unwrap();
        assert_eq!(Set::from_intset_bytes(bytes).unwrap(), s);
        assert!(Set::from_intset_bytes(&[2, 1]).is_none());
        let mut seen = Vec::new();
        assert_eq!(s.scan(12345, 1, |m| seen.push(m.to_bytes())), 0);
        assert_eq!(seen, listed);
    }

    #[test]
    fn table_scan_resumes_and_ends() {
        let s: Set = (0..1000).map(|i| format!("m{i}")).collect();
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            cursor = s.scan(cursor, 10, |m| assert!(seen.insert(m.to_vec())));
            calls += 1;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, members(&s));
        assert!(calls >= 100, "{calls} calls");
    }

    #[test]
    fn writes_to_a_clone_leave_the_original() {
        let e = Encodings::default();
        for seed in [&["1", "2", "3"][..], &["a", "b", "c"]] {
            let original: Set = seed.iter().collect();
            let mut copy = original.clone();
            assert!(copy.ptr_eq(&original));
            assert!(!copy.insert(seed[0].as_bytes(), &e));
            assert!(!copy.remove(b"zz"));
            assert!(copy.ptr_eq(&original), "no-op writes share");
            copy.insert(b"4", &e);
            copy.remove(seed[0].as_bytes());
            assert_eq!(original.len(), 3);
            assert!(original.contains(seed[0].as_bytes()));
            assert!(!original.contains(b"4"));
        }
    }

    /// Each member of a set of 10 is picked with probability 1/10.
    #[test]
    fn random_picks_are_roughly_uniform() {
        let mut rng = Rng::with_seed(42);
        for set in [
            (0..10).map(|i| i.to_string()).collect::<Set>(),
            (0..10).map(|i| format!("m{i}")).collect::<Set>(),
        ] {
            let mut hits = std::collections::HashMap::<Vec<u8>, u32>::new();
            for _ in 0..20_000 {
                let m = set.nth(rng.below(set.len())).unwrap();
                *hits.entry(m.to_vec()).or_default() += 1;
            }
            assert_eq!(hits.len(), 10);
            assert!(
                hits.values().all(|&h| (1700..2300).contains(&h)),
                "{hits:?}"
            );
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(Vec<u8>),
        Remove(Vec<u8>),
        Clone,
        Rebuild,
    }

    fn member() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => (-40i64..40).prop_map(|v| v.to_string().into_bytes()),
            1 => prop_oneof![Just(b"007".to_vec()), Just(b"-0".to_vec()), Just(b"x".to_vec())],
            1 => prop::collection::vec(any::<u8>(), 0..4),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => member().prop_map(Op::Insert),
            3 => member().prop_map(Op::Remove),
            1 => Just(Op::Clone),
            1 => Just(Op::Rebuild),
        ]
    }

    proptest! {
        /// Against a `BTreeSet`, with clones taken and mutated along the way
        /// (each must keep its own members), and the encoding checked against
        /// Redis's rules: an intset as long as only integers were ever added
        /// and never more than the limit at once.
        #[test]
        fn matches_a_model(ops in prop::collection::vec(op(), 0..200), limit in 0usize..20) {
            let e = enc(limit);
            let mut set = Set::new();
            let mut model = BTreeSet::new();
            let mut converted = false;
            let mut clones: Vec<(Set, BTreeSet<Vec<u8>>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(m) => {
                        prop_assert_eq!(set.insert(&m, &e), model.insert(m.clone()));
                        converted |= parse_member(&m).is_none() || model.len() > limit;
                    }
                    Op::Remove(m) => prop_assert_eq!(set.remove(&m), model.remove(&m)),
                    Op::Clone => clones.push((set.clone(), model.clone())),
                    Op::Rebuild => {
                        set = set.rebuilt(&e);
                        converted = model.len() > limit
                            || model.iter().any(|m| parse_member(m).is_none());
                    }
                }
                prop_assert_eq!(set.len(), model.len());
                prop_assert_eq!(set.is_packed(), !converted);
                set.check().unwrap();
            }
            prop_assert_eq!(members(&set), model.clone());
            for m in &model {
                prop_assert!(set.contains(m));
            }
            let by_index: BTreeSet<Vec<u8>> =
                (0..set.len()).map(|i| set.nth(i).unwrap().to_vec()).collect();
            prop_assert_eq!(&by_index, &model);
            if set.is_packed() {
                let listed: Vec<i64> = set.iter().map(|m| parse_member(&m).unwrap()).collect();
                prop_assert!(listed.windows(2).all(|w| w[0] < w[1]));
            }
            for (c, m) in clones {
                prop_assert_eq!(members(&c), m);
            }
        }
    }
}
