//! QFD for the CJM through the API: importances from the panel or overridden,
//! the matrix edited in bulk, results per touchpoint, factor and stage, and
//! improvement priorities from mystery-shopper ratings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, TEMPLATE_LIBRARY, both_modes, spawn_app};

fn scored<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

async fn qfd_scores_follow_panel_importances_and_the_matrix(mode: Mode) {
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
    let s0 = &lib.body["stages"][0];
    let s1 = &lib.body["stages"][1];
    let (tp_a, tp_b) = (
        s0["touchpoints"][0]["id"].as_str().unwrap().to_owned(),
        s0["touchpoints"][1]["id"].as_str().unwrap().to_owned(),
    );
    let tp_c = s1["touchpoints"][0]["id"].as_str().unwrap().to_owned();
    let client = app
        .create(
            "/api/v1/clients",
            &t.token,
            json!({"name": "Club", "touchpoint_library_id": library}),
        )
        .await;
    let price = app
        .create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Price"}),
        )
        .await;
    let place = app
        .create(
            &format!("/api/v1/clients/{client}/choice-factors"),
            &t.token,
            json!({"name": "Location"}),
        )
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Panel", "kind": "customer_panel", "questions": [
                {"key": "price", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": price},
                {"key": "place", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": place}
            ]}),
        )
        .await;
    // Price mean 4, location mean 2.
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/questionnaires/{q}/responses/import"),
            Some(&t.token),
            "text/csv",
            "price,place\n5,1\n3,3\n",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    // Cells: price×A 9, price×B 3, place×A 1, place×C 9.
    let cells = json!({"cells": [
        {"factor_id": price, "touchpoint_id": tp_a, "value": 9},
        {"factor_id": price, "touchpoint_id": tp_b, "value": 3},
        {"factor_id": place, "touchpoint_id": tp_a, "value": 1},
        {"factor_id": place, "touchpoint_id": tp_c, "value": 9}
    ]});
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/qfd/matrix"),
            Some(&t.token),
            Some(cells),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["cells"].as_array().unwrap().len(), 4);
    let v = app
        .get(&format!("/api/v1/clients/{client}/qfd"), &t.token)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    let res = &v.body["result"];
    // t_A = 4·9 + 2·1 = 38; t_B = 4·3 = 12; t_C = 2·9 = 18
    assert_eq!(scored(&res["touchpoints"], &tp_a)["score"], json!(38.0));
    assert_eq!(scored(&res["touchpoints"], &tp_b)["score"], json!(12.0));
    assert_eq!(scored(&res["touchpoints"], &tp_c)["score"], json!(18.0));
    // f_price = 4·(9+3) = 48; f_place = 2·(1+9) = 20; relative 48/68
    let fp = scored(&res["factors"], &price);
    assert_eq!(fp["score"], json!(48.0));
    assert!((fp["relative_weight"].as_f64().unwrap() - 48.0 / 68.0).abs() < 1e-12);
    // Stage 1 holds A and B: 50; stage 2 holds C: 18.
    assert_eq!(
        scored(&res["stages"], s0["id"].as_str().unwrap())["score"],
        json!(50.0)
    );
    assert_eq!(v.body["importances"][0]["source"], "panel");

    // An override replaces the panel mean; value 0 removes a cell.
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/qfd/matrix"),
            Some(&t.token),
            Some(json!({"cells": [{"factor_id": place, "touchpoint_id": tp_a, "value": 0}], "importances": [{"factor_id": place, "importance": 5}]})),
        )
        .await;
    assert_eq!(r.body["cells"].as_array().unwrap().len(), 3, "{}", r.text);
    let v = app
        .get(&format!("/api/v1/clients/{client}/qfd"), &t.token)
        .await;
    // t_A = 4·9 = 36; t_C = 5·9 = 45
    assert_eq!(
        scored(&v.body["result"]["touchpoints"], &tp_a)["score"],
        json!(36.0)
    );
    assert_eq!(
        scored(&v.body["result"]["touchpoints"], &tp_c)["score"],
        json!(45.0)
    );

    // Mystery-shopper ratings give improvement priorities.
    let audit = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Audit", "kind": "mystery_shopper", "questions": [
                {"key": "a", "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": tp_a}
            ]}),
        )
        .await;
    app.raw(
        Method::POST,
        &format!("/api/v1/questionnaires/{audit}/responses/import"),
        Some(&t.token),
        "text/csv",
        "a\n2\n4\n",
    )
    .await;
    let v = app
        .get(&format!("/api/v1/clients/{client}/qfd"), &t.token)
        .await;
    let pa = v.body["priorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["touchpoint_id"] == tp_a.as_str())
        .unwrap();
    // relative weight of A × (5 − 3)/4
    let w = pa["relative_weight"].as_f64().unwrap();
    assert!(
        (pa["priority"].as_f64().unwrap() - w * 0.5).abs() < 1e-12,
        "{pa}"
    );
    let pb = v.body["priorities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["touchpoint_id"] == tp_b.as_str())
        .unwrap();
    assert!(pb["priority"].is_null());

    // A segment QFD uses the segment's means: only the first respondent.
    let f = json!({"conditions": [{"question": "price", "min": 5, "max": 5}]});
    let seg = app
        .get(
            &format!(
                "/api/v1/clients/{client}/qfd?filter={}",
                tests::url_encode(&f.to_string())
            ),
            &t.token,
        )
        .await;
    assert_eq!(seg.status, StatusCode::OK, "{}", seg.text);
    assert_eq!(seg.body["importances"][0]["importance"], json!(5.0));

    // GraphQL reads the same.
    let g = app
        .graphql(
            Some(&t.token),
            "query($c: ID!) { qfd(clientId: $c) { result { touchpoints { id score class } } } }",
            json!({"c": client}),
        )
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
}

async fn bad_matrix_values_get_422(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let p = tests::panel(&app, &t).await;
    let path = format!("/api/v1/clients/{}/qfd/matrix", p.client);
    // Without a library the matrix has no touchpoints.
    let r = app
        .call(
            Method::PUT,
            &path,
            Some(&t.token),
            Some(json!({"cells": []})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    app.call(
        Method::PATCH,
        &format!("/api/v1/clients/{}", p.client),
        Some(&t.token),
        Some(json!({"touchpoint_library_id": p.library})),
    )
    .await;
    let f = &p.factors[0];
    let tp = &p.touchpoint;
    let other = uuid::Uuid::now_v7();
    for (cells, field) in [
        (
            json!([{"factor_id": f, "touchpoint_id": tp, "value": 2}]),
            "cells[0].value",
        ),
        (
            json!([{"factor_id": f, "touchpoint_id": tp, "value": 10}]),
            "cells[0].value",
        ),
        (
            json!([{"factor_id": other, "touchpoint_id": tp, "value": 9}]),
            "cells[0].factor_id",
        ),
        (
            json!([{"factor_id": f, "touchpoint_id": other, "value": 9}]),
            "cells[0].touchpoint_id",
        ),
        (
            json!([{"factor_id": f, "touchpoint_id": tp, "value": 9}, {"factor_id": f, "touchpoint_id": tp, "value": 3}]),
            "cells[1]",
        ),
        (
            json!([{"factor_id": f, "touchpoint_id": tp, "value": "9"}]),
            "cells[0].value",
        ),
    ] {
        let r = app
            .call(
                Method::PUT,
                &path,
                Some(&t.token),
                Some(json!({"cells": cells})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{cells}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), vec![field.to_owned()], "{cells}");
    }
    let r = app.get(&path, &t.token).await;
    assert_eq!(r.body["cells"], json!([]), "nothing stored");
}

both_modes!(
    qfd_scores_follow_panel_importances_and_the_matrix,
    bad_matrix_values_get_422
);
