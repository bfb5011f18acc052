//! Liveness and readiness.
use actix_web::{HttpResponse, get};
use serde_json::json;

use crate::extract::State;

/// The process is up.
#[utoipa::path(tag = "health", responses((status = 200, description = "up")))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database and the job queue answer.
#[utoipa::path(tag = "health", responses((status = 200, description = "ready"), (status = 503, description = "a dependency is down")))]
#[get("/readyz")]
async fn readyz(state: State) -> HttpResponse {
    let db = if state.services.db_health.is_down() {
        Err(())
    } else {
        service::db::ping(&state.services.db).await.map_err(|_| ())
    };
    let queue = state.services.queue.ping().await;
    let body = json!({
        "database": if db.is_ok() { "ok" } else { "down" },
        "queue": if queue.is_ok() { "ok" } else { "down" },
        "queue_backend": state.services.queue.backend_name(),
    });
    if db.is_ok() && queue.is_ok() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
