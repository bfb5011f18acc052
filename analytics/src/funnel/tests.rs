use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, TimeZone, Utc};

use super::*;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

#[allow(clippy::too_many_arguments)]
fn row(
    d: &str,
    channel: &str,
    funnel: FunnelType,
    spend: f64,
    imp: u64,
    clicks: u64,
    contacts: u64,
    leads: u64,
) -> ChannelDay {
    ChannelDay {
        day: day(d),
        channel: channel.into(),
        funnel,
        spend,
        impressions: imp,
        clicks,
        contacts,
        leads,
        mentions: 1,
        brand_searches: 2,
    }
}

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("a figure, not null");
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn channel_figures_by_hand() {
    let rows = vec![
        row(
            "2026-03-02",
            "rtb",
            FunnelType::Reach,
            100.0,
            50_000,
            400,
            40,
            0,
        ),
        row(
            "2026-03-03",
            "rtb",
            FunnelType::Reach,
            50.0,
            25_000,
            100,
            10,
            0,
        ),
        row(
            "2026-03-03",
            "search",
            FunnelType::Warming,
            300.0,
            0,
            0,
            0,
            6,
        ),
        // Outside the range: ignored.
        row("2026-04-01", "rtb", FunnelType::Reach, 1e6, 1, 1, 1, 1),
    ];
    let r = channel_report(&rows, day("2026-03-01"), day("2026-03-31"));
    // Total: spend 450, impressions 75,000, clicks 500, contacts 50, leads 6.
    assert_eq!(r.total.spend, 450.0);
    assert_eq!(r.total.mentions, 3);
    assert_eq!(r.total.brand_searches, 6);
    close(r.total.cpm, 450.0 / 75_000.0 * 1000.0); // 6.0
    close(r.total.ctr, 500.0 / 75_000.0);
    close(r.total.cpc, 0.9);
    close(r.total.cost_per_contact, 9.0);
    close(r.total.cpa, 75.0);
    let rtb = &r.by_channel[0];
    assert_eq!(rtb.channel, "rtb");
    close(rtb.figures.cpm, 2.0); // 150 / 75,000 · 1000
    close(rtb.figures.ctr, 500.0 / 75_000.0);
    close(rtb.figures.cpc, 0.3);
    close(rtb.figures.cost_per_contact, 3.0);
    assert_eq!(rtb.figures.cpa, None, "no leads: CPA is null");
    let search = &r.by_channel[1];
    assert_eq!(search.figures.cpm, None);
    assert_eq!(search.figures.ctr, None);
    assert_eq!(search.figures.cpc, None);
    assert_eq!(search.figures.cost_per_contact, None);
    close(search.figures.cpa, 50.0);
    assert_eq!(r.by_funnel.len(), 2);
    assert_eq!(r.by_funnel[0].funnel, FunnelType::Reach);
    assert_eq!(r.by_funnel[1].figures.leads, 6);
    // March 2026: Mondays Feb 23 (the 1st is a Sunday) to Mar 30: 6 weeks.
    assert_eq!(r.weeks.len(), 6);
    assert_eq!(r.weeks[0].week_start, day("2026-02-23"));
    assert_eq!((r.weeks[1].iso_year, r.weeks[1].iso_week), (2026, 10));
    assert_eq!(r.weeks[1].figures.spend, 450.0);
    assert_eq!(r.weeks[2].figures, ChannelTotals::default().figures());
}

#[test]
fn empty_range_has_null_ratios() {
    let r = channel_report(&[], day("2026-03-01"), day("2026-03-01"));
    assert_eq!(r.total.cpm, None);
    assert_eq!(r.total.cpa, None);
    assert_eq!(r.weeks.len(), 1);
    assert_eq!(r.trend.week_start, None, "no full week in one day");
}

#[test]
fn trend_last_full_week_against_the_four_before() {
    // Weeks from Monday 2026-01-05; spend 100, 200, 300, 400 then 500;
    // impressions 1000 each week, leads 1, 2, 0, 1 then 5.
    let leads = [1, 2, 0, 1, 5];
    let rows: Vec<ChannelDay> = (0..5)
        .map(|w| {
            let d = day("2026-01-05") + Duration::days(7 * w + 2);
            ChannelDay {
                day: d,
                ..row(
                    "2026-01-01",
                    "rtb",
                    FunnelType::Reach,
                    100.0 * (w + 1) as f64,
                    1000,
                    10,
                    0,
                    leads[w as usize],
                )
            }
        })
        .collect();
    // The range ends on a Saturday: the 6th week (Feb 9-15) is not full.
    let r = channel_report(&rows, day("2026-01-05"), day("2026-02-14"));
    assert_eq!(r.trend.week_start, Some(day("2026-02-02")));
    let b = r.trend.baseline.unwrap();
    assert_eq!(b.spend, 250.0);
    assert_eq!(b.leads, 1.0);
    close(b.cpa, 250.0);
    close(r.trend.change.spend, 500.0 / 250.0 - 1.0);
    close(r.trend.change.impressions, 0.0);
    close(r.trend.change.cpm, 500.0 / 250.0 - 1.0);
    close(r.trend.change.cpa, (500.0 / 5.0) / 250.0 - 1.0);
    assert_eq!(r.trend.change.contacts, None, "baseline 0 contacts");
    assert_eq!(r.trend.change.cost_per_contact, None);
    // Only 3 full weeks before the last: no baseline.
    let r = channel_report(&rows, day("2026-01-12"), day("2026-02-08"));
    assert_eq!(r.trend.week_start, Some(day("2026-02-02")));
    assert_eq!(r.trend.baseline, None);
}

