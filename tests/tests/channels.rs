//! Channel figures over REST and GraphQL (analytics.md §7): a month of two
//! channels computed by hand comes back through the API, with nulls for zero
//! denominators; a CSV re-import changes nothing; bad rows are a 422 naming
//! row and field with nothing stored; read keys read, ingest keys write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TestApp, both_modes, spawn_app};

fn close(actual: &Value, expected: f64) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{actual} is not a number"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{a} != {expected}"
    );
}

/// Five full weeks from Monday 2 March 2026 and a Monday after them.
/// rtb/reach: spend 100 a week, impressions 50,000, clicks 250, contacts 20;
/// the fifth week spend 200 and 40 contacts. search/warming: one day, spend
/// 300, clicks 60, 6 leads, no impressions. bloggers/reach on 6 April:
/// spend 500, 4 mentions, 900 brand searches, nothing else.
fn csv() -> String {
    let mut s = String::from(
        "day,channel,funnel,spend,impressions,clicks,contacts,leads,mentions,brand_searches\n",
    );
    for w in 0..5 {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
            + chrono::Duration::days(7 * w + 1);
        let (spend, contacts) = if w == 4 { (200, 40) } else { (100, 20) };
        s.push_str(&format!(
            "{day},rtb,reach,{spend},50000,250,{contacts},,,\n"
        ));
    }
    s.push_str("2026-03-04,search,warming,300,0,60,0,6,0,0\n");
    s.push_str("2026-04-06,bloggers,reach,500,,,,,4,900\n");
    s
}

async fn import(app: &TestApp, token: &str, client: &str, ct: &str, body: String) -> tests::Resp {
    app.raw(
        Method::POST,
        &format!("/api/v1/clients/{client}/channel-figures/import"),
        Some(token),
        ct,
        body,
    )
    .await
}

