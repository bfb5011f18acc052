//! When a chain step goes out: its due time moved into the client's local
//! send window (analytics.md §7), DST-safe.
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

/// Default window: 09:00–20:00 local.
pub const DEFAULT_WINDOW: (i32, i32) = (9 * 60, 20 * 60);

/// The first instant at or after `due` whose local time in `tz` lies in
/// `[start, end)` minutes after midnight (`start < end`).
pub fn in_window(due: DateTime<Utc>, tz: Tz, (start, end): (i32, i32)) -> DateTime<Utc> {
    let local = due.with_timezone(&tz);
    let minute = i32::try_from(local.hour() * 60 + local.minute()).unwrap_or(0);
    if (start..end).contains(&minute) {
        return due;
    }
    let day = if minute < start {
        local.date_naive()
    } else {
        local.date_naive() + Duration::days(1)
    };
    let at = day.and_hms_opt(0, 0, 0).unwrap_or_default() + Duration::minutes(i64::from(start));
    local_to_utc(tz, at)
}

/// A local time as UTC: the earlier of an ambiguous time (clocks went
/// back), the first valid minute after a skipped one (clocks went forward).
pub(crate) fn local_to_utc(tz: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    for shift in 0..=180 {
        if let Some(t) = tz
            .from_local_datetime(&(at + Duration::minutes(shift)))
            .earliest()
        {
            return t.with_timezone(&Utc);
        }
    }
    at.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn inside_the_window_is_unchanged() {
        let t = utc("2026-12-07T10:00:00Z"); // 13:00 in Moscow
        assert_eq!(in_window(t, chrono_tz::Europe::Moscow, DEFAULT_WINDOW), t);
    }

    #[test]
    fn before_the_window_waits_for_its_start_that_day() {
        // 05:30 UTC = 08:30 Moscow → 09:00 Moscow = 06:00 UTC.
        let t = utc("2026-12-07T05:30:00Z");
        assert_eq!(
            in_window(t, chrono_tz::Europe::Moscow, DEFAULT_WINDOW),
            utc("2026-12-07T06:00:00Z")
        );
    }

    #[test]
    fn after_the_window_waits_for_the_next_morning() {
        // 17:00 UTC = 20:00 Moscow (end excluded) → next day 09:00 Moscow.
        let t = utc("2026-12-07T17:00:00Z");
        assert_eq!(
            in_window(t, chrono_tz::Europe::Moscow, DEFAULT_WINDOW),
            utc("2026-12-08T06:00:00Z")
        );
        // 23:30 Moscow on the 7th is 20:30 UTC → the 8th at 06:00 UTC.
        assert_eq!(
            in_window(
                utc("2026-12-07T20:30:00Z"),
                chrono_tz::Europe::Moscow,
                DEFAULT_WINDOW
            ),
            utc("2026-12-08T06:00:00Z")
        );
    }

    #[test]
    fn a_skipped_local_hour_moves_to_the_first_valid_minute() {
        // Berlin, 29 March 2026: 02:00–03:00 does not exist. A window
        // opening at 02:30 opens at 03:00 local = 01:00 UTC.
        let t = utc("2026-03-28T23:00:00Z"); // 00:00 local
        assert_eq!(
            in_window(t, chrono_tz::Europe::Berlin, (150, 600)),
            utc("2026-03-29T01:00:00Z")
        );
    }
}
