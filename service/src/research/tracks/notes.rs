//! Notes on a track from interviews and sales calls.
use chrono::{DateTime, NaiveDate, Utc};
use entity::track_note;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Where a note comes from.
pub const NOTE_SOURCES: [&str; 3] = ["interview", "sales_call", "other"];
/// Notes shown with a track (newest first); more are refused.
pub const MAX_NOTES: u64 = 500;

fn note_source() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(&NOTE_SOURCES)
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackNoteInput {
    #[schema(schema_with = crate::infra::docs::text_5000)]
    pub text: String,
    /// interview, sales_call or other.
    #[schema(schema_with = note_source)]
    pub source: String,
    /// When it was said, `YYYY-MM-DD`.
    #[schema(schema_with = crate::infra::docs::date_2000_2100)]
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackNoteView {
    pub id: Uuid,
    pub track_id: Uuid,
    pub text: String,
    pub source: String,
    pub date: NaiveDate,
    pub created_at: DateTime<Utc>,
}

impl From<track_note::Model> for TrackNoteView {
    fn from(m: track_note::Model) -> Self {
        Self {
            id: m.id,
            track_id: m.track_id,
            text: m.text,
            source: m.source,
            date: m.noted_on,
            created_at: m.created_at,
        }
    }
}

impl Services {
    pub async fn add_track_note(
        &self,
        ctx: &RequestCtx,
        track_id: Uuid,
        input: TrackNoteInput,
    ) -> AppResult<TrackNoteView> {
        let t = self.find_track(ctx.agency_id, track_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let mut errs = Vec::new();
        if !crate::domain::text::fits(&input.text, 5_000) {
            errs.push(FieldError::new("text", "must be 1 to 5000 characters"));
        }
        if !NOTE_SOURCES.contains(&input.source.as_str()) {
            errs.push(FieldError::new(
                "source",
                "must be interview, sales_call or other",
            ));
        }
        let first = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
        let last = NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default();
        if !(first..=last).contains(&input.date) {
            errs.push(FieldError::new(
                "date",
                "expected YYYY-MM-DD from 2000-01-01 to 2100-12-31",
            ));
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let count = sea_orm::PaginatorTrait::count(
            track_note::Entity::find()
                .filter(track_note::Column::AgencyId.eq(ctx.agency_id))
                .filter(track_note::Column::TrackId.eq(t.id)),
            &self.db,
        )
        .await?;
        if count >= MAX_NOTES {
            return Err(AppError::Conflict(format!(
                "a track keeps at most {MAX_NOTES} notes; delete some first"
            )));
        }
        let txn = begin_write(&self.db).await?;
        let note = TrackNoteView::from(
            track_note::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                track_id: Set(t.id),
                text: Set(input.text.trim().to_owned()),
                source: Set(input.source),
                noted_on: Set(input.date),
                created_at: Set(now()),
            }
            .insert(&txn)
            .await?,
        );
        audit::commit(txn, ctx, Audit::create("track_note", note.id, &note)).await?;
        Ok(note)
    }

    pub async fn delete_track_note(
        &self,
        ctx: &RequestCtx,
        track_id: Uuid,
        note_id: Uuid,
    ) -> AppResult<()> {
        let t = self.find_track(ctx.agency_id, track_id).await?;
        let note = track_note::Entity::find_by_id(note_id)
            .filter(track_note::Column::AgencyId.eq(ctx.agency_id))
            .filter(track_note::Column::TrackId.eq(t.id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        ctx.require(Perm::WriteResearch)?;
        let txn = begin_write(&self.db).await?;
        track_note::Entity::delete_many()
            .filter(track_note::Column::AgencyId.eq(ctx.agency_id))
            .filter(track_note::Column::Id.eq(note.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::delete("track_note", note.id, &note)).await
    }
}
