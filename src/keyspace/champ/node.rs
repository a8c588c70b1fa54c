//! A trie node in a single allocation: a reference count, the bitmap, the
//! subtree's item count, an exactly sized array of slots and, after it, one
//! `u32` weight per slot (the items below it), behind one thin pointer.
//!
//! `Arc<struct { header, Box<[Slot]> }>` costs two allocations and two
//! dependent cache misses per level of every lookup; at a million keys that
//! was half of a SET's cycles. Here the slots follow the header in the same
//! block, so a level costs one miss and a node one heap chunk. The weights
//! let a random pick choose among a node's children without touching them.
//!
//! # Safety
//!
//! This is the one place in the map with `unsafe` code. Its invariants:
//! - `ptr` points to a live block allocated with `layout(count)` holding an
//!   initialised [`Header`] followed, at `slots_offset()`, by exactly
//!   `header.count` initialised slots and, at `weights_offset(count)`, as many
//!   initialised `u32` weights; `layout` rounds to a size class, so counts
//!   one apart often share a layout, and then the block is the same;
//! - `header.refs` counts the `Node` values pointing at the block; the block
//!   and its slots are dropped exactly once, by the owner that takes the
//!   count from 1 to 0 (std `Arc`'s orderings);
//! - a slot or header is written only through `&mut Node` after
//!   [`Node::make_unique`] saw the count at 1, so no other `Node` can observe
//!   the write (a shared block is copied first: path copying).
//!
//! The map's model-based property tests (random inserts, removes, updates and
//! clones interleaved, checked against `std` maps and every clone's own
//! model) exercise every path here.

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{self, AtomicU32, Ordering};

#[repr(C)]
struct Header {
    refs: AtomicU32,
    bitmap: u32,
    len: u32,
    count: u32,
}

/// A reference-counted node holding slots of type `S`.
pub(super) struct Node<S> {
    ptr: NonNull<Header>,
    _owns: PhantomData<S>,
}

// SAFETY: a Node is a shared pointer like `Arc<[S]>`: sending or sharing it
// sends or shares the slots, and the count is atomic.
unsafe impl<S: Send + Sync> Send for Node<S> {}
unsafe impl<S: Send + Sync> Sync for Node<S> {}

impl<S> Node<S> {
    fn layout(count: usize) -> Layout {
        Self::layout_and_weights(count).0
    }

    /// The block's layout and where its weights start. The size is rounded
    /// up to jemalloc's size class ([`usable_size`]), which jemalloc would
    /// hand out anyway: a slot more or less within one class then keeps the
    /// block as it is, and most inserts and removals call no `realloc`.
    ///
    /// [`usable_size`]: crate::alloc_count::usable_size
    fn layout_and_weights(count: usize) -> (Layout, usize) {
        let slots = Layout::array::<S>(count).expect("node size fits memory");
        let weights = Layout::array::<u32>(count).expect("node size fits memory");
        let (with_slots, _) = Layout::new::<Header>()
            .extend(slots)
            .expect("node size fits memory");
        let (all, weights_at) = with_slots.extend(weights).expect("node size fits memory");
        let class = crate::alloc_count::usable_size(all.size(), all.align());
        let all = Layout::from_size_align(class, all.align()).expect("node size fits memory");
        (all, weights_at)
    }

    /// Where the weights of a block of `count` slots start.
    #[inline]
    fn weights_offset(count: usize) -> usize {
        let slots = Layout::array::<S>(count).expect("node size fits memory");
        let weights = Layout::array::<u32>(count).expect("node size fits memory");
        let (with_slots, _) = Layout::new::<Header>()
            .extend(slots)
            .expect("node size fits memory");
        with_slots.extend(weights).expect("node size fits memory").1
    }

    #[inline]
    fn slots_offset() -> usize {
        let slots = Layout::array::<S>(0).expect("empty array layout");
        Layout::new::<Header>()
            .extend(slots)
            .expect("node size fits memory")
            .1
    }

