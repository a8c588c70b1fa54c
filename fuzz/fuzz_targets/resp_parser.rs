//! Fuzzes the RESP request parser: any bytes, fed in any chunking, must parse
//! without panicking, without allocating from a declared length, and give the
//! same commands and the same error as parsing the whole input at once.

#![no_main]

use bytes::{Bytes, BytesMut};
use forkless::protocol::{ProtocolError, RequestParser, INLINE_MAX};
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
    /// An incomplete command is left (in the buffer or the parser), when no
    /// error stopped it.
    incomplete: bool,
}

/// Drains every complete command from `buf`; true when an error ended parsing.
fn drain(parser: &mut RequestParser, buf: &mut BytesMut, out: &mut Outcome) -> bool {
    loop {
        match parser.next(buf, MAX_BULK) {
            Ok(Some(cmd)) => out.commands.push(cmd),
            Ok(None) => return false,
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
        incomplete: false,
    };
    let mut parser = RequestParser::default();
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
        if drain(&mut parser, &mut buf, &mut out) {
            return out;
        }
    }
    out.incomplete = !buf.is_empty() || parser.in_progress();
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
