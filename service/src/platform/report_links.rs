//! Report links: per client, a signed, expiring, revocable URL to its live
//! report page (`GET /r/{token}`, rendered by `crate::report`). Owners and
//! admins create, list and revoke them; a revoked link stays listed with
//! `revoked_at`. The token is derived from the row and the link-signing key
//! (`LinkSigner::report_token`), never stored, so the list and the client's
//! digests can show the URL of every active link.
use chrono::{DateTime, Duration, Utc};
use entity::report_link;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::email::links::{LinkSigner, ReportClaim};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Days a link lives when the request does not say.
pub const DEFAULT_DAYS: i64 = 30;
/// The longest life a link may be given.
pub const MAX_DAYS: i64 = 365;
/// The longest label, in characters.
pub const MAX_LABEL: usize = 200;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ReportLinkView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub label: Option<String>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `active`, `expired` or `revoked`.
    pub status: String,
    /// The page's URL while the link is active; null once it expired or
    /// was revoked.
    pub url: Option<String>,
}
crate::has_id!(ReportLinkView);

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct ReportLinkInput {
    /// Days until the link expires, 1 to 365 (default 30).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 365)]
    pub expires_in_days: Option<i64>,
    /// A name for people, e.g. who it was sent to; at most 200 characters.
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub label: Option<String>,
}

/// A link's state at `at`.
pub fn status_of(m: &report_link::Model, at: DateTime<Utc>) -> &'static str {
    if m.revoked_at.is_some() {
        "revoked"
    } else if m.expires_at <= at {
        "expired"
    } else {
        "active"
    }
}

/// What the token of `m` carries.
pub fn claim_of(m: &report_link::Model) -> ReportClaim {
    ReportClaim {
        link_id: m.id,
        expires_at: m.expires_at.timestamp(),
    }
}

/// The page's URL of an active link.
pub fn url_of(links: &LinkSigner, m: &report_link::Model) -> String {
    links.report_url(m.agency_id, m.client_id, claim_of(m))
}

fn view(links: &LinkSigner, m: report_link::Model, at: DateTime<Utc>) -> ReportLinkView {
    let status = status_of(&m, at);
    ReportLinkView {
        url: (status == "active").then(|| url_of(links, &m)),
        status: status.to_owned(),
        id: m.id,
        client_id: m.client_id,
        label: m.label,
        expires_at: m.expires_at,
        revoked_at: m.revoked_at,
        created_at: m.created_at,
    }
}

/// The input as a label and a life, or every fault.
fn parse_input(input: &ReportLinkInput) -> AppResult<(Option<String>, i64)> {
    let mut errs = Vec::new();
    let days = input.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        errs.push(FieldError::new(
            "expires_in_days",
            format!("must be from 1 to {MAX_DAYS}"),
        ));
    }
    if let Some(l) = &input.label
        && !crate::domain::text::fits(l, MAX_LABEL)
    {
        errs.push(FieldError::new(
            "label",
            format!("must be 1 to {MAX_LABEL} characters, not blank"),
        ));
    }
    if errs.is_empty() {
        Ok((input.label.as_ref().map(|l| l.trim().to_owned()), days))
    } else {
        Err(AppError::Validation(errs))
    }
}

/// A time cut to whole seconds: what the token can carry.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The link a token names (any agency: the token is the credential), for
/// the public page; the caller checks the MAC, expiry and revocation.
pub async fn find_by_id<C: sea_orm::ConnectionTrait>(
    db: &C,
    id: Uuid,
) -> AppResult<Option<report_link::Model>> {
    Ok(report_link::Entity::find_by_id(id).one(db).await?)
}

