//! A list value: elements packed into byte chunks (see [`chunk`]) held in a
//! persistent sequence, Redis's quicklist with structural sharing.
//!
//! # Representation
//!
//! - A list of one chunk (every small list) is that chunk behind an `Arc`.
//! - A longer list is an `imbl::Vector` of `Arc`ed chunks plus the element
//!   count, itself behind an `Arc`.
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
//! holds is changed in place, one a snapshot shares is copied first, so a
//! write after a snapshot copies the touched chunk and the path to it.

mod chunk;
/// One end of a list, for the operations that mirror each other.
#[derive(Debug, Clone, Copy)]
enum End {
    Front,
    Back,
}

impl End {
    /// The end chunk of a list of many chunks.
    fn chunk(self, chunks: &mut Vector<Arc<Chunk>>) -> &mut Arc<Chunk> {
        match self {
            End::Front => chunks.front_mut(),
            End::Back => chunks.back_mut(),
        }
        .expect("a list of many chunks")
    }

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

#[derive(Clone)]
struct Many {
    /// Never fewer than two chunks, none of them empty.
    chunks: Vector<Arc<Chunk>>,
    len: usize,
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
            Repr::Many(m) => m.chunks.len(),
        }
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
                // The sequence: its header, and a pointer per chunk in the
                // vector's nodes.
                round(std::mem::size_of::<Many>() + 16)
                    + m.chunks.len() * 8
                    + m.chunks.iter().map(|c| header + buffer(c)).sum::<usize>()
            }
        }
    }

    fn chunk(&self, ci: usize) -> &Chunk {
        match &self.0 {
            Repr::One(c) => c,
            Repr::Many(m) => &m.chunks[ci],
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
            let mut i = i;
            for (ci, c) in m.chunks.iter().enumerate() {
                if i < c.len() {
                    return (ci, i);
                }
                i -= c.len();
            }
        } else {
            let mut from_back = m.len - i;
            for (ci, c) in m.chunks.iter().enumerate().rev() {
                if from_back <= c.len() {
                    return (ci, c.len() - from_back);
                }
                from_back -= c.len();
            }
        }
        unreachable!("index {i} within a list of {}", m.len)
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
            Repr::Many(m) => m.chunks.front().and_then(|c| c.front()),
        }
    }

    pub fn back(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::One(c) => c.back(),
            Repr::Many(m) => m.chunks.back().and_then(|c| c.back()),
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
    /// into a new chunk there (the old end chunk is sealed first).
    fn push(&mut self, end: End, elem: &[u8], fill: Fill) {
        match &mut self.0 {
            Repr::One(c) if fill.admits(c, elem.len()) => end.push(Arc::make_mut(c), elem),
            Repr::One(_) => {
                let mut only = self.take_one();
                seal(&mut only);
                let new = Arc::new(Chunk::from_elems([elem]));
                let len = only.len() + 1;
                let chunks = match end {
                    End::Front => Vector::from_iter([new, only]),
                    End::Back => Vector::from_iter([only, new]),
                };
                self.0 = Repr::Many(Arc::new(Many { chunks, len }));
            }
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len += 1;
                let edge = end.chunk(&mut m.chunks);
                if fill.admits(edge, elem.len()) {
                    end.push(Arc::make_mut(edge), elem);
                } else {
                    seal(edge);
                    let new = Arc::new(Chunk::from_elems([elem]));
                    match end {
                        End::Front => m.chunks.push_front(new),
                        End::Back => m.chunks.push_back(new),
                    }
                }
            }
        }
    }

    /// Takes the element at `end`, dropping its chunk if that emptied it.
    fn pop(&mut self, end: End) -> Option<Bytes> {
        match &mut self.0 {
            Repr::One(c) if c.len() == 0 => None,
            Repr::One(c) => Some(end.pop(Arc::make_mut(c))),
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len -= 1;
                let edge = end.chunk(&mut m.chunks);
                let elem = end.pop(Arc::make_mut(edge));
                if edge.len() == 0 {
                    match end {
                        End::Front => m.chunks.pop_front(),
                        End::Back => m.chunks.pop_back(),
                    };
                }
                self.settle();
                Some(elem)
            }
        }
    }

    /// The single chunk of a one-chunk list, moved out (not shared) so that
    /// it can be sealed in place; the list is left empty.
    fn take_one(&mut self) -> Arc<Chunk> {
        match std::mem::replace(&mut self.0, Repr::One(Arc::new(Chunk::new()))) {
            Repr::One(c) => c,
            Repr::Many(_) => unreachable!("take_one on a list of many chunks"),
        }
    }

    /// Turns a sequence left with one chunk (or none) back into a single chunk.
    fn settle(&mut self) {
        if let Repr::Many(m) = &self.0 {
            if m.chunks.len() <= 1 {
                let only = m.chunks.front().cloned();
                self.0 = Repr::One(only.unwrap_or_else(|| Arc::new(Chunk::new())));
            }
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
                    let rest = c.split_off(c.len() / 2);
                    let mut first = std::mem::replace(c, Chunk::new());
                    first.compact();
                    let len = first.len() + rest.len();
                    self.0 = Repr::Many(Arc::new(Many {
                        chunks: Vector::from_iter([Arc::new(first), Arc::new(rest)]),
                        len,
                    }));
                }
            }
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len = m.len.wrapping_add_signed(delta);
                let slot = m.chunks.get_mut(ci).expect("a chunk index");
                let c = Arc::make_mut(slot);
                edit(c);
                if c.len() == 0 {
                    m.chunks.remove(ci);
                } else if fill.exceeded_by(c) {
                    let rest = c.split_off(c.len() / 2);
                    c.compact();
                    m.chunks.insert(ci + 1, Arc::new(rest));
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
                    let slot = m.chunks.get_mut(ci).expect("a chunk index");
                    let took = Arc::make_mut(slot).remove_matches(elem, want, from_back);
                    m.len -= took;
                    took
                }
            };
            removed += took;
        }
        if let Repr::Many(m) = &mut self.0 {
            if m.chunks.iter().any(|c| c.len() == 0) {
                let m = Arc::make_mut(m);
                m.chunks.retain(|c| c.len() > 0);
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
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        match &mut self.0 {
            Repr::One(c) => Arc::make_mut(c).drop_front(n),
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len -= n;
                let mut n = n;
                while n > 0 {
                    let first = m.chunks.front_mut().expect("elements left to drop");
                    if first.len() <= n {
                        n -= first.len();
                        m.chunks.pop_front();
                    } else {
                        Arc::make_mut(first).drop_front(n);
                        n = 0;
                    }
                }
                self.settle();
            }
        }
    }

    /// Keeps the first `n` elements.
    pub fn truncate(&mut self, n: usize) {
        let len = self.len();
        if n >= len {
            return;
        }
        match &mut self.0 {
            Repr::One(c) => Arc::make_mut(c).truncate(n),
            Repr::Many(m) => {
                let m = Arc::make_mut(m);
                m.len = n;
                let mut extra = len - n;
                while extra > 0 {
                    let last = m.chunks.back_mut().expect("elements left to drop");
                    if last.len() <= extra {
                        extra -= last.len();
                        m.chunks.pop_back();
                    } else {
                        let keep = last.len() - extra;
                        Arc::make_mut(last).truncate(keep);
                        extra = 0;
                    }
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
                    for c in m.chunks.iter_mut() {
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
