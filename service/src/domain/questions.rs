//! Questions of a questionnaire: types, roles and the rules that tie them.
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::FieldError;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Hash,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum QuestionType {
    SingleChoice,
    MultiChoice,
    #[serde(rename = "rating_1_5")]
    Rating1To5,
    #[serde(rename = "nps_0_10")]
    Nps0To10,
    Number,
    Text,
    Email,
    Date,
}

impl QuestionType {
    pub const ALL: [QuestionType; 8] = [
        QuestionType::SingleChoice,
        QuestionType::MultiChoice,
        QuestionType::Rating1To5,
        QuestionType::Nps0To10,
        QuestionType::Number,
        QuestionType::Text,
        QuestionType::Email,
        QuestionType::Date,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuestionType::SingleChoice => "single_choice",
            QuestionType::MultiChoice => "multi_choice",
            QuestionType::Rating1To5 => "rating_1_5",
            QuestionType::Nps0To10 => "nps_0_10",
            QuestionType::Number => "number",
            QuestionType::Text => "text",
            QuestionType::Email => "email",
            QuestionType::Date => "date",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn is_choice(self) -> bool {
        matches!(self, QuestionType::SingleChoice | QuestionType::MultiChoice)
    }

    /// Fixed integer range of scale questions.
    pub fn scale(self) -> Option<(i64, i64)> {
        match self {
            QuestionType::Rating1To5 => Some((1, 5)),
            QuestionType::Nps0To10 => Some((0, 10)),
            _ => None,
        }
    }
}

/// What a question means to analytics.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    Hash,
    utoipa::ToSchema,
    async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum QuestionRole {
    SegmentAttribute,
    Jtbd,
    Problem,
    ChoiceFactorImportance,
    Nps,
    Spend,
    SourceChannel,
    TouchpointRating,
    TouchpointIdea,
    Barrier,
    Recommendation,
    VisitDate,
}

impl QuestionRole {
    pub const ALL: [QuestionRole; 12] = [
        QuestionRole::SegmentAttribute,
        QuestionRole::Jtbd,
        QuestionRole::Problem,
        QuestionRole::ChoiceFactorImportance,
        QuestionRole::Nps,
        QuestionRole::Spend,
        QuestionRole::SourceChannel,
        QuestionRole::TouchpointRating,
        QuestionRole::TouchpointIdea,
        QuestionRole::Barrier,
        QuestionRole::Recommendation,
        QuestionRole::VisitDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QuestionRole::SegmentAttribute => "segment_attribute",
            QuestionRole::Jtbd => "jtbd",
            QuestionRole::Problem => "problem",
            QuestionRole::ChoiceFactorImportance => "choice_factor_importance",
            QuestionRole::Nps => "nps",
            QuestionRole::Spend => "spend",
            QuestionRole::SourceChannel => "source_channel",
            QuestionRole::TouchpointRating => "touchpoint_rating",
            QuestionRole::TouchpointIdea => "touchpoint_idea",
            QuestionRole::Barrier => "barrier",
            QuestionRole::Recommendation => "recommendation",
            QuestionRole::VisitDate => "visit_date",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Which question types may carry this role.
    fn allows(self, t: QuestionType) -> bool {
        use QuestionType as Q;
        match self {
            QuestionRole::SegmentAttribute | QuestionRole::SourceChannel | QuestionRole::Jtbd => {
                t.is_choice()
            }
            QuestionRole::ChoiceFactorImportance | QuestionRole::TouchpointRating => {
                t == Q::Rating1To5
            }
            QuestionRole::Nps => t == Q::Nps0To10,
            QuestionRole::Spend => t == Q::Number,
            QuestionRole::TouchpointIdea => t == Q::Text,
            QuestionRole::VisitDate => t == Q::Date,
            QuestionRole::Problem | QuestionRole::Barrier | QuestionRole::Recommendation => {
                t.is_choice() || t == Q::Text
            }
        }
    }
}

/// A question as a client sends it.
#[derive(
    Debug, Clone, Deserialize, Serialize, PartialEq, utoipa::ToSchema, async_graphql::InputObject,
)]
#[serde(deny_unknown_fields)]
pub struct QuestionInput {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub key: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub qtype: QuestionType,
    #[serde(default)]
    pub role: Option<QuestionRole>,
    #[serde(default)]
    #[graphql(default)]
    pub required: bool,
    #[serde(default)]
    #[graphql(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub choice_factor_id: Option<Uuid>,
    #[serde(default)]
    pub touchpoint_id: Option<Uuid>,
    /// Barrier questions only, optional: the CJM stage (of the client's
    /// touchpoint library) where the barrier bites.
    #[serde(default)]
    pub stage_id: Option<Uuid>,
}

/// A validated question.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct Question {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    #[graphql(name = "type")]
    pub qtype: QuestionType,
    pub role: Option<QuestionRole>,
    pub required: bool,
    pub options: Vec<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub choice_factor_id: Option<Uuid>,
    pub touchpoint_id: Option<Uuid>,
    /// A barrier question's CJM stage, if it names one.
    pub stage_id: Option<Uuid>,
}

