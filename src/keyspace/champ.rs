//! A persistent hash map sized to its contents: the map behind every database,
//! and behind hashes and sets that outgrew their flat encodings.
//!
//! # Shape
//!
//! A hash-array-mapped trie over a keyed 64-bit hash. A node holds a 32-bit
//! bitmap and an exactly sized array of slots, one per set bit, each either an
//! item or a child node; level `L` reads 5 bits of the hash starting from the
//! most significant end, the thirteenth level the last 4 bits, and a fourteenth
//! level is a bucket of items whose full hashes collide. Reading the hash from
//! its top means a walk in slot order visits items in ascending hash order,
//! which gives SCAN a cursor that is simply "the next hash to visit".
//!
//! Every node records how many items its subtree holds, so `len` is O(1) and the
//! i-th item is found in O(depth): uniform random picks without a walk.
//!
//! # Sharing
//!
//! Nodes sit behind `Arc`. **A node only this map owns (count 1) is changed in
//! place; a node a clone still shares is copied first, and with it only the path
//! from the root to the change (`Arc::make_mut`).** So `clone` is O(1), a clone
//! never sees later writes, and the writer pays for a copy only on the first
//! write to a node after a snapshot took it.
//!
//! # Canonical form
//!
//! Below the root, no node holds a single item and nothing else: removal folds
//! such a node back into its parent's slot (as CHAMP does), so the shape of the
//! trie depends only on the set of keys, and depth stays minimal.

use std::hash::BuildHasher;
use std::ops::ControlFlow;
use std::sync::OnceLock;

pub use diff::Change;
pub(crate) use node::prefetch_addr;
use node::Node;

mod diff;
mod node;

/// An item the map stores: it carries its own key.
pub trait MapItem: Clone {
    fn key(&self) -> &[u8];

    /// Starts loading the memory a key comparison reads (see
    /// [`Champ::prefetch`]); nothing by default.
    #[inline]
    fn prefetch(&self) {}

    /// The hash that places a key; tests override it to force collisions.
    #[inline]
    fn hash_of(key: &[u8]) -> u64 {
        hash_key(key)
    }
}

impl MapItem for bytes::Bytes {
    fn key(&self) -> &[u8] {
        self
    }

    /// The member's bytes, which a comparison reads (their own allocation).
    #[inline]
    fn prefetch(&self) {
        prefetch_addr(self.as_ptr());
    }
}

impl MapItem for (bytes::Bytes, bytes::Bytes) {
    fn key(&self) -> &[u8] {
        &self.0
    }

    #[inline]
    fn prefetch(&self) {
        prefetch_addr(self.0.as_ptr());
    }
}

/// Bits of the hash read per level, and the levels that read them.
const BITS: u32 = 5;
const FULL_LEVELS: u32 = 12;
/// The level that is a collision bucket (all 64 bits consumed).
const BUCKET_LEVEL: u32 = FULL_LEVELS + 1;

/// The process-wide hash of a key, keyed by a seed drawn at start-up so that
/// nobody outside can pick keys that collide (as Redis seeds its SipHash).
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    static STATE: OnceLock<foldhash::fast::FixedState> = OnceLock::new();
    STATE
        .get_or_init(|| {
            foldhash::fast::FixedState::with_seed(crate::rng::Rng::from_entropy().next_u64())
        })
        .hash_one(key)
}

/// The slot index bits of `hash` at `level`.
#[inline]
fn chunk(hash: u64, level: u32) -> u32 {
    if level < FULL_LEVELS {
        ((hash >> (64 - BITS * (level + 1))) & 31) as u32
    } else {
        (hash & 15) as u32
    }
}

/// The hash bits that `chunk` reads at `level`, holding `c`.
#[inline]
fn place(c: u32, level: u32) -> u64 {
    if level < FULL_LEVELS {
        (c as u64) << (64 - BITS * (level + 1))
    } else {
        c as u64
    }
}

/// A draw in `0..n` from the high bits of `r` (a multiply, not a division).
#[inline]
fn below(r: u64, n: usize) -> usize {
    (((r >> 32) * n as u64) >> 32) as usize
}

/// `bitmap` without its `n` lowest set bits: the chunks of a node's slots
/// from the `n`-th on.
#[inline]
fn from_nth(mut bitmap: u32, n: usize) -> u32 {
    for _ in 0..n {
        bitmap &= bitmap - 1;
    }
    bitmap
}

/// A sampling descent in progress ([`Champ::sample_step`]): kept between
/// calls as a path only, never as a pointer into a map that may change in
/// between.
#[derive(Debug, Clone, Copy, Default)]
pub struct Descent {
    prefix: u64,
    levels: u32,
    /// The random draw that picks the next slot.
    r: u64,
}

impl Descent {
    /// A descent from the root, its slots picked by `r`.
    pub fn new(r: u64) -> Descent {
        Descent {
            prefix: 0,
            levels: 0,
            r,
        }
    }
}

/// Where [`Champ::sample`] found an item: the chunks of the slots its
/// descent took (the item's hash prefix) and how many levels it read.
/// Following it again costs no key read and no hashing. An item keeps its
/// path until an insert pushes it a level down (a new key in its slot) or a
/// removal folds it a level up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Path {
    prefix: u64,
    levels: u32,
    /// The item's index in a collision bucket (whose items share one hash).
    index: u32,
}

#[derive(Clone)]
enum Slot<T> {
    Item(T),
    Child(Node<Slot<T>>),
}

impl<T> Slot<T> {
    /// Items below the slot: what the node keeps as the slot's weight.
    fn weight(&self) -> u32 {
        match self {
            Slot::Item(_) => 1,
            Slot::Child(c) => c.len(),
        }
    }
}

// A slot holding a record (or a child) stays two words.
const _: () = assert!(std::mem::size_of::<Slot<super::Record>>() == 16);

/// A node from its slots, weighing each.
fn node_of<T>(bitmap: u32, len: u32, slots: Vec<Slot<T>>) -> TrieNode<T> {
    let weights: Vec<u32> = slots.iter().map(Slot::weight).collect();
    Node::new(bitmap, len, slots, &weights)
}

type TrieNode<T> = Node<Slot<T>>;

/// Starts loading the slots where the one for `chunk` probably lies, before
/// the node's bitmap tells exactly which it is, so that the misses on the
/// header and on the slot overlap instead of following each other. Hashes
/// are uniform, so a node's slots spread evenly over the 32 chunks: a full
/// node (the upper levels of a large map) holds it at index `chunk`, a node
/// about 60 % or 40 % full (the level where most keys of a map of a million
/// or a few hundred thousand sit) near `chunk * 5 / 8` or `chunk * 3 / 8`.
/// A small node lies in the header's own lines. A chained lookup at 1M keys
/// took 608-683 ns against 747-783 ns without these (benches/README.md).
#[inline(always)]
fn prefetch_chunk<T>(node: &TrieNode<T>, chunk: u32) {
    let c = chunk as usize;
    node.prefetch_guess(c);
    node.prefetch_guess(c * 5 / 8);
    node.prefetch_guess(c * 3 / 8);
}

/// The slot index of `bit` in a node with `bitmap`.
#[inline]
fn index(bitmap: u32, bit: u32) -> usize {
    (bitmap & (bit - 1)).count_ones() as usize
}

fn empty<T>() -> TrieNode<T> {
    Node::new(0, 0, Vec::new(), &[])
}

/// A persistent hash map (see the module docs).
pub struct Champ<T> {
    root: TrieNode<T>,
}

