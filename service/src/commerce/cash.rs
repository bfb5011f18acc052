//! Cash Journey models (analytics.md §5, product flow 5): per client, models
//! with exactly three scenarios (`min`, `base`, `max`) of the funnel
//! parameters, actual figures per period (`YYYY-MM`) for plan vs fact, and
//! channel on/off calendars with a daily metric for the channel effect.
//!
//! The figures are computed on read by `analytics::cash` — they are cheap,
//! so results are never stale and nothing derived is stored. Viewers read;
//! analysts change models; actuals and calendars are data, so whoever may
//! ingest (analysts, `ingest`/`write` API keys) may push them.
use std::collections::{HashMap, HashSet};

use analytics::cash::{
    self as calc, ActualFigures, CashFigure, CashFigures, CashParam, CashParams, CashStages,
    ChannelDay,
};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{cash_actual, cash_channel, cash_model, cash_scenario};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

/// Parameters other than rates are at most this, so every figure stays finite.
pub const MAX_PARAMETER: f64 = 1e12;
/// Actual figures and daily metric values are at most this in magnitude.
pub const MAX_FIGURE: f64 = 1e15;
/// Periods of actuals per model (30 years of months).
pub const MAX_PERIODS: u64 = 360;
/// Channel calendars per model.
pub const MAX_CHANNELS: u64 = 20;
/// Days per channel calendar.
pub const MAX_DAYS: usize = 1000;

// ---------------------------------------------------------------- inputs/views

/// One scenario's parameters per period (analytics.md §5). Rates (`ctr`,
/// `lead_rate`, `conversion`, `refusal_rate`, `gross_margin`) are in [0, 1];
/// the others are ≥ 0 and at most 1e12.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[graphql(input_name = "CashParametersInput")]
#[serde(deny_unknown_fields)]
pub struct CashParameters {
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

impl From<CashParameters> for CashParams {
    fn from(p: CashParameters) -> Self {
        CashParams {
            reach: p.reach,
            ctr: p.ctr,
            lead_rate: p.lead_rate,
            conversion: p.conversion,
            items_per_order: p.items_per_order,
            item_price: p.item_price,
            refusal_rate: p.refusal_rate,
            repeat_purchases: p.repeat_purchases,
            repeat_uplift: p.repeat_uplift,
            gross_margin: p.gross_margin,
            marketing_cost: p.marketing_cost,
        }
    }
}

impl From<&cash_scenario::Model> for CashParameters {
    fn from(m: &cash_scenario::Model) -> Self {
        Self {
            reach: m.reach,
            ctr: m.ctr,
            lead_rate: m.lead_rate,
            conversion: m.conversion,
            items_per_order: m.items_per_order,
            item_price: m.item_price,
            refusal_rate: m.refusal_rate,
            repeat_purchases: m.repeat_purchases,
            repeat_uplift: m.repeat_uplift,
            gross_margin: m.gross_margin,
            marketing_cost: m.marketing_cost,
        }
    }
}

/// The three scenarios: `min` (the business without a marketer), `base`
/// (good settings), `max` (a tuned CJM).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[graphql(input_name = "CashScenariosInput")]
#[serde(deny_unknown_fields)]
pub struct CashScenarios {
    pub min: CashParameters,
    pub base: CashParameters,
    pub max: CashParameters,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Min,
    Base,
    Max,
}

impl Scenario {
    const ALL: [Scenario; 3] = [Scenario::Min, Scenario::Base, Scenario::Max];

    fn as_str(self) -> &'static str {
        match self {
            Scenario::Min => "min",
            Scenario::Base => "base",
            Scenario::Max => "max",
        }
    }
}

impl CashScenarios {
    fn get(&self, s: Scenario) -> &CashParameters {
        match s {
            Scenario::Min => &self.min,
            Scenario::Base => &self.base,
            Scenario::Max => &self.max,
        }
    }
}

