//! The audit log: every write operation of the OpenAPI document (walked
//! from the document, so a new route cannot be forgotten) leaves at least
//! one row with its request id, its actor (a user, an API key or the
//! public) and the resource it touched; no row holds any secret the test
//! made; a failed write leaves none; only owners and admins read it, with
//! filters and cursor paging, over REST and GraphQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::world::{World, body_for, build_world, fill};
use tests::{Mode, Resp, Tenant, TestApp, both_modes, spawn_app};

/// Write operations without an audit row, each with its reason. Empty:
/// sign-up is audited in the agency it opens, login and invitation
/// acceptance as the user, public subscribe/unsubscribe as `public`.
const EXCLUDED: &[(&str, &str, &str)] = &[];

/// Routes walked with an all-scope API key instead of the owner's JWT.
const KEYED: &[&str] = &[
    "/api/v1/questionnaires/{id}/responses",
    "/api/v1/questionnaires/{id}/responses/import",
    "/api/v1/clients/{id}/purchases",
    "/api/v1/clients/{id}/channel-figures",
    "/api/v1/clients/{id}/contacts/batch",
    "/api/v1/clients/{id}/choice-factors",
    "/api/v1/clients/{id}/segments",
];

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a long enough password";

async fn send(
    app: &TestApp,
    m: Method,
    path: &str,
    token: Option<&str>,
    rid: &str,
    body: Option<(String, &str)>,
) -> Resp {
    let mut req = app
        .http
        .request(m, app.url(path))
        .header("x-request-id", rid);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((b, ct)) = body {
        req = req.header("content-type", ct).body(b);
    }
    TestApp::read(req.send().await.unwrap()).await
}

/// Every row of the agency's log, paging through it by the cursor.
async fn whole_log(app: &TestApp, token: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let r = app
            .get(&format!("/api/v1/audit-log?limit=200{after}"), token)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        rows.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => return rows,
        }
    }
}

/// The order of the walk: deletes last (parts before wholes), and what
/// ends a resource's life after what still needs it.
fn rank(method: &str, template: &str) -> (u8, i64, String) {
    let late = match template {
        t if t.ends_with("/campaigns/{id}/schedule") => 1,
        t if t.ends_with("/campaigns/{id}/send") => 2,
        t if t.ends_with("/campaigns/{id}/cancel") => 3,
        t if t.ends_with("/archive") || t.ends_with("/unarchive") => 4,
        _ => 0,
    };
    if method == "delete" {
        (5, -(template.len() as i64), template.to_owned())
    } else {
        (late, 0, format!("{template} {method}"))
    }
}

async fn member_id(app: &TestApp, t: &Tenant, role: &str) -> String {
    app.member(t, role).await;
    let r = app.get("/api/v1/members?limit=200", &t.token).await;
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == role)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Resources the walk may end without harming the world: deletes that a
/// world resource would refuse (in use), a member who is not the owner.
async fn disposables(app: &TestApp, t: &Tenant, w: &World) -> HashMap<&'static str, String> {
    let client = &w.ids["client"];
    // The QFD matrix needs the client's library.
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{client}"),
            Some(&t.token),
            Some(json!({"touchpoint_library_id": w.ids["library"]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut d = HashMap::new();
    d.insert(
        "client",
        app.create("/api/v1/clients", &t.token, json!({"name": "Gone soon"}))
            .await,
    );
    d.insert(
        "factor",
        app.create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Gone soon"}),
        )
        .await,
    );
    d.insert(
        "segment",
        app.create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Gone", "filter": {"conditions": [{"question": "city", "values": ["spb"]}]}}),
        )
        .await,
    );
    let lib = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{}/clone", w.ids["library"]),
            &t.token,
            json!({"name": "Gone soon"}),
        )
        .await;
    d.insert("library", lib.body["id"].as_str().unwrap().to_owned());
    let lib = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{}/stages", w.ids["library"]),
            &t.token,
            json!({"key": "gone", "name_en": "Gone", "name_ru": "Нет"}),
        )
        .await;
    let stage = lib.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "gone")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    d.insert("stage", stage);
    let tp = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{}/touchpoints", w.ids["library"]),
            &t.token,
            json!({"stage_id": w.ids["stage"], "key": "gone_tp", "name_en": "Gone", "name_ru": "Нет", "channel": "online"}),
        )
        .await;
    assert_eq!(tp.status, StatusCode::CREATED, "{}", tp.text);
    d.insert("touchpoint", tp.body["id"].as_str().unwrap().to_owned());
    d.insert("patched_member", member_id(app, t, "analyst").await);
    d.insert("removed_member", member_id(app, t, "viewer").await);
    d
}

