//! Contacts and their qualification (analytics.md §7) over REST and
//! GraphQL: upserts by e-mail that change nothing when re-sent, bulk
//! imports validated row by row, rule scores and tiers computed by the
//! worker and equal to hand-computed values with their explanation, the
//! model fitted by the worker once 200 contacts have an outcome (equal to
//! the pure fit of the same data), subscriptions becoming contacts (also
//! through the migration), purchases converting linked contacts, and
//! segments over tier and score with live counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use analytics::funnel::{AttrValue, fit};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TestApp, both_modes, spawn_app};

async fn client(app: &TestApp, token: &str) -> String {
    app.create("/api/v1/clients", token, json!({"name": "Shop"}))
        .await
}

/// Polls the contact list until `done` holds (the worker rescores
/// asynchronously), at most 60 s.
async fn contacts_until(
    app: &TestApp,
    token: &str,
    client: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .get(
                &format!("/api/v1/clients/{client}/contacts?limit=200"),
                token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let items = r.body["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        assert!(
            Instant::now() < deadline,
            "contacts never got there: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn by_email<'a>(items: &'a [Value], email: &str) -> &'a Value {
    items
        .iter()
        .find(|c| c["email"] == email)
        .unwrap_or_else(|| panic!("no contact {email}"))
}

async fn upserts_and_imports_change_nothing_when_resent(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t.token).await;
    let path = format!("/api/v1/clients/{c}/contacts");
    let r = app
        .post(
            &path,
            &t.token,
            json!({"email": " Anna@Example.com ", "name": "Anna", "attributes": {"city": "msk"}, "source_channel": "rtb"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["email"], "anna@example.com");
    assert_eq!(r.body["funnel"], "reach");
    assert_eq!(r.body["tier"], "cold");
    let id = r.body["id"].as_str().unwrap().to_owned();
    // More attributes merge in; the same e-mail is the same contact.
    let r = app
        .post(
            &path,
            &t.token,
            json!({"email": "anna@example.com", "attributes": {"age": 31}, "funnel": "warming"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], id.as_str());
    assert_eq!(r.body["attributes"], json!({"city": "msk", "age": 31}));
    assert_eq!(r.body["funnel"], "warming");

    let csv = "email,name,city,converted,conversion_value\nb@example.com,Bob,spb,true,120\nc@example.com,,kzn,false,\nanna@example.com,Anna,msk,,\n";
    let import_path = format!("/api/v1/clients/{c}/contacts/import");
    let import =
        |body: &'static str| app.raw(Method::POST, &import_path, Some(&t.token), "text/csv", body);
    let r = import(csv).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"received": 3, "created": 2, "updated": 0, "unchanged": 1})
    );
    let r = import(csv).await;
    assert_eq!(
        r.body,
        json!({"received": 3, "created": 0, "updated": 0, "unchanged": 3}),
        "a re-import changes nothing"
    );
    let b = app.get(&format!("{path}?email=b@"), &t.token).await.body["items"][0].clone();
    assert_eq!(b["converted"], true);
    assert_eq!(b["conversion_value"], 120.0);
    assert_eq!(b["outcome_source"], "api");

    // One bad row: 422 naming row and field, nothing stored.
    let r = import("email,converted\nd@example.com,true\nnot-an-email,maybe\n").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.text.contains("\"converted\""), "{}", r.text);
    assert!(r.text.contains("\"row\":2"), "{}", r.text);
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{c}/contacts/import"),
            Some(&t.token),
            "application/x-ndjson",
            "{\"email\":\"e@example.com\"}\n{\"email\":\"f@example.com\",\"colour\":\"red\"}\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Once the worker has scored what was stored, refused writes change
    // nothing.
    app.wait_settled(&t, "client_contacts", &c).await;
    let all = app.get(&format!("{path}?limit=200"), &t.token).await;
    assert_eq!(
        all.body["items"].as_array().unwrap().len(),
        3,
        "{}",
        all.text
    );

    // Bad single bodies name the field and change nothing.
    for (body, field) in [
        (json!({"email": "x"}), "email"),
        (json!({"email": "x@example.com", "unknown": 1}), "unknown"),
        (json!({"email": "x@example.com", "locale": "de"}), "locale"),
        (
            json!({"email": "x@example.com", "attributes": {"Bad Key": 1}}),
            "attributes.Bad Key",
        ),
        (
            json!({"email": "x@example.com", "conversion_value": 5}),
            "converted",
        ),
        (
            json!({"email": "x@example.com", "funnel": "sideways"}),
            "funnel",
        ),
    ] {
        let r = app.post(&path, &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert!(
            r.error_fields().iter().any(|f| f.contains(field)),
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .post(
            &format!("{path}/batch"),
            &t.token,
            json!({"contacts": [{"email": "g@example.com"}, {"email": "nope"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(r.error_fields(), vec!["contacts[1].email"]);
    for q in ["tier=lukewarm", "status=gone", "funnel=x", "min_score=abc"] {
        let r = app.get(&format!("{path}?{q}"), &t.token).await;
        assert!(r.status.is_client_error(), "{q}: {}", r.text);
    }
    let all2 = app.get(&format!("{path}?limit=200"), &t.token).await;
    assert_eq!(all.body, all2.body);

    // Outcomes by API; GraphQL reads the same contact.
    let r = app
        .post(
            &format!("/api/v1/contacts/{id}/outcome"),
            &t.token,
            json!({"converted": true, "at": "2026-11-03T10:00:00Z", "value": 99.5}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["converted_at"], "2026-11-03T10:00:00Z");
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { contact(id: $id) { email converted conversionValue funnel tier } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.body["data"]["contact"],
        json!({"email": "anna@example.com", "converted": true, "conversionValue": 99.5, "funnel": "WARMING", "tier": "COLD"}),
        "{}",
        r.text
    );
    // A viewer's read-only key cannot write contacts.
    let key = app.api_key(&t.token, &["read"]).await;
    let r = app
        .post(&path, &key, json!({"email": "z@example.com"}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

async fn rules_score_and_tier_contacts_as_computed_by_hand(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t.token).await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{c}/scoring"),
            Some(&t.token),
            Some(json!({"rules": [
                {"name": "Moscow", "points": 40, "when": {"kind": "attr_equals", "key": "city", "value": "msk"}},
                {"name": "Prime age", "points": 30, "when": {"kind": "attr_within", "key": "age", "min": 25, "max": 40}},
                {"name": "Fitness", "points": 5, "when": {"kind": "attr_contains", "key": "interests", "value": "FIT"}},
                {"name": "Bought lately", "points": 50, "when": {"kind": "purchase", "within_days": 30}}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["thresholds"]["hot_score"], 60.0);
    let body = "{\"email\":\"a@x.io\",\"attributes\":{\"city\":\"msk\",\"age\":30,\"interests\":[\"fitness\",\"yoga\"]}}\n\
                {\"email\":\"b@x.io\",\"attributes\":{\"city\":\"msk\",\"age\":50}}\n\
                {\"email\":\"c@x.io\",\"attributes\":{\"city\":\"spb\",\"age\":\"33\"}}\n\
                {\"email\":\"d@x.io\",\"attributes\":{\"city\":\"spb\"},\"customer_ref\":\"cust-d\"}\n";
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{c}/contacts/import"),
            Some(&t.token),
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // d bought yesterday: 50 points, and the purchase converts it.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/purchases"),
            &t.token,
            json!({"customer_ref": "cust-d", "purchased_at": yesterday, "amount": 70, "items": 1, "party_size": 1}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let items = contacts_until(&app, &t.token, &c, |items| {
        items.len() == 4
            && items.iter().all(|c| !c["scored_at"].is_null())
            && by_email(items, "d@x.io")["score"] == 50.0
    })
    .await;
    // a: 40 + 30 + 5 = 75 → hot; b: 40 → warm; c: 30 ("33" reads as a
    // number) → warm; d: 50 → warm.
    let expect = [
        ("a@x.io", 75.0, "hot"),
        ("b@x.io", 40.0, "warm"),
        ("c@x.io", 30.0, "warm"),
        ("d@x.io", 50.0, "warm"),
    ];
    for (email, score, tier) in expect {
        let x = by_email(&items, email);
        assert_eq!(
            (x["score"].as_f64(), x["tier"].as_str()),
            (Some(score), Some(tier)),
            "{x}"
        );
        assert_eq!(x["probability"], Value::Null, "no model yet");
    }
    assert_eq!(
        by_email(&items, "a@x.io")["explanation"],
        json!({"rules": [
            {"rule": "Moscow", "points": 40.0},
            {"rule": "Prime age", "points": 30.0},
            {"rule": "Fitness", "points": 5.0}
        ], "features": []})
    );
    let d = by_email(&items, "d@x.io");
    assert_eq!(
        (
            d["converted"].as_bool(),
            d["outcome_source"].as_str(),
            d["conversion_value"].as_f64()
        ),
        (Some(true), Some("purchase"), Some(70.0))
    );
    // Filters and a segment over tier and score, with its live count.
    let hot = app
        .get(&format!("/api/v1/clients/{c}/contacts?tier=hot"), &t.token)
        .await;
    assert_eq!(
        hot.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        hot.text
    );
    let r = app
        .get(
            &format!("/api/v1/clients/{c}/contacts?min_score=40&max_score=60"),
            &t.token,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "{}", r.text);
    let seg = app
        .create(
            &format!("/api/v1/clients/{c}/segments"),
            &t.token,
            json!({"name": "Warm Moscow", "filter": {"conditions": [
                {"question": "tier", "values": ["warm", "hot"]},
                {"question": "city", "values": ["msk"]},
                {"question": "score", "min": 41}
            ]}}),
        )
        .await;
    let r = app
        .get(&format!("/api/v1/segments/{seg}/contact-count"), &t.token)
        .await;
    assert_eq!(r.body["contacts"], 1, "{}", r.text);
    let r = app
        .get(
            &format!("/api/v1/clients/{c}/contacts?segment_id={seg}"),
            &t.token,
        )
        .await;
    let emails: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["a@x.io"]);
    let r = app
        .graphql(
            Some(&t.token),
            "query($s: ID!, $c: ID!) { segmentContactCount(segmentId: $s) contacts(clientId: $c, filter: {tier: \"warm\"}) { items { email score } } }",
            json!({"s": seg, "c": c}),
        )
        .await;
    assert_eq!(r.body["data"]["segmentContactCount"], 1, "{}", r.text);
    assert_eq!(
        r.body["data"]["contacts"]["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Bad rules name the field; nothing changes.
    for (body, field) in [
        (
            json!({"rules": [{"name": "", "points": 1, "when": {"kind": "purchase", "within_days": 3}}]}),
            "rules[0].name",
        ),
        (
            json!({"rules": [{"name": "x", "points": 1, "when": {"kind": "purchase", "within_days": 0}}]}),
            "rules[0].when.within_days",
        ),
        (
            json!({"rules": [], "thresholds": {"hot_probability": 0.2, "warm_probability": 0.5, "hot_score": 60, "warm_score": 30}}),
            "thresholds.warm_probability",
        ),
        (json!({"rules": [], "lambda": 0}), "lambda"),
    ] {
        let r = app
            .call(
                Method::PUT,
                &format!("/api/v1/clients/{c}/scoring"),
                Some(&t.token),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), vec![field], "{body}: {}", r.text);
    }
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{c}/scoring"),
            Some(&t.token),
            Some(json!({"rules": [{"name": "x", "points": 1, "when": {"kind": "telepathy"}}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let r = app
        .get(&format!("/api/v1/clients/{c}/scoring"), &t.token)
        .await;
    assert_eq!(r.body["rules"].as_array().unwrap().len(), 4);
}

/// 240 labelled contacts: city by i % 3, age 20..49, converted when a
/// Moscow contact is under 35, flipped for every 11th.
fn labelled(i: usize) -> (String, &'static str, f64, bool) {
    let city = ["msk", "spb", "kzn"][i % 3];
    let age = 20.0 + ((i * 7) % 30) as f64;
    let y = (city == "msk" && age < 35.0) ^ i.is_multiple_of(11);
    (format!("l{i:03}@x.io"), city, age, y)
}

async fn the_worker_fits_the_model_once_200_outcomes_are_known(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t.token).await;
    let mut body = String::new();
    for i in 0..199 {
        let (email, city, age, y) = labelled(i);
        body.push_str(&format!(
            "{{\"email\":\"{email}\",\"attributes\":{{\"city\":\"{city}\",\"age\":{age}}},\"converted\":{y}}}\n"
        ));
    }
    let import_path = format!("/api/v1/clients/{c}/contacts/import");
    let import = |body: String| {
        app.raw(
            Method::POST,
            &import_path,
            Some(&t.token),
            "application/x-ndjson",
            body,
        )
    };
    let r = import(body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let model_path = format!("/api/v1/clients/{c}/scoring/model");
    // 199 labelled: no model; tiers come from rule scores.
    contacts_until(&app, &t.token, &c, |items| {
        !items.is_empty() && items.iter().all(|c| !c["scored_at"].is_null())
    })
    .await;
    let r = app.get(&model_path, &t.token).await;
    assert_eq!(r.body["trained"], false, "{}", r.text);
    assert!(
        r.body["reason"].as_str().unwrap().contains("199"),
        "{}",
        r.text
    );

    let mut body = String::new();
    for i in 199..240 {
        let (email, city, age, y) = labelled(i);
        body.push_str(&format!(
            "{{\"email\":\"{email}\",\"attributes\":{{\"city\":\"{city}\",\"age\":{age}}},\"converted\":{y}}}\n"
        ));
    }
    body.push_str("{\"email\":\"new@x.io\",\"attributes\":{\"city\":\"msk\",\"age\":27}}\n");
    let r = import(body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let deadline = Instant::now() + Duration::from_secs(60);
    let model = loop {
        let r = app.get(&model_path, &t.token).await;
        if r.body["trained"] == true {
            break r.body;
        }
        assert!(Instant::now() < deadline, "no model: {}", r.text);
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    // The same fit, done here on the same data.
    let data: Vec<(BTreeMap<String, AttrValue>, bool)> = (0..240)
        .map(|i| {
            let (_, city, age, y) = labelled(i);
            let mut m = BTreeMap::new();
            m.insert("city".to_owned(), AttrValue::Text(city.into()));
            m.insert("age".to_owned(), AttrValue::Number(age));
            (m, y)
        })
        .collect();
    let refs: Vec<(&BTreeMap<String, AttrValue>, bool)> =
        data.iter().map(|(m, y)| (m, *y)).collect();
    let want = fit(&refs, 1.0).unwrap();
    assert_eq!(model["labelled"], 240);
    assert_eq!(model["converted"], want.converted as i64);
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    close(model["intercept"].as_f64().unwrap(), want.intercept);
    let weights = model["weights"].as_array().unwrap();
    assert_eq!(weights.len(), want.weights.len());
    for (w, (f, x)) in weights
        .iter()
        .zip(want.space.features.iter().zip(&want.weights))
    {
        assert_eq!(w["feature"], f.name().as_str());
        close(w["weight"].as_f64().unwrap(), *x);
    }
    // Every contact now has the model's probability and tier by it; the
    // explanation lists signed contributions.
    let mut attrs = BTreeMap::new();
    attrs.insert("city".to_owned(), AttrValue::Text("msk".into()));
    attrs.insert("age".to_owned(), AttrValue::Number(27.0));
    let p = want.probability(&attrs);
    let items = loop {
        let r = app
            .get(
                &format!("/api/v1/clients/{c}/contacts?email=new@"),
                &t.token,
            )
            .await;
        let x = r.body["items"][0].clone();
        if x["probability"].is_number() {
            break x;
        }
        assert!(
            Instant::now() < deadline,
            "never scored by the model: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    close(items["probability"].as_f64().unwrap(), p);
    let tier = if p >= 0.6 {
        "hot"
    } else if p >= 0.3 {
        "warm"
    } else {
        "cold"
    };
    assert_eq!(items["tier"], tier);
    let features = items["explanation"]["features"].as_array().unwrap();
    assert!(!features.is_empty());
    let x = want.space.encode(&attrs);
    let top = want.explain_encoded(&x, 5);
    assert_eq!(features[0]["feature"], top[0].feature.as_str());
    close(
        features[0]["contribution"].as_f64().unwrap(),
        top[0].contribution,
    );
}

async fn subscriptions_become_contacts(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t.token).await;
    let list = app
        .create(
            &format!("/api/v1/clients/{c}/lists"),
            &t.token,
            json!({"name": "News", "consent_text": "I agree"}),
        )
        .await;
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/public/lists/{list}/subscribe"),
            None,
            Some(json!({"email": "Visitor@Example.com", "consent": true, "attributes": {"city": "msk"}})),
        )
        .await;
    assert_eq!(r.status.as_u16() / 100, 2, "{}", r.text);
    let items = contacts_until(&app, &t.token, &c, |i| i.len() == 1).await;
    assert_eq!(items[0]["email"], "visitor@example.com");
    assert_eq!(items[0]["status"], "active");
    assert_eq!(items[0]["attributes"], json!({"city": "msk"}));
    assert!(items[0]["confirmed_at"].is_null());
    let subs = app
        .get(&format!("/api/v1/lists/{list}/subscribers"), &t.token)
        .await;
    let sub = uuid::Uuid::parse_str(subs.body["items"][0]["id"].as_str().unwrap()).unwrap();
    let confirm = app
        .services
        .links
        .token(service::email::links::Purpose::Confirm, sub);
    let r = app
        .call(
            Method::GET,
            &format!("/api/v1/public/confirm?token={confirm}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    contacts_until(&app, &t.token, &c, |i| !i[0]["confirmed_at"].is_null()).await;
    let unsub = app
        .services
        .links
        .token(service::email::links::Purpose::Unsubscribe, sub);
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/public/unsubscribe?token={unsub}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status.as_u16() / 100, 2, "{}", r.text);
    contacts_until(&app, &t.token, &c, |i| i[0]["status"] == "unsubscribed").await;
    // A list import: two lists share an address; one contact each.
    let list2 = app
        .create(
            &format!("/api/v1/clients/{c}/lists"),
            &t.token,
            json!({"name": "Offers", "consent_text": "I agree"}),
        )
        .await;
    for l in [&list, &list2] {
        let r = app
            .raw(
                Method::POST,
                &format!("/api/v1/lists/{l}/subscribers/import"),
                Some(&t.token),
                "text/csv",
                "email,consent_source\nshared@example.com,shop\n",
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    let items = contacts_until(&app, &t.token, &c, |i| i.len() == 2).await;
    let shared = by_email(&items, "shared@example.com");
    assert_eq!(shared["status"], "active");
    assert!(!shared["confirmed_at"].is_null());
}

async fn existing_subscribers_survive_the_migration_to_contacts(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t.token).await;
    let mut lists = Vec::new();
    for name in ["News", "Offers"] {
        lists.push(
            app.create(
                &format!("/api/v1/clients/{c}/lists"),
                &t.token,
                json!({"name": name, "consent_text": "I agree"}),
            )
            .await,
        );
    }
    let rows = [
        "email,consent_source,city\na@example.com,shop,msk\nb@example.com,shop,spb\n",
        "email,consent_source,age\nb@example.com,form,40\nc@example.com,form,22\n",
    ];
    for (l, body) in lists.iter().zip(rows) {
        let r = app
            .raw(
                Method::POST,
                &format!("/api/v1/lists/{l}/subscribers/import"),
                Some(&t.token),
                "text/csv",
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // c unsubscribes from its only list before the upgrade.
    let subs = app
        .get(&format!("/api/v1/lists/{}/subscribers", lists[1]), &t.token)
        .await;
    let c_sub = subs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["email"] == "c@example.com")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unsub = app.services.links.token(
        service::email::links::Purpose::Unsubscribe,
        uuid::Uuid::parse_str(&c_sub).unwrap(),
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/public/unsubscribe?token={unsub}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status.as_u16() / 100, 2, "{}", r.text);
    // Wait for the worker to settle, then undo and redo the migration: the
    // contacts table is rebuilt from the subscribers alone.
    contacts_until(&app, &t.token, &c, |i| {
        i.len() == 3 && by_email(i, "c@example.com")["status"] == "unsubscribed"
    })
    .await;
    let before = app
        .get(&format!("/api/v1/lists/{}/subscribers", lists[0]), &t.token)
        .await;
    tests::rerun_migrations_from(&app.services.db, "_000018_create_contacts").await;
    let after = app
        .get(&format!("/api/v1/lists/{}/subscribers", lists[0]), &t.token)
        .await;
    assert_eq!(before.body, after.body, "subscribers are untouched");
    let r = app
        .get(&format!("/api/v1/clients/{c}/contacts?limit=200"), &t.token)
        .await;
    let items = r.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3, "one contact per address: {}", r.text);
    let a = by_email(&items, "a@example.com");
    assert_eq!(
        (a["status"].as_str(), a["attributes"].clone()),
        (Some("active"), json!({"city": "msk"}))
    );
    assert!(!a["confirmed_at"].is_null());
    // b is on both lists: the earliest subscription's attributes.
    assert_eq!(
        by_email(&items, "b@example.com")["attributes"],
        json!({"city": "spb"})
    );
    assert_eq!(by_email(&items, "c@example.com")["status"], "unsubscribed");
    // Every subscription points at its contact: a new import links without
    // making a second contact.
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/lists/{}/subscribers/import", lists[1]),
            Some(&t.token),
            "text/csv",
            "email,consent_source\na@example.com,form\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    use sea_orm::ConnectionTrait;
    let unlinked = app
        .services
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            app.services.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM subscribers WHERE contact_id IS NULL",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(unlinked, 0);
    let r = app
        .get(&format!("/api/v1/clients/{c}/contacts?limit=200"), &t.token)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3, "{}", r.text);
}

/// Rows of the client's scores, and how many sets it has — once the
/// worker's sweeper has purged the sets that fresh ones replaced (a
/// rescoring only queues them).
async fn score_rows(app: &TestApp) -> (i64, i64) {
    use sea_orm::{ConnectionTrait, Statement};
    let db = &app.services.db;
    let count = |table: &str| {
        let sql = format!("SELECT COUNT(*) AS n FROM {table}");
        async move {
            db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap()
        }
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count("contact_score_purges").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "replaced score sets not purged"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (
        count("contact_scores").await,
        count("contact_score_sets").await,
    )
}

/// Scores live in one set per client: a rescoring that changes most of
/// them writes a fresh set and queues the old one for the sweeper to
/// purge, one that changes a few
/// updates in place, an erased contact's score goes, and the migration
/// that split scores from contacts runs down and up without loss.
async fn scores_are_kept_in_one_set_per_client(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t.token).await;
    let rules = |moscow: i32| {
        json!({"rules": [
            {"name": "Moscow", "points": moscow, "when": {"kind": "attr_equals", "key": "city", "value": "msk"}},
            {"name": "Adult", "points": 10, "when": {"kind": "attr_within", "key": "age", "min": 18}}
        ]})
    };
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{c}/scoring"),
            Some(&t.token),
            Some(rules(40)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut body = String::new();
    for i in 0..8 {
        let city = if i < 4 { "msk" } else { "spb" };
        body.push_str(&format!(
            "{{\"email\":\"p{i}@x.io\",\"attributes\":{{\"city\":\"{city}\",\"age\":{}}}}}\n",
            10 + i * 5
        ));
    }
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{c}/contacts/import"),
            Some(&t.token),
            "application/x-ndjson",
            body,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // p0 (msk, 10): 40; p1..p3 (msk, 15..25): 40, 50, 50; p4..p7 (spb,
    // 30..45): 10 each.
    let score = |items: &[Value], e: &str| by_email(items, e)["score"].as_f64();
    let items = contacts_until(&app, &t.token, &c, |i| {
        i.len() == 8 && i.iter().all(|c| !c["scored_at"].is_null())
    })
    .await;
    let want: Vec<f64> = vec![40.0, 40.0, 50.0, 50.0, 10.0, 10.0, 10.0, 10.0];
    let got: Vec<f64> = (0..8)
        .map(|i| score(&items, &format!("p{i}@x.io")).unwrap())
        .collect();
    assert_eq!(got, want);
    assert_eq!(score_rows(&app).await, (8, 1));

    // One contact changes (1 of 8, in place): still one set of 8 rows.
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/contacts"),
            &t.token,
            json!({"email": "p4@x.io", "attributes": {"city": "msk"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = contacts_until(&app, &t.token, &c, |i| score(i, "p4@x.io") == Some(50.0)).await;
    assert_eq!(score(&items, "p0@x.io"), Some(40.0));
    assert_eq!(score_rows(&app).await, (8, 1));

    // Moscow is worth 20 now: 5 of 8 change, a fresh set replaces the old.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{c}/scoring"),
            Some(&t.token),
            Some(rules(20)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = contacts_until(&app, &t.token, &c, |i| score(i, "p0@x.io") == Some(20.0)).await;
    let got: Vec<f64> = (0..8)
        .map(|i| score(&items, &format!("p{i}@x.io")).unwrap())
        .collect();
    assert_eq!(got, vec![20.0, 20.0, 30.0, 30.0, 30.0, 10.0, 10.0, 10.0]);
    assert_eq!(
        by_email(&items, "p2@x.io")["explanation"]["rules"],
        json!([{"rule": "Moscow", "points": 20.0}, {"rule": "Adult", "points": 10.0}])
    );
    assert_eq!(score_rows(&app).await, (8, 1));

    // Erasure takes the score along.
    let p7 = by_email(&items, "p7@x.io")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{p7}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status.as_u16() / 100, 2, "{}", r.text);
    assert_eq!(score_rows(&app).await.0, 7);

    // The split migration, down and up: every score and tier as before
    // (once the worker has rescored after the erasure).
    app.wait_settled(&t, "client_contacts", &c).await;
    let before = app
        .get(&format!("/api/v1/clients/{c}/contacts?limit=200"), &t.token)
        .await;
    tests::rerun_migrations_from(&app.services.db, "_000022_split_contact_scores").await;
    let after = app
        .get(&format!("/api/v1/clients/{c}/contacts?limit=200"), &t.token)
        .await;
    assert_eq!(before.body, after.body);
}

both_modes!(
    upserts_and_imports_change_nothing_when_resent,
    rules_score_and_tier_contacts_as_computed_by_hand,
    the_worker_fits_the_model_once_200_outcomes_are_known,
    subscriptions_become_contacts,
    existing_subscribers_survive_the_migration_to_contacts,
    scores_are_kept_in_one_set_per_client,
);
