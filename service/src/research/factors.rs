//! Choice factors of a client (price, reliability, location…).
use chrono::{DateTime, Utc};
use entity::choice_factor;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct FactorView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub position: i32,
    pub created_at: DateTime<Utc>,
}

impl From<choice_factor::Model> for FactorView {
    fn from(m: choice_factor::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            name: m.name,
            description: m.description,
            position: m.position,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct FactorInput {
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub position: Option<i32>,
}

fn check(input: &FactorInput) -> AppResult<()> {
    let mut errs = Vec::new();
    if !crate::domain::text::fits(&input.name, 200) {
        errs.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if input
        .description
        .as_ref()
        .is_some_and(|d| d.chars().count() > 2000)
    {
        errs.push(FieldError::new("description", "at most 2000 characters"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

/// Is this factor one of the client's?
pub async fn factor_exists<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    id: Uuid,
) -> AppResult<bool> {
    Ok(choice_factor::Entity::find_by_id(id)
        .filter(choice_factor::Column::AgencyId.eq(agency_id))
        .filter(choice_factor::Column::ClientId.eq(client_id))
        .one(db)
        .await?
        .is_some())
}

/// A client's choice factors, in their order.
pub(crate) async fn client_factors<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Vec<choice_factor::Model>> {
    Ok(choice_factor::Entity::find()
        .filter(choice_factor::Column::AgencyId.eq(agency_id))
        .filter(choice_factor::Column::ClientId.eq(client_id))
        .order_by_asc(choice_factor::Column::Position)
        .order_by_asc(choice_factor::Column::Id)
        .all(db)
        .await?)
}

/// Stores a checked factor of `client_id` (on `db`, so a transaction can
/// create factors together with what uses them).
pub(crate) async fn insert_factor<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    input: FactorInput,
) -> AppResult<choice_factor::Model> {
    check(&input)?;
    Ok(choice_factor::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(agency_id),
        client_id: Set(client_id),
        name: Set(input.name.trim().to_owned()),
        description: Set(input.description),
        position: Set(input.position.unwrap_or(0)),
        created_at: Set(now()),
    }
    .insert(db)
    .await?)
}

impl Services {
    pub async fn list_factors(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<Vec<FactorView>> {
        ctx.require(Perm::Read)?;
        find_client(&self.db, ctx.agency_id, client_id).await?;
        Ok(client_factors(&self.db, ctx.agency_id, client_id)
            .await?
            .into_iter()
            .map(FactorView::from)
            .collect())
    }

    pub async fn create_factor(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: FactorInput,
    ) -> AppResult<FactorView> {
        ctx.require(Perm::WriteResearch)?;
        check(&input)?;
        find_client(&self.db, ctx.agency_id, client_id).await?;
        let txn = begin_write(&self.db).await?;
        let view = FactorView::from(insert_factor(&txn, ctx.agency_id, client_id, input).await?);
        audit::commit(txn, ctx, Audit::create("choice_factor", view.id, &view)).await?;
        Ok(view)
    }

    async fn find_factor(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<choice_factor::Model> {
        choice_factor::Entity::find_by_id(id)
            .filter(choice_factor::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    pub async fn update_factor(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: FactorInput,
    ) -> AppResult<FactorView> {
        ctx.require(Perm::WriteResearch)?;
        check(&input)?;
        let existing = self.find_factor(ctx, id).await?;
        let position = input.position.unwrap_or(existing.position);
        let before = FactorView::from(existing.clone());
        let mut a: choice_factor::ActiveModel = existing.into();
        a.name = Set(input.name.trim().to_owned());
        a.description = Set(input.description);
        a.position = Set(position);
        let view = FactorView::from;
        let saved = audit::update_one(&self.db, ctx, "choice_factor", id, &before, a, view);
        Ok(view(saved.await?))
    }

    pub async fn delete_factor(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        ctx.require(Perm::WriteResearch)?;
        let f = self.find_factor(ctx, id).await?;
        let used = entity::question::Entity::find()
            .filter(entity::question::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::question::Column::ChoiceFactorId.eq(f.id))
            .one(&self.db)
            .await?
            .is_some();
        if used {
            return Err(AppError::Conflict("a question measures this factor".into()));
        }
        let txn = begin_write(&self.db).await?;
        choice_factor::Entity::delete_many()
            .filter(choice_factor::Column::AgencyId.eq(ctx.agency_id))
            .filter(choice_factor::Column::Id.eq(f.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::delete("choice_factor", f.id, &f)).await
    }
}
