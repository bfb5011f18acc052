//! A client's own sender: From, Reply-To and optionally its SMTP server.
use actix_web::{HttpResponse, delete, get, post, put, web};
use service::sender::{SenderInput, SenderTestInput, SenderTestView, SenderView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, no_content, ok};

/// The client's sender (its SMTP URL is never returned; unset parts are
/// the global sender's).
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = SenderView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/sender")]
async fn get_sender(state: State, Auth(ctx): Auth, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.client_sender(&ctx, *id).await?))
}

/// Set the client's sender (owners and admins): From name and address,
/// Reply-To, and optionally its own SMTP server, kept encrypted.
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), request_body = SenderInput, responses((status = 200, body = SenderView), Errors), security(("bearer" = [])))]
#[put("/clients/{id}/sender")]
async fn set_sender(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<SenderInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .set_client_sender(&ctx, *id, input)
        .await?))
}

/// Back to the global sender (owners and admins).
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/clients/{id}/sender")]
async fn delete_sender(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_client_sender(&ctx, *id).await?;
    Ok(no_content())
}

/// Send a test email from the client's sender now, and say how it went.
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), request_body = SenderTestInput, responses((status = 200, body = SenderTestView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/sender/test")]
async fn test_sender(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<SenderTestInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .test_client_sender(&ctx, *id, input)
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_sender)
        .service(set_sender)
        .service(delete_sender)
        .service(test_sender);
}
