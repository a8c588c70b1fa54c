//! The snapshot file format, versions 1 and 2: constants, the fixed header, the
//! record types and their framing. `rdb-format.md` at the repository root
//! describes the same layout byte by byte; the two must change together.
//!
//! Byte order is little-endian everywhere. A version 1 file is
//! `header | frame* | crc32`, where each frame is a `u32` length followed by that
//! many bytes of a postcard-encoded [`Record`], and the last frame holds
//! [`Record::End`]. A version 2 file is `header | block* | crc32`: each block is
//! a [`BlockHeader`] then its data, stored or Snappy-compressed, and the data is
//! whole postcard records back to back (postcard records delimit themselves).

use serde::{Deserialize, Serialize};

/// PNG-style magic: the high first byte makes the file invalid UTF-8 and ASCII,
/// `\r\n` and `\x1a\n` catch line-ending conversions and `type` on DOS.
pub const MAGIC: [u8; 8] = [0x89, b'F', b'K', b'L', b'\r', b'\n', 0x1a, b'\n'];
/// The version this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// The first format: length-prefixed frames, no compression. Still loaded.
pub const FORMAT_V1: u32 = 1;

pub const MAGIC_OFFSET: usize = 0;
pub const MAGIC_LEN: usize = MAGIC.len();
pub const VERSION_OFFSET: usize = MAGIC_OFFSET + MAGIC_LEN;
pub const VERSION_LEN: usize = 4;
pub const CREATED_OFFSET: usize = VERSION_OFFSET + VERSION_LEN;
pub const CREATED_LEN: usize = 8;
pub const DB_COUNT_OFFSET: usize = CREATED_OFFSET + CREATED_LEN;
pub const DB_COUNT_LEN: usize = 4;
pub const KEY_COUNT_OFFSET: usize = DB_COUNT_OFFSET + DB_COUNT_LEN;
pub const KEY_COUNT_LEN: usize = 8;
/// Bytes of the fixed header; the first frame starts here.
pub const HEADER_LEN: usize = KEY_COUNT_OFFSET + KEY_COUNT_LEN;

/// Each record is preceded by its length as a `u32`.
pub const FRAME_LEN_LEN: usize = 4;
/// The trailer: CRC32 (IEEE, as crc32fast computes it) of every byte before it.
pub const TRAILER_LEN: usize = 4;
/// The smallest well-formed file: header, an End frame, trailer.
pub const MIN_FILE_LEN: usize = HEADER_LEN + FRAME_LEN_LEN + 2 + TRAILER_LEN;

/// Version 2: each block starts with its codec, its data's length once
/// decoded and the length stored in the file.
pub const BLOCK_CODEC_OFFSET: usize = 0;
pub const BLOCK_CODEC_LEN: usize = 1;
pub const BLOCK_RAW_LEN_OFFSET: usize = BLOCK_CODEC_OFFSET + BLOCK_CODEC_LEN;
pub const BLOCK_RAW_LEN_LEN: usize = 4;
pub const BLOCK_STORED_LEN_OFFSET: usize = BLOCK_RAW_LEN_OFFSET + BLOCK_RAW_LEN_LEN;
pub const BLOCK_STORED_LEN_LEN: usize = 4;
/// Bytes of a block header; the block's data follows.
pub const BLOCK_HEADER_LEN: usize = BLOCK_STORED_LEN_OFFSET + BLOCK_STORED_LEN_LEN;
/// The writer closes a block once its records reach this many bytes (a single
/// larger record gets a block of its own). Snappy looks back 64 KiB at most,
/// so larger blocks gain little ratio; they would only delay the loader's
/// pipeline.
pub const BLOCK_TARGET: usize = 128 * 1024;
/// Blocks one thread of a save or load may run ahead of the other (4 MiB of
/// buffers at most): enough that on a busy machine each thread does a long
/// stretch of work per time slice instead of waiting for the other to be
/// scheduled after every block.
pub const BLOCKS_AHEAD: usize = 32;
/// Blocks larger than this are stored without trying to compress them: the
/// writer would need a second buffer of their size.
pub const BLOCK_COMPRESS_MAX: usize = 4 << 20;
/// Snappy expands at most about 21:1 (a 3-byte copy yields 64 bytes), so a
/// compressed block's decoded length is bounded by its stored length: the
/// loader refuses a header claiming more than this many times it before
/// allocating anything.
pub const SNAPPY_MAX_RATIO: u64 = 32;

