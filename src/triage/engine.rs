//! The routing decision, and the resources it becomes.

use chrono::{DateTime, Datelike, Duration, NaiveDate, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::intake::{Facts, Intake, Message};
use super::rules::{Condition, RuleSet, Sla, is_known_queue, priority_rank};
use super::{AUTO_REPLY_SYSTEM, RED_FLAGS, REVIEW_QUEUE, ROUTED_FROM_SYSTEM};
use crate::fhir::codes::{ROLE_SYSTEM, TASK_CATEGORY_SYSTEM};
use crate::fhir::fold::fold;
use crate::fhir::sanitize::{sanitize, sanitize_json};

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Queue code (`Task.performerType`, system `fhir::codes::ROLE_SYSTEM`).
    pub queue: String,
    /// FHIR request priority: routine, urgent, asap, stat.
    pub priority: String,
    pub due: DateTime<Utc>,
    /// Category for `Task.code` (a `TASK_CATEGORIES` code, or `review`).
    pub category: String,
    /// The rule that decided, by name.
    pub rule: String,
    /// Why, for a human: "severity 9 ≥ 8", "red flag: chest pain", "after hours".
    pub reasons: Vec<String>,
    /// One line for the queue row ("Chest pain since 2 h, severity 9/10").
    pub summary: String,
    /// The automatic reply to the patient, expanded, if the rule has one.
    pub reply: Option<String>,
    pub after_hours: bool,
}

/// Author of the notes the router writes; work by anyone else is a human's.
pub const TRIAGE_AUTHOR: &str = "chartty triage";

/// Longest queue-row summary, in characters.
const SUMMARY_CHARS: usize = 120;

/// Route one message at `now`. The SLA clock starts at `now`, when the
/// clinic learns of the message, so a due time is never in the past.
pub fn route(rules: &RuleSet, intake: &Intake, facts: &Facts, now: DateTime<Utc>) -> Decision {
    let after_hours = !rules.calendar.is_open(now);
    match intake {
        Intake::Malformed {
            reason,
            patient,
            text,
            claimed,
            ..
        } => {
            // What can be read may still say it cannot wait: the urgent
            // rules that need no answers (words, the patient's own
            // "urgent", anticoagulation, an infant's fever) are tried on it.
            let readable = Message {
                category: claimed.clone().unwrap_or_default(),
                text: text.clone(),
                patient: patient.clone().unwrap_or_default(),
                ..Message::default()
            };
            let hay = haystack(&readable);
            let urgent = rules
                .rules
                .iter()
                .filter(|r| priority_rank(&r.priority) > priority_rank("routine"))
                .find_map(|r| {
                    matches(rules, &r.when, &readable, &hay, facts, now).map(|why| (r, why))
                });
            if let Some((rule, why)) = urgent {
                let queue = match (&rule.after_hours_queue, after_hours) {
                    (Some(q), true) => q.clone(),
                    _ => REVIEW_QUEUE.to_string(),
                };
                let due = due(rules, &rule.sla, now);
                let mut reasons = vec![format!(
                    "does not fit the intake format: {}",
                    one_line(reason)
                )];
                reasons.extend(why);
                reasons.push(format!("urgent by rule {}", rule.name));
                if after_hours && queue != REVIEW_QUEUE {
                    reasons.push(format!("after hours: {}", queue_label(&queue)));
                }
                return Decision {
                    queue,
                    priority: rule.priority.clone(),
                    due,
                    category: REVIEW_QUEUE.to_string(),
                    rule: format!("malformed, {}", rule.name),
                    reasons,
                    summary: shorten(&format!(
                        "Unreadable, urgent ({}): {}",
                        rule.name,
                        one_line(reason)
                    )),
                    reply: rule
                        .reply
                        .as_ref()
                        .filter(|_| patient.is_some())
                        .map(|r| expand(rules, r, due)),
                    after_hours,
                };
            }
            let m = &rules.malformed;
            let due = due(rules, &m.sla, now);
            Decision {
                queue: REVIEW_QUEUE.to_string(),
                priority: m.priority.clone(),
                due,
                category: REVIEW_QUEUE.to_string(),
                rule: "malformed".to_string(),
                reasons: vec![format!(
                    "does not fit the intake format: {}",
                    one_line(reason)
                )],
                summary: shorten(&format!("Unreadable message: {}", one_line(reason))),
                // Nobody to answer when the message names no patient.
                reply: m
                    .reply
                    .as_ref()
                    .filter(|_| patient.is_some())
                    .map(|r| expand(rules, r, due)),
                after_hours,
            }
        }
        Intake::Message(msg) => {
            let haystack = haystack(msg);
            let found = rules.rules.iter().find_map(|r| {
                matches(rules, &r.when, msg, &haystack, facts, now).map(|why| (r, why))
            });
            let Some((rule, mut reasons)) = found else {
                let due = due(rules, &rules.malformed.sla, now);
                return Decision {
                    queue: REVIEW_QUEUE.to_string(),
                    priority: rules.malformed.priority.clone(),
                    due,
                    category: category_or_review(&msg.category),
                    rule: "no rule".to_string(),
                    reasons: vec!["no rule matched".to_string()],
                    summary: summary(msg),
                    reply: rules
                        .malformed
                        .reply
                        .as_ref()
                        .map(|r| expand(rules, r, due)),
                    after_hours,
                };
            };
            let mut queue = rule.queue.clone();
            if after_hours {
                if let Some(q) = &rule.after_hours_queue {
                    queue = q.clone();
                    reasons.push(format!("after hours: {}", queue_label(q)));
                } else {
                    reasons.push("after hours: waits for opening".to_string());
                }
            }
            let due = due(rules, &rule.sla, now);
            Decision {
                queue,
                priority: rule.priority.clone(),
                due,
                category: rule
                    .category
                    .clone()
                    .unwrap_or_else(|| category_or_review(&msg.category)),
                rule: rule.name.clone(),
                reasons,
                summary: summary(msg),
                reply: rule.reply.as_ref().map(|r| expand(rules, r, due)),
                after_hours,
            }
        }
    }
}

