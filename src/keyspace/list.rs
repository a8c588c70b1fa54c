//! A list value: elements packed into byte chunks (see [`chunk`]) held in a
//! persistent sequence, Redis's quicklist with structural sharing.
//!
//! # Representation
//!
//! - A list of one chunk (every small list) is that chunk behind an `Arc`.
//! - A longer list is its front chunk, an `imbl::Vector` of the `Arc`ed
//!   chunks between, its back chunk and the element count, all behind one
//!   `Arc`. A push or pop changes an end chunk in place with one check for
//!   sharing and no walk down the vector; a chunk joins or leaves the
//!   vector once per chunk's worth of pushes or pops.
//!
//! Chunks are sized by `list-max-listpack-size` ([`Fill`]) as Redis sizes
//! quicklist nodes: a negative value caps a chunk's bytes (4 KB .. 64 KB), a
//! positive one its element count (with Redis's 8 KB safety cap). An index
//! walks chunk counts from the nearer end, skipping whole chunks, then walks
//! inside one chunk, as Redis walks its quicklist.
//!
//! # Sharing
//!
//! Cloning a list bumps one reference count. A write goes through
//! `Arc::make_mut` at every level: a chunk (or chunk sequence) only this list
//! holds is changed in place, one a snapshot shares is copied first, so the
//! first write after a snapshot copies the two end chunks (at most two
//! chunks' bytes, as a fork copies the pages a write touches) and, for a
//! chunk in the middle, that chunk and the vector's path to it.

mod chunk;

/// One end of a list, for the operations that mirror each other.
#[derive(Debug, Clone, Copy)]
enum End {
    Front,
    Back,
}

impl End {
    fn push(self, chunk: &mut Chunk, elem: &[u8]) {
        match self {
            End::Front => chunk.push_front(elem),
            End::Back => chunk.push_back(elem),
        }
    }

    fn pop(self, chunk: &mut Chunk) -> Bytes {
        match self {
            End::Front => chunk.pop_front(),
            End::Back => chunk.pop_back(),
        }
    }
}

#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use imbl::Vector;

use chunk::{entry_size, Chunk, ChunkIter};

/// Redis's `list-max-listpack-size`: the limit on one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill(pub i64);

/// Redis's cap on a count-limited quicklist node (`SIZE_SAFETY_LIMIT`).
const SIZE_SAFETY_LIMIT: usize = 8192;

impl Fill {
    /// Redis 7.0's default, `-2`: 8 KB chunks.
    pub const DEFAULT: Fill = Fill(-2);

    fn max_bytes(self) -> usize {
        if self.0 >= 0 {
            SIZE_SAFETY_LIMIT
        } else {
            // -1 .. -5 are 4 KB .. 64 KB; Redis clamps anything below -5.
            4096 << (self.0.unsigned_abs().min(5) - 1)
        }
    }

    fn max_count(self) -> usize {
        if self.0 >= 0 {
            self.0 as usize
        } else {
            usize::MAX
        }
    }

    /// Whether `c` may take one more element of `len` bytes. An empty chunk
    /// takes any element, as a Redis node holds one oversized element alone.
    #[inline]
    fn admits(self, c: &Chunk, len: usize) -> bool {
        c.len() == 0
            || (c.len() < self.max_count() && c.byte_len() + entry_size(len) <= self.max_bytes())
    }

    /// Whether `c` has grown past the limit and must be split.
    fn exceeded_by(self, c: &Chunk) -> bool {
        c.len() > 1 && (c.len() > self.max_count() || c.byte_len() > self.max_bytes())
    }
}

impl Default for Fill {
    fn default() -> Self {
        Fill::DEFAULT
    }
}

/// A list of byte strings (see the module docs).
#[derive(Clone)]
pub struct List(Repr);

#[derive(Clone)]
enum Repr {
    One(Arc<Chunk>),
    Many(Arc<Many>),
}

/// A list of two chunks or more. The end chunks are held apart from the
/// sequence, so a push or pop reaches its chunk without a walk down the
/// vector or a reference count of its own: only the `Arc<Many>` is checked
/// for sharing. Chunks are numbered front (0), `middle` (1 ..= its length),
/// back (last).
#[derive(Clone)]
struct Many {
    /// Never empty (between operations).
    front: Chunk,
    /// None of them empty; the chunks are compacted.
    middle: Vector<Arc<Chunk>>,
    /// Never empty (between operations).
    back: Chunk,
    len: usize,
}

impl Many {
    fn last(&self) -> usize {
        self.middle.len() + 1
    }

