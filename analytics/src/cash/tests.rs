use super::*;
use proptest::prelude::*;

fn close(actual: f64, expected: f64, rel: f64) {
    let scale = expected.abs().max(f64::MIN_POSITIVE);
    assert!(
        (actual - expected).abs() <= rel * scale,
        "actual {actual:e}, expected {expected:e}"
    );
}

/// §5's worked example, with l = 0.2, m = 0.5 and C = 1000 added.
fn example() -> CashParams {
    CashParams {
        reach: 1000.0,
        ctr: 0.1,
        lead_rate: 0.2,
        conversion: 0.5,
        items_per_order: 1.0,
        item_price: 100.0,
        refusal_rate: 0.0,
        repeat_purchases: 1.0,
        repeat_uplift: 0.1,
        gross_margin: 0.5,
        marketing_cost: 1000.0,
    }
}

#[test]
fn worked_example_of_section_5() {
    let f = example().figures();
    close(f.traffic, 100.0, 1e-12);
    close(f.first_sales, 50.0, 1e-12);
    close(f.completed, 50.0, 1e-12);
    close(f.check, 100.0, 1e-12);
    close(f.first_revenue, 5000.0, 1e-12);
    close(f.repeat_revenue, 5500.0, 1e-12);
    close(f.revenue, 10500.0, 1e-12);
    close(f.leads, 20.0, 1e-12);
    close(f.gross_profit, 5250.0, 1e-12);
    close(f.profit, 4250.0, 1e-12);
    close(f.romi.unwrap(), 4.25, 1e-12);
    close(f.cost_per_sale.unwrap(), 20.0, 1e-12);
}

#[test]
fn refusals_reduce_completed_sales() {
    let params = CashParams {
        refusal_rate: 0.2,
        ..example()
    };
    let f = params.figures();
    close(f.completed, 40.0, 1e-12);
    close(f.first_revenue, 4000.0, 1e-12);
    close(f.repeat_revenue, 4400.0, 1e-12);
}

#[test]
fn romi_and_cost_per_sale_are_null_when_undefined() {
    let free = CashParams {
        marketing_cost: 0.0,
        ..example()
    };
    assert_eq!(free.figures().romi, None);
    let no_sales = CashParams {
        conversion: 0.0,
        ..example()
    };
    assert_eq!(no_sales.figures().cost_per_sale, None);
    close(no_sales.figures().profit, -1000.0, 1e-12);
}

#[test]
fn stages_group_parameters_and_figures() {
    let s = example().stages();
    close(s.need_formation.reach, 1000.0, 1e-12);
    close(s.evaluation_and_choice.traffic, 100.0, 1e-12);
    close(s.evaluation_and_choice.leads, 20.0, 1e-12);
    close(s.deal.check, 100.0, 1e-12);
    close(s.deal.first_sales, 50.0, 1e-12);
    close(s.experience.completed, 50.0, 1e-12);
    close(s.loyalty.repeat_revenue, 5500.0, 1e-12);
}

#[test]
fn validation_lists_every_bad_field() {
    assert_eq!(example().validate(), Ok(()));
    let cases: [(CashParam, f64, &str); 6] = [
        (CashParam::Reach, -1.0, "must not be negative"),
        (CashParam::Ctr, 1.5, "must be between 0 and 1"),
        (CashParam::GrossMargin, -0.1, "must be between 0 and 1"),
        (CashParam::ItemPrice, -5.0, "must not be negative"),
        (CashParam::RepeatUplift, -0.1, "must not be negative"),
        (
            CashParam::MarketingCost,
            f64::NAN,
            "must be a finite number",
        ),
    ];
    for (field, value, message) in cases {
        let mut params = example();
        field.set(&mut params, value);
        let errors = params.validate().unwrap_err();
        assert_eq!(
            errors,
            vec![ParamError {
                field,
                message: message.to_owned()
            }]
        );
    }
    // Several at once, in field order; a price above 1 is fine.
    let mut params = example();
    params.refusal_rate = 2.0;
    params.reach = -3.0;
    let fields: Vec<CashParam> = params
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, vec![CashParam::Reach, CashParam::RefusalRate]);
}

