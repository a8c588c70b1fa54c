//! Geohash cells: encoding a point at a precision (`step` bits per axis),
//! decoding a cell to its bounds, moving to neighbouring cells, and the
//! 52-bit sorted set score of a point.
//!
//! Longitude bits sit at the odd positions and latitude bits at the even
//! ones. Casts follow what Redis's C does on x86-64: a score is read as
//! `(uint64_t)score` and fractions of a range become `uint32_t` cell
//! indexes by truncation.

use super::{LAT_MAX, LAT_MIN, LONG_MAX, LONG_MIN};

/// Precision of a stored point: 26 bits per axis, 52 in all.
pub const STEP_MAX: u8 = 26;

/// A closed interval of degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

/// The longitude range of every geohash here.
pub const LONG_RANGE: Range = Range {
    min: LONG_MIN,
    max: LONG_MAX,
};
/// The latitude range of stored scores (Web Mercator's).
pub const LAT_RANGE: Range = Range {
    min: LAT_MIN,
    max: LAT_MAX,
};
/// The latitude range of standard geohash strings (GEOHASH's output).
pub const STANDARD_LAT_RANGE: Range = Range {
    min: -90.0,
    max: 90.0,
};

/// A geohash cell: `step` bits per axis, interleaved into `bits`. A cell of
/// step 0 stands for "no cell" (a neighbour the search left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cell {
    pub bits: u64,
    pub step: u8,
}

