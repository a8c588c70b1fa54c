//! Fuzzes the Redis RDB reader and the DUMP payload decoder: any bytes give a
//! clean error or a keyspace, never a panic, and no allocation larger than
//! the input justifies (an LZF string may expand up to 90-fold).

#![no_main]

use forkless::keyspace::encodings::Encodings;
use forkless::rdb::reader::{decode_payload, load};
use forkless_fuzz::{largest, reset_largest, PeakAlloc};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The configured database count a server would pass.
const DATABASES: usize = 16;

fuzz_target!(|data: &[u8]| {
    reset_largest();
    let limits = Encodings::default();
    let result = load(data, data.len() as u64, DATABASES, 0, limits, |_| {});
    let _ = decode_payload(data, &limits);
    // The keyspace's fixed tables, the LZF hash table, plus a multiple of the
    // input: a declared count or length never sizes an allocation by itself.
    let bound = 96 * data.len() + 2 * 1024 * 1024;
    assert!(
        largest() <= bound,
        "allocated {} for {} input bytes",
        largest(),
        data.len()
    );
    if let Ok(imported) = result {
        assert!(imported.keys_loaded <= data.len() as u64);
    }
});
