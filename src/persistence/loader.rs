//! The snapshot loader: streams a file into a fresh [`Keyspace`] that the caller
//! installs only after the trailer's CRC matched. Every defect is a typed
//! [`LoadError`] naming the problem and its byte offset; the loader never
//! panics on bad input and never allocates more than the bytes left in the file
//! justify (a frame's or block's length is checked against them before its
//! buffer grows; a compressed block's decoded length against Snappy's largest
//! ratio).
//!
//! It reads format versions 1 (frames) and 2 (blocks). Each database's keys
//! are gathered as records and the database's map is built once, bottom-up,
//! when its last key arrived ([`Db::from_records`]): no node is made twice.
//! For a version 2 file of some size, [`load_from_with`] runs two threads: one
//! reads, checksums and decompresses blocks, the other decodes records and
//! builds values.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;

use super::format::*;
use super::writer::PROGRESS_LOG_EVERY;
use crate::keyspace::encodings::Encodings;
use crate::keyspace::listpack::Listpack;
use crate::keyspace::set::Set;
use crate::keyspace::stream::{Group, Stream, StreamId};
use crate::keyspace::zset::flat::Flat;
use crate::keyspace::zset::order::cmp_entry;
use crate::keyspace::zset::ZSet;
use crate::keyspace::{Db, Hash, Keyspace, List, Record as KeyRecord, Value};

/// Databases a file may declare when no server configuration bounds them
/// (`check-dump`): keeps a hostile header from allocating millions of databases.
pub const MAX_UNCONFIGURED_DBS: u32 = 1 << 16;

/// Version 2 files at least this large are loaded by two threads
/// ([`load_from_with`]); below it the second thread does not pay for itself.
pub const PIPELINE_MIN_BYTES: u64 = 1 << 20;

