//! Sales-barrier analysis through the API: non-buyer and buyer responses
//! imported, the analysis read over REST and GraphQL equals the values
//! computed by hand and by SciPy (`tests/reference/barriers_scipy.py`, whose
//! `DATASET` these responses reproduce); by stage and by segment; isolation
//! and validation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TEMPLATE_LIBRARY, Tenant, TestApp, both_modes, spawn_app};

/// A client with the template library cloned, a non-buyer survey and a
/// customer panel asking the same barrier questions.
struct Fixture {
    client: String,
    evaluation: String,
    deal: String,
    non_buyer: String,
}

/// SciPy's figures per (question, option): non-buyer CI, buyer CI,
/// difference, its CI, p, q (printed by the reference script, SciPy 1.17.1).
type Expected = (
    &'static str,
    &'static str,
    (f64, f64),
    Option<((f64, f64), f64, (f64, f64), f64, f64)>,
    f64,
);

const EXPECTED: [Expected; 6] = [
    (
        "why_not",
        "price",
        (0.293524297864468, 0.46423049374020786),
        Some((
            (0.0879980047055142, 0.196980174497742),
            0.24166666666666667,
            (0.13938179332935996, 0.3439515400039734),
            1.9625047017637817e-06,
            9.81252350881891e-06,
        )),
        29.0,
    ),
    (
        "why_not",
        "location",
        (0.18109821656809566, 0.33441136664125615),
        Some((
            (0.1324241548331916, 0.2565571983041364),
            0.06333333333333332,
            (-0.03611718118965694, 0.1627838478563236),
            0.10399274647041762,
            0.17332124411736272,
        )),
        7.599999999999998,
    ),
    (
        "why_not",
        "trust",
        (0.023114364414465793, 0.10480288536236734),
        Some((
            (0.001177801335017433, 0.03679283977481815),
            0.043333333333333335,
            (0.002221647123946277, 0.08444501954272039),
            0.03165274284088357,
            0.07913185710220892,
        )),
        5.2,
    ),
    (
        "main_reason",
        "parking",
        (0.16818032970623614, 0.6873262302663417),
        None,
        4.0,
    ),
    (
        "main_reason",
        "price",
        (0.10779126740630102, 0.6032218525388546),
        Some((
            (0.014865094404917123, 0.35387991114111694),
            0.21666666666666667,
            (-0.10756221260436166, 0.540895545937695),
            0.22556390977443608,
            0.28195488721804507,
        )),
        2.166666666666667,
    ),
    (
        "why_not",
        "timing",
        (0.05813359202601076, 0.166681741108952),
        Some((
            (0.07726903087841025, 0.18170835484132797),
            -0.01999999999999999,
            (-0.09473607646437734, 0.054736076464377365),
            0.6983341138540666,
            0.6983341138540666,
        )),
        0.0,
    ),
];

fn close(actual: &Value, expected: f64) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{actual} is not a number"));
    assert!((a - expected).abs() <= 1e-9, "{a:e} vs {expected:e}");
}

/// Options of `why_not` chosen by row `i` of a group whose counts are
/// (price, location, trust, timing): the first `count` rows choose each.
fn why_not(i: usize, counts: [usize; 4]) -> Value {
    let names = ["price", "location", "trust", "timing"];
    Value::from(
        names
            .iter()
            .zip(counts)
            .filter(|(_, c)| i < *c)
            .map(|(n, _)| *n)
            .collect::<Vec<_>>(),
    )
}

/// A client using a fresh clone of the template library: (client, library).
async fn client_with_library(app: &TestApp, t: &Tenant, name: &str) -> (String, Value) {
    let lib = app.clone_template(&t.token).await;
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": name, "touchpoint_library_id": lib["id"]}),
        )
        .await;
    (client, lib)
}

