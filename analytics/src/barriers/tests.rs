use super::*;
use proptest::prelude::*;

fn close(actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "actual {actual:e}, expected {expected:e}"
    );
}

fn input(
    question: &str,
    option: &str,
    non_buyers: (u64, u64),
    buyers: Option<(u64, u64)>,
) -> BarrierInput {
    BarrierInput {
        question: question.into(),
        option: option.into(),
        non_buyers: Some(Tally {
            count: non_buyers.0,
            n: non_buyers.1,
        }),
        buyers: buyers.map(|(count, n)| Tally { count, n }),
    }
}

#[test]
fn wilson_interval_of_five_in_ten_matches_a_hand_computation() {
    // p = 0.5, z² = 3.841458820694124: centre (0.5 + z²/20)/(1 + z²/10) = 0.5,
    // half z·√(0.025 + z²/400)/(1 + z²/10) = 0.263406909487436
    let (lo, hi) = wilson(5, 10).unwrap();
    close(lo, 0.236593090512564, 1e-12);
    close(hi, 0.7634069094874361, 1e-12);
}

#[test]
fn wilson_interval_of_none_starts_at_zero_and_is_undefined_without_answers() {
    // k = 0: centre = half = (z²/20)/(1 + z²/10), so the low bound is 0.
    let (lo, hi) = wilson(0, 10).unwrap();
    assert_eq!(lo, 0.0);
    close(hi, 0.2775327998628892, 1e-12);
    assert_eq!(wilson(0, 0), None);
    assert_eq!(wilson(3, 2), None);
}

#[test]
fn excess_refusals_subtract_what_the_buyers_rate_predicts() {
    // 45 of 120 non-buyers vs 20 of 150 buyers: 45 − 120·(20/150) = 29.
    let nb = Some(Tally { count: 45, n: 120 });
    close(
        explained_refusals(nb, Some(Tally { count: 20, n: 150 })),
        29.0,
        1e-12,
    );
    // Rarer among non-buyers than among buyers: floored at 0.
    let rare = Some(Tally { count: 12, n: 120 });
    assert_eq!(
        explained_refusals(rare, Some(Tally { count: 18, n: 150 })),
        0.0
    );
    // No buyer comparison: the plain count.
    assert_eq!(explained_refusals(nb, None), 45.0);
    assert_eq!(explained_refusals(nb, Some(Tally { count: 0, n: 0 })), 45.0);
    assert_eq!(
        explained_refusals(None, Some(Tally { count: 3, n: 9 })),
        0.0
    );
}

#[test]
fn lift_uses_the_pooled_z_test_one_sided_with_the_unpooled_ci() {
    let out = analyse(&[input("why_not", "price", (45, 120), Some((20, 150)))]);
    let lift = out[0].lift.clone().unwrap();
    assert_eq!(lift.test, TestKind::TwoProportionZ);
    // p1 = 0.375, p2 = 2/15, difference = 0.241666…
    close(lift.difference, 0.375 - 2.0 / 15.0, 1e-15);
    // pooled p = 65/270: z = 0.241666…/√(p(1−p)(1/120 + 1/150)) = 4.6143…,
    // p = norm.sf(z); one barrier tested: q = p.
    close(lift.p_value.unwrap(), 1.9625047017637817e-06, 1e-15);
    assert_eq!(lift.q_value, lift.p_value);
    // se = √(0.375·0.625/120 + (2/15)(13/15)/150)
    let se = (0.375 * 0.625 / 120.0 + (2.0 / 15.0) * (13.0 / 15.0) / 150.0_f64).sqrt();
    close(lift.ci95_low, lift.difference - Z95 * se, 1e-12);
    close(lift.ci95_high, lift.difference + Z95 * se, 1e-12);
}

#[test]
fn lift_falls_back_to_fishers_exact_test_with_small_expected_counts() {
    // 1 of 2 vs 0 of 3: the hypergeometric P(X ≥ 1) with 1 success among 5,
    // 2 drawn, = 2/5.
    let out = analyse(&[input("q", "a", (1, 2), Some((0, 3)))]);
    let lift = out[0].lift.clone().unwrap();
    assert_eq!(lift.test, TestKind::FisherExact);
    close(lift.p_value.unwrap(), 0.4, 1e-12);
}

