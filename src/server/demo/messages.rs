//! Patient messages (`Communication`) and the queue items they became
//! (`Task`): what each role's queue holds when the demo clinic opens.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::catalog::Problem;
use super::json::{concept, instant, reference, reference_named};
use super::patient::Chart;
use super::rng::Rng;
use super::staff::{organization_ref, practitioner_ref};
use crate::fhir::codes;
use crate::roles::Role;
use crate::triage::{self, RED_FLAGS, RuleSet};

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

/// The clinic's rules, read once: the demo's queue is what the engine makes
/// of its messages, not a second idea of routing.
pub(crate) fn rules() -> &'static RuleSet {
    static RULES: std::sync::OnceLock<RuleSet> = std::sync::OnceLock::new();
    RULES.get_or_init(RuleSet::embedded)
}

/// A patient's message as the patient app sends it.
struct Message {
    category: &'static str,
    text: String,
    /// The structured answers (a `QuestionnaireResponse`), when the app
    /// asked its questions.
    answers: Option<Value>,
}

/// The symptom questionnaire, every red flag answered: yes for `flags`.
pub(crate) fn symptom_answers(what: &str, since: &str, severity: i64, flags: &[&str]) -> Value {
    let red: Vec<Value> = RED_FLAGS
        .iter()
        .map(|(id, text)| {
            json!({"linkId": id, "text": text, "answer": [{"valueBoolean": flags.contains(id)}]})
        })
        .collect();
    json!({
        "resourceType": "QuestionnaireResponse",
        "id": "answers",
        "status": "completed",
        "questionnaire": triage::SYMPTOM_QUESTIONNAIRE,
        "item": [
            {"linkId": "what", "text": "What is the problem?", "answer": [{"valueString": what}]},
            {"linkId": "since", "text": "Since when?", "answer": [{"valueString": since}]},
            {"linkId": "severity", "text": "How bad, 0 to 10?", "answer": [{"valueInteger": severity}]},
            {"linkId": "red-flags", "text": "Do you have any of these now?", "item": red}
        ]
    })
}

fn refill_answers(medication: &str, remaining: &str) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse",
        "id": "answers",
        "status": "completed",
        "questionnaire": triage::REFILL_QUESTIONNAIRE,
        "item": [
            {"linkId": "medication", "text": "Which medication?", "answer": [{"valueString": medication}]},
            {"linkId": "remaining", "text": "How much is left?", "answer": [{"valueString": remaining}]}
        ]
    })
}

/// What the engine may know: the demo chart as the portal would read it.
fn facts(chart: &Chart, at: DateTime<Utc>) -> triage::Facts {
    triage::Facts {
        birth_date: Some(chart.birth),
        problems: chart
            .problems_at(at)
            .iter()
            .flat_map(|c| {
                let (code, display) = c.problem.snomed();
                [display.to_string(), code.to_string()]
            })
            .collect(),
        medications: chart
            .active_prescriptions()
            .map(|p| p.drug.display.to_string())
            .collect(),
    }
}

/// Patients whose message arrives without the answers its category needs
/// (an older app): it must reach the review queue.
fn sends_unstructured(index: usize) -> bool {
    index % 40 == 13
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
    let mut replies = Vec::new();
    for k in 0..count {
        let mut message = compose(chart, rng);
        if hostile && k == 0 {
            let variant = (chart.index / 50) % HOSTILE.len();
            message.text = format!("{}{}", HOSTILE[variant], message.text);
        }
        if sends_unstructured(chart.index) && k == 0 {
            message.answers = None;
            if message.category == "refill" || message.category == "scheduling" {
                message.category = "clinical";
            }
        }
        // About a quarter of the queue is past due when the clinic opens.
        let hours = match message.category {
            "urgent" => 1,
            "clinical" | "results" => 24,
            "refill" => 48,
            _ => 72,
        };
        let minutes_ago = if rng.chance(0.25) {
            hours * 60 + rng.range(10, (hours * 60).max(60))
        } else {
            rng.range(5, (hours * 60 - 5).max(6))
        };
        let sent = chart.anchor - Duration::minutes(minutes_ago);
        n += 1;
        let message_id = format!("{}-msg-{n}", chart.id);
        let mut resource = communication(
            chart,
            &message_id,
            "in-progress",
            message.category,
            "routine",
            sent,
            &message.text,
            None,
        );
        if let Some(answers) = message.answers {
            resource["contained"] = json!([answers]);
            if let Some(p) = resource["payload"].as_array_mut() {
                p.insert(0, json!({"contentReference": {"reference": "#answers"}}));
            }
        }
        if let Some(o) = resource.as_object_mut() {
            // The patient says what the message is about; the rules say how urgent.
            o.remove("priority");
        }
        let decision = triage::route(
            rules(),
            &triage::read_message(&resource),
            &facts(chart, sent),
            sent,
        );
        let mut task = triage::task_for(&resource, &decision, sent);
        task["id"] = json!(format!("{}-task-{}", chart.id, tasks.len() + 1));
        let later = worked(&task, chart, rng, &decision.queue, sent);
        if let Some(mut reply) =
            triage::reply_for(&resource, &decision, sent + Duration::minutes(1))
        {
            reply["id"] = json!(format!("{}-reply-{n}", chart.id));
            replies.push(reply);
        }
        out.push(resource);
        tasks.push(task);
        tasks.extend(later);
    }
    out.extend(tasks);
    out.extend(replies);
}

