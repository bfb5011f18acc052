//! The worker's rescoring of a client's contacts: statuses from the
//! subscriptions, conversions from the linked customers' purchases, the
//! model refitted on the labelled contacts, then every contact's score,
//! probability and tier — written as a fresh set of scores when many
//! changed (a model refit changes them all), else only the changed ones in
//! place. Explanations are computed when a contact is read ([`super::explain`]).
use std::collections::{BTreeMap, HashMap};

use analytics::funnel::{AttrValue, FitError, Model, RuleCondition, ScoreRule, Tier, fit};
use chrono::{DateTime, Utc};
use entity::purchase;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::attrs::Attrs;
use super::score::{Row, ScoreCtx, Scored, Stored};
use super::{KIND_MODEL, StoredModel, model_of, settings_of};
use crate::infra::error::{AppError, AppResult};
use crate::infra::ledger::KIND_CONTACTS;
use crate::mail::contacts::link::{link_subscribers, refresh_status};
use crate::mail::contacts::responses::{answers_by_contact, link_responses};
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

/// A rescoring writes a fresh set of scores when more than this share of
/// the client's contacts changed (or it has no set yet), else it updates
/// the changed rows of the current set in place.
const FRESH_SET_SHARE: f64 = 0.25;

/// Contacts scored first, to judge how many scores change.
const SAMPLE: usize = 20_000;

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
        let linked = link_responses(&txn, agency_id, client_id).await?;
        refresh_status(&txn, agency_id, client_id, None).await?;
        txn.commit().await?;
        self.convert_by_purchases(agency_id, client_id).await?;
        let (rules, thresholds, lambda, _) = settings_of(&self.db, agency_id, client_id).await?;
        let set = current_set(&self.db, agency_id, client_id).await?;
        let pg = self.db.get_database_backend() == DbBackend::Postgres;
        let rows = if pg {
            self.scoring_rows_pg(agency_id, client_id, set).await?
        } else {
            self.scoring_rows(agency_id, client_id).await?
        };
        let last_purchase = self.last_purchases(agency_id, client_id, &rows).await?;
        let events = event_times(&self.db, agency_id, client_id, None).await?;
        let keys = answer_keys(&rules);
        let answers = if keys.is_empty() {
            HashMap::new()
        } else {
            answers_by_contact(&self.db, agency_id, client_id, &keys, None).await?
        };
        let read_ms = started.elapsed().as_millis();

        let model = self
            .refit(agency_id, client_id, &rows, lambda, version)
            .await?;
        let fit_ms = started.elapsed().as_millis() - read_ms;
        let t = now();
        let ctx = ScoreCtx {
            rules,
            model,
            thresholds,
            last_purchase,
            events,
            answers,
            now: t,
        };
        // A sample first: when it says most scores change (a refit moves
        // every probability), every contact goes into a fresh set, scored
        // while PostgreSQL stores what is already scored.
        let mut rows = rows;
        let k = rows.len().min(SAMPLE);
        let sample = tokio::task::block_in_place(|| ctx.score(&mut rows[..k]));
        let sample_changed = sample.iter().filter(|s| s.changed).count();
        let fresh = set.is_none() || sample_changed as f64 > FRESH_SET_SHARE * k as f64;
        let mut w = Written {
            agency_id,
            client_id,
            set,
            fresh,
            t,
        };
        let n = rows.len();
        let (changed, score_ms) = if pg && fresh {
            // Scoring and writing overlap: timed together as the write.
            let changed = self
                .write_fresh_pg(&w, std::sync::Arc::new(ctx), sample, rows, k)
                .await?;
            (changed, 0)
        } else {
            let mut scored = sample;
            scored.extend(tokio::task::block_in_place(|| {
                ctx.score_par(&mut rows[k..])
            }));
            drop(rows);
            let changed = scored.iter().filter(|s| s.changed).count();
            // The sample may have misjudged: the whole count decides.
            w.fresh = set.is_none() || changed as f64 > FRESH_SET_SHARE * n as f64;
            let score_ms = started.elapsed().as_millis() - read_ms - fit_ms;
            if pg {
                self.write_scores_pg(&w, scored).await?;
            } else {
                write_scores(&self.db, &w, scored).await?;
            }
            (changed, score_ms)
        };
        let fresh = w.fresh;
        let write_ms = started.elapsed().as_millis() - read_ms - fit_ms - score_ms;
        // Segment membership may have changed: enrol and exit.
        self.enrol_contacts(agency_id, client_id, t).await?;
        let total_ms = started.elapsed().as_millis();
        tracing::info!(%agency_id, %client_id, version, contacts = n, linked, changed, fresh, read_ms,
            fit_ms, score_ms, write_ms, enrol_ms = total_ms - read_ms - fit_ms - score_ms - write_ms,
            "contacts rescored");
        Ok(version)
    }

    /// Contacts linked to a customer with purchases, not yet converted,
    /// become converted at their first purchase, worth its amount: one
    /// statement per backend.
    async fn convert_by_purchases(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<()> {
        // The first purchase (earliest, then smallest id) of each customer.
        const SQL: &str = "UPDATE contacts SET converted = TRUE, \
              converted_at = (SELECT MIN(p.purchased_at) FROM purchases p \
                WHERE p.agency_id = contacts.agency_id AND p.client_id = contacts.client_id \
                  AND p.customer_ref = contacts.customer_ref), \
              conversion_value = (SELECT p.amount FROM purchases p \
                WHERE p.agency_id = contacts.agency_id AND p.client_id = contacts.client_id \
                  AND p.customer_ref = contacts.customer_ref \
                ORDER BY p.purchased_at, p.id LIMIT 1), \
              outcome_source = 'purchase', updated_at = $3 \
            WHERE agency_id = $1 AND client_id = $2 AND customer_ref IS NOT NULL \
              AND (converted IS NULL OR converted = FALSE) \
              AND EXISTS (SELECT 1 FROM purchases p WHERE p.agency_id = contacts.agency_id \
                AND p.client_id = contacts.client_id AND p.customer_ref = contacts.customer_ref)";
        self.db
            .execute_raw(crate::infra::db::stmt(
                &self.db,
                SQL,
                vec![agency_id.into(), client_id.into(), now().into()],
            ))
            .await?;
        Ok(())
    }

    /// The SQLite path: pages of the `scored_contacts` view by id.
    async fn scoring_rows(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<Vec<Row>> {
        use entity::scored_contact::{Column as C, Entity};
        let mut out = Vec::new();
        let mut after: Option<Uuid> = None;
        loop {
            let mut q = Entity::find()
                .filter(C::AgencyId.eq(agency_id))
                .filter(C::ClientId.eq(client_id))
                .order_by_asc(C::Id)
                .limit(10_000);
            if let Some(a) = after {
                q = q.filter(C::Id.gt(a));
            }
            let rows = q.all(&self.db).await?;
            let done = rows.len() < 10_000;
            after = rows.last().map(|r| r.id);
            out.extend(rows.into_iter().map(|m| Row {
                id: m.id,
                attributes: Attrs::Map(attr_values(&m.attributes)),
                converted: m.converted,
                customer_ref: m.customer_ref,
                confirmed_at: m.confirmed_at,
                email: m.email,
                stored: m.scored_at.map(|_| Stored {
                    score: m.score,
                    probability: m.probability,
                    tier: Tier::parse(&m.tier).unwrap_or(Tier::Cold),
                }),
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
        if rows.iter().all(|r| r.customer_ref.is_none()) {
            return Ok(HashMap::new());
        }
        last_purchases_of(&self.db, agency_id, client_id, None).await
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
        let fitted = tokio::task::block_in_place(|| {
            let labelled: Vec<(BTreeMap<String, AttrValue>, bool)> = rows
                .iter()
                .filter_map(|r| r.converted.map(|y| (r.attributes.to_map(), y)))
                .collect();
            let labelled: Vec<(&BTreeMap<String, AttrValue>, bool)> =
                labelled.iter().map(|(a, y)| (a, *y)).collect();
            fit(&labelled, lambda)
        });
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
}

/// The questions the client's `answer` rules ask about.
pub(super) fn answer_keys(rules: &[ScoreRule]) -> Vec<String> {
    let mut keys: Vec<String> = rules
        .iter()
        .filter_map(|r| match &r.when {
            RuleCondition::Answer { question_key, .. } => Some(question_key.clone()),
            _ => None,
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The latest purchase of each customer of the client (`only`: of these
/// customers), by `customer_ref`.
pub(super) async fn last_purchases_of<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    only: Option<&[String]>,
) -> AppResult<HashMap<String, DateTime<Utc>>> {
    let mut q = purchase::Entity::find()
        .select_only()
        .column(purchase::Column::CustomerRef)
        .column_as(purchase::Column::PurchasedAt.max(), "last")
        .filter(purchase::Column::AgencyId.eq(agency_id))
        .filter(purchase::Column::ClientId.eq(client_id));
    if let Some(refs) = only {
        q = q.filter(purchase::Column::CustomerRef.is_in(refs.to_vec()));
    }
    let got: Vec<(String, Option<DateTime<Utc>>)> = q
        .group_by(purchase::Column::CustomerRef)
        .into_tuple()
        .all(db)
        .await?;
    Ok(got.into_iter().filter_map(|(r, t)| Some((r, t?))).collect())
}

/// The latest open and click of every address of the client (`only`: of
/// these addresses).
pub(super) async fn event_times<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    only: Option<&[String]>,
) -> AppResult<HashMap<String, [Option<DateTime<Utc>>; 2]>> {
    Ok(
        crate::mail::tracking::last_events(db, agency_id, client_id, only)
            .await?
            .into_iter()
            .map(|(email, e)| (email, [e.opened, e.clicked]))
            .collect(),
    )
}

/// Where and how a rescoring writes.
pub(super) struct Written {
    pub(super) agency_id: Uuid,
    pub(super) client_id: Uuid,
    /// The client's current set, if it has one.
    pub(super) set: Option<Uuid>,
    /// Write every contact into a fresh set (else the changed ones in place).
    pub(super) fresh: bool,
    pub(super) t: DateTime<Utc>,
}

/// The client's current set of scores.
pub(crate) async fn current_set<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Option<Uuid>> {
    use entity::contact_score_set::{Column as S, Entity};
    Ok(Entity::find()
        .select_only()
        .column(S::SetId)
        .filter(S::AgencyId.eq(agency_id))
        .filter(S::ClientId.eq(client_id))
        .into_tuple::<Uuid>()
        .one(db)
        .await?)
}

/// Makes `set` the client's current set, scored at `t`.
async fn switch_set<C: ConnectionTrait>(db: &C, w: &Written, set: Uuid) -> AppResult<()> {
    use entity::contact_score_set::{ActiveModel, Column as S, Entity};
    use sea_orm::sea_query::OnConflict;
    Entity::insert(ActiveModel {
        id: sea_orm::Set(crate::new_id()),
        agency_id: sea_orm::Set(w.agency_id),
        client_id: sea_orm::Set(w.client_id),
        set_id: sea_orm::Set(set),
        scored_at: sea_orm::Set(w.t),
    })
    .on_conflict(
        OnConflict::columns([S::AgencyId, S::ClientId])
            .update_columns([S::SetId, S::ScoredAt])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// Makes `set` the client's current set (scored at `w.t`) and, when it
/// replaces another, queues the other for the sweeper to purge — in the
/// caller's transaction, so no set is ever orphaned. Deleting a million
/// rows here would hold up every rescoring that writes a fresh set.
pub(super) async fn use_set<C: ConnectionTrait>(db: &C, w: &Written, set: Uuid) -> AppResult<()> {
    use entity::contact_score_purge::{ActiveModel, Entity};
    switch_set(db, w, set).await?;
    if let Some(old) = w.set.filter(|o| *o != set) {
        Entity::insert(ActiveModel {
            id: sea_orm::Set(old),
            agency_id: sea_orm::Set(w.agency_id),
            created_at: sea_orm::Set(w.t),
        })
        .exec_without_returning(db)
        .await?;
    }
    Ok(())
}

impl Services {
    /// Sweeper: deletes the rows of score sets replaced by fresh ones, the
    /// oldest `limit` sets at a time, each with its queue entry in one
    /// transaction; returns how many sets were purged.
    pub async fn purge_score_sets(&self, limit: u64) -> AppResult<usize> {
        use entity::contact_score::{Column as S, Entity as Scores};
        use entity::contact_score_purge::{Column as P, Entity as Purges};
        let queued = Purges::find()
            .order_by_asc(P::CreatedAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        for p in &queued {
            let txn = crate::infra::db::begin_write(&self.db).await?;
            Scores::delete_many()
                .filter(S::SetId.eq(p.id))
                .filter(S::AgencyId.eq(p.agency_id))
                .exec(&txn)
                .await?;
            Purges::delete_by_id(p.id).exec(&txn).await?;
            txn.commit().await?;
        }
        Ok(queued.len())
    }
}

/// The SQLite path of the write: multi-row upserts of 500, in one
/// transaction with the switch of set.
async fn write_scores(
    db: &sea_orm::DatabaseConnection,
    w: &Written,
    scored: Vec<Scored>,
) -> AppResult<()> {
    use entity::contact_score::{ActiveModel, Column as S, Entity};
    use sea_orm::sea_query::OnConflict;
    let set = match (w.fresh, w.set) {
        (false, Some(s)) => s,
        _ => crate::new_id(),
    };
    if !w.fresh && !scored.iter().any(|s| s.changed) {
        return Ok(());
    }
    let txn = crate::infra::db::begin_write(db).await?;
    let rows = scored.into_iter().filter(|s| w.fresh || s.changed);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<ActiveModel> = rows
            .by_ref()
            .take(500)
            .map(|s| ActiveModel {
                set_id: sea_orm::Set(set),
                contact_id: sea_orm::Set(s.id),
                agency_id: sea_orm::Set(w.agency_id),
                score: sea_orm::Set(s.q.score),
                probability: sea_orm::Set(s.q.probability),
                tier: sea_orm::Set(s.q.tier.name().to_owned()),
            })
            .collect();
        Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([S::SetId, S::ContactId])
                    .update_columns([S::Score, S::Probability, S::Tier])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    use_set(&txn, w, set).await?;
    txn.commit().await?;
    Ok(())
}
