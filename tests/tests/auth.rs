//! Authentication and authorisation negatives: every bad credential is a 401,
//! every missing permission a 403, and nothing changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64_like::b64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{JWT_SECRET, Mode, TestApp, both_modes, spawn_app, spawn_with};

mod base64_like {
    /// URL-safe base64 without padding, for hand-made tokens.
    pub fn b64(bytes: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..=chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
}

fn claims(sub: &str, agency: &str, overrides: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut c = json!({
        "sub": sub, "agency": agency, "role": "owner",
        "iat": now, "nbf": now, "exp": now + 600,
        "iss": "growthpoint", "aud": "growthpoint-api"
    });
    for (k, v) in overrides.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn sign(alg: Algorithm, secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret)).unwrap()
}

async fn status_of(app: &TestApp, token: &str) -> StatusCode {
    app.call(Method::GET, "/api/v1/clients", Some(token), None)
        .await
        .status
}

async fn bad_tokens_get_401(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = JWT_SECRET.as_bytes();
    let good = sign(
        Algorithm::HS256,
        s,
        &claims(&t.user_id, &t.agency_id, json!({})),
    );
    assert_eq!(
        status_of(&app, &good).await,
        StatusCode::OK,
        "a hand-made valid token works"
    );

    let past = chrono::Utc::now().timestamp() - 3600;
    let expired = sign(
        Algorithm::HS256,
        s,
        &claims(
            &t.user_id,
            &t.agency_id,
            json!({"exp": past, "iat": past - 600, "nbf": past - 600}),
        ),
    );
    let other_alg = sign(
        Algorithm::HS512,
        s,
        &claims(&t.user_id, &t.agency_id, json!({})),
    );
    let wrong_aud = sign(
        Algorithm::HS256,
        s,
        &claims(&t.user_id, &t.agency_id, json!({"aud": "someone-else"})),
    );
    let wrong_iss = sign(
        Algorithm::HS256,
        s,
        &claims(&t.user_id, &t.agency_id, json!({"iss": "evil"})),
    );
    let wrong_key = sign(
        Algorithm::HS256,
        b"another-secret-of-sufficient-length!!",
        &claims(&t.user_id, &t.agency_id, json!({})),
    );
    let future = chrono::Utc::now().timestamp() + 3600;
    let not_yet = sign(
        Algorithm::HS256,
        s,
        &claims(&t.user_id, &t.agency_id, json!({"nbf": future})),
    );
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims(&t.user_id, &t.agency_id, json!({}))
            .to_string()
            .as_bytes())
    );
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    // Tamper: claim another role in the payload, keep the signature.
    parts[1] = b64(claims(
        &t.user_id,
        &t.agency_id,
        json!({"role": "viewer", "exp": future}),
    )
    .to_string()
    .as_bytes());
    let tampered = parts.join(".");
    let foreign_agency = sign(
        Algorithm::HS256,
        s,
        &claims(&t.user_id, &uuid::Uuid::now_v7().to_string(), json!({})),
    );

    for (name, token) in [
        ("expired", expired),
        ("HS512", other_alg),
        ("wrong aud", wrong_aud),
        ("wrong iss", wrong_iss),
        ("wrong key", wrong_key),
        ("not yet valid", not_yet),
        ("alg none", none),
        ("tampered", tampered),
        ("agency not a member of", foreign_agency),
        ("garbage", "not.a.token".into()),
    ] {
        let r = app
            .call(Method::GET, "/api/v1/clients", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{name}: {}", r.text);
        assert_eq!(r.body["code"], "unauthorized", "{name}");
        let g = app
            .graphql(Some(&token), "{ clients { items { id } } }", json!({}))
            .await;
        assert_eq!(
            g.body["errors"][0]["extensions"]["code"], "UNAUTHORIZED",
            "{name}: {}",
            g.text
        );
    }
    let r = app.call(Method::GET, "/api/v1/clients", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .http
        .get(app.url("/api/v1/clients"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

async fn api_keys_are_scoped_revocable_and_expire(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = tests::panel(&app, &t).await;
    let ingest = app.api_key(&t.token, &["ingest"]).await;
    let read = app.api_key(&t.token, &["read"]).await;
    let resp_path = format!("/api/v1/questionnaires/{}/responses", p.questionnaire);
    let answer = json!({"answers": {"city": "msk"}});

    // Missing scope → 403; the right scope works.
    assert_eq!(
        app.get("/api/v1/clients", &ingest).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&resp_path, &read, answer.clone()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&resp_path, &ingest, answer.clone()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.get("/api/v1/clients", &read).await.status,
        StatusCode::OK
    );
    // Keys never administer.
    let write = app.api_key(&t.token, &["read", "write", "ingest"]).await;
    assert_eq!(
        app.post(
            "/api/v1/api-keys",
            &write,
            json!({"name": "x", "scopes": ["read"]})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post("/api/v1/clients", &write, json!({"name": "x"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Tampered secret → 401.
    let mut tampered = read.clone();
    tampered.pop();
    tampered.push(if read.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(status_of(&app, &tampered).await, StatusCode::UNAUTHORIZED);

    // Revoked → 401.
    let keys = app.get("/api/v1/api-keys", &t.token).await;
    let read_id = keys.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| read.contains(k["public_id"].as_str().unwrap()))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/api-keys/{read_id}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["revoked_at"].is_string());
    let r = app.get("/api/v1/clients", &read).await;
    assert_eq!(
        (r.status, r.body["detail"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("API key revoked"))
    );

    // Expired → 401. Keys cannot be created already expired, so let one lapse.
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let r = app
        .post(
            "/api/v1/api-keys",
            &t.token,
            json!({"name": "short", "scopes": ["read"], "expires_at": soon}),
        )
        .await;
    let short = r.body["key"].as_str().unwrap().to_owned();
    assert_eq!(status_of(&app, &short).await, StatusCode::OK);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = app.get("/api/v1/clients", &short).await;
        if r.status == StatusCode::UNAUTHORIZED {
            assert_eq!(r.body["detail"], "API key expired");
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // The key list shows when a key was last used.
    let keys = app.get("/api/v1/api-keys", &t.token).await;
    assert!(
        keys.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["last_used_at"].is_string())
    );
    // A key is shown once: listing never returns secrets.
    assert!(!keys.text.contains(&ingest[ingest.len() - 20..]));
}

async fn roles_are_enforced(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let p = tests::panel(&app, &owner).await;
    let mut tokens = std::collections::HashMap::new();
    for role in ["viewer", "analyst", "admin"] {
        let r = app
            .post(
                "/api/v1/members",
                &owner.token,
                json!({"email": format!("{role}@acme.example.com"), "role": role}),
            )
            .await;
        let invite = r.body["invitation_token"].as_str().unwrap().to_owned();
        let r = app
            .call(
                Method::POST,
                "/api/v1/auth/accept-invitation",
                None,
                Some(json!({"token": invite, "name": role, "password": "a long enough password"})),
            )
            .await;
        tokens.insert(role, r.body["token"].as_str().unwrap().to_owned());
    }
    let viewer = &tokens["viewer"];
    let analyst = &tokens["analyst"];
    let admin = &tokens["admin"];
    let factor_path = format!("/api/v1/clients/{}/choice-factors", p.client);
    // Viewer reads, never writes.
    assert_eq!(app.get(&factor_path, viewer).await.status, StatusCode::OK);
    for (path, body) in [
        (factor_path.clone(), json!({"name": "Speed"})),
        ("/api/v1/clients".to_owned(), json!({"name": "X"})),
        (
            format!("/api/v1/questionnaires/{}/responses", p.questionnaire),
            json!({"answers": {"city": "msk"}}),
        ),
        (
            "/api/v1/api-keys".to_owned(),
            json!({"name": "x", "scopes": ["read"]}),
        ),
        (
            "/api/v1/members".to_owned(),
            json!({"email": "z@z.example.com", "role": "viewer"}),
        ),
    ] {
        let r = app.post(&path, viewer, body).await;
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "viewer POST {path}: {}",
            r.text
        );
    }
    let g = app
        .graphql(
            Some(viewer),
            "mutation { createClient(input: {name: \"X\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{}",
        g.text
    );
    // Analyst writes research data, does not manage clients or keys.
    assert_eq!(
        app.post(&factor_path, analyst, json!({"name": "Speed"}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post("/api/v1/clients", analyst, json!({"name": "X"}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/jobs", analyst).await.status,
        StatusCode::FORBIDDEN
    );
    // Admin manages clients and keys, but cannot make owners.
    assert_eq!(
        app.post("/api/v1/clients", admin, json!({"name": "X"}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post(
            "/api/v1/members",
            admin,
            json!({"email": "o@acme.example.com", "role": "owner"})
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    // The last owner stays.
    let members = app.get("/api/v1/members", &owner.token).await;
    let owner_membership = members.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "owner")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/members/{owner_membership}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
}

async fn login_is_rate_limited_per_ip(mode: Mode) {
    let app = spawn_with(mode, |s| s.auth_rate_per_minute = 3).await;
    let body = json!({"email": "nobody@example.com", "password": "whatever it is"});
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app
            .call(Method::POST, "/api/v1/auth/login", None, Some(body.clone()))
            .await;
        statuses.push(r.status.as_u16());
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers.get("retry-after").is_some());
            assert_eq!(r.body["code"], "rate_limited");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

async fn wrong_password_and_duplicate_signup(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": t.email, "password": "wrong password!"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": t.email, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Same email with another password cannot sign up again.
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"agency_name": "B", "name": "X", "email": t.email, "password": "a different password"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // With the right password the user opens a second agency and can pick it at login.
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/signup",
            None,
            Some(json!({"agency_name": "Second", "name": "X", "email": t.email, "password": "correct horse battery"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let second = r.body["agency"]["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(
                json!({"email": t.email, "password": "correct horse battery", "agency_id": second}),
            ),
        )
        .await;
    assert_eq!(r.body["agency_id"], second.as_str());
    let me = app
        .get("/api/v1/me", r.body["token"].as_str().unwrap())
        .await;
    assert_eq!(me.body["agencies"].as_array().unwrap().len(), 2);
}

both_modes!(
    bad_tokens_get_401,
    api_keys_are_scoped_revocable_and_expire,
    roles_are_enforced,
    login_is_rate_limited_per_ip,
    wrong_password_and_duplicate_signup,
);
