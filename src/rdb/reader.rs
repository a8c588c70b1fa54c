//! Reads RDB files and DUMP payloads into forkless values.
//!
//! The reader streams: it holds one value at a time, never the whole file,
//! and checks every length against the bytes left before it allocates, so a
//! hostile length cannot make it reserve more memory than the file could
//! fill. The CRC-64 runs over every byte read and is compared at the end;
//! the caller installs the keyspace only after that (a stored checksum of 0
//! means "not computed", as in Redis). Every defect is an [`RdbError`] with
//! the byte offset it was found at; the reader never panics on any input.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

use bytes::Bytes;

use super::{crc64, kind, lzf, opcode, packed, MAGIC, MAX_READ_VERSION};
use crate::keyspace::encodings::Encodings;
use crate::keyspace::set::Set;
use crate::keyspace::zset::ZSet;
use crate::keyspace::{Hash, Keyspace, List, Value};

/// Why an RDB file or payload was refused.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    #[error("offset {offset}: {what}")]
    Corrupt { offset: u64, what: String },
    #[error("offset {offset}: the file ends while reading {what}")]
    Truncated { offset: u64, what: String },
    #[error("offset {offset}: key {key:?} in database {db} is a {type_name} (RDB type {type_byte}), which forkless does not support")]
    Unsupported {
        offset: u64,
        db: usize,
        key: String,
        type_name: &'static str,
        type_byte: u8,
    },
    #[error(
        "offset {offset}: RDB checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"
    )]
    Checksum {
        offset: u64,
        stored: u64,
        computed: u64,
    },
}

impl RdbError {
    pub fn is_unreadable(&self) -> bool {
        matches!(self, RdbError::Io(_))
    }
}

/// What an RDB load produced.
#[derive(Debug)]
pub struct Imported {
    pub keyspace: Keyspace,
    pub version: u32,
    pub keys_loaded: u64,
    pub keys_expired: u64,
    /// Keys skipped because they held an empty collection (Redis skips them too).
    pub empty_skipped: u64,
    /// The AUX fields (`redis-ver`, `ctime`, ...), in file order.
    pub aux: Vec<(String, String)>,
    /// Live keys per (database, type name).
    pub per_db: BTreeMap<(usize, &'static str), u64>,
    /// Module AUX records skipped.
    pub module_aux_skipped: u64,
}

/// Loads the RDB file at `path` into a keyspace of `databases` databases.
pub fn load_file(
    path: &Path,
    databases: usize,
    now_ms: i64,
    limits: Encodings,
) -> Result<Imported, RdbError> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    load(
        io::BufReader::with_capacity(256 * 1024, file),
        len,
        databases,
        now_ms,
        limits,
        |_| {},
    )
}

