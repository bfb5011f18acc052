//! JTBD value-migration map (analytics.md §6).
//!
//! Choices the spec leaves open, made here:
//! - A purchase's time is a [`NaiveDateTime`] in the client's local time
//!   (the caller converts from UTC with the client's timezone), because the
//!   labelling rules speak of local weekdays and hours and D is a local date.
//! - Purchases dated after D are dropped before anything else, so they are
//!   neither validated nor counted anywhere.
//! - R = calendar days from the date of the last purchase to D (0 when the
//!   customer bought on D).
//! - Revenue of a customer-period = all that customer's purchases in the
//!   period, whatever their labels.
//! - Purchases with equal timestamps are ordered by their input position
//!   (this decides "the latest purchase among the tied" and intervals).
//! - Interval = exact time between purchases in days (seconds / 86 400, so
//!   fractional); the median of an even count is the mean of the two middle
//!   values.
//! - Money is summed with compensated (Neumaier) summation, so M and
//!   revenues do not depend on summation order beyond the last bit and RFM
//!   ties are ties.
//!
//! Customers and labels are interned into indices, so the per-purchase work
//! allocates nothing.
use std::collections::HashMap;
use std::fmt;

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

mod rfm;
mod rules;
pub use rfm::*;
pub use rules::*;

/// Label of a purchase no rule matches.
pub const OTHER: &str = "other";
/// State of a customer-period without purchases.
pub const NONE: &str = "none";
/// Cap of the expected lifetime, in periods.
pub const MAX_LIFETIME_PERIODS: f64 = 36.0;

