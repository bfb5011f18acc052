//! A client's JTBD labelling rules: one ordered JSON list, validated with
//! errors naming `rules[i].field`, compiled for `analytics::jtbd`.

use analytics::jtbd::{LabelRule, LabelRules};
use chrono::{DateTime, Utc};
use entity::jtbd_rule_set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;
use crate::commerce::purchases::{MAX_CHANNEL, serde_error};
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// The rules as sent to `PUT /clients/{id}/jtbd-rules`: `{"rules": [...]}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JtbdRulesInput {
    pub rules: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdRulesView {
    pub client_id: Uuid,
    /// Ordered; the first matching rule labels a purchase, no match →
    /// `other`. Each: `label`, and optionally `weekdays` (`["Mon", …]`),
    /// `hours` (`{"from": 12, "to": 14}`, inclusive, wraps past midnight),
    /// `items`, `party_size` (`{"min", "max"}`), `amount` (`{"min", "max"}`),
    /// `channels` (`["hall", …]`).
    #[schema(value_type = Vec<Object>)]
    pub rules: serde_json::Value,
    /// Distinct labels in rule order, then `other`.
    pub labels: Vec<String>,
    /// Absent until the rules are first saved.
    pub updated_at: Option<DateTime<Utc>>,
}

const RULE_KEYS: [&str; 7] = [
    "label",
    "weekdays",
    "hours",
    "items",
    "party_size",
    "amount",
    "channels",
];

/// The field of a rule that [`LabelRules::parse`]'s reason speaks of.
fn rule_field(reason: &str) -> &'static str {
    if reason.starts_with("the label") || reason.contains("reserved") {
        "label"
    } else if reason.contains("weekday") {
        "weekdays"
    } else if reason.starts_with("hours") {
        "hours"
    } else if reason.starts_with("items") {
        "items"
    } else if reason.starts_with("party size") {
        "party_size"
    } else if reason.starts_with("amount") {
        "amount"
    } else if reason.contains("channel") {
        "channels"
    } else {
        ""
    }
}

/// Rules as JSON → validated rules, errors naming `rules[i].field`.
pub fn parse_rules(raw: Vec<serde_json::Value>) -> AppResult<LabelRules> {
    if raw.len() > MAX_RULES {
        return Err(AppError::field(
            "rules",
            format!("at most {MAX_RULES} rules"),
        ));
    }
    let mut rules = Vec::with_capacity(raw.len());
    let mut errs = Vec::new();
    for (i, v) in raw.into_iter().enumerate() {
        if let Some(obj) = v.as_object() {
            for k in obj.keys() {
                if !RULE_KEYS.contains(&k.as_str()) {
                    errs.push(FieldError::new(format!("rules[{i}].{k}"), "unknown field"));
                }
            }
        }
        match crate::domain::strict::deserialize::<_, LabelRule>(v) {
            Ok(rule) => {
                let label = rule.label.trim();
                if crate::domain::text::longer_than(&rule.label, MAX_LABEL) {
                    errs.push(FieldError::new(
                        format!("rules[{i}].label"),
                        format!("at most {MAX_LABEL} characters"),
                    ));
                }
                if let Some(cs) = &rule.channels
                    && cs
                        .iter()
                        .any(|c| c.is_empty() || crate::domain::text::longer_than(c, MAX_CHANNEL))
                {
                    errs.push(FieldError::new(
                        format!("rules[{i}].channels"),
                        format!("each channel is 1 to {MAX_CHANNEL} characters"),
                    ));
                }
                rules.push(LabelRule {
                    label: label.to_owned(),
                    ..rule
                });
            }
            Err(e) => {
                let f = serde_error(e, "");
                let field = if f.field.is_empty() {
                    format!("rules[{i}]")
                } else {
                    format!("rules[{i}].{}", f.field)
                };
                errs.push(FieldError::new(field, f.message));
            }
        }
    }
    if !errs.is_empty() {
        return Err(AppError::Validation(errs));
    }
    LabelRules::parse(rules).map_err(|e| {
        let field = match rule_field(&e.reason) {
            "" => format!("rules[{}]", e.index),
            f => format!("rules[{}].{f}", e.index),
        };
        AppError::field(field, e.reason)
    })
}

