//! Queue metrics over a period, from tasks and their versions: volume per
//! queue, median and p90 minutes to first action and to resolution, SLA
//! breaches, and the share of messages that reached a physician. Carried
//! as a FHIR `Parameters` resource (`Task/$queue-stats`).

use chrono::{DateTime, Utc};
use serde_json::Value;

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

/// Figures from every version of every task created in `[start, end)`
/// (JSON `Task`s, any order; versions of one task share its id and differ
/// in `meta.versionId`), as of `now`.
pub fn queue_stats(
    versions: &[Value],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QueueStats {
    let _ = (versions, start, end, now);
    todo!("triage::stats::queue_stats")
}

impl QueueStats {
    /// As a FHIR `Parameters` resource (documented in docs/triage.md).
    pub fn to_parameters(&self) -> Value {
        todo!("triage::stats::QueueStats::to_parameters")
    }

    /// Read what [`Self::to_parameters`] wrote; unknown parts are ignored.
    pub fn from_parameters(parameters: &Value) -> Result<QueueStats, String> {
        let _ = parameters;
        todo!("triage::stats::QueueStats::from_parameters")
    }
}
