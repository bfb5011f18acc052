//! Cash Journey models (analytics.md §5): scenarios, actuals per period,
//! channel calendars and the computed results.
use actix_web::{HttpResponse, delete, get, post, put, web};
use service::cash::{
    CashActualFigures, CashActualsFromChannelsInput, CashActualsFromChannelsView, CashActualsView,
    CashChannelInput, CashChannelView, CashModelInput, CashModelView, CashResultsView,
};
use service::page::{Page, PageParams};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<CashModelView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/cash-models")]
async fn list_cash_models(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_cash_models(&ctx, *id, page.into_inner())
        .await?))
}

/// Create a model with its three scenarios (analysts and up).
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path, description = "client id")), request_body = CashModelInput, responses((status = 201, body = CashModelView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/cash-models")]
async fn create_cash_model(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<CashModelInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_cash_model(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), responses((status = 200, body = CashModelView), Errors), security(("bearer" = [])))]
#[get("/cash-models/{id}")]
async fn get_cash_model(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.get_cash_model(&ctx, *id).await?))
}

/// Replace the name and all three scenarios.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), request_body = CashModelInput, responses((status = 200, body = CashModelView), Errors), security(("bearer" = [])))]
#[put("/cash-models/{id}")]
async fn update_cash_model(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<CashModelInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .update_cash_model(&ctx, *id, input)
        .await?))
}

/// Delete the model with its actuals and channel calendars.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/cash-models/{id}")]
async fn delete_cash_model(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_cash_model(&ctx, *id).await?;
    Ok(no_content())
}

/// Every figure per scenario and per stage, profit, ROMI, the sensitivity
/// ranking, plan vs fact per period and each channel's effect, computed now.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), responses((status = 200, body = CashResultsView), Errors), security(("bearer" = [])))]
#[get("/cash-models/{id}/results")]
async fn cash_results(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.cash_results(&ctx, *id).await?))
}

/// Every period's actual figures, by period.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), responses((status = 200, body = Vec<CashActualsView>), Errors), security(("bearer" = [])))]
#[get("/cash-models/{id}/actuals")]
async fn list_cash_actuals(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.list_cash_actuals(&ctx, *id).await?))
}

/// Store or replace one month's actual figures; any subset of the figures
/// (at least one). Analysts and `ingest`/`write` API keys.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path), ("period" = String, Path, description = "a month, `YYYY-MM`", pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$")), request_body = CashActualFigures, responses((status = 200, body = CashActualsView), Errors), security(("bearer" = [])))]
#[put("/cash-models/{id}/actuals/{period}")]
async fn put_cash_actuals(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, String)>,
    JsonBody(input): JsonBody<CashActualFigures>,
) -> ApiResult<HttpResponse> {
    let (id, period) = path.into_inner();
    Ok(ok(state
        .services
        .put_cash_actuals(&ctx, id, &period, input)
        .await?))
}

/// Take one month's reach (= impressions), ctr (= clicks / impressions) and
/// marketing cost (= spend) from the client's channel figures of that month,
/// optionally of some channels or one funnel type; the other figures keep
/// their stored values. Taking the same figures again changes nothing. A
/// month without channel figures is a 422 naming `period`. Analysts and
/// `ingest`/`write` API keys.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), request_body = CashActualsFromChannelsInput, responses((status = 200, body = CashActualsFromChannelsView), Errors), security(("bearer" = [])))]
#[post("/cash-models/{id}/actuals/from-channels")]
async fn cash_actuals_from_channels(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<CashActualsFromChannelsInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .cash_actuals_from_channels(&ctx, *id, input)
        .await?))
}

#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path), ("period" = String, Path, description = "a month, `YYYY-MM`", pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])$")), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/cash-models/{id}/actuals/{period}")]
async fn delete_cash_actuals(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (id, period) = path.into_inner();
    state
        .services
        .delete_cash_actuals(&ctx, id, &period)
        .await?;
    Ok(no_content())
}

/// Every channel's on/off calendar, by channel.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path)), responses((status = 200, body = Vec<CashChannelView>), Errors), security(("bearer" = [])))]
#[get("/cash-models/{id}/channels")]
async fn list_cash_channels(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.list_cash_channels(&ctx, *id).await?))
}

/// Store or replace a channel's on/off calendar with the daily metric; the
/// results then report the channel's effect. Analysts and `ingest`/`write`
/// API keys.
#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path), ("channel" = String, Path, description = "channel key: 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")), request_body = CashChannelInput, responses((status = 200, body = CashChannelView), Errors), security(("bearer" = [])))]
#[put("/cash-models/{id}/channels/{channel}")]
async fn put_cash_channel(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, String)>,
    JsonBody(input): JsonBody<CashChannelInput>,
) -> ApiResult<HttpResponse> {
    let (id, channel) = path.into_inner();
    Ok(ok(state
        .services
        .put_cash_channel(&ctx, id, &channel, input)
        .await?))
}

#[utoipa::path(tag = "cash-journey", params(("id" = Uuid, Path), ("channel" = String, Path, description = "channel key", pattern = r"^[a-z0-9][a-z0-9_-]{0,63}$")), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/cash-models/{id}/channels/{channel}")]
async fn delete_cash_channel(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, String)>,
) -> ApiResult<HttpResponse> {
    let (id, channel) = path.into_inner();
    state
        .services
        .delete_cash_channel(&ctx, id, &channel)
        .await?;
    Ok(no_content())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_cash_models)
        .service(create_cash_model)
        .service(get_cash_model)
        .service(update_cash_model)
        .service(delete_cash_model)
        .service(cash_results)
        .service(list_cash_actuals)
        .service(put_cash_actuals)
        .service(cash_actuals_from_channels)
        .service(delete_cash_actuals)
        .service(list_cash_channels)
        .service(put_cash_channel)
        .service(delete_cash_channel);
}
