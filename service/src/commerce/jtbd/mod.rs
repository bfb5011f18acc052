//! The JTBD value-migration map (analytics.md §6, product flow 4): RFM,
//! migration matrix, churn, LTV and inter-purchase intervals, computed on
//! read by `analytics::jtbd` from the client's purchases
//! ([`crate::commerce::purchases`]) and labelling rules ([`rules`]).
//!
//! Computed on read, not by the worker: the figures depend on the caller's
//! as-of date, period and margin, so there is no one snapshot to keep; a
//! read loads the client's purchases up to D (six narrow columns each) and
//! folds them in one pass off the async executor; [`cache`] keeps the last
//! reports of this process.
use std::collections::BTreeMap;

use analytics::jtbd::{self, JtbdConfig, PeriodKind, Purchase};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use entity::purchase;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::page::{Page, PageParams};
use crate::platform::clients::find_client;
use crate::{Perm, RequestCtx, Services, now};

pub mod cache;
mod rules;
use crate::commerce::purchases::{KIND_PURCHASES, client_tz};
pub use rules::*;

/// Rules per client.
pub const MAX_RULES: usize = 100;

pub const MAX_LABEL: usize = 64;

/// RFM rows per page of the results.
pub const DEFAULT_CUSTOMERS: u64 = 100;

pub const MAX_CUSTOMERS: u64 = 1000;

/// A purchase of one customer with its JTBD label under the current rules.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CustomerPurchaseView {
    pub id: Uuid,
    pub external_id: Option<String>,
    pub purchased_at: DateTime<Utc>,
    /// `purchased_at` in the client's time zone (what the rules see), a
    /// wall-clock time without an offset.
    #[schema(schema_with = crate::infra::docs::local_date_time)]
    pub local_time: NaiveDateTime,
    pub amount: f64,
    pub items: i32,
    pub party_size: i32,
    pub channel: Option<String>,
    /// The first matching rule's label, or `other`.
    pub label: String,
}

/// `?as_of=&period=&margin=&limit=&after=` of the results.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JtbdParams {
    /// D, `YYYY-MM-DD` in the client's time zone; default: today there.
    #[param(schema_with = crate::infra::docs::date)]
    pub as_of: Option<String>,
    /// `month` (default), `week` (ISO, Monday–Sunday) or `quarter`.
    #[param(schema_with = crate::infra::docs::jtbd_period)]
    pub period: Option<String>,
    /// Gross margin m in [0, 1] for the LTV; default 1 (LTV in revenue).
    #[param(minimum = 0, maximum = 1)]
    pub margin: Option<f64>,
    /// RFM rows per page, 1 to 1000 (default 100), by customer_ref.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The `next_customer` of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct CustomerRfmView {
    pub customer_ref: String,
    /// Days from the last purchase to D.
    pub recency_days: i64,
    pub frequency: u64,
    pub monetary: f64,
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    /// champions, loyal, potential_loyalist, new, promising, need_attention,
    /// about_to_sleep, at_risk, cant_lose, hibernating or lost.
    pub segment: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct SegmentCount {
    pub segment: String,
    pub customers: u64,
}

/// `states` = labels, then `none`; `counts[a][b]` = transitions a → b
/// between consecutive periods; `probabilities` = row-normalised counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct MigrationView {
    pub states: Vec<String>,
    pub counts: Vec<Vec<u64>>,
    pub probabilities: Vec<Vec<f64>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdStatsView {
    pub label: String,
    /// Purchases with this label on or before D.
    pub purchases: u64,
    pub revenue: f64,
    /// Customer-periods whose dominant JTBD this is, D's period included.
    pub customer_periods: u64,
    /// Those before D's period: the base of the churn.
    pub customer_periods_before_current: u64,
    pub mean_period_revenue: Option<f64>,
    /// Share of those followed by a period without purchases.
    pub churn: Option<f64>,
    /// mean_period_revenue · m · min(36, 1/churn) (36 when churn is 0).
    pub ltv: Option<f64>,
    /// Median days between consecutive purchases whose later one has this
    /// label: the timing for trigger campaigns.
    pub median_interval_days: Option<f64>,
    pub intervals: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct JtbdResultsView {
    pub client_id: Uuid,
    /// The number of purchase batches stored for the client so far.
    pub data_version: i64,
    pub computed_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    /// month, week or quarter.
    pub period: String,
    pub margin: f64,
    /// The time zone purchases were read in.
    pub timezone: String,
    /// First day of the period that contains D.
    pub current_period_start: Option<NaiveDate>,
    /// Purchases on or before D.
    pub purchases: u64,
    /// Customers with a purchase on or before D.
    pub customers_total: u64,
    /// Customers per RFM segment, over all customers.
    pub segments: Vec<SegmentCount>,
    /// One page of RFM rows, by customer_ref.
    pub customers: Vec<CustomerRfmView>,
    /// Pass as `after` for the next page of `customers`; absent on the last.
    pub next_customer: Option<String>,
    pub migration: MigrationView,
    /// One per label, in rule order, then `other`.
    pub jtbds: Vec<JtbdStatsView>,
}

fn parse_period(s: Option<&str>) -> AppResult<PeriodKind> {
    match s.unwrap_or("month") {
        "month" => Ok(PeriodKind::Month),
        "week" => Ok(PeriodKind::Week),
        "quarter" => Ok(PeriodKind::Quarter),
        _ => Err(AppError::field("period", "must be month, week or quarter")),
    }
}

fn period_name(p: PeriodKind) -> &'static str {
    match p {
        PeriodKind::Month => "month",
        PeriodKind::Week => "week",
        PeriodKind::Quarter => "quarter",
    }
}