pub(crate) async fn load_rules<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Option<jtbd_rule_set::Model>> {
    Ok(jtbd_rule_set::Entity::find()
        .filter(jtbd_rule_set::Column::AgencyId.eq(agency_id))
        .filter(jtbd_rule_set::Column::ClientId.eq(client_id))
        .one(db)
        .await?)
}

pub(crate) fn compiled_rules(row: Option<&jtbd_rule_set::Model>) -> AppResult<LabelRules> {
    match row {
        None => Ok(LabelRules::parse(Vec::new())
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("empty rules: {e}")))?),
        Some(r) => {
            let rules: Vec<LabelRule> = serde_json::from_value(r.rules.clone())
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("stored jtbd rules: {e}")))?;
            LabelRules::parse(rules)
                .map_err(|e| AppError::Unexpected(anyhow::anyhow!("stored jtbd rules: {e}")))
        }
    }
}

fn rules_view(client_id: Uuid, row: Option<&jtbd_rule_set::Model>) -> AppResult<JtbdRulesView> {
    let rules = compiled_rules(row)?;
    Ok(JtbdRulesView {
        client_id,
        rules: serde_json::to_value(rules.rules()).map_err(|e| AppError::Unexpected(e.into()))?,
        labels: rules.labels().to_vec(),
        updated_at: row.map(|r| r.updated_at),
    })
}

impl Services {
    pub async fn get_jtbd_rules(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<JtbdRulesView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let row = load_rules(&self.db, ctx.agency_id, client_id).await?;
        rules_view(client_id, row.as_ref())
    }

    /// Replaces the client's rules as a whole (analysts and up).
    pub async fn put_jtbd_rules(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: JtbdRulesInput,
    ) -> AppResult<JtbdRulesView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let rules = parse_rules(input.rules)?;
        let json =
            serde_json::to_value(rules.rules()).map_err(|e| AppError::Unexpected(e.into()))?;
        let t = now();
        let row = jtbd_rule_set::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            rules: Set(json),
            created_at: Set(t),
            updated_at: Set(t),
        };
        let txn = begin_write(&self.db).await?;
        jtbd_rule_set::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    jtbd_rule_set::Column::AgencyId,
                    jtbd_rule_set::Column::ClientId,
                ])
                .update_columns([
                    jtbd_rule_set::Column::Rules,
                    jtbd_rule_set::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        let saved = load_rules(&txn, ctx.agency_id, client_id).await?;
        let put = serde_json::json!({"rules": saved.as_ref().map(|r| r.rules.clone())});
        let a = Audit::new("jtbd_rules", "put", Some(client_id)).with(put);
        audit::commit(txn, ctx, a).await?;
        rules_view(client_id, saved.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_errors_name_the_index_and_field() {
        let fields = |v: serde_json::Value| match parse_rules(serde_json::from_value(v).unwrap()) {
            Err(AppError::Validation(e)) => e.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            fields(json!([{"label": "a"}, {"label": "b", "hours": {"from": 25, "to": 3}}])),
            ["rules[1].hours"]
        );
        assert_eq!(fields(json!([{"label": " "}])), ["rules[0].label"]);
        assert_eq!(
            fields(json!([{"label": "a", "party_size": {"min": 3, "max": 2}}])),
            ["rules[0].party_size"]
        );
        assert_eq!(
            fields(json!([{"label": "a", "weekdays": ["Funday"]}])),
            ["rules[0].weekdays[0]"]
        );
        assert_eq!(
            fields(json!([{"label": "a", "weekday": []}])),
            ["rules[0].weekday"]
        );
    }
}
