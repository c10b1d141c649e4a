//! Patient messages (`Communication`) and the queue items they became
//! (`Task`): what each role's queue holds when the demo clinic opens.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::catalog::Problem;
use super::json::{concept, instant, reference, reference_named};
use super::patient::Chart;
use super::rng::Rng;
use super::staff::{organization_ref, practitioner_ref, role_concept};
use crate::fhir::codes;
use crate::roles::Role;

/// Text no terminal should ever receive raw: a screen clear with colours, a
/// right-to-left override that disguises a phone number, a zero-width space
/// inside a drug name. The demo carries them so the client's sanitiser is
/// exercised by ordinary use.
pub(crate) const HOSTILE: [&str; 3] = [
    "\u{1b}[2J\u{1b}[31mPLEASE READ\u{1b}[0m ",
    "Call me back at \u{202e}0123-555-716\u{202c} please. ",
    "It is the met\u{200b}formin one, not the other\u{200d}. ",
];

/// Patients whose open message carries one of [`HOSTILE`].
pub(crate) fn carries_hostile_text(index: usize) -> bool {
    index % 50 == 7
}

fn category_label(category: &str) -> &'static str {
    match category {
        "refill" => "Refill request",
        "results" => "Results question",
        "scheduling" => "Scheduling",
        "billing" => "Billing",
        "clinical" => "Clinical symptoms",
        _ => "Urgent",
    }
}

/// Hours from the message to the due time, by category and priority.
pub fn sla_hours(category: &str, priority: &str) -> i64 {
    let base = match category {
        "urgent" => 2,
        "clinical" => 24,
        "refill" | "scheduling" => 48,
        "results" => 72,
        "billing" => 120,
        _ => 72,
    };
    match priority {
        "stat" => 1,
        "asap" => (base / 4).max(1),
        "urgent" => (base / 2).max(1),
        _ => base,
    }
}

struct Message {
    category: &'static str,
    priority: &'static str,
    role: Role,
    text: String,
    summary: String,
}

pub(crate) fn write(chart: &Chart, rng: &mut Rng, out: &mut Vec<Value>) {
    let mut n = 0;
    let mut tasks = Vec::new();

    // Past threads: a question and the clinic's answer, both closed.
    if rng.chance(0.15) && !chart.visits.is_empty() {
        let visit = &chart.visits[rng.below(chart.visits.len())];
        let asked = visit.end + Duration::days(rng.range(1, 6));
        if asked < chart.anchor - Duration::days(1) {
            n += 1;
            let question_id = format!("{}-msg-{n}", chart.id);
            let question = "Thank you for seeing me. Should I keep taking everything the same until the next visit?";
            out.push(communication(
                chart,
                &question_id,
                "completed",
                "clinical",
                "routine",
                asked,
                question,
                None,
            ));
            n += 1;
            let answer_id = format!("{}-msg-{n}", chart.id);
            let mut answer = communication(
                chart,
                &answer_id,
                "completed",
                "clinical",
                "routine",
                asked + Duration::hours(rng.range(2, 30)),
                "Yes, no changes for now. Keep your next appointment and message us if anything changes.",
                Some(&question_id),
            );
            answer["sender"] = practitioner_ref(visit.clinician);
            answer["recipient"] =
                json!([reference_named("Patient", &chart.id, &chart.name.text())]);
            out.push(answer);
        }
    }

    let hostile = carries_hostile_text(chart.index);
    if !(hostile || rng.chance(0.25)) {
        return;
    }
    let count = if rng.chance(0.25) { 2 } else { 1 };
    for k in 0..count {
        let mut message = compose(chart, rng);
        if hostile && k == 0 {
            let variant = (chart.index / 50) % HOSTILE.len();
            message.text = format!("{}{}", HOSTILE[variant], message.text);
        }
        // About a quarter of the queue is past due when the clinic opens.
        let sla = sla_hours(message.category, message.priority) * 60;
        let minutes_ago = if rng.chance(0.25) {
            sla + rng.range(10, sla.max(60))
        } else {
            rng.range(5, (sla - 5).max(6))
        };
        let sent = chart.anchor - Duration::minutes(minutes_ago);
        n += 1;
        let message_id = format!("{}-msg-{n}", chart.id);
        out.push(communication(
            chart,
            &message_id,
            "in-progress",
            message.category,
            message.priority,
            sent,
            &message.text,
            None,
        ));
        tasks.push(task(
            chart,
            rng,
            &message,
            &message_id,
            sent,
            tasks.len() + 1,
        ));
    }
    out.extend(tasks);
}

