//! Signed outbound webhooks: an agency's endpoints (owners and admins),
//! their secrets (shown once), delivery logs, re-sends and test pings.
use actix_web::{HttpResponse, delete, get, patch, post, web};
use service::page::{Page, PageParams};
use service::webhook_endpoints::{
    WebhookDeliveryView, WebhookEndpointInput, WebhookEndpointPatch, WebhookEndpointView,
    WebhookEventTypeView, WebhookSecretView,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

/// The event types an endpoint may subscribe to.
#[utoipa::path(tag = "webhooks", responses((status = 200, body = Vec<WebhookEventTypeView>), Errors), security(("bearer" = [])))]
#[get("/webhook-event-types")]
async fn list_event_types(state: State, Auth(ctx): Auth) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.webhook_event_types(&ctx)?))
}

/// The agency's webhook endpoints (owners and admins).
#[utoipa::path(tag = "webhooks", responses((status = 200, body = Vec<WebhookEndpointView>), Errors), security(("bearer" = [])))]
#[get("/webhooks")]
async fn list_endpoints(state: State, Auth(ctx): Auth) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.list_webhook_endpoints(&ctx).await?))
}

/// Add an endpoint; the answer holds its signing secret, shown only now.
#[utoipa::path(tag = "webhooks", request_body = WebhookEndpointInput, responses((status = 201, body = WebhookSecretView), Errors), security(("bearer" = [])))]
#[post("/webhooks")]
async fn create_endpoint(
    state: State,
    Auth(ctx): Auth,
    JsonBody(input): JsonBody<WebhookEndpointInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_webhook_endpoint(&ctx, input).await?,
    ))
}

#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path)), responses((status = 200, body = WebhookEndpointView), Errors), security(("bearer" = [])))]
#[get("/webhooks/{id}")]
async fn get_endpoint(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_webhook_endpoint(&ctx, *id).await?))
}

/// Change an endpoint: URL, description, event types, enabled.
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path)), request_body = WebhookEndpointPatch, responses((status = 200, body = WebhookEndpointView), Errors), security(("bearer" = [])))]
#[patch("/webhooks/{id}")]
async fn update_endpoint(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(patch): JsonBody<WebhookEndpointPatch>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_webhook_endpoint(&ctx, *id, patch)
        .await?))
}

/// Remove an endpoint and its delivery log.
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/webhooks/{id}")]
async fn delete_endpoint(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_webhook_endpoint(&ctx, *id).await?;
    Ok(no_content())
}

/// A new signing secret (shown only now); the previous one also signs
/// for 24 hours.
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path)), responses((status = 200, body = WebhookSecretView), Errors), security(("bearer" = [])))]
#[post("/webhooks/{id}/rotate-secret")]
async fn rotate_secret(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.rotate_webhook_secret(&ctx, *id).await?))
}

/// Send a `webhook.ping` event to this endpoint; answers its delivery.
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path)), responses((status = 200, body = WebhookDeliveryView), Errors), security(("bearer" = [])))]
#[post("/webhooks/{id}/ping")]
async fn ping_endpoint(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.ping_webhook_endpoint(&ctx, *id).await?))
}

/// The endpoint's deliveries, oldest first: status, attempts, response.
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path), PageParams), responses((status = 200, body = Page<WebhookDeliveryView>), Errors), security(("bearer" = [])))]
#[get("/webhooks/{id}/deliveries")]
async fn list_deliveries(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_webhook_deliveries(&ctx, *id, page.into_inner())
        .await?))
}

/// Send one delivery again (same `webhook-id`).
#[utoipa::path(tag = "webhooks", params(("id" = Uuid, Path), ("delivery_id" = Uuid, Path)), responses((status = 200, body = WebhookDeliveryView), Errors), security(("bearer" = [])))]
#[post("/webhooks/{id}/deliveries/{delivery_id}/resend")]
async fn resend_delivery(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (id, delivery_id) = path.into_inner();
    Ok(ok(state
        .services
        .resend_webhook_delivery(&ctx, id, delivery_id)
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_event_types)
        .service(list_endpoints)
        .service(create_endpoint)
        .service(get_endpoint)
        .service(update_endpoint)
        .service(delete_endpoint)
        .service(rotate_secret)
        .service(ping_endpoint)
        .service(list_deliveries)
        .service(resend_delivery);
}
