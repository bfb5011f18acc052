use super::*;
use proptest::prelude::*;

fn questions() -> Vec<PanelQuestion> {
    let q = |key: &str, kind: Kind, role: Role| PanelQuestion {
        key: key.into(),
        kind,
        role,
        factor: None,
    };
    let mut price = q("price", Kind::Rating, Role::ChoiceFactorImportance);
    price.factor = Some(("f1".into(), "Price".into()));
    let mut place = q("place", Kind::Rating, Role::ChoiceFactorImportance);
    place.factor = Some(("f2".into(), "Location".into()));
    vec![
        q(
            "city",
            Kind::Single {
                options: vec!["msk".into(), "spb".into()],
            },
            Role::SegmentAttribute,
        ),
        q(
            "src",
            Kind::Multi {
                options: vec!["social".into(), "tv".into(), "friends".into()],
            },
            Role::Other,
        ),
        price,
        place,
        q("nps", Kind::Nps, Role::Nps),
        q("spend", Kind::Number, Role::Spend),
        q("tip", Kind::Text, Role::OpenAnswer),
    ]
}

fn row(
    city: Option<u16>,
    src: u64,
    price: f64,
    place: f64,
    nps: f64,
    spend: f64,
    tip: Option<&str>,
) -> Vec<Cell> {
    vec![
        city.map(Cell::Choice).unwrap_or(Cell::Blank),
        // 0 here is a blank; tests of `[]` push `Cell::Multi(0)` themselves.
        if src == 0 {
            Cell::Blank
        } else {
            Cell::Multi(src)
        },
        Cell::Num(price),
        Cell::Num(place),
        Cell::Num(nps),
        Cell::Num(spend),
        tip.map(|t| Cell::Text(t.into())).unwrap_or(Cell::Blank),
    ]
}

fn small() -> Dataset {
    let mut ds = Dataset::new(questions());
    let nan = f64::NAN;
    ds.push(
        1,
        row(
            Some(0),
            0b011,
            5.0,
            3.0,
            10.0,
            1000.0,
            Some("More trainers!"),
        ),
    );
    ds.push(
        2,
        row(Some(1), 0b100, 4.0, 4.0, 6.0, 500.0, Some("more  trainers")),
    );
    ds.push(3, row(Some(0), 0b000, 2.0, 5.0, 9.0, nan, None));
    ds.push(4, row(None, 0b001, nan, 4.0, nan, 300.0, Some("Parking")));
    ds
}

#[test]
fn an_empty_selection_is_answered_and_chooses_nothing() {
    let mut ds = Dataset::new(questions());
    let with_src = |src: Cell| {
        let mut r = row(Some(0), 0, 3.0, 3.0, 8.0, 10.0, None);
        r[1] = src;
        r
    };
    ds.push(1, with_src(Cell::Multi(0))); // []
    ds.push(2, with_src(Cell::Multi(0b001))); // ["social"]
    ds.push(3, with_src(Cell::Blank)); // key absent
    ds.push(4, with_src(Cell::Blank)); // null
    let p = ds.fold_all().finish(&ds, 4);
    let src = &p.choices[1];
    assert_eq!(src.answered, 2);
    assert_eq!(src.options[0].count, 1);
    assert_eq!(src.options[0].share, Some(0.5));
    assert_eq!(src.options[1].share, Some(0.0));
    // Row by row (the incremental path) gives the same figures.
    let mut one_by_one = PanelState::new(&ds.questions);
    for r in 0..ds.len() {
        one_by_one.add_row(&ds, r);
    }
    assert_eq!(one_by_one.finish(&ds, 4), p);
    // `[]` holds no value, so no value condition selects it.
    let all = [Condition {
        question: "src".into(),
        values: Some(vec!["social".into(), "tv".into(), "friends".into()]),
        min: None,
        max: None,
    }];
    let f = CompiledFilter::compile(&ds, &all).unwrap();
    assert_eq!(ds.select(&f), vec![1]);
}

