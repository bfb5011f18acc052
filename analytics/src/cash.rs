//! Cash Journey Map (analytics.md §5): a scenario's funnel from reach to
//! profit, its per-stage view, which checkpoint moves profit most, plan vs
//! fact, and the effect of switching a channel on.
use serde::{Deserialize, Serialize};

use crate::hypotheses::{Direction, welch};

/// One scenario's parameters per period (`min`, `base` or `max`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CashParams {
    /// R: people reached.
    pub reach: f64,
    /// ctr: share of the reached who click through.
    pub ctr: f64,
    /// l: share of traffic that leaves a lead.
    pub lead_rate: f64,
    /// c: share of traffic that makes a first purchase.
    pub conversion: f64,
    /// q: items per order.
    pub items_per_order: f64,
    /// p: item price.
    pub item_price: f64,
    /// r: share of first sales refused.
    pub refusal_rate: f64,
    /// k: repeat purchases per completed customer.
    pub repeat_purchases: f64,
    /// u: uplift of the repeat check over the first.
    pub repeat_uplift: f64,
    /// m: gross margin.
    pub gross_margin: f64,
    /// C: marketing cost.
    pub marketing_cost: f64,
}

/// A parameter of [`CashParams`], named as its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashParam {
    Reach,
    Ctr,
    LeadRate,
    Conversion,
    ItemsPerOrder,
    ItemPrice,
    RefusalRate,
    RepeatPurchases,
    RepeatUplift,
    GrossMargin,
    MarketingCost,
}

impl CashParam {
    pub const ALL: [CashParam; 11] = [
        CashParam::Reach,
        CashParam::Ctr,
        CashParam::LeadRate,
        CashParam::Conversion,
        CashParam::ItemsPerOrder,
        CashParam::ItemPrice,
        CashParam::RefusalRate,
        CashParam::RepeatPurchases,
        CashParam::RepeatUplift,
        CashParam::GrossMargin,
        CashParam::MarketingCost,
    ];

    /// The field name (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            CashParam::Reach => "reach",
            CashParam::Ctr => "ctr",
            CashParam::LeadRate => "lead_rate",
            CashParam::Conversion => "conversion",
            CashParam::ItemsPerOrder => "items_per_order",
            CashParam::ItemPrice => "item_price",
            CashParam::RefusalRate => "refusal_rate",
            CashParam::RepeatPurchases => "repeat_purchases",
            CashParam::RepeatUplift => "repeat_uplift",
            CashParam::GrossMargin => "gross_margin",
            CashParam::MarketingCost => "marketing_cost",
        }
    }

    /// Rates live in [0, 1]: ctr, l, c, r, m.
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            CashParam::Ctr
                | CashParam::LeadRate
                | CashParam::Conversion
                | CashParam::RefusalRate
                | CashParam::GrossMargin
        )
    }

    pub fn get(self, params: &CashParams) -> f64 {
        match self {
            CashParam::Reach => params.reach,
            CashParam::Ctr => params.ctr,
            CashParam::LeadRate => params.lead_rate,
            CashParam::Conversion => params.conversion,
            CashParam::ItemsPerOrder => params.items_per_order,
            CashParam::ItemPrice => params.item_price,
            CashParam::RefusalRate => params.refusal_rate,
            CashParam::RepeatPurchases => params.repeat_purchases,
            CashParam::RepeatUplift => params.repeat_uplift,
            CashParam::GrossMargin => params.gross_margin,
            CashParam::MarketingCost => params.marketing_cost,
        }
    }

    pub fn set(self, params: &mut CashParams, value: f64) {
        let field = match self {
            CashParam::Reach => &mut params.reach,
            CashParam::Ctr => &mut params.ctr,
            CashParam::LeadRate => &mut params.lead_rate,
            CashParam::Conversion => &mut params.conversion,
            CashParam::ItemsPerOrder => &mut params.items_per_order,
            CashParam::ItemPrice => &mut params.item_price,
            CashParam::RefusalRate => &mut params.refusal_rate,
            CashParam::RepeatPurchases => &mut params.repeat_purchases,
            CashParam::RepeatUplift => &mut params.repeat_uplift,
            CashParam::GrossMargin => &mut params.gross_margin,
            CashParam::MarketingCost => &mut params.marketing_cost,
        };
        *field = value;
    }
}

