//! One outgoing-mail pipeline for every kind of email.
//!
//! A message is rendered and written to the `email_deliveries` ledger —
//! unique per agency by a dedupe key naming (kind, source, recipient) — in
//! the same transaction as whatever caused it, so it can be neither lost nor
//! queued twice. Workers claim due rows with a lease, send them (SMTP pool or
//! outbox folder) and record the outcome: `sent`; `deferred` with backoff on
//! 4xx replies and connection errors; `failed` on 5xx replies or after
//! [`MAX_ATTEMPTS`]. A retry sends the stored bytes with the same
//! Message-ID.
//!
//! A claim is a short lease that the claiming worker renews while it sends
//! the batch, so the rows of a worker that died are free again within one
//! lease (seconds, [`DEFAULT_LEASE_MS`]), not after a long fixed reservation;
//! a worker that cannot renew stops starting new messages before its lease
//! can run out, so nobody else sends them meanwhile.
//!
//! Exactly once at the receiver cannot be guaranteed by any design: the
//! SMTP server's acceptance and the ledger's "sent" are two commits in two
//! systems with no transaction spanning them (SMTP has no two-phase commit
//! and no way to ask whether a message was taken). Recording "sent" first
//! would lose the message if the worker died before the server took it;
//! sending first repeats it if the worker dies after the server took it but
//! before the ledger says so. Losing mail is worse, so a message in that
//! window is sent again after the lease lapses, with the same Message-ID,
//! which lets receivers (and `tests/tests/crash.rs`) recognise the copy.
//! The window runs from the end of DATA (the server may keep the message
//! from then on, even if its "250" never arrives) to the ledger's commit.
//! What bounds the repeats is how many messages are in that window at
//! once: a worker process has at most one message in flight per pooled
//! SMTP connection, all its sending loops together. A busy server makes
//! every in-flight message wait inside it, so up to that many can repeat
//! (measured in `docs/performance.md`).

pub mod links;
pub mod mailer;
pub mod render;

use std::num::NonZeroU32;
use std::sync::Arc;

use chrono::Utc;
use entity::{email_delivery, membership, user};
use futures::StreamExt;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::infra::page::{Page, PageParams};
use crate::{Perm, RequestCtx, Services, new_id, now};
pub use mailer::{Mailer, SendError};
pub use render::{Brand, Rendered};

/// The queue kind that wakes a worker to send due emails.
pub const KIND_WAKE: &str = "email";

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed delivery is reserved for its worker unless renewed;
/// the worker renews every third of it while it sends the batch.
pub const DEFAULT_LEASE_MS: i64 = 15_000;
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
        }
    }
}

/// The stored, rendered message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredBody {
    pub html: String,
    pub text: String,
    /// Extra headers (name, value), e.g. List-Unsubscribe.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Inline images referenced as `cid:<id>` from the HTML.
    #[serde(default)]
    pub inline: Vec<InlineImage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InlineImage {
    pub cid: String,
    pub content_type: String,
    /// Base64 of the bytes.
    pub data: String,
}

/// One message to put in the ledger.
pub struct NewDelivery {
    pub agency_id: Uuid,
    pub client_id: Option<Uuid>,
    pub kind: String,
    pub source_id: Option<Uuid>,
    pub recipient: String,
    /// Unique per agency: the same key is never queued twice.
    pub dedupe_key: String,
    pub rendered: Rendered,
    pub headers: Vec<(String, String)>,
    pub inline: Vec<InlineImage>,
}