    #[inline]
    fn weights_ptr(&self, count: usize) -> *mut u32 {
        let at = Self::weights_offset(count);
        // SAFETY: the weights start `at` bytes into a block of `count` slots.
        unsafe { (self.ptr.as_ptr() as *mut u8).add(at) as *mut u32 }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: `ptr` points to a live, initialised header (module invariant).
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn slots_ptr(&self) -> *mut S {
        // SAFETY: the slots start `slots_offset()` bytes into the block.
        unsafe { (self.ptr.as_ptr() as *mut u8).add(Self::slots_offset()) as *mut S }
    }

    /// A new unshared node owning `slots`, each with its weight.
    pub fn new(bitmap: u32, len: u32, slots: Vec<S>, weights: &[u32]) -> Node<S> {
        let count = slots.len();
        assert_eq!(count, weights.len(), "one weight per slot");
        let node = Self::with_header(bitmap, len, count);
        // SAFETY: the block is sized for `count` slots and `count` weights,
        // none written yet; the slots are moved in and the Vec forgets them.
        unsafe {
            let mut slots = slots;
            ptr::copy_nonoverlapping(slots.as_ptr(), node.slots_ptr(), count);
            slots.set_len(0);
            ptr::copy_nonoverlapping(weights.as_ptr(), node.weights_ptr(count), count);
        }
        node
    }

    /// A new unshared node owning the `N` slots of an array (a pair of
    /// items, a single child), without the vectors [`Node::new`] takes.
    pub fn from_array<const N: usize>(
        bitmap: u32,
        len: u32,
        slots: [S; N],
        weights: [u32; N],
    ) -> Node<S> {
        let node = Self::with_header(bitmap, len, N);
        let slots = std::mem::ManuallyDrop::new(slots);
        // SAFETY: the block is sized for `N` slots and `N` weights, none
        // written yet; the slots are moved in and the array is never dropped.
        unsafe {
            ptr::copy_nonoverlapping(slots.as_ptr(), node.slots_ptr(), N);
            ptr::copy_nonoverlapping(weights.as_ptr(), node.weights_ptr(N), N);
        }
        node
    }

    /// A fresh block for `count` slots with its header written. The caller
    /// must write all `count` slots and weights before anything can drop
    /// or read the node (nothing between may panic).
    fn with_header(bitmap: u32, len: u32, count: usize) -> Node<S> {
        let layout = Self::layout(count);
        // SAFETY: the layout has a non-zero size (it holds the header).
        let raw = unsafe { alloc::alloc(layout) } as *mut Header;
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: the block is fresh and sized for the header.
        unsafe {
            ptr.as_ptr().write(Header {
                refs: AtomicU32::new(1),
                bitmap,
                len,
                count: count as u32,
            });
        }
        Node {
            ptr,
            _owns: PhantomData,
        }
    }

    /// Asks the CPU to start loading this node's header and first slots.
    #[inline]
    pub fn prefetch(&self) {
        prefetch_addr(self.ptr.as_ptr() as *const u8);
    }

    /// Asks the CPU to start loading what a read of slot `at` of this node
    /// touches if it holds `count` slots: the header, that slot and the one
    /// after it, and its weight; without reading the header (that is what
    /// is being loaded). A wrong guess of `count` costs a useless prefetch.
    #[inline]
    pub fn prefetch_slot(&self, count: usize, at: usize) {
        let base = self.ptr.as_ptr() as *const u8;
        prefetch_addr(base);
        self.prefetch_guess(at);
        self.prefetch_guess(at + 2);
        prefetch_addr(base.wrapping_add(Self::weights_offset(count) + 4 * at));
    }

    /// Starts loading the cache line of slot `at` alone (which may lie past
    /// the last slot: the position is a guess), so that the miss on it
    /// overlaps the miss on the header that a lookup waits for first.
    #[inline(always)]
    pub fn prefetch_guess(&self, at: usize) {
        let base = self.ptr.as_ptr() as *const u8;
        prefetch_addr(base.wrapping_add(Self::slots_offset() + at * std::mem::size_of::<S>()));
    }

    #[inline]
    pub fn bitmap(&self) -> u32 {
        self.header().bitmap
    }

    #[inline]
    pub fn len(&self) -> u32 {
        self.header().len
    }

    #[inline]
    pub fn slots(&self) -> &[S] {
        // SAFETY: `count` initialised slots follow the header (module invariant).
        unsafe { std::slice::from_raw_parts(self.slots_ptr(), self.header().count as usize) }
    }

    /// The items below each slot (1 for an item, the subtree's count for a child).
    #[inline]
    pub fn weights(&self) -> &[u32] {
        let count = self.header().count as usize;
        // SAFETY: `count` initialised weights follow the slots.
        unsafe { std::slice::from_raw_parts(self.weights_ptr(count), count) }
    }

    pub fn ptr_eq(&self, other: &Node<S>) -> bool {
        self.ptr == other.ptr
    }

    /// Whether only this handle holds the node (a node below a shared one
    /// may be unique and still reachable from a clone: see
    /// [`super::Champ::get_mut_hashed`]).
    #[inline]
    pub fn is_unique(&self) -> bool {
        self.header().refs.load(Ordering::Acquire) == 1
    }
}

impl<S: Clone> Node<S> {
    /// Copies the node (its slots are cloned: one count each) if anyone else
    /// holds it, so that the writes after this touch only this owner's copy.
    #[inline]
    pub fn make_unique(&mut self) {
        if !self.is_unique() {
            crate::keyspace::pinned::add(Self::layout(self.slots().len()).size());
            *self = Node::new(
                self.bitmap(),
                self.len(),
                self.slots().to_vec(),
                self.weights(),
            );
        }
    }

