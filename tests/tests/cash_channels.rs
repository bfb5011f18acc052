//! A Cash Journey model takes a period's actuals from the client's channel
//! figures (issue 12, analytics.md §5 and §7): reach = impressions, ctr =
//! clicks / impressions, marketing cost = spend, summed over the month's
//! days; typed figures stay; plan vs fact shows them; a second run changes
//! nothing; channel and funnel filters narrow the sums; bad bodies and empty
//! months are a 422 naming the field; readers cannot, ingest keys can.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

fn close(actual: &Value, expected: f64) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{actual} is not a number"));
    assert!(
        (a - expected).abs() <= 1e-12 * expected.abs().max(1.0),
        "{a} != {expected}"
    );
}

/// November 2026 of three channels, and a day either side of it that must
/// never be summed.
/// - rtb/reach: 1, 15, 30 Nov: spend 100 + 150.5 + 49.5 = 300, impressions
///   40,000 + 60,000 + 20,000 = 120,000, clicks 200 + 240 + 60 = 500;
/// - search/warming, 10 Nov: spend 300, clicks 60, no impressions;
/// - bloggers/reach, 20 Nov: spend 500, impressions 30,000, clicks 90.
///
/// All of November: 5 channel days, spend 1,100, impressions 150,000,
/// clicks 650.
fn csv() -> String {
    "day,channel,funnel,spend,impressions,clicks,contacts,leads,mentions,brand_searches\n\
     2026-10-31,rtb,reach,999,99999,999,,,,\n\
     2026-11-01,rtb,reach,100,40000,200,10,,,\n\
     2026-11-15,rtb,reach,150.5,60000,240,12,,,\n\
     2026-11-30,rtb,reach,49.5,20000,60,3,,,\n\
     2026-11-10,search,warming,300,0,60,0,6,0,0\n\
     2026-11-20,bloggers,reach,500,30000,90,,,4,900\n\
     2026-12-01,rtb,reach,888,88888,888,,,,\n"
        .to_owned()
}

/// Base scenario: R = 1000, ctr = 0.1, C = 1000 (§5's example, l = 0.2,
/// m = 0.5).
fn params() -> Value {
    json!({
        "reach": 1000.0, "ctr": 0.1, "lead_rate": 0.2, "conversion": 0.5,
        "items_per_order": 1.0, "item_price": 100.0, "refusal_rate": 0.0,
        "repeat_purchases": 1.0, "repeat_uplift": 0.1, "gross_margin": 0.5,
        "marketing_cost": 1000.0
    })
}

struct World {
    client: String,
    model: String,
}