impl<T> Clone for Champ<T> {
    /// O(1): shares the root.
    fn clone(&self) -> Self {
        Champ {
            root: self.root.clone(),
        }
    }
}

impl<T: MapItem> Default for Champ<T> {
    fn default() -> Self {
        Champ::new()
    }
}

impl<T: MapItem + std::fmt::Debug> std::fmt::Debug for Champ<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: MapItem> Champ<T> {
    pub fn new() -> Champ<T> {
        Champ { root: empty() }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.root.len() as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.root.len() == 0
    }

    /// Whether two maps share their root: then they hold the same items.
    pub fn ptr_eq(&self, other: &Champ<T>) -> bool {
        self.root.ptr_eq(&other.root)
    }

    pub fn get(&self, key: &[u8]) -> Option<&T> {
        self.get_hashed(T::hash_of(key), key)
    }

    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Lookup with a hash the caller already computed with `T::hash_of`.
    #[inline]
    pub fn get_hashed(&self, hash: u64, key: &[u8]) -> Option<&T> {
        get_below(&self.root, hash, key, 0)
    }

    /// Warms the cache for lookups of `hashes` (the keys of a pipelined
    /// batch, hashed with `T::hash_of`): walks their paths level by level
    /// across all of them, so that the loads of different lookups overlap
    /// instead of waiting for one another. Changes nothing.
    pub fn prefetch(&self, hashes: &[u64]) {
        const WIDTH: usize = 32;
        for group in hashes.chunks(WIDTH) {
            let mut at: [Option<&TrieNode<T>>; WIDTH] = [None; WIDTH];
            for node in at.iter_mut().take(group.len()) {
                *node = Some(&self.root);
            }
            for level in 0..BUCKET_LEVEL {
                let mut deeper = false;
                for (k, &hash) in group.iter().enumerate() {
                    let Some(node) = at[k].take() else {
                        continue;
                    };
                    let bit = 1u32 << chunk(hash, level);
                    let bitmap = node.bitmap();
                    if bitmap & bit == 0 {
                        continue;
                    }
                    match &node.slots()[index(bitmap, bit)] {
                        Slot::Item(t) => t.prefetch(),
                        Slot::Child(c) => {
                            c.prefetch();
                            prefetch_chunk(c, chunk(hash, level + 1));
                            at[k] = Some(c);
                            deeper = true;
                        }
                    }
                }
                if !deeper {
                    break;
                }
            }
        }
    }

