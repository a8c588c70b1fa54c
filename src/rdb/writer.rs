//! Writes RDB version 10 files and DUMP payloads as redis-server 7.0 does.
//!
//! Each value takes the encoding Redis 7.0 gives it: strings as integers when
//! they are canonical 32-bit integers, LZF-compressed when longer than 20
//! bytes and compressible, raw otherwise; lists as a quicklist of listpack
//! nodes split where RPUSH would split them (8 KiB, `list-max-listpack-size
//! -2`); small hashes and sorted sets as listpacks and integer sets as
//! intsets, in forkless's element order, which is Redis's; larger ones in
//! the plain HASH, SET and ZSET_2 forms; streams as RDB type 19, one node
//! per forkless block (see [`super::stream`]). So a DUMP of a small value
//! has the very bytes redis-server's DUMP has.
//!
//! A file is written to a temp file in the target directory, fsynced and
//! renamed over the target, as forkless's own snapshots are; a failed export
//! leaves nothing behind.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::lzf::Compressor;
use super::packed::{intset_blob, ListpackWriter};
use super::{crc64, kind, opcode, WRITE_VERSION};
use crate::keyspace::{Keyspace, Value};

/// Bytes gathered before they go to the file.
const CHUNK_BYTES: usize = 64 * 1024;

/// Redis 7.0's default `list-max-listpack-size -2`: 8 KiB per node.
const QUICKLIST_NODE_BYTES: usize = 8192;

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub keys: u64,
    pub bytes: u64,
}

