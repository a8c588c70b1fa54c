//! The list against `std::collections::VecDeque`: random sequences of every
//! operation, with clones taken along the way that must keep showing the
//! model's state at the time they were taken.

use std::collections::VecDeque;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    PushFront(Vec<u8>),
    PushBack(Vec<u8>),
    PopFront,
    PopBack,
    Get(usize),
    Set(usize, Vec<u8>),
    Insert(usize, Vec<u8>),
    Remove(usize),
    RemoveMatches(Vec<u8>, usize, bool),
    Trim(usize, usize),
    DropFront(usize),
    Truncate(usize),
    Range(usize, usize),
    Clone,
    DropClone,
    /// Through a packed record's bytes and back, when the list has them.
    Repack,
}

fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(prop::sample::select(vec![b'a', b'b', b'c']), 0..3),
        1 => prop::collection::vec(any::<u8>(), 100..300),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let ix = || 0usize..200;
    prop_oneof![
        6 => elem().prop_map(Op::PushFront),
        6 => elem().prop_map(Op::PushBack),
        3 => Just(Op::PopFront),
        3 => Just(Op::PopBack),
        2 => ix().prop_map(Op::Get),
        2 => (ix(), elem()).prop_map(|(i, e)| Op::Set(i, e)),
        3 => (ix(), elem()).prop_map(|(i, e)| Op::Insert(i, e)),
        2 => ix().prop_map(Op::Remove),
        1 => (elem(), 0usize..5, any::<bool>()).prop_map(|(e, n, b)| Op::RemoveMatches(e, n, b)),
        1 => (ix(), ix()).prop_map(|(a, b)| Op::Trim(a, a + b)),
        1 => (0usize..20).prop_map(Op::DropFront),
        1 => ix().prop_map(Op::Truncate),
        2 => (ix(), ix()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::Clone),
        1 => Just(Op::DropClone),
        1 => Just(Op::Repack),
    ]
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        (1i64..6).prop_map(Fill),
        (-5i64..0).prop_map(Fill),
        Just(Fill(0))
    ]
}

fn contents(list: &List) -> Vec<Vec<u8>> {
    list.iter().map(<[u8]>::to_vec).collect()
}

fn check(list: &List, model: &VecDeque<Vec<u8>>) {
    let want: Vec<Vec<u8>> = model.iter().cloned().collect();
    assert_eq!(list.len(), model.len());
    assert_eq!(contents(list), want);
    let mut back: Vec<Vec<u8>> = list.iter().rev().map(<[u8]>::to_vec).collect();
    back.reverse();
    assert_eq!(back, want);
    assert_eq!(list.front(), model.front().map(Vec::as_slice));
    assert_eq!(list.back(), model.back().map(Vec::as_slice));
}