fn segment_name(s: jtbd::RfmSegment) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Services {
    /// One customer's purchases, oldest stored first, each labelled by the
    /// client's current rules in the client's time zone.
    pub async fn customer_purchases(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        customer_ref: &str,
        page: PageParams,
    ) -> AppResult<Page<CustomerPurchaseView>> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let req = page.parse()?;
        let rules = compiled_rules(
            load_rules(&self.db, ctx.agency_id, client_id)
                .await?
                .as_ref(),
        )?;
        let tz = client_tz(&c);
        let q = purchase::Entity::find()
            .filter(purchase::Column::AgencyId.eq(ctx.agency_id))
            .filter(purchase::Column::ClientId.eq(client_id))
            .filter(purchase::Column::CustomerRef.eq(customer_ref));
        req.fetch(q, purchase::Column::Id, &self.db, |m: purchase::Model| {
            let local_time = m.purchased_at.with_timezone(&tz).naive_local();
            let p = Purchase {
                customer_ref: String::new(),
                at: local_time,
                amount: m.amount,
                items: u32::try_from(m.items).unwrap_or(0),
                party_size: u32::try_from(m.party_size).unwrap_or(0),
                channel: m.channel.clone().unwrap_or_default(),
            };
            CustomerPurchaseView {
                id: m.id,
                external_id: m.external_id,
                purchased_at: m.purchased_at,
                local_time,
                amount: m.amount,
                items: m.items,
                party_size: m.party_size,
                label: rules.label_of(&p).to_owned(),
                channel: m.channel,
            }
        })
        .await
    }

    /// The whole map as of D, computed from the stored purchases — or taken
    /// from this process's cache when nothing it depends on changed since
    /// ([`crate::commerce::jtbd::cache`]), e.g. for the next page of customers.
    pub async fn jtbd_results(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        params: JtbdParams,
    ) -> AppResult<JtbdResultsView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let tz = client_tz(&c);
        let mut errs = Vec::new();
        let as_of = match &params.as_of {
            None => Some(now().with_timezone(&tz).date_naive()),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| errs.push(FieldError::new("as_of", "expected YYYY-MM-DD")))
                .ok(),
        };
        let period = parse_period(params.period.as_deref())
            .map_err(|_| errs.push(FieldError::new("period", "must be month, week or quarter")))
            .ok();
        let margin = params.margin.unwrap_or(1.0);
        if !(margin.is_finite() && (0.0..=1.0).contains(&margin)) {
            errs.push(FieldError::new("margin", "must be from 0 to 1"));
        }
        if params
            .after
            .as_deref()
            .is_some_and(crate::domain::nul::has_nul)
        {
            errs.push(FieldError::new("after", crate::domain::nul::MESSAGE));
        }
        let limit = params.limit.unwrap_or(DEFAULT_CUSTOMERS);
        if !(1..=MAX_CUSTOMERS).contains(&limit) {
            errs.push(FieldError::new(
                "limit",
                format!("must be from 1 to {MAX_CUSTOMERS}"),
            ));
        }
        let (Some(as_of), Some(period)) = (as_of, period) else {
            return Err(AppError::Validation(errs));
        };
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let rule_set = load_rules(&self.db, ctx.agency_id, client_id).await?;
        // Every local date ≤ D is before D + 2 days at 00:00 UTC whatever
        // the offset; the exact cut is made on local dates by `compute`.
        let cut = as_of
            .checked_add_days(chrono::Days::new(2))
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc());
        // Read before the rows: the figures reflect at least this version.
        let data_version = crate::infra::ledger::wanted_version(
            &self.db,
            ctx.agency_id,
            KIND_PURCHASES,
            client_id,
        )
        .await?;
        let key = crate::commerce::jtbd::cache::ReportKey {
            agency_id: ctx.agency_id,
            client_id,
            data_version,
            rules: rule_set
                .as_ref()
                .map(|r| r.rules.to_string())
                .unwrap_or_default(),
            timezone: tz.name().to_owned(),
            as_of,
            period,
            margin,
        };
        let computed = self
            .jtbd_reports
            .get_or_compute(key, || async {
                let rules = compiled_rules(rule_set.as_ref())?;
                let purchases = self
                    .purchases_before(ctx.agency_id, client_id, cut, tz)
                    .await?;
                let config = JtbdConfig {
                    as_of,
                    period,
                    margin,
                };
                tokio::task::spawn_blocking(move || jtbd::compute(&purchases, &rules, &config))
                    .await
                    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("jtbd compute: {e}")))?
                    .map_err(|e| AppError::Unexpected(anyhow::anyhow!("jtbd compute: {e}")))
            })
            .await?;
        let (report, computed_at) = (&computed.0, computed.1);

        let mut segments: BTreeMap<String, u64> = BTreeMap::new();
        for c in &report.customers {
            *segments.entry(segment_name(c.segment)).or_default() += 1;
        }
        let customers_total = report.customers.len() as u64;
        // `customers` is ascending by customer_ref: the cursor is the last ref.
        let start = match &params.after {
            None => 0,
            Some(after) => report
                .customers
                .partition_point(|c| c.customer_ref.as_str() <= after.as_str()),
        };
        let page: Vec<CustomerRfmView> = report
            .customers
            .iter()
            .skip(start)
            .take(limit as usize)
            .map(|c| CustomerRfmView {
                customer_ref: c.customer_ref.clone(),
                recency_days: c.recency_days,
                frequency: c.frequency,
                monetary: c.monetary,
                r_score: c.r_score,
                f_score: c.f_score,
                m_score: c.m_score,
                segment: segment_name(c.segment),
            })
            .collect();
        let next_customer = if start + page.len() < report.customers.len() {
            page.last().map(|c| c.customer_ref.clone())
        } else {
            None
        };
        Ok(JtbdResultsView {
            client_id,
            data_version,
            computed_at,
            as_of: report.as_of,
            period: period_name(report.period).to_owned(),
            margin,
            timezone: tz.name().to_owned(),
            current_period_start: report.current_period_start,
            purchases: report.purchases,
            customers_total,
            segments: segments
                .into_iter()
                .map(|(segment, customers)| SegmentCount { segment, customers })
                .collect(),
            customers: page,
            next_customer,
            migration: MigrationView {
                states: report.migration.states.clone(),
                counts: report.migration.counts.clone(),
                probabilities: report.migration.probabilities.clone(),
            },
            jtbds: report
                .jtbds
                .iter()
                .map(|s| JtbdStatsView {
                    label: s.label.clone(),
                    purchases: s.purchases,
                    revenue: s.revenue,
                    customer_periods: s.customer_periods,
                    customer_periods_before_current: s.customer_periods_before_current,
                    mean_period_revenue: s.mean_period_revenue,
                    churn: s.churn,
                    ltv: s.ltv,
                    median_interval_days: s.median_interval_days,
                    intervals: s.intervals,
                })
                .collect(),
        })
    }
}
crate::has_id!(CustomerPurchaseView);

