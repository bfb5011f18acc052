//! The client's ordered labelling rules: which JTBD label a purchase gets
//! (the first rule whose conditions all hold), validated and compiled.

use std::fmt;

use chrono::{Datelike, Timelike, Weekday};
use serde::{Deserialize, Serialize};

use super::*;

/// Closed range; a missing bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

/// The largest amount bound a rule may give: purchases' amounts are at
/// most 1e12.
pub const MAX_AMOUNT_BOUND: f64 = 1e12;

/// Closed range of money; a missing bound is open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
            // Purchases' amounts are 0 to 1e12; wider bounds are no rule
            // (and a bound near f64::MAX would not survive PostgreSQL's
            // jsonb, which keeps it as an exact decimal).
            let in_range = |x: f64| (0.0..=MAX_AMOUNT_BOUND).contains(&x);
            if amount.min.is_some_and(|x| !in_range(x)) || amount.max.is_some_and(|x| !in_range(x))
            {
                return Err(fail("amount bounds must be from 0 to 1e12"));
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

    pub(super) fn label_index(&self, p: &Purchase) -> u32 {
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
