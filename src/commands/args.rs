//! Argument parsing shared by the command families, with Redis's error replies.

use std::time::Duration;

use bytes::Bytes;

use crate::errors::CommandError;

/// Case-insensitive ASCII comparison of an argument with a keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

pub use crate::numbers::parse_i64_strict;

/// An integer argument; `ERR value is not an integer or out of range` otherwise.
pub fn int(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64_strict(arg).ok_or(CommandError::NotInteger)
}

/// A non-negative integer argument that must fit in `usize`.
pub fn uint(arg: &[u8]) -> Result<usize, CommandError> {
    let v = int(arg)?;
    usize::try_from(v).map_err(|_| CommandError::NotInteger)
}

/// Redis's string2ld refuses strings this long or longer (MAX_LONG_DOUBLE_CHARS).
const MAX_FLOAT_CHARS: usize = 5 * 1024;

/// Parses a double the way Redis's string2ld/strtold accepts it: no spaces, no
/// NaN; `inf`/`-inf` and C99 hexadecimal floats (`0x10`, `0x1.8p3`) are accepted.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty()
        || s.len() >= MAX_FLOAT_CHARS
        || s.starts_with(char::is_whitespace)
        || s.ends_with(char::is_whitespace)
    {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        _ => {
            if lower.contains("nan") || lower.contains("inf") {
                return None;
            }
            let v = match parse_hex_float(&lower) {
                Some(v) => v,
                None => s.parse::<f64>().ok()?,
            };
            // strtold's ERANGE: Redis refuses numbers too large or too small
            // to represent (f64's range is narrower than long double's).
            let mantissa = lower.split('e').next().unwrap_or("");
            let nonzero = mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c));
            if v.is_infinite() || (v == 0.0 && nonzero && !lower.starts_with("0x")) {
                return None;
            }
            v
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// strtold's hexadecimal form: `[+-]0x` hex digits with an optional `.`, then an
/// optional binary exponent `p[+-]N`. None if `s` is not hexadecimal at all or
/// is malformed (strtold would stop early and Redis rejects the leftovers).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest.strip_prefix("0x")?;
    let (digits, exp) = match rest.split_once('p') {
        Some((d, e)) => (d, e.parse::<i32>().ok()?),
        None => (rest, 0),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exp);
    Some(if neg { -value } else { value })
}

/// Whether a decimal literal that overflows f64 is still below long double's
/// maximum (about 1.19e4932), so that strtold would have accepted it.
fn fits_long_double(arg: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(arg) else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    if lower.contains("inf")
        || lower.contains("nan")
        || lower.starts_with(|c: char| c.is_whitespace())
    {
        return false;
    }
    let (mantissa, exp) = lower.split_once('e').unwrap_or((&lower, "0"));
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    let int_digits = mantissa
        .trim_start_matches(['+', '-'])
        .split('.')
        .next()
        .unwrap_or("")
        .trim_start_matches('0')
        .len() as i64;
    let valid = mantissa.parse::<f64>().is_ok();
    valid && exp.saturating_add(int_digits) <= 4932
}

/// A float argument; `ERR value is not a valid float` otherwise.
pub fn float(arg: &[u8]) -> Result<f64, CommandError> {
    parse_f64(arg).ok_or(CommandError::NotFloat)
}

/// A blocking command's timeout in seconds (fractions allowed); `None` = forever.
pub fn timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let Some(secs) = parse_f64(arg) else {
        // Past f64's range but within long double's, Redis's conversion to
        // milliseconds wraps and it answers "timeout is negative".
        return Err(if fits_long_double(arg) {
            CommandError::TimeoutNegative
        } else {
            CommandError::TimeoutNotFloat
        });
    };
    if secs < 0.0 {
        return Err(CommandError::TimeoutNegative);
    }
    // Redis 7.0 converts to milliseconds in a long long; a value past its range
    // wraps negative there, so it answers "timeout is negative".
    if !secs.is_finite() || secs > (i64::MAX / 1000) as f64 {
        return Err(CommandError::TimeoutNegative);
    }
    if secs == 0.0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_micros((secs * 1_000_000.0) as u64)))
}

