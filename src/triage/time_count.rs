//! Minutes of work on a patient's message thread over 7 days, and the
//! online digital E/M code they support (CPT 99421 5–10 min, 99422 11–20,
//! 99423 21 or more).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// `Task.extension`: time spent on the patient's message thread (who,
/// seconds, at; its `id` is the entry's, reused on a retry).
pub const WORK_TIME_URL: &str = "urn:chartty:work-time";
/// A gap between two keys counts up to this (reading counts, walking away
/// does not).
pub const IDLE_CAP: Duration = Duration::from_secs(60);
/// Less than this is kept for the next time, not written.
pub const MIN_RECORDED: Duration = Duration::from_secs(15);
/// The window the codes count over.
pub const WINDOW_DAYS: i64 = 7;

/// Active time on message threads, per patient, from keys while a thread
/// is open. The caller says when counting starts and stops (the view opens
/// or closes, the screen locks, another pane shows) and when a key comes.
#[derive(Debug, Clone, Default)]
pub struct ActiveTime {
    /// Patient and task being counted, and the last key (or the start).
    running: Option<(String, String, Instant)>,
    /// Counted and not yet written, per patient: the task it goes on.
    counted: HashMap<String, (String, Duration)>,
}

impl ActiveTime {
    /// The patient and task being counted now.
    pub fn running(&self) -> Option<(&str, &str)> {
        self.running
            .as_ref()
            .map(|(p, t, _)| (p.as_str(), t.as_str()))
    }

    fn add_gap(&mut self, at: Instant) {
        if let Some((patient, task, last)) = &mut self.running {
            let gap = at.saturating_duration_since(*last).min(IDLE_CAP);
            *last = (*last).max(at);
            let e = self
                .counted
                .entry(patient.clone())
                .or_insert_with(|| (task.clone(), Duration::ZERO));
            e.0 = task.clone();
            e.1 += gap;
        }
    }

    /// A key (or paste) at `at`: the gap since the last one counts, up to
    /// the cap.
    pub fn activity(&mut self, at: Instant) {
        self.add_gap(at);
    }

    /// Count for this patient's thread from `at` (any other count stops).
    pub fn start(&mut self, patient: &str, task: &str, at: Instant) {
        if self
            .running()
            .is_some_and(|(p, t)| p == patient && t == task)
        {
            return;
        }
        self.stop(at);
        self.running = Some((patient.to_string(), task.to_string(), at));
    }

    /// Stop counting at `at` (the last gap counts, up to the cap).
    pub fn stop(&mut self, at: Instant) {
        self.add_gap(at);
        self.running = None;
    }

    /// Counted for a patient and not yet written.
    pub fn counted(&self, patient: &str) -> Duration {
        self.counted
            .get(patient)
            .map(|(_, d)| *d)
            .unwrap_or_default()
    }

    /// What is due to be written: the patients (optionally only those
    /// counted on `task`) with at least [`MIN_RECORDED`], as (patient,
    /// task, whole seconds). They are taken out of the count; a fraction of
    /// a second stays.
    pub fn take_due(&mut self, task: Option<&str>) -> Vec<(String, String, u64)> {
        let mut out = Vec::new();
        for (patient, (t, d)) in self.counted.iter_mut() {
            if *d >= MIN_RECORDED && task.is_none_or(|x| x == t) {
                let secs = d.as_secs();
                *d -= Duration::from_secs(secs);
                out.push((patient.clone(), t.clone(), secs));
            }
        }
        out.sort();
        out
    }
}

/// One entry of time on a thread, as stored on a task.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkEntry {
    pub id: String,
    /// `Practitioner/<id>` of who did the work.
    pub who: Option<String>,
    pub seconds: u64,
    pub at: DateTime<Utc>,
}

impl WorkEntry {
    /// The `Task.extension` entry.
    pub fn extension(&self) -> Value {
        let mut parts = Vec::new();
        if let Some(w) = &self.who {
            parts.push(json!({"url": "who", "valueReference": {"reference": w}}));
        }
        parts.push(json!({"url": "seconds", "valueInteger": self.seconds}));
        parts.push(json!({"url": "at",
            "valueDateTime": self.at.to_rfc3339_opts(SecondsFormat::Secs, true)}));
        json!({"id": self.id, "url": WORK_TIME_URL, "extension": parts})
    }