    fn chunk(&self, ci: usize) -> &Chunk {
        if ci == 0 {
            &self.front
        } else if ci == self.last() {
            &self.back
        } else {
            &self.middle[ci - 1]
        }
    }

    /// Chunk `ci` for writing (a middle chunk a clone shares is copied).
    fn chunk_mut(&mut self, ci: usize) -> &mut Chunk {
        if ci == 0 {
            &mut self.front
        } else if ci == self.last() {
            &mut self.back
        } else {
            Arc::make_mut(self.middle.get_mut(ci - 1).expect("a chunk index"))
        }
    }

    fn end_mut(&mut self, end: End) -> &mut Chunk {
        match end {
            End::Front => &mut self.front,
            End::Back => &mut self.back,
        }
    }

    /// Removes chunk `ci`; an end chunk is left empty for [`List::settle`].
    fn remove_chunk(&mut self, ci: usize) {
        if ci == 0 {
            self.front = Chunk::new();
        } else if ci == self.last() {
            self.back = Chunk::new();
        } else {
            self.middle.remove(ci - 1);
        }
    }

    /// Puts `chunk` right after chunk `ci`.
    fn insert_after(&mut self, ci: usize, chunk: Chunk) {
        if ci == self.last() {
            let mut old = std::mem::replace(&mut self.back, chunk);
            old.compact();
            self.middle.push_back(Arc::new(old));
        } else {
            self.middle.insert(ci, Arc::new(chunk));
        }
    }

    /// Refills an end chunk that emptied from its neighbour in `middle`.
    /// Returns false when `middle` is empty too.
    fn refill(&mut self, end: End) -> bool {
        let next = match end {
            End::Front => self.middle.pop_front(),
            End::Back => self.middle.pop_back(),
        };
        match next {
            Some(c) => {
                *self.end_mut(end) = Arc::unwrap_or_clone(c);
                true
            }
            None => false,
        }
    }
}

impl Default for List {
    fn default() -> Self {
        List::new()
    }
}

impl List {
    pub fn new() -> List {
        List(Repr::One(Arc::new(Chunk::new())))
    }