/// Loads an RDB of `len` bytes from `reader`; `progress` is called now and
/// then with the bytes read so far.
pub fn load<R: Read>(
    reader: R,
    len: u64,
    databases: usize,
    now_ms: i64,
    limits: Encodings,
    mut progress: impl FnMut(u64),
) -> Result<Imported, RdbError> {
    let mut input = Input::new(reader, len);
    let head = input.take(9, "the header")?;
    if &head[..5] != MAGIC {
        return Err(input.corrupt_at(0, "not an RDB file: the magic `REDIS` is missing"));
    }
    let version = std::str::from_utf8(&head[5..9])
        .ok()
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or_else(|| input.corrupt_at(5, "the RDB version is not four digits"))?;
    if version == 0 || version > MAX_READ_VERSION {
        return Err(input.corrupt_at(
            5,
            format!("RDB version {version} is not supported (1 to {MAX_READ_VERSION} are)"),
        ));
    }
    let mut out = Imported {
        keyspace: Keyspace::new(databases),
        version,
        keys_loaded: 0,
        keys_expired: 0,
        empty_skipped: 0,
        aux: Vec::new(),
        per_db: BTreeMap::new(),
        module_aux_skipped: 0,
    };
    let mut functions = Vec::new();
    let mut db = 0usize;
    let mut expire_at: Option<i64> = None;
    let mut since_progress = 0u32;
    loop {
        let at = input.offset;
        let t = input.u8("an opcode or type")?;
        match t {
            opcode::EOF => break,
            opcode::SELECTDB => {
                let n = input.len_plain("a database number")?;
                if n >= databases as u64 {
                    return Err(input.corrupt_at(
                        at,
                        format!("database {n} is out of range: the server has {databases} databases (raise `databases`)"),
                    ));
                }
                db = n as usize;
            }
            opcode::RESIZEDB => {
                input.len_plain("a RESIZEDB size")?;
                input.len_plain("a RESIZEDB size")?;
            }
            opcode::EXPIRETIME_MS => {
                let b = input.take(8, "an expiry time")?;
                expire_at = Some(i64::from_le_bytes(b.try_into().expect("8 bytes")));
            }
            opcode::EXPIRETIME => {
                let b = input.take(4, "an expiry time")?;
                let secs = i32::from_le_bytes(b.try_into().expect("4 bytes"));
                expire_at = Some(i64::from(secs) * 1000);
            }
            opcode::IDLE => {
                // forkless tracks no access time: the hint is read and dropped.
                input.len_plain("an idle time")?;
            }
            opcode::FREQ => {
                input.u8("an access frequency")?;
            }
            opcode::AUX => {
                let k = input.string("an AUX field name")?;
                let v = input.string("an AUX field value")?;
                out.aux.push((
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ));
            }
            opcode::MODULE_AUX => {
                input.len_plain("a module id")?;
                skip_module_value(&mut input)?;
                out.module_aux_skipped += 1;
                tracing::warn!(
                    "RDB offset {at}: skipped module AUX data (forkless has no modules)"
                );
            }
            opcode::FUNCTION2 => {
                functions.push(Bytes::from(input.string("a function library")?));
            }
            opcode::FUNCTION_PRE_GA => {
                return Err(input.corrupt_at(
                    at,
                    "functions in the Redis 7.0 release-candidate format are not supported",
                ));
            }
            opcode::SLOT_INFO => {
                for _ in 0..3 {
                    input.len_plain("slot information")?;
                }
            }
            _ => {
                let key = Bytes::from(input.string("a key")?);
                let value = match read_value(&mut input, t, &limits) {
                    Ok(v) => v,
                    Err(ValueError::Rdb(e)) => return Err(e),
                    Err(ValueError::Unsupported(type_byte)) => {
                        return Err(RdbError::Unsupported {
                            offset: at,
                            db,
                            key: String::from_utf8_lossy(&key).into_owned(),
                            type_name: kind::name(type_byte),
                            type_byte,
                        })
                    }
                };
                let expiry = expire_at.take();
                let Some(value) = value else {
                    out.empty_skipped += 1;
                    continue;
                };
                if expiry.is_some_and(|t| t <= now_ms) {
                    out.keys_expired += 1;
                    continue;
                }
                *out.per_db.entry((db, value.type_name())).or_default() += 1;
                if out.keyspace.db_mut(db).insert(key.clone(), value, expiry) {
                    let shown = String::from_utf8_lossy(&key[..key.len().min(64)]).into_owned();
                    return Err(
                        input.corrupt_at(at, format!("duplicate key {shown:?} in database {db}"))
                    );
                }
                out.keys_loaded += 1;
                since_progress += 1;
                if since_progress == 4096 {
                    since_progress = 0;
                    progress(input.offset);
                }
            }
        }
    }
    if version >= 5 {
        let computed = input.crc;
        let at = input.offset;
        let stored =
            u64::from_le_bytes(input.take(8, "the checksum")?.try_into().expect("8 bytes"));
        if stored != 0 && stored != computed {
            return Err(RdbError::Checksum {
                offset: at,
                stored,
                computed,
            });
        }
    }
    if input.remaining() > 0 {
        return Err(input.corrupt_at(
            input.offset,
            format!(
                "{} bytes after the end of the file's data",
                input.remaining()
            ),
        ));
    }
    out.keyspace.set_functions(functions);
    progress(input.offset);
    Ok(out)
}

