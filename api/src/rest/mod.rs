//! REST under `/api/v1`: thin handlers that parse, call one service function
//! and shape the response.
pub mod commerce;
pub mod health;
pub mod mail;
pub mod platform;
pub mod research;

use actix_web::HttpResponse;
use serde::Serialize;

use crate::error::Problem;

/// The error responses every route may give (RFC 9457 problem documents).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Errors {
    /// Malformed request (unreadable body).
    #[response(status = 400, content_type = "application/problem+json")]
    BadRequest(Problem),
    /// Missing, malformed, expired or revoked credentials.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthorized(Problem),
    /// The role or API key scope does not allow this.
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
    /// No such resource in the caller's agency.
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
    /// The change conflicts with the resource's state.
    #[response(status = 409, content_type = "application/problem+json")]
    Conflict(Problem),
    /// The body is larger than allowed.
    #[response(status = 413, content_type = "application/problem+json")]
    TooLarge(Problem),
    /// Invalid input; `errors` names each offending field (and row).
    #[response(status = 422, content_type = "application/problem+json")]
    Invalid(Problem),
    /// Too many requests; see `Retry-After`.
    #[response(status = 429, content_type = "application/problem+json")]
    RateLimited(Problem),
    /// An unexpected error (details are logged, not shown).
    #[response(status = 500, content_type = "application/problem+json")]
    Internal(Problem),
}

pub fn ok<T: Serialize>(v: T) -> HttpResponse {
    HttpResponse::Ok().json(v)
}

pub fn created<T: Serialize>(v: T) -> HttpResponse {
    HttpResponse::Created().json(v)
}

pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// Every REST route, for the app and for the OpenAPI document.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    platform::account::configure(cfg);
    platform::clients::configure(cfg);
    platform::libraries::configure(cfg);
    platform::webhooks::configure(cfg);
    platform::report_links::configure(cfg);
    research::questionnaires::configure(cfg);
    research::questionnaire_transfer::configure(cfg);
    research::responses::configure(cfg);
    research::panel::configure(cfg);
    research::hypotheses::configure(cfg);
    research::qfd::configure(cfg);
    research::ux::configure(cfg);
    research::barriers::configure(cfg);
    research::tracks::configure(cfg);
    mail::email::configure(cfg);
    mail::sender::configure(cfg);
    mail::subscribers::configure(cfg);
    mail::contacts::configure(cfg);
    mail::chains::configure(cfg);
    mail::tracking::configure(cfg);
    commerce::cash::configure(cfg);
    commerce::purchases::configure(cfg);
    commerce::channels::configure(cfg);
}
