//! Ingesting responses: one JSON document, or thousands of NDJSON/CSV rows.
//! Every row is validated before anything is stored; a batch is stored in one
//! transaction, re-sent external ids are counted as duplicates, and the
//! questionnaire's data version grows by one per stored batch.
use chrono::{DateTime, Utc};
use entity::{questionnaire, response};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::answers::AnswerSchema;
use crate::domain::import::{ParsedResponse, ResponseInput, parse_csv, parse_ndjson, parse_one};
use crate::domain::questions::{Question, QuestionType};
use crate::infra::audit::{self, Audit};
use crate::infra::error::{AppError, AppResult};
use crate::infra::idempotency::{self, IdempotencyKey, Keyed, request_hash};
use crate::infra::ledger::{KIND_CONTACTS, KIND_QUESTIONNAIRE, mark_dirty};
use crate::infra::metrics::ImportKind;
use crate::infra::page::{Page, PageParams};
use crate::infra::queue::RecomputeJob;
use crate::infra::webhooks::{ImportEvent, emit_import};
use crate::research::questionnaires::{find_questionnaire, load_questions};
use crate::{Perm, RequestCtx, Services, infra::db, new_id, now};

mod copy;
pub mod emails;
use copy::{COPY_FROM_ROWS, first_of_its_external_id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Ndjson,
    Csv,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema, async_graphql::SimpleObject)]
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

impl IngestResult {
    /// Nothing new was stored: the data version stays where it was, one
    /// below the version the rolled-back write took.
    fn duplicates_only(received: u64, version: i64) -> Self {
        IngestResult {
            received,
            inserted: 0,
            duplicates: received,
            data_version: version - 1,
        }
    }
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

/// What an ingest's audit row says: counts, never the answers.
fn ingest_counts(received: u64, inserted: u64, data_version: i64) -> serde_json::Value {
    serde_json::json!({
        "received": received,
        "inserted": inserted,
        "duplicates": received - inserted,
        "data_version": data_version,
    })
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
        let feeds = feeds_contacts(&questions);
        self.store_responses(ctx, "response", &q, feeds, vec![parsed])
            .await
    }

    /// [`Services::submit_response`] under an `Idempotency-Key` (REST
    /// header, GraphQL argument): the key is taken in the write's
    /// transaction, so concurrent retries store one response and all
    /// answer with its result.
    pub async fn submit_response_keyed(
        &self,
        ctx: &RequestCtx,
        questionnaire_id: Uuid,
        input: ResponseInput,
        key: &str,
    ) -> AppResult<Keyed<IngestResult>> {
        // The hash names what is asked, not how: a retry over the other
        // transport with the same input replays too.
        let canonical = serde_json::to_vec(&input).map_err(|e| AppError::Unexpected(e.into()))?;
        let path = format!("questionnaires/{questionnaire_id}/responses");
        let key = IdempotencyKey::new(key, request_hash("POST", &path, &canonical))?;
        let (q, questions) = self.ingest_target(ctx, questionnaire_id).await?;
        let parsed =
            parse_one(&AnswerSchema::new(&questions), input).map_err(AppError::Validation)?;
        let t = now();
        let txn = db::begin_write(&self.db).await?;
        if let Some(stored) = idempotency::claim(&txn, ctx.agency_id, &key).await? {
            txn.rollback().await?;
            return Ok(Keyed::Replayed(stored));
        }
        let version = next_version(&txn, ctx.agency_id, q.id).await?;
        let a = Audit::new("response", "create", Some(q.id));
        let (inserted, audited) =
            insert_audited(&txn, ctx, &a, &q, version, t, vec![parsed], 1).await?;
        let result = if inserted == 0 {
            IngestResult::duplicates_only(1, version)
        } else {
            IngestResult {
                received: 1,
                inserted,
                duplicates: 0,
                data_version: version,
            }
        };
        let body = serde_json::to_value(&result).map_err(|e| AppError::Unexpected(e.into()))?;
        if inserted == 0 {
            // Nothing new: the data version stays as it was, and the key
            // keeps this answer on its own.
            txn.rollback().await?;
            self.idempotent_store(ctx.agency_id, &key, 201, body)
                .await?;
            return Ok(Keyed::New(result));
        }
        let wake =
            mark_written(&txn, ctx.agency_id, &q, version, feeds_contacts(&questions)).await?;
        idempotency::finish(&txn, ctx.agency_id, &key, 201, body).await?;
        if audited {
            txn.commit().await?;
        } else {
            audit::commit(txn, ctx, a.with(ingest_counts(1, inserted, version))).await?;
        }
        self.wake_after_ingest(ctx.agency_id, &q, wake).await;
        Ok(Keyed::New(result))
    }

