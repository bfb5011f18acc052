//! Cash Journey models (analytics.md §5, product flow 5): per client, models
//! with exactly three scenarios (`min`, `base`, `max`) of the funnel
//! parameters, actual figures per period (`YYYY-MM`) for plan vs fact, and
//! channel on/off calendars with a daily metric for the channel effect.
//!
//! The figures are computed on read by `analytics::cash` — they are cheap,
//! so results are never stale and nothing derived is stored. Viewers read;
//! analysts change models; actuals and calendars are data, so whoever may
//! ingest (analysts, `ingest`/`write` API keys) may push them.
use std::collections::HashMap;

use analytics::cash::{CashParam, CashParams};
use chrono::{DateTime, Utc};
use entity::{cash_actual, cash_channel, cash_model, cash_scenario};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, new_id, now};

mod actuals;
mod from_channels;
mod results;
pub use actuals::*;
pub use from_channels::*;
pub use results::*;

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
    #[schema(minimum = 0, maximum = 1e12)]
    pub reach: f64,
    /// ctr: share of the reached who click through.
    #[schema(minimum = 0, maximum = 1)]
    pub ctr: f64,
    /// l: share of traffic that leaves a lead.
    #[schema(minimum = 0, maximum = 1)]
    pub lead_rate: f64,
    /// c: share of traffic that makes a first purchase.
    #[schema(minimum = 0, maximum = 1)]
    pub conversion: f64,
    /// q: items per order.
    #[schema(minimum = 0, maximum = 1e12)]
    pub items_per_order: f64,
    /// p: item price.
    #[schema(minimum = 0, maximum = 1e12)]
    pub item_price: f64,
    /// r: share of first sales refused.
    #[schema(minimum = 0, maximum = 1)]
    pub refusal_rate: f64,
    /// k: repeat purchases per completed customer.
    #[schema(minimum = 0, maximum = 1e12)]
    pub repeat_purchases: f64,
    /// u: uplift of the repeat check over the first.
    #[schema(minimum = 0, maximum = 1e12)]
    pub repeat_uplift: f64,
    /// m: gross margin.
    #[schema(minimum = 0, maximum = 1)]
    pub gross_margin: f64,
    /// C: marketing cost.
    #[schema(minimum = 0, maximum = 1e12)]
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
    #[schema(schema_with = crate::infra::docs::text_200)]
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

/// Counts the changes of a model (parameters, actuals, channels): the data
/// version its results reflect.
pub const KIND_CASH: &str = "cash_model";

fn check_name(name: &str, field: &str, max: usize, errs: &mut Vec<FieldError>) {
    if !crate::domain::text::fits(name, max) {
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
        let v = view(m, input.scenarios);
        audit::commit(txn, ctx, Audit::create("cash_model", v.id, &v)).await?;
        Ok(v)
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
        let before = m.clone();
        let mut a: cash_model::ActiveModel = m.into();
        a.name = Set(input.name.trim().to_owned());
        a.updated_at = Set(now());
        // First, while only the model's lock is held (see `record_update`).
        audit::record_update(&txn, ctx, "cash_model", id, &before, &a, |m| m).await?;
        cash_scenario::Entity::delete_many()
            .filter(cash_scenario::Column::AgencyId.eq(ctx.agency_id))
            .filter(cash_scenario::Column::ModelId.eq(id))
            .exec(&txn)
            .await?;
        cash_scenario::Entity::insert_many(scenario_rows(ctx.agency_id, id, &input.scenarios))
            .exec_without_returning(&txn)
            .await?;
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
        audit::commit(txn, ctx, Audit::delete("cash_model", m.id, &m)).await
    }
}
