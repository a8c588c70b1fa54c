//! Reader tests on hand-built files in the older encodings redis-server 7.0
//! no longer writes (ziplists, zipmaps, quicklists of ziplists, text
//! scores, expiry in seconds), the opcodes around the keys, and properties:
//! the reader never panics on arbitrary or mutated input, and what the
//! writer writes reads back equal.

use bytes::Bytes;
use proptest::prelude::*;

use super::reader::{load, RdbError};
use super::{crc64, kind, opcode};
use crate::keyspace::encodings::Encodings;
use crate::keyspace::stream::{Block, Group, NodeLimits, Stream, StreamId};
use crate::keyspace::{Hash, Keyspace, Value};

/// Builds RDB bytes piece by piece.
struct Rdb(Vec<u8>);

impl Rdb {
    fn new(version: u32) -> Rdb {
        Rdb(format!("REDIS{version:04}").into_bytes())
    }

    fn byte(&mut self, b: u8) -> &mut Self {
        self.0.push(b);
        self
    }

    fn len(&mut self, n: u64) -> &mut Self {
        if n < 64 {
            self.0.push(n as u8);
        } else if n < 16384 {
            self.0.push(0x40 | (n >> 8) as u8);
            self.0.push(n as u8);
        } else {
            self.0.push(0x80);
            self.0.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self
    }

    fn str(&mut self, s: &[u8]) -> &mut Self {
        self.len(s.len() as u64);
        self.0.extend_from_slice(s);
        self
    }

    fn raw(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }

    fn finish(&mut self) -> Vec<u8> {
        self.0.push(opcode::EOF);
        let crc = crc64::crc64(&self.0);
        self.0.extend_from_slice(&crc.to_le_bytes());
        self.0.clone()
    }
}

/// A ziplist of `items` (strings of up to 63 bytes, or small integers).
fn ziplist(items: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut prev = 0u8;
    for item in items {
        let start = body.len();
        body.push(prev);
        match item.parse::<i16>() {
            Ok(v) if (0..=12).contains(&v) => body.push(0xf1 + v as u8),
            Ok(v) => {
                body.push(0xc0);
                body.extend_from_slice(&v.to_le_bytes());
            }
            Err(_) => {
                body.push(item.len() as u8);
                body.extend_from_slice(item.as_bytes());
            }
        }
        prev = (body.len() - start) as u8;
    }
    let mut z = Vec::new();
    let total = 10 + body.len() + 1;
    z.extend_from_slice(&(total as u32).to_le_bytes());
    z.extend_from_slice(&0u32.to_le_bytes());
    z.extend_from_slice(&(items.len() as u16).to_le_bytes());
    z.extend_from_slice(&body);
    z.push(0xff);
    z
}

fn load_bytes(bytes: &[u8]) -> Result<super::reader::Imported, RdbError> {
    load(
        bytes,
        bytes.len() as u64,
        16,
        1_000,
        Encodings::default(),
        |_| {},
    )
}

fn get(ks: &Keyspace, db: usize, key: &str) -> Option<(Value, Option<i64>)> {
    ks.db(db)
        .peek(key.as_bytes(), 0)
        .map(|e| (e.value, e.expire_at))
}

fn list(items: &[&str]) -> Value {
    Value::List(
        items
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect(),
    )
}

fn hash(pairs: &[(&str, &str)]) -> Value {
    let mut h = Hash::new();
    for (f, v) in pairs {
        h.insert(f.as_bytes(), v.as_bytes(), &Encodings::default());
    }
    Value::Hash(h)
}

#[test]
fn old_encodings_and_opcodes_load() {
    let mut r = Rdb::new(9);
    r.byte(opcode::AUX).str(b"redis-ver").str(b"5.0.14");
    r.byte(opcode::MODULE_AUX).len(1234).len(2).len(2);
    r.len(2).len(7).len(5).str(b"modstr").len(0);
    r.byte(opcode::FUNCTION2)
        .str(b"#!lua name=lib\nredis.register_function('f', function() return 1 end)");
    r.byte(opcode::SELECTDB)
        .len(0)
        .byte(opcode::RESIZEDB)
        .len(9)
        .len(2);
    // A quicklist of two ziplists, with an expiry in seconds (far future).
    r.byte(opcode::EXPIRETIME)
        .raw(&2_000_000_000i32.to_le_bytes());
    r.byte(kind::LIST_QUICKLIST).str(b"ql").len(2);
    r.str(&ziplist(&["a", "7", "-300"])).str(&ziplist(&["b"]));
    r.byte(kind::LIST_ZIPLIST)
        .str(b"zl")
        .str(&ziplist(&["x", "12"]));
    r.byte(kind::HASH_ZIPLIST)
        .str(b"hz")
        .str(&ziplist(&["f", "v", "n", "5"]));
    r.byte(kind::ZSET_ZIPLIST)
        .str(b"zz")
        .str(&ziplist(&["m", "2", "k", "1.5"]));
    let zipmap = [2, 1, b'a', 2, 0, b'x', b'y', 1, b'b', 1, 1, b'z', 0, 0xff];
    r.byte(kind::HASH_ZIPMAP).str(b"zm").str(&zipmap);
    r.byte(opcode::IDLE).len(100).byte(opcode::FREQ).byte(5);
    r.byte(kind::ZSET).str(b"zt").len(3);
    r.str(b"a")
        .str(b"1.25")
        .str(b"b")
        .byte(254)
        .str(b"c")
        .byte(255);
    r.byte(kind::LIST).str(b"pl").len(2).str(b"p").str(b"q");
    // Expired at load time (now = 1000 ms): dropped and counted.
    r.byte(opcode::EXPIRETIME_MS).raw(&500i64.to_le_bytes());
    r.byte(kind::STRING).str(b"gone").str(b"v");
    // Integer-encoded strings of each width.
    r.byte(kind::STRING).str(b"i8").raw(&[0xc0, 0xfe]);
    r.byte(opcode::SELECTDB).len(5);
    r.byte(kind::STRING)
        .str(b"i32")
        .raw(&[0xc2])
        .raw(&(-100_000i32).to_le_bytes());
    r.byte(kind::STRING).str(b"empty").str(b"");
    r.byte(kind::LIST).str(b"nothing").len(0);
    let bytes = r.finish();
    let got = load_bytes(&bytes).unwrap();
    let ks = &got.keyspace;
    assert_eq!(got.version, 9);
    assert_eq!(got.keys_expired, 1);
    assert_eq!(got.empty_skipped, 1);
    assert_eq!(got.module_aux_skipped, 1);
    assert_eq!(ks.functions().len(), 1);
    assert_eq!(
        got.aux,
        vec![("redis-ver".to_string(), "5.0.14".to_string())]
    );
    assert_eq!(
        get(ks, 0, "ql"),
        Some((list(&["a", "7", "-300", "b"]), Some(2_000_000_000_000)))
    );
    assert_eq!(get(ks, 0, "zl").unwrap().0, list(&["x", "12"]));
    assert_eq!(get(ks, 0, "hz").unwrap().0, hash(&[("f", "v"), ("n", "5")]));
    assert_eq!(
        get(ks, 0, "zm").unwrap().0,
        hash(&[("a", "xy"), ("b", "z")])
    );
    let Value::ZSet(zz) = get(ks, 0, "zz").unwrap().0 else {
        panic!()
    };
    assert_eq!(zz.score(b"m"), Some(2.0));
    assert_eq!(zz.score(b"k"), Some(1.5));
    let Value::ZSet(zt) = get(ks, 0, "zt").unwrap().0 else {
        panic!()
    };
    assert_eq!(zt.score(b"a"), Some(1.25));
    assert_eq!(zt.score(b"b"), Some(f64::INFINITY));
    assert_eq!(zt.score(b"c"), Some(f64::NEG_INFINITY));
    assert_eq!(get(ks, 0, "pl").unwrap().0, list(&["p", "q"]));
    assert_eq!(get(ks, 0, "i8").unwrap().0, Value::Str(Bytes::from("-2")));
    assert_eq!(
        get(ks, 5, "i32").unwrap().0,
        Value::Str(Bytes::from("-100000"))
    );
    assert_eq!(get(ks, 5, "empty").unwrap().0, Value::Str(Bytes::new()));
    assert!(get(ks, 0, "gone").is_none());
}

#[test]
fn set_listpack_of_version_11_loads() {
    let mut lp = super::packed::ListpackWriter::new();
    for m in ["a", "1", "b"] {
        lp.push(m.as_bytes());
    }
    let mut r = Rdb::new(11);
    r.byte(opcode::SELECTDB).len(0);
    r.byte(kind::SET_LISTPACK).str(b"s").str(&lp.finish());
    let got = load_bytes(&r.finish()).unwrap();
    let Value::Set(s) = get(&got.keyspace, 0, "s").unwrap().0 else {
        panic!()
    };
    assert_eq!(s.len(), 3);
    assert!(s.contains(b"1") && s.contains(b"b"));
}

#[test]
fn refusals_name_the_problem() {
    let err = |bytes: &[u8]| load_bytes(bytes).unwrap_err().to_string();
    let mut r = Rdb::new(10);
    r.byte(opcode::SELECTDB)
        .len(2)
        .byte(kind::HASH_METADATA)
        .str(b"events");
    let e = err(&r.finish());
    assert!(
        e.contains("\"events\"") && e.contains("database 2") && e.contains("field expiry"),
        "{e}"
    );
    let mut r = Rdb::new(10);
    r.byte(kind::MODULE_2).str(b"m");
    assert!(err(&r.finish()).contains("module"));
    let mut r = Rdb::new(12);
    r.byte(kind::HASH_LISTPACK_EX).str(b"h");
    assert!(err(&r.finish()).contains("field expiry"));
    let mut r = Rdb::new(10);
    r.byte(opcode::SELECTDB).len(16);
    assert!(err(&r.finish()).contains("database 16 is out of range"));
    let mut r = Rdb::new(10);
    r.byte(kind::STRING)
        .str(b"k")
        .str(b"1")
        .byte(kind::STRING)
        .str(b"k")
        .str(b"2");
    assert!(err(&r.finish()).contains("duplicate key"));
    let mut r = Rdb::new(10);
    r.byte(kind::SET).str(b"s").len(2).str(b"a").str(b"a");
    assert!(err(&r.finish()).contains("duplicate member"));
    assert!(err(b"REDIS0013\xff").contains("version 13"));
    assert!(err(b"NOTREDIS1").contains("magic"));
    // A checksum of zero means "not computed".
    let mut r = Rdb::new(10);
    r.byte(kind::STRING)
        .str(b"k")
        .str(b"v")
        .byte(opcode::EOF)
        .raw(&[0; 8]);
    assert!(load_bytes(&r.0).is_ok());
    let mut good = Rdb::new(10).byte(kind::STRING).str(b"k").str(b"v").finish();
    let n = good.len();
    good[n - 2] ^= 1;
    assert!(err(&good).contains("checksum mismatch"));
    let truncated = &good[..n - 12];
    assert!(matches!(
        load_bytes(truncated),
        Err(RdbError::Truncated { .. })
    ));
}

/// A file with a value of every kind the writer produces.
fn sample_file() -> Vec<u8> {
    let limits = Encodings::default();
    let mut ks = Keyspace::new(16);
    let db = ks.db_mut(0);
    db.insert(
        Bytes::from("s"),
        Value::Str(Bytes::from("x".repeat(100))),
        Some(5_000),
    );
    db.insert(Bytes::from("l"), list(&["a", "1", "bb"]), None);
    db.insert(Bytes::from("h"), hash(&[("f", "v")]), None);
    let mut set = crate::keyspace::set::Set::new();
    set.insert(b"1", &limits);
    set.insert(b"word", &limits);
    ks.db_mut(3)
        .insert(Bytes::from("set"), Value::Set(set), None);
    let mut z = crate::keyspace::zset::ZSet::new();
    z.insert(b"m", 1.5, &limits);
    ks.db_mut(3).insert(Bytes::from("z"), Value::ZSet(z), None);
    ks.db_mut(3)
        .insert(Bytes::from("st"), Value::Stream(sample_stream()), None);
    let (out, _) = super::writer::write_rdb(&ks, 0, Vec::new()).unwrap();
    out
}

/// A stream of several nodes with deleted entries, entries of their own
/// fields, and groups with pending entries, consumers and read counters.
fn sample_stream() -> Stream {
    let limits = NodeLimits {
        max_entries: 4,
        max_bytes: 4096,
    };
    let mut s = Stream::new();
    for i in 1..=10u64 {
        let v = (i * 1000).to_string();
        s.append(
            StreamId::new(i, 0),
            &[(b"f", v.as_bytes()), (b"g", b"text")],
            limits,
        );
    }
    s.append(StreamId::new(11, 3), &[(b"other", b"y")], limits);
    s.delete(StreamId::new(1, 0));
    s.delete(StreamId::new(6, 0));
    let mut g = Group::new(StreamId::new(4, 0), 4);
    g.deliver(StreamId::new(2, 0), b"alice", 1_700_000_000_000, 1);
    g.deliver(StreamId::new(3, 0), b"bob", 1_700_000_000_500, 3);
    g.consumer_mut(b"carol", 1_700_000_001_000);
    s.groups_mut().insert(Bytes::from("g1"), g);
    s.groups_mut()
        .insert(Bytes::from("g2"), Group::new(StreamId::MIN, -1));
    s
}

fn raw_id(ms: u64, seq: u64) -> Vec<u8> {
    [ms.to_be_bytes(), seq.to_be_bytes()].concat()
}

/// A stream of RDB type `t` built by hand: one node (5-1 deleted, 5-2,
/// 7-0), one group with two pending entries owned by two consumers.
fn stream_file(t: u8) -> Vec<u8> {
    let mut b = Block::new(StreamId::new(5, 1), &[(b"f", b"v")]);
    b.push(StreamId::new(5, 2), &[(b"f", b"w")]);
    b.push(StreamId::new(7, 0), &[(b"g", b"1")]);
    b.delete(StreamId::new(5, 1));
    let node = super::stream::node_of_block(&b);
    let version = match t {
        kind::STREAM_LISTPACKS => 9,
        kind::STREAM_LISTPACKS_2 => 10,
        _ => 11,
    };
    let mut r = Rdb::new(version);
    r.byte(t).str(b"st").len(1).str(&raw_id(5, 1)).str(&node);
    r.len(2).len(7).len(0);
    if t != kind::STREAM_LISTPACKS {
        r.len(5).len(2).len(5).len(1).len(3);
    }
    r.len(1).str(b"g").len(5).len(2);
    if t != kind::STREAM_LISTPACKS {
        r.len(2);
    }
    r.len(2);
    r.raw(&raw_id(5, 2)).raw(&1000i64.to_le_bytes()).len(1);
    r.raw(&raw_id(7, 0)).raw(&2000i64.to_le_bytes()).len(3);
    r.len(2);
    for (name, id) in [(&b"alice"[..], (5, 2)), (b"bob", (7, 0))] {
        r.str(name).raw(&500i64.to_le_bytes());
        if t == kind::STREAM_LISTPACKS_3 {
            r.raw(&600i64.to_le_bytes());
        }
        r.len(1).raw(&raw_id(id.0, id.1));
    }
    r.finish()
}

#[test]
fn streams_of_every_rdb_type_load() {
    for t in [
        kind::STREAM_LISTPACKS,
        kind::STREAM_LISTPACKS_2,
        kind::STREAM_LISTPACKS_3,
    ] {
        let got = load_bytes(&stream_file(t)).unwrap_or_else(|e| panic!("type {t}: {e}"));
        let Some((Value::Stream(s), None)) = get(&got.keyspace, 0, "st") else {
            panic!("type {t}: no stream")
        };
        assert_eq!(s.len(), 2);
        assert_eq!(s.block_count(), 1);
        assert_eq!(s.last_id(), StreamId::new(7, 0));
        assert_eq!(s.first_id(), StreamId::new(5, 2));
        let ids: Vec<StreamId> = s.entries().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![StreamId::new(5, 2), StreamId::new(7, 0)]);
        let g = s.group(b"g").unwrap();
        assert_eq!(g.last_id, StreamId::new(5, 2));
        assert_eq!(g.pel.len(), 2);
        assert_eq!(g.pel[&StreamId::new(7, 0)].consumer, Bytes::from("bob"));
        assert_eq!(g.pel[&StreamId::new(7, 0)].delivery_count, 3);
        assert_eq!(g.consumers[&Bytes::from("alice")].seen_time, 500);
        if t == kind::STREAM_LISTPACKS {
            // Redis 7's defaults for what Redis 5 and 6 did not write.
            assert_eq!(s.entries_added(), 2);
            assert_eq!(s.max_deleted(), StreamId::MIN);
            assert_eq!(g.entries_read, 1);
        } else {
            assert_eq!(s.entries_added(), 3);
            assert_eq!(s.max_deleted(), StreamId::new(5, 1));
            assert_eq!(g.entries_read, 2);
        }
    }
}

