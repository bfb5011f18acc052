//! Contacts from questionnaire responses (analytics.md §7, issue 12): a
//! response that answered an `email` question links to the contact of that
//! address (created once per address, ignoring case; an existing contact
//! keeps its fields), the links are listed over REST and GraphQL, the
//! rules' `answer` texts of a contact's responses are read per contact,
//! erasing a contact blanks the answers that gave its address, and an
//! import of such responses marks the client's contacts for the worker.
//!
//! The worker is off in these apps: linking is called here, exactly as the
//! contacts job calls it, so every count is the hand-computed one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use service::contacts::responses::{answers_by_contact, link_responses};
use tests::{Mode, Tenant, TestApp, both_modes, spawn_with};
use uuid::Uuid;

struct World {
    app: TestApp,
    t: Tenant,
    agency: Uuid,
    client: Uuid,
    questionnaire: String,
}

async fn world(mode: Mode) -> World {
    let app = spawn_with(mode, |s| s.run_worker = false).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let questionnaire = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Brief", "kind": "brief", "questions": [
                {"key": "mail", "type": "email"},
                {"key": "src", "type": "single_choice", "role": "source_channel",
                 "options": ["rtb", "blogger", "a-channel-name-that-is-far-too-long-to-be-a-contacts-source-channel-x"]},
                {"key": "likes", "type": "multi_choice", "options": ["price", "speed", "care"]},
                {"key": "score", "type": "rating_1_5"},
                {"key": "budget", "type": "number"},
                {"key": "note", "type": "text"}
            ]}),
        )
        .await;
    World {
        agency: t.agency_id.parse().unwrap(),
        client: client.parse().unwrap(),
        app,
        t,
        questionnaire,
    }
}

