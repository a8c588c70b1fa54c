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
        .byte(kind::STREAM_LISTPACKS_3)
        .str(b"events");
    let e = err(&r.finish());
    assert!(
        e.contains("\"events\"") && e.contains("database 2") && e.contains("stream"),
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
    let (out, _) = super::writer::write_rdb(&ks, 0, Vec::new()).unwrap();
    out
}

#[test]
fn written_files_read_back_equal() {
    let bytes = sample_file();
    let got = load_bytes(&bytes).unwrap();
    assert_eq!(got.keys_loaded, 5);
    assert_eq!(get(&got.keyspace, 0, "s").unwrap().1, Some(5_000));
    assert_eq!(get(&got.keyspace, 3, "z").unwrap().0.type_name(), "zset");
}

proptest! {
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
