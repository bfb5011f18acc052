//! The funnel report (analytics.md §7), per funnel type: the contacts that
//! arrived in a range (by creation, in the client's local days) → qualified
//! (tier hot or warm now) → enrolled in a chain → converted, with the
//! conversion rate of each step and the spend of the same days (channel
//! figures) per contact, per qualified contact and per conversion.
use analytics::funnel::{FunnelCounts, FunnelReportRow, FunnelType, funnel_report};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::commerce::channels::ChannelReportParams;
use crate::infra::error::AppResult;
use crate::mail::contacts::link::stmt;
use crate::{RequestCtx, Services};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct FunnelReport {
    pub client_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// reach, warming, reverse — always all three.
    pub funnels: Vec<FunnelReportRow>,
}

/// Midnight starting a local day, in UTC.
fn day_start(tz: chrono_tz::Tz, d: NaiveDate) -> DateTime<Utc> {
    crate::mail::chains::schedule::local_to_utc(tz, d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

impl Services {
    /// The report's rows for a client of `agency_id` (no permission check).
    pub(crate) async fn funnel_rows(
        &self,
        agency_id: Uuid,
        client: &entity::client::Model,
        from: NaiveDate,
        to: NaiveDate,
    ) -> AppResult<Vec<FunnelReportRow>> {
        let tz = crate::commerce::purchases::client_tz(client);
        let (start, end) = (
            day_start(tz, from),
            day_start(tz, to.succ_opt().unwrap_or(to)),
        );
        let sql = "SELECT c.funnel AS funnel, COUNT(*) AS contacts, \
             SUM(CASE WHEN c.tier IN ('hot', 'warm') THEN 1 ELSE 0 END) AS qualified, \
             SUM(CASE WHEN EXISTS (SELECT 1 FROM chain_enrolments e \
               WHERE e.agency_id = c.agency_id AND e.contact_id = c.id) THEN 1 ELSE 0 END) AS enrolled, \
             SUM(CASE WHEN c.converted THEN 1 ELSE 0 END) AS converted \
             FROM scored_contacts c \
             WHERE c.agency_id = $1 AND c.client_id = $2 AND c.created_at >= $3 AND c.created_at < $4 \
             GROUP BY c.funnel";
        let rows = sea_orm::ConnectionTrait::query_all_raw(
            &self.db,
            stmt(
                &self.db,
                sql,
                vec![agency_id.into(), client.id.into(), start.into(), end.into()],
            ),
        )
        .await?;
        let mut counts = Vec::new();
        for r in rows {
            let funnel: String = r.try_get("", "funnel")?;
            let n = |col: &str| -> AppResult<u64> {
                let v: Option<i64> = r.try_get("", col)?;
                Ok(u64::try_from(v.unwrap_or(0)).unwrap_or(0))
            };
            if let Some(f) = FunnelType::parse(&funnel) {
                counts.push(FunnelCounts {
                    funnel: f,
                    contacts: n("contacts")?,
                    qualified: n("qualified")?,
                    enrolled: n("enrolled")?,
                    converted: n("converted")?,
                });
            }
        }
        let days = self.channel_days(agency_id, client.id, from, to).await?;
        Ok(funnel_report(&days, from, to, &counts))
    }

    pub async fn funnel_report(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        params: ChannelReportParams,
    ) -> AppResult<FunnelReport> {
        let (from, to) = self.channel_range(ctx, client_id, &params).await?;
        let client =
            crate::platform::clients::find_client(&self.db, ctx.agency_id, client_id).await?;
        let funnels = self.funnel_rows(ctx.agency_id, &client, from, to).await?;
        Ok(FunnelReport {
            client_id,
            from,
            to,
            funnels,
        })
    }
}
