//! A period's actuals taken from the client's channel figures (issue 12,
//! analytics.md §5 and §7) instead of typed in: R, ctr and C of the month
//! summed over the client's channel days.
//!
//! The choices:
//! - R (§5: people reached) is taken as **impressions**, the nearest figure
//!   ad accounts give: they count a person each time an ad is shown, and no
//!   account reports unique people across channels, so R is an upper bound.
//! - ctr = clicks / impressions over the same rows, as the channel report's
//!   CTR. With no impressions it cannot be computed: the stored ctr stays as
//!   it was and the answer says so. Clicks beyond impressions (channels that
//!   report clicks but no impressions) would make a rate above 1: refused,
//!   naming `channels`, so that the caller picks the channels that fit.
//! - C (marketing cost) = spend.
//! - The other actuals (traffic, sales, check, revenue …) are the agency's
//!   own and keep their stored values.
//!
//! Channel days are stored by the client's local day, so the period
//! `YYYY-MM` is the days from its 1st to its last in the client's time zone;
//! no conversion is needed. Taking the same figures twice writes nothing the
//! second time (no new data version either).
use analytics::funnel::FunnelType;
use chrono::{Months, NaiveDate};
use sea_orm::{ActiveModelTrait, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::actuals::{new_period_row, parse_period, period_row};
use super::results::CashFigureName;
use super::{CashActualsView, KIND_CASH, MAX_FIGURE, find_cash_model};
use crate::commerce::channels::{ChannelSums, MAX_CHANNEL, channel_sums};
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::{Perm, RequestCtx, Services, now};

/// Channel names a filter may list.
pub const MAX_CHANNEL_FILTER: usize = 100;

/// The body of `POST /cash-models/{id}/actuals/from-channels`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct CashActualsFromChannelsInput {
    /// The month, `YYYY-MM`: its days in the client's time zone are summed.
    #[schema(pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    pub period: String,
    /// Only these channels, named as in the channel figures (e.g. `rtb`);
    /// 1 to 100 names. Absent: every channel.
    #[serde(default)]
    pub channels: Option<Vec<String>>,
    /// Only this funnel type. Absent: all three.
    #[serde(default)]
    pub funnel: Option<FunnelType>,
}

/// A figure the channel figures could not give, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashFigureNotTaken {
    pub figure: CashFigureName,
    pub reason: String,
}

/// What was taken, from what, and the period's actuals as now stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CashActualsFromChannelsView {
    /// The period's actuals after the call (figures not taken as stored).
    pub actuals: CashActualsView,
    /// The first and last day summed (the client's local days).
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Channel days summed (one per day, channel and funnel type).
    pub channel_days: u64,
    /// The channels they came from, by name.
    pub channels: Vec<String>,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    /// The figures written: `reach` (= impressions), `ctr` (= clicks /
    /// impressions) when there were impressions, `marketing_cost` (= spend).
    pub taken: Vec<CashFigureName>,
    /// Figures the channel figures could not give this time; they keep their
    /// stored values.
    pub not_taken: Vec<CashFigureNotTaken>,
    /// False when the stored actuals already held these values.
    pub changed: bool,
}

/// The checked body.
struct Request {
    period: String,
    days: (NaiveDate, NaiveDate),
    channels: Option<Vec<String>>,
    funnel: Option<FunnelType>,
}

/// The first and last day of a `YYYY-MM` already checked by `parse_period`.
fn month_days(period: &str) -> Option<(NaiveDate, NaiveDate)> {
    let year = period.get(..4)?.parse().ok()?;
    let month = period.get(5..)?.parse().ok()?;
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let last = first.checked_add_months(Months::new(1))?.pred_opt()?;
    Some((first, last))
}

