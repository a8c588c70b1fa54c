//! Numbers as the geo commands print them: coordinates with 17 decimals
//! and trailing zeros dropped (Redis's "human" long double), distances
//! with 4 decimals, and the `%f` of an invalid coordinate pair.
//!
//! Rust's fixed-precision formatting rounds the exact binary value half to
//! even, as glibc's `printf` does, so the digits are the same.

/// A coordinate as GEOPOS and WITHCOORD print it (`%.17Lf` of the double,
/// trailing zeros and a trailing dot removed, `-0` as `0`).
pub fn coordinate(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        let kept = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(kept);
    }
    if s == "-0" {
        s = "0".to_string();
    }
    s
}

/// A distance as GEODIST and WITHDIST print it.
pub fn distance(d: f64) -> String {
    format!("{d:.4}")
}

/// C's `%f`: six decimals, `inf`/`-inf` spelt out.
pub fn fixed6(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    format!("{d:.6}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_as_redis_prints_them() {
        assert_eq!(coordinate(13.361389338970184), "13.36138933897018433");
        assert_eq!(coordinate(180.0), "180");
        assert_eq!(coordinate(0.5), "0.5");
        assert_eq!(coordinate(-0.0), "0");
        assert_eq!(coordinate(-1e-20), "0");
        assert_eq!(coordinate(85.05112878), "85.0511287799999991");
    }

    #[test]
    fn distances_and_pairs() {
        assert_eq!(distance(0.0), "0.0000");
        assert_eq!(distance(166274.15156960033), "166274.1516");
        assert_eq!(fixed6(200.0), "200.000000");
        assert_eq!(fixed6(-180.0000001), "-180.000000");
        assert_eq!(fixed6(f64::INFINITY), "inf");
        assert_eq!(fixed6(0.0078125), "0.007812");
    }
}
