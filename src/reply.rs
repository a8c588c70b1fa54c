//! Replies and their RESP2/RESP3 encoding.
//!
//! A handler builds one [`Reply`] tree; [`Reply::encode`] writes it for the
//! connection's protocol version, degrading RESP3-only types the way Redis 7 does
//! (maps become flat arrays, sets become arrays, doubles become bulk strings,
//! booleans become integers, verbatim strings become bulk strings, both nulls keep
//! their RESP2 shapes).

use bytes::{BufMut, Bytes, BytesMut};

/// Protocol version a connection speaks; set by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Resp2,
    Resp3,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`-style status line.
    Simple(String),
    /// A full error line, prefix included (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    /// The null bulk string (`$-1` in RESP2).
    Null,
    /// The null array (`*-1` in RESP2), e.g. a timed-out BLPOP.
    NullArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Set(Vec<Reply>),
    Double(f64),
    Bool(bool),
    /// Verbatim text (`=` in RESP3), e.g. INFO and CLIENT LIST.
    Verbatim(String),
    /// An out-of-band push message (`>` in RESP3).
    Push(Vec<Reply>),
    /// A RESP3 one-line type with its exact text (`,` double, `(` big
    /// number), as Lua scripts produce them; a bulk string in RESP2.
    Line3(u8, String),
    /// An array of bulk strings already in wire form (LRANGE's reply).
    Bulks(BulkRun),
}

/// An array of bulk strings encoded as they are built: the elements are
/// copied once, straight into wire form, with no handle or allocation each.
/// An array of bulks reads the same in RESP2 and RESP3.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BulkRun {
    count: usize,
    /// `$<len>\r\n<bytes>\r\n` per element.
    wire: Vec<u8>,
}

impl BulkRun {
    /// Room for `count` elements of `bytes` bytes in all.
    pub fn with_capacity(count: usize, bytes: usize) -> BulkRun {
        BulkRun {
            count: 0,
            wire: Vec::with_capacity(bytes + count * 6),
        }
    }

    pub fn push(&mut self, elem: &[u8]) {
        let mut n = itoa_buf(elem.len() as i64);
        let len = n.as_bytes_mut();
        self.wire.reserve(len.len() + elem.len() + 5);
        self.wire.push(b'$');
        self.wire.extend_from_slice(len);
        self.wire.extend_from_slice(b"\r\n");
        self.wire.extend_from_slice(elem);
        self.wire.extend_from_slice(b"\r\n");
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The elements, read back from the wire form.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut rest = &self.wire[..];
        std::iter::from_fn(move || {
            let digits_end = rest.iter().position(|&b| b == b'\r')?;
            let len: usize = std::str::from_utf8(&rest[1..digits_end])
                .ok()?
                .parse()
                .ok()?;
            let start = digits_end + 2;
            let elem = &rest[start..start + len];
            rest = &rest[start + len + 2..];
            Some(elem)
        })
    }

    /// The same elements as an array of bulk replies.
    pub fn to_array(&self) -> Reply {
        Reply::Array(
            self.iter()
                .map(|e| Reply::Bulk(Bytes::copy_from_slice(e)))
                .collect(),
        )
    }
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    pub fn simple(s: &str) -> Reply {
        Reply::Simple(s.to_string())
    }

    pub fn bulk(b: impl Into<Bytes>) -> Reply {
        Reply::Bulk(b.into())
    }

    pub fn bulk_str(s: &str) -> Reply {
        Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    pub fn bulk_opt(b: Option<Bytes>) -> Reply {
        b.map(Reply::Bulk).unwrap_or(Reply::Null)
    }

    pub fn bulks<I: IntoIterator<Item = Bytes>>(items: I) -> Reply {
        Reply::Array(items.into_iter().map(Reply::Bulk).collect())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the wire form of this reply for `proto` to `out`.
    pub fn encode(&self, proto: Protocol, out: &mut BytesMut) {
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Integer(n) => {
                let mut buf = itoa_buf(*n);
                line(out, b':', buf.as_bytes_mut())
            }
            Reply::Bulk(b) => bulk(out, b),
            Reply::Null => match proto {
                Protocol::Resp2 => out.put_slice(b"$-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::NullArray => match proto {
                Protocol::Resp2 => out.put_slice(b"*-1\r\n"),
                Protocol::Resp3 => out.put_slice(b"_\r\n"),
            },
            Reply::Array(items) => {
                header(out, b'*', items.len());
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Set(items) => {
                header(
                    out,
                    if proto == Protocol::Resp3 { b'~' } else { b'*' },
                    items.len(),
                );
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Push(items) => {
                header(
                    out,
                    if proto == Protocol::Resp3 { b'>' } else { b'*' },
                    items.len(),
                );
                for item in items {
                    item.encode(proto, out);
                }
            }
            Reply::Map(pairs) => {
                match proto {
                    Protocol::Resp3 => header(out, b'%', pairs.len()),
                    Protocol::Resp2 => header(out, b'*', pairs.len() * 2),
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(d) => {
                let text = DoubleText::new(*d);
                match proto {
                    Protocol::Resp3 => line(out, b',', text.as_bytes()),
                    Protocol::Resp2 => bulk(out, text.as_bytes()),
                }
            }
            Reply::Bool(b) => match proto {
                Protocol::Resp3 => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
                Protocol::Resp2 => out.put_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
            },
            Reply::Line3(prefix, text) => match proto {
                Protocol::Resp3 => line(out, *prefix, text.as_bytes()),
                Protocol::Resp2 => bulk(out, text.as_bytes()),
            },
            Reply::Bulks(run) => {
                header(out, b'*', run.count);
                out.extend_from_slice(&run.wire);
            }
            Reply::Verbatim(text) => match proto {
                Protocol::Resp3 => {
                    header(out, b'=', text.len() + 4);
                    out.put_slice(b"txt:");
                    out.put_slice(text.as_bytes());
                    out.put_slice(b"\r\n");
                }
                Protocol::Resp2 => bulk(out, text.as_bytes()),
            },
        }
    }

    /// Encodes into a fresh buffer; handy in tests.
    pub fn to_bytes(&self, proto: Protocol) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(proto, &mut out);
        out.freeze()
    }
}

/// Formats a double the way Redis 7.0 replies with one: `inf`, `-inf`,
/// `nan`, otherwise C's `%.17g` (17 significant digits, so every double
/// reads back exactly: `1.1` is `1.1000000000000001`, `1e200` is
/// `9.9999999999999997e+199`).
pub fn format_double(d: f64) -> String {
    DoubleText::new(d).as_str().to_string()
}

/// [`format_double`]'s text in a stack buffer: replies with scores format
/// one per element, so the formatting allocates nothing.
pub struct DoubleText {
    buf: [u8; 32],
    len: usize,
}

impl DoubleText {
    pub fn new(d: f64) -> DoubleText {
        let mut t = DoubleText {
            buf: [0; 32],
            len: 0,
        };
        if d.is_nan() {
            t.put(b"nan");
        } else if d.is_infinite() {
            t.put(if d > 0.0 { b"inf" } else { b"-inf" });
        } else if d.fract() == 0.0
            && d.abs() < 9_007_199_254_740_992.0
            && !(d == 0.0 && d.is_sign_negative())
        {
            // Integers below 2^53 have at most 16 digits, which `%.17g`
            // prints in full; this skips the exact float formatting for them.
            let mut n = itoa_buf(d as i64);
            t.put(n.as_bytes_mut());
        } else {
            t.g17(d);
        }
        t
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("ASCII digits")
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    /// `%.17g` of a finite double: the exponent of the value rounded to 17
    /// digits picks fixed or exponential notation; trailing zeros are dropped.
    fn g17(&mut self, d: f64) {
        use std::fmt::Write;
        const PRECISION: i32 = 17;
        let mut sci = StackText::default();
        write!(sci, "{:.*e}", (PRECISION - 1) as usize, d).expect("fits 32 bytes");
        let sci = sci.as_bytes();
        let e = sci.iter().position(|&c| c == b'e').expect("exponent form");
        let exp: i32 = std::str::from_utf8(&sci[e + 1..])
            .ok()
            .and_then(|x| x.parse().ok())
            .expect("exponent digits");
        if (-4..PRECISION).contains(&exp) {
            let mut fixed = StackText::default();
            write!(fixed, "{:.*}", (PRECISION - 1 - exp) as usize, d).expect("fits 32 bytes");
            self.put(trim_fraction(fixed.as_bytes()));
        } else {
            self.put(trim_fraction(&sci[..e]));
            self.put(if exp < 0 { b"e-" } else { b"e+" });
            if exp.abs() < 10 {
                self.put(b"0");
            }
            let mut n = itoa_buf(exp.abs() as i64);
            self.put(n.as_bytes_mut());
        }
    }
}

/// Drops a fraction's trailing zeros, and its point if nothing is left.
fn trim_fraction(s: &[u8]) -> &[u8] {
    if !s.contains(&b'.') {
        return s;
    }
    let mut end = s.len();
    while s[end - 1] == b'0' {
        end -= 1;
    }
    if s[end - 1] == b'.' {
        end -= 1;
    }
    &s[..end]
}

/// A `fmt::Write` target on the stack, for [`DoubleText`].
#[derive(Default)]
struct StackText {
    buf: [u8; 32],
    len: usize,
}

impl StackText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod format_double_tests {
    use super::format_double;

    #[test]
    fn matches_c_percent_17g() {
        for (v, want) in [
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (3.0, "3"),
            (-0.0, "-0"),
            (1.5, "1.5"),
            (1e200, "9.9999999999999997e+199"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (-1e-320, "-9.9998886718268301e-321"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(format_double(v), want, "{v:e}");
        }
    }

    /// Against C's own `%.17g` over doubles of every magnitude.
    #[test]
    fn matches_snprintf() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let d = f64::from_bits(x);
            if !d.is_finite() {
                continue;
            }
            for v in [d, (x % 1_000_000) as f64 / 1000.0, (x >> 11) as f64] {
                let mut buf = [0u8; 64];
                // SAFETY: a NUL-terminated format with one double argument,
                // into a buffer of the length given.
                let n = unsafe {
                    libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%.17g".as_ptr(), v)
                };
                let want = std::str::from_utf8(&buf[..n as usize]).unwrap();
                assert_eq!(format_double(v), want, "{v:e}");
            }
        }
    }
}

struct ItoaBuf {
    buf: [u8; 24],
    start: usize,
}

impl ItoaBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(n: i64) -> ItoaBuf {
    let mut buf = [0u8; 24];
    let mut pos = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        pos -= 1;
        buf[pos] = b'-';
    }
    ItoaBuf { buf, start: pos }
}

fn line(out: &mut BytesMut, prefix: u8, body: &[u8]) {
    out.reserve(body.len() + 3);
    out.put_u8(prefix);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

fn header(out: &mut BytesMut, prefix: u8, len: usize) {
    let mut n = itoa_buf(len as i64);
    line(out, prefix, n.as_bytes_mut());
}

fn bulk(out: &mut BytesMut, body: &[u8]) {
    header(out, b'$', body.len());
    out.reserve(body.len() + 2);
    out.put_slice(body);
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: Reply, p: Protocol) -> String {
        String::from_utf8(r.to_bytes(p).to_vec()).unwrap()
    }

    #[test]
    fn a_bulk_run_encodes_as_an_array_of_bulks() {
        let elems: [&[u8]; 4] = [b"a", b"", b"with\r\ninside", &[0xff; 300]];
        let mut run = BulkRun::with_capacity(1, 1);
        elems.iter().for_each(|e| run.push(e));
        assert_eq!(run.len(), 4);
        assert!(run.iter().eq(elems.iter().copied()));
        let array = Reply::bulks(elems.iter().map(|e| Bytes::copy_from_slice(e)));
        for p in [Protocol::Resp2, Protocol::Resp3] {
            assert_eq!(Reply::Bulks(run.clone()).to_bytes(p), array.to_bytes(p));
        }
        assert_eq!(run.to_array(), array);
    }

    #[test]
    fn scalars() {
        assert_eq!(enc(Reply::ok(), Protocol::Resp2), "+OK\r\n");
        assert_eq!(enc(Reply::Integer(-42), Protocol::Resp2), ":-42\r\n");
        assert_eq!(
            enc(Reply::Integer(i64::MIN), Protocol::Resp2),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(enc(Reply::bulk_str("hi"), Protocol::Resp2), "$2\r\nhi\r\n");
        assert_eq!(enc(Reply::Null, Protocol::Resp2), "$-1\r\n");
        assert_eq!(enc(Reply::NullArray, Protocol::Resp2), "*-1\r\n");
        assert_eq!(enc(Reply::Null, Protocol::Resp3), "_\r\n");
    }

    #[test]
    fn resp3_types_degrade_in_resp2() {
        let map = Reply::Map(vec![(Reply::bulk_str("a"), Reply::Integer(1))]);
        assert_eq!(enc(map.clone(), Protocol::Resp2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(map, Protocol::Resp3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(Reply::Double(1.5), Protocol::Resp2), "$3\r\n1.5\r\n");
        assert_eq!(enc(Reply::Double(1.5), Protocol::Resp3), ",1.5\r\n");
        assert_eq!(enc(Reply::Bool(true), Protocol::Resp2), ":1\r\n");
        assert_eq!(
            enc(Reply::Verbatim("x".into()), Protocol::Resp3),
            "=5\r\ntxt:x\r\n"
        );
        assert_eq!(enc(Reply::Set(vec![]), Protocol::Resp3), "~0\r\n");
    }
}
