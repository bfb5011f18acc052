use super::*;
use proptest::prelude::*;

fn close(actual: f64, expected: f64, rel: f64) {
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        (actual - expected).abs() <= rel * scale,
        "actual {actual:e}, expected {expected:e}"
    );
}

fn moments(values: &[f64]) -> Moments {
    let mut m = Moments::default();
    for &x in values {
        m.add(x);
    }
    m
}

fn tally(promoters: u64, passives: u64, detractors: u64) -> NpsTally {
    NpsTally {
        promoters,
        passives,
        detractors,
    }
}

fn share_hypothesis(x1: u64, n1: u64, x2: u64, n2: u64, direction: Direction) -> Hypothesis {
    Hypothesis {
        data: MetricData::Share { x1, n1, x2, n2 },
        direction,
        min_effect: None,
    }
}

#[test]
fn normal_quantiles_come_from_statrs() {
    close(z_alpha_half(), 1.959963984540054, 1e-12);
    close(z_beta(), 0.8416212335729143, 1e-12);
}

#[test]
fn pooled_z_matches_a_hand_computation() {
    // p1 = 0.6, p2 = 0.4, p = 0.5: z = 0.2/√(0.25·(2/50)) = 2
    close(two_proportion_z(30, 50, 20, 50).unwrap(), 2.0, 1e-12);
}

#[test]
fn share_uses_the_z_test_when_all_expected_counts_reach_five() {
    let r = evaluate_hypotheses(
        &[share_hypothesis(30, 50, 20, 50, Direction::Greater)],
        &HypothesisSettings::default(),
    );
    let r = &r[0];
    assert_eq!(r.test, TestKind::TwoProportionZ);
    // scipy.stats.norm.sf(2.0)
    close(r.p_value.unwrap(), 0.022750131948179195, 1e-9);
    // one hypothesis: q = p
    assert_eq!(r.q_value, r.p_value);
    // unpooled se = √(0.24/50 + 0.24/50) = √0.0096
    let half = 1.959963984540054 * 0.0096f64.sqrt();
    close(r.ci_low.unwrap(), 0.2 - half, 1e-12);
    close(r.ci_high.unwrap(), 0.2 + half, 1e-12);
    close(r.difference.unwrap(), 0.2, 1e-12);
    // (1.95996·√(2·0.25) + 0.84162·√0.48)² / 0.04 = 96.92… → 97
    assert_eq!(r.required_n, Some(97));
    // n1 = 50 < 97 required
    assert_eq!(r.verdict, Verdict::InsufficientData);
}

#[test]
fn share_two_sided_and_less_p_values_match_scipy() {
    // 2*scipy.stats.norm.sf(2.0)
    let two = evaluate_hypotheses(
        &[share_hypothesis(30, 50, 20, 50, Direction::Different)],
        &HypothesisSettings::default(),
    );
    close(two[0].p_value.unwrap(), 0.04550026389635839, 1e-9);
    // scipy.stats.norm.cdf(2.0)
    let less = evaluate_hypotheses(
        &[share_hypothesis(30, 50, 20, 50, Direction::Less)],
        &HypothesisSettings::default(),
    );
    close(less[0].p_value.unwrap(), 0.9772498680518208, 1e-9);
}

#[test]
fn share_falls_back_to_fisher_when_an_expected_count_is_below_five() {
    // pooled p = 4/40 = 0.1: n1·p = 2 < 5
    assert!(needs_exact_test(3, 20, 1, 20));
    assert!(!needs_exact_test(30, 50, 20, 50));
    assert!(needs_exact_test(0, 0, 5, 10));
    let r = evaluate_hypotheses(
        &[share_hypothesis(3, 20, 1, 20, Direction::Different)],
        &HypothesisSettings::default(),
    );
    assert_eq!(r[0].test, TestKind::FisherExact);
    // scipy.stats.fisher_exact([[3, 17], [1, 19]], alternative='two-sided').pvalue
    close(r[0].p_value.unwrap(), 0.6049896049896051, 1e-9);
}

