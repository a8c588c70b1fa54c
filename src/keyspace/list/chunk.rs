//! One chunk of a list: a run of elements packed into a single byte buffer,
//! the counterpart of one listpack in a Redis quicklist node.
//!
//! # Layout
//!
//! The live bytes are `buf[head..]`; each element is
//!
//! | bytes       | meaning                                                  |
//! |-------------|----------------------------------------------------------|
//! | varint      | the element's length `len` (LEB128, low group first)     |
//! | `len` bytes | the element                                              |
//! | back-varint | `len` again, its LEB128 bytes in reverse order            |
//!
//! The trailing copy of the length lets a walk run backwards from the end, as
//! Redis's listpack `backlen` does, so both ends pop in O(1) and an index
//! walks from the nearer end. An element of fewer than 128 bytes costs its
//! length plus two bytes.
//!
//! `buf[..head]` is a gap left by front pops and kept for front pushes, so
//! pushing and popping at the front moves no bytes. A chunk that stops being
//! an end of its list is compacted (gap and spare capacity released).

use std::fmt;

use bytes::Bytes;

use crate::keyspace::listpack::varint_len;

/// The smallest front gap opened for a push at the front.
const MIN_GAP: usize = 16;

pub(super) struct Chunk {
    buf: Vec<u8>,
    head: usize,
    count: usize,
}

/// Bytes one element of `len` bytes takes in a chunk.
#[inline]
pub(super) fn entry_size(len: usize) -> usize {
    len + 2 * varint_len(len)
}

#[inline]
fn put_varint(mut v: usize, out: &mut [u8]) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        out[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    out[i] = v as u8;
    i + 1
}

/// Writes one element into `out`, which is exactly [`entry_size`] long.
#[inline]
fn put_entry(elem: &[u8], out: &mut [u8]) {
    if elem.len() < 0x80 {
        // One length byte at each end: most elements.
        let last = out.len() - 1;
        out[0] = elem.len() as u8;
        out[1..last].copy_from_slice(elem);
        out[last] = elem.len() as u8;
        return;
    }
    let n = put_varint(elem.len(), out);
    out[n..n + elem.len()].copy_from_slice(elem);
    let tail = &mut out[n + elem.len()..];
    put_varint(elem.len(), tail);
    tail.reverse();
}

/// The varint at the start of `bytes`: `(value, bytes read)`. Chunks only hold
/// bytes this module wrote, so the encoding is trusted.
#[inline]
fn get_varint(bytes: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut i = 0;
    loop {
        let b = bytes[i];
        v |= usize::from(b & 0x7f) << (7 * i);
        i += 1;
        if b & 0x80 == 0 {
            return (v, i);
        }
    }
}

/// The size of the whole entry that starts at `bytes[pos]`; one byte read
/// for an element shorter than 128 bytes (an index walks these).
#[inline]
fn entry_size_at(bytes: &[u8], pos: usize) -> usize {
    let b = bytes[pos];
    if b < 0x80 {
        return usize::from(b) + 2;
    }
    let (len, n) = get_varint(&bytes[pos..]);
    len + 2 * n
}

/// The size of the whole entry that ends at `bytes[..end]`.
#[inline]
fn entry_size_before(bytes: &[u8], end: usize) -> usize {
    let b = bytes[end - 1];
    if b < 0x80 {
        return usize::from(b) + 2;
    }
    let (len, n) = get_back_varint(&bytes[..end]);
    len + 2 * n
}

/// The back-varint that ends `bytes`: `(value, bytes read)`.
#[inline]
fn get_back_varint(bytes: &[u8]) -> (usize, usize) {
    let mut v = 0usize;
    let mut i = 0;
    loop {
        let b = bytes[bytes.len() - 1 - i];
        v |= usize::from(b & 0x7f) << (7 * i);
        i += 1;
        if b & 0x80 == 0 {
            return (v, i);
        }
    }
}

impl Chunk {
    pub(super) fn new() -> Chunk {
        Chunk {
            buf: Vec::new(),
            head: 0,
            count: 0,
        }
    }

