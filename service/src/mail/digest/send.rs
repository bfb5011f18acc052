//! Sending digests: on schedule (the worker's tick) and on demand.

use anyhow::Context;
use chrono::{DateTime, Utc};
use entity::{client, digest_run};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::infra::email::{NewDelivery, enqueue};
use crate::infra::error::{AppError, AppResult};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

use super::*;

/// Clients one tick takes at most; the rest are due at the next tick.
const DUE_BATCH: u64 = 500;

/// A scheduled send: the client's stored next slot as read (`from`, so
/// that a schedule changed meanwhile is not overwritten) and the slot
/// after the one sent.
#[derive(Debug, Clone, Copy)]
struct Advance {
    from: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
}

/// Moves a client's next slot on, unless it changed since it was read.
async fn advance<C: ConnectionTrait>(db: &C, c: &client::Model, a: Advance) -> AppResult<()> {
    client::Entity::update_many()
        .col_expr(client::Column::NextDigestAt, Expr::value(a.next))
        .filter(client::Column::AgencyId.eq(c.agency_id))
        .filter(client::Column::Id.eq(c.id))
        .filter(client::Column::NextDigestAt.eq(a.from))
        .exec(db)
        .await?;
    Ok(())
}

impl Services {
    /// Records the digest of a slot and queues it to every report
    /// recipient, once per (client, slot): a second call for the same slot
    /// does nothing. A scheduled send (`schedule`) also moves the client's
    /// next slot on — in the same transaction when it sends, else on its
    /// own. Returns how many emails were queued.
    async fn send_digest(
        &self,
        c: &client::Model,
        slot: DateTime<Utc>,
        schedule: Option<Advance>,
        by: Option<&RequestCtx>,
    ) -> AppResult<u64> {
        let skip = |why: &'static str| async move {
            if let Some(a) = schedule {
                tracing::debug!(client_id = %c.id, %slot, why, "digest slot passed over");
                advance(&self.db, c, a).await?;
            }
            Ok(0)
        };
        let recipients: Vec<String> =
            serde_json::from_value(c.report_recipients.clone()).unwrap_or_default();
        if recipients.is_empty() {
            return skip("no recipients").await;
        }
        if schedule.is_some()
            && digest_run::Entity::find()
                .filter(digest_run::Column::AgencyId.eq(c.agency_id))
                .filter(digest_run::Column::ClientId.eq(c.id))
                .filter(digest_run::Column::ScheduledFor.eq(slot))
                .one(&self.db)
                .await?
                .is_some()
        {
            return skip("already sent").await;
        }
        let built = self.build_digest(c, slot).await?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let recorded = digest_run::Entity::insert(digest_run::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(c.agency_id),
            client_id: Set(c.id),
            scheduled_for: Set(slot),
            trigger: Set(if schedule.is_some() {
                "scheduled"
            } else {
                "manual"
            }
            .into()),
            figures: Set(serde_json::to_value(&built.figures).map_err(anyhow::Error::from)?),
            created_at: Set(now()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                digest_run::Column::AgencyId,
                digest_run::Column::ClientId,
                digest_run::Column::ScheduledFor,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await;
        match recorded {
            Ok(1) => {}
            // Another worker took this slot.
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {
                txn.rollback().await?;
                return skip("taken by another worker").await;
            }
            Err(e) => return Err(e.into()),
        }
        let key = slot.timestamp_millis();
        let n = enqueue(
            &txn,
            recipients
                .into_iter()
                .map(|r| NewDelivery {
                    agency_id: c.agency_id,
                    client_id: Some(c.id),
                    kind: "digest".into(),
                    source_id: Some(c.id),
                    dedupe_key: format!("digest:{}:{key}:{r}", c.id),
                    recipient: r,
                    rendered: built.rendered.clone(),
                    headers: vec![],
                    inline: built.inline.clone(),
                })
                .collect(),
        )
        .await?;
        if let Some(a) = schedule {
            advance(&txn, c, a).await?;
        }
        // A scheduled send is the system's; "send now" is the caller's.
        if let Some(ctx) = by {
            let sent = serde_json::json!({"queued": n, "slot": slot});
            let a = crate::infra::audit::Audit::new("digest", "send", Some(c.id)).with(sent);
            crate::infra::audit::record(&txn, ctx, a).await?;
        }
        txn.commit().await?;
        self.wake_mailer(c.agency_id).await;
        Ok(n)
    }

    /// The clients whose next digest slot has come by `now`, earliest first
    /// (at most [`DUE_BATCH`]): one query, on `next_digest_at`.
    pub async fn due_digest_clients(&self, now: DateTime<Utc>) -> AppResult<Vec<client::Model>> {
        Ok(client::Entity::find()
            .filter(client::Column::NextDigestAt.lte(now))
            .filter(client::Column::ArchivedAt.is_null())
            .order_by_asc(client::Column::NextDigestAt)
            .order_by_asc(client::Column::Id)
            .limit(DUE_BATCH)
            .all(&self.db)
            .await?)
    }

    /// Worker: sends every digest whose slot has come by `now` (the latest
    /// slot only, if several were missed). Returns how many clients got one.
    /// A client whose digest fails is logged and tried again next tick; the
    /// others go on.
    pub async fn run_due_digests(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let mut sent = 0;
        for c in self
            .due_digest_clients(now)
            .await
            .context("while looking for due digests")?
        {
            match self.run_scheduled_digest(&c, now).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    agency_id = %c.agency_id, client_id = %c.id, error = %format!("{e:#}"),
                    "scheduled digest failed; tried again next tick"
                ),
            }
        }
        Ok(sent)
    }

    /// One due client: the latest slot from its stored one up to `now`.
    async fn run_scheduled_digest(&self, c: &client::Model, now: DateTime<Utc>) -> AppResult<bool> {
        let Some(from) = c.next_digest_at else {
            return Ok(false);
        };
        let tz = tz_of(c);
        let schedule = DigestSchedule::of(c);
        let Some(slot) = latest_slot_from(schedule, tz, from, now) else {
            // A lower bound (a row older than the column) whose slot is ahead.
            let next = first_slot_from(schedule, tz, from);
            advance(&self.db, c, Advance { from, next }).await?;
            return Ok(false);
        };
        let next = next_slot_after(schedule, tz, slot);
        let queued = self
            .send_digest(c, slot, Some(Advance { from, next }), None)
            .await
            .with_context(|| format!("while sending the digest of client {} for {slot}", c.id))?;
        Ok(queued > 0)
    }

    /// "Send now" (admins): the digest as of now, to the report recipients.
    pub async fn send_digest_now(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<u64> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Admin)?;
        let recipients: Vec<String> =
            serde_json::from_value(c.report_recipients.clone()).unwrap_or_default();
        if recipients.is_empty() {
            return Err(AppError::Conflict(
                "the client has no report recipients".into(),
            ));
        }
        self.send_digest(&c, now(), None, Some(ctx)).await
    }
}