async fn world(app: &TestApp, t: &Tenant) -> World {
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{client}/channel-figures/import"),
            Some(&t.token),
            "text/csv",
            csv(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let model = app
        .create(
            &format!("/api/v1/clients/{client}/cash-models"),
            &t.token,
            json!({"name": "Plan", "scenarios": {"min": params(), "base": params(), "max": params()}}),
        )
        .await;
    World { client, model }
}

async fn take(app: &TestApp, token: &str, model: &str, body: Value) -> tests::Resp {
    app.post(
        &format!("/api/v1/cash-models/{model}/actuals/from-channels"),
        token,
        body,
    )
    .await
}

async fn results(app: &TestApp, token: &str, model: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/cash-models/{model}/results"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn actuals(app: &TestApp, token: &str, model: &str) -> Value {
    let r = app
        .get(&format!("/api/v1/cash-models/{model}/actuals"), token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

fn variance<'a>(period: &'a Value, figure: &str) -> &'a Value {
    period["against"]["base"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["figure"] == figure)
        .unwrap_or_else(|| panic!("no {figure} variance in {period}"))
}

async fn a_month_of_channel_figures_becomes_the_periods_reach_ctr_and_cost(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let w = world(&app, &t).await;
    // Typed figures the channels cannot give.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/cash-models/{}/actuals/2026-11", w.model),
            Some(&t.token),
            Some(json!({"traffic": 500, "revenue": 9000})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = take(&app, &t.token, &w.model, json!({"period": "2026-11"})).await;

    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let b = &r.body;
    assert_eq!(
        (b["from"].as_str(), b["to"].as_str()),
        (Some("2026-11-01"), Some("2026-11-30"))
    );
    assert_eq!(b["channel_days"], 5);
    assert_eq!(b["channels"], json!(["bloggers", "rtb", "search"]));
    close(&b["spend"], 1100.0);
    assert_eq!(
        (b["impressions"].as_i64(), b["clicks"].as_i64()),
        (Some(150_000), Some(650))
    );
    assert_eq!(b["taken"], json!(["reach", "ctr", "marketing_cost"]));
    assert_eq!(b["not_taken"], json!([]));
    assert_eq!(b["changed"], true);
    let f = &b["actuals"]["figures"];
    close(&f["reach"], 150_000.0);
    close(&f["ctr"], 650.0 / 150_000.0);
    close(&f["marketing_cost"], 1100.0);
    close(&f["traffic"], 500.0);
    close(&f["revenue"], 9000.0);

    // Stored, and plan vs fact shows them against R, ctr and C.
    let stored = actuals(&app, &t.token, &w.model).await;
    assert_eq!(stored.as_array().unwrap().len(), 1);
    assert_eq!(stored[0]["figures"], *f);
    let res = results(&app, &t.token, &w.model).await;
    let p = &res["plan_vs_fact"][0];
    assert_eq!(p["period"], "2026-11");
    let reach = variance(p, "reach");
    close(&reach["plan"], 1000.0);
    close(&reach["actual"], 150_000.0);
    close(&reach["absolute"], 149_000.0);
    close(&reach["relative"], 149.0);
    let ctr = variance(p, "ctr");
    close(&ctr["plan"], 0.1);
    close(&ctr["absolute"], 650.0 / 150_000.0 - 0.1);
    let cost = variance(p, "marketing_cost");
    close(&cost["plan"], 1000.0);
    close(&cost["actual"], 1100.0);
    close(&cost["absolute"], 100.0);
    close(&cost["relative"], 0.1);
    close(&variance(p, "revenue")["actual"], 9000.0);

    // A second run changes nothing, not even the data version.
    let again = take(&app, &t.token, &w.model, json!({"period": "2026-11"})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.body["changed"], false);
    assert_eq!(again.body["actuals"], b["actuals"]);
    assert_eq!(actuals(&app, &t.token, &w.model).await, stored);
    assert_eq!(
        results(&app, &t.token, &w.model).await["data_version"],
        res["data_version"]
    );
}

async fn channel_and_funnel_filters_narrow_the_sums(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let w = world(&app, &t).await;

    // rtb only: 3 days, spend 300, impressions 120,000, clicks 500.
    let r = take(
        &app,
        &t.token,
        &w.model,
        json!({"period": "2026-11", "channels": ["rtb"]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["channel_days"], 3);
    assert_eq!(r.body["channels"], json!(["rtb"]));
    let f = &r.body["actuals"]["figures"];
    close(&f["reach"], 120_000.0);
    close(&f["ctr"], 500.0 / 120_000.0);
    close(&f["marketing_cost"], 300.0);

    // The reach funnel: rtb and bloggers, 4 days, spend 800, impressions
    // 150,000, clicks 590.
    let r = take(
        &app,
        &t.token,
        &w.model,
        json!({"period": "2026-11", "funnel": "reach"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["channel_days"], 4);
    assert_eq!(r.body["channels"], json!(["bloggers", "rtb"]));
    let f = &r.body["actuals"]["figures"];
    close(&f["reach"], 150_000.0);
    close(&f["ctr"], 590.0 / 150_000.0);
    close(&f["marketing_cost"], 800.0);

    // The warming funnel has clicks but no impressions: reach 0 and cost
    // 300 are taken, ctr is not and keeps the stored 590 / 150,000.
    let r = take(
        &app,
        &t.token,
        &w.model,
        json!({"period": "2026-11", "funnel": "warming"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["taken"], json!(["reach", "marketing_cost"]));
    assert_eq!(r.body["not_taken"][0]["figure"], "ctr");
    let f = &r.body["actuals"]["figures"];
    close(&f["reach"], 0.0);
    close(&f["ctr"], 590.0 / 150_000.0);
    close(&f["marketing_cost"], 300.0);

    // GraphQL gives the same sums: bloggers in the reach funnel.
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { takeCashActualsFromChannels(modelId: $id, input: {period: \"2026-11\", channels: [\"bloggers\"], funnel: REACH}) { channelDays taken changed actuals { figures { reach ctr marketingCost } } } }",
            json!({"id": w.model}),
        )
        .await;
    let g = &r.body["data"]["takeCashActualsFromChannels"];
    assert_eq!(g["channelDays"], 1, "{}", r.text);
    assert_eq!(g["taken"], json!(["REACH", "CTR", "MARKETING_COST"]));
    close(&g["actuals"]["figures"]["reach"], 30_000.0);
    close(&g["actuals"]["figures"]["ctr"], 90.0 / 30_000.0);
    close(&g["actuals"]["figures"]["marketingCost"], 500.0);
    assert_eq!(
        actuals(&app, &t.token, &w.model)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn bad_bodies_and_months_without_figures_are_a_422_naming_the_field(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let w = world(&app, &t).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"period": "2026-09"}), "period"),
        (
            json!({"period": "2026-11", "channels": ["rtb"], "funnel": "warming"}),
            "period",
        ),
        (json!({"period": "2026-11", "channels": ["tv"]}), "period"),
        (json!({"period": "2026-13"}), "period"),
        (json!({"period": "2026-11", "channels": []}), "channels"),
        (
            json!({"period": "2026-11", "channels": ["rtb", ""]}),
            "channels[1]",
        ),
        (json!({"period": "2026-11", "funnel": "cold"}), "funnel"),
        (json!({"period": "2026-11", "reach": 5}), "reach"),
    ];
    for (body, field) in cases {
        let r = take(&app, &t.token, &w.model, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.text);
    }
    // A missing period is named in the message, as every JSON body's
    // missing field is (the field is the body's).
    let r = take(&app, &t.token, &w.model, json!({})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("period")),
        "{}",
        r.text
    );
    // Nothing was stored.
    assert_eq!(actuals(&app, &t.token, &w.model).await, json!([]));
    assert_eq!(results(&app, &t.token, &w.model).await["data_version"], 0);
    // Typed ctr is a rate.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/cash-models/{}/actuals/2026-11", w.model),
            Some(&t.token),
            Some(json!({"ctr": 1.5})),
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["ctr".to_owned()])
    );
}

async fn readers_cannot_take_ingest_keys_can_and_other_agencies_see_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let w = world(&app, &t).await;
    let read_key = app.api_key(&t.token, &["read"]).await;
    let ingest_key = app.api_key(&t.token, &["ingest"]).await;
    let body = json!({"period": "2026-11"});

    let r = take(&app, &read_key, &w.model, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(actuals(&app, &t.token, &w.model).await, json!([]));

    // Another agency's model is not found, and its own model of a client
    // without figures does not see this client's figures.
    let other = app.signup("Other").await;
    let r = take(&app, &other.token, &w.model, body.clone()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let o = app
        .create(
            "/api/v1/clients",
            &other.token,
            json!({"name": "Other shop"}),
        )
        .await;
    let o_model = app
        .create(
            &format!("/api/v1/clients/{o}/cash-models"),
            &other.token,
            json!({"name": "Plan", "scenarios": {"min": params(), "base": params(), "max": params()}}),
        )
        .await;
    let r = take(&app, &other.token, &o_model, body.clone()).await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["period".to_owned()])
    );
    // Nor does another model of the same agency for another client.
    let c2 = app
        .create("/api/v1/clients", &t.token, json!({"name": "Second shop"}))
        .await;
    assert_ne!(c2, w.client);
    let m2 = app
        .create(
            &format!("/api/v1/clients/{c2}/cash-models"),
            &t.token,
            json!({"name": "Plan", "scenarios": {"min": params(), "base": params(), "max": params()}}),
        )
        .await;
    let r = take(&app, &t.token, &m2, body.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    let r = take(&app, &ingest_key, &w.model, body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    close(&r.body["actuals"]["figures"]["marketing_cost"], 1100.0);
}

both_modes!(
    a_month_of_channel_figures_becomes_the_periods_reach_ctr_and_cost,
    channel_and_funnel_filters_narrow_the_sums,
    bad_bodies_and_months_without_figures_are_a_422_naming_the_field,
    readers_cannot_take_ingest_keys_can_and_other_agencies_see_nothing,
);