impl Services {
    /// Worker: each purchase's JTBD label (the client's current rules, at
    /// its local time) and the median days between consecutive purchases
    /// of each label as of today (§6, the timing of reverse chains).
    pub async fn purchase_timing(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        purchases: &[purchase::Model],
    ) -> AppResult<(Vec<String>, BTreeMap<String, f64>)> {
        let ctx = RequestCtx::worker(agency_id);
        let c = find_client(&self.db, agency_id, client_id).await?;
        let tz = client_tz(&c);
        let view = self
            .jtbd_results(&ctx, client_id, JtbdParams::default())
            .await?;
        let medians = view
            .jtbds
            .into_iter()
            .filter_map(|j| Some((j.label, j.median_interval_days?)))
            .collect();
        let rules = compiled_rules(load_rules(&self.db, agency_id, client_id).await?.as_ref())?;
        let labels = purchases
            .iter()
            .map(|m| {
                let p = Purchase {
                    customer_ref: String::new(),
                    at: m.purchased_at.with_timezone(&tz).naive_local(),
                    amount: m.amount,
                    items: u32::try_from(m.items).unwrap_or(0),
                    party_size: u32::try_from(m.party_size).unwrap_or(0),
                    channel: m.channel.clone().unwrap_or_default(),
                };
                rules.label_of(&p).to_owned()
            })
            .collect();
        Ok((labels, medians))
    }
}