#[test]
fn sensitivity_ranks_checkpoints_by_profit_delta() {
    let rows = sensitivity(&example());
    let order: Vec<&str> = rows.iter().map(|r| r.parameter.name()).collect();
    // R, ctr, c, q, p, m each add 10% of gross profit (525) — tied, by
    // name; k and u act on the repeat part only; l does nothing; r is
    // 0 so stays 0; C costs 100.
    assert_eq!(
        order,
        vec![
            "conversion",
            "ctr",
            "gross_margin",
            "item_price",
            "items_per_order",
            "reach",
            "repeat_purchases",
            "repeat_uplift",
            "lead_rate",
            "refusal_rate",
            "marketing_cost",
        ]
    );
    close(rows[0].profit_delta, 525.0, 1e-9);
    // k: repeat revenue 5500 → 6050, ·m = +275
    close(rows[6].profit_delta, 275.0, 1e-9);
    // u: 50·100·1.11 − 5500 = 50, ·m = +25
    close(rows[7].profit_delta, 25.0, 1e-9);
    close(rows[10].profit_delta, -100.0, 1e-12);
}

#[test]
fn sensitivity_caps_rates_at_one() {
    let params = CashParams {
        conversion: 0.95,
        refusal_rate: 0.5,
        ..example()
    };
    let rows = sensitivity(&params);
    let conversion = rows
        .iter()
        .find(|r| r.parameter == CashParam::Conversion)
        .unwrap();
    assert_eq!(conversion.raised_value, 1.0);
    let refusal = rows
        .iter()
        .find(|r| r.parameter == CashParam::RefusalRate)
        .unwrap();
    close(refusal.raised_value, 0.55, 1e-12);
    assert!(refusal.profit_delta < 0.0);
}

#[test]
fn plan_vs_fact_reports_absolute_and_relative_variance() {
    let plan = example().figures();
    let actual = ActualFigures {
        traffic: Some(80.0),
        revenue: Some(12600.0),
        romi: Some(5.0),
        ..ActualFigures::default()
    };
    let v = plan_vs_fact(&plan, &actual);
    let figures: Vec<CashFigure> = v.iter().map(|r| r.figure).collect();
    assert_eq!(
        figures,
        vec![CashFigure::Traffic, CashFigure::Revenue, CashFigure::Romi]
    );
    close(v[0].absolute, -20.0, 1e-12);
    close(v[0].relative.unwrap(), -0.2, 1e-12);
    close(v[1].absolute, 2100.0, 1e-12);
    close(v[1].relative.unwrap(), 0.2, 1e-12);
    close(v[2].absolute, 0.75, 1e-12);

    // A zero plan has no relative variance.
    let zero_plan = CashParams {
        repeat_purchases: 0.0,
        ..example()
    }
    .figures();
    let v = plan_vs_fact(
        &zero_plan,
        &ActualFigures {
            repeat_revenue: Some(300.0),
            ..ActualFigures::default()
        },
    );
    close(v[0].absolute, 300.0, 1e-12);
    assert_eq!(v[0].relative, None);
}

#[test]
fn plan_against_itself_has_no_variance() {
    let plan = example().figures();
    let v = plan_vs_fact(&plan, &ActualFigures::from(&plan));
    assert_eq!(v.len(), 15);
    assert!(
        v.iter()
            .all(|r| r.absolute == 0.0 && r.relative == Some(0.0))
    );
}

#[test]
fn reach_ctr_and_marketing_cost_are_compared_with_the_parameters() {
    // Plan R=1000, ctr=0.1, C=1000; fact 1250 reached, ctr 0.08, C 900.
    let plan = example().figures();
    let actual = ActualFigures {
        reach: Some(1250.0),
        ctr: Some(0.08),
        marketing_cost: Some(900.0),
        ..ActualFigures::default()
    };
    let v = plan_vs_fact(&plan, &actual);
    let figures: Vec<CashFigure> = v.iter().map(|r| r.figure).collect();
    assert_eq!(
        figures,
        vec![
            CashFigure::Reach,
            CashFigure::Ctr,
            CashFigure::MarketingCost
        ]
    );
    close(v[0].absolute, 250.0, 1e-12);
    close(v[0].relative.unwrap(), 0.25, 1e-12);
    close(v[1].absolute, -0.02, 1e-12);
    close(v[1].relative.unwrap(), -0.2, 1e-12);
    close(v[2].absolute, -100.0, 1e-12);
    close(v[2].relative.unwrap(), -0.1, 1e-12);
}

