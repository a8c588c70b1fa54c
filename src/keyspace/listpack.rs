//! A listpack: small collections of byte strings kept in one flat buffer, Redis's
//! encoding for small hashes (and lists), owned here as the exact bytes a packed
//! keyspace record stores.
//!
//! # Layout
//!
//! | bytes   | meaning                                            |
//! |---------|----------------------------------------------------|
//! | varint  | element count `n`                                  |
//! | n times | varint length `len`, then `len` bytes of the element |
//!
//! A varint is unsigned LEB128 (7 bits a byte, low group first, high bit set on
//! every byte but the last) in its shortest form, so equal contents always have
//! equal bytes and the derived `PartialEq` compares contents. Nothing follows the
//! last element. A hash stores its pairs as alternating field, value elements.
//!
//! Every operation is a linear walk or a splice of the buffer: that is the point
//! of the encoding, which is only used below Redis's small-collection thresholds.

use std::ops::Range;

/// Elements in insertion order, in the layout described in the module doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listpack {
    buf: Vec<u8>,
    /// The count the header encodes, kept decoded for O(1) `len`.
    count: usize,
}

impl Default for Listpack {
    fn default() -> Self {
        Self::new()
    }
}

impl Listpack {
    pub fn new() -> Self {
        Listpack {
            buf: vec![0],
            count: 0,
        }
    }

    /// The number of elements (not pairs).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded bytes, exactly as [`Listpack::from_bytes`] reads them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the buffer holds on the heap (its length plus room to grow).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Decodes and validates a buffer; `None` if it is not exactly one listpack in
    /// canonical form (bad varint, element past the end, trailing bytes).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let (count, mut pos) = read_varint(bytes)?;
        for _ in 0..count {
            let (len, n) = read_varint(&bytes[pos..])?;
            pos = (pos + n).checked_add(len)?;
            if pos > bytes.len() {
                return None;
            }
        }
        (pos == bytes.len()).then(|| Listpack {
            buf: bytes.to_vec(),
            count,
        })
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans().map(|s| &self.buf[s.data])
    }

    /// The `i`-th element, found by walking the buffer (O(i)).
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.iter().nth(i)
    }

    pub fn push_back(&mut self, elem: &[u8]) {
        write_varint(elem.len(), &mut self.buf);
        self.buf.extend_from_slice(elem);
        self.set_count(self.count + 1);
    }

    pub fn push_front(&mut self, elem: &[u8]) {
        let at = varint_len(self.count);
        self.buf.splice(at..at, encode_entry(elem));
        self.set_count(self.count + 1);
    }

    /// Removes the `i`-th element; false if there is none.
    pub fn remove_at(&mut self, i: usize) -> bool {
        match self.spans().nth(i) {
            Some(s) => {
                self.remove_range(s.start..s.data.end, 1);
                true
            }
            None => false,
        }
    }

    /// Removes the first element equal to `elem`; false if there is none.
    pub fn remove_value(&mut self, elem: &[u8]) -> bool {
        match self.spans().find(|s| &self.buf[s.data.clone()] == elem) {
            Some(s) => {
                self.remove_range(s.start..s.data.end, 1);
                true
            }
            None => false,
        }
    }

    /// The length of the longest element (0 when empty), for Redis's
    /// `*-max-listpack-value` conversion threshold.
    pub fn max_element_len(&self) -> usize {
        self.spans().map(|s| s.data.len()).max().unwrap_or(0)
    }

    /// `(field, value)` pairs in order; an unpaired last element is not a pair.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.pair_spans()
            .map(|(f, v)| (&self.buf[f.data], &self.buf[v.data]))
    }

    pub fn pair_count(&self) -> usize {
        self.count / 2
    }

    pub fn nth_pair(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.pairs().nth(i)
    }

    /// The value stored for `field`.
    pub fn find_field(&self, field: &[u8]) -> Option<&[u8]> {
        self.pairs().find(|(f, _)| *f == field).map(|(_, v)| v)
    }

    /// Sets `field` to `value`: in place if the field exists (its pair keeps its
    /// position), else appended, as Redis does. True if the field is new.
    pub fn set_pair(&mut self, field: &[u8], value: &[u8]) -> bool {
        match self.find_pair(field) {
            Some((_, v)) => {
                self.buf.splice(v.start..v.data.end, encode_entry(value));
                false
            }
            None => {
                self.push_back(field);
                self.push_back(value);
                true
            }
        }
    }

    /// Removes `field` and its value; false if the field is absent.
    pub fn remove_field(&mut self, field: &[u8]) -> bool {
        match self.find_pair(field) {
            Some((f, v)) => {
                self.remove_range(f.start..v.data.end, 2);
                true
            }
            None => false,
        }
    }

    fn find_pair(&self, field: &[u8]) -> Option<(Span, Span)> {
        self.pair_spans()
            .find(|(f, _)| &self.buf[f.data.clone()] == field)
    }

    fn pair_spans(&self) -> impl ExactSizeIterator<Item = (Span, Span)> + '_ {
        let mut spans = self.spans();
        (0..self.pair_count()).map(move |_| {
            let f = spans.next().unwrap_or_default();
            (f, spans.next().unwrap_or_default())
        })
    }

    fn spans(&self) -> Spans<'_> {
        Spans {
            buf: &self.buf,
            pos: varint_len(self.count),
            remaining: self.count,
        }
    }

    fn remove_range(&mut self, range: Range<usize>, elems: usize) {
        self.buf.drain(range);
        self.set_count(self.count - elems);
    }

    /// Rewrites the header; its varint may change length, which shifts the body.
    fn set_count(&mut self, count: usize) {
        let mut header = Vec::with_capacity(10);
        write_varint(count, &mut header);
        self.buf.splice(0..varint_len(self.count), header);
        self.count = count;
    }
}

