//! Queue metrics over a period, from tasks and their versions: volume per
//! queue, median and p90 minutes to first action and to resolution, SLA
//! breaches, and the share of messages that reached a physician. Carried
//! as a FHIR `Parameters` resource (`Task/$queue-stats`).

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::engine::TRIAGE_AUTHOR;
use crate::fhir::codes::ROLE_SYSTEM;
use crate::fhir::time;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueFigures {
    pub queue: String,
    /// Tasks created in the period.
    pub volume: u32,
    /// Still open now.
    pub open: u32,
    pub first_action_median_min: Option<f64>,
    pub first_action_p90_min: Option<f64>,
    pub resolution_median_min: Option<f64>,
    pub resolution_p90_min: Option<f64>,
    /// Resolved after their due time, or open and past it.
    pub breaches: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueStats {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    /// Messages (tasks with a `focus` Communication) in the period.
    pub messages: u32,
    /// Of those, how many were ever in a physician's queue (attending,
    /// resident, on-call).
    pub reached_physician: u32,
    pub queues: Vec<QueueFigures>,
}

const PHYSICIAN_QUEUES: [&str; 3] = ["attending", "resident", "oncall"];
const CLOSED: [&str; 5] = [
    "completed",
    "cancelled",
    "rejected",
    "failed",
    "entered-in-error",
];

/// One version, read for what the figures need.
struct Version<'a> {
    order: (u64, String),
    at: Option<DateTime<Utc>>,
    status: &'a str,
    queue: Option<&'a str>,
    owner: bool,
    due: Option<DateTime<Utc>>,
    /// Author of the newest note, if any.
    last_note_author: Option<&'a str>,
    message: bool,
}

fn read_version(v: &Value) -> Option<(&str, Version<'_>)> {
    let id = v.get("id")?.as_str()?;
    let meta = v.get("meta");
    let version_id = meta
        .and_then(|m| m.get("versionId"))
        .and_then(Value::as_str)
        .unwrap_or("");
    // When it happened: the task's own `lastModified` (set by whoever
    // changed it) where the server stored that version at or after it,
    // else the server's `meta.lastUpdated`. A version loaded after the fact
    // (an import, the demo) keeps the time of the work; a writer's clock
    // cannot date a change later than the server saw it.
    let stored = meta
        .and_then(|m| m.get("lastUpdated"))
        .and_then(Value::as_str)
        .and_then(time::instant);
    let modified = v
        .get("lastModified")
        .and_then(Value::as_str)
        .and_then(time::instant);
    let at = match (modified, stored) {
        (Some(m), Some(s)) if m <= s => Some(m),
        (_, Some(s)) => Some(s),
        (m, None) => m,
    };
    let queue = v
        .get("performerType")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("coding")?.as_array())
        .flatten()
        .find(|c| c.get("system").and_then(Value::as_str) == Some(ROLE_SYSTEM))
        .and_then(|c| c.get("code")?.as_str());
    let last_note_author = v
        .get("note")
        .and_then(Value::as_array)
        .and_then(|n| n.last())
        .and_then(|n| n.get("authorString"))
        .and_then(Value::as_str);
    let message = v
        .get("focus")
        .and_then(|f| f.get("reference"))
        .and_then(Value::as_str)
        .is_some_and(|r| r.starts_with("Communication/"));
    Some((
        id,
        Version {
            // Numeric version ids sort as numbers; opaque ones as text.
            order: (
                version_id.parse().unwrap_or(u64::MAX),
                version_id.to_string(),
            ),
            at,
            status: v.get("status").and_then(Value::as_str).unwrap_or(""),
            queue,
            owner: v.get("owner").is_some_and(|o| !o.is_null()),
            due: v
                .get("restriction")
                .and_then(|r| r.get("period"))
                .and_then(|p| p.get("end"))
                .and_then(Value::as_str)
                .and_then(time::instant),
            last_note_author,
            message,
        },
    ))
}

/// Linear interpolation between closest ranks, in minutes.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let (first, last) = (sorted.first()?, sorted.last()?);
    if sorted.len() == 1 {
        return Some(*first);
    }
    let h = (sorted.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (h.ceil() as usize).min(sorted.len() - 1);
    let (a, b) = (
        sorted.get(lo).unwrap_or(first),
        sorted.get(hi).unwrap_or(last),
    );
    Some(a + (h - lo as f64) * (b - a))
}

fn minutes(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_seconds() as f64 / 60.0
}

#[derive(Default)]
struct Acc {
    volume: u32,
    open: u32,
    breaches: u32,
    first_action: Vec<f64>,
    resolution: Vec<f64>,
}