impl Cell {
    /// Whether this is the empty cell (Redis's `HASHISZERO`).
    pub fn is_none(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

/// A cell's bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub lon: Range,
    pub lat: Range,
}

/// Spreads the low 32 bits of `v` to the even bit positions.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Gathers the even bit positions of `v` into 32 bits.
fn gather(v: u64) -> u32 {
    let mut x = v & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Latitude index at the even bits, longitude index at the odd bits.
pub fn interleave(lat: u32, lon: u32) -> u64 {
    spread(lat) | (spread(lon) << 1)
}

/// `(latitude index, longitude index)` of interleaved bits.
pub fn deinterleave(bits: u64) -> (u32, u32) {
    (gather(bits), gather(bits >> 1))
}

/// The cell of `step` bits per axis holding `(lon, lat)` over the given
/// ranges; `None` outside the storable bounds or the ranges.
pub fn encode(lon_range: Range, lat_range: Range, lon: f64, lat: f64, step: u8) -> Option<Cell> {
    if step == 0 || step > 32 {
        return None;
    }
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return None;
    }
    if lat < lat_range.min || lat > lat_range.max || lon < lon_range.min || lon > lon_range.max {
        return None;
    }
    let cells = (1u64 << step) as f64;
    let lat_offset = (lat - lat_range.min) / (lat_range.max - lat_range.min) * cells;
    let lon_offset = (lon - lon_range.min) / (lon_range.max - lon_range.min) * cells;
    // A point on the upper edge lands one past the last cell, as in Redis.
    Some(Cell {
        bits: interleave(lat_offset as u32, lon_offset as u32),
        step,
    })
}

/// [`encode`] over the ranges of stored scores.
pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Cell> {
    encode(LONG_RANGE, LAT_RANGE, lon, lat, step)
}

/// The bounds of `cell` over the given ranges.
pub fn decode(lon_range: Range, lat_range: Range, cell: Cell) -> Area {
    let (ilat, ilon) = deinterleave(cell.bits);
    let cells = (1u64 << cell.step) as f64;
    let lat_scale = lat_range.max - lat_range.min;
    let lon_scale = lon_range.max - lon_range.min;
    // `index + 1` wraps in 32 bits, as the C's unsigned arithmetic does.
    let at = |i: u32| f64::from(i) / cells;
    Area {
        lat: Range {
            min: lat_range.min + at(ilat) * lat_scale,
            max: lat_range.min + at(ilat.wrapping_add(1)) * lat_scale,
        },
        lon: Range {
            min: lon_range.min + at(ilon) * lon_scale,
            max: lon_range.min + at(ilon.wrapping_add(1)) * lon_scale,
        },
    }
}

/// [`decode`] over the ranges of stored scores.
pub fn decode_wgs84(cell: Cell) -> Area {
    decode(LONG_RANGE, LAT_RANGE, cell)
}

/// A cell's centre, clamped to the storable bounds: `[lon, lat]`.
pub fn center(area: &Area) -> [f64; 2] {
    let lon = ((area.lon.min + area.lon.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((area.lat.min + area.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

/// Left-aligns a cell's bits to the 52 bits of a score, so cells of any
/// step compare with stored scores.
pub fn align52(cell: Cell) -> u64 {
    cell.bits << (52 - u32::from(cell.step) * 2)
}

/// The sorted set score GEOADD stores for a storable point.
pub fn score_of_point(lon: f64, lat: f64) -> Option<u64> {
    encode_wgs84(lon, lat, STEP_MAX).map(align52)
}

/// `(uint64_t)score` as x86-64 code compiled by GCC computes it: below
/// 2^63 a signed truncation (so a negative score wraps and NaN gives
/// 2^63), above it the truncation of `score - 2^63` with the top bit
/// flipped (so 2^64 and beyond give 0).
pub fn score_bits(score: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if score >= TWO_63 {
        cvttsd2si(score - TWO_63) ^ (1 << 63)
    } else {
        cvttsd2si(score)
    }
}

/// The x86 truncating conversion: out of range or NaN gives `i64::MIN`.
fn cvttsd2si(v: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if v.is_nan() || !(-TWO_63..TWO_63).contains(&v) {
        i64::MIN as u64
    } else {
        v as i64 as u64
    }
}

/// `(long long)score` on x86-64 (WITHHASH's integer).
pub fn score_as_i64(score: f64) -> i64 {
    cvttsd2si(score) as i64
}

/// The point a score names: the centre of its cell, `[lon, lat]`.
pub fn point_of_score(score: f64) -> [f64; 2] {
    center(&decode_wgs84(Cell {
        bits: score_bits(score),
        step: STEP_MAX,
    }))
}

/// Moves `cell` one cell east (`d > 0`) or west (`d < 0`), wrapping
/// around the globe.
fn move_x(cell: &mut Cell, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let y = cell.bits & 0x5555_5555_5555_5555;
    let width = 64 - u32::from(cell.step) * 2;
    let zz = 0x5555_5555_5555_5555u64 >> width;
    if d > 0 {
        x = x.wrapping_add(zz.wrapping_add(1));
    } else {
        x |= zz;
        x = x.wrapping_sub(zz.wrapping_add(1));
    }
    x &= 0xaaaa_aaaa_aaaa_aaaau64 >> width;
    cell.bits = x | y;
}

/// Moves `cell` one cell north (`d > 0`) or south (`d < 0`).
fn move_y(cell: &mut Cell, d: i8) {
    if d == 0 {
        return;
    }
    let x = cell.bits & 0xaaaa_aaaa_aaaa_aaaa;
    let mut y = cell.bits & 0x5555_5555_5555_5555;
    let width = 64 - u32::from(cell.step) * 2;
    let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> width;
    if d > 0 {
        y = y.wrapping_add(zz.wrapping_add(1));
    } else {
        y |= zz;
        y = y.wrapping_sub(zz.wrapping_add(1));
    }
    y &= 0x5555_5555_5555_5555u64 >> width;
    cell.bits = x | y;
}

/// The eight cells around one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Neighbors {
    pub north: Cell,
    pub south: Cell,
    pub east: Cell,
    pub west: Cell,
    pub north_east: Cell,
    pub north_west: Cell,
    pub south_east: Cell,
    pub south_west: Cell,
}

/// The neighbours of `cell` at its own step.
pub fn neighbors(cell: Cell) -> Neighbors {
    let at = |dx: i8, dy: i8| {
        let mut c = cell;
        move_x(&mut c, dx);
        move_y(&mut c, dy);
        c
    };
    Neighbors {
        east: at(1, 0),
        west: at(-1, 0),
        south: at(0, -1),
        north: at(0, 1),
        north_west: at(-1, 1),
        north_east: at(1, 1),
        south_east: at(1, -1),
        south_west: at(-1, -1),
    }
}

/// The 11-character standard geohash string of a stored score: its point
/// re-encoded over latitudes ±90, 52 bits in ten base-32 digits and a
/// final `0`.
pub fn geohash_string(score: f64) -> [u8; 11] {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let [lon, lat] = point_of_score(score);
    let bits = encode(LONG_RANGE, STANDARD_LAT_RANGE, lon, lat, STEP_MAX).map_or(0, |c| c.bits);
    let mut out = [b'0'; 11];
    for (i, digit) in out.iter_mut().enumerate().take(10) {
        let idx = (bits >> (52 - (i + 1) * 5)) & 0x1f;
        *digit = ALPHABET[idx as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_round_trips() {
        for (lat, lon) in [
            (0, 0),
            (1, 0),
            (0, 1),
            (0x3ff_ffff, 0x123_4567),
            (u32::MAX, 7),
        ] {
            assert_eq!(deinterleave(interleave(lat, lon)), (lat, lon));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    #[test]
    fn known_scores_and_positions() {
        // Redis 7.0: GEOADD Sicily 13.361389 38.115556 Palermo
        // 15.087269 37.502669 Catania, then ZSCORE and GEOPOS.
        assert_eq!(score_of_point(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(score_of_point(15.087269, 37.502669), Some(3479447370796909));
        let [lon, lat] = point_of_score(3479099956230698.0);
        assert_eq!(format!("{lon:.17}"), "13.36138933897018433");
        assert_eq!(format!("{lat:.17}"), "38.11555639549629859");
    }

    #[test]
    fn known_geohash_strings() {
        // Redis's documented GEOHASH example.
        assert_eq!(&geohash_string(3479099956230698.0), b"sqc8b49rny0");
        assert_eq!(&geohash_string(3479447370796909.0), b"sqdtr74hyu0");
    }

    #[test]
    fn edges_clamp_as_redis() {
        // The upper edges land one cell past the last and decode clamped.
        let top = score_of_point(180.0, LAT_MAX).unwrap();
        assert_eq!(point_of_score(top as f64), [180.0, LAT_MAX]);
        let bottom = score_of_point(-180.0, LAT_MIN).unwrap();
        assert_eq!(bottom, 0);
        assert!(score_of_point(180.000001, 0.0).is_none());
        assert!(score_of_point(0.0, 85.06).is_none());
    }

    #[test]
    fn encode_then_decode_stays_within_one_cell() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let cell_lon = 360.0 / (1u64 << STEP_MAX) as f64;
        let cell_lat = (LAT_MAX - LAT_MIN) / (1u64 << STEP_MAX) as f64;
        for _ in 0..10_000 {
            let lon = LONG_MIN + next() * 360.0;
            let lat = LAT_MIN + next() * (LAT_MAX - LAT_MIN);
            let score = score_of_point(lon, lat).unwrap();
            assert!(score < 1 << 52);
            let [dlon, dlat] = point_of_score(score as f64);
            assert!((dlon - lon).abs() <= cell_lon / 2.0 + 1e-12);
            assert!((dlat - lat).abs() <= cell_lat / 2.0 + 1e-12);
            // The decoded point encodes to the same score.
            assert_eq!(score_of_point(dlon, dlat), Some(score));
        }
    }

    #[test]
    fn score_casts_follow_x86() {
        assert_eq!(score_bits(5.9), 5);
        assert_eq!(score_bits(-5.0), (-5i64) as u64);
        assert_eq!(score_bits(f64::NAN), 1 << 63);
        assert_eq!(score_bits(f64::INFINITY), 0);
        assert_eq!(score_bits(f64::NEG_INFINITY), 1 << 63);
        assert_eq!(score_bits(1e19), 10_000_000_000_000_000_000);
        assert_eq!(score_bits(1e30), 0);
        assert_eq!(score_as_i64(1e30), i64::MIN);
        assert_eq!(score_as_i64(-3.7), -3);
    }

    #[test]
    fn neighbors_move_one_cell_and_wrap() {
        let c = encode_wgs84(0.0, 0.0, 4).unwrap();
        let n = neighbors(c);
        let area = decode_wgs84(c);
        let east = decode_wgs84(n.east);
        assert_eq!(east.lon.min, area.lon.max);
        assert_eq!(east.lat, area.lat);
        let north = decode_wgs84(n.north);
        assert_eq!(north.lat.min, area.lat.max);
        // West of the westernmost cell is the easternmost one.
        let w = encode_wgs84(-179.0, 0.0, 4).unwrap();
        assert_eq!(decode_wgs84(neighbors(w).west).lon.max, 180.0);
    }
}
