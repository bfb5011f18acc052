//! The developer's sales barriers: a survey of people who looked at a flat
//! and did not buy, and a short survey of buyers asking the same barrier
//! question ("what almost stopped you"), linked to the stages of a CJM
//! cloned from the template, so `/clients/{id}/barriers` shows shares,
//! lift and the refusals each barrier explains.
use serde_json::json;
use service::responses::ImportFormat;
use service::{RequestCtx, Services};
use uuid::Uuid;

use super::{Lcg, parse};

/// Barriers with the percent of non-buyers and of buyers naming each.
const BARRIERS: [(&str, u64, u64); 5] = [
    ("price", 55, 30),
    ("unscrupulous_developer", 45, 12),
    ("far_from_metro", 25, 20),
    ("no_mortgage_approval", 15, 4),
    ("delays", 10, 9),
];

pub(super) async fn developer_barriers(
    s: &Services,
    ctx: &RequestCtx,
    client_id: Uuid,
) -> anyhow::Result<()> {
    let e = |e: service::AppError| anyhow::anyhow!("demo barriers: {}", e.public_detail());
    // Its own generator: the other demo figures do not move.
    let mut rng = Lcg(20261207);
    let lib = s
        .clone_library(
            ctx,
            service::libraries::TEMPLATE_ID,
            parse(json!({"name": "Developer CJM"}))?,
        )
        .await
        .map_err(e)?;
    let stage = |k: usize| lib.stages.get(k).map(|s| s.id);
    let options: Vec<&str> = BARRIERS.iter().map(|b| b.0).collect();
    let question = |label: &str, stage_id: Option<Uuid>| {
        json!({"key": "why_not", "label": label, "type": "multi_choice", "role": "barrier",
               "options": options, "stage_id": stage_id})
    };
    let non_buyers = s
        .create_questionnaire(
            ctx,
            client_id,
            parse(json!({"title": "Why people did not buy (calls after a viewing)", "kind": "non_buyer", "questions": [
                {"key": "buy_for", "label": "Who were you buying for?", "type": "single_choice", "options": ["self", "parents", "children", "investment"], "role": "segment_attribute"},
                question("What stopped you?", stage(1)),
                {"key": "deal_stopper", "label": "What went wrong at the deal?", "type": "single_choice", "role": "barrier",
                 "options": ["paperwork", "manager", "deposit_terms"], "stage_id": stage(2)},
                {"key": "in_words", "label": "In your own words", "type": "text", "role": "barrier", "stage_id": stage(1)}
            ]}))?,
        )
        .await
        .map_err(e)?;
    let buyers = s
        .create_questionnaire(
            ctx,
            client_id,
            parse(json!({"title": "What almost stopped our buyers", "kind": "segment_survey", "questions": [
                {"key": "buy_for", "type": "single_choice", "options": ["self", "parents", "children", "investment"], "role": "segment_attribute"},
                question("What almost stopped you?", None)
            ]}))?,
        )
        .await
        .map_err(e)?;
    let words = [
        "Too expensive",
        "too expensive!",
        "No metro nearby",
        "Not sure the house will be finished",
        "",
    ];
    let mut nb = String::from("external_id,buy_for,why_not,deal_stopper,in_words\n");
    for i in 0..300 {
        let who = ["self", "parents", "children", "investment"][rng.below(4) as usize];
        let chosen: Vec<&str> = BARRIERS
            .iter()
            .filter(|b| {
                rng.chance(
                    b.1 + if who == "parents" && b.0 == "unscrupulous_developer" {
                        25
                    } else {
                        0
                    },
                )
            })
            .map(|b| b.0)
            .collect();
        // Most got nowhere near the deal: blank.
        let stopper = [
            "paperwork",
            "manager",
            "deposit_terms",
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ][rng.below(10) as usize];
        let said = words[rng.below(words.len() as u64) as usize];
        nb.push_str(&format!(
            "nb{i},{who},{},{stopper},{said}\n",
            chosen.join(";")
        ));
    }
    s.import_responses(ctx, non_buyers.id, ImportFormat::Csv, nb.into())
        .await
        .map_err(e)?;
    let mut b = String::from("external_id,buy_for,why_not\n");
    for i in 0..200 {
        let who = ["self", "parents", "children", "investment"][rng.below(4) as usize];
        let chosen: Vec<&str> = BARRIERS
            .iter()
            .filter(|b| rng.chance(b.2))
            .map(|b| b.0)
            .collect();
        b.push_str(&format!("b{i},{who},{}\n", chosen.join(";")));
    }
    s.import_responses(ctx, buyers.id, ImportFormat::Csv, b.into())
        .await
        .map_err(e)?;
    Ok(())
}
