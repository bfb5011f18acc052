//! `/metrics`: Prometheus text that the reference parser (Python's
//! `prometheus_client`) reads, served behind a token on the API's port or on
//! a listener of its own, whose counters move as requests and jobs run, and
//! whose labels never carry a tenant's data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use api::configuration::Secret;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TestApp, both_modes, ndjson_rows, panel, spawn_app, spawn_with};

const TOKEN: &str = "scrape-token-0123456789abcdef";

/// Parses the text with `prometheus_client.parser` and prints the families
/// as JSON; a sample that belongs to no declared family comes out untyped,
/// which is refused too.
const PARSER: &str = r#"
import json, sys
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit(3)
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    if f.type in ("unknown", "untyped"):
        sys.exit("sample outside any declared family: %s" % f.name)
    if f.name in out:
        sys.exit("family declared twice: %s" % f.name)
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out, allow_nan=False))
"#;

/// One parsed scrape: family name → type and samples.
struct Families(BTreeMap<String, Value>);

impl Families {
    /// The value of the sample `name` whose labels include `labels`
    /// (summed when several match), 0 when none does.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .values()
            .flat_map(|f| f["samples"].as_array().unwrap())
            .filter(|s| s[0] == name)
            .filter(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
            .map(|s| s[2].as_f64().unwrap())
            .sum()
    }

    fn kind(&self, family: &str) -> Option<&str> {
        self.0.get(family).and_then(|f| f["type"].as_str())
    }

    /// Every value of label `label` in the family's samples.
    fn label_values(&self, family: &str, label: &str) -> Vec<String> {
        self.0.get(family).map_or(vec![], |f| {
            f["samples"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s[1][label].as_str().map(str::to_owned))
                .collect()
        })
    }
}

/// Parses with Python's `prometheus_client`; None where python3 or the
/// package is missing outside CI (in CI that fails the test).
fn parse(text: &str) -> Option<Families> {
    use std::io::Write;
    let missing = |why: String| {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "{why} (bash .ci/run installs it: pip install prometheus-client)"
        );
        eprintln!("SKIPPED: {why}");
        None
    };
    let child = std::process::Command::new("python3")
        .args(["-c", PARSER])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        return missing("python3 is not installed".into());
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.code() == Some(3) {
        return missing("the Python package prometheus-client is not installed".into());
    }
    assert!(
        out.status.success(),
        "prometheus_client could not parse the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(Families(serde_json::from_slice(&out.stdout).unwrap()))
}

/// How a test reaches `/metrics`.
#[derive(Clone, Copy)]
enum Via {
    /// The API's port, with the token.
    Token,
    /// The `metrics_addr` listener.
    OwnPort,
}

async fn spawn_metrics(mode: Mode, via: Via) -> TestApp {
    spawn_with(mode, |s| match via {
        Via::Token => s.metrics_token = Some(Secret::new(TOKEN)),
        Via::OwnPort => s.metrics_addr = Some("127.0.0.1:0".into()),
    })
    .await
}

