//! QFD for the CJM.
use actix_web::{HttpResponse, get, put, web};
use service::qfd::{QfdMatrix, QfdMatrixInput, QfdView};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State, filter_param};
use crate::rest::{Errors, ok};

#[utoipa::path(tag = "qfd", params(("id" = Uuid, Path, description = "client id")), responses((status = 200, body = QfdMatrix), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/qfd/matrix")]
async fn get_matrix(state: State, Auth(ctx): Auth, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.qfd_matrix(&ctx, *id).await?))
}

/// Bulk upsert of factor × touchpoint cells (0, 1, 3 or 9; 0 removes a
/// cell) and of importance overrides (null removes one). The touchpoints are
/// those of the client's touchpoint library.
#[utoipa::path(tag = "qfd", params(("id" = Uuid, Path, description = "client id")), request_body = QfdMatrixInput, responses((status = 200, body = QfdMatrix), Errors), security(("bearer" = [])))]
#[put("/clients/{id}/qfd/matrix")]
async fn put_matrix(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<QfdMatrixInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_qfd_matrix(&ctx, *id, input)
        .await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct QfdQuery {
    /// The customer panel the importances come from (default: the newest).
    questionnaire_id: Option<Uuid>,
    /// A segment filter (URL-encoded JSON, as for panels) for a segment QFD.
    filter: Option<String>,
    /// Or a saved segment.
    segment_id: Option<Uuid>,
}

/// Scores, relative weights and classes per touchpoint, factor and stage,
/// and improvement priorities from the mystery-shopper ratings.
#[utoipa::path(tag = "qfd", params(("id" = Uuid, Path, description = "client id"), QfdQuery), responses((status = 200, body = QfdView), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/qfd")]
async fn get_qfd(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    q: web::Query<QfdQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    let segment = state
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
        .qfd(&ctx, *id, q.questionnaire_id, segment)
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_matrix).service(put_matrix).service(get_qfd);
}
