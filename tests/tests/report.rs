//! The live report page: report links are created, listed and revoked by
//! owners and admins over REST and GraphQL; `GET /r/{token}` shows the
//! client's latest panel with the very figures the summary and panel
//! endpoints give, under a strict CSP, `noindex`, with a print stylesheet
//! and no outside asset; an expired, revoked or forged link (another MAC,
//! another client's link) gets one and the same 404 page; digests link to
//! the active report; headless Chromium opens it with the network off and
//! prints it to PDF.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use service::email::links::{LinkSigner, ReportClaim};
use tests::{Mode, Panel, Resp, Tenant, TestApp, both_modes, ndjson_rows, panel, spawn_app};
use uuid::Uuid;

/// A client with a customer panel of 40 responses, computed.
async fn client_with_panel(app: &TestApp, t: &Tenant) -> (String, String, Value) {
    let (p, summary) = panel_with_responses(app, t).await;
    (p.client, p.questionnaire, summary)
}

async fn panel_with_responses(app: &TestApp, t: &Tenant) -> (Panel, Value) {
    let p = panel(app, t).await;
    let r = app
        .import_ndjson(&t.token, &p.questionnaire, ndjson_rows("r", 40))
        .await;
    let version = r["data_version"].as_i64().unwrap();
    let summary = app
        .wait_for_summary(&t.token, &p.questionnaire, version)
        .await;
    (p, summary)
}

/// The rest of what the page shows: the client's library and a QFD cell,
/// a Cash Journey model and a hypothesis, evaluated.
async fn every_part(app: &TestApp, t: &Tenant, p: &Panel) {
    let client = &p.client;
    for (m, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/clients/{client}"),
            json!({"touchpoint_library_id": p.library}),
        ),
        (
            Method::PUT,
            format!("/api/v1/clients/{client}/qfd/matrix"),
            json!({"cells": [{"factor_id": p.factors[0], "touchpoint_id": p.touchpoint, "value": 9}]}),
        ),
    ] {
        let r = app.call(m, &path, Some(&t.token), Some(body)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    app.create(
        &format!("/api/v1/clients/{client}/cash-models"),
        &t.token,
        tests::world::cash_model_body(),
    )
    .await;
    app.create(
        &format!("/api/v1/clients/{client}/hypotheses"),
        &t.token,
        json!({"name": "Moscow promotes more", "questionnaire_id": p.questionnaire,
               "segment": {"conditions": [{"question": "city", "values": ["msk"]}]},
               "metric": {"kind": "nps"}, "direction": "greater"}),
    )
    .await;
    app.hypotheses_after(&t.token, client, 0).await;
}

/// The path of a page URL (`http://host:port/r/…` → `/r/…`).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    format!("/{}", rest.split_once('/').unwrap().1)
}

