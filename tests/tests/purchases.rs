//! Purchases and the JTBD value-migration map over REST and GraphQL
//! (analytics.md §6): a small restaurant computed by hand comes back through
//! the API; bad input is a 422 naming the row and field with nothing stored;
//! re-sent and racing imports store each external id once; viewers read,
//! ingest keys push purchases, analysts edit the rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_app};

fn close(actual: &Value, expected: f64) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{actual} is not a number"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{a} != {expected}"
    );
}

async fn restaurant(app: &TestApp, t: &Tenant) -> String {
    app.create(
        "/api/v1/clients",
        &t.token,
        json!({"name": "Trattoria", "timezone": "Europe/Moscow"}),
    )
    .await
}

fn rules() -> Value {
    json!({"rules": [
        {"label": "business_lunch", "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": {"from": 12, "to": 14}},
        {"label": "family_dinner", "party_size": {"min": 3}},
        {"label": "date", "party_size": {"min": 2, "max": 2}, "hours": {"from": 18, "to": 23}}
    ]})
}

/// Times are UTC; Moscow is UTC+3, so 09:30Z is a 12:30 lunch. The last
/// row is 00:30 on 1 April in Moscow — after D although still 31 March in
/// UTC — and must be ignored by the map.
const CSV: &str = "external_id,customer_ref,purchased_at,amount,items,party_size,channel
a1,alice,2026-01-05T09:30:00Z,20,1,1,hall
a2,alice,2026-02-02T09:30:00Z,30,1,1,hall
a3,alice,2026-03-02T09:30:00Z,25,1,1,hall
a4,alice,2026-03-16T09:30:00Z,25,1,1,hall
b1,bob,2026-01-10T16:00:00Z,100,6,4,hall
c1,carol,2026-02-14T17:00:00Z,80,2,2,hall
c2,carol,2026-03-14T17:00:00Z,90,2,2,
d1,dan,2026-03-30T07:00:00Z,10,1,1,delivery
a5,alice,2026-03-31T21:30:00Z,40,2,1,hall
";

async fn import(app: &TestApp, token: &str, client: &str, ct: &str, body: &str) -> tests::Resp {
    app.raw(
        Method::POST,
        &format!("/api/v1/clients/{client}/purchases/import"),
        Some(token),
        ct,
        body.to_owned(),
    )
    .await
}

async fn put_rules(app: &TestApp, token: &str, client: &str, body: Value) -> tests::Resp {
    app.call(
        Method::PUT,
        &format!("/api/v1/clients/{client}/jtbd-rules"),
        Some(token),
        Some(body),
    )
    .await
}

