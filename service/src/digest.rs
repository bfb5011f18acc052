//! Client digests: weekly (Monday 09:00) or monthly (the 1st, 09:00) in the
//! client's time zone, to its report recipients, with what changed since the
//! last one — panel headline and NPS change, top choice factors (with a bar
//! chart as an inline PNG), hypotheses that changed verdict, open negative
//! UX flags. A digest with nothing new says so in two lines.
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use entity::{client, digest_run, questionnaire, snapshot, ux_alert};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clients::find_client;
use crate::email::{Brand, InlineImage, NewDelivery, enqueue, render::render};
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

/// What a digest showed, kept to tell what changed next time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DigestFigures {
    /// Sum of the client's questionnaires' data versions and its hypotheses
    /// and UX versions: unchanged means nothing new.
    pub fingerprint: i64,
    pub nps: Option<f64>,
    /// hypothesis id → verdict.
    pub verdicts: BTreeMap<String, String>,
}

/// A bar chart of factor means (0 to 5) as PNG: bars only, the names and
/// values are in the HTML beside it (no fonts needed).
fn factor_chart(means: &[f64], colour: (u8, u8, u8)) -> AppResult<(Vec<u8>, u32)> {
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

fn fmt(x: f64, ru: bool) -> String {
    let s = format!("{x:.1}");
    if ru { s.replace('.', ",") } else { s }
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
        let tz: Tz = c.timezone.parse().unwrap_or(chrono_tz::Europe::Moscow);
        let last: Option<DigestFigures> = digest_run::Entity::find()
            .filter(digest_run::Column::AgencyId.eq(c.agency_id))
            .filter(digest_run::Column::ClientId.eq(c.id))
            .order_by_desc(digest_run::Column::ScheduledFor)
            .one(&self.db)
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
                "nps_change": change.map(|d| format!("{}{}", if d > 0.0 { "+" } else { "" }, fmt(d, ru))),
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
                        "name": h["name"], "before": before, "now": verdict,
                    }));
                }
            }
        }
        // Open negative flags of the UX map.
        let tps: BTreeMap<Uuid, String> = entity::touchpoint::Entity::find()
            .filter(entity::touchpoint::Column::AgencyId.eq(c.agency_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| (t.id, if ru { t.name_ru } else { t.name_en }))
            .collect();
        let ux: Vec<serde_json::Value> = ux_alert::Entity::find()
            .filter(ux_alert::Column::AgencyId.eq(c.agency_id))
            .filter(ux_alert::Column::ClientId.eq(c.id))
            .filter(ux_alert::Column::ClearedAt.is_null())
            .filter(ux_alert::Column::Scope.eq("touchpoint"))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| {
                serde_json::json!({
                    "label": a.touchpoint_id.and_then(|t| tps.get(&t).cloned()).unwrap_or_default(),
                    "deviation": a.deviation.map(|d| fmt(d, ru)).unwrap_or_default(),
                })
            })
            .collect();
        let nothing_new = last
            .as_ref()
            .is_some_and(|l| l.fingerprint == figures.fingerprint);
        let brand = Brand::of(
            &entity::agency::Entity::find_by_id(c.agency_id)
                .one(&self.db)
                .await?
                .map(|a| a.name)
                .unwrap_or_default(),
        );
        let mut inline = Vec::new();
        let mut chart_height = 0;
        if !nothing_new && !factors.is_empty() {
            let means: Vec<f64> = factors.iter().map(|f| f.1).collect();
            let (png, h) = factor_chart(&means, (0x1f, 0x4e, 0x79))?;
            chart_height = h;
            use base64::Engine;
            inline.push(InlineImage {
                cid: "factors".into(),
                content_type: "image/png".into(),
                data: base64::engine::general_purpose::STANDARD.encode(png),
            });
        }
        let period = at.with_timezone(&tz).date_naive().to_string();
        let rendered = render(
            "digest",
            &c.locale,
            &brand,
            serde_json::json!({
                "client": c.name,
                "period": period,
                "nothing_new": nothing_new,
                "panel": panel,
                "factors": factors.iter().map(|(n, m)| serde_json::json!({"name": n, "mean": format!("{:.2}", m)})).collect::<Vec<_>>(),
                "chart_height": chart_height,
                "verdicts": verdicts,
                "ux": ux,
            }),
        )?;
        Ok(BuiltDigest {
            rendered,
            inline,
            figures,
        })
    }

    /// Records the digest of a slot and queues it to every report
    /// recipient, once per (client, slot): a second call for the same slot
    /// does nothing. Returns how many emails were queued.
    async fn send_digest(
        &self,
        c: &client::Model,
        slot: DateTime<Utc>,
        trigger: &str,
    ) -> AppResult<u64> {
        let recipients: Vec<String> =
            serde_json::from_value(c.report_recipients.clone()).unwrap_or_default();
        if recipients.is_empty() {
            return Ok(0);
        }
        let built = self.build_digest(c, slot).await?;
        let txn = crate::db::begin_write(&self.db).await?;
        let recorded = digest_run::Entity::insert(digest_run::ActiveModel {
            id: Set(new_id()),
            agency_id: Set(c.agency_id),
            client_id: Set(c.id),
            scheduled_for: Set(slot),
            trigger: Set(trigger.into()),
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
                return Ok(0);
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
        txn.commit().await?;
        self.wake_mailer(c.agency_id).await;
        Ok(n)
    }

    /// Worker: sends every digest whose slot has come by `now` (the latest
    /// slot only, if several were missed). Returns how many clients got one.
    pub async fn run_due_digests(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let clients = client::Entity::find()
            .filter(client::Column::DigestSchedule.ne("off"))
            .filter(client::Column::ArchivedAt.is_null())
            .all(&self.db)
            .await?;
        let mut sent = 0;
        for c in clients {
            let tz: Tz = c.timezone.parse().unwrap_or(chrono_tz::Europe::Moscow);
            let last = digest_run::Entity::find()
                .filter(digest_run::Column::AgencyId.eq(c.agency_id))
                .filter(digest_run::Column::ClientId.eq(c.id))
                .filter(digest_run::Column::Trigger.eq("scheduled"))
                .order_by_desc(digest_run::Column::ScheduledFor)
                .one(&self.db)
                .await?
                .map(|r| r.scheduled_for)
                .unwrap_or(c.created_at);
            if let Some(slot) = due_slot(&c.digest_schedule, tz, last, now)
                && self.send_digest(&c, slot, "scheduled").await? > 0
            {
                sent += 1;
            }
        }
        Ok(sent)
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
        self.send_digest(&c, now(), "manual").await
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
    fn the_chart_is_a_png_as_tall_as_the_rows() {
        let (png, h) = factor_chart(&[4.5, 3.0, 1.2], (0x1f, 0x4e, 0x79)).unwrap();
        assert_eq!(h, 84);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
