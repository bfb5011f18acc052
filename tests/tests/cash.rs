//! Cash Journey models over REST and GraphQL (analytics.md §5, product
//! flow 5): three scenarios in, every figure, sensitivity, plan vs fact and
//! channel effects out; bad input is a 422 naming the field; viewers read,
//! analysts write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

/// §5's worked example, with l = 0.2, m = 0.5 and C = 1000 added.
fn example() -> Value {
    json!({
        "reach": 1000.0, "ctr": 0.1, "lead_rate": 0.2, "conversion": 0.5,
        "items_per_order": 1.0, "item_price": 100.0, "refusal_rate": 0.0,
        "repeat_purchases": 1.0, "repeat_uplift": 0.1, "gross_margin": 0.5,
        "marketing_cost": 1000.0
    })
}

fn with(mut params: Value, field: &str, value: Value) -> Value {
    params[field] = value;
    params
}

fn model_body() -> Value {
    json!({
        "name": "2027 plan",
        "scenarios": {
            "min": with(example(), "conversion", json!(0.2)),
            "base": example(),
            "max": with(example(), "reach", json!(2000.0)),
        }
    })
}

fn close(actual: &Value, expected: f64) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{actual} is not a number"));
    let scale = expected.abs().max(1.0);
    assert!((a - expected).abs() <= 1e-9 * scale, "{a} != {expected}");
}

async fn client(app: &TestApp, t: &Tenant) -> String {
    app.create("/api/v1/clients", &t.token, json!({"name": "Coffee shop"}))
        .await
}

async fn model(app: &TestApp, t: &Tenant, client: &str) -> String {
    app.create(
        &format!("/api/v1/clients/{client}/cash-models"),
        &t.token,
        model_body(),
    )
    .await
}

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> tests::Resp {
    app.call(Method::PUT, path, Some(token), Some(body)).await
}

async fn delete(app: &TestApp, path: &str, token: &str) -> tests::Resp {
    app.call(Method::DELETE, path, Some(token), None).await
}

async fn the_worked_example_of_section_5_comes_back_through_the_api(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let id = model(&app, &t, &c).await;

    let r = app
        .get(&format!("/api/v1/cash-models/{id}/results"), &t.token)
        .await;

    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["data_version"], 0, "nothing changed since creation");
    assert!(r.body["computed_at"].is_string());
    let base = &r.body["scenarios"]["base"];
    assert_eq!(base["parameters"], example());
    let f = &base["figures"];
    for (figure, expected) in [
        ("traffic", 100.0),
        ("leads", 20.0),
        ("first_sales", 50.0),
        ("check", 100.0),
        ("completed", 50.0),
        ("first_revenue", 5000.0),
        ("repeat_revenue", 5500.0),
        ("revenue", 10500.0),
        ("gross_profit", 5250.0),
        ("profit", 4250.0),
        ("romi", 4.25),
        ("cost_per_sale", 20.0),
    ] {
        close(&f[figure], expected);
    }
    let s = &base["stages"];
    close(&s["need_formation"]["reach"], 1000.0);
    close(&s["need_formation"]["ctr"], 0.1);
    close(&s["evaluation_and_choice"]["traffic"], 100.0);
    close(&s["evaluation_and_choice"]["leads"], 20.0);
    close(&s["deal"]["check"], 100.0);
    close(&s["deal"]["first_sales"], 50.0);
    close(&s["experience"]["completed"], 50.0);
    close(&s["loyalty"]["repeat_revenue"], 5500.0);
    // The checkpoint to improve first: six parameters tie at +10% of gross
    // profit (by name), marketing cost comes last.
    let ranking: Vec<&str> = base["sensitivity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["parameter"].as_str().unwrap())
        .collect();
    assert_eq!(
        ranking,
        [
            "conversion",
            "ctr",
            "gross_margin",
            "item_price",
            "items_per_order",
            "reach",
            "repeat_purchases",
            "repeat_uplift",
            "lead_rate",
            "refusal_rate",
            "marketing_cost"
        ]
    );
    close(&base["sensitivity"][0]["profit_delta"], 525.0);
    close(&base["sensitivity"][10]["profit_delta"], -100.0);
    // min converts 0.2 instead of 0.5; max reaches twice as many.
    close(&r.body["scenarios"]["min"]["figures"]["revenue"], 4200.0);
    close(&r.body["scenarios"]["min"]["figures"]["profit"], 1100.0);
    close(&r.body["scenarios"]["max"]["figures"]["profit"], 9500.0);
    close(&r.body["scenarios"]["max"]["figures"]["romi"], 9.5);
    assert_eq!(r.body["plan_vs_fact"], json!([]));
    assert_eq!(r.body["channel_effects"], json!([]));
}

