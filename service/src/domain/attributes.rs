//! A subscriber's attributes: a JSON object whose keys look like question
//! keys and whose values are strings, numbers or arrays of strings — what a
//! saved segment filter (AND over conditions, OR over values, number
//! ranges) is matched against.
use serde_json::{Map, Value};

use super::questions::valid_key;
use super::segment_filter::SegmentFilter;
use crate::infra::error::FieldError;

pub const MAX_KEYS: usize = 50;
const MAX_STRING: usize = 500;
const MAX_ITEMS: usize = 50;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attributes(Map<String, Value>);

impl Attributes {
    /// `v` as attributes, or every offending key named under `field`.
    pub fn parse(field: &str, v: &Value) -> Result<Attributes, Vec<FieldError>> {
        let Value::Object(map) = v else {
            return Err(vec![FieldError::new(field, "must be an object")]);
        };
        let mut errs = Vec::new();
        if map.len() > MAX_KEYS {
            errs.push(FieldError::new(field, format!("at most {MAX_KEYS} keys")));
        }
        for (k, v) in map {
            let f = format!("{field}.{k}");
            if !valid_key(k) {
                errs.push(FieldError::new(
                    &f,
                    "keys are lower-case letters, digits and _, starting with a letter",
                ));
                continue;
            }
            let ok = match v {
                Value::String(s) => s.chars().count() <= MAX_STRING,
                Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
                Value::Array(items) => {
                    items.len() <= MAX_ITEMS
                        && items
                            .iter()
                            .all(|i| i.as_str().is_some_and(|s| s.chars().count() <= MAX_STRING))
                }
                _ => false,
            };
            if !ok {
                errs.push(FieldError::new(
                    &f,
                    format!(
                        "must be a string (at most {MAX_STRING} characters), a number or an array of at most {MAX_ITEMS} strings"
                    ),
                ));
            }
        }
        if errs.is_empty() {
            Ok(Attributes(map.clone()))
        } else {
            Err(errs)
        }
    }

    /// A CSV cell: a number if it reads as one, a list if it holds `;`
    /// (as multi-choice answers are imported), else a string.
    pub fn cell(s: &str) -> Value {
        let s = s.trim();
        if let Ok(x) = s.parse::<f64>()
            && x.is_finite()
            && let Some(n) = serde_json::Number::from_f64(x)
        {
            // Integers stay integers.
            return match s.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => Value::Number(n),
            };
        }
        if s.contains(';') {
            return Value::Array(
                s.split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_owned()))
                    .collect(),
            );
        }
        Value::String(s.to_owned())
    }

    /// What the database holds (written through `parse`; anything else is
    /// treated as no attributes).
    pub fn from_stored(v: &Value) -> Attributes {
        match v {
            Value::Object(m) => Attributes(m.clone()),
            _ => Attributes::default(),
        }
    }

    pub fn to_value(&self) -> Value {
        Value::Object(self.0.clone())
    }

    /// Whether every condition holds: values match a string, any item of a
    /// list, or a number written the same way; a range holds a number (or a
    /// string that reads as one). A missing attribute matches nothing.
    pub fn matches(&self, filter: &SegmentFilter) -> bool {
        filter.conditions.iter().all(|c| {
            let Some(v) = self.0.get(&c.question) else {
                return false;
            };
            if let Some(values) = &c.values {
                let has = |s: &str| values.iter().any(|x| x == s);
                return match v {
                    Value::String(s) => has(s),
                    Value::Array(items) => items.iter().any(|i| i.as_str().is_some_and(has)),
                    Value::Number(n) => has(&n.to_string()),
                    _ => false,
                };
            }
            let x = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            x.is_some_and(|x| {
                x.is_finite() && c.min.is_none_or(|lo| x >= lo) && c.max.is_none_or(|hi| x <= hi)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::segment_filter::Condition;

    fn attrs(v: Value) -> Attributes {
        Attributes::parse("attributes", &v).unwrap()
    }

    fn values(q: &str, v: &[&str]) -> Condition {
        Condition {
            question: q.into(),
            values: Some(v.iter().map(|s| (*s).to_owned()).collect()),
            min: None,
            max: None,
        }
    }

    fn range(q: &str, min: Option<f64>, max: Option<f64>) -> Condition {
        Condition {
            question: q.into(),
            values: None,
            min,
            max,
        }
    }

    #[test]
    fn filters_are_and_over_conditions_and_or_over_values() {
        let a = attrs(
            json!({"city": "msk", "interests": ["yoga", "swim"], "budget": 4_000_000, "age": "34"}),
        );
        let f = |c: Vec<Condition>| SegmentFilter { conditions: c };
        assert!(a.matches(&f(vec![values("city", &["spb", "msk"])])));
        assert!(a.matches(&f(vec![values("interests", &["swim"])])));
        assert!(!a.matches(&f(vec![values("interests", &["run"])])));
        assert!(a.matches(&f(vec![
            values("city", &["msk"]),
            range("budget", Some(3e6), Some(5e6))
        ])));
        assert!(!a.matches(&f(vec![
            values("city", &["msk"]),
            range("budget", Some(5e6), None)
        ])));
        assert!(a.matches(&f(vec![range("age", Some(30.0), Some(40.0))])));
        assert!(a.matches(&f(vec![values("budget", &["4000000"])])));
        // A missing attribute matches nothing.
        assert!(!a.matches(&f(vec![values("source", &["social"])])));
        assert!(!Attributes::default().matches(&f(vec![range("budget", None, Some(1.0))])));
    }

    #[test]
    fn bad_attributes_name_their_key() {
        let errs = Attributes::parse(
            "attributes",
            &json!({"City": "x", "ok": {"nested": 1}, "list": [1, 2], "fine": "y"}),
        )
        .unwrap_err();
        let mut fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            ["attributes.City", "attributes.list", "attributes.ok"]
        );
        assert!(Attributes::parse("attributes", &json!([1])).is_err());
    }

    #[test]
    fn csv_cells_become_numbers_lists_or_strings() {
        assert_eq!(Attributes::cell("42"), json!(42));
        assert_eq!(Attributes::cell("3.5"), json!(3.5));
        assert_eq!(Attributes::cell("yoga; swim"), json!(["yoga", "swim"]));
        assert_eq!(Attributes::cell(" msk "), json!("msk"));
    }
}
