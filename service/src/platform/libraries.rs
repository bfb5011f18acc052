//! Touchpoint libraries: the built-in template (read-only, shipped with the
//! product) and agencies' own clones of it, with CJM stages and touchpoints.
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use entity::{cjm_stage, client, touchpoint, touchpoint_library};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::valid_key;
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::touchpoint_refs::{Referenced, questionnaires_using};
use crate::{Perm, RequestCtx, Services, infra::db, new_id, now};
use serde_json::json;

/// The fixed id of the built-in template library.
pub const TEMPLATE_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);

#[derive(Deserialize)]
struct TemplateFile {
    name: String,
    stages: Vec<TemplateStage>,
}

#[derive(Deserialize)]
struct TemplateStage {
    key: String,
    name_en: String,
    name_ru: String,
    touchpoints: Vec<TemplateTouchpoint>,
}

#[derive(Deserialize)]
struct TemplateTouchpoint {
    key: String,
    name_en: String,
    name_ru: String,
    channel: String,
}

static TEMPLATE: LazyLock<LibraryView> = LazyLock::new(|| {
    let file: TemplateFile = serde_json::from_str(include_str!("templates/touchpoints.json"))
        .unwrap_or(TemplateFile {
            name: "template".into(),
            stages: vec![],
        });
    // Ids derived from the template id so they are stable across releases.
    let mut n: u128 = 1;
    let mut next = || {
        n += 1;
        Uuid::from_u128(TEMPLATE_ID.as_u128() + (n << 16))
    };
    LibraryView {
        id: TEMPLATE_ID,
        name: file.name,
        is_template: true,
        source: None,
        created_at: DateTime::<Utc>::UNIX_EPOCH,
        stages: file
            .stages
            .into_iter()
            .enumerate()
            .map(|(i, s)| StageView {
                id: next(),
                key: s.key,
                name_en: s.name_en,
                name_ru: s.name_ru,
                position: i as i32,
                touchpoints: s
                    .touchpoints
                    .into_iter()
                    .enumerate()
                    .map(|(j, t)| TouchpointView {
                        id: next(),
                        key: t.key,
                        name_en: t.name_en,
                        name_ru: t.name_ru,
                        channel: t.channel,
                        position: j as i32,
                    })
                    .collect(),
            })
            .collect(),
    }
});

pub fn template() -> &'static LibraryView {
    &TEMPLATE
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct TouchpointView {
    pub id: Uuid,
    pub key: String,
    pub name_en: String,
    pub name_ru: String,
    /// `online` or `offline`.
    pub channel: String,
    pub position: i32,
}

