//! Tenant isolation: agency A, with its owner's JWT and with an all-scope API
//! key, gets 404 for every one of agency B's ids on every REST route (taken
//! from the OpenAPI document, so a new route cannot be forgotten) and every
//! GraphQL field; B's data is unchanged afterwards; A's lists never show B.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::world::{
    World as BWorld, body_for, build_world as build_b, fill, questionnaire_document,
};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

/// Everything B can see of itself, to compare before and after.
async fn b_state(app: &TestApp, b: &Tenant, w: &BWorld) -> Value {
    let id = |k: &str| w.ids[k].clone();
    let mut out = serde_json::Map::new();
    for path in [
        format!("/api/v1/clients/{}", id("client")),
        "/api/v1/clients?include_archived=true".to_owned(),
        format!("/api/v1/clients/{}/choice-factors", id("client")),
        format!("/api/v1/touchpoint-libraries/{}", id("library")),
        "/api/v1/touchpoint-libraries".to_owned(),
        format!("/api/v1/clients/{}/questionnaires", id("client")),
        format!("/api/v1/questionnaires/{}", id("questionnaire")),
        format!("/api/v1/questionnaires/{}/export", id("questionnaire")),
        format!("/api/v1/questionnaires/{}/responses", id("questionnaire")),
        format!("/api/v1/questionnaires/{}/summary", id("questionnaire")),
        format!("/api/v1/clients/{}/segments", id("client")),
        format!("/api/v1/segments/{}", id("segment")),
        format!("/api/v1/clients/{}/tracks", id("client")),
        format!("/api/v1/clients/{}/cash-models", id("client")),
        format!("/api/v1/cash-models/{}", id("cash_model")),
        format!("/api/v1/cash-models/{}/actuals", id("cash_model")),
        format!("/api/v1/cash-models/{}/channels", id("cash_model")),
        format!("/api/v1/clients/{}/hypotheses", id("client")),
        format!("/api/v1/hypotheses/{}", id("hypothesis")),
        format!("/api/v1/clients/{}/purchases", id("client")),
        format!("/api/v1/clients/{}/customers/c1/purchases", id("client")),
        format!("/api/v1/clients/{}/jtbd-rules", id("client")),
        format!("/api/v1/clients/{}/barriers", id("client")),
        format!("/api/v1/clients/{}/jtbd?as_of=2026-11-30", id("client")),
        format!(
            "/api/v1/clients/{}/channel-figures?from=2026-11-01&to=2026-11-30",
            id("client")
        ),
        format!(
            "/api/v1/clients/{}/channel-report?from=2026-11-01&to=2026-11-30",
            id("client")
        ),
        "/api/v1/api-keys".to_owned(),
        "/api/v1/members".to_owned(),
        format!("/api/v1/clients/{}/ux-alerts", id("audit_client")),
        "/api/v1/deliveries".to_owned(),
        format!("/api/v1/deliveries/{}", id("delivery")),
        format!("/api/v1/clients/{}/lists", id("client")),
        format!("/api/v1/lists/{}", id("list")),
        format!("/api/v1/lists/{}/subscribers", id("list")),
        format!("/api/v1/subscribers/{}/export", id("subscriber")),
        format!("/api/v1/clients/{}/campaigns", id("client")),
        format!("/api/v1/campaigns/{}", id("campaign")),
        format!("/api/v1/campaigns/{}/stats", id("campaign")),
        format!("/api/v1/clients/{}/digest-settings", id("client")),
        format!("/api/v1/clients/{}/sender", id("client")),
        "/api/v1/webhooks".to_owned(),
        format!("/api/v1/webhooks/{}", id("webhook")),
        format!("/api/v1/clients/{}/report-links", id("client")),
        "/api/v1/agency".to_owned(),
        format!("/api/v1/clients/{}/contacts", id("client")),
        format!("/api/v1/contacts/{}", id("contact")),
        format!("/api/v1/contacts/{}/responses", id("contact")),
        format!("/api/v1/clients/{}/scoring", id("client")),
        format!("/api/v1/clients/{}/scoring/model", id("client")),
        format!("/api/v1/segments/{}/contact-count", id("segment")),
        format!("/api/v1/clients/{}/chains", id("client")),
        format!("/api/v1/chains/{}", id("chain")),
        format!("/api/v1/chains/{}/stats", id("chain")),
        format!("/api/v1/chains/{}/enrolments", id("chain")),
        format!(
            "/api/v1/clients/{}/funnel-report?from=2026-11-01&to=2026-11-30",
            id("client")
        ),
    ] {
        let r = app.get(&path, &b.token).await;
        assert_eq!(r.status, StatusCode::OK, "B reads {path}: {}", r.text);
        out.insert(path, without_computed_at(r.body));
    }
    Value::Object(out)
}

