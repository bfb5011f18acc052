//! Questionnaires with versioned questions. A change that could invalidate
//! stored responses creates a new version; other edits change the current one.
use chrono::{DateTime, Utc};
use entity::{question, questionnaire};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::questions::{
    Question, QuestionInput, QuestionRole, QuestionType, is_breaking_change, parse_questions,
};
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::ledger::{KIND_QUESTIONNAIRE, ensure_target};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::platform::libraries::{stage_of_client, touchpoint_exists};
use crate::research::factors::factor_exists;
use crate::{Perm, RequestCtx, Services, infra::db, new_id, now};

pub const KINDS: [&str; 5] = [
    "customer_panel",
    "segment_survey",
    "mystery_shopper",
    "non_buyer",
    "brief",
];

/// [`KINDS`], for the OpenAPI document.
pub fn kind_schema() -> utoipa::openapi::Object {
    crate::infra::docs::one_of(&KINDS)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct QuestionnaireView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub title: String,
    /// `customer_panel`, `segment_survey`, `mystery_shopper`, `non_buyer` or `brief`.
    pub kind: String,
    /// Version of the question set.
    pub version: i32,
    /// Grows with every change of the stored responses.
    pub data_version: i64,
    pub questions: Vec<Question>,
    pub archived_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(QuestionnaireView);

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CreateQuestionnaire {
    #[schema(schema_with = crate::infra::docs::text_300)]
    pub title: String,
    #[schema(schema_with = kind_schema)]
    pub kind: String,
    #[schema(min_items = 1)]
    pub questions: Vec<QuestionInput>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct UpdateQuestionnaire {
    #[serde(default)]
    #[schema(schema_with = crate::infra::docs::text_300_or_null)]
    pub title: Option<String>,
    /// The whole new question list, if it changes.
    #[serde(default)]
    #[schema(min_items = 1)]
    pub questions: Option<Vec<QuestionInput>>,
}

pub fn question_from_model(m: question::Model) -> Question {
    Question {
        key: m.key,
        label: m.label,
        qtype: QuestionType::parse(&m.qtype).unwrap_or(QuestionType::Text),
        role: m.role.as_deref().and_then(QuestionRole::parse),
        required: m.required,
        options: serde_json::from_value(m.options).unwrap_or_default(),
        min: m.min_value,
        max: m.max_value,
        choice_factor_id: m.choice_factor_id,
        touchpoint_id: m.touchpoint_id,
        stage_id: m.stage_id,
    }
}

/// The questions of one version, in order.
pub async fn load_questions<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    questionnaire_id: Uuid,
    version: i32,
) -> AppResult<Vec<Question>> {
    Ok(question::Entity::find()
        .filter(question::Column::AgencyId.eq(agency_id))
        .filter(question::Column::QuestionnaireId.eq(questionnaire_id))
        .filter(question::Column::Version.eq(version))
        .order_by_asc(question::Column::Position)
        .all(db)
        .await?
        .into_iter()
        .map(question_from_model)
        .collect())
}

pub async fn find_questionnaire<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
) -> AppResult<questionnaire::Model> {
    questionnaire::Entity::find_by_id(id)
        .filter(questionnaire::Column::AgencyId.eq(agency_id))
        .one(db)
        .await?
        .ok_or(AppError::NotFound)
}

