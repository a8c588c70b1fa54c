//! SCAN-family cursors. SCAN, HSCAN and SSCAN walk their tries with a cursor
//! that is a position in hash order (the hash of the next item to visit,
//! [`Champ::scan`](super::champ::Champ::scan)), so the server keeps no state
//! between calls; a compact encoding (listpack, intset) is returned whole with
//! cursor 0, as in Redis.

/// Parses a client's cursor argument (Redis: an unsigned 64-bit decimal).
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_unsigned_decimals() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"-1"), None);
        assert_eq!(parse_cursor(b"x"), None);
    }
}
