use super::*;
use chrono::Weekday;
use proptest::prelude::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn at(y: i32, m: u32, day: u32, h: u32) -> NaiveDateTime {
    d(y, m, day).and_hms_opt(h, 0, 0).unwrap()
}

fn buy(c: &str, when: NaiveDateTime, amount: f64, party: u32) -> Purchase {
    Purchase {
        customer_ref: c.into(),
        at: when,
        amount,
        items: 1,
        party_size: party,
        channel: "shop".into(),
    }
}

/// breakfast: 6–10 h; family: party ≥ 3; late: 22–2 h (wraps).
fn rules() -> LabelRules {
    LabelRules::parse(vec![
        LabelRule {
            hours: Some(HourRange { from: 6, to: 10 }),
            ..LabelRule::new("breakfast")
        },
        LabelRule {
            party_size: Some(CountRange {
                min: Some(3),
                max: None,
            }),
            ..LabelRule::new("family")
        },
        LabelRule {
            hours: Some(HourRange { from: 22, to: 2 }),
            ..LabelRule::new("late")
        },
    ])
    .unwrap()
}

fn config() -> JtbdConfig {
    JtbdConfig {
        as_of: d(2024, 3, 15),
        period: PeriodKind::Month,
        margin: 0.5,
    }
}

/// D = 15 March 2024, monthly.
/// A: Jan breakfast 10, family 50, breakfast 12 → Jan breakfast (2 vs 1);
///    Feb nothing; Mar family 40; a purchase on 20 Mar is after D.
/// B: Feb breakfast 20 (3 Feb), family 60 (4 Feb) → tie, latest → family;
///    Mar 1 07:00 party 3: breakfast (first match wins) 15.
/// C: 30 Dec 2023 12:00 other 30, then nothing.
/// E: 14 Mar breakfast 8 — first purchase in D's period.
/// F: only after D — not a customer at all.
fn sample() -> Vec<Purchase> {
    vec![
        buy("A", at(2024, 1, 5, 8), 10.0, 1),
        buy("A", at(2024, 1, 20, 19), 50.0, 4),
        buy("B", at(2024, 2, 4, 20), 60.0, 3),
        buy("A", at(2024, 1, 25, 9), 12.0, 1),
        buy("A", at(2024, 3, 10, 20), 40.0, 4),
        buy("A", at(2024, 3, 20, 9), 999.0, 1),
        buy("B", at(2024, 2, 3, 8), 20.0, 1),
        buy("B", at(2024, 3, 1, 7), 15.0, 3),
        buy("C", at(2023, 12, 30, 12), 30.0, 1),
        buy("E", at(2024, 3, 14, 9), 8.0, 1),
        buy("F", at(2024, 3, 16, 9), 5.0, 1),
    ]
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn stats<'a>(r: &'a JtbdReport, label: &str) -> &'a JtbdStats {
    r.jtbds.iter().find(|s| s.label == label).unwrap()
}

#[test]
fn rules_label_first_match_and_fall_back_to_other() {
    let r = rules();
    assert_eq!(r.labels(), ["breakfast", "family", "late", "other"]);
    // 07:00 with a party of 3 matches breakfast and family: first wins
    assert_eq!(
        r.label_of(&buy("x", at(2024, 3, 1, 7), 1.0, 3)),
        "breakfast"
    );
    assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 12), 1.0, 3)), "family");
    assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 23), 1.0, 1)), "late");
    assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 1), 1.0, 1)), "late");
    assert_eq!(r.label_of(&buy("x", at(2024, 3, 1, 3), 1.0, 1)), "other");
}

#[test]
fn rules_combine_weekday_amount_items_and_channel() {
    let r = LabelRules::parse(vec![LabelRule {
        weekdays: Some(vec![Weekday::Sat, Weekday::Sun]),
        items: Some(CountRange {
            min: Some(2),
            max: Some(5),
        }),
        amount: Some(AmountRange {
            min: Some(100.0),
            max: None,
        }),
        channels: Some(vec!["delivery".into()]),
        ..LabelRule::new("weekend feast")
    }])
    .unwrap();
    // 2 March 2024 is a Saturday
    let mut p = Purchase {
        items: 3,
        channel: "delivery".into(),
        ..buy("x", at(2024, 3, 2, 19), 150.0, 2)
    };
    assert_eq!(r.label_of(&p), "weekend feast");
    p.at = at(2024, 3, 4, 19); // Monday
    assert_eq!(r.label_of(&p), "other");
    p.at = at(2024, 3, 3, 19);
    p.items = 6;
    assert_eq!(r.label_of(&p), "other");
    p.items = 5;
    p.channel = "shop".into();
    assert_eq!(r.label_of(&p), "other");
}

