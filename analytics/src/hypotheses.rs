//! Segment hypotheses (analytics.md §2): does segment S differ from its
//! comparison group in a share, a mean or NPS? Each hypothesis arrives as the
//! two groups' plain tallies (the caller applies the segment filter and picks
//! `rest` or `all` as group 2); a batch of one client's active hypotheses is
//! evaluated together so the Benjamini–Hochberg q-values span all of them.
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};
use statrs::function::factorial::ln_binomial;

use crate::moments::Moments;
use crate::nps::NpsTally;

/// Two-sided α of the CIs, the q threshold and the sample-size formula.
pub const ALPHA: f64 = 0.05;
/// Power of the sample-size formula.
pub const POWER: f64 = 0.8;
/// "20–30 answers are not enough to conclude": the default minimum n1.
pub const DEFAULT_MIN_N1: u64 = 30;
/// Below this expected count in any cell the z-test gives way to Fisher.
const MIN_EXPECTED_COUNT: f64 = 5.0;
/// Tables whose probability is within this relative tolerance of the
/// observed one count as "no more likely" (R's `fisher.test` uses 1e-7), so
/// that ties lost to rounding in the log-factorials still count.
const FISHER_RELATIVE_TOLERANCE: f64 = 1e-7;

/// z_{1−α/2}: 1.959963984540054 for α = 0.05.
pub fn z_alpha_half() -> f64 {
    Normal::standard().inverse_cdf(1.0 - ALPHA / 2.0)
}