fn category_or_review(c: &str) -> String {
    if crate::fhir::codes::TASK_CATEGORIES.contains(&c) {
        c.to_string()
    } else {
        REVIEW_QUEUE.to_string()
    }
}

fn queue_label(q: &str) -> &str {
    match q {
        "oncall" => "on-call",
        other => other,
    }
}

/// Due time for the SLA named `sla`, never before `now`.
fn due(rules: &RuleSet, sla: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    let cal = &rules.calendar;
    let due = match rules.sla(sla) {
        Sla::Minutes(m) => now + Duration::minutes(m),
        Sla::BusinessMinutes(m) => cal.add_business_minutes(now, m),
        Sla::BusinessDays(d) => cal.add_business_days(now, d),
    };
    due.max(now)
}

fn expand(rules: &RuleSet, template: &str, due: DateTime<Utc>) -> String {
    let text = rules.replies.get(template).map_or("", String::as_str);
    text.replace("{clinic}", &rules.clinic)
        .replace("{emergency}", &rules.emergency)
        .replace("{due}", &rules.calendar.format_due(due))
}

/// What keywords are looked for in: the text and every answer, folded.
/// Markers the sanitiser left (`⟨U+200B⟩`) are taken out first, so an
/// invisible character inside a word does not hide the word.
fn haystack(m: &Message) -> String {
    let parts = [
        Some(m.text.as_str()),
        m.symptom.as_deref(),
        m.since.as_deref(),
        m.medication.as_deref(),
    ];
    let joined: Vec<&str> = parts.into_iter().flatten().collect();
    fold(&strip_markers(&joined.join("\n")))
}