/// Some of the queue is already being worked when the clinic opens: seen,
/// or taken by someone of the queue's role.
/// What became of a routed task by the time the clinic opens: nothing
/// yet, seen, taken by someone of the queue's role, or done. Each is a later
/// version of the task, dated when it happened and naming who did it, so
/// the task's history and the queue figures read as a working clinic's.
fn worked(
    task: &Value,
    chart: &Chart,
    rng: &mut Rng,
    queue: &str,
    sent: DateTime<Utc>,
) -> Option<Value> {
    // The shared queues (on-call, review) have no one person to name.
    let role = queue.parse::<Role>().ok().filter(|r| *r != Role::Intake);
    let waited = chart.anchor - sent;
    let (status, share) = match (rng.below(100), role) {
        (0..=44, _) => return None,
        (45..=64, _) | (_, None) => ("received", 0.3),
        (65..=84, Some(_)) => ("in-progress", 0.4),
        (_, Some(_)) if waited > Duration::hours(4) => ("completed", 0.7),
        _ => ("in-progress", 0.4),
    };
    let at = sent + Duration::seconds((waited.num_seconds() as f64 * share) as i64);
    let mut v = task.clone();
    v["status"] = json!(status);
    v["lastModified"] = json!(instant(at));
    let who = role.map(practitioner_ref);
    if status != "received"
        && let Some(w) = &who
    {
        v["owner"] = w.clone();
    }
    let text = match status {
        "received" => "Seen".to_string(),
        "in-progress" => "Claimed".to_string(),
        _ => {
            let done = match v["code"]["coding"][0]["code"].as_str().unwrap_or("") {
                "refill" => "Refill sent to the pharmacy",
                "scheduling" => "Appointment booked",
                "billing" => "Billing question answered",
                "results" => "Result explained to the patient",
                _ => "Advice given; patient to call if worse",
            };
            v["businessStatus"] = json!({"text": done});
            format!("Completed: {done}")
        }
    };
    let mut note = json!({"time": instant(at), "text": text});
    match &who {
        Some(w) => note["authorReference"] = w.clone(),
        None => note["authorString"] = json!("Triage nurse"),
    }
    if let Some(notes) = v["note"].as_array_mut() {
        notes.push(note);
    } else {
        v["note"] = json!([note]);
    }
    Some(v)
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
    match (category, flagged) {
        ("refill", _) => {
            let p = chronic_drugs[rng.below(chronic_drugs.len())];
            let left = rng.pick(&["2 days", "3 pills", "a week", "nothing"]);
            Message {
                category: "refill",
                text: format!(
                    "Hi, I'm almost out of my {}. Could you send a refill to my pharmacy? I have {left} left.",
                    p.drug.common
                ),
                answers: Some(refill_answers(p.drug.display, left)),
            }
        }
        ("results", Some((visit, result))) => Message {
            category: "results",
            text: format!(
                "I saw on the portal that my {} from {} was {}. Is that something to worry about?",
                result.short,
                visit.start.format("%B %-d"),
                result.text
            ),
            answers: None,
        },
        ("scheduling" | "results", _) => {
            let text = match rng.below(3) {
                0 => "Can I move my appointment to an afternoon? I can't get off work in the morning.".to_string(),
                1 => format!(
                    "I need to book {} {}.",
                    if child { "a check-up for" } else { "my" },
                    if child { who } else if chart.visits.len() > 3 { "3-month follow-up" } else { "annual physical" }
                ),
                _ => "Is there anything sooner than next month? My work schedule changed.".to_string(),
            };
            Message {
                category: "scheduling",
                text,
                answers: None,
            }
        }
        ("billing", _) => {
            let when = chart
                .visits
                .last()
                .map(|v| v.start.format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "last month".to_string());
            let amount = rng.range(35, 480);
            Message {
                category: "billing",
                text: format!(
                    "I got a bill for ${amount} for the visit on {when}. I thought my insurance covered it. Can someone check?"
                ),
                answers: None,
            }
        }
        ("clinical", _) => {
            let (text, what, since) = symptom(chart, rng, who);
            // Most say 2 to 6; the rules make 8 or more urgent.
            let severity = rng.range(2, 6);
            Message {
                category: "clinical",
                answers: Some(symptom_answers(&what, &since, severity, &[])),
                text,
            }
        }
        _ => {
            let (text, what, severity, flags): (String, &str, i64, &[&str]) =
                if chart.has(Problem::AtrialFibrillation) {
                    (
                        "My nose has been bleeding for 40 minutes and won't stop. I'm on warfarin."
                            .to_string(),
                        "Nosebleed that won't stop",
                        7,
                        &["severe-bleeding"],
                    )
                } else if chart.has(Problem::Diabetes) {
                    (
                        "My meter just says HI and I feel very thirsty and dizzy.".to_string(),
                        "Glucose meter reads HI, thirsty and dizzy",
                        8,
                        &[],
                    )
                } else if child {
                    (
                        format!(
                            "{} has a fever of 40.1 and is very sleepy, hard to wake up.",
                            capitalise(who)
                        ),
                        "High fever, very sleepy",
                        9,
                        &[],
                    )
                } else {
                    (
                        "I've had chest tightness since this morning and feel short of breath."
                            .to_string(),
                        "Chest tightness",
                        8,
                        &["chest-pain", "short-of-breath"],
                    )
                };
            Message {
                category: "urgent",
                answers: Some(symptom_answers(what, "today", severity, flags)),
                text,
            }
        }
    }
}

