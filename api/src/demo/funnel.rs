//! The demo's funnel client: a stretching studio with two funnels (reach
//! ads and warming search), eight weeks of channel figures, 400 contacts of
//! which 260 have a known outcome (so the worker fits the model), point
//! rules, and a running three-step chain for its hot contacts.
use serde_json::json;
use service::responses::ImportFormat;
use service::{RequestCtx, Services};
use uuid::Uuid;

use super::{Lcg, parse};

pub(super) async fn funnel_client(
    s: &Services,
    ctx: &RequestCtx,
    rng: &mut Lcg,
    today: chrono::NaiveDate,
) -> anyhow::Result<(String, Uuid)> {
    let e = |e: service::AppError| anyhow::anyhow!("demo funnel: {}", e.public_detail());
    let c = s
        .create_client(ctx, parse(json!({"name": "Flex stretching studio (funnels)", "industry": "fitness", "timezone": "Europe/Moscow", "locale": "en"}))?)
        .await
        .map_err(e)?;
    // Eight weeks: ads reach people cheaply, search brings leads.
    let mut csv = String::from("day,channel,funnel,spend,impressions,clicks,contacts,leads\n");
    for d in 1..=56 {
        let day = today - chrono::Duration::days(d);
        csv.push_str(&format!(
            "{day},vk_ads,reach,{},{},{},{},0\n",
            1500 + rng.below(500),
            40_000 + rng.below(10_000),
            300 + rng.below(100),
            5 + rng.below(5)
        ));
        csv.push_str(&format!(
            "{day},yandex_search,warming,{},{},{},{},{}\n",
            2500 + rng.below(800),
            3_000 + rng.below(1_000),
            150 + rng.below(60),
            2 + rng.below(3),
            1 + rng.below(2)
        ));
    }
    s.import_channel_figures(ctx, c.id, ImportFormat::Csv, csv.into())
        .await
        .map_err(e)?;
    // Contacts: goal and age drive conversion; 260 outcomes known.
    let mut csv = String::from("email,name,source_channel,funnel,city,goal,age,converted\n");
    for i in 0..400 {
        let reach = i % 4 != 0;
        let goal = ["flexibility", "back_pain", "weight"][rng.below(3) as usize];
        let age = 20 + rng.below(40);
        let city = if rng.chance(70) { "msk" } else { "spb" };
        let likely =
            (goal == "back_pain") as u64 * 35 + (age > 35) as u64 * 25 + (!reach) as u64 * 20;
        let outcome = if i < 260 {
            if rng.chance(10 + likely) {
                "true"
            } else {
                "false"
            }
        } else {
            ""
        };
        csv.push_str(&format!(
            "guest{i:03}@example.com,Guest {i},{},{},{city},{goal},{age},{outcome}\n",
            if reach { "vk_ads" } else { "yandex_search" },
            if reach { "reach" } else { "warming" },
        ));
    }
    s.import_contacts(ctx, c.id, ImportFormat::Csv, csv.into())
        .await
        .map_err(e)?;
    s.put_scoring(
        ctx,
        c.id,
        parse(json!({"rules": [
            {"name": "Back pain", "points": 40, "when": {"kind": "attr_equals", "key": "goal", "value": "back_pain"}},
            {"name": "Over 35", "points": 25, "when": {"kind": "attr_within", "key": "age", "min": 36}},
            {"name": "Clicked lately", "points": 20, "when": {"kind": "event", "event": "clicked", "within_days": 14}}
        ]}))?,
    )
    .await
    .map_err(e)?;
    let hot = s
        .create_segment(
            ctx,
            c.id,
            parse(json!({"name": "Hot leads", "filter": {"conditions": [{"question": "tier", "values": ["hot"]}]}}))?,
        )
        .await
        .map_err(e)?;
    let step = |subject: &str, delay: i64, condition: Option<&str>, body: &str| {
        json!({"subject": subject, "delay_minutes": delay, "condition": condition,
               "html": format!("<p>Hello {{{{ contact.name }}}}!</p><p>{body}</p><p><a href=\"https://flex.example.com/trial\">Book a free trial</a></p>"),
               "text": format!("Hello {{{{ contact.name }}}}!\n\n{body}\n\nBook a free trial: https://flex.example.com/trial")})
    };
    s.create_chain(
        ctx,
        c.id,
        parse(json!({"name": "Hot leads warm-up", "kind": "segment", "segment_id": hot.id, "steps": [
            step("Welcome to Flex", 60, None, "Here is how a first class goes."),
            step("How Anna got rid of back pain", 2 * 1440, Some("opened"), "A story from one of our guests."),
            step("Your trial is waiting", 3 * 1440, None, "Your free trial class is still yours this week.")
        ]}))?,
    )
    .await
    .map_err(e)?;
    Ok((c.name, c.id))
}
