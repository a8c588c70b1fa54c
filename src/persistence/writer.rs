//! The snapshot writer: streams an O(1) keyspace clone to a temp file in the
//! target directory while computing the CRC, fsyncs it, renames it over the
//! dump and fsyncs the directory (as Redis's `rdb.c` does, plus the directory).
//! The file is never built in memory (one block at a time); on any error, or
//! when the save is cancelled, the temp file is removed and the old dump is left
//! untouched.
//!
//! It writes format version 2: keys in the map's own (hash) order, small keys
//! as one record each (integers as integers, compact encodings as their bytes),
//! records gathered into blocks that are Snappy-compressed where that pays.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::format::*;
use crate::keyspace::intset::parse_member;
use crate::keyspace::record::View;
use crate::keyspace::stream::{Stream, StreamId};
use crate::keyspace::{Entry, Keyspace, Record as KeyRecord, Value};

/// Why a save failed. The old dump is intact in every case.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("cannot create temp file {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("write error saving snapshot to {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot rename {from} to {to}: {source}")]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: io::Error,
    },
    #[error("cannot encode record: {0}")]
    Encode(postcard::Error),
    /// BGSAVE CANCEL stopped the save.
    #[error("the save was cancelled")]
    Cancelled,
}

/// What a successful save wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SaveStats {
    pub keys: u64,
    pub bytes: u64,
}

/// Progress counters a save updates as it goes (INFO `current_save_keys_*`).
#[derive(Debug, Default)]
pub struct Progress {
    pub keys_done: AtomicU64,
    pub keys_total: AtomicU64,
    /// Set to stop the save: the writer checks it between keys (BGSAVE CANCEL).
    pub cancel: AtomicBool,
}

