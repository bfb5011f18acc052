//! `/metrics` (Prometheus text format) and the middleware that counts
//! requests by route pattern and status.
//!
//! Two ways to expose it, either or both:
//! - `GROWTHPOINT_METRICS_ADDR`: a listener of its own (`serve` and
//!   `worker` alike) that answers only `GET /metrics`, without credentials:
//!   bind it to an address only the Prometheus server reaches.
//! - `GROWTHPOINT_METRICS_TOKEN`: `GET /metrics` on the API's own port,
//!   with `Authorization: Bearer <token>` (401 otherwise). Unset, the main
//!   port has no `/metrics` (404).
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_web::dev::{Server, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use service::metrics::Metrics;
use service::{AppError, Services};
use sha2::{Digest, Sha256};

use crate::configuration::Secret;
use crate::error::problem_response;

/// The path, on either listener.
pub const PATH: &str = "/metrics";

/// The shortest token accepted: a guessable one would expose the counters.
pub const MIN_TOKEN_LEN: usize = 16;

/// The route label of a request no route matched (a 404, or an undeclared
/// method of a path no resource has): raw paths never become labels.
pub const UNMATCHED: &str = "unmatched";

/// Counts every request once it is answered, by its route's pattern
/// (`/api/v1/clients/{id}`), method and status, with its latency.
pub fn track<S, B>(
    metrics: Arc<Metrics>,
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let started = Instant::now();
    let method = req.method().clone();
    // Found by path in the resource map before routing; replaced below by
    // the resource that answered, when one did.
    let by_path = req.match_pattern();
    let call = srv.call(req);
    async move {
        let res = call.await;
        let (status, route) = match &res {
            Ok(r) => (r.status().as_u16(), r.request().match_pattern().or(by_path)),
            Err(e) => (e.as_response_error().status_code().as_u16(), by_path),
        };
        metrics.observe_request(
            method.as_str(),
            route.as_deref().unwrap_or(UNMATCHED),
            status,
            started.elapsed().as_secs_f64(),
        );
        res
    }
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, service::metrics::CONTENT_TYPE))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// The token of the main port's `/metrics`, kept as its digest.
pub struct MetricsToken([u8; 32]);

impl MetricsToken {
    pub fn new(secret: &Secret) -> anyhow::Result<Self> {
        let token = secret.expose();
        if token.len() < MIN_TOKEN_LEN {
            anyhow::bail!("GROWTHPOINT_METRICS_TOKEN must be at least {MIN_TOKEN_LEN} characters");
        }
        Ok(Self(Sha256::digest(token.as_bytes()).into()))
    }

    /// Compares digests, so the time taken says nothing about the token.
    fn admits(&self, req: &HttpRequest) -> bool {
        let Ok(Some(given)) = crate::extract::bearer(req) else {
            return false;
        };
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        given
            .iter()
            .zip(self.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// `GET /metrics` on the API's port (registered only with a token).
pub async fn scrape_with_token(
    req: HttpRequest,
    token: web::Data<MetricsToken>,
    state: crate::extract::State,
) -> HttpResponse {
    if !token.admits(&req) {
        return problem_response(&AppError::Unauthorized(
            "a valid metrics token is required".into(),
        ));
    }
    text(state.services.metrics_text().await)
}

async fn scrape(services: web::Data<Services>) -> HttpResponse {
    text(services.metrics_text().await)
}

async fn not_found() -> HttpResponse {
    problem_response(&AppError::NotFound)
}

/// The metrics listener of `GROWTHPOINT_METRICS_ADDR`: `GET /metrics`
/// only. The returned server runs once awaited or spawned.
pub fn server(listener: TcpListener, services: Services) -> anyhow::Result<Server> {
    let services = web::Data::new(services);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(services.clone())
            .route(PATH, web::get().to(scrape))
            .default_service(web::to(not_found))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .context("while listening for metrics")?
    .shutdown_timeout(1)
    .run())
}

/// Binds `GROWTHPOINT_METRICS_ADDR`, if set: the listener and its port.
pub fn bind(addr: Option<&str>) -> anyhow::Result<Option<TcpListener>> {
    addr.map(|a| {
        TcpListener::bind(a).with_context(|| format!("while binding the metrics address {a}"))
    })
    .transpose()
}
