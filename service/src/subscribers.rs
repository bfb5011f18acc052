//! Subscriber lists of a client, consent, double opt-in, one-click
//! unsubscribe, data export and erasure, and newsletter campaigns.
//!
//! A public subscription records the consent (time, text and its version,
//! source page, IP) and queues a confirmation email; the subscriber becomes
//! `active` only through the signed confirm link. Every newsletter carries a
//! signed unsubscribe link and the RFC 8058 one-click headers.
use anyhow::Context;
use chrono::{DateTime, Utc};
use entity::{campaign, client, email_delivery, subscriber, subscriber_list};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clients::find_client;
use crate::domain::answers::valid_email;
use crate::domain::attributes::Attributes;
use crate::domain::segment_filter::SegmentFilter;
use crate::email::links::Purpose;
use crate::email::{Brand, NewDelivery, enqueue, render::render};
use crate::error::{AppError, AppResult, FieldError};
use crate::page::{Page, PageParams};
use crate::{Perm, RequestCtx, Services, new_id, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ListView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub consent_text: String,
    pub consent_version: i32,
    /// Origins allowed to call the public subscribe endpoint from a browser.
    pub allowed_origins: Vec<String>,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(ListView);

impl From<subscriber_list::Model> for ListView {
    fn from(m: subscriber_list::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            name: m.name,
            consent_text: m.consent_text,
            consent_version: m.consent_version,
            allowed_origins: serde_json::from_value(m.allowed_origins).unwrap_or_default(),
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct ListInput {
    pub name: String,
    /// What a subscriber agrees to; a changed text gets a new version.
    pub consent_text: String,
    #[serde(default)]
    #[graphql(default)]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SubscriberView {
    pub id: Uuid,
    pub list_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub locale: String,
    /// `pending`, `active`, `unsubscribed` or `bounced`.
    pub status: String,
    pub consent_at: DateTime<Utc>,
    pub consent_version: i32,
    pub consent_text: String,
    /// The page or import the consent came from.
    pub consent_source: String,
    pub consent_ip: Option<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
    /// What the subscriber told about themselves (string, number or
    /// string-array values), matched by a campaign's segment.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(SubscriberView);

impl From<subscriber::Model> for SubscriberView {
    fn from(m: subscriber::Model) -> Self {
        Self {
            id: m.id,
            list_id: m.list_id,
            email: m.email,
            name: m.name,
            locale: m.locale,
            status: m.status,
            consent_at: m.consent_at,
            consent_version: m.consent_version,
            consent_text: m.consent_text,
            consent_source: m.consent_source,
            consent_ip: m.consent_ip,
            confirmed_at: m.confirmed_at,
            unsubscribed_at: m.unsubscribed_at,
            attributes: m.attributes,
            created_at: m.created_at,
        }
    }
}

/// A public subscription, as a client's site posts it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscribeInput {
    pub email: String,
    #[serde(default)]
    pub name: Option<String>,
    /// `ru` or `en` (default: the client's).
    #[serde(default)]
    pub locale: Option<String>,
    /// Must be true: the person ticked the consent box.
    pub consent: bool,
    /// The consent text version the form showed (default: the list's current).
    #[serde(default)]
    pub consent_version: Option<i32>,
    /// The page the form is on.
    #[serde(default)]
    pub source_page: Option<String>,
    /// About the subscriber, for segments: keys like `city`, values a
    /// string, a number or an array of strings (at most 50 keys).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
}

/// What everyone learns from a subscribe call (nothing about whether the
/// address was known).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubscribeAccepted {
    pub status: String,
}

/// All data kept about one subscriber (GDPR / 152-FZ access request).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SubscriberExport {
    pub subscriber: SubscriberView,
    pub list: ListView,
    /// Every email sent or queued to the address for this client.
    pub emails: Vec<crate::email::DeliveryView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CampaignView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub list_id: Uuid,
    /// Only the list's subscribers in this saved segment get it.
    pub segment_id: Option<Uuid>,
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// `draft`, `scheduled`, `sending`, `sent` or `cancelled`.
    pub status: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    /// Recipients (the list's active subscribers in the segment, if any),
    /// counted once every copy is queued.
    pub total: i64,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(CampaignView);

impl From<campaign::Model> for CampaignView {
    fn from(m: campaign::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            list_id: m.list_id,
            segment_id: m.segment_id,
            name: m.name,
            subject: m.subject,
            html: m.html,
            text: m.text,
            status: m.status,
            scheduled_at: m.scheduled_at,
            started_at: m.started_at,
            total: m.total,
            created_at: m.created_at,
        }
    }
}

/// A newsletter; `subject`, `html` and `text` are templates with
/// `{{ subscriber.name }}`, `{{ subscriber.email }}`, `{{ list }}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub list_id: Uuid,
    /// A saved segment of the same client: of the list's active
    /// subscribers, only those whose attributes match it get the campaign.
    #[serde(default)]
    pub segment_id: Option<Uuid>,
    pub name: String,
    pub subject: String,
    pub html: String,
    pub text: String,
}

