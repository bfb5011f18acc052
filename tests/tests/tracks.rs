//! Customer tracks: CRUD of the stored parts (steps, agents, barriers,
//! notes), computed parts that equal what the panel, QFD and hypotheses
//! endpoints answer for the same segment and follow an import to its data
//! version, two tracks compared, tenant isolation on REST and GraphQL, and
//! bad input refused with the field named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Panel, Tenant, TestApp, both_modes, ndjson_rows, panel, spawn_app, url_encode};

const MSK: &str = r#"{"conditions":[{"question":"city","values":["msk"]}]}"#;
const SPB: &str = r#"{"conditions":[{"question":"city","values":["spb"]}]}"#;

/// A panel client with its library set, a segment per city and the
/// library's stages: (panel, msk segment, spb segment, library body).
struct Setup {
    p: Panel,
    msk: String,
    spb: String,
    lib: Value,
}

async fn setup(app: &TestApp, t: &Tenant) -> Setup {
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

fn stage(lib: &Value, i: usize) -> String {
    lib["stages"][i]["id"].as_str().unwrap().to_owned()
}

fn touchpoint(lib: &Value, i: usize, j: usize) -> String {
    lib["stages"][i]["touchpoints"][j]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn steps(lib: &Value) -> Value {
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
async fn stored_at(app: &TestApp, token: &str, track: &str, version: i64) -> Value {
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

async fn tracks_are_created_listed_edited_and_deleted(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = setup(&app, &t).await;
    let r = app
        .post(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": " Parents' flat ", "segment_id": s.msk, "steps": steps(&s.lib)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let track = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["name"], "Parents' flat");
    assert_eq!(r.body["questionnaire_id"], s.p.questionnaire.as_str());
    assert_eq!(r.body["steps"][0]["agents"][0]["strength"], 5);
    assert_eq!(
        r.body["steps"][0]["barriers"][0]["barrier_ref"]["question_key"],
        "why_not"
    );

    let list = app
        .get(
            &format!("/api/v1/clients/{}/tracks?limit=1", s.p.client),
            &t.token,
        )
        .await;
    assert_eq!(list.body["items"][0]["id"], track.as_str(), "{}", list.text);

    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/tracks/{track}"),
            Some(&t.token),
            Some(json!({"name": "Flat for the parents", "segment_id": s.spb})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["segment_id"], s.spb.as_str());
    assert_eq!(r.body["steps"].as_array().unwrap().len(), 2, "steps kept");

    let one = json!({"steps": [{"stage_id": stage(&s.lib, 2), "task": "Sign the deal"}]});
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/tracks/{track}/steps"),
            Some(&t.token),
            Some(one),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["steps"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["steps"][0]["agents"], json!([]));

    let note = app
        .post(
            &format!("/api/v1/tracks/{track}/notes"),
            &t.token,
            json!({"text": "Asked twice about the school nearby", "source": "sales_call", "date": "2026-11-20"}),
        )
        .await;
    assert_eq!(note.status, StatusCode::CREATED, "{}", note.text);
    let note_id = note.body["id"].as_str().unwrap().to_owned();
    let got = app.get(&format!("/api/v1/tracks/{track}"), &t.token).await;
    assert_eq!(got.body["notes"][0]["source"], "sales_call", "{}", got.text);
    assert_eq!(got.body["notes"][0]["date"], "2026-11-20");
    assert_eq!(got.body["name"], "Flat for the parents");

    // GraphQL reads and writes the same tracks.
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { track(id: $id) { id name steps { task agents { kind } } notes { text } computed { segment { n } } } }",
            json!({"id": track}),
        )
        .await;
    assert_eq!(
        r.body["data"]["track"]["notes"][0]["text"], "Asked twice about the school nearby",
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!, $i: JSON!) { createTrack(clientId: $c, input: $i) { id name } }",
            json!({"c": s.p.client, "i": {"name": "By GraphQL", "segment_id": s.msk}}),
        )
        .await;
    let gql_track = r.body["data"]["createTrack"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { deleteTrack(id: $id) }",
            json!({"id": gql_track}),
        )
        .await;
    assert_eq!(r.body["data"]["deleteTrack"], true, "{}", r.text);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tracks/{track}/notes/{note_id}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tracks/{track}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.get(&format!("/api/v1/tracks/{track}"), &t.token).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Every write left its audit row.
    let log = app.get("/api/v1/audit-log?limit=200", &t.token).await;
    for action in [
        "track.create",
        "track.update",
        "track.delete",
        "track_note.create",
        "track_note.delete",
    ] {
        assert!(
            log.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["action"] == action),
            "no {action} row"
        );
    }
}

/// The track's parts, and the same figures from their own endpoints.
async fn assert_parts_match(app: &TestApp, t: &Tenant, s: &Setup, track: &Value, hypothesis: &str) {
    let c = &track["computed"];
    let panel = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/panel?filter={}",
                s.p.questionnaire,
                url_encode(MSK)
            ),
            &t.token,
        )
        .await;
    assert_eq!(panel.status, StatusCode::OK, "{}", panel.text);
    assert_eq!(track["data_version"], panel.body["data_version"]);
    assert_eq!(c["segment"]["n"], panel.body["panel"]["n"]);
    assert_eq!(c["segment"]["share"], panel.body["panel"]["share"]);
    let mut factors = panel.body["panel"]["factors"].as_array().unwrap().clone();
    factors.sort_by_key(|f| f["rank"].as_u64());
    assert_eq!(c["factors"], Value::Array(factors));

    let qfd = app
        .get(
            &format!(
                "/api/v1/clients/{}/qfd?segment_id={}&questionnaire_id={}",
                s.p.client, s.msk, s.p.questionnaire
            ),
            &t.token,
        )
        .await;
    assert_eq!(qfd.status, StatusCode::OK, "{}", qfd.text);
    let critical: Vec<Value> = qfd.body["result"]["touchpoints"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["class"] == "critical")
        .cloned()
        .collect();
    assert!(!critical.is_empty(), "the matrix makes some critical");
    assert_eq!(c["qfd"]["critical_touchpoints"], Value::Array(critical));
    let mut priorities: Vec<Value> = qfd.body["priorities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| !x["priority"].is_null())
        .cloned()
        .collect();
    priorities.sort_by(|a, b| {
        b["priority"]
            .as_f64()
            .partial_cmp(&a["priority"].as_f64())
            .unwrap()
            .then_with(|| {
                a["touchpoint_id"]
                    .as_str()
                    .cmp(&b["touchpoint_id"].as_str())
            })
    });
    assert_eq!(c["qfd"]["priorities"], Value::Array(priorities));

    let results = app
        .get(
            &format!("/api/v1/clients/{}/hypotheses/results", s.p.client),
            &t.token,
        )
        .await;
    let mine: Vec<Value> = results.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["hypothesis_id"] == hypothesis)
        .cloned()
        .collect();
    assert_eq!(mine.len(), 1, "{}", results.text);
    assert_eq!(
        c["hypotheses"],
        Value::Array(mine),
        "only the segment's own"
    );
    assert_eq!(c["hypotheses_version"], results.body["data_version"]);
}

