//! Contacts (analytics.md §7): one per client and e-mail, whatever lists it
//! is on. A contact carries what is known of the person (attributes, source
//! channel, funnel type, the purchases' `customer_ref`), its status, its
//! outcome (converted, when, value) and what qualification made of it
//! (score, model probability, tier — written by the worker into
//! `contact_scores`, [`crate::mail::qualify`], which also explains a
//! contact's tier when it is read). Readers use the view `scored_contacts`
//! ([`entity::scored_contact`]): every contact with its current score.
//!
//! Contacts come from the public subscribe endpoint and list imports (the
//! subscription points at its contact), from the API (one at a time or
//! NDJSON/CSV in bulk, [`import`]), and from questionnaire responses with an
//! `email` question. Writing a contact is an upsert by e-mail: the same
//! body sent again changes nothing. Every write marks the client's contacts
//! target pending so the worker rescores them (coalesced like recomputes).
use analytics::funnel::{FeatureContribution, FunnelType, RuleHit, Tier};
use chrono::{DateTime, Utc};
use entity::{contact, scored_contact};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::attributes::Attributes;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services};

mod import;
pub mod link;
pub mod responses;
mod write;
pub use import::*;
pub use responses::ContactResponseView;
pub use write::*;

pub const MAX_NAME: usize = 200;
pub const MAX_CHANNEL: usize = 64;
pub const MAX_CUSTOMER_REF: usize = 200;
pub const MAX_VALUE: f64 = 1e12;

/// Why a contact has its tier.
#[derive(
    Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
