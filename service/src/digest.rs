//! Client digests: weekly (Monday 09:00) or monthly (the 1st, 09:00) in the
//! client's time zone, to its report recipients, with what changed since the
//! last one — panel headline and NPS change, top choice factors (with a bar
//! chart as an inline PNG), hypotheses that changed verdict, the touchpoints
//! flagged negative and positive on the UX map as of the digest's day
//! (analytics.md §4), and each Cash Journey model's latest actuals against
//! its base scenario. A digest with nothing new (no data change and no flag
//! the last one did not show) says so in two lines.
use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use entity::{client, digest_run, questionnaire, snapshot};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cash::{CashFigureName, CashVariance, LatestPlanVsFact};
use crate::clients::find_client;
use crate::domain::brand::BrandColour;
use crate::email::{InlineImage, NewDelivery, enqueue, render::render};
use crate::error::{AppError, AppResult};
use crate::{Perm, RequestCtx, Services, new_id, now};

/// The local hour digests go out.
const SEND_AT: (u32, u32) = (9, 0);

/// `date` at 09:00 in `tz`, as an instant. A local time that does not exist
/// (a spring-forward gap) moves an hour later; an ambiguous one takes the
/// first occurrence.
fn local_at(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let t = NaiveTime::from_hms_opt(SEND_AT.0, SEND_AT.1, 0).unwrap_or_default();
    let naive = date.and_time(t);
    match tz.from_local_datetime(&naive).earliest() {
        Some(d) => d.with_timezone(&Utc),
        None => tz
            .from_local_datetime(&(naive + Duration::hours(1)))
            .earliest()
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_else(|| naive.and_utc()),
    }
}

/// The first scheduled slot strictly after `after`: `weekly` = Mondays,
/// `monthly` = the 1st, at 09:00 local time in `tz`; `off` = never.
pub fn next_slot_after(schedule: &str, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&tz).date_naive();
    match schedule {
        "weekly" => (0..15)
            .map(|k| local + Duration::days(k))
            .filter(|d| d.weekday() == Weekday::Mon)
            .map(|d| local_at(tz, d))
            .find(|t| *t > after),
        "monthly" => {
            let first = NaiveDate::from_ymd_opt(local.year(), local.month(), 1)?;
            let this = local_at(tz, first);
            if this > after {
                return Some(this);
            }
            let next = if local.month() == 12 {
                NaiveDate::from_ymd_opt(local.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(local.year(), local.month() + 1, 1)?
            };
            Some(local_at(tz, next))
        }
        _ => None,
    }
}

/// The latest slot at or before `now` that comes after `last`: missed slots
/// are not sent one by one, only the newest.
pub fn due_slot(
    schedule: &str,
    tz: Tz,
    last: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let mut slot = next_slot_after(schedule, tz, last)?;
    if slot > now {
        return None;
    }
    while let Some(next) = next_slot_after(schedule, tz, slot) {
        if next > now {
            break;
        }
        slot = next;
    }
    Some(slot)
}

/// Nanoseconds are below any slot's precision (slots fall on whole
/// minutes): "after `from` − 1 ns" is "at or after `from`".
fn just_before(t: DateTime<Utc>) -> DateTime<Utc> {
    t - Duration::nanoseconds(1)
}

/// The latest slot `s` with `from <= s <= now`, if any: what a tick sends
/// for a client whose stored next slot (or, for rows older than that
/// column, lower bound) is `from`.
pub fn latest_slot_from(
    schedule: &str,
    tz: Tz,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    due_slot(schedule, tz, just_before(from), now)
}

/// The first slot at or after `from`.
pub fn first_slot_from(schedule: &str, tz: Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
    next_slot_after(schedule, tz, just_before(from))
}

/// The next slot once the schedule or time zone changed at `now`: the first
/// after now, but not on the local day of the last scheduled slot sent (a
/// client moved west after its Monday digest went out would otherwise get
/// a second one that Monday).
pub fn next_slot_on_change(
    schedule: &str,
    tz: Tz,
    now: DateTime<Utc>,
    last_sent: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let from = last_sent.map_or(now, |l| l.max(now));
    let slot = next_slot_after(schedule, tz, from)?;
    let day = |t: DateTime<Utc>| t.with_timezone(&tz).date_naive();
    match last_sent {
        Some(l) if day(l) == day(slot) => next_slot_after(schedule, tz, slot),
        _ => Some(slot),
    }
}

/// A client's time zone (stored values were checked when set).
pub fn tz_of(c: &client::Model) -> Tz {
    c.timezone.parse().unwrap_or(chrono_tz::Europe::Moscow)
}

