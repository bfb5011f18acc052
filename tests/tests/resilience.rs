//! Inputs and races that must not take the server down or store twice
//! (issue 16): documents nested thousands of levels deep, concurrent
//! retries under one `Idempotency-Key`, and links in emails that follow
//! the address `serve --bind` was given.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TestApp, both_modes, panel, spawn_app, url_encode, wait_for_files};

const GROWTHPOINT: &str = env!("CARGO_BIN_EXE_growthpoint-cli");

fn nested(open: &str, close: &str, n: usize) -> String {
    let mut s = String::with_capacity((open.len() + close.len()) * n);
    for _ in 0..n {
        s.push_str(open);
    }
    for _ in 0..n {
        s.push_str(close);
    }
    s
}

/// A JSON request body as text: `Value` itself would recurse to build it.
async fn raw_json(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: String,
) -> tests::Resp {
    app.raw(method, path, token, "application/json", body).await
}

fn assert_refused(r: &tests::Resp, what: &str) {
    assert!(
        r.status.is_client_error(),
        "{what}: expected a 4xx, got {} {}",
        r.status,
        &r.text[..r.text.len().min(300)]
    );
}

async fn assert_alive(app: &TestApp) {
    let r = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "the server is down: {}", r.text);
}

async fn deep_documents_are_refused_and_the_server_stays_up(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    for n in [2_000, 100_000] {
        // The issue's bomb: no token needed, nesting in an argument.
        let query = format!(
            "{{ clients(after: {}) {{ items {{ id }} }} }}",
            nested("[", "]", n)
        );
        let body = serde_json::to_string(&json!({ "query": query })).unwrap();
        let r = raw_json(&app, Method::POST, "/graphql", None, body.clone()).await;
        assert_refused(&r, &format!("GraphQL list nesting {n}"));
        assert!(
            r.text.contains("query") && r.text.contains("nests deeper"),
            "{}",
            r.text
        );
        let r = raw_json(&app, Method::POST, "/graphql", Some(&t.token), body).await;
        assert_refused(&r, &format!("GraphQL list nesting {n}, signed in"));
        assert_alive(&app).await;

        // Object values and selection sets.
        let query = format!(
            "mutation {{ createSegment(clientId: \"{}\", name: \"x\", filter: {}) {{ id }} }}",
            p.client,
            nested("{a: ", "}", n)
        );
        let body = serde_json::to_string(&json!({ "query": query })).unwrap();
        let r = raw_json(&app, Method::POST, "/graphql", Some(&t.token), body).await;
        assert_refused(&r, &format!("GraphQL object nesting {n}"));
        let query = format!("{}{}", "{ a ".repeat(n), "}".repeat(n));
        let body = serde_json::to_string(&json!({ "query": query })).unwrap();
        let r = raw_json(&app, Method::POST, "/graphql", Some(&t.token), body).await;
        assert_refused(&r, &format!("GraphQL selection nesting {n}"));

        // The same nesting in GraphQL variables (a JSON body).
        let body = format!(
            r#"{{"query": "mutation($f: JSON!) {{ createSegment(clientId: \"{}\", name: \"x\", filter: $f) {{ id }} }}", "variables": {{"f": {}}}}}"#,
            p.client,
            nested("[", "]", n)
        );
        let r = raw_json(&app, Method::POST, "/graphql", Some(&t.token), body).await;
        assert_refused(&r, &format!("GraphQL variables nesting {n}"));
        assert!(r.text.contains("body"), "{}", r.text);

        // REST JSON bodies: a client, a segment filter, JTBD rules.
        let r = raw_json(
            &app,
            Method::POST,
            "/api/v1/clients",
            Some(&t.token),
            format!(r#"{{"name": {}}}"#, nested("[", "]", n)),
        )
        .await;
        assert_refused(&r, &format!("client body nesting {n}"));
        assert_eq!(r.body["errors"][0]["field"], "body", "{}", r.text);
        let r = raw_json(
            &app,
            Method::POST,
            &format!("/api/v1/clients/{}/segments", p.client),
            Some(&t.token),
            format!(
                r#"{{"name": "deep", "filter": {{"conditions": [{{"question": "city", "values": {}}}]}}}}"#,
                nested("[", "]", n)
            ),
        )
        .await;
        assert_refused(&r, &format!("segment filter nesting {n}"));
        let r = raw_json(
            &app,
            Method::PUT,
            &format!("/api/v1/clients/{}/jtbd-rules", p.client),
            Some(&t.token),
            format!(r#"{{"rules": [{}]}}"#, nested(r#"{"all": ["#, "]}", n)),
        )
        .await;
        assert_refused(&r, &format!("JTBD rules nesting {n}"));

        // An NDJSON import whose row nests.
        let row = format!(
            "{{\"answers\": {{\"city\": \"msk\", \"comment\": {}}}}}\n",
            nested("[", "]", n)
        );
        let r = app
            .raw(
                Method::POST,
                &format!(
                    "/api/v1/questionnaires/{}/responses/import",
                    p.questionnaire
                ),
                Some(&t.token),
                "application/x-ndjson",
                row,
            )
            .await;
        assert_refused(&r, &format!("NDJSON row nesting {n}"));
        assert_alive(&app).await;
    }
    // A filter in the query string (URL-encoded; kept under the URL limit).
    let filter = format!(r#"{{"conditions": {}}}"#, nested("[", "]", 2_000));
    let r = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/panel?filter={}",
                p.questionnaire,
                url_encode(&filter)
            ),
            &t.token,
        )
        .await;
    assert_refused(&r, "filter parameter nesting");
    assert!(r.text.contains("filter"), "{}", r.text);
    // Nothing was stored by any of them.
    let r = app
        .get(
            &format!("/api/v1/questionnaires/{}/responses", p.questionnaire),
            &t.token,
        )
        .await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    let r = app
        .get(&format!("/api/v1/clients/{}/segments", p.client), &t.token)
        .await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    // Real documents still pass.
    let r = app
        .graphql(
            Some(&t.token),
            "{ clients { items { id name } } }",
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert_alive(&app).await;
}

async fn one_idempotency_key_stores_one_response(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = panel(&app, &t).await;
    let path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    let body = json!({"answers": {"city": "msk", "nps": 9}});
    let send = |key: &'static str, body: Value| {
        let req = app
            .http
            .post(app.url(&path))
            .bearer_auth(&t.token)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { TestApp::read(req.send().await.unwrap()).await }
    };
    // Twelve retries of one request at once.
    let answers = futures::future::join_all((0..12).map(|_| send("retry-1", body.clone()))).await;
    for r in &answers {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(
            r.body, answers[0].body,
            "every retry answers the first result"
        );
    }
    assert_eq!(answers[0].body["inserted"], 1, "{}", answers[0].text);
    let stored = app.get(&path, &t.token).await;
    assert_eq!(
        stored.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        stored.text
    );

    // The same key over GraphQL with the same input replays it too.
    let gql = r#"mutation($q: ID!, $k: String) {
        submitResponse(questionnaireId: $q, answers: {city: "msk", nps: 9}, idempotencyKey: $k) {
            received inserted duplicates dataVersion
        }
    }"#;
    let r = app
        .graphql(
            Some(&t.token),
            gql,
            json!({"q": p.questionnaire, "k": "retry-1"}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert_eq!(
        r.body["data"]["submitResponse"]["dataVersion"], answers[0].body["data_version"],
        "{}",
        r.text
    );
    // Concurrent GraphQL retries of a new key store one more.
    let gql_answers = futures::future::join_all((0..6).map(|_| {
        app.graphql(
            Some(&t.token),
            gql,
            json!({"q": p.questionnaire, "k": "retry-2"}),
        )
    }))
    .await;
    for r in &gql_answers {
        assert!(r.body["errors"].is_null(), "{}", r.text);
        assert_eq!(r.body["data"], gql_answers[0].body["data"]);
    }
    let stored = app.get(&path, &t.token).await;
    assert_eq!(
        stored.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        stored.text
    );

    // A key reused for another request is refused and stores nothing.
    let r = send("retry-1", json!({"answers": {"city": "spb"}})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert_eq!(
        r.body["errors"][0]["field"], "Idempotency-Key",
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&t.token),
            r#"mutation($q: ID!) { submitResponse(questionnaireId: $q, answers: {city: "spb"}, idempotencyKey: "retry-2") { inserted } }"#,
            json!({"q": p.questionnaire}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["field"], "idempotencyKey",
        "{}",
        r.text
    );
    let stored = app.get(&path, &t.token).await;
    assert_eq!(
        stored.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        stored.text
    );
}

both_modes!(
    deep_documents_are_refused_and_the_server_stays_up,
    one_idempotency_key_stores_one_response,
);

/// A port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `serve --bind 127.0.0.1:PORT` without `GROWTHPOINT_PUBLIC_URL`: the
/// confirmation link of a subscription names that port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_bind_puts_its_port_in_email_links() {
    let dir = std::env::temp_dir().join(format!("gp-bind-{}", uuid::Uuid::new_v4().simple()));
    let _cleanup = tests::TempDir(dir.clone());
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("serve.log")).unwrap();
    let mut cmd = std::process::Command::new(GROWTHPOINT);
    cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    for (k, _) in std::env::vars() {
        if k.starts_with("GROWTHPOINT_") {
            cmd.env_remove(k);
        }
    }
    for var in ["DATABASE_URL", "REDIS_URL", "SMTP_URL", "JWT_SECRET"] {
        cmd.env_remove(var);
    }
    let mut child = cmd.spawn().unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status().is_success()
        {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "serve exited ({status}): {}",
                std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
            );
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not come up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _child = Kill(child);
    let r: Value = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"agency_name": "Acme", "name": "Anna", "email": "anna@acme.example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = r["token"].as_str().expect("a token").to_owned();
    let post = |path: String, body: Value| {
        let req = http
            .post(format!("{base}{path}"))
            .bearer_auth(&token)
            .json(&body);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let client = post(
        "/api/v1/clients".into(),
        json!({"name": "Shop", "locale": "en"}),
    )
    .await;
    let list = post(
        format!("/api/v1/clients/{}/lists", client["id"].as_str().unwrap()),
        json!({"name": "News", "consent_text": "I agree to the news."}),
    )
    .await;
    let r = http
        .post(format!(
            "{base}/api/v1/public/lists/{}/subscribe",
            list["id"].as_str().unwrap()
        ))
        .json(&json!({"email": "reader@example.com", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mails = wait_for_files(&dir.join("data").join("outbox"), 1).await;
    let want = format!("{base}/api/v1/public/confirm?token=");
    let text = tests::parse_mail(&mails[0]).text;
    assert!(text.contains(&want), "no link to {want} in: {text}");
}
