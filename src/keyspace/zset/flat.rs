//! The compact encoding of a small sorted set (Redis's listpack encoding of
//! zsets): every `(score, member)` pair in one flat buffer, in order.
//!
//! # Layout
//!
//! | bytes   | meaning                                               |
//! |---------|-------------------------------------------------------|
//! | varint  | pair count `n`                                        |
//! | n times | score, varint length `len`, `len` bytes of the member |
//!
//! A score whose value is an integer of magnitude below 2^53 is one varint
//! `zigzag(i) << 1 | 1` (1 byte from -32 to 31, 2 up to ±8191), as Redis's
//! listpack stores integral scores as integers; any other score is a `0`
//! byte then the f64's 8 bytes, little-endian. Varints are unsigned LEB128
//! in shortest form. Pairs are strictly increasing by (score, member)
//! ([`cmp_entry`]); no score is NaN, none is `-0`, and every score uses the
//! shortest form. So equal sets have equal bytes, and a packed keyspace
//! record stores the buffer as is.
//!
//! Every operation is a linear walk or one splice: the encoding is only used
//! below `zset-max-listpack-entries` (128 by default).

use std::cmp::Ordering;

use super::order::cmp_entry;
use crate::keyspace::listpack::{read_varint, varint_len, write_varint};

/// Pairs in order, in the layout above.
#[derive(Clone, Debug, PartialEq)]
pub struct Flat {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Flat {
    fn default() -> Self {
        Flat::new()
    }
}

/// Where a pair lives in the buffer.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

impl Flat {
    pub fn new() -> Flat {
        Flat {
            buf: vec![0],
            count: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Decodes and validates a buffer: `None` unless it is exactly one
    /// encoding in canonical form, ordered, without NaN.
    pub fn from_bytes(bytes: &[u8]) -> Option<Flat> {
        let (count, mut pos) = read_varint(bytes)?;
        let mut prev: Option<(f64, &[u8])> = None;
        for _ in 0..count {
            let (score, member, end) = decode_at(bytes, pos)?;
            if score.is_nan() {
                return None;
            }
            if let Some((ps, pm)) = prev {
                if cmp_entry(ps, pm, score, member) != Ordering::Less {
                    return None;
                }
            }
            prev = Some((score, member));
            pos = end;
        }
        (pos == bytes.len()).then(|| Flat {
            buf: bytes.to_vec(),
            count,
        })
    }

    /// Pairs in order.
    pub fn iter(&self) -> FlatIter<'_> {
        FlatIter {
            buf: &self.buf,
            pos: varint_len(self.count),
            remaining: self.count,
        }
    }

    fn spans(&self) -> impl Iterator<Item = (Span, f64, &[u8])> + '_ {
        let mut pos = varint_len(self.count);
        (0..self.count).map(move |_| {
            let (score, member, end) = decode_at(&self.buf, pos).expect("validated buffer");
            let span = Span { start: pos, end };
            pos = end;
            (span, score, member)
        })
    }

    /// The rank and score of `member`.
    pub fn find(&self, member: &[u8]) -> Option<(usize, f64)> {
        self.iter()
            .enumerate()
            .find(|(_, (_, m))| *m == member)
            .map(|(i, (s, _))| (i, s))
    }

    /// Adds a member that is not in the set yet, at its place in the order.
    pub fn insert(&mut self, score: f64, member: &[u8]) {
        // Redis's listpack keeps a zero score as the integer 0, so `-0`
        // reads back as `0` from this encoding (not from the skiplist).
        let score = if score == 0.0 { 0.0 } else { score };
        let at = self
            .spans()
            .find(|(_, s, m)| cmp_entry(*s, m, score, member) == Ordering::Greater)
            .map_or(self.buf.len(), |(span, _, _)| span.start);
        let mut entry = Vec::with_capacity(9 + 10 + member.len());
        write_score(score, &mut entry);
        write_varint(member.len(), &mut entry);
        entry.extend_from_slice(member);
        self.buf.splice(at..at, entry);
        self.set_count(self.count + 1);
    }

    /// Removes `member`, returning its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let (span, score, _) = self.spans().find(|(_, _, m)| *m == member)?;
        self.buf.drain(span.start..span.end);
        self.set_count(self.count - 1);
        Some(score)
    }

    /// Removes the pairs of ranks `start..end` (clamped to the set).
    pub fn remove_ranks(&mut self, start: usize, end: usize) {
        let end = end.min(self.count);
        if start >= end {
            return;
        }
        let spans: Vec<Span> = self
            .spans()
            .skip(start)
            .take(end - start)
            .map(|(s, _, _)| s)
            .collect();
        let (from, to) = (spans[0].start, spans[spans.len() - 1].end);
        self.buf.drain(from..to);
        self.set_count(self.count - (end - start));
    }

    /// The longest member's length.
    pub fn max_member_len(&self) -> usize {
        self.iter().map(|(_, m)| m.len()).max().unwrap_or(0)
    }

    /// Rewrites the header; its varint may change length.
    fn set_count(&mut self, count: usize) {
        let mut header = Vec::with_capacity(10);
        write_varint(count, &mut header);
        self.buf.splice(0..varint_len(self.count), header);
        self.count = count;
    }
}