#[test]
fn damaged_streams_are_refused() {
    let err = |bytes: &[u8]| load_bytes(bytes).unwrap_err().to_string();
    let good = stream_file(kind::STREAM_LISTPACKS_2);
    let at = |needle: &[u8]| {
        good.windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    };
    let patch = |at: usize, bytes: &[u8]| {
        let mut b = good.clone();
        b[at..at + bytes.len()].copy_from_slice(bytes);
        let n = b.len() - 8;
        let crc = crc64::crc64(&b[..n]);
        b[n..].copy_from_slice(&crc.to_le_bytes());
        b
    };
    // A consumer's pending entry that is not in the group's PEL.
    let bob = at(b"bob") + 3 + 8 + 1;
    let e = err(&patch(bob, &raw_id(9, 9)));
    assert!(e.contains("not in the group's PEL"), "{e}");
    // The same entry owned twice.
    let e = err(&patch(bob, &raw_id(5, 2)));
    assert!(e.contains("two owners"), "{e}");
    // A delivery time before 1970.
    let time = at(&1000i64.to_le_bytes());
    let e = err(&patch(time, &(-5i64).to_le_bytes()));
    assert!(e.contains("delivery time -5 is before 1970"), "{e}");
    // Fewer entries added than the stream holds.
    let meta = at(&[2, 7, 0, 5, 2, 5, 1, 3]);
    let e = err(&patch(meta + 7, &[1]));
    assert!(e.contains("1 entries added cannot leave 2"), "{e}");
    // A last id below the last entry's.
    let e = err(&patch(meta + 1, &[6]));
    assert!(e.contains("below an entry"), "{e}");
    // A length that disagrees with the nodes.
    let mut r = Rdb::new(10);
    r.byte(kind::STREAM_LISTPACKS_2).str(b"st").len(0).len(1);
    let e = err(&r.finish());
    assert!(e.contains("stream length is 1"), "{e}");
    // A node key that is not 16 bytes.
    let mut r = Rdb::new(10);
    r.byte(kind::STREAM_LISTPACKS_2)
        .str(b"st")
        .len(1)
        .str(b"short")
        .str(&[0; 30]);
    let e = err(&r.finish());
    assert!(e.contains("not 16"), "{e}");
    // A PEL entry no consumer owns.
    let mut r = Rdb::new(10);
    r.byte(kind::STREAM_LISTPACKS_2).str(b"st").len(0).len(0);
    r.len(0).len(0).len(0).len(0).len(0).len(0).len(0);
    r.len(1).str(b"g").len(0).len(0).len(0);
    r.len(1).raw(&raw_id(1, 1)).raw(&0i64.to_le_bytes()).len(1);
    r.len(0);
    let e = err(&r.finish());
    assert!(e.contains("has no consumer"), "{e}");
}