fn run(ops: Vec<Op>, fill: Fill) {
    let mut list = List::new();
    let mut model: VecDeque<Vec<u8>> = VecDeque::new();
    let mut clones: Vec<(List, VecDeque<Vec<u8>>)> = Vec::new();
    for op in ops {
        let len = model.len();
        match op {
            Op::PushFront(e) => {
                list.push_front(&e, fill);
                model.push_front(e);
            }
            Op::PushBack(e) => {
                list.push_back(&e, fill);
                model.push_back(e);
            }
            Op::PopFront => assert_eq!(list.pop_front().map(|b| b.to_vec()), model.pop_front()),
            Op::PopBack => assert_eq!(list.pop_back().map(|b| b.to_vec()), model.pop_back()),
            Op::Get(i) => assert_eq!(list.get(i), model.get(i).map(Vec::as_slice)),
            Op::Set(i, e) if i < len => {
                list.set(i, &e, fill);
                model[i] = e;
            }
            Op::Insert(i, e) if i <= len => {
                list.insert(i, &e, fill);
                model.insert(i, e);
            }
            Op::Remove(i) if i < len => {
                list.remove(i);
                model.remove(i);
            }
            Op::RemoveMatches(e, limit, from_back) => {
                let mut hits: Vec<usize> = (0..len).filter(|&i| model[i] == e).collect();
                if from_back {
                    hits.reverse();
                }
                hits.truncate(limit);
                hits.sort_unstable_by(|a, b| b.cmp(a));
                for &i in &hits {
                    model.remove(i);
                }
                assert_eq!(list.remove_matches(&e, limit, from_back), hits.len());
            }
            Op::Trim(from, to) => {
                list.trim(from, to);
                let to = to.min(len);
                model = if from < to {
                    model.range(from..to).cloned().collect()
                } else {
                    VecDeque::new()
                };
            }
            Op::DropFront(n) => {
                list.drop_front(n);
                model.drain(..n.min(len));
            }
            Op::Truncate(n) => {
                list.truncate(n);
                model.truncate(n);
            }
            Op::Range(a, b) => {
                let (from, to) = (a.min(len), (a + b).min(len));
                let got: Vec<Vec<u8>> = list.range(from, to).map(<[u8]>::to_vec).collect();
                let want: Vec<Vec<u8>> = model.range(from..to).cloned().collect();
                assert_eq!(got, want);
                let mut back: Vec<Vec<u8>> =
                    list.range(from, to).rev().map(<[u8]>::to_vec).collect();
                back.reverse();
                assert_eq!(back, want);
                // Backwards from the end of the range, then forwards again
                // from the middle: both walks meet in any chunk.
                let mut it = list.range(from, to);
                let half = (to - from) / 2;
                let tail: Vec<Vec<u8>> = it.by_ref().rev().take(half).map(<[u8]>::to_vec).collect();
                let head: Vec<Vec<u8>> = it.map(<[u8]>::to_vec).collect();
                assert_eq!(head.len() + tail.len(), want.len());
                assert_eq!(head[..], want[..head.len()]);
                assert!(tail.iter().rev().eq(want[head.len()..].iter()));
            }
            Op::Clone => clones.push((list.clone(), model.clone())),
            Op::DropClone => {
                clones.pop();
            }
            Op::Repack => {
                if let Some(bytes) = list.packed_bytes() {
                    assert_eq!(list.chunk_count(), 1);
                    list = List::from_packed_bytes(bytes);
                } else {
                    assert!(list.is_empty() || list.chunk_count() > 1);
                }
            }
            _ => {}
        }
        check(&list, &model);
    }
    for (clone, at_clone) in &clones {
        check(clone, at_clone);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn behaves_as_a_deque_and_clones_stay_put(
        ops in prop::collection::vec(op(), 0..300),
        fill in fill(),
    ) {
        run(ops, fill);
    }
}

#[test]
fn chunks_follow_the_fill() {
    let by_count = List::from_elems((0..100).map(|i| i.to_string()), Fill(4));
    assert_eq!(by_count.chunk_count(), 25);
    assert!(by_count.chunks().all(|c| c.len() == 4));
    // 8 KB chunks: a 3-byte element costs 5 bytes, so 1638 to a chunk.
    let by_bytes = List::from_elems((0..10_000).map(|_| "abc"), Fill::DEFAULT);
    assert_eq!(by_bytes.chunks().next().unwrap().len(), 8192 / 5);
    // An element larger than a chunk sits alone.
    let mut big = List::from_elems(["a", "b"], Fill(-1));
    big.push_back(&[0; 5000], Fill(-1));
    big.push_back(b"c", Fill(-1));
    assert_eq!(big.chunks().map(|c| c.len()).collect::<Vec<_>>(), [2, 1, 1]);
}

#[test]
fn an_edit_copies_only_what_a_clone_shares() {
    let mut list = List::from_elems((0..10_000).map(|i| i.to_string()), Fill(-1));
    let snapshot = list.clone();
    assert!(list.ptr_eq(&snapshot));
    list.push_back(b"x", Fill(-1));
    assert!(!list.ptr_eq(&snapshot));
    let Repr::Many(a) = &list.0 else {
        panic!("many chunks")
    };
    let Repr::Many(b) = &snapshot.0 else {
        panic!("many chunks")
    };
    // Every chunk between the ends is still shared.
    let shared = a
        .middle
        .iter()
        .zip(b.middle.iter())
        .filter(|(x, y)| Arc::ptr_eq(x, y))
        .count();
    assert!(shared > 0);
    assert_eq!(shared, b.middle.len());
    assert_eq!(snapshot.len(), 10_000);
    assert_eq!(snapshot.back(), Some(&b"9999"[..]));
}

#[test]
fn a_small_list_is_compact() {
    let list = List::from_elems(["a", "bb", "ccc", "dddd", "eeeee"], Fill::DEFAULT);
    assert_eq!(list.chunk_count(), 1);
    // 15 bytes of elements plus two length bytes each.
    assert_eq!(list.chunk(0).byte_len(), 25);
}