#[allow(clippy::too_many_arguments)]
fn communication(
    chart: &Chart,
    id: &str,
    status: &str,
    category: &str,
    priority: &str,
    sent: DateTime<Utc>,
    text: &str,
    in_response_to: Option<&str>,
) -> Value {
    let mut resource = json!({
        "resourceType": "Communication",
        "id": id,
        "status": status,
        "category": [concept(codes::TASK_CATEGORY_SYSTEM, category, category_label(category))],
        "priority": priority,
        "subject": reference_named("Patient", &chart.id, &chart.name.text()),
        "sender": reference_named("Patient", &chart.id, &chart.name.text()),
        "recipient": [organization_ref()],
        "sent": instant(sent),
        "payload": [{ "contentString": text }],
    });
    if status == "completed" {
        resource["received"] = json!(instant(sent + Duration::minutes(1)));
    }
    if let Some(parent) = in_response_to {
        resource["inResponseTo"] = json!([reference("Communication", parent)]);
    }
    resource
}

fn task(
    chart: &Chart,
    rng: &mut Rng,
    message: &Message,
    message_id: &str,
    sent: DateTime<Utc>,
    n: usize,
) -> Value {
    let due = sent + Duration::hours(sla_hours(message.category, message.priority));
    let status = match rng.below(100) {
        0..=54 => "requested",
        55..=79 => "received",
        _ => "in-progress",
    };
    let touched = if status == "requested" {
        sent
    } else {
        sent + (chart.anchor - sent) / 2
    };
    let mut resource = json!({
        "resourceType": "Task",
        "id": format!("{}-task-{n}", chart.id),
        "status": status,
        "intent": "order",
        "priority": message.priority,
        "code": concept(codes::TASK_CATEGORY_SYSTEM, message.category, category_label(message.category)),
        "description": message.summary,
        "for": reference_named("Patient", &chart.id, &chart.name.text()),
        "focus": reference("Communication", message_id),
        "requester": reference_named("Patient", &chart.id, &chart.name.text()),
        "authoredOn": instant(sent),
        "lastModified": instant(touched),
        "performerType": [role_concept(message.role)],
        "restriction": { "period": { "end": instant(due) } },
    });
    if status == "in-progress" {
        resource["owner"] = practitioner_ref(message.role);
    }
    resource
}