    /// The item under `key` for writing; copies the path to it if a clone shares it.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut T> {
        self.get_mut_hashed(T::hash_of(key), key)
    }

    /// [`Champ::get_mut`] with a hash the caller already computed with `T::hash_of`.
    ///
    /// One walk down while the path is the live map's own (every node on it
    /// unique): nothing is copied then, hit or miss. At the first node a
    /// clone shares, the rest of the path is looked up first, so that a miss
    /// copies nothing; a hit copies the path from there down.
    pub fn get_mut_hashed(&mut self, hash: u64, key: &[u8]) -> Option<&mut T> {
        let mut node = &mut self.root;
        let mut level = 0;
        let mut known_present = false;
        loop {
            if !known_present && !node.is_unique() {
                get_below(node, hash, key, level)?;
                known_present = true;
            }
            if level == BUCKET_LEVEL {
                return node.slots_mut().iter_mut().find_map(|s| match s {
                    Slot::Item(t) if t.key() == key => Some(t),
                    _ => None,
                });
            }
            let c = chunk(hash, level);
            prefetch_chunk(node, c);
            let bit = 1u32 << c;
            let bitmap = node.bitmap();
            if bitmap & bit == 0 {
                return None;
            }
            match &mut node.slots_mut()[index(bitmap, bit)] {
                Slot::Item(t) => return (t.key() == key).then_some(t),
                Slot::Child(c) => node = c,
            }
            level += 1;
        }
    }

    /// Stores `item`, returning the item it replaced under the same key.
    pub fn insert(&mut self, item: T) -> Option<T> {
        let hash = T::hash_of(item.key());
        insert_at(&mut self.root, hash, item, 0)
    }

    /// Sets the item under `key` in one walk down: `found` changes the item
    /// already there, or `make` builds a new one. Returns whether an item was
    /// added. `hash` is `T::hash_of(key)`; the path is copied where a clone
    /// shares it.
    pub fn upsert_hashed(
        &mut self,
        hash: u64,
        key: &[u8],
        make: impl FnOnce() -> T,
        found: impl FnOnce(&mut T),
    ) -> bool {
        upsert_at(&mut self.root, hash, key, 0, false, make, found)
    }

    /// Adds the item `make` builds unless `key` is present, in one walk down;
    /// returns whether it was added. A present key copies nothing, even
    /// below nodes a clone shares. `hash` is `T::hash_of(key)`.
    pub fn insert_absent_hashed(
        &mut self,
        hash: u64,
        key: &[u8],
        make: impl FnOnce() -> T,
    ) -> bool {
        upsert_at(&mut self.root, hash, key, 0, true, make, |_| {})
    }

    /// [`Champ::upsert_hashed`], hashing `key` itself.
    pub fn upsert(
        &mut self,
        key: &[u8],
        make: impl FnOnce() -> T,
        found: impl FnOnce(&mut T),
    ) -> bool {
        self.upsert_hashed(T::hash_of(key), key, make, found)
    }

    /// [`Champ::insert_absent_hashed`], hashing `key` itself.
    pub fn insert_absent(&mut self, key: &[u8], make: impl FnOnce() -> T) -> bool {
        self.insert_absent_hashed(T::hash_of(key), key, make)
    }

    /// Removes and returns the `index`-th item in hash order (as
    /// [`Champ::nth`] finds it), in one walk down: a random pop moves its
    /// item out without a lookup by key.
    pub fn remove_nth(&mut self, index: usize) -> Option<T> {
        if index >= self.len() {
            return None;
        }
        Some(remove_nth_at(&mut self.root, index, 0))
    }

    /// Removes the item under `key`. A miss copies nothing a clone shares:
    /// the path is only made unique once a lookup found the key.
    pub fn remove(&mut self, key: &[u8]) -> Option<T> {
        let hash = T::hash_of(key);
        self.get_hashed(hash, key)?;
        remove_at(&mut self.root, hash, key, false, 0)
    }

    /// Removes the item under `key`, which the caller knows is present (a
    /// sorted set's pop, whose order index names it): one walk instead of a
    /// lookup and a walk. A miss still removes nothing, but may copy the
    /// path a clone shares.
    pub fn remove_present(&mut self, key: &[u8]) -> Option<T> {
        remove_at(&mut self.root, T::hash_of(key), key, true, 0)
    }

    /// Every item, in ascending hash order.
    pub fn iter(&self) -> Iter<'_, T> {
        Iter {
            stack: vec![(&self.root, 0)],
            remaining: self.len(),
        }
    }

    /// The `index`-th item in hash order, in O(depth).
    pub fn nth(&self, mut index: usize) -> Option<&T> {
        if index >= self.len() {
            return None;
        }
        let mut node = &self.root;
        // The node's own weights say which slot holds the index-th item, so
        // only that child is visited: one node per level.
        'descend: loop {
            for (slot, &weight) in node.slots().iter().zip(node.weights()) {
                let weight = weight as usize;
                if index >= weight {
                    index -= weight;
                    continue;
                }
                match slot {
                    Slot::Item(t) => return Some(t),
                    Slot::Child(c) => {
                        node = c;
                        continue 'descend;
                    }
                }
            }
            unreachable!("subtree counts out of step with the items");
        }
    }

    /// Calls `emit` for up to `count` neighbouring items picked by `r`, each
    /// with its [`Path`]: one descent through random slots until one holds
    /// an item, then the items of that node from there on. Reads only
    /// nodes, never an item's key: eviction's sampler, where a cheap spread
    /// of keys matters and an even draw does not (items in sparse nodes are
    /// likelier picks).
    pub fn sample<'a>(&'a self, r: u64, count: usize, mut emit: impl FnMut(&'a T, Path)) {
        let mut descent = Descent::new(r);
        while !self.sample_step(&mut descent, count, usize::MAX, &mut emit) {}
    }

    /// [`Champ::sample`] spread over calls: walks `descent`'s path again,
    /// then goes on through random slots, into at most `levels` more nodes
    /// below the first two levels (whose 33 nodes stay in cache). A child it stops
    /// at joins the path and what the next step (the next command's) will
    /// read of it is prefetched, so that its loads overlap with the work in
    /// between. An item ends the descent: the items of its
    /// node are emitted as [`Champ::sample`] does and `true` is returned.
    /// A path the map no longer has starts again from the root.
    pub fn sample_step<'a>(
        &'a self,
        descent: &mut Descent,
        count: usize,
        mut levels: usize,
        mut emit: impl FnMut(&'a T, Path),
    ) -> bool {
        let mut node = &self.root;
        for level in 0..descent.levels {
            let bit = 1u32 << chunk(descent.prefix, level);
            let bitmap = node.bitmap();
            let slot = (bitmap & bit != 0).then(|| &node.slots()[index(bitmap, bit)]);
            let Some(Slot::Child(child)) = slot else {
                (descent.prefix, descent.levels, node) = (0, 0, &self.root);
                break;
            };
            node = child;
        }
        let mut level = descent.levels;
        loop {
            let slots = node.slots();
            if slots.is_empty() || count == 0 {
                return true;
            }
            let r = descent.r;
            descent.r = r.rotate_right(7) ^ (r >> 3);
            let start = below(r, slots.len());
            if level == BUCKET_LEVEL {
                // Items only, all of one hash: told apart by their index.
                for i in 0..slots.len().min(count) {
                    let at = (start + i) % slots.len();
                    if let Slot::Item(t) = &slots[at] {
                        let path = Path {
                            prefix: descent.prefix,
                            levels: BUCKET_LEVEL + 1,
                            index: at as u32,
                        };
                        emit(t, path);
                    }
                }
                return true;
            }
            let bitmap = node.bitmap();
            if let Slot::Child(child) = &slots[start] {
                descent.prefix |= place(from_nth(bitmap, start).trailing_zeros(), level);
                descent.levels = level + 1;
                level += 1;
                if level >= 2 {
                    if levels == 0 {
                        // The slot the next step picks, if the child holds a
                        // slot per item below it (it does at the bottom).
                        let fanout = if level < FULL_LEVELS { 32 } else { 16 };
                        let count = node.weights()[start].min(fanout) as usize;
                        child.prefetch_slot(count, below(descent.r, count));
                        return false;
                    }
                    levels -= 1;
                }
                node = child;
                continue;
            }
            // An item: it and the items after it, wrapping round the node
            // (children skipped), which a node walks in a few cache lines.
            let mut emitted = 0;
            let (mut at, mut bits) = (start, from_nth(bitmap, start));
            for _ in 0..slots.len() {
                if at == slots.len() {
                    (at, bits) = (0, bitmap);
                }
                let c = bits.trailing_zeros();
                bits &= bits - 1;
                if let Slot::Item(t) = &slots[at] {
                    let path = Path {
                        prefix: descent.prefix | place(c, level),
                        levels: level + 1,
                        index: 0,
                    };
                    emit(t, path);
                    emitted += 1;
                    if emitted == count {
                        return true;
                    }
                }
                at += 1;
            }
            return true;
        }
    }

    /// The item at `path` (from [`Champ::sample`]) if one is still there:
    /// the one sampled, or one that took its place. An item that moved a
    /// level down since is not found; one a removal folded up is.
    pub fn at_path(&self, path: Path) -> Option<&T> {
        let mut node = &self.root;
        for level in 0..path.levels.min(BUCKET_LEVEL) {
            let bit = 1u32 << chunk(path.prefix, level);
            let bitmap = node.bitmap();
            if bitmap & bit == 0 {
                return None;
            }
            match &node.slots()[index(bitmap, bit)] {
                Slot::Item(t) => return Some(t),
                Slot::Child(c) => node = c,
            }
        }
        if path.levels <= BUCKET_LEVEL {
            return None;
        }
        match node.slots().get(path.index as usize) {
            Some(Slot::Item(t)) => Some(t),
            _ => None,
        }
    }

    /// The path of the item under `key`, as [`Champ::sample`] reports it.
    pub fn path_of(&self, key: &[u8]) -> Option<Path> {
        let hash = T::hash_of(key);
        let mut node = &self.root;
        for level in 0..BUCKET_LEVEL {
            let bit = 1u32 << chunk(hash, level);
            let bitmap = node.bitmap();
            if bitmap & bit == 0 {
                return None;
            }
            match &node.slots()[index(bitmap, bit)] {
                Slot::Item(t) => {
                    // The bits below the levels read, as a sample has them.
                    let read = if level < FULL_LEVELS {
                        !(u64::MAX >> (BITS * (level + 1)))
                    } else {
                        u64::MAX
                    };
                    let path = Path {
                        prefix: hash & read,
                        levels: level + 1,
                        index: 0,
                    };
                    return (t.key() == key).then_some(path);
                }
                Slot::Child(c) => node = c,
            }
        }
        let at = node
            .slots()
            .iter()
            .position(|s| matches!(s, Slot::Item(t) if t.key() == key))?;
        Some(Path {
            prefix: hash,
            levels: BUCKET_LEVEL + 1,
            index: at as u32,
        })
    }

    /// Removes the item at `path` if there is one and `accept` takes it:
    /// eviction deletes a sampled item without reading or hashing its key.
    pub fn remove_at_path(&mut self, path: Path, accept: impl FnOnce(&T) -> bool) -> Option<T> {
        let item = self.at_path(path)?;
        if !accept(item) {
            return None;
        }
        // Above a collision bucket the walk stops at the first item on the
        // path, which is this one; in a bucket it compares keys.
        let key = if path.levels > BUCKET_LEVEL {
            item.key().to_vec()
        } else {
            Vec::new()
        };
        remove_at(&mut self.root, path.prefix, &key, false, 0)
    }

    /// A resumable walk: calls `emit` for items whose hash is at least `cursor`,
    /// in hash order, until about `count` were emitted (a group of colliding
    /// hashes is never split). Returns the cursor to resume from, or 0 when the
    /// walk is over. An item present for the whole of a walk is emitted exactly
    /// once, whatever is inserted or removed between calls.
    pub fn scan(&self, cursor: u64, count: usize, mut emit: impl FnMut(&T)) -> u64 {
        let mut budget = count.max(1);
        match scan_node(&self.root, 0, cursor, cursor != 0, &mut budget, &mut emit) {
            ControlFlow::Break(next) => next,
            ControlFlow::Continue(()) => 0,
        }
    }

    /// Builds a map from items in any order without a copy of any node: the
    /// items are sorted by hash and each node is made once, at its final size.
    /// Returns the key of a duplicate, if any, instead.
    pub fn build(items: Vec<T>) -> Result<Champ<T>, T> {
        let mut hashed: Vec<(u64, T)> = items
            .into_iter()
            .map(|t| (T::hash_of(t.key()), t))
            .collect();
        hashed.sort_unstable_by_key(|(h, _)| *h);
        for pair in hashed.windows(2) {
            if pair[0].0 == pair[1].0 && pair[0].1.key() == pair[1].1.key() {
                return Err(pair[1].1.clone());
            }
        }
        Ok(Champ {
            root: build_node(hashed, 0),
        })
    }

    /// Checks the structure: counts, canonical form, every item where its hash
    /// says; for tests.
    pub fn check(&self) -> Result<(), String> {
        check_node(&self.root, 0, true).map(|_| ())
    }
}