    /// A chunk of the elements of `elems`, with no spare room.
    #[cfg(test)]
    pub(super) fn from_elems<'a>(elems: impl IntoIterator<Item = &'a [u8]>) -> Chunk {
        let mut c = Chunk::new();
        for e in elems {
            c.push_back(e);
        }
        c.compact();
        c
    }

    /// The chunk whose [`Chunk::bytes`] are `bytes` (bytes a chunk gave, so
    /// the encoding is trusted), with no spare room.
    pub(super) fn from_bytes(bytes: &[u8]) -> Chunk {
        let mut count = 0;
        let mut pos = 0;
        while pos < bytes.len() {
            pos += entry_size_at(bytes, pos);
            count += 1;
        }
        Chunk {
            buf: bytes.to_vec(),
            head: 0,
            count,
        }
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// The encoded bytes of the elements (the layout in the module doc).
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        &self.buf[self.head..]
    }

    #[inline]
    pub(super) fn byte_len(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Heap bytes the buffer holds, gap and spare capacity included.
    pub(super) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops the gap and the spare capacity.
    pub(super) fn compact(&mut self) {
        if self.head > 0 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
        self.buf.shrink_to_fit();
    }

    pub(super) fn iter(&self) -> ChunkIter<'_> {
        ChunkIter {
            bytes: self.bytes(),
            count: self.count,
        }
    }

    /// The elements at positions `from..to`: one walk to `from` (from the
    /// nearer end), then the shorter of a walk over the range and a walk
    /// back from the end.
    pub(super) fn iter_range(&self, from: usize, to: usize) -> ChunkIter<'_> {
        debug_assert!(from <= to && to <= self.count);
        let bytes = self.bytes();
        let start = self.offset_of(from);
        let end = if to - from <= self.count - to {
            let mut pos = start;
            for _ in from..to {
                pos += entry_size_at(bytes, pos);
            }
            pos
        } else {
            self.offset_of(to)
        };
        ChunkIter {
            bytes: &bytes[start..end],
            count: to - from,
        }
    }

    /// The byte offset (in [`Chunk::bytes`]) where element `i` starts; the end
    /// for `i == len`. Walks from the nearer end.
    fn offset_of(&self, i: usize) -> usize {
        let bytes = self.bytes();
        if i <= self.count / 2 {
            let mut pos = 0;
            for _ in 0..i {
                pos += entry_size_at(bytes, pos);
            }
            pos
        } else {
            let mut end = bytes.len();
            for _ in i..self.count {
                end -= entry_size_before(bytes, end);
            }
            end
        }
    }

    /// Element `i` and the byte range of its whole entry.
    fn entry(&self, i: usize) -> (&[u8], std::ops::Range<usize>) {
        let start = self.offset_of(i);
        let bytes = self.bytes();
        let (len, n) = get_varint(&bytes[start..]);
        let data = start + n..start + n + len;
        (&bytes[data], start..start + len + 2 * n)
    }

    pub(super) fn get(&self, i: usize) -> &[u8] {
        self.entry(i).0
    }

    pub(super) fn push_back(&mut self, elem: &[u8]) {
        let size = entry_size(elem.len());
        let live = self.byte_len();
        // A queue (push back, pop front) would otherwise grow the buffer for
        // ever: reuse the gap once it is as large as what is left.
        if self.head > 0 && self.buf.len() + size > self.buf.capacity() && self.head >= live {
            self.buf.copy_within(self.head.., 0);
            self.buf.truncate(live);
            self.head = 0;
        }
        let at = self.buf.len();
        self.buf.resize(at + size, 0);
        put_entry(elem, &mut self.buf[at..]);
        self.count += 1;
    }

    pub(super) fn push_front(&mut self, elem: &[u8]) {
        let size = entry_size(elem.len());
        if self.head < size {
            // Open a gap as large as the live bytes (amortised O(1) per byte),
            // never smaller than the element.
            let live = self.byte_len();
            let gap = size.max(live).max(MIN_GAP);
            let mut buf = Vec::with_capacity(gap + live);
            buf.resize(gap, 0);
            buf.extend_from_slice(self.bytes());
            self.buf = buf;
            self.head = gap;
        }
        self.head -= size;
        put_entry(elem, &mut self.buf[self.head..self.head + size]);
        self.count += 1;
    }

    /// Removes the first element; the chunk must not be empty.
    pub(super) fn pop_front(&mut self) -> Bytes {
        let bytes = self.bytes();
        let (len, n) = get_varint(bytes);
        let elem = Bytes::copy_from_slice(&bytes[n..n + len]);
        self.head += len + 2 * n;
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        elem
    }

    /// Removes the last element; the chunk must not be empty.
    pub(super) fn pop_back(&mut self) -> Bytes {
        let bytes = self.bytes();
        let (len, n) = get_back_varint(bytes);
        let end = bytes.len() - n;
        let elem = Bytes::copy_from_slice(&bytes[end - len..end]);
        self.buf.truncate(self.buf.len() - len - 2 * n);
        self.count -= 1;
        if self.count == 0 {
            self.buf.clear();
            self.head = 0;
        }
        elem
    }

    pub(super) fn front(&self) -> Option<&[u8]> {
        self.iter().next()
    }

    pub(super) fn back(&self) -> Option<&[u8]> {
        self.iter().next_back()
    }

    /// Inserts `elem` so that it becomes element `i` (`i <= len`).
    pub(super) fn insert(&mut self, i: usize, elem: &[u8]) {
        if i == 0 {
            return self.push_front(elem);
        }
        if i == self.count {
            return self.push_back(elem);
        }
        let at = self.head + self.offset_of(i);
        let mut entry = vec![0; entry_size(elem.len())];
        put_entry(elem, &mut entry);
        self.buf.splice(at..at, entry);
        self.count += 1;
    }

    /// Replaces element `i` with `elem`.
    pub(super) fn replace(&mut self, i: usize, elem: &[u8]) {
        let (_, range) = self.entry(i);
        let mut entry = vec![0; entry_size(elem.len())];
        put_entry(elem, &mut entry);
        let (start, end) = (self.head + range.start, self.head + range.end);
        if end - start == entry.len() {
            self.buf[start..end].copy_from_slice(&entry);
        } else {
            self.buf.splice(start..end, entry);
        }
    }

    /// Removes element `i`.
    pub(super) fn remove(&mut self, i: usize) {
        let (_, range) = self.entry(i);
        self.buf
            .drain(self.head + range.start..self.head + range.end);
        self.count -= 1;
    }

    /// Removes the first `n` elements (`n <= len`).
    pub(super) fn drop_front(&mut self, n: usize) {
        let off = self.offset_of(n);
        self.head += off;
        self.count -= n;
    }

    /// Keeps the first `n` elements (`n <= len`).
    pub(super) fn truncate(&mut self, n: usize) {
        let off = self.offset_of(n);
        self.buf.truncate(self.head + off);
        self.count = n;
    }

    /// Moves the elements from position `at` on into a new chunk.
    pub(super) fn split_off(&mut self, at: usize) -> Chunk {
        let off = self.head + self.offset_of(at);
        let rest = Chunk {
            buf: self.buf[off..].to_vec(),
            head: 0,
            count: self.count - at,
        };
        self.buf.truncate(off);
        self.count = at;
        rest
    }

    /// Removes up to `limit` elements equal to `elem`, the first ones or (with
    /// `from_back`) the last ones; returns how many.
    pub(super) fn remove_matches(&mut self, elem: &[u8], limit: usize, from_back: bool) -> usize {
        let hits: Vec<usize> = self
            .iter()
            .enumerate()
            .filter(|(_, e)| *e == elem)
            .map(|(i, _)| i)
            .collect();
        let take = hits.len().min(limit);
        if take == 0 {
            return 0;
        }
        let chosen = if from_back {
            &hits[hits.len() - take..]
        } else {
            &hits[..take]
        };
        let mut out = Vec::with_capacity(self.byte_len());
        let mut next = chosen.iter().peekable();
        let mut pos = 0;
        let bytes = self.bytes();
        for i in 0..self.count {
            let (len, n) = get_varint(&bytes[pos..]);
            let end = pos + len + 2 * n;
            if next.peek() == Some(&&i) {
                next.next();
            } else {
                out.extend_from_slice(&bytes[pos..end]);
            }
            pos = end;
        }
        self.buf = out;
        self.head = 0;
        self.count -= take;
        take
    }
}