#[test]
fn fisher_matches_scipy() {
    let cases = [
        // scipy.stats.fisher_exact([[8, 2], [1, 5]], alternative=…).pvalue
        (8, 10, 1, 6, Direction::Different, 0.034965034965034975),
        (8, 10, 1, 6, Direction::Greater, 0.024475524475524483),
        (8, 10, 1, 6, Direction::Less, 0.9991258741258742),
        // scipy.stats.fisher_exact([[1, 9], [11, 3]], alternative=…).pvalue
        (1, 10, 11, 14, Direction::Different, 0.0027594561852200836),
        (1, 10, 11, 14, Direction::Less, 0.0013797280926100418),
        (1, 10, 11, 14, Direction::Greater, 0.9999663480953022),
        // scipy.stats.fisher_exact([[2, 198], [9, 291]], alternative=…).pvalue
        (2, 200, 9, 300, Direction::Different, 0.21311680311621622),
        (2, 200, 9, 300, Direction::Less, 0.1162372759384246),
    ];
    for (x1, n1, x2, n2, direction, expected) in cases {
        let p = fisher_exact(x1, n1, x2, n2, direction).unwrap();
        close(p, expected, 1e-9);
    }
}

#[test]
fn fisher_counts_equally_likely_tables_despite_rounding() {
    // Symmetric margins: the observed table and its mirror are equally
    // likely. scipy.stats.fisher_exact([[3, 7], [7, 3]]).pvalue
    close(
        fisher_exact(3, 10, 7, 10, Direction::Different).unwrap(),
        0.1788954079975752,
        1e-9,
    );
    // The most likely table: p = 1.
    close(
        fisher_exact(5, 10, 5, 10, Direction::Different).unwrap(),
        1.0,
        1e-12,
    );
}

#[test]
fn welch_matches_scipy() {
    let a = [3.0, 4.0, 5.0, 4.0, 5.0, 5.0, 4.0, 3.0, 5.0, 4.0];
    let b = [2.0, 3.0, 3.0, 4.0, 2.0, 5.0, 1.0];
    let r = evaluate_hypotheses(
        &[Hypothesis {
            data: MetricData::Mean {
                group1: moments(&a),
                group2: moments(&b),
            },
            direction: Direction::Different,
            min_effect: None,
        }],
        &HypothesisSettings::default(),
    );
    let r = &r[0];
    assert_eq!(r.test, TestKind::WelchT);
    close(r.difference.unwrap(), 4.2 - 20.0 / 7.0, 1e-12);
    // scipy.stats.ttest_ind(a, b, equal_var=False).pvalue
    close(r.p_value.unwrap(), 0.0421486648383371, 1e-9);
    // res = scipy.stats.ttest_ind(a, b, equal_var=False); res.confidence_interval(0.95)
    close(r.ci_low.unwrap(), 0.05937463114485508, 1e-9);
    close(r.ci_high.unwrap(), 2.626339654569431, 1e-9);
    // scipy.stats.ttest_ind(a, b, equal_var=False, alternative='greater').pvalue
    let t = welch(
        10,
        4.2,
        0.6222222222222222,
        7,
        20.0 / 7.0,
        1.8095238095238095,
    )
    .unwrap();
    close(t.p_value(Direction::Greater), 0.02107433241916855, 1e-9);
    // res.df
    close(t.df, 8.892570505026494, 1e-9);
    // 2·(z+z_β)²·s²/δ²: s² = (5.6 + 10.857142…)/15 = 1.0971…, δ = 1.3428…
    // → 9.55… → 10
    assert_eq!(r.required_n, Some(10));
    // n1 = 10 < 30
    assert_eq!(r.verdict, Verdict::InsufficientData);
}

#[test]
fn welch_is_undefined_without_variance() {
    assert!(welch(5, 1.0, 0.0, 5, 2.0, 0.0).is_none());
    assert!(welch(1, 1.0, 1.0, 5, 2.0, 1.0).is_none());
}

#[test]
fn nps_difference_uses_section_1_standard_errors() {
    // Group 1: 60 P, 20 passives, 20 D → NPS 40; group 2: 30/40/30 → 0.
    let (g1, g2) = (tally(60, 20, 20), tally(30, 40, 30));
    let se1 = 100.0 * ((0.8 - 0.16) / 100.0f64).sqrt(); // 8
    let se2 = 100.0 * (0.6f64 / 100.0).sqrt();
    close(nps_se(&g1).unwrap(), se1, 1e-12);
    let se = (se1 * se1 + se2 * se2).sqrt();
    let r = evaluate_hypotheses(
        &[Hypothesis {
            data: MetricData::Nps {
                group1: g1,
                group2: g2,
            },
            direction: Direction::Greater,
            min_effect: None,
        }],
        &HypothesisSettings::default(),
    );
    let r = &r[0];
    assert_eq!(r.test, TestKind::NpsZ);
    close(r.difference.unwrap(), 40.0, 1e-12);
    // scipy.stats.norm.sf(40 / (64 + 60) ** 0.5)
    close(r.p_value.unwrap(), 0.00016400815750676384, 1e-9);
    close(r.ci_low.unwrap(), 40.0 - 1.959963984540054 * se, 1e-12);
    // s² of ±100 scores pooled: (100·6400 + 100·6000)/198; 2·(z+z_β)²·s²/1600
    // = 61.44… → 62 ≤ n1 = 100
    assert_eq!(r.required_n, Some(62));
    assert_eq!(r.verdict, Verdict::Supported);
}

