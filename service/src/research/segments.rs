//! Segments: saved filters over response attributes.
use chrono::{DateTime, Utc};
use entity::segment;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::segment_filter::SegmentFilter;
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SegmentView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    #[graphql(skip)]
    pub filter: SegmentFilter,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(SegmentView);

impl From<segment::Model> for SegmentView {
    fn from(m: segment::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            name: m.name,
            filter: serde_json::from_value(m.filter)
                .unwrap_or(SegmentFilter { conditions: vec![] }),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    pub filter: SegmentFilter,
}

fn check(input: &SegmentInput) -> AppResult<()> {
    let mut errs = Vec::new();
    if !crate::domain::text::fits(&input.name, 200) {
        errs.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if let Err(e) = input.filter.validate("filter") {
        errs.extend(e);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

/// The filter of a saved segment of `agency_id`.
pub async fn segment_filter_of<C: sea_orm::ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<SegmentFilter> {
    let s = segment::Entity::find_by_id(id)
        .filter(segment::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)?;
    serde_json::from_value(s.filter)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("segment {id} holds a bad filter: {e}")))
}

/// The filter of a saved segment of this client, asked for by a
/// `segment_id` parameter: 422 on it for an unknown segment or another
/// client's.
pub async fn client_segment_filter<C: sea_orm::ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    segment_id: Uuid,
) -> AppResult<SegmentFilter> {
    let s = segment::Entity::find_by_id(segment_id)
        .filter(segment::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or_else(|| AppError::field("segment_id", "no such segment"))?;
    if s.client_id != client_id {
        return Err(AppError::field("segment_id", "belongs to another client"));
    }
    segment_filter_of(db, agency_id, segment_id).await
}

impl Services {
    pub async fn list_segments(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<SegmentView>> {
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        find_client(&self.db, ctx.agency_id, client_id).await?;
        let q = segment::Entity::find()
            .filter(segment::Column::AgencyId.eq(ctx.agency_id))
            .filter(segment::Column::ClientId.eq(client_id));
        req.fetch(q, segment::Column::Id, &self.db, SegmentView::from)
            .await
    }

    pub async fn create_segment(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: SegmentInput,
    ) -> AppResult<SegmentView> {
        ctx.require(Perm::WriteResearch)?;
        check(&input)?;
        find_client(&self.db, ctx.agency_id, client_id).await?;
        let t = now();
        let txn = begin_write(&self.db).await?;
        let view = SegmentView::from(
            segment::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                client_id: Set(client_id),
                name: Set(input.name.trim().to_owned()),
                filter: Set(serde_json::to_value(&input.filter).map_err(anyhow::Error::from)?),
                created_at: Set(t),
                updated_at: Set(t),
            }
            .insert(&txn)
            .await?,
        );
        audit::commit(txn, ctx, Audit::create("segment", view.id, &view)).await?;
        Ok(view)
    }

    pub(crate) async fn find_segment(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<segment::Model> {
        segment::Entity::find_by_id(id)
            .filter(segment::Column::AgencyId.eq(ctx.agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    /// Segments of the caller's agency by id (the GraphQL loader's batch).
    pub async fn segments_by_ids(
        &self,
        ctx: &RequestCtx,
        ids: &[Uuid],
    ) -> AppResult<Vec<SegmentView>> {
        ctx.require(Perm::Read)?;
        Ok(segment::Entity::find()
            .filter(segment::Column::AgencyId.eq(ctx.agency_id))
            .filter(segment::Column::Id.is_in(ids.to_vec()))
            .all(&self.db)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    pub async fn get_segment(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<SegmentView> {
        ctx.require(Perm::Read)?;
        Ok(self.find_segment(ctx, id).await?.into())
    }

    pub async fn update_segment(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: SegmentInput,
    ) -> AppResult<SegmentView> {
        ctx.require(Perm::WriteResearch)?;
        check(&input)?;
        let existing = self.find_segment(ctx, id).await?;
        let before = SegmentView::from(existing.clone());
        let mut a: segment::ActiveModel = existing.into();
        a.name = Set(input.name.trim().to_owned());
        a.filter = Set(serde_json::to_value(&input.filter).map_err(anyhow::Error::from)?);
        a.updated_at = Set(now());
        let view = SegmentView::from;
        Ok(view(
            audit::update_one(&self.db, ctx, "segment", id, &before, a, view).await?,
        ))
    }

    pub async fn delete_segment(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        ctx.require(Perm::WriteResearch)?;
        let s = self.find_segment(ctx, id).await?;
        // A campaign not sent yet still needs its audience.
        let waiting = entity::campaign::Entity::find()
            .filter(entity::campaign::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::campaign::Column::SegmentId.eq(s.id))
            .filter(entity::campaign::Column::Status.is_in(["draft", "scheduled", "sending"]))
            .filter(entity::campaign::Column::FinishedAt.is_null())
            .one(&self.db)
            .await?;
        if let Some(c) = waiting {
            return Err(AppError::Conflict(format!(
                "campaign '{}' is to be sent to this segment; cancel it or send it first",
                c.name
            )));
        }
        let txn = begin_write(&self.db).await?;
        segment::Entity::delete_many()
            .filter(segment::Column::AgencyId.eq(ctx.agency_id))
            .filter(segment::Column::Id.eq(s.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::delete("segment", s.id, &s)).await
    }
}
