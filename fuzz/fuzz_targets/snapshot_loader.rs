//! Fuzzes the snapshot loader (format v1 frames and v2 blocks; seeds of
//! both): any bytes give a clean error or a valid keyspace, never a panic,
//! and no allocation larger than the file justifies.

#![no_main]

use forkless::persistence::loader::load_bytes;
use forkless_fuzz::{largest, reset_largest, PeakAlloc};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The configured database count a server would pass.
const DATABASES: usize = 16;

fuzz_target!(|data: &[u8]| {
    reset_largest();
    let result = load_bytes(data, Some(DATABASES), 0);
    // The keyspace's fixed tables plus a multiple of the input: a declared
    // count or length must never size an allocation by itself. Format v2's
    // Snappy blocks may decode to 32 times their stored size, no more.
    let bound = 32 * data.len() + 1024 * 1024;
    assert!(
        largest() <= bound,
        "allocated {} for a {}-byte file",
        largest(),
        data.len()
    );
    if let Ok(loaded) = result {
        assert!(loaded.keys_loaded + loaded.keys_expired <= loaded.header.key_count);
        // A loaded keyspace is usable: every database can be walked.
        let _ = format!("{:?}", loaded.header);
    }
});
