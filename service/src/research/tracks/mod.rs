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
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
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

pub mod parts;

/// Who may sway the decision at a step.
pub const AGENT_KINDS: [&str; 8] = [
    "family",
    "friends",
    "bloggers",
    "sales_manager",
    "reviews",
    "experts",
    "colleagues",
    "other",
];
/// Where a note comes from.
pub const NOTE_SOURCES: [&str; 3] = ["interview", "sales_call", "other"];
pub const MAX_STEPS: usize = 50;
pub const MAX_PER_STEP: usize = 20;
/// Notes shown with a track (newest first); more are refused.
pub const MAX_NOTES: u64 = 500;

fn agent_kind() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(&AGENT_KINDS)
}

fn note_source() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(&NOTE_SOURCES)
}

/// The option of a `barrier` question a barrier stands for.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackBarrierRef {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub question_key: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub value: String,
}

/// Who sways the customer's decision at a step, and how strongly.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackAgent {
    /// family, friends, bloggers, sales_manager, reviews, experts,
    /// colleagues or other.
    #[schema(schema_with = agent_kind)]
    pub kind: String,
    /// Free words: "the wife", "a fitness blogger".
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub label: Option<String>,
    /// 1 (barely) to 5 (decides).
    #[schema(minimum = 1, maximum = 5)]
    pub strength: i32,
}

/// A sales barrier at a step.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackBarrier {
    #[schema(schema_with = crate::infra::docs::text_300)]
    pub label: String,
    #[serde(default)]
    pub barrier_ref: Option<TrackBarrierRef>,
}

/// One step of the journey.
#[derive(
    Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject,
)]
#[serde(deny_unknown_fields)]
pub struct TrackStep {
    /// A stage of the client's touchpoint library.
    pub stage_id: Uuid,
    /// A touchpoint of that stage, if the step has one.
    #[serde(default)]
    pub touchpoint_id: Option<Uuid>,
    /// The customer's task, in their words.
    #[schema(schema_with = crate::infra::docs::text_500)]
    pub task: String,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub agents: Vec<TrackAgent>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub barriers: Vec<TrackBarrier>,
}

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

/// The stages and touchpoints of a client's library: stage → its touchpoints.
type Library = HashMap<Uuid, HashSet<Uuid>>;

/// Checks the steps against the client's library; errors name
/// `steps[i].field` as sent.
fn check_steps(steps: &[TrackStep], library: Option<&Library>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if steps.len() > MAX_STEPS {
        errs.push(FieldError::new(
            "steps",
            format!("at most {MAX_STEPS} steps"),
        ));
        return errs;
    }
    for (i, s) in steps.iter().enumerate() {
        let at = |f: &str| format!("steps[{i}].{f}");
        match library {
            None => errs.push(FieldError::new(
                at("stage_id"),
                "the client has no touchpoint library; set touchpoint_library_id",
            )),
            Some(lib) => match lib.get(&s.stage_id) {
                None => errs.push(FieldError::new(
                    at("stage_id"),
                    "no such stage in the client's touchpoint library",
                )),
                Some(tps) => {
                    if let Some(tp) = s.touchpoint_id
                        && !tps.contains(&tp)
                    {
                        errs.push(FieldError::new(
                            at("touchpoint_id"),
                            "no such touchpoint in the step's stage of the client's library",
                        ));
                    }
                }
            },
        }
        if !crate::domain::text::fits(&s.task, 500) {
            errs.push(FieldError::new(at("task"), "must be 1 to 500 characters"));
        }
        if s.agents.len() > MAX_PER_STEP {
            errs.push(FieldError::new(at("agents"), "at most 20 agents"));
        }
        for (j, a) in s.agents.iter().enumerate().take(MAX_PER_STEP) {
            let at = |f: &str| format!("steps[{i}].agents[{j}].{f}");
            if !AGENT_KINDS.contains(&a.kind.as_str()) {
                errs.push(FieldError::new(
                    at("kind"),
                    format!("must be one of {}", AGENT_KINDS.join(", ")),
                ));
            }
            if a.label
                .as_deref()
                .is_some_and(|l| !crate::domain::text::fits(l, 200))
            {
                errs.push(FieldError::new(at("label"), "must be 1 to 200 characters"));
            }
            if !(1..=5).contains(&a.strength) {
                errs.push(FieldError::new(at("strength"), "must be from 1 to 5"));
            }
        }
        if s.barriers.len() > MAX_PER_STEP {
            errs.push(FieldError::new(at("barriers"), "at most 20 barriers"));
        }
        for (j, b) in s.barriers.iter().enumerate().take(MAX_PER_STEP) {
            let at = |f: &str| format!("steps[{i}].barriers[{j}].{f}");
            if !crate::domain::text::fits(&b.label, 300) {
                errs.push(FieldError::new(at("label"), "must be 1 to 300 characters"));
            }
            if let Some(r) = &b.barrier_ref {
                if !crate::domain::questions::valid_key(&r.question_key) {
                    errs.push(FieldError::new(
                        at("barrier_ref.question_key"),
                        "must be a question key: a-z, 0-9 and _, starting with a letter, at most 64",
                    ));
                }
                if !crate::domain::text::fits(&r.value, 200) {
                    errs.push(FieldError::new(
                        at("barrier_ref.value"),
                        "must be 1 to 200 characters",
                    ));
                }
            }
        }
    }
    errs.truncate(100);
    errs
}

