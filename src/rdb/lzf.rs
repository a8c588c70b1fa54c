//! LZF, the compression Redis applies to strings longer than 20 bytes in RDB
//! files and DUMP payloads.
//!
//! The compressor follows liblzf 3.6 as Redis builds it (16-bit hash table,
//! `VERY_FAST`, the same match search and run layout), so for the same input
//! it emits the same bytes as redis-server; DUMP payloads can then be compared
//! byte for byte. Redis keeps the hash table on the stack uninitialised and
//! stores offsets from the input's start in it, so slots left by the previous
//! compression still point at valid positions and can find matches; a
//! [`Compressor`] keeps its table between calls in the same way, so the nodes
//! of one list compress as Redis compresses them one after another. Only the
//! table's state before a value (Redis's earlier commands) can still differ,
//! which changes some bytes, never what they decode to.

const HLOG: u32 = 16;
const HSIZE: usize = 1 << HLOG;
const MAX_LIT: usize = 1 << 5;
const MAX_OFF: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);

/// Why a compressed block could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LzfError {
    #[error("LZF data ends inside a literal run or back reference")]
    Truncated,
    #[error("LZF back reference points before the start of the output")]
    BadReference,
    #[error("LZF data expands to more than the declared {0} bytes")]
    TooLong(usize),
    #[error("LZF data expands to {got} bytes, {want} declared")]
    WrongLength { got: usize, want: usize },
}

/// Expands `input`, which must yield exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run).ok_or(LzfError::Truncated)?;
            if out.len() + run > out_len {
                return Err(LzfError::TooLong(out_len));
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(LzfError::Truncated)?);
                ip += 1;
            }
            let low = usize::from(*input.get(ip).ok_or(LzfError::Truncated)?);
            ip += 1;
            let back = ((ctrl & 0x1f) << 8) + low + 1;
            let len = len + 2;
            if back > out.len() {
                return Err(LzfError::BadReference);
            }
            if out.len() + len > out_len {
                return Err(LzfError::TooLong(out_len));
            }
            let start = out.len() - back;
            // The reference may overlap what it produces (a run): byte by byte.
            for i in 0..len {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    if out.len() != out_len {
        return Err(LzfError::WrongLength {
            got: out.len(),
            want: out_len,
        });
    }
    Ok(out)
}

fn idx(h: u32) -> usize {
    // liblzf's VERY_FAST hash of three bytes.
    ((((h ^ (h << 5)) >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5))) as usize) & (HSIZE - 1)
}

/// Compresses `input` into at most `max_out` bytes with a fresh table;
/// `None` when it does not fit (Redis then stores the string as is).
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    Compressor::default().compress(input, max_out)
}

/// An LZF compressor whose hash table carries over from one call to the
/// next, as Redis's does (see the module docs). The table is allocated on
/// first use.
#[derive(Default)]
pub struct Compressor {
    /// Slot values are input offsets + 1; 0 is empty.
    htab: Vec<u32>,
}

impl Compressor {
    /// Compresses `input` into at most `max_out` bytes; `None` when it does
    /// not fit.
    pub fn compress(&mut self, input: &[u8], max_out: usize) -> Option<Vec<u8>> {
        if self.htab.is_empty() {
            self.htab = vec![0u32; HSIZE];
        }
        compress_with(&mut self.htab, input, max_out)
    }
}

