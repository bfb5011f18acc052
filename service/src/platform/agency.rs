//! The agency's own settings: its name, the branding of every email it
//! sends (logo at the top, colour of the header, buttons and charts) and the
//! language of its staff's emails.
use chrono::{DateTime, Utc};
use entity::agency;
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::brand::{BrandColour, LogoUrl};
use crate::domain::locale::Locale;
use crate::infra::audit;
use crate::infra::email::Brand;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::{Perm, RequestCtx, Services};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct AgencySettingsView {
    pub id: Uuid,
    pub name: String,
    /// The https URL of the logo at the top of every email, if any.
    pub logo_url: Option<String>,
    /// `#rrggbb` of the email header, buttons and charts.
    pub brand_colour: String,
    /// `ru` or `en`: the language of the emails the agency's staff get
    /// (failed-job alerts), unless a user chose their own (`PATCH /me`).
    pub locale: String,
    pub created_at: DateTime<Utc>,
}

impl From<agency::Model> for AgencySettingsView {
    fn from(a: agency::Model) -> Self {
        Self {
            brand_colour: BrandColour::from_stored(a.brand_colour.as_deref()).css(),
            id: a.id,
            name: a.name,
            logo_url: a.logo_url,
            locale: a.locale,
            created_at: a.created_at,
        }
    }
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgencySettings {
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub name: Option<String>,
    /// An https URL of an image; an empty string removes the logo.
    #[serde(default)]
    pub logo_url: Option<String>,
    /// `#rrggbb`; an empty string goes back to the default colour.
    #[serde(default)]
    pub brand_colour: Option<String>,
    /// `ru` or `en`: the staff's emails, for users who chose none.
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::locale_or_null)]
    pub locale: Option<String>,
}

/// What changes, parsed: `Some(None)` clears.
struct ParsedSettings {
    name: Option<String>,
    logo_url: Option<Option<LogoUrl>>,
    brand_colour: Option<Option<BrandColour>>,
    locale: Option<Locale>,
}

fn parse(input: UpdateAgencySettings) -> AppResult<ParsedSettings> {
    let mut errs: Vec<FieldError> = Vec::new();
    if input
        .name
        .as_deref()
        .is_some_and(|n| !crate::domain::text::fits(n, 200))
    {
        errs.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let name = input.name.map(|n| n.trim().to_owned());
    let opt = |field: &str, v: Option<String>| match v {
        None => None,
        Some(s) if s.trim().is_empty() => Some(None),
        Some(s) => Some(Some((field.to_owned(), s))),
    };
    let logo = opt("logo_url", input.logo_url)
        .map(|o| o.and_then(|(f, s)| LogoUrl::parse(&f, &s).map_err(|e| errs.push(e)).ok()));
    let colour = opt("brand_colour", input.brand_colour)
        .map(|o| o.and_then(|(f, s)| BrandColour::parse(&f, &s).map_err(|e| errs.push(e)).ok()));
    let locale = input
        .locale
        .and_then(|l| Locale::parse("locale", &l).map_err(|e| errs.push(e)).ok());
    if errs.is_empty() {
        Ok(ParsedSettings {
            name,
            logo_url: logo,
            brand_colour: colour,
            locale,
        })
    } else {
        Err(AppError::Validation(errs))
    }
}

/// The branding of an agency's emails.
pub async fn brand_of<C: ConnectionTrait>(db: &C, agency_id: Uuid) -> AppResult<Brand> {
    let a = agency::Entity::find_by_id(agency_id)
        .one(db)
        .await?
        .ok_or(AppError::NotFound)?;
    Ok(Brand::of_agency(&a))
}

impl Services {
    pub async fn agency_settings(&self, ctx: &RequestCtx) -> AppResult<AgencySettingsView> {
        ctx.require(Perm::Read)?;
        Ok(agency::Entity::find_by_id(ctx.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?
            .into())
    }

    /// Owners and admins change the agency's name and email branding.
    pub async fn update_agency_settings(
        &self,
        ctx: &RequestCtx,
        input: UpdateAgencySettings,
    ) -> AppResult<AgencySettingsView> {
        ctx.require(Perm::Admin)?;
        let p = parse(input)?;
        let a = agency::Entity::find_by_id(ctx.agency_id)
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        let before = AgencySettingsView::from(a.clone());
        let mut m: agency::ActiveModel = a.into();
        if let Some(n) = p.name {
            m.name = Set(n);
        }
        if let Some(l) = p.logo_url {
            m.logo_url = Set(l.map(|l| l.as_str().to_owned()));
        }
        if let Some(c) = p.brand_colour {
            m.brand_colour = Set(c.map(BrandColour::css));
        }
        if let Some(l) = p.locale {
            m.locale = Set(l.as_str().to_owned());
        }
        let view = AgencySettingsView::from;
        let saved = audit::update_one(&self.db, ctx, "agency", ctx.agency_id, &before, m, view);
        Ok(view(saved.await?))
    }
}
