//! Sending: a worker claims due deliveries under a short lease it keeps
//! renewing, sends each through the mailer at the configured rate, and
//! records the outcome (sent, retried with backoff, or failed).
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::Utc;
use entity::email_delivery;
use futures::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use super::*;
use crate::infra::error::{AppError, AppResult};
use crate::infra::lease::Lease;
use crate::{Services, now};
pub use mailer::{Mailer, SendError};

/// Rows claimed per round.
const BATCH: u64 = 200;

/// The mail side of the services: transport, sender, rate limit.
pub struct EmailSettings {
    pub mailer: Mailer,
    pub from: Mailbox,
    /// Messages in flight per worker process, all its sending loops (the
    /// wake-up jobs' and the sweeper's) together.
    concurrency: usize,
    /// Permits for those messages. A permit is held from before the SMTP
    /// transaction until the outcome is recorded: what a killed process
    /// may have had accepted by the server without recording it.
    in_flight: tokio::sync::Semaphore,
    /// First retry delay; doubles per attempt.
    pub retry_base_ms: i64,
    /// How long a claim lasts without renewal (a dead worker's rows are
    /// free again after this).
    pub lease_ms: i64,
    limiter: governor::DefaultKeyedRateLimiter<Uuid>,
    /// Clients' own SMTP transports, with the sealed URL each was made of.
    pub(super) client_mailers: std::sync::Mutex<HashMap<Uuid, (String, Arc<Mailer>)>>,
}

impl EmailSettings {
    /// `per_second`: the most messages one agency sends per second from one
    /// worker process.
    pub fn new(mailer: Mailer, from: Mailbox, per_second: u32, retry_base_ms: i64) -> Self {
        let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        // More would only wait inside the server (or for a connection),
        // each one more message a crash could repeat.
        let concurrency = mailer.parallelism();
        EmailSettings {
            mailer,
            from,
            concurrency,
            in_flight: tokio::sync::Semaphore::new(concurrency),
            retry_base_ms,
            lease_ms: DEFAULT_LEASE_MS,
            limiter: governor::RateLimiter::keyed(governor::Quota::per_second(rate)),
            client_mailers: Default::default(),
        }
    }
}

/// The subscriber a delivery went to, for kinds sent to subscribers.
fn subscriber_of(d: &email_delivery::Model) -> Option<Uuid> {
    match d.kind.as_str() {
        "confirm" => d.source_id,
        "newsletter" => d
            .dedupe_key
            .rsplit(':')
            .next()
            .and_then(|s| Uuid::parse_str(s).ok()),
        _ => None,
    }
}

/// The kinds of email sent to a client's audience (its contacts).
const AUDIENCE_KINDS: [&str; 3] = ["confirm", "newsletter", "chain"];

impl Services {
    /// An audience email refused for good: the recipient's contact is
    /// bounced at once, and its client's contacts are rescored (so chain
    /// enrolments end with `bounced` without waiting for other news).
    async fn contact_bounced(&self, d: &email_delivery::Model) -> AppResult<()> {
        let Some(client_id) = d
            .client_id
            .filter(|_| AUDIENCE_KINDS.contains(&d.kind.as_str()))
        else {
            return Ok(());
        };
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let hit = entity::contact::Entity::update_many()
            .col_expr(entity::contact::Column::Status, Expr::value("bounced"))
            .col_expr(entity::contact::Column::UpdatedAt, Expr::value(now()))
            .filter(entity::contact::Column::AgencyId.eq(d.agency_id))
            .filter(entity::contact::Column::ClientId.eq(client_id))
            .filter(entity::contact::Column::Email.eq(d.recipient.to_lowercase()))
            .exec(&txn)
            .await?;
        let wake = hit.rows_affected > 0
            && crate::infra::ledger::bump_target(
                &txn,
                d.agency_id,
                crate::infra::ledger::KIND_CONTACTS,
                client_id,
            )
            .await?;
        txn.commit().await?;
        if wake {
            self.enqueue_recompute(crate::infra::queue::RecomputeJob {
                agency_id: d.agency_id,
                kind: crate::infra::ledger::KIND_CONTACTS.into(),
                target_id: client_id,
            })
            .await;
        }
        Ok(())
    }
}