/// A symptom message: the text, what the patient answers for "what" and
/// "since when" (the same story told twice, as patients do).
fn symptom(chart: &Chart, rng: &mut Rng, who: &str) -> (String, String, String) {
    if who != "I" {
        return (
            format!(
                "{} has had a fever of 38.{} since yesterday and isn't eating much.",
                capitalise(who),
                rng.range(2, 9)
            ),
            "Child with fever, eating less".to_string(),
            "yesterday".to_string(),
        );
    }
    let days = rng.range(2, 6);
    let mut options: Vec<(String, &str, String)> = vec![(
        format!("I've had a cough and a low fever for {days} days."),
        "Cough and low fever",
        format!("{days} days"),
    )];
    if chart.has(Problem::Diabetes) {
        options.push((
            "My morning sugars have been 250 to 300 all week.".to_string(),
            "Fasting glucose 250-300 for a week",
            "a week".to_string(),
        ));
    }
    if chart.has(Problem::Hypertension) {
        options.push((
            "I've been getting headaches and my home blood pressure was 168/96 today.".to_string(),
            "Headaches, home BP 168/96",
            "a few days".to_string(),
        ));
    }
    if chart.has(Problem::AtrialFibrillation) {
        options.push((
            "I've noticed some bruising on my arms since my last INR check.".to_string(),
            "New bruising on warfarin",
            "my last INR check".to_string(),
        ));
    }
    if chart.female() && chart.age >= 16 {
        options.push((
            "It burns again when I pee, like last time.".to_string(),
            "Dysuria, possible recurrent UTI",
            "yesterday".to_string(),
        ));
    }
    let k = rng.below(options.len());
    let (text, what, since) = options.swap_remove(k);
    (text, what.to_string(), since)
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