impl World {
    async fn post_response(&self, body: Value) {
        let r = self
            .app
            .post(
                &format!("/api/v1/questionnaires/{}/responses", self.questionnaire),
                &self.t.token,
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }

    /// Creates (or merges into) a contact over REST; the contact.
    async fn put_contact(&self, body: Value) -> Value {
        let r = self
            .app
            .post(
                &format!("/api/v1/clients/{}/contacts", self.client),
                &self.t.token,
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.body
    }

    async fn import(&self, questionnaire: &str, content_type: &str, body: String) -> Value {
        let r = self
            .app
            .raw(
                Method::POST,
                &format!("/api/v1/questionnaires/{questionnaire}/responses/import"),
                Some(&self.t.token),
                content_type,
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }

    /// Links the client's responses in a transaction, as the contacts job.
    async fn link(&self) -> u64 {
        let txn = self.app.services.db.begin().await.unwrap();
        let n = link_responses(&txn, self.agency, self.client)
            .await
            .unwrap();
        txn.commit().await.unwrap();
        n
    }

    /// The items of a list (one page of 200 at most), each with its `key`.
    async fn items(&self, path: &str, key: &str) -> Vec<(String, Value)> {
        let r = self.app.get(path, &self.t.token).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v[key].as_str().unwrap().to_owned(), v.clone()))
            .collect()
    }

    /// The client's contacts by e-mail.
    async fn contacts(&self) -> BTreeMap<String, Value> {
        let path = format!("/api/v1/clients/{}/contacts?limit=200", self.client);
        self.items(&path, "email").await.into_iter().collect()
    }

    /// The questionnaire's responses by external id.
    async fn responses(&self) -> BTreeMap<String, Value> {
        let path = format!(
            "/api/v1/questionnaires/{}/responses?limit=200",
            self.questionnaire
        );
        self.items(&path, "external_id").await.into_iter().collect()
    }

    /// The ids of the responses linked to a contact, over REST.
    async fn linked(&self, contact: &str) -> Vec<String> {
        let path = format!("/api/v1/contacts/{contact}/responses");
        self.items(&path, "id")
            .await
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// The client's contacts target in the ledger: (wanted version, pending).
    async fn contacts_target(&self) -> (i64, bool) {
        use entity::recompute_target as rt;
        rt::Entity::find()
            .filter(rt::Column::AgencyId.eq(self.agency))
            .filter(rt::Column::Kind.eq("client_contacts"))
            .filter(rt::Column::TargetId.eq(self.client))
            .one(&self.app.services.db)
            .await
            .unwrap()
            .map(|t| (t.wanted_version, t.pending))
            .unwrap_or((0, false))
    }

    /// Drops this test's PostgreSQL database (the harness leaves them).
    async fn finish(self) {
        let Some(name) = self
            .app
            .settings
            .database_url
            .as_deref()
            .and_then(|u| u.rsplit_once('/'))
            .map(|(_, n)| n.to_owned())
            .filter(|n| n.starts_with("gp_test_"))
        else {
            return;
        };
        let admin = sea_orm::Database::connect(tests::pg_admin_url())
            .await
            .unwrap();
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .unwrap();
    }
}

fn sorted(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    pairs.sort();
    pairs
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

const CSV: &str = "external_id,submitted_at,mail,src,likes,score,budget\n\
    c1,2026-11-01T10:00:00Z,bob@example.com,rtb,speed,5,1500\n\
    c2,2026-11-02T10:00:00Z,Bob@Example.COM,blogger,,3,\n\
    c3,2026-11-03T10:00:00Z,,rtb,price,2,\n\
    c4,2026-11-04T10:00:00Z,cat@example.com,a-channel-name-that-is-far-too-long-to-be-a-contacts-source-channel-x,price;speed,,\n";

async fn responses_become_contacts_once_per_address(mode: Mode) {
    let w = world(mode).await;
    // Ann is a contact already, with fields of her own.
    w.put_contact(
        json!({"email": "ann@example.com", "name": "Ann", "source_channel": "api_form",
                         "funnel": "warming", "attributes": {"city": "msk"}}),
    )
    .await;
    // As stored (a write's answer carries its clock's nanoseconds).
    let ann_before = w.contacts().await["ann@example.com"].clone();

    w.post_response(json!({"external_id": "j1", "submitted_at": "2026-10-01T09:00:00Z",
        "answers": {"mail": " ANN@Example.com ", "src": "blogger", "likes": ["price", "care"], "score": 4, "budget": 2.5}}))
        .await;
    w.import(&w.questionnaire, "text/csv", CSV.into()).await;
    w.import(
        &w.questionnaire,
        "application/x-ndjson",
        "{\"external_id\":\"n1\",\"submitted_at\":\"2026-11-05T10:00:00Z\",\"answers\":{\"mail\":\"dan@example.com\",\"likes\":[]}}\n".into(),
    )
    .await;

    // j1 → Ann; c1, c2 → Bob; c4 → Cat; n1 → Dan; c3 has no address.
    assert_eq!(w.link().await, 5);
    assert_eq!(w.link().await, 0, "linking again links nothing");
    let contacts = w.contacts().await;
    assert_eq!(
        contacts.keys().collect::<Vec<_>>(),
        [
            "ann@example.com",
            "bob@example.com",
            "cat@example.com",
            "dan@example.com"
        ]
    );
    assert_eq!(
        contacts["ann@example.com"], ann_before,
        "an existing contact keeps its fields"
    );
    let bob = &contacts["bob@example.com"];
    assert_eq!(
        (
            &bob["funnel"],
            &bob["status"],
            &bob["source_channel"],
            &bob["name"]
        ),
        (
            &json!("reach"),
            &json!("active"),
            &json!("rtb"),
            &Value::Null
        ),
        "a new contact: reach, active, the earliest response's source channel"
    );
    assert_eq!(bob["created_at"], "2026-11-01T10:00:00Z");
    assert_eq!(
        contacts["cat@example.com"]["source_channel"],
        Value::Null,
        "a channel longer than a contact's is left out"
    );
    assert_eq!(contacts["dan@example.com"]["source_channel"], Value::Null);

    // New responses of known addresses, in any case, add links, not contacts.
    w.import(
        &w.questionnaire,
        "text/csv",
        "external_id,mail,likes\nc5,BOB@example.com,care\nc6,Dan@Example.com,\n".into(),
    )
    .await;
    // A re-import stores nothing new.
    let again = w.import(&w.questionnaire, "text/csv", CSV.into()).await;
    assert_eq!(again["inserted"], 0);
    assert_eq!(w.link().await, 2);
    assert_eq!(w.contacts().await.len(), 4);

    // The links, over REST (paged) and GraphQL.
    let responses = w.responses().await;
    let id = |e: &str| responses[e]["id"].as_str().unwrap().to_owned();
    let bob_id = bob["id"].as_str().unwrap().to_owned();
    let mut expected = vec![id("c1"), id("c2"), id("c5")];
    expected.sort();
    assert_eq!(w.linked(&bob_id).await, expected);
    let ann_id = ann_before["id"].as_str().unwrap().to_owned();
    let r = w
        .app
        .get(&format!("/api/v1/contacts/{ann_id}/responses"), &w.t.token)
        .await;
    assert_eq!(
        r.body,
        json!({"items": [{"id": id("j1"), "questionnaire_id": w.questionnaire,
                          "submitted_at": "2026-10-01T09:00:00Z"}], "next_cursor": null})
    );
    let page1 = w
        .app
        .get(
            &format!("/api/v1/contacts/{bob_id}/responses?limit=2"),
            &w.t.token,
        )
        .await;
    assert_eq!(page1.body["items"].as_array().unwrap().len(), 2);
    let cursor = page1.body["next_cursor"].as_str().unwrap();
    let page2 = w
        .app
        .get(
            &format!("/api/v1/contacts/{bob_id}/responses?limit=2&after={cursor}"),
            &w.t.token,
        )
        .await;
    assert_eq!(page2.body["items"][0]["id"], expected[2].as_str());
    assert!(page2.body["next_cursor"].is_null());
    let g = w
        .app
        .graphql(
            Some(&w.t.token),
            "query($id: ID!) { contactResponses(contactId: $id, first: 2) { items { id questionnaireId submittedAt } nextCursor } }",
            json!({"id": bob_id}),
        )
        .await;
    let items = &g.body["data"]["contactResponses"]["items"];
    assert_eq!(items[0]["id"], expected[0].as_str(), "{}", g.text);
    assert_eq!(items[1]["questionnaireId"], w.questionnaire.as_str());
    assert_eq!(items[0]["submittedAt"], "2026-11-01T10:00:00+00:00");
    assert_eq!(
        g.body["data"]["contactResponses"]["nextCursor"],
        expected[1].as_str()
    );

    // The answers rules read: one pair per chosen option, numbers in their
    // shortest form, the keys asked for only, a blank answer none.
    let keys: Vec<String> = ["likes", "score", "budget", "src", "missing"]
        .map(String::from)
        .to_vec();
    let answers = answers_by_contact(&w.app.services.db, w.agency, w.client, &keys, None)
        .await
        .unwrap();
    let of = |email: &str| {
        let id: Uuid = w_contact_id(&contacts, email);
        sorted(answers.get(&id).cloned().unwrap_or_default())
    };
    assert_eq!(
        of("ann@example.com"),
        pairs(&[
            ("likes", "price"),
            ("likes", "care"),
            ("score", "4"),
            ("budget", "2.5"),
            ("src", "blogger")
        ])
    );
    assert_eq!(
        of("bob@example.com"),
        pairs(&[
            ("likes", "speed"),
            ("score", "5"),
            ("budget", "1500"),
            ("src", "rtb"),
            ("score", "3"),
            ("src", "blogger"),
            ("likes", "care"),
        ])
    );
    assert_eq!(
        of("cat@example.com"),
        pairs(&[
            ("likes", "price"),
            ("likes", "speed"),
            (
                "src",
                "a-channel-name-that-is-far-too-long-to-be-a-contacts-source-channel-x"
            )
        ])
    );
    assert_eq!(of("dan@example.com"), pairs(&[]), "an empty selection");
    assert_eq!(
        answers.len(),
        3,
        "contacts without such answers are left out"
    );
    w.finish().await;
}

fn w_contact_id(contacts: &BTreeMap<String, Value>, email: &str) -> Uuid {
    contacts[email]["id"].as_str().unwrap().parse().unwrap()
}

async fn erasing_a_contact_blanks_the_answers_that_gave_its_address(mode: Mode) {
    let w = world(mode).await;
    w.import(&w.questionnaire, "text/csv", CSV.into()).await;
    assert_eq!(w.link().await, 3);
    // A response of Bob's that arrived after linking, not linked yet.
    w.import(
        &w.questionnaire,
        "text/csv",
        "external_id,mail,note\nc7,bob@EXAMPLE.com,hi\n".into(),
    )
    .await;
    let contacts = w.contacts().await;
    let bob = contacts["bob@example.com"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = w
        .app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{bob}"),
            Some(&w.t.token),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);

    let responses = w.responses().await;
    for e in ["c1", "c2", "c7"] {
        let a = &responses[e]["answers"];
        assert!(a.get("mail").is_none(), "{e} still has the address: {a}");
    }
    assert_eq!(
        responses["c1"]["answers"],
        json!({"src": "rtb", "likes": ["speed"], "score": 5, "budget": 1500.0}),
        "the other answers stay"
    );
    assert_eq!(responses["c7"]["answers"], json!({"note": "hi"}));
    assert_eq!(responses["c4"]["answers"]["mail"], "cat@example.com");
    let listing = w
        .app
        .get(&format!("/api/v1/contacts/{bob}/responses"), &w.t.token)
        .await;
    assert_eq!(listing.status, StatusCode::NOT_FOUND);
    // Nothing brings Bob back, and Cat's link stands.
    assert_eq!(w.link().await, 0);
    let contacts = w.contacts().await;
    assert_eq!(contacts.keys().collect::<Vec<_>>(), ["cat@example.com"]);
    let cat = contacts["cat@example.com"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        w.linked(&cat).await,
        vec![responses["c4"]["id"].as_str().unwrap().to_owned()]
    );
    let answers = answers_by_contact(
        &w.app.services.db,
        w.agency,
        w.client,
        &["mail".to_owned()],
        None,
    )
    .await
    .unwrap();
    assert_eq!(answers.len(), 1, "{answers:?}");
    w.finish().await;
}

async fn an_address_with_capital_non_ascii_letters_finds_its_contact(mode: Mode) {
    let w = world(mode).await;
    let r = w
        .put_contact(json!({"email": "Élise@Пример.рф", "name": "Élise"}))
        .await;
    assert_eq!(r["email"], "élise@пример.рф");
    w.post_response(json!({"external_id": "e1", "answers": {"mail": "ÉLISE@ПРИМЕР.РФ"}}))
        .await;
    w.post_response(
        json!({"external_id": "e2", "answers": {"mail": "Zoë@Example.com", "src": "rtb"}}),
    )
    .await;
    assert_eq!(w.link().await, 2);
    let contacts = w.contacts().await;
    assert_eq!(
        contacts.keys().collect::<Vec<_>>(),
        ["zoë@example.com", "élise@пример.рф"]
    );
    assert_eq!(contacts["élise@пример.рф"]["name"], "Élise");
    assert_eq!(contacts["zoë@example.com"]["source_channel"], "rtb");
    let elise = contacts["élise@пример.рф"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(w.linked(&elise).await.len(), 1);
    w.finish().await;
}

async fn importing_responses_with_an_email_question_marks_the_contacts(mode: Mode) {
    let w = world(mode).await;
    let (v0, _) = w.contacts_target().await;
    w.post_response(json!({"answers": {"note": "no address given"}}))
        .await;
    assert_eq!(
        w.contacts_target().await,
        (v0 + 1, true),
        "a response of a questionnaire with an email question"
    );
    // 1,200 rows: the bulk path (COPY on PostgreSQL) marks them too.
    let mut csv = String::from("external_id,mail,likes\n");
    for i in 0..1_200 {
        csv.push_str(&format!("b{i},Bulk{i}@Example.com,price\n"));
    }
    let r = w.import(&w.questionnaire, "text/csv", csv.clone()).await;
    assert_eq!(r["inserted"], 1_200);
    assert_eq!(w.contacts_target().await, (v0 + 2, true));
    // Duplicates only: nothing stored, nothing marked.
    w.import(&w.questionnaire, "text/csv", csv).await;
    assert_eq!(w.contacts_target().await, (v0 + 2, true));
    // A questionnaire without one leaves the contacts alone.
    let plain = w
        .app
        .create(
            &format!("/api/v1/clients/{}/questionnaires", w.client),
            &w.t.token,
            json!({"title": "Plain", "kind": "brief", "questions": [{"key": "note", "type": "text"}]}),
        )
        .await;
    w.import(&plain, "text/csv", "note\nhello\n".into()).await;
    assert_eq!(w.contacts_target().await, (v0 + 2, true));
    assert_eq!(w.link().await, 1_200);
    assert_eq!(w.contacts().await.len(), 200, "a full page of them");
    w.finish().await;
}

async fn bad_contact_ids_and_pages_are_refused(mode: Mode) {
    let w = world(mode).await;
    for path in [
        "/api/v1/contacts/not-a-uuid/responses".to_owned(),
        format!("/api/v1/contacts/{}/responses", Uuid::new_v4()),
        format!("/api/v1/contacts/{}/responses", w.client),
    ] {
        let r = w.app.get(&path, &w.t.token).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.text);
    }
    let r = w.put_contact(json!({"email": "ann@example.com"})).await;
    let ann = r["id"].as_str().unwrap().to_owned();
    for q in ["limit=0", "limit=201", "after=zzz", "limit=abc"] {
        let r = w
            .app
            .get(&format!("/api/v1/contacts/{ann}/responses?{q}"), &w.t.token)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{q}: {}",
            r.text
        );
    }
    let unknown = Uuid::new_v4().to_string();
    for (id, first, code) in [
        ("nope", 10, "VALIDATION_FAILED"),
        (ann.as_str(), 0, "VALIDATION_FAILED"),
        (unknown.as_str(), 10, "NOT_FOUND"),
    ] {
        let g = w
            .app
            .graphql(
                Some(&w.t.token),
                "query($id: ID!, $first: Int) { contactResponses(contactId: $id, first: $first) { items { id } } }",
                json!({"id": id, "first": first}),
            )
            .await;
        assert_eq!(g.status, StatusCode::OK, "{}", g.text);
        assert_eq!(
            g.body["errors"][0]["extensions"]["code"], code,
            "{}",
            g.text
        );
    }
    w.finish().await;
}

/// With the worker on: responses with an e-mail become contacts without
/// any other call, and `answer` rules score them by their linked answers
/// (a multi-choice option by its text), explained when read.
async fn answer_rules_score_contacts_from_their_responses(mode: Mode) {
    let app = tests::spawn_app(mode).await;
    let t = app.signup("Acme").await;
    let client = app
        .create("/api/v1/clients", &t.token, json!({"name": "Shop"}))
        .await;
    let q = app
        .create(
            &format!("/api/v1/clients/{client}/questionnaires"),
            &t.token,
            json!({"title": "Brief", "kind": "brief", "questions": [
                {"key": "mail", "type": "email"},
                {"key": "plan", "type": "single_choice", "options": ["basic", "pro"]},
                {"key": "likes", "type": "multi_choice", "options": ["price", "speed", "care"]}
            ]}),
        )
        .await;
    let r = app
        .call(
            Method::PUT,
            &format!("/api/v1/clients/{client}/scoring"),
            Some(&t.token),
            Some(json!({"rules": [
                {"name": "Pro plan", "points": 50, "when": {"kind": "answer", "question_key": "plan", "value": "pro"}},
                {"name": "Cares", "points": 15, "when": {"kind": "answer", "question_key": "likes", "value": "care"}}
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for (id, answers) in [
        (
            "r1",
            json!({"mail": "a@x.io", "plan": "pro", "likes": ["price", "care"]}),
        ),
        (
            "r2",
            json!({"mail": "B@x.io", "plan": "basic", "likes": ["care"]}),
        ),
        ("r3", json!({"mail": "c@x.io", "plan": "basic"})),
    ] {
        let r = app
            .post(
                &format!("/api/v1/questionnaires/{q}/responses"),
                &t.token,
                json!({"external_id": id, "answers": answers}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // a: 50 + 15 = 65 → hot; b: 15 → cold; c: 0 → cold.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let items = loop {
        let r = app
            .get(&format!("/api/v1/clients/{client}/contacts"), &t.token)
            .await;
        let items = r.body["items"].as_array().unwrap().clone();
        if items.len() == 3 && items.iter().all(|c| !c["scored_at"].is_null()) {
            break items;
        }
        assert!(std::time::Instant::now() < deadline, "{}", r.text);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    };
    let by: BTreeMap<&str, &Value> = items
        .iter()
        .map(|c| (c["email"].as_str().unwrap(), c))
        .collect();
    let got: Vec<(f64, &str)> = ["a@x.io", "b@x.io", "c@x.io"]
        .iter()
        .map(|e| {
            (
                by[e]["score"].as_f64().unwrap(),
                by[e]["tier"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, [(65.0, "hot"), (15.0, "cold"), (0.0, "cold")]);
    assert_eq!(
        by["a@x.io"]["explanation"]["rules"],
        json!([{"rule": "Pro plan", "points": 50.0}, {"rule": "Cares", "points": 15.0}])
    );
    let a = by["a@x.io"]["id"].as_str().unwrap();
    let r = app.get(&format!("/api/v1/contacts/{a}"), &t.token).await;
    assert_eq!(r.body["score"], 65.0, "{}", r.text);
    assert_eq!(
        r.body["explanation"]["rules"].as_array().map(Vec::len),
        Some(2),
        "{}",
        r.text
    );
}

both_modes!(
    answer_rules_score_contacts_from_their_responses,
    responses_become_contacts_once_per_address,
    erasing_a_contact_blanks_the_answers_that_gave_its_address,
    an_address_with_capital_non_ascii_letters_finds_its_contact,
    importing_responses_with_an_email_question_marks_the_contacts,
    bad_contact_ids_and_pages_are_refused,
);