/// The path, with disposables where the world's resource would refuse.
fn target(method: &str, template: &str, w: &World, d: &HashMap<&str, String>) -> String {
    let path = match (method, template) {
        ("post", "/api/v1/public/unsubscribe")
        | ("post", "/api/v1/public/lists/{id}/subscribe") => {
            return template.replace("{id}", &w.ids["list"]);
        }
        (_, t) if !t.contains('{') => return t.to_owned(),
        _ => fill(template, w),
    };
    let swap = |path: String, key: &str| path.replacen(&w.ids[key], &d[key], 1);
    match (method, template) {
        ("delete", "/api/v1/clients/{id}") => swap(path, "client"),
        ("delete", "/api/v1/choice-factors/{id}") => swap(path, "factor"),
        ("delete", "/api/v1/segments/{id}") => swap(path, "segment"),
        ("delete", "/api/v1/touchpoint-libraries/{id}") => swap(path, "library"),
        ("delete", "/api/v1/touchpoint-libraries/{id}/stages/{stage_id}") => swap(path, "stage"),
        ("delete", "/api/v1/touchpoint-libraries/{id}/touchpoints/{touchpoint_id}") => {
            swap(path, "touchpoint")
        }
        ("patch", "/api/v1/members/{id}") => {
            path.replace(&w.ids["membership"], &d["patched_member"])
        }
        ("delete", "/api/v1/members/{id}") => {
            path.replace(&w.ids["membership"], &d["removed_member"])
        }
        _ => path,
    }
}