#[test]
fn panel_of_a_small_set_matches_hand_computation() {
    let ds = small();
    let p = ds.fold_all().finish(&ds, 4);
    assert_eq!(p.n, 4);
    // city: answered 3 (one blank); msk 2/3, spb 1/3
    let city = &p.choices[0];
    assert_eq!(city.answered, 3);
    assert_eq!(city.options[0].share, Some(2.0 / 3.0));
    // src: answered 3; social 2, tv 1, friends 1 → shares sum above 1
    let src = &p.choices[1];
    assert_eq!(src.answered, 3);
    assert_eq!(
        src.options.iter().map(|o| o.count).collect::<Vec<_>>(),
        [2, 1, 1]
    );
    // price 5,4,2: mean 11/3, sd √(7/3); top2 = 2/3
    let price = p.factors.iter().find(|f| f.key == "price").unwrap();
    assert_eq!(price.n, 3);
    assert!((price.mean.unwrap() - 11.0 / 3.0).abs() < 1e-12);
    assert!((price.sd.unwrap() - (7.0f64 / 3.0).sqrt()).abs() < 1e-12);
    assert_eq!(price.top2, Some(2.0 / 3.0));
    // ci95: t(0.975, 2) = 4.302652729749464 (scipy.stats.t.ppf(0.975, 2))
    let half = 4.302_652_729_749_464 * (7.0f64 / 3.0).sqrt() / 3.0f64.sqrt();
    assert!((price.ci95_high.unwrap() - (11.0 / 3.0 + half)).abs() < 1e-9);
    // place 3,4,5,4: mean 4 > price 11/3 → rank 1
    let place = p.factors.iter().find(|f| f.key == "place").unwrap();
    assert_eq!((place.rank, price.rank), (1, 2));
    // NPS 10, 6, 9 → P 2, D 1 → 33.3…
    let nps = p.nps.unwrap();
    assert!((nps.nps.unwrap() - 100.0 / 3.0).abs() < 1e-12);
    // spend by city: msk 1000 (row 3 has no spend), spb 500; blank city's 300 not counted
    let money = &p.money[0];
    assert_eq!(money.options[0].total, 1000.0);
    assert_eq!(money.options[1].share_of_total, Some(500.0 / 1500.0));
    // open answers: normalised "more trainers" twice
    let tips = &p.open_answers[0];
    assert_eq!(
        tips.frequent[0],
        TextCount {
            text: "more trainers".to_owned(),
            count: 2
        }
    );
    assert_eq!(tips.latest, ["Parking", "more  trainers", "More trainers!"]);
}

#[test]
fn filters_and_across_conditions_or_within() {
    let ds = small();
    let conds = vec![
        Condition {
            question: "src".into(),
            values: Some(vec!["social".into(), "friends".into()]),
            min: None,
            max: None,
        },
        Condition {
            question: "spend".into(),
            values: None,
            min: Some(400.0),
            max: Some(2000.0),
        },
    ];
    let f = CompiledFilter::compile(&ds, &conds).unwrap();
    // rows 0 (social, 1000) and 1 (friends, 500); row 3 spend 300 out of range
    assert_eq!(ds.select(&f), [0, 1]);
    let p = ds.fold_rows(ds.select(&f)).finish(&ds, ds.len() as u64);
    assert_eq!(p.share, Some(0.5));
    let bad = vec![Condition {
        question: "city".into(),
        values: Some(vec!["kzn".into()]),
        min: None,
        max: None,
    }];
    assert_eq!(
        CompiledFilter::compile(&ds, &bad).unwrap_err()[0].0,
        "conditions[0].values"
    );
}

/// The row-at-a-time reading of a filter, to check `select` against.
fn matches_row(f: &CompiledFilter, ds: &Dataset, row: usize) -> bool {
    f.conditions
        .iter()
        .all(|(qi, test)| match (&ds.columns[*qi], test) {
            (Column::Choice(v), &Test::AnyOf(mask)) => choice_in(v[row], mask),
            (Column::Multi(v, _), &Test::AnyOf(mask)) => v[row] & mask != 0,
            (Column::Num(v), &Test::Range(lo, hi)) => in_range(v[row], lo, hi),
            _ => false,
        })
}

