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
    fn lex_bounds() {
        assert_eq!(lex_bound(b"+"), Some(LexBound::Max));
        assert_eq!(lex_bound(b"+a"), None);
        assert_eq!(lex_bound(b"a"), None);
        assert_eq!(lex_bound(b""), None);
        assert!(matches!(lex_bound(b"("), Some(LexBound::Exclusive(b)) if b.is_empty()));
    }
}
