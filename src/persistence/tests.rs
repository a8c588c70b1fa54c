//! Format round trips and corruption tests for the writer and loader.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use imbl::Vector;
use proptest::prelude::*;

use super::format::*;
use super::loader::{load_bytes, load_file_with, LoadError};
use super::writer::to_bytes;
use crate::keyspace::encodings::Encodings;
use crate::keyspace::set::Set;
use crate::keyspace::stream::{NodeLimits, Stream, StreamId};
use crate::keyspace::zset::ZSet;
use crate::keyspace::{Hash, Keyspace, Value};

/// A comparable picture of a keyspace: per db, key -> (value, expiry).
type Picture = Vec<BTreeMap<Vec<u8>, (Repr, Option<i64>)>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Repr {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
    /// (score bits, member) in order.
    ZSet(Vec<(u64, Vec<u8>)>),
    /// Entries, metadata and groups, printed.
    Stream(String),
}

fn picture(ks: &Keyspace, now_ms: i64) -> Picture {
    ks.dbs()
        .iter()
        .map(|db| {
            db.iter()
                .filter(|(k, _)| db.peek(k, now_ms).is_some())
                .map(|(k, e)| {
                    let repr = match &e.value {
                        Value::Str(s) => Repr::Str(s.to_vec()),
                        Value::List(l) => Repr::List(l.iter().map(|b| b.to_vec()).collect()),
                        Value::Hash(h) => {
                            Repr::Hash(h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
                        }
                        Value::Set(s) => Repr::Set(s.iter().map(|b| b.to_vec()).collect()),
                        Value::ZSet(z) => {
                            Repr::ZSet(z.iter().map(|(s, m)| (s.to_bits(), m.to_vec())).collect())
                        }
                        Value::Stream(s) => Repr::Stream(stream_picture(s)),
                    };
                    (k.to_vec(), (repr, e.expire_at))
                })
                .collect()
        })
        .collect()
}

fn stream_picture(s: &Stream) -> String {
    let entries: Vec<_> = s.entries().collect();
    format!(
        "{entries:?} len={} last={} first={} maxdel={} added={} groups={:?}",
        s.len(),
        s.last_id(),
        s.first_id(),
        s.max_deleted(),
        s.entries_added(),
        s.groups()
    )
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

const NOW: i64 = 1_700_000_000_000;
const FAR: i64 = 4_102_444_800_000; // 2100-01-01

fn sample() -> Keyspace {
    let mut ks = Keyspace::new(4);
    let db = ks.db_mut(0);
    db.insert(b(b"str"), Value::Str(b(b"hello")), None);
    db.insert(
        b(b"list"),
        Value::List([b"a", b"b", b"c"].iter().map(|x| b(*x)).collect()),
        None,
    );
    db.insert(
        b(b"hash"),
        Value::Hash(Hash::from_iter([
            (b(b"f1"), b(b"v1")),
            (b(b"f2"), b(b"v2")),
        ])),
        Some(FAR),
    );
    db.insert(
        b(b"set"),
        Value::Set(Set::from_iter([b(b"x"), b(b"y"), b(b"z")])),
        None,
    );
    db.insert(b(b"ttl"), Value::Str(b(b"v")), Some(FAR));
    db.insert(b(b"expired"), Value::Str(b(b"gone")), Some(1000));
    ks.db_mut(3)
        .insert(b(b"\x00\xff"), Value::Str(b(b"bin")), None);
    ks
}

#[test]
fn round_trip_drops_expired_keys() {
    let ks = sample();
    let bytes = to_bytes(&ks, NOW);
    let loaded = load_bytes(&bytes, Some(4), NOW).unwrap();
    assert_eq!(loaded.keys_loaded, 6);
    assert_eq!(loaded.keys_expired, 1);
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
    assert_eq!(loaded.keyspace.db(0).len(), 5);
    for db in loaded.keyspace.dbs() {
        db.check_invariants().unwrap();
    }
}

#[test]
fn big_values_are_chunked_and_round_trip() {
    let mut ks = Keyspace::new(1);
    let n = 3 * CHUNK_MAX_ELEMENTS + 7;
    let items: Vector<Bytes> = (0..n).map(|i| Bytes::from(format!("e{i}"))).collect();
    let db = ks.db_mut(0);
    db.insert(b(b"l"), Value::List(items.iter().collect()), None);
    db.insert(b(b"s"), Value::Set(items.iter().cloned().collect()), None);
    db.insert(
        b(b"h"),
        Value::Hash(items.iter().map(|i| (i.clone(), i.clone())).collect()),
        None,
    );
    db.insert(
        b(b"big"),
        Value::Str(Bytes::from(vec![7u8; 2 * CHUNK_MAX_BYTES + 5])),
        None,
    );
    let bytes = to_bytes(&ks, NOW);
    // Every block stays bounded: a full one plus at most one chunk.
    let blocks = blocks_of(&bytes);
    for (_, header, _) in &blocks {
        let raw = header.raw_len as usize;
        assert!(
            raw <= BLOCK_TARGET + CHUNK_MAX_BYTES + 64,
            "block of {raw} bytes"
        );
    }
    assert!(blocks.len() >= 2);
    assert!(blocks.last().unwrap().1.last);
    assert!(blocks.iter().rev().skip(1).all(|(_, h, _)| !h.last));
    let loaded = load_bytes(&bytes, Some(1), NOW).unwrap();
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
}

/// A loaded set takes the encoding its members give under the configured
/// limit, as Redis's `rdbLoadObject` does: a hashtable shrunk to a few
/// integers comes back an intset (packed in its record).
#[test]
fn sets_load_in_the_encoding_their_members_give() {
    let mut ks = Keyspace::new(1);
    let mut shrunk: Set = ["1", "2", "x"].into_iter().collect();
    shrunk.remove(b"x");
    assert_eq!(shrunk.encoding_name(), "hashtable");
    let ints: Set = (0..600).map(|i| i.to_string()).collect();
    ks.db_mut(0).insert(b(b"shrunk"), Value::Set(shrunk), None);
    ks.db_mut(0).insert(b(b"ints"), Value::Set(ints), None);
    let bytes = to_bytes(&ks, NOW);
    let encoding = |ks: &Keyspace, key: &[u8]| match ks.db(0).peek(key, NOW).map(|e| e.value) {
        Some(Value::Set(s)) => s.encoding_name(),
        other => panic!("{other:?}"),
    };
    let loaded = load_bytes(&bytes, Some(1), NOW).unwrap();
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
    assert_eq!(encoding(&loaded.keyspace, b"shrunk"), "intset");
    assert!(loaded
        .keyspace
        .db(0)
        .peek_record(b"shrunk", NOW)
        .unwrap()
        .is_packed());
    assert_eq!(encoding(&loaded.keyspace, b"ints"), "hashtable");
    let roomy = Encodings {
        set_max_intset_entries: 1000,
        ..Encodings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.rdb");
    std::fs::write(&path, &bytes).unwrap();
    let loaded = load_file_with(&path, Some(1), NOW, roomy).unwrap();
    assert_eq!(encoding(&loaded.keyspace, b"ints"), "intset");
}

fn bytes_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..12)
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let item = || bytes_strategy().prop_map(Bytes::from);
    prop_oneof![
        bytes_strategy().prop_map(|v| Value::Str(Bytes::from(v))),
        // Canonical integers (stored as varints) and near misses that are not.
        any::<i64>().prop_map(|i| Value::Str(Bytes::from(i.to_string()))),
        (0u8..3, 0u32..1000).prop_map(|(form, i)| Value::Str(Bytes::from(match form {
            0 => format!("0{i}"),
            1 => format!("+{i}"),
            _ => format!("-0{i}"),
        }))),
        prop::collection::btree_set(any::<i64>(), 1..40)
            .prop_map(|s| Value::Set(s.into_iter().map(|i| i.to_string()).collect())),
        prop::collection::vec(item(), 1..20).prop_map(|v| Value::List(v.into_iter().collect())),
        prop::collection::hash_map(item(), item(), 1..20)
            .prop_map(|m| Value::Hash(m.into_iter().collect())),
        prop::collection::hash_set(item(), 1..20).prop_map(|s| Value::Set(s.into_iter().collect())),
        prop::collection::hash_map(item(), -5i32..5, 1..200).prop_map(|m| {
            let mut z = ZSet::new();
            for (member, score) in m {
                z.insert(&member, f64::from(score) / 2.0, &Encodings::default());
            }
            Value::ZSet(z)
        }),
    ]
}

fn keyspace_strategy() -> impl Strategy<Value = Keyspace> {
    let entry = (
        0usize..4,
        bytes_strategy(),
        value_strategy(),
        prop::option::of(-1_000i64..1_000_000),
    );
    prop::collection::vec(entry, 0..40).prop_map(|entries| {
        let mut ks = Keyspace::new(4);
        for (db, key, value, ttl) in entries {
            // Negative offsets make keys that are already expired at NOW.
            ks.db_mut(db)
                .insert(Bytes::from(key), value, ttl.map(|t| NOW + t));
        }
        ks
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn any_keyspace_round_trips(ks in keyspace_strategy()) {
        let bytes = to_bytes(&ks, NOW);
        let loaded = load_bytes(&bytes, Some(4), NOW).unwrap();
        prop_assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
        prop_assert_eq!(loaded.keys_loaded + loaded.keys_expired, ks.key_count() as u64);
        for db in loaded.keyspace.dbs() {
            prop_assert!(db.check_invariants().is_ok());
        }
    }

    /// Mutations behind a recomputed CRC reach the structural checks: they
    /// must never panic, and whatever they let through must be a sound keyspace.
    #[test]
    fn resealed_mutations_never_panic(
        ks in keyspace_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
    ) {
        let mut bytes = to_bytes(&ks, NOW);
        let body = HEADER_LEN..bytes.len() - TRAILER_LEN;
        for (at, byte) in edits {
            let i = body.start + at.index(body.len());
            bytes[i] = byte;
        }
        reseal(&mut bytes);
        if let Ok(loaded) = load_bytes(&bytes, Some(4), NOW) {
            for db in loaded.keyspace.dbs() {
                prop_assert!(db.check_invariants().is_ok());
                prop_assert!(db.iter().all(|(_, e)| !e.value.is_empty_collection()));
            }
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&bytes);
        let _ = load_bytes(&file, Some(4), NOW);
        let _ = load_bytes(&bytes, None, NOW);
    }
}

#[test]
fn every_flipped_byte_is_rejected() {
    let bytes = to_bytes(&sample(), NOW);
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0xff;
        let err = load_bytes(&bad, Some(4), NOW).expect_err(&format!("flip at {i} accepted"));
        if i < MAGIC_LEN {
            assert!(matches!(err, LoadError::BadMagic), "{i}: {err}");
        } else if (VERSION_OFFSET..VERSION_OFFSET + VERSION_LEN).contains(&i) {
            assert!(
                matches!(err, LoadError::UnsupportedVersion { .. }),
                "{i}: {err}"
            );
        } else if i >= bytes.len() - TRAILER_LEN {
            assert!(matches!(err, LoadError::Checksum { .. }), "{i}: {err}");
        }
        // Every message names an offset (or the magic's).
        assert!(err.to_string().contains("offset"), "{i}: {err}");
    }
}

#[test]
fn every_truncation_is_rejected() {
    let bytes = to_bytes(&sample(), NOW);
    for len in 0..bytes.len() {
        let err = load_bytes(&bytes[..len], Some(4), NOW)
            .expect_err(&format!("truncation to {len} accepted"));
        assert!(matches!(err, LoadError::Truncated { .. }), "{len}: {err}");
    }
}

#[test]
fn trailing_bytes_are_rejected() {
    let mut bytes = to_bytes(&sample(), NOW);
    bytes.push(0);
    let err = load_bytes(&bytes, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::TrailingBytes { count: 1, .. }),
        "{err}"
    );
}

/// Recomputes the trailer so a test reaches the check it targets.
fn reseal(bytes: &mut [u8]) {
    let body = bytes.len() - TRAILER_LEN;
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn bumped_version_is_rejected_even_with_a_good_checksum() {
    let mut bytes = to_bytes(&sample(), NOW);
    bytes[VERSION_OFFSET] = 3;
    reseal(&mut bytes);
    let err = load_bytes(&bytes, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::UnsupportedVersion { found: 3, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "expected snapshot format version 1 or 2, but the file is version 3 (offset 8)"
    );
}

/// The blocks of a version 2 file: file offset, header, decoded data.
fn blocks_of(bytes: &[u8]) -> Vec<(usize, BlockHeader, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = HEADER_LEN;
    while off + TRAILER_LEN < bytes.len() {
        let raw: [u8; BLOCK_HEADER_LEN] = bytes[off..off + BLOCK_HEADER_LEN].try_into().unwrap();
        let (codec, last, raw_len, stored_len) = BlockHeader::decode(&raw);
        let codec = Codec::from_byte(codec).unwrap();
        let start = off + BLOCK_HEADER_LEN;
        let stored = &bytes[start..start + stored_len as usize];
        let data = match codec {
            Codec::Stored => stored.to_vec(),
            Codec::Snappy => snap::raw::Decoder::new().decompress_vec(stored).unwrap(),
        };
        let header = BlockHeader {
            codec,
            last,
            raw_len,
            stored_len,
        };
        out.push((off, header, data));
        off = start + stored_len as usize;
    }
    assert_eq!(off + TRAILER_LEN, bytes.len());
    out
}

/// The same version 2 file with every block stored as is (so that edits hit
/// records rather than compressed bytes), sealed.
fn uncompressed(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes[..HEADER_LEN].to_vec();
    for (_, h, data) in blocks_of(bytes) {
        let header = BlockHeader {
            codec: Codec::Stored,
            last: h.last,
            raw_len: data.len() as u32,
            stored_len: data.len() as u32,
        };
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(&data);
    }
    out.extend_from_slice(&[0; TRAILER_LEN]);
    reseal(&mut out);
    out
}

/// Builds a sealed version 2 file holding `records` in one stored block.
fn build_v2(records: &[Record<'_>], key_count: u64) -> Vec<u8> {
    let mut out = Header {
        version: FORMAT_VERSION,
        created_unix_ms: NOW,
        db_count: 4,
        key_count,
    }
    .encode()
    .to_vec();
    let mut data = Vec::new();
    for r in records {
        data.extend_from_slice(&postcard::to_stdvec(r).unwrap());
    }
    let header = BlockHeader {
        codec: Codec::Stored,
        last: true,
        raw_len: data.len() as u32,
        stored_len: data.len() as u32,
    };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(&data);
    out.extend_from_slice(&[0; TRAILER_LEN]);
    reseal(&mut out);
    out
}

/// The error inside a version 2 block's wrapper.
fn inner(err: &LoadError) -> &LoadError {
    match err {
        LoadError::InBlock { source, .. } => source,
        other => other,
    }
}

/// Builds a sealed version 1 file from records (length-prefixed frames).
fn build(records: &[Record<'_>], key_count: u64) -> Vec<u8> {
    let mut out = Header {
        version: FORMAT_V1,
        created_unix_ms: NOW,
        db_count: 4,
        key_count,
    }
    .encode()
    .to_vec();
    for r in records {
        let payload = postcard::to_stdvec(r).unwrap();
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&payload);
    }
    out.extend_from_slice(&[0; TRAILER_LEN]);
    reseal(&mut out);
    out
}

fn key(k: &'static [u8], kind: Kind, len: u64) -> Record<'static> {
    Record::Key(KeyHeader {
        key: k,
        expire_at_ms: None,
        kind,
        len,
    })
}

#[test]
fn hand_built_file_loads() {
    let file = build(
        &[
            Record::Db { index: 1 },
            key(b"k", Kind::Str, 2),
            Record::StrChunk(b"ab"),
            Record::End { keys: 1 },
        ],
        1,
    );
    let loaded = load_bytes(&file, Some(4), NOW).unwrap();
    assert_eq!(loaded.keyspace.db(1).len(), 1);
}

#[test]
fn duplicates_are_rejected() {
    let dup_key = build(
        &[
            Record::Db { index: 0 },
            key(b"k", Kind::Str, 1),
            Record::StrChunk(b"a"),
            key(b"k", Kind::Str, 1),
            Record::StrChunk(b"b"),
            Record::End { keys: 2 },
        ],
        2,
    );
    let err = load_bytes(&dup_key, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::DuplicateKey { db: 0, .. }),
        "{err}"
    );

    let dup_member = build(
        &[
            Record::Db { index: 0 },
            key(b"s", Kind::Set, 2),
            Record::SetChunk(vec![b"m", b"m"]),
            Record::End { keys: 1 },
        ],
        1,
    );
    let err = load_bytes(&dup_member, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::DuplicateElement { what: "member", .. }),
        "{err}"
    );

    let dup_field = build(
        &[
            Record::Db { index: 0 },
            key(b"h", Kind::Hash, 2),
            Record::HashChunk(vec![(b"f", b"1")]),
            Record::HashChunk(vec![(b"f", b"2")]),
            Record::End { keys: 1 },
        ],
        1,
    );
    let err = load_bytes(&dup_field, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::DuplicateElement { what: "field", .. }),
        "{err}"
    );

    let dup_db = build(
        &[
            Record::Db { index: 2 },
            Record::Db { index: 2 },
            Record::End { keys: 0 },
        ],
        0,
    );
    let err = load_bytes(&dup_db, Some(4), NOW).unwrap_err();
    assert!(matches!(err, LoadError::BadDb { index: 2, .. }), "{err}");
}

#[test]
fn count_mismatches_are_rejected() {
    let short_list = build(
        &[
            Record::Db { index: 0 },
            key(b"l", Kind::List, 3),
            Record::ListChunk(vec![b"a", b"b"]),
            Record::End { keys: 1 },
        ],
        1,
    );
    let err = load_bytes(&short_list, Some(4), NOW).unwrap_err();
    assert!(matches!(err, LoadError::CountMismatch { .. }), "{err}");

    let long_list = build(
        &[
            Record::Db { index: 0 },
            key(b"l", Kind::List, 1),
            Record::ListChunk(vec![b"a", b"b"]),
            Record::End { keys: 1 },
        ],
        1,
    );
    let err = load_bytes(&long_list, Some(4), NOW).unwrap_err();
    assert!(matches!(err, LoadError::CountMismatch { .. }), "{err}");

    let wrong_total = build(&[Record::End { keys: 0 }], 1);
    let err = load_bytes(&wrong_total, Some(4), NOW).unwrap_err();
    assert!(matches!(err, LoadError::CountMismatch { .. }), "{err}");

    let wrong_kind = build(
        &[
            Record::Db { index: 0 },
            key(b"l", Kind::List, 1),
            Record::SetChunk(vec![b"a"]),
            Record::End { keys: 1 },
        ],
        1,
    );
    let err = load_bytes(&wrong_kind, Some(4), NOW).unwrap_err();
    assert!(matches!(err, LoadError::UnexpectedRecord { .. }), "{err}");

    let db_out_of_range = build(&[Record::Db { index: 9 }, Record::End { keys: 0 }], 0);
    let err = load_bytes(&db_out_of_range, Some(4), NOW).unwrap_err();
    assert!(matches!(err, LoadError::BadDb { index: 9, .. }), "{err}");
}

#[test]
fn huge_frame_length_does_not_allocate() {
    let mut file = build(&[Record::End { keys: 0 }], 0);
    file[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    reseal(&mut file);
    let err = load_bytes(&file, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::Truncated { offset: 32, .. }),
        "{err}"
    );
}

/// The checked-in dump of format version 1 must keep loading with these contents.
#[test]
fn fixture_v1_still_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dump-v1.rdb");
    let bytes = std::fs::read(path).expect("fixture present");
    let loaded = load_bytes(&bytes, Some(16), NOW).unwrap();
    assert_eq!(loaded.header.version, 1);
    assert_eq!(loaded.keys_loaded, 6);
    assert_eq!(loaded.keys_expired, 1);
    let mut expected = picture(&sample(), NOW);
    expected.resize(16, BTreeMap::new());
    assert_eq!(picture(&loaded.keyspace, NOW), expected);
}

/// The checked-in dump of format version 2 must keep loading with these
/// contents (every kind of record: integers, compact encodings, chunks).
#[test]
fn fixture_v2_still_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dump-v2.rdb");
    let bytes = std::fs::read(path).expect("fixture present");
    let loaded = load_bytes(&bytes, Some(16), NOW).unwrap();
    assert_eq!(loaded.header.version, 2);
    let mut expected = picture(&sample_v2(), NOW);
    expected.resize(16, BTreeMap::new());
    assert_eq!(picture(&loaded.keyspace, NOW), expected);
}

