//! The order index of a large sorted set: a persistent B+tree of
//! `(score, member)` items whose inner nodes keep each child's item count, so
//! rank, the i-th item and a range's bounds are O(log n) (Redis's skiplist
//! keeps a span per level for the same reason).
//!
//! Nodes sit behind `Arc`: a clone of the tree is O(1), and a write copies
//! only the nodes on its path that a clone still shares (`Arc::make_mut`).
//! Leaves hold up to [`LEAF_MAX`] items, so the tree costs little more than
//! the items themselves.
//!
//! # Invariants
//!
//! - Items are strictly increasing by [`cmp_item`] from leaf to leaf.
//! - An inner node has `children.len() == counts.len() == seps.len() + 1`;
//!   `counts[i]` is the number of items under `children[i]`; every item under
//!   `children[i]` is below `seps[i]` and every item under `children[i + 1]`
//!   is at least `seps[i]`. A separator may be an item since removed: it
//!   still bounds its neighbours.
//! - Every node but the root holds at least half its maximum; all leaves are
//!   at the same depth.

use std::cmp::Ordering;
use std::sync::Arc;

use triomphe::ThinArc;

/// Most items in a leaf.
#[cfg(not(test))]
pub const LEAF_MAX: usize = 64;
/// Most children of an inner node.
#[cfg(not(test))]
pub const INNER_MAX: usize = 32;
// Tiny nodes under test, so small model tests build deep trees and hit
// every split, merge and re-split.
#[cfg(test)]
pub const LEAF_MAX: usize = 4;
#[cfg(test)]
pub const INNER_MAX: usize = 4;

/// A member's bytes, shared between the member index and the order: one
/// allocation of a count, a length and the bytes, behind a thin pointer, so
/// an order item and a map entry are 16 bytes each (a fat `Arc<[u8]>` made
/// them 24).
#[derive(Clone)]
pub struct MemberBytes(ThinArc<(), u8>);

impl MemberBytes {
    pub fn new(bytes: &[u8]) -> MemberBytes {
        MemberBytes(ThinArc::from_header_and_slice((), bytes))
    }
}

impl std::ops::Deref for MemberBytes {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        &self.0.slice
    }
}

impl std::fmt::Debug for MemberBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self))
    }
}

/// One `(score, member)` pair. Scores are never NaN.
#[derive(Clone, Debug)]
pub struct Item {
    pub score: f64,
    pub member: MemberBytes,
}

/// Redis's order: by score, then by member bytes. `-0` and `0` are equal
/// scores, as in Redis's comparisons.
#[inline]
pub fn cmp_entry(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a_member.cmp(b_member))
}

/// Starts loading every cache line of `items` at once, before a binary
/// search over them: its probes depend on each other, so without this each
/// of a node's four to six lines it reads is a miss waited for in turn.
#[inline]
fn prefetch_all<T>(items: &[T]) {
    let bytes = std::mem::size_of_val(items);
    let base = items.as_ptr() as *const u8;
    for at in (0..bytes).step_by(64) {
        crate::keyspace::champ::prefetch_addr(base.wrapping_add(at));
    }
}

#[inline]
pub fn cmp_item(a: &Item, b: &Item) -> Ordering {
    cmp_entry(a.score, &a.member, b.score, &b.member)
}

#[derive(Clone, Debug)]
enum Node {
    Leaf(Vec<Item>),
    Inner(Inner),
}

#[derive(Clone, Debug)]
struct Inner {
    children: Vec<Arc<Node>>,
    counts: Vec<usize>,
    seps: Vec<Item>,
}

impl Node {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Inner(inner) => inner.counts.iter().sum(),
        }
    }

    /// Entries (items or children) it holds, against its minimum.
    fn width(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Inner(inner) => inner.children.len(),
        }
    }

    fn underfull(&self) -> bool {
        match self {
            Node::Leaf(items) => items.len() < LEAF_MAX / 2,
            Node::Inner(inner) => inner.children.len() < INNER_MAX / 2,
        }
    }
}

/// The ordered items (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct OrderTree {
    root: Option<Arc<Node>>,
    len: usize,
}