/// Where one element lives: its length prefix starts at `start`, its bytes are `data`.
#[derive(Clone, Debug, Default)]
struct Span {
    start: usize,
    data: Range<usize>,
}

/// Walks the elements of a buffer already validated (by construction or by
/// `from_bytes`), so decoding cannot fail; it stops quietly if it ever did.
struct Spans<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: usize,
}

impl Iterator for Spans<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let (len, n) = read_varint(self.buf.get(self.pos..)?)?;
        let start = self.pos;
        self.pos += n + len;
        Some(Span {
            start,
            data: start + n..self.pos,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Spans<'_> {}

fn encode_entry(elem: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(varint_len(elem.len()) + elem.len());
    write_varint(elem.len(), &mut out);
    out.extend_from_slice(elem);
    out
}

/// Appends `v` as a LEB128 varint (also used by the sorted sets' flat buffer).
pub(crate) fn write_varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn varint_len(v: usize) -> usize {
    (usize::BITS - v.leading_zeros()).max(1).div_ceil(7) as usize
}

/// Decodes a shortest-form varint that fits `usize`: `(value, bytes read)`.
pub(crate) fn read_varint(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut v: usize = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let shift = 7 * i as u32;
        let group = usize::from(b & 0x7f);
        if shift >= usize::BITS || (group << shift) >> shift != group {
            return None;
        }
        v |= group << shift;
        if b & 0x80 == 0 {
            // A zero last byte after others would be a longer form of the same value.
            return (i == 0 || b != 0).then_some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(lp: &Listpack, model: &[Vec<u8>]) {
        assert_eq!(lp.len(), model.len());
        assert_eq!(lp.is_empty(), model.is_empty());
        assert_eq!(lp.iter().len(), model.len());
        assert!(lp.iter().eq(model.iter().map(Vec::as_slice)));
        for (i, m) in model.iter().enumerate() {
            assert_eq!(lp.get(i), Some(m.as_slice()));
        }
        assert_eq!(lp.get(model.len()), None);
        let max = model.iter().map(Vec::len).max().unwrap_or(0);
        assert_eq!(lp.max_element_len(), max);
        assert_eq!(lp.byte_len(), lp.as_bytes().len());
        assert_eq!(Listpack::from_bytes(lp.as_bytes()).as_ref(), Some(lp));
    }

    #[test]
    fn empty_and_edge_elements() {
        let mut lp = Listpack::default();
        assert_eq!(lp.as_bytes(), &[0]);
        check(&lp, &[]);
        lp.push_back(b"");
        assert_eq!(lp.as_bytes(), &[1, 0]);
        lp.push_back(&[0, 0xff, b'\n']);
        lp.push_front(&[0x80; 300]);
        check(&lp, &[vec![0x80; 300], vec![], vec![0, 0xff, b'\n']]);
        // 300 = 0b10_0101100: two varint bytes.
        assert_eq!(&lp.as_bytes()[..3], &[3, 0xac, 0x02]);
        assert!(lp.remove_at(0) && lp.remove_value(b"") && !lp.remove_value(b"x"));
        assert!(!lp.remove_at(1));
        check(&lp, &[vec![0, 0xff, b'\n']]);
    }

    #[test]
    fn header_grows_and_shrinks_past_127() {
        let mut lp = Listpack::new();
        let mut model = Vec::new();
        for i in 0..130u8 {
            lp.push_front(&[i]);
            model.insert(0, vec![i]);
        }
        assert_eq!(&lp.as_bytes()[..2], &[0x82, 0x01]);
        check(&lp, &model);
        for _ in 0..3 {
            assert!(lp.remove_at(5));
            model.remove(5);
        }
        assert_eq!(lp.as_bytes()[0], 127);
        check(&lp, &model);
    }

    #[test]
    fn pairs_keep_redis_order() {
        let mut lp = Listpack::new();
        assert!(lp.set_pair(b"a", b"1") && lp.set_pair(b"b", b"2"));
        assert!(!lp.set_pair(b"a", &[7; 200]));
        assert_eq!(lp.find_field(b"a"), Some(&[7; 200][..]));
        assert_eq!(lp.nth_pair(1), Some((&b"b"[..], &b"2"[..])));
        assert!(lp.remove_field(b"a") && !lp.remove_field(b"a"));
        assert_eq!(lp.pairs().collect::<Vec<_>>(), vec![(&b"b"[..], &b"2"[..])]);
        assert_eq!(lp.pair_count(), 1);
    }

    #[test]
    fn malformed_buffers_are_rejected() {
        for bad in [
            &[][..],
            &[1],          // count says one element, none follows
            &[1, 2, b'a'], // element past the end
            &[0, 0],       // trailing byte
            &[0x80, 0x00], // overlong count
            &[1, 0x81, 0x00, b'a'],
            &[0xff; 11], // varint overflow
        ] {
            assert_eq!(Listpack::from_bytes(bad), None, "{bad:?}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        PushBack(Vec<u8>),
        PushFront(Vec<u8>),
        RemoveAt(usize),
        RemoveValue(Vec<u8>),
    }

    /// Few distinct short values (so removals and fields hit), some long ones.
    fn elem() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => prop::collection::vec(0u8..3, 0..3),
            1 => prop::collection::vec(any::<u8>(), 100..300),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => elem().prop_map(Op::PushBack),
            3 => elem().prop_map(Op::PushFront),
            1 => (0usize..20).prop_map(Op::RemoveAt),
            1 => elem().prop_map(Op::RemoveValue),
        ]
    }

    proptest! {
        #[test]
        fn elements_match_a_vec(ops in prop::collection::vec(op(), 0..200)) {
            let mut lp = Listpack::new();
            let mut model: Vec<Vec<u8>> = Vec::new();
            for op in ops {
                match op {
                    Op::PushBack(e) => { lp.push_back(&e); model.push(e); }
                    Op::PushFront(e) => { lp.push_front(&e); model.insert(0, e); }
                    Op::RemoveAt(i) => {
                        prop_assert_eq!(lp.remove_at(i), i < model.len());
                        if i < model.len() { model.remove(i); }
                    }
                    Op::RemoveValue(e) => {
                        let at = model.iter().position(|m| *m == e);
                        prop_assert_eq!(lp.remove_value(&e), at.is_some());
                        if let Some(i) = at { model.remove(i); }
                    }
                }
                check(&lp, &model);
            }
        }

        #[test]
        fn pairs_match_a_vec(ops in prop::collection::vec((any::<bool>(), elem(), elem()), 0..100)) {
            let mut lp = Listpack::new();
            let mut model: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
            for (set, f, v) in ops {
                let at = model.iter().position(|(mf, _)| *mf == f);
                if set {
                    prop_assert_eq!(lp.set_pair(&f, &v), at.is_none());
                    match at { Some(i) => model[i].1 = v, None => model.push((f, v)) }
                } else {
                    prop_assert_eq!(lp.remove_field(&f), at.is_some());
                    if let Some(i) = at { model.remove(i); }
                }
                prop_assert_eq!(lp.pair_count(), model.len());
                let flat: Vec<Vec<u8>> =
                    model.iter().flat_map(|(f, v)| [f.clone(), v.clone()]).collect();
                check(&lp, &flat);
                for (i, (f, v)) in model.iter().enumerate() {
                    prop_assert_eq!(lp.find_field(f), Some(v.as_slice()));
                    prop_assert_eq!(lp.nth_pair(i), Some((f.as_slice(), v.as_slice())));
                }
                prop_assert_eq!(lp.find_field(b"absent"), None);
                prop_assert_eq!(lp.nth_pair(model.len()), None);
            }
        }

        #[test]
        fn damaged_buffers_never_panic(
            elems in prop::collection::vec(elem(), 0..20),
            cut in any::<prop::sample::Index>(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..), 0..3),
        ) {
            let mut lp = Listpack::new();
            elems.iter().for_each(|e| lp.push_back(e));
            let mut bytes = lp.as_bytes().to_vec();
            bytes.truncate(cut.index(bytes.len() + 1));
            for (at, mask) in flips {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] ^= mask;
                }
            }
            if let Some(lp) = Listpack::from_bytes(&bytes) {
                prop_assert_eq!(lp.as_bytes(), &bytes[..]);
                let elems: Vec<Vec<u8>> = lp.iter().map(<[u8]>::to_vec).collect();
                check(&lp, &elems);
            }
        }
    }
}