/// How a block's data is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Codec {
    /// As is: compression did not pay.
    Stored = 0,
    /// Snappy's raw format (as `snap::raw` writes it: the decoded length
    /// as a varint, then the elements), no framing or checksum.
    Snappy = 1,
}

impl Codec {
    pub fn from_byte(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Stored),
            1 => Some(Codec::Snappy),
            _ => None,
        }
    }
}

/// Set in a block's codec byte on the file's last block (the one ending with
/// the End record): the checksum follows it.
pub const LAST_BLOCK: u8 = 0x80;

/// The fixed-size head of a version 2 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub codec: Codec,
    /// The file's last block.
    pub last: bool,
    /// Bytes of the block's records once decoded.
    pub raw_len: u32,
    /// Bytes of data that follow in the file.
    pub stored_len: u32,
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; BLOCK_HEADER_LEN] {
        let mut out = [0u8; BLOCK_HEADER_LEN];
        out[BLOCK_CODEC_OFFSET] = self.codec as u8 | if self.last { LAST_BLOCK } else { 0 };
        out[BLOCK_RAW_LEN_OFFSET..BLOCK_RAW_LEN_OFFSET + BLOCK_RAW_LEN_LEN]
            .copy_from_slice(&self.raw_len.to_le_bytes());
        out[BLOCK_STORED_LEN_OFFSET..BLOCK_STORED_LEN_OFFSET + BLOCK_STORED_LEN_LEN]
            .copy_from_slice(&self.stored_len.to_le_bytes());
        out
    }

    /// The raw fields: the codec byte (last-block bit removed) unchecked (the
    /// loader says what is wrong), whether it is the last block, the lengths.
    pub fn decode(raw: &[u8; BLOCK_HEADER_LEN]) -> (u8, bool, u32, u32) {
        let u32_at = |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        (
            raw[BLOCK_CODEC_OFFSET] & !LAST_BLOCK,
            raw[BLOCK_CODEC_OFFSET] & LAST_BLOCK != 0,
            u32_at(BLOCK_RAW_LEN_OFFSET),
            u32_at(BLOCK_STORED_LEN_OFFSET),
        )
    }
}

/// A value chunk holds at most this many elements...
pub const CHUNK_MAX_ELEMENTS: usize = 1024;
/// ...and stops growing once it holds this many payload bytes (a single larger
/// element still goes in a chunk of its own).
pub const CHUNK_MAX_BYTES: usize = 1 << 20;

