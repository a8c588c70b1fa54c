//! The snapshot loader: streams a file into a fresh [`Keyspace`] that the caller
//! installs only after the trailer's CRC matched. Every defect is a typed
//! [`LoadError`] naming the problem and its byte offset; the loader never
//! panics on bad input and never allocates more than the bytes left in the file
//! justify (a frame's length is checked against them before its buffer grows).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use imbl::Vector;

use super::format::*;
use super::writer::PROGRESS_LOG_EVERY;
use crate::keyspace::encodings::Encodings;
use crate::keyspace::set::Set;
use crate::keyspace::stream::{Group, Stream, StreamId};
use crate::keyspace::zset::order::cmp_entry;
use crate::keyspace::zset::ZSet;
use crate::keyspace::{Hash, Keyspace, Value};

/// Databases a file may declare when no server configuration bounds them
/// (`check-dump`): keeps a hostile header from allocating millions of databases.
pub const MAX_UNCONFIGURED_DBS: u32 = 1 << 16;

/// Why a snapshot could not be loaded. `offset` is the byte offset in the file
/// of the field or frame at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    #[error("not a forkless snapshot: bad magic bytes at offset 0")]
    BadMagic,
    #[error("expected snapshot format version {FORMAT_VERSION}, but the file is version {found} (offset {offset})")]
    UnsupportedVersion { found: u32, offset: u64 },
    #[error("bad header at offset {offset}: {what}")]
    BadHeader { offset: u64, what: String },
    #[error("file truncated at offset {offset}: {what}")]
    Truncated { offset: u64, what: String },
    #[error("undecodable record at offset {offset}: {source}")]
    Decode {
        offset: u64,
        source: postcard::Error,
    },
    #[error("unexpected {found} record at offset {offset}: expected {expected}")]
    UnexpectedRecord {
        offset: u64,
        found: &'static str,
        expected: &'static str,
    },
    #[error("database index {index} at offset {offset} is out of range or out of order")]
    BadDb { offset: u64, index: u32 },
    #[error("duplicate key {key:?} in database {db} at offset {offset}")]
    DuplicateKey { offset: u64, db: usize, key: String },
    #[error("duplicate {what} {member:?} in key {key:?} at offset {offset}")]
    DuplicateElement {
        offset: u64,
        what: &'static str,
        key: String,
        member: String,
    },
    #[error("score of {member:?} in key {key:?} at offset {offset} is NaN or out of order")]
    BadScore {
        offset: u64,
        key: String,
        member: String,
    },
    #[error("count mismatch at offset {offset}: {what}")]
    CountMismatch { offset: u64, what: String },
    #[error("{count} trailing bytes after the checksum at offset {offset}")]
    TrailingBytes { offset: u64, count: u64 },
    #[error("checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}; the file is corrupt")]
    Checksum {
        offset: u64,
        stored: u32,
        computed: u32,
    },
}

impl LoadError {
    /// Whether the file could not be read at all (as opposed to being corrupt).
    pub fn is_unreadable(&self) -> bool {
        matches!(self, LoadError::Io(_))
    }
}

/// A loaded keyspace and what the load saw.
#[derive(Debug)]
pub struct Loaded {
    pub keyspace: Keyspace,
    pub header: Header,
    /// Keys installed, per database.
    pub keys_loaded: u64,
    /// Keys dropped because they had expired.
    pub keys_expired: u64,
    /// Live keys per (database, type name), for `check-dump`.
    pub per_db: std::collections::BTreeMap<(usize, &'static str), u64>,
}

/// Loads `path`. `databases` is the configured count (None: take the header's).
/// Hashes and sets take the encoding Redis's default limits give them.
pub fn load_file(path: &Path, databases: Option<usize>, now_ms: i64) -> Result<Loaded, LoadError> {
    load_file_with(path, databases, now_ms, Encodings::default())
}

/// Like [`load_file`], building hashes and sets under the configured
/// `limits`: as in Redis, a load re-derives each one's encoding from its
/// contents (a table that shrank before the save comes back a listpack or an
/// intset).
pub fn load_file_with(
    path: &Path,
    databases: Option<usize>,
    now_ms: i64,
    limits: Encodings,
) -> Result<Loaded, LoadError> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    load_with(
        BufReader::with_capacity(256 * 1024, file),
        len,
        databases,
        now_ms,
        limits,
    )
}

/// Loads a snapshot held in memory (tests).
pub fn load_bytes(
    bytes: &[u8],
    databases: Option<usize>,
    now_ms: i64,
) -> Result<Loaded, LoadError> {
    load_from(bytes, bytes.len() as u64, databases, now_ms)
}

