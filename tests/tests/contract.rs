//! The OpenAPI document as a contract, walked: every operation that takes a
//! JSON object refuses an array or a scalar (422, nothing stored), every
//! method a path does not declare is 405 with the path's `Allow`, unknown
//! paths are 404, and GraphQL's own refusals carry `extensions.code`. The
//! document's examples are valid against their schemas and its links point
//! at operations and parameters that exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use sea_orm::{DbBackend, FromQueryResult, JsonValue, Statement};
use serde_json::{Value, json};
use tests::{Mode, Panel, TestApp, both_modes, panel, spawn_app};
use uuid::Uuid;

/// The served document.
async fn document(app: &TestApp) -> Value {
    let r = app
        .http
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(
            doc,
            &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
        ),
        None => schema,
    }
}

/// A concrete path for a template: this world's ids where it has them (so
/// a lenient server would have something to change), a fresh id elsewhere.
fn concrete(template: &str, p: &Panel) -> String {
    let own = [
        ("/api/v1/clients/{id}", p.client.as_str()),
        ("/api/v1/questionnaires/{id}", p.questionnaire.as_str()),
        ("/api/v1/touchpoint-libraries/{id}", p.library.as_str()),
        ("/api/v1/choice-factors/{id}", p.factors[0].as_str()),
    ];
    let mut path = template.to_owned();
    for (prefix, id) in own {
        if template.starts_with(prefix) {
            path = path.replacen("{id}", id, 1);
        }
    }
    path.replace("{touchpoint_id}", &p.touchpoint)
        .replace("{period}", "2026-01")
        .replace("{channel}", "google")
        .replace("{kind}", "digest")
        .replace("{customer_ref}", "c-1")
        .replace("{token}", "t")
        .split('/')
        .map(|s| {
            if s.starts_with('{') {
                Uuid::now_v7().to_string()
            } else {
                s.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every row of every table the requests could touch, as sorted JSON
/// lines per table. Tables the worker writes on its own are left out.
async fn rows(app: &TestApp) -> BTreeMap<String, Vec<String>> {
    const BACKGROUND: [&str; 5] = [
        "job_runs",
        "job_alerts",
        "recompute_targets",
        "snapshots",
        "email_deliveries",
    ];
    let db = &app.services.db;
    let backend = db.get_database_backend();
    let list = match backend {
        DbBackend::Sqlite => {
            "SELECT name AS t FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        _ => "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'",
    };
    let tables: Vec<String> = JsonValue::find_by_statement(Statement::from_string(backend, list))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v["t"].as_str().unwrap().to_owned())
        .filter(|t| !BACKGROUND.contains(&t.as_str()))
        .collect();
    let mut out = BTreeMap::new();
    for t in tables {
        let mut lines: Vec<String> = JsonValue::find_by_statement(Statement::from_string(
            backend,
            format!("SELECT * FROM \"{t}\""),
        ))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.to_string())
        .collect();
        lines.sort();
        out.insert(t, lines);
    }
    out
}

async fn bodies_of_the_wrong_json_type_are_422_and_change_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Strict Agency").await;
    let p = panel(&app, &t).await;
    let doc = document(&app).await;
    let before = rows(&app).await;

    let mut walked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema")
            else {
                continue;
            };
            if resolve(&doc, schema)["type"] != "object" {
                continue;
            }
            walked += 1;
            let path = concrete(template, &p);
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for body in [json!([]), json!([null, null]), json!(1), json!("x")] {
                let r = app
                    .call(method.clone(), &path, Some(&t.token), Some(body.clone()))
                    .await;
                assert_eq!(
                    r.status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "{method} {path} with {body}: {}",
                    r.text
                );
                assert_eq!(r.body["code"], "validation_failed", "{method} {path}");
                assert_eq!(
                    r.error_fields(),
                    vec!["body".to_owned()],
                    "{method} {path} with {body}"
                );
            }
        }
    }
    assert!(walked >= 40, "only {walked} operations take a JSON object");

    let after = rows(&app).await;
    for (table, was) in &before {
        assert_eq!(&after[table], was, "{table} changed");
    }
    // The agency was not patched into anything either (the case found).
    let agency = app.get("/api/v1/agency", &t.token).await;
    assert_eq!(agency.body["name"], "Strict Agency");
}

/// The methods of a path item, upper-case.
fn declared(item: &Value) -> BTreeSet<String> {
    item.as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "parameters" && *k != "summary" && *k != "description")
        .map(|k| k.to_uppercase())
        .collect()
}

