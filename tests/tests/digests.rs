//! Client digests through a real SMTP server: send now with the panel
//! headline and an inline chart, "nothing new" when nothing changed, and
//! the weekly schedule in the client's time zone across a DST change (the
//! scheduler is called with a fixed clock).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mail, Mode, SmtpSink, both_modes, ndjson_rows, panel, parse_mail, spawn_with};

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    s.parse().unwrap()
}

async fn digests_are_sent_now_and_on_schedule(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{}", p.client),
            Some(&t.token),
            Some(
                json!({"report_recipients": ["ceo@client.example.com", "cmo@client.example.com"],
                        "timezone": "Europe/Berlin", "locale": "en", "digest_schedule": "weekly"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .raw(
            Method::POST,
            &format!(
                "/api/v1/questionnaires/{}/responses/import",
                p.questionnaire
            ),
            Some(&t.token),
            "application/x-ndjson",
            ndjson_rows("d-", 40),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_summary(&t.token, &p.questionnaire, 1).await;

    // Send now: one email per recipient, with the figures and the chart.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/digest/send", p.client),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["queued"], 2);
    let mail: Vec<Mail> = sink
        .wait_for(2)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let mut to: Vec<&str> = mail.iter().map(|m| m.to.as_str()).collect();
    to.sort();
    assert_eq!(to, ["ceo@client.example.com", "cmo@client.example.com"]);
    let m = &mail[0];
    assert!(m.subject.contains("report"), "{}", m.subject);
    assert!(m.text.contains("Respondents: 40"), "{}", m.text);
    assert!(m.text.contains("Top choice factors"), "{}", m.text);
    assert!(m.html.contains("cid:factors"), "{}", m.html);
    assert_eq!(m.inline_cids.len(), 1, "one inline chart: {}", m.raw);
    assert!(m.raw.contains("image/png"));

    // Nothing changed since: a short "nothing new", without charts.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/digest/send", p.client),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let again: Vec<Mail> = sink.wait_for(4).await[2..]
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    assert!(
        again[0].subject.contains("nothing new"),
        "{}",
        again[0].subject
    );
    assert!(again[0].inline_cids.is_empty());
    assert!(again[0].text.contains("No new data since the last report"));

    // The schedule, with a fixed clock: Mondays 09:00 Berlin time. Before
    // 09:00 CEST on the first Monday of summer time, the due slot is the
    // previous Monday's 09:00 CET (08:00 UTC); from 07:00 UTC it is this one.
    let sent = app
        .services
        .run_due_digests(utc("2027-03-29T06:59:00Z"))
        .await
        .unwrap();
    assert_eq!(sent, 1);
    let m = parse_mail(&sink.wait_for(6).await[4]);
    assert!(m.subject.contains("2027-03-22"), "{}", m.subject);
    // The same clock again: that slot is done.
    assert_eq!(
        app.services
            .run_due_digests(utc("2027-03-29T06:59:30Z"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        app.services
            .run_due_digests(utc("2027-03-29T07:00:00Z"))
            .await
            .unwrap(),
        1
    );
    let m = parse_mail(&sink.wait_for(8).await[6]);
    assert!(m.subject.contains("2027-03-29"), "{}", m.subject);
    assert_eq!(
        app.services
            .run_due_digests(utc("2027-04-05T06:59:59Z"))
            .await
            .unwrap(),
        0
    );

    // The preview is the digest as of now, sending nothing.
    let r = app
        .get(
            &format!("/api/v1/clients/{}/email-previews/digest", p.client),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.text.contains("Fitness") || r.text.contains("report"),
        "{}",
        r.text
    );
    assert_eq!(sink.messages().len(), 8);
    // No recipients: send now is refused.
    let other = app
        .create("/api/v1/clients", &t.token, json!({"name": "Quiet"}))
        .await;
    let r = app
        .post(
            &format!("/api/v1/clients/{other}/digest/send"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
}

both_modes!(digests_are_sent_now_and_on_schedule);
