//! The difference between two versions of a map, found by pointer equality:
//! what an incremental snapshot writes.
//!
//! Two versions of a map that descend from one another share every subtree no
//! write touched since they parted (path copying copies only the nodes on the
//! path to a change). So the walk compares node pointers first and skips a
//! shared subtree without reading it: its cost follows the number of changed
//! paths, not the size of the map. Where the two nodes differ, it merges their
//! slots bit by bit; an item present in both is compared with the caller's
//! `same` (identity, for records), so an unchanged record costs one compare.

use super::{Champ, MapItem};
use super::{Slot, TrieNode, BUCKET_LEVEL};

/// One difference of the newer map against the base.
#[derive(Debug, PartialEq, Eq)]
pub enum Change<'a, T> {
    /// The newer map holds this item and the base lacks its key or holds a
    /// different item under it.
    Set(&'a T),
    /// The base holds this item and the newer map lacks its key.
    Removed(&'a T),
}

impl<T: MapItem> Champ<T> {
    /// Reports every difference of `self` against `base` in no set order,
    /// each key at most once. `same` tells whether two items under one key
    /// are the same; subtrees the two maps share are skipped unread.
    pub fn diff<'a>(
        &'a self,
        base: &'a Champ<T>,
        same: impl Fn(&T, &T) -> bool,
        mut emit: impl FnMut(Change<'a, T>),
    ) {
        diff_nodes(&self.root, &base.root, 0, &same, &mut emit);
    }
}

fn diff_nodes<'a, T: MapItem>(
    new: &'a TrieNode<T>,
    old: &'a TrieNode<T>,
    level: u32,
    same: &impl Fn(&T, &T) -> bool,
    emit: &mut impl FnMut(Change<'a, T>),
) {
    if new.ptr_eq(old) {
        return;
    }
    if level == BUCKET_LEVEL {
        // Collision buckets are unordered lists of items with one hash.
        let olds: Vec<&T> = items_of(old.slots()).collect();
        for n in items_of(new.slots()) {
            match olds.iter().find(|o| o.key() == n.key()) {
                Some(o) if same(n, o) => {}
                _ => emit(Change::Set(n)),
            }
        }
        for o in olds {
            if !items_of(new.slots()).any(|n| n.key() == o.key()) {
                emit(Change::Removed(o));
            }
        }
        return;
    }
    let (new_map, old_map) = (new.bitmap(), old.bitmap());
    let mut bits = new_map | old_map;
    let (mut at_new, mut at_old) = (0, 0);
    while bits != 0 {
        let bit = bits & bits.wrapping_neg();
        bits &= bits - 1;
        let n = (new_map & bit != 0).then(|| {
            at_new += 1;
            &new.slots()[at_new - 1]
        });
        let o = (old_map & bit != 0).then(|| {
            at_old += 1;
            &old.slots()[at_old - 1]
        });
        match (n, o) {
            (Some(n), None) => each_item(n, &mut |t| emit(Change::Set(t))),
            (None, Some(o)) => each_item(o, &mut |t| emit(Change::Removed(t))),
            (Some(Slot::Child(n)), Some(Slot::Child(o))) => diff_nodes(n, o, level + 1, same, emit),
            (Some(Slot::Item(n)), Some(Slot::Item(o))) => {
                if n.key() != o.key() {
                    emit(Change::Set(n));
                    emit(Change::Removed(o));
                } else if !same(n, o) {
                    emit(Change::Set(n));
                }
            }
            (Some(Slot::Item(n)), Some(old_child @ Slot::Child(_))) => {
                // The key may still sit inside the old subtree.
                let mut found = false;
                each_item(old_child, &mut |o| {
                    if o.key() == n.key() {
                        found = true;
                        if !same(n, o) {
                            emit(Change::Set(n));
                        }
                    } else {
                        emit(Change::Removed(o));
                    }
                });
                if !found {
                    emit(Change::Set(n));
                }
            }
            (Some(new_child @ Slot::Child(_)), Some(Slot::Item(o))) => {
                let mut found = false;
                each_item(new_child, &mut |n| {
                    if n.key() == o.key() {
                        found = true;
                        if !same(n, o) {
                            emit(Change::Set(n));
                        }
                    } else {
                        emit(Change::Set(n));
                    }
                });
                if !found {
                    emit(Change::Removed(o));
                }
            }
            (None, None) => unreachable!("the bit comes from one of the bitmaps"),
        }
    }
}

fn items_of<T>(slots: &[Slot<T>]) -> impl Iterator<Item = &T> {
    slots.iter().filter_map(|s| match s {
        Slot::Item(t) => Some(t),
        Slot::Child(_) => None,
    })
}

/// Every item at or below a slot.
fn each_item<'a, T>(slot: &'a Slot<T>, f: &mut impl FnMut(&'a T)) {
    match slot {
        Slot::Item(t) => f(t),
        Slot::Child(c) => {
            for s in c.slots() {
                each_item(s, f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap};

    type Pair = (Bytes, Bytes);

    fn pair(k: u16, v: u16) -> Pair {
        (
            Bytes::from(format!("key:{k}")),
            Bytes::from(format!("v{v}")),
        )
    }

    /// The differences as a sorted map: key → Some(new value) or None (removed).
    fn changes(new: &Champ<Pair>, base: &Champ<Pair>) -> BTreeMap<Bytes, Option<Bytes>> {
        let mut out = BTreeMap::new();
        new.diff(
            base,
            |a, b| a.1 == b.1,
            |c| {
                let (k, v) = match c {
                    Change::Set(p) => (p.0.clone(), Some(p.1.clone())),
                    Change::Removed(p) => (p.0.clone(), None),
                };
                assert!(out.insert(k, v).is_none(), "a key reported twice");
            },
        );
        out
    }

    fn expected(
        new: &HashMap<Bytes, Bytes>,
        base: &HashMap<Bytes, Bytes>,
    ) -> BTreeMap<Bytes, Option<Bytes>> {
        let mut out = BTreeMap::new();
        for (k, v) in new {
            if base.get(k) != Some(v) {
                out.insert(k.clone(), Some(v.clone()));
            }
        }
        for k in base.keys() {
            if !new.contains_key(k) {
                out.insert(k.clone(), None);
            }
        }
        out
    }

    #[test]
    fn a_clone_differs_in_nothing_and_costs_no_reads() {
        let map: Champ<Pair> = (0..10_000).map(|i| pair(i, i)).collect();
        let base = map.clone();
        let mut calls = 0;
        map.diff(&base, |_, _| unreachable!("shared root"), |_| calls += 1);
        assert_eq!(calls, 0);
    }

    #[test]
    fn only_changed_paths_are_compared() {
        let base: Champ<Pair> = (0..50_000).map(|i| pair(i, i)).collect();
        let mut map = base.clone();
        map.insert(pair(7, 70));
        map.remove(b"key:9");
        map.insert(pair(60_000, 1));
        let compared = std::cell::Cell::new(0);
        let found = {
            let mut out = Vec::new();
            map.diff(
                &base,
                |a, b| {
                    compared.set(compared.get() + 1);
                    a.1 == b.1
                },
                |c| out.push(c),
            );
            out.len()
        };
        assert_eq!(found, 3);
        // Three paths of a few nodes of up to 32 slots each, not 50,000 items.
        assert!(compared.get() < 3 * 32 * 4, "compared {}", compared.get());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u16),
        Remove(u16),
        Save,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            5 => (0u16..400, 0u16..4).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0u16..400).prop_map(Op::Remove),
            1 => Just(Op::Save),
        ]
    }

    proptest! {
        /// After any writes since the last "save" (a kept clone), the diff
        /// is exactly what a model of both versions says changed.
        #[test]
        fn diff_matches_the_model(ops in proptest::collection::vec(op(), 1..500)) {
            let mut map: Champ<Pair> = Champ::new();
            let mut model: HashMap<Bytes, Bytes> = HashMap::new();
            let mut base = (map.clone(), model.clone());
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let p = pair(k, v);
                        model.insert(p.0.clone(), p.1.clone());
                        map.insert(p);
                    }
                    Op::Remove(k) => {
                        let p = pair(k, 0);
                        model.remove(&p.0);
                        map.remove(&p.0);
                    }
                    Op::Save => {
                        prop_assert_eq!(changes(&map, &base.0), expected(&model, &base.1));
                        base = (map.clone(), model.clone());
                    }
                }
            }
            prop_assert_eq!(changes(&map, &base.0), expected(&model, &base.1));
            // And against an unrelated map built from scratch.
            let rebuilt: Champ<Pair> = base.1.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            prop_assert_eq!(changes(&map, &rebuilt), expected(&model, &base.1));
        }
    }

    /// Keys whose hashes collide in full, to reach the bucket level.
    #[derive(Clone, Debug)]
    struct Colliding(Bytes, u8);

    impl MapItem for Colliding {
        fn key(&self) -> &[u8] {
            &self.0
        }
        fn hash_of(key: &[u8]) -> u64 {
            (key.first().copied().unwrap_or(0) % 2) as u64
        }
    }

    #[test]
    fn collision_buckets_diff_item_by_item() {
        let item = |k: &str, v: u8| Colliding(Bytes::copy_from_slice(k.as_bytes()), v);
        let base: Champ<Colliding> = ["a", "c", "e", "b"].iter().map(|k| item(k, 0)).collect();
        let mut map = base.clone();
        map.insert(item("c", 1));
        map.remove(b"e");
        map.insert(item("g", 0));
        let mut seen: Vec<(String, bool)> = Vec::new();
        map.diff(
            &base,
            |a, b| a.1 == b.1,
            |c| match c {
                Change::Set(t) => seen.push((String::from_utf8_lossy(&t.0).into(), true)),
                Change::Removed(t) => seen.push((String::from_utf8_lossy(&t.0).into(), false)),
            },
        );
        seen.sort();
        assert_eq!(
            seen,
            vec![("c".into(), true), ("e".into(), false), ("g".into(), true)]
        );
    }
}
