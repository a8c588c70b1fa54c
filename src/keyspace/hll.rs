//! HyperLogLog values in Redis's own byte layout, so a value copied with
//! GET/SET between forkless and redis-server works in both and PFCOUNT gives
//! the same numbers.
//!
//! A HyperLogLog is a string: a 16-byte header (`HYLL`, an encoding byte,
//! three zero bytes, the cached cardinality as 8 little-endian bytes whose
//! top bit marks it stale) followed by 2^14 registers of 6 bits, either
//! *dense* (packed least significant bit first) or *sparse* (run-length
//! opcodes: ZERO `00llllll` for 1..64 zero registers, XZERO `01llllll
//! llllllll` for 1..16384, VAL `1vvvvvll` for 1..4 registers of value 1..32).
//! Elements are hashed with MurmurHash64A (seed `0xadc83b19`): the low 14 bits
//! pick the register, one plus the trailing zeros of the rest is the value.
//! Cardinality uses Ertl's improved raw estimator ("New cardinality
//! estimation algorithms for HyperLogLog sketches", 2017), as Redis 5+ does.
//!
//! Sparse updates split and merge opcodes exactly as Redis does, so both
//! servers produce the same bytes (and turn dense at the same moment).

/// Header bytes before the registers.
pub const HEADER: usize = 16;
/// log2 of the number of registers.
const P: u32 = 14;
pub const REGISTERS: usize = 1 << P;
/// Bits of hash left after the register index.
const Q: u32 = 64 - P;
const REGISTER_BITS: usize = 6;
/// The whole dense value: header plus 16384 six-bit registers.
pub const DENSE_SIZE: usize = HEADER + (REGISTERS * REGISTER_BITS).div_ceil(8);

const MAGIC: &[u8; 4] = b"HYLL";
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
const HASH_SEED: u64 = 0xadc8_3b19;

/// Largest value and run length of a sparse VAL opcode.
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
/// Longest run of a ZERO opcode (longer runs take an XZERO).
const ZERO_MAX_LEN: usize = 64;

/// The bytes are not a well-formed HyperLogLog (Redis's INVALIDOBJ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Which register layout a value uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

/// Redis's check before any HLL command touches a string: the magic, a
/// known encoding, and the exact size when dense. (Sparse opcodes are only
/// checked as they are read.)
pub fn is_valid(b: &[u8]) -> bool {
    b.len() >= HEADER
        && &b[..4] == MAGIC
        && b[4] <= SPARSE
        && (b[4] != DENSE || b.len() == DENSE_SIZE)
}

/// The encoding of a value [`is_valid`] accepted.
pub fn encoding(b: &[u8]) -> Encoding {
    if b[4] == DENSE {
        Encoding::Dense
    } else {
        Encoding::Sparse
    }
}

/// An empty HyperLogLog: sparse, one XZERO over every register, cached
/// cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut b = vec![0u8; HEADER];
    b[..4].copy_from_slice(MAGIC);
    b[4] = SPARSE;
    push_xzero(&mut b, REGISTERS);
    b
}

