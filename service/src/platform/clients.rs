//! Clients: the businesses an agency serves.
use chrono::{DateTime, Utc};
use entity::{client, questionnaire, touchpoint_library};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::answers::valid_email;
use crate::domain::locale::Locale;
use crate::infra::audit::{self, Audit};
use crate::infra::cache::Invalidation;
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::digest_schedule::DigestSchedule;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Every client of an agency, per process ([`crate::infra::cache`]).
pub type ClientCache = crate::infra::cache::AgencyListCache<ClientView>;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ClientView {
    pub id: Uuid,
    pub name: String,
    pub industry: Option<String>,
    /// ISO 4217 code, e.g. `RUB`.
    pub currency: String,
    /// IANA time zone, e.g. `Europe/Moscow`.
    pub timezone: String,
    /// `ru` or `en`.
    pub locale: String,
    pub report_recipients: Vec<String>,
    /// `daily`, `weekly` (Mondays), `monthly` (the 1st) or `off`; 09:00
    /// in the client's time zone.
    #[schema(value_type = DigestSchedule)]
    pub digest_schedule: String,
    pub touchpoint_library_id: Option<Uuid>,
    /// Minimum segment size before a hypothesis can be judged.
    pub min_segment_n: i32,
    /// Open pixel and click tracking in its campaign emails.
    pub track_engagement: bool,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(ClientView);

impl From<client::Model> for ClientView {
    fn from(m: client::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            industry: m.industry,
            currency: m.currency,
            timezone: m.timezone,
            locale: m.locale,
            report_recipients: serde_json::from_value(m.report_recipients).unwrap_or_default(),
            digest_schedule: m.digest_schedule,
            touchpoint_library_id: m.touchpoint_library_id,
            min_segment_n: m.min_segment_n,
            track_engagement: m.track_engagement,
            archived_at: m.archived_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CreateClient {
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::currency_or_null)]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::timezone_or_null)]
    pub timezone: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::locale_or_null)]
    pub locale: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::recipients_or_null)]
    pub report_recipients: Option<Vec<String>>,
    /// `daily`, `weekly` (Mondays), `monthly` (the 1st) or `off`; 09:00
    /// in the client's time zone (default `weekly`).
    #[serde(default)]
    #[schema(value_type = Option<DigestSchedule>)]
    pub digest_schedule: Option<String>,
    #[serde(default)]
    pub touchpoint_library_id: Option<Uuid>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub min_segment_n: Option<i32>,
    /// Open pixel and click tracking in its campaign emails (default on).
    #[serde(default)]
    pub track_engagement: Option<bool>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdateClient {
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub name: Option<String>,
    /// An empty string clears it.
    #[serde(default)]
    pub industry: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::currency_or_null)]
    pub currency: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::timezone_or_null)]
    pub timezone: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::locale_or_null)]
    pub locale: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::recipients_or_null)]
    pub report_recipients: Option<Vec<String>>,
    /// `daily`, `weekly` (Mondays), `monthly` (the 1st) or `off`; 09:00
    /// in the client's time zone.
    #[serde(default)]
    #[schema(value_type = Option<DigestSchedule>)]
    pub digest_schedule: Option<String>,
    #[serde(default)]
    pub touchpoint_library_id: Option<Uuid>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub min_segment_n: Option<i32>,
    /// Open pixel and click tracking in its campaign emails (default on).
    #[serde(default)]
    pub track_engagement: Option<bool>,
}

fn check_name(field: &str, v: &str, errs: &mut Vec<FieldError>) {
    if !crate::domain::text::fits(v, 200) {
        errs.push(FieldError::new(field, "must be 1 to 200 characters"));
    }
}

