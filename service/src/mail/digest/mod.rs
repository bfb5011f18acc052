//! Client digests: daily (09:00), weekly (Monday 09:00) or monthly (the 1st,
//! 09:00) in the client's time zone, to its report recipients, with what
//! changed since the last one — panel headline and NPS change, top choice
//! factors (with a bar chart as an inline PNG), hypotheses that changed
//! verdict, the touchpoints flagged negative and positive on the UX map as
//! of the digest's day (analytics.md §4), each Cash Journey model's latest
//! actuals against its base scenario, and the funnel. A digest with nothing
//! new (no data change and no flag the last one did not show) says so in
//! two lines. Both end with "Open the live report" when the client has an
//! active report link (`platform::report_links`).
//!
//! "Changed" is always against the figures the previous digest showed
//! (its `digest_runs` row), whatever the schedule. The one windowed
//! section, the funnel, follows the schedule: a daily digest shows the
//! previous local day (complete, so every contact is counted in exactly
//! one daily digest and the change is day over day); weekly and monthly
//! ones the 4 weeks to the digest's day.
mod format;
mod send;
mod settings;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{client, questionnaire, snapshot};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Services;
use crate::infra::email::{InlineImage, render::render};
use crate::infra::error::AppResult;

pub use crate::platform::digest_schedule::*;
use format::*;
pub use settings::{DigestSettingsInput, DigestSettingsView};

/// What a digest showed, kept to tell what changed next time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DigestFigures {
    /// Sum of the client's questionnaires' data versions and its hypotheses
    /// and UX versions: unchanged means nothing new.
    pub fingerprint: i64,
    pub nps: Option<f64>,
    /// hypothesis id → verdict.
    pub verdicts: BTreeMap<String, String>,
    /// Touchpoints flagged negative / positive on the UX map (ids).
    #[serde(default)]
    pub ux_negative: BTreeSet<String>,
    #[serde(default)]
    pub ux_positive: BTreeSet<String>,
    /// The funnel section's figures (absent before funnels were reported).
    #[serde(default)]
    pub funnel: Option<FunnelFigures>,
}

/// The funnel of a digest's window (all funnel types): see [`FunnelWindow`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunnelFigures {
    pub contacts: u64,
    pub qualified: u64,
    pub converted: u64,
    /// Spend / leads of the channel figures; None without leads.
    pub cpa: Option<f64>,
}

/// The local days a digest's funnel counts, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunnelWindow {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// A single day (daily digests), named in the section's title.
    pub one_day: bool,
}

impl FunnelWindow {
    /// The window of a digest of `schedule` on the local day `as_of`: the
    /// day before for a daily digest (a whole day, not the hours up to
    /// 09:00), else the 4 weeks to `as_of`. Against the previous digest a
    /// daily window is the day before's, not a rolling 4 weeks that moved
    /// by a day.
    pub fn of(schedule: DigestSchedule, as_of: NaiveDate) -> Self {
        match schedule {
            DigestSchedule::Daily => {
                let day = as_of.pred_opt().unwrap_or(as_of);
                Self {
                    from: day,
                    to: day,
                    one_day: true,
                }
            }
            _ => Self {
                from: as_of - chrono::Duration::days(27),
                to: as_of,
                one_day: false,
            },
        }
    }
}

/// A rendered digest and the figures it showed.
pub struct BuiltDigest {
    pub rendered: crate::infra::email::Rendered,
    pub inline: Vec<InlineImage>,
    pub figures: DigestFigures,
}

