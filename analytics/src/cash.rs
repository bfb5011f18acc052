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
            reach: self.reach,
            ctr: self.ctr,
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
            marketing_cost: cost,
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
/// C = 0, `cost_per_sale` (C / N) when N = 0. R, ctr and C are the
/// parameters themselves, carried along so that actuals of them (typed in or
/// taken from channel figures) have a plan to be compared with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CashFigures {
    pub reach: f64,
    pub ctr: f64,
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
    pub marketing_cost: f64,
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
    Reach,
    Ctr,
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
    MarketingCost,
}

impl CashFigure {
    pub const ALL: [CashFigure; 15] = [
        CashFigure::Reach,
        CashFigure::Ctr,
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
        CashFigure::MarketingCost,
    ];
}

impl CashFigures {
    pub fn get(&self, figure: CashFigure) -> Option<f64> {
        match figure {
            CashFigure::Reach => Some(self.reach),
            CashFigure::Ctr => Some(self.ctr),
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
            CashFigure::MarketingCost => Some(self.marketing_cost),
        }
    }
}

/// A period's actual figures, entered or ingested; any may be missing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActualFigures {
    pub reach: Option<f64>,
    pub ctr: Option<f64>,
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
    pub marketing_cost: Option<f64>,
}

impl ActualFigures {
    pub fn get(&self, figure: CashFigure) -> Option<f64> {
        match figure {
            CashFigure::Reach => self.reach,
            CashFigure::Ctr => self.ctr,
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
            CashFigure::MarketingCost => self.marketing_cost,
        }
    }
}

impl From<&CashFigures> for ActualFigures {
    fn from(f: &CashFigures) -> Self {
        Self {
            reach: Some(f.reach),
            ctr: Some(f.ctr),
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
            marketing_cost: Some(f.marketing_cost),
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
mod tests;