#[test]
fn a_funnel_without_spend_reports_zero_not_minus_zero() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let rows = funnel_report(&[], d("2026-11-01"), d("2026-11-30"), &[]);
    assert!(rows.iter().all(|r| r.spend.is_sign_positive()), "{rows:?}");
}

#[test]
fn funnel_report_by_hand() {
    let rows = vec![
        row("2026-03-02", "rtb", FunnelType::Reach, 1000.0, 0, 0, 0, 0),
        row("2026-03-02", "mail", FunnelType::Warming, 200.0, 0, 0, 0, 0),
    ];
    let counts = [
        FunnelCounts {
            funnel: FunnelType::Reach,
            contacts: 400,
            qualified: 100,
            enrolled: 80,
            converted: 8,
        },
        FunnelCounts {
            funnel: FunnelType::Warming,
            contacts: 0,
            qualified: 0,
            enrolled: 0,
            converted: 0,
        },
    ];
    let r = funnel_report(&rows, day("2026-03-01"), day("2026-03-31"), &counts);
    assert_eq!(r.len(), 3);
    let reach = &r[0];
    close(reach.qualified_rate, 0.25);
    close(reach.enrolled_rate, 0.8);
    close(reach.converted_rate, 0.1);
    close(reach.spend_per_contact, 2.5);
    close(reach.spend_per_qualified, 10.0);
    close(reach.spend_per_conversion, 125.0);
    let warming = &r[1];
    assert_eq!(warming.spend, 200.0);
    assert_eq!(warming.qualified_rate, None);
    assert_eq!(warming.spend_per_conversion, None);
    assert_eq!(r[2].funnel, FunnelType::Reverse);
    assert_eq!(r[2].spend, 0.0);
}

fn attrs(pairs: &[(&str, AttrValue)]) -> BTreeMap<String, AttrValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn rules() -> Vec<ScoreRule> {
    vec![
        ScoreRule {
            name: "pro plan".into(),
            points: 25.0,
            when: RuleCondition::AttrEquals {
                key: "plan".into(),
                value: "pro".into(),
            },
        },
        ScoreRule {
            name: "works in retail".into(),
            points: 10.0,
            when: RuleCondition::AttrContains {
                key: "industry".into(),
                value: "RETAIL".into(),
            },
        },
        ScoreRule {
            name: "big team".into(),
            points: 15.0,
            when: RuleCondition::AttrWithin {
                key: "seats".into(),
                min: Some(10.0),
                max: None,
            },
        },
        ScoreRule {
            name: "wants a demo".into(),
            points: 20.0,
            when: RuleCondition::Answer {
                question_key: "next".into(),
                value: "demo".into(),
            },
        },
        ScoreRule {
            name: "clicked this week".into(),
            points: 12.0,
            when: RuleCondition::Event {
                event: EventKind::Clicked,
                within_days: 7,
            },
        },
        ScoreRule {
            name: "bought this month".into(),
            points: 30.0,
            when: RuleCondition::Purchase { within_days: 30 },
        },
        ScoreRule {
            name: "unsure".into(),
            points: -5.0,
            when: RuleCondition::Answer {
                question_key: "next".into(),
                value: "later".into(),
            },
        },
    ]
}

