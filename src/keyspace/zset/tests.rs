//! Model tests of the sorted set against a `BTreeSet` of (score, member) in
//! both encodings, with clones taken mid-sequence that must not change.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn limits(entries: usize, value: usize) -> Encodings {
    Encodings {
        zset_max_listpack_entries: entries,
        zset_max_listpack_value: value,
        ..Encodings::default()
    }
}

/// Scores as ordered keys: f64 has no `Ord`, but no score here is NaN.
#[derive(Debug, Clone, Copy, PartialEq)]
struct S(f64);
impl PartialOrd for S {
    fn partial_cmp(&self, other: &S) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Eq for S {}
impl Ord for S {
    fn cmp(&self, other: &S) -> Ordering {
        self.0.partial_cmp(&other.0).expect("no NaN")
    }
}

#[derive(Debug, Default, Clone)]
struct Model {
    scores: BTreeMap<Vec<u8>, f64>,
}

impl Model {
    fn sorted(&self) -> Vec<(f64, Vec<u8>)> {
        let mut v: Vec<(S, Vec<u8>)> = self
            .scores
            .iter()
            .map(|(m, s)| (S(*s), m.clone()))
            .collect();
        v.sort();
        v.into_iter().map(|(s, m)| (s.0, m)).collect()
    }
}

fn pairs(z: &ZSet) -> Vec<(f64, Vec<u8>)> {
    z.iter().map(|(s, m)| (s, m.to_vec())).collect()
}

fn check_against(z: &ZSet, model: &Model) -> Result<(), TestCaseError> {
    z.check().map_err(TestCaseError::fail)?;
    let want = model.sorted();
    prop_assert_eq!(z.len(), want.len());
    prop_assert_eq!(pairs(z), want.clone());
    for (i, (s, m)) in want.iter().enumerate() {
        prop_assert_eq!(z.rank(m), Some((i, *s)));
        prop_assert_eq!(z.score(m), Some(*s));
        prop_assert_eq!(z.nth(i), Some((*s, &m[..])));
    }
    prop_assert_eq!(z.nth(want.len()), None);
    prop_assert_eq!(z.rank(b"absent"), None);
    // Walks from every rank, both ways.
    for start in 0..want.len() {
        let up: Vec<(f64, Vec<u8>)> = z
            .iter_from(start, false)
            .map(|(s, m)| (s, m.to_vec()))
            .collect();
        prop_assert_eq!(&up[..], &want[start..]);
        let down: Vec<(f64, Vec<u8>)> = z
            .iter_from(start, true)
            .map(|(s, m)| (s, m.to_vec()))
            .collect();
        let mut expect = want[..=start].to_vec();
        expect.reverse();
        prop_assert_eq!(down, expect);
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Insert(u8, i8),
    /// ZADD's path: one lookup, then `insert_new` or `update`.
    Add(u8, i8),
    Remove(u8),
    Pop(usize, bool),
    RemoveRanks(usize, usize),
    Snapshot,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (any::<u8>(), -6i8..6).prop_map(|(m, s)| Op::Insert(m % 120, s)),
        4 => (any::<u8>(), -6i8..6).prop_map(|(m, s)| Op::Add(m % 120, s)),
        3 => any::<u8>().prop_map(|m| Op::Remove(m % 120)),
        1 => (0usize..5, any::<bool>()).prop_map(|(n, max)| Op::Pop(n, max)),
        // Past one group of prefetched pops.
        1 => (30usize..70, any::<bool>()).prop_map(|(n, max)| Op::Pop(n, max)),
        1 => (0usize..40, 0usize..10).prop_map(|(a, n)| Op::RemoveRanks(a, a + n)),
        1 => Just(Op::Snapshot),
    ]
}

fn member(m: u8) -> Vec<u8> {
    // A few long members, so the value limit converts too.
    if m.is_multiple_of(29) {
        format!("long-member-{m}-{}", "x".repeat(20)).into_bytes()
    } else {
        format!("m{m}").into_bytes()
    }
}

proptest! {
    #[test]
    fn behaves_like_an_ordered_model_with_clones(
        ops in prop::collection::vec(op(), 0..250),
        entries in 0usize..20,
    ) {
        let lim = limits(entries, 16);
        let mut z = ZSet::new();
        let mut model = Model::default();
        let mut snapshots: Vec<(ZSet, Model)> = Vec::new();
        let mut was_tree = false;
        for op in ops {
            match op {
                Op::Insert(m, s) => {
                    let m = member(m);
                    let score = f64::from(s) / 2.0;
                    let new = !model.scores.contains_key(&m);
                    prop_assert_eq!(z.insert(&m, score, &lim), new);
                    if new && (model.scores.len() + 1 > entries || m.len() > 16) {
                        prop_assert!(!z.is_packed());
                    }
                    model.scores.insert(m, score);
                }
                Op::Add(m, s) => {
                    let m = member(m);
                    let score = f64::from(s) / 2.0;
                    match z.score(&m) {
                        None => {
                            z.insert_new(&m, score, &lim);
                            if model.scores.len() + 1 > entries || m.len() > 16 {
                                prop_assert!(!z.is_packed());
                            }
                        }
                        Some(old) if old != score => z.update(&m, old, score),
                        Some(_) => {}
                    }
                    model.scores.insert(m, score);
                }
                Op::Remove(m) => {
                    let m = member(m);
                    prop_assert_eq!(z.remove(&m), model.scores.remove(&m));
                }
                Op::Pop(n, max) => {
                    let sorted = model.sorted();
                    let n = n.min(sorted.len());
                    let mut want: Vec<(f64, Vec<u8>)> = if max {
                        sorted[sorted.len() - n..].iter().rev().cloned().collect()
                    } else {
                        sorted[..n].to_vec()
                    };
                    let got: Vec<(f64, Vec<u8>)> = z
                        .pop(n, max)
                        .into_iter()
                        .map(|(m, s)| (s, m.to_vec()))
                        .collect();
                    prop_assert_eq!(&got, &want);
                    for (_, m) in want.drain(..) {
                        model.scores.remove(&m);
                    }
                }
                Op::RemoveRanks(a, b) => {
                    let sorted = model.sorted();
                    let got = z.remove_ranks(a, b);
                    let want: Vec<(f64, Vec<u8>)> =
                        sorted.get(a.min(sorted.len())..b.min(sorted.len()).max(a.min(sorted.len()))).unwrap_or(&[]).to_vec();
                    let got_pairs: Vec<(f64, Vec<u8>)> =
                        got.iter().map(|(m, s)| (*s, m.to_vec())).collect();
                    prop_assert_eq!(got_pairs, want);
                    for (m, _) in got {
                        model.scores.remove(&m[..]);
                    }
                }
                Op::Snapshot => snapshots.push((z.clone(), model.clone())),
            }
            if was_tree {
                prop_assert!(!z.is_packed(), "a skiplist never converts back");
            }
            was_tree = !z.is_packed();
            check_against(&z, &model)?;
            // Score and lex bounds against a filter of the model.
            let sorted = model.sorted();
            for (lo, hi, ex) in [(-1.0, 1.0, false), (-1.0, 1.0, true), (0.5, 0.5, false), (2.0, -2.0, false)] {
                let min = ScoreBound { value: lo, exclusive: ex };
                let max = ScoreBound { value: hi, exclusive: ex };
                let (a, b) = z.score_ranks(min, max);
                let inside = sorted.iter().filter(|(s, _)| !below_min(*s, min) && !above_max(*s, max)).count();
                prop_assert_eq!(b - a, inside);
                if inside > 0 {
                    prop_assert!(!below_min(sorted[a].0, min) && !above_max(sorted[b - 1].0, max));
                }
            }
        }
        for (snap, model) in snapshots {
            check_against(&snap, &model)?;
        }
    }

    #[test]
    fn lex_ranges_match_a_filter(members in prop::collection::btree_set("[a-e]{0,3}", 0..60),
                                 lo in "[a-e]{0,2}", hi in "[a-e]{0,2}", lo_ex in any::<bool>(), hi_ex in any::<bool>(),
                                 entries in 0usize..40) {
        let lim = limits(entries, 64);
        let mut z = ZSet::new();
        for m in &members {
            z.insert(m.as_bytes(), 0.0, &lim);
        }
        let bound = |s: &str, ex: bool| if ex { LexBound::Exclusive(Bytes::from(s.to_string())) } else { LexBound::Inclusive(Bytes::from(s.to_string())) };
        let (min, max) = (bound(&lo, lo_ex), bound(&hi, hi_ex));
        let (a, b) = z.lex_ranks(&min, &max);
        let want: Vec<&String> = members.iter().filter(|m| lex_gte_min(m.as_bytes(), &min) && lex_lte_max(m.as_bytes(), &max)).collect();
        let got: Vec<Vec<u8>> = z.iter_from(a, false).take(b - a).map(|(_, m)| m.to_vec()).collect();
        prop_assert_eq!(got, want.iter().map(|m| m.as_bytes().to_vec()).collect::<Vec<_>>());
        prop_assert_eq!(z.lex_ranks(&LexBound::Min, &LexBound::Max), (0, members.len()));
    }
}

#[test]
fn conversion_follows_redis() {
    let d = Encodings::default();
    let mut z = ZSet::new();
    for i in 0..128 {
        assert!(z.insert(format!("m{i}").as_bytes(), i as f64, &d));
    }
    assert_eq!(z.encoding_name(), "listpack");
    assert!(!z.insert(b"m0", 500.0, &d), "updates never convert");
    assert!(z.is_packed());
    assert!(z.insert(b"m128", 0.0, &d));
    assert_eq!(z.encoding_name(), "skiplist");
    let mut long = ZSet::new();
    long.insert(&[b'x'; 65], 1.0, &d);
    assert!(!long.is_packed());
    assert!(!ZSet::with_hint(129, 1, &d).is_packed());
    assert!(!ZSet::with_hint(1, 65, &d).is_packed());
    assert!(ZSet::with_hint(128, 64, &d).is_packed());
    // Shrinking only where a command builds a new set.
    z.remove_ranks(0, 100);
    assert!(!z.is_packed());
    z.shrink_if_small(&d);
    assert!(z.is_packed());
    assert_eq!(z.len(), 29);
    z.check().unwrap();
}

#[test]
fn minus_zero_and_infinities_order_like_redis() {
    let d = Encodings::default();
    for packed in [true, false] {
        let lim = if packed { d } else { limits(0, 64) };
        let mut z = ZSet::new();
        z.insert(b"b", 0.0, &lim);
        z.insert(b"a", -0.0, &lim);
        z.insert(b"inf", f64::INFINITY, &lim);
        z.insert(b"-inf", f64::NEG_INFINITY, &lim);
        let order: Vec<&[u8]> = z.iter().map(|(_, m)| m).collect();
        assert_eq!(order, vec![&b"-inf"[..], b"a", b"b", b"inf"]);
        // -0 over 0 is no change, as Redis compares with ==.
        z.insert(b"b", -0.0, &lim);
        assert!(z.score(b"b").unwrap().is_sign_positive());
        z.check().unwrap();
    }
}

#[test]
fn big_tree_ranks_and_removals() {
    let mut rng = crate::rng::Rng::with_seed(7);
    let lim = limits(0, 64);
    let mut z = ZSet::new();
    let mut model = Model::default();
    for _ in 0..20_000 {
        let m = format!("k{}", rng.next_u64() % 5000).into_bytes();
        let s = (rng.next_u64() % 100) as f64;
        if rng.next_u64().is_multiple_of(3) {
            assert_eq!(z.remove(&m), model.scores.remove(&m));
        } else {
            z.insert(&m, s, &lim);
            model.scores.insert(m, s);
        }
    }
    let snap = z.clone();
    let snap_model = model.clone();
    z.pop(1000, true);
    z.check().unwrap();
    check_against(&snap, &snap_model).unwrap();
    let built = ZSet::from_sorted_tree(
        snap_model
            .sorted()
            .into_iter()
            .map(|(s, m)| (s, Bytes::from(m)))
            .collect(),
    );
    built.check().unwrap();
    assert_eq!(built, snap);
}
