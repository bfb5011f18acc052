//! The demo developer's two customer tracks, one per saved segment: the
//! client gets a copy of the template touchpoint library, and each track
//! walks its first three stages with the agents, barriers and notes an
//! agency would gather in depth interviews and sales calls.
use serde_json::json;
use service::{RequestCtx, Services};
use uuid::Uuid;

use super::parse;

pub(super) async fn developer_tracks(
    s: &Services,
    ctx: &RequestCtx,
    client: Uuid,
    segments: &[Uuid],
) -> anyhow::Result<()> {
    let e = |e: service::AppError| anyhow::anyhow!("demo tracks: {}", e.public_detail());
    let lib = s
        .clone_library(
            ctx,
            service::libraries::TEMPLATE_ID,
            parse(json!({"name": "Developer CJM"}))?,
        )
        .await
        .map_err(e)?;
    s.update_client(
        ctx,
        client,
        parse(json!({"touchpoint_library_id": lib.id}))?,
    )
    .await
    .map_err(e)?;
    let stage = |i: usize| lib.stages.get(i).map(|st| st.id);
    let tp = |i: usize| {
        lib.stages
            .get(i)
            .and_then(|st| st.touchpoints.first())
            .map(|t| t.id)
    };
    let tracks = [
        (
            "Parents' flat: buying for parents, from social networks",
            json!([
                {"stage_id": stage(0), "touchpoint_id": tp(0),
                 "task": "Find a safe flat near us for my parents",
                 "agents": [{"kind": "family", "label": "the parents", "strength": 5},
                            {"kind": "bloggers", "label": "a local parenting blogger", "strength": 3}],
                 "barriers": [{"label": "Fear of an unscrupulous developer",
                               "barrier_ref": {"question_key": "fear", "value": "unscrupulous_developer"}}]},
                {"stage_id": stage(1), "touchpoint_id": tp(1),
                 "task": "Check that the developer finishes on time",
                 "agents": [{"kind": "reviews", "strength": 4}, {"kind": "friends", "strength": 3}],
                 "barriers": [{"label": "Delays at the previous project",
                               "barrier_ref": {"question_key": "fear", "value": "delays"}}]},
                {"stage_id": stage(2), "touchpoint_id": tp(2),
                 "task": "Get the mortgage without travelling twice",
                 "agents": [{"kind": "sales_manager", "strength": 4}],
                 "barriers": [{"label": "Hidden costs"}]}
            ]),
            [
                (
                    "Parents want a park within a walk; asked about the clinic twice.",
                    "interview",
                ),
                (
                    "Called back only after the construction webcam link was sent.",
                    "sales_call",
                ),
            ],
        ),
        (
            "Wary buyers: afraid of unscrupulous developers",
            json!([
                {"stage_id": stage(0), "task": "Find out which developers can be trusted",
                 "agents": [{"kind": "experts", "label": "a lawyer friend", "strength": 5},
                            {"kind": "colleagues", "strength": 2}],
                 "barriers": [{"label": "Fear of an unscrupulous developer",
                               "barrier_ref": {"question_key": "fear", "value": "unscrupulous_developer"}}]},
                {"stage_id": stage(1), "touchpoint_id": tp(1),
                 "task": "See the permits and the escrow account",
                 "agents": [{"kind": "sales_manager", "strength": 3}],
                 "barriers": [{"label": "No documents on the website"}]}
            ]),
            [
                (
                    "Wanted the escrow bank named before the first meeting.",
                    "sales_call",
                ),
                ("Reads reviews on three sites before calling.", "interview"),
            ],
        ),
    ];
    let today = chrono::Utc::now().date_naive();
    for ((name, steps, notes), segment) in tracks.into_iter().zip(segments) {
        let t = s
            .create_track(
                ctx,
                client,
                parse(json!({"name": name, "segment_id": segment, "steps": steps}))?,
            )
            .await
            .map_err(e)?;
        for (i, (text, source)) in notes.into_iter().enumerate() {
            let date = today - chrono::Duration::days(7 * (i as i64 + 1));
            s.add_track_note(
                ctx,
                t.id,
                parse(json!({"text": text, "source": source, "date": date}))?,
            )
            .await
            .map_err(e)?;
        }
    }
    Ok(())
}
