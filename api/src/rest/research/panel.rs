//! Analytics read models.
use actix_web::{HttpResponse, get, web};
use service::panel::PanelView;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, State, filter_param};
use crate::rest::{Errors, ok};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PanelQuery {
    /// A segment filter as URL-encoded JSON: an AND of conditions, each an OR
    /// over option values (choice questions) or a closed range (number and
    /// rating questions); a multi-choice answer matches if it contains any
    /// listed value. Example:
    /// `{"conditions":[{"question":"buy_for","values":["parents"]},{"question":"budget","min":3000000,"max":5000000},{"question":"source","values":["social"]}]}`.
    /// Unknown keys, unknown questions and options that do not exist are 422.
    filter: Option<String>,
    /// Use a saved segment's filter instead.
    segment_id: Option<Uuid>,
}

/// The customer panel (analytics.md §1) of all responses or of a segment.
#[utoipa::path(
    tag = "analytics",
    params(("id" = Uuid, Path, description = "questionnaire id"), PanelQuery),
    responses((status = 200, body = PanelView), Errors),
    security(("bearer" = []))
)]
#[get("/questionnaires/{id}/panel")]
async fn panel(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    q: web::Query<PanelQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let filter = state
        .services
        .resolve_segment(
            &ctx,
            filter_param(q.filter.as_deref())?,
            q.segment_id,
            "segment_id",
        )
        .await?;
    Ok(ok(state
        .services
        .questionnaire_panel(&ctx, *id, filter)
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(panel);
}
