//! An explicit empty multi-choice selection, `[]`, is an answer — "none of
//! these" — not a blank (analytics.md, Notation): it counts in the
//! question's `n_answered`, lowers every option's share, is in no segment
//! that names a value of the question, and counts in a share hypothesis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

async fn setup(app: &TestApp, t: &Tenant) -> (String, String) {
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Developer"}))
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Buyers", "kind": "customer_panel", "questions": [
                {"key": "city", "type": "single_choice", "options": ["msk", "spb"], "role": "segment_attribute"},
                {"key": "fears", "type": "multi_choice", "options": ["a", "b"]},
                {"key": "nps", "type": "nps_0_10", "role": "nps"}
            ]}),
        )
        .await;
    (client, q)
}

fn enc(v: &Value) -> String {
    tests::url_encode(&v.to_string())
}

fn fears(panel: &Value) -> (u64, Vec<Option<f64>>) {
    let c = panel["choices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "fears")
        .unwrap_or_else(|| panic!("no fears in {panel}"));
    (
        c["answered"].as_u64().unwrap(),
        c["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["share"].as_f64())
            .collect(),
    )
}

/// The stored (worker-materialised) unfiltered panel at `version`.
async fn stored_panel(app: &TestApp, t: &Tenant, q: &str, version: i64) -> Value {
    app.wait_for_summary(&t.token, q, version).await;
    let r = app
        .get(&format!("/api/v1/questionnaires/{q}/panel"), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data_version"], version, "{}", r.text);
    r.body["panel"].clone()
}

async fn filtered_panel(app: &TestApp, t: &Tenant, q: &str, filter: &Value) -> Value {
    let r = app
        .get(
            &format!("/api/v1/questionnaires/{q}/panel?filter={}", enc(filter)),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["panel"].clone()
}

async fn graphql_panel(app: &TestApp, t: &Tenant, q: &str, filter: Option<&Value>) -> Value {
    let g = app
        .graphql(
            Some(&t.token),
            "query($id: ID!, $f: SegmentFilterInput) { questionnairePanel(id: $id, filter: $f) {
                panel { n choices { key answered options { option count share } } } } }",
            json!({"id": q, "f": filter}),
        )
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
    g.body["data"]["questionnairePanel"]["panel"].clone()
}

async fn an_empty_selection_is_an_answer(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, q) = setup(&app, &t).await;
    // ["a"], key absent, null — by NDJSON; the panel is computed and cached.
    let rows = [
        json!({"answers": {"city": "msk", "fears": ["a"], "nps": 9}}),
        json!({"answers": {"city": "msk", "nps": 7}}),
        json!({"answers": {"city": "msk", "fears": null, "nps": 3}}),
    ];
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let v = app.import_ndjson(&t.token, &q, body).await["data_version"]
        .as_i64()
        .unwrap();
    let before = stored_panel(&app, &t, &q, v).await;
    assert_eq!(fears(&before), (1, vec![Some(1.0), Some(0.0)]));

    // [] through GraphQL: folded into the cached dataset (incremental path).
    let g = app
        .graphql(
            Some(&t.token),
            r#"mutation($q: ID!) { submitResponse(questionnaireId: $q, answers: {city: "msk", fears: [], nps: 10}) { dataVersion } }"#,
            json!({"q": q}),
        )
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
    let v = g.body["data"]["submitResponse"]["dataVersion"]
        .as_i64()
        .unwrap();
    // Hand-computed: [], ["a"], absent, null → answered 2, share of a 1/2.
    let stored = stored_panel(&app, &t, &q, v).await;
    assert_eq!(fears(&stored), (2, vec![Some(0.5), Some(0.0)]), "{stored}");
    // The full path (a filter that keeps every row) agrees, over REST and
    // GraphQL.
    let everyone = json!({"conditions": [{"question": "city", "values": ["msk", "spb"]}]});
    let full = filtered_panel(&app, &t, &q, &everyone).await;
    assert_eq!(full, stored);
    let gp = graphql_panel(&app, &t, &q, Some(&everyone)).await;
    assert_eq!(gp["choices"], stored["choices"]);
    assert_eq!(
        graphql_panel(&app, &t, &q, None).await["choices"],
        stored["choices"]
    );
    // The stored response keeps its [] (it is not dropped as blank).
    let list = app
        .get(&format!("/api/v1/questionnaires/{q}/responses"), &t.token)
        .await;
    let kept: Vec<&Value> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["answers"]["fears"])
        .collect();
    assert_eq!(
        kept,
        [&json!(["a"]), &Value::Null, &Value::Null, &json!([])],
        "{}",
        list.text
    );

    // Four more from St Petersburg: [] over REST, ["a"], ["b"], null.
    let r = app
        .post(
            &format!("/api/v1/questionnaires/{q}/responses"),
            &t.token,
            json!({"answers": {"city": "spb", "fears": [], "nps": 8}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rows = [
        json!({"answers": {"city": "spb", "fears": ["a"], "nps": 5}}),
        json!({"answers": {"city": "spb", "fears": ["b"], "nps": 6}}),
        json!({"answers": {"city": "spb", "fears": null, "nps": 9}}),
    ];
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let v = app.import_ndjson(&t.token, &q, body).await["data_version"]
        .as_i64()
        .unwrap();
    let stored = stored_panel(&app, &t, &q, v).await;
    // 5 answered of 8: a 2/5, b 1/5.
    assert_eq!(fears(&stored), (5, vec![Some(0.4), Some(0.2)]), "{stored}");

    // Segment filters: [] holds no value, so it is in no segment naming one.
    let any = json!({"conditions": [{"question": "fears", "values": ["a", "b"]}]});
    let seg = filtered_panel(&app, &t, &q, &any).await;
    assert_eq!(seg["n"], 3, "{seg}");
    assert_eq!(graphql_panel(&app, &t, &q, Some(&any)).await["n"], 3);
    let msk = json!({"conditions": [{"question": "city", "values": ["msk"]}]});
    let seg = filtered_panel(&app, &t, &q, &msk).await;
    assert_eq!(fears(&seg), (2, vec![Some(0.5), Some(0.0)]), "{seg}");

    // A share hypothesis on the question: [] is in n1 and n2.
    app.create(
        &format!("/api/v1/clients/{client}/hypotheses"),
        &t.token,
        json!({"name": "Moscow fears a more", "questionnaire_id": q, "segment": msk,
               "metric": {"kind": "share", "question": "fears", "value": "a"}, "direction": "greater"}),
    )
    .await;
    let h = app.hypotheses_after(&t.token, &client, 0).await["items"][0]["result"].clone();
    // Moscow: [] and ["a"] answered → 1/2; the rest: [], ["a"], ["b"] → 1/3.
    assert_eq!(
        (h["n1"].as_u64(), h["n2"].as_u64()),
        (Some(2), Some(3)),
        "{h}"
    );
    assert_eq!(h["estimate1"], json!(0.5));
    assert!(
        (h["estimate2"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12,
        "{h}"
    );
    let g = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { hypothesesResults(clientId: $id) { items { result { n1 n2 } } } }",
            json!({"id": client}),
        )
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
    assert_eq!(
        g.body["data"]["hypothesesResults"]["items"][0]["result"],
        json!({"n1": 2, "n2": 3})
    );
}

/// A database from before the change: its stored figures counted `[]` as
/// blank. After the upgrade's migration nothing stale is served and the
/// worker recomputes the figures the new way.
async fn figures_stored_before_the_upgrade_are_recounted(mode: Mode) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, q) = setup(&app, &t).await;
    let rows = [
        json!({"answers": {"city": "msk", "fears": ["a"], "nps": 9}}),
        json!({"answers": {"city": "msk", "fears": [], "nps": 10}}),
        json!({"answers": {"city": "spb", "fears": ["b"], "nps": 6}}),
        json!({"answers": {"city": "spb", "fears": [], "nps": 9}}),
    ];
    let body: String = rows.iter().map(|r| format!("{r}\n")).collect();
    let v = app.import_ndjson(&t.token, &q, body).await["data_version"]
        .as_i64()
        .unwrap();
    let msk = json!({"conditions": [{"question": "city", "values": ["msk"]}]});
    app.create(
        &format!("/api/v1/clients/{client}/hypotheses"),
        &t.token,
        json!({"name": "Moscow fears a more", "questionnaire_id": q, "segment": msk,
               "metric": {"kind": "share", "question": "fears", "value": "a"}, "direction": "greater"}),
    )
    .await;
    let right = stored_panel(&app, &t, &q, v).await;
    assert_eq!(fears(&right), (4, vec![Some(0.25), Some(0.25)]));
    // NPS 9, 10, 6, 9: 50 ± 1.96·100·√(0.75/4) = 50 ± 84.9, whose upper
    // bound is clamped to the scale in the panel and in the summary.
    let half = 1.96 * 100.0 * (0.75f64 / 4.0).sqrt();
    let summary = app.wait_for_summary(&t.token, &q, v).await;
    for nps in [&right["nps"], &summary["summary"]["nps"]] {
        assert_eq!(nps["nps"], json!(50.0), "{nps}");
        assert_eq!(nps["ci95_high"], json!(100.0), "{nps}");
        assert!((nps["ci95_low"].as_f64().unwrap() - (50.0 - half)).abs() < 1e-9);
    }
    let h = app.hypotheses_after(&t.token, &client, 0).await["items"][0]["result"].clone();
    assert_eq!((h["n1"].as_u64(), h["n2"].as_u64()), (Some(2), Some(2)));

    // What the old code stored: [] dropped, so 2 answered, a and b 1/2
    // each, and a hypothesis on 1 against 1.
    let db = &app.services.db;
    let q_id: uuid::Uuid = q.parse().unwrap();
    let c_id: uuid::Uuid = client.parse().unwrap();
    // An upgrade runs with the workers stopped: wait until none of this
    // agency's recomputes is pending or running, so that no job in flight
    // overwrites the old figures planted below or what the migration marks.
    let agency: uuid::Uuid = t.agency_id.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let busy = entity::recompute_target::Entity::find()
            .filter(entity::recompute_target::Column::AgencyId.eq(agency))
            .all(db)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.pending || r.lease_until_ms != 0)
            .count();
        if busy == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{busy} recomputes never settled");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let snaps = entity::snapshot::Entity::find()
        .filter(entity::snapshot::Column::TargetId.is_in([q_id, c_id]))
        .all(db)
        .await
        .unwrap();
    assert_eq!(snaps.len(), 3, "summary, panel, hypotheses");
    for s in snaps {
        let mut payload = s.payload.clone();
        match s.kind.as_str() {
            "questionnaire_panel" => {
                for c in payload["choices"].as_array_mut().unwrap() {
                    if c["key"] == "fears" {
                        c["answered"] = json!(2);
                        for o in c["options"].as_array_mut().unwrap() {
                            o["share"] = json!(0.5);
                        }
                    }
                }
            }
            "client_hypotheses" => {
                payload[0]["result"]["n1"] = json!(1);
                payload[0]["result"]["n2"] = json!(1);
            }
            _ => continue,
        }
        entity::snapshot::Entity::update_many()
            .col_expr(
                entity::snapshot::Column::Payload,
                sea_orm::sea_query::Expr::value(payload),
            )
            .filter(entity::snapshot::Column::Id.eq(s.id))
            .exec(db)
            .await
            .unwrap();
    }
    let stale = app
        .get(&format!("/api/v1/questionnaires/{q}/panel"), &t.token)
        .await;
    assert_eq!(fears(&stale.body["panel"]).0, 2, "the old figure is served");

    // The upgrade: every migration from the recount on runs again.
    tests::rerun_migrations_from(db, "_000016_recount_empty_selections").await;

    // From here on no read shows the stale figure; the worker restores the
    // right ones at the same data version.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let p = app
            .get(&format!("/api/v1/questionnaires/{q}/panel"), &t.token)
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        assert_eq!(fears(&p.body["panel"]).0, 4, "{}", p.text);
        let s = app
            .get(&format!("/api/v1/questionnaires/{q}/summary"), &t.token)
            .await;
        if s.body["data_version"].as_i64() == Some(v) && s.body["status"] == "fresh" {
            break;
        }
        assert!(Instant::now() < deadline, "never recomputed: {}", s.text);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(stored_panel(&app, &t, &q, v).await, right);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = app
            .get(
                &format!("/api/v1/clients/{client}/hypotheses/results"),
                &t.token,
            )
            .await;
        let n = &r.body["items"][0]["result"];
        assert_ne!(
            n["n1"], 1,
            "the stale hypothesis result is not served: {}",
            r.text
        );
        if r.body["status"] == "fresh" && n["n1"] == 2 {
            assert_eq!(n["n2"], 2);
            break;
        }
        assert!(Instant::now() < deadline, "never recomputed: {}", r.text);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

both_modes!(
    an_empty_selection_is_an_answer,
    figures_stored_before_the_upgrade_are_recounted
);
