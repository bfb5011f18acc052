//! Every figure of a model (analytics.md §5) computed on read from what is
//! stored: scenarios by CJM stage, sensitivity, plan vs fact, channel effects;
//! and the latest plan vs fact that digests show.

use analytics::cash::{
    self as calc, ActualFigures, CashFigure, CashFigures, CashParam, CashParams, CashStages,
    ChannelDay,
};
use chrono::{DateTime, Utc};
use entity::{cash_actual, cash_model};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actuals::{actuals_of, channels_of};
use super::*;
use crate::infra::error::{AppError, AppResult};
use crate::{Perm, RequestCtx, Services, now};

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
    /// R, a parameter: compared when the actuals have it.
    Reach,
    /// ctr, a parameter.
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
    /// C, a parameter.
    MarketingCost,
}

impl From<CashFigure> for CashFigureName {
    fn from(f: CashFigure) -> Self {
        match f {
            CashFigure::Reach => Self::Reach,
            CashFigure::Ctr => Self::Ctr,
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
            CashFigure::MarketingCost => Self::MarketingCost,
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

impl Services {
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
