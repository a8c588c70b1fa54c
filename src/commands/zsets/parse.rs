//! Range arguments of the sorted set commands, parsed as Redis's
//! `zslParseRange` and `zslParseLexRange` do.
//!
//! A score bound goes through C's `strtod` there, not through the stricter
//! float parsing of ZADD: leading spaces are skipped, an empty text (or a
//! bare `(`) is 0, and a value past f64's range is ±inf; only trailing
//! garbage and NaN are refused.

use crate::commands::args;
use crate::errors::CommandError;
use crate::keyspace::zset::{LexBound, ScoreBound};

fn not_float() -> CommandError {
    CommandError::err("min or max is not a float")
}

fn not_lex() -> CommandError {
    CommandError::err("min or max not valid string range item")
}

/// `strtod` of a whole argument: `None` if anything is left over or it is NaN.
fn strtod_whole(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    let start = text
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let rest = &text[start..];
    if let Some(v) = args::parse_f64(rest) {
        return Some(v);
    }
    // Past f64's range strtod gives ±inf or 0 (ERANGE), which Redis keeps.
    let s = std::str::from_utf8(rest).ok()?;
    if s.ends_with(|c: char| c.is_whitespace()) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| !v.is_nan())
}

/// ZADD's and ZINCRBY's score. A plain decimal of up to 15 digits (what
/// clients send nearly always) is read in place: its digits make an exact
/// integer below 2^53 and a power of ten up to 10^22 is exact too, so one
/// IEEE division rounds correctly (Clinger's fast path) and the result is
/// `strtod`'s. Anything else takes the full parsing, which allocates.
pub fn score(arg: &[u8]) -> Result<f64, CommandError> {
    match fast_decimal(arg) {
        Some(v) => Ok(v),
        None => args::float(arg),
    }
}

fn fast_decimal(arg: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (neg, text) = match arg.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, arg),
    };
    let (mut mantissa, mut digits, mut fraction) = (0u64, 0usize, None::<usize>);
    for &c in text {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                digits += 1;
                if digits > 15 {
                    return None;
                }
                if let Some(f) = &mut fraction {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    // strtod wants a digit on one side of the point at least.
    if digits == 0 {
        return None;
    }
    let v = mantissa as f64 / POW10[fraction.unwrap_or(0)];
    Some(if neg { -v } else { v })
}

fn score_bound(arg: &[u8]) -> Option<ScoreBound> {
    let (exclusive, text) = match arg.split_first() {
        Some((b'(', rest)) => (true, rest),
        _ => (false, arg),
    };
    strtod_whole(text).map(|value| ScoreBound { value, exclusive })
}

/// ZRANGEBYSCORE-style `min max`.
pub fn score_range(min: &[u8], max: &[u8]) -> Result<(ScoreBound, ScoreBound), CommandError> {
    match (score_bound(min), score_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(not_float()),
    }
}

fn lex_bound(arg: &[u8]) -> Option<LexBound> {
    match arg.split_first()? {
        (b'+', []) => Some(LexBound::Max),
        (b'-', []) => Some(LexBound::Min),
        (b'(', rest) => Some(LexBound::Exclusive(bytes::Bytes::copy_from_slice(rest))),
        (b'[', rest) => Some(LexBound::Inclusive(bytes::Bytes::copy_from_slice(rest))),
        _ => None,
    }
}

/// ZRANGEBYLEX-style `min max`: `-`, `+`, `[member` or `(member`.
pub fn lex_range(min: &[u8], max: &[u8]) -> Result<(LexBound, LexBound), CommandError> {
    match (lex_bound(min), lex_bound(max)) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(not_lex()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_bounds_follow_strtod() {
        let v = |s: &str| score_bound(s.as_bytes()).map(|b| (b.value, b.exclusive));
        assert_eq!(v("("), Some((0.0, true)));
        assert_eq!(v(""), Some((0.0, false)));
        assert_eq!(v(" 1"), Some((1.0, false)));
        assert_eq!(v("1 "), None);
        assert_eq!(v("(1e400"), Some((f64::INFINITY, true)));
        assert_eq!(v("-inf"), Some((f64::NEG_INFINITY, false)));
        assert_eq!(v("nan"), None);
        assert_eq!(v("   "), None);
        assert_eq!(v("0x10"), Some((16.0, false)));
    }

    #[test]
    fn scores_read_in_place_equal_the_full_parse() {
        for text in [
            "0",
            "-0",
            "+7",
            "42",
            "007",
            "1.5",
            "-2.25",
            ".5",
            "5.",
            "0.1",
            "123456789012345",
            "99999999999999.9",
            "3.14159",
            "-0.00000000000001",
        ] {
            let fast = fast_decimal(text.as_bytes()).expect(text);
            let full = args::float(text.as_bytes()).unwrap();
            assert_eq!(fast.to_bits(), full.to_bits(), "{text}");
        }
        // Left to the full parse: more digits, exponents, words, oddities.
        for text in [
            "1234567890123456",
            "1e5",
            "inf",
            "nan",
            "",
            "-",
            ".",
            "1.2.3",
            " 1",
            "0x10",
        ] {
            assert_eq!(fast_decimal(text.as_bytes()), None, "{text}");
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = format!("{}", x % 10u64.pow(1 + (x >> 58) as u32 % 15));
            let point = (x >> 60) as usize % (digits.len() + 1);
            let text = format!("{}.{}", &digits[..point], &digits[point..]);
            if let Some(fast) = fast_decimal(text.as_bytes()) {
                let full = args::float(text.as_bytes()).unwrap();
                assert_eq!(fast.to_bits(), full.to_bits(), "{text}");
            }
        }
    }

    #[test]
    fn lex_bounds() {
        assert_eq!(lex_bound(b"+"), Some(LexBound::Max));
        assert_eq!(lex_bound(b"+a"), None);
        assert_eq!(lex_bound(b"a"), None);
        assert_eq!(lex_bound(b""), None);
        assert!(matches!(lex_bound(b"("), Some(LexBound::Exclusive(b)) if b.is_empty()));
    }
}