    /// Imports responses, telling `import.finished` with the rows (in
    /// their transaction).
    pub async fn import_responses(
        &self,
        ctx: &RequestCtx,
        questionnaire_id: Uuid,
        format: ImportFormat,
        body: bytes::Bytes,
    ) -> AppResult<IngestResult> {
        let (q, questions) = self.ingest_target(ctx, questionnaire_id).await?;
        // At least COPY_FROM_ROWS lines, found without scanning the rest;
        // smaller bodies hold fewer rows and go in as INSERTs.
        let bulk = body
            .split(|b| *b == b'\n')
            .nth(COPY_FROM_ROWS - 1)
            .is_some();
        let feeds = feeds_contacts(&questions);
        if self.db.get_database_backend() == DbBackend::Postgres && bulk {
            return self
                .import_streaming(ctx, &q, questions, format, body)
                .await;
        }
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
        self.store_responses(ctx, "responses", &q, feeds, rows)
            .await
    }

    /// Stores validated rows — a single response or a small import, fewer
    /// than [`COPY_FROM_ROWS`] — in one transaction and wakes the worker.
    /// `resource`: `response` (one posted, audited as a create) or
    /// `responses` (an import, audited as one row with its counts).
    async fn store_responses(
        &self,
        ctx: &RequestCtx,
        resource: &'static str,
        q: &questionnaire::Model,
        feeds_contacts: bool,
        rows: Vec<ParsedResponse>,
    ) -> AppResult<IngestResult> {
        let agency_id = ctx.agency_id;
        let received = rows.len() as u64;
        let mut seen = std::collections::HashSet::new();
        let rows: Vec<ParsedResponse> = rows
            .into_iter()
            .filter(|r| first_of_its_external_id(&mut seen, r))
            .collect();
        let t = now();
        let txn = db::begin_write(&self.db).await?;
        let version = next_version(&txn, agency_id, q.id).await?;
        let verb = if resource == "response" {
            "create"
        } else {
            "import"
        };
        let a = Audit::new(resource, verb, Some(q.id));
        let (inserted, audited) =
            insert_audited(&txn, ctx, &a, q, version, t, rows, received).await?;
        let event = (resource == "responses").then(|| import_event(q));
        if inserted == 0 {
            // Nothing new: leave the data version as it was.
            txn.rollback().await?;
            if let Some(e) = event {
                self.import_unchanged(agency_id, e, received).await;
            }
            return Ok(IngestResult::duplicates_only(received, version));
        }
        let wake = mark_written(&txn, agency_id, q, version, feeds_contacts).await?;
        let deliveries = emit_import(&txn, agency_id, event, received).await?;
        if audited {
            txn.commit().await?;
        } else {
            audit::commit(txn, ctx, a.with(ingest_counts(received, inserted, version))).await?;
        }
        self.import_committed(agency_id, event, received, deliveries)
            .await;
        self.wake_after_ingest(agency_id, q, wake).await;
        Ok(IngestResult {
            received,
            inserted,
            duplicates: received - inserted,
            data_version: version,
        })
    }

    /// Pushes the recomputes a committed ingest made pending (see
    /// [`mark_written`]): the questionnaire's, and the client's hypotheses,
    /// UX map and contacts when they read it.
    async fn wake_after_ingest(&self, agency_id: Uuid, q: &questionnaire::Model, wake: Wakes) {
        let jobs = [
            (
                wake.hypotheses,
                crate::research::hypotheses::KIND_HYPOTHESES,
                q.client_id,
            ),
            (wake.ux, crate::research::ux::KIND_UX, q.client_id),
            (wake.questionnaire, KIND_QUESTIONNAIRE, q.id),
            (wake.contacts, KIND_CONTACTS, q.client_id),
        ];
        for (_, kind, target_id) in jobs.into_iter().filter(|j| j.0) {
            self.enqueue_recompute(RecomputeJob {
                agency_id,
                kind: kind.into(),
                target_id,
            })
            .await;
        }
    }