#[test]
fn rule_scores_tiers_and_explanations_by_hand() {
    let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
    let mut c = ContactFacts {
        attributes: attrs(&[
            ("plan", AttrValue::Text("pro".into())),
            ("industry", AttrValue::Text("Food retail".into())),
            ("seats", AttrValue::Number(10.0)),
        ]),
        answers: vec![
            ("next".into(), "demo".into()),
            ("next".into(), "later".into()),
        ],
        last_event: [None, None, Some(now - Duration::days(7))],
        last_purchase: Some(now - Duration::days(31)),
    };
    let (score, hits) = rule_score(&rules(), &c, now);
    // 25 + 10 + 15 + 20 + 12 − 5 = 77; the purchase is 31 days old.
    assert_eq!(score, 77.0);
    let names: Vec<&str> = hits.iter().map(|h| h.rule.as_str()).collect();
    assert_eq!(
        names,
        [
            "pro plan",
            "works in retail",
            "big team",
            "wants a demo",
            "clicked this week",
            "unsure"
        ]
    );
    let t = TierThresholds::default();
    let q = qualify(&rules(), None, &t, &c, now);
    assert_eq!((q.tier, q.probability), (Tier::Hot, None));
    // A click 8 days ago no longer counts; seats 9 misses the range: 50 → warm.
    c.last_event[EventKind::Clicked.index()] = Some(now - Duration::days(8));
    c.attributes.insert("seats".into(), AttrValue::Number(9.0));
    assert_eq!(qualify(&rules(), None, &t, &c, now).score, 50.0);
    assert_eq!(qualify(&rules(), None, &t, &c, now).tier, Tier::Warm);
    // An event in the future (clock skew) does not count either.
    c.last_event[EventKind::Clicked.index()] = Some(now + Duration::days(1));
    assert_eq!(rule_score(&rules(), &c, now).0, 50.0);
    // Boundaries: 60 is hot, 30 warm, 29.9 cold; p 0.6 hot, 0.3 warm.
    assert_eq!(t.tier(60.0, None), Tier::Hot);
    assert_eq!(t.tier(30.0, None), Tier::Warm);
    assert_eq!(t.tier(29.9, None), Tier::Cold);
    assert_eq!(
        t.tier(99.0, Some(0.29)),
        Tier::Cold,
        "a model overrides the score"
    );
    assert_eq!(t.tier(0.0, Some(0.3)), Tier::Warm);
    assert_eq!(t.tier(0.0, Some(0.6)), Tier::Hot);
    // A hand-made model: logit = −1 + 2·[plan=pro] − 0.5·z(seats), z = (9 − 5) / 2.
    let model = Model {
        space: FeatureSpace::new(vec![
            Feature::Level {
                key: "plan".into(),
                value: "basic".into(),
            },
            Feature::Level {
                key: "plan".into(),
                value: "pro".into(),
            },
            Feature::Numeric {
                key: "seats".into(),
                mean: 5.0,
                sd: 2.0,
            },
        ]),
        intercept: -1.0,
        weights: vec![3.0, 2.0, -0.5],
        lambda: 1.0,
        iterations: 0,
        gradient_norm: 0.0,
        labelled: 0,
        converted: 0,
    };
    let q = qualify(&rules(), Some(&model), &t, &c, now);
    let p = 1.0 / (1.0 + (-(-1.0f64 + 2.0 - 1.0)).exp());
    assert!((q.probability.unwrap() - p).abs() < 1e-15);
    assert_eq!(q.tier, Tier::Warm); // p = 0.5
    assert_eq!(q.features.len(), 2);
    assert_eq!(
        (q.features[0].feature.as_str(), q.features[0].contribution),
        ("plan=pro", 2.0)
    );
    assert_eq!(
        (q.features[1].feature.as_str(), q.features[1].contribution),
        ("seats", -1.0)
    );
    // Unseen levels and missing numbers contribute nothing.
    let other = attrs(&[("plan", AttrValue::Text("team".into()))]);
    assert!((model.probability(&other) - 1.0 / (1.0 + 1f64.exp())).abs() < 1e-15);
}

#[test]
fn rules_parse_from_json_and_refuse_unknown_fields() {
    let r: ScoreRule = serde_json::from_str(
        r#"{"name":"n","points":5,"when":{"kind":"event","event":"opened","within_days":14}}"#,
    )
    .unwrap();
    assert_eq!(
        r.when,
        RuleCondition::Event {
            event: EventKind::Opened,
            within_days: 14
        }
    );
    assert!(
        serde_json::from_str::<RuleCondition>(r#"{"kind":"purchase","within_days":1,"x":1}"#)
            .is_err()
    );
}

/// The generator of scripts/logreg_reference.py, draw for draw.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn reference_dataset() -> Vec<(BTreeMap<String, AttrValue>, bool)> {
    let mut rng = Lcg(7);
    let plans = ["basic", "pro", "team"];
    let sources = ["ads", "blog", "event", "referral"];
    (0..400)
        .map(|_| {
            let mut a = BTreeMap::new();
            let mut z = -1.0;
            if rng.next() < 0.9 {
                let plan = plans[(rng.next() * 3.0) as usize];
                z += match plan {
                    "basic" => -0.5,
                    "pro" => 0.7,
                    _ => 1.2,
                };
                a.insert("plan".to_string(), AttrValue::Text(plan.into()));
            }
            let source = sources[(rng.next() * 4.0) as usize];
            z += match source {
                "ads" => -0.3,
                "blog" => 0.2,
                "event" => 0.5,
                _ => 0.9,
            };
            a.insert("source".to_string(), AttrValue::Text(source.into()));
            let mut visits = 10.0;
            if rng.next() < 0.8 {
                visits = (rng.next() * 30.0).floor();
                a.insert("visits".to_string(), AttrValue::Number(visits));
            }
            let age = 18.0 + (rng.next() * 50.0).floor();
            a.insert("age".to_string(), AttrValue::Number(age));
            let vip = rng.next() < 0.2;
            a.insert("vip".to_string(), AttrValue::Bool(vip));
            z += 0.08 * (visits - 10.0) - 0.02 * (age - 40.0) + if vip { 0.8 } else { 0.0 };
            let y = rng.next() < 1.0 / (1.0 + (-z).exp());
            (a, y)
        })
        .collect()
}

