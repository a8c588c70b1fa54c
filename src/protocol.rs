//! The RESP request codec: turns bytes from a client into commands.
//!
//! Both request forms Redis accepts are parsed here: multibulk (`*N\r\n$len\r\n...`)
//! and inline (`SET a b\r\n`, with redis-cli style quoting). A connection's
//! [`RequestParser`] takes each multibulk argument off the read buffer as soon
//! as it is complete and remembers how many are still to come, so no byte is
//! parsed twice however slowly a request arrives.
//!
//! A multibulk argument is a slice of the read buffer, not a copy: parsing a
//! request allocates nothing per argument. The price is a rule for every
//! command: an argument kept beyond its command (a stored value, member, key
//! or name, a subscription, a queued transaction) must be copied
//! (`Bytes::copy_from_slice`), or its few bytes keep the whole read buffer
//! alive, and the connection then reads into a new one.
//!
//! Limits follow Redis 7: a bulk may be at most `proto-max-bulk-len` bytes, a
//! multibulk count at most `i32::MAX`, an inline request or a count line at most
//! 64 KiB. A declared length never allocates by itself; memory grows only with
//! bytes that actually arrived.

use bytes::{Buf, Bytes, BytesMut};

/// Largest inline request, and largest unterminated count line (Redis's PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Default largest bulk argument (Redis's proto-max-bulk-len).
pub const DEFAULT_MAX_BULK: usize = 512 * 1024 * 1024;
/// Largest multibulk count Redis accepts.
const MAX_MULTIBULK: i64 = i32::MAX as i64;
/// Preallocate at most this many argument slots, however many were declared.
const PREALLOC_ARGS: usize = 1024;
/// Argument vectors kept for reuse: a pipeline's worth.
const MAX_SPARE: usize = 64;

/// Broken framing. The client gets `-ERR Protocol error: ...` and is disconnected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: too big mbulk count string")]
    MultibulkCountTooBig,
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
}

/// The request parser of one connection. It keeps its place in a multibulk
/// request between reads: each complete argument is taken off the buffer as
/// it arrives, as Redis does with its `multibulklen`/`bulklen` state, so a
/// request sent slowly is parsed once, in time linear in its size.
#[derive(Debug, Default)]
pub struct RequestParser {
    /// A multibulk request whose arguments are still arriving.
    partial: Option<Partial>,
    /// Bytes examined so far (for tests: parse work must stay linear).
    scanned: u64,
    /// Where the complete arguments of the request being parsed lie in the
    /// read buffer (kept to reuse its allocation).
    spans: Vec<(usize, usize)>,
    /// Emptied argument vectors of executed commands, reused for the next
    /// requests instead of one allocation per command.
    spare: Vec<Vec<Bytes>>,
}

#[derive(Debug)]
struct Partial {
    remaining: usize,
    args: Vec<Bytes>,
}