pub struct Explanation {
    /// The client's rules the contact matched, with their points.
    pub rules: Vec<RuleHit>,
    /// The model's features with the largest |w·x|, signed (empty without
    /// a model).
    pub features: Vec<FeatureContribution>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ContactView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub locale: Option<String>,
    /// `active`, `unsubscribed` or `bounced`.
    #[schema(schema_with = crate::infra::docs::contact_status)]
    pub status: String,
    /// Where the contact came from, e.g. `yandex_rtb`.
    pub source_channel: Option<String>,
    pub funnel: FunnelType,
    /// String, number or string-array values; matched by segments.
    #[schema(value_type = Object)]
    pub attributes: serde_json::Value,
    /// The purchases' `customer_ref` of this person.
    pub customer_ref: Option<String>,
    /// When the person first confirmed a subscription.
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The outcome: true converted, false did not, null not known yet.
    pub converted: Option<bool>,
    pub converted_at: Option<DateTime<Utc>>,
    pub conversion_value: Option<f64>,
    /// `api` or `purchase`.
    pub outcome_source: Option<String>,
    /// Σ points of the client's rules the contact matches.
    pub score: f64,
    /// The client's model's probability of converting, once it has one.
    pub probability: Option<f64>,
    pub tier: Tier,
    /// Why the contact has its tier, as of `scored_at` (given when a
    /// contact is read; null before it is first scored).
    pub explanation: Option<Explanation>,
    /// When the worker last wrote the client's scores, for a scored contact
    /// (null: not scored yet).
    pub scored_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(ContactView);

impl From<scored_contact::Model> for ContactView {
    fn from(m: scored_contact::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            email: m.email,
            name: m.name,
            locale: m.locale,
            status: m.status,
            source_channel: m.source_channel,
            funnel: FunnelType::parse(&m.funnel).unwrap_or(FunnelType::Reach),
            attributes: m.attributes,
            customer_ref: m.customer_ref,
            confirmed_at: m.confirmed_at,
            converted: m.converted,
            converted_at: m.converted_at,
            conversion_value: m.conversion_value,
            outcome_source: m.outcome_source,
            score: m.score,
            probability: m.probability,
            tier: Tier::parse(&m.tier).unwrap_or(Tier::Cold),
            explanation: None,
            scored_at: m.scored_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// `?tier=&min_score=&…` of the contact list, besides the page.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams, async_graphql::InputObject)]
#[into_params(parameter_in = Query)]
#[graphql(name = "ContactFilterInput")]
pub struct ContactFilter {
    /// `hot`, `warm` or `cold`.
    #[param(schema_with = crate::infra::docs::contact_tier)]
    pub tier: Option<String>,
    /// `active`, `unsubscribed` or `bounced`.
    #[param(schema_with = crate::infra::docs::contact_status)]
    pub status: Option<String>,
    /// `reach`, `warming` or `reverse`.
    #[param(schema_with = crate::infra::docs::funnel_type)]
    pub funnel: Option<String>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Only the contacts a saved segment of the client matches (its
    /// conditions over attributes and the keys `tier`, `score`,
    /// `probability`, `status`, `funnel`, `source_channel`).
    pub segment_id: Option<Uuid>,
    /// Contacts whose e-mail starts with this text.
    #[param(max_length = 254)]
    pub email: Option<String>,
}

/// The attributes a segment sees of a contact: its own, and its
/// qualification and funnel as the keys `tier`, `score`, `probability`,
/// `status`, `funnel` and `source_channel` (which win over attributes of
/// the same name).
pub fn segment_view(m: &scored_contact::Model) -> Attributes {
    let mut map = match &m.attributes {
        serde_json::Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    map.insert("tier".into(), m.tier.clone().into());
    map.insert("score".into(), m.score.into());
    if let Some(p) = m.probability {
        map.insert("probability".into(), p.into());
    }
    map.insert("status".into(), m.status.clone().into());
    map.insert("funnel".into(), m.funnel.clone().into());
    if let Some(s) = &m.source_channel {
        map.insert("source_channel".into(), s.clone().into());
    }
    Attributes::from_stored(&serde_json::Value::Object(map))
}

/// The contact `id` of `agency_id`, or 404.
pub async fn find_contact<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<contact::Model> {
    contact::Entity::find_by_id(id)
        .filter(contact::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

/// The contact `id` of `agency_id` with its current score, or 404.
pub async fn find_scored<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<scored_contact::Model> {
    scored_contact::Entity::find_by_id(id)
        .filter(scored_contact::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

fn check_filter(f: &ContactFilter) -> AppResult<()> {
    let mut errs = Vec::new();
    if f.tier.as_deref().is_some_and(|t| Tier::parse(t).is_none()) {
        errs.push(FieldError::new("tier", "must be hot, warm or cold"));
    }
    if f.status
        .as_deref()
        .is_some_and(|s| !["active", "unsubscribed", "bounced"].contains(&s))
    {
        errs.push(FieldError::new(
            "status",
            "must be active, unsubscribed or bounced",
        ));
    }
    if f.funnel
        .as_deref()
        .is_some_and(|s| FunnelType::parse(s).is_none())
    {
        errs.push(FieldError::new(
            "funnel",
            "must be reach, warming or reverse",
        ));
    }
    for (name, v) in [("min_score", f.min_score), ("max_score", f.max_score)] {
        if v.is_some_and(|v| !v.is_finite()) {
            errs.push(FieldError::new(name, "must be a finite number"));
        }
    }
    if let Some(e) = f.email.as_deref() {
        if crate::domain::nul::has_nul(e) {
            errs.push(FieldError::new("email", crate::domain::nul::MESSAGE));
        } else if crate::domain::text::longer_than(e, 254) {
            errs.push(FieldError::new("email", "at most 254 characters"));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

impl Services {
    /// A client's contacts, by id, filtered (without explanations: the
    /// API's `list_contacts` adds them).
    pub async fn read_contacts(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        filter: ContactFilter,
        page: PageParams,
    ) -> AppResult<Page<ContactView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        check_filter(&filter)?;
        let page = page.parse()?;
        let segment = match filter.segment_id {
            None => None,
            Some(id) => Some(self.contact_segment(ctx.agency_id, client_id, id).await?),
        };
        use scored_contact::Column as C;
        let mut q = scored_contact::Entity::find()
            .filter(C::AgencyId.eq(ctx.agency_id))
            .filter(C::ClientId.eq(client_id));
        if let Some(t) = &filter.tier {
            q = q.filter(C::Tier.eq(t.as_str()));
        }
        if let Some(s) = &filter.status {
            q = q.filter(C::Status.eq(s.as_str()));
        }
        if let Some(f) = &filter.funnel {
            q = q.filter(C::Funnel.eq(f.as_str()));
        }
        if let Some(v) = filter.min_score {
            q = q.filter(C::Score.gte(v));
        }
        if let Some(v) = filter.max_score {
            q = q.filter(C::Score.lte(v));
        }
        if let Some(e) = &filter.email {
            q = q.filter(C::Email.starts_with(e.trim().to_lowercase()));
        }
        let Some(seg) = segment else {
            return page.fetch(q, C::Id, &self.db, ContactView::from).await;
        };
        // A segment is matched in memory, a chunk of rows at a time.
        let mut after = page.after;
        let mut out = Vec::new();
        loop {
            let mut chunk = q.clone().order_by_asc(C::Id).limit(1_000);
            if let Some(a) = after {
                chunk = chunk.filter(C::Id.gt(a));
            }
            let rows = chunk.all(&self.db).await?;
            let done = rows.len() < 1_000;
            after = rows.last().map(|r| r.id);
            out.extend(
                rows.into_iter()
                    .filter(|m| segment_view(m).matches(&seg))
                    .map(ContactView::from),
            );
            if done || out.len() as u64 > page.limit {
                break;
            }
        }
        Ok(Page::from_rows(page.limit, out, |v| v.id.to_string()))
    }

    /// The filter of a segment of this client.
    pub(crate) async fn contact_segment(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        segment_id: Uuid,
    ) -> AppResult<crate::domain::segment_filter::SegmentFilter> {
        crate::research::segments::client_segment_filter(&self.db, agency_id, client_id, segment_id)
            .await
    }

    /// How many of the client's contacts a saved segment matches, now.
    pub async fn segment_contact_count(
        &self,
        ctx: &RequestCtx,
        segment_id: Uuid,
    ) -> AppResult<u64> {
        let s = entity::segment::Entity::find_by_id(segment_id)
            .filter(entity::segment::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        ctx.require(Perm::Read)?;
        let filter =
            crate::research::segments::segment_filter_of(&self.db, ctx.agency_id, segment_id)
                .await?;
        use scored_contact::Column as C;
        let mut n = 0u64;
        let mut after: Option<Uuid> = None;
        loop {
            let mut q = scored_contact::Entity::find()
                .filter(C::AgencyId.eq(ctx.agency_id))
                .filter(C::ClientId.eq(s.client_id))
                .order_by_asc(C::Id)
                .limit(5_000);
            if let Some(a) = after {
                q = q.filter(C::Id.gt(a));
            }
            let rows = q.all(&self.db).await?;
            n += rows
                .iter()
                .filter(|m| segment_view(m).matches(&filter))
                .count() as u64;
            if rows.len() < 5_000 {
                return Ok(n);
            }
            after = rows.last().map(|r| r.id);
        }
    }

    /// One contact with its score (without its explanation: the API's
    /// `get_contact` adds it).
    pub async fn read_contact(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<ContactView> {
        let c = find_scored(&self.db, ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        Ok(c.into())
    }
}
