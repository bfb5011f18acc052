//! Answers validated against their questions. A response is stored only in
//! its canonical form: numbers as numbers, multi-choice as arrays.
use std::collections::HashMap;

use serde_json::{Map, Value};

use super::questions::{Question, QuestionType};
use crate::infra::error::FieldError;

pub const MAX_TEXT_CHARS: usize = 10_000;

/// Questions of one questionnaire version, looked up by key.
pub struct AnswerSchema<'a> {
    pub questions: &'a [Question],
    by_key: HashMap<&'a str, &'a Question>,
}

impl<'a> AnswerSchema<'a> {
    pub fn new(questions: &'a [Question]) -> Self {
        Self {
            questions,
            by_key: questions.iter().map(|q| (q.key.as_str(), q)).collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Question> {
        self.by_key.get(key).copied()
    }

    /// Validates a JSON answers object; returns the canonical object.
    pub fn validate_json(&self, answers: Map<String, Value>) -> Result<Value, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut out = Map::with_capacity(answers.len());
        for (key, value) in answers {
            let Some(q) = self.get(&key) else {
                errors.push(FieldError::new(
                    format!("answers.{key}"),
                    "no question has this key",
                ));
                continue;
            };
            match canonical_json(q, value) {
                Ok(Some(v)) => {
                    out.insert(key, v);
                }
                Ok(None) => {}
                Err(msg) => errors.push(FieldError::new(format!("answers.{key}"), msg)),
            }
        }
        self.check_required(&out, &mut errors);
        if errors.is_empty() {
            Ok(Value::Object(out))
        } else {
            Err(errors)
        }
    }

    /// Checks that every required question has an answer (one whose answer
    /// was already refused is not reported twice).
    pub fn check_required(&self, out: &Map<String, Value>, errors: &mut Vec<FieldError>) {
        for q in self.questions {
            if q.required && !out.contains_key(&q.key) {
                let field = format!("answers.{}", q.key);
                if !errors.iter().any(|e| e.field == field) {
                    errors.push(FieldError::new(field, "is required"));
                }
            }
        }
    }
}

/// `Ok(None)` for a blank answer (null or blank text). An empty list is a
/// multi-choice answer — "none of these" (analytics.md, Notation) — and a
/// type error for every other question.
pub fn canonical_json(q: &Question, value: Value) -> Result<Option<Value>, String> {
    match value {
        Value::Null => return Ok(None),
        Value::String(ref s) if s.trim().is_empty() => return Ok(None),
        _ => {}
    }
    match q.qtype {
        QuestionType::SingleChoice => match value {
            Value::String(s) => choice(q, s).map(|s| Some(Value::String(s))),
            other => Err(format!("expected one of the options, got {}", kind(&other))),
        },
        QuestionType::MultiChoice => match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::String(s) => {
                            let s = choice(q, s)?;
                            if out.contains(&Value::String(s.clone())) {
                                return Err(format!("option '{s}' is listed twice"));
                            }
                            out.push(Value::String(s));
                        }
                        other => {
                            return Err(format!(
                                "expected a list of options, found {} in it",
                                kind(&other)
                            ));
                        }
                    }
                }
                Ok(Some(Value::Array(out)))
            }
            other => Err(format!("expected a list of options, got {}", kind(&other))),
        },
        QuestionType::Rating1To5 | QuestionType::Nps0To10 => {
            let n = value
                .as_f64()
                .ok_or_else(|| format!("expected a whole number, got {}", kind(&value)))?;
            scale(q, n).map(|v| Some(Value::from(v)))
        }
        QuestionType::Number => {
            let n = value
                .as_f64()
                .ok_or_else(|| format!("expected a number, got {}", kind(&value)))?;
            number(q, n).map(|_| Some(value))
        }
        QuestionType::Text | QuestionType::Email | QuestionType::Date => match value {
            Value::String(s) => text_like(q, s).map(|s| Some(Value::String(s))),
            other => Err(format!("expected text, got {}", kind(&other))),
        },
    }
}

/// Converts one CSV cell; `Ok(None)` for an empty cell.
pub fn canonical_cell(q: &Question, cell: &str) -> Result<Option<Value>, String> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Ok(None);
    }
    match q.qtype {
        QuestionType::SingleChoice => choice(q, cell.to_owned()).map(|s| Some(Value::String(s))),
        QuestionType::MultiChoice => {
            let mut out: Vec<Value> = Vec::new();
            for part in cell.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let s = choice(q, part.to_owned())?;
                if out.iter().any(|v| v.as_str() == Some(s.as_str())) {
                    return Err(format!("option '{s}' is listed twice"));
                }
                out.push(Value::String(s));
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        QuestionType::Rating1To5 | QuestionType::Nps0To10 => {
            let n: f64 = cell
                .parse()
                .map_err(|_| format!("expected a whole number, got '{}'", clip(cell)))?;
            scale(q, n).map(|v| Some(Value::from(v)))
        }
        QuestionType::Number => {
            let n: f64 = cell
                .parse()
                .map_err(|_| format!("expected a number, got '{}'", clip(cell)))?;
            number(q, n)?;
            Ok(Some(
                serde_json::Number::from_f64(n)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
            ))
        }
        QuestionType::Text | QuestionType::Email | QuestionType::Date => {
            text_like(q, cell.to_owned()).map(|s| Some(Value::String(s)))
        }
    }
}