/// The fixed-size header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u32,
    /// Unix milliseconds when the snapshot was taken.
    pub created_unix_ms: i64,
    /// Databases the writing server had.
    pub db_count: u32,
    /// Key records in the file (keys already expired at save time included).
    pub key_count: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[MAGIC_OFFSET..MAGIC_OFFSET + MAGIC_LEN].copy_from_slice(&MAGIC);
        out[VERSION_OFFSET..VERSION_OFFSET + VERSION_LEN]
            .copy_from_slice(&self.version.to_le_bytes());
        out[CREATED_OFFSET..CREATED_OFFSET + CREATED_LEN]
            .copy_from_slice(&self.created_unix_ms.to_le_bytes());
        out[DB_COUNT_OFFSET..DB_COUNT_OFFSET + DB_COUNT_LEN]
            .copy_from_slice(&self.db_count.to_le_bytes());
        out[KEY_COUNT_OFFSET..KEY_COUNT_OFFSET + KEY_COUNT_LEN]
            .copy_from_slice(&self.key_count.to_le_bytes());
        out
    }

    /// Splits the raw header into fields; the loader validates them.
    pub fn decode(raw: &[u8; HEADER_LEN]) -> ([u8; MAGIC_LEN], Header) {
        let mut magic = [0u8; MAGIC_LEN];
        magic.copy_from_slice(&raw[MAGIC_OFFSET..MAGIC_OFFSET + MAGIC_LEN]);
        let u32_at = |o: usize| u32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&raw[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let header = Header {
            version: u32_at(VERSION_OFFSET),
            created_unix_ms: u64_at(CREATED_OFFSET) as i64,
            db_count: u32_at(DB_COUNT_OFFSET),
            key_count: u64_at(KEY_COUNT_OFFSET),
        };
        (magic, header)
    }
}

/// The type of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Str,
    List,
    Hash,
    Set,
    /// A sorted set; its pairs follow in [`Record::ZSetChunk`]s.
    ZSet,
    /// A stream; its parts follow in [`Record::StreamChunk`]s.
    Stream,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "string",
            Kind::List => "list",
            Kind::Hash => "hash",
            Kind::Set => "set",
            Kind::ZSet => "zset",
            Kind::Stream => "stream",
        }
    }
}

/// Starts a key: its value follows in chunk records of the matching kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyHeader<'a> {
    #[serde(serialize_with = "ser_bytes")]
    pub key: &'a [u8],
    /// Absolute expiry, Unix milliseconds; `None` = no TTL.
    pub expire_at_ms: Option<i64>,
    pub kind: Kind,
    /// String: byte length. List, hash, set, zset: element count (hash:
    /// fields, zset: members), ≥ 1. Stream: items in its parts (see
    /// [`StreamPart`]), ≥ 1.
    pub len: u64,
}

