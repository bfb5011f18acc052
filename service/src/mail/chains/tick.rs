//! The worker's chain tick: finds the enrolments whose next step is due
//! (one index range over `chain_enrolments (next_at)`, active chains only),
//! and for each, in one transaction: ends it if its contact converted,
//! unsubscribed, bounced or left the segment; skips the step if its
//! condition on the previous email does not hold; or queues the step's
//! email in the delivery ledger (dedupe key `chain:{enrolment}:{step}`) and
//! moves the enrolment to the next step, timed in the client's send window.
//! The move is guarded by the step and time it read, so two workers never
//! handle one step, and the ledger's dedupe key keeps a step from being
//! queued twice whatever happens.
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{chain, chain_enrolment, client, email_delivery, email_event, scored_contact};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait};
use uuid::Uuid;

use super::enrol::{end_enrolment, exit_reason, log};
use super::schedule::in_window;
use super::*;
use crate::domain::segment_filter::SegmentFilter;
use crate::infra::email::links::Purpose;
use crate::infra::email::{Brand, NewDelivery, enqueue_with_ids, render::render};
use crate::mail::tracking::{CLICKED, OPENED, track_html};
use crate::{Services, new_id};

/// Enrolments handled per round of a tick.
pub const TICK_BATCH: u64 = 500;

/// What one chain needs while its steps are sent.
struct ChainCtx {
    chain: chain::Model,
    steps: Vec<ChainStep>,
    segment: Option<SegmentFilter>,
    client: client::Model,
    tz: chrono_tz::Tz,
    brand: Brand,
}

