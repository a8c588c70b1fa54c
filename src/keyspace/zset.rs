//! A sorted set value in Redis 7.0's two encodings: a flat buffer of
//! `(score, member)` pairs in order while the set is small ([`flat::Flat`],
//! OBJECT ENCODING `listpack`), then a member → score [`Champ`] beside an
//! order index by `(score, member)` with subtree counts
//! ([`order::OrderTree`], OBJECT ENCODING `skiplist`), so rank, the i-th
//! member and range bounds are O(log n).
//!
//! # Conversion (as Redis's `t_zset.c`)
//!
//! - A new set starts as a listpack unless the command's first insert
//!   already exceeds the limits (`zsetTypeCreate`'s size and length hints).
//! - Before a new member is stored in a listpack, a member longer than
//!   `zset-max-listpack-value`, or a count that would pass
//!   `zset-max-listpack-entries`, converts the set. Updates of existing
//!   members never convert.
//! - A skiplist never converts back on deletes; only the STORE commands and
//!   a reload, which build a whole new set, pick the listpack again when the
//!   result fits ([`ZSet::shrink_if_small`]).
//!
//! Both forms are persistent: cloning is O(1) and a write copies only what a
//! clone still shares (the flat buffer once, or the paths in the two trees).

pub mod flat;
pub mod order;

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::champ::{Champ, MapItem};
use super::encodings::Encodings;
use super::set::PREFETCH_GROUP;
use flat::{Flat, FlatIter};
use order::{cmp_entry, Item, MemberBytes, OrderTree};

/// A member → score entry of the skiplist form's map; its member bytes are
/// shared with the order index.
#[derive(Clone, Debug)]
struct DictEntry {
    member: MemberBytes,
    score: f64,
}

impl MapItem for DictEntry {
    #[inline]
    fn key(&self) -> &[u8] {
        &self.member
    }

    /// The member's bytes, which a comparison reads (their own allocation).
    #[inline]
    fn prefetch(&self) {
        super::champ::prefetch_addr(self.member.as_ptr());
    }
}

/// A sorted set's members and scores (see the module docs).
#[derive(Clone)]
pub struct ZSet(Repr);

#[derive(Clone)]
enum Repr {
    Packed(Arc<Flat>),
    Tree(Tree),
}

#[derive(Clone, Default)]
struct Tree {
    dict: Champ<DictEntry>,
    order: OrderTree,
}

/// One end of a score range: `(5` excludes 5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreBound {
    pub value: f64,
    pub exclusive: bool,
}

