//! Clients of the agency.
use actix_web::{HttpResponse, delete, get, patch, post, web};
use service::clients::{ClientView, CreateClient, UpdateClient};
use service::page::{Page, PageParams};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ArchivedFilter {
    /// Include archived clients (default false).
    include_archived: Option<bool>,
}

#[utoipa::path(tag = "clients", params(ArchivedFilter, PageParams), responses((status = 200, body = Page<ClientView>), Errors), security(("bearer" = [])))]
#[get("/clients")]
async fn list_clients(
    state: State,
    Auth(ctx): Auth,
    f: web::Query<ArchivedFilter>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_clients(&ctx, f.include_archived.unwrap_or(false), page.into_inner())
        .await?))
}

#[utoipa::path(tag = "clients", request_body = CreateClient, responses((status = 201, body = ClientView), Errors), security(("bearer" = [])))]
#[post("/clients")]
async fn create_client(
    state: State,
    Auth(ctx): Auth,
    JsonBody(input): JsonBody<CreateClient>,
) -> ApiResult<HttpResponse> {
    Ok(created(state.services.create_client(&ctx, input).await?))
}

#[utoipa::path(tag = "clients", params(("id" = Uuid, Path)), responses((status = 200, body = ClientView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}")]
async fn get_client(state: State, Auth(ctx): Auth, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_client(&ctx, *id).await?))
}

#[utoipa::path(tag = "clients", params(("id" = Uuid, Path)), request_body = UpdateClient, responses((status = 200, body = ClientView), Errors), security(("bearer" = [])))]
#[patch("/clients/{id}")]
async fn update_client(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<UpdateClient>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_client(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "clients", params(("id" = Uuid, Path)), responses((status = 200, body = ClientView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/archive")]
async fn archive_client(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .set_client_archived(&ctx, *id, true)
        .await?))
}

#[utoipa::path(tag = "clients", params(("id" = Uuid, Path)), responses((status = 200, body = ClientView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/unarchive")]
async fn unarchive_client(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .set_client_archived(&ctx, *id, false)
        .await?))
}

/// Delete a client without questionnaires (archive the others).
#[utoipa::path(tag = "clients", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/clients/{id}")]
async fn delete_client(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_client(&ctx, *id).await?;
    Ok(no_content())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_clients)
        .service(create_client)
        .service(get_client)
        .service(update_client)
        .service(archive_client)
        .service(unarchive_client)
        .service(delete_client);
}