async fn every_write_route_is_audited_without_secrets(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let w = build_world(&app, &t).await;
    let d = disposables(&app, &t, &w).await;
    let key = app
        .post(
            "/api/v1/api-keys",
            &t.token,
            json!({"name": "walker", "scopes": ["read", "write", "ingest"]}),
        )
        .await;
    let key_id = key.body["api_key"]["id"].as_str().unwrap().to_owned();
    let key = key.body["key"].as_str().unwrap().to_owned();
    let mut secrets: Vec<String> = vec![
        PASSWORD.into(),
        NEW_PASSWORD.into(),
        key.clone(),
        key.rsplit('_').next().unwrap().to_owned(),
        t.token.clone(),
        "smtp://b:secret@127.0.0.1:1".into(),
        "b:secret@".into(),
        "smtp://a:a@127.0.0.1:2".into(),
        "a:a@".into(),
        w.ids["webhook_secret"].clone(),
        // A report link's URL is a credential: its MAC part.
        w.ids["report_url"].rsplit('.').next().unwrap().to_owned(),
    ];
    // An invitation to accept during the walk.
    let invited = app
        .post(
            "/api/v1/members",
            &t.token,
            json!({"email": "invitee@acme.example.com", "role": "analyst"}),
        )
        .await;
    let invitation = invited.body["invitation_token"]
        .as_str()
        .unwrap()
        .to_owned();
    secrets.push(invitation.clone());
    let subscriber = w.ids["subscriber"].parse().unwrap();
    let unsub = app
        .services
        .links
        .token(service::email::links::Purpose::Unsubscribe, subscriber);
    secrets.push(unsub.clone());

    let doc = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let mut ops = Vec::new();
    for (template, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) {
                ops.push((method.clone(), template.clone()));
            }
        }
    }
    assert_eq!(ops.len(), 91, "write operations of the document");
    ops.sort_by_key(|(m, t)| rank(m, t));

    // request id → (operation, expected actor kind and id)
    let mut expected: Vec<(String, String, &'static str, String)> = Vec::new();
    let mut other_agency = None;
    for (n, (method, template)) in ops.iter().enumerate() {
        if EXCLUDED
            .iter()
            .any(|(m, p, _)| m == method && p == template)
        {
            continue;
        }
        let rid = format!("audit-walk-{n}-{}", uuid::Uuid::new_v4().simple());
        let keyed = KEYED.contains(&template.as_str());
        let token = if keyed {
            key.as_str()
        } else {
            t.token.as_str()
        };
        let (token, body, actor, actor_id) = match (method.as_str(), template.as_str()) {
            ("post", "/api/v1/auth/signup") => (
                None,
                json!({"agency_name": "Walked", "name": "New", "email": "new-owner@walked.example.com", "password": PASSWORD}),
                "user",
                String::new(),
            ),
            ("post", "/api/v1/auth/login") => (
                None,
                json!({"email": t.email, "password": PASSWORD}),
                "user",
                t.user_id.clone(),
            ),
            ("post", "/api/v1/auth/accept-invitation") => (
                None,
                json!({"token": invitation, "name": "Invitee", "password": NEW_PASSWORD}),
                "user",
                String::new(),
            ),
            ("post", "/api/v1/public/lists/{id}/subscribe") => (
                None,
                json!({"email": "fan@reader.example.com", "consent": true}),
                "public",
                String::new(),
            ),
            ("post", "/api/v1/public/unsubscribe") => (None, Value::Null, "public", String::new()),
            ("patch", "/api/v1/agency") => (
                Some(token),
                json!({"name": "Acme renamed"}),
                "user",
                t.user_id.clone(),
            ),
            ("patch", "/api/v1/me") => (
                Some(token),
                json!({"locale": "en"}),
                "user",
                t.user_id.clone(),
            ),
            ("post", "/api/v1/api-keys") => (
                Some(token),
                json!({"name": "another", "scopes": ["read"]}),
                "user",
                t.user_id.clone(),
            ),
            ("post", "/api/v1/clients") => (
                Some(token),
                json!({"name": "Walked client"}),
                "user",
                t.user_id.clone(),
            ),
            ("post", "/api/v1/members") => (
                Some(token),
                json!({"email": "second@acme.example.com", "role": "viewer"}),
                "user",
                t.user_id.clone(),
            ),
            // A key other than the world's touchpoint's own.
            ("put", "/api/v1/touchpoint-libraries/{id}/touchpoints/{touchpoint_id}") => {
                let mut b: Value =
                    serde_json::from_str(&body_for(method, template, &w).unwrap().0).unwrap();
                b["key"] = json!("renamed");
                (Some(token), b, "user", t.user_id.clone())
            }
            _ => {
                let b = body_for(method, template, &w)
                    .map(|(b, ct)| {
                        if ct == "application/json" {
                            serde_json::from_str(&b).unwrap()
                        } else {
                            json!({"raw": b, "content_type": ct})
                        }
                    })
                    .unwrap_or(Value::Null);
                let (actor, id) = if keyed {
                    ("api_key", key_id.clone())
                } else {
                    ("user", t.user_id.clone())
                };
                (Some(token), b, actor, id)
            }
        };
        let mut path = target(method, template, &w, &d);
        if template == "/api/v1/public/unsubscribe" {
            path = format!("{path}?token={unsub}");
        }
        let body = match &body {
            Value::Null => None,
            Value::Object(o) if o.contains_key("raw") => Some((
                o["raw"].as_str().unwrap().to_owned(),
                if o["content_type"] == "text/csv" {
                    "text/csv"
                } else {
                    "application/x-ndjson"
                },
            )),
            b => Some((b.to_string(), "application/json")),
        };
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = send(&app, m, &path, token, &rid, body).await;
        assert!(
            r.status.is_success(),
            "{} {template}: {} {}",
            method.to_uppercase(),
            r.status,
            r.text
        );
        assert_eq!(r.headers["x-request-id"], rid.as_str(), "the id is kept");
        // What the answers hand out once: tokens, API keys, invitations.
        let handed_out = match template.as_str() {
            "/api/v1/api-keys" => "key",
            "/api/v1/members" => "invitation_token",
            t if t.starts_with("/api/v1/auth/") => "token",
            "/api/v1/webhooks" | "/api/v1/webhooks/{id}/rotate-secret" => "secret",
            "/api/v1/clients/{id}/report-links" => "url",
            _ => "",
        };
        if let Some(v) = r.body[handed_out].as_str() {
            secrets.push(v.to_owned());
        }
        if template == "/api/v1/auth/signup" {
            other_agency = Some(r.body["token"].as_str().unwrap().to_owned());
        }
        expected.push((
            format!("{} {template}", method.to_uppercase()),
            rid,
            actor,
            actor_id,
        ));
    }

    let mut rows = whole_log(&app, &t.token).await;
    let other = whole_log(&app, other_agency.as_deref().unwrap()).await;
    rows.extend(other.iter().cloned());
    let by_rid =
        |rid: &str| -> Vec<&Value> { rows.iter().filter(|r| r["request_id"] == rid).collect() };
    let mut missing = Vec::new();
    for (op, rid, actor, actor_id) in &expected {
        let found = by_rid(rid);
        if found.is_empty() {
            missing.push(op.clone());
            continue;
        }
        for row in found {
            assert_eq!(row["actor_kind"], *actor, "{op}: {row}");
            let id_field = if *actor == "api_key" {
                "api_key_id"
            } else {
                "user_id"
            };
            if !actor_id.is_empty() {
                assert_eq!(row[id_field], actor_id.as_str(), "{op}: {row}");
            }
            let rt = row["resource_type"].as_str().unwrap();
            assert!(
                row["action"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("{rt}.")),
                "{op}: {row}"
            );
        }
    }
    assert!(
        missing.is_empty(),
        "write routes without an audit row: {missing:?}"
    );
    // The sign-up's row is in the agency it opened, not in Acme's.
    let signup = &expected
        .iter()
        .find(|e| e.0 == "POST /api/v1/auth/signup")
        .unwrap()
        .1;
    assert!(other.iter().any(|r| r["request_id"] == signup.as_str()));

    let text = serde_json::to_string(&rows).unwrap();
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "the audit log holds a secret: {s}"
        );
    }
}

