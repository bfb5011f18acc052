//! A client's point rules, tier thresholds and λ: read, replaced whole,
//! validated field by field; a change marks the contacts for rescoring.
use analytics::funnel::{RuleCondition, ScoreRule, TierThresholds};
use chrono::{DateTime, Utc};
use entity::scoring_settings;
use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::settings_of;
use crate::domain::nul::has_nul;
use crate::domain::questions::valid_key;
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::ledger::KIND_CONTACTS;
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

pub const MAX_RULES: usize = 100;
pub const MAX_POINTS: f64 = 1e6;
pub const MAX_WITHIN_DAYS: u32 = 3_650;

/// `PUT /clients/{id}/scoring`: replaces the rules (and, when given, the
/// thresholds and λ).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoringInput {
    /// At most 100 rules; a contact's score is the sum of the points of
    /// those it matches.
    pub rules: Vec<ScoreRule>,
    /// Default: hot p ≥ 0.6 / score ≥ 60, warm p ≥ 0.3 / score ≥ 30.
    #[serde(default)]
    pub thresholds: Option<TierThresholds>,
    /// The model's L2 penalty (scikit-learn's 1/C), > 0 and ≤ 1e6; default 1.
    #[serde(default)]
    pub lambda: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoringView {
    pub client_id: Uuid,
    pub rules: Vec<ScoreRule>,
    pub thresholds: TierThresholds,
    pub lambda: f64,
    /// Null while the defaults apply.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Every offending field of a rule set, named `rules[i].…`.
pub fn check_scoring(input: &ScoringInput) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if input.rules.len() > MAX_RULES {
        errs.push(FieldError::new(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    for (i, r) in input.rules.iter().enumerate() {
        let f = |n: &str| format!("rules[{i}].{n}");
        if !crate::domain::text::fits(&r.name, 200) || has_nul(&r.name) {
            errs.push(FieldError::new(f("name"), "must be 1 to 200 characters"));
        }
        if !(r.points.is_finite() && r.points.abs() <= MAX_POINTS) {
            errs.push(FieldError::new(
                f("points"),
                format!("must be from -{MAX_POINTS} to {MAX_POINTS}"),
            ));
        }
        let text_ok = |v: &str| !v.is_empty() && v.chars().count() <= 500 && !has_nul(v);
        match &r.when {
            RuleCondition::AttrEquals { key, value }
            | RuleCondition::AttrContains { key, value } => {
                if !valid_key(key) {
                    errs.push(FieldError::new(f("when.key"), "is not an attribute key"));
                }
                if !text_ok(value) {
                    errs.push(FieldError::new(
                        f("when.value"),
                        "must be 1 to 500 characters",
                    ));
                }
            }
            RuleCondition::AttrWithin { key, min, max } => {
                if !valid_key(key) {
                    errs.push(FieldError::new(f("when.key"), "is not an attribute key"));
                }
                if min.is_none() && max.is_none() {
                    errs.push(FieldError::new(f("when.min"), "give min, max or both"));
                }
                if min.is_some_and(|v| !v.is_finite()) || max.is_some_and(|v| !v.is_finite()) {
                    errs.push(FieldError::new(f("when.min"), "must be finite"));
                } else if let (Some(lo), Some(hi)) = (min, max)
                    && lo > hi
                {
                    errs.push(FieldError::new(f("when.min"), "must not exceed max"));
                }
            }
            RuleCondition::Answer {
                question_key,
                value,
            } => {
                if !valid_key(question_key) {
                    errs.push(FieldError::new(
                        f("when.question_key"),
                        "is not a question key",
                    ));
                }
                if !text_ok(value) {
                    errs.push(FieldError::new(
                        f("when.value"),
                        "must be 1 to 500 characters",
                    ));
                }
            }
            RuleCondition::Event { within_days, .. } | RuleCondition::Purchase { within_days } => {
                if !(1..=MAX_WITHIN_DAYS).contains(within_days) {
                    errs.push(FieldError::new(
                        f("when.within_days"),
                        format!("must be from 1 to {MAX_WITHIN_DAYS}"),
                    ));
                }
            }
        }
    }
    if let Some(t) = &input.thresholds {
        for (name, v) in [
            ("hot_probability", t.hot_probability),
            ("warm_probability", t.warm_probability),
        ] {
            if !(v.is_finite() && (0.0..=1.0).contains(&v)) {
                errs.push(FieldError::new(
                    format!("thresholds.{name}"),
                    "must be from 0 to 1",
                ));
            }
        }
        for (name, v) in [("hot_score", t.hot_score), ("warm_score", t.warm_score)] {
            if !(v.is_finite() && v.abs() <= MAX_POINTS * MAX_RULES as f64) {
                errs.push(FieldError::new(
                    format!("thresholds.{name}"),
                    "must be a finite number",
                ));
            }
        }
        if t.warm_probability > t.hot_probability {
            errs.push(FieldError::new(
                "thresholds.warm_probability",
                "must not exceed hot_probability",
            ));
        }
        if t.warm_score > t.hot_score {
            errs.push(FieldError::new(
                "thresholds.warm_score",
                "must not exceed hot_score",
            ));
        }
    }
    if input
        .lambda
        .is_some_and(|l| !(l.is_finite() && l > 0.0 && l <= 1e6))
    {
        errs.push(FieldError::new("lambda", "must be above 0 and at most 1e6"));
    }
    errs
}

impl Services {
    pub async fn get_scoring(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<ScoringView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let (rules, thresholds, lambda, row) =
            settings_of(&self.db, ctx.agency_id, client_id).await?;
        Ok(ScoringView {
            client_id,
            rules,
            thresholds,
            lambda,
            updated_at: row.map(|r| r.updated_at),
        })
    }

    /// Replaces the client's rules; the worker rescores every contact.
    pub async fn put_scoring(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: ScoringInput,
    ) -> AppResult<ScoringView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let errs = check_scoring(&input);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let thresholds = input.thresholds.unwrap_or_default();
        let lambda = input.lambda.unwrap_or(1.0);
        let rules: Vec<ScoreRule> = input
            .rules
            .into_iter()
            .map(|mut r| {
                r.name = r.name.trim().to_owned();
                r.points += 0.0;
                r
            })
            .collect();
        let t = now();
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let (_, _, _, row) = settings_of(&txn, ctx.agency_id, client_id).await?;
        let rules_json = serde_json::to_value(&rules)
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("rules: {e}")))?;
        let thresholds_json = serde_json::to_value(thresholds)
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("thresholds: {e}")))?;
        match row {
            Some(r) => {
                let mut a = r.into_active_model();
                a.rules = Set(rules_json);
                a.thresholds = Set(thresholds_json);
                a.lambda = Set(lambda);
                a.updated_at = Set(t);
                a.update(&txn).await?;
            }
            None => {
                scoring_settings::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(ctx.agency_id),
                    client_id: Set(client_id),
                    rules: Set(rules_json),
                    thresholds: Set(thresholds_json),
                    lambda: Set(lambda),
                    created_at: Set(t),
                    updated_at: Set(t),
                }
                .insert(&txn)
                .await?;
            }
        }
        let wake = crate::infra::ledger::bump_target(&txn, ctx.agency_id, KIND_CONTACTS, client_id)
            .await?;
        let view = ScoringView {
            client_id,
            rules,
            thresholds,
            lambda,
            updated_at: Some(t),
        };
        let put = Audit::new("scoring", "put", Some(client_id)).set(&view);
        audit::commit(txn, ctx, put).await?;
        if wake {
            self.wake_contacts(ctx.agency_id, client_id).await;
        }
        Ok(view)
    }
}