#[test]
fn streams_round_trip_through_the_writer() {
    let s = sample_stream();
    let payload = super::writer::dump_payload(&Value::Stream(s.clone()));
    assert_eq!(payload[0], kind::STREAM_LISTPACKS_2);
    let back = super::reader::decode_payload(&payload, &Encodings::default()).unwrap();
    assert_eq!(back, Value::Stream(s));
    let got = load_bytes(&sample_file()).unwrap();
    assert_eq!(
        get(&got.keyspace, 3, "st").unwrap().0,
        Value::Stream(sample_stream())
    );
    // An empty stream with a group stays.
    let mut empty = Stream::new();
    empty.set_meta(StreamId::new(9, 9), StreamId::new(9, 9), 4);
    empty
        .groups_mut()
        .insert(Bytes::from("g"), Group::new(StreamId::new(9, 9), 4));
    let payload = super::writer::dump_payload(&Value::Stream(empty.clone()));
    let back = super::reader::decode_payload(&payload, &Encodings::default()).unwrap();
    assert_eq!(back, Value::Stream(empty));
}

#[test]
fn written_files_read_back_equal() {
    let bytes = sample_file();
    let got = load_bytes(&bytes).unwrap();
    assert_eq!(got.keys_loaded, 6);
    assert_eq!(get(&got.keyspace, 0, "s").unwrap().1, Some(5_000));
    assert_eq!(get(&got.keyspace, 3, "z").unwrap().0.type_name(), "zset");
}

proptest! {
    #[test]
    fn stream_payloads_never_panic_the_reader(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut payload = super::writer::dump_payload(&Value::Stream(sample_stream()));
        let body = payload.len() - 10;
        for (at, b) in edits {
            let i = at.index(body);
            payload[i] = b;
        }
        let crc = crc64::crc64(&payload[..payload.len() - 8]);
        let n = payload.len();
        payload[n - 8..].copy_from_slice(&crc.to_le_bytes());
        let _ = super::reader::decode_payload(&payload, &Encodings::default());
    }

    #[test]
    fn reader_never_panics_on_arbitrary_bytes(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = b"REDIS0010".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = load_bytes(&bytes);
        let _ = super::reader::decode_payload(&tail, &Encodings::default());
    }

    #[test]
    fn reader_never_panics_on_mutated_files(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sample_file();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let n = cut.index(bytes.len() + 1);
        let _ = load_bytes(&bytes[..n]);
        // With the checksum recomputed the damage reaches the decoders.
        let body = bytes.len() - 8;
        let crc = crc64::crc64(&bytes[..body]);
        bytes[body..].copy_from_slice(&crc.to_le_bytes());
        let _ = load_bytes(&bytes);
    }
}
