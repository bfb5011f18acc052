use super::*;
use proptest::prelude::*;

fn factor(id: &str, w: f64) -> Factor {
    Factor {
        id: id.into(),
        name: id.to_uppercase(),
        importance: w,
    }
}

fn tp(id: &str, stage: &str) -> Touchpoint {
    Touchpoint {
        id: id.into(),
        stage_id: stage.into(),
    }
}

fn stage(id: &str) -> Stage {
    Stage {
        id: id.into(),
        name: id.to_uppercase(),
    }
}

fn cell(f: &str, t: &str, v: i64) -> CorrelationCell {
    CorrelationCell {
        factor_id: f.into(),
        touchpoint_id: t.into(),
        value: v,
    }
}

/// Factors a (w 4), b (w 2); touchpoints t1, t2 in stage s1, t3 in s2.
///        t1  t2  t3
///   a     9   3   0
///   b     1   0   9
fn sample() -> QfdInput {
    QfdInput {
        factors: vec![factor("a", 4.0), factor("b", 2.0)],
        touchpoints: vec![tp("t1", "s1"), tp("t2", "s1"), tp("t3", "s2")],
        stages: vec![stage("s1"), stage("s2")],
        cells: vec![
            cell("a", "t1", 9),
            cell("a", "t2", 3),
            cell("a", "t3", 0),
            cell("b", "t1", 1),
            cell("b", "t3", 9),
        ],
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn scores_follow_the_qfd_formulas() {
    let r = compute(&sample(), &ClassThresholds::default()).unwrap();
    // t1 = 4·9 + 2·1 = 38; t2 = 4·3 = 12; t3 = 2·9 = 18
    let t: Vec<f64> = r.touchpoints.iter().map(|s| s.score).collect();
    assert_eq!(t, vec![38.0, 12.0, 18.0]);
    // f_a = 4·(9+3+0) = 48; f_b = 2·(1+0+9) = 20
    let f: Vec<f64> = r.factors.iter().map(|s| s.score).collect();
    assert_eq!(f, vec![48.0, 20.0]);
    // s1 = 38 + 12 = 50; s2 = 18
    let s: Vec<f64> = r.stages.iter().map(|s| s.score).collect();
    assert_eq!(s, vec![50.0, 18.0]);
    // relative: 38/68, 12/68, 18/68
    assert!(close(
        r.touchpoints[0].relative_weight.unwrap(),
        38.0 / 68.0
    ));
    assert!(close(
        r.touchpoints[1].relative_weight.unwrap(),
        12.0 / 68.0
    ));
    assert!(close(r.factors[0].relative_weight.unwrap(), 48.0 / 68.0));
    assert!(close(r.stages[1].relative_weight.unwrap(), 18.0 / 68.0));
}

#[test]
fn classes_use_population_sd() {
    let r = compute(&sample(), &ClassThresholds::default()).unwrap();
    // touchpoints 38, 12, 18: mean 68/3 = 22.667; deviations 15.333,
    // −10.667, −4.667; population var = (235.11 + 113.78 + 21.78)/3
    // = 123.556, sd = 11.1155; z = 1.379, −0.960, −0.420
    let z: Vec<f64> = r.touchpoints.iter().map(|s| s.z.unwrap()).collect();
    let sd = (((38.0f64 - 68.0 / 3.0).powi(2)
        + (12.0f64 - 68.0 / 3.0).powi(2)
        + (18.0f64 - 68.0 / 3.0).powi(2))
        / 3.0)
        .sqrt();
    assert!(close(z[0], (38.0 - 68.0 / 3.0) / sd));
    assert!((z[0] - 1.379).abs() < 1e-3 && (z[1] + 0.960).abs() < 1e-3);
    let classes: Vec<Class> = r.touchpoints.iter().map(|s| s.class).collect();
    assert_eq!(
        classes,
        vec![Class::Critical, Class::LessImportant, Class::Important]
    );
    // two factors 48, 20 → z = ±1 → critical, less important
    assert_eq!(r.factors[0].class, Class::Critical);
    assert_eq!(r.factors[1].class, Class::LessImportant);
}

#[test]
fn z_exactly_on_the_threshold_is_important() {
    // scores 1, 3: mean 2, population sd 1 → z = ±1; with the thresholds
    // at ±1 both sit on them and stay important.
    let t = ClassThresholds {
        critical_above: 1.0,
        less_important_below: -1.0,
    };
    let c = classify(&[1.0, 3.0], &t);
    assert_eq!(c[0], (Some(-1.0), Class::Important));
    assert_eq!(c[1], (Some(1.0), Class::Important));
}

#[test]
fn equal_scores_are_all_important() {
    // sd = 0
    let c = classify(&[3.3, 3.3, 3.3], &ClassThresholds::default());
    assert!(c.iter().all(|&(z, k)| z.is_none() && k == Class::Important));
    assert_eq!(
        classify(&[7.0], &ClassThresholds::default())[0].1,
        Class::Important
    );
    assert!(classify(&[], &ClassThresholds::default()).is_empty());
}

#[test]
fn zero_scores_have_no_relative_weight() {
    assert_eq!(relative_weights(&[0.0, 0.0]), vec![None, None]);
    let mut input = sample();
    input.cells.clear();
    let r = compute(&input, &ClassThresholds::default()).unwrap();
    assert!(r.touchpoints.iter().all(|t| t.relative_weight.is_none()));
    assert!(r.touchpoints.iter().all(|t| t.class == Class::Important));
}

#[test]
fn improvement_priority_scales_weight_by_rating_gap() {
    // 0.5 × (5 − 3)/4 = 0.25
    assert_eq!(improvement_priority(Some(0.5), Some(3.0)), Some(0.25));
    assert_eq!(improvement_priority(Some(0.5), Some(5.0)), Some(0.0));
    assert_eq!(improvement_priority(Some(0.5), None), None);
    assert_eq!(improvement_priority(None, Some(2.0)), None);
    let r = compute(&sample(), &ClassThresholds::default()).unwrap();
    let ratings = HashMap::from([("t1".to_string(), 4.0)]);
    let p = improvement_priorities(&r, &ratings);
    // t1: 38/68 × (5 − 4)/4 = 38/272
    assert!(close(p[0].priority.unwrap(), 38.0 / 272.0));
    assert_eq!(p[1].priority, None);
}

#[test]
fn bad_input_is_rejected_naming_the_cell() {
    let cases: Vec<(QfdInput, QfdError)> = vec![
        (
            QfdInput {
                cells: vec![cell("a", "t2", 5)],
                ..sample()
            },
            QfdError::InvalidCorrelation {
                factor_id: "a".into(),
                touchpoint_id: "t2".into(),
                value: 5,
            },
        ),
        (
            QfdInput {
                cells: vec![cell("zz", "t2", 1)],
                ..sample()
            },
            QfdError::UnknownFactor {
                factor_id: "zz".into(),
                touchpoint_id: "t2".into(),
            },
        ),
        (
            QfdInput {
                cells: vec![cell("a", "t9", 1)],
                ..sample()
            },
            QfdError::UnknownTouchpoint {
                factor_id: "a".into(),
                touchpoint_id: "t9".into(),
            },
        ),
        (
            QfdInput {
                cells: vec![cell("a", "t1", 1), cell("a", "t1", 3)],
                ..sample()
            },
            QfdError::DuplicateCell {
                factor_id: "a".into(),
                touchpoint_id: "t1".into(),
            },
        ),
        (
            QfdInput {
                touchpoints: vec![tp("t1", "nowhere")],
                cells: vec![],
                ..sample()
            },
            QfdError::UnknownStage {
                touchpoint_id: "t1".into(),
                stage_id: "nowhere".into(),
            },
        ),
        (
            QfdInput {
                factors: vec![factor("a", f64::NAN)],
                cells: vec![],
                ..sample()
            },
            QfdError::InvalidImportance {
                factor_id: "a".into(),
                importance: f64::NAN,
            },
        ),
    ];
    for (input, want) in cases {
        let got = compute(&input, &ClassThresholds::default()).unwrap_err();
        // NaN ≠ NaN, so compare the message
        assert_eq!(got.to_string(), want.to_string());
    }
    let msg = compute(
        &QfdInput {
            cells: vec![cell("a", "t2", 2)],
            ..sample()
        },
        &ClassThresholds::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("factor a") && msg.contains("touchpoint t2") && msg.contains('2'));
}

#[test]
fn correlation_parses_only_allowed_values() {
    for v in [0, 1, 3, 9] {
        assert_eq!(i64::from(Correlation::try_from(v).unwrap()), v);
    }
    for v in [-1, 2, 4, 5, 10] {
        assert!(Correlation::try_from(v).is_err());
    }
}

fn arb_input() -> impl Strategy<Value = QfdInput> {
    (1usize..6, 1usize..7, 1usize..4).prop_flat_map(|(nf, nt, ns)| {
        (
            prop::collection::vec(0.0f64..5.0, nf),
            prop::collection::vec(0usize..ns, nt),
            prop::collection::vec(prop::sample::select(vec![0i64, 1, 3, 9]), nf * nt),
        )
            .prop_map(move |(ws, stages_of, cs)| QfdInput {
                factors: ws
                    .iter()
                    .enumerate()
                    .map(|(i, &w)| factor(&format!("f{i}"), w))
                    .collect(),
                touchpoints: stages_of
                    .iter()
                    .enumerate()
                    .map(|(j, &k)| tp(&format!("t{j}"), &format!("s{k}")))
                    .collect(),
                stages: (0..ns).map(|k| stage(&format!("s{k}"))).collect(),
                cells: (0..nf * nt)
                    .map(|x| cell(&format!("f{}", x / nt), &format!("t{}", x % nt), cs[x]))
                    .collect(),
            })
    })
}

proptest! {
    #[test]
    fn scores_are_linear_in_importance(input in arb_input()) {
        let th = ClassThresholds::default();
        let r1 = compute(&input, &th).unwrap();
        let mut doubled = input.clone();
        for f in &mut doubled.factors {
            f.importance *= 2.0;
        }
        let r2 = compute(&doubled, &th).unwrap();
        for (a, b) in [
            (&r1.touchpoints, &r2.touchpoints),
            (&r1.factors, &r2.factors),
            (&r1.stages, &r2.stages),
        ] {
            for (x, y) in a.iter().zip(b.iter()) {
                prop_assert!((y.score - 2.0 * x.score).abs() <= 1e-9 * (1.0 + x.score.abs()));
                match (x.relative_weight, y.relative_weight) {
                    (Some(p), Some(q)) => prop_assert!((p - q).abs() < 1e-12),
                    (None, None) => {}
                    other => prop_assert!(false, "{other:?}"),
                }
            }
        }
    }

    #[test]
    fn relative_weights_sum_to_one(input in arb_input()) {
        let r = compute(&input, &ClassThresholds::default()).unwrap();
        for kind in [&r.touchpoints, &r.factors, &r.stages] {
            let total: f64 = kind.iter().map(|s| s.score).sum();
            let rel: f64 = kind.iter().filter_map(|s| s.relative_weight).sum();
            if total > 0.0 {
                prop_assert!((rel - 1.0).abs() < 1e-9, "{rel}");
            } else {
                prop_assert!(kind.iter().all(|s| s.relative_weight.is_none()));
            }
        }
    }

    #[test]
    fn stage_scores_add_up_to_touchpoint_scores(input in arb_input()) {
        let r = compute(&input, &ClassThresholds::default()).unwrap();
        let t: f64 = r.touchpoints.iter().map(|s| s.score).sum();
        let s: f64 = r.stages.iter().map(|s| s.score).sum();
        let f: f64 = r.factors.iter().map(|s| s.score).sum();
        prop_assert!((t - s).abs() < 1e-9 * (1.0 + t));
        prop_assert!((t - f).abs() < 1e-9 * (1.0 + t));
    }
}
