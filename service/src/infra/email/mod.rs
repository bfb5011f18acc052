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
mod send;
pub mod sender;

use chrono::Utc;
use entity::{email_delivery, membership, user};

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult};
use crate::infra::page::{Page, PageParams};
use crate::{Perm, RequestCtx, Services, new_id, now};
pub use mailer::{Mailer, SendError};
pub use render::{Brand, Rendered};
pub use send::EmailSettings;

/// The queue kind that wakes a worker to send due emails.
pub const KIND_WAKE: &str = "email";

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed delivery is reserved for its worker unless renewed;
/// the worker renews every third of it while it sends the batch.
pub const DEFAULT_LEASE_MS: i64 = 15_000;

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
    enqueue_with_ids(db, items.into_iter().map(|d| (new_id(), d)).collect()).await
}

/// [`enqueue`] with the ids the rows get, for a message that names its own
/// delivery (tracking links): a key already there keeps its row, id and
/// body, so what was sent and what its links name stay one.
pub async fn enqueue_with_ids<C: ConnectionTrait>(
    db: &C,
    items: Vec<(Uuid, NewDelivery)>,
) -> AppResult<u64> {
    if items.is_empty() {
        return Ok(0);
    }
    let t = now();
    let mut rows = Vec::with_capacity(items.len());
    for (id, d) in items {
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
    #[param(schema_with = crate::infra::docs::delivery_status)]
    pub status: Option<String>,
    /// e.g. `ux_alerts`, `job_failed`.
    pub kind: Option<String>,
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
            if crate::domain::nul::has_nul(&k) {
                return Err(AppError::field(
                    "kind",
                    "must not contain the NUL character (U+0000)",
                ));
            }
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
