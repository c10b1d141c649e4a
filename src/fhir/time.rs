//! FHIR `date`, `dateTime` and `instant`, read one way by both halves: the
//! server indexes and searches with [`FhirTime::range_ms`], the client sorts
//! and shows with [`FhirTime::start`].
//!
//! A value covers a span: "1984" the whole year, "1984-03" the month, a time
//! to the second one second (one millisecond with a fraction). FHIR requires
//! a zone on every value with a time; one that comes without is read as UTC
//! on both sides and flagged ([`FhirTime::zoned`]) so the client can say so
//! rather than pass it off as a time in the clinician's zone.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// How much of a date-time was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Minute,
    Second,
    Fraction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirTime {
    /// The first instant covered.
    pub start: DateTime<Utc>,
    pub precision: Precision,
    /// A zone or `Z` was given (always true for dates without a time).
    pub zoned: bool,
}

const DAY_MS: i64 = 86_400_000;

impl FhirTime {
    /// Whether a time of day was given (not a bare date).
    pub fn has_time(&self) -> bool {
        self.precision >= Precision::Minute
    }

    /// First and last millisecond covered, inclusive.
    pub fn range_ms(&self) -> (i64, i64) {
        let lo = self.start.timestamp_millis();
        let hi = match self.precision {
            Precision::Year => {
                let next = self.start.date_naive().with_year_start(1);
                next.map_or(lo, |d| midnight_ms(d) - 1)
            }
            Precision::Month => {
                let next = self.start.date_naive().with_month_start(1);
                next.map_or(lo, |d| midnight_ms(d) - 1)
            }
            Precision::Day => lo + DAY_MS - 1,
            Precision::Minute => lo + 59_999,
            Precision::Second => lo + 999,
            Precision::Fraction => lo,
        };
        (lo, hi)
    }

    /// The calendar date as written, for values without a time.
    pub fn date(&self) -> NaiveDate {
        self.start.date_naive()
    }
}

trait Starts {
    fn with_year_start(self, add: i32) -> Option<NaiveDate>;
    fn with_month_start(self, add: u32) -> Option<NaiveDate>;
}

impl Starts for NaiveDate {
    fn with_year_start(self, add: i32) -> Option<NaiveDate> {
        use chrono::Datelike;
        NaiveDate::from_ymd_opt(self.year() + add, 1, 1)
    }
    fn with_month_start(self, add: u32) -> Option<NaiveDate> {
        use chrono::Datelike;
        let months = self.year() * 12 + self.month0() as i32 + add as i32;
        NaiveDate::from_ymd_opt(months.div_euclid(12), months.rem_euclid(12) as u32 + 1, 1)
    }
}