/// Progress and delivery figures of a campaign.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CampaignStats {
    pub campaign_id: Uuid,
    pub status: String,
    pub total: i64,
    pub queued: i64,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Subscribers of the list who unsubscribed since it started.
    pub unsubscribed: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSendInput {
    /// At most 10 addresses.
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// When to start sending (RFC 3339, in the future).
    pub at: DateTime<Utc>,
}

fn check_list(input: &ListInput) -> AppResult<()> {
    let mut errs = Vec::new();
    let n = input.name.trim().chars().count();
    if n == 0 || n > 200 {
        errs.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let c = input.consent_text.trim().chars().count();
    if c == 0 || c > 5_000 {
        errs.push(FieldError::new(
            "consent_text",
            "must be 1 to 5000 characters",
        ));
    }
    if input.allowed_origins.len() > 20 {
        errs.push(FieldError::new("allowed_origins", "at most 20 origins"));
    }
    for (i, o) in input.allowed_origins.iter().enumerate() {
        let ok = (o.starts_with("https://") || o.starts_with("http://"))
            && !o.ends_with('/')
            && o.len() <= 200
            && !o.contains(char::is_whitespace);
        if !ok {
            errs.push(FieldError::new(
                format!("allowed_origins[{i}]"),
                "must be an origin such as https://example.com (no path)",
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

fn check_campaign(input: &CampaignInput) -> AppResult<()> {
    let mut errs = Vec::new();
    for (field, v, max) in [
        ("name", &input.name, 200),
        ("subject", &input.subject, 300),
        ("html", &input.html, 500_000),
        ("text", &input.text, 200_000),
    ] {
        let n = v.trim().chars().count();
        if n == 0 || n > max {
            errs.push(FieldError::new(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
    }
    // Templates must compile before anything is sent.
    let env = minijinja::Environment::new();
    for (field, v) in [
        ("subject", &input.subject),
        ("html", &input.html),
        ("text", &input.text),
    ] {
        if let Err(e) = env.template_from_str(v) {
            errs.push(FieldError::new(field, format!("template error: {e}")));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

async fn find_list<C: sea_orm::ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<subscriber_list::Model> {
    subscriber_list::Entity::find_by_id(id)
        .filter(subscriber_list::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

impl Services {
    pub async fn create_list(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: ListInput,
    ) -> AppResult<ListView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::ManageClients)?;
        check_list(&input)?;
        let t = now();
        Ok(subscriber_list::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            name: Set(input.name.trim().to_owned()),
            consent_text: Set(input.consent_text.trim().to_owned()),
            consent_version: Set(1),
            allowed_origins: Set(serde_json::json!(input.allowed_origins)),
            created_at: Set(t),
            updated_at: Set(t),
        }
        .insert(&self.db)
        .await?
        .into())
    }

    pub async fn list_lists(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<ListView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let q = subscriber_list::Entity::find()
            .filter(subscriber_list::Column::AgencyId.eq(ctx.agency_id))
            .filter(subscriber_list::Column::ClientId.eq(client_id));
        page.parse()?
            .fetch(q, subscriber_list::Column::Id, &self.db, ListView::from)
            .await
    }

    pub async fn get_list(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ListView> {
        let l = find_list(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        Ok(l.into())
    }

    /// Changes a list; a new consent text gets the next version (subscribers
    /// keep the version and text they agreed to).
    pub async fn update_list(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: ListInput,
    ) -> AppResult<ListView> {
        let l = find_list(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::ManageClients)?;
        check_list(&input)?;
        let version = if l.consent_text == input.consent_text.trim() {
            l.consent_version
        } else {
            l.consent_version + 1
        };
        let mut a: subscriber_list::ActiveModel = l.into();
        a.name = Set(input.name.trim().to_owned());
        a.consent_text = Set(input.consent_text.trim().to_owned());
        a.consent_version = Set(version);
        a.allowed_origins = Set(serde_json::json!(input.allowed_origins));
        a.updated_at = Set(now());
        Ok(a.update(&self.db).await?.into())
    }

    pub async fn list_subscribers(
        &self,
        ctx: &RequestCtx,
        list_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<SubscriberView>> {
        find_list(&self.db, ctx.agency_id, list_id).await?;
        ctx.require(Perm::Read)?;
        let q = subscriber::Entity::find()
            .filter(subscriber::Column::AgencyId.eq(ctx.agency_id))
            .filter(subscriber::Column::ListId.eq(list_id));
        page.parse()?
            .fetch(q, subscriber::Column::Id, &self.db, SubscriberView::from)
            .await
    }

    /// The origins a list accepts browser calls from (for CORS), or 404.
    pub async fn list_origins(&self, list_id: Uuid) -> AppResult<Vec<String>> {
        let l = subscriber_list::Entity::find_by_id(list_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok(serde_json::from_value(l.allowed_origins).unwrap_or_default())
    }

    /// Public: records the consent and queues the confirmation email. Says
    /// the same whether or not the address was already subscribed.
    pub async fn subscribe(
        &self,
        list_id: Uuid,
        input: SubscribeInput,
        ip: Option<String>,
    ) -> AppResult<SubscribeAccepted> {
        let list = subscriber_list::Entity::find_by_id(list_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let mut errs = Vec::new();
        let email = input.email.trim().to_lowercase();
        if !valid_email(&email) {
            errs.push(FieldError::new("email", "is not an email address"));
        }
        if !input.consent {
            errs.push(FieldError::new(
                "consent",
                "must be true: consent is required",
            ));
        }
        if input
            .consent_version
            .is_some_and(|v| v != list.consent_version)
        {
            errs.push(FieldError::new(
                "consent_version",
                format!(
                    "the current consent text is version {}",
                    list.consent_version
                ),
            ));
        }
        if let Some(l) = &input.locale
            && l != "ru"
            && l != "en"
        {
            errs.push(FieldError::new("locale", "must be ru or en"));
        }
        if input.name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            errs.push(FieldError::new("name", "at most 200 characters"));
        }
        if input.source_page.as_ref().is_some_and(|p| p.len() > 2_000) {
            errs.push(FieldError::new("source_page", "at most 2000 characters"));
        }
        let attributes = match input
            .attributes
            .as_ref()
            .map(|a| Attributes::parse("attributes", a))
        {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(e)) => {
                errs.extend(e);
                None
            }
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let client = find_client(&self.db, list.agency_id, list.client_id).await?;
        let existing = subscriber::Entity::find()
            .filter(subscriber::Column::AgencyId.eq(list.agency_id))
            .filter(subscriber::Column::ListId.eq(list.id))
            .filter(subscriber::Column::Email.eq(email.clone()))
            .one(&self.db)
            .await?;
        let t = now();
        let sub = match existing {
            // Already confirmed: nothing to do, nothing to reveal.
            Some(s) if s.status == "active" => {
                return Ok(SubscribeAccepted {
                    status: "accepted".into(),
                });
            }
            // Pending, unsubscribed or bounced: a new consent, a new confirmation.
            Some(s) => {
                let mut a: subscriber::ActiveModel = s.into();
                a.status = Set("pending".into());
                a.consent_at = Set(t);
                a.consent_version = Set(list.consent_version);
                a.consent_text = Set(list.consent_text.clone());
                a.consent_source = Set(input.source_page.clone().unwrap_or_default());
                a.consent_ip = Set(ip.clone());
                a.unsubscribed_at = Set(None);
                if let Some(attrs) = &attributes {
                    a.attributes = Set(attrs.to_value());
                }
                a.updated_at = Set(t);
                a.update(&self.db).await?
            }
            None => {
                let inserted = subscriber::Entity::insert(subscriber::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(list.agency_id),
                    client_id: Set(list.client_id),
                    list_id: Set(list.id),
                    email: Set(email.clone()),
                    name: Set(input.name.clone().filter(|n| !n.trim().is_empty())),
                    locale: Set(input.locale.clone().unwrap_or(client.locale.clone())),
                    status: Set("pending".into()),
                    consent_at: Set(t),
                    consent_version: Set(list.consent_version),
                    consent_text: Set(list.consent_text.clone()),
                    consent_source: Set(input.source_page.clone().unwrap_or_default()),
                    consent_ip: Set(ip.clone()),
                    confirmed_at: Set(None),
                    unsubscribed_at: Set(None),
                    attributes: Set(attributes.unwrap_or_default().to_value()),
                    created_at: Set(t),
                    updated_at: Set(t),
                })
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([
                        subscriber::Column::AgencyId,
                        subscriber::Column::ListId,
                        subscriber::Column::Email,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&self.db)
                .await;
                match inserted {
                    Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
                    Err(e) => return Err(e.into()),
                }
                subscriber::Entity::find()
                    .filter(subscriber::Column::AgencyId.eq(list.agency_id))
                    .filter(subscriber::Column::ListId.eq(list.id))
                    .filter(subscriber::Column::Email.eq(email.clone()))
                    .one(&self.db)
                    .await?
                    .ok_or(AppError::NotFound)?
            }
        };
        let agency = entity::agency::Entity::find_by_id(list.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let rendered = render(
            "confirm",
            &sub.locale,
            &Brand::of_agency(&agency),
            serde_json::json!({
                "list": list.name,
                "confirm_url": self.links.url(Purpose::Confirm, sub.id),
                "consent_text": list.consent_text,
            }),
        )?;
        // At most one confirmation per subscriber and consent.
        let n = enqueue(
            &self.db,
            vec![NewDelivery {
                agency_id: list.agency_id,
                client_id: Some(list.client_id),
                kind: "confirm".into(),
                source_id: Some(sub.id),
                recipient: sub.email.clone(),
                dedupe_key: format!("confirm:{}:{}", sub.id, sub.consent_at.timestamp_millis()),
                rendered,
                headers: vec![],
                inline: vec![],
            }],
        )
        .await?;
        if n > 0 {
            self.wake_mailer(list.agency_id).await;
        }
        Ok(SubscribeAccepted {
            status: "accepted".into(),
        })
    }

    /// Public: the confirm link. Idempotent; a forged token is refused.
    pub async fn confirm_subscription(&self, token: &str) -> AppResult<SubscriberView> {
        let id = self
            .links
            .verify(Purpose::Confirm, token)
            .ok_or_else(|| AppError::field("token", "is not a valid confirmation link"))?;
        let s = subscriber::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        if s.status == "pending" {
            subscriber::Entity::update_many()
                .col_expr(subscriber::Column::Status, Expr::value("active"))
                .col_expr(subscriber::Column::ConfirmedAt, Expr::value(now()))
                .col_expr(subscriber::Column::UpdatedAt, Expr::value(now()))
                .filter(subscriber::Column::Id.eq(id))
                .filter(subscriber::Column::Status.eq("pending"))
                .exec(&self.db)
                .await?;
        }
        Ok(subscriber::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?
            .into())
    }

    /// Public: one-click unsubscribe. Idempotent; a forged token is refused.
    pub async fn unsubscribe(&self, token: &str) -> AppResult<SubscriberView> {
        let id = self
            .links
            .verify(Purpose::Unsubscribe, token)
            .ok_or_else(|| AppError::field("token", "is not a valid unsubscribe link"))?;
        subscriber::Entity::update_many()
            .col_expr(subscriber::Column::Status, Expr::value("unsubscribed"))
            .col_expr(subscriber::Column::UnsubscribedAt, Expr::value(now()))
            .col_expr(subscriber::Column::UpdatedAt, Expr::value(now()))
            .filter(subscriber::Column::Id.eq(id))
            .filter(subscriber::Column::Status.ne("unsubscribed"))
            .exec(&self.db)
            .await?;
        // Newsletters not sent yet are not sent.
        email_delivery::Entity::update_many()
            .col_expr(email_delivery::Column::Status, Expr::value("cancelled"))
            .filter(email_delivery::Column::Kind.eq("newsletter"))
            .filter(email_delivery::Column::DedupeKey.like(format!("newsletter:%:{id}")))
            .filter(email_delivery::Column::Status.is_in(["queued", "deferred"]))
            .exec(&self.db)
            .await?;
        Ok(subscriber::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?
            .into())
    }

    async fn find_subscriber(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<subscriber::Model> {
        subscriber::Entity::find_by_id(id)
            .filter(subscriber::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// Everything kept about a subscriber.
    pub async fn export_subscriber(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<SubscriberExport> {
        let s = self.find_subscriber(ctx, id).await?;
        ctx.require(Perm::Admin)?;
        let list = find_list(&self.db, ctx.agency_id, s.list_id).await?;
        let emails = email_delivery::Entity::find()
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id))
            .filter(email_delivery::Column::ClientId.eq(s.client_id))
            .filter(email_delivery::Column::Recipient.eq(s.email.clone()))
            .order_by_asc(email_delivery::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(SubscriberExport {
            subscriber: s.into(),
            list: list.into(),
            emails,
        })
    }

    /// Erases a subscriber: the row goes, and the address and message bodies
    /// of their emails are blanked (delivery counts stay).
    pub async fn erase_subscriber(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let s = self.find_subscriber(ctx, id).await?;
        ctx.require(Perm::Admin)?;
        let txn = crate::db::begin_write(&self.db).await?;
        email_delivery::Entity::update_many()
            .col_expr(email_delivery::Column::Recipient, Expr::value("erased"))
            .col_expr(
                email_delivery::Column::Body,
                Expr::value(serde_json::json!({"html": "", "text": ""})),
            )
            .col_expr(email_delivery::Column::Subject, Expr::value(""))
            .col_expr(
                email_delivery::Column::Status,
                Expr::cust(
                    "CASE WHEN status IN ('queued','deferred') THEN 'cancelled' ELSE status END",
                ),
            )
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id))
            .filter(email_delivery::Column::ClientId.eq(s.client_id))
            .filter(email_delivery::Column::Recipient.eq(s.email.clone()))
            .exec(&txn)
            .await?;
        subscriber::Entity::delete_many()
            .filter(subscriber::Column::AgencyId.eq(ctx.agency_id))
            .filter(subscriber::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Imports existing subscribers (CSV header `email,name,locale,consent_at,consent_source`)
    /// as active, with the consent they gave elsewhere; every other column
    /// is an attribute (a number, a `;`-separated list or a string; empty
    /// cells are left out). All or nothing.
    pub async fn import_subscribers(
        &self,
        ctx: &RequestCtx,
        list_id: Uuid,
        csv_body: &[u8],
    ) -> AppResult<crate::responses::IngestResult> {
        let list = find_list(&self.db, ctx.agency_id, list_id).await?;
        ctx.require(Perm::ManageClients)?;
        let client_locale = find_client(&self.db, ctx.agency_id, list.client_id)
            .await?
            .locale;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(csv_body);
        let headers = reader
            .headers()
            .map_err(|e| AppError::field("header", format!("unreadable CSV: {e}")))?
            .clone();
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(ie), Some(is)) = (col("email"), col("consent_source")) else {
            return Err(AppError::field(
                "header",
                "needs the columns email and consent_source",
            ));
        };
        let (iname, ilocale, iat) = (col("name"), col("locale"), col("consent_at"));
        let mut errs = Vec::new();
        let extra: Vec<(usize, String)> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (i, h.trim().to_owned()))
            .filter(|(_, h)| !RESERVED_COLUMNS.contains(&h.as_str()))
            .collect();
        for (_, h) in &extra {
            if !crate::domain::questions::valid_key(h) {
                errs.push(FieldError::new(
                    "header",
                    format!("column '{h}': attribute names are lower-case letters, digits and _, starting with a letter"),
                ));
            }
        }
        if extra.len() > crate::domain::attributes::MAX_KEYS {
            errs.push(FieldError::new("header", "at most 50 attribute columns"));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let mut rows = Vec::new();
        let t = now();
        for (i, rec) in reader.records().enumerate() {
            let row = i + 1;
            let rec = match rec {
                Ok(r) => r,
                Err(e) => {
                    errs.push(FieldError::new("row", format!("malformed CSV: {e}")).at_row(row));
                    continue;
                }
            };
            let email = rec.get(ie).unwrap_or("").trim().to_lowercase();
            if !valid_email(&email) {
                errs.push(FieldError::new("email", "is not an email address").at_row(row));
            }
            let source = rec.get(is).unwrap_or("").trim().to_owned();
            if source.is_empty() {
                errs.push(FieldError::new("consent_source", "is required").at_row(row));
            }
            let locale = iloc(&rec, ilocale).unwrap_or_else(|| client_locale.clone());
            if locale != "ru" && locale != "en" {
                errs.push(FieldError::new("locale", "must be ru or en").at_row(row));
            }
            let at = match iat
                .and_then(|i| rec.get(i))
                .filter(|s| !s.trim().is_empty())
            {
                None => t,
                Some(s) => match DateTime::parse_from_rfc3339(s.trim()) {
                    Ok(d) => d.with_timezone(&Utc),
                    Err(_) => {
                        errs.push(FieldError::new("consent_at", "must be RFC 3339").at_row(row));
                        t
                    }
                },
            };
            let name = iname
                .and_then(|i| rec.get(i))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            let cells: serde_json::Map<String, serde_json::Value> = extra
                .iter()
                .filter_map(|(i, h)| {
                    let v = rec.get(*i)?.trim();
                    (!v.is_empty()).then(|| (h.clone(), Attributes::cell(v)))
                })
                .collect();
            let attributes =
                match Attributes::parse("attributes", &serde_json::Value::Object(cells)) {
                    Ok(a) => a,
                    Err(e) => {
                        errs.extend(e.into_iter().map(|f| {
                            FieldError::new(f.field.trim_start_matches("attributes."), f.message)
                                .at_row(row)
                        }));
                        Attributes::default()
                    }
                };
            rows.push(subscriber::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                client_id: Set(list.client_id),
                list_id: Set(list.id),
                email: Set(email),
                name: Set(name),
                locale: Set(locale),
                status: Set("active".into()),
                consent_at: Set(at),
                consent_version: Set(list.consent_version),
                consent_text: Set(list.consent_text.clone()),
                consent_source: Set(format!("import: {source}")),
                consent_ip: Set(None),
                confirmed_at: Set(Some(at)),
                unsubscribed_at: Set(None),
                attributes: Set(attributes.to_value()),
                created_at: Set(t),
                updated_at: Set(t),
            });
            if errs.len() >= crate::domain::import::MAX_REPORTED_ERRORS {
                break;
            }
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let received = rows.len() as u64;
        let txn = crate::db::begin_write(&self.db).await?;
        let mut inserted = 0;
        for chunk in rows.chunks(500) {
            let res = subscriber::Entity::insert_many(chunk.to_vec())
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([
                        subscriber::Column::AgencyId,
                        subscriber::Column::ListId,
                        subscriber::Column::Email,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_without_returning(&txn)
                .await;
            inserted += match res {
                Ok(n) => n,
                Err(sea_orm::DbErr::RecordNotInserted) => 0,
                Err(e) => return Err(e.into()),
            };
        }
        txn.commit().await?;
        Ok(crate::responses::IngestResult {
            received,
            inserted,
            duplicates: received - inserted,
            data_version: 0,
        })
    }

    // ------------------------------------------------------ campaigns ---

    async fn find_campaign(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<campaign::Model> {
        campaign::Entity::find_by_id(id)
            .filter(campaign::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    pub async fn create_campaign(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: CampaignInput,
    ) -> AppResult<CampaignView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::ManageClients)?;
        check_campaign(&input)?;
        let list = find_list(&self.db, ctx.agency_id, input.list_id)
            .await
            .map_err(|_| AppError::field("list_id", "no such list of this client"))?;
        if list.client_id != client_id {
            return Err(AppError::field("list_id", "no such list of this client"));
        }
        if let Some(s) = input.segment_id {
            // Another agency's segment does not exist; another client's is a
            // wrong reference.
            let seg = self.find_segment(ctx, s).await?;
            if seg.client_id != client_id {
                return Err(AppError::field(
                    "segment_id",
                    "is a segment of another client",
                ));
            }
        }
        let t = now();
        Ok(campaign::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            list_id: Set(list.id),
            segment_id: Set(input.segment_id),
            name: Set(input.name.trim().to_owned()),
            subject: Set(input.subject),
            html: Set(input.html),
            text: Set(input.text),
            status: Set("draft".into()),
            scheduled_at: Set(None),
            started_at: Set(None),
            finished_at: Set(None),
            total: Set(0),
            created_at: Set(t),
            updated_at: Set(t),
        }
        .insert(&self.db)
        .await?
        .into())
    }

    pub async fn list_campaigns(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<CampaignView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let q = campaign::Entity::find()
            .filter(campaign::Column::AgencyId.eq(ctx.agency_id))
            .filter(campaign::Column::ClientId.eq(client_id));
        page.parse()?
            .fetch(q, campaign::Column::Id, &self.db, CampaignView::from)
            .await
    }

    pub async fn get_campaign(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<CampaignView> {
        let c = self.find_campaign(ctx, id).await?;
        ctx.require(Perm::Read)?;
        Ok(c.into())
    }

    /// Sends the campaign now (or at `at`): the worker turns it into one
    /// delivery per active subscriber.
    pub async fn send_campaign(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        at: Option<DateTime<Utc>>,
    ) -> AppResult<CampaignView> {
        let c = self.find_campaign(ctx, id).await?;
        ctx.require(Perm::ManageClients)?;
        if c.status != "draft" && c.status != "scheduled" {
            return Err(AppError::Conflict(format!("the campaign is {}", c.status)));
        }
        if let Some(at) = at
            && at <= now()
        {
            return Err(AppError::field("at", "must be in the future"));
        }
        let mut a: campaign::ActiveModel = c.into();
        a.status = Set(if at.is_some() { "scheduled" } else { "sending" }.into());
        a.scheduled_at = Set(Some(at.unwrap_or_else(now)));
        a.updated_at = Set(now());
        let c = a.update(&self.db).await?;
        if at.is_none() {
            self.wake_mailer(ctx.agency_id).await;
        }
        Ok(c.into())
    }

    /// Stops a scheduled or running campaign: what is not sent yet is not.
    pub async fn cancel_campaign(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<CampaignView> {
        let c = self.find_campaign(ctx, id).await?;
        ctx.require(Perm::ManageClients)?;
        if !["draft", "scheduled", "sending"].contains(&c.status.as_str()) {
            return Err(AppError::Conflict(format!("the campaign is {}", c.status)));
        }
        let txn = crate::db::begin_write(&self.db).await?;
        campaign::Entity::update_many()
            .col_expr(campaign::Column::Status, Expr::value("cancelled"))
            .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
            .filter(campaign::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        email_delivery::Entity::update_many()
            .col_expr(email_delivery::Column::Status, Expr::value("cancelled"))
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id))
            .filter(email_delivery::Column::Kind.eq("newsletter"))
            .filter(email_delivery::Column::SourceId.eq(id))
            .filter(email_delivery::Column::Status.is_in(["queued", "deferred"]))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.get_campaign(ctx, id).await
    }

    /// Sends the campaign to a few addresses now, marked as a test.
    pub async fn test_send_campaign(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: TestSendInput,
    ) -> AppResult<Vec<crate::email::DeliveryView>> {
        let c = self.find_campaign(ctx, id).await?;
        ctx.require(Perm::ManageClients)?;
        if input.emails.is_empty() || input.emails.len() > 10 {
            return Err(AppError::field("emails", "give 1 to 10 addresses"));
        }
        let errs: Vec<FieldError> = input
            .emails
            .iter()
            .enumerate()
            .filter(|(_, e)| !valid_email(e))
            .map(|(i, _)| FieldError::new(format!("emails[{i}]"), "is not an email address"))
            .collect();
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let (list, client, brand) = self.campaign_context(&c).await?;
        let nonce = Uuid::new_v4().simple().to_string();
        let mut items = Vec::new();
        for email in &input.emails {
            let fake = subscriber::Model {
                id: Uuid::nil(),
                agency_id: c.agency_id,
                client_id: c.client_id,
                list_id: c.list_id,
                email: email.clone(),
                name: None,
                locale: client.locale.clone(),
                status: "test".into(),
                consent_at: now(),
                consent_version: 0,
                consent_text: String::new(),
                consent_source: "test".into(),
                consent_ip: None,
                confirmed_at: None,
                unsubscribed_at: None,
                attributes: serde_json::json!({}),
                created_at: now(),
                updated_at: now(),
            };
            let mut d = self.newsletter_delivery(&c, &list, &brand, &fake)?;
            d.kind = "newsletter_test".into();
            d.rendered.subject = format!("[TEST] {}", d.rendered.subject);
            d.dedupe_key = format!("newsletter_test:{}:{nonce}:{email}", c.id);
            items.push(d);
        }
        enqueue(&self.db, items).await?;
        self.wake_mailer(ctx.agency_id).await;
        Ok(email_delivery::Entity::find()
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id))
            .filter(
                email_delivery::Column::DedupeKey
                    .like(format!("newsletter_test:{}:{nonce}:%", c.id)),
            )
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn campaign_stats(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<CampaignStats> {
        self.find_campaign(ctx, id).await?;
        ctx.require(Perm::Read)?;
        self.campaign_stats_many(ctx, &[id])
            .await?
            .pop()
            .ok_or(AppError::NotFound)
    }

    /// The stats of several campaigns of the caller's agency in three
    /// queries (the GraphQL loader's batch); unknown ids are left out.
    pub async fn campaign_stats_many(
        &self,
        ctx: &RequestCtx,
        ids: &[Uuid],
    ) -> AppResult<Vec<CampaignStats>> {
        ctx.require(Perm::Read)?;
        let campaigns = campaign::Entity::find()
            .filter(campaign::Column::AgencyId.eq(ctx.agency_id))
            .filter(campaign::Column::Id.is_in(ids.to_vec()))
            .all(&self.db)
            .await?;
        if campaigns.is_empty() {
            return Ok(vec![]);
        }
        let counts: Vec<(Option<Uuid>, String, i64)> = email_delivery::Entity::find()
            .filter(email_delivery::Column::AgencyId.eq(ctx.agency_id))
            .filter(email_delivery::Column::Kind.eq("newsletter"))
            .filter(email_delivery::Column::SourceId.is_in(campaigns.iter().map(|c| c.id)))
            .select_only()
            .column(email_delivery::Column::SourceId)
            .column(email_delivery::Column::Status)
            .column_as(email_delivery::Column::Id.count(), "n")
            .group_by(email_delivery::Column::SourceId)
            .group_by(email_delivery::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        // Unsubscribe times of the lists concerned, to count per campaign.
        let started: Vec<Uuid> = campaigns
            .iter()
            .filter(|c| c.started_at.is_some())
            .map(|c| c.list_id)
            .collect();
        let gone: Vec<(Uuid, Option<DateTime<Utc>>)> = if started.is_empty() {
            vec![]
        } else {
            subscriber::Entity::find()
                .filter(subscriber::Column::AgencyId.eq(ctx.agency_id))
                .filter(subscriber::Column::ListId.is_in(started))
                .filter(subscriber::Column::UnsubscribedAt.is_not_null())
                .select_only()
                .column(subscriber::Column::ListId)
                .column(subscriber::Column::UnsubscribedAt)
                .into_tuple()
                .all(&self.db)
                .await?
        };
        Ok(campaigns
            .into_iter()
            .map(|c| {
                let get = |s: &str| {
                    counts
                        .iter()
                        .find(|(id, k, _)| *id == Some(c.id) && k == s)
                        .map(|(_, _, n)| *n)
                        .unwrap_or(0)
                };
                let unsubscribed = match c.started_at {
                    None => 0,
                    Some(t) => gone
                        .iter()
                        .filter(|(l, at)| *l == c.list_id && at.is_some_and(|at| at >= t))
                        .count() as i64,
                };
                let open = get("queued") + get("deferred");
                let status = if c.status == "sending" && c.finished_at.is_some() && open == 0 {
                    "sent".to_owned()
                } else {
                    c.status.clone()
                };
                CampaignStats {
                    campaign_id: c.id,
                    status,
                    total: c.total,
                    queued: get("queued"),
                    sent: get("sent"),
                    deferred: get("deferred"),
                    failed: get("failed"),
                    cancelled: get("cancelled"),
                    unsubscribed,
                }
            })
            .collect())
    }

    /// Lists of the caller's agency by id (the GraphQL loader's batch).
    pub async fn lists_by_ids(&self, ctx: &RequestCtx, ids: &[Uuid]) -> AppResult<Vec<ListView>> {
        ctx.require(Perm::Read)?;
        Ok(subscriber_list::Entity::find()
            .filter(subscriber_list::Column::AgencyId.eq(ctx.agency_id))
            .filter(subscriber_list::Column::Id.is_in(ids.to_vec()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    async fn campaign_context(
        &self,
        c: &campaign::Model,
    ) -> AppResult<(subscriber_list::Model, client::Model, Brand)> {
        let list = find_list(&self.db, c.agency_id, c.list_id).await?;
        let client = find_client(&self.db, c.agency_id, c.client_id).await?;
        let agency = entity::agency::Entity::find_by_id(c.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        Ok((list, client, Brand::of_agency(&agency)))
    }

    /// One subscriber's copy, personalised, with the one-click unsubscribe
    /// link and headers (RFC 8058).
    fn newsletter_delivery(
        &self,
        c: &campaign::Model,
        list: &subscriber_list::Model,
        brand: &Brand,
        s: &subscriber::Model,
    ) -> AppResult<NewDelivery> {
        let env = crate::email::render::env();
        let fail =
            |e: minijinja::Error| AppError::Unexpected(anyhow::anyhow!("campaign {}: {e:#}", c.id));
        let vars = serde_json::json!({
            "subscriber": {"email": s.email, "name": s.name.clone().unwrap_or_default(), "attributes": s.attributes},
            "list": list.name,
        });
        let subject = env.render_str(&c.subject, &vars).map_err(fail)?;
        let body_html = env
            .template_from_named_str("campaign.html", &c.html)
            .and_then(|t| t.render(&vars))
            .map_err(fail)?;
        let body_text = env.render_str(&c.text, &vars).map_err(fail)?;
        let unsubscribe_url = self.links.url(Purpose::Unsubscribe, s.id);
        let rendered = render(
            "newsletter",
            &s.locale,
            brand,
            serde_json::json!({
                "list": list.name,
                "subject": subject,
                "body_html": body_html,
                "body_text": body_text,
                "unsubscribe_url": unsubscribe_url,
            }),
        )?;
        Ok(NewDelivery {
            agency_id: c.agency_id,
            client_id: Some(c.client_id),
            kind: "newsletter".into(),
            source_id: Some(c.id),
            recipient: s.email.clone(),
            dedupe_key: format!("newsletter:{}:{}", c.id, s.id),
            rendered: crate::email::Rendered {
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
        })
    }

    /// Worker: starts campaigns that are due, turning each into deliveries
    /// page by page (idempotent: a delivery per subscriber at most).
    pub async fn start_due_campaigns(&self) -> AppResult<usize> {
        // Scheduled ones whose time came are sending from now on.
        campaign::Entity::update_many()
            .col_expr(campaign::Column::Status, Expr::value("sending"))
            .filter(campaign::Column::Status.eq("scheduled"))
            .filter(campaign::Column::ScheduledAt.lte(now()))
            .exec(&self.db)
            .await?;
        // Campaigns not fully queued yet whose fan-out nobody is running: never
        // started, or started by a worker that stopped (no heartbeat for two
        // minutes). The fan-out is idempotent, so a resumed one just goes on.
        let stale = now() - chrono::Duration::minutes(2);
        let due = campaign::Entity::find()
            .filter(campaign::Column::Status.eq("sending"))
            .filter(campaign::Column::FinishedAt.is_null())
            .filter(
                sea_orm::Condition::any()
                    .add(campaign::Column::StartedAt.is_null())
                    .add(campaign::Column::UpdatedAt.lt(stale)),
            )
            .limit(20)
            .all(&self.db)
            .await?;
        let mut n = 0;
        for c in due {
            // One worker per campaign: the claim only succeeds on the row as read.
            let claimed = campaign::Entity::update_many()
                .col_expr(
                    campaign::Column::StartedAt,
                    Expr::value(c.started_at.unwrap_or_else(now)),
                )
                .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
                .filter(campaign::Column::Id.eq(c.id))
                .filter(campaign::Column::UpdatedAt.eq(c.updated_at))
                .filter(campaign::Column::FinishedAt.is_null())
                .exec(&self.db)
                .await?;
            if claimed.rows_affected == 1 {
                self.fan_out(&c).await?;
                n += 1;
            }
        }
        Ok(n)
    }

    async fn fan_out(&self, c: &campaign::Model) -> AppResult<()> {
        let (list, _, brand) = self.campaign_context(c).await?;
        // Read once: the audience is the segment as it was when sending began.
        let segment: Option<SegmentFilter> = match c.segment_id {
            None => None,
            Some(id) => Some(
                crate::segments::segment_filter_of(&self.db, c.agency_id, id)
                    .await
                    .context("while reading the campaign's segment")?,
            ),
        };
        let mut after = Uuid::nil();
        let mut total = 0i64;
        loop {
            let still = campaign::Entity::find_by_id(c.id)
                .one(&self.db)
                .await?
                .is_some_and(|x| x.status == "sending");
            if !still {
                return Ok(());
            }
            let page = subscriber::Entity::find()
                .filter(subscriber::Column::AgencyId.eq(c.agency_id))
                .filter(subscriber::Column::ListId.eq(c.list_id))
                .filter(subscriber::Column::Status.eq("active"))
                .filter(subscriber::Column::Id.gt(after))
                .order_by_asc(subscriber::Column::Id)
                .limit(1_000)
                .all(&self.db)
                .await?;
            let Some(last) = page.last() else { break };
            after = last.id;
            let audience: Vec<&subscriber::Model> = page
                .iter()
                .filter(|s| {
                    segment
                        .as_ref()
                        .is_none_or(|f| Attributes::from_stored(&s.attributes).matches(f))
                })
                .collect();
            total += audience.len() as i64;
            let items = audience
                .into_iter()
                .map(|s| self.newsletter_delivery(c, &list, &brand, s))
                .collect::<AppResult<Vec<_>>>()?;
            enqueue(&self.db, items).await?;
            self.wake_mailer(c.agency_id).await;
            // Still at it: keeps other workers from taking the fan-out over.
            campaign::Entity::update_many()
                .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
                .filter(campaign::Column::Id.eq(c.id))
                .exec(&self.db)
                .await?;
        }
        // Every recipient is queued.
        campaign::Entity::update_many()
            .col_expr(campaign::Column::Total, Expr::value(total))
            .col_expr(campaign::Column::FinishedAt, Expr::value(now()))
            .col_expr(campaign::Column::UpdatedAt, Expr::value(now()))
            .filter(campaign::Column::Id.eq(c.id))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

/// The columns of a subscriber import that are not attributes.
const RESERVED_COLUMNS: [&str; 5] = ["email", "name", "locale", "consent_at", "consent_source"];

fn iloc(rec: &csv::StringRecord, i: Option<usize>) -> Option<String> {
    i.and_then(|i| rec.get(i))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}
