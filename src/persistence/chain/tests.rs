//! The chain against a model: random writes, deletes and expiries with saves
//! in between; after every save, loading the files gives the state saved.

use super::*;
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::BTreeMap;

use crate::keyspace::{Entry, Value};

const DBS: usize = 3;

/// Every live entry of every database, in a comparable form.
fn contents(ks: &Keyspace, now_ms: i64) -> BTreeMap<(usize, Bytes), Entry> {
    let mut out = BTreeMap::new();
    for (i, db) in ks.dbs().iter().enumerate() {
        for (key, entry) in db.iter() {
            if entry.expire_at.is_none_or(|t| t > now_ms) {
                out.insert((i, Bytes::copy_from_slice(key)), entry);
            }
        }
    }
    out
}

fn plan(saved: &Option<Saved>, ratio: f64) -> SavePlan {
    SavePlan {
        saved: saved.clone(),
        incremental: true,
        max_delta_ratio: ratio,
    }
}

#[derive(Debug, Clone)]
enum Op {
    Set(usize, u16, u16),
    SetExpiring(usize, u16, bool),
    Push(usize, u16, u16),
    Delete(usize, u16),
    FlushDb(usize),
    Function(u8),
    Save,
    SaveFull,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..DBS, 0u16..300, any::<u16>()).prop_map(|(d, k, v)| Op::Set(d, k, v)),
        2 => (0..DBS, 0u16..300, any::<bool>()).prop_map(|(d, k, past)| Op::SetExpiring(d, k, past)),
        2 => (0..DBS, 0u16..40, any::<u16>()).prop_map(|(d, k, v)| Op::Push(d, k, v)),
        3 => (0..DBS, 0u16..300).prop_map(|(d, k)| Op::Delete(d, k)),
        1 => (0..DBS).prop_map(Op::FlushDb),
        1 => any::<u8>().prop_map(Op::Function),
        3 => Just(Op::Save),
        1 => Just(Op::SaveFull),
    ]
}

