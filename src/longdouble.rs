//! Redis's long double arithmetic for INCRBYFLOAT and HINCRBYFLOAT.
//!
//! Redis adds in C's `long double` (80-bit extended precision on x86-64) and
//! prints the sum with `%.17Lf`, trailing zeros trimmed: `5005.6` becomes
//! `5005.60000000000000009`, and `1e400` is a valid operand. Rust has no such
//! type, so `src/longdouble.c` makes the same C library calls (`strtold`,
//! `snprintf`) and the results match Redis's bit for bit.

use bytes::Bytes;

/// Redis's MAX_LONG_DOUBLE_CHARS: the longest operand, and room for any sum.
const MAX_CHARS: usize = 5 * 1024;

extern "C" {
    fn forkless_ld_check(s: *const u8, len: usize, infinite: *mut i32) -> i32;
    fn forkless_ld_add(
        a: *const u8,
        a_len: usize,
        b: *const u8,
        b_len: usize,
        out: *mut u8,
        cap: usize,
        out_len: *mut usize,
    ) -> i32;
}

/// Why a long double sum failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SumError {
    /// The first operand is not a valid float.
    FirstNotFloat,
    /// The second operand is not a valid float.
    SecondNotFloat,
    /// The sum is NaN or infinite.
    NanOrInfinity,
}

/// Parses `s` as Redis's `string2ld` does: `Some(true)` for a valid infinity,
/// `Some(false)` for a finite value, `None` when it is not a float.
pub fn check(s: &[u8]) -> Option<bool> {
    let mut infinite = 0i32;
    // SAFETY: `s` is valid for `s.len()` bytes and `infinite` is a valid i32;
    // the C side reads at most `len` bytes (and refuses lengths past its
    // buffer) and writes only `*infinite`.
    let ok = unsafe { forkless_ld_check(s.as_ptr(), s.len(), &mut infinite) };
    (ok == 1).then_some(infinite != 0)
}

/// `a + b` in long double, formatted as Redis's human-friendly `ld2string`.
pub fn add(a: &[u8], b: &[u8]) -> Result<Bytes, SumError> {
    let mut out = vec![0u8; MAX_CHARS];
    let mut len = 0usize;
    // SAFETY: `a` and `b` are valid for their lengths; `out` is valid for
    // writes of `out.len()` bytes, which the C side never exceeds (snprintf
    // is given that capacity); `len` is a valid usize it sets on success.
    let code = unsafe {
        forkless_ld_add(
            a.as_ptr(),
            a.len(),
            b.as_ptr(),
            b.len(),
            out.as_mut_ptr(),
            out.len(),
            &mut len,
        )
    };
    match code {
        0 => {
            out.truncate(len);
            Ok(Bytes::from(out))
        }
        1 => Err(SumError::FirstNotFloat),
        2 => Err(SumError::SecondNotFloat),
        // 4 (no room) cannot happen: every finite long double prints in
        // fewer than MAX_CHARS bytes with 17 decimals.
        _ => Err(SumError::NanOrInfinity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> Result<String, SumError> {
        add(a.as_bytes(), b.as_bytes()).map(|v| String::from_utf8(v.to_vec()).unwrap())
    }

    /// Replies of redis-server 7.0 on x86-64.
    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(sum("5000", "5.6").unwrap(), "5005.60000000000000009");
        assert_eq!(sum("10.5", "0.1").unwrap(), "10.6");
        assert_eq!(sum("0", "3.0e3").unwrap(), "3000");
        assert_eq!(sum("-1", "1").unwrap(), "0");
        assert_eq!(sum("0", "-0.0").unwrap(), "0");
        assert_eq!(sum("1e400", "0").unwrap().len(), 401);
        assert_eq!(sum("0", "1e-20").unwrap(), "0");
        assert_eq!(sum("0", "0x10").unwrap(), "16");
    }

    #[test]
    fn invalid_operands_and_results() {
        assert_eq!(sum("abc", "1"), Err(SumError::FirstNotFloat));
        assert_eq!(sum("1", ""), Err(SumError::SecondNotFloat));
        assert_eq!(sum(" 1", "1"), Err(SumError::FirstNotFloat));
        assert_eq!(sum("1", "1 "), Err(SumError::SecondNotFloat));
        assert_eq!(sum("1", "nan"), Err(SumError::SecondNotFloat));
        assert_eq!(sum("\0\r\n", "1"), Err(SumError::FirstNotFloat));
        assert_eq!(sum("1", "2\0"), Err(SumError::SecondNotFloat));
        assert_eq!(sum("1", "1e5000"), Err(SumError::SecondNotFloat));
        assert_eq!(sum("1", "inf"), Err(SumError::NanOrInfinity));
        assert_eq!(
            sum("1", &"1".repeat(MAX_CHARS)),
            Err(SumError::SecondNotFloat)
        );
        assert_eq!(check(b"inf"), Some(true));
        assert_eq!(check(b"-1.5"), Some(false));
        assert_eq!(check(b"x"), None);
    }
}
