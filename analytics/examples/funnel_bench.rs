//! The §7 model at volume (issue 12): fitting the logistic model on 100,000
//! labelled contacts with 50 features (5 categorical attributes of 8 levels,
//! 10 numeric), and qualifying 1,000,000 contacts in memory with 10 rules
//! and that model. Prints figures.
//!
//! ```text
//! cargo run --release -p analytics --example funnel_bench
//! ```
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use analytics::funnel::{
    AttrValue, ContactFacts, EventKind, RuleCondition, ScoreRule, Tier, TierThresholds, fit,
    qualify, tier_of,
};
use chrono::{Duration, TimeZone, Utc};

struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn contact(rng: &mut Lcg) -> (BTreeMap<String, AttrValue>, bool) {
    let mut a = BTreeMap::new();
    let mut z = -0.5;
    for c in 0..5 {
        let level = (rng.unit() * 8.0) as usize;
        z += (level as f64 - 3.5) * 0.1 * (c as f64 + 1.0) / 5.0;
        a.insert(format!("cat{c}"), AttrValue::Text(format!("level{level}")));
    }
    for k in 0..10 {
        let x = rng.unit() * 100.0;
        z += (x - 50.0) / 50.0 * if k % 2 == 0 { 0.3 } else { -0.2 };
        a.insert(format!("num{k}"), AttrValue::Number(x));
    }
    let y = rng.unit() < 1.0 / (1.0 + (-z).exp());
    (a, y)
}

fn main() {
    let mut rng = Lcg(42);
    let labelled: Vec<(BTreeMap<String, AttrValue>, bool)> =
        (0..100_000).map(|_| contact(&mut rng)).collect();
    let refs: Vec<(&BTreeMap<String, AttrValue>, bool)> =
        labelled.iter().map(|(a, y)| (a, *y)).collect();
    let mut fits = Vec::new();
    let mut model = None;
    for _ in 0..5 {
        let t = Instant::now();
        model = Some(fit(&refs, 1.0).expect("fit"));
        fits.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    fits.sort_by(f64::total_cmp);
    let model = model.unwrap();
    println!(
        "model fit, 100,000 labelled contacts, {} features: median {:.1} ms (min {:.1}, max {:.1}); {} Newton steps, gradient norm {:.1e}",
        model.weights.len(),
        fits[2],
        fits[0],
        fits[4],
        model.iterations,
        model.gradient_norm
    );

    let now = Utc.with_ymd_and_hms(2026, 3, 10, 12, 0, 0).unwrap();
    let mut rules = Vec::new();
    for k in 0..4 {
        rules.push(ScoreRule {
            name: format!("num{k} high"),
            points: 10.0,
            when: RuleCondition::AttrWithin {
                key: format!("num{k}"),
                min: Some(60.0),
                max: None,
            },
        });
    }
    for c in 0..3 {
        rules.push(ScoreRule {
            name: format!("cat{c} level1"),
            points: 15.0,
            when: RuleCondition::AttrEquals {
                key: format!("cat{c}"),
                value: "level1".into(),
            },
        });
    }
    rules.push(ScoreRule {
        name: "opened".into(),
        points: 5.0,
        when: RuleCondition::Event {
            event: EventKind::Opened,
            within_days: 14,
        },
    });
    rules.push(ScoreRule {
        name: "clicked".into(),
        points: 10.0,
        when: RuleCondition::Event {
            event: EventKind::Clicked,
            within_days: 7,
        },
    });
    rules.push(ScoreRule {
        name: "bought".into(),
        points: 30.0,
        when: RuleCondition::Purchase { within_days: 30 },
    });
    let contacts: Vec<ContactFacts> = (0..1_000_000)
        .map(|i| {
            let (attributes, _) = contact(&mut rng);
            let ago = |d: i64| Some(now - Duration::hours(d));
            ContactFacts {
                attributes,
                answers: Vec::new(),
                last_event: [None, ago(i % 500), ago(i % 300)],
                last_purchase: (i % 7 == 0).then(|| now - Duration::days(i % 60)),
            }
        })
        .collect();
    let thresholds = TierThresholds::default();
    let t = Instant::now();
    let mut hot = 0usize;
    for c in &contacts {
        let (_, _, tier) = tier_of(&rules, Some(&model), &thresholds, c, now);
        hot += usize::from(tier == Tier::Hot);
    }
    println!(
        "rescore 1,000,000 contacts in memory (10 rules, {}-feature model): {:.0} ms ({hot} hot)",
        model.weights.len(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let explained: usize = contacts[..100_000]
        .iter()
        .map(|c| {
            qualify(&rules, Some(&model), &thresholds, c, now)
                .features
                .len()
        })
        .sum();
    println!(
        "qualify with explanation, 100,000 contacts: {:.0} ms ({explained} features listed)",
        t.elapsed().as_secs_f64() * 1000.0
    );
}
