//! Argument parsing shared by the command families, with Redis's error replies.

use std::time::Duration;

use crate::errors::CommandError;

/// Case-insensitive ASCII comparison of an argument with a keyword.
pub fn is(arg: &[u8], keyword: &str) -> bool {
    arg.eq_ignore_ascii_case(keyword.as_bytes())
}

/// Parses a strict signed 64-bit decimal as Redis's string2ll does: no sign `+`,
/// no leading zeros, no spaces.
pub fn parse_i64_strict(arg: &[u8]) -> Option<i64> {
    if arg.is_empty() || arg.len() > 20 {
        return None;
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() || (digits[0] == b'0' && (digits.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = (b - b'0') as i64;
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

/// An integer argument; `ERR value is not an integer or out of range` otherwise.
pub fn int(arg: &[u8]) -> Result<i64, CommandError> {
    parse_i64_strict(arg).ok_or(CommandError::NotInteger)
}

/// A non-negative integer argument that must fit in `usize`.
pub fn uint(arg: &[u8]) -> Result<usize, CommandError> {
    let v = int(arg)?;
    usize::try_from(v).map_err(|_| CommandError::NotInteger)
}

/// Parses a double the way Redis's string2ld/strtold accepts it: no spaces, no
/// NaN; `inf`/`-inf` are accepted.
pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty() || s.starts_with(char::is_whitespace) || s.ends_with(char::is_whitespace) {
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
            s.parse::<f64>().ok()?
        }
    };
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// A float argument; `ERR value is not a valid float` otherwise.
pub fn float(arg: &[u8]) -> Result<f64, CommandError> {
    parse_f64(arg).ok_or(CommandError::NotFloat)
}

/// A blocking command's timeout in seconds (fractions allowed); `None` = forever.
pub fn timeout(arg: &[u8]) -> Result<Option<Duration>, CommandError> {
    let secs = parse_f64(arg).ok_or(CommandError::TimeoutNotFloat)?;
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

/// Formats a float for INCRBYFLOAT / HINCRBYFLOAT replies: plain decimal, no
/// exponent, the shortest digits that read back to the same value. Redis computes
/// in 80-bit long double and prints 17 decimals, so results that need more than
/// f64 precision can differ in the last digits (listed in the README).
pub fn format_float_human(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{v}")
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
    fn human_floats() {
        assert_eq!(format_float_human(10.5), "10.5");
        assert_eq!(format_float_human(5000.0), "5000");
        assert_eq!(format_float_human(3.0e3 + 0.1), "3000.1");
        assert_eq!(format_float_human(1e20), "100000000000000000000");
        assert_eq!(format_float_human(1.1e-5), "0.000011");
        assert_eq!(format_float_human(-1.25), "-1.25");
    }

    #[test]
    fn timeouts() {
        assert_eq!(timeout(b"0").unwrap(), None);
        assert_eq!(timeout(b"0.5").unwrap(), Some(Duration::from_millis(500)));
        assert_eq!(timeout(b"-1"), Err(CommandError::TimeoutNegative));
        assert_eq!(timeout(b"x"), Err(CommandError::TimeoutNotFloat));
        assert_eq!(timeout(b"inf"), Err(CommandError::TimeoutNegative));
        assert_eq!(timeout(b"1e100"), Err(CommandError::TimeoutNegative));
    }
}