#[test]
fn invalid_rules_are_rejected_with_their_position() {
    let bad = [
        LabelRule::new(" "),
        LabelRule::new("none"),
        LabelRule {
            weekdays: Some(vec![]),
            ..LabelRule::new("x")
        },
        LabelRule {
            hours: Some(HourRange { from: 3, to: 24 }),
            ..LabelRule::new("x")
        },
        LabelRule {
            items: Some(CountRange {
                min: Some(3),
                max: Some(2),
            }),
            ..LabelRule::new("x")
        },
        LabelRule {
            party_size: Some(CountRange {
                min: Some(3),
                max: Some(2),
            }),
            ..LabelRule::new("x")
        },
        LabelRule {
            amount: Some(AmountRange {
                min: Some(f64::NAN),
                max: None,
            }),
            ..LabelRule::new("x")
        },
        LabelRule {
            amount: Some(AmountRange {
                min: Some(10.0),
                max: Some(5.0),
            }),
            ..LabelRule::new("x")
        },
        LabelRule {
            channels: Some(vec![]),
            ..LabelRule::new("x")
        },
    ];
    for rule in bad {
        let err = LabelRules::parse(vec![LabelRule::new("ok"), rule.clone()]).unwrap_err();
        assert_eq!(err.index, 1, "{rule:?}");
    }
}

#[test]
fn periods_number_consecutively_and_weeks_start_on_monday() {
    let m = PeriodKind::Month;
    assert_eq!(m.index(d(2024, 1, 31)) + 1, m.index(d(2024, 2, 1)));
    assert_eq!(m.index(d(2023, 12, 31)) + 1, m.index(d(2024, 1, 1)));
    assert_eq!(m.start(m.index(d(2024, 2, 17))), Some(d(2024, 2, 1)));
    let q = PeriodKind::Quarter;
    assert_eq!(q.index(d(2024, 3, 31)), q.index(d(2024, 1, 1)));
    assert_eq!(q.index(d(2024, 3, 31)) + 1, q.index(d(2024, 4, 1)));
    assert_eq!(q.start(q.index(d(2024, 11, 5))), Some(d(2024, 10, 1)));
    let w = PeriodKind::Week;
    // every day of 2020–2026 lies in the week starting on its ISO Monday
    let mut day = d(2020, 1, 1);
    while day < d(2027, 1, 1) {
        let iso = day.iso_week();
        let monday = NaiveDate::from_isoywd_opt(iso.year(), iso.week(), Weekday::Mon).unwrap();
        assert_eq!(w.start(w.index(day)), Some(monday), "{day}");
        day = day.succ_opt().unwrap();
    }
    // Sunday 3 Mar 2024 and Monday 4 Mar 2024 are consecutive weeks
    assert_eq!(w.index(d(2024, 3, 3)) + 1, w.index(d(2024, 3, 4)));
}

#[test]
fn rfm_scores_count_smaller_values() {
    // n = 4: 1 + floor(5·k/4) for k = 0, 1, 2, 3 → 1, 2, 3, 4
    assert_eq!(rfm_scores(&[8.0, 30.0, 95.0, 112.0]), vec![1, 2, 3, 4]);
    // ties: 1, 1 have 0 smaller → 1; 3 has 2 smaller → 1 + floor(10/4) = 3
    assert_eq!(rfm_scores(&[1.0, 1.0, 3.0, 7.0]), vec![1, 1, 3, 4]);
    // n = 5: k = 4 → 1 + floor(20/5) = 5
    assert_eq!(rfm_scores(&[1.0, 2.0, 3.0, 4.0, 5.0]), vec![1, 2, 3, 4, 5]);
    assert_eq!(rfm_scores(&[-0.0, 0.0]), vec![1, 1]);
    assert!(rfm_scores(&[]).is_empty());
}

