//! The UX dynamic map from mystery-shopper audits, through the API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mode, TEMPLATE_LIBRARY, both_modes, spawn_app};

async fn a_falling_touchpoint_is_flagged_negative(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let lib = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{TEMPLATE_LIBRARY}/clone"),
            &t.token,
            json!({}),
        )
        .await;
    let tp = lib.body["stages"][3]["touchpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let stage = lib.body["stages"][3]["id"].as_str().unwrap().to_owned();
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Fitness club"}))
        .await;
    let audit = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Mystery shopper", "kind": "mystery_shopper", "questions": [
                {"key": "visit", "type": "date", "role": "visit_date", "required": true},
                {"key": "job", "type": "single_choice", "options": ["lose_weight", "relax"], "role": "jtbd"},
                {"key": "reception", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": tp},
                {"key": "reception_idea", "type": "text", "role": "touchpoint_idea", "touchpoint_id": tp}
            ]}),
        )
        .await;
    // Baseline (28 days before the week ending 2026-11-20): 5, 5, 4 → 14/3.
    // Current week: 3, 3, 4 → 10/3. Deviation −4/3 ≤ −0.5 → negative.
    let csv = "visit,job,reception,reception_idea\n\
               2026-10-20,lose_weight,5,\n2026-10-28,lose_weight,5,\n2026-11-05,relax,4,\n\
               2026-11-15,lose_weight,3,Greet guests by name\n2026-11-18,lose_weight,3,\n2026-11-20,relax,4,Faster check-in\n\
               2026-11-25,relax,1,\n";
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&t.token),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let m = app
        .get(
            &format!("/api/v1/clients/{client}/ux-map?as_of=2026-11-20"),
            &t.token,
        )
        .await;
    assert_eq!(m.status, StatusCode::OK, "{}", m.text);
    let by_tp = m.body["by_touchpoint"].as_array().unwrap();
    let s = &by_tp
        .iter()
        .find(|x| x["touchpoint_id"] == tp.as_str())
        .unwrap()["stats"];
    assert_eq!(s["current"]["n"], 3);
    assert!((s["current"]["mean"].as_f64().unwrap() - 10.0 / 3.0).abs() < 1e-12);
    assert!((s["baseline"]["mean"].as_f64().unwrap() - 14.0 / 3.0).abs() < 1e-12);
    assert!((s["deviation"].as_f64().unwrap() + 4.0 / 3.0).abs() < 1e-12);
    assert_eq!(s["flag"], "negative");
    // The rating after D is ignored everywhere.
    assert_eq!(s["all_time"]["n"], 6);
    let by_stage = m.body["by_stage"].as_array().unwrap();
    assert!(by_stage.iter().any(|x| x["stage_id"] == stage.as_str()));
    // Ideas newest first.
    assert_eq!(m.body["ideas"][0]["ideas"][0]["text"], "Faster check-in");
    let r = app
        .get(
            &format!("/api/v1/clients/{client}/ux-map?as_of=20-11-2026"),
            &t.token,
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["as_of".to_owned()])
    );
    let g = app
        .graphql(Some(&t.token), "query($c: ID!) { uxMap(clientId: $c, asOf: \"2026-11-20\") { byTouchpoint { stats { flag } } } }", json!({"c": client}))
        .await;
    assert_eq!(
        g.body["data"]["uxMap"]["byTouchpoint"][0]["stats"]["flag"], "NEGATIVE",
        "{}",
        g.text
    );
}

/// The worker keeps alert records in step with today's map: one per new
/// negative flag (touchpoint × JTBD, touchpoint, stage), not repeated while
/// the flag stays, cleared when it goes.
async fn the_worker_records_each_new_negative_flag_once(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, audit, _) = tests::mystery_audit(&app, &t, "ru").await;
    // Dates relative to today: the worker maps "today" in the client's zone.
    // They stay in their windows even if the date turns while the test runs.
    let import = |rows: &[(i64, u8)]| tests::audits_csv(rows);
    let path = format!("/api/v1/questionnaires/{audit}/responses/import");
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "text/csv",
            import(&tests::FALLING),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&t.token, "client_ux", &client, 1).await;
    let alerts_path = format!("/api/v1/clients/{client}/ux-alerts?open=true");
    let a = app.get(&alerts_path, &t.token).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let mut scopes: Vec<&str> = a.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["scope"].as_str().unwrap())
        .collect();
    scopes.sort();
    assert_eq!(
        scopes,
        ["stage", "touchpoint", "touchpoint_jtbd"],
        "{}",
        a.text
    );
    let first = &a.body["items"][0];
    assert!(
        (first["deviation"].as_f64().unwrap() + 4.0).abs() < 1e-12,
        "{}",
        a.text
    );
    assert!(
        first["notified_at"].is_string(),
        "the email is queued with the alert"
    );
    // More bad audits: the flags stay raised, nothing new is recorded.
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "text/csv",
            import(&[(1, 2)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&t.token, "client_ux", &client, 2).await;
    let all = app
        .get(&format!("/api/v1/clients/{client}/ux-alerts"), &t.token)
        .await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        all.text
    );
    // Enough good audits this week lift the mean: every alert is cleared.
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "text/csv",
            import(&[(1, 5); 30]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&t.token, "client_ux", &client, 3).await;
    let open = app.get(&alerts_path, &t.token).await;
    assert!(
        open.body["items"].as_array().unwrap().is_empty(),
        "{}",
        open.text
    );
    let all = app
        .get(&format!("/api/v1/clients/{client}/ux-alerts"), &t.token)
        .await;
    assert!(
        all.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["cleared_at"].is_string()),
        "{}",
        all.text
    );
    // The map says which data it reflects; GraphQL lists the same alerts.
    let m = app
        .get(&format!("/api/v1/clients/{client}/ux-map"), &t.token)
        .await;
    assert_eq!(m.body["data_version"], 3, "{}", m.text);
    let g = app
        .graphql(
            Some(&t.token),
            "query($c: ID!) { uxAlerts(clientId: $c) { items { scope clearedAt } } uxMap(clientId: $c) { dataVersion asOf } }",
            json!({"c": client}),
        )
        .await;
    assert_eq!(
        g.body["data"]["uxAlerts"]["items"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{}",
        g.text
    );
    assert_eq!(g.body["data"]["uxMap"]["dataVersion"], 3, "{}", g.text);
}

both_modes!(
    a_falling_touchpoint_is_flagged_negative,
    the_worker_records_each_new_negative_flag_once
);
