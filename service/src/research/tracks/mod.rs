//! Customer tracks (product.md, Domain → Customer track): the journey of
//! one saved segment of a client — ordered steps (a stage and optionally a
//! touchpoint of the client's library, the customer's task in their own
//! words), who sways the decision at each step, the sales barriers there,
//! and notes from interviews and sales calls. What is computed from the
//! research data (panel, local QFD, hypotheses, UX flags) is in [`parts`];
//! the worker composes it with the purchases (a higher area) in
//! `jobs::tracks`.
//!
//! Barriers carry an optional `barrier_ref {question_key, value}`: the
//! option of a `barrier` question it stands for, the seam where the barrier
//! analysis (`research::barriers`) links its figures into a track's steps.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::{cjm_stage, questionnaire, touchpoint, track, track_note};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::ledger::KIND_TRACKS;
use crate::infra::page::{Page, PageParams};
use crate::infra::queue::RecomputeJob;
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

pub mod barriers;
mod notes;
pub mod parts;
mod steps;

pub use notes::{MAX_NOTES, NOTE_SOURCES, TrackNoteInput, TrackNoteView};
pub use steps::{
    AGENT_KINDS, MAX_PER_STEP, MAX_STEPS, TrackAgent, TrackBarrier, TrackBarrierRef, TrackStep,
};
use steps::{Library, check_steps, tidy};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackInput {
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name: String,
    /// A saved segment of the same client.
    pub segment_id: Uuid,
    /// The customer panel the segment is read from (default: the client's
    /// newest `customer_panel` questionnaire).
    #[serde(default)]
    pub questionnaire_id: Option<Uuid>,
    #[serde(default)]
    #[schema(max_items = 50)]
    pub steps: Vec<TrackStep>,
}

/// Fields to change; those left out stay.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackPatch {
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub name: Option<String>,
    #[serde(default)]
    pub segment_id: Option<Uuid>,
    #[serde(default)]
    pub questionnaire_id: Option<Uuid>,
}

/// The whole ordered list of steps, replacing the stored one.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrackStepsInput {
    #[schema(max_items = 50)]
    pub steps: Vec<TrackStep>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TrackView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub segment_id: Uuid,
    pub questionnaire_id: Uuid,
    pub name: String,
    pub steps: Vec<TrackStep>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(TrackView);

