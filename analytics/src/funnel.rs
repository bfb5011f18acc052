//! Reach, qualification and nurture (analytics.md §7): channel figures and
//! the funnel report, rule scores, the per-client logistic model, tiers and
//! explanations.
//!
//! Choices the spec leaves open, made here:
//! - A channel figure with a zero denominator is `None`, never 0 or ∞.
//! - The trend's "last full week" is the last ISO week (Monday–Sunday) that
//!   ends on or before the range's last day; its change is the relative
//!   change `last / mean(4 before) − 1` of each figure, `None` when fewer
//!   than 4 weeks precede it or the mean is 0 (or a ratio is undefined).
//! - An attribute is numeric for the model when every labelled contact that
//!   has it holds a number; otherwise each distinct text of it (numbers and
//!   booleans written out as text) is a categorical level.
use serde::{Deserialize, Serialize};

mod channels;
mod model;
mod qualify;
pub use channels::*;
pub use model::*;
pub use qualify::*;

#[cfg(test)]
mod tests;

/// The three funnel types of the notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema, async_graphql::Enum))]
#[serde(rename_all = "snake_case")]
pub enum FunnelType {
    /// First touches; grows the base of potential clients.
    Reach,
    /// Qualified contacts to the deal.
    Warming,
    /// Repeat sale.
    Reverse,
}

impl FunnelType {
    pub const ALL: [FunnelType; 3] = [FunnelType::Reach, FunnelType::Warming, FunnelType::Reverse];

    pub fn name(self) -> &'static str {
        match self {
            FunnelType::Reach => "reach",
            FunnelType::Warming => "warming",
            FunnelType::Reverse => "reverse",
        }
    }

    pub fn parse(s: &str) -> Option<FunnelType> {
        FunnelType::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// A contact attribute's value as the model and the rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Number(f64),
    Text(String),
}

impl AttrValue {
    /// The value as a categorical level / for text comparisons.
    pub fn as_text(&self) -> String {
        match self {
            AttrValue::Bool(b) => b.to_string(),
            AttrValue::Number(n) => format_number(*n),
            AttrValue::Text(t) => t.clone(),
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            AttrValue::Number(n) => Some(*n),
            AttrValue::Text(t) => t.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
            AttrValue::Bool(_) => None,
        }
    }
}

/// Integers without a trailing `.0`, so `3` and `3.0` are one level.
fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}