/// Writes deliveries in the caller's transaction; a key already there is
/// left as it was. Returns how many were new.
pub async fn enqueue<C: ConnectionTrait>(db: &C, items: Vec<NewDelivery>) -> AppResult<u64> {
    if items.is_empty() {
        return Ok(0);
    }
    let t = now();
    let mut rows = Vec::with_capacity(items.len());
    for d in items {
        let id = new_id();
        let body = StoredBody {
            html: d.rendered.html,
            text: d.rendered.text,
            headers: d.headers,
            inline: d.inline,
        };
        rows.push(email_delivery::ActiveModel {
            id: Set(id),
            agency_id: Set(d.agency_id),
            client_id: Set(d.client_id),
            kind: Set(d.kind),
            source_id: Set(d.source_id),
            recipient: Set(d.recipient),
            dedupe_key: Set(d.dedupe_key),
            message_id: Set(format!("<{}@growthpoint>", id.simple())),
            subject: Set(d.rendered.subject),
            body: Set(serde_json::to_value(&body).map_err(anyhow::Error::from)?),
            status: Set("queued".into()),
            attempts: Set(0),
            next_attempt_ms: Set(0),
            lease_owner: Set(None),
            lease_until_ms: Set(0),
            last_error: Set(None),
            created_at: Set(t),
            sent_at: Set(None),
            updated_at: Set(t),
        });
    }
    let mut inserted = 0;
    for chunk in rows.chunks(500) {
        let res = email_delivery::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                OnConflict::columns([
                    email_delivery::Column::AgencyId,
                    email_delivery::Column::DedupeKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await;
        inserted += match res {
            Ok(n) => n,
            Err(sea_orm::DbErr::RecordNotInserted) => 0,
            Err(e) => return Err(e.into()),
        };
    }
    Ok(inserted)
}

/// An owner or admin of the agency: who gets alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub user_id: Uuid,
    pub email: String,
    /// The language the user chose for their emails, if any.
    pub locale: Option<String>,
}

/// The agency's owners and admins, by user id.
pub async fn admins<C: ConnectionTrait>(db: &C, agency_id: Uuid) -> AppResult<Vec<Admin>> {
    let members = membership::Entity::find()
        .filter(membership::Column::AgencyId.eq(agency_id))
        .filter(membership::Column::Role.is_in(["owner", "admin"]))
        .all(db)
        .await?;
    let ids: Vec<Uuid> = members.iter().map(|m| m.user_id).collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|u| Admin {
            user_id: u.id,
            email: u.email,
            locale: u.locale,
        })
        .collect())
}

/// One copy per owner/admin of the agency, as `kind` about `batch` (the
/// dedupe key names both: a batch reaches each admin once), each in the
/// admin's own language or else `default_locale`. `render` is called once
/// per language needed.
pub async fn admin_deliveries<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Option<Uuid>,
    kind: &str,
    batch: Uuid,
    default_locale: &str,
    mut render: impl FnMut(&str) -> AppResult<Rendered>,
) -> AppResult<Vec<NewDelivery>> {
    let mut by_locale: std::collections::BTreeMap<String, Rendered> = Default::default();
    let mut out = Vec::new();
    for a in admins(db, agency_id).await? {
        let locale = a.locale.unwrap_or_else(|| default_locale.to_owned());
        let rendered = match by_locale.entry(locale) {
            std::collections::btree_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let r = render(e.key())?;
                e.insert(r).clone()
            }
        };
        out.push(NewDelivery {
            agency_id,
            client_id,
            kind: kind.to_owned(),
            source_id: Some(batch),
            recipient: a.email,
            dedupe_key: format!("{kind}:{batch}:{}", a.user_id),
            rendered,
            headers: vec![],
            inline: vec![],
        });
    }
    Ok(out)
}

/// A delivery as the API shows it (never the body).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct DeliveryView {
    pub id: Uuid,
    pub client_id: Option<Uuid>,
    pub kind: String,
    pub source_id: Option<Uuid>,
    pub recipient: String,
    pub subject: String,
    pub message_id: String,
    /// `queued`, `sent`, `deferred` (will retry) or `failed`.
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<Utc>,
    pub sent_at: Option<chrono::DateTime<Utc>>,
}
crate::has_id!(DeliveryView);

impl From<email_delivery::Model> for DeliveryView {
    fn from(m: email_delivery::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            kind: m.kind,
            source_id: m.source_id,
            recipient: m.recipient,
            subject: m.subject,
            message_id: m.message_id,
            status: m.status,
            attempts: m.attempts,
            last_error: m.last_error,
            created_at: m.created_at,
            sent_at: m.sent_at,
        }
    }
}

/// `?status=&kind=` of the delivery list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// `queued`, `sent`, `deferred` or `failed`.
    pub status: Option<String>,
    /// e.g. `ux_alerts`, `job_failed`.
    pub kind: Option<String>,
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

fn backoff_ms(base: i64, attempts: i32) -> i64 {
    base.saturating_mul(1 << attempts.clamp(0, 16))
        .min(3_600_000)
}