    /// A list of `elems` in order, packed into chunks as `fill` sizes them.
    pub fn from_elems<T: AsRef<[u8]>>(elems: impl IntoIterator<Item = T>, fill: Fill) -> List {
        let mut list = List::new();
        for e in elems {
            list.push_back(e.as_ref(), fill);
        }
        list.shrink_to_fit();
        list
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::One(c) => c.len(),
            Repr::Many(m) => m.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether both are the very same list object: a write to a list another
    /// holder shares copies its root.
    pub fn ptr_eq(&self, other: &List) -> bool {
        match (&self.0, &other.0) {
            (Repr::One(a), Repr::One(b)) => Arc::ptr_eq(a, b),
            (Repr::Many(a), Repr::Many(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn chunk_count(&self) -> usize {
        match &self.0 {
            Repr::One(_) => 1,
            Repr::Many(m) => m.last() + 1,
        }
    }

    /// The encoded elements of a non-empty list of one chunk, as a packed
    /// record stores them (the chunk layout, see [`chunk`]).
    pub fn packed_bytes(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::One(c) if c.len() > 0 => Some(c.bytes()),
            _ => None,
        }
    }

    /// The list of one chunk whose bytes [`List::packed_bytes`] gave.
    pub fn from_packed_bytes(bytes: &[u8]) -> List {
        List(Repr::One(Arc::new(Chunk::from_bytes(bytes))))
    }

    /// Heap bytes the list holds: chunk buffers and their headers, and the
    /// chunk sequence; `round` turns a requested size into what the
    /// allocator gives.
    pub fn heap_bytes(&self, round: impl Fn(usize) -> usize) -> usize {
        let header = round(std::mem::size_of::<Chunk>() + 16);
        let buffer = |c: &Chunk| match c.capacity() {
            0 => 0,
            n => round(n),
        };
        match &self.0 {
            Repr::One(c) => header + buffer(c),
            Repr::Many(m) => {
                // The sequence: its header (with the end chunks), and a
                // pointer per middle chunk in the vector's nodes.
                round(std::mem::size_of::<Many>() + 16)
                    + buffer(&m.front)
                    + buffer(&m.back)
                    + m.middle.len() * 8
                    + m.middle.iter().map(|c| header + buffer(c)).sum::<usize>()
            }
        }
    }

    fn chunk(&self, ci: usize) -> &Chunk {
        match &self.0 {
            Repr::One(c) => c,
            Repr::Many(m) => m.chunk(ci),
        }
    }

    /// The chunk holding element `i < len`, and `i`'s position in it. Walks
    /// chunk counts from the nearer end.
    fn locate(&self, i: usize) -> (usize, usize) {
        let m = match &self.0 {
            Repr::One(_) => return (0, i),
            Repr::Many(m) => m,
        };
        if i < m.len / 2 {
            if i < m.front.len() {
                return (0, i);
            }
            let mut i = i - m.front.len();
            for (k, c) in m.middle.iter().enumerate() {
                if i < c.len() {
                    return (k + 1, i);
                }
                i -= c.len();
            }
            debug_assert!(i < m.back.len(), "index within a list of {}", m.len);
            (m.last(), i)
        } else {
            let mut from_back = m.len - i;
            if from_back <= m.back.len() {
                return (m.last(), m.back.len() - from_back);
            }
            from_back -= m.back.len();
            for (k, c) in m.middle.iter().enumerate().rev() {
                if from_back <= c.len() {
                    return (k + 1, c.len() - from_back);
                }
                from_back -= c.len();
            }
            debug_assert!(
                from_back <= m.front.len(),
                "index within a list of {}",
                m.len
            );
            (0, m.front.len() - from_back)
        }
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        if i >= self.len() {
            return None;
        }
        let (ci, off) = self.locate(i);
        Some(self.chunk(ci).get(off))
    }

    pub fn front(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::One(c) => c.front(),
            Repr::Many(m) => m.front.front(),
        }
    }

    pub fn back(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::One(c) => c.back(),
            Repr::Many(m) => m.back.back(),
        }
    }

    pub fn push_back(&mut self, elem: &[u8], fill: Fill) {
        self.push(End::Back, elem, fill);
    }

    pub fn push_front(&mut self, elem: &[u8], fill: Fill) {
        self.push(End::Front, elem, fill);
    }

    pub fn pop_front(&mut self) -> Option<Bytes> {
        self.pop(End::Front)
    }

    pub fn pop_back(&mut self) -> Option<Bytes> {
        self.pop(End::Back)
    }

    /// Adds `elem` at `end`: into the end chunk while `fill` admits it, else
    /// into a new end chunk (the old one, compacted, joins the middle).
    #[inline]
    fn push(&mut self, end: End, elem: &[u8], fill: Fill) {
        match &mut self.0 {
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len += 1;
                let edge = m.end_mut(end);
                if fill.admits(edge, elem.len()) {
                    end.push(edge, elem);
                } else {
                    let mut new = Chunk::new();
                    end.push(&mut new, elem);
                    let mut full = std::mem::replace(edge, new);
                    full.compact();
                    match end {
                        End::Front => m.middle.push_front(Arc::new(full)),
                        End::Back => m.middle.push_back(Arc::new(full)),
                    }
                }
            }
            Repr::One(c) if fill.admits(c, elem.len()) => end.push(Arc::make_mut(c), elem),
            Repr::One(c) => {
                let mut only = Arc::unwrap_or_clone(std::mem::take(c));
                only.compact();
                let mut new = Chunk::new();
                end.push(&mut new, elem);
                let len = only.len() + 1;
                let (front, back) = match end {
                    End::Front => (new, only),
                    End::Back => (only, new),
                };
                self.0 = Repr::Many(Arc::new(Many {
                    front,
                    middle: Vector::new(),
                    back,
                    len,
                }));
            }
        }
    }

    /// Takes the element at `end`; an end chunk it empties is refilled from
    /// the middle, and a list left with one chunk becomes a single chunk.
    #[inline]
    fn pop(&mut self, end: End) -> Option<Bytes> {
        match &mut self.0 {
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len -= 1;
                let edge = m.end_mut(end);
                let elem = end.pop(edge);
                if edge.len() == 0 && !m.refill(end) {
                    self.settle();
                }
                Some(elem)
            }
            Repr::One(c) if c.len() == 0 => None,
            Repr::One(c) => Some(end.pop(Arc::make_mut(c))),
        }
    }

    /// Restores the invariants of [`Many`] after an edit: an empty end chunk
    /// takes its neighbour from the middle, and a list left with one chunk
    /// (or none) becomes a single chunk.
    fn settle(&mut self) {
        let Repr::Many(m) = &mut self.0 else {
            return;
        };
        if m.front.len() > 0 && m.back.len() > 0 {
            return;
        }
        let m = Arc::make_mut(m);
        if m.front.len() == 0 {
            m.refill(End::Front);
        }
        if m.back.len() == 0 {
            m.refill(End::Back);
        }
        if m.front.len() == 0 || m.back.len() == 0 {
            // The middle is empty: at most one end holds elements.
            let only = if m.front.len() > 0 {
                std::mem::take(&mut m.front)
            } else {
                std::mem::take(&mut m.back)
            };
            self.0 = Repr::One(Arc::new(only));
        }
    }

