//! The search itself: the points of a sorted set inside a [`Shape`], read
//! cell by cell from the score ranges of the covering cells, in the order
//! Redis finds them (cell by cell, by score within a cell), then ordered by
//! distance when asked.

use std::cmp::Ordering;

use bytes::Bytes;

use super::area::{covering_cells, score_range};
use super::hash::point_of_score;
use super::partial_sort::pqsort;
use super::Shape;
use crate::keyspace::zset::{ScoreBound, ZSet};

/// A point found by a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub member: Bytes,
    pub score: f64,
    /// `[lon, lat]`, decoded from the score.
    pub point: [f64; 2],
    /// Meters from the shape's centre.
    pub dist: f64,
}

/// The members of `zset` inside `shape`, in the order found. With a
/// `limit` (COUNT ... ANY) the search stops as soon as it has that many.
pub fn search(zset: &ZSet, shape: &Shape, limit: Option<usize>) -> Vec<Found> {
    let cells = covering_cells(shape);
    let full = |found: &Vec<Found>| limit.is_some_and(|l| found.len() >= l);
    let mut found = Vec::new();
    // Huge searches can make consecutive neighbours the same cell: a cell
    // equal to the one read just before is skipped (the centre's own cell
    // does not count as "read before", as in Redis).
    let mut last_processed = 0;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_none() || (last_processed != 0 && *cell == cells[last_processed]) {
            continue;
        }
        if full(&found) {
            break;
        }
        let (min, max) = score_range(*cell);
        let (start, end) = zset.score_ranks(
            ScoreBound {
                value: min as f64,
                exclusive: false,
            },
            ScoreBound {
                value: max as f64,
                exclusive: true,
            },
        );
        for (score, member) in zset.iter_from(start, false).take(end - start) {
            let point = point_of_score(score);
            if let Some(dist) = shape.contains(point) {
                found.push(Found {
                    member: Bytes::copy_from_slice(member),
                    score,
                    point,
                    dist,
                });
            }
            if full(&found) {
                break;
            }
        }
        last_processed = i;
    }
    found
}

/// Orders `found` by distance, nearest first or (`desc`) farthest first,
/// far enough that the first `keep` are right. A full order keeps equal
/// distances in the order found (glibc's `qsort` is a merge sort); a
/// partial one arranges them as Redis's `pqsort` does.
pub fn sort_by_distance(found: &mut [Found], desc: bool, keep: usize) {
    let cmp = |a: &Found, b: &Found| {
        let ord = a.dist.partial_cmp(&b.dist).unwrap_or(Ordering::Less);
        if desc {
            ord.reverse()
        } else {
            ord
        }
    };
    if keep >= found.len() {
        found.sort_by(cmp);
    } else if keep > 0 {
        pqsort(found, &cmp, 0, keep - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::area::Kind;
    use crate::keyspace::encodings::Encodings;
    use proptest::prelude::*;

    fn zset_of(points: &[(f64, f64)], limits: &Encodings) -> ZSet {
        let mut z = ZSet::new();
        for (i, &(lon, lat)) in points.iter().enumerate() {
            let score = crate::geo::score_of_point(lon, lat).unwrap();
            z.insert(format!("p{i}").as_bytes(), score as f64, limits);
        }
        z
    }

    /// Every member whose stored point lies in the shape, by brute force.
    /// A point on the upper latitude or longitude edge has a score past
    /// 2^52, beyond every cell's range: no search finds it, in Redis
    /// either.
    fn brute_force(z: &ZSet, shape: &Shape) -> Vec<(Bytes, f64)> {
        let mut all: Vec<(Bytes, f64)> = z
            .iter()
            .filter(|(score, _)| *score < (1u64 << 52) as f64)
            .filter_map(|(score, m)| {
                let d = shape.contains(point_of_score(score))?;
                Some((Bytes::copy_from_slice(m), d))
            })
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    fn shape_strategy() -> impl Strategy<Value = Shape> {
        let center = (-180.0..=180.0f64, -85.0..=85.0f64);
        let kind = prop_oneof![
            (0.0..3000.0f64).prop_map(Kind::Radius),
            (0.0..3000.0f64, 0.0..3000.0f64)
                .prop_map(|(width, height)| Kind::Box { width, height }),
        ];
        let conversion = prop_oneof![Just(1.0), Just(1000.0), Just(0.3048), Just(1609.34)];
        (center, kind, conversion).prop_map(|((lon, lat), kind, conversion)| Shape {
            center: [lon, lat],
            kind,
            conversion,
        })
    }

    /// Points scattered around the shape's centre (most near it, so the
    /// search finds some) and across the globe.
    fn points_around(center: [f64; 2], offsets: &[(f64, f64)]) -> Vec<(f64, f64)> {
        offsets
            .iter()
            .map(|&(dx, dy)| {
                let lon = (center[0] + dx).clamp(-180.0, 180.0);
                let lat = (center[1] + dy).clamp(crate::geo::LAT_MIN, crate::geo::LAT_MAX);
                (lon, lat)
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn search_finds_exactly_the_points_in_the_shape(
            shape in shape_strategy(),
            near in prop::collection::vec((-20.0..20.0f64, -20.0..20.0f64), 0..150),
            far in prop::collection::vec((-180.0..180.0f64, -85.0..85.0f64), 0..30),
            packed in any::<bool>(),
        ) {
            let limits = if packed {
                Encodings { zset_max_listpack_entries: 1000, ..Encodings::default() }
            } else {
                Encodings { zset_max_listpack_entries: 0, ..Encodings::default() }
            };
            let mut points = points_around(shape.center, &near);
            points.extend(far.iter().map(|&(lon, lat)| (lon, lat)));
            let z = zset_of(&points, &limits);
            let mut got: Vec<(Bytes, f64)> = search(&z, &shape, None)
                .into_iter()
                .map(|f| (f.member, f.dist))
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(got, brute_force(&z, &shape));
        }

        #[test]
        fn a_limited_search_returns_a_prefix_of_the_full_one(
            shape in shape_strategy(),
            near in prop::collection::vec((-5.0..5.0f64, -5.0..5.0f64), 0..80),
            limit in 1usize..20,
        ) {
            let z = zset_of(&points_around(shape.center, &near), &Encodings::default());
            let all = search(&z, &shape, None);
            let some = search(&z, &shape, Some(limit));
            prop_assert_eq!(&some[..], &all[..all.len().min(limit)]);
        }
    }

    #[test]
    fn sorting_is_stable_on_ties() {
        let f = |m: &str, dist: f64| Found {
            member: Bytes::copy_from_slice(m.as_bytes()),
            score: 0.0,
            point: [0.0, 0.0],
            dist,
        };
        let mut v = vec![f("a", 2.0), f("b", 1.0), f("c", 2.0), f("d", 1.0)];
        sort_by_distance(&mut v, false, 4);
        let names: Vec<_> = v.iter().map(|x| x.member.clone()).collect();
        assert_eq!(names, ["b", "d", "a", "c"]);
        sort_by_distance(&mut v, true, 4);
        let names: Vec<_> = v.iter().map(|x| x.member.clone()).collect();
        assert_eq!(names, ["a", "c", "b", "d"]);
    }
}