/// A model as created or replaced.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CashModelInput {
    pub name: String,
    pub scenarios: CashScenarios,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashModelView {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub scenarios: CashScenarios,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
crate::has_id!(CashModelView, cash_model::Model);

/// A period's actual figures (names as in the results); any may be absent,
/// and only those present are compared with the plan. `profit` and `romi`
/// may be negative, the others not.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[graphql(input_name = "CashActualFiguresInput")]
#[serde(deny_unknown_fields)]
pub struct CashActualFigures {
    pub traffic: Option<f64>,
    pub leads: Option<f64>,
    pub first_sales: Option<f64>,
    /// The average check A = q·p.
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

impl CashActualFigures {
    /// (name, value, may be negative) in figure order.
    fn fields(&self) -> [(&'static str, Option<f64>, bool); 12] {
        [
            ("traffic", self.traffic, false),
            ("leads", self.leads, false),
            ("first_sales", self.first_sales, false),
            ("check", self.check, false),
            ("completed", self.completed, false),
            ("first_revenue", self.first_revenue, false),
            ("repeat_revenue", self.repeat_revenue, false),
            ("revenue", self.revenue, false),
            ("gross_profit", self.gross_profit, true),
            ("profit", self.profit, true),
            ("romi", self.romi, true),
            ("cost_per_sale", self.cost_per_sale, false),
        ]
    }
}

impl From<CashActualFigures> for ActualFigures {
    fn from(a: CashActualFigures) -> Self {
        ActualFigures {
            traffic: a.traffic,
            leads: a.leads,
            first_sales: a.first_sales,
            check: a.check,
            completed: a.completed,
            first_revenue: a.first_revenue,
            repeat_revenue: a.repeat_revenue,
            revenue: a.revenue,
            gross_profit: a.gross_profit,
            profit: a.profit,
            romi: a.romi,
            cost_per_sale: a.cost_per_sale,
        }
    }
}

/// The actual figures of one period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashActualsView {
    /// `YYYY-MM`.
    pub period: String,
    pub figures: CashActualFigures,
    pub updated_at: DateTime<Utc>,
}

impl From<cash_actual::Model> for CashActualsView {
    fn from(m: cash_actual::Model) -> Self {
        Self {
            period: m.period,
            figures: CashActualFigures {
                traffic: m.traffic,
                leads: m.leads,
                first_sales: m.first_sales,
                check: m.check_amount,
                completed: m.completed,
                first_revenue: m.first_revenue,
                repeat_revenue: m.repeat_revenue,
                revenue: m.revenue,
                gross_profit: m.gross_profit,
                profit: m.profit,
                romi: m.romi,
                cost_per_sale: m.cost_per_sale,
            },
            updated_at: m.updated_at,
        }
    }
}

/// One day of the daily metric and whether the channel was on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    async_graphql::SimpleObject,
    async_graphql::InputObject,
)]
#[graphql(input_name = "CashChannelDayInput")]
#[serde(deny_unknown_fields)]
pub struct CashChannelDay {
    pub date: NaiveDate,
    pub value: f64,
    pub channel_on: bool,
}

/// A channel's on/off calendar, replaced as a whole.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CashChannelInput {
    /// What the daily values measure, e.g. `orders` or `revenue`.
    pub metric: String,
    /// 1 to 1000 days, each date once.
    pub days: Vec<CashChannelDay>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashChannelView {
    /// The channel's key, e.g. `tv` or `context-ads`.
    pub name: String,
    pub metric: String,
    /// By date.
    pub days: Vec<CashChannelDay>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<cash_channel::Model> for CashChannelView {
    type Error = AppError;

    fn try_from(m: cash_channel::Model) -> AppResult<Self> {
        let days: Vec<CashChannelDay> = serde_json::from_value(m.days)
            .map_err(|e| anyhow::anyhow!("stored calendar of channel {}: {e}", m.id))?;
        Ok(Self {
            name: m.name,
            metric: m.metric,
            days,
            updated_at: m.updated_at,
        })
    }
}

// ------------------------------------------------------------------- results

/// §5's figures of one scenario. `romi` is null when C = 0, `cost_per_sale`
/// when no sale completes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashFiguresView {
    /// T = R·ctr.
    pub traffic: f64,
    /// L = T·l.
    pub leads: f64,
    /// N1 = T·c.
    pub first_sales: f64,
    /// A = q·p.
    pub check: f64,
    /// N = N1·(1−r).
    pub completed: f64,
    /// N·A.
    pub first_revenue: f64,
    /// N·k·A·(1+u).
    pub repeat_revenue: f64,
    pub revenue: f64,
    /// revenue·m.
    pub gross_profit: f64,
    /// gross profit − C.
    pub profit: f64,
    /// profit / C.
    pub romi: Option<f64>,
    /// C / N.
    pub cost_per_sale: Option<f64>,
}

/// Divisions by tiny numbers may overflow; an infinite ratio is no answer.
fn finite(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

impl From<CashFigures> for CashFiguresView {
    fn from(f: CashFigures) -> Self {
        Self {
            traffic: f.traffic,
            leads: f.leads,
            first_sales: f.first_sales,
            check: f.check,
            completed: f.completed,
            first_revenue: f.first_revenue,
            repeat_revenue: f.repeat_revenue,
            revenue: f.revenue,
            gross_profit: f.gross_profit,
            profit: f.profit,
            romi: finite(f.romi),
            cost_per_sale: finite(f.cost_per_sale),
        }
    }
}

/// Need formation: R, ctr.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashNeedFormationStage {
    pub reach: f64,
    pub ctr: f64,
}