async fn fixture(app: &TestApp, t: &Tenant) -> Fixture {
    let (client, lib) = client_with_library(app, t, "Developer").await;
    let stage = |k: usize| lib["stages"][k]["id"].as_str().unwrap().to_owned();
    let (evaluation, deal) = (stage(1), stage(2));
    let non_buyer = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Why not", "kind": "non_buyer", "questions": [
                {"key": "city", "type": "single_choice", "role": "segment_attribute", "options": ["msk", "spb"]},
                {"key": "why_not", "label": "Why did you not buy?", "type": "multi_choice", "role": "barrier",
                 "options": ["price", "location", "trust", "timing"], "stage_id": evaluation},
                {"key": "main_reason", "type": "multi_choice", "role": "barrier", "options": ["price", "parking"],
                 "stage_id": deal},
                {"key": "comment", "type": "text", "role": "barrier", "stage_id": deal}
            ]}),
        )
        .await;
    let buyers = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Panel", "kind": "customer_panel", "questions": [
                {"key": "city", "type": "single_choice", "role": "segment_attribute", "options": ["msk", "spb"]},
                {"key": "why_not", "type": "multi_choice", "role": "barrier",
                 "options": ["price", "location", "trust", "timing"]},
                {"key": "main_reason", "type": "multi_choice", "role": "barrier", "options": ["price"]},
                {"key": "nps", "type": "nps_0_10", "role": "nps"}
            ]}),
        )
        .await;
    // Non-buyers: 120 answered why_not (45 price, 30 location, 6 trust, 12
    // timing; the rest `[]`), 5 left it blank; main_reason: 3 price and 4
    // parking among the first 10 (the others `[]`); even rows are in Moscow.
    let mut rows = String::new();
    for i in 0..125 {
        let mut a = json!({"city": if i % 2 == 0 { "msk" } else { "spb" }});
        if i < 120 {
            a["why_not"] = why_not(i, [45, 30, 6, 12]);
        }
        if i < 10 {
            let mut m = vec![];
            if i < 3 {
                m.push("price");
            }
            if (3..7).contains(&i) {
                m.push("parking");
            }
            a["main_reason"] = json!(m);
        }
        if i < 3 {
            a["comment"] = json!(["Too expensive!", "too expensive", "Far away"][i]);
        }
        rows.push_str(&json!({"external_id": format!("nb{i}"), "answers": a}).to_string());
        rows.push('\n');
    }
    app.import_ndjson(&t.token, &non_buyer, rows).await;
    // Buyers: 150 answered why_not (20, 28, 1, 18); main_reason 1 of 12.
    let mut rows = String::new();
    for i in 0..150 {
        let mut a = json!({"city": "msk", "why_not": why_not(i, [20, 28, 1, 18]), "nps": 9});
        if i < 12 {
            a["main_reason"] = json!(if i < 1 { vec!["price"] } else { vec![] });
        }
        rows.push_str(&json!({"external_id": format!("b{i}"), "answers": a}).to_string());
        rows.push('\n');
    }
    app.import_ndjson(&t.token, &buyers, rows).await;
    Fixture {
        client,
        evaluation,
        deal,
        non_buyer,
    }
}

