//! The one error type of the service layer. Transports map it once, at the edge.
use serde::Serialize;

/// One offending input field.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FieldError {
    /// Path of the field, e.g. `answers.nps` or `questions[2].options`.
    pub field: String,
    pub message: String,
    /// 1-based data row for imports; absent for single documents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row: Option<usize>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            row: None,
        }
    }

    pub fn at_row(mut self, row: usize) -> Self {
        self.row = Some(row);
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("rate limited")]
    RateLimited { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    /// The database cannot be reached (down, restarting, or no connection
    /// free within the pool's acquire timeout): 503, try again shortly.
    /// Holds the cause for the log, never shown to clients.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(field, message)])
    }

    /// A stable machine-readable code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::NotFound => "not_found",
            AppError::Unauthorized(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::Validation(_) => "validation_failed",
            AppError::BadRequest(_) => "bad_request",
            AppError::Conflict(_) => "conflict",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::PayloadTooLarge => "payload_too_large",
            AppError::DatabaseUnavailable(_) => "database_unavailable",
            AppError::Unexpected(_) => "internal",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::NotFound => 404,
            AppError::Unauthorized(_) => 401,
            AppError::Forbidden(_) => 403,
            AppError::Validation(_) => 422,
            AppError::BadRequest(_) => 400,
            AppError::Conflict(_) => 409,
            AppError::RateLimited { .. } => 429,
            AppError::PayloadTooLarge => 413,
            AppError::DatabaseUnavailable(_) => 503,
            AppError::Unexpected(_) => 500,
        }
    }

    /// What a client may read; never internals.
    pub fn public_detail(&self) -> String {
        match self {
            AppError::NotFound => "the resource does not exist".into(),
            AppError::Unauthorized(m)
            | AppError::Forbidden(m)
            | AppError::BadRequest(m)
            | AppError::Conflict(m) => m.clone(),
            AppError::Validation(errs) => match errs.first() {
                Some(e) if errs.len() == 1 => match e.row {
                    Some(r) => format!("row {r}: {}: {}", e.field, e.message),
                    None => format!("{}: {}", e.field, e.message),
                },
                _ => format!("{} fields are invalid", errs.len()),
            },
            AppError::RateLimited { retry_after_secs } => {
                format!("too many requests; retry after {retry_after_secs} s")
            }
            AppError::PayloadTooLarge => "the request body is too large".into(),
            AppError::DatabaseUnavailable(_) => {
                format!("the database is unavailable; retry after {RETRY_AFTER_UNAVAILABLE_SECS} s")
            }
            AppError::Unexpected(_) => "an unexpected error occurred".into(),
        }
    }

    /// True for an infrastructure outage rather than a fault of the request
    /// or of the code: the database could not be reached, whether the error
    /// says so itself or was wrapped on its way up.
    pub fn is_unavailable(&self) -> bool {
        match self {
            AppError::DatabaseUnavailable(_) => true,
            AppError::Unexpected(inner) => inner.chain().any(|cause| {
                cause
                    .downcast_ref::<sea_orm::DbErr>()
                    .is_some_and(db_unavailable)
                    || cause
                        .downcast_ref::<sqlx::Error>()
                        .is_some_and(sqlx_unavailable)
                    || cause
                        .downcast_ref::<AppError>()
                        .is_some_and(|e| matches!(e, AppError::DatabaseUnavailable(_)))
            }),
            _ => false,
        }
    }

    /// The error as a transport shows it: an outage wrapped on its way up
    /// becomes [`AppError::DatabaseUnavailable`].
    pub fn normalized(self) -> Self {
        if matches!(self, AppError::DatabaseUnavailable(_)) || !self.is_unavailable() {
            return self;
        }
        let cause = match &self {
            AppError::Unexpected(inner) => format!("{inner:#}"),
            other => other.to_string(),
        };
        AppError::DatabaseUnavailable(cause)
    }
}

/// Seconds a client is asked to wait after a 503 for an outage.
pub const RETRY_AFTER_UNAVAILABLE_SECS: u64 = 1;

use sea_orm::sqlx;

/// A database error that means "cannot reach the database", not "this
/// statement is wrong".
pub fn db_unavailable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(RuntimeErr::SqlxError(e))
        | DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_unavailable(e),
        _ => false,
    }
}

/// See [`db_unavailable`]: lost or refused connections, a pool that timed
/// out or closed, and the server's own "shutting down / starting up /
/// connection failure / too many connections" states (SQLSTATE classes 08
/// and 57P, and 53300).
pub fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P") || c == "53300"),
        _ => false,
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(e: sea_orm::DbErr) -> Self {
        if db_unavailable(&e) {
            return AppError::DatabaseUnavailable(e.to_string());
        }
        AppError::Unexpected(anyhow::Error::new(e))
    }
}

impl From<sea_orm::TransactionError<AppError>> for AppError {
    fn from(e: sea_orm::TransactionError<AppError>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(app) => app,
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
