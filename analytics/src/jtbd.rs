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

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};
use serde::{Deserialize, Serialize};

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

/// Closed range; a missing bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountRange {
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<u32>,
}

impl CountRange {
    pub fn contains(&self, v: u32) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// Closed range of money; a missing bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct AmountRange {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

impl AmountRange {
    pub fn contains(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }
}

/// Hours `from..=to` (0–23) of the purchase's local time; wraps past
/// midnight when `from > to` (22..=2 is 22, 23, 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourRange {
    pub from: u32,
    pub to: u32,
}

impl HourRange {
    pub fn contains(&self, hour: u32) -> bool {
        if self.from <= self.to {
            (self.from..=self.to).contains(&hour)
        } else {
            hour >= self.from || hour <= self.to
        }
    }
}

/// One labelling rule: every predicate given must hold (AND); a missing
/// predicate holds for every purchase. Sets are ORs over their members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelRule {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekdays: Option<Vec<Weekday>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HourRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<CountRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party_size: Option<CountRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<AmountRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
}

impl LabelRule {
    /// A rule without predicates: matches every purchase.
    pub fn new(label: impl Into<String>) -> LabelRule {
        LabelRule {
            label: label.into(),
            weekdays: None,
            hours: None,
            items: None,
            party_size: None,
            amount: None,
            channels: None,
        }
    }
}

/// A rule that cannot be used, by its position in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleError {
    pub index: usize,
    pub label: String,
    pub reason: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rule {} ({:?}): {}",
            self.index + 1,
            self.label,
            self.reason
        )
    }
}

impl std::error::Error for RuleError {}

#[derive(Debug, Clone, PartialEq)]
struct Compiled {
    label: u32,
    /// Bit `num_days_from_monday`.
    weekdays: u8,
    /// Bit `hour`.
    hours: u32,
    items: CountRange,
    party_size: CountRange,
    amount: AmountRange,
    channels: Option<Vec<String>>,
}

impl Compiled {
    fn matches(&self, p: &Purchase, weekday_bit: u8, hour_bit: u32) -> bool {
        self.weekdays & weekday_bit != 0
            && self.hours & hour_bit != 0
            && self.items.contains(p.items)
            && self.party_size.contains(p.party_size)
            && self.amount.contains(p.amount)
            && self
                .channels
                .as_ref()
                .is_none_or(|cs| cs.contains(&p.channel))
    }
}

/// Validated, ordered labelling rules: the first matching rule labels a
/// purchase, no match → `other`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<LabelRule>", into = "Vec<LabelRule>")]
pub struct LabelRules {
    rules: Vec<LabelRule>,
    compiled: Vec<Compiled>,
    labels: Vec<String>,
    other: u32,
}

