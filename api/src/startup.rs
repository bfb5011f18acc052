//! Start-up as a struct: `Application::build(settings)` connects, migrates,
//! starts the in-process worker if asked, and binds; tests bind port 0.
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::Server;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, web};
use anyhow::Context;
use service::queue::JobQueue;
use service::{AppError, ServiceConfig, Services};
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder, TracingLogger};
use utoipa_actix_web::AppExt;

use crate::configuration::Settings;
use crate::devpages;
use crate::error::ApiError;
use crate::extract::{AppState, State, bearer, read_body, resolve};
use crate::graphql::{GpSchema, build_schema};
use crate::methods::AllowedMethods;

/// Connects to the database and the queue named by the settings.
pub async fn connect(settings: &Settings) -> anyhow::Result<Services> {
    service::audit::set_enabled(settings.audit);
    if !settings.is_postgres() || settings.redis_url.is_none() {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("while creating {}", settings.data_dir.display()))?;
        std::fs::create_dir_all(settings.outbox_dir())
            .with_context(|| format!("while creating {}", settings.outbox_dir().display()))?;
    }
    let db = service::db::connect(
        &settings.database_url(),
        settings.db_max_connections,
        Duration::from_millis(settings.db_acquire_timeout_ms.max(1)),
    )
    .await?;
    service::db::migrate(&db).await?;
    let queue = match &settings.redis_url {
        Some(url) => JobQueue::redis(url, &settings.queue_name).await?,
        None if settings.is_postgres() => {
            anyhow::bail!("REDIS_URL is required with PostgreSQL (the shared job queue)")
        }
        None => JobQueue::sqlite(&settings.queue_url(), &settings.queue_name).await?,
    };
    let secret = settings.jwt_key()?;
    let jwt = service::auth::JwtKeys::from_secret(&secret);
    let links = service::email::links::LinkSigner::new(&secret, &settings.public_base(None));
    // Other processes write to PostgreSQL: cached reads are served only while
    // their invalidations are being received. SQLite has one writing process.
    let client_cache = if settings.is_postgres() {
        service::clients::ClientCache::new(Duration::from_millis(settings.read_cache_ms), false)
    } else {
        service::clients::ClientCache::new(
            Duration::from_millis(settings.read_cache_ms.min(settings.auth_cache_ms)),
            true,
        )
    };
    let services = Services {
        db,
        queue,
        jwt: Arc::new(jwt),
        config: Arc::new(ServiceConfig {
            jwt_ttl_secs: settings.jwt_ttl_secs,
            sweep_grace_ms: settings.sweep_grace_ms,
            retry_base_ms: settings.retry_base_ms,
            recompute_debounce_ms: settings.recompute_debounce_ms,
            alert_window_ms: settings.alert_window_ms,
            webhooks_allow_private: settings.webhooks_allow_private,
            webhook_retry_horizon_ms: settings.webhook_retry_horizon_ms,
            webhook_retry_base_ms: settings.webhook_retry_base_ms,
            audit_retention_days: settings.audit_retention_days,
            webhook_retention_days: settings.webhook_retention_days,
            sealer: settings
                .secret_key()?
                .map(|k| service::secrets::Sealer::new(&k).map(Arc::new))
                .transpose()
                .map_err(|e| anyhow::anyhow!("SECRET_KEY: {e}"))?,
            ..ServiceConfig::default()
        }),
        panels: Default::default(),
        jtbd_reports: Default::default(),
        auth_cache: Arc::new(service::auth::AuthCache::new(Duration::from_millis(
            settings.auth_cache_ms,
        ))),
        client_cache: Arc::new(client_cache),
        email: Some(Arc::new(email_settings(settings)?)),
        links: Arc::new(links),
        db_health: Default::default(),
        metrics: Arc::new(service::metrics::Metrics::new(
            &service::jobs::RECOMPUTE_KINDS,
        )),
    };
    service::db_health::spawn_probe(settings.database_url(), services.db_health.clone());
    if settings.is_postgres() {
        tokio::spawn(service::cache::listen(
            services.clone(),
            settings.database_url(),
        ));
    }
    Ok(services)
}

/// The mail transport: `SMTP_URL`, else `.eml` files in the outbox folder.
fn email_settings(settings: &Settings) -> anyhow::Result<service::email::EmailSettings> {
    let mailer = match &settings.smtp_url {
        Some(url) => service::email::Mailer::smtp(url, settings.smtp_pool_size)?,
        None => service::email::Mailer::outbox(settings.outbox_dir()),
    };
    let from = settings
        .mail_from
        .parse()
        .with_context(|| format!("GROWTHPOINT_MAIL_FROM {:?}", settings.mail_from))?;
    let mut email = service::email::EmailSettings::new(
        mailer,
        from,
        settings.email_rate_per_second,
        settings.email_retry_base_ms,
    );
    email.lease_ms = settings.email_lease_ms.max(300);
    Ok(email)
}

/// A unique id for this process's worker.
pub fn worker_id() -> String {
    format!(
        "{}-{}-{}",
        hostname(),
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "host".into())
}