/// A client's latest digest (by slot), of `trigger` if given.
async fn last_run<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
    trigger: Option<&str>,
) -> AppResult<Option<digest_run::Model>> {
    let mut q = digest_run::Entity::find()
        .filter(digest_run::Column::AgencyId.eq(agency_id))
        .filter(digest_run::Column::ClientId.eq(client_id));
    if let Some(t) = trigger {
        q = q.filter(digest_run::Column::Trigger.eq(t));
    }
    Ok(q.order_by_desc(digest_run::Column::ScheduledFor)
        .one(db)
        .await?)
}

/// The latest scheduled slot a client's digest went out for.
pub async fn last_scheduled_slot<C: ConnectionTrait>(
    db: &C,
    agency_id: Uuid,
    client_id: Uuid,
) -> AppResult<Option<DateTime<Utc>>> {
    Ok(last_run(db, agency_id, client_id, Some("scheduled"))
        .await?
        .map(|r| r.scheduled_for))
}

/// Clients one tick takes at most; the rest are due at the next tick.
const DUE_BATCH: u64 = 500;

/// A scheduled send: the client's stored next slot as read (`from`, so
/// that a schedule changed meanwhile is not overwritten) and the slot
/// after the one sent.
#[derive(Debug, Clone, Copy)]
struct Advance {
    from: DateTime<Utc>,
    next: Option<DateTime<Utc>>,
}

/// Moves a client's next slot on, unless it changed since it was read.
async fn advance<C: ConnectionTrait>(db: &C, c: &client::Model, a: Advance) -> AppResult<()> {
    client::Entity::update_many()
        .col_expr(client::Column::NextDigestAt, Expr::value(a.next))
        .filter(client::Column::AgencyId.eq(c.agency_id))
        .filter(client::Column::Id.eq(c.id))
        .filter(client::Column::NextDigestAt.eq(a.from))
        .exec(db)
        .await?;
    Ok(())
}

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
}

/// A bar chart of factor means (0 to 5) as PNG: bars only, the names and
/// values are in the HTML beside it (no fonts needed).
fn factor_chart(means: &[f64], colour: BrandColour) -> AppResult<(Vec<u8>, u32)> {
    use plotters::prelude::*;
    let (w, row) = (240u32, 28u32);
    let h = row * means.len().max(1) as u32;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        let fill = RGBColor(colour.0, colour.1, colour.2).filled();
        for (i, m) in means.iter().enumerate() {
            let top = (i as u32 * row + 6) as i32;
            let len = ((m.clamp(0.0, 5.0) / 5.0) * f64::from(w - 4)) as i32;
            root.draw(&Rectangle::new(
                [(0, top), (len.max(1), top + row as i32 - 12)],
                fill,
            ))
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("chart: {e}")))?;
        }
        root.present()
            .map_err(|e| AppError::Unexpected(anyhow::anyhow!("chart: {e}")))?;
    }
    let img = image::RgbImage::from_raw(w, h, rgb)
        .ok_or_else(|| AppError::Unexpected(anyhow::anyhow!("chart buffer size")))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| AppError::Unexpected(anyhow::anyhow!("chart png: {e}")))?;
    Ok((png, h))
}

/// A Cash Journey figure's name in the digest.
fn figure_label(f: CashFigureName, ru: bool) -> &'static str {
    use CashFigureName as F;
    match (f, ru) {
        (F::Traffic, true) => "Трафик",
        (F::Traffic, false) => "Traffic",
        (F::Leads, true) => "Лиды",
        (F::Leads, false) => "Leads",
        (F::FirstSales, true) => "Первые продажи",
        (F::FirstSales, false) => "First sales",
        (F::Check, true) => "Средний чек",
        (F::Check, false) => "Average check",
        (F::Completed, true) => "Завершённые сделки",
        (F::Completed, false) => "Completed deals",
        (F::FirstRevenue, true) => "Выручка первых продаж",
        (F::FirstRevenue, false) => "First-sale revenue",
        (F::RepeatRevenue, true) => "Выручка повторных продаж",
        (F::RepeatRevenue, false) => "Repeat revenue",
        (F::Revenue, true) => "Выручка",
        (F::Revenue, false) => "Revenue",
        (F::GrossProfit, true) => "Валовая прибыль",
        (F::GrossProfit, false) => "Gross profit",
        (F::Profit, true) => "Прибыль",
        (F::Profit, false) => "Profit",
        (F::Romi, _) => "ROMI",
        (F::CostPerSale, true) => "Стоимость продажи",
        (F::CostPerSale, false) => "Cost per sale",
    }
}

