//! Redis's compact blobs as they appear inside RDB values: ziplist, listpack,
//! intset and zipmap decoders, and the listpack and intset encoders the
//! writer uses.
//!
//! Every decoder checks every length against the blob it reads and returns an
//! error, never panics, on any input. Integers come back as their decimal
//! text, as Redis hands them to commands. The listpack encoder chooses each
//! entry's encoding as Redis's `lpEncodeGetType` does, so a listpack built
//! here has the bytes redis-server would build from the same elements.

use bytes::Bytes;

/// Why a blob could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {what}")]
pub struct BlobError {
    pub kind: &'static str,
    pub what: String,
}

fn bad(kind: &'static str, what: impl Into<String>) -> BlobError {
    BlobError {
        kind,
        what: what.into(),
    }
}

fn int_text(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

/// A cursor over a blob whose reads fail past its end.
struct Cur<'a> {
    data: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BlobError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(bad(
                self.kind,
                format!("entry at byte {} runs past the end of the blob", self.pos),
            ));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, BlobError> {
        Ok(self.take(1)?[0])
    }

    fn le(&mut self, n: usize) -> Result<u64, BlobError> {
        let b = self.take(n)?;
        Ok(b.iter()
            .rev()
            .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }
}

/// Sign-extends the low `bits` bits of `v`.
fn sext(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// One listpack element, borrowed from its blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LpItem<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl LpItem<'_> {
    /// The element as an integer: integer-encoded, or a string that is a
    /// canonical integer (Redis's `lpGetIntegerIfValid`).
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            LpItem::Int(v) => Some(v),
            LpItem::Str(s) => crate::numbers::parse_i64_strict(s),
        }
    }

    /// The element as Redis hands it to commands: integers as decimal text.
    pub fn to_bytes(&self) -> Bytes {
        match *self {
            LpItem::Int(v) => int_text(v),
            LpItem::Str(s) => Bytes::copy_from_slice(s),
        }
    }
}

/// Walks a listpack's elements without copying them. The header's byte
/// count is checked up front, each entry's back length as it is read, and
/// the end marker and element count when the walk ends (`finish`).
pub struct ListpackIter<'a> {
    c: Cur<'a>,
    declared: usize,
    seen: usize,
    done: bool,
}

impl<'a> ListpackIter<'a> {
    pub fn new(blob: &'a [u8]) -> Result<ListpackIter<'a>, BlobError> {
        const K: &str = "listpack";
        let mut c = Cur {
            data: blob,
            pos: 0,
            kind: K,
        };
        let total = c.le(4)? as usize;
        if total != blob.len() {
            return Err(bad(
                K,
                format!("header says {total} bytes, the blob has {}", blob.len()),
            ));
        }
        let declared = c.le(2)? as usize;
        Ok(ListpackIter {
            c,
            declared,
            seen: 0,
            done: false,
        })
    }

    /// The element count the header declares (`0xffff`: too many to say).
    pub fn declared(&self) -> usize {
        self.declared
    }

    /// The next element, `None` at the end marker.
    pub fn next_item(&mut self) -> Result<Option<LpItem<'a>>, BlobError> {
        const K: &str = "listpack";
        if self.done {
            return Ok(None);
        }
        let c = &mut self.c;
        let start = c.pos;
        let b = c.u8()?;
        if b == 0xff {
            self.done = true;
            if c.pos != c.data.len() {
                return Err(bad(K, "bytes after the end marker"));
            }
            if self.declared != 0xffff && self.declared != self.seen {
                return Err(bad(
                    K,
                    format!("header says {} entries, found {}", self.declared, self.seen),
                ));
            }
            return Ok(None);
        }
        let item = if b & 0x80 == 0 {
            LpItem::Int(i64::from(b & 0x7f))
        } else if b & 0xc0 == 0x80 {
            LpItem::Str(c.take(usize::from(b & 0x3f))?)
        } else if b & 0xe0 == 0xc0 {
            let v = (u64::from(b & 0x1f) << 8) | u64::from(c.u8()?);
            LpItem::Int(sext(v, 13))
        } else if b & 0xf0 == 0xe0 {
            let len = (usize::from(b & 0x0f) << 8) | usize::from(c.u8()?);
            LpItem::Str(c.take(len)?)
        } else {
            match b {
                0xf0 => {
                    let len = c.le(4)? as usize;
                    LpItem::Str(c.take(len)?)
                }
                0xf1 => LpItem::Int(sext(c.le(2)?, 16)),
                0xf2 => LpItem::Int(sext(c.le(3)?, 24)),
                0xf3 => LpItem::Int(sext(c.le(4)?, 32)),
                0xf4 => LpItem::Int(c.le(8)? as i64),
                _ => return Err(bad(K, format!("unknown entry encoding {b:#04x}"))),
            }
        };
        let entry_len = c.pos - start;
        let back = c.take(backlen_size(entry_len))?;
        let (want, _) = encode_backlen(entry_len);
        // Byte by byte: a call to memcmp for at most 5 bytes costs more.
        if back.iter().zip(&want).any(|(a, b)| a != b) {
            return Err(bad(K, format!("bad back length at byte {}", c.pos)));
        }
        self.seen += 1;
        Ok(Some(item))
    }

