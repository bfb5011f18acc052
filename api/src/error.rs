//! `AppError` → RFC 9457 `application/problem+json`, mapped once here.
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use service::{AppError, FieldError};

#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type, `/problems/<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// The offending fields (validation problems).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

impl From<&FieldError> for ProblemField {
    fn from(e: &FieldError) -> Self {
        Self {
            field: e.field.clone(),
            message: e.message.clone(),
            row: e.row,
        }
    }
}

/// An outage wrapped on its way up is shown as what it is (503).
fn shown(e: &AppError) -> Option<AppError> {
    match e {
        AppError::Unexpected(inner) if e.is_unavailable() => {
            Some(AppError::DatabaseUnavailable(format!("{inner:#}")))
        }
        _ => None,
    }
}

/// The problem document a client reads for `e` (the document's examples
/// are made by this too, so they cannot drift from what is sent).
pub fn problem_of(e: &AppError) -> Problem {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Problem {
        type_: format!("/problems/{}", e.code()),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: e.public_detail(),
        code: e.code().to_owned(),
        errors: match e {
            AppError::Validation(errs) => errs.iter().map(ProblemField::from).collect(),
            _ => vec![],
        },
    }
}

pub fn problem_response(e: &AppError) -> HttpResponse {
    let normalized = shown(e);
    let e = normalized.as_ref().unwrap_or(e);
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let AppError::DatabaseUnavailable(cause) = e {
        // Expected during an outage: one line per request, not an error.
        tracing::warn!(error = %cause, "database unavailable");
    } else if status.is_server_error() {
        // The whole cause chain goes to the log, never to the client.
        let chain = match e {
            AppError::Unexpected(inner) => format!("{inner:?}"),
            other => other.to_string(),
        };
        tracing::error!(error = %chain, "request failed");
    }
    let body = problem_of(e);
    let mut resp = HttpResponse::build(status);
    resp.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    ));
    if let AppError::RateLimited { retry_after_secs } = e {
        resp.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
    }
    if let AppError::DatabaseUnavailable(_) = e {
        resp.insert_header((
            header::RETRY_AFTER,
            service::error::RETRY_AFTER_UNAVAILABLE_SECS.to_string(),
        ));
    }
    if let AppError::Unauthorized(_) = e {
        resp.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    }
    resp.body(serde_json::to_string(&body).unwrap_or_default())
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        let status = shown(&self.0).map_or(self.0.status(), |e| e.status());
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        problem_response(&self.0)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
