//! Retention: the audit log and the webhook delivery log are kept for a
//! configured number of days (`ServiceConfig::audit_retention_days`,
//! `webhook_retention_days`; 0 keeps them for ever), then deleted by the
//! worker's sweeper in batches, at most once an hour per process.
//!
//! Their ids are UUID v7, so "older than the cutoff" is "id below the
//! smallest v7 id of the cutoff's millisecond": the primary key serves the
//! search (the audit log's, `(agency_id, id)`, one agency at a time), no
//! time index is needed. A delivery still waiting (pending or
//! retrying) is never deleted, nor an event one of them still needs.
use chrono::{DateTime, Duration, Utc};
use entity::{agency, audit_log, webhook_delivery as wd, webhook_event};
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::Services;
use crate::infra::error::AppResult;

/// Rows deleted per statement: short transactions, whatever the backlog.
const BATCH: u64 = 5_000;
/// Statements per table (the audit log: per agency) per sweep; the rest
/// waits for the next hour.
const MAX_BATCHES: usize = 20;

/// What one purge deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    pub audit_rows: u64,
    pub webhook_deliveries: u64,
    pub webhook_events: u64,
}

/// The smallest UUID v7 of `at`'s millisecond: every v7 id made before
/// `at` sorts below it.
pub fn v7_floor(at: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = 0x70; // version 7
    bytes[8] = 0x80; // RFC 4122 variant
    Uuid::from_bytes(bytes)
}

impl Services {
    /// Deletes what is past its retention at `now`.
    pub async fn purge_expired(&self, now: DateTime<Utc>) -> AppResult<Purged> {
        let mut out = Purged::default();
        let days = self.config.audit_retention_days;
        if days > 0 {
            let floor = v7_floor(now - Duration::days(days));
            // Per agency: the log's key is (agency_id, id) on PostgreSQL,
            // so each agency's old rows are one range of it.
            let agencies: Vec<Uuid> = agency::Entity::find()
                .select_only()
                .column(agency::Column::Id)
                .into_tuple()
                .all(&self.db)
                .await?;
            for agency_id in agencies {
                out.audit_rows += batched(|| async {
                    let ids = Query::select()
                        .column(audit_log::Column::Id)
                        .from(audit_log::Entity)
                        .and_where(audit_log::Column::AgencyId.eq(agency_id))
                        .and_where(audit_log::Column::Id.lt(floor))
                        .limit(BATCH)
                        .to_owned();
                    let r = audit_log::Entity::delete_many()
                        .filter(audit_log::Column::AgencyId.eq(agency_id))
                        .filter(audit_log::Column::Id.in_subquery(ids))
                        .exec(&self.db)
                        .await?;
                    Ok(r.rows_affected)
                })
                .await?;
            }
        }
        let days = self.config.webhook_retention_days;
        if days > 0 {
            let cutoff = now - Duration::days(days);
            let floor = v7_floor(cutoff);
            out.webhook_deliveries = batched(|| async {
                let ids = Query::select()
                    .column(wd::Column::Id)
                    .from(wd::Entity)
                    .and_where(wd::Column::Id.lt(floor))
                    .and_where(wd::Column::Status.is_in(["delivered", "failed"]))
                    .limit(BATCH)
                    .to_owned();
                let r = wd::Entity::delete_many()
                    .filter(wd::Column::Id.in_subquery(ids))
                    .exec(&self.db)
                    .await?;
                Ok(r.rows_affected)
            })
            .await?;
            // An event outlives its deliveries by the retry horizon: a
            // delivery re-sent by hand may still need its payload.
            let horizon = Duration::milliseconds(self.config.webhook_retry_horizon_ms);
            let floor = v7_floor(cutoff - horizon);
            out.webhook_events = batched(|| async {
                let waiting = Query::select()
                    .column(wd::Column::EventId)
                    .from(wd::Entity)
                    .and_where(wd::Column::Status.is_in(["pending", "retrying"]))
                    .to_owned();
                let ids = Query::select()
                    .column(webhook_event::Column::Id)
                    .from(webhook_event::Entity)
                    .and_where(webhook_event::Column::Id.lt(floor))
                    .and_where(webhook_event::Column::Id.not_in_subquery(waiting))
                    .limit(BATCH)
                    .to_owned();
                let r = webhook_event::Entity::delete_many()
                    .filter(webhook_event::Column::Id.in_subquery(ids))
                    .exec(&self.db)
                    .await?;
                Ok(r.rows_affected)
            })
            .await?;
        }
        if out != Purged::default() {
            tracing::info!(
                audit_rows = out.audit_rows,
                webhook_deliveries = out.webhook_deliveries,
                webhook_events = out.webhook_events,
                "purged rows past their retention"
            );
        }
        Ok(out)
    }
}

/// Runs `step` until it deletes less than a batch (or [`MAX_BATCHES`]
/// times); the total it deleted.
async fn batched<F, Fut>(step: F) -> AppResult<u64>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sea_orm::DbErr>>,
{
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let n = step().await?;
        total += n;
        if n < BATCH {
            break;
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::v7_floor;
    use chrono::{Duration, Utc};
    use uuid::Uuid;

    #[test]
    fn ids_made_before_a_time_sort_below_its_floor_and_later_ones_above() {
        let now = Utc::now();
        let before = Uuid::now_v7();
        let floor = v7_floor(now + Duration::milliseconds(5));
        assert!(before < floor);
        assert!(v7_floor(now - Duration::days(1)) < before);
        assert_eq!(floor.get_version_num(), 7);
        // As text too (SQLite keeps uuids as hyphenated hex).
        assert!(before.to_string() < floor.to_string());
    }
}
