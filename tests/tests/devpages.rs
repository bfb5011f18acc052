//! The developer pages — GraphiQL at `/graphql` and the REST reference at
//! `/api/v1/docs` — are served whole from the binary: they name only
//! same-origin assets, and they work in a browser with the network off.
//!
//! The browser part is `tests/browser/devpages.mjs` (playwright-core driving
//! Debian's Chromium). Under CI (`CI=true`) a missing node, Chromium or
//! playwright-core fails the test; elsewhere it is skipped, saying why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mode, TestApp, spawn_app};

const PAGES: [&str; 2] = ["/graphql", "/api/v1/docs"];

/// The values of `src="…"` and `href="…"` in a page.
fn linked_urls(html: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| {
            html.split(attr)
                .skip(1)
                .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        })
        .collect()
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

fn header<'h>(headers: &'h reqwest::header::HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_name_only_same_origin_assets_served_from_the_binary() {
    let app = spawn_app(Mode::Sqlite).await;
    for page in PAGES {
        let (status, headers, html) = get(&app, page).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert!(header(&headers, "content-type").starts_with("text/html"));
        let csp = header(&headers, "content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self';",
            "style-src 'self'",
        ] {
            assert!(csp.contains(directive), "{page}: {directive} not in {csp}");
        }
        assert!(!csp.contains("unsafe"), "{page}: {csp}");
        let urls = linked_urls(&html);
        assert!(urls.len() >= 4, "{page} links {urls:?}");
        for url in urls {
            if url == "data:," {
                continue; // the empty favicon: no request at all
            }
            assert!(
                url.starts_with(&format!("{page}/assets/")),
                "{page} links {url}, not one of its own assets"
            );
            let (status, headers, body) = get(&app, &url).await;
            assert_eq!(status, StatusCode::OK, "{url}");
            let kind = header(&headers, "content-type");
            assert!(
                kind.starts_with("text/javascript") || kind.starts_with("text/css"),
                "{url}: {kind}"
            );
            assert!(
                header(&headers, "cache-control").contains("immutable"),
                "{url}"
            );
            assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
            assert!(body.len() > 100, "{url} is nearly empty");
        }
    }
    // GraphiQL's one allowed inline <style> carries a nonce: a new one each time.
    let nonce = |h: &reqwest::header::HeaderMap| {
        let csp = header(h, "content-security-policy");
        csp.split("'nonce-")
            .nth(1)
            .map(|n| n.split('\'').next().unwrap().to_owned())
    };
    let (first, second) = (get(&app, "/graphql").await.1, get(&app, "/graphql").await.1);
    assert!(nonce(&first).is_some_and(|n| n.len() >= 32));
    assert_ne!(nonce(&first), nonce(&second));
    for missing in ["/graphql/assets/nope.js", "/api/v1/docs/assets/nope.js"] {
        assert_eq!(
            get(&app, missing).await.0,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_posts_still_answer_beside_the_page() {
    let app = spawn_app(Mode::Sqlite).await;
    let t = app.signup("Beside Agency").await;
    let r = app
        .graphql(Some(&t.token), "{ me { agency { name } } }", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data"]["me"]["agency"]["name"], "Beside Agency");
    let r = app
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["paths"]["/api/v1/me"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_and_the_rest_reference_work_in_a_browser_with_the_network_off() {
    let Some(browser) = tests::Browser::find() else {
        return;
    };
    let app = spawn_app(Mode::Sqlite).await;
    let t = app.signup("Offline Agency").await;
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("devpages");
    let _ = std::fs::remove_dir_all(&artifacts);

    let (report, shown) = browser
        .run(
            "devpages.mjs",
            &[
                app.base.as_str(),
                t.token.as_str(),
                "Offline Agency",
                artifacts.to_str().unwrap(),
            ],
        )
        .await;
    eprintln!("screenshots in {}", artifacts.display());
    assert_eq!(report["blocked"], json!([]), "{shown}");
    assert_eq!(
        report["graphiql"]["result"]["data"]["me"]["agency"]["name"],
        "Offline Agency"
    );
    assert_eq!(report["docs"]["status_shown"], "200");
    for shot in ["graphiql.png", "docs.png"] {
        assert!(artifacts.join(shot).is_file(), "{shot} not saved");
    }
}