async fn scrape(app: &TestApp, via: Via) -> String {
    let req = match via {
        Via::Token => app.http.get(app.url("/metrics")).bearer_auth(TOKEN),
        Via::OwnPort => app.http.get(format!(
            "http://127.0.0.1:{}/metrics",
            app.metrics_port.expect("a metrics listener")
        )),
    };
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// Scrapes until `done` holds for the parsed families (jobs are counted
/// when they end, a moment after their results show); the last scrape.
async fn scrape_until(
    app: &TestApp,
    via: Via,
    what: &str,
    done: impl Fn(&Families) -> bool,
) -> Option<(String, Families)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape(app, via).await;
        let families = parse(&text)?;
        if done(&families) {
            return Some((text, families));
        }
        assert!(Instant::now() < deadline, "{what} never moved:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const IMPORT_ROUTE: &str = "/api/v1/questionnaires/{id}/responses/import";
const ROWS: usize = 120;

async fn counters_move_as_requests_and_jobs_run(app: &TestApp, via: Via) {
    let Some(before) = parse(&scrape(app, via).await) else {
        return;
    };
    assert_eq!(
        before.value("growthpoint_metrics_database_up", &[]),
        1.0,
        "the database gauges were read"
    );

    // Requests, an import the worker recomputes, and an email.
    let t = app.signup("Metered Agency").await;
    let p = panel(app, &t).await;
    let imported = app
        .import_ndjson(&t.token, &p.questionnaire, ndjson_rows("m", ROWS))
        .await;
    let client = app
        .get(&format!("/api/v1/clients/{}", p.client), &t.token)
        .await;
    assert_eq!(client.status, StatusCode::OK);
    let missing = app
        .get(&format!("/api/v1/no-such-thing/{}", p.client), &t.token)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let list = app
        .create(
            &format!("/api/v1/clients/{}/lists", p.client),
            &t.token,
            json!({"name": "News", "consent_text": "I agree to receive the news."}),
        )
        .await;
    let reader = format!("reader-{}@metered.example.com", &p.client[..8]);
    let sub = app
        .call(
            Method::POST,
            &format!("/api/v1/public/lists/{list}/subscribe"),
            None,
            Some(json!({"email": reader, "consent": true})),
        )
        .await;
    assert!(sub.status.is_success(), "{}", sub.text);
    app.wait_for_summary(
        &t.token,
        &p.questionnaire,
        imported["data_version"].as_i64().unwrap(),
    )
    .await;

    let computed = [("kind", "questionnaire_summary"), ("outcome", "computed")];
    let sent = [("status", "sent")];
    let Some((text, after)) = scrape_until(app, via, "the job and email counters", |f| {
        f.value("growthpoint_jobs_total", &computed)
            > before.value("growthpoint_jobs_total", &computed)
            && f.value("growthpoint_email_sends_total", &sent)
                > before.value("growthpoint_email_sends_total", &sent)
    })
    .await
    else {
        return;
    };

    // A family shows once it has a sample.
    for family in [
        "growthpoint_http_requests",
        "growthpoint_jobs",
        "growthpoint_import_rows",
        "growthpoint_email_sends",
    ] {
        assert_eq!(after.kind(family), Some("counter"), "{family}");
    }
    for family in [
        "growthpoint_http_request_duration_seconds",
        "growthpoint_job_duration_seconds",
    ] {
        assert_eq!(after.kind(family), Some("histogram"), "{family}");
    }
    for family in [
        "growthpoint_email_deliveries",
        "growthpoint_recompute_pending",
        "growthpoint_recompute_oldest_pending_seconds",
        "growthpoint_metrics_database_up",
        "growthpoint_build_info",
    ] {
        assert_eq!(after.kind(family), Some("gauge"), "{family}");
    }
    let moved = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let import = [
        ("method", "POST"),
        ("route", IMPORT_ROUTE),
        ("status", "201"),
    ];
    assert_eq!(moved("growthpoint_http_requests_total", &import), 1.0);
    assert_eq!(
        moved(
            "growthpoint_http_request_duration_seconds_count",
            &[("method", "POST"), ("route", IMPORT_ROUTE)]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "growthpoint_http_request_duration_seconds_bucket",
            &[("method", "POST"), ("route", IMPORT_ROUTE), ("le", "+Inf")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "growthpoint_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/clients/{id}"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "growthpoint_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(
        moved("growthpoint_import_rows_total", &[("kind", "responses")]),
        ROWS as f64
    );
    // (The email may go out from its wake-up job or from the sweeper's
    // tick, whichever comes first: only the delivery is sure to count.)
    assert!(moved("growthpoint_email_sends_total", &sent) >= 1.0);
    assert!(
        moved(
            "growthpoint_job_duration_seconds_count",
            &[("kind", "questionnaire_summary")]
        ) >= 1.0
    );
    assert!(
        after
            .label_values("growthpoint_recompute_pending", "kind")
            .contains(&"questionnaire_summary".to_owned()),
        "{text}"
    );
    for status in ["queued", "deferred", "failed"] {
        assert!(
            after
                .label_values("growthpoint_email_deliveries", "status")
                .contains(&status.to_owned()),
            "{status}: {text}"
        );
    }

    // Routes are patterns; no tenant's ids or addresses become labels.
    let routes = after.label_values("growthpoint_http_requests", "route");
    assert!(
        routes
            .iter()
            .all(|r| r == "unmatched" || r.starts_with('/'))
    );
    for secret in [
        p.client.as_str(),
        p.questionnaire.as_str(),
        t.agency_id.as_str(),
        t.email.as_str(),
        reader.as_str(),
        "no-such-thing",
    ] {
        assert!(!text.contains(secret), "{secret} in the scrape:\n{text}");
    }
}

async fn counters_move_behind_the_token(mode: Mode) {
    let app = spawn_metrics(mode, Via::Token).await;
    counters_move_as_requests_and_jobs_run(&app, Via::Token).await;
}

async fn counters_move_on_the_metrics_listener(mode: Mode) {
    let app = spawn_metrics(mode, Via::OwnPort).await;
    counters_move_as_requests_and_jobs_run(&app, Via::OwnPort).await;
    // The API's own port has no /metrics then.
    let r = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

async fn the_api_port_answers_metrics_only_to_the_token(mode: Mode) {
    let plain = spawn_app(mode).await;
    let r = plain.call(Method::GET, "/metrics", Some(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "no token configured");
    assert_eq!(r.body["code"], "not_found");

    let app = spawn_metrics(mode, Via::Token).await;
    for token in [None, Some("wrong-token-0123456789abcdef"), Some("")] {
        let r = app.call(Method::GET, "/metrics", token, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}: {}", r.text);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        assert!(!r.text.contains("growthpoint_"), "{}", r.text);
    }
    let r = app.call(Method::GET, "/metrics", Some(TOKEN), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text
            .contains("# TYPE growthpoint_http_requests_total counter")
    );
    // The failed scrapes above were counted, under the route's pattern.
    assert!(
        r.text.contains(
            r#"growthpoint_http_requests_total{method="GET",route="/metrics",status="401"} 3"#
        ),
        "{}",
        r.text
    );
}

both_modes!(
    counters_move_behind_the_token,
    counters_move_on_the_metrics_listener,
    the_api_port_answers_metrics_only_to_the_token,
);