fn midnight_ms(d: NaiveDate) -> i64 {
    d.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

fn date_only(d: NaiveDate, precision: Precision) -> FhirTime {
    FhirTime {
        start: d.and_time(NaiveTime::MIN).and_utc(),
        precision,
        zoned: true,
    }
}

/// Read a FHIR date, dateTime or instant; `None` when it is none of these.
pub fn parse(s: &str) -> Option<FhirTime> {
    let s = s.trim();
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    match b.len() {
        4 if digits(0..4) => {
            let y: i32 = s.parse().ok()?;
            Some(date_only(
                NaiveDate::from_ymd_opt(y, 1, 1)?,
                Precision::Year,
            ))
        }
        7 if digits(0..4) && b[4] == b'-' && digits(5..7) => {
            let (y, m) = (s[..4].parse().ok()?, s[5..7].parse().ok()?);
            Some(date_only(
                NaiveDate::from_ymd_opt(y, m, 1)?,
                Precision::Month,
            ))
        }
        10 => {
            let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
            Some(date_only(d, Precision::Day))
        }
        _ => parse_date_time(s),
    }
}

fn parse_date_time(s: &str) -> Option<FhirTime> {
    let (_, time) = s.split_once('T')?;
    let fraction = time.contains('.');
    let with_seconds = time.len() >= 8 && time.as_bytes().get(5) == Some(&b':');
    let precision = if fraction {
        Precision::Fraction
    } else if with_seconds {
        Precision::Second
    } else {
        Precision::Minute
    };
    let zoned = time.ends_with(['Z', 'z']) || time.chars().skip(1).any(|c| c == '+' || c == '-');
    let start = if zoned {
        // Minute precision ("T10:00Z") is not RFC 3339: spell the zone out.
        let offset_form = match s.strip_suffix(['Z', 'z']) {
            Some(rest) => format!("{rest}+00:00"),
            None => s.to_string(),
        };
        DateTime::parse_from_rfc3339(s)
            .or_else(|_| DateTime::parse_from_str(&offset_form, "%Y-%m-%dT%H:%M%:z"))
            .ok()?
            .with_timezone(&Utc)
    } else {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
            .ok()?
            .and_utc()
    };
    Some(FhirTime {
        start,
        precision,
        zoned,
    })
}

/// The first instant a value covers (sorting, ages, "how long ago").
pub fn instant(s: &str) -> Option<DateTime<Utc>> {
    parse(s).map(|t| t.start)
}

/// First and last millisecond a value covers, inclusive (search ranges).
pub fn range_ms(s: &str) -> Option<(i64, i64)> {
    parse(s).map(|t| t.range_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spans_and_precision() {
        let (lo, hi) = range_ms("1984").unwrap();
        let (dlo, dhi) = range_ms("1984-03-05").unwrap();
        assert!(lo <= dlo && dhi <= hi);
        let (mlo, mhi) = range_ms("1984-02").unwrap();
        assert_eq!(mhi - mlo + 1, 29 * DAY_MS, "1984 was a leap year");
        let (dec, dec_end) = range_ms("2023-12").unwrap();
        assert_eq!(dec_end - dec + 1, 31 * DAY_MS);
        let (t, t2) = range_ms("2020-01-01T10:00:00+02:00").unwrap();
        assert_eq!(t2 - t, 999);
        assert_eq!(range_ms("2020-01-01T08:00:00Z").unwrap().0, t);
        assert_eq!(
            range_ms("2020-01-01T08:00:00.250Z").unwrap(),
            (t + 250, t + 250)
        );
        assert_eq!(range_ms("2020-01-01T10:00+02:00").unwrap(), (t, t + 59_999));
        assert!(parse("not a date").is_none());
        assert!(parse("2020-13-01").is_none());
        assert!(parse("").is_none());
    }

    #[test]
    fn a_time_without_a_zone_is_read_as_utc_and_flagged() {
        let floating = parse("2026-03-01T14:30:00").unwrap();
        let utc = parse("2026-03-01T14:30:00Z").unwrap();
        assert_eq!(floating.start, utc.start, "client and server agree: UTC");
        assert!(!floating.zoned && utc.zoned);
        assert!(floating.has_time(), "the time of day is kept, not dropped");
        assert_eq!(
            parse("2026-03-01T14:30").unwrap().precision,
            Precision::Minute
        );
        assert!(parse("2026-03-01").unwrap().zoned);
        assert!(!parse("2026-03-01").unwrap().has_time());
        assert_eq!(
            instant("2026-03-01T14:30:00-05:00").unwrap(),
            instant("2026-03-01T19:30:00Z").unwrap()
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse(&s);
        }

        #[test]
        fn a_day_lies_within_its_month_and_year(y in 1800i32..2200, m in 1u32..13, d in 1u32..29, h in 0u32..24) {
            let (ylo, yhi) = range_ms(&format!("{y:04}")).unwrap();
            let (mlo, mhi) = range_ms(&format!("{y:04}-{m:02}")).unwrap();
            let (dlo, dhi) = range_ms(&format!("{y:04}-{m:02}-{d:02}")).unwrap();
            let (t, _) = range_ms(&format!("{y:04}-{m:02}-{d:02}T{h:02}:00:00Z")).unwrap();
            prop_assert!(ylo <= mlo && mhi <= yhi);
            prop_assert!(mlo <= dlo && dhi <= mhi);
            prop_assert!(dlo <= t && t <= dhi);
        }
    }
}
