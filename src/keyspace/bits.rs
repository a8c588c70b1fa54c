//! Bit-level operations on string values, as Redis's bitmap commands see them:
//! bit 0 is the most significant bit of the first byte, and bytes past the end
//! of a string read as zero.
//!
//! Pure functions over byte slices (no keyspace, no replies), so BITCOUNT,
//! BITPOS, BITOP and BITFIELD can be tested against a naive bit-vector model.

/// Whether a range's indexes count bytes or bits (BITCOUNT/BITPOS's BYTE|BIT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Byte,
    Bit,
}

/// Reads bit `offset`; bits past the end are zero.
pub fn get_bit(s: &[u8], offset: u64) -> bool {
    let byte = (offset >> 3) as usize;
    byte < s.len() && s[byte] & (0x80 >> (offset & 7)) != 0
}

/// Sets bit `offset` (which must lie within `s`) and returns its old value.
pub fn set_bit(s: &mut [u8], offset: u64, on: bool) -> bool {
    let byte = (offset >> 3) as usize;
    let mask = 0x80u8 >> (offset & 7);
    let old = s[byte] & mask != 0;
    if on {
        s[byte] |= mask;
    } else {
        s[byte] &= !mask;
    }
    old
}

/// Number of set bits in `s`, eight bytes at a time.
pub fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().expect("8 bytes")).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// Turns Redis's `start end` (negative from the end, clamped) over a string of
/// `len` bytes into an inclusive range of bit offsets, or None when empty.
pub fn resolve_range(len: usize, start: i64, end: i64, unit: Unit) -> Option<(u64, u64)> {
    let total = match unit {
        Unit::Byte => len as i64,
        Unit::Bit => len as i64 * 8,
    };
    let from_end = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let start = from_end(start);
    let end = from_end(end).min(total - 1);
    if start > end {
        return None;
    }
    let (start, end) = (start as u64, end as u64);
    Some(match unit {
        Unit::Byte => (start * 8, end * 8 + 7),
        Unit::Bit => (start, end),
    })
}

/// Set bits among bit offsets `first..=last`, all within `s`.
pub fn count_bits(s: &[u8], first: u64, last: u64) -> u64 {
    let (a, b) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut n = popcount(&s[a..=b]);
    // Bits of the edge bytes that lie outside the range.
    n -= (u32::from(s[a]) >> (8 - (first & 7))).count_ones() as u64;
    n -= (s[b] & ((1u16 << (7 - (last & 7))) - 1) as u8).count_ones() as u64;
    n
}

/// BITCOUNT: set bits in the whole string or in a `start end` range. Unlike
/// BITPOS, a range of two negative indexes that is inverted counts nothing
/// even where clamping would make it a one-byte range.
pub fn bitcount(s: &[u8], range: Option<(i64, i64, Unit)>) -> u64 {
    match range {
        None => popcount(s),
        Some((start, end, _)) if start < 0 && end < 0 && start > end => 0,
        Some((start, end, unit)) => {
            resolve_range(s.len(), start, end, unit).map_or(0, |(a, b)| count_bits(s, a, b))
        }
    }
}

/// The first bit equal to `bit` among offsets `first..=last` (within `s`):
/// bit by bit up to a byte boundary, then whole bytes eight at a time, then
/// the bits of a last partial byte.
pub fn find_bit(s: &[u8], bit: bool, first: u64, last: u64) -> Option<u64> {
    let scan = |from: u64, to: u64| (from..=to).find(|&i| get_bit(s, i) == bit);
    let aligned = (first + 7) & !7;
    if aligned > last {
        return scan(first, last);
    }
    if let Some(i) = (first < aligned)
        .then(|| scan(first, aligned - 1))
        .flatten()
    {
        return Some(i);
    }
    // Bytes wholly inside the range.
    let (from, to) = ((aligned / 8) as usize, ((last + 1) / 8) as usize);
    let skip = if bit { 0x00u8 } else { 0xff };
    if let Some(byte) = first_byte_not(&s[from..to], skip) {
        let at = (from + byte) as u64 * 8;
        return scan(at, at + 7);
    }
    let tail = to as u64 * 8;
    (tail <= last).then(|| scan(tail, last)).flatten()
}

