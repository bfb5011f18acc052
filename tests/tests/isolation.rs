//! Tenant isolation: agency A, with its owner's JWT and with an all-scope API
//! key, gets 404 for every one of agency B's ids on every REST route (taken
//! from the OpenAPI document, so a new route cannot be forgotten) and every
//! GraphQL field; B's data is unchanged afterwards; A's lists never show B.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, panel, spawn_app};

struct BWorld {
    ids: HashMap<&'static str, String>,
}

async fn build_b(app: &TestApp, b: &Tenant) -> BWorld {
    let p = panel(app, b).await;
    let lib = app
        .get(
            &format!("/api/v1/touchpoint-libraries/{}", p.library),
            &b.token,
        )
        .await;
    let stage = lib.body["stages"][4]["id"].as_str().unwrap().to_owned();
    let segment = app
        .create(
            &format!("/api/v1/clients/{}/segments", p.client),
            &b.token,
            json!({"name": "Moscow", "filter": {"conditions": [{"question": "city", "values": ["msk"]}]}}),
        )
        .await;
    let hypothesis = app
        .create(
            &format!("/api/v1/clients/{}/hypotheses", p.client),
            &b.token,
            json!({"name": "Moscow promotes more", "questionnaire_id": p.questionnaire,
                   "segment": {"conditions": [{"question": "city", "values": ["msk"]}]},
                   "metric": {"kind": "nps"}, "direction": "greater"}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{}/responses", p.questionnaire),
            &b.token,
            json!({"external_id": "b1", "answers": {"city": "spb", "nps": 9}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    app.wait_for_summary(&b.token, &p.questionnaire, 1).await;
    let key = app
        .post(
            "/api/v1/api-keys",
            &b.token,
            json!({"name": "b key", "scopes": ["read"]}),
        )
        .await;
    let r = app
        .post("/api/v1/members", &b.token, json!({"email": format!("colleague-{}@b.example.com", uuid::Uuid::new_v4().simple()), "role": "viewer"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let members = app.get("/api/v1/members", &b.token).await;
    let membership = members.body["items"][0]["id"].as_str().unwrap().to_owned();
    let cash_model = app
        .create(
            &format!("/api/v1/clients/{}/cash-models", p.client),
            &b.token,
            cash_model_body(),
        )
        .await;
    for (path, body) in [
        (
            format!("/api/v1/cash-models/{cash_model}/actuals/2026-11"),
            json!({"traffic": 80}),
        ),
        (
            format!("/api/v1/cash-models/{cash_model}/channels/tv"),
            cash_channel_body(),
        ),
    ] {
        let r = app
            .call(Method::PUT, &path, Some(&b.token), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // Purchases and JTBD rules of B's client.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/purchases", p.client),
            &b.token,
            json!({"external_id": "bp1", "customer_ref": "c1", "purchased_at": "2026-11-02T12:00:00Z", "amount": 10, "items": 1, "party_size": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{}/jtbd-rules", p.client),
            Some(&b.token),
            Some(jtbd_rules_body()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Channel figures of B's client.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/channel-figures", p.client),
            &b.token,
            json!({"rows": [{"day": "2026-11-02", "channel": "rtb", "funnel": "reach", "spend": 100, "impressions": 5000, "clicks": 50}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // A fitness client whose falling audits raised UX alerts, and the
    // alert email to B's owner, sent (an .eml in the outbox) before A tries.
    let (audit_client, audit, _) = tests::mystery_audit(app, b, "en").await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&b.token),
            "text/csv",
            tests::audits_csv(&tests::FALLING),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&b.token, "client_ux", &audit_client, 1)
        .await;
    tests::wait_for_files(&app.settings.outbox_dir(), 1).await;
    let delivery = loop {
        let d = app.get("/api/v1/deliveries", &b.token).await;
        if d.body["items"][0]["status"] == "sent" {
            break d.body["items"][0]["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // A subscriber list with one imported subscriber and a draft campaign.
    let list = app
        .create(
            &format!("/api/v1/clients/{}/lists", p.client),
            &b.token,
            json!({"name": "News", "consent_text": "I agree to get news"}),
        )
        .await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/lists/{list}/subscribers/import"),
            Some(&b.token),
            "text/csv",
            "email,consent_source,city\nreader@b.example.com,shop form,msk\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let subs = app
        .get(&format!("/api/v1/lists/{list}/subscribers"), &b.token)
        .await;
    let subscriber = subs.body["items"][0]["id"].as_str().unwrap().to_owned();
    let campaign = app
        .create(
            &format!("/api/v1/clients/{}/campaigns", p.client),
            &b.token,
            json!({"list_id": list, "segment_id": segment, "name": "Nov", "subject": "Hi {{ subscriber.name }}",
                   "html": "<p>Hello</p>", "text": "Hello"}),
        )
        .await;
    // B's branding and digest settings.
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agency",
            Some(&b.token),
            Some(json!({"logo_url": "https://b.example.com/logo.png", "brand_colour": "#aa0000"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{}/digest-settings", p.client),
            Some(&b.token),
            Some(json!({"schedule": "monthly", "report_recipients": ["boss@b.example.com"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // B's own sender, with its own SMTP server.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{}/sender", p.client),
            Some(&b.token),
            Some(
                json!({"from_name": "B Shop", "from_address": "news@b.example.com",
                "reply_to": "help@b.example.com", "smtp_url": "smtp://b:secret@127.0.0.1:1"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A contact with rules, rescored by the worker before A tries: the
    // client's contacts target was bumped by the purchase, the subscriber
    // import, the contact and the rules.
    let contact = app
        .post(
            &format!("/api/v1/clients/{}/contacts", p.client),
            &b.token,
            json!({"email": "lead@b.example.com", "attributes": {"city": "msk"}, "customer_ref": "c9"}),
        )
        .await;
    assert_eq!(contact.status, StatusCode::OK, "{}", contact.text);
    let contact = contact.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{}/scoring", p.client),
            Some(&b.token),
            Some(scoring_body()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.wait_settled(b, "client_contacts", &p.client).await;
    // A paused chain (so nothing of B's moves while A tries).
    let chain = app
        .create(
            &format!("/api/v1/clients/{}/chains", p.client),
            &b.token,
            chain_body(&segment),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/chains/{chain}/pause"),
            &b.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.wait_settled(b, "client_contacts", &p.client).await;
    // A questionnaire response that gave the contact's e-mail, linked to it
    // as the contacts job links them (the response marked the job again).
    let brief = app
        .create(
            &format!("/api/v1/clients/{}/questionnaires", p.client),
            &b.token,
            json!({"title": "Lead form", "kind": "brief", "questions": [
                {"key": "mail", "type": "email"}, {"key": "city", "type": "single_choice", "options": ["msk", "spb"]}
            ]}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{brief}/responses"),
            &b.token,
            json!({"answers": {"mail": "Lead@B.example.com", "city": "msk"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Every write above that scores read bumped the contacts target (the
    // panel's responses too: it has an e-mail question); once the worker
    // is done, the response is linked to the contact.
    app.wait_settled(b, "client_contacts", &p.client).await;
    let r = app
        .get(&format!("/api/v1/contacts/{contact}/responses"), &b.token)
        .await;
    assert_eq!(
        r.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text
    );
    // A webhook endpoint (a public URL that does not resolve, so its
    // deliveries keep failing) with one delivery, attempted once before A
    // tries.
    let r = app
        .post(
            "/api/v1/webhooks",
            &b.token,
            json!({"url": "https://hooks.b.invalid/in", "description": "B's CRM"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let webhook = r.body["endpoint"]["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/webhooks/{webhook}/ping"),
            &b.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let webhook_delivery = r.body["id"].as_str().unwrap().to_owned();
    loop {
        let e = app
            .get(&format!("/api/v1/webhooks/{webhook}"), &b.token)
            .await;
        if !e.body["failing_since"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut ids = HashMap::new();
    ids.insert("webhook", webhook);
    ids.insert("webhook_delivery", webhook_delivery);
    ids.insert("chain", chain);
    ids.insert("contact", contact);
    ids.insert("list", list);
    ids.insert("subscriber", subscriber);
    ids.insert("campaign", campaign);
    ids.insert("audit_client", audit_client);
    ids.insert("delivery", delivery);
    ids.insert("client", p.client);
    ids.insert("factor", p.factors[0].clone());
    ids.insert("library", p.library);
    ids.insert("stage", stage);
    ids.insert("touchpoint", p.touchpoint);
    ids.insert("questionnaire", p.questionnaire);
    ids.insert("segment", segment);
    ids.insert("hypothesis", hypothesis);
    ids.insert(
        "api_key",
        key.body["api_key"]["id"].as_str().unwrap().to_owned(),
    );
    ids.insert("membership", membership);
    ids.insert("cash_model", cash_model);
    BWorld { ids }
}

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
        format!("/api/v1/clients/{}/cash-models", id("client")),
        format!("/api/v1/cash-models/{}", id("cash_model")),
        format!("/api/v1/cash-models/{}/actuals", id("cash_model")),
        format!("/api/v1/cash-models/{}/channels", id("cash_model")),
        format!("/api/v1/clients/{}/hypotheses", id("client")),
        format!("/api/v1/hypotheses/{}", id("hypothesis")),
        format!("/api/v1/clients/{}/purchases", id("client")),
        format!("/api/v1/clients/{}/customers/c1/purchases", id("client")),
        format!("/api/v1/clients/{}/jtbd-rules", id("client")),
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

fn fill(path: &str, w: &BWorld) -> String {
    let mut p = path.to_owned();
    let first = if p.starts_with("/api/v1/clients/") {
        "client"
    } else if p.starts_with("/api/v1/choice-factors/") {
        "factor"
    } else if p.starts_with("/api/v1/questionnaires/") {
        "questionnaire"
    } else if p.starts_with("/api/v1/segments/") {
        "segment"
    } else if p.starts_with("/api/v1/cash-models/") {
        "cash_model"
    } else if p.starts_with("/api/v1/hypotheses/") {
        "hypothesis"
    } else if p.starts_with("/api/v1/touchpoint-libraries/") {
        "library"
    } else if p.starts_with("/api/v1/api-keys/") {
        "api_key"
    } else if p.starts_with("/api/v1/members/") {
        "membership"
    } else if p.starts_with("/api/v1/deliveries/") {
        "delivery"
    } else if p.starts_with("/api/v1/lists/") {
        "list"
    } else if p.starts_with("/api/v1/subscribers/") {
        "subscriber"
    } else if p.starts_with("/api/v1/campaigns/") {
        "campaign"
    } else if p.starts_with("/api/v1/contacts/") {
        "contact"
    } else if p.starts_with("/api/v1/chains/") {
        "chain"
    } else if p.starts_with("/api/v1/webhooks/") {
        "webhook"
    } else {
        panic!("no B id for {path}: extend the isolation matrix")
    };
    p = p.replacen("{id}", &w.ids[first], 1);
    p = p.replace("{stage_id}", &w.ids["stage"]);
    p = p.replace("{touchpoint_id}", &w.ids["touchpoint"]);
    p = p.replace("{period}", "2026-11");
    p = p.replace("{channel}", "tv");
    p = p.replace("{customer_ref}", "c1");
    p = p.replace("{kind}", "ux_alerts");
    p = p.replace("{delivery_id}", &w.ids["webhook_delivery"]);
    assert!(!p.contains('{'), "unfilled parameter in {p}");
    p
}

/// A body that would be valid if the id were the caller's own.
fn body_for(method: &str, template: &str, w: &BWorld) -> Option<(String, &'static str)> {
    let json = |v: Value| Some((v.to_string(), "application/json"));
    match (method, template) {
        ("patch", "/api/v1/clients/{id}") => json(json!({"name": "Hacked"})),
        ("post", "/api/v1/clients/{id}/choice-factors")
        | ("put", "/api/v1/choice-factors/{id}") => json(json!({"name": "Hacked"})),
        ("post", "/api/v1/clients/{id}/questionnaires") => json(
            json!({"title": "x", "kind": "brief", "questions": [{"key": "a", "type": "text"}]}),
        ),
        ("patch", "/api/v1/questionnaires/{id}") => json(json!({"title": "Hacked"})),
        ("post", "/api/v1/clients/{id}/questionnaires/import") => json(questionnaire_document()),
        ("post", "/api/v1/questionnaires/{id}/responses") => {
            json(json!({"answers": {"city": "msk"}}))
        }
        ("post", "/api/v1/questionnaires/{id}/responses/import") => {
            Some(("city\nmsk\n".into(), "text/csv"))
        }
        ("post", "/api/v1/clients/{id}/segments") | ("put", "/api/v1/segments/{id}") => json(
            json!({"name": "x", "filter": {"conditions": [{"question": "city", "values": ["msk"]}]}}),
        ),
        ("post", "/api/v1/clients/{id}/hypotheses") | ("put", "/api/v1/hypotheses/{id}") => {
            json(json!({
                "name": "x", "questionnaire_id": w.ids["questionnaire"],
                "segment": {"conditions": [{"question": "city", "values": ["msk"]}]},
                "metric": {"kind": "nps"}, "direction": "greater"
            }))
        }
        ("post", "/api/v1/clients/{id}/cash-models") | ("put", "/api/v1/cash-models/{id}") => {
            json(cash_model_body())
        }
        ("put", "/api/v1/cash-models/{id}/actuals/{period}") => json(json!({"traffic": 1})),
        // B's client has channel figures for November: only the model's
        // tenancy stands between A and B's actuals.
        ("post", "/api/v1/cash-models/{id}/actuals/from-channels") => {
            json(json!({"period": "2026-11"}))
        }
        ("put", "/api/v1/cash-models/{id}/channels/{channel}") => json(cash_channel_body()),
        ("put", "/api/v1/clients/{id}/qfd/matrix") => json(json!({"cells": [], "importances": []})),
        ("post", "/api/v1/touchpoint-libraries/{id}/clone") => json(json!({})),
        ("post", "/api/v1/touchpoint-libraries/{id}/stages") => {
            json(json!({"key": "s", "name_en": "S", "name_ru": "С"}))
        }
        ("post", "/api/v1/touchpoint-libraries/{id}/touchpoints")
        | ("put", "/api/v1/touchpoint-libraries/{id}/touchpoints/{touchpoint_id}") => json(json!({
            "stage_id": w.ids["stage"], "key": "x", "name_en": "X", "name_ru": "Х", "channel": "online"
        })),
        ("patch", "/api/v1/members/{id}") => json(json!({"role": "viewer"})),
        ("post", "/api/v1/clients/{id}/purchases") => json(json!({
            "customer_ref": "c1", "purchased_at": "2026-11-02T12:00:00Z", "amount": 1, "items": 1, "party_size": 1
        })),
        ("post", "/api/v1/clients/{id}/purchases/import") => Some((
            "customer_ref,purchased_at,amount,items,party_size\nc1,2026-11-02T12:00:00Z,1,1,1\n"
                .into(),
            "text/csv",
        )),
        ("put", "/api/v1/clients/{id}/jtbd-rules") => json(jtbd_rules_body()),
        ("post", "/api/v1/clients/{id}/channel-figures") => json(json!({
            "rows": [{"day": "2026-11-02", "channel": "rtb", "funnel": "reach", "spend": 1}]
        })),
        ("post", "/api/v1/clients/{id}/channel-figures/import") => Some((
            "day,channel,funnel,spend\n2026-11-02,rtb,reach,1\n".into(),
            "text/csv",
        )),
        ("post", "/api/v1/clients/{id}/lists") | ("put", "/api/v1/lists/{id}") => {
            json(json!({"name": "Hacked", "consent_text": "x"}))
        }
        ("post", "/api/v1/lists/{id}/subscribers/import") => Some((
            "email,consent_source\nhacker@a.example.com,form\n".to_owned(),
            "text/csv",
        )),
        ("post", "/api/v1/clients/{id}/campaigns") => json(json!({
            "list_id": w.ids["list"], "name": "x", "subject": "x", "html": "<p>x</p>", "text": "x"
        })),
        ("patch", "/api/v1/clients/{id}/digest-settings") => {
            json(json!({"schedule": "off", "report_recipients": ["a@a.example.com"]}))
        }
        ("put", "/api/v1/clients/{id}/sender") => json(json!({
            "from_address": "hacker@a.example.com", "smtp_url": "smtp://a:a@127.0.0.1:2"
        })),
        ("post", "/api/v1/clients/{id}/sender/test") => json(json!({"to": "a@a.example.com"})),
        ("patch", "/api/v1/webhooks/{id}") => json(json!({"description": "Hacked"})),
        ("post", "/api/v1/campaigns/{id}/schedule") => json(json!({"at": "2099-01-01T00:00:00Z"})),
        ("post", "/api/v1/campaigns/{id}/test") => json(json!({"emails": ["a@a.example.com"]})),
        ("post", "/api/v1/clients/{id}/contacts") => {
            json(json!({"email": "lead@b.example.com", "name": "Hacked"}))
        }
        ("post", "/api/v1/clients/{id}/contacts/batch") => {
            json(json!({"contacts": [{"email": "lead@b.example.com", "name": "Hacked"}]}))
        }
        ("post", "/api/v1/clients/{id}/contacts/import") => Some((
            "email,name\nlead@b.example.com,Hacked\n".to_owned(),
            "text/csv",
        )),
        ("post", "/api/v1/contacts/{id}/outcome") => json(json!({"converted": true})),
        ("put", "/api/v1/clients/{id}/scoring") => json(json!({"rules": []})),
        ("post", "/api/v1/clients/{id}/chains") | ("put", "/api/v1/chains/{id}") => {
            json(chain_body(&w.ids["segment"]))
        }
        _ => None,
    }
}

/// A questionnaire document any client can take (no links).
fn questionnaire_document() -> Value {
    json!({"format": "growthpoint.questionnaire", "version": 1, "title": "x", "kind": "brief",
           "questions": [{"key": "a", "type": "text"}]})
}

fn chain_body(segment: &str) -> Value {
    json!({"name": "Warm-up", "kind": "segment", "segment_id": segment, "steps": [
        {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": 600}
    ]})
}

fn scoring_body() -> Value {
    json!({"rules": [{"name": "Moscow", "points": 40, "when": {"kind": "attr_equals", "key": "city", "value": "msk"}}]})
}

fn jtbd_rules_body() -> Value {
    json!({"rules": [{"label": "date", "party_size": {"min": 2, "max": 2}}]})
}

fn cash_params() -> Value {
    json!({
        "reach": 1000.0, "ctr": 0.1, "lead_rate": 0.2, "conversion": 0.5,
        "items_per_order": 1.0, "item_price": 100.0, "refusal_rate": 0.0,
        "repeat_purchases": 1.0, "repeat_uplift": 0.1, "gross_margin": 0.5,
        "marketing_cost": 1000.0
    })
}

fn cash_model_body() -> Value {
    json!({"name": "Plan", "scenarios": {"min": cash_params(), "base": cash_params(), "max": cash_params()}})
}

fn cash_channel_body() -> Value {
    json!({"metric": "orders", "days": [
        {"date": "2026-11-01", "value": 3, "channel_on": true},
        {"date": "2026-11-02", "value": 1, "channel_on": false}
    ]})
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
            "query($id: ID!) { hypotheses(clientId: $id) { id } }",
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
        .graphql(Some(&a.token), "{ clients(includeArchived: true) { items { id } } apiKeys { items { id } } members { items { id } } touchpointLibraries { items { id } } jobRuns { items { id } } webhookEndpoints { id } }", json!({}))
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