fn compose(chart: &Chart, rng: &mut Rng) -> Message {
    let chronic_drugs: Vec<_> = chart
        .active_prescriptions()
        .filter(|p| p.visit.is_none())
        .collect();
    let flagged = chart
        .visits
        .iter()
        .rev()
        .flat_map(|v| v.labs.iter().map(move |r| (v, r)))
        .find(|(_, r)| !r.flag.is_empty() && r.flag != "N")
        .or_else(|| {
            chart
                .visits
                .iter()
                .rev()
                .find_map(|v| v.labs.first().map(|r| (v, r)))
        });
    let roll = rng.below(100);
    let category = match roll {
        0..=24 if !chronic_drugs.is_empty() => "refill",
        25..=39 if flagged.is_some() => "results",
        0..=44 => "scheduling",
        45..=59 => "billing",
        60..=89 => "clinical",
        _ => "urgent",
    };
    let child = chart.age < 16;
    let who = if child {
        if chart.female() {
            "my daughter"
        } else {
            "my son"
        }
    } else {
        "I"
    };
    let (category, priority, role, text, summary) = match (category, flagged) {
        ("refill", _) => {
            let p = chronic_drugs[rng.below(chronic_drugs.len())];
            let role = pick_role(
                rng,
                &[
                    (Role::Nurse, 50),
                    (Role::Attending, 30),
                    (Role::Resident, 20),
                ],
            );
            (
                "refill",
                if rng.chance(0.15) {
                    "urgent"
                } else {
                    "routine"
                },
                role,
                format!(
                    "Hi, I'm almost out of my {}. Could you send a refill to my pharmacy? I have {} left.",
                    p.drug.common,
                    rng.pick(&["2 days", "3 pills", "a week", "nothing"])
                ),
                format!("Refill request: {}", p.drug.sig),
            )
        }
        ("results", Some((visit, result))) => {
            let role = pick_role(rng, &[(Role::Attending, 50), (Role::Resident, 50)]);
            let flag = if result.flag.is_empty() {
                ""
            } else {
                result.flag
            };
            (
                "results",
                if matches!(flag, "HH" | "LL") {
                    "urgent"
                } else {
                    "routine"
                },
                role,
                format!(
                    "I saw on the portal that my {} from {} was {}. Is that something to worry about?",
                    result.short,
                    visit.start.format("%B %-d"),
                    result.text
                ),
                format!(
                    "Question about {} {} ({}) from {}",
                    result.short,
                    result.text,
                    if flag.is_empty() { "no flag" } else { flag },
                    visit.start.format("%Y-%m-%d")
                ),
            )
        }
        ("scheduling" | "results", _) => {
            let (text, summary) = match rng.below(3) {
                0 => (
                    "Can I move my appointment to an afternoon? I can't get off work in the morning.".to_string(),
                    "Reschedule appointment to an afternoon".to_string(),
                ),
                1 => (
                    format!(
                        "I need to book {} {}.",
                        if child { "a check-up for" } else { "my" },
                        if child { who } else if chart.visits.len() > 3 { "3-month follow-up" } else { "annual physical" }
                    ),
                    "Book follow-up appointment".to_string(),
                ),
                _ => (
                    "Is there anything sooner than next month? My work schedule changed.".to_string(),
                    "Asks for an earlier appointment".to_string(),
                ),
            };
            ("scheduling", "routine", Role::Frontdesk, text, summary)
        }
        ("billing", _) => {
            let when = chart
                .visits
                .last()
                .map(|v| v.start.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "last month".to_string());
            let amount = rng.range(35, 480);
            (
                "billing",
                "routine",
                Role::Billing,
                format!(
                    "I got a bill for ${amount} for the visit on {when}. I thought my insurance covered it. Can someone check?"
                ),
                format!("Billing question: visit on {when}, ${amount}"),
            )
        }
        ("clinical", _) => {
            let (text, summary) = symptom(chart, rng, who);
            let role = pick_role(rng, &[(Role::Nurse, 70), (Role::Resident, 30)]);
            (
                "clinical",
                if rng.chance(0.4) { "urgent" } else { "routine" },
                role,
                text,
                summary,
            )
        }
        _ => {
            let (text, summary) = if chart.has(Problem::AtrialFibrillation) {
                (
                    "My nose has been bleeding for 40 minutes and won't stop. I'm on warfarin."
                        .to_string(),
                    "Persistent nosebleed on warfarin".to_string(),
                )
            } else if chart.has(Problem::Diabetes) {
                (
                    "My meter just says HI and I feel very thirsty and dizzy.".to_string(),
                    "Glucose meter reads HI, thirsty and dizzy".to_string(),
                )
            } else if child {
                (
                    format!(
                        "{} has a fever of 40.1 and is very sleepy, hard to wake up.",
                        capitalise(who)
                    ),
                    "Child with high fever and lethargy".to_string(),
                )
            } else {
                (
                    "I've had chest tightness since this morning and feel short of breath."
                        .to_string(),
                    "Chest tightness and shortness of breath".to_string(),
                )
            };
            let role = pick_role(rng, &[(Role::Attending, 60), (Role::Nurse, 40)]);
            (
                "urgent",
                if rng.chance(0.5) { "stat" } else { "asap" },
                role,
                text,
                format!("URGENT: {summary}"),
            )
        }
    };
    Message {
        category,
        priority,
        role,
        text,
        summary,
    }
}

fn symptom(chart: &Chart, rng: &mut Rng, who: &str) -> (String, String) {
    if who != "I" {
        return (
            format!(
                "{} has had a fever of 38.{} since yesterday and isn't eating much.",
                capitalise(who),
                rng.range(2, 9)
            ),
            "Child with fever, eating less".to_string(),
        );
    }
    let mut options: Vec<(String, String)> = vec![(
        format!(
            "I've had a cough and a low fever for {} days.",
            rng.range(2, 6)
        ),
        "Cough and low fever".to_string(),
    )];
    if chart.has(Problem::Diabetes) {
        options.push((
            "My morning sugars have been 250 to 300 all week.".to_string(),
            "Fasting glucose 250-300 for a week".to_string(),
        ));
    }
    if chart.has(Problem::Hypertension) {
        options.push((
            "I've been getting headaches and my home blood pressure was 168/96 today.".to_string(),
            "Headaches, home BP 168/96".to_string(),
        ));
    }
    if chart.has(Problem::AtrialFibrillation) {
        options.push((
            "I've noticed some bruising on my arms since my last INR check.".to_string(),
            "New bruising on warfarin".to_string(),
        ));
    }
    if chart.female() && chart.age >= 16 {
        options.push((
            "It burns again when I pee, like last time.".to_string(),
            "Dysuria, possible recurrent UTI".to_string(),
        ));
    }
    let k = rng.below(options.len());
    options.swap_remove(k)
}

fn pick_role(rng: &mut Rng, weights: &[(Role, usize)]) -> Role {
    let total: usize = weights.iter().map(|(_, w)| w).sum();
    let mut roll = rng.below(total);
    for (role, weight) in weights {
        if roll < *weight {
            return *role;
        }
        roll -= weight;
    }
    weights[0].0
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