/// The cached cardinality, unless marked stale.
pub fn cached(b: &[u8]) -> Option<u64> {
    (b[15] & 0x80 == 0).then(|| u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")))
}

pub fn set_cache(b: &mut [u8], card: u64) {
    b[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate(b: &mut [u8]) {
    b[15] |= 0x80;
}

/// Austin Appleby's MurmurHash64A, as Redis hashes HLL elements.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &byte) in tail.iter().enumerate() {
            h ^= (byte as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the value it offers (1..=51).
pub fn pattern(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit bounds the run of zeros at Q.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// ---------------------------------------------------------------------------
// Dense registers

fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let lo = regs[byte] as u16 >> shift;
    let hi = regs.get(byte + 1).map_or(0, |&b| (b as u16) << (8 - shift));
    ((lo | hi) & 0x3f) as u8
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let bit = i * REGISTER_BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let word = (v as u16) << shift;
    let mask = 0x3fu16 << shift;
    regs[byte] = (regs[byte] & !(mask as u8)) | word as u8;
    if shift > 2 {
        regs[byte + 1] = (regs[byte + 1] & !((mask >> 8) as u8)) | (word >> 8) as u8;
    }
}

/// Raises register `i` to `v`; whether it changed.
fn dense_set(regs: &mut [u8], i: usize, v: u8) -> bool {
    if dense_get(regs, i) < v {
        dense_put(regs, i, v);
        true
    } else {
        false
    }
}

// ---------------------------------------------------------------------------
// Sparse opcodes

fn is_zero(op: u8) -> bool {
    op & 0xc0 == 0x00
}

fn is_xzero(op: u8) -> bool {
    op & 0xc0 == 0x40
}

fn val_value(op: u8) -> u8 {
    ((op >> 2) & 0x1f) + 1
}

fn val_len(op: u8) -> usize {
    (op & 0x3) as usize + 1
}

fn val_op(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len - 1) as u8
}

fn push_zeros(out: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push((len - 1) as u8);
    }
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push((l & 0xff) as u8);
}

/// One opcode at `p`: its size in bytes, its run length and its value (0
/// for zero runs). A truncated XZERO reads a zero low byte.
fn opcode(ops: &[u8], p: usize) -> (usize, usize, u8) {
    let op = ops[p];
    if is_zero(op) {
        (1, (op & 0x3f) as usize + 1, 0)
    } else if is_xzero(op) {
        let low = ops.get(p + 1).copied().unwrap_or(0) as usize;
        (2, (((op & 0x3f) as usize) << 8 | low) + 1, 0)
    } else {
        (1, val_len(op), val_value(op))
    }
}

/// Calls `run(first_register, len, value)` for every run of a sparse
/// value's opcodes; Corrupt unless they cover exactly every register.
fn sparse_runs(b: &[u8], mut run: impl FnMut(usize, usize, u8)) -> Result<(), Corrupt> {
    let ops = &b[HEADER..];
    let (mut p, mut index) = (0, 0);
    while p < ops.len() {
        let (size, len, value) = opcode(ops, p);
        if index + len > REGISTERS {
            return Err(Corrupt);
        }
        run(index, len, value);
        index += len;
        p += size;
    }
    if index == REGISTERS {
        Ok(())
    } else {
        Err(Corrupt)
    }
}

/// Rewrites a sparse value as dense, keeping its header (and cached
/// cardinality). Whether it was sparse.
pub fn to_dense(b: &mut Vec<u8>) -> Result<bool, Corrupt> {
    if b[4] == DENSE {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HEADER].copy_from_slice(&b[..HEADER]);
    dense[4] = DENSE;
    let regs = &mut dense[HEADER..];
    sparse_runs(b, |first, len, value| {
        if value != 0 {
            for i in first..first + len {
                dense_put(regs, i, value);
            }
        }
    })?;
    *b = dense;
    Ok(true)
}

/// Raises register `index` of a sparse value to `value` the way Redis's
/// `hllSparseSet` does: a VAL of run 1 or a ZERO of run 1 is rewritten in
/// place, any other opcode is split in up to three, then adjacent equal VALs
/// around the change are merged. A value above 32, or growth past
/// `max_bytes`, turns it dense first.
fn sparse_set(b: &mut Vec<u8>, index: usize, value: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if value > VAL_MAX_VALUE {
        return promote(b, index, value);
    }
    let end = b.len();
    let (mut p, mut first, mut prev) = (HEADER, 0, None);
    let (mut size, mut span, mut old) = (0, 0, 0);
    while p < end {
        (size, span, old) = opcode(b, p);
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += size;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let zero = old == 0;
    if !zero && old >= value {
        return Ok(false);
    }
    if span == 1 && (!zero || size == 1) {
        b[p] = val_op(value, 1);
    } else {
        let last = first + span - 1;
        let mut seq = Vec::with_capacity(5);
        if index != first {
            if zero {
                push_zeros(&mut seq, index - first);
            } else {
                seq.push(val_op(old, index - first));
            }
        }
        seq.push(val_op(value, 1));
        if index != last {
            if zero {
                push_zeros(&mut seq, last - index);
            } else {
                seq.push(val_op(old, last - index));
            }
        }
        if seq.len() > size && end + seq.len() - size > max_bytes {
            return promote(b, index, value);
        }
        b.splice(p..p + size, seq);
    }
    merge_vals(b, prev.unwrap_or(HEADER));
    invalidate(b);
    Ok(true)
}

/// Merges adjacent VAL opcodes of equal value, scanning at most five
/// opcodes from `p` (Redis's step after every sparse change).
fn merge_vals(b: &mut Vec<u8>, mut p: usize) {
    let mut budget = 5;
    while p < b.len() && budget > 0 {
        budget -= 1;
        let op = b[p];
        if is_xzero(op) {
            p += 2;
            continue;
        }
        if is_zero(op) {
            p += 1;
            continue;
        }
        if let Some(&next) = b.get(p + 1) {
            let both_val = !is_zero(next) && !is_xzero(next);
            if both_val && val_value(op) == val_value(next) {
                let len = val_len(op) + val_len(next);
                if len <= VAL_MAX_LEN {
                    b[p + 1] = val_op(val_value(op), len);
                    b.remove(p);
                    // Try the merged opcode with its right neighbour too.
                    continue;
                }
            }
        }
        p += 1;
    }
}

fn promote(b: &mut Vec<u8>, index: usize, value: u8) -> Result<bool, Corrupt> {
    to_dense(b)?;
    let changed = dense_set(&mut b[HEADER..], index, value);
    debug_assert!(changed, "a register that forced promotion is raised");
    Ok(changed)
}

// ---------------------------------------------------------------------------
// Adding, merging, counting

/// Raises register `index` to `value` in either encoding; whether it changed.
/// Does not touch the cached cardinality of a dense value.
pub fn set_register(
    b: &mut Vec<u8>,
    index: usize,
    value: u8,
    sparse_max_bytes: usize,
) -> Result<bool, Corrupt> {
    match encoding(b) {
        Encoding::Dense => Ok(dense_set(&mut b[HEADER..], index, value)),
        Encoding::Sparse => sparse_set(b, index, value, sparse_max_bytes),
    }
}

/// PFADD of one element: whether a register changed.
pub fn add(b: &mut Vec<u8>, element: &[u8], sparse_max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, value) = pattern(element);
    set_register(b, index, value, sparse_max_bytes)
}

/// PFADD of one element to a dense value, in place; whether a register changed.
pub fn add_dense(b: &mut [u8], element: &[u8]) -> bool {
    debug_assert_eq!(encoding(b), Encoding::Dense);
    let (index, value) = pattern(element);
    dense_set(&mut b[HEADER..], index, value)
}

/// Raises `max[i]` to each register of `b` (PFCOUNT of several keys, PFMERGE).
pub fn merge_into(max: &mut [u8], b: &[u8]) -> Result<(), Corrupt> {
    match encoding(b) {
        Encoding::Dense => {
            let regs = &b[HEADER..];
            for (i, m) in max.iter_mut().enumerate() {
                *m = (*m).max(dense_get(regs, i));
            }
            Ok(())
        }
        Encoding::Sparse => sparse_runs(b, |first, len, value| {
            if value != 0 {
                for m in &mut max[first..first + len] {
                    *m = (*m).max(value);
                }
            }
        }),
    }
}

/// Every register's value, in order.
pub fn registers(b: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut regs = vec![0u8; REGISTERS];
    merge_into(&mut regs, b)?;
    Ok(regs)
}

/// How many registers hold each value (index 0..=51 used).
pub type Histogram = [u32; 64];

pub fn histogram_of(regs: &[u8]) -> Histogram {
    let mut h = [0u32; 64];
    for &r in regs {
        h[r as usize & 63] += 1;
    }
    h
}

/// The histogram of a value in either encoding, straight from its opcodes
/// when sparse.
pub fn histogram(b: &[u8]) -> Result<Histogram, Corrupt> {
    match encoding(b) {
        Encoding::Dense => {
            let regs = &b[HEADER..];
            let mut h = [0u32; 64];
            for i in 0..REGISTERS {
                h[dense_get(regs, i) as usize] += 1;
            }
            Ok(h)
        }
        Encoding::Sparse => {
            let mut h = [0u32; 64];
            sparse_runs(b, |_, len, value| h[value as usize] += len as u32)?;
            Ok(h)
        }
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate from a register histogram (Ertl's estimator
/// with Redis's constants and evaluation order, so results are bit-equal).
pub fn estimate(h: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

/// PFDEBUG DECODE's text for a sparse value: `z:len`, `Z:len`, `v:value,len`.
pub fn decode_sparse(b: &[u8]) -> String {
    let ops = &b[HEADER..];
    let mut out = Vec::new();
    let mut p = 0;
    while p < ops.len() {
        let (size, len, value) = opcode(ops, p);
        out.push(if is_zero(ops[p]) {
            format!("z:{len}")
        } else if is_xzero(ops[p]) {
            format!("Z:{len}")
        } else {
            format!("v:{value},{len}")
        });
        p += size;
    }
    out.join(" ")
}

/// PFSELFTEST: the dense register layout against a plain array, and the
/// estimator's error at growing cardinalities within Redis's bound.
pub fn self_test() -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_SIZE - HEADER];
    let mut model = vec![0u8; REGISTERS];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..4 {
        for (i, m) in model.iter_mut().enumerate() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let v = (seed >> 58) as u8;
            dense_put(&mut regs, i, v);
            *m = v;
        }
        if (0..REGISTERS).any(|i| dense_get(&regs, i) != model[i]) {
            return Err("TESTFAILED Register error".into());
        }
    }
    let mut hll = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint = 1u64;
    for n in 1..=100_000u64 {
        add(&mut hll, &n.to_le_bytes(), 3000).map_err(|_| "TESTFAILED corrupt")?;
        if n == checkpoint {
            let est = estimate(&histogram(&hll).map_err(|_| "TESTFAILED corrupt")?);
            let abserr = (n as f64 - est as f64).abs();
            // Redis allows 5 standard errors (6 at the smallest sizes).
            let bound = if n < 10 { 1.0 } else { relerr * 6.0 * n as f64 };
            if abserr > bound {
                return Err(format!(
                    "TESTFAILED Too big error. card:{n} abserr:{abserr}"
                ));
            }
            checkpoint *= 10;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn murmur_matches_known_values() {
        // Element "a" falls in register 8436 with value 1 in redis-server
        // (PFDEBUG DECODE after PFADD h a b c: Z:8436 v:1,1 Z:4274 v:2,1 ...).
        let mut b = new_sparse();
        for e in [&b"a"[..], b"b", b"c"] {
            add(&mut b, e, 3000).unwrap();
        }
        assert_eq!(
            decode_sparse(&b),
            "Z:8436 v:1,1 Z:4274 v:2,1 Z:3068 v:1,1 Z:603"
        );
        assert_eq!(estimate(&histogram(&b).unwrap()), 3);
    }

    #[test]
    fn empty_and_header() {
        let b = new_sparse();
        assert_eq!(b.len(), 18);
        assert!(is_valid(&b));
        assert_eq!(cached(&b), Some(0));
        assert_eq!(estimate(&histogram(&b).unwrap()), 0);
        let mut d = b.clone();
        assert_eq!(to_dense(&mut d), Ok(true));
        assert_eq!(d.len(), DENSE_SIZE);
        assert!(is_valid(&d) && !is_valid(&d[..DENSE_SIZE - 1]));
        assert_eq!(to_dense(&mut d), Ok(false));
        let mut c = b.clone();
        invalidate(&mut c);
        assert_eq!(cached(&c), None);
        set_cache(&mut c, 42);
        assert_eq!(cached(&c), Some(42));
    }

    #[test]
    fn corrupt_sparse_is_detected() {
        let mut b = new_sparse();
        b.push(0x00); // one register too many
        assert_eq!(histogram(&b), Err(Corrupt));
        let mut short = new_sparse();
        short.truncate(HEADER + 1);
        assert_eq!(registers(&short), Err(Corrupt));
        assert!(add(&mut short, b"x", 3000).is_err() || registers(&short).is_err());
    }

    #[test]
    fn self_test_passes() {
        self_test().unwrap();
    }

    proptest! {
        /// Sparse updates (with any promotion threshold) hold the same
        /// registers as a plain array, and dense conversion keeps them.
        #[test]
        fn sparse_and_dense_agree_with_a_register_array(
            ops in proptest::collection::vec((0usize..REGISTERS, 1u8..=51), 0..300),
            small in 0usize..40,
            max_bytes in prop_oneof![Just(3000usize), 20usize..200],
        ) {
            let mut b = new_sparse();
            let mut model = vec![0u8; REGISTERS];
            for (k, (i, v)) in ops.iter().enumerate() {
                // Cluster some updates so that VAL runs form and merge.
                let i = if k % 2 == 0 { i % (small + 1) } else { *i };
                let changed = set_register(&mut b, i, *v, max_bytes).unwrap();
                prop_assert_eq!(changed, model[i] < *v);
                model[i] = model[i].max(*v);
            }
            prop_assert!(is_valid(&b));
            prop_assert_eq!(&registers(&b).unwrap(), &model);
            prop_assert_eq!(histogram(&b).unwrap(), histogram_of(&model));
            if encoding(&b) == Encoding::Sparse {
                prop_assert!(b.len() <= max_bytes.max(18));
            }
            let mut d = b.clone();
            to_dense(&mut d).unwrap();
            prop_assert_eq!(&registers(&d).unwrap(), &model);
        }
    }
}