async fn computed_parts_equal_the_endpoints_and_follow_an_import(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = setup(&app, &t).await;
    let first = app
        .import_ndjson(&t.token, &s.p.questionnaire, ndjson_rows("a", 90))
        .await;
    assert_eq!(first["data_version"], 1);
    // A QFD matrix over the first stage's touchpoints.
    let cells: Vec<Value> = (0..4)
        .map(|j| {
            let value = [9, 3, 1, 3][j];
            json!({"factor_id": s.p.factors[j % 2], "touchpoint_id": touchpoint(&s.lib, 0, j),
                   "value": value})
        })
        .collect();
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{}/qfd/matrix", s.p.client),
            Some(&t.token),
            Some(json!({"cells": cells})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let filter: Value = serde_json::from_str(MSK).unwrap();
    let mine = app
        .create(
            &format!("/api/v1/clients/{}/hypotheses", s.p.client),
            &t.token,
            json!({"name": "Moscow promotes more", "questionnaire_id": s.p.questionnaire,
                   "segment": filter, "metric": {"kind": "nps"}, "direction": "greater"}),
        )
        .await;
    app.create(
        &format!("/api/v1/clients/{}/hypotheses", s.p.client),
        &t.token,
        json!({"name": "Petersburg promotes more", "questionnaire_id": s.p.questionnaire,
               "segment": serde_json::from_str::<Value>(SPB).unwrap(), "metric": {"kind": "nps"}, "direction": "greater"}),
    )
    .await;
    let track = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": "Moscow", "segment_id": s.msk, "steps": steps(&s.lib)}),
        )
        .await;
    let body = stored_at(&app, &t.token, &track, 1).await;
    assert_eq!(body["computed"]["problems"], json!([]), "{body}");
    assert_eq!(body["computed"]["segment"]["n"], 60);
    assert_parts_match(&app, &t, &s, &body, &mine).await;
    // No purchases, no mystery shoppers: those parts are empty.
    assert!(body["computed"]["purchases"].is_null());
    assert_eq!(body["computed"]["ux_flags"], json!([]));

    // An import moves the parts to the new version.
    let second = app
        .import_ndjson(&t.token, &s.p.questionnaire, ndjson_rows("b", 30))
        .await;
    assert_eq!(second["data_version"], 2);
    let body = stored_at(&app, &t.token, &track, 2).await;
    assert_eq!(body["computed"]["segment"]["n"], 80);
    assert_parts_match(&app, &t, &s, &body, &mine).await;
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { track(id: $id) { dataVersion fresh computed { segment { n share } } } }",
            json!({"id": track}),
        )
        .await;
    assert_eq!(r.body["data"]["track"]["dataVersion"], 2, "{}", r.text);
    assert_eq!(r.body["data"]["track"]["computed"]["segment"]["n"], 80);
}

