//! The memory allocator the server runs on, and what it reports about itself.
//!
//! One allocator is chosen at build time by cargo feature: `jemalloc` (the
//! default, as in Redis; `benches/README.md` has the measurements behind the
//! choice), `mimalloc`, or neither for glibc malloc. The `forkless` binary
//! installs [`Global`] as its `#[global_allocator]`; the library does not, so
//! tests and tools that link it may bring their own.
//!
//! [`stats`] reads the allocator's own counters for INFO memory and MEMORY
//! STATS; it runs when those commands ask and in the 10 Hz metrics sampler
//! ([`sample_peak`], for `used_memory_peak`), never per command. What each
//! allocator can tell:
//!
//! | figure | jemalloc | mimalloc | glibc |
//! |---|---|---|---|
//! | `allocated` (= `used_memory`) | `stats.allocated` | committed bytes | `mallinfo2`: `uordblks + hblkhd` |
//! | `active` | `stats.active` | committed bytes | `arena + hblkhd` |
//! | `resident` | `stats.resident` | committed bytes | `arena + hblkhd` |
//!
//! Only jemalloc counts the bytes handed out separately from the pages that
//! hold them; with the others, `used_memory` includes their free lists.
//! jemalloc's counters are refreshed by advancing its `epoch` before a read.
//! jemalloc also runs a background thread that returns unused pages to the
//! system (`jemalloc-bg-thread`, on by default as in Redis).

use std::sync::atomic::{AtomicU64, Ordering};

pub use crate::alloc_count::Counting;

/// The allocator of this build, for `#[global_allocator]`.
#[cfg(feature = "mimalloc")]
pub type Global = Counting<mimalloc::MiMalloc>;
/// The allocator of this build, for `#[global_allocator]`.
#[cfg(feature = "mimalloc")]
pub const GLOBAL: Global = Counting(mimalloc::MiMalloc);

/// The allocator of this build, for `#[global_allocator]`.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
pub type Global = Counting<tikv_jemallocator::Jemalloc>;
/// The allocator of this build, for `#[global_allocator]`.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
pub const GLOBAL: Global = Counting(tikv_jemallocator::Jemalloc);

/// The allocator of this build, for `#[global_allocator]`.
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
pub type Global = Counting<std::alloc::System>;
/// The allocator of this build, for `#[global_allocator]`.
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
pub const GLOBAL: Global = Counting(std::alloc::System);

/// The allocator's own figures, in bytes (see the module doc for their
/// sources).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed out to the program: `used_memory`.
    pub allocated: u64,
    /// Bytes in the pages that hold them (allocated plus internal
    /// fragmentation).
    pub active: u64,
    /// Bytes the allocator holds in physical memory (active plus its
    /// metadata and dirty pages not yet returned).
    pub resident: u64,
}

/// The highest `allocated` seen by [`stats`] or [`sample_peak`].
static PEAK: AtomicU64 = AtomicU64::new(0);
/// `allocated` when the server had set up but not yet loaded data.
static STARTUP: AtomicU64 = AtomicU64::new(0);

/// `used_memory`: the bytes the program holds, from the counting layer
/// (cheap enough for every command), or the allocator's own figure where the
/// counting allocator is not installed.
pub fn used_memory() -> u64 {
    if crate::alloc_count::installed() {
        crate::alloc_count::used()
    } else {
        stats().allocated
    }
}

/// Reads the allocator's figures now, and raises the peak.
pub fn stats() -> Stats {
    let s = imp::stats();
    PEAK.fetch_max(s.allocated, Ordering::Relaxed);
    s
}

/// The highest `used_memory` seen so far.
pub fn peak() -> u64 {
    PEAK.load(Ordering::Relaxed)
}

/// Called by the metrics sampler: keeps [`peak`] current between INFO calls
/// where reading the figures is cheap (jemalloc, mimalloc). glibc's
/// `mallinfo2` walks every free chunk under the arena locks, so there the
/// peak is what INFO and MEMORY STATS saw.
pub fn sample_peak() {
    if imp::CHEAP_STATS {
        stats();
    }
}

/// Records the startup footprint (`used_memory_startup`), before any data
/// is loaded.
pub fn mark_startup() {
    STARTUP.store(stats().allocated, Ordering::Relaxed);
}

/// `used_memory_startup`.
pub fn startup() -> u64 {
    STARTUP.load(Ordering::Relaxed)
}

/// `mem_allocator` as INFO prints it (`jemalloc-5.3.0`, `libc`).
pub fn name() -> String {
    imp::name()
}

/// Returns free memory the allocator holds to the system (MEMORY PURGE).
pub fn purge() {
    imp::purge()
}