/// The due enrolments of active chains, earliest first.
pub async fn due_enrolments(
    db: &impl sea_orm::ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> AppResult<Vec<chain_enrolment::Model>> {
    use chain_enrolment::Column as E;
    let active = sea_orm::sea_query::Query::select()
        .column(chain::Column::Id)
        .from(chain::Entity)
        .and_where(chain::Column::Status.eq("active"))
        .to_owned();
    Ok(chain_enrolment::Entity::find()
        .filter(E::NextAt.lte(now))
        .filter(E::Status.eq("active"))
        .filter(E::ChainId.in_subquery(active))
        .order_by_asc(E::NextAt)
        .limit(limit)
        .all(db)
        .await?)
}

impl Services {
    /// Worker: handles the chain steps due at `now`, one batch of
    /// [`TICK_BATCH`] per call, so that the caller (`deliver_due`) starts
    /// sending what it queued while another wake-up takes the next batch;
    /// returns how many enrolments it moved on (sent, skipped, completed or
    /// ended).
    pub async fn chain_tick(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let mut chains: HashMap<Uuid, Option<ChainCtx>> = HashMap::new();
        let mut woken = std::collections::HashSet::new();
        let due = due_enrolments(&self.db, now, TICK_BATCH).await?;
        // The batch's contacts in one read (each checked against its
        // enrolment's agency below).
        let ids: Vec<Uuid> = due.iter().map(|e| e.contact_id).collect();
        let contacts: HashMap<Uuid, scored_contact::Model> = scored_contact::Entity::find()
            .filter(scored_contact::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut moved = 0;
        for e in &due {
            if let std::collections::hash_map::Entry::Vacant(v) = chains.entry(e.chain_id) {
                v.insert(self.chain_ctx(e.agency_id, e.chain_id).await?);
            }
            let Some(Some(ctx)) = chains.get(&e.chain_id) else {
                continue;
            };
            let c = contacts
                .get(&e.contact_id)
                .filter(|c| c.agency_id == e.agency_id);
            if self.advance(ctx, e, c, now).await? {
                moved += 1;
                woken.insert(e.agency_id);
            }
        }
        // The queued emails go out, and what is still due (after a full
        // batch) is taken by the next wake-up's tick.
        for agency in woken {
            self.wake_mailer(agency).await;
        }
        Ok(moved)
    }

    async fn chain_ctx(&self, agency_id: Uuid, chain_id: Uuid) -> AppResult<Option<ChainCtx>> {
        let Some(chain) = chain::Entity::find_by_id(chain_id)
            .filter(chain::Column::AgencyId.eq(agency_id))
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let segment = match chain.segment_id {
            Some(id) => {
                match crate::research::segments::segment_filter_of(&self.db, agency_id, id).await {
                    Ok(f) => Some(f),
                    // The segment was deleted: the chain's contacts stay in it.
                    Err(AppError::NotFound) => None,
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        let client =
            crate::platform::clients::find_client(&self.db, agency_id, chain.client_id).await?;
        let agency = entity::agency::Entity::find_by_id(agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(Some(ChainCtx {
            steps: steps_of(&chain),
            tz: crate::commerce::purchases::client_tz(&client),
            chain,
            segment,
            client,
            brand: Brand::of_agency(&agency),
        }))
    }

    /// Moves one due enrolment on; false when another worker already did.
    async fn advance(
        &self,
        ctx: &ChainCtx,
        e: &chain_enrolment::Model,
        c: Option<&scored_contact::Model>,
        now: DateTime<Utc>,
    ) -> AppResult<bool> {
        // Erased: nothing more to send.
        let Some(c) = c else {
            return end_enrolment(&self.db, e, "erased", now).await;
        };
        if let Some(reason) = exit_reason(c, e, ctx.segment.as_ref()) {
            return end_enrolment(&self.db, e, reason, now).await;
        }
        let s = usize::try_from(e.step).unwrap_or(usize::MAX);
        let Some(step) = ctx.steps.get(s) else {
            return self.move_on(e, None, "completed", None, None, now).await;
        };
        let next_at = ctx.steps.get(s + 1).map(|n| {
            in_window(
                now + Duration::minutes(n.delay_minutes),
                ctx.tz,
                (ctx.chain.window_start, ctx.chain.window_end),
            )
        });
        if let Some(cond) = step.condition
            && !self.condition_holds(e, s, cond).await?
        {
            return self.move_on(e, next_at, "skipped", None, None, now).await;
        }
        let (id, delivery) = self.chain_delivery(ctx, e, s, step, c)?;
        self.move_on(
            e,
            next_at,
            "sent",
            Some(delivery.dedupe_key.clone()),
            Some((id, delivery)),
            now,
        )
        .await
    }

    /// In one transaction: the enrolment to its next step (or completed),
    /// the log line, and the step's email if one is sent.
    async fn move_on(
        &self,
        e: &chain_enrolment::Model,
        next_at: Option<DateTime<Utc>>,
        action: &str,
        dedupe_key: Option<String>,
        delivery: Option<(Uuid, NewDelivery)>,
        now: DateTime<Utc>,
    ) -> AppResult<bool> {
        use chain_enrolment::Column as E;
        let txn = self.db.begin().await?;
        let completed = action == "completed" || next_at.is_none();
        let status = if completed { "completed" } else { "active" };
        let step = if action == "completed" {
            e.step
        } else {
            e.step + 1
        };
        let moved = chain_enrolment::Entity::update_many()
            .col_expr(E::Step, step.into())
            .col_expr(E::NextAt, next_at.into())
            .col_expr(E::Status, status.into())
            .col_expr(E::UpdatedAt, now.into())
            .filter(E::AgencyId.eq(e.agency_id))
            .filter(E::Id.eq(e.id))
            .filter(E::Status.eq("active"))
            .filter(E::Step.eq(e.step))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if !moved {
            txn.rollback().await?;
            return Ok(false);
        }
        if let Some(d) = delivery {
            enqueue_with_ids(&txn, vec![d]).await?;
        }
        if action != "completed" {
            log(&txn, e, e.step, action, None, dedupe_key, now).await?;
        }
        if completed {
            log(&txn, e, step, "completed", None, None, now).await?;
        }
        txn.commit().await?;
        Ok(true)
    }

    /// Whether the previous step's email was opened / clicked (a click
    /// counts as an open).
    async fn condition_holds(
        &self,
        e: &chain_enrolment::Model,
        s: usize,
        cond: StepCondition,
    ) -> AppResult<bool> {
        let key = format!("chain:{}:{}", e.id, s.saturating_sub(1));
        let delivery = email_delivery::Entity::find()
            .filter(email_delivery::Column::AgencyId.eq(e.agency_id))
            .filter(email_delivery::Column::DedupeKey.eq(key))
            .one(&self.db)
            .await?;
        let kinds: Vec<String> = match delivery {
            None => Vec::new(),
            Some(d) => {
                email_event::Entity::find()
                    .select_only()
                    .column(email_event::Column::Kind)
                    .filter(email_event::Column::AgencyId.eq(e.agency_id))
                    .filter(email_event::Column::DeliveryId.eq(d.id))
                    .distinct()
                    .into_tuple()
                    .all(&self.db)
                    .await?
            }
        };
        let clicked = kinds.iter().any(|k| k == CLICKED);
        let opened = clicked || kinds.iter().any(|k| k == OPENED);
        Ok(match cond {
            StepCondition::Opened => opened,
            StepCondition::Clicked => clicked,
            StepCondition::NotOpened => !opened,
            StepCondition::NotClicked => !clicked,
        })
    }

    /// The step's email to the contact: personalised, tracked when the
    /// client tracks, with a one-click unsubscribe of the contact.
    fn chain_delivery(
        &self,
        ctx: &ChainCtx,
        e: &chain_enrolment::Model,
        s: usize,
        step: &ChainStep,
        c: &scored_contact::Model,
    ) -> AppResult<(Uuid, NewDelivery)> {
        let id = new_id();
        let env = crate::infra::email::render::env();
        let fail = |err: minijinja::Error| {
            AppError::Unexpected(anyhow::anyhow!("chain {} step {s}: {err:#}", ctx.chain.id))
        };
        let vars = serde_json::json!({
            "contact": {"email": c.email, "name": c.name.clone().unwrap_or_default(), "attributes": c.attributes},
            "client": ctx.client.name,
        });
        let subject = env.render_str(&step.subject, &vars).map_err(fail)?;
        let body_html = env.render_str(&step.html, &vars).map_err(fail)?;
        let body_html = if ctx.client.track_engagement {
            track_html(&self.links, id, &body_html)
        } else {
            body_html
        };
        let body_text = env.render_str(&step.text, &vars).map_err(fail)?;
        let unsubscribe_url = self.links.url(Purpose::ContactUnsubscribe, c.id);
        let locale = c
            .locale
            .clone()
            .unwrap_or_else(|| ctx.client.locale.clone());
        let rendered = render(
            "newsletter",
            &locale,
            &ctx.brand,
            serde_json::json!({
                "list": ctx.client.name,
                "subject": subject,
                "body_html": body_html,
                "body_text": body_text,
                "unsubscribe_url": unsubscribe_url,
            }),
        )?;
        Ok((
            id,
            NewDelivery {
                agency_id: e.agency_id,
                client_id: Some(e.client_id),
                kind: "chain".into(),
                source_id: Some(e.chain_id),
                recipient: c.email.clone(),
                dedupe_key: format!("chain:{}:{s}", e.id),
                rendered: crate::infra::email::Rendered {
                    subject,
                    ..rendered
                },
                headers: vec![
                    ("List-Unsubscribe".into(), format!("<{unsubscribe_url}>")),
                    (
                        "List-Unsubscribe-Post".into(),
                        "List-Unsubscribe=One-Click".into(),
                    ),
                ],
                inline: vec![],
            },
        ))
    }
}