/// z_{power}: 0.8416212335729143 for power 0.8.
pub fn z_beta() -> f64 {
    Normal::standard().inverse_cdf(POWER)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
pub enum Direction {
    /// Segment above the comparison group.
    Greater,
    /// Segment below the comparison group.
    Less,
    /// Either way (two-sided).
    Different,
}

impl Direction {
    /// Whether a difference (segment − comparison) points the stated way.
    pub fn matches(self, difference: f64) -> bool {
        match self {
            Direction::Greater => difference > 0.0,
            Direction::Less => difference < 0.0,
            Direction::Different => difference != 0.0,
        }
    }

    /// p-value of a statistic that is standard normal under H0.
    pub fn normal_p_value(self, z: f64) -> f64 {
        p_value_from(&Normal::standard(), self, z)
    }
}

fn p_value_from<D: ContinuousCDF<f64, f64>>(dist: &D, direction: Direction, stat: f64) -> f64 {
    match direction {
        Direction::Greater => dist.sf(stat),
        Direction::Less => dist.cdf(stat),
        Direction::Different => (2.0 * dist.sf(stat.abs())).min(1.0),
    }
}

/// The two groups of a hypothesis, already tallied: group 1 is the segment,
/// group 2 the comparison group (`rest` or `all`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "metric", rename_all = "snake_case")]
pub enum MetricData {
    /// `share(q, v)`: x respondents out of the n who answered q chose v.
    Share { x1: u64, n1: u64, x2: u64, n2: u64 },
    /// `mean(q)` of a rating/number question.
    Mean { group1: Moments, group2: Moments },
    /// `nps`.
    Nps { group1: NpsTally, group2: NpsTally },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hypothesis {
    pub data: MetricData,
    pub direction: Direction,
    /// The smallest difference worth detecting, in the metric's units
    /// (fraction for shares, question units for means, NPS points); when
    /// set it replaces the observed difference in `required_n`.
    #[serde(default)]
    pub min_effect: Option<f64>,
}

/// Per-client settings of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypothesisSettings {
    pub min_n1: u64,
}

impl Default for HypothesisSettings {
    fn default() -> Self {
        Self {
            min_n1: DEFAULT_MIN_N1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
pub enum TestKind {
    /// Pooled two-proportion z-test.
    TwoProportionZ,
    /// Fisher's exact test, when an expected count is below 5.
    FisherExact,
    /// Welch's t-test.
    WelchT,
    /// z-test of the NPS difference.
    NpsZ,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
pub enum Verdict {
    InsufficientData,
    Supported,
    Rejected,
}

/// The figures of one hypothesis. Estimates are fractions for shares, the
/// question's units for means and NPS points for NPS; `difference` is
/// estimate1 − estimate2. Undefined figures (an empty group, zero variance)
/// are None.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(utoipa::ToSchema, async_graphql::SimpleObject)
)]
pub struct HypothesisResult {
    pub n1: u64,
    pub n2: u64,
    pub estimate1: Option<f64>,
    pub estimate2: Option<f64>,
    pub difference: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    pub required_n: Option<u64>,
    pub verdict: Verdict,
    pub test: TestKind,
}

/// Evaluates one client's active hypotheses; results are in input order.
/// The q-values are Benjamini–Hochberg over the hypotheses that have a
/// p-value (one without a p-value cannot be tested and is left out).
pub fn evaluate_hypotheses(
    hypotheses: &[Hypothesis],
    settings: &HypothesisSettings,
) -> Vec<HypothesisResult> {
    let mut results: Vec<HypothesisResult> = hypotheses.iter().map(evaluate_unadjusted).collect();

    let tested: Vec<usize> = (0..results.len())
        .filter(|&i| results[i].p_value.is_some())
        .collect();
    let p_values: Vec<f64> = tested.iter().filter_map(|&i| results[i].p_value).collect();
    for (&i, q) in tested.iter().zip(benjamini_hochberg(&p_values)) {
        results[i].q_value = Some(q);
    }

    for (result, hypothesis) in results.iter_mut().zip(hypotheses) {
        result.verdict = verdict(result, hypothesis.direction, settings);
    }
    results
}

/// §2's verdict, in the order the spec lists the cases.
fn verdict(
    result: &HypothesisResult,
    direction: Direction,
    settings: &HypothesisSettings,
) -> Verdict {
    let Some(required_n) = result.required_n else {
        return Verdict::InsufficientData;
    };
    if result.n1 < settings.min_n1 || required_n > result.n1 {
        return Verdict::InsufficientData;
    }
    match (result.q_value, result.difference) {
        (Some(q), Some(difference)) if q < ALPHA && direction.matches(difference) => {
            Verdict::Supported
        }
        (Some(_), Some(_)) => Verdict::Rejected,
        // No test was possible (e.g. zero variance in both groups).
        _ => Verdict::InsufficientData,
    }
}

/// Everything but the q-value and the verdict, which depend on the batch.
fn evaluate_unadjusted(hypothesis: &Hypothesis) -> HypothesisResult {
    let direction = hypothesis.direction;
    let min_effect = hypothesis.min_effect;
    match &hypothesis.data {
        MetricData::Share { x1, n1, x2, n2 } => {
            evaluate_share(*x1, *n1, *x2, *n2, direction, min_effect)
        }
        MetricData::Mean { group1, group2 } => evaluate_mean(group1, group2, direction, min_effect),
        MetricData::Nps { group1, group2 } => evaluate_nps(group1, group2, direction, min_effect),
    }
}

fn share(x: u64, n: u64) -> Option<f64> {
    (n > 0 && x <= n).then(|| x as f64 / n as f64)
}

fn evaluate_share(
    x1: u64,
    n1: u64,
    x2: u64,
    n2: u64,
    direction: Direction,
    min_effect: Option<f64>,
) -> HypothesisResult {
    let (p1, p2) = (share(x1, n1), share(x2, n2));
    let exact = needs_exact_test(x1, n1, x2, n2);
    let p_value = if exact {
        fisher_exact(x1, n1, x2, n2, direction)
    } else {
        two_proportion_z(x1, n1, x2, n2).map(|z| direction.normal_p_value(z))
    };
    let (mut ci_low, mut ci_high, mut difference, mut required_n) = (None, None, None, None);
    if let (Some(p1), Some(p2)) = (p1, p2) {
        let diff = p1 - p2;
        let se = (p1 * (1.0 - p1) / n1 as f64 + p2 * (1.0 - p2) / n2 as f64).sqrt();
        let half = z_alpha_half() * se;
        ci_low = Some(diff - half);
        ci_high = Some(diff + half);
        difference = Some(diff);
        required_n = required_n_shares(p1, p2, min_effect);
    }
    HypothesisResult {
        n1,
        n2,
        estimate1: p1,
        estimate2: p2,
        difference,
        ci_low,
        ci_high,
        p_value,
        q_value: None,
        required_n,
        verdict: Verdict::InsufficientData,
        test: if exact {
            TestKind::FisherExact
        } else {
            TestKind::TwoProportionZ
        },
    }
}

/// Sample variance (n − 1) straight from the sums, so it does not go
/// through `Moments::sd`'s square root and back.
fn sample_variance(m: &Moments) -> Option<f64> {
    if m.n < 2 {
        return None;
    }
    let n = m.n as f64;
    Some(((m.sum_sq - m.sum * m.sum / n) / (n - 1.0)).max(0.0))
}

/// ((n1−1)·s1² + (n2−1)·s2²) / (n1+n2−2), from the groups' sums of squared
/// deviations so a group of one contributes 0 rather than nothing.
fn pooled_variance(group1: &Moments, group2: &Moments) -> Option<f64> {
    let ss = |m: &Moments| {
        if m.n == 0 {
            0.0
        } else {
            (m.sum_sq - m.sum * m.sum / m.n as f64).max(0.0)
        }
    };
    let df = (group1.n + group2.n).checked_sub(2).filter(|&df| df > 0)?;
    Some((ss(group1) + ss(group2)) / df as f64)
}

fn evaluate_mean(
    group1: &Moments,
    group2: &Moments,
    direction: Direction,
    min_effect: Option<f64>,
) -> HypothesisResult {
    let (m1, m2) = (group1.mean(), group2.mean());
    let difference = m1.zip(m2).map(|(a, b)| a - b);
    let test = match (m1, sample_variance(group1), m2, sample_variance(group2)) {
        (Some(m1), Some(v1), Some(m2), Some(v2)) => welch(group1.n, m1, v1, group2.n, m2, v2),
        _ => None,
    };
    let required_n = difference.and_then(|diff| {
        required_n_means(pooled_variance(group1, group2)?, min_effect.unwrap_or(diff))
    });
    HypothesisResult {
        n1: group1.n,
        n2: group2.n,
        estimate1: m1,
        estimate2: m2,
        difference,
        ci_low: test.map(|t| t.ci_low),
        ci_high: test.map(|t| t.ci_high),
        p_value: test.map(|t| t.p_value(direction)),
        q_value: None,
        required_n,
        verdict: Verdict::InsufficientData,
        test: TestKind::WelchT,
    }
}

/// §1's standard error of NPS: 100·√((p_P + p_D − (p_P − p_D)²)/n).
pub fn nps_se(tally: &NpsTally) -> Option<f64> {
    let n = tally.n();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let (pp, pd) = (tally.promoters as f64 / nf, tally.detractors as f64 / nf);
    Some(100.0 * ((pp + pd - (pp - pd).powi(2)).max(0.0) / nf).sqrt())
}

/// NPS as the mean of per-respondent scores +100 / 0 / −100, so §2's means
/// formula for `required_n` applies to it with s² their pooled variance.
fn nps_score_moments(tally: &NpsTally) -> Moments {
    Moments {
        n: tally.n(),
        sum: 100.0 * (tally.promoters as f64 - tally.detractors as f64),
        sum_sq: 10_000.0 * (tally.promoters + tally.detractors) as f64,
    }
}

fn evaluate_nps(
    group1: &NpsTally,
    group2: &NpsTally,
    direction: Direction,
    min_effect: Option<f64>,
) -> HypothesisResult {
    let (nps1, nps2) = (group1.nps(), group2.nps());
    let difference = nps1.zip(nps2).map(|(a, b)| a - b);
    let se = nps_se(group1)
        .zip(nps_se(group2))
        .map(|(a, b)| (a * a + b * b).sqrt());
    let (mut ci_low, mut ci_high, mut p_value) = (None, None, None);
    if let (Some(diff), Some(se)) = (difference, se) {
        let half = z_alpha_half() * se;
        ci_low = Some(diff - half);
        ci_high = Some(diff + half);
        if se > 0.0 {
            p_value = Some(direction.normal_p_value(diff / se));
        }
    }
    let required_n = difference.and_then(|diff| {
        let s2 = pooled_variance(&nps_score_moments(group1), &nps_score_moments(group2))?;
        required_n_means(s2, min_effect.unwrap_or(diff))
    });
    HypothesisResult {
        n1: group1.n(),
        n2: group2.n(),
        estimate1: nps1,
        estimate2: nps2,
        difference,
        ci_low,
        ci_high,
        p_value,
        q_value: None,
        required_n,
        verdict: Verdict::InsufficientData,
        test: TestKind::NpsZ,
    }
}

/// Whether any of n1·p, n1·(1−p), n2·p, n2·(1−p) is below 5 with the pooled
/// p = (x1+x2)/(n1+n2); an empty group counts as below.
pub fn needs_exact_test(x1: u64, n1: u64, x2: u64, n2: u64) -> bool {
    if n1 == 0 || n2 == 0 {
        return true;
    }
    let p = (x1 + x2) as f64 / (n1 + n2) as f64;
    let (n1, n2) = (n1 as f64, n2 as f64);
    [n1 * p, n1 * (1.0 - p), n2 * p, n2 * (1.0 - p)]
        .iter()
        .any(|&expected| expected < MIN_EXPECTED_COUNT)
}

/// Pooled z = (p1−p2)/√(p(1−p)(1/n1+1/n2)); None when undefined (an empty
/// group, x > n, or p ∈ {0, 1}).
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<f64> {
    let (p1, p2) = (share(x1, n1)?, share(x2, n2)?);
    let p = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    (se > 0.0).then(|| (p1 - p2) / se)
}

/// Fisher's exact test of the table [[x1, n1−x1], [x2, n2−x2]]: with X the
/// group-1 successes given the margins (hypergeometric), `greater` is
/// P(X ≥ x1), `less` P(X ≤ x1), `different` the sum of the probabilities of
/// all tables no more likely than the observed one. None for an empty group
/// or x > n.
pub fn fisher_exact(x1: u64, n1: u64, x2: u64, n2: u64, direction: Direction) -> Option<f64> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 {
        return None;
    }
    let total = n1 + n2;
    let successes = x1 + x2;
    let ln_denominator = ln_binomial(total, n1);
    let ln_pmf = |k: u64| {
        ln_binomial(successes, k) + ln_binomial(total - successes, n1 - k) - ln_denominator
    };
    let (low, high) = (successes.saturating_sub(n2), successes.min(n1));
    let sum = |ks: &mut dyn Iterator<Item = u64>| ks.map(|k| ln_pmf(k).exp()).sum::<f64>();
    let p = match direction {
        Direction::Greater => sum(&mut (x1..=high)),
        Direction::Less => sum(&mut (low..=x1)),
        Direction::Different => {
            let threshold = ln_pmf(x1) + FISHER_RELATIVE_TOLERANCE.ln_1p();
            sum(&mut (low..=high).filter(|&k| ln_pmf(k) <= threshold))
        }
    };
    Some(p.min(1.0))
}

/// Welch's unequal-variance t-test of mean1 − mean2.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchTest {
    pub difference: f64,
    pub se: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    pub t: f64,
    /// 95% CI: difference ± t(0.975, df)·se.
    pub ci_low: f64,
    pub ci_high: f64,
}

impl WelchTest {
    pub fn p_value(&self, direction: Direction) -> f64 {
        match StudentsT::new(0.0, 1.0, self.df) {
            Ok(dist) => p_value_from(&dist, direction, self.t),
            // df > 0 by construction; NaN keeps a broken input visible.
            Err(_) => f64::NAN,
        }
    }
}

/// Welch's t-test from each group's n, mean and sample variance (n − 1).
/// None when a group has fewer than 2 values or both variances are 0.
pub fn welch(n1: u64, mean1: f64, var1: f64, n2: u64, mean2: f64, var2: f64) -> Option<WelchTest> {
    if n1 < 2 || n2 < 2 {
        return None;
    }
    let (a, b) = (var1 / n1 as f64, var2 / n2 as f64);
    let se2 = a + b;
    if !(se2 > 0.0 && se2.is_finite()) {
        return None;
    }
    let df = se2 * se2 / (a * a / (n1 - 1) as f64 + b * b / (n2 - 1) as f64);
    let se = se2.sqrt();
    let difference = mean1 - mean2;
    let quantile = StudentsT::new(0.0, 1.0, df)
        .ok()?
        .inverse_cdf(1.0 - ALPHA / 2.0);
    Some(WelchTest {
        difference,
        se,
        df,
        t: difference / se,
        ci_low: difference - quantile * se,
        ci_high: difference + quantile * se,
    })
}

/// Benjamini–Hochberg q-values, in the input's order: q_(i) = min over
/// j ≥ i of p_(j)·m/j over the ascending p's, capped at 1.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut q = vec![0.0; m];
    let mut running_min = 1.0_f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        // m/j first, as R's p.adjust does: then q ≥ p holds exactly in floating point.
        running_min = running_min.min(m as f64 / (rank + 1) as f64 * p_values[i]);
        q[i] = running_min;
    }
    q
}