async fn report(app: &TestApp, token: &str, client: &str, range: &str) -> Value {
    let r = app
        .get(
            &format!("/api/v1/clients/{client}/channel-report?{range}"),
            token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn a_month_of_channels_computed_by_hand_comes_back_through_the_api(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let r = import(&app, &t.token, &c, "text/csv", csv()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (r.body["received"].as_u64(), r.body["stored"].as_u64()),
        (Some(7), Some(7))
    );

    // 2 March (Monday) to 5 April (Sunday): five full weeks.
    let range = "from=2026-03-02&to=2026-04-05";
    let rep = report(&app, &t.token, &c, range).await;
    let total = &rep["total"];
    // spend 600 + 300 = 900; impressions 250,000; clicks 1,250 + 60;
    // contacts 120; leads 6.
    close(&total["spend"], 900.0);
    assert_eq!(total["impressions"], 250_000);
    assert_eq!(total["clicks"], 1_310);
    close(&total["cpm"], 900.0 / 250_000.0 * 1000.0);
    close(&total["ctr"], 1_310.0 / 250_000.0);
    close(&total["cpc"], 900.0 / 1_310.0);
    close(&total["cost_per_contact"], 900.0 / 120.0);
    close(&total["cpa"], 150.0);
    let by = |name: &str| {
        rep["by_channel"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["channel"] == name)
            .unwrap()["figures"]
            .clone()
    };
    let rtb = by("rtb");
    close(&rtb["cpm"], 600.0 / 250_000.0 * 1000.0); // 2.4
    close(&rtb["ctr"], 0.005);
    close(&rtb["cpc"], 600.0 / 1_250.0);
    close(&rtb["cost_per_contact"], 5.0);
    assert_eq!(rtb["cpa"], Value::Null, "no leads: CPA is null");
    let search = by("search");
    assert_eq!(search["cpm"], Value::Null);
    assert_eq!(search["ctr"], Value::Null);
    close(&search["cpc"], 5.0);
    assert_eq!(search["cost_per_contact"], Value::Null);
    close(&search["cpa"], 50.0);
    assert!(
        rep["by_channel"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["channel"] != "bloggers"),
        "6 April is outside"
    );
    let funnels: Vec<&str> = rep["by_funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["funnel"].as_str().unwrap())
        .collect();
    assert_eq!(funnels, ["reach", "warming"]);
    // Weeks: the last full one (30 March) against the mean of the 4 before:
    // spend 200 vs (400 + 300) / 4 = 175; cost per contact 5 vs 175 / 20.
    assert_eq!(rep["weeks"].as_array().unwrap().len(), 5);
    assert_eq!(rep["trend"]["week_start"], "2026-03-30");
    close(&rep["trend"]["baseline"]["spend"], 175.0);
    close(&rep["trend"]["change"]["spend"], 200.0 / 175.0 - 1.0);
    close(&rep["trend"]["change"]["contacts"], 40.0 / 20.0 - 1.0);
    close(
        &rep["trend"]["change"]["cost_per_contact"],
        5.0 / (175.0 / 20.0) - 1.0,
    );
    assert_eq!(
        rep["trend"]["change"]["cpa"],
        Value::Null,
        "no leads in the last week"
    );

    // A range of only the bloggers' day: mentions and searches, null ratios.
    let one = report(&app, &t.token, &c, "from=2026-04-06&to=2026-04-06").await;
    assert_eq!(
        (
            one["total"]["mentions"].as_u64(),
            one["total"]["brand_searches"].as_u64()
        ),
        (Some(4), Some(900))
    );
    for f in ["cpm", "ctr", "cpc", "cost_per_contact", "cpa"] {
        assert_eq!(one["total"][f], Value::Null, "{f}");
    }

    // GraphQL gives the same figures.
    let q = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { channelReport(clientId: $id, from: \"2026-03-02\", to: \"2026-04-05\") { total { spend cpa cpm } byChannel { channel figures { cpa } } trend { weekStart } } }",
            json!({"id": c}),
        )
        .await;
    let g = &q.body["data"]["channelReport"];
    close(&g["total"]["spend"], 900.0);
    close(&g["total"]["cpa"], 150.0);
    assert_eq!(g["trend"]["weekStart"], "2026-03-30");
    assert_eq!(g["byChannel"][0]["channel"], "rtb");
    assert_eq!(g["byChannel"][0]["figures"]["cpa"], Value::Null);

    // Re-importing the same CSV changes nothing; NDJSON of a changed day
    // replaces that day only.
    let all = "from=2026-03-01&to=2026-04-30";
    let listed = app
        .get(
            &format!("/api/v1/clients/{c}/channel-figures?{all}"),
            &t.token,
        )
        .await
        .body;
    let before = report(&app, &t.token, &c, all).await;
    let r = import(&app, &t.token, &c, "text/csv", csv()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(report(&app, &t.token, &c, all).await, before);
    assert_eq!(
        app.get(
            &format!("/api/v1/clients/{c}/channel-figures?{all}"),
            &t.token
        )
        .await
        .body,
        listed
    );
    let r = import(
        &app,
        &t.token,
        &c,
        "application/x-ndjson",
        "{\"day\":\"2026-03-04\",\"channel\":\"search\",\"funnel\":\"warming\",\"spend\":360,\"clicks\":60,\"leads\":6}\n".into(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let after = report(&app, &t.token, &c, range).await;
    close(&after["total"]["spend"], 960.0);
    close(&after["total"]["cpa"], 960.0 / 6.0);
    assert_eq!(
        app.get(
            &format!("/api/v1/clients/{c}/channel-figures?{all}"),
            &t.token
        )
        .await
        .body
        .as_array()
        .unwrap()
        .len(),
        7
    );
}

async fn bad_rows_are_refused_naming_row_and_field_and_nothing_is_stored(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let path = format!("/api/v1/clients/{c}/channel-figures");
    let good = json!({"day": "2026-03-02", "channel": "rtb", "funnel": "reach", "spend": 1});
    let cases = [
        (
            json!({"rows": [good, {"day": "2026-03-02", "channel": "", "funnel": "reach", "spend": -1, "clicks": -2}]}),
            vec!["rows[1].channel", "rows[1].spend", "rows[1].clicks"],
        ),
        (
            json!({"rows": [{"day": "2026-03-02", "channel": "rtb", "funnel": "cold", "spend": 1}]}),
            vec!["rows[0].funnel"],
        ),
        (
            json!({"rows": [{"day": "2026-03-02", "channel": "rtb", "funnel": "reach", "spend": 1, "cpm": 5}]}),
            vec!["rows[0].cpm"],
        ),
        (
            json!({"rows": [{"day": "1999-12-31", "channel": "rtb", "funnel": "reach", "spend": 1}]}),
            vec!["rows[0].day"],
        ),
        (json!({"rows": []}), vec!["rows"]),
        (
            json!({"rows": [{"day": "2026-03-02", "channel": "r\u{0}", "funnel": "reach", "spend": 1}]}),
            vec!["rows[0].channel"],
        ),
    ];
    for (body, fields) in cases {
        let r = app.post(&path, &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), fields, "{body}");
    }
    let r = import(
        &app,
        &t.token,
        &c,
        "text/csv",
        "day,channel,funnel,spend\n2026-03-02,rtb,reach,1\n2026-03-03,rtb,reach,x\n".into(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["spend"]);
    assert_eq!(r.body["errors"][0]["row"], 2, "{}", r.text);
    let r = import(&app, &t.token, &c, "text/csv", "day,channel,spend\n".into()).await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["funnel".to_owned()])
    );
    for range in [
        "from=2026-13-01",
        "from=2026-03-05&to=2026-03-01",
        "from=2020-01-01&to=2026-01-01",
        "since=2026-01-01",
    ] {
        let r = app
            .get(
                &format!("/api/v1/clients/{c}/channel-report?{range}"),
                &t.token,
            )
            .await;
        assert!(
            r.status.is_client_error() && r.status != StatusCode::NOT_FOUND,
            "{range}: {}",
            r.text
        );
    }
    let listed = app
        .get(&format!("{path}?from=2026-01-01&to=2026-12-31"), &t.token)
        .await;
    assert_eq!(listed.body, json!([]), "nothing stored");
    // GraphQL: the same check, the field named.
    let q = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { putChannelFigures(clientId: $id, rows: [{day: \"2026-03-02\", channel: \"rtb\", funnel: REACH, spend: -1}]) { stored } }",
            json!({"id": c}),
        )
        .await;
    assert!(q.text.contains("rows[0].spend"), "{}", q.text);
}

async fn read_keys_read_ingest_keys_write(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let read = app.api_key(&t.token, &["read"]).await;
    let ingest = app.api_key(&t.token, &["ingest"]).await;
    let path = format!("/api/v1/clients/{c}/channel-figures");
    let body =
        json!({"rows": [{"day": "2026-03-02", "channel": "rtb", "funnel": "reach", "spend": 1}]});
    assert_eq!(
        app.post(&path, &read, body.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&path, &ingest, body).await.status,
        StatusCode::CREATED
    );
    let r = app
        .get(&format!("{path}?from=2026-03-01&to=2026-03-31"), &read)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
}

both_modes!(
    a_month_of_channels_computed_by_hand_comes_back_through_the_api,
    bad_rows_are_refused_naming_row_and_field_and_nothing_is_stored,
    read_keys_read_ingest_keys_write,
);
