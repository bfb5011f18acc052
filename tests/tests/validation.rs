//! Bad input, table-driven: a clear 4xx naming the field (and row), and the
//! database unchanged afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, panel, spawn_app, spawn_with};

async fn count(app: &TestApp, t: &Tenant, q: &str) -> (usize, i64) {
    let r = app
        .get(
            &format!("/api/v1/questionnaires/{q}/responses?limit=200"),
            &t.token,
        )
        .await;
    let qv = app
        .get(&format!("/api/v1/questionnaires/{q}"), &t.token)
        .await;
    (
        r.body["items"].as_array().unwrap().len(),
        qv.body["data_version"].as_i64().unwrap(),
    )
}

async fn each_question_type_rejects_bad_answers(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"city": "kzn"}), "answers.city"), // unknown option
        (json!({"city": 1}), "answers.city"),     // wrong type
        (
            json!({"source": ["radio"], "city": "msk"}),
            "answers.source",
        ), // unknown option in multi
        (json!({"source": "tv", "city": "msk"}), "answers.source"), // multi must be a list
        (json!({"price": 0, "city": "msk"}), "answers.price"), // out of range
        (json!({"price": 6, "city": "msk"}), "answers.price"),
        (json!({"price": 3.5, "city": "msk"}), "answers.price"), // not whole
        (json!({"price": "3", "city": "msk"}), "answers.price"), // wrong type
        (json!({"nps": -1, "city": "msk"}), "answers.nps"),
        (json!({"nps": 11, "city": "msk"}), "answers.nps"),
        (json!({"budget": -5, "city": "msk"}), "answers.budget"), // below min
        (json!({"budget": "lots", "city": "msk"}), "answers.budget"),
        (
            json!({"mail": "not-an-email", "city": "msk"}),
            "answers.mail",
        ),
        (
            json!({"visit": "2026-13-01", "city": "msk"}),
            "answers.visit",
        ),
        (json!({"comment": 5, "city": "msk"}), "answers.comment"),
        (json!({"ghost": 1, "city": "msk"}), "answers.ghost"), // unknown question
        (json!({"nps": 9}), "answers.city"),                   // missing required
    ];
    for (answers, field) in cases {
        let r = app.post(&path, &t.token, json!({"answers": answers})).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{answers}: {}",
            r.text
        );
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(r.body["code"], "validation_failed");
        assert_eq!(r.error_fields(), vec![field.to_owned()], "{answers}");
    }
    // Envelope problems.
    for (body, field) in [
        (json!({"answers": {"city": "msk"}, "extra": 1}), "extra"),
        (json!({"answers": [1]}), "answers"),
        (
            json!({"answers": {"city": "msk"}, "submitted_at": "yesterday"}),
            "submitted_at",
        ),
        (
            json!({"answers": {"city": "msk"}, "external_id": ""}),
            "external_id",
        ),
        (json!({}), "body"),
    ] {
        let r = app.post(&path, &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(
            r.error_fields(),
            vec![field.to_owned()],
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "application/json",
            "{\"answers\": {",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.error_fields(), ["body"]);
    assert_eq!(
        count(&app, &t, &p.questionnaire).await,
        (0, 0),
        "nothing stored"
    );
}

async fn bad_imports_store_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let path = format!(
        "/api/v1/questionnaires/{}/responses/import",
        p.questionnaire
    );
    let good_rows = "e1,msk,5\ne2,spb,4\n";
    let cases: Vec<(&str, String, &str, Option<usize>)> = vec![
        // (content type, body, field, row)
        (
            "text/csv",
            format!("external_id,city,price\n{good_rows}e3,kzn,5\n"),
            "answers.city",
            Some(3),
        ),
        (
            "text/csv",
            format!("external_id,city,price\n{good_rows}e3,msk,9\n"),
            "answers.price",
            Some(3),
        ),
        (
            "text/csv",
            format!("external_id,city,price\n{good_rows}e3,msk\n"),
            "row",
            Some(3),
        ),
        (
            "text/csv",
            format!("external_id,city,price\n{good_rows}\"e3,msk,5\n"),
            "row",
            Some(3),
        ),
        (
            "text/csv",
            format!("external_id,city,ghost\n{good_rows}"),
            "ghost",
            Some(0),
        ),
        (
            "text/csv",
            format!("external_id,city,city\n{good_rows}"),
            "city",
            Some(0),
        ),
        (
            "text/csv",
            format!("external_id,city,price\n{good_rows}e3,,5\n"),
            "answers.city",
            Some(3),
        ),
        (
            "text/csv",
            "external_id,city,submitted_at\ne1,msk,yesterday\n".to_string(),
            "submitted_at",
            Some(1),
        ),
        (
            "application/x-ndjson",
            "{\"answers\":{\"city\":\"msk\"}}\n{\"answers\":{\"city\":\"msk\",\"nps\":12}}\n"
                .into(),
            "answers.nps",
            Some(2),
        ),
        (
            "application/x-ndjson",
            "{\"answers\":{\"city\":\"msk\"}}\n{\"answers\":{\"city\":\"msk\"}\n".into(),
            "line",
            Some(2),
        ),
        (
            "application/x-ndjson",
            "{\"answers\":{\"city\":\"msk\"},\"who\":1}\n".into(),
            "who",
            Some(1),
        ),
        // PostgreSQL text cannot hold U+0000: refused, on SQLite too.
        (
            "text/csv",
            format!("external_id,city,price\n{good_rows}e\u{0}3,msk,5\n"),
            "external_id",
            Some(3),
        ),
        (
            "application/x-ndjson",
            "{\"respondent_ref\":\"r\\u0000\",\"answers\":{\"city\":\"msk\"}}\n".into(),
            "respondent_ref",
            Some(1),
        ),
    ];
    for (ct, body, field, row) in cases {
        let r = app
            .raw(Method::POST, &path, Some(&t.token), ct, body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        let e = &r.body["errors"][0];
        assert_eq!(e["field"], field, "{body}: {}", r.text);
        assert_eq!(
            e["row"].as_u64().map(|x| x as usize),
            row,
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "text/plain",
            "city\nmsk\n",
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["Content-Type".to_owned()]
        )
    );
    let r = app
        .raw(
            Method::POST,
            &path,
            Some(&t.token),
            "text/csv",
            "external_id,city\n",
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["body".to_owned()])
    );
    // Bulk bodies (PostgreSQL streams them into a COPY while parsing): one
    // bad row late in the body still stores nothing.
    let mut ndjson = String::new();
    let mut csv = String::from("external_id,city,nps\n");
    for i in 1..=3_000 {
        let nps = if i == 2_500 { 11 } else { i % 11 };
        ndjson.push_str(&format!(
            "{{\"external_id\":\"b{i}\",\"answers\":{{\"city\":\"msk\",\"nps\":{nps}}}}}\n"
        ));
        csv.push_str(&format!("b{i},msk,{nps}\n"));
    }
    for (ct, body) in [("application/x-ndjson", ndjson), ("text/csv", csv)] {
        let r = app.raw(Method::POST, &path, Some(&t.token), ct, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{ct}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), ["answers.nps"], "{ct}: {}", r.text);
        assert_eq!(r.body["errors"][0]["row"], 2_500, "{ct}: {}", r.text);
    }
    // Many bad rows: the first 100 are listed.
    let mut many = String::from("city,nps\n");
    for _ in 0..250 {
        many.push_str("msk,99\n");
    }
    let r = app
        .raw(Method::POST, &path, Some(&t.token), "text/csv", many)
        .await;
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 100);
    assert_eq!(
        count(&app, &t, &p.questionnaire).await,
        (0, 0),
        "nothing stored"
    );
}

