//! Responses in, summaries out.
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use service::AppError;
use service::domain::import::ResponseInput;
use service::idempotency::Keyed;
use service::page::{Page, PageParams};
use service::responses::{IngestResult, ResponseView};
use service::summary::SummaryView;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, ImportBody, State, parse_json};
use crate::rest::{Errors, ok};

/// Schema of one response as sent.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ResponseIn {
    /// Your id for the response; re-sending it is a no-op (counted as duplicate).
    #[schema(min_length = 1, max_length = 200)]
    external_id: Option<String>,
    /// When it was given (RFC 3339); default: now.
    submitted_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Links the response to a customer.
    #[schema(min_length = 1, max_length = 200)]
    respondent_ref: Option<String>,
    /// Answers keyed by question key. Multi-choice answers are lists.
    #[schema(value_type = Object)]
    answers: serde_json::Value,
}

/// Submit one response. Supports `Idempotency-Key`.
#[utoipa::path(
    tag = "responses",
    params(("id" = Uuid, Path, description = "questionnaire id"),
           ("Idempotency-Key" = Option<String>, Header, description = "replays the first answer for a retried request", min_length = 1, max_length = 200)),
    request_body = ResponseIn,
    responses((status = 201, body = IngestResult), Errors),
    security(("bearer" = []))
)]
#[post("/questionnaires/{id}/responses")]
async fn submit_response(
    state: State,
    req: HttpRequest,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    body: ImportBody,
) -> ApiResult<HttpResponse> {
    let body = body.0;
    if body.len() > state.body_limit {
        return Err(AppError::PayloadTooLarge.into());
    }
    let key = req
        .headers()
        .get("Idempotency-Key")
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .map_err(|_| AppError::field("Idempotency-Key", "must be visible ASCII"))?;
    let input: ResponseInput = parse_json(&body)?;
    let Some(key) = key else {
        let result = state.services.submit_response(&ctx, *id, input).await?;
        return Ok(HttpResponse::Created().json(result));
    };
    match state
        .services
        .submit_response_keyed(&ctx, *id, input, &key)
        .await?
    {
        Keyed::New(result) => Ok(HttpResponse::Created().json(result)),
        Keyed::Replayed(stored) => {
            let status = actix_web::http::StatusCode::from_u16(stored.status)
                .unwrap_or(actix_web::http::StatusCode::OK);
            Ok(HttpResponse::build(status).json(stored.body))
        }
    }
}

/// Import many responses at once: `application/x-ndjson` (one response
/// object per line) or `text/csv` (header = question keys, plus optional
/// `external_id`, `submitted_at`, `respondent_ref`; multi-choice cells
/// `a;b`). Up to 100,000 rows. Any invalid row → 422 listing the first 100
/// row/field errors, and nothing is stored.
#[utoipa::path(
    tag = "responses",
    params(("id" = Uuid, Path, description = "questionnaire id")),
    request_body(content(
        (String = "application/x-ndjson"),
        (String = "text/csv")
    )),
    responses((status = 201, body = IngestResult), Errors),
    security(("bearer" = []))
)]
#[post("/questionnaires/{id}/responses/import")]
async fn import_responses(
    state: State,
    req: HttpRequest,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    body: ImportBody,
) -> ApiResult<HttpResponse> {
    let format = crate::extract::import_format(&req)?;
    let result = state
        .services
        .import_responses(&ctx, *id, format, body.0)
        .await?;
    Ok(HttpResponse::Created().json(result))
}

/// A questionnaire's responses, in stored order (data version, then id):
/// rows written later always come after the pages already read.
#[utoipa::path(tag = "responses", params(("id" = Uuid, Path, description = "questionnaire id"), ResponsePage), responses((status = 200, body = Page<ResponseView>), Errors), security(("bearer" = [])))]
#[get("/questionnaires/{id}/responses")]
async fn list_responses(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_responses(&ctx, *id, page.into_inner())
        .await?))
}

/// `?limit=&after=` of the responses list, whose cursor is
/// `{data_version}:{id}` (the order it pages in).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents `PageParams` as this list reads them
pub struct ResponsePage {
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
    /// The `next_cursor` of the previous page, `{data_version}:{id}`.
    #[param(
        pattern = r"^-?[0-9]{1,18}:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    after: Option<String>,
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Freshness {
    /// Wait until the figures reflect at least this data version (e.g. the
    /// `data_version` an import answered with)…
    min_version: Option<i64>,
    /// …for at most this long (ms, ≤ 30000, default 10000). If the time runs
    /// out the answer says `recomputing`.
    #[param(maximum = 30000)]
    wait_ms: Option<u64>,
}

/// The latest summary (n, NPS, factor means) with the data version it
/// reflects; with `min_version`, waits for that version.
#[utoipa::path(tag = "responses", params(("id" = Uuid, Path, description = "questionnaire id"), Freshness), responses((status = 200, body = SummaryView), Errors), security(("bearer" = [])))]
#[get("/questionnaires/{id}/summary")]
async fn summary(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    f: web::Query<Freshness>,
) -> ApiResult<HttpResponse> {
    let wait = f.wait_ms.unwrap_or(10_000);
    if wait > 30_000 {
        return Err(AppError::field("wait_ms", "at most 30000").into());
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(wait);
    loop {
        let view = state.services.questionnaire_summary(&ctx, *id).await?;
        let reached = f.min_version.is_none_or(|v| view.data_version >= v);
        if reached || std::time::Instant::now() >= deadline {
            return Ok(ok(view));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(submit_response)
        .service(import_responses)
        .service(list_responses)
        .service(summary);
}
