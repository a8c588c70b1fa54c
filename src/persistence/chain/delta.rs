//! A delta file: the keys a save found set or changed since the previous file
//! of the chain, and the keys it found gone.
//!
//! Little-endian throughout:
//!
//! | field | bytes | |
//! |---|---|---|
//! | magic | 8 | `89 46 4B 44 0D 0A 1A 0A` (`\x89FKD\r\n\x1a\n`) |
//! | version | 4 | 1 |
//! | sequence | 4 | position in the chain, from 1 |
//! | base length | 8 | length of the base snapshot it applies to |
//! | base CRC | 4 | the base's trailer CRC32 |
//! | previous CRC | 4 | the trailer CRC32 of the delta before it (0 for the first) |
//! | created | 8 | Unix milliseconds of the save |
//! | removed count | 8 | keys gone |
//! | removed keys | … | each: database `u32`, key length `u32`, key bytes |
//! | body | … | a complete snapshot (header to its own trailer) of the keys set or changed, and the function libraries |
//! | CRC32 | 4 | of every byte before it |
//!
//! The body is an ordinary snapshot, read by the snapshot loader with no
//! expiry cut-off: a key set since the last save replaces its old version
//! even if its time has run out since (the loader of the chain then drops it).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use bytes::Bytes;

use crate::keyspace::encodings::Encodings;
use crate::keyspace::Keyspace;
use crate::persistence::loader;
use crate::persistence::writer::{self, CrcWriter, Progress, SaveError};

pub const MAGIC: [u8; 8] = [0x89, b'F', b'K', b'D', b'\r', b'\n', 0x1a, b'\n'];
pub const VERSION: u32 = 1;
/// Magic, version, sequence, base length and CRC, previous CRC, created.
const FIXED_LEN: usize = 8 + 4 + 4 + 8 + 4 + 4 + 8;
const TRAILER_LEN: u64 = 4;

/// Where a delta sits in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub seq: u32,
    pub base_len: u64,
    pub base_crc: u32,
    pub prev_crc: u32,
}

/// What one save changed: keys gone per database, and the records set or
/// changed (with the function libraries) as a keyspace of their own.
pub struct Changes {
    pub removed: Vec<(u32, Bytes)>,
    pub set: Keyspace,
}

impl Changes {
    /// `snapshot` against `base`, database by database, reading only the
    /// paths the writes in between copied.
    pub fn between(snapshot: &Keyspace, base: &Keyspace) -> Changes {
        let mut removed = Vec::new();
        let mut set = Keyspace::new(snapshot.db_count());
        let empty = crate::keyspace::Db::default();
        for (i, db) in snapshot.dbs().iter().enumerate() {
            let old = base.dbs().get(i).unwrap_or(&empty);
            let target = set.db_mut(i);
            db.diff(old, |change| match change {
                crate::keyspace::champ::Change::Set(r) => target.insert_record(r.clone()),
                crate::keyspace::champ::Change::Removed(r) => {
                    removed.push((i as u32, Bytes::copy_from_slice(r.key())))
                }
            });
        }
        set.set_functions(snapshot.functions().to_vec());
        Changes { removed, set }
    }

