//! An agency's webhook endpoints (owners and admins): where its events are
//! POSTed, which types, enabled or not (and why not); the signing secret is
//! shown once, at creation and at each rotation, and kept sealed. After a
//! rotation the previous secret also signs for [`ROTATION_OVERLAP_HOURS`],
//! so receivers can switch without missing a delivery. Also each endpoint's
//! delivery log, re-sending one delivery, and a test `webhook.ping`.
use chrono::{DateTime, Utc};
use entity::{webhook_delivery as wd, webhook_endpoint as we};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::infra::webhooks::{self as hooks, sign, ssrf};
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Endpoints an agency may have.
pub const MAX_ENDPOINTS: u64 = 20;
/// How long the secret before a rotation keeps signing too.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct WebhookEndpointView {
    pub id: Uuid,
    pub url: String,
    pub description: String,
    /// The event types sent; null: every type.
    pub event_types: Option<Vec<String>>,
    pub enabled: bool,
    /// Why it was disabled (by an admin, or after failing for the retry
    /// period).
    pub disabled_reason: Option<String>,
    /// Since when every delivery has failed; null while it works.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the secret before the last rotation also signs.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: only in the answers to creating
/// the endpoint and rotating its secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct WebhookSecretView {
    pub endpoint: WebhookEndpointView,
    /// `whsec_` and the base64 key: verify `webhook-signature` with it.
    /// Shown only now.
    pub secret: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointInput {
    /// `https://` to a public address.
    #[schema(max_length = 2048, pattern = "^https://")]
    pub url: String,
    /// At most 200 characters, no line breaks.
    #[serde(default)]
    #[schema(max_length = 200, pattern = "^[^\\r\\n\\u0000]*$")]
    pub description: Option<String>,
    /// Event types to send (`GET /webhook-event-types`); absent: all.
    #[serde(default)]
    #[schema(schema_with = event_types_schema)]
    pub event_types: Option<Vec<String>>,
}

/// Changes to an endpoint; absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointPatch {
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// At most 200 characters, no line breaks.
    #[serde(default)]
    #[schema(max_length = 200, pattern = "^[^\\r\\n\\u0000]*$")]
    pub description: Option<String>,
    #[serde(default)]
    #[schema(schema_with = event_types_schema)]
    pub event_types: Option<Vec<String>>,
    /// True: send every event type (instead of `event_types`).
    #[serde(default)]
    pub all_event_types: Option<bool>,
    /// Enabling clears the reason and the failure record.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// One or more of the event types, or null.
fn event_types_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, SchemaType, Type};
    let names: Vec<&str> = hooks::EVENT_TYPES.iter().map(|(t, _)| *t).collect();
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(crate::infra::docs::one_of(&names))
        .min_items(Some(1))
        .build()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct WebhookEventTypeView {
    pub name: String,
    pub description: String,
}

/// One event's delivery to one endpoint.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct WebhookDeliveryView {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The `webhook-id` header: the same on every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `retrying`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    /// When it is tried next (`pending`, `retrying`).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's HTTP status at the last attempt.
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// How long the last attempt took, ms.
    pub last_duration_ms: Option<i32>,
    /// When it was queued (or queued again by a re-send).
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}
crate::has_id!(WebhookDeliveryView);