#[test]
fn verdict_follows_q_direction_and_sample_size() {
    let settings = HypothesisSettings::default();
    // p1 = 0.6 vs 0.4 with 200 per group: large enough and significant.
    let supported = share_hypothesis(120, 200, 80, 200, Direction::Greater);
    // Same data, wrong direction.
    let wrong_way = share_hypothesis(120, 200, 80, 200, Direction::Less);
    // Too few in the segment.
    let small = share_hypothesis(12, 20, 80, 200, Direction::Greater);
    // No difference: required_n is infinite.
    let none = share_hypothesis(100, 200, 100, 200, Direction::Different);
    let r = evaluate_hypotheses(&[supported, wrong_way, small, none], &settings);
    assert_eq!(r[0].verdict, Verdict::Supported);
    assert_eq!(r[1].verdict, Verdict::Rejected);
    assert_eq!(r[2].verdict, Verdict::InsufficientData);
    assert_eq!(r[3].required_n, None);
    assert_eq!(r[3].verdict, Verdict::InsufficientData);
    // A lower per-client minimum lets the small segment through the
    // n1 check, but it still needs ≥ required_n.
    let lenient = HypothesisSettings { min_n1: 10 };
    let r = evaluate_hypotheses(
        &[share_hypothesis(18, 20, 40, 200, Direction::Greater)],
        &lenient,
    );
    assert!(r[0].required_n.unwrap() <= 20);
    assert_eq!(r[0].verdict, Verdict::Supported);
}

#[test]
fn stated_minimum_effect_replaces_the_observed_difference() {
    // Observed 0.2; a stated 0.1 quadruples the requirement's δ² term.
    let observed = required_n_shares(0.6, 0.4, None).unwrap();
    let stated = required_n_shares(0.6, 0.4, Some(0.1)).unwrap();
    assert_eq!(observed, 97);
    // 96.92…·4 = 387.69… → 388
    assert_eq!(stated, 388);
    // 2·(2.8016)²·1/0.25 = 62.79 → 63
    assert_eq!(required_n_means(1.0, 0.5), Some(63));
    assert_eq!(required_n_means(1.0, 0.0), None);
    assert_eq!(required_n_means(f64::NAN, 1.0), None);
}

#[test]
fn benjamini_hochberg_matches_a_hand_computation() {
    // sorted: 0.01·4/1 = 0.04, 0.02·4/2 = 0.04, 0.03·4/3 = 0.04, 0.5·4/4 = 0.5
    let q = benjamini_hochberg(&[0.5, 0.03, 0.01, 0.02]);
    let expected = [0.5, 0.04, 0.04, 0.04];
    for (q, e) in q.iter().zip(expected) {
        close(*q, e, 1e-12);
    }
    // step-up: 0.04·2/1 = 0.08 but the later 0.045·2/2 = 0.045 wins
    let q = benjamini_hochberg(&[0.04, 0.045]);
    close(q[0], 0.045, 1e-12);
    close(q[1], 0.045, 1e-12);
    assert!(benjamini_hochberg(&[]).is_empty());
}

#[test]
fn untestable_hypotheses_stay_out_of_the_correction() {
    let r = evaluate_hypotheses(
        &[
            share_hypothesis(30, 50, 20, 50, Direction::Greater),
            share_hypothesis(0, 0, 20, 50, Direction::Greater),
        ],
        &HypothesisSettings::default(),
    );
    assert_eq!(r[0].q_value, r[0].p_value);
    assert_eq!(r[1].p_value, None);
    assert_eq!(r[1].q_value, None);
    assert_eq!(r[1].verdict, Verdict::InsufficientData);
}

