//! The partial quicksort Redis orders `COUNT n` search results with
//! (`pqsort`, Bentley and McIlroy's "Engineering a Sort Function" as in
//! NetBSD's `qsort`, skipping the partitions that lie wholly outside the
//! wanted ranks; Redis 7.0's has no switch to insertion sort after a
//! partition that swapped nothing). Elements comparing equal end up in an order that depends
//! on every swap the algorithm makes, so this performs the same swaps in
//! the same sequence: the nearest N points, ties included, are Redis's.

use std::cmp::Ordering;

/// Sorts `v` far enough that ranks `lo..=hi` hold the elements a full sort
/// would put there, in order, arranging ties exactly as Redis's `pqsort`.
pub fn pqsort<T>(v: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lo: usize, hi: usize) {
    partial(v, 0, v.len(), cmp, lo, hi);
}

/// Whether the wanted ranks `lo..=hi` meet `start..start + len`.
fn wanted(start: usize, len: usize, lo: usize, hi: usize) -> bool {
    let end = start + len;
    !((lo < start && hi < start) || (lo >= end && hi >= end))
}

fn insertion_sort<T>(v: &mut [T], a: usize, n: usize, cmp: &impl Fn(&T, &T) -> Ordering) {
    for m in a + 1..a + n {
        let mut l = m;
        while l > a && cmp(&v[l - 1], &v[l]) == Ordering::Greater {
            v.swap(l, l - 1);
            l -= 1;
        }
    }
}

/// The median of three positions.
fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    use Ordering::{Greater, Less};
    if cmp(&v[a], &v[b]) == Less {
        if cmp(&v[b], &v[c]) == Less {
            b
        } else if cmp(&v[a], &v[c]) == Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Greater {
        b
    } else if cmp(&v[a], &v[c]) == Less {
        a
    } else {
        c
    }
}

/// Swaps the `n` elements from `a` with the `n` from `b`, pairwise.
fn vecswap<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for i in 0..n {
        v.swap(a + i, b + i);
    }
}

fn partial<T>(
    v: &mut [T],
    mut a: usize,
    mut n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    lo: usize,
    hi: usize,
) {
    use Ordering::{Equal, Greater, Less};
    loop {
        if n < 7 {
            insertion_sort(v, a, n, cmp);
            return;
        }
        let mut pm = a + n / 2;
        if n > 7 {
            let mut pl = a;
            let mut pn = a + n - 1;
            if n > 40 {
                let d = n / 8;
                pl = med3(v, pl, pl + d, pl + 2 * d, cmp);
                pm = med3(v, pm - d, pm, pm + d, cmp);
                pn = med3(v, pn - 2 * d, pn - d, pn, cmp);
            }
            pm = med3(v, pl, pm, pn, cmp);
        }
        v.swap(a, pm);
        // Three-way partition around the pivot at `a`: equal elements are
        // parked at both ends, then swapped into the middle.
        let (mut pa, mut pb) = (a + 1, a + 1);
        let (mut pc, mut pd) = (a + n - 1, a + n - 1);
        loop {
            while pb <= pc {
                let c = cmp(&v[pb], &v[a]);
                if c == Greater {
                    break;
                }
                if c == Equal {
                    v.swap(pa, pb);
                    pa += 1;
                }
                pb += 1;
            }
            while pb <= pc {
                let c = cmp(&v[pc], &v[a]);
                if c == Less {
                    break;
                }
                if c == Equal {
                    v.swap(pc, pd);
                    pd -= 1;
                }
                pc -= 1;
            }
            if pb > pc {
                break;
            }
            v.swap(pb, pc);
            pb += 1;
            pc -= 1;
        }
        let pn = a + n;
        let r = (pa - a).min(pb - pa);
        vecswap(v, a, pb - r, r);
        let r = (pd - pc).min(pn - pd - 1);
        vecswap(v, pb, pn - r, r);
        let below = pb - pa;
        if below > 1 && wanted(a, below, lo, hi) {
            partial(v, a, below, cmp, lo, hi);
        }
        let above = pd - pc;
        if above <= 1 {
            return;
        }
        a = pn - above;
        n = above;
        if !wanted(a, n, lo, hi) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_wanted_ranks_hold_a_sorted_prefix(
            keys in prop::collection::vec(0u8..20, 0..200),
            k in 1usize..60,
        ) {
            let mut v: Vec<(u8, usize)> = keys.iter().copied().zip(0..).collect();
            let by_key = |a: &(u8, usize), b: &(u8, usize)| a.0.cmp(&b.0);
            let k = k.min(v.len().max(1));
            if v.is_empty() {
                return Ok(());
            }
            pqsort(&mut v, &by_key, 0, k - 1);
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let got: Vec<u8> = v[..k].iter().map(|e| e.0).collect();
            prop_assert_eq!(&got[..], &sorted[..k]);
            // Nothing is lost or duplicated.
            let mut all: Vec<usize> = v.iter().map(|e| e.1).collect();
            all.sort_unstable();
            prop_assert_eq!(all, (0..keys.len()).collect::<Vec<_>>());
        }

        #[test]
        fn a_full_range_sorts_everything(keys in prop::collection::vec(any::<i16>(), 1..300)) {
            let mut v = keys.clone();
            let n = v.len();
            pqsort(&mut v, &|a: &i16, b: &i16| a.cmp(b), 0, n - 1);
            let mut want = keys;
            want.sort_unstable();
            prop_assert_eq!(v, want);
        }
    }

    #[test]
    fn a_short_prefix_of_many_ties() {
        let mut v: Vec<(u8, char)> = vec![
            (1, 'a'),
            (0, 'b'),
            (1, 'c'),
            (0, 'd'),
            (1, 'e'),
            (0, 'f'),
            (1, 'g'),
            (0, 'h'),
        ];
        pqsort(
            &mut v,
            &|a: &(u8, char), b: &(u8, char)| a.0.cmp(&b.0),
            0,
            1,
        );
        assert!(v[..4].iter().all(|e| e.0 == 0));
    }
}
