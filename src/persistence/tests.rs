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
    db.insert(b(b"l"), Value::List(items.clone()), None);
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
    // Every frame stays bounded.
    let mut off = HEADER_LEN;
    let mut frames = 0;
    while off + TRAILER_LEN < bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        assert!(len <= CHUNK_MAX_BYTES + 64, "frame of {len} bytes");
        off += 4 + len;
        frames += 1;
    }
    assert_eq!(off + TRAILER_LEN, bytes.len());
    assert!(frames > 12);
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
    bytes[VERSION_OFFSET] = 2;
    reseal(&mut bytes);
    let err = load_bytes(&bytes, Some(4), NOW).unwrap_err();
    assert!(
        matches!(err, LoadError::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "expected snapshot format version 1, but the file is version 2 (offset 8)"
    );
}

/// Builds a sealed file from records.
fn build(records: &[Record<'_>], key_count: u64) -> Vec<u8> {
    let mut out = Header {
        version: FORMAT_VERSION,
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

/// Writes the fixture; run once per new format version with
/// `FORKLESS_WRITE_FIXTURE=1 cargo test --lib write_fixture -- --ignored`.
#[test]
#[ignore]
fn write_fixture() {
    if std::env::var_os("FORKLESS_WRITE_FIXTURE").is_none() {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dump-v1.rdb");
    std::fs::write(path, to_bytes(&sample(), NOW)).unwrap();
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
    let mut bytes = to_bytes(&ks, NOW);
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
        matches!(err, LoadError::CountMismatch { ref what, .. } if what.contains("unknown group")),
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
