//! Questionnaires moved as JSON documents: exported with links by name and
//! no ids, imported into a client of another agency with its links
//! resolved there (or refused, naming the question's field), the same
//! again through GraphQL, and a failed import storing nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{Mode, Panel, TEMPLATE_LIBRARY, Tenant, TestApp, both_modes, panel, spawn_app};

/// A client of `t` using a fresh clone of the template library, with
/// choice factors named `factors`: (client, library).
async fn client_with(app: &TestApp, t: &Tenant, factors: &[&str]) -> (String, String) {
    let lib = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{TEMPLATE_LIBRARY}/clone"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(lib.status, StatusCode::CREATED, "{}", lib.text);
    let library = lib.body["id"].as_str().unwrap().to_owned();
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Gym", "touchpoint_library_id": library}),
        )
        .await;
    for f in factors {
        app.create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": f}),
        )
        .await;
    }
    (client, library)
}

async fn export(app: &TestApp, t: &Tenant, questionnaire: &str) -> Value {
    let r = app
        .get(
            &format!("/api/v1/questionnaires/{questionnaire}/export"),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

/// What a client of `t` holds: its questionnaires and factors.
async fn holdings(app: &TestApp, t: &Tenant, client: &str) -> (Value, Value) {
    let q = app
        .get(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
        )
        .await;
    let f = app
        .get(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
        )
        .await;
    (q.body, f.body)
}

fn gql_fields(r: &Value) -> Vec<String> {
    r["errors"][0]["extensions"]["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| f["field"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn a_questionnaire_moves_to_another_agency_and_round_trips(mode: Mode) {
    let app = spawn_app(mode).await;
    let a = app.signup("Agency A").await;
    let b = app.signup("Agency B").await;
    let p: Panel = panel(&app, &a).await;

    // The export: format and version, every question in order, links by
    // name, and none of A's ids.
    let doc = export(&app, &a, &p.questionnaire).await;
    assert_eq!(doc["format"], "growthpoint.questionnaire");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["title"], "Customer panel");
    assert_eq!(doc["kind"], "customer_panel");
    let keys: Vec<&str> = doc["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "city",
            "source",
            "price",
            "location",
            "nps",
            "budget",
            "comment",
            "mail",
            "visit",
            "reception"
        ]
    );
    assert_eq!(
        doc["questions"][0],
        json!({"key": "city", "label": "city", "type": "single_choice", "role": "segment_attribute",
               "required": true, "options": ["msk", "spb"]})
    );
    assert_eq!(doc["questions"][2]["choice_factor"], "Price");
    assert_eq!(doc["questions"][3]["choice_factor"], "Location");
    assert_eq!(
        doc["questions"][5],
        json!({"key": "budget", "label": "budget", "type": "number", "role": "spend",
               "required": false, "min": 0.0, "max": 1000000.0})
    );
    assert_eq!(
        doc["questions"][9]["touchpoint"],
        json!({"stage": "need_formation", "key": "contextual_search_ads",
               "name_en": "Contextual search ads", "name_ru": "Контекстная реклама в поиске"})
    );
    let text = doc.to_string();
    for id in [
        &p.client,
        &p.library,
        &p.touchpoint,
        &p.questionnaire,
        &p.factors[0],
        &p.factors[1],
        &a.agency_id,
    ] {
        assert!(
            !text.contains(id.as_str()),
            "the document holds {id}: {text}"
        );
    }
    assert!(!text.contains("\"id\""), "{text}");

    // Into agency B's client, which has "Price" but not "Location": refused,
    // naming the question's field, and nothing stored.
    let (target, library) = client_with(&app, &b, &["Price"]).await;
    let before = holdings(&app, &b, &target).await;
    let path = format!("/api/v1/clients/{target}/questionnaires/import");
    let r = app.post(&path, &b.token, doc.clone()).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["questions[3].choice_factor"]);
    assert!(
        r.text.contains("create_missing_factors=true"),
        "says how: {}",
        r.text
    );
    assert_eq!(holdings(&app, &b, &target).await, before, "nothing stored");

    // With create_missing_factors: "Location" is created beside "Price",
    // and the questionnaire links B's own factors and touchpoint.
    let r = app
        .post(
            &format!("{path}?create_missing_factors=true"),
            &b.token,
            doc.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let imported = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["client_id"], target.as_str());
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["data_version"], 0);
    let factors = app
        .get(
            &format!("/api/v1/clients/{target}/choice-factors"),
            &b.token,
        )
        .await;
    let names: Vec<&str> = factors
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Price", "Location"]);
    let factor_ids: Vec<&str> = factors
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(r.body["questions"][2]["choice_factor_id"], factor_ids[0]);
    assert_eq!(r.body["questions"][3]["choice_factor_id"], factor_ids[1]);
    let lib = app
        .get(&format!("/api/v1/touchpoint-libraries/{library}"), &b.token)
        .await;
    assert_eq!(
        r.body["questions"][9]["touchpoint_id"],
        lib.body["stages"][0]["touchpoints"][0]["id"]
    );
    // Every other field as in A's questionnaire.
    let original = app
        .get(
            &format!("/api/v1/questionnaires/{}", p.questionnaire),
            &a.token,
        )
        .await;
    let strip = |qs: &Value| -> Value {
        Value::Array(
            qs.as_array()
                .unwrap()
                .iter()
                .map(|q| {
                    let mut q = q.clone();
                    q.as_object_mut().unwrap().remove("choice_factor_id");
                    q.as_object_mut().unwrap().remove("touchpoint_id");
                    q
                })
                .collect(),
        )
    };
    assert_eq!(
        strip(&r.body["questions"]),
        strip(&original.body["questions"])
    );

    // Export → import → export: the same document.
    assert_eq!(export(&app, &b, &imported).await, doc);

    // It takes responses like any questionnaire.
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{imported}/responses"),
            &b.token,
            json!({"answers": {"city": "spb", "price": 4, "reception": 5, "nps": 9}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // GraphQL: the same document, and an import into another of B's
    // clients, which already has both factors.
    let r = app
        .graphql(
            Some(&b.token),
            "query($id: ID!) { exportQuestionnaire(id: $id) }",
            json!({"id": imported}),
        )
        .await;
    assert_eq!(r.body["data"]["exportQuestionnaire"], doc, "{}", r.text);
    let (second, _) = client_with(&app, &b, &["Location", "Price"]).await;
    let r = app
        .graphql(
            Some(&b.token),
            "mutation($c: ID!, $d: JSON!) { importQuestionnaire(clientId: $c, input: $d) { id clientId title questions { key } } }",
            json!({"c": second, "d": doc}),
        )
        .await;
    let q = &r.body["data"]["importQuestionnaire"];
    assert_eq!(q["clientId"], second.as_str(), "{}", r.text);
    assert_eq!(q["questions"].as_array().unwrap().len(), 10);
    assert_eq!(export(&app, &b, q["id"].as_str().unwrap()).await, doc);
    let factors = app
        .get(
            &format!("/api/v1/clients/{second}/choice-factors"),
            &b.token,
        )
        .await;
    assert_eq!(factors.body.as_array().unwrap().len(), 2, "none created");
    // A missing factor through GraphQL: the same field, unless created.
    let (third, _) = client_with(&app, &b, &["Price"]).await;
    let import = "mutation($c: ID!, $d: JSON!, $m: Boolean!) { importQuestionnaire(clientId: $c, input: $d, createMissingFactors: $m) { id } }";
    let r = app
        .graphql(
            Some(&b.token),
            import,
            json!({"c": third, "d": doc, "m": false}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{}",
        r.text
    );
    assert_eq!(gql_fields(&r.body), ["questions[3].choice_factor"]);
    let r = app
        .graphql(
            Some(&b.token),
            import,
            json!({"c": third, "d": doc, "m": true}),
        )
        .await;
    assert!(
        r.body["data"]["importQuestionnaire"]["id"].is_string(),
        "{}",
        r.text
    );

    // A client without a touchpoint library of its own: B has three clones
    // of the template, so "need_formation/contextual_search_ads" names three
    // touchpoints and the client must choose its library.
    let bare = app
        .create("/api/v1/clients", &b.token, json!({"name": "Bare"}))
        .await;
    let r = app
        .post(
            &format!("/api/v1/clients/{bare}/questionnaires/import?create_missing_factors=true"),
            &b.token,
            doc.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["questions[9].touchpoint"]);
    assert!(r.text.contains("several touchpoints"), "{}", r.text);
    let (qs, factors) = holdings(&app, &b, &bare).await;
    assert_eq!(qs["items"], json!([]));
    assert_eq!(
        factors,
        json!([]),
        "the factors it would have created are not kept"
    );
    // Without that question it goes in, factors created.
    let mut no_tp = doc.clone();
    no_tp["questions"].as_array_mut().unwrap().pop();
    let r = app
        .post(
            &format!("/api/v1/clients/{bare}/questionnaires/import?create_missing_factors=true"),
            &b.token,
            no_tp.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        export(&app, &b, r.body["id"].as_str().unwrap()).await,
        no_tp
    );

    // Within one agency, into another client of A: the same.
    let (a_other, _) = client_with(&app, &a, &["Price", "Location"]).await;
    let r = app
        .post(
            &format!("/api/v1/clients/{a_other}/questionnaires/import"),
            &a.token,
            doc.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(export(&app, &a, r.body["id"].as_str().unwrap()).await, doc);
}

/// A document whose links all resolve (a factor to create among them) but
/// whose questions are invalid stores nothing — neither the questionnaire
/// nor the factor — and names every problem at once.
async fn a_failed_import_changes_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, _) = client_with(&app, &t, &["Price"]).await;
    let before = holdings(&app, &t, &client).await;
    let doc = json!({
        "format": "growthpoint.questionnaire", "version": 1, "title": "Exit poll", "kind": "non_buyer",
        "questions": [
            {"key": "speed", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor": "Speed"},
            {"key": "why", "type": "single_choice", "options": ["price", "price"], "role": "barrier"},
            {"key": "price", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor": "Price"},
            {"key": "site", "type": "rating_1_5", "role": "touchpoint_rating",
             "touchpoint": {"stage": "evaluation_choice", "key": "website"}}
        ]
    });
    let r = app
        .post(
            &format!("/api/v1/clients/{client}/questionnaires/import?create_missing_factors=true"),
            &t.token,
            doc.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), ["questions[1].options[1]"]);
    assert_eq!(
        holdings(&app, &t, &client).await,
        before,
        "no factor, no questionnaire"
    );
    // Fixed, it goes in whole: "Speed" created, "Price" reused.
    let mut fixed = doc.clone();
    fixed["questions"][1]["options"] = json!(["price", "service"]);
    let r = app
        .post(
            &format!("/api/v1/clients/{client}/questionnaires/import?create_missing_factors=true"),
            &t.token,
            fixed,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (_, factors) = holdings(&app, &t, &client).await;
    let names: Vec<&str> = factors
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Price", "Speed"]);
}

both_modes!(
    a_questionnaire_moves_to_another_agency_and_round_trips,
    a_failed_import_changes_nothing
);
