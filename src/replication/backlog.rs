//! The replication backlog: the last `repl-backlog-size` bytes of the
//! replication stream, so a replica that lost its link briefly continues from
//! its offset (`+CONTINUE`) instead of taking a full sync.
//!
//! Offsets are Redis's: the stream's first byte is offset 1, and the backlog
//! holds the bytes `first_offset ..= first_offset + len - 1`.

/// A ring buffer over the tail of the replication stream.
#[derive(Debug)]
pub struct Backlog {
    ring: Vec<u8>,
    /// Index in `ring` of the oldest byte held.
    start: usize,
    len: usize,
    /// Stream offset of the oldest byte held.
    first_offset: u64,
}

impl Backlog {
    /// An empty backlog of `size` bytes whose next byte has offset `next`.
    pub fn new(size: usize, next: u64) -> Backlog {
        Backlog {
            ring: vec![0; size.max(1)],
            start: 0,
            len: 0,
            first_offset: next,
        }
    }

    pub fn capacity(&self) -> usize {
        self.ring.len()
    }

    /// `repl_backlog_first_byte_offset`.
    pub fn first_offset(&self) -> u64 {
        self.first_offset
    }

    /// `repl_backlog_histlen`.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends stream bytes, dropping the oldest past the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let cap = self.ring.len();
        if data.len() >= cap {
            let dropped = self.len + data.len() - cap;
            self.ring.copy_from_slice(&data[data.len() - cap..]);
            self.start = 0;
            self.len = cap;
            self.first_offset += dropped as u64;
            return;
        }
        let at = (self.start + self.len) % cap;
        let first = data.len().min(cap - at);
        self.ring[at..at + first].copy_from_slice(&data[..first]);
        self.ring[..data.len() - first].copy_from_slice(&data[first..]);
        self.len += data.len();
        if self.len > cap {
            let dropped = self.len - cap;
            self.start = (self.start + dropped) % cap;
            self.len = cap;
            self.first_offset += dropped as u64;
        }
    }

    /// The bytes from stream offset `from` to the end, if the backlog still
    /// holds `from` (a replica asking for exactly the next byte gets none).
    pub fn since(&self, from: u64) -> Option<Vec<u8>> {
        if from < self.first_offset || from > self.first_offset + self.len as u64 {
            return None;
        }
        let skip = (from - self.first_offset) as usize;
        let cap = self.ring.len();
        let mut out = Vec::with_capacity(self.len - skip);
        let begin = (self.start + skip) % cap;
        let n = self.len - skip;
        let first = n.min(cap - begin);
        out.extend_from_slice(&self.ring[begin..begin + first]);
        out.extend_from_slice(&self.ring[..n - first]);
        Some(out)
    }

    /// A backlog of `size` bytes holding the newest bytes of this one.
    pub fn resized(&self, size: usize) -> Backlog {
        let next = self.first_offset + self.len as u64;
        let held = self.since(self.first_offset).unwrap_or_default();
        let keep = held.len().min(size.max(1));
        let mut b = Backlog::new(size, next - keep as u64);
        b.push(&held[held.len() - keep..]);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_its_offsets() {
        let mut b = Backlog::new(8, 1);
        b.push(b"abcde");
        assert_eq!(b.since(1).unwrap(), b"abcde");
        assert_eq!(b.since(6).unwrap(), b"");
        assert!(b.since(7).is_none());
        b.push(b"fghij");
        assert_eq!(b.first_offset(), 3);
        assert_eq!(b.len(), 8);
        assert_eq!(b.since(3).unwrap(), b"cdefghij");
        assert_eq!(b.since(9).unwrap(), b"ij");
        assert!(b.since(2).is_none());
        b.push(b"0123456789");
        assert_eq!(b.first_offset(), 13);
        assert_eq!(b.since(13).unwrap(), b"23456789");
    }

    #[test]
    fn matches_a_plain_vector_over_many_pushes() {
        let mut b = Backlog::new(37, 1);
        let mut all = Vec::new();
        let mut x = 7u32;
        for i in 0..500 {
            x = x.wrapping_mul(1103515245).wrapping_add(12345);
            let n = (x >> 16) as usize % 50;
            let chunk: Vec<u8> = (0..n).map(|j| (i + j) as u8).collect();
            b.push(&chunk);
            all.extend_from_slice(&chunk);
            let first = b.first_offset();
            assert_eq!(first as usize - 1 + b.len(), all.len());
            assert_eq!(b.since(first).unwrap(), &all[first as usize - 1..]);
        }
        let r = b.resized(10);
        assert_eq!(r.since(r.first_offset()).unwrap(), &all[all.len() - 10..]);
    }
}