#[test]
fn rfm_segments_follow_the_table_in_order() {
    use RfmSegment::*;
    // rows R = 5..1, columns F = 1..5
    let table = [
        [
            New,
            PotentialLoyalist,
            PotentialLoyalist,
            Champions,
            Champions,
        ],
        [
            Promising,
            PotentialLoyalist,
            PotentialLoyalist,
            Champions,
            Champions,
        ],
        [AboutToSleep, NeedAttention, NeedAttention, Loyal, Loyal],
        [Hibernating, Hibernating, AtRisk, AtRisk, CantLose],
        [Lost, Lost, AtRisk, AtRisk, CantLose],
    ];
    for (i, row) in table.iter().enumerate() {
        for (j, &want) in row.iter().enumerate() {
            let (r, f) = (5 - i as u8, j as u8 + 1);
            assert_eq!(rfm_segment(r, f), want, "R{r} F{f}");
        }
    }
}

/// (customer, R, F, M, R score, F score, M score, segment)
type RfmRow<'a> = (&'a str, i64, u64, f64, u8, u8, u8, RfmSegment);

#[test]
fn rfm_per_customer_by_hand() {
    let rep = compute(&sample(), &rules(), &config()).unwrap();
    let got: Vec<RfmRow> = rep
        .customers
        .iter()
        .map(|c| {
            (
                c.customer_ref.as_str(),
                c.recency_days,
                c.frequency,
                c.monetary,
                c.r_score,
                c.f_score,
                c.m_score,
                c.segment,
            )
        })
        .collect();
    // R: A 15 Mar − 10 Mar = 5; B − 1 Mar = 14; C 30 Dec → 1 + 31 + 29 +
    // 15 = 76; E 1. g = −R: −5, −14, −76, −1 → smaller: 2, 1, 0, 3 →
    // scores 1 + floor(5k/4) = 3, 2, 1, 4.
    // F: 4, 3, 1, 1 → smaller 3, 2, 0, 0 → 4, 3, 1, 1 (tie).
    // M: 10+50+12+40 = 112, 20+60+15 = 95, 30, 8 → 4, 3, 2, 1.
    // Segments: A R3 F4 loyal; B R2 F3 at_risk; C R1 F1 lost;
    // E R4 F1 promising. F (after D only) is no customer.
    use RfmSegment::*;
    assert_eq!(
        got,
        vec![
            ("A", 5, 4, 112.0, 3, 4, 4, Loyal),
            ("B", 14, 3, 95.0, 2, 3, 3, AtRisk),
            ("C", 76, 1, 30.0, 1, 1, 2, Lost),
            ("E", 1, 1, 8.0, 4, 1, 1, Promising),
        ]
    );
    assert_eq!(rep.purchases, 9);
    assert_eq!(rep.current_period_start, Some(d(2024, 3, 1)));
}

#[test]
fn migration_matrix_by_hand() {
    let rep = compute(&sample(), &rules(), &config()).unwrap();
    let m = &rep.migration;
    assert_eq!(m.states, ["breakfast", "family", "late", "other", "none"]);
    // A: Jan breakfast → Feb none → Mar family
    // B: Feb family (tie → latest) → Mar breakfast
    // C: Dec other → Jan none → Feb none → Mar none
    // E: first purchase in March = D's period: no transition
    #[rustfmt::skip]
    let want = vec![
        //   bf fam late oth none
        vec![0, 0, 0, 0, 1], // breakfast
        vec![1, 0, 0, 0, 0], // family
        vec![0, 0, 0, 0, 0], // late
        vec![0, 0, 0, 0, 1], // other
        vec![0, 1, 0, 0, 2], // none
    ];
    assert_eq!(m.counts, want);
    // none row: 0, 1/3, 0, 0, 2/3; the empty late row stays 0
    assert!(close(m.probabilities[4][1], 1.0 / 3.0));
    assert!(close(m.probabilities[4][4], 2.0 / 3.0));
    assert_eq!(m.probabilities[2], vec![0.0; 5]);
    assert_eq!(m.probabilities[0][4], 1.0);
}