/// Why a snapshot could not be loaded. `offset` is the byte offset in the file
/// of the field or frame at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the file: {0}")]
    Io(#[from] io::Error),
    #[error("not a forkless snapshot: bad magic bytes at offset 0")]
    BadMagic,
    #[error("expected snapshot format version {FORMAT_V1} or {FORMAT_VERSION}, but the file is version {found} (offset {offset})")]
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
    #[error("bad value of key {key:?} at offset {offset}: {what}")]
    BadValue {
        offset: u64,
        key: String,
        what: String,
    },
    #[error("bad block at offset {offset}: {what}")]
    BadBlock { offset: u64, what: String },
    /// A defect inside a version 2 block: the inner offset counts bytes of
    /// the block's decoded data.
    #[error("in the block at offset {offset} (offsets within its decoded data): {source}")]
    InBlock { offset: u64, source: Box<LoadError> },
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
    load_from_with(
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

/// Loads from a reader that yields exactly `len` bytes, on the calling thread.
pub fn load_from<R: Read>(
    reader: R,
    len: u64,
    databases: Option<usize>,
    now_ms: i64,
) -> Result<Loaded, LoadError> {
    let mut input = Input::new(reader, len);
    let (header, mut body) = begin(&mut input, databases, now_ms, Encodings::default())?;
    read_inline(&mut input, &mut body)?;
    Ok(body.loaded(header))
}

/// Like [`load_from`], building values under `limits` (start-up loading
/// reads through a reader that counts the bytes, for INFO's progress). A
/// version 2 file of at least [`PIPELINE_MIN_BYTES`] is read, checksummed and
/// decompressed by a second thread while this one builds the keyspace.
pub fn load_from_with<R: Read + Send>(
    reader: R,
    len: u64,
    databases: Option<usize>,
    now_ms: i64,
    limits: Encodings,
) -> Result<Loaded, LoadError> {
    let mut input = Input::new(reader, len);
    let (header, mut body) = begin(&mut input, databases, now_ms, limits)?;
    if header.version == FORMAT_V1 || len < PIPELINE_MIN_BYTES {
        read_inline(&mut input, &mut body)?;
    } else {
        pipelined(input, &mut body)?;
    }
    Ok(body.loaded(header))
}

/// A stream's length when it is not known ahead (a replica loading the
/// primary's `$EOF:`-framed sync straight from the socket): the reader's own
/// end, right after the checksum, ends the snapshot.
pub const UNKNOWN_LEN: u64 = u64::MAX;

/// Like [`load_from_with`] for a reader whose length is unknown: it must end
/// (read returns 0) right after the checksum.
pub fn load_stream_with<R: Read + Send>(
    reader: R,
    databases: Option<usize>,
    now_ms: i64,
    limits: Encodings,
) -> Result<Loaded, LoadError> {
    load_from_with(reader, UNKNOWN_LEN, databases, now_ms, limits)
}

/// Reads and checks the header and sets up the body's state.
fn begin<R: Read>(
    input: &mut Input<R>,
    databases: Option<usize>,
    now_ms: i64,
    limits: Encodings,
) -> Result<(Header, Body), LoadError> {
    let header = read_header(input)?;
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
    let body = Body {
        keyspace: Keyspace::new(db_count),
        version: header.version,
        db_count,
        now_ms,
        limits,
        db: None,
        records: Vec::new(),
        pending: None,
        next_expire: None,
        expired_keys: std::collections::HashSet::new(),
        key_records: 0,
        keys_loaded: 0,
        keys_expired: 0,
        per_db: Default::default(),
        ended: false,
        header_keys: header.key_count,
    };
    Ok((header, body))
}

/// Everything after the header, on the calling thread.
fn read_inline<R: Read>(input: &mut Input<R>, body: &mut Body) -> Result<(), LoadError> {
    if body.version == FORMAT_V1 {
        read_frames(input, body)?;
    } else {
        let mut scratch = Vec::new();
        let mut log = ProgressLog::new(input.len);
        let mut spare = Vec::new();
        loop {
            let block = read_block(input, &mut scratch, spare)?;
            body.block(block.offset, &block.data)?;
            log.tick(body, block.offset);
            if block.last {
                break;
            }
            spare = block.data;
        }
        body.end_of_blocks(input.offset)?;
    }
    check_trailer(input)
}

/// What the reading thread hands the building thread, in file order.
enum Msg {
    Block(Block),
    /// No block follows: the offset of the checksum, and what checking it said.
    End(u64, Result<(), LoadError>),
    Failed(LoadError),
}

/// Version 2 on two threads: this one decodes records and builds, a scoped
/// one reads, checksums and decompresses up to a few blocks ahead. Either
/// side's error stops both (the reader's send fails once the builder is
/// gone). Errors come out in the order the single-threaded load meets them.
fn pipelined<R: Read + Send>(input: Input<R>, body: &mut Body) -> Result<(), LoadError> {
    let len = input.len;
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Msg>(BLOCKS_AHEAD);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let reader = scope.spawn(move || {
            let mut input = input;
            let mut scratch = Vec::new();
            loop {
                let spare = free_rx.try_recv().unwrap_or_default();
                let (msg, more) = match read_block(&mut input, &mut scratch, spare) {
                    Ok(block) => {
                        let more = !block.last;
                        (Msg::Block(block), more)
                    }
                    Err(e) => (Msg::Failed(e), false),
                };
                let failed = matches!(msg, Msg::Failed(_));
                if tx.send(msg).is_err() || failed {
                    return;
                }
                if !more {
                    break;
                }
            }
            let end = input.offset;
            let _ = tx.send(Msg::End(end, check_trailer(&mut input)));
        });
        let mut log = ProgressLog::new(len);
        let result = loop {
            match rx.recv() {
                Ok(Msg::Block(block)) => {
                    if let Err(e) = body.block(block.offset, &block.data) {
                        break Err(e);
                    }
                    log.tick(body, block.offset);
                    let _ = free_tx.send(block.data);
                }
                Ok(Msg::End(offset, trailer)) => break body.end_of_blocks(offset).and(trailer),
                Ok(Msg::Failed(e)) => break Err(e),
                Err(_) => {
                    break Err(LoadError::Io(io::Error::other(
                        "the snapshot reading thread stopped",
                    )))
                }
            }
        };
        drop(rx);
        if reader.join().is_err() {
            return Err(LoadError::Io(io::Error::other(
                "the snapshot reading thread panicked",
            )));
        }
        result
    })
}