/// A figure with thousands grouped (a space in Russian, a comma in English);
/// ROMI, a ratio, as a percentage.
fn amount(f: CashFigureName, x: f64, ru: bool) -> String {
    if f == CashFigureName::Romi {
        return format!("{}%", fmt(x * 100.0, ru));
    }
    let decimals = if x.abs() >= 100.0 { 0 } else { 2 };
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(if ru { '\u{a0}' } else { ',' });
        }
        grouped.push(ch);
    }
    let sign = if x < 0.0 && s.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        "−"
    } else {
        ""
    };
    match (frac.is_empty(), ru) {
        (true, _) => format!("{sign}{grouped}"),
        (false, true) => format!("{sign}{grouped},{frac}"),
        (false, false) => format!("{sign}{grouped}.{frac}"),
    }
}

/// One row of the plan-vs-fact table: fact against plan, and whether the
/// difference is good news (more is better, except the cost of a sale).
fn variance_row(v: &CashVariance, ru: bool) -> serde_json::Value {
    let better = if v.figure == CashFigureName::CostPerSale {
        v.absolute <= 0.0
    } else {
        v.absolute >= 0.0
    };
    let change = match v.relative {
        Some(r) => format!(
            "{}{}%",
            if r > 0.0 {
                "+"
            } else if r < 0.0 {
                "−"
            } else {
                ""
            },
            fmt((r * 100.0).abs(), ru)
        ),
        None => amount(v.figure, v.absolute, ru),
    };
    serde_json::json!({
        "label": figure_label(v.figure, ru),
        "plan": amount(v.figure, v.plan, ru),
        "actual": amount(v.figure, v.actual, ru),
        "change": change,
        "good": better,
    })
}

/// The digest's plan-vs-fact block of one model: revenue, profit and ROMI
/// (those present in the actuals), then the three other figures furthest
/// from plan.
fn cash_section(p: &LatestPlanVsFact, ru: bool) -> serde_json::Value {
    use CashFigureName as F;
    let headline = [F::Revenue, F::Profit, F::Romi];
    let mut rest: Vec<&CashVariance> = p
        .variances
        .iter()
        .filter(|v| !headline.contains(&v.figure))
        .collect();
    rest.sort_by(|a, b| {
        let key = |v: &CashVariance| v.relative.map_or(-1.0, f64::abs);
        key(b).total_cmp(&key(a))
    });
    serde_json::json!({
        "model": p.model,
        "period": p.period,
        "headline": headline
            .iter()
            .filter_map(|f| p.variances.iter().find(|v| v.figure == *f))
            .map(|v| variance_row(v, ru))
            .collect::<Vec<_>>(),
        "biggest": rest.into_iter().take(3).map(|v| variance_row(v, ru)).collect::<Vec<_>>(),
    })
}

fn fmt(x: f64, ru: bool) -> String {
    fmt_places(x, 1, ru)
}

/// `x` with `places` decimals, a decimal comma in Russian.
fn fmt_places(x: f64, places: usize, ru: bool) -> String {
    let s = format!("{x:.places$}");
    if ru { s.replace('.', ",") } else { s }
}

/// A hypothesis verdict as the digest's reader reads it.
fn verdict_label(verdict: &str, ru: bool) -> String {
    match (verdict, ru) {
        ("supported", true) => "подтверждена",
        ("rejected", true) => "не подтвердилась",
        ("insufficient_data", true) => "мало данных",
        ("insufficient_data", false) => "insufficient data",
        (other, _) => other,
    }
    .to_owned()
}

/// A change with its sign: `+4.0`, `-0.5`.
fn signed(d: f64, ru: bool) -> String {
    format!("{}{}", if d > 0.0 { "+" } else { "" }, fmt(d, ru))
}

/// The touchpoint flags of the UX map shown in a digest.
struct DigestUxFlags {
    /// Rows for the template, the largest change first.
    negative: Vec<serde_json::Value>,
    positive: Vec<serde_json::Value>,
    /// Touchpoint ids, kept in the digest's figures.
    negative_keys: BTreeSet<String>,
    positive_keys: BTreeSet<String>,
    /// Flags the last digest did not show.
    newly_raised: usize,
}