impl Services {
    /// Builds the digest of `client` for the period ending `at`.
    pub async fn build_digest(
        &self,
        c: &client::Model,
        at: DateTime<Utc>,
    ) -> AppResult<BuiltDigest> {
        let ru = c.locale == "ru";
        let tz = tz_of(c);
        let last: Option<DigestFigures> = last_run(&self.db, c.agency_id, c.id, None)
            .await?
            .and_then(|r| serde_json::from_value(r.figures).ok());
        let qs = questionnaire::Entity::find()
            .filter(questionnaire::Column::AgencyId.eq(c.agency_id))
            .filter(questionnaire::Column::ClientId.eq(c.id))
            .order_by_desc(questionnaire::Column::Id)
            .all(&self.db)
            .await?;
        let hyp_version = crate::infra::ledger::wanted_version(
            &self.db,
            c.agency_id,
            crate::research::hypotheses::KIND_HYPOTHESES,
            c.id,
        )
        .await?;
        let ux_version = crate::infra::ledger::wanted_version(
            &self.db,
            c.agency_id,
            crate::research::ux::KIND_UX,
            c.id,
        )
        .await?;
        let mut figures = DigestFigures {
            fingerprint: qs.iter().map(|q| q.data_version).sum::<i64>() + hyp_version + ux_version,
            ..Default::default()
        };
        // The newest customer panel with a computed summary.
        let mut panel = serde_json::Value::Null;
        let mut factors: Vec<(String, f64)> = Vec::new();
        for q in qs.iter().filter(|q| q.kind == "customer_panel") {
            let Some(s) = snapshot::Entity::find()
                .filter(snapshot::Column::AgencyId.eq(c.agency_id))
                .filter(snapshot::Column::Kind.eq(crate::infra::ledger::KIND_QUESTIONNAIRE))
                .filter(snapshot::Column::TargetId.eq(q.id))
                .one(&self.db)
                .await?
            else {
                continue;
            };
            let body: crate::research::summary::SummaryBody =
                match serde_json::from_value(s.payload) {
                    Ok(b) => b,
                    Err(_) => continue,
                };
            let nps = body.nps.as_ref().and_then(|n| n.nps);
            figures.nps = nps;
            let change = match (nps, last.as_ref().and_then(|l| l.nps)) {
                (Some(now), Some(before)) if (now - before).abs() >= 0.05 => Some(now - before),
                _ => None,
            };
            panel = serde_json::json!({
                "title": q.title,
                "n": body.n,
                "nps": nps.map(|x| fmt(x, ru)),
                "nps_change": change.map(|d| signed(d, ru)),
                "nps_up": change.is_some_and(|d| d > 0.0),
            });
            let names: BTreeMap<Uuid, String> = entity::choice_factor::Entity::find()
                .filter(entity::choice_factor::Column::AgencyId.eq(c.agency_id))
                .filter(entity::choice_factor::Column::ClientId.eq(c.id))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|f| (f.id, f.name))
                .collect();
            factors = body
                .factors
                .iter()
                .filter_map(|f| {
                    let name = f
                        .choice_factor_id
                        .and_then(|id| names.get(&id).cloned())
                        .unwrap_or_else(|| f.question_key.clone());
                    Some((name, f.mean?))
                })
                .collect();
            factors.sort_by(|a, b| b.1.total_cmp(&a.1));
            factors.truncate(5);
            break;
        }
        // Hypotheses whose verdict changed since the last digest.
        let mut verdicts = Vec::new();
        if let Some(s) = snapshot::Entity::find()
            .filter(snapshot::Column::AgencyId.eq(c.agency_id))
            .filter(snapshot::Column::Kind.eq(crate::research::hypotheses::KIND_HYPOTHESES))
            .filter(snapshot::Column::TargetId.eq(c.id))
            .one(&self.db)
            .await?
        {
            for h in s.payload.as_array().into_iter().flatten() {
                let (Some(id), Some(verdict)) =
                    (h["hypothesis_id"].as_str(), h["result"]["verdict"].as_str())
                else {
                    continue;
                };
                figures.verdicts.insert(id.to_owned(), verdict.to_owned());
                let before = last
                    .as_ref()
                    .and_then(|l| l.verdicts.get(id).cloned())
                    .unwrap_or_else(|| "—".into());
                if before != verdict {
                    verdicts.push(serde_json::json!({
                        "name": h["name"],
                        "before": verdict_label(&before, ru),
                        "now": verdict_label(verdict, ru),
                    }));
                }
            }
        }
        // The UX map's touchpoint flags as of the digest's day, both ways.
        let as_of = at.with_timezone(&tz).date_naive();
        let ux = self.digest_ux_flags(c, as_of, ru, last.as_ref()).await?;
        figures.ux_negative = ux.negative_keys;
        figures.ux_positive = ux.positive_keys;
        // Cash Journey: the latest actuals of each model against its base plan.
        let (plans, cash_version) =
            crate::commerce::cash::latest_plan_vs_fact(&self.db, c.agency_id, c.id).await?;
        figures.fingerprint += cash_version;
        let cash: Vec<serde_json::Value> = plans.iter().map(|p| cash_section(p, ru)).collect();
        // The funnel of the last 4 weeks, against the last digest's.
        let (funnel, funnel_figures) = self.digest_funnel(c, as_of, ru, last.as_ref()).await?;
        figures.funnel = funnel_figures;
        figures.fingerprint += crate::infra::ledger::wanted_version(
            &self.db,
            c.agency_id,
            crate::infra::ledger::KIND_CONTACTS,
            c.id,
        )
        .await?;
        // The map and the funnel's window move with the calendar as well as
        // with data: a flag raised since the last digest, or funnel figures
        // other than it showed (a daily digest's new day), are news even
        // when no data arrived.
        let funnel_moved =
            figures.funnel.is_some() && last.as_ref().is_some_and(|l| l.funnel != figures.funnel);
        let nothing_new = last
            .as_ref()
            .is_some_and(|l| l.fingerprint == figures.fingerprint)
            && ux.newly_raised == 0
            && !funnel_moved;
        let brand = crate::platform::agency::brand_of(&self.db, c.agency_id).await?;
        let mut inline = Vec::new();
        let mut chart_height = 0;
        if !nothing_new && !factors.is_empty() {
            let means: Vec<f64> = factors.iter().map(|f| f.1).collect();
            let (png, h) = factor_chart(&means, brand.rgb)?;
            chart_height = h;
            use base64::Engine;
            inline.push(InlineImage {
                cid: "factors".into(),
                content_type: "image/png".into(),
                data: base64::engine::general_purpose::STANDARD.encode(png),
            });
        }
        let period = as_of.to_string();
        // The client's live report, when it has an active link.
        let report_url =
            crate::platform::report_links::active_url(&self.db, &self.links, c.agency_id, c.id)
                .await?;
        let rendered = render(
            "digest",
            &c.locale,
            &brand,
            serde_json::json!({
                "client": c.name,
                "period": period,
                "nothing_new": nothing_new,
                "panel": panel,
                "factors": factors.iter().map(|(n, m)| serde_json::json!({"name": n, "mean": fmt_places(*m, 2, ru)})).collect::<Vec<_>>(),
                "chart_height": chart_height,
                "verdicts": verdicts,
                "ux_negative": ux.negative,
                "ux_positive": ux.positive,
                "cash": cash,
                "funnel": funnel,
                "report_url": report_url,
            }),
        )?;
        Ok(BuiltDigest {
            rendered,
            inline,
            figures,
        })
    }

    /// The client's UX map as of `as_of` (its own day), flags both ways.
    async fn digest_ux_flags(
        &self,
        c: &client::Model,
        as_of: NaiveDate,
        ru: bool,
        last: Option<&DigestFigures>,
    ) -> AppResult<DigestUxFlags> {
        let (map, _) = self.build_ux_map(c, Some(as_of)).await?;
        let flagged: Vec<Uuid> = map
            .by_touchpoint
            .iter()
            .filter(|r| r.stats.flag.is_some())
            .filter_map(|r| Uuid::parse_str(&r.touchpoint_id).ok())
            .collect();
        let names: BTreeMap<Uuid, String> = if flagged.is_empty() {
            BTreeMap::new()
        } else {
            entity::touchpoint::Entity::find()
                .filter(entity::touchpoint::Column::AgencyId.eq(c.agency_id))
                .filter(entity::touchpoint::Column::Id.is_in(flagged))
                .all(&self.db)
                .await?
                .into_iter()
                .map(|t| (t.id, if ru { t.name_ru } else { t.name_en }))
                .collect()
        };
        Ok(ux_flag_rows(&map.by_touchpoint, &names, ru, last))
    }
}