pub(super) fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// A string as Redis's `rdbSaveRawString` writes it.
pub(super) fn write_string(out: &mut Vec<u8>, lzf: &mut Compressor, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = crate::numbers::parse_i64_strict(s) {
            if let Ok(v8) = i8::try_from(v) {
                out.extend_from_slice(&[0xc0, v8 as u8]);
                return;
            }
            if let Ok(v16) = i16::try_from(v) {
                out.push(0xc1);
                out.extend_from_slice(&v16.to_le_bytes());
                return;
            }
            if let Ok(v32) = i32::try_from(v) {
                out.push(0xc2);
                out.extend_from_slice(&v32.to_le_bytes());
                return;
            }
        }
    }
    if s.len() > 20 {
        if let Some(c) = lzf.compress(s, s.len() - 4) {
            out.push(0xc3);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The type byte `value` is written with.
fn type_byte(value: &Value) -> u8 {
    match value {
        Value::Stream(_) => kind::STREAM_LISTPACKS_2,
        Value::Str(_) => kind::STRING,
        Value::List(_) => kind::LIST_QUICKLIST_2,
        Value::Hash(h) if h.is_packed() => kind::HASH_LISTPACK,
        Value::Hash(_) => kind::HASH,
        Value::Set(s) if s.intset_bytes().is_some() => kind::SET_INTSET,
        Value::Set(_) => kind::SET,
        Value::ZSet(z) if z.is_packed() => kind::ZSET_LISTPACK,
        Value::ZSet(_) => kind::ZSET_2,
    }
}

/// Appends `value`'s type byte and encoding.
pub fn write_value(out: &mut Vec<u8>, lzf: &mut Compressor, value: &Value) {
    out.push(type_byte(value));
    write_body(out, lzf, value);
}

/// Appends `value`'s encoding (what follows the type byte, or the key).
fn write_body(out: &mut Vec<u8>, lzf: &mut Compressor, value: &Value) {
    match value {
        Value::Str(s) => {
            write_string(out, lzf, s);
        }
        Value::List(l) => {
            let mut nodes: Vec<Vec<u8>> = Vec::new();
            let mut node = ListpackWriter::new();
            for item in l.iter() {
                // Redis 7.0's `_quicklistNodeAllowInsert` estimate
                // (SIZE_ESTIMATE_OVERHEAD is 8 bytes per entry).
                let overhead = 8;
                if !node.is_empty() && node.len() + item.len() + overhead > QUICKLIST_NODE_BYTES {
                    nodes.push(std::mem::take(&mut node).finish());
                    node = ListpackWriter::new();
                }
                node.push(item);
            }
            if !node.is_empty() {
                nodes.push(node.finish());
            }
            write_len(out, nodes.len() as u64);
            for blob in nodes {
                write_len(out, 2); // a packed (listpack) node
                write_string(out, lzf, &blob);
            }
        }
        Value::Hash(h) if h.is_packed() => {
            let mut lp = ListpackWriter::new();
            for (f, v) in h.iter() {
                lp.push(f);
                lp.push(v);
            }
            write_string(out, lzf, &lp.finish());
        }
        Value::Hash(h) => {
            write_len(out, h.len() as u64);
            for (f, v) in h.iter() {
                write_string(out, lzf, f);
                write_string(out, lzf, v);
            }
        }
        Value::Set(s) => match s.intset_bytes() {
            Some(native) => {
                let width = native[0];
                let members: Vec<i64> = s
                    .iter()
                    .map(|m| crate::numbers::parse_i64_strict(&m).unwrap_or(0))
                    .collect();
                write_string(out, lzf, &intset_blob(width, members.into_iter()));
            }
            None => {
                write_len(out, s.len() as u64);
                for m in s.iter() {
                    write_string(out, lzf, &m);
                }
            }
        },
        Value::ZSet(z) if z.is_packed() => {
            let mut lp = ListpackWriter::new();
            for (score, member) in z.iter() {
                lp.push(member);
                lp.push(crate::reply::format_double(score).as_bytes());
            }
            write_string(out, lzf, &lp.finish());
        }
        Value::ZSet(z) => {
            write_len(out, z.len() as u64);
            // Redis walks its skiplist from the tail: greatest first.
            for (score, member) in z.iter_from(z.len().saturating_sub(1), true) {
                write_string(out, lzf, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Stream(s) => super::stream::write_stream(out, lzf, s, &mut |_| Ok(()))
            .expect("writing into memory does not fail"),
    }
}

/// `value` as DUMP's payload: the value, the RDB version, the CRC-64.
pub fn dump_payload(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(&mut out, &mut Compressor::default(), value);
    out.extend_from_slice(&WRITE_VERSION.to_le_bytes());
    let crc = crc64::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A writer that keeps the running CRC-64 and byte count.
struct CrcWriter<W: Write> {
    inner: W,
    crc: u64,
    written: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc = crc64::update(self.crc, bytes);
        self.written += bytes.len() as u64;
        self.inner.write_all(bytes)
    }
}

fn aux(out: &mut Vec<u8>, lzf: &mut Compressor, key: &str, value: &[u8]) {
    out.push(opcode::AUX);
    write_string(out, lzf, key.as_bytes());
    write_string(out, lzf, value);
}

/// Writes `snapshot` as a whole RDB file to `out`; keys whose time ran out
/// by `now_ms` are left out.
pub fn write_rdb<W: Write>(
    snapshot: &Keyspace,
    now_ms: i64,
    out: W,
) -> io::Result<(W, ExportStats)> {
    let mut w = CrcWriter {
        inner: out,
        crc: 0,
        written: 0,
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    // One table for the whole file: allocating one per string would cost
    // more than compressing it.
    let mut lzf = Compressor::default();
    buf.extend_from_slice(format!("REDIS{WRITE_VERSION:04}").as_bytes());
    aux(&mut buf, &mut lzf, "redis-ver", b"7.0.0");
    aux(&mut buf, &mut lzf, "redis-bits", b"64");
    aux(
        &mut buf,
        &mut lzf,
        "ctime",
        (now_ms / 1000).to_string().as_bytes(),
    );
    aux(&mut buf, &mut lzf, "used-mem", b"0");
    aux(&mut buf, &mut lzf, "aof-base", b"0");
    aux(
        &mut buf,
        &mut lzf,
        "forkless-ver",
        env!("CARGO_PKG_VERSION").as_bytes(),
    );
    for code in snapshot.functions() {
        buf.push(opcode::FUNCTION2);
        write_string(&mut buf, &mut lzf, code);
    }
    let mut keys = 0u64;
    for (index, db) in snapshot.dbs().iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        buf.push(opcode::SELECTDB);
        write_len(&mut buf, index as u64);
        buf.push(opcode::RESIZEDB);
        write_len(&mut buf, db.len() as u64);
        write_len(&mut buf, db.volatile_len() as u64);
        for record in db.records() {
            if record.is_expired(now_ms) {
                continue;
            }
            let entry = record.to_entry();
            if let Some(t) = entry.expire_at {
                buf.push(opcode::EXPIRETIME_MS);
                buf.extend_from_slice(&t.to_le_bytes());
            }
            if let Value::Stream(stream) = &entry.value {
                // A stream goes out node by node, so a big one never sits
                // whole in the buffer.
                buf.push(type_byte(&entry.value));
                write_string(&mut buf, &mut lzf, record.key());
                super::stream::write_stream(&mut buf, &mut lzf, stream, &mut |buf| {
                    if buf.len() >= CHUNK_BYTES {
                        w.put(buf)?;
                        buf.clear();
                    }
                    Ok(())
                })?;
            } else {
                write_value_keyed(&mut buf, &mut lzf, record.key(), &entry.value);
            }
            keys += 1;
            if buf.len() >= CHUNK_BYTES {
                w.put(&buf)?;
                buf.clear();
            }
        }
    }
    buf.push(opcode::EOF);
    w.put(&buf)?;
    let crc = w.crc;
    w.put(&crc.to_le_bytes())?;
    let bytes = w.written;
    Ok((w.inner, ExportStats { keys, bytes }))
}

/// The type byte, then the key, then the value's encoding.
fn write_value_keyed(out: &mut Vec<u8>, lzf: &mut Compressor, key: &[u8], value: &Value) {
    out.push(type_byte(value));
    write_string(out, lzf, key);
    write_body(out, lzf, value);
}

/// Writes `snapshot` to `path` durably and atomically.
pub fn export_to(snapshot: &Keyspace, path: &Path, now_ms: i64) -> io::Result<ExportStats> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Two exports may run at once (DEBUG EXPORT-RDB twice): one name each.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!("temp-export-{}-{seq}.rdb", std::process::id()));
    let result = (|| {
        let file = File::create(&temp)?;
        let (buffered, stats) =
            write_rdb(snapshot, now_ms, BufWriter::with_capacity(256 * 1024, file))?;
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(stats)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::encodings::Encodings;
    use crate::keyspace::set::Set;
    use crate::keyspace::zset::ZSet;
    use crate::keyspace::Hash;
    use crate::rdb::reader::decode_payload;
    use bytes::Bytes;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// DUMP payloads taken from redis-server 7.0.15 for the same values.
    #[test]
    fn dump_payloads_equal_redis_7_0() {
        let limits = Encodings::default();
        let mut h = Hash::new();
        h.insert(b"f", b"v", &limits);
        h.insert(b"n", b"5", &limits);
        let mut si = Set::new();
        for m in ["1", "2", "3"] {
            si.insert(m.as_bytes(), &limits);
        }
        let mut z = ZSet::new();
        z.insert(b"a", 1.5, &limits);
        z.insert(b"b", 2.0, &limits);
        z.insert(b"c", 0.1, &limits);
        let cases = [
            (Value::Str(b("hello")), "000568656c6c6f0a006372df766534200a"),
            (Value::Str(b("12345")), "00c139300a009d94ea2793fc08b9"),
            (
                Value::Str(b(&"abc".repeat(30))),
                "00c30b405a0361626361e04b020162630a00238036f9e2d0c780",
            ),
            (
                Value::List(["a", "1", "300"].iter().map(|s| b(s)).collect()),
                "1201020f0f00000003008161020101c12c02ff0a00c9192395a7ba060f",
            ),
            (
                Value::Hash(h),
                "1012120000000400816602817602816e020501ff0a008490939f57b4f3c2",
            ),
            (
                Value::Set(si),
                "0b0e02000000030000000100020003000a00a5025ce26d6e4d1b",
            ),
            (
                Value::ZSet(z),
                "11c3232c0d2c000000060081630293302e3130e005000f311481610283312e35048162020201ff0a008599b85dda718349",
            ),
        ];
        for (value, want) in cases {
            let payload = dump_payload(&value);
            assert_eq!(payload, hex(want), "{value:?}");
            assert_eq!(decode_payload(&payload, &limits).unwrap(), value);
        }
    }

    #[test]
    fn big_values_round_trip() {
        let limits = Encodings::default();
        let list: crate::keyspace::List = (0..5000).map(|i| format!("item-{i}")).collect();
        let mut h = Hash::new();
        let mut s = Set::new();
        let mut z = ZSet::new();
        for i in 0..1000 {
            h.insert(
                format!("f{i}").as_bytes(),
                format!("v{i}").as_bytes(),
                &limits,
            );
            s.insert(format!("m{i}").as_bytes(), &limits);
            z.insert(format!("m{i}").as_bytes(), f64::from(i) / 3.0, &limits);
        }
        for value in [
            Value::List(list),
            Value::Hash(h),
            Value::Set(s),
            Value::ZSet(z),
            Value::Str(Bytes::from(vec![7u8; 100_000])),
        ] {
            let payload = dump_payload(&value);
            assert_eq!(decode_payload(&payload, &limits).unwrap(), value);
        }
    }

    #[test]
    fn damaged_payloads_are_refused() {
        let limits = Encodings::default();
        let mut p = dump_payload(&Value::Str(b("hello")));
        assert_eq!(decode_payload(&p[..9], &limits), Err(None));
        let n = p.len();
        p[n - 1] ^= 1;
        assert_eq!(decode_payload(&p, &limits), Err(None));
        // Version 13 is newer than the reader knows.
        let mut v = dump_payload(&Value::Str(b("x")));
        let n = v.len();
        v[n - 10] = 13;
        let crc = crc64::crc64(&v[..n - 8]);
        v[n - 8..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_payload(&v, &limits), Err(None));
    }
}
