//! Report links: signed, expiring, revocable URLs to a client's live
//! report page (`GET /r/{token}`, see `crate::report_page`); owners and
//! admins only.
use actix_web::{HttpResponse, delete, get, post, web};
use service::page::{Page, PageParams};
use service::report_links::{ReportLinkInput, ReportLinkView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, ok};

/// A new link to the client's live report; the answer holds its URL.
#[utoipa::path(tag = "report links", params(("id" = Uuid, Path)), request_body = ReportLinkInput, responses((status = 201, body = ReportLinkView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/report-links")]
async fn create_report_link(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ReportLinkInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_report_link(&ctx, *id, input).await?,
    ))
}

/// The client's report links, revoked and expired ones too, oldest first.
#[utoipa::path(tag = "report links", params(("id" = Uuid, Path), PageParams), responses((status = 200, body = Page<ReportLinkView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/report-links")]
async fn list_report_links(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_report_links(&ctx, *id, page.into_inner())
        .await?))
}

/// Revoke a link: its page is gone at once; it stays listed with
/// `revoked_at`.
#[utoipa::path(tag = "report links", params(("id" = Uuid, Path)), responses((status = 200, body = ReportLinkView), Errors), security(("bearer" = [])))]
#[delete("/report-links/{id}")]
async fn revoke_report_link(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.revoke_report_link(&ctx, *id).await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_report_link)
        .service(list_report_links)
        .service(revoke_report_link);
}