fn check_fields(u: &UpdateClient, errs: &mut Vec<FieldError>) {
    if let Some(n) = &u.name {
        check_name("name", n, errs);
    }
    if let Some(i) = &u.industry
        && i.chars().count() > 200
    {
        errs.push(FieldError::new("industry", "at most 200 characters"));
    }
    if let Some(c) = &u.currency
        && (c.len() != 3 || !c.chars().all(|c| c.is_ascii_uppercase()))
    {
        errs.push(FieldError::new(
            "currency",
            "must be an ISO 4217 code such as RUB",
        ));
    }
    if let Some(tz) = &u.timezone
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        errs.push(FieldError::new(
            "timezone",
            "must be an IANA time zone such as Europe/Moscow",
        ));
    }
    if let Some(l) = &u.locale
        && let Err(e) = Locale::parse("locale", l)
    {
        errs.push(e);
    }
    if let Some(rs) = &u.report_recipients {
        if rs.len() > 50 {
            errs.push(FieldError::new(
                "report_recipients",
                "at most 50 recipients",
            ));
        }
        for (i, r) in rs.iter().enumerate() {
            if !valid_email(r) {
                errs.push(FieldError::new(
                    format!("report_recipients[{i}]"),
                    "is not an email address",
                ));
            }
        }
    }
    if let Some(s) = &u.digest_schedule
        && DigestSchedule::parse(s).is_none()
    {
        errs.push(FieldError::new("digest_schedule", DigestSchedule::EXPECTED));
    }
    if let Some(n) = u.min_segment_n
        && !(1..=100_000).contains(&n)
    {
        errs.push(FieldError::new("min_segment_n", "must be from 1 to 100000"));
    }
}