impl OrderTree {
    pub fn new() -> OrderTree {
        OrderTree::default()
    }

    /// A tree over items already strictly increasing, built bottom-up with
    /// full nodes (no node is copied or split on the way).
    pub fn from_sorted(items: Vec<Item>) -> OrderTree {
        let len = items.len();
        if len == 0 {
            return OrderTree::new();
        }
        let mut level: Vec<(Item, Arc<Node>, usize)> = Vec::new();
        let mut iter = items.into_iter().peekable();
        for chunk in chunk_sizes(len, LEAF_MAX) {
            let leaf: Vec<Item> = iter.by_ref().take(chunk).collect();
            level.push((leaf[0].clone(), Arc::new(Node::Leaf(leaf)), chunk));
        }
        while level.len() > 1 {
            let mut next = Vec::new();
            let mut rest = level.into_iter();
            for chunk in chunk_sizes(rest.len(), INNER_MAX) {
                let group: Vec<(Item, Arc<Node>, usize)> = rest.by_ref().take(chunk).collect();
                let first = group[0].0.clone();
                let seps = group[1..].iter().map(|(f, _, _)| f.clone()).collect();
                let counts: Vec<usize> = group.iter().map(|(_, _, c)| *c).collect();
                let total = counts.iter().sum();
                let children = group.into_iter().map(|(_, n, _)| n).collect();
                let node = Node::Inner(Inner {
                    children,
                    counts,
                    seps,
                });
                next.push((first, Arc::new(node), total));
            }
            level = next;
        }
        let (_, root, _) = level.pop().expect("one root");
        OrderTree {
            root: Some(root),
            len,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn ptr_eq(&self, other: &OrderTree) -> bool {
        match (&self.root, &other.root) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Adds an item that is not in the tree yet.
    pub fn insert(&mut self, item: Item) {
        self.len += 1;
        let Some(root) = &mut self.root else {
            self.root = Some(Arc::new(Node::Leaf(vec![item])));
            return;
        };
        if let Some((sep, right)) = insert_into(root, item) {
            let left = self.root.take().expect("root present");
            let counts = vec![left.len(), right.len()];
            self.root = Some(Arc::new(Node::Inner(Inner {
                children: vec![left, right],
                counts,
                seps: vec![sep],
            })));
        }
    }

    /// Removes the item equal to `(score, member)`; false if there is none
    /// (then nothing is copied).
    pub fn remove(&mut self, score: f64, member: &[u8]) -> bool {
        let Some(root) = &mut self.root else {
            return false;
        };
        if !contains(root, score, member) {
            return false;
        }
        remove_from(root, score, member);
        self.len -= 1;
        self.shrink_root();
        true
    }

    /// Removes the item equal to `(score, member)`, which the caller knows
    /// is present (the member map holds it): one descent, without the
    /// presence check [`OrderTree::remove`] makes first.
    pub fn remove_present(&mut self, score: f64, member: &[u8]) {
        let root = self.root.as_mut().expect("the item is present");
        debug_assert!(contains(root, score, member), "the item is present");
        remove_from(root, score, member);
        self.len -= 1;
        self.shrink_root();
    }

    /// Removes and returns the item at rank `index`: one descent by the
    /// counts, no comparison of items (pops and rank ranges).
    pub fn remove_at(&mut self, index: usize) -> Option<Item> {
        if index >= self.len {
            return None;
        }
        let root = self.root.as_mut()?;
        let item = remove_rank(root, index);
        self.len -= 1;
        self.shrink_root();
        Some(item)
    }

    /// A root left with one child hands its place to it; an empty leaf
    /// root goes.
    fn shrink_root(&mut self) {
        loop {
            match self.root.as_deref() {
                Some(Node::Inner(inner)) if inner.children.len() == 1 => {
                    let child = inner.children[0].clone();
                    self.root = Some(child);
                }
                Some(Node::Leaf(items)) if items.is_empty() => self.root = None,
                _ => break,
            }
        }
    }

    /// How many items satisfy `before`, which must hold for a prefix of the
    /// order and fail for the rest (a partition point, in O(log n)).
    pub fn partition_point(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut node = match &self.root {
            Some(root) => &**root,
            None => return 0,
        };
        let mut skipped = 0;
        loop {
            match node {
                Node::Leaf(items) => {
                    prefetch_all(items);
                    return skipped + items.partition_point(|it| before(it.score, &it.member));
                }
                Node::Inner(inner) => {
                    prefetch_all(&inner.seps);
                    // Items under the children left of a passing separator all pass.
                    let k = inner.seps.partition_point(|s| before(s.score, &s.member));
                    skipped += inner.counts[..k].iter().sum::<usize>();
                    node = &inner.children[k];
                }
            }
        }
    }

    /// The 0-based rank of `(score, member)` among the items below it.
    pub fn rank(&self, score: f64, member: &[u8]) -> usize {
        self.partition_point(|s, m| cmp_entry(s, m, score, member) == Ordering::Less)
    }

    /// The item at rank `index`.
    pub fn nth(&self, index: usize) -> Option<&Item> {
        if index >= self.len {
            return None;
        }
        let (leaf, at) = leaf_at(self.root.as_deref()?, index);
        leaf.get(at)
    }

    /// The items from rank `start` on, ascending.
    pub fn iter_from(&self, start: usize) -> Iter<'_> {
        Iter::new(self, start, false)
    }

    /// The items from rank `start` down to rank 0, descending.
    pub fn iter_rev_from(&self, start: usize) -> Iter<'_> {
        Iter::new(self, start, true)
    }

    /// Checks the invariants in the module docs; for tests.
    pub fn check(&self) -> Result<(), String> {
        let Some(root) = &self.root else {
            return if self.len == 0 {
                Ok(())
            } else {
                Err("empty tree with a length".into())
            };
        };
        let mut leaf_depth = None;
        let n = check_node(root, 0, true, None, None, &mut leaf_depth)?;
        if n != self.len {
            return Err(format!("length {} but {} items", self.len, n));
        }
        let items: Vec<&Item> = self.iter_from(0).collect();
        if items
            .windows(2)
            .any(|w| cmp_item(w[0], w[1]) != Ordering::Less)
        {
            return Err("items out of order".into());
        }
        Ok(())
    }
}

/// Splits `n` items into chunks of at most `max`, as even as possible, none
/// under half of `max` unless there is only one.
fn chunk_sizes(n: usize, max: usize) -> impl Iterator<Item = usize> {
    let chunks = n.div_ceil(max).max(1);
    let base = n / chunks;
    let extra = n % chunks;
    (0..chunks).map(move |i| base + usize::from(i < extra))
}

fn contains(mut node: &Node, score: f64, member: &[u8]) -> bool {
    loop {
        match node {
            Node::Leaf(items) => {
                return items
                    .binary_search_by(|it| cmp_entry(it.score, &it.member, score, member))
                    .is_ok()
            }
            Node::Inner(inner) => node = &inner.children[child_for(inner, score, member)],
        }
    }
}

/// The child whose range holds `(score, member)`.
#[inline]
fn child_for(inner: &Inner, score: f64, member: &[u8]) -> usize {
    inner
        .seps
        .partition_point(|s| cmp_entry(s.score, &s.member, score, member) != Ordering::Greater)
}

/// Inserts below `node`; a node that overflowed splits, and the new right
/// half comes back with its separator for the parent.
fn insert_into(node: &mut Arc<Node>, item: Item) -> Option<(Item, Arc<Node>)> {
    match Arc::make_mut(node) {
        Node::Leaf(items) => {
            let at = items.partition_point(|it| cmp_item(it, &item) == Ordering::Less);
            items.insert(at, item);
            if items.len() <= LEAF_MAX {
                return None;
            }
            let right = items.split_off(items.len() / 2);
            Some((right[0].clone(), Arc::new(Node::Leaf(right))))
        }
        Node::Inner(inner) => {
            let i = child_for(inner, item.score, &item.member);
            inner.counts[i] += 1;
            let (sep, right) = insert_into(&mut inner.children[i], item)?;
            let moved = right.len();
            inner.counts[i] -= moved;
            inner.children.insert(i + 1, right);
            inner.counts.insert(i + 1, moved);
            inner.seps.insert(i, sep);
            if inner.children.len() <= INNER_MAX {
                return None;
            }
            Some(split_inner(inner))
        }
    }
}

/// Moves the upper half of an overfull inner node to a new node.
fn split_inner(inner: &mut Inner) -> (Item, Arc<Node>) {
    let mid = inner.children.len() / 2;
    let children = inner.children.split_off(mid);
    let counts = inner.counts.split_off(mid);
    let mut seps = inner.seps.split_off(mid - 1);
    let up = seps.remove(0);
    let right = Node::Inner(Inner {
        children,
        counts,
        seps,
    });
    (up, Arc::new(right))
}

/// Removes an item known to be present below `node`, then mends a child
/// left under half full by merging it with a neighbour (and splitting the
/// result again if it is too big).
fn remove_from(node: &mut Arc<Node>, score: f64, member: &[u8]) {
    match Arc::make_mut(node) {
        Node::Leaf(items) => {
            if let Ok(at) =
                items.binary_search_by(|it| cmp_entry(it.score, &it.member, score, member))
            {
                items.remove(at);
            }
        }
        Node::Inner(inner) => {
            let i = child_for(inner, score, member);
            inner.counts[i] -= 1;
            remove_from(&mut inner.children[i], score, member);
            if inner.children[i].underfull() && inner.children.len() > 1 {
                rebalance(inner, i);
            }
        }
    }
}

/// Removes the item at rank `index` below `node` (which holds more than
/// `index` items), mending underfull children as [`remove_from`] does.
fn remove_rank(node: &mut Arc<Node>, mut index: usize) -> Item {
    match Arc::make_mut(node) {
        Node::Leaf(items) => items.remove(index),
        Node::Inner(inner) => {
            let mut i = 0;
            while index >= inner.counts[i] {
                index -= inner.counts[i];
                i += 1;
            }
            inner.counts[i] -= 1;
            let item = remove_rank(&mut inner.children[i], index);
            if inner.children[i].underfull() && inner.children.len() > 1 {
                rebalance(inner, i);
            }
            item
        }
    }
}

/// Merges child `i` with a neighbour; splits the merged node in two again
/// when it would overflow, which evens the two out.
fn rebalance(inner: &mut Inner, i: usize) {
    let left = if i + 1 < inner.children.len() {
        i
    } else {
        i - 1
    };
    let right_node = inner.children.remove(left + 1);
    let right_count = inner.counts.remove(left + 1);
    let sep = inner.seps.remove(left);
    inner.counts[left] += right_count;
    let merged = Arc::make_mut(&mut inner.children[left]);
    let right_node = Arc::try_unwrap(right_node).unwrap_or_else(|shared| (*shared).clone());
    let split = match (merged, right_node) {
        (Node::Leaf(a), Node::Leaf(b)) => {
            a.extend(b);
            (a.len() > LEAF_MAX).then(|| {
                let right = a.split_off(a.len() / 2);
                (right[0].clone(), Arc::new(Node::Leaf(right)))
            })
        }
        (Node::Inner(a), Node::Inner(b)) => {
            a.children.extend(b.children);
            a.counts.extend(b.counts);
            a.seps.push(sep);
            a.seps.extend(b.seps);
            (a.children.len() > INNER_MAX).then(|| split_inner(a))
        }
        _ => unreachable!("siblings are at the same depth"),
    };
    if let Some((sep, right)) = split {
        let moved = right.len();
        inner.counts[left] -= moved;
        inner.children.insert(left + 1, right);
        inner.counts.insert(left + 1, moved);
        inner.seps.insert(left, sep);
    }
}

fn check_node(
    node: &Node,
    depth: usize,
    is_root: bool,
    low: Option<&Item>,
    high: Option<&Item>,
    leaf_depth: &mut Option<usize>,
) -> Result<usize, String> {
    if !is_root && node.underfull() {
        return Err(format!("underfull node of width {}", node.width()));
    }
    match node {
        Node::Leaf(items) => {
            if items.len() > LEAF_MAX {
                return Err("overfull leaf".into());
            }
            if *leaf_depth.get_or_insert(depth) != depth {
                return Err("leaves at different depths".into());
            }
            for it in items {
                if low.is_some_and(|l| cmp_item(it, l) == Ordering::Less)
                    || high.is_some_and(|h| cmp_item(it, h) != Ordering::Less)
                {
                    return Err("item outside its separators".into());
                }
            }
            Ok(items.len())
        }
        Node::Inner(inner) => {
            if inner.children.len() > INNER_MAX
                || inner.counts.len() != inner.children.len()
                || inner.seps.len() + 1 != inner.children.len()
            {
                return Err("inner node shape".into());
            }
            let mut total = 0;
            for (i, child) in inner.children.iter().enumerate() {
                let lo = if i == 0 {
                    low
                } else {
                    Some(&inner.seps[i - 1])
                };
                let hi = inner.seps.get(i).or(high);
                let n = check_node(child, depth + 1, false, lo, hi, leaf_depth)?;
                if n != inner.counts[i] {
                    return Err(format!("count {} for {} items", inner.counts[i], n));
                }
                total += n;
            }
            Ok(total)
        }
    }
}

/// The leaf holding rank `index` below `node` (which holds more than
/// `index` items), and `index`'s position in it.
fn leaf_at(mut node: &Node, mut index: usize) -> (&[Item], usize) {
    loop {
        match node {
            Node::Leaf(items) => return (items, index),
            Node::Inner(inner) => {
                let mut i = 0;
                while index >= inner.counts[i] {
                    index -= inner.counts[i];
                    i += 1;
                }
                node = &inner.children[i];
            }
        }
    }
}

/// A walk over the items from a rank, up or down. It keeps no path: the
/// next leaf is found by a fresh descent to the rank after this one's, one
/// descent per leaf of up to [`LEAF_MAX`] items, so a walk allocates nothing.
pub struct Iter<'a> {
    root: Option<&'a Node>,
    leaf: &'a [Item],
    /// The rank of `leaf[0]`.
    leaf_rank: usize,
    /// Next position in `leaf` (descending: one past it).
    pos: usize,
    rev: bool,
    remaining: usize,
}