/// [`sample`] plus a value of each kind version 2 stores its own way.
fn sample_v2() -> Keyspace {
    let mut ks = sample();
    let db = ks.db_mut(1);
    db.insert(b(b"int"), Value::Str(b(b"-1234567890123")), Some(FAR));
    db.insert(b(b"not-int"), Value::Str(b(b"007")), None);
    db.insert(
        b(b"intset"),
        Value::Set(["1", "-5", "70000"].into_iter().collect()),
        Some(FAR),
    );
    let mut z = ZSet::new();
    z.insert(b"m", 1.5, &Encodings::default());
    z.insert(b"n", -2.0, &Encodings::default());
    db.insert(b(b"zset"), Value::ZSet(z), None);
    db.insert(
        b(b"long"),
        Value::Str(Bytes::from(vec![
            b'x';
            CHUNK_MAX_BYTES + CHUNK_MAX_BYTES / 2
        ])),
        None,
    );
    ks
}

/// Writes the fixture of the current format version; run once per new
/// version with
/// `FORKLESS_WRITE_FIXTURE=1 cargo test --lib write_fixture -- --ignored`.
#[test]
#[ignore]
fn write_fixture() {
    if std::env::var_os("FORKLESS_WRITE_FIXTURE").is_none() {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dump-v2.rdb");
    std::fs::write(path, to_bytes(&sample_v2(), NOW)).unwrap();
    // Seeds for the loader's fuzz target (under its 4 KiB input limit): a
    // compressed file, and one whose blocks are stored so mutations reach
    // the records.
    let seeds = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus/snapshot_loader");
    let small = to_bytes(&sample(), NOW);
    std::fs::write(format!("{seeds}/seed-v2"), &small).unwrap();
    std::fs::write(format!("{seeds}/seed-v2-stored"), uncompressed(&small)).unwrap();
}

#[test]
fn streams_round_trip_with_groups_pel_and_consumers() {
    let mut ks = Keyspace::new(1);
    let mut s = Stream::new();
    let n = 2 * CHUNK_MAX_ELEMENTS as u64 + 5;
    for i in 1..=n {
        let v = i.to_string();
        s.append(
            StreamId::new(i, 0),
            &[(b"f", v.as_bytes()), (b"g", b"x")],
            NodeLimits::default(),
        );
    }
    s.append(
        StreamId::new(n + 1, 3),
        &[(b"other", b"y")],
        NodeLimits::default(),
    );
    s.delete(StreamId::new(1, 0));
    s.delete(StreamId::new(500, 0));
    s.groups_mut().insert(
        b(b"g1"),
        crate::keyspace::stream::Group::new(StreamId::new(10, 0), 9),
    );
    let g = s.group_mut(b"g1").unwrap();
    g.deliver(StreamId::new(2, 0), b"alice", NOW - 5, 3);
    g.deliver(StreamId::new(500, 0), b"bob", NOW - 9, 1);
    g.consumer_mut(b"idle", NOW - 100);
    s.groups_mut().insert(
        b(b"g2"),
        crate::keyspace::stream::Group::new(StreamId::MIN, -1),
    );
    let mut empty = Stream::new();
    empty.set_meta(StreamId::new(7, 7), StreamId::new(7, 7), 3);
    empty.groups_mut().insert(
        b(b"g"),
        crate::keyspace::stream::Group::new(StreamId::MIN, 0),
    );
    ks.db_mut(0).insert(b(b"s"), Value::Stream(s), None);
    ks.db_mut(0)
        .insert(b(b"empty"), Value::Stream(empty), Some(FAR));
    let bytes = to_bytes(&ks, NOW);
    let loaded = load_bytes(&bytes, Some(1), NOW).unwrap();
    assert_eq!(loaded.keys_loaded, 2);
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
}

#[test]
fn a_stream_part_of_an_unknown_group_is_refused() {
    let mut ks = Keyspace::new(1);
    let mut s = Stream::new();
    s.append(StreamId::new(1, 0), &[(b"f", b"v")], NodeLimits::default());
    s.groups_mut().insert(
        b(b"g"),
        crate::keyspace::stream::Group::new(StreamId::MIN, 0),
    );
    s.group_mut(b"g")
        .unwrap()
        .deliver(StreamId::new(1, 0), b"c", NOW, 1);
    ks.db_mut(0).insert(b(b"s"), Value::Stream(s), None);
    let mut bytes = uncompressed(&to_bytes(&ks, NOW));
    // Rename the group in its Group record only: the Consumers record that
    // follows then names a group the stream does not have.
    let at = bytes
        .windows(3)
        .position(|w| w == [1, b'g', 0])
        .expect("the group name after its length");
    bytes[at + 1] = b'h';
    let crc = crc32fast::hash(&bytes[..bytes.len() - TRAILER_LEN]);
    let end = bytes.len();
    bytes[end - TRAILER_LEN..].copy_from_slice(&crc.to_le_bytes());
    let err = load_bytes(&bytes, Some(1), NOW).unwrap_err();
    assert!(
        matches!(inner(&err), LoadError::CountMismatch { ref what, .. } if what.contains("unknown group")),
        "{err}"
    );
}

#[test]
fn stream_parts_encode_as_documented() {
    let meta = Record::StreamChunk(StreamPart::Meta {
        last_id: (5, 1),
        first_id: (1, 0),
        max_deleted: (0, 0),
        entries_added: 3,
    });
    assert_eq!(
        postcard::to_allocvec(&meta).unwrap(),
        [0x09, 0x01, 0x05, 0x01, 0x01, 0x00, 0x00, 0x00, 0x03]
    );
    let entries = Record::StreamChunk(StreamPart::Entries(vec![((1, 0), vec![b"f", b"v"])]));
    assert_eq!(
        postcard::to_allocvec(&entries).unwrap(),
        [0x09, 0x00, 0x01, 0x01, 0x00, 0x02, 0x01, 0x66, 0x01, 0x76]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// Edits to the records themselves (blocks stored as is, CRC recomputed)
    /// never panic, and whatever they let through is a sound keyspace.
    #[test]
    fn resealed_record_mutations_never_panic(
        ks in keyspace_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..5),
    ) {
        let mut bytes = uncompressed(&to_bytes(&ks, NOW));
        let body = HEADER_LEN..bytes.len() - TRAILER_LEN;
        for (at, byte) in edits {
            let i = body.start + at.index(body.len());
            bytes[i] = byte;
        }
        reseal(&mut bytes);
        if let Ok(loaded) = load_bytes(&bytes, Some(4), NOW) {
            for db in loaded.keyspace.dbs() {
                prop_assert!(db.check_invariants().is_ok());
                prop_assert!(db.iter().all(|(_, e)| !e.value.is_empty_collection()));
                for (_, e) in db.iter() {
                    match &e.value {
                        Value::Hash(h) => prop_assert!(h.check().is_ok()),
                        Value::Set(s) => prop_assert!(s.check().is_ok()),
                        Value::ZSet(z) => prop_assert!(z.check().is_ok()),
                        _ => {}
                    }
                }
            }
        }
    }

    /// Arbitrary bytes after a valid version 2 header never panic.
    #[test]
    fn garbage_blocks_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut file = Header {
            version: FORMAT_VERSION,
            created_unix_ms: NOW,
            db_count: 4,
            key_count: 3,
        }
        .encode()
        .to_vec();
        file.extend_from_slice(&bytes);
        let _ = load_bytes(&file, Some(4), NOW);
        if file.len() > HEADER_LEN + TRAILER_LEN {
            reseal(&mut file);
            let _ = load_bytes(&file, Some(4), NOW);
        }
    }
}