/// One end of a lexicographic range: `-`, `+`, `[m` or `(m`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl ZSet {
    /// An empty listpack set.
    pub fn new() -> ZSet {
        ZSet(Repr::Packed(Arc::new(Flat::new())))
    }

    /// An empty set in the encoding Redis's `zsetTypeCreate` picks for a
    /// first write of `count` members, the longest `max_len` bytes.
    pub fn with_hint(count: usize, max_len: usize, limits: &Encodings) -> ZSet {
        if limits.zset_max_listpack_entries == 0
            || count > limits.zset_max_listpack_entries
            || max_len > limits.zset_max_listpack_value
        {
            ZSet(Repr::Tree(Tree::default()))
        } else {
            ZSet::new()
        }
    }

    /// A listpack set over `flat` (a packed record's buffer).
    pub fn from_flat(flat: Flat) -> ZSet {
        ZSet(Repr::Packed(Arc::new(flat)))
    }

    /// The flat buffer, while the set is a listpack.
    pub fn flat(&self) -> Option<&Flat> {
        match &self.0 {
            Repr::Packed(f) => Some(f),
            Repr::Tree(_) => None,
        }
    }

    pub fn is_packed(&self) -> bool {
        matches!(self.0, Repr::Packed(_))
    }

    /// The name OBJECT ENCODING replies with.
    pub fn encoding_name(&self) -> &'static str {
        match self.0 {
            Repr::Packed(_) => "listpack",
            Repr::Tree(_) => "skiplist",
        }
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Packed(f) => f.len(),
            Repr::Tree(t) => t.order.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.0 {
            Repr::Packed(f) => f.find(member).map(|(_, s)| s),
            Repr::Tree(t) => t.dict.get(member).map(|e| e.score),
        }
    }

    /// Warms the cache for the member lookups of a pipelined batch on this
    /// set (ZRANK, ZSCORE, ZREM ...), as [`super::Set::prefetch`] does; a
    /// listpack is one buffer, nothing to warm.
    /// A member repeated from the command before (ZRANGE's `0` in every
    /// command of a batch) is walked once.
    pub fn prefetch<'m>(&self, members: impl Iterator<Item = &'m [u8]>) {
        if let Repr::Tree(t) = &self.0 {
            let mut last = None;
            let distinct = members.filter(|m| last.replace(*m) != Some(*m));
            super::set::prefetch_in(&t.dict, distinct);
        }
    }

    /// Warms the cache for pops about to take `low` members from the low end
    /// and `high` from the high end (a pipelined batch of ZPOPMIN or
    /// ZPOPMAX): their paths in the member map load in parallel, as
    /// [`ZSet::prefetch`] does for named members. The ends of the order
    /// index are what the last pops read, so finding the members is cheap.
    pub fn prefetch_ends(&self, low: usize, high: usize) {
        if let Repr::Tree(t) = &self.0 {
            t.prefetch_ends(low, high);
        }
    }

    /// Sets `member`'s score (converting as the module docs say). Returns
    /// whether the member is new.
    pub fn insert(&mut self, member: &[u8], score: f64, limits: &Encodings) -> bool {
        debug_assert!(!score.is_nan());
        match &mut self.0 {
            Repr::Packed(f) => match f.find(member) {
                Some((_, old)) => {
                    if old != score {
                        self.update(member, old, score);
                    }
                    false
                }
                None => {
                    self.insert_new(member, score, limits);
                    true
                }
            },
            Repr::Tree(t) => t.insert(member, score),
        }
    }

    /// Adds `member`, which the caller found absent (ZADD's lookup), with
    /// `score`, converting as the module docs say; no second lookup.
    pub fn insert_new(&mut self, member: &[u8], score: f64, limits: &Encodings) {
        debug_assert!(!score.is_nan() && self.score(member).is_none());
        if let Repr::Packed(f) = &mut self.0 {
            if f.len() < limits.zset_max_listpack_entries
                && member.len() <= limits.zset_max_listpack_value
            {
                Arc::make_mut(f).insert(score, member);
                return;
            }
            self.convert();
        }
        let Repr::Tree(t) = &mut self.0 else {
            unreachable!("converted above")
        };
        t.insert_new(member, score);
    }

    /// Moves `member`, which the caller found with score `old`, to `new`
    /// (`old != new`). Updates never convert.
    pub fn update(&mut self, member: &[u8], old: f64, new: f64) {
        debug_assert!(!new.is_nan() && self.score(member) == Some(old));
        match &mut self.0 {
            Repr::Packed(f) => {
                let f = Arc::make_mut(f);
                f.remove(member);
                f.insert(new, member);
            }
            Repr::Tree(t) => {
                let e = t.dict.get_mut(member).expect("the member is present");
                e.score = new;
                let shared = e.member.clone();
                t.order.remove_present(old, member);
                t.order.insert(Item {
                    score: new,
                    member: shared,
                });
            }
        }
    }

    /// Removes `member`, returning its score; a miss copies nothing.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.0 {
            Repr::Packed(f) => {
                f.find(member)?;
                Arc::make_mut(f).remove(member)
            }
            Repr::Tree(t) => {
                let entry = t.dict.remove(member)?;
                t.order.remove_present(entry.score, member);
                Some(entry.score)
            }
        }
    }

    /// The ascending 0-based rank of `member`, and its score.
    pub fn rank(&self, member: &[u8]) -> Option<(usize, f64)> {
        match &self.0 {
            Repr::Packed(f) => f.find(member),
            Repr::Tree(t) => {
                let score = t.dict.get(member)?.score;
                Some((t.order.rank(score, member), score))
            }
        }
    }

    /// The pair at ascending rank `index`.
    pub fn nth(&self, index: usize) -> Option<(f64, &[u8])> {
        match &self.0 {
            Repr::Packed(f) => f.iter().nth(index),
            Repr::Tree(t) => t.order.nth(index).map(|it| (it.score, &it.member[..])),
        }
    }

    /// Pairs from ascending rank `start` on: upwards, or (`rev`) down to rank 0.
    pub fn iter_from(&self, start: usize, rev: bool) -> RangeIter<'_> {
        match &self.0 {
            Repr::Packed(f) if rev => {
                let mut pairs: Vec<(f64, &[u8])> = f.iter().take(start.saturating_add(1)).collect();
                if start >= f.len() {
                    pairs.clear();
                }
                pairs.reverse();
                RangeIter::FlatRev(pairs.into_iter())
            }
            Repr::Packed(f) => RangeIter::Flat(f.iter().skip(start)),
            Repr::Tree(t) if rev => RangeIter::Tree(t.order.iter_rev_from(start)),
            Repr::Tree(t) => RangeIter::Tree(t.order.iter_from(start)),
        }
    }

    /// Every pair in ascending order.
    pub fn iter(&self) -> RangeIter<'_> {
        self.iter_from(0, false)
    }

    /// How many pairs satisfy `before`, which holds for a prefix of the
    /// order and fails for the rest.
    pub fn partition_point(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.0 {
            Repr::Packed(f) => f.iter().take_while(|(s, m)| before(*s, m)).count(),
            Repr::Tree(t) => t.order.partition_point(before),
        }
    }

    /// The ranks `start..end` of the pairs whose scores lie within `min` and `max`.
    pub fn score_ranks(&self, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
        let start = self.partition_point(|s, _| below_min(s, min));
        let end = self.partition_point(|s, _| !above_max(s, max));
        (start, end.max(start))
    }

    /// The ranks `start..end` of the pairs whose members lie within `min` and
    /// `max`. Meaningful when all scores are equal; otherwise the members are
    /// not in order and the answer is Redis's: nothing unless the last member
    /// reaches `min` and the first stays within `max`, then (in a listpack)
    /// from the first member reaching `min` for as long as members stay
    /// within `max`.
    pub fn lex_ranks(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        let len = self.len();
        let (Some((_, first)), Some((_, last))) = (self.nth(0), self.last()) else {
            return (0, 0);
        };
        if lex_range_is_empty(min, max) || !lex_gte_min(last, min) || !lex_lte_max(first, max) {
            return (0, 0);
        }
        match &self.0 {
            Repr::Packed(f) => {
                let start = f
                    .iter()
                    .position(|(_, m)| lex_gte_min(m, min))
                    .unwrap_or(len);
                let run = f
                    .iter()
                    .skip(start)
                    .take_while(|(_, m)| lex_lte_max(m, max))
                    .count();
                (start, start + run)
            }
            Repr::Tree(_) => {
                let start = self.partition_point(|_, m| !lex_gte_min(m, min));
                let end = self.partition_point(|_, m| lex_lte_max(m, max));
                (start, end.max(start))
            }
        }
    }

    /// The pair of the highest rank.
    pub fn last(&self) -> Option<(f64, &[u8])> {
        match &self.0 {
            Repr::Packed(f) => f.iter().last(),
            Repr::Tree(t) => t
                .order
                .nth(t.order.len().checked_sub(1)?)
                .map(|it| (it.score, &it.member[..])),
        }
    }

    /// Removes the pairs of ranks `start..end`; returns them in order.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> Vec<(Bytes, f64)> {
        let end = end.min(self.len());
        if start >= end {
            return Vec::new();
        }
        match &mut self.0 {
            Repr::Packed(f) => {
                let removed = f
                    .iter()
                    .skip(start)
                    .take(end - start)
                    .map(|(s, m)| (Bytes::copy_from_slice(m), s))
                    .collect();
                Arc::make_mut(f).remove_ranks(start, end);
                removed
            }
            // Each removal at rank `start` is one descent by the counts.
            Repr::Tree(t) => (start..end)
                .filter_map(|_| {
                    let it = t.order.remove_at(start)?;
                    t.dict.remove_present(&it.member);
                    Some((Bytes::copy_from_slice(&it.member), it.score))
                })
                .collect(),
        }
    }

    /// Removes up to `count` pairs from the low end (or the high end, `max`),
    /// returning them in pop order.
    pub fn pop(&mut self, count: usize, max: bool) -> Vec<(Bytes, f64)> {
        let mut popped = Vec::new();
        self.pop_each(count, max, |m, s| {
            popped.push((Bytes::copy_from_slice(m), s))
        });
        popped
    }

    /// [`ZSet::pop`] handing each pair to `emit` in pop order instead of
    /// copying it out (a reply takes the bytes straight from the set).
    /// Returns how many were popped.
    pub fn pop_each(&mut self, count: usize, max: bool, mut emit: impl FnMut(&[u8], f64)) -> usize {
        let n = count.min(self.len());
        if n == 0 {
            return 0;
        }
        let len = self.len();
        let (start, end) = if max { (len - n, len) } else { (0, n) };
        match &mut self.0 {
            Repr::Packed(f) => {
                if max {
                    let pairs: Vec<(f64, &[u8])> = f.iter().skip(start).collect();
                    pairs.iter().rev().for_each(|&(s, m)| emit(m, s));
                } else {
                    f.iter().take(n).for_each(|(s, m)| emit(m, s));
                }
                Arc::make_mut(f).remove_ranks(start, end);
            }
            // Each pop is one descent by the counts, from the end it pops,
            // and one walk of the member map, whose paths for the next
            // group of pops were loaded together.
            Repr::Tree(t) => {
                for done in (0..n).step_by(PREFETCH_GROUP) {
                    let group = (n - done).min(PREFETCH_GROUP);
                    if max {
                        t.prefetch_ends(0, group);
                    } else {
                        t.prefetch_ends(group, 0);
                    }
                    for _ in 0..group {
                        let at = if max { t.order.len() - 1 } else { 0 };
                        let Some(it) = t.order.remove_at(at) else {
                            break;
                        };
                        t.dict.remove_present(&it.member);
                        emit(&it.member, it.score);
                    }
                }
            }
        }
        n
    }

    /// ZSCAN: a listpack comes whole (cursor 0), a skiplist is walked through
    /// its member map from `cursor` for about `count` pairs (see
    /// [`Champ::scan`]). Returns the cursor to continue from, 0 when done.
    pub fn scan(&self, cursor: u64, count: usize, mut emit: impl FnMut(&[u8], f64)) -> u64 {
        match &self.0 {
            Repr::Packed(f) => {
                for (s, m) in f.iter() {
                    emit(m, s);
                }
                0
            }
            Repr::Tree(t) => t.dict.scan(cursor, count, |e| emit(&e.member, e.score)),
        }
    }

    /// The longest member's length (Redis's `maxelelen` of a conversion).
    pub fn max_member_len(&self) -> usize {
        self.iter().map(|(_, m)| m.len()).max().unwrap_or(0)
    }

    /// Makes a skiplist set a listpack when it fits the limits (STORE
    /// commands and loading, which build a new set, as Redis's
    /// `zsetConvertToListpackIfNeeded`).
    pub fn shrink_if_small(&mut self, limits: &Encodings) {
        if let Repr::Tree(t) = &self.0 {
            if limits.zset_max_listpack_entries > 0
                && t.order.len() <= limits.zset_max_listpack_entries
                && self.max_member_len() <= limits.zset_max_listpack_value
            {
                let mut f = Flat::new();
                for it in t.order.iter_from(0) {
                    f.insert(it.score, &it.member);
                }
                self.0 = Repr::Packed(Arc::new(f));
            }
        }
    }

    /// Builds a set from pairs sorted by (score, member) with unique
    /// members, in the skiplist form (loading; see [`ZSet::shrink_if_small`]).
    pub fn from_sorted_tree(pairs: Vec<(f64, Bytes)>) -> ZSet {
        let items: Vec<Item> = pairs
            .into_iter()
            .map(|(score, m)| Item {
                score,
                member: MemberBytes::new(&m),
            })
            .collect();
        let dict = items
            .iter()
            .map(|it| DictEntry {
                member: it.member.clone(),
                score: it.score,
            })
            .collect();
        ZSet(Repr::Tree(Tree {
            dict,
            order: OrderTree::from_sorted(items),
        }))
    }

    /// Whether both are the very same set object (WATCH): a real change
    /// copies a shared buffer or the trees' roots.
    pub fn ptr_eq(&self, other: &ZSet) -> bool {
        match (&self.0, &other.0) {
            (Repr::Packed(a), Repr::Packed(b)) => Arc::ptr_eq(a, b),
            (Repr::Tree(a), Repr::Tree(b)) => a.dict.ptr_eq(&b.dict) && a.order.ptr_eq(&b.order),
            _ => false,
        }
    }

    /// Checks the representation: order, the map and the index in step.
    pub fn check(&self) -> Result<(), String> {
        match &self.0 {
            Repr::Packed(f) => Flat::from_bytes(f.as_bytes())
                .map(|_| ())
                .ok_or_else(|| "invalid flat buffer".to_string()),
            Repr::Tree(t) => {
                t.dict.check()?;
                t.order.check()?;
                if t.dict.len() != t.order.len() {
                    return Err("map and order differ in size".into());
                }
                for it in t.order.iter_from(0) {
                    match t.dict.get(&it.member) {
                        Some(e) if e.score.to_bits() == it.score.to_bits() => {}
                        _ => return Err("order item missing from the map".into()),
                    }
                }
                Ok(())
            }
        }
    }

    /// Listpack to skiplist, once.
    fn convert(&mut self) {
        if let Repr::Packed(f) = &self.0 {
            let pairs = f
                .iter()
                .map(|(s, m)| (s, Bytes::copy_from_slice(m)))
                .collect();
            *self = ZSet::from_sorted_tree(pairs);
        }
    }
}