async fn a_restaurant_map_computed_by_hand_comes_back_through_the_api(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = restaurant(&app, &t).await;
    let r = put_rules(&app, &t.token, &c, rules()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["labels"],
        json!(["business_lunch", "family_dinner", "date", "other"])
    );
    let r = import(&app, &t.token, &c, "text/csv", CSV).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"received": 9, "inserted": 9, "duplicates": 0})
    );

    let r = app
        .get(
            &format!("/api/v1/clients/{c}/jtbd?as_of=2026-03-31&period=month&margin=0.3"),
            &t.token,
        )
        .await;

    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body["data_version"], 1,
        "one batch of purchases: {}",
        r.text
    );
    let b = &r.body;
    assert_eq!(b["timezone"], "Europe/Moscow");
    assert_eq!(b["current_period_start"], "2026-03-01");
    assert_eq!(b["purchases"], 8, "the 1 April purchase is after D");
    assert_eq!(b["customers_total"], 4);
    // R = days since the last purchase: alice 15, bob 80, carol 17, dan 1;
    // F = 4, 1, 2, 1; M = 100, 100, 170, 10. Scores 1 + ⌊5·smaller/4⌋.
    let rfm: Vec<(String, i64, u64, u64, u64, String)> = b["customers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["customer_ref"].as_str().unwrap().to_owned(),
                c["recency_days"].as_i64().unwrap(),
                c["r_score"].as_u64().unwrap(),
                c["f_score"].as_u64().unwrap(),
                c["m_score"].as_u64().unwrap(),
                c["segment"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row =
        |r: &str, days, rs, fs, ms, seg: &str| (r.to_owned(), days, rs, fs, ms, seg.to_owned());
    assert_eq!(
        rfm,
        [
            row("alice", 15, 3, 4, 2, "loyal"),
            row("bob", 80, 1, 1, 2, "lost"),
            row("carol", 17, 2, 3, 4, "at_risk"),
            row("dan", 1, 4, 1, 1, "promising"),
        ]
    );
    assert_eq!(
        b["segments"],
        json!([
            {"segment": "at_risk", "customers": 1},
            {"segment": "lost", "customers": 1},
            {"segment": "loyal", "customers": 1},
            {"segment": "promising", "customers": 1}
        ])
    );
    // alice lunches Jan → Feb → Mar; bob dines in January, then is dormant
    // in February and March; carol's date in Feb repeats in March.
    let m = &b["migration"];
    assert_eq!(
        m["states"],
        json!(["business_lunch", "family_dinner", "date", "other", "none"])
    );
    assert_eq!(
        m["counts"],
        json!([
            [2, 0, 0, 0, 0],
            [0, 0, 0, 0, 1],
            [0, 0, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [0, 0, 0, 0, 1]
        ])
    );
    close(&m["probabilities"][1][4], 1.0);
    close(&m["probabilities"][3][0], 0.0);
    let j = &b["jtbds"];
    // lunch: periods 20, 30, 50 → mean 100/3, churn 0 → 36 periods.
    assert_eq!(j[0]["label"], "business_lunch");
    close(&j[0]["churn"], 0.0);
    close(&j[0]["ltv"], 100.0 / 3.0 * 0.3 * 36.0);
    close(&j[0]["median_interval_days"], 28.0);
    assert_eq!(j[0]["intervals"], 3);
    // family dinner: one period, then none → churn 1, LTV 100 · 0.3 · 1.
    close(&j[1]["churn"], 1.0);
    close(&j[1]["ltv"], 30.0);
    // date: 80 and 90, churn 0.
    close(&j[2]["churn"], 0.0);
    close(&j[2]["ltv"], 85.0 * 0.3 * 36.0);
    close(&j[2]["median_interval_days"], 28.0);
    // other: only in D's period → no churn base, no LTV.
    assert_eq!(j[3]["label"], "other");
    assert_eq!(j[3]["purchases"], 1);
    assert!(j[3]["churn"].is_null() && j[3]["ltv"].is_null());

    // The RFM list pages by customer_ref.
    let p1 = app
        .get(
            &format!("/api/v1/clients/{c}/jtbd?as_of=2026-03-31&limit=3"),
            &t.token,
        )
        .await;
    assert_eq!(p1.body["customers"].as_array().unwrap().len(), 3);
    assert_eq!(p1.body["next_customer"], "carol");
    let p2 = app
        .get(
            &format!("/api/v1/clients/{c}/jtbd?as_of=2026-03-31&limit=3&after=carol"),
            &t.token,
        )
        .await;
    assert_eq!(p2.body["customers"][0]["customer_ref"], "dan");
    assert!(p2.body["next_customer"].is_null());

    // A customer's own history, labelled in local time.
    let h = app
        .get(
            &format!("/api/v1/clients/{c}/customers/alice/purchases"),
            &t.token,
        )
        .await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let labels: Vec<(&str, &str)> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["local_time"].as_str().unwrap(),
                p["label"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        labels,
        [
            ("2026-01-05T12:30:00", "business_lunch"),
            ("2026-02-02T12:30:00", "business_lunch"),
            ("2026-03-02T12:30:00", "business_lunch"),
            ("2026-03-16T12:30:00", "business_lunch"),
            ("2026-04-01T00:30:00", "other"),
        ]
    );

    // GraphQL gives the same figures.
    let g = app
        .graphql(
            Some(&t.token),
            "query($id: ID!) { jtbdResults(clientId: $id, asOf: \"2026-03-31\", margin: 0.3) { purchases customers { customerRef segment } migration { counts } jtbds { label ltv } } jtbdRules(clientId: $id) { labels } customerPurchases(clientId: $id, customerRef: \"bob\") { items { label } } purchases(clientId: $id, first: 2) { items { customerRef } nextCursor } }",
            json!({"id": c}),
        )
        .await;
    assert!(g.body["errors"].is_null(), "{}", g.text);
    let d = &g.body["data"];
    assert_eq!(d["jtbdResults"]["purchases"], 8);
    assert_eq!(d["jtbdResults"]["customers"][0]["segment"], "loyal");
    assert_eq!(d["jtbdResults"]["migration"]["counts"], m["counts"]);
    close(&d["jtbdResults"]["jtbds"][1]["ltv"], 30.0);
    assert_eq!(d["jtbdRules"]["labels"][0], "business_lunch");
    assert_eq!(
        d["customerPurchases"]["items"],
        json!([{"label": "family_dinner"}])
    );
    assert_eq!(d["purchases"]["items"].as_array().unwrap().len(), 2);
    assert!(d["purchases"]["nextCursor"].is_string());
}

async fn single_purchases_and_graphql_ingest_are_idempotent_by_external_id(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = restaurant(&app, &t).await;
    let path = format!("/api/v1/clients/{c}/purchases");
    let body = json!({"external_id": "p1", "customer_ref": "eve", "purchased_at": "2026-03-02T12:00:00+03:00", "amount": 12.5, "items": 1, "party_size": 2});

    let first = app.post(&path, &t.token, body.clone()).await;
    let again = app.post(&path, &t.token, body).await;

    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.body["inserted"], 1);
    assert_eq!(
        (again.status, again.body["duplicates"].clone()),
        (StatusCode::CREATED, json!(1))
    );
    let g = app
        .graphql(
            Some(&t.token),
            "mutation($id: ID!) { submitPurchase(clientId: $id, input: {externalId: \"p2\", customerRef: \"eve\", purchasedAt: \"2026-03-03T12:00:00Z\", amount: 5, items: 0, partySize: 1, channel: \"app\"}) { inserted } }",
            json!({"id": c}),
        )
        .await;
    assert_eq!(
        g.body["data"]["submitPurchase"]["inserted"], 1,
        "{}",
        g.text
    );
    let list = app.get(&path, &t.token).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["purchased_at"], "2026-03-02T09:00:00Z");
    assert_eq!(items[1]["channel"], "app");
}