/// Figures from every version of every task created in `[start, end)`
/// (JSON `Task`s, any order; versions of one task share its id and differ
/// in `meta.versionId`), as of `now`.
///
/// A task counts in the queue it was first routed to. Its first action is
/// the first version in which a person (a note author other than the
/// router's) took it on: status past requested/received, or an owner. Its
/// resolution is the first version with a closed status. Versions after
/// `now` are not yet known and are left out.
pub fn queue_stats(
    versions: &[Value],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueueStats {
    let mut tasks: BTreeMap<&str, Vec<Version>> = BTreeMap::new();
    for v in versions {
        if let Some((id, ver)) = read_version(v) {
            tasks.entry(id).or_default().push(ver);
        }
    }
    let mut stats = QueueStats {
        start: Some(start),
        end: Some(end),
        ..QueueStats::default()
    };
    let mut by_queue: BTreeMap<String, Acc> = BTreeMap::new();
    for (_, mut vs) in tasks {
        vs.sort_by(|a, b| a.order.cmp(&b.order).then(a.at.cmp(&b.at)));
        vs.retain(|v| v.at.is_none_or(|t| t <= now));
        let Some(first) = vs.first() else { continue };
        let Some(created) = first.at else { continue };
        if created < start || created >= end {
            continue;
        }
        let queue = first.queue.unwrap_or("none").to_string();
        let acc = by_queue.entry(queue).or_default();
        acc.volume += 1;
        let first_action = vs.iter().skip(1).find(|v| {
            let acted = !matches!(v.status, "requested" | "received" | "") || v.owner;
            acted && v.last_note_author != Some(TRIAGE_AUTHOR)
        });
        if let Some(t) = first_action.and_then(|v| v.at) {
            acc.first_action.push(minutes(created, t));
        }
        let resolved = vs.iter().find(|v| CLOSED.contains(&v.status));
        let latest = vs.last().unwrap_or(first);
        let due = latest.due.or(first.due);
        match resolved {
            Some(r) => {
                let at = r.at.unwrap_or(created);
                acc.resolution.push(minutes(created, at));
                if due.is_some_and(|d| at > d) {
                    acc.breaches += 1;
                }
            }
            None => {
                acc.open += 1;
                if due.is_some_and(|d| now > d) {
                    acc.breaches += 1;
                }
            }
        }
        if first.message || vs.iter().any(|v| v.message) {
            stats.messages += 1;
            if vs
                .iter()
                .any(|v| v.queue.is_some_and(|q| PHYSICIAN_QUEUES.contains(&q)))
            {
                stats.reached_physician += 1;
            }
        }
    }
    for (queue, mut acc) in by_queue {
        acc.first_action.sort_by(f64::total_cmp);
        acc.resolution.sort_by(f64::total_cmp);
        stats.queues.push(QueueFigures {
            queue,
            volume: acc.volume,
            open: acc.open,
            first_action_median_min: percentile(&acc.first_action, 0.5),
            first_action_p90_min: percentile(&acc.first_action, 0.9),
            resolution_median_min: percentile(&acc.resolution, 0.5),
            resolution_p90_min: percentile(&acc.resolution, 0.9),
            breaches: acc.breaches,
        });
    }
    stats
}

fn int_part(name: &str, v: u32) -> Value {
    json!({"name": name, "valueInteger": v})
}

const DECIMALS: [&str; 4] = [
    "firstActionMedian",
    "firstActionP90",
    "resolutionMedian",
    "resolutionP90",
];

/// Minutes as a person reads them: "42 m", "5.2 h", "2.1 d", "–" for none.
pub fn minutes_text(m: Option<f64>) -> String {
    match m {
        None => "–".into(),
        Some(m) if m < 90.0 => format!("{m:.0} m"),
        Some(m) if m < 48.0 * 60.0 => format!("{:.1} h", m / 60.0),
        Some(m) => format!("{:.1} d", m / 1440.0),
    }
}

impl QueueStats {
    /// As a FHIR `Parameters` resource (documented in docs/triage.md).
    pub fn to_parameters(&self) -> Value {
        let mut parameter = Vec::new();
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        if let Some(s) = self.start {
            parameter.push(json!({"name": "start", "valueDateTime": stamp(s)}));
        }
        if let Some(e) = self.end {
            parameter.push(json!({"name": "end", "valueDateTime": stamp(e)}));
        }
        parameter.push(int_part("messages", self.messages));
        parameter.push(int_part("reachedPhysician", self.reached_physician));
        for q in &self.queues {
            let mut part = vec![
                json!({"name": "code", "valueCode": q.queue}),
                int_part("volume", q.volume),
                int_part("open", q.open),
                int_part("breaches", q.breaches),
            ];
            let values = [
                q.first_action_median_min,
                q.first_action_p90_min,
                q.resolution_median_min,
                q.resolution_p90_min,
            ];
            for (name, v) in DECIMALS.iter().zip(values) {
                if let Some(v) = v.filter(|v| v.is_finite()) {
                    part.push(json!({"name": name, "valueDecimal": v}));
                }
            }
            parameter.push(json!({"name": "queue", "part": part}));
        }
        json!({"resourceType": "Parameters", "parameter": parameter})
    }

    /// Read what [`Self::to_parameters`] wrote; unknown parts are ignored.
    pub fn from_parameters(parameters: &Value) -> Result<QueueStats, String> {
        if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
            return Err("not a Parameters resource".to_string());
        }
        let list = match parameters.get("parameter") {
            None => &Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return Err("parameter is not a list".to_string()),
        };
        let name = |p: &Value| {
            p.get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let int = |p: &Value, n: &str| -> Result<u32, String> {
            p.get("valueInteger")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("{n} has no valueInteger"))
        };
        let when = |p: &Value, n: &str| -> Result<DateTime<Utc>, String> {
            p.get("valueDateTime")
                .and_then(Value::as_str)
                .and_then(time::instant)
                .ok_or_else(|| format!("{n} has no valueDateTime"))
        };
        let mut stats = QueueStats::default();
        for p in list {
            match name(p).as_str() {
                "start" => stats.start = Some(when(p, "start")?),
                "end" => stats.end = Some(when(p, "end")?),
                "messages" => stats.messages = int(p, "messages")?,
                "reachedPhysician" => stats.reached_physician = int(p, "reachedPhysician")?,
                "queue" => {
                    let mut q = QueueFigures::default();
                    let parts = p
                        .get("part")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                    for part in parts {
                        let n = name(part);
                        let dec = || {
                            part.get("valueDecimal")
                                .and_then(Value::as_f64)
                                .ok_or_else(|| format!("{n} has no valueDecimal"))
                        };
                        match n.as_str() {
                            "code" => {
                                q.queue = part
                                    .get("valueCode")
                                    .and_then(Value::as_str)
                                    .ok_or("queue code has no valueCode")?
                                    .to_string();
                            }
                            "volume" => q.volume = int(part, "volume")?,
                            "open" => q.open = int(part, "open")?,
                            "breaches" => q.breaches = int(part, "breaches")?,
                            "firstActionMedian" => q.first_action_median_min = Some(dec()?),
                            "firstActionP90" => q.first_action_p90_min = Some(dec()?),
                            "resolutionMedian" => q.resolution_median_min = Some(dec()?),
                            "resolutionP90" => q.resolution_p90_min = Some(dec()?),
                            _ => {}
                        }
                    }
                    if q.queue.is_empty() {
                        return Err("a queue parameter has no code".to_string());
                    }
                    stats.queues.push(q);
                }
                _ => {}
            }
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::triage::test_time as t;

    /// A version of task `id` at `minute` minutes past 09:00 on 1 Dec.
    fn v(id: &str, n: u32, minute: i64, status: &str, queue: &str, author: &str) -> Value {
        let at = t("2026-12-01T09:00:00Z") + chrono::Duration::minutes(minute);
        json!({
            "resourceType": "Task", "id": id,
            "meta": {"versionId": n.to_string(), "lastUpdated": at.to_rfc3339()},
            "status": status,
            "focus": {"reference": format!("Communication/{id}")},
            "performerType": [{"coding": [{"system": ROLE_SYSTEM, "code": queue}]}],
            "restriction": {"period": {"end": "2026-12-01T12:00:00Z"}},
            "note": [{"authorString": author, "text": "x"}],
        })
    }

    fn sample() -> Vec<Value> {
        let tr = TRIAGE_AUTHOR;
        vec![
            // a: nurse, taken on at +10, done at +60.
            v("a", 1, 0, "requested", "nurse", tr),
            v("a", 2, 10, "in-progress", "nurse", "Nurse Ann"),
            v("a", 3, 60, "completed", "nurse", "Nurse Ann"),
            // b: nurse, escalated to the attending by the router (not an action), then done late.
            v("b", 3, 400, "completed", "attending", "Dr B"),
            v("b", 1, 0, "requested", "nurse", tr),
            v("b", 2, 200, "requested", "attending", tr),
            // c: nurse, taken on at +30, still open and past due.
            v("c", 1, 0, "requested", "nurse", tr),
            v("c", 2, 30, "in-progress", "nurse", "Nurse Ann"),
            // d: front desk, never touched, due later than now.
            v("d", 1, 5, "requested", "frontdesk", tr),
            // e: before the period.
            v("e", 1, -600, "requested", "nurse", tr),
        ]
    }

    /// Versions loaded after the fact keep the time of the work they
    /// record; a writer's clock ahead of the server's is not believed.
    #[test]
    fn a_version_is_dated_by_its_work_unless_that_is_after_the_server_saw_it() {
        let loaded_later = |minute: i64| {
            let mut x = v("a", 2, 600, "in-progress", "nurse", "Nurse Ann");
            let when = t("2026-12-01T09:00:00Z") + chrono::Duration::minutes(minute);
            x["lastModified"] = json!(when.to_rfc3339());
            x
        };
        let first = |vs: &[Value]| {
            queue_stats(
                vs,
                t("2026-12-01T00:00:00Z"),
                t("2026-12-02T00:00:00Z"),
                t("2026-12-01T23:00:00Z"),
            )
            .queues[0]
                .first_action_median_min
        };
        let routed = v("a", 1, 0, "requested", "nurse", TRIAGE_AUTHOR);
        assert_eq!(first(&[routed.clone(), loaded_later(15)]), Some(15.0));
        // Dated after the server stored it: the server's time counts.
        assert_eq!(first(&[routed, loaded_later(900)]), Some(600.0));
    }

    #[test]
    fn figures_from_hand_built_versions() {
        let mut vs = sample();
        vs[8]["restriction"]["period"]["end"] = json!("2026-12-09T12:00:00Z");
        let s = queue_stats(
            &vs,
            t("2026-12-01T00:00:00Z"),
            t("2026-12-02T00:00:00Z"),
            t("2026-12-01T18:00:00Z"),
        );
        assert_eq!(s.messages, 4);
        assert_eq!(s.reached_physician, 1);
        let q: Vec<&str> = s.queues.iter().map(|q| q.queue.as_str()).collect();
        assert_eq!(q, ["frontdesk", "nurse"]);
        let nurse = &s.queues[1];
        assert_eq!(nurse.volume, 3);
        assert_eq!(nurse.open, 1);
        // first actions 10, 30, 400 → median 30, p90 = 30 + 0.8·370 = 326
        assert_eq!(nurse.first_action_median_min, Some(30.0));
        assert_eq!(nurse.first_action_p90_min, Some(326.0));
        // resolutions 60, 400 → median 230, p90 = 60 + 0.9·340 = 366
        assert_eq!(nurse.resolution_median_min, Some(230.0));
        assert_eq!(nurse.resolution_p90_min, Some(366.0));
        // b resolved after noon, c open past noon.
        assert_eq!(nurse.breaches, 2);
        let fd = &s.queues[0];
        assert_eq!((fd.volume, fd.open, fd.breaches), (1, 1, 0));
        assert_eq!(fd.first_action_median_min, None);
    }

    #[test]
    fn versions_after_now_are_not_known_yet() {
        let s = queue_stats(
            &sample(),
            t("2026-12-01T00:00:00Z"),
            t("2026-12-02T00:00:00Z"),
            t("2026-12-01T09:20:00Z"),
        );
        let nurse = s.queues.iter().find(|q| q.queue == "nurse").expect("nurse");
        assert_eq!(nurse.open, 3);
        assert_eq!(nurse.first_action_median_min, Some(10.0));
        assert_eq!(nurse.breaches, 0);
        assert_eq!(s.reached_physician, 0);
    }

    #[test]
    fn parameters_round_trip() {
        let s = queue_stats(
            &sample(),
            t("2026-12-01T00:00:00Z"),
            t("2026-12-02T00:00:00Z"),
            t("2026-12-01T18:00:00Z"),
        );
        let p = s.to_parameters();
        assert_eq!(p["resourceType"], "Parameters");
        let text = serde_json::to_string(&p).expect("json");
        let back: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(QueueStats::from_parameters(&back), Ok(s));
        let odd = QueueStats {
            queues: vec![QueueFigures {
                queue: "review".into(),
                first_action_median_min: Some(1.0 / 3.0),
                ..QueueFigures::default()
            }],
            ..QueueStats::default()
        };
        assert_eq!(QueueStats::from_parameters(&odd.to_parameters()), Ok(odd));
        assert!(QueueStats::from_parameters(&json!({"resourceType": "Patient"})).is_err());
        assert!(
            QueueStats::from_parameters(
                &json!({"resourceType": "Parameters", "parameter": [{"name": "messages"}]})
            )
            .is_err()
        );
    }
}
