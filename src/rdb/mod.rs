//! Redis's RDB format: reading RDB files and DUMP payloads written by
//! redis-server (and Valkey) into forkless values, and writing them back in
//! the form redis-server 7.0 writes.
//!
//! - [`reader`]: RDB versions 1 to 12 (Redis 2.x to 7.4, Valkey 7.2 and 8):
//!   opcodes, length and string encodings, every value type forkless has in
//!   every encoding Redis ever wrote; modules and hashes with field expiry
//!   are refused with the key and type named.
//! - [`writer`]: RDB version 10 files and DUMP payloads, each value in the
//!   encoding redis-server 7.0 would pick for it, so redis-server loads them
//!   and small values come out byte for byte as Redis's own DUMP.
//! - [`stream`]: streams (RDB types 15, 19 and 21 read, 19 written).
//! - [`packed`]: ziplist, listpack, intset and zipmap blobs.
//! - [`lzf`], [`crc64`]: Redis's string compression and checksum.
//!
//! The byte order is the RDB format's own: lengths big-endian, integers,
//! doubles and checksums little-endian.

pub mod crc64;
pub mod lzf;
pub mod packed;
pub mod reader;
pub mod stream;
pub mod writer;

/// The RDB version written (Redis 7.0's).
pub const WRITE_VERSION: u16 = 10;
/// The newest RDB version read (Redis 7.4; Valkey 8 writes 11).
pub const MAX_READ_VERSION: u32 = 12;
/// The magic at the start of every RDB file.
pub const MAGIC: &[u8; 5] = b"REDIS";

/// Opcodes that may stand where a value type byte would.
pub mod opcode {
    pub const SLOT_INFO: u8 = 244;
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Value type bytes.
pub mod kind {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    pub const HASH_METADATA: u8 = 24;
    pub const HASH_LISTPACK_EX: u8 = 25;

    /// The Redis type a type byte stands for, for messages.
    pub fn name(t: u8) -> &'static str {
        match t {
            STRING => "string",
            LIST | LIST_ZIPLIST | LIST_QUICKLIST | LIST_QUICKLIST_2 => "list",
            SET | SET_INTSET | SET_LISTPACK => "set",
            ZSET | ZSET_2 | ZSET_ZIPLIST | ZSET_LISTPACK => "zset",
            HASH | HASH_ZIPMAP | HASH_ZIPLIST | HASH_LISTPACK => "hash",
            MODULE_PRE_GA | MODULE_2 => "module",
            STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => "stream",
            HASH_METADATA_PRE_GA | HASH_LISTPACK_EX_PRE_GA | HASH_METADATA | HASH_LISTPACK_EX => {
                "hash with field expiry"
            }
            _ => "unknown",
        }
    }
}

/// Whether `head` starts like an RDB file (`REDIS` and four digits).
pub fn is_rdb(head: &[u8]) -> bool {
    head.len() >= 9 && &head[..5] == MAGIC && head[5..9].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests;