    /// A questionnaire's responses in the order they were stored: by data
    /// version, then id. A client following `next_cursor` therefore sees
    /// every later write after the rows it has, never among them (ids are
    /// minted by whichever process wrote, whose clocks may differ).
    pub async fn list_responses(
        &self,
        ctx: &RequestCtx,
        questionnaire_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<ResponseView>> {
        ctx.require(Perm::Read)?;
        let limit = page.parse_limit()?;
        let after = page.after.as_deref().map(parse_cursor).transpose()?;
        find_questionnaire(&self.db, ctx.agency_id, questionnaire_id).await?;
        let mut q = response::Entity::find()
            .filter(response::Column::AgencyId.eq(ctx.agency_id))
            .filter(response::Column::QuestionnaireId.eq(questionnaire_id))
            .order_by_asc(response::Column::DataVersion)
            .order_by_asc(response::Column::Id);
        if let Some((version, id)) = after {
            // A row comparison: the (agency, questionnaire, data_version,
            // id) index serves it as a range, on PostgreSQL and SQLite.
            q = q.filter(
                Expr::tuple([
                    Expr::col(response::Column::DataVersion),
                    Expr::col(response::Column::Id),
                ])
                .gt(Expr::tuple([Expr::val(version), Expr::val(id)])),
            );
        }
        let items = q
            .limit(limit + 1)
            .all(&self.db)
            .await?
            .into_iter()
            .map(ResponseView::from)
            .collect();
        Ok(Page::from_rows(limit, items, |r| {
            format!("{}:{}", r.data_version, r.id)
        }))
    }
}

/// A responses cursor, `{data_version}:{id}` of the last row of a page.
/// Exactly the document's pattern: digits (an optional `-`, no `+`) and a
/// hyphenated id.
fn parse_cursor(s: &str) -> AppResult<(i64, Uuid)> {
    let digits = |v: &str| {
        let d = v.strip_prefix('-').unwrap_or(v);
        (1..=18).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
    };
    s.split_once(':')
        .filter(|(v, _)| digits(v))
        .and_then(|(v, id)| Some((v.parse().ok()?, crate::infra::page::parse_hyphenated(id)?)))
        .ok_or_else(|| AppError::field("after", "is not a cursor from this API"))
}

/// Bumps the questionnaire's data version and returns it. Taking the
/// questionnaire row first serialises writers of one questionnaire, so
/// versions are gapless and in commit order, and no other writer can store
/// rows of it until this transaction ends.
async fn next_version<C: ConnectionTrait>(db: &C, agency_id: Uuid, id: Uuid) -> AppResult<i64> {
    // One statement (`UPDATE … RETURNING`): every round trip here is time
    // the other writers of this questionnaire wait.
    let mut bump = questionnaire::Entity::update_many()
        .col_expr(
            questionnaire::Column::DataVersion,
            Expr::col(questionnaire::Column::DataVersion).add(1),
        )
        .filter(questionnaire::Column::AgencyId.eq(agency_id))
        .filter(questionnaire::Column::Id.eq(id))
        .into_query();
    bump.returning_col(questionnaire::Column::DataVersion);
    let stmt = db.get_database_backend().build(&bump);
    db.query_one_raw(stmt)
        .await?
        .map(|r| r.try_get::<i64>("", questionnaire::Column::DataVersion.as_str()))
        .transpose()?
        .ok_or(AppError::NotFound)
}

/// Which recomputes a committed ingest must push (each true only for the
/// writer that made its target pending).
#[derive(Debug, Clone, Copy)]
struct Wakes {
    questionnaire: bool,
    hypotheses: bool,
    ux: bool,
    contacts: bool,
}

/// Whether responses to these questions can make contacts (they have an
/// `email` question): the client's contacts job links them.
fn feeds_contacts(questions: &[Question]) -> bool {
    questions.iter().any(|q| q.qtype == QuestionType::Email)
}

/// Marks what new rows make stale, in the writer's transaction: the
/// questionnaire's summary, the client's hypotheses, (audits) UX alerts
/// and (`feeds_contacts`: responses that may carry an e-mail) contacts.
/// Returns which of them need a wake-up job after commit.
async fn mark_written<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    q: &questionnaire::Model,
    version: i64,
    feeds_contacts: bool,
) -> AppResult<Wakes> {
    let wake = mark_dirty(db, agency_id, KIND_QUESTIONNAIRE, q.id, version).await?;
    let wake_hypotheses = crate::infra::ledger::bump_target(
        db,
        agency_id,
        crate::research::hypotheses::KIND_HYPOTHESES,
        q.client_id,
    )
    .await?;
    let wake_ux = if q.kind == "mystery_shopper" {
        crate::infra::ledger::bump_target(db, agency_id, crate::research::ux::KIND_UX, q.client_id)
            .await?
    } else {
        false
    };
    let wake_contacts = if feeds_contacts {
        crate::infra::ledger::bump_target(db, agency_id, KIND_CONTACTS, q.client_id).await?
    } else {
        false
    };
    Ok(Wakes {
        questionnaire: wake,
        hypotheses: wake_hypotheses,
        ux: wake_ux,
        contacts: wake_contacts,
    })
}