async fn bad_purchases_are_refused_naming_row_and_field_and_nothing_is_stored(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = restaurant(&app, &t).await;
    let ok = json!({"customer_ref": "x", "purchased_at": "2026-03-02T12:00:00Z", "amount": 1, "items": 1, "party_size": 1});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = ok.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (body, field) in [
        (without("customer_ref"), "customer_ref"),
        (with("customer_ref", json!("")), "customer_ref"),
        (with("purchased_at", json!("yesterday")), "purchased_at"),
        (with("amount", json!(-1)), "amount"),
        (with("items", json!(1.5)), "items"),
        (with("items", json!(-1)), "items"),
        (with("party_size", json!(0)), "party_size"),
        (with("channel", json!("")), "channel"),
        (with("external_id", json!("x".repeat(201))), "external_id"),
        (with("tip", json!(1)), "tip"),
    ] {
        let r = app
            .post(
                &format!("/api/v1/clients/{c}/purchases"),
                &t.token,
                body.clone(),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.text);
    }
    let header = "customer_ref,purchased_at,amount,items,party_size\n";
    let good = "x,2026-03-02T12:00:00Z,1,1,1\n";
    for (ct, body, errors) in [
        (
            "text/csv",
            format!("{header}{good}x,2026-03-02T12:00:00Z,1\n"),
            vec![(2, "row")],
        ),
        (
            "text/csv",
            "customer_ref,purchased_at,amount,items\nx,2026-03-02T12:00:00Z,1,1\n".to_owned(),
            vec![(0, "party_size")],
        ),
        (
            "text/csv",
            format!("{header}{good}").replace("customer_ref,", "customer,"),
            vec![(0, "customer"), (0, "customer_ref")],
        ),
        (
            "text/csv",
            format!("{header}{good}x,2026-13-02,abc,1,1\n,2026-03-02T12:00:00Z,1,1,0\n"),
            vec![
                (2, "purchased_at"),
                (2, "amount"),
                (3, "customer_ref"),
                (3, "party_size"),
            ],
        ),
        (
            "application/x-ndjson",
            format!(
                "{ok}\n{{not json\n{}\n",
                json!({"customer_ref": "x", "purchased_at": "2026-03-02T12:00:00Z", "amount": 1, "items": 1, "party_size": 0})
            ),
            vec![(2, "line"), (3, "party_size")],
        ),
        ("text/csv", header.to_owned(), vec![(-1, "body")]),
    ] {
        let r = import(&app, &t.token, &c, ct, &body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        let got: Vec<(i64, String)> = r.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["row"].as_i64().unwrap_or(-1),
                    e["field"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = errors.iter().map(|(r, f)| (*r, f.to_string())).collect();
        assert_eq!(got, want, "{body}: {}", r.text);
    }
    let r = import(&app, &t.token, &c, "application/json", "{}").await;
    assert_eq!(r.error_fields(), ["Content-Type"]);
    // At most 100 errors are listed.
    let many: String = (0..150).map(|_| "x,bad,1,1,1\n").collect();
    let r = import(&app, &t.token, &c, "text/csv", &format!("{header}{many}")).await;
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 100);

    let list = app
        .get(&format!("/api/v1/clients/{c}/purchases"), &t.token)
        .await;
    assert_eq!(list.body["items"], json!([]), "nothing stored");

    // Rules: the index and the field are named; nothing is saved.
    for (body, field) in [
        (
            json!({"rules": [{"label": "a"}, {"label": "b", "hours": {"from": 12, "to": 25}}]}),
            "rules[1].hours",
        ),
        (json!({"rules": [{"label": " "}]}), "rules[0].label"),
        (json!({"rules": [{"label": "none"}]}), "rules[0].label"),
        (
            json!({"rules": [{"label": "a", "party_size": {"min": 3, "max": 2}}]}),
            "rules[0].party_size",
        ),
        (
            json!({"rules": [{"label": "a", "weekdays": []}]}),
            "rules[0].weekdays",
        ),
        (
            json!({"rules": [{"label": "a", "weekdays": ["Someday"]}]}),
            "rules[0].weekdays[0]",
        ),
        (
            json!({"rules": [{"label": "a", "amount": {"min": 5, "max": 1}}]}),
            "rules[0].amount",
        ),
        (
            json!({"rules": [{"label": "a", "channels": []}]}),
            "rules[0].channels",
        ),
        (
            json!({"rules": [{"label": "a", "hour": {"from": 1, "to": 2}}]}),
            "rules[0].hour",
        ),
        (json!({"rules": [{"weekdays": ["Mon"]}]}), "rules[0].label"),
    ] {
        let r = put_rules(&app, &t.token, &c, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{body}: {}", r.text);
    }
    let r = app
        .get(&format!("/api/v1/clients/{c}/jtbd-rules"), &t.token)
        .await;
    assert_eq!(r.body["rules"], json!([]));
    assert_eq!(r.body["labels"], json!(["other"]));

    // Result parameters.
    for (query, field) in [
        ("as_of=31.03.2026", "as_of"),
        ("period=year", "period"),
        ("margin=2", "margin"),
        ("limit=0", "limit"),
    ] {
        let r = app
            .get(&format!("/api/v1/clients/{c}/jtbd?{query}"), &t.token)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            r.text
        );
        assert_eq!(r.error_fields(), [field], "{query}");
    }
}

async fn racing_duplicate_imports_store_each_purchase_once(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = restaurant(&app, &t).await;
    let body: String = (0..2000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"external_id": format!("e{i}"), "customer_ref": format!("c{}", i % 50),
                       "purchased_at": "2026-03-02T12:00:00Z", "amount": 10, "items": 1, "party_size": 1})
            )
        })
        .collect();

    let runs: Vec<_> = (0..4)
        .map(|_| import(&app, &t.token, &c, "application/x-ndjson", &body))
        .collect();
    let results = futures::future::join_all(runs).await;

    let mut inserted = 0;
    for r in &results {
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        assert_eq!(r.body["received"], 2000);
        inserted += r.body["inserted"].as_u64().unwrap();
    }
    assert_eq!(inserted, 2000, "each external id stored once");
    let r = app
        .get(
            &format!("/api/v1/clients/{c}/jtbd?as_of=2026-03-31"),
            &t.token,
        )
        .await;
    assert_eq!(r.body["purchases"], 2000, "{}", r.text);
}