/// Evaluation & choice: T, l, L, c.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashEvaluationStage {
    pub traffic: f64,
    pub lead_rate: f64,
    pub leads: f64,
    pub conversion: f64,
}

/// Deal: q, p, A, N1.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashDealStage {
    pub items_per_order: f64,
    pub item_price: f64,
    pub check: f64,
    pub first_sales: f64,
}

/// Experience: r, N.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashExperienceStage {
    pub refusal_rate: f64,
    pub completed: f64,
}

/// Loyalty: k, u, repeat revenue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashLoyaltyStage {
    pub repeat_purchases: f64,
    pub repeat_uplift: f64,
    pub repeat_revenue: f64,
}

/// The parameters and figures by CJM stage.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashStagesView {
    pub need_formation: CashNeedFormationStage,
    pub evaluation_and_choice: CashEvaluationStage,
    pub deal: CashDealStage,
    pub experience: CashExperienceStage,
    pub loyalty: CashLoyaltyStage,
}

impl From<CashStages> for CashStagesView {
    fn from(s: CashStages) -> Self {
        Self {
            need_formation: CashNeedFormationStage {
                reach: s.need_formation.reach,
                ctr: s.need_formation.ctr,
            },
            evaluation_and_choice: CashEvaluationStage {
                traffic: s.evaluation_and_choice.traffic,
                lead_rate: s.evaluation_and_choice.lead_rate,
                leads: s.evaluation_and_choice.leads,
                conversion: s.evaluation_and_choice.conversion,
            },
            deal: CashDealStage {
                items_per_order: s.deal.items_per_order,
                item_price: s.deal.item_price,
                check: s.deal.check,
                first_sales: s.deal.first_sales,
            },
            experience: CashExperienceStage {
                refusal_rate: s.experience.refusal_rate,
                completed: s.experience.completed,
            },
            loyalty: CashLoyaltyStage {
                repeat_purchases: s.loyalty.repeat_purchases,
                repeat_uplift: s.loyalty.repeat_uplift,
                repeat_revenue: s.loyalty.repeat_revenue,
            },
        }
    }
}

/// A parameter of a scenario, named as its field.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum CashParameterName {
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

impl From<CashParam> for CashParameterName {
    fn from(p: CashParam) -> Self {
        match p {
            CashParam::Reach => Self::Reach,
            CashParam::Ctr => Self::Ctr,
            CashParam::LeadRate => Self::LeadRate,
            CashParam::Conversion => Self::Conversion,
            CashParam::ItemsPerOrder => Self::ItemsPerOrder,
            CashParam::ItemPrice => Self::ItemPrice,
            CashParam::RefusalRate => Self::RefusalRate,
            CashParam::RepeatPurchases => Self::RepeatPurchases,
            CashParam::RepeatUplift => Self::RepeatUplift,
            CashParam::GrossMargin => Self::GrossMargin,
            CashParam::MarketingCost => Self::MarketingCost,
        }
    }
}

/// Profit after raising one parameter by 10% (rates capped at 1).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashSensitivityRow {
    pub parameter: CashParameterName,
    pub base_value: f64,
    pub raised_value: f64,
    pub profit: f64,
    /// profit − the scenario's profit.
    pub profit_delta: f64,
}

/// Everything computed for one scenario.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashScenarioResult {
    pub parameters: CashParameters,
    pub figures: CashFiguresView,
    pub stages: CashStagesView,
    /// Ranked by profit delta, largest first: the checkpoint to improve
    /// first leads.
    pub sensitivity: Vec<CashSensitivityRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashScenarioResults {
    pub min: CashScenarioResult,
    pub base: CashScenarioResult,
    pub max: CashScenarioResult,
}

/// A figure, named as in the results.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema, async_graphql::Enum,
)]
#[serde(rename_all = "snake_case")]
pub enum CashFigureName {
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

impl From<CashFigure> for CashFigureName {
    fn from(f: CashFigure) -> Self {
        match f {
            CashFigure::Traffic => Self::Traffic,
            CashFigure::Leads => Self::Leads,
            CashFigure::FirstSales => Self::FirstSales,
            CashFigure::Check => Self::Check,
            CashFigure::Completed => Self::Completed,
            CashFigure::FirstRevenue => Self::FirstRevenue,
            CashFigure::RepeatRevenue => Self::RepeatRevenue,
            CashFigure::Revenue => Self::Revenue,
            CashFigure::GrossProfit => Self::GrossProfit,
            CashFigure::Profit => Self::Profit,
            CashFigure::Romi => Self::Romi,
            CashFigure::CostPerSale => Self::CostPerSale,
        }
    }
}

/// Fact against plan for one figure.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashVariance {
    pub figure: CashFigureName,
    pub plan: f64,
    pub actual: f64,
    /// actual − plan.
    pub absolute: f64,
    /// (actual − plan) / plan; null when the plan is 0.
    pub relative: Option<f64>,
}

