//! Client digests: weekly (Monday 09:00) or monthly (the 1st, 09:00) in the
//! client's time zone, to its report recipients, with what changed since the
//! last one — panel headline and NPS change, top choice factors (with a bar
//! chart as an inline PNG), hypotheses that changed verdict, the touchpoints
//! flagged negative and positive on the UX map as of the digest's day
//! (analytics.md §4), and each Cash Journey model's latest actuals against
//! its base scenario. A digest with nothing new (no data change and no flag
//! the last one did not show) says so in two lines.
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

/// The funnel of the 4 weeks to a digest's day (all funnel types).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FunnelFigures {
    pub contacts: u64,
    pub qualified: u64,
    pub converted: u64,
    /// Spend / leads of the channel figures; None without leads.
    pub cpa: Option<f64>,
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
        // The map moves with the calendar as well as with data: a flag raised
        // since the last digest is news even when no data arrived.
        let nothing_new = last
            .as_ref()
            .is_some_and(|l| l.fingerprint == figures.fingerprint)
            && ux.newly_raised == 0;
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
    /// The digest's funnel section (Null when the 4 weeks to `as_of` had
    /// neither contacts nor spend) and its figures.
    async fn digest_funnel(
        &self,
        c: &client::Model,
        as_of: chrono::NaiveDate,
        ru: bool,
        last: Option<&DigestFigures>,
    ) -> AppResult<(serde_json::Value, Option<FunnelFigures>)> {
        let from = as_of - chrono::Duration::days(27);
        let rows = self.funnel_rows(c.agency_id, c, from, as_of).await?;
        let days = self.channel_days(c.agency_id, c.id, from, as_of).await?;
        let total = analytics::funnel::channel_report(&days, from, as_of).total;
        let f = FunnelFigures {
            contacts: rows.iter().map(|r| r.contacts).sum(),
            qualified: rows.iter().map(|r| r.qualified).sum(),
            converted: rows.iter().map(|r| r.converted).sum(),
            cpa: total.cpa,
        };
        if f.contacts == 0 && total.spend == 0.0 {
            return Ok((serde_json::Value::Null, None));
        }
        Ok((
            funnel_section(&f, last.and_then(|l| l.funnel.as_ref()), ru),
            Some(f),
        ))
    }
}
