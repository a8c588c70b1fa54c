//! Geospatial indexing as Redis 7.0 does it, over plain sorted sets.
//!
//! A point is stored as a sorted set member whose score is its 52-bit
//! geohash: 26 bits of longitude and 26 of latitude, interleaved, over
//! Web Mercator's latitude range (±85.05112878°) ([`hash`]). A radius or box
//! search picks a geohash precision from the search size, covers the area
//! with a cell and its eight neighbours ([`area`]), reads each cell's score
//! range from the sorted set and keeps the points inside the shape by the
//! haversine distance on Redis's earth radius ([`distance`], [`search`]).
//! The nearest N are ordered as Redis's partial quicksort leaves them
//! ([`partial_sort`]). [`format`] prints coordinates and distances digit for digit as Redis does.
//!
//! Every step follows Redis's own arithmetic (the same operations in the
//! same order on doubles, the same casts), so scores, positions, hashes,
//! distances and the order of unsorted results are Redis's.

pub mod area;
pub mod distance;
pub mod format;
pub mod hash;
pub mod partial_sort;
pub mod search;

pub use area::Shape;
pub use hash::{point_of_score, score_of_point};

/// Longitude bounds of a stored point.
pub const LONG_MIN: f64 = -180.0;
pub const LONG_MAX: f64 = 180.0;
/// Latitude bounds of a stored point (EPSG:3857's limits: the poles
/// themselves cannot be indexed).
pub const LAT_MIN: f64 = -85.05112878;
pub const LAT_MAX: f64 = 85.05112878;

/// Whether `(lon, lat)` may be stored (Redis's `extractLongLatOrReply` check).
pub fn valid_point(lon: f64, lat: f64) -> bool {
    (LONG_MIN..=LONG_MAX).contains(&lon) && (LAT_MIN..=LAT_MAX).contains(&lat)
}

/// A unit's size in meters, by its name (`m`, `km`, `ft`, `mi`, any case).
pub fn unit_in_meters(name: &[u8]) -> Option<f64> {
    let is = |u: &str| name.eq_ignore_ascii_case(u.as_bytes());
    if is("m") {
        Some(1.0)
    } else if is("km") {
        Some(1000.0)
    } else if is("ft") {
        Some(0.3048)
    } else if is("mi") {
        Some(1609.34)
    } else {
        None
    }
}