/// Loads from a reader that yields exactly `len` bytes.
pub fn load_from<R: Read>(
    reader: R,
    len: u64,
    databases: Option<usize>,
    now_ms: i64,
) -> Result<Loaded, LoadError> {
    load_with(reader, len, databases, now_ms, Encodings::default())
}

/// Like [`load_from`], building values under `limits` (start-up loading
/// reads through a reader that counts the bytes, for INFO's progress).
pub fn load_from_with<R: Read>(
    reader: R,
    len: u64,
    databases: Option<usize>,
    now_ms: i64,
    limits: Encodings,
) -> Result<Loaded, LoadError> {
    load_with(reader, len, databases, now_ms, limits)
}

fn load_with<R: Read>(
    reader: R,
    len: u64,
    databases: Option<usize>,
    now_ms: i64,
    limits: Encodings,
) -> Result<Loaded, LoadError> {
    let mut input = Input {
        reader,
        len,
        offset: 0,
        hasher: crc32fast::Hasher::new(),
    };
    let header = read_header(&mut input)?;
    let db_count = match databases {
        Some(n) => n,
        None => {
            if header.db_count > MAX_UNCONFIGURED_DBS {
                return Err(LoadError::BadHeader {
                    offset: DB_COUNT_OFFSET as u64,
                    what: format!(
                        "{} databases is more than {MAX_UNCONFIGURED_DBS}",
                        header.db_count
                    ),
                });
            }
            header.db_count as usize
        }
    };
    let mut body = Body {
        keyspace: Keyspace::new(db_count),
        db_count,
        now_ms,
        limits,
        db: None,
        pending: None,
        expired_keys: std::collections::HashSet::new(),
        key_records: 0,
        keys_loaded: 0,
        keys_expired: 0,
        per_db: Default::default(),
    };
    let mut buf = Vec::new();
    let started = Instant::now();
    let mut last_log = started;
    loop {
        let offset = input.offset;
        let frame_len = input.read_u32("frame length")? as u64;
        let room = input.remaining().saturating_sub(TRAILER_LEN as u64);
        if frame_len > room {
            return Err(LoadError::Truncated {
                offset,
                what: format!(
                    "frame of {frame_len} bytes but only {room} bytes before the checksum"
                ),
            });
        }
        buf.resize(frame_len as usize, 0);
        input.read_exact(&mut buf, "frame")?;
        let (record, rest): (Record<'_>, &[u8]) = postcard::take_from_bytes(&buf)
            .map_err(|source| LoadError::Decode { offset, source })?;
        // A frame holds exactly one record.
        if !rest.is_empty() {
            return Err(LoadError::CountMismatch {
                offset,
                what: format!(
                    "{} frame of {} bytes has {} bytes after its record",
                    record.name(),
                    buf.len(),
                    rest.len()
                ),
            });
        }
        if let Record::End { keys } = record {
            body.finish(offset, keys, header.key_count)?;
            break;
        }
        body.apply(offset, record)?;
        if body.key_records.is_multiple_of(4096) && last_log.elapsed() >= PROGRESS_LOG_EVERY {
            tracing::info!(
                "loading snapshot: {}/{} keys",
                body.key_records,
                header.key_count
            );
            last_log = Instant::now();
        }
    }
    let crc_offset = input.offset;
    let computed = input.hasher.clone().finalize();
    let stored = input.read_u32("checksum")?;
    if input.remaining() > 0 {
        return Err(LoadError::TrailingBytes {
            offset: input.offset,
            count: input.remaining(),
        });
    }
    if stored != computed {
        return Err(LoadError::Checksum {
            offset: crc_offset,
            stored,
            computed,
        });
    }
    Ok(Loaded {
        keyspace: body.keyspace,
        header,
        keys_loaded: body.keys_loaded,
        keys_expired: body.keys_expired,
        per_db: body.per_db,
    })
}

fn read_header<R: Read>(input: &mut Input<R>) -> Result<Header, LoadError> {
    let mut raw = [0u8; HEADER_LEN];
    if input.len < HEADER_LEN as u64 {
        // Check what is there so a truncated file of another kind says so.
        let mut some = vec![0u8; input.len as usize];
        input.read_exact(&mut some, "header")?;
        if !MAGIC.starts_with(&some[..some.len().min(MAGIC_LEN)]) {
            return Err(LoadError::BadMagic);
        }
        return Err(LoadError::Truncated {
            offset: input.len,
            what: format!(
                "the header needs {HEADER_LEN} bytes, the file has {}",
                input.len
            ),
        });
    }
    input.read_exact(&mut raw, "header")?;
    let (magic, header) = Header::decode(&raw);
    if magic != MAGIC {
        return Err(LoadError::BadMagic);
    }
    if header.version != FORMAT_VERSION {
        return Err(LoadError::UnsupportedVersion {
            found: header.version,
            offset: VERSION_OFFSET as u64,
        });
    }
    if header.db_count == 0 {
        return Err(LoadError::BadHeader {
            offset: DB_COUNT_OFFSET as u64,
            what: "database count is 0".into(),
        });
    }
    // Every key takes at least a few bytes, so the count is bounded by the size.
    if header.key_count > input.len {
        return Err(LoadError::BadHeader {
            offset: KEY_COUNT_OFFSET as u64,
            what: format!(
                "{} keys cannot fit in {} bytes",
                header.key_count, input.len
            ),
        });
    }
    Ok(header)
}

/// The reader with its offset, the file length and the running CRC.
struct Input<R: Read> {
    reader: R,
    len: u64,
    offset: u64,
    hasher: crc32fast::Hasher,
}

impl<R: Read> Input<R> {
    fn remaining(&self) -> u64 {
        self.len.saturating_sub(self.offset)
    }

    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), LoadError> {
        if (buf.len() as u64) > self.remaining() {
            return Err(LoadError::Truncated {
                offset: self.offset,
                what: format!(
                    "{what} needs {} bytes, {} left",
                    buf.len(),
                    self.remaining()
                ),
            });
        }
        self.reader.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                LoadError::Truncated {
                    offset: self.offset,
                    what: format!("the file ended while reading {what}"),
                }
            } else {
                LoadError::Io(e)
            }
        })?;
        self.hasher.update(buf);
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn read_u32(&mut self, what: &str) -> Result<u32, LoadError> {
        let mut b = [0u8; 4];
        self.read_exact(&mut b, what)?;
        Ok(u32::from_le_bytes(b))
    }
}