impl Services {
    /// The digest's funnel section (Null when its window had neither
    /// contacts nor spend) and its figures.
    async fn digest_funnel(
        &self,
        c: &client::Model,
        as_of: chrono::NaiveDate,
        ru: bool,
        last: Option<&DigestFigures>,
    ) -> AppResult<(serde_json::Value, Option<FunnelFigures>)> {
        let window = FunnelWindow::of(DigestSchedule::of(c), as_of);
        let (from, to) = (window.from, window.to);
        let rows = self.funnel_rows(c.agency_id, c, from, to).await?;
        let days = self.channel_days(c.agency_id, c.id, from, to).await?;
        let total = analytics::funnel::channel_report(&days, from, to).total;
        let f = FunnelFigures {
            contacts: rows.iter().map(|r| r.contacts).sum(),
            qualified: rows.iter().map(|r| r.qualified).sum(),
            converted: rows.iter().map(|r| r.converted).sum(),
            cpa: total.cpa,
        };
        if f.contacts == 0 && total.spend == 0.0 {
            return Ok((serde_json::Value::Null, None));
        }
        let mut section = funnel_section(&f, last.and_then(|l| l.funnel.as_ref()), ru);
        if window.one_day {
            section["day"] = serde_json::json!(from.to_string());
        }
        Ok((section, Some(f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_daily_digest_counts_the_whole_day_before_and_others_four_weeks() {
        // Daily: consecutive digests' windows tile the calendar, one day each.
        let mon = FunnelWindow::of(DigestSchedule::Daily, day("2027-03-29"));
        let tue = FunnelWindow::of(DigestSchedule::Daily, day("2027-03-30"));
        assert_eq!(
            (mon.from, mon.to, mon.one_day),
            (day("2027-03-28"), day("2027-03-28"), true)
        );
        assert_eq!(tue.from, mon.to.succ_opt().unwrap());
        assert_eq!(
            FunnelWindow::of(DigestSchedule::Daily, day("2027-03-01")).from,
            day("2027-02-28")
        );
        for s in [
            DigestSchedule::Weekly,
            DigestSchedule::Monthly,
            DigestSchedule::Off,
        ] {
            let w = FunnelWindow::of(s, day("2027-03-29"));
            assert_eq!(
                (w.from, w.to, w.one_day),
                (day("2027-03-02"), day("2027-03-29"), false)
            );
        }
    }
}