#[test]
fn channel_effect_matches_scipy() {
    let on = [120.0, 135.0, 128.0, 140.0, 131.0, 125.0];
    let off = [110.0, 118.0, 105.0, 121.0, 115.0, 112.0, 108.0, 119.0];
    let days: Vec<ChannelDay> = on
        .iter()
        .map(|&value| ChannelDay {
            value,
            channel_on: true,
        })
        .chain(off.iter().map(|&value| ChannelDay {
            value,
            channel_on: false,
        }))
        .collect();
    let e = channel_effect(&days);
    assert_eq!((e.n_on, e.n_off), (6, 8));
    close(e.effect.unwrap(), 779.0 / 6.0 - 908.0 / 8.0, 1e-12);
    // scipy.stats.ttest_ind(on, off, equal_var=False).pvalue
    close(e.p_value.unwrap(), 0.0011379903451473204, 1e-9);
    // scipy.stats.ttest_ind(on, off, equal_var=False).confidence_interval(0.95)
    close(e.ci_low.unwrap(), 8.373581432373694, 1e-9);
    close(e.ci_high.unwrap(), 24.29308523429299, 1e-9);
}

#[test]
fn channel_effect_needs_days_on_both_sides() {
    let days = [
        ChannelDay {
            value: 1.0,
            channel_on: true,
        },
        ChannelDay {
            value: 3.0,
            channel_on: true,
        },
    ];
    let e = channel_effect(&days);
    assert_eq!(e.mean_on, Some(2.0));
    assert_eq!(e.effect, None);
    assert_eq!(e.p_value, None);
}

fn valid_params() -> impl Strategy<Value = CashParams> {
    (
        (0.0f64..1e6, 0.0f64..=1.0, 0.0f64..=1.0, 0.0f64..=1.0),
        (0.0f64..10.0, 0.0f64..1e4, 0.0f64..=1.0, 0.0f64..5.0),
        (0.0f64..2.0, 0.0f64..=1.0, 0.0f64..1e6),
    )
        .prop_map(
            |((reach, ctr, lead_rate, conversion), (q, p, r, k), (u, m, cost))| CashParams {
                reach,
                ctr,
                lead_rate,
                conversion,
                items_per_order: q,
                item_price: p,
                refusal_rate: r,
                repeat_purchases: k,
                repeat_uplift: u,
                gross_margin: m,
                marketing_cost: cost,
            },
        )
}

proptest! {
    #[test]
    fn generated_params_are_valid(params in valid_params()) {
        prop_assert_eq!(params.validate(), Ok(()));
    }

    #[test]
    fn profit_is_linear_in_item_price(params in valid_params(), a in 0.0f64..1e4, b in 0.0f64..1e4) {
        let profit = |p: f64| CashParams { item_price: p, ..params }.figures().profit;
        let lhs = profit(a + b) + profit(0.0);
        let rhs = profit(a) + profit(b);
        let scale = lhs.abs().max(rhs.abs()).max(1.0);
        prop_assert!((lhs - rhs).abs() <= 1e-9 * scale, "{lhs} vs {rhs}");
    }

    #[test]
    fn raising_marketing_cost_lowers_profit(params in valid_params()) {
        prop_assume!(params.marketing_cost > 0.0);
        let rows = sensitivity(&params);
        let cost = rows.iter().find(|r| r.parameter == CashParam::MarketingCost).unwrap();
        prop_assert!(cost.profit_delta < 0.0);
    }

    #[test]
    fn raised_rates_never_exceed_one(params in valid_params()) {
        for row in sensitivity(&params) {
            if row.parameter.is_rate() {
                prop_assert!(row.raised_value <= 1.0);
            }
            prop_assert!(row.raised_value >= row.base_value);
        }
    }

    #[test]
    fn sensitivity_is_sorted_by_delta(params in valid_params()) {
        let rows = sensitivity(&params);
        prop_assert_eq!(rows.len(), 11);
        let scale = rows.iter().map(|r| r.profit_delta.abs()).fold(0.0, f64::max);
        for pair in rows.windows(2) {
            prop_assert!(pair[0].profit_delta >= pair[1].profit_delta - 1e-8 * scale);
        }
    }
}