async fn resource_inputs_are_validated(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let cases: Vec<(&str, String, Value, Vec<&str>)> = vec![
        (
            "POST",
            "/api/v1/clients".into(),
            json!({"name": ""}),
            vec!["name"],
        ),
        (
            "POST",
            "/api/v1/clients".into(),
            json!({"name": "X", "currency": "rub", "locale": "de", "timezone": "Moon/Base", "digest_schedule": "hourly", "report_recipients": ["nope"], "min_segment_n": 0}),
            vec![
                "currency",
                "timezone",
                "locale",
                "report_recipients[0]",
                "digest_schedule",
                "min_segment_n",
            ],
        ),
        (
            "POST",
            "/api/v1/clients".into(),
            json!({"name": "X", "colour": "red"}),
            vec!["colour"],
        ),
        (
            "POST",
            "/api/v1/clients".into(),
            json!({"name": 5}),
            vec!["name"],
        ),
        (
            "PATCH",
            format!("/api/v1/clients/{}", p.client),
            json!({"timezone": "Nowhere"}),
            vec!["timezone"],
        ),
        (
            "POST",
            format!("/api/v1/clients/{}/questionnaires", p.client),
            json!({"title": "x", "kind": "poll", "questions": []}),
            vec!["kind", "questions"],
        ),
        (
            "POST",
            format!("/api/v1/clients/{}/questionnaires", p.client),
            json!({"title": "x", "kind": "brief", "questions": [
                {"key": "a", "type": "single_choice"},
                {"key": "a", "type": "text"},
                {"key": "n", "type": "number", "min": 5, "max": 1},
                {"key": "r", "type": "rating_1_5", "role": "nps"},
                {"key": "q", "type": "yes_no"}
            ]}),
            vec!["questions[4].type"],
        ),
        (
            "POST",
            format!("/api/v1/clients/{}/questionnaires", p.client),
            json!({"title": "x", "kind": "brief", "questions": [
                {"key": "a", "type": "single_choice"},
                {"key": "a", "type": "text"},
                {"key": "n", "type": "number", "min": 5, "max": 1},
                {"key": "r", "type": "rating_1_5", "role": "nps"}
            ]}),
            vec![
                "questions[0].options",
                "questions[1].key",
                "questions[2].min",
                "questions[3].role",
            ],
        ),
        (
            "POST",
            format!("/api/v1/clients/{}/segments", p.client),
            json!({"name": "s", "filter": {"conditions": [{"question": "city"}]}}),
            vec!["filter.conditions[0].values"],
        ),
        (
            "POST",
            "/api/v1/api-keys".into(),
            json!({"name": "k", "scopes": ["admin"]}),
            vec!["scopes[0]"],
        ),
        (
            "POST",
            "/api/v1/api-keys".into(),
            json!({"name": "k", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}),
            vec!["expires_at"],
        ),
        (
            "POST",
            "/api/v1/members".into(),
            json!({"email": "x", "role": "viewer"}),
            vec!["email"],
        ),
        (
            "POST",
            "/api/v1/members".into(),
            json!({"email": "x@y.ru", "role": "god"}),
            vec!["role"],
        ),
        (
            "POST",
            "/api/v1/auth/signup".into(),
            json!({"agency_name": "", "name": "", "email": "e", "password": "short"}),
            vec!["agency_name", "name", "email", "password"],
        ),
        (
            "POST",
            format!("/api/v1/touchpoint-libraries/{}/touchpoints", p.library),
            json!({"stage_id": p.touchpoint, "key": "Bad Key", "name_en": "", "name_ru": "x", "channel": "carrier pigeon"}),
            vec!["key", "name_en", "channel"],
        ),
    ];
    let clients_before = app.get("/api/v1/clients", &t.token).await.body;
    for (method, path, body, fields) in cases {
        let r = app
            .call(
                Method::from_bytes(method.as_bytes()).unwrap(),
                &path,
                Some(&t.token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path} {body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), fields, "{method} {path} {body}");
    }
    assert_eq!(
        app.get("/api/v1/clients", &t.token).await.body,
        clients_before
    );
    // Pagination bounds.
    for q in ["limit=0", "limit=201", "after=zzz", "limit=abc"] {
        let r = app.get(&format!("/api/v1/clients?{q}"), &t.token).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.text
        );
    }
    // Malformed ids in paths are simply not found.
    for path in [
        "/api/v1/clients/not-a-uuid",
        "/api/v1/contacts/not-a-uuid/responses",
    ] {
        let r = app.get(path, &t.token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
    }
    // JSON must be declared as such.
    let r = app
        .raw(
            Method::POST,
            "/api/v1/clients",
            Some(&t.token),
            "text/plain",
            "{\"name\":\"x\"}",
        )
        .await;
    assert_eq!(r.error_fields(), ["Content-Type"]);
}