impl Tree {
    /// [`ZSet::prefetch_ends`]; a single member is left alone, as one walk
    /// has no misses to overlap with.
    fn prefetch_ends(&self, low: usize, high: usize) {
        let len = self.order.len();
        let low = low.min(PREFETCH_GROUP).min(len);
        let high = high.min(PREFETCH_GROUP - low).min(len - low);
        if low + high < 2 {
            return;
        }
        let from_low = self.order.iter_from(0).take(low);
        let from_high = self.order.iter_rev_from(len - 1).take(high);
        let members = from_low.chain(from_high).map(|it| &it.member[..]);
        super::set::prefetch_in(&self.dict, members);
    }

    fn insert(&mut self, member: &[u8], score: f64) -> bool {
        if let Some(e) = self.dict.get_mut(member) {
            let old = e.score;
            // Redis compares with `==`: -0 over 0 keeps the old score.
            if old == score {
                return false;
            }
            e.score = score;
            let shared = e.member.clone();
            self.order.remove_present(old, member);
            self.order.insert(Item {
                score,
                member: shared,
            });
            return false;
        }
        self.insert_new(member, score);
        true
    }

    /// Adds a member known to be absent.
    fn insert_new(&mut self, member: &[u8], score: f64) {
        let shared = MemberBytes::new(member);
        self.dict.insert(DictEntry {
            member: shared.clone(),
            score,
        });
        self.order.insert(Item {
            score,
            member: shared,
        });
    }
}