/// The variances of the figures present in the actuals, per scenario.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashScenarioVariances {
    pub min: Vec<CashVariance>,
    pub base: Vec<CashVariance>,
    pub max: Vec<CashVariance>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashPeriodResult {
    pub period: String,
    pub actual: CashActualFigures,
    pub against: CashScenarioVariances,
}

/// mean(on) − mean(off) of the daily metric with Welch's 95% CI and
/// two-sided p-value; the means need a day on each side, the test two and
/// some variance.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashChannelEffect {
    pub channel: String,
    pub metric: String,
    pub n_on: u64,
    pub n_off: u64,
    pub mean_on: Option<f64>,
    pub mean_off: Option<f64>,
    pub effect: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_value: Option<f64>,
}

/// Counts the changes of a model (parameters, actuals, channels): the data
/// version its results reflect.
pub const KIND_CASH: &str = "cash_model";

/// Every figure of a model, computed now from what is stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashResultsView {
    pub model_id: Uuid,
    pub name: String,
    /// The number of changes to the model, its actuals and channels so far.
    pub data_version: i64,
    pub computed_at: DateTime<Utc>,
    pub scenarios: CashScenarioResults,
    /// One entry per period with actuals, by period.
    pub plan_vs_fact: Vec<CashPeriodResult>,
    /// One entry per channel calendar, by channel name.
    pub channel_effects: Vec<CashChannelEffect>,
}

fn scenario_result(p: &CashParameters) -> CashScenarioResult {
    let params: CashParams = (*p).into();
    CashScenarioResult {
        parameters: *p,
        figures: params.figures().into(),
        stages: params.stages().into(),
        sensitivity: calc::sensitivity(&params)
            .into_iter()
            .map(|r| CashSensitivityRow {
                parameter: r.parameter.into(),
                base_value: r.base_value,
                raised_value: r.raised_value,
                profit: r.profit,
                profit_delta: r.profit_delta,
            })
            .collect(),
    }
}

fn variances(p: &CashParameters, actual: &CashActualFigures) -> Vec<CashVariance> {
    let plan = CashParams::from(*p).figures();
    calc::plan_vs_fact(&plan, &ActualFigures::from(*actual))
        .into_iter()
        .map(|v| CashVariance {
            figure: v.figure.into(),
            plan: v.plan,
            actual: v.actual,
            absolute: v.absolute,
            relative: finite(v.relative),
        })
        .collect()
}

fn channel_effect(c: &CashChannelView) -> CashChannelEffect {
    let days: Vec<ChannelDay> = c
        .days
        .iter()
        .map(|d| ChannelDay {
            value: d.value,
            channel_on: d.channel_on,
        })
        .collect();
    let e = calc::channel_effect(&days);
    CashChannelEffect {
        channel: c.name.clone(),
        metric: c.metric.clone(),
        n_on: e.n_on,
        n_off: e.n_off,
        mean_on: finite(e.mean_on),
        mean_off: finite(e.mean_off),
        effect: finite(e.effect),
        ci_low: finite(e.ci_low),
        ci_high: finite(e.ci_high),
        p_value: finite(e.p_value),
    }
}

// ----------------------------------------------------------------- parsing

