//! Touchpoint libraries: the read-only template and the agency's clones.
use actix_web::{HttpResponse, delete, get, post, put, web};
use service::libraries::{
    CloneLibrary, LibrarySummary, LibraryView, StageInput, TouchpointInput, TouchpointView,
};
use service::page::{Page, PageParams};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

/// The template (first page only) and the agency's libraries.
#[utoipa::path(tag = "touchpoint-libraries", params(PageParams), responses((status = 200, body = Page<LibrarySummary>), Errors), security(("bearer" = [])))]
#[get("/touchpoint-libraries")]
async fn list_libraries(
    state: State,
    Auth(ctx): Auth,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_libraries(&ctx, page.into_inner())
        .await?))
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path)), responses((status = 200, body = LibraryView), Errors), security(("bearer" = [])))]
#[get("/touchpoint-libraries/{id}")]
async fn get_library(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_library(&ctx, *id).await?))
}

/// Clone the template (or one of the agency's libraries) into an editable one.
#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path)), request_body(content = CloneLibrary, description = "optional; `{}` keeps the source's name"), responses((status = 201, body = LibraryView), Errors), security(("bearer" = [])))]
#[post("/touchpoint-libraries/{id}/clone")]
async fn clone_library(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<CloneLibrary>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.clone_library(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/touchpoint-libraries/{id}")]
async fn delete_library(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_library(&ctx, *id).await?;
    Ok(no_content())
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path)), request_body = StageInput, responses((status = 201, body = LibraryView), Errors), security(("bearer" = [])))]
#[post("/touchpoint-libraries/{id}/stages")]
async fn add_stage(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<StageInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.add_stage(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path), ("stage_id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/touchpoint-libraries/{id}/stages/{stage_id}")]
async fn delete_stage(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (id, stage_id) = path.into_inner();
    state.services.delete_stage(&ctx, id, stage_id).await?;
    Ok(no_content())
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path)), request_body = TouchpointInput, responses((status = 201, body = TouchpointView), Errors), security(("bearer" = [])))]
#[post("/touchpoint-libraries/{id}/touchpoints")]
async fn add_touchpoint(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<TouchpointInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.add_touchpoint(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path), ("touchpoint_id" = Uuid, Path)), request_body = TouchpointInput, responses((status = 200, body = TouchpointView), Errors), security(("bearer" = [])))]
#[put("/touchpoint-libraries/{id}/touchpoints/{touchpoint_id}")]
async fn update_touchpoint(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
    JsonBody(input): JsonBody<TouchpointInput>,
) -> ApiResult<HttpResponse> {
    let (id, tp) = path.into_inner();
    Ok(ok(state
        .services
        .update_touchpoint(&ctx, id, tp, input)
        .await?))
}

#[utoipa::path(tag = "touchpoint-libraries", params(("id" = Uuid, Path), ("touchpoint_id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/touchpoint-libraries/{id}/touchpoints/{touchpoint_id}")]
async fn delete_touchpoint(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (id, tp) = path.into_inner();
    state.services.delete_touchpoint(&ctx, id, tp).await?;
    Ok(no_content())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_libraries)
        .service(get_library)
        .service(clone_library)
        .service(delete_library)
        .service(add_stage)
        .service(delete_stage)
        .service(add_touchpoint)
        .service(update_touchpoint)
        .service(delete_touchpoint);
}
