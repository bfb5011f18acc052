//! Numbers a client may store inside a JSON column (answers, attributes,
//! segment filters, question bounds). PostgreSQL's jsonb writes a number as
//! its whole decimal expansion, and one near `f64::MAX` (309 digits) does
//! not read back into an f64 (serde_json: "number out of range"): the row
//! could be stored but never read again. So such numbers are bounded, far
//! beyond any figure a survey or a CRM holds.

/// The largest magnitude kept: 10^15.
pub const MAX_MAGNITUDE: f64 = 1e15;

/// Finite and at most [`MAX_MAGNITUDE`] either side of zero.
pub fn storable(x: f64) -> bool {
    x.is_finite() && x.abs() <= MAX_MAGNITUDE
}

/// What a refused number is told.
pub const OUT_OF_RANGE: &str = "must be a number from -1e15 to 1e15";

#[cfg(test)]
mod tests {
    use super::storable;

    #[test]
    fn only_finite_numbers_up_to_1e15_are_storable() {
        assert!(storable(0.0) && storable(-1e15) && storable(1e15) && storable(3.25));
        assert!(!storable(1.000_000_000_000_1e15) && !storable(-1e16));
        assert!(!storable(f64::MAX) && !storable(f64::NAN) && !storable(f64::INFINITY));
    }
}