/// A new link of `client` with the defaults; the answer, asserted 201.
async fn new_link(app: &TestApp, token: &str, client: &str) -> Resp {
    let path = format!("/api/v1/clients/{client}/report-links");
    let r = app.post(&path, token, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r
}

async fn revoke(app: &TestApp, token: &str, id: &str) -> Resp {
    let path = format!("/api/v1/report-links/{id}");
    app.call(Method::DELETE, &path, Some(token), None).await
}

async fn page(app: &TestApp, path: &str) -> Resp {
    app.call(Method::GET, path, None, None).await
}

/// The `data-value`s of the elements with `data-figure="{figure}"`.
fn figures(html: &str, figure: &str) -> Vec<f64> {
    html.split(&format!("data-figure=\"{figure}\" data-value=\""))
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// The answer to a link that is not valid: the same page whatever the
/// reason, naming nothing.
fn assert_gone(r: &Resp, what: &str, secrets: &[&str]) {
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{what}: {}", r.text);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{what}"
    );
    assert!(r.text.contains("noindex"), "{what}");
    assert!(
        r.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("default-src 'none'"),
        "{what}"
    );
    for s in secrets {
        assert!(!r.text.contains(s), "{what}: the 404 page shows {s}");
    }
}

async fn links_live_until_revoked_over_rest_and_graphql(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Report Agency").await;
    let (p, summary) = panel_with_responses(&app, &t).await;
    every_part(&app, &t, &p).await;
    let (client, questionnaire) = (p.client.clone(), p.questionnaire.clone());
    let base = format!("/api/v1/clients/{client}/report-links");

    let r = app.post(&base, &t.token, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let link = r.body.clone();
    assert_eq!(link["status"], "active");
    assert!(link["revoked_at"].is_null() && link["label"].is_null());
    let expires: chrono::DateTime<Utc> = link["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - Utc::now()).num_hours();
    assert!(
        (29 * 24..=30 * 24).contains(&days),
        "30 days by default: {days} h"
    );
    let url = link["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/r/", app.base)), "{url}");

    // The page: the panel's figures as the summary and panel endpoints give them.
    let r = page(&app, &path_of(url)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let html = &r.text;
    let header = |n: &str| r.headers[n].to_str().unwrap().to_owned();
    assert!(header("content-type").starts_with("text/html"));
    let csp = header("content-security-policy");
    for d in [
        "default-src 'none'",
        "style-src 'sha256-",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(d), "{d} not in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(header("x-robots-tag"), "noindex, nofollow");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert_eq!(header("cache-control"), "no-store");
    assert!(html.contains(r#"<meta name="robots" content="noindex, nofollow">"#));
    assert!(html.contains("@media print"), "a print stylesheet");
    for outside in ["src=", "href=", "<script", "<link", "url(", "@import"] {
        assert!(
            !html.contains(outside),
            "the page loads something: {outside}"
        );
    }
    assert!(html.contains("Fitness club") && html.contains("Report Agency"));
    assert!(html.contains("<html lang=\"en\">"));
    let s = &summary["summary"];
    assert_eq!(figures(html, "n"), [s["n"].as_f64().unwrap()]);
    let nps = figures(html, "nps");
    assert!(
        nps.len() == 1 && close(nps[0], s["nps"]["nps"].as_f64().unwrap()),
        "page {nps:?} vs summary {}",
        s["nps"]
    );
    let mut shown = figures(html, "factor-mean");
    let mut means: Vec<f64> = s["factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["mean"].as_f64().unwrap())
        .collect();
    shown.sort_by(f64::total_cmp);
    means.sort_by(f64::total_cmp);
    assert_eq!(shown.len(), 2, "both factors");
    assert!(
        shown.iter().zip(&means).all(|(a, b)| close(*a, *b)),
        "{shown:?} vs {means:?}"
    );
    // Ranked as the panel endpoint ranks them, with its CIs.
    let panel = app
        .get(
            &format!("/api/v1/questionnaires/{questionnaire}/panel"),
            &t.token,
        )
        .await;
    let first = panel.body["panel"]["factors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rank"] == 1)
        .unwrap()
        .clone();
    let first_row = html.split("<tr data-factor=").nth(1).unwrap();
    assert!(
        first_row.starts_with(&format!("\"{}\"", first["name"].as_str().unwrap())),
        "{first_row}"
    );
    assert!(html.contains(&format!(
        "{:.2} … {:.2}",
        first["ci95_low"].as_f64().unwrap(),
        first["ci95_high"].as_f64().unwrap()
    )));
    assert_eq!(html.matches("<svg").count(), 1, "the factors chart");
    for part in ["panel", "hypotheses", "qfd", "ux", "cash"] {
        assert!(html.contains(&format!("<section id=\"{part}\">")), "{part}");
    }
    assert!(
        html.contains(&format!(
            "data version {}",
            summary["data_version"].as_i64().unwrap()
        )),
        "the panel's stamp"
    );
    // The other parts, as their endpoints give them.
    let section = |id: &str| {
        html.split(&format!("<section id=\"{id}\">"))
            .nth(1)
            .unwrap()
            .split("</section>")
            .next()
            .unwrap()
            .to_owned()
    };
    let hyp = app
        .get(
            &format!("/api/v1/clients/{client}/hypotheses/results"),
            &t.token,
        )
        .await;
    let verdict = hyp.body["items"][0]["result"]["verdict"].as_str().unwrap();
    let hypotheses = section("hypotheses");
    assert!(
        hypotheses.contains("Moscow promotes more")
            && hypotheses.contains(&format!("class=\"verdict-{verdict}\"")),
        "{hypotheses}"
    );
    let qfd = app
        .get(&format!("/api/v1/clients/{client}/qfd"), &t.token)
        .await;
    let tp = qfd.body["priorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["touchpoint_id"] == p.touchpoint.as_str())
        .unwrap()
        .clone();
    let weight = format!("{:.1}%", 100.0 * tp["relative_weight"].as_f64().unwrap());
    let qfd_part = section("qfd");
    assert!(qfd_part.contains(&weight), "{weight} not in {qfd_part}");
    let cash = section("cash");
    // Revenue of the world's model: T = 100, N = 50, 5000 + 5500.
    assert_eq!(cash.matches("10\u{202f}500").count(), 3, "{cash}");
    assert!(cash.contains("Plan"));

    // A second link, labelled; both listed.
    let r = app
        .post(
            &base,
            &t.token,
            json!({"label": " For the CEO ", "expires_in_days": 7}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["label"], "For the CEO");
    let second = r.body["id"].as_str().unwrap().to_owned();
    let r = app.get(&format!("{base}?limit=1"), &t.token).await;
    assert_eq!(r.body["items"][0]["id"], link["id"]);
    let after = r.body["next_cursor"].as_str().unwrap();
    let r = app
        .get(&format!("{base}?limit=1&after={after}"), &t.token)
        .await;
    assert_eq!(r.body["items"][0]["id"], second.as_str());
    assert!(r.body["next_cursor"].is_null());

    // Revoked: the page is gone at once; the link stays listed.
    let id = link["id"].as_str().unwrap();
    let r = revoke(&app, &t.token, id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "revoked");
    assert!(r.body["url"].is_null() && r.body["revoked_at"].is_string());
    assert_gone(
        &page(&app, &path_of(url)).await,
        "revoked",
        &["Fitness club", "Report Agency"],
    );
    let r = app.get(&base, &t.token).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["status"], "revoked");
    assert_eq!(items[1]["status"], "active");
    // Revoking again changes nothing.
    let r = revoke(&app, &t.token, id).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["revoked_at"], items[0]["revoked_at"]);

    // GraphQL: the same calls.
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!) { createReportLink(clientId: $c, input: {label: \"gql\", expiresInDays: 3}) { id url status label } }",
            json!({"c": client}),
        )
        .await;
    let made = &r.body["data"]["createReportLink"];
    assert_eq!(made["status"], "active", "{}", r.text);
    let gql_url = made["url"].as_str().unwrap().to_owned();
    assert_eq!(page(&app, &path_of(&gql_url)).await.status, StatusCode::OK);
    let r = app
        .graphql(
            Some(&t.token),
            "query($c: ID!) { reportLinks(clientId: $c, first: 10) { items { id status label } nextCursor } }",
            json!({"c": client}),
        )
        .await;
    assert_eq!(
        r.body["data"]["reportLinks"]["items"]
            .as_array()
            .map(Vec::len),
        Some(3),
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { revokeReportLink(id: $id) { status revokedAt url } }",
            json!({"id": made["id"]}),
        )
        .await;
    assert_eq!(
        r.body["data"]["revokeReportLink"]["status"], "revoked",
        "{}",
        r.text
    );
    assert_gone(&page(&app, &path_of(&gql_url)).await, "revoked", &[]);

    // The writes are in the audit log, without the URL.
    let log = app
        .get("/api/v1/audit-log?resource_type=report_link", &t.token)
        .await;
    let actions: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "report_link.create")
            .count(),
        3,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "report_link.revoke")
            .count(),
        2,
        "{actions:?}"
    );
    let token = url.rsplit('/').next().unwrap();
    assert!(!log.text.contains(token.split('.').nth(1).unwrap()));
}

async fn expired_forged_and_moved_links_get_the_same_404_page(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Forgery Agency").await;
    let (client, _, _) = client_with_panel(&app, &t).await;
    let other = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Other client", "locale": "ru"}),
        )
        .await;
    let mine = new_link(&app, &t.token, &client).await.body;
    let theirs = new_link(&app, &t.token, &other).await.body;
    // The other client's page is in Russian, and says it has no data yet.
    let r = page(&app, &path_of(theirs["url"].as_str().unwrap())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("<html lang=\"ru\">") && r.text.contains("Данных пока нет."));

    // Expired: made through the service with a past expiry (the app has no
    // clock to move; no sleeping).
    let agency: Uuid = t.agency_id.parse().unwrap();
    let ctx = service::RequestCtx::worker(agency);
    let expired = app
        .services
        .issue_report_link(
            &ctx,
            client.parse().unwrap(),
            None,
            Utc::now() - Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(expired.status, "expired");
    assert!(expired.url.is_none());
    let claim = ReportClaim {
        link_id: expired.id,
        expires_at: expired.expires_at.timestamp(),
    };
    let signer = &app.services.links;
    let token_of =
        |c: &str, claim: ReportClaim| signer.report_token(agency, c.parse().unwrap(), claim);
    let secrets = ["Fitness club", "Other client", "Forgery Agency"];
    assert_gone(
        &page(&app, &format!("/r/{}", token_of(&client, claim))).await,
        "expired",
        &secrets,
    );

    let url = mine["url"].as_str().unwrap();
    let token = url.rsplit('/').next().unwrap().to_owned();
    let mine_claim = LinkSigner::report_claim(&token).unwrap();
    let theirs_claim =
        LinkSigner::report_claim(theirs["url"].as_str().unwrap().rsplit('/').next().unwrap())
            .unwrap();
    let mut flipped = token.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let (payload, mac) = token.split_once('.').unwrap();
    let cases = [
        ("a changed MAC", flipped),
        ("no MAC", payload.to_owned()),
        ("junk", "not-a-token".to_owned()),
        ("a random link id", {
            let fake = ReportClaim {
                link_id: Uuid::now_v7(),
                ..mine_claim
            };
            token_of(&client, fake)
        }),
        // The right key, another client: the link's row names its own.
        (
            "my link signed for the other client",
            token_of(&other, mine_claim),
        ),
        (
            "their link signed for my client",
            token_of(&client, theirs_claim),
        ),
        // The MAC of my link moved onto their link's id.
        (
            "my MAC on their link",
            format!(
                "{}.{mac}",
                theirs["url"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .split_once('.')
                    .unwrap()
                    .0
            ),
        ),
        // A later expiry than the row's, even signed with the right key.
        (
            "a longer life",
            token_of(
                &client,
                ReportClaim {
                    expires_at: mine_claim.expires_at + 86_400,
                    ..mine_claim
                },
            ),
        ),
        ("a very long token", "A".repeat(4000)),
    ];
    let mut bodies = Vec::new();
    for (what, token) in &cases {
        let r = page(&app, &format!("/r/{token}")).await;
        assert_gone(&r, what, &secrets);
        bodies.push(r.text);
    }
    bodies.dedup();
    assert_eq!(bodies.len(), 1, "one 404 page whatever the reason");
    // The genuine link still works.
    assert_eq!(page(&app, &path_of(url)).await.status, StatusCode::OK);
    // Only GET.
    let r = app
        .call(Method::POST, &path_of(url), None, Some(json!({})))
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
}

async fn only_owners_and_admins_manage_links_of_their_own_agency(mode: Mode) {
    let app = spawn_app(mode).await;
    let a = app.signup("Agency A").await;
    let b = app.signup("Agency B").await;
    let client = app
        .create("/api/v1/clients", &a.token, json!({"name": "A's client"}))
        .await;
    let base = format!("/api/v1/clients/{client}/report-links");
    let viewer = app.member(&a, "viewer").await;
    let analyst = app.member(&a, "analyst").await;
    let admin = app.member(&a, "admin").await;
    let key = app.api_key(&a.token, &["read", "write", "ingest"]).await;
    for (who, cred) in [
        ("viewer", &viewer),
        ("analyst", &analyst),
        ("API key", &key),
    ] {
        let r = app.post(&base, cred, json!({})).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text);
        assert_eq!(app.get(&base, cred).await.status, StatusCode::FORBIDDEN);
    }
    let r = app.post(&base, &admin, json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/report-links/{id}"),
            Some(&viewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // Validation: every fault named.
    let long = "x".repeat(201);
    for (body, fields) in [
        (json!({"expires_in_days": 0}), vec!["expires_in_days"]),
        (json!({"expires_in_days": 366}), vec!["expires_in_days"]),
        (
            json!({"expires_in_days": -5, "label": "  "}),
            vec!["expires_in_days", "label"],
        ),
        (json!({"label": ""}), vec!["label"]),
        (json!({"label": long}), vec!["label"]),
    ] {
        let r = app.post(&base, &a.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), fields, "{body}");
    }
    for body in [
        json!({"expires_in_days": "7"}),
        json!({"expires_in_days": 1.5}),
        json!({"ttl": 7}),
        json!([]),
    ] {
        let r = app.post(&base, &a.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .graphql(
            Some(&a.token),
            "mutation($c: ID!) { createReportLink(clientId: $c, input: {expiresInDays: 400}) { id } }",
            json!({"c": client}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{}",
        r.text
    );

    // Agency B sees none of it, over REST and GraphQL.
    for (m, path) in [
        (Method::GET, base.clone()),
        (Method::POST, base.clone()),
        (Method::DELETE, format!("/api/v1/report-links/{id}")),
    ] {
        let body = (m == Method::POST).then(|| json!({}));
        let r = app.call(m.clone(), &path, Some(&b.token), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "B: {m} {path}: {}", r.text);
    }
    for (query, vars) in [
        (
            "query($c: ID!) { reportLinks(clientId: $c) { items { id } } }",
            json!({"c": client}),
        ),
        (
            "mutation($c: ID!) { createReportLink(clientId: $c) { id } }",
            json!({"c": client}),
        ),
        (
            "mutation($id: ID!) { revokeReportLink(id: $id) { id } }",
            json!({"id": id}),
        ),
    ] {
        let r = app.graphql(Some(&b.token), query, vars).await;
        assert_eq!(
            r.body["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{query}: {}",
            r.text
        );
    }
    let r = app.get(&base, &a.token).await;
    assert_eq!(r.body["items"][0]["status"], "active", "B revoked nothing");
}

async fn digests_link_to_the_active_report(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Digest Agency").await;
    let (client, _, _) = client_with_panel(&app, &t).await;
    let preview = |part: &'static str| {
        let (app, t, client) = (&app, &t, client.clone());
        async move {
            let r = app
                .get(
                    &format!("/api/v1/clients/{client}/email-previews/digest?part={part}"),
                    &t.token,
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.text
        }
    };
    assert!(!preview("text").await.contains("/r/"), "no link yet");
    let r = new_link(&app, &t.token, &client).await;
    let url = r.body["url"].as_str().unwrap().to_owned();
    let text = preview("text").await;
    assert!(
        text.contains(&format!("Open the live report: {url}")),
        "{text}"
    );
    let html = preview("html").await;
    // minijinja escapes `/` in attributes (`&#x2f;`), which browsers read back.
    let escaped = url.replace('/', "&#x2f;");
    assert!(html.contains(&format!("href=\"{escaped}\"")), "{html}");
    let id = r.body["id"].as_str().unwrap();
    revoke(&app, &t.token, id).await;
    assert!(!preview("text").await.contains("/r/"), "revoked: no link");
}

both_modes!(
    links_live_until_revoked_over_rest_and_graphql,
    expired_forged_and_moved_links_get_the_same_404_page,
    only_owners_and_admins_manage_links_of_their_own_agency,
    digests_link_to_the_active_report
);

/// Headless Chromium, network blocked, opens a report link, finds the
/// panel's figures in the DOM and saves a screenshot and a PDF (print) in
/// the test artifacts (`report/` beside the devpages ones).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_opens_offline_in_chromium_and_prints_to_pdf() {
    let Some(browser) = tests::Browser::find() else {
        return;
    };
    let app = spawn_app(Mode::Sqlite).await;
    let t = app.signup("Offline Agency").await;
    let (p, summary) = panel_with_responses(&app, &t).await;
    every_part(&app, &t, &p).await;
    let client = p.client;
    let r = new_link(&app, &t.token, &client).await;
    let url = r.body["url"].as_str().unwrap().to_owned();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    let _ = std::fs::remove_dir_all(&artifacts);
    let s = &summary["summary"];
    let expect = json!({"n": s["n"], "nps": s["nps"]["nps"]});

    let (report, shown) = browser
        .run(
            "report.mjs",
            &[
                url.as_str(),
                &expect.to_string(),
                artifacts.to_str().unwrap(),
            ],
        )
        .await;
    eprintln!("screenshot and PDF in {}", artifacts.display());
    assert_eq!(report["blocked"], json!([]), "{shown}");
    assert_eq!(report["failed"], json!([]), "{shown}");
    assert_eq!(report["console_errors"], json!([]), "{shown}");
    let n = report["figures"]["n"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert_eq!(n, s["n"].as_f64().unwrap(), "{shown}");
    let nps = report["figures"]["nps"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    assert!(close(nps, s["nps"]["nps"].as_f64().unwrap()), "{shown}");
    assert_eq!(report["figures"]["factor_rows"], 2, "{shown}");
    let png = std::fs::read(artifacts.join("report.png")).unwrap();
    let pdf = std::fs::read(artifacts.join("report.pdf")).unwrap();
    assert!(png.len() > 1000, "the screenshot is {} bytes", png.len());
    assert!(pdf.starts_with(b"%PDF"), "not a PDF");
    assert!(pdf.len() > 1000, "the PDF is {} bytes", pdf.len());
}
