//! Clinic hours and holidays, in the clinic's time zone; due times from
//! SLAs in hours or business days.
//!
//! A business day ends at the clinic's closing time: "N business days"
//! from a message is the close of the N-th open day that opens after the
//! message. So a message on Monday at 09:00 is due Tuesday at closing, and
//! one on Monday at 20:00 or Saturday at noon too; a message a minute
//! before or after Friday's closing is due Monday at closing either way.
//! Patients are told a day and "by 17:00", which is easier to keep and to
//! say than "by 09:13".
//!
//! Every local time goes through the zone's rules (chrono-tz), so a day on
//! which the clocks change is as long as it really is.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;

/// How far ahead an open day is looked for before giving up; a rules file
/// whose holidays cover two years is read as wall-clock days instead.
const SEARCH_DAYS: i64 = 800;

/// Opening and closing time of one weekday (closing after opening).
pub type Hours = (NaiveTime, NaiveTime);

#[derive(Debug, Clone, PartialEq)]
pub struct Calendar {
    pub tz: Tz,
    /// Monday first; `None` is closed all day.
    pub week: [Option<Hours>; 7],
    pub holidays: BTreeSet<NaiveDate>,
}

impl Calendar {
    /// Open and close of `date`, as instants, if the clinic opens that day.
    pub fn open_on(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if self.holidays.contains(&date) {
            return None;
        }
        let (open, close) = self.week[date.weekday().num_days_from_monday() as usize]?;
        Some((
            self.instant(date.and_time(open)),
            self.instant(date.and_time(close)),
        ))
    }