impl RequestParser {
    /// Takes the next complete command off `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, and `Ok(Some(vec![]))`
    /// for an empty request (a blank inline line or `*0`), which Redis
    /// silently skips. Complete arguments of an unfinished multibulk request
    /// are consumed and kept; an unfinished inline request or argument stays
    /// in `buf`.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        max_bulk: usize,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.partial.is_none() {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                self.scanned += buf.len().min(INLINE_MAX) as u64;
                return parse_inline(buf);
            }
            let Some(count) = self.header(buf)? else {
                return Ok(None);
            };
            if count == 0 {
                return Ok(Some(Vec::new()));
            }
            let mut args = self.spare.pop().unwrap_or_default();
            args.reserve(count.min(PREALLOC_ARGS));
            self.partial = Some(Partial {
                remaining: count,
                args,
            });
        }
        let Some(partial) = self.partial.as_mut() else {
            return Ok(None);
        };
        // The complete arguments are found first, as spans of `buf`, and then
        // taken off it together: one split for all of them, each argument a
        // slice of the split (no copy and no allocation per argument).
        self.spans.clear();
        let mut pos = 0;
        let complete = loop {
            if self.spans.len() == partial.remaining {
                break true;
            }
            if pos >= buf.len() {
                break false;
            }
            if buf[pos] != b'$' {
                return Err(ProtocolError::ExpectedDollar(buf[pos] as char));
            }
            let Some(nl) = find_crlf(buf, pos + 1) else {
                let unterminated = buf.len() - pos;
                self.scanned += unterminated as u64;
                if unterminated > INLINE_MAX {
                    return Err(ProtocolError::BulkCountTooBig);
                }
                break false;
            };
            self.scanned += (nl - pos) as u64 + 1;
            if nl + 1 >= buf.len() {
                break false;
            }
            let len = parse_i64(&buf[pos + 1..nl]).ok_or(ProtocolError::InvalidBulkLength)?;
            if len < 0 || len as u64 > max_bulk as u64 {
                return Err(ProtocolError::InvalidBulkLength);
            }
            let (start, len) = (nl + 2, len as usize);
            if start + len + 2 > buf.len() {
                // The rest of this argument has not arrived. Room for it is
                // made only as its bytes come: a declared length alone must
                // not allocate.
                break false;
            }
            self.scanned += len as u64;
            self.spans.push((start, start + len));
            pos = start + len + 2;
        };
        if !self.spans.is_empty() {
            // Taken even when the request is unfinished, so a request that
            // arrives slowly is scanned once.
            let frame = buf.split_to(pos).freeze();
            partial.args.extend(
                self.spans
                    .iter()
                    .map(|&(start, end)| frame.slice(start..end)),
            );
            partial.remaining -= self.spans.len();
        }
        if !complete {
            return Ok(None);
        }
        Ok(self.partial.take().map(|p| p.args))
    }

    /// Parses `*<count>\r\n` off `buf`: `None` until the line is complete.
    fn header(&mut self, buf: &mut BytesMut) -> Result<Option<usize>, ProtocolError> {
        let Some(nl) = find_crlf(buf, 1) else {
            self.scanned += buf.len() as u64;
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError::MultibulkCountTooBig);
            }
            return Ok(None);
        };
        self.scanned += nl as u64 + 1;
        if nl + 1 >= buf.len() {
            return Ok(None);
        }
        let count = parse_i64(&buf[1..nl]).ok_or(ProtocolError::InvalidMultibulkLength)?;
        if count > MAX_MULTIBULK {
            return Err(ProtocolError::InvalidMultibulkLength);
        }
        buf.advance(nl + 2);
        Ok(Some(count.max(0) as usize))
    }

    /// Takes back the argument vector of an executed command, for reuse.
    pub fn reuse(&mut self, mut args: Vec<Bytes>) {
        if self.spare.len() < MAX_SPARE && args.capacity() <= PREALLOC_ARGS {
            args.clear();
            self.spare.push(args);
        }
    }

    /// Whether a multibulk request is partly parsed.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Bytes examined since the parser was made.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }
}

/// A copy of `arg` in an allocation of its own, for an argument a command
/// keeps (see the module doc): a slice would keep the read buffer alive.
pub fn detach(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// [`detach`] for every argument of a command kept whole (a queued
/// transaction, a blocked command).
pub fn detach_all(args: &[Bytes]) -> Vec<Bytes> {
    args.iter().map(detach).collect()
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    // Redis looks for '\r' and expects '\n' right after it.
    memchr(b'\r', &buf[from..]).map(|i| from + i)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// Parses a signed decimal the way Redis's string2ll does (no `+`, no spaces,
/// no leading zero), digit by digit: every request line goes through here.
fn parse_i64(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 || (digits[0] == b'0' && digits.len() > 1) {
        return None;
    }
    let (neg, body) = match digits {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, digits),
    };
    if body.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &b in body {
        let d = i64::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return None;
        }
        v = if neg {
            v.checked_mul(10)?.checked_sub(d)?
        } else {
            v.checked_mul(10)?.checked_add(d)?
        };
    }
    Some(v)
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    // Redis finds the newline with strchr, which stops at a NUL byte: a line
    // with a NUL before its newline is never complete, and only the inline
    // size limit ends it.
    let newline = memchr(b'\n', buf).filter(|&nl| memchr(0, &buf[..nl]).is_none());
    let Some(nl) = newline else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let mut content = &line[..nl];
    if content.last() == Some(&b'\r') {
        content = &content[..content.len() - 1];
    }
    split_args(content).map(Some)
}