fn check_name(name: &str, field: &str, max: usize, errs: &mut Vec<FieldError>) {
    let n = name.trim().chars().count();
    if n == 0 || n > max {
        errs.push(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
}

fn check_parameters(prefix: &str, p: &CashParameters, errs: &mut Vec<FieldError>) {
    let params = CashParams::from(*p);
    if let Err(list) = params.validate() {
        errs.extend(
            list.into_iter()
                .map(|e| FieldError::new(format!("{prefix}.{}", e.field.name()), e.message)),
        );
    }
    for field in CashParam::ALL {
        let v = field.get(&params);
        if !field.is_rate() && v.is_finite() && v > MAX_PARAMETER {
            errs.push(FieldError::new(
                format!("{prefix}.{}", field.name()),
                "must be at most 1e12",
            ));
        }
    }
}

/// Every offending field of a model, named by its path.
fn check_model(input: &CashModelInput) -> AppResult<()> {
    let mut errs = Vec::new();
    check_name(&input.name, "name", 200, &mut errs);
    for s in Scenario::ALL {
        check_parameters(
            &format!("scenarios.{}", s.as_str()),
            input.scenarios.get(s),
            &mut errs,
        );
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

/// A period label `YYYY-MM`.
pub fn parse_period(s: &str) -> AppResult<String> {
    let b = s.as_bytes();
    let shaped = b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[5..].iter().all(u8::is_ascii_digit);
    let month = if shaped {
        s[5..].parse::<u32>().ok()
    } else {
        None
    };
    match month {
        Some(1..=12) => Ok(s.to_owned()),
        _ => Err(AppError::field(
            "period",
            "must be a month as YYYY-MM, e.g. 2026-11",
        )),
    }
}

/// A channel key: 1 to 64 of `a-z`, `0-9`, `-`, `_`, starting with a letter
/// or digit.
pub fn parse_channel(s: &str) -> AppResult<String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
        && s.bytes()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(AppError::field(
            "channel",
            "must be 1 to 64 of a-z, 0-9, - and _, starting with a letter or digit",
        ))
    }
}

fn check_actuals(a: &CashActualFigures) -> AppResult<()> {
    let mut errs = Vec::new();
    let mut any = false;
    for (name, value, signed) in a.fields() {
        let Some(v) = value else { continue };
        any = true;
        let message = if !v.is_finite() {
            "must be a finite number"
        } else if !signed && v < 0.0 {
            "must not be negative"
        } else if v.abs() > MAX_FIGURE {
            "must be at most 1e15 in magnitude"
        } else {
            continue;
        };
        errs.push(FieldError::new(name, message));
    }
    if !any {
        errs.push(FieldError::new("body", "give at least one figure"));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

fn check_channel(input: &CashChannelInput) -> AppResult<()> {
    let mut errs = Vec::new();
    check_name(&input.metric, "metric", 100, &mut errs);
    if input.days.is_empty() || input.days.len() > MAX_DAYS {
        errs.push(FieldError::new(
            "days",
            format!("must list 1 to {MAX_DAYS} days"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, d) in input.days.iter().enumerate() {
        if !seen.insert(d.date) {
            errs.push(FieldError::new(
                format!("days[{i}].date"),
                "is listed twice",
            ));
        }
        if !d.value.is_finite() || d.value.abs() > MAX_FIGURE {
            errs.push(FieldError::new(
                format!("days[{i}].value"),
                "must be a finite number at most 1e15 in magnitude",
            ));
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errs))
    }
}

// ----------------------------------------------------------------- storage

/// A model of the agency, or 404; `lock` holds its row until the
/// transaction ends so children are never written under a deleted model.
async fn find_cash_model<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    id: Uuid,
    lock: bool,
) -> AppResult<cash_model::Model> {
    let mut q =
        cash_model::Entity::find_by_id(id).filter(cash_model::Column::AgencyId.eq(agency_id));
    if lock {
        q = q.lock_exclusive();
    }
    q.one(db).await?.ok_or(AppError::NotFound)
}

/// The scenarios of each of `models`.
async fn load_scenarios<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    models: &[Uuid],
) -> AppResult<HashMap<Uuid, CashScenarios>> {
    let rows = cash_scenario::Entity::find()
        .filter(cash_scenario::Column::AgencyId.eq(agency_id))
        .filter(cash_scenario::Column::ModelId.is_in(models.iter().copied()))
        .all(db)
        .await?;
    let mut by_model: HashMap<Uuid, HashMap<String, CashParameters>> = HashMap::new();
    for r in &rows {
        by_model
            .entry(r.model_id)
            .or_default()
            .insert(r.scenario.clone(), r.into());
    }
    let mut out = HashMap::new();
    for id in models {
        let mut s = by_model.remove(id).unwrap_or_default();
        let mut take = |k: Scenario| {
            s.remove(k.as_str()).ok_or_else(|| {
                AppError::Unexpected(anyhow::anyhow!(
                    "cash model {id} lacks its {} scenario",
                    k.as_str()
                ))
            })
        };
        let scenarios = CashScenarios {
            min: take(Scenario::Min)?,
            base: take(Scenario::Base)?,
            max: take(Scenario::Max)?,
        };
        out.insert(*id, scenarios);
    }
    Ok(out)
}

fn scenario_rows(
    agency_id: Uuid,
    model_id: Uuid,
    s: &CashScenarios,
) -> Vec<cash_scenario::ActiveModel> {
    Scenario::ALL
        .iter()
        .map(|&k| {
            let p = s.get(k);
            cash_scenario::ActiveModel {
                id: Set(new_id()),
                agency_id: Set(agency_id),
                model_id: Set(model_id),
                scenario: Set(k.as_str().to_owned()),
                reach: Set(p.reach),
                ctr: Set(p.ctr),
                lead_rate: Set(p.lead_rate),
                conversion: Set(p.conversion),
                items_per_order: Set(p.items_per_order),
                item_price: Set(p.item_price),
                refusal_rate: Set(p.refusal_rate),
                repeat_purchases: Set(p.repeat_purchases),
                repeat_uplift: Set(p.repeat_uplift),
                gross_margin: Set(p.gross_margin),
                marketing_cost: Set(p.marketing_cost),
            }
        })
        .collect()
}

fn view(m: cash_model::Model, scenarios: CashScenarios) -> CashModelView {
    CashModelView {
        id: m.id,
        client_id: m.client_id,
        name: m.name,
        scenarios,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

impl Services {
    pub async fn list_cash_models(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        page: PageParams,
    ) -> AppResult<Page<CashModelView>> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let q = cash_model::Entity::find()
            .filter(cash_model::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_model::Column::ClientId.eq(client_id));
        let models = req
            .fetch(q, cash_model::Column::Id, &self.db, |m| m)
            .await?;
        let ids: Vec<Uuid> = models.items.iter().map(|m| m.id).collect();
        let mut scenarios = load_scenarios(&self.db, ctx.agency_id, &ids).await?;
        let mut items = Vec::with_capacity(models.items.len());
        for m in models.items {
            let s = scenarios.remove(&m.id).ok_or_else(|| {
                AppError::Unexpected(anyhow::anyhow!("cash model {} lacks scenarios", m.id))
            })?;
            items.push(view(m, s));
        }
        Ok(Page {
            items,
            next_cursor: models.next_cursor,
        })
    }

    pub async fn create_cash_model(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: CashModelInput,
    ) -> AppResult<CashModelView> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::WriteResearch)?;
        check_model(&input)?;
        let t = now();
        let txn = begin_write(&self.db).await?;
        let m = cash_model::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(ctx.agency_id),
            client_id: Set(client_id),
            name: Set(input.name.trim().to_owned()),
            created_at: Set(t),
            updated_at: Set(t),
        }
        .insert(&txn)
        .await?;
        cash_scenario::Entity::insert_many(scenario_rows(ctx.agency_id, m.id, &input.scenarios))
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(view(m, input.scenarios))
    }

    pub async fn get_cash_model(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<CashModelView> {
        let m = find_cash_model(&self.db, ctx.agency_id, id, false).await?;
        ctx.require(Perm::Read)?;
        let mut s = load_scenarios(&self.db, ctx.agency_id, &[m.id]).await?;
        let scenarios = s.remove(&m.id).ok_or_else(|| {
            AppError::Unexpected(anyhow::anyhow!("cash model {id} lacks scenarios"))
        })?;
        Ok(view(m, scenarios))
    }

    /// Replaces the name and all three scenarios.
    pub async fn update_cash_model(
        &self,
        ctx: &RequestCtx,
        id: Uuid,
        input: CashModelInput,
    ) -> AppResult<CashModelView> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, id, true).await?;
        ctx.require(Perm::WriteResearch)?;
        check_model(&input)?;
        cash_scenario::Entity::delete_many()
            .filter(cash_scenario::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_scenario::Column::ModelId.eq(m.id))
            .exec(&txn)
            .await?;
        cash_scenario::Entity::insert_many(scenario_rows(ctx.agency_id, m.id, &input.scenarios))
            .exec_without_returning(&txn)
            .await?;
        let mut a: cash_model::ActiveModel = m.into();
        a.name = Set(input.name.trim().to_owned());
        a.updated_at = Set(now());
        let m = a.update(&txn).await?;
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, id).await?;
        txn.commit().await?;
        Ok(view(m, input.scenarios))
    }

    /// Deletes the model with its scenarios, actuals and calendars.
    pub async fn delete_cash_model(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<()> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, id, true).await?;
        ctx.require(Perm::WriteResearch)?;
        cash_actual::Entity::delete_many()
            .filter(cash_actual::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_actual::Column::ModelId.eq(m.id))
            .exec(&txn)
            .await?;
        cash_channel::Entity::delete_many()
            .filter(cash_channel::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_channel::Column::ModelId.eq(m.id))
            .exec(&txn)
            .await?;
        cash_scenario::Entity::delete_many()
            .filter(cash_scenario::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_scenario::Column::ModelId.eq(m.id))
            .exec(&txn)
            .await?;
        cash_model::Entity::delete_many()
            .filter(cash_model::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_model::Column::Id.eq(m.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(())
    }

    /// Every period's actuals, by period (at most 360).
    pub async fn list_cash_actuals(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
    ) -> AppResult<Vec<CashActualsView>> {
        let m = find_cash_model(&self.db, ctx.agency_id, model_id, false).await?;
        ctx.require(Perm::Read)?;
        Ok(actuals_of(&self.db, ctx.agency_id, m.id)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    /// Stores (or replaces) one period's actual figures.
    pub async fn put_cash_actuals(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
        period: &str,
        input: CashActualFigures,
    ) -> AppResult<CashActualsView> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, model_id, true).await?;
        ctx.require(Perm::Ingest)?;
        let period = parse_period(period)?;
        check_actuals(&input)?;
        let existing = cash_actual::Entity::find()
            .filter(cash_actual::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_actual::Column::ModelId.eq(m.id))
            .filter(cash_actual::Column::Period.eq(&period))
            .one(&txn)
            .await?;
        let t = now();
        let is_new = existing.is_none();
        let mut a = match existing {
            Some(row) => row.into(),
            None => {
                let count = cash_actual::Entity::find()
                    .filter(cash_actual::Column::AgencyId.eq(ctx.agency_id))
                    .filter(cash_actual::Column::ModelId.eq(m.id))
                    .count(&txn)
                    .await?;
                if count >= MAX_PERIODS {
                    return Err(AppError::Conflict(format!(
                        "a model holds at most {MAX_PERIODS} periods of actuals; delete old ones first"
                    )));
                }
                cash_actual::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(ctx.agency_id),
                    model_id: Set(m.id),
                    period: Set(period),
                    created_at: Set(t),
                    ..Default::default()
                }
            }
        };
        a.traffic = Set(input.traffic);
        a.leads = Set(input.leads);
        a.first_sales = Set(input.first_sales);
        a.check_amount = Set(input.check);
        a.completed = Set(input.completed);
        a.first_revenue = Set(input.first_revenue);
        a.repeat_revenue = Set(input.repeat_revenue);
        a.revenue = Set(input.revenue);
        a.gross_profit = Set(input.gross_profit);
        a.profit = Set(input.profit);
        a.romi = Set(input.romi);
        a.cost_per_sale = Set(input.cost_per_sale);
        a.updated_at = Set(t);
        let row = if is_new {
            a.insert(&txn).await?
        } else {
            a.update(&txn).await?
        };
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, model_id).await?;
        txn.commit().await?;
        Ok(row.into())
    }

    pub async fn delete_cash_actuals(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
        period: &str,
    ) -> AppResult<()> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, model_id, true).await?;
        ctx.require(Perm::Ingest)?;
        let period = parse_period(period)?;
        let res = cash_actual::Entity::delete_many()
            .filter(cash_actual::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_actual::Column::ModelId.eq(m.id))
            .filter(cash_actual::Column::Period.eq(period))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::NotFound);
        }
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, model_id).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Every channel calendar, by name (at most 20).
    pub async fn list_cash_channels(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
    ) -> AppResult<Vec<CashChannelView>> {
        let m = find_cash_model(&self.db, ctx.agency_id, model_id, false).await?;
        ctx.require(Perm::Read)?;
        channels_of(&self.db, ctx.agency_id, m.id).await
    }

    /// Stores (or replaces) a channel's calendar.
    pub async fn put_cash_channel(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
        channel: &str,
        input: CashChannelInput,
    ) -> AppResult<CashChannelView> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, model_id, true).await?;
        ctx.require(Perm::Ingest)?;
        let name = parse_channel(channel)?;
        check_channel(&input)?;
        let mut days = input.days;
        days.sort_by_key(|d| d.date);
        let existing = cash_channel::Entity::find()
            .filter(cash_channel::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_channel::Column::ModelId.eq(m.id))
            .filter(cash_channel::Column::Name.eq(&name))
            .one(&txn)
            .await?;
        let t = now();
        let is_new = existing.is_none();
        let mut a = match existing {
            Some(row) => row.into(),
            None => {
                let count = cash_channel::Entity::find()
                    .filter(cash_channel::Column::AgencyId.eq(ctx.agency_id))
                    .filter(cash_channel::Column::ModelId.eq(m.id))
                    .count(&txn)
                    .await?;
                if count >= MAX_CHANNELS {
                    return Err(AppError::Conflict(format!(
                        "a model holds at most {MAX_CHANNELS} channel calendars"
                    )));
                }
                cash_channel::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(ctx.agency_id),
                    model_id: Set(m.id),
                    name: Set(name),
                    created_at: Set(t),
                    ..Default::default()
                }
            }
        };
        a.metric = Set(input.metric.trim().to_owned());
        a.days = Set(serde_json::to_value(&days).map_err(anyhow::Error::from)?);
        a.updated_at = Set(t);
        let row = if is_new {
            a.insert(&txn).await?
        } else {
            a.update(&txn).await?
        };
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, model_id).await?;
        txn.commit().await?;
        row.try_into()
    }

    pub async fn delete_cash_channel(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
        channel: &str,
    ) -> AppResult<()> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, model_id, true).await?;
        ctx.require(Perm::Ingest)?;
        let name = parse_channel(channel)?;
        let res = cash_channel::Entity::delete_many()
            .filter(cash_channel::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_channel::Column::ModelId.eq(m.id))
            .filter(cash_channel::Column::Name.eq(name))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::NotFound);
        }
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, model_id).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Every figure per scenario and stage, sensitivity, plan vs fact per
    /// period and each channel's effect.
    pub async fn cash_results(&self, ctx: &RequestCtx, id: Uuid) -> AppResult<CashResultsView> {
        let txn = crate::infra::db::begin_snapshot(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, id, false).await?;
        ctx.require(Perm::Read)?;
        let scenarios = load_scenarios(&txn, ctx.agency_id, &[m.id])
            .await?
            .remove(&m.id)
            .ok_or_else(|| {
                AppError::Unexpected(anyhow::anyhow!("cash model {id} lacks scenarios"))
            })?;
        let actuals = actuals_of(&txn, ctx.agency_id, m.id).await?;
        let channels = channels_of(&txn, ctx.agency_id, m.id).await?;
        let data_version =
            crate::infra::ledger::wanted_version(&txn, ctx.agency_id, KIND_CASH, m.id).await?;
        txn.commit().await?;
        let plan_vs_fact = actuals
            .into_iter()
            .map(CashActualsView::from)
            .map(|a| CashPeriodResult {
                against: CashScenarioVariances {
                    min: variances(&scenarios.min, &a.figures),
                    base: variances(&scenarios.base, &a.figures),
                    max: variances(&scenarios.max, &a.figures),
                },
                period: a.period,
                actual: a.figures,
            })
            .collect();
        Ok(CashResultsView {
            model_id: m.id,
            name: m.name,
            data_version,
            computed_at: now(),
            scenarios: CashScenarioResults {
                min: scenario_result(&scenarios.min),
                base: scenario_result(&scenarios.base),
                max: scenario_result(&scenarios.max),
            },
            plan_vs_fact,
            channel_effects: channels.iter().map(channel_effect).collect(),
        })
    }
}

