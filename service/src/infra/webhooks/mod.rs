//! Signed outbound webhooks, the ledger side: what happened is written as a
//! `webhook_events` row and fanned out to one `webhook_deliveries` row per
//! enabled endpoint of the agency that subscribed to its type — in the
//! caller's transaction where the fact is written (outbox), so an event is
//! neither lost nor recorded twice by a retried job. Workers claim due
//! deliveries under a renewed lease, POST them signed per Standard Webhooks
//! ([`sign`]) to public addresses only ([`ssrf`]), and record the outcome
//! ([`deliver`]). At least once: a worker killed mid-request sends again,
//! with the same `webhook-id`, which receivers dedupe on.
//!
//! Every area that emits (research, commerce, mail, jobs) uses this
//! module; endpoint management is `platform::webhooks`.
pub mod deliver;
pub mod sign;
pub mod ssrf;

use chrono::SecondsFormat;
use entity::{webhook_delivery, webhook_endpoint, webhook_event};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::infra::error::AppResult;
use crate::{Services, new_id, now};

/// The queue kind that wakes a worker to deliver due webhooks.
pub const KIND_WAKE: &str = "webhooks";

pub const IMPORT_FINISHED: &str = "import.finished";
pub const SUMMARY_UPDATED: &str = "questionnaire.summary_updated";
pub const VERDICT_CHANGED: &str = "hypothesis.verdict_changed";
pub const UX_FLAG_RAISED: &str = "ux.flag_raised";
pub const UX_FLAG_CLEARED: &str = "ux.flag_cleared";
pub const CAMPAIGN_FINISHED: &str = "campaign.finished";
pub const EMAIL_BOUNCED: &str = "email.bounced";
pub const JOB_FAILED: &str = "job.failed";
/// Sent to one endpoint on request; nobody subscribes to it.
pub const PING: &str = "webhook.ping";

/// The event types an endpoint may subscribe to, with what they mean.
pub const EVENT_TYPES: &[(&str, &str)] = &[
    (
        IMPORT_FINISHED,
        "An import was stored (responses, purchases, contacts, subscribers or channel figures): kind, client, rows accepted",
    ),
    (
        SUMMARY_UPDATED,
        "A questionnaire's summary and panel were recomputed for new data",
    ),
    (
        VERDICT_CHANGED,
        "A hypothesis's verdict changed (old and new verdict)",
    ),
    (UX_FLAG_RAISED, "A negative UX-map flag was raised"),
    (
        UX_FLAG_CLEARED,
        "A UX-map flag is no longer shown and was cleared",
    ),
    (
        CAMPAIGN_FINISHED,
        "A newsletter campaign has no copy left to send",
    ),
    (
        EMAIL_BOUNCED,
        "An email to a client's audience was refused for good",
    ),
    (JOB_FAILED, "A background recompute gave up"),
];

pub fn is_event_type(s: &str) -> bool {
    EVENT_TYPES.iter().any(|(t, _)| *t == s)
}

/// The binding of an endpoint's sealed secrets (agency and endpoint).
pub fn secret_binding(agency_id: Uuid, endpoint_id: Uuid) -> Vec<u8> {
    format!("webhook:{agency_id}:{endpoint_id}").into_bytes()
}

fn subscribed(e: &webhook_endpoint::Model, event_type: &str) -> bool {
    match &e.event_types {
        None => true,
        Some(Value::Array(types)) => types.iter().any(|t| t.as_str() == Some(event_type)),
        Some(_) => false,
    }
}

/// Writes the event and one delivery per matching enabled endpoint, in the
/// caller's transaction; an agency with no such endpoint writes nothing.
/// Returns the number of deliveries (wake the worker after commit when
/// non-zero: [`Services::wake_webhooks`]).
pub async fn emit<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    event_type: &str,
    data: Value,
) -> AppResult<u64> {
    let endpoints: Vec<Uuid> = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::AgencyId.eq(agency_id))
        .filter(webhook_endpoint::Column::Enabled.eq(true))
        .all(db)
        .await?
        .into_iter()
        .filter(|e| subscribed(e, event_type))
        .map(|e| e.id)
        .collect();
    emit_to(db, agency_id, &endpoints, event_type, data)
        .await
        .map(|(_, n)| n)
}