async fn two_tracks_compare_side_by_side(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = setup(&app, &t).await;
    app.import_ndjson(&t.token, &s.p.questionnaire, ndjson_rows("a", 60))
        .await;
    let a = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": "Moscow", "segment_id": s.msk, "steps": steps(&s.lib)}),
        )
        .await;
    let b_steps = json!([{"stage_id": stage(&s.lib, 1), "task": "Find a cheap flat",
        "barriers": [{"label": "too expensive!"}, {"label": "Far from the metro"}]}]);
    let b = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &t.token,
            json!({"name": "Petersburg", "segment_id": s.spb, "steps": b_steps}),
        )
        .await;
    let r = app
        .get(&format!("/api/v1/tracks/compare?a={a}&b={b}"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["a"]["segment"]["n"], 40);
    assert_eq!(r.body["b"]["segment"]["n"], 20);
    let factors = r.body["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 2, "{}", r.text);
    let ta = app.get(&format!("/api/v1/tracks/{a}"), &t.token).await.body;
    for f in factors {
        let own = ta["computed"]["factors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["factor_id"] == f["factor"])
            .unwrap();
        assert_eq!(f["rank_a"], own["rank"]);
    }
    assert_eq!(
        r.body["barriers"],
        json!([
            {"label": "Too expensive", "in_a": true, "in_b": true},
            {"label": "No parking", "in_a": true, "in_b": false},
            {"label": "Far from the metro", "in_a": false, "in_b": true}
        ])
    );
    let g = app
        .graphql(
            Some(&t.token),
            "query($a: ID!, $b: ID!) { compareTracks(a: $a, b: $b) { barriers { label inA inB } } }",
            json!({"a": a, "b": b}),
        )
        .await;
    assert_eq!(
        g.body["data"]["compareTracks"]["barriers"][2]["label"], "Far from the metro",
        "{}",
        g.text
    );
}

async fn another_agency_cannot_read_or_change_a_track(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let a = app.signup("Agency A").await;
    let b = app.signup("Agency B").await;
    let s = setup(&app, &b).await;
    let track = app
        .create(
            &format!("/api/v1/clients/{}/tracks", s.p.client),
            &b.token,
            json!({"name": "B's", "segment_id": s.msk, "steps": steps(&s.lib)}),
        )
        .await;
    let note = app
        .create(
            &format!("/api/v1/tracks/{track}/notes"),
            &b.token,
            json!({"text": "x", "source": "interview", "date": "2026-11-20"}),
        )
        .await;
    let before = app
        .get(&format!("/api/v1/tracks/{track}"), &b.token)
        .await
        .body;
    let own = setup(&app, &a).await;
    let mine = app
        .create(
            &format!("/api/v1/clients/{}/tracks", own.p.client),
            &a.token,
            json!({"name": "A's", "segment_id": own.msk}),
        )
        .await;
    let calls: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/api/v1/tracks/{track}"), None),
        (
            Method::PATCH,
            format!("/api/v1/tracks/{track}"),
            Some(json!({"name": "Hacked"})),
        ),
        (
            Method::PUT,
            format!("/api/v1/tracks/{track}/steps"),
            Some(json!({"steps": []})),
        ),
        (
            Method::POST,
            format!("/api/v1/tracks/{track}/notes"),
            Some(json!({"text": "x", "source": "other", "date": "2026-11-20"})),
        ),
        (
            Method::DELETE,
            format!("/api/v1/tracks/{track}/notes/{note}"),
            None,
        ),
        (Method::DELETE, format!("/api/v1/tracks/{track}"), None),
        (
            Method::GET,
            format!("/api/v1/clients/{}/tracks", s.p.client),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/clients/{}/tracks", s.p.client),
            Some(json!({"name": "x", "segment_id": s.msk})),
        ),
        (
            Method::GET,
            format!("/api/v1/tracks/compare?a={mine}&b={track}"),
            None,
        ),
    ];
    for (m, path, body) in calls {
        let r = app.call(m.clone(), &path, Some(&a.token), body).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{m} {path}: {}", r.text);
    }
    // B's segment is no segment of A's client.
    let r = app
        .post(
            &format!("/api/v1/clients/{}/tracks", own.p.client),
            &a.token,
            json!({"name": "x", "segment_id": s.msk}),
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["segment_id".to_owned()]
        )
    );
    for (q, vars) in [
        (
            "query($id: ID!) { track(id: $id) { id } }",
            json!({"id": track}),
        ),
        (
            "query($id: ID!) { tracks(clientId: $id) { items { id } } }",
            json!({"id": s.p.client}),
        ),
        (
            "query($a: ID!, $b: ID!) { compareTracks(a: $a, b: $b) { a { id } } }",
            json!({"a": mine, "b": track}),
        ),
        (
            "mutation($id: ID!) { updateTrack(id: $id, input: {name: \"H\"}) { id } }",
            json!({"id": track}),
        ),
        (
            "mutation($id: ID!) { putTrackSteps(id: $id, input: {steps: []}) { id } }",
            json!({"id": track}),
        ),
        (
            "mutation($id: ID!) { deleteTrack(id: $id) }",
            json!({"id": track}),
        ),
        (
            "mutation($id: ID!) { addTrackNote(trackId: $id, input: {text: \"x\", source: \"other\", date: \"2026-11-20\"}) { id } }",
            json!({"id": track}),
        ),
        (
            "mutation($id: ID!, $n: ID!) { deleteTrackNote(trackId: $id, noteId: $n) }",
            json!({"id": track, "n": note}),
        ),
        (
            "mutation($id: ID!) { createTrack(clientId: $id, input: {name: \"x\", segment_id: \"00000000-0000-7000-8000-000000000001\"}) { id } }",
            json!({"id": s.p.client}),
        ),
    ] {
        let r = app.graphql(Some(&a.token), q, vars).await;
        assert_eq!(
            r.body["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{q}: {}",
            r.text
        );
    }
    let after = app
        .get(&format!("/api/v1/tracks/{track}"), &b.token)
        .await
        .body;
    assert_eq!(after["name"], before["name"]);
    assert_eq!(after["steps"], before["steps"]);
    assert_eq!(after["notes"], before["notes"]);
}

async fn bad_tracks_are_refused_with_the_field(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let s = setup(&app, &t).await;
    let other = app
        .post(
            &format!(
                "/api/v1/touchpoint-libraries/{}/clone",
                tests::TEMPLATE_LIBRARY
            ),
            &t.token,
            json!({"name": "Another"}),
        )
        .await
        .body;
    let path = format!("/api/v1/clients/{}/tracks", s.p.client);
    let with_step = |step: Value| json!({"name": "x", "segment_id": s.msk, "steps": [step]});
    let good = || json!({"stage_id": stage(&s.lib, 0), "task": "t"});
    let cases: Vec<(Value, &str)> = vec![
        (
            with_step(json!({"stage_id": stage(&other, 0), "task": "t"})),
            "steps[0].stage_id",
        ),
        (
            with_step(
                json!({"stage_id": stage(&s.lib, 0), "touchpoint_id": touchpoint(&other, 0, 0), "task": "t"}),
            ),
            "steps[0].touchpoint_id",
        ),
        (
            with_step(
                json!({"stage_id": stage(&s.lib, 1), "touchpoint_id": touchpoint(&s.lib, 0, 0), "task": "t"}),
            ),
            "steps[0].touchpoint_id",
        ),
        (
            with_step(
                json!({"stage_id": stage(&s.lib, 0), "task": "t", "agents": [{"kind": "family", "strength": 0}]}),
            ),
            "steps[0].agents[0].strength",
        ),
        (
            with_step(
                json!({"stage_id": stage(&s.lib, 0), "task": "t", "agents": [{"kind": "family", "strength": 6}]}),
            ),
            "steps[0].agents[0].strength",
        ),
        (
            with_step(
                json!({"stage_id": stage(&s.lib, 0), "task": "t", "agents": [{"kind": "aliens", "strength": 3}]}),
            ),
            "steps[0].agents[0].kind",
        ),
        (
            with_step(json!({"stage_id": stage(&s.lib, 0), "task": "   "})),
            "steps[0].task",
        ),
        (
            json!({"name": "x", "segment_id": s.msk, "colour": "red"}),
            "colour",
        ),
        (json!({"name": "", "segment_id": s.msk}), "name"),
        (json!({"name": "x", "segment_id": s.p.client}), "segment_id"),
    ];
    for (body, field) in cases {
        let r = app.post(&path, &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.text);
    }
    let r = app
        .post(
            &path,
            &t.token,
            with_step(json!({"stage_id": stage(&s.lib, 0), "task": "t", "mood": 1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let track = app.create(&path, &t.token, with_step(good())).await;
    for (body, field) in [
        (
            json!({"text": "x", "source": "gossip", "date": "2026-11-20"}),
            "source",
        ),
        (
            json!({"text": "x", "source": "other", "date": "1999-12-31"}),
            "date",
        ),
        (
            json!({"text": "", "source": "other", "date": "2026-11-20"}),
            "text",
        ),
        (
            json!({"text": "x", "source": "other", "date": "2026-11-20", "who": 1}),
            "who",
        ),
    ] {
        let r = app
            .post(
                &format!("/api/v1/tracks/{track}/notes"),
                &t.token,
                body.clone(),
            )
            .await;
        assert_eq!(
            (r.status, r.error_fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{body}: {}",
            r.text
        );
    }
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/tracks/{track}/steps"),
            Some(&t.token),
            Some(json!({"steps": [good(), {"stage_id": stage(&other, 1), "task": "t"}]})),
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["steps[1].stage_id".to_owned()]
        )
    );
    // GraphQL names the same fields.
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!, $i: JSON!) { putTrackSteps(id: $id, input: $i) { id } }",
            json!({"id": track, "i": {"steps": [{"stage_id": stage(&s.lib, 0), "task": "t", "agents": [{"kind": "friends", "strength": 6}]}]}}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["field"], "steps[0].agents[0].strength",
        "{}",
        r.text
    );
    // Nothing of the refused writes was stored.
    let list = app.get(&path, &t.token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

async fn ux_flags_are_the_ux_maps_own(mode: tests::Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    // The fitness club's audits fell this week: a negative flag per level.
    let (client, audit, _) = tests::mystery_audit(&app, &t, "en").await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{audit}/responses/import"),
            Some(&t.token),
            "text/csv",
            tests::audits_csv(&tests::FALLING),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.create(
        &format!("/api/v1/clients/{client}/questionnaires"),
        &t.token,
        json!({"title": "Panel", "kind": "customer_panel", "questions": [
            {"key": "city", "type": "single_choice", "options": ["msk", "spb"], "role": "segment_attribute"}
        ]}),
    )
    .await;
    let segment = app
        .create(
            &format!("/api/v1/clients/{client}/segments"),
            &t.token,
            json!({"name": "Moscow", "filter": serde_json::from_str::<Value>(MSK).unwrap()}),
        )
        .await;
    // No steps yet: every flag of the client's map is the track's.
    let track = app
        .create(
            &format!("/api/v1/clients/{client}/tracks"),
            &t.token,
            json!({"name": "Losing weight", "segment_id": segment}),
        )
        .await;
    let body = stored_at(&app, &t.token, &track, 0).await;
    let map = app
        .get(&format!("/api/v1/clients/{client}/ux-map"), &t.token)
        .await
        .body;
    let mut expected = Vec::new();
    for (list, scope, key) in [
        ("by_touchpoint_jtbd", "touchpoint_jtbd", "touchpoint_id"),
        ("by_touchpoint", "touchpoint", "touchpoint_id"),
        ("by_stage", "stage", "stage_id"),
    ] {
        for row in map[list].as_array().unwrap() {
            if !row["stats"]["flag"].is_null() {
                expected.push((
                    scope.to_owned(),
                    row[key].clone(),
                    row["stats"]["deviation"].clone(),
                ));
            }
        }
    }
    let got: Vec<(String, Value, Value)> = body["computed"]["ux_flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let key = if f["scope"] == "stage" {
                "stage_id"
            } else {
                "touchpoint_id"
            };
            (
                f["scope"].as_str().unwrap().to_owned(),
                f[key].clone(),
                f["deviation"].clone(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{body}");
    assert_eq!(got, expected);
    assert_eq!(body["computed"]["ux_version"], map["data_version"]);
}

both_modes!(
    ux_flags_are_the_ux_maps_own,
    tracks_are_created_listed_edited_and_deleted,
    computed_parts_equal_the_endpoints_and_follow_an_import,
    two_tracks_compare_side_by_side,
    another_agency_cannot_read_or_change_a_track,
    bad_tracks_are_refused_with_the_field,
);