    pub fn set_bitmap(&mut self, bitmap: u32) {
        self.make_unique();
        // SAFETY: unique (just checked), so no other reader sees the write.
        unsafe { (*self.ptr.as_ptr()).bitmap = bitmap }
    }

    pub fn set_len(&mut self, len: u32) {
        self.make_unique();
        // SAFETY: as in `set_bitmap`.
        unsafe { (*self.ptr.as_ptr()).len = len }
    }

    pub fn set_weight(&mut self, at: usize, weight: u32) {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at < count, "slot index out of range");
        // SAFETY: unique, and `at` is one of the `count` initialised weights.
        unsafe { self.weights_ptr(count).add(at).write(weight) }
    }

    pub fn slots_mut(&mut self) -> &mut [S] {
        self.make_unique();
        let count = self.header().count as usize;
        // SAFETY: unique, and `count` initialised slots follow the header.
        unsafe { std::slice::from_raw_parts_mut(self.slots_ptr(), count) }
    }

    /// Replaces the slot at `at` by `f` of it, moving the old slot into `f`
    /// instead of cloning it (an item that moves down into a new child, a
    /// lone item that moves up out of one: a clone of a `Bytes` would
    /// allocate a shared header to promote it).
    pub fn replace_slot_with(&mut self, at: usize, f: impl FnOnce(S) -> S) {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at < count, "slot index out of range");
        /// Aborts if `f` unwinds: the slot is moved out meanwhile, and
        /// unwinding would drop it a second time with the node.
        struct AbortOnUnwind;
        impl Drop for AbortOnUnwind {
            fn drop(&mut self) {
                std::process::abort();
            }
        }
        // SAFETY: unique, and `at` is one of the `count` initialised slots.
        // The slot is read out, and the slot `f` returns is written back
        // before anything else can see the node; `f` cannot unwind in
        // between (the guard aborts first), so the moved-out slot is never
        // dropped twice.
        unsafe {
            let place = self.slots_ptr().add(at);
            let guard = AbortOnUnwind;
            let new = f(place.read());
            std::mem::forget(guard);
            place.write(new);
        }
    }

    /// Adds one item below the slot at `at`: the node's count and that
    /// slot's weight grow by one (a write that made a child or an item's
    /// slot hold one more).
    pub fn count_one_more(&mut self, at: usize) {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at < count, "slot index out of range");
        // SAFETY: unique, and `at` is one of the `count` initialised weights.
        unsafe {
            (*self.ptr.as_ptr()).len += 1;
            let w = self.weights_ptr(count).add(at);
            w.write(w.read() + 1);
        }
    }

    /// The only slot of a one-slot node, moved out when this handle was the
    /// last one (then the block is freed), cloned otherwise.
    pub fn into_single(self) -> S {
        assert_eq!(self.header().count, 1, "a node of one slot");
        if !self.is_unique() {
            return self.slots()[0].clone();
        }
        let this = std::mem::ManuallyDrop::new(self);
        atomic::fence(Ordering::Acquire);
        // SAFETY: the count is 1, so nobody else can reach the block; its one
        // slot is moved out, then the block is freed with its layout without
        // dropping the slot (the `Drop` of this handle never runs).
        unsafe {
            let slot = this.slots_ptr().read();
            alloc::dealloc(this.ptr.as_ptr() as *mut u8, Self::layout(1));
            slot
        }
    }

    /// Inserts `slot` with `weight` at `at`, growing the block by exactly one slot.
    pub fn insert_slot(&mut self, at: usize, slot: S, weight: u32) {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at <= count, "slot index out of range");
        if Self::layout(count + 1) == Self::layout(count) {
            // SAFETY: unique, and the block (whose layout stays) has room for
            // one slot more. The weights move up to their new place first
            // (the slot array grows into their old place), each array's tail
            // then moves up by one and the new entries fill the gaps, so
            // `count + 1` slots and weights are initialised.
            unsafe {
                let old_weights = self.weights_ptr(count);
                let weights = self.weights_ptr(count + 1);
                ptr::copy(old_weights, weights, count);
                ptr::copy(weights.add(at), weights.add(at + 1), count - at);
                weights.add(at).write(weight);
                let base = self.slots_ptr();
                ptr::copy(base.add(at), base.add(at + 1), count - at);
                base.add(at).write(slot);
                (*self.ptr.as_ptr()).count = (count + 1) as u32;
            }
            return;
        }
        let grown = self.moved(count + 1, |from, to| {
            // SAFETY (for `moved`): every slot and weight lands once, the
            // new ones at `at`.
            unsafe {
                ptr::copy_nonoverlapping(from.0, to.0, at);
                to.0.add(at).write(slot);
                ptr::copy_nonoverlapping(from.0.add(at), to.0.add(at + 1), count - at);
                ptr::copy_nonoverlapping(from.1, to.1, at);
                to.1.add(at).write(weight);
                ptr::copy_nonoverlapping(from.1.add(at), to.1.add(at + 1), count - at);
            }
        });
        self.ptr = grown;
    }

    /// Removes and returns the slot at `at` (and its weight), shrinking the
    /// block by one slot.
    pub fn remove_slot(&mut self, at: usize) -> S {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at < count, "slot index out of range");
        if Self::layout(count - 1) == Self::layout(count) {
            // SAFETY: unique; the slot is read out and the slots' tail moves
            // down over it; the weights before and after `at` move down to
            // where a block of `count - 1` keeps them, so exactly `count - 1`
            // initialised slots and weights remain in the block, whose
            // layout stays.
            unsafe {
                let base = self.slots_ptr();
                let slot = base.add(at).read();
                ptr::copy(base.add(at + 1), base.add(at), count - at - 1);
                let old_weights = self.weights_ptr(count);
                let weights = self.weights_ptr(count - 1);
                ptr::copy(old_weights, weights, at);
                ptr::copy(old_weights.add(at + 1), weights.add(at), count - at - 1);
                (*self.ptr.as_ptr()).count = (count - 1) as u32;
                return slot;
            }
        }
        let mut removed = None;
        let shrunk = self.moved(count - 1, |from, to| {
            // SAFETY (for `moved`): every slot and weight but the one at `at`
            // lands once; that slot is read out, so it is owned once.
            unsafe {
                removed = Some(from.0.add(at).read());
                ptr::copy_nonoverlapping(from.0, to.0, at);
                ptr::copy_nonoverlapping(from.0.add(at + 1), to.0.add(at), count - at - 1);
                ptr::copy_nonoverlapping(from.1, to.1, at);
                ptr::copy_nonoverlapping(from.1.add(at + 1), to.1.add(at), count - at - 1);
            }
        });
        self.ptr = shrunk;
        removed.expect("the removed slot was read out")
    }

    /// A block for `count` slots with this node's header, filled by `fill`
    /// from this block's (slots, weights) into the new block's; this block
    /// is freed without dropping its slots, which `fill` moved. A fresh block
    /// and two straight copies cost a fraction of what `realloc` does when
    /// the size class changes (it moves the block anyway, then the arrays
    /// would move again inside it).
    ///
    /// `fill` must leave exactly `count` initialised slots and weights and
    /// must not panic; the caller stores the returned pointer in `self.ptr`.
    fn moved(
        &mut self,
        count: usize,
        fill: impl FnOnce((*mut S, *mut u32), (*mut S, *mut u32)),
    ) -> NonNull<Header> {
        let layout = Self::layout(count);
        // SAFETY: the layout has a non-zero size (it holds the header).
        let raw = unsafe { alloc::alloc(layout) } as *mut Header;
        let Some(fresh) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        let old_count = self.header().count as usize;
        // SAFETY: `self` is unique (the callers made it so) and `fresh` is
        // sized for the header, `count` slots and `count` weights. The
        // header is written, `fill` moves the slots and weights over, and
        // the old block is freed with the layout it was allocated with,
        // its slots not dropped: they live on in the new block.
        unsafe {
            fresh.as_ptr().write(Header {
                refs: AtomicU32::new(1),
                bitmap: self.bitmap(),
                len: self.len(),
                count: count as u32,
            });
            let base = fresh.as_ptr() as *mut u8;
            let to = (
                base.add(Self::slots_offset()) as *mut S,
                base.add(Self::weights_offset(count)) as *mut u32,
            );
            fill((self.slots_ptr(), self.weights_ptr(old_count)), to);
            alloc::dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(old_count));
        }
        fresh
    }
}

