//! Nurture chains (analytics.md §7): per client, steps sent to the contacts
//! of a saved segment or after purchases (reverse chains), paused and
//! resumed, with per-step figures.
use actix_web::{HttpResponse, get, post, put, web};
use service::chains::{ChainInput, ChainStats, ChainView, EnrolmentView};
use service::page::{Page, PageParams};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, ok};

/// Create a chain: a `segment` chain enrols the contacts of a saved segment
/// of the client, once each; a `reverse` chain enrols a contact when its
/// linked customer buys, its first step waiting the median inter-purchase
/// interval of the purchase's JTBD minus `lead_days`. Step times fall in the
/// client's local send window.
#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "client id")), request_body = ChainInput, responses((status = 201, body = ChainView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/chains")]
async fn create_chain(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ChainInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_chain(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<ChainView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/chains")]
async fn list_chains(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_chains(&ctx, *id, page.into_inner())
        .await?))
}

#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "chain id")), responses((status = 200, body = ChainView), Errors), security(("bearer" = [])))]
#[get("/chains/{id}")]
async fn get_chain(state: State, Auth(ctx): Auth, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_chain(&ctx, *id).await?))
}

/// Replace a chain's settings and steps (not its kind); enrolments go on
/// from the step they are at.
#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "chain id")), request_body = ChainInput, responses((status = 200, body = ChainView), Errors), security(("bearer" = [])))]
#[put("/chains/{id}")]
async fn update_chain(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ChainInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_chain(&ctx, *id, input).await?))
}

/// Pause: nothing is enrolled or sent until resumed.
#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "chain id")), responses((status = 200, body = ChainView), Errors), security(("bearer" = [])))]
#[post("/chains/{id}/pause")]
async fn pause_chain(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .set_chain_status(&ctx, *id, false)
        .await?))
}

/// Resume: steps that fell due meanwhile go out (in the send window).
#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "chain id")), responses((status = 200, body = ChainView), Errors), security(("bearer" = [])))]
#[post("/chains/{id}/resume")]
async fn resume_chain(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.set_chain_status(&ctx, *id, true).await?))
}

/// Enrolments by status and exit reason; per step: sent, skipped, unique
/// opens and clicks, conversions after it, exits instead of it.
#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "chain id")), responses((status = 200, body = ChainStats), Errors), security(("bearer" = [])))]
#[get("/chains/{id}/stats")]
async fn chain_stats(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.chain_stats(&ctx, *id).await?))
}

#[utoipa::path(tag = "chains", params(("id" = Uuid, Path, description = "chain id"), PageParams), responses((status = 200, body = Page<EnrolmentView>), Errors), security(("bearer" = [])))]
#[get("/chains/{id}/enrolments")]
async fn list_enrolments(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_enrolments(&ctx, *id, page.into_inner())
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_chain)
        .service(list_chains)
        .service(get_chain)
        .service(update_chain)
        .service(pause_chain)
        .service(resume_chain)
        .service(chain_stats)
        .service(list_enrolments);
}
