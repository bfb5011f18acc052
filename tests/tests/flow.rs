//! The walkthrough of product flow 1–2, end to end over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mode, both_modes, csv_rows, ndjson_rows, panel, spawn_app};

async fn signup_client_questionnaire_import_and_summary(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let p = panel(&app, &owner).await;
    let key = app.api_key(&owner.token, &["ingest", "read"]).await;

    let csv = "external_id,city,source,price,location,nps,budget,comment,mail,visit,reception\n\
               r1,msk,social;tv,5,3,10,1500,\"Great, friendly\",a@b.ru,2026-11-01,5\n\
               r2,spb,friends,4,4,6,900,,,,\n\
               r3,msk,,2,5,9,,,,,3\n";
    let r = app
        .raw(
            Method::POST,
            &format!(
                "/api/v1/questionnaires/{}/responses/import",
                p.questionnaire
            ),
            Some(&key),
            "text/csv",
            csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["inserted"], 3);
    let version = r.body["data_version"].as_i64().unwrap();
    assert_eq!(version, 1);

    let s = app.wait_for_summary(&key, &p.questionnaire, version).await;
    assert_eq!(s["status"], "fresh");
    assert_eq!(s["summary"]["n"], 3);
    // NPS answers 10, 6, 9: P = 2, D = 1 → 100·(2−1)/3
    let nps = s["summary"]["nps"]["nps"].as_f64().unwrap();
    assert!((nps - 100.0 / 3.0).abs() < 1e-9, "{s}");
    assert_eq!(s["summary"]["factors"][0]["mean"], json!(11.0 / 3.0));
    assert!(s["computed_at"].is_string());

    // A single JSON response, then the same again: idempotent by external id.
    let one =
        json!({"external_id": "web-1", "answers": {"city": "spb", "nps": 10, "source": ["tv"]}});
    let path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    let r = app.post(&path, &key, one.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (r.body["inserted"].as_u64(), r.body["data_version"].as_i64()),
        (Some(1), Some(2))
    );
    let r = app.post(&path, &key, one).await;
    assert_eq!(
        (r.body["inserted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(r.body["data_version"], 2);

    // A client can wait for the version its write produced.
    let s = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/summary?min_version=2&wait_ms=20000",
                p.questionnaire
            ),
            &owner.token,
        )
        .await
        .body;
    assert_eq!(
        (s["data_version"].as_i64(), s["status"].as_str()),
        (Some(2), Some("fresh"))
    );
    assert_eq!(s["summary"]["n"], 4);
    let r = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/summary?min_version=99&wait_ms=100",
                p.questionnaire
            ),
            &owner.token,
        )
        .await;
    assert_eq!(
        (r.status, r.body["data_version"].as_i64()),
        (StatusCode::OK, Some(2))
    );
    let r = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/summary?wait_ms=999999",
                p.questionnaire
            ),
            &owner.token,
        )
        .await;
    assert_eq!(r.error_fields(), ["wait_ms"]);

    // Responses are listed with cursor pagination.
    let page1 = app.get(&format!("{path}?limit=3"), &owner.token).await;
    assert_eq!(page1.body["items"].as_array().unwrap().len(), 3);
    let cursor = page1.body["next_cursor"].as_str().unwrap().to_owned();
    let page2 = app
        .get(&format!("{path}?limit=3&after={cursor}"), &owner.token)
        .await;
    assert_eq!(page2.body["items"].as_array().unwrap().len(), 1);
    assert!(page2.body["next_cursor"].is_null());
    assert_eq!(page2.body["items"][0]["external_id"], "web-1");
}