#[test]
fn a_customer_first_seen_in_the_current_period_adds_no_transition() {
    let only_e = vec![buy("E", at(2024, 3, 14, 9), 8.0, 1)];
    let rep = compute(&only_e, &rules(), &config()).unwrap();
    let total: u64 = rep.migration.counts.iter().flatten().sum();
    assert_eq!(total, 0);
    assert_eq!(stats(&rep, "breakfast").churn, None);
    assert_eq!(stats(&rep, "breakfast").ltv, None);
    assert_eq!(stats(&rep, "breakfast").customer_periods, 1);
}

#[test]
fn churn_and_ltv_by_hand() {
    let rep = compute(&sample(), &rules(), &config()).unwrap();
    // breakfast: before March only A-Jan, followed by none → churn 1.
    // Customer-periods: A-Jan 10+50+12 = 72, B-Mar 15, E-Mar 8 → mean
    // 95/3; LTV = 95/3 · 0.5 · min(36, 1/1) = 95/6.
    let b = stats(&rep, "breakfast");
    assert_eq!(
        (b.customer_periods, b.customer_periods_before_current),
        (3, 1)
    );
    assert_eq!(b.churn, Some(1.0));
    assert!(close(b.mean_period_revenue.unwrap(), 95.0 / 3.0));
    assert!(close(b.ltv.unwrap(), 95.0 / 6.0));
    // family: B-Feb (20+60 = 80) → breakfast, churn 0 → 36 periods;
    // A-Mar 40; mean 60; LTV = 60 · 0.5 · 36 = 1080.
    let f = stats(&rep, "family");
    assert_eq!(f.churn, Some(0.0));
    assert!(close(f.ltv.unwrap(), 1080.0));
    // other: C-Dec 30, churn 1 → 30 · 0.5 · 1 = 15.
    assert!(close(stats(&rep, "other").ltv.unwrap(), 15.0));
    // late: nothing at all
    let l = stats(&rep, "late");
    assert_eq!((l.churn, l.ltv, l.mean_period_revenue), (None, None, None));
    // purchases by label: breakfast 10, 12, 20, 15, 8 = 65 over 5
    assert_eq!((b.purchases, b.revenue), (5, 65.0));
    assert_eq!(lifetime_periods(0.02), 36.0);
    assert_eq!(lifetime_periods(0.25), 4.0);
}

#[test]
fn inter_purchase_intervals_by_hand() {
    let rep = compute(&sample(), &rules(), &config()).unwrap();
    // family (labelled by the later purchase): A 5 Jan 08 → 20 Jan 19 =
    // 15 + 11/24; A 25 Jan 09 → 10 Mar 20 = 45 + 11/24; B 3 Feb 08 → 4 Feb
    // 20 = 1.5 → median 15 + 11/24.
    let f = stats(&rep, "family");
    assert_eq!(f.intervals, 3);
    assert!(close(f.median_interval_days.unwrap(), 15.0 + 11.0 / 24.0));
    // breakfast: A 20 Jan 19 → 25 Jan 09 = 4 + 14/24; B 4 Feb 20 → 1 Mar
    // 07 = 26 − 13/24; even count → (4 + 14/24 + 26 − 13/24)/2 = 15 + 1/48
    let b = stats(&rep, "breakfast");
    assert_eq!(b.intervals, 2);
    assert!(close(b.median_interval_days.unwrap(), 15.0 + 1.0 / 48.0));
    assert_eq!(stats(&rep, "other").median_interval_days, None);
}

#[test]
fn median_of_even_count_is_mean_of_middle_values() {
    assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
    assert_eq!(median(&mut []), None);
}

#[test]
fn dominant_tie_goes_to_the_latest_purchase_even_at_equal_times() {
    // same timestamp: input order decides; at noon a party of 1 is
    // other, of 5 family; the family purchase comes last
    let t = at(2024, 2, 3, 12);
    let ps = vec![buy("X", t, 1.0, 1), buy("X", t, 1.0, 5)];
    let rep = compute(&ps, &rules(), &config()).unwrap();
    // Feb family → Mar none
    assert_eq!(rep.migration.counts[1][4], 1);
    // the interval of 0 days is labelled by the later (family) purchase
    assert_eq!(stats(&rep, "family").intervals, 1);
    assert_eq!(stats(&rep, "family").median_interval_days, Some(0.0));
    assert_eq!(stats(&rep, "breakfast").intervals, 0);
}