/// Steps as stored: texts trimmed.
fn tidy(steps: Vec<TrackStep>) -> Vec<TrackStep> {
    steps
        .into_iter()
        .map(|mut s| {
            s.task = s.task.trim().to_owned();
            for a in &mut s.agents {
                a.label = a.label.as_ref().map(|l| l.trim().to_owned());
            }
            for b in &mut s.barriers {
                b.label = b.label.trim().to_owned();
            }
            s
        })
        .collect()
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
        let after = TrackView::from(a.update(&txn).await?);
        let wake = Self::mark_tracks(&txn, ctx.agency_id, client_id).await?;
        audit::commit(txn, ctx, Audit::update("track", after.id, &before, &after)).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn step(stage: Uuid, tp: Option<Uuid>, strength: i32) -> TrackStep {
        TrackStep {
            stage_id: stage,
            touchpoint_id: tp,
            task: "Find a flat near the parents".into(),
            agents: vec![TrackAgent {
                kind: "family".into(),
                label: None,
                strength,
            }],
            barriers: vec![],
        }
    }

    fn fields(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn steps_must_name_the_clients_own_stages_and_touchpoints() {
        let (stage, other_stage, tp) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let lib: Library = [(stage, HashSet::from([tp])), (other_stage, HashSet::new())].into();
        assert!(check_steps(&[step(stage, Some(tp), 3)], Some(&lib)).is_empty());
        assert_eq!(
            fields(&check_steps(
                &[
                    step(Uuid::now_v7(), None, 3),
                    step(other_stage, Some(tp), 3)
                ],
                Some(&lib)
            )),
            ["steps[0].stage_id", "steps[1].touchpoint_id"]
        );
        assert_eq!(
            fields(&check_steps(&[step(stage, None, 3)], None)),
            ["steps[0].stage_id"]
        );
    }

    #[test]
    fn agent_strength_is_one_to_five() {
        let stage = Uuid::now_v7();
        let lib: Library = [(stage, HashSet::new())].into();
        for (strength, ok) in [(0, false), (1, true), (5, true), (6, false)] {
            let errs = check_steps(&[step(stage, None, strength)], Some(&lib));
            assert_eq!(errs.is_empty(), ok, "strength {strength}");
            if !ok {
                assert_eq!(fields(&errs), ["steps[0].agents[0].strength"]);
            }
        }
    }
}