fn round_up_sample_size(n: f64) -> Option<u64> {
    (n.is_finite() && n >= 0.0).then(|| n.ceil() as u64)
}

/// Per-group n to detect p1 vs p2 (α = 0.05 two-sided, power 0.8):
/// (z_{α/2}·√(2·p̄(1−p̄)) + z_β·√(p1(1−p1)+p2(1−p2)))² / δ², p̄ = (p1+p2)/2,
/// δ = p1 − p2 or the stated minimum effect. None when infinite/undefined.
pub fn required_n_shares(p1: f64, p2: f64, min_effect: Option<f64>) -> Option<u64> {
    let delta = min_effect.unwrap_or(p1 - p2);
    let p_bar = (p1 + p2) / 2.0;
    let numerator = z_alpha_half() * (2.0 * p_bar * (1.0 - p_bar)).sqrt()
        + z_beta() * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    round_up_sample_size(numerator * numerator / (delta * delta))
}

/// Per-group n to detect a difference δ of means: 2·(z_{α/2}+z_β)²·s²/δ²
/// with s² the pooled variance. None when infinite/undefined.
pub fn required_n_means(pooled_variance: f64, delta: f64) -> Option<u64> {
    let z = z_alpha_half() + z_beta();
    round_up_sample_size(2.0 * z * z * pooled_variance / (delta * delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(actual: f64, expected: f64, rel: f64) {
        let scale = expected.abs().max(f64::MIN_POSITIVE);
        assert!(
            (actual - expected).abs() <= rel * scale,
            "actual {actual:e}, expected {expected:e}"
        );
    }

    fn moments(values: &[f64]) -> Moments {
        let mut m = Moments::default();
        for &x in values {
            m.add(x);
        }
        m
    }

    fn tally(promoters: u64, passives: u64, detractors: u64) -> NpsTally {
        NpsTally {
            promoters,
            passives,
            detractors,
        }
    }

    fn share_hypothesis(x1: u64, n1: u64, x2: u64, n2: u64, direction: Direction) -> Hypothesis {
        Hypothesis {
            data: MetricData::Share { x1, n1, x2, n2 },
            direction,
            min_effect: None,
        }
    }

    #[test]
    fn normal_quantiles_come_from_statrs() {
        close(z_alpha_half(), 1.959963984540054, 1e-12);
        close(z_beta(), 0.8416212335729143, 1e-12);
    }

    #[test]
    fn pooled_z_matches_a_hand_computation() {
        // p1 = 0.6, p2 = 0.4, p = 0.5: z = 0.2/√(0.25·(2/50)) = 2
        close(two_proportion_z(30, 50, 20, 50).unwrap(), 2.0, 1e-12);
    }

    #[test]
    fn share_uses_the_z_test_when_all_expected_counts_reach_five() {
        let r = evaluate_hypotheses(
            &[share_hypothesis(30, 50, 20, 50, Direction::Greater)],
            &HypothesisSettings::default(),
        );
        let r = &r[0];
        assert_eq!(r.test, TestKind::TwoProportionZ);
        // scipy.stats.norm.sf(2.0)
        close(r.p_value.unwrap(), 0.022750131948179195, 1e-9);
        // one hypothesis: q = p
        assert_eq!(r.q_value, r.p_value);
        // unpooled se = √(0.24/50 + 0.24/50) = √0.0096
        let half = 1.959963984540054 * 0.0096f64.sqrt();
        close(r.ci_low.unwrap(), 0.2 - half, 1e-12);
        close(r.ci_high.unwrap(), 0.2 + half, 1e-12);
        close(r.difference.unwrap(), 0.2, 1e-12);
        // (1.95996·√(2·0.25) + 0.84162·√0.48)² / 0.04 = 96.92… → 97
        assert_eq!(r.required_n, Some(97));
        // n1 = 50 < 97 required
        assert_eq!(r.verdict, Verdict::InsufficientData);
    }

    #[test]
    fn share_two_sided_and_less_p_values_match_scipy() {
        // 2*scipy.stats.norm.sf(2.0)
        let two = evaluate_hypotheses(
            &[share_hypothesis(30, 50, 20, 50, Direction::Different)],
            &HypothesisSettings::default(),
        );
        close(two[0].p_value.unwrap(), 0.04550026389635839, 1e-9);
        // scipy.stats.norm.cdf(2.0)
        let less = evaluate_hypotheses(
            &[share_hypothesis(30, 50, 20, 50, Direction::Less)],
            &HypothesisSettings::default(),
        );
        close(less[0].p_value.unwrap(), 0.9772498680518208, 1e-9);
    }

    #[test]
    fn share_falls_back_to_fisher_when_an_expected_count_is_below_five() {
        // pooled p = 4/40 = 0.1: n1·p = 2 < 5
        assert!(needs_exact_test(3, 20, 1, 20));
        assert!(!needs_exact_test(30, 50, 20, 50));
        assert!(needs_exact_test(0, 0, 5, 10));
        let r = evaluate_hypotheses(
            &[share_hypothesis(3, 20, 1, 20, Direction::Different)],
            &HypothesisSettings::default(),
        );
        assert_eq!(r[0].test, TestKind::FisherExact);
        // scipy.stats.fisher_exact([[3, 17], [1, 19]], alternative='two-sided').pvalue
        close(r[0].p_value.unwrap(), 0.6049896049896051, 1e-9);
    }

    #[test]
    fn fisher_matches_scipy() {
        let cases = [
            // scipy.stats.fisher_exact([[8, 2], [1, 5]], alternative=…).pvalue
            (8, 10, 1, 6, Direction::Different, 0.034965034965034975),
            (8, 10, 1, 6, Direction::Greater, 0.024475524475524483),
            (8, 10, 1, 6, Direction::Less, 0.9991258741258742),
            // scipy.stats.fisher_exact([[1, 9], [11, 3]], alternative=…).pvalue
            (1, 10, 11, 14, Direction::Different, 0.0027594561852200836),
            (1, 10, 11, 14, Direction::Less, 0.0013797280926100418),
            (1, 10, 11, 14, Direction::Greater, 0.9999663480953022),
            // scipy.stats.fisher_exact([[2, 198], [9, 291]], alternative=…).pvalue
            (2, 200, 9, 300, Direction::Different, 0.21311680311621622),
            (2, 200, 9, 300, Direction::Less, 0.1162372759384246),
        ];
        for (x1, n1, x2, n2, direction, expected) in cases {
            let p = fisher_exact(x1, n1, x2, n2, direction).unwrap();
            close(p, expected, 1e-9);
        }
    }

    #[test]
    fn fisher_counts_equally_likely_tables_despite_rounding() {
        // Symmetric margins: the observed table and its mirror are equally
        // likely. scipy.stats.fisher_exact([[3, 7], [7, 3]]).pvalue
        close(
            fisher_exact(3, 10, 7, 10, Direction::Different).unwrap(),
            0.1788954079975752,
            1e-9,
        );
        // The most likely table: p = 1.
        close(
            fisher_exact(5, 10, 5, 10, Direction::Different).unwrap(),
            1.0,
            1e-12,
        );
    }

    #[test]
    fn welch_matches_scipy() {
        let a = [3.0, 4.0, 5.0, 4.0, 5.0, 5.0, 4.0, 3.0, 5.0, 4.0];
        let b = [2.0, 3.0, 3.0, 4.0, 2.0, 5.0, 1.0];
        let r = evaluate_hypotheses(
            &[Hypothesis {
                data: MetricData::Mean {
                    group1: moments(&a),
                    group2: moments(&b),
                },
                direction: Direction::Different,
                min_effect: None,
            }],
            &HypothesisSettings::default(),
        );
        let r = &r[0];
        assert_eq!(r.test, TestKind::WelchT);
        close(r.difference.unwrap(), 4.2 - 20.0 / 7.0, 1e-12);
        // scipy.stats.ttest_ind(a, b, equal_var=False).pvalue
        close(r.p_value.unwrap(), 0.0421486648383371, 1e-9);
        // res = scipy.stats.ttest_ind(a, b, equal_var=False); res.confidence_interval(0.95)
        close(r.ci_low.unwrap(), 0.05937463114485508, 1e-9);
        close(r.ci_high.unwrap(), 2.626339654569431, 1e-9);
        // scipy.stats.ttest_ind(a, b, equal_var=False, alternative='greater').pvalue
        let t = welch(
            10,
            4.2,
            0.6222222222222222,
            7,
            20.0 / 7.0,
            1.8095238095238095,
        )
        .unwrap();
        close(t.p_value(Direction::Greater), 0.02107433241916855, 1e-9);
        // res.df
        close(t.df, 8.892570505026494, 1e-9);
        // 2·(z+z_β)²·s²/δ²: s² = (5.6 + 10.857142…)/15 = 1.0971…, δ = 1.3428…
        // → 9.55… → 10
        assert_eq!(r.required_n, Some(10));
        // n1 = 10 < 30
        assert_eq!(r.verdict, Verdict::InsufficientData);
    }

    #[test]
    fn welch_is_undefined_without_variance() {
        assert!(welch(5, 1.0, 0.0, 5, 2.0, 0.0).is_none());
        assert!(welch(1, 1.0, 1.0, 5, 2.0, 1.0).is_none());
    }

    #[test]
    fn nps_difference_uses_section_1_standard_errors() {
        // Group 1: 60 P, 20 passives, 20 D → NPS 40; group 2: 30/40/30 → 0.
        let (g1, g2) = (tally(60, 20, 20), tally(30, 40, 30));
        let se1 = 100.0 * ((0.8 - 0.16) / 100.0f64).sqrt(); // 8
        let se2 = 100.0 * (0.6f64 / 100.0).sqrt();
        close(nps_se(&g1).unwrap(), se1, 1e-12);
        let se = (se1 * se1 + se2 * se2).sqrt();
        let r = evaluate_hypotheses(
            &[Hypothesis {
                data: MetricData::Nps {
                    group1: g1,
                    group2: g2,
                },
                direction: Direction::Greater,
                min_effect: None,
            }],
            &HypothesisSettings::default(),
        );
        let r = &r[0];
        assert_eq!(r.test, TestKind::NpsZ);
        close(r.difference.unwrap(), 40.0, 1e-12);
        // scipy.stats.norm.sf(40 / (64 + 60) ** 0.5)
        close(r.p_value.unwrap(), 0.00016400815750676384, 1e-9);
        close(r.ci_low.unwrap(), 40.0 - 1.959963984540054 * se, 1e-12);
        // s² of ±100 scores pooled: (100·6400 + 100·6000)/198; 2·(z+z_β)²·s²/1600
        // = 61.44… → 62 ≤ n1 = 100
        assert_eq!(r.required_n, Some(62));
        assert_eq!(r.verdict, Verdict::Supported);
    }

    #[test]
    fn verdict_follows_q_direction_and_sample_size() {
        let settings = HypothesisSettings::default();
        // p1 = 0.6 vs 0.4 with 200 per group: large enough and significant.
        let supported = share_hypothesis(120, 200, 80, 200, Direction::Greater);
        // Same data, wrong direction.
        let wrong_way = share_hypothesis(120, 200, 80, 200, Direction::Less);
        // Too few in the segment.
        let small = share_hypothesis(12, 20, 80, 200, Direction::Greater);
        // No difference: required_n is infinite.
        let none = share_hypothesis(100, 200, 100, 200, Direction::Different);
        let r = evaluate_hypotheses(&[supported, wrong_way, small, none], &settings);
        assert_eq!(r[0].verdict, Verdict::Supported);
        assert_eq!(r[1].verdict, Verdict::Rejected);
        assert_eq!(r[2].verdict, Verdict::InsufficientData);
        assert_eq!(r[3].required_n, None);
        assert_eq!(r[3].verdict, Verdict::InsufficientData);
        // A lower per-client minimum lets the small segment through the
        // n1 check, but it still needs ≥ required_n.
        let lenient = HypothesisSettings { min_n1: 10 };
        let r = evaluate_hypotheses(
            &[share_hypothesis(18, 20, 40, 200, Direction::Greater)],
            &lenient,
        );
        assert!(r[0].required_n.unwrap() <= 20);
        assert_eq!(r[0].verdict, Verdict::Supported);
    }

    #[test]
    fn stated_minimum_effect_replaces_the_observed_difference() {
        // Observed 0.2; a stated 0.1 quadruples the requirement's δ² term.
        let observed = required_n_shares(0.6, 0.4, None).unwrap();
        let stated = required_n_shares(0.6, 0.4, Some(0.1)).unwrap();
        assert_eq!(observed, 97);
        // 96.92…·4 = 387.69… → 388
        assert_eq!(stated, 388);
        // 2·(2.8016)²·1/0.25 = 62.79 → 63
        assert_eq!(required_n_means(1.0, 0.5), Some(63));
        assert_eq!(required_n_means(1.0, 0.0), None);
        assert_eq!(required_n_means(f64::NAN, 1.0), None);
    }

    #[test]
    fn benjamini_hochberg_matches_a_hand_computation() {
        // sorted: 0.01·4/1 = 0.04, 0.02·4/2 = 0.04, 0.03·4/3 = 0.04, 0.5·4/4 = 0.5
        let q = benjamini_hochberg(&[0.5, 0.03, 0.01, 0.02]);
        let expected = [0.5, 0.04, 0.04, 0.04];
        for (q, e) in q.iter().zip(expected) {
            close(*q, e, 1e-12);
        }
        // step-up: 0.04·2/1 = 0.08 but the later 0.045·2/2 = 0.045 wins
        let q = benjamini_hochberg(&[0.04, 0.045]);
        close(q[0], 0.045, 1e-12);
        close(q[1], 0.045, 1e-12);
        assert!(benjamini_hochberg(&[]).is_empty());
    }

    #[test]
    fn untestable_hypotheses_stay_out_of_the_correction() {
        let r = evaluate_hypotheses(
            &[
                share_hypothesis(30, 50, 20, 50, Direction::Greater),
                share_hypothesis(0, 0, 20, 50, Direction::Greater),
            ],
            &HypothesisSettings::default(),
        );
        assert_eq!(r[0].q_value, r[0].p_value);
        assert_eq!(r[1].p_value, None);
        assert_eq!(r[1].q_value, None);
        assert_eq!(r[1].verdict, Verdict::InsufficientData);
    }

    fn share_data() -> impl Strategy<Value = (u64, u64, u64, u64)> {
        (1u64..300, 1u64..300).prop_flat_map(|(n1, n2)| (0..=n1, Just(n1), 0..=n2, Just(n2)))
    }

    fn direction() -> impl Strategy<Value = Direction> {
        prop_oneof![
            Just(Direction::Greater),
            Just(Direction::Less),
            Just(Direction::Different)
        ]
    }

    fn sample() -> impl Strategy<Value = Vec<f64>> {
        prop::collection::vec(0i32..=10, 2..40).prop_map(|v| v.into_iter().map(f64::from).collect())
    }

    proptest! {
        #[test]
        fn share_p_values_are_probabilities((x1, n1, x2, n2) in share_data(), d in direction()) {
            let r = &evaluate_hypotheses(&[share_hypothesis(x1, n1, x2, n2, d)], &HypothesisSettings::default())[0];
            let p = r.p_value.unwrap();
            prop_assert!((0.0..=1.0).contains(&p), "{p}");
            let diff = r.difference.unwrap();
            prop_assert!(r.ci_low.unwrap() <= diff && diff <= r.ci_high.unwrap());
        }

        #[test]
        fn fisher_tails_are_probabilities((x1, n1, x2, n2) in share_data(), d in direction()) {
            let p = fisher_exact(x1, n1, x2, n2, d).unwrap();
            prop_assert!((0.0..=1.0).contains(&p), "{p}");
        }

        #[test]
        fn mean_p_values_are_probabilities_and_ci_contains_difference(
            a in sample(), b in sample(), d in direction()
        ) {
            let r = &evaluate_hypotheses(&[Hypothesis {
                data: MetricData::Mean { group1: moments(&a), group2: moments(&b) },
                direction: d,
                min_effect: None,
            }], &HypothesisSettings::default())[0];
            if let Some(p) = r.p_value {
                prop_assert!((0.0..=1.0).contains(&p), "{p}");
                let diff = r.difference.unwrap();
                prop_assert!(r.ci_low.unwrap() <= diff && diff <= r.ci_high.unwrap());
            }
        }

        #[test]
        fn nps_p_values_are_probabilities(
            g1 in (0u64..50, 0u64..50, 0u64..50), g2 in (0u64..50, 0u64..50, 0u64..50), d in direction()
        ) {
            let r = &evaluate_hypotheses(&[Hypothesis {
                data: MetricData::Nps { group1: tally(g1.0, g1.1, g1.2), group2: tally(g2.0, g2.1, g2.2) },
                direction: d,
                min_effect: None,
            }], &HypothesisSettings::default())[0];
            if let Some(p) = r.p_value {
                prop_assert!((0.0..=1.0).contains(&p), "{p}");
                let diff = r.difference.unwrap();
                prop_assert!(r.ci_low.unwrap() <= diff && diff <= r.ci_high.unwrap());
            }
        }

        #[test]
        fn q_values_bound_p_and_keep_its_order(p in prop::collection::vec(0.0f64..=1.0, 1..30)) {
            let q = benjamini_hochberg(&p);
            for i in 0..p.len() {
                prop_assert!(q[i] >= p[i] && q[i] <= 1.0);
                for j in 0..p.len() {
                    if p[i] <= p[j] {
                        prop_assert!(q[i] <= q[j]);
                    }
                }
            }
        }

        #[test]
        fn q_value_of_a_single_p_is_p(p in 0.0f64..=1.0) {
            prop_assert_eq!(benjamini_hochberg(&[p]), vec![p]);
        }

        #[test]
        fn required_n_shrinks_as_the_difference_grows(
            p1 in 0.01f64..0.99, p2 in 0.01f64..0.99, d in 0.001f64..1.0, extra in 0.0f64..1.0
        ) {
            let small = required_n_shares(p1, p2, Some(d)).unwrap();
            let large = required_n_shares(p1, p2, Some(d + extra)).unwrap();
            prop_assert!(large <= small);
            let small = required_n_means(p1 * 10.0, d).unwrap();
            let large = required_n_means(p1 * 10.0, -(d + extra)).unwrap();
            prop_assert!(large <= small);
        }

        #[test]
        fn required_n_for_shares_shrinks_as_p1_moves_away(
            p2 in 0.05f64..0.95, d in 0.01f64..0.5, extra in 0.0f64..0.5
        ) {
            prop_assume!(p2 + d + extra < 1.0);
            let near = required_n_shares(p2 + d, p2, None).unwrap();
            let far = required_n_shares(p2 + d + extra, p2, None).unwrap();
            prop_assert!(far <= near);
        }
    }
}
