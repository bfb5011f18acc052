//! Sales barriers: which barriers explain refusals, and where they bite.
use actix_web::{HttpResponse, get, web};
use service::barriers::BarrierAnalysis;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, State};
use crate::rest::{Errors, ok};

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BarriersQuery {
    /// Analyse the responses in this saved segment of the client only (its
    /// filter applied to every questionnaire; one whose questions the filter
    /// does not fit contributes none). Another client's or an unknown
    /// segment is 422.
    segment_id: Option<Uuid>,
    /// Keep the barriers of this CJM stage only (a stage of the client's
    /// touchpoint library, named by the barrier question's `stage_id`);
    /// another is 422.
    stage_id: Option<Uuid>,
}

/// The client's sales barriers, from its `non_buyer` questionnaires
/// (non-buyers) against its `customer_panel` and `segment_survey` ones
/// (buyers), over their questions with role `barrier`. A barrier is an
/// option of a choice barrier question (question key + option value across
/// questionnaires). Per group: count, share = count / respondents who
/// answered the question (blanks excluded, `[]` counted; multi-choice shares
/// may sum above 1) and its 95% Wilson score interval. Where both groups
/// answered: lift = share among non-buyers − share among buyers with its 95%
/// CI (unpooled standard error), the one-sided p-value of "more frequent
/// among non-buyers" (pooled two-proportion z-test, Fisher's exact test when
/// an expected count is below 5) and Benjamini–Hochberg q-values across the
/// barriers of this analysis. Barriers are ranked by the refusals they would
/// explain: the non-buyers naming it beyond the buyers' rate,
/// max(0, count_nb − n_nb · share among buyers), or the plain non-buyer
/// count where no buyer answered the question; ties by option value, then
/// question key. Text barrier questions list their latest 50 and 20 most
/// frequent normalised answers per group. Computed on request from the
/// current data (`data_version` = the sum of the sources' versions).
#[utoipa::path(
    tag = "analytics",
    params(("id" = Uuid, Path, description = "client id"), BarriersQuery),
    responses((status = 200, body = BarrierAnalysis), Errors),
    security(("bearer" = []))
)]
#[get("/clients/{id}/barriers")]
async fn barriers(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    q: web::Query<BarriersQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    Ok(ok(state
        .services
        .client_barriers(&ctx, *id, q.segment_id, q.stage_id)
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(barriers);
}