/// The index of the first byte of `bytes` that is not `skip`.
fn first_byte_not(bytes: &[u8], skip: u8) -> Option<usize> {
    let word = u64::from_ne_bytes([skip; 8]);
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        if u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) != word {
            break;
        }
        at += 8;
    }
    bytes[at..].iter().position(|&b| b != skip).map(|p| at + p)
}

/// BITPOS: the first `bit` in the range, by Redis's rules. Without a range the
/// string is followed by infinitely many zeros, so a clear bit past its end
/// is found; with an explicit `end` it is not (-1).
pub fn bitpos(s: &[u8], bit: bool, start: Option<i64>, end: Option<i64>, unit: Unit) -> i64 {
    let start = start.unwrap_or(0);
    let end_given = end.is_some();
    let end = end.unwrap_or(-1);
    let Some((first, last)) = resolve_range(s.len(), start, end, unit) else {
        return -1;
    };
    match find_bit(s, bit, first, last) {
        Some(pos) => pos as i64,
        None if bit || end_given => -1,
        None => last as i64 + 1,
    }
}

/// BITOP's operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

/// BITOP over `sources` (missing keys are empty strings): the result is as
/// long as the longest source, shorter ones padded with zero bytes.
pub fn bitop(op: BitOp, sources: &[&[u8]]) -> Vec<u8> {
    let max = sources.iter().map(|s| s.len()).max().unwrap_or(0);
    if op == BitOp::Not {
        return sources
            .first()
            .map_or_else(Vec::new, |s| s.iter().map(|b| !b).collect());
    }
    let mut out = vec![0u8; max];
    let Some((head, rest)) = sources.split_first() else {
        return out;
    };
    out[..head.len()].copy_from_slice(head);
    for src in rest {
        match op {
            BitOp::And => {
                for (o, b) in out.iter_mut().zip(src.iter()) {
                    *o &= b;
                }
                // Past a source's end its bytes are zero.
                for o in out.iter_mut().skip(src.len()) {
                    *o = 0;
                }
            }
            BitOp::Or => {
                for (o, b) in out.iter_mut().zip(src.iter()) {
                    *o |= b;
                }
            }
            BitOp::Xor => {
                for (o, b) in out.iter_mut().zip(src.iter()) {
                    *o ^= b;
                }
            }
            BitOp::Not => unreachable!("handled above"),
        }
    }
    out
}

/// Reads `bits` (1..=64) bits from `offset` as an unsigned number, most
/// significant first; bits past the end of `s` are zero.
pub fn get_unsigned(s: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for j in 0..bits as u64 {
        v = (v << 1) | get_bit(s, offset + j) as u64;
    }
    v
}

/// As [`get_unsigned`], sign-extended from `bits` bits.
pub fn get_signed(s: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(s, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

/// Writes the low `bits` bits of `value` at `offset` (within `s`).
pub fn set_field(s: &mut [u8], offset: u64, bits: u32, value: u64) {
    for j in 0..bits {
        let on = value & (1u64 << (bits - 1 - j)) != 0;
        set_bit(s, offset + j as u64, on);
    }
}

/// BITFIELD's OVERFLOW behaviours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

/// The result of adding `incr` to a field's `value`: the value to store (None
/// when the addition overflows under FAIL) and the reply. The comparisons are
/// Redis's, in two's-complement wrapping arithmetic, so inputs far outside the
/// field's range (a SET of a 64-bit value into a small field) saturate and
/// wrap as Redis's do.
pub fn add_signed(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let max_incr = (max as u64).wrapping_sub(value as u64) as i64;
    let min_incr = min.wrapping_sub(value);
    let wrap = || {
        let c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                (c | mask) as i64
            } else {
                (c & !mask) as i64
            }
        } else {
            c as i64
        }
    };
    let high = value > max
        || (bits != 64 && incr > max_incr)
        || (value >= 0 && incr > 0 && incr > max_incr);
    let low = !high
        && (value < min
            || (bits != 64 && incr < min_incr)
            || (value < 0 && incr < 0 && incr < min_incr));
    match (high, low, ow) {
        (false, false, _) => Some(value.wrapping_add(incr)),
        (_, _, Overflow::Fail) => None,
        (_, _, Overflow::Wrap) => Some(wrap()),
        (true, _, Overflow::Sat) => Some(max),
        (_, true, Overflow::Sat) => Some(min),
    }
}

