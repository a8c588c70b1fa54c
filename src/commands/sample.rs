//! Random picks for SPOP, SRANDMEMBER and HRANDFIELD, and the count argument
//! those commands share. (Sets, and HRANDFIELD on a large hash, draw indices
//! with [`distinct_indices`] and find each in O(depth) through the trie's
//! subtree counts, or O(1) in an intset; the walks below serve the rest.)
//!
//! # Cost
//!
//! imbl's hash trie has no random access: reaching the i-th element walks the
//! trie in order, O(i). Redis picks in O(k) through its dict's random buckets; we
//! instead bound every pick to at most one pass over the collection:
//!
//! - one element: a uniform index and `iter().nth(i)`, n/2 steps on average;
//! - k distinct elements: selection sampling (Knuth's Algorithm S) in one pass
//!   that stops at the k-th pick, then a shuffle of the k picks so that their
//!   order is random too: O(n) time, O(k) memory;
//! - k elements that may repeat: k uniform indices, sorted, then one pass that
//!   collects them, then a shuffle: O(n + k log k) time, O(k) memory.

use crate::errors::CommandError;
use crate::rng::Rng;

use super::args;

/// The largest |count| a negative-count SRANDMEMBER or HRANDFIELD accepts. Redis
/// has no such bound and builds whatever reply was asked for; here the whole
/// reply is materialised before it is sent, so an absurd count is refused
/// (`ERR value is out of range`) instead of exhausting memory.
pub const MAX_REPEATED_PICKS: u64 = 1 << 24;

/// Redis's message when a random-pick count is `i64::MIN` (it accepts
/// `-LONG_MAX..=LONG_MAX`).
const COUNT_RANGE: &str =
    "value is out of range, value must between -9223372036854775807 and 9223372036854775807";

/// Parses the count of SRANDMEMBER / HRANDFIELD with Redis's two errors.
pub fn parse_count(arg: &[u8]) -> Result<i64, CommandError> {
    match args::parse_i64_strict(arg) {
        None => Err(CommandError::NotInteger),
        Some(i64::MIN) => Err(CommandError::err(COUNT_RANGE)),
        Some(n) => Ok(n),
    }
}

/// Refuses a repeat count the server will not materialise (see [`MAX_REPEATED_PICKS`]).
pub fn check_repeats(k: u64) -> Result<usize, CommandError> {
    if k > MAX_REPEATED_PICKS {
        return Err(CommandError::err("value is out of range"));
    }
    Ok(k as usize)
}

/// One uniformly chosen element of an iterator of known length.
pub fn one<I: Iterator>(mut iter: I, len: usize, rng: &mut Rng) -> Option<I::Item> {
    if len == 0 {
        return None;
    }
    iter.nth(rng.below(len))
}

/// Selection sampling: offered each of `total` elements once, in order, picks
/// exactly `wanted` of them, every subset being equally likely.
#[derive(Debug, Clone)]
pub struct Selection {
    remaining: usize,
    wanted: usize,
}

impl Selection {
    pub fn new(total: usize, wanted: usize) -> Selection {
        Selection {
            remaining: total,
            wanted: wanted.min(total),
        }
    }

    /// Whether the next element offered is picked.
    pub fn pick(&mut self, rng: &mut Rng) -> bool {
        if self.remaining == 0 {
            return false;
        }
        let take = self.wanted > 0 && rng.below(self.remaining) < self.wanted;
        self.remaining -= 1;
        if take {
            self.wanted -= 1;
        }
        take
    }

    /// True once every wanted element has been picked.
    pub fn done(&self) -> bool {
        self.wanted == 0
    }
}

/// `k` distinct elements (all of them if `k >= len`), in random order.
pub fn distinct<I: Iterator>(iter: I, len: usize, k: usize, rng: &mut Rng) -> Vec<I::Item> {
    let mut sel = Selection::new(len, k);
    let mut out = Vec::with_capacity(k.min(len));
    for item in iter {
        if sel.done() {
            break;
        }
        if sel.pick(rng) {
            out.push(item);
        }
    }
    shuffle(&mut out, rng);
    out
}