impl<'a> Iter<'a> {
    fn new(tree: &'a OrderTree, start: usize, rev: bool) -> Iter<'a> {
        let mut it = Iter {
            root: tree.root.as_deref(),
            leaf: &[],
            leaf_rank: 0,
            pos: 0,
            rev,
            remaining: 0,
        };
        let Some(root) = it.root else {
            return it;
        };
        if start >= tree.len {
            return it;
        }
        let (leaf, at) = leaf_at(root, start);
        it.leaf = leaf;
        it.leaf_rank = start - at;
        it.pos = if rev { at + 1 } else { at };
        it.remaining = if rev { start + 1 } else { tree.len - start };
        it
    }

    /// Moves to the next leaf in the walk's direction (there is one while
    /// `remaining` is not 0).
    fn next_leaf(&mut self) -> bool {
        let Some(root) = self.root else {
            return false;
        };
        let rank = if self.rev {
            match self.leaf_rank.checked_sub(1) {
                Some(r) => r,
                None => return false,
            }
        } else {
            self.leaf_rank + self.leaf.len()
        };
        let (leaf, at) = leaf_at(root, rank);
        self.leaf = leaf;
        self.leaf_rank = rank - at;
        self.pos = if self.rev { leaf.len() } else { 0 };
        true
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Item;

    fn next(&mut self) -> Option<&'a Item> {
        if self.remaining == 0 {
            return None;
        }
        if self.rev {
            if self.pos == 0 && !self.next_leaf() {
                return None;
            }
            self.pos -= 1;
        } else if self.pos == self.leaf.len() && !self.next_leaf() {
            return None;
        }
        let item = &self.leaf[self.pos];
        if !self.rev {
            self.pos += 1;
        }
        self.remaining -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}