/// The URL of `client_id`'s active link that lives longest, if any: what
/// its digests link to.
pub async fn active_url<C: sea_orm::ConnectionTrait>(
    db: &C,
    links: &LinkSigner,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Option<String>> {
    let at = now();
    let m = report_link::Entity::find()
        .filter(report_link::Column::AgencyId.eq(agency_id))
        .filter(report_link::Column::ClientId.eq(client_id))
        .filter(report_link::Column::RevokedAt.is_null())
        .filter(report_link::Column::ExpiresAt.gt(at))
        .order_by_desc(report_link::Column::ExpiresAt)
        .one(db)
        .await?;
    Ok(m.map(|m| url_of(links, &m)))
}

impl Services {
    /// 404 for another agency's client (looked up first), then 403 unless
    /// the caller is an owner or admin.
    async fn may_manage_links(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<()> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::ManageClients)
    }

    /// A new link to `client_id`'s live report (owners and admins).
    pub async fn create_report_link(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: ReportLinkInput,
    ) -> AppResult<ReportLinkView> {
        self.may_manage_links(ctx, client_id).await?;
        let (label, days) = parse_input(&input)?;
        self.insert_report_link(ctx, client_id, label, now() + Duration::days(days))
            .await
    }

    /// Stores a link expiring at `expires_at` (whole seconds) and audits
    /// it: [`Services::create_report_link`] after parsing; tests call it
    /// directly for a link that has already expired (the app has no clock
    /// to move).
    pub async fn issue_report_link(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        label: Option<String>,
        expires_at: DateTime<Utc>,
    ) -> AppResult<ReportLinkView> {
        self.may_manage_links(ctx, client_id).await?;
        self.insert_report_link(ctx, client_id, label, expires_at)
            .await
    }

    async fn insert_report_link(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        label: Option<String>,
        expires_at: DateTime<Utc>,
    ) -> AppResult<ReportLinkView> {
        let at = now();
        let m = report_link::Model {
            id: new_id(),
            agency_id: ctx.agency_id,
            client_id,
            label,
            expires_at: whole_seconds(expires_at),
            revoked_at: None,
            created_by: ctx.user_id(),
            created_at: at,
        };
        let txn = begin_write(&self.db).await?;
        let active: report_link::ActiveModel = m.clone().into();
        report_link::Entity::insert(active)
            .exec_without_returning(&txn)
            .await?;
        // The URL is a credential: the row names the link, never its token.
        let a = Audit::new("report_link", "create", Some(m.id)).with(serde_json::json!({
            "client_id": client_id, "label": m.label, "expires_at": m.expires_at,
        }));
        audit::commit(txn, ctx, a).await?;
        Ok(view(&self.links, m, at))
    }

    /// The client's links, revoked and expired ones too, oldest first.
    pub async fn list_report_links(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<ReportLinkView>> {
        self.may_manage_links(ctx, client_id).await?;
        let req = page.parse()?;
        let q = report_link::Entity::find()
            .filter(report_link::Column::AgencyId.eq(ctx.agency_id))
            .filter(report_link::Column::ClientId.eq(client_id));
        let at = now();
        req.fetch(q, report_link::Column::Id, &self.db, |m| {
            view(&self.links, m, at)
        })
        .await
    }

    /// Revokes a link: its page is gone at once; the link stays listed.
    /// Revoking a revoked link changes nothing.
    pub async fn revoke_report_link(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<ReportLinkView> {
        let existing = report_link::Entity::find_by_id(id)
            .filter(report_link::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        ctx.require(Perm::ManageClients)?;
        let at = now();
        if existing.revoked_at.is_some() {
            return Ok(view(&self.links, existing, at));
        }
        let mut m: report_link::ActiveModel = existing.into();
        m.revoked_at = Set(Some(at));
        let txn = begin_write(&self.db).await?;
        let m = m.update(&txn).await?;
        audit::commit(txn, ctx, Audit::new("report_link", "revoke", Some(id))).await?;
        Ok(view(&self.links, m, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_takes_one_to_365_days_and_a_non_blank_label() {
        let ok = |days, label: Option<&str>| {
            parse_input(&ReportLinkInput {
                expires_in_days: days,
                label: label.map(str::to_owned),
            })
        };
        assert_eq!(ok(None, None).unwrap(), (None, DEFAULT_DAYS));
        assert_eq!(
            ok(Some(365), Some(" Boss ")).unwrap(),
            (Some("Boss".into()), 365)
        );
        let fields = |r: AppResult<(Option<String>, i64)>| match r {
            Err(AppError::Validation(e)) => e.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(fields(ok(Some(0), None)), ["expires_in_days"]);
        assert_eq!(
            fields(ok(Some(366), Some(" "))),
            ["expires_in_days", "label"]
        );
        assert_eq!(fields(ok(None, Some(&"x".repeat(201)))), ["label"]);
    }

    #[test]
    fn a_link_is_active_until_it_expires_or_is_revoked() {
        let at = now();
        let mut m = report_link::Model {
            id: Uuid::now_v7(),
            agency_id: Uuid::now_v7(),
            client_id: Uuid::now_v7(),
            label: None,
            expires_at: at + Duration::days(1),
            revoked_at: None,
            created_by: None,
            created_at: at,
        };
        assert_eq!(status_of(&m, at), "active");
        assert_eq!(status_of(&m, at + Duration::days(1)), "expired");
        m.revoked_at = Some(at);
        assert_eq!(status_of(&m, at), "revoked");
        assert_eq!(whole_seconds(at).timestamp_subsec_nanos(), 0);
    }
}