async fn insert_questions<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    questionnaire_id: Uuid,
    version: i32,
    questions: &[Question],
) -> AppResult<()> {
    let rows: Vec<question::ActiveModel> = questions
        .iter()
        .enumerate()
        .map(|(i, q)| question::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(agency_id),
            questionnaire_id: Set(questionnaire_id),
            version: Set(version),
            position: Set(i as i32),
            key: Set(q.key.clone()),
            label: Set(q.label.clone()),
            qtype: Set(q.qtype.as_str().into()),
            role: Set(q.role.map(|r| r.as_str().to_owned())),
            required: Set(q.required),
            options: Set(serde_json::json!(q.options)),
            min_value: Set(q.min),
            max_value: Set(q.max),
            choice_factor_id: Set(q.choice_factor_id),
            touchpoint_id: Set(q.touchpoint_id),
            stage_id: Set(q.stage_id),
        })
        .collect();
    if !rows.is_empty() {
        question::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

fn check_title(title: &str, errs: &mut Vec<FieldError>) {
    if !crate::domain::text::fits(title, 300) {
        errs.push(FieldError::new("title", "must be 1 to 300 characters"));
    }
}

/// Parses questions and checks that linked factors and touchpoints are the
/// client's (on `db`: a transaction sees the factors it created).
async fn checked_questions<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    inputs: Vec<QuestionInput>,
    errs: &mut Vec<FieldError>,
) -> AppResult<Vec<Question>> {
    let questions = match parse_questions(inputs) {
        Ok(q) => q,
        Err(e) => {
            errs.extend(e);
            return Ok(vec![]);
        }
    };
    for (i, q) in questions.iter().enumerate() {
        if let Some(f) = q.choice_factor_id
            && !factor_exists(db, agency_id, client_id, f).await?
        {
            errs.push(FieldError::new(
                format!("questions[{i}].choice_factor_id"),
                "no such choice factor for this client",
            ));
        }
        if let Some(t) = q.touchpoint_id
            && !touchpoint_exists(db, agency_id, t).await?
        {
            errs.push(FieldError::new(
                format!("questions[{i}].touchpoint_id"),
                "no such touchpoint in this agency's libraries",
            ));
        }
        if let Some(s) = q.stage_id
            && !stage_of_client(db, agency_id, client_id, s).await?
        {
            errs.push(FieldError::new(
                format!("questions[{i}].stage_id"),
                "no such CJM stage in the client's touchpoint library",
            ));
        }
    }
    Ok(questions)
}

/// A new questionnaire as creating one checks it: title, kind and
/// questions, with the links the client's. Every error at once.
pub(crate) async fn check_new_questionnaire<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    input: CreateQuestionnaire,
) -> Result<NewQuestionnaire, AppError> {
    let mut errs = Vec::new();
    check_title(&input.title, &mut errs);
    if !KINDS.contains(&input.kind.as_str()) {
        errs.push(FieldError::new(
            "kind",
            format!("must be one of {}", KINDS.join(", ")),
        ));
    }
    let questions = checked_questions(db, agency_id, client_id, input.questions, &mut errs).await?;
    if !errs.is_empty() {
        return Err(AppError::Validation(errs));
    }
    Ok(NewQuestionnaire {
        title: input.title.trim().to_owned(),
        kind: input.kind,
        questions,
    })
}

/// A checked new questionnaire, ready to store.
pub(crate) struct NewQuestionnaire {
    title: String,
    kind: String,
    questions: Vec<Question>,
}

/// Stores a checked questionnaire (version 1) of `client_id`; its id.
pub(crate) async fn insert_new_questionnaire<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    new: NewQuestionnaire,
) -> AppResult<Uuid> {
    let id = new_id();
    let t = now();
    questionnaire::ActiveModel {
        id: Set(id),
        agency_id: Set(agency_id),
        client_id: Set(client_id),
        title: Set(new.title),
        kind: Set(new.kind),
        version: Set(1),
        data_version: Set(0),
        archived_at: Set(None),
        created_at: Set(t),
        updated_at: Set(t),
    }
    .insert(db)
    .await?;
    insert_questions(db, agency_id, id, 1, &new.questions).await?;
    ensure_target(db, agency_id, KIND_QUESTIONNAIRE, id).await?;
    Ok(id)
}

impl Services {
    pub async fn create_questionnaire(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: CreateQuestionnaire,
    ) -> AppResult<QuestionnaireView> {
        ctx.require(Perm::WriteResearch)?;
        find_client(&self.db, ctx.agency_id, client_id).await?;
        let new = check_new_questionnaire(&self.db, ctx.agency_id, client_id, input).await?;
        let txn = db::begin_write(&self.db).await?;
        let id = insert_new_questionnaire(&txn, ctx.agency_id, client_id, new).await?;
        let m = find_questionnaire(&txn, ctx.agency_id, id).await?;
        audit::commit(txn, ctx, Audit::create("questionnaire", id, &m)).await?;
        self.get_questionnaire(ctx, id).await
    }

