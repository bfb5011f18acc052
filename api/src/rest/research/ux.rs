//! The UX dynamic map of mystery-shopper audits.
use actix_web::{HttpResponse, get, web};
use service::AppError;
use service::page::{Page, PageParams};
use service::ux::{AlertFilter, UxAlertView, UxMapView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, State};
use crate::rest::{Errors, ok};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UxQuery {
    /// As-of date D, `YYYY-MM-DD` (default: today in the client's time zone).
    /// The current window is the 7 days ending on D, the baseline the 28
    /// days before it.
    #[param(schema_with = service::docs::date)]
    as_of: Option<String>,
}

/// Per touchpoint × JTBD, touchpoint and stage: window means, deviation,
/// flags and daily series; ideas by touchpoint; the stage × JTBD heatmap.
#[utoipa::path(tag = "ux-map", params(("id" = Uuid, Path, description = "client id"), UxQuery), responses((status = 200, body = UxMapView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/ux-map")]
async fn ux_map(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    q: web::Query<UxQuery>,
) -> ApiResult<HttpResponse> {
    let as_of = match &q.as_of {
        Some(s) => Some(
            chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| AppError::field("as_of", "is not a date (YYYY-MM-DD)"))?,
        ),
        None => None,
    };
    Ok(ok(state.services.ux_map(&ctx, *id, as_of).await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertQuery {
    /// `true`: only alerts not cleared yet.
    open: Option<bool>,
}

/// Negative flags of the client's UX map, in the order raised: by the worker
/// when a recompute first sees a flag, cleared when one no longer does.
#[utoipa::path(tag = "ux-map", params(("id" = Uuid, Path, description = "client id"), AlertQuery, PageParams), responses((status = 200, body = Page<UxAlertView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/ux-alerts")]
async fn ux_alerts(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    q: web::Query<AlertQuery>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    let filter = AlertFilter {
        open_only: q.open.unwrap_or(false),
    };
    Ok(ok(state
        .services
        .ux_alerts(&ctx, *id, filter, page.into_inner())
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(ux_map).service(ux_alerts);
}