fn view(m: we::Model) -> WebhookEndpointView {
    WebhookEndpointView {
        event_types: m.event_types.and_then(|v| serde_json::from_value(v).ok()),
        id: m.id,
        url: m.url,
        description: m.description,
        enabled: m.enabled,
        disabled_reason: m.disabled_reason,
        failing_since: m.failing_since,
        previous_secret_until: m.previous_secret_until,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

fn delivery_view(m: wd::Model) -> WebhookDeliveryView {
    let waiting = m.status == "pending" || m.status == "retrying";
    WebhookDeliveryView {
        next_attempt_at: waiting.then(|| {
            DateTime::from_timestamp_millis(m.next_attempt_ms)
                .unwrap_or_else(now)
                .max(m.created_at)
        }),
        id: m.id,
        endpoint_id: m.endpoint_id,
        event_id: m.event_id,
        event_type: m.event_type,
        status: m.status,
        attempts: m.attempts,
        last_status_code: m.last_status_code,
        last_error: m.last_error,
        last_duration_ms: m.last_duration_ms,
        created_at: m.created_at,
        delivered_at: m.delivered_at,
    }
}

fn check_description(d: &Option<String>, errs: &mut Vec<FieldError>) {
    if let Some(d) = d
        && (d.chars().count() > 200 || d.contains(['\r', '\n']))
    {
        errs.push(FieldError::new(
            "description",
            "must be at most 200 characters without line breaks",
        ));
    }
}

/// Known, distinct, at least one: stored as a JSON array.
fn check_types(types: &[String], errs: &mut Vec<FieldError>) -> serde_json::Value {
    if types.is_empty() {
        errs.push(FieldError::new(
            "event_types",
            "must name at least one event type (leave it out for all)",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in types {
        if !hooks::is_event_type(t) {
            errs.push(FieldError::new(
                "event_types",
                format!("{t:?} is not an event type (see GET /webhook-event-types)"),
            ));
        }
        seen.insert(t.clone());
    }
    serde_json::json!(seen)
}

impl Services {
    async fn check_webhook_url(&self, url: &str, errs: &mut Vec<FieldError>) {
        if let Err(e) = ssrf::check_target(url, self.config.webhooks_allow_private).await {
            errs.push(FieldError::new("url", e));
        }
    }

    async fn find_endpoint(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<we::Model> {
        let e = we::Entity::find_by_id(id)
            .filter(we::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        ctx.require(Perm::Admin)?;
        Ok(e)
    }

    pub fn webhook_event_types(&self, ctx: &RequestCtx) -> AppResult<Vec<WebhookEventTypeView>> {
        ctx.require(Perm::Read)?;
        Ok(hooks::EVENT_TYPES
            .iter()
            .map(|(n, d)| WebhookEventTypeView {
                name: (*n).into(),
                description: (*d).into(),
            })
            .collect())
    }

    /// The agency's endpoints, oldest first (at most [`MAX_ENDPOINTS`]).
    pub async fn list_webhook_endpoints(
        &self,
        ctx: &RequestCtx,
    ) -> AppResult<Vec<WebhookEndpointView>> {
        ctx.require(Perm::Admin)?;
        Ok(we::Entity::find()
            .filter(we::Column::AgencyId.eq(ctx.agency_id))
            .order_by_asc(we::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(view)
            .collect())
    }

    pub async fn get_webhook_endpoint(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<WebhookEndpointView> {
        self.find_endpoint(ctx, id).await.map(view)
    }

    /// A secret sealed for the endpoint, or why it cannot be kept.
    fn seal_secret(&self, agency_id: Uuid, id: Uuid, secret: &str) -> AppResult<String> {
        let sealer = self.config.sealer.as_ref().ok_or_else(|| {
            AppError::Unexpected(anyhow::anyhow!(
                "no secret key (GROWTHPOINT_SECRET_KEY) to keep webhook secrets"
            ))
        })?;
        Ok(sealer.seal(secret, &hooks::secret_binding(agency_id, id)))
    }

    pub async fn create_webhook_endpoint(
        &self,
        ctx: &RequestCtx,
        input: WebhookEndpointInput,
    ) -> AppResult<WebhookSecretView> {
        ctx.require(Perm::Admin)?;
        let mut errs = Vec::new();
        self.check_webhook_url(&input.url, &mut errs).await;
        check_description(&input.description, &mut errs);
        let types = input
            .event_types
            .as_deref()
            .map(|t| check_types(t, &mut errs));
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let n = we::Entity::find()
            .filter(we::Column::AgencyId.eq(ctx.agency_id))
            .count(&txn)
            .await?;
        if n >= MAX_ENDPOINTS {
            return Err(AppError::field(
                "url",
                format!("an agency has at most {MAX_ENDPOINTS} webhook endpoints"),
            ));
        }
        let (id, t, secret) = (new_id(), now(), sign::new_secret());
        let row = we::ActiveModel {
            id: Set(id),
            agency_id: Set(ctx.agency_id),
            url: Set(input.url),
            description: Set(input.description.unwrap_or_default()),
            event_types: Set(types),
            enabled: Set(true),
            disabled_reason: Set(None),
            secret_sealed: Set(self.seal_secret(ctx.agency_id, id, &secret)?),
            previous_secret_sealed: Set(None),
            previous_secret_until: Set(None),
            failing_since: Set(None),
            alert_pending: Set(false),
            created_at: Set(t),
            updated_at: Set(t),
        }
        .insert(&txn)
        .await?;
        let created = view(row);
        // The view holds no secret; the audit writer redacts by name besides.
        let change = Audit::create("webhook", id, &created);
        audit::commit(txn, ctx, change).await?;
        Ok(WebhookSecretView {
            endpoint: created,
            secret,
        })
    }

    pub async fn update_webhook_endpoint(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        patch: WebhookEndpointPatch,
    ) -> AppResult<WebhookEndpointView> {
        let e = self.find_endpoint(ctx, id).await?;
        let mut errs = Vec::new();
        if let Some(url) = &patch.url {
            self.check_webhook_url(url, &mut errs).await;
        }
        check_description(&patch.description, &mut errs);
        let types = patch
            .event_types
            .as_deref()
            .map(|t| check_types(t, &mut errs));
        if types.is_some() && patch.all_event_types == Some(true) {
            errs.push(FieldError::new(
                "all_event_types",
                "cannot be true while event_types is given",
            ));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let was_enabled = e.enabled;
        let before = view(e.clone());
        let mut row: we::ActiveModel = e.into();
        if let Some(url) = patch.url {
            row.url = Set(url);
        }
        if let Some(d) = patch.description {
            row.description = Set(d);
        }
        if types.is_some() {
            row.event_types = Set(types);
        } else if patch.all_event_types == Some(true) {
            row.event_types = Set(None);
        }
        match patch.enabled {
            Some(true) if !was_enabled => {
                row.enabled = Set(true);
                row.disabled_reason = Set(None);
                row.failing_since = Set(None);
                row.alert_pending = Set(false);
            }
            Some(false) if was_enabled => {
                row.enabled = Set(false);
                row.disabled_reason = Set(Some("disabled by an admin".into()));
            }
            _ => {}
        }
        row.updated_at = Set(now());
        let saved = audit::update_one(&self.db, ctx, "webhook", id, &before, row, view);
        Ok(view(saved.await?))
    }

    pub async fn delete_webhook_endpoint(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let e = self.find_endpoint(ctx, id).await?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        wd::Entity::delete_many()
            .filter(wd::Column::AgencyId.eq(e.agency_id))
            .filter(wd::Column::EndpointId.eq(e.id))
            .exec(&txn)
            .await?;
        we::Entity::delete_many()
            .filter(we::Column::AgencyId.eq(e.agency_id))
            .filter(we::Column::Id.eq(e.id))
            .exec(&txn)
            .await?;
        let change = Audit::delete("webhook", e.id, &view(e));
        audit::commit(txn, ctx, change).await
    }

    /// A new secret signs from now on; the one before also signs for
    /// [`ROTATION_OVERLAP_HOURS`].
    pub async fn rotate_webhook_secret(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<WebhookSecretView> {
        let e = self.find_endpoint(ctx, id).await?;
        let secret = sign::new_secret();
        let t = now();
        let mut row: we::ActiveModel = e.clone().into();
        row.previous_secret_sealed = Set(Some(e.secret_sealed));
        row.previous_secret_until = Set(Some(t + chrono::Duration::hours(ROTATION_OVERLAP_HOURS)));
        row.secret_sealed = Set(self.seal_secret(e.agency_id, e.id, &secret)?);
        row.updated_at = Set(t);
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let endpoint = view(row.update(&txn).await?);
        audit::commit(txn, ctx, Audit::new("webhook", "rotate_secret", Some(id))).await?;
        Ok(WebhookSecretView { endpoint, secret })
    }

    /// Sends a `webhook.ping` event to this endpoint alone.
    pub async fn ping_webhook_endpoint(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<WebhookDeliveryView> {
        let e = self.find_endpoint(ctx, id).await?;
        if !e.enabled {
            return Err(AppError::Conflict("the endpoint is disabled".into()));
        }
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let (event_id, _) = hooks::emit_to(
            &txn,
            e.agency_id,
            &[e.id],
            hooks::PING,
            serde_json::json!({"endpoint_id": e.id}),
        )
        .await?;
        let d = wd::Entity::find()
            .filter(wd::Column::AgencyId.eq(e.agency_id))
            .filter(wd::Column::EndpointId.eq(e.id))
            .filter(wd::Column::EventId.eq(event_id))
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound)?;
        let change = Audit::new("webhook", "ping", Some(e.id))
            .with(serde_json::json!({"event_id": event_id, "delivery_id": d.id}));
        audit::commit(txn, ctx, change).await?;
        self.wake_webhooks(e.agency_id).await;
        Ok(delivery_view(d))
    }

    /// The endpoint's deliveries, oldest first.
    pub async fn list_webhook_deliveries(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<WebhookDeliveryView>> {
        let e = self.find_endpoint(ctx, id).await?;
        let page = page.parse()?;
        let q = wd::Entity::find()
            .filter(wd::Column::AgencyId.eq(e.agency_id))
            .filter(wd::Column::EndpointId.eq(e.id));
        page.fetch(q, wd::Column::Id, &self.db, delivery_view).await
    }

    /// Queues one delivery again (same `webhook-id`), with a fresh retry
    /// period.
    pub async fn resend_webhook_delivery(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        delivery_id: Uuid,
    ) -> AppResult<WebhookDeliveryView> {
        let e = self.find_endpoint(ctx, id).await?;
        if !e.enabled {
            return Err(AppError::Conflict("the endpoint is disabled".into()));
        }
        let filter = |q: sea_orm::Select<wd::Entity>| {
            q.filter(wd::Column::AgencyId.eq(e.agency_id))
                .filter(wd::Column::EndpointId.eq(e.id))
                .filter(wd::Column::Id.eq(delivery_id))
        };
        filter(wd::Entity::find())
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        wd::Entity::update_many()
            .col_expr(wd::Column::Status, Expr::value("pending"))
            .col_expr(wd::Column::NextAttemptMs, Expr::value(0i64))
            .col_expr(wd::Column::CreatedAt, Expr::value(now()))
            .col_expr(wd::Column::UpdatedAt, Expr::value(now()))
            .filter(wd::Column::AgencyId.eq(e.agency_id))
            .filter(wd::Column::Id.eq(delivery_id))
            // One in flight is left to finish.
            .filter(wd::Column::LeaseUntilMs.lt(Utc::now().timestamp_millis()))
            .exec(&txn)
            .await?;
        let d = filter(wd::Entity::find())
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound)?;
        let change = Audit::new("webhook", "resend", Some(e.id))
            .with(serde_json::json!({"delivery_id": d.id}));
        audit::commit(txn, ctx, change).await?;
        self.wake_webhooks(e.agency_id).await;
        Ok(delivery_view(d))
    }
}