async fn viewers_read_ingest_keys_push_purchases_analysts_edit_rules(mode: Mode) {
    let app = spawn_app(mode).await;
    let owner = app.signup("Acme").await;
    let c = restaurant(&app, &owner).await;
    let viewer = app.member(&owner, "viewer").await;
    let analyst = app.member(&owner, "analyst").await;
    let read_key = app.api_key(&owner.token, &["read"]).await;
    let ingest_key = app.api_key(&owner.token, &["ingest"]).await;
    let purchase = json!({"customer_ref": "x", "purchased_at": "2026-03-02T12:00:00Z", "amount": 1, "items": 1, "party_size": 1});
    let purchases = format!("/api/v1/clients/{c}/purchases");
    let csv = "customer_ref,purchased_at,amount,items,party_size\nx,2026-03-02T12:00:00Z,1,1,1\n";

    for who in [&viewer, &read_key] {
        for path in [
            purchases.clone(),
            format!("/api/v1/clients/{c}/jtbd"),
            format!("/api/v1/clients/{c}/jtbd-rules"),
            format!("/api/v1/clients/{c}/customers/x/purchases"),
        ] {
            assert_eq!(app.get(&path, who).await.status, StatusCode::OK, "{path}");
        }
        for r in [
            app.post(&purchases, who, purchase.clone()).await,
            import(&app, who, &c, "text/csv", csv).await,
            put_rules(&app, who, &c, rules()).await,
        ] {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
            assert_eq!(r.body["code"], "forbidden");
        }
    }
    assert_eq!(
        app.post(&purchases, &ingest_key, purchase.clone())
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        import(&app, &ingest_key, &c, "text/csv", csv).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        put_rules(&app, &ingest_key, &c, rules()).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&purchases, &analyst, purchase).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        put_rules(&app, &analyst, &c, rules()).await.status,
        StatusCode::OK
    );
    let g = app
        .graphql(
            Some(&viewer),
            "mutation($id: ID!) { putJtbdRules(clientId: $id, rules: [{label: \"x\"}]) { labels } }",
            json!({"id": c}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{}",
        g.text
    );
    let g = app
        .graphql(
            Some(&analyst),
            "mutation($id: ID!) { putJtbdRules(clientId: $id, rules: [{label: \"x\", hours: {from: 30, to: 1}}]) { labels } }",
            json!({"id": c}),
        )
        .await;
    assert_eq!(
        g.body["errors"][0]["extensions"]["fields"][0]["field"], "rules[0].hours",
        "{}",
        g.text
    );
}

