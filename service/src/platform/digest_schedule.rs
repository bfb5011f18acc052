//! When a client's digests are due: the daily, weekly or monthly slot at
//! 09:00 in its time zone, and the last slot one went out for. Clients set
//! the schedule; the digest ([`crate::mail::digest`]) sends on it.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use entity::{client, digest_run};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::infra::error::AppResult;

/// The local hour digests go out.
const SEND_AT: (u32, u32) = (9, 0);

// Stored and sent (REST and GraphQL alike) as its name, a string, so that
// a bad one is reported with the other fields of its input; parsed once
// where a stored or given name is read.
/// How often a client's digest goes out, at 09:00 in its time zone:
/// `daily` (every day), `weekly` (Mondays), `monthly` (the 1st) or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DigestSchedule {
    Daily,
    Weekly,
    Monthly,
    Off,
}

impl DigestSchedule {
    pub const ALL: [DigestSchedule; 4] = [
        DigestSchedule::Daily,
        DigestSchedule::Weekly,
        DigestSchedule::Monthly,
        DigestSchedule::Off,
    ];
    /// What a field with another value is told.
    pub const EXPECTED: &str = "must be daily, weekly, monthly or off";

    pub fn as_str(self) -> &'static str {
        match self {
            DigestSchedule::Daily => "daily",
            DigestSchedule::Weekly => "weekly",
            DigestSchedule::Monthly => "monthly",
            DigestSchedule::Off => "off",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// A client's schedule. Stored names were parsed when set; anything
    /// else (a row edited by hand) sends nothing rather than guessing.
    pub fn of(c: &client::Model) -> Self {
        Self::parse(&c.digest_schedule).unwrap_or(DigestSchedule::Off)
    }
}

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

/// The first scheduled slot strictly after `after`: `daily` = every day,
/// `weekly` = Mondays, `monthly` = the 1st, at 09:00 local time in `tz`;
/// `off` = never.
pub fn next_slot_after(
    schedule: DigestSchedule,
    tz: Tz,
    after: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let local = after.with_timezone(&tz).date_naive();
    match schedule {
        // Today's 09:00 if still ahead, else tomorrow's (a day whose 09:00
        // fell into a gap is moved to 10:00, never skipped).
        DigestSchedule::Daily => (0..3)
            .map(|k| local_at(tz, local + Duration::days(k)))
            .find(|t| *t > after),
        DigestSchedule::Weekly => (0..15)
            .map(|k| local + Duration::days(k))
            .filter(|d| d.weekday() == Weekday::Mon)
            .map(|d| local_at(tz, d))
            .find(|t| *t > after),
        DigestSchedule::Monthly => {
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
        DigestSchedule::Off => None,
    }
}

/// The latest slot at or before `now` that comes after `last`: missed slots
/// are not sent one by one, only the newest.
pub fn due_slot(
    schedule: DigestSchedule,
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
    schedule: DigestSchedule,
    tz: Tz,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    due_slot(schedule, tz, just_before(from), now)
}

/// The first slot at or after `from`.
pub fn first_slot_from(
    schedule: DigestSchedule,
    tz: Tz,
    from: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    next_slot_after(schedule, tz, just_before(from))
}

/// The next slot once the schedule or time zone changed at `now`: the first
/// after now, but not on the local day of the last scheduled slot sent (a
/// client moved west after its Monday digest went out would otherwise get
/// a second one that Monday).
pub fn next_slot_on_change(
    schedule: DigestSchedule,
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
pub(crate) async fn last_run<C: ConnectionTrait>(
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

#[cfg(test)]
mod tests {
    use super::*;
    use DigestSchedule::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weekly_slots_follow_local_time_across_dst() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Winter time: Monday 09:00 CET = 08:00 UTC.
        assert_eq!(
            next_slot_after(Weekly, berlin, utc("2027-03-22T07:59:00Z")),
            Some(utc("2027-03-22T08:00:00Z"))
        );
        // Clocks go forward on Sunday 2027-03-28: the next Monday 09:00 is CEST.
        assert_eq!(
            next_slot_after(Weekly, berlin, utc("2027-03-22T08:00:00Z")),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        // And back on Sunday 2026-10-25.
        assert_eq!(
            next_slot_after(Weekly, berlin, utc("2026-10-19T07:00:00Z")),
            Some(utc("2026-10-26T08:00:00Z"))
        );
        // Moscow has no DST: always 06:00 UTC.
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            next_slot_after(Weekly, msk, utc("2026-11-22T12:00:00Z")),
            Some(utc("2026-11-23T06:00:00Z"))
        );
        assert_eq!(next_slot_after(Off, msk, utc("2026-11-22T12:00:00Z")), None);
    }

    #[test]
    fn monthly_slots_and_missed_slots() {
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        assert_eq!(
            next_slot_after(Monthly, msk, utc("2026-11-22T12:00:00Z")),
            Some(utc("2026-12-01T06:00:00Z"))
        );
        assert_eq!(
            next_slot_after(Monthly, msk, utc("2026-12-15T00:00:00Z")),
            Some(utc("2027-01-01T06:00:00Z"))
        );
        // Three Mondays missed: only the latest is due; none before its time.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            due_slot(
                Weekly,
                berlin,
                utc("2027-03-01T08:00:00Z"),
                utc("2027-03-29T06:59:00Z")
            ),
            Some(utc("2027-03-22T08:00:00Z"))
        );
        assert_eq!(
            due_slot(
                Weekly,
                berlin,
                utc("2027-03-01T08:00:00Z"),
                utc("2027-03-29T07:00:00Z")
            ),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        assert_eq!(
            due_slot(
                Weekly,
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
            latest_slot_from(Weekly, berlin, slot, utc("2027-03-22T07:59:59Z")),
            None
        );
        assert_eq!(latest_slot_from(Weekly, berlin, slot, slot), Some(slot));
        assert_eq!(first_slot_from(Weekly, berlin, slot), Some(slot));
        // Missed across the change to summer time: the newest, 09:00 CEST.
        assert_eq!(
            latest_slot_from(
                Weekly,
                berlin,
                utc("2027-03-08T08:00:00Z"),
                utc("2027-03-29T07:00:00Z")
            ),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        // A lower bound that is no slot (rows older than the column).
        assert_eq!(
            first_slot_from(Monthly, berlin, utc("2027-03-15T12:34:56.789Z")),
            Some(utc("2027-04-01T07:00:00Z"))
        );
        assert_eq!(first_slot_from(Off, berlin, slot), None);
    }

    #[test]
    fn a_new_time_zone_moves_the_next_slot_but_never_to_a_second_one_that_day() {
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // Wednesday, nothing sent yet: next Monday 09:00 in the new zone.
        let wed = utc("2026-12-02T12:00:00Z");
        assert_eq!(
            next_slot_on_change(Weekly, msk, wed, None),
            Some(utc("2026-12-07T06:00:00Z"))
        );
        assert_eq!(
            next_slot_on_change(Weekly, tokyo, wed, None),
            Some(utc("2026-12-07T00:00:00Z"))
        );
        // Monday 06:30 UTC, Moscow's digest went out at 06:00; moved to
        // Berlin (09:00 = 08:00 UTC that day): not again that Monday.
        let sent = utc("2026-12-07T06:00:00Z");
        let after = utc("2026-12-07T06:30:00Z");
        assert_eq!(
            next_slot_on_change(Weekly, berlin, after, Some(sent)),
            Some(utc("2026-12-14T08:00:00Z"))
        );
        // Moved before that Monday's slot: Berlin's 09:00 still comes.
        assert_eq!(
            next_slot_on_change(
                Weekly,
                berlin,
                utc("2026-12-07T05:00:00Z"),
                Some(utc("2026-11-30T06:00:00Z"))
            ),
            Some(utc("2026-12-07T08:00:00Z"))
        );
        // Weekly to monthly on Monday after the digest: the 1st is another day.
        assert_eq!(
            next_slot_on_change(
                Monthly,
                msk,
                utc("2027-02-22T07:00:00Z"),
                Some(utc("2027-02-22T06:00:00Z"))
            ),
            Some(utc("2027-03-01T06:00:00Z"))
        );
        // Across the change to summer time in the new zone.
        assert_eq!(
            next_slot_on_change(Weekly, berlin, utc("2027-03-23T00:00:00Z"), None),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        assert_eq!(next_slot_on_change(Off, berlin, wed, Some(sent)), None);
    }

    #[test]
    fn daily_slots_are_09_00_local_on_every_day_across_both_dst_changes() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Before 09:00 CET: today's; after it: tomorrow's.
        assert_eq!(
            next_slot_after(Daily, berlin, utc("2027-03-26T07:59:59Z")),
            Some(utc("2027-03-26T08:00:00Z"))
        );
        assert_eq!(
            next_slot_after(Daily, berlin, utc("2027-03-26T08:00:00Z")),
            Some(utc("2027-03-27T08:00:00Z"))
        );
        // Spring forward on Sunday 2027-03-28 (02:00 → 03:00): that day's
        // 09:00 is already CEST, 07:00 UTC, 23 hours after Saturday's.
        assert_eq!(
            next_slot_after(Daily, berlin, utc("2027-03-27T08:00:00Z")),
            Some(utc("2027-03-28T07:00:00Z"))
        );
        // Fall back on Sunday 2027-10-31 (03:00 → 02:00): 25 hours apart.
        assert_eq!(
            next_slot_after(Daily, berlin, utc("2027-10-30T07:00:00Z")),
            Some(utc("2027-10-31T08:00:00Z"))
        );
        // Two weeks around each change: one slot per local day, each at
        // 09:00 local, none skipped or doubled.
        for start in ["2027-03-20T00:00:00Z", "2027-10-24T00:00:00Z"] {
            let mut at = utc(start);
            let mut days = Vec::new();
            for _ in 0..14 {
                at = next_slot_after(Daily, berlin, at).unwrap();
                let local = at.with_timezone(&berlin);
                assert_eq!(local.time(), NaiveTime::from_hms_opt(9, 0, 0).unwrap());
                days.push(local.date_naive());
            }
            for w in days.windows(2) {
                assert_eq!(w[1] - w[0], Duration::days(1), "{days:?}");
            }
        }
        // A zone far from UTC: 09:00 in Tokyo is 00:00 UTC the same day.
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(
            next_slot_after(Daily, tokyo, utc("2026-12-06T23:59:00Z")),
            Some(utc("2026-12-07T00:00:00Z"))
        );
    }

    #[test]
    fn missed_daily_slots_send_only_the_newest() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // Last sent Friday; the worker was down over the weekend of the
        // change to summer time. Before Monday's 09:00 CEST the newest is
        // Sunday's (07:00 UTC already), from it Monday's.
        let friday = utc("2027-03-26T08:00:00Z");
        assert_eq!(
            due_slot(Daily, berlin, friday, utc("2027-03-29T06:59:00Z")),
            Some(utc("2027-03-28T07:00:00Z"))
        );
        assert_eq!(
            due_slot(Daily, berlin, friday, utc("2027-03-29T07:00:00Z")),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        // The same from a stored next slot (Saturday's, never sent).
        assert_eq!(
            latest_slot_from(
                Daily,
                berlin,
                utc("2027-03-27T08:00:00Z"),
                utc("2027-03-29T12:00:00Z")
            ),
            Some(utc("2027-03-29T07:00:00Z"))
        );
        // Nothing due again until the next day's 09:00.
        assert_eq!(
            due_slot(
                Daily,
                berlin,
                utc("2027-03-29T07:00:00Z"),
                utc("2027-03-30T06:59:59Z")
            ),
            None
        );
        // Across the change back to winter time: Sunday's 09:00 CET.
        assert_eq!(
            due_slot(
                Daily,
                berlin,
                utc("2027-10-30T07:00:00Z"),
                utc("2027-10-31T08:30:00Z")
            ),
            Some(utc("2027-10-31T08:00:00Z"))
        );
    }

    #[test]
    fn switching_to_daily_after_the_days_digest_waits_for_tomorrow() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let msk: Tz = "Europe/Moscow".parse().unwrap();
        // Monday 2026-12-07: the weekly digest went out at 09:00 CET
        // (08:00 UTC); switched to daily at 10:00 local: Tuesday's 09:00.
        let monday = utc("2026-12-07T08:00:00Z");
        assert_eq!(
            next_slot_on_change(Daily, berlin, utc("2026-12-07T09:00:00Z"), Some(monday)),
            Some(utc("2026-12-08T08:00:00Z"))
        );
        // Switched in the minute of the send, even before it was recorded
        // as done: the slot sent is never the next one.
        assert_eq!(
            next_slot_on_change(Daily, berlin, monday, Some(monday)),
            Some(utc("2026-12-08T08:00:00Z"))
        );
        // Moscow's Monday digest went out at 06:00 UTC; moved to Berlin and
        // daily at 06:30 UTC, before Berlin's 09:00: not a second one that
        // Monday (local to the new zone) either.
        assert_eq!(
            next_slot_on_change(
                Daily,
                berlin,
                utc("2026-12-07T06:30:00Z"),
                Some(utc("2026-12-07T06:00:00Z"))
            ),
            Some(utc("2026-12-08T08:00:00Z"))
        );
        // Switched on Monday before that day's weekly digest went out (the
        // last one was a week ago): today's 09:00 still comes, once.
        assert_eq!(
            next_slot_on_change(
                Daily,
                berlin,
                utc("2026-12-07T07:00:00Z"),
                Some(utc("2026-11-30T08:00:00Z"))
            ),
            Some(monday)
        );
        // Nothing sent yet, switched in the evening: tomorrow's.
        assert_eq!(
            next_slot_on_change(Daily, msk, utc("2026-12-09T17:00:00Z"), None),
            Some(utc("2026-12-10T06:00:00Z"))
        );
        // And back from daily to weekly on a Monday after its digest.
        assert_eq!(
            next_slot_on_change(Weekly, berlin, utc("2026-12-07T09:00:00Z"), Some(monday)),
            Some(utc("2026-12-14T08:00:00Z"))
        );
    }

    #[test]
    fn schedule_names_parse_both_ways() {
        for s in DigestSchedule::ALL {
            assert_eq!(DigestSchedule::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::json!(s.as_str())
            );
        }
        assert_eq!(DigestSchedule::parse("hourly"), None);
        assert_eq!(DigestSchedule::parse("Daily"), None);
    }
}