/// scikit-learn 1.9.1, `LogisticRegression(C=1, penalty="l2",
/// solver="newton-cholesky", tol=1e-14)` on the same 400 contacts (228
/// converted), encoded independently in Python, printed by
/// `python3 scripts/logreg_reference.py`; its gradient norm there was 4.5e-15.
const SKLEARN_INTERCEPT: f64 = 0.847108645012;
const SKLEARN_COEF: &[(&str, f64)] = &[
    ("age", -0.160867345681),
    ("plan=basic", -0.971383832119),
    ("plan=pro", -0.192905585174),
    ("plan=team", 0.658719571720),
    ("source=ads", -0.333866604566),
    ("source=blog", -0.161002087710),
    ("source=event", 0.206102329523),
    ("source=referral", 0.288766362753),
    ("vip=false", -0.604529212797),
    ("vip=true", 0.604529212797),
    ("visits", 0.655198494081),
];

#[test]
fn model_equals_scikit_learn() {
    let data = reference_dataset();
    let labelled: Vec<(&BTreeMap<String, AttrValue>, bool)> =
        data.iter().map(|(a, y)| (a, *y)).collect();
    let m = fit(&labelled, 1.0).unwrap();
    let names: Vec<String> = m.space.features.iter().map(Feature::name).collect();
    let expected: Vec<&str> = SKLEARN_COEF.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected);
    assert!(
        m.gradient_norm < GRADIENT_TOLERANCE,
        "gradient norm {}",
        m.gradient_norm
    );
    assert!(
        (m.intercept - SKLEARN_INTERCEPT).abs() < 1e-6,
        "intercept {} vs {}",
        m.intercept,
        SKLEARN_INTERCEPT
    );
    for ((name, want), got) in SKLEARN_COEF.iter().zip(&m.weights) {
        assert!((got - want).abs() < 1e-6, "{name}: {got} vs {want}");
    }
}

#[test]
fn model_needs_enough_labels_and_both_outcomes() {
    let a = attrs(&[("plan", AttrValue::Text("pro".into()))]);
    let few: Vec<(&BTreeMap<String, AttrValue>, bool)> =
        (0..199).map(|i| (&a, i % 2 == 0)).collect();
    assert_eq!(fit(&few, 1.0), Err(FitError::TooFew { labelled: 199 }));
    let same: Vec<(&BTreeMap<String, AttrValue>, bool)> = (0..300).map(|_| (&a, true)).collect();
    assert_eq!(
        fit(&same, 1.0),
        Err(FitError::OneOutcome { converted: true })
    );
}

#[test]
fn model_fit_is_the_penalised_optimum_on_separable_data() {
    // Perfectly separable by one level: the penalty keeps w finite.
    let pro = attrs(&[
        ("plan", AttrValue::Text("pro".into())),
        ("sd0", AttrValue::Number(3.0)),
    ]);
    let basic = attrs(&[
        ("plan", AttrValue::Text("basic".into())),
        ("sd0", AttrValue::Number(3.0)),
    ]);
    let labelled: Vec<(&BTreeMap<String, AttrValue>, bool)> = (0..300)
        .map(|i| {
            if i % 3 == 0 {
                (&pro, true)
            } else {
                (&basic, false)
            }
        })
        .collect();
    let m = fit(&labelled, 1.0).unwrap();
    // sd 0 → feature dropped; two levels remain.
    assert_eq!(m.space.len(), 2);
    assert!(m.weights.iter().all(|w| w.is_finite()));
    assert!(m.gradient_norm < GRADIENT_TOLERANCE);
    assert!(m.probability(&pro) > 0.95 && m.probability(&basic) < 0.05);
}