async fn a_failed_write_leaves_no_row_and_graphql_shares_the_request_id(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Acme shop"}))
        .await;
    // Refused by its check (422) and by the database's unique index (409).
    let r = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/clients/{client}"),
        Some(&t.token),
        "failed-1",
        Some((
            json!({"currency": "roubles"}).to_string(),
            "application/json",
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let lib = app
        .post(
            "/api/v1/touchpoint-libraries/00000000-0000-7000-8000-000000000001/clone",
            &t.token,
            json!({"name": "Mine"}),
        )
        .await;
    let lib_id = lib.body["id"].as_str().unwrap();
    let stage = lib.body["stages"][0]["key"].as_str().unwrap();
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/touchpoint-libraries/{lib_id}/stages"),
        Some(&t.token),
        "failed-2",
        Some((
            json!({"key": stage, "name_en": "Dup", "name_ru": "Дуб"}).to_string(),
            "application/json",
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    // An update refused by the unique index: on PostgreSQL the update and
    // its audit row are one statement, so both are refused together.
    let first = &lib.body["stages"][0];
    let (tp, other) = (&first["touchpoints"][0], &first["touchpoints"][1]);
    let put_touchpoint = |key: Value, name_en: &'static str, request_id: &'static str| {
        let body = json!({"stage_id": first["id"], "key": key, "name_en": name_en,
                          "name_ru": tp["name_ru"], "channel": tp["channel"]});
        let path = format!(
            "/api/v1/touchpoint-libraries/{lib_id}/touchpoints/{}",
            tp["id"].as_str().unwrap()
        );
        let app = &app;
        let token = t.token.clone();
        async move {
            let body = Some((body.to_string(), "application/json"));
            send(app, Method::PUT, &path, Some(&token), request_id, body).await
        }
    };
    let r = put_touchpoint(other["key"].clone(), "Dup", "failed-3").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let rows = whole_log(&app, &t.token).await;
    for id in ["failed-1", "failed-2", "failed-3"] {
        assert!(
            !rows.iter().any(|r| r["request_id"] == id),
            "a failed write ({id}) left an audit row"
        );
    }
    // The same update without the conflict: one row, with what changed.
    let r = put_touchpoint(tp["key"].clone(), "Renamed", "updated-1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rows = whole_log(&app, &t.token).await;
    let mine: Vec<_> = rows
        .iter()
        .filter(|r| r["request_id"] == "updated-1")
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["action"], "touchpoint.update");
    assert_eq!(mine[0]["resource_id"], tp["id"]);
    assert_eq!(
        mine[0]["changes"],
        json!({"name_en": {"from": tp["name_en"], "to": "Renamed"}})
    );

    // A GraphQL mutation carries the HTTP request's id.
    let q = json!({"query": "mutation { createClient(input: {name: \"Via GraphQL\"}) { id } }"});
    let r = send(
        &app,
        Method::POST,
        "/graphql",
        Some(&t.token),
        "graphql-1",
        Some((q.to_string(), "application/json")),
    )
    .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let id = r.body["data"]["createClient"]["id"].as_str().unwrap();
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: UUID!) { auditLog(filter: {resourceType: \"client\", resourceId: $id}) { items { action requestId actorKind userId changes } nextCursor } }",
            json!({"id": id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let items = &r.body["data"]["auditLog"]["items"];
    assert_eq!(items[0]["action"], "client.create", "{}", r.text);
    assert_eq!(items[0]["requestId"], "graphql-1");
    assert_eq!(items[0]["actorKind"], "user");
    assert_eq!(items[0]["userId"], t.user_id.as_str());
    assert_eq!(items[0]["changes"]["name"], "Via GraphQL");
}

async fn owners_and_admins_page_and_filter_the_log(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Acme shop"}))
        .await;
    for name in ["One", "Two", "Three"] {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/clients/{client}"),
                Some(&t.token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let admin = app.member(&t, "admin").await;
    let viewer = app.member(&t, "viewer").await;
    let analyst = app.member(&t, "analyst").await;
    let key = app.api_key(&t.token, &["read", "write", "ingest"]).await;
    for (who, token) in [
        ("viewer", &viewer),
        ("analyst", &analyst),
        ("API key", &key),
    ] {
        let r = app.get("/api/v1/audit-log", token).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text);
        let r = app
            .graphql(Some(token), "{ auditLog { items { id } } }", json!({}))
            .await;
        assert_eq!(
            r.body["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{who}"
        );
    }
    let r = app
        .get(
            &format!(
                "/api/v1/audit-log?resource_type=client&resource_id={client}&action=client.update"
            ),
            &admin,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(
        items[0]["changes"]["name"],
        json!({"from": "Acme shop", "to": "One"})
    );
    assert_eq!(
        items[2]["changes"]["name"],
        json!({"from": "Two", "to": "Three"})
    );
    // Pages of one, oldest first, by the cursor.
    let base = format!("/api/v1/audit-log?resource_id={client}&limit=1");
    let first = app.get(&base, &t.token).await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("{base}&after={cursor}"), &t.token).await;
    assert_eq!(first.body["items"][0]["action"], "client.create");
    assert_eq!(second.body["items"][0]["action"], "client.update");
    let r = app
        .get(
            &format!(
                "/api/v1/audit-log?actor={}&until=2000-01-01T00:00:00Z",
                t.user_id
            ),
            &t.token,
        )
        .await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    let r = app
        .get(
            "/api/v1/audit-log?actor=user&since=2000-01-01T00:00:00Z&limit=200",
            &t.token,
        )
        .await;
    assert!(r.body["items"].as_array().unwrap().len() >= 5, "{}", r.text);
    for (query, field) in [
        ("resource_type=spaceship", "resource_type"),
        ("action=client.fly", "action"),
        ("action=nonsense", "action"),
        ("actor=somebody", "actor"),
        ("after=not-a-cursor", "after"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "until",
        ),
    ] {
        let r = app
            .get(&format!("/api/v1/audit-log?{query}"), &t.token)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{query}");
    }
}

/// An import is one row with its counts, on PostgreSQL's COPY path too
/// (1,500 rows: over the 1,000 from which an import goes in by COPY).
async fn a_bulk_import_is_one_row_with_its_counts(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Acme shop"}))
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "x", "kind": "brief", "questions": [{"key": "a", "type": "text"}]}),
        )
        .await;
    let mut csv = String::from("external_id,a\n");
    for i in 0..1_500 {
        csv.push_str(&format!("r{i},answer {i}\n"));
    }
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/questionnaires/{q}/responses/import"),
        Some(&t.token),
        "bulk-1",
        Some((csv, "text/csv")),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rows: Vec<Value> = whole_log(&app, &t.token)
        .await
        .into_iter()
        .filter(|r| r["request_id"] == "bulk-1")
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["action"], "responses.import");
    assert_eq!(rows[0]["resource_id"], q.as_str());
    assert_eq!(rows[0]["changes"]["inserted"], 1_500);
    assert!(!rows[0]["changes"].to_string().contains("answer 1"));

    // Small writes (one posted response; an import under the COPY
    // threshold, one row a duplicate): on PostgreSQL their audit row shares
    // the rows' INSERT, with the counts computed there.
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/questionnaires/{q}/responses"),
        Some(&t.token),
        "one-1",
        Some((
            json!({"external_id": "solo", "answers": {"a": "fine"}}).to_string(),
            "application/json",
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/questionnaires/{q}/responses/import"),
        Some(&t.token),
        "small-1",
        Some((
            "external_id,a\nr7,again\nnew1,x\nnew2,y\n".into(),
            "text/csv",
        )),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Nothing new: the write rolls back, and so does its audit row.
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/questionnaires/{q}/responses"),
        Some(&t.token),
        "dup-1",
        Some((
            json!({"external_id": "solo", "answers": {"a": "again"}}).to_string(),
            "application/json",
        )),
    )
    .await;
    assert!(r.status.is_success(), "{}", r.text);
    let log = whole_log(&app, &t.token).await;
    let by = |id: &str| -> Vec<Value> {
        log.iter()
            .filter(|r| r["request_id"] == id)
            .cloned()
            .collect()
    };
    let one = by("one-1");
    assert_eq!(one.len(), 1, "{one:?}");
    assert_eq!(one[0]["action"], "response.create");
    assert_eq!(
        one[0]["changes"],
        json!({"received": 1, "inserted": 1, "duplicates": 0, "data_version": 2})
    );
    let small = by("small-1");
    assert_eq!(small.len(), 1, "{small:?}");
    assert_eq!(small[0]["action"], "responses.import");
    assert_eq!(
        small[0]["changes"],
        json!({"received": 3, "inserted": 2, "duplicates": 1, "data_version": 3})
    );
    assert!(by("dup-1").is_empty(), "{log:?}");
}

/// `audit::update_one` of a row deleted since it was read (a concurrent
/// DELETE between the service's read and its update): on PostgreSQL the
/// audit row is inserted from what the update returned, which is nothing;
/// on SQLite it is inserted first and the transaction rolls it back. Either
/// way the caller gets `RecordNotUpdated` and the log has no row. The same
/// call on a live row saves it and records exactly its change.
async fn an_update_of_a_row_gone_since_it_was_read_records_nothing(mode: Mode) {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
    #[derive(serde::Serialize)]
    struct View {
        name: String,
    }
    let app = spawn_app(mode).await;
    let db = &app.services.db;
    let t = app.signup("Acme").await;
    let mut ctx = service::RequestCtx::worker(t.agency_id.parse().unwrap());
    let logged = |request_id: &'static str| {
        entity::audit_log::Entity::find()
            .filter(entity::audit_log::Column::RequestId.eq(request_id))
            .count(db)
    };
    let mut models = Vec::new();
    for name in ["Gone", "Kept"] {
        let id: uuid::Uuid = app
            .create("/api/v1/clients", &t.token, json!({"name": name}))
            .await
            .parse()
            .unwrap();
        models.push(
            entity::client::Entity::find_by_id(id)
                .one(db)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let update = |m: &entity::client::Model| {
        let mut a: entity::client::ActiveModel = m.clone().into();
        a.name = Set(format!("{} renamed", m.name));
        a
    };
    let view = |m: entity::client::Model| View { name: m.name };

    let gone = &models[0];
    entity::client::Entity::delete_by_id(gone.id)
        .exec(db)
        .await
        .unwrap();
    ctx.request_id = Some("gone-1".into());
    let before = View {
        name: gone.name.clone(),
    };
    let r =
        service::infra::audit::update_one(db, &ctx, "client", gone.id, &before, update(gone), view)
            .await;
    assert!(matches!(r, Err(sea_orm::DbErr::RecordNotUpdated)), "{r:?}");
    assert_eq!(logged("gone-1").await.unwrap(), 0);

    let kept = &models[1];
    ctx.request_id = Some("kept-1".into());
    let before = View {
        name: kept.name.clone(),
    };
    let saved =
        service::infra::audit::update_one(db, &ctx, "client", kept.id, &before, update(kept), view)
            .await
            .unwrap();
    assert_eq!(saved.name, "Kept renamed");
    let rows = entity::audit_log::Entity::find()
        .filter(entity::audit_log::Column::RequestId.eq("kept-1"))
        .all(db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].action, "client.update");
    assert_eq!(rows[0].resource_id, Some(kept.id));
    assert_eq!(
        rows[0].changes,
        json!({"name": {"from": "Kept", "to": "Kept renamed"}})
    );
}

both_modes!(
    every_write_route_is_audited_without_secrets,
    a_failed_write_leaves_no_row_and_graphql_shares_the_request_id,
    owners_and_admins_page_and_filter_the_log,
    a_bulk_import_is_one_row_with_its_counts,
    an_update_of_a_row_gone_since_it_was_read_records_nothing
);