pub fn start_worker(services: Services, settings: &Settings) -> worker::WorkerHandle {
    worker::spawn(
        services,
        worker::WorkerOptions {
            id: worker_id(),
            concurrency: settings.worker_concurrency,
            sweep_interval: Duration::from_millis(settings.sweep_interval_ms),
            retention_interval: Duration::from_millis(settings.retention_interval_ms),
            poll_interval: Duration::from_millis(settings.queue_poll_ms),
        },
    )
}

pub struct Application {
    port: u16,
    server: Server,
    services: Services,
    worker: Option<worker::WorkerHandle>,
    /// The port of `metrics_addr`'s listener and its server's handle.
    metrics: Option<(u16, actix_web::dev::ServerHandle)>,
}

impl Application {
    /// Binds first, so that links in emails name the port really bound
    /// when `GROWTHPOINT_PUBLIC_URL` is not set.
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("while binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        settings.public_url = Some(settings.public_base(Some(port)));
        let metrics_listener = crate::metrics::bind(settings.metrics_addr.as_deref())?;
        let services = connect(&settings).await?;
        Self::serve_on(listener, metrics_listener, settings, services)
    }

    fn serve_on(
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        settings: Settings,
        services: Services,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let metrics_token = settings
            .metrics_token
            .as_ref()
            .map(crate::metrics::MetricsToken::new)
            .transpose()?
            .map(web::Data::new);
        let metrics = match metrics_listener {
            Some(l) => {
                let port = l.local_addr()?.port();
                let server = crate::metrics::server(l, services.clone())?;
                let handle = server.handle();
                tokio::spawn(server);
                Some((port, handle))
            }
            None => None,
        };
        let worker = settings
            .run_worker
            .then(|| start_worker(services.clone(), &settings));
        let openapi = crate::openapi::document_json();
        let allowed = web::Data::new(allowed_methods(&openapi, metrics_token.is_some())?);
        let state = web::Data::new(AppState::new(services.clone(), &settings, openapi));
        let schema = web::Data::new(build_schema(services.clone()));
        let health = services.db_health.clone();
        let counters = services.metrics.clone();
        let server = HttpServer::new(move || {
            let health = health.clone();
            let counters = counters.clone();
            let methods = allowed.clone();
            let app = App::new()
                .wrap_fn(move |req, srv| outage_guard(health.clone(), req, srv))
                // A 405 needs no database: outside the outage guard.
                .wrap_fn(move |req, srv| crate::methods::guard(&methods, req, srv))
                .wrap_fn(|req, srv| {
                    use actix_web::dev::Service;
                    // A well-formed incoming id is kept (a caller's or a
                    // proxy's trace id), else the one the tracing layer made.
                    let id = crate::extract::incoming_request_id(req.request())
                        .or_else(|| req.extensions().get::<RequestId>().map(|r| r.to_string()));
                    if let Some(id) = &id {
                        req.extensions_mut()
                            .insert(crate::extract::ReqId(id.clone()));
                    }
                    let fut = srv.call(req);
                    async move {
                        let mut res = fut.await?;
                        if let Some(v) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
                            res.headers_mut()
                                .insert(HeaderName::from_static("x-request-id"), v);
                        }
                        Ok(res)
                    }
                })
                .wrap(TracingLogger::<RootSpan>::new())
                // Outermost: it sees every answer, the outage guard's too.
                .wrap_fn(move |req, srv| crate::metrics::track(counters.clone(), req, srv))
                .app_data(state.clone())
                .app_data(schema.clone())
                .app_data(allowed.clone())
                .app_data(
                    web::PathConfig::default()
                        .error_handler(|_, _| ApiError(AppError::NotFound).into()),
                )
                // Before the /api/v1 scope, which would answer 404 for them.
                .route(OPENAPI_PATH, web::get().to(openapi_json))
                .route(devpages::DOCS_PATH, web::get().to(devpages::docs))
                .route(DOCS_ASSET_ROUTE, web::get().to(devpages::docs_asset))
                .app_data(web::QueryConfig::default().error_handler(|e, _| {
                    ApiError(AppError::field(
                        "query",
                        query_error_message(&e.to_string()),
                    ))
                    .into()
                }))
                .into_utoipa_app();
            let app = crate::openapi::routes(app).into_app();
            let app = match &metrics_token {
                Some(token) => app.app_data(token.clone()).route(
                    crate::metrics::PATH,
                    web::get().to(crate::metrics::scrape_with_token),
                ),
                None => app,
            };
            app.route(GRAPHQL_PATH, web::post().to(graphql))
                .route(
                    crate::report_page::PATH,
                    web::get().to(crate::report_page::page),
                )
                .route(GRAPHQL_PATH, web::get().to(devpages::graphiql))
                .route(
                    GRAPHIQL_ASSET_ROUTE,
                    web::get().to(devpages::graphiql_asset),
                )
                .default_service(web::to(refuse))
        })
        .listen(listener)?
        .shutdown_timeout(10)
        .run();
        Ok(Self {
            port,
            server,
            services,
            worker,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the `metrics_addr` listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        drop(self.worker);
        if let Some((_, metrics)) = self.metrics {
            metrics.stop(true).await;
        }
        result
    }
}

/// The request span, with a slot for the agency once the caller is known.
pub struct RootSpan;

impl RootSpanBuilder for RootSpan {
    fn on_request_start(request: &ServiceRequest) -> tracing::Span {
        tracing_actix_web::root_span!(request, agency_id = tracing::field::Empty)
    }

