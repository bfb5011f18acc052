//! Channel figures (analytics.md §7): per client, day, channel and funnel
//! type, the spend and counts an agency reads off its ad accounts, mention
//! trackers and Wordstat; stored by API (a JSON list) or imported (NDJSON,
//! CSV), idempotent per client/day/channel/funnel type (a re-sent day
//! replaces the stored one, so a re-import changes nothing); the report
//! (CPM, CTR, CPC, cost per contact, CPA per channel, funnel type and in
//! total, ISO-week trends) is computed on read by `analytics::funnel`.
//!
//! Viewers read; whoever may ingest (analysts, `ingest`/`write` API keys)
//! stores figures.
use analytics::funnel::{ChannelDay, ChannelReport, FunnelType, channel_report};
use chrono::{Duration, NaiveDate, Utc};
use entity::channel_day;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commerce::purchases::client_tz;
use crate::infra::audit::{self, Audit};
use crate::infra::db::begin_write;
use crate::infra::error::{AppError, AppResult, FieldError};
use crate::infra::webhooks::{ImportEvent, emit_import};
use crate::platform::clients::find_client;
use crate::research::responses::ImportFormat;
use crate::{Perm, RequestCtx, Services, new_id, now};

mod parse;
pub use parse::*;

/// Rows per import.
pub const MAX_IMPORT_ROWS: usize = 100_000;
/// Rows per JSON request.
pub const MAX_BATCH_ROWS: usize = 10_000;
pub const MAX_CHANNEL: usize = 64;
pub const MAX_MONEY: f64 = 1e12;
pub const MAX_COUNT: i64 = 1_000_000_000_000;
/// Longest report range, in days.
pub const MAX_RANGE_DAYS: i64 = 1_100;

fn first_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

fn last_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default()
}

/// One day of one channel and funnel type. Counts left out are 0.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct ChannelDayInput {
    /// `YYYY-MM-DD`, the client's local day.
    #[schema(schema_with = crate::infra::docs::date_2000_2100)]
    pub day: NaiveDate,
    /// E.g. `yandex_rtb`, `bloggers`, `search`; 1 to 64 bytes.
    #[schema(schema_with = crate::infra::docs::text_64)]
    pub channel: String,
    pub funnel: FunnelType,
    /// Money spent that day, 0 to 1e12.
    #[schema(minimum = 0, maximum = 1e12)]
    pub spend: f64,
    #[serde(default)]
    #[graphql(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub impressions: i64,
    #[serde(default)]
    #[graphql(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub clicks: i64,
    /// Contacts collected (subscriptions, sign-ups).
    #[serde(default)]
    #[graphql(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub contacts: i64,
    /// Leads (the CPA's denominator).
    #[serde(default)]
    #[graphql(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub leads: i64,
    /// Mentions of the brand (PR, bloggers).
    #[serde(default)]
    #[graphql(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub mentions: i64,
    /// Brand searches, e.g. a Wordstat count.
    #[serde(default)]
    #[graphql(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub brand_searches: i64,
}

/// A validated row.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedDay {
    pub day: NaiveDate,
    pub channel: String,
    pub funnel: FunnelType,
    pub spend: f64,
    /// impressions, clicks, contacts, leads, mentions, brand_searches.
    pub counts: [i64; 6],
}

/// The body of `POST /clients/{id}/channel-figures`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelFiguresInput {
    /// 1 to 10,000 rows; a later row for the same day, channel and funnel
    /// type replaces an earlier one.
    #[schema(min_items = 1, max_items = 10000)]
    pub rows: Vec<ChannelDayInput>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ChannelIngestResult {
    /// Rows received.
    pub received: u64,
    /// Distinct client/day/channel/funnel rows stored (inserted or
    /// replaced with the values sent).
    pub stored: u64,
}

/// `?from=&to=` of the report.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ChannelReportParams {
    /// First day, `YYYY-MM-DD`; default: 12 weeks before `to`.
    #[param(schema_with = crate::infra::docs::date_2000_2100)]
    pub from: Option<String>,
    /// Last day, `YYYY-MM-DD`; default: today in the client's time zone.
    #[param(schema_with = crate::infra::docs::date_2000_2100)]
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct ChannelDayView {
    pub id: Uuid,
    pub day: NaiveDate,
    pub channel: String,
    pub funnel: FunnelType,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
    pub contacts: i64,
    pub leads: i64,
    pub mentions: i64,
    pub brand_searches: i64,
}

impl From<channel_day::Model> for ChannelDayView {
    fn from(m: channel_day::Model) -> Self {
        Self {
            id: m.id,
            day: m.day,
            channel: m.channel,
            funnel: FunnelType::parse(&m.funnel).unwrap_or(FunnelType::Reach),
            spend: m.spend,
            impressions: m.impressions,
            clicks: m.clicks,
            contacts: m.contacts,
            leads: m.leads,
            mentions: m.mentions,
            brand_searches: m.brand_searches,
        }
    }
}