    /// Runs `edit` on chunk `ci` (copied first if shared), then splits it if
    /// it outgrew `fill` or drops it if it emptied. `delta` is the change in
    /// element count the edit makes.
    fn edit_chunk(&mut self, ci: usize, delta: isize, fill: Fill, edit: impl FnOnce(&mut Chunk)) {
        match &mut self.0 {
            Repr::One(c) => {
                let c = Arc::make_mut(c);
                edit(c);
                if fill.exceeded_by(c) {
                    let back = c.split_off(c.len() / 2);
                    let mut front = std::mem::take(c);
                    front.compact();
                    let len = front.len() + back.len();
                    self.0 = Repr::Many(Arc::new(Many {
                        front,
                        middle: Vector::new(),
                        back,
                        len,
                    }));
                }
            }
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len = m.len.wrapping_add_signed(delta);
                let c = m.chunk_mut(ci);
                edit(c);
                if c.len() == 0 {
                    m.remove_chunk(ci);
                } else if fill.exceeded_by(c) {
                    let rest = c.split_off(c.len() / 2);
                    c.compact();
                    m.insert_after(ci, rest);
                }
                self.settle();
            }
        }
    }

    /// Replaces element `i < len` with `elem`.
    pub fn set(&mut self, i: usize, elem: &[u8], fill: Fill) {
        assert!(i < self.len(), "index {i} out of range");
        let (ci, off) = self.locate(i);
        self.edit_chunk(ci, 0, fill, |c| c.replace(off, elem));
    }

    /// Inserts `elem` so that it becomes element `i` (`i <= len`).
    pub fn insert(&mut self, i: usize, elem: &[u8], fill: Fill) {
        let len = self.len();
        assert!(i <= len, "index {i} out of range");
        if i == 0 {
            return self.push_front(elem, fill);
        }
        if i == len {
            return self.push_back(elem, fill);
        }
        let (ci, off) = self.locate(i);
        self.edit_chunk(ci, 1, fill, |c| c.insert(off, elem));
    }

    /// Removes element `i < len`.
    pub fn remove(&mut self, i: usize) {
        assert!(i < self.len(), "index {i} out of range");
        let (ci, off) = self.locate(i);
        self.edit_chunk(ci, -1, Fill::DEFAULT, |c| c.remove(off));
    }

    /// Removes up to `limit` elements equal to `elem`: the first ones, or with
    /// `from_back` the last ones (LREM). Returns how many. Chunks without a
    /// match are left alone (not copied if shared).
    pub fn remove_matches(&mut self, elem: &[u8], limit: usize, from_back: bool) -> usize {
        let mut removed = 0;
        let n = self.chunk_count();
        let order: Box<dyn Iterator<Item = usize>> = if from_back {
            Box::new((0..n).rev())
        } else {
            Box::new(0..n)
        };
        let mut emptied = Vec::new();
        for ci in order {
            if removed == limit {
                break;
            }
            if !self.chunk(ci).iter().any(|e| e == elem) {
                continue;
            }
            let want = limit - removed;
            let took = match &mut self.0 {
                Repr::One(c) => Arc::make_mut(c).remove_matches(elem, want, from_back),
                Repr::Many(m) => {
                    let m = Arc::make_mut(m);
                    let c = m.chunk_mut(ci);
                    let took = c.remove_matches(elem, want, from_back);
                    if c.len() == 0 {
                        emptied.push(ci);
                    }
                    m.len -= took;
                    took
                }
            };
            removed += took;
        }
        if let Repr::Many(m) = &mut self.0 {
            if !emptied.is_empty() {
                // Highest first, so the lower numbers stay valid.
                emptied.sort_unstable_by(|a, b| b.cmp(a));
                let m = Arc::make_mut(m);
                for ci in emptied {
                    m.remove_chunk(ci);
                }
            }
        }
        self.settle();
        removed
    }

    /// Keeps only the elements at positions `from..to` (LTRIM); an empty range
    /// empties the list.
    pub fn trim(&mut self, from: usize, to: usize) {
        let len = self.len();
        let to = to.min(len);
        if from >= to {
            *self = List::new();
            return;
        }
        self.truncate(to);
        self.drop_front(from);
    }

    /// Removes the first `n` elements (all of them if `n >= len`).
    pub fn drop_front(&mut self, n: usize) {
        self.drop_at(End::Front, n);
    }

    /// Keeps the first `n` elements.
    pub fn truncate(&mut self, n: usize) {
        let len = self.len();
        if n < len {
            self.drop_at(End::Back, len - n);
        }
    }

    /// Removes `n` elements (all of them if `n >= len`) at `end`, skipping
    /// whole chunks.
    fn drop_at(&mut self, end: End, n: usize) {
        let mut n = n.min(self.len());
        if n == 0 {
            return;
        }
        let cut = |c: &mut Chunk, n: usize| match end {
            End::Front => c.drop_front(n),
            End::Back => c.truncate(c.len() - n),
        };
        match &mut self.0 {
            Repr::One(c) => cut(Arc::make_mut(c), n),
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len -= n;
                loop {
                    let edge = m.end_mut(end);
                    if n < edge.len() {
                        cut(edge, n);
                        n = 0;
                        break;
                    }
                    n -= edge.len();
                    *edge = Chunk::new();
                    if n == 0 || !m.refill(end) {
                        break;
                    }
                }
                if n > 0 {
                    // The middle ran out: the rest comes off the other end.
                    let other = match end {
                        End::Front => &mut m.back,
                        End::Back => &mut m.front,
                    };
                    cut(other, n);
                }
                self.settle();
            }
        }
    }

    pub fn iter(&self) -> Iter<'_> {
        self.range(0, self.len())
    }

    /// The elements at positions `from..to` (`from <= to <= len`), from
    /// either end, found by skipping whole chunks.
    pub fn range(&self, from: usize, to: usize) -> Iter<'_> {
        assert!(
            from <= to && to <= self.len(),
            "range {from}..{to} out of bounds"
        );
        if from == to {
            return Iter {
                list: self,
                next_chunk: 0,
                end_chunk: 0,
                front: ChunkIter::empty(),
                back: ChunkIter::empty(),
                remaining: 0,
            };
        }
        let (first, start) = self.locate(from);
        let (last, end) = self.locate(to - 1);
        let (front, back) = if first == last {
            (
                self.chunk(first).iter_range(start, end + 1),
                ChunkIter::empty(),
            )
        } else {
            let f = self.chunk(first);
            let l = self.chunk(last);
            (f.iter_range(start, f.len()), l.iter_range(0, end + 1))
        };
        Iter {
            list: self,
            next_chunk: first + 1,
            end_chunk: last.max(first + 1),
            front,
            back,
            remaining: to - from,
        }
    }

    /// The chunks' element runs in order, for writers that keep them apart.
    pub fn chunks(&self) -> impl Iterator<Item = impl ExactSizeIterator<Item = &[u8]> + '_> + '_ {
        (0..self.chunk_count()).map(move |ci| self.chunk(ci).iter())
    }

    /// Compacts every chunk this list alone holds (gaps and spare capacity
    /// released); for a list that will not grow again, e.g. a loaded one.
    pub fn shrink_to_fit(&mut self) {
        match &mut self.0 {
            Repr::One(c) => seal(c),
            Repr::Many(m) => {
                if let Some(m) = Arc::get_mut(m) {
                    m.front.compact();
                    m.back.compact();
                    for c in m.middle.iter_mut() {
                        seal(c);
                    }
                }
            }
        }
    }
}