fn share_data() -> impl Strategy<Value = (u64, u64, u64, u64)> {
    (1u64..300, 1u64..300).prop_flat_map(|(n1, n2)| (0..=n1, Just(n1), 0..=n2, Just(n2)))
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![
        Just(Direction::Greater),
        Just(Direction::Less),
        Just(Direction::Different)
    ]
}

fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(0i32..=10, 2..40).prop_map(|v| v.into_iter().map(f64::from).collect())
}

proptest! {
    #[test]
    fn share_p_values_are_probabilities((x1, n1, x2, n2) in share_data(), d in direction()) {
        let r = &evaluate_hypotheses(&[share_hypothesis(x1, n1, x2, n2, d)], &HypothesisSettings::default())[0];
        let p = r.p_value.unwrap();
        prop_assert!((0.0..=1.0).contains(&p), "{p}");
        let diff = r.difference.unwrap();
        prop_assert!(r.ci_low.unwrap() <= diff && diff <= r.ci_high.unwrap());
    }

    #[test]
    fn fisher_tails_are_probabilities((x1, n1, x2, n2) in share_data(), d in direction()) {
        let p = fisher_exact(x1, n1, x2, n2, d).unwrap();
        prop_assert!((0.0..=1.0).contains(&p), "{p}");
    }

    #[test]
    fn mean_p_values_are_probabilities_and_ci_contains_difference(
        a in sample(), b in sample(), d in direction()
    ) {
        let r = &evaluate_hypotheses(&[Hypothesis {
            data: MetricData::Mean { group1: moments(&a), group2: moments(&b) },
            direction: d,
            min_effect: None,
        }], &HypothesisSettings::default())[0];
        if let Some(p) = r.p_value {
            prop_assert!((0.0..=1.0).contains(&p), "{p}");
            let diff = r.difference.unwrap();
            prop_assert!(r.ci_low.unwrap() <= diff && diff <= r.ci_high.unwrap());
        }
    }

    #[test]
    fn nps_p_values_are_probabilities(
        g1 in (0u64..50, 0u64..50, 0u64..50), g2 in (0u64..50, 0u64..50, 0u64..50), d in direction()
    ) {
        let r = &evaluate_hypotheses(&[Hypothesis {
            data: MetricData::Nps { group1: tally(g1.0, g1.1, g1.2), group2: tally(g2.0, g2.1, g2.2) },
            direction: d,
            min_effect: None,
        }], &HypothesisSettings::default())[0];
        if let Some(p) = r.p_value {
            prop_assert!((0.0..=1.0).contains(&p), "{p}");
            let diff = r.difference.unwrap();
            prop_assert!(r.ci_low.unwrap() <= diff && diff <= r.ci_high.unwrap());
        }
    }

    #[test]
    fn q_values_bound_p_and_keep_its_order(p in prop::collection::vec(0.0f64..=1.0, 1..30)) {
        let q = benjamini_hochberg(&p);
        for i in 0..p.len() {
            prop_assert!(q[i] >= p[i] && q[i] <= 1.0);
            for j in 0..p.len() {
                if p[i] <= p[j] {
                    prop_assert!(q[i] <= q[j]);
                }
            }
        }
    }

    #[test]
    fn q_value_of_a_single_p_is_p(p in 0.0f64..=1.0) {
        prop_assert_eq!(benjamini_hochberg(&[p]), vec![p]);
    }

    #[test]
    fn required_n_shrinks_as_the_difference_grows(
        p1 in 0.01f64..0.99, p2 in 0.01f64..0.99, d in 0.001f64..1.0, extra in 0.0f64..1.0
    ) {
        let small = required_n_shares(p1, p2, Some(d)).unwrap();
        let large = required_n_shares(p1, p2, Some(d + extra)).unwrap();
        prop_assert!(large <= small);
        let small = required_n_means(p1 * 10.0, d).unwrap();
        let large = required_n_means(p1 * 10.0, -(d + extra)).unwrap();
        prop_assert!(large <= small);
    }

    #[test]
    fn required_n_for_shares_shrinks_as_p1_moves_away(
        p2 in 0.05f64..0.95, d in 0.01f64..0.5, extra in 0.0f64..0.5
    ) {
        prop_assume!(p2 + d + extra < 1.0);
        let near = required_n_shares(p2 + d, p2, None).unwrap();
        let far = required_n_shares(p2 + d + extra, p2, None).unwrap();
        prop_assert!(far <= near);
    }
}