/// A count that must be at least 1; `ERR <msg>` otherwise.
pub fn at_least_one(arg: &[u8], msg: &str) -> Result<usize, CommandError> {
    parse_i64_strict(arg)
        .filter(|n| *n >= 1)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| CommandError::err(msg))
}

/// Parses the `numkeys key... <where> [COUNT n]` arguments of LMPOP/ZMPOP and
/// their blocking forms from `numkeys_idx`, in Redis's order of checks;
/// `side` reads the `<where>` word (LEFT|RIGHT, MIN|MAX).
pub fn mpop_args<W>(
    args: &[Bytes],
    numkeys_idx: usize,
    side: impl Fn(&[u8]) -> Result<W, CommandError>,
) -> Result<(Vec<Bytes>, W, usize), CommandError> {
    let numkeys = at_least_one(&args[numkeys_idx], "numkeys should be greater than 0")?;
    let where_idx = numkeys_idx
        .checked_add(numkeys)
        .and_then(|i| i.checked_add(1))
        .filter(|i| *i < args.len())
        .ok_or(CommandError::Syntax)?;
    let side = side(&args[where_idx])?;
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && j + 1 < args.len() && is(&args[j], "count") {
            count = Some(at_least_one(
                &args[j + 1],
                "count should be greater than 0",
            )?);
            j += 2;
        } else {
            return Err(CommandError::Syntax);
        }
    }
    let keys = args[numkeys_idx + 1..where_idx].to_vec();
    Ok((keys, side, count.unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64_strict(b"0"), Some(0));
        assert_eq!(parse_i64_strict(b"-12"), Some(-12));
        assert_eq!(parse_i64_strict(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64_strict(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64_strict(b"9223372036854775808"), None);
        for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1 ", b"1.0", b"-"] {
            assert_eq!(parse_i64_strict(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"abc"), None);
    }

    #[test]
    fn hex_and_overlong_floats() {
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"-0X1.8p1"), Some(-3.0));
        assert_eq!(parse_f64(b"0x.8"), Some(0.5));
        assert_eq!(parse_f64(b"0x1p-2"), Some(0.25));
        for bad in [&b"0x"[..], b"0x1p", b"0xg", b"0x1.2.3", b"0x1p1.5"] {
            assert_eq!(parse_f64(bad), None, "{bad:?}");
        }
        let long = vec![b'1'; MAX_FLOAT_CHARS];
        assert_eq!(parse_f64(&long), None);
        assert!(parse_f64(&long[1..]).is_none(), "overflows");
        assert_eq!(parse_f64(b"1e5000"), None);
        assert_eq!(parse_f64(b"1e-5000"), None);
        assert_eq!(parse_f64(b"0e-5000"), Some(0.0));
        let mut zeros = vec![b'0'; MAX_FLOAT_CHARS - 2];
        zeros.push(b'1');
        assert_eq!(parse_f64(&zeros), Some(1.0));
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout(b"0").unwrap(), None);
        assert_eq!(timeout(b"0.5").unwrap(), Some(Duration::from_millis(500)));
        assert_eq!(timeout(b"-1"), Err(CommandError::TimeoutNegative));
        assert_eq!(timeout(b"x"), Err(CommandError::TimeoutNotFloat));
        assert_eq!(timeout(b"inf"), Err(CommandError::TimeoutNegative));
        assert_eq!(timeout(b"1e100"), Err(CommandError::TimeoutNegative));
        assert_eq!(timeout(b"1e400"), Err(CommandError::TimeoutNegative));
        assert_eq!(timeout(b"1e5000"), Err(CommandError::TimeoutNotFloat));
    }
}