#[test]
fn no_lift_without_answering_buyers_and_ranking_ties_go_by_label() {
    let out = analyse(&[
        input("q", "zeta", (4, 10), None),
        input("q", "alpha", (4, 10), Some((0, 0))),
        input("p", "alpha", (4, 10), None),
    ]);
    let order: Vec<(&str, &str)> = out
        .iter()
        .map(|b| (b.question.as_str(), b.option.as_str()))
        .collect();
    assert_eq!(order, [("p", "alpha"), ("q", "alpha"), ("q", "zeta")]);
    assert!(out.iter().all(|b| b.lift.is_none()));
    assert_eq!(out.iter().map(|b| b.rank).collect::<Vec<_>>(), [1, 2, 3]);
    // The group that answered nothing has no share, no interval.
    let empty = out[1].buyers.clone().unwrap();
    assert_eq!((empty.share, empty.ci95_low), (None, None));
}

/// The values printed by `tests/reference/barriers_scipy.py` (SciPy 1.17.1,
/// `scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`,
/// `scipy.stats.norm.sf`, `scipy.stats.fisher_exact(alternative="greater")`,
/// `scipy.stats.false_discovery_control(method="bh")`) on its `DATASET`.
#[test]
fn scipy_reference_values() {
    struct Expected {
        question: &'static str,
        option: &'static str,
        nb_ci: (f64, f64),
        explained: f64,
        lift: Option<LiftValues>,
    }
    /// buyers' CI, test, difference and its CI, p, q
    type LiftValues = ((f64, f64), TestKind, f64, (f64, f64), f64, f64);
    use TestKind::{FisherExact as F, TwoProportionZ as Z};
    let expected = [
        Expected {
            question: "why_not",
            option: "price",
            nb_ci: (0.293524297864468, 0.46423049374020786),
            explained: 29.0,
            lift: Some((
                (0.0879980047055142, 0.196980174497742),
                Z,
                0.24166666666666667,
                (0.13938179332935996, 0.3439515400039734),
                1.9625047017637817e-06,
                9.81252350881891e-06,
            )),
        },
        Expected {
            question: "why_not",
            option: "location",
            nb_ci: (0.18109821656809566, 0.33441136664125615),
            explained: 7.599999999999998,
            lift: Some((
                (0.1324241548331916, 0.2565571983041364),
                Z,
                0.06333333333333332,
                (-0.03611718118965694, 0.1627838478563236),
                0.10399274647041762,
                0.17332124411736272,
            )),
        },
        Expected {
            question: "why_not",
            option: "trust",
            nb_ci: (0.023114364414465793, 0.10480288536236734),
            explained: 5.2,
            lift: Some((
                (0.001177801335017433, 0.03679283977481815),
                F,
                0.043333333333333335,
                (0.002221647123946277, 0.08444501954272039),
                0.03165274284088357,
                0.07913185710220892,
            )),
        },
        Expected {
            question: "main_reason",
            option: "parking",
            nb_ci: (0.16818032970623614, 0.6873262302663417),
            explained: 4.0,
            lift: None,
        },
        Expected {
            question: "main_reason",
            option: "price",
            nb_ci: (0.10779126740630102, 0.6032218525388546),
            explained: 2.166666666666667,
            lift: Some((
                (0.014865094404917123, 0.35387991114111694),
                F,
                0.21666666666666667,
                (-0.10756221260436166, 0.540895545937695),
                0.22556390977443608,
                0.28195488721804507,
            )),
        },
        Expected {
            question: "why_not",
            option: "timing",
            nb_ci: (0.05813359202601076, 0.166681741108952),
            explained: 0.0,
            lift: Some((
                (0.07726903087841025, 0.18170835484132797),
                Z,
                -0.01999999999999999,
                (-0.09473607646437734, 0.054736076464377365),
                0.6983341138540666,
                0.6983341138540666,
            )),
        },
    ];
    let out = analyse(&reference_dataset());
    assert_eq!(out.len(), expected.len());
    for (got, want) in out.iter().zip(&expected) {
        assert_eq!(
            (got.question.as_str(), got.option.as_str()),
            (want.question, want.option)
        );
        let nb = got.non_buyers.clone().unwrap();
        close(nb.ci95_low.unwrap(), want.nb_ci.0, 1e-9);
        close(nb.ci95_high.unwrap(), want.nb_ci.1, 1e-9);
        close(got.explained_refusals, want.explained, 1e-9);
        match (&got.lift, want.lift) {
            (Some(lift), Some((b_ci, test, diff, diff_ci, p, q))) => {
                let b = got.buyers.clone().unwrap();
                close(b.ci95_low.unwrap(), b_ci.0, 1e-9);
                close(b.ci95_high.unwrap(), b_ci.1, 1e-9);
                assert_eq!(lift.test, test);
                close(lift.difference, diff, 1e-9);
                close(lift.ci95_low, diff_ci.0, 1e-9);
                close(lift.ci95_high, diff_ci.1, 1e-9);
                close(lift.p_value.unwrap(), p, 1e-9);
                close(lift.q_value.unwrap(), q, 1e-9);
            }
            (None, None) => {}
            (got, want) => panic!("lift {got:?}, expected {want:?}"),
        }
    }
}

