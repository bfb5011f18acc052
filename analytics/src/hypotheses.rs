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
mod tests;