async fn romi_is_null_without_marketing_cost(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let free = with(example(), "marketing_cost", json!(0.0));
    let id = app
        .create(
            &format!("/api/v1/clients/{c}/cash-models"),
            &t.token,
            json!({"name": "Organic", "scenarios": {"min": free, "base": free, "max": free}}),
        )
        .await;

    let r = app
        .get(&format!("/api/v1/cash-models/{id}/results"), &t.token)
        .await;

    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["scenarios"]["base"]["figures"]["romi"].is_null());
    close(&r.body["scenarios"]["base"]["figures"]["profit"], 5250.0);
}

async fn models_are_listed_read_replaced_and_deleted(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let id = model(&app, &t, &c).await;
    let second = model(&app, &t, &c).await;

    let list = app
        .get(
            &format!("/api/v1/clients/{c}/cash-models?limit=1"),
            &t.token,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.body["items"][0]["id"], id.as_str());
    assert_eq!(list.body["items"][0]["scenarios"]["base"], example());
    let cursor = list.body["next_cursor"].as_str().unwrap();
    let rest = app
        .get(
            &format!("/api/v1/clients/{c}/cash-models?after={cursor}"),
            &t.token,
        )
        .await;
    assert_eq!(rest.body["items"][0]["id"], second.as_str());
    assert!(rest.body["next_cursor"].is_null());

    let mut replaced = model_body();
    replaced["name"] = json!("Revised");
    replaced["scenarios"]["base"]["item_price"] = json!(200.0);
    let r = put(
        &app,
        &format!("/api/v1/cash-models/{id}"),
        &t.token,
        replaced,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let got = app
        .get(&format!("/api/v1/cash-models/{id}"), &t.token)
        .await;
    assert_eq!(got.body["name"], "Revised");
    assert_eq!(got.body["scenarios"]["base"]["item_price"], 200.0);
    assert_eq!(got.body["scenarios"]["min"]["conversion"], 0.2);
    let results = app
        .get(&format!("/api/v1/cash-models/{id}/results"), &t.token)
        .await;
    close(
        &results.body["scenarios"]["base"]["figures"]["revenue"],
        21000.0,
    );
    assert_eq!(results.body["data_version"], 1, "one update so far");

    let r = put(
        &app,
        &format!("/api/v1/cash-models/{id}/actuals/2026-11"),
        &t.token,
        json!({"revenue": 1.0}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = delete(&app, &format!("/api/v1/cash-models/{id}"), &t.token).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    for path in [
        format!("/api/v1/cash-models/{id}"),
        format!("/api/v1/cash-models/{id}/actuals"),
        format!("/api/v1/cash-models/{id}/results"),
    ] {
        assert_eq!(app.get(&path, &t.token).await.status, StatusCode::NOT_FOUND);
    }
    let list = app
        .get(&format!("/api/v1/clients/{c}/cash-models"), &t.token)
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

async fn plan_vs_fact_compares_each_period_with_every_scenario(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let id = model(&app, &t, &c).await;
    let actuals = |period: &str| format!("/api/v1/cash-models/{id}/actuals/{period}");

    let r = put(
        &app,
        &actuals("2026-11"),
        &t.token,
        json!({"traffic": 80, "revenue": 12600, "romi": 5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["period"], "2026-11");
    assert_eq!(r.body["figures"]["traffic"], 80.0);
    assert!(r.body["figures"]["leads"].is_null());
    let r = put(&app, &actuals("2026-10"), &t.token, json!({"profit": -500})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let results = app
        .get(&format!("/api/v1/cash-models/{id}/results"), &t.token)
        .await;
    let pvf = results.body["plan_vs_fact"].as_array().unwrap();
    let periods: Vec<&str> = pvf.iter().map(|p| p["period"].as_str().unwrap()).collect();
    assert_eq!(periods, ["2026-10", "2026-11"]);
    let november = &pvf[1];
    let base = november["against"]["base"].as_array().unwrap();
    let figures: Vec<&str> = base.iter().map(|v| v["figure"].as_str().unwrap()).collect();
    assert_eq!(figures, ["traffic", "revenue", "romi"]);
    close(&base[0]["plan"], 100.0);
    close(&base[0]["actual"], 80.0);
    close(&base[0]["absolute"], -20.0);
    close(&base[0]["relative"], -0.2);
    close(&base[1]["absolute"], 2100.0);
    close(&base[1]["relative"], 0.2);
    close(&base[2]["absolute"], 0.75);
    // Against min (revenue 4200) and max (revenue 21000) as well.
    close(&november["against"]["min"][1]["absolute"], 8400.0);
    close(&november["against"]["max"][1]["relative"], -0.4);
    close(&pvf[0]["against"]["base"][0]["absolute"], -4750.0);

    // A PUT replaces the period: absent figures are cleared.
    let r = put(&app, &actuals("2026-11"), &t.token, json!({"leads": 25})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = app
        .get(&format!("/api/v1/cash-models/{id}/actuals"), &t.token)
        .await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    assert_eq!(list.body[1]["figures"]["leads"], 25.0);
    assert!(list.body[1]["figures"]["traffic"].is_null());

    assert_eq!(
        delete(&app, &actuals("2026-10"), &t.token).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&app, &actuals("2026-10"), &t.token).await.status,
        StatusCode::NOT_FOUND
    );
    let list = app
        .get(&format!("/api/v1/cash-models/{id}/actuals"), &t.token)
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
}

async fn a_channel_calendar_gives_the_effect_of_switching_it_on(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let id = model(&app, &t, &c).await;
    let on = [120.0, 135.0, 128.0, 140.0, 131.0, 125.0];
    let off = [110.0, 118.0, 105.0, 121.0, 115.0, 112.0, 108.0, 119.0];
    // Off days first in the month, on days after, sent in reverse order.
    let mut days: Vec<Value> = off
        .iter()
        .map(|v| (v, false))
        .chain(on.iter().map(|v| (v, true)))
        .enumerate()
        .map(|(i, (v, channel_on))| {
            json!({"date": format!("2026-11-{:02}", i + 1), "value": v, "channel_on": channel_on})
        })
        .collect();
    days.reverse();

    let r = put(
        &app,
        &format!("/api/v1/cash-models/{id}/channels/tv"),
        &t.token,
        json!({"metric": "orders", "days": days}),
    )
    .await;

    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["name"], "tv");
    assert_eq!(r.body["days"][0]["date"], "2026-11-01");
    let results = app
        .get(&format!("/api/v1/cash-models/{id}/results"), &t.token)
        .await;
    let e = &results.body["channel_effects"][0];
    assert_eq!(
        (e["channel"].as_str(), e["metric"].as_str()),
        (Some("tv"), Some("orders"))
    );
    assert_eq!(
        (e["n_on"].as_u64(), e["n_off"].as_u64()),
        (Some(6), Some(8))
    );
    close(&e["effect"], 779.0 / 6.0 - 908.0 / 8.0);
    // scipy.stats.ttest_ind(on, off, equal_var=False)
    close(&e["p_value"], 0.0011379903451473204);
    close(&e["ci_low"], 8.373581432373694);
    close(&e["ci_high"], 24.29308523429299);

    let list = app
        .get(&format!("/api/v1/cash-models/{id}/channels"), &t.token)
        .await;
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["days"].as_array().unwrap().len(), 14);
    assert_eq!(
        delete(
            &app,
            &format!("/api/v1/cash-models/{id}/channels/tv"),
            &t.token
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let results = app
        .get(&format!("/api/v1/cash-models/{id}/results"), &t.token)
        .await;
    assert_eq!(results.body["channel_effects"], json!([]));
}

async fn bad_input_is_422_naming_the_field_and_stores_nothing(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let models = format!("/api/v1/clients/{c}/cash-models");
    let scenarios = |s: &str, params: Value| {
        let mut b = model_body();
        b["scenarios"][s] = params;
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            scenarios("base", with(example(), "reach", json!(-1))),
            "scenarios.base.reach",
        ),
        (
            scenarios("min", with(example(), "ctr", json!(1.5))),
            "scenarios.min.ctr",
        ),
        (
            scenarios("max", with(example(), "conversion", json!(-0.1))),
            "scenarios.max.conversion",
        ),
        (
            scenarios("base", with(example(), "refusal_rate", json!(2))),
            "scenarios.base.refusal_rate",
        ),
        (
            scenarios("base", with(example(), "gross_margin", json!(1.01))),
            "scenarios.base.gross_margin",
        ),
        (
            scenarios("base", with(example(), "item_price", json!(-5))),
            "scenarios.base.item_price",
        ),
        (
            scenarios("base", with(example(), "marketing_cost", json!(1e13))),
            "scenarios.base.marketing_cost",
        ),
        (
            scenarios("base", with(example(), "ctr", json!("0.1"))),
            "scenarios.base.ctr",
        ),
        (
            scenarios("base", with(example(), "budget", json!(1))),
            "scenarios.base.budget",
        ),
        (scenarios("mid", example()), "scenarios.mid"),
        (
            json!({"name": "x", "scenarios": {"min": example(), "base": example()}}),
            "scenarios",
        ),
        (
            json!({"name": " ", "scenarios": model_body()["scenarios"]}),
            "name",
        ),
        (
            json!({"name": "x", "scenarios": model_body()["scenarios"], "period": "month"}),
            "period",
        ),
        (json!({"scenarios": model_body()["scenarios"]}), "body"),
    ];
    for (body, field) in &cases {
        let r = app.post(&models, &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert_eq!(r.body["code"], "validation_failed");
        assert_eq!(r.error_fields(), [field.to_owned()], "{body}: {}", r.text);
    }
    // Every bad field at once, in order.
    let mut several = model_body();
    several["scenarios"]["min"]["reach"] = json!(-1);
    several["scenarios"]["max"]["ctr"] = json!(7);
    let r = app.post(&models, &t.token, several).await;
    assert_eq!(
        r.error_fields(),
        ["scenarios.min.reach", "scenarios.max.ctr"]
    );
    let list = app.get(&models, &t.token).await;
    assert_eq!(list.body["items"], json!([]), "nothing stored");

    // A bad replacement leaves the model as it was.
    let id = model(&app, &t, &c).await;
    let r = put(
        &app,
        &format!("/api/v1/cash-models/{id}"),
        &t.token,
        scenarios("base", with(example(), "reach", json!(-1))),
    )
    .await;
    assert_eq!(r.error_fields(), ["scenarios.base.reach"]);
    let got = app
        .get(&format!("/api/v1/cash-models/{id}"), &t.token)
        .await;
    assert_eq!(got.body["scenarios"], model_body()["scenarios"]);

    let actuals = |period: &str| format!("/api/v1/cash-models/{id}/actuals/{period}");
    for (period, body, field) in [
        ("2026-13", json!({"traffic": 1}), "period"),
        ("nov", json!({"traffic": 1}), "period"),
        ("2026-11", json!({"traffic": -1}), "traffic"),
        ("2026-11", json!({"revenue": "lots"}), "revenue"),
        ("2026-11", json!({"visitors": 1}), "visitors"),
        ("2026-11", json!({"revenue": 1e16}), "revenue"),
        ("2026-11", json!({}), "body"),
    ] {
        let r = put(&app, &actuals(period), &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{period} {body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{period} {body}: {}", r.text);
    }
    // Profit and ROMI may be negative.
    let r = put(
        &app,
        &actuals("2026-11"),
        &t.token,
        json!({"profit": -1, "romi": -0.5}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let day = |date: &str| json!({"date": date, "value": 1, "channel_on": true});
    let channel = |name: &str| format!("/api/v1/cash-models/{id}/channels/{name}");
    for (name, body, field) in [
        (
            "TV",
            json!({"metric": "orders", "days": [day("2026-11-01")]}),
            "channel",
        ),
        (
            "tv",
            json!({"metric": "orders", "days": [day("2026-11-01"), day("2026-11-01")]}),
            "days[1].date",
        ),
        (
            "tv",
            json!({"metric": "orders", "days": [day("2026-11-31")]}),
            "days[0].date",
        ),
        ("tv", json!({"metric": "orders", "days": []}), "days"),
        (
            "tv",
            json!({"metric": "", "days": [day("2026-11-01")]}),
            "metric",
        ),
        (
            "tv",
            json!({"metric": "orders", "days": [{"date": "2026-11-01", "value": 1}]}),
            "days[0]",
        ),
    ] {
        let r = put(&app, &channel(name), &t.token, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name} {body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{name} {body}: {}", r.text);
    }
    let list = app
        .get(&format!("/api/v1/cash-models/{id}/channels"), &t.token)
        .await;
    assert_eq!(list.body, json!([]), "nothing stored");
}

async fn viewers_read_analysts_write_and_ingest_keys_push_actuals(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let c = client(&app, &owner).await;
    let id = model(&app, &owner, &c).await;
    let viewer = app.member(&owner, "viewer").await;
    let analyst = app.member(&owner, "analyst").await;
    let read_key = app.api_key(&owner.token, &["read"]).await;
    let ingest_key = app.api_key(&owner.token, &["ingest"]).await;
    let models = format!("/api/v1/clients/{c}/cash-models");
    let model_path = format!("/api/v1/cash-models/{id}");
    let actuals = format!("/api/v1/cash-models/{id}/actuals/2026-11");
    let channel = format!("/api/v1/cash-models/{id}/channels/tv");
    let calendar = json!({"metric": "orders", "days": [{"date": "2026-11-01", "value": 1, "channel_on": true}]});

    for who in [&viewer, &read_key] {
        for path in [
            models.clone(),
            model_path.clone(),
            format!("{model_path}/results"),
            format!("{model_path}/actuals"),
            format!("{model_path}/channels"),
        ] {
            assert_eq!(app.get(&path, who).await.status, StatusCode::OK, "{path}");
        }
        for r in [
            app.post(&models, who, model_body()).await,
            put(&app, &model_path, who, model_body()).await,
            put(&app, &actuals, who, json!({"traffic": 1})).await,
            put(&app, &channel, who, calendar.clone()).await,
            delete(&app, &model_path, who).await,
        ] {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
            assert_eq!(r.body["code"], "forbidden");
        }
    }
    // An ingest key pushes data but does not change the model.
    assert_eq!(
        put(&app, &actuals, &ingest_key, json!({"traffic": 1}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        put(&app, &channel, &ingest_key, calendar.clone())
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        put(&app, &model_path, &ingest_key, model_body())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Analysts do everything.
    assert_eq!(
        app.post(&models, &analyst, model_body()).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        put(&app, &model_path, &analyst, model_body()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        put(&app, &actuals, &analyst, json!({"traffic": 2}))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        delete(&app, &channel, &analyst).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&app, &model_path, &analyst).await.status,
        StatusCode::NO_CONTENT
    );
}

/// A scenario's parameters as GraphQL input (camelCase keys).
fn gql_params(params: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in params.as_object().unwrap() {
        let mut key = String::new();
        let mut upper = false;
        for ch in k.chars() {
            if ch == '_' {
                upper = true;
            } else if upper {
                key.extend(ch.to_uppercase());
                upper = false;
            } else {
                key.push(ch);
            }
        }
        out.insert(key, v.clone());
    }
    Value::Object(out)
}

const FIGURES: &str = "traffic leads firstSales check completed firstRevenue repeatRevenue revenue grossProfit profit romi costPerSale";

async fn a_model_round_trips_over_graphql(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = client(&app, &t).await;
    let b = model_body();
    let input = json!({
        "name": "GraphQL plan",
        "scenarios": {
            "min": gql_params(&b["scenarios"]["min"]),
            "base": gql_params(&b["scenarios"]["base"]),
            "max": gql_params(&b["scenarios"]["max"]),
        }
    });

    let r = app
        .graphql(
            Some(&t.token),
            "mutation($c: ID!, $input: CashModelInput!) { createCashModel(clientId: $c, input: $input) { id name scenarios { base { reach ctr leadRate } } } }",
            json!({"c": c, "input": input}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let created = &r.body["data"]["createCashModel"];
    assert_eq!(created["name"], "GraphQL plan");
    assert_eq!(created["scenarios"]["base"]["leadRate"], 0.2);
    let id = created["id"].as_str().unwrap().to_owned();

    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { putCashActuals(modelId: $id, period: \"2026-11\", input: {traffic: 80, revenue: 12600}) { period figures { traffic revenue leads } } }",
            json!({"id": id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert_eq!(r.body["data"]["putCashActuals"]["figures"]["traffic"], 80.0);
    assert!(r.body["data"]["putCashActuals"]["figures"]["leads"].is_null());
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { putCashChannel(modelId: $id, channel: \"tv\", input: {metric: \"orders\", days: [{date: \"2026-11-01\", value: 3, channelOn: true}, {date: \"2026-11-02\", value: 1, channelOn: false}]}) { name days { date value channelOn } } }",
            json!({"id": id}),
        )
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    assert_eq!(
        r.body["data"]["putCashChannel"]["days"][1]["date"],
        "2026-11-02"
    );

    let query = format!(
        "query($id: ID!, $c: ID!) {{
            cashModels(clientId: $c) {{ items {{ id }} nextCursor }}
            cashModel(id: $id) {{ name scenarios {{ min {{ conversion }} }} }}
            cashActuals(modelId: $id) {{ period }}
            cashChannels(modelId: $id) {{ name metric }}
            cashResults(id: $id) {{
                scenarios {{ base {{
                    figures {{ {FIGURES} }}
                    stages {{ needFormation {{ reach ctr }} evaluationAndChoice {{ traffic leadRate leads conversion }} deal {{ itemsPerOrder itemPrice check firstSales }} experience {{ refusalRate completed }} loyalty {{ repeatPurchases repeatUplift repeatRevenue }} }}
                    sensitivity {{ parameter profitDelta }}
                }} }}
                planVsFact {{ period against {{ base {{ figure plan actual absolute relative }} }} }}
                channelEffects {{ channel nOn nOff effect pValue }}
            }}
        }}"
    );
    let r = app
        .graphql(Some(&t.token), &query, json!({"id": id, "c": c}))
        .await;
    assert!(r.body["errors"].is_null(), "{}", r.text);
    let d = &r.body["data"];
    assert_eq!(d["cashModels"]["items"][0]["id"], id.as_str());
    assert_eq!(d["cashModel"]["scenarios"]["min"]["conversion"], 0.2);
    assert_eq!(d["cashActuals"][0]["period"], "2026-11");
    assert_eq!(d["cashChannels"][0]["metric"], "orders");
    let base = &d["cashResults"]["scenarios"]["base"];
    close(&base["figures"]["revenue"], 10500.0);
    close(&base["figures"]["romi"], 4.25);
    close(&base["stages"]["loyalty"]["repeatRevenue"], 5500.0);
    assert_eq!(base["sensitivity"][0]["parameter"], "CONVERSION");
    assert_eq!(base["sensitivity"][10]["parameter"], "MARKETING_COST");
    let v = &d["cashResults"]["planVsFact"][0]["against"]["base"];
    assert_eq!(v[0]["figure"], "TRAFFIC");
    close(&v[0]["relative"], -0.2);
    close(&v[1]["absolute"], 2100.0);
    let e = &d["cashResults"]["channelEffects"][0];
    assert_eq!((e["nOn"].as_u64(), e["nOff"].as_u64()), (Some(1), Some(1)));
    close(&e["effect"], 2.0);
    assert!(e["pValue"].is_null(), "one day a side is no test");

    // Bad parameters: a validation error naming the field.
    let mut bad = input.clone();
    bad["scenarios"]["base"]["reach"] = json!(-1);
    bad["scenarios"]["max"]["grossMargin"] = json!(1.5);
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!, $input: CashModelInput!) { updateCashModel(id: $id, input: $input) { id } }",
            json!({"id": id, "input": bad}),
        )
        .await;
    let err = &r.body["errors"][0]["extensions"];
    assert_eq!(err["code"], "VALIDATION_FAILED", "{}", r.text);
    let fields: Vec<&str> = err["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["scenarios.base.reach", "scenarios.max.gross_margin"]
    );
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { putCashActuals(modelId: $id, period: \"November\", input: {traffic: 1}) { period } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["extensions"]["fields"][0]["field"], "period",
        "{}",
        r.text
    );

    // Replace, then delete everything.
    let mut renamed = input.clone();
    renamed["name"] = json!("Renamed");
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!, $input: CashModelInput!) { updateCashModel(id: $id, input: $input) { name } }",
            json!({"id": id, "input": renamed}),
        )
        .await;
    assert_eq!(
        r.body["data"]["updateCashModel"]["name"], "Renamed",
        "{}",
        r.text
    );
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { a: deleteCashActuals(modelId: $id, period: \"2026-11\") b: deleteCashChannel(modelId: $id, channel: \"tv\") }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.body["data"], json!({"a": true, "b": true}), "{}", r.text);
    let r = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { deleteCashModel(id: $id) }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.body["data"]["deleteCashModel"], true, "{}", r.text);
    let r = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { cashModel(id: $id) { id } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(r.body["errors"][0]["extensions"]["code"], "NOT_FOUND");
}

both_modes!(
    the_worked_example_of_section_5_comes_back_through_the_api,
    romi_is_null_without_marketing_cost,
    models_are_listed_read_replaced_and_deleted,
    plan_vs_fact_compares_each_period_with_every_scenario,
    a_channel_calendar_gives_the_effect_of_switching_it_on,
    bad_input_is_422_naming_the_field_and_stores_nothing,
    viewers_read_analysts_write_and_ingest_keys_push_actuals,
    a_model_round_trips_over_graphql,
);
