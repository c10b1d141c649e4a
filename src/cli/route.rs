//! `chartty route` and `chartty stats`: the triage layer beside any FHIR
//! R4 server. The router polls for new patient messages and creates their
//! queue items with conditional creates keyed on the message, so two
//! routers (or one restarted mid-poll) never route a message twice.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use serde_json::Value;

use crate::api::ApiClient;
use crate::api::router::Created;
use crate::config::Settings;
use crate::triage::stats::{QueueStats, minutes_text};
use crate::triage::{self, RuleSet};

/// A client for `settings`: its token, else the kept sign-in.
pub async fn client(settings: &Settings) -> anyhow::Result<ApiClient> {
    let base = settings.server.clone().context(
        "no server configured: pass --server URL, set CHARTTY_SERVER or put `server = \"...\"` in the config file",
    )?;
    let http = crate::api::http::HttpOptions::new(Duration::from_secs(
        settings.request_timeout_secs.max(1),
    ))
    .with_ca_file(settings.ca_file.clone());
    let client = ApiClient::with_options(&base, settings.token.clone(), &http)?;
    if settings.token.is_some() {
        return Ok(client);
    }
    let (bearer, _) = super::login::start(settings).await?;
    Ok(client.with_bearer(bearer))
}

/// What one poll did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Poll {
    /// Open messages read.
    pub seen: usize,
    /// Of those, patients' own messages.
    pub from_patients: usize,
    /// Queue items made by this router now.
    pub routed: usize,
    /// Messages another router (or an earlier try) had routed.
    pub already: usize,
    pub replies: usize,
    /// Messages that could not be routed this time (said, retried next poll).
    pub failed: Vec<String>,
}

/// One poll: route every patient message updated at or after `since`.
/// Returns what it did and the newest `meta.lastUpdated` it read.
pub async fn poll(
    client: &ApiClient,
    rules: &RuleSet,
    since: Option<&str>,
) -> anyhow::Result<(Poll, Option<String>)> {
    let messages = client
        .open_messages_since(since)
        .await
        .map_err(|e| anyhow!("reading new messages: {}", e.message))?;
    let mut report = Poll {
        seen: messages.len(),
        ..Poll::default()
    };
    let mut newest = since.map(str::to_string);
    let mut held_back = false;
    for m in &messages {
        let updated = m
            .pointer("/meta/lastUpdated")
            .and_then(Value::as_str)
            .map(str::to_string);
        if !triage::from_patient(m) {
            if !held_back {
                newest = updated.or(newest);
            }
            continue;
        }
        report.from_patients += 1;
        match route_one(client, rules, m).await {
            Ok((made, replied)) => {
                match made {
                    Created::Now => report.routed += 1,
                    Created::Already => report.already += 1,
                }
                report.replies += usize::from(replied);
                if !held_back {
                    newest = updated.or(newest);
                }
            }
            Err(e) => {
                // The time seen stops here, so the next poll reads this
                // message again.
                held_back = true;
                let id = m.get("id").and_then(Value::as_str).unwrap_or("?");
                report.failed.push(format!("Communication/{id}: {e:#}"));
            }
        }
    }
    Ok((report, newest))
}

async fn route_one(
    client: &ApiClient,
    rules: &RuleSet,
    message: &Value,
) -> anyhow::Result<(Created, bool)> {
    let id = message
        .get("id")
        .and_then(Value::as_str)
        .context("a message without an id")?;
    let patient = message
        .pointer("/subject/reference")
        .and_then(Value::as_str)
        .unwrap_or("");
    let facts = client
        .patient_facts(patient)
        .await
        .map_err(|e| anyhow!("reading the patient: {}", e.message))?;
    let now = chrono::Utc::now();
    let decision = triage::route(rules, &triage::read_message(message), &facts, now);
    // The server names who writes (requester, sender) from the router's
    // sign-in; a server that checks them would refuse ours.
    let mut task = triage::task_for(message, &decision, now);
    strip(&mut task, "requester");
    let made = client
        .create_unless_exists(
            &task,
            &format!(
                "identifier={}|Communication/{id}",
                triage::ROUTED_FROM_SYSTEM
            ),
        )
        .await
        .map_err(|e| anyhow!("creating the queue item: {}", e.message))?;
    let mut replied = false;
    if let Some(mut reply) = triage::reply_for(message, &decision, now) {
        strip(&mut reply, "sender");
        let condition = format!(
            "identifier={}|reply-to/Communication/{id}",
            triage::AUTO_REPLY_SYSTEM
        );
        replied = client
            .create_unless_exists(&reply, &condition)
            .await
            .map_err(|e| anyhow!("sending the automatic reply: {}", e.message))?
            == Created::Now;
    }
    Ok((made, replied))
}

fn strip(resource: &mut Value, field: &str) {
    if let Some(o) = resource.as_object_mut() {
        o.remove(field);
    }
}