fn build_message(from: &Mailbox, d: &email_delivery::Model) -> Result<lettre::Message, String> {
    let body: StoredBody = serde_json::from_value(d.body.clone()).map_err(|e| e.to_string())?;
    let to: Mailbox = d.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
    let mut b = lettre::Message::builder()
        .from(from.clone())
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

/// One worker's claim on a batch of deliveries.
struct Lease {
    token: String,
    ids: Vec<Uuid>,
    lease_ms: i64,
    /// Until when the rows are ours, as of the last successful renewal.
    until_ms: std::sync::atomic::AtomicI64,
}

impl Lease {
    /// Is there at least a third of the lease left? A message started now
    /// finishes (normally in milliseconds) before anyone else may claim it.
    fn holds(&self) -> bool {
        let until = self.until_ms.load(std::sync::atomic::Ordering::Acquire);
        Utc::now().timestamp_millis() + self.lease_ms / 3 < until
    }
}

impl Services {
    /// Asks a worker to send what is due (after the deliveries committed;
    /// a lost call only waits for the next sweep).
    pub async fn wake_mailer(&self, agency_id: Uuid) {
        self.enqueue_recompute(crate::infra::queue::RecomputeJob {
            agency_id,
            kind: KIND_WAKE.into(),
            target_id: agency_id,
        })
        .await;
    }

    fn email(&self) -> AppResult<&Arc<EmailSettings>> {
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
            let lease = Arc::new(lease);
            let sending = futures::stream::iter(claimed)
                .map(|d| {
                    let (this, settings, lease) = (self.clone(), settings.clone(), lease.clone());
                    // A task of its own: if this call is cancelled (its job
                    // aborted, the consumer restarted), a message already
                    // handed to the server still gets its outcome recorded
                    // instead of staying leased and going out again.
                    tokio::spawn(async move { this.send_one(&settings, &lease, d).await })
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
        let lease = Lease {
            token: format!("{worker_id}:{}", Uuid::new_v4().simple()),
            ids,
            lease_ms,
            until_ms: std::sync::atomic::AtomicI64::new(now + lease_ms),
        };
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
        let every = std::time::Duration::from_millis((lease.lease_ms / 3).max(1) as u64);
        loop {
            tokio::time::sleep(every).await;
            let now = Utc::now().timestamp_millis();
            let renewed = email_delivery::Entity::update_many()
                .col_expr(
                    email_delivery::Column::LeaseUntilMs,
                    Expr::value(now + lease.lease_ms),
                )
                .filter(email_delivery::Column::Id.is_in(lease.ids.clone()))
                .filter(email_delivery::Column::LeaseOwner.eq(lease.token.clone()))
                .exec(&self.db)
                .await;
            match renewed {
                Ok(_) => lease
                    .until_ms
                    .store(now + lease.lease_ms, std::sync::atomic::Ordering::Release),
                Err(e) => tracing::warn!(error = %e, "could not renew an email lease"),
            }
        }
    }

    /// Sends one claimed delivery and records what happened; true if sent.
    async fn send_one(
        &self,
        settings: &EmailSettings,
        lease: &Lease,
        d: email_delivery::Model,
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
        let outcome = match build_message(&settings.from, &d) {
            Ok(msg) => settings.mailer.send(msg, &d.id.to_string()).await,
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
        let recorded = email_delivery::Entity::update_many()
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
            .filter(email_delivery::Column::LeaseOwner.eq(d.lease_owner.clone()))
            .exec(&self.db)
            .await;
        if let Err(e) = recorded {
            tracing::error!(delivery = %d.id, error = %e, "could not record an email outcome");
        }
        outcome.is_ok()
    }

    /// The agency's deliveries (admins), oldest first.
    pub async fn list_deliveries(
        &self,
        ctx: &RequestCtx,
        filter: DeliveryFilter,
        page: PageParams,
    ) -> AppResult<Page<DeliveryView>> {
        ctx.require(Perm::Admin)?;
        let page = page.parse()?;
        let mut q = email_delivery::Entity::find()
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id));
        if let Some(s) = filter.status {
            if !["queued", "sent", "deferred", "failed"].contains(&s.as_str()) {
                return Err(AppError::field(
                    "status",
                    "must be queued, sent, deferred or failed",
                ));
            }
            q = q.filter(email_delivery::Column::Status.eq(s));
        }
        if let Some(k) = filter.kind {
            q = q.filter(email_delivery::Column::Kind.eq(k));
        }
        page.fetch(q, email_delivery::Column::Id, &self.db, DeliveryView::from)
            .await
    }

    pub async fn get_delivery(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<DeliveryView> {
        let d = email_delivery::Entity::find_by_id(id)
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        ctx.require(Perm::Admin)?;
        Ok(d.into())
    }
}