impl Default for Chunk {
    fn default() -> Chunk {
        Chunk::new()
    }
}

impl Clone for Chunk {
    /// A copy holds the live bytes only, with no gap or spare room.
    fn clone(&self) -> Chunk {
        Chunk {
            buf: self.bytes().to_vec(),
            head: 0,
            count: self.count,
        }
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

/// The elements of a run of chunk bytes, from either end.
#[derive(Clone)]
pub(super) struct ChunkIter<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> ChunkIter<'a> {
    pub(super) fn empty() -> ChunkIter<'a> {
        ChunkIter {
            bytes: &[],
            count: 0,
        }
    }
}

impl<'a> Iterator for ChunkIter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.count == 0 {
            return None;
        }
        let (len, n) = get_varint(self.bytes);
        let elem = &self.bytes[n..n + len];
        self.bytes = &self.bytes[len + 2 * n..];
        self.count -= 1;
        Some(elem)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.count, Some(self.count))
    }
}

impl DoubleEndedIterator for ChunkIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.count == 0 {
            return None;
        }
        let (len, n) = get_back_varint(self.bytes);
        let end = self.bytes.len() - n;
        let elem = &self.bytes[end - len..end];
        self.bytes = &self.bytes[..end - len - n];
        self.count -= 1;
        Some(elem)
    }
}