async fn barriers_equal_hand_computed_and_scipy_values(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let f = fixture(&app, &t).await;
    let r = app
        .get(&format!("/api/v1/clients/{}/barriers", f.client), &t.token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let b = &r.body;
    assert_eq!(
        (b["n_non_buyers"].as_u64(), b["n_buyers"].as_u64()),
        (Some(125), Some(150))
    );
    assert_eq!(b["sources"].as_array().unwrap().len(), 2);
    assert_eq!(b["sources"][0]["group"], "non_buyers");
    let barriers = b["barriers"].as_array().unwrap();
    assert_eq!(barriers.len(), EXPECTED.len(), "{}", r.text);
    for (i, (got, (question, option, nb_ci, lift, explained))) in
        barriers.iter().zip(EXPECTED).enumerate()
    {
        assert_eq!(
            (got["question"].as_str(), got["option"].as_str()),
            (Some(question), Some(option))
        );
        assert_eq!(got["rank"], i + 1);
        close(&got["non_buyers"]["ci95_low"], nb_ci.0);
        close(&got["non_buyers"]["ci95_high"], nb_ci.1);
        close(&got["explained_refusals"], explained);
        match lift {
            Some((b_ci, diff, diff_ci, p, q)) => {
                close(&got["buyers"]["ci95_low"], b_ci.0);
                close(&got["buyers"]["ci95_high"], b_ci.1);
                close(&got["lift"]["difference"], diff);
                close(&got["lift"]["ci95_low"], diff_ci.0);
                close(&got["lift"]["ci95_high"], diff_ci.1);
                close(&got["lift"]["p_value"], p);
                close(&got["lift"]["q_value"], q);
            }
            None => {
                assert!(got["lift"].is_null() && got["buyers"].is_null(), "{got}");
            }
        }
    }
    // Blanks are not answers: 45 of 120, not of 125.
    let price = &barriers[0];
    assert_eq!(price["non_buyers"]["count"], 45);
    assert_eq!(price["non_buyers"]["n_answered"], 120);
    close(&price["non_buyers"]["share"], 45.0 / 120.0);
    assert_eq!(price["lift"]["test"], "two_proportion_z");
    assert_eq!(barriers[2]["lift"]["test"], "fisher_exact");
    assert_eq!(price["stage"]["id"], f.evaluation.as_str());
    assert_eq!(price["label"], "Why did you not buy?");
    // Text barriers: latest first, normalised counts.
    let open = &b["open_answers"][0];
    assert_eq!(
        (open["question"].as_str(), open["group"].as_str()),
        (Some("comment"), Some("non_buyers"))
    );
    assert_eq!(open["answers"]["latest"].as_array().unwrap().len(), 3);
    assert_eq!(
        open["answers"]["frequent"][0],
        json!({"text": "too expensive", "count": 2})
    );

    // GraphQL mirrors REST.
    let g = app
        .graphql(
            Some(&t.token),
            "query($c: ID!) { clientBarriers(clientId: $c) { dataVersion nNonBuyers barriers { rank question option explainedRefusals nonBuyers { count nAnswered share ci95Low ci95High } lift { difference ci95Low ci95High pValue qValue test } } openAnswers { question group answers { frequent { text count } } } } }",
            json!({"c": f.client}),
        )
        .await;
    let gb = &g.body["data"]["clientBarriers"];
    assert_eq!(gb["dataVersion"], b["data_version"], "{}", g.text);
    assert_eq!(gb["nNonBuyers"], 125);
    for (x, y) in gb["barriers"].as_array().unwrap().iter().zip(barriers) {
        assert_eq!(x["rank"], y["rank"]);
        assert_eq!(x["option"], y["option"]);
        assert_eq!(x["explainedRefusals"], y["explained_refusals"]);
        assert_eq!(x["nonBuyers"]["ci95Low"], y["non_buyers"]["ci95_low"]);
        assert_eq!(x["lift"]["qValue"], y["lift"]["q_value"]);
        assert_eq!(x["lift"]["pValue"], y["lift"]["p_value"]);
    }
    assert_eq!(gb["barriers"][0]["lift"]["test"], "TWO_PROPORTION_Z");
    assert_eq!(gb["openAnswers"][0]["answers"]["frequent"][0]["count"], 2);

    // New data moves the version and the figures.
    app.import_ndjson(
        &t.token,
        &f.non_buyer,
        json!({"external_id": "late", "answers": {"why_not": ["price"]}}).to_string() + "\n",
    )
    .await;
    let r2 = app
        .get(&format!("/api/v1/clients/{}/barriers", f.client), &t.token)
        .await;
    assert!(r2.body["data_version"].as_i64() > b["data_version"].as_i64());
    assert_eq!(r2.body["barriers"][0]["non_buyers"]["count"], 46);
    assert_eq!(r2.body["barriers"][0]["non_buyers"]["n_answered"], 121);
}

async fn barriers_by_stage_and_by_segment(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let f = fixture(&app, &t).await;
    let by_stage = app
        .get(
            &format!("/api/v1/clients/{}/barriers?stage_id={}", f.client, f.deal),
            &t.token,
        )
        .await;
    assert_eq!(by_stage.status, StatusCode::OK, "{}", by_stage.text);
    let items = by_stage.body["barriers"].as_array().unwrap();
    let names: Vec<&str> = items
        .iter()
        .map(|b| b["option"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["parking", "price"]);
    assert!(items.iter().all(|b| b["question"] == "main_reason"));
    // One barrier tested in this analysis: q = p (Fisher, main_reason/price).
    assert_eq!(items[1]["lift"]["q_value"], items[1]["lift"]["p_value"]);
    close(&items[1]["lift"]["p_value"], 0.22556390977443608);
    assert_eq!(by_stage.body["open_answers"].as_array().unwrap().len(), 1);

    let segment = app
        .create(
            &format!("/api/v1/clients/{}/segments", f.client),
            &t.token,
            json!({"name": "Moscow", "filter": {"conditions": [{"question": "city", "values": ["msk"]}]}}),
        )
        .await;
    let r = app
        .get(
            &format!(
                "/api/v1/clients/{}/barriers?segment_id={segment}&stage_id={}",
                f.client, f.evaluation
            ),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["segment_id"], segment.as_str());
    // Even rows of the non-buyers: 63 of 125, of whom 60 answered why_not;
    // 23 of them (rows 0, 2, …, 44) chose price. All buyers are in Moscow.
    assert_eq!(r.body["n_non_buyers"], 63);
    let price = r.body["barriers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["option"] == "price")
        .unwrap()
        .clone();
    assert_eq!(price["non_buyers"]["count"], 23);
    assert_eq!(price["non_buyers"]["n_answered"], 60);
    // Wilson by hand: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n).
    let (z, n, p) = (1.959963984540054_f64, 60.0_f64, 23.0 / 60.0);
    let d = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / d;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / d;
    close(&price["non_buyers"]["ci95_low"], c - h);
    close(&price["non_buyers"]["ci95_high"], c + h);
    assert_eq!(price["buyers"]["count"], 20);
}

async fn barriers_are_isolated_and_validated(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let other = app.signup("Other").await;
    let f = fixture(&app, &t).await;
    let path = format!("/api/v1/clients/{}/barriers", f.client);
    // Another agency's client is not found, over REST and GraphQL.
    assert_eq!(
        app.get(&path, &other.token).await.status,
        StatusCode::NOT_FOUND
    );
    let g = app
        .graphql(
            Some(&other.token),
            "query($c: ID!) { clientBarriers(clientId: $c) { dataVersion } }",
            json!({"c": f.client}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{}",
        g.text
    );
    // A segment or stage of another client / library, unknown ones, bad ids.
    let mine = app
        .create("/api/v1/clients", &t.token, json!({"name": "Second"}))
        .await;
    let foreign_segment = app
        .create(
            &format!("/api/v1/clients/{mine}/segments"),
            &t.token,
            json!({"name": "x", "filter": {"conditions": [{"question": "city", "values": ["msk"]}]}}),
        )
        .await;
    let template_stage = app
        .get(
            &format!("/api/v1/touchpoint-libraries/{TEMPLATE_LIBRARY}"),
            &t.token,
        )
        .await
        .body["stages"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown = "0195a0b8-0000-7000-8000-000000000000";
    for (query, field) in [
        (format!("segment_id={foreign_segment}"), "segment_id"),
        (format!("segment_id={unknown}"), "segment_id"),
        (format!("stage_id={unknown}"), "stage_id"),
        (format!("stage_id={template_stage}"), "stage_id"),
        // The query string's own faults are named `query`.
        ("segment_id=nope".to_owned(), "query"),
        ("stage=1".to_owned(), "query"),
    ] {
        let r = app.get(&format!("{path}?{query}"), &t.token).await;
        assert_eq!(
            (r.status, r.error_fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{query}: {}",
            r.text
        );
    }
    let g = app
        .graphql(
            Some(&t.token),
            "query($c: ID!, $s: ID!) { clientBarriers(clientId: $c, stageId: $s) { dataVersion } }",
            json!({"c": f.client, "s": "nope"}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "VALIDATION_FAILED",
        "{}",
        g.text
    );
    let g = app
        .graphql(
            Some(&t.token),
            "query($c: ID!, $s: ID!) { clientBarriers(clientId: $c, segmentId: $s) { dataVersion } }",
            json!({"c": f.client, "s": foreign_segment}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["fields"][0]["field"], "segmentId",
        "{}",
        g.text
    );
    // Only barrier questions name a stage, and only a stage of the client's library.
    for (question, field) in [
        (
            json!({"key": "x", "type": "text", "role": "problem", "stage_id": f.deal}),
            "questions[0].stage_id",
        ),
        (
            json!({"key": "x", "type": "text", "role": "barrier", "stage_id": template_stage}),
            "questions[0].stage_id",
        ),
    ] {
        let r = app
            .post(
                &format!("/api/v1/clients/{}/questionnaires", f.client),
                &t.token,
                json!({"title": "t", "kind": "non_buyer", "questions": [question]}),
            )
            .await;
        assert_eq!(
            (r.status, r.error_fields()),
            (StatusCode::UNPROCESSABLE_ENTITY, vec![field.to_owned()]),
            "{}",
            r.text
        );
    }
}

/// Export names a barrier question's stage by key; importing the document
/// into a client with a library resolves it, an unknown key is named.
async fn barrier_stages_survive_export_and_import(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let f = fixture(&app, &t).await;
    let doc = app
        .get(
            &format!("/api/v1/questionnaires/{}/export", f.non_buyer),
            &t.token,
        )
        .await
        .body;
    assert_eq!(
        doc["questions"][1]["stage"]["key"], "evaluation_choice",
        "{doc}"
    );
    let (target, lib) = client_with_library(&app, &t, "Target").await;
    let r = app
        .post(
            &format!("/api/v1/clients/{target}/questionnaires/import"),
            &t.token,
            doc.clone(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["questions"][1]["stage_id"], lib["stages"][1]["id"]);
    let again = app
        .get(
            &format!(
                "/api/v1/questionnaires/{}/export",
                r.body["id"].as_str().unwrap()
            ),
            &t.token,
        )
        .await
        .body;
    assert_eq!(again, doc);
    let mut bad = doc;
    bad["questions"][1]["stage"]["key"] = json!("nowhere");
    let r = app
        .post(
            &format!("/api/v1/clients/{target}/questionnaires/import"),
            &t.token,
            bad,
        )
        .await;
    assert_eq!(
        (r.status, r.error_fields()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            vec!["questions[1].stage".to_owned()]
        ),
        "{}",
        r.text
    );
}

/// A customer track of a segment shows the segment's barrier analysis,
/// each barrier with the steps it bites at: those at its question's stage
/// and those whose own barriers name it.
async fn a_tracks_barriers_are_its_segments_at_their_steps(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let f = fixture(&app, &t).await;
    let segment = app
        .create(
            &format!("/api/v1/clients/{}/segments", f.client),
            &t.token,
            json!({"name": "Moscow", "filter": {"conditions": [{"question": "city", "values": ["msk"]}]}}),
        )
        .await;
    let track = app
        .create(
            &format!("/api/v1/clients/{}/tracks", f.client),
            &t.token,
            json!({"name": "Moscow buyers", "segment_id": segment, "steps": [
                {"stage_id": f.evaluation, "task": "Compare developers"},
                {"stage_id": f.deal, "task": "Sign the deal", "barriers": [
                    {"label": "Too far", "barrier_ref": {"question_key": "why_not", "value": "location"}}
                ]}
            ]}),
        )
        .await;
    let body = tests::tracks::stored_at(&app, &t.token, &track, 1).await;
    let r = app
        .get(
            &format!("/api/v1/clients/{}/barriers?segment_id={segment}", f.client),
            &t.token,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let expected = r.body["barriers"].as_array().unwrap();
    let got = body["computed"]["barriers"].as_array().unwrap();
    assert!(!expected.is_empty());
    assert_eq!(got.len(), expected.len(), "{got:?}");
    assert_eq!(
        body["computed"]["barriers_version"], r.body["data_version"],
        "the analysis' version"
    );
    for (g, e) in got.iter().zip(expected) {
        assert_eq!(
            &g["barrier"], e,
            "the segment's figures, in the analysis' order"
        );
        let stage = e["stage"]["id"].as_str();
        let mut steps = vec![];
        if stage == Some(f.evaluation.as_str()) {
            steps.push(0);
        }
        if stage == Some(f.deal.as_str())
            || (e["question"] == "why_not" && e["option"] == "location")
        {
            steps.push(1);
        }
        assert_eq!(
            g["steps"],
            json!(steps),
            "{} {}",
            e["question"],
            e["option"]
        );
    }
    // GraphQL shows the same.
    let q = "query($id: UUID!) { track(id: $id) { computed { barriers { steps barrier { question option rank } } } } }";
    let g = app.graphql(Some(&t.token), q, json!({"id": track})).await;
    let items = g.body["data"]["track"]["computed"]["barriers"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", g.text));
    assert_eq!(items.len(), got.len());
    assert_eq!(items[0]["steps"], got[0]["steps"]);
    assert_eq!(items[0]["barrier"]["option"], got[0]["barrier"]["option"]);
}

/// A stage or touchpoint that current questions point at is not deleted
/// (409 naming the questionnaire); once the questions point elsewhere, or
/// only an older version of them did, it is.
async fn a_stage_or_touchpoint_in_use_is_not_deleted(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let (client, lib) = client_with_library(&app, &t, "Developer").await;
    let lib_id = lib["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{lib_id}/stages"),
            &t.token,
            json!({"key": "aftercare", "name_en": "Aftercare", "name_ru": "Сопровождение"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let stage = r.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "aftercare")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tp = lib["stages"][0]["touchpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Why not", "kind": "non_buyer", "questions": [
                {"key": "why_not", "type": "multi_choice", "role": "barrier", "options": ["price"], "stage_id": stage},
                {"key": "reception", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": tp}
            ]}),
        )
        .await;
    let delete = |path: String| {
        let app = &app;
        let token = t.token.clone();
        async move { app.call(Method::DELETE, &path, Some(&token), None).await }
    };
    let stage_path = format!("/api/v1/touchpoint-libraries/{lib_id}/stages/{stage}");
    let tp_path = format!("/api/v1/touchpoint-libraries/{lib_id}/touchpoints/{tp}");
    for path in [&stage_path, &tp_path] {
        let r = delete(path.clone()).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{path}: {}", r.text);
        assert_eq!(r.body["code"], "conflict");
        assert!(
            r.body["detail"].as_str().unwrap().contains("\"Why not\""),
            "{}",
            r.text
        );
    }
    let lib_now = app
        .get(&format!("/api/v1/touchpoint-libraries/{lib_id}"), &t.token)
        .await
        .body;
    let stages = lib_now["stages"].as_array().unwrap();
    assert!(stages.iter().any(|s| s["id"] == stage.as_str()));
    assert!(
        stages
            .iter()
            .flat_map(|s| s["touchpoints"].as_array().unwrap())
            .any(|x| x["id"] == tp.as_str())
    );

    // Responses, then a breaking change: version 2 asks about another
    // stage and no touchpoint; version 1 keeps its references.
    app.import_ndjson(
        &t.token,
        &q,
        "{\"external_id\": \"r1\", \"answers\": {\"why_not\": [\"price\"]}}\n".to_owned(),
    )
    .await;
    let other = lib["stages"][1]["id"].as_str().unwrap().to_owned();
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/questionnaires/{q}"),
            Some(&t.token),
            Some(json!({"questions": [
                {"key": "why_not", "type": "single_choice", "role": "barrier", "options": ["price"], "stage_id": other}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["version"], 2, "{}", r.text);
    for path in [&stage_path, &tp_path] {
        let r = delete(path.clone()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{path}: {}", r.text);
    }
    // Another agency's questions do not hold this agency's stages.
    let other_agency = app.signup("Other").await;
    let r = app
        .call(Method::DELETE, &stage_path, Some(&other_agency.token), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

both_modes!(
    a_stage_or_touchpoint_in_use_is_not_deleted,
    a_tracks_barriers_are_its_segments_at_their_steps,
    barriers_equal_hand_computed_and_scipy_values,
    barriers_by_stage_and_by_segment,
    barriers_are_isolated_and_validated,
    barrier_stages_survive_export_and_import,
);