async fn ndjson_and_csv_imports_of_the_same_rows_agree(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let p = panel(&app, &owner).await;
    let path = format!(
        "/api/v1/questionnaires/{}/responses/import",
        p.questionnaire
    );
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&owner.token),
            "application/x-ndjson",
            ndjson_rows("n", 500),
        )
        .await;
    assert_eq!(r.body["inserted"], 500, "{}", r.text);
    // The same external ids as CSV: all duplicates.
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&owner.token),
            "text/csv",
            csv_rows("n", 500),
        )
        .await;
    assert_eq!(
        (r.body["inserted"].as_u64(), r.body["duplicates"].as_u64()),
        (Some(0), Some(500)),
        "{}",
        r.text
    );
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&owner.token),
            "text/csv",
            csv_rows("c", 500),
        )
        .await;
    assert_eq!(r.body["inserted"], 500);
    let s = app
        .wait_for_summary(&owner.token, &p.questionnaire, 2)
        .await;
    assert_eq!(s["summary"]["n"], 1000);
    // Both halves have identical answers, so NPS tallies double exactly.
    assert_eq!(s["summary"]["nps"]["n"], 1000);
}

async fn invited_teammate_joins_and_sees_the_agency(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let r = app
        .post(
            "/api/v1/members",
            &owner.token,
            json!({"email": "new.analyst@example.com", "role": "analyst"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "invited");
    let token = r.body["invitation_token"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": token, "name": "Ana", "password": "another good password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let analyst = r.body["token"].as_str().unwrap().to_owned();
    let me = app.get("/api/v1/me", &analyst).await;
    assert_eq!(me.body["agency"]["id"], owner.agency_id.as_str());
    assert_eq!(me.body["agency"]["role"], "analyst");
    // The token cannot be used twice.
    let again = app
        .call(
            Method::POST,
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": token, "name": "Eve", "password": "another good password"})),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    // Login works with the new password.
    let login = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": "new.analyst@example.com", "password": "another good password"})),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let members = app.get("/api/v1/members", &owner.token).await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 2);
}

async fn questionnaire_breaking_change_creates_a_new_version(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let p = panel(&app, &owner).await;
    let q = format!("/api/v1/questionnaires/{}", p.questionnaire);
    // Without responses, edits change version 1 in place.
    let mut body = tests::panel_questions(&p.factors[0], &p.factors[1], &p.touchpoint);
    body["questions"][0]["options"] = json!(["msk", "spb", "kzn"]);
    let r = app
        .call(
            Method::PATCH,
            &q,
            Some(&owner.token),
            Some(json!({"questions": body["questions"].clone()})),
        )
        .await;
    assert_eq!(
        (r.status, r.body["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{}",
        r.text
    );
    app.post(
        &format!("{q}/responses"),
        &owner.token,
        json!({"answers": {"city": "kzn"}}),
    )
    .await;
    // Adding an option is safe for stored responses: same version.
    body["questions"][0]["options"] = json!(["msk", "spb", "kzn", "ekb"]);
    let r = app
        .call(
            Method::PATCH,
            &q,
            Some(&owner.token),
            Some(json!({"questions": body["questions"].clone()})),
        )
        .await;
    assert_eq!(r.body["version"], 1, "{}", r.text);
    // Removing an option a stored response may hold: new version.
    body["questions"][0]["options"] = json!(["msk", "spb"]);
    let r = app
        .call(
            Method::PATCH,
            &q,
            Some(&owner.token),
            Some(json!({"questions": body["questions"].clone()})),
        )
        .await;
    assert_eq!(r.body["version"], 2, "{}", r.text);
    let bad = app
        .post(
            &format!("{q}/responses"),
            &owner.token,
            json!({"answers": {"city": "kzn"}}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn template_library_is_read_only_and_clones_are_editable(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let t = app
        .get(
            &format!("/api/v1/touchpoint-libraries/{}", tests::TEMPLATE_LIBRARY),
            &owner.token,
        )
        .await;
    let stages = t.body["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 5);
    let total: usize = stages
        .iter()
        .map(|s| s["touchpoints"].as_array().unwrap().len())
        .sum();
    assert!(total >= 90, "{total}");
    let stage = stages[0]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{}/touchpoints", tests::TEMPLATE_LIBRARY),
            &owner.token,
            json!({"stage_id": stage, "key": "x", "name_en": "X", "name_ru": "Икс", "channel": "online"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let p = panel(&app, &owner).await;
    let lib = app
        .get(
            &format!("/api/v1/touchpoint-libraries/{}", p.library),
            &owner.token,
        )
        .await;
    let stage = lib.body["stages"][1]["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{}/touchpoints", p.library),
            &owner.token,
            json!({"stage_id": stage, "key": "telegram_bot", "name_en": "Telegram bot", "name_ru": "Телеграм-бот", "channel": "online"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let dup = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{}/touchpoints", p.library),
            &owner.token,
            json!({"stage_id": stage, "key": "telegram_bot", "name_en": "Telegram bot", "name_ru": "Телеграм-бот", "channel": "online"}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
}

async fn health_and_readiness_answer(mode: Mode) {
    let app = spawn_app(mode).await;
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["queue_backend"],
        if mode == Mode::Postgres {
            "redis"
        } else {
            "sqlite"
        }
    );
    assert!(r.headers.get("x-request-id").is_some());
    let r = app
        .call(Method::GET, "/api/v1/nothing-here", None, None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.headers["content-type"], "application/problem+json");
}

async fn graphql_reads_and_writes_through_the_same_services(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let r = app
        .graphql(
            Some(&owner.token),
            "mutation($i: CreateClient!) { createClient(input: $i) { id name timezone } }",
            json!({"i": {"name": "Restaurant", "timezone": "Asia/Yekaterinburg"}}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let id = r.body["data"]["createClient"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .graphql(
            Some(&owner.token),
            "query($id: ID!) { client(id: $id) { name } clients { items { id } nextCursor } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.body["data"]["client"]["name"], "Restaurant", "{}", r.text);
    assert_eq!(
        r.body["data"]["clients"]["items"].as_array().unwrap().len(),
        1
    );
    let rest = app
        .get(&format!("/api/v1/clients/{id}"), &owner.token)
        .await;
    assert_eq!(rest.body["timezone"], "Asia/Yekaterinburg");
    // Validation errors carry a code and the offending field.
    let r = app
        .graphql(
            Some(&owner.token),
            "mutation($i: CreateClient!) { createClient(input: $i) { id } }",
            json!({"i": {"name": "X", "timezone": "Mars/Olympus"}}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{}",
        r.text
    );
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["field"],
        "timezone"
    );
    // No token: an UNAUTHORIZED error, no data.
    let r = app
        .graphql(None, "{ clients { items { id } } }", json!({}))
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
        "{}",
        r.text
    );
}

async fn graphql_depth_is_limited(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let r = app
        .graphql(Some(&owner.token), "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }", json!({}))
        .await;
    assert!(
        r.body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{}",
        r.text
    );
}

async fn idempotency_key_replays_the_first_answer(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let p = panel(&app, &owner).await;
    let path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    let send = |body: serde_json::Value, key: &'static str| {
        let app = &app;
        let path = path.clone();
        let token = owner.token.clone();
        async move {
            let r = app
                .http
                .post(app.url(&path))
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            tests::TestApp::read(r).await
        }
    };
    let body = json!({"answers": {"city": "msk", "nps": 10}});
    let first = send(body.clone(), "k-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = send(body.clone(), "k-1").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body, "the stored answer is replayed");
    let listed = app.get(&path, &owner.token).await;
    assert_eq!(
        listed.body["items"].as_array().unwrap().len(),
        1,
        "stored once"
    );
    let other = send(json!({"answers": {"city": "spb"}}), "k-1").await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(other.error_fields(), ["Idempotency-Key"]);
}

both_modes!(
    signup_client_questionnaire_import_and_summary,
    ndjson_and_csv_imports_of_the_same_rows_agree,
    invited_teammate_joins_and_sees_the_agency,
    questionnaire_breaking_change_creates_a_new_version,
    template_library_is_read_only_and_clones_are_editable,
    health_and_readiness_answer,
    graphql_reads_and_writes_through_the_same_services,
    graphql_depth_is_limited,
    idempotency_key_replays_the_first_answer,
);
