//! Ingesting responses: one JSON document, or thousands of NDJSON/CSV rows.
//! Every row is validated before anything is stored; a batch is stored in one
//! transaction, re-sent external ids are counted as duplicates, and the
//! questionnaire's data version grows by one per stored batch.
use chrono::{DateTime, Utc};
use entity::{questionnaire, response};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::answers::AnswerSchema;
use crate::domain::import::{ParsedResponse, ResponseInput, parse_csv, parse_ndjson, parse_one};
use crate::domain::questions::Question;
use crate::error::{AppError, AppResult};
use crate::jobs::{KIND_QUESTIONNAIRE, mark_dirty};
use crate::page::{Page, PageParams};
use crate::questionnaires::{find_questionnaire, load_questions};
use crate::queue::RecomputeJob;
use crate::{Perm, RequestCtx, Services, db, new_id, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Ndjson,
    Csv,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct IngestResult {
    /// Rows received.
    pub received: u64,
    /// Rows stored now.
    pub inserted: u64,
    /// Rows whose `external_id` was already stored (or repeated in the batch).
    pub duplicates: u64,
    /// The questionnaire's data version after this request.
    pub data_version: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ResponseView {
    pub id: Uuid,
    pub questionnaire_version: i32,
    pub external_id: Option<String>,
    pub respondent_ref: Option<String>,
    pub submitted_at: DateTime<Utc>,
    /// Answers keyed by question key, in canonical form.
    #[schema(value_type = Object)]
    pub answers: serde_json::Value,
    pub data_version: i64,
    pub created_at: DateTime<Utc>,
}
crate::has_id!(ResponseView);

impl From<response::Model> for ResponseView {
    fn from(m: response::Model) -> Self {
        Self {
            id: m.id,
            questionnaire_version: m.questionnaire_version,
            external_id: m.external_id,
            respondent_ref: m.respondent_ref,
            submitted_at: m.submitted_at,
            answers: m.answers,
            data_version: m.data_version,
            created_at: m.created_at,
        }
    }
}

fn chunk_rows(backend: DbBackend) -> usize {
    // 9 bound values per row: PostgreSQL takes 65,535 per statement,
    // SQLite 32,766.
    match backend {
        DbBackend::Sqlite => 1_000,
        _ => 5_000,
    }
}

impl Services {
    async fn ingest_target(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
    ) -> AppResult<(questionnaire::Model, Vec<Question>)> {
        ctx.require(Perm::Ingest)?;
        let q = find_questionnaire(&self.db, ctx.agency_id, id).await?;
        if q.archived_at.is_some() {
            return Err(AppError::Conflict("the questionnaire is archived".into()));
        }
        let questions = load_questions(&self.db, ctx.agency_id, id, q.version).await?;
        Ok((q, questions))
    }

    pub async fn submit_response(
        &self,
        ctx: &RequestCtx,
        questionnaire_id: Uuid,
        input: ResponseInput,
    ) -> AppResult<IngestResult> {
        let (q, questions) = self.ingest_target(ctx, questionnaire_id).await?;
        let parsed =
            parse_one(&AnswerSchema::new(&questions), input).map_err(AppError::Validation)?;
        self.store_responses(ctx.agency_id, &q, vec![parsed]).await
    }

    pub async fn import_responses(
        &self,
        ctx: &RequestCtx,
        questionnaire_id: Uuid,
        format: ImportFormat,
        body: bytes::Bytes,
    ) -> AppResult<IngestResult> {
        let (q, questions) = self.ingest_target(ctx, questionnaire_id).await?;
        // Parsing 100k rows is CPU work: keep it off the async executor.
        let parsed = tokio::task::spawn_blocking(move || {
            let schema = AnswerSchema::new(&questions);
            match format {
                ImportFormat::Ndjson => parse_ndjson(&schema, &body),
                ImportFormat::Csv => parse_csv(&schema, &body),
            }
        })
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("import parser: {e}")))?;
        let rows = parsed.map_err(|sink| AppError::Validation(sink.errors))?;
        if rows.is_empty() {
            return Err(AppError::field("body", "no rows to import"));
        }
        self.store_responses(ctx.agency_id, &q, rows).await
    }

    /// Stores validated rows in one transaction and wakes the worker.
    async fn store_responses(
        &self,
        agency_id: Uuid,
        q: &questionnaire::Model,
        rows: Vec<ParsedResponse>,
    ) -> AppResult<IngestResult> {
        let received = rows.len() as u64;
        // Repeats inside one batch count as duplicates, like repeats across batches.
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<ParsedResponse> = rows
            .into_iter()
            .filter(|r| match &r.external_id {
                Some(e) => seen.insert(e.clone()),
                None => true,
            })
            .collect();
        let txn = db::begin_write(&self.db).await?;
        // Taking the questionnaire row first serialises writers of one
        // questionnaire, so versions are gapless and in commit order.
        questionnaire::Entity::update_many()
            .col_expr(
                questionnaire::Column::DataVersion,
                Expr::col(questionnaire::Column::DataVersion).add(1),
            )
            .filter(questionnaire::Column::AgencyId.eq(agency_id))
            .filter(questionnaire::Column::Id.eq(q.id))
            .exec(&txn)
            .await?;
        let version: i64 = questionnaire::Entity::find_by_id(q.id)
            .filter(questionnaire::Column::AgencyId.eq(agency_id))
            .select_only()
            .column(questionnaire::Column::DataVersion)
            .into_tuple()
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound)?;
        let t = now();
        let inserted = if txn.get_database_backend() == DbBackend::Postgres {
            insert_postgres(&txn, agency_id, q, version, t, rows).await?
        } else {
            insert_rows(&txn, agency_id, q, version, t, rows).await?
        };
        if inserted == 0 {
            // Nothing new: leave the data version as it was.
            txn.rollback().await?;
            return Ok(IngestResult {
                received,
                inserted,
                duplicates: received,
                data_version: version - 1,
            });
        }
        let wake = mark_dirty(&txn, agency_id, KIND_QUESTIONNAIRE, q.id, version).await?;
        let wake_hypotheses = crate::jobs::bump_target(
            &txn,
            agency_id,
            crate::hypotheses::KIND_HYPOTHESES,
            q.client_id,
        )
        .await?;
        let wake_ux = if q.kind == "mystery_shopper" {
            crate::jobs::bump_target(&txn, agency_id, crate::ux::KIND_UX, q.client_id).await?
        } else {
            false
        };
        txn.commit().await?;
        if wake_hypotheses {
            self.enqueue_recompute(RecomputeJob {
                agency_id,
                kind: crate::hypotheses::KIND_HYPOTHESES.into(),
                target_id: q.client_id,
            })
            .await;
        }
        if wake_ux {
            self.enqueue_recompute(RecomputeJob {
                agency_id,
                kind: crate::ux::KIND_UX.into(),
                target_id: q.client_id,
            })
            .await;
        }
        if wake {
            self.enqueue_recompute(RecomputeJob {
                agency_id,
                kind: KIND_QUESTIONNAIRE.into(),
                target_id: q.id,
            })
            .await;
        }
        Ok(IngestResult {
            received,
            inserted,
            duplicates: received - inserted,
            data_version: version,
        })
    }

    pub async fn list_responses(
        &self,
        ctx: &RequestCtx,
        questionnaire_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<ResponseView>> {
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        find_questionnaire(&self.db, ctx.agency_id, questionnaire_id).await?;
        let q = response::Entity::find()
            .filter(response::Column::AgencyId.eq(ctx.agency_id))
            .filter(response::Column::QuestionnaireId.eq(questionnaire_id));
        req.fetch(q, response::Column::Id, &self.db, ResponseView::from)
            .await
    }
}