/// Logs a long load's progress every [`PROGRESS_LOG_EVERY`].
struct ProgressLog {
    len: u64,
    last: Instant,
}

impl ProgressLog {
    fn new(len: u64) -> ProgressLog {
        ProgressLog {
            len,
            last: Instant::now(),
        }
    }

    fn tick(&mut self, body: &Body, offset: u64) {
        if self.last.elapsed() >= PROGRESS_LOG_EVERY && self.len == UNKNOWN_LEN {
            tracing::info!(
                "loading snapshot: {} of {} keys, {offset} bytes read",
                body.key_records,
                body.header_keys,
            );
            self.last = Instant::now();
        } else if self.last.elapsed() >= PROGRESS_LOG_EVERY {
            tracing::info!(
                "loading snapshot: {} of {} keys, {:.0}% of {} bytes",
                body.key_records,
                body.header_keys,
                offset as f64 * 100.0 / self.len.max(1) as f64,
                self.len
            );
            self.last = Instant::now();
        }
    }
}

/// Version 1: frames until End.
fn read_frames<R: Read>(input: &mut Input<R>, body: &mut Body) -> Result<(), LoadError> {
    let mut buf = Vec::new();
    let mut log = ProgressLog::new(input.len);
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
            return body.finish(offset, keys);
        }
        body.apply(offset, record)?;
        if body.key_records.is_multiple_of(4096) {
            log.tick(body, offset);
        }
    }
}