/// Inserts `rows` of a request that received `received`, and where the
/// audit row can share their statement — PostgreSQL, one chunk — writes
/// the ingest's audit row `a` (with its counts) in it too; the second
/// value says whether it did (if not, the caller records `a` at its
/// commit). The row is then not an extra round trip while the
/// questionnaire's version lock is held (see `audit::insert_counted`).
#[allow(clippy::too_many_arguments)]
async fn insert_audited<C: ConnectionTrait>(
    txn: &C,
    ctx: &RequestCtx,
    a: &Audit,
    q: &questionnaire::Model,
    version: i64,
    t: DateTime<Utc>,
    rows: Vec<ParsedResponse>,
    received: u64,
) -> AppResult<(u64, bool)> {
    let backend = txn.get_database_backend();
    if backend == DbBackend::Postgres && !rows.is_empty() && rows.len() <= chunk_rows(backend) {
        let models = rows
            .into_iter()
            .map(|r| response_row(ctx.agency_id, q, version, t, r));
        let insert = rows_insert(models).into_query();
        let n = audit::insert_counted(txn, ctx, a.clone(), insert, received, version).await?;
        return Ok((n, true));
    }
    Ok((
        insert_rows(txn, ctx.agency_id, q, version, t, rows).await?,
        false,
    ))
}

fn response_row(
    agency_id: Uuid,
    q: &questionnaire::Model,
    version: i64,
    t: DateTime<Utc>,
    r: ParsedResponse,
) -> response::ActiveModel {
    response::ActiveModel {
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
    }
}

/// The multi-row INSERT of `models`, skipping external ids already stored.
fn rows_insert(
    models: impl IntoIterator<Item = response::ActiveModel>,
) -> sea_orm::InsertMany<response::ActiveModel> {
    response::Entity::insert_many(models).on_conflict(
        OnConflict::columns([
            response::Column::AgencyId,
            response::Column::QuestionnaireId,
            response::Column::ExternalId,
        ])
        .do_nothing()
        .to_owned(),
    )
}

/// Multi-row INSERTs through sea-orm (SQLite, and small PostgreSQL batches).
async fn insert_rows<C: ConnectionTrait>(
    txn: &C,
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
            .map(|r| response_row(agency_id, q, version, t, r))
            .collect();
        let res = rows_insert(models).exec_without_returning(txn).await;
        inserted += match res {
            Ok(n) => n,
            Err(DbErr::RecordNotInserted) => 0,
            Err(e) => return Err(e.into()),
        };
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

/// The `import.finished` of an import of `q`'s responses.
fn import_event(q: &questionnaire::Model) -> ImportEvent {
    ImportEvent {
        kind: ImportKind::Responses,
        subject: ("questionnaire_id", q.id),
    }
}
