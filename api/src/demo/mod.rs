//! `growthpoint demo`: a demo agency built from the method's own examples —
//! a real-estate developer's customer panel and sales barriers, a fitness
//! club's mystery-shopper audits for five JTBDs, a subscription service's
//! Cash Journey, a restaurant's JTBD map and a studio's funnels and nurture
//! chain — made
//! through the same service calls as the API, so every result is populated.
use anyhow::Context;
use serde_json::{Value, json};
use service::auth::SignupInput;
use service::responses::ImportFormat;
use service::{Principal, RequestCtx, Role, Services};
use uuid::Uuid;

mod barriers;
mod funnel;
mod tracks;

pub const DEMO_EMAIL: &str = "demo@growthpoint.example";
pub const DEMO_PASSWORD: &str = "growthpoint-demo";

/// A small deterministic generator (no randomness between runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> anyhow::Result<T> {
    serde_json::from_value(v).context("demo input")
}

fn id_of(v: &impl serde::Serialize) -> anyhow::Result<Uuid> {
    let j = serde_json::to_value(v)?;
    j["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("demo id")
}

pub struct Demo {
    pub agency_id: Uuid,
    pub clients: Vec<(String, Uuid)>,
}

/// Loads the demo agency, unless it exists. Returns what it made.
pub async fn load(s: &Services) -> anyhow::Result<Option<Demo>> {
    let existing = s
        .login(
            service::auth::LoginInput {
                email: DEMO_EMAIL.into(),
                password: DEMO_PASSWORD.into(),
                agency_id: None,
            },
            None,
        )
        .await;
    if existing.is_ok() {
        return Ok(None);
    }
    let signup = s
        .signup(
            SignupInput {
                agency_name: "Growthpoint demo agency".into(),
                name: "Demo analyst".into(),
                email: DEMO_EMAIL.into(),
                password: DEMO_PASSWORD.into(),
                locale: None,
            },
            None,
        )
        .await;
    let out = match signup {
        Ok(o) => o,
        Err(service::AppError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(anyhow::anyhow!("demo sign-up: {e}")),
    };
    let ctx = RequestCtx {
        agency_id: out.agency.id,
        principal: Principal::User(out.user.id),
        role: Some(Role::Owner),
        scopes: vec![],
        request_id: None,
    };
    let e = |e: service::AppError| anyhow::anyhow!("demo: {}", e.public_detail());
    let mut rng = Lcg(20261122);
    let mut clients = Vec::new();

    // 1. A real-estate developer's customer panel.
    let dev = s
        .create_client(&ctx, parse(json!({"name": "Solnechny quarter (developer)", "industry": "real estate", "locale": "ru"}))?)
        .await
        .map_err(e)?;
    let dev_id = dev.id;
    clients.push((dev.name.clone(), dev_id));
    let factor = |name: &'static str| {
        let s = s.clone();
        let ctx = ctx.clone();
        async move {
            s.create_factor(&ctx, dev_id, parse(json!({"name": name}))?)
                .await
                .map_err(|x| anyhow::anyhow!(x.public_detail()))
        }
    };
    let trust = factor("Developer's reliability").await?;
    let price = factor("Price per m²").await?;
    let place = factor("Location").await?;
    let panel = s
        .create_questionnaire(
            &ctx,
            dev_id,
            parse(json!({"title": "Buyers' panel 2026", "kind": "customer_panel", "questions": [
                {"key": "buy_for", "label": "Who do you buy for?", "type": "single_choice", "options": ["self", "parents", "children", "investment"], "role": "segment_attribute"},
                {"key": "budget", "label": "Budget, RUB", "type": "number", "min": 0, "role": "spend"},
                {"key": "source", "label": "Where did you hear of us?", "type": "multi_choice", "options": ["social", "search", "friends", "outdoor"], "role": "source_channel"},
                {"key": "fear", "label": "What worried you most?", "type": "single_choice", "options": ["unscrupulous_developer", "delays", "hidden_costs", "nothing"], "role": "problem"},
                {"key": "trust", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": trust.id},
                {"key": "price", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": price.id},
                {"key": "place", "type": "rating_1_5", "role": "choice_factor_importance", "choice_factor_id": place.id},
                {"key": "nps", "type": "nps_0_10", "role": "nps"},
                {"key": "advice", "label": "What should we improve?", "type": "text", "role": "recommendation"}
            ]}))?,
        )
        .await
        .map_err(e)?;
    let mut csv =
        String::from("external_id,buy_for,budget,source,fear,trust,price,place,nps,advice\n");
    let advice = [
        "Show construction progress online",
        "More parking",
        "show construction progress online!",
        "Faster paperwork",
        "",
    ];
    for i in 0..600 {
        let who = ["self", "parents", "children", "investment"][rng.below(4) as usize];
        let parents = who == "parents";
        let budget = if parents {
            3_000_000 + rng.below(2_500_000)
        } else {
            2_500_000 + rng.below(6_000_000)
        };
        let social = rng.chance(if parents { 65 } else { 30 });
        let mut src = vec![];
        if social {
            src.push("social");
        }
        if rng.chance(40) {
            src.push(["search", "friends", "outdoor"][rng.below(3) as usize]);
        }
        let fear = if parents && rng.chance(60) {
            "unscrupulous_developer"
        } else {
            ["delays", "hidden_costs", "nothing"][rng.below(3) as usize]
        };
        let trust_r = if parents {
            4 + rng.below(2)
        } else {
            2 + rng.below(4)
        };
        csv.push_str(&format!(
            "p{i},{who},{budget},{},{fear},{trust_r},{},{},{},{}\n",
            src.join(";"),
            2 + rng.below(4),
            1 + rng.below(5),
            if parents {
                6 + rng.below(5)
            } else {
                rng.below(11)
            },
            advice[rng.below(advice.len() as u64) as usize]
        ));
    }
    s.import_responses(&ctx, panel.id, ImportFormat::Csv, csv.into())
        .await
        .map_err(e)?;
    let mut segments = Vec::new();
    for (name, filter) in [
        (
            "Buying for parents, 3–5M, from social networks",
            json!({"conditions": [
            {"question": "buy_for", "values": ["parents"]},
            {"question": "budget", "min": 3_000_000, "max": 5_000_000},
            {"question": "source", "values": ["social"]}]}),
        ),
        (
            "Afraid of unscrupulous developers",
            json!({"conditions": [{"question": "fear", "values": ["unscrupulous_developer"]}]}),
        ),
    ] {
        let seg = s
            .create_segment(
                &ctx,
                dev_id,
                parse(json!({"name": name, "filter": filter.clone()}))?,
            )
            .await
            .map_err(e)?;
        segments.push(seg.id);
        s.create_hypothesis(
            &ctx,
            dev_id,
            parse(json!({"name": format!("{name}: reliability matters more"), "questionnaire_id": panel.id,
                "segment": filter, "metric": {"kind": "mean", "question": "trust"}, "direction": "greater"}))?,
        )
        .await
        .map_err(e)?;
    }

    barriers::developer_barriers(s, &ctx, dev_id).await?;
    tracks::developer_tracks(s, &ctx, dev_id, &segments).await?;

    // 2. A fitness club's mystery-shopper audits for five JTBDs.
    let lib = s
        .clone_library(
            &ctx,
            service::libraries::TEMPLATE_ID,
            parse(json!({"name": "Fitness club CJM"}))?,
        )
        .await
        .map_err(e)?;
    let club = s
        .create_client(&ctx, parse(json!({"name": "Pulse fitness club", "industry": "fitness", "touchpoint_library_id": lib.id}))?)
        .await
        .map_err(e)?;
    clients.push((club.name.clone(), club.id));
    let tps: Vec<Uuid> = lib
        .stages
        .iter()
        .filter_map(|st| st.touchpoints.first().map(|t| t.id))
        .collect();
    let jtbds = [
        "lose_weight",
        "build_muscle",
        "relieve_stress",
        "meet_people",
        "rehabilitate",
    ];
    let mut questions = vec![
        json!({"key": "visit", "type": "date", "role": "visit_date", "required": true}),
        json!({"key": "job", "type": "single_choice", "options": jtbds, "role": "jtbd"}),
    ];
    for (k, tp) in tps.iter().enumerate() {
        questions.push(json!({"key": format!("tp{k}"), "type": "rating_1_5", "role": "touchpoint_rating", "touchpoint_id": tp}));
        questions.push(json!({"key": format!("tp{k}_idea"), "type": "text", "role": "touchpoint_idea", "touchpoint_id": tp}));
    }
    let audit = s
        .create_questionnaire(&ctx, club.id, parse(json!({"title": "Mystery shopper audits", "kind": "mystery_shopper", "questions": questions}))?)
        .await
        .map_err(e)?;
    let today = chrono::Utc::now().date_naive();
    let mut header = vec!["visit".to_owned(), "job".to_owned()];
    for k in 0..tps.len() {
        header.push(format!("tp{k}"));
        header.push(format!("tp{k}_idea"));
    }
    let mut csv = header.join(",") + "\n";
    for day in 0..35i64 {
        let date = today - chrono::Duration::days(day);
        for _ in 0..3 {
            let job = jtbds[rng.below(5) as usize];
            let mut row = vec![date.format("%Y-%m-%d").to_string(), job.to_owned()];
            for k in 0..tps.len() {
                // The reception (stage 4) got worse this week.
                let r = if k == 3 && day < 7 {
                    1 + rng.below(3)
                } else {
                    3 + rng.below(3)
                };
                row.push(r.to_string());
                row.push(if rng.chance(10) {
                    "Greet members by name".into()
                } else {
                    String::new()
                });
            }
            csv.push_str(&(row.join(",") + "\n"));
        }
    }
    s.import_responses(&ctx, audit.id, ImportFormat::Csv, csv.into())
        .await
        .map_err(e)?;

    // 3. A subscription service's Cash Journey.
    let sub = s
        .create_client(
            &ctx,
            parse(json!({"name": "BoxFresh meal subscription", "industry": "subscription"}))?,
        )
        .await
        .map_err(e)?;
    clients.push((sub.name.clone(), sub.id));
    let params = |reach: f64, ctr: f64, conv: f64, refusal: f64, repeat: f64, cost: f64| {
        json!({"reach": reach, "ctr": ctr, "lead_rate": 0.3, "conversion": conv, "items_per_order": 1.0,
               "item_price": 4900.0, "refusal_rate": refusal, "repeat_purchases": repeat, "repeat_uplift": 0.05,
               "gross_margin": 0.35, "marketing_cost": cost})
    };
    let model = s
        .create_cash_model(
            &ctx,
            sub.id,
            parse(json!({"name": "2027 plan", "scenarios": {
                "min": params(200_000.0, 0.01, 0.02, 0.3, 1.0, 150_000.0),
                "base": params(300_000.0, 0.015, 0.03, 0.2, 2.5, 250_000.0),
                "max": params(400_000.0, 0.02, 0.04, 0.1, 4.0, 350_000.0)
            }}))?,
        )
        .await
        .map_err(e)?;
    let model_id = id_of(&model)?;
    s.put_cash_actuals(
        &ctx,
        model_id,
        "2026-10",
        parse(json!({"revenue": 1_450_000.0, "profit": 260_000.0}))?,
    )
    .await
    .map_err(e)?;
    // 4. A restaurant's purchases with JTBD labelling rules (local times,
    //    Moscow).
    let rest = s
        .create_client(&ctx, parse(json!({"name": "Tarelka restaurant", "industry": "restaurant", "timezone": "Europe/Moscow"}))?)
        .await
        .map_err(e)?;
    clients.push((rest.name.clone(), rest.id));
    s.put_jtbd_rules(
        &ctx,
        rest.id,
        parse(json!({"rules": [
            {"label": "business_lunch", "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": {"from": 12, "to": 14}},
            {"label": "family_dinner", "party_size": {"min": 3}},
            {"label": "date", "party_size": {"min": 2, "max": 2}, "hours": {"from": 18, "to": 23}}
        ]}))?,
    )
    .await
    .map_err(e)?;
    let mut csv =
        String::from("external_id,customer_ref,purchased_at,amount,items,party_size,channel\n");
    let start = today - chrono::Duration::days(365);
    let mut n = 0;
    for c in 0..300 {
        // Each guest has a habit, and some drift from lunches to dinners.
        let habit = rng.below(3);
        let visits = 1 + rng.below(20);
        for _ in 0..visits {
            let day = start + chrono::Duration::days(rng.below(365) as i64);
            let drift = day > today - chrono::Duration::days(120) && c % 5 == 0;
            let (hour, party) = match (habit, drift) {
                (0, false) => (12 + rng.below(3), 1),
                (0, true) | (1, _) => (18 + rng.below(4), 3 + rng.below(3)),
                _ => (19 + rng.below(3), 2),
            };
            let amount = 800 + rng.below(600) * party;
            csv.push_str(&format!(
                "r{n},guest-{c},{}T{hour:02}:{:02}:00+03:00,{amount},{},{party},hall\n",
                day.format("%Y-%m-%d"),
                rng.below(60),
                1 + rng.below(4)
            ));
            n += 1;
        }
    }
    s.import_purchases(&ctx, rest.id, ImportFormat::Csv, csv.into())
        .await
        .map_err(e)?;
    // 5. Funnels: channel figures, scored contacts, a model, a chain.
    clients.push(funnel::funnel_client(s, &ctx, &mut rng, today).await?);
    Ok(Some(Demo {
        agency_id: out.agency.id,
        clients,
    }))
}