/// The item under `key` in the subtree of `node`, which sits at `level`.
#[inline]
fn get_below<'a, T: MapItem>(
    mut node: &'a TrieNode<T>,
    hash: u64,
    key: &[u8],
    mut level: u32,
) -> Option<&'a T> {
    loop {
        if level == BUCKET_LEVEL {
            return node.slots().iter().find_map(|s| match s {
                Slot::Item(t) if t.key() == key => Some(t),
                _ => None,
            });
        }
        let c = chunk(hash, level);
        prefetch_chunk(node, c);
        let bit = 1u32 << c;
        let bitmap = node.bitmap();
        if bitmap & bit == 0 {
            return None;
        }
        match &node.slots()[index(bitmap, bit)] {
            Slot::Item(t) => return (t.key() == key).then_some(t),
            Slot::Child(c) => node = c,
        }
        level += 1;
    }
}

fn build_node<T: MapItem>(items: Vec<(u64, T)>, level: u32) -> TrieNode<T> {
    let len = items.len() as u32;
    if level == BUCKET_LEVEL {
        return node_of(
            0,
            len,
            items.into_iter().map(|(_, t)| Slot::Item(t)).collect(),
        );
    }
    let mut bitmap = 0;
    let mut slots = Vec::new();
    let mut iter = items.into_iter().peekable();
    while let Some((h, t)) = iter.next() {
        let c = chunk(h, level);
        bitmap |= 1 << c;
        if iter.peek().is_none_or(|(h2, _)| chunk(*h2, level) != c) {
            slots.push(Slot::Item(t));
            continue;
        }
        let mut group = vec![(h, t)];
        while let Some(next) = iter.next_if(|(h2, _)| chunk(*h2, level) == c) {
            group.push(next);
        }
        slots.push(Slot::Child(build_node(group, level + 1)));
    }
    node_of(bitmap, len, slots)
}

/// A node at `level` holding exactly the two items `a` and `b` (distinct keys).
fn pair_node<T: MapItem>(a: (u64, T), b: (u64, T), level: u32) -> TrieNode<T> {
    if level == BUCKET_LEVEL {
        return Node::from_array(0, 2, [Slot::Item(a.1), Slot::Item(b.1)], [1, 1]);
    }
    let (ca, cb) = (chunk(a.0, level), chunk(b.0, level));
    if ca == cb {
        return Node::from_array(1 << ca, 2, [Slot::Child(pair_node(a, b, level + 1))], [2]);
    }
    let (first, second) = if ca < cb { (a, b) } else { (b, a) };
    Node::from_array(
        (1 << ca) | (1 << cb),
        2,
        [Slot::Item(first.1), Slot::Item(second.1)],
        [1, 1],
    )
}

/// Makes the item slot `at` of `node` (at `level`) a child holding its item
/// and `item`, the item moved rather than cloned.
fn split_item<T: MapItem>(node: &mut TrieNode<T>, at: usize, hash: u64, item: T, level: u32) {
    node.replace_slot_with(at, |slot| {
        let Slot::Item(existing) = slot else {
            unreachable!("an item slot")
        };
        let existing_hash = T::hash_of(existing.key());
        Slot::Child(pair_node(
            (existing_hash, existing),
            (hash, item),
            level + 1,
        ))
    });
}

fn insert_at<T: MapItem>(node: &mut TrieNode<T>, hash: u64, item: T, level: u32) -> Option<T> {
    if level == BUCKET_LEVEL {
        for slot in node.slots_mut() {
            if let Slot::Item(t) = slot {
                if t.key() == item.key() {
                    return Some(std::mem::replace(t, item));
                }
            }
        }
        let at = node.slots().len();
        node.insert_slot(at, Slot::Item(item), 1);
        node.set_len(node.len() + 1);
        return None;
    }
    let c = chunk(hash, level);
    prefetch_chunk(node, c);
    let bit = 1u32 << c;
    let bitmap = node.bitmap();
    let at = index(bitmap, bit);
    if bitmap & bit == 0 {
        node.insert_slot(at, Slot::Item(item), 1);
        node.set_bitmap(bitmap | bit);
        node.set_len(node.len() + 1);
        return None;
    }
    let old = match &mut node.slots_mut()[at] {
        Slot::Child(c) => insert_at(c, hash, item, level + 1),
        Slot::Item(t) if t.key() == item.key() => Some(std::mem::replace(t, item)),
        Slot::Item(_) => {
            split_item(node, at, hash, item, level);
            None
        }
    };
    if old.is_none() {
        node.count_one_more(at);
    }
    old
}

/// The single write [`Champ::upsert_hashed`] and [`Champ::insert_absent_hashed`]
/// make below `node` (at `level`): `found` on the item under `key`, or a new
/// item from `make`. Returns whether an item was added. With `probe`, a node
/// a clone shares is first searched, and a present key returns before any
/// copy (then `found` is not called: only a no-op `found` may probe).
fn upsert_at<T: MapItem>(
    node: &mut TrieNode<T>,
    hash: u64,
    key: &[u8],
    level: u32,
    mut probe: bool,
    make: impl FnOnce() -> T,
    found: impl FnOnce(&mut T),
) -> bool {
    if probe && !node.is_unique() {
        if get_below(node, hash, key, level).is_some() {
            return false;
        }
        probe = false;
    }
    if level == BUCKET_LEVEL {
        let slots = node.slots_mut();
        if let Some(Slot::Item(t)) = slots
            .iter_mut()
            .find(|s| matches!(s, Slot::Item(t) if t.key() == key))
        {
            found(t);
            return false;
        }
        let at = slots.len();
        node.insert_slot(at, Slot::Item(make()), 1);
        node.set_len(node.len() + 1);
        return true;
    }
    let c = chunk(hash, level);
    prefetch_chunk(node, c);
    let bit = 1u32 << c;
    let bitmap = node.bitmap();
    let at = index(bitmap, bit);
    if bitmap & bit == 0 {
        node.insert_slot(at, Slot::Item(make()), 1);
        node.set_bitmap(bitmap | bit);
        node.set_len(node.len() + 1);
        return true;
    }
    let added = match &mut node.slots_mut()[at] {
        Slot::Child(c) => upsert_at(c, hash, key, level + 1, probe, make, found),
        Slot::Item(t) if t.key() == key => {
            found(t);
            return false;
        }
        Slot::Item(_) => {
            split_item(node, at, hash, make(), level);
            true
        }
    };
    if added {
        node.count_one_more(at);
    }
    added
}