/// Splits the map's touchpoint rows into negative and positive flags,
/// marking those the last digest did not show (`shown_*`; none without a
/// last digest: everything in a first digest is new anyway).
fn ux_flag_rows(
    rows: &[analytics::ux::TouchpointStats],
    names: &BTreeMap<Uuid, String>,
    ru: bool,
    last: Option<&DigestFigures>,
) -> DigestUxFlags {
    use analytics::ux::Flag;
    let mut out = DigestUxFlags {
        negative: vec![],
        positive: vec![],
        negative_keys: BTreeSet::new(),
        positive_keys: BTreeSet::new(),
        newly_raised: 0,
    };
    let mut flagged: Vec<(&analytics::ux::TouchpointStats, Flag, f64)> = rows
        .iter()
        .filter_map(|r| Some((r, r.stats.flag?, r.stats.deviation?)))
        .collect();
    flagged.sort_by(|a, b| b.2.abs().total_cmp(&a.2.abs()));
    for (r, flag, deviation) in flagged {
        let key = r.touchpoint_id.clone();
        let before = last.map(|l| match flag {
            Flag::Negative => &l.ux_negative,
            Flag::Positive => &l.ux_positive,
        });
        let new = before.is_some_and(|b| !b.contains(&key));
        out.newly_raised += usize::from(new);
        let mean = |m: Option<f64>| m.map(|x| fmt(x, ru)).unwrap_or_else(|| "—".into());
        let row = serde_json::json!({
            "label": Uuid::parse_str(&key).ok().and_then(|id| names.get(&id).cloned()).unwrap_or_else(|| "—".into()),
            "deviation": signed(deviation, ru),
            "current": mean(r.stats.current.mean),
            "baseline": mean(r.stats.baseline.mean),
            "new": new,
        });
        match flag {
            Flag::Negative => {
                out.negative.push(row);
                out.negative_keys.insert(key);
            }
            Flag::Positive => {
                out.positive.push(row);
                out.positive_keys.insert(key);
            }
        }
    }
    out
}

/// When and to whom a client's digest goes.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, async_graphql::SimpleObject)]
pub struct DigestSettingsView {
    pub client_id: Uuid,
    /// `weekly` (Mondays), `monthly` (the 1st) or `off`; 09:00 in the
    /// client's time zone.
    pub schedule: String,
    pub timezone: String,
    pub report_recipients: Vec<String>,
    /// The next scheduled send, if any.
    pub next_at: Option<DateTime<Utc>>,
    /// The last digest sent, scheduled or "send now".
    pub last_sent_at: Option<DateTime<Utc>>,
}

/// Fields to change; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema, async_graphql::InputObject)]
#[serde(deny_unknown_fields)]
pub struct DigestSettingsInput {
    /// `weekly`, `monthly` or `off`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// At most 50 addresses.
    #[serde(default)]
    pub report_recipients: Option<Vec<String>>,
}

