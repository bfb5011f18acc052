//! The worker's rescoring of a client's contacts: statuses from the
//! subscriptions, conversions from the linked customers' purchases, the
//! model refitted on the labelled contacts, then every contact's score,
//! probability, tier and explanation — written only where they changed, in
//! set statements of up to 500 rows.
use std::collections::{BTreeMap, HashMap};

use analytics::funnel::{
    AttrValue, ContactFacts, EventKind, FitError, Model, ScoreRule, TierThresholds, fit, qualify,
};
use chrono::{DateTime, Utc};
use entity::{contact, purchase};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};
use uuid::Uuid;

use super::{KIND_MODEL, StoredModel, model_of, settings_of};
use crate::infra::error::{AppError, AppResult};
use crate::infra::ledger::KIND_CONTACTS;
use crate::mail::contacts::Explanation;
use crate::mail::contacts::link::{link_subscribers, refresh_status};
use crate::{Services, now};

/// A contact's attributes as the rules and the model see them: strings,
/// numbers and booleans as they are; a list of strings as its items joined
/// with `;` (a level of its own, and `contains` finds an item).
pub fn attr_values(v: &serde_json::Value) -> BTreeMap<String, AttrValue> {
    let serde_json::Value::Object(m) = v else {
        return BTreeMap::new();
    };
    m.iter()
        .filter_map(|(k, v)| {
            let a = match v {
                serde_json::Value::String(s) => AttrValue::Text(s.clone()),
                serde_json::Value::Number(n) => AttrValue::Number(n.as_f64()?),
                serde_json::Value::Bool(b) => AttrValue::Bool(*b),
                serde_json::Value::Array(items) => AttrValue::Text(
                    items
                        .iter()
                        .filter_map(|i| i.as_str())
                        .collect::<Vec<_>>()
                        .join(";"),
                ),
                _ => return None,
            };
            Some((k.clone(), a))
        })
        .collect()
}

/// What the rescoring reads of one contact.
pub(super) struct Row {
    pub(super) id: Uuid,
    pub(super) attributes: BTreeMap<String, AttrValue>,
    pub(super) converted: Option<bool>,
    pub(super) customer_ref: Option<String>,
    pub(super) confirmed_at: Option<DateTime<Utc>>,
    pub(super) email: String,
    /// score, probability, tier, explanation as stored.
    pub(super) stored: (f64, Option<f64>, String, Option<serde_json::Value>),
}