impl LabelRules {
    /// Checks every rule: a non-blank label other than `none`, non-empty
    /// sets, hours 0–23, ranges with min ≤ max and finite money bounds.
    pub fn parse(rules: Vec<LabelRule>) -> Result<LabelRules, RuleError> {
        let mut labels: Vec<String> = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            let fail = |reason: &str| RuleError {
                index,
                label: rule.label.clone(),
                reason: reason.to_owned(),
            };
            let label = rule.label.trim();
            if label.is_empty() {
                return Err(fail("the label is blank"));
            }
            if label == NONE {
                return Err(fail("\"none\" is reserved for periods without purchases"));
            }
            let weekdays = match &rule.weekdays {
                None => 0x7f,
                Some(days) if days.is_empty() => return Err(fail("the weekday set is empty")),
                Some(days) => days
                    .iter()
                    .fold(0u8, |m, d| m | 1 << d.num_days_from_monday()),
            };
            let hours = match rule.hours {
                None => (1u32 << 24) - 1,
                Some(h) if h.from > 23 || h.to > 23 => {
                    return Err(fail("hours must be within 0–23"));
                }
                Some(h) => (0..24)
                    .filter(|&x| h.contains(x))
                    .fold(0, |m, x| m | 1 << x),
            };
            for (name, range) in [("items", rule.items), ("party size", rule.party_size)] {
                if let Some(CountRange {
                    min: Some(lo),
                    max: Some(hi),
                }) = range
                    && lo > hi
                {
                    return Err(fail(&format!("{name}: min {lo} > max {hi}")));
                }
            }
            let amount = rule.amount.unwrap_or_default();
            if amount.min.is_some_and(|x| !x.is_finite())
                || amount.max.is_some_and(|x| !x.is_finite())
            {
                return Err(fail("amount bounds must be finite"));
            }
            if let (Some(lo), Some(hi)) = (amount.min, amount.max)
                && lo > hi
            {
                return Err(fail(&format!("amount: min {lo} > max {hi}")));
            }
            if rule.channels.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(fail("the channel set is empty"));
            }
            compiled.push(Compiled {
                label: intern_label(&mut labels, label),
                weekdays,
                hours,
                items: rule.items.unwrap_or_default(),
                party_size: rule.party_size.unwrap_or_default(),
                amount,
                channels: rule.channels.clone(),
            });
        }
        let other = intern_label(&mut labels, OTHER);
        Ok(LabelRules {
            rules,
            compiled,
            labels,
            other,
        })
    }

    /// Distinct labels in order of first appearance, then `other` (unless a
    /// rule already names it).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn rules(&self) -> &[LabelRule] {
        &self.rules
    }

    pub fn label_of(&self, p: &Purchase) -> &str {
        let k = self.label_index(p) as usize;
        self.labels.get(k).map_or(OTHER, String::as_str)
    }

    fn label_index(&self, p: &Purchase) -> u32 {
        let weekday_bit = 1u8 << p.at.weekday().num_days_from_monday();
        let hour_bit = 1u32 << p.at.hour();
        self.compiled
            .iter()
            .find(|c| c.matches(p, weekday_bit, hour_bit))
            .map_or(self.other, |c| c.label)
    }
}

fn intern_label(labels: &mut Vec<String>, label: &str) -> u32 {
    let k = match labels.iter().position(|l| l == label) {
        Some(k) => k,
        None => {
            labels.push(label.to_owned());
            labels.len() - 1
        }
    };
    k as u32
}

impl TryFrom<Vec<LabelRule>> for LabelRules {
    type Error = RuleError;

    fn try_from(rules: Vec<LabelRule>) -> Result<Self, Self::Error> {
        LabelRules::parse(rules)
    }
}