pub const MAX_QUESTIONS: usize = 200;
pub const MAX_OPTIONS: usize = 200;
/// Multi-choice answers are analysed as 64-bit masks.
pub const MAX_MULTI_OPTIONS: usize = analytics::panel::MAX_MULTI_OPTIONS;
/// Column names an import may carry besides question keys.
pub const RESERVED_KEYS: [&str; 3] = ["external_id", "submitted_at", "respondent_ref"];

pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && key.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Validates a question list; ids of factors/touchpoints are checked for
/// existence by the caller (they need the database).
pub fn parse_questions(inputs: Vec<QuestionInput>) -> Result<Vec<Question>, Vec<FieldError>> {
    let mut errors = Vec::new();
    if inputs.is_empty() {
        errors.push(FieldError::new(
            "questions",
            "at least one question is needed",
        ));
    }
    if inputs.len() > MAX_QUESTIONS {
        errors.push(FieldError::new(
            "questions",
            format!("at most {MAX_QUESTIONS} questions"),
        ));
        return Err(errors);
    }
    let mut seen = std::collections::HashSet::new();
    let mut nps_count = 0;
    let mut out = Vec::with_capacity(inputs.len());
    for (i, q) in inputs.into_iter().enumerate() {
        let f = |name: &str| format!("questions[{i}].{name}");
        let before = errors.len();
        if !valid_key(&q.key) {
            errors.push(FieldError::new(
                f("key"),
                "must start with a lower-case letter and hold only a-z, 0-9 and _ (64 at most)",
            ));
        } else if RESERVED_KEYS.contains(&q.key.as_str()) {
            errors.push(FieldError::new(f("key"), "is a reserved column name"));
        } else if !seen.insert(q.key.clone()) {
            errors.push(FieldError::new(f("key"), "is used by another question"));
        }
        let label = q.label.clone().unwrap_or_else(|| q.key.clone());
        if label.chars().count() > 1000 {
            errors.push(FieldError::new(
                f("label"),
                "is longer than 1000 characters",
            ));
        }
        if q.qtype.is_choice() {
            if q.options.is_empty() {
                errors.push(FieldError::new(
                    f("options"),
                    "a choice question needs options",
                ));
            } else if q.qtype == QuestionType::MultiChoice && q.options.len() > MAX_MULTI_OPTIONS {
                errors.push(FieldError::new(
                    f("options"),
                    format!("a multi-choice question has at most {MAX_MULTI_OPTIONS} options"),
                ));
            } else if q.options.len() > MAX_OPTIONS {
                errors.push(FieldError::new(
                    f("options"),
                    format!("at most {MAX_OPTIONS} options"),
                ));
            }
            let mut opts = std::collections::HashSet::new();
            for (j, o) in q.options.iter().enumerate() {
                if o.trim().is_empty() || o.trim() != o || o.contains(';') || o.len() > 200 {
                    errors.push(FieldError::new(
                        format!("questions[{i}].options[{j}]"),
                        "must be non-empty, without surrounding spaces or ;, at most 200 bytes",
                    ));
                } else if !opts.insert(o.as_str()) {
                    errors.push(FieldError::new(
                        format!("questions[{i}].options[{j}]"),
                        "duplicate option",
                    ));
                }
            }
        } else if !q.options.is_empty() {
            errors.push(FieldError::new(
                f("options"),
                "only choice questions have options",
            ));
        }
        if q.qtype == QuestionType::Number {
            for (name, v) in [("min", q.min), ("max", q.max)] {
                if v.is_some_and(|v| !v.is_finite()) {
                    errors.push(FieldError::new(f(name), "must be a finite number"));
                }
            }
            if let (Some(lo), Some(hi)) = (q.min, q.max)
                && lo > hi
            {
                errors.push(FieldError::new(f("min"), "must not exceed max"));
            }
        } else if q.min.is_some() || q.max.is_some() {
            errors.push(FieldError::new(
                f("min"),
                "only number questions take min/max (scales are fixed)",
            ));
        }
        if let Some(role) = q.role {
            if !role.allows(q.qtype) {
                errors.push(FieldError::new(
                    f("role"),
                    format!(
                        "role {} does not fit type {}",
                        role.as_str(),
                        q.qtype.as_str()
                    ),
                ));
            }
            if role == QuestionRole::Nps {
                nps_count += 1;
                if nps_count > 1 {
                    errors.push(FieldError::new(f("role"), "only one nps question"));
                }
            }
        }
        let needs_factor = q.role == Some(QuestionRole::ChoiceFactorImportance);
        match (needs_factor, q.choice_factor_id) {
            (true, None) => errors.push(FieldError::new(
                f("choice_factor_id"),
                "a choice_factor_importance question names its choice factor",
            )),
            (false, Some(_)) => errors.push(FieldError::new(
                f("choice_factor_id"),
                "only choice_factor_importance questions name a choice factor",
            )),
            _ => {}
        }
        let needs_tp = matches!(
            q.role,
            Some(QuestionRole::TouchpointRating | QuestionRole::TouchpointIdea)
        );
        match (needs_tp, q.touchpoint_id) {
            (true, None) => errors.push(FieldError::new(
                f("touchpoint_id"),
                "touchpoint questions name their touchpoint",
            )),
            (false, Some(_)) => errors.push(FieldError::new(
                f("touchpoint_id"),
                "only touchpoint questions name a touchpoint",
            )),
            _ => {}
        }
        if q.stage_id.is_some() && q.role != Some(QuestionRole::Barrier) {
            errors.push(FieldError::new(
                f("stage_id"),
                "only barrier questions name a CJM stage",
            ));
        }
        if errors.len() == before {
            out.push(Question {
                key: q.key,
                label,
                qtype: q.qtype,
                role: q.role,
                required: q.required,
                options: q.options,
                min: q.min,
                max: q.max,
                choice_factor_id: q.choice_factor_id,
                touchpoint_id: q.touchpoint_id,
                stage_id: q.stage_id,
            });
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Would responses valid under `old` possibly be invalid under `new`?
/// Such a change creates a new questionnaire version.
pub fn is_breaking_change(old: &[Question], new: &[Question]) -> bool {
    let by_key: std::collections::HashMap<&str, &Question> =
        new.iter().map(|q| (q.key.as_str(), q)).collect();
    for o in old {
        let Some(n) = by_key.get(o.key.as_str()) else {
            return true;
        };
        if n.qtype != o.qtype
            || n.role != o.role
            || n.choice_factor_id != o.choice_factor_id
            || n.touchpoint_id != o.touchpoint_id
            || n.stage_id != o.stage_id
            || (n.required && !o.required)
            || o.options.iter().any(|opt| !n.options.contains(opt))
            || narrower(o.min, n.min, |a, b| b > a)
            || narrower(o.max, n.max, |a, b| b < a)
        {
            return true;
        }
    }
    let old_keys: std::collections::HashSet<&str> = old.iter().map(|q| q.key.as_str()).collect();
    new.iter()
        .any(|q| q.required && !old_keys.contains(q.key.as_str()))
}

fn narrower(old: Option<f64>, new: Option<f64>, tighter: impl Fn(f64, f64) -> bool) -> bool {
    match (old, new) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(a), Some(b)) => tighter(a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(key: &str, t: QuestionType) -> QuestionInput {
        QuestionInput {
            key: key.into(),
            label: None,
            qtype: t,
            role: None,
            required: false,
            options: vec![],
            min: None,
            max: None,
            choice_factor_id: None,
            touchpoint_id: None,
            stage_id: None,
        }
    }

    #[test]
    fn choice_questions_need_options_and_others_refuse_them() {
        let err = parse_questions(vec![q("a", QuestionType::SingleChoice)]).unwrap_err();
        assert_eq!(err[0].field, "questions[0].options");
        let mut t = q("b", QuestionType::Text);
        t.options = vec!["x".into()];
        let err = parse_questions(vec![t]).unwrap_err();
        assert_eq!(err[0].field, "questions[0].options");
    }

    #[test]
    fn duplicate_and_malformed_keys_are_named() {
        let err = parse_questions(vec![
            q("a", QuestionType::Text),
            q("a", QuestionType::Text),
            q("Bad Key", QuestionType::Text),
        ])
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["questions[1].key", "questions[2].key"]);
    }

    #[test]
    fn role_must_fit_type_and_links() {
        let mut r = q("f", QuestionType::Text);
        r.role = Some(QuestionRole::ChoiceFactorImportance);
        let err = parse_questions(vec![r]).unwrap_err();
        let fields: Vec<_> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["questions[0].role", "questions[0].choice_factor_id"]
        );
    }

    #[test]
    fn only_barrier_questions_name_a_stage() {
        let mut b = q("why_not", QuestionType::Text);
        b.role = Some(QuestionRole::Barrier);
        b.stage_id = Some(Uuid::nil());
        assert!(parse_questions(vec![b.clone()]).is_ok());
        b.role = Some(QuestionRole::Problem);
        let err = parse_questions(vec![b]).unwrap_err();
        assert_eq!(err[0].field, "questions[0].stage_id");
    }

    #[test]
    fn removing_an_option_is_breaking_adding_one_is_not() {
        let mut a = q("c", QuestionType::SingleChoice);
        a.options = vec!["x".into(), "y".into()];
        let old = parse_questions(vec![a.clone()]).unwrap();
        a.options.push("z".into());
        let added = parse_questions(vec![a.clone()]).unwrap();
        assert!(!is_breaking_change(&old, &added));
        a.options = vec!["x".into()];
        let removed = parse_questions(vec![a]).unwrap();
        assert!(is_breaking_change(&old, &removed));
    }

    #[test]
    fn a_new_required_question_is_breaking() {
        let old = parse_questions(vec![q("a", QuestionType::Text)]).unwrap();
        let mut b = q("b", QuestionType::Text);
        b.required = true;
        let new = parse_questions(vec![q("a", QuestionType::Text), b]).unwrap();
        assert!(is_breaking_change(&old, &new));
    }
}
