//! Customer tracks: CRUD of the stored parts (steps, agents, barriers,
//! notes) over REST and GraphQL with their audit rows, tenant isolation on
//! REST and GraphQL, and bad input refused with the field named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::tracks::{setup, stage, steps, touchpoint};
use tests::{both_modes, spawn_app};

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

both_modes!(
    tracks_are_created_listed_edited_and_deleted,
    another_agency_cannot_read_or_change_a_track,
    bad_tracks_are_refused_with_the_field,
);
