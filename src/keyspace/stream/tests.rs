//! The stream against a `BTreeMap` model, with clones taken along the way
//! that must never change.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

type Model = BTreeMap<StreamId, Vec<(Vec<u8>, Vec<u8>)>>;

#[derive(Debug, Clone)]
enum Op {
    /// Advance the clock by this many ms (0: same ms, next seq), then add
    /// an entry with `n` fields, field names from a small set.
    Add(u8, u8, u8),
    Del(usize),
    MaxLen(u64, bool),
    MinId(usize, bool),
    Snapshot,
    /// Switch between two node limits (CONFIG SET between appends).
    Limits,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..3, 1u8..4, 0u8..3).prop_map(|(d, n, f)| Op::Add(d, n, f)),
        2 => any::<usize>().prop_map(Op::Del),
        1 => (0u64..40, any::<bool>()).prop_map(|(m, a)| Op::MaxLen(m, a)),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, a)| Op::MinId(i, a)),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Limits),
    ]
}

fn check(s: &Stream, m: &Model) {
    assert_eq!(s.len(), m.len() as u64);
    let all = s.range(StreamId::MIN, StreamId::MAX, 0);
    let want: Vec<OwnedEntry> = m
        .iter()
        .map(|(id, f)| {
            (
                *id,
                f.iter()
                    .map(|(a, b)| (Bytes::from(a.clone()), Bytes::from(b.clone())))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(all, want);
    let mut rev = s.rev_range(StreamId::MIN, StreamId::MAX, 0);
    rev.reverse();
    assert_eq!(rev, want);
    let first = m.keys().next().copied().unwrap_or(StreamId::MIN);
    assert_eq!(s.first_id(), first);
    let last = m.keys().next_back().copied().unwrap_or(StreamId::MIN);
    assert_eq!(s.last_entry_id(), last);
    assert_eq!(
        s.blocks().map(|b| b.live() as u64).sum::<u64>(),
        s.len(),
        "block counts add up"
    );
    assert!(
        s.0.tail.is_some() || s.0.blocks.is_empty(),
        "blocks without a tail"
    );
    assert!(s.blocks().all(|b| b.live() > 0), "no empty block kept");
    let firsts: Vec<StreamId> = s.blocks().map(|b| b.first()).collect();
    assert!(firsts.windows(2).all(|w| w[0] < w[1]), "blocks in order");
    // A window in the middle, both ways, with a count.
    if want.len() > 3 {
        let (a, b) = (want[1].0, want[want.len() - 2].0);
        assert_eq!(s.range(a, b, 2), want[1..3].to_vec());
        let r = s.rev_range(a, b, 2);
        assert_eq!(
            r,
            vec![want[want.len() - 2].clone(), want[want.len() - 3].clone()]
        );
        assert!(s.contains(a));
        assert_eq!(s.get(b), Some(want[want.len() - 2].clone()));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn stream_matches_model(ops in proptest::collection::vec(op(), 1..300)) {
        let mut limits = NodeLimits { max_entries: 7, max_bytes: 120 };
        let mut s = Stream::new();
        let mut m = Model::new();
        let mut clock = 1u64;
        let mut snaps: Vec<(Stream, Model)> = Vec::new();
        for op in ops {
            match op {
                Op::Add(d, n, f) => {
                    clock += d as u64;
                    let last = s.last_id();
                    let id = if clock > last.ms { StreamId::new(clock, 0) } else { last.next().unwrap() };
                    let names = [b"a".to_vec(), b"bb".to_vec(), b"ccc".to_vec()];
                    let fields: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
                        .map(|i| (names[((i + f) % 3) as usize].clone(), format!("v{clock}-{i}").into_bytes()))
                        .collect();
                    let refs: Vec<(&[u8], &[u8])> = fields.iter().map(|(a, b)| (&a[..], &b[..])).collect();
                    s.append(id, &refs, limits);
                    m.insert(id, fields);
                }
                Op::Del(i) => {
                    if !m.is_empty() {
                        let id = *m.keys().nth(i % m.len()).unwrap();
                        prop_assert!(s.delete(id));
                        prop_assert!(!s.delete(id));
                        m.remove(&id);
                        prop_assert!(s.max_deleted() >= id);
                    }
                }
                Op::MaxLen(max, approx) => {
                    let before = m.len() as u64;
                    let n = s.trim(Trim { to: TrimTo::MaxLen(max), approx, limit: 0 });
                    for _ in 0..n {
                        let k = *m.keys().next().unwrap();
                        m.remove(&k);
                    }
                    if approx {
                        prop_assert!(m.len() as u64 >= max.min(before));
                    } else {
                        prop_assert_eq!(m.len() as u64, max.min(before));
                    }
                }
                Op::MinId(i, approx) => {
                    let min = if m.is_empty() { StreamId::new(clock, 0) } else { *m.keys().nth(i % m.len()).unwrap() };
                    let n = s.trim(Trim { to: TrimTo::MinId(min), approx, limit: 0 });
                    for _ in 0..n {
                        let k = *m.keys().next().unwrap();
                        prop_assert!(k < min);
                        m.remove(&k);
                    }
                    if !approx {
                        prop_assert!(m.keys().next().is_none_or(|k| *k >= min));
                    }
                }
                Op::Snapshot => snaps.push((s.clone(), m.clone())),
                Op::Limits => {
                    limits = if limits.max_entries == 7 {
                        NodeLimits { max_entries: 3, max_bytes: 0 }
                    } else {
                        NodeLimits { max_entries: 7, max_bytes: 120 }
                    };
                }
            }
            check(&s, &m);
        }
        for (snap, model) in &snaps {
            check(snap, model);
        }
    }
}

#[test]
fn blocks_follow_the_node_limits() {
    let mut s = Stream::new();
    for i in 1..=250u64 {
        s.append(StreamId::new(i, 0), &[(b"f", b"v")], NodeLimits::default());
    }
    assert_eq!(s.block_count(), 3);
    // ~ removes whole blocks only: 250 -> 150 keeps 150 (two blocks of 100 can't both go).
    let n = s.trim(Trim {
        to: TrimTo::MaxLen(120),
        approx: true,
        limit: 0,
    });
    assert_eq!(n, 100);
    assert_eq!(s.first_id(), StreamId::new(101, 0));
}

#[test]
fn a_snapshot_shares_blocks_until_written() {
    let mut s = Stream::new();
    for i in 1..=300u64 {
        s.append(StreamId::new(i, 0), &[(b"f", b"v")], NodeLimits::default());
    }
    let snap = s.clone();
    assert!(s.ptr_eq(&snap));
    s.delete(StreamId::new(250, 0));
    let shared = s
        .blocks()
        .zip(snap.blocks())
        .filter(|(a, b)| std::ptr::eq(*a, *b))
        .count();
    assert_eq!(shared, 2, "only the written block was copied");
    assert_eq!(snap.len(), 300);
    assert_eq!(s.len(), 299);
}
