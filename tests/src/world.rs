//! A world of one agency with an id for every path parameter of the API,
//! and a valid body for every write route of the OpenAPI document: shared
//! by the isolation matrix (another agency's ids) and the audit walk (the
//! agency's own).
use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Tenant, TestApp, panel};

/// One agency's world: an id for every path parameter of the API.
pub struct World {
    pub ids: HashMap<&'static str, String>,
}

/// Builds a world of `b`'s own: a panel, every kind of resource, the
/// worker's results settled.
pub async fn build_world(app: &TestApp, b: &Tenant) -> World {
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
    // A non-buyer survey whose barrier question names a stage, answered
    // once, so B's client has barriers to hide.
    let non_buyer = app
        .create(
            &format!("/api/v1/clients/{}/questionnaires", p.client),
            &b.token,
            json!({"title": "Why not", "kind": "non_buyer", "questions": [
                {"key": "city", "type": "single_choice", "options": ["msk", "spb"]},
                {"key": "why_not", "type": "multi_choice", "role": "barrier", "options": ["price", "far"], "stage_id": stage}
            ]}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{non_buyer}/responses"),
            &b.token,
            json!({"external_id": "nb1", "answers": {"city": "msk", "why_not": ["price"]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
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
    let (audit_client, audit, _) = crate::mystery_audit(app, b, "en").await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&b.token),
            "text/csv",
            crate::audits_csv(&crate::FALLING),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&b.token, "client_ux", &audit_client, 1)
        .await;
    crate::wait_for_files(&app.settings.outbox_dir(), 1).await;
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
    // A webhook endpoint (a closed port on loopback, so its deliveries keep
    // failing) with one delivery, attempted once.
    let r = app
        .post(
            "/api/v1/webhooks",
            &b.token,
            json!({"url": "https://127.0.0.1:9/in", "description": "B's CRM"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let webhook = r.body["endpoint"]["id"].as_str().unwrap().to_owned();
    let webhook_secret = r.body["secret"].as_str().unwrap().to_owned();
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
    // A customer track of the Moscow segment with a note (the client has
    // no library yet: no steps), its parts stored by the worker.
    let track = app
        .create(
            &format!("/api/v1/clients/{}/tracks", p.client),
            &b.token,
            json!({"name": "Moscow families", "segment_id": segment}),
        )
        .await;
    let track_note = app
        .create(
            &format!("/api/v1/tracks/{track}/notes"),
            &b.token,
            json!({"text": "Asked about schools", "source": "sales_call", "date": "2026-11-20"}),
        )
        .await;
    app.wait_settled(b, "client_tracks", &p.client).await;
    let mut ids = HashMap::new();
    ids.insert("track", track);
    ids.insert("track_note", track_note);
    // A live report link of B's client.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/report-links", p.client),
            &b.token,
            json!({"label": "B's CEO"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let report_link = r.body["id"].as_str().unwrap().to_owned();
    let report_url = r.body["url"].as_str().unwrap().to_owned();
    ids.insert("report_link", report_link);
    ids.insert("report_url", report_url);
    ids.insert("webhook", webhook);
    ids.insert("webhook_secret", webhook_secret);
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
    World { ids }
}

/// `path` with the world's ids in place of its parameters.
pub fn fill(path: &str, w: &World) -> String {
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
    } else if p.starts_with("/api/v1/report-links/") {
        "report_link"
    } else if p.starts_with("/api/v1/tracks/") {
        "track"
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
    p = p.replace("{note_id}", &w.ids["track_note"]);
    assert!(!p.contains('{'), "unfilled parameter in {p}");
    p
}

/// A body that would be valid if the id were the caller's own.
pub fn body_for(method: &str, template: &str, w: &World) -> Option<(String, &'static str)> {
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
        ("post", "/api/v1/webhooks") => json(json!({"url": "https://127.0.0.1:9/walked"})),
        ("post", "/api/v1/clients/{id}/report-links") => {
            json(json!({"label": "Walked", "expires_in_days": 7}))
        }
        ("patch", "/api/v1/webhooks/{id}") => json(json!({"description": "Renamed"})),
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
        ("post", "/api/v1/clients/{id}/tracks") => {
            json(json!({"name": "x", "segment_id": w.ids["segment"]}))
        }
        ("patch", "/api/v1/tracks/{id}") => json(json!({"name": "Hacked"})),
        ("put", "/api/v1/tracks/{id}/steps") => json(json!({"steps": []})),
        ("post", "/api/v1/tracks/{id}/notes") => {
            json(json!({"text": "Hacked", "source": "other", "date": "2026-11-20"}))
        }
        _ => None,
    }
}

/// A questionnaire document any client can take (no links).
pub fn questionnaire_document() -> Value {
    json!({"format": "growthpoint.questionnaire", "version": 1, "title": "x", "kind": "brief",
           "questions": [{"key": "a", "type": "text"}]})
}

pub fn chain_body(segment: &str) -> Value {
    json!({"name": "Warm-up", "kind": "segment", "segment_id": segment, "steps": [
        {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "delay_minutes": 600}
    ]})
}

pub fn scoring_body() -> Value {
    json!({"rules": [{"name": "Moscow", "points": 40, "when": {"kind": "attr_equals", "key": "city", "value": "msk"}}]})
}

pub fn jtbd_rules_body() -> Value {
    json!({"rules": [{"label": "date", "party_size": {"min": 2, "max": 2}}]})
}

pub fn cash_params() -> Value {
    json!({
        "reach": 1000.0, "ctr": 0.1, "lead_rate": 0.2, "conversion": 0.5,
        "items_per_order": 1.0, "item_price": 100.0, "refusal_rate": 0.0,
        "repeat_purchases": 1.0, "repeat_uplift": 0.1, "gross_margin": 0.5,
        "marketing_cost": 1000.0
    })
}

pub fn cash_model_body() -> Value {
    json!({"name": "Plan", "scenarios": {"min": cash_params(), "base": cash_params(), "max": cash_params()}})
}

pub fn cash_channel_body() -> Value {
    json!({"metric": "orders", "days": [
        {"date": "2026-11-01", "value": 3, "channel_on": true},
        {"date": "2026-11-02", "value": 1, "channel_on": false}
    ]})
}
