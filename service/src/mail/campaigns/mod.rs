//! Newsletter campaigns: drafts, scheduling, test sends and their stats.
//! Every newsletter carries a signed unsubscribe link and the RFC 8058
//! one-click headers.
mod send;

use chrono::{DateTime, Utc};
use entity::{campaign, email_delivery, subscriber};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::answers::valid_email;
use crate::infra::audit::{self, Audit};
use crate::infra::email::enqueue_with_ids;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

use crate::mail::lists::find_list;

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
    /// Recipients who opened it (loaded the pixel, or clicked a link: a
    /// click is an open whose images were blocked); each counted once.
    pub unique_opens: i64,
    /// Recipients who clicked a tracked link; each counted once.
    pub unique_clicks: i64,
    /// `unique_opens / sent`; null while nothing is sent.
    pub open_rate: Option<f64>,
    /// `unique_clicks / sent`; null while nothing is sent.
    pub click_rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSendInput {
    /// At most 10 addresses.
    #[schema(schema_with = crate::infra::docs::emails_1_to_10)]
    pub emails: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// When to start sending (RFC 3339, in the future).
    pub at: DateTime<Utc>,
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
        if crate::domain::nesting::template_exceeds(v, crate::domain::nesting::MAX_NESTING) {
            // The template parser recurses once per level: bounded first.
            errs.push(FieldError::new(
                field,
                crate::domain::nesting::message(crate::domain::nesting::MAX_NESTING),
            ));
        } else if let Err(e) = env.template_from_str(v) {
            errs.push(FieldError::new(field, format!("template error: {e}")));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

impl Services {
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
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let m = campaign::ActiveModel {
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
        .insert(&txn)
        .await?;
        audit::commit(txn, ctx, Audit::create("campaign", m.id, &m)).await?;
        Ok(m.into())
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
        let txn = crate::infra::db::begin_write(&self.db).await?;
        let c = a.update(&txn).await?;
        let verb = if at.is_some() { "schedule" } else { "send" };
        let a = Audit::new("campaign", verb, Some(id)).with(serde_json::json!({"at": at}));
        audit::commit(txn, ctx, a).await?;
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
        let txn = crate::infra::db::begin_write(&self.db).await?;
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
        audit::commit(txn, ctx, Audit::new("campaign", "cancel", Some(id))).await?;
        self.get_campaign(ctx, id).await
    }

    /// Sends the campaign to a few addresses now, marked as a test.
    pub async fn test_send_campaign(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: TestSendInput,
    ) -> AppResult<Vec<crate::infra::email::DeliveryView>> {
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
                contact_id: None,
                created_at: now(),
                updated_at: now(),
            };
            // Tracked like the real copies, but its hits are not recorded.
            let (id, mut d) = self.newsletter_delivery(&c, &client, &list, &brand, &fake)?;
            d.kind = "newsletter_test".into();
            d.rendered.subject = format!("[TEST] {}", d.rendered.subject);
            d.dedupe_key = format!("newsletter_test:{}:{nonce}:{email}", c.id);
            items.push((id, d));
        }
        let txn = crate::infra::db::begin_write(&self.db).await?;
        enqueue_with_ids(&txn, items).await?;
        let sent = serde_json::json!({"emails": input.emails});
        audit::commit(
            txn,
            ctx,
            Audit::new("campaign", "test", Some(id)).with(sent),
        )
        .await?;
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

    /// The campaign's clicked links with their clicks and unique clickers.
    pub async fn campaign_links(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<Vec<crate::mail::tracking::LinkClicks>> {
        self.find_campaign(ctx, id).await?;
        ctx.require(Perm::Read)?;
        crate::mail::tracking::link_clicks(&self.db, ctx.agency_id, id).await
    }

    pub async fn campaign_stats(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<CampaignStats> {
        self.find_campaign(ctx, id).await?;
        ctx.require(Perm::Read)?;
        self.campaign_stats_many(ctx, &[id])
            .await?
            .pop()
            .ok_or(AppError::NotFound)
    }

    /// The stats of several campaigns of the caller's agency in four
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
        let engagement = crate::mail::tracking::unique_engagement(
            &self.db,
            ctx.agency_id,
            &campaigns.iter().map(|c| c.id).collect::<Vec<_>>(),
        )
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
                let sent = get("sent");
                let e = engagement.get(&c.id).copied().unwrap_or_default();
                let rate = |n: i64| (sent > 0).then(|| n as f64 / sent as f64);
                CampaignStats {
                    campaign_id: c.id,
                    status,
                    total: c.total,
                    queued: get("queued"),
                    sent,
                    deferred: get("deferred"),
                    failed: get("failed"),
                    cancelled: get("cancelled"),
                    unsubscribed,
                    unique_opens: e.opens,
                    unique_clicks: e.clicks,
                    open_rate: rate(e.opens),
                    click_rate: rate(e.clicks),
                }
            })
            .collect())
    }
}

crate::has_id!(CampaignView);