/// Exactly `k` uniformly chosen elements, which may repeat, in random order.
pub fn with_repeats<I>(iter: I, len: usize, k: usize, rng: &mut Rng) -> Vec<I::Item>
where
    I: Iterator,
    I::Item: Clone,
{
    if len == 0 || k == 0 {
        return Vec::new();
    }
    let mut indices: Vec<usize> = (0..k).map(|_| rng.below(len)).collect();
    indices.sort_unstable();
    let mut wanted = indices.into_iter().peekable();
    let mut out = Vec::with_capacity(k);
    for (i, item) in iter.enumerate() {
        while wanted.next_if_eq(&i).is_some() {
            out.push(item.clone());
        }
        if wanted.peek().is_none() {
            break;
        }
    }
    shuffle(&mut out, rng);
    out
}

/// `k` distinct uniform indices below `len` (`k < len`), in the order drawn:
/// draws are repeated until they hit an index not drawn yet, which takes O(k)
/// draws when `k` is small beside `len` (HRANDFIELD asks only below a third).
pub fn distinct_indices(len: usize, k: usize, rng: &mut Rng) -> Vec<usize> {
    let k = k.min(len);
    let mut seen = std::collections::HashSet::with_capacity(k);
    let mut out = Vec::with_capacity(k);
    while out.len() < k {
        let i = rng.below(len);
        if seen.insert(i) {
            out.push(i);
        }
    }
    out
}

/// Fisher-Yates shuffle.
pub fn shuffle<T>(items: &mut [T], rng: &mut Rng) {
    for i in (1..items.len()).rev() {
        let j = rng.below(i + 1);
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn count_parsing() {
        assert_eq!(parse_count(b"-3").unwrap(), -3);
        assert_eq!(parse_count(b"x"), Err(CommandError::NotInteger));
        assert!(parse_count(b"-9223372036854775808")
            .unwrap_err()
            .to_string()
            .contains("value must between"));
        assert!(check_repeats(MAX_REPEATED_PICKS + 1).is_err());
        assert_eq!(check_repeats(5).unwrap(), 5);
    }

    #[test]
    fn selection_picks_exactly_wanted() {
        let mut rng = Rng::with_seed(7);
        for (total, wanted) in [(10, 0), (10, 3), (10, 10), (10, 20), (1, 1), (0, 5)] {
            let mut sel = Selection::new(total, wanted);
            let picked = (0..total).filter(|_| sel.pick(&mut rng)).count();
            assert_eq!(picked, wanted.min(total), "{total} {wanted}");
        }
    }

    #[test]
    fn distinct_is_distinct_and_fair() {
        let mut rng = Rng::with_seed(11);
        let mut hits = [0u32; 10];
        for _ in 0..5_000 {
            let got = distinct(0..10, 10, 3, &mut rng);
            assert_eq!(got.len(), 3);
            let set: HashSet<_> = got.iter().collect();
            assert_eq!(set.len(), 3);
            for g in got {
                hits[g] += 1;
            }
        }
        // Each element is picked with probability 3/10: ~1500 times.
        assert!(hits.iter().all(|&h| h > 1300 && h < 1700), "{hits:?}");
        assert_eq!(distinct(0..4, 4, 9, &mut rng).len(), 4);
    }

    #[test]
    fn repeats_have_exact_count() {
        let mut rng = Rng::with_seed(3);
        let got = with_repeats(0..3, 3, 1000, &mut rng);
        assert_eq!(got.len(), 1000);
        assert!(got.iter().all(|&x| x < 3));
        let seen: HashSet<_> = got.iter().collect();
        assert_eq!(seen.len(), 3);
        assert!(with_repeats(0..0, 0, 5, &mut rng).is_empty());
    }

    #[test]
    fn distinct_indices_are_distinct_and_fair() {
        let mut rng = Rng::with_seed(13);
        let mut hits = [0u32; 30];
        for _ in 0..3_000 {
            let got = distinct_indices(30, 5, &mut rng);
            assert_eq!(got.iter().collect::<HashSet<_>>().len(), 5);
            for g in got {
                hits[g] += 1;
            }
        }
        // Each index is drawn with probability 5/30: ~500 times.
        assert!(hits.iter().all(|&h| h > 380 && h < 620), "{hits:?}");
        assert_eq!(distinct_indices(3, 9, &mut rng).len(), 3);
    }

    #[test]
    fn one_is_in_range() {
        let mut rng = Rng::with_seed(5);
        for _ in 0..100 {
            assert!(one(0..7, 7, &mut rng).unwrap() < 7);
        }
        assert_eq!(one(0..0, 0, &mut rng), None);
    }
}