/// Removes `key` below `node`; folds a child left with a single item back
/// into this node. Unless `verify`, the caller has found `key` by `hash`, so
/// above the bucket level the first item on the path is taken for it; with
/// `verify` its key is compared, and a miss returns `None`.
fn remove_at<T: MapItem>(
    node: &mut TrieNode<T>,
    hash: u64,
    key: &[u8],
    verify: bool,
    level: u32,
) -> Option<T> {
    if level == BUCKET_LEVEL {
        let at = node
            .slots()
            .iter()
            .position(|s| matches!(s, Slot::Item(t) if t.key() == key))?;
        let Slot::Item(t) = node.remove_slot(at) else {
            unreachable!()
        };
        node.set_len(node.len() - 1);
        return Some(t);
    }
    let c = chunk(hash, level);
    prefetch_chunk(node, c);
    let bit = 1u32 << c;
    let bitmap = node.bitmap();
    if bitmap & bit == 0 {
        return None;
    }
    let at = index(bitmap, bit);
    let removed = match &mut node.slots_mut()[at] {
        // Unverified, the first item on the hash's path is the one: the
        // caller found it by this hash.
        Slot::Item(t) if verify && t.key() != key => return None,
        Slot::Item(_) => None,
        Slot::Child(child) => {
            let t = remove_at(child, hash, key, verify, level + 1)?;
            if child.len() == 1 {
                fold_child(node, at);
            }
            Some(t)
        }
    };
    let removed = match removed {
        Some(t) => {
            let weight = node.slots()[at].weight();
            node.set_weight(at, weight);
            t
        }
        None => {
            node.set_bitmap(bitmap & !bit);
            let Slot::Item(t) = node.remove_slot(at) else {
                unreachable!()
            };
            t
        }
    };
    node.set_len(node.len() - 1);
    Some(removed)
}

/// Canonical form: the child in slot `at`, left with a single item, gives
/// way to that item (moved up, not cloned, unless a clone shares the child).
fn fold_child<T: MapItem>(node: &mut TrieNode<T>, at: usize) {
    node.replace_slot_with(at, |slot| {
        let Slot::Child(child) = slot else {
            unreachable!("a child slot")
        };
        if child.slots().len() != 1 {
            return Slot::Item(lone_item(&child));
        }
        match child.into_single() {
            Slot::Item(t) => Slot::Item(t),
            Slot::Child(grandchild) => Slot::Item(lone_item(&grandchild)),
        }
    });
}

/// Removes the `index`-th item in hash order below `node` (at `level`),
/// which holds more than `index` items; folds as [`remove_at`] does.
fn remove_nth_at<T: MapItem>(node: &mut TrieNode<T>, mut index: usize, level: u32) -> T {
    let mut at = 0;
    for &weight in node.weights() {
        let weight = weight as usize;
        if index < weight {
            break;
        }
        index -= weight;
        at += 1;
    }
    let removed = match &mut node.slots_mut()[at] {
        Slot::Child(child) => {
            let t = remove_nth_at(child, index, level + 1);
            if child.len() == 1 {
                fold_child(node, at);
            }
            let weight = node.slots()[at].weight();
            node.set_weight(at, weight);
            t
        }
        Slot::Item(_) => {
            if level < BUCKET_LEVEL {
                // The slot's bit is the `at`-th set bit of the bitmap.
                let mut bits = node.bitmap();
                for _ in 0..at {
                    bits &= bits - 1;
                }
                let bit = bits & bits.wrapping_neg();
                node.set_bitmap(node.bitmap() & !bit);
            }
            let Slot::Item(t) = node.remove_slot(at) else {
                unreachable!("an item slot")
            };
            t
        }
    };
    node.set_len(node.len() - 1);
    removed
}

/// The single item of a one-item subtree.
fn lone_item<T: MapItem>(node: &TrieNode<T>) -> T {
    match &node.slots()[0] {
        Slot::Item(t) => t.clone(),
        Slot::Child(c) => lone_item(c),
    }
}

fn scan_node<T: MapItem>(
    node: &TrieNode<T>,
    level: u32,
    from: u64,
    bounded: bool,
    budget: &mut usize,
    emit: &mut impl FnMut(&T),
) -> ControlFlow<u64> {
    if level == BUCKET_LEVEL {
        // Colliding items share one hash: all or none of them.
        let Some(Slot::Item(first)) = node.slots().first() else {
            return ControlFlow::Continue(());
        };
        let hash = T::hash_of(first.key());
        if bounded && hash < from {
            return ControlFlow::Continue(());
        }
        if *budget == 0 {
            return ControlFlow::Break(hash);
        }
        for slot in node.slots() {
            if let Slot::Item(t) = slot {
                emit(t);
            }
        }
        *budget = budget.saturating_sub(node.slots().len());
        return ControlFlow::Continue(());
    }
    let start = if bounded { chunk(from, level) } else { 0 };
    let mut bits = node.bitmap();
    let mut at = 0;
    while bits != 0 {
        let c = bits.trailing_zeros();
        bits &= bits - 1;
        let slot = &node.slots()[at];
        at += 1;
        if c < start {
            continue;
        }
        let on_edge = bounded && c == start;
        match slot {
            Slot::Item(t) => {
                let needs_hash = on_edge || *budget == 0;
                let hash = if needs_hash { T::hash_of(t.key()) } else { 0 };
                if on_edge && hash < from {
                    continue;
                }
                if *budget == 0 {
                    return ControlFlow::Break(hash);
                }
                emit(t);
                *budget -= 1;
            }
            Slot::Child(child) => scan_node(child, level + 1, from, on_edge, budget, emit)?,
        }
    }
    ControlFlow::Continue(())
}

/// Returns the subtree's item count after checking it.
fn check_node<T: MapItem>(node: &TrieNode<T>, level: u32, root: bool) -> Result<usize, String> {
    let slots = node.slots();
    for (slot, &weight) in slots.iter().zip(node.weights()) {
        if slot.weight() != weight {
            return Err(format!(
                "slot weighs {} but the node keeps {weight}",
                slot.weight()
            ));
        }
    }
    if level == BUCKET_LEVEL {
        if slots.len() < 2 && !root {
            return Err("collision bucket with fewer than two items".into());
        }
        let mut hashes = slots.iter().map(|s| match s {
            Slot::Item(t) => Ok(T::hash_of(t.key())),
            Slot::Child(_) => Err("child inside a collision bucket".to_string()),
        });
        let first = hashes.next().transpose()?;
        for h in hashes {
            if Some(h?) != first {
                return Err("bucket items with different hashes".into());
            }
        }
        if node.len() as usize != slots.len() {
            return Err("bucket count wrong".into());
        }
        return Ok(slots.len());
    }
    if node.bitmap().count_ones() as usize != slots.len() {
        return Err(format!(
            "bitmap has {} bits for {} slots",
            node.bitmap().count_ones(),
            slots.len()
        ));
    }
    if !root && slots.len() == 1 && matches!(slots[0], Slot::Item(_)) {
        return Err("non-root node holding a single item".into());
    }
    let mut total = 0;
    let mut bits = node.bitmap();
    for slot in slots {
        let c = bits.trailing_zeros();
        bits &= bits - 1;
        match slot {
            Slot::Item(t) => {
                if chunk(T::hash_of(t.key()), level) != c {
                    return Err("item in the wrong slot".into());
                }
                total += 1;
            }
            Slot::Child(child) => {
                let n = check_node(child, level + 1, false)?;
                if n < 2 {
                    return Err("child subtree with fewer than two items".into());
                }
                total += n;
            }
        }
    }
    if total != node.len() as usize {
        return Err(format!("node count {} but {} items", node.len(), total));
    }
    Ok(total)
}