/// A parameter that is out of range, with a message for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamError {
    pub field: CashParam,
    pub message: String,
}

impl CashParams {
    /// Every out-of-range parameter, in field order: reach ≥ 0; ctr, l, c,
    /// r, m in [0, 1]; q, p, k, u, C ≥ 0; all finite.
    pub fn validate(&self) -> Result<(), Vec<ParamError>> {
        let errors: Vec<ParamError> = CashParam::ALL
            .iter()
            .filter_map(|&field| {
                let value = field.get(self);
                let message = if !value.is_finite() {
                    "must be a finite number"
                } else if field.is_rate() && !(0.0..=1.0).contains(&value) {
                    "must be between 0 and 1"
                } else if value < 0.0 {
                    "must not be negative"
                } else {
                    return None;
                };
                Some(ParamError {
                    field,
                    message: message.to_owned(),
                })
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Every figure of §5 for these parameters.
    pub fn figures(&self) -> CashFigures {
        let traffic = self.reach * self.ctr;
        let leads = traffic * self.lead_rate;
        let first_sales = traffic * self.conversion;
        let check = self.items_per_order * self.item_price;
        let completed = first_sales * (1.0 - self.refusal_rate);
        let first_revenue = completed * check;
        let repeat_revenue = completed * self.repeat_purchases * check * (1.0 + self.repeat_uplift);
        let revenue = first_revenue + repeat_revenue;
        let gross_profit = revenue * self.gross_margin;
        let profit = gross_profit - self.marketing_cost;
        let cost = self.marketing_cost;
        CashFigures {
            traffic,
            leads,
            first_sales,
            check,
            completed,
            first_revenue,
            repeat_revenue,
            revenue,
            gross_profit,
            profit,
            romi: (cost != 0.0).then(|| profit / cost),
            cost_per_sale: (completed != 0.0).then(|| cost / completed),
        }
    }

    /// The parameters and figures grouped by CJM stage.
    pub fn stages(&self) -> CashStages {
        let f = self.figures();
        CashStages {
            need_formation: NeedFormationStage {
                reach: self.reach,
                ctr: self.ctr,
            },
            evaluation_and_choice: EvaluationStage {
                traffic: f.traffic,
                lead_rate: self.lead_rate,
                leads: f.leads,
                conversion: self.conversion,
            },
            deal: DealStage {
                items_per_order: self.items_per_order,
                item_price: self.item_price,
                check: f.check,
                first_sales: f.first_sales,
            },
            experience: ExperienceStage {
                refusal_rate: self.refusal_rate,
                completed: f.completed,
            },
            loyalty: LoyaltyStage {
                repeat_purchases: self.repeat_purchases,
                repeat_uplift: self.repeat_uplift,
                repeat_revenue: f.repeat_revenue,
            },
        }
    }
}

/// §5's figures: T, L, N1, A, N, revenues, profits. `romi` is None when
/// C = 0, `cost_per_sale` (C / N) when N = 0.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CashFigures {
    pub traffic: f64,
    pub leads: f64,
    pub first_sales: f64,
    pub check: f64,
    pub completed: f64,
    pub first_revenue: f64,
    pub repeat_revenue: f64,
    pub revenue: f64,
    pub gross_profit: f64,
    pub profit: f64,
    pub romi: Option<f64>,
    pub cost_per_sale: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NeedFormationStage {
    pub reach: f64,
    pub ctr: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvaluationStage {
    pub traffic: f64,
    pub lead_rate: f64,
    pub leads: f64,
    pub conversion: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DealStage {
    pub items_per_order: f64,
    pub item_price: f64,
    pub check: f64,
    pub first_sales: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ExperienceStage {
    pub refusal_rate: f64,
    pub completed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoyaltyStage {
    pub repeat_purchases: f64,
    pub repeat_uplift: f64,
    pub repeat_revenue: f64,
}

/// The CJM stages: need formation, evaluation & choice, deal, experience,
/// loyalty.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CashStages {
    pub need_formation: NeedFormationStage,
    pub evaluation_and_choice: EvaluationStage,
    pub deal: DealStage,
    pub experience: ExperienceStage,
    pub loyalty: LoyaltyStage,
}

/// Profit after raising one parameter by 10%.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SensitivityRow {
    pub parameter: CashParam,
    pub base_value: f64,
    /// base · 1.1, capped at 1 for rates.
    pub raised_value: f64,
    pub profit: f64,
    /// profit − base profit.
    pub profit_delta: f64,
}

/// Relative size below which two profit deltas count as a tie: raising R
/// or ctr by 10% moves profit by the same amount, up to rounding.
const TIE_TOLERANCE: f64 = 1e-9;

/// Each parameter raised by 10% (rates capped at 1), ranked by profit
/// delta descending — "the checkpoint to improve first"; ties (deltas equal
/// within 1e-9 of the largest) by parameter name ascending.
pub fn sensitivity(params: &CashParams) -> Vec<SensitivityRow> {
    let base_profit = params.figures().profit;
    let mut rows: Vec<SensitivityRow> = CashParam::ALL
        .iter()
        .map(|&parameter| {
            let base_value = parameter.get(params);
            let raised = base_value * 1.1;
            let raised_value = if parameter.is_rate() {
                raised.min(1.0)
            } else {
                raised
            };
            let mut changed = *params;
            parameter.set(&mut changed, raised_value);
            let profit = changed.figures().profit;
            SensitivityRow {
                parameter,
                base_value,
                raised_value,
                profit,
                profit_delta: profit - base_profit,
            }
        })
        .collect();

    // Bucketing relative to the largest delta gives a total order with
    // rounding-level ties, which a tolerance inside the comparator would not.
    let scale = rows
        .iter()
        .map(|row| row.profit_delta.abs())
        .fold(0.0, f64::max);
    let key = |delta: f64| {
        if scale > 0.0 && scale.is_finite() {
            (delta / scale / TIE_TOLERANCE).round()
        } else {
            0.0
        }
    };
    rows.sort_by(|a, b| {
        key(b.profit_delta)
            .total_cmp(&key(a.profit_delta))
            .then_with(|| a.parameter.name().cmp(b.parameter.name()))
    });
    rows
}

/// A figure of [`CashFigures`], named as its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CashFigure {
    Traffic,
    Leads,
    FirstSales,
    Check,
    Completed,
    FirstRevenue,
    RepeatRevenue,
    Revenue,
    GrossProfit,
    Profit,
    Romi,
    CostPerSale,
}

impl CashFigure {
    pub const ALL: [CashFigure; 12] = [
        CashFigure::Traffic,
        CashFigure::Leads,
        CashFigure::FirstSales,
        CashFigure::Check,
        CashFigure::Completed,
        CashFigure::FirstRevenue,
        CashFigure::RepeatRevenue,
        CashFigure::Revenue,
        CashFigure::GrossProfit,
        CashFigure::Profit,
        CashFigure::Romi,
        CashFigure::CostPerSale,
    ];
}

impl CashFigures {
    pub fn get(&self, figure: CashFigure) -> Option<f64> {
        match figure {
            CashFigure::Traffic => Some(self.traffic),
            CashFigure::Leads => Some(self.leads),
            CashFigure::FirstSales => Some(self.first_sales),
            CashFigure::Check => Some(self.check),
            CashFigure::Completed => Some(self.completed),
            CashFigure::FirstRevenue => Some(self.first_revenue),
            CashFigure::RepeatRevenue => Some(self.repeat_revenue),
            CashFigure::Revenue => Some(self.revenue),
            CashFigure::GrossProfit => Some(self.gross_profit),
            CashFigure::Profit => Some(self.profit),
            CashFigure::Romi => self.romi,
            CashFigure::CostPerSale => self.cost_per_sale,
        }
    }
}

/// A period's actual figures, entered or ingested; any may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActualFigures {
    pub traffic: Option<f64>,
    pub leads: Option<f64>,
    pub first_sales: Option<f64>,
    pub check: Option<f64>,
    pub completed: Option<f64>,
    pub first_revenue: Option<f64>,
    pub repeat_revenue: Option<f64>,
    pub revenue: Option<f64>,
    pub gross_profit: Option<f64>,
    pub profit: Option<f64>,
    pub romi: Option<f64>,
    pub cost_per_sale: Option<f64>,
}

impl ActualFigures {
    pub fn get(&self, figure: CashFigure) -> Option<f64> {
        match figure {
            CashFigure::Traffic => self.traffic,
            CashFigure::Leads => self.leads,
            CashFigure::FirstSales => self.first_sales,
            CashFigure::Check => self.check,
            CashFigure::Completed => self.completed,
            CashFigure::FirstRevenue => self.first_revenue,
            CashFigure::RepeatRevenue => self.repeat_revenue,
            CashFigure::Revenue => self.revenue,
            CashFigure::GrossProfit => self.gross_profit,
            CashFigure::Profit => self.profit,
            CashFigure::Romi => self.romi,
            CashFigure::CostPerSale => self.cost_per_sale,
        }
    }
}

impl From<&CashFigures> for ActualFigures {
    fn from(f: &CashFigures) -> Self {
        Self {
            traffic: Some(f.traffic),
            leads: Some(f.leads),
            first_sales: Some(f.first_sales),
            check: Some(f.check),
            completed: Some(f.completed),
            first_revenue: Some(f.first_revenue),
            repeat_revenue: Some(f.repeat_revenue),
            revenue: Some(f.revenue),
            gross_profit: Some(f.gross_profit),
            profit: Some(f.profit),
            romi: f.romi,
            cost_per_sale: f.cost_per_sale,
        }
    }
}

/// Fact against plan for one figure.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FigureVariance {
    pub figure: CashFigure,
    pub plan: f64,
    pub actual: f64,
    /// actual − plan.
    pub absolute: f64,
    /// (actual − plan) / plan; None when the plan is 0.
    pub relative: Option<f64>,
}

/// Variances of every figure present both in the scenario's plan and in
/// the actuals, in figure order. Call once per scenario.
pub fn plan_vs_fact(plan: &CashFigures, actual: &ActualFigures) -> Vec<FigureVariance> {
    CashFigure::ALL
        .iter()
        .filter_map(|&figure| {
            let (plan, actual) = (plan.get(figure)?, actual.get(figure)?);
            let absolute = actual - plan;
            Some(FigureVariance {
                figure,
                plan,
                actual,
                absolute,
                relative: (plan != 0.0).then(|| absolute / plan),
            })
        })
        .collect()
}

/// One day of a daily metric and whether the channel was on that day.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelDay {
    pub value: f64,
    pub channel_on: bool,
}

/// mean(on) − mean(off) with Welch's 95% CI and two-sided p-value. The
/// means need one day on each side, the test two and some variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelEffect {
    pub n_on: u64,
    pub n_off: u64,
    pub mean_on: Option<f64>,
    pub mean_off: Option<f64>,
    pub effect: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_value: Option<f64>,
}