    /// The next element, which must be there.
    pub fn expect(&mut self, what: &str) -> Result<LpItem<'a>, BlobError> {
        self.next_item()?
            .ok_or_else(|| bad("listpack", format!("ends before {what}")))
    }

    /// The next element, which must be an integer.
    pub fn expect_int(&mut self, what: &str) -> Result<i64, BlobError> {
        self.expect(what)?
            .as_int()
            .ok_or_else(|| bad("listpack", format!("{what} is not an integer")))
    }
}

/// The elements of a listpack (Redis 7's compact list).
pub fn listpack_entries(blob: &[u8]) -> Result<Vec<Bytes>, BlobError> {
    let mut it = ListpackIter::new(blob)?;
    let mut out = Vec::with_capacity(it.declared().min(blob.len()));
    while let Some(item) = it.next_item()? {
        out.push(item.to_bytes());
    }
    Ok(out)
}

/// The elements of a ziplist (the compact list of Redis before 7.0).
pub fn ziplist_entries(blob: &[u8]) -> Result<Vec<Bytes>, BlobError> {
    const K: &str = "ziplist";
    let mut c = Cur {
        data: blob,
        pos: 0,
        kind: K,
    };
    let total = c.le(4)? as usize;
    if total != blob.len() {
        return Err(bad(
            K,
            format!("header says {total} bytes, the blob has {}", blob.len()),
        ));
    }
    let _tail = c.le(4)?;
    let declared = c.le(2)? as usize;
    let mut out = Vec::with_capacity(declared.min(blob.len()));
    let mut prev_len = 0usize;
    loop {
        let start = c.pos;
        let first = c.u8()?;
        if first == 0xff {
            break;
        }
        let prevlen = if first < 254 {
            usize::from(first)
        } else if first == 254 {
            c.le(4)? as usize
        } else {
            unreachable!("0xff handled above")
        };
        if prevlen != prev_len {
            return Err(bad(
                K,
                format!("entry at byte {start} has a wrong previous length"),
            ));
        }
        let enc = c.u8()?;
        let item = match enc >> 6 {
            0 => Bytes::copy_from_slice(c.take(usize::from(enc & 0x3f))?),
            1 => {
                let len = (usize::from(enc & 0x3f) << 8) | usize::from(c.u8()?);
                Bytes::copy_from_slice(c.take(len)?)
            }
            2 => {
                if enc != 0x80 {
                    return Err(bad(K, format!("unknown entry encoding {enc:#04x}")));
                }
                let b = c.take(4)?;
                let len = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                Bytes::copy_from_slice(c.take(len)?)
            }
            _ => match enc {
                0xc0 => int_text(sext(c.le(2)?, 16)),
                0xd0 => int_text(sext(c.le(4)?, 32)),
                0xe0 => int_text(c.le(8)? as i64),
                0xf0 => int_text(sext(c.le(3)?, 24)),
                0xfe => int_text(sext(c.le(1)?, 8)),
                0xf1..=0xfd => int_text(i64::from(enc & 0x0f) - 1),
                _ => return Err(bad(K, format!("unknown entry encoding {enc:#04x}"))),
            },
        };
        prev_len = c.pos - start;
        out.push(item);
    }
    if c.pos != blob.len() {
        return Err(bad(K, "bytes after the end marker"));
    }
    if declared != 0xffff && declared != out.len() {
        return Err(bad(
            K,
            format!("header says {declared} entries, found {}", out.len()),
        ));
    }
    Ok(out)
}

