//! The search shapes (a circle or a box around a centre) and the nine
//! geohash cells that cover one: the precision comes from the search
//! size and the latitude, is lowered once more when the neighbours do not
//! reach the shape's bounding box, and neighbours wholly outside that box
//! are left out (Redis's `geohashCalculateAreasByShapeWGS84`).

use super::distance::{deg_rad, rad_deg, EARTH_RADIUS_IN_METERS};
use super::hash::{self, Cell, STEP_MAX};

/// Half the equator's length in Web Mercator meters.
const MERCATOR_MAX: f64 = 20037726.37;

/// What a search covers, in `unit`s of `conversion` meters each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Radius(f64),
    Box { width: f64, height: f64 },
}

/// A search area: its centre `[lon, lat]`, its kind and size, and the size
/// of its unit in meters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub center: [f64; 2],
    pub kind: Kind,
    pub conversion: f64,
}

impl Shape {
    /// The distance in meters from the centre to `point` when the point is
    /// inside the shape.
    pub fn contains(&self, point: [f64; 2]) -> Option<f64> {
        match self.kind {
            Kind::Radius(r) => {
                super::distance::within_radius(self.center, point, r * self.conversion)
            }
            Kind::Box { width, height } => super::distance::within_box(
                self.center,
                point,
                width * self.conversion,
                height * self.conversion,
            ),
        }
    }

    /// `[min lon, min lat, max lon, max lat]` around the shape. Meridians
    /// converge towards the poles, so the longitude span is taken at the
    /// edge farther from the equator.
    pub fn bounding_box(&self) -> [f64; 4] {
        let [lon, lat] = self.center;
        let (half_w, half_h) = match self.kind {
            Kind::Radius(r) => (r, r),
            Kind::Box { width, height } => (width / 2.0, height / 2.0),
        };
        let height = self.conversion * half_h;
        let width = self.conversion * half_w;
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(lat - lat_delta).cos());
        let long_delta = if lat < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            lon - long_delta,
            lat - lat_delta,
            lon + long_delta,
            lat + lat_delta,
        ]
    }

    /// The distance from the centre to the farthest point of the shape,
    /// in meters (a box's half diagonal).
    fn reach(&self) -> f64 {
        let r = match self.kind {
            Kind::Radius(r) => r,
            Kind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        };
        r * self.conversion
    }
}

/// The geohash precision whose cells are about as large as a search of
/// `range_meters` around latitude `lat`.
pub fn estimate_steps(range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return STEP_MAX;
    }
    let mut range = range_meters;
    let mut step: i32 = 1;
    while range < MERCATOR_MAX {
        range *= 2.0;
        step += 1;
    }
    // Make sure the range is included in most of the base cases.
    step -= 2;
    // Cells narrow towards the poles.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, i32::from(STEP_MAX)) as u8
}

/// The cells to read, in Redis's order: the centre's cell, then north,
/// south, east, west, north-east, north-west, south-east, south-west.
/// Cells left out are [`Cell::is_none`].
pub fn covering_cells(shape: &Shape) -> [Cell; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
    let [lon, lat] = shape.center;
    let mut steps = estimate_steps(shape.reach(), lat);
    let cover = |steps: u8| {
        // The centre is always storable (validated, or a decoded member).
        let cell = hash::encode_wgs84(lon, lat, steps).unwrap_or_default();
        (cell, hash::neighbors(cell), hash::decode_wgs84(cell))
    };
    let (mut cell, mut n, mut area) = cover(steps);
    // Near a cell's edge the neighbours may not reach the whole box: one
    // step coarser then.
    let decrease_step = hash::decode_wgs84(n.north).lat.max < max_lat
        || hash::decode_wgs84(n.south).lat.min > min_lat
        || hash::decode_wgs84(n.east).lon.max < max_lon
        || hash::decode_wgs84(n.west).lon.min > min_lon;
    if steps > 1 && decrease_step {
        steps -= 1;
        (cell, n, area) = cover(steps);
    }
    // Leave out the rows and columns beyond the box.
    if steps >= 2 {
        let none = Cell::default();
        if area.lat.min < min_lat {
            (n.south, n.south_west, n.south_east) = (none, none, none);
        }
        if area.lat.max > max_lat {
            (n.north, n.north_east, n.north_west) = (none, none, none);
        }
        if area.lon.min < min_lon {
            (n.west, n.south_west, n.north_west) = (none, none, none);
        }
        if area.lon.max > max_lon {
            (n.east, n.south_east, n.north_east) = (none, none, none);
        }
    }
    [
        cell,
        n.north,
        n.south,
        n.east,
        n.west,
        n.north_east,
        n.north_west,
        n.south_east,
        n.south_west,
    ]
}

/// The scores `[min, max)` of the points inside `cell`.
pub fn score_range(cell: Cell) -> (u64, u64) {
    let min = hash::align52(cell);
    let max = hash::align52(Cell {
        bits: cell.bits.wrapping_add(1),
        step: cell.step,
    });
    (min, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_follow_the_search_size() {
        assert_eq!(estimate_steps(0.0, 0.0), 26);
        assert_eq!(estimate_steps(1.0, 0.0), 24);
        assert_eq!(estimate_steps(1000.0, 0.0), 14);
        assert_eq!(estimate_steps(1000.0, 70.0), 13);
        assert_eq!(estimate_steps(1000.0, -85.0), 12);
        assert_eq!(estimate_steps(5_000_000.0, 0.0), 2);
        assert_eq!(estimate_steps(10_000_000.0, 0.0), 1);
        assert_eq!(estimate_steps(f64::INFINITY, 0.0), 1);
    }

    #[test]
    fn the_cells_cover_the_bounding_box() {
        let shape = Shape {
            center: [13.361389, 38.115556],
            kind: Kind::Radius(200.0),
            conversion: 1000.0,
        };
        let cells = covering_cells(&shape);
        let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
        let areas: Vec<_> = cells
            .iter()
            .filter(|c| !c.is_none())
            .map(|c| hash::decode_wgs84(*c))
            .collect();
        let lo_lon = areas.iter().map(|a| a.lon.min).fold(f64::MAX, f64::min);
        let hi_lon = areas.iter().map(|a| a.lon.max).fold(f64::MIN, f64::max);
        let lo_lat = areas.iter().map(|a| a.lat.min).fold(f64::MAX, f64::min);
        let hi_lat = areas.iter().map(|a| a.lat.max).fold(f64::MIN, f64::max);
        assert!(lo_lon <= min_lon && hi_lon >= max_lon);
        assert!(lo_lat <= min_lat && hi_lat >= max_lat);
    }

    #[test]
    fn a_cell_score_range_holds_its_points() {
        let cell = hash::encode_wgs84(2.35, 48.85, 10).unwrap();
        let (min, max) = score_range(cell);
        let score = crate::geo::score_of_point(2.35, 48.85).unwrap();
        assert!(min <= score && score < max);
        assert_eq!(max - min, 1 << 32);
    }
}