impl From<track::Model> for TrackView {
    fn from(m: track::Model) -> Self {
        Self {
            id: m.id,
            client_id: m.client_id,
            segment_id: m.segment_id,
            questionnaire_id: m.questionnaire_id,
            name: m.name,
            steps: serde_json::from_value(m.steps).unwrap_or_default(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

fn json_of<T: Serialize>(v: &T) -> AppResult<serde_json::Value> {
    Ok(serde_json::to_value(v).map_err(anyhow::Error::from)?)
}

impl Services {
    /// The client's library as stage → touchpoints (None: it has none).
    async fn track_library(&self, agency_id: Uuid, client_id: Uuid) -> AppResult<Option<Library>> {
        let client = find_client(&self.db, agency_id, client_id).await?;
        let Some(lib) = client.touchpoint_library_id else {
            return Ok(None);
        };
        let mut out: Library = cjm_stage::Entity::find()
            .filter(cjm_stage::Column::AgencyId.eq(agency_id))
            .filter(cjm_stage::Column::LibraryId.eq(lib))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| (s.id, HashSet::new()))
            .collect();
        for t in touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(agency_id))
            .filter(touchpoint::Column::LibraryId.eq(lib))
            .all(&self.db)
            .await?
        {
            if let Some(set) = out.get_mut(&t.stage_id) {
                set.insert(t.id);
            }
        }
        Ok(Some(out))
    }

    /// Checks that the segment and the questionnaire are the client's;
    /// returns the questionnaire (the newest customer panel by default).
    async fn track_sources(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        segment_id: Uuid,
        questionnaire_id: Option<Uuid>,
    ) -> AppResult<Uuid> {
        let mut errs = Vec::new();
        match self.find_segment(ctx, segment_id).await {
            Ok(s) if s.client_id == client_id => {}
            Ok(_) | Err(AppError::NotFound) => errs.push(FieldError::new(
                "segment_id",
                "no such segment of this client",
            )),
            Err(e) => return Err(e),
        }
        let q = match questionnaire_id {
            Some(id) => questionnaire::Entity::find_by_id(id)
                .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
                .filter(questionnaire::Column::ClientId.eq(client_id))
                .one(&self.db)
                .await?
                .ok_or_else(|| {
                    FieldError::new("questionnaire_id", "no such questionnaire of this client")
                }),
            None => questionnaire::Entity::find()
                .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
                .filter(questionnaire::Column::ClientId.eq(client_id))
                .filter(questionnaire::Column::Kind.eq("customer_panel"))
                .order_by_desc(questionnaire::Column::Id)
                .one(&self.db)
                .await?
                .ok_or_else(|| {
                    FieldError::new(
                        "questionnaire_id",
                        "the client has no customer panel; create one or name a questionnaire",
                    )
                }),
        };
        match q {
            Ok(q) if errs.is_empty() => Ok(q.id),
            Ok(_) => Err(AppError::Validation(errs)),
            Err(e) => {
                errs.push(e);
                Err(AppError::Validation(errs))
            }
        }
    }

    /// Marks the client's tracks for the worker (in `txn`); true when a
    /// job must be pushed after commit.
    pub(crate) async fn mark_tracks<C: sea_orm::ConnectionTrait>(
        db: &C,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<bool> {
        crate::infra::ledger::bump_target(db, agency_id, KIND_TRACKS, client_id).await
    }

    pub(crate) async fn wake_tracks(&self, agency_id: Uuid, client_id: Uuid) {
        self.enqueue_recompute(RecomputeJob {
            agency_id,
            kind: KIND_TRACKS.into(),
            target_id: client_id,
        })
        .await;
    }

    pub async fn create_track(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: TrackInput,
    ) -> AppResult<TrackView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        let mut errs = Vec::new();
        if !crate::domain::text::fits(&input.name, 200) {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        if !input.steps.is_empty() {
            let lib = self.track_library(ctx.agency_id, client_id).await?;
            errs.extend(check_steps(&input.steps, lib.as_ref()));
        }
        let questionnaire_id = match self
            .track_sources(ctx, client_id, input.segment_id, input.questionnaire_id)
            .await
        {
            Ok(q) => Some(q),
            Err(AppError::Validation(e)) => {
                errs.extend(e);
                None
            }
            Err(e) => return Err(e),
        };
        let Some(questionnaire_id) = questionnaire_id.filter(|_| errs.is_empty()) else {
            return Err(AppError::Validation(errs));
        };
        let t = now();
        let txn = begin_write(&self.db).await?;
        let view = TrackView::from(
            track::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(ctx.agency_id),
                client_id: Set(client_id),
                segment_id: Set(input.segment_id),
                questionnaire_id: Set(questionnaire_id),
                name: Set(input.name.trim().to_owned()),
                steps: Set(json_of(&tidy(input.steps))?),
                created_at: Set(t),
                updated_at: Set(t),
            }
            .insert(&txn)
            .await?,
        );
        let wake = Self::mark_tracks(&txn, ctx.agency_id, client_id).await?;
        audit::commit(txn, ctx, Audit::create("track", view.id, &view)).await?;
        if wake {
            self.wake_tracks(ctx.agency_id, client_id).await;
        }
        Ok(view)
    }

    pub(crate) async fn find_track(&self, agency_id: Uuid, id: Uuid) -> AppResult<track::Model> {
        track::Entity::find_by_id(id)
            .filter(track::Column::AgencyId.eq(agency_id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)
    }

    pub async fn list_tracks(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<TrackView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let q = track::Entity::find()
            .filter(track::Column::AgencyId.eq(ctx.agency_id))
            .filter(track::Column::ClientId.eq(client_id));
        req.fetch(q, track::Column::Id, &self.db, TrackView::from)
            .await
    }

    /// The stored part of a track and its notes, newest first.
    pub async fn get_track(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<(TrackView, Vec<TrackNoteView>)> {
        let t = self.find_track(ctx.agency_id, id).await?;
        ctx.require(Perm::Read)?;
        let notes = track_note::Entity::find()
            .filter(track_note::Column::AgencyId.eq(ctx.agency_id))
            .filter(track_note::Column::TrackId.eq(id))
            .order_by_desc(track_note::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(TrackNoteView::from)
            .collect();
        Ok((t.into(), notes))
    }

    pub async fn update_track(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: TrackPatch,
    ) -> AppResult<TrackView> {
        let existing = self.find_track(ctx.agency_id, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let mut errs = Vec::new();
        if input
            .name
            .as_deref()
            .is_some_and(|n| !crate::domain::text::fits(n, 200))
        {
            errs.push(FieldError::new("name", "must be 1 to 200 characters"));
        }
        let sources = if input.segment_id.is_some() || input.questionnaire_id.is_some() {
            match self
                .track_sources(
                    ctx,
                    existing.client_id,
                    input.segment_id.unwrap_or(existing.segment_id),
                    Some(input.questionnaire_id.unwrap_or(existing.questionnaire_id)),
                )
                .await
            {
                Ok(q) => Some(q),
                Err(AppError::Validation(e)) => {
                    errs.extend(e);
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let before = TrackView::from(existing.clone());
        let client_id = existing.client_id;
        let mut a: track::ActiveModel = existing.into();
        if let Some(n) = &input.name {
            a.name = Set(n.trim().to_owned());
        }
        if let Some(s) = input.segment_id {
            a.segment_id = Set(s);
        }
        if let Some(q) = sources {
            a.questionnaire_id = Set(q);
        }
        a.updated_at = Set(now());
        self.save_track(ctx, client_id, a, before).await
    }

    /// Replaces the ordered steps of a track.
    pub async fn put_track_steps(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: TrackStepsInput,
    ) -> AppResult<TrackView> {
        let existing = self.find_track(ctx.agency_id, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let lib = self
            .track_library(ctx.agency_id, existing.client_id)
            .await?;
        let errs = check_steps(&input.steps, lib.as_ref());
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let before = TrackView::from(existing.clone());
        let client_id = existing.client_id;
        let mut a: track::ActiveModel = existing.into();
        a.steps = Set(json_of(&tidy(input.steps))?);
        a.updated_at = Set(now());
        self.save_track(ctx, client_id, a, before).await
    }

    async fn save_track(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        a: track::ActiveModel,
        before: TrackView,
    ) -> AppResult<TrackView> {
        let txn = begin_write(&self.db).await?;
        audit::record_update(&txn, ctx, "track", before.id, &before, &a, TrackView::from).await?;
        let after = TrackView::from(a.update(&txn).await?);
        let wake = Self::mark_tracks(&txn, ctx.agency_id, client_id).await?;
        txn.commit().await?;
        if wake {
            self.wake_tracks(ctx.agency_id, client_id).await;
        }
        Ok(after)
    }

    pub async fn delete_track(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let t = self.find_track(ctx.agency_id, id).await?;
        ctx.require(Perm::WriteResearch)?;
        let txn = begin_write(&self.db).await?;
        track_note::Entity::delete_many()
            .filter(track_note::Column::AgencyId.eq(ctx.agency_id))
            .filter(track_note::Column::TrackId.eq(t.id))
            .exec(&txn)
            .await?;
        entity::snapshot::Entity::delete_many()
            .filter(entity::snapshot::Column::AgencyId.eq(ctx.agency_id))
            .filter(entity::snapshot::Column::Kind.eq(parts::KIND_TRACK))
            .filter(entity::snapshot::Column::TargetId.eq(t.id))
            .exec(&txn)
            .await?;
        track::Entity::delete_many()
            .filter(track::Column::AgencyId.eq(ctx.agency_id))
            .filter(track::Column::Id.eq(t.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::delete("track", t.id, &t)).await
    }

    /// The tracks of a client (the worker's loop).
    pub(crate) async fn client_tracks(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
    ) -> AppResult<Vec<track::Model>> {
        Ok(track::Entity::find()
            .filter(track::Column::AgencyId.eq(agency_id))
            .filter(track::Column::ClientId.eq(client_id))
            .order_by_asc(track::Column::Id)
            .all(&self.db)
            .await?)
    }
}