fn choice(q: &Question, s: String) -> Result<String, String> {
    if q.options.contains(&s) {
        Ok(s)
    } else {
        Err(format!("'{}' is not one of the options", clip(&s)))
    }
}

fn scale(q: &Question, n: f64) -> Result<i64, String> {
    let (lo, hi) = q.qtype.scale().unwrap_or((i64::MIN, i64::MAX));
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(format!("expected a whole number from {lo} to {hi}"));
    }
    if n < lo as f64 || n > hi as f64 {
        return Err(format!("{n} is out of range {lo}..{hi}"));
    }
    Ok(n as i64)
}

fn number(q: &Question, n: f64) -> Result<(), String> {
    if !n.is_finite() {
        return Err("expected a finite number".into());
    }
    if let Some(lo) = q.min
        && n < lo
    {
        return Err(format!("{n} is below the minimum {lo}"));
    }
    if let Some(hi) = q.max
        && n > hi
    {
        return Err(format!("{n} is above the maximum {hi}"));
    }
    Ok(())
}

fn text_like(q: &Question, s: String) -> Result<String, String> {
    match q.qtype {
        QuestionType::Email => {
            let t = s.trim();
            if valid_email(t) {
                Ok(t.to_owned())
            } else {
                Err(format!("'{}' is not an email address", clip(t)))
            }
        }
        QuestionType::Date => {
            let t = s.trim();
            chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map(|d| d.format("%Y-%m-%d").to_string())
                .map_err(|_| format!("'{}' is not a date (YYYY-MM-DD)", clip(t)))
        }
        _ => {
            if s.chars().count() > MAX_TEXT_CHARS {
                Err(format!("longer than {MAX_TEXT_CHARS} characters"))
            } else {
                Ok(s)
            }
        }
    }
}

pub fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && s.chars().count() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn clip(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::questions::{QuestionInput, parse_questions};
    use serde_json::json;

    fn schema() -> Vec<Question> {
        let qs: Vec<QuestionInput> = serde_json::from_value(json!([
            {"key": "city", "type": "single_choice", "options": ["msk", "spb"], "required": true},
            {"key": "src", "type": "multi_choice", "options": ["social", "tv", "friends"]},
            {"key": "price", "type": "rating_1_5"},
            {"key": "nps", "type": "nps_0_10", "role": "nps"},
            {"key": "budget", "type": "number", "min": 0, "max": 100},
            {"key": "mail", "type": "email"},
            {"key": "day", "type": "date"},
            {"key": "note", "type": "text"}
        ]))
        .unwrap();
        parse_questions(qs).unwrap()
    }

    #[test]
    fn bad_answers_name_their_field() {
        let qs = schema();
        let s = AnswerSchema::new(&qs);
        let cases = [
            (json!({"city": "kzn"}), "answers.city"),
            (json!({"city": 3}), "answers.city"),
            (json!({"city": "msk", "src": "social"}), "answers.src"),
            (
                json!({"city": "msk", "src": ["tv", "radio"]}),
                "answers.src",
            ),
            (json!({"city": "msk", "price": 6}), "answers.price"),
            (json!({"city": "msk", "price": 4.5}), "answers.price"),
            (json!({"city": "msk", "price": "4"}), "answers.price"),
            (json!({"city": "msk", "nps": 11}), "answers.nps"),
            (json!({"city": "msk", "budget": 101}), "answers.budget"),
            (json!({"city": "msk", "mail": "nobody"}), "answers.mail"),
            (json!({"city": "msk", "day": "31.12.2026"}), "answers.day"),
            (json!({"city": "msk", "ghost": 1}), "answers.ghost"),
            (json!({"src": ["tv"]}), "answers.city"),
            (json!({"city": "msk", "price": []}), "answers.price"),
            (json!({"city": []}), "answers.city"),
        ];
        for (answers, field) in cases {
            let Value::Object(map) = answers.clone() else {
                unreachable!()
            };
            let errs = s.validate_json(map).unwrap_err();
            assert_eq!(errs[0].field, field, "{answers}");
        }
    }

    #[test]
    fn blanks_are_dropped_and_values_canonical() {
        let qs = schema();
        let s = AnswerSchema::new(&qs);
        let Value::Object(map) =
            json!({"city": "spb", "src": null, "price": 4.0, "note": "", "budget": 5.5})
        else {
            unreachable!()
        };
        let v = s.validate_json(map).unwrap();
        assert_eq!(v, json!({"city": "spb", "price": 4, "budget": 5.5}));
    }

    #[test]
    fn an_empty_selection_is_kept_as_an_answer() {
        let mut qs = schema();
        qs[1].required = true;
        let s = AnswerSchema::new(&qs);
        let Value::Object(map) = json!({"city": "spb", "src": []}) else {
            unreachable!()
        };
        // "None of these" satisfies a required multi-choice question.
        assert_eq!(
            s.validate_json(map).unwrap(),
            json!({"city": "spb", "src": []})
        );
    }

    #[test]
    fn csv_cells_parse_by_type() {
        let qs = schema();
        assert_eq!(
            canonical_cell(&qs[1], "social; tv").unwrap(),
            Some(json!(["social", "tv"]))
        );
        assert_eq!(canonical_cell(&qs[2], "5").unwrap(), Some(json!(5)));
        assert!(canonical_cell(&qs[2], "five").is_err());
        assert_eq!(canonical_cell(&qs[3], " ").unwrap(), None);
    }
}
