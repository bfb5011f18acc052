//! Customer tracks: one segment's journey, its notes, its computed parts,
//! and two tracks side by side.
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use service::page::{Page, PageParams};
use service::tracks::parts::{TrackComparison, TrackDetail};
use service::tracks::{
    TrackInput, TrackNoteInput, TrackNoteView, TrackPatch, TrackStepsInput, TrackView,
};
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{Auth, JsonBody, State};
use crate::rest::{Errors, created, no_content, ok};

/// A track of a saved segment of the client; steps name stages and
/// touchpoints of the client's touchpoint library.
#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path, description = "client id")), request_body = TrackInput, responses((status = 201, body = TrackView), Errors), security(("bearer" = [])))]
#[post("/clients/{id}/tracks")]
async fn create_track(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<TrackInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.create_track(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path, description = "client id"), PageParams), responses((status = 200, body = Page<TrackView>), Errors), security(("bearer" = [])))]
#[get("/clients/{id}/tracks")]
async fn list_tracks(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    page: web::Query<PageParams>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state
        .services
        .list_tracks(&ctx, *id, page.into_inner())
        .await?))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    /// A track of the caller's agency.
    a: Uuid,
    /// Another one.
    b: Uuid,
}

/// Two tracks side by side: segment shares, choice-factor ranks and
/// barriers.
#[utoipa::path(tag = "tracks", params(CompareQuery), responses((status = 200, body = TrackComparison), Errors), security(("bearer" = [])))]
#[get("/tracks/compare")]
async fn compare_tracks(
    state: State,
    Auth(ctx): Auth,
    q: web::Query<CompareQuery>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.compare_tracks(&ctx, q.a, q.b).await?))
}

/// The track, its notes and its computed parts (with the data version they
/// reflect and whether that is the latest).
#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path)), responses((status = 200, body = TrackDetail), Errors), security(("bearer" = [])))]
#[get("/tracks/{id}")]
async fn get_track(state: State, Auth(ctx): Auth, id: web::Path<Uuid>) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.track_detail(&ctx, *id).await?))
}

#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path)), request_body = TrackPatch, responses((status = 200, body = TrackView), Errors), security(("bearer" = [])))]
#[patch("/tracks/{id}")]
async fn update_track(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<TrackPatch>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.update_track(&ctx, *id, input).await?))
}

#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/tracks/{id}")]
async fn delete_track(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
) -> ApiResult<HttpResponse> {
    state.services.delete_track(&ctx, *id).await?;
    Ok(no_content())
}

/// Replaces the whole ordered list of steps.
#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path)), request_body = TrackStepsInput, responses((status = 200, body = TrackView), Errors), security(("bearer" = [])))]
#[put("/tracks/{id}/steps")]
async fn put_steps(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<TrackStepsInput>,
) -> ApiResult<HttpResponse> {
    Ok(ok(state.services.put_track_steps(&ctx, *id, input).await?))
}

/// A note from an interview or a sales call (at most 500 per track).
#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path)), request_body = TrackNoteInput, responses((status = 201, body = TrackNoteView), Errors), security(("bearer" = [])))]
#[post("/tracks/{id}/notes")]
async fn add_note(
    state: State,
    Auth(ctx): Auth,
    id: web::Path<Uuid>,
    JsonBody(input): JsonBody<TrackNoteInput>,
) -> ApiResult<HttpResponse> {
    Ok(created(
        state.services.add_track_note(&ctx, *id, input).await?,
    ))
}

#[utoipa::path(tag = "tracks", params(("id" = Uuid, Path), ("note_id" = Uuid, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
#[delete("/tracks/{id}/notes/{note_id}")]
async fn delete_note(
    state: State,
    Auth(ctx): Auth,
    path: web::Path<(Uuid, Uuid)>,
) -> ApiResult<HttpResponse> {
    let (id, note) = path.into_inner();
    state.services.delete_track_note(&ctx, id, note).await?;
    Ok(no_content())
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // The literal path before the template beside it.
    cfg.service(create_track)
        .service(list_tracks)
        .service(compare_tracks)
        .service(get_track)
        .service(update_track)
        .service(delete_track)
        .service(put_steps)
        .service(add_note)
        .service(delete_note);
}