/// A key whose value chunks are still arriving.
struct Pending {
    key: Bytes,
    expire_at: Option<i64>,
    kind: Kind,
    declared: u64,
    received: u64,
    value: Value,
    /// A string's bytes so far (copied once, not once per chunk).
    text: Vec<u8>,
    header_offset: u64,
}

/// The body's state machine.
struct Body {
    keyspace: Keyspace,
    db_count: usize,
    now_ms: i64,
    /// The limits hashes and sets are built under.
    limits: Encodings,
    db: Option<usize>,
    pending: Option<Pending>,
    /// Expired keys skipped in the current database (to catch duplicates of them).
    expired_keys: std::collections::HashSet<Bytes>,
    key_records: u64,
    keys_loaded: u64,
    keys_expired: u64,
    per_db: std::collections::BTreeMap<(usize, &'static str), u64>,
}

fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(cut).into_owned()
}

impl Body {
    fn apply(&mut self, offset: u64, record: Record<'_>) -> Result<(), LoadError> {
        if self.pending.is_some() {
            return self.chunk(offset, record);
        }
        match record {
            Record::Db { index } => {
                let ok = (index as usize) < self.db_count
                    && self.db.is_none_or(|d| (index as usize) > d);
                if !ok {
                    return Err(LoadError::BadDb { offset, index });
                }
                self.db = Some(index as usize);
                self.expired_keys.clear();
                Ok(())
            }
            Record::Key(h) => self.key(offset, h),
            Record::Function(code) => {
                let mut codes = self.keyspace.functions().to_vec();
                codes.push(bytes::Bytes::copy_from_slice(code));
                self.keyspace.set_functions(codes);
                Ok(())
            }
            other => Err(LoadError::UnexpectedRecord {
                offset,
                found: other.name(),
                expected: "Db, Key or End",
            }),
        }
    }

