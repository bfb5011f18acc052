//! In-memory analytics at volume (issue 3): a 14-question panel over
//! 1,000,000 responses (whole and segment-filtered), folding one response
//! in, and RFM + migration + LTV over 1,000,000 purchases. Prints figures.
//!
//! ```text
//! cargo run --release -p analytics --example bench
//! ```
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Instant;

use analytics::jtbd::{JtbdConfig, LabelRule, LabelRules, PeriodKind, Purchase, compute};
use analytics::panel::{Cell, CompiledFilter, Condition, Dataset, Kind, PanelQuestion, Role};
use chrono::NaiveDate;

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        last = Some(f());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    (median_ms(times), last.expect("at least one run"))
}

fn questions() -> Vec<PanelQuestion> {
    let choice = |key: &str, n: usize, role: Role| PanelQuestion {
        key: key.into(),
        kind: Kind::Single {
            options: (0..n).map(|i| format!("o{i}")).collect(),
        },
        role,
        factor: None,
    };
    let multi = |key: &str, n: usize| PanelQuestion {
        key: key.into(),
        kind: Kind::Multi {
            options: (0..n).map(|i| format!("o{i}")).collect(),
        },
        role: Role::Other,
        factor: None,
    };
    let rating = |key: &str| PanelQuestion {
        key: key.into(),
        kind: Kind::Rating,
        role: Role::ChoiceFactorImportance,
        factor: Some((key.into(), key.into())),
    };
    vec![
        choice("buy_for", 4, Role::SegmentAttribute),
        choice("city", 8, Role::SegmentAttribute),
        choice("jtbd", 5, Role::Jtbd),
        choice("age", 6, Role::SegmentAttribute),
        multi("source", 6),
        multi("fears", 5),
        rating("trust"),
        rating("price"),
        rating("place"),
        rating("layout"),
        rating("service"),
        PanelQuestion {
            key: "nps".into(),
            kind: Kind::Nps,
            role: Role::Nps,
            factor: None,
        },
        PanelQuestion {
            key: "budget".into(),
            kind: Kind::Number,
            role: Role::Spend,
            factor: None,
        },
        PanelQuestion {
            key: "advice".into(),
            kind: Kind::Text,
            role: Role::OpenAnswer,
            factor: None,
        },
    ]
}

fn row(rng: &mut Lcg) -> Vec<Cell> {
    let advice = [
        "More parking",
        "Faster paperwork",
        "more parking!",
        "Show progress online",
    ];
    vec![
        Cell::Choice(rng.below(4) as u16),
        Cell::Choice(rng.below(8) as u16),
        Cell::Choice(rng.below(5) as u16),
        Cell::Choice(rng.below(6) as u16),
        Cell::Multi(rng.below(64)),
        Cell::Multi(rng.below(32)),
        Cell::Num((1 + rng.below(5)) as f64),
        Cell::Num((1 + rng.below(5)) as f64),
        Cell::Num((1 + rng.below(5)) as f64),
        Cell::Num((1 + rng.below(5)) as f64),
        Cell::Num((1 + rng.below(5)) as f64),
        Cell::Num(rng.below(11) as f64),
        Cell::Num((2_000_000 + rng.below(8_000_000)) as f64),
        if rng.below(10) == 0 {
            Cell::Text(advice[rng.below(4) as usize].into())
        } else {
            Cell::Blank
        },
    ]
}

fn main() {
    let n = 1_000_000usize;
    let mut rng = Lcg(7);
    let t = Instant::now();
    let mut ds = Dataset::new(questions());
    for i in 0..n {
        ds.push(i as i64, row(&mut rng));
    }
    let build_ms = t.elapsed().as_secs_f64() * 1000.0;
    let (whole_ms, whole) = time(5, || ds.fold_all().finish(&ds, n as u64));
    let conds = vec![
        Condition {
            question: "buy_for".into(),
            values: Some(vec!["o1".into()]),
            min: None,
            max: None,
        },
        Condition {
            question: "budget".into(),
            values: None,
            min: Some(3_000_000.0),
            max: Some(5_000_000.0),
        },
        Condition {
            question: "source".into(),
            values: Some(vec!["o0".into()]),
            min: None,
            max: None,
        },
    ];
    let filter = CompiledFilter::compile(&ds, &conds).expect("filter fits");
    let (seg_ms, seg) = time(5, || ds.fold_rows(ds.select(&filter)).finish(&ds, n as u64));
    let (select_ms, selected) = time(5, || ds.select(&filter));
    let (seg_fold_ms, _) = time(5, || ds.fold_rows(selected.iter().copied()));
    // Folding one new response into a stored state.
    let mut state = ds.fold_all();
    let mut one = ds.clone();
    one.push(n as i64, row(&mut rng));
    let (fold_one_ms, _) = time(101, || state.add_row(&one, n));
    println!("panel, 14 questions × {n} responses (columnar, in memory):");
    println!("  build dataset from cells   {build_ms:8.1} ms");
    println!(
        "  whole panel                {whole_ms:8.1} ms (median of 5; n = {})",
        whole.n
    );
    println!(
        "  segment panel (3 conds)    {seg_ms:8.1} ms (median of 5; n = {})",
        seg.n
    );
    println!("    of which selecting rows  {select_ms:8.1} ms, folding them {seg_fold_ms:.1} ms");
    println!(
        "  fold in one response       {:8.4} ms (median of 101)",
        fold_one_ms
    );

    // 1M purchases of 100k customers over three years.
    let base = NaiveDate::from_ymd_opt(2024, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("valid date");
    let purchases: Vec<Purchase> = (0..n as u64)
        .map(|i| Purchase {
            customer_ref: format!("c{}", rng.below(100_000)),
            at: base + chrono::Duration::minutes(rng.below(3 * 365 * 24 * 60) as i64),
            amount: (300 + rng.below(5_000)) as f64,
            items: 1 + rng.below(6) as u32,
            party_size: 1 + rng.below(5) as u32,
            channel: if i % 3 == 0 {
                "delivery".into()
            } else {
                "hall".into()
            },
        })
        .collect();
    let rules: Vec<LabelRule> = serde_json::from_value(serde_json::json!([
        {"label": "business_lunch", "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri"], "hours": {"from": 12, "to": 14}},
        {"label": "family_dinner", "party_size": {"min": 3}},
        {"label": "date", "party_size": {"min": 2, "max": 2}, "hours": {"from": 18, "to": 23}}
    ]))
    .expect("rules parse");
    let rules = LabelRules::parse(rules).expect("rules valid");
    let cfg = JtbdConfig {
        as_of: NaiveDate::from_ymd_opt(2026, 12, 31).expect("valid date"),
        period: PeriodKind::Month,
        margin: 0.3,
    };
    let (jtbd_ms, rep) = time(3, || compute(&purchases, &rules, &cfg).expect("computes"));
    println!("JTBD value migration, {n} purchases of 100,000 customers, monthly:");
    println!(
        "  RFM + migration + churn + LTV + intervals {jtbd_ms:8.1} ms (median of 3; {} purchases counted)",
        rep.purchases
    );
    println!("peak memory (VmHWM) {:.0} MiB", peak_rss_mib());
}
