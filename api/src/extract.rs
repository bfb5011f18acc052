//! Extractors: the authenticated context, JSON bodies that name the offending
//! field, and bounded raw bodies for imports.
use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::de::DeserializeOwned;
use service::{AppError, FieldError, Principal, RequestCtx, Services};
use uuid::Uuid;

use crate::error::ApiError;

/// Shared per-process state of the HTTP layer.
pub struct AppState {
    pub services: Services,
    pub auth_limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub key_limiter: DefaultKeyedRateLimiter<Uuid>,
    pub body_limit: usize,
    pub import_limit: usize,
    pub openapi_json: String,
}

impl AppState {
    pub fn new(
        services: Services,
        settings: &crate::configuration::Settings,
        openapi_json: String,
    ) -> Self {
        let per_min =
            NonZeroU32::new(settings.auth_rate_per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let per_sec =
            NonZeroU32::new(settings.api_key_rate_per_second.max(1)).unwrap_or(NonZeroU32::MIN);
        let burst = per_sec.saturating_mul(NonZeroU32::new(2).unwrap_or(NonZeroU32::MIN));
        Self {
            services,
            auth_limiter: RateLimiter::keyed(Quota::per_minute(per_min)),
            key_limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            body_limit: settings.body_limit_bytes,
            import_limit: settings.import_limit_bytes,
            openapi_json,
        }
    }

    /// Sign-up and login attempts per client IP.
    pub fn check_auth_rate(&self, req: &HttpRequest) -> Result<(), AppError> {
        let ip = req
            .peer_addr()
            .map(|a| a.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        self.auth_limiter
            .check_key(&ip)
            .map_err(|not_until| AppError::RateLimited {
                retry_after_secs: not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs()
                    .max(1),
            })
    }
}

pub type State = web::Data<AppState>;

fn state(req: &HttpRequest) -> Result<State, AppError> {
    req.app_data::<State>()
        .cloned()
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("application state missing")))
}

pub fn bearer(req: &HttpRequest) -> Result<Option<String>, AppError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::Unauthorized("malformed Authorization header".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| AppError::Unauthorized("expected a Bearer token".into()))?;
    Ok(Some(token.trim().to_owned()))
}

/// Resolves the caller once; API keys are rate-limited here.
pub async fn resolve(state: &AppState, token: &str) -> Result<RequestCtx, AppError> {
    let ctx = state.services.authenticate(token).await?;
    if let Principal::ApiKey(id) = ctx.principal {
        state
            .key_limiter
            .check_key(&id)
            .map_err(|not_until| AppError::RateLimited {
                retry_after_secs: not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs()
                    .max(1),
            })?;
    }
    Ok(ctx)
}

/// The request id the middleware settled on (`x-request-id`).
#[derive(Debug, Clone)]
pub struct ReqId(pub String);

/// The request's id, as answered in `x-request-id`.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<ReqId>().map(|r| r.0.clone())
}

/// An incoming `x-request-id` worth keeping: 1 to 128 characters of
/// letters, digits and `-_.:`.
pub fn incoming_request_id(req: &HttpRequest) -> Option<String> {
    let v = req.headers().get("x-request-id")?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| v.to_owned())
}

/// The authenticated caller.
pub struct Auth(pub RequestCtx);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state(&req)?;
            let token = bearer(&req)?
                .ok_or_else(|| AppError::Unauthorized("missing bearer token".into()))?;
            let mut ctx = resolve(&state, &token).await?;
            ctx.request_id = request_id(&req);
            tracing::Span::current().record("agency_id", tracing::field::display(ctx.agency_id));
            Ok(Auth(ctx))
        })
    }
}

/// Reads a body up to `limit` bytes; 413 past it.
pub async fn read_body<S, E>(payload: &mut S, limit: usize) -> Result<web::Bytes, AppError>
where
    S: futures::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::BadRequest(format!("could not read the body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses JSON, naming the offending field on error. A struct is read only
/// from an object ([`service::domain::strict`]): an array where the schema says
/// object is a 422 like any other wrong type.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    use service::domain::nesting;
    if nesting::json_exceeds(body, nesting::MAX_NESTING) {
        return Err(AppError::field(
            "body",
            nesting::message(nesting::MAX_NESTING),
        ));
    }
    if let Some(field) = service::domain::nul::json_nul_path(body) {
        return Err(AppError::field(field, service::domain::nul::MESSAGE));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = service::domain::strict::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        // serde reports an unknown field at its parent; name the field itself.
        let field = service::domain::import::json_error_field(
            &path,
            inner.is_syntax() || inner.is_eof(),
            "body",
        );
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("is not valid JSON: {msg}")
        } else {
            msg.split(" at line ").next().unwrap_or(&msg).to_owned()
        };
        AppError::Validation(vec![FieldError::new(field, message)])
    })?;
    de.end()
        .map_err(|_| AppError::field("body", "has trailing characters after the JSON value"))?;
    Ok(value)
}

/// A segment filter sent as URL-encoded JSON in `?filter=`; errors name
/// `filter.<field>`.
pub fn filter_param(
    json: Option<&str>,
) -> Result<Option<service::domain::segment_filter::SegmentFilter>, AppError> {
    let Some(json) = json else {
        return Ok(None);
    };
    parse_json(json.as_bytes()).map(Some).map_err(|e| match e {
        AppError::Validation(mut errs) => {
            for f in &mut errs {
                f.field = if f.field == "body" {
                    "filter".into()
                } else {
                    format!("filter.{}", f.field)
                };
            }
            AppError::Validation(errs)
        }
        other => other,
    })
}

/// A JSON body: `application/json`, bounded, unknown fields rejected (by the
/// target types), errors naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let state = state(&req)?;
            let ct = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(AppError::Validation(vec![FieldError::new(
                    "Content-Type",
                    "must be application/json",
                )])
                .into());
            }
            let body = read_body(&mut payload, state.body_limit).await?;
            Ok(JsonBody(parse_json(&body)?))
        })
    }
}

/// The format of an import body, from its `Content-Type`.
pub fn import_format(req: &HttpRequest) -> Result<service::responses::ImportFormat, AppError> {
    use service::responses::ImportFormat;
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match ct.split(';').next().unwrap_or("").trim() {
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Ok(ImportFormat::Ndjson)
        }
        "text/csv" => Ok(ImportFormat::Csv),
        _ => Err(AppError::Validation(vec![FieldError::new(
            "Content-Type",
            "must be application/x-ndjson or text/csv",
        )])),
    }
}

/// A raw body bounded by the import limit.
pub struct ImportBody(pub web::Bytes);

impl FromRequest for ImportBody {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let state = state(&req)?;
            Ok(ImportBody(
                read_body(&mut payload, state.import_limit).await?,
            ))
        })
    }
}

pub type SharedState = Arc<AppState>;
