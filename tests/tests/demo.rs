//! `growthpoint demo` populates every result, and loading twice is a no-op.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tests::{Mode, both_modes, spawn_app};

async fn the_demo_agency_shows_every_result(mode: Mode) {
    let app = spawn_app(mode).await;
    let demo = api::demo::load(&app.services)
        .await
        .unwrap()
        .expect("first load");
    assert!(
        api::demo::load(&app.services).await.unwrap().is_none(),
        "second load is a no-op"
    );
    let token = app
        .login(api::demo::DEMO_EMAIL, api::demo::DEMO_PASSWORD)
        .await;
    let (developer, club, subscription) = (demo.clients[0].1, demo.clients[1].1, demo.clients[2].1);

    let qs = app
        .get(
            &format!("/api/v1/clients/{developer}/questionnaires"),
            &token,
        )
        .await;
    let panel_q = qs.body["items"][0]["id"].as_str().unwrap().to_owned();
    let segs = app
        .get(&format!("/api/v1/clients/{developer}/segments"), &token)
        .await;
    let seg = segs.body["items"][0]["id"].as_str().unwrap().to_owned();
    let p = app
        .get(
            &format!("/api/v1/questionnaires/{panel_q}/panel?segment_id={seg}"),
            &token,
        )
        .await;
    assert!(p.body["panel"]["n"].as_u64().unwrap() > 30, "{}", p.text);
    // The developer's sales barriers: non-buyers against buyers, ranked.
    let b = app
        .get(&format!("/api/v1/clients/{developer}/barriers"), &token)
        .await;
    assert_eq!(b.body["n_non_buyers"], 300, "{}", b.text);
    assert_eq!(
        b.body["barriers"][0]["option"], "unscrupulous_developer",
        "{}",
        b.text
    );
    assert!(b.body["barriers"][0]["lift"]["q_value"].as_f64().unwrap() < 0.05);
    assert!(b.body["barriers"][0]["stage"]["key"].is_string());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let h = app
            .get(
                &format!("/api/v1/clients/{developer}/hypotheses/results"),
                &token,
            )
            .await;
        if h.body["status"] == "fresh" && h.body["items"].as_array().is_some_and(|a| a.len() == 2) {
            assert!(
                h.body["items"][0]["result"]["verdict"].is_string(),
                "{}",
                h.text
            );
            break;
        }
        assert!(Instant::now() < deadline, "{}", h.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Two customer tracks of the developer's segments, with their parts.
    let tracks = app
        .get(&format!("/api/v1/clients/{developer}/tracks"), &token)
        .await;
    assert_eq!(
        tracks.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        tracks.text
    );
    let track = tracks.body["items"][0]["id"].as_str().unwrap().to_owned();
    let t = app.get(&format!("/api/v1/tracks/{track}"), &token).await;
    assert_eq!(t.body["segment_id"], seg.as_str(), "{}", t.text);
    assert_eq!(
        t.body["computed"]["segment"]["n"], p.body["panel"]["n"],
        "{}",
        t.text
    );
    assert_eq!(t.body["notes"].as_array().unwrap().len(), 2);
    let ux = app
        .get(&format!("/api/v1/clients/{club}/ux-map"), &token)
        .await;
    let flagged = ux.body["by_touchpoint"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["stats"]["flag"] == "negative")
        .count();
    assert_eq!(flagged, 1, "the reception fell this week: {}", ux.text);
    let models = app
        .get(
            &format!("/api/v1/clients/{subscription}/cash-models"),
            &token,
        )
        .await;
    let model = models.body["items"][0]["id"].as_str().unwrap().to_owned();
    let r = app
        .get(&format!("/api/v1/cash-models/{model}/results"), &token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains("sensitivity"));
    let restaurant = demo.clients[3].1;
    let j = app
        .get(&format!("/api/v1/clients/{restaurant}/jtbd"), &token)
        .await;
    assert_eq!(j.status, StatusCode::OK, "{}", j.text);
    assert!(
        j.text.contains("business_lunch") && j.text.contains("family_dinner"),
        "{}",
        j.text
    );
    // The funnel client: a fitted model, hot contacts in the running chain,
    // both funnels in the report.
    let studio = demo.clients[4].1;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m = app
            .get(&format!("/api/v1/clients/{studio}/scoring/model"), &token)
            .await;
        let chains = app
            .get(&format!("/api/v1/clients/{studio}/chains"), &token)
            .await;
        let chain = chains.body["items"][0]["id"].as_str().unwrap().to_owned();
        let e = app
            .get(&format!("/api/v1/chains/{chain}/enrolments"), &token)
            .await;
        if m.body["trained"] == true && e.body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            assert_eq!(m.body["labelled"], 260, "{}", m.text);
            break;
        }
        assert!(Instant::now() < deadline, "{} {}", m.text, e.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let f = app
        .get(&format!("/api/v1/clients/{studio}/funnel-report"), &token)
        .await;
    assert_eq!(f.status, StatusCode::OK, "{}", f.text);
    assert!(
        f.body["funnels"][0]["spend"].as_f64().unwrap() > 0.0,
        "{}",
        f.text
    );
    assert!(
        f.body["funnels"][1]["contacts"].as_u64().unwrap() > 0,
        "{}",
        f.text
    );
    let _ = demo.agency_id;
}

both_modes!(the_demo_agency_shows_every_result);