    fn from_extension(e: &Value) -> Option<WorkEntry> {
        if e.get("url").and_then(Value::as_str) != Some(WORK_TIME_URL) {
            return None;
        }
        let part = |name: &str| {
            e.get("extension")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("url").and_then(Value::as_str) == Some(name))
        };
        Some(WorkEntry {
            id: e
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            who: part("who")
                .and_then(|p| p.pointer("/valueReference/reference"))
                .and_then(Value::as_str)
                .map(str::to_string),
            seconds: part("seconds")
                .and_then(|p| p.get("valueInteger"))
                .and_then(Value::as_u64)?,
            at: part("at")
                .and_then(|p| p.get("valueDateTime"))
                .and_then(Value::as_str)
                .and_then(crate::fhir::time::instant)?,
        })
    }
}

/// The work-time entries on a task.
pub fn entries_of(task: &Value) -> Vec<WorkEntry> {
    task.get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(WorkEntry::from_extension)
        .collect()
}

/// Add an entry to a task, unless an entry with its id is there already
/// (a retry); `true` when added.
pub fn add_entry(task: &mut Value, entry: &WorkEntry) -> bool {
    if entries_of(task).iter().any(|e| e.id == entry.id) {
        return false;
    }
    match task.get_mut("extension").and_then(Value::as_array_mut) {
        Some(list) => list.push(entry.extension()),
        None => task["extension"] = json!([entry.extension()]),
    }
    true
}

/// Seconds in the 7 days before `now` (each entry id once), and how many
/// of them were `me`'s.
pub fn window_seconds<'a>(
    entries: impl IntoIterator<Item = &'a WorkEntry>,
    now: DateTime<Utc>,
    me: Option<&str>,
) -> (u64, u64) {
    let from = now - chrono::Duration::days(WINDOW_DAYS);
    let mut seen = std::collections::HashSet::new();
    let (mut all, mut mine) = (0, 0);
    for e in entries {
        if e.at <= from || e.at > now + chrono::Duration::minutes(5) || !seen.insert(&e.id) {
            continue;
        }
        all += e.seconds;
        if me.is_some() && e.who.as_deref() == me {
            mine += e.seconds;
        }
    }
    (all, mine)
}

/// Whole minutes of `seconds` (the codes count completed minutes).
pub fn minutes(seconds: u64) -> u32 {
    u32::try_from(seconds / 60).unwrap_or(u32::MAX)
}