fn allow_header(r: &tests::Resp) -> BTreeSet<String> {
    r.headers
        .get("allow")
        .map(|v| {
            v.to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn undeclared_methods_are_405_with_allow(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Method Agency").await;
    let p = panel(&app, &t).await;
    let doc = document(&app).await;

    let mut refused = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let allowed = declared(item);
        let path = concrete(template, &p);
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            if allowed.contains(method) {
                continue;
            }
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let r = app.call(m, &path, Some(&t.token), None).await;
            assert_eq!(
                r.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}: {}",
                r.text
            );
            let mut expected = allowed.clone();
            if allowed.contains("GET") {
                expected.insert("HEAD".to_owned());
            }
            assert_eq!(allow_header(&r), expected, "{method} {path}");
            assert_eq!(r.headers["content-type"], "application/problem+json");
            assert_eq!(r.body["code"], "method_not_allowed");
            assert_eq!(r.body["status"], 405);
            refused += 1;
        }
    }
    assert!(refused > 300, "only {refused} undeclared methods walked");

    // Routes outside the document.
    for (method, path, allow) in [
        (Method::PUT, "/graphql", "GET, HEAD, POST"),
        (Method::DELETE, "/api/v1/openapi.json", "GET, HEAD"),
        (Method::POST, "/api/v1/docs", "GET, HEAD"),
        (Method::HEAD, "/api/v1/auth/signup", "POST"),
    ] {
        let r = app.call(method.clone(), path, None, None).await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
    }

    // HEAD goes wherever GET does: GET's answer without its body.
    let get = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    let head = app
        .call(Method::HEAD, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.text.is_empty(), "{}", head.text);
    assert_eq!(head.headers["content-type"], get.headers["content-type"]);
    assert_eq!(
        head.headers["content-length"].to_str().unwrap(),
        get.text.len().to_string()
    );
    let path = format!("/api/v1/clients/{}", p.client);
    let head = app.call(Method::HEAD, &path, Some(&t.token), None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.text.is_empty(), "{}", head.text);
    // Authorization and tenancy apply as to GET.
    let other = app.signup("Other Method Agency").await;
    let head = app
        .call(Method::HEAD, &path, Some(&other.token), None)
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    let head = app.call(Method::HEAD, &path, None, None).await;
    assert_eq!(head.status, StatusCode::UNAUTHORIZED);
}

async fn unknown_paths_are_404(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Lost Agency").await;
    for (method, path) in [
        (Method::GET, "/api/v1/no-such-thing"),
        (Method::DELETE, "/api/v1/no-such-thing"),
        (Method::GET, "/nowhere"),
        (Method::POST, "/api/v1/clients/x/y/z"),
        (Method::GET, "/api/v1/agency/"),
        (Method::GET, "/metrics"),
    ] {
        let r = app.call(method.clone(), path, Some(&t.token), None).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "{method} {path}: {}",
            r.text
        );
        assert_eq!(r.body["code"], "not_found", "{method} {path}");
        assert!(r.headers.get("allow").is_none(), "{method} {path}");
    }
}

async fn graphql_refusals_carry_a_code(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Graph Agency").await;
    // `me { scopes }` costs 2: just over the limit, side by side.
    let wide = format!(
        "{{ {} }}",
        (0..=api::graphql::MAX_COMPLEXITY / 2)
            .map(|i| format!("a{i}: me {{ scopes }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let deep = "{ __schema { types { fields { type { ofType { ofType { ofType { ofType { ofType { ofType { name } } } } } } } } } } }";
    for (query, code, message) in [
        (
            wide.as_str(),
            "QUERY_TOO_COMPLEX",
            Some("Query is too complex."),
        ),
        (deep, "QUERY_TOO_DEEP", Some("Query is nested too deep.")),
        ("{ me { ", "GRAPHQL_PARSE_FAILED", None),
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED", None),
    ] {
        let r = app.graphql(Some(&t.token), query, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let errors = r.body["errors"].as_array().expect("errors");
        assert!(!errors.is_empty(), "{query}: {}", r.text);
        for e in errors {
            assert_eq!(e["extensions"]["code"], code, "{query}: {}", r.text);
        }
        if let Some(m) = message {
            assert_eq!(errors[0]["message"], m);
        }
    }
    let r = app
        .call(
            Method::POST,
            "/graphql",
            Some(&t.token),
            Some(json!({"query": "query A { __typename }", "operationName": "B"})),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{}",
        r.text
    );
    // Resolver errors keep theirs.
    let r = app.graphql(None, "{ me { scopes } }", json!({})).await;
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "UNAUTHORIZED");
}

both_modes!(
    bodies_of_the_wrong_json_type_are_422_and_change_nothing,
    undeclared_methods_are_405_with_allow,
    unknown_paths_are_404,
    graphql_refusals_carry_a_code,
);

/// Every operation's parameters, request body and responses carry an
/// example valid against its schema, and every link names an operation and
/// only path parameters it has (`tests/schemathesis/check_examples.py`, with
/// Python's `jsonschema`, which Schemathesis brings).
#[test]
fn every_operation_has_valid_examples_and_links() {
    use std::io::Write;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemathesis/check_examples.py"
    );
    let child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let Ok(mut child) = child else {
        assert!(!ci, "python3 is not installed");
        eprintln!("SKIPPED: python3 is not installed");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(api::openapi::document_json().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        let why = "the Python package jsonschema is not installed (bash .ci/run installs Schemathesis, which brings it)";
        assert!(!ci, "{why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
