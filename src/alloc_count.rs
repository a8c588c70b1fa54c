//! A counting layer over the global allocator: the bytes the program holds,
//! readable in nanoseconds, for `maxmemory` checks before every write.
//!
//! Redis keeps `used_memory` the same way (zmalloc adds each allocation's
//! usable size to a counter). Reading the allocator's own statistics instead
//! costs microseconds (jemalloc merges its arenas' counters on each epoch), too
//! much for every command.
//!
//! Each thread adds into a thread-local balance and moves it into the shared
//! total once it passes [`FLUSH`] bytes either way, so the hot path touches no
//! shared cache line. [`used`] is therefore exact for the calling thread and
//! off by less than [`FLUSH`] per other thread.
//!
//! Sizes are counted as jemalloc's size classes round them ([`usable_size`]),
//! so the total tracks jemalloc's `stats.allocated`; with other allocators it
//! is the same estimate of what each request costs.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// A thread moves its balance into [`TOTAL`] past this many bytes.
pub const FLUSH: i64 = 64 * 1024;

/// Bytes held, as flushed by every thread.
static TOTAL: AtomicI64 = AtomicI64::new(0);
/// Whether the counting allocator is the global one (set by its first
/// allocation; a program linking the library may install another).
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates,
    // so the allocator itself may use it.
    static BALANCE: Cell<i64> = const { Cell::new(0) };
}

/// Wraps the allocator `A`, counting what it hands out.
pub struct Counting<A>(pub A);

/// The bytes `size` costs in jemalloc's size classes: a 16-byte quantum up to
/// 128 bytes, then four classes per doubling up to 16 KiB; larger requests
/// take whole 4 KiB pages (as `nallocx` reports them).
#[inline]
pub fn usable_size(size: usize, align: usize) -> usize {
    let size = if align > 16 {
        (size + align - 1) & !(align - 1)
    } else {
        size
    };
    if size <= 8 {
        8
    } else if size <= 128 {
        (size + 15) & !15
    } else if size > 16384 {
        (size + 4095) & !4095
    } else {
        let lg = usize::BITS - (size - 1).leading_zeros();
        let step = 1usize << (lg - 3);
        (size + step - 1) & !(step - 1)
    }
}

#[inline]
fn record(delta: i64) {
    let flushed = BALANCE.try_with(|b| {
        let v = b.get() + delta;
        if v >= FLUSH || v <= -FLUSH {
            TOTAL.fetch_add(v, Ordering::Relaxed);
            b.set(0);
        } else {
            b.set(v);
        }
    });
    if flushed.is_err() {
        TOTAL.fetch_add(delta, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `A`, which upholds the
// GlobalAlloc contract; the counting around it touches only atomics and a
// const-initialised thread-local, and never allocates.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            if !INSTALLED.load(Ordering::Relaxed) {
                INSTALLED.store(true, Ordering::Relaxed);
            }
            record(usable_size(layout.size(), layout.align()) as i64);
        }
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            record(usable_size(layout.size(), layout.align()) as i64);
        }
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        record(-(usable_size(layout.size(), layout.align()) as i64));
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let old = usable_size(layout.size(), layout.align()) as i64;
            record(usable_size(new_size, layout.align()) as i64 - old);
        }
        p
    }
}

/// Whether [`used`] counts (the counting allocator is the global one).
pub fn installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes held by the whole program: exact for this thread's allocations,
/// within [`FLUSH`] per other thread.
#[inline]
pub fn used() -> u64 {
    let local = BALANCE.try_with(Cell::get).unwrap_or(0);
    (TOTAL.load(Ordering::Relaxed) + local).max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_follow_jemalloc() {
        let cases = [
            (1, 8),
            (8, 8),
            (9, 16),
            (17, 32),
            (100, 112),
            (128, 128),
            (129, 160),
            (161, 192),
            (257, 320),
            (4097, 5120),
            (16385, 20480),
            (32769, 36864),
            (1 << 20, 1 << 20),
            ((1 << 20) + 1, (1 << 20) + 4096),
        ];
        for (size, class) in cases {
            assert_eq!(usable_size(size, 8), class, "size {size}");
        }
        assert_eq!(usable_size(24, 64), 64);
    }

    #[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
    #[test]
    fn size_classes_equal_nallocx() {
        for size in (1..70_000).chain((1..64).map(|i| (i << 20) + i)) {
            // SAFETY: nallocx only computes a size class.
            let expected = unsafe { tikv_jemalloc_sys::nallocx(size, 0) };
            assert_eq!(usable_size(size, 8), expected, "size {size}");
        }
    }
}
