//! Segment filters: an AND over questions of an OR over values (choice
//! questions) or a closed range (number questions), as analytics.md §1 says.
use serde::{Deserialize, Serialize};

use super::questions::valid_key;
use crate::infra::error::FieldError;

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(name = "SegmentFilterInput")]
pub struct SegmentFilter {
    #[schema(min_items = 1, max_items = 50)]
    pub conditions: Vec<Condition>,
}

#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
#[graphql(name = "ConditionInput")]
pub struct Condition {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub question: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

impl SegmentFilter {
    pub fn validate(&self, field: &str) -> Result<(), Vec<FieldError>> {
        let mut errs = Vec::new();
        if self.conditions.is_empty() || self.conditions.len() > 50 {
            errs.push(FieldError::new(
                format!("{field}.conditions"),
                "needs 1 to 50 conditions",
            ));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            let f = |n: &str| format!("{field}.conditions[{i}].{n}");
            if !valid_key(&c.question) {
                errs.push(FieldError::new(f("question"), "is not a question key"));
            }
            match (&c.values, c.min, c.max) {
                (Some(v), None, None) => {
                    if v.is_empty() || v.iter().any(|s| s.is_empty()) {
                        errs.push(FieldError::new(f("values"), "needs non-empty values"));
                    }
                }
                (None, lo, hi) if lo.is_some() || hi.is_some() => {
                    if lo.is_some_and(|x| !x.is_finite()) || hi.is_some_and(|x| !x.is_finite()) {
                        errs.push(FieldError::new(f("min"), "must be finite"));
                    } else if let (Some(lo), Some(hi)) = (lo, hi)
                        && lo > hi
                    {
                        errs.push(FieldError::new(f("min"), "must not exceed max"));
                    }
                }
                _ => errs.push(FieldError::new(
                    f("values"),
                    "give either values or a min/max range",
                )),
            }
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }
}