#[test]
fn v2_stores_integers_and_compact_encodings_as_single_records() {
    let ks = sample_v2();
    let bytes = to_bytes(&ks, NOW);
    let records: Vec<u8> = blocks_of(&bytes)
        .into_iter()
        .flat_map(|(_, _, d)| d)
        .collect();
    let mut rest = &records[..];
    let mut names = Vec::new();
    while !rest.is_empty() {
        let (r, tail): (Record<'_>, &[u8]) = postcard::take_from_bytes(rest).unwrap();
        match &r {
            Record::Int(k, i) if *k == b"int" => assert_eq!(*i, -1_234_567_890_123),
            Record::Str(k, v) if *k == b"not-int" => assert_eq!(*v, b"007"),
            _ => {}
        }
        names.push(r.name());
        rest = tail;
    }
    let count = |n: &str| names.iter().filter(|x| **x == n).count();
    // hash, intset and zset as their compact bytes; each TTL of a whole-key
    // record before it.
    assert_eq!(count("Compact"), 3, "{names:?}");
    assert_eq!(count("Int"), 1, "{names:?}");
    assert_eq!(count("Expire"), 5, "{names:?}");
    assert_eq!(count("StrChunk"), 2, "{names:?}");
    assert_eq!(names.last(), Some(&"End"));
    let loaded = load_bytes(&bytes, Some(4), NOW).unwrap();
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
    // Compact encodings load as they were: a packed record each.
    for key in [&b"hash"[..], b"intset", b"zset"] {
        let db = usize::from(key != b"hash");
        let r = loaded.keyspace.db(db).peek_record(key, NOW).unwrap();
        assert!(r.is_packed(), "{key:?}");
    }
}

#[test]
fn compressible_values_are_compressed_and_random_ones_stored() {
    let mut ks = Keyspace::new(1);
    let mut rng = crate::rng::Rng::with_seed(3);
    for i in 0..3000 {
        let random: Vec<u8> = (0..100).map(|_| (rng.next_u64() % 255) as u8 + 1).collect();
        ks.db_mut(0).insert(
            Bytes::from(format!("r:{i:08}")),
            Value::Str(Bytes::from(random)),
            None,
        );
    }
    let bytes = to_bytes(&ks, NOW);
    let blocks = blocks_of(&bytes);
    assert!(blocks
        .iter()
        .all(|(_, h, _)| h.codec == Codec::Stored || h.stored_len < h.raw_len));
    let mut ks = Keyspace::new(1);
    for i in 0..3000 {
        ks.db_mut(0).insert(
            Bytes::from(format!("c:{i:08}")),
            Value::Str(Bytes::from(format!(
                "user:{}:profile:settings:enabled",
                i % 10
            ))),
            None,
        );
    }
    let bytes = to_bytes(&ks, NOW);
    let blocks = blocks_of(&bytes);
    assert!(
        blocks.iter().all(|(_, h, _)| h.codec == Codec::Snappy),
        "{blocks:?}"
    );
    let raw: u32 = blocks.iter().map(|(_, h, _)| h.raw_len).sum();
    assert!(bytes.len() * 2 < raw as usize, "{} of {raw}", bytes.len());
    assert_eq!(
        picture(&load_bytes(&bytes, Some(1), NOW).unwrap().keyspace, NOW),
        picture(&ks, NOW)
    );
}

#[test]
fn v2_record_defects_are_refused_with_their_offsets() {
    let check = |records: &[Record<'_>], keys: u64, want: &str| {
        let err = load_bytes(&build_v2(records, keys), Some(4), NOW).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("in the block at offset 32") && text.contains(want),
            "{text}"
        );
    };
    // A listpack hash repeating a field (valid listpack bytes, bad hash).
    let mut lp = crate::keyspace::listpack::Listpack::new();
    for e in [&b"f"[..], b"1", b"f", b"2"] {
        lp.push_back(e);
    }
    check(
        &[
            Record::Db { index: 0 },
            Record::Compact(b"h", Compact::HashListpack, lp.as_bytes()),
            Record::End { keys: 1 },
        ],
        1,
        "bad value of key \"h\" at offset 2",
    );
    check(
        &[
            Record::Db { index: 0 },
            Record::Compact(b"s", Compact::SetIntset, &[2, 5, 0, 1, 0]),
            Record::End { keys: 1 },
        ],
        1,
        "not an intset",
    );
    check(
        &[
            Record::Db { index: 0 },
            Record::Expire(5),
            Record::Db { index: 1 },
            Record::End { keys: 0 },
        ],
        0,
        "unexpected Db record at offset 4: expected Str, Int or Compact after Expire",
    );
    check(
        &[
            Record::Db { index: 0 },
            Record::Int(b"k", 1),
            Record::Str(b"k", b"x"),
            Record::End { keys: 2 },
        ],
        2,
        "duplicate key \"k\" in database 0",
    );
    check(
        &[Record::End { keys: 0 }, Record::Db { index: 0 }],
        0,
        "unexpected Db record at offset 2: expected the checksum after End",
    );
    // A version 2 record cannot appear in a version 1 file.
    let v1 = build(
        &[
            Record::Db { index: 0 },
            Record::Int(b"k", 1),
            Record::End { keys: 1 },
        ],
        1,
    );
    let err = load_bytes(&v1, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::UnexpectedRecord { found: "Int", .. }),
        "{err}"
    );
}

