//! Research set-up: choice factors, questionnaires and segments.
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use service::factors::{FactorInput, FactorView};
use service::page::{Page, PageParams};
use service::questionnaires::{CreateQuestionnaire, QuestionnaireView, UpdateQuestionnaire};
use service::segments::{SegmentInput, SegmentView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

#[utoipa::path(tag = "choice-factors", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = Vec<FactorView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/choice-factors")]
async fn list_factors(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.list_factors(&ctx, *id).await?))
}

#[utoipa::path(tag = "choice-factors", params(("id" = Uuid, Path, description = "client id")), request_body = FactorInput, responses((status = 201, body = FactorView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/choice-factors")]
async fn create_factor(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<FactorInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_factor(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "choice-factors", params(("id" = Uuid, Path)), request_body = FactorInput, responses((status = 200, body = FactorView), Errors), security(("bearer" = [])))]
#[put("/choice-factors/{id}")]
async fn update_factor(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<FactorInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_factor(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "choice-factors", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/choice-factors/{id}")]
async fn delete_factor(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_factor(&ctx, *id).await?;
    Ok(no_content())
}

#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<QuestionnaireView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/questionnaires")]
async fn list_questionnaires(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_questionnaires(&ctx, *id, page.into_inner())
        .await?))
}

/// Create a questionnaire with its questions inline.
#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path, description = "client id")), request_body = CreateQuestionnaire, responses((status = 201, body = QuestionnaireView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/questionnaires")]
async fn create_questionnaire(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<CreateQuestionnaire>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state
            .services
            .create_questionnaire(&ctx, *id, input)
            .await?,
    ))
}

#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path)), responses((status = 200, body = QuestionnaireView), Errors), security(("bearer" = [])))]
#[get("/questionnaires/{id}")]
async fn get_questionnaire(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_questionnaire(&ctx, *id).await?))
}

/// Change the title or the questions; a change that could invalidate stored
/// responses creates a new version.
#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path)), request_body = UpdateQuestionnaire, responses((status = 200, body = QuestionnaireView), Errors), security(("bearer" = [])))]
#[patch("/questionnaires/{id}")]
async fn update_questionnaire(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<UpdateQuestionnaire>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_questionnaire(&ctx, *id, input)
        .await?))
}

#[utoipa::path(tag = "questionnaires", params(("id" = Uuid, Path)), responses((status = 200, body = QuestionnaireView), Errors), security(("bearer" = [])))]
#[post("/questionnaires/{id}/archive")]
async fn archive_questionnaire(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .set_questionnaire_archived(&ctx, *id, true)
        .await?))
}

#[utoipa::path(tag = "segments", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<SegmentView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/segments")]
async fn list_segments(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_segments(&ctx, *id, page.into_inner())
        .await?))
}

#[utoipa::path(tag = "segments", params(("id" = Uuid, Path, description = "client id")), request_body = SegmentInput, responses((status = 201, body = SegmentView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/segments")]
async fn create_segment(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<SegmentInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_segment(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "segments", params(("id" = Uuid, Path)), responses((status = 200, body = SegmentView), Errors), security(("bearer" = [])))]
#[get("/segments/{id}")]
async fn get_segment(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_segment(&ctx, *id).await?))
}

#[utoipa::path(tag = "segments", params(("id" = Uuid, Path)), request_body = SegmentInput, responses((status = 200, body = SegmentView), Errors), security(("bearer" = [])))]
#[put("/segments/{id}")]
async fn update_segment(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<SegmentInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_segment(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "segments", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/segments/{id}")]
async fn delete_segment(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_segment(&ctx, *id).await?;
    Ok(no_content())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_factors)
        .service(create_factor)
        .service(update_factor)
        .service(delete_factor)
        .service(list_questionnaires)
        .service(create_questionnaire)
        .service(get_questionnaire)
        .service(update_questionnaire)
        .service(archive_questionnaire)
        .service(list_segments)
        .service(create_segment)
        .service(get_segment)
        .service(update_segment)
        .service(delete_segment);
}