/// Iterator over a map's items in hash order.
pub struct Iter<'a, T> {
    stack: Vec<(&'a TrieNode<T>, usize)>,
    remaining: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            let (node, at) = self.stack.last_mut()?;
            let node: &'a TrieNode<T> = node;
            let Some(slot) = node.slots().get(*at) else {
                self.stack.pop();
                continue;
            };
            *at += 1;
            match slot {
                Slot::Item(t) => {
                    self.remaining -= 1;
                    return Some(t);
                }
                Slot::Child(c) => self.stack.push((c, 0)),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<'a, T: MapItem> IntoIterator for &'a Champ<T> {
    type Item = &'a T;
    type IntoIter = Iter<'a, T>;

    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

/// An owning iterator: it holds the nodes it walks, so it can outlive the map
/// (a snapshot streaming a clone to disk, a cursor parked between calls).
pub struct IntoIter<T> {
    stack: Vec<(TrieNode<T>, usize)>,
    remaining: usize,
}

impl<T: MapItem> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        loop {
            let (node, at) = self.stack.last_mut()?;
            let Some(slot) = node.slots().get(*at) else {
                self.stack.pop();
                continue;
            };
            *at += 1;
            match slot {
                Slot::Item(t) => {
                    self.remaining -= 1;
                    return Some(t.clone());
                }
                Slot::Child(c) => {
                    let c = c.clone();
                    self.stack.push((c, 0));
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<T: MapItem> ExactSizeIterator for IntoIter<T> {}

impl<T: MapItem> IntoIterator for Champ<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter {
            remaining: self.len(),
            stack: vec![(self.root, 0)],
        }
    }
}

impl<T: MapItem> FromIterator<T> for Champ<T> {
    /// Later items replace earlier ones with the same key.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Champ<T> {
        let mut map = Champ::new();
        for item in iter {
            map.insert(item);
        }
        map
    }
}

impl<T: MapItem + PartialEq> PartialEq for Champ<T> {
    fn eq(&self, other: &Champ<T>) -> bool {
        self.ptr_eq(other)
            || (self.len() == other.len() && self.iter().all(|t| other.get(t.key()) == Some(t)))
    }
}

impl<T: MapItem + Eq> Eq for Champ<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    type Pair = (Bytes, Bytes);

    fn pair(k: &str, v: &str) -> Pair {
        (
            Bytes::copy_from_slice(k.as_bytes()),
            Bytes::copy_from_slice(v.as_bytes()),
        )
    }

    #[test]
    fn insert_get_remove() {
        let mut m: Champ<Pair> = Champ::new();
        for i in 0..10_000 {
            assert!(m.insert(pair(&format!("k{i}"), "v")).is_none());
        }
        assert_eq!(m.insert(pair("k5", "w")).unwrap().1, Bytes::from("v"));
        assert_eq!(m.len(), 10_000);
        m.check().unwrap();
        assert_eq!(m.get(b"k5").unwrap().1, Bytes::from("w"));
        assert!(m.get(b"nope").is_none());
        for i in (0..10_000).step_by(2) {
            assert!(m.remove(format!("k{i}").as_bytes()).is_some());
        }
        assert!(m.remove(b"k0").is_none());
        assert_eq!(m.len(), 5_000);
        m.check().unwrap();
        for i in 0..10_000 {
            assert_eq!(m.get(format!("k{i}").as_bytes()).is_some(), i % 2 == 1);
        }
    }

    #[test]
    fn iteration_is_in_hash_order_and_nth_agrees() {
        let m: Champ<Bytes> = (0..5_000).map(|i| Bytes::from(format!("m{i}"))).collect();
        let hashes: Vec<u64> = m.iter().map(|t| hash_key(t)).collect();
        assert!(hashes.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(m.iter().len(), 5_000);
        for (i, t) in m.iter().enumerate() {
            assert_eq!(m.nth(i), Some(t));
        }
        assert!(m.nth(5_000).is_none());
    }

    #[test]
    fn build_matches_inserts_and_finds_duplicates() {
        let items: Vec<Bytes> = (0..3_000).map(|i| Bytes::from(format!("b{i}"))).collect();
        let built = Champ::build(items.clone()).unwrap();
        built.check().unwrap();
        let inserted: Champ<Bytes> = items.iter().cloned().collect();
        assert!(built.iter().eq(inserted.iter()));
        let mut dup = items;
        dup.push(Bytes::from("b17"));
        assert_eq!(Champ::build(dup).unwrap_err(), Bytes::from("b17"));
    }

    /// Keys whose hash is their first byte: whole families collide.
    #[derive(Debug, Clone, PartialEq)]
    struct Colliding(Bytes);

    impl MapItem for Colliding {
        fn key(&self) -> &[u8] {
            &self.0
        }
        fn hash_of(key: &[u8]) -> u64 {
            key.first().copied().unwrap_or(0) as u64
        }
    }

    #[test]
    fn colliding_hashes_share_a_bucket() {
        let c = |s: &str| Colliding(Bytes::copy_from_slice(s.as_bytes()));
        let mut m: Champ<Colliding> = Champ::new();
        for k in ["a1", "a2", "a3", "b1", "b2"] {
            assert!(m.insert(c(k)).is_none());
        }
        assert!(m.insert(c("a2")).is_some());
        assert_eq!(m.len(), 5);
        m.check().unwrap();
        assert!(m.get(b"a3").is_some() && m.get(b"a4").is_none());
        let snap = m.clone();
        let mut seen = Vec::new();
        let mut cursor = 0;
        loop {
            // A count of 1 still returns each colliding family whole.
            cursor = m.scan(cursor, 1, |t| seen.push(t.0.clone()));
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 5);
        assert_eq!(m.remove(b"a2"), Some(c("a2")));
        assert_eq!(m.remove(b"a1"), Some(c("a1")));
        assert_eq!(m.remove(b"b1"), Some(c("b1")));
        m.check().unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.get(b"a3").is_some() && m.get(b"b2").is_some());
        assert_eq!(snap.len(), 5);
        snap.check().unwrap();
    }

    #[test]
    fn prefetch_changes_nothing() {
        let mut m: Champ<Bytes> = Champ::new();
        for i in 0..5000 {
            m.insert(Bytes::from(format!("k{i}")));
        }
        let before: Vec<Bytes> = m.iter().cloned().collect();
        // Present and absent keys, more than one group of 32, and none.
        let hashes: Vec<u64> = (0..100)
            .map(|i| <Bytes as MapItem>::hash_of(format!("k{}", i * 97).as_bytes()))
            .collect();
        m.prefetch(&hashes);
        m.prefetch(&[]);
        Champ::<Bytes>::new().prefetch(&hashes);
        assert_eq!(m.iter().cloned().collect::<Vec<_>>(), before);
        assert!(m.get(b"k97").is_some());
    }

    #[test]
    fn clones_are_isolated() {
        let mut m: Champ<Pair> = (0..1000).map(|i| pair(&format!("k{i}"), "old")).collect();
        let snap = m.clone();
        m.insert(pair("k1", "new"));
        m.remove(b"k2");
        m.insert(pair("extra", "x"));
        m.get_mut(b"k3").unwrap().1 = Bytes::from("mut");
        assert_eq!(snap.get(b"k1").unwrap().1, Bytes::from("old"));
        assert!(snap.get(b"k2").is_some());
        assert!(snap.get(b"extra").is_none());
        assert_eq!(snap.get(b"k3").unwrap().1, Bytes::from("old"));
        assert_eq!(snap.len(), 1000);
        snap.check().unwrap();
        m.check().unwrap();
    }

    #[test]
    fn scan_resumes_across_changes() {
        let mut m: Champ<Bytes> = (0..2_000).map(|i| Bytes::from(format!("s{i}"))).collect();
        let stable: HashSet<Bytes> = (0..1_000).map(|i| Bytes::from(format!("s{i}"))).collect();
        let mut seen: HashMap<Bytes, usize> = HashMap::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = m.scan(cursor, 37, |t| *seen.entry(t.clone()).or_default() += 1);
            // Churn: remove the unstable half bit by bit and add new keys.
            for j in 0..20 {
                let n = round * 20 + j;
                m.remove(format!("s{}", 1_000 + n).as_bytes());
                m.insert(Bytes::from(format!("new{n}")));
            }
            round += 1;
            if cursor == 0 {
                break;
            }
            assert!(round < 10_000);
        }
        for k in &stable {
            assert_eq!(seen.get(k), Some(&1), "{k:?}");
        }
        assert!(seen.values().all(|&n| n == 1));
    }

    #[test]
    fn random_picks_are_roughly_uniform() {
        let m: Champ<Bytes> = (0..64).map(|i| Bytes::from(format!("r{i}"))).collect();
        let mut rng = crate::rng::Rng::with_seed(9);
        let mut hits: HashMap<&Bytes, u32> = HashMap::new();
        for _ in 0..64_000 {
            *hits.entry(m.nth(rng.below(m.len())).unwrap()).or_default() += 1;
        }
        assert_eq!(hits.len(), 64);
        // Expected 1000 each; a binomial sd of ~31 makes 800..1200 a loose bound.
        assert!(hits.values().all(|&h| (800..1200).contains(&h)), "{hits:?}");
    }

    #[test]
    fn get_mut_copies_a_shared_path_only_on_a_hit() {
        let mut m: Champ<Pair> = (0..2000)
            .map(|i| (Bytes::from(format!("k{i}")), Bytes::from("a")))
            .collect();
        let snapshot = m.clone();
        for i in 2000..2100 {
            assert!(m.get_mut(format!("k{i}").as_bytes()).is_none());
        }
        assert!(m.ptr_eq(&snapshot), "a miss copied the shared root");
        m.get_mut(b"k7").unwrap().1 = Bytes::from("b");
        assert!(!m.ptr_eq(&snapshot));
        assert_eq!(snapshot.get(b"k7").unwrap().1, Bytes::from("a"));
        assert_eq!(m.get(b"k7").unwrap().1, Bytes::from("b"));
        // Unique again along that path: a second write changes it in place,
        // and misses below shared nodes elsewhere still copy nothing.
        m.get_mut(b"k7").unwrap().1 = Bytes::from("c");
        assert!(m.get_mut(b"absent").is_none());
        assert_eq!(snapshot.get(b"k7").unwrap().1, Bytes::from("a"));
        m.check().unwrap();
        snapshot.check().unwrap();
    }

    #[test]
    fn sampled_paths_lead_back_to_their_items() {
        let mut m: Champ<Pair> = (0..3000).map(|i| pair(&format!("k{i}"), "v")).collect();
        let snapshot = m.clone();
        let mut model: BTreeMap<Bytes, Bytes> = m.iter().cloned().collect();
        let mut rng = crate::rng::Rng::with_seed(5);
        for round in 0..3000 {
            let mut found = Vec::new();
            m.sample(rng.next_u64(), 5, |t, path| found.push((t.0.clone(), path)));
            assert!(!found.is_empty() && found.len() <= 5);
            for (key, path) in &found {
                assert_eq!(m.at_path(*path).map(|t| &t.0), Some(key));
                let found_again = m.path_of(key).and_then(|p| m.at_path(p));
                assert_eq!(found_again.map(|t| &t.0), Some(key));
            }
            let (key, path) = found[0].clone();
            assert!(m.remove_at_path(path, |_| false).is_none());
            assert_eq!(m.remove_at_path(path, |_| true).unwrap().0, key);
            model.remove(&key);
            assert!(m.at_path(path).is_none_or(|t| t.0 != key));
            // A path kept while the map changes finds its item, another
            // that took its place, or nothing: never a wrong removal.
            if round % 3 == 0 {
                m.insert(pair(&format!("n{round}"), "w"));
                model.insert(Bytes::from(format!("n{round}")), Bytes::from("w"));
            }
            if let Some((key, path)) = found.get(1).cloned() {
                if let Some(t) = m.remove_at_path(path, |t| t.0 != key) {
                    model.remove(&t.0);
                }
            }
        }
        m.check().unwrap();
        assert_eq!(m.iter().cloned().collect::<BTreeMap<_, _>>(), model);
        assert_eq!(snapshot.len(), 3000);
        snapshot.check().unwrap();
    }

    #[test]
    fn stepped_descents_sample_while_the_map_changes() {
        let mut m: Champ<Pair> = (0..20_000).map(|i| pair(&format!("k{i}"), "v")).collect();
        let mut rng = crate::rng::Rng::with_seed(11);
        let mut descents = [Descent::new(1), Descent::new(2), Descent::new(3)];
        let (mut ended, mut steps) = (0, 0);
        for round in 0..3000 {
            for d in &mut descents {
                let mut found = Vec::new();
                steps += 1;
                if m.sample_step(d, 5, 0, |t, path| found.push((t.0.clone(), path))) {
                    ended += 1;
                    *d = Descent::new(rng.next_u64());
                    assert!(!found.is_empty() && found.len() <= 5);
                } else {
                    assert!(found.is_empty());
                }
                for (key, path) in &found {
                    assert_eq!(m.at_path(*path).map(|t| &t.0), Some(key));
                }
                // Evict one, write one: the descents' paths break now and then.
                if let Some((_, path)) = found.first() {
                    m.remove_at_path(*path, |_| true).unwrap();
                }
                m.insert(pair(&format!("n{round}"), "w"));
            }
        }
        m.check().unwrap();
        // A descent ends every few steps: the two cached levels in one.
        assert!(ended * 4 > steps, "{ended} of {steps}");
    }

    #[test]
    fn sampled_paths_tell_colliding_items_apart() {
        let c = |s: &str| Colliding(Bytes::copy_from_slice(s.as_bytes()));
        let keys = ["a1", "a2", "a3", "b1", "b2"];
        let mut m: Champ<Colliding> = keys.iter().map(|k| c(k)).collect();
        let mut rng = crate::rng::Rng::with_seed(7);
        let mut left: HashSet<Bytes> = keys.iter().map(|k| Bytes::from(*k)).collect();
        for _ in 0..1000 {
            let mut found = Vec::new();
            m.sample(rng.next_u64(), 2, |t, path| found.push((t.0.clone(), path)));
            let Some((key, path)) = found.pop() else {
                break;
            };
            assert_eq!(m.at_path(path).map(|t| &t.0), Some(&key));
            assert_eq!(m.path_of(&key), Some(path));
            assert_eq!(m.remove_at_path(path, |_| true).unwrap().0, key);
            assert!(left.remove(&key));
            m.check().unwrap();
        }
        assert!(left.is_empty() && m.is_empty());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u8),
        Remove(u16),
        /// [`Champ::remove_present`], called for present and absent keys.
        RemovePresent(u16),
        GetMut(u16, u8),
        Upsert(u16, u8),
        InsertAbsent(u16, u8),
        RemoveNth(usize),
        /// Removes the first item a sample finds, by its path.
        RemoveSampled(u64),
        Clone,
        DropClone(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..400u16, any::<u8>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (0..400u16).prop_map(Op::Remove),
            2 => (0..400u16).prop_map(Op::RemovePresent),
            1 => (0..400u16, any::<u8>()).prop_map(|(k, v)| Op::GetMut(k, v)),
            2 => (0..400u16, any::<u8>()).prop_map(|(k, v)| Op::Upsert(k, v)),
            2 => (0..400u16, any::<u8>()).prop_map(|(k, v)| Op::InsertAbsent(k, v)),
            1 => any::<usize>().prop_map(Op::RemoveNth),
            1 => any::<u64>().prop_map(Op::RemoveSampled),
            1 => Just(Op::Clone),
            1 => (0..8usize).prop_map(Op::DropClone),
        ]
    }

    fn key(k: u16) -> Bytes {
        Bytes::from(format!("key{k}"))
    }

    /// A field, value pair; with `WEAK`, its hash keeps only 3 bits of the
    /// real one, so paths run to the bottom and whole families share a
    /// collision bucket.
    #[derive(Debug, Clone, PartialEq)]
    struct P<const WEAK: bool>(Bytes, Bytes);

    impl<const WEAK: bool> MapItem for P<WEAK> {
        fn key(&self) -> &[u8] {
            &self.0
        }
        fn hash_of(key: &[u8]) -> u64 {
            if WEAK {
                hash_key(key) & 0x8000_0000_0000_0003
            } else {
                hash_key(key)
            }
        }
    }

    type Model = BTreeMap<Bytes, Bytes>;

    fn contents<const W: bool>(map: &Champ<P<W>>) -> Model {
        map.iter().map(|p| (p.0.clone(), p.1.clone())).collect()
    }

    /// Against std's map: every query after every op, and every clone keeps
    /// showing the state it was taken in.
    fn run_against_model<const W: bool>(ops: Vec<Op>) -> Result<(), TestCaseError> {
        let mut map: Champ<P<W>> = Champ::new();
        let mut model = Model::new();
        let mut clones: Vec<(Champ<P<W>>, Model)> = Vec::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => {
                    let val = Bytes::from(vec![v]);
                    let old = map.insert(P(key(k), val.clone())).map(|p| p.1);
                    prop_assert_eq!(old, model.insert(key(k), val));
                }
                Op::Remove(k) => {
                    let old = map.remove(&key(k)).map(|p| p.1);
                    prop_assert_eq!(old, model.remove(&key(k)));
                }
                Op::RemovePresent(k) => {
                    let old = map.remove_present(&key(k)).map(|p| p.1);
                    prop_assert_eq!(old, model.remove(&key(k)));
                }
                Op::GetMut(k, v) => {
                    let val = Bytes::from(vec![v]);
                    match (map.get_mut(&key(k)), model.get_mut(&key(k))) {
                        (Some(p), Some(m)) => {
                            p.1 = val.clone();
                            *m = val;
                        }
                        (None, None) => {}
                        _ => prop_assert!(false, "presence differs for {}", k),
                    }
                }
                Op::Upsert(k, v) => {
                    let val = Bytes::from(vec![v]);
                    let added =
                        map.upsert(&key(k), || P(key(k), val.clone()), |p| p.1 = val.clone());
                    prop_assert_eq!(added, model.insert(key(k), val).is_none());
                }
                Op::InsertAbsent(k, v) => {
                    let val = Bytes::from(vec![v]);
                    let added = map.insert_absent(&key(k), || P(key(k), val.clone()));
                    prop_assert_eq!(added, !model.contains_key(&key(k)));
                    model.entry(key(k)).or_insert(val);
                }
                Op::RemoveNth(i) => {
                    let i = if model.is_empty() {
                        i
                    } else {
                        i % (model.len() + 1)
                    };
                    let expected = map.nth(i).cloned();
                    let got = map.remove_nth(i);
                    prop_assert_eq!(&got, &expected);
                    if let Some(p) = got {
                        prop_assert_eq!(model.remove(&p.0), Some(p.1));
                    }
                }
                Op::RemoveSampled(r) => {
                    let mut first = None;
                    map.sample(r, 1, |t, path| first = Some((t.0.clone(), path)));
                    prop_assert_eq!(first.is_none(), model.is_empty());
                    if let Some((k, path)) = first {
                        let removed = map.remove_at_path(path, |_| true).map(|p| p.0);
                        prop_assert_eq!(removed.as_ref(), Some(&k));
                        model.remove(&k);
                    }
                }
                Op::Clone => clones.push((map.clone(), model.clone())),
                Op::DropClone(i) => {
                    if !clones.is_empty() {
                        let at = i % clones.len();
                        clones.remove(at);
                    }
                }
            }
            prop_assert_eq!(map.len(), model.len());
        }
        map.check().map_err(TestCaseError::fail)?;
        prop_assert_eq!(&contents(&map), &model);
        for k in 0..400 {
            prop_assert_eq!(map.get(&key(k)).map(|p| &p.1), model.get(&key(k)));
        }
        for (c, m) in &clones {
            c.check().map_err(TestCaseError::fail)?;
            prop_assert_eq!(&contents(c), m);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn behaves_like_std_map_with_clones(ops in proptest::collection::vec(op(), 1..600)) {
            run_against_model::<false>(ops)?;
        }

        #[test]
        fn behaves_like_std_map_with_clones_and_collisions(
            ops in proptest::collection::vec(op(), 1..600),
        ) {
            run_against_model::<true>(ops)?;
        }
    }

    thread_local! {
        static CLONES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// An item that counts its clones (a `Bytes` from a Vec allocates a
    /// shared header on its first clone, so a split or fold that cloned
    /// would cost an allocation per member).
    #[derive(Debug)]
    struct Counted(Bytes);

    impl Clone for Counted {
        fn clone(&self) -> Self {
            CLONES.with(|c| c.set(c.get() + 1));
            Counted(self.0.clone())
        }
    }

    impl MapItem for Counted {
        fn key(&self) -> &[u8] {
            &self.0
        }
    }

    #[test]
    fn splits_and_folds_move_items_instead_of_cloning() {
        let mut m: Champ<Counted> = Champ::new();
        let members: Vec<Bytes> = (0..5000).map(|i| Bytes::from(format!("m:{i}"))).collect();
        for b in &members {
            assert!(m.insert_absent(b, || Counted(b.clone())));
            assert!(!m.insert_absent(b, || unreachable!("present")));
        }
        for b in &members[..1000] {
            assert!(!m.upsert(b, || unreachable!("present"), |c| c.0 = b.clone()));
        }
        for i in 0..2000 {
            let len = m.len();
            m.remove_nth(i * 7 % len).unwrap();
        }
        for b in &members[..2000] {
            m.remove(b);
        }
        m.check().unwrap();
        assert_eq!(CLONES.with(|c| c.get()), 0, "items were cloned");
        // Below a clone, the shared nodes are copied (their items cloned) and
        // the clone keeps its items.
        let snapshot = m.clone();
        let before = snapshot.len();
        m.remove_nth(0).unwrap();
        assert!(CLONES.with(|c| c.get()) > 0);
        assert_eq!(snapshot.len(), before);
        snapshot.check().unwrap();
        m.check().unwrap();
    }
}
