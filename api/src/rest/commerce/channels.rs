//! Channel figures in, the channel report out (analytics.md §7).
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use analytics::funnel::ChannelReport;
use service::channels::{
    ChannelDayView, ChannelFiguresInput, ChannelIngestResult, ChannelReportParams,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, ImportBody, JsonBody, State};
use crate::rest::{Errors, created, ok};

/// Store days of channel figures (analysts and `ingest`/`write` API keys):
/// one row per day, channel and funnel type; a row already stored for that
/// key is replaced, so re-sending changes nothing. Any invalid row → 422
/// naming `rows[i].field`, and nothing is stored.
#[utoipa::path(tag = "channels", params(("id" = Uuid, Path, description = "client id")), request_body = ChannelFiguresInput, responses((status = 201, body = ChannelIngestResult), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/channel-figures")]
async fn put_channel_figures(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<ChannelFiguresInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state
            .services
            .put_channel_figures(&ctx, *id, input.rows)
            .await?,
    ))
}

/// Import channel figures: `application/x-ndjson` (one row object per line)
/// or `text/csv` (header: `day`, `channel`, `funnel`, `spend`, optional
/// `impressions`, `clicks`, `contacts`, `leads`, `mentions`,
/// `brand_searches`; an empty count is 0). Up to 100,000 rows, idempotent
/// per day, channel and funnel type. Any invalid row → 422 listing the
/// first 100 row/field errors, and nothing is stored.
#[utoipa::path(
    tag = "channels",
    params(("id" = Uuid, Path, description = "client id")),
    request_body(content(
        (String = "application/x-ndjson"),
        (String = "text/csv")
    )),
    responses((status = 201, body = ChannelIngestResult), Errors),
    security(("bearer" = []))
)]
#[post("/clients/{id}/channel-figures/import")]
async fn import_channel_figures(
    state: State,
    req: HttpRequest,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    body: ImportBody,
) -> ApiResult<HttpResponse> {
    let format = crate::extract::import_format(&req)?;
    Ok(created(
        state
            .services
            .import_channel_figures(&ctx, *id, format, body.0)
            .await?,
    ))
}

/// The stored rows of a range (default: the last 12 weeks), by day,
/// channel and funnel type.
#[utoipa::path(tag = "channels", params(("id" = Uuid, Path, description = "client id"), ChannelReportParams), responses((status = 200, body = Vec<ChannelDayView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/channel-figures")]
async fn list_channel_figures(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    params: web::Query<ChannelReportParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_channel_figures(&ctx, *id, params.into_inner())
        .await?))
}

/// CPM, CTR, CPC, cost per contact and CPA (null for a zero denominator)
/// over `[from, to]` per channel, per funnel type and in total; the same
/// per ISO week, and the last full week's change against the mean of the 4
/// full weeks before it.
#[utoipa::path(tag = "channels", params(("id" = Uuid, Path, description = "client id"), ChannelReportParams), responses((status = 200, body = ChannelReport), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/channel-report")]
async fn channel_report(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    params: web::Query<ChannelReportParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .channel_report(&ctx, *id, params.into_inner())
        .await?))
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(put_channel_figures)
        .service(import_channel_figures)
        .service(list_channel_figures)
        .service(channel_report);
}
