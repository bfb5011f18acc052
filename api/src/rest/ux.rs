//! The UX dynamic map of mystery-shopper audits.
use actix_web::{HttpResponse, get, web};
use analytics::ux::UxMap;
use service::AppError;
use uuid::Uuid;

use super::{Errors, ok};
use crate::error::ApiResult;
use crate::extract::{Auth, State};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UxQuery {
    /// As-of date D, `YYYY-MM-DD` (default: today in the client's time zone).
    /// The current window is the 7 days ending on D, the baseline the 28
    /// days before it.
    as_of: Option<String>,
}

/// Per touchpoint × JTBD, touchpoint and stage: window means, deviation,
/// flags and daily series; ideas by touchpoint; the stage × JTBD heatmap.
#[utoipa::path(tag = "ux-map", params(("id" = Uuid, Path, description = "client id"), UxQuery), responses((status = 200, body = UxMap), Errors), security(("bearer" = [])))]
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

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(ux_map);
}