    pub async fn get_questionnaire(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<QuestionnaireView> {
        ctx.require(Perm::Read)?;
        let q = find_questionnaire(&self.db, ctx.agency_id, id).await?;
        let questions = load_questions(&self.db, ctx.agency_id, id, q.version).await?;
        Ok(view(q, questions))
    }

    pub async fn list_questionnaires(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<QuestionnaireView>> {
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        find_client(&self.db, ctx.agency_id, client_id).await?;
        let q = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(ctx.agency_id))
            .filter(questionnaire::Column::ClientId.eq(client_id));
        let page = req
            .fetch(q, questionnaire::Column::Id, &self.db, |m| m)
            .await?;
        // One query for all questions of the page, not one per questionnaire.
        let ids: Vec<Uuid> = page.items.iter().map(|q| q.id).collect();
        let all = question::Entity::find()
            .filter(question::Column::AgencyId.eq(ctx.agency_id))
            .filter(question::Column::QuestionnaireId.is_in(ids))
            .order_by_asc(question::Column::Position)
            .all(&self.db)
            .await?;
        let items = page
            .items
            .into_iter()
            .map(|q| {
                let qs = all
                    .iter()
                    .filter(|m| m.questionnaire_id == q.id && m.version == q.version)
                    .cloned()
                    .map(question_from_model)
                    .collect();
                view(q, qs)
            })
            .collect();
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }

    pub async fn update_questionnaire(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: UpdateQuestionnaire,
    ) -> AppResult<QuestionnaireView> {
        ctx.require(Perm::WriteResearch)?;
        let existing = find_questionnaire(&self.db, ctx.agency_id, id).await?;
        let mut errs = Vec::new();
        if let Some(t) = &input.title {
            check_title(t, &mut errs);
        }
        let new_questions = match input.questions {
            Some(qs) => Some(
                checked_questions(&self.db, ctx.agency_id, existing.client_id, qs, &mut errs)
                    .await?,
            ),
            None => None,
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let txn = db::begin_write(&self.db).await?;
        let mut version = existing.version;
        if let Some(new_q) = new_questions {
            let old = load_questions(&txn, ctx.agency_id, id, version).await?;
            if old != new_q {
                let has_responses = existing.data_version > 0;
                if has_responses && is_breaking_change(&old, &new_q) {
                    version += 1;
                } else {
                    question::Entity::delete_many()
                        .filter(question::Column::AgencyId.eq(ctx.agency_id))
                        .filter(question::Column::QuestionnaireId.eq(id))
                        .filter(question::Column::Version.eq(version))
                        .exec(&txn)
                        .await?;
                }
                insert_questions(&txn, ctx.agency_id, id, version, &new_q).await?;
            }
        }
        let before = existing.clone();
        let mut a: questionnaire::ActiveModel = existing.into();
        if let Some(t) = input.title {
            a.title = Set(t.trim().to_owned());
        }
        a.version = Set(version);
        a.updated_at = Set(now());
        audit::record_update(&txn, ctx, "questionnaire", id, &before, &a, |m| m).await?;
        a.update(&txn).await?;
        txn.commit().await?;
        self.get_questionnaire(ctx, id).await
    }

    pub async fn set_questionnaire_archived(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        archived: bool,
    ) -> AppResult<QuestionnaireView> {
        ctx.require(Perm::WriteResearch)?;
        let existing = find_questionnaire(&self.db, ctx.agency_id, id).await?;
        let mut a: questionnaire::ActiveModel = existing.into();
        a.archived_at = Set(archived.then(now));
        a.updated_at = Set(now());
        let txn = db::begin_write(&self.db).await?;
        a.update(&txn).await?;
        let verb = if archived { "archive" } else { "unarchive" };
        audit::commit(txn, ctx, Audit::new("questionnaire", verb, Some(id))).await?;
        self.get_questionnaire(ctx, id).await
    }
}

fn view(q: questionnaire::Model, questions: Vec<Question>) -> QuestionnaireView {
    QuestionnaireView {
        id: q.id,
        client_id: q.client_id,
        title: q.title,
        kind: q.kind,
        version: q.version,
        data_version: q.data_version,
        questions,
        archived_at: q.archived_at,
        created_at: q.created_at,
        updated_at: q.updated_at,
    }
}