impl Services {
    /// Worker: rescores one client's contacts; returns the version of the
    /// client's contacts target it reflects.
    pub async fn recompute_client_contacts(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<i64> {
        let version =
            crate::infra::ledger::wanted_version(&self.db, agency_id, KIND_CONTACTS, client_id)
                .await?;
        let started = std::time::Instant::now();
        let txn = crate::infra::db::begin_write(&self.db).await?;
        link_subscribers(&txn, agency_id, client_id).await?;
        refresh_status(&txn, agency_id, client_id, None).await?;
        txn.commit().await?;
        self.convert_by_purchases(agency_id, client_id).await?;
        let (rules, thresholds, lambda, _) = settings_of(&self.db, agency_id, client_id).await?;
        let rows = if self.db.get_database_backend() == DbBackend::Postgres {
            self.scoring_rows_pg(agency_id, client_id).await?
        } else {
            self.scoring_rows(agency_id, client_id).await?
        };
        let last_purchase = self.last_purchases(agency_id, client_id, &rows).await?;
        let events = self.event_times(agency_id, client_id).await?;
        let read_ms = started.elapsed().as_millis();

        let model = self
            .refit(agency_id, client_id, &rows, lambda, version)
            .await?;
        let fit_ms = started.elapsed().as_millis() - read_ms;
        let t = now();
        let changed = tokio::task::block_in_place(|| {
            score_rows(
                &rules,
                model.as_ref(),
                &thresholds,
                rows,
                &last_purchase,
                &events,
                t,
            )
        });
        let n = changed.len();
        let score_ms = started.elapsed().as_millis() - read_ms - fit_ms;
        if self.db.get_database_backend() == DbBackend::Postgres {
            self.write_scores_pg(agency_id, changed, t).await?;
        } else {
            self.write_scores(agency_id, changed, t).await?;
        }
        // Segment membership may have changed: enrol and exit.
        self.enrol_contacts(agency_id, client_id, t).await?;
        let total_ms = started.elapsed().as_millis();
        tracing::info!(%agency_id, %client_id, version, rescored = n, read_ms, fit_ms, score_ms,
            write_ms = total_ms - read_ms - fit_ms - score_ms, "contacts rescored");
        Ok(version)
    }

    /// Contacts linked to a customer with purchases, not yet converted,
    /// become converted at their first purchase, worth its amount.
    async fn convert_by_purchases(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<()> {
        let open: Vec<(Uuid, String)> = contact::Entity::find()
            .select_only()
            .column(contact::Column::Id)
            .column(contact::Column::CustomerRef)
            .filter(contact::Column::AgencyId.eq(agency_id))
            .filter(contact::Column::ClientId.eq(client_id))
            .filter(contact::Column::CustomerRef.is_not_null())
            .filter(
                sea_orm::Condition::any()
                    .add(contact::Column::Converted.is_null())
                    .add(contact::Column::Converted.eq(false)),
            )
            .into_tuple::<(Uuid, Option<String>)>()
            .all(&self.db)
            .await?
            .into_iter()
            .filter_map(|(id, r)| Some((id, r?)))
            .collect();
        for chunk in open.chunks(500) {
            let refs: Vec<String> = chunk.iter().map(|(_, r)| r.clone()).collect();
            let mut first: HashMap<String, (DateTime<Utc>, f64)> = HashMap::new();
            for p in purchase::Entity::find()
                .filter(purchase::Column::AgencyId.eq(agency_id))
                .filter(purchase::Column::ClientId.eq(client_id))
                .filter(purchase::Column::CustomerRef.is_in(refs))
                .order_by_asc(purchase::Column::PurchasedAt)
                .all(&self.db)
                .await?
            {
                first
                    .entry(p.customer_ref)
                    .or_insert((p.purchased_at, p.amount));
            }
            for (id, r) in chunk {
                let Some((at, amount)) = first.get(r) else {
                    continue;
                };
                contact::Entity::update_many()
                    .col_expr(contact::Column::Converted, true.into())
                    .col_expr(contact::Column::ConvertedAt, (*at).into())
                    .col_expr(contact::Column::ConversionValue, (*amount).into())
                    .col_expr(contact::Column::OutcomeSource, "purchase".into())
                    .col_expr(contact::Column::UpdatedAt, now().into())
                    .filter(contact::Column::AgencyId.eq(agency_id))
                    .filter(contact::Column::Id.eq(*id))
                    .exec(&self.db)
                    .await?;
            }
        }
        Ok(())
    }

    async fn scoring_rows(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<Vec<Row>> {
        let mut out = Vec::new();
        let mut after: Option<Uuid> = None;
        loop {
            let mut q = contact::Entity::find()
                .filter(contact::Column::AgencyId.eq(agency_id))
                .filter(contact::Column::ClientId.eq(client_id))
                .order_by_asc(contact::Column::Id)
                .limit(10_000);
            if let Some(a) = after {
                q = q.filter(contact::Column::Id.gt(a));
            }
            let rows = q.all(&self.db).await?;
            let done = rows.len() < 10_000;
            after = rows.last().map(|r| r.id);
            out.extend(rows.into_iter().map(|m| Row {
                id: m.id,
                attributes: attr_values(&m.attributes),
                converted: m.converted,
                customer_ref: m.customer_ref,
                confirmed_at: m.confirmed_at,
                email: m.email,
                stored: (m.score, m.probability, m.tier, m.explanation),
            }));
            if done {
                return Ok(out);
            }
        }
    }

    /// The latest purchase of each linked customer.
    async fn last_purchases(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        rows: &[Row],
    ) -> AppResult<HashMap<String, DateTime<Utc>>> {
        let refs: Vec<String> = rows.iter().filter_map(|r| r.customer_ref.clone()).collect();
        let mut out = HashMap::new();
        for chunk in refs.chunks(500) {
            let got: Vec<(String, Option<DateTime<Utc>>)> = purchase::Entity::find()
                .select_only()
                .column(purchase::Column::CustomerRef)
                .column_as(purchase::Column::PurchasedAt.max(), "last")
                .filter(purchase::Column::AgencyId.eq(agency_id))
                .filter(purchase::Column::ClientId.eq(client_id))
                .filter(purchase::Column::CustomerRef.is_in(chunk.to_vec()))
                .group_by(purchase::Column::CustomerRef)
                .into_tuple()
                .all(&self.db)
                .await?;
            out.extend(got.into_iter().filter_map(|(r, t)| Some((r, t?))));
        }
        Ok(out)
    }

    /// Fits the model when the labelled contacts allow it, and stores it
    /// (or why there is none) as the client's model snapshot.
    async fn refit(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        rows: &[Row],
        lambda: f64,
        version: i64,
    ) -> AppResult<Option<Model>> {
        let labelled: Vec<(&BTreeMap<String, AttrValue>, bool)> = rows
            .iter()
            .filter_map(|r| Some((&r.attributes, r.converted?)))
            .collect();
        let fitted = tokio::task::block_in_place(|| fit(&labelled, lambda));
        let (payload, model) = match fitted {
            Ok(m) => {
                let stored = StoredModel {
                    fitted_at: now(),
                    model: m,
                };
                let v = serde_json::to_value(&stored)
                    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("model: {e}")))?;
                (v, Some(stored.model))
            }
            Err(e @ (FitError::TooFew { .. } | FitError::OneOutcome { .. })) => {
                (serde_json::json!({ "reason": e.to_string() }), None)
            }
            Err(e @ FitError::NoConvergence { .. }) => {
                // Keep scoring with the model fitted before, if any.
                tracing::warn!(%agency_id, %client_id, error = %e, "contact model not refitted");
                return Ok(model_of(&self.db, agency_id, client_id)
                    .await?
                    .map(|(s, _)| s.model));
            }
        };
        crate::infra::ledger::store_snapshot(
            &self.db, agency_id, KIND_MODEL, client_id, version, payload,
        )
        .await?;
        Ok(model)
    }

    /// The latest open and click of every address of the client.
    async fn event_times(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<HashMap<String, [Option<DateTime<Utc>>; 2]>> {
        Ok(
            crate::mail::tracking::last_events(&self.db, agency_id, client_id)
                .await?
                .into_iter()
                .map(|(email, e)| (email, [e.opened, e.clicked]))
                .collect(),
        )
    }

    /// Writes new scores in set statements of 500 rows.
    async fn write_scores(
        &self,
        agency_id: Uuid,
        changed: Vec<Scored>,
        t: DateTime<Utc>,
    ) -> AppResult<()> {
        let backend = self.db.get_database_backend();
        for chunk in changed.chunks(500) {
            let mut sql =
                String::from("WITH v(id, score, probability, tier, explanation) AS (VALUES ");
            let mut values: Vec<sea_orm::Value> = Vec::with_capacity(chunk.len() * 5 + 2);
            for (i, s) in chunk.iter().enumerate() {
                let b = i * 5;
                if i > 0 {
                    sql.push_str(", ");
                }
                if backend == DbBackend::Postgres {
                    sql.push_str(&format!(
                        "(${}::uuid, ${}::float8, ${}::float8, ${}::text, ${}::jsonb)",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    ));
                } else {
                    sql.push_str(&format!(
                        "(?{}, ?{}, ?{}, ?{}, ?{})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5
                    ));
                }
                values.push(s.id.into());
                values.push(s.score.into());
                values.push(s.probability.into());
                values.push(s.tier.clone().into());
                values.push(s.explanation.clone().into());
            }
            let n = chunk.len() * 5;
            let (pa, pt) = if backend == DbBackend::Postgres {
                (format!("${}", n + 1), format!("${}", n + 2))
            } else {
                (format!("?{}", n + 1), format!("?{}", n + 2))
            };
            sql.push_str(&format!(
                ") UPDATE contacts SET score = v.score, probability = v.probability, \
                 tier = v.tier, explanation = v.explanation, scored_at = {pt} \
                 FROM v WHERE contacts.id = v.id AND contacts.agency_id = {pa}"
            ));
            values.push(agency_id.into());
            values.push(t.into());
            self.db
                .execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
        }
        Ok(())
    }
}

/// A contact whose qualification changed.
pub(crate) struct Scored {
    pub(super) id: Uuid,
    pub(super) score: f64,
    pub(super) probability: Option<f64>,
    pub(super) tier: String,
    pub(super) explanation: serde_json::Value,
}

/// Qualifies every row; returns those whose stored qualification differs
/// (and every row never scored).
fn score_rows(
    rules: &[ScoreRule],
    model: Option<&Model>,
    thresholds: &TierThresholds,
    rows: Vec<Row>,
    last_purchase: &HashMap<String, DateTime<Utc>>,
    events: &HashMap<String, [Option<DateTime<Utc>>; 2]>,
    now: DateTime<Utc>,
) -> Vec<Scored> {
    let mut out = Vec::new();
    for r in rows {
        let ev = events.get(&r.email).copied().unwrap_or_default();
        let mut last_event = [None; 3];
        last_event[EventKind::Confirmed.index()] = r.confirmed_at;
        last_event[EventKind::Opened.index()] = ev[0];
        last_event[EventKind::Clicked.index()] = ev[1];
        let facts = ContactFacts {
            attributes: r.attributes,
            answers: Vec::new(),
            last_event,
            last_purchase: r
                .customer_ref
                .as_ref()
                .and_then(|c| last_purchase.get(c).copied()),
        };
        let q = qualify(rules, model, thresholds, &facts, now);
        let explanation = serde_json::to_value(Explanation {
            rules: q.rules,
            features: q.features,
        })
        .unwrap_or_default();
        let tier = q.tier.name().to_owned();
        let (score, probability, stored_tier, stored_expl) = &r.stored;
        let same = *score == q.score
            && *probability == q.probability
            && *stored_tier == tier
            && stored_expl
                .as_ref()
                .is_some_and(|e| same_json(e, &explanation));
        if !same {
            if out.is_empty() {
                tracing::debug!(contact = %r.id, stored = ?r.stored, score = q.score,
                    probability = ?q.probability, %tier, %explanation, "first changed qualification");
            }
            out.push(Scored {
                id: r.id,
                score: q.score,
                probability: q.probability,
                tier,
                explanation,
            });
        }
    }
    out
}

/// JSON equal but for numbers a rounding apart: a stored explanation comes
/// back through a float parser that may miss the last bit.
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            _ => x == y,
        },
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn explanations_a_rounding_apart_are_the_same() {
        let a = json!({"features": [{"feature": "n9", "contribution": 0.06050310299123221}], "rules": [{"rule": "x", "points": 10.0}]});
        let b = json!({"rules": [{"rule": "x", "points": 10.0}], "features": [{"feature": "n9", "contribution": 0.060503102991232204}]});
        assert!(super::same_json(&a, &b));
        let c = json!({"rules": [{"rule": "x", "points": 10.0}], "features": [{"feature": "n9", "contribution": 0.0605031}]});
        assert!(!super::same_json(&a, &c));
        let d = json!({"rules": [], "features": [{"feature": "n9", "contribution": 0.06050310299123221}]});
        assert!(!super::same_json(&a, &d));
    }
}
