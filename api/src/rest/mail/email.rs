//! Outgoing mail: the delivery ledger and rendered previews.
use actix_web::{HttpResponse, get, patch, post, web};
use service::digest::{DigestSettingsInput, DigestSettingsView};
use service::email::{DeliveryFilter, DeliveryView};
use service::page::{Page, PageParams};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, ok};

/// The agency's emails and their status (owners and admins).
#[utoipa::path(tag = "email", params(DeliveryFilter, PageParams), responses((status = 200, body = Page<DeliveryView>), Errors), security(("bearer" = [])))]
#[get("/deliveries")]
async fn list_deliveries(
    state: State,
    Auth(ctx): Auth,
    filter: web::Query<DeliveryFilter>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_deliveries(&ctx, filter.into_inner(), page.into_inner())
        .await?))
}

#[utoipa::path(tag = "email", params(("id" = Uuid, Path)), responses((status = 200, body = DeliveryView), Errors), security(("bearer" = [])))]
#[get("/deliveries/{id}")]
async fn get_delivery(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_delivery(&ctx, *id).await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    /// `html` (default) or `text`.
    #[param(schema_with = service::docs::preview_part)]
    part: Option<String>,
}

/// The email of `kind` as it would be sent now for this client, without
/// sending it: `ux_alerts` (the client's open alerts) or `digest` (as of now). HTML by default,
/// `?part=text` for the plain-text alternative; the subject is in the
/// `X-Email-Subject` header (percent-encoded UTF-8).
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id"), ("kind" = String, Path, description = "`ux_alerts` or `digest`", pattern = "^(ux_alerts|digest)$"), PreviewQuery), responses((status = 200, content((String = "text/html"), (String = "text/plain"))), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/email-previews/{kind}")]
async fn preview_email(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, String)>,
    q: web::Query<PreviewQuery>,
) -> ApiResult<HttpResponse> {
    let (id, kind) = path.into_inner();
    let r = state.services.preview_email(&ctx, id, &kind).await?;
    let (body, ct) = match q.part.as_deref() {
        None | Some("html") => (r.html, "text/html; charset=utf-8"),
        Some("text") => (r.text, "text/plain; charset=utf-8"),
        Some(_) => {
            return Err(service::AppError::field("part", "must be html or text").into());
        }
    };
    let subject: String = r
        .subject
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b" -_.:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    Ok(HttpResponse::Ok()
        .content_type(ct)
        .insert_header(("X-Email-Subject", subject))
        .body(body))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DigestQueued {
    /// Emails queued (one per report recipient).
    queued: u64,
}

/// Send the client's digest now to its report recipients (owners and
/// admins), outside its schedule.
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), responses((status = 202, body = DigestQueued), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/digest/send")]
async fn send_digest_now(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    let queued = state.services.send_digest_now(&ctx, *id).await?;
    Ok(HttpResponse::Accepted().json(DigestQueued { queued }))
}

/// When and to whom the client's digest goes, with the next send.
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = DigestSettingsView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/digest-settings")]
async fn get_digest_settings(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.digest_settings(&ctx, *id).await?))
}

/// Change the digest's schedule or report recipients (owners and admins).
#[utoipa::path(tag = "email", params(("id" = Uuid, Path, description = "client id")), request_body = DigestSettingsInput, responses((status = 200, body = DigestSettingsView), Errors), security(("bearer" = [])))]
#[patch("/clients/{id}/digest-settings")]
async fn update_digest_settings(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<DigestSettingsInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_digest_settings(&ctx, *id, input)
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_deliveries)
        .service(get_delivery)
        .service(preview_email)
        .service(send_digest_now)
        .service(get_digest_settings)
        .service(update_digest_settings);
}
