//! A client's subscriber lists: double opt-in or not, their consent text,
//! the pages allowed to post to them.
use chrono::{DateTime, Utc};
use entity::subscriber_list;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
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
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    /// What a subscriber agrees to; a changed text gets a new version.
    #[schema(schema_with = crate::infra::docs::text_5000)]
    pub consent_text: String,
    /// Origins allowed to call the public subscribe endpoint from a
    /// browser (`https://example.com`: scheme and host, no path).
    #[serde(default)]
    #[graphql(default)]
    #[schema(schema_with = crate::infra::docs::origins)]
    pub allowed_origins: Vec<String>,
}

fn check_list(input: &ListInput) -> AppResult<()> {
    let mut errs = Vec::new();
    if !crate::domain::text::fits(&input.name, 200) {
        errs.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if !crate::domain::text::fits(&input.consent_text, 5_000) {
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
            && o.chars().count() <= 200
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

pub(crate) async fn find_list<C: sea_orm::ConnectionTrait>(
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
        let txn = begin_write(&self.db).await?;
        let view = ListView::from(
            subscriber_list::ActiveModel {
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
            .insert(&txn)
            .await?,
        );
        audit::commit(txn, ctx, Audit::create("list", view.id, &view)).await?;
        Ok(view)
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
        let before = ListView::from(l.clone());
        let mut a: subscriber_list::ActiveModel = l.into();
        a.name = Set(input.name.trim().to_owned());
        a.consent_text = Set(input.consent_text.trim().to_owned());
        a.consent_version = Set(version);
        a.allowed_origins = Set(serde_json::json!(input.allowed_origins));
        a.updated_at = Set(now());
        let view = ListView::from;
        Ok(view(
            audit::update_one(&self.db, ctx, "list", id, &before, a, view).await?,
        ))
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
}

crate::has_id!(ListView);