#[test]
fn selection_and_fold_on_many_threads_equal_the_row_by_row_reading() {
    // Long enough for the parallel scan; rows vary by their index.
    let mut ds = Dataset::new(questions());
    let n = PARALLEL_SCAN_MIN + 1_001;
    for i in 0..n {
        let nan = f64::NAN;
        let city = (i % 3 < 2).then_some((i % 3) as u16);
        let spend = if i % 7 == 0 { nan } else { (i % 1_500) as f64 };
        let price = if i % 11 == 0 { nan } else { (1 + i % 5) as f64 };
        let nps = (i % 12) as f64; // 11 is out of range: not counted
        let tip = ["Parking", "more trainers", "More trainers!"].get(i % 13);
        ds.push(
            i as i64,
            row(city, (i % 8) as u64, price, 3.0, nps, spend, tip.copied()),
        );
    }
    let cond = |q: &str, values: Option<&[&str]>, min: Option<f64>, max: Option<f64>| Condition {
        question: q.into(),
        values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
        min,
        max,
    };
    let filters = [
        vec![],
        vec![cond("city", Some(&["spb"]), None, None)],
        vec![cond("src", Some(&["social", "friends"]), None, None)],
        vec![cond("spend", None, Some(400.0), Some(900.0))],
        vec![
            cond("spend", None, Some(100.0), None),
            cond("city", Some(&["msk"]), None, None),
            cond("price", None, None, Some(2.0)),
        ],
        vec![
            cond("src", Some(&["tv"]), None, None),
            cond("spend", None, Some(1_400.0), Some(1_450.0)),
        ],
    ];
    for conds in filters {
        let f = CompiledFilter::compile(&ds, &conds).unwrap();
        let expected: Vec<u32> = (0..n as u32)
            .filter(|&r| matches_row(&f, &ds, r as usize))
            .collect();
        let selected = ds.select(&f);
        assert_eq!(selected, expected, "{conds:?}");
        // The fold of many rows runs a thread per group of columns; it
        // equals folding the same rows one by one on this thread.
        let mut one_by_one = PanelState::new(&ds.questions);
        for &r in &selected {
            one_by_one.add_row(&ds, r as usize);
        }
        assert_eq!(ds.fold_rows(selected), one_by_one, "{conds:?}");
    }
}

#[test]
fn normalising_removes_case_punctuation_and_spacing() {
    assert_eq!(normalise("  Больше   тренеров!!! "), "больше тренеров");
}

/// city, sources, price, place, nps, spend, tip
type RowSpec = (
    Option<u16>,
    u64,
    Option<u8>,
    Option<u8>,
    Option<u8>,
    Option<u32>,
    Option<u8>,
);

fn arb_rows() -> impl Strategy<Value = Vec<RowSpec>> {
    prop::collection::vec(
        (
            prop::option::of(0u16..2),
            0u64..8,
            prop::option::of(1u8..=5),
            prop::option::of(1u8..=5),
            prop::option::of(0u8..=10),
            prop::option::of(0u32..10_000),
            prop::option::of(0u8..4),
        ),
        0..60,
    )
}

fn build(rows: &[RowSpec]) -> Dataset {
    let mut ds = Dataset::new(questions());
    let f = |x: Option<u8>| x.map(f64::from).unwrap_or(f64::NAN);
    let tips = ["a", "b!", "B", "c"];
    for (i, r) in rows.iter().enumerate() {
        ds.push(
            i as i64,
            row(
                r.0,
                r.1,
                f(r.2),
                f(r.3),
                f(r.4),
                r.5.map(f64::from).unwrap_or(f64::NAN),
                r.6.map(|t| tips[t as usize]),
            ),
        );
    }
    ds
}

proptest! {
    #[test]
    fn folding_in_pieces_equals_folding_all(rows in arb_rows(), cut in 0usize..60) {
        let ds = build(&rows);
        let cut = cut.min(ds.len()) as u32;
        let mut a = ds.fold_rows(0..cut);
        a.merge(&ds.fold_rows(cut..ds.len() as u32));
        let all = ds.fold_all();
        prop_assert_eq!(a.finish(&ds, ds.len() as u64), all.finish(&ds, ds.len() as u64));
    }

    #[test]
    fn folding_row_by_row_equals_folding_columns(rows in arb_rows()) {
        let ds = build(&rows);
        let mut one_by_one = PanelState::new(&ds.questions);
        for r in 0..ds.len() {
            one_by_one.add_row(&ds, r);
        }
        prop_assert_eq!(one_by_one, ds.fold_all());
    }

    #[test]
    fn single_choice_shares_sum_to_one_and_nps_is_bounded(rows in arb_rows()) {
        let ds = build(&rows);
        let p = ds.fold_all().finish(&ds, ds.len() as u64);
        let city = &p.choices[0];
        if city.answered > 0 {
            let s: f64 = city.options.iter().filter_map(|o| o.share).sum();
            prop_assert!((s - 1.0).abs() < 1e-12);
        }
        if let Some(n) = p.nps.and_then(|n| n.nps) {
            prop_assert!((-100.0..=100.0).contains(&n));
        }
    }
}