/// n, mean and sample variance by two passes (daily money metrics are too
/// large for the one-pass sums to stay exact).
fn mean_and_variance(values: &[f64]) -> (u64, Option<f64>, Option<f64>) {
    let n = values.len();
    if n == 0 {
        return (0, None, None);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance =
        (n >= 2).then(|| values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64);
    (n as u64, Some(mean), variance)
}

/// Effect of a channel on a daily metric: on-days against off-days.
pub fn channel_effect(days: &[ChannelDay]) -> ChannelEffect {
    let (on, off): (Vec<&ChannelDay>, Vec<&ChannelDay>) =
        days.iter().partition(|day| day.channel_on);
    let on: Vec<f64> = on.iter().map(|day| day.value).collect();
    let off: Vec<f64> = off.iter().map(|day| day.value).collect();
    let (n_on, mean_on, var_on) = mean_and_variance(&on);
    let (n_off, mean_off, var_off) = mean_and_variance(&off);
    let test = match (mean_on, var_on, mean_off, var_off) {
        (Some(m1), Some(v1), Some(m2), Some(v2)) => welch(n_on, m1, v1, n_off, m2, v2),
        _ => None,
    };
    ChannelEffect {
        n_on,
        n_off,
        mean_on,
        mean_off,
        effect: mean_on.zip(mean_off).map(|(a, b)| a - b),
        ci_low: test.map(|t| t.ci_low),
        ci_high: test.map(|t| t.ci_high),
        p_value: test.map(|t| t.p_value(Direction::Different)),
    }
}

#[cfg(test)]
mod tests {
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
        assert_eq!(v.len(), 12);
        assert!(
            v.iter()
                .all(|r| r.absolute == 0.0 && r.relative == Some(0.0))
        );
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
}
