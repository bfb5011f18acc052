//! Signed outbound webhooks (issue 13, item 3): a receiver on loopback
//! checks the Standard Webhooks signature of every delivery with the secret
//! it was shown once; a receiver that fails for a while gets each event
//! exactly once after it recovers (by `webhook-id`); a worker process
//! SIGKILLed mid-delivery loses none; rotation signs with both secrets
//! during the overlap; an endpoint failing for the whole (shortened) retry
//! period is disabled and its admins mailed; private targets are refused
//! without the setting; bad input is a 422 naming the field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::webhook_sink::WebhookSink;
use tests::{Mode, Tenant, TestApp, both_modes, newsletter, panel, spawn_with, wait_until};

const GROWTHPOINT: &str = env!("CARGO_BIN_EXE_growthpoint-cli");

/// An app whose webhooks may go to loopback, with quick retries.
async fn app_for_hooks(
    mode: Mode,
    tweak: impl FnOnce(&mut api::configuration::Settings),
) -> TestApp {
    spawn_with(mode, |s| {
        s.webhooks_allow_private = true;
        s.webhook_retry_base_ms = 50;
        tweak(s);
    })
    .await
}

/// Creates an endpoint to `sink` (all event types); (id, secret).
async fn endpoint(app: &TestApp, t: &Tenant, sink: &WebhookSink, types: Value) -> (String, String) {
    let mut body = json!({"url": sink.url(), "description": "CRM"});
    if !types.is_null() {
        body["event_types"] = types;
    }
    let r = app.post("/api/v1/webhooks", &t.token, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    sink.trust(&secret);
    (
        r.body["endpoint"]["id"].as_str().unwrap().to_owned(),
        secret,
    )
}

async fn deliveries(app: &TestApp, t: &Tenant, ep: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/api/v1/webhooks/{ep}/deliveries?limit=200"),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

async fn deliveries_are_signed_and_logged(mode: Mode) {
    let sink = WebhookSink::start().await;
    let app = app_for_hooks(mode, |_| {}).await;
    let t = app.signup("Hooks").await;
    let p = panel(&app, &t).await;
    let types = app.get("/api/v1/webhook-event-types", &t.token).await;
    assert_eq!(types.status, StatusCode::OK, "{}", types.text);
    assert!(types.text.contains("import.finished") && types.text.contains("job.failed"));
    let (ep, secret) = endpoint(
        &app,
        &t,
        &sink,
        json!(["import.finished", "questionnaire.summary_updated"]),
    )
    .await;
    // The secret is never shown again.
    let r = app.get(&format!("/api/v1/webhooks/{ep}"), &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains(&secret) && !r.text.contains("whsec_"));

    // An import: `import.finished` at once, the summary after the worker.
    app.import_ndjson(&t.token, &p.questionnaire, tests::ndjson_rows("r", 3))
        .await;
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = sink.wait_accepted(3, 60).await;
    let received = sink.received();
    for r in &received {
        assert_eq!(r.signed_by, vec![0], "a bad signature: {r:?}");
        assert!((chrono::Utc::now().timestamp() - r.timestamp).abs() < 60);
    }
    let types: BTreeSet<&str> = received
        .iter()
        .map(|r| r.body["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        BTreeSet::from([
            "import.finished",
            "questionnaire.summary_updated",
            "webhook.ping"
        ])
    );
    let import = received
        .iter()
        .find(|r| r.body["type"] == "import.finished")
        .unwrap();
    assert_eq!(
        import.body["data"]["questionnaire_id"],
        p.questionnaire.as_str()
    );
    assert_eq!(import.body["data"]["rows"], 3);
    assert!(import.body["timestamp"].as_str().unwrap().ends_with('Z'));

    // The log shows every delivery, its webhook-id and the answer.
    wait_until("the log says delivered", 10, || async {
        let d = deliveries(&app, &t, &ep).await;
        d.len() == 3 && d.iter().all(|d| d["status"] == "delivered")
    })
    .await;
    for d in deliveries(&app, &t, &ep).await {
        assert!(got.contains_key(d["event_id"].as_str().unwrap()), "{d}");
        assert_eq!(d["last_status_code"], 200);
        assert_eq!(d["attempts"], 1);
        assert!(d["last_duration_ms"].is_number());
    }
    // The same over GraphQL.
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { webhookEndpoints { id url enabled } webhookDeliveries(endpointId: $id) { items { eventId status lastStatusCode } } }",
            json!({"id": ep}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert_eq!(r.body["data"]["webhookEndpoints"][0]["id"], ep.as_str());
    assert_eq!(
        r.body["data"]["webhookDeliveries"]["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A re-send goes out again with the same webhook-id.
    let first = deliveries(&app, &t, &ep).await[0].clone();
    let r = app
        .post(
            &format!(
                "/api/v1/webhooks/{ep}/deliveries/{}/resend",
                first["id"].as_str().unwrap()
            ),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let id = first["event_id"].as_str().unwrap().to_owned();
    wait_until("the re-send", 10, || async {
        sink.accepted_by_id()[&id] == 2
    })
    .await;
}

async fn a_recovering_receiver_gets_each_event_once(mode: Mode) {
    let sink = WebhookSink::start().await;
    sink.fail_first(12);
    let app = app_for_hooks(mode, |_| {}).await;
    let t = app.signup("Flaky").await;
    let (ep, _) = endpoint(&app, &t, &sink, Value::Null).await;
    for _ in 0..5 {
        let r = app
            .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let got = sink.wait_accepted(5, 60).await;
    wait_until("every delivery recorded", 10, || async {
        deliveries(&app, &t, &ep)
            .await
            .iter()
            .all(|d| d["status"] == "delivered")
    })
    .await;
    // Give a stray retry the chance to show up before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_after = sink.accepted_by_id();
    assert_eq!(got.len(), 5);
    assert!(got_after.values().all(|n| *n == 1), "{got_after:?}");
    let received = sink.received();
    assert!(received.iter().filter(|r| r.answered == 500).count() >= 12);
    assert!(received.iter().all(|r| r.signed_by == vec![0]));
    let log = deliveries(&app, &t, &ep).await;
    assert!(
        log.iter().any(|d| d["attempts"].as_i64().unwrap() > 1),
        "{log:?}"
    );
    // The endpoint works again: no failure on record.
    let r = app.get(&format!("/api/v1/webhooks/{ep}"), &t.token).await;
    assert!(r.body["failing_since"].is_null(), "{}", r.text);
}

async fn a_killed_worker_loses_no_webhook(mode: Mode) {
    const EVENTS: usize = 400;
    let sink = WebhookSink::start().await;
    // Slow answers, so the kill lands while requests are in flight.
    sink.delay(50);
    let app = app_for_hooks(mode, |s| s.run_worker = false).await;
    let t = app.signup("Crash").await;
    let (ep, _) = endpoint(&app, &t, &sink, Value::Null).await;
    let agency = uuid::Uuid::parse_str(&t.agency_id).unwrap();
    let db = &app.services.db;
    for i in 0..EVENTS {
        service::webhooks::emit(db, agency, service::webhooks::JOB_FAILED, json!({"n": i}))
            .await
            .unwrap();
    }
    let mut first = app.worker_process(GROWTHPOINT, "worker-1");
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.accepted_by_id().len() < 150 {
        first.assert_running();
        assert!(Instant::now() < deadline, "no deliveries under way");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill();
    let at_kill = sink.accepted_by_id().len();
    assert!(at_kill < EVENTS, "all delivered before the kill");
    let _second = app.worker_process(GROWTHPOINT, "worker-2");
    let got = sink.wait_accepted(EVENTS, 120).await;
    wait_until("every delivery recorded", 30, || async {
        let page = app
            .get(
                &format!("/api/v1/webhooks/{ep}/deliveries?limit=200"),
                &t.token,
            )
            .await;
        page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "delivered")
    })
    .await;
    assert_eq!(got.len(), EVENTS, "a webhook was lost");
    assert!(sink.received().iter().all(|r| r.signed_by == vec![0]));
    let repeats: usize = got.values().map(|n| n - 1).sum();
    println!("killed after {at_kill} of {EVENTS}; repeats (same webhook-id): {repeats}");
    // Only what was in flight or not yet recorded at the kill goes out
    // twice: per sending loop at most 64 requests and one unrecorded
    // handful of 64, and the worker runs two (a wake-up job's and the
    // sweeper's).
    assert!(repeats <= 256, "{repeats} repeats");
}

async fn rotation_signs_with_both_secrets_during_the_overlap(mode: Mode) {
    let sink = WebhookSink::start().await;
    let app = app_for_hooks(mode, |_| {}).await;
    let t = app.signup("Rotate").await;
    // Created over GraphQL this time.
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($u: String!) { createWebhookEndpoint(input: {url: $u, eventTypes: [\"job.failed\"]}) { secret endpoint { id eventTypes } } }",
            json!({"u": sink.url()}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let old = r.body["data"]["createWebhookEndpoint"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let ep = r.body["data"]["createWebhookEndpoint"]["endpoint"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sink.trust(&old);
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret endpoint { previousSecretUntil } } }",
            json!({"id": ep}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let new = r.body["data"]["rotateWebhookSecret"]["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new, old);
    assert!(!r.body["data"]["rotateWebhookSecret"]["endpoint"]["previousSecretUntil"].is_null());
    sink.trust(&new);
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    sink.wait_accepted(1, 30).await;
    let got = &sink.received()[0];
    assert_eq!(got.signatures, 2, "{got:?}");
    assert_eq!(got.signed_by, vec![0, 1], "{got:?}");
}

async fn an_endpoint_failing_for_the_whole_horizon_is_disabled(mode: Mode) {
    let sink = WebhookSink::start().await;
    sink.always_fail(true);
    let app = app_for_hooks(mode, |s| s.webhook_retry_horizon_ms = 1_500).await;
    let t = app.signup("Broken").await;
    let (ep, _) = endpoint(&app, &t, &sink, Value::Null).await;
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    wait_until("the endpoint disabled", 30, || async {
        let r = app.get(&format!("/api/v1/webhooks/{ep}"), &t.token).await;
        r.body["enabled"] == false
    })
    .await;
    let r = app.get(&format!("/api/v1/webhooks/{ep}"), &t.token).await;
    assert!(
        r.body["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{}",
        r.text
    );
    let log = deliveries(&app, &t, &ep).await;
    assert_eq!(log[0]["status"], "failed", "{log:?}");
    assert_eq!(log[0]["last_status_code"], 500);
    assert!(log[0]["attempts"].as_i64().unwrap() >= 3, "{log:?}");
    // The owner hears of it by email.
    wait_until("the alert email", 30, || async {
        let r = app
            .get("/api/v1/deliveries?kind=webhook_disabled", &t.token)
            .await;
        r.body["items"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    // A disabled endpoint takes no ping; enabled again, it does.
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    sink.always_fail(false);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{ep}"),
            Some(&t.token),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["disabled_reason"].is_null() && r.body["failing_since"].is_null());
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    sink.wait_accepted(1, 30).await;
}

/// Production settings: no private targets, at creation or delivery.
async fn private_targets_are_refused_outside_tests(mode: Mode) {
    let app = spawn_with(mode, |s| s.webhooks_allow_private = false).await;
    let t = app.signup("Prod").await;
    for url in [
        "http://127.0.0.1:9/hook",
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hook",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://localhost/hook",
        "http://hooks.example.com/hook",
    ] {
        let r = app
            .post("/api/v1/webhooks", &t.token, json!({"url": url}))
            .await;
        assert_eq!(
            (r.status, r.error_fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["url".to_owned()]),
            "{url}: {}",
            r.text
        );
    }
    // A target that changed to a private address after it was saved is
    // still refused when delivering.
    let r = app
        .post(
            "/api/v1/webhooks",
            &t.token,
            json!({"url": "https://hooks.invalid/in"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ep = r.body["endpoint"]["id"].as_str().unwrap().to_owned();
    let sink = WebhookSink::start().await;
    let db = &app.services.db;
    sea_orm::ConnectionTrait::execute_unprepared(
        db,
        &format!(
            "UPDATE webhook_endpoints SET url = 'https://127.0.0.1:{}/hook'",
            sink.port
        ),
    )
    .await
    .unwrap();
    let r = app
        .post(&format!("/api/v1/webhooks/{ep}/ping"), &t.token, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    wait_until("the attempt", 30, || async {
        deliveries(&app, &t, &ep).await[0]["attempts"]
            .as_i64()
            .unwrap()
            >= 1
    })
    .await;
    let d = &deliveries(&app, &t, &ep).await[0];
    assert!(
        d["last_error"].as_str().unwrap().contains("public address"),
        "{d}"
    );
    assert!(sink.received().is_empty());
}

async fn bad_input_is_refused_naming_the_field(mode: Mode) {
    let sink = WebhookSink::start().await;
    let app = app_for_hooks(mode, |_| {}).await;
    let t = app.signup("Strict").await;
    let url = sink.url();
    for (body, field) in [
        (json!({"url": "not a url"}), "url"),
        (json!({"url": "ftp://127.0.0.1/x"}), "url"),
        (json!({"url": url, "event_types": ["nope"]}), "event_types"),
        (json!({"url": url, "event_types": []}), "event_types"),
        (
            json!({"url": url, "description": "x".repeat(201)}),
            "description",
        ),
        (json!({"url": url, "secret": "mine"}), "secret"),
        // A missing field is named by the body extractor, as everywhere.
        (json!({}), "body"),
    ] {
        let r = app.post("/api/v1/webhooks", &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.text);
    }
    let (ep, _) = endpoint(&app, &t, &sink, Value::Null).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/webhooks/{ep}"),
            Some(&t.token),
            Some(json!({"event_types": ["x"]})),
        )
        .await;
    assert_eq!(r.error_fields(), ["event_types"], "{}", r.text);
    for _ in 1..20 {
        endpoint(&app, &t, &sink, Value::Null).await;
    }
    let r = app
        .post("/api/v1/webhooks", &t.token, json!({"url": url}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    // Only owners and admins manage endpoints; keys never do.
    let analyst = app.member(&t, "analyst").await;
    let key = app.api_key(&t.token, &["read", "write", "ingest"]).await;
    for who in [&analyst, &key] {
        let r = app.get("/api/v1/webhooks", who).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
        let r = app.post("/api/v1/webhooks", who, json!({"url": url})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    }
    let admin = app.member(&t, "admin").await;
    let r = app.get("/api/v1/webhooks", &admin).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(20), "{}", r.text);
}

/// Facts of the research, mail and jobs areas reach the endpoint as they
/// happen: UX flags, hypothesis verdicts, a finished campaign, a recompute
/// given up.
async fn facts_of_every_area_become_events(mode: Mode) {
    let sink = WebhookSink::start().await;
    let app = app_for_hooks(mode, |_| {}).await;
    let news = newsletter(&app, 3, "<p>Hello {{ subscriber.name }}!</p>").await;
    let t = &news.owner;
    let (_, _) = endpoint(
        &app,
        t,
        &sink,
        json!([
            "ux.flag_raised",
            "hypothesis.verdict_changed",
            "campaign.finished",
            "job.failed"
        ]),
    )
    .await;
    // A falling mystery-shopper audit raises UX flags.
    let (_, audit, _) = tests::mystery_audit(&app, t, "en").await;
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
    // A hypothesis gets its first verdict.
    let p = panel(&app, t).await;
    app.create(
        &format!("/api/v1/clients/{}/hypotheses", p.client),
        &t.token,
        json!({"name": "Moscow promotes more", "questionnaire_id": p.questionnaire,
               "segment": {"conditions": [{"question": "city", "values": ["msk"]}]},
               "metric": {"kind": "nps"}, "direction": "greater"}),
    )
    .await;
    app.import_ndjson(&t.token, &p.questionnaire, tests::ndjson_rows("h", 4))
        .await;
    news.send(&app).await;
    tests::failing_target(&app, t).await;
    wait_until("an event of each kind", 60, || async {
        let types: BTreeSet<String> = sink
            .received()
            .iter()
            .filter(|r| r.answered == 200)
            .map(|r| r.body["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        types.len() == 4
    })
    .await;
    let received = sink.received();
    assert!(received.iter().all(|r| r.signed_by == vec![0]));
    let of =
        |ty: &str| received.iter().find(|r| r.body["type"] == ty).unwrap().body["data"].clone();
    assert_eq!(
        of("campaign.finished")["campaign_id"],
        news.campaign.as_str()
    );
    assert_eq!(of("campaign.finished")["recipients"], 3);
    assert!(of("hypothesis.verdict_changed")["old_verdict"].is_null());
    assert!(of("hypothesis.verdict_changed")["new_verdict"].is_string());
    assert!(of("ux.flag_raised")["deviation"].as_f64().unwrap() < 0.0);
    assert_eq!(of("job.failed")["kind"], "no_such_kind");
    // Each fact once, whatever the worker retried.
    let ids: Vec<&str> = received
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ids.len(), ids.iter().collect::<BTreeSet<_>>().len());
}

/// Every kind of import tells `import.finished` once, written with its
/// rows (an import that stored nothing new too); a refused import tells
/// nothing.
async fn every_import_tells_import_finished_once(mode: Mode) {
    let sink = WebhookSink::start().await;
    let app = app_for_hooks(mode, |_| {}).await;
    let t = app.signup("Importer").await;
    let p = panel(&app, &t).await;
    let (ep, _) = endpoint(&app, &t, &sink, json!(["import.finished"])).await;
    let c = p.client.clone();
    let rows = tests::ndjson_rows("r", 3);
    app.import_ndjson(&t.token, &p.questionnaire, rows.clone())
        .await;
    // The same rows again: nothing new, still told.
    app.import_ndjson(&t.token, &p.questionnaire, rows).await;
    let list = app
        .create(
            &format!("/api/v1/clients/{c}/lists"),
            &t.token,
            json!({"name": "News", "consent_text": "I agree"}),
        )
        .await;
    let imports = [
        (
            format!("/api/v1/clients/{c}/purchases/import"),
            "text/csv",
            "external_id,customer_ref,purchased_at,amount,items,party_size,channel\nx1,ann,2026-11-01T12:00:00Z,10,1,1,hall\n",
        ),
        (
            format!("/api/v1/clients/{c}/contacts/import"),
            "application/x-ndjson",
            "{\"email\":\"ann@example.com\"}\n{\"email\":\"bob@example.com\"}\n",
        ),
        (
            format!("/api/v1/clients/{c}/channel-figures/import"),
            "text/csv",
            "day,channel,funnel,spend,impressions,clicks,contacts,leads,mentions,brand_searches\n2026-11-01,rtb,reach,100,40000,200,10,,,\n",
        ),
        (
            format!("/api/v1/lists/{list}/subscribers/import"),
            "text/csv",
            "email,consent_source\nann@example.com,shop\n",
        ),
    ];
    for (path, ct, body) in &imports {
        let r = app
            .raw(Method::POST, path, Some(&t.token), ct, body.to_string())
            .await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.text);
    }
    // Refused as a whole: no rows, no event.
    let r = app
        .raw(
            Method::POST,
            &imports[0].0,
            Some(&t.token),
            "text/csv",
            "external_id,customer_ref,purchased_at,amount,items,party_size,channel\nx2,ann,2026-11-01T12:00:00Z,lots,1,1,hall\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);

    let got = sink.wait_accepted(6, 60).await;
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(got.values().all(|n| *n == 1), "{got:?}");
    assert_eq!(deliveries(&app, &t, &ep).await.len(), 6);
    let mut told: Vec<(String, String, u64)> = sink
        .received()
        .iter()
        .filter(|r| r.answered == 200)
        .map(|r| {
            let d = &r.body["data"];
            let subject = ["questionnaire_id", "client_id", "list_id"]
                .iter()
                .find_map(|k| d[*k].as_str())
                .unwrap_or_default()
                .to_owned();
            (
                d["kind"].as_str().unwrap().to_owned(),
                subject,
                d["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    told.sort();
    let q = p.questionnaire.clone();
    let mut expected = vec![
        ("channel_figures".to_owned(), c.clone(), 1),
        ("contacts".to_owned(), c.clone(), 2),
        ("purchases".to_owned(), c.clone(), 1),
        ("responses".to_owned(), q.clone(), 3),
        ("responses".to_owned(), q, 3),
        ("subscribers".to_owned(), list, 1),
    ];
    expected.sort();
    assert_eq!(told, expected);
}

/// A refused address (550) tells `email.bounced` once, with the delivery
/// it was recorded on; the addresses delivered tell nothing.
async fn a_bounce_tells_email_bounced_once(mode: Mode) {
    let smtp = tests::SmtpSink::start(&["--reject", "^r0001@"]);
    let sink = WebhookSink::start().await;
    let url = smtp.url();
    let app = app_for_hooks(mode, |s| s.smtp_url = Some(url)).await;
    let news = newsletter(&app, 3, "<p>Hello {{ subscriber.name }}!</p>").await;
    let t = &news.owner;
    let (ep, _) = endpoint(&app, t, &sink, json!(["email.bounced"])).await;
    news.send(&app).await;
    smtp.wait_for(2).await;
    sink.wait_accepted(1, 60).await;
    let bounce = sink
        .received()
        .into_iter()
        .find(|r| r.answered == 200)
        .unwrap();
    assert_eq!(bounce.body["type"], "email.bounced");
    assert_eq!(bounce.body["data"]["recipient"], "r0001@example.com");
    assert_eq!(bounce.body["data"]["client_id"], news.client.as_str());
    assert!(bounce.body["data"]["delivery_id"].is_string());
    // Only the one, and only once.
    wait_until("the campaign is done", 30, || async {
        news.stats(&app).await["failed"] == 1
    })
    .await;
    let got = sink.accepted_by_id();
    assert_eq!(got.values().collect::<Vec<_>>(), [&1], "{got:?}");
    assert_eq!(deliveries(&app, t, &ep).await.len(), 1);
}

both_modes!(
    a_bounce_tells_email_bounced_once,
    every_import_tells_import_finished_once,
    deliveries_are_signed_and_logged,
    a_recovering_receiver_gets_each_event_once,
    a_killed_worker_loses_no_webhook,
    rotation_signs_with_both_secrets_during_the_overlap,
    an_endpoint_failing_for_the_whole_horizon_is_disabled,
    private_targets_are_refused_outside_tests,
    bad_input_is_refused_naming_the_field,
    facts_of_every_area_become_events,
);
