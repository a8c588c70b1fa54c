//! Fuzzes the RESP request parser: any bytes, fed in any chunking, must parse
//! without panicking, without allocating from a declared length, and give the
//! same commands and the same error as parsing the whole input at once.

#![no_main]

use bytes::{Bytes, BytesMut};
use forkless::protocol::{parse_command, ProtocolError, INLINE_MAX};
use forkless_fuzz::{largest, reset_largest, PeakAlloc};
use libfuzzer_sys::fuzz_target;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// A small bulk limit so the fuzzer reaches the "invalid bulk length" path too.
const MAX_BULK: usize = 1 << 20;

/// Everything a parse of a byte stream produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    commands: Vec<Vec<Bytes>>,
    error: Option<ProtocolError>,
    /// Bytes left unconsumed (an incomplete command), when no error stopped it.
    leftover: usize,
}

/// Drains every complete command from `buf`; true when an error ended parsing.
fn drain(buf: &mut BytesMut, out: &mut Outcome) -> bool {
    loop {
        let before = buf.len();
        match parse_command(buf, MAX_BULK) {
            Ok(Some(cmd)) => out.commands.push(cmd),
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete command consumed bytes");
                return false;
            }
            Err(e) => {
                out.error = Some(e);
                return true;
            }
        }
    }
}

fn parse_chunked(data: &[u8], chunk_sizes: &[u8]) -> Outcome {
    let mut out = Outcome {
        commands: Vec::new(),
        error: None,
        leftover: 0,
    };
    let mut buf = BytesMut::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let size = if chunk_sizes.is_empty() {
            data.len()
        } else {
            chunk_sizes[i % chunk_sizes.len()] as usize + 1
        };
        i += 1;
        let end = (pos + size).min(data.len());
        buf.extend_from_slice(&data[pos..end]);
        pos = end;
        if drain(&mut buf, &mut out) {
            return out;
        }
    }
    out.leftover = buf.len();
    out
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many of the following bytes describe the chunking.
    let Some((&n, rest)) = input.split_first() else {
        return;
    };
    let n = (n as usize % 8).min(rest.len());
    let (chunk_sizes, data) = rest.split_at(n);

    reset_largest();
    let whole = parse_chunked(data, &[]);
    // Nothing the parser keeps may be much larger than the bytes it was given,
    // whatever lengths the input declares.
    let bound = 4 * data.len() + 64 * 1024;
    assert!(
        largest() <= bound,
        "allocated {} for {} input bytes",
        largest(),
        data.len()
    );

    let chunked = parse_chunked(data, chunk_sizes);
    // Past INLINE_MAX an unterminated line is an error only while the newline
    // has not arrived yet, so chunking may legitimately differ (as in Redis).
    if data.len() <= INLINE_MAX {
        assert_eq!(whole, chunked, "chunking changed the result");
    }
});