#[test]
fn non_finite_amounts_and_margins_are_rejected() {
    let ps = vec![buy("X", at(2024, 1, 1, 9), f64::NAN, 1)];
    assert!(matches!(
        compute(&ps, &rules(), &config()),
        Err(JtbdError::InvalidPurchase { index: 0, .. })
    ));
    // ...unless dated after D, where it is ignored
    let ps = vec![buy("X", at(2024, 4, 1, 9), f64::NAN, 1)];
    assert!(compute(&ps, &rules(), &config()).is_ok());
    let bad = JtbdConfig {
        margin: f64::INFINITY,
        ..config()
    };
    assert!(compute(&[], &rules(), &bad).is_err());
}

#[test]
fn weekly_periods_count_dormant_weeks() {
    let cfg = JtbdConfig {
        period: PeriodKind::Week,
        ..config()
    };
    // Friday 15 Mar 2024 is in the week of 11 Mar. One purchase on Monday
    // 26 Feb → weeks 26 Feb, 4 Mar, 11 Mar: breakfast → none → none.
    let rep = compute(&[buy("X", at(2024, 2, 26, 9), 5.0, 1)], &rules(), &cfg).unwrap();
    assert_eq!(rep.migration.counts[0][4], 1);
    assert_eq!(rep.migration.counts[4][4], 1);
    assert_eq!(rep.current_period_start, Some(d(2024, 3, 11)));
}

fn arb_purchases() -> impl Strategy<Value = Vec<Purchase>> {
    prop::collection::vec((0u8..8, 0i64..200 * 24, 0u32..5, 1u32..6, 1u32..50), 0..60).prop_map(
        |v| {
            v.into_iter()
                .map(|(c, hours, items, party, amount)| Purchase {
                    customer_ref: format!("c{c}"),
                    at: at(2023, 10, 1, 0) + chrono::TimeDelta::hours(hours),
                    amount: f64::from(amount),
                    items,
                    party_size: party,
                    channel: "shop".into(),
                })
                .collect()
        },
    )
}

proptest! {
    #[test]
    fn rfm_scores_are_in_range_and_equal_for_equal_values(
        values in prop::collection::vec(prop::sample::select(vec![0.0, 1.0, 2.5, 7.0, -3.0, 100.0]), 1..40)
    ) {
        let scores = rfm_scores(&values);
        for (i, &a) in values.iter().enumerate() {
            prop_assert!((1..=5).contains(&scores[i]));
            for (j, &b) in values.iter().enumerate() {
                if a == b {
                    prop_assert_eq!(scores[i], scores[j]);
                }
                if a < b {
                    prop_assert!(scores[i] <= scores[j]);
                }
            }
        }
    }

    #[test]
    fn migration_rows_sum_to_one_or_zero(ps in arb_purchases(), period in prop::sample::select(vec![PeriodKind::Week, PeriodKind::Month, PeriodKind::Quarter])) {
        let cfg = JtbdConfig { period, ..config() };
        let rep = compute(&ps, &rules(), &cfg).unwrap();
        for (row, counts) in rep.migration.probabilities.iter().zip(&rep.migration.counts) {
            let s: f64 = row.iter().sum();
            if counts.iter().sum::<u64>() == 0 {
                prop_assert_eq!(s, 0.0);
            } else {
                prop_assert!((s - 1.0).abs() < 1e-9);
            }
        }
        // one transition per consecutive pair of periods, first purchase → D
        let current = period.index(cfg.as_of);
        let mut first: HashMap<&str, i64> = HashMap::new();
        for p in ps.iter().filter(|p| p.at.date() <= cfg.as_of) {
            let k = period.index(p.at.date());
            first.entry(&p.customer_ref).and_modify(|f| *f = (*f).min(k)).or_insert(k);
        }
        let want: i64 = first.values().map(|&f| current - f).sum();
        let total: u64 = rep.migration.counts.iter().flatten().sum();
        prop_assert_eq!(total as i64, want);
        for c in &rep.customers {
            prop_assert!((1..=5).contains(&c.r_score));
            prop_assert!((1..=5).contains(&c.f_score));
            prop_assert!((1..=5).contains(&c.m_score));
        }
    }
}