impl From<LabelRules> for Vec<LabelRule> {
    fn from(r: LabelRules) -> Self {
        r.rules
    }
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

/// RFM score of every value: 1 + floor(5·|{values smaller}| / n), so equal
/// values get equal scores, all in 1..=5. For recency pass −R.
pub fn rfm_scores(values: &[f64]) -> Vec<u8> {
    // + 0.0 turns −0.0 into 0.0 so that the two compare (and sort) equal
    let mut sorted: Vec<f64> = values.iter().map(|v| v + 0.0).collect();
    sorted.sort_unstable_by(f64::total_cmp);
    let n = values.len() as u64;
    values
        .iter()
        .map(|&v| {
            let v = v + 0.0;
            let smaller = sorted.partition_point(|&x| x < v) as u64;
            (1 + 5 * smaller / n) as u8
        })
        .collect()
}

/// The first segment of analytics.md §6's table that (R score, F score)
/// falls in, in the table's order.
pub fn rfm_segment(r: u8, f: u8) -> RfmSegment {
    use RfmSegment::*;
    if r >= 4 && f >= 4 {
        Champions
    } else if r >= 3 && f >= 4 {
        Loyal
    } else if r >= 4 && (2..=3).contains(&f) {
        PotentialLoyalist
    } else if r == 5 && f == 1 {
        New
    } else if r == 4 && f == 1 {
        Promising
    } else if r == 3 && (2..=3).contains(&f) {
        NeedAttention
    } else if r == 3 && f == 1 {
        AboutToSleep
    } else if r <= 2 && (3..=4).contains(&f) {
        AtRisk
    } else if r <= 2 && f == 5 {
        CantLose
    } else if r == 2 && f <= 2 {
        Hibernating
    } else {
        // R = 1 & F ≤ 2: the table covers every pair of scores in 1..=5
        Lost
    }
}

/// Median; for an even count, the mean of the two middle values. Reorders
/// `values`.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (left, &mut mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return Some(mid);
    }
    let lower = left.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + mid) / 2.0)
}

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
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn at(y: i32, m: u32, day: u32, h: u32) -> NaiveDateTime {
        d(y, m, day).and_hms_opt(h, 0, 0).unwrap()
    }

    fn buy(c: &str, when: NaiveDateTime, amount: f64, party: u32) -> Purchase {
        Purchase {
            customer_ref: c.into(),
            at: when,
            amount,
            items: 1,
            party_size: party,
            channel: "shop".into(),
        }
    }

    /// breakfast: 6–10 h; family: party ≥ 3; late: 22–2 h (wraps).
    fn rules() -> LabelRules {
        LabelRules::parse(vec![
            LabelRule {
                hours: Some(HourRange { from: 6, to: 10 }),
                ..LabelRule::new("breakfast")
            },
            LabelRule {
                party_size: Some(CountRange {
                    min: Some(3),
                    max: None,
                }),
                ..LabelRule::new("family")
            },
            LabelRule {
                hours: Some(HourRange { from: 22, to: 2 }),
                ..LabelRule::new("late")
            },
        ])
        .unwrap()
    }

    fn config() -> JtbdConfig {
        JtbdConfig {
            as_of: d(2024, 3, 15),
            period: PeriodKind::Month,
            margin: 0.5,
        }
    }

    /// D = 15 March 2024, monthly.
    /// A: Jan breakfast 10, family 50, breakfast 12 → Jan breakfast (2 vs 1);
    ///    Feb nothing; Mar family 40; a purchase on 20 Mar is after D.
    /// B: Feb breakfast 20 (3 Feb), family 60 (4 Feb) → tie, latest → family;
    ///    Mar 1 07:00 party 3: breakfast (first match wins) 15.
    /// C: 30 Dec 2023 12:00 other 30, then nothing.
    /// E: 14 Mar breakfast 8 — first purchase in D's period.
    /// F: only after D — not a customer at all.
    fn sample() -> Vec<Purchase> {
        vec![
            buy("A", at(2024, 1, 5, 8), 10.0, 1),
            buy("A", at(2024, 1, 20, 19), 50.0, 4),
            buy("B", at(2024, 2, 4, 20), 60.0, 3),
            buy("A", at(2024, 1, 25, 9), 12.0, 1),
            buy("A", at(2024, 3, 10, 20), 40.0, 4),
            buy("A", at(2024, 3, 20, 9), 999.0, 1),
            buy("B", at(2024, 2, 3, 8), 20.0, 1),
            buy("B", at(2024, 3, 1, 7), 15.0, 3),
            buy("C", at(2023, 12, 30, 12), 30.0, 1),
            buy("E", at(2024, 3, 14, 9), 8.0, 1),
            buy("F", at(2024, 3, 16, 9), 5.0, 1),
        ]
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn stats<'a>(r: &'a JtbdReport, label: &str) -> &'a JtbdStats {
        r.jtbds.iter().find(|s| s.label == label).unwrap()
    }

    #[test]
    fn rules_label_first_match_and_fall_back_to_other() {
        let r = rules();
        assert_eq!(r.labels(), ["breakfast", "family", "late", "other"]);
        // 07:00 with a party of 3 matches breakfast and family: first wins
        assert_eq!(
            r.label_of(&buy("x", at(2024, 3, 1, 7), 1.0, 3)),
            "breakfast"
        );
        assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 12), 1.0, 3)), "family");
        assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 23), 1.0, 1)), "late");
        assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 1), 1.0, 1)), "late");
        assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 3), 1.0, 1)), "other");
    }

    #[test]
    fn rules_combine_weekday_amount_items_and_channel() {
        let r = LabelRules::parse(vec![LabelRule {
            weekdays: Some(vec![Weekday::Sat, Weekday::Sun]),
            items: Some(CountRange {
                min: Some(2),
                max: Some(5),
            }),
            amount: Some(AmountRange {
                min: Some(100.0),
                max: None,
            }),
            channels: Some(vec!["delivery".into()]),
            ..LabelRule::new("weekend feast")
        }])
        .unwrap();
        // 2 March 2024 is a Saturday
        let mut p = Purchase {
            items: 3,
            channel: "delivery".into(),
            ..buy("x", at(2024, 3, 2, 19), 150.0, 2)
        };
        assert_eq!(r.label_of(&p), "weekend feast");
        p.at = at(2024, 3, 4, 19); // Monday
        assert_eq!(r.label_of(&p), "other");
        p.at = at(2024, 3, 3, 19);
        p.items = 6;
        assert_eq!(r.label_of(&p), "other");
        p.items = 5;
        p.channel = "shop".into();
        assert_eq!(r.label_of(&p), "other");
    }

    #[test]
    fn invalid_rules_are_rejected_with_their_position() {
        let bad = [
            LabelRule::new(" "),
            LabelRule::new("none"),
            LabelRule {
                weekdays: Some(vec![]),
                ..LabelRule::new("x")
            },
            LabelRule {
                hours: Some(HourRange { from: 3, to: 24 }),
                ..LabelRule::new("x")
            },
            LabelRule {
                items: Some(CountRange {
                    min: Some(3),
                    max: Some(2),
                }),
                ..LabelRule::new("x")
            },
            LabelRule {
                party_size: Some(CountRange {
                    min: Some(3),
                    max: Some(2),
                }),
                ..LabelRule::new("x")
            },
            LabelRule {
                amount: Some(AmountRange {
                    min: Some(f64::NAN),
                    max: None,
                }),
                ..LabelRule::new("x")
            },
            LabelRule {
                amount: Some(AmountRange {
                    min: Some(10.0),
                    max: Some(5.0),
                }),
                ..LabelRule::new("x")
            },
            LabelRule {
                channels: Some(vec![]),
                ..LabelRule::new("x")
            },
        ];
        for rule in bad {
            let err = LabelRules::parse(vec![LabelRule::new("ok"), rule.clone()]).unwrap_err();
            assert_eq!(err.index, 1, "{rule:?}");
        }
    }

    #[test]
    fn periods_number_consecutively_and_weeks_start_on_monday() {
        let m = PeriodKind::Month;
        assert_eq!(m.index(d(2024, 1, 31)) + 1, m.index(d(2024, 2, 1)));
        assert_eq!(m.index(d(2023, 12, 31)) + 1, m.index(d(2024, 1, 1)));
        assert_eq!(m.start(m.index(d(2024, 2, 17))), Some(d(2024, 2, 1)));
        let q = PeriodKind::Quarter;
        assert_eq!(q.index(d(2024, 3, 31)), q.index(d(2024, 1, 1)));
        assert_eq!(q.index(d(2024, 3, 31)) + 1, q.index(d(2024, 4, 1)));
        assert_eq!(q.start(q.index(d(2024, 11, 5))), Some(d(2024, 10, 1)));
        let w = PeriodKind::Week;
        // every day of 2020–2026 lies in the week starting on its ISO Monday
        let mut day = d(2020, 1, 1);
        while day < d(2027, 1, 1) {
            let iso = day.iso_week();
            let monday = NaiveDate::from_isoywd_opt(iso.year(), iso.week(), Weekday::Mon).unwrap();
            assert_eq!(w.start(w.index(day)), Some(monday), "{day}");
            day = day.succ_opt().unwrap();
        }
        // Sunday 3 Mar 2024 and Monday 4 Mar 2024 are consecutive weeks
        assert_eq!(w.index(d(2024, 3, 3)) + 1, w.index(d(2024, 3, 4)));
    }

    #[test]
    fn rfm_scores_count_smaller_values() {
        // n = 4: 1 + floor(5·k/4) for k = 0, 1, 2, 3 → 1, 2, 3, 4
        assert_eq!(rfm_scores(&[8.0, 30.0, 95.0, 112.0]), vec![1, 2, 3, 4]);
        // ties: 1, 1 have 0 smaller → 1; 3 has 2 smaller → 1 + floor(10/4) = 3
        assert_eq!(rfm_scores(&[1.0, 1.0, 3.0, 7.0]), vec![1, 1, 3, 4]);
        // n = 5: k = 4 → 1 + floor(20/5) = 5
        assert_eq!(rfm_scores(&[1.0, 2.0, 3.0, 4.0, 5.0]), vec![1, 2, 3, 4, 5]);
        assert_eq!(rfm_scores(&[-0.0, 0.0]), vec![1, 1]);
        assert!(rfm_scores(&[]).is_empty());
    }

    #[test]
    fn rfm_segments_follow_the_table_in_order() {
        use RfmSegment::*;
        // rows R = 5..1, columns F = 1..5
        let table = [
            [
                New,
                PotentialLoyalist,
                PotentialLoyalist,
                Champions,
                Champions,
            ],
            [
                Promising,
                PotentialLoyalist,
                PotentialLoyalist,
                Champions,
                Champions,
            ],
            [AboutToSleep, NeedAttention, NeedAttention, Loyal, Loyal],
            [Hibernating, Hibernating, AtRisk, AtRisk, CantLose],
            [Lost, Lost, AtRisk, AtRisk, CantLose],
        ];
        for (i, row) in table.iter().enumerate() {
            for (j, &want) in row.iter().enumerate() {
                let (r, f) = (5 - i as u8, j as u8 + 1);
                assert_eq!(rfm_segment(r, f), want, "R{r} F{f}");
            }
        }
    }

    /// (customer, R, F, M, R score, F score, M score, segment)
    type RfmRow<'a> = (&'a str, i64, u64, f64, u8, u8, u8, RfmSegment);

    #[test]
    fn rfm_per_customer_by_hand() {
        let rep = compute(&sample(), &rules(), &config()).unwrap();
        let got: Vec<RfmRow> = rep
            .customers
            .iter()
            .map(|c| {
                (
                    c.customer_ref.as_str(),
                    c.recency_days,
                    c.frequency,
                    c.monetary,
                    c.r_score,
                    c.f_score,
                    c.m_score,
                    c.segment,
                )
            })
            .collect();
        // R: A 15 Mar − 10 Mar = 5; B − 1 Mar = 14; C 30 Dec → 1 + 31 + 29 +
        // 15 = 76; E 1. g = −R: −5, −14, −76, −1 → smaller: 2, 1, 0, 3 →
        // scores 1 + floor(5k/4) = 3, 2, 1, 4.
        // F: 4, 3, 1, 1 → smaller 3, 2, 0, 0 → 4, 3, 1, 1 (tie).
        // M: 10+50+12+40 = 112, 20+60+15 = 95, 30, 8 → 4, 3, 2, 1.
        // Segments: A R3 F4 loyal; B R2 F3 at_risk; C R1 F1 lost;
        // E R4 F1 promising. F (after D only) is no customer.
        use RfmSegment::*;
        assert_eq!(
            got,
            vec![
                ("A", 5, 4, 112.0, 3, 4, 4, Loyal),
                ("B", 14, 3, 95.0, 2, 3, 3, AtRisk),
                ("C", 76, 1, 30.0, 1, 1, 2, Lost),
                ("E", 1, 1, 8.0, 4, 1, 1, Promising),
            ]
        );
        assert_eq!(rep.purchases, 9);
        assert_eq!(rep.current_period_start, Some(d(2024, 3, 1)));
    }

    #[test]
    fn migration_matrix_by_hand() {
        let rep = compute(&sample(), &rules(), &config()).unwrap();
        let m = &rep.migration;
        assert_eq!(m.states, ["breakfast", "family", "late", "other", "none"]);
        // A: Jan breakfast → Feb none → Mar family
        // B: Feb family (tie → latest) → Mar breakfast
        // C: Dec other → Jan none → Feb none → Mar none
        // E: first purchase in March = D's period: no transition
        #[rustfmt::skip]
        let want = vec![
            //   bf fam late oth none
            vec![0, 0, 0, 0, 1], // breakfast
            vec![1, 0, 0, 0, 0], // family
            vec![0, 0, 0, 0, 0], // late
            vec![0, 0, 0, 0, 1], // other
            vec![0, 1, 0, 0, 2], // none
        ];
        assert_eq!(m.counts, want);
        // none row: 0, 1/3, 0, 0, 2/3; the empty late row stays 0
        assert!(close(m.probabilities[4][1], 1.0 / 3.0));
        assert!(close(m.probabilities[4][4], 2.0 / 3.0));
        assert_eq!(m.probabilities[2], vec![0.0; 5]);
        assert_eq!(m.probabilities[0][4], 1.0);
    }

    #[test]
    fn a_customer_first_seen_in_the_current_period_adds_no_transition() {
        let only_e = vec![buy("E", at(2024, 3, 14, 9), 8.0, 1)];
        let rep = compute(&only_e, &rules(), &config()).unwrap();
        let total: u64 = rep.migration.counts.iter().flatten().sum();
        assert_eq!(total, 0);
        assert_eq!(stats(&rep, "breakfast").churn, None);
        assert_eq!(stats(&rep, "breakfast").ltv, None);
        assert_eq!(stats(&rep, "breakfast").customer_periods, 1);
    }

    #[test]
    fn churn_and_ltv_by_hand() {
        let rep = compute(&sample(), &rules(), &config()).unwrap();
        // breakfast: before March only A-Jan, followed by none → churn 1.
        // Customer-periods: A-Jan 10+50+12 = 72, B-Mar 15, E-Mar 8 → mean
        // 95/3; LTV = 95/3 · 0.5 · min(36, 1/1) = 95/6.
        let b = stats(&rep, "breakfast");
        assert_eq!(
            (b.customer_periods, b.customer_periods_before_current),
            (3, 1)
        );
        assert_eq!(b.churn, Some(1.0));
        assert!(close(b.mean_period_revenue.unwrap(), 95.0 / 3.0));
        assert!(close(b.ltv.unwrap(), 95.0 / 6.0));
        // family: B-Feb (20+60 = 80) → breakfast, churn 0 → 36 periods;
        // A-Mar 40; mean 60; LTV = 60 · 0.5 · 36 = 1080.
        let f = stats(&rep, "family");
        assert_eq!(f.churn, Some(0.0));
        assert!(close(f.ltv.unwrap(), 1080.0));
        // other: C-Dec 30, churn 1 → 30 · 0.5 · 1 = 15.
        assert!(close(stats(&rep, "other").ltv.unwrap(), 15.0));
        // late: nothing at all
        let l = stats(&rep, "late");
        assert_eq!((l.churn, l.ltv, l.mean_period_revenue), (None, None, None));
        // purchases by label: breakfast 10, 12, 20, 15, 8 = 65 over 5
        assert_eq!((b.purchases, b.revenue), (5, 65.0));
        assert_eq!(lifetime_periods(0.02), 36.0);
        assert_eq!(lifetime_periods(0.25), 4.0);
    }

    #[test]
    fn inter_purchase_intervals_by_hand() {
        let rep = compute(&sample(), &rules(), &config()).unwrap();
        // family (labelled by the later purchase): A 5 Jan 08 → 20 Jan 19 =
        // 15 + 11/24; A 25 Jan 09 → 10 Mar 20 = 45 + 11/24; B 3 Feb 08 → 4 Feb
        // 20 = 1.5 → median 15 + 11/24.
        let f = stats(&rep, "family");
        assert_eq!(f.intervals, 3);
        assert!(close(f.median_interval_days.unwrap(), 15.0 + 11.0 / 24.0));
        // breakfast: A 20 Jan 19 → 25 Jan 09 = 4 + 14/24; B 4 Feb 20 → 1 Mar
        // 07 = 26 − 13/24; even count → (4 + 14/24 + 26 − 13/24)/2 = 15 + 1/48
        let b = stats(&rep, "breakfast");
        assert_eq!(b.intervals, 2);
        assert!(close(b.median_interval_days.unwrap(), 15.0 + 1.0 / 48.0));
        assert_eq!(stats(&rep, "other").median_interval_days, None);
    }

    #[test]
    fn median_of_even_count_is_mean_of_middle_values() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn dominant_tie_goes_to_the_latest_purchase_even_at_equal_times() {
        // same timestamp: input order decides; at noon a party of 1 is
        // other, of 5 family; the family purchase comes last
        let t = at(2024, 2, 3, 12);
        let ps = vec![buy("X", t, 1.0, 1), buy("X", t, 1.0, 5)];
        let rep = compute(&ps, &rules(), &config()).unwrap();
        // Feb family → Mar none
        assert_eq!(rep.migration.counts[1][4], 1);
        // the interval of 0 days is labelled by the later (family) purchase
        assert_eq!(stats(&rep, "family").intervals, 1);
        assert_eq!(stats(&rep, "family").median_interval_days, Some(0.0));
        assert_eq!(stats(&rep, "breakfast").intervals, 0);
    }

    #[test]
    fn non_finite_amounts_and_margins_are_rejected() {
        let ps = vec![buy("X", at(2024, 1, 1, 9), f64::NAN, 1)];
        assert!(matches!(
            compute(&ps, &rules(), &config()),
            Err(JtbdError::InvalidPurchase { index: 0, .. })
        ));
        // ...unless dated after D, where it is ignored
        let ps = vec![buy("X", at(2024, 4, 1, 9), f64::NAN, 1)];
        assert!(compute(&ps, &rules(), &config()).is_ok());
        let bad = JtbdConfig {
            margin: f64::INFINITY,
            ..config()
        };
        assert!(compute(&[], &rules(), &bad).is_err());
    }

    #[test]
    fn weekly_periods_count_dormant_weeks() {
        let cfg = JtbdConfig {
            period: PeriodKind::Week,
            ..config()
        };
        // Friday 15 Mar 2024 is in the week of 11 Mar. One purchase on Monday
        // 26 Feb → weeks 26 Feb, 4 Mar, 11 Mar: breakfast → none → none.
        let rep = compute(&[buy("X", at(2024, 2, 26, 9), 5.0, 1)], &rules(), &cfg).unwrap();
        assert_eq!(rep.migration.counts[0][4], 1);
        assert_eq!(rep.migration.counts[4][4], 1);
        assert_eq!(rep.current_period_start, Some(d(2024, 3, 11)));
    }

    fn arb_purchases() -> impl Strategy<Value = Vec<Purchase>> {
        prop::collection::vec((0u8..8, 0i64..200 * 24, 0u32..5, 1u32..6, 1u32..50), 0..60).prop_map(
            |v| {
                v.into_iter()
                    .map(|(c, hours, items, party, amount)| Purchase {
                        customer_ref: format!("c{c}"),
                        at: at(2023, 10, 1, 0) + chrono::TimeDelta::hours(hours),
                        amount: f64::from(amount),
                        items,
                        party_size: party,
                        channel: "shop".into(),
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #[test]
        fn rfm_scores_are_in_range_and_equal_for_equal_values(
            values in prop::collection::vec(prop::sample::select(vec![0.0, 1.0, 2.5, 7.0, -3.0, 100.0]), 1..40)
        ) {
            let scores = rfm_scores(&values);
            for (i, &a) in values.iter().enumerate() {
                prop_assert!((1..=5).contains(&scores[i]));
                for (j, &b) in values.iter().enumerate() {
                    if a == b {
                        prop_assert_eq!(scores[i], scores[j]);
                    }
                    if a < b {
                        prop_assert!(scores[i] <= scores[j]);
                    }
                }
            }
        }

        #[test]
        fn migration_rows_sum_to_one_or_zero(ps in arb_purchases(), period in prop::sample::select(vec![PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter])) {
            let cfg = JtbdConfig { period, ..config() };
            let rep = compute(&ps, &rules(), &cfg).unwrap();
            for (row, counts) in rep.migration.probabilities.iter().zip(&rep.migration.counts) {
                let s: f64 = row.iter().sum();
                if counts.iter().sum::<u64>() == 0 {
                    prop_assert_eq!(s, 0.0);
                } else {
                    prop_assert!((s - 1.0).abs() < 1e-9);
                }
            }
            // one transition per consecutive pair of periods, first purchase → D
            let current = period.index(cfg.as_of);
            let mut first: HashMap<&str, i64> = HashMap::new();
            for p in ps.iter().filter(|p| p.at.date() <= cfg.as_of) {
                let k = period.index(p.at.date());
                first.entry(&p.customer_ref).and_modify(|f| *f = (*f).min(k)).or_insert(k);
            }
            let want: i64 = first.values().map(|&f| current - f).sum();
            let total: u64 = rep.migration.counts.iter().flatten().sum();
            prop_assert_eq!(total as i64, want);
            for c in &rep.customers {
                prop_assert!((1..=5).contains(&c.r_score));
                prop_assert!((1..=5).contains(&c.f_score));
                prop_assert!((1..=5).contains(&c.m_score));
            }
        }
    }
}
