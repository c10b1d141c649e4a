//! Times as the clinician reads them: in their own time zone (a setting,
//! the system's by default), a date as the date written, and a label where
//! a time could be read two ways (the hour repeated when clocks go back, a
//! time the server sent without a zone).

use chrono::{DateTime, LocalResult, TimeZone, Utc};
use chrono_tz::Tz;

use crate::fhir::time::{self, Precision};

/// The system's zone (`TZ`, else `/etc/localtime`), else UTC.
pub fn system_zone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// A zone by IANA name (`Europe/Oslo`), or why not.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!("{name:?} is not a time zone name (e.g. Europe/Oslo, America/Chicago)")
    })
}

/// The zone's abbreviation at `now` (`CET`, `EST`), for the status bar.
pub fn zone_label(tz: Tz, now: DateTime<Utc>) -> String {
    now.with_timezone(&tz).format("%Z").to_string()
}

/// `2026-11-23 14:05` in the clinician's zone for a date-time, the date as
/// written for a date (`2026-11-23`, `2026-11`, `2026`). A time whose local
/// reading is ambiguous carries the zone abbreviation; one sent without a
/// zone is shown as written and marked, not converted on a guess.
pub fn when(s: &str, tz: Tz) -> String {
    let Some(t) = time::parse(s) else {
        return s.chars().take(16).collect();
    };
    if !t.has_time() {
        return match t.precision {
            Precision::Year => s.chars().take(4).collect(),
            Precision::Month => s.chars().take(7).collect(),
            _ => s.chars().take(10).collect(),
        };
    }
    if !t.zoned {
        return format!("{} (no zone)", t.start.format("%Y-%m-%d %H:%M"));
    }
    let local = t.start.with_timezone(&tz);
    let text = local.format("%Y-%m-%d %H:%M").to_string();
    let ambiguous = matches!(
        tz.from_local_datetime(&local.naive_local()),
        LocalResult::Ambiguous(..)
    );
    if ambiguous {
        format!("{text} {}", local.format("%Z"))
    } else {
        text
    }
}

/// The date part of [`when`].
pub fn date(s: &str, tz: Tz) -> String {
    when(s, tz).chars().take(10).collect()
}

/// The clinician's wall clock as a `DateTime<Utc>` for calendar arithmetic
/// (an age turns over at local midnight, not at UTC midnight).
pub fn wall_clock(now: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    now.with_timezone(&tz).naive_local().and_utc()
}

/// An instant in the clinician's zone, `HH:MM` when it is today there,
/// else the date and time.
pub fn instant_short(at: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    if local.date_naive() == now.with_timezone(&tz).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_clinicians_zone() {
        let oslo: Tz = parse_zone("Europe/Oslo").unwrap();
        let chicago: Tz = parse_zone("America/Chicago").unwrap();
        assert_eq!(when("2026-07-01T12:00:00Z", oslo), "2026-07-01 14:00");
        assert_eq!(when("2026-07-01T12:00:00Z", chicago), "2026-07-01 07:00");
        assert_eq!(when("2026-07-01T12:00:00Z", Tz::UTC), "2026-07-01 12:00");
        // Dates are dates: never shifted into another day.
        assert_eq!(when("2026-07-01", chicago), "2026-07-01");
        assert_eq!(when("1984", chicago), "1984");
        // 01:30 on 2026-11-01 happens twice in Chicago: labelled.
        assert_eq!(
            when("2026-11-01T06:30:00Z", chicago),
            "2026-11-01 01:30 CDT"
        );
        assert_eq!(
            when("2026-11-01T07:30:00Z", chicago),
            "2026-11-01 01:30 CST"
        );
        assert_eq!(
            when("2026-03-01T14:30:00", oslo),
            "2026-03-01 14:30 (no zone)"
        );
        assert!(parse_zone("Mars/Olympus").is_err());
        let now = "2026-01-15T12:00:00Z".parse().unwrap();
        assert_eq!(zone_label(oslo, now), "CET");
    }
}