fn compress_with(htab: &mut [u32], input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let in_len = input.len();
    if in_len == 0 || max_out == 0 || in_len >= u32::MAX as usize {
        return None;
    }
    let mut out = vec![0u8; max_out];
    let out_end = max_out;
    let mut op: usize = 1; // the first run's control byte is at 0
    let mut lit: usize = 0;
    let mut ip: usize = 0;
    let frst = |p: usize| (u32::from(input[p]) << 8) | u32::from(input[p + 1]);
    let next = |v: u32, p: usize| (v << 8) | u32::from(input[p + 2]);
    let mut hval = if in_len >= 2 { frst(0) } else { 0 };
    while in_len >= 3 && ip < in_len - 2 {
        hval = next(hval, ip);
        let slot = idx(hval);
        let prev = htab[slot];
        htab[slot] = ip as u32 + 1;
        // A slot left by an earlier input is an offset like any other.
        let reference = (prev as usize).checked_sub(1);
        let found = reference.filter(|&r| {
            r < ip
                && ip - r - 1 < MAX_OFF
                && r > 0
                && input[r + 2] == input[ip + 2]
                && input[r] == input[ip]
                && input[r + 1] == input[ip + 1]
        });
        if let Some(r) = found {
            let off = ip - r - 1;
            let mut len = 2;
            let maxlen = (in_len - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_end && op - usize::from(lit == 0) + 3 + 1 >= out_end {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1);
            op -= usize::from(lit == 0);
            let mut mismatch = false;
            if maxlen > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        mismatch = true;
                        break;
                    }
                }
            }
            if !mismatch {
                loop {
                    len += 1;
                    if !(len < maxlen && input[r + len] == input[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2;
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1;
            ip += len + 1;
            if ip >= in_len - 2 {
                break;
            }
            ip -= 2;
            hval = frst(ip);
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32 + 1;
            ip += 1;
            hval = next(hval, ip);
            htab[idx(hval)] = ip as u32 + 1;
            ip += 1;
        } else {
            push_literal(&mut out, out_end, &mut op, &mut lit, input[ip])?;
            ip += 1;
        }
    }
    if op + 3 > out_end {
        return None;
    }
    while ip < in_len {
        push_literal(&mut out, out_end, &mut op, &mut lit, input[ip])?;
        ip += 1;
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1);
    op -= usize::from(lit == 0);
    out.truncate(op);
    Some(out)
}

/// Appends one literal byte to the open run, closing the run (its control
/// byte written, room left for the next one's) once it holds `MAX_LIT`.
/// `None` when the output is full.
#[inline]
fn push_literal(
    out: &mut [u8],
    out_end: usize,
    op: &mut usize,
    lit: &mut usize,
    byte: u8,
) -> Option<()> {
    if *op >= out_end {
        return None;
    }
    *lit += 1;
    out[*op] = byte;
    *op += 1;
    if *lit == MAX_LIT {
        out[*op - *lit - 1] = (*lit - 1) as u8;
        *lit = 0;
        *op += 1;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_repetitive_text() {
        let text = b"hello hello hello hello hello hello hello world world world".repeat(20);
        let c = compress(&text, text.len() - 4).expect("compressible");
        assert!(c.len() < text.len() / 4);
        assert_eq!(decompress(&c, text.len()).unwrap(), text);
    }

    #[test]
    fn incompressible_input_does_not_fit() {
        let data: Vec<u8> = (0..64u32).map(|i| (i * 151 % 251) as u8).collect();
        assert!(compress(&data, data.len() - 4).is_none());
    }

    #[test]
    fn decompress_rejects_damage() {
        let text = b"abcabcabcabcabcabcabcabcabcabc".to_vec();
        let c = compress(&text, text.len() - 4).unwrap();
        assert!(decompress(&c, text.len() + 1).is_err());
        assert!(decompress(&c[..c.len() - 1], text.len()).is_err());
        assert_eq!(decompress(&[0xe0], 10), Err(LzfError::Truncated));
        assert_eq!(decompress(&[0x20, 0x05], 10), Err(LzfError::BadReference));
    }

    proptest! {
        #[test]
        fn compress_then_decompress_is_identity(
            data in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), any::<u8>()], 0..3000),
            slack in 0usize..64,
        ) {
            if let Some(c) = compress(&data, data.len() + slack) {
                prop_assert!(c.len() <= data.len() + slack);
                prop_assert_eq!(decompress(&c, data.len()).unwrap(), data);
            }
        }

        #[test]
        fn decompress_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), n in 0usize..400) {
            let _ = decompress(&data, n);
        }
    }
}