impl From<touchpoint::Model> for TouchpointView {
    fn from(m: touchpoint::Model) -> Self {
        Self {
            id: m.id,
            key: m.key,
            name_en: m.name_en,
            name_ru: m.name_ru,
            channel: m.channel,
            position: m.position,
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct StageView {
    pub id: Uuid,
    pub key: String,
    pub name_en: String,
    pub name_ru: String,
    pub position: i32,
    pub touchpoints: Vec<TouchpointView>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct LibraryView {
    pub id: Uuid,
    pub name: String,
    pub is_template: bool,
    /// What it was cloned from.
    pub source: Option<String>,
    pub created_at: DateTime<Utc>,
    pub stages: Vec<StageView>,
}

/// A library in a list, without its stages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct LibrarySummary {
    pub id: Uuid,
    pub name: String,
    pub is_template: bool,
    pub source: Option<String>,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(LibrarySummary);

impl From<touchpoint_library::Model> for LibrarySummary {
    fn from(m: touchpoint_library::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            is_template: false,
            source: m.source,
            created_at: m.created_at,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CloneLibrary {
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_200_or_null)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub key: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name_en: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name_ru: String,
    #[serde(default)]
    pub position: Option<i32>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct TouchpointInput {
    pub stage_id: Uuid,
    #[schema(pattern = "^[a-z][a-z0-9_]{0,63}$")]
    pub key: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name_en: String,
    #[schema(schema_with = crate::infra::docs::text_200)]
    pub name_ru: String,
    #[schema(schema_with = crate::infra::docs::touchpoint_channel)]
    pub channel: String,
    #[serde(default)]
    pub position: Option<i32>,
}

fn check_names(key: &str, en: &str, ru: &str, errs: &mut Vec<FieldError>) {
    if !valid_key(key) {
        errs.push(FieldError::new(
            "key",
            "must be lower-case a-z, 0-9, _ (64 at most)",
        ));
    }
    for (f, v) in [("name_en", en), ("name_ru", ru)] {
        if !crate::domain::text::fits(v, 200) {
            errs.push(FieldError::new(f, "must be 1 to 200 characters"));
        }
    }
}

fn check_touchpoint(input: &TouchpointInput) -> AppResult<()> {
    let mut errs = Vec::new();
    check_names(&input.key, &input.name_en, &input.name_ru, &mut errs);
    if input.channel != "online" && input.channel != "offline" {
        errs.push(FieldError::new("channel", "must be online or offline"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

fn unique_conflict(e: sea_orm::DbErr, what: &str) -> AppError {
    if crate::infra::db::is_unique_violation(&e) {
        AppError::Conflict(format!("a {what} with this key exists in the library"))
    } else {
        e.into()
    }
}

pub async fn find_library<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<touchpoint_library::Model> {
    touchpoint_library::Entity::find_by_id(id)
        .filter(touchpoint_library::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

/// Is this touchpoint one of the agency's?
pub async fn touchpoint_exists<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<bool> {
    Ok(touchpoint::Entity::find_by_id(id)
        .filter(touchpoint::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .is_some())
}

/// The agency's CJM stage `id` if it is in the client's touchpoint library
/// (a client without a library: in any of the agency's libraries, as
/// touchpoints are found).
pub async fn client_stage<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    id: Uuid,
) -> AppResult<Option<cjm_stage::Model>> {
    let Some(stage) = cjm_stage::Entity::find_by_id(id)
        .filter(cjm_stage::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let library = client::Entity::find_by_id(client_id)
        .filter(client::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .and_then(|c| c.touchpoint_library_id);
    Ok(library
        .is_none_or(|lib| lib == stage.library_id)
        .then_some(stage))
}

/// Is stage `id` one the client's questions may name ([`client_stage`])?
pub async fn stage_of_client<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    id: Uuid,
) -> AppResult<bool> {
    Ok(client_stage(db, agency_id, client_id, id).await?.is_some())
}

impl Services {
    pub async fn list_libraries(
        &self,
        ctx: &RequestCtx,
        page: PageParams,
    ) -> AppResult<Page<LibrarySummary>> {
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let q = touchpoint_library::Entity::find()
            .filter(touchpoint_library::Column::AgencyId.eq(ctx.agency_id));
        let mut page = req
            .fetch(
                q,
                touchpoint_library::Column::Id,
                &self.db,
                LibrarySummary::from,
            )
            .await?;
        if req.after.is_none() {
            let t = template();
            page.items.insert(
                0,
                LibrarySummary {
                    id: t.id,
                    name: t.name.clone(),
                    is_template: true,
                    source: None,
                    created_at: t.created_at,
                },
            );
        }
        Ok(page)
    }

    pub async fn get_library(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<LibraryView> {
        ctx.require(Perm::Read)?;
        if id == TEMPLATE_ID {
            return Ok(template().clone());
        }
        let lib = find_library(&self.db, ctx.agency_id, id).await?;
        self.library_view(lib).await
    }

    async fn library_view(&self, lib: touchpoint_library::Model) -> AppResult<LibraryView> {
        let stages = cjm_stage::Entity::find()
            .filter(cjm_stage::Column::AgencyId.eq(lib.agency_id))
            .filter(cjm_stage::Column::LibraryId.eq(lib.id))
            .order_by_asc(cjm_stage::Column::Position)
            .all(&self.db)
            .await?;
        let tps = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(lib.agency_id))
            .filter(touchpoint::Column::LibraryId.eq(lib.id))
            .order_by_asc(touchpoint::Column::Position)
            .all(&self.db)
            .await?;
        Ok(LibraryView {
            id: lib.id,
            name: lib.name,
            is_template: false,
            source: lib.source,
            created_at: lib.created_at,
            stages: stages
                .into_iter()
                .map(|s| StageView {
                    touchpoints: tps
                        .iter()
                        .filter(|t| t.stage_id == s.id)
                        .cloned()
                        .map(TouchpointView::from)
                        .collect(),
                    id: s.id,
                    key: s.key,
                    name_en: s.name_en,
                    name_ru: s.name_ru,
                    position: s.position,
                })
                .collect(),
        })
    }

    /// Clones the template or one of the agency's libraries.
    pub async fn clone_library(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: CloneLibrary,
    ) -> AppResult<LibraryView> {
        ctx.require(Perm::WriteResearch)?;
        let source = self.get_library(ctx, id).await?;
        if input
            .name
            .as_deref()
            .is_some_and(|n| !crate::domain::text::fits(n, 200))
        {
            return Err(AppError::field("name", "must be 1 to 200 characters"));
        }
        let name = input.name.map(|n| n.trim().to_owned()).unwrap_or_else(|| {
            let source: String = source.name.chars().take(193).collect();
            format!("{source} (copy)")
        });
        let t = now();
        let lib_id = new_id();
        let cloned = json!({"name": name, "source_id": source.id});
        let txn = db::begin_write(&self.db).await?;
        touchpoint_library::ActiveModel {
            id: Set(lib_id),
            agency_id: Set(ctx.agency_id),
            name: Set(name),
            source: Set(Some(if source.is_template {
                "template".to_owned()
            } else {
                source.id.to_string()
            })),
            created_at: Set(t),
            updated_at: Set(t),
        }
        .insert(&txn)
        .await?;
        let mut stages = Vec::new();
        let mut tps = Vec::new();
        for s in &source.stages {
            let stage_id = new_id();
            stages.push(cjm_stage::ActiveModel {
                id: Set(stage_id),
                agency_id: Set(ctx.agency_id),
                library_id: Set(lib_id),
                key: Set(s.key.clone()),
                name_en: Set(s.name_en.clone()),
                name_ru: Set(s.name_ru.clone()),
                position: Set(s.position),
            });
            for tp in &s.touchpoints {
                tps.push(touchpoint::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(ctx.agency_id),
                    library_id: Set(lib_id),
                    stage_id: Set(stage_id),
                    key: Set(tp.key.clone()),
                    name_en: Set(tp.name_en.clone()),
                    name_ru: Set(tp.name_ru.clone()),
                    channel: Set(tp.channel.clone()),
                    position: Set(tp.position),
                });
            }
        }
        if !stages.is_empty() {
            cjm_stage::Entity::insert_many(stages).exec(&txn).await?;
        }
        if !tps.is_empty() {
            touchpoint::Entity::insert_many(tps).exec(&txn).await?;
        }
        let a = Audit::new("touchpoint_library", "clone", Some(lib_id)).with(cloned);
        audit::commit(txn, ctx, a).await?;
        let lib = find_library(&self.db, ctx.agency_id, lib_id).await?;
        self.library_view(lib).await
    }

    async fn editable_library(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<touchpoint_library::Model> {
        ctx.require(Perm::WriteResearch)?;
        if id == TEMPLATE_ID {
            return Err(AppError::Forbidden(
                "the template library is read-only; clone it".into(),
            ));
        }
        find_library(&self.db, ctx.agency_id, id).await
    }

    pub async fn add_stage(
        &self,
        ctx: &RequestCtx,
        library_id: Uuid,
        input: StageInput,
    ) -> AppResult<LibraryView> {
        let lib = self.editable_library(ctx, library_id).await?;
        let mut errs = Vec::new();
        check_names(&input.key, &input.name_en, &input.name_ru, &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let position = match input.position {
            Some(p) => p,
            None => cjm_stage::Entity::find()
                .filter(cjm_stage::Column::AgencyId.eq(ctx.agency_id))
                .filter(cjm_stage::Column::LibraryId.eq(lib.id))
                .all(&self.db)
                .await?
                .iter()
                .map(|s| s.position + 1)
                .max()
                .unwrap_or(0),
        };
        let txn = db::begin_write(&self.db).await?;
        let stage = cjm_stage::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            library_id: Set(lib.id),
            key: Set(input.key),
            name_en: Set(input.name_en.trim().to_owned()),
            name_ru: Set(input.name_ru.trim().to_owned()),
            position: Set(position),
        }
        .insert(&txn)
        .await
        .map_err(|e| unique_conflict(e, "stage"))?;
        audit::commit(txn, ctx, Audit::create("cjm_stage", stage.id, &stage)).await?;
        self.library_view(lib).await
    }

    pub async fn delete_stage(
        &self,
        ctx: &RequestCtx,
        library_id: Uuid,
        stage_id: Uuid,
    ) -> AppResult<()> {
        let lib = self.editable_library(ctx, library_id).await?;
        let txn = db::begin_write(&self.db).await?;
        let has_tps = touchpoint::Entity::find()
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint::Column::StageId.eq(stage_id))
            .one(&txn)
            .await?
            .is_some();
        if has_tps {
            return Err(AppError::Conflict(
                "the stage has touchpoints; delete or move them first".into(),
            ));
        }
        in_use(&txn, ctx, Referenced::Stage(stage_id), "stage").await?;
        let res = cjm_stage::Entity::delete_many()
            .filter(cjm_stage::Column::AgencyId.eq(ctx.agency_id))
            .filter(cjm_stage::Column::LibraryId.eq(lib.id))
            .filter(cjm_stage::Column::Id.eq(stage_id))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::NotFound);
        }
        let gone = json!({"id": stage_id, "library_id": lib.id});
        audit::commit(txn, ctx, Audit::delete("cjm_stage", stage_id, &gone)).await
    }

    async fn check_stage(
        &self,
        ctx: &RequestCtx,
        library_id: Uuid,
        stage_id: Uuid,
    ) -> AppResult<()> {
        let found = cjm_stage::Entity::find_by_id(stage_id)
            .filter(cjm_stage::Column::AgencyId.eq(ctx.agency_id))
            .filter(cjm_stage::Column::LibraryId.eq(library_id))
            .one(&self.db)
            .await?;
        if found.is_none() {
            return Err(AppError::field("stage_id", "no such stage in this library"));
        }
        Ok(())
    }

    pub async fn add_touchpoint(
        &self,
        ctx: &RequestCtx,
        library_id: Uuid,
        input: TouchpointInput,
    ) -> AppResult<TouchpointView> {
        let lib = self.editable_library(ctx, library_id).await?;
        check_touchpoint(&input)?;
        self.check_stage(ctx, lib.id, input.stage_id).await?;
        let txn = db::begin_write(&self.db).await?;
        let m = touchpoint::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            library_id: Set(lib.id),
            stage_id: Set(input.stage_id),
            key: Set(input.key),
            name_en: Set(input.name_en.trim().to_owned()),
            name_ru: Set(input.name_ru.trim().to_owned()),
            channel: Set(input.channel),
            position: Set(input.position.unwrap_or(1000)),
        }
        .insert(&txn)
        .await
        .map_err(|e| unique_conflict(e, "touchpoint"))?;
        audit::commit(txn, ctx, Audit::create("touchpoint", m.id, &m)).await?;
        Ok(m.into())
    }

    pub async fn update_touchpoint(
        &self,
        ctx: &RequestCtx,
        library_id: Uuid,
        touchpoint_id: Uuid,
        input: TouchpointInput,
    ) -> AppResult<TouchpointView> {
        let lib = self.editable_library(ctx, library_id).await?;
        let existing = touchpoint::Entity::find_by_id(touchpoint_id)
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint::Column::LibraryId.eq(lib.id))
            .one(&self.db)
            .await?
            .ok_or(AppError::NotFound)?;
        check_touchpoint(&input)?;
        self.check_stage(ctx, lib.id, input.stage_id).await?;
        let position = input.position.unwrap_or(existing.position);
        let before = existing.clone();
        let mut a: touchpoint::ActiveModel = existing.into();
        a.stage_id = Set(input.stage_id);
        a.key = Set(input.key);
        a.name_en = Set(input.name_en.trim().to_owned());
        a.name_ru = Set(input.name_ru.trim().to_owned());
        a.channel = Set(input.channel);
        a.position = Set(position);
        let m = audit::update_one(&self.db, ctx, "touchpoint", before.id, &before, a, |m| m)
            .await
            .map_err(|e| unique_conflict(e, "touchpoint"))?;
        Ok(m.into())
    }

    pub async fn delete_touchpoint(
        &self,
        ctx: &RequestCtx,
        library_id: Uuid,
        touchpoint_id: Uuid,
    ) -> AppResult<()> {
        let lib = self.editable_library(ctx, library_id).await?;
        let txn = db::begin_write(&self.db).await?;
        in_use(
            &txn,
            ctx,
            Referenced::Touchpoint(touchpoint_id),
            "touchpoint",
        )
        .await?;
        let res = touchpoint::Entity::delete_many()
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint::Column::LibraryId.eq(lib.id))
            .filter(touchpoint::Column::Id.eq(touchpoint_id))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::NotFound);
        }
        let gone = json!({"id": touchpoint_id, "library_id": lib.id});
        audit::commit(txn, ctx, Audit::delete("touchpoint", touchpoint_id, &gone)).await
    }

    /// Libraries in use by a client cannot be deleted.
    pub async fn delete_library(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let lib = self.editable_library(ctx, id).await?;
        let used = client::Entity::find()
            .filter(client::Column::AgencyId.eq(ctx.agency_id))
            .filter(client::Column::TouchpointLibraryId.eq(lib.id))
            .one(&self.db)
            .await?
            .is_some();
        if used {
            return Err(AppError::Conflict("a client uses this library".into()));
        }
        let txn = db::begin_write(&self.db).await?;
        touchpoint::Entity::delete_many()
            .filter(touchpoint::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint::Column::LibraryId.eq(lib.id))
            .exec(&txn)
            .await?;
        cjm_stage::Entity::delete_many()
            .filter(cjm_stage::Column::AgencyId.eq(ctx.agency_id))
            .filter(cjm_stage::Column::LibraryId.eq(lib.id))
            .exec(&txn)
            .await?;
        touchpoint_library::Entity::delete_many()
            .filter(touchpoint_library::Column::AgencyId.eq(ctx.agency_id))
            .filter(touchpoint_library::Column::Id.eq(lib.id))
            .exec(&txn)
            .await?;
        audit::commit(txn, ctx, Audit::delete("touchpoint_library", lib.id, &lib)).await
    }
}

/// 409 while current questions point at `r` (a barrier question at a
/// stage, a rating at a touchpoint): deleting it would leave them
/// pointing at nothing, and their results without a stage or touchpoint.
async fn in_use<C: ConnectionTrait>(
    db: &C,
    ctx: &RequestCtx,
    r: Referenced,
    what: &str,
) -> AppResult<()> {
    let titles = questionnaires_using(db, ctx.agency_id, r).await?;
    match titles.as_slice() {
        [] => Ok(()),
        [one] => Err(AppError::Conflict(format!(
            "questions of the questionnaire \"{one}\" point at this {what}; change them first"
        ))),
        [first, rest @ ..] => Err(AppError::Conflict(format!(
            "questions of the questionnaire \"{first}\" and {} more point at this {what}; change them first",
            rest.len()
        ))),
    }
}
