//! `GET /r/{token}`: the live report page of a report link, outside
//! `/api/v1` and the OpenAPI document (it is HTML for people, not an API).
//! Every answer carries a strict Content-Security-Policy (nothing may be
//! loaded; only the page's own style, by hash), `noindex` and no referrer
//! (the URL is the credential); a link that is not valid gets the same
//! 404 page whatever the reason.
use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::extract::State;

pub const PATH: &str = "/r/{token}";

fn answer(page: service::report::Page) -> HttpResponse {
    let status = if page.found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    };
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, page.csp))
        .insert_header(("x-robots-tag", "noindex, nofollow"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(page.html)
}

pub async fn page(state: State, token: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(answer(state.services.report_page(&token).await?))
}
