//! A trie node in a single allocation: a reference count, the bitmap, the
//! subtree's item count and an exactly sized array of slots, behind one thin
//! pointer.
//!
//! `Arc<struct { header, Box<[Slot]> }>` costs two allocations and two
//! dependent cache misses per level of every lookup; at a million keys that
//! was half of a SET's cycles. Here the slots follow the header in the same
//! block, so a level costs one miss and a node one heap chunk.
//!
//! # Safety
//!
//! This is the one place in the map with `unsafe` code. Its invariants:
//! - `ptr` points to a live block allocated with `layout(count)` holding an
//!   initialised [`Header`] followed, at `slots_offset()`, by exactly
//!   `header.count` initialised slots;
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
        let slots = Layout::array::<S>(count).expect("node size fits memory");
        Layout::new::<Header>()
            .extend(slots)
            .expect("node size fits memory")
            .0
            .pad_to_align()
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
    fn header(&self) -> &Header {
        // SAFETY: `ptr` points to a live, initialised header (module invariant).
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn slots_ptr(&self) -> *mut S {
        // SAFETY: the slots start `slots_offset()` bytes into the block.
        unsafe { (self.ptr.as_ptr() as *mut u8).add(Self::slots_offset()) as *mut S }
    }

    /// A new unshared node owning `slots`.
    pub fn new(bitmap: u32, len: u32, slots: Vec<S>) -> Node<S> {
        let count = slots.len();
        let layout = Self::layout(count);
        // SAFETY: the layout has a non-zero size (it holds the header).
        let raw = unsafe { alloc::alloc(layout) } as *mut Header;
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        let node = Node {
            ptr,
            _owns: PhantomData,
        };
        // SAFETY: the block is fresh and sized for the header and `count`
        // slots; the slots are moved in and the Vec forgets them.
        unsafe {
            ptr.as_ptr().write(Header {
                refs: AtomicU32::new(1),
                bitmap,
                len,
                count: count as u32,
            });
            let mut slots = slots;
            ptr::copy_nonoverlapping(slots.as_ptr(), node.slots_ptr(), count);
            slots.set_len(0);
        }
        node
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

    pub fn ptr_eq(&self, other: &Node<S>) -> bool {
        self.ptr == other.ptr
    }

    fn is_unique(&self) -> bool {
        self.header().refs.load(Ordering::Acquire) == 1
    }
}

impl<S: Clone> Node<S> {
    /// Copies the node (its slots are cloned: one count each) if anyone else
    /// holds it, so that the writes after this touch only this owner's copy.
    #[inline]
    pub fn make_unique(&mut self) {
        if !self.is_unique() {
            *self = Node::new(self.bitmap(), self.len(), self.slots().to_vec());
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

    pub fn slots_mut(&mut self) -> &mut [S] {
        self.make_unique();
        let count = self.header().count as usize;
        // SAFETY: unique, and `count` initialised slots follow the header.
        unsafe { std::slice::from_raw_parts_mut(self.slots_ptr(), count) }
    }

    /// Inserts `slot` at `at`, growing the block by exactly one slot.
    pub fn insert_slot(&mut self, at: usize, slot: S) {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at <= count, "slot index out of range");
        let old = Self::layout(count);
        let new = Self::layout(count + 1);
        // SAFETY: the block is unique and was allocated with `old`; realloc
        // keeps the header and slots, then the tail moves up by one and the
        // new slot fills the gap, so `count + 1` slots are initialised.
        unsafe {
            let raw = alloc::realloc(self.ptr.as_ptr() as *mut u8, old, new.size()) as *mut Header;
            let Some(ptr) = NonNull::new(raw) else {
                alloc::handle_alloc_error(new)
            };
            self.ptr = ptr;
            let base = self.slots_ptr();
            ptr::copy(base.add(at), base.add(at + 1), count - at);
            base.add(at).write(slot);
            (*ptr.as_ptr()).count = (count + 1) as u32;
        }
    }

    /// Removes and returns the slot at `at`, shrinking the block by one slot.
    pub fn remove_slot(&mut self, at: usize) -> S {
        self.make_unique();
        let count = self.header().count as usize;
        assert!(at < count, "slot index out of range");
        let old = Self::layout(count);
        let new = Self::layout(count - 1);
        // SAFETY: unique; the slot is read out, the tail moves down over it,
        // and the count drops before the block shrinks, so exactly `count - 1`
        // initialised slots remain.
        unsafe {
            let base = self.slots_ptr();
            let slot = base.add(at).read();
            ptr::copy(base.add(at + 1), base.add(at), count - at - 1);
            (*self.ptr.as_ptr()).count = (count - 1) as u32;
            let raw = alloc::realloc(self.ptr.as_ptr() as *mut u8, old, new.size()) as *mut Header;
            let Some(ptr) = NonNull::new(raw) else {
                alloc::handle_alloc_error(new)
            };
            self.ptr = ptr;
            slot
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn slots_move_in_and_out_with_counts_kept() {
        let item = Arc::new(());
        let mut node = Node::new(0b101, 2, vec![item.clone(), item.clone()]);
        assert_eq!(Arc::strong_count(&item), 3);
        let snapshot = node.clone();
        node.insert_slot(1, item.clone());
        assert_eq!(node.slots().len(), 3);
        assert_eq!(snapshot.slots().len(), 2, "a shared node is copied first");
        assert!(!node.ptr_eq(&snapshot));
        let out = node.remove_slot(0);
        drop(out);
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
        let mut node: Node<String> = Node::new(0, 0, Vec::new());
        for i in 0..40 {
            node.insert_slot(i / 2, i.to_string());
        }
        assert_eq!(node.slots().len(), 40);
        while !node.slots().is_empty() {
            node.remove_slot(node.slots().len() / 2);
        }
        assert!(node.slots().is_empty());
    }
}