/// A client of the caller's agency, or 404.
pub async fn find_client<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<client::Model> {
    client::Entity::find_by_id(id)
        .filter(client::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

impl Services {
    async fn check_library(&self, agency_id: Uuid, id: Option<Uuid>) -> AppResult<()> {
        if let Some(id) = id {
            let found = touchpoint_library::Entity::find_by_id(id)
                .filter(touchpoint_library::Column::AgencyId.eq(agency_id))
                .one(&self.db)
                .await?;
            if found.is_none() {
                return Err(AppError::field(
                    "touchpoint_library_id",
                    "no such library in this agency (clone the template first)",
                ));
            }
        }
        Ok(())
    }

    pub async fn create_client(
        &self,
        ctx: &RequestCtx,
        input: CreateClient,
    ) -> AppResult<ClientView> {
        ctx.require(Perm::ManageClients)?;
        let mut errs = Vec::new();
        check_name("name", &input.name, &mut errs);
        let as_update = UpdateClient {
            name: None,
            industry: input.industry.clone(),
            currency: input.currency.clone(),
            timezone: input.timezone.clone(),
            locale: input.locale.clone(),
            report_recipients: input.report_recipients.clone(),
            digest_schedule: input.digest_schedule.clone(),
            touchpoint_library_id: input.touchpoint_library_id,
            min_segment_n: input.min_segment_n,
            track_engagement: input.track_engagement,
        };
        check_fields(&as_update, &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        self.check_library(ctx.agency_id, input.touchpoint_library_id)
            .await?;
        let t = now();
        let timezone = input.timezone.unwrap_or_else(|| "Europe/Moscow".into());
        // Checked above: an unknown name never gets here.
        let schedule = input
            .digest_schedule
            .as_deref()
            .and_then(DigestSchedule::parse)
            .unwrap_or(DigestSchedule::Weekly);
        let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Europe::Moscow);
        let next_digest_at = crate::platform::digest_schedule::next_slot_after(schedule, tz, t);
        let m = client::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            name: Set(input.name.trim().to_owned()),
            industry: Set(input.industry.filter(|s| !s.trim().is_empty())),
            currency: Set(input.currency.unwrap_or_else(|| "RUB".into())),
            timezone: Set(timezone),
            locale: Set(input.locale.unwrap_or_else(|| "ru".into())),
            report_recipients: Set(serde_json::json!(
                input.report_recipients.unwrap_or_default()
            )),
            digest_schedule: Set(schedule.as_str().to_owned()),
            next_digest_at: Set(next_digest_at),
            touchpoint_library_id: Set(input.touchpoint_library_id),
            min_segment_n: Set(input.min_segment_n.unwrap_or(30)),
            track_engagement: Set(input.track_engagement.unwrap_or(true)),
            archived_at: Set(None),
            created_at: Set(t),
            updated_at: Set(t),
        };
        let txn = begin_write(&self.db).await?;
        let view = ClientView::from(m.insert(&txn).await?);
        audit::commit(txn, ctx, Audit::create("client", view.id, &view)).await?;
        self.invalidate(Invalidation::Clients(ctx.agency_id)).await;
        Ok(view)
    }

    pub async fn list_clients(
        &self,
        ctx: &RequestCtx,
        include_archived: bool,
        page: PageParams,
    ) -> AppResult<Page<ClientView>> {
        ctx.require(Perm::Read)?;
        let page = page.parse()?;
        let all = match self.client_cache.get(ctx.agency_id) {
            Ok(all) => Some(all),
            Err(Some(ticket)) => {
                // The whole list of a small agency, cached for the next reads.
                let rows = client::Entity::find()
                    .filter(client::Column::AgencyId.eq(ctx.agency_id))
                    .order_by_asc(client::Column::Id)
                    .limit(crate::infra::cache::MAX_CACHED_CLIENTS as u64 + 1)
                    .all(&self.db)
                    .await?;
                (rows.len() <= crate::infra::cache::MAX_CACHED_CLIENTS).then(|| {
                    let all: Vec<ClientView> = rows.into_iter().map(ClientView::from).collect();
                    self.client_cache.fill(ticket, all.clone());
                    std::sync::Arc::new(all)
                })
            }
            Err(None) => None,
        };
        if let Some(all) = all {
            return Ok(page.cut(
                all.iter()
                    .filter(|c| include_archived || c.archived_at.is_none())
                    .cloned(),
            ));
        }
        let mut q = client::Entity::find().filter(client::Column::AgencyId.eq(ctx.agency_id));
        if !include_archived {
            q = q.filter(client::Column::ArchivedAt.is_null());
        }
        page.fetch(q, client::Column::Id, &self.db, ClientView::from)
            .await
    }

    pub async fn get_client(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ClientView> {
        ctx.require(Perm::Read)?;
        Ok(find_client(&self.db, ctx.agency_id, id).await?.into())
    }

    pub async fn update_client(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        u: UpdateClient,
    ) -> AppResult<ClientView> {
        // Another agency's id is "not found" whoever asks; permissions and
        // input are judged only for the caller's own resources.
        let existing = find_client(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::ManageClients)?;
        let mut errs = Vec::new();
        check_fields(&u, &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        self.check_library(ctx.agency_id, u.touchpoint_library_id)
            .await?;
        // A new schedule or time zone moves the next slot.
        let schedule = u
            .digest_schedule
            .as_ref()
            .unwrap_or(&existing.digest_schedule);
        let timezone = u.timezone.as_ref().unwrap_or(&existing.timezone);
        let next_digest_at = if *schedule != existing.digest_schedule
            || *timezone != existing.timezone
        {
            let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Europe::Moscow);
            let last =
                crate::platform::digest_schedule::last_scheduled_slot(&self.db, ctx.agency_id, id)
                    .await?;
            Some(crate::platform::digest_schedule::next_slot_on_change(
                DigestSchedule::parse(schedule).unwrap_or(DigestSchedule::Off),
                tz,
                now(),
                last,
            ))
        } else {
            None
        };
        let before = ClientView::from(existing.clone());
        let mut m: client::ActiveModel = existing.into();
        if let Some(v) = next_digest_at {
            m.next_digest_at = Set(v);
        }
        if let Some(v) = u.name {
            m.name = Set(v.trim().to_owned());
        }
        if let Some(v) = u.industry {
            m.industry = Set(Some(v).filter(|s| !s.trim().is_empty()));
        }
        if let Some(v) = u.currency {
            m.currency = Set(v);
        }
        if let Some(v) = u.timezone {
            m.timezone = Set(v);
        }
        if let Some(v) = u.locale {
            m.locale = Set(v);
        }
        if let Some(v) = u.report_recipients {
            m.report_recipients = Set(serde_json::json!(v));
        }
        if let Some(v) = u.digest_schedule {
            m.digest_schedule = Set(v);
        }
        if let Some(v) = u.touchpoint_library_id {
            m.touchpoint_library_id = Set(Some(v));
        }
        if let Some(v) = u.min_segment_n {
            m.min_segment_n = Set(v);
        }
        if let Some(v) = u.track_engagement {
            m.track_engagement = Set(v);
        }
        m.updated_at = Set(now());
        let view = ClientView::from;
        let after = view(audit::update_one(&self.db, ctx, "client", id, &before, m, view).await?);
        self.invalidate(Invalidation::Clients(ctx.agency_id)).await;
        Ok(after)
    }

    pub async fn set_client_archived(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        archived: bool,
    ) -> AppResult<ClientView> {
        let existing = find_client(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::ManageClients)?;
        let mut m: client::ActiveModel = existing.into();
        m.archived_at = Set(archived.then(now));
        m.updated_at = Set(now());
        let txn = begin_write(&self.db).await?;
        let m = m.update(&txn).await?;
        let verb = if archived { "archive" } else { "unarchive" };
        audit::commit(txn, ctx, Audit::new("client", verb, Some(id))).await?;
        self.invalidate(Invalidation::Clients(ctx.agency_id)).await;
        Ok(m.into())
    }

    /// Deletes a client that has no questionnaires; otherwise archive it.
    pub async fn delete_client(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let existing = find_client(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::ManageClients)?;
        let has_data = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
            .filter(questionnaire::Column::ClientId.eq(id))
            .one(&self.db)
            .await?
            .is_some()
            || entity::cash_model::Entity::find()
                .filter(entity::cash_model::Column::AgencyId.eq(ctx.agency_id))
                .filter(entity::cash_model::Column::ClientId.eq(id))
                .one(&self.db)
                .await?
                .is_some()
            || entity::purchase::Entity::find()
                .filter(entity::purchase::Column::AgencyId.eq(ctx.agency_id))
                .filter(entity::purchase::Column::ClientId.eq(id))
                .one(&self.db)
                .await?
                .is_some();
        if has_data {
            return Err(AppError::Conflict(
                "the client has questionnaires, Cash Journey models or purchases; archive it instead".into(),
            ));
        }
        let txn = begin_write(&self.db).await?;
        entity::choice_factor::Entity::delete_many()
            .filter(entity::choice_factor::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::choice_factor::Column::ClientId.eq(id))
            .exec(&txn)
            .await?;
        entity::segment::Entity::delete_many()
            .filter(entity::segment::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::segment::Column::ClientId.eq(id))
            .exec(&txn)
            .await?;
        entity::qfd_cell::Entity::delete_many()
            .filter(entity::qfd_cell::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::qfd_cell::Column::ClientId.eq(id))
            .exec(&txn)
            .await?;
        entity::qfd_importance::Entity::delete_many()
            .filter(entity::qfd_importance::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::qfd_importance::Column::ClientId.eq(id))
            .exec(&txn)
            .await?;
        entity::jtbd_rule_set::Entity::delete_many()
            .filter(entity::jtbd_rule_set::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::jtbd_rule_set::Column::ClientId.eq(id))
            .exec(&txn)
            .await?;
        // The client-level recompute target and its results.
        entity::recompute_target::Entity::delete_many()
            .filter(entity::recompute_target::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::recompute_target::Column::TargetId.eq(id))
            .exec(&txn)
            .await?;
        entity::snapshot::Entity::delete_many()
            .filter(entity::snapshot::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::snapshot::Column::TargetId.eq(id))
            .exec(&txn)
            .await?;
        client::Entity::delete_many()
            .filter(client::Column::AgencyId.eq(ctx.agency_id))
            .filter(client::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        let gone = ClientView::from(existing);
        audit::commit(txn, ctx, Audit::delete("client", id, &gone)).await?;
        self.invalidate(Invalidation::Clients(ctx.agency_id)).await;
        Ok(())
    }
}
