//! A raw RESP2/RESP3 client: sends multibulk commands and parses replies into
//! [`V`], which keeps every wire type distinct (simple vs bulk, null bulk vs null
//! array vs RESP3 null, map vs array, double text as sent), so two servers'
//! replies can be compared exactly.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One reply, with its exact wire type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum V {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Vec<u8>),
    NullBulk,
    NullArray,
    Array(Vec<V>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `,` with the text as sent.
    Double(Vec<u8>),
    Bool(bool),
    BigNum(Vec<u8>),
    Verbatim(Vec<u8>),
    Map(Vec<(V, V)>),
    Set(Vec<V>),
    Push(Vec<V>),
}

impl V {
    pub fn is_error(&self) -> bool {
        matches!(self, V::Error(_))
    }

    /// The bytes of a string-like reply.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            V::Simple(b) | V::Bulk(b) | V::Double(b) | V::BigNum(b) | V::Verbatim(b) => Some(b),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            V::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The elements of an array-like reply (array, set, push).
    pub fn items(&self) -> Option<&[V]> {
        match self {
            V::Array(v) | V::Set(v) | V::Push(v) => Some(v),
            _ => None,
        }
    }
}

/// Writes bytes the way a corpus line quotes them.
pub fn quote(b: &[u8]) -> String {
    let plain = !b.is_empty()
        && b.iter()
            .all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\'' && c != b'\\');
    if plain {
        return String::from_utf8_lossy(b).into_owned();
    }
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

fn short(b: &[u8]) -> String {
    if b.len() > 80 {
        format!("{}...({} bytes)", quote(&b[..60]), b.len())
    } else {
        quote(b)
    }
}

impl fmt::Display for V {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, open: &str, v: &[V]| {
            write!(f, "{open}")?;
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                if i >= 40 {
                    return write!(f, "...{} more]", v.len() - i);
                }
                write!(f, "{x}")?;
            }
            write!(f, "]")
        };
        match self {
            V::Simple(b) => write!(f, "+{}", String::from_utf8_lossy(b)),
            V::Error(b) => write!(f, "-{}", String::from_utf8_lossy(b)),
            V::Int(n) => write!(f, ":{n}"),
            V::Bulk(b) => write!(f, "${}", short(b)),
            V::NullBulk => write!(f, "$-1"),
            V::NullArray => write!(f, "*-1"),
            V::Null => write!(f, "_"),
            V::Double(b) => write!(f, ",{}", String::from_utf8_lossy(b)),
            V::Bool(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            V::BigNum(b) => write!(f, "({}", String::from_utf8_lossy(b)),
            V::Verbatim(b) => write!(f, "={}", short(b)),
            V::Array(v) => list(f, "*[", v),
            V::Set(v) => list(f, "~[", v),
            V::Push(v) => list(f, ">[", v),
            V::Map(m) => {
                write!(f, "%{{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                write!(f, "}}")
            }
        }
    }
}

/// A connection speaking raw RESP.
pub struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Conn {
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            r: BufReader::new(s.try_clone()?),
            w: s,
        })
    }

    /// Sends one command and reads its reply.
    pub fn call(&mut self, args: &[Vec<u8>]) -> std::io::Result<V> {
        self.send(args)?;
        self.read()
    }

    /// Convenience for plain-text commands.
    pub fn cmd(&mut self, words: &[&str]) -> V {
        let args: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        self.call(&args)
            .unwrap_or_else(|e| panic!("{words:?}: connection failed: {e}"))
    }

    pub fn send(&mut self, args: &[Vec<u8>]) -> std::io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.w.write_all(&out)
    }

    fn line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.r.read_until(b'\n', &mut buf)?;
        if !buf.ends_with(b"\r\n") {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("connection closed or bad line: {}", quote(&buf)),
            ));
        }
        buf.truncate(buf.len() - 2);
        Ok(buf)
    }

    fn num(&mut self, text: &[u8]) -> std::io::Result<i64> {
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| bad(format!("bad number {}", quote(text))))
    }

    fn blob(&mut self, len: i64) -> std::io::Result<Vec<u8>> {
        let mut b = vec![0; len as usize + 2];
        self.r.read_exact(&mut b)?;
        b.truncate(len as usize);
        Ok(b)
    }

    pub fn read(&mut self) -> std::io::Result<V> {
        let line = self.line()?;
        let (&kind, rest) = line.split_first().ok_or_else(|| bad("empty line".into()))?;
        let rest = rest.to_vec();
        Ok(match kind {
            b'+' => V::Simple(rest),
            b'-' => V::Error(rest),
            b':' => V::Int(self.num(&rest)?),
            b'$' => match self.num(&rest)? {
                -1 => V::NullBulk,
                n => V::Bulk(self.blob(n)?),
            },
            b'=' => {
                let n = self.num(&rest)?;
                V::Verbatim(self.blob(n)?)
            }
            b'*' | b'~' | b'>' => match self.num(&rest)? {
                -1 => V::NullArray,
                n => {
                    let items = (0..n).map(|_| self.read()).collect::<Result<_, _>>()?;
                    match kind {
                        b'*' => V::Array(items),
                        b'~' => V::Set(items),
                        _ => V::Push(items),
                    }
                }
            },
            b'%' => {
                let n = self.num(&rest)?;
                let mut m = Vec::new();
                for _ in 0..n {
                    m.push((self.read()?, self.read()?));
                }
                V::Map(m)
            }
            b'_' => V::Null,
            b',' => V::Double(rest),
            b'#' => V::Bool(rest == b"t"),
            b'(' => V::BigNum(rest),
            _ => return Err(bad(format!("unknown reply type {}", quote(&line)))),
        })
    }
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}