/// How often long saves and loads log their progress.
pub const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(5);

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `snapshot` to `path` durably and atomically.
pub fn save_to(
    snapshot: &Keyspace,
    path: &Path,
    now_ms: i64,
    progress: &Progress,
) -> Result<SaveStats, SaveError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        "temp-{}-{}.rdb",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_temp(snapshot, &temp, now_ms, progress).and_then(|stats| {
        fs::rename(&temp, path).map_err(|source| SaveError::Rename {
            from: temp.clone(),
            to: path.to_path_buf(),
            source,
        })?;
        // The rename is durable only once the directory entry is on disk.
        if let Err(e) = File::open(&dir).and_then(|d| d.sync_all()) {
            tracing::warn!("could not fsync directory {}: {e}", dir.display());
        }
        Ok(stats)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn write_temp(
    snapshot: &Keyspace,
    temp: &Path,
    now_ms: i64,
    progress: &Progress,
) -> Result<SaveStats, SaveError> {
    let file = File::create(temp).map_err(|source| SaveError::Create {
        path: temp.to_path_buf(),
        source,
    })?;
    let write_err = |source| SaveError::Write {
        path: temp.to_path_buf(),
        source,
    };
    let mut out = CrcWriter::new(BufWriter::with_capacity(256 * 1024, file));
    let keys = write_body(snapshot, &mut out, now_ms, progress).map_err(|e| match e {
        SaveError::Write { source, .. } => write_err(source),
        other => other,
    })?;
    let crc = out.hasher.clone().finalize();
    out.write_all(&crc.to_le_bytes()).map_err(write_err)?;
    let bytes = out.written;
    let file = out
        .inner
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    Ok(SaveStats { keys, bytes })
}

/// Writes header and blocks (everything the CRC covers) to `out`, checking
/// `progress.cancel` between records. Two threads share the work: a scoped
/// one encodes the keyspace into blocks, this one compresses and writes them
/// (a few blocks in flight, their buffers reused), so `out` need not be `Send`.
pub fn write_body<W: Write>(
    snapshot: &Keyspace,
    out: &mut W,
    created_unix_ms: i64,
    progress: &Progress,
) -> Result<u64, SaveError> {
    let header = Header {
        version: FORMAT_VERSION,
        created_unix_ms,
        db_count: snapshot.db_count() as u32,
        key_count: snapshot.key_count() as u64,
    };
    raw(out, &header.encode())?;
    std::thread::scope(|scope| {
        let (full_tx, full_rx) = mpsc::sync_channel(BLOCKS_AHEAD);
        let (free_tx, free_rx) = mpsc::channel();
        let encoder = scope.spawn(move || {
            let mut w = BlockWriter {
                block: Vec::with_capacity(BLOCK_TARGET + 64 * 1024),
                full: full_tx,
                free: free_rx,
                cancel: &progress.cancel,
            };
            encode(snapshot, &mut w, progress)
        });
        // Returning drops the receiver, which stops the encoder at its next block.
        let written = write_blocks(out, full_rx, free_tx);
        let encoded = encoder.join().unwrap_or_else(|_| {
            Err(SaveError::Write {
                path: PathBuf::new(),
                source: io::Error::other("the snapshot encoding thread panicked"),
            })
        });
        // A write error comes first: the encoder then only saw the channel close.
        written.and(encoded)
    })
}

/// The encoding side of [`write_body`]: every key, in each map's own order.
fn encode(
    snapshot: &Keyspace,
    w: &mut BlockWriter<'_>,
    progress: &Progress,
) -> Result<u64, SaveError> {
    let total = snapshot.key_count() as u64;
    progress.keys_done.store(0, Ordering::Relaxed);
    progress.keys_total.store(total, Ordering::Relaxed);
    let mut done = 0u64;
    let mut last_log = Instant::now();
    for (index, db) in snapshot.dbs().iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        w.record(&Record::Db {
            index: index as u32,
        })?;
        for record in db.records() {
            write_record(w, record)?;
            done += 1;
            if done.is_multiple_of(1024) {
                progress.keys_done.store(done, Ordering::Relaxed);
                if last_log.elapsed() >= PROGRESS_LOG_EVERY {
                    tracing::info!("saving snapshot: {done}/{total} keys");
                    last_log = Instant::now();
                }
            }
        }
    }
    progress.keys_done.store(done, Ordering::Relaxed);
    for code in snapshot.functions() {
        w.record(&Record::Function(code))?;
    }
    w.record(&Record::End { keys: done })?;
    w.flush(true)?;
    Ok(done)
}

/// The writing side of [`write_body`]: compresses each block (Snappy, kept
/// when it saves at least 1/32 of the block, else the block is stored) and
/// writes it, handing the buffer back.
fn write_blocks<W: Write>(
    out: &mut W,
    full: mpsc::Receiver<(Vec<u8>, bool)>,
    free: mpsc::Sender<Vec<u8>>,
) -> Result<(), SaveError> {
    let mut packed = Vec::new();
    let mut snappy = snap::raw::Encoder::new();
    for (mut block, last) in full {
        let raw_len = u32::try_from(block.len())
            .map_err(|_| SaveError::Encode(postcard::Error::SerializeBufferFull))?;
        let mut codec = Codec::Stored;
        if block.len() <= BLOCK_COMPRESS_MAX {
            packed.resize(snap::raw::max_compress_len(block.len()), 0);
            let n = snappy
                .compress(&block, &mut packed)
                .map_err(|_| SaveError::Encode(postcard::Error::SerializeBufferFull))?;
            if n < block.len() - block.len() / 32 {
                packed.truncate(n);
                codec = Codec::Snappy;
            }
        }
        let data = match codec {
            Codec::Snappy => &packed,
            Codec::Stored => &block,
        };
        let header = BlockHeader {
            codec,
            last,
            raw_len,
            stored_len: data.len() as u32,
        };
        raw(out, &header.encode())?;
        raw(out, data)?;
        block.clear();
        let _ = free.send(block);
    }
    Ok(())
}

/// One key: as a single record when it is a short string or a compact
/// encoding (read straight from the stored bytes), else as a key header and
/// chunks.
fn write_record(w: &mut BlockWriter<'_>, record: &KeyRecord) -> Result<(), SaveError> {
    let key = record.key();
    let expire_at = record.expire_at();
    let compact = match record.view() {
        View::Str(s) => return write_str(w, key, s, expire_at),
        View::HashListpack(b) => Some((Compact::HashListpack, b)),
        View::SetIntset(b) => Some((Compact::SetIntset, b)),
        View::ZSetFlat(b) => Some((Compact::ZSetFlat, b)),
        View::ListChunk(_) => None,
        View::Boxed(value) => match value {
            Value::Str(s) if s.len() <= CHUNK_MAX_BYTES => return write_str(w, key, s, expire_at),
            Value::Hash(h) if !h.is_empty() => h
                .listpack()
                .map(|lp| (Compact::HashListpack, lp.as_bytes())),
            Value::Set(s) if !s.is_empty() => s.intset_bytes().map(|b| (Compact::SetIntset, b)),
            Value::ZSet(z) if !z.is_empty() => z.flat().map(|f| (Compact::ZSetFlat, f.as_bytes())),
            _ => None,
        },
    };
    match compact {
        Some((encoding, bytes)) => {
            expire(w, expire_at)?;
            w.record(&Record::Compact(key, encoding, bytes))
        }
        None => write_entry(w, key, &record.to_entry()),
    }
}

fn expire(w: &mut BlockWriter<'_>, expire_at: Option<i64>) -> Result<(), SaveError> {
    match expire_at {
        Some(t) => w.record(&Record::Expire(t)),
        None => Ok(()),
    }
}

fn write_str(
    w: &mut BlockWriter<'_>,
    key: &[u8],
    value: &[u8],
    expire_at: Option<i64>,
) -> Result<(), SaveError> {
    expire(w, expire_at)?;
    match parse_member(value) {
        Some(i) => w.record(&Record::Int(key, i)),
        None => w.record(&Record::Str(key, value)),
    }
}

fn write_entry(w: &mut BlockWriter<'_>, key: &[u8], entry: &Entry) -> Result<(), SaveError> {
    let (kind, len) = match &entry.value {
        Value::Str(s) => (Kind::Str, s.len()),
        Value::List(l) => (Kind::List, l.len()),
        Value::Hash(h) => (Kind::Hash, h.len()),
        Value::Set(s) => (Kind::Set, s.len()),
        Value::ZSet(z) => (Kind::ZSet, z.len()),
        Value::Stream(s) => (Kind::Stream, stream_items(s)),
    };
    w.record(&Record::Key(KeyHeader {
        key,
        expire_at_ms: entry.expire_at,
        kind,
        len: len as u64,
    }))?;
    match &entry.value {
        Value::Str(s) => {
            for piece in s.chunks(CHUNK_MAX_BYTES) {
                w.record(&Record::StrChunk(piece))?;
            }
        }
        Value::List(l) => chunked(l.iter(), |c| w.record(&Record::ListChunk(c)))?,
        Value::Set(s) => chunked(s.iter(), |c| w.record(&Record::SetChunk(c)))?,
        Value::Hash(h) => {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            for (f, v) in h.iter() {
                bytes += f.len() + v.len();
                chunk.push((f, v));
                if chunk.len() >= CHUNK_MAX_ELEMENTS || bytes >= CHUNK_MAX_BYTES {
                    w.record(&Record::HashChunk(std::mem::take(&mut chunk)))?;
                    bytes = 0;
                }
            }
            if !chunk.is_empty() {
                w.record(&Record::HashChunk(chunk))?;
            }
        }
        Value::ZSet(z) => {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            for (score, m) in z.iter() {
                bytes += m.len() + 8;
                chunk.push((m, score));
                if chunk.len() >= CHUNK_MAX_ELEMENTS || bytes >= CHUNK_MAX_BYTES {
                    w.record(&Record::ZSetChunk(std::mem::take(&mut chunk)))?;
                    bytes = 0;
                }
            }
            if !chunk.is_empty() {
                w.record(&Record::ZSetChunk(chunk))?;
            }
        }
        Value::Stream(s) => write_stream(w, s)?,
    }
    Ok(())
}

fn sid(id: StreamId) -> Sid {
    (id.ms, id.seq)
}

/// The items a stream's parts hold: its entries, its metadata, each group,
/// consumer and pending entry.
fn stream_items(s: &Stream) -> usize {
    let groups: usize = s
        .groups()
        .values()
        .map(|g| 1 + g.consumers.len() + g.pel.len())
        .sum();
    s.len() as usize + 1 + groups
}

fn write_stream(w: &mut BlockWriter<'_>, s: &Stream) -> Result<(), SaveError> {
    let part = |p| Record::StreamChunk(p);
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for (id, fields) in s.entries() {
        let mut flat = Vec::with_capacity(fields.len() * 2);
        for (f, v) in fields {
            bytes += f.len() + v.len();
            flat.push(f);
            flat.push(v);
        }
        chunk.push((sid(id), flat));
        if chunk.len() >= CHUNK_MAX_ELEMENTS || bytes >= CHUNK_MAX_BYTES {
            w.record(&part(StreamPart::Entries(std::mem::take(&mut chunk))))?;
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        w.record(&part(StreamPart::Entries(chunk)))?;
    }
    w.record(&part(StreamPart::Meta {
        last_id: sid(s.last_id()),
        first_id: sid(s.first_id()),
        max_deleted: sid(s.max_deleted()),
        entries_added: s.entries_added(),
    }))?;
    for (name, g) in s.groups().iter() {
        w.record(&part(StreamPart::Group {
            name,
            last_id: sid(g.last_id),
            entries_read: g.entries_read,
        }))?;
        let consumers: Vec<(&[u8], i64)> = g
            .consumers
            .iter()
            .map(|(n, c)| (&n[..], c.seen_time))
            .collect();
        for piece in consumers.chunks(CHUNK_MAX_ELEMENTS) {
            w.record(&part(StreamPart::Consumers {
                group: name,
                consumers: piece.to_vec(),
            }))?;
        }
        let nacks: Vec<(Sid, &[u8], i64, u64)> = g
            .pel
            .iter()
            .map(|(id, n)| (sid(*id), &n.consumer[..], n.delivery_time, n.delivery_count))
            .collect();
        for piece in nacks.chunks(CHUNK_MAX_ELEMENTS) {
            w.record(&part(StreamPart::Pending {
                group: name,
                nacks: piece.to_vec(),
            }))?;
        }
    }
    Ok(())
}

/// Groups elements into chunks bounded by count and bytes. Elements may be
/// borrowed or (an intset's members, printed as they go) owned by the chunk.
fn chunked<B: AsRef<[u8]>>(
    items: impl Iterator<Item = B>,
    mut emit: impl FnMut(Vec<&[u8]>) -> Result<(), SaveError>,
) -> Result<(), SaveError> {
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for item in items {
        bytes += item.as_ref().len();
        chunk.push(item);
        if chunk.len() >= CHUNK_MAX_ELEMENTS || bytes >= CHUNK_MAX_BYTES {
            emit(chunk.iter().map(AsRef::as_ref).collect())?;
            chunk.clear();
            bytes = 0;
        }
    }
    if !chunk.is_empty() {
        emit(chunk.iter().map(AsRef::as_ref).collect())?;
    }
    Ok(())
}

fn raw<W: Write>(out: &mut W, bytes: &[u8]) -> Result<(), SaveError> {
    out.write_all(bytes).map_err(|source| SaveError::Write {
        path: PathBuf::new(),
        source,
    })
}

/// Gathers encoded records into a block and hands each full block to the
/// writing side.
struct BlockWriter<'w> {
    block: Vec<u8>,
    full: mpsc::SyncSender<(Vec<u8>, bool)>,
    /// Buffers the writing side is done with.
    free: mpsc::Receiver<Vec<u8>>,
    /// BGSAVE CANCEL's flag, checked before each record (one relaxed load),
    /// so even a value of millions of elements stops within a chunk.
    cancel: &'w AtomicBool,
}

impl BlockWriter<'_> {
    /// Appends a record, first handing the block over if it is full (so the
    /// End record always lands in the last block, sent by `flush(true)`).
    fn record<T: Serialize>(&mut self, record: &T) -> Result<(), SaveError> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(SaveError::Cancelled);
        }
        if self.block.len() >= BLOCK_TARGET {
            self.flush(false)?;
        }
        let buf = std::mem::take(&mut self.block);
        self.block =
            postcard::serialize_with_flavor(record, AppendVec(buf)).map_err(SaveError::Encode)?;
        Ok(())
    }

    fn flush(&mut self, last: bool) -> Result<(), SaveError> {
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK_TARGET + 64 * 1024));
        let block = std::mem::replace(&mut self.block, next);
        // The writing side stopped on an error of its own, which it reports.
        self.full.send((block, last)).map_err(|_| SaveError::Write {
            path: PathBuf::new(),
            source: io::Error::other("the snapshot writing side stopped"),
        })
    }
}