async fn actuals_of<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    model_id: Uuid,
) -> AppResult<Vec<cash_actual::Model>> {
    Ok(cash_actual::Entity::find()
        .filter(cash_actual::Column::AgencyId.eq(agency_id))
        .filter(cash_actual::Column::ModelId.eq(model_id))
        .order_by_asc(cash_actual::Column::Period)
        .limit(MAX_PERIODS)
        .all(db)
        .await?)
}

async fn channels_of<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    model_id: Uuid,
) -> AppResult<Vec<CashChannelView>> {
    cash_channel::Entity::find()
        .filter(cash_channel::Column::AgencyId.eq(agency_id))
        .filter(cash_channel::Column::ModelId.eq(model_id))
        .order_by_asc(cash_channel::Column::Name)
        .limit(MAX_CHANNELS)
        .all(db)
        .await?
        .into_iter()
        .map(CashChannelView::try_from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_months() {
        assert_eq!(parse_period("2026-11").ok().as_deref(), Some("2026-11"));
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-11",
            "2026/11",
            "2026-11-01",
            "",
        ] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_keys_are_slugs() {
        assert!(parse_channel("context-ads_2").is_ok());
        for bad in ["", "TV", "-tv", "tv ads", &"x".repeat(65)] {
            assert!(parse_channel(bad).is_err(), "{bad}");
        }
    }
}

/// A model's newest period of actuals against its base scenario.
#[derive(Debug, Clone)]
pub struct LatestPlanVsFact {
    pub model: String,
    pub period: String,
    /// The figures present in the actuals, in figure order.
    pub variances: Vec<CashVariance>,
}

/// For digests: every Cash Journey model of a client that has actuals, with
/// its latest period against the base scenario, and the sum of the models'
/// data versions (unchanged = nothing new).
pub async fn latest_plan_vs_fact<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<(Vec<LatestPlanVsFact>, i64)> {
    let models = cash_model::Entity::find()
        .filter(cash_model::Column::AgencyId.eq(agency_id))
        .filter(cash_model::Column::ClientId.eq(client_id))
        .order_by_asc(cash_model::Column::Id)
        .limit(50)
        .all(db)
        .await?;
    let ids: Vec<Uuid> = models.iter().map(|m| m.id).collect();
    let mut scenarios = load_scenarios(db, agency_id, &ids).await?;
    let mut out = Vec::new();
    let mut versions = 0;
    for m in models {
        versions += crate::infra::ledger::wanted_version(db, agency_id, KIND_CASH, m.id).await?;
        let latest = cash_actual::Entity::find()
            .filter(cash_actual::Column::AgencyId.eq(agency_id))
            .filter(cash_actual::Column::ModelId.eq(m.id))
            .order_by_desc(cash_actual::Column::Period)
            .one(db)
            .await?;
        let (Some(actual), Some(s)) = (latest, scenarios.remove(&m.id)) else {
            continue;
        };
        let a = CashActualsView::from(actual);
        let variances = variances(&s.base, &a.figures);
        if !variances.is_empty() {
            out.push(LatestPlanVsFact {
                model: m.name,
                period: a.period,
                variances,
            });
        }
    }
    Ok((out, versions))
}
