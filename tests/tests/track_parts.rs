//! Customer tracks' computed parts: equal to what the panel, QFD,
//! hypotheses and UX-map endpoints answer for the same segment, moved to
//! the new data version after an import, and two tracks compared side by
//! side.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::tracks::{MSK, SPB, Setup, setup, stage, steps, stored_at, touchpoint};
use tests::{Tenant, TestApp, both_modes, ndjson_rows, spawn_app, url_encode};

/// The track's parts, and the same figures from their own endpoints.
async fn assert_parts_match(app: &TestApp, t: &Tenant, s: &Setup, track: &Value, hypothesis: &str) {
    let c = &track["computed"];
    let panel = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/panel?filter={}",
                s.p.questionnaire,
                url_encode(MSK)
            ),
            &t.token,
        )
        .await;
    assert_eq!(panel.status, StatusCode::OK, "{}", panel.text);
    assert_eq!(track["data_version"], panel.body["data_version"]);
    assert_eq!(c["segment"]["n"], panel.body["panel"]["n"]);
    assert_eq!(c["segment"]["share"], panel.body["panel"]["share"]);
    let mut factors = panel.body["panel"]["factors"].as_array().unwrap().clone();
    factors.sort_by_key(|f| f["rank"].as_u64());
    assert_eq!(c["factors"], Value::Array(factors));

    let qfd = app
        .get(
            &format!(
                "/api/v1/clients/{}/qfd?segment_id={}&questionnaire_id={}",
                s.p.client, s.msk, s.p.questionnaire
            ),
            &t.token,
        )
        .await;
    assert_eq!(qfd.status, StatusCode::OK, "{}", qfd.text);
    let critical: Vec<Value> = qfd.body["result"]["touchpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["class"] == "critical")
        .cloned()
        .collect();
    assert!(!critical.is_empty(), "the matrix makes some critical");
    assert_eq!(c["qfd"]["critical_touchpoints"], Value::Array(critical));
    let mut priorities: Vec<Value> = qfd.body["priorities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["priority"].is_null())
        .cloned()
        .collect();
    priorities.sort_by(|a, b| {
        b["priority"]
            .as_f64()
            .partial_cmp(&a["priority"].as_f64())
            .unwrap()
            .then_with(|| {
                a["touchpoint_id"]
                    .as_str()
                    .cmp(&b["touchpoint_id"].as_str())
            })
    });
    assert_eq!(c["qfd"]["priorities"], Value::Array(priorities));

    let results = app
        .get(
            &format!("/api/v1/clients/{}/hypotheses/results", s.p.client),
            &t.token,
        )
        .await;
    let mine: Vec<Value> = results.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["hypothesis_id"] == hypothesis)
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "{}", results.text);
    assert_eq!(
        c["hypotheses"],
        Value::Array(mine),
        "only the segment's own"
    );
    assert_eq!(c["hypotheses_version"], results.body["data_version"]);
}

async fn computed_parts_equal_the_endpoints_and_follow_an_import(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = setup(&app, &t).await;
    let first = app
        .import_ndjson(&t.token, &s.p.questionnaire, ndjson_rows("a", 90))
        .await;
    assert_eq!(first["data_version"], 1);
    // A QFD matrix over the first stage's touchpoints.
    let cells: Vec<Value> = (0..4)
        .map(|j| {
            let value = [9, 3, 1, 3][j];
            json!({"factor_id": s.p.factors[j % 2], "touchpoint_id": touchpoint(&s.lib, 0, j),
                   "value": value})
        })
        .collect();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{}/qfd/matrix", s.p.client),
            Some(&t.token),
            Some(json!({"cells": cells})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let filter: Value = serde_json::from_str(MSK).unwrap();
    let mine = app
        .create(
            &format!("/api/v1/clients/{}/hypotheses", s.p.client),
            &t.token,
            json!({"name": "Moscow promotes more", "questionnaire_id": s.p.questionnaire,
                   "segment": filter, "metric": {"kind": "nps"}, "direction": "greater"}),
        )
        .await;
    app.create(
        &format!("/api/v1/clients/{}/hypotheses", s.p.client),
        &t.token,
        json!({"name": "Petersburg promotes more", "questionnaire_id": s.p.questionnaire,
               "segment": serde_json::from_str::<Value>(SPB).unwrap(), "metric": {"kind": "nps"}, "direction": "greater"}),
    )
    .await;
    let track = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": "Moscow", "segment_id": s.msk, "steps": steps(&s.lib)}),
        )
        .await;
    let body = stored_at(&app, &t.token, &track, 1).await;
    assert_eq!(body["computed"]["problems"], json!([]), "{body}");
    assert_eq!(body["computed"]["segment"]["n"], 60);
    assert_parts_match(&app, &t, &s, &body, &mine).await;
    // No purchases, no mystery shoppers: those parts are empty.
    assert!(body["computed"]["purchases"].is_null());
    assert_eq!(body["computed"]["ux_flags"], json!([]));

    // An import moves the parts to the new version.
    let second = app
        .import_ndjson(&t.token, &s.p.questionnaire, ndjson_rows("b", 30))
        .await;
    assert_eq!(second["data_version"], 2);
    let body = stored_at(&app, &t.token, &track, 2).await;
    assert_eq!(body["computed"]["segment"]["n"], 80);
    assert_parts_match(&app, &t, &s, &body, &mine).await;
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { track(id: $id) { dataVersion fresh computed { segment { n share } } } }",
            json!({"id": track}),
        )
        .await;
    assert_eq!(r.body["data"]["track"]["dataVersion"], 2, "{}", r.text);
    assert_eq!(r.body["data"]["track"]["computed"]["segment"]["n"], 80);
}