fn backoff_ms(base: i64, attempts: i32) -> i64 {
    base.saturating_mul(1 << attempts.clamp(0, 16))
        .min(3_600_000)
}

fn build_message(
    from: &Mailbox,
    reply_to: Option<&Mailbox>,
    d: &email_delivery::Model,
) -> Result<lettre::Message, String> {
    let body: StoredBody = serde_json::from_value(d.body.clone()).map_err(|e| e.to_string())?;
    let to: Mailbox = d.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
    let mut b = lettre::Message::builder().from(from.clone());
    if let Some(r) = reply_to {
        b = b.reply_to(r.clone());
    }
    let mut b = b
        .to(to)
        .subject(d.subject.clone())
        .message_id(Some(d.message_id.clone()));
    for (name, value) in &body.headers {
        b = b.raw_header(lettre::message::header::HeaderValue::new(
            lettre::message::header::HeaderName::new_from_ascii(name.clone())
                .map_err(|e| format!("header {name}: {e}"))?,
            value.clone(),
        ));
    }
    let html = SinglePart::builder()
        .header(ContentType::TEXT_HTML)
        .body(body.html);
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body.text);
    let alternative = if body.inline.is_empty() {
        MultiPart::alternative().singlepart(text).singlepart(html)
    } else {
        let mut related = MultiPart::related().singlepart(html);
        for img in &body.inline {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&img.data)
                .map_err(|e| format!("inline {}: {e}", img.cid))?;
            let ct = ContentType::parse(&img.content_type).map_err(|e| e.to_string())?;
            related = related.singlepart(
                lettre::message::Attachment::new_inline(img.cid.clone()).body(bytes, ct),
            );
        }
        MultiPart::alternative().singlepart(text).multipart(related)
    };
    b.multipart(alternative).map_err(|e| e.to_string())
}

