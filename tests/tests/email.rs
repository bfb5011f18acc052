//! Email through a real SMTP server on loopback (aiosmtpd, see
//! `tests/smtp_sink.py`): what arrives, once, and how faults are handled.
//! The embedded default writes the same messages as `.eml` files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{
    FALLING, Mail, Mode, SmtpSink, Tenant, TestApp, audits_csv, both_modes, mystery_audit,
    parse_mail, spawn_with,
};

/// An agency with an owner and an invited admin.
async fn agency_with_two_admins(app: &TestApp) -> (Tenant, String) {
    let t = app.signup("Acme").await;
    let admin = format!("admin-{}@acme.example.com", uuid::Uuid::new_v4().simple());
    let r = app
        .post(
            "/api/v1/members",
            &t.token,
            json!({"email": admin, "role": "admin"}),
        )
        .await;
    let invite = r.body["invitation_token"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/accept-invitation",
            None,
            Some(json!({"token": invite, "name": "Ada", "password": "a long enough password"})),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text);
    (t, admin)
}

/// A token of the admin invited by [`agency_with_two_admins`].
async fn sign_in(app: &TestApp, admin: &str) -> String {
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": admin, "password": "a long enough password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["token"].as_str().unwrap().to_owned()
}

/// Imports falling ratings and waits for the worker's UX recompute.
async fn raise_flags(app: &TestApp, t: &Tenant, locale: &str) -> String {
    let (client, audit, _) = mystery_audit(app, t, locale).await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&t.token),
            "text/csv",
            audits_csv(&FALLING),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&t.token, "client_ux", &client, 1).await;
    client
}

async fn deliveries(app: &TestApp, t: &Tenant) -> Vec<serde_json::Value> {
    let r = app.get("/api/v1/deliveries?limit=200", &t.token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"].as_array().unwrap().clone()
}

/// Waits until no delivery is queued or deferred.
async fn settled(app: &TestApp, t: &Tenant) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let d = deliveries(app, t).await;
        if !d.is_empty()
            && d.iter()
                .all(|x| x["status"] == "sent" || x["status"] == "failed")
        {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "deliveries never settled: {d:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn ux_alerts_reach_every_admin_once(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let (t, admin) = agency_with_two_admins(&app).await;
    let client = raise_flags(&app, &t, "en").await;
    let mail: Vec<Mail> = sink
        .wait_for(2)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    let to: HashSet<String> = mail.iter().map(|m| m.to.clone()).collect();
    assert_eq!(to, HashSet::from([t.email.clone(), admin.clone()]));
    for m in &mail {
        assert!(
            m.subject.contains("Fitness club") && m.subject.contains("negative"),
            "{}",
            m.subject
        );
        assert_eq!(m.from, "reports@growthpoint.localhost");
        assert!(m.message_id.ends_with("@growthpoint"), "{}", m.message_id);
        assert_eq!(m.content_type, "multipart/alternative", "{}", m.raw);
        // The touchpoint's figures (both windows, the change) in both parts.
        for part in [&m.text, &m.html] {
            assert!(
                part.contains("5.00") && part.contains("1.00") && part.contains("-4.00"),
                "{part}"
            );
            assert!(part.contains("Acme"), "branding: {part}");
        }
        assert!(m.html.contains("<table"), "{}", m.html);
    }
    let d = settled(&app, &t).await;
    assert_eq!(d.len(), 2);
    for x in &d {
        assert_eq!(
            (x["status"].as_str(), x["attempts"].as_i64()),
            (Some("sent"), Some(1))
        );
        assert_eq!(x["kind"], "ux_alerts");
        assert_eq!(x["client_id"], client.as_str());
        let id = x["message_id"].as_str().unwrap();
        assert!(
            mail.iter().any(|m| format!("<{}>", m.message_id) == id),
            "{id}"
        );
    }
    // The flags stay: the next recompute raises nothing and mails nothing.
    let audit = app
        .get(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
        )
        .await
        .body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&t.token),
            "text/csv",
            audits_csv(&[(1, 1)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.wait_for_job(&t.token, "client_ux", &client, 2).await;
    assert_eq!(
        deliveries(&app, &t).await.len(),
        2,
        "no second email for the same flags"
    );

    // The preview is the same email, rendered without sending.
    let p = app
        .get(
            &format!("/api/v1/clients/{client}/email-previews/ux_alerts"),
            &t.token,
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text);
    assert!(
        p.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        p.text.contains("<table") && p.text.contains("Fitness club"),
        "{}",
        p.text
    );
    let p = app
        .get(
            &format!("/api/v1/clients/{client}/email-previews/ux_alerts?part=text"),
            &t.token,
        )
        .await;
    assert!(p.text.contains("-4.00"), "{}", p.text);
    let r = app
        .get(
            &format!("/api/v1/clients/{client}/email-previews/newsletter"),
            &t.token,
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["kind".to_owned()])
    );
    assert_eq!(sink.messages().len(), 2, "previews send nothing");
}

/// Russian clients get Russian email.
async fn a_russian_client_gets_russian_alerts(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    raise_flags(&app, &t, "ru").await;
    let m = parse_mail(&sink.wait_for(1).await[0]);
    assert!(
        m.subject.contains("отрицательные отклонения"),
        "{}",
        m.subject
    );
    assert!(
        m.text.contains("-4,00") && m.html.contains("-4,00"),
        "{}",
        m.text
    );
    assert!(
        m.text.contains("Фитнес") || m.text.contains("Fitness"),
        "{}",
        m.text
    );
}

/// 421 and 451 are temporary: the message is retried and arrives once.
async fn temporary_failures_are_retried_and_delivered_once(mode: Mode) {
    let sink = SmtpSink::start(&["--data-replies", "421,451"]);
    let app = spawn_with(mode, |s| {
        s.smtp_url = Some(sink.url());
        s.email_retry_base_ms = 50;
    })
    .await;
    let (t, _) = agency_with_two_admins(&app).await;
    raise_flags(&app, &t, "en").await;
    let d = settled(&app, &t).await;
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|x| x["status"] == "sent"), "{d:?}");
    let attempts: i64 = d.iter().map(|x| x["attempts"].as_i64().unwrap()).sum();
    assert_eq!(attempts, 4, "two refusals, then two successes: {d:?}");
    let mail = sink.messages();
    assert_eq!(mail.len(), 2, "each admin gets exactly one copy");
    let ids: HashSet<String> = mail.iter().map(|m| parse_mail(m).message_id).collect();
    assert_eq!(ids.len(), 2);
}