/// A postcard output that appends slices with one copy each; postcard's own
/// `to_extend` goes through `Extend`, which copies byte by byte.
struct AppendVec(Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendVec {
    type Output = Vec<u8>;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Passes bytes through while hashing and counting them.
pub struct CrcWriter<W: Write> {
    pub inner: W,
    pub hasher: crc32fast::Hasher,
    pub written: u64,
}

impl<W: Write> CrcWriter<W> {
    pub fn new(inner: W) -> Self {
        CrcWriter {
            inner,
            hasher: crc32fast::Hasher::new(),
            written: 0,
        }
    }
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Encodes a whole snapshot in memory (header, records, CRC): for tests and
/// fixtures only; the server always streams with [`save_to`].
pub fn to_bytes(snapshot: &Keyspace, created_unix_ms: i64) -> Vec<u8> {
    let mut out = CrcWriter::new(Vec::new());
    write_body(snapshot, &mut out, created_unix_ms, &Progress::default())
        .expect("writing to memory cannot fail");
    let crc = out.hasher.clone().finalize();
    let mut bytes = out.inner;
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistence::loader::load_file;
    use bytes::Bytes;

    #[test]
    fn save_replaces_the_dump_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        let mut ks = Keyspace::new(2);
        ks.db_mut(1)
            .insert(Bytes::from("a"), Value::Str(Bytes::from("1")), None);
        let first = save_to(&ks, &path, 0, &Progress::default()).unwrap();
        assert_eq!(first.keys, 1);
        assert_eq!(first.bytes, std::fs::metadata(&path).unwrap().len());
        ks.db_mut(0)
            .insert(Bytes::from("b"), Value::Str(Bytes::from("2")), None);
        let progress = Progress::default();
        save_to(&ks, &path, 0, &progress).unwrap();
        assert_eq!(progress.keys_done.load(Ordering::Relaxed), 2);
        assert_eq!(load_file(&path, Some(2), 0).unwrap().keys_loaded, 2);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["dump.rdb"]);
    }

    #[test]
    fn failed_save_keeps_the_old_dump() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        std::fs::write(&path, b"old").unwrap();
        // A directory that does not exist: the temp file cannot be created.
        let missing = dir.path().join("missing").join("dump.rdb");
        let err = save_to(&Keyspace::new(1), &missing, 0, &Progress::default()).unwrap_err();
        assert!(matches!(err, SaveError::Create { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }

    #[test]
    fn a_cancelled_save_removes_its_temp_file_and_keeps_the_dump() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dump.rdb");
        std::fs::write(&path, b"old").unwrap();
        let mut ks = Keyspace::new(1);
        ks.db_mut(0)
            .insert(Bytes::from("a"), Value::Str(Bytes::from("1")), None);
        let progress = Progress::default();
        progress.cancel.store(true, Ordering::Relaxed);
        let err = save_to(&ks, &path, 0, &progress).unwrap_err();
        assert!(matches!(err, SaveError::Cancelled), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