/// `(code, label)` for the minutes, or `None` under 5.
pub fn cpt_for(minutes: u32) -> Option<(&'static str, &'static str)> {
    match minutes {
        0..=4 => None,
        5..=10 => Some(("99421", "Online digital E/M, 5–10 min")),
        11..=20 => Some(("99422", "Online digital E/M, 11–20 min")),
        _ => Some(("99423", "Online digital E/M, 21+ min")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn keys_count_the_gaps_between_them_and_a_long_gap_only_up_to_the_cap() {
        let t0 = Instant::now();
        let mut a = ActiveTime::default();
        a.start("p1", "t1", t0);
        a.activity(t0 + secs(30));
        a.activity(t0 + secs(50));
        // Ten minutes away: one minute counts.
        a.activity(t0 + secs(50 + 600));
        a.activity(t0 + secs(50 + 600 + 10));
        assert_eq!(a.counted("p1"), secs(30 + 20 + 60 + 10));
        // Stopping counts the last gap, up to the cap.
        a.stop(t0 + secs(50 + 600 + 10 + 200));
        assert_eq!(a.counted("p1"), secs(30 + 20 + 60 + 10 + 60));
        assert_eq!(a.running(), None);
        // Keys while nothing is open count nothing.
        a.activity(t0 + secs(2000));
        assert_eq!(a.counted("p1"), secs(180));
    }

    #[test]
    fn a_lock_or_another_pane_stops_the_count_and_it_starts_again_from_zero_gap() {
        let t0 = Instant::now();
        let mut a = ActiveTime::default();
        a.start("p1", "t1", t0);
        a.activity(t0 + secs(20));
        // The screen locks (or another pane shows) at 25 s ...
        a.stop(t0 + secs(25));
        // ... and for an hour nothing counts, keys or not.
        a.activity(t0 + secs(1000));
        a.activity(t0 + secs(3600));
        assert_eq!(a.counted("p1"), secs(25));
        // Back on the message: counting starts from then.
        a.start("p1", "t1", t0 + secs(3625));
        a.activity(t0 + secs(3635));
        assert_eq!(a.counted("p1"), secs(35));
        // Another patient's message: the first stops, the second counts.
        a.start("p2", "t9", t0 + secs(3640));
        a.activity(t0 + secs(3650));
        assert_eq!(a.counted("p1"), secs(40));
        assert_eq!(a.counted("p2"), secs(10));
    }

    #[test]
    fn only_fifteen_seconds_or_more_is_due_and_the_rest_waits() {
        let t0 = Instant::now();
        let mut a = ActiveTime::default();
        a.start("p1", "t1", t0);
        a.start("p2", "t2", t0 + Duration::from_millis(20_500));
        a.stop(t0 + Duration::from_millis(30_500));
        assert_eq!(a.take_due(None), vec![("p1".into(), "t1".into(), 20)]);
        // Half a second stays for p1; p2's 10 s wait for more.
        assert_eq!(a.counted("p1"), Duration::from_millis(500));
        assert_eq!(a.counted("p2"), secs(10));
        assert!(a.take_due(Some("t2")).is_empty());
    }

    fn entry(id: &str, who: &str, seconds: u64, at: DateTime<Utc>) -> WorkEntry {
        WorkEntry {
            id: id.into(),
            who: Some(who.into()),
            seconds,
            at,
        }
    }

    #[test]
    fn seven_days_of_entries_are_summed_once_each_with_my_part() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let days = |d: i64| now - chrono::Duration::days(d);
        let list = [
            entry("a", "Practitioner/me", 300, days(1)),
            entry("b", "Practitioner/other", 240, days(6)),
            // Older than 7 days: not counted.
            entry("c", "Practitioner/me", 900, days(8)),
            entry("d", "Practitioner/me", 60, now - chrono::Duration::hours(1)),
            // The same entry seen twice (read and written): once.
            entry("a", "Practitioner/me", 300, days(1)),
        ];
        assert_eq!(
            window_seconds(&list, now, Some("Practitioner/me")),
            (600, 360)
        );
        assert_eq!(window_seconds(&list, now, None), (600, 0));
        assert_eq!(minutes(600), 10);
        assert_eq!(cpt_for(minutes(600)).map(|c| c.0), Some("99421"));
    }

    #[test]
    fn an_entry_is_added_once_and_read_back() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let mut task = json!({"resourceType": "Task", "extension": [{"url": "urn:other"}]});
        let e = entry("wt-1", "Practitioner/me", 75, now);
        assert!(add_entry(&mut task, &e));
        // A retry with the same id adds nothing.
        assert!(!add_entry(&mut task, &e));
        assert_eq!(entries_of(&task), vec![e]);
        assert_eq!(task["extension"].as_array().unwrap().len(), 2);
        assert_eq!(task["extension"][1]["url"], WORK_TIME_URL);
    }

    #[test]
    fn boundaries() {
        assert_eq!(cpt_for(0), None);
        assert_eq!(cpt_for(4), None);
        assert_eq!(cpt_for(5).map(|c| c.0), Some("99421"));
        assert_eq!(cpt_for(10).map(|c| c.0), Some("99421"));
        assert_eq!(cpt_for(11).map(|c| c.0), Some("99422"));
        assert_eq!(cpt_for(20).map(|c| c.0), Some("99422"));
        assert_eq!(cpt_for(21).map(|c| c.0), Some("99423"));
        assert_eq!(cpt_for(u32::MAX).map(|c| c.0), Some("99423"));
        assert_eq!(
            cpt_for(21).map(|c| c.1),
            Some("Online digital E/M, 21+ min")
        );
    }
}