#[test]
fn v2_block_defects_are_refused_before_allocating() {
    let good = build_v2(&[Record::End { keys: 0 }], 0);
    assert!(load_bytes(&good, Some(4), NOW).is_ok());
    let with_header = |edit: &dyn Fn(&mut [u8])| {
        let mut file = good.clone();
        edit(&mut file[HEADER_LEN..HEADER_LEN + BLOCK_HEADER_LEN]);
        reseal(&mut file);
        load_bytes(&file, Some(4), NOW).unwrap_err().to_string()
    };
    let huge =
        with_header(&|h| h[BLOCK_STORED_LEN_OFFSET..].copy_from_slice(&u32::MAX.to_le_bytes()));
    assert!(
        huge.starts_with("file truncated at offset 32: block of 4294967295 bytes"),
        "{huge}"
    );
    let codec = with_header(&|h| h[0] = 7);
    assert_eq!(codec, "bad block at offset 32: unknown codec 7");
    let ratio = with_header(&|h| {
        h[0] = Codec::Snappy as u8 | LAST_BLOCK;
        h[BLOCK_RAW_LEN_OFFSET..BLOCK_RAW_LEN_OFFSET + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    assert_eq!(
        ratio,
        "bad block at offset 32: 2 compressed bytes cannot decode to 4294967295"
    );
    let snappy = with_header(&|h| h[0] = Codec::Snappy as u8 | LAST_BLOCK);
    assert!(snappy.starts_with("bad block at offset 32: "), "{snappy}");
    let not_last = with_header(&|h| h[0] = Codec::Stored as u8);
    assert!(
        not_last.starts_with("file truncated at offset 43"),
        "{not_last}"
    );
}

/// Two threads (a file of some size through `load_file_with`) and one give
/// the same keyspace, and the same first error on a corrupt file.
#[test]
fn pipelined_load_matches_the_single_threaded_one() {
    let mut ks = Keyspace::new(2);
    let mut rng = crate::rng::Rng::with_seed(5);
    for i in 0..40_000 {
        let value: Vec<u8> = (0..30).map(|_| (rng.next_u64() % 255) as u8 + 1).collect();
        ks.db_mut(i % 2).insert(
            Bytes::from(format!("key:{i}")),
            Value::Str(Bytes::from(value)),
            (i % 5 == 0).then_some(FAR),
        );
    }
    let bytes = to_bytes(&ks, NOW);
    assert!(bytes.len() as u64 >= super::loader::PIPELINE_MIN_BYTES);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.rdb");
    std::fs::write(&path, &bytes).unwrap();
    let threaded = load_file_with(&path, Some(2), NOW, Encodings::default()).unwrap();
    let single = load_bytes(&bytes, Some(2), NOW).unwrap();
    assert_eq!(picture(&threaded.keyspace, NOW), picture(&ks, NOW));
    assert_eq!(picture(&single.keyspace, NOW), picture(&ks, NOW));
    for db in threaded.keyspace.dbs() {
        db.check_invariants().unwrap();
    }
    let mut bad = bytes.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&path, &bad).unwrap();
    let threaded = load_file_with(&path, Some(2), NOW, Encodings::default()).unwrap_err();
    let single = load_bytes(&bad, Some(2), NOW).unwrap_err();
    assert_eq!(threaded.to_string(), single.to_string());
}

/// Compact encodings written by a server with roomy limits load converted
/// under a loading server's smaller ones, contents unchanged.
#[test]
fn compact_records_convert_under_smaller_limits() {
    let mut ks = Keyspace::new(1);
    let db = ks.db_mut(0);
    let hash: Hash = (0..10)
        .map(|i| (format!("f{i}"), format!("v{i}")))
        .collect();
    assert!(hash.is_packed());
    db.insert(b(b"h"), Value::Hash(hash), None);
    let set: Set = (0..10).map(|i| i.to_string()).collect();
    assert_eq!(set.encoding_name(), "intset");
    db.insert(b(b"s"), Value::Set(set), Some(FAR));
    let mut z = ZSet::new();
    for i in 0..10 {
        z.insert(
            format!("m{i}").as_bytes(),
            f64::from(i),
            &Encodings::default(),
        );
    }
    assert!(z.is_packed());
    db.insert(b(b"z"), Value::ZSet(z), None);
    let bytes = to_bytes(&ks, NOW);
    let small = Encodings {
        hash_max_listpack_entries: 4,
        set_max_intset_entries: 4,
        zset_max_listpack_entries: 4,
        ..Encodings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.rdb");
    std::fs::write(&path, &bytes).unwrap();
    let loaded = load_file_with(&path, Some(1), NOW, small).unwrap();
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
    let value = |key: &[u8]| loaded.keyspace.db(0).peek(key, NOW).unwrap().value;
    assert_eq!(value(b"h").as_hash().unwrap().encoding_name(), "hashtable");
    assert_eq!(value(b"s").as_set().unwrap().encoding_name(), "hashtable");
    assert_eq!(value(b"z").as_zset().unwrap().encoding_name(), "skiplist");
    // Under the default limits they stay compact (packed records).
    let loaded = load_bytes(&bytes, Some(1), NOW).unwrap();
    for key in [&b"h"[..], b"s", b"z"] {
        assert!(loaded
            .keyspace
            .db(0)
            .peek_record(key, NOW)
            .unwrap()
            .is_packed());
    }
}

#[test]
fn a_stream_of_unknown_length_loads_and_must_end_at_the_checksum() {
    use super::loader::load_stream_with;
    let ks = sample();
    let bytes = to_bytes(&ks, NOW);
    let loaded = load_stream_with(&bytes[..], Some(4), NOW, Encodings::default()).unwrap();
    assert_eq!(picture(&loaded.keyspace, NOW), picture(&ks, NOW));
    let mut longer = bytes.clone();
    longer.push(0);
    let err = load_stream_with(&longer[..], Some(4), NOW, Encodings::default()).unwrap_err();
    assert!(matches!(err, LoadError::TrailingBytes { .. }), "{err}");
    let short = &bytes[..bytes.len() - 1];
    let err = load_stream_with(short, Some(4), NOW, Encodings::default()).unwrap_err();
    assert!(matches!(err, LoadError::Truncated { .. }), "{err}");
}