    fn on_request_end<B: MessageBody>(
        span: tracing::Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn query_error_message(s: &str) -> String {
    s.strip_prefix("Query deserialize error: ")
        .unwrap_or(s)
        .to_owned()
}

/// While the database is unreachable, a request that needs it is answered
/// 503 `database_unavailable` with `Retry-After` at once, and one already
/// running when the database goes is cut short the same way (dropping it
/// rolls its transaction back), instead of each waiting out the pool's
/// acquire timeout. Liveness, readiness and the static documents answer.
fn outage_guard<S>(
    health: Arc<service::db_health::DbHealth>,
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>> + use<S>
where
    S: actix_web::dev::Service<
            ServiceRequest,
            Response = ServiceResponse,
            Error = actix_web::Error,
        >,
{
    // `/metrics` reads the database itself, with a timeout, and says so.
    let exempt = matches!(
        req.path(),
        "/healthz" | "/readyz" | "/api/v1/openapi.json" | crate::metrics::PATH
    ) || devpages::is_static(req.method(), req.path());
    // An error, not a response: building one would need a second handle on
    // the request, which actix must own alone while the handler runs.
    let unavailable = || {
        Err(ApiError(AppError::DatabaseUnavailable(
            "the database does not answer the probe".into(),
        ))
        .into())
    };
    let call = (exempt || !health.is_down()).then(|| srv.call(req));
    async move {
        match call {
            None => unavailable(),
            Some(call) if exempt => call.await,
            Some(call) => tokio::select! {
                res = call => res,
                () = health.went_down() => unavailable(),
            },
        }
    }
}

const OPENAPI_PATH: &str = "/api/v1/openapi.json";
const DOCS_ASSET_ROUTE: &str = "/api/v1/docs/assets/{name}";
const GRAPHQL_PATH: &str = "/graphql";
const GRAPHIQL_ASSET_ROUTE: &str = "/graphql/assets/{name}";

/// The methods of every path: the OpenAPI document's, and those of the
/// routes registered above outside it.
fn allowed_methods(openapi: &str, metrics: bool) -> anyhow::Result<AllowedMethods> {
    let document = serde_json::from_str(openapi).context("while reading the OpenAPI document")?;
    let mut extra: Vec<(&str, &[&'static str])> = vec![
        (OPENAPI_PATH, &["GET"]),
        (devpages::DOCS_PATH, &["GET"]),
        (DOCS_ASSET_ROUTE, &["GET"]),
        (GRAPHQL_PATH, &["GET", "POST"]),
        (GRAPHIQL_ASSET_ROUTE, &["GET"]),
        (crate::report_page::PATH, &["GET"]),
    ];
    if metrics {
        extra.push((crate::metrics::PATH, &["GET"]));
    }
    Ok(AllowedMethods::new(&document, &extra))
}

/// A request no route took: 405 with `Allow` for an undeclared method of
/// a known path, 404 otherwise.
async fn refuse(req: HttpRequest, allowed: web::Data<AllowedMethods>) -> HttpResponse {
    allowed.refuse(&req)
}

async fn openapi_json(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(state.openapi_json.clone())
}

async fn graphql(
    state: State,
    schema: web::Data<GpSchema>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&mut payload, state.body_limit).await?;
    let request = crate::graphql::parse_request(&body)?;
    let caller = match bearer(&req) {
        Ok(Some(token)) => resolve(&state, &token).await,
        Ok(None) => Err(AppError::Unauthorized("missing bearer token".into())),
        Err(e) => Err(e),
    };
    // A rate-limited key, or a caller that cannot be looked up because the
    // database is down, is refused as a whole request, like REST.
    let caller = caller
        .map(|mut ctx| {
            ctx.request_id = crate::extract::request_id(&req);
            ctx
        })
        .map_err(AppError::normalized);
    if let Err(e @ (AppError::RateLimited { .. } | AppError::DatabaseUnavailable(_))) = caller {
        return Err(e.into());
    }
    let response = schema
        .execute(crate::graphql::request_data(
            request,
            &state.services,
            caller,
        ))
        .await;
    // An outage met by any resolver makes the whole answer a 503: the
    // client retries the request rather than trusting partial data.
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == async_graphql::Value::from(crate::graphql::CODE_UNAVAILABLE))
    });
    if unavailable {
        return Err(AppError::DatabaseUnavailable("met by a GraphQL resolver".into()).into());
    }
    Ok(HttpResponse::Ok().json(response))
}