fn to_analytics(m: &channel_day::Model) -> Option<ChannelDay> {
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Some(ChannelDay {
        day: m.day,
        channel: m.channel.clone(),
        funnel: FunnelType::parse(&m.funnel)?,
        spend: m.spend,
        impressions: n(m.impressions),
        clicks: n(m.clicks),
        contacts: n(m.contacts),
        leads: n(m.leads),
        mentions: n(m.mentions),
        brand_searches: n(m.brand_searches),
    })
}

fn parse_day(field: &str, v: &Option<String>, errs: &mut Vec<FieldError>) -> Option<NaiveDate> {
    let s = v.as_deref()?;
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) if (first_day()..=last_day()).contains(&d) => Some(d),
        _ => {
            errs.push(FieldError::new(
                field,
                "expected YYYY-MM-DD from 2000-01-01 to 2100-12-31",
            ));
            None
        }
    }
}

/// Spend, impressions and clicks of a client's channel days summed over
/// `[from, to]`, and how many rows (day × channel × funnel type) and which
/// channels they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChannelSums {
    pub rows: u64,
    /// Distinct, by name.
    pub channels: Vec<String>,
    pub spend: f64,
    pub impressions: i64,
    pub clicks: i64,
}

/// Sums the stored days of one client of the agency; `channels` (if given)
/// and `funnel` (if given) narrow the rows. Rows are added in key order, so
/// the same rows always give the same sums.
pub async fn channel_sums<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    (from, to): (NaiveDate, NaiveDate),
    channels: Option<&[String]>,
    funnel: Option<FunnelType>,
) -> AppResult<ChannelSums> {
    use channel_day::Column as C;
    let mut q = channel_day::Entity::find()
        .filter(C::AgencyId.eq(agency_id))
        .filter(C::ClientId.eq(client_id))
        .filter(C::Day.gte(from))
        .filter(C::Day.lte(to));
    if let Some(list) = channels {
        q = q.filter(C::Channel.is_in(list.iter().cloned()));
    }
    if let Some(f) = funnel {
        q = q.filter(C::Funnel.eq(f.name()));
    }
    let rows: Vec<(String, f64, i64, i64)> = q
        .select_only()
        .columns([C::Channel, C::Spend, C::Impressions, C::Clicks])
        .order_by_asc(C::Day)
        .order_by_asc(C::Channel)
        .order_by_asc(C::Funnel)
        .into_tuple()
        .all(db)
        .await?;
    let mut sums = ChannelSums::default();
    let mut names = std::collections::BTreeSet::new();
    for (channel, spend, impressions, clicks) in rows {
        sums.rows += 1;
        sums.spend += spend;
        sums.impressions = sums.impressions.saturating_add(impressions);
        sums.clicks = sums.clicks.saturating_add(clicks);
        names.insert(channel);
    }
    sums.channels = names.into_iter().collect();
    Ok(sums)
}