    /// Keys set, changed or gone.
    pub fn len(&self) -> usize {
        self.removed.len() + self.set.key_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes the delta (everything the trailer covers, then the trailer) to `out`.
/// `progress` counts the body's keys and carries BGSAVE CANCEL's flag.
pub fn write<W: Write>(
    changes: &Changes,
    link: Link,
    created_unix_ms: i64,
    progress: &Progress,
    out: W,
) -> Result<(u64, u32), SaveError> {
    let mut out = CrcWriter::new(out);
    let io = |source| SaveError::Write {
        path: "delta".into(),
        source,
    };
    let mut fixed = Vec::with_capacity(FIXED_LEN + 8);
    fixed.extend_from_slice(&MAGIC);
    fixed.extend_from_slice(&VERSION.to_le_bytes());
    fixed.extend_from_slice(&link.seq.to_le_bytes());
    fixed.extend_from_slice(&link.base_len.to_le_bytes());
    fixed.extend_from_slice(&link.base_crc.to_le_bytes());
    fixed.extend_from_slice(&link.prev_crc.to_le_bytes());
    fixed.extend_from_slice(&created_unix_ms.to_le_bytes());
    fixed.extend_from_slice(&(changes.removed.len() as u64).to_le_bytes());
    out.write_all(&fixed).map_err(io)?;
    for (db, key) in &changes.removed {
        out.write_all(&db.to_le_bytes()).map_err(io)?;
        out.write_all(&(key.len() as u32).to_le_bytes())
            .map_err(io)?;
        out.write_all(key).map_err(io)?;
    }
    let mut body = CrcWriter::new(&mut out);
    writer::write_body(&changes.set, &mut body, created_unix_ms, progress)?;
    let body_crc = body.hasher.clone().finalize();
    body.write_all(&body_crc.to_le_bytes()).map_err(io)?;
    let crc = out.hasher.clone().finalize();
    out.write_all(&crc.to_le_bytes()).map_err(io)?;
    out.flush().map_err(io)?;
    Ok((out.written, crc))
}

/// A delta read back and verified, ready to apply.
pub struct Delta {
    pub link: Link,
    pub removed: Vec<(u32, Bytes)>,
    pub set: Keyspace,
}

/// Why a delta was refused: the offset in the file and the reason.
#[derive(Debug)]
pub struct BadDelta {
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for BadDelta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (offset {})", self.reason, self.offset)
    }
}

fn bad(offset: u64, reason: impl Into<String>) -> BadDelta {
    BadDelta {
        offset,
        reason: reason.into(),
    }
}

/// The CRC32 a file's trailer holds and the CRC32 of the bytes before it,
/// read in one pass.
pub fn trailer_check(path: &Path) -> io::Result<(u64, u32, u32)> {
    let mut file = BufReader::with_capacity(256 * 1024, File::open(path)?);
    let len = file.get_ref().metadata()?.len();
    if len < TRAILER_LEN {
        return Ok((len, 0, 0));
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut left = len - TRAILER_LEN;
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        file.read_exact(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        left -= n as u64;
    }
    let mut stored = [0u8; 4];
    file.read_exact(&mut stored)?;
    Ok((len, u32::from_le_bytes(stored), hasher.finalize()))
}

/// Reads and verifies the delta at `path`: its trailer first (nothing is
/// decoded from a file whose checksum fails), then every field.
pub fn read(path: &Path, databases: usize, limits: Encodings) -> Result<Delta, BadDelta> {
    let io_err = |e: io::Error| bad(0, format!("cannot read the file: {e}"));
    let (len, stored, computed) = trailer_check(path).map_err(io_err)?;
    if len < (FIXED_LEN + 8) as u64 + TRAILER_LEN {
        return Err(bad(len, "file truncated: shorter than a delta header"));
    }
    if stored != computed {
        return Err(bad(
            len - TRAILER_LEN,
            format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}; the file is corrupt"),
        ));
    }
    let file = File::open(path).map_err(io_err)?;
    let mut input = BufReader::with_capacity(256 * 1024, file).take(len - TRAILER_LEN);
    let mut fixed = [0u8; FIXED_LEN + 8];
    input.read_exact(&mut fixed).map_err(io_err)?;
    if fixed[..8] != MAGIC {
        return Err(bad(0, "not a forkless delta: bad magic bytes"));
    }
    let u32_at = |o: usize| u32::from_le_bytes(fixed[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(fixed[o..o + 8].try_into().unwrap());
    let version = u32_at(8);
    if version != VERSION {
        return Err(bad(8, format!("unsupported delta version {version}")));
    }
    let link = Link {
        seq: u32_at(12),
        base_len: u64_at(16),
        base_crc: u32_at(24),
        prev_crc: u32_at(28),
    };
    let removed_count = u64_at(40);
    let mut offset = fixed.len() as u64;
    // Each removed key takes at least 8 bytes: a count beyond that is damage,
    // refused before it sizes an allocation.
    if removed_count > (len - offset) / 8 {
        return Err(bad(
            40,
            format!("removed-key count {removed_count} exceeds the file"),
        ));
    }
    let mut removed = Vec::with_capacity(removed_count as usize);
    for _ in 0..removed_count {
        let mut head = [0u8; 8];
        input
            .read_exact(&mut head)
            .map_err(|_| bad(offset, "file truncated in the removed keys"))?;
        let db = u32::from_le_bytes(head[..4].try_into().unwrap());
        let key_len = u32::from_le_bytes(head[4..].try_into().unwrap()) as u64;
        if db as usize >= databases {
            return Err(bad(offset, format!("database index {db} out of range")));
        }
        if key_len > len - offset {
            return Err(bad(
                offset + 4,
                format!("key length {key_len} exceeds the file"),
            ));
        }
        let mut key = vec![0u8; key_len as usize];
        input
            .read_exact(&mut key)
            .map_err(|_| bad(offset + 8, "file truncated in a removed key"))?;
        removed.push((db, Bytes::from(key)));
        offset += 8 + key_len;
    }
    let body_len = len - TRAILER_LEN - offset;
    let loaded = loader::load_from_with(&mut input, body_len, Some(databases), i64::MIN, limits)
        .map_err(|e| bad(offset, format!("in the snapshot of changed keys: {e}")))?;
    Ok(Delta {
        link,
        removed,
        set: loaded.keyspace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;

    fn str_value(s: &str) -> Value {
        Value::Str(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn changes() -> Changes {
        let mut base = Keyspace::new(2);
        for i in 0..100 {
            base.db_mut(0)
                .insert(Bytes::from(format!("k{i}")), str_value("v"), None);
        }
        let mut live = base.clone();
        live.db_mut(0)
            .insert(Bytes::from("k1"), str_value("new"), Some(i64::MAX / 2));
        live.db_mut(0).delete(b"k2");
        live.db_mut(1)
            .insert(Bytes::from("other"), str_value("x"), Some(1));
        Changes::between(&live, &base)
    }

    const LINK: Link = Link {
        seq: 1,
        base_len: 10,
        base_crc: 0xabcd,
        prev_crc: 0,
    };

    #[test]
    fn a_delta_holds_exactly_the_changes_and_reads_back() {
        let c = changes();
        assert_eq!(c.removed, vec![(0, Bytes::from("k2"))]);
        assert_eq!(c.set.key_count(), 2);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let (len, crc) = write(
            &c,
            LINK,
            5,
            &Progress::default(),
            File::create(&path).unwrap(),
        )
        .unwrap();
        assert_eq!(len, std::fs::metadata(&path).unwrap().len());
        assert_eq!(trailer_check(&path).unwrap(), (len, crc, crc));
        let d = read(&path, 2, Encodings::default()).unwrap();
        assert_eq!(d.link, LINK);
        assert_eq!(d.removed, c.removed);
        // Expired keys are kept: the chain's loader decides.
        let other = d.set.db(1).peek(b"other", 0).unwrap();
        assert_eq!(other.expire_at, Some(1));
        assert_eq!(d.set.db(0).peek(b"k1", 0).unwrap().value, str_value("new"));
    }

    #[test]
    fn damage_is_refused_with_offset_and_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        write(
            &changes(),
            LINK,
            5,
            &Progress::default(),
            File::create(&path).unwrap(),
        )
        .unwrap();
        let good = std::fs::read(&path).unwrap();
        for at in [0, 9, 45, good.len() / 2, good.len() - 1] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x40;
            std::fs::write(&path, &bytes).unwrap();
            let err = read(&path, 2, Encodings::default()).err().unwrap();
            assert!(err.reason.contains("checksum mismatch"), "{err}");
        }
        std::fs::write(&path, &good[..good.len() - 7]).unwrap();
        assert!(read(&path, 2, Encodings::default()).is_err());
        std::fs::write(&path, &good).unwrap();
        // A delta from a server with more databases than this one.
        let err = read(&path, 1, Encodings::default()).err().unwrap();
        assert!(
            err.reason.contains("database") || err.reason.contains("snapshot"),
            "{err}"
        );
    }
}