/// `chartty route`: poll every `interval` (or once), printing one line per
/// poll that did something.
pub async fn run(
    settings: &Settings,
    rules: &RuleSet,
    interval: Duration,
    once: bool,
) -> anyhow::Result<()> {
    let client = client(settings).await?;
    let mut since: Option<String> = None;
    let mut out = std::io::stdout();
    loop {
        match poll(&client, rules, since.as_deref()).await {
            Ok((report, newest)) => {
                if report.routed + report.already + report.failed.len() > 0 || once {
                    writeln!(
                        out,
                        "routed {} new, {} already routed, {} automatic replies, {} failed ({} messages read)",
                        report.routed,
                        report.already,
                        report.replies,
                        report.failed.len(),
                        report.seen
                    )?;
                    for f in &report.failed {
                        writeln!(out, "  not routed: {f}")?;
                    }
                    out.flush()?;
                }
                since = newest;
                if once {
                    return if report.failed.is_empty() {
                        Ok(())
                    } else {
                        Err(anyhow!("{} messages were not routed", report.failed.len()))
                    };
                }
            }
            Err(e) if once => return Err(e),
            // A dropped link or a server restart: the next poll tries again.
            Err(e) => eprintln!(
                "chartty route: {e:#}; trying again in {}s",
                interval.as_secs()
            ),
        }
        tokio::time::sleep(interval).await;
    }
}

/// `chartty stats`: the queue figures as a table and a bar per queue.
pub async fn stats(settings: &Settings, period: Option<&str>) -> anyhow::Result<String> {
    let client = client(settings).await?;
    let figures = client
        .queue_stats(period)
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    Ok(stats_table(&figures))
}

/// A queue's name as the server gave it, safe for a terminal.
fn shown(queue: &str) -> String {
    crate::fhir::sanitize::sanitize(queue).into_owned()
}

/// The figures for a terminal: one row per queue, a bar of its volume.
pub fn stats_table(s: &QueueStats) -> String {
    let mut out = String::new();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or("?".into(), |t| t.format("%Y-%m-%d %H:%M").to_string())
    };
    out.push_str(&format!(
        "Queues from {} to {} (UTC)\n",
        when(s.start),
        when(s.end)
    ));
    let share = if s.messages > 0 {
        format!(
            "{:.0}%",
            100.0 * f64::from(s.reached_physician) / f64::from(s.messages)
        )
    } else {
        "–".into()
    };
    out.push_str(&format!(
        "{} patient messages; {} reached a physician ({share})\n\n",
        s.messages, s.reached_physician
    ));
    out.push_str(&format!(
        "{:<10} {:>6} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "Queue", "Volume", "Open", "1st med", "1st p90", "Res med", "Res p90", "Breaches"
    ));
    let widest = s.queues.iter().map(|q| q.volume).max().unwrap_or(0).max(1);
    for q in &s.queues {
        out.push_str(&format!(
            "{:<10} {:>6} {:>5} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            shown(&q.queue),
            q.volume,
            q.open,
            minutes_text(q.first_action_median_min),
            minutes_text(q.first_action_p90_min),
            minutes_text(q.resolution_median_min),
            minutes_text(q.resolution_p90_min),
            q.breaches
        ));
    }
    out.push('\n');
    for q in &s.queues {
        let len = (u64::from(q.volume) * 40).div_ceil(u64::from(widest)) as usize;
        out.push_str(&format!(
            "{:<10} {} {}\n",
            shown(&q.queue),
            "█".repeat(len),
            q.volume
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::stats::QueueFigures;

    #[test]
    fn the_figures_print_as_a_table_and_a_bar_per_queue() {
        let q = |queue: &str, volume, breaches| QueueFigures {
            queue: queue.into(),
            volume,
            open: 1,
            first_action_median_min: Some(42.0),
            first_action_p90_min: Some(180.0),
            resolution_median_min: None,
            resolution_p90_min: Some(3000.0),
            breaches,
        };
        let s = QueueStats {
            start: crate::fhir::time::instant("2026-11-21T00:00:00Z"),
            end: crate::fhir::time::instant("2026-11-28T00:00:00Z"),
            messages: 40,
            reached_physician: 6,
            queues: vec![
                q("nurse", 30, 2),
                q("frontdesk", 10, 0),
                q("\u{1b}]52;x", 1, 0),
            ],
        };
        let text = stats_table(&s);
        assert!(text.starts_with("Queues from 2026-11-21 00:00 to 2026-11-28 00:00 (UTC)\n"));
        assert!(
            text.contains("40 patient messages; 6 reached a physician (15%)"),
            "{text}"
        );
        let nurse: Vec<&str> = text
            .lines()
            .find(|l| l.starts_with("nurse") && !l.contains('█'))
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            nurse,
            [
                "nurse", "30", "1", "42", "m", "3.0", "h", "–", "2.1", "d", "2"
            ]
        );
        let bar = |q: &str| {
            text.lines()
                .find(|l| l.starts_with(q) && l.contains('█'))
                .map_or(0, |l| l.matches('█').count())
        };
        assert_eq!((bar("nurse"), bar("frontdesk")), (40, 14));
        // A queue name from the server is shown, never obeyed.
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