/// Compacts a chunk that stops being an end of its list, when no one shares
/// it (a shared chunk is left as it is, not copied for that).
fn seal(c: &mut Arc<Chunk>) {
    if let Some(c) = Arc::get_mut(c) {
        c.compact();
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for List {}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl<T: AsRef<[u8]>> FromIterator<T> for List {
    /// A list with the default chunk size.
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> List {
        List::from_elems(iter, Fill::DEFAULT)
    }
}

/// The elements of a list (or of a range of it), from either end.
pub struct Iter<'a> {
    list: &'a List,
    /// The next chunk the front takes once `front` runs dry.
    next_chunk: usize,
    /// One past the last chunk the front may take; the back's chunk.
    end_chunk: usize,
    front: ChunkIter<'a>,
    back: ChunkIter<'a>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(e) = self.front.next() {
                self.remaining -= 1;
                return Some(e);
            }
            if self.next_chunk < self.end_chunk {
                self.front = self.list.chunk(self.next_chunk).iter();
                self.next_chunk += 1;
            } else {
                self.remaining -= 1;
                return self.back.next();
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        loop {
            if let Some(e) = self.back.next_back() {
                self.remaining -= 1;
                return Some(e);
            }
            if self.next_chunk < self.end_chunk {
                self.end_chunk -= 1;
                self.back = self.list.chunk(self.end_chunk).iter();
            } else {
                self.remaining -= 1;
                return self.front.next_back();
            }
        }
    }
}

impl ExactSizeIterator for Iter<'_> {}