    /// Whether the clinic is open at `t` (opening time included, closing excluded).
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        self.open_on(self.local_date(t))
            .is_some_and(|(open, close)| open <= t && t < close)
    }

    /// `t` itself when open, else the next opening; `None` when the clinic
    /// never opens in the search window.
    pub fn next_opening(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let today = self.local_date(t);
        (0..SEARCH_DAYS)
            .filter_map(|d| self.open_on(today + Duration::days(d)))
            .find(|(_, close)| t < *close)
            .map(|(open, _)| open.max(t))
    }

    /// `minutes` of open time after `t`.
    pub fn add_business_minutes(&self, t: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        let mut left = Duration::minutes(minutes.max(0));
        let mut at = t;
        let first = self.local_date(t);
        for d in 0..SEARCH_DAYS {
            let Some((open, close)) = self.open_on(first + Duration::days(d)) else {
                continue;
            };
            if close <= at {
                continue;
            }
            let from = open.max(at);
            let span = close - from;
            if span >= left {
                return from + left;
            }
            left -= span;
            at = close;
        }
        at + left
    }

    /// The close of the `days`-th open day that opens after `t`: a message
    /// in the morning or late on Friday evening is due, for one business
    /// day, at the close of the next open day, and a minute either side of
    /// closing time moves nothing. 0 is the close of the open day `t` is
    /// in (or of the next one, while closed).
    pub fn add_business_days(&self, t: DateTime<Utc>, days: u32) -> DateTime<Utc> {
        let fallback = t + Duration::days(i64::from(days.max(1)));
        if days == 0 {
            return self
                .next_opening(t)
                .and_then(|start| self.open_on(self.local_date(start)))
                .map_or(fallback, |(_, close)| close);
        }
        let mut date = self.local_date(t);
        let mut left = days;
        for _ in 0..SEARCH_DAYS {
            if let Some((open, close)) = self.open_on(date)
                && open > t
            {
                left -= 1;
                if left == 0 {
                    return close;
                }
            }
            date += Duration::days(1);
        }
        fallback
    }

    /// "Tue 1 Dec by 17:00", in the clinic's zone.
    pub fn format_due(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%a %-d %b by %H:%M")
            .to_string()
    }

    /// The clinic's calendar date at `t`.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    /// The clinic's wall-clock time at `t`.
    pub fn local_time(&self, t: DateTime<Utc>) -> NaiveTime {
        t.with_timezone(&self.tz).time()
    }

    /// A local time as an instant: the earlier one when the clocks go back,
    /// the first valid one after a gap when they go forward.
    fn instant(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = local;
        for _ in 0..(26 * 4) {
            match probe.and_local_timezone(self.tz) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                    return t.with_timezone(&Utc);
                }
                LocalResult::None => probe += Duration::minutes(15),
            }
        }
        local.and_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::triage::test_time as t;

    fn chicago() -> Calendar {
        let nine_five = Some((
            NaiveTime::from_hms_opt(8, 0, 0).expect("time"),
            NaiveTime::from_hms_opt(17, 0, 0).expect("time"),
        ));
        Calendar {
            tz: chrono_tz::America::Chicago,
            week: [
                nine_five, nine_five, nine_five, nine_five, nine_five, None, None,
            ],
            holidays: [NaiveDate::from_ymd_opt(2026, 12, 25).expect("date")]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn open_hours_include_opening_and_exclude_closing() {
        let c = chicago();
        assert!(c.is_open(t("2026-12-01T08:00:00-06:00")));
        assert!(c.is_open(t("2026-12-01T16:59:59-06:00")));
        assert!(!c.is_open(t("2026-12-01T17:00:00-06:00")));
        assert!(!c.is_open(t("2026-12-05T10:00:00-06:00")), "Saturday");
        assert!(!c.is_open(t("2026-12-25T10:00:00-06:00")), "holiday");
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        let c = chicago();
        // Tuesday morning: Wednesday's close.
        assert_eq!(
            c.add_business_days(t("2026-12-01T09:00:00-06:00"), 1),
            t("2026-12-02T17:00:00-06:00")
        );
        // Friday evening, or a minute before closing: Monday's close.
        assert_eq!(
            c.add_business_days(t("2026-12-04T20:00:00-06:00"), 1),
            t("2026-12-07T17:00:00-06:00")
        );
        assert_eq!(
            c.add_business_days(t("2026-12-04T16:59:00-06:00"), 1),
            t("2026-12-07T17:00:00-06:00")
        );
        // Early on Tuesday, before opening: Tuesday's close.
        assert_eq!(
            c.add_business_days(t("2026-12-01T06:30:00-06:00"), 1),
            t("2026-12-01T17:00:00-06:00")
        );
        // Thursday 24 Dec + 1: Friday is Christmas, the weekend, so Monday.
        assert_eq!(
            c.add_business_days(t("2026-12-24T10:00:00-06:00"), 1),
            t("2026-12-28T17:00:00-06:00")
        );
        // Saturday + 3: Monday, Tuesday, Wednesday's close.
        assert_eq!(
            c.add_business_days(t("2026-12-05T10:00:00-06:00"), 3),
            t("2026-12-09T17:00:00-06:00")
        );
    }

    #[test]
    fn business_hours_carry_over_closed_time() {
        let c = chicago();
        assert_eq!(
            c.add_business_minutes(t("2026-12-01T15:00:00-06:00"), 4 * 60),
            t("2026-12-02T10:00:00-06:00")
        );
        assert_eq!(
            c.add_business_minutes(t("2026-12-04T16:00:00-06:00"), 4 * 60),
            t("2026-12-07T11:00:00-06:00")
        );
        assert_eq!(
            c.add_business_minutes(t("2026-12-01T22:00:00-06:00"), 60),
            t("2026-12-02T09:00:00-06:00")
        );
    }

    #[test]
    fn days_across_a_clock_change_keep_local_times() {
        let c = chicago();
        // DST ends Sunday 1 Nov 2026: Friday 17:00 CDT (-05) to Monday 17:00 CST (-06).
        let due = c.add_business_days(t("2026-10-30T10:00:00-05:00"), 1);
        assert_eq!(due, t("2026-11-02T17:00:00-06:00"));
        assert_eq!(c.format_due(due), "Mon 2 Nov by 17:00");
        // DST starts Sunday 8 Mar 2026.
        let due = c.add_business_minutes(t("2026-03-06T16:00:00-06:00"), 120);
        assert_eq!(due, t("2026-03-09T09:00:00-05:00"));
    }

    #[test]
    fn a_clinic_that_never_opens_falls_back_to_wall_clock() {
        let c = Calendar {
            week: [None; 7],
            ..chicago()
        };
        let now = t("2026-12-01T09:00:00-06:00");
        assert_eq!(c.add_business_days(now, 2), now + Duration::days(2));
        assert_eq!(c.add_business_minutes(now, 60), now + Duration::hours(1));
        assert_eq!(c.next_opening(now), None);
    }

    #[test]
    fn a_gap_in_local_time_opens_at_the_first_valid_minute() {
        let two = NaiveTime::from_hms_opt(2, 30, 0).expect("time");
        let five = NaiveTime::from_hms_opt(5, 0, 0).expect("time");
        let c = Calendar {
            week: [Some((two, five)); 7],
            holidays: BTreeSet::new(),
            ..chicago()
        };
        let (open, _) = c
            .open_on(NaiveDate::from_ymd_opt(2026, 3, 8).expect("date"))
            .expect("open");
        assert_eq!(open, t("2026-03-08T03:00:00-05:00"));
    }
}