    fn key(&mut self, offset: u64, h: KeyHeader<'_>) -> Result<(), LoadError> {
        let Some(db) = self.db else {
            return Err(LoadError::UnexpectedRecord {
                offset,
                found: "Key",
                expected: "Db",
            });
        };
        self.key_records += 1;
        let key = Bytes::copy_from_slice(h.key);
        // A repeat of a live key is caught when it is inserted (one lookup, not
        // two, per key); a repeat of a key dropped as expired is caught here.
        if self.expired_keys.contains(&key) {
            return Err(LoadError::DuplicateKey {
                offset,
                db,
                key: show(&key),
            });
        }
        if h.kind != Kind::Str && h.len == 0 {
            return Err(LoadError::CountMismatch {
                offset,
                what: format!("{} {:?} declares no elements", h.kind.name(), show(&key)),
            });
        }
        let value = match h.kind {
            Kind::Str => Value::Str(Bytes::new()),
            Kind::List => Value::List(Vector::new()),
            Kind::Hash => Value::Hash(Hash::new()),
            Kind::Set => Value::Set(Set::new()),
            Kind::ZSet => Value::ZSet(ZSet::with_hint(
                usize::try_from(h.len).unwrap_or(usize::MAX),
                0,
                &self.limits,
            )),
            Kind::Stream => Value::Stream(Stream::new()),
        };
        self.pending = Some(Pending {
            key,
            expire_at: h.expire_at_ms,
            kind: h.kind,
            declared: h.len,
            received: 0,
            value,
            text: Vec::new(),
            header_offset: offset,
        });
        if h.kind == Kind::Str && h.len == 0 {
            self.complete()?;
        }
        Ok(())
    }

    fn chunk(&mut self, offset: u64, record: Record<'_>) -> Result<(), LoadError> {
        let Some(p) = self.pending.as_mut() else {
            return Ok(());
        };
        let (kind, n) = match &record {
            Record::StrChunk(b) => (Kind::Str, b.len()),
            Record::ListChunk(v) => (Kind::List, v.len()),
            Record::SetChunk(v) => (Kind::Set, v.len()),
            Record::HashChunk(v) => (Kind::Hash, v.len()),
            Record::ZSetChunk(v) => (Kind::ZSet, v.len()),
            Record::StreamChunk(part) => (Kind::Stream, part.items()),
            other => {
                return Err(LoadError::CountMismatch {
                    offset,
                    what: format!(
                        "{} record while key {:?} (offset {}) still expects {} of {} {}",
                        other.name(),
                        show(&p.key),
                        p.header_offset,
                        p.declared - p.received,
                        p.declared,
                        if p.kind == Kind::Str {
                            "bytes"
                        } else {
                            "elements"
                        }
                    ),
                })
            }
        };
        if kind != p.kind {
            return Err(LoadError::UnexpectedRecord {
                offset,
                found: record.name(),
                expected: "a chunk of the key's type",
            });
        }
        if n == 0 || p.received + n as u64 > p.declared {
            return Err(LoadError::CountMismatch {
                offset,
                what: format!(
                    "chunk of {n} for key {:?} which declared {} and has {}",
                    show(&p.key),
                    p.declared,
                    p.received
                ),
            });
        }
        let dup = |what, member: &[u8]| LoadError::DuplicateElement {
            offset,
            what,
            key: show(&p.key),
            member: show(member),
        };
        match (record, &mut p.value) {
            (Record::StrChunk(b), Value::Str(_)) => p.text.extend_from_slice(b),
            (Record::ListChunk(items), Value::List(l)) => {
                l.extend(items.into_iter().map(Bytes::copy_from_slice));
            }
            (Record::SetChunk(items), Value::Set(set)) => {
                for m in items {
                    if !set.insert(m, &self.limits) {
                        return Err(dup("member", m));
                    }
                }
            }
            (Record::HashChunk(pairs), Value::Hash(h)) => {
                for (f, v) in pairs {
                    if !h.insert(f, v, &self.limits) {
                        return Err(dup("field", f));
                    }
                }
            }
            (Record::ZSetChunk(pairs), Value::ZSet(z)) => {
                for (m, score) in pairs {
                    // The writer walks the set in order: anything else is damage.
                    let ordered = z.nth(z.len().wrapping_sub(1)).is_none_or(|(ls, lm)| {
                        cmp_entry(ls, lm, score, m) == std::cmp::Ordering::Less
                    });
                    if score.is_nan() || !ordered {
                        return Err(LoadError::BadScore {
                            offset,
                            key: show(&p.key),
                            member: show(m),
                        });
                    }
                    if !z.insert(m, score, &self.limits) {
                        return Err(dup("member", m));
                    }
                }
            }
            (Record::StreamChunk(part), Value::Stream(s)) => {
                load_stream_part(s, part, &self.limits).map_err(|what| {
                    LoadError::CountMismatch {
                        offset,
                        what: format!("stream {:?}: {what}", show(&p.key)),
                    }
                })?;
            }
            _ => {}
        }
        p.received += n as u64;
        if p.received == p.declared {
            self.complete()?;
        }
        Ok(())
    }