/// `DATASET` of `tests/reference/barriers_scipy.py`.
pub(crate) fn reference_dataset() -> Vec<BarrierInput> {
    vec![
        input("why_not", "price", (45, 120), Some((20, 150))),
        input("why_not", "location", (30, 120), Some((28, 150))),
        input("why_not", "trust", (6, 120), Some((1, 150))),
        input("why_not", "timing", (12, 120), Some((18, 150))),
        input("main_reason", "price", (3, 10), Some((1, 12))),
        input("main_reason", "parking", (4, 10), None),
    ]
}

#[test]
fn open_answers_merge_across_questionnaires_newest_first() {
    let mut a = OpenParts {
        answered: 2,
        latest: vec![(5, "Too far".into()), (1, "expensive".into())],
        counts: HashMap::from([("too far".into(), 1), ("expensive".into(), 1)]),
    };
    a.merge(OpenParts {
        answered: 1,
        latest: vec![(3, "Expensive!".into())],
        counts: HashMap::from([("expensive".into(), 1)]),
    });
    let out = a.finish();
    assert_eq!(out.answered, 3);
    assert_eq!(out.latest, ["Too far", "Expensive!", "expensive"]);
    assert_eq!(out.frequent[0].text, "expensive");
    assert_eq!(out.frequent[0].count, 2);
}

fn tally() -> impl Strategy<Value = Tally> {
    (0u64..200).prop_flat_map(|n| (0..=n).prop_map(move |count| Tally { count, n }))
}

proptest! {
    /// The Wilson interval holds the share and stays inside [0, 1].
    #[test]
    fn wilson_interval_contains_the_share(t in tally()) {
        match wilson(t.count, t.n) {
            None => prop_assert_eq!(t.n, 0),
            Some((lo, hi)) => {
                let p = t.count as f64 / t.n as f64;
                prop_assert!(0.0 <= lo && lo <= p + 1e-12 && p <= hi + 1e-12 && hi <= 1.0);
            }
        }
    }

    /// Ranks are 1..=n in order of explained refusals (descending); an
    /// explained count never exceeds the non-buyer count nor goes below 0;
    /// q ≥ p for every tested barrier; a lift exists exactly where both
    /// groups answered.
    #[test]
    fn ranking_and_lift_invariants(
        items in proptest::collection::vec((tally(), proptest::option::of(tally())), 0..12)
    ) {
        let inputs: Vec<BarrierInput> = items
            .iter()
            .enumerate()
            .map(|(i, (nb, b))| BarrierInput {
                question: format!("q{}", i % 3),
                option: format!("o{i}"),
                non_buyers: Some(*nb),
                buyers: *b,
            })
            .collect();
        let out = analyse(&inputs);
        prop_assert_eq!(out.len(), inputs.len());
        for (i, b) in out.iter().enumerate() {
            prop_assert_eq!(b.rank as usize, i + 1);
            if i > 0 {
                prop_assert!(out[i - 1].explained_refusals >= b.explained_refusals);
            }
            let nb = b.non_buyers.clone().unwrap_or(GroupFigures::of(Tally::default()));
            prop_assert!(b.explained_refusals >= 0.0);
            prop_assert!(b.explained_refusals <= nb.count as f64 + 1e-9);
            let both = nb.n_answered > 0 && b.buyers.as_ref().is_some_and(|g| g.n_answered > 0);
            prop_assert_eq!(b.lift.is_some(), both);
            if let Some(lift) = &b.lift {
                if let (Some(p), Some(q)) = (lift.p_value, lift.q_value) {
                    prop_assert!(q >= p && q <= 1.0);
                }
                prop_assert!(lift.ci95_low <= lift.difference && lift.difference <= lift.ci95_high);
            }
        }
    }
}