/// A rendered digest and the figures it showed.
pub struct BuiltDigest {
    pub rendered: crate::email::Rendered,
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
        let hyp_version = crate::jobs::wanted_version(
            &self.db,
            c.agency_id,
            crate::hypotheses::KIND_HYPOTHESES,
            c.id,
        )
        .await?;
        let ux_version =
            crate::jobs::wanted_version(&self.db, c.agency_id, crate::ux::KIND_UX, c.id).await?;
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
                .filter(snapshot::Column::Kind.eq(crate::jobs::KIND_QUESTIONNAIRE))
                .filter(snapshot::Column::TargetId.eq(q.id))
                .one(&self.db)
                .await?
            else {
                continue;
            };
            let body: crate::summary::SummaryBody = match serde_json::from_value(s.payload) {
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
            .filter(snapshot::Column::Kind.eq(crate::hypotheses::KIND_HYPOTHESES))
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
            crate::cash::latest_plan_vs_fact(&self.db, c.agency_id, c.id).await?;
        figures.fingerprint += cash_version;
        let cash: Vec<serde_json::Value> = plans.iter().map(|p| cash_section(p, ru)).collect();
        // The map moves with the calendar as well as with data: a flag raised
        // since the last digest is news even when no data arrived.
        let nothing_new = last
            .as_ref()
            .is_some_and(|l| l.fingerprint == figures.fingerprint)
            && ux.newly_raised == 0;
        let brand = crate::agency::brand_of(&self.db, c.agency_id).await?;
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

    /// Records the digest of a slot and queues it to every report
    /// recipient, once per (client, slot): a second call for the same slot
    /// does nothing. A scheduled send (`schedule`) also moves the client's
    /// next slot on — in the same transaction when it sends, else on its
    /// own. Returns how many emails were queued.
    async fn send_digest(
        &self,
        c: &client::Model,
        slot: DateTime<Utc>,
        schedule: Option<Advance>,
    ) -> AppResult<u64> {
        let skip = |why: &'static str| async move {
            if let Some(a) = schedule {
                tracing::debug!(client_id = %c.id, %slot, why, "digest slot passed over");
                advance(&self.db, c, a).await?;
            }
            Ok(0)
        };
        let recipients: Vec<String> =
            serde_json::from_value(c.report_recipients.clone()).unwrap_or_default();
        if recipients.is_empty() {
            return skip("no recipients").await;
        }
        if schedule.is_some()
            && digest_run::Entity::find()
                .filter(digest_run::Column::AgencyId.eq(c.agency_id))
                .filter(digest_run::Column::ClientId.eq(c.id))
                .filter(digest_run::Column::ScheduledFor.eq(slot))
                .one(&self.db)
                .await?
                .is_some()
        {
            return skip("already sent").await;
        }
        let built = self.build_digest(c, slot).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        let recorded = digest_run::Entity::insert(digest_run::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(c.agency_id),
            client_id: Set(c.id),
            scheduled_for: Set(slot),
            trigger: Set(if schedule.is_some() {
                "scheduled"
            } else {
                "manual"
            }
            .into()),
            figures: Set(serde_json::to_value(&built.figures).map_err(anyhow::Error::from)?),
            created_at: Set(now()),
        })
        .on_conflict(
            sea_orm::sea_query::OnConflict::columns([
                digest_run::Column::AgencyId,
                digest_run::Column::ClientId,
                digest_run::Column::ScheduledFor,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await;
        match recorded {
            Ok(1) => {}
            // Another worker took this slot.
            Ok(_) | Err(sea_orm::DbErr::RecordNotInserted) => {
                txn.rollback().await?;
                return skip("taken by another worker").await;
            }
            Err(e) => return Err(e.into()),
        }
        let key = slot.timestamp_millis();
        let n = enqueue(
            &txn,
            recipients
                .into_iter()
                .map(|r| NewDelivery {
                    agency_id: c.agency_id,
                    client_id: Some(c.id),
                    kind: "digest".into(),
                    source_id: Some(c.id),
                    dedupe_key: format!("digest:{}:{key}:{r}", c.id),
                    recipient: r,
                    rendered: built.rendered.clone(),
                    headers: vec![],
                    inline: built.inline.clone(),
                })
                .collect(),
        )
        .await?;
        if let Some(a) = schedule {
            advance(&txn, c, a).await?;
        }
        txn.commit().await?;
        self.wake_mailer(c.agency_id).await;
        Ok(n)
    }

    /// The clients whose next digest slot has come by `now`, earliest first
    /// (at most [`DUE_BATCH`]): one query, on `next_digest_at`.
    pub async fn due_digest_clients(&self, now: DateTime<Utc>) -> AppResult<Vec<client::Model>> {
        Ok(client::Entity::find()
            .filter(client::Column::NextDigestAt.lte(now))
            .filter(client::Column::ArchivedAt.is_null())
            .order_by_asc(client::Column::NextDigestAt)
            .order_by_asc(client::Column::Id)
            .limit(DUE_BATCH)
            .all(&self.db)
            .await?)
    }

    /// Worker: sends every digest whose slot has come by `now` (the latest
    /// slot only, if several were missed). Returns how many clients got one.
    /// A client whose digest fails is logged and tried again next tick; the
    /// others go on.
    pub async fn run_due_digests(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let mut sent = 0;
        for c in self
            .due_digest_clients(now)
            .await
            .context("while looking for due digests")?
        {
            match self.run_scheduled_digest(&c, now).await {
                Ok(true) => sent += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(
                    agency_id = %c.agency_id, client_id = %c.id, error = %format!("{e:#}"),
                    "scheduled digest failed; tried again next tick"
                ),
            }
        }
        Ok(sent)
    }

    /// One due client: the latest slot from its stored one up to `now`.
    async fn run_scheduled_digest(&self, c: &client::Model, now: DateTime<Utc>) -> AppResult<bool> {
        let Some(from) = c.next_digest_at else {
            return Ok(false);
        };
        let tz = tz_of(c);
        let Some(slot) = latest_slot_from(&c.digest_schedule, tz, from, now) else {
            // A lower bound (a row older than the column) whose slot is ahead.
            let next = first_slot_from(&c.digest_schedule, tz, from);
            advance(&self.db, c, Advance { from, next }).await?;
            return Ok(false);
        };
        let next = next_slot_after(&c.digest_schedule, tz, slot);
        let queued = self
            .send_digest(c, slot, Some(Advance { from, next }))
            .await
            .with_context(|| format!("while sending the digest of client {} for {slot}", c.id))?;
        Ok(queued > 0)
    }

    /// "Send now" (admins): the digest as of now, to the report recipients.
    pub async fn send_digest_now(&self, ctx: &RequestCtx, client_id: Uuid) -> AppResult<u64> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Admin)?;
        let recipients: Vec<String> =
            serde_json::from_value(c.report_recipients.clone()).unwrap_or_default();
        if recipients.is_empty() {
            return Err(AppError::Conflict(
                "the client has no report recipients".into(),
            ));
        }
        self.send_digest(&c, now(), None).await
    }

