//! The customer-track tests' shared world: a panel client with its
//! touchpoint library set, a saved segment per city, a track's steps over
//! that library, and a wait for the worker's parts.
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{Panel, Tenant, TestApp, panel};

pub const MSK: &str = r#"{"conditions":[{"question":"city","values":["msk"]}]}"#;
pub const SPB: &str = r#"{"conditions":[{"question":"city","values":["spb"]}]}"#;

/// A panel client with its library set, a segment per city and the
/// library's stages: (panel, msk segment, spb segment, library body).
pub struct Setup {
    pub p: Panel,
    pub msk: String,
    pub spb: String,
    pub lib: Value,
}

pub async fn setup(app: &TestApp, t: &Tenant) -> Setup {
    let p = panel(app, t).await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/clients/{}", p.client),
            Some(&t.token),
            Some(json!({"touchpoint_library_id": p.library})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let seg = |name: &str, f: &str| json!({"name": name, "filter": serde_json::from_str::<Value>(f).unwrap()});
    let msk = app
        .create(
            &format!("/api/v1/clients/{}/segments", p.client),
            &t.token,
            seg("Moscow", MSK),
        )
        .await;
    let spb = app
        .create(
            &format!("/api/v1/clients/{}/segments", p.client),
            &t.token,
            seg("Petersburg", SPB),
        )
        .await;
    let lib = app
        .get(
            &format!("/api/v1/touchpoint-libraries/{}", p.library),
            &t.token,
        )
        .await
        .body;
    Setup { p, msk, spb, lib }
}

pub fn stage(lib: &Value, i: usize) -> String {
    lib["stages"][i]["id"].as_str().unwrap().to_owned()
}

pub fn touchpoint(lib: &Value, i: usize, j: usize) -> String {
    lib["stages"][i]["touchpoints"][j]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn steps(lib: &Value) -> Value {
    json!([
        {"stage_id": stage(lib, 0), "touchpoint_id": touchpoint(lib, 0, 0),
         "task": "Understand which district suits the parents",
         "agents": [{"kind": "family", "label": "the parents", "strength": 5},
                    {"kind": "bloggers", "strength": 2}],
         "barriers": [{"label": "Too expensive", "barrier_ref": {"question_key": "why_not", "value": "price"}}]},
        {"stage_id": stage(lib, 1), "task": "Compare three developers",
         "agents": [{"kind": "sales_manager", "strength": 4}],
         "barriers": [{"label": "No parking"}]}
    ])
}

/// Polls the track until the worker's parts reflect `version`.
pub async fn stored_at(app: &TestApp, token: &str, track: &str, version: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app.get(&format!("/api/v1/tracks/{track}"), token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        if r.body["fresh"] == true
            && r.body["source"] == "stored"
            && r.body["data_version"].as_i64() == Some(version)
        {
            return r.body;
        }
        assert!(
            Instant::now() < deadline,
            "the track never reached version {version}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
