//! GraphQL of customer tracks, beside `rest/research/tracks.rs`: the same
//! service calls; inputs are the REST bodies (JSON, read strictly).
use async_graphql::{Context, ID, Json, Object, Result};

use service::tracks::parts::{TrackComparison, TrackDetail};
use service::tracks::{TrackNoteView, TrackView};

use crate::graphql::{OrGql, TrackPage, caller, page, parse_id, parse_input, services};

#[derive(Default)]
pub struct TracksQuery;

#[Object]
impl TracksQuery {
    async fn tracks(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<TrackPage> {
        services(ctx)
            .list_tracks(
                caller(ctx)?,
                parse_id(&client_id, "clientId")?,
                page(first, after),
            )
            .await
            .map(Into::into)
            .gql()
    }

    /// A track with its notes and computed parts.
    async fn track(&self, ctx: &Context<'_>, id: ID) -> Result<TrackDetail> {
        services(ctx)
            .track_detail(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
    }

    async fn compare_tracks(&self, ctx: &Context<'_>, a: ID, b: ID) -> Result<TrackComparison> {
        services(ctx)
            .compare_tracks(caller(ctx)?, parse_id(&a, "a")?, parse_id(&b, "b")?)
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct TracksMutation;

#[Object]
impl TracksMutation {
    /// `input` as in REST `POST /clients/{id}/tracks`.
    async fn create_track(
        &self,
        ctx: &Context<'_>,
        client_id: ID,
        input: Json<serde_json::Value>,
    ) -> Result<TrackView> {
        let input = parse_input(input.0)?;
        services(ctx)
            .create_track(caller(ctx)?, parse_id(&client_id, "clientId")?, input)
            .await
            .gql()
    }

    /// `input` as in REST `PATCH /tracks/{id}`.
    async fn update_track(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: Json<serde_json::Value>,
    ) -> Result<TrackView> {
        let input = parse_input(input.0)?;
        services(ctx)
            .update_track(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    /// `input` as in REST `PUT /tracks/{id}/steps`: `{"steps": [...]}`.
    async fn put_track_steps(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: Json<serde_json::Value>,
    ) -> Result<TrackView> {
        let input = parse_input(input.0)?;
        services(ctx)
            .put_track_steps(caller(ctx)?, parse_id(&id, "id")?, input)
            .await
            .gql()
    }

    async fn delete_track(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        services(ctx)
            .delete_track(caller(ctx)?, parse_id(&id, "id")?)
            .await
            .gql()
            .map(|_| true)
    }

    /// `input` as in REST `POST /tracks/{id}/notes`.
    async fn add_track_note(
        &self,
        ctx: &Context<'_>,
        track_id: ID,
        input: Json<serde_json::Value>,
    ) -> Result<TrackNoteView> {
        let input = parse_input(input.0)?;
        services(ctx)
            .add_track_note(caller(ctx)?, parse_id(&track_id, "trackId")?, input)
            .await
            .gql()
    }

    async fn delete_track_note(
        &self,
        ctx: &Context<'_>,
        track_id: ID,
        note_id: ID,
    ) -> Result<bool> {
        services(ctx)
            .delete_track_note(
                caller(ctx)?,
                parse_id(&track_id, "trackId")?,
                parse_id(&note_id, "noteId")?,
            )
            .await
            .gql()
            .map(|_| true)
    }
}
