//! Deleting a client: refused while it holds research data, complete when
//! it holds only set-up (factors, segments, QFD cells, JTBD rules).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::json;
use tests::{Mode, TEMPLATE_LIBRARY, both_modes, spawn_app};

async fn a_client_is_deleted_with_its_setup_but_not_with_data(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let lib = app
        .post(
            &format!("/api/v1/touchpoint-libraries/{TEMPLATE_LIBRARY}/clone"),
            &t.token,
            json!({}),
        )
        .await;
    let library = lib.body["id"].as_str().unwrap().to_owned();
    let tp = lib.body["stages"][0]["touchpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Setup only", "touchpoint_library_id": library}),
        )
        .await;
    let f = app
        .create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Price"}),
        )
        .await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/qfd/matrix"),
            Some(&t.token),
            Some(json!({"cells": [{"factor_id": f, "touchpoint_id": tp, "value": 9}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/jtbd-rules"),
            Some(&t.token),
            Some(json!({"rules": [{"label": "lunch", "hours": {"from": 12, "to": 14}}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/clients/{client}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/v1/clients/{client}"), &t.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!("/api/v1/clients/{client}/qfd/matrix"), &t.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let shop = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Has purchases"}),
        )
        .await;
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/clients/{shop}/purchases/import"),
            Some(&t.token),
            "text/csv",
            "external_id,customer_ref,purchased_at,amount,items,party_size,channel\nx1,ann,2026-11-01T12:00:00Z,10,1,1,hall\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/clients/{shop}"),
            Some(&t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/clients/{shop}/archive"),
            &t.token,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

both_modes!(a_client_is_deleted_with_its_setup_but_not_with_data);