/// One frame's payload. Variant order is part of the format (postcard encodes
/// the variant index as a varint): append, never reorder. (Not `Eq`: scores
/// are floats.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record<'a> {
    /// The keys that follow belong to this database. Indexes strictly increase.
    Db { index: u32 },
    #[serde(borrow)]
    Key(KeyHeader<'a>),
    /// The next bytes of a string value.
    StrChunk(#[serde(serialize_with = "ser_bytes")] &'a [u8]),
    /// The next elements of a list, head to tail.
    #[serde(borrow)]
    ListChunk(#[serde(serialize_with = "ser_bytes_seq")] Vec<&'a [u8]>),
    /// More members of a set.
    #[serde(borrow)]
    SetChunk(#[serde(serialize_with = "ser_bytes_seq")] Vec<&'a [u8]>),
    /// More (field, value) pairs of a hash.
    #[serde(borrow)]
    HashChunk(#[serde(serialize_with = "ser_byte_pairs")] Vec<(&'a [u8], &'a [u8])>),
    /// The last record; `keys` must equal the header's key count.
    End { keys: u64 },
    /// More (member, score) pairs of a sorted set, in ascending (score,
    /// member) order across the key's chunks; no score is NaN.
    #[serde(borrow)]
    ZSetChunk(#[serde(serialize_with = "ser_scored_seq")] Vec<(&'a [u8], f64)>),
    /// One function library's code (`#!lua name=...` header included), after
    /// the keys and before End, in library-name order.
    Function(#[serde(serialize_with = "ser_bytes")] &'a [u8]),
    /// One part of a stream value.
    #[serde(borrow)]
    StreamChunk(StreamPart<'a>),
    /// Version 2: the absolute expiry (Unix ms) of the whole-key record
    /// ([`Record::Str`], [`Record::Int`], [`Record::Compact`]) right after it.
    Expire(i64),
    /// Version 2: a whole string key (key, value) of at most
    /// [`CHUNK_MAX_BYTES`] bytes that is not a canonical integer.
    Str(
        #[serde(serialize_with = "ser_bytes")] &'a [u8],
        #[serde(serialize_with = "ser_bytes")] &'a [u8],
    ),
    /// Version 2: a string key whose value is the decimal form of this
    /// integer (no sign but `-`, no leading zero): stored as a varint.
    Int(#[serde(serialize_with = "ser_bytes")] &'a [u8], i64),
    /// Version 2: a small collection as its compact encoding's bytes, exactly
    /// as the keyspace holds them (key, encoding, bytes).
    Compact(
        #[serde(serialize_with = "ser_bytes")] &'a [u8],
        Compact,
        #[serde(serialize_with = "ser_bytes")] &'a [u8],
    ),
}

/// The compact encodings a [`Record::Compact`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Compact {
    /// A hash's listpack (`keyspace/listpack.rs`): fields and values alternating.
    HashListpack,
    /// A set's intset (`keyspace/intset.rs`): width, then ascending integers.
    SetIntset,
    /// A sorted set's flat buffer (`keyspace/zset/flat.rs`), in order.
    ZSetFlat,
}

impl Compact {
    pub fn kind(self) -> Kind {
        match self {
            Compact::HashListpack => Kind::Hash,
            Compact::SetIntset => Kind::Set,
            Compact::ZSetFlat => Kind::ZSet,
        }
    }
}

/// A stream id as `(ms, seq)`.
pub type Sid = (u64, u64);

/// A stream is written as its entries, then its metadata, then each group
/// with its consumers and pending entries. Each part counts as many items
/// towards the key header's `len` as it holds (Meta and Group: one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamPart<'a> {
    /// Entries in ascending id order, each with its fields and values
    /// alternating.
    #[serde(borrow)]
    Entries(Vec<(Sid, Vec<&'a [u8]>)>),
    /// After the entries: Redis's stream metadata.
    Meta {
        last_id: Sid,
        first_id: Sid,
        max_deleted: Sid,
        entries_added: u64,
    },
    /// A consumer group; -1 `entries_read` is "unknown".
    Group {
        name: &'a [u8],
        last_id: Sid,
        entries_read: i64,
    },
    /// Consumers of the named group: name and seen time (Unix ms).
    Consumers {
        group: &'a [u8],
        #[serde(borrow)]
        consumers: Vec<(&'a [u8], i64)>,
    },
    /// Pending entries of the named group: id, consumer, last delivery
    /// (Unix ms), delivery count.
    Pending {
        group: &'a [u8],
        #[serde(borrow)]
        nacks: Vec<(Sid, &'a [u8], i64, u64)>,
    },
}

impl StreamPart<'_> {
    /// Items this part counts towards the key header's `len`.
    pub fn items(&self) -> usize {
        match self {
            StreamPart::Entries(e) => e.len(),
            StreamPart::Meta { .. } | StreamPart::Group { .. } => 1,
            StreamPart::Consumers { consumers, .. } => consumers.len(),
            StreamPart::Pending { nacks, .. } => nacks.len(),
        }
    }
}

// serde serialises `[u8]` as a sequence, one element at a time; postcard encodes
// a byte sequence and a byte string identically (varint length, then the raw
// bytes), so writing them with `serialize_bytes` changes no byte of the format and
// turns a per-byte loop into one copy. Deserialising `&[u8]` already borrows bytes.

fn ser_bytes<S: serde::Serializer>(bytes: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

struct AsBytes<'a>(&'a [u8]);

impl Serialize for AsBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

fn ser_bytes_seq<S: serde::Serializer>(items: &[&[u8]], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(|b| AsBytes(b)))
}

fn ser_byte_pairs<S: serde::Serializer>(items: &[(&[u8], &[u8])], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(|(f, v)| (AsBytes(f), AsBytes(v))))
}

fn ser_scored_seq<S: serde::Serializer>(items: &[(&[u8], f64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(|(m, score)| (AsBytes(m), score)))
}

impl Record<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            Record::Db { .. } => "Db",
            Record::Key(_) => "Key",
            Record::StrChunk(_) => "StrChunk",
            Record::ListChunk(_) => "ListChunk",
            Record::SetChunk(_) => "SetChunk",
            Record::HashChunk(_) => "HashChunk",
            Record::End { .. } => "End",
            Record::ZSetChunk(_) => "ZSetChunk",
            Record::Function(_) => "Function",
            Record::StreamChunk(_) => "StreamChunk",
            Record::Expire(_) => "Expire",
            Record::Str(..) => "Str",
            Record::Int(..) => "Int",
            Record::Compact(..) => "Compact",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips() {
        let h = Header {
            version: FORMAT_VERSION,
            created_unix_ms: 1_700_000_000_123,
            db_count: 16,
            key_count: 42,
        };
        let raw = h.encode();
        assert_eq!(&raw[..8], &MAGIC);
        assert!(std::str::from_utf8(&raw[..8]).is_err());
        assert_eq!(Header::decode(&raw), (MAGIC, h));
        assert_eq!(HEADER_LEN, 32);
    }

    #[test]
    fn record_encoding_is_stable() {
        // Pins the postcard 1.x wire format of a few records (see rdb-format.md).
        let bytes = postcard::to_stdvec(&Record::Db { index: 3 }).unwrap();
        assert_eq!(bytes, [0x00, 0x03]);
        let bytes = postcard::to_stdvec(&Record::Key(KeyHeader {
            key: b"k",
            expire_at_ms: Some(-1),
            kind: Kind::Set,
            len: 300,
        }))
        .unwrap();
        assert_eq!(bytes, [0x01, 0x01, b'k', 0x01, 0x01, 0x03, 0xac, 0x02]);
        let bytes = postcard::to_stdvec(&Record::HashChunk(vec![(b"f", b"vv")])).unwrap();
        assert_eq!(bytes, [0x05, 0x01, 0x01, b'f', 0x02, b'v', b'v']);
        let bytes = postcard::to_stdvec(&Record::End { keys: 0 }).unwrap();
        assert_eq!(bytes, [0x06, 0x00]);
        let bytes = postcard::to_stdvec(&Record::ZSetChunk(vec![(b"m", 1.5)])).unwrap();
        assert_eq!(
            bytes,
            [0x07, 0x01, 0x01, b'm', 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]
        );
        let bytes = postcard::to_stdvec(&Kind::ZSet).unwrap();
        assert_eq!(bytes, [0x04]);
        // Version 2's records and block header (rdb-format.md's examples).
        assert_eq!(
            postcard::to_stdvec(&Record::Int(b"k", -2)).unwrap(),
            [0x0c, 0x01, b'k', 0x03]
        );
        assert_eq!(
            postcard::to_stdvec(&Record::Expire(1)).unwrap(),
            [0x0a, 0x02]
        );
        assert_eq!(
            postcard::to_stdvec(&Record::Str(b"k", b"v")).unwrap(),
            [0x0b, 0x01, b'k', 0x01, b'v']
        );
        assert_eq!(
            postcard::to_stdvec(&Record::Compact(b"k", Compact::ZSetFlat, &[0])).unwrap(),
            [0x0d, 0x01, b'k', 0x02, 0x01, 0x00]
        );
        let block = BlockHeader {
            codec: Codec::Stored,
            last: true,
            raw_len: 2,
            stored_len: 2,
        };
        assert_eq!(block.encode(), [0x80, 2, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(BlockHeader::decode(&block.encode()), (0, true, 2, 2));
        let bytes = postcard::to_stdvec(&Record::Function(b"#!lua name=l\nx")).unwrap();
        let mut want = vec![0x08, 0x0e];
        want.extend_from_slice(b"#!lua name=l\nx");
        assert_eq!(bytes, want);
    }
}
