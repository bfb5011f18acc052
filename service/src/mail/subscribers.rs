//! Subscribers of a list: public subscription with recorded consent (time,
//! text and its version, source page, IP) and a confirmation email; the
//! subscriber becomes `active` only through the signed confirm link; one-click
//! unsubscribe, data export and erasure.
use chrono::{DateTime, Utc};
use entity::{email_delivery, subscriber, subscriber_list};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::answers::valid_email;
use crate::domain::attributes::Attributes;
use crate::infra::audit::{self, Actor, Audit};
use crate::infra::email::links::Purpose;
use crate::infra::email::{Brand, NewDelivery, enqueue, render::render};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

use crate::mail::lists::{ListView, find_list};

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
    #[schema(schema_with = crate::infra::docs::email)]
    pub email: String,
    /// At most 200 characters.
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_any_or_null)]
    pub name: Option<String>,
    /// `ru` or `en` (default: the client's).
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::locale_or_null)]
    pub locale: Option<String>,
    /// Must be true: the person ticked the consent box.
    #[schema(schema_with = crate::infra::docs::must_be_true)]
    pub consent: bool,
    /// The consent text version the form showed (default: the list's current).
    #[serde(default)]
    pub consent_version: Option<i32>,
    /// The page the form is on (at most 2000 characters).
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_2000_any_or_null)]
    pub source_page: Option<String>,
    /// About the subscriber, for segments: keys like `city`, values a
    /// string, a number or an array of strings (at most 50 keys).
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::attributes_or_null)]
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
    pub emails: Vec<crate::infra::email::DeliveryView>,
}

impl Services {
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
        request_id: Option<&str>,
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
        if input
            .source_page
            .as_ref()
            .is_some_and(|p| p.chars().count() > 2_000)
        {
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
        let txn = crate::infra::db::begin_write(&self.db).await?;
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
                a.update(&txn).await?
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
                    contact_id: Set(None),
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
                .exec_without_returning(&txn)
                .await;
                match inserted {
                    Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {}
                    Err(e) => return Err(e.into()),
                }
                subscriber::Entity::find()
                    .filter(subscriber::Column::AgencyId.eq(list.agency_id))
                    .filter(subscriber::Column::ListId.eq(list.id))
                    .filter(subscriber::Column::Email.eq(email.clone()))
                    .one(&txn)
                    .await?
                    .ok_or(AppError::NotFound)?
            }
        };
        // The consent, not the address: the subscriber's id names them.
        let consent =
            serde_json::json!({"list_id": list.id, "consent_version": list.consent_version});
        let a = Audit::new("subscriber", "subscribe", Some(sub.id)).with(consent);
        audit::record_as(&txn, list.agency_id, Actor::Public, request_id, a).await?;
        txn.commit().await?;
        self.sync_contacts(list.agency_id, list.client_id, Some(&email), true)
            .await?;
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
            .ok_or(AppError::NotFound)?;
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
            self.sync_contacts(s.agency_id, s.client_id, Some(&s.email), false)
                .await?;
        }
        Ok(subscriber::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?
            .into())
    }

    /// Public: one-click unsubscribe. Idempotent; a forged token is refused.
    pub async fn unsubscribe(
        &self,
        token: &str,
        request_id: Option<&str>,
    ) -> AppResult<SubscriberView> {
        let id = self
            .links
            .verify(Purpose::Unsubscribe, token)
            .ok_or(AppError::NotFound)?;
        let txn = crate::infra::db::begin_write(&self.db).await?;
        subscriber::Entity::update_many()
            .col_expr(subscriber::Column::Status, Expr::value("unsubscribed"))
            .col_expr(subscriber::Column::UnsubscribedAt, Expr::value(now()))
            .col_expr(subscriber::Column::UpdatedAt, Expr::value(now()))
            .filter(subscriber::Column::Id.eq(id))
            .filter(subscriber::Column::Status.ne("unsubscribed"))
            .exec(&txn)
            .await?;
        // Newsletters not sent yet are not sent.
        email_delivery::Entity::update_many()
            .col_expr(email_delivery::Column::Status, Expr::value("cancelled"))
            .filter(email_delivery::Column::Kind.eq("newsletter"))
            .filter(email_delivery::Column::DedupeKey.like(format!("newsletter:%:{id}")))
            .filter(email_delivery::Column::Status.is_in(["queued", "deferred"]))
            .exec(&txn)
            .await?;
        let s = subscriber::Entity::find_by_id(id)
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound)?;
        let a = Audit::new("subscriber", "unsubscribe", Some(id));
        audit::record_as(&txn, s.agency_id, Actor::Public, request_id, a).await?;
        txn.commit().await?;
        self.sync_contacts(s.agency_id, s.client_id, Some(&s.email), false)
            .await?;
        Ok(s.into())
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
        let txn = crate::infra::db::begin_write(&self.db).await?;
        crate::mail::contacts::link::erase_address(&txn, ctx.agency_id, s.client_id, &s.email)
            .await?;
        subscriber::Entity::delete_many()
            .filter(subscriber::Column::AgencyId.eq(ctx.agency_id))
            .filter(subscriber::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        // An erasure: the log keeps the id, not the address.
        let gone = serde_json::json!({"id": id, "list_id": s.list_id});
        audit::commit(
            txn,
            ctx,
            Audit::new("subscriber", "erase", Some(id)).with(gone),
        )
        .await
    }
}

crate::has_id!(SubscriberView);