impl ExactSizeIterator for ChunkIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    fn elems(c: &Chunk) -> Vec<Vec<u8>> {
        c.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn both_ends_and_long_elements() {
        let long = vec![7u8; 300];
        let mut c = Chunk::new();
        c.push_back(b"b");
        c.push_front(b"a");
        c.push_back(&long);
        c.push_front(b"");
        assert_eq!(c.len(), 4);
        assert_eq!(
            elems(&c),
            vec![b"".to_vec(), b"a".to_vec(), b"b".to_vec(), long.clone()]
        );
        let back: Vec<_> = c.iter().rev().map(<[u8]>::to_vec).collect();
        assert_eq!(back[0], long);
        assert_eq!(c.byte_len(), 2 + 3 + 3 + entry_size(300));
        assert_eq!(entry_size(300), 304);
        assert_eq!(&c.pop_back()[..], &long[..]);
        assert_eq!(&c.pop_front()[..], b"");
        assert_eq!(c.get(1), b"b");
        let mid: Vec<&[u8]> = c.iter_range(1, 2).collect();
        assert_eq!(mid, vec![&b"b"[..]]);
    }

    #[test]
    fn edits_in_the_middle() {
        let mut c = Chunk::from_elems([&b"0"[..], b"1", b"2", b"3", b"4"]);
        c.insert(2, b"x");
        c.replace(0, b"zero");
        c.remove(4);
        assert_eq!(
            elems(&c),
            [&b"zero"[..], b"1", b"x", b"2", b"4"].map(<[u8]>::to_vec)
        );
        let rest = c.split_off(3);
        assert_eq!(elems(&rest), [&b"2"[..], b"4"].map(<[u8]>::to_vec));
        c.drop_front(1);
        c.truncate(1);
        assert_eq!(elems(&c), vec![b"1".to_vec()]);
    }

    #[test]
    fn a_queue_does_not_grow_its_buffer() {
        let mut c = Chunk::new();
        for i in 0..10_000u32 {
            c.push_back(&i.to_le_bytes());
            if i >= 3 {
                c.pop_front();
            }
        }
        assert_eq!(c.len(), 3);
        assert!(c.capacity() < 256, "{}", c.capacity());
    }
}