/// The members of a Redis intset, in their (ascending) order.
pub fn intset_members(blob: &[u8]) -> Result<(u8, Vec<i64>), BlobError> {
    const K: &str = "intset";
    let mut c = Cur {
        data: blob,
        pos: 0,
        kind: K,
    };
    let width = c.le(4)?;
    if !matches!(width, 2 | 4 | 8) {
        return Err(bad(K, format!("unknown encoding {width}")));
    }
    let width = width as usize;
    let len = c.le(4)? as usize;
    if len.checked_mul(width) != Some(blob.len() - 8) {
        return Err(bad(
            K,
            format!("{len} members of {width} bytes do not fill the blob"),
        ));
    }
    let mut out = Vec::with_capacity(len);
    for _ in 0..len {
        let v = sext(c.le(width)?, width as u32 * 8);
        if out.last().is_some_and(|&last| last >= v) {
            return Err(bad(K, "members are not strictly ascending"));
        }
        out.push(v);
    }
    Ok((width as u8, out))
}

/// The field/value pairs of a zipmap (hashes of Redis before 2.6).
pub fn zipmap_pairs(blob: &[u8]) -> Result<Vec<(Bytes, Bytes)>, BlobError> {
    const K: &str = "zipmap";
    let mut c = Cur {
        data: blob,
        pos: 0,
        kind: K,
    };
    let _count = c.u8()?;
    let mut out = Vec::new();
    let read_len = |c: &mut Cur<'_>| -> Result<Option<usize>, BlobError> {
        match c.u8()? {
            0xff => Ok(None),
            254 => Ok(Some(c.le(4)? as usize)),
            n => Ok(Some(usize::from(n))),
        }
    };
    while let Some(klen) = read_len(&mut c)? {
        let field = Bytes::copy_from_slice(c.take(klen)?);
        let Some(vlen) = read_len(&mut c)? else {
            return Err(bad(K, "field without a value"));
        };
        let free = usize::from(c.u8()?);
        let value = Bytes::copy_from_slice(c.take(vlen)?);
        c.take(free)?;
        out.push((field, value));
    }
    if c.pos != blob.len() {
        return Err(bad(K, "bytes after the end marker"));
    }
    Ok(out)
}