/// The unsigned twin of [`add_signed`] (fields up to 63 bits).
pub fn add_unsigned(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let max_incr = max.wrapping_sub(value) as i64;
    let min_incr = value.wrapping_neg() as i64;
    let wrap = || {
        let res = value.wrapping_add(incr as u64);
        if bits < 64 {
            res & !(u64::MAX << bits)
        } else {
            res
        }
    };
    let high = value > max || (incr > 0 && incr > max_incr);
    let low = !high && incr < 0 && incr < min_incr;
    match (high, low, ow) {
        (false, false, _) => Some(value.wrapping_add(incr as u64)),
        (_, _, Overflow::Fail) => None,
        (_, _, Overflow::Wrap) => Some(wrap()),
        (true, _, Overflow::Sat) => Some(max),
        (_, true, Overflow::Sat) => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive model: a vector of bools, bit 0 first.
    fn model(s: &[u8]) -> Vec<bool> {
        (0..s.len() as u64 * 8).map(|i| get_bit(s, i)).collect()
    }

    fn model_range(len: usize, start: i64, end: i64, unit: Unit) -> Option<(u64, u64)> {
        // Redis's conversion, spelled out step by step.
        let total = if unit == Unit::Bit { len * 8 } else { len } as i64;
        let mut start = if start < 0 { total + start } else { start };
        let mut end = if end < 0 { total + end } else { end };
        if start < 0 {
            start = 0;
        }
        if end < 0 {
            end = 0;
        }
        if end >= total {
            end = total - 1;
        }
        if start > end {
            return None;
        }
        let scale = if unit == Unit::Bit { 1 } else { 8 };
        let extra = if unit == Unit::Bit { 0 } else { 7 };
        Some((start as u64 * scale, end as u64 * scale + extra))
    }

    fn unit() -> impl Strategy<Value = Unit> {
        prop_oneof![Just(Unit::Byte), Just(Unit::Bit)]
    }

    proptest! {
        #[test]
        fn bitcount_matches_model(s in proptest::collection::vec(any::<u8>(), 0..40),
                                  start in -400i64..400, end in -400i64..400, unit in unit()) {
            let bits = model(&s);
            let inverted = start < 0 && end < 0 && start > end;
            let expected = model_range(s.len(), start, end, unit)
                .filter(|_| !inverted)
                .map_or(0, |(a, b)| bits[a as usize..=b as usize].iter().filter(|&&x| x).count() as u64);
            let got = bitcount(&s, Some((start, end, unit)));
            prop_assert_eq!(got, expected);
            prop_assert_eq!(popcount(&s), bits.iter().filter(|&&x| x).count() as u64);
        }

        #[test]
        fn bitpos_matches_model(s in proptest::collection::vec(prop_oneof![4 => Just(0u8), 4 => Just(0xff), 1 => any::<u8>()], 0..120),
                                bit: bool, start in proptest::option::of(-1000i64..1000),
                                end in proptest::option::of(-1000i64..1000), unit in unit()) {
            let bits = model(&s);
            let end = if start.is_none() { None } else { end };
            let expected = match model_range(s.len(), start.unwrap_or(0), end.unwrap_or(-1), unit) {
                None => -1,
                Some((a, b)) => match (a..=b).find(|&i| bits[i as usize] == bit) {
                    Some(i) => i as i64,
                    None if bit || end.is_some() => -1,
                    None => b as i64 + 1,
                },
            };
            prop_assert_eq!(bitpos(&s, bit, start, end, unit), expected);
        }

        #[test]
        fn bitfield_round_trips(s in proptest::collection::vec(any::<u8>(), 0..16),
                                offset in 0u64..200, bits in 1u32..=64, value: u64) {
            let mut buf = s.clone();
            let need = (offset + bits as u64).div_ceil(8) as usize;
            if buf.len() < need {
                buf.resize(need, 0);
            }
            let before = model(&buf);
            set_field(&mut buf, offset, bits, value);
            let after = model(&buf);
            let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
            prop_assert_eq!(get_unsigned(&buf, offset, bits), value & mask);
            for (i, (x, y)) in before.iter().zip(after.iter()).enumerate() {
                let inside = (i as u64) >= offset && (i as u64) < offset + bits as u64;
                if !inside {
                    prop_assert_eq!(x, y, "bit {} outside the field changed", i);
                } else {
                    let j = i as u64 - offset;
                    prop_assert_eq!(*y, value & (1u64 << (bits as u64 - 1 - j)) != 0);
                }
            }
            // The signed read is the unsigned one sign-extended.
            let signed = get_signed(&buf, offset, bits);
            let shift = 64 - bits;
            prop_assert_eq!(signed, (((value & mask) << shift) as i64) >> shift);
            // Reading past the end sees zeros, as the model does.
            let expected: u64 = (0..bits as u64)
                .fold(0, |v, j| (v << 1) | s.get(((offset + j) / 8) as usize)
                    .map_or(0, |b| (b >> (7 - (offset + j) % 8)) & 1) as u64);
            prop_assert_eq!(get_unsigned(&s, offset, bits), expected);
        }

        #[test]
        fn in_range_additions_are_exact(bits in 2u32..=63, a: i64, b: i64) {
            let max = (1i64 << (bits - 1)) - 1;
            let (a, b) = (a % (max + 1), b % (max + 1));
            let sum = a as i128 + b as i128;
            let fits = sum <= max as i128 && sum >= -(max as i128) - 1;
            let got = add_signed(a, b, bits, Overflow::Fail);
            prop_assert_eq!(got.is_some(), fits);
            if fits {
                prop_assert_eq!(got, Some(sum as i64));
            }
            let sat = add_signed(a, b, bits, Overflow::Sat).unwrap();
            prop_assert_eq!(sat as i128, sum.clamp(-(max as i128) - 1, max as i128));
            let wrapped = add_signed(a, b, bits, Overflow::Wrap).unwrap();
            let m = 1i128 << bits;
            let w = ((sum % m) + m) % m;
            let w = if w > max as i128 { w - m } else { w };
            prop_assert_eq!(wrapped as i128, w);

            let umax = (1u64 << bits) - 1;
            let ua = a.unsigned_abs() & umax;
            let usum = ua as i128 + b as i128;
            let ugot = add_unsigned(ua, b, bits, Overflow::Sat).unwrap();
            prop_assert_eq!(ugot as i128, usum.clamp(0, umax as i128));
            let uw = add_unsigned(ua, b, bits, Overflow::Wrap).unwrap();
            prop_assert_eq!(uw as i128, usum.rem_euclid(umax as i128 + 1));
        }
    }

    #[test]
    fn bitop_pads_with_zeros() {
        let a: &[u8] = &[0xff, 0x0f];
        let b: &[u8] = &[0xf0];
        assert_eq!(bitop(BitOp::And, &[a, b]), vec![0xf0, 0x00]);
        assert_eq!(bitop(BitOp::Or, &[a, b]), vec![0xff, 0x0f]);
        assert_eq!(bitop(BitOp::Xor, &[b, a]), vec![0x0f, 0x0f]);
        assert_eq!(bitop(BitOp::Not, &[a]), vec![0x00, 0xf0]);
        assert_eq!(bitop(BitOp::And, &[a, &[]]), vec![0, 0]);
        assert!(bitop(BitOp::Or, &[&[], &[]]).is_empty());
    }

    #[test]
    fn overflow_quirks_follow_redis() {
        // A SET of i64::MIN into an i8 counts as a positive overflow in Redis.
        assert_eq!(add_signed(i64::MIN, 0, 8, Overflow::Sat), Some(127));
        assert_eq!(add_signed(i64::MIN, 0, 8, Overflow::Wrap), Some(0));
        assert_eq!(add_signed(i64::MAX, 1, 64, Overflow::Wrap), Some(i64::MIN));
        assert_eq!(add_signed(i64::MAX, 1, 64, Overflow::Sat), Some(i64::MAX));
        assert_eq!(add_signed(i64::MIN, -1, 64, Overflow::Fail), None);
        // A negative SET into an unsigned field saturates to the maximum.
        assert_eq!(add_unsigned(-1i64 as u64, 0, 8, Overflow::Sat), Some(255));
        assert_eq!(add_unsigned(-1i64 as u64, 0, 8, Overflow::Wrap), Some(255));
        assert_eq!(add_unsigned(5, -10, 8, Overflow::Sat), Some(0));
        assert_eq!(add_unsigned(5, -10, 8, Overflow::Wrap), Some(251));
    }
}