    /// Installs the finished pending key, or drops it if it has expired.
    fn complete(&mut self) -> Result<(), LoadError> {
        let (Some(mut p), Some(db)) = (self.pending.take(), self.db) else {
            return Ok(());
        };
        if p.kind == Kind::Str {
            p.value = Value::Str(Bytes::from(std::mem::take(&mut p.text)));
        }
        let duplicate = |p: &Pending| LoadError::DuplicateKey {
            offset: p.header_offset,
            db,
            key: show(&p.key),
        };
        if p.expire_at.is_some_and(|t| t <= self.now_ms) {
            if self.keyspace.db(db).peek(&p.key, i64::MIN).is_some() {
                return Err(duplicate(&p));
            }
            self.keys_expired += 1;
            self.expired_keys.insert(p.key);
            return Ok(());
        }
        *self.per_db.entry((db, p.value.type_name())).or_default() += 1;
        self.keys_loaded += 1;
        let key_for_error = p.key.clone();
        if self.keyspace.db_mut(db).insert(p.key, p.value, p.expire_at) {
            return Err(LoadError::DuplicateKey {
                offset: p.header_offset,
                db,
                key: show(&key_for_error),
            });
        }
        Ok(())
    }

    fn finish(&mut self, offset: u64, keys: u64, header_keys: u64) -> Result<(), LoadError> {
        if let Some(p) = &self.pending {
            return Err(LoadError::CountMismatch {
                offset,
                what: format!(
                    "End record while key {:?} still expects {} of {}",
                    show(&p.key),
                    p.declared - p.received,
                    p.declared
                ),
            });
        }
        if keys != self.key_records || header_keys != self.key_records {
            return Err(LoadError::CountMismatch {
                offset,
                what: format!(
                    "{} key records, but the End record says {keys} and the header {header_keys}",
                    self.key_records
                ),
            });
        }
        Ok(())
    }
}

fn sid((ms, seq): Sid) -> StreamId {
    StreamId::new(ms, seq)
}

/// Applies one part of a stream record; the error says what is wrong.
fn load_stream_part(
    s: &mut Stream,
    part: StreamPart<'_>,
    limits: &Encodings,
) -> Result<(), String> {
    match part {
        StreamPart::Entries(entries) => {
            for (id, flat) in entries {
                let id = sid(id);
                if id.is_zero() || (s.entries_added() > 0 && id <= s.last_id()) {
                    return Err(format!("entry {id} out of order"));
                }
                if flat.is_empty() || flat.len() % 2 != 0 {
                    return Err(format!("entry {id} has {} fields and values", flat.len()));
                }
                let pairs: Vec<(&[u8], &[u8])> = flat.chunks(2).map(|p| (p[0], p[1])).collect();
                s.append(id, &pairs, limits.stream_nodes());
            }
        }
        StreamPart::Meta {
            last_id,
            first_id,
            max_deleted,
            entries_added,
        } => {
            let last = sid(last_id);
            if !s.is_empty() && last < s.last_id() {
                return Err(format!("last id {last} below its last entry"));
            }
            if entries_added < s.len() {
                return Err("fewer entries added than it holds".into());
            }
            s.set_meta(last, sid(max_deleted), entries_added);
            s.set_first_id(sid(first_id));
        }
        StreamPart::Group {
            name,
            last_id,
            entries_read,
        } => {
            let key = Bytes::copy_from_slice(name);
            if s.groups().contains_key(&key) {
                return Err(format!("group {:?} twice", show(name)));
            }
            s.groups_mut()
                .insert(key, Group::new(sid(last_id), entries_read));
        }
        StreamPart::Consumers { group, consumers } => {
            let g = s
                .group_mut(group)
                .ok_or_else(|| format!("consumers of unknown group {:?}", show(group)))?;
            for (name, seen) in consumers {
                let (c, created) = g.consumer_mut(name, seen);
                if !created {
                    return Err(format!("consumer {:?} twice", show(name)));
                }
                c.seen_time = seen;
            }
        }
        StreamPart::Pending { group, nacks } => {
            let g = s
                .group_mut(group)
                .ok_or_else(|| format!("pending entries of unknown group {:?}", show(group)))?;
            for (id, consumer, time, count) in nacks {
                let id = sid(id);
                if g.pel.contains_key(&id) || !g.consumers.contains_key(consumer) {
                    return Err(format!("pending entry {id} repeated or of no consumer"));
                }
                g.deliver(id, consumer, time, count);
            }
        }
    }
    Ok(())
}