fn backlen_size(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// A listpack entry's length written backwards (Redis's `lpEncodeBacklen`):
/// the bytes, and how many of them are used.
fn encode_backlen(l: usize) -> ([u8; 5], usize) {
    let n = backlen_size(l);
    let l = l as u64;
    let mut out = [0u8; 5];
    // The first byte holds the highest 7-bit group; every later one has
    // its high bit set.
    for (i, byte) in out[..n].iter_mut().enumerate() {
        let shift = 7 * (n - 1 - i);
        *byte = ((l >> shift) & 127) as u8 | if i == 0 { 0 } else { 128 };
    }
    (out, n)
}

/// Builds a listpack as Redis does from the same elements in order.
#[derive(Debug, Default)]
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl ListpackWriter {
    pub fn new() -> ListpackWriter {
        ListpackWriter {
            buf: vec![0; 6],
            count: 0,
        }
    }

    /// Bytes so far, header included (Redis's `lpBytes` before the end marker).
    pub fn len(&self) -> usize {
        self.buf.len() + 1
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Appends one element; canonical integers are stored as integers.
    pub fn push(&mut self, item: &[u8]) {
        let start = self.buf.len();
        match crate::numbers::parse_i64_strict(item) {
            Some(v) => self.put_int(v),
            None => {
                let n = item.len();
                if n < 64 {
                    self.buf.push(0x80 | n as u8);
                } else if n < 4096 {
                    self.buf.push(0xe0 | (n >> 8) as u8);
                    self.buf.push(n as u8);
                } else {
                    self.buf.push(0xf0);
                    self.buf.extend_from_slice(&(n as u32).to_le_bytes());
                }
                self.buf.extend_from_slice(item);
            }
        }
        let entry_len = self.buf.len() - start;
        let (back, n) = encode_backlen(entry_len);
        self.buf.extend_from_slice(&back[..n]);
        self.count += 1;
    }

    /// Appends an integer element (Redis's `lpAppendInteger`).
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        self.put_int(v);
        let entry_len = self.buf.len() - start;
        let (back, n) = encode_backlen(entry_len);
        self.buf.extend_from_slice(&back[..n]);
        self.count += 1;
    }

    fn put_int(&mut self, v: i64) {
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1fff;
            b.push(0xc0 | (u >> 8) as u8);
            b.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            b.push(0xf1);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&v) {
            b.push(0xf2);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            b.push(0xf3);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(0xf4);
            b.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// The finished blob.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(0xff);
        let total = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        let n = self.count.min(0xffff) as u16;
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

/// A Redis intset blob of `members` (ascending), `width` bytes each.
pub fn intset_blob(width: u8, members: impl ExactSizeIterator<Item = i64>) -> Vec<u8> {
    let w = usize::from(width);
    let mut out = Vec::with_capacity(8 + members.len() * w);
    out.extend_from_slice(&u32::from(width).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for m in members {
        out.extend_from_slice(&m.to_le_bytes()[..w]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strs(items: &[&str]) -> Vec<Bytes> {
        items.iter().map(|s| Bytes::from(s.to_string())).collect()
    }

    #[test]
    fn listpack_round_trips_every_encoding() {
        let long = "x".repeat(5000);
        let mid = "y".repeat(100);
        let items = [
            "0",
            "127",
            "128",
            "-1",
            "-4096",
            "4095",
            "4096",
            "-32768",
            "32767",
            "40000",
            "-8388608",
            "8388607",
            "8388608",
            "2147483647",
            "-2147483649",
            "9223372036854775807",
            "-9223372036854775808",
            "",
            "abc",
            "007",
            "-0",
            &mid,
            &long,
        ];
        let mut w = ListpackWriter::new();
        for i in items {
            w.push(i.as_bytes());
        }
        let blob = w.finish();
        assert_eq!(listpack_entries(&blob).unwrap(), strs(&items));
    }

    #[test]
    fn listpack_bytes_match_redis() {
        // Redis 7.0: RPUSH l a 1 300 → DUMP's listpack node.
        let mut w = ListpackWriter::new();
        for i in ["a", "1", "300"] {
            w.push(i.as_bytes());
        }
        assert_eq!(
            w.finish(),
            [0x0f, 0, 0, 0, 3, 0, 0x81, b'a', 2, 1, 1, 0xc1, 0x2c, 2, 0xff]
        );
    }

    #[test]
    fn intset_round_trips() {
        let blob = intset_blob(4, [-70000i64, 1, 2].into_iter());
        assert_eq!(intset_members(&blob).unwrap(), (4, vec![-70000, 1, 2]));
        assert!(intset_members(&intset_blob(2, [2i64, 1].into_iter())).is_err());
        assert!(intset_members(&blob[..blob.len() - 1]).is_err());
    }

    #[test]
    fn ziplist_decodes_every_encoding() {
        // Built by hand: "ab", 12 (4-bit immediate), -2 (int8), 1000 (int16).
        let mut z = vec![0u8; 10];
        let mut prev = 0u8;
        let mut push = |z: &mut Vec<u8>, body: &[u8]| {
            z.push(prev);
            z.extend_from_slice(body);
            prev = (1 + body.len()) as u8;
        };
        push(&mut z, &[0x02, b'a', b'b']);
        push(&mut z, &[0xfd]);
        push(&mut z, &[0xfe, 0xfe]);
        push(&mut z, &[0xc0, 0xe8, 0x03]);
        z.push(0xff);
        let total = z.len() as u32;
        z[0..4].copy_from_slice(&total.to_le_bytes());
        z[8..10].copy_from_slice(&4u16.to_le_bytes());
        assert_eq!(
            ziplist_entries(&z).unwrap(),
            strs(&["ab", "12", "-2", "1000"])
        );
    }

    #[test]
    fn zipmap_decodes() {
        let blob = [2, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 1, b'z', 0, 0xff];
        assert_eq!(
            zipmap_pairs(&blob).unwrap(),
            vec![
                (Bytes::from("a"), Bytes::from("xy")),
                (Bytes::from("b"), Bytes::from("z"))
            ]
        );
    }

    proptest! {
        #[test]
        fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = listpack_entries(&data);
            let _ = ziplist_entries(&data);
            let _ = intset_members(&data);
            let _ = zipmap_pairs(&data);
        }

        #[test]
        fn listpack_round_trips(items in proptest::collection::vec(
            prop_oneof![any::<i64>().prop_map(|v| v.to_string().into_bytes()),
                        proptest::collection::vec(any::<u8>(), 0..200)], 0..50)) {
            let mut w = ListpackWriter::new();
            for i in &items {
                w.push(i);
            }
            let blob = w.finish();
            let back: Vec<Vec<u8>> = listpack_entries(&blob).unwrap().iter().map(|b| b.to_vec()).collect();
            prop_assert_eq!(back, items);
        }
    }
}
