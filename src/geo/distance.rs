//! Distances on the sphere Redis uses: the haversine great-circle formula
//! on an earth radius of 6372797.560856 m, and the two shape tests a search
//! applies to each candidate point.

/// Redis's earth radius (the quadratic mean radius of WGS-84), in meters.
pub const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;

const D_R: f64 = std::f64::consts::PI / 180.0;

pub fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

pub fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

/// The distance in meters between two latitudes on one meridian. With no
/// longitude between them the haversine reduces to the angle itself (asin of
/// sin is the identity over latitudes), which Redis 7.0 computes this way and
/// which differs from the full formula in the last place.
pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2) - deg_rad(lat1)).abs()
}

/// The great-circle distance in meters between two points (degrees), with
/// Redis 7.0's shortcut for points whose longitudes are practically equal:
/// the replies must match Redis's to the last digit.
pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let lon1r = deg_rad(lon1);
    let lon2r = deg_rad(lon2);
    let v = ((lon2r - lon1r) / 2.0).sin();
    if v == 0.0 {
        return lat_distance(lat1, lat2);
    }
    let lat1r = deg_rad(lat1);
    let lat2r = deg_rad(lat2);
    let u = ((lat2r - lat1r) / 2.0).sin();
    2.0 * EARTH_RADIUS_IN_METERS * (u * u + lat1r.cos() * lat2r.cos() * v * v).sqrt().asin()
}

/// The distance from the centre to the point when it is at most `radius`
/// meters away.
pub fn within_radius(center: [f64; 2], point: [f64; 2], radius: f64) -> Option<f64> {
    let d = distance(center[0], center[1], point[0], point[1]);
    (d <= radius).then_some(d)
}

/// The distance from the centre to the point when the point lies in the
/// box of `width` by `height` meters around the centre: its east-west leg
/// (along the point's latitude) within half the width and its north-south
/// leg (along its meridian) within half the height.
pub fn within_box(center: [f64; 2], point: [f64; 2], width: f64, height: f64) -> Option<f64> {
    let [x1, y1] = center;
    let [x2, y2] = point;
    // The cheaper north-south leg first, as Redis checks it.
    if lat_distance(y2, y1) > height / 2.0 {
        return None;
    }
    if distance(x2, y2, x1, y2) > width / 2.0 {
        return None;
    }
    Some(distance(x1, y1, x2, y2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_distances() {
        // Redis 7.0: GEODIST Sicily Palermo Catania → 166274.1516 (m),
        // 166.2742 km, 103.3182 mi.
        let p = crate::geo::point_of_score(3479099956230698.0);
        let c = crate::geo::point_of_score(3479447370796909.0);
        let d = distance(p[0], p[1], c[0], c[1]);
        assert_eq!(format!("{d:.4}"), "166274.1516");
        assert_eq!(format!("{:.4}", d / 1000.0), "166.2742");
        assert_eq!(format!("{:.4}", d / 1609.34), "103.3182");
    }

    #[test]
    fn distance_is_symmetric_and_zero_at_the_same_point() {
        assert_eq!(distance(10.0, 20.0, 10.0, 20.0), 0.0);
        let a = distance(1.0, 2.0, 30.0, -40.0);
        let b = distance(30.0, -40.0, 1.0, 2.0);
        assert!((a - b).abs() < 1e-6);
        // Half the circumference between antipodes.
        let half = distance(0.0, 0.0, 180.0, 0.0);
        assert!((half - std::f64::consts::PI * EARTH_RADIUS_IN_METERS).abs() < 1e-3);
    }

    #[test]
    fn one_meridian_takes_the_latitude_shortcut() {
        // Redis 7.0 answers points on one meridian with the latitude leg
        // alone; the haversine can differ from it in the last place.
        for (lon, lat1, lat2) in [(180.0, 10.0, 10.004167), (-73.5, -20.25, 61.0)] {
            assert_eq!(distance(lon, lat1, lon, lat2), lat_distance(lat1, lat2));
        }
        assert_eq!(lat_distance(1.0, 2.0), lat_distance(2.0, 1.0));
    }

    #[test]
    fn shape_tests() {
        let c = [0.0, 0.0];
        assert!(within_radius(c, [0.0, 0.001], 112.0).is_some());
        assert!(within_radius(c, [0.0, 0.001], 110.0).is_none());
        // 0.001° of latitude is about 111.2 m: in a 250 m tall box, not in
        // a 200 m one.
        assert!(within_box(c, [0.0, 0.001], 10.0, 250.0).is_some());
        assert!(within_box(c, [0.0, 0.001], 10.0, 200.0).is_none());
        assert!(within_box(c, [0.001, 0.0], 200.0, 10.0).is_none());
    }
}
