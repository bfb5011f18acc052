//! Segment hypotheses of a client and their verdicts.
use actix_web::{HttpResponse, delete, get, post, put, web};
use service::hypotheses::{HypothesesResults, HypothesisInput, HypothesisView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

#[utoipa::path(tag = "hypotheses", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = Vec<HypothesisView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/hypotheses")]
async fn list_hypotheses(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.list_hypotheses(&ctx, *id).await?))
}

/// A hypothesis: segment + metric (`share` of an option, `mean` of a
/// question, or `nps`) + direction + comparison group.
#[utoipa::path(tag = "hypotheses", params(("id" = Uuid, Path, description = "client id")), request_body = HypothesisInput, responses((status = 201, body = HypothesisView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/hypotheses")]
async fn create_hypothesis(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<HypothesisInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_hypothesis(&ctx, *id, input).await?,
    ))
}

/// Verdicts of the client's active hypotheses, as the worker last computed
/// them, with Benjamini–Hochberg q-values and `survey_more`.
#[utoipa::path(tag = "hypotheses", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = HypothesesResults), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/hypotheses/results")]
async fn hypotheses_results(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.hypotheses_results(&ctx, *id).await?))
}

#[utoipa::path(tag = "hypotheses", params(("id" = Uuid, Path)), responses((status = 200, body = HypothesisView), Errors), security(("bearer" = [])))]
#[get("/hypotheses/{id}")]
async fn get_hypothesis(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_hypothesis(&ctx, *id).await?))
}

#[utoipa::path(tag = "hypotheses", params(("id" = Uuid, Path)), request_body = HypothesisInput, responses((status = 200, body = HypothesisView), Errors), security(("bearer" = [])))]
#[put("/hypotheses/{id}")]
async fn update_hypothesis(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<HypothesisInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_hypothesis(&ctx, *id, input)
        .await?))
}

#[utoipa::path(tag = "hypotheses", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/hypotheses/{id}")]
async fn delete_hypothesis(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_hypothesis(&ctx, *id).await?;
    Ok(no_content())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_hypotheses)
        .service(create_hypothesis)
        .service(hypotheses_results)
        .service(get_hypothesis)
        .service(update_hypothesis)
        .service(delete_hypothesis);
}