/// Multi-row INSERTs through sea-orm (SQLite).
async fn insert_rows(
    txn: &sea_orm::DatabaseTransaction,
    agency_id: Uuid,
    q: &questionnaire::Model,
    version: i64,
    t: DateTime<Utc>,
    rows: Vec<ParsedResponse>,
) -> AppResult<u64> {
    let chunk = chunk_rows(txn.get_database_backend());
    let mut inserted = 0u64;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let models: Vec<response::ActiveModel> = rows
            .by_ref()
            .take(chunk)
            .map(|r| response::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(agency_id),
                questionnaire_id: Set(q.id),
                questionnaire_version: Set(q.version),
                external_id: Set(r.external_id),
                respondent_ref: Set(r.respondent_ref),
                submitted_at: Set(r.submitted_at.unwrap_or(t)),
                answers: Set(r.answers),
                data_version: Set(version),
                created_at: Set(t),
            })
            .collect();
        let res = response::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    response::Column::AgencyId,
                    response::Column::QuestionnaireId,
                    response::Column::ExternalId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await;
        inserted += match res {
            Ok(n) => n,
            Err(DbErr::RecordNotInserted) => 0,
            Err(e) => return Err(e.into()),
        };
    }
    Ok(inserted)
}

/// PostgreSQL: the rows travel as one JSON document per 10,000 rows and are
/// expanded server-side by `jsonb_to_recordset`, so a statement carries six
/// parameters instead of one per value: binding 50,000 parameters per
/// statement was most of the time of an import. Each document is written on
/// a blocking thread while PostgreSQL stores the previous one, so the import
/// runs at the pace of the database rather than the sum of both.
async fn insert_postgres(
    txn: &sea_orm::DatabaseTransaction,
    agency_id: Uuid,
    q: &questionnaire::Model,
    version: i64,
    t: DateTime<Utc>,
    rows: Vec<ParsedResponse>,
) -> AppResult<u64> {
    const SQL: &str = "INSERT INTO responses (id, agency_id, questionnaire_id, questionnaire_version, \
        external_id, respondent_ref, submitted_at, answers, data_version, created_at) \
        SELECT r.id, $1, $2, $3, r.external_id, r.respondent_ref, COALESCE(r.submitted_at, $5), \
        r.answers, $4, $5 \
        FROM jsonb_to_recordset($6::text::jsonb) AS r(id uuid, external_id text, respondent_ref text, \
        submitted_at timestamptz, answers jsonb) \
        ON CONFLICT (agency_id, questionnaire_id, external_id) DO NOTHING";
    const CHUNK: usize = 10_000;
    #[derive(Serialize)]
    struct Row<'a> {
        id: Uuid,
        external_id: &'a Option<String>,
        respondent_ref: &'a Option<String>,
        submitted_at: &'a Option<DateTime<Utc>>,
        answers: &'a serde_json::Value,
    }
    let encode = |chunk: Vec<ParsedResponse>| {
        tokio::task::spawn_blocking(move || {
            let doc: Vec<Row<'_>> = chunk
                .iter()
                .map(|r| Row {
                    id: new_id(),
                    external_id: &r.external_id,
                    respondent_ref: &r.respondent_ref,
                    submitted_at: &r.submitted_at,
                    answers: &r.answers,
                })
                .collect();
            serde_json::to_string(&doc)
        })
    };
    let mut rows = rows.into_iter();
    let mut next_chunk = move || {
        let chunk: Vec<ParsedResponse> = rows.by_ref().take(CHUNK).collect();
        (!chunk.is_empty()).then_some(chunk)
    };
    let mut inserted = 0u64;
    let mut next = next_chunk().map(encode);
    while let Some(encoding) = next.take() {
        let doc = encoding
            .await
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("while encoding rows: {e}")))?
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("while encoding rows: {e}")))?;
        next = next_chunk().map(encode);
        let stmt = sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            SQL,
            [
                agency_id.into(),
                q.id.into(),
                q.version.into(),
                version.into(),
                t.into(),
                doc.into(),
            ],
        );
        inserted += txn.execute_raw(stmt).await?.rows_affected();
    }
    Ok(inserted)
}

/// Counts a questionnaire's stored responses.
pub async fn count_responses<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    questionnaire_id: Uuid,
) -> AppResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(response::Entity::find()
        .filter(response::Column::AgencyId.eq(agency_id))
        .filter(response::Column::QuestionnaireId.eq(questionnaire_id))
        .count(db)
        .await?)
}