fn check(input: CashActualsFromChannelsInput) -> AppResult<Request> {
    let mut errs = Vec::new();
    let period = match parse_period(&input.period) {
        Ok(p) => Some(p),
        Err(AppError::Validation(e)) => {
            errs.extend(e);
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(list) = &input.channels {
        if list.is_empty() || list.len() > MAX_CHANNEL_FILTER {
            errs.push(FieldError::new(
                "channels",
                format!("must name 1 to {MAX_CHANNEL_FILTER} channels, or be left out for all"),
            ));
        }
        for (i, c) in list.iter().enumerate() {
            if crate::domain::nul::has_nul(c) {
                errs.push(FieldError::new(
                    format!("channels[{i}]"),
                    crate::domain::nul::MESSAGE,
                ));
            } else if c.trim().is_empty() || c.len() > MAX_CHANNEL {
                errs.push(FieldError::new(
                    format!("channels[{i}]"),
                    format!("must be 1 to {MAX_CHANNEL} bytes"),
                ));
            }
        }
    }
    let days = period.as_deref().and_then(month_days);
    if period.is_some() && days.is_none() {
        errs.push(FieldError::new("period", "is not a calendar month"));
    }
    match (period, days) {
        (Some(period), Some(days)) if errs.is_empty() => Ok(Request {
            period,
            days,
            channels: input
                .channels
                .map(|l| l.iter().map(|c| c.trim().to_owned()).collect()),
            funnel: input.funnel,
        }),
        _ => Err(AppError::Validation(errs)),
    }
}

/// R, ctr (when there were impressions) and C of the sums, or why not.
fn figures_of(s: &ChannelSums) -> AppResult<(f64, Option<f64>, f64)> {
    if s.rows == 0 {
        return Err(AppError::field(
            "period",
            "has no channel figures for this client (with the channels and funnel type chosen)",
        ));
    }
    let reach = s.impressions as f64;
    let ctr = (s.impressions > 0).then(|| s.clicks as f64 / reach);
    if ctr.is_some_and(|c| c > 1.0) {
        return Err(AppError::field(
            "channels",
            format!(
                "the chosen channel figures have more clicks ({}) than impressions ({}); choose channels that report impressions",
                s.clicks, s.impressions
            ),
        ));
    }
    if !s.spend.is_finite() || s.spend > MAX_FIGURE || reach > MAX_FIGURE {
        return Err(AppError::field(
            "period",
            "its channel figures sum to more than 1e15",
        ));
    }
    Ok((reach, ctr, s.spend))
}

impl Services {
    /// Writes a period's R, ctr and C from the client's channel figures of
    /// that month (see the module's notes); the other actuals stay as they
    /// are. Whoever may write actuals may do this.
    pub async fn cash_actuals_from_channels(
        &self,
        ctx: &RequestCtx,
        model_id: Uuid,
        input: CashActualsFromChannelsInput,
    ) -> AppResult<CashActualsFromChannelsView> {
        let txn = begin_write(&self.db).await?;
        let m = find_cash_model(&txn, ctx.agency_id, model_id, true).await?;
        ctx.require(Perm::Ingest)?;
        let req = check(input)?;
        let sums = channel_sums(
            &txn,
            ctx.agency_id,
            m.client_id,
            req.days,
            req.channels.as_deref(),
            req.funnel,
        )
        .await?;
        let (reach, ctr, cost) = figures_of(&sums)?;
        let existing = period_row(&txn, ctx.agency_id, m.id, &req.period).await?;
        let before = existing.clone();
        let unchanged = existing.as_ref().is_some_and(|r| {
            r.reach == Some(reach)
                && r.marketing_cost == Some(cost)
                && (ctr.is_none() || r.ctr == ctr)
        });
        let row = match existing {
            Some(row) if unchanged => row,
            existing => {
                let is_new = existing.is_none();
                let mut a = match existing {
                    Some(row) => row.into(),
                    None => new_period_row(&txn, ctx.agency_id, m.id, req.period).await?,
                };
                a.reach = Set(Some(reach));
                if ctr.is_some() {
                    a.ctr = Set(ctr);
                }
                a.marketing_cost = Set(Some(cost));
                a.updated_at = Set(now());
                let row = if is_new {
                    a.insert(&txn).await?
                } else {
                    a.update(&txn).await?
                };
                crate::infra::ledger::bump_version(&txn, ctx.agency_id, KIND_CASH, m.id).await?;
                row
            }
        };
        let took = Audit::new("cash_actuals", "from_channels", Some(m.id)).changed(&before, &row);
        audit::commit(txn, ctx, took).await?;
        tracing::info!(
            agency_id = %ctx.agency_id,
            client_id = %m.client_id,
            model_id = %m.id,
            channel_days = sums.rows,
            changed = !unchanged,
            "cash actuals taken from channel figures"
        );
        let mut taken = vec![CashFigureName::Reach];
        let mut not_taken = Vec::new();
        if ctr.is_some() {
            taken.push(CashFigureName::Ctr);
        } else {
            not_taken.push(CashFigureNotTaken {
                figure: CashFigureName::Ctr,
                reason: "no impressions in the chosen channel figures; the stored ctr is kept"
                    .to_owned(),
            });
        }
        taken.push(CashFigureName::MarketingCost);
        Ok(CashActualsFromChannelsView {
            actuals: row.into(),
            from: req.days.0,
            to: req.days.1,
            channel_days: sums.rows,
            channels: sums.channels,
            spend: sums.spend,
            impressions: sums.impressions,
            clicks: sums.clicks,
            taken,
            not_taken,
            changed: !unchanged,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sums(rows: u64, spend: f64, impressions: i64, clicks: i64) -> ChannelSums {
        ChannelSums {
            rows,
            channels: vec!["rtb".into()],
            spend,
            impressions,
            clicks,
        }
    }

    fn field_of(e: AppError) -> Vec<String> {
        match e {
            AppError::Validation(list) => list.into_iter().map(|f| f.field).collect(),
            other => vec![format!("not a validation error: {other:?}")],
        }
    }

    #[test]
    fn months_run_from_the_first_to_the_last_day() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(month_days("2026-02"), Some((d(2026, 2, 1), d(2026, 2, 28))));
        assert_eq!(month_days("2028-02"), Some((d(2028, 2, 1), d(2028, 2, 29))));
        assert_eq!(
            month_days("2026-12"),
            Some((d(2026, 12, 1), d(2026, 12, 31)))
        );
    }

    #[test]
    fn reach_is_impressions_ctr_clicks_over_impressions_cost_spend() {
        assert_eq!(
            figures_of(&sums(3, 450.5, 80_000, 400)).unwrap(),
            (80_000.0, Some(0.005), 450.5)
        );
        // No impressions: no ctr, the rest still taken.
        assert_eq!(
            figures_of(&sums(1, 300.0, 0, 60)).unwrap(),
            (0.0, None, 300.0)
        );
    }

    #[test]
    fn no_rows_name_the_period_and_clicks_beyond_impressions_the_channels() {
        assert_eq!(
            field_of(figures_of(&sums(0, 0.0, 0, 0)).unwrap_err()),
            ["period"]
        );
        assert_eq!(
            field_of(figures_of(&sums(2, 1.0, 10, 11)).unwrap_err()),
            ["channels"]
        );
    }

    #[test]
    fn bad_bodies_name_each_field() {
        let body = |period: &str, channels: Option<Vec<String>>| CashActualsFromChannelsInput {
            period: period.into(),
            channels,
            funnel: None,
        };
        assert_eq!(
            field_of(check(body("2026-13", None)).err().unwrap()),
            ["period"]
        );
        assert_eq!(
            field_of(check(body("2026-11", Some(vec![]))).err().unwrap()),
            ["channels"]
        );
        assert_eq!(
            field_of(
                check(body("11/2026", Some(vec!["rtb".into(), " ".into()])))
                    .err()
                    .unwrap()
            ),
            ["period", "channels[1]"]
        );
        let ok = check(body("2026-11", Some(vec![" rtb ".into()]))).unwrap();
        assert_eq!(ok.channels, Some(vec!["rtb".to_owned()]));
    }
}