fn key(k: u16) -> Bytes {
    Bytes::from(format!("key:{k}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn every_load_equals_the_last_save(
        ops in proptest::collection::vec(op(), 1..250),
        ratio in prop_oneof![Just(0.5), Just(100.0)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("dump.rdb");
        let now = 1_000_000;
        let mut live = Keyspace::new(DBS);
        let mut saved: Option<Saved> = None;
        let mut deltas_written = 0;
        for op in ops {
            match op {
                Op::Set(d, k, v) => {
                    live.db_mut(d).insert(key(k), Value::Str(Bytes::from(v.to_string())), None);
                }
                Op::SetExpiring(d, k, past) => {
                    let at = if past { now - 1 } else { now + 10_000 };
                    live.db_mut(d).insert(key(k), Value::Str(Bytes::from("e")), Some(at));
                }
                Op::Push(d, k, v) => {
                    let mut list = match live.db(d).peek(&key(k), 0).map(|e| e.value) {
                        Some(Value::List(l)) => l,
                        _ => Default::default(),
                    };
                    list.push_back(v.to_string().as_bytes(), Default::default());
                    live.db_mut(d).insert(key(k), Value::List(list), None);
                }
                Op::Delete(d, k) => {
                    live.db_mut(d).delete(&key(k));
                }
                Op::FlushDb(d) => live.db_mut(d).clear(),
                Op::Function(f) => {
                    live.set_functions(vec![Bytes::from(format!("#!lua name=lib{f}\n"))]);
                }
                Op::Save | Op::SaveFull => {
                    let snapshot = live.clone();
                    let p = if matches!(op, Op::SaveFull) {
                        SavePlan { saved: None, incremental: true, max_delta_ratio: ratio }
                    } else {
                        plan(&saved, ratio)
                    };
                    let done = save(&snapshot, &dump, now, &Progress::default(), p).unwrap();
                    deltas_written += usize::from(done.delta);
                    saved = done.saved;
                    let back = load_file(&dump, DBS, Encodings::default(), now).unwrap();
                    prop_assert_eq!(contents(&back.loaded.keyspace, now), contents(&live, now));
                    prop_assert_eq!(back.loaded.keyspace.functions(), live.functions());
                    prop_assert_eq!(back.deltas, saved.as_ref().unwrap().chain.deltas.len());
                    for db in back.loaded.keyspace.dbs() {
                        db.check_invariants().map_err(TestCaseError::fail)?;
                    }
                    // Only the files of the chain are left beside the dump.
                    let files = std::fs::read_dir(dir.path()).unwrap().count();
                    prop_assert_eq!(files, 2 + back.deltas);
                }
            }
        }
        let _ = deltas_written;
    }
}

#[test]
fn a_small_change_writes_a_small_delta_and_a_chain_compacts() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump.rdb");
    let mut live = Keyspace::new(1);
    for i in 0..20_000 {
        live.db_mut(0).insert(
            Bytes::from(format!("key:{i:08}")),
            Value::Str(Bytes::from(vec![b'x'; 100])),
            None,
        );
    }
    let first = save(&live, &dump, 0, &Progress::default(), plan(&None, 0.5)).unwrap();
    assert!(!first.delta);
    let full_bytes = first.stats.bytes;
    let mut saved = first.saved;
    let mut delta_sizes = Vec::new();
    for round in 0..12 {
        for i in 0..200 {
            live.db_mut(0).insert(
                Bytes::from(format!("key:{:08}", round * 997 + i)),
                Value::Str(Bytes::from(vec![b'y'; 100])),
                None,
            );
        }
        let done = save(&live, &dump, 0, &Progress::default(), plan(&saved, 0.05)).unwrap();
        delta_sizes.push((done.delta, done.stats.bytes));
        saved = done.saved;
        let back = load_file(&dump, 1, Encodings::default(), 0).unwrap();
        assert_eq!(contents(&back.loaded.keyspace, 0), contents(&live, 0));
    }
    // 1 % of the keys changed: each delta is about 1 % of the base...
    let (is_delta, bytes) = delta_sizes[0];
    assert!(is_delta);
    assert!(bytes * 50 < full_bytes, "{bytes} of {full_bytes}");
    // ...and once the deltas pass 5 % of the base, a save rewrites it.
    assert!(delta_sizes.iter().any(|(d, _)| !d), "{delta_sizes:?}");
}

/// A base of key `a` in `dir`, then a delta adding `b`: the live keyspace
/// and the second save.
fn base_and_delta(dir: &Path) -> (PathBuf, Keyspace, SaveDone) {
    let dump = dir.join("dump.rdb");
    let mut live = Keyspace::new(1);
    live.db_mut(0)
        .insert(Bytes::from("a"), Value::Str(Bytes::from("1")), None);
    let saved = save(&live, &dump, 0, &Progress::default(), plan(&None, 0.5))
        .unwrap()
        .saved;
    live.db_mut(0)
        .insert(Bytes::from("b"), Value::Str(Bytes::from("2")), None);
    let done = save(&live, &dump, 0, &Progress::default(), plan(&saved, 100.0)).unwrap();
    assert!(done.delta);
    (dump, live, done)
}

#[test]
fn a_corrupt_delta_is_refused_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (dump, _, done) = base_and_delta(dir.path());
    let name = &done.saved.unwrap().chain.deltas[0].name;
    let path = dir.path().join(name);
    let mut bytes = std::fs::read(&path).unwrap();
    let base_before = std::fs::read(&dump).unwrap();
    bytes[50] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = load_file(&dump, 1, Encodings::default(), 0).err().unwrap();
    assert!(
        err.contains(name.as_str()) && err.contains("checksum mismatch"),
        "{err}"
    );
    assert!(err.contains("offset"), "{err}");
    assert_eq!(std::fs::read(&dump).unwrap(), base_before);
    // A missing delta is refused too, rather than silently loading less.
    std::fs::remove_file(&path).unwrap();
    assert!(load_file(&dump, 1, Encodings::default(), 0).is_err());
}

#[test]
fn a_manifest_naming_another_base_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (dump, mut live, _) = base_and_delta(dir.path());
    // A full save that crashed after renaming the new base, before its manifest.
    live.db_mut(0)
        .insert(Bytes::from("c"), Value::Str(Bytes::from("3")), None);
    writer::save_to(&live, &dump, 0, &Progress::default()).unwrap();
    let back = load_file(&dump, 1, Encodings::default(), 0).unwrap();
    assert_eq!(back.deltas, 0);
    assert_eq!(contents(&back.loaded.keyspace, 0), contents(&live, 0));
}