/// Questionnaire documents, table-driven: each bad one a 422 naming the
/// document's own field (links by name, not id), every problem at once,
/// and the client's questionnaires and factors unchanged.
async fn questionnaire_documents_are_validated_like_new_questionnaires(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let doc = app
        .get(
            &format!("/api/v1/questionnaires/{}/export", p.questionnaire),
            &t.token,
        )
        .await
        .body;
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut d = doc.clone();
        edit(&mut d);
        d
    };
    let cases: Vec<(Value, &str, Vec<&str>)> = vec![
        (
            with(&|d| d["format"] = json!("typeform")),
            "",
            vec!["format"],
        ),
        (with(&|d| d["version"] = json!(2)), "", vec!["version"]),
        (with(&|d| d["version"] = json!(-1)), "", vec!["version"]),
        (with(&|d| d["extra"] = json!(1)), "", vec!["extra"]),
        (
            with(&|d| {
                d.as_object_mut().unwrap().remove("questions");
            }),
            "",
            vec!["body"],
        ),
        (
            with(&|d| d["questions"][0]["colour"] = json!("red")),
            "",
            vec!["questions[0].colour"],
        ),
        (
            with(&|d| d["questions"][0]["type"] = json!("yes_no")),
            "",
            vec!["questions[0].type"],
        ),
        (
            with(&|d| d["questions"][9]["touchpoint"]["id"] = json!(p.touchpoint)),
            "",
            vec!["questions[9].touchpoint.id"],
        ),
        (
            with(&|d| d["questions"][2]["choice_factor_id"] = json!(p.factors[0])),
            "",
            vec!["questions[2].choice_factor_id"],
        ),
        // Links that do not resolve here.
        (
            with(&|d| d["questions"][2]["choice_factor"] = json!("Speed")),
            "",
            vec!["questions[2].choice_factor"],
        ),
        (
            with(&|d| d["questions"][2]["choice_factor"] = json!("price")),
            "",
            vec!["questions[2].choice_factor"],
        ),
        (
            with(&|d| d["questions"][9]["touchpoint"]["key"] = json!("teleport")),
            "",
            vec!["questions[9].touchpoint"],
        ),
        (
            with(&|d| d["questions"][9]["touchpoint"]["stage"] = json!("loyalty")),
            "",
            vec!["questions[9].touchpoint"],
        ),
        (
            with(&|d| d["questions"][2]["choice_factor"] = json!(" ")),
            "?create_missing_factors=true",
            vec!["questions[2].choice_factor"],
        ),
        // Links where the question's role has none, or none where it needs one.
        (
            with(&|d| {
                d["questions"][2]
                    .as_object_mut()
                    .unwrap()
                    .remove("choice_factor");
            }),
            "",
            vec!["questions[2].choice_factor"],
        ),
        (
            with(&|d| d["questions"][0]["choice_factor"] = json!("Price")),
            "",
            vec!["questions[0].choice_factor"],
        ),
        (
            with(&|d| d["questions"][1]["touchpoint"] = doc["questions"][9]["touchpoint"].clone()),
            "",
            vec!["questions[1].touchpoint"],
        ),
        // As creating a questionnaire checks it, everything at once; links
        // that do not resolve first.
        (
            with(&|d| {
                d["title"] = json!("");
                d["kind"] = json!("poll");
                d["questions"][1]["key"] = json!("city");
                d["questions"][0]["options"] = json!(["msk", "msk"]);
                d["questions"][3]["choice_factor"] = json!("Speed");
            }),
            "",
            vec![
                "questions[3].choice_factor",
                "title",
                "kind",
                "questions[0].options[1]",
                "questions[1].key",
            ],
        ),
        (with(&|d| d["questions"] = json!([])), "", vec!["questions"]),
        (json!("a document"), "", vec!["body"]),
        (doc.clone(), "?create_missing_factors=maybe", vec!["query"]),
    ];
    let before = (
        app.get(
            &format!("/api/v1/clients/{}/questionnaires", p.client),
            &t.token,
        )
        .await
        .body,
        app.get(
            &format!("/api/v1/clients/{}/choice-factors", p.client),
            &t.token,
        )
        .await
        .body,
    );
    for (body, query, fields) in &cases {
        let r = app
            .post(
                &format!("/api/v1/clients/{}/questionnaires/import{query}", p.client),
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
        assert_eq!(r.body["code"], "validation_failed");
        assert_eq!(&r.error_fields(), fields, "{body}{query}: {}", r.text);
    }
    // GraphQL names the fields of its `input` as it parses them.
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!, $d: JSON!) { importQuestionnaire(clientId: $c, input: $d) { id } }",
            json!({"c": p.client, "d": with(&|d| d["extra"] = json!(1))}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["field"], "input.extra",
        "{}",
        r.text
    );
    let after = (
        app.get(
            &format!("/api/v1/clients/{}/questionnaires", p.client),
            &t.token,
        )
        .await
        .body,
        app.get(
            &format!("/api/v1/clients/{}/choice-factors", p.client),
            &t.token,
        )
        .await
        .body,
    );
    assert_eq!(after, before, "nothing stored");
    // The unchanged document goes in.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/questionnaires/import", p.client),
            &t.token,
            doc,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn huge_bodies_get_413(mode: Mode) {
    let app = spawn_with(mode, |s| {
        s.body_limit_bytes = 64 * 1024;
        s.import_limit_bytes = 256 * 1024;
    })
    .await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let big_name = "x".repeat(100 * 1024);
    let r = app
        .post("/api/v1/clients", &t.token, json!({"name": big_name}))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["code"], "payload_too_large");
    let big_csv = tests::csv_rows("b", 10_000);
    assert!(big_csv.len() > 256 * 1024);
    let r = app
        .raw(
            Method::POST,
            &format!(
                "/api/v1/questionnaires/{}/responses/import",
                p.questionnaire
            ),
            Some(&t.token),
            "text/csv",
            big_csv,
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A questionnaire document is a JSON body like any other.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/questionnaires/import", p.client),
            &t.token,
            json!({"format": "growthpoint.questionnaire", "version": 1, "title": "Big", "kind": "brief",
                   "questions": [{"key": "a", "type": "text", "label": big_name}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    let r = app
        .graphql(
            Some(&t.token),
            &format!("{{ clients {{ items {{ id }} }} }} # {big_name}"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(count(&app, &t, &p.questionnaire).await, (0, 0));
}

/// U+0000 anywhere in a JSON body, REST or GraphQL, is a 422 naming the
/// field, never a database error.
async fn nul_characters_are_refused_with_the_field(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let r = app
        .raw(
            Method::POST,
            "/api/v1/clients",
            Some(&t.token),
            "application/json",
            r#"{"name": "Nul\u0000 Ltd"}"#,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["name"]);
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($name: String!) { createClient(input: {name: $name}) { id } }",
            json!({"name": "Nul\u{0} Ltd"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["variables.name"]);
    let clients = app.get("/api/v1/clients", &t.token).await;
    assert_eq!(clients.body["items"], json!([]), "nothing stored");
    let client = app
        .post("/api/v1/clients", &t.token, json!({"name": "Bistro"}))
        .await;
    let r = app
        .raw(
            Method::POST,
            &format!(
                "/api/v1/clients/{}/purchases/import",
                client.body["id"].as_str().unwrap()
            ),
            Some(&t.token),
            "text/csv",
            "customer_ref,purchased_at,amount,items,party_size\nc\u{0}1,2026-01-05T09:30:00Z,20,1,1\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["customer_ref"]);
}

both_modes!(
    nul_characters_are_refused_with_the_field,
    each_question_type_rejects_bad_answers,
    bad_imports_store_nothing,
    resource_inputs_are_validated,
    questionnaire_documents_are_validated_like_new_questionnaires,
    huge_bodies_get_413,
);