/// Pairs of a validated buffer, in order.
pub struct FlatIter<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl<'a> Iterator for FlatIter<'a> {
    type Item = (f64, &'a [u8]);

    fn next(&mut self) -> Option<(f64, &'a [u8])> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (score, member, end) = decode_at(self.buf, self.pos)?;
        self.pos = end;
        Some((score, member))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for FlatIter<'_> {}

/// Integral scores below this magnitude take the short form.
const INT_LIMIT: f64 = 9_007_199_254_740_992.0; // 2^53

/// The short form's integer, if `score` has one.
fn as_int(score: f64) -> Option<i64> {
    (score.fract() == 0.0 && score.abs() < INT_LIMIT && !(score == 0.0 && score.is_sign_negative()))
        .then_some(score as i64)
}

fn write_score(score: f64, out: &mut Vec<u8>) {
    match as_int(score) {
        Some(i) => {
            let zigzag = ((i << 1) ^ (i >> 63)) as u64 as usize;
            write_varint(zigzag << 1 | 1, out);
        }
        None => {
            out.push(0);
            out.extend_from_slice(&score.to_le_bytes());
        }
    }
}

/// The score at `pos` and its length; `None` unless in shortest form.
fn read_score(buf: &[u8], pos: usize) -> Option<(f64, usize)> {
    let (tag, n) = read_varint(buf.get(pos..)?)?;
    if tag & 1 == 1 {
        let zigzag = (tag >> 1) as u64;
        let i = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        let score = i as f64;
        return (score.abs() < INT_LIMIT).then_some((score, n));
    }
    if tag != 0 {
        return None;
    }
    let raw: [u8; 8] = buf.get(pos + 1..pos + 9)?.try_into().ok()?;
    let score = f64::from_le_bytes(raw);
    // -0 is stored as 0 (see `Flat::insert`).
    (as_int(score).is_none() && score != 0.0).then_some((score, 9))
}

/// The pair at `pos`: score, member and where the next pair starts.
fn decode_at(buf: &[u8], pos: usize) -> Option<(f64, &[u8], usize)> {
    let (score, score_len) = read_score(buf, pos)?;
    let (len, n) = read_varint(buf.get(pos + score_len..)?)?;
    let start = pos + score_len + n;
    let end = start.checked_add(len)?;
    Some((score, buf.get(start..end)?, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_round_trips() {
        let mut f = Flat::new();
        f.insert(2.0, b"b");
        f.insert(1.0, b"z");
        f.insert(2.0, b"a");
        f.insert(f64::NEG_INFINITY, b"");
        let got: Vec<(f64, Vec<u8>)> = f.iter().map(|(s, m)| (s, m.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (f64::NEG_INFINITY, vec![]),
                (1.0, b"z".to_vec()),
                (2.0, b"a".to_vec()),
                (2.0, b"b".to_vec())
            ]
        );
        assert_eq!(f.find(b"a"), Some((2, 2.0)));
        assert_eq!(Flat::from_bytes(f.as_bytes()), Some(f.clone()));
        assert_eq!(f.remove(b"z"), Some(1.0));
        assert_eq!(f.remove(b"z"), None);
        f.remove_ranks(1, 10);
        assert_eq!(f.len(), 1);
        assert_eq!(Flat::from_bytes(f.as_bytes()), Some(f));
    }

    #[test]
    fn scores_round_trip_in_their_shortest_form() {
        for score in [
            0.0,
            1.0,
            -1.0,
            31.0,
            -32.0,
            32.0,
            99.0,
            -8191.0,
            1e15,
            -9007199254740991.0,
            9007199254740992.0,
            0.5,
            -2.25,
            1e200,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
        ] {
            let mut f = Flat::new();
            f.insert(score, b"m");
            let back = Flat::from_bytes(f.as_bytes()).expect("canonical");
            assert_eq!(
                back.iter().next().map(|(s, _)| s.to_bits()),
                Some(score.to_bits())
            );
        }
        let mut f = Flat::new();
        f.insert(7.0, b"m");
        assert_eq!(
            f.byte_len(),
            4,
            "one byte of count, score, length and member"
        );
    }

    #[test]
    fn rejects_bad_buffers() {
        let mut f = Flat::new();
        f.insert(1.0, b"a");
        f.insert(2.0, b"b");
        let good = f.as_bytes().to_vec();
        // count 2, then (score varint, length, member) twice: 1 and 2 are
        // zigzag 2 and 4, tagged 5 and 9.
        assert_eq!(good, [2, 5, 1, b'a', 9, 1, b'b']);
        // Swapping the two scores breaks the order.
        let mut swapped = good.clone();
        swapped[1] = 9;
        swapped[4] = 5;
        assert_eq!(Flat::from_bytes(&swapped), None);
        let mut nan = vec![1, 0];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        nan.extend_from_slice(&[1, b'a']);
        assert_eq!(Flat::from_bytes(&nan), None);
        // An integral score in the long form, or an unused tag, is not canonical.
        let mut long_form = vec![1, 0];
        long_form.extend_from_slice(&1.0f64.to_le_bytes());
        long_form.extend_from_slice(&[1, b'a']);
        assert_eq!(Flat::from_bytes(&long_form), None);
        assert_eq!(Flat::from_bytes(&[1, 2, 1, b'a']), None);
        let mut half = vec![1, 0];
        half.extend_from_slice(&0.5f64.to_le_bytes());
        half.extend_from_slice(&[1, b'a']);
        assert_eq!(
            Flat::from_bytes(&half).map(|f| f.iter().next().unwrap().0),
            Some(0.5)
        );
        assert_eq!(Flat::from_bytes(&good[..good.len() - 1]), None);
        let mut long = good;
        long.push(0);
        assert_eq!(Flat::from_bytes(&long), None);
        assert_eq!(Flat::from_bytes(&[]), None);
    }
}