impl<S> Clone for Node<S> {
    /// O(1): one more count on the same block.
    fn clone(&self) -> Node<S> {
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        if old > u32::MAX / 2 {
            // As std's Arc: a count this high means a leak; never wrap.
            std::process::abort();
        }
        Node {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<S> Drop for Node<S> {
    fn drop(&mut self) {
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        atomic::fence(Ordering::Acquire);
        let count = self.header().count as usize;
        // SAFETY: this owner took the count to 0, so nobody else can reach
        // the block; its `count` slots are dropped once and the block freed
        // with the layout it was allocated (or last reallocated) with.
        unsafe {
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(self.slots_ptr(), count));
            alloc::dealloc(self.ptr.as_ptr() as *mut u8, Self::layout(count));
        }
    }
}

/// Asks the CPU to start loading the cache line at `addr` (a hint: no effect
/// on other targets).
#[inline]
pub fn prefetch_addr(addr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and never reads into the
    // program's state, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn slots_move_in_and_out_with_counts_kept() {
        let item = Arc::new(());
        let mut node = Node::new(0b101, 2, vec![item.clone(), item.clone()], &[1, 1]);
        assert_eq!(Arc::strong_count(&item), 3);
        let snapshot = node.clone();
        node.insert_slot(1, item.clone(), 5);
        assert_eq!(node.slots().len(), 3);
        assert_eq!(node.weights(), &[1, 5, 1]);
        assert_eq!(snapshot.slots().len(), 2, "a shared node is copied first");
        assert!(!node.ptr_eq(&snapshot));
        let out = node.remove_slot(0);
        drop(out);
        assert_eq!(node.weights(), &[5, 1]);
        assert_eq!(snapshot.weights(), &[1, 1]);
        node.set_bitmap(7);
        node.set_len(9);
        assert_eq!(
            (node.bitmap(), node.len(), snapshot.bitmap()),
            (7, 9, 0b101)
        );
        drop(snapshot);
        drop(node);
        assert_eq!(
            Arc::strong_count(&item),
            1,
            "every slot dropped exactly once"
        );
    }

    #[test]
    fn empty_nodes_grow_and_shrink() {
        let mut node: Node<String> = Node::new(0, 0, Vec::new(), &[]);
        let mut model: Vec<(String, u32)> = Vec::new();
        for i in 0..40 {
            node.insert_slot(i / 2, i.to_string(), i as u32);
            model.insert(i / 2, (i.to_string(), i as u32));
        }
        node.set_weight(3, 99);
        model[3].1 = 99;
        let check = |node: &Node<String>, model: &[(String, u32)]| {
            let slots: Vec<String> = model.iter().map(|(s, _)| s.clone()).collect();
            let weights: Vec<u32> = model.iter().map(|(_, w)| *w).collect();
            assert_eq!(node.slots(), &slots[..]);
            assert_eq!(node.weights(), &weights[..]);
        };
        check(&node, &model);
        while !node.slots().is_empty() {
            let at = node.slots().len() / 2;
            node.remove_slot(at);
            model.remove(at);
            check(&node, &model);
        }
        assert!(node.slots().is_empty());
    }
}