fn strip_markers(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("⟨U+") {
        out.push_str(&rest[..i]);
        let after = &rest[i + "⟨U+".len()..];
        match after.find('⟩') {
            Some(j) if j <= 6 && after[..j].chars().all(|c| c.is_ascii_hexdigit()) => {
                rest = &after[j + '⟩'.len_utf8()..];
            }
            _ => {
                out.push_str("⟨U+");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    // Control pictures (␛) stand for controls: a space keeps words apart.
    out.chars()
        .map(|c| {
            if ('\u{2400}'..='\u{2421}').contains(&c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn age_years(birth: NaiveDate, on: NaiveDate) -> i64 {
    let mut years = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

fn flag_label(id: &str) -> &str {
    RED_FLAGS
        .iter()
        .find(|(k, _)| *k == id)
        .map_or(id, |(_, l)| l)
}

/// The reasons the condition holds, or `None` when it does not.
fn matches(
    rules: &RuleSet,
    c: &Condition,
    m: &Message,
    haystack: &str,
    facts: &Facts,
    now: DateTime<Utc>,
) -> Option<Vec<String>> {
    let mut why = Vec::new();
    if !c.category.is_empty() {
        if !c.category.contains(&m.category) {
            return None;
        }
        why.push(format!("category {}", m.category));
    }
    if let Some(min) = c.severity_at_least {
        let s = m.severity.filter(|s| *s >= min)?;
        why.push(format!("severity {s} ≥ {min}"));
    }
    match c.red_flag {
        Some(true) => {
            if m.red_flags.is_empty() {
                return None;
            }
            why.extend(
                m.red_flags
                    .iter()
                    .map(|f| format!("red flag: {}", flag_label(f))),
            );
        }
        Some(false) if !m.red_flags.is_empty() => return None,
        _ => {}
    }
    if !c.red_flags.is_empty() {
        let hits: Vec<&String> = c
            .red_flags
            .iter()
            .filter(|f| m.red_flags.contains(f))
            .collect();
        if hits.is_empty() {
            return None;
        }
        for f in hits {
            let r = format!("red flag: {}", flag_label(f));
            if !why.contains(&r) {
                why.push(r);
            }
        }
    }
    if !c.keywords.is_empty() {
        let hits: Vec<&String> = c
            .keywords
            .iter()
            .filter(|k| haystack.contains(k.as_str()))
            .collect();
        if hits.is_empty() {
            return None;
        }
        why.push(format!(
            "mentions {}",
            hits.iter()
                .map(|h| format!("\"{h}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if c.age_under.is_some() || c.age_at_least.is_some() {
        let age = age_years(facts.birth_date?, rules.calendar.local_date(now));
        if let Some(n) = c.age_under {
            if age >= i64::from(n) {
                return None;
            }
            why.push(format!("age {age} < {n}"));
        }
        if let Some(n) = c.age_at_least {
            if age < i64::from(n) {
                return None;
            }
            why.push(format!("age {age} ≥ {n}"));
        }
    }
    let list = |words: &[String], items: &[String], what: &str, why: &mut Vec<String>| -> bool {
        let hit = items.iter().find(|i| {
            let f = fold(i);
            words.iter().any(|w| f.contains(w.as_str()))
        });
        match hit {
            Some(i) => {
                why.push(format!("{what}: {}", one_line(&sanitize(i))));
                true
            }
            None => false,
        }
    };
    if !c.problems.is_empty() && !list(&c.problems, &facts.problems, "problem", &mut why) {
        return None;
    }
    if !c.medications.is_empty()
        && !list(&c.medications, &facts.medications, "medication", &mut why)
    {
        return None;
    }
    if !c.patient_has.is_empty()
        && !list(&c.patient_has, &facts.medications, "medication", &mut why)
        && !list(&c.patient_has, &facts.problems, "problem", &mut why)
    {
        return None;
    }
    if let Some(open) = c.clinic_open {
        if rules.calendar.is_open(now) != open {
            return None;
        }
        why.push(if open { "clinic open" } else { "clinic closed" }.to_string());
    }
    if let Some((from, to)) = c.time {
        let t = rules.calendar.local_time(now);
        let inside = if from < to {
            from <= t && t < to
        } else {
            t >= from || t < to
        };
        if !inside {
            return None;
        }
        why.push(format!(
            "between {} and {}",
            from.format("%H:%M"),
            to.format("%H:%M")
        ));
    }
    Some(why)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= SUMMARY_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(SUMMARY_CHARS - 1).collect();
    out = out.trim_end().to_string();
    out.push('…');
    out
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One line for the queue row: the symptom, the medication, or the start
/// of the text; red flags named at the end where they cannot be missed.
fn summary(m: &Message) -> String {
    let clean = |s: &str| one_line(&sanitize(s));
    let mut line = if let Some(what) = m.symptom.as_deref().filter(|s| !s.trim().is_empty()) {
        let mut l = capitalised(&clean(what));
        if let Some(since) = m.since.as_deref().filter(|s| !s.trim().is_empty()) {
            l.push_str(&format!(" since {}", clean(since)));
        }
        if let Some(sev) = m.severity {
            l.push_str(&format!(", severity {sev}/10"));
        }
        l
    } else if let Some(med) = &m.medication {
        format!("Refill: {}", clean(med))
    } else if !m.text.trim().is_empty() {
        capitalised(&clean(&m.text))
    } else if let Some(sev) = m.severity {
        format!("Symptoms, severity {sev}/10")
    } else {
        "Message".to_string()
    };
    if !m.red_flags.is_empty() {
        let labels: Vec<&str> = m.red_flags.iter().map(|f| flag_label(f)).collect();
        let tail = format!(" [red flag: {}]", labels.join(", "));
        let room = SUMMARY_CHARS.saturating_sub(tail.chars().count());
        if line.chars().count() > room {
            line = shorten_to(&line, room);
        }
        line.push_str(&tail);
        return line;
    }
    shorten(&line)
}

fn shorten_to(s: &str, n: usize) -> String {
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn category_label(c: &str) -> &'static str {
    match c {
        "refill" => "Refill request",
        "results" => "Results question",
        "scheduling" => "Scheduling",
        "billing" => "Billing",
        "clinical" => "Clinical symptoms",
        "urgent" => "Urgent",
        _ => "Needs review",
    }
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}], "text": display})
}

/// A reference copied from the message, its strings sanitised.
fn copied(v: Option<&Value>) -> Option<Value> {
    let mut v = v.filter(|v| v.is_object())?.clone();
    sanitize_json(&mut v);
    Some(v)
}

fn message_ref(communication: &Value) -> Option<String> {
    communication
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.trim().is_empty())
        .map(|id| format!("Communication/{}", sanitize(id)))
}

/// The `Task` a decision becomes for `communication` (JSON), authored at
/// `now`; it carries `identifier = ROUTED_FROM_SYSTEM|Communication/<id>`.
pub fn task_for(communication: &Value, decision: &Decision, now: DateTime<Utc>) -> Value {
    let at = time_text(now);
    let queue = if is_known_queue(&decision.queue) {
        decision.queue.as_str()
    } else {
        REVIEW_QUEUE
    };
    let mut task = json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": decision.priority,
        "code": concept(TASK_CATEGORY_SYSTEM, &decision.category, category_label(&decision.category)),
        "description": one_line(&sanitize(&decision.summary)),
        "authoredOn": at,
        "lastModified": at,
        "performerType": [{"coding": [{"system": ROLE_SYSTEM, "code": queue}]}],
        "restriction": {"period": {"end": time_text(decision.due)}},
        "note": [{
            "authorString": TRIAGE_AUTHOR,
            "time": at,
            "text": sanitize(&format!("Routed by rule {}: {}", decision.rule, decision.reasons.join("; "))),
        }],
    });
    let subject = copied(communication.get("subject"));
    if let Some(s) = &subject {
        task["for"] = s.clone();
    }
    if let Some(r) = copied(communication.get("sender")).or(subject) {
        task["requester"] = r;
    }
    if let Some(m) = message_ref(communication) {
        task["focus"] = json!({"reference": m});
        task["identifier"] = json!([{"system": ROUTED_FROM_SYSTEM, "value": m}]);
    }
    task
}

/// The automatic reply (`Communication` from the clinic to the patient,
/// `inResponseTo` the message, `identifier = AUTO_REPLY_SYSTEM|…`), if any.
/// It comes from whom the patient wrote to (the clinic `Organization`
/// among the message's recipients).
pub fn reply_for(communication: &Value, decision: &Decision, now: DateTime<Utc>) -> Option<Value> {
    let text = decision.reply.as_deref()?;
    let subject = copied(communication.get("subject"))?;
    let message = message_ref(communication)?;
    let sender = communication
        .get("recipient")
        .and_then(Value::as_array)
        .and_then(|r| {
            r.iter().find(|x| {
                x.get("reference")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with("Organization/"))
                    || x.get("type").and_then(Value::as_str) == Some("Organization")
            })
        })
        .and_then(|v| copied(Some(v)))
        .unwrap_or_else(|| json!({"display": "The clinic"}));
    let category = if decision.category == REVIEW_QUEUE {
        communication
            .get("category")
            .cloned()
            .filter(Value::is_array)
            .map(|mut c| {
                sanitize_json(&mut c);
                c
            })
            .unwrap_or_else(|| json!([]))
    } else {
        json!([concept(
            TASK_CATEGORY_SYSTEM,
            &decision.category,
            category_label(&decision.category)
        )])
    };
    let mut reply = json!({
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": AUTO_REPLY_SYSTEM, "value": format!("reply-to/{message}")}],
        "subject": subject,
        "recipient": [subject],
        "sender": sender,
        "inResponseTo": [{"reference": message}],
        "sent": time_text(now),
        "payload": [{"contentString": sanitize(text)}],
    });
    if category.as_array().is_some_and(|a| !a.is_empty()) {
        reply["category"] = category;
    }
    Some(reply)
}