/// Results computed on read carry the time they were computed; that is not
/// B's data.
fn without_computed_at(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "computed_at")
                .map(|(k, v)| (k, without_computed_at(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_computed_at).collect()),
        other => other,
    }
}

/// The same model as GraphQL input.
fn cash_model_gql() -> Value {
    let p = json!({
        "reach": 1000.0, "ctr": 0.1, "leadRate": 0.2, "conversion": 0.5,
        "itemsPerOrder": 1.0, "itemPrice": 100.0, "refusalRate": 0.0,
        "repeatPurchases": 1.0, "repeatUplift": 0.1, "grossMargin": 0.5,
        "marketingCost": 1000.0
    });
    json!({"name": "Plan", "scenarios": {"min": p, "base": p, "max": p}})
}

/// A client of `t`'s own with a subscriber list: (client, list).
async fn client_and_list(app: &TestApp, t: &Tenant) -> (String, String) {
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Mine"}))
        .await;
    let list = app
        .create(
            &format!("/api/v1/clients/{client}/lists"),
            &t.token,
            json!({"name": "Mine", "consent_text": "ok"}),
        )
        .await;
    (client, list)
}

async fn every_rest_route_hides_other_agencies(mode: Mode) {
    let app = spawn_app(mode).await;
    let a = app.signup("Agency A").await;
    let b = app.signup("Agency B").await;
    let w = build_b(&app, &b).await;
    let a_key = app.api_key(&a.token, &["read", "write", "ingest"]).await;
    let before = b_state(&app, &b, &w).await;

    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let mut checked = 0;
    for (template, ops) in doc["paths"].as_object().unwrap() {
        // Public endpoints (subscribe, confirm, unsubscribe) take no
        // credentials by design; tests/newsletters.rs covers them.
        if !template.contains('{') || template.starts_with("/api/v1/public/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let path = fill(template, &w);
            for (who, cred) in [("A's JWT", &a.token), ("A's API key", &a_key)] {
                let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let r = match body_for(method, template, &w) {
                    Some((body, ct)) => app.raw(m, &path, Some(cred), ct, body).await,
                    None => app.call(m, &path, Some(cred), None).await,
                };
                assert_eq!(
                    r.status,
                    StatusCode::NOT_FOUND,
                    "{who}: {} {template}: {}",
                    method.to_uppercase(),
                    r.text
                );
                assert_eq!(r.body["code"], "not_found");
                checked += 1;
            }
        }
    }
    // 36 routes with ids today, each with a JWT and an API key.
    assert!(checked >= 72, "only {checked} route checks");
    assert_eq!(b_state(&app, &b, &w).await, before, "B's data changed");

    // A's lists never show B's rows.
    for path in [
        "/api/v1/clients?include_archived=true",
        "/api/v1/api-keys",
        "/api/v1/members",
        "/api/v1/jobs",
        "/api/v1/touchpoint-libraries",
        "/api/v1/deliveries",
        "/api/v1/webhooks",
        "/api/v1/audit-log?limit=200",
    ] {
        let r = app.get(path, &a.token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        for id in w.ids.values() {
            assert!(!r.text.contains(id.as_str()), "{path} shows B's {id}");
        }
    }
    // B's ids cannot be referenced from A's own resources.
    let r = app
        .post(
            "/api/v1/clients",
            &a.token,
            json!({"name": "X", "touchpoint_library_id": w.ids["library"]}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["touchpoint_library_id".to_owned()]
        )
    );
    let (a_client, a_list) = client_and_list(&app, &a).await;
    let r = app
        .post(
            &format!("/api/v1/clients/{a_client}/campaigns"),
            &a.token,
            json!({"list_id": a_list, "segment_id": w.ids["segment"], "name": "x", "subject": "x", "html": "<p>x</p>", "text": "x"}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "another agency's segment: {}",
        r.text
    );
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agency",
            Some(&a.token),
            Some(json!({"name": "A renamed", "brand_colour": "#00aa00"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(b_state(&app, &b, &w).await, before, "B's data changed");
    let r = app
        .post(
            &format!("/api/v1/clients/{a_client}/questionnaires"),
            &a.token,
            json!({"title": "x", "kind": "customer_panel", "questions": [
                {"key": "f", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": w.ids["factor"]},
                {"key": "t", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": w.ids["touchpoint"]}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.error_fields(),
        [
            "questions[0].choice_factor_id",
            "questions[1].touchpoint_id"
        ]
    );
    // B's questionnaire, exported by B, goes into A's own client only by
    // A's own factors and library: B's are never found by name.
    let doc = app
        .get(
            &format!("/api/v1/questionnaires/{}/export", w.ids["questionnaire"]),
            &b.token,
        )
        .await
        .body;
    let r = app
        .post(
            &format!("/api/v1/clients/{a_client}/questionnaires/import"),
            &a.token,
            doc,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.error_fields(),
        [
            "questions[2].choice_factor",
            "questions[3].choice_factor",
            "questions[9].touchpoint"
        ]
    );
    assert_eq!(b_state(&app, &b, &w).await, before, "B's data changed");
}

async fn every_graphql_field_hides_other_agencies(mode: Mode) {
    let app = spawn_app(mode).await;
    let a = app.signup("Agency A").await;
    let b = app.signup("Agency B").await;
    let w = build_b(&app, &b).await;
    let a_key = app.api_key(&a.token, &["read", "write", "ingest"]).await;
    let before = b_state(&app, &b, &w).await;
    let id = |k: &str| w.ids[k].clone();
    let seg = json!({"conditions": [{"question": "city", "values": ["msk"]}]});
    let cases: Vec<(&str, Value)> = vec![
        (
            "query($id: ID!) { client(id: $id) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { touchpointLibrary(id: $id) { id } }",
            json!({"id": id("library")}),
        ),
        (
            "query($id: ID!) { choiceFactors(clientId: $id) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { questionnaires(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { questionnaire(id: $id) { id } }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "query($id: ID!) { questionnaireSummary(id: $id) { dataVersion } }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "query($id: ID!) { responses(questionnaireId: $id) { items { id } } }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "query($id: ID!) { segments(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { segment(id: $id) { id } }",
            json!({"id": id("segment")}),
        ),
        (
            "query($id: ID!) { qfdMatrix(clientId: $id) { clientId } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { uxMap(clientId: $id) { asOf } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { uxAlerts(clientId: $id) { items { id } } }",
            json!({"id": id("audit_client")}),
        ),
        (
            "query($id: ID!) { delivery(id: $id) { id } }",
            json!({"id": id("delivery")}),
        ),
        (
            "query($id: ID!) { qfd(clientId: $id) { clientId } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { updateQfdMatrix(clientId: $id, input: {cells: []}) { clientId } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { cashModels(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { cashModel(id: $id) { id } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "query($id: ID!) { cashActuals(modelId: $id) { period } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "query($id: ID!) { cashChannels(modelId: $id) { name } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "query($id: ID!) { cashResults(id: $id) { modelId } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "mutation($id: ID!, $i: CashModelInput!) { createCashModel(clientId: $id, input: $i) { id } }",
            json!({"id": id("client"), "i": cash_model_gql()}),
        ),
        (
            "mutation($id: ID!, $i: CashModelInput!) { updateCashModel(id: $id, input: $i) { id } }",
            json!({"id": id("cash_model"), "i": cash_model_gql()}),
        ),
        (
            "mutation($id: ID!) { deleteCashModel(id: $id) }",
            json!({"id": id("cash_model")}),
        ),
        (
            "mutation($id: ID!) { putCashActuals(modelId: $id, period: \"2026-11\", input: {traffic: 1}) { period } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "mutation($id: ID!) { takeCashActualsFromChannels(modelId: $id, input: {period: \"2026-11\"}) { changed } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "mutation($id: ID!) { deleteCashActuals(modelId: $id, period: \"2026-11\") }",
            json!({"id": id("cash_model")}),
        ),
        (
            "mutation($id: ID!) { putCashChannel(modelId: $id, channel: \"tv\", input: {metric: \"orders\", days: [{date: \"2026-11-01\", value: 1, channelOn: true}]}) { name } }",
            json!({"id": id("cash_model")}),
        ),
        (
            "mutation($id: ID!) { deleteCashChannel(modelId: $id, channel: \"tv\") }",
            json!({"id": id("cash_model")}),
        ),
        (
            "query($id: ID!) { tracks(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { track(id: $id) { id computed { dataVersion } } }",
            json!({"id": id("track")}),
        ),
        (
            "query($id: ID!) { compareTracks(a: $id, b: $id) { a { id } } }",
            json!({"id": id("track")}),
        ),
        (
            "mutation($id: ID!, $i: JSON!) { createTrack(clientId: $id, input: $i) { id } }",
            json!({"id": id("client"), "i": {"name": "x", "segment_id": id("segment")}}),
        ),
        (
            "mutation($id: ID!) { updateTrack(id: $id, input: {name: \"Hacked\"}) { id } }",
            json!({"id": id("track")}),
        ),
        (
            "mutation($id: ID!) { putTrackSteps(id: $id, input: {steps: []}) { id } }",
            json!({"id": id("track")}),
        ),
        (
            "mutation($id: ID!) { addTrackNote(trackId: $id, input: {text: \"x\", source: \"other\", date: \"2026-11-20\"}) { id } }",
            json!({"id": id("track")}),
        ),
        (
            "mutation($id: ID!, $n: ID!) { deleteTrackNote(trackId: $id, noteId: $n) }",
            json!({"id": id("track"), "n": id("track_note")}),
        ),
        (
            "mutation($id: ID!) { deleteTrack(id: $id) }",
            json!({"id": id("track")}),
        ),
        (
            "query($id: ID!) { hypotheses(clientId: $id) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { clientBarriers(clientId: $id) { dataVersion } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { hypothesesResults(clientId: $id) { dataVersion } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!, $i: JSON!) { createHypothesis(clientId: $id, input: $i) { id } }",
            json!({"id": id("client"), "i": {"name": "x", "questionnaire_id": id("questionnaire"), "segment": seg, "metric": {"kind": "nps"}, "direction": "greater"}}),
        ),
        (
            "mutation($id: ID!, $i: JSON!) { updateHypothesis(id: $id, input: $i) { id } }",
            json!({"id": id("hypothesis"), "i": {"name": "x", "questionnaire_id": id("questionnaire"), "segment": seg, "metric": {"kind": "nps"}, "direction": "greater"}}),
        ),
        (
            "mutation($id: ID!) { deleteHypothesis(id: $id) }",
            json!({"id": id("hypothesis")}),
        ),
        (
            "mutation($id: ID!) { updateClient(id: $id, input: {name: \"H\"}) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { archiveClient(id: $id) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { unarchiveClient(id: $id) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { deleteClient(id: $id) }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { cloneTouchpointLibrary(id: $id) { id } }",
            json!({"id": id("library")}),
        ),
        (
            "mutation($id: ID!) { deleteTouchpointLibrary(id: $id) }",
            json!({"id": id("library")}),
        ),
        (
            "mutation($id: ID!) { addStage(libraryId: $id, input: {key: \"s\", nameEn: \"S\", nameRu: \"С\"}) { id } }",
            json!({"id": id("library")}),
        ),
        (
            "mutation($id: ID!, $s: ID!) { deleteStage(libraryId: $id, stageId: $s) }",
            json!({"id": id("library"), "s": id("stage")}),
        ),
        (
            "mutation($id: ID!, $s: ID!) { addTouchpoint(libraryId: $id, input: {stageId: $s, key: \"x\", nameEn: \"X\", nameRu: \"Х\", channel: \"online\"}) { id } }",
            json!({"id": id("library"), "s": id("stage")}),
        ),
        (
            "mutation($id: ID!, $s: ID!, $t: ID!) { updateTouchpoint(libraryId: $id, touchpointId: $t, input: {stageId: $s, key: \"x\", nameEn: \"X\", nameRu: \"Х\", channel: \"online\"}) { id } }",
            json!({"id": id("library"), "s": id("stage"), "t": id("touchpoint")}),
        ),
        (
            "mutation($id: ID!, $t: ID!) { deleteTouchpoint(libraryId: $id, touchpointId: $t) }",
            json!({"id": id("library"), "t": id("touchpoint")}),
        ),
        (
            "mutation($id: ID!) { createChoiceFactor(clientId: $id, input: {name: \"H\"}) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { updateChoiceFactor(id: $id, input: {name: \"H\"}) { id } }",
            json!({"id": id("factor")}),
        ),
        (
            "mutation($id: ID!) { deleteChoiceFactor(id: $id) }",
            json!({"id": id("factor")}),
        ),
        (
            "mutation($id: ID!) { createQuestionnaire(clientId: $id, input: {title: \"x\", kind: \"brief\", questions: [{key: \"a\", type: TEXT}]}) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { exportQuestionnaire(id: $id) }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "mutation($id: ID!, $d: JSON!) { importQuestionnaire(clientId: $id, input: $d) { id } }",
            json!({"id": id("client"), "d": questionnaire_document()}),
        ),
        (
            "mutation($id: ID!, $d: JSON!) { importQuestionnaire(clientId: $id, input: $d, createMissingFactors: true) { id } }",
            json!({"id": id("client"), "d": questionnaire_document()}),
        ),
        (
            "mutation($id: ID!) { updateQuestionnaire(id: $id, input: {title: \"H\"}) { id } }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "mutation($id: ID!) { archiveQuestionnaire(id: $id) { id } }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "mutation($id: ID!) { submitResponse(questionnaireId: $id, answers: {city: \"msk\"}) { inserted } }",
            json!({"id": id("questionnaire")}),
        ),
        (
            "mutation($id: ID!, $f: JSON!) { createSegment(clientId: $id, name: \"x\", filter: $f) { id } }",
            json!({"id": id("client"), "f": seg}),
        ),
        (
            "mutation($id: ID!, $f: JSON!) { updateSegment(id: $id, name: \"x\", filter: $f) { id } }",
            json!({"id": id("segment"), "f": seg}),
        ),
        (
            "mutation($id: ID!) { deleteSegment(id: $id) }",
            json!({"id": id("segment")}),
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { id } }",
            json!({"id": id("api_key")}),
        ),
        (
            "mutation($id: ID!) { changeMemberRole(id: $id, role: VIEWER) { id } }",
            json!({"id": id("membership")}),
        ),
        (
            "mutation($id: ID!) { removeMember(id: $id) }",
            json!({"id": id("membership")}),
        ),
        (
            "query($id: ID!) { purchases(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { customerPurchases(clientId: $id, customerRef: \"c1\") { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { jtbdRules(clientId: $id) { labels } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { jtbdResults(clientId: $id, asOf: \"2026-11-30\") { purchases } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { submitPurchase(clientId: $id, input: {customerRef: \"c1\", purchasedAt: \"2026-11-02T12:00:00Z\", amount: 1, items: 1, partySize: 1}) { inserted } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { putJtbdRules(clientId: $id, rules: [{label: \"x\"}]) { labels } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { channelReport(clientId: $id, from: \"2026-11-01\", to: \"2026-11-30\") { total { spend } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { channelFigures(clientId: $id, from: \"2026-11-01\", to: \"2026-11-30\") { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { putChannelFigures(clientId: $id, rows: [{day: \"2026-11-02\", channel: \"rtb\", funnel: REACH, spend: 1}]) { stored } }",
            json!({"id": id("client")}),
        ),
        // The email product.
        (
            "query($id: ID!) { lists(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { list(id: $id) { id } }",
            json!({"id": id("list")}),
        ),
        (
            "query($id: ID!) { subscribers(listId: $id) { items { id list { id } } } }",
            json!({"id": id("list")}),
        ),
        (
            "query($id: ID!) { subscriberExport(id: $id) { subscriber { id } } }",
            json!({"id": id("subscriber")}),
        ),
        (
            "query($id: ID!) { campaigns(clientId: $id) { items { id list { id } segment { id } stats { total } } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { campaign(id: $id) { id list { id } stats { total } } }",
            json!({"id": id("campaign")}),
        ),
        (
            "query($id: ID!) { campaignStats(id: $id) { total } }",
            json!({"id": id("campaign")}),
        ),
        (
            "query($id: ID!) { campaignLinks(id: $id) { url } }",
            json!({"id": id("campaign")}),
        ),
        (
            "query($id: ID!) { emailPreview(clientId: $id, kind: \"digest\") { subject } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { emailPreview(clientId: $id, kind: \"ux_alerts\") { subject } }",
            json!({"id": id("audit_client")}),
        ),
        (
            "query($id: ID!) { digestSettings(clientId: $id) { schedule } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { createList(clientId: $id, input: {name: \"H\", consentText: \"x\"}) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { updateList(id: $id, input: {name: \"H\", consentText: \"x\"}) { id } }",
            json!({"id": id("list")}),
        ),
        (
            "mutation($id: ID!) { eraseSubscriber(id: $id) }",
            json!({"id": id("subscriber")}),
        ),
        (
            "mutation($id: ID!, $l: UUID!) { createCampaign(clientId: $id, input: {listId: $l, name: \"x\", subject: \"x\", html: \"x\", text: \"x\"}) { id } }",
            json!({"id": id("client"), "l": id("list")}),
        ),
        (
            "mutation($id: ID!) { sendCampaign(id: $id) { id } }",
            json!({"id": id("campaign")}),
        ),
        (
            "mutation($id: ID!) { scheduleCampaign(id: $id, at: \"2099-01-01T00:00:00Z\") { id } }",
            json!({"id": id("campaign")}),
        ),
        (
            "mutation($id: ID!) { cancelCampaign(id: $id) { id } }",
            json!({"id": id("campaign")}),
        ),
        (
            "mutation($id: ID!) { testSendCampaign(id: $id, emails: [\"a@a.example.com\"]) { id } }",
            json!({"id": id("campaign")}),
        ),
        (
            "mutation($id: ID!) { sendDigestNow(clientId: $id) }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { updateDigestSettings(clientId: $id, input: {schedule: \"off\"}) { schedule } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { clientSender(clientId: $id) { fromAddress } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { setClientSender(clientId: $id, input: {fromAddress: \"hacker@a.example.com\", clearSmtpUrl: true}) { fromAddress } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { deleteClientSender(clientId: $id) }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { testClientSender(clientId: $id, input: {to: \"a@a.example.com\"}) { delivered } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { contacts(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { contact(id: $id) { id } }",
            json!({"id": id("contact")}),
        ),
        (
            "query($id: ID!) { contactResponses(contactId: $id) { items { id } } }",
            json!({"id": id("contact")}),
        ),
        (
            "query($id: ID!) { segmentContactCount(segmentId: $id) }",
            json!({"id": id("segment")}),
        ),
        (
            "query($id: ID!) { scoring(clientId: $id) { lambda } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { contactModel(clientId: $id) { trained } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { putContact(clientId: $id, input: {email: \"lead@b.example.com\", name: \"H\"}) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { putContacts(clientId: $id, contacts: [{email: \"lead@b.example.com\", name: \"H\"}]) { created } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { recordOutcome(id: $id, input: {converted: true}) { id } }",
            json!({"id": id("contact")}),
        ),
        (
            "mutation($id: ID!) { deleteContact(id: $id) }",
            json!({"id": id("contact")}),
        ),
        (
            "mutation($id: ID!) { putScoring(clientId: $id, rules: []) { lambda } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { funnelReport(clientId: $id) { from } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { chains(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "query($id: ID!) { chain(id: $id) { id } }",
            json!({"id": id("chain")}),
        ),
        (
            "query($id: ID!) { chainStats(id: $id) { enrolled } }",
            json!({"id": id("chain")}),
        ),
        (
            "query($id: ID!) { chainEnrolments(id: $id) { items { id } } }",
            json!({"id": id("chain")}),
        ),
        (
            "mutation($id: ID!, $s: UUID!) { createChain(clientId: $id, input: {name: \"x\", kind: SEGMENT, segmentId: $s, steps: [{subject: \"x\", html: \"x\", text: \"x\", delayMinutes: 600}]}) { id } }",
            json!({"id": id("client"), "s": id("segment")}),
        ),
        (
            "mutation($id: ID!, $s: UUID!) { updateChain(id: $id, input: {name: \"x\", kind: SEGMENT, segmentId: $s, steps: [{subject: \"x\", html: \"x\", text: \"x\", delayMinutes: 600}]}) { id } }",
            json!({"id": id("chain"), "s": id("segment")}),
        ),
        (
            "query($id: ID!) { webhookEndpoint(id: $id) { id } }",
            json!({"id": id("webhook")}),
        ),
        (
            "query($id: ID!) { webhookDeliveries(endpointId: $id) { items { id } } }",
            json!({"id": id("webhook")}),
        ),
        (
            "mutation($id: ID!) { updateWebhookEndpoint(id: $id, input: {description: \"H\"}) { id } }",
            json!({"id": id("webhook")}),
        ),
        (
            "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) }",
            json!({"id": id("webhook")}),
        ),
        (
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret } }",
            json!({"id": id("webhook")}),
        ),
        (
            "mutation($id: ID!) { pingWebhookEndpoint(id: $id) { id } }",
            json!({"id": id("webhook")}),
        ),
        (
            "mutation($id: ID!, $d: ID!) { resendWebhookDelivery(endpointId: $id, deliveryId: $d) { id } }",
            json!({"id": id("webhook"), "d": id("webhook_delivery")}),
        ),
        (
            "query($id: ID!) { reportLinks(clientId: $id) { items { id } } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { createReportLink(clientId: $id, input: {label: \"H\"}) { id } }",
            json!({"id": id("client")}),
        ),
        (
            "mutation($id: ID!) { revokeReportLink(id: $id) { id } }",
            json!({"id": id("report_link")}),
        ),
        (
            "mutation($id: ID!) { pauseChain(id: $id) { id } }",
            json!({"id": id("chain")}),
        ),
        (
            "mutation($id: ID!) { resumeChain(id: $id) { id } }",
            json!({"id": id("chain")}),
        ),
    ];
    for (query, vars) in &cases {
        for (who, cred) in [("A's JWT", &a.token), ("A's API key", &a_key)] {
            let r = app.graphql(Some(cred), query, vars.clone()).await;
            assert_eq!(
                r.body["errors"][0]["extensions"]["code"], "NOT_FOUND",
                "{who}: {query}: {}",
                r.text
            );
        }
    }
    // A's own campaign cannot take B's segment; A's branding is A's alone.
    let (a_client, a_list) = client_and_list(&app, &a).await;
    let r = app
        .graphql(
            Some(&a.token),
            "mutation($c: ID!, $l: UUID!, $s: UUID!) { createCampaign(clientId: $c, input: {listId: $l, segmentId: $s, name: \"x\", subject: \"x\", html: \"x\", text: \"x\"}) { id } }",
            json!({"c": a_client, "l": a_list, "s": id("segment")}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&a.token),
            "mutation { updateAgencySettings(input: {name: \"A renamed\", logoUrl: \"https://a.example.com/l.png\"}) { name logoUrl brandColour } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.body["data"]["updateAgencySettings"]["name"], "A renamed",
        "{}",
        r.text
    );
    let r = app
        .graphql(Some(&a.token), "{ agencySettings { id name } }", json!({}))
        .await;
    assert_eq!(
        r.body["data"]["agencySettings"]["id"],
        a.agency_id.as_str(),
        "{}",
        r.text
    );
    assert_eq!(b_state(&app, &b, &w).await, before, "B's data changed");
    // Lists over GraphQL show only A's rows.
    let r = app
        .graphql(Some(&a.token), "{ clients(includeArchived: true) { items { id } } apiKeys { items { id } } members { items { id } } touchpointLibraries { items { id } } jobRuns { items { id } } auditLog(first: 100) { items { id resourceId } } webhookEndpoints { id } }", json!({}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    for id in w.ids.values() {
        assert!(!r.text.contains(id.as_str()), "GraphQL lists show B's {id}");
    }
}

both_modes!(
    every_rest_route_hides_other_agencies,
    every_graphql_field_hides_other_agencies
);
