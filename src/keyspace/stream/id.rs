//! Stream entry ids: `<ms>-<seq>`, two 64-bit unsigned numbers ordered
//! lexicographically, as Redis's `streamID`.

use std::fmt;

/// An entry id. `0-0` is never an entry's id; it stands for "nothing yet".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The id right after this one; `None` past the last possible id.
    pub fn next(self) -> Option<StreamId> {
        match self.seq.checked_add(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self.ms.checked_add(1).map(|ms| StreamId { ms, seq: 0 }),
        }
    }

    /// The id right before this one; `None` before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        match self.seq.checked_sub(1) {
            Some(seq) => Some(StreamId { ms: self.ms, seq }),
            None => self
                .ms
                .checked_sub(1)
                .map(|ms| StreamId { ms, seq: u64::MAX }),
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// Parses `<ms>` or `<ms>-<seq>` strictly (Redis's `string2ull` on each
    /// part); a missing sequence is `missing_seq`.
    pub fn parse(arg: &[u8], missing_seq: u64) -> Option<StreamId> {
        let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
            Some(dash) => (&arg[..dash], Some(&arg[dash + 1..])),
            None => (arg, None),
        };
        let ms = parse_u64(ms)?;
        let seq = match seq {
            Some(s) => parse_u64(s)?,
            None => missing_seq,
        };
        Some(StreamId { ms, seq })
    }
}

/// Room for the longest id text: two 20-digit numbers and the dash.
pub const ID_TEXT_MAX: usize = 41;

/// Writes `v` in decimal at the end of `buf[..end]`; returns where it starts.
fn digits_before(mut v: u64, buf: &mut [u8; ID_TEXT_MAX], mut end: usize) -> usize {
    loop {
        end -= 1;
        buf[end] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return end;
        }
    }
}

impl StreamId {
    /// The id's text (`<ms>-<seq>`) in `buf`, written back to front: every
    /// reply naming an entry formats one, and `fmt` with a growing `String`
    /// cost ten times as much.
    pub fn text(self, buf: &mut [u8; ID_TEXT_MAX]) -> &[u8] {
        let seq_at = digits_before(self.seq, buf, ID_TEXT_MAX);
        buf[seq_at - 1] = b'-';
        let ms_at = digits_before(self.ms, buf, seq_at - 1);
        &buf[ms_at..]
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis's `string2ull`: decimal digits that fit 64 bits, after the leading
/// spaces and `+` that its `strtoull` fallback lets through.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let start = s.iter().position(|b| !b.is_ascii_whitespace())?;
    let mut digits = &s[start..];
    if start > 0 || digits.first() == Some(&b'+') {
        digits = digits.strip_prefix(b"+").unwrap_or(digits);
    }
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_neighbours() {
        assert_eq!(StreamId::parse(b"5-3", 0), Some(StreamId::new(5, 3)));
        assert_eq!(StreamId::parse(b"5", 9), Some(StreamId::new(5, 9)));
        assert_eq!(StreamId::parse(b"5-", 0), None);
        assert_eq!(StreamId::parse(b"-1", 0), None);
        assert_eq!(StreamId::parse(b"18446744073709551616", 0), None);
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(StreamId::new(7, 8).to_string(), "7-8");
        let mut buf = [0; ID_TEXT_MAX];
        for id in [
            StreamId::MIN,
            StreamId::new(7, 8),
            StreamId::new(1_700_000_000_123, 10),
            StreamId::new(u64::MAX, 0),
            StreamId::MAX,
        ] {
            assert_eq!(id.text(&mut buf), id.to_string().as_bytes());
        }
    }
}