    pub async fn digest_settings(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<DigestSettingsView> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        let tz = tz_of(&c);
        let last_sent = last_run(&self.db, c.agency_id, c.id, None).await?;
        // A stored slot already past is the one the next tick sends.
        let next_at = c.next_digest_at.and_then(|from| {
            latest_slot_from(&c.digest_schedule, tz, from, now())
                .or_else(|| first_slot_from(&c.digest_schedule, tz, from))
        });
        Ok(DigestSettingsView {
            client_id: c.id,
            report_recipients: serde_json::from_value(c.report_recipients.clone())
                .unwrap_or_default(),
            schedule: c.digest_schedule,
            timezone: c.timezone,
            next_at,
            last_sent_at: last_sent.map(|r| r.created_at),
        })
    }

    /// Changes the schedule or recipients (as the client update does).
    pub async fn update_digest_settings(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
        input: DigestSettingsInput,
    ) -> AppResult<DigestSettingsView> {
        self.update_client(
            ctx,
            client_id,
            crate::clients::UpdateClient {
                digest_schedule: input.schedule,
                report_recipients: input.report_recipients,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| match e {
            // Named as in this input.
            AppError::Validation(errs) => AppError::Validation(
                errs.into_iter()
                    .map(|mut f| {
                        if f.field == "digest_schedule" {
                            f.field = "schedule".into();
                        }
                        f
                    })
                    .collect(),
            ),
            other => other,
        })?;
        self.digest_settings(ctx, client_id).await
    }

    /// The digest as it would be sent now (preview).
    pub async fn preview_digest(
        &self,
        ctx: &RequestCtx,
        client_id: Uuid,
    ) -> AppResult<crate::email::Rendered> {
        let c = find_client(&self.db, ctx.agency_id, client_id).await?;
        ctx.require(Perm::Read)?;
        Ok(self.build_digest(&c, now()).await?.rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weekly_slots_follow_local_time_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Winter time: Monday 09:00 CET = 08:00 UTC.
        assert_eq!(
            next_slot_after("weekly", berlin, utc("2027-03-22T07:59:00Z")),
            Some(utc("2027-03-22T08:00:00Z"))
        );
        // Clocks go forward on Sunday 2027-03-28: the next Monday 09:00 is CEST.
        assert_eq!(
            next_slot_after("weekly", berlin, utc("2027-03-22T08:00:00Z")),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        // And back on Sunday 2026-10-25.
        assert_eq!(
            next_slot_after("weekly", berlin, utc("2026-10-19T07:00:00Z")),
            Some(utc("2026-10-26T08:00:00Z"))
        );
        // Moscow has no DST: always 06:00 UTC.
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            next_slot_after("weekly", msk, utc("2026-11-22T12:00:00Z")),
            Some(utc("2026-11-23T06:00:00Z"))
        );
        assert_eq!(
            next_slot_after("off", msk, utc("2026-11-22T12:00:00Z")),
            None
        );
    }

    #[test]
    fn monthly_slots_and_missed_slots() {
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            next_slot_after("monthly", msk, utc("2026-11-22T12:00:00Z")),
            Some(utc("2026-12-01T06:00:00Z"))
        );
        assert_eq!(
            next_slot_after("monthly", msk, utc("2026-12-15T00:00:00Z")),
            Some(utc("2027-01-01T06:00:00Z"))
        );
        // Three Mondays missed: only the latest is due; none before its time.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            due_slot(
                "weekly",
                berlin,
                utc("2027-03-01T08:00:00Z"),
                utc("2027-03-29T06:59:00Z")
            ),
            Some(utc("2027-03-22T08:00:00Z"))
        );
        assert_eq!(
            due_slot(
                "weekly",
                berlin,
                utc("2027-03-01T08:00:00Z"),
                utc("2027-03-29T07:00:00Z")
            ),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        assert_eq!(
            due_slot(
                "weekly",
                berlin,
                utc("2027-03-29T07:00:00Z"),
                utc("2027-04-04T23:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn a_stored_slot_is_due_at_its_time_and_only_the_newest_missed_one_is_sent() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let slot = utc("2027-03-22T08:00:00Z");
        // A stored slot is itself due from its instant on (at or after).
        assert_eq!(
            latest_slot_from("weekly", berlin, slot, utc("2027-03-22T07:59:59Z")),
            None
        );
        assert_eq!(latest_slot_from("weekly", berlin, slot, slot), Some(slot));
        assert_eq!(first_slot_from("weekly", berlin, slot), Some(slot));
        // Missed across the change to summer time: the newest, 09:00 CEST.
        assert_eq!(
            latest_slot_from(
                "weekly",
                berlin,
                utc("2027-03-08T08:00:00Z"),
                utc("2027-03-29T07:00:00Z")
            ),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        // A lower bound that is no slot (rows older than the column).
        assert_eq!(
            first_slot_from("monthly", berlin, utc("2027-03-15T12:34:56.789Z")),
            Some(utc("2027-04-01T07:00:00Z"))
        );
        assert_eq!(first_slot_from("off", berlin, slot), None);
    }

    #[test]
    fn a_new_time_zone_moves_the_next_slot_but_never_to_a_second_one_that_day() {
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // Wednesday, nothing sent yet: next Monday 09:00 in the new zone.
        let wed = utc("2026-12-02T12:00:00Z");
        assert_eq!(
            next_slot_on_change("weekly", msk, wed, None),
            Some(utc("2026-12-07T06:00:00Z"))
        );
        assert_eq!(
            next_slot_on_change("weekly", tokyo, wed, None),
            Some(utc("2026-12-07T00:00:00Z"))
        );
        // Monday 06:30 UTC, Moscow's digest went out at 06:00; moved to
        // Berlin (09:00 = 08:00 UTC that day): not again that Monday.
        let sent = utc("2026-12-07T06:00:00Z");
        let after = utc("2026-12-07T06:30:00Z");
        assert_eq!(
            next_slot_on_change("weekly", berlin, after, Some(sent)),
            Some(utc("2026-12-14T08:00:00Z"))
        );
        // Moved before that Monday's slot: Berlin's 09:00 still comes.
        assert_eq!(
            next_slot_on_change(
                "weekly",
                berlin,
                utc("2026-12-07T05:00:00Z"),
                Some(utc("2026-11-30T06:00:00Z"))
            ),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        // Weekly to monthly on Monday after the digest: the 1st is another day.
        assert_eq!(
            next_slot_on_change(
                "monthly",
                msk,
                utc("2027-02-22T07:00:00Z"),
                Some(utc("2027-02-22T06:00:00Z"))
            ),
            Some(utc("2027-03-01T06:00:00Z"))
        );
        // Across the change to summer time in the new zone.
        assert_eq!(
            next_slot_on_change("weekly", berlin, utc("2027-03-23T00:00:00Z"), None),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        assert_eq!(next_slot_on_change("off", berlin, wed, Some(sent)), None);
    }

    #[test]
    fn cash_figures_are_grouped_per_locale_and_romi_is_a_percentage() {
        assert_eq!(
            amount(CashFigureName::Revenue, 1_234_567.4, false),
            "1,234,567"
        );
        assert_eq!(
            amount(CashFigureName::Revenue, 1_234_567.4, true),
            "1\u{a0}234\u{a0}567"
        );
        assert_eq!(amount(CashFigureName::Profit, -4_500.0, false), "−4,500");
        assert_eq!(amount(CashFigureName::Check, 12.5, true), "12,50");
        assert_eq!(amount(CashFigureName::Romi, 1.5, false), "150.0%");
    }

    #[test]
    fn the_plan_vs_fact_block_leads_with_revenue_profit_romi_then_the_biggest_gaps() {
        let v = |figure, plan: f64, actual: f64| CashVariance {
            figure,
            plan,
            actual,
            absolute: actual - plan,
            relative: (plan != 0.0).then(|| (actual - plan) / plan),
        };
        use CashFigureName as F;
        let p = LatestPlanVsFact {
            model: "Funnel".into(),
            period: "2026-11".into(),
            variances: vec![
                v(F::Traffic, 1000.0, 990.0),
                v(F::Leads, 100.0, 50.0),
                v(F::FirstSales, 10.0, 12.0),
                v(F::Revenue, 100_000.0, 80_000.0),
                v(F::Profit, 10_000.0, 2_000.0),
                v(F::CostPerSale, 100.0, 130.0),
            ],
        };
        let s = cash_section(&p, false);
        let labels = |k: &str| -> Vec<String> {
            s[k].as_array()
                .unwrap()
                .iter()
                .map(|r| r["label"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(labels("headline"), ["Revenue", "Profit"]);
        assert_eq!(labels("biggest"), ["Leads", "Cost per sale", "First sales"]);
        assert_eq!(s["headline"][0]["change"], "−20.0%");
        assert_eq!(s["headline"][0]["good"], false);
        // A dearer sale is bad news, more sales good news.
        assert_eq!(s["biggest"][1]["good"], false);
        assert_eq!(s["biggest"][2]["good"], true);
    }

    fn tp(id: Uuid, current: f64, baseline: f64) -> analytics::ux::TouchpointStats {
        use analytics::ux::{UxConfig, UxStats, WindowStats, flag};
        let w = |m: f64| WindowStats {
            mean: Some(m),
            n: 3,
        };
        let d = current - baseline;
        analytics::ux::TouchpointStats {
            touchpoint_id: id.to_string(),
            stats: UxStats {
                current: w(current),
                baseline: w(baseline),
                all_time: w(current),
                deviation: Some(d),
                flag: flag(d, &UxConfig::default()),
                daily: vec![],
            },
        }
    }

    #[test]
    fn russian_digests_use_decimal_commas_and_russian_verdicts() {
        assert_eq!(fmt_places(3.806, 2, true), "3,81");
        assert_eq!(fmt_places(3.806, 2, false), "3.81");
        assert_eq!(fmt(-25.66, true), "-25,7");
        assert_eq!(verdict_label("supported", true), "подтверждена");
        assert_eq!(
            verdict_label("insufficient_data", false),
            "insufficient data"
        );
        assert_eq!(verdict_label("—", true), "—");
    }

    #[test]
    fn ux_flags_split_by_sign_biggest_first_and_new_ones_count_as_news() {
        let (a, b, c, d) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let names: BTreeMap<Uuid, String> = [(a, "A"), (b, "B"), (c, "C"), (d, "D")]
            .into_iter()
            .map(|(id, n)| (id, n.to_owned()))
            .collect();
        // A −2, B +0.5 (exactly the threshold), C +3, D +0.2 (no flag).
        let rows = [
            tp(a, 2.0, 4.0),
            tp(b, 3.5, 3.0),
            tp(c, 4.5, 1.5),
            tp(d, 3.2, 3.0),
        ];
        let first = ux_flag_rows(&rows, &names, false, None);
        let labels = |v: &[serde_json::Value]| -> Vec<String> {
            v.iter()
                .map(|r| r["label"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(labels(&first.negative), ["A"]);
        assert_eq!(labels(&first.positive), ["C", "B"]);
        assert_eq!(first.positive[0]["deviation"], "+3.0");
        assert_eq!(first.negative[0]["deviation"], "-2.0");
        assert_eq!(first.negative[0]["current"], "2.0");
        // Without a last digest nothing is marked new (all of it is news).
        assert_eq!(first.newly_raised, 0);
        assert!(first.positive.iter().all(|r| r["new"] == false));
        // The last digest showed A and B: C is the one new flag.
        let last = DigestFigures {
            ux_negative: [a.to_string()].into(),
            ux_positive: [b.to_string()].into(),
            ..Default::default()
        };
        let next = ux_flag_rows(&rows, &names, true, Some(&last));
        assert_eq!(next.newly_raised, 1);
        assert_eq!(next.positive[0]["new"], true);
        assert_eq!(next.positive[1]["new"], false);
        assert_eq!(next.positive[0]["deviation"], "+3,0");
        assert_eq!(
            next.positive_keys,
            [b.to_string(), c.to_string()].into_iter().collect()
        );
        // A flag that changed sign is new on its new side.
        let flipped = DigestFigures {
            ux_negative: [c.to_string()].into(),
            ux_positive: [a.to_string(), b.to_string()].into(),
            ..Default::default()
        };
        assert_eq!(
            ux_flag_rows(&rows, &names, false, Some(&flipped)).newly_raised,
            2
        );
    }

    #[test]
    fn figures_stored_before_ux_flags_were_kept_still_read() {
        let old = serde_json::json!({"fingerprint": 3, "nps": null, "verdicts": {}});
        let f: DigestFigures = serde_json::from_value(old).unwrap();
        assert!(f.ux_negative.is_empty() && f.ux_positive.is_empty());
    }

    #[test]
    fn the_chart_is_a_png_as_tall_as_the_rows() {
        let (png, h) = factor_chart(&[4.5, 3.0, 1.2], BrandColour::DEFAULT).unwrap();
        assert_eq!(h, 84);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }

    #[test]
    fn the_chart_is_drawn_in_the_brand_colour() {
        let (png, _) = factor_chart(&[5.0], BrandColour(0xaa, 0x11, 0x22)).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(10, 10).0, [0xaa, 0x11, 0x22]);
        assert_eq!(img.get_pixel(10, 1).0, [0xff, 0xff, 0xff]);
    }
}