/// Reads the CRC after the last record and checks it and the file's end.
fn check_trailer<R: Read>(input: &mut Input<R>) -> Result<(), LoadError> {
    let crc_offset = input.offset;
    let computed = input.hasher.clone().finalize();
    let stored = input.read_u32("checksum")?;
    if input.len == UNKNOWN_LEN {
        let mut probe = [0u8; 1];
        if input.reader.read(&mut probe)? > 0 {
            return Err(LoadError::TrailingBytes {
                offset: input.offset,
                count: 1,
            });
        }
    } else if input.remaining() > 0 {
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
    Ok(())
}

/// One version 2 block, decoded.
struct Block {
    /// Where its header starts in the file.
    offset: u64,
    last: bool,
    data: Vec<u8>,
}

/// Version 2: reads one block into `data`, a buffer of an earlier block
/// reused (fresh pages cost more than the copy). `scratch` holds the
/// compressed bytes between calls.
fn read_block<R: Read>(
    input: &mut Input<R>,
    scratch: &mut Vec<u8>,
    mut data: Vec<u8>,
) -> Result<Block, LoadError> {
    let offset = input.offset;
    let mut raw = [0u8; BLOCK_HEADER_LEN];
    input.read_exact(&mut raw, "block header")?;
    let (codec, last, raw_len, stored_len) = BlockHeader::decode(&raw);
    let bad = |what: String| LoadError::BadBlock { offset, what };
    let codec = Codec::from_byte(codec).ok_or_else(|| bad(format!("unknown codec {codec}")))?;
    if raw_len == 0 {
        return Err(bad("empty block".into()));
    }
    let room = input.remaining().saturating_sub(TRAILER_LEN as u64);
    if stored_len as u64 > room {
        return Err(LoadError::Truncated {
            offset,
            what: format!("block of {stored_len} bytes but only {room} bytes before the checksum"),
        });
    }
    match codec {
        Codec::Stored => {
            if raw_len != stored_len {
                return Err(bad(format!(
                    "stored block of {stored_len} bytes declares {raw_len} decoded"
                )));
            }
            data.clear();
            data.resize(raw_len as usize, 0);
            input.read_exact(&mut data, "block")?;
            Ok(Block { offset, last, data })
        }
        Codec::Snappy => {
            if raw_len as u64 > stored_len as u64 * SNAPPY_MAX_RATIO {
                return Err(bad(format!(
                    "{stored_len} compressed bytes cannot decode to {raw_len}"
                )));
            }
            scratch.resize(stored_len as usize, 0);
            input.read_exact(scratch, "block")?;
            data.clear();
            data.resize(raw_len as usize, 0);
            match snap::raw::decompress_len(scratch) {
                Ok(n) if n == raw_len as usize => {}
                Ok(n) => return Err(bad(format!("decodes to {n} bytes, declared {raw_len}"))),
                Err(e) => return Err(bad(format!("Snappy data is corrupt: {e}"))),
            }
            match snap::raw::Decoder::new().decompress(scratch, &mut data) {
                Ok(n) if n == raw_len as usize => Ok(Block { offset, last, data }),
                Ok(n) => Err(bad(format!("decodes to {n} bytes, declared {raw_len}"))),
                Err(e) => Err(bad(format!("Snappy data is corrupt: {e}"))),
            }
        }
    }
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
    if header.version != FORMAT_VERSION && header.version != FORMAT_V1 {
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
    // Every key takes at least a few bytes (a compressed block at least one
    // per 32 of them), so the count is bounded by the size.
    if header.key_count > input.len.saturating_mul(SNAPPY_MAX_RATIO) {
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
    fn new(reader: R, len: u64) -> Input<R> {
        Input {
            reader,
            len,
            offset: 0,
            hasher: crc32fast::Hasher::new(),
        }
    }

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
    version: u32,
    db_count: usize,
    now_ms: i64,
    /// The limits hashes and sets are built under.
    limits: Encodings,
    db: Option<usize>,
    /// The current database's live keys, built into its map when it ends.
    records: Vec<KeyRecord>,
    pending: Option<Pending>,
    /// Version 2: the expiry an `Expire` record gave the next key.
    next_expire: Option<(u64, i64)>,
    /// Expired keys skipped in the current database (to catch duplicates of them).
    expired_keys: std::collections::HashSet<Bytes>,
    key_records: u64,
    keys_loaded: u64,
    keys_expired: u64,
    per_db: std::collections::BTreeMap<(usize, &'static str), u64>,
    /// The End record arrived (version 2: nothing may follow it).
    ended: bool,
    header_keys: u64,
}

fn show(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(64)];
    String::from_utf8_lossy(cut).into_owned()
}

impl Body {
    fn loaded(self, header: Header) -> Loaded {
        Loaded {
            keyspace: self.keyspace,
            header,
            keys_loaded: self.keys_loaded,
            keys_expired: self.keys_expired,
            per_db: self.per_db,
        }
    }

    /// Version 2: every record of one decoded block. Errors carry the offset
    /// within the block, wrapped with the block's own.
    fn block(&mut self, block_offset: u64, data: &[u8]) -> Result<(), LoadError> {
        self.block_records(data).map_err(|e| LoadError::InBlock {
            offset: block_offset,
            source: Box::new(e),
        })
    }

    fn block_records(&mut self, data: &[u8]) -> Result<(), LoadError> {
        let mut rest = data;
        while !rest.is_empty() {
            let offset = (data.len() - rest.len()) as u64;
            let (record, tail): (Record<'_>, &[u8]) = postcard::take_from_bytes(rest)
                .map_err(|source| LoadError::Decode { offset, source })?;
            rest = tail;
            if self.ended {
                return Err(LoadError::UnexpectedRecord {
                    offset,
                    found: record.name(),
                    expected: "the checksum after End",
                });
            }
            match record {
                Record::End { keys } => {
                    self.finish(offset, keys)?;
                    self.ended = true;
                }
                other => self.apply(offset, other)?,
            }
        }
        Ok(())
    }

    /// Version 2: the last block is over (the checksum is next).
    fn end_of_blocks(&self, offset: u64) -> Result<(), LoadError> {
        if self.ended {
            return Ok(());
        }
        Err(LoadError::CountMismatch {
            offset,
            what: "the last block ends without an End record".into(),
        })
    }

    fn apply(&mut self, offset: u64, record: Record<'_>) -> Result<(), LoadError> {
        if self.pending.is_some() {
            return self.chunk(offset, record);
        }
        let v2_only = matches!(
            record,
            Record::Expire(_) | Record::Str(..) | Record::Int(..) | Record::Compact(..)
        );
        if v2_only && self.version == FORMAT_V1 {
            return Err(LoadError::UnexpectedRecord {
                offset,
                found: record.name(),
                expected: "a version 1 record",
            });
        }
        if self.next_expire.is_some()
            && !matches!(
                record,
                Record::Str(..) | Record::Int(..) | Record::Compact(..)
            )
        {
            return Err(LoadError::UnexpectedRecord {
                offset,
                found: record.name(),
                expected: "Str, Int or Compact after Expire",
            });
        }
        match record {
            Record::Db { index } => {
                let ok = (index as usize) < self.db_count
                    && self.db.is_none_or(|d| (index as usize) > d);
                if !ok {
                    return Err(LoadError::BadDb { offset, index });
                }
                self.build_db(offset)?;
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
            Record::Expire(t) => {
                self.next_expire = Some((offset, t));
                Ok(())
            }
            Record::Str(key, value) => {
                let expire_at = self.whole_key(offset, key)?;
                let record = KeyRecord::new_str(key, value, expire_at);
                self.add(offset, record, "string")
            }
            Record::Int(key, i) => {
                let expire_at = self.whole_key(offset, key)?;
                let mut text = itoa_buf(i);
                let record = KeyRecord::new_str(key, text.as_bytes(), expire_at);
                text.clear();
                self.add(offset, record, "string")
            }
            Record::Compact(key, encoding, bytes) => {
                let expire_at = self.whole_key(offset, key)?;
                let value = decode_compact(encoding, bytes, &self.limits).map_err(|what| {
                    LoadError::BadValue {
                        offset,
                        key: show(key),
                        what,
                    }
                })?;
                let name = value.type_name();
                self.add(offset, KeyRecord::new(key, value, expire_at), name)
            }
            other => Err(LoadError::UnexpectedRecord {
                offset,
                found: other.name(),
                expected: "Db, Key or End",
            }),
        }
    }

    /// Starts a whole-key record: needs a database; takes the pending expiry.
    fn whole_key(&mut self, offset: u64, key: &[u8]) -> Result<Option<i64>, LoadError> {
        if self.db.is_none() {
            return Err(LoadError::UnexpectedRecord {
                offset,
                found: "key",
                expected: "Db",
            });
        }
        self.key_records += 1;
        if self.expired_keys.contains(key) {
            return Err(LoadError::DuplicateKey {
                offset,
                db: self.db.unwrap_or(0),
                key: show(key),
            });
        }
        Ok(self.next_expire.take().map(|(_, t)| t))
    }

    /// Keeps a finished key for its database's build, or counts it as expired.
    fn add(
        &mut self,
        offset: u64,
        record: KeyRecord,
        type_name: &'static str,
    ) -> Result<(), LoadError> {
        let db = self.db.unwrap_or(0);
        if record.is_expired(self.now_ms) {
            self.keys_expired += 1;
            if !self
                .expired_keys
                .insert(Bytes::copy_from_slice(record.key()))
            {
                return Err(LoadError::DuplicateKey {
                    offset,
                    db,
                    key: show(record.key()),
                });
            }
            return Ok(());
        }
        *self.per_db.entry((db, type_name)).or_default() += 1;
        self.keys_loaded += 1;
        self.records.push(record);
        Ok(())
    }

    /// Builds the current database's map from its gathered keys and
    /// installs it in the (not yet installed) keyspace.
    fn build_db(&mut self, offset: u64) -> Result<(), LoadError> {
        let Some(db) = self.db else {
            return Ok(());
        };
        let records = std::mem::take(&mut self.records);
        let built = Db::from_records(records).map_err(|dup| LoadError::DuplicateKey {
            offset,
            db,
            key: show(dup.key()),
        })?;
        if let Some(k) = self.expired_keys.iter().find(|k| built.stored(k).is_some()) {
            return Err(LoadError::DuplicateKey {
                offset,
                db,
                key: show(k),
            });
        }
        *self.keyspace.db_mut(db) = built;
        Ok(())
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
        // A repeat of a live key is caught when its database is built; a
        // repeat of a key dropped as expired is caught here.
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
            Kind::List => Value::List(List::new()),
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
                // Straight into chunks: no allocation per element.
                let fill = self.limits.list_fill();
                items.into_iter().for_each(|e| l.push_back(e, fill));
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

    /// Keeps the finished pending key (or drops it if it has expired).
    fn complete(&mut self) -> Result<(), LoadError> {
        let Some(mut p) = self.pending.take() else {
            return Ok(());
        };
        if p.kind == Kind::Str {
            p.value = Value::Str(Bytes::from(std::mem::take(&mut p.text)));
        }
        let name = p.value.type_name();
        let record = KeyRecord::new(&p.key, p.value, p.expire_at);
        self.add(p.header_offset, record, name)
    }

    fn finish(&mut self, offset: u64, keys: u64) -> Result<(), LoadError> {
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
        if let Some((at, _)) = self.next_expire {
            return Err(LoadError::UnexpectedRecord {
                offset: at,
                found: "Expire",
                expected: "a key after it",
            });
        }
        if keys != self.key_records || self.header_keys != self.key_records {
            return Err(LoadError::CountMismatch {
                offset,
                what: format!(
                    "{} key records, but the End record says {keys} and the header {}",
                    self.key_records, self.header_keys
                ),
            });
        }
        self.build_db(offset)
    }
}

/// The decimal form of `i` (what `Record::Int` stands for).
fn itoa_buf(i: i64) -> String {
    i.to_string()
}

/// A compact encoding's value, validated, in the encoding the loading
/// server's limits give it (converted when they are smaller than the
/// writer's). The error says what is wrong.
fn decode_compact(encoding: Compact, bytes: &[u8], limits: &Encodings) -> Result<Value, String> {
    match encoding {
        Compact::HashListpack => {
            let lp = Listpack::from_bytes(bytes).ok_or("not a listpack")?;
            if lp.is_empty() || lp.len() % 2 != 0 {
                return Err(format!("listpack hash of {} elements", lp.len()));
            }
            let fits = lp.len() / 2 <= limits.hash_max_listpack_entries
                && lp.max_element_len() <= limits.hash_max_listpack_value;
            if fits {
                let h = Hash::from_listpack(lp);
                h.check()?;
                return Ok(Value::Hash(h));
            }
            let mut h = Hash::new();
            for (f, v) in lp.pairs() {
                if !h.insert(f, v, limits) {
                    return Err(format!("field {:?} twice", show(f)));
                }
            }
            Ok(Value::Hash(h))
        }
        Compact::SetIntset => {
            let set = Set::from_intset_bytes(bytes).ok_or("not an intset")?;
            if set.is_empty() {
                return Err("empty intset".into());
            }
            Ok(Value::Set(set.rebuilt(limits)))
        }
        Compact::ZSetFlat => {
            let flat = Flat::from_bytes(bytes).ok_or("not a sorted set buffer")?;
            if flat.is_empty() {
                return Err("empty sorted set buffer".into());
            }
            // Order is checked by (score, member); a member may still repeat
            // under two scores.
            let mut members: Vec<&[u8]> = flat.iter().map(|(_, m)| m).collect();
            members.sort_unstable();
            if let Some(w) = members.windows(2).find(|w| w[0] == w[1]) {
                return Err(format!("member {:?} twice", show(w[0])));
            }
            let fits = flat.len() <= limits.zset_max_listpack_entries
                && flat.max_member_len() <= limits.zset_max_listpack_value;
            if fits {
                return Ok(Value::ZSet(ZSet::from_flat(flat)));
            }
            let mut z = ZSet::with_hint(flat.len(), flat.max_member_len(), limits);
            for (score, m) in flat.iter() {
                z.insert(m, score, limits);
            }
            Ok(Value::ZSet(z))
        }
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