/// Whether `score` lies below the range's lower end.
pub fn below_min(score: f64, min: ScoreBound) -> bool {
    if min.exclusive {
        score <= min.value
    } else {
        score < min.value
    }
}

/// Whether `score` lies above the range's upper end.
pub fn above_max(score: f64, max: ScoreBound) -> bool {
    if max.exclusive {
        score >= max.value
    } else {
        score > max.value
    }
}

/// Whether no member can lie within `min` and `max` (Redis's `sdscmplex`
/// test: `-` sorts before and `+` after everything, equal to itself).
fn lex_range_is_empty(min: &LexBound, max: &LexBound) -> bool {
    use LexBound::*;
    let text = |b: &LexBound| match b {
        Inclusive(t) | Exclusive(t) => Some(t.clone()),
        Min | Max => None,
    };
    let cmp = match (min, max) {
        (Min, Min) | (Max, Max) => Ordering::Equal,
        (Min, _) | (_, Max) => Ordering::Less,
        (Max, _) | (_, Min) => Ordering::Greater,
        _ => text(min).cmp(&text(max)),
    };
    let exclusive = |b: &LexBound| !matches!(b, Inclusive(_));
    cmp == Ordering::Greater || (cmp == Ordering::Equal && (exclusive(min) || exclusive(max)))
}

