//! Customer panels over REST and GraphQL, whole and by segment (product flow 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

/// A real-estate developer's panel: who buys for whom, budget, channel, fears.
async fn developer_panel(app: &TestApp, t: &Tenant) -> (String, String) {
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Developer"}))
        .await;
    let trust = app
        .create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Developer's reliability"}),
        )
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Buyers", "kind": "customer_panel", "questions": [
                {"key": "buy_for", "type": "single_choice", "options": ["self", "parents", "children"], "role": "segment_attribute"},
                {"key": "budget", "type": "number", "role": "spend", "min": 0},
                {"key": "source", "type": "multi_choice", "options": ["social", "search", "friends"], "role": "source_channel"},
                {"key": "trust", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": trust},
                {"key": "nps", "type": "nps_0_10", "role": "nps"},
                {"key": "fear", "type": "text", "role": "problem"}
            ]}),
        )
        .await;
    let rows = [
        (
            "parents",
            4_000_000,
            "social",
            5,
            9,
            "Unscrupulous developer",
        ),
        (
            "parents",
            3_500_000,
            "social;friends",
            5,
            10,
            "unscrupulous developer!",
        ),
        ("parents", 6_000_000, "social", 4, 7, ""),
        ("parents", 4_500_000, "search", 3, 6, "Delays"),
        ("self", 4_000_000, "social", 2, 3, "Delays"),
        ("children", 3_000_000, "friends", 4, 8, ""),
    ];
    let mut csv = String::from("buy_for,budget,source,trust,nps,fear\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.0, r.1, r.2, r.3, r.4, r.5
        ));
    }
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{q}/responses/import"),
            Some(&t.token),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    (client, q)
}

fn enc(v: &Value) -> String {
    tests::url_encode(&v.to_string())
}

async fn segment_panel_of_parents_buyers_from_social_networks(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, q) = developer_panel(&app, &t).await;
    let all = app
        .get(&format!("/api/v1/questionnaires/{q}/panel"), &t.token)
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    assert_eq!(all.body["panel"]["n"], 6);
    assert_eq!(all.body["data_version"], 1);

    let filter = json!({"conditions": [
        {"question": "buy_for", "values": ["parents"]},
        {"question": "budget", "min": 3_000_000, "max": 5_000_000},
        {"question": "source", "values": ["social"]}
    ]});
    let seg = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?filter={}", enc(&filter)),
            &t.token,
        )
        .await;
    assert_eq!(seg.status, StatusCode::OK, "{}", seg.text);
    let p = &seg.body["panel"];
    // Rows 1 and 2 only: 6M is out of budget, row 4 came from search.
    assert_eq!(p["n"], 2);
    assert_eq!(p["share"], json!(2.0 / 6.0));
    assert_eq!(p["factors"][0]["mean"], json!(5.0));
    assert_eq!(p["nps"]["nps"], json!(100.0));
    assert_eq!(
        p["open_answers"][0]["frequent"][0],
        json!({"text": "unscrupulous developer", "count": 2})
    );
    // Money per option of the segment attribute: both rows are "parents".
    assert_eq!(p["money"][0]["options"][1]["total"], json!(7_500_000.0));

    // The same through a saved segment and through GraphQL.
    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Parents, 3-5M, social", "filter": filter}),
        )
        .await;
    let saved = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?segment_id={segment}"),
            &t.token,
        )
        .await;
    assert_eq!(saved.body["panel"], seg.body["panel"]);
    let g = app
        .graphql(
            Some(&t.token),
            "query($id: ID!, $f: SegmentFilterInput) { questionnairePanel(id: $id, filter: $f) { dataVersion panel { n share nps { nps } } } }",
            json!({"id": q, "f": filter}),
        )
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
    assert_eq!(g.body["data"]["questionnairePanel"]["panel"]["n"], 2);

    // New data shows up at the next read, with its data version.
    let r = app
        .post(&format!("/api/v1/questionnaires/{q}/responses"), &t.token, json!({"answers": {"buy_for": "parents", "budget": 5_000_000, "source": ["social"], "trust": 1}}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let seg = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?filter={}", enc(&filter)),
            &t.token,
        )
        .await;
    assert_eq!(
        (
            seg.body["panel"]["n"].as_u64(),
            seg.body["data_version"].as_i64()
        ),
        (Some(3), Some(2))
    );
    // The worker materialises the unfiltered panel by folding in the new
    // row; once it has, that stored panel is what a read gets, and it equals
    // the panel computed from every row (a filter that keeps them all).
    app.wait_for_summary(&t.token, &q, 2).await;
    let stored = app
        .get(&format!("/api/v1/questionnaires/{q}/panel"), &t.token)
        .await;
    assert_eq!(stored.body["data_version"], 2);
    let everyone = json!({"conditions": [{"question": "trust", "min": 0, "max": 10}]});
    let computed = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?filter={}", enc(&everyone)),
            &t.token,
        )
        .await;
    assert_eq!(computed.body["panel"]["n"], 7, "{}", computed.text);
    assert_eq!(stored.body["panel"], computed.body["panel"]);
}

async fn bad_panel_filters_get_422(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (_, q) = developer_panel(&app, &t).await;
    let cases = [
        (
            json!({"conditions": [{"question": "buy_for", "values": ["aliens"]}]}),
            "filter.conditions[0].values",
        ),
        (
            json!({"conditions": [{"question": "nope", "values": ["x"]}]}),
            "filter.conditions[0].question",
        ),
        (
            json!({"conditions": [{"question": "budget", "values": ["x"]}]}),
            "filter.conditions[0].min",
        ),
        (
            json!({"conditions": [{"question": "buy_for", "min": 1}]}),
            "filter.conditions[0].values",
        ),
        (
            json!({"conditions": [{"question": "budget", "min": 5, "max": 1}]}),
            "filter.conditions[0].min",
        ),
        (
            json!({"conditions": [{"question": "buy_for", "values": ["self"], "colour": 1}]}),
            "filter.conditions[0].colour",
        ),
        (json!({"conditions": []}), "filter.conditions"),
    ];
    for (f, field) in cases {
        let r = app
            .get(
                &format!("/api/v1/questionnaires/{q}/panel?filter={}", enc(&f)),
                &t.token,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{f}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), vec![field.to_owned()], "{f}");
    }
    let r = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?filter=%7Bnot%20json"),
            &t.token,
        )
        .await;
    assert_eq!(r.error_fields(), ["filter"]);
    let r = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?colour=red"),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// The extreme finite bounds a filter may give are stored and read back
/// (PostgreSQL's jsonb prints f64::MAX as a 309-digit decimal, which a
/// best-effort float parser rounds past f64::MAX: it was a 500).
async fn extreme_segment_bounds_round_trip(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, _) = developer_panel(&app, &t).await;
    let filter = json!({"conditions": [
        {"question": "budget", "min": -1.7976931348623157e308, "max": 1.7976931348623157e308},
        {"question": "budget", "min": -1.6992980628796444e-307, "max": 3.805508069023735e162}
    ]});
    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "All budgets", "filter": filter}),
        )
        .await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/segments/{segment}"),
            Some(&t.token),
            Some(json!({"name": "All budgets", "filter": filter})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/segments/{segment}"), &t.token)
        .await;
    assert_eq!(r.body["filter"], filter, "{}", r.text);
}

both_modes!(
    segment_panel_of_parents_buyers_from_social_networks,
    bad_panel_filters_get_422,
    extreme_segment_bounds_round_trip
);