impl Services {
    pub(super) fn email(&self) -> AppResult<&Arc<EmailSettings>> {
        self.email
            .as_ref()
            .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("no mail transport configured")))
    }

    /// Claims due deliveries and sends them, until none is due. Returns
    /// how many were sent. (The worker calls [`Services::deliver_due`],
    /// which starts due campaigns first.)
    pub async fn send_due_deliveries(&self, worker_id: &str) -> AppResult<usize> {
        let lease_ms = self.email.as_ref().map_or(DEFAULT_LEASE_MS, |e| e.lease_ms);
        let mut sent = 0;
        loop {
            let Some((lease, claimed)) = self.claim_deliveries(worker_id, lease_ms).await? else {
                return Ok(sent);
            };
            let settings = self.email()?.clone();
            let senders = self.senders_of(&settings, &claimed).await?;
            let lease = Arc::new(lease);
            let sending = futures::stream::iter(claimed)
                .map(|d| {
                    let (this, settings, lease) = (self.clone(), settings.clone(), lease.clone());
                    let sender = d
                        .client_id
                        .filter(|_| sender::CLIENT_KINDS.contains(&d.kind.as_str()))
                        .and_then(|c| senders.get(&(d.agency_id, c)).cloned());
                    // A task of its own: if this call is cancelled (its job
                    // aborted, the consumer restarted), a message already
                    // handed to the server still gets its outcome recorded
                    // instead of staying leased and going out again.
                    tokio::spawn(async move { this.send_one(&settings, &lease, d, sender).await })
                })
                .buffer_unordered(settings.concurrency)
                .map(|sent| sent.unwrap_or(false))
                .collect::<Vec<bool>>();
            // The lease is renewed for as long as the batch is being sent.
            let outcomes = tokio::select! {
                outcomes = sending => outcomes,
                never = self.keep_lease(&lease) => match never {},
            };
            sent += outcomes.into_iter().filter(|ok| *ok).count();
        }
    }

    async fn claim_deliveries(
        &self,
        worker_id: &str,
        lease_ms: i64,
    ) -> AppResult<Option<(Lease, Vec<email_delivery::Model>)>> {
        let now = Utc::now().timestamp_millis();
        let due = |q: sea_orm::Select<email_delivery::Entity>| {
            q.filter(email_delivery::Column::Status.is_in(["queued", "deferred"]))
                .filter(email_delivery::Column::NextAttemptMs.lte(now))
                .filter(email_delivery::Column::LeaseUntilMs.lt(now))
        };
        let ids: Vec<Uuid> = due(email_delivery::Entity::find())
            .order_by_asc(email_delivery::Column::NextAttemptMs)
            .order_by_asc(email_delivery::Column::Id)
            .select_only()
            .column(email_delivery::Column::Id)
            .limit(BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(None);
        }
        let lease = Lease::new(worker_id, ids, lease_ms, now);
        // The lease condition is checked again on each row as it is updated,
        // so two workers never both claim a row.
        email_delivery::Entity::update_many()
            .col_expr(
                email_delivery::Column::LeaseOwner,
                Expr::value(lease.token.clone()),
            )
            .col_expr(
                email_delivery::Column::LeaseUntilMs,
                Expr::value(now + lease_ms),
            )
            .filter(email_delivery::Column::Id.is_in(lease.ids.clone()))
            .filter(email_delivery::Column::Status.is_in(["queued", "deferred"]))
            .filter(email_delivery::Column::LeaseUntilMs.lt(now))
            .exec(&self.db)
            .await?;
        let claimed = email_delivery::Entity::find()
            .filter(email_delivery::Column::Id.is_in(lease.ids.clone()))
            .filter(email_delivery::Column::LeaseOwner.eq(lease.token.clone()))
            .order_by_asc(email_delivery::Column::Id)
            .all(&self.db)
            .await?;
        // Another worker may have taken all of them meanwhile: look again.
        Ok(Some((lease, claimed)))
    }

    /// Extends the lease of the batch's unsent rows every third of its
    /// length; never returns (dropped when the batch is done).
    async fn keep_lease(&self, lease: &Lease) -> std::convert::Infallible {
        lease
            .keep("emails", |until| async move {
                email_delivery::Entity::update_many()
                    .col_expr(email_delivery::Column::LeaseUntilMs, Expr::value(until))
                    .filter(email_delivery::Column::Id.is_in(lease.ids.clone()))
                    .filter(email_delivery::Column::LeaseOwner.eq(lease.token.clone()))
                    .exec(&self.db)
                    .await
                    .map(|_| ())
            })
            .await
    }

    /// Sends one claimed delivery and records what happened; true if sent.
    async fn send_one(
        &self,
        settings: &EmailSettings,
        lease: &Lease,
        d: email_delivery::Model,
        sender: Option<Arc<sender::ClientSender>>,
    ) -> bool {
        settings.limiter.until_key_ready(&d.agency_id).await;
        let Ok(_in_flight) = settings.in_flight.acquire().await else {
            return false;
        };
        if !lease.holds() {
            // Renewals failed: another worker may take this row any moment.
            // Left as it is, it is claimed again once the lease has lapsed.
            tracing::warn!(delivery = %d.id, "email lease about to lapse; not sending");
            return false;
        }
        let sender = sender.unwrap_or_default();
        let from = sender.from.as_ref().unwrap_or(&settings.from);
        let mailer = sender.mailer.as_deref().unwrap_or(&settings.mailer);
        let outcome = match build_message(from, sender.reply_to.as_ref(), &d) {
            Ok(msg) => mailer.send(msg, &d.id.to_string()).await,
            Err(e) => Err(SendError::Permanent(format!(
                "cannot build the message: {e}"
            ))),
        };
        let attempts = d.attempts + 1;
        let (status, error, next) = match &outcome {
            Ok(()) => ("sent", None, 0),
            Err(SendError::Permanent(e)) => ("failed", Some(e.clone()), 0),
            Err(SendError::Transient(e)) if attempts >= MAX_ATTEMPTS => {
                ("failed", Some(e.clone()), 0)
            }
            Err(SendError::Transient(e)) => (
                "deferred",
                Some(e.clone()),
                Utc::now().timestamp_millis() + backoff_ms(settings.retry_base_ms, attempts - 1),
            ),
        };
        if let Err(e) = &outcome {
            tracing::warn!(delivery = %d.id, status, error = ?e, "email not sent");
        }
        if let Err(SendError::Permanent(_)) = &outcome
            && let Some(subscriber) = subscriber_of(&d)
        {
            // The address refused for good: no more mail to it.
            let bounced = entity::subscriber::Entity::update_many()
                .col_expr(entity::subscriber::Column::Status, Expr::value("bounced"))
                .col_expr(entity::subscriber::Column::UpdatedAt, Expr::value(now()))
                .filter(entity::subscriber::Column::AgencyId.eq(d.agency_id))
                .filter(entity::subscriber::Column::Id.eq(subscriber))
                .exec(&self.db)
                .await;
            if let Err(e) = bounced {
                tracing::error!(delivery = %d.id, error = %e, "could not mark a subscriber bounced");
            }
        }
        if let Err(SendError::Permanent(_)) = &outcome
            && let Err(e) = self.contact_bounced(&d).await
        {
            tracing::error!(delivery = %d.id, error = %e, "could not mark a contact bounced");
        }
        let record = email_delivery::Entity::update_many()
            .col_expr(email_delivery::Column::Status, Expr::value(status))
            .col_expr(email_delivery::Column::Attempts, Expr::value(attempts))
            .col_expr(email_delivery::Column::LastError, Expr::value(error))
            .col_expr(email_delivery::Column::NextAttemptMs, Expr::value(next))
            .col_expr(
                email_delivery::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(email_delivery::Column::LeaseUntilMs, Expr::value(0i64))
            .col_expr(
                email_delivery::Column::SentAt,
                Expr::value(outcome.is_ok().then(now)),
            )
            .col_expr(email_delivery::Column::UpdatedAt, Expr::value(now()))
            .filter(email_delivery::Column::Id.eq(d.id))
            .filter(email_delivery::Column::LeaseOwner.eq(d.lease_owner.clone()));
        let recorded = match &outcome {
            // A bounce is told to webhooks in the transaction that records
            // it: both or neither, and only by the lease's holder.
            Err(SendError::Permanent(e)) => {
                let data = serde_json::json!({
                    "delivery_id": d.id, "client_id": d.client_id, "kind": d.kind,
                    "recipient": d.recipient, "message_id": d.message_id, "error": e,
                });
                let bounced = async {
                    let txn = crate::infra::db::begin_write(&self.db).await?;
                    let hooks = if record.exec(&txn).await?.rows_affected > 0 {
                        crate::infra::webhooks::emit(
                            &txn,
                            d.agency_id,
                            crate::infra::webhooks::EMAIL_BOUNCED,
                            data,
                        )
                        .await?
                    } else {
                        0
                    };
                    txn.commit().await?;
                    Ok::<_, AppError>(hooks)
                };
                match bounced.await {
                    Ok(hooks) => {
                        if hooks > 0 {
                            self.wake_webhooks(d.agency_id).await;
                        }
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            _ => record
                .exec(&self.db)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
        };
        match recorded {
            Ok(()) => self.metrics.email_recorded(status),
            Err(e) => {
                tracing::error!(delivery = %d.id, error = %e, "could not record an email outcome")
            }
        }
        outcome.is_ok()
    }
}