pub fn lex_gte_min(member: &[u8], min: &LexBound) -> bool {
    match min {
        LexBound::Min => true,
        LexBound::Max => false,
        LexBound::Inclusive(b) => member >= &b[..],
        LexBound::Exclusive(b) => member > &b[..],
    }
}

pub fn lex_lte_max(member: &[u8], max: &LexBound) -> bool {
    match max {
        LexBound::Min => false,
        LexBound::Max => true,
        LexBound::Inclusive(b) => member <= &b[..],
        LexBound::Exclusive(b) => member < &b[..],
    }
}

/// Pairs of a range walk, in either encoding.
pub enum RangeIter<'a> {
    Flat(std::iter::Skip<FlatIter<'a>>),
    FlatRev(std::vec::IntoIter<(f64, &'a [u8])>),
    Tree(order::Iter<'a>),
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = (f64, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(f64, &'a [u8])> {
        match self {
            RangeIter::Flat(i) => i.next(),
            RangeIter::FlatRev(i) => i.next(),
            RangeIter::Tree(i) => i.next().map(|it| (it.score, &it.member[..])),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            RangeIter::Flat(i) => i.size_hint(),
            RangeIter::FlatRev(i) => i.size_hint(),
            RangeIter::Tree(i) => i.size_hint(),
        }
    }
}

impl PartialEq for ZSet {
    /// Same pairs, whatever the encodings.
    fn eq(&self, other: &ZSet) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| cmp_entry(a.0, a.1, b.0, b.1) == Ordering::Equal)
    }
}

impl Eq for ZSet {}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(s, m)| (s, String::from_utf8_lossy(m))))
            .finish()
    }
}

#[cfg(test)]
mod tests;
