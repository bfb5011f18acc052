//! Net Promoter Score (analytics.md §1): promoters 9–10, passives 7–8,
//! detractors 0–6; NPS = 100·(P−D)/n.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpsTally {
    pub promoters: u64,
    pub passives: u64,
    pub detractors: u64,
}

impl NpsTally {
    /// Adds one 0–10 score; anything else is ignored (validated upstream).
    pub fn add(&mut self, score: i64) {
        match score {
            9..=10 => self.promoters += 1,
            7..=8 => self.passives += 1,
            0..=6 => self.detractors += 1,
            _ => {}
        }
    }

    pub fn merge(&mut self, other: &NpsTally) {
        self.promoters += other.promoters;
        self.passives += other.passives;
        self.detractors += other.detractors;
    }

    pub fn n(&self) -> u64 {
        self.promoters + self.passives + self.detractors
    }

    /// None when nobody answered.
    pub fn nps(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| 100.0 * (self.promoters as f64 - self.detractors as f64) / n as f64)
    }

    /// nps ± 1.96·100·√((p_P + p_D − (p_P − p_D)²)/n), each bound clamped
    /// to the scale [−100, 100].
    pub fn ci95(&self) -> Option<(f64, f64)> {
        let n = self.n();
        let nps = self.nps()?;
        let (pp, pd) = (
            self.promoters as f64 / n as f64,
            self.detractors as f64 / n as f64,
        );
        let half = 1.96 * 100.0 * ((pp + pd - (pp - pd).powi(2)) / n as f64).sqrt();
        Some(((nps - half).max(-100.0), (nps + half).min(100.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nps_counts_promoters_minus_detractors() {
        let mut t = NpsTally::default();
        for s in [10, 9, 8, 7, 6, 0, 10, 5, 9, 3] {
            t.add(s);
        }
        // P = 4, passives = 2, D = 4 → NPS 0
        assert_eq!((t.promoters, t.passives, t.detractors), (4, 2, 4));
        assert_eq!(t.nps(), Some(0.0));
        // p_P = p_D = 0.4: half-width = 1.96·100·√(0.8/10) = 55.4372…
        let (lo, hi) = t.ci95().unwrap();
        assert!((hi - 55.437_171_645).abs() < 1e-6, "{hi}");
        assert!((lo + 55.437_171_645).abs() < 1e-6);
    }

    #[test]
    fn the_interval_stays_on_the_scale() {
        // 10, 10, 0: NPS 33.3…, half-width 1.96·100·√((1 − 1/9)/3) = 106.69…
        let mut t = NpsTally::default();
        for s in [10, 10, 0] {
            t.add(s);
        }
        let half = 1.96 * 100.0 * ((1.0f64 - 1.0 / 9.0) / 3.0).sqrt();
        assert!(half > 100.0);
        let (lo, hi) = t.ci95().unwrap();
        assert!((lo - (100.0 / 3.0 - half)).abs() < 1e-9, "{lo}");
        assert_eq!(hi, 100.0);
        // All promoters: p_P = 1 → zero width at the top of the scale.
        let mut all = NpsTally::default();
        for s in [9, 10, 10] {
            all.add(s);
        }
        assert_eq!(all.ci95(), Some((100.0, 100.0)));
        // 3 answers 10, 0, 0 → −33.3… − 106.69… clamps at −100.
        let mut low = NpsTally::default();
        for s in [10, 0, 0] {
            low.add(s);
        }
        assert_eq!(low.ci95().unwrap().0, -100.0);
    }

    #[test]
    fn empty_tally_has_no_nps() {
        assert_eq!(NpsTally::default().nps(), None);
    }
}
