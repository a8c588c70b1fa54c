//! MEMORY USAGE's estimate against what the heap really holds: a counting
//! global allocator measures the bytes a 1,000-element list, hash and set, a
//! 300-field listpack hash and a 500-member intset take (malloc's usable size
//! plus its 8-byte header per block), and the estimate must be within a factor
//! of two of it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use bytes::Bytes;
use forkless::commands::introspection::{entry_usage, value_usage};
use forkless::keyspace::encodings::Encodings;
use forkless::keyspace::list::{Fill, List};
use forkless::keyspace::set::Set;
use forkless::keyspace::{Entry, Hash, Value};

extern "C" {
    fn malloc_usable_size(ptr: *mut std::ffi::c_void) -> usize;
}

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Bytes a block really occupies: what malloc made usable plus its header.
/// Blocks with larger alignment than malloc's go through another path and
/// are counted by request size.
fn held(ptr: *mut u8, layout: Layout) -> isize {
    if layout.align() <= 16 {
        (unsafe { malloc_usable_size(ptr.cast()) } + 8) as isize
    } else {
        layout.size() as isize
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(held(p, layout), Ordering::SeqCst);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(held(ptr, layout), Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let before = held(ptr, layout);
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let new_layout = Layout::from_size_align(new_size, layout.align()).unwrap();
            LIVE.fetch_add(held(p, new_layout) - before, Ordering::SeqCst);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Stored strings are copied out of the request buffer exactly as the
/// server's write commands do (`Bytes::copy_from_slice`).
fn b(s: String) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Builds a value and returns (bytes the heap holds for it, the estimate).
fn measure(make: impl FnOnce() -> (Bytes, Value)) -> (isize, usize) {
    let before = LIVE.load(Ordering::SeqCst);
    let (key, value) = make();
    // The key's slot in a database map. (A map of one key allocates a whole
    // 32-slot root node; with 1,000-element values that is a few percent.)
    let mut map = imbl::HashMap::new();
    map.insert(
        key.clone(),
        Entry {
            value,
            expire_at: None,
        },
    );
    let held = LIVE.load(Ordering::SeqCst) - before;
    let entry = map.get(&key).unwrap();
    let estimate = entry_usage(&key, entry, 0);
    let sampled = entry_usage(&key, entry, 5);
    assert!(
        (sampled as f64 / estimate as f64 - 1.0).abs() < 0.5,
        "SAMPLES 5 {sampled} vs all {estimate}"
    );
    drop(map);
    (held, estimate)
}

/// Like [`measure`] for a value alone, against `value_usage`: for values small
/// enough that a map's root node would dwarf them.
fn measure_value(make: impl FnOnce() -> Value) -> (isize, usize) {
    let before = LIVE.load(Ordering::SeqCst);
    let value = make();
    let held = LIVE.load(Ordering::SeqCst) - before;
    let estimate = value_usage(&value, 0);
    drop(value);
    (held, estimate)
}

fn check(what: &str, (held, estimate): (isize, usize)) {
    let ratio = estimate as f64 / held as f64;
    eprintln!("{what}: heap {held} bytes, MEMORY USAGE {estimate} bytes, ratio {ratio:.2}");
    assert!(
        (0.5..=2.0).contains(&ratio),
        "{what}: estimate {estimate} vs real {held}"
    );
}

// One test function: the counter is process-wide, so nothing else may allocate meanwhile.
#[test]
fn memory_usage_is_within_twice_the_real_heap() {
    check(
        "list",
        measure(|| {
            let list: List = (0..1000).map(|i| format!("element:{i}")).collect();
            (b("mylist".into()), Value::List(list))
        }),
    );
    check(
        "list pushed at the front one by one",
        measure(|| {
            let mut list = List::new();
            for i in 0..1000 {
                list.push_front(format!("element:{i}").as_bytes(), Fill::DEFAULT);
            }
            (b("mylist".into()), Value::List(list))
        }),
    );
    check(
        "list of 64 KB chunks",
        measure(|| {
            let list = List::from_elems((0..100_000).map(|i| format!("e{i}")), Fill(-5));
            (b("biglist".into()), Value::List(list))
        }),
    );
    check(
        "hash",
        measure(|| {
            let limits = Encodings::default();
            let mut hash = Hash::new();
            for i in 0..1000 {
                hash.insert(
                    format!("field:{i}").as_bytes(),
                    format!("value:{i}").as_bytes(),
                    &limits,
                );
            }
            assert_eq!(hash.encoding_name(), "hashtable");
            (b("myhash".into()), Value::Hash(hash))
        }),
    );
    check(
        "listpack hash",
        measure(|| {
            let limits = Encodings::default();
            let mut hash = Hash::new();
            for i in 0..300 {
                hash.insert(
                    format!("field:{i}").as_bytes(),
                    format!("value:{i}").as_bytes(),
                    &limits,
                );
            }
            assert_eq!(hash.encoding_name(), "listpack");
            (b("smallhash".into()), Value::Hash(hash))
        }),
    );
    check(
        "set",
        measure(|| {
            let limits = Encodings::default();
            let mut set = Set::new();
            for i in 0..1000 {
                set.insert(format!("member:{i}").as_bytes(), &limits);
            }
            assert_eq!(set.encoding_name(), "hashtable");
            (b("myset".into()), Value::Set(set))
        }),
    );
    check(
        "set of long members",
        measure(|| {
            let limits = Encodings::default();
            let mut set = Set::new();
            for i in 0..1000 {
                set.insert(format!("{i}:{}", "x".repeat(200)).as_bytes(), &limits);
            }
            (b("bigset".into()), Value::Set(set))
        }),
    );
    check(
        "intset",
        measure_value(|| {
            let set: Set = (0..500).map(|i| (i * 1000).to_string()).collect();
            assert_eq!(set.encoding_name(), "intset");
            // As a load or an unpacked record makes it: exactly sized.
            Value::Set(Set::from_intset_bytes(set.intset_bytes().unwrap()).unwrap())
        }),
    );
}
