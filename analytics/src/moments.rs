//! Mergeable running moments for means and sample standard deviations.
use serde::{Deserialize, Serialize};

/// Count, sum and sum of squares. Exact for the small integers of rating
/// scales; for money the f64 sums are exact up to 2^53.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        self.sum += x;
        self.sum_sq += x * x;
    }

    pub fn merge(&mut self, other: &Moments) {
        self.n += other.n;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// Sample standard deviation (n − 1); None when n < 2.
    pub fn sd(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        let var = (self.sum_sq - self.sum * self.sum / n) / (n - 1.0);
        Some(var.max(0.0).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd_of_a_small_set() {
        let mut m = Moments::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            m.add(x);
        }
        assert_eq!(m.mean(), Some(5.0));
        // sample variance = 32/7
        assert!((m.sd().unwrap() - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn merging_equals_adding_all() {
        let (mut a, mut b, mut all) = (Moments::default(), Moments::default(), Moments::default());
        for x in 1..=5 {
            a.add(x as f64);
            all.add(x as f64);
        }
        for x in 6..=9 {
            b.add(x as f64);
            all.add(x as f64);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }
}