const MICROS_PER_DAY: f64 = 86_400_000_000.0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purchase {
    pub customer_ref: String,
    /// Client-local time.
    pub at: NaiveDateTime,
    pub amount: f64,
    pub items: u32,
    pub party_size: u32,
    pub channel: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeriodKind {
    #[default]
    Month,
    /// ISO week, Monday to Sunday.
    Week,
    Quarter,
}

impl PeriodKind {
    /// A number per period such that consecutive periods get consecutive
    /// numbers.
    pub fn index(self, date: NaiveDate) -> i64 {
        match self {
            PeriodKind::Month => i64::from(date.year()) * 12 + i64::from(date.month0()),
            PeriodKind::Quarter => i64::from(date.year()) * 4 + i64::from(date.month0() / 3),
            // Day 1 of the common era (0001-01-01) is a Monday.
            PeriodKind::Week => (i64::from(date.num_days_from_ce()) - 1).div_euclid(7),
        }
    }

    /// First day of the period numbered `index`.
    pub fn start(self, index: i64) -> Option<NaiveDate> {
        match self {
            PeriodKind::Month => NaiveDate::from_ymd_opt(
                i32::try_from(index.div_euclid(12)).ok()?,
                u32::try_from(index.rem_euclid(12)).ok()? + 1,
                1,
            ),
            PeriodKind::Quarter => NaiveDate::from_ymd_opt(
                i32::try_from(index.div_euclid(4)).ok()?,
                u32::try_from(index.rem_euclid(4)).ok()? * 3 + 1,
                1,
            ),
            PeriodKind::Week => {
                NaiveDate::from_num_days_from_ce_opt(i32::try_from(index.checked_mul(7)? + 1).ok()?)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct JtbdConfig {
    /// D, client-local.
    pub as_of: NaiveDate,
    pub period: PeriodKind,
    /// Gross margin m, a fraction.
    pub margin: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RfmSegment {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    Promising,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    CantLose,
    Hibernating,
    Lost,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerRfm {
    pub customer_ref: String,
    pub recency_days: i64,
    pub frequency: u64,
    pub monetary: f64,
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    pub segment: RfmSegment,
}

/// `states` = labels, then `none`; `counts[a][b]` = transitions a → b;
/// `probabilities` = counts / row total (all 0 for a row without
/// transitions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationMatrix {
    pub states: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    pub probabilities: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JtbdStats {
    pub label: String,
    /// Purchases labelled with it, on or before D.
    pub purchases: u64,
    pub revenue: f64,
    /// Customer-periods with this dominant JTBD, D's period included.
    pub customer_periods: u64,
    /// Those before D's period: the base of the churn.
    pub customer_periods_before_current: u64,
    /// Mean revenue of `customer_periods`; None when there are none.
    pub mean_period_revenue: Option<f64>,
    /// Share of `customer_periods_before_current` followed by `none`.
    pub churn: Option<f64>,
    /// mean_period_revenue · m · min(36, 1/churn); 36 periods when churn is
    /// 0; None when `customer_periods_before_current` is 0.
    pub ltv: Option<f64>,
    /// Median days between consecutive purchases whose later one has this
    /// label.
    pub median_interval_days: Option<f64>,
    pub intervals: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JtbdReport {
    pub as_of: NaiveDate,
    pub period: PeriodKind,
    /// First day of the period that contains D.
    pub current_period_start: Option<NaiveDate>,
    /// Purchases on or before D.
    pub purchases: u64,
    /// Ascending by `customer_ref`.
    pub customers: Vec<CustomerRfm>,
    pub migration: MigrationMatrix,
    /// One per label, in the order of [`LabelRules::labels`].
    pub jtbds: Vec<JtbdStats>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum JtbdError {
    InvalidPurchase { index: usize, reason: String },
    InvalidMargin { margin: f64 },
    TooManyPurchases { count: usize },
}

impl fmt::Display for JtbdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JtbdError::InvalidPurchase { index, reason } => write!(f, "purchase {index}: {reason}"),
            JtbdError::InvalidMargin { margin } => write!(f, "margin must be finite, got {margin}"),
            JtbdError::TooManyPurchases { count } => write!(f, "{count} purchases exceed 2^32"),
        }
    }
}

impl std::error::Error for JtbdError {}

/// Compensated (Neumaier) sum.
#[derive(Debug, Clone, Copy, Default)]
struct Sum {
    s: f64,
    c: f64,
}

impl Sum {
    fn add(&mut self, x: f64) {
        let t = self.s + x;
        if self.s.abs() >= x.abs() {
            self.c += (self.s - t) + x;
        } else {
            self.c += (x - t) + self.s;
        }
        self.s = t;
    }

    fn value(self) -> f64 {
        self.s + self.c
    }
}

/// A purchase reduced to numbers.
#[derive(Debug, Clone, Copy)]
struct Row {
    ts: i64,
    amount: f64,
    period: i64,
    day: i32,
    customer: u32,
    label: u32,
}

#[derive(Default, Clone, Copy)]
struct LabelAcc {
    purchases: u64,
    revenue: Sum,
    periods: u64,
    period_revenue: Sum,
}

/// Builds the whole map as of D.
pub fn compute(
    purchases: &[Purchase],
    rules: &LabelRules,
    config: &JtbdConfig,
) -> Result<JtbdReport, JtbdError> {
    if !config.margin.is_finite() {
        return Err(JtbdError::InvalidMargin {
            margin: config.margin,
        });
    }
    if u32::try_from(purchases.len()).is_err() {
        return Err(JtbdError::TooManyPurchases {
            count: purchases.len(),
        });
    }
    let period = config.period;
    let current = period.index(config.as_of);
    let as_of_day = config.as_of.num_days_from_ce();

    // Reduce and intern.
    let mut customer_ids: HashMap<&str, u32> = HashMap::new();
    let mut customer_refs: Vec<&str> = Vec::new();
    let mut rows: Vec<Row> = Vec::with_capacity(purchases.len());
    for (index, p) in purchases.iter().enumerate() {
        let date = p.at.date();
        if date > config.as_of {
            continue;
        }
        if !p.amount.is_finite() {
            return Err(JtbdError::InvalidPurchase {
                index,
                reason: format!("amount must be finite, got {}", p.amount),
            });
        }
        let next = customer_refs.len() as u32;
        let customer = *customer_ids
            .entry(p.customer_ref.as_str())
            .or_insert_with(|| {
                customer_refs.push(&p.customer_ref);
                next
            });
        rows.push(Row {
            ts: p.at.and_utc().timestamp_micros(),
            amount: p.amount,
            period: period.index(date),
            day: date.num_days_from_ce(),
            customer,
            label: rules.label_index(p),
        });
    }
    drop(customer_ids);

    // Group by customer (stable, so input order survives), then by time.
    let n_customers = customer_refs.len();
    let mut start = vec![0usize; n_customers + 1];
    for r in &rows {
        start[r.customer as usize + 1] += 1;
    }
    for c in 0..n_customers {
        start[c + 1] += start[c];
    }
    let mut by_customer = rows.clone();
    let mut fill = start.clone();
    for r in &rows {
        let slot = &mut fill[r.customer as usize];
        by_customer[*slot] = *r;
        *slot += 1;
    }
    drop(rows);

    let n_labels = rules.labels().len();
    let none = n_labels;
    let n_states = n_labels + 1;
    let mut counts = vec![vec![0u64; n_states]; n_states];
    let mut acc = vec![LabelAcc::default(); n_labels];
    let mut intervals: Vec<Vec<f64>> = vec![Vec::new(); n_labels];
    let mut recency = Vec::with_capacity(n_customers);
    let mut frequency = Vec::with_capacity(n_customers);
    let mut monetary = Vec::with_capacity(n_customers);
    // scratch for dominant labels
    let mut tally = vec![0u32; n_labels];
    let mut last_pos = vec![0usize; n_labels];
    let mut touched: Vec<usize> = Vec::new();

    for c in 0..n_customers {
        let slice = &mut by_customer[start[c]..start[c + 1]];
        if !slice.is_sorted_by_key(|r| r.ts) {
            slice.sort_by_key(|r| r.ts);
        }
        let slice = &*slice;

        let mut money = Sum::default();
        for r in slice {
            money.add(r.amount);
            let a = &mut acc[r.label as usize];
            a.purchases += 1;
            a.revenue.add(r.amount);
        }
        for w in slice.windows(2) {
            intervals[w[1].label as usize].push((w[1].ts - w[0].ts) as f64 / MICROS_PER_DAY);
        }
        let last_day = slice.last().map_or(as_of_day, |r| r.day);
        recency.push(i64::from(as_of_day) - i64::from(last_day));
        frequency.push(slice.len() as u64);
        monetary.push(money.value());

        // Customer-periods in order, with their dominant label.
        let mut prev: Option<(i64, usize)> = None;
        for group in slice.chunk_by(|a, b| a.period == b.period) {
            let mut revenue = Sum::default();
            for (pos, r) in group.iter().enumerate() {
                let l = r.label as usize;
                if tally[l] == 0 {
                    touched.push(l);
                }
                tally[l] += 1;
                last_pos[l] = pos;
                revenue.add(r.amount);
            }
            // most frequent; tie → the latest purchase among the tied
            let dominant = touched
                .iter()
                .copied()
                .max_by_key(|&l| (tally[l], last_pos[l]));
            for &l in &touched {
                tally[l] = 0;
            }
            touched.clear();
            // chunk_by yields non-empty groups, so both are always present
            let (Some(dominant), Some(first)) = (dominant, group.first()) else {
                continue;
            };
            let p = first.period;
            let a = &mut acc[dominant];
            a.periods += 1;
            a.period_revenue.add(revenue.value());

            if let Some((pp, ps)) = prev {
                add_gap(&mut counts, none, ps, dominant, p - pp);
            }
            prev = Some((p, dominant));
        }
        // From the last active period up to D's period, dormant.
        if let Some((pp, ps)) = prev
            && current > pp
        {
            let gap = (current - pp) as u64;
            counts[ps][none] += 1;
            counts[none][none] += gap - 1;
        }
    }

    let r_scores = rfm_scores(&recency.iter().map(|&r| -(r as f64)).collect::<Vec<_>>());
    let f_scores = rfm_scores(&frequency.iter().map(|&f| f as f64).collect::<Vec<_>>());
    let m_scores = rfm_scores(&monetary);
    let mut order: Vec<usize> = (0..n_customers).collect();
    order.sort_unstable_by_key(|&c| customer_refs[c]);
    let customers = order
        .into_iter()
        .map(|c| CustomerRfm {
            customer_ref: customer_refs[c].to_owned(),
            recency_days: recency[c],
            frequency: frequency[c],
            monetary: monetary[c],
            r_score: r_scores[c],
            f_score: f_scores[c],
            m_score: m_scores[c],
            segment: rfm_segment(r_scores[c], f_scores[c]),
        })
        .collect();

    let jtbds = rules
        .labels()
        .iter()
        .enumerate()
        .map(|(l, label)| {
            let a = acc[l];
            let before: u64 = counts[l].iter().sum();
            let churn = (before > 0).then(|| counts[l][none] as f64 / before as f64);
            let mean_period_revenue =
                (a.periods > 0).then(|| a.period_revenue.value() / a.periods as f64);
            let ltv = match (churn, mean_period_revenue) {
                (Some(churn), Some(mean)) => Some(mean * config.margin * lifetime_periods(churn)),
                _ => None,
            };
            let n_intervals = intervals[l].len() as u64;
            JtbdStats {
                label: label.clone(),
                purchases: a.purchases,
                revenue: a.revenue.value(),
                customer_periods: a.periods,
                customer_periods_before_current: before,
                mean_period_revenue,
                churn,
                ltv,
                median_interval_days: median(&mut intervals[l]),
                intervals: n_intervals,
            }
        })
        .collect();

    let mut states = rules.labels().to_vec();
    states.push(NONE.to_owned());
    let probabilities = counts
        .iter()
        .map(|row| {
            let total: u64 = row.iter().sum();
            row.iter()
                .map(|&x| {
                    if total == 0 {
                        0.0
                    } else {
                        x as f64 / total as f64
                    }
                })
                .collect()
        })
        .collect();

    Ok(JtbdReport {
        as_of: config.as_of,
        period,
        current_period_start: period.start(current),
        purchases: by_customer.len() as u64,
        customers,
        migration: MigrationMatrix {
            states,
            counts,
            probabilities,
        },
        jtbds,
    })
}

/// min(36, 1/churn), and 36 when churn is 0.
pub fn lifetime_periods(churn: f64) -> f64 {
    if churn > 0.0 {
        (1.0 / churn).min(MAX_LIFETIME_PERIODS)
    } else {
        MAX_LIFETIME_PERIODS
    }
}

/// The transitions between two active periods `gap` (≥ 1) apart: a → b
/// when adjacent, else a → none, (gap − 2) × none → none, none → b.
fn add_gap(counts: &mut [Vec<u64>], none: usize, a: usize, b: usize, gap: i64) {
    if gap == 1 {
        counts[a][b] += 1;
    } else if gap > 1 {
        counts[a][none] += 1;
        counts[none][none] += (gap - 2) as u64;
        counts[none][b] += 1;
    }
}

#[cfg(test)]
mod tests;