/// A DUMP payload's value: the trailer (RDB version, CRC-64) is checked
/// first. `Err(None)` is a bad version or checksum, `Err(Some(_))` a value
/// that does not decode (Redis's two RESTORE errors).
pub fn decode_payload(payload: &[u8], limits: &Encodings) -> Result<Value, Option<String>> {
    if payload.len() < 10 {
        return Err(None);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if u32::from(version) > MAX_READ_VERSION {
        return Err(None);
    }
    let stored = u64::from_le_bytes(footer[2..10].try_into().expect("8 bytes"));
    if crc64::crc64(&payload[..payload.len() - 8]) != stored {
        return Err(None);
    }
    let mut input = Input::new(body, body.len() as u64);
    let t = input.u8("the type").map_err(|e| Some(e.to_string()))?;
    match read_value(&mut input, t, limits) {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(Some("empty collection".into())),
        Err(ValueError::Rdb(e)) => Err(Some(e.to_string())),
        Err(ValueError::Unsupported(t)) => {
            Err(Some(format!("{} values are not supported", kind::name(t))))
        }
    }
}

/// The reader with its offset, the length and the running CRC.
pub(super) struct Input<R: Read> {
    reader: R,
    len: u64,
    pub(super) offset: u64,
    crc: u64,
}

pub(super) enum ValueError {
    Rdb(RdbError),
    Unsupported(u8),
}

impl From<RdbError> for ValueError {
    fn from(e: RdbError) -> Self {
        ValueError::Rdb(e)
    }
}

/// A length or one of the special string encodings.
enum Len {
    Plain(u64),
    Int8,
    Int16,
    Int32,
    Lzf,
}

impl<R: Read> Input<R> {
    fn new(reader: R, len: u64) -> Self {
        Input {
            reader,
            len,
            offset: 0,
            crc: 0,
        }
    }

    pub(super) fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.offset)
    }

    pub(super) fn corrupt_at(&self, offset: u64, what: impl Into<String>) -> RdbError {
        RdbError::Corrupt {
            offset,
            what: what.into(),
        }
    }

    pub(super) fn corrupt(&self, what: impl Into<String>) -> RdbError {
        self.corrupt_at(self.offset, what)
    }

    pub(super) fn take(&mut self, n: usize, what: &str) -> Result<Vec<u8>, RdbError> {
        if n as u64 > self.remaining() {
            return Err(RdbError::Truncated {
                offset: self.offset,
                what: format!("{what} ({n} bytes, {} left)", self.remaining()),
            });
        }
        let mut buf = vec![0u8; n];
        self.reader.read_exact(&mut buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                RdbError::Truncated {
                    offset: self.offset,
                    what: what.to_string(),
                }
            } else {
                RdbError::Io(e)
            }
        })?;
        self.crc = crc64::update(self.crc, &buf);
        self.offset += n as u64;
        Ok(buf)
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8, RdbError> {
        Ok(self.take(1, what)?[0])
    }

    fn len_or_enc(&mut self, what: &str) -> Result<Len, RdbError> {
        let b = self.u8(what)?;
        Ok(match b >> 6 {
            0 => Len::Plain(u64::from(b & 0x3f)),
            1 => Len::Plain((u64::from(b & 0x3f) << 8) | u64::from(self.u8(what)?)),
            2 => match b {
                0x80 => {
                    let v = self.take(4, what)?;
                    Len::Plain(u64::from(u32::from_be_bytes(v.try_into().expect("4"))))
                }
                0x81 => {
                    let v = self.take(8, what)?;
                    Len::Plain(u64::from_be_bytes(v.try_into().expect("8")))
                }
                _ => return Err(self.corrupt(format!("unknown length encoding {b:#04x}"))),
            },
            _ => match b & 0x3f {
                0 => Len::Int8,
                1 => Len::Int16,
                2 => Len::Int32,
                3 => Len::Lzf,
                n => return Err(self.corrupt(format!("unknown string encoding {n}"))),
            },
        })
    }

    pub(super) fn len_plain(&mut self, what: &str) -> Result<u64, RdbError> {
        let at = self.offset;
        match self.len_or_enc(what)? {
            Len::Plain(n) => Ok(n),
            _ => Err(self.corrupt_at(at, format!("{what} has a string encoding, not a length"))),
        }
    }

    /// A count of elements, each of which takes at least `min_bytes`: bounds
    /// the count by the bytes left, so no count reserves memory it cannot use.
    pub(super) fn count(&mut self, what: &str, min_bytes: u64) -> Result<usize, RdbError> {
        let at = self.offset;
        let n = self.len_plain(what)?;
        if n.saturating_mul(min_bytes) > self.remaining() {
            return Err(self.corrupt_at(
                at,
                format!(
                    "{what} {n} cannot fit in the {} bytes left",
                    self.remaining()
                ),
            ));
        }
        Ok(n as usize)
    }

    pub(super) fn string(&mut self, what: &str) -> Result<Vec<u8>, RdbError> {
        let at = self.offset;
        match self.len_or_enc(what)? {
            Len::Plain(n) => {
                let n = usize::try_from(n).map_err(|_| self.corrupt_at(at, "string too long"))?;
                self.take(n, what)
            }
            Len::Int8 => Ok((self.u8(what)? as i8).to_string().into_bytes()),
            Len::Int16 => {
                let b = self.take(2, what)?;
                Ok(i16::from_le_bytes([b[0], b[1]]).to_string().into_bytes())
            }
            Len::Int32 => {
                let b = self.take(4, what)?;
                Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]])
                    .to_string()
                    .into_bytes())
            }
            Len::Lzf => {
                let clen = self.len_plain(what)?;
                let ulen = self.len_plain(what)?;
                if clen > self.remaining() {
                    return Err(RdbError::Truncated {
                        offset: self.offset,
                        what: format!("{what} ({clen} compressed bytes)"),
                    });
                }
                // LZF expands at most 88-fold (264 bytes from a 3-byte back reference).
                if ulen > clen.saturating_mul(90).saturating_add(64) {
                    return Err(
                        self.corrupt_at(at, format!("{clen} LZF bytes cannot expand to {ulen}"))
                    );
                }
                let data = self.take(clen as usize, what)?;
                lzf::decompress(&data, ulen as usize)
                    .map_err(|e| self.corrupt_at(at, format!("{what}: {e}")))
            }
        }
    }

    fn bytes(&mut self, what: &str) -> Result<Bytes, RdbError> {
        self.string(what).map(Bytes::from)
    }

    /// A score written as text (RDB type ZSET): a length byte, with 253,
    /// 254 and 255 standing for NaN, +inf and -inf.
    fn text_double(&mut self) -> Result<f64, RdbError> {
        let at = self.offset;
        let n = self.u8("a score")?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let b = self.take(usize::from(n), "a score")?;
                parse_score(&b).ok_or_else(|| self.corrupt_at(at, "a score is not a number"))
            }
        }
    }

    fn binary_double(&mut self) -> Result<f64, RdbError> {
        let b = self.take(8, "a score")?;
        Ok(f64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

fn parse_score(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    match s {
        "inf" | "+inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse::<f64>().ok(),
    }
}

/// Skips a module value written with the module opcodes, up to its EOF.
fn skip_module_value<R: Read>(input: &mut Input<R>) -> Result<(), RdbError> {
    // MODULE_AUX: `when_opcode` and `when`, then the opcoded fields.
    input.len_plain("a module field")?;
    input.len_plain("a module field")?;
    loop {
        match input.len_plain("a module opcode")? {
            0 => return Ok(()),
            1 | 2 => {
                input.len_plain("a module integer")?;
            }
            3 => {
                input.take(4, "a module float")?;
            }
            4 => {
                input.take(8, "a module double")?;
            }
            5 => {
                input.string("a module string")?;
            }
            n => return Err(input.corrupt(format!("unknown module opcode {n}"))),
        }
    }
}

fn blob_err<R: Read>(input: &Input<R>, at: u64, e: packed::BlobError) -> RdbError {
    input.corrupt_at(at, e.to_string())
}

/// Reads one value of type `t`. `Ok(None)` is an empty collection.
fn read_value<R: Read>(
    input: &mut Input<R>,
    t: u8,
    limits: &Encodings,
) -> Result<Option<Value>, ValueError> {
    let at = input.offset;
    let value = match t {
        kind::STRING => Value::Str(input.bytes("a string value")?),
        kind::LIST => {
            let n = input.count("list length", 1)?;
            let mut l = List::new();
            for _ in 0..n {
                l.push_back(&input.bytes("a list element")?, limits.list_fill());
            }
            Value::List(l)
        }
        kind::LIST_ZIPLIST => {
            let blob = input.string("a ziplist")?;
            let items = packed::ziplist_entries(&blob).map_err(|e| blob_err(input, at, e))?;
            Value::List(List::from_elems(items, limits.list_fill()))
        }
        kind::LIST_QUICKLIST | kind::LIST_QUICKLIST_2 => {
            let nodes = input.count("quicklist node count", 1)?;
            let mut l = List::new();
            let fill = limits.list_fill();
            for _ in 0..nodes {
                let container = if t == kind::LIST_QUICKLIST_2 {
                    input.len_plain("a quicklist container")?
                } else {
                    0
                };
                let node_at = input.offset;
                let blob = input.string("a quicklist node")?;
                match (t, container) {
                    (kind::LIST_QUICKLIST_2, 1) => l.push_back(&blob, fill),
                    (kind::LIST_QUICKLIST_2, 2) => {
                        let items = packed::listpack_entries(&blob)
                            .map_err(|e| blob_err(input, node_at, e))?;
                        items.iter().for_each(|e| l.push_back(e, fill));
                    }
                    (kind::LIST_QUICKLIST, _) => {
                        let items = packed::ziplist_entries(&blob)
                            .map_err(|e| blob_err(input, node_at, e))?;
                        items.iter().for_each(|e| l.push_back(e, fill));
                    }
                    _ => {
                        return Err(input
                            .corrupt_at(node_at, format!("unknown quicklist container {container}"))
                            .into())
                    }
                }
            }
            Value::List(l)
        }
        kind::SET => {
            let n = input.count("set size", 1)?;
            let mut s = Set::new();
            for _ in 0..n {
                let m = input.string("a set member")?;
                if !s.insert(&m, limits) {
                    return Err(duplicate(input, at, "member", &m).into());
                }
            }
            Value::Set(s)
        }
        kind::SET_INTSET => {
            let blob = input.string("an intset")?;
            let (width, members) =
                packed::intset_members(&blob).map_err(|e| blob_err(input, at, e))?;
            let mut native = Vec::with_capacity(blob.len() - 7);
            native.push(width);
            native.extend_from_slice(&blob[8..]);
            match Set::from_intset_bytes(&native) {
                Some(s) if members.len() <= limits.set_max_intset_entries => Value::Set(s),
                _ => {
                    let mut s = Set::new();
                    for m in members {
                        s.insert(m.to_string().as_bytes(), limits);
                    }
                    Value::Set(s)
                }
            }
        }
        kind::SET_LISTPACK => {
            let blob = input.string("a listpack set")?;
            let items = packed::listpack_entries(&blob).map_err(|e| blob_err(input, at, e))?;
            let mut s = Set::new();
            for m in items {
                if !s.insert(&m, limits) {
                    return Err(duplicate(input, at, "member", &m).into());
                }
            }
            Value::Set(s)
        }
        kind::HASH => {
            let n = input.count("hash size", 2)?;
            let mut h = Hash::new();
            for _ in 0..n {
                let f = input.string("a hash field")?;
                let v = input.string("a hash value")?;
                if !h.insert(&f, &v, limits) {
                    return Err(duplicate(input, at, "field", &f).into());
                }
            }
            Value::Hash(h)
        }
        kind::HASH_ZIPMAP => {
            let blob = input.string("a zipmap")?;
            let pairs = packed::zipmap_pairs(&blob).map_err(|e| blob_err(input, at, e))?;
            hash_from_pairs(input, at, pairs.into_iter(), limits)?
        }
        kind::HASH_ZIPLIST | kind::HASH_LISTPACK => {
            let blob = input.string("a packed hash")?;
            let items = if t == kind::HASH_ZIPLIST {
                packed::ziplist_entries(&blob)
            } else {
                packed::listpack_entries(&blob)
            }
            .map_err(|e| blob_err(input, at, e))?;
            let pairs = pairs_of(input, at, items)?;
            hash_from_pairs(input, at, pairs.into_iter(), limits)?
        }
        kind::ZSET | kind::ZSET_2 => {
            let n = input.count("sorted set size", 2)?;
            let mut z = ZSet::with_hint(n, 0, limits);
            for _ in 0..n {
                let m = input.string("a sorted set member")?;
                let score = if t == kind::ZSET {
                    input.text_double()?
                } else {
                    input.binary_double()?
                };
                zset_add(input, at, &mut z, &m, score, limits)?;
            }
            Value::ZSet(z)
        }
        kind::ZSET_ZIPLIST | kind::ZSET_LISTPACK => {
            let blob = input.string("a packed sorted set")?;
            let items = if t == kind::ZSET_ZIPLIST {
                packed::ziplist_entries(&blob)
            } else {
                packed::listpack_entries(&blob)
            }
            .map_err(|e| blob_err(input, at, e))?;
            let pairs = pairs_of(input, at, items)?;
            let mut z = ZSet::with_hint(pairs.len(), 0, limits);
            for (m, s) in pairs {
                let score = parse_score(&s)
                    .ok_or_else(|| input.corrupt_at(at, "a score is not a number"))?;
                zset_add(input, at, &mut z, &m, score, limits)?;
            }
            Value::ZSet(z)
        }
        kind::STREAM_LISTPACKS | kind::STREAM_LISTPACKS_2 | kind::STREAM_LISTPACKS_3 => {
            Value::Stream(super::stream::read_stream(input, t)?)
        }
        other => return Err(ValueError::Unsupported(other)),
    };
    Ok((!value.is_empty_collection()).then_some(value))
}

fn duplicate<R: Read>(input: &Input<R>, at: u64, what: &str, item: &[u8]) -> RdbError {
    let shown = String::from_utf8_lossy(&item[..item.len().min(64)]).into_owned();
    input.corrupt_at(at, format!("duplicate {what} {shown:?}"))
}

fn pairs_of<R: Read>(
    input: &Input<R>,
    at: u64,
    items: Vec<Bytes>,
) -> Result<Vec<(Bytes, Bytes)>, RdbError> {
    if !items.len().is_multiple_of(2) {
        return Err(input.corrupt_at(
            at,
            "a packed hash or sorted set has an odd number of entries",
        ));
    }
    let mut it = items.into_iter();
    let mut out = Vec::with_capacity(it.len() / 2);
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Ok(out)
}

fn hash_from_pairs<R: Read>(
    input: &Input<R>,
    at: u64,
    pairs: impl Iterator<Item = (Bytes, Bytes)>,
    limits: &Encodings,
) -> Result<Value, RdbError> {
    let mut h = Hash::new();
    for (f, v) in pairs {
        if !h.insert(&f, &v, limits) {
            return Err(duplicate(input, at, "field", &f));
        }
    }
    Ok(Value::Hash(h))
}

fn zset_add<R: Read>(
    input: &Input<R>,
    at: u64,
    z: &mut ZSet,
    member: &[u8],
    score: f64,
    limits: &Encodings,
) -> Result<(), RdbError> {
    if score.is_nan() {
        return Err(input.corrupt_at(at, "a sorted set score is NaN"));
    }
    if !z.insert(member, score, limits) {
        return Err(duplicate(input, at, "member", member));
    }
    Ok(())
}