/// The allocator's statistics report (MEMORY MALLOC-STATS), if it has one.
pub fn report() -> Option<String> {
    imp::report()
}

/// Sets jemalloc's background purging thread (`jemalloc-bg-thread`); other
/// allocators have none, and this does nothing.
pub fn set_background_thread(on: bool) {
    imp::set_background_thread(on)
}

/// The process's resident set size in bytes (`used_memory_rss`), from
/// `/proc/self/statm`.
pub fn process_rss() -> u64 {
    let page = page_size();
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * page
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

/// A ratio of two figures as Redis computes it (0 when the divisor is 0).
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A difference of two figures, signed as Redis prints it.
pub fn diff(a: u64, b: u64) -> i64 {
    a as i64 - b as i64
}

#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
mod imp {
    use super::Stats;
    use tikv_jemalloc_ctl::{background_thread, epoch, stats, stats_print, version};

    pub const CHEAP_STATS: bool = true;

    pub fn stats() -> Stats {
        // The counters are a snapshot taken at the last epoch.
        let _ = epoch::advance();
        let read = |r: tikv_jemalloc_ctl::Result<usize>| r.unwrap_or(0) as u64;
        Stats {
            allocated: read(stats::allocated::read()),
            active: read(stats::active::read()),
            resident: read(stats::resident::read()),
        }
    }

    pub fn name() -> String {
        let v = version::read().unwrap_or("");
        // "5.3.1-0-g81034ce…": the release, as Redis prints it.
        format!("jemalloc-{}", v.split('-').next().unwrap_or(v))
    }

    pub fn purge() {
        // MALLCTL_ARENAS_ALL: every arena.
        let name = c"arena.4096.purge";
        // SAFETY: a void mallctl: no old or new value pointers.
        unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }

    pub fn report() -> Option<String> {
        let mut out = Vec::new();
        stats_print::stats_print(&mut out, stats_print::Options::default()).ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    pub fn set_background_thread(on: bool) {
        let _ = background_thread::write(on);
    }
}

#[cfg(feature = "mimalloc")]
mod imp {
    use super::Stats;
    use std::ffi::{c_char, c_void, CStr};

    pub const CHEAP_STATS: bool = true;

    pub fn stats() -> Stats {
        let mut commit = 0usize;
        // SAFETY: every out-parameter is nullable; one is a valid pointer.
        unsafe {
            libmimalloc_sys::mi_process_info(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut commit,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
        let c = commit as u64;
        Stats {
            allocated: c,
            active: c,
            resident: c,
        }
    }

    pub fn name() -> String {
        // SAFETY: no preconditions.
        let v = unsafe { libmimalloc_sys::mi_version() };
        format!("mimalloc-{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
    }

    pub fn purge() {
        // SAFETY: no preconditions.
        unsafe { libmimalloc_sys::mi_collect(true) }
    }

    unsafe extern "C" fn append(msg: *const c_char, arg: *mut c_void) {
        // SAFETY: `arg` is the String passed to mi_stats_print_out below and
        // `msg` a NUL-terminated string, for the duration of the call.
        unsafe {
            let out = &mut *(arg as *mut String);
            out.push_str(&CStr::from_ptr(msg).to_string_lossy());
        }
    }

    pub fn report() -> Option<String> {
        let mut out = String::new();
        // SAFETY: `append` only writes into `out`, which outlives the call.
        unsafe {
            libmimalloc_sys::mi_stats_print_out(
                Some(append),
                &mut out as *mut String as *mut c_void,
            )
        };
        Some(out)
    }

    pub fn set_background_thread(_on: bool) {}
}

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
mod imp {
    use super::Stats;

    pub const CHEAP_STATS: bool = false;

    pub fn stats() -> Stats {
        // SAFETY: no preconditions (glibc ≥ 2.33).
        let m = unsafe { libc::mallinfo2() };
        let allocated = (m.uordblks + m.hblkhd) as u64;
        let footprint = (m.arena + m.hblkhd) as u64;
        Stats {
            allocated,
            active: footprint,
            resident: footprint,
        }
    }

    pub fn name() -> String {
        "libc".into()
    }

    pub fn purge() {
        // SAFETY: no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
    }

    pub fn report() -> Option<String> {
        None
    }

    pub fn set_background_thread(_on: bool) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read() {
        let s = stats();
        assert!(s.active >= s.allocated || s.allocated == 0, "{s:?}");
        assert!(peak() >= s.allocated);
        assert!(process_rss() > 0);
        assert!(!name().is_empty());
        purge();
    }

    #[test]
    fn ratios_as_redis() {
        assert_eq!(ratio(3, 2), 1.5);
        assert_eq!(ratio(3, 0), 0.0);
        assert_eq!(diff(2, 3), -1);
    }
}