/// Splits an inline request like Redis's sdssplitargs: whitespace-separated,
/// with "double quotes" (escapes `\n \r \t \b \a \\ \" \xHH`) and 'single quotes'.
pub fn split_args(line: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_space(line[i]) {
            i += 1;
        }
        // A NUL ends the line, as it ends the C string sdssplitargs reads.
        if i >= n || line[i] == 0 {
            return Ok(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n || line[i] == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && line[i + 2].is_ascii_hexdigit()
                    && line[i + 3].is_ascii_hexdigit()
                {
                    let hex = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                    cur.push(hex(line[i + 2]) * 16 + hex(line[i + 3]));
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or the end.
                    if i + 1 < n && line[i + 1] != 0 && !is_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n || line[i] == 0 {
                    return Err(ProtocolError::UnbalancedQuotes);
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && line[i + 1] != 0 && !is_space(line[i + 1]) {
                        return Err(ProtocolError::UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(Bytes::from(cur));
    }
}

/// C's isspace in the "C" locale (includes vertical tab, unlike Rust's
/// `is_ascii_whitespace`).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    #[test]
    fn parse_i64_accepts_what_the_standard_parser_did() {
        // The rules before the digit loop: the standard parser, then no `+`
        // and no leading zero.
        fn reference(digits: &[u8]) -> Option<i64> {
            if digits.is_empty() || digits.len() > 20 {
                return None;
            }
            std::str::from_utf8(digits)
                .ok()?
                .parse()
                .ok()
                .filter(|_| digits[0] != b'+' && !(digits.len() > 1 && digits[0] == b'0'))
        }
        let mut cases: Vec<Vec<u8>> = [
            "",
            "0",
            "00",
            "-0",
            "-01",
            "1",
            "+1",
            "-",
            "+",
            "12a",
            " 1",
            "1 ",
            "-12",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "99999999999999999999",
            "000000000000000000001",
            "\u{0}",
            "1\r",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        cases.extend((0..=255u8).map(|b| vec![b'1', b]));
        cases.push(vec![0xff, b'1']);
        for case in &cases {
            assert_eq!(super::parse_i64(case), reference(case), "{case:?}");
        }
    }

    use super::*;

    /// One parse with a fresh parser.
    fn parse_command(
        buf: &mut BytesMut,
        max_bulk: usize,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        RequestParser::default().next(buf, max_bulk)
    }

    /// Found by fuzzing: a NUL in an inline request made split_args push empty
    /// arguments forever.
    #[test]
    fn nul_bytes_in_inline_requests_terminate() {
        let input = b"[\0SET a \"b\\x41c\" 'd e'\r\nPING\n\r\n";
        let mut buf = BytesMut::from(&input[..]);
        // The NUL hides the newline, as in Redis: the request waits for more.
        assert_eq!(parse_command(&mut buf, DEFAULT_MAX_BULK), Ok(None));
        assert_eq!(buf.len(), input.len());
        // Past the inline limit it is refused.
        buf.extend_from_slice(&vec![b'x'; INLINE_MAX]);
        assert_eq!(
            parse_command(&mut buf, DEFAULT_MAX_BULK),
            Err(ProtocolError::InlineTooBig)
        );
        // split_args itself stops at a NUL like sdssplitargs.
        assert_eq!(split_args(b"SET a b\0c d").unwrap().len(), 3);
        assert_eq!(split_args(b"\0SET").unwrap().len(), 0);
        assert_eq!(
            split_args(b"\"x\0y\""),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(split_args(b"'x'\0zz").unwrap(), vec![Bytes::from("x")]);
        // Vertical tab and form feed separate arguments only between them.
        assert_eq!(
            split_args(b"\x0bECHO q").unwrap(),
            vec![Bytes::from("ECHO"), Bytes::from("q")]
        );
        assert_eq!(
            split_args(b"ECHO a\x0bb").unwrap()[1],
            Bytes::from("a\x0bb")
        );
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut parser = RequestParser::default();
        let mut out = Vec::new();
        while let Some(cmd) = parser.next(&mut buf, DEFAULT_MAX_BULK)? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_pipelining() {
        let cmds = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n").unwrap();
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("a")]);
        assert_eq!(cmds[1], vec![Bytes::from("PING")]);
    }

    #[test]
    fn partial_frames_resume_where_they_stopped() {
        let full = b"*2\r\n$3\r\nGET\r\n$5\r\nhello\r\n*1\r\n$4\r\nPING\r\n";
        for cut in 0..full.len() {
            let mut parser = RequestParser::default();
            let mut buf = BytesMut::from(&full[..cut]);
            let mut got = Vec::new();
            while let Some(cmd) = parser.next(&mut buf, DEFAULT_MAX_BULK).unwrap() {
                got.push(cmd);
            }
            buf.extend_from_slice(&full[cut..]);
            while let Some(cmd) = parser.next(&mut buf, DEFAULT_MAX_BULK).unwrap() {
                got.push(cmd);
            }
            assert_eq!(got.len(), 2, "cut {cut}");
            assert_eq!(got[0], vec![Bytes::from("GET"), Bytes::from("hello")]);
            assert!(buf.is_empty() && !parser.in_progress());
        }
    }

    /// A slow sender of a huge multibulk request costs parse work linear in
    /// its size: each byte is examined about once, not once per read.
    #[test]
    fn slow_multibulk_parse_is_linear() {
        const ARGS: usize = 1_000_000;
        let mut input = format!("*{}\r\n$5\r\nRPUSH\r\n$1\r\nk\r\n", ARGS + 2).into_bytes();
        for i in 0..ARGS {
            let arg = (i % 1000).to_string();
            input.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
        }
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut done = None;
        // 1,000-byte reads: about 11,000 of them.
        for chunk in input.chunks(1000) {
            buf.extend_from_slice(chunk);
            if let Some(cmd) = parser.next(&mut buf, DEFAULT_MAX_BULK).unwrap() {
                done = Some(cmd);
            }
        }
        let cmd = done.expect("the request completes");
        assert_eq!(cmd.len(), ARGS + 2);
        assert_eq!(cmd[ARGS + 1], Bytes::from("999"));
        // Each read may re-examine the one unfinished argument header (a few
        // bytes); re-parsing from the start would be ~11,000 times the input.
        let reads = input.len().div_ceil(1000) as u64;
        assert!(
            parser.scanned() <= input.len() as u64 + 16 * reads,
            "scanned {} bytes for a {}-byte request",
            parser.scanned(),
            input.len()
        );
    }

    #[test]
    fn binary_safe_bulk() {
        let cmds = parse_all(b"*1\r\n$4\r\n\r\n\0\xff\r\n").unwrap();
        assert_eq!(cmds[0][0].as_ref(), b"\r\n\0\xff");
    }

    #[test]
    fn inline_with_quotes() {
        let cmds = parse_all(b"SET k \"a b\\x41\\n\" 'c\\'d'\r\n\r\nPING\n").unwrap();
        assert_eq!(
            cmds[0],
            vec![
                Bytes::from("SET"),
                Bytes::from("k"),
                Bytes::from("a bA\n"),
                Bytes::from("c'd")
            ]
        );
        assert!(cmds[1].is_empty());
        assert_eq!(cmds[2], vec![Bytes::from("PING")]);
    }

    #[test]
    fn protocol_errors_match_redis() {
        assert_eq!(
            parse_all(b"*x\r\n"),
            Err(ProtocolError::InvalidMultibulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\nfoo\r\n"),
            Err(ProtocolError::ExpectedDollar('f'))
        );
        assert_eq!(
            parse_all(b"*1\r\n$-5\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"*1\r\n$999999999999\r\n"),
            Err(ProtocolError::InvalidBulkLength)
        );
        assert_eq!(
            parse_all(b"GET \"a\r\n"),
            Err(ProtocolError::UnbalancedQuotes)
        );
        assert_eq!(
            parse_all(&vec![b'a'; INLINE_MAX + 1]),
            Err(ProtocolError::InlineTooBig)
        );
        assert_eq!(
            ProtocolError::InvalidBulkLength.to_string(),
            "Protocol error: invalid bulk length"
        );
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate() {
        let mut buf = BytesMut::from(&b"*2147483647\r\n$536870912\r\nab"[..]);
        let cap_before = buf.capacity();
        let mut parser = RequestParser::default();
        assert_eq!(parser.next(&mut buf, DEFAULT_MAX_BULK).unwrap(), None);
        // The count line was consumed; nothing was reserved for the bulk.
        assert!(buf.capacity() <= cap_before);
        assert_eq!(&buf[..], b"$536870912\r\nab");
    }

    #[test]
    fn empty_multibulk_is_skipped() {
        let cmds = parse_all(b"*0\r\n*-1\r\n").unwrap();
        assert_eq!(cmds, vec![Vec::<Bytes>::new(), Vec::new()]);
    }
}