impl Services {
    /// Stores a JSON list of rows (REST and GraphQL).
    pub async fn put_channel_figures(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        rows: Vec<ChannelDayInput>,
    ) -> AppResult<ChannelIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        if rows.is_empty() || rows.len() > MAX_BATCH_ROWS {
            return Err(AppError::field(
                "rows",
                format!("must hold 1 to {MAX_BATCH_ROWS} rows"),
            ));
        }
        let mut errs = Vec::new();
        let mut parsed = Vec::with_capacity(rows.len());
        for (i, r) in rows.into_iter().enumerate() {
            match check_day(r) {
                Ok(p) => parsed.push(p),
                Err(e) => errs.extend(
                    e.into_iter()
                        .map(|f| FieldError::new(format!("rows[{i}].{}", f.field), f.message)),
                ),
            }
        }
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let a = Audit::new("channel_figures", "put", Some(client_id));
        self.store_channel_days(ctx, a, None, client_id, parsed)
            .await
    }

    pub async fn import_channel_figures(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        format: ImportFormat,
        body: bytes::Bytes,
    ) -> AppResult<ChannelIngestResult> {
        find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Ingest)?;
        let parsed = tokio::task::spawn_blocking(move || match format {
            ImportFormat::Ndjson => parse_ndjson(&body),
            ImportFormat::Csv => parse_csv(&body),
        })
        .await
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("channel figures parser: {e}")))?;
        let rows = parsed.map_err(|sink| AppError::Validation(sink.errors))?;
        if rows.is_empty() {
            return Err(AppError::field("body", "no rows to import"));
        }
        let a = Audit::new("channel_figures", "import", Some(client_id));
        let event = ImportEvent {
            kind: crate::infra::metrics::ImportKind::ChannelFigures,
            subject: ("client_id", client_id),
        };
        self.store_channel_days(ctx, a, Some(event), client_id, rows)
            .await
    }

    /// Upserts in one transaction, in key order (so racing imports take the
    /// unique index's locks in one order); within a batch the last row of a
    /// key wins.
    /// `import`: an import's `import.finished`, written with the rows.
    async fn store_channel_days(
        &self,
        ctx: &RequestCtx,
        audit: Audit,
        import: Option<ImportEvent>,
        client_id: Uuid,
        rows: Vec<ParsedDay>,
    ) -> AppResult<ChannelIngestResult> {
        let agency_id = ctx.agency_id;
        let received = rows.len() as u64;
        let mut by_key = std::collections::BTreeMap::new();
        for r in rows {
            by_key.insert((r.day, r.channel.clone(), r.funnel), r);
        }
        let t = now();
        let models: Vec<channel_day::ActiveModel> = by_key
            .into_values()
            .map(|r| {
                let [
                    impressions,
                    clicks,
                    contacts,
                    leads,
                    mentions,
                    brand_searches,
                ] = r.counts;
                channel_day::ActiveModel {
                    id: Set(new_id()),
                    agency_id: Set(agency_id),
                    client_id: Set(client_id),
                    day: Set(r.day),
                    channel: Set(r.channel),
                    funnel: Set(r.funnel.name().to_owned()),
                    spend: Set(r.spend),
                    impressions: Set(impressions),
                    clicks: Set(clicks),
                    contacts: Set(contacts),
                    leads: Set(leads),
                    mentions: Set(mentions),
                    brand_searches: Set(brand_searches),
                    created_at: Set(t),
                    updated_at: Set(Some(t)),
                }
            })
            .collect();
        let stored = models.len() as u64;
        use channel_day::Column as C;
        let txn = begin_write(&self.db).await?;
        let mut models = models.into_iter().peekable();
        while models.peek().is_some() {
            let batch: Vec<channel_day::ActiveModel> = models.by_ref().take(1_000).collect();
            let res = channel_day::Entity::insert_many(batch)
                .on_conflict(
                    OnConflict::columns([C::AgencyId, C::ClientId, C::Day, C::Channel, C::Funnel])
                        .update_columns([
                            C::Spend,
                            C::Impressions,
                            C::Clicks,
                            C::Contacts,
                            C::Leads,
                            C::Mentions,
                            C::BrandSearches,
                            C::UpdatedAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&txn)
                .await;
            match res {
                Ok(_) | Err(DbErr::RecordNotInserted) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let counts = serde_json::json!({"received": received, "stored": stored});
        let deliveries = emit_import(&txn, agency_id, import, received).await?;
        audit::commit(txn, ctx, audit.with(counts)).await?;
        self.import_committed(agency_id, import, received, deliveries)
            .await;
        tracing::info!(%agency_id, %client_id, received, stored, "channel figures stored");
        Ok(ChannelIngestResult { received, stored })
    }

    /// The stored rows of a range, by day, channel and funnel type.
    pub async fn list_channel_figures(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        params: ChannelReportParams,
    ) -> AppResult<Vec<ChannelDayView>> {
        let (from, to) = self.channel_range(ctx, client_id, &params).await?;
        Ok(self
            .channel_rows(ctx.agency_id, client_id, from, to)
            .await?
            .into_iter()
            .map(ChannelDayView::from)
            .collect())
    }

    /// CPM, CTR, CPC, cost per contact and CPA over `[from, to]`, per
    /// channel, per funnel type and in total, per ISO week, and the last full
    /// week's change against the 4 before it.
    pub async fn channel_report(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        params: ChannelReportParams,
    ) -> AppResult<ChannelReport> {
        let (from, to) = self.channel_range(ctx, client_id, &params).await?;
        let rows = self
            .channel_rows(ctx.agency_id, client_id, from, to)
            .await?;
        let days: Vec<ChannelDay> = rows.iter().filter_map(to_analytics).collect();
        Ok(channel_report(&days, from, to))
    }

    /// The report range of `params` (default: the last 12 weeks to today
    /// in the client's time zone), validated; the caller may read.
    pub(crate) async fn channel_range(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        params: &ChannelReportParams,
    ) -> AppResult<(NaiveDate, NaiveDate)> {
        let client = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let mut errs = Vec::new();
        let from = parse_day("from", &params.from, &mut errs);
        let to = parse_day("to", &params.to, &mut errs);
        if !errs.is_empty() {
            return Err(AppError::Validation(errs));
        }
        let to = to.unwrap_or_else(|| Utc::now().with_timezone(&client_tz(&client)).date_naive());
        let from = from.unwrap_or(to - Duration::weeks(12) + Duration::days(1));
        if from > to {
            return Err(AppError::field("from", "must not be after `to`"));
        }
        if (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(AppError::field(
                "from",
                format!("the range may span at most {MAX_RANGE_DAYS} days"),
            ));
        }
        Ok((from, to))
    }

    /// The rows of a range as the analytics take them.
    pub(crate) async fn channel_days(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Vec<ChannelDay>> {
        let rows = self.channel_rows(agency_id, client_id, from, to).await?;
        Ok(rows.iter().filter_map(to_analytics).collect())
    }

    async fn channel_rows(
        &self,
        agency_id: Uuid,
        client_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Vec<channel_day::Model>> {
        use channel_day::Column as C;
        Ok(channel_day::Entity::find()
            .filter(C::AgencyId.eq(agency_id))
            .filter(C::ClientId.eq(client_id))
            .filter(C::Day.gte(from))
            .filter(C::Day.lte(to))
            .order_by_asc(C::Day)
            .order_by_asc(C::Channel)
            .order_by_asc(C::Funnel)
            .all(&self.db)
            .await?)
    }
}
