//! An intset: a small set whose members are all integers, kept as Redis keeps it,
//! sorted in one flat buffer, owned here as the exact bytes a packed keyspace
//! record stores.
//!
//! # Layout
//!
//! One width byte `w` (2, 4 or 8), then the members as `w`-byte little-endian
//! two's-complement integers, strictly ascending. The width grows when a member
//! does not fit and never shrinks (as Redis's `intsetUpgradeAndAdd`), so a buffer
//! whose members would all fit a narrower width is still valid. Sorted fixed-width
//! slots give O(log n) lookups and O(1) access by index, for random picks.

use bytes::Bytes;

/// Sorted distinct `i64`s in the layout described in the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntSet {
    buf: Vec<u8>,
}

impl Default for IntSet {
    fn default() -> Self {
        Self::new()
    }
}

impl IntSet {
    pub fn new() -> Self {
        IntSet { buf: vec![2] }
    }

    /// Bytes per member: 2, 4 or 8.
    pub fn width(&self) -> usize {
        usize::from(self.buf[0])
    }

    pub fn len(&self) -> usize {
        (self.buf.len() - 1) / self.width()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.len() == 1
    }

    /// The encoded bytes, exactly as [`IntSet::from_bytes`] reads them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Decodes and validates a buffer: a known width, whole members, strictly
    /// ascending. `None` on anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (&w, body) = bytes.split_first()?;
        if !matches!(w, 2 | 4 | 8) || body.len() % usize::from(w) != 0 {
            return None;
        }
        let set = IntSet {
            buf: bytes.to_vec(),
        };
        let ascending = set.iter().zip(set.iter().skip(1)).all(|(a, b)| a < b);
        ascending.then_some(set)
    }

    /// The `i`-th smallest member.
    pub fn get(&self, i: usize) -> Option<i64> {
        (i < self.len()).then(|| self.read(i))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = i64> + ExactSizeIterator + '_ {
        (0..self.len()).map(|i| self.read(i))
    }

    pub fn contains(&self, v: i64) -> bool {
        self.search(v).is_ok()
    }

    /// Adds `v`; false if it was already a member.
    pub fn insert(&mut self, v: i64) -> bool {
        if width_of(v) > self.width() {
            // `v` is outside every current member's range, so it is a new extreme.
            let mut wider = vec![width_of(v) as u8];
            let mut members: Vec<i64> = self.iter().collect();
            if v < 0 {
                members.insert(0, v);
            } else {
                members.push(v);
            }
            members.iter().for_each(|&m| push_at(&mut wider, m));
            self.buf = wider;
            return true;
        }
        match self.search(v) {
            Ok(_) => false,
            Err(i) => {
                let (at, w) = (self.offset(i), self.width());
                self.buf
                    .splice(at..at, v.to_le_bytes()[..w].iter().copied());
                true
            }
        }
    }

    /// Removes `v`; false if it was not a member. The width stays.
    pub fn remove(&mut self, v: i64) -> bool {
        match self.search(v) {
            Ok(i) => {
                let at = self.offset(i);
                self.buf.drain(at..at + self.width());
                true
            }
            Err(_) => false,
        }
    }

    /// Binary search over the slots, as `slice::binary_search`.
    fn search(&self, v: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.read(mid).cmp(&v) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    fn offset(&self, i: usize) -> usize {
        1 + i * self.width()
    }

    /// Reads slot `i` (in bounds), sign-extending from the width.
    fn read(&self, i: usize) -> i64 {
        let (at, w) = (self.offset(i), self.width());
        let mut raw = [0u8; 8];
        raw[..w].copy_from_slice(&self.buf[at..at + w]);
        let unused = 64 - 8 * w as u32;
        (i64::from_le_bytes(raw) << unused) >> unused
    }
}

/// Appends `v` at the width the buffer's first byte names.
fn push_at(buf: &mut Vec<u8>, v: i64) {
    let w = usize::from(buf[0]);
    buf.extend_from_slice(&v.to_le_bytes()[..w]);
}

