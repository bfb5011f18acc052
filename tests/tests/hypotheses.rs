//! Segment hypotheses end to end: stored, evaluated by the worker when data
//! or hypotheses change, with verdicts, q-values and how many more to survey.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

async fn setup(app: &TestApp, t: &Tenant) -> (String, String) {
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Developer"}))
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Buyers", "kind": "customer_panel", "questions": [
                {"key": "buy_for", "type": "single_choice", "options": ["self", "parents"], "role": "segment_attribute"},
                {"key": "source", "type": "multi_choice", "options": ["social", "search"], "role": "source_channel"},
                {"key": "nps", "type": "nps_0_10", "role": "nps"}
            ]}),
        )
        .await;
    (client, q)
}

async fn import(app: &TestApp, t: &Tenant, q: &str, rows: &[(&str, &str, u8, usize)]) -> i64 {
    let mut csv = String::from("buy_for,source,nps\n");
    for (who, src, nps, times) in rows {
        for _ in 0..*times {
            csv.push_str(&format!("{who},{src},{nps}\n"));
        }
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
    r.body["data_version"].as_i64().unwrap()
}

async fn hypotheses_get_verdicts_and_react_to_new_data(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, q) = setup(&app, &t).await;
    // Parents come from social networks far more often than the rest.
    import(
        &app,
        &t,
        &q,
        &[
            ("parents", "social", 9, 40),
            ("parents", "search", 6, 10),
            ("self", "social", 7, 15),
            ("self", "search", 8, 35),
        ],
    )
    .await;
    let seg = json!({"conditions": [{"question": "buy_for", "values": ["parents"]}]});
    let share = app
        .create(
            &format!("/api/v1/clients/{client}/hypotheses"),
            &t.token,
            json!({"name": "Parents come from social networks", "questionnaire_id": q, "segment": seg,
                   "metric": {"kind": "share", "question": "source", "value": "social"}, "direction": "greater"}),
        )
        .await;
    let small_seg = json!({"conditions": [{"question": "nps", "min": 6, "max": 6}]});
    let small = app
        .create(
            &format!("/api/v1/clients/{client}/hypotheses"),
            &t.token,
            json!({"name": "Detractors at 6 come from search", "questionnaire_id": q, "segment": small_seg,
                   "metric": {"kind": "share", "question": "source", "value": "search"}, "direction": "greater"}),
        )
        .await;
    let r = app.hypotheses_after(&t.token, &client, 0).await;
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let a = items
        .iter()
        .find(|i| i["hypothesis_id"] == share.as_str())
        .unwrap();
    // Parents: 40/50 social; the rest: 15/50.
    assert_eq!(
        (a["result"]["n1"].as_u64(), a["result"]["n2"].as_u64()),
        (Some(50), Some(50))
    );
    assert_eq!(a["result"]["estimate1"], json!(0.8));
    assert_eq!(a["result"]["verdict"], "supported", "{a}");
    assert!(a["result"]["q_value"].as_f64().unwrap() >= a["result"]["p_value"].as_f64().unwrap());
    let b = items
        .iter()
        .find(|i| i["hypothesis_id"] == small.as_str())
        .unwrap();
    // Only 10 respondents gave 6: too few to judge (n1 < 30), and the answer
    // says how many more to survey.
    assert_eq!(b["result"]["n1"], 10);
    assert_eq!(b["result"]["verdict"], "insufficient_data", "{b}");
    assert_eq!(b["survey_more"], json!(30 - 10), "{b}");
    // New data → re-evaluated with a newer version.
    let before = r["data_version"].as_i64().unwrap();
    import(&app, &t, &q, &[("parents", "search", 6, 30)]).await;
    let r2 = app.hypotheses_after(&t.token, &client, before).await;
    let b2 = r2["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["hypothesis_id"] == small.as_str())
        .unwrap();
    assert_eq!(b2["result"]["n1"], 40);
    // GraphQL shows the same.
    let g = app
        .graphql(Some(&t.token), "query($c: ID!) { hypothesesResults(clientId: $c) { dataVersion items { name result { verdict n1 } } } }", json!({"c": client}))
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
    assert_eq!(
        g.body["data"]["hypothesesResults"]["dataVersion"],
        r2["data_version"]
    );
}

async fn bad_hypotheses_get_422(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, q) = setup(&app, &t).await;
    let seg = json!({"conditions": [{"question": "buy_for", "values": ["parents"]}]});
    let base = json!({"name": "h", "questionnaire_id": q, "segment": seg, "metric": {"kind": "nps"}, "direction": "greater"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("direction", json!("up")), "direction"),
        (with("comparison", json!("everyone")), "comparison"),
        (with("min_effect", json!(-1)), "min_effect"),
        (
            with(
                "metric",
                json!({"kind": "share", "question": "source", "value": "tv"}),
            ),
            "metric.value",
        ),
        (
            with("metric", json!({"kind": "mean", "question": "buy_for"})),
            "metric.question",
        ),
        (with("metric", json!({"kind": "median"})), "metric.kind"),
        (
            with(
                "segment",
                json!({"conditions": [{"question": "buy_for", "values": ["aliens"]}]}),
            ),
            "segment.conditions[0].values",
        ),
        (
            with("questionnaire_id", json!(uuid::Uuid::now_v7())),
            "questionnaire_id",
        ),
        (with("colour", json!("red")), "colour"),
    ] {
        let r = app
            .post(
                &format!("/api/v1/clients/{client}/hypotheses"),
                &t.token,
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), vec![field.to_owned()], "{body}");
    }
    let list = app
        .get(&format!("/api/v1/clients/{client}/hypotheses"), &t.token)
        .await;
    assert_eq!(list.body, json!([]));
}

both_modes!(
    hypotheses_get_verdicts_and_react_to_new_data,
    bad_hypotheses_get_422
);