/// 550 is permanent: that delivery fails at once, the other is sent.
async fn a_permanent_refusal_fails_without_retry(mode: Mode) {
    let sink = SmtpSink::start(&["--reject", "^admin-"]);
    let app = spawn_with(mode, |s| {
        s.smtp_url = Some(sink.url());
        s.email_retry_base_ms = 50;
    })
    .await;
    let (t, admin) = agency_with_two_admins(&app).await;
    raise_flags(&app, &t, "en").await;
    let d = settled(&app, &t).await;
    let refused = d.iter().find(|x| x["recipient"] == admin.as_str()).unwrap();
    assert_eq!(refused["status"], "failed");
    assert_eq!(refused["attempts"], 1, "no retry after 550");
    assert!(
        refused["last_error"].as_str().unwrap().contains("550"),
        "{refused}"
    );
    let owner = d
        .iter()
        .find(|x| x["recipient"] == t.email.as_str())
        .unwrap();
    assert_eq!(owner["status"], "sent");
    assert_eq!(sink.messages().len(), 1);
    let r = app.get("/api/v1/deliveries?status=failed", &t.token).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/deliveries?status=lost", &t.token).await;
    assert_eq!(
        (r.status, r.error_fields()),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["status".to_owned()])
    );
}

/// The agency's logo and colour are in every email it sends (here the UX
/// alert, as received by the SMTP server) and in the previews; only owners
/// and admins change them, and bad values are refused by field.
async fn the_agency_brand_is_in_every_email(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let t = app.signup("Acme").await;
    let r = app.get("/api/v1/agency", &t.token).await;
    assert_eq!(
        (r.body["name"].as_str(), r.body["brand_colour"].as_str()),
        (Some("Acme"), Some("#1f4e79"))
    );
    assert!(r.body["logo_url"].is_null());
    for (body, field) in [
        (
            json!({"logo_url": "http://cdn.acme.example.com/logo.png"}),
            "logo_url",
        ),
        (json!({"logo_url": "javascript:alert(1)"}), "logo_url"),
        (json!({"brand_colour": "#12345"}), "brand_colour"),
        (json!({"name": ""}), "name"),
    ] {
        let r = app
            .call(Method::PATCH, "/api/v1/agency", Some(&t.token), Some(body))
            .await;
        assert_eq!(
            (r.status, r.error_fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{}",
            r.text
        );
    }
    let key = app.api_key(&t.token, &["read", "write"]).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agency",
            Some(&key),
            Some(json!({"brand_colour": "#000000"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    // A light colour gets dark header text.
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agency",
            Some(&t.token),
            Some(json!({"name": "Acme Studio", "logo_url": "https://cdn.acme.example.com/logo.png", "brand_colour": "#FFEB3B"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["brand_colour"], "#ffeb3b");
    let client = raise_flags(&app, &t, "en").await;
    let m = parse_mail(&sink.wait_for(1).await[0]);
    assert!(
        m.html.contains(
            "<img src=\"https:&#x2f;&#x2f;cdn.acme.example.com&#x2f;logo.png\" alt=\"Acme Studio\""
        ),
        "the logo at the top: {}",
        m.html
    );
    assert!(
        m.html
            .contains("background:#ffeb3b;padding:20px 28px;color:#1f2933;"),
        "{}",
        m.html
    );
    assert!(m.text.contains("Acme Studio"), "{}", m.text);
    let p = app
        .get(
            &format!("/api/v1/clients/{client}/email-previews/ux_alerts"),
            &t.token,
        )
        .await;
    assert!(p.text.contains("background:#ffeb3b"), "{}", p.text);
    // "" removes the logo and restores the default colour.
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/agency",
            Some(&t.token),
            Some(json!({"logo_url": "", "brand_colour": ""})),
        )
        .await;
    assert_eq!(
        (
            r.body["logo_url"].is_null(),
            r.body["brand_colour"].as_str()
        ),
        (true, Some("#1f4e79")),
        "{}",
        r.text
    );
    let p = app
        .get(
            &format!("/api/v1/clients/{client}/email-previews/ux_alerts"),
            &t.token,
        )
        .await;
    assert!(!p.text.contains("<img"), "{}", p.text);
}

async fn failed_job_mail(app: &TestApp, t: &Tenant, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let d: Vec<serde_json::Value> = deliveries(app, t)
            .await
            .into_iter()
            .filter(|d| d["kind"] == "job_failed")
            .collect();
        if d.len() >= n && d.iter().all(|x| x["status"] == "sent") {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} failed-job emails: {d:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Recomputes given up together reach each admin as one email listing them
/// all; each failure is told once, and a later one gets its own email.
async fn failed_jobs_given_up_together_are_one_email_per_admin(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| {
        s.smtp_url = Some(sink.url());
        s.alert_window_ms = 3_000;
    })
    .await;
    let (t, admin) = agency_with_two_admins(&app).await;
    let targets = [
        tests::failing_target(&app, &t).await,
        tests::failing_target(&app, &t).await,
        tests::failing_target(&app, &t).await,
    ];
    let d = failed_job_mail(&app, &t, 2).await;
    assert_eq!(d.len(), 2, "{d:?}");
    let mail: Vec<Mail> = sink.messages().iter().map(|m| parse_mail(m)).collect();
    assert_eq!(mail.len(), 2);
    let to: HashSet<String> = mail.iter().map(|m| m.to.clone()).collect();
    assert_eq!(to, HashSet::from([t.email.clone(), admin.clone()]));
    for m in &mail {
        assert_eq!(m.subject, "3 recomputes failed", "{}", m.subject);
        for target in &targets {
            assert!(m.text.contains(target.as_str()), "{target} in {}", m.text);
            assert!(m.html.contains(target.as_str()));
        }
        assert!(m.text.contains("unknown recompute kind"), "{}", m.text);
    }
    let failed = app.get("/api/v1/jobs?status=failed", &t.token).await;
    assert_eq!(failed.body["items"].as_array().unwrap().len(), 3);
    // Nothing is told twice, however many sweeps pass.
    tokio::time::sleep(std::time::Duration::from_millis(4_000)).await;
    assert_eq!(sink.messages().len(), 2);
    // A later failure is an email of its own.
    let later = tests::failing_target(&app, &t).await;
    failed_job_mail(&app, &t, 4).await;
    let mail: Vec<Mail> = sink.wait_for(4).await[2..]
        .iter()
        .map(|m| parse_mail(m))
        .collect();
    for m in &mail {
        assert_eq!(m.subject, "Recompute failed: no_such_kind", "{}", m.subject);
        assert!(m.text.contains(later.as_str()), "{}", m.text);
        assert!(!m.text.contains(targets[0].as_str()), "{}", m.text);
    }
}

/// Failed-job alerts come in each admin's language: the user's own choice
/// (`PATCH /me`, `updateMe`), else the agency's (`PATCH /agency`, or chosen
/// at sign-up). Bad values are refused by field; API keys have no "me".
async fn failed_job_alerts_come_in_each_admins_language(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| {
        s.smtp_url = Some(sink.url());
        s.alert_window_ms = 300;
    })
    .await;
    // Chosen at sign-up; anything but ru/en is refused.
    for (locale, status) in [
        ("xx", StatusCode::UNPROCESSABLE_ENTITY),
        ("ru", StatusCode::CREATED),
    ] {
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/signup",
                None,
                Some(json!({"agency_name": "Studio", "name": "Olga", "password": "correct horse battery",
                            "email": format!("{}@studio.example.com", uuid::Uuid::new_v4().simple()),
                            "locale": locale})),
            )
            .await;
        assert_eq!(r.status, status, "{}", r.text);
        if status == StatusCode::CREATED {
            let token = r.body["token"].as_str().unwrap();
            assert_eq!(app.get("/api/v1/agency", token).await.body["locale"], "ru");
        } else {
            assert_eq!(r.error_fields(), ["locale"]);
        }
    }

    // Acme works in Russian (it signed up with the default, English); its
    // invited admin reads English.
    let (t, admin) = agency_with_two_admins(&app).await;
    assert_eq!(
        app.get("/api/v1/agency", &t.token).await.body["locale"],
        "en"
    );
    let patch = |token: String, path: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            app.call(Method::PATCH, path, Some(&token), Some(body))
                .await
        }
    };
    let r = patch(t.token.clone(), "/api/v1/agency", json!({"locale": "ru"})).await;
    assert_eq!(
        (r.status, r.body["locale"].as_str()),
        (StatusCode::OK, Some("ru")),
        "{}",
        r.text
    );
    let admin_token = sign_in(&app, &admin).await;
    let r = patch(admin_token.clone(), "/api/v1/me", json!({"locale": "en"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["locale"], "en");
    for (token, path) in [
        (t.token.clone(), "/api/v1/agency"),
        (admin_token.clone(), "/api/v1/me"),
    ] {
        let r = patch(token, path, json!({"locale": "de"})).await;
        assert_eq!(
            (r.status, r.error_fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec!["locale".to_owned()]),
            "{path}: {}",
            r.text
        );
    }
    let key = app.api_key(&t.token, &["read", "write"]).await;
    let r = patch(key, "/api/v1/me", json!({"locale": "ru"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    let target = tests::failing_target(&app, &t).await;
    failed_job_mail(&app, &t, 2).await;
    let by_recipient = |from: usize| -> std::collections::HashMap<String, Mail> {
        sink.messages()[from..]
            .iter()
            .map(|m| parse_mail(m))
            .map(|m| (m.to.clone(), m))
            .collect()
    };
    let mail = by_recipient(0);
    let (owner, en) = (&mail[&t.email], &mail[&admin]);
    assert_eq!(owner.subject, "Пересчёт не удался: no_such_kind");
    assert!(
        owner
            .text
            .contains("Фоновые пересчёты ниже исчерпали все попытки")
            && owner.text.contains(target.as_str())
            && owner.text.contains("Попыток: 5"),
        "{}",
        owner.text
    );
    assert!(owner.html.contains("Версия данных"), "{}", owner.html);
    // Dates as Russians write them: 02.12.2026.
    let today = chrono::Utc::now().format("%d.%m.%Y").to_string();
    assert!(owner.text.contains(&today), "{today} in {}", owner.text);
    assert_eq!(en.subject, "Recompute failed: no_such_kind");
    assert!(
        en.text.contains("used up all their attempts") && en.text.contains(target.as_str()),
        "{}",
        en.text
    );

    // "" (here over GraphQL) goes back to the agency's language.
    let r = app
        .graphql(
            Some(&admin_token),
            "mutation { updateMe(input: {locale: \"\"}) { user { email locale } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.body["data"]["updateMe"]["user"]["locale"],
        json!(null),
        "{}",
        r.text
    );
    tests::failing_target(&app, &t).await;
    failed_job_mail(&app, &t, 4).await;
    let mail = by_recipient(2);
    assert_eq!(mail.len(), 2);
    for m in mail.values() {
        assert_eq!(m.subject, "Пересчёт не удался: no_such_kind", "{}", m.to);
    }
}

/// An admin who chose Russian gets a client's UX alerts in Russian (the
/// touchpoint named in Russian too), whatever the client's language; the
/// others get the client's. The preview speaks the caller's language.
async fn ux_alerts_follow_an_admins_own_language(mode: Mode) {
    let sink = SmtpSink::start(&[]);
    let app = spawn_with(mode, |s| s.smtp_url = Some(sink.url())).await;
    let (t, admin) = agency_with_two_admins(&app).await;
    let admin_token = sign_in(&app, &admin).await;
    let r = app
        .call(
            Method::PATCH,
            "/api/v1/me",
            Some(&admin_token),
            Some(json!({"locale": "ru"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let client = raise_flags(&app, &t, "en").await;
    let mail: std::collections::HashMap<String, Mail> = sink
        .wait_for(2)
        .await
        .iter()
        .map(|m| parse_mail(m))
        .map(|m| (m.to.clone(), m))
        .collect();
    assert!(
        mail[&t.email].subject.contains("negative"),
        "{}",
        mail[&t.email].subject
    );
    let ru = &mail[&admin];
    assert!(
        ru.subject.contains("отрицательные отклонения"),
        "{}",
        ru.subject
    );
    assert!(ru.text.contains("-4,00"), "{}", ru.text);
    let lib = app.get("/api/v1/touchpoint-libraries", &t.token).await;
    let lib = lib.body["items"][0]["id"].as_str().unwrap().to_owned();
    let lib = app
        .get(&format!("/api/v1/touchpoint-libraries/{lib}"), &t.token)
        .await;
    let tp = &lib.body["stages"][3]["touchpoints"][0];
    assert!(
        ru.text.contains(tp["name_ru"].as_str().unwrap()),
        "{}",
        ru.text
    );
    assert_eq!(settled(&app, &t).await.len(), 2, "one email per admin");
    let preview = |token: String| {
        let app = &app;
        let path = format!("/api/v1/clients/{client}/email-previews/ux_alerts?part=text");
        async move { app.get(&path, &token).await.text }
    };
    assert!(preview(admin_token).await.contains("-4,00"));
    assert!(preview(t.token.clone()).await.contains("-4.00"));
}

both_modes!(
    the_agency_brand_is_in_every_email,
    ux_alerts_follow_an_admins_own_language,
    failed_job_alerts_come_in_each_admins_language,
    failed_jobs_given_up_together_are_one_email_per_admin,
    ux_alerts_reach_every_admin_once,
    a_russian_client_gets_russian_alerts,
    temporary_failures_are_retried_and_delivered_once,
    a_permanent_refusal_fails_without_retry
);

/// Without SMTP_URL (the embedded default) every email is an `.eml` file in
/// the outbox folder, one per delivery.
#[tokio::test]
async fn the_embedded_default_writes_eml_files() {
    let app = spawn_with(Mode::Sqlite, |_| {}).await;
    assert!(app.settings.smtp_url.is_none());
    let t = app.signup("Acme").await;
    raise_flags(&app, &t, "en").await;
    let files = tests::wait_for_files(&app.settings.outbox_dir(), 1).await;
    assert_eq!(files.len(), 1);
    let m = parse_mail(&files[0]);
    assert!(m.subject.contains("Fitness club"), "{}", m.subject);
    assert_eq!(m.to, t.email);
    assert!(!m.text.is_empty() && !m.html.is_empty());
    let d = settled(&app, &t).await;
    assert_eq!(d[0]["status"], "sent");
}
