//! A model's actual figures per period (`YYYY-MM`) for plan vs fact, and its
//! channel on/off calendars with a daily metric for the channel effect.
use std::collections::HashSet;

use analytics::cash::ActualFigures;
use chrono::{DateTime, NaiveDate, Utc};
use entity::{cash_actual, cash_channel};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::{Perm, RequestCtx, Services, new_id, now};

/// A period's actual figures (names as in the results); any may be absent,
/// and only those present are compared with the plan. `profit` and `romi`
/// may be negative, the others not; `ctr` is a rate in [0, 1]. `reach`,
/// `ctr` and `marketing_cost` are compared with the scenario's parameters R,
/// ctr and C; they can be taken from the client's channel figures
/// (`POST /cash-models/{id}/actuals/from-channels`).
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
    /// R: people reached.
    pub reach: Option<f64>,
    /// ctr: share of the reached who click through.
    pub ctr: Option<f64>,
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
    /// C: marketing cost.
    pub marketing_cost: Option<f64>,
}

impl CashActualFigures {
    /// (name, value, may be negative) in figure order.
    fn fields(&self) -> [(&'static str, Option<f64>, bool); 15] {
        [
            ("reach", self.reach, false),
            ("ctr", self.ctr, false),
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
            ("marketing_cost", self.marketing_cost, false),
        ]
    }
}

impl From<CashActualFigures> for ActualFigures {
    fn from(a: CashActualFigures) -> Self {
        ActualFigures {
            reach: a.reach,
            ctr: a.ctr,
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
            marketing_cost: a.marketing_cost,
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
                reach: m.reach,
                ctr: m.ctr,
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
                marketing_cost: m.marketing_cost,
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
    #[schema(schema_with = crate::infra::docs::text_100)]
    pub metric: String,
    /// 1 to 1000 days, each date once.
    #[schema(min_items = 1, max_items = 1000)]
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
        } else if name == "ctr" && v > 1.0 {
            "must be a rate from 0 to 1"
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

pub(super) async fn actuals_of<C: ConnectionTrait>(
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

pub(super) async fn channels_of<C: ConnectionTrait>(
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

/// The stored actuals of one period, if any.
pub(super) async fn period_row<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    model_id: Uuid,
    period: &str,
) -> AppResult<Option<cash_actual::Model>> {
    Ok(cash_actual::Entity::find()
        .filter(cash_actual::Column::AgencyId.eq(agency_id))
        .filter(cash_actual::Column::ModelId.eq(model_id))
        .filter(cash_actual::Column::Period.eq(period))
        .one(db)
        .await?)
}

/// A new, empty period of actuals, unless the model holds the most it may.
pub(super) async fn new_period_row<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    model_id: Uuid,
    period: String,
) -> AppResult<cash_actual::ActiveModel> {
    let count = cash_actual::Entity::find()
        .filter(cash_actual::Column::AgencyId.eq(agency_id))
        .filter(cash_actual::Column::ModelId.eq(model_id))
        .count(db)
        .await?;
    if count >= MAX_PERIODS {
        return Err(AppError::Conflict(format!(
            "a model holds at most {MAX_PERIODS} periods of actuals; delete old ones first"
        )));
    }
    Ok(cash_actual::ActiveModel {
        id: Set(new_id()),
        agency_id: Set(agency_id),
        model_id: Set(model_id),
        period: Set(period),
        created_at: Set(now()),
        ..Default::default()
    })
}

impl Services {
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
        let existing = period_row(&txn, ctx.agency_id, m.id, &period).await?;
        let before = existing.clone();
        let is_new = existing.is_none();
        let mut a = match existing {
            Some(row) => row.into(),
            None => new_period_row(&txn, ctx.agency_id, m.id, period).await?,
        };
        let t = now();
        a.reach = Set(input.reach);
        a.ctr = Set(input.ctr);
        a.marketing_cost = Set(input.marketing_cost);
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
        let put = Audit::new("cash_actuals", "put", Some(model_id)).changed(&before, &row);
        audit::commit(txn, ctx, put).await?;
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
            .filter(cash_actual::Column::Period.eq(&period))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::NotFound);
        }
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, model_id).await?;
        let gone = serde_json::json!({"period": period});
        audit::commit(txn, ctx, Audit::delete("cash_actuals", model_id, &gone)).await
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
        let before = existing.clone();
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
        let put = Audit::new("cash_channel", "put", Some(model_id)).changed(&before, &row);
        audit::commit(txn, ctx, put).await?;
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
            .filter(cash_channel::Column::Name.eq(&name))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Err(AppError::NotFound);
        }
        crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, model_id).await?;
        let gone = serde_json::json!({"channel": name});
        audit::commit(txn, ctx, Audit::delete("cash_channel", model_id, &gone)).await
    }
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