/// The narrowest width that holds `v`.
fn width_of(v: i64) -> usize {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// The integer a set member stands for, by Redis's `string2ll` rules: an optional
/// `-`, then decimal digits without leading zeros ("0" alone is fine, "-0" is
/// not), within `i64`. Only such members may live in an intset, because the
/// member must print back as the same bytes.
pub fn parse_member(bytes: &[u8]) -> Option<i64> {
    let (negative, digits) = match bytes {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, bytes),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    let mut magnitude: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// The member bytes for `v`, the inverse of [`parse_member`].
pub fn format_member(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn check(set: &IntSet, model: &BTreeSet<i64>) {
        assert_eq!(set.len(), model.len());
        assert_eq!(set.is_empty(), model.is_empty());
        assert!(set.iter().eq(model.iter().copied()));
        for (i, &m) in model.iter().enumerate() {
            assert_eq!(set.get(i), Some(m));
            assert!(set.contains(m));
        }
        assert_eq!(set.get(model.len()), None);
        let min_width = model.iter().map(|&m| width_of(m)).max().unwrap_or(2);
        assert!(set.width() >= min_width);
        assert_eq!(set.byte_len(), 1 + set.width() * model.len());
        assert_eq!(IntSet::from_bytes(set.as_bytes()).as_ref(), Some(set));
    }

    #[test]
    fn widths_upgrade_and_stay() {
        let mut set = IntSet::default();
        assert_eq!(set.as_bytes(), &[2]);
        assert!(set.insert(-1) && !set.insert(-1));
        assert_eq!(set.as_bytes(), &[2, 0xff, 0xff]);
        assert!(set.insert(i64::from(i16::MIN)) && set.width() == 2);
        assert!(set.insert(i64::from(i16::MAX) + 1) && set.width() == 4);
        assert!(set.insert(i64::from(i32::MIN)) && set.width() == 4);
        assert!(set.insert(i64::MIN) && set.width() == 8);
        assert!(set.insert(i64::MAX));
        let expect = [i64::MIN, i64::from(i32::MIN), -32768, -1, 32768, i64::MAX];
        check(&set, &expect.into_iter().collect());
        for v in expect {
            assert!(set.remove(v) && !set.remove(v));
        }
        assert_eq!(set.as_bytes(), &[8]);
    }

    #[test]
    fn malformed_buffers_are_rejected() {
        for bad in [
            &[][..],
            &[3],
            &[2, 1],
            &[2, 1, 0, 1, 0], // duplicate
            &[2, 2, 0, 1, 0], // descending
        ] {
            assert_eq!(IntSet::from_bytes(bad), None, "{bad:?}");
        }
        // A wider width than the members need is allowed.
        assert_eq!(
            IntSet::from_bytes(&[4, 1, 0, 0, 0]).unwrap().get(0),
            Some(1)
        );
    }

    #[test]
    fn member_parsing_matches_string2ll() {
        let ok: &[(&[u8], i64)] = &[
            (b"0", 0),
            (b"7", 7),
            (b"-7", -7),
            (b"10", 10),
            (b"9223372036854775807", i64::MAX),
            (b"-9223372036854775808", i64::MIN),
        ];
        for &(s, v) in ok {
            assert_eq!(parse_member(s), Some(v));
            assert_eq!(format_member(v), s);
        }
        let bad: &[&[u8]] = &[
            b"",
            b"-",
            b"007",
            b"00",
            b"-0",
            b"-01",
            b"+1",
            b" 1",
            b"1 ",
            b"1.0",
            b"1e3",
            b"0x1",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
            b"\xff",
        ];
        for &s in bad {
            assert_eq!(parse_member(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    /// Values clustered at each width's edges, where upgrades and sign bugs live.
    fn value() -> impl Strategy<Value = i64> {
        prop_oneof![
            -5i64..5,
            (-5i64..5).prop_map(|d| i64::from(i16::MIN) + d),
            (-5i64..5).prop_map(|d| i64::from(i16::MAX) + d),
            (-5i64..5).prop_map(|d| i64::from(i32::MIN) + d),
            (-5i64..5).prop_map(|d| i64::from(i32::MAX) + d),
            (0i64..5).prop_map(|d| i64::MIN + d),
            (0i64..5).prop_map(|d| i64::MAX - d),
            any::<i64>(),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_btreeset(ops in prop::collection::vec((any::<bool>(), value()), 0..100)) {
            let mut set = IntSet::new();
            let mut model = BTreeSet::new();
            for (insert, v) in ops {
                if insert {
                    prop_assert_eq!(set.insert(v), model.insert(v));
                } else {
                    prop_assert_eq!(set.remove(v), model.remove(&v));
                }
                prop_assert_eq!(set.contains(v), model.contains(&v));
                check(&set, &model);
            }
        }

        #[test]
        fn damaged_buffers_never_panic(
            values in prop::collection::vec(value(), 0..20),
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..3),
        ) {
            let mut set = IntSet::new();
            values.into_iter().for_each(|v| { set.insert(v); });
            let mut bytes = set.as_bytes().to_vec();
            bytes.truncate(cut.index(bytes.len() + 1));
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            if let Some(set) = IntSet::from_bytes(&bytes) {
                prop_assert_eq!(set.as_bytes(), &bytes[..]);
                check(&set, &set.iter().collect());
            }
        }

        #[test]
        fn members_print_back_as_parsed(v in value()) {
            prop_assert_eq!(parse_member(&format_member(v)), Some(v));
        }
    }
}