/// Two purchases of one customer at the same instant, one family dinner and
/// one date: the period's dominant JTBD is a tie, broken by the purchase
/// stored later (analytics.md §6), on either backend and however PostgreSQL
/// happens to return the rows.
async fn a_tie_at_the_same_instant_goes_to_the_purchase_stored_later(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    for (first, second, winner) in [("4", "2", "date"), ("2", "4", "family_dinner")] {
        let c = restaurant(&app, &t).await;
        assert_eq!(
            put_rules(&app, &t.token, &c, rules()).await.status,
            StatusCode::OK
        );
        let csv = format!(
            "customer_ref,purchased_at,amount,items,party_size\n\
             eve,2026-02-14T16:00:00Z,100,2,{first}\n\
             eve,2026-02-14T16:00:00Z,60,2,{second}\n"
        );
        let r = import(&app, &t.token, &c, "text/csv", &csv).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        let r = app
            .get(
                &format!("/api/v1/clients/{c}/jtbd?as_of=2026-03-31&period=month"),
                &t.token,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let periods = |label: &str| {
            r.body["jtbds"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["label"] == label)
                .map(|j| j["customer_periods"].as_u64().unwrap())
                .unwrap_or(0)
        };
        assert_eq!(periods(winner), 1, "{}", r.text);
        assert_eq!(periods("date") + periods("family_dinner"), 1, "{}", r.text);
    }
}

/// The map is cached per process by data version, rules, time zone and
/// parameters: asking again gives the same computation (same
/// `computed_at`), and each thing it depends on makes it computed afresh.
async fn the_cached_map_follows_new_purchases_rules_and_parameters(mode: Mode) {
    let app = spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let c = restaurant(&app, &t).await;
    assert_eq!(
        put_rules(&app, &t.token, &c, rules()).await.status,
        StatusCode::OK
    );
    assert_eq!(
        import(&app, &t.token, &c, "text/csv", CSV).await.status,
        StatusCode::CREATED
    );
    let path = format!("/api/v1/clients/{c}/jtbd?as_of=2026-03-31&period=month&limit=2");
    let map = |url: String| {
        let (app, token) = (&app, &t.token);
        async move {
            let r = app.get(&url, token).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            r.body
        }
    };
    let labelled = |m: &Value, label: &str| {
        m["jtbds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["label"] == label)
            .map(|j| j["purchases"].as_u64().unwrap())
            .unwrap_or(0)
    };
    let first = map(path.clone()).await;
    assert_eq!(first["purchases"], 8);
    let again = map(path.clone()).await;
    assert_eq!(
        again["computed_at"], first["computed_at"],
        "served from the cache"
    );
    let next = map(format!(
        "{path}&after={}",
        first["next_customer"].as_str().unwrap()
    ))
    .await;
    assert_eq!(
        next["computed_at"], first["computed_at"],
        "the next page too"
    );
    assert_eq!(next["customers"][0]["customer_ref"], "carol");
    // Another margin is another report.
    let other = map(format!("{path}&margin=0.5")).await;
    assert_ne!(other["computed_at"], first["computed_at"]);
    // A new purchase bumps the data version: computed afresh.
    let r = app
        .post(
            &format!("/api/v1/clients/{c}/purchases"),
            &t.token,
            json!({"customer_ref": "erin", "purchased_at": "2026-03-20T16:00:00Z",
                   "amount": 50, "items": 2, "party_size": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let fresh = map(path.clone()).await;
    assert_eq!(fresh["purchases"], 9, "{fresh}");
    assert!(fresh["data_version"].as_i64() > first["data_version"].as_i64());
    assert_eq!(labelled(&fresh, "date"), labelled(&first, "date") + 1);
    // New rules, same data version: computed afresh with them.
    let only_lunch = json!({"rules": [
        {"label": "business_lunch", "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": {"from": 12, "to": 14}}
    ]});
    assert_eq!(
        put_rules(&app, &t.token, &c, only_lunch).await.status,
        StatusCode::OK
    );
    let relabelled = map(path.clone()).await;
    assert_eq!(labelled(&relabelled, "date"), 0, "{relabelled}");
    assert_eq!(
        labelled(&relabelled, "business_lunch"),
        labelled(&fresh, "business_lunch")
    );
}

both_modes!(
    the_cached_map_follows_new_purchases_rules_and_parameters,
    a_restaurant_map_computed_by_hand_comes_back_through_the_api,
    a_tie_at_the_same_instant_goes_to_the_purchase_stored_later,
    single_purchases_and_graphql_ingest_are_idempotent_by_external_id,
    bad_purchases_are_refused_naming_row_and_field_and_nothing_is_stored,
    racing_duplicate_imports_store_each_purchase_once,
    viewers_read_ingest_keys_push_purchases_analysts_edit_rules,
);