async fn two_tracks_compare_side_by_side(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = setup(&app, &t).await;
    app.import_ndjson(&t.token, &s.p.questionnaire, ndjson_rows("a", 60))
        .await;
    let a = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": "Moscow", "segment_id": s.msk, "steps": steps(&s.lib)}),
        )
        .await;
    let b_steps = json!([{"stage_id": stage(&s.lib, 1), "task": "Find a cheap flat",
        "barriers": [{"label": "too expensive!"}, {"label": "Far from the metro"}]}]);
    let b = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": "Petersburg", "segment_id": s.spb, "steps": b_steps}),
        )
        .await;
    let r = app
        .get(&format!("/api/v1/tracks/compare?a={a}&b={b}"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["a"]["segment"]["n"], 40);
    assert_eq!(r.body["b"]["segment"]["n"], 20);
    let factors = r.body["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 2, "{}", r.text);
    let ta = app.get(&format!("/api/v1/tracks/{a}"), &t.token).await.body;
    for f in factors {
        let own = ta["computed"]["factors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["factor_id"] == f["factor"])
            .unwrap();
        assert_eq!(f["rank_a"], own["rank"]);
    }
    assert_eq!(
        r.body["barriers"],
        json!([
            {"label": "Too expensive", "in_a": true, "in_b": true},
            {"label": "No parking", "in_a": true, "in_b": false},
            {"label": "Far from the metro", "in_a": false, "in_b": true}
        ])
    );
    let g = app
        .graphql(
            Some(&t.token),
            "query($a: ID!, $b: ID!) { compareTracks(a: $a, b: $b) { barriers { label inA inB } } }",
            json!({"a": a, "b": b}),
        )
        .await;
    assert_eq!(
        g.body["data"]["compareTracks"]["barriers"][2]["label"], "Far from the metro",
        "{}",
        g.text
    );
}

async fn ux_flags_are_the_ux_maps_own(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    // The fitness club's audits fell this week: a negative flag per level.
    let (client, audit, _) = tests::mystery_audit(&app, &t, "en").await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&t.token),
            "text/csv",
            tests::audits_csv(&tests::FALLING),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.create(
        &format!("/api/v1/clients/{client}/questionnaires"),
        &t.token,
        json!({"title": "Panel", "kind": "customer_panel", "questions": [
            {"key": "city", "type": "single_choice", "options": ["msk", "spb"], "role": "segment_attribute"}
        ]}),
    )
    .await;
    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Moscow", "filter": serde_json::from_str::<Value>(MSK).unwrap()}),
        )
        .await;
    // No steps yet: every flag of the client's map is the track's.
    let track = app
        .create(
            &format!("/api/v1/clients/{client}/tracks"),
            &t.token,
            json!({"name": "Losing weight", "segment_id": segment}),
        )
        .await;
    let body = stored_at(&app, &t.token, &track, 0).await;
    let map = app
        .get(&format!("/api/v1/clients/{client}/ux-map"), &t.token)
        .await
        .body;
    let mut expected = Vec::new();
    for (list, scope, key) in [
        ("by_touchpoint_jtbd", "touchpoint_jtbd", "touchpoint_id"),
        ("by_touchpoint", "touchpoint", "touchpoint_id"),
        ("by_stage", "stage", "stage_id"),
    ] {
        for row in map[list].as_array().unwrap() {
            if !row["stats"]["flag"].is_null() {
                expected.push((
                    scope.to_owned(),
                    row[key].clone(),
                    row["stats"]["deviation"].clone(),
                ));
            }
        }
    }
    let got: Vec<(String, Value, Value)> = body["computed"]["ux_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = if f["scope"] == "stage" {
                "stage_id"
            } else {
                "touchpoint_id"
            };
            (
                f["scope"].as_str().unwrap().to_owned(),
                f[key].clone(),
                f["deviation"].clone(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{body}");
    assert_eq!(got, expected);
    assert_eq!(body["computed"]["ux_version"], map["data_version"]);
}

both_modes!(
    computed_parts_equal_the_endpoints_and_follow_an_import,
    two_tracks_compare_side_by_side,
    ux_flags_are_the_ux_maps_own,
);