/// Writes the event and a delivery to each of `endpoints` (the caller has
/// chosen them: a ping goes to one endpoint whatever it subscribed to).
/// Returns the event id and how many deliveries were written.
pub async fn emit_to<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    endpoints: &[Uuid],
    event_type: &str,
    data: Value,
) -> AppResult<(Uuid, u64)> {
    let id = new_id();
    if endpoints.is_empty() {
        return Ok((id, 0));
    }
    let t = now();
    webhook_event::Entity::insert(webhook_event::ActiveModel {
        id: Set(id),
        agency_id: Set(agency_id),
        event_type: Set(event_type.to_owned()),
        payload: Set(json!({
            "type": event_type,
            "timestamp": t.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        })),
        created_at: Set(t),
    })
    .exec_without_returning(db)
    .await?;
    let rows = endpoints.iter().map(|e| webhook_delivery::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(agency_id),
        endpoint_id: Set(*e),
        event_id: Set(id),
        event_type: Set(event_type.to_owned()),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_ms: Set(0),
        lease_owner: Set(None),
        lease_until_ms: Set(0),
        last_status_code: Set(None),
        last_error: Set(None),
        last_duration_ms: Set(None),
        created_at: Set(t),
        delivered_at: Set(None),
        updated_at: Set(t),
    });
    webhook_delivery::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok((id, endpoints.len() as u64))
}

impl Services {
    /// Asks a worker to deliver what is due (after the event committed; a
    /// lost call only waits for the next sweep).
    pub async fn wake_webhooks(&self, agency_id: Uuid) {
        self.enqueue_recompute(crate::infra::queue::RecomputeJob {
            agency_id,
            kind: KIND_WAKE.into(),
            target_id: agency_id,
        })
        .await;
    }

    /// [`emit`] in a transaction of its own, then a wake-up: for an event
    /// with no write of its own to ride on (an import that stored nothing
    /// new). A failure is logged, never returned.
    pub async fn emit_webhook(&self, agency_id: Uuid, event_type: &str, data: Value) {
        // Most agencies have no endpoint: no write transaction for them.
        let any = webhook_endpoint::Entity::find()
            .filter(webhook_endpoint::Column::AgencyId.eq(agency_id))
            .filter(webhook_endpoint::Column::Enabled.eq(true))
            .one(&self.db)
            .await;
        if matches!(any, Ok(None)) {
            return;
        }
        let emitted = async {
            let txn = crate::infra::db::begin_write(&self.db).await?;
            let n = emit(&txn, agency_id, event_type, data).await?;
            txn.commit().await?;
            Ok::<u64, crate::infra::error::AppError>(n)
        };
        match emitted.await {
            Ok(0) => {}
            Ok(_) => self.wake_webhooks(agency_id).await,
            Err(e) => {
                tracing::error!(%agency_id, event_type, error = %e, "could not record a webhook event")
            }
        }
    }

    /// After a write's transaction committed (an import's event with it,
    /// see [`emit_import`]): an import's rows counted, and a worker woken
    /// when the event went to any endpoint. `None`: not an import, nothing
    /// to do.
    pub async fn import_committed(
        &self,
        agency_id: Uuid,
        e: Option<ImportEvent>,
        rows: u64,
        deliveries: u64,
    ) {
        let Some(e) = e else { return };
        self.metrics.rows_imported(e.kind, rows);
        if deliveries > 0 {
            self.wake_webhooks(agency_id).await;
        }
    }

    /// An import that stored nothing new (every row was already there):
    /// no transaction of its own to ride on, so it is counted and told in
    /// one of the event's own.
    pub async fn import_unchanged(&self, agency_id: Uuid, e: ImportEvent, rows: u64) {
        self.metrics.rows_imported(e.kind, rows);
        self.emit_webhook(agency_id, IMPORT_FINISHED, e.data(rows))
            .await;
    }
}

/// An import's `import.finished`: its kind and what it went to
/// (`subject`, e.g. `("client_id", id)`).
#[derive(Debug, Clone, Copy)]
pub struct ImportEvent {
    pub kind: crate::infra::metrics::ImportKind,
    pub subject: (&'static str, Uuid),
}

impl ImportEvent {
    fn data(&self, rows: u64) -> Value {
        let mut data = serde_json::Map::new();
        data.insert("kind".into(), json!(self.kind.label()));
        data.insert(self.subject.0.into(), json!(self.subject.1));
        data.insert("rows".into(), json!(rows));
        Value::Object(data)
    }
}

/// Writes an import's event in the import's own transaction, so that it
/// commits with the rows or not at all: a process that dies after the
/// commit cannot lose it. Returns the deliveries written (for
/// [`Services::import_committed`]); `None` (a write that is not an
/// import) writes nothing.
pub async fn emit_import<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    e: Option<ImportEvent>,
    rows: u64,
) -> AppResult<u64> {
    match e {
        Some(e) => emit(db, agency_id, IMPORT_FINISHED, e.data(rows)).await,
        None => Ok(0),
    }
}
